/* Shared anonymous memory has a fixed size: growing its mapping with mremap
 * adds pages past the end of the memory. The kernel's accesses to them fail
 * with EFAULT, and the program's own kill it with SIGBUS. */
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#define PG 4096L

int main(void) {
  char *s = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  strcpy(s, "shared");
  strcpy(s + PG, "second page");
  char *t = mremap(s, 2 * PG, 4 * PG, MREMAP_MAYMOVE);
  EXPECT(t != MAP_FAILED);
  printf("%s %s\n", t, t + PG);
  /* The pages are there for mprotect and madvise. */
  CHECK(madvise(t + 2 * PG, 2 * PG, MADV_NORMAL));
  CHECK(mprotect(t + 2 * PG, 2 * PG, PROT_READ));
  CHECK(mprotect(t + 2 * PG, 2 * PG, PROT_READ | PROT_WRITE));
  CHECK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, t + 2 * PG));
  CHECK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, t + 2 * PG - 8));
  CHECK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, t + 2 * PG - 16));
  CHECK(write(1, t + 2 * PG, 1));
  /* Populating them fails; dropping or removing them is fine. */
  CHECK(madvise(t, 4 * PG, MADV_POPULATE_WRITE));
  CHECK(madvise(t + 2 * PG, 2 * PG, MADV_POPULATE_READ));
  CHECK(madvise(t, 2 * PG, MADV_POPULATE_WRITE));
  CHECK(madvise(t, 4 * PG, MADV_DONTNEED));
  CHECK(madvise(t + PG, 3 * PG, MADV_REMOVE));
  printf("%s [%s]\n", t, t + PG);
  strcpy(t + PG, "second page");
  /* Moving and shrinking keep the memory where it was. */
  char *r = mmap(NULL, 16 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(munmap(r, 16 * PG));
  char *u = mremap(t, 4 * PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, r + 4 * PG);
  EXPECT(u == r + 4 * PG);
  printf("%s %s\n", u, u + PG);
  CHECK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, u + 2 * PG));
  /* Shrinking the mapping to one page and growing it again brings back the
   * second page's data: the memory itself is still two pages. */
  EXPECT(mremap(u, 3 * PG, PG, 0) == u);
  EXPECT(mremap(u, PG, 2 * PG, 0) == u);
  printf("%s\n", u + PG);
  /* A new mapping of the same size has the full size. */
  char *v = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, v + 3 * PG));
  fflush(stdout);
  volatile char *p = u + 2 * PG;
  EXPECT(mremap(u, 2 * PG, 3 * PG, 0) == u);
  fflush(stdout);
  printf("%d\n", p[0]);
  printf("not reached\n");
  return 0;
}
