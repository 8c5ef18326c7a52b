/* timerfd_create, timerfd_settime, timerfd_gettime: flags and clocks
 * (the alarm clocks need CAP_WAKE_ALARM), argument errors in Linux's
 * order, one-shot and periodic timers on CLOCK_MONOTONIC, CLOCK_REALTIME
 * and CLOCK_BOOTTIME, relative and absolute (TFD_TIMER_ABSTIME, also in
 * the past), expirations counted across reads, the old setting,
 * disarming, TFD_TIMER_CANCEL_ON_SET accepted, TFD_IOC_SET_TICKS, reads
 * (8 bytes, EAGAIN, blocking), poll and epoll readiness. */
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#define MS 1000000LL
#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

static long long now_ns(int clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct itimerspec spec(long long value, long long interval) {
  struct itimerspec s = {{interval / 1000000000, interval % 1000000000},
                         {value / 1000000000, value % 1000000000}};
  return s;
}

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

static void drop_wake_alarm(void) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  syscall(SYS_capget, &h, d);
  d[1].effective &= ~(1u << (CAP_WAKE_ALARM - 32));
  printf("capset without CAP_WAKE_ALARM: %ld\n", syscall(SYS_capset, &h, d));
}

/* Prints the lines of /proc/self/fdinfo/FD after the common ones (pos,
 * flags, mnt_id and ino legitimately differ), each cut at " ino:". */
static void fdinfo(int fd) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  FILE *f = fopen(path, "r");
  if (!f) {
    printf("  fdinfo: %s\n", strerrorname_np(errno));
    return;
  }
  while (fgets(buf, sizeof buf, f)) {
    if (!strncmp(buf, "pos:", 4) || !strncmp(buf, "flags:", 6) || !strncmp(buf, "mnt_id:", 7) ||
        !strncmp(buf, "ino:", 4) || !strncmp(buf, "eventfd-id:", 11))
      continue;
    char *cut = strstr(buf, " ino:");
    if (cut) strcpy(cut, "\n");
    /* The time left moves. */
    if (!strncmp(buf, "it_value:", 9) && strcmp(buf, "it_value: (0, 0)\n")) strcpy(buf, "it_value: not zero\n");
    printf("  fdinfo %s", buf);
  }
  fclose(f);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  printf("-- create\n");
  CHECK(timerfd_create(CLOCK_MONOTONIC, 1));
  CHECK(timerfd_create(CLOCK_MONOTONIC, O_APPEND));
  CHECK(timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0));
  CHECK(timerfd_create(CLOCK_MONOTONIC_RAW, 0));
  CHECK(timerfd_create(CLOCK_TAI, 0));
  CHECK(timerfd_create(-1, 0));
  int m = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  printf("monotonic: cloexec %d flags %#x\n", fcntl(m, F_GETFD), fcntl(m, F_GETFL) & ~O_LARGEFILE);
  int r = timerfd_create(CLOCK_REALTIME, 0);
  printf("realtime: flags %#x\n", fcntl(r, F_GETFL) & ~O_LARGEFILE);
  int b = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
  EXPECT(b >= 0);
  struct stat st;
  fstat(m, &st);
  printf("fstat mode %o\n", st.st_mode);
  char link[64], path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", m);
  ssize_t n = readlink(path, link, sizeof link - 1);
  link[n > 0 ? n : 0] = 0;
  printf("link: %s\n", link);
  int ra = timerfd_create(CLOCK_REALTIME_ALARM, TFD_NONBLOCK);
  int ba = timerfd_create(CLOCK_BOOTTIME_ALARM, TFD_NONBLOCK);
  printf("alarm clocks as root: %d %d\n", ra >= 0, ba >= 0);

  printf("-- settime and gettime errors\n");
  struct itimerspec s = spec(10 * MS, 0), old;
  CHECK(timerfd_settime(m, 4, &s, NULL));
  CHECK(timerfd_settime(-1, 4, &s, NULL));
  CHECK(timerfd_settime(-1, 0, &s, NULL));
  CHECK(timerfd_settime(0, 0, &s, NULL));
  CHECK(timerfd_settime(m, 0, NULL, NULL));
  struct itimerspec bad = s;
  bad.it_value.tv_nsec = 1000000000;
  CHECK(timerfd_settime(m, 0, &bad, NULL));
  bad = s;
  bad.it_interval.tv_nsec = -1;
  CHECK(timerfd_settime(m, 0, &bad, NULL));
  bad = s;
  bad.it_value.tv_sec = -1;
  CHECK(timerfd_settime(m, 0, &bad, NULL));
  CHECK(timerfd_settime(m, 0, &s, (void *)1));
  CHECK(timerfd_gettime(m, NULL));
  CHECK(timerfd_gettime(-1, &old));
  CHECK(timerfd_gettime(1, &old));
  uint64_t v;
  CHECK(read(m, &v, 4));
  CHECK(read(m, &v, 0));
  CHECK(write(m, &v, 8));
  CHECK(pread(m, &v, 8, 0));
  CHECK(lseek(m, 0, SEEK_SET));

  printf("-- gettime of a disarmed timer\n");
  s = spec(0, 0);
  timerfd_settime(m, 0, &s, NULL);
  CHECK(timerfd_gettime(m, &old));
  printf("value %lld interval %lld\n", ns(old.it_value), ns(old.it_interval));
  CHECK(read(m, &v, 8));

  printf("-- one-shot, relative\n");
  s = spec(10000 * MS, 3 * MS);
  CHECK(timerfd_settime(m, 0, &s, NULL));
  timerfd_gettime(m, &old);
  printf("value in (9 s, 10 s]: %d interval %lld\n", ns(old.it_value) > 9000 * MS && ns(old.it_value) <= 10000 * MS, ns(old.it_interval));
  s = spec(50 * MS, 0);
  CHECK(timerfd_settime(m, 0, &s, &old));
  printf("old value in (9 s, 10 s]: %d old interval %lld\n", ns(old.it_value) > 9000 * MS && ns(old.it_value) <= 10000 * MS, ns(old.it_interval));
  CHECK(read(m, &v, 8));
  struct pollfd pf = {m, POLLIN, 0};
  long long t0 = now_ns(CLOCK_MONOTONIC);
  CHECK(poll(&pf, 1, 5000));
  long long el = now_ns(CLOCK_MONOTONIC) - t0;
  printf("poll revents %#x, not early: %d\n", pf.revents, el >= 40 * MS);
  CHECK(read(m, &v, 8));
  printf("expirations %llu\n", (unsigned long long)v);
  CHECK(read(m, &v, 8));
  timerfd_gettime(m, &old);
  printf("after expiry: value %lld interval %lld\n", ns(old.it_value), ns(old.it_interval));

  printf("-- blocking read\n");
  s = spec(30 * MS, 0);
  timerfd_settime(r, 0, &s, NULL);
  t0 = now_ns(CLOCK_MONOTONIC);
  CHECK(read(r, &v, 8));
  el = now_ns(CLOCK_MONOTONIC) - t0;
  printf("expirations %llu, waited at least 30 ms: %d\n", (unsigned long long)v, el >= 29 * MS);

  printf("-- periodic: expirations counted across reads\n");
  s = spec(10 * MS, 10 * MS);
  t0 = now_ns(CLOCK_MONOTONIC);
  timerfd_settime(m, 0, &s, NULL);
  usleep(55000);
  CHECK(read(m, &v, 8));
  el = now_ns(CLOCK_MONOTONIC) - t0;
  printf("at least 5: %d, at most the periods elapsed: %d\n", v >= 5, (long long)v <= el / (10 * MS));
  timerfd_gettime(m, &old);
  printf("next in (0, 10 ms]: %d interval %lld\n", ns(old.it_value) > 0 && ns(old.it_value) <= 10 * MS, ns(old.it_interval));
  usleep(25000);
  /* gettime moves an expired periodic timer on without losing counts. */
  timerfd_gettime(m, &old);
  usleep(25000);
  t0 = now_ns(CLOCK_MONOTONIC) - 50 * MS;
  CHECK(read(m, &v, 8));
  printf("after 50 ms more, at least 4: %d\n", v >= 4);
  s = spec(0, 0);
  CHECK(timerfd_settime(m, 0, &s, &old));
  printf("old interval %lld\n", ns(old.it_interval));
  usleep(20000);
  CHECK(read(m, &v, 8));

  printf("-- absolute times\n");
  s = spec(now_ns(CLOCK_REALTIME) + 40 * MS, 0);
  CHECK(timerfd_settime(r, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &s, NULL));
  timerfd_gettime(r, &old);
  printf("realtime value in (0, 40 ms]: %d\n", ns(old.it_value) > 0 && ns(old.it_value) <= 40 * MS);
  long long deadline = ns(s.it_value);
  CHECK(read(r, &v, 8));
  printf("expirations %llu, not before the time: %d\n", (unsigned long long)v, now_ns(CLOCK_REALTIME) >= deadline);
  /* In the past, with a period: every period since counts. */
  s = spec(now_ns(CLOCK_MONOTONIC) - 10000 * MS, 1000 * MS);
  CHECK(timerfd_settime(m, TFD_TIMER_ABSTIME, &s, NULL));
  CHECK(read(m, &v, 8));
  printf("expirations %llu\n", (unsigned long long)v);
  s = spec(now_ns(CLOCK_BOOTTIME) + 20 * MS, 0);
  CHECK(timerfd_settime(b, TFD_TIMER_ABSTIME, &s, NULL));
  pf.fd = b;
  CHECK(poll(&pf, 1, 5000));
  CHECK(read(b, &v, 8));
  /* A time of 0 disarms, even absolute. */
  s = spec(0, 5 * MS);
  CHECK(timerfd_settime(b, TFD_TIMER_ABSTIME, &s, NULL));
  timerfd_gettime(b, &old);
  printf("disarmed: value %lld interval %lld\n", ns(old.it_value), ns(old.it_interval));
  fdinfo(b);
  /* Setting a timer drops the expirations not read. */
  s = spec(1 * MS, 0);
  timerfd_settime(b, 0, &s, NULL);
  usleep(20000);
  s = spec(10000 * MS, 0);
  timerfd_settime(b, 0, &s, NULL);
  CHECK(read(b, &v, 8));

  printf("-- TFD_IOC_SET_TICKS\n");
  v = 0;
  CHECK(ioctl(b, TFD_IOC_SET_TICKS, &v));
  v = 7;
  CHECK(ioctl(b, TFD_IOC_SET_TICKS, &v));
  CHECK(ioctl(b, TFD_IOC_SET_TICKS, NULL));
  fdinfo(b);
  CHECK(read(b, &v, 8));
  printf("read %llu\n", (unsigned long long)v);
  CHECK(ioctl(b, FIONREAD, &v));

  printf("-- epoll\n");
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 77};
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, m, &ev));
  s = spec(20 * MS, 0);
  timerfd_settime(m, 0, &s, NULL);
  CHECK(epoll_wait(ep, &ev, 1, 0));
  CHECK(epoll_wait(ep, &ev, 1, 5000));
  printf("data %llu events %#x\n", (unsigned long long)ev.data.u64, ev.events);
  read(m, &v, 8);
  CHECK(epoll_wait(ep, &ev, 1, 0));

  printf("-- a child reads the shared timer\n");
  s = spec(30 * MS, 0);
  timerfd_settime(r, 0, &s, NULL);
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    uint64_t x = 0;
    int k = read(r, &x, 8);
    printf("child read %d: %llu\n", k, (unsigned long long)x);
    _exit(0);
  }
  waitpid(c, NULL, 0);
  int fl = fcntl(r, F_GETFL);
  fcntl(r, F_SETFL, fl | O_NONBLOCK);
  CHECK(read(r, &v, 8));

  printf("-- alarm clocks without CAP_WAKE_ALARM\n");
  drop_wake_alarm();
  CHECK(timerfd_create(CLOCK_REALTIME_ALARM, 0));
  CHECK(timerfd_create(CLOCK_BOOTTIME_ALARM, 0));
  s = spec(10 * MS, 0);
  CHECK(timerfd_settime(ra, 0, &s, NULL));
  CHECK(timerfd_gettime(ra, &old));
  CHECK(timerfd_create(CLOCK_MONOTONIC, 0) >= 0);
  return 0;
}
