/* What glibc builds on NETLINK_ROUTE and the interface ioctls:
 * getifaddrs, if_nameindex, if_nametoindex and if_indextoname (only lo's
 * entries are printed: the native run's namespace may have more), and the
 * SIOCGIF* ioctls on an AF_UNIX and an AF_NETLINK socket, with ENODEV for
 * unknown names and indexes and ENOTTY for requests only AF_INET
 * sockets serve. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "check.h"

static const char *ntop(struct sockaddr *sa, char *b, int n) {
  if (!sa)
    return "null";
  if (sa->sa_family == AF_INET)
    return inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, b, n);
  if (sa->sa_family == AF_INET6)
    return inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, b, n);
  if (sa->sa_family == AF_PACKET) {
    struct sockaddr_ll *l = (void *)sa;
    snprintf(b, n, "packet ifindex %d hatype %d halen %d", l->sll_ifindex, l->sll_hatype,
             l->sll_halen);
    return b;
  }
  snprintf(b, n, "family %d", sa->sa_family);
  return b;
}

static void ifreq_tests(int s, const char *what) {
  struct ifreq r;
  printf("%s:\n", what);
  memset(&r, 0, sizeof r);
  strcpy(r.ifr_name, "lo");
  CHECK(ioctl(s, SIOCGIFINDEX, &r));
  printf("  index %d\n", r.ifr_ifindex);
  CHECK(ioctl(s, SIOCGIFFLAGS, &r));
  printf("  flags %#x\n", (unsigned short)r.ifr_flags);
  CHECK(ioctl(s, SIOCGIFMTU, &r));
  printf("  mtu %d\n", r.ifr_mtu);
  CHECK(ioctl(s, SIOCGIFTXQLEN, &r));
  printf("  txqlen %d\n", r.ifr_qlen);
  CHECK(ioctl(s, SIOCGIFMETRIC, &r));
  printf("  metric %d\n", r.ifr_metric);
  memset(&r.ifr_hwaddr, 0x55, sizeof r.ifr_hwaddr);
  CHECK(ioctl(s, SIOCGIFHWADDR, &r));
  printf("  hwaddr family %d:", r.ifr_hwaddr.sa_family);
  for (int i = 0; i < 14; i++)
    printf(" %02x", (unsigned char)r.ifr_hwaddr.sa_data[i]);
  printf("\n");
  CHECK(ioctl(s, SIOCGIFMAP, &r));
  memset(&r, 0, sizeof r);
  r.ifr_ifindex = 1;
  CHECK(ioctl(s, SIOCGIFNAME, &r));
  printf("  name of 1: %s\n", r.ifr_name);
  r.ifr_ifindex = 9999;
  CHECK(ioctl(s, SIOCGIFNAME, &r));
  memset(&r, 0, sizeof r);
  strcpy(r.ifr_name, "nosuch0");
  CHECK(ioctl(s, SIOCGIFINDEX, &r));
  CHECK(ioctl(s, SIOCGIFFLAGS, &r));
  CHECK(ioctl(s, SIOCGIFHWADDR, &r));
  strcpy(r.ifr_name, "lo");
  CHECK(ioctl(s, SIOCGIFADDR, &r));
  CHECK(ioctl(s, SIOCGIFNETMASK, &r));
  CHECK(ioctl(s, 0x89ff, &r));
  CHECK(ioctl(s, SIOCGIFMEM, &r));
  CHECK(ioctl(s, SIOCGIFSLAVE, &r));
  /* Setting lo's flags to what they are. */
  CHECK(ioctl(s, SIOCGIFFLAGS, &r));
  CHECK(ioctl(s, SIOCSIFFLAGS, &r));
  CHECK(ioctl(s, SIOCGIFINDEX, (void *)8));

  struct ifreq rs[64];
  struct ifconf c = {.ifc_len = 0, .ifc_req = NULL};
  CHECK(ioctl(s, SIOCGIFCONF, &c));
  EXPECT(c.ifc_len > 0 && c.ifc_len % sizeof(struct ifreq) == 0);
  c.ifc_len = sizeof rs;
  c.ifc_req = rs;
  CHECK(ioctl(s, SIOCGIFCONF, &c));
  for (int i = 0; i < c.ifc_len / (int)sizeof(struct ifreq); i++) {
    char b[64];
    if (strcmp(rs[i].ifr_name, "lo") == 0)
      printf("  ifconf: %s %s\n", rs[i].ifr_name, ntop(&rs[i].ifr_addr, b, sizeof b));
  }
  c.ifc_len = 10;
  CHECK(ioctl(s, SIOCGIFCONF, &c));
  printf("  ifconf with 10 bytes: %d\n", c.ifc_len);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  struct ifaddrs *ifs;
  CHECK(getifaddrs(&ifs));
  for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
    char a[64], m[64], b[64];
    if (strcmp(i->ifa_name, "lo") != 0)
      continue;
    printf("%s flags %#x addr %s mask %s", i->ifa_name, i->ifa_flags,
           ntop(i->ifa_addr, a, sizeof a), ntop(i->ifa_netmask, m, sizeof m));
    if (i->ifa_broadaddr)
      printf(" brd/dst %s", ntop(i->ifa_broadaddr, b, sizeof b));
    printf(" data %s\n", i->ifa_data ? "yes" : "no");
  }
  freeifaddrs(ifs);

  struct if_nameindex *ni = if_nameindex();
  EXPECT(ni != NULL);
  for (struct if_nameindex *p = ni; p && p->if_index; p++)
    if (strcmp(p->if_name, "lo") == 0)
      printf("if_nameindex: %u %s\n", p->if_index, p->if_name);
  if_freenameindex(ni);
  CHECK(if_nametoindex("lo"));
  CHECK(if_nametoindex("nosuch0"));
  char name[IF_NAMESIZE];
  printf("if_indextoname(1) = %s\n", if_indextoname(1, name));
  printf("if_indextoname(9999) = %s %s\n", if_indextoname(9999, name) ? "ok" : "null",
         strerrorname_np(errno));

  int u = socket(AF_UNIX, SOCK_DGRAM, 0);
  ifreq_tests(u, "AF_UNIX socket");
  close(u);
  int n = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  ifreq_tests(n, "AF_NETLINK socket");
  int v;
  CHECK(ioctl(n, FIONREAD, &v));
  close(n);
  return 0;
}
