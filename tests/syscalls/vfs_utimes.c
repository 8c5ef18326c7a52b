/* utimensat, utime, utimes, futimesat: explicit times, UTIME_NOW,
 * UTIME_OMIT, NULL times, AT_SYMLINK_NOFOLLOW, fds, and who may set what. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>
#include "check.h"

static void show(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    printf("%s: %s\n", path, strerrorname_np(errno));
    return;
  }
  printf("%s: atime=%ld.%09ld mtime=%ld.%09ld\n", path, (long)st.st_atim.tv_sec,
         st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

/* Whether a time stamp is "now" (within a few seconds of the clock). */
static int recent(struct timespec ts) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  long d = (long)now.tv_sec - (long)ts.tv_sec;
  return d >= 0 && d < 5;
}

static void show_recent(const char *path) {
  struct stat st;
  lstat(path, &st);
  printf("%s: atime now=%s mtime now=%s ctime now=%s\n", path, recent(st.st_atim) ? "yes" : "no",
         recent(st.st_mtim) ? "yes" : "no", recent(st.st_ctim) ? "yes" : "no");
}

int main(void) {
  umask(0);
  int fd = open("/tmp/f", O_CREAT | O_RDWR, 0644);
  EXPECT(fd >= 0);
  struct timespec ts[2] = {{1000, 500}, {2000, 600}};
  CHECK(utimensat(AT_FDCWD, "/tmp/f", ts, 0));
  show("/tmp/f");
  show_recent("/tmp/f");

  /* UTIME_OMIT keeps one, UTIME_NOW takes the clock. */
  struct timespec omit_a[2] = {{0, UTIME_OMIT}, {3000, 0}};
  CHECK(utimensat(AT_FDCWD, "/tmp/f", omit_a, 0));
  show("/tmp/f");
  struct timespec now_a[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
  CHECK(utimensat(AT_FDCWD, "/tmp/f", now_a, 0));
  show_recent("/tmp/f");
  CHECK(utimensat(AT_FDCWD, "/tmp/f", ts, 0));
  CHECK(utimensat(AT_FDCWD, "/tmp/f", NULL, 0));
  show_recent("/tmp/f");
  struct timespec now_now[2] = {{5, UTIME_NOW}, {6, UTIME_NOW}};
  CHECK(utimensat(AT_FDCWD, "/tmp/f", ts, 0));
  CHECK(utimensat(AT_FDCWD, "/tmp/f", now_now, 0));
  show_recent("/tmp/f");

  /* Both omitted: success without even looking the path up. */
  struct timespec omit2[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  CHECK(utimensat(AT_FDCWD, "/tmp/missing", omit2, 0));
  CHECK(utimensat(AT_FDCWD, "/tmp/missing", omit2, 0x8000));

  /* Bad nanoseconds, bad flags, bad pointers. */
  struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
  CHECK(utimensat(AT_FDCWD, "/tmp/f", bad, 0));
  struct timespec neg[2] = {{0, 0}, {0, -1}};
  CHECK(utimensat(AT_FDCWD, "/tmp/f", neg, 0));
  CHECK(utimensat(AT_FDCWD, "/tmp/missing", bad, 0));
  CHECK(utimensat(AT_FDCWD, "/tmp/missing", ts, 0));
  CHECK(utimensat(AT_FDCWD, "/tmp/f", ts, 0x8000));
  CHECK(syscall(SYS_utimensat, AT_FDCWD, "/tmp/f", (void *)8, 0));
  CHECK(utimensat(AT_FDCWD, "", ts, 0));

  /* Negative and large seconds. */
  struct timespec old[2] = {{-1, 0}, {4000000000L, 999999999}};
  CHECK(utimensat(AT_FDCWD, "/tmp/f", old, 0));
  show("/tmp/f");

  /* Symlinks: followed unless AT_SYMLINK_NOFOLLOW. */
  CHECK(symlink("f", "/tmp/s"));
  CHECK(utimensat(AT_FDCWD, "/tmp/s", ts, 0));
  show("/tmp/f");
  struct timespec ts2[2] = {{7000, 7}, {8000, 8}};
  CHECK(utimensat(AT_FDCWD, "/tmp/s", ts2, AT_SYMLINK_NOFOLLOW));
  show("/tmp/s");
  show("/tmp/f");

  /* The fd forms: futimens, and AT_EMPTY_PATH. */
  struct timespec ts3[2] = {{9000, 9}, {9100, 10}};
  CHECK(futimens(fd, ts3));
  show("/tmp/f");
  CHECK(syscall(SYS_utimensat, fd, NULL, ts3, AT_SYMLINK_NOFOLLOW));
  CHECK(syscall(SYS_utimensat, -1, NULL, ts3, 0));
  CHECK(syscall(SYS_utimensat, 99, NULL, ts3, 0));
  int pfd = open("/tmp/f", O_PATH);
  CHECK(syscall(SYS_utimensat, pfd, NULL, ts3, 0));
  struct timespec ts4[2] = {{9200, 0}, {9300, 0}};
  CHECK(utimensat(pfd, "", ts4, AT_EMPTY_PATH));
  show("/tmp/f");
  CHECK(utimensat(pfd, "", ts4, 0));
  CHECK(mkdir("/tmp/d", 0755));
  int dfd = open("/tmp/d", O_RDONLY | O_DIRECTORY);
  CHECK(close(open("/tmp/d/g", O_CREAT | O_WRONLY, 0644)));
  CHECK(utimensat(dfd, "g", ts, 0));
  show("/tmp/d/g");
  CHECK(utimensat(dfd, "../f", ts, 0));
  show("/tmp/f");
  CHECK(futimens(dfd, ts2));
  show("/tmp/d");

  /* utime and utimes. */
  struct utimbuf ub = {5000, 6000};
  CHECK(utime("/tmp/f", &ub));
  show("/tmp/f");
  CHECK(utime("/tmp/f", NULL));
  show_recent("/tmp/f");
  CHECK(utime("/tmp/missing", &ub));
  struct timeval tv[2] = {{7000, 123456}, {8000, 999999}};
  CHECK(utimes("/tmp/f", tv));
  show("/tmp/f");
  struct timeval badtv[2] = {{7000, 1000000}, {8000, 0}};
  CHECK(utimes("/tmp/f", badtv));
  struct timeval negtv[2] = {{7000, 0}, {8000, -1}};
  CHECK(utimes("/tmp/f", negtv));
  CHECK(syscall(SYS_utimes, "/tmp/missing", badtv));
  CHECK(utimes("/tmp/f", NULL));
  show_recent("/tmp/f");
  struct timeval tv2[2] = {{100, 1}, {200, 2}};
  CHECK(futimesat(AT_FDCWD, "/tmp/f", tv2));
  show("/tmp/f");
  CHECK(futimesat(dfd, "g", tv2));
  show("/tmp/d/g");
  CHECK(syscall(SYS_futimesat, fd, NULL, tv));
  show("/tmp/f");
  CHECK(futimesat(fd, "g", tv2));

  /* Without capabilities: explicit times only for the owner, "now" for
   * anyone who may write. */
  CHECK(close(open("/tmp/w", O_CREAT | O_WRONLY, 0666)));
  CHECK(close(open("/tmp/mine", O_CREAT | O_WRONLY, 0600)));
  CHECK(chown("/tmp/mine", 1000, 1000));
  CHECK(syscall(SYS_setresuid, -1, 1000, -1));
  CHECK(utimensat(AT_FDCWD, "/tmp/f", ts, 0));
  CHECK(utimensat(AT_FDCWD, "/tmp/f", NULL, 0));
  CHECK(utimensat(AT_FDCWD, "/tmp/f", now_now, 0));
  CHECK(utimensat(AT_FDCWD, "/tmp/f", now_a, 0));
  CHECK(utimensat(AT_FDCWD, "/tmp/w", ts, 0));
  CHECK(utimensat(AT_FDCWD, "/tmp/w", NULL, 0));
  CHECK(utimensat(AT_FDCWD, "/tmp/w", now_now, 0));
  CHECK(utimensat(AT_FDCWD, "/tmp/mine", ts, 0));
  show("/tmp/mine");
  CHECK(utimes("/tmp/f", NULL));
  CHECK(utime("/tmp/f", &ub));
  CHECK(syscall(SYS_setresuid, -1, 0, -1));
  return 0;
}
