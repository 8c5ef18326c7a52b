/* open flags: O_TMPFILE, O_PATH, O_DIRECTORY, O_NOFOLLOW, O_APPEND,
 * O_TRUNC, O_EXCL, O_CREAT; and openat2 with RESOLVE_* restrictions. */
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

static long openat2_(int dirfd, const char *path, unsigned long flags, unsigned long mode,
                     unsigned long resolve) {
  struct open_how how = {.flags = flags, .mode = mode, .resolve = resolve};
  return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

static void show_fd(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    printf("fstat: %s\n", strerrorname_np(errno));
    return;
  }
  printf("mode=%o nlink=%ld size=%ld\n", st.st_mode, (long)st.st_nlink, (long)st.st_size);
}

int main(void) {
  umask(022);
  CHECK(mkdir("/tmp/d", 0755));
  int f = open("/tmp/d/f", O_CREAT | O_RDWR, 0666);
  CHECK(write(f, "0123456789", 10));
  CHECK(symlink("f", "/tmp/d/s"));
  CHECK(symlink("/tmp/d", "/tmp/dl"));

  printf("O_TMPFILE:\n");
  int t = open("/tmp/d", O_TMPFILE | O_RDWR, 0640);
  EXPECT(t >= 0);
  show_fd(t);
  CHECK(write(t, "tmp", 3));
  CHECK(fcntl(t, F_GETFL));
  CHECK(linkat(t, "", AT_FDCWD, "/tmp/d/named", AT_EMPTY_PATH));
  show_fd(t);
  CHECK(open("/tmp/d", O_TMPFILE | O_RDONLY, 0600));
  CHECK(open("/tmp/d/f", O_TMPFILE | O_RDWR, 0600));
  CHECK(open("/tmp/missing", O_TMPFILE | O_RDWR, 0600));
  CHECK(open("/tmp/d", O_TMPFILE | O_CREAT | O_RDWR, 0600));
  CHECK(open("/tmp/d", O_TMPFILE | O_WRONLY, 0600) >= 0);
  int te = open("/tmp/d", O_TMPFILE | O_RDWR | O_EXCL, 0600);
  EXPECT(te >= 0);
  CHECK(linkat(te, "", AT_FDCWD, "/tmp/d/excl", AT_EMPTY_PATH));

  printf("O_PATH:\n");
  int p = open("/tmp/d/f", O_PATH);
  EXPECT(p >= 0);
  CHECK(fcntl(p, F_GETFL));
  char buf[32] = {0};
  CHECK(read(p, buf, 1));
  CHECK(write(p, "x", 1));
  CHECK(lseek(p, 0, SEEK_SET));
  show_fd(p);
  CHECK(fchmod(p, 0600));
  CHECK(fsync(p));
  CHECK(fcntl(p, F_GETFD));
  CHECK(dup(p) >= 0);
  int ps = open("/tmp/d/s", O_PATH | O_NOFOLLOW);
  show_fd(ps);
  int pd = open("/tmp/d", O_PATH | O_DIRECTORY);
  CHECK(openat(pd, "f", O_RDONLY) >= 0);
  CHECK(fchdir(pd));
  CHECK(open("f", O_RDONLY) >= 0);
  CHECK(chdir("/"));
  CHECK(open("/tmp/d/f", O_PATH | O_DIRECTORY));
  CHECK(open("/tmp/d/missing", O_PATH | O_CREAT, 0600));
  CHECK(open("/tmp/d/f", O_PATH | O_WRONLY | O_TRUNC) >= 0);
  struct stat st;
  CHECK(fstat(f, &st));
  printf("size=%ld\n", (long)st.st_size);

  printf("O_DIRECTORY, O_NOFOLLOW:\n");
  CHECK(open("/tmp/d/f", O_RDONLY | O_DIRECTORY));
  CHECK(open("/tmp/d", O_RDONLY | O_DIRECTORY) >= 0);
  CHECK(open("/tmp/dl", O_RDONLY | O_DIRECTORY) >= 0);
  CHECK(open("/tmp/dl", O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  CHECK(open("/tmp/d/new", O_RDWR | O_CREAT | O_DIRECTORY, 0600));
  CHECK(open("/tmp/d", O_RDWR));
  CHECK(open("/tmp/d", O_WRONLY | O_DIRECTORY));
  CHECK(open("/tmp/d", O_RDONLY | O_CREAT, 0600));
  CHECK(open("/tmp/d/s", O_RDONLY | O_NOFOLLOW));
  CHECK(open("/tmp/dl/f", O_RDONLY | O_NOFOLLOW) >= 0);
  CHECK(open("/tmp/d/s", O_RDONLY | O_NOFOLLOW | O_CREAT, 0600));
  CHECK(open("/tmp/d/s", O_RDONLY | O_CREAT | O_EXCL, 0600));
  CHECK(open("/tmp/d/f/", O_RDONLY));
  CHECK(open("/tmp/d/new/", O_RDWR | O_CREAT, 0600));

  printf("O_APPEND, O_TRUNC, O_CREAT:\n");
  int a = open("/tmp/d/f", O_WRONLY | O_APPEND);
  CHECK(lseek(a, 0, SEEK_SET));
  CHECK(write(a, "AB", 2));
  CHECK(lseek(a, 0, SEEK_CUR));
  CHECK(pwrite(a, "CD", 2, 0));
  CHECK(lseek(a, 0, SEEK_CUR));
  CHECK(pread(f, buf, sizeof buf - 1, 0));
  printf("data: %s\n", buf);
  CHECK(fcntl(a, F_SETFL, 0));
  CHECK(lseek(a, 0, SEEK_SET));
  CHECK(write(a, "ef", 2));
  CHECK(fcntl(a, F_SETFL, O_APPEND));
  CHECK(fcntl(a, F_GETFL));
  int tr = open("/tmp/d/f", O_RDWR | O_TRUNC);
  CHECK(fstat(tr, &st));
  printf("size=%ld\n", (long)st.st_size);
  CHECK(open("/tmp/d", O_RDONLY | O_TRUNC));
  int c = open("/tmp/d/c", O_CREAT | O_EXCL | O_WRONLY, 0777);
  show_fd(c);
  CHECK(open("/tmp/d/c", O_CREAT | O_EXCL | O_WRONLY, 0777));
  CHECK(open("/tmp/d/c", O_CREAT | O_WRONLY, 0600) >= 0);
  show_fd(c);
  CHECK(open("/tmp/d/x", O_WRONLY));
  CHECK(open("/tmp/nodir/x", O_CREAT | O_WRONLY, 0600));
  CHECK(open("", O_RDONLY));
  CHECK(openat(f, "x", O_RDONLY));
  CHECK(openat(99, "x", O_RDONLY));
  CHECK(openat(99, "/tmp/d/f", O_RDONLY) >= 0);

  printf("openat2:\n");
  int dfd = open("/tmp/d", O_RDONLY | O_DIRECTORY);
  CHECK(openat2_(dfd, "f", O_RDONLY, 0, 0) >= 0);
  CHECK(openat2_(dfd, "f", O_RDONLY, 0, RESOLVE_BENEATH) >= 0);
  CHECK(openat2_(dfd, "../d/f", O_RDONLY, 0, RESOLVE_BENEATH));
  CHECK(openat2_(dfd, "/tmp/d/f", O_RDONLY, 0, RESOLVE_BENEATH));
  CHECK(openat2_(dfd, "s", O_RDONLY, 0, RESOLVE_BENEATH) >= 0);
  CHECK(openat2_(dfd, "s", O_RDONLY, 0, RESOLVE_NO_SYMLINKS));
  CHECK(openat2_(dfd, "s", O_PATH | O_NOFOLLOW, 0, RESOLVE_NO_SYMLINKS) >= 0);
  CHECK(openat2_(AT_FDCWD, "/tmp/dl/f", O_RDONLY, 0, RESOLVE_NO_SYMLINKS));
  CHECK(openat2_(AT_FDCWD, "/tmp/d/f", O_RDONLY, 0, RESOLVE_NO_XDEV) >= 0);
  int root = open("/", O_RDONLY | O_DIRECTORY);
  CHECK(openat2_(root, "tmp/d/f", O_RDONLY, 0, RESOLVE_NO_XDEV));
  CHECK(openat2_(dfd, "/f", O_RDONLY, 0, RESOLVE_IN_ROOT) >= 0);
  CHECK(openat2_(dfd, "../../f", O_RDONLY, 0, RESOLVE_IN_ROOT) >= 0);
  CHECK(openat2_(dfd, "/missing", O_RDONLY, 0, RESOLVE_IN_ROOT));
  CHECK(symlink("/f", "/tmp/d/abs"));
  CHECK(openat2_(dfd, "abs", O_RDONLY, 0, RESOLVE_IN_ROOT) >= 0);
  CHECK(openat2_(dfd, "abs", O_RDONLY, 0, RESOLVE_BENEATH));
  CHECK(openat2_(dfd, "f", O_RDONLY, 0, RESOLVE_BENEATH | RESOLVE_IN_ROOT));
  CHECK(openat2_(dfd, "f", O_RDONLY, 0, 0x40));
  CHECK(openat2_(dfd, "f", O_RDONLY, 0644, 0));
  CHECK(openat2_(dfd, "g", O_RDWR | O_CREAT, 0644, 0) >= 0);
  CHECK(openat2_(dfd, "h", O_RDWR | O_CREAT, 010644, 0));
  CHECK(openat2_(dfd, "f", 1UL << 40, 0, 0));
  CHECK(openat2_(dfd, "f", 0x40000000, 0, 0));
  struct open_how how = {.flags = O_RDONLY};
  CHECK(syscall(SYS_openat2, dfd, "f", &how, 8));
  CHECK(syscall(SYS_openat2, dfd, "f", &how, 4097));
  char bigger[64] = {0};
  memcpy(bigger, &how, sizeof how);
  CHECK(syscall(SYS_openat2, dfd, "f", bigger, sizeof bigger) >= 0);
  bigger[40] = 1;
  CHECK(syscall(SYS_openat2, dfd, "f", bigger, sizeof bigger));
  return 0;
}
