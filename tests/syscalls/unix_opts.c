/* Socket options and /proc on unix sockets: SO_SNDBUF and SO_RCVBUF
 * (Linux doubles them and keeps minimums), SO_TYPE, SO_DOMAIN,
 * SO_PROTOCOL, SO_ERROR, SO_ACCEPTCONN, SO_RCVTIMEO and SO_SNDTIMEO
 * (rounded to the kernel's ticks; a receive times out with EAGAIN; a
 * signal ends it with EINTR even with SA_RESTART), short option buffers,
 * the errors (EINVAL, EDOM, ENOPROTOOPT, EOPNOTSUPP, ENOTSOCK); the
 * sandbox's /proc/net/unix line of a bound socket. */
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static int geti(int fd, int opt) {
  int v = -7;
  socklen_t l = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, opt, &v, &l) < 0) return -errno;
  return v;
}

static void buffers(void) {
  printf("-- buffers\n");
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  printf("default sndbuf %d rcvbuf %d\n", geti(s, SO_SNDBUF), geti(s, SO_RCVBUF));
  int vals[] = {0, 1, 1000, 2304, 4608, 65536, 100000, -1};
  for (unsigned i = 0; i < sizeof vals / sizeof *vals; i++) {
    int v = vals[i];
    if (v < 0) continue;
    CHECK(setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
    CHECK(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, sizeof v));
    printf("set %d: sndbuf %d rcvbuf %d\n", v, geti(s, SO_SNDBUF), geti(s, SO_RCVBUF));
  }
  int v = 1;
  CHECK(setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, 2));
  CHECK(setsockopt(s, SOL_SOCKET, SO_SNDBUF, NULL, 4));
  /* A small send buffer: a datagram larger than it is EMSGSIZE. */
  int d = socket(AF_UNIX, SOCK_DGRAM, 0);
  v = 4096;
  setsockopt(d, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
  struct sockaddr_un a = {AF_UNIX};
  memcpy(a.sun_path, "\0opts-d", 7);
  bind(d, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 7);
  static char big[16384];
  CHECK(sendto(d, big, 8160, 0, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 7));
  CHECK(sendto(d, big, 8161, 0, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 7));
  close(d);
  close(s);
}

static void kinds(void) {
  printf("-- type, domain, protocol\n");
  int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW};
  for (int i = 0; i < 4; i++) {
    int s = socket(AF_UNIX, types[i], i == 1 ? PF_UNIX : 0);
    printf("type %d: SO_TYPE %d SO_DOMAIN %d SO_PROTOCOL %d SO_ERROR %d SO_ACCEPTCONN %d SO_PASSCRED %d\n",
           types[i], geti(s, SO_TYPE), geti(s, SO_DOMAIN), geti(s, SO_PROTOCOL), geti(s, SO_ERROR),
           geti(s, SO_ACCEPTCONN), geti(s, SO_PASSCRED));
    close(s);
  }
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  printf("SO_SNDLOWAT %d SO_RCVLOWAT %d SO_REUSEADDR %d SO_KEEPALIVE %d\n", geti(s, SO_SNDLOWAT),
         geti(s, SO_RCVLOWAT), geti(s, SO_REUSEADDR), geti(s, SO_KEEPALIVE));
  int one = 1;
  CHECK(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
  CHECK(setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one));
  printf("SO_REUSEADDR %d SO_KEEPALIVE %d\n", geti(s, SO_REUSEADDR), geti(s, SO_KEEPALIVE));
  /* Short and odd buffers. */
  char c = 0x55;
  socklen_t l = 1;
  CHECK(getsockopt(s, SOL_SOCKET, SO_TYPE, &c, &l));
  printf("one byte: %d len %d\n", c, (int)l);
  long big = -1;
  l = sizeof big;
  CHECK(getsockopt(s, SOL_SOCKET, SO_TYPE, &big, &l));
  printf("long: len %d\n", (int)l);
  l = -1;
  CHECK(getsockopt(s, SOL_SOCKET, SO_TYPE, &c, &l));
  CHECK(getsockopt(s, SOL_SOCKET, SO_TYPE, &c, NULL));
  CHECK(getsockopt(s, SOL_SOCKET, 12345, &big, &l));
  l = sizeof big;
  CHECK(getsockopt(s, SOL_SOCKET, 12345, &big, &l));
  CHECK(getsockopt(s, 6, 1, &big, &l));
  CHECK(setsockopt(s, 6, 1, &one, sizeof one));
  CHECK(setsockopt(s, SOL_SOCKET, 12345, &one, sizeof one));
  CHECK(setsockopt(s, SOL_SOCKET, SO_TYPE, &one, sizeof one));
  CHECK(setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one));
  int f = open("/dev/null", O_RDONLY);
  CHECK(getsockopt(f, SOL_SOCKET, SO_TYPE, &big, &l));
  CHECK(setsockopt(f, SOL_SOCKET, SO_TYPE, &one, sizeof one));
  close(f);
  struct linger lg = {1, 5};
  CHECK(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
  memset(&lg, 0, sizeof lg);
  l = sizeof lg;
  CHECK(getsockopt(s, SOL_SOCKET, SO_LINGER, &lg, &l));
  printf("linger %d %d len %d\n", lg.l_onoff, lg.l_linger, (int)l);
  close(s);
}

static void on_alarm(int s) { (void)s; }

static void timeouts(void) {
  printf("-- timeouts\n");
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  struct timeval tvs[] = {{0, 1}, {0, 4000}, {0, 5000}, {1, 500000}, {2, 0}, {0, 0}};
  for (unsigned i = 0; i < sizeof tvs / sizeof *tvs; i++) {
    struct timeval tv = tvs[i];
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    socklen_t l = sizeof tv;
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, &l));
    printf("set %ld.%06ld: got %ld.%06ld len %d\n", (long)tvs[i].tv_sec, (long)tvs[i].tv_usec, (long)tv.tv_sec,
           (long)tv.tv_usec, (int)l);
  }
  struct timeval tv = {0, 1000000};
  CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  tv.tv_usec = -1;
  CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, 8));
  /* A receive that times out. */
  tv.tv_sec = 0;
  tv.tv_usec = 100000;
  CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  char c;
  CHECK(read(sv[0], &c, 1));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  printf("timed out after at least 100 ms: %d, under 2 s: %d\n", ms >= 99, ms < 2000);
  /* A signal ends a timed receive with EINTR, SA_RESTART or not. */
  struct sigaction sa = {0};
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  tv.tv_sec = 5;
  setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct itimerval it = {{0, 0}, {0, 50000}};
  setitimer(ITIMER_REAL, &it, NULL);
  CHECK(recv(sv[0], &c, 1, 0));
  /* Without a timeout, SA_RESTART restarts it: a writer ends it. */
  tv.tv_sec = 0;
  tv.tv_usec = 0;
  setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  fflush(stdout);
  pid_t p = fork();
  if (p == 0) {
    usleep(150000);
    write(sv[1], "w", 1);
    _exit(0);
  }
  setitimer(ITIMER_REAL, &it, NULL);
  CHECK(recv(sv[0], &c, 1, 0));
  /* A send that times out on a full socket. */
  tv.tv_usec = 100000;
  CHECK(setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
  static char big[65536];
  int w = 0;
  for (int i = 0; i < 64; i++) {
    if (write(sv[1], big, sizeof big) < 0) {
      printf("send timed out: %s after some writes: %d\n", strerrorname_np(errno), w > 0);
      break;
    }
    w++;
  }
  socklen_t l = sizeof tv;
  CHECK(getsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, &l));
  printf("sndtimeo %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
  close(sv[0]);
  close(sv[1]);
}

static void procnet(void) {
  printf("-- /proc/net/unix\n");
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {AF_UNIX, "/tmp/procnet-sock"};
  bind(s, (struct sockaddr *)&a, sizeof a);
  listen(s, 1);
  int d = socket(AF_UNIX, SOCK_DGRAM, 0);
  struct sockaddr_un b = {AF_UNIX};
  memcpy(b.sun_path, "\0procnet-abstract", 17);
  bind(d, (struct sockaddr *)&b, offsetof(struct sockaddr_un, sun_path) + 17);
  FILE *f = fopen("/proc/net/unix", "r");
  if (!f) {
    printf("fopen: %s\n", strerrorname_np(errno));
    return;
  }
  char line[512];
  fgets(line, sizeof line, f);
  printf("header: %s", line);
  while (fgets(line, sizeof line, f)) {
    if (!strstr(line, "procnet")) continue;
    char num[32], path[256];
    unsigned ref, proto, flags, type, st;
    unsigned long ino;
    int n = sscanf(line, "%31s %x %x %x %x %x %lu %255s", num, &ref, &proto, &flags, &type, &st, &ino, path);
    printf("fields %d protocol %u flags %#x type %u state %u path %s\n", n, proto, flags, type, st, path);
  }
  fclose(f);
  close(s);
  close(d);
  unlink("/tmp/procnet-sock");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  buffers();
  kinds();
  timeouts();
  procnet();
  return 0;
}
