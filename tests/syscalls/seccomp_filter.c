/* cflags: -pthread */
/* seccomp: filters returning ERRNO, TRAP (the SIGSYS siginfo and the
 * value the call leaves), KILL_PROCESS and KILL_THREAD (the parent's wait
 * status; a thread alone), TRACE and USER_NOTIF without a tracer or
 * listener (ENOSYS), LOG; filters on arguments; strict mode (read, write
 * and exit only, else SIGKILL); stacked filters (the first action in
 * precedence wins, the newest among equals); inheritance by fork, by
 * threads and across exec of /proc/self/exe; TSYNC (and its refusal,
 * naming the thread); the checker's refusals (EINVAL), bad pointers
 * (EFAULT), EACCES without no_new_privs or CAP_SYS_ADMIN, the limit on
 * the total length (ENOMEM); SECCOMP_GET_ACTION_AVAIL; PR_GET_SECCOMP and
 * PR_SET_SECCOMP. Every filter is installed in a child, so the test
 * process itself stays unfiltered. */
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>
#include "check.h"

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

#define NR_OFF offsetof(struct seccomp_data, nr)
#define ARCH_OFF offsetof(struct seccomp_data, arch)
#define ARG0_LO offsetof(struct seccomp_data, args[0])
#define ARG0_HI (offsetof(struct seccomp_data, args[0]) + 4)

static long sc(unsigned op, unsigned flags, void *args) {
  return syscall(SYS_seccomp, op, flags, args);
}

static long install(struct sock_filter *f, unsigned short n, unsigned flags) {
  struct sock_fprog p = {n, f};
  return sc(SECCOMP_SET_MODE_FILTER, flags, &p);
}

/* A filter: `ret` for syscall `nr`, ALLOW for the rest (after checking
 * the architecture). */
static long on_nr(int nr, unsigned ret, unsigned flags) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARCH_OFF),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, ret),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  return install(f, sizeof f / sizeof f[0], flags);
}

static pid_t xfork(void) {
  fflush(stdout);
  pid_t p = fork();
  if (p < 0) {
    perror("fork");
    exit(99);
  }
  return p;
}

static void no_core(void) {
  struct rlimit r = {0, 0};
  setrlimit(RLIMIT_CORE, &r);
}

/* Waits for the child and shows how it ended. */
static void reap(const char *what, pid_t c) {
  int st;
  if (waitpid(c, &st, 0) != c) {
    printf("%s: waitpid failed\n", what);
    return;
  }
  if (WIFEXITED(st))
    printf("%s: exited %d\n", what, WEXITSTATUS(st));
  else if (WIFSIGNALED(st))
    printf("%s: killed by signal %d (%s)\n", what, WTERMSIG(st),
           sigabbrev_np(WTERMSIG(st)));
  else
    printf("%s: status %#x\n", what, st);
}

static void done(void) {
  fflush(stdout);
  _exit(0);
}

/* ---- ERRNO, TRACE, USER_NOTIF, LOG, arguments ---- */

static void errno_actions(void) {
  CHECK(prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
  CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  CHECK(on_nr(SYS_getppid, SECCOMP_RET_ERRNO | EPERM, 0));
  CHECK(prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
  CHECK(syscall(SYS_getppid));
  CHECK(getpid() > 0);
  CHECK(on_nr(SYS_getuid, SECCOMP_RET_ERRNO | 5000, 0));
  errno = 0;
  long big = syscall(SYS_getuid);
  printf("errno 5000 is capped: %ld errno=%d\n", big, errno);
  CHECK(on_nr(SYS_getgid, SECCOMP_RET_ERRNO | 0, 0));
  CHECK(syscall(SYS_getgid));
  CHECK(on_nr(SYS_geteuid, SECCOMP_RET_TRACE | 7, 0));
  CHECK(syscall(SYS_geteuid));
  CHECK(on_nr(SYS_getegid, SECCOMP_RET_USER_NOTIF, 0));
  CHECK(syscall(SYS_getegid));
  CHECK(on_nr(SYS_getpgrp, SECCOMP_RET_LOG, SECCOMP_FILTER_FLAG_LOG));
  CHECK(syscall(SYS_getpgrp) >= 0); /* 0 when the group is outside our pid ns */
  CHECK(on_nr(SYS_sched_yield, SECCOMP_RET_ALLOW, SECCOMP_FILTER_FLAG_SPEC_ALLOW));
  CHECK(syscall(SYS_sched_yield));
  /* close(2) of exactly fd 0x1_0000_3039 fails with EBADMSG: both halves
   * of the argument are compared. */
  struct sock_filter args[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_close, 0, 5),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_HI),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_LO),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 12345, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EBADMSG),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  CHECK(install(args, 8, 0));
  CHECK(syscall(SYS_close, 0x100003039UL));
  CHECK(syscall(SYS_close, 12345UL));
  CHECK(syscall(SYS_close, 0x200003039UL));
  /* Arithmetic and scratch memory: ERRNO(nr * 2 + 1) for dup. */
  struct sock_filter alu[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
      BPF_STMT(BPF_ST, 3),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_dup, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LDX | BPF_MEM, 3),
      BPF_STMT(BPF_MISC | BPF_TXA, 0),
      BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 2),
      BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, 1),
      BPF_STMT(BPF_ALU | BPF_OR | BPF_K, SECCOMP_RET_ERRNO),
      BPF_STMT(BPF_RET | BPF_A, 0),
  };
  CHECK(install(alu, 10, 0));
  errno = 0;
  long r = syscall(SYS_dup, 0);
  printf("dup: %ld errno=%d (want %d)\n", r, errno, SYS_dup * 2 + 1);
  done();
}

/* ---- TRAP ---- */

static volatile int trap_signo, trap_code, trap_syscall, trap_errno;
static volatile unsigned trap_arch;
static volatile long trap_rax, trap_rdi;
static volatile int trap_addr_ok;

static void on_sigsys(int sig, siginfo_t *si, void *ucv) {
  ucontext_t *uc = ucv;
  trap_signo = sig;
  trap_code = si->si_code;
  trap_syscall = si->si_syscall;
  trap_arch = si->si_arch;
  trap_errno = si->si_errno;
  trap_rax = uc->uc_mcontext.gregs[REG_RAX];
  trap_rdi = uc->uc_mcontext.gregs[REG_RDI];
  trap_addr_ok = si->si_call_addr == (void *)uc->uc_mcontext.gregs[REG_RIP];
}

static void trap(void) {
  struct sigaction sa = {0};
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSYS, &sa, NULL);
  CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  CHECK(on_nr(SYS_getpid, SECCOMP_RET_TRAP | 0x1234, 0));
  errno = 0;
  long r = syscall(SYS_getpid, 77);
  printf("after trap: r=%ld (nr %d) errno=%d\n", r, SYS_getpid, errno);
  printf("signo=%d code=%d (SYS_SECCOMP %d) syscall=%d arch=%#x errno=%#x\n",
         trap_signo, trap_code, SYS_SECCOMP, trap_syscall, trap_arch,
         trap_errno);
  printf("frame rax=%ld rdi=%ld call_addr is rip: %d\n", trap_rax, trap_rdi,
         trap_addr_ok);
  /* Blocked SIGSYS is forced: the default action kills. */
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGSYS);
  sigprocmask(SIG_BLOCK, &s, NULL);
  no_core();
  fflush(stdout);
  syscall(SYS_getpid);
  printf("not reached\n");
  done();
}

/* ---- KILL ---- */

static void *killed_thread(void *arg) {
  (void)arg;
  syscall(SYS_getppid);
  return (void *)1;
}

static void kills(void) {
  pid_t c = xfork();
  if (c == 0) {
    no_core();
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    on_nr(SYS_getppid, SECCOMP_RET_KILL_PROCESS, 0);
    printf("kill_process child: before\n");
    fflush(stdout);
    syscall(SYS_getppid);
    printf("not reached\n");
    done();
  }
  reap("kill_process", c);

  c = xfork();
  if (c == 0) {
    no_core();
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    on_nr(SYS_getppid, SECCOMP_RET_KILL_THREAD, 0);
    syscall(SYS_getppid);
    printf("not reached\n");
    done();
  }
  reap("kill_thread, last thread", c);

  /* A handler for SIGSYS does not save the process. */
  c = xfork();
  if (c == 0) {
    no_core();
    signal(SIGSYS, SIG_IGN);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    on_nr(SYS_getppid, SECCOMP_RET_KILL_PROCESS, 0);
    syscall(SYS_getppid);
    printf("not reached\n");
    done();
  }
  reap("kill_process, SIGSYS ignored", c);

  /* KILL_THREAD with another thread alive: that thread goes alone. */
  c = xfork();
  if (c == 0) {
    no_core();
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    on_nr(SYS_getppid, SECCOMP_RET_KILL_THREAD, 0);
    pthread_t th;
    void *ret = NULL;
    pthread_create(&th, NULL, killed_thread, NULL);
    int e = pthread_join(th, &ret);
    printf("kill_thread: join=%d thread returned=%ld; the process goes on\n", e,
           (long)ret);
    fflush(stdout);
    _exit(5);
  }
  reap("kill_thread, one of two", c);

  /* An unknown action kills the process. */
  c = xfork();
  if (c == 0) {
    no_core();
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    on_nr(SYS_getppid, 0x00010000, 0);
    syscall(SYS_getppid);
    printf("not reached\n");
    done();
  }
  reap("unknown action", c);
}

/* ---- strict mode ---- */

static void say(const char *s) { write(1, s, strlen(s)); }

static void strict(void) {
  pid_t c = xfork();
  if (c == 0) {
    if (sc(SECCOMP_SET_MODE_STRICT, 0, NULL) != 0) _exit(90);
    say("strict: write allowed\n");
    char b;
    if (read(-1, &b, 1) == -1) say("strict: read allowed (EBADF)\n");
    syscall(SYS_getpid);
    say("not reached\n");
    syscall(SYS_exit, 1);
  }
  reap("strict getpid", c);

  c = xfork();
  if (c == 0) {
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0) != 0) _exit(90);
    say("strict by prctl\n");
    syscall(SYS_exit, 3);
  }
  reap("strict exit", c);

  c = xfork();
  if (c == 0) {
    if (sc(SECCOMP_SET_MODE_STRICT, 0, NULL) != 0) _exit(90);
    syscall(SYS_exit_group, 4); /* not in the strict list */
    syscall(SYS_exit, 5);
  }
  reap("strict exit_group", c);

  c = xfork();
  if (c == 0) {
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    CHECK(sc(SECCOMP_SET_MODE_STRICT, 1, NULL));
    CHECK(sc(SECCOMP_SET_MODE_STRICT, 0, (void *)8));
    CHECK(on_nr(SYS_getppid, SECCOMP_RET_ERRNO | EPERM, 0));
    CHECK(sc(SECCOMP_SET_MODE_STRICT, 0, NULL));
    CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0));
    CHECK(prctl(PR_SET_SECCOMP, 7, 0, 0, 0));
    CHECK(prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
    done();
  }
  reap("strict after a filter", c);
}

/* ---- stacking ---- */

static void stacking(void) {
  CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  CHECK(on_nr(SYS_getuid, SECCOMP_RET_ERRNO | EPERM, 0));
  CHECK(on_nr(SYS_getuid, SECCOMP_RET_ALLOW, 0));
  CHECK(syscall(SYS_getuid));
  CHECK(on_nr(SYS_getuid, SECCOMP_RET_ERRNO | EACCES, 0));
  CHECK(syscall(SYS_getuid)); /* equal actions: the newest filter's */
  CHECK(on_nr(SYS_getuid, SECCOMP_RET_LOG, 0));
  CHECK(syscall(SYS_getuid));
  CHECK(on_nr(SYS_getgid, SECCOMP_RET_TRACE, 0));
  CHECK(on_nr(SYS_getgid, SECCOMP_RET_ERRNO | E2BIG, 0));
  CHECK(syscall(SYS_getgid));
  CHECK(on_nr(SYS_getgid, SECCOMP_RET_TRACE, 0));
  CHECK(syscall(SYS_getgid));
  no_core();
  CHECK(on_nr(SYS_getgid, SECCOMP_RET_KILL_PROCESS, 0));
  fflush(stdout);
  syscall(SYS_getgid);
  printf("not reached\n");
  done();
}

/* ---- inheritance ---- */

static void *thread_getppid(void *arg) {
  (void)arg;
  errno = 0;
  long r = syscall(SYS_getppid);
  return (void *)(r < 0 ? (long)errno : 0L);
}

static void inherit(void) {
  CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  CHECK(on_nr(SYS_getppid, SECCOMP_RET_ERRNO | EPERM, 0));
  pid_t g = xfork();
  if (g == 0) {
    CHECK(prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
    CHECK(syscall(SYS_getppid));
    done();
  }
  reap("grandchild", g);
  pthread_t th;
  void *ret;
  pthread_create(&th, NULL, thread_getppid, NULL);
  pthread_join(th, &ret);
  printf("thread: getppid errno %ld\n", (long)ret);
  fflush(stdout);
  char *argv[] = {"seccomp_filter", "exec-check", NULL};
  execv("/proc/self/exe", argv);
  printf("exec failed\n");
  done();
}

static void exec_check(void) {
  CHECK(prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
  CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  CHECK(syscall(SYS_getppid));
  done();
}

/* ---- TSYNC ---- */

static int tpipe[2], tback[2];
static volatile pid_t helper_tid;

static void *tsync_helper(void *arg) {
  int own = arg != NULL;
  helper_tid = syscall(SYS_gettid);
  if (own) on_nr(SYS_getpgrp, SECCOMP_RET_ERRNO | EIO, 0);
  char b = 0;
  write(tback[1], &b, 1);
  read(tpipe[0], &b, 1);
  errno = 0;
  long r = syscall(SYS_getppid);
  long e = r < 0 ? errno : 0;
  errno = 0;
  long nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
  write(tback[1], &b, 1);
  return (void *)(e * 10 + nnp);
}

static void tsync(int own) {
  pipe(tpipe);
  pipe(tback);
  /* The helper starts without no_new_privs; the caller has it. */
  pthread_t th;
  pthread_create(&th, NULL, tsync_helper, own ? (void *)1 : NULL);
  char b;
  read(tback[0], &b, 1);
  CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  long r = on_nr(SYS_getppid, SECCOMP_RET_ERRNO | EPERM,
                 SECCOMP_FILTER_FLAG_TSYNC);
  if (own)
    printf("tsync: returned the helper's tid: %d\n", r == helper_tid);
  else
    CHECK(r);
  if (own)
    CHECK(on_nr(SYS_getppid, SECCOMP_RET_ERRNO | EPERM,
                SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH));
  if (own)
    CHECK(syscall(SYS_getppid) > 0);
  else
    CHECK(syscall(SYS_getppid));
  write(tpipe[1], &b, 1);
  void *ret;
  pthread_join(th, &ret);
  printf("helper: getppid errno %ld, no_new_privs %ld\n", (long)ret / 10,
         (long)ret % 10);
  done();
}

/* ---- refusals ---- */

static void refusals(void) {
  struct sock_filter ok[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  struct sock_fprog p = {1, ok};
  /* Root without no_new_privs is allowed (CAP_SYS_ADMIN). */
  CHECK(sc(SECCOMP_SET_MODE_FILTER, 0, &p));
  CHECK(sc(SECCOMP_SET_MODE_FILTER, 0, NULL));
  CHECK(sc(SECCOMP_SET_MODE_FILTER, 0, (void *)1));
  struct sock_fprog badptr = {1, (struct sock_filter *)8};
  CHECK(sc(SECCOMP_SET_MODE_FILTER, 0, &badptr));
  struct sock_fprog empty = {0, ok};
  CHECK(sc(SECCOMP_SET_MODE_FILTER, 0, &empty));
  struct sock_fprog toolong = {4097, ok};
  CHECK(sc(SECCOMP_SET_MODE_FILTER, 0, &toolong));
  CHECK(sc(SECCOMP_SET_MODE_FILTER, 64, &p));
  CHECK(sc(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &p));
  CHECK(sc(SECCOMP_SET_MODE_FILTER,
           SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_NEW_LISTENER, &p));
  CHECK(sc(99, 0, &p));

  struct sock_filter bad_jump[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 2),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  CHECK(install(bad_jump, 3, 0));
  struct sock_filter bad_ja[] = {
      BPF_STMT(BPF_JMP | BPF_JA, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  CHECK(install(bad_ja, 2, 0));
  struct sock_filter no_ret[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
      BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, 1),
  };
  CHECK(install(no_ret, 2, 0));
  struct sock_filter odd[][2] = {
      {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 2), BPF_STMT(BPF_RET | BPF_A, 0)},
      {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64), BPF_STMT(BPF_RET | BPF_A, 0)},
      {BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 0), BPF_STMT(BPF_RET | BPF_A, 0)},
      {BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0), BPF_STMT(BPF_RET | BPF_A, 0)},
      {BPF_STMT(BPF_LD | BPF_W | BPF_IND, 0), BPF_STMT(BPF_RET | BPF_A, 0)},
      {BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0), BPF_STMT(BPF_RET | BPF_A, 0)},
      {BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, 2), BPF_STMT(BPF_RET | BPF_A, 0)},
      {BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 32), BPF_STMT(BPF_RET | BPF_A, 0)},
      {BPF_STMT(BPF_LD | BPF_MEM, 0), BPF_STMT(BPF_RET | BPF_A, 0)},
      {BPF_STMT(BPF_ST, 16), BPF_STMT(BPF_RET | BPF_A, 0)},
      {BPF_STMT(0x7777, 0), BPF_STMT(BPF_RET | BPF_A, 0)},
      /* Allowed: the length of seccomp_data, a stored word. */
      {BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)},
      {BPF_STMT(BPF_ST, 15), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)},
  };
  for (unsigned i = 0; i < sizeof odd / sizeof odd[0]; i++) {
    errno = 0;
    long r = install(odd[i], 2, 0);
    printf("program %u: %ld %s\n", i, r, r < 0 ? strerrorname_np(errno) : "");
  }
  /* LD LEN loads 64. */
  struct sock_filter len[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
      BPF_STMT(BPF_ALU | BPF_OR | BPF_K, SECCOMP_RET_ERRNO),
      BPF_STMT(BPF_MISC | BPF_TAX, 0),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getsid, 0, 2),
      BPF_STMT(BPF_MISC | BPF_TXA, 0),
      BPF_STMT(BPF_RET | BPF_A, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  CHECK(install(len, 8, 0));
  errno = 0;
  long r = syscall(SYS_getsid, 0);
  printf("getsid: %ld errno=%d\n", r, errno);

  /* The stack's total length is bounded: 4096 + 6 * (4096 + 4) fits,
   * one more filter does not. */
  static struct sock_filter big[4096];
  for (int i = 0; i < 4096; i++)
    big[i] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  int n = 0;
  long br;
  while ((br = install(big, 4096, 0)) == 0 && n < 20) n++;
  printf("big filters attached: %d, then %s\n", n, strerrorname_np(errno));
  done();
}

/* EACCES: neither no_new_privs nor CAP_SYS_ADMIN. */
static void no_privs(void) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  CHECK(syscall(SYS_capget, &h, d));
  d[0].effective &= ~(1u << CAP_SYS_ADMIN);
  CHECK(syscall(SYS_capset, &h, d));
  struct sock_filter ok[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  CHECK(install(ok, 1, 0));
  struct sock_fprog empty = {0, ok};
  CHECK(sc(SECCOMP_SET_MODE_FILTER, 0, &empty)); /* length first */
  CHECK(sc(SECCOMP_SET_MODE_FILTER, 0, NULL));
  CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ok, 0, 0));
  CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  CHECK(install(ok, 1, 0));
  struct sock_fprog p = {1, ok};
  CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p, 0, 0));
  CHECK(prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
  done();
}

static void action_avail(void) {
  unsigned acts[] = {SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD,
                     SECCOMP_RET_TRAP,         SECCOMP_RET_ERRNO,
                     SECCOMP_RET_TRACE,        SECCOMP_RET_LOG,
                     SECCOMP_RET_ALLOW,        0x00010000,
                     SECCOMP_RET_ERRNO | 1,    0x7fff0001};
  for (unsigned i = 0; i < sizeof acts / sizeof acts[0]; i++) {
    errno = 0;
    long r = sc(SECCOMP_GET_ACTION_AVAIL, 0, &acts[i]);
    printf("action %#x: %ld %s\n", acts[i], r, r < 0 ? strerrorname_np(errno) : "");
  }
  CHECK(sc(SECCOMP_GET_ACTION_AVAIL, 1, &acts[0]));
  CHECK(sc(SECCOMP_GET_ACTION_AVAIL, 0, NULL));
}

static void in_child(const char *what, void (*f)(void)) {
  printf("--- %s\n", what);
  pid_t c = xfork();
  if (c == 0) f();
  reap(what, c);
}

static void tsync_plain(void) { tsync(0); }
static void tsync_blocked(void) { tsync(1); }

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "exec-check") == 0) {
    exec_check();
    return 0;
  }
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  in_child("errno and other actions", errno_actions);
  in_child("trap", trap);
  printf("--- kills\n");
  kills();
  printf("--- strict\n");
  strict();
  in_child("stacking", stacking);
  in_child("inheritance", inherit);
  in_child("tsync", tsync_plain);
  in_child("tsync refused", tsync_blocked);
  in_child("refusals", refusals);
  in_child("no privileges", no_privs);
  printf("--- action avail\n");
  action_avail();
  CHECK(prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
  CHECK(syscall(SYS_getppid) >= 0);
  return 0;
}
