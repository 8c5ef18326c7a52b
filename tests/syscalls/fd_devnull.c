/* Standard input is /dev/null here (the case has no .stdin file): reads
 * never copy anything, so a bad buffer inside the user address space is
 * no error, while one outside it still is. */
#include <fcntl.h>
#include <stdint.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "check.h"

/* Raw syscalls: glibc's declarations let the compiler reject the bad
 * arguments this case passes on purpose. */
static inline long sys_read(int fd, void *b, size_t n) { return syscall(SYS_read, fd, b, n); }
static inline long sys_write(int fd, const void *b, size_t n) { return syscall(SYS_write, fd, b, n); }
static inline long sys_readv(int fd, const void *v, int n) { return syscall(SYS_readv, fd, v, n); }
static inline long sys_writev(int fd, const void *v, int n) { return syscall(SYS_writev, fd, v, n); }
static inline long sys_pread(int fd, void *b, size_t n, long o) { return syscall(SYS_pread64, fd, b, n, o); }
static inline long sys_pwrite(int fd, const void *b, size_t n, long o) {
  return syscall(SYS_pwrite64, fd, b, n, o);
}

#define BAD ((void *)8)
#define KADDR ((void *)0xffff800000000000UL)

int main(void) {
  /* Natively the harness may leak descriptors past 2; start clean. */
  for (int fd = 3; fd < 1024; fd++)
    close(fd);
  char buf[16];
  struct stat st;
  struct iovec iov[2] = {{BAD, 4}, {buf, 4}};

  CHECK(sys_read(0, buf, sizeof buf));
  CHECK(sys_read(0, BAD, 5));
  CHECK(sys_read(0, NULL, 5));
  CHECK(sys_read(0, KADDR, 5));
  CHECK(sys_read(0, buf, SIZE_MAX));
  CHECK(sys_pread(0, BAD, 5, 0));
  CHECK(sys_pread(0, buf, 5, 1 << 20));
  CHECK(sys_readv(0, iov, 2));
  iov[0].iov_base = KADDR;
  CHECK(sys_readv(0, iov, 2));
  CHECK(fstat(0, &st));
  printf("chr=%d\n", S_ISCHR(st.st_mode));
  CHECK(lseek(0, 100, SEEK_SET));
  CHECK(lseek(0, 0, SEEK_CUR));
  CHECK(lseek(0, 0, SEEK_END));
  CHECK(lseek(0, -5, SEEK_SET));
  EXPECT((fcntl(0, F_GETFL) & O_ACCMODE) == O_RDONLY);
  struct pollfd p = {0, POLLIN | POLLOUT, 0};
  CHECK(poll(&p, 1, 0));
  printf("revents=%#x\n", p.revents);
  int n;
  CHECK(ioctl(0, FIONREAD, &n));
  CHECK(ioctl(0, TCGETS, buf));
  CHECK(sys_write(0, "x", 1));
  return 0;
}
