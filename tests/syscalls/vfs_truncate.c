/* truncate and ftruncate: growing, shrinking, the data and times they
 * leave, and their errors (EINVAL before EBADF, EISDIR by path, EINVAL for
 * fds that are not writable regular files); and the fsync family. */
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

static long size_of(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  return (long)st.st_size;
}

static void set_old_times(const char *path) {
  struct timespec ts[2] = {{1000, 0}, {1000, 0}};
  utimensat(AT_FDCWD, path, ts, 0);
}

static int mtime_kept(const char *path) {
  struct stat st;
  stat(path, &st);
  return st.st_mtim.tv_sec == 1000;
}

int main(void) {
  umask(0);
  int fd = open("/tmp/f", O_CREAT | O_RDWR, 0644);
  EXPECT(fd >= 0);
  CHECK(write(fd, "hello world", 11));
  CHECK(truncate("/tmp/f", 100));
  printf("size=%ld\n", size_of("/tmp/f"));
  char buf[128];
  memset(buf, 'x', sizeof buf);
  CHECK(pread(fd, buf, sizeof buf, 0));
  int zeros = 0;
  for (int i = 11; i < 100; i++) zeros += buf[i] == 0;
  printf("head=%.11s zeros=%d\n", buf, zeros);
  CHECK(truncate("/tmp/f", 5));
  printf("size=%ld\n", size_of("/tmp/f"));
  CHECK(truncate("/tmp/f", 8));
  memset(buf, 'x', sizeof buf);
  CHECK(pread(fd, buf, sizeof buf, 0));
  printf("bytes: %c%c%c%c%c %d %d %d\n", buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6],
         buf[7]);

  /* The position stays where it was. */
  CHECK(lseek(fd, 0, SEEK_CUR));
  CHECK(ftruncate(fd, 3));
  CHECK(lseek(fd, 0, SEEK_CUR));
  CHECK(write(fd, "!", 1));
  printf("size=%ld\n", size_of("/tmp/f"));

  /* Blocks follow the data. */
  CHECK(ftruncate(fd, 0));
  struct stat st;
  CHECK(fstat(fd, &st));
  printf("size=%ld blocks=%ld\n", (long)st.st_size, (long)st.st_blocks);
  CHECK(ftruncate(fd, 1 << 20));
  CHECK(fstat(fd, &st));
  printf("size=%ld blocks=%ld\n", (long)st.st_size, (long)st.st_blocks);
  CHECK(truncate("/tmp/f", LLONG_MAX));
  printf("size=%ld\n", size_of("/tmp/f"));
  CHECK(ftruncate(fd, 10));

  /* Times: truncate to the same size leaves them; ftruncate touches them
   * anyway; a new size always does. */
  set_old_times("/tmp/f");
  CHECK(truncate("/tmp/f", 10));
  EXPECT(mtime_kept("/tmp/f"));
  CHECK(ftruncate(fd, 10));
  EXPECT(mtime_kept("/tmp/f"));
  set_old_times("/tmp/f");
  CHECK(truncate("/tmp/f", 11));
  EXPECT(mtime_kept("/tmp/f"));
  set_old_times("/tmp/f");
  CHECK(ftruncate(fd, 12));
  EXPECT(mtime_kept("/tmp/f"));

  /* Errors by path. */
  CHECK(truncate("/tmp/f", -1));
  CHECK(truncate("/tmp/missing", -1));
  CHECK(truncate("/tmp/missing", 0));
  CHECK(truncate("", 0));
  CHECK(truncate("/tmp/f/x", 0));
  CHECK(mkdir("/tmp/d", 0755));
  CHECK(truncate("/tmp/d", 0));
  CHECK(mkfifo("/tmp/p", 0644));
  CHECK(truncate("/tmp/p", 0));
  CHECK(symlink("f", "/tmp/s"));
  CHECK(truncate("/tmp/s", 4));
  printf("size=%ld\n", size_of("/tmp/f"));
  CHECK(truncate("/dev/null", 0));

  /* Errors by fd. */
  CHECK(ftruncate(fd, -1));
  CHECK(ftruncate(-1, -1));
  CHECK(ftruncate(99, 0));
  int ro = open("/tmp/f", O_RDONLY);
  CHECK(ftruncate(ro, 0));
  int wo = open("/tmp/f", O_WRONLY | O_APPEND);
  CHECK(ftruncate(wo, 2));
  printf("size=%ld\n", size_of("/tmp/f"));
  int pfd = open("/tmp/f", O_PATH);
  CHECK(ftruncate(pfd, 0));
  int dfd = open("/tmp/d", O_RDONLY | O_DIRECTORY);
  CHECK(ftruncate(dfd, 0));
  int pp[2];
  CHECK(pipe(pp));
  CHECK(ftruncate(pp[1], 0));
  int null = open("/dev/null", O_WRONLY);
  CHECK(ftruncate(null, 0));

  /* O_TRUNC empties the file, even opened for reading. */
  CHECK(ftruncate(fd, 10));
  CHECK(close(open("/tmp/f", O_WRONLY | O_TRUNC)));
  printf("size=%ld\n", size_of("/tmp/f"));
  CHECK(ftruncate(fd, 10));
  CHECK(close(open("/tmp/f", O_RDONLY | O_TRUNC)));
  printf("size=%ld\n", size_of("/tmp/f"));

  /* Without capabilities: write permission is needed by path, and
   * set-user-ID goes. */
  CHECK(ftruncate(fd, 10));
  CHECK(chmod("/tmp/f", 0644));
  CHECK(close(open("/tmp/g", O_CREAT | O_WRONLY, 06775)));
  CHECK(chown("/tmp/g", 1000, 1000));
  CHECK(chmod("/tmp/g", 06775));
  CHECK(syscall(SYS_setresuid, -1, 1000, -1));
  CHECK(truncate("/tmp/f", 0));
  CHECK(truncate("/tmp/g", 10));
  CHECK(syscall(SYS_setresuid, -1, 0, -1));
  CHECK(stat("/tmp/g", &st));
  printf("mode=%o size=%ld\n", st.st_mode, (long)st.st_size);
  CHECK(chmod("/tmp/g", 06775));
  CHECK(truncate("/tmp/g", 20));
  CHECK(stat("/tmp/g", &st));
  printf("mode=%o size=%ld\n", st.st_mode, (long)st.st_size);

  /* Syncing: nothing to write back, but the fd is checked. */
  CHECK(fsync(fd));
  CHECK(fdatasync(fd));
  CHECK(fsync(ro));
  CHECK(fsync(dfd));
  CHECK(fsync(pp[0]));
  CHECK(fdatasync(pp[1]));
  CHECK(fsync(null));
  CHECK(fsync(-1));
  CHECK(fdatasync(99));
  CHECK(fsync(pfd));
  sync();
  CHECK(syncfs(fd));
  CHECK(syncfs(pp[0]));
  CHECK(syncfs(null));
  CHECK(syncfs(-1));
  CHECK(syncfs(pfd));
  return 0;
}
