/* epoll across threads and processes: a registered fd closed while
 * another thread waits (the wait goes on and reports the others), the
 * instance itself closed during a wait, many writer threads on one
 * eventfd read through epoll, a blocked writer woken by a reader, two
 * threads waiting on one edge-triggered event (one gets it),
 * EPOLLEXCLUSIVE waking only the first instance with a waiter. */
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

static int ctl(int ep, int op, int fd, uint32_t events, uint64_t data) {
  struct epoll_event ev = {.events = events, .data.u64 = data};
  return epoll_ctl(ep, op, fd, &ev);
}

/* Waits until thread `tid` sleeps in the kernel. */
static void wait_sleeping(pid_t tid) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  for (int i = 0; i < 5000; i++) {
    FILE *f = fopen(path, "r");
    if (f) {
      size_t n = fread(buf, 1, sizeof buf - 1, f);
      fclose(f);
      buf[n] = 0;
      char *p = strrchr(buf, ')');
      if (p && p[2] == 'S') {
        usleep(20000);
        return;
      }
    }
    usleep(1000);
  }
  printf("thread %d never slept\n", tid);
}

struct waiter {
  int ep;
  int timeout;
  int n;
  struct epoll_event ev;
  pid_t tid;
  volatile int started;
};

static void *wait_thread(void *arg) {
  struct waiter *w = arg;
  w->tid = syscall(SYS_gettid);
  w->started = 1;
  w->n = epoll_wait(w->ep, &w->ev, 1, w->timeout);
  return NULL;
}

static void start(pthread_t *t, struct waiter *w) {
  w->started = 0;
  pthread_create(t, NULL, wait_thread, w);
  while (!w->started) usleep(100);
  wait_sleeping(w->tid);
}

static void close_during_wait(void) {
  printf("-- a registered fd closed during a wait\n");
  int ep = epoll_create1(0);
  int a = eventfd(0, 0), b = eventfd(0, 0);
  ctl(ep, EPOLL_CTL_ADD, a, EPOLLIN, 1);
  ctl(ep, EPOLL_CTL_ADD, b, EPOLLIN, 2);
  struct waiter w = {.ep = ep, .timeout = 10000};
  pthread_t t;
  start(&t, &w);
  uint64_t one = 1;
  close(a);
  usleep(20000);
  write(b, &one, 8);
  pthread_join(t, NULL);
  printf("woken: %d data %llu\n", w.n, (unsigned long long)w.ev.data.u64);
  printf("-- the instance closed during a wait\n");
  uint64_t v;
  read(b, &v, 8);
  start(&t, &w);
  close(ep);
  usleep(20000);
  printf("still waiting: %d\n", pthread_tryjoin_np(t, NULL) != 0);
  write(b, &one, 8);
  pthread_join(t, NULL);
  printf("woken: %d data %llu\n", w.n, (unsigned long long)w.ev.data.u64);
  close(b);
}

static int efd;
#define WRITERS 8
#define WRITES 5000

static void *writer(void *arg) {
  (void)arg;
  uint64_t one = 1;
  for (int i = 0; i < WRITES; i++) write(efd, &one, 8);
  return NULL;
}

static void many_writers(void) {
  printf("-- %d writer threads on one eventfd\n", WRITERS);
  efd = eventfd(0, EFD_NONBLOCK);
  int ep = epoll_create1(0);
  ctl(ep, EPOLL_CTL_ADD, efd, EPOLLIN | EPOLLET, 0);
  pthread_t t[WRITERS];
  for (int i = 0; i < WRITERS; i++) pthread_create(&t[i], NULL, writer, NULL);
  uint64_t total = 0, v;
  int timeouts = 0;
  while (total < WRITERS * WRITES && timeouts < 100) {
    struct epoll_event ev;
    int n = epoll_wait(ep, &ev, 1, 100);
    if (n == 0) {
      timeouts++;
      continue;
    }
    while (read(efd, &v, 8) == 8) total += v;
  }
  for (int i = 0; i < WRITERS; i++) pthread_join(t[i], NULL);
  while (read(efd, &v, 8) == 8) total += v;
  printf("total %llu\n", (unsigned long long)total);
  close(ep);
  close(efd);
}

static void *blocked_writer(void *arg) {
  uint64_t two = 2;
  long *r = arg;
  *r = write(efd, &two, 8);
  return NULL;
}

static void blocked_write(void) {
  printf("-- a writer blocked by a full counter\n");
  efd = eventfd(0, 0);
  uint64_t big = 0xfffffffffffffffeULL, v;
  CHECK(write(efd, &big, 8));
  long r = 0;
  pthread_t t;
  pthread_create(&t, NULL, blocked_writer, &r);
  usleep(50000);
  printf("writer done before the read: %d\n", r != 0);
  CHECK(read(efd, &v, 8));
  printf("read %#llx\n", (unsigned long long)v);
  pthread_join(t, NULL);
  printf("writer wrote %ld\n", r);
  CHECK(read(efd, &v, 8));
  printf("read %llu\n", (unsigned long long)v);
  close(efd);
}

static void two_waiters(void) {
  printf("-- two threads, one edge-triggered event\n");
  int ep = epoll_create1(0);
  int e = eventfd(0, 0);
  ctl(ep, EPOLL_CTL_ADD, e, EPOLLIN | EPOLLET, 5);
  struct waiter w1 = {.ep = ep, .timeout = 500}, w2 = {.ep = ep, .timeout = 500};
  pthread_t t1, t2;
  start(&t1, &w1);
  start(&t2, &w2);
  uint64_t one = 1;
  write(e, &one, 8);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  printf("events seen: %d\n", w1.n + w2.n);
  close(ep);
  close(e);
}

static void exclusive(void) {
  printf("-- EPOLLEXCLUSIVE wakes the first instance with a waiter\n");
  int ep1 = epoll_create1(0), ep2 = epoll_create1(0);
  int e = eventfd(0, 0);
  CHECK(ctl(ep1, EPOLL_CTL_ADD, e, EPOLLIN | EPOLLEXCLUSIVE, 1));
  CHECK(ctl(ep2, EPOLL_CTL_ADD, e, EPOLLIN | EPOLLEXCLUSIVE, 2));
  struct waiter w = {.ep = ep1, .timeout = 10000};
  pthread_t t;
  start(&t, &w);
  uint64_t one = 1;
  write(e, &one, 8);
  pthread_join(t, NULL);
  printf("waiter on ep1: %d data %llu\n", w.n, (unsigned long long)w.ev.data.u64);
  struct epoll_event ev;
  CHECK(epoll_wait(ep2, &ev, 1, 0));
  w.ep = ep2;
  start(&t, &w);
  write(e, &one, 8);
  pthread_join(t, NULL);
  printf("waiter on ep2: %d data %llu\n", w.n, (unsigned long long)w.ev.data.u64);
  CHECK(epoll_wait(ep1, &ev, 1, 0));
  /* Without exclusive registrations every instance hears. */
  int ep3 = epoll_create1(0), ep4 = epoll_create1(0);
  int f = eventfd(0, 0);
  ctl(ep3, EPOLL_CTL_ADD, f, EPOLLIN, 3);
  ctl(ep4, EPOLL_CTL_ADD, f, EPOLLIN, 4);
  w.ep = ep3;
  start(&t, &w);
  write(f, &one, 8);
  pthread_join(t, NULL);
  printf("waiter on ep3: %d\n", w.n);
  CHECK(epoll_wait(ep4, &ev, 1, 0));
  close(ep1);
  close(ep2);
  close(ep3);
  close(ep4);
  close(e);
  close(f);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  close_during_wait();
  many_writers();
  blocked_write();
  two_waiters();
  exclusive();
  return 0;
}
