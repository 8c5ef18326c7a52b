/* File-system benchmarks on /tmp, timed inside the program (start-up not
 * counted); prints nanoseconds per operation. Usage: fs MODE N [PATH]
 *   open   - open + close of an existing file (PATH, by default a file
 *            it creates in /tmp)
 *   stat   - stat of an existing file (PATH, as for open)
 *   read   - 64 KiB sequential reads of the existing file PATH, N passes
 *            over the whole file (one op = one 64 KiB read)
 *   rw     - 64 KiB writes of a 64 MiB file, then 64 KiB reads of it
 *            (N is ignored; one op = one 64 KiB write or read)
 *   getdents - list a 10,000-entry directory (one op = one full listing) */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "open";
  long n = argc > 2 ? atol(argv[2]) : 10000;
  const char *path = argc > 3 ? argv[3] : NULL;
  mkdir("/tmp/bench", 0755);
  if (!strcmp(mode, "open") || !strcmp(mode, "stat")) {
    int fd;
    if (!path) {
      path = "/tmp/bench/f";
      fd = open(path, O_CREAT | O_RDWR, 0644);
      close(fd);
    }
    struct stat st;
    if (stat(path, &st) < 0) {
      perror(path);
      return 1;
    }
    double a = now();
    for (long i = 0; i < n; i++) {
      if (mode[0] == 'o') {
        fd = open(path, O_RDONLY);
        if (fd < 0) {
          perror(path);
          return 1;
        }
        close(fd);
      } else if (stat(path, &st) < 0) {
        perror(path);
        return 1;
      }
    }
    printf("%.0f\n", (now() - a) / n);
  } else if (!strcmp(mode, "read")) {
    static char buf[65536];
    int fd = path ? open(path, O_RDONLY) : -1;
    if (fd < 0) {
      perror(path ? path : "read: no PATH");
      return 1;
    }
    long ops = 0;
    ssize_t r;
    double a = now();
    for (long i = 0; i < n; i++) {
      lseek(fd, 0, SEEK_SET);
      while ((r = read(fd, buf, sizeof buf)) > 0) ops++;
      if (r < 0) {
        perror(path);
        return 1;
      }
    }
    double t = now() - a;
    if (ops == 0) {
      printf("empty file %s\n", path);
      return 1;
    }
    printf("%.0f\n", t / ops);
  } else if (!strcmp(mode, "rw")) {
    static char buf[65536];
    memset(buf, 7, sizeof buf);
    int fd = open("/tmp/bench/big", O_CREAT | O_RDWR | O_TRUNC, 0644);
    long ops = (64 << 20) / sizeof buf;
    double a = now();
    for (long i = 0; i < ops; i++) write(fd, buf, sizeof buf);
    lseek(fd, 0, SEEK_SET);
    for (long i = 0; i < ops; i++) read(fd, buf, sizeof buf);
    printf("%.0f\n", (now() - a) / (2 * ops));
  } else if (!strcmp(mode, "getdents")) {
    char path[64];
    mkdir("/tmp/bench/d", 0755);
    for (int i = 0; i < 10000; i++) {
      snprintf(path, sizeof path, "/tmp/bench/d/f%05d", i);
      close(open(path, O_CREAT | O_WRONLY, 0644));
    }
    double a = now();
    long total = 0;
    for (long i = 0; i < n; i++) {
      DIR *d = opendir("/tmp/bench/d");
      while (readdir(d)) total++;
      closedir(d);
    }
    if (total != n * 10002) printf("bad count %ld\n", total);
    printf("%.0f\n", (now() - a) / n);
  }
  return 0;
}
