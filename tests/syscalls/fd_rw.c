/* read, write, readv, writev, pread64, pwrite64 on the standard streams.
 * Standard input is a regular file (fd_rw.stdin, 39 bytes), standard
 * output a pipe. Covers short buffers (a fault part-way), bad pointers,
 * bad fds, bad lengths and the order Linux checks them in. */
#include <limits.h>
#include <stdint.h>
#include <sys/mman.h>
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

static void show(const char *what, const char *buf, long n) {
  printf("%s: \"", what);
  for (long i = 0; i < n; i++) {
    if (buf[i] == '\n')
      printf("\\n");
    else
      putchar(buf[i]);
  }
  printf("\"\n");
}

/* Two pages; the second is unmapped, so `edge - k` has k valid bytes. */
static char *edge;
/* A read-only page. */
static char *ro;

static void test_read(void) {
  char buf[64];
  long n;
  printf("-- read\n");
  CHECK(n = sys_read(0, buf, 5));
  show("data", buf, n);
  CHECK(sys_read(0, buf, 0));
  CHECK(sys_read(0, NULL, 0));
  CHECK(sys_read(0, BAD, 0));
  CHECK(sys_read(0, BAD, 5));
  CHECK(sys_read(0, KADDR, 5));
  CHECK(sys_read(0, ro, 5));
  /* access_ok fails for the whole range before anything is read. */
  CHECK(sys_read(0, buf, SIZE_MAX));
  CHECK(sys_read(0, buf, (size_t)SSIZE_MAX + 1));
  CHECK(sys_read(0, KADDR, 0));
  /* The position did not move on any failure. */
  CHECK(n = sys_read(0, buf, 2));
  show("data", buf, n);
  /* Three bytes fit before the fault: a regular file gives those. */
  CHECK(n = sys_read(0, edge - 3, 10));
  show("data", edge - 3, n);
  CHECK(n = sys_read(0, buf, 3));
  show("data", buf, n);
  CHECK(sys_read(-1, buf, 1));
  CHECK(sys_read(1000, buf, 1));
  CHECK(sys_read(1, buf, 1));      /* write-only pipe end */
  CHECK(sys_read(1, BAD, 1));      /* EBADF before EFAULT */
  CHECK(sys_read(-1, BAD, SIZE_MAX));
  /* At end of file, nothing is copied: a bad buffer is no error. */
  CHECK(lseek(0, 0, SEEK_END));
  CHECK(sys_read(0, buf, sizeof buf));
  CHECK(sys_read(0, BAD, 5));
  CHECK(sys_read(0, edge - 3, 10));
  CHECK(lseek(0, 0, SEEK_SET));
}

static void test_write(void) {
  printf("-- write\n");
  fflush(stdout);
  CHECK(sys_write(1, "out\n", 4));
  fflush(stdout);
  CHECK(sys_write(1, "", 0));
  CHECK(sys_write(1, NULL, 0));
  CHECK(sys_write(1, BAD, 0));
  CHECK(sys_write(1, BAD, 4));
  CHECK(sys_write(1, KADDR, 4));
  CHECK(sys_write(1, "abc", SIZE_MAX));
  CHECK(sys_write(1, "abc", (size_t)SSIZE_MAX + 1));
  /* A pipe takes nothing when the buffer faults part-way. */
  memcpy(edge - 3, "xyz", 3);
  CHECK(sys_write(1, edge - 3, 10));
  fflush(stdout);
  /* The read-only page is fine to write from. */
  CHECK(sys_write(1, ro, 0));
  CHECK(sys_write(0, "x", 1));     /* read-only file */
  CHECK(sys_write(0, BAD, 1));
  CHECK(sys_write(-1, "x", 1));
  CHECK(sys_write(4096, "x", 1));
}

static void test_vec(void) {
  char a[4], b[6], c[64];
  struct iovec iov[3];
  long n;
  printf("-- readv/writev\n");
  iov[0] = (struct iovec){a, sizeof a};
  iov[1] = (struct iovec){NULL, 0};
  iov[2] = (struct iovec){b, sizeof b};
  CHECK(n = sys_readv(0, iov, 3));
  show("a", a, sizeof a);
  show("b", b, n - (long)sizeof a);
  CHECK(sys_readv(0, iov, 0));
  CHECK(sys_readv(0, NULL, 0));
  CHECK(sys_readv(0, NULL, 1));
  CHECK(sys_readv(0, BAD, 2));
  CHECK(sys_readv(0, iov, -1));
  CHECK(sys_readv(0, iov, 1025));
  CHECK(syscall(SYS_readv, 0, iov, 1025));
  CHECK(sys_readv(-1, iov, 1));
  CHECK(sys_readv(1, iov, 1));
  CHECK(sys_readv(-1, BAD, -1));
  /* A length that does not fit ssize_t. */
  iov[0] = (struct iovec){a, (size_t)-1};
  CHECK(sys_readv(0, iov, 1));
  /* One segment is cut to MAX_RW_COUNT before it is checked; several
   * are checked whole. */
  static char low[64]; /* in .bss, far from the top of the address space */
  iov[0] = (struct iovec){low, (size_t)SSIZE_MAX};
  CHECK(n = sys_readv(0, iov, 1));
  show("low", low, n);
  CHECK(lseek(0, 4, SEEK_SET));
  iov[1] = (struct iovec){b, 0};
  CHECK(sys_readv(0, iov, 2));
  CHECK(lseek(0, 4, SEEK_SET));
  /* A second segment past the user address space. */
  iov[0] = (struct iovec){a, sizeof a};
  iov[1] = (struct iovec){KADDR, 8};
  CHECK(sys_readv(0, iov, 2));
  /* A second segment that faults: the first is filled. */
  iov[1] = (struct iovec){BAD, 8};
  CHECK(n = sys_readv(0, iov, 2));
  show("a", a, n);
  /* A segment that faults part-way. */
  iov[0] = (struct iovec){c, 2};
  iov[1] = (struct iovec){edge - 1, 5};
  CHECK(n = sys_readv(0, iov, 2));
  show("c", c, 2);
  show("edge", edge - 1, n - 2);
  /* Only bad segments. */
  iov[0] = (struct iovec){BAD, 4};
  CHECK(sys_readv(0, iov, 1));
  /* Zero-length bad segments are never touched. */
  iov[0] = (struct iovec){BAD, 0};
  iov[1] = (struct iovec){c, 3};
  CHECK(n = sys_readv(0, iov, 2));
  show("c", c, n);
  /* Totals past SSIZE_MAX. */
  iov[0] = (struct iovec){a, (size_t)SSIZE_MAX / 2 + 1};
  iov[1] = (struct iovec){b, (size_t)SSIZE_MAX / 2 + 1};
  CHECK(sys_readv(0, iov, 2));

  fflush(stdout);
  iov[0] = (struct iovec){"vec", 3};
  iov[1] = (struct iovec){NULL, 0};
  iov[2] = (struct iovec){"tor\n", 4};
  CHECK(sys_writev(1, iov, 3));
  fflush(stdout);
  CHECK(sys_writev(1, iov, 0));
  CHECK(sys_writev(1, BAD, 1));
  CHECK(sys_writev(1, iov, -1));
  CHECK(sys_writev(1, iov, 1025));
  CHECK(sys_writev(0, iov, 1));
  CHECK(sys_writev(-1, iov, 1));
  iov[0] = (struct iovec){"ok", 2};
  iov[1] = (struct iovec){BAD, 2};
  CHECK(sys_writev(1, iov, 2));    /* a pipe: all or EFAULT */
  iov[1] = (struct iovec){KADDR, 2};
  CHECK(sys_writev(1, iov, 2));
  iov[1] = (struct iovec){"x", (size_t)-1};
  CHECK(sys_writev(1, iov, 2));
  CHECK(lseek(0, 0, SEEK_SET));
}

static void test_positional(void) {
  char buf[64];
  long n;
  printf("-- pread64/pwrite64\n");
  CHECK(lseek(0, 2, SEEK_SET));
  CHECK(n = sys_pread(0, buf, 5, 7));
  show("data", buf, n);
  CHECK(lseek(0, 0, SEEK_CUR)); /* unchanged */
  CHECK(n = sys_pread(0, buf, sizeof buf, 30));
  show("data", buf, n);
  CHECK(sys_pread(0, buf, sizeof buf, 39));
  CHECK(sys_pread(0, buf, sizeof buf, 1000));
  CHECK(sys_pread(0, buf, 0, 0));
  CHECK(sys_pread(0, BAD, 4, 0));
  CHECK(sys_pread(0, BAD, 4, 1000)); /* past the end: nothing to copy */
  CHECK(sys_pread(0, KADDR, 4, 1000));
  CHECK(n = sys_pread(0, edge - 2, 8, 0));
  show("edge", edge - 2, n);
  CHECK(syscall(SYS_pread64, 0, buf, 4, -1L));
  CHECK(syscall(SYS_pread64, -1, buf, 4, -1L)); /* EINVAL before EBADF */
  CHECK(syscall(SYS_pread64, 0, buf, 4, LLONG_MAX));
  CHECK(syscall(SYS_pread64, 0, buf, 4, LLONG_MAX - 2));
  CHECK(sys_pread(-1, buf, 4, 0));
  CHECK(sys_pread(1, buf, 4, 0));    /* a pipe: ESPIPE before EBADF */
  CHECK(sys_pread(1, BAD, 4, 0));
  CHECK(sys_pwrite(1, "x", 1, 0));
  CHECK(sys_pwrite(1, BAD, 1, 0));
  CHECK(sys_pwrite(0, "x", 1, 0));   /* read-only file */
  CHECK(sys_pwrite(-1, "x", 1, 0));
  CHECK(syscall(SYS_pwrite64, 1, "x", 1, -5L));
  CHECK(syscall(SYS_pwrite64, -1, "x", 1, -5L));
  CHECK(lseek(0, 0, SEEK_CUR));
}

int main(void) {
  /* Natively the harness may leak descriptors past 2; start clean. */
  for (int fd = 3; fd < 1024; fd++)
    close(fd);
  edge = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (edge == MAP_FAILED || mprotect(edge + 4096, 4096, PROT_NONE) != 0)
    return 1;
  edge += 4096;
  ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ro == MAP_FAILED)
    return 1;
  test_read();
  test_write();
  test_vec();
  test_positional();
  return 0;
}
