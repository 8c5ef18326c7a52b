/* pipe and pipe2: the two ends, their flags, data, end of file, EPIPE,
 * capacity, and the errors. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  int p[2];
  CHECK(pipe(p));
  printf("fds %d %d\n", p[0], p[1]);
  CHECK(fcntl(p[0], F_GETFL));
  CHECK(fcntl(p[1], F_GETFL));
  CHECK(fcntl(p[0], F_GETFD));
  struct stat st;
  CHECK(fstat(p[0], &st));
  printf("mode=%o nlink=%ld size=%ld\n", st.st_mode, (long)st.st_nlink, (long)st.st_size);
  struct stat st2;
  CHECK(fstat(p[1], &st2));
  EXPECT(st.st_ino == st2.st_ino && st.st_dev == st2.st_dev);
  CHECK(write(p[1], "hello", 5));
  int n = 0;
  CHECK(ioctl(p[0], FIONREAD, &n));
  printf("FIONREAD=%d\n", n);
  char buf[16] = {0};
  CHECK(read(p[0], buf, 3));
  CHECK(read(p[0], buf + 3, sizeof buf - 3));
  printf("read: %s\n", buf);
  CHECK(write(p[0], "x", 1));
  CHECK(read(p[1], buf, 1));
  CHECK(lseek(p[0], 0, SEEK_CUR));
  CHECK(pread(p[0], buf, 1, 0));
  CHECK(pwrite(p[1], buf, 1, 0));

  /* End of file and EPIPE. */
  CHECK(close(p[1]));
  CHECK(read(p[0], buf, sizeof buf));
  struct pollfd pfd = {p[0], POLLIN, 0};
  CHECK(poll(&pfd, 1, 0));
  printf("revents=%#x\n", pfd.revents);
  CHECK(close(p[0]));
  CHECK(pipe(p));
  CHECK(close(p[0]));
  CHECK(write(p[1], "x", 1));
  CHECK(close(p[1]));

  /* pipe2 flags. */
  CHECK(pipe2(p, O_CLOEXEC));
  CHECK(fcntl(p[0], F_GETFD));
  CHECK(fcntl(p[1], F_GETFD));
  CHECK(close(p[0]));
  CHECK(close(p[1]));
  CHECK(pipe2(p, O_NONBLOCK));
  CHECK(fcntl(p[0], F_GETFL));
  CHECK(fcntl(p[1], F_GETFL));
  CHECK(read(p[0], buf, 1));
  char *big = calloc(1, 100000);
  CHECK(write(p[1], big, 100000));
  CHECK(write(p[1], "x", 1));
  CHECK(ioctl(p[0], FIONREAD, &n));
  printf("FIONREAD=%d\n", n);
  CHECK(read(p[0], big, 100000));
  CHECK(read(p[0], big, 100000));
  CHECK(close(p[0]));
  CHECK(close(p[1]));
  CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK));
  CHECK(fcntl(p[0], F_GETFD));
  CHECK(fcntl(p[1], F_GETFL));
  CHECK(close(p[0]));
  CHECK(close(p[1]));
  CHECK(pipe2(p, O_WRONLY));
  CHECK(pipe2(p, O_RDWR));
  CHECK(pipe2(p, O_APPEND));
  CHECK(pipe2(p, O_NOATIME));
  CHECK(pipe2(p, 0x80000000));

  /* Bad pointers leave no fds behind. */
  CHECK(pipe(NULL));
  CHECK(syscall(SYS_pipe2, (void *)8, 0));
  CHECK(pipe(p));
  printf("fds %d %d\n", p[0], p[1]);
  CHECK(close(p[0]));
  CHECK(close(p[1]));

  /* Out of fds. */
  struct rlimit rl = {5, 5};
  CHECK(setrlimit(RLIMIT_NOFILE, &rl));
  CHECK(pipe(p));
  CHECK(close(p[1]));
  CHECK(pipe(p));
  int extra = dup(0);
  printf("extra=%d\n", extra);
  CHECK(close(extra));
  CHECK(close(3));
  CHECK(pipe(p));
  printf("fds %d %d\n", p[0], p[1]);
  return 0;
}
