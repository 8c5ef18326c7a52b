/* The floor of a ptrace round trip on this machine: a minimal tracer
 * (PTRACE_SYSEMU, waitpid, GETREGS, SETREGS) around a child calling
 * getppid N times. Usage: ptrace_floor N [pin] */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  long n = atol(argv[1]);
  int pin = argc > 2;
  if (pin) { cpu_set_t s; CPU_ZERO(&s); CPU_SET(0, &s); sched_setaffinity(0, sizeof s, &s); }
  pid_t c = fork();
  if (c == 0) {
    ptrace(PTRACE_TRACEME, 0, 0, 0);
    raise(SIGSTOP);
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
    _exit(0);
  }
  int st;
  waitpid(c, &st, 0);
  ptrace(PTRACE_SETOPTIONS, c, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  struct user_regs_struct r;
  ptrace(PTRACE_SYSEMU, c, 0, 0);
  for (long i = 0; i < n; i++) {
    waitpid(c, &st, __WALL);
    ptrace(PTRACE_GETREGS, c, 0, &r);
    r.rax = 1;
    ptrace(PTRACE_SETREGS, c, 0, &r);
    ptrace(PTRACE_SYSEMU, c, 0, 0);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.0f ns\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
  kill(c, 9);
  return 0;
}
