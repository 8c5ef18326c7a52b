/* mount -t overlay with two lower layers and an upper layer on a tmpfs:
 * reads, merged listings, copy-up on writes, metadata changes and links,
 * whiteouts and opaque directories as the upper directory shows them,
 * rmdir and rename (EXDEV for merged directories), O_TRUNC, a file
 * opened before its copy-up, statfs, mmap, and the mount errors. */
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utime.h>
#include "check.h"

#define D "/tmp/ovl"
#define OPTS "lowerdir=" D "/l:" D "/l2,upperdir=" D "/u,workdir=" D "/w"

static void put(const char *path, const char *data) {
  int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0 || write(fd, data, strlen(data)) < 0) printf("put %s: %s\n", path, strerrorname_np(errno));
  close(fd);
}

static void cat(const char *path) {
  char buf[256];
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    printf("%s: %s\n", path, strerrorname_np(errno));
    return;
  }
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  buf[n < 0 ? 0 : n] = 0;
  printf("%s: \"%s\"\n", path, buf);
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* What `ls -l` shows of a directory, sorted: name, type, mode, size or
 * device numbers (no link counts, times or owners of whiteouts). */
static void ls(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    printf("ls %s: %s\n", dir, strerrorname_np(errno));
    return;
  }
  char *names[64];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 64)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names[n++] = strdup(e->d_name);
  closedir(d);
  qsort(names, n, sizeof *names, cmp);
  printf("ls %s:", dir);
  for (int i = 0; i < n; i++) {
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, names[i]);
    if (lstat(p, &st) != 0) {
      printf(" %s(%s)", names[i], strerrorname_np(errno));
    } else if (S_ISCHR(st.st_mode)) {
      printf(" %s(c%o %u,%u)", names[i], st.st_mode & 07777, major(st.st_rdev), minor(st.st_rdev));
    } else if (S_ISDIR(st.st_mode)) {
      printf(" %s/(%o)", names[i], st.st_mode & 07777);
    } else if (S_ISLNK(st.st_mode)) {
      printf(" %s@", names[i]);
    } else {
      printf(" %s(%o %ld)", names[i], st.st_mode & 07777, (long)st.st_size);
    }
    free(names[i]);
  }
  printf("\n");
}

static void show(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    printf("%s: %s\n", path, strerrorname_np(errno));
    return;
  }
  printf("%s: mode=%o uid=%d gid=%d size=%ld nlink=%ld mtime=%ld\n", path, st.st_mode,
         (int)st.st_uid, (int)st.st_gid, S_ISDIR(st.st_mode) ? 0L : (long)st.st_size,
         S_ISDIR(st.st_mode) ? 0L : (long)st.st_nlink,
         st.st_mtime == 1000000 ? 1000000L : -1L);
}

static ino_t ino(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0 ? st.st_ino : 0;
}

static dev_t dev(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0 ? st.st_dev : 0;
}

static void opaque(const char *path) {
  char v[8] = {0};
  ssize_t n = getxattr(path, "trusted.overlay.opaque", v, sizeof v - 1);
  if (n < 0)
    printf("%s opaque: %s\n", path, strerrorname_np(errno));
  else
    printf("%s opaque: \"%s\"\n", path, v);
}

int main(void) {
  /* Natively: a private mount namespace (the sandbox is one already). */
  if (unshare(CLONE_NEWNS) == 0) mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
  CHECK(mkdir(D, 0755));
  CHECK(mount("none", D, "tmpfs", 0, "mode=0755"));
  const char *dirs[] = {"/l", "/l2", "/u", "/w", "/m", "/l/dir", "/l/dir/sub", "/l/empty",
                        "/l/full", "/l/mv", "/l2/dir", "/l2/only2dir", "/l/tomk"};
  for (unsigned i = 0; i < sizeof dirs / sizeof *dirs; i++) {
    char p[256];
    snprintf(p, sizeof p, D "%s", dirs[i]);
    mkdir(p, 0755);
  }
  put(D "/l/a", "lower a\n");
  put(D "/l/b", "lower b\n");
  put(D "/l/meta", "meta data\n");
  put(D "/l/del", "to delete\n");
  put(D "/l/ren", "to rename\n");
  put(D "/l/hard", "hard\n");
  put(D "/l/trunc", "truncate me\n");
  put(D "/l/dir/x", "x\n");
  put(D "/l/dir/sub/z", "z\n");
  put(D "/l/full/f", "f\n");
  put(D "/l/mv/inner", "inner\n");
  put(D "/l/tomk/old", "old\n");
  put(D "/l2/a", "hidden a\n");
  put(D "/l2/only2", "only in l2\n");
  put(D "/l2/dir/w2", "w2\n");
  CHECK(symlink("a", D "/l/link"));
  CHECK(chmod(D "/l/meta", 0640));
  CHECK(chown(D "/l/meta", 12, 34));
  struct utimbuf ut = {1000000, 1000000};
  CHECK(utime(D "/l/meta", &ut));
  char big[20000];
  for (unsigned i = 0; i < sizeof big; i++) big[i] = 'A' + i % 26;
  big[sizeof big - 1] = 0;
  put(D "/l/big", big);

  /* Mount errors. */
  CHECK(mount("none", D "/m", "overlay", 0, "upperdir=" D "/u,workdir=" D "/w"));
  CHECK(mount("none", D "/m", "overlay", 0, "lowerdir=" D "/l,upperdir=" D "/u"));
  CHECK(mount("none", D "/m", "overlay", 0, "lowerdir=" D "/nope,upperdir=" D "/u,workdir=" D "/w"));
  CHECK(mount("none", D "/m", "overlay", 0, "lowerdir=" D "/l/a,upperdir=" D "/u,workdir=" D "/w"));
  CHECK(mount("none", D "/m", "overlay", 0, OPTS ",bogus"));
  CHECK(mount("none", D "/m", "overlay", 0, "lowerdir=" D "/l"));
  CHECK(mount("none", D "/m", "overlay", 0, NULL));
  int r = mount("none", D "/m", "overlay", 0, OPTS);
  if (r != 0) {
    /* This kernel has no overlay: nothing to compare. */
    printf("overlay unavailable\n");
    return 0;
  }
  printf("mount overlay = 0\n");

  /* Reads and merged listings. */
  cat(D "/m/a");
  cat(D "/m/only2");
  cat(D "/m/dir/x");
  cat(D "/m/dir/w2");
  cat(D "/m/dir/sub/z");
  ls(D "/m");
  ls(D "/m/dir");
  ls(D "/u");
  show(D "/m/meta");
  char lt[64] = {0};
  CHECK(readlink(D "/m/link", lt, sizeof lt - 1));
  printf("link -> %s\n", lt);
  cat(D "/m/link");
  EXPECT(dev(D "/m/dir") == dev(D "/m"));
  EXPECT(dev(D "/m") != dev(D));
  EXPECT(ino(D "/m/a") == ino(D "/m/a"));
  EXPECT(ino(D "/m/dir") == ino(D "/m/dir"));
  EXPECT(ino(D "/m/a") != ino(D "/m/b"));
  struct statfs sfs;
  CHECK(statfs(D "/m", &sfs));
  printf("f_type=%#lx\n", (long)sfs.f_type);

  /* A file opened before its copy-up, then written: copy-up. */
  int before = open(D "/m/b", O_RDONLY);
  ino_t ino_a = ino(D "/m/a");
  int fd = open(D "/m/a", O_WRONLY | O_APPEND);
  CHECK(fd >= 0);
  CHECK(write(fd, "more\n", 5));
  CHECK(close(fd));
  EXPECT(ino(D "/m/a") == ino_a);
  cat(D "/m/a");
  cat(D "/l/a");
  cat(D "/u/a");
  fd = open(D "/m/b", O_RDWR);
  CHECK(pwrite(fd, "UPPER", 5, 0));
  close(fd);
  char buf[64] = {0};
  CHECK(pread(before, buf, sizeof buf - 1, 0));
  printf("opened before copy-up reads \"%s\"\n", buf);
  close(before);
  cat(D "/l/b");

  /* Metadata changes copy up and keep data, mode, owner and times. */
  CHECK(chmod(D "/m/meta", 0600));
  show(D "/m/meta");
  show(D "/u/meta");
  show(D "/l/meta");
  cat(D "/u/meta");
  CHECK(chown(D "/m/big", 7, 8));
  show(D "/m/big");
  show(D "/u/big");
  fd = open(D "/u/big", O_RDONLY);
  char bigback[sizeof big];
  CHECK(read(fd, bigback, sizeof bigback));
  EXPECT(memcmp(big, bigback, sizeof big - 1) == 0);
  close(fd);
  put(D "/l/utim", "u\n");
  CHECK(utime(D "/m/utim", &ut));
  show(D "/u/utim");
  CHECK(setxattr(D "/m/dir/x", "user.k", "v", 1, 0));
  show(D "/u/dir");
  char xv[8] = {0};
  CHECK(getxattr(D "/u/dir/x", "user.k", xv, sizeof xv));
  CHECK(getxattr(D "/l/dir/x", "user.k", xv, sizeof xv));

  /* O_TRUNC. */
  fd = open(D "/m/trunc", O_WRONLY | O_TRUNC);
  CHECK(fd >= 0);
  close(fd);
  show(D "/m/trunc");
  cat(D "/l/trunc");
  CHECK(truncate(D "/m/hard", 2));
  cat(D "/m/hard");

  /* unlink leaves a whiteout; the name stays gone. */
  CHECK(unlink(D "/m/del"));
  cat(D "/m/del");
  show(D "/m/del");
  cat(D "/l/del");
  CHECK(unlink(D "/m/a"));
  cat(D "/m/a");
  CHECK(unlink(D "/m/a"));
  put(D "/m/a", "new a\n");
  cat(D "/m/a");
  CHECK(unlink(D "/m/a"));
  ls(D "/u");
  ls(D "/m");

  /* rmdir: ENOTEMPTY with lower entries; whited-out entries are empty. */
  CHECK(rmdir(D "/m/full"));
  CHECK(unlink(D "/m/full/f"));
  ls(D "/m/full");
  CHECK(rmdir(D "/m/full"));
  CHECK(rmdir(D "/m/empty"));
  CHECK(access(D "/m/full", F_OK));
  CHECK(access(D "/l/full/f", F_OK));

  /* mkdir over a whiteout makes an opaque directory. */
  CHECK(mkdir(D "/m/full", 0700));
  ls(D "/m/full");
  opaque(D "/u/full");
  opaque(D "/u/dir");
  CHECK(rename(D "/m/tomk/old", D "/m/tomk/new"));
  ls(D "/m/tomk");
  ls(D "/u/tomk");

  /* rename: files move (copy-up + whiteout), merged directories EXDEV. */
  CHECK(rename(D "/m/ren", D "/m/dir/renamed"));
  cat(D "/m/dir/renamed");
  cat(D "/m/ren");
  CHECK(rename(D "/m/mv", D "/m/mv2"));
  CHECK(rename(D "/m/dir", D "/m/full/dir"));
  CHECK(mkdir(D "/m/newdir", 0755));
  put(D "/m/newdir/f", "f\n");
  CHECK(rename(D "/m/newdir", D "/m/newdir2"));
  cat(D "/m/newdir2/f");
  CHECK(rename(D "/m/only2", D "/m/b"));
  cat(D "/m/b");
  CHECK(rename(D "/m/empty", D "/m/x"));

  /* Symlinks and hard links. */
  CHECK(symlink("dir/x", D "/m/sl"));
  cat(D "/m/sl");
  CHECK(lchown(D "/m/link", 3, 3));
  show(D "/u/link");
  CHECK(readlink(D "/u/link", lt, sizeof lt - 1));
  CHECK(link(D "/m/hard", D "/m/hard2"));
  show(D "/m/hard");
  show(D "/m/hard2");
  EXPECT(ino(D "/m/hard") == ino(D "/m/hard2"));
  show(D "/u/hard2");
  show(D "/l/hard");
  CHECK(unlink(D "/m/hard"));
  show(D "/m/hard2");

  /* mmap of an overlay file, lower and upper, private and shared. */
  fd = open(D "/m/dir/sub/z", O_RDONLY);
  char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
  EXPECT(p != MAP_FAILED && p[0] == 'z');
  char *q = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
  EXPECT(q != MAP_FAILED && q[0] == 'z');
  close(fd);
  fd = open(D "/m/big", O_RDWR);
  char *s = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  EXPECT(s != MAP_FAILED && s[0] == 'A' && s[4096] == big[4096]);
  if (s != MAP_FAILED) {
    s[1] = '#';
  }
  char two[3] = {0};
  CHECK(pread(fd, two, 2, 0));
  printf("after shared write: %s\n", two);
  close(fd);

  if (p != MAP_FAILED) munmap(p, 4096);
  if (q != MAP_FAILED) munmap(q, 4096);
  if (s != MAP_FAILED) munmap(s, 8192);

  /* The end state, as the upper directory shows it. */
  ls(D "/u");
  ls(D "/m");
  CHECK(umount(D "/m"));
  ls(D "/l");
  CHECK(umount(D));
  return 0;
}
