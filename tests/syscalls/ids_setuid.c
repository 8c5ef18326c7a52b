/* Changing credentials, and permission checks by them on /tmp. */
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

static void ids(void) {
  uid_t r, e, s;
  gid_t gr, ge, gs;
  getresuid(&r, &e, &s);
  getresgid(&gr, &ge, &gs);
  printf("uids %u %u %u gids %u %u %u fsuid %ld\n", r, e, s, gr, ge, gs,
         syscall(SYS_setfsuid, -1));
}

int main(void) {
  ids();
  int fd = open("/tmp/secret", O_CREAT | O_WRONLY, 0600);
  CHECK(write(fd, "x", 1));
  close(fd);
  CHECK(mkdir("/tmp/pub", 01777));
  CHECK(chmod("/tmp/pub", 01777));
  CHECK(open("/tmp/pub/rootfile", O_CREAT | O_WRONLY, 0644) >= 0 ? 0 : -1);
  gid_t groups[2] = {5, 7};
  CHECK(setgroups(2, groups));
  CHECK(getgroups(0, NULL));
  CHECK(setresgid(100, 100, 100));
  CHECK(syscall(SYS_setresuid, 1000, 1000, 0));
  ids();
  CHECK(open("/tmp/secret", O_RDONLY));
  CHECK(access("/tmp/secret", R_OK));
  CHECK(open("/tmp/pub/mine", O_CREAT | O_WRONLY, 0644) >= 0 ? 0 : -1);
  CHECK(unlink("/tmp/pub/rootfile"));
  CHECK(unlink("/tmp/pub/mine"));
  CHECK(mkdir("/tmp/notmine", 0755));
  CHECK(setgroups(0, NULL));
  /* Back to root through the saved uid. */
  CHECK(syscall(SYS_setresuid, 0, 0, 0));
  ids();
  CHECK(open("/tmp/secret", O_RDONLY) >= 0 ? 0 : -1);
  /* setuid as root sets all three. */
  CHECK(setuid(2000));
  ids();
  CHECK(setuid(0));
  CHECK(seteuid(0));
  CHECK(setreuid(-1, 2000));
  CHECK(setgid(3000));
  CHECK(syscall(SYS_setfsuid, 5));
  ids();
  CHECK(setuid(-1));
  return 0;
}
