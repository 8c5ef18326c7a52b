/* getrlimit, setrlimit, prlimit64: round trips, the checks (cur > max,
 * bad resource, raising past nr_open), pids, bad pointers and the order
 * Linux checks them in. Absolute defaults differ between hosts and are
 * not printed, and no limit is raised past its maximum (that needs
 * CAP_SYS_RESOURCE, which the native run may lack). */
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

#define BAD ((void *)8)
#define INF RLIM_INFINITY

struct rl64 {
  unsigned long long cur, max;
};

static char *ro, *edge;

static long prl(int pid, int res, const void *new, void *old) {
  return syscall(SYS_prlimit64, pid, res, new, old);
}

static void show(const char *what, const struct rl64 *r) {
  printf("%s: cur=", what);
  if (r->cur == INF) printf("inf"); else printf("%llu", r->cur);
  printf(" max=");
  if (r->max == INF) printf("inf\n"); else printf("%llu\n", r->max);
}

int main(void) {
  struct rl64 a, b, orig[16];
  ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  edge = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ro == MAP_FAILED || edge == MAP_FAILED || mprotect(edge + 4096, 4096, PROT_NONE))
    return 1;
  edge += 4096;

  printf("-- every resource\n");
  for (int r = 0; r < 16; r++) {
    CHECK(prl(0, r, NULL, &orig[r]));
    struct rlimit g;
    CHECK(syscall(SYS_getrlimit, r, &g));
    EXPECT(g.rlim_cur == orig[r].cur && g.rlim_max == orig[r].max);
    EXPECT(orig[r].cur <= orig[r].max);
  }
  CHECK(prl(0, 16, NULL, &a));
  CHECK(prl(0, 1000, NULL, &a));
  CHECK(prl(0, -1, NULL, &a));
  CHECK(syscall(SYS_getrlimit, 16, &a));
  CHECK(syscall(SYS_getrlimit, -1, &a));
  CHECK(syscall(SYS_setrlimit, 16, &orig[0]));
  CHECK(syscall(SYS_getrlimit, 16, NULL)); /* resource first */
  CHECK(syscall(SYS_setrlimit, 16, NULL)); /* pointer first */
  CHECK(prl(0, 16, NULL, NULL));
  CHECK(prl(0, 16, BAD, NULL));
  CHECK(prl(0, RLIMIT_CPU, NULL, NULL));
  CHECK(syscall(SYS_getrlimit, 0x100000000L | RLIMIT_NOFILE, &a)); /* 32 bits */
  EXPECT(a.cur == orig[RLIMIT_NOFILE].cur);

  printf("-- round trips\n");
  a = (struct rl64){100, 200};
  CHECK(prl(0, RLIMIT_NOFILE, &a, &b));
  EXPECT(b.cur == orig[RLIMIT_NOFILE].cur && b.max == orig[RLIMIT_NOFILE].max);
  CHECK(prl(0, RLIMIT_NOFILE, NULL, &b));
  show("nofile", &b);
  struct rlimit g;
  CHECK(getrlimit(RLIMIT_NOFILE, &g));
  printf("getrlimit: %lu %lu\n", (unsigned long)g.rlim_cur, (unsigned long)g.rlim_max);
  g.rlim_cur = 50;
  CHECK(setrlimit(RLIMIT_NOFILE, &g));
  CHECK(prl(0, RLIMIT_NOFILE, NULL, &b));
  show("nofile", &b);
  a = (struct rl64){200, 200};
  CHECK(prl(0, RLIMIT_NOFILE, &a, NULL));
  CHECK(prl(0, RLIMIT_NOFILE, NULL, &b));
  show("nofile", &b);
  /* cur > max. */
  a = (struct rl64){300, 200};
  CHECK(prl(0, RLIMIT_NOFILE, &a, &b));
  g.rlim_cur = 201; g.rlim_max = 200;
  CHECK(setrlimit(RLIMIT_NOFILE, &g));
  a = (struct rl64){INF, 200};
  CHECK(prl(0, RLIMIT_STACK, &a, NULL));
  CHECK(prl(0, 99, &a, NULL)); /* resource before cur > max */
  /* nr_open bounds RLIMIT_NOFILE, even for the privileged. */
  a = (struct rl64){1 << 10, 1ULL << 40};
  CHECK(prl(0, RLIMIT_NOFILE, &a, NULL));
  a = (struct rl64){1 << 10, INF};
  CHECK(prl(0, RLIMIT_NOFILE, &a, NULL));
  CHECK(prl(0, RLIMIT_NOFILE, NULL, &b));
  show("nofile", &b);
  /* Infinity round trips; other resources keep their own values. */
  a = (struct rl64){INF, INF};
  CHECK(prl(0, RLIMIT_CORE, &a, &b));
  CHECK(prl(0, RLIMIT_CORE, NULL, &b));
  show("core", &b);
  a = (struct rl64){0, 0};
  CHECK(prl(0, RLIMIT_CORE, &a, &b));
  show("core was", &b);
  CHECK(prl(0, RLIMIT_CORE, NULL, &b));
  show("core", &b);
  a = (struct rl64){1 << 20, INF};
  CHECK(prl(0, RLIMIT_FSIZE, &a, NULL));
  CHECK(prl(0, RLIMIT_FSIZE, NULL, &b));
  show("fsize", &b);
  CHECK(prl(0, RLIMIT_NOFILE, NULL, &b));
  show("nofile", &b);
  a = (struct rl64){12345, INF};
  CHECK(prl(0, RLIMIT_CPU, &a, NULL));
  CHECK(prl(0, RLIMIT_CPU, NULL, &b));
  show("cpu", &b);
  a = (struct rl64){INF, INF};
  CHECK(prl(0, RLIMIT_CPU, &a, NULL));

  printf("-- pids\n");
  CHECK(prl(getpid(), RLIMIT_NOFILE, NULL, &b));
  show("self", &b);
  CHECK(prl(syscall(SYS_gettid), RLIMIT_NOFILE, NULL, &b));
  CHECK(prl(0x3fffffff, RLIMIT_NOFILE, NULL, &b));
  CHECK(prl(-1, RLIMIT_NOFILE, NULL, &b));
  CHECK(prl(-1, 99, NULL, &b));          /* ESRCH before EINVAL */
  CHECK(prl(-1, RLIMIT_NOFILE, BAD, &b)); /* EFAULT before ESRCH */

  printf("-- bad pointers\n");
  CHECK(prl(0, RLIMIT_NOFILE, NULL, BAD));
  CHECK(prl(0, RLIMIT_NOFILE, NULL, ro));
  CHECK(prl(0, RLIMIT_NOFILE, BAD, NULL));
  CHECK(prl(0, RLIMIT_NOFILE, BAD, &b));
  CHECK(prl(0, RLIMIT_RTTIME, ro, NULL)); /* a zero limit from read-only memory */
  CHECK(prl(0, RLIMIT_RTTIME, NULL, &b));
  show("rttime", &b);
  a = (struct rl64){150, 200};
  memcpy(edge - 16, &a, 16);
  CHECK(prl(0, RLIMIT_NOFILE, edge - 16, NULL));
  CHECK(prl(0, RLIMIT_NOFILE, edge - 8, NULL));
  /* The new limit is set even when the old one cannot be written back. */
  a = (struct rl64){120, 200};
  CHECK(prl(0, RLIMIT_NOFILE, &a, BAD));
  CHECK(prl(0, RLIMIT_NOFILE, NULL, &b));
  show("nofile", &b);
  CHECK(syscall(SYS_getrlimit, RLIMIT_NOFILE, NULL));
  CHECK(syscall(SYS_getrlimit, RLIMIT_NOFILE, ro));
  CHECK(syscall(SYS_getrlimit, RLIMIT_NOFILE, edge - 8));
  CHECK(syscall(SYS_setrlimit, RLIMIT_NOFILE, NULL));
  CHECK(syscall(SYS_setrlimit, RLIMIT_NOFILE, BAD));
  CHECK(syscall(SYS_setrlimit, RLIMIT_NOFILE, edge - 8));
  return 0;
}
