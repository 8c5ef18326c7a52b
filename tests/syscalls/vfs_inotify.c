/* inotify: inotify_init1, inotify_add_watch, inotify_rm_watch, and the
 * events each change in the file system sends (create, open, access,
 * modify, attrib, close, move with cookies, delete, the watched file's
 * own delete and move, IN_IGNORED), the flags (IN_ONLYDIR,
 * IN_DONT_FOLLOW, IN_MASK_ADD, IN_MASK_CREATE, IN_ONESHOT,
 * IN_EXCL_UNLINK), coalescing, IN_Q_OVERFLOW, FIONREAD, poll, blocking
 * reads, and the errors. */
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "check.h"

#define D "/tmp/in"

/* Names of watches, by instance fd and watch descriptor. */
static const char *labels[32][64];
static unsigned last_cookie;

static void mask_names(unsigned m, char *out) {
  static const struct {
    unsigned bit;
    const char *name;
  } names[] = {
      {IN_ACCESS, "ACCESS"},         {IN_MODIFY, "MODIFY"},
      {IN_ATTRIB, "ATTRIB"},         {IN_CLOSE_WRITE, "CLOSE_WRITE"},
      {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"},
      {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"},
      {IN_CREATE, "CREATE"},         {IN_DELETE, "DELETE"},
      {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
      {IN_UNMOUNT, "UNMOUNT"},       {IN_Q_OVERFLOW, "Q_OVERFLOW"},
      {IN_IGNORED, "IGNORED"},       {IN_ISDIR, "ISDIR"},
  };
  out[0] = 0;
  for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
    if (m & names[i].bit) {
      if (out[0])
        strcat(out, "|");
      strcat(out, names[i].name);
      m &= ~names[i].bit;
    }
  if (m)
    sprintf(out + strlen(out), "|%#x", m);
}

/* Prints every queued event; returns how many there were. */
static int drain(int fd, const char *what) {
  char buf[65536] __attribute__((aligned(8)));
  int count = 0;
  printf("-- %s\n", what);
  for (;;) {
    long n = read(fd, buf, sizeof buf);
    if (n <= 0) {
      if (n < 0 && errno != EAGAIN)
        printf("read: %s\n", strerrorname_np(errno));
      break;
    }
    for (char *p = buf; p < buf + n;) {
      struct inotify_event *e = (struct inotify_event *)p;
      char m[256];
      mask_names(e->mask, m);
      const char *cookie = "";
      if (e->mask & IN_MOVED_FROM) {
        cookie = e->cookie ? " cookie=new" : " cookie=0";
        last_cookie = e->cookie;
      } else if (e->mask & IN_MOVED_TO) {
        cookie = e->cookie == last_cookie ? " cookie=same" : " cookie=other";
      } else if (e->cookie) {
        cookie = " cookie=?";
      }
      const char *l = e->wd >= 0 && e->wd < 64 && labels[fd][e->wd] ? labels[fd][e->wd] : "?";
      printf("%s %s%s%s%s len=%u\n", e->wd == -1 ? "wd=-1" : l, m, cookie,
             e->len ? " name=" : "", e->len ? e->name : "", e->len);
      p += sizeof *e + e->len;
      count++;
    }
  }
  return count;
}

static int watch(int fd, const char *path, unsigned mask, const char *label) {
  int wd = inotify_add_watch(fd, path, mask);
  if (wd < 0) {
    printf("add_watch %s: %s\n", label, strerrorname_np(errno));
    return wd;
  }
  if (wd < 64)
    labels[fd][wd] = label;
  printf("add_watch %s = wd%d\n", label, wd);
  return wd;
}

static void touch(const char *path) {
  int f = open(path, O_WRONLY | O_CREAT, 0644);
  close(f);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  mkdir(D, 0755);
  CHECK(inotify_init1(0x1234));
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  EXPECT(fd >= 0);
  CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
  CHECK(fcntl(fd, F_GETFD));
  struct stat st;
  CHECK(fstat(fd, &st));
  printf("mode=%o\n", st.st_mode & 07777);

  /* Watches and their errors. */
  int dwd = watch(fd, D, IN_ALL_EVENTS, "dir");
  CHECK(inotify_add_watch(fd, D, IN_ALL_EVENTS) == dwd);
  CHECK(inotify_add_watch(fd, D, IN_ALL_EVENTS | IN_MASK_CREATE));
  CHECK(inotify_add_watch(fd, D, IN_MODIFY | IN_MASK_CREATE | IN_MASK_ADD));
  CHECK(inotify_add_watch(fd, D, 0));
  CHECK(inotify_add_watch(fd, D "/none", IN_ALL_EVENTS));
  CHECK(inotify_add_watch(99, D, IN_ALL_EVENTS));
  CHECK(inotify_add_watch(1, D, IN_ALL_EVENTS));
  CHECK(inotify_add_watch(fd, (char *)8, IN_ALL_EVENTS));
  touch(D "/f");
  CHECK(inotify_add_watch(fd, D "/f", IN_ALL_EVENTS | IN_ONLYDIR));
  drain(fd, "touch");

  /* What each change sends. */
  int f = open(D "/f", O_RDWR);
  CHECK(write(f, "abc", 3));
  CHECK(write(f, "def", 3));
  CHECK(pwrite(f, "x", 1, 0));
  char b[8];
  CHECK(pread(f, b, 4, 0));
  CHECK(read(f, b, 8));
  close(f);
  drain(fd, "write twice, read, close");
  f = open(D "/f", O_RDONLY);
  CHECK(read(f, b, 8));
  close(f);
  f = open(D "/f", O_PATH);
  close(f);
  drain(fd, "open read-only, read at the end, O_PATH");
  CHECK(chmod(D "/f", 0600));
  CHECK(chown(D "/f", -1, -1));
  CHECK(chown(D "/f", 0, -1));
  CHECK(truncate(D "/f", 2));
  CHECK(utimensat(AT_FDCWD, D "/f", NULL, 0));
  struct timespec ts[2] = {{0, UTIME_OMIT}, {1, 0}};
  CHECK(utimensat(AT_FDCWD, D "/f", ts, 0));
  ts[0].tv_nsec = 0;
  ts[1].tv_nsec = UTIME_OMIT;
  CHECK(utimensat(AT_FDCWD, D "/f", ts, 0));
  CHECK(setxattr(D "/f", "user.x", "1", 1, 0));
  CHECK(removexattr(D "/f", "user.x"));
  f = open(D "/f", O_WRONLY | O_TRUNC);
  close(f);
  drain(fd, "chmod, chown, truncate, utimes, xattrs, O_TRUNC");
  CHECK(mkdir(D "/sub", 0755));
  CHECK(link(D "/f", D "/hard"));
  CHECK(symlink("f", D "/sym"));
  CHECK(mknod(D "/fifo", S_IFIFO | 0600, 0));
  CHECK(rename(D "/hard", D "/hard2"));
  CHECK(rename(D "/sub", D "/sub2"));
  CHECK(unlink(D "/hard2"));
  CHECK(unlink(D "/fifo"));
  CHECK(rmdir(D "/sub2"));
  drain(fd, "mkdir, link, symlink, mknod, renames, unlink, rmdir");
  CHECK(mkdir(D "/sub", 0755));
  int sd = open(D "/sub", O_RDONLY | O_DIRECTORY);
  char dents[4096];
  CHECK(syscall(SYS_getdents64, sd, dents, sizeof dents) > 0);
  CHECK(syscall(SYS_getdents64, sd, dents, sizeof dents));
  close(sd);
  drain(fd, "a directory listed");

  /* A watched file: its own events, and its end. */
  int fwd = watch(fd, D "/f", IN_ALL_EVENTS, "file");
  f = open(D "/f", O_WRONLY);
  CHECK(write(f, "1", 1));
  CHECK(write(f, "2", 1));
  close(f);
  drain(fd, "write to a watched file in a watched directory");
  CHECK(link(D "/f", D "/g"));
  CHECK(unlink(D "/g"));
  drain(fd, "a second link made and removed");
  CHECK(rename(D "/f", D "/f2"));
  drain(fd, "the watched file renamed");
  f = open(D "/f2", O_RDWR);
  CHECK(unlink(D "/f2"));
  drain(fd, "unlinked while open");
  CHECK(write(f, "3", 1));
  close(f);
  drain(fd, "written and closed after unlink");
  CHECK(inotify_rm_watch(fd, fwd));

  /* Replacing a watched file by rename; exchanging. */
  touch(D "/a");
  touch(D "/b");
  watch(fd, D "/a", IN_ALL_EVENTS, "a");
  watch(fd, D "/b", IN_ALL_EVENTS, "b");
  drain(fd, "two files");
  CHECK(rename(D "/a", D "/b"));
  drain(fd, "a renamed over b");
  touch(D "/c");
  CHECK(renameat2(AT_FDCWD, D "/b", AT_FDCWD, D "/c", RENAME_EXCHANGE));
  drain(fd, "b and c exchanged");
  CHECK(unlink(D "/b"));
  CHECK(unlink(D "/c"));
  drain(fd, "both removed");

  /* A watched directory moved and removed. */
  int subwd = watch(fd, D "/sub", IN_ALL_EVENTS, "sub");
  CHECK(rename(D "/sub", D "/sub3"));
  CHECK(rmdir(D "/sub3"));
  drain(fd, "a watched directory moved and removed");
  CHECK(inotify_rm_watch(fd, subwd));

  /* rm_watch, IN_ONESHOT, IN_MASK_ADD, a mask without events, symlinks. */
  touch(D "/o");
  int owd = watch(fd, D "/o", IN_ATTRIB | IN_ONESHOT, "oneshot");
  CHECK(chmod(D "/o", 0600));
  CHECK(chmod(D "/o", 0644));
  drain(fd, "oneshot");
  CHECK(inotify_rm_watch(fd, owd));
  int mwd = watch(fd, D "/o", IN_MODIFY, "maskadd");
  CHECK(inotify_add_watch(fd, D "/o", IN_ATTRIB | IN_MASK_ADD) == mwd);
  CHECK(chmod(D "/o", 0600));
  CHECK(truncate(D "/o", 1));
  CHECK(inotify_add_watch(fd, D "/o", IN_ATTRIB) == mwd);
  CHECK(truncate(D "/o", 2));
  CHECK(inotify_rm_watch(fd, mwd));
  CHECK(inotify_rm_watch(fd, mwd));
  CHECK(inotify_rm_watch(fd, 777));
  drain(fd, "mask add and replace, rm_watch");
  CHECK(symlink("o", D "/olink"));
  watch(fd, D "/olink", IN_ATTRIB | IN_DONT_FOLLOW, "link");
  watch(fd, D "/olink", IN_ATTRIB, "target");
  CHECK(chmod(D "/o", 0644));
  CHECK(fchownat(AT_FDCWD, D "/olink", 0, 0, AT_SYMLINK_NOFOLLOW));
  drain(fd, "a symlink and its target");

  /* IN_EXCL_UNLINK: no events of unlinked children. */
  int efd = inotify_init1(IN_NONBLOCK);
  int ewd = inotify_add_watch(efd, D, IN_MODIFY | IN_CLOSE_WRITE | IN_EXCL_UNLINK);
  labels[efd][ewd] = "excl";
  f = open(D "/gone", O_WRONLY | O_CREAT, 0600);
  CHECK(write(f, "x", 1));
  CHECK(unlink(D "/gone"));
  CHECK(write(f, "y", 1));
  close(f);
  drain(efd, "IN_EXCL_UNLINK");
  close(efd);

  /* In-kernel copies: the source read, the destination written. */
  int src = open(D "/src", O_RDWR | O_CREAT, 0600);
  CHECK(write(src, "0123456789", 10));
  int dst = open(D "/dst", O_WRONLY | O_CREAT, 0600);
  drain(fd, "source and destination");
  off_t off = 0;
  CHECK(sendfile(dst, src, &off, 4));
  loff_t coff = 4;
  CHECK(copy_file_range(src, &coff, dst, NULL, 2, 0));
  close(src);
  close(dst);
  drain(fd, "sendfile, copy_file_range");

  /* Reading: FIONREAD, a buffer too small, poll, coalescing. */
  int n = -1;
  touch(D "/r");
  CHECK(ioctl(fd, FIONREAD, &n));
  printf("FIONREAD = %d\n", n);
  char small[16];
  CHECK(read(fd, small, sizeof small));
  char one[32];
  CHECK(read(fd, one, sizeof one));
  struct pollfd p = {.fd = fd, .events = POLLIN};
  CHECK(poll(&p, 1, 0));
  printf("revents=%#x\n", p.revents);
  int ep = epoll_create1(0);
  struct epoll_event ee = {.events = EPOLLIN, .data.u32 = 5}, got;
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ee));
  CHECK(epoll_wait(ep, &got, 1, 0));
  printf("epoll events=%#x data=%u\n", got.events, got.data.u32);
  drain(fd, "the rest");
  CHECK(epoll_wait(ep, &got, 1, 0));
  close(ep);
  CHECK(poll(&p, 1, 0));
  CHECK(read(fd, one, sizeof one));

  /* A blocking read wakes when another process makes a file. */
  int bfd = inotify_init1(0);
  labels[bfd][inotify_add_watch(bfd, D, IN_CREATE)] = "blocking";
  pid_t pid = fork();
  if (pid == 0) {
    usleep(50000);
    touch(D "/fromchild");
    _exit(0);
  }
  char bb[256];
  long r = read(bfd, bb, sizeof bb);
  struct inotify_event *e = (struct inotify_event *)bb;
  printf("blocking read = %ld: mask %#x name %s\n", r, e->mask, e->name);
  waitpid(pid, NULL, 0);
  close(bfd);

  /* Permissions: a watch needs read permission. */
  mkdir(D "/private", 0700);
  pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0)
      _exit(1);
    int ufd = inotify_init1(0);
    CHECK(inotify_add_watch(ufd, D "/private", IN_ALL_EVENTS));
    CHECK(inotify_add_watch(ufd, D, IN_ALL_EVENTS) > 0);
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  drain(fd, "the end");
  close(fd);

  /* The queue's limit: one IN_Q_OVERFLOW, then nothing. */
  int qfd = inotify_init1(IN_NONBLOCK);
  inotify_add_watch(qfd, D, IN_ATTRIB);
  for (int i = 0; i < 16384 + 10; i++)
    chmod(i % 2 ? D "/o" : D "/r", 0600 + (i % 2));
  CHECK(ioctl(qfd, FIONREAD, &n));
  printf("FIONREAD = %d\n", n);
  int total = 0, overflow = 0;
  static char qb[1 << 20];
  for (;;) {
    long k = read(qfd, qb, sizeof qb);
    if (k <= 0)
      break;
    for (char *q = qb; q < qb + k;) {
      struct inotify_event *ev = (struct inotify_event *)q;
      total++;
      if (ev->mask & IN_Q_OVERFLOW)
        overflow++, printf("overflow at %d: wd %d len %u\n", total, ev->wd, ev->len);
      q += sizeof *ev + ev->len;
    }
  }
  printf("events %d, overflows %d\n", total, overflow);
  close(qfd);

  return 0;
}
