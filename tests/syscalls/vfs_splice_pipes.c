/* splice and tee between two pipes. */
#include <fcntl.h>
#include <unistd.h>
#include "check.h"

int main(void) {
  int a[2], b[2];
  CHECK(pipe(a));
  CHECK(pipe(b));
  char buf[64] = {0};
  CHECK(write(a[1], "hello world", 11));
  CHECK(tee(a[0], b[1], 5, 0));
  CHECK(read(b[0], buf, sizeof buf));
  printf("tee copied: %s\n", buf);
  CHECK(splice(a[0], NULL, b[1], NULL, 100, 0));
  memset(buf, 0, sizeof buf);
  CHECK(read(b[0], buf, sizeof buf));
  printf("splice moved: %s\n", buf);
  CHECK(tee(a[0], b[1], 5, SPLICE_F_NONBLOCK));
  CHECK(splice(a[0], NULL, b[1], NULL, 5, SPLICE_F_NONBLOCK));
  CHECK(tee(a[0], a[1], 5, 0));
  int f = open("/tmp/f", O_CREAT | O_RDWR, 0600);
  CHECK(tee(a[0], f, 5, 0));
  CHECK(tee(f, b[1], 5, 0));
  CHECK(tee(a[0], b[1], 5, 0x100));
  close(a[1]);
  CHECK(splice(a[0], NULL, b[1], NULL, 5, 0));
  CHECK(tee(a[0], b[1], 5, 0));
  return 0;
}
