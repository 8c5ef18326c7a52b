/* TCP loopback throughput: a child writes MIB mebibytes in 64 KiB writes
 * over a 127.0.0.1 connection, the parent reads them in 64 KiB reads.
 * Prints nanoseconds per 64 KiB moved. Usage: tcp_throughput MIB */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

int main(int argc, char **argv) {
  long mib = argc > 1 ? atol(argv[1]) : 1024;
  long total = mib << 20;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1)) return 1;
  getsockname(l, (struct sockaddr *)&a, &al);
  static char buf[CHUNK];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t c = fork();
  if (c < 0) return 1;
  if (c == 0) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&a, sizeof a)) _exit(1);
    memset(buf, 'u', sizeof buf);
    for (long sent = 0; sent < total;) {
      ssize_t w = write(s, buf, CHUNK);
      if (w <= 0) _exit(1);
      sent += w;
    }
    _exit(0);
  }
  int s = accept(l, NULL, NULL);
  if (s < 0) return 1;
  long got = 0;
  while (got < total) {
    ssize_t r = read(s, buf, CHUNK);
    if (r <= 0) return 1;
    got += r;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int st;
  waitpid(c, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st)) return 1;
  double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
  printf("%.0f\n", ns / (total / CHUNK));
  return 0;
}
