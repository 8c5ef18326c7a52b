/* rt_sigprocmask and sigaltstack: recorded state, round trips and the
 * checks. SIGKILL and SIGSTOP cannot be blocked; the alternate stack must
 * be large enough; flags are checked; the stack cannot change while the
 * thread runs on it (tested by moving the stack pointer onto it around
 * raw syscalls). */
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

#define BAD ((void *)8)
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif
#define BIT(s) (1UL << ((s) - 1))

static char *ro, *edge;

static long pm(int how, const void *set, void *old, long size) {
  return syscall(SYS_rt_sigprocmask, how, set, old, size);
}

static unsigned long cur(void) {
  unsigned long m = 0xdead;
  pm(SIG_BLOCK, NULL, &m, 8);
  return m;
}

static void masks(void) {
  unsigned long s, o;
  printf("-- rt_sigprocmask\n");
  printf("initial=%#lx\n", cur());
  s = BIT(SIGUSR1) | BIT(SIGINT);
  CHECK(pm(SIG_BLOCK, &s, &o, 8));
  printf("old=%#lx now=%#lx\n", o, cur());
  s = BIT(SIGTERM);
  CHECK(pm(SIG_BLOCK, &s, &o, 8));
  printf("old=%#lx now=%#lx\n", o, cur());
  s = BIT(SIGINT) | BIT(SIGHUP);
  CHECK(pm(SIG_UNBLOCK, &s, &o, 8));
  printf("old=%#lx now=%#lx\n", o, cur());
  s = BIT(SIGKILL) | BIT(SIGSTOP) | BIT(SIGCHLD) | BIT(64) | BIT(33);
  CHECK(pm(SIG_SETMASK, &s, &o, 8));
  printf("old=%#lx now=%#lx\n", o, cur());
  s = ~0UL;
  CHECK(pm(SIG_BLOCK, &s, NULL, 8));
  printf("all: %#lx\n", cur());
  CHECK(pm(SIG_UNBLOCK, &s, NULL, 8));
  printf("none: %#lx\n", cur());
  s = ~0UL;
  CHECK(pm(SIG_SETMASK, &s, NULL, 8));
  printf("setmask all: %#lx\n", cur());
  s = 0;
  CHECK(pm(SIG_SETMASK, &s, NULL, 8));

  /* old and new may be the same buffer: old is read first. */
  s = BIT(SIGUSR2);
  CHECK(pm(SIG_SETMASK, &s, NULL, 8));
  s = BIT(SIGALRM);
  CHECK(pm(SIG_BLOCK, &s, &s, 8));
  printf("same buffer: old=%#lx now=%#lx\n", s, cur());

  printf("-- errors\n");
  s = BIT(SIGUSR1);
  CHECK(pm(3, &s, &o, 8));
  CHECK(pm(-1, &s, NULL, 8));
  CHECK(pm(3, NULL, &o, 8)); /* how is only checked with a set */
  printf("old=%#lx\n", o);
  CHECK(pm(SIG_BLOCK, &s, NULL, 4));
  CHECK(pm(SIG_BLOCK, &s, NULL, 16));
  CHECK(pm(SIG_BLOCK, NULL, NULL, 0));
  CHECK(pm(3, BAD, NULL, 8));     /* EFAULT before how */
  CHECK(pm(3, BAD, NULL, 4));     /* size first */
  CHECK(pm(SIG_BLOCK, BAD, NULL, 8));
  CHECK(pm(SIG_BLOCK, NULL, BAD, 8));
  CHECK(pm(SIG_BLOCK, NULL, ro, 8));
  CHECK(pm(SIG_BLOCK, ro, NULL, 8)); /* zeros */
  CHECK(pm(SIG_BLOCK, edge - 4, NULL, 8));
  CHECK(pm(SIG_BLOCK, NULL, edge - 4, 8));
  /* A bad old pointer: the new mask is still applied. */
  s = BIT(SIGQUIT);
  CHECK(pm(SIG_SETMASK, &s, BAD, 8));
  printf("now=%#lx\n", cur());
  s = BIT(SIGUSR1);
  CHECK(pm(3, &s, NULL, 8));
  printf("unchanged=%#lx\n", cur());

  printf("-- glibc\n");
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  sigaddset(&set, SIGKILL);
  CHECK(sigprocmask(SIG_SETMASK, &set, &old));
  CHECK(sigprocmask(SIG_BLOCK, NULL, &old));
  EXPECT(sigismember(&old, SIGPIPE) == 1);
  EXPECT(sigismember(&old, SIGKILL) == 0);
  CHECK(sigprocmask(99, &set, NULL));
  sigemptyset(&set);
  CHECK(sigprocmask(SIG_SETMASK, &set, NULL));
  printf("end=%#lx\n", cur());
}

static void show_ss(const char *what, const stack_t *s, const void *base) {
  printf("%s: sp=%s size=%zu flags=%#x\n", what,
         s->ss_sp == NULL ? "null" : s->ss_sp == base ? "base" : "other", s->ss_size,
         (unsigned)s->ss_flags);
}

/* sigaltstack(ss, old) with the stack pointer at `sp`. */
static long altstack_at(void *sp, const stack_t *ss, stack_t *old) {
  long r;
  __asm__ volatile(
      "mov %%rsp, %%r12\n\t"
      "mov %[sp], %%rsp\n\t"
      "syscall\n\t"
      "mov %%r12, %%rsp"
      : "=a"(r)
      : "a"((long)SYS_sigaltstack), "D"(ss), "S"(old), [sp] "r"(sp)
      : "rcx", "r11", "r12", "memory");
  return r;
}

static void altstack(void) {
  static char stack[65536] __attribute__((aligned(16)));
  stack_t ss, old;
  printf("-- sigaltstack\n");
  memset(&old, 0x5a, sizeof old);
  CHECK(sigaltstack(NULL, &old));
  show_ss("initial", &old, stack);
  CHECK(sigaltstack(NULL, NULL));

  /* Too small. */
  ss = (stack_t){stack, 0, 2047};
  CHECK(sigaltstack(&ss, NULL));
  ss.ss_size = 0;
  CHECK(sigaltstack(&ss, NULL));
  ss.ss_size = 2048; /* the kernel's MINSIGSTKSZ */
  CHECK(sigaltstack(&ss, &old));
  show_ss("old", &old, stack);
  CHECK(sigaltstack(NULL, &old));
  show_ss("now", &old, stack);

  ss = (stack_t){stack, 0, sizeof stack};
  CHECK(sigaltstack(&ss, &old));
  CHECK(sigaltstack(NULL, &old));
  show_ss("now", &old, stack);
  /* Bad flags; the old stack is not written on failure. */
  ss.ss_flags = 4;
  memset(&old, 0x5a, sizeof old);
  CHECK(sigaltstack(&ss, &old));
  printf("old untouched=%d\n", old.ss_size == 0x5a5a5a5a5a5a5a5aUL);
  ss.ss_flags = SS_DISABLE | SS_ONSTACK;
  CHECK(sigaltstack(&ss, NULL));
  ss.ss_flags = -1;
  CHECK(sigaltstack(&ss, NULL));
  ss.ss_flags = 0x40000000;
  CHECK(sigaltstack(&ss, NULL));
  ss = (stack_t){stack, 0, 100};
  memset(&old, 0x5a, sizeof old);
  CHECK(sigaltstack(&ss, &old));
  printf("old untouched=%d\n", old.ss_size == 0x5a5a5a5a5a5a5a5aUL);
  /* SS_ONSTACK as a mode means enable; it is not reported back. */
  ss = (stack_t){stack, SS_ONSTACK, sizeof stack};
  CHECK(sigaltstack(&ss, NULL));
  CHECK(sigaltstack(NULL, &old));
  show_ss("onstack mode", &old, stack);
  /* SS_AUTODISARM is kept and reported. */
  ss = (stack_t){stack, SS_AUTODISARM, sizeof stack};
  CHECK(sigaltstack(&ss, NULL));
  CHECK(sigaltstack(NULL, &old));
  show_ss("autodisarm", &old, stack);
  /* An unchanged stack is accepted without checks. */
  CHECK(sigaltstack(&ss, NULL));

  /* Disable: size and pointer are ignored and read back as zero. */
  ss = (stack_t){stack, SS_DISABLE, 1};
  CHECK(sigaltstack(&ss, &old));
  show_ss("old", &old, stack);
  CHECK(sigaltstack(NULL, &old));
  show_ss("disabled", &old, stack);
  ss = (stack_t){NULL, SS_DISABLE | SS_AUTODISARM, 0};
  CHECK(sigaltstack(&ss, NULL));
  CHECK(sigaltstack(NULL, &old));
  show_ss("disabled+autodisarm", &old, stack);
  ss = (stack_t){NULL, SS_DISABLE, 0};
  CHECK(sigaltstack(&ss, NULL));
  /* A zero-size enable of the disabled state is still too small. */
  ss = (stack_t){NULL, 0, 0};
  CHECK(sigaltstack(&ss, NULL));

  printf("-- bad pointers\n");
  CHECK(sigaltstack(BAD, NULL));
  CHECK(sigaltstack(BAD, &old));
  CHECK(sigaltstack(NULL, BAD));
  CHECK(sigaltstack(NULL, (stack_t *)ro));
  CHECK(sigaltstack((stack_t *)ro, NULL)); /* zeros: enable with size 0 */
  CHECK(sigaltstack((stack_t *)(edge - 8), NULL));
  ss = (stack_t){stack, 0, 4}; /* too small, and old is bad: ENOMEM */
  CHECK(sigaltstack(&ss, BAD));
  /* A good new stack with a bad old pointer: set, then EFAULT. */
  ss = (stack_t){stack, 0, sizeof stack};
  CHECK(sigaltstack(&ss, BAD));
  CHECK(sigaltstack(NULL, &old));
  show_ss("after bad old", &old, stack);

  printf("-- on the stack\n");
  ss = (stack_t){stack, 0, sizeof stack};
  CHECK(sigaltstack(&ss, NULL));
  char *top = stack + sizeof stack;
  stack_t cur_ss, other = {stack, 0, 8192};
  long r;
  memset(&cur_ss, 0, sizeof cur_ss);
  r = altstack_at(top - 256, NULL, &cur_ss);
  printf("query on stack: %ld\n", r);
  show_ss("  state", &cur_ss, stack);
  r = altstack_at(top - 256, &other, NULL);
  printf("change on stack: %ld\n", r);
  ss.ss_flags = SS_DISABLE;
  r = altstack_at(top - 256, &ss, NULL);
  printf("disable on stack: %ld\n", r);
  /* The bounds: (base, base + size]. */
  memset(&cur_ss, 0, sizeof cur_ss);
  r = altstack_at(top + 64, NULL, &cur_ss);
  printf("above: %ld flags=%#x\n", r, (unsigned)cur_ss.ss_flags);
  /* The stack pointer just past the top counts as on the stack. */
  memset(&cur_ss, 0, sizeof cur_ss);
  r = altstack_at(top, NULL, &cur_ss);
  printf("at top: %ld flags=%#x\n", r, (unsigned)cur_ss.ss_flags);
  CHECK(sigaltstack(NULL, &old));
  show_ss("still", &old, stack);
  /* With SS_AUTODISARM the thread never counts as on the stack. */
  ss = (stack_t){stack, SS_AUTODISARM, sizeof stack};
  CHECK(sigaltstack(&ss, NULL));
  memset(&cur_ss, 0, sizeof cur_ss);
  r = altstack_at(top - 256, NULL, &cur_ss);
  printf("autodisarm query: %ld flags=%#x\n", r, (unsigned)cur_ss.ss_flags);
  r = altstack_at(top - 256, &other, NULL);
  printf("autodisarm change: %ld\n", r);
  CHECK(sigaltstack(NULL, &old));
  show_ss("changed", &old, stack);
  ss = (stack_t){NULL, SS_DISABLE, 0};
  CHECK(sigaltstack(&ss, NULL));
}

int main(void) {
  ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  edge = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ro == MAP_FAILED || edge == MAP_FAILED || mprotect(edge + 4096, 4096, PROT_NONE))
    return 1;
  edge += 4096;
  masks();
  altstack();
  return 0;
}
