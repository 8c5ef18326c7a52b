/* POSIX message queues: mq_open, mq_unlink, mq_timedsend,
 * mq_timedreceive, mq_notify, mq_getsetattr, and the mqueue file system
 * (mounted, read, made and removed through). Priorities, limits,
 * blocking and waking across processes, notifications, poll, errors.
 * Both runs are in a fresh IPC namespace. */
#include <dirent.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

/* As CHECK, for a call that wakes the child `pid`, which prints too: the
 * result is printed once the child has exited, so the order is fixed. */
#define WAKE(expr, pid)                                                    \
  do {                                                                     \
    errno = 0;                                                             \
    long _r = (long)(expr);                                                \
    int _e = errno;                                                        \
    waitpid(pid, NULL, 0);                                                 \
    if (_r < 0)                                                            \
      printf("%s = %ld %s\n", #expr, _r, strerrorname_np(_e));             \
    else                                                                   \
      printf("%s = %ld\n", #expr, _r);                                     \
  } while (0)

static void attr(mqd_t q) {
  struct mq_attr a;
  if (mq_getattr(q, &a) != 0) {
    printf("mq_getattr: %s\n", strerrorname_np(errno));
    return;
  }
  printf("flags=%#lx maxmsg=%ld msgsize=%ld curmsgs=%ld\n", a.mq_flags, a.mq_maxmsg,
         a.mq_msgsize, a.mq_curmsgs);
}

static void recv1(mqd_t q, size_t len) {
  char buf[9000];
  unsigned prio = 99;
  long n = mq_receive(q, buf, len, &prio);
  if (n < 0)
    printf("mq_receive(%zu) = -1 %s\n", len, strerrorname_np(errno));
  else
    printf("mq_receive(%zu) = %ld prio %u \"%.*s\"\n", len, n, prio, (int)n, buf);
}

static void cat(const char *path) {
  char buf[200];
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    printf("open %s: %s\n", path, strerrorname_np(errno));
    return;
  }
  long n = read(fd, buf, sizeof buf - 1);
  buf[n < 0 ? 0 : n] = 0;
  printf("%s: %s", path, buf);
  close(fd);
}

static volatile siginfo_t got;
static void on_sig(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  got = *si;
}

static struct timespec in_ms(long ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += ms * 1000000;
  ts.tv_sec += ts.tv_nsec / 1000000000;
  ts.tv_nsec %= 1000000000;
  return ts;
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  cat("/proc/sys/fs/mqueue/msg_max");
  cat("/proc/sys/fs/mqueue/msgsize_max");
  cat("/proc/sys/fs/mqueue/queues_max");

  /* Opening: the kernel's errors (glibc passes the name without its
   * slash). */
  CHECK(mq_open("/q1", O_RDWR));
  CHECK(syscall(SYS_mq_open, "a/b", O_RDWR | O_CREAT, 0600, NULL));
  CHECK(syscall(SYS_mq_open, "", O_RDWR | O_CREAT, 0600, NULL));
  CHECK(syscall(SYS_mq_open, "..", O_RDWR | O_CREAT, 0600, NULL));
  char longname[300];
  memset(longname, 'x', 256);
  longname[256] = 0;
  CHECK(syscall(SYS_mq_open, longname, O_RDWR | O_CREAT, 0600, NULL));
  struct mq_attr a = {.mq_maxmsg = 0, .mq_msgsize = 16};
  CHECK(mq_open("/q1", O_RDWR | O_CREAT, 0600, &a));
  a.mq_maxmsg = 3;
  a.mq_msgsize = 0;
  CHECK(mq_open("/q1", O_RDWR | O_CREAT, 0600, &a));
  a.mq_msgsize = 16;
  mqd_t q = mq_open("/q1", O_RDWR | O_CREAT | O_EXCL, 0640, &a);
  EXPECT(q >= 0);
  CHECK(mq_open("/q1", O_RDWR | O_CREAT | O_EXCL, 0600, &a));
  CHECK(fcntl(q, F_GETFD));
  attr(q);
  mqd_t q2 = mq_open("/q1", O_RDONLY);
  mqd_t dflt = mq_open("/q2", O_RDWR | O_CREAT, 0600, NULL);
  attr(dflt);

  /* Priorities, sizes, full and empty queues. */
  CHECK(mq_send(q, "low", 3, 1));
  CHECK(mq_send(q, "high", 4, 10));
  CHECK(mq_send(q, "low2", 4, 1));
  attr(q);
  struct timespec past = {0, 0};
  CHECK(mq_timedsend(q, "x", 1, 1, &past));
  CHECK(mq_send(q, "0123456789abcdefg", 17, 1));
  CHECK(mq_send(q, "x", 1, 32768));
  CHECK(mq_send(q2, "x", 1, 1));
  struct timespec bad = {0, 2000000000};
  CHECK(mq_timedsend(q, "x", 1, 1, &bad));
  recv1(q, 15);
  recv1(q, 16);
  recv1(q, 16);
  recv1(q2, 16);
  CHECK(mq_timedreceive(q, (char[16]){0}, 16, NULL, &past));
  struct timespec soon = in_ms(50);
  CHECK(mq_timedreceive(q, (char[16]){0}, 16, NULL, &soon));
  CHECK(mq_send(0, "x", 1, 1));
  CHECK(mq_send(99, "x", 1, 1));

  /* Non-blocking, through mq_setattr. */
  struct mq_attr na = {.mq_flags = O_NONBLOCK}, old;
  CHECK(mq_setattr(q, &na, &old));
  printf("old flags=%#lx\n", old.mq_flags);
  attr(q);
  CHECK(mq_receive(q, (char[16]){0}, 16, NULL));
  for (int i = 0; i < 3; i++)
    mq_send(q, "fill", 4, i);
  CHECK(mq_send(q, "more", 4, 1));
  na.mq_flags = 0x1;
  CHECK(mq_setattr(q, &na, NULL));
  na.mq_flags = 0;
  CHECK(mq_setattr(q, &na, NULL));
  CHECK(fcntl(q, F_GETFL) & O_NONBLOCK);

  /* poll: readable with messages, writable with room. */
  struct pollfd p = {.fd = q, .events = POLLIN | POLLOUT};
  CHECK(poll(&p, 1, 0));
  printf("revents=%#x\n", p.revents);
  for (int i = 0; i < 3; i++)
    recv1(q, 16);
  p.revents = 0;
  CHECK(poll(&p, 1, 0));
  printf("revents=%#x\n", p.revents);

  /* A receiver sleeps until another process sends; a sender sleeps until
   * one receives. */
  pid_t pid = fork();
  if (pid == 0) {
    char buf[16];
    unsigned prio;
    long n = mq_receive(q, buf, 16, &prio);
    printf("child: received %ld prio %u \"%.*s\"\n", n, prio, (int)n, buf);
    _exit(0);
  }
  usleep(100000);
  WAKE(mq_send(q, "hello", 5, 7), pid);
  for (int i = 0; i < 3; i++)
    mq_send(q, "full", 4, 0);
  pid = fork();
  if (pid == 0) {
    int r = mq_send(q, "later", 5, 3);
    printf("child: blocked mq_send = %d\n", r);
    _exit(0);
  }
  usleep(100000);
  WAKE(mq_receive(q, (char[16]){0}, 16, NULL), pid);
  recv1(q, 16);
  recv1(q, 16);
  recv1(q, 16);

  /* Notification by signal: once, when the queue gets its first
   * message. */
  struct sigaction sa = {.sa_sigaction = on_sig, .sa_flags = SA_SIGINFO};
  sigaction(SIGUSR1, &sa, NULL);
  struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
  ev.sigev_value.sival_int = 1234;
  CHECK(mq_notify(q, &ev));
  CHECK(mq_notify(q, &ev));
  /* What the queue file shows is checked through a mount below. */
  pid = fork();
  if (pid == 0) {
    CHECK(mq_notify(q, &ev));
    CHECK(mq_notify(q, NULL));
    mq_send(q, "wake", 4, 0);
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  for (int i = 0; i < 100 && !got.si_signo; i++)
    usleep(2000);
  printf("signal %d code %d value %d from_child=%d\n", got.si_signo, got.si_code,
         got.si_value.sival_int, got.si_pid == pid);
  got.si_signo = 0;
  CHECK(mq_send(q, "again", 5, 0));
  usleep(20000);
  printf("second signal: %d\n", got.si_signo);
  recv1(q, 16);
  recv1(q, 16);
  ev.sigev_notify = SIGEV_NONE;
  CHECK(mq_notify(q, &ev));
  CHECK(mq_notify(q, NULL));
  ev.sigev_notify = 77;
  CHECK(mq_notify(q, &ev));
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = 99;
  CHECK(mq_notify(q, &ev));
  CHECK(mq_notify(99, NULL));
  /* SIGEV_THREAD at the syscall: the cookie, then a netlink socket. */
  char cookie[32] = {0};
  int pfd[2];
  pipe(pfd);
  struct sigevent th = {.sigev_notify = SIGEV_THREAD, .sigev_signo = pfd[0]};
  th.sigev_value.sival_ptr = cookie;
  CHECK(syscall(SYS_mq_notify, q, &th));
  th.sigev_signo = 99;
  CHECK(syscall(SYS_mq_notify, q, &th));
  int sp[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
  th.sigev_signo = sp[0];
  CHECK(syscall(SYS_mq_notify, q, &th));
  th.sigev_value.sival_ptr = (void *)8;
  CHECK(syscall(SYS_mq_notify, q, &th));

  /* epoll sees a queue's readiness. */
  int ep = epoll_create1(0);
  struct epoll_event ee = {.events = EPOLLIN | EPOLLOUT, .data.u32 = 7};
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, q, &ee));
  struct epoll_event got_ev;
  CHECK(epoll_wait(ep, &got_ev, 1, 0));
  printf("events=%#x\n", got_ev.events);
  CHECK(mq_send(q, "e", 1, 0));
  CHECK(epoll_wait(ep, &got_ev, 1, 0));
  printf("events=%#x\n", got_ev.events);
  recv1(q, 16);
  close(ep);

  /* The file system: mounted, listed, read, and a queue made and removed
   * through it. */
  mkdir("/tmp/mq", 0755);
  CHECK(mount("none", "/tmp/mq", "mqueue", 0, NULL));
  struct stat st;
  CHECK(stat("/tmp/mq", &st));
  printf("dir mode=%o\n", st.st_mode);
  CHECK(stat("/tmp/mq/q1", &st));
  printf("q1 mode=%o size=%ld\n", st.st_mode, (long)st.st_size);
  DIR *d = opendir("/tmp/mq");
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.')
      printf("entry %s type %d\n", e->d_name, e->d_type);
  if (d)
    closedir(d);
  CHECK(mq_send(q, "xyz", 3, 0));
  cat("/tmp/mq/q1");
  int fd = open("/tmp/mq/made", O_RDWR | O_CREAT, 0600);
  EXPECT(fd >= 0);
  mqd_t made = mq_open("/made", O_RDWR);
  attr(made);
  CHECK(mq_send(fd, "via fd", 6, 2));
  recv1(made, 9000);
  CHECK(mkdir("/tmp/mq/sub", 0755));
  CHECK(symlink("x", "/tmp/mq/link"));
  CHECK(rename("/tmp/mq/made", "/tmp/mq/other"));
  CHECK(write(fd, "x", 1));
  CHECK(unlink("/tmp/mq/made"));
  CHECK(mq_open("/made", O_RDWR));
  CHECK(mq_send(made, "still", 5, 0));
  CHECK(umount("/tmp/mq"));

  /* Limits: RLIMIT_MSGQUEUE. */
  struct rlimit rl = {1000, 1000};
  setrlimit(RLIMIT_MSGQUEUE, &rl);
  a.mq_maxmsg = 10;
  a.mq_msgsize = 100;
  CHECK(mq_open("/big", O_RDWR | O_CREAT, 0600, &a));
  a.mq_maxmsg = 1;
  a.mq_msgsize = 16;
  mqd_t small = mq_open("/small", O_RDWR | O_CREAT, 0600, &a);
  EXPECT(small >= 0);

  /* Another user. */
  pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0)
      _exit(1);
    CHECK(mq_open("/q1", O_RDONLY));
    CHECK(mq_open("/q2", O_WRONLY));
    CHECK(mq_unlink("/q1"));
    a.mq_maxmsg = 11;
    CHECK(mq_open("/mine", O_RDWR | O_CREAT, 0600, &a));
    a.mq_maxmsg = 10;
    a.mq_msgsize = 8193;
    CHECK(mq_open("/mine", O_RDWR | O_CREAT, 0600, &a));
    _exit(0);
  }
  waitpid(pid, NULL, 0);

  CHECK(mq_unlink("/q1"));
  CHECK(mq_unlink("/q1"));
  CHECK(mq_unlink("/q2"));
  CHECK(mq_unlink("/small"));
  CHECK(mq_send(q, "after", 5, 0));
  attr(q);
  return 0;
}
