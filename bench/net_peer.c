/* Both ends of the connection benchmarks of bench/net_veth.sh, the server
 * in the sandbox and the client across the veth.
 *
 *   net_peer serve-close PORT     accept, close at once, again
 *   net_peer serve-echo PORT      accept, echo until EOF, again
 *   net_peer connect ADDR PORT N  N times: connect, wait for the server's
 *                                 close, close; prints connections/s
 *   net_peer pingpong ADDR PORT N one connection, TCP_NODELAY, N 1-byte
 *                                 round trips; prints ns per round trip
 *
 * The servers take one connection at a time: every client here is
 * serial. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static int serve(int port, int echo) {
  int one = 1;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 128)) {
    perror("bind/listen");
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  for (;;) {
    int c = accept(l, NULL, NULL);
    if (c < 0) continue;
    if (echo) {
      char buf[4096];
      ssize_t r;
      setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      while ((r = read(c, buf, sizeof buf)) > 0)
        if (write(c, buf, r) != r) break;
    }
    close(c);
  }
}

static int dial(struct sockaddr_in *a) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0 || connect(s, (struct sockaddr *)a, sizeof *a)) {
    perror("connect");
    exit(1);
  }
  return s;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "serve-close")) return serve(atoi(argv[2]), 0);
  if (argc == 3 && !strcmp(argv[1], "serve-echo")) return serve(atoi(argv[2]), 1);
  if (argc != 5) {
    fprintf(stderr, "usage: see the head of net_peer.c\n");
    return 2;
  }
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(atoi(argv[3]));
  if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) return 2;
  long n = atol(argv[4]);
  if (!strcmp(argv[1], "connect")) {
    double t = now();
    for (long i = 0; i < n; i++) {
      int s = dial(&a);
      char b;
      if (read(s, &b, 1) != 0) {
        fprintf(stderr, "server did not close\n");
        return 1;
      }
      close(s);
    }
    printf("%.0f\n", n / ((now() - t) / 1e9));
    return 0;
  }
  if (!strcmp(argv[1], "pingpong")) {
    int one = 1;
    int s = dial(&a);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b = 'x';
    /* a few round trips before the clock starts */
    for (int i = 0; i < 100; i++)
      if (write(s, &b, 1) != 1 || read(s, &b, 1) != 1) return 1;
    double t = now();
    for (long i = 0; i < n; i++)
      if (write(s, &b, 1) != 1 || read(s, &b, 1) != 1) {
        perror("pingpong");
        return 1;
      }
    printf("%.0f\n", (now() - t) / n);
    return 0;
  }
  return 2;
}
