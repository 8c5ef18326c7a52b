/* cflags: -pthread */
/* execve: the new image (run again as /proc/self/exe with a mode in
 * argv[1]) sees exactly the argv and environment given, AT_EXECFN and
 * its comm; close-on-exec descriptors are closed and others kept with
 * their offsets; caught signals revert to the default, ignored ones stay
 * ignored, the blocked mask and pending signals are kept, the alternate
 * stack is dropped; the pid and parent are kept, also when a non-leader
 * thread execs (the other threads go, the image runs as the leader);
 * #! scripts; execveat with AT_EMPTY_PATH; vfork (shared memory, parent
 * resumes after the exec) and posix_spawn; errors (ENOENT, EACCES,
 * ENOEXEC, ENOTDIR, EFAULT, E2BIG). */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

extern char **environ;
#define SELF "/proc/self/exe"

static pid_t xfork(void) {
  fflush(stdout);
  pid_t p = fork();
  if (p < 0) {
    perror("fork");
    exit(99);
  }
  return p;
}

static void wait_show(const char *what, pid_t c) {
  int st;
  pid_t w = waitpid(c, &st, 0);
  printf("%s: waited=%d status=%#x\n", what, w == c, st);
}

static void comm(char *buf, size_t n) {
  int fd = open("/proc/self/comm", O_RDONLY);
  ssize_t r = fd >= 0 ? read(fd, buf, n - 1) : -1;
  buf[r > 0 ? r - 1 : 0] = 0;
  if (fd >= 0) close(fd);
}

/* ---- modes of the new image ---- */

static int show(int argc, char **argv) {
  printf("  [new] argc=%d\n", argc);
  for (int i = 0; i < argc; i++) printf("  [new] argv[%d]=\"%s\"\n", i, argv[i]);
  printf("  [new] argv[argc] is NULL: %d\n", argv[argc] == NULL);
  for (char **e = environ; *e; e++) printf("  [new] env \"%s\"\n", *e);
  const char *fn = (const char *)getauxval(AT_EXECFN);
  printf("  [new] AT_EXECFN=%s\n", fn ? fn : "(none)");
  char c[32];
  comm(c, sizeof c);
  printf("  [new] comm=%s\n", c);
  /* /proc/self/exe names the program itself, even when it was run as
   * /proc/self/exe: the parent passes its own link's target. */
  char exe[4096];
  ssize_t n = readlink(SELF, exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = 0;
  const char *want = getenv("EXE_WAS");
  if (want) printf("  [new] exe link unchanged: %d\n", strcmp(exe, want) == 0);
  return 0;
}

static int fds(char **argv) {
  int a = atoi(argv[2]), b = atoi(argv[3]), c = atoi(argv[4]), w = atoi(argv[5]);
  CHECK(fcntl(a, F_GETFD));
  CHECK(fcntl(b, F_GETFD));
  CHECK(fcntl(c, F_GETFD));
  CHECK(lseek(b, 0, SEEK_CUR));
  CHECK(fcntl(b, F_GETFL) & O_APPEND);
  CHECK(write(w, "kept", 4));
  return 0;
}

static const char *disp(int sig) {
  struct sigaction sa;
  sigaction(sig, NULL, &sa);
  if (sa.sa_handler == SIG_DFL) return "default";
  if (sa.sa_handler == SIG_IGN) return "ignored";
  return "handler";
}

static int sigs(void) {
  printf("  [new] SIGUSR1 %s, SIGUSR2 %s, SIGTERM %s, SIGCHLD %s, SIGPIPE %s\n",
         disp(SIGUSR1), disp(SIGUSR2), disp(SIGTERM), disp(SIGCHLD), disp(SIGPIPE));
  sigset_t m, p;
  sigprocmask(SIG_BLOCK, NULL, &m);
  sigpending(&p);
  printf("  [new] blocked: INT=%d QUIT=%d USR1=%d\n", sigismember(&m, SIGINT),
         sigismember(&m, SIGQUIT), sigismember(&m, SIGUSR1));
  printf("  [new] pending: INT=%d QUIT=%d\n", sigismember(&p, SIGINT), sigismember(&p, SIGQUIT));
  stack_t ss;
  sigaltstack(NULL, &ss);
  printf("  [new] altstack disabled=%d\n", (ss.ss_flags & SS_DISABLE) != 0);
  /* The pending SIGINT is delivered once unblocked: default action. */
  fflush(stdout);
  sigprocmask(SIG_UNBLOCK, &m, NULL);
  printf("  [new] not reached\n");
  return 0;
}

static int pid_mode(char **argv) {
  long pid = atol(argv[2]), ppid = atol(argv[3]);
  EXPECT(getpid() == pid);
  EXPECT(getppid() == ppid);
  EXPECT(syscall(SYS_gettid) == pid);
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)))
      if (e->d_name[0] != '.') n++;
    closedir(d);
  }
  printf("  [new] threads=%d\n", n);
  return 12;
}

/* ---- the first image ---- */

static void args_env(void) {
  printf("-- argv and environment\n");
  pid_t c = xfork();
  if (c == 0) {
    char *av[] = {"first-arg", "show", "two words", "", "last", NULL};
    char *ev[] = {"A=1", "EMPTY=", "B=two words", "NOEQUALS", NULL};
    execve(SELF, av, ev);
    _exit(90);
  }
  wait_show("show", c);
  c = xfork();
  if (c == 0) {
    char *av[] = {"x", "show", NULL};
    char *ev[] = {NULL};
    execve(SELF, av, ev);
    _exit(90);
  }
  wait_show("empty environment", c);
  static char was[4200] = "EXE_WAS=";
  ssize_t n = readlink(SELF, was + 8, sizeof was - 9);
  was[n > 0 ? 8 + n : 8] = 0;
  c = xfork();
  if (c == 0) {
    char *av[] = {"z", "show", NULL};
    char *ev[] = {was, NULL};
    execve(SELF, av, ev);
    _exit(90);
  }
  wait_show("exe link", c);
}

static void fd_inherit(void) {
  printf("-- descriptors across exec\n");
  int a = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int b = open("/tmp/proc_exec.txt", O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0644);
  int c = open("/dev/null", O_RDONLY);
  CHECK(fcntl(c, F_SETFD, FD_CLOEXEC));
  CHECK(write(b, "hello", 5));
  int p[2];
  CHECK(pipe(p));
  char sa[8], sb[8], sc[8], sw[8];
  snprintf(sa, sizeof sa, "%d", a);
  snprintf(sb, sizeof sb, "%d", b);
  snprintf(sc, sizeof sc, "%d", c);
  snprintf(sw, sizeof sw, "%d", p[1]);
  pid_t k = xfork();
  if (k == 0) {
    close(p[0]);
    char *av[] = {"x", "fds", sa, sb, sc, sw, NULL};
    execve(SELF, av, environ);
    _exit(90);
  }
  close(p[1]);
  wait_show("fds", k);
  char buf[8] = {0};
  CHECK(read(p[0], buf, sizeof buf - 1));
  printf("pipe: %s\n", buf);
  close(p[0]);
  close(a);
  close(b);
  close(c);
}

static void on_sig(int s) { (void)s; }

static void sig_inherit(void) {
  printf("-- signals across exec\n");
  pid_t c = xfork();
  if (c == 0) {
    struct sigaction sa = {0};
    sa.sa_handler = on_sig;
    sa.sa_flags = SA_RESTART | SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGUSR2, SIG_IGN);
    signal(SIGCHLD, SIG_IGN);
    signal(SIGPIPE, SIG_DFL);
    static char stack[65536];
    stack_t ss = {stack, 0, sizeof stack};
    sigaltstack(&ss, NULL);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGINT);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, NULL);
    raise(SIGINT); /* stays pending across exec */
    char *av[] = {"x", "sigs", NULL};
    execve(SELF, av, environ);
    _exit(90);
  }
  int st;
  EXPECT(waitpid(c, &st, 0) == c);
  printf("killed by the pending signal: %d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));
}

static void *exec_thread(void *arg) {
  char **av = arg;
  execve(SELF, av, environ);
  _exit(91);
}

static void *idle_thread(void *arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

static void thread_exec(void) {
  printf("-- exec from a thread other than the leader\n");
  pid_t c = xfork();
  if (c == 0) {
    static char spid[16], sppid[16];
    snprintf(spid, sizeof spid, "%d", getpid());
    snprintf(sppid, sizeof sppid, "%d", getppid());
    static char *av[] = {"x", "pid", spid, sppid, NULL};
    pthread_t t, idle;
    pthread_create(&idle, NULL, idle_thread, NULL);
    pthread_create(&t, NULL, exec_thread, av);
    for (;;) pause();
  }
  wait_show("exec from a thread", c);
  /* And from the leader of a process with other threads. */
  c = xfork();
  if (c == 0) {
    static char spid[16], sppid[16];
    snprintf(spid, sizeof spid, "%d", getpid());
    snprintf(sppid, sizeof sppid, "%d", getppid());
    char *av[] = {"x", "pid", spid, sppid, NULL};
    pthread_t idle;
    pthread_create(&idle, NULL, idle_thread, NULL);
    pthread_create(&idle, NULL, idle_thread, NULL);
    execve(SELF, av, environ);
    _exit(91);
  }
  wait_show("exec from the leader with threads", c);
}

static void scripts(void) {
  printf("-- #! scripts and execveat\n");
  int fd = open("/tmp/script", O_WRONLY | O_CREAT | O_TRUNC, 0755);
  CHECK(write(fd, "#!" SELF " show\n", strlen("#!" SELF " show\n")));
  close(fd);
  pid_t c = xfork();
  if (c == 0) {
    char *av[] = {"ignored-argv0", "arg1", NULL};
    char *ev[] = {"S=1", NULL};
    execve("/tmp/script", av, ev);
    _exit(90);
  }
  wait_show("script", c);
  fd = open("/tmp/script2", O_WRONLY | O_CREAT | O_TRUNC, 0755);
  CHECK(write(fd, "#!/nonexistent/interp\n", 22));
  close(fd);
  char *av0[] = {"x", NULL};
  CHECK(execve("/tmp/script2", av0, environ));

  int self = open(SELF, O_RDONLY | O_CLOEXEC);
  CHECK_OK(self);
  c = xfork();
  if (c == 0) {
    char *av[] = {"y", "show", "at", NULL};
    char *ev[] = {"AT=1", NULL};
    syscall(SYS_execveat, self, "", av, ev, AT_EMPTY_PATH);
    _exit(90);
  }
  wait_show("execveat AT_EMPTY_PATH", c);
  CHECK(syscall(SYS_execveat, self, "", av0, environ, 0));
  CHECK(syscall(SYS_execveat, self, "", av0, environ, 0x12345));
  CHECK(syscall(SYS_execveat, AT_FDCWD, SELF, av0, environ, 0x12345));
  close(self);
  int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
  CHECK(syscall(SYS_execveat, dir, "missing", av0, environ, 0));
  close(dir);
}

static volatile int vfork_flag;

static void vforks(void) {
  printf("-- vfork\n");
  vfork_flag = 0;
  fflush(stdout);
  pid_t c = vfork();
  if (c == 0) {
    vfork_flag = 1; /* the memory is the parent's until exec or exit */
    _exit(13);
  }
  printf("child wrote parent memory: %d\n", vfork_flag);
  wait_show("vfork + _exit", c);
  fflush(stdout);
  c = vfork();
  if (c == 0) {
    char *av[] = {"v", "show", NULL};
    char *ev[] = {"VFORK=1", NULL};
    execve(SELF, av, ev);
    _exit(90);
  }
  wait_show("vfork + exec", c);
  /* A failed exec in the vfork child, then _exit. */
  fflush(stdout);
  c = vfork();
  if (c == 0) {
    char *av[] = {"v", NULL};
    execve("/nonexistent", av, environ);
    vfork_flag = errno;
    _exit(14);
  }
  printf("errno seen through shared memory: %s\n", strerrorname_np(vfork_flag));
  wait_show("vfork + failed exec", c);
}

static void spawn(void) {
  printf("-- posix_spawn\n");
  pid_t c;
  char *av[] = {"spawned", "show", NULL};
  char *ev[] = {"SPAWN=1", NULL};
  fflush(stdout);
  int r = posix_spawn(&c, SELF, NULL, NULL, av, ev);
  wait_show("posix_spawn", c);
  printf("posix_spawn returned %d\n", r);
  /* With file actions: the new image's fd 7 is /tmp/proc_exec.txt. */
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 7, "/tmp/proc_exec.txt", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, 7, 8);
  char *av2[] = {"spawned", "fds", "3", "8", "9", "2", NULL};
  fflush(stdout);
  r = posix_spawn(&c, SELF, &fa, NULL, av2, environ);
  wait_show("posix_spawn with file actions", c);
  printf("posix_spawn returned %d\n", r);
  posix_spawn_file_actions_destroy(&fa);
  /* Errors come back from posix_spawn itself. */
  CHECK(posix_spawn(&c, "/nonexistent", NULL, NULL, av, ev) == ENOENT);
  CHECK(posix_spawnp(&c, "no-such-program-anywhere", NULL, NULL, av, ev) == ENOENT);
}

static void errors(void) {
  printf("-- errors\n");
  char *av[] = {"x", NULL};
  CHECK(execve("/nonexistent", av, environ));
  CHECK(execve("", av, environ));
  CHECK(execve("/tmp", av, environ));
  CHECK(execve("/dev/null", av, environ));
  int fd = open("/tmp/garbage", O_WRONLY | O_CREAT | O_TRUNC, 0755);
  CHECK(write(fd, "this is not an executable\n", 26));
  close(fd);
  CHECK(execve("/tmp/garbage", av, environ));
  fd = open("/tmp/empty", O_WRONLY | O_CREAT | O_TRUNC, 0755);
  close(fd);
  CHECK(execve("/tmp/empty", av, environ));
  fd = open("/tmp/noexec", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  close(fd);
  CHECK(execve("/tmp/noexec", av, environ));
  CHECK(execve("/tmp/garbage/sub", av, environ));
  /* A truncated ELF header. */
  fd = open("/tmp/short-elf", O_WRONLY | O_CREAT | O_TRUNC, 0755);
  CHECK(write(fd, "\177ELF\2\1\1", 7));
  close(fd);
  CHECK(execve("/tmp/short-elf", av, environ));
  CHECK(syscall(SYS_execve, 8, av, environ));
  CHECK(syscall(SYS_execve, SELF, 8, environ));
  char *badarg[] = {"x", (char *)8, NULL};
  CHECK(execve(SELF, badarg, environ));
  CHECK(syscall(SYS_execve, SELF, av, 8));
  /* One string longer than MAX_ARG_STRLEN (32 pages). */
  size_t n = 33 * 4096;
  char *big = malloc(n + 1);
  memset(big, 'a', n);
  big[n] = 0;
  char *bigv[] = {"x", big, NULL};
  CHECK(execve(SELF, bigv, environ));
  free(big);
  /* Still here, with our image intact. */
  char c[32];
  comm(c, sizeof c);
  printf("still running as %s\n", c);
  unlink("/tmp/garbage");
  unlink("/tmp/empty");
  unlink("/tmp/noexec");
  unlink("/tmp/short-elf");
  unlink("/tmp/script");
  unlink("/tmp/script2");
  unlink("/tmp/proc_exec.txt");
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "show") == 0) return show(argc, argv);
  if (argc > 5 && strcmp(argv[1], "fds") == 0) return fds(argv);
  if (argc > 1 && strcmp(argv[1], "sigs") == 0) return sigs();
  if (argc > 3 && strcmp(argv[1], "pid") == 0) return pid_mode(argv);
  if (argc > 1) return 97;
  setvbuf(stdout, NULL, _IOFBF, 4096);
  signal(SIGCHLD, SIG_DFL);
  args_env();
  fd_inherit();
  sig_inherit();
  thread_exec();
  scripts();
  vforks();
  spawn();
  errors();
  printf("-- done\n");
  return 0;
}
