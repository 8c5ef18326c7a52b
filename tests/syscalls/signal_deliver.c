/* Signal delivery: SA_SIGINFO handlers and si_code for kill (SI_USER),
 * raise/tgkill/tkill (SI_TKILL), sigqueue (SI_QUEUE with si_value);
 * the mask while a handler runs (itself, sa_mask, SA_NODEFER),
 * SA_RESETHAND, nested handlers and the order of pending signals (lower
 * first, real-time signals queued, standard ones coalesced); the
 * alternate stack; registers and floating-point state (xmm, MXCSR)
 * restored by rt_sigreturn, and a handler that moves the saved RIP;
 * sigsuspend, sigpending, sigtimedwait; faults: SIGSEGV (SEGV_MAPERR,
 * SEGV_ACCERR, si_addr) left with siglongjmp, SIGFPE (FPE_INTDIV),
 * SIGILL from ud2 (si_addr), SIGTRAP from int3, a blocked SIGSEGV that
 * kills; default actions in children (terminate, stop, continue);
 * SIGCHLD with its siginfo and SA_NOCLDSTOP; kill to groups (-pgid, 0),
 * signal 0, and the errors. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include "check.h"

static pid_t xfork(void) {
  fflush(stdout);
  pid_t p = fork();
  if (p < 0) {
    perror("fork");
    exit(99);
  }
  return p;
}

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static const char *code_name(int c) {
  switch (c) {
    case SI_USER: return "SI_USER";
    case SI_TKILL: return "SI_TKILL";
    case SI_QUEUE: return "SI_QUEUE";
    case SI_KERNEL: return "SI_KERNEL";
    default: {
      static char b[16];
      snprintf(b, sizeof b, "%d", c);
      return b;
    }
  }
}

static void sa(int sig, void (*fn)(int, siginfo_t *, void *), int flags, const int *mask) {
  struct sigaction a = {0};
  a.sa_sigaction = fn;
  a.sa_flags = SA_SIGINFO | flags;
  sigemptyset(&a.sa_mask);
  for (; mask && *mask; mask++) sigaddset(&a.sa_mask, *mask);
  if (sigaction(sig, &a, NULL)) perror("sigaction");
}

static int blocked_now(int sig) {
  sigset_t m;
  sigprocmask(SIG_BLOCK, NULL, &m);
  return sigismember(&m, sig);
}

/* A log written by handlers, printed afterwards. */
static char logbuf[512]; /* its address escapes through strncat */
static void logs(const char *s) { strncat(logbuf, s, sizeof logbuf - strlen(logbuf) - 1); }
static void show_log(const char *what) {
  printf("%s: %s\n", what, logbuf);
  logbuf[0] = 0;
}

/* ---- siginfo ---- */

static volatile siginfo_t last;
static volatile int last_count;
static void record(int s, siginfo_t *si, void *uc) {
  (void)s;
  (void)uc;
  last = *si;
  last_count++;
}

static void show_last(const char *what) {
  printf("%s: n=%d signo=%d code=%s pid=%s uid=%s", what, last_count, last.si_signo,
         code_name(last.si_code), last.si_pid == getpid() ? "self" : "other",
         last.si_uid == getuid() ? "self" : "other");
  if (last.si_code == SI_QUEUE) printf(" value=%d", last.si_value.sival_int);
  printf("\n");
  last_count = 0;
}

static void infos(void) {
  printf("-- siginfo of sent signals\n");
  sa(SIGUSR1, record, 0, NULL);
  CHECK(kill(getpid(), SIGUSR1));
  show_last("kill");
  CHECK(raise(SIGUSR1));
  show_last("raise");
  CHECK(syscall(SYS_tgkill, getpid(), gettid_(), SIGUSR1));
  show_last("tgkill");
  CHECK(syscall(SYS_tkill, gettid_(), SIGUSR1));
  show_last("tkill");
  CHECK(sigqueue(getpid(), SIGUSR1, (union sigval){.sival_int = 42}));
  show_last("sigqueue");
  siginfo_t si = {0};
  si.si_signo = SIGUSR1;
  si.si_code = SI_QUEUE;
  si.si_pid = getpid();
  si.si_uid = getuid();
  si.si_value.sival_int = 7;
  CHECK(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &si));
  show_last("rt_sigqueueinfo");
  CHECK(syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid_(), SIGUSR1, &si));
  show_last("rt_tgsigqueueinfo");
  /* An RT signal through sigqueue, delivered with its value. */
  sa(SIGRTMIN + 2, record, 0, NULL);
  CHECK(sigqueue(getpid(), SIGRTMIN + 2, (union sigval){.sival_int = -5}));
  printf("rt signo is SIGRTMIN+2: %d\n", last.si_signo == SIGRTMIN + 2);
  last.si_signo = SIGUSR1;
  show_last("rt sigqueue");
  signal(SIGRTMIN + 2, SIG_DFL);
}

/* ---- masks in handlers ---- */

static void h_mask(int s, siginfo_t *si, void *uc) {
  (void)si;
  (void)uc;
  char b[64];
  snprintf(b, sizeof b, "[%d self=%d usr2=%d", s, blocked_now(s), blocked_now(SIGUSR2));
  logs(b);
  if (s == SIGUSR1) {
    raise(SIGUSR2); /* blocked by sa_mask: runs after we return */
    logs(" raised-usr2");
  }
  logs("]");
}

static volatile int depth;
static void h_nodefer(int s, siginfo_t *si, void *uc) {
  (void)si;
  (void)uc;
  char b[32];
  snprintf(b, sizeof b, "[%d self=%d", depth, blocked_now(s));
  logs(b);
  if (++depth < 3) raise(s);
  depth--;
  logs("]");
}

static void h_nested(int s, siginfo_t *si, void *uc) {
  (void)si;
  (void)uc;
  char b[16];
  snprintf(b, sizeof b, "[%d", s);
  logs(b);
  if (s == SIGUSR1) raise(SIGUSR2);
  if (s == SIGUSR2) raise(SIGHUP);
  logs("]");
}

static void h_order(int s, siginfo_t *si, void *uc) {
  (void)si;
  (void)uc;
  char b[16];
  if (s >= SIGRTMIN)
    snprintf(b, sizeof b, "[RT%d]", s - SIGRTMIN);
  else
    snprintf(b, sizeof b, "[%d]", s);
  logs(b);
}

static void h_resethand(int s, siginfo_t *si, void *uc) {
  (void)si;
  (void)uc;
  struct sigaction cur;
  sigaction(s, NULL, &cur);
  char b[64];
  snprintf(b, sizeof b, "[now default=%d self blocked=%d]", cur.sa_handler == SIG_DFL,
           blocked_now(s));
  logs(b);
}

static void masks(void) {
  printf("-- masks while handlers run\n");
  int m2[] = {SIGUSR2, 0};
  sa(SIGUSR1, h_mask, 0, m2);
  sa(SIGUSR2, h_mask, 0, NULL);
  raise(SIGUSR1);
  show_log("sa_mask");
  printf("after: usr1 blocked=%d usr2 blocked=%d\n", blocked_now(SIGUSR1), blocked_now(SIGUSR2));
  sa(SIGUSR1, h_nodefer, SA_NODEFER, NULL);
  raise(SIGUSR1);
  show_log("SA_NODEFER");
  sa(SIGUSR1, h_nested, 0, NULL);
  sa(SIGUSR2, h_nested, 0, NULL);
  sa(SIGHUP, h_nested, 0, NULL);
  raise(SIGUSR1);
  show_log("nested");
  sa(SIGUSR1, h_resethand, SA_RESETHAND, NULL);
  raise(SIGUSR1);
  show_log("SA_RESETHAND");
  struct sigaction cur;
  sigaction(SIGUSR1, NULL, &cur);
  printf("after: default=%d flags has SA_SIGINFO=%d\n", cur.sa_handler == SIG_DFL,
         (cur.sa_flags & SA_SIGINFO) != 0);
  /* The order of pending signals: lower numbers first; RT signals queue,
   * standard ones coalesce. Each handler blocks all of them, so they run
   * one after the other. */
  sigset_t all, old, pend;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  int order[] = {SIGRTMIN + 1, SIGUSR2, SIGRTMIN, SIGUSR1, SIGUSR1, SIGRTMIN, SIGHUP};
  int mall[] = {SIGHUP, SIGUSR1, SIGUSR2, SIGRTMIN, SIGRTMIN + 1, 0};
  for (unsigned i = 0; i < sizeof order / sizeof order[0]; i++) {
    sa(order[i], h_order, 0, mall);
    raise(order[i]);
  }
  sigpending(&pend);
  printf("pending: hup=%d usr1=%d usr2=%d rtmin=%d rtmin+1=%d\n", sigismember(&pend, SIGHUP),
         sigismember(&pend, SIGUSR1), sigismember(&pend, SIGUSR2), sigismember(&pend, SIGRTMIN),
         sigismember(&pend, SIGRTMIN + 1));
  sigprocmask(SIG_SETMASK, &old, NULL);
  show_log("delivery order");
  signal(SIGUSR1, SIG_DFL);
  signal(SIGUSR2, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  signal(SIGRTMIN, SIG_DFL);
  signal(SIGRTMIN + 1, SIG_DFL);
}

/* ---- alternate stack ---- */

static char altstack[65536] __attribute__((aligned(16)));
static volatile int on_alt, ss_onstack;
static void h_alt(int s, siginfo_t *si, void *uc) {
  (void)s;
  (void)si;
  (void)uc;
  char local;
  on_alt = &local >= altstack && &local < altstack + sizeof altstack;
  stack_t cur;
  sigaltstack(NULL, &cur);
  ss_onstack = (cur.ss_flags & SS_ONSTACK) != 0;
}

static void alt(void) {
  printf("-- alternate stack\n");
  stack_t ss = {altstack, 0, sizeof altstack};
  CHECK(sigaltstack(&ss, NULL));
  sa(SIGUSR1, h_alt, SA_ONSTACK, NULL);
  raise(SIGUSR1);
  printf("SA_ONSTACK: on the alternate stack=%d SS_ONSTACK=%d\n", on_alt, ss_onstack);
  sa(SIGUSR1, h_alt, 0, NULL);
  raise(SIGUSR1);
  printf("without SA_ONSTACK: on the alternate stack=%d SS_ONSTACK=%d\n", on_alt, ss_onstack);
  stack_t cur;
  sigaltstack(NULL, &cur);
  printf("after: flags=%d\n", cur.ss_flags);
  ss.ss_flags = SS_DISABLE;
  CHECK(sigaltstack(&ss, NULL));
  sa(SIGUSR1, h_alt, SA_ONSTACK, NULL);
  raise(SIGUSR1);
  printf("disabled: on the alternate stack=%d\n", on_alt);
  signal(SIGUSR1, SIG_DFL);
}

/* ---- registers across a handler ---- */

static void h_clobber(int s, siginfo_t *si, void *uc) {
  (void)s;
  (void)si;
  (void)uc;
  volatile double d = 3.0;
  for (int i = 0; i < 10; i++) d = d * 1.5 + 0.25;
  unsigned mx = 0x7f80 | (3 << 13); /* all exceptions masked, round toward zero */
  __asm__ volatile(
      "ldmxcsr %0\n\t"
      "pxor %%xmm0, %%xmm0\n\t"
      "pcmpeqd %%xmm1, %%xmm1\n\t"
      "pxor %%xmm8, %%xmm8\n\t"
      "pcmpeqd %%xmm15, %%xmm15\n\t"
      "mov $-1, %%r8\n\t"
      "mov $-1, %%r9\n\t"
      "mov $-1, %%r10\n\t"
      :
      : "m"(mx)
      : "xmm0", "xmm1", "xmm8", "xmm15", "r8", "r9", "r10");
}

static void registers(void) {
  printf("-- registers and FP state restored after a handler\n");
  sa(SIGUSR1, h_clobber, 0, NULL);
  double in[4] = {1.25, -2.5, 3.75e10, 1.0 / 3.0}, out[4] = {0};
  long gp[3] = {0};
  unsigned mx_before = 0, mx_after = 0;
  __asm__ volatile("stmxcsr %0" : "=m"(mx_before));
  long nr = SYS_tgkill;
  long pid = getpid(), tid = gettid_(), sig = SIGUSR1;
  __asm__ volatile(
      "movsd 0(%[in]), %%xmm0\n\t"
      "movsd 8(%[in]), %%xmm1\n\t"
      "movsd 16(%[in]), %%xmm8\n\t"
      "movsd 24(%[in]), %%xmm15\n\t"
      "mov $0x1111, %%r8\n\t"
      "mov $0x2222, %%r9\n\t"
      "mov $0x3333, %%r10\n\t"
      "syscall\n\t"
      "movsd %%xmm0, 0(%[out])\n\t"
      "movsd %%xmm1, 8(%[out])\n\t"
      "movsd %%xmm8, 16(%[out])\n\t"
      "movsd %%xmm15, 24(%[out])\n\t"
      "mov %%r8, 0(%[gp])\n\t"
      "mov %%r9, 8(%[gp])\n\t"
      "mov %%r10, 16(%[gp])\n\t"
      : "+a"(nr)
      : "D"(pid), "S"(tid), "d"(sig), [in] "r"(in), [out] "r"(out), [gp] "r"(gp)
      : "rcx", "r11", "r8", "r9", "r10", "xmm0", "xmm1", "xmm8", "xmm15", "memory");
  __asm__ volatile("stmxcsr %0" : "=m"(mx_after));
  printf("tgkill returned %ld\n", nr);
  printf("xmm kept: %d %d %d %d\n", out[0] == in[0], out[1] == in[1], out[2] == in[2],
         out[3] == in[3]);
  printf("r8 r9 r10: %#lx %#lx %#lx\n", gp[0], gp[1], gp[2]);
  printf("mxcsr kept: %d\n", mx_before == mx_after);
  /* A double computed across many signals. */
  double acc = 0;
  for (int i = 1; i <= 200; i++) {
    acc += 1.0 / i;
    if (i % 20 == 0) raise(SIGUSR1);
  }
  double ref = 0;
  for (int i = 1; i <= 200; i++) ref += 1.0 / i;
  printf("sum unchanged by handlers: %d\n", acc == ref);
  signal(SIGUSR1, SIG_DFL);
}

/* ---- sigsuspend, sigpending, sigtimedwait ---- */

static volatile int hits;
static void h_count(int s) {
  (void)s;
  hits++;
}

static void waiting(void) {
  printf("-- sigsuspend, sigpending, sigtimedwait\n");
  signal(SIGUSR1, h_count);
  sigset_t b, empty, pend;
  sigemptyset(&b);
  sigemptyset(&empty);
  sigaddset(&b, SIGUSR1);
  sigprocmask(SIG_BLOCK, &b, NULL);
  raise(SIGUSR1);
  raise(SIGUSR1);
  sigpending(&pend);
  printf("pending usr1=%d hits=%d\n", sigismember(&pend, SIGUSR1), hits);
  CHECK(sigsuspend(&empty));
  printf("hits=%d blocked again=%d\n", hits, blocked_now(SIGUSR1));
  sigpending(&pend);
  printf("pending usr1=%d\n", sigismember(&pend, SIGUSR1));
  /* Unblocking delivers a pending signal before sigprocmask returns. */
  raise(SIGUSR1);
  sigprocmask(SIG_UNBLOCK, &b, NULL);
  printf("hits=%d\n", hits);

  struct timespec ts = {0, 10 * 1000000};
  sigset_t w;
  sigemptyset(&w);
  sigaddset(&w, SIGUSR2);
  sigaddset(&w, SIGRTMIN);
  sigprocmask(SIG_BLOCK, &w, NULL);
  siginfo_t si;
  CHECK(sigtimedwait(&w, &si, &ts));
  struct timespec zero = {0, 0};
  CHECK(sigtimedwait(&w, &si, &zero));
  kill(getpid(), SIGUSR2);
  int r = sigtimedwait(&w, &si, &ts);
  printf("sigtimedwait: usr2=%d code=%s\n", r == SIGUSR2, code_name(si.si_code));
  sigpending(&pend);
  printf("consumed: pending usr2=%d\n", sigismember(&pend, SIGUSR2));
  for (int v = 1; v <= 3; v++) sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = v});
  raise(SIGUSR2);
  raise(SIGUSR2);
  for (int i = 0; i < 4; i++) {
    r = sigwaitinfo(&w, &si);
    if (r == SIGUSR2)
      printf("sigwaitinfo: SIGUSR2 %s\n", code_name(si.si_code));
    else
      printf("sigwaitinfo: RT%d %s value=%d\n", r - SIGRTMIN, code_name(si.si_code),
             si.si_value.sival_int);
  }
  CHECK(sigtimedwait(&w, &si, &zero));
  struct timespec bad = {0, 1000000000};
  CHECK(sigtimedwait(&w, &si, &bad));
  CHECK(syscall(SYS_rt_sigtimedwait, &w, &si, &zero, 4));
  /* A signal not in the set but unblocked interrupts the wait. */
  hits = 0;
  signal(SIGALRM, h_count);
  struct itimerval it = {{0, 0}, {0, 20000}};
  setitimer(ITIMER_REAL, &it, NULL);
  struct timespec longer = {5, 0};
  CHECK(sigtimedwait(&w, &si, &longer));
  printf("alarm handled=%d\n", hits);
  sigprocmask(SIG_UNBLOCK, &w, NULL);
  signal(SIGUSR1, SIG_DFL);
  signal(SIGALRM, SIG_DFL);
}

/* ---- faults ---- */

static sigjmp_buf jb;
static volatile siginfo_t fault;
static void h_fault(int s, siginfo_t *si, void *uc) {
  (void)s;
  (void)uc;
  fault = *si;
  siglongjmp(jb, 1);
}

static void *ud2_addr, *int3_after;
static volatile int trap_rip_ok, ill_code;
static void h_ill(int s, siginfo_t *si, void *ucv) {
  (void)s;
  ucontext_t *uc = ucv;
  fault = *si;
  ill_code = si->si_code;
  uc->uc_mcontext.gregs[REG_RIP] += 2; /* skip the ud2 */
}

static void h_trap(int s, siginfo_t *si, void *ucv) {
  (void)s;
  ucontext_t *uc = ucv;
  fault = *si;
  trap_rip_ok = (void *)uc->uc_mcontext.gregs[REG_RIP] == int3_after;
}

static void faults(void) {
  printf("-- faults\n");
  char *page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  munmap(page + 4096, 4096);
  mprotect(page, 4096, PROT_READ);
  sa(SIGSEGV, h_fault, 0, NULL);
  volatile char *target = page + 4096 + 123;
  if (sigsetjmp(jb, 1) == 0) {
    *target = 1;
    printf("not reached\n");
  }
  printf("SIGSEGV unmapped: signo=%d SEGV_MAPERR=%d addr ok=%d\n", fault.si_signo,
         fault.si_code == SEGV_MAPERR, fault.si_addr == (void *)target);
  printf("mask restored by siglongjmp: segv blocked=%d\n", blocked_now(SIGSEGV));
  target = page + 77;
  if (sigsetjmp(jb, 1) == 0) {
    *target = 1;
    printf("not reached\n");
  }
  printf("SIGSEGV read-only: SEGV_ACCERR=%d addr ok=%d\n", fault.si_code == SEGV_ACCERR,
         fault.si_addr == (void *)target);
  printf("the page still reads: %d\n", page[77]);
  /* Without restoring the mask (sigsetjmp 0), SIGSEGV stays blocked
   * after the jump. */
  if (sigsetjmp(jb, 0) == 0) {
    *(volatile char *)(page + 4096) = 2;
  }
  printf("after siglongjmp without mask: segv blocked=%d\n", blocked_now(SIGSEGV));
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGSEGV);
  sigprocmask(SIG_UNBLOCK, &s, NULL);

  sa(SIGFPE, h_fault, 0, NULL);
  volatile int zero = 0, num = 7;
  if (sigsetjmp(jb, 1) == 0) {
    num = num / zero;
    printf("not reached\n");
  }
  printf("SIGFPE: signo=%d FPE_INTDIV=%d\n", fault.si_signo, fault.si_code == FPE_INTDIV);
  /* INT_MIN / -1 overflows: also SIGFPE (FPE_INTDIV on x86). */
  volatile int mn = INT32_MIN, m1 = -1;
  if (sigsetjmp(jb, 1) == 0) {
    mn = mn / m1;
    printf("not reached\n");
  }
  printf("SIGFPE overflow: code is FPE_INTDIV=%d\n", fault.si_code == FPE_INTDIV);

  sa(SIGILL, h_ill, 0, NULL);
  __asm__ volatile(
      "lea 1f(%%rip), %%rax\n\t"
      "mov %%rax, %0\n\t"
      "1: ud2\n\t"
      : "=m"(ud2_addr)
      :
      : "rax", "memory");
  printf("SIGILL: signo=%d ILL_ILLOPN=%d addr ok=%d (continued after ud2)\n", fault.si_signo,
         ill_code == ILL_ILLOPN, fault.si_addr == ud2_addr);

  sa(SIGTRAP, h_trap, 0, NULL);
  __asm__ volatile(
      "lea 1f(%%rip), %%rax\n\t"
      "mov %%rax, %0\n\t"
      "int3\n\t"
      "1:\n\t"
      : "=m"(int3_after)
      :
      : "rax", "memory");
  printf("SIGTRAP: signo=%d code=%s rip after int3=%d\n", fault.si_signo,
         code_name(fault.si_code), trap_rip_ok);
  signal(SIGSEGV, SIG_DFL);
  signal(SIGFPE, SIG_DFL);
  signal(SIGILL, SIG_DFL);
  signal(SIGTRAP, SIG_DFL);

  /* A fault with its signal blocked or ignored kills the process. */
  int st;
  pid_t c = xfork();
  if (c == 0) {
    prctl(PR_SET_DUMPABLE, 0);
    sa(SIGSEGV, h_fault, 0, NULL);
    sigprocmask(SIG_BLOCK, &s, NULL);
    *(volatile char *)(page + 4096) = 3;
    _exit(0);
  }
  EXPECT(waitpid(c, &st, 0) == c);
  printf("blocked SIGSEGV on a fault: signaled=%d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));
  c = xfork();
  if (c == 0) {
    prctl(PR_SET_DUMPABLE, 0);
    signal(SIGSEGV, SIG_IGN);
    *(volatile char *)(page + 4096) = 3;
    _exit(0);
  }
  EXPECT(waitpid(c, &st, 0) == c);
  printf("ignored SIGSEGV on a fault: signaled=%d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));
  /* A blocked kill()ed SIGSEGV is just pending. */
  sigprocmask(SIG_BLOCK, &s, NULL);
  raise(SIGSEGV);
  sigset_t pend;
  sigpending(&pend);
  printf("sent SIGSEGV while blocked is pending: %d\n", sigismember(&pend, SIGSEGV));
  signal(SIGSEGV, SIG_IGN); /* discards it */
  sigpending(&pend);
  printf("after SIG_IGN: pending=%d\n", sigismember(&pend, SIGSEGV));
  signal(SIGSEGV, SIG_DFL);
  sigprocmask(SIG_UNBLOCK, &s, NULL);
  munmap(page, 4096);
}

/* ---- default actions and SIGCHLD ---- */

static volatile siginfo_t chld;
static volatile int chld_count;
static void h_chld(int s, siginfo_t *si, void *uc) {
  (void)s;
  (void)uc;
  chld = *si;
  chld_count++;
}

static pid_t blocked_child(void) {
  pid_t c = xfork();
  if (c == 0) {
    for (;;) pause();
  }
  return c;
}

static void defaults(void) {
  int st;
  printf("-- default actions and SIGCHLD\n");
  sigset_t cs, empty;
  sigemptyset(&cs);
  sigemptyset(&empty);
  sigaddset(&cs, SIGCHLD);
  sigprocmask(SIG_BLOCK, &cs, NULL);
  sa(SIGCHLD, h_chld, 0, NULL);
  int sigs[] = {SIGTERM, SIGKILL, SIGINT, SIGHUP, SIGUSR1, SIGALRM, SIGQUIT, SIGPIPE};
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    pid_t c = blocked_child();
    kill(c, sigs[i]);
    EXPECT(waitpid(c, &st, 0) == c);
    printf("signal %d: signaled=%d sig=%d\n", sigs[i], WIFSIGNALED(st), WTERMSIG(st));
  }
  /* Ignored by default: the child lives on. */
  pid_t c = blocked_child();
  kill(c, SIGURG);
  kill(c, SIGWINCH);
  kill(c, SIGCHLD);
  kill(c, SIGCONT);
  CHECK(waitpid(c, &st, WNOHANG));
  kill(c, SIGKILL);
  waitpid(c, &st, 0);
  /* SIGCHLD's siginfo for an exit. */
  sigsuspend(&empty); /* a SIGCHLD is pending from the children above */
  chld_count = 0;
  c = xfork();
  if (c == 0) _exit(5);
  EXPECT(waitpid(c, &st, 0) == c);
  sigsuspend(&empty);
  printf("SIGCHLD: n=%d code=%s status=%d pid ok=%d\n", chld_count,
         chld.si_code == CLD_EXITED ? "CLD_EXITED" : "?", chld.si_status, chld.si_pid == c);
  /* A stop: SIGCHLD, unless SA_NOCLDSTOP. */
  c = blocked_child();
  kill(c, SIGSTOP);
  EXPECT(waitpid(c, &st, WUNTRACED) == c);
  printf("stopped: %d sig=%d\n", WIFSTOPPED(st), WSTOPSIG(st));
  sigset_t pend;
  sigpending(&pend);
  printf("SIGCHLD pending after the stop: %d\n", sigismember(&pend, SIGCHLD));
  chld_count = 0;
  sigsuspend(&empty);
  printf("SIGCHLD: n=%d CLD_STOPPED=%d status=%d\n", chld_count, chld.si_code == CLD_STOPPED,
         chld.si_status);
  kill(c, SIGCONT);
  EXPECT(waitpid(c, &st, WCONTINUED) == c);
  printf("continued: %d\n", WIFCONTINUED(st));
  sigsuspend(&empty);
  printf("SIGCHLD: CLD_CONTINUED=%d\n", chld.si_code == CLD_CONTINUED);
  sa(SIGCHLD, h_chld, SA_NOCLDSTOP, NULL);
  kill(c, SIGSTOP);
  EXPECT(waitpid(c, &st, WUNTRACED) == c);
  sigpending(&pend);
  printf("SA_NOCLDSTOP: SIGCHLD pending after the stop: %d\n", sigismember(&pend, SIGCHLD));
  kill(c, SIGKILL);
  EXPECT(waitpid(c, &st, 0) == c);
  printf("killed while stopped: sig=%d\n", WTERMSIG(st));
  sigsuspend(&empty);
  printf("SIGCHLD: CLD_KILLED=%d status=%d\n", chld.si_code == CLD_KILLED, chld.si_status);
  signal(SIGCHLD, SIG_DFL);
  sigprocmask(SIG_UNBLOCK, &cs, NULL);
  /* A handled SIGTERM in a child: the handler runs, no termination. */
  c = xfork();
  if (c == 0) {
    sa(SIGTERM, record, 0, NULL);
    raise(SIGTERM);
    _exit(last_count == 1 ? 6 : 7);
  }
  EXPECT(waitpid(c, &st, 0) == c);
  printf("handled SIGTERM: code=%d\n", WEXITSTATUS(st));
}

/* ---- kill to groups, and errors ---- */

static void groups(void) {
  int st;
  printf("-- kill to process groups\n");
  pid_t a = blocked_child(), b = blocked_child();
  setpgid(a, a);
  setpgid(b, a);
  CHECK(kill(-a, SIGTERM));
  EXPECT(waitpid(a, &st, 0) == a);
  printf("a: sig=%d\n", WTERMSIG(st));
  EXPECT(waitpid(b, &st, 0) == b);
  printf("b: sig=%d\n", WTERMSIG(st));
  CHECK(kill(-a, 0));
  /* kill(0): the caller's group, the caller included. */
  pid_t c = xfork();
  if (c == 0) {
    setpgid(0, 0);
    pid_t g = fork();
    if (g == 0) {
      for (;;) pause();
    }
    sa(SIGTERM, record, 0, NULL);
    kill(0, SIGTERM);
    int s;
    waitpid(g, &s, 0);
    _exit(WIFSIGNALED(s) && WTERMSIG(s) == SIGTERM && last_count == 1 &&
                  last.si_code == SI_USER
              ? 8
              : 9);
  }
  EXPECT(waitpid(c, &st, 0) == c);
  printf("kill(0, SIGTERM) reached both: code=%d\n", WEXITSTATUS(st));

  printf("-- errors\n");
  CHECK(kill(getpid(), 0));
  CHECK(kill(c, 0)); /* reaped */
  CHECK(kill(0x3fffffff, 0));
  CHECK(kill(-0x3fffffff, SIGTERM));
  CHECK(kill(INT32_MIN, 0));
  CHECK(kill(getpid(), 65));
  CHECK(kill(getpid(), -1));
  CHECK(syscall(SYS_tkill, 0, SIGUSR1));
  CHECK(syscall(SYS_tkill, -1, SIGUSR1));
  CHECK(syscall(SYS_tkill, 0x3fffffff, SIGUSR1));
  CHECK(syscall(SYS_tgkill, getpid(), 0x3fffffff, 0));
  CHECK(syscall(SYS_tgkill, getpid(), gettid_(), 65));
  CHECK(sigqueue(0x3fffffff, SIGUSR1, (union sigval){0}));
  siginfo_t si = {0};
  si.si_code = SI_TKILL; /* not allowed from user space to another task */
  CHECK(syscall(SYS_rt_sigqueueinfo, 0x3fffffff, SIGUSR1, &si));
  CHECK(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, (void *)8));
  struct sigaction act = {0};
  act.sa_handler = SIG_IGN;
  CHECK(sigaction(SIGKILL, &act, NULL));
  CHECK(sigaction(SIGSTOP, &act, NULL));
  CHECK(sigaction(0, &act, NULL));
  CHECK(sigaction(65, &act, NULL));
}

int main(void) {
  setvbuf(stdout, NULL, _IOFBF, 8192);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  infos();
  masks();
  alt();
  registers();
  waiting();
  faults();
  defaults();
  groups();
  printf("-- done\n");
  return 0;
}
