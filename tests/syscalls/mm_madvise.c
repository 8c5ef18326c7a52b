/* madvise: MADV_DONTNEED on private and shared memory, MADV_REMOVE,
 * MADV_FREE, the hints, the argument checks and unmapped ranges. */
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

#define PG 4096L
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define RW (PROT_READ | PROT_WRITE)

static int zeroes(const char *p, long n) {
  for (long i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

static int filled(const char *p, long n, char c) {
  for (long i = 0; i < n; i++)
    if (p[i] != c) return 0;
  return 1;
}

/* Eight pages with a hole on either side. */
static char *map8(int flags) {
  char *p = mmap(NULL, 10 * PG, RW, ANON, -1, 0);
  munmap(p, PG);
  munmap(p + 9 * PG, PG);
  p += PG;
  if (flags != ANON) mmap(p, 8 * PG, RW, flags | MAP_FIXED, -1, 0);
  memset(p, 'x', 8 * PG);
  return p;
}

int main(void) {
  char *p = map8(ANON);

  printf("-- argument checks\n");
  CHECK(madvise(p + 1, PG, MADV_NORMAL));
  CHECK(madvise(p + 1, 0, MADV_NORMAL));
  CHECK(madvise(p, 0, MADV_NORMAL));
  CHECK(madvise(p, 0, MADV_DONTNEED));
  CHECK(madvise(p, PG, 12345));
  CHECK(madvise(p, PG, -1));
  CHECK(madvise(p, PG, 5));
  CHECK(madvise(p, PG, 6));
  CHECK(madvise(p, PG, 7));
  CHECK(madvise(p, PG, 99));
  CHECK(madvise(p, 0, 12345));
  CHECK(madvise(p + 1, PG, 12345));
  CHECK(syscall(SYS_madvise, p, -1L, MADV_NORMAL));
  CHECK(syscall(SYS_madvise, p, -PG, MADV_NORMAL));
  CHECK(syscall(SYS_madvise, p, 1UL << 62, MADV_NORMAL));
  CHECK(syscall(SYS_madvise, 1UL << 47, PG, MADV_NORMAL));
  CHECK(syscall(SYS_madvise, -PG, PG, MADV_NORMAL));
  EXPECT(filled(p, 8 * PG, 'x'));

  printf("-- hints\n");
  CHECK(madvise(p, 8 * PG, MADV_NORMAL));
  CHECK(madvise(p, 8 * PG, MADV_RANDOM));
  CHECK(madvise(p, 8 * PG, MADV_SEQUENTIAL));
  CHECK(madvise(p, 8 * PG, MADV_WILLNEED));
  CHECK(madvise(p, 8 * PG, MADV_DONTFORK));
  CHECK(madvise(p, 8 * PG, MADV_DOFORK));
  CHECK(madvise(p, 8 * PG, MADV_DONTDUMP));
  CHECK(madvise(p, 8 * PG, MADV_DODUMP));
  CHECK(madvise(p, 8 * PG, MADV_WIPEONFORK));
  CHECK(madvise(p, 8 * PG, MADV_KEEPONFORK));
  CHECK(madvise(p, 8 * PG, MADV_COLD));
  CHECK(madvise(p, 8 * PG, MADV_PAGEOUT));
  CHECK(madvise(p, 8 * PG, MADV_HUGEPAGE));
  CHECK(madvise(p, 8 * PG, MADV_NOHUGEPAGE));
  CHECK(madvise(p, 8 * PG, MADV_MERGEABLE));
  CHECK(madvise(p, 8 * PG, MADV_UNMERGEABLE));
  CHECK(madvise(p, 8 * PG, MADV_NORMAL));
  CHECK(madvise(p, 8 * PG, MADV_POPULATE_READ));
  CHECK(madvise(p, 8 * PG, MADV_POPULATE_WRITE));
  /* Unaligned lengths round up. */
  CHECK(madvise(p, 1, MADV_WILLNEED));
  CHECK(madvise(p, 8 * PG - 1, MADV_RANDOM));
  EXPECT(filled(p, 8 * PG, 'x'));

  printf("-- MADV_DONTNEED on private memory\n");
  CHECK(madvise(p + 2 * PG, 2 * PG, MADV_DONTNEED));
  EXPECT(filled(p, 2 * PG, 'x'));
  EXPECT(zeroes(p + 2 * PG, 2 * PG));
  EXPECT(filled(p + 4 * PG, 4 * PG, 'x'));
  /* The memory is still usable. */
  memset(p + 2 * PG, 'y', 2 * PG);
  EXPECT(filled(p + 2 * PG, 2 * PG, 'y'));
  /* Rounded up length. */
  CHECK(madvise(p + 5 * PG, 1, MADV_DONTNEED));
  EXPECT(p[5 * PG - 1] == 'x' && zeroes(p + 5 * PG, PG) && p[6 * PG] == 'x');
  /* On read-only and inaccessible memory too. */
  memset(p, 'x', 8 * PG);
  CHECK(mprotect(p, 2 * PG, PROT_READ));
  CHECK(mprotect(p + 2 * PG, 2 * PG, PROT_NONE));
  CHECK(madvise(p, 4 * PG, MADV_DONTNEED));
  CHECK(mprotect(p, 4 * PG, RW));
  EXPECT(zeroes(p, 4 * PG) && p[4 * PG] == 'x');
  /* MADV_DONTNEED_LOCKED (24) is the same on memory that is not locked. */
  CHECK(madvise(p + 4 * PG, PG, 24));
  EXPECT(zeroes(p + 4 * PG, PG) && p[5 * PG] == 'x');

  printf("-- populating\n");
  memset(p, 'x', 8 * PG);
  CHECK(mprotect(p, PG, PROT_NONE));
  CHECK(mprotect(p + PG, PG, PROT_READ));
  CHECK(madvise(p, PG, MADV_POPULATE_READ));
  CHECK(madvise(p, PG, MADV_POPULATE_WRITE));
  CHECK(madvise(p + PG, PG, MADV_POPULATE_READ));
  CHECK(madvise(p + PG, PG, MADV_POPULATE_WRITE));
  CHECK(madvise(p + PG, 2 * PG, MADV_POPULATE_WRITE));
  CHECK(madvise(p + 2 * PG, 2 * PG, MADV_POPULATE_WRITE));
  CHECK(mprotect(p, 2 * PG, RW));
  EXPECT(filled(p, 8 * PG, 'x'));

  printf("-- unmapped ranges\n");
  memset(p, 'x', 8 * PG);
  CHECK(munmap(p + 3 * PG, PG));
  CHECK(madvise(p + 3 * PG, PG, MADV_NORMAL));
  CHECK(madvise(p + 3 * PG, PG, MADV_DONTNEED));
  CHECK(madvise(p + 3 * PG, PG, 12345));
  CHECK(madvise(p + 3 * PG, 0, MADV_NORMAL));
  CHECK(madvise(p + 3 * PG, PG + 1, MADV_NORMAL));
  CHECK(madvise(p + 2 * PG, 2 * PG, MADV_WILLNEED));
  /* A hole in the range: the mapped parts are still advised. */
  CHECK(madvise(p + 2 * PG, 3 * PG, MADV_DONTNEED));
  EXPECT(p[2 * PG - 1] == 'x' && zeroes(p + 2 * PG, PG));
  EXPECT(zeroes(p + 4 * PG, PG) && p[5 * PG] == 'x');
  /* Before and after the mapping. */
  CHECK(madvise(p - PG, 2 * PG, MADV_DONTNEED));
  EXPECT(zeroes(p, PG) && p[PG] == 'x');
  CHECK(madvise(p + 7 * PG, 2 * PG, MADV_DONTNEED));
  EXPECT(zeroes(p + 7 * PG, PG) && p[7 * PG - 1] == 'x');
  CHECK(madvise(p + 7 * PG, 2 * PG, MADV_POPULATE_READ));
  CHECK(madvise(p + 3 * PG, PG, MADV_POPULATE_WRITE));
  CHECK(munmap(p - PG, 10 * PG));

  printf("-- MADV_FREE and MADV_REMOVE on private memory\n");
  p = map8(ANON);
  CHECK(madvise(p, 8 * PG, MADV_FREE));
  /* The data may or may not be gone; a write keeps the page. */
  memset(p, 'z', 8 * PG);
  EXPECT(filled(p, 8 * PG, 'z'));
  CHECK(madvise(p, 8 * PG, MADV_REMOVE));
  EXPECT(filled(p, 8 * PG, 'z'));
  CHECK(munmap(p, 8 * PG));

  printf("-- shared memory\n");
  p = map8(MAP_SHARED | MAP_ANONYMOUS);
  EXPECT(filled(p, 8 * PG, 'x'));
  /* MADV_DONTNEED only drops the mapping of the pages: the data stays. */
  CHECK(madvise(p, 8 * PG, MADV_DONTNEED));
  EXPECT(filled(p, 8 * PG, 'x'));
  CHECK(madvise(p, 8 * PG, MADV_FREE));
  CHECK(madvise(p, 8 * PG, MADV_WIPEONFORK));
  CHECK(madvise(p, 8 * PG, MADV_DONTFORK));
  CHECK(madvise(p, 8 * PG, MADV_COLD));
  CHECK(madvise(p, 8 * PG, MADV_POPULATE_WRITE));
  EXPECT(filled(p, 8 * PG, 'x'));
  /* MADV_REMOVE frees the memory: it reads as zeroes. */
  CHECK(madvise(p + 2 * PG, 2 * PG, MADV_REMOVE));
  EXPECT(filled(p, 2 * PG, 'x') && zeroes(p + 2 * PG, 2 * PG));
  EXPECT(filled(p + 4 * PG, 4 * PG, 'x'));
  /* Not on read-only memory. */
  CHECK(mprotect(p, PG, PROT_READ));
  CHECK(madvise(p, PG, MADV_REMOVE));
  CHECK(madvise(p, PG, MADV_DONTNEED));
  EXPECT(filled(p, PG, 'x'));
  CHECK(munmap(p, 8 * PG));
  return 0;
}
