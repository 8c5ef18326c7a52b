/* Thread wakeups through futexes: two threads hand a turn back and forth
 * with FUTEX_WAIT/FUTEX_WAKE on one word. Prints nanoseconds per round
 * trip (two handoffs). Usage: futex_pingpong N. Build with -pthread. */
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint32_t turn; /* 0: main's turn, 1: the other thread's */
static long n;

static void wait_for(uint32_t want) {
  uint32_t v;
  while ((v = __atomic_load_n(&turn, __ATOMIC_ACQUIRE)) != want)
    syscall(SYS_futex, &turn, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}

static void give(uint32_t to) {
  __atomic_store_n(&turn, to, __ATOMIC_RELEASE);
  syscall(SYS_futex, &turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *other(void *arg) {
  (void)arg;
  for (long i = 0; i < n; i++) {
    wait_for(1);
    give(0);
  }
  return NULL;
}

int main(int argc, char **argv) {
  n = argc > 1 ? atol(argv[1]) : 10000;
  pthread_t t;
  if (pthread_create(&t, NULL, other, NULL)) return 1;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    give(1);
    wait_for(0);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  pthread_join(t, NULL);
  double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
  printf("%.0f\n", ns / n);
  return 0;
}
