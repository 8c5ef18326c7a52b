/* UDP over loopback, IPv4 and IPv6: bind and its conflicts (SO_REUSEADDR),
 * sendto/recvfrom with the sender's address, autobind at the first send,
 * connect (the peer filter, EDESTADDRREQ without it, AF_UNSPEC to undo),
 * MSG_PEEK, MSG_TRUNC, FIONREAD, datagram boundaries, EMSGSIZE, zero-length
 * datagrams, shutdown, poll readiness, a v4 datagram to a dual-stack v6
 * socket, and ICMP echo sockets under the default ping_group_range. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
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

static void show(const char *what, struct sockaddr_storage *s, socklen_t l, int show_port) {
  char buf[64];
  int port;
  if (s->ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)s;
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    port = ntohs(a->sin_port);
  } else if (s->ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)s;
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    port = ntohs(a->sin6_port);
  } else {
    printf("%s: len %d family %d\n", what, (int)l, s->ss_family);
    return;
  }
  if (show_port)
    printf("%s: len %d %s port %d\n", what, (int)l, buf, port);
  else
    printf("%s: len %d %s port %s\n", what, (int)l, buf, port ? "set" : "0");
}

static void name(const char *what, int fd, int peer, int show_port) {
  struct sockaddr_storage s;
  socklen_t l = sizeof s;
  int r = peer ? getpeername(fd, (struct sockaddr *)&s, &l)
               : getsockname(fd, (struct sockaddr *)&s, &l);
  if (r < 0) {
    printf("%s: -1 %s\n", what, strerrorname_np(errno));
    return;
  }
  show(what, &s, l, show_port);
}

static void show_poll(const char *what, int fd) {
  struct pollfd p = {fd, POLLIN | POLLOUT | POLLRDHUP, 0};
  int r = poll(&p, 1, 0);
  printf("%s: poll %d revents", what, r);
  if (p.revents & POLLIN) printf(" IN");
  if (p.revents & POLLOUT) printf(" OUT");
  if (p.revents & POLLRDHUP) printf(" RDHUP");
  if (p.revents & POLLHUP) printf(" HUP");
  if (p.revents & POLLERR) printf(" ERR");
  printf("\n");
}

static void receive(const char *what, int fd, size_t len, int flags) {
  char b[256];
  struct sockaddr_storage from;
  socklen_t fl = sizeof from;
  memset(&from, 0, sizeof from);
  ssize_t r = recvfrom(fd, b, len, flags, (struct sockaddr *)&from, &fl);
  if (r < 0) {
    printf("%s: -1 %s\n", what, strerrorname_np(errno));
    return;
  }
  printf("%s: %zd '%.*s'", what, r, (int)(r < (ssize_t)len ? r : (ssize_t)len), b);
  show(" from", &from, fl, 0);
}

static void family(int fam) {
  printf("-- %s\n", fam == AF_INET ? "inet" : "inet6");
  struct sockaddr_in a4 = v4("127.0.0.1", 9100);
  struct sockaddr_in6 a6 = v6("::1", 9100);
  struct sockaddr *a = fam == AF_INET ? (struct sockaddr *)&a4 : (struct sockaddr *)&a6;
  socklen_t al = fam == AF_INET ? sizeof a4 : sizeof a6;
  int s = socket(fam, SOCK_DGRAM, 0);
  show_poll("fresh", s);
  name("fresh name", s, 0, 1);
  CHECK(bind(s, a, al));
  int s2 = socket(fam, SOCK_DGRAM, 0);
  CHECK(bind(s2, a, al));
  close(s2);
  int c = socket(fam, SOCK_DGRAM, 0);
  CHECK(send(c, "x", 1, 0));
  CHECK(sendto(c, "one", 3, 0, a, al));
  name("client autobound", c, 0, 0);
  CHECK(sendto(c, "two!", 4, 0, a, al));
  CHECK(sendto(c, "", 0, 0, a, al));
  show_poll("server with data", s);
  int n = -1;
  CHECK(ioctl(s, FIONREAD, &n));
  printf("FIONREAD %d\n", n);
  receive("peek", s, 256, MSG_PEEK);
  receive("first", s, 256, 0);
  receive("truncated", s, 2, 0);
  receive("empty", s, 256, 0);
  receive("nothing", s, 256, MSG_DONTWAIT);
  CHECK(sendto(c, "trunc-flag", 10, 0, a, al));
  {
    char b[4];
    struct iovec iov = {b, sizeof b};
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    CHECK(recvmsg(s, &m, MSG_TRUNC));
    printf("msg_flags TRUNC %d\n", !!(m.msg_flags & MSG_TRUNC));
  }
  /* Connected: only the peer's datagrams arrive. */
  int other = socket(fam, SOCK_DGRAM, 0);
  struct sockaddr_storage cn;
  socklen_t cnl = sizeof cn;
  getsockname(c, (struct sockaddr *)&cn, &cnl);
  CHECK(connect(s, (struct sockaddr *)&cn, cnl));
  name("server peer", s, 1, 0);
  CHECK(sendto(other, "stranger", 8, 0, a, al));
  CHECK(sendto(c, "friend", 6, 0, a, al));
  receive("connected gets", s, 256, MSG_DONTWAIT);
  receive("and then", s, 256, MSG_DONTWAIT);
  CHECK(send(s, "reply", 5, 0));
  receive("client gets reply", c, 256, MSG_DONTWAIT);
  struct sockaddr_in un;
  memset(&un, 0, sizeof un);
  un.sin_family = AF_UNSPEC;
  CHECK(connect(s, (struct sockaddr *)&un, sizeof un));
  name("after AF_UNSPEC", s, 1, 0);
  CHECK(send(s, "x", 1, 0));
  /* Too big. */
  static char big[70000];
  CHECK(sendto(c, big, sizeof big, 0, a, al));
  CHECK(sendto(c, big, 65000, 0, a, al));
  n = -1;
  CHECK(ioctl(s, FIONREAD, &n));
  printf("FIONREAD %d\n", n);
  receive("big", s, 10, 0);
  CHECK(shutdown(s, SHUT_RD));
  show_poll("after SHUT_RD", s);
  CHECK(shutdown(c, SHUT_RDWR));
  CHECK(listen(s, 1));
  CHECK(accept(s, NULL, NULL));
  close(other);
  close(c);
  close(s);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  family(AF_INET);
  family(AF_INET6);
  /* IPv4 to a dual-stack IPv6 socket. */
  int s = socket(AF_INET6, SOCK_DGRAM, 0);
  struct sockaddr_in6 any = v6("::", 9200);
  CHECK(bind(s, (struct sockaddr *)&any, sizeof any));
  int c = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to = v4("127.0.0.1", 9200);
  CHECK(sendto(c, "mapped", 6, 0, (struct sockaddr *)&to, sizeof to));
  receive("v6 socket gets", s, 256, MSG_DONTWAIT);
  int one = 1;
  CHECK(setsockopt(s, SOL_IPV6, IPV6_V6ONLY, &one, sizeof one));
  close(s);
  close(c);
  /* Reuse. */
  int r1 = socket(AF_INET, SOCK_DGRAM, 0), r2 = socket(AF_INET, SOCK_DGRAM, 0);
  setsockopt(r1, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(r2, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in p = v4("0.0.0.0", 9300);
  CHECK(bind(r1, (struct sockaddr *)&p, sizeof p));
  CHECK(bind(r2, (struct sockaddr *)&p, sizeof p));
  int b = 1;
  struct sockaddr_in bc = v4("255.255.255.255", 9300);
  CHECK(sendto(r1, "b", 1, 0, (struct sockaddr *)&bc, sizeof bc));
  CHECK(setsockopt(r1, SOL_SOCKET, SO_BROADCAST, &b, sizeof b));
  struct sockaddr_in far = v4("10.9.9.9", 9300);
  CHECK(sendto(r1, "f", 1, 0, (struct sockaddr *)&far, sizeof far));
  struct sockaddr_in zero = v4("127.0.0.1", 0);
  CHECK(sendto(r1, "z", 1, 0, (struct sockaddr *)&zero, sizeof zero));
  /* ICMP echo sockets, under the default net.ipv4.ping_group_range. */
  FILE *f = fopen("/proc/sys/net/ipv4/ping_group_range", "r");
  char range[64] = {0};
  if (f && fgets(range, sizeof range, f)) printf("ping_group_range %s", range);
  if (f) fclose(f);
  CHECK(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
  CHECK(socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6));
  return 0;
}
