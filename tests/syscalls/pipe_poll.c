/* Pipes between processes: poll, ppoll, select and pselect6 woken by a
 * writer in another process; POLLHUP when the last writer goes, POLLERR
 * and EPIPE with SIGPIPE when the last reader goes; PIPE_BUF atomicity
 * with four writers of 512-byte records; FIFO open rules (non-blocking
 * read end without writers, ENXIO for a non-blocking write end without
 * readers, blocking opens that meet, O_RDWR); F_SETPIPE_SZ and
 * F_GETPIPE_SZ; vmsplice in both directions. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
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

static int code(pid_t c) {
  int st;
  if (waitpid(c, &st, 0) != c) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A child that writes `s` to fd after a short delay, then exits. */
static pid_t late_writer(int fd, int rfd, const char *s) {
  pid_t c = xfork();
  if (c == 0) {
    close(rfd);
    usleep(20000);
    if (s) write(fd, s, strlen(s));
    _exit(0);
  }
  return c;
}

static void wakeups(void) {
  printf("-- woken by a writer in another process\n");
  int p[2];
  char buf[16];
  pipe(p);
  pid_t c = late_writer(p[1], p[0], "a");
  struct pollfd pf = {p[0], POLLIN, 0};
  CHECK(poll(&pf, 1, 5000));
  printf("poll revents=%#x\n", pf.revents);
  CHECK(read(p[0], buf, sizeof buf));
  code(c);

  c = late_writer(p[1], p[0], "b");
  pf.revents = 0;
  struct timespec ts = {5, 0};
  sigset_t mask;
  sigemptyset(&mask);
  /* The raw call writes back the time left (the glibc wrapper would
   * hide it). */
  CHECK(syscall(SYS_ppoll, &pf, 1, &ts, &mask, 8));
  printf("ppoll revents=%#x time left below 5 s: %d\n", pf.revents, ts.tv_sec < 5);
  CHECK(read(p[0], buf, sizeof buf));
  code(c);

  c = late_writer(p[1], p[0], "c");
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(p[0], &rs);
  struct timeval tv = {5, 0};
  CHECK(select(p[0] + 1, &rs, NULL, NULL, &tv));
  printf("select: readable=%d\n", FD_ISSET(p[0], &rs));
  CHECK(read(p[0], buf, sizeof buf));
  code(c);

  c = late_writer(p[1], p[0], "d");
  FD_ZERO(&rs);
  FD_SET(p[0], &rs);
  ts = (struct timespec){5, 0};
  struct {
    const sigset_t *ss;
    size_t len;
  } sigarg = {&mask, 8};
  CHECK(syscall(SYS_pselect6, p[0] + 1, &rs, NULL, NULL, &ts, &sigarg));
  printf("pselect6: readable=%d time left below 5 s: %d\n", FD_ISSET(p[0], &rs), ts.tv_sec < 5);
  CHECK(read(p[0], buf, sizeof buf));
  code(c);

  /* Several descriptors: only the written one is ready. */
  int q[2];
  pipe(q);
  c = late_writer(q[1], q[0], "e");
  struct pollfd two[2] = {{p[0], POLLIN, 0}, {q[0], POLLIN, 0}};
  CHECK(poll(two, 2, 5000));
  printf("revents: %#x %#x\n", two[0].revents, two[1].revents);
  code(c);
  close(q[0]);
  close(q[1]);
  /* A timeout with nothing written. */
  CHECK(poll(&pf, 1, 10));
  close(p[0]);
  close(p[1]);
}

static void hangups(void) {
  printf("-- POLLHUP, POLLERR, EPIPE\n");
  int p[2];
  pipe(p);
  /* The last writer is a child that exits without writing. */
  pid_t c = xfork();
  if (c == 0) {
    usleep(20000);
    _exit(0);
  }
  close(p[1]);
  struct pollfd pf = {p[0], POLLIN, 0};
  CHECK(poll(&pf, 1, 5000));
  printf("writer gone: revents=%#x\n", pf.revents);
  code(c);
  char buf[8];
  CHECK(read(p[0], buf, sizeof buf));
  close(p[0]);
  /* Data and hang-up together once the writer has exited. */
  pipe(p);
  c = xfork();
  if (c == 0) {
    write(p[1], "xy", 2);
    _exit(0);
  }
  close(p[1]);
  code(c);
  pf = (struct pollfd){p[0], POLLIN, 0};
  CHECK(poll(&pf, 1, 0));
  printf("data and hang-up: revents=%#x\n", pf.revents);
  CHECK(read(p[0], buf, sizeof buf));
  CHECK(poll(&pf, 1, 0));
  printf("after reading: revents=%#x\n", pf.revents);
  close(p[0]);

  /* The reader goes: POLLERR on the write end, then EPIPE and SIGPIPE. */
  pipe(p);
  c = xfork();
  if (c == 0) {
    close(p[1]);
    usleep(20000);
    _exit(0);
  }
  close(p[0]);
  code(c);
  pf = (struct pollfd){p[1], POLLOUT, 0};
  CHECK(poll(&pf, 1, 0));
  printf("reader gone: revents=%#x\n", pf.revents);
  c = xfork();
  if (c == 0) {
    signal(SIGPIPE, SIG_DFL);
    write(p[1], "z", 1);
    _exit(0);
  }
  printf("write with SIGPIPE default: status=%d\n", code(c));
  c = xfork();
  if (c == 0) {
    signal(SIGPIPE, SIG_IGN);
    long r = write(p[1], "z", 1);
    _exit(r == -1 && errno == EPIPE ? 0 : 1);
  }
  printf("write with SIGPIPE ignored, EPIPE: %d\n", code(c));
  c = xfork();
  if (c == 0) {
    sigset_t b;
    sigemptyset(&b);
    sigaddset(&b, SIGPIPE);
    sigprocmask(SIG_BLOCK, &b, NULL);
    long r = write(p[1], "z", 1);
    int e = errno;
    siginfo_t si;
    struct timespec z = {0, 0};
    int s = sigtimedwait(&b, &si, &z);
    _exit(r == -1 && e == EPIPE && s == SIGPIPE && si.si_code == SI_USER ? 0 : 1);
  }
  printf("write with SIGPIPE blocked: EPIPE and SIGPIPE pending (SI_USER): %d\n", code(c));
  close(p[1]);
}

static void atomic_writes(void) {
  printf("-- PIPE_BUF atomicity\n");
  enum { WRITERS = 4, RECORDS = 200, SIZE = 512 };
  int p[2];
  pipe(p);
  pid_t w[WRITERS];
  for (int i = 0; i < WRITERS; i++) {
    w[i] = xfork();
    if (w[i] == 0) {
      close(p[0]);
      char rec[SIZE];
      memset(rec, 'A' + i, SIZE);
      for (int k = 0; k < RECORDS; k++) {
        rec[0] = '<';
        rec[SIZE - 1] = '>';
        if (write(p[1], rec, SIZE) != SIZE) _exit(1);
      }
      _exit(0);
    }
  }
  close(p[1]);
  static char all[WRITERS * RECORDS * SIZE];
  long got = 0, n;
  char chunk[3000]; /* not a multiple of the record size */
  while ((n = read(p[0], chunk, sizeof chunk)) > 0) {
    if (got + n > (long)sizeof all) break;
    memcpy(all + got, chunk, n);
    got += n;
  }
  close(p[0]);
  int counts[WRITERS] = {0}, whole = 1;
  for (long off = 0; off + SIZE <= got; off += SIZE) {
    char id = all[off + 1];
    if (all[off] != '<' || all[off + SIZE - 1] != '>' || id < 'A' || id >= 'A' + WRITERS) {
      whole = 0;
      continue;
    }
    for (int k = 1; k < SIZE - 1; k++)
      if (all[off + k] != id) whole = 0;
    counts[id - 'A']++;
  }
  printf("bytes=%ld whole records=%d counts=%d %d %d %d\n", got, whole, counts[0], counts[1],
         counts[2], counts[3]);
  for (int i = 0; i < WRITERS; i++) printf("writer %d: %d\n", i, code(w[i]));
}

static void fifos(void) {
  printf("-- FIFOs\n");
  unlink("/tmp/fifo");
  CHECK(mkfifo("/tmp/fifo", 0644));
  struct stat st;
  CHECK(stat("/tmp/fifo", &st));
  printf("S_ISFIFO=%d\n", S_ISFIFO(st.st_mode));
  CHECK(mkfifo("/tmp/fifo", 0644));
  /* Non-blocking: the read end opens alone, the write end does not. */
  CHECK(open("/tmp/fifo", O_WRONLY | O_NONBLOCK));
  int r = open("/tmp/fifo", O_RDONLY | O_NONBLOCK);
  CHECK(r);
  char buf[16];
  CHECK(read(r, buf, sizeof buf)); /* no writer: end of file */
  int w = open("/tmp/fifo", O_WRONLY | O_NONBLOCK);
  CHECK(w);
  CHECK(write(w, "hello", 5));
  CHECK(read(r, buf, sizeof buf));
  CHECK(read(r, buf, sizeof buf)); /* a writer, no data: EAGAIN */
  close(w);
  CHECK(read(r, buf, sizeof buf)); /* the writer left: end of file */
  close(r);
  /* Blocking opens wait for the other end: a child opens for writing,
   * we open for reading; both return. */
  pid_t c = xfork();
  if (c == 0) {
    int fd = open("/tmp/fifo", O_WRONLY);
    if (fd < 0) _exit(1);
    write(fd, "from child", 10);
    _exit(0);
  }
  r = open("/tmp/fifo", O_RDONLY);
  CHECK(r);
  memset(buf, 0, sizeof buf);
  long n, got = 0;
  while ((n = read(r, buf + got, sizeof buf - 1 - got)) > 0) got += n;
  printf("read %ld: %s\n", got, buf);
  printf("child: %d\n", code(c));
  close(r);
  /* The other way round: a reader child waits for us to open for writing. */
  c = xfork();
  if (c == 0) {
    int fd = open("/tmp/fifo", O_RDONLY);
    char b[16] = {0};
    long k = read(fd, b, sizeof b - 1);
    _exit(k == 3 && strcmp(b, "abc") == 0 ? 0 : 1);
  }
  w = open("/tmp/fifo", O_WRONLY);
  CHECK(w);
  CHECK(write(w, "abc", 3));
  close(w);
  printf("reader child: %d\n", code(c));
  /* O_RDWR opens at once and is both ends. */
  int rw = open("/tmp/fifo", O_RDWR);
  CHECK(rw);
  CHECK(write(rw, "rw", 2));
  CHECK(read(rw, buf, sizeof buf));
  w = open("/tmp/fifo", O_WRONLY | O_NONBLOCK); /* a reader exists now */
  CHECK(w);
  close(w);
  close(rw);
  CHECK(unlink("/tmp/fifo"));
}

static void sizes(void) {
  printf("-- F_SETPIPE_SZ and F_GETPIPE_SZ\n");
  int p[2];
  pipe(p);
  CHECK(fcntl(p[0], F_GETPIPE_SZ));
  CHECK(fcntl(p[1], F_SETPIPE_SZ, 3 * 4096));
  CHECK(fcntl(p[0], F_GETPIPE_SZ));
  CHECK(fcntl(p[1], F_SETPIPE_SZ, 0));
  CHECK(fcntl(p[1], F_SETPIPE_SZ, 1));
  CHECK(fcntl(p[1], F_SETPIPE_SZ, 65536));
  /* Smaller than what it holds: EBUSY. */
  char data[10000] = {0};
  CHECK(write(p[1], data, sizeof data));
  CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096));
  CHECK(fcntl(p[1], F_SETPIPE_SZ, 16384));
  CHECK(fcntl(p[1], F_GETPIPE_SZ));
  CHECK(fcntl(p[1], F_SETPIPE_SZ, -1));
  /* A non-blocking writer fills exactly the capacity. */
  char rd[16384];
  CHECK(read(p[0], rd, sizeof rd));
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  long total = 0, n;
  while ((n = write(p[1], data, sizeof data)) > 0) total += n;
  printf("filled %ld then %s\n", total, strerrorname_np(errno));
  int f = open("/dev/null", O_RDONLY);
  CHECK(fcntl(f, F_GETPIPE_SZ));
  CHECK(fcntl(f, F_SETPIPE_SZ, 4096));
  close(f);
  close(p[0]);
  close(p[1]);
}

static void vmsplices(void) {
  printf("-- vmsplice\n");
  int p[2];
  pipe(p);
  char a[] = "hello ", b[] = "world";
  struct iovec iov[2] = {{a, 6}, {b, 5}};
  CHECK(vmsplice(p[1], iov, 2, 0));
  char out[16] = {0};
  CHECK(read(p[0], out, sizeof out - 1));
  printf("read: %s\n", out);
  /* From the read end: copies out of the pipe into memory. */
  CHECK(write(p[1], "spliced", 7));
  char dst[16] = {0};
  struct iovec o = {dst, sizeof dst - 1};
  CHECK(vmsplice(p[0], &o, 1, 0));
  printf("vmsplice out: %s\n", dst);
  CHECK(vmsplice(p[1], iov, 0, 0));
  int f = open("/dev/null", O_WRONLY);
  CHECK(vmsplice(f, iov, 1, 0));
  close(f);
  CHECK(vmsplice(99, iov, 1, 0));
  struct iovec badv = {(void *)8, 4};
  CHECK(vmsplice(p[1], &badv, 1, 0));
  CHECK(vmsplice(p[1], iov, 1, 0x80));
  /* Non-blocking on a full pipe. */
  CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096));
  static char big[4096] __attribute__((aligned(4096)));
  struct iovec bi = {big, sizeof big};
  CHECK(vmsplice(p[1], &bi, 1, SPLICE_F_NONBLOCK));
  CHECK(vmsplice(p[1], &bi, 1, SPLICE_F_NONBLOCK));
  close(p[0]);
  close(p[1]);
}

int main(void) {
  setvbuf(stdout, NULL, _IOFBF, 4096);
  signal(SIGPIPE, SIG_IGN);
  wakeups();
  hangups();
  atomic_writes();
  fifos();
  sizes();
  vmsplices();
  printf("-- done\n");
  return 0;
}
