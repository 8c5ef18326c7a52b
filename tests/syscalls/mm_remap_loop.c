/* A buffer mapped, touched and unmapped at the same address many times
 * (a malloc/free loop above the mmap threshold), and a page protected
 * and unprotected around writes: every fault is a new one, not a fault
 * that repeats. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "check.h"

int main(void) {
  char *first = NULL;
  int same = 0;
  long sum = 0;
  for (int i = 0; i < 300; i++) {
    char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    if (!first) first = p;
    if (p == first) same++;
    p[0] = (char)i;
    p[(1 << 20) - 1] = 1;
    sum += p[0] + p[(1 << 20) - 1];
    munmap(p, 1 << 20);
  }
  printf("mapped 300 times, at one address %s, sum %ld\n", same > 64 ? "more than 64 times" : "rarely", sum);
  for (int i = 0; i < 200; i++) {
    void *q = malloc(512 << 10);
    memset(q, i, 512 << 10);
    free(q);
  }
  printf("malloc/free above the threshold: ok\n");
  char *r = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (int i = 0; i < 200; i++) {
    mprotect(r, 4096, PROT_READ | PROT_WRITE);
    r[i] = 1;
    mprotect(r, 4096, PROT_READ);
  }
  printf("protect/unprotect around writes: %d\n", r[0] + r[199]);
  return 0;
}
