/* Nested epoll: an instance watching instances reports them readable
 * when one of theirs is; poll and select on an instance; loops are
 * ELOOP, chains longer than 4 links are ELOOP whichever end grows; more
 * wakeup paths of a length than Linux allows are EINVAL; closing an
 * inner instance removes it from the outer one; an edge-triggered outer
 * registration sees each change of an inner one. */
#include <poll.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <unistd.h>
#include "check.h"

static int ctl(int ep, int op, int fd, uint32_t events, uint64_t data) {
  struct epoll_event ev = {.events = events, .data.u64 = data};
  return epoll_ctl(ep, op, fd, &ev);
}

static void show(const char *what, int ep) {
  struct epoll_event evs[8];
  int n = epoll_wait(ep, evs, 8, 0);
  printf("  %s: %d", what, n);
  for (int i = 0; i < n; i++) printf(" [%llu %#x]", (unsigned long long)evs[i].data.u64, evs[i].events);
  printf("\n");
}

static void readiness(void) {
  printf("-- an instance is readable when one of its files is\n");
  int outer = epoll_create1(0), inner = epoll_create1(0);
  int e = eventfd(0, EFD_NONBLOCK);
  CHECK(ctl(inner, EPOLL_CTL_ADD, e, EPOLLIN, 1));
  CHECK(ctl(outer, EPOLL_CTL_ADD, inner, EPOLLIN | EPOLLOUT | EPOLLRDHUP, 2));
  show("outer", outer);
  struct pollfd pf = {inner, POLLIN | POLLOUT, 0};
  CHECK(poll(&pf, 1, 0));
  uint64_t one = 1, v;
  write(e, &one, 8);
  show("outer", outer);
  show("inner", inner);
  show("outer", outer);
  pf.revents = 0;
  CHECK(poll(&pf, 1, 0));
  printf("poll revents %#x\n", pf.revents);
  fd_set rs, ws;
  FD_ZERO(&rs);
  FD_ZERO(&ws);
  FD_SET(inner, &rs);
  FD_SET(inner, &ws);
  CHECK(select(inner + 1, &rs, &ws, NULL, &(struct timeval){0, 0}));
  printf("select readable %d writable %d\n", FD_ISSET(inner, &rs), FD_ISSET(inner, &ws));
  read(e, &v, 8);
  show("outer", outer);
  pf.revents = 0;
  CHECK(poll(&pf, 1, 0));
  printf("-- a wait on the outer instance is woken by the inner one's file\n");
  fflush(stdout);
  if (fork() == 0) {
    usleep(50000);
    write(e, &one, 8);
    _exit(0);
  }
  struct epoll_event ev;
  CHECK(epoll_wait(outer, &ev, 1, 5000));
  printf("data %llu events %#x\n", (unsigned long long)ev.data.u64, ev.events);
  read(e, &v, 8);
  printf("-- edge-triggered outer registration\n");
  CHECK(ctl(outer, EPOLL_CTL_MOD, inner, EPOLLIN | EPOLLET, 3));
  show("outer", outer);
  write(e, &one, 8);
  show("outer", outer);
  show("outer", outer);
  write(e, &one, 8);
  show("outer", outer);
  read(e, &v, 8);
  printf("-- closing the inner instance removes it\n");
  write(e, &one, 8);
  close(inner);
  show("outer", outer);
  close(outer);
  close(e);
}

static void loops(void) {
  printf("-- loops\n");
  int a = epoll_create1(0), b = epoll_create1(0), c = epoll_create1(0);
  CHECK(ctl(a, EPOLL_CTL_ADD, b, EPOLLIN, 0));
  CHECK(ctl(b, EPOLL_CTL_ADD, a, EPOLLIN, 0));
  CHECK(ctl(b, EPOLL_CTL_ADD, c, EPOLLIN, 0));
  CHECK(ctl(c, EPOLL_CTL_ADD, a, EPOLLIN, 0));
  CHECK(ctl(c, EPOLL_CTL_ADD, b, EPOLLIN, 0));
  /* A diamond is no loop. */
  CHECK(ctl(a, EPOLL_CTL_ADD, c, EPOLLIN, 0));
  CHECK(ctl(a, EPOLL_CTL_DEL, b, 0, 0));
  CHECK(ctl(c, EPOLL_CTL_ADD, a, EPOLLIN, 0));
  close(a);
  close(b);
  close(c);
}

static void chains(void) {
  printf("-- chains of instances\n");
  int e[8];
  for (int i = 0; i < 8; i++) e[i] = epoll_create1(0);
  /* Grown downwards: e0 watches e1 watches e2 ... */
  for (int i = 0; i < 6; i++) {
    int r = ctl(e[i], EPOLL_CTL_ADD, e[i + 1], EPOLLIN, i);
    printf("link %d: %d %s\n", i + 1, r, r ? strerrorname_np(errno) : "");
  }
  for (int i = 0; i < 8; i++) close(e[i]);
  for (int i = 0; i < 8; i++) e[i] = epoll_create1(0);
  /* Grown upwards: e6 watches e7, then e5 watches e6 ... */
  for (int i = 6; i >= 1; i--) {
    int r = ctl(e[i], EPOLL_CTL_ADD, e[i + 1], EPOLLIN, i);
    printf("link from the top %d: %d %s\n", 7 - i, r, r ? strerrorname_np(errno) : "");
  }
  for (int i = 0; i < 8; i++) close(e[i]);
  for (int i = 0; i < 8; i++) e[i] = epoll_create1(0);
  /* Two chains of two joined in the middle. */
  CHECK(ctl(e[0], EPOLL_CTL_ADD, e[1], EPOLLIN, 0));
  CHECK(ctl(e[1], EPOLL_CTL_ADD, e[2], EPOLLIN, 0));
  CHECK(ctl(e[3], EPOLL_CTL_ADD, e[4], EPOLLIN, 0));
  CHECK(ctl(e[4], EPOLL_CTL_ADD, e[5], EPOLLIN, 0));
  CHECK(ctl(e[2], EPOLL_CTL_ADD, e[3], EPOLLIN, 0));
  CHECK(ctl(e[2], EPOLL_CTL_ADD, e[4], EPOLLIN, 0));
  CHECK(ctl(e[1], EPOLL_CTL_ADD, e[4], EPOLLIN, 0));
  /* An event at the bottom of the longest chain allowed reaches the
   * top. */
  int ev = eventfd(0, 0);
  CHECK(ctl(e[5], EPOLL_CTL_ADD, ev, EPOLLIN, 9));
  uint64_t one = 1;
  write(ev, &one, 8);
  show("top", e[0]);
  show("e1", e[1]);
  show("bottom", e[5]);
  for (int i = 0; i < 8; i++) close(e[i]);
  close(ev);
}

static void paths(void) {
  printf("-- wakeup paths\n");
  int p[2];
  pipe(p);
  int top = epoll_create1(0);
  int eps[520];
  int failed = -1;
  /* Each instance watched by `top` and watching the pipe is a path of
   * length 2 from the pipe: 500 are allowed. */
  for (int i = 0; i < 510; i++) {
    eps[i] = epoll_create1(0);
    if (ctl(top, EPOLL_CTL_ADD, eps[i], EPOLLIN, i) < 0) {
      printf("add instance %d: %s\n", i, strerrorname_np(errno));
      break;
    }
    if (ctl(eps[i], EPOLL_CTL_ADD, p[0], EPOLLIN, i) < 0) {
      printf("add pipe to instance %d: %s\n", i, strerrorname_np(errno));
      failed = i;
      break;
    }
  }
  printf("first refused: %d\n", failed);
  for (int i = 0; i <= failed; i++) close(eps[i]);
  /* The other way round: the pipe first, then the instance. */
  failed = -1;
  for (int i = 0; i < 510; i++) {
    eps[i] = epoll_create1(0);
    ctl(eps[i], EPOLL_CTL_ADD, p[0], EPOLLIN, i);
    if (ctl(top, EPOLL_CTL_ADD, eps[i], EPOLLIN, i) < 0) {
      printf("add instance %d: %s\n", i, strerrorname_np(errno));
      failed = i;
      break;
    }
  }
  printf("first refused: %d\n", failed);
  for (int i = 0; i <= failed; i++) close(eps[i]);
  /* Paths of length 1 are not limited. */
  int n = 0;
  for (int i = 0; i < 1100; i++) {
    int e = epoll_create1(0);
    if (e < 0) break;
    if (ctl(e, EPOLL_CTL_ADD, p[1], EPOLLOUT, 0) == 0) n++;
    eps[i % 520] = e;
    if (i >= 519) close(eps[(i + 1) % 520]);
  }
  printf("length-1 paths added: %d\n", n);
  close(top);
  close(p[0]);
  close(p[1]);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  readiness();
  loops();
  chains();
  paths();
  return 0;
}
