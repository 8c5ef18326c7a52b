/* close_range: closing a range of fds, or marking them close-on-exec;
 * the flags and argument checks; record locks go with closed fds. */
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

static void show(void) {
  printf("open:");
  for (int fd = 0; fd < 16; fd++) {
    int r = fcntl(fd, F_GETFD);
    if (r >= 0) printf(" %d%s", fd, r & FD_CLOEXEC ? "e" : "");
  }
  printf("\n");
}

static int locked(int fd) {
  struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  if (fcntl(fd, F_OFD_GETLK, &q) != 0) return -1;
  return q.l_type != F_UNLCK;
}

static long cr(unsigned first, unsigned last, unsigned flags) {
  return syscall(SYS_close_range, first, last, flags);
}

int main(void) {
  int fd = open("/tmp/f", O_CREAT | O_RDWR, 0644);
  EXPECT(fd == 3);
  for (int i = 4; i < 12; i++) dup2(fd, i);
  show();
  CHECK(cr(5, 7, 0));
  show();
  CHECK(cr(9, 9, 0));
  show();
  CHECK(cr(8, 10, CLOSE_RANGE_CLOEXEC));
  show();
  CHECK(cr(10, ~0U, 0));
  show();
  CHECK(cr(100, 200, 0));
  CHECK(cr(3, 2, 0));
  CHECK(cr(~0U, 0, 0));
  CHECK(cr(3, 4, 1));
  CHECK(cr(3, 4, 8));
  CHECK(cr(3, 4, CLOSE_RANGE_UNSHARE));
  show();
  CHECK(cr(0, ~0U, CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE));
  show();
  for (int i = 0; i < 16; i++) fcntl(i, F_SETFD, 0);

  /* Closing any fd of a file drops the process's record locks. */
  fd = open("/tmp/f", O_RDWR);
  int o = open("/tmp/f", O_RDWR);
  int probe = open("/tmp/f", O_RDWR);
  printf("fds %d %d %d\n", fd, o, probe);
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  CHECK(fcntl(fd, F_SETLK, &fl));
  printf("locked: %s\n", locked(probe) ? "yes" : "no");
  CHECK(cr(o, o, CLOSE_RANGE_CLOEXEC));
  printf("locked: %s\n", locked(probe) ? "yes" : "no");
  CHECK(cr(o, o, 0));
  printf("locked: %s\n", locked(probe) ? "yes" : "no");
  show();
  return 0;
}
