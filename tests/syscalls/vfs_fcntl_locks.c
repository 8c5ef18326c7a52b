/* Record locks: F_GETLK/F_SETLK/F_SETLKW (owned by the process) and
 * F_OFD_GETLK/F_OFD_SETLK/F_OFD_SETLKW (owned by an open file
 * description). With one process, conflicts show between the process's
 * locks and OFD locks, and between OFD locks of different opens. */
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>
#include "check.h"

static struct flock lk(int type, int whence, long start, long len) {
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = type;
  fl.l_whence = whence;
  fl.l_start = start;
  fl.l_len = len;
  return fl;
}

static const char *tname(int t) {
  return t == F_RDLCK ? "RD" : t == F_WRLCK ? "WR" : t == F_UNLCK ? "UN" : "?";
}

/* What blocks a lock of `type` on [start, start+len) via fd's OFD. */
static void probe(int fd, int type, long start, long len) {
  struct flock fl = lk(type, SEEK_SET, start, len);
  if (fcntl(fd, F_OFD_GETLK, &fl) != 0) {
    printf("  probe %s %ld+%ld: %s\n", tname(type), start, len, strerrorname_np(errno));
    return;
  }
  if (fl.l_type == F_UNLCK) {
    printf("  probe %s %ld+%ld: free\n", tname(type), start, len);
    return;
  }
  printf("  probe %s %ld+%ld: %s %ld+%ld whence=%d pid=%s\n", tname(type), start, len,
         tname(fl.l_type), (long)fl.l_start, (long)fl.l_len, fl.l_whence,
         fl.l_pid == getpid() ? "me" : fl.l_pid == -1 ? "-1" : "other");
}

static void getlk(int fd, int cmd, int type, long start, long len) {
  struct flock fl = lk(type, SEEK_SET, start, len);
  fl.l_pid = 0;
  errno = 0;
  int r = fcntl(fd, cmd, &fl);
  if (r != 0) {
    printf("  getlk: %s\n", strerrorname_np(errno));
    return;
  }
  printf("  getlk %s: %s %ld+%ld pid=%s\n", tname(type), tname(fl.l_type), (long)fl.l_start,
         (long)fl.l_len, fl.l_pid == getpid() ? "me" : fl.l_pid == -1 ? "-1" : "0/other");
}

static int setlk(int fd, int cmd, int type, int whence, long start, long len) {
  struct flock fl = lk(type, whence, start, len);
  return fcntl(fd, cmd, &fl);
}

int main(void) {
  int fd = open("/tmp/f", O_CREAT | O_RDWR, 0644);
  int o = open("/tmp/f", O_RDWR);
  EXPECT(fd >= 0 && o >= 0);
  CHECK(ftruncate(fd, 1000));

  printf("process lock, seen from another description:\n");
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 10));
  getlk(fd, F_GETLK, F_WRLCK, 0, 100);
  probe(o, F_RDLCK, 5, 1);
  probe(o, F_RDLCK, 10, 5);
  CHECK(setlk(o, F_OFD_SETLK, F_WRLCK, SEEK_SET, 5, 10));
  CHECK(setlk(o, F_OFD_SETLKW, F_RDLCK, SEEK_SET, 20, 10));
  getlk(fd, F_GETLK, F_WRLCK, 0, 0);
  getlk(fd, F_GETLK, F_RDLCK, 0, 0);
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 25, 1));
  CHECK(setlk(fd, F_SETLK, F_RDLCK, SEEK_SET, 25, 1));
  CHECK(setlk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0));
  CHECK(setlk(o, F_OFD_SETLK, F_UNLCK, SEEK_SET, 0, 0));

  printf("splitting and merging:\n");
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 0, 100));
  CHECK(setlk(fd, F_SETLK, F_UNLCK, SEEK_SET, 40, 20));
  probe(o, F_RDLCK, 45, 1);
  probe(o, F_RDLCK, 30, 1);
  probe(o, F_RDLCK, 70, 1);
  probe(o, F_RDLCK, 0, 0);
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 40, 20));
  probe(o, F_RDLCK, 50, 1);
  CHECK(setlk(fd, F_SETLK, F_RDLCK, SEEK_SET, 100, 10));
  CHECK(setlk(fd, F_SETLK, F_RDLCK, SEEK_SET, 110, 10));
  probe(o, F_WRLCK, 105, 1);
  probe(o, F_RDLCK, 105, 1);
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 200, 100));
  CHECK(setlk(fd, F_SETLK, F_RDLCK, SEEK_SET, 240, 20));
  probe(o, F_WRLCK, 250, 1);
  probe(o, F_WRLCK, 210, 1);
  probe(o, F_WRLCK, 280, 1);
  probe(o, F_RDLCK, 250, 1);
  probe(o, F_RDLCK, 210, 1);
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 240, 20));
  probe(o, F_RDLCK, 250, 1);
  CHECK(setlk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0));
  probe(o, F_WRLCK, 0, 0);

  printf("whence and lengths:\n");
  CHECK(lseek(fd, 500, SEEK_SET));
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_CUR, 0, 10));
  probe(o, F_RDLCK, 505, 1);
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_END, -10, 10));
  probe(o, F_RDLCK, 995, 1);
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 50, -10));
  probe(o, F_RDLCK, 45, 1);
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_END, 100, 0));
  probe(o, F_RDLCK, 5000, 1);
  CHECK(setlk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0));
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, LLONG_MAX - 5, 6));
  probe(o, F_RDLCK, LLONG_MAX - 1, 1);
  CHECK(setlk(fd, F_SETLK, F_UNLCK, SEEK_SET, 0, 0));

  printf("errors:\n");
  CHECK(setlk(fd, F_SETLK, F_WRLCK, 7, 0, 10));
  CHECK(setlk(fd, F_SETLK, 9, SEEK_SET, 0, 10));
  CHECK(setlk(fd, F_SETLK, 9, 7, 0, 10));
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, -1, 10));
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 5, -10));
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_CUR, LLONG_MAX, 1));
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 10, LLONG_MAX));
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, LLONG_MAX, 1));
  int ro = open("/tmp/f", O_RDONLY);
  int wo = open("/tmp/f", O_WRONLY);
  CHECK(setlk(ro, F_SETLK, F_WRLCK, SEEK_SET, 0, 1));
  CHECK(setlk(ro, F_SETLK, F_RDLCK, SEEK_SET, 0, 1));
  CHECK(setlk(wo, F_SETLK, F_RDLCK, SEEK_SET, 0, 1));
  CHECK(setlk(wo, F_SETLK, F_WRLCK, SEEK_SET, 0, 1));
  CHECK(setlk(ro, F_SETLK, F_UNLCK, SEEK_SET, 0, 0));
  CHECK(setlk(wo, F_OFD_SETLK, F_RDLCK, SEEK_SET, 0, 1));
  CHECK(setlk(wo, F_SETLK, F_UNLCK, SEEK_SET, 0, 0));
  getlk(fd, F_GETLK, F_UNLCK, 0, 0);
  getlk(fd, F_GETLK, 9, 0, 0);
  struct flock fl = lk(F_WRLCK, SEEK_SET, 0, 1);
  fl.l_pid = 1;
  CHECK(fcntl(o, F_OFD_SETLK, &fl));
  CHECK(fcntl(o, F_OFD_SETLKW, &fl));
  CHECK(fcntl(o, F_OFD_GETLK, &fl));
  CHECK(fcntl(fd, F_SETLK, &fl));
  CHECK(fcntl(fd, F_SETLK, (void *)8));
  CHECK(fcntl(fd, F_GETLK, (void *)8));
  CHECK(fcntl(-1, F_SETLK, &fl));
  int p = open("/tmp/f", O_PATH);
  fl = lk(F_UNLCK, SEEK_SET, 0, 0);
  CHECK(fcntl(p, F_SETLK, &fl));
  CHECK(fcntl(p, F_GETLK, &fl));

  printf("F_OFD_GETLK with F_UNLCK finds the description's own lock:\n");
  CHECK(setlk(o, F_OFD_SETLK, F_RDLCK, SEEK_SET, 20, 10));
  getlk(o, F_OFD_GETLK, F_UNLCK, 25, 1);
  getlk(o, F_OFD_GETLK, F_UNLCK, 40, 1);
  getlk(fd, F_OFD_GETLK, F_UNLCK, 25, 1);
  getlk(fd, F_OFD_GETLK, F_RDLCK, 25, 1);
  getlk(fd, F_OFD_GETLK, F_WRLCK, 25, 1);

  printf("closing any fd of the file drops the process's locks:\n");
  CHECK(setlk(fd, F_SETLK, F_WRLCK, SEEK_SET, 500, 10));
  probe(o, F_RDLCK, 500, 1);
  CHECK(close(ro));
  probe(o, F_RDLCK, 500, 1);
  CHECK(setlk(fd, F_SETLKW, F_WRLCK, SEEK_SET, 500, 10));
  int d = dup(fd);
  CHECK(close(d));
  probe(o, F_RDLCK, 500, 1);

  printf("OFD locks last until the description's last close:\n");
  int o2 = dup(o);
  CHECK(close(o));
  getlk(fd, F_GETLK, F_WRLCK, 25, 1);
  CHECK(close(o2));
  getlk(fd, F_GETLK, F_WRLCK, 25, 1);

  printf("two OFDs conflict with each other:\n");
  int x = open("/tmp/f", O_RDWR);
  int y = open("/tmp/f", O_RDWR);
  CHECK(setlk(x, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1));
  CHECK(setlk(y, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1));
  CHECK(setlk(y, F_OFD_SETLK, F_RDLCK, SEEK_SET, 0, 1));
  CHECK(setlk(y, F_OFD_SETLK, F_WRLCK, SEEK_SET, 1, 1));
  CHECK(setlk(x, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 2));
  CHECK(setlk(fd, F_SETLK, F_RDLCK, SEEK_SET, 1, 1));
  getlk(fd, F_GETLK, F_RDLCK, 0, 0);

  printf("pipes have locks too:\n");
  int pp[2];
  CHECK(pipe(pp));
  fl = lk(F_RDLCK, SEEK_SET, 0, 0);
  CHECK(fcntl(pp[0], F_OFD_SETLK, &fl));
  fl = lk(F_WRLCK, SEEK_SET, 0, 0);
  CHECK(fcntl(pp[1], F_OFD_SETLK, &fl));
  CHECK(fcntl(pp[0], F_SETLK, &fl));
  return 0;
}
