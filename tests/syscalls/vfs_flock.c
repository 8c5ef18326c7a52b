/* flock: shared and exclusive locks held by open file descriptions,
 * conversion, LOCK_NB, release by LOCK_UN and by the last close, and the
 * errors. Two opens of one file are two descriptions; dup shares one. */
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include "check.h"

int main(void) {
  int a = open("/tmp/f", O_CREAT | O_RDWR, 0644);
  int b = open("/tmp/f", O_RDWR);
  int c = open("/tmp/f", O_RDONLY);
  EXPECT(a >= 0 && b >= 0 && c >= 0);

  CHECK(flock(a, LOCK_SH));
  CHECK(flock(b, LOCK_SH | LOCK_NB));
  CHECK(flock(c, LOCK_EX | LOCK_NB));
  CHECK(flock(a, LOCK_SH | LOCK_NB));
  /* Converting drops the old lock first: b loses its shared lock. */
  CHECK(flock(b, LOCK_EX | LOCK_NB));
  CHECK(flock(a, LOCK_EX | LOCK_NB));
  CHECK(flock(b, LOCK_SH | LOCK_NB));
  CHECK(flock(c, LOCK_SH | LOCK_NB));

  /* A dup shares the lock; closing it keeps the lock. */
  int d = dup(a);
  CHECK(flock(d, LOCK_EX | LOCK_NB));
  CHECK(close(d));
  CHECK(flock(b, LOCK_EX | LOCK_NB));
  d = dup(a);
  CHECK(flock(d, LOCK_UN));
  CHECK(flock(b, LOCK_EX | LOCK_NB));
  CHECK(flock(a, LOCK_SH | LOCK_NB));
  CHECK(flock(b, LOCK_UN));
  CHECK(flock(b, LOCK_UN));

  /* The last close of a description releases its lock. */
  CHECK(flock(c, LOCK_EX | LOCK_NB));
  CHECK(flock(a, LOCK_SH | LOCK_NB));
  CHECK(close(c));
  CHECK(flock(a, LOCK_SH | LOCK_NB));
  CHECK(flock(d, LOCK_UN));

  /* Any access mode will do; directories too. */
  int w = open("/tmp/f", O_WRONLY);
  CHECK(flock(w, LOCK_SH | LOCK_NB));
  CHECK(flock(w, LOCK_UN));
  int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
  CHECK(flock(dir, LOCK_EX | LOCK_NB));
  int dir2 = open("/tmp", O_RDONLY | O_DIRECTORY);
  CHECK(flock(dir2, LOCK_SH | LOCK_NB));
  CHECK(close(dir));
  CHECK(flock(dir2, LOCK_SH | LOCK_NB));

  /* flock and record locks do not see each other. */
  CHECK(flock(a, LOCK_EX | LOCK_NB));
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  CHECK(fcntl(b, F_OFD_SETLK, &fl));
  CHECK(flock(b, LOCK_SH | LOCK_NB));

  /* Errors. */
  CHECK(flock(a, 0));
  CHECK(flock(a, LOCK_NB));
  CHECK(flock(a, LOCK_SH | LOCK_EX));
  CHECK(flock(a, LOCK_SH | LOCK_UN));
  CHECK(flock(a, 64));
  CHECK(flock(-1, LOCK_SH));
  CHECK(flock(99, LOCK_SH));
  CHECK(flock(-1, 99));
  CHECK(flock(a, 32));
  CHECK(flock(-1, 32));
  int p = open("/tmp/f", O_PATH);
  CHECK(flock(p, LOCK_SH));
  CHECK(flock(p, LOCK_UN));
  int pp[2];
  CHECK(pipe(pp));
  CHECK(flock(pp[0], LOCK_EX | LOCK_NB));
  CHECK(flock(pp[1], LOCK_EX | LOCK_NB));
  return 0;
}
