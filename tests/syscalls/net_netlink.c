/* NETLINK_ROUTE: socket creation errors, bind and autobind, getsockname,
 * the kernel as sender, link/address/route/neighbour dumps (only lo's
 * entries are printed: the native run's namespace may have more links),
 * GETLINK by index and by name, acks (NLM_F_ACK, NLM_F_CAPPED), errors
 * (ENODEV, EINVAL, EOPNOTSUPP with the request echoed), messages without
 * NLM_F_REQUEST, MSG_PEEK and MSG_TRUNC, SOL_NETLINK options, and
 * RTM_NEWLINK setting lo up. */
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>
#include "check.h"

static int seq = 100;
static char buf[65536];

/* Sends a request of `type` with `flags` and a payload. */
static void nl_send(int fd, int type, int flags, const void *p, int len) {
  struct {
    struct nlmsghdr h;
    char p[256];
  } req;
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = NLMSG_LENGTH(len);
  req.h.nlmsg_type = type;
  req.h.nlmsg_flags = flags;
  req.h.nlmsg_seq = ++seq;
  memcpy(req.p, p, len);
  struct sockaddr_nl k = {.nl_family = AF_NETLINK};
  if (sendto(fd, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&k, sizeof k) < 0)
    perror("sendto");
}

static void show_attrs_link(struct nlmsghdr *h) {
  struct ifinfomsg *ifi = NLMSG_DATA(h);
  printf("  link index %d type %d flags %#x change %#x\n", ifi->ifi_index, ifi->ifi_type,
         ifi->ifi_flags, ifi->ifi_change);
  int len = IFLA_PAYLOAD(h);
  for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    unsigned char *d = RTA_DATA(a);
    switch (a->rta_type) {
    case IFLA_IFNAME:
      printf("  IFLA_IFNAME %s\n", (char *)d);
      break;
    case IFLA_MTU:
      printf("  IFLA_MTU %u\n", *(unsigned *)d);
      break;
    case IFLA_TXQLEN:
      printf("  IFLA_TXQLEN %u\n", *(unsigned *)d);
      break;
    case IFLA_OPERSTATE:
      printf("  IFLA_OPERSTATE %u\n", d[0]);
      break;
    case IFLA_LINKMODE:
      printf("  IFLA_LINKMODE %u\n", d[0]);
      break;
    case IFLA_QDISC:
      printf("  IFLA_QDISC %s\n", (char *)d);
      break;
    case IFLA_GROUP:
      printf("  IFLA_GROUP %u\n", *(unsigned *)d);
      break;
    case IFLA_ADDRESS:
    case IFLA_BROADCAST:
      printf("  %s len %d:", a->rta_type == IFLA_ADDRESS ? "IFLA_ADDRESS" : "IFLA_BROADCAST",
             (int)RTA_PAYLOAD(a));
      for (unsigned i = 0; i < RTA_PAYLOAD(a); i++)
        printf(" %02x", d[i]);
      printf("\n");
      break;
    case IFLA_STATS:
      printf("  IFLA_STATS len %d\n", (int)RTA_PAYLOAD(a));
      break;
    case IFLA_STATS64:
      printf("  IFLA_STATS64 len %d\n", (int)RTA_PAYLOAD(a));
      break;
    case IFLA_CARRIER:
      printf("  IFLA_CARRIER %u\n", d[0]);
      break;
    }
  }
}

static void show_addr(struct nlmsghdr *h) {
  struct ifaddrmsg *ifa = NLMSG_DATA(h);
  printf("  addr family %d prefix %d flags %#x scope %d index %d\n", ifa->ifa_family,
         ifa->ifa_prefixlen, ifa->ifa_flags, ifa->ifa_scope, ifa->ifa_index);
  int len = IFA_PAYLOAD(h);
  for (struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    char s[64];
    switch (a->rta_type) {
    case IFA_ADDRESS:
    case IFA_LOCAL:
    case IFA_BROADCAST:
      inet_ntop(ifa->ifa_family, RTA_DATA(a), s, sizeof s);
      printf("  attr %d %s\n", a->rta_type, s);
      break;
    case IFA_LABEL:
      printf("  IFA_LABEL %s\n", (char *)RTA_DATA(a));
      break;
    case IFA_FLAGS:
      printf("  IFA_FLAGS %#x\n", *(unsigned *)RTA_DATA(a));
      break;
    case IFA_CACHEINFO: {
      struct ifa_cacheinfo *c = RTA_DATA(a);
      printf("  IFA_CACHEINFO prefered %#x valid %#x\n", c->ifa_prefered, c->ifa_valid);
      break;
    }
    }
  }
}

static void show_route(struct nlmsghdr *h) {
  struct rtmsg *r = NLMSG_DATA(h);
  char dst[64] = "default", src[64] = "-";
  unsigned table = r->rtm_table, prio = 0;
  int len = RTM_PAYLOAD(h);
  for (struct rtattr *a = RTM_RTA(r); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == RTA_DST)
      inet_ntop(r->rtm_family, RTA_DATA(a), dst, sizeof dst);
    if (a->rta_type == RTA_PREFSRC)
      inet_ntop(r->rtm_family, RTA_DATA(a), src, sizeof src);
    if (a->rta_type == RTA_TABLE)
      table = *(unsigned *)RTA_DATA(a);
    if (a->rta_type == RTA_PRIORITY)
      prio = *(unsigned *)RTA_DATA(a);
  }
  printf("  route family %d %s/%d table %u proto %d scope %d type %d src %s prio %u\n",
         r->rtm_family, dst, r->rtm_dst_len, table, r->rtm_protocol, r->rtm_scope, r->rtm_type,
         src, prio);
}

/* The interface index of a message, or 0 when it has none. */
static int index_of(struct nlmsghdr *h) {
  switch (h->nlmsg_type) {
  case RTM_NEWLINK:
    return ((struct ifinfomsg *)NLMSG_DATA(h))->ifi_index;
  case RTM_NEWADDR:
    return ((struct ifaddrmsg *)NLMSG_DATA(h))->ifa_index;
  case RTM_NEWNEIGH:
    return ((struct ndmsg *)NLMSG_DATA(h))->ndm_ifindex;
  case RTM_NEWROUTE: {
    struct rtmsg *r = NLMSG_DATA(h);
    int len = RTM_PAYLOAD(h);
    for (struct rtattr *a = RTM_RTA(r); RTA_OK(a, len); a = RTA_NEXT(a, len))
      if (a->rta_type == RTA_OIF)
        return *(int *)RTA_DATA(a);
    return 0;
  }
  }
  return 0;
}

/* Reads a dump to its NLMSG_DONE, printing lo's entries. */
static void read_dump(int fd, unsigned pid, const char *what) {
  int bad = 0;
  printf("%s:\n", what);
  for (;;) {
    struct sockaddr_nl from;
    socklen_t fl = sizeof from;
    int n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    if (n < 0) {
      printf("  recv: %s\n", strerrorname_np(errno));
      return;
    }
    if (fl != sizeof from || from.nl_pid != 0 || from.nl_groups != 0)
      bad++;
    for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_seq != (unsigned)seq || h->nlmsg_pid != pid)
        bad++;
      if (h->nlmsg_type == NLMSG_DONE) {
        printf("  done: len %d flags %#x error %d; bad %d\n", h->nlmsg_len, h->nlmsg_flags,
               *(int *)NLMSG_DATA(h), bad);
        return;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        printf("  error %d\n", ((struct nlmsgerr *)NLMSG_DATA(h))->error);
        return;
      }
      if (!(h->nlmsg_flags & NLM_F_MULTI))
        bad++;
      /* Neighbour entries come and go with traffic: not printed. */
      if (index_of(h) != 1 || h->nlmsg_type == RTM_NEWNEIGH)
        continue;
      printf(" type %d flags %#x\n", h->nlmsg_type, h->nlmsg_flags);
      if (h->nlmsg_type == RTM_NEWLINK)
        show_attrs_link(h);
      else if (h->nlmsg_type == RTM_NEWADDR)
        show_addr(h);
      else if (h->nlmsg_type == RTM_NEWROUTE)
        show_route(h);
    }
  }
}

/* Reads one datagram and prints its messages' headers (and errors). */
static void read_one(int fd, const char *what) {
  int n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  printf("%s: ", what);
  if (n < 0) {
    printf("%s\n", strerrorname_np(errno));
    return;
  }
  printf("%s\n", n > 0 ? "some bytes" : "0 bytes");
  for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
    /* A link's message has more attributes natively: its length is
     * printed only for the others. */
    printf("  type %d len %d flags %#x seq-ok %d\n", h->nlmsg_type,
           h->nlmsg_type == RTM_NEWLINK ? 0 : (int)h->nlmsg_len, h->nlmsg_flags,
           h->nlmsg_seq == (unsigned)seq);
    if (h->nlmsg_type == NLMSG_ERROR) {
      struct nlmsgerr *e = NLMSG_DATA(h);
      printf("  error %d (%s) echoed type %d len %d\n", e->error,
             e->error ? strerrorname_np(-e->error) : "ack", e->msg.nlmsg_type, e->msg.nlmsg_len);
    } else if (h->nlmsg_type == RTM_NEWLINK) {
      show_attrs_link(h);
    }
  }
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  CHECK(socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE));
  CHECK(socket(AF_NETLINK, SOCK_RAW, 32));
  CHECK(socket(AF_NETLINK, SOCK_RAW, -1));
  int d = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE);
  EXPECT(d >= 0);
  close(d);

  int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  struct sockaddr_nl sa;
  socklen_t sl = sizeof sa;
  CHECK(getsockname(fd, (struct sockaddr *)&sa, &sl));
  printf("unbound: len %d family %d pid %u groups %u\n", (int)sl, sa.nl_family, sa.nl_pid,
         sa.nl_groups);
  struct sockaddr_nl bad = {.nl_family = AF_UNIX};
  CHECK(bind(fd, (struct sockaddr *)&bad, sizeof bad));
  struct sockaddr_nl zero = {.nl_family = AF_NETLINK};
  CHECK(bind(fd, (struct sockaddr *)&zero, 8));
  CHECK(bind(fd, (struct sockaddr *)&zero, sizeof zero));
  sl = sizeof sa;
  CHECK(getsockname(fd, (struct sockaddr *)&sa, &sl));
  EXPECT(sa.nl_pid == (unsigned)getpid());
  struct sockaddr_nl other = {.nl_family = AF_NETLINK, .nl_pid = 12345};
  CHECK(bind(fd, (struct sockaddr *)&other, sizeof other));
  CHECK(bind(fd, (struct sockaddr *)&zero, sizeof zero));
  unsigned pid = sa.nl_pid;

  /* A second socket autobinds elsewhere; an explicit port in use is
   * EADDRINUSE. */
  int fd2 = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  struct sockaddr_nl mine = {.nl_family = AF_NETLINK, .nl_pid = pid};
  CHECK(bind(fd2, (struct sockaddr *)&mine, sizeof mine));
  CHECK(bind(fd2, (struct sockaddr *)&zero, sizeof zero));
  sl = sizeof sa;
  getsockname(fd2, (struct sockaddr *)&sa, &sl);
  EXPECT(sa.nl_pid != pid && sa.nl_pid != 0);
  sl = sizeof sa;
  CHECK(getpeername(fd2, (struct sockaddr *)&sa, &sl));
  printf("peer: len %d pid %u groups %u\n", (int)sl, sa.nl_pid, sa.nl_groups);
  close(fd2);

  int v, r;
  socklen_t vl = sizeof v;
  CHECK(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl));
  printf("SO_TYPE %d\n", v);
  CHECK(getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &vl));
  printf("SO_PROTOCOL %d\n", v);
  CHECK(getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &vl));
  printf("SO_DOMAIN %d\n", v);
  v = 1;
  CHECK(setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, sizeof v));
  vl = sizeof v;
  CHECK(getsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, &vl));
  printf("NETLINK_EXT_ACK %d\n", v);
  v = 0;
  CHECK(setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, sizeof v));
  CHECK(setsockopt(fd, SOL_NETLINK, 99, &v, sizeof v));
  v = 0;
  CHECK(setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &v, sizeof v));
  v = RTNLGRP_LINK;
  CHECK(setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &v, sizeof v));
  unsigned groups[4] = {0};
  vl = sizeof groups;
  CHECK(getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &vl));
  printf("memberships %#x\n", groups[0]);
  sl = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  printf("groups in name %#x\n", sa.nl_groups);
  CHECK(setsockopt(fd, SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, &v, sizeof v));

  /* Dumps. */
  struct rtgenmsg g = {.rtgen_family = AF_UNSPEC};
  nl_send(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &g, sizeof g);
  read_dump(fd, pid, "links");
  struct ifinfomsg ifi = {.ifi_family = AF_PACKET};
  nl_send(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &ifi, sizeof ifi);
  read_dump(fd, pid, "links (AF_PACKET, as getifaddrs asks)");
  nl_send(fd, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &g, sizeof g);
  read_dump(fd, pid, "addresses");
  struct ifaddrmsg ifa = {.ifa_family = AF_INET6};
  nl_send(fd, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &ifa, sizeof ifa);
  read_dump(fd, pid, "addresses (AF_INET6)");
  struct rtmsg rt = {.rtm_family = AF_INET};
  nl_send(fd, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, &rt, sizeof rt);
  read_dump(fd, pid, "routes (AF_INET)");
  rt.rtm_family = AF_INET6;
  nl_send(fd, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, &rt, sizeof rt);
  read_dump(fd, pid, "routes (AF_INET6)");
  struct ndmsg nd = {.ndm_family = AF_UNSPEC};
  nl_send(fd, RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, &nd, sizeof nd);
  read_dump(fd, pid, "neighbours");

  /* One link: by index, by name, with an ack; errors. */
  memset(&ifi, 0, sizeof ifi);
  ifi.ifi_index = 1;
  nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, &ifi, sizeof ifi);
  read_one(fd, "getlink 1");
  read_one(fd, "nothing more");
  nl_send(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, &ifi, sizeof ifi);
  read_one(fd, "getlink 1 with ack");
  read_one(fd, "the ack");
  struct {
    struct ifinfomsg i;
    struct rtattr a;
    char name[4];
  } byname = {.a = {.rta_len = RTA_LENGTH(3), .rta_type = IFLA_IFNAME}, .name = "lo"};
  nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, &byname, sizeof byname);
  read_one(fd, "getlink by name");
  memcpy(byname.name, "no0", 4);
  nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, &byname, sizeof byname);
  read_one(fd, "getlink unknown name");
  ifi.ifi_index = 9999;
  nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, &ifi, sizeof ifi);
  read_one(fd, "getlink 9999");
  ifi.ifi_index = 0;
  nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, &ifi, sizeof ifi);
  read_one(fd, "getlink without index or name");
  nl_send(fd, 0x3ff, NLM_F_REQUEST | NLM_F_ACK, &ifi, sizeof ifi);
  read_one(fd, "unknown type");
  v = 1;
  CHECK(setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &v, sizeof v));
  nl_send(fd, 0x3ff, NLM_F_REQUEST, &ifi, sizeof ifi);
  read_one(fd, "unknown type, capped");
  v = 0;
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &v, sizeof v);
  nl_send(fd, RTM_GETLINK, NLM_F_ACK, &ifi, sizeof ifi);
  read_one(fd, "not a request, with ack");
  nl_send(fd, RTM_GETLINK, 0, &ifi, sizeof ifi);
  read_one(fd, "not a request");
  nl_send(fd, NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, &ifi, sizeof ifi);
  read_one(fd, "NLMSG_NOOP with ack");

  /* MSG_PEEK, MSG_TRUNC. */
  ifi.ifi_index = 1;
  nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, &ifi, sizeof ifi);
  int full = recv(fd, buf, 0, MSG_PEEK | MSG_TRUNC);
  printf("peek with MSG_TRUNC: full length %s\n", full > 200 ? "> 200" : "small");
  struct iovec iov = {buf, 16};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  r = recvmsg(fd, &mh, MSG_PEEK);
  printf("peek 16: %d flags %#x\n", r, mh.msg_flags);
  r = recvmsg(fd, &mh, 0);
  printf("read 16: %d flags %#x\n", r, mh.msg_flags);
  CHECK(recv(fd, buf, sizeof buf, MSG_DONTWAIT));

  /* Setting lo up (it is up). */
  memset(&ifi, 0, sizeof ifi);
  ifi.ifi_index = 1;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  nl_send(fd, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, &ifi, sizeof ifi);
  read_one(fd, "set lo up");
  ifi.ifi_index = 9999;
  nl_send(fd, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, &ifi, sizeof ifi);
  read_one(fd, "set 9999 up");
  ifi.ifi_index = 1;
  nl_send(fd, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &ifi,
          sizeof ifi);
  read_one(fd, "new lo, exclusive");
  /* Adding lo's own address again. */
  struct {
    struct ifaddrmsg m;
    struct rtattr a;
    struct in_addr addr;
  } na = {.m = {.ifa_family = AF_INET, .ifa_prefixlen = 8, .ifa_index = 1},
          .a = {.rta_len = RTA_LENGTH(4), .rta_type = IFA_LOCAL}};
  na.addr.s_addr = htonl(INADDR_LOOPBACK);
  nl_send(fd, RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &na,
          sizeof na);
  read_one(fd, "add 127.0.0.1/8 again");
  na.m.ifa_index = 9999;
  nl_send(fd, RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &na,
          sizeof na);
  read_one(fd, "add on 9999");
  na.m.ifa_index = 1;
  na.addr.s_addr = htonl(0x7f000063);
  nl_send(fd, RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, &na, sizeof na);
  read_one(fd, "delete an address lo does not have");

  /* A short send to the kernel: nothing happens. */
  CHECK(send(fd, "abc", 3, 0));
  read_one(fd, "after a short send");
  close(fd);
  return 0;
}
