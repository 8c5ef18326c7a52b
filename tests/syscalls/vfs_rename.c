/* rename, renameat, renameat2: replacing, RENAME_NOREPLACE,
 * RENAME_EXCHANGE, and EXDEV, EBUSY, ENOTEMPTY, EISDIR, ENOTDIR, EINVAL. */
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE (1 << 1)
#define RENAME_WHITEOUT (1 << 2)
#endif

static long r2(const char *a, const char *b, unsigned flags) {
  return syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
}

static void put(const char *path, const char *text) {
  int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
  write(fd, text, strlen(text));
  close(fd);
}

static void show(const char *path) {
  char buf[32] = {0};
  struct stat st;
  if (lstat(path, &st) != 0) {
    printf("%s: %s\n", path, strerrorname_np(errno));
    return;
  }
  if (S_ISDIR(st.st_mode)) {
    printf("%s: dir nlink=%ld\n", path, (long)st.st_nlink);
    return;
  }
  int fd = open(path, O_RDONLY);
  read(fd, buf, sizeof buf - 1);
  close(fd);
  printf("%s: \"%s\" nlink=%ld\n", path, buf, (long)st.st_nlink);
}

int main(void) {
  CHECK(mkdir("/tmp/r", 0755));
  CHECK(chdir("/tmp/r"));
  put("a", "A");
  put("b", "B");
  CHECK(mkdir("d", 0755));
  CHECK(mkdir("e", 0755));
  put("e/inner", "I");
  CHECK(mkdir("empty", 0755));

  printf("plain:\n");
  CHECK(rename("a", "c"));
  show("a");
  show("c");
  CHECK(rename("c", "b"));
  show("b");
  CHECK(rename("b", "b"));
  CHECK(link("b", "hard"));
  CHECK(rename("b", "hard"));
  show("b");
  show("hard");
  CHECK(rename("missing", "x"));
  CHECK(rename("", "x"));
  CHECK(rename("b", ""));
  CHECK(rename("b", "nodir/x"));
  CHECK(rename("d", "empty"));
  show("d");
  show("empty");
  CHECK(mkdir("d", 0755));
  CHECK(rename("d", "e"));
  CHECK(rename("b", "e"));
  CHECK(rename("e", "b"));
  CHECK(rename("e", "e/sub"));
  CHECK(rename("e", "e/inner/x"));
  CHECK(rename(".", "x"));
  CHECK(rename("d/.", "x"));
  CHECK(rename("x", "."));
  CHECK(rename("d/..", "x"));
  CHECK(rename("/", "x"));
  CHECK(rename("b", "b/"));
  CHECK(rename("d/", "d2/"));
  show("d2");
  CHECK(rename("d2", "d"));
  CHECK(renameat(AT_FDCWD, "b", AT_FDCWD, "b2"));
  int dfd = open("d", O_RDONLY | O_DIRECTORY);
  CHECK(renameat(AT_FDCWD, "b2", dfd, "b3"));
  show("d/b3");
  CHECK(renameat(dfd, "b3", AT_FDCWD, "b"));
  CHECK(renameat(99, "b", AT_FDCWD, "c"));
  int ffd = open("b", O_RDONLY);
  CHECK(renameat(ffd, "x", AT_FDCWD, "c"));

  printf("RENAME_NOREPLACE:\n");
  put("n1", "N1");
  CHECK(r2("n1", "b", RENAME_NOREPLACE));
  CHECK(r2("n1", "n2", RENAME_NOREPLACE));
  show("n2");
  CHECK(r2("n2", "d", RENAME_NOREPLACE));
  CHECK(r2("missing", "n3", RENAME_NOREPLACE));

  printf("RENAME_EXCHANGE:\n");
  CHECK(r2("n2", "b", RENAME_EXCHANGE));
  show("n2");
  show("b");
  CHECK(r2("b", "e", RENAME_EXCHANGE));
  show("b/inner");
  show("e");
  CHECK(r2("b", "e", RENAME_EXCHANGE));
  CHECK(r2("b", "missing", RENAME_EXCHANGE));
  CHECK(r2("missing", "b", RENAME_EXCHANGE));
  CHECK(r2("e", "e/inner", RENAME_EXCHANGE));
  CHECK(r2("e/inner", "e", RENAME_EXCHANGE));
  CHECK(r2("b", "b", RENAME_EXCHANGE));
  show("e");
  show("d");
  CHECK(r2("d", "e", RENAME_EXCHANGE));
  show("d/inner");
  show("e");

  printf("flags:\n");
  CHECK(r2("b", "c", RENAME_NOREPLACE | RENAME_EXCHANGE));
  CHECK(r2("b", "c", 8));
  CHECK(r2("missing", "c", 8));

  printf("across mounts:\n");
  CHECK(mkdir("m", 0755));
  CHECK(mount("tmpfs", "m", "tmpfs", 0, NULL));
  CHECK(rename("b", "m/b"));
  CHECK(rename("m", "m2"));
  CHECK(rename("b", "m"));
  CHECK(rename("d", "m"));
  CHECK(r2("d", "m", RENAME_EXCHANGE));
  CHECK(rename("m/.", "x"));
  CHECK(rmdir("m"));
  put("m/in", "IN");
  CHECK(rename("m/in", "m/in2"));
  show("m/in2");
  CHECK(umount("m"));
  CHECK(rename("m", "m2"));
  show("m2");
  return 0;
}
