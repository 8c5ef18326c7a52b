/* cflags: -static -pthread */
/* futex_waitv: waiting on several futexes at once; the index of the one
 * woken; EAGAIN when a word already differs; absolute timeouts on both
 * clocks; the argument checks. */
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
struct waitv {
  uint64_t val, uaddr;
  uint32_t flags, reserved;
};
#define U32 0x02
#define PRIV 128

static uint32_t w[3];

static long waitv(struct waitv *v, unsigned n, unsigned flags, struct timespec *ts, int clk) {
  return syscall(SYS_futex_waitv, v, n, flags, ts, clk);
}

static struct timespec in_ms(int clk, long ms) {
  struct timespec t;
  clock_gettime(clk, &t);
  t.tv_nsec += ms * 1000000;
  t.tv_sec += t.tv_nsec / 1000000000;
  t.tv_nsec %= 1000000000;
  return t;
}

static void *waker(void *arg) {
  (void)arg;
  struct timespec d = {0, 30 * 1000000};
  nanosleep(&d, NULL);
  __atomic_store_n(&w[1], 1, __ATOMIC_SEQ_CST);
  syscall(SYS_futex, &w[1], FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
  return NULL;
}

int main(void) {
  struct waitv v[3];
  for (int i = 0; i < 3; i++) v[i] = (struct waitv){0, (uintptr_t)&w[i], U32 | PRIV, 0};
  struct timespec t = in_ms(CLOCK_MONOTONIC, 20);
  CHECK(waitv(v, 3, 0, &t, CLOCK_MONOTONIC));
  t = in_ms(CLOCK_REALTIME, 20);
  CHECK(waitv(v, 3, 0, &t, CLOCK_REALTIME));
  w[2] = 5;
  CHECK(waitv(v, 3, 0, NULL, 0));
  w[2] = 0;
  pthread_t th;
  pthread_create(&th, NULL, waker, NULL);
  long r = waitv(v, 3, 0, NULL, 0);
  printf("woken index: %ld\n", r);
  pthread_join(th, NULL);
  w[1] = 0;
  printf("-- errors\n");
  CHECK(waitv(v, 0, 0, NULL, 0));
  CHECK(waitv(v, 129, 0, NULL, 0));
  CHECK(waitv(v, 3, 1, NULL, 0));
  CHECK(waitv(NULL, 3, 0, NULL, 0));
  t = in_ms(CLOCK_MONOTONIC, 1);
  CHECK(waitv(v, 3, 0, &t, CLOCK_BOOTTIME));
  v[0].flags = PRIV;
  CHECK(waitv(v, 3, 0, NULL, 0));
  v[0].flags = U32 | PRIV;
  v[0].reserved = 1;
  CHECK(waitv(v, 3, 0, NULL, 0));
  v[0].reserved = 0;
  v[0].uaddr += 1;
  CHECK(waitv(v, 3, 0, NULL, 0));
  v[0].uaddr = 8;
  CHECK(waitv(v, 3, 0, NULL, 0));
  return 0;
}
