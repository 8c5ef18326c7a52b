/* TCP and UDP over the host's loopback, as --network=host gives them:
 * refused connections, EADDRINUSE, non-blocking connect with SO_ERROR,
 * accept4's flags, names, shutdown, MSG_PEEK/WAITALL/TRUNC/DONTWAIT,
 * FIONREAD/SIOCOUTQ, the timeouts, options, SIGPIPE and epoll. Prints
 * only what is the same natively and in the sandbox (no ports). */
#include "../syscalls/check.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

static volatile sig_atomic_t pipes;
static void on_pipe(int s) { (void)s; pipes++; }

static struct sockaddr_in lo4(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static int port_of(int fd) {
  struct sockaddr_storage a;
  socklen_t l = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &l);
  return ntohs(((struct sockaddr_in *)&a)->sin_port);
}

/* A listener on 127.0.0.1 (an ephemeral port). */
static int listener(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = lo4(0);
  bind(s, (struct sockaddr *)&a, sizeof a);
  listen(s, 16);
  return s;
}

/* A port nothing listens on: bound, then closed. */
static int dead_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = lo4(0);
  bind(s, (struct sockaddr *)&a, sizeof a);
  int p = port_of(s);
  close(s);
  return p;
}

static int getint(int fd, int level, int name) {
  int v = -1;
  socklen_t l = sizeof v;
  if (getsockopt(fd, level, name, &v, &l) < 0) return -errno;
  return v;
}

static void refused(void) {
  printf("-- refused\n");
  int c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = lo4(dead_port());
  CHECK(connect(c, (struct sockaddr *)&a, sizeof a));
  CHECK(getint(c, SOL_SOCKET, SO_ERROR));
  close(c);
  /* Non-blocking: EINPROGRESS, then the refusal in SO_ERROR. */
  c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int r = connect(c, (struct sockaddr *)&a, sizeof a);
  EXPECT(r == 0 || errno == EINPROGRESS || errno == ECONNREFUSED);
  struct pollfd p = {.fd = c, .events = POLLOUT};
  CHECK(poll(&p, 1, 5000));
  EXPECT(p.revents & (POLLERR | POLLHUP));
  CHECK(getint(c, SOL_SOCKET, SO_ERROR));
  close(c);
}

static void addrinuse(void) {
  printf("-- addrinuse\n");
  int l = listener();
  struct sockaddr_in a = lo4(port_of(l));
  int s = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(bind(s, (struct sockaddr *)&a, sizeof a));
  int one = 1;
  CHECK(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
  CHECK(bind(s, (struct sockaddr *)&a, sizeof a));
  close(s);
  int u1 = socket(AF_INET, SOCK_DGRAM, 0), u2 = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in ua = lo4(0);
  CHECK(bind(u1, (struct sockaddr *)&ua, sizeof ua));
  ua = lo4(port_of(u1));
  CHECK(bind(u2, (struct sockaddr *)&ua, sizeof ua));
  CHECK(bind(u1, (struct sockaddr *)&ua, sizeof ua));
  close(u1);
  close(u2);
  close(l);
}

static void stream(void) {
  printf("-- stream\n");
  int l = listener();
  CHECK(getint(l, SOL_SOCKET, SO_ACCEPTCONN));
  struct sockaddr_in a = lo4(port_of(l));
  int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int r = connect(c, (struct sockaddr *)&a, sizeof a);
  EXPECT(r == 0 || errno == EINPROGRESS);
  struct pollfd p = {.fd = c, .events = POLLOUT};
  CHECK(poll(&p, 1, 5000));
  CHECK(p.revents);
  CHECK(getint(c, SOL_SOCKET, SO_ERROR));
  CHECK(connect(c, (struct sockaddr *)&a, sizeof a));
  int s = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  EXPECT(s >= 0);
  EXPECT(fcntl(s, F_GETFL) & O_NONBLOCK);
  EXPECT(fcntl(s, F_GETFD) & FD_CLOEXEC);
  fcntl(l, F_SETFL, O_NONBLOCK);
  CHECK(accept4(l, NULL, NULL, SOCK_NONBLOCK));
  int fl = fcntl(c, F_GETFL);
  fcntl(c, F_SETFL, fl & ~O_NONBLOCK);
  fl = fcntl(s, F_GETFL);
  fcntl(s, F_SETFL, fl & ~O_NONBLOCK);

  struct sockaddr_in n1, n2;
  socklen_t l1 = sizeof n1, l2 = sizeof n2;
  getsockname(c, (struct sockaddr *)&n1, &l1);
  getpeername(s, (struct sockaddr *)&n2, &l2);
  EXPECT(l1 == sizeof n1 && n1.sin_port == n2.sin_port &&
         n1.sin_addr.s_addr == n2.sin_addr.s_addr);
  CHECK(getint(c, SOL_SOCKET, SO_TYPE));
  CHECK(getint(c, SOL_SOCKET, SO_DOMAIN));
  CHECK(getint(c, SOL_SOCKET, SO_PROTOCOL));
  int one = 1;
  CHECK(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
  CHECK(getint(c, IPPROTO_TCP, TCP_NODELAY));
  int idle = 77;
  CHECK(setsockopt(c, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle));
  CHECK(getint(c, IPPROTO_TCP, TCP_KEEPIDLE));
  CHECK(setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one));
  CHECK(getint(c, SOL_SOCKET, SO_KEEPALIVE));
  struct linger lg = {1, 5};
  CHECK(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
  struct tcp_info ti;
  socklen_t til = sizeof ti;
  CHECK(getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &til));
  CHECK(ti.tcpi_state);

  /* Data: peek, FIONREAD, waitall, dontwait. */
  CHECK(send(c, "hello world", 11, 0));
  char buf[64] = {0};
  struct pollfd ps = {.fd = s, .events = POLLIN};
  CHECK(poll(&ps, 1, 5000));
  int n = -1;
  CHECK(ioctl(s, FIONREAD, &n));
  CHECK(n);
  CHECK(recv(s, buf, 5, MSG_PEEK));
  CHECK(recv(s, buf, 11, MSG_WAITALL));
  printf("got %.11s\n", buf);
  CHECK(recv(s, buf, sizeof buf, MSG_DONTWAIT));
  CHECK(ioctl(c, SIOCOUTQ, &n));

  /* A receive timeout: EAGAIN after it. */
  struct timeval tv = {0, 100000};
  CHECK(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  struct timeval got;
  socklen_t gl = sizeof got;
  CHECK(getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &got, &gl));
  CHECK(got.tv_usec);
  CHECK(recv(s, buf, sizeof buf, 0));

  /* epoll: readable once the peer writes. */
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7}, out;
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));
  CHECK(epoll_wait(ep, &out, 1, 0));
  CHECK(write(c, "abc", 3));
  CHECK(epoll_wait(ep, &out, 1, 5000));
  CHECK(out.data.u32);
  CHECK(read(s, buf, sizeof buf));
  close(ep);

  /* writev / readv. */
  struct iovec iv[2] = {{"ab", 2}, {"cde", 3}};
  CHECK(writev(c, iv, 2));
  char r1[2], r2[8];
  struct iovec ri[2] = {{r1, 2}, {r2, 8}};
  CHECK(poll(&ps, 1, 5000));
  CHECK(readv(s, ri, 2));

  /* shutdown: the peer reads the end. */
  CHECK(shutdown(c, SHUT_WR));
  CHECK(recv(s, buf, sizeof buf, 0));
  CHECK(send(c, "x", 1, MSG_NOSIGNAL));
  CHECK(send(c, "x", 1, 0));
  CHECK(pipes);
  close(s);
  close(c);
  close(l);
}

static void reset_pipe(void) {
  printf("-- reset\n");
  int l = listener();
  struct sockaddr_in a = lo4(port_of(l));
  int c = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(connect(c, (struct sockaddr *)&a, sizeof a));
  int s = accept(l, NULL, NULL);
  /* Closing with unread data resets the connection. */
  CHECK(send(c, "x", 1, 0));
  usleep(50000);
  close(s);
  usleep(50000);
  char b[4];
  CHECK(recv(c, b, sizeof b, 0));
  CHECK(send(c, "y", 1, 0));
  CHECK(pipes);
  close(c);
  close(l);
}

static void dgram(void) {
  printf("-- dgram\n");
  int u = socket(AF_INET6, SOCK_DGRAM, 0);
  int zero = 0;
  CHECK(getint(u, IPPROTO_IPV6, IPV6_V6ONLY));
  CHECK(setsockopt(u, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero));
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  CHECK(bind(u, (struct sockaddr *)&a, sizeof a));
  socklen_t al = sizeof a;
  getsockname(u, (struct sockaddr *)&a, &al);
  CHECK(sendto(u, "0123456789", 10, 0, (struct sockaddr *)&a, sizeof a));
  char b[4];
  struct sockaddr_in6 from;
  socklen_t fl = sizeof from;
  struct pollfd p = {.fd = u, .events = POLLIN};
  CHECK(poll(&p, 1, 5000));
  CHECK(recvfrom(u, b, sizeof b, MSG_PEEK | MSG_TRUNC, (struct sockaddr *)&from, &fl));
  struct iovec iv = {b, sizeof b};
  struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iv,
                      .msg_iovlen = 1};
  CHECK(recvmsg(u, &mh, 0));
  EXPECT(mh.msg_flags & MSG_TRUNC);
  EXPECT(from.sin6_port == a.sin6_port && mh.msg_namelen == sizeof from);
  CHECK(recv(u, b, sizeof b, MSG_DONTWAIT));
  /* Connected to a dead port: the refusal comes back. */
  int v = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in d = lo4(dead_port());
  CHECK(connect(v, (struct sockaddr *)&d, sizeof d));
  CHECK(send(v, "z", 1, 0));
  usleep(50000);
  CHECK(recv(v, b, sizeof b, MSG_DONTWAIT));
  close(v);
  close(u);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  signal(SIGPIPE, on_pipe);
  refused();
  addrinuse();
  stream();
  reset_pipe();
  dgram();
  return 0;
}
