/* fork and the basic waits: exit codes through waitpid/wait4 and the
 * status macros (exit, signal, core flag with RLIMIT_CORE 0), WNOHANG
 * before and after a child exits, ECHILD, bad options, the parent seen
 * from the child, copy-on-write memory (globals, the heap, private
 * mappings) against shared mappings, and the file descriptor table: a
 * copy whose entries share open file descriptions (offsets, flags), with
 * close-on-exec kept but irrelevant to fork. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

static void show(const char *what, int st) {
  printf("%s: status=%#x exited=%d", what, st, WIFEXITED(st));
  if (WIFEXITED(st)) printf(" code=%d", WEXITSTATUS(st));
  printf(" signaled=%d", WIFSIGNALED(st));
  if (WIFSIGNALED(st)) printf(" sig=%d core=%d", WTERMSIG(st), WCOREDUMP(st) ? 1 : 0);
  printf(" stopped=%d\n", WIFSTOPPED(st));
}

static int global = 1;

static void exit_codes(void) {
  int st;
  printf("-- exit codes\n");
  int codes[] = {0, 1, 42, 255, 256 + 7};
  for (unsigned i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    pid_t c = xfork();
    if (c == 0) _exit(codes[i]);
    pid_t w = waitpid(c, &st, 0);
    EXPECT(w == c);
    char what[32];
    snprintf(what, sizeof what, "_exit(%d)", codes[i]);
    show(what, st);
  }
  /* exit() flushes stdio and runs atexit handlers; _exit does neither. */
  pid_t c = xfork();
  if (c == 0) {
    printf("child: buffered, flushed by exit\n");
    exit(3);
  }
  EXPECT(waitpid(c, &st, 0) == c);
  show("exit(3)", st);
  c = xfork();
  if (c == 0) {
    printf("child: buffered, lost by _exit\n");
    _exit(4);
  }
  EXPECT(waitpid(c, &st, 0) == c);
  show("_exit(4)", st);
  /* Returning from a function run by the child. */
  c = xfork();
  if (c == 0) exit(global + 10);
  EXPECT(wait(&st) == c);
  show("wait", st);
  /* A NULL status pointer. */
  c = xfork();
  if (c == 0) _exit(0);
  EXPECT(waitpid(c, NULL, 0) == c);
}

static void signals(void) {
  int st;
  struct rlimit rl = {0, 0};
  printf("-- killed by signals\n");
  CHECK(setrlimit(RLIMIT_CORE, &rl));
  CHECK(getrlimit(RLIMIT_CORE, &rl));
  printf("RLIMIT_CORE cur=%ld max=%ld\n", (long)rl.rlim_cur, (long)rl.rlim_max);
  int p[2];
  CHECK(pipe(p));
  pid_t c = xfork();
  if (c == 0) {
    char b;
    close(p[1]);
    read(p[0], &b, 1); /* blocks until killed */
    _exit(0);
  }
  close(p[0]);
  CHECK(kill(c, SIGKILL));
  EXPECT(waitpid(c, &st, 0) == c);
  show("SIGKILL", st);
  close(p[1]);

  c = xfork();
  if (c == 0) {
    signal(SIGTERM, SIG_DFL);
    raise(SIGTERM);
    _exit(0);
  }
  EXPECT(waitpid(c, &st, 0) == c);
  show("raise(SIGTERM)", st);

  c = xfork();
  if (c == 0) {
    prctl(PR_SET_DUMPABLE, 0);
    abort();
  }
  EXPECT(waitpid(c, &st, 0) == c);
  show("abort", st);

  c = xfork();
  if (c == 0) {
    prctl(PR_SET_DUMPABLE, 0);
    *(volatile int *)8 = 1;
    _exit(0);
  }
  EXPECT(waitpid(c, &st, 0) == c);
  show("segfault", st);
}

static void nohang(void) {
  int st = 0x5a5a;
  printf("-- WNOHANG\n");
  int p[2];
  CHECK(pipe(p));
  pid_t c = xfork();
  if (c == 0) {
    char b;
    close(p[1]);
    _exit(read(p[0], &b, 1) == 0 ? 5 : 6);
  }
  close(p[0]);
  CHECK(waitpid(c, &st, WNOHANG));
  printf("status untouched: %d\n", st == 0x5a5a);
  CHECK(waitpid(-1, &st, WNOHANG));
  close(p[1]); /* the child sees end of file and exits */
  pid_t w;
  while ((w = waitpid(c, &st, WNOHANG)) == 0) usleep(1000);
  EXPECT(w == c);
  show("after close", st);
  CHECK(waitpid(c, &st, WNOHANG));
  CHECK(waitpid(-1, &st, WNOHANG));
}

static void errors(void) {
  int st;
  printf("-- errors\n");
  CHECK(waitpid(-1, &st, 0));
  CHECK(wait(&st));
  CHECK(waitpid(getpid(), &st, 0));
  CHECK(waitpid(1, &st, 0));
  CHECK(waitpid(0, &st, 0));
  CHECK(waitpid(-getpgrp(), &st, 0));
  CHECK(waitpid(0x3fffffff, &st, 0));
  CHECK(waitpid(-1, &st, __WNOTHREAD));
  CHECK(waitpid(-1, &st, __WALL | __WCLONE));
  CHECK(waitpid(-1, &st, ~0));
  CHECK(waitpid(-1, &st, WEXITED)); /* a waitid flag */
  CHECK(waitpid(-1, &st, WNOWAIT));
  CHECK(syscall(SYS_wait4, -1, &st, 0x10000, NULL));
  /* Validation of options comes before the search for children. */
  pid_t c = xfork();
  if (c == 0) _exit(0);
  CHECK(waitpid(c, &st, 0x10000));
  EXPECT(waitpid(c, &st, 0) == c);
  /* A bad status pointer: EFAULT comes after the child is reaped. */
  c = xfork();
  if (c == 0) _exit(0);
  CHECK(syscall(SYS_wait4, c, (void *)8, 0, NULL));
  CHECK(waitpid(c, &st, WNOHANG));
}

static void parent_child(void) {
  int st;
  printf("-- parent and child\n");
  pid_t me = getpid();
  pid_t c = xfork();
  if (c == 0) {
    int ok = getppid() == me && getpid() != me && syscall(SYS_gettid) == getpid() &&
             getpgrp() == getpgid(me) && getsid(0) == getsid(me);
    _exit(ok ? 0 : 1);
  }
  EXPECT(c > 0 && c != me);
  EXPECT(waitpid(c, &st, 0) == c);
  EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  /* fork as the raw syscall returns 0 in the child too. */
  fflush(stdout);
  long r = syscall(SYS_fork);
  if (r == 0) _exit(getppid() == me ? 7 : 8);
  EXPECT(waitpid(r, &st, 0) == r);
  show("SYS_fork child", st);
  /* Several children, reaped in any order by waitpid(-1). */
  pid_t kids[6];
  for (int i = 0; i < 6; i++) {
    kids[i] = xfork();
    if (kids[i] == 0) _exit(20 + i);
  }
  int seen = 0;
  for (int n = 0; n < 6; n++) {
    pid_t w = waitpid(-1, &st, 0);
    for (int i = 0; i < 6; i++)
      if (w == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 20 + i) seen |= 1 << i;
  }
  printf("six children reaped with their codes: %#x\n", seen);
  CHECK(waitpid(-1, &st, WNOHANG));
  /* A child's children are not ours. */
  c = xfork();
  if (c == 0) {
    pid_t g = fork();
    if (g == 0) _exit(9);
    int s;
    _exit(waitpid(g, &s, 0) == g && WEXITSTATUS(s) == 9 ? 0 : 1);
  }
  EXPECT(waitpid(c, &st, 0) == c);
  show("child that waited for its own child", st);
  /* wait4 with a rusage pointer. */
  c = xfork();
  if (c == 0) _exit(0);
  struct rusage ru;
  memset(&ru, 0xff, sizeof ru);
  EXPECT(wait4(c, &st, 0, &ru) == c);
  EXPECT(ru.ru_utime.tv_sec >= 0 && ru.ru_utime.tv_usec >= 0 && ru.ru_utime.tv_usec < 1000000);
  EXPECT(ru.ru_maxrss >= 0);
}

static void memory(void) {
  int st;
  printf("-- memory after fork\n");
  char *heap = malloc(1 << 20);
  memset(heap, 'a', 1 << 20);
  char *priv = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (priv == MAP_FAILED || shared == MAP_FAILED) exit(98);
  strcpy(priv, "parent private");
  strcpy(shared, "parent shared");
  char *untouched = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  global = 100;
  pid_t c = xfork();
  if (c == 0) {
    /* The child sees the parent's values at fork... */
    int ok = global == 100 && heap[0] == 'a' && heap[(1 << 20) - 1] == 'a' &&
             strcmp(priv, "parent private") == 0 && strcmp(shared, "parent shared") == 0 &&
             untouched[0] == 0;
    /* ...and its writes stay its own, except to the shared mapping. */
    global = 200;
    memset(heap, 'b', 1 << 20);
    strcpy(priv, "child private");
    strcpy(shared, "child shared");
    untouched[4096] = 'c';
    _exit(ok ? 0 : 1);
  }
  EXPECT(waitpid(c, &st, 0) == c);
  EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  printf("global=%d heap=%c%c priv=%s shared=%s untouched=%d\n", global, heap[0],
         heap[(1 << 20) - 1], priv, shared, untouched[4096]);
  /* The parent's writes after fork are not seen by the child either. */
  int p[2];
  CHECK(pipe(p));
  c = xfork();
  if (c == 0) {
    char b;
    close(p[1]);
    read(p[0], &b, 1);
    _exit(global == 100 && heap[5] == 'a' && strcmp(shared, "parent again") == 0 ? 0 : 1);
  }
  close(p[0]);
  global = 300;
  heap[5] = 'z';
  strcpy(shared, "parent again");
  close(p[1]);
  EXPECT(waitpid(c, &st, 0) == c);
  EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  /* Protections are inherited: a read-only page stays read-only. */
  CHECK(mprotect(priv, 4096, PROT_READ));
  c = xfork();
  if (c == 0) {
    prctl(PR_SET_DUMPABLE, 0);
    priv[0] = 'x';
    _exit(0);
  }
  EXPECT(waitpid(c, &st, 0) == c);
  show("write to read-only page in child", st);
  /* MADV_DONTFORK: the range is absent in the child. */
  char *dontfork = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  dontfork[0] = 1;
  CHECK(madvise(dontfork, 4096, MADV_DONTFORK));
  c = xfork();
  if (c == 0) {
    prctl(PR_SET_DUMPABLE, 0);
    _exit(dontfork[0] == 1 ? 0 : 1);
  }
  EXPECT(waitpid(c, &st, 0) == c);
  show("read of MADV_DONTFORK page in child", st);
  /* MADV_WIPEONFORK: the child sees zeros. */
  CHECK(madvise(untouched, 4096, MADV_WIPEONFORK));
  untouched[0] = 5;
  c = xfork();
  if (c == 0) _exit(untouched[0] == 0 ? 0 : 1);
  EXPECT(waitpid(c, &st, 0) == c);
  show("MADV_WIPEONFORK page in child is zero", st);
  printf("parent keeps: %d\n", untouched[0]);
  free(heap);
}

static void fds(void) {
  int st;
  printf("-- file descriptors\n");
  int p[2];
  CHECK(pipe(p));
  int fd = open("/tmp/proc_fork.txt", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  CHECK(fd);
  CHECK(fcntl(fd, F_GETFD));
  int nb = open("/dev/null", O_RDONLY);
  CHECK(nb);
  pid_t c = xfork();
  if (c == 0) {
    /* The descriptors are there, with their flags. */
    int ok = fcntl(fd, F_GETFD) == FD_CLOEXEC && fcntl(nb, F_GETFD) == 0;
    ok = ok && write(fd, "abc", 3) == 3;
    ok = ok && write(p[1], "from child", 10) == 10;
    /* Status flags live in the shared open file description. */
    ok = ok && fcntl(nb, F_SETFL, O_NONBLOCK) == 0;
    /* Closing and changing fd flags is private to the child. */
    close(p[0]);
    fcntl(fd, F_SETFD, 0);
    _exit(ok ? 0 : 1);
  }
  EXPECT(waitpid(c, &st, 0) == c);
  EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  char buf[16] = {0};
  CHECK(read(p[0], buf, sizeof buf - 1));
  printf("pipe: %s\n", buf);
  CHECK(lseek(fd, 0, SEEK_CUR)); /* offset moved by the child */
  CHECK(fcntl(fd, F_GETFD));     /* still close-on-exec here */
  CHECK(fcntl(nb, F_GETFL) & O_NONBLOCK);
  /* The parent's later opens are not in the child's table. */
  CHECK(pipe(p + 0) == 0 ? 0 : -1);
  c = xfork();
  if (c == 0) {
    int fresh = open("/dev/null", O_RDONLY);
    _exit(fresh == p[1] + 1 ? 0 : 1);
  }
  EXPECT(waitpid(c, &st, 0) == c);
  EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  /* Pipe ends held by the child keep the pipe open: end of file only
   * after both sides close the write end. */
  int q[2];
  CHECK(pipe(q));
  c = xfork();
  if (c == 0) {
    close(q[0]);
    write(q[1], "x", 1);
    _exit(0);
  }
  CHECK(close(q[1]));
  EXPECT(waitpid(c, &st, 0) == c);
  CHECK(read(q[0], buf, sizeof buf));
  CHECK(read(q[0], buf, sizeof buf));
  close(q[0]);
  close(fd);
  close(nb);
  unlink("/tmp/proc_fork.txt");
}

int main(void) {
  setvbuf(stdout, NULL, _IOFBF, 4096);
  signal(SIGCHLD, SIG_DFL);
  exit_codes();
  signals();
  nohang();
  errors();
  parent_child();
  memory();
  fds();
  printf("-- done\n");
  return 0;
}
