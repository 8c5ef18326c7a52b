/* Unix stream sockets from socketpair: reads and writes, shutdown each
 * way, EOF, EPIPE with SIGPIPE (and MSG_NOSIGNAL without), MSG_PEEK,
 * MSG_DONTWAIT, MSG_WAITALL across writes of another process, MSG_TRUNC
 * (ignored by streams), FIONREAD and SIOCOUTQ, poll readiness (POLLHUP
 * and POLLRDHUP when the peer goes), fstat and /proc/self/fd of a socket,
 * and the errors of socket(2) and socketpair(2). */
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

static volatile sig_atomic_t pipes;
static void on_pipe(int s) { (void)s; pipes++; }

static pid_t xfork(void) {
  fflush(stdout);
  pid_t p = fork();
  if (p < 0) exit(99);
  return p;
}

static void basics(void) {
  printf("-- basics\n");
  int sv[2];
  char buf[64];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  CHECK(write(sv[0], "hello", 5));
  CHECK(write(sv[0], " world", 6));
  int n = -1;
  CHECK(ioctl(sv[1], FIONREAD, &n));
  printf("FIONREAD %d\n", n);
  CHECK(ioctl(sv[0], SIOCOUTQ, &n));
  printf("SIOCOUTQ after writes > 11: %d\n", n > 11);
  /* Stream reads glue writes together. */
  CHECK(recv(sv[1], buf, 3, MSG_PEEK));
  CHECK(recv(sv[1], buf, sizeof buf, MSG_PEEK));
  buf[11] = 0;
  printf("peeked '%s'\n", buf);
  CHECK(recv(sv[1], buf, 2, MSG_TRUNC));
  CHECK(read(sv[1], buf, sizeof buf));
  buf[9] = 0;
  printf("read '%s'\n", buf);
  CHECK(ioctl(sv[0], SIOCOUTQ, &n));
  printf("SIOCOUTQ after reads %d\n", n);
  CHECK(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
  CHECK(read(sv[1], buf, 0));
  /* readv/writev. */
  struct iovec iov[2] = {{"ab", 2}, {"cde", 3}};
  CHECK(writev(sv[1], iov, 2));
  char a[2], b[8];
  struct iovec riov[2] = {{a, 2}, {b, 8}};
  CHECK(readv(sv[0], riov, 2));
  printf("readv '%.2s' '%.3s'\n", a, b);
  /* A non-blocking socket fills up. */
  CHECK(fcntl(sv[0], F_SETFL, O_NONBLOCK));
  static char big[65536];
  long total = 0;
  for (;;) {
    ssize_t w = write(sv[0], big, sizeof big);
    if (w < 0) {
      printf("filled: %s, more than 64 KiB: %d\n", strerrorname_np(errno), total > 65536);
      break;
    }
    total += w;
  }
  struct pollfd pf = {sv[0], POLLOUT, 0};
  CHECK(poll(&pf, 1, 0));
  CHECK(ioctl(sv[1], FIONREAD, &n));
  printf("FIONREAD == written: %d\n", n == total);
  /* Drain it: writable again. */
  while (total > 0) {
    ssize_t r = read(sv[1], big, sizeof big);
    if (r <= 0) break;
    total -= r;
  }
  CHECK(poll(&pf, 1, 0));
  printf("revents %#x\n", pf.revents);
  close(sv[0]);
  close(sv[1]);
}

static void shutdowns(void) {
  printf("-- shutdown\n");
  int sv[2];
  char buf[16];
  signal(SIGPIPE, on_pipe);
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  CHECK(write(sv[0], "x", 1));
  CHECK(shutdown(sv[0], SHUT_WR));
  struct pollfd pf = {sv[1], POLLIN | POLLOUT | POLLRDHUP, 0};
  CHECK(poll(&pf, 1, 0));
  printf("reader revents %#x\n", pf.revents);
  CHECK(read(sv[1], buf, sizeof buf));
  CHECK(read(sv[1], buf, sizeof buf));
  pipes = 0;
  CHECK(write(sv[0], "y", 1));
  printf("SIGPIPE %d\n", pipes);
  CHECK(send(sv[0], "y", 1, MSG_NOSIGNAL));
  printf("SIGPIPE %d\n", pipes);
  /* The other way still works. */
  CHECK(write(sv[1], "back", 4));
  CHECK(read(sv[0], buf, sizeof buf));
  /* SHUT_RD: our reads see EOF, the peer's writes EPIPE. */
  CHECK(shutdown(sv[0], SHUT_RD));
  CHECK(read(sv[0], buf, sizeof buf));
  pipes = 0;
  CHECK(write(sv[1], "z", 1));
  printf("SIGPIPE %d\n", pipes);
  CHECK(shutdown(sv[0], 3));
  CHECK(shutdown(sv[0], -1));
  pf.fd = sv[0];
  CHECK(poll(&pf, 1, 0));
  printf("both shut revents %#x\n", pf.revents);
  close(sv[0]);
  close(sv[1]);

  /* The peer closes with data unread by it: ECONNRESET once, then EOF. */
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  CHECK(write(sv[1], "unread", 6));
  CHECK(write(sv[0], "for you", 7));
  close(sv[0]);
  pf.fd = sv[1];
  pf.events = POLLIN | POLLOUT | POLLRDHUP;
  CHECK(poll(&pf, 1, 0));
  printf("peer gone revents %#x\n", pf.revents);
  CHECK(read(sv[1], buf, sizeof buf));
  CHECK(read(sv[1], buf, sizeof buf));
  CHECK(read(sv[1], buf, sizeof buf));
  pipes = 0;
  CHECK(write(sv[1], "z", 1));
  printf("SIGPIPE %d\n", pipes);
  int err = -1;
  socklen_t l = sizeof err;
  CHECK(getsockopt(sv[1], SOL_SOCKET, SO_ERROR, &err, &l));
  printf("SO_ERROR %d\n", err);
  close(sv[1]);

  /* Closed without unread data: plain EOF. */
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  CHECK(write(sv[0], "last", 4));
  close(sv[0]);
  CHECK(read(sv[1], buf, sizeof buf));
  CHECK(read(sv[1], buf, sizeof buf));
  close(sv[1]);
  signal(SIGPIPE, SIG_DFL);
}

static void waits(void) {
  printf("-- blocking reads across processes\n");
  int sv[2];
  char buf[32];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  pid_t c = xfork();
  if (c == 0) {
    close(sv[1]);
    usleep(20000);
    write(sv[0], "part1-", 6);
    usleep(20000);
    write(sv[0], "part2", 5);
    usleep(20000);
    _exit(0);
  }
  close(sv[0]);
  CHECK(recv(sv[1], buf, 11, MSG_WAITALL));
  printf("got '%.11s'\n", buf);
  struct pollfd pf = {sv[1], POLLIN | POLLRDHUP, 0};
  CHECK(poll(&pf, 1, 5000));
  printf("after exit revents %#x\n", pf.revents);
  CHECK(read(sv[1], buf, sizeof buf));
  int st;
  waitpid(c, &st, 0);
  close(sv[1]);

  /* A writer blocked on a full socket is woken by the reader. */
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  c = xfork();
  if (c == 0) {
    static char big[1 << 20];
    ssize_t w = write(sv[0], big, sizeof big);
    _exit(w == (ssize_t)sizeof big ? 0 : 1);
  }
  static char sink[1 << 16];
  long got = 0;
  while (got < (1 << 20)) {
    ssize_t r = read(sv[1], sink, sizeof sink);
    if (r <= 0) break;
    got += r;
  }
  printf("read %ld\n", got);
  waitpid(c, &st, 0);
  printf("writer exit %d\n", WEXITSTATUS(st));
  close(sv[0]);
  close(sv[1]);
}

static void files(void) {
  printf("-- the socket as a file\n");
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv);
  CHECK(fcntl(sv[0], F_GETFD));
  printf("O_NONBLOCK %d O_RDWR %d\n", (fcntl(sv[0], F_GETFL) & O_NONBLOCK) != 0,
         (fcntl(sv[0], F_GETFL) & O_ACCMODE) == O_RDWR);
  struct stat st;
  CHECK(fstat(sv[0], &st));
  printf("S_ISSOCK %d mode %o nlink %ld size %ld blksize %ld\n", S_ISSOCK(st.st_mode),
         st.st_mode & 07777, (long)st.st_nlink, (long)st.st_size, (long)st.st_blksize);
  struct stat st1;
  fstat(sv[1], &st1);
  printf("distinct inodes %d same dev %d\n", st.st_ino != st1.st_ino, st.st_dev == st1.st_dev);
  char link[64], want[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", sv[0]);
  ssize_t n = readlink(link, want, sizeof want - 1);
  want[n > 0 ? n : 0] = 0;
  char expect[64];
  snprintf(expect, sizeof expect, "socket:[%lu]", (unsigned long)st.st_ino);
  printf("fd link is socket:[ino] %d\n", strcmp(want, expect) == 0);
  CHECK(lseek(sv[0], 0, SEEK_SET));
  CHECK(pread(sv[0], link, 1, 0));
  CHECK(open(link, O_RDWR));
  close(sv[0]);
  close(sv[1]);
}

static void errors(void) {
  printf("-- errors\n");
  int sv[2];
  CHECK(socket(AF_UNIX, SOCK_STREAM | 0x100000, 0));
  CHECK(socket(AF_UNIX, 7, 0));
  CHECK(socket(AF_UNIX, 15, 0));
  CHECK(socket(AF_UNIX, SOCK_STREAM, 2));
  CHECK(socket(AF_UNIX, SOCK_STREAM, PF_UNIX) >= 0);
  CHECK(socket(AF_UNIX, SOCK_RAW, 0) >= 0);
  CHECK(socket(46, SOCK_STREAM, 0));
  CHECK(socket(-1, SOCK_STREAM, 0));
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, NULL));
  CHECK(socketpair(AF_UNIX, 9, 0, sv));
  CHECK(socketpair(46, SOCK_STREAM, 0, sv));
  int fd = open("/dev/null", O_RDWR);
  char c;
  CHECK(send(fd, "x", 1, 0));
  CHECK(recv(fd, &c, 1, 0));
  CHECK(shutdown(fd, SHUT_RD));
  CHECK(listen(fd, 1));
  CHECK(send(99, "x", 1, 0));
  CHECK(shutdown(99, SHUT_RD));
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(send(s, "x", 1, 0));
  CHECK(recv(s, &c, 1, 0));
  CHECK(read(s, &c, 1));
  CHECK(write(s, "x", 1));
  CHECK(shutdown(s, SHUT_RDWR));
  struct pollfd pf = {s, POLLIN | POLLOUT, 0};
  CHECK(poll(&pf, 1, 0));
  printf("unconnected revents %#x\n", pf.revents);
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  struct sockaddr_un a = {AF_UNIX, "/nowhere"};
  CHECK(sendto(sv[0], "x", 1, 0, (struct sockaddr *)&a, sizeof a));
  CHECK(sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof a));
  close(sv[0]);
  close(sv[1]);
  struct rlimit old, low;
  getrlimit(RLIMIT_NOFILE, &old);
  low = old;
  low.rlim_cur = 8;
  setrlimit(RLIMIT_NOFILE, &low);
  int last = 0;
  for (;;) {
    int x = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (x < 0) {
      printf("socket at the limit: %s\n", strerrorname_np(errno));
      break;
    }
    last = x;
  }
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  close(last);
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  setrlimit(RLIMIT_NOFILE, &old);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  basics();
  shutdowns();
  waits();
  files();
  errors();
  return 0;
}
