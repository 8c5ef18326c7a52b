/* A grows-down mapping does not grow to within the stack guard gap (256
 * pages) of an accessible mapping below it: touching there kills the
 * process with SIGSEGV. */
#include <sys/mman.h>
#include <unistd.h>
#include "check.h"

#define PG 4096L

int main(void) {
  char *r = mmap(NULL, 1024 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(munmap(r, 1024 * PG));
  /* A readable page, then 300 free pages, then the grows-down mapping. */
  char *low = mmap(r, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  EXPECT(low == r);
  char *g = mmap(r + 301 * PG, 4 * PG, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED, -1, 0);
  EXPECT(g == r + 301 * PG);
  /* 300 - 44 = 256 pages from the readable page: still allowed. */
  g[-44 * PG] = 1;
  EXPECT(madvise(g - 44 * PG, PG, MADV_NORMAL) == 0);
  /* One page further is inside the gap. */
  fflush(stdout);
  g[-45 * PG] = 1;
  printf("not reached\n");
  return 0;
}
