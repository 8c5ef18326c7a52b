/* TCP over loopback, IPv4 and IPv6: bind (EADDRINUSE, SO_REUSEADDR,
 * EADDRNOTAVAIL, ports below 1024 as root), listen, connect (blocking and
 * non-blocking with EINPROGRESS and SO_ERROR, ECONNREFUSED), accept4,
 * the names each side sees, data both ways with MSG_PEEK, MSG_WAITALL,
 * MSG_DONTWAIT, FIONREAD, shutdown each way, EOF, EPIPE after the peer
 * is gone, poll readiness at each step, dual-stack (an IPv6 listener
 * taking an IPv4 client) and IPV6_V6ONLY, and socket option values. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

static struct sockaddr_in v4(const char *ip, int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

static struct sockaddr_in6 v6(const char *ip, int port) {
  struct sockaddr_in6 a;
  memset(&a, 0, sizeof a);
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  inet_pton(AF_INET6, ip, &a.sin6_addr);
  return a;
}

static void show_name(const char *what, int fd, int peer, int show_port) {
  struct sockaddr_storage s;
  socklen_t l = sizeof s;
  int r = peer ? getpeername(fd, (struct sockaddr *)&s, &l)
               : getsockname(fd, (struct sockaddr *)&s, &l);
  if (r < 0) {
    printf("%s: -1 %s\n", what, strerrorname_np(errno));
    return;
  }
  char buf[64];
  int port;
  if (s.ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&s;
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    port = ntohs(a->sin_port);
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&s;
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    port = ntohs(a->sin6_port);
  }
  if (show_port)
    printf("%s: len %d family %d %s port %d\n", what, (int)l, s.ss_family, buf, port);
  else
    printf("%s: len %d family %d %s port %s\n", what, (int)l, s.ss_family, buf,
           port ? "set" : "0");
}

static void show_poll(const char *what, int fd) {
  struct pollfd p = {fd, POLLIN | POLLOUT | POLLRDHUP | POLLPRI, 0};
  int r = poll(&p, 1, 0);
  printf("%s: poll %d revents", what, r);
  if (p.revents & POLLIN) printf(" IN");
  if (p.revents & POLLOUT) printf(" OUT");
  if (p.revents & POLLRDHUP) printf(" RDHUP");
  if (p.revents & POLLHUP) printf(" HUP");
  if (p.revents & POLLERR) printf(" ERR");
  printf("\n");
}

static int intopt(int fd, int level, int name) {
  int v = -1;
  socklen_t l = sizeof v;
  if (getsockopt(fd, level, name, &v, &l) < 0) return -errno;
  return v;
}

static void options(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  printf("SO_TYPE %d SO_PROTOCOL %d SO_DOMAIN %d\n", intopt(s, SOL_SOCKET, SO_TYPE),
         intopt(s, SOL_SOCKET, SO_PROTOCOL), intopt(s, SOL_SOCKET, SO_DOMAIN));
  printf("SO_SNDBUF %d SO_RCVBUF %d\n", intopt(s, SOL_SOCKET, SO_SNDBUF),
         intopt(s, SOL_SOCKET, SO_RCVBUF));
  int v = 10000;
  CHECK(setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
  printf("SO_SNDBUF after 10000: %d\n", intopt(s, SOL_SOCKET, SO_SNDBUF));
  printf("TCP_NODELAY %d KEEPIDLE %d KEEPINTVL %d KEEPCNT %d\n", intopt(s, SOL_TCP, TCP_NODELAY),
         intopt(s, SOL_TCP, TCP_KEEPIDLE), intopt(s, SOL_TCP, TCP_KEEPINTVL),
         intopt(s, SOL_TCP, TCP_KEEPCNT));
  v = 1;
  CHECK(setsockopt(s, SOL_TCP, TCP_NODELAY, &v, sizeof v));
  CHECK(setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v));
  v = 30;
  CHECK(setsockopt(s, SOL_TCP, TCP_KEEPIDLE, &v, sizeof v));
  v = 0;
  CHECK(setsockopt(s, SOL_TCP, TCP_KEEPIDLE, &v, sizeof v));
  v = 5000;
  CHECK(setsockopt(s, SOL_TCP, TCP_USER_TIMEOUT, &v, sizeof v));
  printf("TCP_NODELAY %d SO_KEEPALIVE %d KEEPIDLE %d USER_TIMEOUT %d\n",
         intopt(s, SOL_TCP, TCP_NODELAY), intopt(s, SOL_SOCKET, SO_KEEPALIVE),
         intopt(s, SOL_TCP, TCP_KEEPIDLE), intopt(s, SOL_TCP, TCP_USER_TIMEOUT));
  v = 0x10;
  CHECK(setsockopt(s, SOL_IP, IP_TOS, &v, sizeof v));
  printf("IP_TOS %d IP_TTL %d\n", intopt(s, SOL_IP, IP_TOS), intopt(s, SOL_IP, IP_TTL));
  struct linger lg = {1, 0};
  CHECK(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
  socklen_t ll = sizeof lg;
  memset(&lg, 0x55, sizeof lg);
  CHECK(getsockopt(s, SOL_SOCKET, SO_LINGER, &lg, &ll));
  printf("linger %d %d len %d\n", lg.l_onoff, lg.l_linger, (int)ll);
  char cc[16] = {0};
  socklen_t cl = sizeof cc;
  CHECK(setsockopt(s, SOL_TCP, TCP_CONGESTION, "cubic", 5));
  CHECK(setsockopt(s, SOL_TCP, TCP_CONGESTION, "nosuch", 6));
  CHECK(getsockopt(s, SOL_TCP, TCP_CONGESTION, cc, &cl));
  printf("congestion %s\n", cc);
  struct tcp_info ti;
  socklen_t tl = sizeof ti;
  CHECK(getsockopt(s, SOL_TCP, TCP_INFO, &ti, &tl));
  printf("tcpi_state %d\n", ti.tcpi_state);
  CHECK(getsockopt(s, SOL_TCP, 9999, &v, &ll));
  show_poll("fresh", s);
  show_name("fresh name", s, 0, 1);
  show_name("fresh peer", s, 1, 1);
  char b[4];
  CHECK(recv(s, b, 4, MSG_DONTWAIT));
  signal(SIGPIPE, SIG_IGN);
  CHECK(send(s, "x", 1, 0));
  CHECK(shutdown(s, SHUT_WR));
  CHECK(listen(s, 1));
  CHECK(shutdown(s, SHUT_WR));
  CHECK(shutdown(s, SHUT_RD));
  close(s);
}

static void bind_rules(void) {
  int a = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in x = v4("127.0.0.1", 4242);
  CHECK(bind(a, (struct sockaddr *)&x, sizeof x));
  CHECK(bind(a, (struct sockaddr *)&x, sizeof x));
  int b = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(bind(b, (struct sockaddr *)&x, sizeof x));
  struct sockaddr_in any = v4("0.0.0.0", 4242);
  CHECK(bind(b, (struct sockaddr *)&any, sizeof any));
  struct sockaddr_in other = v4("127.0.0.2", 4242);
  CHECK(bind(b, (struct sockaddr *)&other, sizeof other));
  close(b);
  b = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in far = v4("10.1.2.3", 4243);
  CHECK(bind(b, (struct sockaddr *)&far, sizeof far));
  CHECK(bind(b, (struct sockaddr *)&x, sizeof x - 1));
  struct sockaddr_in6 s6 = v6("::1", 4244);
  CHECK(bind(b, (struct sockaddr *)&s6, sizeof s6));
  close(b);
  /* Two sockets with SO_REUSEADDR share a port until one listens. */
  int one = 1;
  int c = socket(AF_INET, SOCK_STREAM, 0), d = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(d, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in y = v4("127.0.0.1", 4245);
  CHECK(bind(c, (struct sockaddr *)&y, sizeof y));
  CHECK(bind(d, (struct sockaddr *)&y, sizeof y));
  CHECK(listen(c, 5));
  CHECK(listen(d, 5));
  close(c);
  close(d);
  /* Port 0 is an ephemeral port. */
  int e = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in z = v4("127.0.0.1", 0);
  CHECK(bind(e, (struct sockaddr *)&z, sizeof z));
  show_name("ephemeral", e, 0, 0);
  close(e);
  close(a);
  /* 0.0.0.0 and an IPV6_V6ONLY [::] share a port (nginx, redis). */
  int f4 = socket(AF_INET, SOCK_STREAM, 0), f6 = socket(AF_INET6, SOCK_STREAM, 0);
  int f6b = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in any4 = v4("0.0.0.0", 4246);
  struct sockaddr_in6 any6 = v6("::", 4246);
  CHECK(bind(f4, (struct sockaddr *)&any4, sizeof any4));
  CHECK(bind(f6b, (struct sockaddr *)&any6, sizeof any6));
  CHECK(setsockopt(f6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one));
  CHECK(bind(f6, (struct sockaddr *)&any6, sizeof any6));
  CHECK(listen(f4, 5));
  CHECK(listen(f6, 5));
  /* Each connection goes to the listener of its family, never to the
     IPv6-only one for IPv4. */
  fcntl(f4, F_SETFL, O_NONBLOCK);
  fcntl(f6, F_SETFL, O_NONBLOCK);
  for (int k = 0; k < 3; k++) {
    int c4 = socket(AF_INET, SOCK_STREAM, 0), c6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in to4 = v4("127.0.0.1", 4246);
    struct sockaddr_in6 to6 = v6("::1", 4246);
    CHECK(connect(c4, (struct sockaddr *)&to4, sizeof to4));
    CHECK(accept(f6, NULL, NULL));
    int a4 = accept4(f4, NULL, NULL, SOCK_NONBLOCK);
    show_name("v4 accepted", a4, 1, 0);
    CHECK(connect(c6, (struct sockaddr *)&to6, sizeof to6));
    CHECK(accept(f4, NULL, NULL));
    int a6 = accept4(f6, NULL, NULL, SOCK_NONBLOCK);
    show_name("v6 accepted", a6, 1, 0);
    close(a4);
    close(a6);
    close(c4);
    close(c6);
  }
  close(f4);
  close(f6);
  close(f6b);
}

static void conversation(int family) {
  printf("-- family %s\n", family == AF_INET ? "inet" : "inet6");
  int l = socket(family, SOCK_STREAM, 0);
  struct sockaddr_in a4 = v4("127.0.0.1", 5555);
  struct sockaddr_in6 a6 = v6("::1", 5555);
  struct sockaddr *a = family == AF_INET ? (struct sockaddr *)&a4 : (struct sockaddr *)&a6;
  socklen_t al = family == AF_INET ? sizeof a4 : sizeof a6;
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  /* Nobody listens yet. */
  int c = socket(family, SOCK_STREAM, 0);
  CHECK(connect(c, a, al));
  close(c);
  CHECK(bind(l, a, al));
  show_poll("bound", l);
  CHECK(listen(l, 8));
  printf("SO_ACCEPTCONN %d\n", intopt(l, SOL_SOCKET, SO_ACCEPTCONN));
  show_poll("listening", l);
  c = socket(family, SOCK_STREAM, 0);
  CHECK(connect(c, a, al));
  CHECK(connect(c, a, al));
  show_poll("listener with a connection", l);
  struct sockaddr_storage peer;
  socklen_t pl = sizeof peer;
  int s = accept4(l, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
  CHECK(s >= 0);
  printf("accept len %d family %d\n", (int)pl, peer.ss_family);
  printf("cloexec %d\n", fcntl(s, F_GETFD) & FD_CLOEXEC);
  show_name("server name", s, 0, 1);
  show_name("server peer", s, 1, 0);
  show_name("client name", c, 0, 0);
  show_name("client peer", c, 1, 1);
  show_poll("client connected", c);
  show_poll("server connected", s);
  CHECK(send(c, "hello world", 11, 0));
  int n = -1;
  CHECK(ioctl(s, FIONREAD, &n));
  printf("FIONREAD %d\n", n);
  show_poll("server with data", s);
  char b[64] = {0};
  CHECK(recv(s, b, 5, MSG_PEEK));
  printf("peeked '%.5s'\n", b);
  CHECK(recv(s, b, 64, 0));
  printf("got '%.11s'\n", b);
  CHECK(recv(s, b, 64, MSG_DONTWAIT));
  CHECK(write(s, "abc", 3));
  CHECK(write(s, "def", 3));
  memset(b, 0, sizeof b);
  CHECK(recv(c, b, 6, MSG_WAITALL));
  printf("waitall '%s'\n", b);
  CHECK(shutdown(c, SHUT_WR));
  show_poll("server after client's FIN", s);
  CHECK(recv(s, b, 64, 0));
  CHECK(send(s, "late", 4, 0));
  CHECK(recv(c, b, 64, 0));
  CHECK(send(c, "x", 1, MSG_NOSIGNAL));
  CHECK(shutdown(s, SHUT_RDWR));
  show_poll("server after both shut", s);
  CHECK(recv(c, b, 64, 0));
  show_poll("client after server's FIN", c);
  close(s);
  close(c);
  /* Non-blocking connect. */
  c = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int r = connect(c, a, al);
  printf("nonblocking connect: %s\n", r == 0 ? "0" : strerrorname_np(errno));
  struct pollfd p = {c, POLLOUT, 0};
  CHECK(poll(&p, 1, 1000));
  printf("SO_ERROR %d\n", intopt(c, SOL_SOCKET, SO_ERROR));
  s = accept(l, NULL, NULL);
  CHECK(s >= 0);
  int fl = fcntl(l, F_GETFL);
  fcntl(l, F_SETFL, fl | O_NONBLOCK);
  CHECK(accept(l, NULL, NULL));
  fcntl(l, F_SETFL, fl);
  /* A close with unread data resets the connection. */
  CHECK(send(c, "unread", 6, 0));
  usleep(10000);
  close(s);
  usleep(10000);
  p.events = POLLIN;
  CHECK(poll(&p, 1, 1000));
  r = recv(c, b, 64, 0);
  printf("recv after reset: %d %s\n", r, r < 0 ? strerrorname_np(errno) : "");
  r = recv(c, b, 64, 0);
  printf("recv again: %d %s\n", r, r < 0 ? strerrorname_np(errno) : "");
  close(c);
  close(l);
}

static void dual_stack(void) {
  printf("-- dual stack\n");
  int l = socket(AF_INET6, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  printf("V6ONLY %d\n", intopt(l, SOL_IPV6, IPV6_V6ONLY));
  struct sockaddr_in6 any = v6("::", 6000);
  CHECK(bind(l, (struct sockaddr *)&any, sizeof any));
  CHECK(setsockopt(l, SOL_IPV6, IPV6_V6ONLY, &one, sizeof one));
  CHECK(listen(l, 4));
  int c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in to = v4("127.0.0.1", 6000);
  CHECK(connect(c, (struct sockaddr *)&to, sizeof to));
  int s = accept(l, NULL, NULL);
  show_name("v4 client seen by v6 server", s, 1, 0);
  show_name("v6 server's name for it", s, 0, 1);
  close(s);
  close(c);
  close(l);
  l = socket(AF_INET6, SOCK_STREAM, 0);
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  CHECK(setsockopt(l, SOL_IPV6, IPV6_V6ONLY, &one, sizeof one));
  struct sockaddr_in6 any2 = v6("::", 6001);
  CHECK(bind(l, (struct sockaddr *)&any2, sizeof any2));
  CHECK(listen(l, 4));
  c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in to2 = v4("127.0.0.1", 6001);
  CHECK(connect(c, (struct sockaddr *)&to2, sizeof to2));
  close(c);
  close(l);
}

static void big_transfer(void) {
  printf("-- transfer\n");
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = v4("127.0.0.1", 7000);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  bind(l, (struct sockaddr *)&a, sizeof a);
  listen(l, 1);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a) < 0) _exit(1);
    static char buf[1 << 20];
    for (int i = 0; i < (int)sizeof buf; i++) buf[i] = (char)(i * 7);
    for (int k = 0; k < 8; k++) {
      size_t off = 0;
      while (off < sizeof buf) {
        ssize_t w = write(c, buf + off, sizeof buf - off);
        if (w <= 0) _exit(2);
        off += w;
      }
    }
    close(c);
    _exit(0);
  }
  int s = accept(l, NULL, NULL);
  static char rb[65536];
  long total = 0;
  unsigned sum = 0;
  for (;;) {
    ssize_t r = read(s, rb, sizeof rb);
    if (r <= 0) break;
    for (ssize_t i = 0; i < r; i++) sum = sum * 31 + (unsigned char)rb[i];
    total += r;
  }
  int st;
  waitpid(pid, &st, 0);
  printf("received %ld bytes, sum %u, child status %d\n", total, sum, WEXITSTATUS(st));
  close(s);
  close(l);
}

/* sendfile to a blocking socket whose peer reads slowly: it waits for
   room and sends everything. */
static void sendfile_to_socket(void) {
  printf("-- sendfile\n");
  char path[] = "/tmp/inet_tcp_sendfileXXXXXX";
  int fd = mkstemp(path);
  static char data[3 << 20];
  for (int i = 0; i < (int)sizeof data; i++) data[i] = (char)(i * 13 + (i >> 12));
  if (write(fd, data, sizeof data) != (ssize_t)sizeof data) printf("short file\n");
  unlink(path);
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = v4("127.0.0.1", 7001);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  bind(l, (struct sockaddr *)&a, sizeof a);
  listen(l, 1);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a) < 0) _exit(1);
    static char rb[4096];
    long total = 0;
    unsigned sum = 0;
    for (int k = 0;; k++) {
      ssize_t r = read(c, rb, sizeof rb);
      if (r <= 0) break;
      for (ssize_t i = 0; i < r; i++) sum = sum * 31 + (unsigned char)rb[i];
      total += r;
      if (k % 64 == 0) usleep(1000);
    }
    printf("received %ld bytes, sum %u\n", total, sum);
    _exit(0);
  }
  int s = accept(l, NULL, NULL);
  off_t off = 0;
  long sent = 0;
  for (;;) {
    ssize_t n = sendfile(s, fd, &off, sizeof data - sent);
    if (n <= 0) {
      printf("sendfile: %s after %ld\n", n < 0 ? strerror(errno) : "0", sent);
      break;
    }
    sent += n;
    if (sent == (long)sizeof data) break;
  }
  printf("sent %ld, offset %ld\n", sent, (long)off);
  close(s);
  int st;
  waitpid(pid, &st, 0);
  close(l);
  close(fd);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  options();
  bind_rules();
  conversation(AF_INET);
  conversation(AF_INET6);
  dual_stack();
  big_transfer();
  sendfile_to_socket();
  return 0;
}
