/* ioctl on files that are not terminals: TCGETS and TIOCGWINSZ answer
 * ENOTTY; the generic FIONBIO, FIOCLEX, FIONCLEX and FIONREAD work on any
 * file. Standard input is a regular file of 39 bytes, standard output a
 * pipe. */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>
#include "check.h"

#define BAD ((void *)8)

int main(void) {
  /* Natively the harness may leak descriptors past 2; start clean. */
  for (int fd = 3; fd < 1024; fd++)
    close(fd);
  struct termios tio;
  struct winsize ws;
  int on, n;
  char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ro == MAP_FAILED)
    return 1;

  printf("-- terminal requests\n");
  CHECK(ioctl(0, TCGETS, &tio));
  CHECK(ioctl(1, TCGETS, &tio));
  CHECK(ioctl(0, TCGETS, BAD));
  CHECK(ioctl(0, TIOCGWINSZ, &ws));
  CHECK(ioctl(1, TIOCGWINSZ, &ws));
  CHECK(ioctl(0, TIOCGWINSZ, NULL));
  CHECK(ioctl(0, TCSETS, &tio));
  CHECK(ioctl(0, TIOCGPGRP, &n));
  CHECK(isatty(0));
  CHECK(isatty(1));
  CHECK(ioctl(-1, TCGETS, &tio));
  CHECK(ioctl(-1, TIOCGWINSZ, &ws));
  CHECK(ioctl(99, TCGETS, &tio));
  CHECK(ioctl(0, 0x12345678, 0));
  CHECK(ioctl(-1, 0x12345678, 0));

  printf("-- FIONBIO\n");
  on = 1;
  CHECK(ioctl(0, FIONBIO, &on));
  EXPECT(fcntl(0, F_GETFL) & O_NONBLOCK);
  on = 0;
  CHECK(ioctl(0, FIONBIO, &on));
  EXPECT(fcntl(0, F_GETFL) & O_NONBLOCK);
  on = 42;
  CHECK(ioctl(0, FIONBIO, &on));
  EXPECT(fcntl(0, F_GETFL) & O_NONBLOCK);
  CHECK(ioctl(0, FIONBIO, NULL));
  CHECK(ioctl(0, FIONBIO, BAD));
  CHECK(ioctl(0, FIONBIO, ro)); /* read-only memory is fine to read */
  EXPECT(fcntl(0, F_GETFL) & O_NONBLOCK);
  CHECK(ioctl(-1, FIONBIO, &on));
  CHECK(ioctl(-1, FIONBIO, NULL));

  printf("-- FIOCLEX/FIONCLEX\n");
  CHECK(ioctl(0, FIOCLEX));
  CHECK(fcntl(0, F_GETFD));
  CHECK(ioctl(0, FIOCLEX, BAD)); /* the argument is unused */
  CHECK(ioctl(0, FIONCLEX));
  CHECK(fcntl(0, F_GETFD));
  CHECK(ioctl(1, FIOCLEX));
  CHECK(fcntl(1, F_GETFD));
  CHECK(ioctl(1, FIONCLEX));
  CHECK(ioctl(-1, FIOCLEX));
  CHECK(ioctl(-1, FIONCLEX));
  CHECK(ioctl(40, FIOCLEX));
  int d = dup(0);
  CHECK(ioctl(d, FIOCLEX));
  CHECK(fcntl(d, F_GETFD));
  CHECK(fcntl(0, F_GETFD));

  printf("-- FIONREAD\n");
  n = -1;
  CHECK(ioctl(0, FIONREAD, &n));
  printf("n=%d\n", n);
  CHECK(lseek(0, 30, SEEK_SET));
  CHECK(ioctl(0, FIONREAD, &n));
  printf("n=%d\n", n);
  CHECK(lseek(0, 100, SEEK_SET));
  CHECK(ioctl(0, FIONREAD, &n));
  printf("n=%d\n", n);
  CHECK(ioctl(0, FIONREAD, NULL));
  CHECK(ioctl(0, FIONREAD, ro));
  CHECK(ioctl(-1, FIONREAD, &n));
  CHECK(lseek(0, 0, SEEK_SET));
  return 0;
}
