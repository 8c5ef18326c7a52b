/* Run inside the sandbox only, by tests/tests/isolation.rs: what the guest
 * sees of itself and whether anything it does reaches the host. The mode is
 * argv[1]. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

static void show(const char *what, long r) {
  if (r < 0)
    printf("%s: -1 %s\n", what, strerrorname_np(errno));
  else
    printf("%s: %ld\n", what, r);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* A guest argument: small ints, pointers into a scratch buffer, pointers
 * to unmapped or kernel memory, huge values. Never a pointer into the rest
 * of the program: a syscall writing there would only test that a program
 * that corrupts itself misbehaves. */
static long garbage(char *buf) {
  switch (next() % 6) {
    case 0: return (long)(next() % 16);
    case 1: return (long)buf + (long)(next() % 4096);
    case 2: return (long)next();
    case 3: return -(long)(next() % 4096);
    case 4: return 0;
    default: return (long)(0x100000000000ull + (next() & 0xffffffffffull));
  }
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (!strcmp(mode, "ids")) {
    printf("pid=%d ppid=%d tid=%d\n", getpid(), getppid(), (int)syscall(SYS_gettid));
  } else if (!strcmp(mode, "uname")) {
    struct utsname u;
    uname(&u);
    printf("nodename=%s\nrelease=%s\nsysname=%s\n", u.nodename, u.release, u.sysname);
  } else if (!strcmp(mode, "rlimit")) {
    struct rlimit r;
    getrlimit(RLIMIT_CORE, &r);
    printf("core=%llu/%llu\n", (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max);
    getrlimit(RLIMIT_NOFILE, &r);
    printf("nofile=%llu/%llu\n", (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max);
  } else if (!strcmp(mode, "host") && argc > 3) {
    const char *marker = argv[2];
    int victim = atoi(argv[3]);
    show("open", syscall(SYS_open, marker, O_CREAT | O_WRONLY, 0644));
    show("openat", syscall(SYS_openat, AT_FDCWD, marker, O_CREAT | O_WRONLY, 0644));
    show("mkdir", syscall(SYS_mkdir, marker, 0755));
    show("open /etc/passwd", syscall(SYS_open, "/etc/passwd", O_RDONLY));
    show("stat /bin/busybox", syscall(SYS_stat, "/bin/busybox", (char[256]){0}));
    show("kill", syscall(SYS_kill, victim, SIGKILL));
    show("socket", syscall(SYS_socket, AF_PACKET, SOCK_RAW, 0));
    char *const args[] = {"/bin/true", NULL};
    show("execve", syscall(SYS_execve, "/bin/true", args, args + 1));
  } else if (!strcmp(mode, "spin")) {
    printf("spinning\n");
    fflush(stdout);
    for (volatile unsigned long i = 0;; i++) {
    }
  } else if (!strcmp(mode, "fuzz")) {
    /* Every syscall number with garbage arguments, except those that
     * would end the program, block it, or wreck its own memory (which
     * would only test that a broken program dies). */
    /* Scratch memory with an unmapped guard page after it, so that a
     * syscall told to write a huge length stops there. */
    char *buf = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(buf + 2 * 4096, 4096);
    rng ^= (uint64_t)(argc > 2 ? atol(argv[2]) : 1) * 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 4; round++) {
      for (long nr = 0; nr < 470; nr++) {
        switch (nr) {
          case SYS_exit: case SYS_exit_group: case SYS_pause: case SYS_nanosleep:
          case SYS_clock_nanosleep: case SYS_futex: case SYS_poll: case SYS_ppoll:
          case SYS_select: case SYS_pselect6: case SYS_wait4: case SYS_waitid:
          case SYS_rt_sigsuspend: case SYS_rt_sigtimedwait: case SYS_epoll_wait:
          case SYS_epoll_pwait: case SYS_mmap: case SYS_munmap: case SYS_mprotect:
          case SYS_mremap: case SYS_brk: case SYS_madvise: case SYS_arch_prctl:
          case SYS_read: case SYS_readv: case SYS_pread64: case SYS_preadv:
          case SYS_preadv2: case SYS_rt_sigreturn: case SYS_vfork: case SYS_fork:
          case SYS_clone: case SYS_clone3: case SYS_execve: case SYS_execveat:
          case SYS_kill: case SYS_tkill: case SYS_tgkill: case SYS_shmat:
          case SYS_io_uring_enter: case SYS_set_tid_address: case SYS_rseq:
          case SYS_close: case SYS_close_range: case SYS_dup2: case SYS_dup3:
          case SYS_msgrcv: case SYS_msgsnd: case SYS_semop: case SYS_semtimedop:
          case SYS_mq_timedsend: case SYS_mq_timedreceive:
            continue;
        }
        syscall(nr, garbage(buf), garbage(buf), garbage(buf), garbage(buf),
                garbage(buf), garbage(buf));
      }
    }
    printf("survived\n");
  } else {
    fprintf(stderr, "unknown mode\n");
    return 2;
  }
  return 0;
}
