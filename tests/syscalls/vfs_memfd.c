/* memfd_create: an unnamed tmpfs file, its flags and name, and sealing
 * with F_ADD_SEALS / F_GET_SEALS. */
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

static void show(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    printf("fstat: %s\n", strerrorname_np(errno));
    return;
  }
  printf("mode=%o nlink=%ld size=%ld uid=%d\n", st.st_mode, (long)st.st_nlink,
         (long)st.st_size, (int)st.st_uid);
}

static void link_of(int fd) {
  char path[64], buf[300];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  long n = readlink(path, buf, sizeof buf - 1);
  if (n < 0) {
    printf("readlink: %s\n", strerrorname_np(errno));
    return;
  }
  buf[n] = 0;
  printf("link: %s\n", buf);
}

int main(void) {
  int fd = memfd_create("test", 0);
  EXPECT(fd >= 0);
  show(fd);
  link_of(fd);
  CHECK(fcntl(fd, F_GETFL));
  CHECK(fcntl(fd, F_GETFD));
  CHECK(fcntl(fd, F_GET_SEALS));
  CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));
  CHECK(write(fd, "hello", 5));
  CHECK(lseek(fd, 0, SEEK_SET));
  char buf[16] = {0};
  CHECK(read(fd, buf, sizeof buf));
  printf("read: %s\n", buf);
  CHECK(ftruncate(fd, 4096));
  show(fd);

  int same = memfd_create("test", MFD_CLOEXEC);
  CHECK(fcntl(same, F_GETFD));
  show(same);
  CHECK(close(same));

  /* Sealing. */
  int s = memfd_create("sealed", MFD_ALLOW_SEALING);
  CHECK(fcntl(s, F_GET_SEALS));
  CHECK(write(s, "0123456789", 10));
  CHECK(fcntl(s, F_ADD_SEALS, F_SEAL_SHRINK));
  CHECK(ftruncate(s, 5));
  CHECK(ftruncate(s, 20));
  CHECK(ftruncate(s, 20));
  CHECK(fcntl(s, F_ADD_SEALS, F_SEAL_GROW));
  CHECK(ftruncate(s, 21));
  CHECK(pwrite(s, "ab", 2, 18));
  CHECK(pwrite(s, "ab", 2, 19));
  CHECK(pwrite(s, "ab", 2, 20));
  CHECK(fallocate(s, 0, 0, 20));
  CHECK(fallocate(s, 0, 0, 21));
  CHECK(fallocate(s, FALLOC_FL_KEEP_SIZE, 0, 4096));
  CHECK(fcntl(s, F_GET_SEALS));
  CHECK(fcntl(s, F_ADD_SEALS, F_SEAL_WRITE));
  CHECK(write(s, "x", 1));
  CHECK(pwrite(s, "x", 1, 0));
  CHECK(fallocate(s, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4));
  CHECK(pread(s, buf, 4, 0));
  printf("data: %.4s\n", buf);
  CHECK(fcntl(s, F_ADD_SEALS, F_SEAL_SEAL));
  CHECK(fcntl(s, F_GET_SEALS));
  CHECK(fcntl(s, F_ADD_SEALS, F_SEAL_SHRINK));
  CHECK(fcntl(s, F_ADD_SEALS, 0));

  /* Shared mappings stand in the way of F_SEAL_WRITE. */
  int sm = memfd_create("mapped", MFD_ALLOW_SEALING);
  CHECK(ftruncate(sm, 4096));
  char *map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, sm, 0);
  EXPECT(map != MAP_FAILED);
  CHECK(fcntl(sm, F_ADD_SEALS, F_SEAL_WRITE));
  CHECK(munmap(map, 4096));
  map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, sm, 0);
  CHECK(fcntl(sm, F_ADD_SEALS, F_SEAL_WRITE));
  CHECK(fcntl(sm, F_GET_SEALS));

  int fw = memfd_create("future", MFD_ALLOW_SEALING);
  CHECK(fcntl(fw, F_ADD_SEALS, F_SEAL_FUTURE_WRITE));
  CHECK(write(fw, "x", 1));
  CHECK(ftruncate(fw, 100));
  CHECK(fcntl(fw, F_GET_SEALS));
  CHECK(fcntl(fw, F_ADD_SEALS, 0x40));
  CHECK(fcntl(fw, F_ADD_SEALS, 0));

  /* F_SEAL_EXEC: on an executable memfd it implies the write seals. */
  int x = memfd_create("exec", MFD_ALLOW_SEALING);
  CHECK(fcntl(x, F_ADD_SEALS, F_SEAL_EXEC));
  CHECK(fcntl(x, F_GET_SEALS));
  CHECK(fchmod(x, 0644));
  CHECK(fchmod(x, 0755));
  int ne = memfd_create("noexec", MFD_NOEXEC_SEAL);
  show(ne);
  CHECK(fcntl(ne, F_GET_SEALS));
  CHECK(fchmod(ne, 0755));
  CHECK(fchmod(ne, 0600));
  show(ne);
  CHECK(write(ne, "ok", 2));
  CHECK(fcntl(ne, F_ADD_SEALS, F_SEAL_WRITE));
  CHECK(fcntl(ne, F_GET_SEALS));
  int ex = memfd_create("exec", MFD_EXEC);
  show(ex);
  CHECK(fcntl(ex, F_GET_SEALS));

  /* Seals elsewhere: tmpfs files are sealed; pipes have none. */
  int t = open("/tmp/f", O_CREAT | O_RDWR, 0644);
  CHECK(fcntl(t, F_GET_SEALS));
  CHECK(fcntl(t, F_ADD_SEALS, F_SEAL_WRITE));
  int pp[2];
  CHECK(pipe(pp));
  CHECK(fcntl(pp[0], F_GET_SEALS));
  CHECK(fcntl(pp[0], F_ADD_SEALS, F_SEAL_WRITE));
  CHECK(fcntl(pp[1], F_ADD_SEALS, F_SEAL_WRITE));
  CHECK(fcntl(pp[1], F_ADD_SEALS, 0x1000));
  int ro = open("/tmp/f", O_RDONLY);
  CHECK(fcntl(ro, F_ADD_SEALS, F_SEAL_WRITE));
  int p = open("/tmp/f", O_PATH);
  CHECK(fcntl(p, F_GET_SEALS));

  /* Arguments. */
  CHECK(memfd_create("x", 0x100));
  CHECK(memfd_create("x", MFD_EXEC | MFD_NOEXEC_SEAL));
  CHECK(syscall(SYS_memfd_create, NULL, 0));
  char name[300];
  memset(name, 'n', sizeof name);
  name[250] = 0;
  CHECK(memfd_create(name, 0));
  name[249] = 0;
  int longest = memfd_create(name, 0);
  EXPECT(longest >= 0);
  link_of(longest);
  CHECK(memfd_create("", 0) >= 0);
  CHECK(memfd_create("a/b", 0) >= 0);
  CHECK(linkat(fd, "", AT_FDCWD, "/tmp/named", AT_EMPTY_PATH));
  return 0;
}
