/* The VFS on /tmp: create, write, read back, stat, list, rename, link,
 * symlink, remove; the errors of each. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

static void list(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    printf("opendir %s: %s\n", dir, strerrorname_np(errno));
    return;
  }
  /* Order is the file system's; print sorted for a stable comparison. */
  char names[64][300];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 64) snprintf(names[n++], 300, "%s:%d", e->d_name, e->d_type);
  closedir(d);
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      if (strcmp(names[i], names[j]) > 0) {
        char tmp[300];
        strcpy(tmp, names[i]);
        strcpy(names[i], names[j]);
        strcpy(names[j], tmp);
      }
  printf("%s:", dir);
  for (int i = 0; i < n; i++) printf(" %s", names[i]);
  printf("\n");
}

int main(void) {
  struct stat st;
  char buf[64] = {0};
  CHECK(mkdir("/tmp/d", 0755));
  CHECK(mkdir("/tmp/d", 0755));
  CHECK(mkdir("/tmp/nope/x", 0755));
  int fd = open("/tmp/d/f", O_CREAT | O_RDWR | O_EXCL, 0640);
  EXPECT(fd >= 0);
  CHECK(open("/tmp/d/f", O_CREAT | O_RDWR | O_EXCL, 0640));
  CHECK(write(fd, "hello world", 11));
  CHECK(lseek(fd, 0, SEEK_SET));
  CHECK(read(fd, buf, sizeof buf));
  printf("read: %s\n", buf);
  CHECK(fstat(fd, &st));
  printf("size=%ld mode=%o nlink=%ld\n", (long)st.st_size, st.st_mode, (long)st.st_nlink);
  CHECK(fcntl(fd, F_GETFL));
  CHECK(close(fd));
  CHECK(stat("/tmp/d/f", &st));
  CHECK(stat("/tmp/d/f/", &st));
  CHECK(stat("/tmp/d/missing", &st));
  CHECK(link("/tmp/d/f", "/tmp/d/g"));
  CHECK(stat("/tmp/d/f", &st));
  printf("nlink=%ld\n", (long)st.st_nlink);
  CHECK(symlink("f", "/tmp/d/s"));
  CHECK(symlink("/tmp/d/loop", "/tmp/d/loop"));
  CHECK(open("/tmp/d/loop", O_RDONLY));
  CHECK(lstat("/tmp/d/s", &st));
  printf("lnk=%d size=%ld\n", S_ISLNK(st.st_mode), (long)st.st_size);
  CHECK(readlink("/tmp/d/s", buf, sizeof buf));
  CHECK(readlink("/tmp/d/f", buf, sizeof buf));
  CHECK(open("/tmp/d/s", O_RDONLY | O_NOFOLLOW));
  fd = open("/tmp/d/s", O_RDONLY);
  memset(buf, 0, sizeof buf);
  CHECK(read(fd, buf, 5));
  printf("via symlink: %s\n", buf);
  close(fd);
  list("/tmp/d");
  CHECK(rename("/tmp/d/g", "/tmp/d/h"));
  CHECK(rename("/tmp/d/missing", "/tmp/d/x"));
  CHECK(rename("/tmp/d", "/tmp/d/sub"));
  CHECK(mkdir("/tmp/e", 0700));
  CHECK(rename("/tmp/d/h", "/tmp/e"));
  CHECK(rename("/tmp/e", "/tmp/d/h"));
  list("/tmp/d");
  CHECK(rmdir("/tmp/d"));
  CHECK(unlink("/tmp/d"));
  CHECK(rmdir("/tmp/d/f"));
  CHECK(unlink("/tmp/d/f"));
  CHECK(unlink("/tmp/d/h"));
  CHECK(unlink("/tmp/d/s"));
  CHECK(unlink("/tmp/d/loop"));
  CHECK(rmdir("/tmp/d"));
  CHECK(rmdir("/tmp/e"));
  list("/tmp");
  CHECK(chdir("/tmp"));
  CHECK(mkdir("w", 0755));
  CHECK(chdir("w"));
  char cwd[256];
  printf("cwd=%s\n", getcwd(cwd, sizeof cwd));
  CHECK(chdir(".."));
  CHECK(chdir("/tmp/w/../../tmp/./w"));
  printf("cwd=%s\n", getcwd(cwd, sizeof cwd));
  CHECK(syscall(SYS_getcwd, cwd, 3));
  CHECK(chdir("/"));
  CHECK(chdir(".."));
  printf("cwd=%s\n", getcwd(cwd, sizeof cwd));
  return 0;
}
