/* Run inside the sandbox only, by tests/tests/procfs.rs: what the guest
 * sees in /proc. The mode is argv[1]. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static char buf[1 << 20];

static long slurp(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  long n = 0, r;
  while ((r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += r;
  close(fd);
  buf[n] = 0;
  return n;
}

/* Prints a file, NULs shown as spaces; or its error. */
static void dump(const char *label, const char *path) {
  long n = slurp(path);
  if (n < 0) {
    printf("%s: -1 %s\n", label, strerrorname_np(errno));
    return;
  }
  for (long i = 0; i < n; i++)
    if (!buf[i]) buf[i] = ' ';
  printf("%s: %s%s", label, buf, n && buf[n - 1] == '\n' ? "" : "\n");
}

static int cmp(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

static void listing(void) {
  DIR *d = opendir("/proc");
  if (!d) {
    printf("opendir: %s\n", strerrorname_np(errno));
    return;
  }
  char *names[4096];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 4096) names[n++] = strdup(e->d_name);
  closedir(d);
  qsort(names, n, sizeof *names, cmp);
  printf("pids:");
  for (int i = 0; i < n; i++)
    if (names[i][0] >= '0' && names[i][0] <= '9') printf(" %s", names[i]);
  printf("\n");
  for (int i = 0; i < n; i++) {
    if (names[i][0] < '0' || names[i][0] > '9') continue;
    char path[64], label[64];
    snprintf(path, sizeof path, "/proc/%s/cmdline", names[i]);
    snprintf(label, sizeof label, "cmdline of %s", names[i]);
    dump(label, path);
  }
  char link[256] = {0};
  readlink("/proc/self", link, sizeof link - 1);
  printf("self -> %s\n", link);
  memset(link, 0, sizeof link);
  readlink("/proc/thread-self", link, sizeof link - 1);
  printf("thread-self -> %s\n", link);
  d = opendir("/proc/self/task");
  printf("tasks:");
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.') printf(" %s", e->d_name);
  printf("\n");
  if (d) closedir(d);
  slurp("/proc/self/status");
  for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
    if (!strncmp(l, "Pid:", 4) || !strncmp(l, "PPid:", 5) || !strncmp(l, "Tgid:", 5) ||
        !strncmp(l, "NSpid:", 6))
      printf("%s\n", l);
  dump("loadavg", "/proc/loadavg");
  dump("uptime", "/proc/uptime");
  slurp("/proc/stat");
  for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
    if (!strncmp(l, "btime ", 6) || !strncmp(l, "processes ", 10) ||
        !strncmp(l, "procs_running ", 14))
      printf("%s\n", l);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (!strcmp(mode, "listing")) {
    listing();
  } else if (!strcmp(mode, "mounts")) {
    dump("mounts", "/proc/self/mounts");
    dump("mountinfo", "/proc/self/mountinfo");
    dump("mounts of 1", "/proc/1/mounts");
  } else if (!strcmp(mode, "probe") && argc > 2) {
    /* Host pids must not exist inside. */
    for (int i = 2; i < argc; i++) {
      char path[64], label[64];
      snprintf(path, sizeof path, "/proc/%s/cmdline", argv[i]);
      snprintf(label, sizeof label, "cmdline of %s", argv[i]);
      dump(label, path);
      snprintf(path, sizeof path, "/proc/%s", argv[i]);
      printf("dir of %s: %s\n", argv[i], access(path, F_OK) ? strerrorname_np(errno) : "exists");
    }
  } else if (!strcmp(mode, "hostname") && argc > 2) {
    int fd = open("/proc/sys/kernel/hostname", O_WRONLY | O_TRUNC);
    if (fd < 0 || write(fd, argv[2], strlen(argv[2])) < 0)
      printf("write: %s\n", strerrorname_np(errno));
    if (fd >= 0) close(fd);
    struct utsname u;
    uname(&u);
    printf("nodename=%s\n", u.nodename);
    dump("hostname", "/proc/sys/kernel/hostname");
  } else if (!strcmp(mode, "fds")) {
    for (int fd = 0; fd < 3; fd++) {
      char path[64], link[256] = {0};
      snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
      if (readlink(path, link, sizeof link - 1) < 0)
        snprintf(link, sizeof link, "-1 %s", strerrorname_np(errno));
      printf("fd %d -> %s\n", fd, link);
    }
  } else {
    printf("unknown mode %s\n", mode);
    return 2;
  }
  return 0;
}
