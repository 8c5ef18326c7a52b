/* mmap of anonymous memory: private and shared mappings, placement hints,
 * MAP_FIXED replacing an existing mapping, MAP_FIXED_NOREPLACE, MAP_POPULATE,
 * MAP_32BIT, MAP_GROWSDOWN and MAP_SHARED_VALIDATE. */
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

#define PG 4096L

static long raw_mmap(void *addr, long len, long prot, long flags, long fd,
                     long off) {
  return syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

/* Whether the page at p is mapped (madvise fails with ENOMEM if not). */
static int mapped(char *p) { return madvise(p, PG, MADV_NORMAL) == 0; }

/* Whether every byte of [p, p+n) is zero. */
static int zeroes(const char *p, long n) {
  for (long i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

/* A free, page-aligned range of n pages (reserved, then released). */
static char *free_range(long n) {
  char *p = mmap(NULL, n * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  munmap(p, n * PG);
  return p;
}

int main(void) {
  printf("-- private anonymous\n");
  char *p = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  EXPECT(p != MAP_FAILED);
  EXPECT(((uintptr_t)p & (PG - 1)) == 0);
  EXPECT(zeroes(p, 3 * PG));
  memset(p, 'a', 3 * PG);
  EXPECT(p[0] == 'a' && p[3 * PG - 1] == 'a');
  CHECK(munmap(p, 3 * PG));
  EXPECT(!mapped(p));

  printf("-- unaligned length rounds up to a page\n");
  char *h = free_range(2);
  p = mmap(h, 100, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  EXPECT(p == h);
  p[PG - 1] = 1;
  EXPECT(p[PG - 1] == 1);
  EXPECT(mapped(p));
  EXPECT(!mapped(p + PG));
  CHECK(munmap(p, 100));

  printf("-- shared anonymous\n");
  char *s = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  EXPECT(s != MAP_FAILED);
  EXPECT(zeroes(s, 2 * PG));
  strcpy(s + PG, "shared data");
  printf("read back: %s\n", s + PG);
  /* The offset is ignored for anonymous mappings (but must be aligned). */
  char *s2 = (char *)raw_mmap(NULL, PG, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 16 * PG);
  EXPECT(s2 != MAP_FAILED && zeroes(s2, PG));
  CHECK(munmap(s2, PG));
  CHECK(munmap(s, 2 * PG));

  printf("-- MAP_SHARED_VALIDATE\n");
  /* Not a type anonymous memory takes. */
  CHECK_OK(raw_mmap(NULL, PG, PROT_READ | PROT_WRITE,
                    MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0));
  CHECK_OK(raw_mmap(NULL, PG, PROT_READ, MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x800000, -1, 0));
  /* Unknown flags are ignored with the plain types. */
  s = (char *)raw_mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | 0x800000, -1, 0);
  EXPECT(s != MAP_FAILED);
  munmap(s, PG);
  s = (char *)raw_mmap(NULL, PG, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | 0x800000, -1, 0);
  EXPECT(s != MAP_FAILED);
  munmap(s, PG);

  printf("-- hints\n");
  h = free_range(4);
  p = mmap(h, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
           0);
  EXPECT(p == h);
  /* A hint on an occupied range is not honoured, and the old mapping stays. */
  p[0] = 'x';
  char *q = mmap(h, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  EXPECT(q != MAP_FAILED);
  EXPECT(q != h);
  EXPECT(q + PG <= h || q >= h + 4 * PG);
  EXPECT(p[0] == 'x');
  CHECK(munmap(q, PG));
  /* A hint overlapping the end of a mapping is not honoured either. */
  q = mmap(h - PG, 2 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  EXPECT(q != h - PG);
  EXPECT(q + 2 * PG <= h || q >= h + 4 * PG);
  CHECK(munmap(q, 2 * PG));
  CHECK(munmap(p, 4 * PG));
  /* An unaligned hint is rounded down to its page. */
  p = mmap(h + 123, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  EXPECT(p == h);
  CHECK(munmap(p, PG));
  /* A hint in the unusable top of the address space is ignored. */
  p = mmap((void *)0x7fffffffe000UL, 4 * PG, PROT_READ,
           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  EXPECT(p != MAP_FAILED);
  EXPECT((uintptr_t)p + 4 * PG <= 0x800000000000UL);
  munmap(p, 4 * PG);

  printf("-- MAP_FIXED over an existing mapping\n");
  p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
           -1, 0);
  memset(p, 'b', 4 * PG);
  q = mmap(p + PG, 2 * PG, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  EXPECT(q == p + PG);
  EXPECT(zeroes(p + PG, 2 * PG));
  EXPECT(p[0] == 'b' && p[PG - 1] == 'b');
  EXPECT(p[3 * PG] == 'b' && p[4 * PG - 1] == 'b');
  /* MAP_FIXED with a different protection over part of it. */
  q = mmap(p + 3 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
           -1, 0);
  EXPECT(q == p + 3 * PG);
  EXPECT(zeroes(p + 3 * PG, PG));
  /* Shared over private, and private over shared. */
  q = mmap(p, PG, PROT_READ | PROT_WRITE,
           MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  EXPECT(q == p && zeroes(p, PG));
  p[0] = 's';
  q = mmap(p, 2 * PG, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  EXPECT(q == p && zeroes(p, 2 * PG));
  /* MAP_FIXED over a range that is partly a hole. */
  CHECK(munmap(p + PG, PG));
  q = mmap(p, 3 * PG, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  EXPECT(q == p && zeroes(p, 3 * PG));
  EXPECT(mapped(p + PG));
  CHECK(munmap(p, 4 * PG));

  printf("-- MAP_FIXED_NOREPLACE\n");
  h = free_range(8);
  p = mmap(h + 2 * PG, 2 * PG, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  EXPECT(p == h + 2 * PG);
  p[0] = 'n';
  CHECK_OK(mmap(h + 2 * PG, 2 * PG, PROT_READ,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
  CHECK_OK(mmap(h + 3 * PG, 2 * PG, PROT_READ,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
  CHECK_OK(mmap(h + PG, 2 * PG, PROT_READ,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
  CHECK_OK(mmap(h, 8 * PG, PROT_READ,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
  CHECK_OK(mmap(h + 2 * PG + 1, PG, PROT_READ,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
  EXPECT(p[0] == 'n');
  /* Right next to it on both sides is free. */
  q = mmap(h + PG, PG, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  EXPECT(q == h + PG);
  q = mmap(h + 4 * PG, PG, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  EXPECT(q == h + 4 * PG);
  EXPECT(zeroes(h + PG, PG) && zeroes(h + 4 * PG, PG));
  CHECK(munmap(h, 8 * PG));

  printf("-- MAP_POPULATE\n");
  p = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  EXPECT(p != MAP_FAILED);
  EXPECT(zeroes(p, 64 * PG));
  memset(p, 7, 64 * PG);
  long sum = 0;
  for (long i = 0; i < 64 * PG; i++) sum += p[i];
  printf("sum=%ld\n", sum);
  CHECK(munmap(p, 64 * PG));
  p = mmap(NULL, 4 * PG, PROT_READ,
           MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  EXPECT(p != MAP_FAILED && zeroes(p, 4 * PG));
  CHECK(munmap(p, 4 * PG));
  /* PROT_NONE with MAP_POPULATE succeeds (population is best effort). */
  p = mmap(NULL, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
           -1, 0);
  EXPECT(p != MAP_FAILED);
  CHECK(munmap(p, 4 * PG));

  printf("-- MAP_32BIT\n");
  for (int i = 0; i < 4; i++) {
    p = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    EXPECT(p != MAP_FAILED);
    EXPECT((uintptr_t)p + 16 * PG <= 0x80000000UL);
    p[0] = 1;
  }
  /* A 32-bit mapping with a usable hint goes where the hint says. */
  h = free_range(1);
  p = mmap(h, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
  EXPECT(p == h || (uintptr_t)p < 0x80000000UL);
  munmap(p, PG);

  printf("-- MAP_GROWSDOWN\n");
  /* Shared memory cannot grow down. */
  CHECK_OK(mmap(NULL, PG, PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0));
  h = free_range(1024);
  /* Keep an inaccessible reservation below (no guard gap applies to it). */
  CHECK(munmap(h + 512 * PG, 512 * PG));
  char *g = mmap(h + 1020 * PG, 4 * PG, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED, -1,
                 0);
  EXPECT(g == h + 1020 * PG);
  memset(g, 'g', 4 * PG);
  EXPECT(!mapped(g - PG));
  /* Touching the page below it grows it. */
  g[-1] = 'y';
  EXPECT(mapped(g - PG));
  EXPECT(zeroes(g - PG, PG - 1));
  /* So does touching further below, skipping pages. */
  g[-64 * PG] = 'z';
  EXPECT(mapped(g - 64 * PG));
  EXPECT(mapped(g - 30 * PG));
  EXPECT(zeroes(g - 30 * PG, PG));
  EXPECT(g[-64 * PG] == 'z' && g[-1] == 'y' && g[0] == 'g');
  /* The grown part is one mapping with the rest. */
  CHECK(mprotect(g - 64 * PG, 68 * PG, PROT_READ));
  /* Hints keep a guard gap below a grows-down mapping. */
  q = mmap(g - 80 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  EXPECT(q != g - 80 * PG);
  EXPECT(q + PG <= g - 64 * PG - 256 * PG || q >= g + 4 * PG);
  CHECK(munmap(q, PG));
  q = mmap(h + 512 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  EXPECT(q == h + 512 * PG);
  CHECK(munmap(q, PG));
  CHECK(munmap(h, 1024 * PG));

  printf("-- shared memory is the same through both views after mremap\n");
  s = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
           -1, 0);
  strcpy(s, "before move");
  char *s3 = mremap(s, 2 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED,
                    free_range(4));
  EXPECT(s3 != MAP_FAILED);
  printf("after move: %s\n", s3);
  CHECK(munmap(s3, 4 * PG));
  return 0;
}
