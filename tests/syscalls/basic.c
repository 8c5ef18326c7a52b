/* The smallest case: write, exit status, argv and environment. */
#include <unistd.h>
#include "check.h"

int main(int argc, char **argv, char **envp) {
  CHECK(write(1, "hello\n", 6));
  printf("argc=%d\n", argc);
  printf("CONFORMANCE=%s\n", getenv("CONFORMANCE"));
  int n = 0;
  for (char **e = envp; *e; e++) n++;
  printf("env count=%d\n", n);
  fflush(stdout);
  return 7;
}
