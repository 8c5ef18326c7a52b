/* epoll: epoll_create/epoll_create1 and their errors; epoll_ctl's errors
 * in Linux's order (EFAULT, EBADF, EPERM, EINVAL, EEXIST, ENOENT);
 * level-triggered, edge-triggered and one-shot reports; EPOLLRDHUP and
 * EPOLLPRI accepted; EPOLLHUP and EPOLLERR always reported; MOD changes
 * events and data; the ready list's order and maxevents; a registration
 * follows the open file description (a dup keeps it under the old fd,
 * closing the last fd removes it); epoll_wait, epoll_pwait and
 * epoll_pwait2 argument errors, timeouts and their signal masks. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static int ctl(int ep, int op, int fd, uint32_t events, uint64_t data) {
  struct epoll_event ev = {.events = events, .data.u64 = data};
  return epoll_ctl(ep, op, fd, &ev);
}

/* Waits with `timeout` ms and prints the events (data, mask). */
static int show(int ep, int max, int timeout) {
  struct epoll_event evs[16];
  int n = epoll_wait(ep, evs, max, timeout);
  if (n < 0) {
    printf("  wait: -1 %s\n", strerrorname_np(errno));
    return n;
  }
  printf("  wait: %d", n);
  for (int i = 0; i < n; i++) printf(" [%llu %#x]", (unsigned long long)evs[i].data.u64, evs[i].events);
  printf("\n");
  return n;
}

static long ms_since(struct timespec *a) {
  struct timespec b;
  clock_gettime(CLOCK_MONOTONIC, &b);
  return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}

/* Prints the lines of /proc/self/fdinfo/FD after the common ones (pos,
 * flags, mnt_id and ino legitimately differ), each cut at " ino:". */
static void fdinfo(int fd) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  FILE *f = fopen(path, "r");
  if (!f) {
    printf("  fdinfo: %s\n", strerrorname_np(errno));
    return;
  }
  /* Linux lists an instance's registrations in the order of their
   * files' kernel addresses: sorted here. */
  char lines[64][4096];
  int n = 0;
  while (n < 64 && fgets(buf, sizeof buf, f)) {
    if (!strncmp(buf, "pos:", 4) || !strncmp(buf, "flags:", 6) || !strncmp(buf, "mnt_id:", 7) ||
        !strncmp(buf, "ino:", 4) || !strncmp(buf, "eventfd-id:", 11))
      continue;
    char *cut = strstr(buf, " ino:");
    if (cut) strcpy(cut, "\n");
    memcpy(lines[n++], buf, sizeof buf);
  }
  fclose(f);
  qsort(lines, n, sizeof lines[0], (int (*)(const void *, const void *))strcmp);
  for (int i = 0; i < n; i++) printf("  fdinfo %s", lines[i]);
}

static void create(void) {
  printf("-- create\n");
  CHECK(epoll_create(0));
  CHECK(epoll_create(-1));
  int a = epoll_create(1);
  EXPECT(a >= 0);
  int fl = fcntl(a, F_GETFD);
  printf("epoll_create cloexec: %d\n", fl & FD_CLOEXEC);
  int b = epoll_create1(EPOLL_CLOEXEC);
  printf("epoll_create1(EPOLL_CLOEXEC) cloexec: %d\n", fcntl(b, F_GETFD) & FD_CLOEXEC);
  printf("access mode O_RDWR: %d\n", (fcntl(b, F_GETFL) & O_ACCMODE) == O_RDWR);
  CHECK(epoll_create1(1));
  CHECK(epoll_create1(O_NONBLOCK));
  struct stat st;
  fstat(b, &st);
  printf("fstat mode %o\n", st.st_mode);
  char buf[8];
  CHECK(read(b, buf, 8));
  CHECK(write(b, buf, 8));
  CHECK(lseek(b, 0, SEEK_CUR));
  CHECK(pread(b, buf, 8, 0));
  char link[64], path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", b);
  ssize_t n = readlink(path, link, sizeof link - 1);
  link[n > 0 ? n : 0] = 0;
  printf("link: %s\n", link);
  close(a);
  close(b);
}

static void ctl_errors(void) {
  printf("-- epoll_ctl errors\n");
  int ep = epoll_create1(0);
  int p[2];
  pipe(p);
  struct epoll_event ev = {.events = EPOLLIN};
  /* The event is read before the fds are looked at. */
  CHECK(epoll_ctl(-1, EPOLL_CTL_ADD, p[0], NULL));
  CHECK(epoll_ctl(-1, EPOLL_CTL_DEL, p[0], NULL));
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, 999, &ev));
  CHECK(epoll_ctl(999, EPOLL_CTL_ADD, p[0], &ev));
  CHECK(epoll_ctl(p[0], EPOLL_CTL_ADD, p[1], &ev));
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev));
  CHECK(epoll_ctl(ep, 0, p[0], &ev));
  CHECK(epoll_ctl(ep, 4, p[0], &ev));
  CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
  CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
  CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], NULL));
  /* Files that cannot be polled. */
  int f = open("/tmp/epoll_basic.file", O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, f, &ev));
  int d = open("/tmp", O_RDONLY | O_DIRECTORY);
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, d, &ev));
  int null = open("/dev/null", O_RDWR);
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, null, &ev));
  int opath = open("/tmp", O_PATH);
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, opath, &ev));
  CHECK(epoll_ctl(opath, EPOLL_CTL_ADD, p[0], &ev));
  /* EPOLLEXCLUSIVE: only at ADD, not on an epoll file, few other bits. */
  int e = eventfd(0, 0);
  CHECK(ctl(ep, EPOLL_CTL_ADD, e, EPOLLIN | EPOLLEXCLUSIVE | EPOLLET, 0));
  CHECK(ctl(ep, EPOLL_CTL_MOD, e, EPOLLIN | EPOLLEXCLUSIVE, 0));
  CHECK(ctl(ep, EPOLL_CTL_MOD, e, EPOLLIN, 0));
  CHECK(ctl(ep, EPOLL_CTL_DEL, e, 0, 0));
  CHECK(ctl(ep, EPOLL_CTL_ADD, e, EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT, 0));
  CHECK(ctl(ep, EPOLL_CTL_ADD, e, EPOLLIN | EPOLLEXCLUSIVE | EPOLLRDHUP, 0));
  CHECK(ctl(ep, EPOLL_CTL_ADD, e, EPOLLIN | EPOLLEXCLUSIVE | EPOLLPRI, 0));
  CHECK(ctl(ep, EPOLL_CTL_ADD, e, EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLEXCLUSIVE, 0));
  int ep2 = epoll_create1(0);
  CHECK(ctl(ep, EPOLL_CTL_ADD, ep2, EPOLLIN | EPOLLEXCLUSIVE, 0));
  CHECK(ctl(ep, EPOLL_CTL_ADD, ep2, EPOLLIN | EPOLLRDHUP | EPOLLPRI | EPOLLWAKEUP, 0));
  /* Unknown event bits are accepted. */
  CHECK(ctl(ep, EPOLL_CTL_ADD, p[1], EPOLLOUT | 0x0f000000, 7));
  show(ep, 8, 0);
  fdinfo(ep);
  close(ep);
  close(ep2);
  close(p[0]);
  close(p[1]);
  close(e);
  close(f);
  close(d);
  close(null);
  close(opath);
  unlink("/tmp/epoll_basic.file");
}

static void triggers(void) {
  printf("-- level, edge, one-shot\n");
  int ep = epoll_create1(0);
  int p[2];
  pipe(p);
  char buf[64];
  CHECK(ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 1));
  show(ep, 8, 0);
  write(p[1], "ab", 2);
  printf("level-triggered reports while readable:\n");
  show(ep, 8, 0);
  show(ep, 8, 0);
  read(p[0], buf, 1);
  show(ep, 8, 0);
  read(p[0], buf, 1);
  show(ep, 8, 0);
  printf("edge-triggered reports each change once:\n");
  CHECK(ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLET, 2));
  show(ep, 8, 0);
  write(p[1], "a", 1);
  show(ep, 8, 0);
  show(ep, 8, 0);
  write(p[1], "b", 1);
  show(ep, 8, 0);
  read(p[0], buf, sizeof buf);
  show(ep, 8, 0);
  printf("MOD re-arms an edge that was reported:\n");
  write(p[1], "c", 1);
  show(ep, 8, 0);
  CHECK(ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLET, 3));
  show(ep, 8, 0);
  read(p[0], buf, sizeof buf);
  printf("one-shot reports once, until MOD:\n");
  CHECK(ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLONESHOT, 4));
  write(p[1], "d", 1);
  show(ep, 8, 0);
  show(ep, 8, 0);
  write(p[1], "e", 1);
  show(ep, 8, 0);
  CHECK(ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLONESHOT, 5));
  show(ep, 8, 0);
  show(ep, 8, 0);
  read(p[0], buf, sizeof buf);
  printf("hangup and error are always reported:\n");
  CHECK(ctl(ep, EPOLL_CTL_MOD, p[0], 0, 6));
  show(ep, 8, 0);
  CHECK(ctl(ep, EPOLL_CTL_ADD, p[1], 0, 7));
  close(p[1]);
  show(ep, 8, 0);
  int q[2];
  pipe(q);
  CHECK(ctl(ep, EPOLL_CTL_ADD, q[1], EPOLLOUT | EPOLLRDHUP | EPOLLPRI, 8));
  show(ep, 8, 0);
  close(q[0]);
  show(ep, 8, 0);
  close(q[1]);
  close(p[0]);
  close(ep);
}

static void order(void) {
  printf("-- ready list order and maxevents\n");
  int ep = epoll_create1(0);
  int e[4];
  for (int i = 0; i < 4; i++) {
    e[i] = eventfd(0, EFD_NONBLOCK);
    ctl(ep, EPOLL_CTL_ADD, e[i], EPOLLIN, 10 + i);
  }
  uint64_t one = 1, v;
  write(e[2], &one, 8);
  write(e[0], &one, 8);
  write(e[3], &one, 8);
  write(e[1], &one, 8);
  /* Level-triggered items that were reported go to the back. */
  show(ep, 2, 0);
  show(ep, 2, 0);
  show(ep, 3, 0);
  show(ep, 16, 0);
  read(e[0], &v, 8);
  show(ep, 16, 0);
  for (int i = 0; i < 4; i++) close(e[i]);
  show(ep, 16, 0);
  close(ep);
}

static void descriptions(void) {
  printf("-- registrations follow the open file description\n");
  int ep = epoll_create1(0);
  int p[2];
  pipe(p);
  write(p[1], "x", 1);
  CHECK(ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 100));
  int d = dup(p[0]);
  /* The same description under another fd is another registration. */
  CHECK(ctl(ep, EPOLL_CTL_ADD, d, EPOLLIN, 101));
  show(ep, 8, 0);
  CHECK(ctl(ep, EPOLL_CTL_DEL, d, 0, 0));
  /* Closing the registered fd while a dup lives keeps the registration,
   * under the fd that was closed. */
  close(p[0]);
  show(ep, 8, 0);
  CHECK(ctl(ep, EPOLL_CTL_DEL, p[0], 0, 0));
  CHECK(ctl(ep, EPOLL_CTL_DEL, d, 0, 0));
  CHECK(ctl(ep, EPOLL_CTL_MOD, d, EPOLLIN, 0));
  /* Closing the last fd removes it. */
  close(d);
  show(ep, 8, 0);
  /* A new file at the same fd number is a new registration. */
  int q[2];
  pipe(q);
  printf("same fd number again: %d\n", q[0] == p[0] || q[1] == p[0] || q[0] == d || q[1] == d);
  CHECK(ctl(ep, EPOLL_CTL_ADD, q[1], EPOLLOUT, 102));
  show(ep, 8, 0);
  /* A child shares the instance and its registrations. */
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    struct epoll_event ev;
    int n = epoll_wait(ep, &ev, 1, 0);
    printf("child: wait %d data %llu\n", n, (unsigned long long)ev.data.u64);
    ctl(ep, EPOLL_CTL_DEL, q[1], 0, 0);
    fflush(stdout);
    _exit(0);
  }
  waitpid(c, NULL, 0);
  show(ep, 8, 0);
  close(q[0]);
  close(q[1]);
  close(ep);
}

static void handler(int sig) { (void)sig; }

static void waits(void) {
  printf("-- epoll_wait, epoll_pwait, epoll_pwait2\n");
  int ep = epoll_create1(0);
  int e = eventfd(0, EFD_NONBLOCK);
  struct epoll_event evs[4];
  CHECK(epoll_wait(ep, evs, 0, 0));
  CHECK(syscall(SYS_epoll_wait, ep, evs, -1, 0));
  CHECK(syscall(SYS_epoll_wait, ep, evs, 0x7fffffff / 12 + 1, 0));
  CHECK(epoll_wait(-1, evs, 1, 0));
  CHECK(epoll_wait(e, evs, 1, 0));
  CHECK(syscall(SYS_epoll_wait, ep, (void *)0x7ffffffff000, 1, 0));
  /* Nothing ready: no copy, no fault. */
  CHECK(syscall(SYS_epoll_wait, ep, NULL, 1, 0));
  ctl(ep, EPOLL_CTL_ADD, e, EPOLLIN, 1);
  uint64_t one = 1;
  write(e, &one, 8);
  CHECK(syscall(SYS_epoll_wait, ep, NULL, 1, 0));
  CHECK(epoll_wait(ep, evs, 1, 0));
  uint64_t v;
  read(e, &v, 8);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK(epoll_wait(ep, evs, 4, 100));
  long ms = ms_since(&t0);
  printf("waited about 100 ms: %d\n", ms >= 99 && ms < 2000);
  sigset_t m;
  sigemptyset(&m);
  CHECK(syscall(SYS_epoll_pwait, ep, evs, 4, 0, &m, 7));
  CHECK(syscall(SYS_epoll_pwait, ep, evs, 4, 0, (void *)1, 8));
  CHECK(syscall(SYS_epoll_pwait, ep, evs, 4, 0, NULL, 7));
  CHECK(syscall(SYS_epoll_pwait, -1, evs, 4, 0, &m, 7));
  CHECK(syscall(SYS_epoll_pwait, -1, evs, 4, 0, &m, 8));
  struct timespec ts = {0, 50 * 1000 * 1000};
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK(syscall(SYS_epoll_pwait2, ep, evs, 4, &ts, NULL, 8));
  ms = ms_since(&t0);
  printf("pwait2 waited about 50 ms: %d\n", ms >= 49 && ms < 2000);
  struct timespec bad = {0, 1000000000};
  CHECK(syscall(SYS_epoll_pwait2, ep, evs, 4, &bad, NULL, 8));
  struct timespec neg = {-1, 0};
  CHECK(syscall(SYS_epoll_pwait2, ep, evs, 4, &neg, NULL, 8));
  CHECK(syscall(SYS_epoll_pwait2, ep, evs, 4, (void *)1, NULL, 8));
  CHECK(syscall(SYS_epoll_pwait2, -1, evs, 4, &bad, &m, 8));
  CHECK(syscall(SYS_epoll_pwait2, -1, evs, 4, &ts, &m, 7));
  struct timespec zero = {0, 0};
  write(e, &one, 8);
  CHECK(syscall(SYS_epoll_pwait2, ep, evs, 4, &zero, NULL, 8));
  read(e, &v, 8);

  printf("a signal interrupts a wait with EINTR, even with SA_RESTART:\n");
  struct sigaction sa = {.sa_handler = handler, .sa_flags = SA_RESTART};
  sigaction(SIGALRM, &sa, NULL);
  timer_t tid;
  struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGALRM};
  timer_create(CLOCK_MONOTONIC, &sev, &tid);
  struct itimerspec its = {.it_value = {0, 30 * 1000 * 1000}};
  timer_settime(tid, 0, &its, NULL);
  CHECK(epoll_wait(ep, evs, 4, 5000));
  printf("the pwait mask is in force during the wait, restored after:\n");
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGALRM);
  sigprocmask(SIG_BLOCK, &block, &old);
  timer_settime(tid, 0, &its, NULL);
  /* SIGALRM blocked by the wait's mask: the wait times out. */
  CHECK(epoll_pwait(ep, evs, 4, 200, &block));
  sigset_t pend;
  sigpending(&pend);
  printf("SIGALRM pending after the wait: %d\n", sigismember(&pend, SIGALRM));
  /* Unblocked by the wait's mask: EINTR, and the mask comes back. */
  sigset_t none;
  sigemptyset(&none);
  CHECK(epoll_pwait(ep, evs, 4, 5000, &none));
  sigset_t now;
  sigprocmask(SIG_BLOCK, NULL, &now);
  printf("SIGALRM blocked again after the handler: %d\n", sigismember(&now, SIGALRM));
  sigprocmask(SIG_SETMASK, &old, NULL);
  timer_delete(tid);
  close(e);
  close(ep);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  /* fdinfo shows fd numbers: none inherited from the runner. */
  syscall(SYS_close_range, 3, ~0U, 0);
  create();
  ctl_errors();
  triggers();
  order();
  descriptions();
  waits();
  return 0;
}
