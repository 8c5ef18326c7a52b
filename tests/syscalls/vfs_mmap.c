/* mmap of tmpfs files: shared mappings see and make file changes, private
 * ones copy on write, pages past the end give SIGBUS; /dev/zero. */
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"

int main(void) {
  int fd = open("/tmp/m", O_CREAT | O_RDWR, 0644);
  CHECK(ftruncate(fd, 8192));
  char *sh = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  EXPECT(sh != MAP_FAILED);
  memcpy(sh, "shared write", 12);
  char buf[32] = {0};
  CHECK(pread(fd, buf, 12, 0));
  printf("file sees: %s\n", buf);
  CHECK(pwrite(fd, "FILE", 4, 4096));
  printf("mapping sees: %.4s\n", sh + 4096);

  char *pr = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  EXPECT(pr != MAP_FAILED);
  printf("private reads: %.12s\n", pr);
  CHECK(pwrite(fd, "again", 5, 0));
  printf("private sees file change before writing: %.5s\n", pr);
  pr[0] = 'P';
  CHECK(pwrite(fd, "later", 5, 0));
  printf("private after its write: %.5s\n", pr);
  CHECK(pread(fd, buf, 5, 0));
  printf("file unchanged by private write: %.5s\n", buf);
  printf("second private page still the file's: %.4s\n", pr + 4096);

  /* Offsets into the file. */
  char *off = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 4096);
  printf("offset mapping: %.4s\n", off);
  CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 100) == MAP_FAILED ? -1 : 0);

  /* Access mode rules. */
  int ro = open("/tmp/m", O_RDONLY);
  CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED ? -1 : 0);
  EXPECT(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro, 0) != MAP_FAILED);
  int wo = open("/tmp/m", O_WRONLY);
  CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, wo, 0) == MAP_FAILED ? -1 : 0);
  int dir = open("/tmp", O_RDONLY);
  CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, dir, 0) == MAP_FAILED ? -1 : 0);

  /* msync-free coherence after munmap: data stays in the file. */
  CHECK(munmap(sh, 8192));
  CHECK(pread(fd, buf, 4, 0));
  printf("after munmap: %.4s\n", buf);

  /* Growing the file makes pages reachable. */
  char *big = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(ftruncate(fd, 4 * 4096));
  big[3 * 4096] = 'Z';
  CHECK(pread(fd, buf, 1, 3 * 4096));
  printf("grown page: %c\n", buf[0]);

  /* /dev/zero */
  int z = open("/dev/zero", O_RDWR);
  char *zp = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, z, 0);
  EXPECT(zp != MAP_FAILED && zp[100] == 0);
  zp[0] = 1;

  /* Past the end of the file: SIGBUS. */
  CHECK(ftruncate(fd, 100));
  fflush(stdout);
  volatile char c = big[4096];
  (void)c;
  printf("not reached\n");
  return 0;
}
