/* Job control on a pty: controlling terminals (TIOCSCTTY and its rules,
 * acquisition by a session leader's open without O_NOCTTY, /dev/tty),
 * TIOCGSID, TIOCGPGRP and TIOCSPGRP (with ESRCH, EPERM, EINVAL, ENOTTY),
 * and background processes: SIGTTIN for a reader, SIGTTOU for a writer
 * with TOSTOP and for tcsetattr/tcsetpgrp, blocked or ignored signals,
 * EIO for orphaned groups. Every case runs in a session of its own made
 * by a child (the harness's process is no session leader natively, and
 * the sandbox's first process is): pids are compared, never printed. */
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
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

/* How a child changed: waited for with WUNTRACED. */
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

/* A new pair, unlocked; the replica opened with `flags`. */
static int pair(int *s, int flags) {
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  grantpt(m);
  unlockpt(m);
  *s = open(ptsname(m), O_RDWR | flags);
  return m;
}

/* Runs `f` in a new session (a child that calls setsid first); waits. */
static void in_session(const char *what, void (*f)(void)) {
  printf("-- %s\n", what);
  pid_t c = xfork();
  if (c == 0) {
    if (setsid() < 0) _exit(98);
    /* Closing the master of its terminal hangs up the session: its
     * leader gets SIGHUP (tty_hangup.c's case). */
    signal(SIGHUP, SIG_IGN);
    f();
    fflush(stdout);
    _exit(0);
  }
  int st;
  waitpid(c, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) printf("session: status %#x\n", st);
}

/* Fields 7 and 8 of /proc/self/stat: tty_nr and tpgid. */
static void stat_tty(unsigned *tty_nr, int *tpgid) {
  char buf[1024] = "";
  FILE *f = fopen("/proc/self/stat", "r");
  if (f) {
    fgets(buf, sizeof buf, f);
    fclose(f);
  }
  char *p = strrchr(buf, ')');
  *tty_nr = 0;
  *tpgid = -2;
  if (p) sscanf(p + 2, "%*c %*d %*d %*d %u %d", tty_nr, tpgid);
}

static void controlling(void) {
  int s;
  int m = pair(&s, O_NOCTTY);
  int v = -1;
  CHECK(ioctl(s, TIOCGSID, &v));
  CHECK(open("/dev/tty", O_RDWR));
  unsigned nr;
  int tpgid;
  stat_tty(&nr, &tpgid);
  printf("stat without a terminal: tty_nr=%u tpgid=%d\n", nr, tpgid);
  CHECK(ioctl(s, TIOCSCTTY, 0));
  unsigned dev = 0;
  ioctl(s, TIOCGDEV, &dev);
  stat_tty(&nr, &tpgid);
  EXPECT(nr == dev && tpgid == getpgrp());
  CHECK(ioctl(s, TIOCSCTTY, 0));
  CHECK(ioctl(s, TIOCGSID, &v));
  EXPECT(v == getsid(0) && v == getpid());
  EXPECT(tcgetsid(s) == getpid());
  EXPECT(tcgetpgrp(s) == getpgrp());
  CHECK(ioctl(m, TIOCGPGRP, &v));
  EXPECT(v == getpgrp());
  CHECK(ioctl(m, TIOCGSID, &v));
  EXPECT(v == getsid(0));
  int t = open("/dev/tty", O_RDWR);
  EXPECT(t >= 0);
  struct stat a;
  fstat(t, &a);
  printf("/dev/tty: %u,%u\n", major(a.st_rdev), minor(a.st_rdev));
  EXPECT(isatty(t));
  write(t, "via /dev/tty\n", 13);
  char buf[64];
  ssize_t n = read(m, buf, sizeof buf);
  printf("master read: %zd \"%.*s\"\n", n, (int)(n > 2 ? n - 2 : 0), buf);
  /* A second terminal is not ours. */
  int s2;
  int m2 = pair(&s2, O_NOCTTY);
  CHECK(ioctl(s2, TIOCSCTTY, 0));
  CHECK(ioctl(s2, TIOCGPGRP, &v));
  CHECK(ioctl(s2, TIOCGSID, &v));
  CHECK(tcsetpgrp(s2, getpgrp()));
  CHECK(ioctl(m2, TIOCGSID, &v));
  close(s2);
  close(m2);
  /* A child in our session: not a leader, so no TIOCSCTTY; it has our
   * terminal; a session of its own has none, and cannot take ours. */
  pid_t c = xfork();
  if (c == 0) {
    CHECK(ioctl(s, TIOCSCTTY, 0));
    EXPECT(tcgetsid(s) == getsid(0));
    int fd = open("/dev/tty", O_RDWR);
    EXPECT(fd >= 0);
    setsid();
    CHECK(open("/dev/tty", O_RDWR));
    CHECK(ioctl(s, TIOCSCTTY, 0));
    CHECK(ioctl(s, TIOCGPGRP, &v));
    /* Opening it without O_NOCTTY does not make it ours: it has a
     * session. */
    char name[64];
    ptsname_r(m, name, sizeof name);
    int fd2 = open(name, O_RDWR);
    EXPECT(fd2 >= 0);
    CHECK(open("/dev/tty", O_RDWR));
    _exit(0);
  }
  report("child", c);
  /* TIOCSPGRP's errors. */
  CHECK(tcsetpgrp(s, 0x3fffffff));
  CHECK(tcsetpgrp(s, getpgid(getppid())));
  v = -5;
  CHECK(ioctl(s, TIOCSPGRP, &v));
  CHECK(ioctl(s, TIOCSPGRP, (void *)8));
  CHECK(tcsetpgrp(s, getpgrp()));
  close(t);
  close(s);
  close(m);
}

static void acquire(void) {
  /* A session leader without a terminal takes the first replica it
   * opens without O_NOCTTY, for reading. */
  int s;
  int m = pair(&s, O_NOCTTY);
  char name[64];
  ptsname_r(m, name, sizeof name);
  int w = open(name, O_WRONLY);
  CHECK(open("/dev/tty", O_RDWR));
  int r = open(name, O_RDWR);
  int t = open("/dev/tty", O_RDWR);
  EXPECT(t >= 0);
  EXPECT(tcgetsid(r) == getpid());
  /* The master never becomes one. */
  close(w);
  close(r);
  close(t);
  close(s);
  close(m);
}

static pid_t background(void (*f)(int), int s) {
  pid_t c = xfork();
  if (c == 0) {
    setpgid(0, 0);
    signal(SIGTTOU, SIG_DFL);
    signal(SIGTTIN, SIG_DFL);
    f(s);
    _exit(0);
  }
  setpgid(c, c);
  return c;
}

static void bg_write(int s) {
  ssize_t n = write(s, "bg\n", 3);
  _exit(n == 3 ? 0 : 1);
}

static void bg_read(int s) {
  char b[8];
  ssize_t n = read(s, b, sizeof b);
  printf("bg read: %zd %s\n", n, n < 0 ? strerrorname_np(errno) : "");
  fflush(stdout);
  _exit(0);
}

static void bg_read_ignoring(int s) {
  signal(SIGTTIN, SIG_IGN);
  bg_read(s);
}

static void bg_read_blocking(int s) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTTIN);
  sigprocmask(SIG_BLOCK, &set, NULL);
  bg_read(s);
}

static void bg_write_ignoring(int s) {
  signal(SIGTTOU, SIG_IGN);
  bg_write(s);
}

static void bg_write_blocking(int s) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTTOU);
  sigprocmask(SIG_BLOCK, &set, NULL);
  bg_write(s);
}

static void bg_tcsetattr(int s) {
  struct termios t;
  tcgetattr(s, &t);
  int r = tcsetattr(s, TCSANOW, &t);
  printf("bg tcsetattr: %d %s\n", r, r < 0 ? strerrorname_np(errno) : "");
  fflush(stdout);
  _exit(0);
}

static void bg_tcsetattr_ignoring(int s) {
  signal(SIGTTOU, SIG_IGN);
  bg_tcsetattr(s);
}

static void bg_tcsetpgrp(int s) {
  int r = tcsetpgrp(s, getpgrp());
  printf("bg tcsetpgrp: %d %s\n", r, r < 0 ? strerrorname_np(errno) : "");
  fflush(stdout);
  _exit(0);
}

static void bg_tcgetattr(int s) {
  struct termios t;
  int r = tcgetattr(s, &t);
  int pg = tcgetpgrp(s);
  printf("bg tcgetattr: %d, tcgetpgrp is another group: %s\n", r,
         pg > 0 && pg != getpgrp() ? "yes" : "no");
  fflush(stdout);
  _exit(0);
}

static void drain(int m) {
  char buf[256];
  fcntl(m, F_SETFL, O_NONBLOCK);
  usleep(100000);
  while (read(m, buf, sizeof buf) > 0) {
  }
  fcntl(m, F_SETFL, 0);
}

static void jobs(void) {
  int s;
  int m = pair(&s, O_NOCTTY);
  ioctl(s, TIOCSCTTY, 0);
  pid_t c;
  /* Writes from the background go out unless TOSTOP. */
  c = background(bg_write, s);
  report("background write", c);
  drain(m);
  struct termios t;
  tcgetattr(s, &t);
  t.c_lflag |= TOSTOP;
  tcsetattr(s, TCSANOW, &t);
  c = background(bg_write, s);
  report("background write with TOSTOP", c);
  /* Foreground it, continue it: the write goes on. */
  signal(SIGTTOU, SIG_IGN);
  CHECK(tcsetpgrp(s, c));
  EXPECT(tcgetpgrp(s) == c);
  kill(c, SIGCONT);
  report("continued in the foreground", c);
  CHECK(tcsetpgrp(s, getpgrp()));
  signal(SIGTTOU, SIG_DFL);
  drain(m);
  c = background(bg_write_ignoring, s);
  report("background write, SIGTTOU ignored", c);
  c = background(bg_write_blocking, s);
  report("background write, SIGTTOU blocked", c);
  drain(m);
  c = background(bg_read, s);
  report("background read", c);
  kill(c, SIGKILL);
  report("killed", c);
  c = background(bg_read_ignoring, s);
  report("background read, SIGTTIN ignored", c);
  c = background(bg_read_blocking, s);
  report("background read, SIGTTIN blocked", c);
  c = background(bg_tcsetattr, s);
  report("background tcsetattr", c);
  kill(c, SIGKILL);
  report("killed", c);
  c = background(bg_tcsetattr_ignoring, s);
  report("background tcsetattr, SIGTTOU ignored", c);
  c = background(bg_tcsetpgrp, s);
  report("background tcsetpgrp", c);
  kill(c, SIGKILL);
  report("killed", c);
  c = background(bg_tcgetattr, s);
  report("background tcgetattr", c);
  /* A group orphaned by its parent's exit: EIO instead of a stop. */
  int p[2];
  pipe(p);
  c = xfork();
  if (c == 0) {
    setpgid(0, 0);
    pid_t g = fork();
    if (g == 0) {
      signal(SIGTTOU, SIG_DFL);
      signal(SIGTTIN, SIG_DFL);
      char b;
      close(p[1]);
      read(p[0], &b, 1); /* until the parent is gone */
      char buf[8];
      errno = 0;
      ssize_t r = read(s, buf, sizeof buf);
      int e1 = errno;
      errno = 0;
      ssize_t w = write(s, "x", 1);
      int e2 = errno;
      struct termios tt;
      tcgetattr(s, &tt);
      errno = 0;
      int a = tcsetattr(s, TCSANOW, &tt);
      int e3 = errno;
      printf("orphaned: read %zd %s, write %zd %s, tcsetattr %d %s\n", r,
             strerrorname_np(e1), w, strerrorname_np(e2), a,
             strerrorname_np(e3));
      fflush(stdout);
      _exit(0);
    }
    _exit(0);
  }
  close(p[0]);
  report("the orphan's parent", c);
  close(p[1]);
  /* The orphan is not our child: wait for its line through a pipe. */
  usleep(500000);
  close(s);
  close(m);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  printf("-- outside a session of its own\n");
  pid_t c = xfork();
  if (c == 0) {
    /* Not a session leader (in a group of its own). */
    setpgid(0, 0);
    int s;
    int m = pair(&s, O_NOCTTY);
    CHECK(ioctl(s, TIOCSCTTY, 0));
    CHECK(ioctl(m, TIOCSCTTY, 0));
    int v;
    CHECK(ioctl(s, TIOCNOTTY, &v));
    _exit(0);
  }
  report("child", c);
  in_session("a controlling terminal", controlling);
  in_session("taken by an open", acquire);
  in_session("background processes", jobs);
  return 0;
}
