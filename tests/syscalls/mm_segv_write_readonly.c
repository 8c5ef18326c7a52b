/* A write to a page made read-only kills the process with SIGSEGV; the
 * data written before stays readable. */
#include <sys/mman.h>
#include <unistd.h>
#include "check.h"

int main(void) {
  char *p = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  strcpy(p, "written before");
  p[4096] = 'w';
  CHECK(mprotect(p, 4096, PROT_READ));
  printf("%s\n", p);
  /* The other page is still writable. */
  p[4096] = 'x';
  printf("%c\n", p[4096]);
  fflush(stdout);
  volatile char *v = p;
  v[10] = 'X';
  printf("not reached\n");
  return 0;
}
