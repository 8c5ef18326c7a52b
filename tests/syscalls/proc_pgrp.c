/* Sessions and process groups, all changed in children (the caller's own
 * group and session differ between runs): getpgrp, getpgid, getsid,
 * setsid (a new session and group; EPERM for a group leader),
 * setpgid (a child's group from either side; EPERM across sessions and
 * for session leaders; EACCES after the child's exec; ESRCH for
 * processes that are not children; EINVAL), inheritance across fork,
 * kill(-pgid) ending a whole group, and a two-process pipeline stopped
 * and continued as a job. */
#include <fcntl.h>
#include <signal.h>
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

static int code(pid_t c) {
  int st;
  if (waitpid(c, &st, 0) != c) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A child that waits for a byte (or end of file) on `fd`, then exits. */
static pid_t waiter(int *wfd) {
  int p[2];
  if (pipe(p)) exit(98);
  pid_t c = xfork();
  if (c == 0) {
    char b;
    close(p[1]);
    read(p[0], &b, 1);
    _exit(0);
  }
  close(p[0]);
  *wfd = p[1];
  return c;
}

static void queries(void) {
  printf("-- queries\n");
  EXPECT(getpgrp() == getpgid(0));
  EXPECT(getpgid(0) == getpgid(getpid()));
  EXPECT(getsid(0) == getsid(getpid()));
  EXPECT(getsid(0) > 0 && getpgrp() > 0);
  CHECK(getpgid(0x3fffffff));
  CHECK(getsid(0x3fffffff));
  CHECK(getpgid(-1));
  CHECK(getsid(-1));
  /* A child starts in our group and session. */
  pid_t pg = getpgrp(), sid = getsid(0);
  pid_t c = xfork();
  if (c == 0) _exit(getpgrp() == pg && getsid(0) == sid ? 0 : 1);
  printf("child inherits group and session: code=%d\n", code(c));
  int w;
  c = waiter(&w);
  EXPECT(getpgid(c) == pg && getsid(c) == sid);
  close(w);
  code(c);
}

static void sessions(void) {
  printf("-- setsid\n");
  pid_t c = xfork();
  if (c == 0) {
    pid_t me = getpid();
    int bad = 0;
    if (setsid() != me) bad |= 1;
    if (getsid(0) != me || getpgrp() != me || getpgid(0) != me) bad |= 2;
    /* Now a session leader: no second session, and no group change,
     * not even to its own group. */
    errno = 0;
    if (setsid() != -1 || errno != EPERM) bad |= 4;
    errno = 0;
    if (setpgid(0, 0) != -1 || errno != EPERM) bad |= 8;
    /* A child of the new session leader inherits it. */
    pid_t g = fork();
    if (g == 0) _exit(getsid(0) == me && getpgrp() == me ? 0 : 1);
    int st;
    waitpid(g, &st, 0);
    if (WEXITSTATUS(st) != 0) bad |= 16;
    _exit(bad);
  }
  printf("setsid in a child: code=%d\n", code(c));
  /* A group leader (not a session leader) cannot setsid either. */
  c = xfork();
  if (c == 0) {
    if (setpgid(0, 0)) _exit(2);
    errno = 0;
    int r = setsid();
    _exit(r == -1 && errno == EPERM ? 0 : 1);
  }
  printf("setsid by a group leader: code=%d\n", code(c));
  /* A child that is not a leader can, after which its parent cannot move
   * it. */
  int p[2], q[2];
  pipe(p);
  pipe(q);
  c = xfork();
  if (c == 0) {
    char b;
    close(p[0]);
    close(q[1]);
    setsid();
    write(p[1], "s", 1);
    read(q[0], &b, 1);
    _exit(0);
  }
  close(p[1]);
  close(q[0]);
  char b;
  read(p[0], &b, 1);
  EXPECT(getsid(c) == c && getpgid(c) == c);
  EXPECT(getsid(c) != getsid(0));
  CHECK(setpgid(c, c));         /* a session leader */
  CHECK(setpgid(c, getpgrp())); /* and another session */
  /* Nor can another child join the group of the other session. */
  int w;
  pid_t d = waiter(&w);
  CHECK(setpgid(d, c));
  close(w);
  code(d);
  close(q[1]);
  code(c);
  close(p[0]);
}

static void groups(void) {
  printf("-- setpgid\n");
  int w1, w2, w3;
  pid_t a = waiter(&w1), b = waiter(&w2);
  CHECK(setpgid(a, a) == 0 ? 0 : -1);
  EXPECT(getpgid(a) == a);
  CHECK(setpgid(b, a) == 0 ? 0 : -1);
  EXPECT(getpgid(b) == a);
  /* Back into our group. */
  CHECK(setpgid(b, getpgrp()) == 0 ? 0 : -1);
  EXPECT(getpgid(b) == getpgrp());
  /* Into a group that does not exist in the session. */
  CHECK(setpgid(b, 0x3fffffff));
  /* setpgid(pid, 0) means pid's own id. */
  CHECK(setpgid(b, 0) == 0 ? 0 : -1);
  EXPECT(getpgid(b) == b);
  CHECK(setpgid(b, -1));
  CHECK(setpgid(-1, 0));
  CHECK(setpgid(0x3fffffff, 0));
  /* A grandchild is not ours to move. */
  int p[2];
  pipe(p);
  pid_t c = xfork();
  if (c == 0) {
    close(p[0]);
    pid_t g = waiter(&w3);
    write(p[1], &g, sizeof g);
    for (;;) pause(); /* until killed */
  }
  close(p[1]);
  pid_t g = 0;
  read(p[0], &g, sizeof g);
  close(p[0]);
  CHECK(setpgid(g, g));
  kill(c, SIGKILL);
  code(c);
  kill(g, SIGKILL);
  /* After the child's exec: EACCES. */
  int q[2];
  pipe2(q, O_CLOEXEC);
  c = xfork();
  if (c == 0) {
    close(q[0]);
    char *av[] = {"proc_pgrp", "wait", NULL};
    execve("/proc/self/exe", av, (char *[]){NULL});
    _exit(90);
  }
  close(q[1]);
  char byte;
  read(q[0], &byte, 1); /* end of file: the exec closed the write end */
  close(q[0]);
  CHECK(setpgid(c, c));
  kill(c, SIGKILL);
  code(c);
  /* The child's own setpgid into its parent's group. */
  pid_t pg = getpgrp();
  c = xfork();
  if (c == 0) {
    int ok = setpgid(0, 0) == 0 && getpgrp() == getpid();
    ok = ok && setpgid(0, pg) == 0 && getpgrp() == pg;
    _exit(ok ? 0 : 1);
  }
  printf("child moves itself out and back: code=%d\n", code(c));
  close(w1);
  close(w2);
  code(a);
  code(b);
}

static void group_kill(void) {
  printf("-- kill(-pgid)\n");
  int w[3];
  pid_t k[3];
  for (int i = 0; i < 3; i++) {
    k[i] = waiter(&w[i]);
    setpgid(k[i], k[0]);
  }
  int outside;
  pid_t other = waiter(&outside);
  CHECK(kill(-k[0], SIGTERM));
  for (int i = 0; i < 3; i++) printf("member %d: %d\n", i, code(k[i]));
  close(outside);
  printf("outside the group: %d\n", code(other));
  CHECK(kill(-k[0], SIGTERM));
  for (int i = 0; i < 3; i++) close(w[i]);
}

static void job(void) {
  printf("-- a stopped and continued pipeline\n");
  int pipe_[2], go[2];
  pipe(pipe_);
  pipe(go);
  pid_t first = xfork();
  if (first == 0) {
    setpgid(0, 0);
    close(pipe_[0]);
    close(go[1]);
    char b;
    for (int i = 0; i < 5; i++) write(pipe_[1], "line\n", 5);
    read(go[0], &b, 1); /* until told to finish */
    for (int i = 0; i < 5; i++) write(pipe_[1], "line\n", 5);
    _exit(0);
  }
  setpgid(first, first);
  pid_t second = xfork();
  if (second == 0) {
    setpgid(0, first);
    close(pipe_[1]);
    close(go[0]);
    close(go[1]);
    char buf[64];
    long n, total = 0;
    while ((n = read(pipe_[0], buf, sizeof buf)) != 0)
      if (n > 0) total += n;
    _exit(total / 5);
  }
  setpgid(second, first);
  close(pipe_[0]);
  close(pipe_[1]);
  close(go[0]);
  EXPECT(getpgid(first) == first && getpgid(second) == first);
  int st;
  CHECK(kill(-first, SIGSTOP));
  pid_t w1 = waitpid(-first, &st, WUNTRACED);
  int s1 = WIFSTOPPED(st);
  pid_t w2 = waitpid(-first, &st, WUNTRACED);
  int s2 = WIFSTOPPED(st);
  printf("both stopped: %d\n", s1 && s2 && w1 != w2 && (w1 == first || w1 == second) &&
                                  (w2 == first || w2 == second));
  CHECK(waitpid(-first, &st, WUNTRACED | WNOHANG));
  CHECK(kill(-first, SIGCONT));
  w1 = waitpid(-first, &st, WCONTINUED);
  s1 = WIFCONTINUED(st);
  w2 = waitpid(-first, &st, WCONTINUED);
  s2 = WIFCONTINUED(st);
  printf("both continued: %d\n", s1 && s2 && w1 != w2);
  write(go[1], "g", 1);
  close(go[1]);
  printf("first: %d\n", code(first));
  printf("second counted lines: %d\n", code(second));
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "wait") == 0) {
    for (;;) pause();
  }
  setvbuf(stdout, NULL, _IOFBF, 4096);
  signal(SIGCHLD, SIG_DFL);
  /* Run in a session of our own, so that what the caller's session is
   * (its leader may lie outside our pid namespace) does not show. */
  pid_t lead = xfork();
  if (lead != 0) return code(lead);
  if (setsid() < 0) {
    perror("setsid");
    return 97;
  }
  queries();
  sessions();
  groups();
  group_kill();
  job();
  printf("-- done\n");
  return 0;
}
