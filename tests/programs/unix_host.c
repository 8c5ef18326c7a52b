/* What a sandboxed program sees of the host's unix sockets and of other
 * socket families. `inet`: socket(AF_INET) and AF_INET6 (the sandbox's
 * stack), SCTP, AF_PACKET and a netlink protocol the sandbox lacks, and
 * socketpair(AF_INET);
 * `connect PATH`: a stream connect to PATH; `bind PATH`: binds and
 * listens at PATH, prints "bound", then waits for a line on stdin;
 * `abstract NAME`: connects to, then binds, the abstract name NAME. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void result(const char *what, int r) {
  if (r < 0)
    printf("%s: %s\n", what, strerrorname_np(errno));
  else
    printf("%s: ok\n", what);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return 2;
  if (!strcmp(argv[1], "inet")) {
    result("socket AF_INET", socket(AF_INET, SOCK_STREAM, 0));
    result("socket AF_INET6", socket(AF_INET6, SOCK_DGRAM, 0));
    result("socket AF_INET SCTP", socket(AF_INET, SOCK_STREAM, 132));
    result("socket AF_PACKET", socket(AF_PACKET, SOCK_RAW, 0));
    result("socket AF_NETLINK NETLINK_AUDIT", socket(AF_NETLINK, SOCK_RAW, 9));
    int sv[2];
    result("socketpair AF_INET", socketpair(AF_INET, SOCK_STREAM, 0, sv));
    return 0;
  }
  if (argc < 3) return 2;
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  socklen_t l;
  if (!strcmp(argv[1], "abstract")) {
    memcpy(a.sun_path + 1, argv[2], strlen(argv[2]));
    l = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(argv[2]);
  } else {
    strncpy(a.sun_path, argv[2], sizeof a.sun_path - 1);
    l = sizeof a;
  }
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (!strcmp(argv[1], "connect")) {
    result("connect", connect(s, (struct sockaddr *)&a, l));
  } else if (!strcmp(argv[1], "abstract")) {
    result("connect", connect(s, (struct sockaddr *)&a, l));
    int b = socket(AF_UNIX, SOCK_STREAM, 0);
    result("bind", bind(b, (struct sockaddr *)&a, l));
  } else if (!strcmp(argv[1], "bind")) {
    result("bind", bind(s, (struct sockaddr *)&a, l));
    result("listen", listen(s, 1));
    char line[16];
    fgets(line, sizeof line, stdin);
  }
  return 0;
}
