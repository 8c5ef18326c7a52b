#include <stdio.h>
int add(int, int);
int mul(int, int);
int main(void) {
  printf("add=%d mul=%d\n", add(2, 3), mul(4, 5));
  return 0;
}
