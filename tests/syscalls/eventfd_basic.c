/* eventfd and eventfd2: flags (EFD_SEMAPHORE, EFD_NONBLOCK, EFD_CLOEXEC,
 * unknown ones), the counter (reads take it all, or one in semaphore
 * mode), 8-byte reads and writes only, EAGAIN on an empty counter and on
 * one that would pass 0xfffffffffffffffe, EINVAL for 2^64-1, poll
 * readiness, a blocking read woken by another process, fork sharing the
 * counter. */
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

static void show_poll(int fd) {
  struct pollfd p = {fd, POLLIN | POLLOUT | POLLPRI, 0};
  poll(&p, 1, 0);
  printf("  poll revents %#x\n", p.revents);
}

/* Prints the lines of /proc/self/fdinfo/FD after the common ones (pos,
 * flags, mnt_id and ino legitimately differ), each cut at " ino:". */
static void fdinfo(int fd) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  FILE *f = fopen(path, "r");
  if (!f) {
    printf("  fdinfo: %s\n", strerrorname_np(errno));
    return;
  }
  while (fgets(buf, sizeof buf, f)) {
    if (!strncmp(buf, "pos:", 4) || !strncmp(buf, "flags:", 6) || !strncmp(buf, "mnt_id:", 7) ||
        !strncmp(buf, "ino:", 4) || !strncmp(buf, "eventfd-id:", 11))
      continue;
    char *cut = strstr(buf, " ino:");
    if (cut) strcpy(cut, "\n");
    printf("  fdinfo %s", buf);
  }
  fclose(f);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  printf("-- flags\n");
  CHECK(syscall(SYS_eventfd2, 0, 8));
  CHECK(syscall(SYS_eventfd2, 0, O_APPEND));
  int a = syscall(SYS_eventfd, 5);
  printf("eventfd: cloexec %d flags %#x\n", fcntl(a, F_GETFD), fcntl(a, F_GETFL) & ~O_LARGEFILE);
  int b = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  printf("eventfd2 cloexec nonblock: cloexec %d flags %#x\n", fcntl(b, F_GETFD), fcntl(b, F_GETFL) & ~O_LARGEFILE);
  struct stat st;
  fstat(b, &st);
  printf("fstat mode %o size %lld\n", st.st_mode, (long long)st.st_size);
  char link[64], path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", b);
  ssize_t n = readlink(path, link, sizeof link - 1);
  link[n > 0 ? n : 0] = 0;
  printf("link: %s\n", link);

  printf("-- counter\n");
  uint64_t v = 0, big[2] = {3, 4};
  CHECK(read(a, &v, 8));
  printf("read %llu\n", (unsigned long long)v);
  CHECK(read(b, &v, 8));
  CHECK(read(b, &v, 7));
  CHECK(read(b, &v, 0));
  CHECK(write(b, &v, 0));
  CHECK(write(b, &v, 7));
  CHECK(write(b, big, 16));
  v = 3;
  CHECK(write(b, &v, 8));
  CHECK(write(b, &v, 8));
  CHECK(read(b, big, 16));
  printf("read %llu\n", (unsigned long long)big[0]);
  CHECK(syscall(SYS_read, b, NULL, 8));
  CHECK(syscall(SYS_write, b, NULL, 8));
  v = 1;
  write(b, &v, 8);
  CHECK(syscall(SYS_read, b, NULL, 8));
  CHECK(read(b, &v, 8));
  CHECK(pread(b, &v, 8, 0));
  CHECK(lseek(b, 5, SEEK_SET));
  struct iovec iov[2] = {{&v, 4}, {(char *)&v + 4, 4}};
  v = 9;
  CHECK(readv(b, iov, 2));
  v = 6;
  write(b, &v, 8);
  CHECK(readv(b, iov, 2));
  printf("readv %llu\n", (unsigned long long)v);

  printf("-- limits\n");
  v = UINT64_MAX;
  CHECK(write(b, &v, 8));
  v = UINT64_MAX - 1;
  CHECK(write(b, &v, 8));
  show_poll(b);
  v = 1;
  CHECK(write(b, &v, 8));
  v = 0;
  CHECK(write(b, &v, 8));
  CHECK(read(b, &v, 8));
  printf("read %#llx\n", (unsigned long long)v);
  v = UINT64_MAX - 2;
  CHECK(write(b, &v, 8));
  show_poll(b);
  v = 1;
  CHECK(write(b, &v, 8));
  CHECK(read(b, &v, 8));
  show_poll(b);

  printf("-- semaphore mode\n");
  int s = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
  for (int i = 0; i < 4; i++) {
    v = 0;
    int r = read(s, &v, 8);
    printf("read %d value %llu %s\n", r, (unsigned long long)v, r < 0 ? strerrorname_np(errno) : "");
  }
  v = 2;
  write(s, &v, 8);
  show_poll(s);
  fdinfo(s);
  read(s, &v, 8);
  read(s, &v, 8);
  show_poll(s);
  fdinfo(s);
  v = 0x123456789;
  write(b, &v, 8);
  fdinfo(b);

  printf("-- a blocking read woken by another process\n");
  int c = eventfd(0, 0);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    usleep(50000);
    uint64_t x = 42;
    write(c, &x, 8);
    _exit(0);
  }
  CHECK(read(c, &v, 8));
  printf("read %llu\n", (unsigned long long)v);
  waitpid(pid, NULL, 0);
  printf("-- a blocking semaphore read in a child, a write in the parent\n");
  int sem = eventfd(0, EFD_SEMAPHORE);
  pid = fork();
  if (pid == 0) {
    uint64_t x;
    for (int i = 0; i < 3; i++) {
      read(sem, &x, 8);
      printf("child read %llu\n", (unsigned long long)x);
    }
    _exit(0);
  }
  usleep(50000);
  v = 3;
  write(sem, &v, 8);
  int st2;
  waitpid(pid, &st2, 0);
  printf("child exit %d\n", WEXITSTATUS(st2));
  return 0;
}
