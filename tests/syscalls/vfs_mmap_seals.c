/* mmap against memfd seals, truncation of private copies, fcntl on
 * O_PATH files. */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "check.h"

int main(void) {
  int fd = memfd_create("sealed", MFD_ALLOW_SEALING);
  CHECK(ftruncate(fd, 8192));
  CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));
  CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED ? -1 : 0);
  EXPECT(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) != MAP_FAILED);
  EXPECT(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0) != MAP_FAILED);

  /* A private copy past the new end of file goes with truncation. */
  int f = open("/tmp/cow", O_CREAT | O_RDWR, 0644);
  CHECK(ftruncate(f, 8192));
  char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, f, 0);
  p[4096] = 'c';
  printf("copy: %c\n", p[4096]);
  CHECK(ftruncate(f, 4096));
  fflush(stdout);

  int o = open("/tmp", O_PATH);
  CHECK(fcntl(o, F_GETFL) & O_PATH ? 1 : 0);
  CHECK(fcntl(o, F_GETFD));
  CHECK(fcntl(o, F_SETFL, O_NONBLOCK));
  CHECK(fcntl(o, F_GETLK, NULL));
  CHECK(fcntl(o, F_DUPFD, 10) >= 10);
  fflush(stdout);
  /* The copied page is gone with the file's end: SIGBUS. */
  volatile char c = p[4096];
  (void)c;
  printf("not reached\n");
  return 0;
}
