/* /proc/self/fd, fdinfo, cwd and root: what the magic links show, where
 * following them goes, their modes, and names of removed files. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"

static char buf[4096];

static const char *link_of(const char *fmt, long n) {
  static char out[512];
  char path[64];
  snprintf(path, sizeof path, fmt, n);
  memset(out, 0, sizeof out);
  if (readlink(path, out, sizeof out - 1) < 0) snprintf(out, sizeof out, "-1 %s", strerrorname_np(errno));
  return out;
}

static const char *fdinfo(int fd) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  int f = open(path, O_RDONLY);
  if (f < 0) return strerrorname_np(errno);
  long n = read(f, buf, sizeof buf - 1);
  close(f);
  buf[n < 0 ? 0 : n] = 0;
  return buf;
}

/* The value of "key:\t" in an fdinfo text. */
static unsigned long long info_value(const char *text, const char *key, int base) {
  const char *p = strstr(text, key);
  return p ? strtoull(p + strlen(key), NULL, base) : ~0ULL;
}

static void show_link_mode(int fd) {
  char path[64];
  struct stat st;
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  if (lstat(path, &st) < 0) {
    printf("lstat fd %s\n", strerrorname_np(errno));
    return;
  }
  printf("link mode=%o size=%ld owner=%s\n", st.st_mode, (long)st.st_size,
         st.st_uid == geteuid() ? "me" : "other");
}

int main(void) {
  struct stat st, st2;
  printf("-- a file in /tmp\n");
  int fd = open("/tmp/pf", O_CREAT | O_RDWR, 0600);
  CHECK(write(fd, "hello", 5));
  printf("fd -> %s\n", link_of("/proc/self/fd/%ld", fd));
  show_link_mode(fd);
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  CHECK(stat(path, &st));
  fstat(fd, &st2);
  EXPECT(st.st_ino == st2.st_ino && st.st_dev == st2.st_dev);
  /* Opening the link opens the file anew, with its own offset. */
  int again = open(path, O_RDONLY);
  EXPECT(again >= 0);
  memset(buf, 0, sizeof buf);
  CHECK(read(again, buf, sizeof buf));
  printf("read through the link: %s\n", buf);
  CHECK(lseek(fd, 0, SEEK_CUR));
  close(again);

  printf("-- fdinfo\n");
  CHECK(lseek(fd, 3, SEEK_SET));
  const char *info = fdinfo(fd);
  printf("pos=%llu flags=0%llo\n", info_value(info, "pos:", 10), info_value(info, "flags:", 8));
  EXPECT(info_value(info, "ino:", 10) == st2.st_ino);
  struct statx sx;
  CHECK(statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx));
  EXPECT(info_value(info, "mnt_id:", 10) == sx.stx_mnt_id);
  int ap = open("/tmp/pf", O_WRONLY | O_APPEND | O_CLOEXEC | O_NONBLOCK);
  info = fdinfo(ap);
  printf("append: pos=%llu flags=0%llo\n", info_value(info, "pos:", 10),
         info_value(info, "flags:", 8));
  show_link_mode(ap);
  int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
  info = fdinfo(dir);
  printf("dir: flags=0%llo\n", info_value(info, "flags:", 8));
  printf("dir -> %s\n", link_of("/proc/self/fd/%ld", dir));
  show_link_mode(dir);
  int opath = open("/tmp/pf", O_PATH);
  printf("O_PATH -> %s\n", link_of("/proc/self/fd/%ld", opath));
  show_link_mode(opath);
  CHECK(open("/proc/self/fdinfo/9999", O_RDONLY));
  CHECK(open("/proc/self/fd/9999", O_RDONLY));
  CHECK(readlink("/proc/self/fd/9999", buf, sizeof buf));
  CHECK(open("/proc/self/fd/01", O_RDONLY));

  printf("-- the listing\n");
  DIR *d = opendir("/proc/self/fd");
  int seen_fd = 0, seen_dir = 0, seen_closed = 0, links = 1;
  struct dirent *e;
  close(ap);
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    int n = atoi(e->d_name);
    if (n == fd) seen_fd = 1;
    if (n == dirfd(d)) seen_dir = 1;
    if (n == ap) seen_closed = 1;
    if (e->d_type != DT_LNK) links = 0;
  }
  if (d) closedir(d);
  printf("fd=%d dir=%d closed=%d all links=%d\n", seen_fd, seen_dir, seen_closed, links);
  CHECK(stat("/proc/self/fd", &st));
  printf("fd dir: mode=%o nlink=%ld\n", st.st_mode, (long)st.st_nlink);
  CHECK(stat("/proc/self/fdinfo", &st));
  printf("fdinfo dir: mode=%o nlink=%ld\n", st.st_mode, (long)st.st_nlink);
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  CHECK(stat(path, &st));
  printf("fdinfo file: mode=%o\n", st.st_mode);

  printf("-- removed files\n");
  CHECK(unlink("/tmp/pf"));
  printf("fd -> %s\n", link_of("/proc/self/fd/%ld", fd));
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  again = open(path, O_RDONLY);
  EXPECT(again >= 0);
  memset(buf, 0, sizeof buf);
  CHECK(read(again, buf, sizeof buf));
  printf("read through the link: %s\n", buf);
  printf("O_PATH -> %s\n", link_of("/proc/self/fd/%ld", opath));

  printf("-- /proc files are named by pid\n");
  int pf = open("/proc/self/status", O_RDONLY);
  char want[64];
  snprintf(want, sizeof want, "/proc/%d/status", getpid());
  EXPECT(!strcmp(link_of("/proc/self/fd/%ld", pf), want));

  printf("-- cwd and root\n");
  CHECK(chdir("/"));
  printf("cwd -> %s\n", link_of("/proc/self/cwd", 0));
  printf("root -> %s\n", link_of("/proc/self/root", 0));
  CHECK(mkdir("/tmp/sub", 0755));
  CHECK(chdir("/tmp/sub"));
  printf("cwd -> %s\n", link_of("/proc/self/cwd", 0));
  int f = open("/tmp/sub/file", O_CREAT | O_WRONLY, 0600);
  CHECK(write(f, "in sub", 6));
  close(f);
  f = open("/proc/self/cwd/file", O_RDONLY);
  EXPECT(f >= 0);
  memset(buf, 0, sizeof buf);
  CHECK(read(f, buf, sizeof buf));
  printf("via cwd: %s\n", buf);
  close(f);
  CHECK(stat("/proc/self/cwd", &st));
  stat(".", &st2);
  EXPECT(st.st_ino == st2.st_ino && st.st_dev == st2.st_dev);
  CHECK(stat("/proc/self/root/tmp/sub/file", &st));
  CHECK(lstat("/proc/self/cwd", &st));
  printf("cwd link mode=%o\n", st.st_mode);
  CHECK(unlink("/tmp/sub/file"));
  CHECK(rmdir("/tmp/sub"));
  printf("cwd -> %s\n", link_of("/proc/self/cwd", 0));
  CHECK(chdir("/"));
  printf("cwd -> %s\n", link_of("/proc/self/cwd", 0));
  return 0;
}
