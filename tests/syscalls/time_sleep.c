/* nanosleep and clock_nanosleep: short relative and absolute sleeps that
 * really wait, which clocks can sleep, bad timespecs, bad pointers and
 * the order of the checks. Elapsed times are printed only as bounds. */
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#define BAD ((void *)8)
#define CPUCLOCK(pid, thread, which) ((~(clockid_t)(pid) << 3) | ((thread) ? 4 : 0) | (which))

static char *ro;

static long long now_ns(clockid_t c) {
  struct timespec t;
  syscall(SYS_clock_gettime, c, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long cns(clockid_t c, int flags, const struct timespec *req, struct timespec *rem) {
  return syscall(SYS_clock_nanosleep, c, flags, req, rem);
}

int main(void) {
  struct timespec ts, rem;
  long long t0, dt;
  ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ro == MAP_FAILED)
    return 1;

  printf("-- nanosleep\n");
  ts = (struct timespec){0, 20000000};
  rem = (struct timespec){7, 7};
  t0 = now_ns(CLOCK_MONOTONIC);
  CHECK(syscall(SYS_nanosleep, &ts, &rem));
  dt = now_ns(CLOCK_MONOTONIC) - t0;
  EXPECT(dt >= 20000000 && dt < 2000000000);
  EXPECT(rem.tv_sec == 7 && rem.tv_nsec == 7); /* untouched unless interrupted */
  ts = (struct timespec){0, 0};
  CHECK(syscall(SYS_nanosleep, &ts, NULL));
  ts = (struct timespec){0, 1};
  CHECK(syscall(SYS_nanosleep, &ts, BAD));
  ts = (struct timespec){0, 999999999};
  ts.tv_sec = 0;
  ts.tv_nsec = 1000000000;
  CHECK(syscall(SYS_nanosleep, &ts, NULL));
  ts.tv_nsec = -1;
  CHECK(syscall(SYS_nanosleep, &ts, NULL));
  ts = (struct timespec){-1, 0};
  CHECK(syscall(SYS_nanosleep, &ts, NULL));
  ts = (struct timespec){-1, 2000000000};
  CHECK(syscall(SYS_nanosleep, &ts, NULL));
  CHECK(syscall(SYS_nanosleep, NULL, NULL));
  CHECK(syscall(SYS_nanosleep, BAD, &rem));
  CHECK(syscall(SYS_nanosleep, ro, NULL)); /* zeros: a zero sleep */
  ts = (struct timespec){0, 10000000};
  CHECK(nanosleep(&ts, NULL));
  CHECK(usleep(1000));

  printf("-- clock_nanosleep, relative\n");
  static const struct {
    const char *name;
    clockid_t c;
  } clocks[] = {
      {"REALTIME", CLOCK_REALTIME},
      {"MONOTONIC", CLOCK_MONOTONIC},
      {"PROCESS_CPUTIME_ID", CLOCK_PROCESS_CPUTIME_ID},
      {"THREAD_CPUTIME_ID", CLOCK_THREAD_CPUTIME_ID},
      {"MONOTONIC_RAW", CLOCK_MONOTONIC_RAW},
      {"REALTIME_COARSE", CLOCK_REALTIME_COARSE},
      {"MONOTONIC_COARSE", CLOCK_MONOTONIC_COARSE},
      {"BOOTTIME", CLOCK_BOOTTIME},
      {"REALTIME_ALARM", CLOCK_REALTIME_ALARM},
      {"BOOTTIME_ALARM", CLOCK_BOOTTIME_ALARM},
      {"10", 10},
      {"TAI", CLOCK_TAI},
      {"12", 12},
      {"process(0) sched", CPUCLOCK(0, 0, 2)},
      {"process(0) bad(3)", CPUCLOCK(0, 0, 3)},
      {"thread(0) sched", CPUCLOCK(0, 1, 2)},
      {"process(none)", CPUCLOCK(99999999, 0, 2)},
      {"fd clock", CPUCLOCK(0, 0, 3) | 4},
  };
  for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
    clockid_t c = clocks[i].c;
    /* A zero sleep never blocks, even on a CPU-time clock. */
    ts = (struct timespec){0, 0};
    long r0 = cns(c, 0, &ts, NULL);
    const char *e0 = r0 < 0 ? strerrorname_np(errno) : "ok";
    long r1 = cns(c, 0, NULL, NULL);
    const char *e1 = r1 < 0 ? strerrorname_np(errno) : "ok";
    ts = (struct timespec){0, -5};
    long r2 = cns(c, 0, &ts, NULL);
    const char *e2 = r2 < 0 ? strerrorname_np(errno) : "ok";
    ts = (struct timespec){0, 0};
    long r3 = cns(c, 0x7e, &ts, NULL); /* unknown flag bits */
    const char *e3 = r3 < 0 ? strerrorname_np(errno) : "ok";
    printf("%-20s zero=%s null=%s bad_ts=%s flags=%s\n", clocks[i].name, e0, e1, e2, e3);
  }
  ts = (struct timespec){0, 20000000};
  t0 = now_ns(CLOCK_MONOTONIC);
  CHECK(cns(CLOCK_MONOTONIC, 0, &ts, &rem));
  dt = now_ns(CLOCK_MONOTONIC) - t0;
  EXPECT(dt >= 20000000 && dt < 2000000000);
  t0 = now_ns(CLOCK_MONOTONIC);
  CHECK(cns(CLOCK_REALTIME, 0, &ts, BAD));
  dt = now_ns(CLOCK_MONOTONIC) - t0;
  EXPECT(dt >= 20000000 && dt < 2000000000);
  CHECK(cns(CLOCK_BOOTTIME, 0, &ts, NULL));
  CHECK(cns(CLOCK_TAI, 0, &ts, NULL));
  CHECK(cns(CLOCK_MONOTONIC, 0, BAD, NULL));
  CHECK(cns(CLOCK_MONOTONIC, 0, (struct timespec *)ro, NULL));
  CHECK(cns(CLOCK_MONOTONIC_RAW, 0, BAD, NULL)); /* the clock first */
  CHECK(cns(100, 0, BAD, NULL));

  printf("-- clock_nanosleep, absolute\n");
  static const clockid_t abs_clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME,
                                         CLOCK_TAI};
  for (size_t i = 0; i < sizeof abs_clocks / sizeof abs_clocks[0]; i++) {
    clockid_t c = abs_clocks[i];
    long long target = now_ns(c) + 20000000;
    ts = (struct timespec){target / 1000000000, target % 1000000000};
    t0 = now_ns(CLOCK_MONOTONIC);
    rem = (struct timespec){7, 7};
    long r = cns(c, TIMER_ABSTIME, &ts, &rem);
    dt = now_ns(CLOCK_MONOTONIC) - t0;
    printf("clock %d: r=%ld waited=%d reached=%d rem_untouched=%d\n", c, r,
           dt >= 15000000 && dt < 2000000000, now_ns(c) >= target,
           rem.tv_sec == 7 && rem.tv_nsec == 7);
    /* A time in the past returns at once. */
    ts = (struct timespec){1, 0};
    t0 = now_ns(CLOCK_MONOTONIC);
    r = cns(c, TIMER_ABSTIME, &ts, BAD);
    dt = now_ns(CLOCK_MONOTONIC) - t0;
    printf("clock %d past: r=%ld quick=%d\n", c, r, dt < 1000000000);
  }
  /* CPU time already used is in the past too. */
  ts = (struct timespec){0, 1};
  CHECK(cns(CLOCK_PROCESS_CPUTIME_ID, TIMER_ABSTIME, &ts, NULL));
  CHECK(cns(CPUCLOCK(0, 0, 2), TIMER_ABSTIME, &ts, NULL));
  CHECK(cns(CPUCLOCK(getpid(), 0, 2), TIMER_ABSTIME, &ts, NULL));
  CHECK(cns(CPUCLOCK(gettid(), 1, 2), TIMER_ABSTIME, &ts, NULL));
  CHECK(cns(CLOCK_THREAD_CPUTIME_ID, TIMER_ABSTIME, &ts, NULL));
  ts = (struct timespec){-1, 0};
  CHECK(cns(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL));
  ts = (struct timespec){0, 1000000000};
  CHECK(cns(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL));

  printf("-- glibc\n");
  ts = (struct timespec){0, 1000000};
  printf("clock_nanosleep=%d\n", clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL));
  printf("clock_nanosleep(bad clock)=%s\n", strerrorname_np(clock_nanosleep(100, 0, &ts, NULL)));
  printf("clock_nanosleep(thread)=%s\n",
         strerrorname_np(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ts, NULL)));
  return 0;
}
