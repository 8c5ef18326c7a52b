/* cflags: -static -pthread */
/* unshare: a thread that unshares its fd table or its working directory
 * stops seeing the other threads' changes, and they its; what cannot be
 * unshared with other threads around fails. */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"

static int opened = -1;
static int cwd_len;

static void *unsharer(void *arg) {
  (void)arg;
  CHECK(unshare(CLONE_FILES));
  opened = open("/tmp", O_RDONLY);
  CHECK(unshare(CLONE_FS));
  CHECK(chdir("/tmp/sub"));
  char b[64];
  cwd_len = getcwd(b, sizeof b) ? (int)strlen(b) : -1;
  CHECK(unshare(CLONE_THREAD));
  CHECK(unshare(CLONE_VM));
  return NULL;
}

int main(void) {
  mkdir("/tmp/sub", 0755);
  CHECK(chdir("/"));
  pthread_t t;
  pthread_create(&t, NULL, unsharer, NULL);
  pthread_join(t, NULL);
  printf("thread opened an fd: %d\n", opened >= 0);
  CHECK(fcntl(opened, F_GETFD)); /* not in our table */
  char b[64];
  printf("our cwd: %s, thread's had length %d\n", getcwd(b, sizeof b), cwd_len);
  CHECK(unshare(0x1));
  CHECK(unshare(CLONE_FILES | CLONE_FS | CLONE_SYSVSEM));
  rmdir("/tmp/sub");
  return 0;
}
