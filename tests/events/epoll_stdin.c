/* Waits in epoll on standard input, a pipe the test writes to in pieces
 * and then closes: each piece is reported readable and read whole, the
 * close is a hangup with nothing left to read. Standard input is a host
 * fd in the sandbox, watched through the sentry's host event loop. */
#include <stdio.h>
#include <sys/epoll.h>
#include <unistd.h>

int main(void) {
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = 7};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) != 0) {
    perror("epoll_ctl");
    return 1;
  }
  for (int i = 0; i < 10; i++) {
    struct epoll_event out;
    int n = epoll_wait(ep, &out, 1, 20000);
    if (n != 1) {
      printf("wait: %d\n", n);
      return 1;
    }
    char buf[256];
    ssize_t r = read(0, buf, sizeof buf - 1);
    buf[r > 0 ? r : 0] = 0;
    printf("data %llu events %#x read %zd: %s", (unsigned long long)out.data.u64, out.events, r,
           r > 0 ? buf : "(eof)\n");
    fflush(stdout);
    if (r <= 0) break;
  }
  return 0;
}
