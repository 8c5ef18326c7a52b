/* Process creation with a new image: fork, execve of a static program,
 * wait. Prints nanoseconds per fork + exec + exit + wait. Usage:
 * fork_exec PROGRAM N, where PROGRAM "self" execs this program itself
 * through /proc/self/exe (told to exit at once), which works in a sandbox
 * that has no host files. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc == 2 && argv[1][0] == '-')
    return 0; /* the exec'd image: exit at once */
  if (argc < 2) {
    fprintf(stderr, "usage: fork_exec PROGRAM [N]\n");
    return 2;
  }
  int self = argv[1][0] == 's' && argv[1][1] == 'e';
  const char *prog = self ? "/proc/self/exe" : argv[1];
  long n = argc > 2 ? atol(argv[2]) : 200;
  char *av[] = {(char *)prog, self ? "-" : NULL, NULL};
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
