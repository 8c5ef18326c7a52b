/* fcntl: F_GETFD/F_SETFD, F_GETFL/F_SETFL, F_DUPFD/F_DUPFD_CLOEXEC and
 * the errors (bad fd before bad command, bad arguments). Standard input
 * is a regular file opened read-only by the harness. */
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

static void flags(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0)
    printf("F_GETFL(%d) = -1 %s\n", fd, strerrorname_np(errno));
  else
    printf("F_GETFL(%d) = %#o\n", fd, fl);
}

int main(void) {
  /* Natively the harness may leak descriptors past 2; start clean. */
  for (int fd = 3; fd < 1024; fd++)
    close(fd);
  struct rlimit rl;
  CHECK(getrlimit(RLIMIT_NOFILE, &rl));
  rl.rlim_cur = 32;
  CHECK(setrlimit(RLIMIT_NOFILE, &rl));

  printf("-- F_GETFD/F_SETFD\n");
  CHECK(fcntl(0, F_GETFD));
  CHECK(fcntl(1, F_GETFD));
  CHECK(fcntl(0, F_SETFD, FD_CLOEXEC));
  CHECK(fcntl(0, F_GETFD));
  CHECK(fcntl(0, F_SETFD, 0xff)); /* only FD_CLOEXEC counts */
  CHECK(fcntl(0, F_GETFD));
  CHECK(fcntl(0, F_SETFD, 0xfe));
  CHECK(fcntl(0, F_GETFD));
  CHECK(fcntl(-1, F_GETFD));
  CHECK(fcntl(31, F_GETFD));
  CHECK(fcntl(-1, F_SETFD, FD_CLOEXEC));
  CHECK(fcntl(100, F_SETFD, FD_CLOEXEC));

  printf("-- F_GETFL/F_SETFL\n");
  flags(0);
  EXPECT((fcntl(1, F_GETFL) & O_ACCMODE) == O_WRONLY);
  CHECK(fcntl(0, F_SETFL, O_NONBLOCK));
  flags(0);
  CHECK(fcntl(0, F_SETFL, O_APPEND));
  flags(0);
  /* Access mode and creation flags are ignored. */
  CHECK(fcntl(0, F_SETFL, O_RDWR | O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY | O_CLOEXEC));
  flags(0);
  CHECK(fcntl(0, F_SETFL, O_NONBLOCK | O_APPEND | O_NOATIME));
  flags(0);
  CHECK(fcntl(0, F_SETFL, 0));
  flags(0);
  CHECK(fcntl(-1, F_SETFL, 0));
  CHECK(fcntl(-1, F_GETFL));
  CHECK(fcntl(20, F_GETFL));
  /* O_NONBLOCK does not change reads of a regular file. */
  CHECK(fcntl(0, F_SETFL, O_NONBLOCK));
  char buf[8];
  CHECK(read(0, buf, sizeof buf));
  CHECK(fcntl(0, F_SETFL, 0));

  printf("-- F_DUPFD\n");
  CHECK(fcntl(0, F_DUPFD, 0));
  CHECK(fcntl(3, F_GETFD));
  CHECK(fcntl(0, F_DUPFD, 10));
  CHECK(fcntl(0, F_DUPFD, 10));
  CHECK(fcntl(0, F_DUPFD_CLOEXEC, 10));
  CHECK(fcntl(12, F_GETFD));
  CHECK(fcntl(0, F_DUPFD_CLOEXEC, 0));
  CHECK(fcntl(4, F_GETFD));
  CHECK(fcntl(0, F_DUPFD, 31));
  CHECK(fcntl(0, F_DUPFD, 31)); /* the only slot is taken */
  CHECK(fcntl(0, F_DUPFD, 32)); /* at the limit */
  CHECK(fcntl(0, F_DUPFD_CLOEXEC, 32));
  CHECK(fcntl(0, F_DUPFD, -1));
  CHECK(fcntl(0, F_DUPFD, 1 << 30));
  CHECK(syscall(SYS_fcntl, 0, F_DUPFD, 0x100000005L)); /* the arg is an int */
  CHECK(fcntl(-1, F_DUPFD, 0));
  CHECK(fcntl(50, F_DUPFD, 100));
  /* Duplicates share the description: its flags and offset. */
  CHECK(fcntl(10, F_SETFL, O_APPEND));
  flags(0);
  CHECK(lseek(10, 3, SEEK_SET));
  CHECK(lseek(0, 0, SEEK_CUR));
  CHECK(fcntl(0, F_SETFL, 0));
  for (int fd = 3; fd < 32; fd++)
    close(fd);

  printf("-- bad commands\n");
  CHECK(fcntl(0, 9999));
  CHECK(fcntl(0, -1));
  CHECK(fcntl(-1, 9999));
  CHECK(fcntl(77, 9999));
  CHECK(syscall(SYS_fcntl, 0, 0x100000000L | F_GETFD)); /* cmd is 32 bits */
  return 0;
}
