/* Many TCP connections: a listener whose backlog fills (the connections
 * past backlog+1 stay unanswered, never refused, and complete once the
 * queue drains), then 1,000 clients served by one epoll loop (level- and
 * edge-triggered), then a peer that vanishes mid-conversation. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

#define N 1000

static struct sockaddr_in v4(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static int writable(int fd, int ms) {
  struct pollfd p = {fd, POLLOUT, 0};
  return poll(&p, 1, ms) == 1 && (p.revents & POLLOUT);
}

static void full_backlog(void) {
  printf("-- full backlog\n");
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = v4(8100);
  bind(l, (struct sockaddr *)&a, sizeof a);
  CHECK(listen(l, 2));
  int c[8];
  int refused = 0;
  for (int i = 0; i < 8; i++) {
    c[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (connect(c[i], (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) refused++;
  }
  usleep(100000);
  int up = 0;
  for (int i = 0; i < 8; i++) up += writable(c[i], 0);
  printf("refused %d, connected before accept: %d\n", refused, up);
  /* Accepting makes room: a retried SYN gets in (Linux retries after
   * one second, then three: how many arrive in a time depends on the
   * timing, so only the first one is counted). */
  int accepted = 0;
  while (accepted < up + 1) {
    struct pollfd p = {l, POLLIN, 0};
    if (poll(&p, 1, 10000) != 1) break;
    int s = accept(l, NULL, NULL);
    if (s >= 0) {
      accepted++;
      close(s);
    }
  }
  printf("one more accepted after making room: %s\n", accepted == up + 1 ? "yes" : "no");
  for (int i = 0; i < 8; i++) close(c[i]);
  close(l);
}

static void many(int edge) {
  printf("-- %d clients, %s-triggered\n", N, edge ? "edge" : "level");
  int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = v4(8200 + edge);
  CHECK(bind(l, (struct sockaddr *)&a, sizeof a));
  CHECK(listen(l, 4096));
  int ep = epoll_create1(0);
  struct epoll_event ev = {EPOLLIN, {.fd = l}};
  epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
  static int cl[N];
  for (int i = 0; i < N; i++) {
    cl[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (connect(cl[i], (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
      printf("connect %d: %s\n", i, strerrorname_np(errno));
      return;
    }
  }
  int accepted = 0, echoed = 0, sent = 0, answered = 0;
  for (int i = 0; i < N; i++) {
    if (!writable(cl[i], 1000)) {
      printf("client %d never connected\n", i);
      return;
    }
    if (send(cl[i], "ping", 4, 0) == 4) sent++;
  }
  while (echoed < N) {
    struct epoll_event evs[64];
    int n = epoll_wait(ep, evs, 64, 2000);
    if (n <= 0) break;
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == l) {
        for (;;) {
          int s = accept4(l, NULL, NULL, SOCK_NONBLOCK);
          if (s < 0) break;
          accepted++;
          struct epoll_event e2 = {EPOLLIN | (edge ? EPOLLET : 0), {.fd = s}};
          epoll_ctl(ep, EPOLL_CTL_ADD, s, &e2);
        }
        continue;
      }
      char b[16];
      for (;;) {
        ssize_t r = read(fd, b, sizeof b);
        if (r > 0) {
          if (write(fd, b, r) == r) echoed++;
          continue;
        }
        if (r == 0) {
          close(fd);
        }
        break;
      }
    }
  }
  for (int i = 0; i < N; i++) {
    char b[16];
    struct pollfd p = {cl[i], POLLIN, 0};
    if (poll(&p, 1, 1000) == 1 && read(cl[i], b, sizeof b) == 4) answered++;
    close(cl[i]);
  }
  printf("sent %d accepted %d echoed %d answered %d\n", sent, accepted, echoed, answered);
  close(ep);
  close(l);
}

static void vanishing_peer(void) {
  printf("-- vanishing peer\n");
  int l = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = v4(8300);
  bind(l, (struct sockaddr *)&a, sizeof a);
  listen(l, 1);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (struct sockaddr *)&a, sizeof a);
    write(c, "bye", 3);
    /* Exiting with the connection open closes it: a FIN. */
    _exit(0);
  }
  int s = accept(l, NULL, NULL);
  int st;
  waitpid(pid, &st, 0);
  char b[8];
  CHECK(read(s, b, sizeof b));
  CHECK(read(s, b, sizeof b));
  signal(SIGPIPE, SIG_IGN);
  /* The first write after the peer is gone draws a reset; the next one
   * fails. */
  CHECK(write(s, "x", 1));
  usleep(20000);
  CHECK(write(s, "y", 1));
  CHECK(write(s, "z", 1));
  close(s);
  close(l);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  struct rlimit r = {4096, 4096};
  CHECK(setrlimit(RLIMIT_NOFILE, &r));
  full_backlog();
  many(0);
  many(1);
  vanishing_peer();
  return 0;
}
