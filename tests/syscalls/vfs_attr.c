/* chmod, fchmod, fchmodat, fchmodat2, chown, fchown, lchown, fchownat:
 * mode bits, symlinks, set-user-ID and set-group-ID clearing, ctime, and
 * the ownership rules for a caller without capabilities. */
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

static void show(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    printf("%s: %s\n", path, strerrorname_np(errno));
    return;
  }
  printf("%s: mode=%o uid=%d gid=%d\n", path, st.st_mode, (int)st.st_uid, (int)st.st_gid);
}

static struct timespec ctime_of(const char *path) {
  struct stat st;
  lstat(path, &st);
  return st.st_ctim;
}

static int later(struct timespec a, struct timespec b) {
  return b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec > a.tv_nsec);
}

static void pause_a_little(void) {
  struct timespec ts = {0, 20 * 1000 * 1000};
  nanosleep(&ts, NULL);
}

int main(void) {
  umask(0);
  CHECK(setgroups(0, NULL));
  int fd = open("/tmp/a", O_CREAT | O_RDWR, 0644);
  EXPECT(fd >= 0);
  show("/tmp/a");

  /* chmod and friends. */
  struct timespec c0 = ctime_of("/tmp/a");
  pause_a_little();
  CHECK(chmod("/tmp/a", 0755));
  EXPECT(later(c0, ctime_of("/tmp/a")));
  show("/tmp/a");
  CHECK(chmod("/tmp/a", 07777));
  show("/tmp/a");
  CHECK(chmod("/tmp/a", 0177644));
  show("/tmp/a");
  CHECK(chmod("/tmp/missing", 0600));
  CHECK(chmod("", 0600));
  CHECK(chmod("/tmp/a/x", 0600));
  CHECK(fchmod(fd, 0600));
  show("/tmp/a");
  CHECK(fchmod(-1, 0600));
  CHECK(fchmod(99, 0600));
  int pfd = open("/tmp/a", O_PATH);
  CHECK(fchmod(pfd, 0644));
  CHECK(mkdir("/tmp/d", 0755));
  int dfd = open("/tmp/d", O_RDONLY | O_DIRECTORY);
  CHECK(fchmod(dfd, 0700));
  show("/tmp/d");
  CHECK(fchmodat(AT_FDCWD, "/tmp/a", 0640, 0));
  show("/tmp/a");
  CHECK(close(open("/tmp/d/f", O_CREAT | O_WRONLY, 0600)));
  CHECK(fchmodat(dfd, "f", 0604, 0));
  show("/tmp/d/f");
  CHECK(fchmodat(fd, "f", 0604, 0));
  CHECK(fchmodat(AT_FDCWD, "/tmp/a", 0640, AT_SYMLINK_NOFOLLOW));

  /* Symlinks: chmod follows; fchmodat2 can refuse to. */
  CHECK(symlink("a", "/tmp/s"));
  CHECK(chmod("/tmp/s", 0606));
  show("/tmp/s");
  show("/tmp/a");
  CHECK(syscall(SYS_fchmodat2, AT_FDCWD, "/tmp/s", 0600, AT_SYMLINK_NOFOLLOW));
  CHECK(syscall(SYS_fchmodat2, AT_FDCWD, "/tmp/a", 0600, AT_SYMLINK_NOFOLLOW));
  show("/tmp/a");
  CHECK(syscall(SYS_fchmodat2, AT_FDCWD, "/tmp/a", 0600, 0x8000));
  CHECK(syscall(SYS_fchmodat2, pfd, "", 0611, AT_EMPTY_PATH));
  show("/tmp/a");
  CHECK(syscall(SYS_fchmodat2, pfd, "", 0611, 0));
  int spfd = open("/tmp/s", O_PATH | O_NOFOLLOW);
  CHECK(syscall(SYS_fchmodat2, spfd, "", 0600, AT_EMPTY_PATH));
  CHECK(chmod("/tmp/a", 0644));

  /* chown and friends, as root. */
  c0 = ctime_of("/tmp/a");
  pause_a_little();
  CHECK(chown("/tmp/a", 1000, 2000));
  EXPECT(later(c0, ctime_of("/tmp/a")));
  show("/tmp/a");
  CHECK(chown("/tmp/a", -1, 3000));
  show("/tmp/a");
  CHECK(chown("/tmp/a", 4000, -1));
  show("/tmp/a");
  c0 = ctime_of("/tmp/a");
  pause_a_little();
  CHECK(chown("/tmp/a", -1, -1));
  EXPECT(later(c0, ctime_of("/tmp/a")));
  show("/tmp/a");
  CHECK(lchown("/tmp/s", 5, 6));
  show("/tmp/s");
  show("/tmp/a");
  CHECK(chown("/tmp/s", 7, 8));
  show("/tmp/s");
  show("/tmp/a");
  CHECK(fchown(fd, 0, 0));
  show("/tmp/a");
  CHECK(fchown(pfd, 1, 1));
  CHECK(fchown(-1, 1, 1));
  CHECK(fchownat(AT_FDCWD, "/tmp/s", 9, 9, AT_SYMLINK_NOFOLLOW));
  show("/tmp/s");
  CHECK(fchownat(dfd, "f", 10, 10, 0));
  show("/tmp/d/f");
  CHECK(fchownat(pfd, "", 11, 11, AT_EMPTY_PATH));
  show("/tmp/a");
  CHECK(fchownat(pfd, "", 11, 11, 0));
  CHECK(fchownat(AT_FDCWD, "/tmp/a", 11, 11, 0x4000));
  CHECK(chown("/tmp/missing", 0, 0));

  /* Changing the owner drops set-user-ID, and set-group-ID with group
   * execute; directories keep theirs. */
  CHECK(chmod("/tmp/a", 06755));
  CHECK(chown("/tmp/a", 0, 0));
  show("/tmp/a");
  CHECK(chmod("/tmp/a", 06745));
  CHECK(chown("/tmp/a", -1, -1));
  show("/tmp/a");
  CHECK(chmod("/tmp/d", 06755));
  CHECK(chown("/tmp/d", 1, 1));
  show("/tmp/d");

  /* Without capabilities: only the owner changes modes, owners cannot
   * give files away, groups change only to the caller's. */
  CHECK(close(open("/tmp/u", O_CREAT | O_WRONLY, 0644)));
  CHECK(chown("/tmp/u", 1000, 1000));
  CHECK(chmod("/tmp/a", 0644));
  CHECK(chown("/tmp/a", 0, 0));
  CHECK(syscall(SYS_setresuid, -1, 1000, -1));
  CHECK(chmod("/tmp/u", 0600));
  show("/tmp/u");
  CHECK(chmod("/tmp/a", 0600));
  CHECK(chmod("/tmp/u", 02644));
  show("/tmp/u");
  CHECK(chown("/tmp/u", 0, -1));
  CHECK(chown("/tmp/u", 1000, -1));
  CHECK(chown("/tmp/u", -1, 1000));
  CHECK(chown("/tmp/u", -1, 5));
  CHECK(chown("/tmp/u", -1, 0));
  show("/tmp/u");
  CHECK(chown("/tmp/a", -1, 0));
  CHECK(fchown(fd, 0, 0));
  CHECK(syscall(SYS_setresuid, -1, 0, -1));
  CHECK(chmod("/tmp/u", 04755));
  show("/tmp/u");
  return 0;
}
