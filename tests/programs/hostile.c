/* Hostile inputs that once hurt the sentry: each subcommand makes the
 * calls and prints what they returned, so that a run in the sandbox can be
 * compared with a native one. */
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <termios.h>
#include <unistd.h>
#include "check.h"

static void show(int fd) {
  struct stat st;
  fstat(fd, &st);
  printf("size=%ld blocks=%ld\n", (long)st.st_size, (long)st.st_blocks);
}

/* TCGETS and TCSETS* pass the kernel's 36-byte struct termios: nothing
 * past it may be written. */
static int termios_case(void) {
  struct {
    unsigned char tio[36];
    unsigned char canary[64];
  } buf;
  memset(buf.tio, 0, sizeof buf.tio);
  memset(buf.canary, 0xa5, sizeof buf.canary);
  CHECK(syscall(SYS_ioctl, 0, TCGETS, &buf));
  int intact = 1;
  for (size_t i = 0; i < sizeof buf.canary; i++)
    intact &= buf.canary[i] == 0xa5;
  EXPECT(intact);
  /* What glibc's tcgetattr makes of it matches the raw struct. */
  struct termios t;
  CHECK(tcgetattr(0, &t));
  uint32_t lflag;
  memcpy(&lflag, buf.tio + 12, 4);
  EXPECT(lflag == t.c_lflag);
  EXPECT(buf.tio[17 + VINTR] == t.c_cc[VINTR]);
  /* A change made with TCSETS is seen by TCGETS. */
  unsigned char changed[36];
  memcpy(changed, buf.tio, 36);
  changed[17 + VINTR] = 7;
  CHECK(syscall(SYS_ioctl, 0, TCSETS, changed));
  CHECK(tcgetattr(0, &t));
  printf("VINTR=%d\n", t.c_cc[VINTR]);
  CHECK(syscall(SYS_ioctl, 0, TCSETSW, buf.tio));
  CHECK(tcgetattr(0, &t));
  EXPECT(t.c_cc[VINTR] == buf.tio[17 + VINTR]);
  CHECK(syscall(SYS_ioctl, 0, TCSETSF, (void *)8));
  return 0;
}

/* A huge fallocate on a memfd fails at once with ENOSPC and uses
 * nothing. */
static int memfd_case(void) {
  int fd = memfd_create("big", 0);
  EXPECT(fd >= 0);
  CHECK(fallocate(fd, 0, 1L << 40, 1L << 40));
  show(fd);
  CHECK(fallocate(fd, 0, 0, 1L << 30));
  show(fd);
  CHECK(ftruncate(fd, 0));
  show(fd);
  return 0;
}

/* Calls over the whole range of file offsets, on a file of the largest
 * size: each must answer at once. */
static int huge_case(const char *path) {
  int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
  EXPECT(fd >= 0);
  char c = 0;
  CHECK(ftruncate(fd, 0x7fffffffffffffffL));
  CHECK(lseek(fd, 0, SEEK_DATA));
  CHECK(lseek(fd, 0, SEEK_HOLE));
  CHECK(lseek(fd, 0x7ffffffffffffff0L, SEEK_HOLE));
  CHECK(pwrite(fd, "x", 1, 1L << 62));
  CHECK(pwrite(fd, "y", 1, 1L << 43));
  CHECK(pwrite(fd, "z", 1, 0x7ffffffffffffffeL));
  CHECK(pwrite(fd, "z", 2, 0x7ffffffffffffffeL));
  CHECK(pread(fd, &c, 1, 0x7ffffffffffffffeL));
  printf("byte=%c\n", c);
  /* Linux's SEEK_DATA overflows on the page that ends at 2^63: that page
   * goes. */
  CHECK(ftruncate(fd, 0x7ffffffffffff000L));
  CHECK(lseek(fd, 0, SEEK_DATA));
  CHECK(lseek(fd, (1L << 43) + 1, SEEK_DATA));
  CHECK(lseek(fd, (1L << 43) + 1, SEEK_HOLE));
  CHECK(lseek(fd, (1L << 43) + 4096, SEEK_DATA));
  CHECK(lseek(fd, 0, SEEK_HOLE));
  CHECK(pread(fd, &c, 1, 1L << 62));
  printf("byte=%c\n", c);
  show(fd);
  CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (1L << 62) + 4096));
  show(fd);
  CHECK(pread(fd, &c, 1, 1L << 62));
  printf("byte=%d\n", c);
  CHECK(lseek(fd, 0, SEEK_DATA));
  /* Allocation past the file system's size fails and leaves nothing. */
  CHECK(fallocate(fd, 0, 1L << 40, 1L << 40));
  CHECK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 1L << 50, 1L << 20));
  show(fd);
  CHECK(lseek(fd, 1L << 50, SEEK_DATA));
  CHECK(ftruncate(fd, 4096));
  show(fd);
  CHECK(ftruncate(fd, 0x7fffffffffffffffL));
  CHECK(lseek(fd, 0, SEEK_DATA));
  CHECK(unlink(path));
  CHECK(close(fd));
  return 0;
}

/* A tmpfs mounted with size= refuses to grow past it, by fallocate,
 * write or a shared mapping, and gives the space back. */
static int size_case(void) {
  CHECK(mkdir("/tmp/small", 0755));
  CHECK(mount("none", "/tmp/small", "tmpfs", 0, "size=64k"));
  struct statfs sf;
  CHECK(statfs("/tmp/small", &sf));
  printf("blocks=%ld free=%ld\n", (long)sf.f_blocks, (long)sf.f_bfree);
  int fd = open("/tmp/small/f", O_CREAT | O_RDWR, 0644);
  CHECK(fallocate(fd, 0, 0, 65537));
  show(fd);
  CHECK(fallocate(fd, 0, 0, 16384));
  show(fd);
  CHECK(statfs("/tmp/small", &sf));
  printf("blocks=%ld free=%ld\n", (long)sf.f_blocks, (long)sf.f_bfree);
  char buf[65536];
  memset(buf, 'a', sizeof buf);
  CHECK(pwrite(fd, buf, sizeof buf, 4096));
  CHECK(pwrite(fd, buf, sizeof buf, 65536));
  show(fd);
  CHECK(statfs("/tmp/small", &sf));
  printf("free=%ld\n", (long)sf.f_bfree);
  int g = open("/tmp/small/g", O_CREAT | O_RDWR, 0644);
  CHECK(write(g, "x", 1));
  CHECK(mount("none", "/tmp/small", "tmpfs", MS_REMOUNT, "size=16k"));
  CHECK(ftruncate(fd, 8192));
  show(fd);
  CHECK(statfs("/tmp/small", &sf));
  printf("free=%ld\n", (long)sf.f_bfree);
  CHECK(write(g, buf, sizeof buf));
  CHECK(mount("none", "/tmp/small", "tmpfs", MS_REMOUNT, "size=16k"));
  CHECK(statfs("/tmp/small", &sf));
  printf("blocks=%ld free=%ld\n", (long)sf.f_blocks, (long)sf.f_bfree);
  CHECK(close(fd));
  CHECK(unlink("/tmp/small/f"));
  CHECK(close(g));
  CHECK(unlink("/tmp/small/g"));
  CHECK(statfs("/tmp/small", &sf));
  printf("blocks=%ld free=%ld\n", (long)sf.f_blocks, (long)sf.f_bfree);
  CHECK(mount("none", "/tmp/small", "tmpfs", MS_REMOUNT, "size=16k"));
  CHECK(statfs("/tmp/small", &sf));
  printf("blocks=%ld free=%ld\n", (long)sf.f_blocks, (long)sf.f_bfree);
  CHECK(umount("/tmp/small"));
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc < 2)
    return 2;
  if (!strcmp(argv[1], "termios"))
    return termios_case();
  if (!strcmp(argv[1], "memfd"))
    return memfd_case();
  if (!strcmp(argv[1], "huge"))
    return huge_case(argc > 2 ? argv[2] : "/tmp/huge");
  if (!strcmp(argv[1], "size"))
    return size_case();
  return 2;
}
