/* POSIX message queues across processes: parent and child pass a 64-byte
 * message back and forth through two queues. Prints nanoseconds per
 * round trip (two sends, two receives, two wakeups). Usage:
 * mq_pingpong N */
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 10000;
  char a[64], b[64];
  snprintf(a, sizeof a, "/bench-ping-%d", getpid());
  snprintf(b, sizeof b, "/bench-pong-%d", getpid());
  struct mq_attr attr = {.mq_maxmsg = 4, .mq_msgsize = 64};
  mqd_t ping = mq_open(a, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
  mqd_t pong = mq_open(b, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
  if (ping < 0 || pong < 0) return 1;
  mq_unlink(a);
  mq_unlink(b);
  char msg[64] = "ball";
  pid_t c = fork();
  if (c < 0) return 1;
  if (c == 0) {
    for (long i = 0; i < n; i++) {
      if (mq_receive(ping, msg, 64, NULL) < 0 || mq_send(pong, msg, 64, 0) != 0) _exit(1);
    }
    _exit(0);
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++) {
    if (mq_send(ping, msg, 64, 0) != 0 || mq_receive(pong, msg, 64, NULL) < 0) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int st;
  waitpid(c, &st, 0);
  double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
  printf("%.0f\n", ns / n);
  return 0;
}
