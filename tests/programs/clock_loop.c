/* Reads the clocks in loops: clock_gettime(CLOCK_MONOTONIC) and
 * (CLOCK_REALTIME) N times each, gettimeofday, time and sched_getcpu N/10
 * times each. With a vDSO none of them needs a system call. Prints how
 * many readings went backwards (0). Usage: clock_loop N */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  long back = 0;
  struct timespec prev = {0, 0}, t;
  for (long i = 0; i < n; i++) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (t.tv_sec < prev.tv_sec || (t.tv_sec == prev.tv_sec && t.tv_nsec < prev.tv_nsec)) back++;
    prev = t;
  }
  for (long i = 0; i < n; i++) clock_gettime(CLOCK_REALTIME, &t);
  struct timeval tv;
  long cpus = 0;
  for (long i = 0; i < n / 10; i++) {
    gettimeofday(&tv, NULL);
    (void)time(NULL);
    cpus += sched_getcpu() >= 0;
  }
  printf("backwards %ld, getcpu ok %s\n", back, cpus == n / 10 ? "yes" : "no");
  return 0;
}
