/* Timers and CPU clocks: setitimer/getitimer (ITIMER_REAL one-shot and
 * periodic with SIGALRM, ITIMER_VIRTUAL and ITIMER_PROF on a busy loop,
 * old values, errors), alarm's return values, POSIX timers (SIGEV_SIGNAL
 * with si_code SI_TIMER and the value, SIGEV_NONE read back with
 * timer_gettime, absolute times, overruns, delete, errors),
 * clock_nanosleep with TIMER_ABSTIME, the CPU-time clocks, times() and
 * getrusage for the process, the thread and reaped children. Only
 * relations between times are printed. */
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static long long ns(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Spins until this process has used `ms` more of CPU time, or until
 * `*stop` becomes at least `want`. */
static volatile int sink;
static void burn(long ms, volatile int *stop, int want) {
  long long end = ns(CLOCK_PROCESS_CPUTIME_ID) + ms * 1000000LL;
  while (ns(CLOCK_PROCESS_CPUTIME_ID) < end) {
    for (int i = 0; i < 10000; i++) sink += i;
    if (stop && *stop >= want) return;
  }
}

static volatile int alrm, vtalrm, prof;
static void on_alrm(int s) {
  (void)s;
  alrm++;
}
static void on_vtalrm(int s) {
  (void)s;
  vtalrm++;
}
static void on_prof(int s) {
  (void)s;
  prof++;
}

static volatile siginfo_t tinfo;
static volatile int tcount;
static void on_timer(int s, siginfo_t *si, void *uc) {
  (void)s;
  (void)uc;
  tinfo = *si;
  tcount++;
}

/* Waits (blocked, then sigsuspend) until *n reaches want. */
static void await(int sig, volatile int *n, int want) {
  sigset_t b, old;
  sigemptyset(&b);
  sigaddset(&b, sig);
  sigprocmask(SIG_BLOCK, &b, &old);
  sigdelset(&old, sig);
  while (*n < want) sigsuspend(&old);
  sigprocmask(SIG_UNBLOCK, &b, NULL);
}

static long tv_us(struct timeval t) { return t.tv_sec * 1000000L + t.tv_usec; }

static void itimers(void) {
  printf("-- setitimer and getitimer\n");
  signal(SIGALRM, on_alrm);
  struct itimerval it = {{0, 0}, {0, 30000}}, old, cur;
  CHECK(getitimer(ITIMER_REAL, &cur));
  printf("initially: value=%ld interval=%ld\n", tv_us(cur.it_value), tv_us(cur.it_interval));
  CHECK(setitimer(ITIMER_REAL, &it, &old));
  printf("old: value=%ld\n", tv_us(old.it_value));
  CHECK(getitimer(ITIMER_REAL, &cur));
  EXPECT(tv_us(cur.it_value) > 0 && tv_us(cur.it_value) <= 30000);
  await(SIGALRM, &alrm, 1);
  printf("one-shot fired: %d\n", alrm);
  CHECK(getitimer(ITIMER_REAL, &cur));
  printf("after: value=%ld interval=%ld\n", tv_us(cur.it_value), tv_us(cur.it_interval));
  /* Periodic: three signals, then disarm and read the old setting. */
  alrm = 0;
  it = (struct itimerval){{0, 5000}, {0, 5000}};
  CHECK(setitimer(ITIMER_REAL, &it, NULL));
  await(SIGALRM, &alrm, 3);
  struct itimerval zero = {{0, 0}, {0, 0}};
  CHECK(setitimer(ITIMER_REAL, &zero, &old));
  printf("periodic: fired>=3: %d old interval=%ld value in (0,5000]: %d\n", alrm >= 3,
         tv_us(old.it_interval), tv_us(old.it_value) > 0 && tv_us(old.it_value) <= 5000);
  CHECK(getitimer(ITIMER_REAL, &cur));
  printf("disarmed: value=%ld interval=%ld\n", tv_us(cur.it_value), tv_us(cur.it_interval));

  printf("-- ITIMER_VIRTUAL and ITIMER_PROF\n");
  signal(SIGVTALRM, on_vtalrm);
  signal(SIGPROF, on_prof);
  it = (struct itimerval){{0, 10000}, {0, 10000}};
  CHECK(setitimer(ITIMER_VIRTUAL, &it, NULL));
  CHECK(setitimer(ITIMER_PROF, &it, NULL));
  CHECK(getitimer(ITIMER_VIRTUAL, &cur));
  EXPECT(tv_us(cur.it_interval) == 10000 && tv_us(cur.it_value) > 0);
  burn(1500, &vtalrm, 2);
  burn(1500, &prof, 2);
  CHECK(setitimer(ITIMER_VIRTUAL, &zero, NULL));
  CHECK(setitimer(ITIMER_PROF, &zero, NULL));
  printf("SIGVTALRM>0: %d SIGPROF>0: %d\n", vtalrm > 0, prof > 0);
  /* Sleeping uses no CPU: a virtual timer does not fire. */
  vtalrm = 0;
  it = (struct itimerval){{0, 0}, {0, 1000}};
  CHECK(setitimer(ITIMER_VIRTUAL, &it, NULL));
  usleep(30000);
  CHECK(getitimer(ITIMER_VIRTUAL, &cur));
  printf("still armed after sleeping: %d\n", tv_us(cur.it_value) > 0 || vtalrm > 0);
  CHECK(setitimer(ITIMER_VIRTUAL, &zero, NULL));

  printf("-- errors\n");
  CHECK(setitimer(3, &it, NULL));
  CHECK(setitimer(-1, &it, NULL));
  CHECK(getitimer(3, &cur));
  struct itimerval bad = {{0, 0}, {0, 1000000}};
  CHECK(setitimer(ITIMER_REAL, &bad, NULL));
  bad = (struct itimerval){{0, -1}, {0, 1000}};
  CHECK(setitimer(ITIMER_REAL, &bad, NULL));
  bad = (struct itimerval){{0, 0}, {-1, 0}};
  CHECK(setitimer(ITIMER_REAL, &bad, NULL));
  CHECK(syscall(SYS_setitimer, ITIMER_REAL, (void *)8, NULL));
  CHECK(syscall(SYS_getitimer, ITIMER_REAL, (void *)8));
  /* A NULL new value: EFAULT on this kernel? Print what it is. */
  CHECK(syscall(SYS_setitimer, ITIMER_REAL, NULL, &cur));
  CHECK(setitimer(ITIMER_REAL, &zero, NULL));
}

static void alarms(void) {
  printf("-- alarm\n");
  signal(SIGALRM, on_alrm);
  CHECK(alarm(10));
  CHECK(alarm(5));
  CHECK(alarm(0));
  CHECK(alarm(0));
  /* alarm and ITIMER_REAL are the same timer. */
  CHECK(alarm(7));
  struct itimerval cur;
  getitimer(ITIMER_REAL, &cur);
  printf("itimer after alarm(7): %d\n", cur.it_value.tv_sec == 6 || cur.it_value.tv_sec == 7);
  CHECK(alarm(0));
  /* A sub-second remainder rounds up: an alarm never reports 0 while
   * armed. */
  struct itimerval small = {{0, 0}, {0, 300000}};
  setitimer(ITIMER_REAL, &small, NULL);
  CHECK(alarm(0));
  CHECK(alarm(0));
}

static void posix_timers(void) {
  printf("-- POSIX timers\n");
  struct sigaction sa = {0};
  sa.sa_sigaction = on_timer;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGRTMIN, &sa, NULL);
  struct sigevent ev = {0};
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGRTMIN;
  ev.sigev_value.sival_int = 77;
  timer_t t;
  CHECK(timer_create(CLOCK_MONOTONIC, &ev, &t));
  struct itimerspec its = {{0, 0}, {0, 20 * 1000000}}, cur, old;
  CHECK(timer_gettime(t, &cur));
  printf("unarmed: %ld %ld\n", cur.it_value.tv_nsec, cur.it_interval.tv_nsec);
  CHECK(timer_settime(t, 0, &its, NULL));
  CHECK(timer_gettime(t, &cur));
  EXPECT(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 &&
         cur.it_value.tv_nsec <= 20 * 1000000);
  await(SIGRTMIN, &tcount, 1);
  printf("fired: n=%d signo ok=%d SI_TIMER=%d value=%d\n", tcount, tinfo.si_signo == SIGRTMIN,
         tinfo.si_code == SI_TIMER, tinfo.si_value.sival_int);
  CHECK(timer_gettime(t, &cur));
  printf("after: %ld\n", cur.it_value.tv_sec * 1000000000L + cur.it_value.tv_nsec);
  CHECK(timer_getoverrun(t));

  /* Periodic with the signal blocked: one signal pending, overruns. */
  sigset_t b;
  sigemptyset(&b);
  sigaddset(&b, SIGRTMIN);
  sigprocmask(SIG_BLOCK, &b, NULL);
  its = (struct itimerspec){{0, 1000000}, {0, 1000000}};
  CHECK(timer_settime(t, 0, &its, &old));
  usleep(50000);
  siginfo_t si;
  int r = sigwaitinfo(&b, &si);
  printf("sigwaitinfo: signo ok=%d SI_TIMER=%d overrun>0: %d\n", r == SIGRTMIN,
         si.si_code == SI_TIMER, si.si_overrun > 0);
  EXPECT(timer_getoverrun(t) > 0);
  struct itimerspec off = {{0, 0}, {0, 0}};
  CHECK(timer_settime(t, 0, &off, &old));
  printf("old interval=%ld\n", old.it_interval.tv_nsec);
  /* Disarming drops no already queued signal; drain any. */
  struct timespec z = {0, 0};
  while (sigtimedwait(&b, &si, &z) > 0) {
  }
  sigprocmask(SIG_UNBLOCK, &b, NULL);
  CHECK(timer_delete(t));
  CHECK(timer_delete(t));
  CHECK(timer_gettime(t, &cur));
  CHECK(timer_settime(t, 0, &its, NULL));

  /* SIGEV_NONE: nothing delivered, the time still runs. */
  ev.sigev_notify = SIGEV_NONE;
  CHECK(timer_create(CLOCK_REALTIME, &ev, &t));
  its = (struct itimerspec){{3, 0}, {10, 0}};
  CHECK(timer_settime(t, 0, &its, NULL));
  CHECK(timer_gettime(t, &cur));
  EXPECT(cur.it_value.tv_sec <= 10 && (cur.it_value.tv_sec >= 9));
  printf("interval=%ld\n", (long)cur.it_interval.tv_sec);
  /* An absolute time in the past expires at once; one-shot: disarmed. */
  its = (struct itimerspec){{0, 0}, {1, 0}};
  CHECK(timer_settime(t, TIMER_ABSTIME, &its, NULL));
  CHECK(timer_gettime(t, &cur));
  printf("past absolute: %ld\n", cur.it_value.tv_sec * 1000000000L + cur.it_value.tv_nsec);
  /* An absolute time ahead. */
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  its = (struct itimerspec){{0, 0}, {now.tv_sec + 5, now.tv_nsec}};
  CHECK(timer_settime(t, TIMER_ABSTIME, &its, NULL));
  CHECK(timer_gettime(t, &cur));
  EXPECT(cur.it_value.tv_sec >= 4 && cur.it_value.tv_sec <= 5);
  CHECK(timer_delete(t));

  /* A CPU-time timer, and a NULL sigevent (SIGALRM, the id as value). */
  CHECK(timer_create(CLOCK_PROCESS_CPUTIME_ID, NULL, &t));
  CHECK(timer_delete(t));

  printf("-- errors\n");
  ev.sigev_notify = SIGEV_SIGNAL;
  CHECK(timer_create(99, &ev, &t));
  CHECK(timer_create(-1, &ev, &t));
  ev.sigev_notify = 99;
  CHECK(timer_create(CLOCK_MONOTONIC, &ev, &t));
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = 0;
  CHECK(timer_create(CLOCK_MONOTONIC, &ev, &t));
  ev.sigev_signo = 65;
  CHECK(timer_create(CLOCK_MONOTONIC, &ev, &t));
  ev.sigev_signo = SIGRTMIN;
  CHECK(timer_create(CLOCK_MONOTONIC, &ev, &t));
  its = (struct itimerspec){{0, 0}, {0, 1000000000}};
  CHECK(timer_settime(t, 0, &its, NULL));
  its = (struct itimerspec){{0, -1}, {0, 1000}};
  CHECK(timer_settime(t, 0, &its, NULL));
  its = (struct itimerspec){{0, 0}, {0, 0}};
  CHECK(timer_settime(t, 0x100, &its, NULL));
  CHECK(syscall(SYS_timer_settime, t, 0, (void *)8, NULL));
  CHECK(syscall(SYS_timer_gettime, t, (void *)8));
  CHECK(syscall(SYS_timer_gettime, 12345, &cur));
  CHECK(syscall(SYS_timer_getoverrun, 12345));
  CHECK(syscall(SYS_timer_delete, 12345));
  CHECK(timer_delete(t));
  signal(SIGRTMIN, SIG_DFL);
}

static void sleeps(void) {
  printf("-- clock_nanosleep\n");
  struct timespec target;
  clock_gettime(CLOCK_MONOTONIC, &target);
  target.tv_nsec += 20 * 1000000;
  if (target.tv_nsec >= 1000000000) target.tv_sec++, target.tv_nsec -= 1000000000;
  long long want = target.tv_sec * 1000000000LL + target.tv_nsec;
  CHECK(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, NULL));
  EXPECT(ns(CLOCK_MONOTONIC) >= want);
  clock_gettime(CLOCK_REALTIME, &target);
  target.tv_nsec += 10 * 1000000;
  if (target.tv_nsec >= 1000000000) target.tv_sec++, target.tv_nsec -= 1000000000;
  want = target.tv_sec * 1000000000LL + target.tv_nsec;
  CHECK(clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &target, NULL));
  EXPECT(ns(CLOCK_REALTIME) >= want);
  struct timespec past = {1, 0};
  CHECK(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL));
  struct timespec rel = {0, 5 * 1000000};
  long long t0 = ns(CLOCK_MONOTONIC);
  CHECK(clock_nanosleep(CLOCK_MONOTONIC, 0, &rel, NULL));
  EXPECT(ns(CLOCK_MONOTONIC) - t0 >= 5000000);
  CHECK(clock_nanosleep(CLOCK_BOOTTIME, 0, &rel, NULL));
  /* clock_nanosleep returns the error number instead of setting errno. */
  CHECK(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &rel, NULL));
  CHECK(clock_nanosleep(99, 0, &rel, NULL));
  struct timespec bad = {0, 1000000000};
  CHECK(clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL));
  CHECK(clock_nanosleep(CLOCK_MONOTONIC, 0x10, &rel, NULL));
}

static void cpu(void) {
  printf("-- CPU time\n");
  long long p0 = ns(CLOCK_PROCESS_CPUTIME_ID), t0 = ns(CLOCK_THREAD_CPUTIME_ID);
  struct tms tm0;
  times(&tm0);
  burn(100, NULL, 0);
  long long p1 = ns(CLOCK_PROCESS_CPUTIME_ID), t1 = ns(CLOCK_THREAD_CPUTIME_ID);
  long long p2 = ns(CLOCK_PROCESS_CPUTIME_ID);
  EXPECT(p1 - p0 >= 100000000);
  EXPECT(t1 - t0 >= 90000000);
  EXPECT(p2 >= t1); /* one thread: the process clock is at least the thread's */
  struct timespec res;
  CHECK(clock_getres(CLOCK_PROCESS_CPUTIME_ID, &res));
  EXPECT(res.tv_sec == 0 && res.tv_nsec > 0);
  /* The clock of our own pid and thread through clock_getcpuclockid. */
  clockid_t c;
  CHECK(clock_getcpuclockid(getpid(), &c));
  struct timespec v;
  CHECK(clock_gettime(c, &v));
  EXPECT(v.tv_sec * 1000000000LL + v.tv_nsec >= p1);
  struct tms tm1;
  clock_t r = times(&tm1);
  EXPECT(r != (clock_t)-1);
  EXPECT(tm1.tms_utime + tm1.tms_stime > tm0.tms_utime + tm0.tms_stime);
  struct rusage ru;
  CHECK(getrusage(RUSAGE_SELF, &ru));
  EXPECT(ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec > 0);
  CHECK(getrusage(RUSAGE_THREAD, &ru));
  EXPECT(ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec > 0);
  CHECK(getrusage(RUSAGE_CHILDREN, &ru));
  long before = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec +
                ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
  clock_t cbefore = tm1.tms_cutime + tm1.tms_cstime;
  /* A child's CPU time counts for us once it is reaped. */
  fflush(stdout);
  pid_t k = fork();
  if (k == 0) {
    burn(100, NULL, 0);
    _exit(0);
  }
  int st;
  waitpid(k, &st, 0);
  CHECK(getrusage(RUSAGE_CHILDREN, &ru));
  EXPECT(ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000L +
             ru.ru_stime.tv_usec - before >=
         50000);
  times(&tm1);
  EXPECT(tm1.tms_cutime + tm1.tms_cstime > cbefore);
  CHECK(getrusage(2, &ru));
  CHECK(getrusage(-3, &ru));
  CHECK(syscall(SYS_getrusage, RUSAGE_SELF, (void *)8));
  CHECK(syscall(SYS_times, (void *)8));
  CHECK(syscall(SYS_times, NULL) == -1 ? -1 : 0);
}

int main(void) {
  setvbuf(stdout, NULL, _IOFBF, 4096);
  itimers();
  alarms();
  posix_timers();
  sleeps();
  cpu();
  printf("-- done\n");
  return 0;
}
