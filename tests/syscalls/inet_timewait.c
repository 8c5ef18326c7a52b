/* TIME_WAIT: the side that closes first keeps the connection's port for a
 * while. A listener's port stays bound after the server closed its
 * connections and itself (a new listener may have it only if both set
 * SO_REUSEADDR); a client's ephemeral port likewise. /proc/net/tcp lists the connection as
 * TIME_WAIT (state 06). A server that closes first thousands of times in a
 * row keeps accepting. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include "check.h"

static struct sockaddr_in v4(int port) {
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  return a;
}

static int listener(int port, int reuse) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (reuse)
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
  struct sockaddr_in a = v4(port);
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0) {
    printf("listener on %d: %s\n", port, strerrorname_np(errno));
    close(s);
    return -1;
  }
  return s;
}

/* One connection to `port`; `server_first`: the accepted side closes
 * first. Returns the client's port. */
static int one(int l, int port, int server_first) {
  int c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = v4(port);
  if (connect(c, (struct sockaddr *)&a, sizeof a) < 0) {
    printf("connect: %s\n", strerrorname_np(errno));
    return -1;
  }
  int s = accept(l, NULL, NULL);
  struct sockaddr_in me;
  socklen_t n = sizeof me;
  getsockname(c, (struct sockaddr *)&me, &n);
  char b;
  if (server_first) {
    close(s);
    if (read(c, &b, 1) != 0)
      printf("client: no EOF\n");
    close(c);
  } else {
    close(c);
    if (read(s, &b, 1) != 0)
      printf("server: no EOF\n");
    close(s);
  }
  return ntohs(me.sin_port);
}

/* Whether /proc/net/tcp has a TIME_WAIT line with local port `port`. */
static int listed_time_wait(int port) {
  FILE *f = fopen("/proc/net/tcp", "r");
  char line[512];
  int found = 0;
  fgets(line, sizeof line, f);
  while (fgets(line, sizeof line, f)) {
    unsigned lport, st;
    if (sscanf(line, " %*d: %*8X:%X %*8X:%*X %X", &lport, &st) == 2 && lport == (unsigned)port &&
        st == 6)
      found = 1;
  }
  fclose(f);
  return found;
}

int main(void) {
  /* The server closes first: its port is held. */
  int l = listener(47311, 0);
  one(l, 47311, 1);
  usleep(100000);
  EXPECT(listed_time_wait(47311));
  close(l);
  int again = listener(47311, 0);
  EXPECT(again < 0);
  int reused = listener(47311, 1);
  EXPECT(reused >= 0);
  close(reused);

  /* With SO_REUSEADDR on both, the new listener may have the port. */
  l = listener(47313, 1);
  one(l, 47313, 1);
  close(l);
  EXPECT(listener(47313, 0) < 0);
  reused = listener(47313, 1);
  EXPECT(reused >= 0);
  close(reused);

  /* The client closes first: its ephemeral port is held. */
  l = listener(47312, 1);
  int cport = one(l, 47312, 0);
  usleep(100000);
  EXPECT(listed_time_wait(cport));
  int b = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = v4(cport);
  CHECK(bind(b, (struct sockaddr *)&a, sizeof a));
  close(b);
  b = socket(AF_INET, SOCK_STREAM, 0);
  int one_ = 1;
  setsockopt(b, SOL_SOCKET, SO_REUSEADDR, &one_, sizeof one_);
  CHECK(bind(b, (struct sockaddr *)&a, sizeof a));
  close(b);

  /* Thousands of server-first closes. */
  int ok = 0;
  for (int i = 0; i < 3000; i++)
    ok += one(l, 47312, 1) > 0;
  printf("%d of 3000\n", ok);
  close(l);
  return 0;
}
