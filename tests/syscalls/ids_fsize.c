/* RLIMIT_FSIZE: a write that would pass it is cut at the limit, one at
 * the limit fails with EFBIG and raises SIGXFSZ (ignored here, then
 * deadly in a child), and truncate past it does the same. */
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

int main(void) {
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit rl = {10000, RLIM_INFINITY};
  CHECK(setrlimit(RLIMIT_FSIZE, &rl));
  int fd = open("/tmp/fsize", O_CREAT | O_RDWR | O_TRUNC, 0644);
  static char buf[8192];
  CHECK(write(fd, buf, sizeof buf));
  CHECK(write(fd, buf, sizeof buf)); /* cut at 10000 */
  CHECK(write(fd, buf, 1));          /* at the limit */
  CHECK(pwrite(fd, buf, 10, 9995));
  CHECK(pwrite(fd, buf, 10, 20000));
  CHECK(ftruncate(fd, 5000));
  CHECK(ftruncate(fd, 20000));
  CHECK(lseek(fd, 0, SEEK_END));
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    signal(SIGXFSZ, SIG_DFL);
    lseek(fd, 10000, SEEK_SET);
    write(fd, buf, 1);
    _exit(0);
  }
  int st;
  waitpid(c, &st, 0);
  printf("child: signaled=%d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));
  close(fd);
  unlink("/tmp/fsize");
  return 0;
}
