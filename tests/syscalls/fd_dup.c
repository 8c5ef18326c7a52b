/* close, dup, dup2, dup3: which numbers they pick, the RLIMIT_NOFILE
 * bound, shared offsets and flags, close-on-exec, and the error order. */
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

int main(void) {
  /* Natively the harness may leak descriptors past 2; start clean. */
  for (int fd = 3; fd < 1024; fd++)
    close(fd);
  struct rlimit rl;
  CHECK(getrlimit(RLIMIT_NOFILE, &rl));
  /* The starting limit differs between hosts; pick one. */
  rl.rlim_cur = 16;
  CHECK(setrlimit(RLIMIT_NOFILE, &rl));

  printf("-- dup\n");
  CHECK(dup(0));
  CHECK(dup(1));
  CHECK(dup(-1));
  CHECK(dup(15));
  CHECK(dup(16));
  CHECK(dup(1 << 30));
  CHECK(close(3));
  CHECK(dup(2)); /* lowest free */
  CHECK(fcntl(3, F_GETFD));
  /* A dup shares the offset and the status flags. */
  char c;
  CHECK(read(3, &c, 1));
  CHECK(lseek(0, 0, SEEK_CUR));
  CHECK(read(0, &c, 1));
  printf("c=%c\n", c);
  CHECK(lseek(3, 0, SEEK_CUR));
  CHECK(fcntl(0, F_SETFL, O_NONBLOCK));
  EXPECT(fcntl(3, F_GETFL) & O_NONBLOCK);
  CHECK(fcntl(0, F_SETFL, 0));
  EXPECT(fcntl(3, F_GETFL) & O_NONBLOCK);
  /* Cloexec is per descriptor. */
  CHECK(fcntl(0, F_SETFD, FD_CLOEXEC));
  CHECK(fcntl(3, F_GETFD));
  CHECK(fcntl(0, F_GETFD));
  CHECK(fcntl(0, F_SETFD, 0));
  CHECK(close(3));
  CHECK(close(4));

  printf("-- EMFILE\n");
  int last = -1;
  for (int i = 0; i < 20; i++) {
    int fd = dup(0);
    if (fd < 0) {
      printf("dup #%d: %s\n", i, strerrorname_np(errno));
      break;
    }
    last = fd;
  }
  printf("last=%d\n", last);
  CHECK(dup2(0, 15));
  CHECK(fcntl(0, F_DUPFD, 0));
  for (int fd = 3; fd < 16; fd++)
    close(fd);

  printf("-- dup2\n");
  CHECK(dup2(0, 5));
  CHECK(fcntl(5, F_GETFD));
  CHECK(dup2(0, 5)); /* replaces */
  CHECK(dup2(5, 5)); /* same fd: returns it */
  CHECK(dup2(7, 7)); /* same fd, not open */
  CHECK(dup2(-1, -1));
  CHECK(dup2(-1, 6));
  CHECK(dup2(7, 6));
  CHECK(dup2(0, -1));
  CHECK(dup2(0, 15));
  CHECK(dup2(0, 16)); /* at the limit */
  CHECK(dup2(7, 16)); /* EBADF either way */
  CHECK(dup2(0, 1 << 30));
  CHECK(fcntl(6, F_GETFD));
  /* dup2 onto a close-on-exec fd clears the flag. */
  CHECK(fcntl(5, F_SETFD, FD_CLOEXEC));
  CHECK(dup2(1, 5));
  CHECK(fcntl(5, F_GETFD));
  CHECK(close(5));
  CHECK(close(15));

  printf("-- dup3\n");
  CHECK(dup3(0, 5, 0));
  CHECK(fcntl(5, F_GETFD));
  CHECK(dup3(0, 5, O_CLOEXEC));
  CHECK(fcntl(5, F_GETFD));
  CHECK(dup3(0, 5, 0));
  CHECK(fcntl(5, F_GETFD));
  CHECK(dup3(5, 5, 0));         /* EINVAL, not the fd */
  CHECK(dup3(7, 7, 0));
  CHECK(dup3(-1, -1, 0));
  CHECK(dup3(0, 6, O_NONBLOCK));
  CHECK(dup3(0, 6, 1));
  CHECK(dup3(-1, 6, O_NONBLOCK)); /* flags first */
  CHECK(dup3(5, 5, O_NONBLOCK));
  CHECK(dup3(-1, 6, 0));
  CHECK(dup3(0, 16, 0));
  CHECK(dup3(-1, 16, 0));
  CHECK(dup3(0, -1, O_CLOEXEC));
  CHECK(fcntl(6, F_GETFD));
  CHECK(close(5));

  printf("-- close\n");
  CHECK(close(-1));
  CHECK(close(5));
  CHECK(close(16));
  CHECK(close(1 << 30));
  CHECK(dup(0));
  CHECK(close(3));
  CHECK(close(3));
  CHECK(syscall(SYS_close, 0x100000000L)); /* the fd is 32 bits: closes 0 */
  CHECK(fcntl(0, F_GETFD));
  CHECK(read(0, &c, 1));

  /* A lower limit leaves open fds above it alone. */
  printf("-- lower limit\n");
  CHECK(dup2(1, 10));
  rl.rlim_cur = 4;
  CHECK(setrlimit(RLIMIT_NOFILE, &rl));
  CHECK(dup(1));
  CHECK(dup(1));
  CHECK(fcntl(10, F_GETFD));
  fflush(stdout);
  CHECK(write(10, "via 10\n", 7));
  CHECK(dup2(10, 5));
  CHECK(close(10));
  return 0;
}
