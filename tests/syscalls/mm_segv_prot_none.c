/* Reading a PROT_NONE page kills the process with SIGSEGV. */
#include <sys/mman.h>
#include <unistd.h>
#include "check.h"

int main(void) {
  char *p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(p, 'a', 3 * 4096);
  CHECK(mprotect(p + 4096, 4096, PROT_NONE));
  printf("%c %c\n", p[4095], p[2 * 4096]);
  fflush(stdout);
  volatile char *v = p + 4096;
  printf("%c\n", v[0]);
  printf("not reached\n");
  return 0;
}
