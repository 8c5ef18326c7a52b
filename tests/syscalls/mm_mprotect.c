/* mprotect: argument checks, holes, changing part of a mapping, PROT_NONE
 * and back keeping the data, PROT_GROWSDOWN. Whether a page can be read or
 * written is probed with system calls, which fail with EFAULT instead of
 * killing the process. */
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#define PG 4096L
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define RW (PROT_READ | PROT_WRITE)

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

/* The kernel reads 4 bytes at p and writes them to stdout. */
static void show(char *p) {
  long n = write(1, p, 4);
  if (n < 0)
    printf("[read: %s]\n", strerrorname_np(errno));
  else
    printf(" [read %ld]\n", n);
}

/* Whether the page at p is mapped (madvise fails with ENOMEM if not). */
static int mapped(char *p) { return madvise(p, PG, MADV_NORMAL) == 0; }

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  /* Eight pages with a hole on either side. */
  char *p = mmap(NULL, 10 * PG, RW, ANON, -1, 0);
  munmap(p, PG);
  munmap(p + 9 * PG, PG);
  p += PG;
  for (int i = 0; i < 8; i++) memset(p + i * PG, 'a' + i, PG);

  printf("-- argument checks\n");
  CHECK(mprotect(p + 1, PG, PROT_READ));
  CHECK(mprotect(p + 1, 0, PROT_READ));
  CHECK(mprotect(p, 0, PROT_READ));
  CHECK(mprotect(p, PG, 0x10));
  CHECK(mprotect(p, PG, 0x100));
  CHECK(mprotect(p, PG, 0x80000000));
  CHECK(mprotect(p, 0, 0x10));
  CHECK(mprotect(p + 1, PG, 0x10));
  CHECK(syscall(SYS_mprotect, p, -PG, 0x10));
  CHECK(syscall(SYS_mprotect, p, -PG, PROT_READ));
  CHECK(syscall(SYS_mprotect, p, 1UL << 62, PROT_READ));
  CHECK(mprotect(p, PG, PROT_GROWSDOWN | PROT_GROWSUP | PROT_READ));
  CHECK(mprotect(p + 1, PG, PROT_GROWSDOWN | PROT_GROWSUP));
  CHECK(mprotect(p, PG, PROT_GROWSUP | PROT_READ));
  CHECK(mprotect(p, PG, PROT_GROWSDOWN | PROT_READ));
  /* PROT_SEM (0x8) is a known bit on x86. */
  CHECK(mprotect(p, PG, RW | 0x8 /* PROT_SEM */));
  EXPECT(writable(p));
  CHECK(mprotect(p, 8 * PG, RW | PROT_EXEC));
  CHECK(mprotect(p, 8 * PG, RW));

  printf("-- part of a mapping\n");
  CHECK(mprotect(p + 2 * PG, 2 * PG, PROT_READ));
  EXPECT(writable(p + PG));
  EXPECT(!writable(p + 2 * PG));
  EXPECT(!writable(p + 3 * PG));
  EXPECT(writable(p + 4 * PG));
  EXPECT(p[2 * PG] == 'c' && p[3 * PG] == 'd');
  show(p + 2 * PG);
  /* An unaligned length covers its last page. */
  CHECK(mprotect(p + 5 * PG, 1, PROT_READ));
  EXPECT(!writable(p + 5 * PG) && writable(p + 6 * PG));
  /* Writable again: the data was kept all along. */
  CHECK(mprotect(p, 8 * PG, RW));
  EXPECT(writable(p + 2 * PG) && writable(p + 5 * PG));
  p[2 * PG + 100] = 'C';
  EXPECT(p[2 * PG + 100] == 'C' && p[3 * PG] == 'd');

  printf("-- PROT_NONE and back\n");
  for (int i = 0; i < 8; i++) memset(p + i * PG, 'a' + i, PG);
  CHECK(mprotect(p + PG, 3 * PG, PROT_NONE));
  show(p + PG);
  EXPECT(!writable(p + PG));
  show(p);
  CHECK(mprotect(p + PG, 3 * PG, PROT_READ));
  show(p + PG);
  CHECK(mprotect(p + PG, 3 * PG, RW));
  EXPECT(p[PG] == 'b' && p[2 * PG] == 'c' && p[4 * PG - 1] == 'd');
  /* PROT_WRITE alone can be read on x86. */
  CHECK(mprotect(p, PG, PROT_WRITE));
  show(p);
  EXPECT(writable(p));
  CHECK(mprotect(p, PG, RW));

  printf("-- holes\n");
  CHECK(munmap(p + 6 * PG, PG));
  /* Entirely unmapped. */
  CHECK(mprotect(p + 6 * PG, PG, PROT_READ));
  /* Starting in a hole: nothing changes. */
  CHECK(mprotect(p + 6 * PG, 2 * PG, PROT_READ));
  EXPECT(writable(p + 7 * PG));
  /* A hole in the middle: the part before it changes, not the rest. */
  CHECK(mprotect(p + 4 * PG, 4 * PG, PROT_READ));
  EXPECT(!writable(p + 4 * PG));
  EXPECT(!writable(p + 5 * PG));
  EXPECT(writable(p + 7 * PG));
  /* A hole at the end: the mapped part changes. */
  CHECK(mprotect(p + 7 * PG, 2 * PG, PROT_READ));
  EXPECT(!writable(p + 7 * PG));
  CHECK(mprotect(p, 6 * PG, RW));
  CHECK(mprotect(p + 7 * PG, PG, RW));
  EXPECT(writable(p + 5 * PG) && writable(p + 7 * PG));
  EXPECT(!mapped(p + 6 * PG));

  printf("-- PROT_GROWSDOWN\n");
  /* Not a grows-down mapping. */
  CHECK(mprotect(p + PG, PG, PROT_READ | PROT_GROWSDOWN));
  EXPECT(writable(p + PG));
  char *g = mmap(NULL, 4 * PG, RW, ANON | MAP_GROWSDOWN, -1, 0);
  EXPECT(g != MAP_FAILED);
  CHECK(mprotect(g + 2 * PG, PG, PROT_READ | PROT_GROWSDOWN));
  /* The change went down to the start of the mapping, not above. */
  EXPECT(!writable(g));
  EXPECT(!writable(g + 2 * PG));
  EXPECT(writable(g + 3 * PG));
  CHECK(mprotect(g + 3 * PG, PG, RW | PROT_GROWSDOWN));
  EXPECT(writable(g) && writable(g + 3 * PG));
  /* A range starting below the mapping, in the hole under it, changes the
   * mapping from its start. */
  CHECK(mprotect(g - 2 * PG, 3 * PG, PROT_READ | PROT_GROWSDOWN));
  EXPECT(!writable(g) && writable(g + PG) && writable(g + 3 * PG));
  CHECK(mprotect(g - 2 * PG, 2 * PG, PROT_READ | PROT_GROWSDOWN));
  CHECK(mprotect(g - 2 * PG, 3 * PG, RW));
  /* Unaligned even so. */
  CHECK(mprotect(g + 1, PG, PROT_READ | PROT_GROWSDOWN));
  CHECK(munmap(g, 4 * PG));

  printf("-- shared mappings\n");
  char *s = mmap(NULL, 2 * PG, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  strcpy(s, "shared");
  CHECK(mprotect(s, PG, PROT_READ));
  EXPECT(!writable(s) && writable(s + PG));
  show(s);
  CHECK(mprotect(s, 2 * PG, PROT_NONE));
  CHECK(mprotect(s, 2 * PG, RW));
  printf("%s\n", s);
  CHECK(munmap(s, 2 * PG));
  CHECK(munmap(p, 8 * PG));
  return 0;
}
