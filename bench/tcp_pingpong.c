/* TCP loopback ping-pong: parent and child pass one byte back and forth
 * over a 127.0.0.1 connection with TCP_NODELAY. Prints nanoseconds per
 * round trip. Usage: tcp_pingpong N */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 10000;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1)) return 1;
  getsockname(l, (struct sockaddr *)&a, &al);
  int one = 1;
  pid_t c = fork();
  if (c < 0) return 1;
  if (c == 0) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&a, sizeof a)) _exit(1);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b;
    while (read(s, &b, 1) == 1)
      if (write(s, &b, 1) != 1) _exit(1);
    _exit(0);
  }
  int s = accept(l, NULL, NULL);
  if (s < 0) return 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char b = 'x';
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++) {
    if (write(s, &b, 1) != 1 || read(s, &b, 1) != 1) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  shutdown(s, SHUT_WR);
  int st;
  waitpid(c, &st, 0);
  double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
  printf("%.0f\n", ns / n);
  return 0;
}
