/* cflags: -pthread */
/* Timers and processes: itimers and POSIX timers are not inherited by
 * fork; exec keeps the itimers and deletes the POSIX timers; a SIGALRM
 * from a timer ends a child with no handler; timer ids count up per
 * process, failed creations use ids up; SIGEV_THREAD_ID checks and
 * targets its thread; timers and clock_nanosleep on the CPU clocks of
 * another thread and of the process; SIGALRM interrupting a blocking
 * read, with and without SA_RESTART. Only relations between times are
 * printed. */
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static volatile int alrm, usr1, usr1_tid;
static void on_alrm(int s) {
  (void)s;
  alrm++;
}
static void on_usr1(int s) {
  (void)s;
  usr1_tid = gettid();
  usr1++;
}

static volatile int stop;
static void *burner(void *a) {
  (void)a;
  while (!stop) {
  }
  return NULL;
}

static long long ts_ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

static void after_exec(void) {
  printf("-- after exec\n");
  struct itimerval c;
  CHECK(getitimer(ITIMER_REAL, &c));
  printf("ITIMER_REAL kept: %d interval=%ld\n", c.it_value.tv_sec > 0, (long)c.it_interval.tv_sec);
  struct itimerspec s;
  CHECK(syscall(SYS_timer_gettime, 0, &s));
  CHECK(syscall(SYS_timer_delete, 0));
  /* The process is the same: its ids go on. */
  int id;
  CHECK(syscall(SYS_timer_create, CLOCK_MONOTONIC, NULL, &id));
  printf("id after exec: %d\n", id);
  struct itimerval zero = {{0, 0}, {0, 0}};
  CHECK(setitimer(ITIMER_REAL, &zero, NULL));
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOFBF, 4096);
  if (argc > 1) {
    after_exec();
    return 0;
  }
  printf("-- ids and fork\n");
  struct sigevent ev = {0};
  ev.sigev_notify = SIGEV_NONE;
  int a, b, c;
  CHECK(syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &a));
  CHECK(syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &b));
  printf("ids: %d %d\n", a, b);
  ev.sigev_notify = 99;
  CHECK(syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &c));
  ev.sigev_notify = SIGEV_NONE;
  CHECK(syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, (void *)8));
  CHECK(syscall(SYS_timer_delete, a));
  CHECK(syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &c));
  printf("next id: %d\n", c);
  CHECK(syscall(SYS_timer_delete, b));
  CHECK(syscall(SYS_timer_delete, c));
  struct itimerval it = {{1, 0}, {100, 0}}; /* interval, value */
  CHECK(setitimer(ITIMER_REAL, &it, NULL));
  CHECK(setitimer(ITIMER_VIRTUAL, &it, NULL));
  CHECK(setitimer(ITIMER_PROF, &it, NULL));
  CHECK(syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &a));
  fflush(stdout);
  pid_t k = fork();
  if (k == 0) {
    struct itimerval cur;
    for (int w = 0; w < 3; w++) {
      getitimer(w, &cur);
      printf("child itimer %d: %ld %ld\n", w, (long)cur.it_value.tv_sec,
             (long)cur.it_interval.tv_sec);
    }
    struct itimerspec s;
    CHECK(syscall(SYS_timer_gettime, a, &s));
    int x;
    CHECK(syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &x));
    printf("child's first id: %d\n", x);
    fflush(stdout);
    _exit(0);
  }
  int st;
  waitpid(k, &st, 0);
  struct itimerval zero = {{0, 0}, {0, 0}};
  CHECK(setitimer(ITIMER_REAL, &zero, NULL));
  CHECK(setitimer(ITIMER_VIRTUAL, &zero, NULL));
  CHECK(setitimer(ITIMER_PROF, &zero, NULL));
  CHECK(syscall(SYS_timer_delete, a));

  printf("-- a timer's SIGALRM ends a child\n");
  fflush(stdout);
  k = fork();
  if (k == 0) {
    int id;
    syscall(SYS_timer_create, CLOCK_MONOTONIC, NULL, &id);
    struct itimerspec s = {{0, 0}, {0, 5000000}};
    syscall(SYS_timer_settime, id, 0, &s, NULL);
    for (;;) pause();
  }
  waitpid(k, &st, 0);
  printf("signaled=%d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));
  fflush(stdout);
  k = fork();
  if (k == 0) {
    struct itimerval v = {{0, 0}, {0, 5000}};
    setitimer(ITIMER_VIRTUAL, &v, NULL);
    for (;;) {
    }
  }
  waitpid(k, &st, 0);
  printf("signaled=%d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));

  printf("-- restart rules\n");
  int p[2];
  CHECK(pipe(p));
  struct sigaction sa = {0};
  sa.sa_handler = on_alrm;
  sigaction(SIGALRM, &sa, NULL);
  it = (struct itimerval){{0, 0}, {0, 20000}};
  CHECK(setitimer(ITIMER_REAL, &it, NULL));
  char ch;
  CHECK(read(p[0], &ch, 1));
  printf("handled: %d\n", alrm);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  alrm = 0;
  CHECK(setitimer(ITIMER_REAL, &it, NULL));
  fflush(stdout);
  k = fork();
  if (k == 0) {
    /* The write comes well after the alarm. */
    usleep(200000);
    write(p[1], "x", 1);
    _exit(0);
  }
  CHECK(read(p[0], &ch, 1));
  printf("handled: %d\n", alrm);
  waitpid(k, &st, 0);
  alrm = 0;
  CHECK(setitimer(ITIMER_REAL, &it, NULL));
  struct timespec req = {1, 0}, rem = {0, 0};
  CHECK(nanosleep(&req, &rem));
  printf("handled: %d rem in (0,1s): %d\n", alrm, rem.tv_sec == 0 && rem.tv_nsec > 0);

  printf("-- threads\n");
  pthread_t th;
  pthread_create(&th, NULL, burner, NULL);
  clockid_t tc;
  CHECK(pthread_getcpuclockid(th, &tc));
  /* SIGEV_THREAD_ID: a thread of this process only. */
  signal(SIGUSR1, on_usr1);
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = SIGUSR1;
  ev._sigev_un._tid = 999999;
  int t1;
  CHECK(syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &t1));
  ev._sigev_un._tid = gettid();
  ev.sigev_signo = 0;
  CHECK(syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &t1));
  ev.sigev_signo = SIGUSR1;
  /* A timer on the burning thread's CPU clock, signalling this thread. */
  CHECK(syscall(SYS_timer_create, tc, &ev, &t1));
  struct itimerspec its = {{0, 5000000}, {0, 5000000}};
  CHECK(syscall(SYS_timer_settime, t1, 0, &its, NULL));
  while (usr1 < 3) pause();
  CHECK(syscall(SYS_timer_delete, t1));
  printf("thread-clock timer: to this thread: %d\n", usr1_tid == gettid());
  /* Sleeps on the other thread's clock (absolute) and on the process's
   * clock (relative) end when that clock gets there. */
  struct timespec now, target;
  clock_gettime(tc, &now);
  target = now;
  target.tv_nsec += 20000000;
  if (target.tv_nsec >= 1000000000) target.tv_sec++, target.tv_nsec -= 1000000000;
  CHECK(clock_nanosleep(tc, TIMER_ABSTIME, &target, NULL));
  clock_gettime(tc, &now);
  EXPECT(ts_ns(now) >= ts_ns(target));
  struct timespec p0, p1, rel = {0, 30000000};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &p0);
  CHECK(clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, 0, &rel, NULL));
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &p1);
  EXPECT(ts_ns(p1) - ts_ns(p0) >= 30000000);
  /* A process CPU-time timer with the signal blocked: one signal, with
   * overruns. */
  sigset_t bl;
  sigemptyset(&bl);
  sigaddset(&bl, SIGUSR1);
  sigprocmask(SIG_BLOCK, &bl, NULL);
  /* To this thread: the burner does not block the signal. */
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_value.sival_int = 5;
  CHECK(syscall(SYS_timer_create, CLOCK_PROCESS_CPUTIME_ID, &ev, &t1));
  its = (struct itimerspec){{0, 2000000}, {0, 2000000}};
  CHECK(syscall(SYS_timer_settime, t1, 0, &its, NULL));
  siginfo_t si;
  int r = sigwaitinfo(&bl, &si);
  /* The burner runs meanwhile: let more periods pass. */
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &p0);
  do clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &p1);
  while (ts_ns(p1) - ts_ns(p0) < 30000000);
  r = sigwaitinfo(&bl, &si);
  printf("cpu timer: signo ok=%d SI_TIMER=%d value=%d overrun>0: %d\n", r == SIGUSR1,
         si.si_code == SI_TIMER, si.si_value.sival_int, si.si_overrun > 0);
  EXPECT(syscall(SYS_timer_getoverrun, t1) > 0);
  CHECK(syscall(SYS_timer_delete, t1));
  sigprocmask(SIG_UNBLOCK, &bl, NULL);
  stop = 1;
  pthread_join(th, NULL);

  printf("-- exec\n");
  it = (struct itimerval){{100, 0}, {100, 0}};
  CHECK(setitimer(ITIMER_REAL, &it, NULL));
  ev.sigev_notify = SIGEV_NONE;
  CHECK(syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &a));
  printf("last id before exec: %d\n", a);
  fflush(stdout);
  execl("/proc/self/exe", argv[0], "again", (char *)NULL);
  printf("exec failed\n");
  return 1;
}
