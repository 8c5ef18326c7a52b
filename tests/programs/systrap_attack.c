/* A guest that attacks its systrap stub (tests/tests/systrap.rs). It finds
 * the stub's code page (mapped readable and executable in every stub
 * process, above the guest's address range) and its slots (the message
 * and FP pages and alternate stacks of the stub threads), then:
 *
 *   jump      jumps to every syscall instruction of the stub code with the
 *             registers of a forbidden host syscall (getpid, kill, openat,
 *             mmap of each low fd, which includes the memory file), each
 *             in a child of its own, and reports how each child ended;
 *   scribble  has one thread overwrite every writable slot page with
 *             garbage while another makes syscalls, and tries to write
 *             the read-only control pages;
 *   race      has one thread flip every slot's state word between the
 *             protocol's values while another makes syscalls.
 *
 * In every mode the parent outlives the attacking child and says so. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOT_SIZE 0x10000ul
#define NSLOTS 4096ul
#define AREA (SLOT_SIZE * NSLOTS)
#define TASK_SIZE 0x7ffffffff000ul

static __thread sigjmp_buf *guard;

static void on_fault(int sig, siginfo_t *si, void *uc) {
  (void)sig; (void)si; (void)uc;
  if (guard) siglongjmp(*guard, 1);
  _exit(99);
}

static void on_return(int sig, siginfo_t *si, void *uc) {
  (void)si;
  ucontext_t *u = uc;
  /* Only reached if a forbidden host syscall returned into stub code. */
  char b[96];
  int n = snprintf(b, sizeof b, "returned: signal %d rax %lld\n", sig,
                   (long long)u->uc_mcontext.gregs[REG_RAX]);
  write(1, b, n);
  _exit(42);
}

static void handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGSEGV, &sa, 0);
  sigaction(SIGBUS, &sa, 0);
}

/* Reads one byte at `a`; -1 if unmapped. */
static int peek(uintptr_t a) {
  sigjmp_buf jb;
  volatile int v = -1;
  guard = &jb;
  if (!sigsetjmp(jb, 1)) v = *(volatile unsigned char *)a;
  guard = 0;
  return v;
}

/* Writes `v` at `a`; 0 if the store faulted. */
static int poke(uintptr_t a, uint64_t v) {
  sigjmp_buf jb;
  volatile int ok = 0;
  guard = &jb;
  if (!sigsetjmp(jb, 1)) {
    *(volatile uint64_t *)a = v;
    ok = 1;
  }
  guard = 0;
  return ok;
}

static uintptr_t code_page(void) {
  uintptr_t area = (TASK_SIZE - (AREA + 4096) - 0x20000000ul) & ~(SLOT_SIZE - 1);
  for (int i = 0; i < 256; i++, area -= 0x10000000ul) {
    uintptr_t code = area + AREA;
    /* The stub code begins with mov %rdi,%r12 (49 89 fc). */
    if (peek(code) == 0x49 && peek(code + 1) == 0x89 && peek(code + 2) == 0xfc) return code;
  }
  return 0;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static uintptr_t code;
static volatile int stop;
static int ctl_pipe[2];

static void *syscaller(void *arg) {
  (void)arg;
  for (int i = 0; i < 200000 && !stop; i++) syscall(SYS_getppid);
  stop = 1;
  return 0;
}

static volatile long found;

static void *scribbler(void *arg) {
  int race = arg != 0;
  uintptr_t area = code - AREA;
  while (!stop) {
    for (uintptr_t s = 0; s < NSLOTS && !stop; s++) {
      uintptr_t slot = area + s * SLOT_SIZE;
      if (peek(slot + 0x1000) < 0) continue;
      found++;
      if (race) {
        poke(slot + 0x1000, next() % 5);
        continue;
      }
      /* The control page is read-only in the stub. */
      if (poke(slot, next())) write(ctl_pipe[1], "W", 1);
      for (uintptr_t off = 0x1000; off < 0x3000; off += 8) poke(slot + off, next());
    }
  }
  return 0;
}

static void run_child(int mode) {
  pthread_t a, b;
  pthread_create(&a, 0, syscaller, 0);
  pthread_create(&b, 0, scribbler, mode == 2 ? (void *)1 : 0);
  pthread_join(a, 0);
  pthread_join(b, 0);
  dprintf(2, "found %ld\n", found);
  _exit(found > 0 ? 0 : 3);
}

/* How a child ended, in words (the status itself may vary). */
static const char *ending(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st) == 42 ? "returned" : "exited";
  return "killed";
}

static void jump_to(uintptr_t site, long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  register long rax __asm__("rax") = nr;
  register long rdi __asm__("rdi") = a0;
  register long rsi __asm__("rsi") = a1;
  register long rdx __asm__("rdx") = a2;
  register long r10 __asm__("r10") = a3;
  register long r8 __asm__("r8") = a4;
  register long r9 __asm__("r9") = a5;
  register uintptr_t t __asm__("rbx") = site;
  __asm__ volatile("jmp *%%rbx" ::"r"(rax), "r"(rdi), "r"(rsi), "r"(rdx), "r"(r10), "r"(r8),
                   "r"(r9), "r"(t)
                   : "memory");
  __builtin_unreachable();
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  handlers();
  code = code_page();
  if (!code) {
    printf("no stub code page found\n");
    return 1;
  }
  printf("found the stub code page\n");
  fflush(stdout);
  if (!strcmp(mode, "jump")) {
    int sites = 0, attempts = 0, killed = 0;
    for (uintptr_t a = code; a < code + 4095; a++) {
      if (peek(a) != 0x0f || peek(a + 1) != 0x05) continue;
      sites++;
      for (int call = 0; call < 9; call++) {
        attempts++;
        pid_t c = fork();
        if (c == 0) {
          struct sigaction sa;
          memset(&sa, 0, sizeof sa);
          sa.sa_sigaction = on_return;
          sa.sa_flags = SA_SIGINFO;
          sigaction(SIGTRAP, &sa, 0);
          sigaction(SIGILL, &sa, 0);
          sigaction(SIGSEGV, &sa, 0);
          sigaction(SIGBUS, &sa, 0);
          switch (call) {
            case 0: jump_to(a, SYS_getpid, 0, 0, 0, 0, 0, 0);
            case 1: jump_to(a, SYS_kill, 1, SIGKILL, 0, 0, 0, 0);
            case 2: jump_to(a, SYS_openat, AT_FDCWD, (long)"/", O_RDONLY, 0, 0, 0);
            default:
              /* mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0) */
              jump_to(a, SYS_mmap, 0, 4096, 3, 1, call - 3, 0);
          }
        }
        int st;
        waitpid(c, &st, 0);
        if (!strcmp(ending(st), "killed")) killed++;
        else printf("site %d call %d: %s\n", sites, call, ending(st));
      }
    }
    printf("jump: %s, %s\n", sites > 0 ? "syscall sites found" : "NO SYSCALL SITE",
           attempts > 0 && killed == attempts ? "every attempt ended its process" : "SOME ATTEMPT SURVIVED");
  } else if (!strcmp(mode, "scribble") || !strcmp(mode, "race")) {
    pipe2(ctl_pipe, O_NONBLOCK);
    pid_t c = fork();
    if (c == 0) run_child(!strcmp(mode, "race") ? 2 : 1);
    int st;
    waitpid(c, &st, 0);
    char x;
    int wrote = read(ctl_pipe[0], &x, 1) == 1;
    printf("%s: control page written: %s\n", mode, wrote ? "YES" : "no");
    printf("%s: the attacker %s\n", mode,
           WIFEXITED(st) && WEXITSTATUS(st) == 3 ? "FOUND NO SLOT" : "found its slots");
    printf("%s: the sandbox goes on (getppid %ld)\n", mode, syscall(SYS_getppid));
  } else {
    fprintf(stderr, "unknown mode\n");
    return 2;
  }
  return 0;
}
