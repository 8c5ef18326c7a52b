/* poll and ppoll on the standard streams: a regular file is always ready,
 * a pipe's write end is writable; closed fds give POLLNVAL, negative fds
 * are skipped; nfds is bounded by RLIMIT_NOFILE; timeouts, the signal mask
 * size and bad pointers. */
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static long sys_poll(void *p, unsigned long n, int t) { return syscall(SYS_poll, p, n, t); }

#define BAD ((void *)8)

static void show(struct pollfd *p, int n) {
  for (int i = 0; i < n; i++)
    printf("  fd=%d events=%#x revents=%#x\n", p[i].fd, p[i].events, p[i].revents);
}

static long ppoll_raw(struct pollfd *p, unsigned n, struct timespec *ts, void *mask, long size) {
  return syscall(SYS_ppoll, p, n, ts, mask, size);
}

int main(void) {
  /* Natively the harness may leak descriptors past 2; start clean. */
  for (int fd = 3; fd < 1024; fd++)
    close(fd);
  struct pollfd p[6];
  struct timespec ts;
  sigset_t mask;
  sigemptyset(&mask);
  struct rlimit rl;
  CHECK(getrlimit(RLIMIT_NOFILE, &rl));
  rl.rlim_cur = 64;
  CHECK(setrlimit(RLIMIT_NOFILE, &rl));
  char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ro == MAP_FAILED)
    return 1;

  printf("-- poll\n");
  p[0] = (struct pollfd){0, POLLIN, 0x7777};
  p[1] = (struct pollfd){1, POLLOUT, 0};
  p[2] = (struct pollfd){0, POLLIN | POLLOUT | POLLPRI | POLLRDNORM | POLLWRNORM, 0};
  p[3] = (struct pollfd){-1, POLLIN, 0x55};
  p[4] = (struct pollfd){30, POLLIN, 0};
  p[5] = (struct pollfd){0, 0, 0};
  CHECK(sys_poll(p, 6, 0));
  show(p, 6);
  p[0] = (struct pollfd){1, POLLIN, 0};
  CHECK(sys_poll(p, 1, 0));
  show(p, 1);
  p[0] = (struct pollfd){0, POLLIN, 0};
  CHECK(sys_poll(p, 1, -1));
  show(p, 1);
  CHECK(sys_poll(p, 1, 1000));
  show(p, 1);
  CHECK(sys_poll(NULL, 0, 0));
  CHECK(sys_poll(NULL, 0, 10));
  CHECK(sys_poll(BAD, 0, 0));
  p[0] = (struct pollfd){-1, POLLIN, 0};
  p[1] = (struct pollfd){-5, POLLOUT, 0};
  CHECK(sys_poll(p, 2, 20)); /* nothing to wait for: times out */
  show(p, 2);
  CHECK(sys_poll(NULL, 1, 0));
  CHECK(sys_poll(BAD, 1, 0));
  static struct pollfd big[65];
  for (int i = 0; i < 65; i++)
    big[i] = (struct pollfd){-1, POLLIN, 0};
  big[63].fd = 0;
  CHECK(sys_poll(big, 64, 0)); /* up to RLIMIT_NOFILE entries */
  CHECK(sys_poll(big, 65, 0)); /* more than RLIMIT_NOFILE */
  CHECK(sys_poll(NULL, 65, 0));
  CHECK(sys_poll(p, 1u << 31, 0));
  CHECK(sys_poll(p, -1, 0));
  /* The array must be writable for the results. */
  CHECK(sys_poll((struct pollfd *)ro, 1, 0));
  /* Closed fd. */
  p[0] = (struct pollfd){9, 0, 0};
  CHECK(sys_poll(p, 1, 100));
  show(p, 1);

  printf("-- ppoll\n");
  p[0] = (struct pollfd){0, POLLIN, 0};
  p[1] = (struct pollfd){1, POLLOUT, 0};
  ts = (struct timespec){0, 0};
  CHECK(ppoll_raw(p, 2, &ts, NULL, 0));
  show(p, 2);
  printf("ts=%ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
  CHECK(ppoll_raw(p, 2, NULL, NULL, 0));
  CHECK(ppoll_raw(p, 2, NULL, &mask, 8));
  CHECK(ppoll_raw(p, 2, NULL, &mask, 16));
  CHECK(ppoll_raw(p, 2, NULL, &mask, 4));
  CHECK(ppoll_raw(p, 2, NULL, NULL, 4)); /* no mask: the size is unused */
  CHECK(ppoll_raw(p, 2, NULL, BAD, 8));
  CHECK(ppoll_raw(p, 2, NULL, BAD, 4));
  CHECK(ppoll_raw(p, 2, BAD, &mask, 8));
  CHECK(ppoll_raw(p, 2, BAD, &mask, 4)); /* the timeout is read first */
  ts = (struct timespec){0, 1000000000};
  CHECK(ppoll_raw(p, 2, &ts, NULL, 0));
  ts = (struct timespec){-1, 0};
  CHECK(ppoll_raw(p, 2, &ts, NULL, 0));
  ts = (struct timespec){0, -1};
  CHECK(ppoll_raw(p, 2, &ts, &mask, 4));
  ts = (struct timespec){0, 0};
  CHECK(ppoll_raw(big, 65, &ts, NULL, 0));
  CHECK(ppoll_raw(BAD, 1, &ts, NULL, 0));
  /* A ready fd returns at once; the time left is written back. */
  ts = (struct timespec){5, 0};
  CHECK(ppoll_raw(p, 2, &ts, NULL, 0));
  EXPECT(ts.tv_sec == 4 && ts.tv_nsec > 0);
  /* A timeout that runs out leaves zero. */
  p[0] = (struct pollfd){-1, POLLIN, 0};
  ts = (struct timespec){0, 20000000};
  CHECK(ppoll_raw(p, 1, &ts, NULL, 0));
  printf("ts=%ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
  /* A read-only timeout is fine: the update is skipped. */
  CHECK(ppoll_raw(p, 1, (struct timespec *)ro, NULL, 0));
  /* glibc's wrapper. */
  p[0] = (struct pollfd){0, POLLIN, 0};
  ts = (struct timespec){1, 0};
  CHECK(ppoll(p, 1, &ts, &mask));
  show(p, 1);
  return 0;
}
