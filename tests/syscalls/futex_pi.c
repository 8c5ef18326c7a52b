/* cflags: -static -pthread */
/* Priority-inheritance futexes through glibc's PTHREAD_PRIO_INHERIT
 * mutexes (FUTEX_LOCK_PI, FUTEX_UNLOCK_PI, FUTEX_TRYLOCK_PI) under
 * contention, and the raw operations' errors. */
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static pthread_mutex_t m;
static long counter;

static void *worker(void *arg) {
  (void)arg;
  for (int i = 0; i < 3000; i++) {
    pthread_mutex_lock(&m);
    long v = counter;
    if (i % 100 == 0) sched_yield();
    counter = v + 1;
    pthread_mutex_unlock(&m);
  }
  return NULL;
}

static long fx(uint32_t *a, int op, struct timespec *ts) {
  return syscall(SYS_futex, a, op, 0, ts, NULL, 0);
}

static void *holder(void *arg) {
  uint32_t *w = arg;
  fx(w, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG, NULL);
  struct timespec d = {0, 50 * 1000000};
  nanosleep(&d, NULL);
  fx(w, FUTEX_UNLOCK_PI | FUTEX_PRIVATE_FLAG, NULL);
  return NULL;
}

int main(void) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  CHECK(pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT));
  CHECK(pthread_mutex_init(&m, &a));
  pthread_t t[8];
  for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, worker, NULL);
  for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
  printf("counter=%ld\n", counter);
  CHECK(pthread_mutex_lock(&m));
  CHECK(pthread_mutex_trylock(&m)); /* EBUSY, returned not in errno */
  CHECK(pthread_mutex_unlock(&m));

  printf("-- raw\n");
  static uint32_t w;
  CHECK(fx(&w, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG, NULL));
  EXPECT((w & FUTEX_TID_MASK) == (uint32_t)syscall(SYS_gettid));
  CHECK(fx(&w, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG, NULL)); /* EDEADLK */
  CHECK(fx(&w, FUTEX_TRYLOCK_PI | FUTEX_PRIVATE_FLAG, NULL));
  CHECK(fx(&w, FUTEX_UNLOCK_PI | FUTEX_PRIVATE_FLAG, NULL));
  printf("word after unlock: %u\n", w);
  CHECK(fx(&w, FUTEX_UNLOCK_PI | FUTEX_PRIVATE_FLAG, NULL)); /* EPERM */
  w = 0x3ffffff0; /* an owner that does not exist */
  CHECK(fx(&w, FUTEX_TRYLOCK_PI | FUTEX_PRIVATE_FLAG, NULL));
  CHECK(fx(&w, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG, NULL)); /* ESRCH */
  w = 0;
  pthread_t h;
  pthread_create(&h, NULL, holder, &w);
  while (__atomic_load_n(&w, __ATOMIC_SEQ_CST) == 0) sched_yield();
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct timespec soon = {now.tv_sec, now.tv_nsec + 5 * 1000000};
  if (soon.tv_nsec >= 1000000000) { soon.tv_sec++; soon.tv_nsec -= 1000000000; }
  CHECK(fx(&w, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG, &soon)); /* ETIMEDOUT */
  CHECK(fx(&w, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG, NULL)); /* waits for the holder */
  EXPECT((w & FUTEX_TID_MASK) == (uint32_t)syscall(SYS_gettid));
  CHECK(fx(&w, FUTEX_UNLOCK_PI | FUTEX_PRIVATE_FLAG, NULL));
  pthread_join(h, NULL);
  return 0;
}
