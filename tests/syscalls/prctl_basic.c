/* prctl: names, death signal, dumpable, no_new_privs, keepcaps, errors. */
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

int main(void) {
  char name[32] = {0};
  CHECK(prctl(PR_SET_NAME, "conform-name", 0, 0, 0));
  CHECK(prctl(PR_GET_NAME, name, 0, 0, 0));
  printf("name=%s\n", name);
  CHECK(prctl(PR_SET_NAME, "a-very-long-thread-name-indeed", 0, 0, 0));
  CHECK(prctl(PR_GET_NAME, name, 0, 0, 0));
  printf("name=%s len=%zu\n", name, strlen(name));
  CHECK(prctl(PR_GET_NAME, (char *)1, 0, 0, 0));

  int sig = -1;
  CHECK(prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0));
  printf("pdeathsig=%d\n", sig);
  CHECK(prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0));
  CHECK(prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0));
  printf("pdeathsig=%d\n", sig);
  CHECK(prctl(PR_SET_PDEATHSIG, 99, 0, 0, 0));
  CHECK(prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0));

  CHECK(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
  CHECK(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0));
  CHECK(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
  CHECK(prctl(PR_SET_DUMPABLE, 2, 0, 0, 0));
  CHECK(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0));

  CHECK(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
  CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
  CHECK(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
  CHECK(prctl(PR_SET_KEEPCAPS, 5, 0, 0, 0));

  CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  CHECK(prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0));
  CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  CHECK(prctl(PR_GET_NO_NEW_PRIVS, 1, 0, 0, 0));

  int reaper = -1;
  CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
  CHECK(prctl(PR_GET_CHILD_SUBREAPER, &reaper, 0, 0, 0));
  printf("subreaper=%d\n", reaper);

  CHECK(prctl(PR_CAPBSET_READ, 0, 0, 0, 0));
  CHECK(prctl(PR_CAPBSET_READ, 1000, 0, 0, 0));
  CHECK(prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
  CHECK(prctl(12345, 0, 0, 0, 0));
  return 0;
}
