/* Every kind of file in epoll: pipes and FIFOs (readable, writable,
 * hangup, error), eventfd, timerfd, signalfd, pidfd (readable when the
 * process exits, hung up once it is reaped), epoll itself, the standard
 * streams (a pipe is watched, /dev/null is not), files that cannot be
 * polled; a few thousand registered files with one active. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

static int ctl(int ep, int op, int fd, uint32_t events, uint64_t data) {
  struct epoll_event ev = {.events = events, .data.u64 = data};
  return epoll_ctl(ep, op, fd, &ev);
}

static void show(const char *what, int ep, int timeout) {
  struct epoll_event evs[8];
  int n = epoll_wait(ep, evs, 8, timeout);
  printf("  %s: %d", what, n);
  for (int i = 0; i < n; i++) printf(" [%llu %#x]", (unsigned long long)evs[i].data.u64, evs[i].events);
  printf("\n");
}

static void one(const char *what, int fd, uint32_t events) {
  int ep = epoll_create1(0);
  int r = ctl(ep, EPOLL_CTL_ADD, fd, events, 1);
  printf("%s: add %d %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
  if (r == 0) show("now", ep, 0);
  close(ep);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  printf("-- standard streams and files that cannot be polled\n");
  one("stdin (/dev/null)", 0, EPOLLIN);
  one("stdout (a pipe)", 1, EPOLLOUT);
  int f = open("/tmp/epoll_files.reg", O_RDWR | O_CREAT | O_TRUNC, 0600);
  one("regular file", f, EPOLLIN);
  close(f);
  unlink("/tmp/epoll_files.reg");
  f = open("/proc/self/status", O_RDONLY);
  one("procfs file", f, EPOLLIN);
  close(f);
  const char *devs[] = {"/dev/zero", "/dev/null", "/dev/full", "/dev/urandom", "/dev/random"};
  for (int i = 0; i < 5; i++) {
    f = open(devs[i], O_RDWR);
    one(devs[i], f, EPOLLIN | EPOLLOUT);
    struct pollfd pf = {f, POLLIN | POLLOUT, 0};
    poll(&pf, 1, 0);
    printf("  poll revents %#x\n", pf.revents);
    close(f);
  }

  printf("-- pipes and FIFOs\n");
  int p[2];
  pipe(p);
  int ep = epoll_create1(0);
  ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN | EPOLLRDHUP, 1);
  ctl(ep, EPOLL_CTL_ADD, p[1], EPOLLOUT, 2);
  show("empty pipe", ep, 0);
  write(p[1], "x", 1);
  show("data", ep, 0);
  close(p[1]);
  show("writer gone", ep, 0);
  close(p[0]);
  mkfifo("/tmp/epoll_files.fifo", 0600);
  int fr = open("/tmp/epoll_files.fifo", O_RDONLY | O_NONBLOCK);
  ctl(ep, EPOLL_CTL_ADD, fr, EPOLLIN, 3);
  show("FIFO without a writer yet", ep, 0);
  int fw = open("/tmp/epoll_files.fifo", O_WRONLY | O_NONBLOCK);
  ctl(ep, EPOLL_CTL_ADD, fw, EPOLLOUT, 4);
  show("FIFO with a writer", ep, 0);
  write(fw, "y", 1);
  show("FIFO data", ep, 0);
  close(fr);
  show("FIFO reader gone", ep, 0);
  close(fw);
  unlink("/tmp/epoll_files.fifo");
  close(ep);

  printf("-- event files\n");
  ep = epoll_create1(0);
  int e = eventfd(0, EFD_NONBLOCK);
  int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGUSR1);
  sigprocmask(SIG_BLOCK, &m, NULL);
  int s = signalfd(-1, &m, SFD_NONBLOCK);
  int inner = epoll_create1(0);
  ctl(ep, EPOLL_CTL_ADD, e, EPOLLIN | EPOLLOUT, 10);
  ctl(ep, EPOLL_CTL_ADD, t, EPOLLIN, 11);
  ctl(ep, EPOLL_CTL_ADD, s, EPOLLIN, 12);
  ctl(ep, EPOLL_CTL_ADD, inner, EPOLLIN, 13);
  show("idle", ep, 0);
  uint64_t one64 = 1;
  write(e, &one64, 8);
  struct itimerspec its = {.it_value = {0, 1000000}};
  timerfd_settime(t, 0, &its, NULL);
  kill(getpid(), SIGUSR1);
  ctl(inner, EPOLL_CTL_ADD, e, EPOLLIN, 0);
  usleep(20000);
  show("all ready", ep, 0);
  uint64_t v;
  read(e, &v, 8);
  read(t, &v, 8);
  struct signalfd_siginfo si;
  read(s, &si, sizeof si);
  show("consumed", ep, 0);
  close(ep);

  printf("-- pidfd\n");
  ep = epoll_create1(0);
  int go[2];
  pipe(go);
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    char b;
    read(go[0], &b, 1);
    _exit(0);
  }
  int pfd = syscall(SYS_pidfd_open, c, 0);
  CHECK(ctl(ep, EPOLL_CTL_ADD, pfd, EPOLLIN, 20));
  show("running", ep, 0);
  write(go[1], "g", 1);
  show("exited", ep, 5000);
  waitpid(c, NULL, 0);
  show("reaped", ep, 0);
  close(pfd);
  close(ep);

  printf("-- thousands registered, one active\n");
  struct rlimit rl = {8192, 8192};
  setrlimit(RLIMIT_NOFILE, &rl);
  ep = epoll_create1(0);
  int fds[3000];
  int added = 0;
  for (int i = 0; i < 3000; i++) {
    fds[i] = eventfd(0, EFD_NONBLOCK);
    if (fds[i] >= 0 && ctl(ep, EPOLL_CTL_ADD, fds[i], EPOLLIN, i) == 0) added++;
  }
  printf("  added %d\n", added);
  show("idle", ep, 0);
  int rounds_ok = 1;
  for (int r = 0; r < 100; r++) {
    int k = (r * 37) % 3000;
    write(fds[k], &one64, 8);
    struct epoll_event ev[4];
    int n = epoll_wait(ep, ev, 4, 1000);
    if (n != 1 || ev[0].data.u64 != (uint64_t)k) rounds_ok = 0;
    read(fds[k], &v, 8);
  }
  printf("  100 rounds reported the active one: %d\n", rounds_ok);
  for (int i = 0; i < 3000; i++) close(fds[i]);
  show("all closed", ep, 0);
  close(ep);
  return 0;
}
