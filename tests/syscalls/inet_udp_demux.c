/* Several UDP sockets on one port: each datagram goes to the socket Linux
 * picks. An AF_INET socket on 0.0.0.0 and an IPv6-only one on [::] each
 * get their family's; with SO_REUSEADDR, a socket bound to 127.0.0.1 takes
 * what is sent to that address and one on 0.0.0.0 the rest (127.0.0.2); a
 * connected socket takes what its peer sends, an unconnected one on the
 * same port the rest. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "check.h"

static struct sockaddr_in a4(const char *ip, int port) {
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

static int udp4(const char *ip, int port, int reuse) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
  struct sockaddr_in a = a4(ip, port);
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0)
    printf("bind %s:%d: %s\n", ip, port, strerrorname_np(errno));
  return s;
}

static void send4(int from, const char *ip, int port, const char *msg) {
  struct sockaddr_in a = a4(ip, port);
  if (sendto(from, msg, strlen(msg), 0, (struct sockaddr *)&a, sizeof a) < 0)
    printf("sendto: %s\n", strerrorname_np(errno));
}

static void drain(const char *name, int s) {
  char buf[64];
  for (;;) {
    ssize_t n = recv(s, buf, sizeof buf - 1, MSG_DONTWAIT);
    if (n < 0)
      break;
    buf[n] = 0;
    printf("%s got %s\n", name, buf);
  }
}

int main(void) {
  /* Families. */
  int v4 = udp4("0.0.0.0", 47500, 0);
  int v6 = socket(AF_INET6, SOCK_DGRAM, 0);
  int one = 1;
  CHECK(setsockopt(v6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one));
  struct sockaddr_in6 any6 = {0};
  any6.sin6_family = AF_INET6;
  any6.sin6_port = htons(47500);
  CHECK(bind(v6, (struct sockaddr *)&any6, sizeof any6));
  int c4 = socket(AF_INET, SOCK_DGRAM, 0);
  int c6 = socket(AF_INET6, SOCK_DGRAM, 0);
  struct sockaddr_in6 lo6 = any6;
  inet_pton(AF_INET6, "::1", &lo6.sin6_addr);
  for (int i = 0; i < 3; i++) {
    send4(c4, "127.0.0.1", 47500, "four");
    CHECK(sendto(c6, "six", 3, 0, (struct sockaddr *)&lo6, sizeof lo6));
  }
  usleep(50000);
  drain("v4", v4);
  drain("v6", v6);

  /* Addresses. */
  int spec = udp4("127.0.0.1", 47501, 1);
  int wild = udp4("0.0.0.0", 47501, 1);
  send4(c4, "127.0.0.1", 47501, "to-1");
  send4(c4, "127.0.0.2", 47501, "to-2");
  send4(c4, "127.0.0.1", 47501, "to-1-again");
  usleep(50000);
  drain("127.0.0.1", spec);
  drain("0.0.0.0", wild);

  /* Connected peers. */
  int peer = udp4("127.0.0.1", 47503, 0);
  int other = udp4("127.0.0.1", 47504, 0);
  int plain = udp4("0.0.0.0", 47502, 1);
  int conn = udp4("0.0.0.0", 47502, 1);
  struct sockaddr_in pa = a4("127.0.0.1", 47503);
  CHECK(connect(conn, (struct sockaddr *)&pa, sizeof pa));
  send4(peer, "127.0.0.1", 47502, "from-peer");
  send4(other, "127.0.0.1", 47502, "from-other");
  send4(peer, "127.0.0.1", 47502, "from-peer-again");
  usleep(50000);
  drain("unconnected", plain);
  drain("connected", conn);
  return 0;
}
