/* mount and umount2 of tmpfs inside /tmp: options, read-only mounts and
 * remounts, bind mounts, stacking, busy mounts, what crosses a mount
 * (EXDEV), and the errors. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "check.h"

static void show(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    printf("%s: %s\n", path, strerrorname_np(errno));
    return;
  }
  printf("%s: mode=%o uid=%d gid=%d\n", path, st.st_mode, (int)st.st_uid, (int)st.st_gid);
}

static dev_t dev_of(const char *path) {
  struct stat st;
  stat(path, &st);
  return st.st_dev;
}

int main(void) {
  CHECK(mkdir("/tmp/m", 0755));
  CHECK(mount("none", "/tmp/m", "tmpfs", 0, "size=1m,mode=0700,uid=5,gid=6"));
  show("/tmp/m");
  EXPECT(dev_of("/tmp/m") != dev_of("/tmp"));
  struct statfs sfs;
  CHECK(statfs("/tmp/m", &sfs));
  printf("type=%#lx bsize=%ld blocks=%ld namelen=%ld\n", (long)sfs.f_type, (long)sfs.f_bsize,
         (long)sfs.f_blocks, (long)sfs.f_namelen);
  CHECK(mount("none", "/tmp/m", "tmpfs", 0, "nr_inodes=100,size=2M"));
  CHECK(statfs("/tmp/m", &sfs));
  printf("blocks=%ld files=%ld\n", (long)sfs.f_blocks, (long)sfs.f_files);
  show("/tmp/m");
  CHECK(umount("/tmp/m"));
  show("/tmp/m");

  /* What a mount boundary stops. */
  int fd = open("/tmp/m/f", O_CREAT | O_RDWR, 0644);
  CHECK(write(fd, "data", 4));
  int out = open("/tmp/out", O_CREAT | O_RDWR, 0644);
  CHECK(copy_file_range(fd, NULL, out, NULL, 4, 0) >= 0);
  CHECK(lseek(fd, 0, SEEK_SET));
  CHECK(rename("/tmp/m/f", "/tmp/f"));
  CHECK(link("/tmp/m/f", "/tmp/f"));
  CHECK(close(fd));

  CHECK(mkdir("/tmp/n", 0755));
  CHECK(mount("tmpfs", "/tmp/n", "tmpfs", 0, NULL));
  show("/tmp/n");
  fd = open("/tmp/n/g", O_CREAT | O_RDWR, 0644);
  CHECK(write(fd, "moved", 5));
  int in = open("/tmp/m/f", O_CREAT | O_RDWR, 0644);
  CHECK(copy_file_range(fd, NULL, in, NULL, 4, 0));
  CHECK(rename("/tmp/n/g", "/tmp/m/g"));
  CHECK(link("/tmp/n/g", "/tmp/m/g"));
  CHECK(rename("/tmp/n", "/tmp/n2"));
  CHECK(rmdir("/tmp/n"));
  CHECK(close(in));

  /* Busy while a file or the working directory is in it. */
  CHECK(umount("/tmp/n"));
  CHECK(close(fd));
  CHECK(chdir("/tmp/n"));
  CHECK(umount("/tmp/n"));
  CHECK(chdir("/"));
  CHECK(umount("/tmp/n"));
  CHECK(stat("/tmp/n/g", &(struct stat){0}));
  CHECK(umount("/tmp/n"));

  /* A lazy unmount leaves open files working. */
  CHECK(mount("tmpfs", "/tmp/n", "tmpfs", 0, NULL));
  fd = open("/tmp/n/h", O_CREAT | O_RDWR, 0644);
  CHECK(umount2("/tmp/n", MNT_DETACH));
  CHECK(write(fd, "still", 5));
  CHECK(stat("/tmp/n/h", &(struct stat){0}));
  CHECK(close(fd));

  /* Read-only mounts and remounts. */
  CHECK(mount("tmpfs", "/tmp/n", "tmpfs", 0, NULL));
  CHECK(close(open("/tmp/n/file", O_CREAT | O_RDWR, 0644)));
  CHECK(mkdir("/tmp/n/dir", 0755));
  CHECK(mount(NULL, "/tmp/n", NULL, MS_REMOUNT | MS_RDONLY, NULL));
  CHECK(open("/tmp/n/new", O_CREAT | O_RDWR, 0644));
  CHECK(open("/tmp/n/file", O_RDWR));
  CHECK(open("/tmp/n/file", O_RDONLY) >= 0);
  CHECK(mkdir("/tmp/n/d2", 0755));
  CHECK(unlink("/tmp/n/file"));
  CHECK(chmod("/tmp/n/file", 0600));
  CHECK(chown("/tmp/n/file", 1, 1));
  CHECK(utimensat(AT_FDCWD, "/tmp/n/file", NULL, 0));
  CHECK(truncate("/tmp/n/file", 0));
  CHECK(setxattr("/tmp/n/file", "user.x", "v", 1, 0));
  CHECK(removexattr("/tmp/n/file", "user.x"));
  CHECK(access("/tmp/n/file", W_OK));
  CHECK(statfs("/tmp/n", &sfs));
  printf("flags ro=%ld\n", (long)(sfs.f_flags & ST_RDONLY));
  CHECK(mount(NULL, "/tmp/n", NULL, MS_REMOUNT, NULL));
  CHECK(chmod("/tmp/n/file", 0600));
  CHECK(mount(NULL, "/tmp/n", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL));
  CHECK(chmod("/tmp/n/file", 0600));
  CHECK(mount(NULL, "/tmp/n", NULL, MS_REMOUNT | MS_BIND, NULL));
  CHECK(chmod("/tmp/n/file", 0600));
  CHECK(mount(NULL, "/tmp/n/dir", NULL, MS_REMOUNT, NULL));
  CHECK(umount("/tmp/n"));
  CHECK(mount("tmpfs", "/tmp/n", "tmpfs", MS_RDONLY, NULL));
  CHECK(mkdir("/tmp/n/x", 0755));
  CHECK(umount("/tmp/n"));
  CHECK(mount("tmpfs", "/tmp/n", "tmpfs", 0, "ro"));
  CHECK(mkdir("/tmp/n/x", 0755));
  CHECK(umount("/tmp/n"));

  /* Bind mounts and stacking. */
  CHECK(mkdir("/tmp/b", 0755));
  CHECK(mount("/tmp/m", "/tmp/b", NULL, MS_BIND, NULL));
  show("/tmp/b/f");
  EXPECT(dev_of("/tmp/b") == dev_of("/tmp/m"));
  CHECK(mkdir("/tmp/b/sub", 0700));
  show("/tmp/m/sub");
  CHECK(umount("/tmp/b"));
  show("/tmp/b/f");
  CHECK(close(open("/tmp/bindfile", O_CREAT | O_WRONLY, 0600)));
  CHECK(mount("/tmp/m/f", "/tmp/bindfile", NULL, MS_BIND, NULL));
  show("/tmp/bindfile");
  CHECK(umount("/tmp/bindfile"));
  CHECK(mount("/tmp/m/f", "/tmp/b", NULL, MS_BIND, NULL));
  CHECK(mount("/tmp/m", "/tmp/bindfile", NULL, MS_BIND, NULL));
  CHECK(mount("/tmp/missing", "/tmp/b", NULL, MS_BIND, NULL));
  CHECK(mount(NULL, "/tmp/b", NULL, MS_BIND, NULL));
  CHECK(mount("tmpfs", "/tmp/b", "tmpfs", 0, "mode=0711"));
  CHECK(mount("tmpfs", "/tmp/b", "tmpfs", 0, "mode=0722"));
  show("/tmp/b");
  CHECK(umount("/tmp/b"));
  show("/tmp/b");
  CHECK(umount("/tmp/b"));
  show("/tmp/b");
  CHECK(umount("/tmp/b"));

  /* Propagation types change nothing visible. */
  CHECK(mount(NULL, "/tmp/m", NULL, MS_PRIVATE, NULL));
  CHECK(mount(NULL, "/tmp/m", NULL, MS_PRIVATE | MS_REC, NULL));
  CHECK(mount(NULL, "/tmp/m", NULL, MS_SHARED, NULL));
  CHECK(mount(NULL, "/tmp/m", NULL, MS_SLAVE, NULL));
  CHECK(mount(NULL, "/tmp/m", NULL, MS_PRIVATE | MS_SHARED, NULL));
  CHECK(mount(NULL, "/tmp/m", NULL, MS_PRIVATE | MS_NOSUID, NULL));
  CHECK(mount(NULL, "/tmp/m/sub", NULL, MS_PRIVATE, NULL));

  /* Errors. */
  CHECK(mount("none", "/tmp/missing", "tmpfs", 0, NULL));
  CHECK(mount("none", "/tmp/out", "tmpfs", 0, NULL));
  CHECK(mount("none", "/tmp/b", "nosuchfs", 0, NULL));
  CHECK(mount("none", "/tmp/b", NULL, 0, NULL));
  CHECK(mount("none", "/tmp/b", "tmpfs", 0, "bogus"));
  CHECK(mount("none", "/tmp/b", "tmpfs", 0, "size=lots"));
  CHECK(mount("none", "/tmp/b", "tmpfs", 0, "mode=9"));
  CHECK(mount("none", "/tmp/b", "tmpfs", 0, "uid=x"));
  CHECK(mount("none", "/tmp/b", "tmpfs", MS_NOUSER, NULL));
  CHECK(mount("none", (char *)8, "tmpfs", 0, NULL));
  CHECK(mount("none", "/tmp/b", (char *)8, 0, NULL));
  CHECK(mount((char *)8, "/tmp/b", "tmpfs", 0, NULL));
  CHECK(umount("/tmp/b"));
  CHECK(umount("/tmp/missing"));
  CHECK(umount2("/tmp/m", 0x100));
  CHECK(umount2("/tmp/m", MNT_EXPIRE | MNT_DETACH));
  CHECK(umount2("/tmp/m", MNT_EXPIRE | MNT_FORCE));
  CHECK(symlink("/tmp/m", "/tmp/link"));
  CHECK(umount2("/tmp/link", UMOUNT_NOFOLLOW));

  /* Without CAP_SYS_ADMIN. */
  CHECK(syscall(SYS_setresuid, -1, 1000, -1));
  CHECK(mount("none", "/tmp/b", "tmpfs", 0, NULL));
  CHECK(mount("none", "/tmp/missing", "tmpfs", 0, NULL));
  CHECK(mount("none", "/tmp/b", "nosuchfs", 0, NULL));
  CHECK(umount("/tmp/m"));
  CHECK(umount("/tmp/b"));
  CHECK(syscall(SYS_setresuid, -1, 0, -1));
  CHECK(umount2("/tmp/link", 0));
  show("/tmp/m/f");

  /* A proc instance. */
  CHECK(mkdir("/tmp/p", 0755));
  CHECK(mount("proc", "/tmp/p", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
  CHECK(statfs("/tmp/p", &sfs));
  printf("type=%#lx\n", (long)sfs.f_type);
  show("/tmp/p");
  char self[64] = {0};
  CHECK(readlink("/tmp/p/self", self, sizeof self - 1) > 0);
  EXPECT(atoi(self) == getpid());
  CHECK(umount("/tmp/p"));
  show("/tmp/p");
  return 0;
}
