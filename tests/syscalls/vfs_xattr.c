/* Extended attributes on tmpfs: user.*, trusted.* and security.*, the
 * create/replace flags, sizes, listing, the path/link/fd forms, names
 * tmpfs does not know, files that cannot have them, and who may use
 * which namespace. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static void list(const char *path) {
  char buf[1024];
  long n = llistxattr(path, buf, sizeof buf);
  if (n < 0) {
    printf("list %s: %s\n", path, strerrorname_np(errno));
    return;
  }
  printf("list %s:", path);
  for (long i = 0; i < n; i += strlen(buf + i) + 1) printf(" %s", buf + i);
  printf("\n");
}

static void get(const char *path, const char *name) {
  char buf[64];
  long n = getxattr(path, name, buf, sizeof buf - 1);
  if (n < 0) {
    printf("get %s %s: %s\n", path, name, strerrorname_np(errno));
    return;
  }
  buf[n] = 0;
  printf("get %s %s: %ld \"%s\"\n", path, name, n, buf);
}

int main(void) {
  umask(0);
  int fd = open("/tmp/f", O_CREAT | O_RDWR, 0644);
  EXPECT(fd >= 0);
  list("/tmp/f");
  CHECK(setxattr("/tmp/f", "user.b", "two", 3, 0));
  CHECK(setxattr("/tmp/f", "user.a", "one", 3, 0));
  CHECK(setxattr("/tmp/f", "trusted.t", "tt", 2, 0));
  CHECK(setxattr("/tmp/f", "security.s", "ss", 2, 0));
  CHECK(setxattr("/tmp/f", "user.empty", "", 0, 0));
  CHECK(setxattr("/tmp/f", "user.null", NULL, 0, 0));
  list("/tmp/f");
  get("/tmp/f", "user.a");
  get("/tmp/f", "user.empty");
  get("/tmp/f", "trusted.t");
  get("/tmp/f", "security.s");
  get("/tmp/f", "user.missing");
  get("/tmp/f", "security.missing");

  /* Create and replace. */
  CHECK(setxattr("/tmp/f", "user.a", "uno", 3, XATTR_CREATE));
  CHECK(setxattr("/tmp/f", "user.a", "uno", 3, XATTR_REPLACE));
  get("/tmp/f", "user.a");
  CHECK(setxattr("/tmp/f", "user.c", "x", 1, XATTR_REPLACE));
  CHECK(setxattr("/tmp/f", "user.c", "x", 1, XATTR_CREATE | XATTR_REPLACE));
  CHECK(setxattr("/tmp/f", "user.a", "x", 1, XATTR_CREATE | XATTR_REPLACE));
  CHECK(setxattr("/tmp/f", "user.c", "three", 5, XATTR_CREATE));
  CHECK(setxattr("/tmp/f", "user.c", "x", 1, 4));

  /* Sizes. */
  char small[2];
  CHECK(getxattr("/tmp/f", "user.c", small, sizeof small));
  CHECK(getxattr("/tmp/f", "user.c", NULL, 0));
  CHECK(getxattr("/tmp/f", "user.c", small, 0));
  char lbuf[8];
  CHECK(listxattr("/tmp/f", lbuf, sizeof lbuf));
  CHECK(listxattr("/tmp/f", NULL, 0));
  char *big = calloc(1, 70000);
  CHECK(setxattr("/tmp/f", "user.big", big, 65536, 0));
  CHECK(setxattr("/tmp/f", "user.big2", big, 65537, 0));
  CHECK(getxattr("/tmp/f", "user.big", big, 70000));
  CHECK(getxattr("/tmp/f", "user.big", big, 100));
  CHECK(removexattr("/tmp/f", "user.big"));
  char name[300];
  memset(name, 'n', sizeof name);
  memcpy(name, "user.", 5);
  name[255] = 0;
  CHECK(setxattr("/tmp/f", name, "v", 1, 0));
  CHECK(getxattr("/tmp/f", name, small, 1));
  CHECK(removexattr("/tmp/f", name));
  name[255] = 'n';
  name[256] = 0;
  CHECK(setxattr("/tmp/f", name, "v", 1, 0));
  CHECK(getxattr("/tmp/f", name, small, 1));
  CHECK(removexattr("/tmp/f", name));
  CHECK(setxattr("/tmp/f", "", "v", 1, 0));
  CHECK(getxattr("/tmp/f", "", small, 1));
  CHECK(setxattr("/tmp/f", (char *)8, "v", 1, 0));
  CHECK(syscall(SYS_setxattr, "/tmp/f", "user.x", 8, 1, 0));
  CHECK(syscall(SYS_getxattr, "/tmp/f", "user.a", 8, 10));
  CHECK(syscall(SYS_listxattr, "/tmp/f", 8, 100));

  /* Names tmpfs does not know. */
  CHECK(setxattr("/tmp/f", "user.", "v", 1, 0));
  CHECK(setxattr("/tmp/f", "user", "v", 1, 0));
  CHECK(setxattr("/tmp/f", "foo.bar", "v", 1, 0));
  CHECK(setxattr("/tmp/f", "system.foo", "v", 1, 0));
  CHECK(getxattr("/tmp/f", "foo.bar", small, 1));
  CHECK(getxattr("/tmp/f", "user.", small, 1));
  CHECK(getxattr("/tmp/f", "system.posix_acl_access", small, 1));
  CHECK(removexattr("/tmp/f", "foo.bar"));
  CHECK(removexattr("/tmp/f", "user."));

  /* Removing. */
  CHECK(removexattr("/tmp/f", "user.b"));
  CHECK(removexattr("/tmp/f", "user.b"));
  CHECK(removexattr("/tmp/f", "trusted.nope"));
  list("/tmp/f");

  /* ctime moves with every change. */
  struct stat st;
  CHECK(stat("/tmp/f", &st));
  struct timespec c0 = st.st_ctim;
  struct timespec nap = {0, 20 * 1000 * 1000};
  nanosleep(&nap, NULL);
  CHECK(setxattr("/tmp/f", "user.t", "x", 1, 0));
  CHECK(stat("/tmp/f", &st));
  EXPECT(st.st_ctim.tv_sec != c0.tv_sec || st.st_ctim.tv_nsec != c0.tv_nsec);

  /* Path, link and fd forms. */
  CHECK(symlink("f", "/tmp/s"));
  get("/tmp/s", "user.a");
  CHECK(lgetxattr("/tmp/s", "user.a", small, 1));
  CHECK(lsetxattr("/tmp/s", "user.x", "v", 1, 0));
  CHECK(lremovexattr("/tmp/s", "user.a"));
  CHECK(llistxattr("/tmp/s", lbuf, sizeof lbuf));
  CHECK(setxattr("/tmp/s", "user.via", "link", 4, 0));
  get("/tmp/f", "user.via");
  CHECK(fsetxattr(fd, "user.fd", "fd", 2, 0));
  char vbuf[16];
  CHECK(fgetxattr(fd, "user.fd", vbuf, sizeof vbuf));
  CHECK(fremovexattr(fd, "user.fd"));
  CHECK(fremovexattr(fd, "user.fd"));
  CHECK(flistxattr(fd, NULL, 0));
  CHECK(fsetxattr(-1, "user.fd", "fd", 2, 0));
  CHECK(fgetxattr(99, "user.fd", vbuf, sizeof vbuf));
  CHECK(flistxattr(99, NULL, 0));
  CHECK(fremovexattr(99, "user.fd"));
  CHECK(fsetxattr(99, "user.fd", "fd", 2, 8));
  CHECK(fgetxattr(99, "", vbuf, sizeof vbuf));
  int pfd = open("/tmp/f", O_PATH);
  CHECK(fgetxattr(pfd, "user.a", vbuf, sizeof vbuf));
  CHECK(flistxattr(pfd, NULL, 0));
  CHECK(setxattr("/tmp/missing", "user.x", "v", 1, 0));
  CHECK(setxattr("/tmp/missing", "user.x", "v", 1, 8));
  CHECK(getxattr("/tmp/missing", "user.x", vbuf, 1));
  CHECK(listxattr("/tmp/missing", NULL, 0));
  CHECK(removexattr("/tmp/missing", "user.x"));

  /* Directories have them; pipes and FIFOs take only what fails. */
  CHECK(mkdir("/tmp/d", 0755));
  CHECK(setxattr("/tmp/d", "user.dir", "yes", 3, 0));
  get("/tmp/d", "user.dir");
  list("/tmp/d");
  int pp[2];
  CHECK(pipe(pp));
  CHECK(fsetxattr(pp[0], "user.x", "v", 1, 0));
  CHECK(fgetxattr(pp[0], "user.x", vbuf, 1));
  CHECK(fsetxattr(pp[0], "trusted.x", "v", 1, 0));
  CHECK(fgetxattr(pp[0], "trusted.x", vbuf, 1));
  CHECK(fgetxattr(pp[0], "security.x", vbuf, 1));
  CHECK(fremovexattr(pp[0], "user.x"));
  CHECK(fremovexattr(pp[0], "trusted.x"));
  CHECK(flistxattr(pp[0], vbuf, sizeof vbuf));
  CHECK(mkfifo("/tmp/fifo", 0644));
  CHECK(setxattr("/tmp/fifo", "user.x", "v", 1, 0));
  CHECK(getxattr("/tmp/fifo", "user.x", vbuf, 1));

  /* Without capabilities: trusted.* is invisible, security.* read-only,
   * user.* follows the file's permissions and the sticky bit. */
  CHECK(chmod("/tmp/d", 01777));
  CHECK(close(open("/tmp/mine", O_CREAT | O_WRONLY, 0644)));
  CHECK(chown("/tmp/mine", 1000, 1000));
  CHECK(syscall(SYS_setresuid, -1, 1000, -1));
  list("/tmp/f");
  get("/tmp/f", "trusted.t");
  get("/tmp/f", "security.s");
  get("/tmp/f", "user.a");
  CHECK(setxattr("/tmp/f", "trusted.t", "x", 1, 0));
  CHECK(setxattr("/tmp/f", "security.s", "x", 1, 0));
  CHECK(removexattr("/tmp/f", "security.s"));
  CHECK(setxattr("/tmp/f", "user.a", "x", 1, 0));
  CHECK(removexattr("/tmp/f", "user.a"));
  CHECK(setxattr("/tmp/d", "user.a", "x", 1, 0));
  CHECK(setxattr("/tmp/mine", "user.a", "x", 1, 0));
  get("/tmp/mine", "user.a");
  CHECK(setxattr("/tmp/mine", "trusted.a", "x", 1, 0));
  CHECK(syscall(SYS_setresuid, -1, 0, -1));
  CHECK(chmod("/tmp/f", 0600));
  CHECK(syscall(SYS_setresuid, -1, 1000, -1));
  get("/tmp/f", "user.a");
  list("/tmp/f");
  CHECK(syscall(SYS_setresuid, -1, 0, -1));
  return 0;
}
