/* signalfd and signalfd4: argument errors in Linux's order; signals of
 * the mask consumed through reads from the caller's pending set (the
 * thread's own, then the process's), each a 128-byte signalfd_siginfo
 * with the fields of its kind (kill, tgkill, sigqueue, POSIX timers,
 * SIGCHLD); several queued real-time signals in one read; a new mask on
 * an existing signalfd; readiness for poll and epoll when a signal
 * becomes pending, from another process too; a blocking read; after
 * fork, the child reads its own signals. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static void show(const struct signalfd_siginfo *s) {
  printf("  signo %u errno %d code %d", s->ssi_signo, s->ssi_errno, s->ssi_code);
  printf(" pid-is-me %d pid-is-parent %d uid %u", s->ssi_pid == (uint32_t)getpid(),
         s->ssi_pid == (uint32_t)getppid(), s->ssi_uid);
  printf(" fd %d tid %u band %u overrun %u trapno %u status %d int %d ptr %#llx addr %#llx\n",
         s->ssi_fd, s->ssi_tid, s->ssi_band, s->ssi_overrun, s->ssi_trapno, s->ssi_status,
         s->ssi_int, (unsigned long long)s->ssi_ptr, (unsigned long long)s->ssi_addr);
  const unsigned char *pad = (const unsigned char *)s + 100;
  int zero = 1;
  for (int i = 0; i < 28; i++) zero &= pad[i] == 0;
  printf("  padding zero %d syscall %d arch %u call_addr %#llx\n", zero, s->ssi_syscall, s->ssi_arch,
         (unsigned long long)s->ssi_call_addr);
}

static int read_one(int fd) {
  struct signalfd_siginfo s;
  memset(&s, 0xa5, sizeof s);
  int n = read(fd, &s, sizeof s);
  if (n < 0) {
    printf("  read: -1 %s\n", strerrorname_np(errno));
    return n;
  }
  printf("  read: %d\n", n);
  show(&s);
  return n;
}

static void readiness(int fd) {
  struct pollfd p = {fd, POLLIN | POLLOUT, 0};
  poll(&p, 1, 0);
  printf("  poll revents %#x\n", p.revents);
}

static pid_t tid_other;
static volatile int other_ready, other_go;
static int sfd_shared;

static void *other(void *arg) {
  (void)arg;
  tid_other = syscall(SYS_gettid);
  other_ready = 1;
  while (!other_go) usleep(1000);
  printf("other thread:\n");
  read_one(sfd_shared);
  read_one(sfd_shared);
  return NULL;
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
  while (fgets(buf, sizeof buf, f)) {
    if (!strncmp(buf, "pos:", 4) || !strncmp(buf, "flags:", 6) || !strncmp(buf, "mnt_id:", 7) ||
        !strncmp(buf, "ino:", 4) || !strncmp(buf, "eventfd-id:", 11))
      continue;
    char *cut = strstr(buf, " ino:");
    if (cut) strcpy(cut, "\n");
    printf("  fdinfo %s", buf);
  }
  fclose(f);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGUSR1);
  sigaddset(&m, SIGUSR2);
  sigaddset(&m, SIGRTMIN);
  sigaddset(&m, SIGRTMIN + 1);
  sigaddset(&m, SIGCHLD);
  sigprocmask(SIG_BLOCK, &m, NULL);

  printf("-- errors\n");
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  CHECK(syscall(SYS_signalfd4, -1, &usr1, 4, 0));
  CHECK(syscall(SYS_signalfd4, -1, NULL, 4, 0));
  CHECK(syscall(SYS_signalfd4, -1, NULL, 8, 0));
  CHECK(syscall(SYS_signalfd4, -1, NULL, 8, 1));
  CHECK(syscall(SYS_signalfd4, -1, &usr1, 8, 1));
  CHECK(syscall(SYS_signalfd4, -1, &usr1, 8, O_APPEND));
  CHECK(syscall(SYS_signalfd4, 99, &usr1, 8, 0));
  CHECK(syscall(SYS_signalfd4, 1, &usr1, 8, 0));
  CHECK(syscall(SYS_signalfd4, -2, &usr1, 8, 0));
  int fd = syscall(SYS_signalfd4, -1, &usr1, 8, SFD_NONBLOCK | SFD_CLOEXEC);
  printf("signalfd4: cloexec %d flags %#x\n", fcntl(fd, F_GETFD), fcntl(fd, F_GETFL) & ~O_LARGEFILE);
  int plain = syscall(SYS_signalfd, -1, &usr1, 8);
  printf("signalfd: cloexec %d flags %#x\n", fcntl(plain, F_GETFD), fcntl(plain, F_GETFL) & ~O_LARGEFILE);
  CHECK(syscall(SYS_signalfd, -1, &usr1, 7));
  struct stat st;
  fstat(fd, &st);
  printf("fstat mode %o\n", st.st_mode);
  char link[64], path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, link, sizeof link - 1);
  link[n > 0 ? n : 0] = 0;
  printf("link: %s\n", link);
  char buf[512];
  CHECK(read(fd, buf, 127));
  CHECK(read(fd, buf, 0));
  CHECK(read(fd, buf, 128));
  CHECK(write(fd, buf, 128));
  CHECK(lseek(fd, 0, SEEK_SET));
  readiness(fd);

  printf("-- kill, tgkill, sigqueue\n");
  kill(getpid(), SIGUSR1);
  readiness(fd);
  read_one(fd);
  readiness(fd);
  syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
  read_one(fd);
  union sigval sv = {.sival_int = 1234};
  sigqueue(getpid(), SIGUSR1, sv);
  read_one(fd);
  printf("a signal outside the mask stays pending:\n");
  kill(getpid(), SIGUSR2);
  read_one(fd);
  sigset_t pend;
  sigpending(&pend);
  printf("  SIGUSR2 pending %d\n", sigismember(&pend, SIGUSR2));

  printf("-- a new mask\n");
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  sigaddset(&usr2, SIGRTMIN);
  sigaddset(&usr2, SIGKILL);
  sigaddset(&usr2, SIGSTOP);
  CHECK(syscall(SYS_signalfd4, fd, &usr2, 8, 0) == fd);
  CHECK(syscall(SYS_signalfd4, fd, &usr2, 8, 1));
  readiness(fd);
  fdinfo(fd);
  read_one(fd);
  sigpending(&pend);
  printf("  SIGUSR2 pending %d\n", sigismember(&pend, SIGUSR2));

  printf("-- queued real-time signals, several in one read\n");
  for (int i = 0; i < 3; i++) {
    sv.sival_int = 100 + i;
    sigqueue(getpid(), SIGRTMIN, sv);
  }
  struct signalfd_siginfo s4[4];
  CHECK(read(fd, s4, sizeof s4));
  for (int i = 0; i < 3; i++) printf("  rt %d: int %d code %d\n", i, s4[i].ssi_int, s4[i].ssi_code);
  sigqueue(getpid(), SIGRTMIN, sv);
  sigqueue(getpid(), SIGRTMIN, sv);
  /* A buffer for one and a half records reads one. */
  CHECK(read(fd, buf, 192));
  CHECK(read(fd, buf, 192));
  CHECK(read(fd, buf, 192));

  printf("-- a POSIX timer's signal\n");
  sigset_t rt1;
  sigemptyset(&rt1);
  sigaddset(&rt1, SIGRTMIN + 1);
  int tfd = signalfd(-1, &rt1, 0);
  timer_t tid;
  struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN + 1};
  sev.sigev_value.sival_int = 42;
  timer_create(CLOCK_MONOTONIC, &sev, &tid);
  struct itimerspec its = {.it_value = {0, 20 * 1000 * 1000}};
  timer_settime(tid, 0, &its, NULL);
  struct signalfd_siginfo s;
  CHECK(read(tfd, &s, sizeof s));
  printf("  signo-ok %d code %d timer id matches %d overrun %u int %d\n", s.ssi_signo == (uint32_t)SIGRTMIN + 1,
         s.ssi_code, s.ssi_tid == (uint32_t)(long)tid, s.ssi_overrun, s.ssi_int);
  timer_delete(tid);

  printf("-- SIGCHLD, woken in a blocking read\n");
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  int cfd = signalfd(-1, &chld, 0);
  pid_t c = fork();
  if (c == 0) {
    usleep(30000);
    _exit(3);
  }
  CHECK(read(cfd, &s, sizeof s));
  printf("  signo %u code %d pid-is-child %d status %d\n", s.ssi_signo, s.ssi_code, s.ssi_pid == (uint32_t)c,
         s.ssi_status);
  waitpid(c, NULL, 0);

  printf("-- epoll, and a signal from another process\n");
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 5};
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
  CHECK(epoll_wait(ep, &ev, 1, 0));
  fflush(stdout);
  c = fork();
  if (c == 0) {
    usleep(30000);
    kill(getppid(), SIGUSR2);
    _exit(0);
  }
  CHECK(epoll_wait(ep, &ev, 1, 5000));
  printf("  data %llu events %#x\n", (unsigned long long)ev.data.u64, ev.events);
  read_one(fd);
  waitpid(c, NULL, 0);
  CHECK(epoll_wait(ep, &ev, 1, 0));
  /* The SIGCHLD of that child is still pending; drop it. */
  read(cfd, &s, sizeof s);

  printf("-- a thread reads its own signals and its process's\n");
  sfd_shared = signalfd(-1, &usr1, SFD_NONBLOCK);
  pthread_t th;
  pthread_create(&th, NULL, other, NULL);
  while (!other_ready) usleep(1000);
  syscall(SYS_tgkill, getpid(), tid_other, SIGUSR1);
  printf("main thread:\n");
  read_one(sfd_shared);
  other_go = 1;
  pthread_join(th, NULL);

  printf("-- after fork the child reads its own signals\n");
  kill(getpid(), SIGUSR1);
  fflush(stdout);
  c = fork();
  if (c == 0) {
    printf("child:\n");
    read_one(sfd_shared);
    kill(getpid(), SIGUSR1);
    read_one(sfd_shared);
    _exit(0);
  }
  waitpid(c, NULL, 0);
  printf("parent:\n");
  read_one(sfd_shared);
  return 0;
}
