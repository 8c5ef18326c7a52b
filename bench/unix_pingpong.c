/* Unix stream ping-pong: parent and child pass one byte back and forth
 * over a socketpair. Prints nanoseconds per round trip (two sends, two
 * receives, two wakeups). Usage: unix_pingpong N */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 10000;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
  pid_t c = fork();
  if (c < 0) return 1;
  if (c == 0) {
    char b;
    close(sv[0]);
    while (read(sv[1], &b, 1) == 1)
      if (write(sv[1], &b, 1) != 1) _exit(1);
    _exit(0);
  }
  close(sv[1]);
  char b = 'x';
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++) {
    if (write(sv[0], &b, 1) != 1 || read(sv[0], &b, 1) != 1) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  shutdown(sv[0], SHUT_WR);
  int st;
  waitpid(c, &st, 0);
  double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
  printf("%.0f\n", ns / n);
  return 0;
}
