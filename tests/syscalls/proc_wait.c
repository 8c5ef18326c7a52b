/* waitid and the finer points of waiting: P_PID, P_PGID (also id 0 for
 * the caller's group), P_ALL; WEXITED, WNOWAIT, WSTOPPED, WCONTINUED and
 * their siginfo (si_signo, si_code CLD_EXITED/KILLED/STOPPED/CONTINUED,
 * si_status, si_pid, si_uid); waitpid's WUNTRACED/WCONTINUED statuses;
 * each stop or continue is reported once; zombies until reaped;
 * children with another exit signal (__WCLONE, __WALL); SIGCHLD ignored
 * (no zombies, wait ends in ECHILD); orphans reparented to a child
 * subreaper, which can wait for them; the errors. */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

static const char *code_name(int c) {
  switch (c) {
    case CLD_EXITED: return "CLD_EXITED";
    case CLD_KILLED: return "CLD_KILLED";
    case CLD_DUMPED: return "CLD_DUMPED";
    case CLD_STOPPED: return "CLD_STOPPED";
    case CLD_CONTINUED: return "CLD_CONTINUED";
    case CLD_TRAPPED: return "CLD_TRAPPED";
    case 0: return "0";
    default: return "?";
  }
}

/* Prints a waitid result; `who` is the pid expected in si_pid. */
static void wid(const char *what, idtype_t t, id_t id, int opts, pid_t who) {
  siginfo_t si;
  memset(&si, 0x5a, sizeof si);
  errno = 0;
  int r = waitid(t, id, &si, opts);
  if (r < 0) {
    printf("%s: -1 %s\n", what, strerrorname_np(errno));
    return;
  }
  printf("%s: %d signo=%d code=%s status=%d pid=%s uid=%s\n", what, r, si.si_signo,
         code_name(si.si_code), si.si_status,
         si.si_pid == who ? "child" : si.si_pid == 0 ? "0" : "other",
         si.si_uid == getuid() ? "ours" : "other");
}

/* A child that waits on a pipe until killed or the pipe is closed. */
static pid_t sleeper(int *wfd, int code) {
  int p[2];
  if (pipe(p)) exit(98);
  pid_t c = xfork();
  if (c == 0) {
    char b;
    close(p[1]);
    while (read(p[0], &b, 1) < 0 && errno == EINTR) {
    }
    _exit(code);
  }
  close(p[0]);
  *wfd = p[1];
  return c;
}

static void exited(void) {
  int w;
  printf("-- WEXITED and WNOWAIT\n");
  pid_t c = sleeper(&w, 3);
  wid("running, WNOHANG", P_PID, c, WEXITED | WNOHANG, c);
  close(w);
  wid("WNOWAIT", P_PID, c, WEXITED | WNOWAIT, c);
  wid("WNOWAIT again", P_PID, c, WEXITED | WNOWAIT, c);
  /* A zombie: still there for kill(0) and /proc until reaped. */
  CHECK(kill(c, 0));
  char path[64], stat[256] = {0};
  snprintf(path, sizeof path, "/proc/%d/stat", c);
  int fd = open(path, O_RDONLY);
  if (fd >= 0) {
    read(fd, stat, sizeof stat - 1);
    close(fd);
  }
  char *paren = strrchr(stat, ')');
  printf("zombie state: %c\n", paren ? paren[2] : '?');
  wid("reap", P_PID, c, WEXITED, c);
  CHECK(kill(c, 0));
  wid("reaped", P_PID, c, WEXITED | WNOHANG, c);

  /* A NULL siginfo is accepted. */
  c = sleeper(&w, 4);
  close(w);
  CHECK(waitid(P_PID, c, NULL, WEXITED));

  /* P_ALL. */
  c = sleeper(&w, 5);
  close(w);
  wid("P_ALL", P_ALL, 0, WEXITED, c);
  wid("P_ALL none left", P_ALL, 0, WEXITED, c);

  /* Killed. */
  c = sleeper(&w, 6);
  CHECK(kill(c, SIGTERM));
  wid("SIGTERM", P_PID, c, WEXITED, c);
  close(w);
  c = sleeper(&w, 6);
  CHECK(kill(c, SIGKILL));
  wid("SIGKILL", P_PID, c, WEXITED, c);
  close(w);

  /* waitid's exit status is the full int, not the low byte... of what
   * exit was given: the kernel keeps only the low byte too. */
  c = xfork();
  if (c == 0) _exit(0x1ff);
  wid("_exit(0x1ff)", P_PID, c, WEXITED, c);

  /* wait4 with a rusage pointer and __WALL. */
  c = sleeper(&w, 7);
  close(w);
  struct rusage ru;
  int st;
  EXPECT(wait4(c, &st, __WALL, &ru) == c);
  printf("status=%#x\n", st);
  EXPECT(ru.ru_stime.tv_usec >= 0 && ru.ru_stime.tv_usec < 1000000);
  /* getrusage of children now counts it. */
  EXPECT(getrusage(RUSAGE_CHILDREN, &ru) == 0);
}

static void pgid(void) {
  int w1, w2;
  printf("-- P_PGID\n");
  pid_t a = sleeper(&w1, 11);
  pid_t b = sleeper(&w2, 12);
  /* Both sides set the group, so it is set whichever runs first. */
  CHECK(setpgid(a, a));
  CHECK(setpgid(b, a));
  EXPECT(getpgid(a) == a && getpgid(b) == a);
  wid("P_PGID none yet", P_PGID, a, WEXITED | WNOHANG, 0);
  close(w2);
  wid("P_PGID b", P_PGID, a, WEXITED, b);
  close(w1);
  wid("P_PGID a", P_PGID, a, WEXITED, a);
  wid("P_PGID empty", P_PGID, a, WEXITED, 0);
  /* Our own group, as id 0; and waitpid(0) likewise. */
  pid_t c = sleeper(&w1, 13);
  pid_t d = sleeper(&w2, 14);
  CHECK(setpgid(d, d));
  close(w2);
  close(w1);
  wid("P_PGID 0", P_PGID, 0, WEXITED, c);
  wid("P_PGID 0 again", P_PGID, 0, WEXITED, c);
  int st;
  CHECK(waitpid(0, &st, 0));
  EXPECT(waitpid(-d, &st, 0) == d);
  printf("status=%#x\n", st);
}

static void stopped(void) {
  int w, st;
  printf("-- WSTOPPED and WCONTINUED\n");
  pid_t c = sleeper(&w, 21);
  /* A group of its own, whose parent (here) is in another group of the
   * session: never orphaned, so SIGTSTP/SIGTTIN/SIGTTOU stop it wherever
   * the test runs (an orphaned group discards them). */
  setpgid(c, c);
  wid("nothing yet", P_PID, c, WSTOPPED | WCONTINUED | WNOHANG, c);
  CHECK(kill(c, SIGSTOP));
  wid("WSTOPPED|WNOWAIT", P_PID, c, WSTOPPED | WNOWAIT, c);
  wid("WSTOPPED", P_PID, c, WSTOPPED, c);
  wid("reported once", P_PID, c, WSTOPPED | WNOHANG, c);
  wid("WEXITED only", P_PID, c, WEXITED | WNOHANG, c);
  CHECK(kill(c, SIGCONT));
  wid("WCONTINUED", P_PID, c, WCONTINUED, c);
  wid("reported once", P_PID, c, WCONTINUED | WNOHANG, c);
  /* Stopped by other stop signals, through waitpid's statuses. */
  CHECK(kill(c, SIGTSTP));
  EXPECT(waitpid(c, &st, WUNTRACED) == c);
  printf("status=%#x stopped=%d sig=%d\n", st, WIFSTOPPED(st), WSTOPSIG(st));
  CHECK(waitpid(c, &st, WUNTRACED | WNOHANG));
  CHECK(kill(c, SIGCONT));
  EXPECT(waitpid(c, &st, WCONTINUED) == c);
  printf("status=%#x continued=%d\n", st, WIFCONTINUED(st));
  /* A stop that is never collected is dropped by the continue; only the
   * continue is reported. */
  CHECK(kill(c, SIGSTOP));
  wid("stopped (WNOWAIT)", P_PID, c, WSTOPPED | WNOWAIT, c);
  CHECK(kill(c, SIGCONT));
  wid("WCONTINUED", P_PID, c, WCONTINUED, c);
  wid("no stop left", P_PID, c, WSTOPPED | WNOHANG, c);
  /* Killed while stopped. */
  CHECK(kill(c, SIGSTOP));
  wid("WSTOPPED", P_PID, c, WSTOPPED, c);
  CHECK(kill(c, SIGKILL));
  wid("killed while stopped", P_PID, c, WEXITED, c);
  close(w);
  /* SIGTTIN and SIGTTOU stop too; a continued child then exits. */
  c = sleeper(&w, 22);
  setpgid(c, c);
  CHECK(kill(c, SIGTTIN));
  EXPECT(waitpid(c, &st, WUNTRACED) == c);
  printf("sig=%d\n", WSTOPSIG(st));
  CHECK(kill(c, SIGCONT));
  close(w);
  wid("exited after continue", P_PID, c, WEXITED, c);
  /* A child stopping itself. */
  c = xfork();
  if (c == 0) {
    raise(SIGSTOP);
    _exit(23);
  }
  wid("raise(SIGSTOP)", P_PID, c, WSTOPPED, c);
  CHECK(kill(c, SIGCONT));
  wid("then exits", P_PID, c, WEXITED, c);
}

static void clones(void) {
  int st;
  printf("-- exit signals other than SIGCHLD\n");
  int p[2];
  CHECK(pipe(p));
  fflush(stdout);
  /* A fork-like clone whose exit signal is none. */
  long c = syscall(SYS_clone, 0, 0, 0, 0, 0);
  if (c == 0) {
    char b;
    close(p[1]);
    read(p[0], &b, 1);
    syscall(SYS_exit_group, 31);
  }
  close(p[0]);
  close(p[1]);
  CHECK(waitpid(c, &st, WNOHANG));
  CHECK(waitpid(-1, &st, WNOHANG));
  EXPECT(waitpid(c, &st, __WCLONE) == c);
  printf("status=%#x\n", st);

  CHECK(pipe(p));
  fflush(stdout);
  c = syscall(SYS_clone, SIGUSR1, 0, 0, 0, 0);
  if (c == 0) {
    char b;
    close(p[1]);
    read(p[0], &b, 1);
    syscall(SYS_exit_group, 32);
  }
  signal(SIGUSR1, SIG_IGN);
  close(p[0]);
  close(p[1]);
  wid("waitid without __WCLONE", P_PID, c, WEXITED | WNOHANG, c);
  wid("waitid __WALL", P_PID, c, WEXITED | __WALL, c);
  signal(SIGUSR1, SIG_DFL);

  /* __WCLONE does not see ordinary children. */
  int w;
  pid_t d = sleeper(&w, 33);
  close(w);
  wid("exited (WNOWAIT)", P_PID, d, WEXITED | WNOWAIT, d);
  CHECK(waitpid(d, &st, __WCLONE | WNOHANG));
  EXPECT(waitpid(d, &st, __WALL) == d);
  printf("status=%#x\n", st);
}

static void ignored(void) {
  int st;
  printf("-- SIGCHLD ignored: no zombies\n");
  signal(SIGCHLD, SIG_IGN);
  int w;
  pid_t c = sleeper(&w, 41);
  close(w);
  /* Blocks until the child is gone, then finds nothing to report. */
  CHECK(waitpid(c, &st, 0));
  CHECK(kill(c, 0));
  signal(SIGCHLD, SIG_DFL);
  /* SA_NOCLDWAIT does the same with a handler installed. */
  struct sigaction sa = {0};
  sa.sa_handler = SIG_DFL;
  sa.sa_flags = SA_NOCLDWAIT;
  CHECK(sigaction(SIGCHLD, &sa, NULL));
  c = sleeper(&w, 42);
  close(w);
  siginfo_t si;
  CHECK(waitid(P_PID, c, &si, WEXITED));
  sa.sa_flags = 0;
  CHECK(sigaction(SIGCHLD, &sa, NULL));
  /* Stops are still reported with SIGCHLD ignored. */
  signal(SIGCHLD, SIG_IGN);
  c = sleeper(&w, 43);
  CHECK(kill(c, SIGSTOP));
  wid("stopped with SIGCHLD ignored", P_PID, c, WSTOPPED, c);
  CHECK(kill(c, SIGKILL));
  close(w);
  CHECK(waitpid(c, &st, 0));
  signal(SIGCHLD, SIG_DFL);
}

static void subreaper(void) {
  int st;
  printf("-- orphans and a child subreaper\n");
  int r = -1;
  CHECK(prctl(PR_GET_CHILD_SUBREAPER, &r));
  printf("subreaper=%d\n", r);
  CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1));
  CHECK(prctl(PR_GET_CHILD_SUBREAPER, &r));
  printf("subreaper=%d\n", r);
  pid_t me = getpid();
  int go[2], back[2];
  CHECK(pipe(go));
  CHECK(pipe(back));
  pid_t c = xfork();
  if (c == 0) {
    pid_t mid = getpid();
    int ready[2];
    pipe(ready);
    pid_t g = fork();
    if (g == 0) {
      char b;
      close(go[1]);
      int before = getppid() == mid;
      write(ready[1], "r", 1);
      read(go[0], &b, 1); /* until the middle child is reaped */
      int after = getppid() == me;
      char rep[2] = {'0' + before, '0' + after};
      write(back[1], rep, 2);
      _exit(51);
    }
    char b;
    read(ready[0], &b, 1); /* the grandchild has seen us as its parent */
    write(back[1], &g, sizeof g);
    _exit(50);
  }
  close(go[0]);
  close(back[1]);
  pid_t g = 0;
  CHECK(read(back[0], &g, sizeof g));
  EXPECT(waitpid(c, &st, 0) == c);
  printf("middle status=%#x\n", st);
  close(go[1]);
  char rep[3] = {0};
  CHECK(read(back[0], rep, 2));
  printf("grandchild: parent was the middle child=%c, then us=%c\n", rep[0], rep[1]);
  pid_t w = waitpid(-1, &st, 0);
  EXPECT(w == g);
  printf("grandchild status=%#x\n", st);
  CHECK(waitpid(-1, &st, WNOHANG));
  close(back[0]);
  CHECK(prctl(PR_SET_CHILD_SUBREAPER, 0));
}

static void errors(void) {
  siginfo_t si;
  printf("-- errors\n");
  CHECK(waitid(P_ALL, 0, &si, WEXITED));
  CHECK(waitid(P_ALL, 0, &si, WEXITED | WNOHANG));
  CHECK(waitid(P_PID, getpid(), &si, WEXITED));
  CHECK(waitid(P_ALL, 0, &si, 0));
  CHECK(waitid(P_ALL, 0, &si, WNOHANG));
  CHECK(waitid(P_ALL, 0, &si, WEXITED | 0x10000));
  CHECK(waitid(P_ALL, 0, &si, WEXITED | WUNTRACED)); /* WUNTRACED == WSTOPPED */
  CHECK(waitid(7, 0, &si, WEXITED));
  CHECK(waitid((idtype_t)-1, 0, &si, WEXITED));
  CHECK(waitid(P_PID, 0, &si, WEXITED));
  CHECK(waitid(P_PID, -1, &si, WEXITED));
  CHECK(waitid(P_PGID, -1, &si, WEXITED));
  CHECK(waitid(P_PIDFD, 1000, &si, WEXITED));
  CHECK(syscall(SYS_waitid, P_ALL, 0, (void *)8, WEXITED, NULL));
  /* EFAULT for a bad siginfo after a child is chosen: it is reaped. */
  pid_t c = xfork();
  if (c == 0) _exit(0);
  CHECK(syscall(SYS_waitid, P_PID, c, (void *)8, WEXITED, NULL));
  CHECK(waitid(P_PID, c, &si, WEXITED | WNOHANG));
  /* WNOHANG with a running child: 0 and si_pid 0. */
  int w;
  c = sleeper(&w, 0);
  memset(&si, 0x5a, sizeof si);
  CHECK(waitid(P_PID, c, &si, WEXITED | WNOHANG));
  printf("si_pid=%d si_signo=%d\n", si.si_pid, si.si_signo);
  close(w);
  CHECK(waitid(P_PID, c, &si, WEXITED));
}

int main(void) {
  setvbuf(stdout, NULL, _IOFBF, 4096);
  signal(SIGCHLD, SIG_DFL);
  exited();
  pgid();
  stopped();
  clones();
  ignored();
  subreaper();
  errors();
  printf("-- done\n");
  return 0;
}
