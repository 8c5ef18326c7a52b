/* Many threads taking turns: 16 threads pass a token around a ring, each
 * waiting on a condition variable under one mutex until the token is
 * its own, then handing it to the next and broadcasting. Prints
 * nanoseconds per handoff. Usage: mutex_condvar N (total handoffs).
 * Build with -pthread. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define THREADS 16

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv[THREADS];
static long token, limit;

static void *ring(void *arg) {
  long me = (long)arg;
  pthread_mutex_lock(&mu);
  for (;;) {
    while (token < limit && token % THREADS != me) pthread_cond_wait(&cv[me], &mu);
    if (token >= limit) break;
    token++;
    pthread_cond_signal(&cv[token % THREADS]);
  }
  /* Let everyone see the end. */
  for (int i = 0; i < THREADS; i++) pthread_cond_signal(&cv[i]);
  pthread_mutex_unlock(&mu);
  return NULL;
}

int main(int argc, char **argv) {
  limit = argc > 1 ? atol(argv[1]) : 20000;
  for (int i = 0; i < THREADS; i++) pthread_cond_init(&cv[i], NULL);
  pthread_t t[THREADS];
  struct timespec a, b;
  pthread_mutex_lock(&mu); /* hold the ring until all threads exist */
  for (long i = 0; i < THREADS; i++)
    if (pthread_create(&t[i], NULL, ring, (void *)i)) return 1;
  clock_gettime(CLOCK_MONOTONIC, &a);
  pthread_mutex_unlock(&mu);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  if (token != limit) return 1;
  double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
  printf("%.0f\n", ns / limit);
  return 0;
}
