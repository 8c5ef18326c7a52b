/* mmap's argument checks and their errnos, and which check wins when
 * several arguments are bad. */
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

#define PG 4096L
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define RW (PROT_READ | PROT_WRITE)

static long raw_mmap(unsigned long addr, unsigned long len, long prot,
                     long flags, long fd, unsigned long off) {
  return syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int main(void) {
  /* A free range to use for MAP_FIXED requests. */
  char *base = mmap(NULL, 16 * PG, PROT_NONE, ANON, -1, 0);
  unsigned long b = (unsigned long)base;
  munmap(base, 16 * PG);

  printf("-- length\n");
  CHECK(raw_mmap(0, 0, RW, ANON, -1, 0));
  CHECK(raw_mmap(b, 0, RW, ANON | MAP_FIXED, -1, 0));
  CHECK(raw_mmap(0, 0, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  CHECK(raw_mmap(0, -1UL, RW, ANON, -1, 0));
  CHECK(raw_mmap(0, -PG, RW, ANON, -1, 0));
  CHECK(raw_mmap(0, -PG - 1, RW, ANON, -1, 0));
  CHECK(raw_mmap(0, 1UL << 62, RW, ANON, -1, 0));
  CHECK(raw_mmap(0, 1UL << 47, PROT_NONE, ANON | MAP_NORESERVE, -1, 0));
  CHECK(raw_mmap(0, 1UL << 48, PROT_NONE, ANON | MAP_NORESERVE, -1, 0));
  CHECK(raw_mmap(b, 1UL << 47, PROT_NONE, ANON | MAP_FIXED, -1, 0));
  CHECK(raw_mmap(b, -PG, PROT_NONE, ANON | MAP_FIXED, -1, 0));

  printf("-- offset\n");
  CHECK(raw_mmap(0, PG, RW, ANON, -1, 1));
  CHECK(raw_mmap(0, PG, RW, ANON, -1, PG + 100));
  CHECK(raw_mmap(0, PG, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 2048));
  /* The offset is checked before anything else. */
  CHECK(raw_mmap(0, 0, RW, ANON, -1, 1));
  CHECK(raw_mmap(0, PG, RW, MAP_PRIVATE, 999, 1));
  CHECK(raw_mmap(b + 1, PG, RW, ANON | MAP_FIXED, -1, 1));
  /* An aligned offset is fine and ignored for anonymous memory. */
  CHECK_OK(raw_mmap(0, PG, RW, ANON, -1, 1UL << 40));
  /* Offsets whose page index overflows. */
  CHECK_OK(raw_mmap(0, 2 * PG, RW, ANON, -1, -PG));

  printf("-- map type\n");
  CHECK(raw_mmap(0, PG, RW, MAP_ANONYMOUS, -1, 0));
  CHECK(raw_mmap(0, PG, RW, MAP_ANONYMOUS | 0x04, -1, 0));
  CHECK(raw_mmap(0, PG, RW, MAP_ANONYMOUS | 0x0f, -1, 0));
  CHECK(raw_mmap(0, PG, RW, MAP_ANONYMOUS | MAP_SHARED | MAP_PRIVATE, -1, 0));
  /* Checked after the length. */
  CHECK(raw_mmap(0, 0, RW, MAP_ANONYMOUS, -1, 0));
  CHECK(raw_mmap(0, 1UL << 62, RW, MAP_ANONYMOUS, -1, 0));

  printf("-- MAP_FIXED address\n");
  CHECK(raw_mmap(b + 1, PG, RW, ANON | MAP_FIXED, -1, 0));
  CHECK(raw_mmap(b + 2048, PG, RW, ANON | MAP_FIXED, -1, 0));
  CHECK(raw_mmap(b + 1, PG, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0));
  CHECK(raw_mmap(1UL << 47, PG, RW, ANON | MAP_FIXED, -1, 0));
  CHECK(raw_mmap(1UL << 48, PG, RW, ANON | MAP_FIXED, -1, 0));
  CHECK(raw_mmap(-PG, PG, RW, ANON | MAP_FIXED, -1, 0));
  CHECK(raw_mmap((1UL << 47) + 1, PG, RW, ANON | MAP_FIXED, -1, 0));
  /* The address is checked before the map type. */
  CHECK(raw_mmap(b + 1, PG, RW, MAP_ANONYMOUS | MAP_FIXED, -1, 0));
  /* A hint is never an error, aligned or not. */
  CHECK_OK(raw_mmap(b + 1, PG, RW, ANON, -1, 0));
  CHECK_OK(raw_mmap(1UL << 47, PG, RW, ANON, -1, 0));
  CHECK_OK(raw_mmap(-PG, PG, RW, ANON, -1, 0));

  printf("-- file descriptors\n");
  CHECK(raw_mmap(0, PG, RW, MAP_PRIVATE, -1, 0));
  CHECK(raw_mmap(0, PG, RW, MAP_PRIVATE, 999, 0));
  CHECK(raw_mmap(0, PG, RW, MAP_SHARED, 12345, 0));
  CHECK(raw_mmap(0, PG, RW, MAP_SHARED, -100, 0));
  /* The descriptor is checked before the length and the type. */
  CHECK(raw_mmap(0, 0, RW, MAP_PRIVATE, 999, 0));
  CHECK(raw_mmap(0, PG, RW, 0, 999, 0));
  CHECK(raw_mmap(b + 1, PG, RW, MAP_PRIVATE | MAP_FIXED, 999, 0));
  /* With MAP_ANONYMOUS the descriptor is ignored. */
  CHECK_OK(raw_mmap(0, PG, RW, ANON, 999, 0));
  CHECK_OK(raw_mmap(0, PG, RW, ANON, 0, 0));

  printf("-- files that cannot be mapped\n");
  /* Standard input is /dev/null, which has no mmap; standard output is a
   * pipe opened for writing only. */
  CHECK(raw_mmap(0, PG, PROT_READ, MAP_PRIVATE, 0, 0));
  CHECK(raw_mmap(0, PG, RW, MAP_PRIVATE, 0, 0));
  CHECK(raw_mmap(0, PG, PROT_READ, MAP_SHARED, 0, 0));
  CHECK(raw_mmap(0, PG, RW, MAP_SHARED, 0, 0));
  CHECK(raw_mmap(0, PG, PROT_READ, MAP_PRIVATE, 1, 0));
  CHECK(raw_mmap(0, PG, PROT_READ, MAP_SHARED, 1, 0));
  CHECK(raw_mmap(0, PG, PROT_READ, MAP_PRIVATE | MAP_GROWSDOWN, 0, 0));
  CHECK(raw_mmap(0, PG, PROT_READ, MAP_SHARED_VALIDATE | 0x800000, 0, 0));
  CHECK(raw_mmap(b, PG, PROT_READ, MAP_SHARED_VALIDATE | MAP_FIXED_NOREPLACE, 0, 0));
  CHECK(raw_mmap(0, PG, PROT_READ, MAP_PRIVATE | MAP_HUGETLB, 0, 0));
  CHECK(raw_mmap(0, PG, PROT_READ, 0x0f, 0, 0));
  /* The placement comes first. */
  CHECK(raw_mmap(b + 1, PG, PROT_READ, MAP_PRIVATE | MAP_FIXED, 0, 0));
  CHECK(raw_mmap(b + 1, PG, PROT_READ, MAP_PRIVATE | MAP_FIXED, 1, 0));
  CHECK(raw_mmap(1UL << 47, PG, PROT_READ, MAP_PRIVATE | MAP_FIXED, 0, 0));

  printf("-- MAP_SHARED_VALIDATE\n");
  CHECK_OK(raw_mmap(0, PG, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0));
  CHECK(raw_mmap(0, PG, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x800000, -1, 0));
  CHECK(raw_mmap(0, 0, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x800000, -1, 0));
  CHECK(raw_mmap(0, PG, RW, MAP_SHARED_VALIDATE | 0x800000, 999, 0));

  printf("-- protection bits\n");
  CHECK_OK(raw_mmap(0, PG, PROT_READ | PROT_WRITE | PROT_EXEC, ANON, -1, 0));
  CHECK_OK(raw_mmap(0, PG, PROT_WRITE, ANON, -1, 0));
  CHECK_OK(raw_mmap(0, PG, 0x10, ANON, -1, 0));

  printf("-- MAP_FIXED_NOREPLACE on an existing mapping\n");
  char *p = mmap(NULL, 2 * PG, RW, ANON, -1, 0);
  CHECK(raw_mmap((unsigned long)p, PG, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0));
  /* EEXIST comes before the map type check. */
  CHECK(raw_mmap((unsigned long)p, PG, RW, MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
  /* MAP_FIXED_NOREPLACE wins over MAP_FIXED. */
  CHECK(raw_mmap((unsigned long)p + PG, PG, RW,
                 ANON | MAP_FIXED | MAP_FIXED_NOREPLACE, -1, 0));
  CHECK(munmap(p, 2 * PG));
  return 0;
}
