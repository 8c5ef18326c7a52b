/* preadv, pwritev, preadv2, pwritev2: positions (and -1 for the file's
 * own), the RWF_* flags, O_APPEND, and the errors in Linux's order. */
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "check.h"

#ifndef RWF_NOAPPEND
#define RWF_NOAPPEND 0x20
#endif
#define RWF_ATOMIC_ 0x40
#define RWF_DONTCACHE_ 0x80

static char a[8], b[8];
static struct iovec rv[2] = {{a, 4}, {b, 4}};

static void got(long n) {
  if (n < 0) return;
  printf("got: %.*s|%.*s\n", (int)(n < 4 ? n : 4), a, (int)(n > 4 ? n - 4 : 0), b);
}

static void content(int fd) {
  char buf[64] = {0};
  long n = pread(fd, buf, sizeof buf - 1, 0);
  for (long i = 0; i < n; i++)
    if (!buf[i]) buf[i] = '.';
  printf("content: %s\n", buf);
}

static long pos(int fd) { return (long)lseek(fd, 0, SEEK_CUR); }

int main(void) {
  int fd = open("/tmp/f", O_CREAT | O_RDWR, 0644);
  CHECK(write(fd, "abcdefghijklmnopqrstuvwxyz", 26));
  CHECK(lseek(fd, 3, SEEK_SET));

  long n;
  CHECK(n = preadv(fd, rv, 2, 10));
  got(n);
  printf("pos=%ld\n", pos(fd));
  CHECK(n = preadv(fd, rv, 2, 22));
  got(n);
  CHECK(preadv(fd, rv, 2, 100));
  CHECK(n = preadv2(fd, rv, 2, -1, 0));
  got(n);
  printf("pos=%ld\n", pos(fd));
  CHECK(n = preadv2(fd, rv, 2, 0, RWF_HIPRI));
  got(n);
  printf("pos=%ld\n", pos(fd));

  struct iovec wv[2] = {{"12", 2}, {"34", 2}};
  CHECK(pwritev(fd, wv, 2, 1));
  printf("pos=%ld\n", pos(fd));
  CHECK(pwritev2(fd, wv, 2, -1, 0));
  printf("pos=%ld\n", pos(fd));
  CHECK(pwritev2(fd, wv, 1, 30, RWF_DSYNC | RWF_SYNC));
  content(fd);

  /* Flags. */
  CHECK(preadv2(fd, rv, 2, 0, 0x200));
  CHECK(preadv2(fd, rv, 2, 0, RWF_NOWAIT));
  CHECK(preadv2(fd, rv, 2, 0, RWF_ATOMIC_));
  CHECK(pwritev2(fd, wv, 2, 0, RWF_ATOMIC_));
  CHECK(preadv2(fd, rv, 2, 0, RWF_DONTCACHE_));
  CHECK(pwritev2(fd, wv, 2, 0, RWF_APPEND | RWF_NOAPPEND));
  CHECK(pwritev2(fd, wv, 2, 0, 0x80000000));
  struct iovec empty = {a, 0};
  CHECK(preadv2(fd, &empty, 1, 0, 0x200));
  CHECK(pwritev2(fd, &empty, 1, 0, RWF_APPEND | RWF_NOAPPEND));
  CHECK(preadv2(fd, NULL, 0, 0, 0x200));

  /* RWF_APPEND and RWF_NOAPPEND. */
  CHECK(lseek(fd, 5, SEEK_SET));
  CHECK(pwritev2(fd, wv, 1, 0, RWF_APPEND));
  printf("pos=%ld\n", pos(fd));
  CHECK(pwritev2(fd, wv + 1, 1, -1, RWF_APPEND));
  printf("pos=%ld\n", pos(fd));
  content(fd);
  int ap = open("/tmp/f", O_WRONLY | O_APPEND);
  CHECK(pwritev(ap, wv, 1, 0));
  printf("pos=%ld\n", pos(ap));
  CHECK(pwrite(ap, "!", 1, 0));
  printf("pos=%ld\n", pos(ap));
  CHECK(pwritev2(ap, wv + 1, 1, 0, RWF_NOAPPEND));
  printf("pos=%ld\n", pos(ap));
  CHECK(pwritev2(ap, wv + 1, 1, -1, RWF_NOAPPEND));
  printf("pos=%ld\n", pos(ap));
  CHECK(fcntl(ap, F_GETFL));
  content(fd);

  /* Offsets and files. */
  CHECK(preadv(fd, rv, 2, -2));
  CHECK(preadv2(fd, rv, 2, -2, 0));
  CHECK(preadv(-1, rv, 2, -2));
  CHECK(preadv(-1, rv, 2, 0));
  CHECK(pwritev(fd, wv, 2, 0x7ffffffffffffffeL));
  CHECK(syscall(SYS_preadv, fd, rv, 1025, 0, 0));
  CHECK(syscall(SYS_preadv, fd, 8, 1, 0, 0));
  int wo = open("/tmp/f", O_WRONLY);
  int ro = open("/tmp/f", O_RDONLY);
  CHECK(preadv(wo, rv, 2, 0));
  CHECK(pwritev(ro, wv, 2, 0));
  CHECK(preadv2(wo, rv, 2, -1, 0x200));
  int pf = open("/tmp/f", O_PATH);
  CHECK(preadv(pf, rv, 2, 0));
  CHECK(preadv2(pf, rv, 2, -1, 0));
  int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
  CHECK(preadv(dir, rv, 2, 0));
  CHECK(preadv2(dir, rv, 2, 0, RWF_NOWAIT));
  CHECK(preadv2(dir, rv, 2, 0, RWF_HIPRI));

  /* Pipes: no positions, but -1 works, and RWF_NOWAIT does not wait. */
  int p[2];
  CHECK(pipe(p));
  CHECK(preadv(p[0], rv, 2, 0));
  CHECK(pwritev(p[1], wv, 2, 0));
  CHECK(pwritev2(p[1], wv, 2, -1, 0));
  CHECK(n = preadv2(p[0], rv, 2, -1, RWF_NOWAIT));
  got(n);
  CHECK(preadv2(p[0], rv, 2, -1, RWF_NOWAIT));
  CHECK(pwritev2(p[1], wv, 2, -1, RWF_NOWAIT));
  CHECK(preadv(p[1], rv, 2, -1));
  return 0;
}
