/* fcntl owners and signals, and pipe sizes. */
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include "check.h"

int main(void) {
  int fd = open("/tmp/f", O_CREAT | O_RDWR, 0600);
  CHECK(fcntl(fd, F_GETOWN));
  CHECK(fcntl(fd, F_SETOWN, getpid()));
  EXPECT(fcntl(fd, F_GETOWN) == getpid());
  CHECK(fcntl(fd, F_SETOWN, 999999));
  CHECK(fcntl(fd, F_SETOWN, 0));
  CHECK(fcntl(fd, F_GETOWN));
  struct f_owner_ex ex = {F_OWNER_TID, getpid()};
  CHECK(fcntl(fd, F_SETOWN_EX, &ex));
  struct f_owner_ex got = {0, 0};
  CHECK(fcntl(fd, F_GETOWN_EX, &got));
  EXPECT(got.type == F_OWNER_TID && got.pid == getpid());
  ex.type = 7;
  CHECK(fcntl(fd, F_SETOWN_EX, &ex));
  CHECK(fcntl(fd, F_GETOWN_EX, (void *)1));
  CHECK(fcntl(fd, F_GETSIG));
  CHECK(fcntl(fd, F_SETSIG, SIGUSR1));
  CHECK(fcntl(fd, F_GETSIG));
  CHECK(fcntl(fd, F_SETSIG, 65));
  CHECK(fcntl(fd, F_SETSIG, -1));

  int p[2];
  CHECK(pipe2(p, O_NONBLOCK));
  CHECK(fcntl(p[0], F_GETPIPE_SZ));
  CHECK(fcntl(p[1], F_SETPIPE_SZ, 1));
  CHECK(fcntl(p[0], F_GETPIPE_SZ));
  CHECK(fcntl(p[1], F_SETPIPE_SZ, 10000));
  char buf[20000] = {0};
  CHECK(write(p[1], buf, sizeof buf));
  CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096));
  CHECK(fcntl(p[1], F_SETPIPE_SZ, 1 << 20));
  CHECK(fcntl(fd, F_GETPIPE_SZ));
  CHECK(fcntl(fd, F_SETPIPE_SZ, 4096));
  return 0;
}
