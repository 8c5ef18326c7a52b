/* The main thread's stack grows on demand: deep recursion using about
 * 4 MiB, a large frame touched far below the stack pointer, and the kernel
 * itself writing below the stack's current extent. */
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#define PG 4096L

static int mapped(void *p) {
  return madvise((void *)((uintptr_t)p & ~(PG - 1)), PG, MADV_NORMAL) == 0;
}

/* Each level uses a bit over 1 KiB of stack. */
static long recurse(int depth) {
  volatile char buf[1024];
  buf[0] = (char)depth;
  buf[sizeof buf - 1] = (char)(depth >> 8);
  if (depth == 0) return buf[0];
  long r = recurse(depth - 1);
  return r + buf[0] + buf[sizeof buf - 1];
}

/* A frame of 2 MiB, touched from the bottom first. */
static long big_frame(void) {
  volatile char buf[2 << 20];
  buf[0] = 1;
  buf[sizeof buf / 2] = 2;
  buf[sizeof buf - 1] = 3;
  return buf[0] + buf[sizeof buf / 2] + buf[sizeof buf - 1];
}

int main(void) {
  char here;
  struct rlimit rl;
  CHECK(getrlimit(RLIMIT_STACK, &rl));
  printf("stack limit: %ld KiB\n", (long)rl.rlim_cur / 1024);

  printf("-- the kernel writes below the stack\n");
  /* 1 MiB below the stack pointer: not part of the stack yet. The kernel's
   * write grows the stack as a fault of the program's own would. */
  char *below = (char *)(((uintptr_t)&here - (1 << 20)) & ~(uintptr_t)15);
  EXPECT(!mapped(below));
  CHECK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, below));
  EXPECT(mapped(below));
  EXPECT(mapped(below + 64 * 1024));
  /* Reading from there too. */
  char *below2 = below - (512 << 10);
  EXPECT(!mapped(below2));
  CHECK(syscall(SYS_nanosleep, below2, NULL));
  EXPECT(mapped(below2));

  printf("-- a big frame\n");
  printf("big_frame: %ld\n", big_frame());

  printf("-- deep recursion\n");
  long r = recurse(4000);
  printf("recurse(4000): %ld\n", r);
  EXPECT(mapped((char *)&here - (3 << 20)));

  printf("-- the stack stays grown\n");
  r = recurse(4000);
  printf("recurse(4000): %ld\n", r);

  printf("-- mmap does not place mappings in the grown stack\n");
  for (int i = 0; i < 16; i++) {
    char *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT(m + (1 << 20) <= below2 - (4 << 20) || m > &here);
  }
  return 0;
}
