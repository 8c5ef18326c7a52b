/* Scheduling settings as recorded and reported: nice values through
 * get/setpriority, policies and parameters, the round-robin interval,
 * affinity masks, I/O priorities, personality; inheritance by fork and
 * SCHED_RESET_ON_FORK; the errors. */
#include <sched.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static long gp(int which, int who) { return syscall(SYS_getpriority, which, who); }

int main(void) {
  printf("-- nice\n");
  CHECK(gp(PRIO_PROCESS, 0));
  CHECK(setpriority(PRIO_PROCESS, 0, 5));
  CHECK(gp(PRIO_PROCESS, 0));
  CHECK(setpriority(PRIO_PROCESS, 0, 100)); /* clamped to 19 */
  CHECK(gp(PRIO_PROCESS, 0));
  CHECK(setpriority(PRIO_PROCESS, 0, -3)); /* root may lower it */
  CHECK(gp(PRIO_PROCESS, 0));
  CHECK(gp(PRIO_PGRP, 0));
  CHECK(gp(7, 0));
  CHECK(gp(PRIO_PROCESS, 999999));
  CHECK(setpriority(PRIO_PROCESS, 999999, 1));
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) _exit(20 - gp(PRIO_PROCESS, 0) + 20);
  int st;
  waitpid(c, &st, 0);
  printf("child nice inherited: %d\n", WEXITSTATUS(st) - 20);
  CHECK(setpriority(PRIO_PROCESS, 0, 0));

  printf("-- policies\n");
  CHECK(sched_getscheduler(0));
  CHECK(sched_get_priority_max(SCHED_FIFO));
  CHECK(sched_get_priority_min(SCHED_RR));
  CHECK(sched_get_priority_max(SCHED_OTHER));
  CHECK(sched_get_priority_max(42));
  struct sched_param sp = {0};
  CHECK(sched_getparam(0, &sp));
  printf("priority=%d\n", sp.sched_priority);
  sp.sched_priority = 5;
  CHECK(sched_setscheduler(0, SCHED_OTHER, &sp)); /* must be 0 */
  CHECK(sched_setscheduler(0, SCHED_FIFO, &sp));
  CHECK(sched_getscheduler(0));
  CHECK(sched_getparam(0, &sp));
  printf("priority=%d\n", sp.sched_priority);
  struct timespec ts;
  CHECK(sched_rr_get_interval(0, &ts));
  printf("fifo interval=%ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
  sp.sched_priority = 7;
  CHECK(sched_setparam(0, &sp));
  CHECK(sched_getparam(0, &sp));
  printf("priority=%d\n", sp.sched_priority);
  CHECK(sched_setscheduler(0, SCHED_RR | SCHED_RESET_ON_FORK, &sp));
  CHECK(sched_getscheduler(0));
  CHECK(sched_rr_get_interval(0, &ts));
  printf("rr interval=%ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
  fflush(stdout);
  c = fork();
  if (c == 0) _exit(sched_getscheduler(0));
  waitpid(c, &st, 0);
  printf("child policy after reset on fork: %d\n", WEXITSTATUS(st));
  sp.sched_priority = 0;
  CHECK(sched_setscheduler(0, SCHED_OTHER, &sp));
  CHECK(sched_setscheduler(0, 42, &sp));
  CHECK(sched_setscheduler(-1, SCHED_OTHER, &sp));
  CHECK(sched_setscheduler(999999, SCHED_OTHER, &sp));
  CHECK(syscall(SYS_sched_getparam, 0, NULL));
  CHECK(sched_getscheduler(999999));

  printf("-- affinity\n");
  cpu_set_t set;
  CPU_ZERO(&set);
  CHECK(sched_getaffinity(0, sizeof set, &set));
  printf("cpu0 allowed: %d\n", CPU_ISSET(0, &set));
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  CHECK(sched_setaffinity(0, sizeof set, &set));
  CPU_ZERO(&set);
  CHECK(sched_getaffinity(0, sizeof set, &set));
  printf("count after setting cpu0: %d\n", CPU_COUNT(&set));
  CPU_ZERO(&set);
  CHECK(sched_setaffinity(0, sizeof set, &set)); /* empty: EINVAL */
  CHECK(sched_setaffinity(999999, sizeof set, &set));

  printf("-- ioprio and personality\n");
  CHECK(syscall(SYS_ioprio_get, 1, 0));
  CHECK(syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 4));
  CHECK(syscall(SYS_ioprio_get, 1, 0));
  CHECK(syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 9));
  CHECK(personality(0xffffffff));
  CHECK(personality(ADDR_NO_RANDOMIZE));
  CHECK(personality(0xffffffff));
  CHECK(personality(0));
  return 0;
}
