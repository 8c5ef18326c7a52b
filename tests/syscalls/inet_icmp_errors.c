/* ICMP errors reach the sockets whose packets they answer: a connected UDP
 * socket whose peer's port is closed gets ECONNREFUSED at its next send or
 * receive (and as POLLERR and SO_ERROR, once); an unconnected one hears
 * nothing. IPv4 and IPv6 over loopback. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "check.h"

static socklen_t addr(int family, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
    return sizeof *a;
  }
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(port);
  inet_pton(AF_INET6, "::1", &a->sin6_addr);
  return sizeof *a;
}

static void run(int family) {
  printf("-- %s\n", family == AF_INET ? "IPv4" : "IPv6");
  struct sockaddr_storage ss;
  socklen_t n = addr(family, 47399, &ss);
  char buf[16];
  int c = socket(family, SOCK_DGRAM, 0);
  CHECK(connect(c, (struct sockaddr *)&ss, n));
  CHECK(send(c, "ping", 4, 0));
  usleep(50000);
  CHECK(recv(c, buf, sizeof buf, MSG_DONTWAIT));
  CHECK(recv(c, buf, sizeof buf, MSG_DONTWAIT));
  CHECK(send(c, "ping", 4, 0));
  usleep(50000);
  CHECK(send(c, "ping", 4, 0));
  CHECK(send(c, "ping", 4, 0));
  usleep(50000);
  struct pollfd p = {c, POLLIN, 0};
  CHECK(poll(&p, 1, 0));
  printf("revents %#x\n", p.revents);
  int err = -1;
  socklen_t el = sizeof err;
  CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el));
  printf("SO_ERROR %s\n", err ? strerrorname_np(err) : "0");
  CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el));
  printf("SO_ERROR %s\n", err ? strerrorname_np(err) : "0");
  close(c);

  int u = socket(family, SOCK_DGRAM, 0);
  CHECK(sendto(u, "ping", 4, 0, (struct sockaddr *)&ss, n));
  usleep(50000);
  CHECK(recvfrom(u, buf, sizeof buf, MSG_DONTWAIT, NULL, NULL));
  CHECK(sendto(u, "ping", 4, 0, (struct sockaddr *)&ss, n));
  close(u);
}

int main(void) {
  run(AF_INET);
  run(AF_INET6);
  return 0;
}
