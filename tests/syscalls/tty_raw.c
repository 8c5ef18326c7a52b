/* Non-canonical reads of a pty's replica: VMIN and VTIME (no wait, a
 * timeout for the whole read, a minimum count, a timer between bytes),
 * a read asking for fewer bytes than VMIN, O_NONBLOCK with each, poll's
 * readiness by VMIN, a blocked read woken by input from another process
 * and interrupted by a signal (EINTR without SA_RESTART, restarted with
 * it). Times are printed as ranges, never as values. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static int m, s;

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void raw(int vmin, int vtime) {
  struct termios t;
  tcgetattr(s, &t);
  t.c_lflag &= ~(ICANON | ECHO);
  t.c_cc[VMIN] = vmin;
  t.c_cc[VTIME] = vtime;
  tcsetattr(s, TCSAFLUSH, &t);
}

/* A child that writes `first` to the master now, and `second` after
 * `delay_ms`. */
static pid_t feeder(const char *first, const char *second, int delay_ms) {
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    if (*first) write(m, first, strlen(first));
    usleep(delay_ms * 1000);
    if (*second) write(m, second, strlen(second));
    _exit(0);
  }
  return c;
}

/* One read of the replica: what it returned and how long it took, as a
 * range of `lo`..`hi` ms. */
static void timed_read(const char *what, size_t max, long lo, long hi) {
  char buf[64];
  long t0 = now_ms();
  ssize_t n = read(s, buf, max);
  long dt = now_ms() - t0;
  if (n < 0)
    printf("%s: -1 %s", what, strerrorname_np(errno));
  else
    printf("%s: %zd \"%.*s\"", what, n, (int)n, buf);
  printf(" in %ld..%ld ms: %s\n", lo, hi, dt >= lo && dt <= hi ? "yes" : "no");
}

static void reap(pid_t c) {
  int st;
  waitpid(c, &st, 0);
}

static void vmin_vtime(void) {
  printf("-- VMIN and VTIME\n");
  raw(0, 0);
  timed_read("MIN 0 TIME 0, nothing typed", 10, 0, 100);
  write(m, "ab", 2);
  usleep(100000);
  timed_read("MIN 0 TIME 0, two typed", 10, 0, 100);
  raw(0, 3);
  timed_read("MIN 0 TIME 3, nothing typed", 10, 250, 2000);
  pid_t c = feeder("", "x", 100);
  timed_read("MIN 0 TIME 3, one typed after 100 ms", 10, 50, 250);
  reap(c);
  raw(3, 0);
  c = feeder("a", "bc", 300);
  timed_read("MIN 3 TIME 0, 1 then 2 after 300 ms", 10, 250, 2000);
  reap(c);
  c = feeder("ab", "", 0);
  usleep(100000);
  timed_read("MIN 3 TIME 0, asking for 2 of 2", 2, 0, 100);
  reap(c);
  raw(5, 3);
  c = feeder("ab", "cd", 150);
  timed_read("MIN 5 TIME 3, 2 then 2 after 150 ms", 10, 350, 2000);
  reap(c);
  c = feeder("abcde", "", 0);
  timed_read("MIN 5 TIME 3, 5 at once", 10, 0, 250);
  reap(c);
  raw(1, 0);
  c = feeder("", "late", 200);
  timed_read("MIN 1 TIME 0, blocked until input", 10, 150, 2000);
  reap(c);
}

static void nonblocking(void) {
  printf("-- O_NONBLOCK\n");
  fcntl(s, F_SETFL, O_NONBLOCK);
  raw(2, 0);
  timed_read("MIN 2, nothing typed", 10, 0, 100);
  write(m, "a", 1);
  usleep(100000);
  timed_read("MIN 2, one typed", 10, 0, 100);
  raw(0, 0);
  timed_read("MIN 0 TIME 0", 10, 0, 100);
  raw(0, 5);
  timed_read("MIN 0 TIME 5", 10, 0, 100);
  struct termios t;
  tcgetattr(s, &t);
  t.c_lflag |= ICANON;
  tcsetattr(s, TCSANOW, &t);
  write(m, "part", 4);
  usleep(100000);
  timed_read("canonical, no line", 10, 0, 100);
  write(m, "\n", 1);
  usleep(100000);
  timed_read("canonical, a line", 10, 0, 100);
  fcntl(s, F_SETFL, 0);
}

static void readiness(void) {
  printf("-- poll by VMIN\n");
  raw(3, 0);
  struct pollfd p = {s, POLLIN, 0};
  write(m, "ab", 2);
  usleep(100000);
  CHECK(poll(&p, 1, 0));
  int n = -1;
  CHECK(ioctl(s, FIONREAD, &n));
  printf("FIONREAD=%d\n", n);
  write(m, "c", 1);
  usleep(100000);
  CHECK(poll(&p, 1, 0));
  raw(3, 1);
  CHECK(poll(&p, 1, 0));
  tcflush(s, TCIFLUSH);
  CHECK(poll(&p, 1, 0));
  write(m, "d", 1);
  usleep(100000);
  CHECK(poll(&p, 1, 0));
}

static int got;
static void on_alarm(int sig) { got = sig; }

static void signals(void) {
  printf("-- a signal during a blocked read\n");
  raw(1, 0);
  tcflush(s, TCIFLUSH);
  struct sigaction sa = {0};
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  alarm(1);
  timed_read("without SA_RESTART", 10, 800, 3000);
  printf("handler ran: %s\n", got == SIGALRM ? "yes" : "no");
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  got = 0;
  alarm(1);
  pid_t c = feeder("", "after", 1500);
  timed_read("with SA_RESTART", 10, 1300, 4000);
  printf("handler ran: %s\n", got == SIGALRM ? "yes" : "no");
  reap(c);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  m = posix_openpt(O_RDWR | O_NOCTTY);
  grantpt(m);
  unlockpt(m);
  s = open(ptsname(m), O_RDWR | O_NOCTTY);
  if (m < 0 || s < 0) {
    printf("no pair\n");
    return 1;
  }
  vmin_vtime();
  nonblocking();
  readiness();
  signals();
  return 0;
}
