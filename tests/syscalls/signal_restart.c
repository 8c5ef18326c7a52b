/* Blocking calls interrupted by a handled signal: read and write on a
 * pipe and wait4 restart with SA_RESTART and fail with EINTR without it;
 * nanosleep (with the time left), pause, poll, select and sigsuspend
 * fail with EINTR either way; signals that are ignored, or a stop and
 * continue, interrupt nothing (a stopped nanosleep still completes).
 * A child sends the signal again and again until the parent says the
 * call returned, so the results do not depend on timing. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static volatile int handled;
static void on_sig(int s) {
  (void)s;
  handled++;
}

static void set_handler(int sig, int flags) {
  struct sigaction sa = {0};
  sa.sa_handler = on_sig;
  sa.sa_flags = flags;
  sigaction(sig, &sa, NULL);
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

/* A child that sends `sig` to us every 5 ms until `ack` is readable (or
 * `count` times, if count > 0), then writes `data` (if >= 0) and exits
 * with `code`. */
static int ack[2];
static pid_t nagger(int sig, int count, int data, int code) {
  pid_t parent = getpid();
  pid_t c = xfork();
  if (c == 0) {
    close(ack[1]);
    for (int i = 0; count == 0 || i < count; i++) {
      kill(parent, sig);
      struct pollfd p = {ack[0], POLLIN, 0};
      if (poll(&p, 1, 5) > 0) break;
    }
    if (data >= 0) write(data, "data", 4);
    _exit(code);
  }
  return c;
}

/* Reaps a child; once it is gone it sends no more signals, and any it
 * sent have been handled when waitpid returns. */
static void reap(pid_t c) {
  int st;
  pid_t w;
  while ((w = waitpid(c, &st, 0)) < 0 && errno == EINTR) {
  }
  if (w != c || !WIFEXITED(st)) printf("child: unexpected status %#x\n", st);
}

static void show(const char *what, long r) {
  if (r < 0)
    printf("%s: -1 %s\n", what, strerrorname_np(errno));
  else
    printf("%s: %ld\n", what, r);
}

static void reads(void) {
  printf("-- read on a pipe\n");
  int p[2];
  char buf[8] = {0};
  pipe(p);
  pipe(ack);
  set_handler(SIGUSR1, 0);
  pid_t c = nagger(SIGUSR1, 0, p[1], 0);
  long r = read(p[0], buf, sizeof buf - 1);
  show("without SA_RESTART", r);
  write(ack[1], "a", 1);
  reap(c);
  r = read(p[0], buf, sizeof buf - 1);
  show("then", r);
  printf("data=%s\n", buf);
  close(ack[0]);
  close(ack[1]);

  /* SA_RESTART: ten signals, then data; read returns only the data. */
  pipe(ack);
  set_handler(SIGUSR1, SA_RESTART);
  handled = 0;
  c = nagger(SIGUSR1, 10, p[1], 0);
  memset(buf, 0, sizeof buf);
  r = read(p[0], buf, sizeof buf - 1);
  show("with SA_RESTART", r);
  printf("data=%s handled>0: %d\n", buf, handled > 0);
  reap(c);
  close(ack[0]);
  close(ack[1]);

  /* Ignored signals, and those whose default is to ignore, do not
   * interrupt. */
  pipe(ack);
  signal(SIGUSR2, SIG_IGN);
  c = nagger(SIGUSR2, 10, p[1], 0);
  r = read(p[0], buf, sizeof buf - 1);
  show("SIGUSR2 ignored", r);
  reap(c);
  signal(SIGURG, SIG_DFL);
  c = nagger(SIGURG, 10, p[1], 0);
  r = read(p[0], buf, sizeof buf - 1);
  show("SIGURG by default", r);
  reap(c);
  close(ack[0]);
  close(ack[1]);
  close(p[0]);
  close(p[1]);
}

static void writes(void) {
  printf("-- write to a full pipe\n");
  int p[2];
  pipe(p);
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  long filled = 0, n;
  char chunk[4096] = {0};
  while ((n = write(p[1], chunk, sizeof chunk)) > 0) filled += n;
  while ((n = write(p[1], chunk, 1)) > 0) filled += n;
  printf("filled=%ld\n", filled);
  fcntl(p[1], F_SETFL, 0);
  pipe(ack);
  set_handler(SIGUSR1, 0);
  pid_t c = nagger(SIGUSR1, 0, -1, 0);
  long r = write(p[1], "x", 1);
  show("without SA_RESTART", r);
  write(ack[1], "a", 1);
  reap(c);
  close(ack[0]);
  close(ack[1]);
  /* With SA_RESTART: completes once a reader (the child) drains some. */
  set_handler(SIGUSR1, SA_RESTART);
  pid_t parent = getpid();
  c = xfork();
  if (c == 0) {
    for (int i = 0; i < 10; i++) {
      kill(parent, SIGUSR1);
      usleep(5000);
    }
    char b[4096];
    read(p[0], b, sizeof b);
    _exit(0);
  }
  r = write(p[1], "x", 1);
  show("with SA_RESTART", r);
  reap(c);
  close(p[0]);
  close(p[1]);
}

static void waits(void) {
  printf("-- wait4\n");
  int st;
  pipe(ack);
  set_handler(SIGUSR1, 0);
  pid_t c = nagger(SIGUSR1, 0, -1, 3);
  long r = waitpid(c, &st, 0);
  show("without SA_RESTART", r);
  write(ack[1], "a", 1);
  while ((r = waitpid(c, &st, 0)) < 0 && errno == EINTR) {
  }
  printf("then: child=%d code=%d\n", r == c, WEXITSTATUS(st));
  close(ack[0]);
  close(ack[1]);
  pipe(ack);
  set_handler(SIGUSR1, SA_RESTART);
  c = nagger(SIGUSR1, 10, -1, 4);
  r = waitpid(c, &st, 0);
  printf("with SA_RESTART: child=%d code=%d\n", r == c, WEXITSTATUS(st));
  close(ack[0]);
  close(ack[1]);
}

static void never_restarted(void) {
  printf("-- calls that are not restarted\n");
  for (int restart = 0; restart < 2; restart++) {
    int flags = restart ? SA_RESTART : 0;
    printf("%s:\n", restart ? "with SA_RESTART" : "without SA_RESTART");
    set_handler(SIGUSR1, flags);

    pipe(ack);
    pid_t c = nagger(SIGUSR1, 0, -1, 0);
    struct timespec req = {5, 0}, rem = {0, 0};
    long r = nanosleep(&req, &rem);
    show("  nanosleep", r);
    EXPECT((rem.tv_sec > 0 || rem.tv_nsec > 0) && rem.tv_sec <= 5);
    write(ack[1], "a", 1);
    reap(c);
    close(ack[0]);
    close(ack[1]);

    pipe(ack);
    c = nagger(SIGUSR1, 0, -1, 0);
    r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
    printf("  clock_nanosleep: %s\n", r == EINTR ? "EINTR" : "other");
    write(ack[1], "a", 1);
    reap(c);
    close(ack[0]);
    close(ack[1]);

    pipe(ack);
    c = nagger(SIGUSR1, 0, -1, 0);
    r = pause();
    show("  pause", r);
    write(ack[1], "a", 1);
    reap(c);
    close(ack[0]);
    close(ack[1]);

    int p[2];
    pipe(p);
    pipe(ack);
    c = nagger(SIGUSR1, 0, -1, 0);
    struct pollfd pf = {p[0], POLLIN, 0};
    r = poll(&pf, 1, 5000);
    show("  poll", r);
    write(ack[1], "a", 1);
    reap(c);
    close(ack[0]);
    close(ack[1]);

    pipe(ack);
    c = nagger(SIGUSR1, 0, -1, 0);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {5, 0};
    r = select(p[0] + 1, &rs, NULL, NULL, &tv);
    show("  select", r);
    write(ack[1], "a", 1);
    reap(c);
    close(ack[0]);
    close(ack[1]);

    pipe(ack);
    c = nagger(SIGUSR1, 0, -1, 0);
    sigset_t empty;
    sigemptyset(&empty);
    r = sigsuspend(&empty);
    show("  sigsuspend", r);
    write(ack[1], "a", 1);
    reap(c);
    close(ack[0]);
    close(ack[1]);
    close(p[0]);
    close(p[1]);
  }
  signal(SIGUSR1, SIG_DFL);
}

static void stops(void) {
  printf("-- stop and continue interrupt nothing\n");
  int st;
  int p[2];
  pipe(p);
  pid_t c = xfork();
  if (c == 0) {
    char b[8];
    close(p[1]);
    long r = read(p[0], b, sizeof b);
    _exit(r == 4 ? 0 : r < 0 ? 100 + errno : 50);
  }
  close(p[0]);
  CHECK(kill(c, SIGSTOP));
  EXPECT(waitpid(c, &st, WUNTRACED) == c);
  CHECK(kill(c, SIGCONT));
  EXPECT(waitpid(c, &st, WCONTINUED) == c);
  write(p[1], "data", 4);
  EXPECT(waitpid(c, &st, 0) == c);
  printf("read after stop and continue: code=%d\n", WEXITSTATUS(st));
  close(p[1]);

  c = xfork();
  if (c == 0) {
    struct timespec t0, t1, req = {0, 300 * 1000000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long r = nanosleep(&req, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    _exit(r == 0 && ms >= 300 ? 0 : 1);
  }
  CHECK(kill(c, SIGSTOP));
  EXPECT(waitpid(c, &st, WUNTRACED) == c);
  CHECK(kill(c, SIGCONT));
  EXPECT(waitpid(c, &st, 0) == c);
  printf("nanosleep after stop and continue: completed=%d\n", WEXITSTATUS(st) == 0);
}

int main(void) {
  setvbuf(stdout, NULL, _IOFBF, 4096);
  signal(SIGPIPE, SIG_IGN);
  reads();
  writes();
  waits();
  never_restarted();
  stops();
  printf("-- done\n");
  return 0;
}
