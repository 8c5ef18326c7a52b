/* Cross-process wakeups: parent and child pass one byte back and forth
 * over two pipes. Prints nanoseconds per round trip (two writes, two
 * reads, two wakeups). Usage: pipe_pingpong N */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 10000;
  int ping[2], pong[2];
  if (pipe(ping) || pipe(pong)) return 1;
  pid_t c = fork();
  if (c < 0) return 1;
  if (c == 0) {
    char b;
    close(ping[1]);
    close(pong[0]);
    while (read(ping[0], &b, 1) == 1)
      if (write(pong[1], &b, 1) != 1) _exit(1);
    _exit(0);
  }
  close(ping[0]);
  close(pong[1]);
  char b = 'x';
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++) {
    if (write(ping[1], &b, 1) != 1 || read(pong[0], &b, 1) != 1) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  close(ping[1]);
  int st;
  waitpid(c, &st, 0);
  double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
  printf("%.0f\n", ns / n);
  return 0;
}
