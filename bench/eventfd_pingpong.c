/* Thread wakeups through eventfds: two threads hand a turn back and
 * forth, each blocking in read on its own eventfd until the other writes
 * it. Prints nanoseconds per round trip (two handoffs). Usage:
 * eventfd_pingpong N. Build with -pthread. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static int to_other, to_main;
static long n;

static void *other(void *arg) {
  (void)arg;
  uint64_t v;
  for (long i = 0; i < n; i++) {
    if (read(to_other, &v, 8) != 8) exit(1);
    v = 1;
    if (write(to_main, &v, 8) != 8) exit(1);
  }
  return NULL;
}

int main(int argc, char **argv) {
  n = argc > 1 ? atol(argv[1]) : 10000;
  to_other = eventfd(0, 0);
  to_main = eventfd(0, 0);
  pthread_t t;
  if (pthread_create(&t, NULL, other, NULL)) return 1;
  struct timespec a, b;
  uint64_t v = 1;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    v = 1;
    if (write(to_other, &v, 8) != 8) return 1;
    if (read(to_main, &v, 8) != 8) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  pthread_join(t, NULL);
  double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
  printf("%.0f\n", ns / n);
  return 0;
}
