/* Process creation with a new image: fork, execve of a tiny static
 * program (true_static), wait. Prints nanoseconds per fork + exec + exit
 * + wait. Usage: fork_exec PROGRAM N */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: fork_exec PROGRAM [N]\n");
    return 2;
  }
  const char *prog = argv[1];
  long n = argc > 2 ? atol(argv[2]) : 200;
  char *av[] = {(char *)prog, NULL};
  char *ev[] = {NULL};
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    pid_t c = fork();
    if (c < 0) return 1;
    if (c == 0) {
      execve(prog, av, ev);
      _exit(127);
    }
    int st;
    if (waitpid(c, &st, 0) != c || st != 0) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
  printf("%.0f\n", ns / n);
  return 0;
}
