/* sendfile, copy_file_range, splice and tee between files and pipes:
 * what moves, which positions move, and the errors. */
#include <fcntl.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

static void show(const char *path) {
  char buf[256];
  int fd = open(path, O_RDONLY);
  long n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n < 0) n = 0;
  buf[n] = 0;
  printf("%s: %ld \"%s\"\n", path, n, buf);
}

static long pos(int fd) { return (long)lseek(fd, 0, SEEK_CUR); }

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  int src = open("/tmp/src", O_CREAT | O_RDWR, 0644);
  const char *text = "0123456789abcdefghijklmnopqrstuvwxyz";
  CHECK(write(src, text, strlen(text)));
  CHECK(lseek(src, 0, SEEK_SET));
  int dst = open("/tmp/dst", O_CREAT | O_RDWR, 0644);

  printf("sendfile:\n");
  CHECK(sendfile(dst, src, NULL, 10));
  printf("pos src=%ld dst=%ld\n", pos(src), pos(dst));
  off_t off = 30;
  CHECK(sendfile(dst, src, &off, 100));
  printf("off=%ld pos src=%ld dst=%ld\n", (long)off, pos(src), pos(dst));
  show("/tmp/dst");
  off = 100;
  CHECK(sendfile(dst, src, &off, 10));
  printf("off=%ld\n", (long)off);
  CHECK(sendfile(dst, src, NULL, 0));
  off = -1;
  CHECK(sendfile(dst, src, &off, 10));
  CHECK(sendfile(dst, src, (off_t *)8, 10));
  CHECK(sendfile(-1, src, NULL, 10));
  CHECK(sendfile(dst, -1, NULL, 10));
  int wo = open("/tmp/src", O_WRONLY);
  int ro = open("/tmp/dst", O_RDONLY);
  CHECK(sendfile(dst, wo, NULL, 10));
  CHECK(sendfile(ro, src, NULL, 10));
  int ap = open("/tmp/dst", O_WRONLY | O_APPEND);
  CHECK(sendfile(ap, src, NULL, 10));
  int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
  CHECK(sendfile(dst, dir, NULL, 10));
  int p[2];
  CHECK(pipe(p));
  CHECK(sendfile(p[1], src, NULL, 5));
  char buf[64] = {0};
  CHECK(read(p[0], buf, sizeof buf));
  printf("pipe got: %s\n", buf);
  off = 0;
  CHECK(sendfile(p[1], src, &off, 3));
  printf("off=%ld pos src=%ld\n", (long)off, pos(src));
  CHECK(read(p[0], buf, sizeof buf));
  CHECK(write(p[1], "abc", 3));
  CHECK(sendfile(dst, p[0], NULL, 3));
  off = 0;
  CHECK(sendfile(dst, p[0], &off, 3));
  CHECK(read(p[0], buf, sizeof buf));
  int null = open("/dev/null", O_WRONLY);
  CHECK(sendfile(null, src, NULL, 4));
  printf("pos src=%ld\n", pos(src));

  printf("copy_file_range:\n");
  int c = open("/tmp/copy", O_CREAT | O_RDWR, 0644);
  CHECK(copy_file_range(src, NULL, c, NULL, 5, 0));
  printf("pos src=%ld c=%ld\n", pos(src), pos(c));
  loff_t in = 20, out = 100;
  CHECK(copy_file_range(src, &in, c, &out, 6, 0));
  printf("in=%ld out=%ld pos src=%ld c=%ld\n", (long)in, (long)out, pos(src), pos(c));
  struct stat st;
  CHECK(fstat(c, &st));
  printf("size=%ld\n", (long)st.st_size);
  in = 30;
  CHECK(copy_file_range(src, &in, c, NULL, 100, 0));
  in = 36;
  CHECK(copy_file_range(src, &in, c, NULL, 100, 0));
  in = 1000;
  CHECK(copy_file_range(src, &in, c, NULL, 100, 0));
  CHECK(copy_file_range(src, NULL, c, NULL, 0, 0));
  CHECK(copy_file_range(src, NULL, c, NULL, 5, 1));
  CHECK(copy_file_range(src, (loff_t *)8, c, NULL, 5, 0));
  CHECK(copy_file_range(-1, NULL, c, NULL, 5, 0));
  CHECK(copy_file_range(src, NULL, -1, NULL, 5, 0));
  CHECK(copy_file_range(wo, NULL, c, NULL, 5, 0));
  CHECK(copy_file_range(src, NULL, ro, NULL, 5, 0));
  CHECK(copy_file_range(src, NULL, ap, NULL, 5, 0));
  CHECK(copy_file_range(dir, NULL, c, NULL, 5, 0));
  CHECK(copy_file_range(src, NULL, dir, NULL, 5, 0));
  CHECK(copy_file_range(p[0], NULL, c, NULL, 5, 0));
  CHECK(copy_file_range(src, NULL, p[1], NULL, 5, 0));
  CHECK(copy_file_range(src, NULL, null, NULL, 5, 0));
  in = 0;
  out = 5;
  CHECK(copy_file_range(src, &in, src, &out, 10, 0));
  out = 20;
  CHECK(copy_file_range(src, &in, src, &out, 10, 0));
  show("/tmp/src");
  show("/tmp/copy");

  printf("splice:\n");
  CHECK(lseek(src, 0, SEEK_SET));
  CHECK(splice(src, NULL, p[1], NULL, 4, 0));
  printf("pos src=%ld\n", pos(src));
  in = 10;
  CHECK(splice(src, &in, p[1], NULL, 4, 0));
  printf("in=%ld pos src=%ld\n", (long)in, pos(src));
  int sp = open("/tmp/spliced", O_CREAT | O_RDWR, 0644);
  CHECK(splice(p[0], NULL, sp, NULL, 3, 0));
  printf("pos sp=%ld\n", pos(sp));
  out = 50;
  CHECK(splice(p[0], NULL, sp, &out, 100, 0));
  printf("out=%ld pos sp=%ld\n", (long)out, pos(sp));
  CHECK(fstat(sp, &st));
  printf("size=%ld\n", (long)st.st_size);
  CHECK(splice(p[0], NULL, sp, NULL, 10, SPLICE_F_NONBLOCK));
  CHECK(splice(src, NULL, sp, NULL, 10, 0));
  CHECK(splice(src, NULL, p[1], NULL, 0, 0));
  CHECK(splice(src, NULL, p[1], NULL, 0, 0x100));
  CHECK(splice(src, NULL, p[1], NULL, 5, 0x100));
  in = 0;
  CHECK(splice(p[0], &in, sp, NULL, 5, 0));
  CHECK(splice(src, NULL, p[1], &in, 5, 0));
  CHECK(splice(-1, NULL, p[1], NULL, 5, 0));
  CHECK(splice(src, NULL, -1, NULL, 5, 0));
  CHECK(splice(wo, NULL, p[1], NULL, 5, 0));
  CHECK(splice(p[0], NULL, ro, NULL, 5, 0));
  CHECK(splice(p[0], NULL, ap, NULL, 5, 0));
  CHECK(splice(dir, NULL, p[1], NULL, 5, 0));
  in = -1;
  CHECK(splice(src, &in, p[1], NULL, 5, 0));
  CHECK(splice(src, (loff_t *)8, p[1], NULL, 5, 0));
  in = 1000;
  CHECK(splice(src, &in, p[1], NULL, 5, 0));
  CHECK(close(p[1]));
  CHECK(splice(p[0], NULL, sp, NULL, 5, 0));
  CHECK(pipe(p));
  CHECK(close(p[0]));
  CHECK(splice(src, NULL, p[1], NULL, 5, 0));
  show("/tmp/spliced");

  printf("tee:\n");
  int q[2];
  CHECK(pipe(q));
  CHECK(tee(src, q[1], 5, 0));
  CHECK(tee(q[0], src, 5, 0));
  CHECK(tee(q[0], q[1], 0, 0));
  CHECK(tee(q[0], q[1], 5, 0x100));
  CHECK(tee(q[0], q[1], 0, 0x100));
  CHECK(tee(-1, q[1], 5, 0));
  CHECK(tee(q[1], q[0], 5, 0));
  return 0;
}
