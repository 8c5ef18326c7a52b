/* mremap: shrinking, growing in place, moving with MREMAP_MAYMOVE,
 * MREMAP_FIXED, MREMAP_DONTUNMAP, duplicating shared memory, and the
 * errors. */
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#define PG 4096L
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define RW (PROT_READ | PROT_WRITE)

/* Whether the page at p is mapped (madvise fails with ENOMEM if not). */
static int mapped(char *p) { return madvise(p, PG, MADV_NORMAL) == 0; }

/* Whether the kernel can read 8 bytes at p: rt_sigprocmask reads the set
 * before it rejects the bad `how`. */
static int readable(char *p) {
  return syscall(SYS_rt_sigprocmask, 99, p, NULL, 8) == -1 && errno == EINVAL;
}

/* Whether the kernel can write 16 bytes at p (their contents are kept). */
static int writable(char *p) {
  if (!readable(p)) return 0;
  char save[16];
  memcpy(save, p, 16);
  int ok = syscall(SYS_clock_gettime, CLOCK_MONOTONIC, p) == 0;
  if (ok) memcpy(p, save, 16);
  return ok;
}

static int zeroes(const char *p, long n) {
  for (long i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

/* Whether page i of p is filled with 'a' + i. */
static int pattern(const char *p, long pages) {
  for (long i = 0; i < pages; i++)
    for (long j = 0; j < PG; j++)
      if (p[i * PG + j] != 'a' + i) return 0;
  return 1;
}

static void fill(char *p, long pages) {
  for (long i = 0; i < pages; i++) memset(p + i * PG, 'a' + i, PG);
}

/* A free range of n pages. */
static char *free_range(long n) {
  char *p = mmap(NULL, n * PG, PROT_NONE, ANON, -1, 0);
  munmap(p, n * PG);
  return p;
}

static long raw_mremap(void *old, long old_len, long new_len, long flags,
                       void *new_addr) {
  return syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
}

int main(void) {
  char *r = free_range(64);
  char *p = mmap(r, 8 * PG, RW, ANON | MAP_FIXED, -1, 0);
  fill(p, 8);

  printf("-- argument checks\n");
  CHECK(raw_mremap(p + 1, PG, 2 * PG, 0, 0));
  CHECK(raw_mremap(p, PG, 0, 0, 0));
  CHECK(raw_mremap(p, PG, 0, MREMAP_MAYMOVE, 0));
  CHECK(raw_mremap(p, PG, 2 * PG, 8, 0));
  CHECK(raw_mremap(p, PG, 2 * PG, 0x100, 0));
  CHECK(raw_mremap(p, PG, 2 * PG, MREMAP_FIXED, r + 32 * PG));
  CHECK(raw_mremap(p, PG, PG, MREMAP_DONTUNMAP, r + 32 * PG));
  CHECK(raw_mremap(p, PG, 2 * PG, MREMAP_DONTUNMAP | MREMAP_MAYMOVE, 0));
  /* Bad flags win over a bad address. */
  CHECK(raw_mremap(p + 1, PG, 2 * PG, 8, 0));
  /* Unmapped old address. */
  CHECK(raw_mremap(r + 40 * PG, PG, 2 * PG, 0, 0));
  CHECK(raw_mremap(r + 40 * PG, PG, 2 * PG, MREMAP_MAYMOVE, 0));
  CHECK(raw_mremap(r + 40 * PG, 2 * PG, PG, 0, 0));
  CHECK(raw_mremap(r + 40 * PG, PG, PG, 0, 0));
  /* Huge lengths. */
  CHECK(raw_mremap(p, PG, -1L, MREMAP_MAYMOVE, 0));
  CHECK(raw_mremap(p, -1L, PG, 0, 0));
  EXPECT(pattern(p, 8));

  printf("-- same size\n");
  EXPECT(raw_mremap(p, 2 * PG, 2 * PG, 0, 0) == (long)p);
  EXPECT(raw_mremap(p + PG, 1, 100, 0, 0) == (long)(p + PG));

  printf("-- shrink\n");
  EXPECT(raw_mremap(p, 8 * PG, 6 * PG, 0, 0) == (long)p);
  EXPECT(mapped(p + 5 * PG) && !mapped(p + 6 * PG) && !mapped(p + 7 * PG));
  EXPECT(pattern(p, 6));
  /* An unaligned new length keeps its last page. */
  EXPECT(raw_mremap(p, 6 * PG, 4 * PG + 1, 0, 0) == (long)p);
  EXPECT(mapped(p + 4 * PG) && !mapped(p + 5 * PG));
  /* Shrinking the middle of a mapping unmaps a range inside it. */
  EXPECT(raw_mremap(p + PG, 2 * PG, PG, 0, 0) == (long)(p + PG));
  EXPECT(mapped(p + PG) && !mapped(p + 2 * PG) && mapped(p + 3 * PG));
  EXPECT(pattern(p, 2) && p[3 * PG] == 'd' && p[4 * PG] == 'e');
  CHECK(munmap(r, 64 * PG));

  printf("-- grow in place\n");
  p = mmap(r, 4 * PG, RW, ANON | MAP_FIXED, -1, 0);
  fill(p, 4);
  EXPECT(raw_mremap(p, 4 * PG, 8 * PG, 0, 0) == (long)p);
  EXPECT(pattern(p, 4) && zeroes(p + 4 * PG, 4 * PG));
  memset(p + 7 * PG, 'x', PG);
  /* The grown mapping is one mapping: it can be shrunk and grown as one. */
  EXPECT(raw_mremap(p, 8 * PG, 10 * PG, 0, 0) == (long)p);
  EXPECT(p[7 * PG] == 'x' && zeroes(p + 8 * PG, 2 * PG));
  /* Growing a range that does not end where the mapping ends moves it. */
  CHECK(raw_mremap(p, 2 * PG, 4 * PG, 0, 0));
  CHECK(munmap(r, 64 * PG));

  printf("-- grow blocked by a neighbour\n");
  p = mmap(r, 4 * PG, RW, ANON | MAP_FIXED, -1, 0);
  fill(p, 4);
  char *n = mmap(r + 6 * PG, PG, PROT_READ, ANON | MAP_FIXED, -1, 0);
  EXPECT(n == r + 6 * PG);
  /* Up to the neighbour is fine. */
  EXPECT(raw_mremap(p, 4 * PG, 6 * PG, 0, 0) == (long)p);
  EXPECT(raw_mremap(p, 6 * PG, 4 * PG, 0, 0) == (long)p);
  CHECK(raw_mremap(p, 4 * PG, 7 * PG, 0, 0));
  EXPECT(pattern(p, 4) && !mapped(p + 4 * PG));
  char *m = (char *)raw_mremap(p, 4 * PG, 7 * PG, MREMAP_MAYMOVE, 0);
  EXPECT(m != MAP_FAILED && m != p);
  EXPECT(pattern(m, 4) && zeroes(m + 4 * PG, 3 * PG));
  EXPECT(!mapped(p) && !mapped(p + 3 * PG));
  EXPECT(writable(m) && writable(m + 6 * PG));
  /* Moving part of a mapping. */
  m[PG] = 'B';
  char *m2 = (char *)raw_mremap(m + PG, PG, 3 * PG, MREMAP_MAYMOVE, 0);
  EXPECT(m2 != MAP_FAILED && m2 != m + PG);
  EXPECT(m2[0] == 'B' && m2[1] == 'b' && zeroes(m2 + PG, 2 * PG));
  EXPECT(mapped(m) && !mapped(m + PG) && mapped(m + 2 * PG));
  EXPECT(m[0] == 'a' && m[2 * PG] == 'c');
  CHECK(munmap(m, 7 * PG));
  CHECK(munmap(m2, 3 * PG));
  CHECK(munmap(r, 64 * PG));

  printf("-- protection moves with the mapping\n");
  p = mmap(r, 2 * PG, PROT_READ, ANON | MAP_FIXED, -1, 0);
  n = mmap(r + 2 * PG, PG, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
           -1, 0);
  EXPECT(n == r + 2 * PG);
  m = (char *)raw_mremap(p, 2 * PG, 4 * PG, MREMAP_MAYMOVE, 0);
  EXPECT(m != MAP_FAILED && m != p);
  EXPECT(!writable(m) && !writable(m + 3 * PG) && zeroes(m, 4 * PG));
  CHECK(munmap(m, 4 * PG));
  p = mmap(r + PG, PG, PROT_NONE, ANON | MAP_FIXED, -1, 0);
  m = (char *)raw_mremap(p, PG, 2 * PG, MREMAP_MAYMOVE, 0);
  EXPECT(m != MAP_FAILED && m != p && mapped(m + PG));
  EXPECT(!readable(m) && !readable(m + PG));
  CHECK(mprotect(m, 2 * PG, PROT_READ));
  EXPECT(zeroes(m, 2 * PG));
  CHECK(munmap(m, 2 * PG));
  CHECK(munmap(r, 64 * PG));

  printf("-- ranges not inside one mapping\n");
  p = mmap(r, 4 * PG, RW, ANON | MAP_FIXED, -1, 0);
  fill(p, 4);
  CHECK(mprotect(p + 2 * PG, 2 * PG, PROT_READ));
  CHECK(raw_mremap(p, 4 * PG, 8 * PG, 0, 0));
  CHECK(raw_mremap(p, 4 * PG, 8 * PG, MREMAP_MAYMOVE, 0));
  CHECK(raw_mremap(p + PG, 2 * PG, 4 * PG, MREMAP_MAYMOVE, 0));
  CHECK(raw_mremap(p, 6 * PG, 8 * PG, MREMAP_MAYMOVE, 0));
  /* Shrinking only unmaps: it may span mappings and holes. */
  EXPECT(raw_mremap(p, 6 * PG, PG, 0, 0) == (long)p);
  EXPECT(mapped(p) && !mapped(p + PG) && !mapped(p + 3 * PG));
  EXPECT(p[0] == 'a');
  CHECK(munmap(r, 64 * PG));

  printf("-- MREMAP_FIXED\n");
  p = mmap(r, 4 * PG, RW, ANON | MAP_FIXED, -1, 0);
  fill(p, 4);
  /* To a free range. */
  m = (char *)raw_mremap(p, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED,
                         r + 16 * PG);
  EXPECT(m == r + 16 * PG && pattern(m, 4) && !mapped(p));
  /* Over an existing mapping, which it replaces. */
  char *o = mmap(r + 32 * PG, 8 * PG, RW, ANON | MAP_FIXED, -1, 0);
  memset(o, 'o', 8 * PG);
  m = (char *)raw_mremap(m, 4 * PG, 6 * PG, MREMAP_MAYMOVE | MREMAP_FIXED,
                         r + 33 * PG);
  EXPECT(m == r + 33 * PG && pattern(m, 4) && zeroes(m + 4 * PG, 2 * PG));
  EXPECT(o[0] == 'o' && o[7 * PG] == 'o');
  EXPECT(!mapped(r + 16 * PG));
  /* Shrinking while moving. */
  m = (char *)raw_mremap(m, 6 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED,
                         r + 8 * PG);
  EXPECT(m == r + 8 * PG && pattern(m, 2) && !mapped(m + 2 * PG));
  EXPECT(!mapped(r + 33 * PG) && !mapped(r + 38 * PG) && mapped(r + 39 * PG));
  /* Errors. */
  CHECK(raw_mremap(m, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, m + PG));
  CHECK(raw_mremap(m, 2 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, m - 2 * PG));
  CHECK(raw_mremap(m, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, m));
  CHECK(raw_mremap(m, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, r + 1));
  CHECK(raw_mremap(m, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED,
                   (void *)(1UL << 47)));
  CHECK(raw_mremap(m, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED,
                   (void *)-PG));
  /* The new address is ignored without MREMAP_FIXED. */
  EXPECT(raw_mremap(m, 2 * PG, 2 * PG, MREMAP_MAYMOVE, r + 1) == (long)m);
  EXPECT(pattern(m, 2));
  CHECK(munmap(r, 64 * PG));

  printf("-- MREMAP_DONTUNMAP\n");
  p = mmap(r, 2 * PG, RW, ANON | MAP_FIXED, -1, 0);
  fill(p, 2);
  m = (char *)raw_mremap(p, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
                         0);
  EXPECT(m != MAP_FAILED && m != p);
  if (m != MAP_FAILED) {
    EXPECT(pattern(m, 2));
    EXPECT(mapped(p) && mapped(p + PG) && zeroes(p, 2 * PG));
    /* The old range is still writable memory. */
    EXPECT(writable(p));
    m = (char *)raw_mremap(m, 2 * PG, 2 * PG,
                           MREMAP_MAYMOVE | MREMAP_DONTUNMAP | MREMAP_FIXED,
                           r + 8 * PG);
    EXPECT(m == r + 8 * PG && pattern(m, 2));
    if (m != MAP_FAILED) munmap(m, 2 * PG);
  }
  CHECK(munmap(r, 64 * PG));

  printf("-- moving several mappings at once\n");
  /* A move to a fixed address of the same size may cover several
   * mappings; the holes between them stay holes, and what the target has
   * in the holes stays. */
  p = mmap(r, 2 * PG, RW, ANON | MAP_FIXED, -1, 0);
  fill(p, 2);
  n = mmap(r + 3 * PG, 2 * PG, PROT_READ, ANON | MAP_FIXED, -1, 0);
  o = mmap(r + 40 * PG, 8 * PG, RW, ANON | MAP_FIXED, -1, 0);
  memset(o, 'o', 8 * PG);
  m = (char *)raw_mremap(p, 6 * PG, 6 * PG, MREMAP_MAYMOVE | MREMAP_FIXED,
                         r + 40 * PG);
  EXPECT(m == r + 40 * PG);
  EXPECT(pattern(m, 2) && m[2 * PG] == 'o' && zeroes(m + 3 * PG, 2 * PG));
  EXPECT(!writable(m + 3 * PG) && m[5 * PG] == 'o' && m[7 * PG] == 'o');
  EXPECT(!mapped(r) && !mapped(r + 3 * PG) && !mapped(r + 4 * PG));
  /* Not when the range starts in a hole. */
  CHECK(raw_mremap(r + 36 * PG, 8 * PG, 8 * PG, MREMAP_MAYMOVE | MREMAP_FIXED,
                   r + 8 * PG));
  EXPECT(!mapped(r + 8 * PG) && pattern(m, 2));
  /* Nor when it is not a plain move. */
  CHECK(raw_mremap(r + 40 * PG, 4 * PG, 5 * PG, MREMAP_MAYMOVE | MREMAP_FIXED,
                   r + 8 * PG));
  CHECK(raw_mremap(r + 40 * PG, 4 * PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_FIXED,
                   r + 8 * PG));
  /* (That shrink happened before the move failed.) */
  EXPECT(mapped(r + 42 * PG) && !mapped(r + 43 * PG) && !mapped(r + 8 * PG));
  CHECK(munmap(r, 64 * PG));

  printf("-- shared memory\n");
  char *s = mmap(NULL, 2 * PG, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  strcpy(s, "one");
  strcpy(s + PG, "two");
  /* A private mapping cannot be duplicated. */
  p = mmap(r, PG, RW, ANON | MAP_FIXED, -1, 0);
  CHECK(raw_mremap(p, 0, PG, MREMAP_MAYMOVE, 0));
  CHECK(raw_mremap(p, 0, PG, 0, 0));
  /* A shared one can: both views show the same memory. */
  char *d = (char *)raw_mremap(s, 0, 2 * PG, MREMAP_MAYMOVE, 0);
  EXPECT(d != MAP_FAILED && d != s);
  if (d != MAP_FAILED) {
    printf("%s %s\n", d, d + PG);
    strcpy(d + PG, "TWO");
    printf("%s\n", s + PG);
    CHECK(munmap(s, 2 * PG));
    printf("%s\n", d + PG);
    munmap(d, 2 * PG);
  }
  /* Without MREMAP_MAYMOVE there is nowhere to put the copy. */
  s = mmap(NULL, PG, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(raw_mremap(s, 0, PG, 0, 0));
  /* MREMAP_DONTUNMAP leaves the old range mapping the same memory. */
  d = (char *)raw_mremap(s, PG, PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0);
  EXPECT(d != MAP_FAILED && d != s);
  if (d != MAP_FAILED) {
    strcpy(s, "dontunmap");
    printf("%s\n", d);
    munmap(d, PG);
  }
  /* Moving shared memory keeps it shared with the duplicate. */
  d = (char *)raw_mremap(s, 0, PG, MREMAP_MAYMOVE, 0);
  m = (char *)raw_mremap(s, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, r + 4 * PG);
  EXPECT(m == r + 4 * PG);
  strcpy(m, "moved");
  printf("%s\n", d);
  munmap(d, PG);
  munmap(m, PG);
  CHECK(munmap(r, 64 * PG));
  return 0;
}
