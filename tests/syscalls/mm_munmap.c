/* munmap: argument checks, partial unmaps that split a mapping, unmapping
 * holes and several mappings at once. Ends by touching unmapped memory,
 * which kills the process with SIGSEGV. */
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

#define PG 4096L
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define RW (PROT_READ | PROT_WRITE)

/* Whether the page at p is mapped (madvise fails with ENOMEM if not). */
static int mapped(char *p) { return madvise(p, PG, MADV_NORMAL) == 0; }

static char *map_pattern(long pages) {
  char *p = mmap(NULL, pages * PG, RW, ANON, -1, 0);
  for (long i = 0; i < pages; i++) memset(p + i * PG, 'A' + i, PG);
  return p;
}

int main(void) {
  char *p = map_pattern(8);

  printf("-- argument checks\n");
  CHECK(munmap(p + 1, PG));
  CHECK(munmap(p + 2048, PG));
  CHECK(munmap(p, 0));
  CHECK(munmap(p + 1, 0));
  CHECK(syscall(SYS_munmap, p, -1L));
  CHECK(syscall(SYS_munmap, p, -PG));
  CHECK(syscall(SYS_munmap, p, 1UL << 62));
  CHECK(syscall(SYS_munmap, 1UL << 47, PG));
  CHECK(syscall(SYS_munmap, -PG, PG));
  CHECK(syscall(SYS_munmap, 0x7ffffffff000UL, PG));
  CHECK(syscall(SYS_munmap, 0x7fffffffe000UL, 2 * PG));
  CHECK(syscall(SYS_munmap, 0x7fffffffe000UL, 3 * PG));
  EXPECT(mapped(p) && p[0] == 'A');

  printf("-- unmapping the middle splits the mapping\n");
  CHECK(munmap(p + 3 * PG, 2 * PG));
  EXPECT(mapped(p + 2 * PG));
  EXPECT(!mapped(p + 3 * PG));
  EXPECT(!mapped(p + 4 * PG));
  EXPECT(mapped(p + 5 * PG));
  EXPECT(p[2 * PG] == 'C' && p[3 * PG - 1] == 'C');
  EXPECT(p[5 * PG] == 'F' && p[8 * PG - 1] == 'H');
  /* Both halves are whole mappings of their own. */
  CHECK(mprotect(p, 3 * PG, PROT_READ));
  CHECK(mprotect(p + 5 * PG, 3 * PG, PROT_READ));
  CHECK(mprotect(p, 8 * PG, RW));

  printf("-- unmapping the start and the end\n");
  CHECK(munmap(p, PG));
  EXPECT(!mapped(p) && mapped(p + PG) && p[PG] == 'B');
  /* An unaligned length covers its last page completely. */
  CHECK(munmap(p + 7 * PG, 1));
  EXPECT(!mapped(p + 7 * PG) && mapped(p + 6 * PG) && p[6 * PG] == 'G');
  CHECK(munmap(p + 6 * PG, PG + 1));
  EXPECT(!mapped(p + 6 * PG) && mapped(p + 5 * PG));

  printf("-- unmapping holes\n");
  /* What is left: B C at 1-2, F at 5. */
  CHECK(munmap(p + 3 * PG, 2 * PG));
  CHECK(munmap(p, PG));
  CHECK(munmap(p + 6 * PG, 100 * PG));
  EXPECT(p[PG] == 'B' && p[5 * PG] == 'F');
  /* One call covering both mappings and the holes between them. */
  CHECK(munmap(p, 8 * PG));
  EXPECT(!mapped(p + PG) && !mapped(p + 2 * PG) && !mapped(p + 5 * PG));
  CHECK(munmap(p, 8 * PG));

  printf("-- remapping an unmapped range gives zeroes\n");
  char *q = mmap(p, 8 * PG, RW, ANON | MAP_FIXED, -1, 0);
  EXPECT(q == p);
  long nonzero = 0;
  for (long i = 0; i < 8 * PG; i++) nonzero += p[i] != 0;
  printf("nonzero bytes: %ld\n", nonzero);

  printf("-- unmapping across mappings of different kinds\n");
  char *s = mmap(p + 2 * PG, 2 * PG, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
                 -1, 0);
  EXPECT(s == p + 2 * PG);
  char *r = mmap(p + 4 * PG, 2 * PG, PROT_READ, ANON | MAP_FIXED, -1, 0);
  EXPECT(r == p + 4 * PG);
  strcpy(s, "shared");
  CHECK(munmap(p + PG, 4 * PG));
  EXPECT(mapped(p) && !mapped(p + PG) && !mapped(p + 4 * PG));
  EXPECT(mapped(p + 5 * PG) && mapped(p + 6 * PG));
  CHECK(munmap(p, 8 * PG));

  printf("-- touching unmapped memory\n");
  fflush(stdout);
  volatile char *v = p + 3 * PG;
  *v = 1;
  printf("not reached\n");
  return 0;
}
