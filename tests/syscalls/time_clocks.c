/* clock_gettime and clock_getres for every clock id (the raw syscalls, not
 * the vDSO), CPU-time clocks named by pid and tid, gettimeofday, time.
 * Only success and monotonicity are printed, never times. */
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#define BAD ((void *)8)
#define KADDR ((void *)0xffff800000000000UL)

/* The kernel's encoding of CPU-time clocks of other processes/threads. */
#define CPUCLOCK(pid, thread, which) ((~(clockid_t)(pid) << 3) | ((thread) ? 4 : 0) | (which))

static char *ro;

static long gettime(clockid_t c, struct timespec *ts) {
  return syscall(SYS_clock_gettime, c, ts);
}

static long getres(clockid_t c, struct timespec *ts) {
  return syscall(SYS_clock_getres, c, ts);
}

static int le(const struct timespec *a, const struct timespec *b) {
  return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec <= b->tv_nsec);
}

static int valid(const struct timespec *t) {
  return t->tv_sec >= 0 && t->tv_nsec >= 0 && t->tv_nsec < 1000000000;
}

static void one(const char *name, clockid_t c) {
  struct timespec a = {-1, -1}, b = {-1, -1}, r = {-1, -1};
  long ra = gettime(c, &a);
  const char *ea = ra < 0 ? strerrorname_np(errno) : "ok";
  long rb = gettime(c, &b);
  long rr = getres(c, &r);
  const char *er = rr < 0 ? strerrorname_np(errno) : "ok";
  printf("%-24s gettime=%s", name, ea);
  if (ra == 0 && rb == 0)
    printf(" valid=%d monotonic=%d", valid(&a) && valid(&b), le(&a, &b));
  printf(" getres=%s", er);
  if (rr == 0)
    printf(" res_ok=%d", r.tv_sec == 0 && r.tv_nsec > 0 && r.tv_nsec <= 10000000);
  printf("\n");
}

static void spin(void) {
  volatile unsigned long x = 0;
  for (unsigned long i = 0; i < 20000000; i++)
    x += i;
}

int main(void) {
  ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ro == MAP_FAILED)
    return 1;
  int pid = getpid(), tid = gettid();

  printf("-- clocks\n");
  one("REALTIME", CLOCK_REALTIME);
  one("MONOTONIC", CLOCK_MONOTONIC);
  one("PROCESS_CPUTIME_ID", CLOCK_PROCESS_CPUTIME_ID);
  one("THREAD_CPUTIME_ID", CLOCK_THREAD_CPUTIME_ID);
  one("MONOTONIC_RAW", CLOCK_MONOTONIC_RAW);
  one("REALTIME_COARSE", CLOCK_REALTIME_COARSE);
  one("MONOTONIC_COARSE", CLOCK_MONOTONIC_COARSE);
  one("BOOTTIME", CLOCK_BOOTTIME);
  one("REALTIME_ALARM", CLOCK_REALTIME_ALARM);
  one("BOOTTIME_ALARM", CLOCK_BOOTTIME_ALARM);
  one("SGI_CYCLE(10)", 10);
  one("TAI", CLOCK_TAI);
  one("12", 12);
  one("16", 16);
  one("1000", 1000);
  one("INT_MAX", 0x7fffffff);

  printf("-- cpu clocks by id\n");
  one("process(0) sched", CPUCLOCK(0, 0, 2));
  one("process(0) prof", CPUCLOCK(0, 0, 0));
  one("process(0) virt", CPUCLOCK(0, 0, 1));
  one("process(0) bad(3)", CPUCLOCK(0, 0, 3));
  one("process(self) sched", CPUCLOCK(pid, 0, 2));
  one("process(self) prof", CPUCLOCK(pid, 0, 0));
  one("thread(0) sched", CPUCLOCK(0, 1, 2));
  one("thread(self) sched", CPUCLOCK(tid, 1, 2));
  one("thread(self) virt", CPUCLOCK(tid, 1, 1));
  one("thread(self) bad(3)", CPUCLOCK(tid, 1, 3));
  one("process(none)", CPUCLOCK(99999999, 0, 2));
  one("thread(none)", CPUCLOCK(99999999, 1, 2));
  one("fd clock(0)", CPUCLOCK(0, 0, 3) | 4);
  one("fd clock(1)", CPUCLOCK(1, 1, 3));
  one("-1", -1);
  clockid_t c;
  CHECK(clock_getcpuclockid(0, &c));
  EXPECT(c == CLOCK_PROCESS_CPUTIME_ID);
  CHECK(clock_getcpuclockid(pid, &c));
  one("clock_getcpuclockid(pid)", c);
  CHECK(pthread_getcpuclockid(pthread_self(), &c));
  one("pthread_getcpuclockid", c);
  {
    struct timespec r;
    CHECK(getres(CPUCLOCK(0, 0, 2), &r));
    printf("sched res=%ld.%09ld\n", (long)r.tv_sec, r.tv_nsec);
    CHECK(getres(CLOCK_PROCESS_CPUTIME_ID, &r));
    printf("process res=%ld.%09ld\n", (long)r.tv_sec, r.tv_nsec);
    CHECK(getres(CLOCK_THREAD_CPUTIME_ID, &r));
    printf("thread res=%ld.%09ld\n", (long)r.tv_sec, r.tv_nsec);
    /* The tick-sampled CPU clocks resolve to a jiffy: the coarse clocks'
     * tick, rounded up. */
    struct timespec coarse;
    CHECK(getres(CLOCK_MONOTONIC_COARSE, &coarse));
    CHECK(getres(CPUCLOCK(0, 0, 0), &r));
    EXPECT(r.tv_sec == 0 && r.tv_nsec >= coarse.tv_nsec && r.tv_nsec <= coarse.tv_nsec + 1);
    CHECK(getres(CPUCLOCK(0, 1, 1), &r));
    EXPECT(r.tv_sec == 0 && r.tv_nsec >= coarse.tv_nsec && r.tv_nsec <= coarse.tv_nsec + 1);
    CHECK(getres(CLOCK_MONOTONIC, &r));
    printf("monotonic res=%ld.%09ld\n", (long)r.tv_sec, r.tv_nsec);
    CHECK(getres(CLOCK_REALTIME, &r));
    printf("realtime res=%ld.%09ld\n", (long)r.tv_sec, r.tv_nsec);
  }

  printf("-- cpu time advances\n");
  struct timespec p0, p1, t0, t1, m0, m1;
  CHECK(gettime(CLOCK_PROCESS_CPUTIME_ID, &p0));
  CHECK(gettime(CLOCK_THREAD_CPUTIME_ID, &t0));
  CHECK(gettime(CLOCK_MONOTONIC, &m0));
  spin();
  CHECK(gettime(CLOCK_PROCESS_CPUTIME_ID, &p1));
  CHECK(gettime(CLOCK_THREAD_CPUTIME_ID, &t1));
  CHECK(gettime(CLOCK_MONOTONIC, &m1));
  EXPECT(le(&p0, &p1) && !le(&p1, &p0));
  EXPECT(le(&t0, &t1) && !le(&t1, &t0));
  EXPECT(le(&m0, &m1));
  /* Neither CPU clock runs faster than the wall. */
  long long cpu = (p1.tv_sec - p0.tv_sec) * 1000000000LL + (p1.tv_nsec - p0.tv_nsec);
  long long wall = (m1.tv_sec - m0.tv_sec) * 1000000000LL + (m1.tv_nsec - m0.tv_nsec);
  EXPECT(cpu <= wall + 1000000);
  struct timespec r0, r1;
  CHECK(gettime(CLOCK_REALTIME, &r0));
  CHECK(gettime(CLOCK_MONOTONIC, &m0));
  CHECK(gettime(CLOCK_BOOTTIME, &m1));
  EXPECT(r0.tv_sec > 1600000000);
  EXPECT(le(&m0, &m1)); /* boottime >= monotonic */
  CHECK(clock_gettime(CLOCK_REALTIME, &r1)); /* glibc, maybe via the vDSO */
  EXPECT(le(&r0, &r1));

  printf("-- errors\n");
  CHECK(gettime(CLOCK_MONOTONIC, NULL));
  CHECK(gettime(CLOCK_MONOTONIC, BAD));
  CHECK(gettime(CLOCK_MONOTONIC, KADDR));
  CHECK(gettime(CLOCK_MONOTONIC, (struct timespec *)ro));
  CHECK(gettime(CLOCK_PROCESS_CPUTIME_ID, NULL));
  CHECK(gettime(CLOCK_THREAD_CPUTIME_ID, BAD));
  CHECK(gettime(CPUCLOCK(0, 0, 2), BAD));
  CHECK(gettime(100, NULL)); /* the clock first */
  CHECK(gettime(CPUCLOCK(99999999, 0, 2), NULL));
  CHECK(getres(CLOCK_MONOTONIC, NULL)); /* no result wanted */
  CHECK(getres(CLOCK_PROCESS_CPUTIME_ID, NULL));
  CHECK(getres(CPUCLOCK(0, 0, 2), NULL));
  CHECK(getres(CLOCK_MONOTONIC, BAD));
  CHECK(getres(CLOCK_MONOTONIC, (struct timespec *)ro));
  CHECK(getres(CLOCK_THREAD_CPUTIME_ID, BAD));
  CHECK(getres(100, NULL));
  CHECK(getres(100, BAD));
  CHECK(getres(CPUCLOCK(99999999, 0, 2), NULL));
  CHECK(getres(CPUCLOCK(0, 0, 3), NULL));

  printf("-- gettimeofday\n");
  struct timeval tv = {-1, -1};
  struct timezone tz = {-1, -1};
  CHECK(syscall(SYS_gettimeofday, &tv, NULL));
  EXPECT(tv.tv_sec > 1600000000 && tv.tv_usec >= 0 && tv.tv_usec < 1000000);
  CHECK(syscall(SYS_gettimeofday, &tv, &tz));
  EXPECT(tz.tz_minuteswest != -1 && tz.tz_dsttime != -1);
  CHECK(syscall(SYS_gettimeofday, NULL, NULL));
  CHECK(syscall(SYS_gettimeofday, NULL, &tz));
  CHECK(syscall(SYS_gettimeofday, BAD, NULL));
  CHECK(syscall(SYS_gettimeofday, ro, NULL));
  CHECK(syscall(SYS_gettimeofday, &tv, BAD));
  CHECK(syscall(SYS_gettimeofday, KADDR, &tz));
  struct timespec rt;
  CHECK(gettime(CLOCK_REALTIME, &rt));
  CHECK(syscall(SYS_gettimeofday, &tv, NULL));
  EXPECT(tv.tv_sec >= rt.tv_sec && tv.tv_sec - rt.tv_sec < 5);
  CHECK(gettimeofday(&tv, NULL));

  printf("-- time\n");
  long t = syscall(SYS_time, NULL);
  EXPECT(t >= rt.tv_sec && t - rt.tv_sec < 5);
  time_t tl = 0;
  long t2 = syscall(SYS_time, &tl);
  EXPECT(t2 == tl && t2 >= t);
  CHECK(syscall(SYS_time, BAD));
  CHECK(syscall(SYS_time, ro));
  CHECK(syscall(SYS_time, KADDR));
  EXPECT(time(NULL) >= t);
  return 0;
}
