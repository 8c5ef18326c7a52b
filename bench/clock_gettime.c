/* The vDSO path: CLOCK_MONOTONIC read in a loop (no system call when the
 * vDSO is used). Prints nanoseconds per call. Usage: clock_gettime N */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  struct timespec a, b, t;
  long long sum = 0;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    sum += t.tv_nsec;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
  if (sum == 42) puts("");
  printf("%.0f\n", ns / n);
  return 0;
}
