/* cflags: -static -pthread */
/* Races on unix sockets that must neither deadlock nor lose data: eight
 * threads writing records to one stream socket while a reader checks
 * every record (whole, in each writer's order); threads sending datagrams
 * to one receiver; a socket passed over itself and closed, again and
 * again, while another thread passes fds the other way; readers blocked
 * in one thread woken by shutdown and close in another. */
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "check.h"

#define WRITERS 8
#define RECORDS 2000
#define RECLEN 100

static int wfd;

static void *writer(void *arg) {
  long id = (long)arg;
  char rec[RECLEN];
  for (int i = 0; i < RECORDS; i++) {
    memset(rec, 'a' + id, sizeof rec);
    memcpy(rec, &i, sizeof i);
    ssize_t w = write(wfd, rec, sizeof rec);
    if (w != RECLEN) {
      printf("writer %ld: short write %zd\n", id, w);
      return NULL;
    }
  }
  return NULL;
}

static void many_writers(void) {
  printf("-- many writers, one stream\n");
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  wfd = sv[0];
  pthread_t th[WRITERS];
  for (long i = 0; i < WRITERS; i++) pthread_create(&th[i], NULL, writer, (void *)i);
  int next[WRITERS] = {0};
  long bad = 0, total = 0;
  char rec[RECLEN];
  for (long n = 0; n < (long)WRITERS * RECORDS; n++) {
    if (recv(sv[1], rec, sizeof rec, MSG_WAITALL) != RECLEN) {
      bad++;
      break;
    }
    int id = rec[RECLEN - 1] - 'a', seq;
    memcpy(&seq, rec, sizeof seq);
    if (id < 0 || id >= WRITERS || seq != next[id]) {
      bad++;
      continue;
    }
    for (int k = sizeof seq; k < RECLEN; k++)
      if (rec[k] != 'a' + id) bad++;
    next[id]++;
    total++;
  }
  for (int i = 0; i < WRITERS; i++) pthread_join(th[i], NULL);
  printf("records %ld bad %ld\n", total, bad);
  close(sv[0]);
  close(sv[1]);
}

static int dgram_to;

static void *dsender(void *arg) {
  (void)arg;
  for (int i = 0; i < 500; i++) send(dgram_to, "datagram", 8, 0);
  return NULL;
}

static void many_senders(void) {
  printf("-- many datagram senders\n");
  int sv[2];
  socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
  dgram_to = sv[0];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, dsender, NULL);
  char b[16];
  int got = 0, bad = 0;
  for (int i = 0; i < 2000; i++) {
    ssize_t r = recv(sv[1], b, sizeof b, 0);
    if (r != 8 || memcmp(b, "datagram", 8)) bad++;
    got++;
  }
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  printf("datagrams %d bad %d\n", got, bad);
  close(sv[0]);
  close(sv[1]);
}

static int passer_fd;
static volatile int stop;

static void *passer(void *arg) {
  (void)arg;
  while (!stop) {
    int p[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, p)) continue;
    char ctl[CMSG_SPACE(sizeof(int) * 2)];
    struct iovec io = {"p", 1};
    struct msghdr m = {0};
    m.msg_iov = &io;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * 2);
    memcpy(CMSG_DATA(c), p, sizeof p);
    /* Each end over itself, then both closed. */
    sendmsg(p[0], &m, MSG_DONTWAIT);
    sendmsg(p[1], &m, MSG_DONTWAIT);
    sendmsg(passer_fd, &m, MSG_DONTWAIT);
    close(p[0]);
    close(p[1]);
  }
  return NULL;
}

static void self_passing(void) {
  printf("-- sockets passed over themselves\n");
  int sv[2];
  socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
  passer_fd = sv[0];
  stop = 0;
  pthread_t th[2];
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, passer, NULL);
  int received = 0;
  for (int i = 0; i < 300; i++) {
    char ctl[CMSG_SPACE(sizeof(int) * 2)], b[2];
    struct iovec io = {b, 1};
    struct msghdr m = {0};
    m.msg_iov = &io;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    if (recvmsg(sv[1], &m, 0) < 0) break;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (c && c->cmsg_type == SCM_RIGHTS) {
      int fds[2];
      memcpy(fds, CMSG_DATA(c), sizeof fds);
      close(fds[0]);
      close(fds[1]);
      received++;
    }
  }
  stop = 1;
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  printf("received 300: %d\n", received == 300);
  close(sv[0]);
  close(sv[1]);
}

static int blocked_fd;
static ssize_t blocked_result;

/* Its result is printed by the main thread after the join: the wake-up
 * and the waker's own print would race. */
static void *blocked_reader(void *arg) {
  (void)arg;
  char c;
  blocked_result = read(blocked_fd, &c, 1);
  return NULL;
}

static void wakeups(void) {
  printf("-- blocked readers\n");
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  blocked_fd = sv[0];
  pthread_t t;
  pthread_create(&t, NULL, blocked_reader, NULL);
  usleep(50000);
  CHECK(shutdown(sv[0], SHUT_RD));
  pthread_join(t, NULL);
  printf("blocked read returned %zd\n", blocked_result);
  close(sv[0]);
  close(sv[1]);
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  blocked_fd = sv[0];
  pthread_create(&t, NULL, blocked_reader, NULL);
  usleep(50000);
  close(sv[1]);
  pthread_join(t, NULL);
  printf("blocked read returned %zd\n", blocked_result);
  close(sv[0]);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  many_writers();
  many_senders();
  self_passing();
  wakeups();
  return 0;
}
