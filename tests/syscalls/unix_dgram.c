/* Unix datagram sockets: sendto/recvfrom with addresses (named, abstract,
 * unnamed senders), connect and AF_UNSPEC disconnect, EPERM to a socket
 * connected elsewhere, ECONNREFUSED once the peer is gone, MSG_TRUNC,
 * EMSGSIZE, the queue limit of a receiver not connected back (EAGAIN,
 * and a blocked sender woken by a reader), FIONREAD of the next
 * datagram, poll, sendmmsg and recvmmsg (MSG_WAITFORONE). */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static socklen_t abs_addr(struct sockaddr_un *a, const char *name) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  memcpy(a->sun_path + 1, name, strlen(name));
  return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
}

static void show_from(const char *what, struct sockaddr_un *a, socklen_t l) {
  printf("%s: fromlen %d", what, (int)l);
  if (l > 2) {
    if (a->sun_path[0])
      printf(" '%s'", a->sun_path);
    else
      printf(" @'%.*s'", (int)(l - 3), a->sun_path + 1);
  }
  printf("\n");
}

static void addresses(void) {
  printf("-- addresses\n");
  struct sockaddr_un ra, from;
  socklen_t rl = abs_addr(&ra, "dgram-recv");
  int r = socket(AF_UNIX, SOCK_DGRAM, 0);
  CHECK(bind(r, (struct sockaddr *)&ra, rl));
  int s = socket(AF_UNIX, SOCK_DGRAM, 0);
  char buf[64];
  CHECK(sendto(s, "unnamed", 7, 0, (struct sockaddr *)&ra, rl));
  socklen_t fl = sizeof from;
  memset(&from, 0x55, sizeof from);
  CHECK(recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
  show_from("from unnamed", &from, fl);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  strcpy(sa.sun_path, "/tmp/dgram-sender");
  CHECK(bind(s, (struct sockaddr *)&sa, sizeof sa));
  CHECK(sendto(s, "named", 5, 0, (struct sockaddr *)&ra, rl));
  fl = sizeof from;
  CHECK(recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
  show_from("from named", &from, fl);
  /* A short address buffer: what fits, and the whole length. */
  CHECK(sendto(s, "x", 1, 0, (struct sockaddr *)&ra, rl));
  fl = 4;
  CHECK(recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
  printf("short fromlen %d\n", (int)fl);
  /* recvmsg reports the name length too. */
  CHECK(sendto(s, "msg", 3, 0, (struct sockaddr *)&ra, rl));
  struct msghdr m = {0};
  struct iovec io = {buf, sizeof buf};
  m.msg_name = &from;
  m.msg_namelen = sizeof from;
  m.msg_iov = &io;
  m.msg_iovlen = 1;
  CHECK(recvmsg(r, &m, 0));
  printf("msg_namelen %d flags %#x controllen %d\n", (int)m.msg_namelen, m.msg_flags, (int)m.msg_controllen);
  /* Boundaries, MSG_TRUNC, FIONREAD. */
  CHECK(sendto(s, "first datagram", 14, 0, (struct sockaddr *)&ra, rl));
  CHECK(sendto(s, "2nd", 3, 0, (struct sockaddr *)&ra, rl));
  CHECK(sendto(s, "", 0, 0, (struct sockaddr *)&ra, rl));
  int n;
  CHECK(ioctl(r, FIONREAD, &n));
  printf("FIONREAD %d\n", n);
  CHECK(recv(r, buf, 5, 0));
  CHECK(recv(r, buf, 1, MSG_TRUNC | MSG_PEEK));
  CHECK(recv(r, buf, 1, MSG_TRUNC));
  CHECK(ioctl(r, FIONREAD, &n));
  printf("FIONREAD %d\n", n);
  CHECK(recv(r, buf, sizeof buf, 0));
  CHECK(recv(r, buf, sizeof buf, MSG_DONTWAIT));
  io.iov_len = 4;
  m.msg_flags = 0;
  CHECK(sendto(s, "truncated", 9, 0, (struct sockaddr *)&ra, rl));
  CHECK(recvmsg(r, &m, 0));
  printf("msg_flags MSG_TRUNC %d\n", (m.msg_flags & MSG_TRUNC) != 0);
  /* Errors. */
  struct sockaddr_un none;
  socklen_t nl = abs_addr(&none, "nobody-here");
  CHECK(sendto(s, "x", 1, 0, (struct sockaddr *)&none, nl));
  CHECK(send(s, "x", 1, 0));
  CHECK(sendto(s, "x", 1, 0, (struct sockaddr *)&none, 1));
  CHECK(sendto(s, "x", 1, 0, (struct sockaddr *)&none, 200));
  int st = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sta;
  socklen_t stl = abs_addr(&sta, "stream-only");
  bind(st, (struct sockaddr *)&sta, stl);
  CHECK(sendto(s, "x", 1, 0, (struct sockaddr *)&sta, stl));
  close(st);
  static char huge[300000];
  CHECK(sendto(s, huge, sizeof huge, 0, (struct sockaddr *)&ra, rl));
  CHECK(sendto(s, huge, 212960, 0, (struct sockaddr *)&ra, rl));
  CHECK(sendto(s, huge, 212961, 0, (struct sockaddr *)&ra, rl));
  CHECK(recv(r, huge, sizeof huge, 0));
  close(s);
  close(r);
  unlink("/tmp/dgram-sender");
}

static void connected(void) {
  printf("-- connect\n");
  struct sockaddr_un aa, ba;
  socklen_t al = abs_addr(&aa, "dg-a"), bl = abs_addr(&ba, "dg-b");
  int a = socket(AF_UNIX, SOCK_DGRAM, 0), b = socket(AF_UNIX, SOCK_DGRAM, 0);
  int c = socket(AF_UNIX, SOCK_DGRAM, 0);
  bind(a, (struct sockaddr *)&aa, al);
  bind(b, (struct sockaddr *)&ba, bl);
  char buf[16];
  CHECK(connect(a, (struct sockaddr *)&ba, bl));
  CHECK(send(a, "to b", 4, 0));
  CHECK(recv(b, buf, sizeof buf, 0));
  struct sockaddr_un p;
  socklen_t pl = sizeof p;
  CHECK(getpeername(a, (struct sockaddr *)&p, &pl));
  printf("peer len %d\n", (int)pl);
  /* b is connected to nobody: c may send to it; a is connected to b, so
   * c may not send to a. */
  CHECK(sendto(c, "c to b", 6, 0, (struct sockaddr *)&ba, bl));
  CHECK(sendto(c, "c to a", 6, 0, (struct sockaddr *)&aa, al));
  /* Sending to a connected socket with an address goes there. */
  CHECK(sendto(a, "addr", 4, 0, (struct sockaddr *)&ba, bl));
  CHECK(recv(b, buf, sizeof buf, 0));
  CHECK(recv(b, buf, sizeof buf, 0));
  /* AF_UNSPEC disconnects. */
  struct sockaddr un = {AF_UNSPEC};
  CHECK(connect(a, &un, sizeof un));
  CHECK(send(a, "x", 1, 0));
  pl = sizeof p;
  CHECK(getpeername(a, (struct sockaddr *)&p, &pl));
  CHECK(connect(a, &un, 1));
  CHECK(sendto(c, "c to a", 6, 0, (struct sockaddr *)&aa, al));
  CHECK(recv(a, buf, sizeof buf, 0));
  /* The peer goes: ECONNREFUSED once, then ENOTCONN. */
  CHECK(connect(a, (struct sockaddr *)&ba, bl));
  close(b);
  CHECK(send(a, "x", 1, 0));
  CHECK(send(a, "x", 1, 0));
  /* A connected pair. */
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
  CHECK(send(sv[0], "p", 1, 0));
  struct pollfd pf[2] = {{sv[0], POLLIN | POLLOUT, 0}, {sv[1], POLLIN | POLLOUT, 0}};
  CHECK(poll(pf, 2, 0));
  printf("pair revents %#x %#x\n", pf[0].revents, pf[1].revents);
  CHECK(shutdown(sv[1], SHUT_RD));
  CHECK(send(sv[0], "p", 1, 0));
  CHECK(recv(sv[1], buf, sizeof buf, 0));
  CHECK(recv(sv[1], buf, sizeof buf, 0));
  CHECK(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
  CHECK(shutdown(sv[0], SHUT_WR));
  CHECK(send(sv[0], "p", 1, 0));
  close(sv[0]);
  pf[1].events = POLLIN | POLLOUT | POLLRDHUP;
  CHECK(poll(&pf[1], 1, 0));
  printf("after close revents %#x\n", pf[1].revents);
  close(sv[1]);
  close(a);
  close(c);
}

static void queue_limit(void) {
  printf("-- queue limit\n");
  struct sockaddr_un ra;
  socklen_t rl = abs_addr(&ra, "dg-full");
  int r = socket(AF_UNIX, SOCK_DGRAM, 0);
  bind(r, (struct sockaddr *)&ra, rl);
  int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  CHECK(connect(s, (struct sockaddr *)&ra, rl));
  int sent = 0;
  for (int i = 0; i < 100; i++) {
    if (send(s, "q", 1, 0) < 0) {
      printf("after %d: %s\n", sent, strerrorname_np(errno));
      break;
    }
    sent++;
  }
  struct pollfd pf = {s, POLLOUT, 0};
  CHECK(poll(&pf, 1, 0));
  /* A blocked sender in another process is woken by a read. */
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    int b = socket(AF_UNIX, SOCK_DGRAM, 0);
    connect(b, (struct sockaddr *)&ra, rl);
    _exit(send(b, "late", 4, 0) == 4 ? 0 : 1);
  }
  usleep(50000);
  char buf[8];
  CHECK(recv(r, buf, sizeof buf, 0));
  int st;
  waitpid(c, &st, 0);
  printf("blocked sender exit %d\n", WEXITSTATUS(st));
  pf.revents = 0;
  CHECK(poll(&pf, 1, 0));
  for (int i = 0; i < 20; i++) {
    if (recv(r, buf, sizeof buf, MSG_DONTWAIT) < 0) {
      printf("drained %d: %s\n", i, strerrorname_np(errno));
      break;
    }
  }
  CHECK(poll(&pf, 1, 1000));
  close(s);
  close(r);
}

static void mmsg(void) {
  printf("-- sendmmsg/recvmmsg\n");
  int sv[2];
  socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
  char bufs[4][16];
  struct iovec iov[4];
  struct mmsghdr mm[4];
  memset(mm, 0, sizeof mm);
  const char *words[] = {"alpha", "beta", "gamma", "delta"};
  for (int i = 0; i < 4; i++) {
    iov[i].iov_base = (void *)words[i];
    iov[i].iov_len = strlen(words[i]);
    mm[i].msg_hdr.msg_iov = &iov[i];
    mm[i].msg_hdr.msg_iovlen = 1;
  }
  CHECK(sendmmsg(sv[0], mm, 3, 0));
  for (int i = 0; i < 3; i++) printf("sent[%d] %u\n", i, mm[i].msg_len);
  memset(mm, 0, sizeof mm);
  for (int i = 0; i < 4; i++) {
    iov[i].iov_base = bufs[i];
    iov[i].iov_len = sizeof bufs[i];
    mm[i].msg_hdr.msg_iov = &iov[i];
    mm[i].msg_hdr.msg_iovlen = 1;
  }
  CHECK(recvmmsg(sv[1], mm, 4, MSG_WAITFORONE, NULL));
  for (int i = 0; i < 3; i++) printf("got[%d] %u '%.*s'\n", i, mm[i].msg_len, (int)mm[i].msg_len, bufs[i]);
  CHECK(recvmmsg(sv[1], mm, 4, MSG_DONTWAIT, NULL));
  struct timespec ts = {0, 10000000};
  CHECK(send(sv[0], "one", 3, 0));
  CHECK(recvmmsg(sv[1], mm, 4, MSG_DONTWAIT, &ts));
  ts.tv_nsec = -1;
  CHECK(recvmmsg(sv[1], mm, 4, 0, &ts));
  CHECK(sendmmsg(sv[0], mm, 0, 0));
  CHECK(sendmmsg(99, mm, 1, 0));
  CHECK(sendmmsg(sv[0], NULL, 1, 0));
  close(sv[0]);
  close(sv[1]);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  addresses();
  connected();
  queue_limit();
  mmsg();
  return 0;
}
