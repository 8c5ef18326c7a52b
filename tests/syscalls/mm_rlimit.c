/* RLIMIT_AS and RLIMIT_DATA bound mmap, mremap, mprotect and brk. */
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

#define MiB (1024L * 1024)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define RW (PROT_READ | PROT_WRITE)

static char *sys_brk(void *addr) { return (char *)syscall(SYS_brk, addr); }

static void set_cur(int resource, rlim_t cur) {
  struct rlimit rl;
  getrlimit(resource, &rl);
  rl.rlim_cur = cur;
  if (setrlimit(resource, &rl) != 0) perror("setrlimit");
}

int main(void) {
  printf("-- RLIMIT_AS\n");
  /* The program itself uses a few MiB. */
  set_cur(RLIMIT_AS, 256 * MiB);
  char *a = mmap(NULL, 128 * MiB, PROT_NONE, ANON, -1, 0);
  EXPECT(a != MAP_FAILED);
  CHECK_OK(mmap(NULL, 200 * MiB, PROT_NONE, ANON, -1, 0));
  CHECK_OK(mmap(NULL, 200 * MiB, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  CHECK_OK(mmap(NULL, 200 * MiB, RW, ANON | MAP_GROWSDOWN, -1, 0));
  /* Growing a mapping counts what it adds. */
  a = mremap(a, 128 * MiB, 200 * MiB, MREMAP_MAYMOVE);
  EXPECT(a != MAP_FAILED);
  CHECK_OK(mremap(a, 200 * MiB, 300 * MiB, MREMAP_MAYMOVE));
  CHECK_OK(mremap(a, 200 * MiB, 300 * MiB, 0));
  /* brk counts too. */
  char *b0 = sys_brk(0);
  EXPECT(sys_brk(b0 + 100 * MiB) == b0);
  EXPECT(sys_brk(b0 + MiB) == b0 + MiB);
  EXPECT(sys_brk(b0) == b0);
  /* Shrinking is always fine, and makes room. */
  CHECK_OK(mremap(a, 200 * MiB, 64 * MiB, 0));
  char *c = mmap(NULL, 150 * MiB, PROT_NONE, ANON, -1, 0);
  EXPECT(c != MAP_FAILED);
  CHECK_OK(mremap(a, 64 * MiB, 128 * MiB, MREMAP_MAYMOVE));
  CHECK(munmap(c, 150 * MiB));
  /* Replacing a mapping with MAP_FIXED only counts what it adds. */
  CHECK_OK(mmap(a, 200 * MiB, RW, ANON | MAP_FIXED, -1, 0));
  CHECK_OK(mmap(a + 100 * MiB, 200 * MiB, RW, ANON | MAP_FIXED, -1, 0));
  CHECK(munmap(a, 200 * MiB));
  CHECK_OK(mmap(a, 200 * MiB, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0));
  CHECK(munmap(a, 200 * MiB));
  /* A limit below what is mapped already. */
  set_cur(RLIMIT_AS, 64 * 1024);
  CHECK_OK(mmap(NULL, 4096, PROT_NONE, ANON, -1, 0));
  set_cur(RLIMIT_AS, RLIM_INFINITY);
  a = mmap(NULL, 512 * MiB, PROT_NONE, ANON, -1, 0);
  EXPECT(a != MAP_FAILED);
  CHECK(munmap(a, 512 * MiB));

  printf("-- RLIMIT_DATA\n");
  /* Private writable memory is data; read-only, shared and grows-down
   * memory is not. */
  set_cur(RLIMIT_DATA, 64 * MiB);
  char *d = mmap(NULL, 32 * MiB, RW, ANON, -1, 0);
  EXPECT(d != MAP_FAILED);
  CHECK_OK(mmap(NULL, 48 * MiB, RW, ANON, -1, 0));
  CHECK_OK(mmap(NULL, 48 * MiB, PROT_WRITE, ANON, -1, 0));
  char *r = mmap(NULL, 48 * MiB, PROT_READ, ANON, -1, 0);
  EXPECT(r != MAP_FAILED);
  char *s = mmap(NULL, 48 * MiB, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  EXPECT(s != MAP_FAILED);
  char *g = mmap(NULL, 48 * MiB, RW, ANON | MAP_GROWSDOWN, -1, 0);
  EXPECT(g != MAP_FAILED);
  /* Making read-only memory writable turns it into data. */
  CHECK(mprotect(r, 48 * MiB, RW));
  CHECK(mprotect(r, 16 * MiB, RW));
  CHECK(mprotect(r, 16 * MiB, PROT_READ));
  CHECK(mprotect(s, 48 * MiB, PROT_READ));
  CHECK(mprotect(s, 48 * MiB, RW));
  /* Growing data. */
  CHECK_OK(mremap(d, 32 * MiB, 64 * MiB, MREMAP_MAYMOVE));
  CHECK_OK(mremap(s, 48 * MiB, 96 * MiB, MREMAP_MAYMOVE));
  char *b = sys_brk(0);
  EXPECT(sys_brk(b + 48 * MiB) == b);
  EXPECT(sys_brk(b + MiB) == b + MiB);
  EXPECT(sys_brk(b) == b);
  CHECK(munmap(d, 32 * MiB));
  CHECK_OK(mmap(NULL, 48 * MiB, RW, ANON, -1, 0));
  set_cur(RLIMIT_DATA, RLIM_INFINITY);
  CHECK(mprotect(r, 48 * MiB, RW));
  return 0;
}
