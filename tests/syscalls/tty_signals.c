/* Signals a pty sends: VINTR, VQUIT and VSUSP typed at the master go to
 * the foreground group (killing a child blocked reading, stopping one),
 * with their echo and their flush (none with NOFLSH), not at all without
 * ISIG or without a foreground group; TIOCSIG from the master;
 * TIOCSWINSZ sends SIGWINCH to the foreground group when the size
 * changes. Hangups: the master's close sends the session leader SIGHUP
 * and SIGCONT and takes the terminal from the session; TIOCNOTTY by the
 * leader sends the foreground group SIGHUP and SIGCONT; the leader's exit
 * sends it SIGHUP. Each case runs in a session of its own. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
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

static void report(const char *what, pid_t c) {
  int st;
  if (waitpid(c, &st, WUNTRACED) != c) {
    printf("%s: waitpid %s\n", what, strerrorname_np(errno));
    return;
  }
  if (WIFEXITED(st))
    printf("%s: exited %d\n", what, WEXITSTATUS(st));
  else if (WIFSIGNALED(st))
    printf("%s: killed by %s\n", what, sigabbrev_np(WTERMSIG(st)));
  else if (WIFSTOPPED(st))
    printf("%s: stopped by %s\n", what, sigabbrev_np(WSTOPSIG(st)));
}

static void show(const char *what, const char *buf, ssize_t n) {
  printf("%s: \"", what);
  for (ssize_t i = 0; i < n; i++) {
    unsigned char c = buf[i];
    if (c == '\n')
      printf("\\n");
    else if (c == '\r')
      printf("\\r");
    else if (c < 32 || c >= 127)
      printf("\\x%02x", c);
    else
      putchar(c);
  }
  printf("\"\n");
}

static void echo(int m, const char *what) {
  char buf[4096];
  ssize_t n = 0;
  for (;;) {
    struct pollfd p = {m, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0 || !(p.revents & POLLIN)) break;
    ssize_t r = read(m, buf + n, sizeof buf - n);
    if (r <= 0) break;
    n += r;
  }
  show(what, buf, n);
}

static int pair(int *s) {
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  grantpt(m);
  unlockpt(m);
  *s = open(ptsname(m), O_RDWR | O_NOCTTY);
  return m;
}

static void in_session(const char *what, void (*f)(void)) {
  printf("-- %s\n", what);
  pid_t c = xfork();
  if (c == 0) {
    if (setsid() < 0) _exit(98);
    /* Closing the master of its terminal sends the leader SIGHUP. */
    signal(SIGHUP, SIG_IGN);
    f();
    fflush(stdout);
    _exit(0);
  }
  int st;
  waitpid(c, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) printf("session: status %#x\n", st);
}

/* A child in a group of its own, made the foreground group, that says
 * "ready" on `ready` and then reads the replica. */
static pid_t reader(int s, int ready) {
  pid_t c = xfork();
  if (c == 0) {
    setpgid(0, 0);
    for (int sig = 1; sig < 32; sig++)
      if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    while (tcgetpgrp(s) != getpgrp()) usleep(1000);
    write(ready, "r", 1);
    char buf[64];
    ssize_t n = read(s, buf, sizeof buf);
    printf("reader read %zd\n", n);
    fflush(stdout);
    _exit(0);
  }
  setpgid(c, c);
  tcsetpgrp(s, c);
  return c;
}

static void wait_ready(int fd) {
  char b;
  read(fd, &b, 1);
  usleep(100000); /* into its read */
}

static void typed(void) {
  int s;
  int m = pair(&s);
  ioctl(s, TIOCSCTTY, 0);
  signal(SIGTTOU, SIG_IGN);
  int p[2];
  pipe(p);
  const struct {
    const char *what, *keys;
  } cases[] = {
      {"VINTR", "abc\x03"},
      {"VQUIT", "\x1c"},
      {"VSUSP", "\x1a"},
  };
  for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    pid_t c = reader(s, p[1]);
    wait_ready(p[0]);
    write(m, cases[i].keys, strlen(cases[i].keys));
    report(cases[i].what, c);
    echo(m, "echo");
    if (i == 2) {
      kill(c, SIGKILL);
      report("killed", c);
    }
    tcsetpgrp(s, getpgrp());
  }
  /* The flush: typed input before VINTR is gone; with NOFLSH it stays. */
  signal(SIGINT, SIG_IGN);
  write(m, "lost\x03kept\r", 10);
  echo(m, "echo, flushing");
  char buf[64];
  ssize_t n = read(s, buf, sizeof buf);
  show("read", buf, n);
  struct termios t;
  tcgetattr(s, &t);
  t.c_lflag |= NOFLSH;
  tcsetattr(s, TCSANOW, &t);
  write(m, "stays\x03 too\r", 11);
  echo(m, "echo, NOFLSH");
  n = read(s, buf, sizeof buf);
  show("read", buf, n);
  /* Without ISIG the characters are input. */
  t.c_lflag &= ~ISIG;
  tcsetattr(s, TCSANOW, &t);
  write(m, "\x03\x1c\x1a\r", 4);
  echo(m, "echo, no ISIG");
  n = read(s, buf, sizeof buf);
  show("read", buf, n);
  t.c_lflag |= ISIG;
  tcsetattr(s, TCSANOW, &t);
  signal(SIGINT, SIG_DFL);
  /* TIOCSIG: the master sends a signal character's signal to the
   * foreground group (no other). */
  CHECK(ioctl(m, TIOCSIG, SIGUSR1));
  pid_t c = reader(s, p[1]);
  wait_ready(p[0]);
  CHECK(ioctl(m, TIOCSIG, SIGQUIT));
  report("TIOCSIG SIGQUIT", c);
  tcsetpgrp(s, getpgrp());
  close(s);
  close(m);
}

static void no_foreground(void) {
  /* A terminal of no session: its signal characters go nowhere. */
  int s;
  int m = pair(&s);
  write(m, "x\x03y\r", 4);
  echo(m, "echo");
  char buf[64];
  ssize_t n = read(s, buf, sizeof buf);
  show("read", buf, n);
  close(s);
  close(m);
}

static volatile sig_atomic_t winches;
static void on_winch(int sig) { winches++; }

static void winsize(void) {
  int s;
  int m = pair(&s);
  struct winsize w = {0};
  CHECK(ioctl(s, TIOCGWINSZ, &w));
  printf("initial: %dx%d\n", w.ws_row, w.ws_col);
  ioctl(s, TIOCSCTTY, 0);
  struct sigaction sa = {0};
  sa.sa_handler = on_winch;
  sigaction(SIGWINCH, &sa, NULL);
  w.ws_row = 24;
  w.ws_col = 80;
  CHECK(ioctl(m, TIOCSWINSZ, &w));
  usleep(100000);
  printf("SIGWINCH after a change: %d\n", winches);
  CHECK(ioctl(s, TIOCSWINSZ, &w));
  usleep(100000);
  printf("SIGWINCH after the same size: %d\n", winches);
  w.ws_xpixel = 640;
  CHECK(ioctl(s, TIOCSWINSZ, &w));
  usleep(100000);
  printf("SIGWINCH after a pixel change: %d\n", winches);
  struct winsize g;
  CHECK(ioctl(m, TIOCGWINSZ, &g));
  printf("size: %dx%d %dx%d\n", g.ws_row, g.ws_col, g.ws_xpixel, g.ws_ypixel);
  /* Only the foreground group hears of it. */
  pid_t c = xfork();
  if (c == 0) {
    setpgid(0, 0);
    winches = 0;
    usleep(300000);
    printf("background child's SIGWINCH: %d\n", winches);
    fflush(stdout);
    _exit(0);
  }
  usleep(100000);
  w.ws_row = 50;
  CHECK(ioctl(m, TIOCSWINSZ, &w));
  report("background child", c);
  usleep(100000);
  printf("leader's SIGWINCH: %d\n", winches);
  close(s);
  close(m);
}

/* Waits up to `ms` for one of `sigs` (blocked by the caller): its name. */
static const char *await_for(const sigset_t *sigs, long ms) {
  struct timespec ts = {ms / 1000, ms % 1000 * 1000000};
  int sig = sigtimedwait(sigs, NULL, &ts);
  return sig > 0 ? sigabbrev_np(sig) : "nothing";
}

static void await(const char *who, const sigset_t *sigs) {
  printf("%s got %s\n", who, await_for(sigs, 2000));
}

static void master_close(void) {
  int s;
  int m = pair(&s);
  ioctl(s, TIOCSCTTY, 0);
  signal(SIGHUP, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGCONT);
  sigprocmask(SIG_BLOCK, &set, NULL);
  /* A child in the session, in the foreground, is not told. */
  int p[2];
  pipe(p);
  pid_t c = xfork();
  if (c == 0) {
    close(m);
    setpgid(0, 0);
    sigprocmask(SIG_BLOCK, &set, NULL);
    const char *got = await_for(&set, 1000);
    char b;
    read(p[0], &b, 1);
    printf("session member got %s\n", got);
    _exit(0);
  }
  setpgid(c, c);
  signal(SIGTTOU, SIG_IGN);
  tcsetpgrp(s, c);
  usleep(100000);
  close(m);
  await("leader", &set);
  await("leader", &set);
  write(p[1], "g", 1);
  report("member", c);
  char buf[8];
  CHECK(read(s, buf, sizeof buf));
  CHECK(open("/dev/tty", O_RDWR));
  int v;
  CHECK(ioctl(s, TIOCGSID, &v));
  close(s);
}

static void notty(void) {
  int s;
  int m = pair(&s);
  ioctl(s, TIOCSCTTY, 0);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGCONT);
  int p[2];
  pipe(p);
  pid_t c = xfork();
  if (c == 0) {
    setpgid(0, 0);
    sigprocmask(SIG_BLOCK, &set, NULL);
    write(p[1], "r", 1);
    const char *first = await_for(&set, 2000);
    const char *second = await_for(&set, 2000);
    char b;
    read(p[0], &b, 1);
    printf("foreground member got %s, then %s\n", first, second);
    CHECK(open("/dev/tty", O_RDWR));
    _exit(0);
  }
  setpgid(c, c);
  signal(SIGTTOU, SIG_IGN);
  tcsetpgrp(s, c);
  char b;
  read(p[0], &b, 1);
  CHECK(ioctl(s, TIOCNOTTY));
  CHECK(open("/dev/tty", O_RDWR));
  int v;
  CHECK(ioctl(m, TIOCGPGRP, &v));
  printf("foreground after TIOCNOTTY: %d\n", v);
  write(p[1], "g", 1);
  report("member", c);
  /* The terminal has no session: a new leader may take it. */
  c = xfork();
  if (c == 0) {
    setsid();
    CHECK(ioctl(s, TIOCSCTTY, 0));
    _exit(0);
  }
  report("new leader", c);
  close(s);
  close(m);
}

static void leader_exit(void) {
  /* The session's leader is a child; it exits; its foreground group (a
   * grandchild's) gets SIGHUP, and the terminal has no session left. */
  int s;
  int m = pair(&s);
  int p[2];
  pipe(p);
  pid_t l = xfork();
  if (l == 0) {
    setsid();
    ioctl(s, TIOCSCTTY, 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCONT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pid_t g = fork();
    if (g == 0) {
      setpgid(0, 0);
      char b;
      close(p[1]);
      read(p[0], &b, 1); /* its leader is gone */
      await("foreground member", &set);
      struct timespec ts = {0, 200000000};
      int sig = sigtimedwait(&set, NULL, &ts);
      printf("and then %s\n", sig > 0 ? sigabbrev_np(sig) : "nothing");
      CHECK(open("/dev/tty", O_RDWR));
      fflush(stdout);
      _exit(0);
    }
    setpgid(g, g);
    signal(SIGTTOU, SIG_IGN);
    tcsetpgrp(s, g);
    _exit(0);
  }
  report("leader", l);
  close(p[0]);
  int v = -1;
  CHECK(ioctl(m, TIOCGSID, &v));
  CHECK(ioctl(m, TIOCGPGRP, &v));
  printf("foreground: %d\n", v);
  close(p[1]);
  usleep(500000);
  close(s);
  close(m);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  in_session("signal characters", typed);
  in_session("no foreground group", no_foreground);
  in_session("window size", winsize);
  in_session("the master closes", master_close);
  in_session("TIOCNOTTY", notty);
  printf("-- the leader exits\n");
  leader_exit();
  return 0;
}
