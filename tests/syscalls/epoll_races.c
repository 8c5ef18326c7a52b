/* Races that must neither deadlock nor crash: threads adding, modifying
 * and deleting registrations, closing registered files, nesting and
 * unnesting the instance, writing an eventfd and waiting, all at once on
 * one instance; then the instance is consistent (what is registered is
 * reported, what was closed is not). */
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "check.h"

#define ROUNDS 2000

static int ep, efd;
static volatile int stop;

static void *churn(void *arg) {
  (void)arg;
  for (int i = 0; i < ROUNDS; i++) {
    int p[2];
    if (pipe(p)) continue;
    struct epoll_event ev = {.events = EPOLLIN | (i % 2 ? EPOLLET : 0), .data.u64 = 1000 + i};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    write(p[1], "x", 1);
    if (i % 3 == 0) {
      ev.events = EPOLLIN | EPOLLONESHOT;
      epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev);
    }
    if (i % 5 == 0) epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL);
    close(p[0]);
    close(p[1]);
  }
  return NULL;
}

static void *nest(void *arg) {
  (void)arg;
  for (int i = 0; i < ROUNDS / 4; i++) {
    int outer = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
    epoll_ctl(outer, EPOLL_CTL_ADD, ep, &ev);
    struct epoll_event out;
    epoll_wait(outer, &out, 1, 0);
    if (i % 2) epoll_ctl(outer, EPOLL_CTL_DEL, ep, NULL);
    close(outer);
  }
  return NULL;
}

static void *poke(void *arg) {
  (void)arg;
  uint64_t one = 1;
  for (int i = 0; i < ROUNDS; i++) write(efd, &one, 8);
  return NULL;
}

static void *waiter(void *arg) {
  (void)arg;
  struct epoll_event evs[16];
  uint64_t v;
  while (!stop) {
    int n = epoll_wait(ep, evs, 16, 5);
    for (int i = 0; i < n; i++)
      if (evs[i].data.u64 == 7) read(efd, &v, 8);
  }
  return NULL;
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  ep = epoll_create1(0);
  efd = eventfd(0, EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7};
  epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
  pthread_t t[6];
  pthread_create(&t[0], NULL, waiter, NULL);
  pthread_create(&t[1], NULL, waiter, NULL);
  pthread_create(&t[2], NULL, churn, NULL);
  pthread_create(&t[3], NULL, churn, NULL);
  pthread_create(&t[4], NULL, nest, NULL);
  pthread_create(&t[5], NULL, poke, NULL);
  for (int i = 2; i < 6; i++) pthread_join(t[i], NULL);
  stop = 1;
  pthread_join(t[0], NULL);
  pthread_join(t[1], NULL);
  uint64_t v;
  read(efd, &v, 8);
  /* Every pipe was closed: only the eventfd is left, and it is quiet. */
  struct epoll_event evs[16];
  CHECK(epoll_wait(ep, evs, 16, 0));
  uint64_t one = 1;
  write(efd, &one, 8);
  CHECK(epoll_wait(ep, evs, 16, 0));
  printf("data %llu\n", (unsigned long long)evs[0].data.u64);
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev));
  CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, efd, NULL));
  CHECK(epoll_wait(ep, evs, 16, 0));
  return 0;
}
