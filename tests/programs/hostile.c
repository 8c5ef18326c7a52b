/* Hostile inputs that once hurt the sentry: each subcommand makes the
 * calls and prints what they returned, so that a run in the sandbox can be
 * compared with a native one. */
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <termios.h>
#include <unistd.h>
#include "check.h"

/* TCGETS and TCSETS* pass the kernel's 36-byte struct termios: nothing
 * past it may be written. */
static int termios_case(void) {
  struct {
    unsigned char tio[36];
    unsigned char canary[64];
  } buf;
  memset(buf.tio, 0, sizeof buf.tio);
  memset(buf.canary, 0xa5, sizeof buf.canary);
  CHECK(syscall(SYS_ioctl, 0, TCGETS, &buf));
  int intact = 1;
  for (size_t i = 0; i < sizeof buf.canary; i++)
    intact &= buf.canary[i] == 0xa5;
  EXPECT(intact);
  /* What glibc's tcgetattr makes of it matches the raw struct. */
  struct termios t;
  CHECK(tcgetattr(0, &t));
  uint32_t lflag;
  memcpy(&lflag, buf.tio + 12, 4);
  EXPECT(lflag == t.c_lflag);
  EXPECT(buf.tio[17 + VINTR] == t.c_cc[VINTR]);
  /* A change made with TCSETS is seen by TCGETS. */
  unsigned char changed[36];
  memcpy(changed, buf.tio, 36);
  changed[17 + VINTR] = 7;
  CHECK(syscall(SYS_ioctl, 0, TCSETS, changed));
  CHECK(tcgetattr(0, &t));
  printf("VINTR=%d\n", t.c_cc[VINTR]);
  CHECK(syscall(SYS_ioctl, 0, TCSETSW, buf.tio));
  CHECK(tcgetattr(0, &t));
  EXPECT(t.c_cc[VINTR] == buf.tio[17 + VINTR]);
  CHECK(syscall(SYS_ioctl, 0, TCSETSF, (void *)8));
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc < 2)
    return 2;
  if (!strcmp(argv[1], "termios"))
    return termios_case();
  return 2;
}
