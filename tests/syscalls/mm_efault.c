/* System calls given bad or partly bad guest buffers: EFAULT, or a short
 * count when the buffer is good up to some page. */
#include <stdint.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#define PG 4096L
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define RW (PROT_READ | PROT_WRITE)

int main(void) {
  /* Raw writes to stdout interleave with printf's output. */
  setvbuf(stdout, NULL, _IONBF, 0);

  /* A readable page, an unmapped one, a readable one, an inaccessible one,
   * a read-only one. */
  char *p = mmap(NULL, 5 * PG, RW, ANON, -1, 0);
  memset(p, '.', 5 * PG);
  CHECK(munmap(p + PG, PG));
  CHECK(mprotect(p + 3 * PG, PG, PROT_NONE));
  CHECK(mprotect(p + 4 * PG, PG, PROT_READ));
  char *end = p + PG; /* the first unmapped byte */
  char *none = p + 3 * PG; /* the first inaccessible byte */
  char *ro = p + 4 * PG;
  memcpy(end - 6, "tail\n", 5);

  printf("-- write from bad buffers\n");
  CHECK(write(1, end, 10));
  CHECK(syscall(SYS_write, 1, NULL, 10));
  CHECK(write(1, none, 10));
  CHECK(write(1, (void *)(1UL << 47), 10));
  CHECK(write(1, (void *)-PG, 10));
  CHECK(write(1, end, 0));
  CHECK(syscall(SYS_write, 1, NULL, 0));

  printf("-- write from a buffer that ends in an unmapped page\n");
  CHECK(write(1, end - 6, 5));
  CHECK(write(1, end - 6, 6));
  CHECK(write(1, end - 6, 7));
  CHECK(write(1, end - 6, 100));
  CHECK(write(1, end - 6, 1 << 20));
  printf("\n");
  /* A whole page, then the hole. */
  char *line = p;
  memset(line, 'w', PG);
  line[PG - 1] = '\n';
  CHECK(write(1, line, 2 * PG));

  printf("-- write from a buffer that ends in an inaccessible page\n");
  memcpy(none - 5, "none\n", 5);
  CHECK(write(1, none - 5, 5));
  CHECK(write(1, none - 5, 6));
  CHECK(write(1, none - 5, 5000));
  CHECK(write(1, none, 1));
  CHECK(write(1, ro, 0));
  /* Into a read-only page is fine. */
  CHECK(mprotect(none, PG, PROT_READ));
  memcpy(none - 5, "ro..\n", 5);
  CHECK(write(1, none - 5, 6));
  printf("\n");
  CHECK(mprotect(none, PG, PROT_NONE));

  printf("-- writev\n");
  struct iovec iov[3];
  iov[0].iov_base = "first\n";
  iov[0].iov_len = 6;
  iov[1].iov_base = end - 7;
  iov[1].iov_len = 20;
  memcpy(end - 7, "second\n", 7);
  iov[2].iov_base = "third\n";
  iov[2].iov_len = 6;
  CHECK(writev(1, iov, 3));
  iov[1].iov_base = end;
  CHECK(writev(1, iov, 3));
  CHECK(writev(1, iov + 1, 2));
  iov[1].iov_base = NULL;
  iov[1].iov_len = 0;
  CHECK(writev(1, iov, 3));
  /* The vector itself in bad memory. */
  CHECK(writev(1, (struct iovec *)end, 1));
  CHECK(writev(1, (struct iovec *)(end - 8), 1));
  memcpy(end - 16, iov, 16);
  CHECK(writev(1, (struct iovec *)(end - 16), 1));
  CHECK(writev(1, (struct iovec *)(end - 16), 2));
  CHECK(writev(1, (struct iovec *)end, 0));

  printf("-- results written to bad memory\n");
  CHECK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, end));
  CHECK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, end - 8));
  CHECK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, end - 16));
  CHECK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, none));
  CHECK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, ro));
  CHECK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, NULL));
  CHECK(syscall(SYS_uname, end - 100));
  CHECK(syscall(SYS_uname, ro));
  CHECK(syscall(SYS_uname, end - sizeof(struct utsname)));
  CHECK(syscall(SYS_gettimeofday, end - 8, NULL));
  CHECK(syscall(SYS_gettimeofday, NULL, end));

  printf("-- arguments read from bad memory\n");
  struct timespec zero = {0, 0};
  memcpy(end - 16, &zero, 16);
  CHECK(syscall(SYS_nanosleep, end - 16, NULL));
  CHECK(syscall(SYS_nanosleep, end - 8, NULL));
  CHECK(syscall(SYS_nanosleep, end, NULL));
  CHECK(syscall(SYS_nanosleep, none, NULL));
  CHECK(syscall(SYS_nanosleep, end - 16, end));
  CHECK(syscall(SYS_nanosleep, end - 16, ro));
  CHECK(syscall(SYS_sethostname, end, 4));
  CHECK(syscall(SYS_uname, ro));

  printf("-- read-only pages\n");
  CHECK(syscall(SYS_clock_gettime, CLOCK_REALTIME, ro));
  CHECK(syscall(SYS_clock_gettime, CLOCK_REALTIME, ro - 8));
  /* A read-only page can be the source of a write. */
  memcpy(p, "ro\n", 3);
  CHECK(mprotect(p, PG, PROT_READ));
  CHECK(write(1, p, 3));
  CHECK(syscall(SYS_clock_gettime, CLOCK_REALTIME, p));
  CHECK(mprotect(p, PG, RW));
  CHECK(syscall(SYS_clock_gettime, CLOCK_REALTIME, p));
  return 0;
}
