/* Recursion past RLIMIT_STACK kills the process with SIGSEGV. */
#include <sys/resource.h>
#include <unistd.h>
#include "check.h"

static long recurse(long depth) {
  volatile char buf[4096];
  buf[0] = (char)depth;
  if (depth == 0) return buf[0];
  return recurse(depth - 1) + buf[0];
}

int main(void) {
  struct rlimit rl;
  CHECK(getrlimit(RLIMIT_STACK, &rl));
  rl.rlim_cur = 1 << 20;
  CHECK(setrlimit(RLIMIT_STACK, &rl));
  /* Within the limit. */
  printf("recurse(100): %ld\n", recurse(100));
  printf("recurse(200): %ld\n", recurse(200));
  fflush(stdout);
  /* 2 MiB of frames. */
  printf("recurse(512): %ld\n", recurse(512));
  printf("not reached\n");
  return 0;
}
