/* A terminal's round trip: a byte written to a pseudo-terminal's master
 * is echoed by the line discipline (ECHO, canonical mode off) and read
 * back from the master, while a child reads it on the replica. Prints
 * nanoseconds per round trip. Usage: pty_echo N */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 10000;
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  if (m < 0 || grantpt(m) || unlockpt(m)) return 1;
  int r = open(ptsname(m), O_RDWR | O_NOCTTY);
  if (r < 0) return 1;
  struct termios t;
  if (tcgetattr(r, &t)) return 1;
  t.c_lflag &= ~(ICANON | ISIG | IEXTEN);
  t.c_lflag |= ECHO;
  t.c_iflag &= ~(ICRNL | IXON);
  t.c_oflag &= ~OPOST;
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  if (tcsetattr(r, TCSANOW, &t)) return 1;
  pid_t c = fork();
  if (c < 0) return 1;
  if (c == 0) {
    char b;
    close(m);
    for (long i = 0; i < n; i++)
      if (read(r, &b, 1) != 1) _exit(1);
    _exit(0);
  }
  char b = 'x';
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++) {
    if (write(m, &b, 1) != 1 || read(m, &b, 1) != 1) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int st;
  waitpid(c, &st, 0);
  double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
  printf("%.0f\n", ns / n);
  return 0;
}
