/* fallocate on tmpfs: allocation (mode 0), FALLOC_FL_KEEP_SIZE, hole
 * punching, the modes tmpfs lacks, and the checks in Linux's order. */
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"

static void show(int fd) {
  struct stat st;
  fstat(fd, &st);
  printf("size=%ld blocks=%ld\n", (long)st.st_size, (long)st.st_blocks);
}

int main(void) {
  int fd = open("/tmp/f", O_CREAT | O_RDWR, 0644);
  EXPECT(fd >= 0);
  CHECK(fallocate(fd, 0, 0, 8192));
  show(fd);
  CHECK(fallocate(fd, 0, 100, 10));
  show(fd);
  CHECK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 8192, 4096));
  show(fd);
  CHECK(fallocate(fd, 0, 16384, 1));
  show(fd);
  CHECK(lseek(fd, 0, SEEK_CUR));

  /* Data survives allocation; punching zeroes it and frees whole pages. */
  char page[4096];
  memset(page, 'a', sizeof page);
  CHECK(pwrite(fd, page, sizeof page, 0));
  CHECK(pwrite(fd, page, sizeof page, 4096));
  CHECK(fallocate(fd, 0, 0, 8192));
  char buf[8];
  CHECK(pread(fd, buf, 1, 4095));
  printf("byte=%c\n", buf[0]);
  CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
  show(fd);
  CHECK(pread(fd, buf, 1, 10));
  printf("byte=%d\n", buf[0]);
  CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4100, 10));
  CHECK(pread(fd, buf, 1, 4099));
  printf("byte=%c\n", buf[0]);
  CHECK(pread(fd, buf, 1, 4105));
  printf("byte=%d\n", buf[0]);
  CHECK(pread(fd, buf, 1, 4110));
  printf("byte=%c\n", buf[0]);
  show(fd);
  CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1L << 40));
  show(fd);
  CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1L << 30, 4096));
  show(fd);

  /* Times change. */
  struct timespec ts[2] = {{1000, 0}, {1000, 0}};
  CHECK(futimens(fd, ts));
  CHECK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4096));
  struct stat st;
  CHECK(fstat(fd, &st));
  EXPECT(st.st_mtim.tv_sec != 1000);
  CHECK(futimens(fd, ts));
  CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
  CHECK(fstat(fd, &st));
  EXPECT(st.st_mtim.tv_sec != 1000);

  /* Modes. */
  CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096));
  CHECK(fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 4096));
  CHECK(fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, 4096));
  CHECK(fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 4096));
  CHECK(fallocate(fd, FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_KEEP_SIZE, 0, 4096));
  CHECK(fallocate(fd, FALLOC_FL_INSERT_RANGE, 0, 4096));
  CHECK(fallocate(fd, FALLOC_FL_UNSHARE_RANGE, 0, 4096));
  CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE, 0, 4096));
  CHECK(fallocate(fd, FALLOC_FL_NO_HIDE_STALE, 0, 4096));
  CHECK(fallocate(fd, 0x100, 0, 4096));

  /* Arguments and files. */
  CHECK(fallocate(fd, 0, 0, 0));
  CHECK(fallocate(fd, 0, -1, 10));
  CHECK(fallocate(fd, 0, 0, -10));
  CHECK(fallocate(fd, 0, LLONG_MAX, 1));
  CHECK(fallocate(fd, 0, 1, LLONG_MAX));
  CHECK(fallocate(-1, 0, 0, 0));
  CHECK(fallocate(99, 0, 0, 10));
  int ro = open("/tmp/f", O_RDONLY);
  CHECK(fallocate(ro, 0, 0, 10));
  CHECK(fallocate(ro, FALLOC_FL_ZERO_RANGE, 0, 10));
  CHECK(fallocate(ro, 0x100, 0, 10));
  int pfd = open("/tmp/f", O_PATH);
  CHECK(fallocate(pfd, 0, 0, 10));
  int dfd = open("/tmp", O_RDONLY | O_DIRECTORY);
  CHECK(fallocate(dfd, 0, 0, 10));
  int pp[2];
  CHECK(pipe(pp));
  CHECK(fallocate(pp[1], 0, 0, 10));
  CHECK(fallocate(pp[0], 0, 0, 10));
  int null = open("/dev/null", O_RDWR);
  CHECK(fallocate(null, 0, 0, 10));
  int ap = open("/tmp/f", O_WRONLY | O_APPEND);
  CHECK(fallocate(ap, 0, 0, 40960));
  show(fd);
  return 0;
}
