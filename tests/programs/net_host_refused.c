/* What --network=host does not hand to the host: packet, raw and other
 * protocols' sockets, netlink beyond the sentry's NETLINK_ROUTE, control
 * messages (SCM_RIGHTS) and options outside the allow-list. Each is
 * refused by the sentry; were one passed on, the sentry's seccomp filter
 * (which lets socket(2) make only TCP and UDP sockets of AF_INET and
 * AF_INET6) would kill it and this program would not finish. */
#include "../syscalls/check.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  CHECK(socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)));
  CHECK(socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP)));
  CHECK(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
  CHECK(socket(AF_INET6, SOCK_RAW, IPPROTO_RAW));
  CHECK(socket(AF_INET, SOCK_RAW, IPPROTO_TCP));
  CHECK(socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP));
  CHECK(socket(AF_INET, SOCK_SEQPACKET, 0));
  CHECK(socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE));
  CHECK(socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT));
  CHECK(socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER));
  CHECK(socket(AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT));
  CHECK(socket(AF_VSOCK, SOCK_STREAM, 0));
  CHECK(socket(AF_ALG, SOCK_SEQPACKET, 0));
  CHECK(socket(AF_BLUETOOTH, SOCK_RAW, 0));
  /* The sentry's own route netlink still works. */
  int nl = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  EXPECT(nl >= 0);
  close(nl);

  /* A host TCP socket carries no files. */
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(l, (struct sockaddr *)&a, sizeof a));
  CHECK(listen(l, 1));
  socklen_t al = sizeof a;
  getsockname(l, (struct sockaddr *)&a, &al);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(connect(c, (struct sockaddr *)&a, sizeof a));
  int fd = 0;
  char cbuf[CMSG_SPACE(sizeof fd)] = {0};
  struct iovec iv = {"x", 1};
  struct msghdr mh = {.msg_iov = &iv, .msg_iovlen = 1, .msg_control = cbuf,
                      .msg_controllen = sizeof cbuf};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof fd);
  memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  CHECK(sendmsg(c, &mh, 0));

  /* Options outside the allow-list are not passed on. */
  char dev[] = "lo";
  CHECK(setsockopt(c, SOL_SOCKET, SO_BINDTODEVICE, dev, sizeof dev));
  int one = 1;
  CHECK(setsockopt(c, SOL_SOCKET, SO_DEBUG, &one, sizeof one));
  CHECK(setsockopt(c, SOL_SOCKET, SO_MARK, &one, sizeof one));
  CHECK(setsockopt(c, SOL_IP, IP_TRANSPARENT, &one, sizeof one));
  int v = 0;
  socklen_t vl = sizeof v;
  CHECK(getsockopt(c, SOL_SOCKET, SO_PEERCRED, &v, &vl));
  CHECK(send(c, "ok", 2, 0));
  close(c);
  close(l);
  printf("done\n");
  return 0;
}
