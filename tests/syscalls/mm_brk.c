/* brk: querying, growing, shrinking and growing again, requests below the
 * start or into other mappings. The raw system call returns the new break,
 * or the old one when it refuses. */
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

#define PG 4096L

static char *sys_brk(void *addr) { return (char *)syscall(SYS_brk, addr); }

/* Whether the page at p is mapped (madvise fails with ENOMEM if not). */
static int mapped(char *p) { return madvise(p, PG, MADV_NORMAL) == 0; }

static int zeroes(const char *p, long n) {
  for (long i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

static char data[PG] = "data";

static char *page_up(char *p) {
  return (char *)(((uintptr_t)p + PG - 1) & ~(uintptr_t)(PG - 1));
}

int main(void) {
  /* stdio allocates its buffer first, so that malloc's own use of the heap
   * stays below everything this case does. */
  printf("-- query\n");
  char *b0 = sys_brk(0);
  EXPECT(b0 != NULL);
  EXPECT(sys_brk(0) == b0);
  EXPECT(sys_brk((void *)1) == b0);
  EXPECT(sys_brk((void *)-1L) == b0);
  EXPECT(sys_brk((void *)(1UL << 47)) == b0);
  EXPECT(sys_brk((void *)-PG) == b0);
  /* Continue from a page boundary. */
  char *base = page_up(b0);
  EXPECT(sys_brk(base) == base);

  printf("-- grow\n");
  char *b = sys_brk(base + 3 * PG + 100);
  EXPECT(b == base + 3 * PG + 100);
  EXPECT(sys_brk(0) == b);
  EXPECT(zeroes(base, 4 * PG));
  memset(base, 'h', 4 * PG);
  EXPECT(mapped(base + 3 * PG));
  EXPECT(!mapped(base + 4 * PG));

  printf("-- shrink and grow again\n");
  b = sys_brk(base + PG + 10);
  EXPECT(b == base + PG + 10);
  EXPECT(mapped(base + PG));
  EXPECT(!mapped(base + 2 * PG));
  /* The page holding the break is kept whole, past the break too. */
  EXPECT(base[PG + 9] == 'h' && base[PG + 10] == 'h' && base[2 * PG - 1] == 'h');
  b = sys_brk(base + 4 * PG);
  EXPECT(b == base + 4 * PG);
  EXPECT(base[2 * PG - 1] == 'h');
  EXPECT(zeroes(base + 2 * PG, 2 * PG));
  /* Shrinking within a page unmaps nothing. */
  b = sys_brk(base + 4 * PG - 1);
  EXPECT(b == base + 4 * PG - 1);
  EXPECT(mapped(base + 3 * PG));
  memset(base + 3 * PG, 'i', PG);
  b = sys_brk(base + 3 * PG + 1);
  EXPECT(mapped(base + 3 * PG) && base[3 * PG + PG - 1] == 'i');
  b = sys_brk(base + 3 * PG);
  EXPECT(!mapped(base + 3 * PG));
  b = sys_brk(base + 4 * PG);
  EXPECT(zeroes(base + 3 * PG, PG));

  printf("-- below the start\n");
  /* The program's data lies below the start of the heap. */
  EXPECT(sys_brk(data) == base + 4 * PG);
  EXPECT(sys_brk(data + PG) == base + 4 * PG);
  EXPECT(sys_brk((char *)main) == base + 4 * PG);
  EXPECT(sys_brk((void *)PG) == base + 4 * PG);
  EXPECT(mapped(base) && base[0] == 'h');

  printf("-- another mapping above\n");
  /* Something mapped 16 pages above the break. */
  char *m = mmap(base + 20 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  EXPECT(m == base + 20 * PG);
  /* The break may not come closer than one page to it. */
  EXPECT(sys_brk(base + 20 * PG) == base + 4 * PG);
  EXPECT(sys_brk(base + 19 * PG + 1) == base + 4 * PG);
  EXPECT(sys_brk(base + 21 * PG) == base + 4 * PG);
  EXPECT(sys_brk(base + 19 * PG) == base + 19 * PG);
  EXPECT(mapped(base + 18 * PG) && !mapped(base + 19 * PG));
  EXPECT(zeroes(base + 4 * PG, 15 * PG));
  CHECK(munmap(m, PG));
  EXPECT(sys_brk(base + 21 * PG) == base + 21 * PG);
  EXPECT(sys_brk(base + 4 * PG) == base + 4 * PG);

  printf("-- munmap of heap pages\n");
  /* The heap is ordinary memory: it can be unmapped, and brk still counts
   * from its break. */
  CHECK(munmap(base + PG, PG));
  EXPECT(!mapped(base + PG) && mapped(base + 2 * PG));
  EXPECT(sys_brk(base + 6 * PG) == base + 6 * PG);
  EXPECT(!mapped(base + PG) && mapped(base + 5 * PG));
  EXPECT(sys_brk(base + 2 * PG) == base + 2 * PG);
  EXPECT(!mapped(base + 2 * PG) && mapped(base));

  printf("-- a large heap\n");
  b = sys_brk(base + 64 * 1024 * 1024);
  EXPECT(b == base + 64 * 1024 * 1024);
  for (long i = 2 * PG; i < 64L * 1024 * 1024; i += 1024 * 1024) base[i] = 1;
  EXPECT(sys_brk(base + PG) == base + PG);
  EXPECT(sys_brk(0) == base + PG);
  EXPECT(base[0] == 'h');
  return 0;
}
