/* Process file descriptors: pidfd_open, readable when the process exits,
 * pidfd_send_signal, pidfd_getfd, waitid(P_PIDFD), clone3 with
 * CLONE_PIDFD; and their errors. */
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open(pid_t pid, unsigned flags) { return syscall(SYS_pidfd_open, pid, flags); }
static int send_sig(int fd, int sig, void *info, unsigned flags) {
  return syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}
static int getfd(int pidfd, int fd, unsigned flags) { return syscall(SYS_pidfd_getfd, pidfd, fd, flags); }

static short poll_once(int fd, int ms) {
  struct pollfd p = {fd, POLLIN, 0};
  poll(&p, 1, ms);
  return p.revents;
}

int main(void) {
  int go[2], back[2];
  pipe(go);
  pipe(back);
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    char b;
    read(go[0], &b, 1); /* wait until told to exit */
    _exit(6);
  }
  int pfd = pidfd_open(c, 0);
  CHECK_OK(pfd);
  EXPECT(fcntl(pfd, F_GETFD) & FD_CLOEXEC);
  printf("before exit: revents=%#x\n", poll_once(pfd, 50));
  /* The child's copy of our pipe, taken from its table. */
  int dup = getfd(pfd, back[1], 0);
  CHECK_OK(dup);
  CHECK(write(dup, "x", 1));
  char b;
  CHECK(read(back[0], &b, 1));
  write(go[1], "q", 1);
  printf("after exit: revents=%#x\n", poll_once(pfd, 5000));
  siginfo_t si = {0};
  CHECK(waitid(P_PIDFD, pfd, &si, WEXITED));
  EXPECT(si.si_pid == c);
  printf("code=%d status=%d\n", si.si_code, si.si_status);
  CHECK(send_sig(pfd, SIGTERM, NULL, 0)); /* the process is gone */
  close(pfd);

  fflush(stdout);
  c = fork();
  if (c == 0) {
    pause();
    _exit(0);
  }
  pfd = pidfd_open(c, 0);
  CHECK(send_sig(pfd, 0, NULL, 0));
  CHECK(send_sig(pfd, SIGTERM, NULL, 1));
  CHECK(send_sig(pfd, 65, NULL, 0));
  CHECK(send_sig(pfd, SIGTERM, NULL, 0));
  int st;
  EXPECT(waitpid(c, &st, 0) == c);
  printf("signaled=%d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));
  close(pfd);

  /* clone3 with CLONE_PIDFD. */
  int cfd = -1;
  struct clone_args ca = {0};
  ca.flags = CLONE_PIDFD;
  ca.pidfd = (uint64_t)(uintptr_t)&cfd;
  ca.exit_signal = SIGCHLD;
  fflush(stdout);
  long r = syscall(SYS_clone3, &ca, sizeof ca);
  if (r == 0) _exit(3);
  EXPECT(r > 0 && cfd >= 0);
  memset(&si, 0, sizeof si);
  CHECK(waitid(P_PIDFD, cfd, &si, WEXITED));
  printf("clone3 child: status=%d pid ok=%d\n", si.si_status, si.si_pid == r);
  close(cfd);

  printf("-- errors\n");
  CHECK(pidfd_open(0, 0));
  CHECK(pidfd_open(-1, 0));
  CHECK(pidfd_open(getpid(), 1));
  CHECK(pidfd_open(999999, 0));
  CHECK(send_sig(go[0], SIGTERM, NULL, 0));
  CHECK(send_sig(99, SIGTERM, NULL, 0));
  pfd = pidfd_open(getpid(), 0);
  CHECK(getfd(pfd, 99, 0));
  CHECK(getfd(pfd, 0, 1));
  CHECK(getfd(go[0], 0, 0));
  CHECK(waitid(P_PIDFD, go[0], &si, WEXITED));
  CHECK(waitid(P_PIDFD, 99, &si, WEXITED));
  CHECK(waitid(P_PIDFD, pfd, &si, WEXITED | WNOHANG));
  printf("self pidfd: revents=%#x\n", poll_once(pfd, 0));
  return 0;
}
