/* Process creation: fork, the child _exits at once, the parent waits for
 * it. Prints nanoseconds per fork + exit + wait. Usage: fork_wait N */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    pid_t c = fork();
    if (c < 0) return 1;
    if (c == 0) _exit(0);
    int st;
    if (waitpid(c, &st, 0) != c || st != 0) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
  printf("%.0f\n", ns / n);
  return 0;
}
