/* epoll_wait with many idle files and one active: 1,000 idle pipes and
 * one that is written each round; a round is write one byte, epoll_wait
 * (which reports the active pipe), read the byte. Prints nanoseconds per
 * round. Usage: epoll_wait N [IDLE]. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 10000;
  int idle = argc > 2 ? atoi(argv[2]) : 1000;
  struct rlimit rl = {2 * idle + 64, 2 * idle + 64};
  setrlimit(RLIMIT_NOFILE, &rl);
  int ep = epoll_create1(0);
  for (int i = 0; i < idle; i++) {
    int p[2];
    if (pipe(p)) return 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev)) return 1;
  }
  int a[2];
  if (pipe(a)) return 1;
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1u << 31};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, a[0], &ev)) return 1;
  char c = 'x';
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++) {
    if (write(a[1], &c, 1) != 1) return 1;
    struct epoll_event out[8];
    if (epoll_wait(ep, out, 8, -1) != 1 || out[0].data.u64 != 1u << 31) return 1;
    if (read(a[0], &c, 1) != 1) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
  printf("%.0f\n", ns / n);
  return 0;
}
