/* Pseudo-terminal pairs: posix_openpt, grantpt, unlockpt, ptsname
 * (TIOCGPTN, TIOCSPTLCK, TIOCGPTLCK), the replica's node in /dev/pts
 * (its device number and name), TIOCGPTPEER, a new pair's settings,
 * ioctls only one end knows, errors on files that are not terminals,
 * the master reading EIO (and polling POLLHUP) once the replica closes,
 * the replica hung up once the master closes (reads 0, writes EIO, the
 * node gone), and a devpts mounted with `newinstance` and options (its
 * own numbering, its nodes' modes and group). Pair numbers differ
 * between runs: only relations are printed. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>
#include <dirent.h>
#include "check.h"

/* Everything the master can read within 200 ms of quiet, escaped. */
static void drain(int m, const char *what) {
  char buf[4096];
  size_t n = 0;
  for (;;) {
    struct pollfd p = {m, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0 || !(p.revents & POLLIN)) break;
    ssize_t r = read(m, buf + n, sizeof buf - n);
    if (r <= 0) break;
    n += r;
  }
  printf("%s: \"", what);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = buf[i];
    if (c == '\n')
      printf("\\n");
    else if (c == '\r')
      printf("\\r");
    else if (c < 32 || c >= 127)
      printf("\\x%02x", c);
    else
      putchar(c);
  }
  printf("\"\n");
}

static void settings(const char *who, int fd) {
  struct termios t;
  if (tcgetattr(fd, &t)) {
    printf("%s: tcgetattr %s\n", who, strerrorname_np(errno));
    return;
  }
  printf("%s: iflag=%o oflag=%o cflag=%o lflag=%o ispeed=%d ospeed=%d\n", who,
         t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag, (int)cfgetispeed(&t),
         (int)cfgetospeed(&t));
  printf("%s: cc=", who);
  for (int i = 0; i < 17; i++) printf("%d%s", t.c_cc[i], i < 16 ? "," : "\n");
}

static int in_pts(const char *dir, unsigned n) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  char want[16];
  snprintf(want, sizeof want, "%u", n);
  int found = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (!strcmp(e->d_name, want)) found = e->d_type == DT_CHR;
  closedir(d);
  return found;
}

static void pair(void) {
  printf("-- a pair\n");
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  EXPECT(m >= 0);
  CHECK(grantpt(m));
  unsigned n = 0;
  CHECK(ioctl(m, TIOCGPTN, &n));
  char *name = ptsname(m);
  char want[32];
  snprintf(want, sizeof want, "/dev/pts/%u", n);
  EXPECT(name && !strcmp(name, want));
  int lck = -1;
  CHECK(ioctl(m, TIOCGPTLCK, &lck));
  printf("locked=%d\n", lck);
  CHECK(open(want, O_RDWR | O_NOCTTY));
  CHECK(unlockpt(m));
  CHECK(ioctl(m, TIOCGPTLCK, &lck));
  printf("locked=%d\n", lck);
  int one = 1, zero = 0;
  CHECK(ioctl(m, TIOCSPTLCK, &one));
  CHECK(open(want, O_RDWR | O_NOCTTY));
  CHECK(ioctl(m, TIOCSPTLCK, &zero));
  int s = open(want, O_RDWR | O_NOCTTY);
  EXPECT(s >= 0);
  EXPECT(isatty(m) && isatty(s));
  struct stat st, mst;
  CHECK(fstat(s, &st));
  EXPECT(S_ISCHR(st.st_mode));
  EXPECT(major(st.st_rdev) == 136 && minor(st.st_rdev) == n);
  CHECK(fstat(m, &mst));
  printf("master: chr=%d dev=%u,%u\n", S_ISCHR(mst.st_mode), major(mst.st_rdev),
         minor(mst.st_rdev));
  char tn[64] = "";
  CHECK(ttyname_r(s, tn, sizeof tn));
  EXPECT(!strcmp(tn, want));
  EXPECT(in_pts("/dev/pts", n) == 1);
  unsigned dev = 0;
  CHECK(ioctl(s, TIOCGDEV, &dev));
  EXPECT(dev == ((136u << 8) | (n & 0xff) | ((n & ~0xffu) << 12)));
  /* A peer: the same replica, through the master. */
  int p = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  EXPECT(p >= 0);
  struct stat pst;
  CHECK(fstat(p, &pst));
  EXPECT(pst.st_rdev == st.st_rdev && pst.st_ino == st.st_ino);
  CHECK(ioctl(s, TIOCGPTPEER, O_RDWR));
  write(p, "peer\n", 5);
  drain(m, "from the peer");
  close(p);
  settings("master", m);
  settings("replica", s);
  /* What only the master knows, asked of the replica. */
  CHECK(ioctl(s, TIOCGPTN, &n));
  CHECK(ioctl(s, TIOCGPTLCK, &lck));
  CHECK(ioctl(s, TIOCSIG, SIGINT));
  int v = -1;
  CHECK(ioctl(m, TIOCGPKT, &v));
  printf("packet=%d\n", v);
  CHECK(ioctl(m, TIOCGETD, &v));
  printf("ldisc=%d\n", v);
  CHECK(ioctl(m, TIOCSIG, 0));
  CHECK(ioctl(m, TCFLSH, 7));
  CHECK(ioctl(s, TCXONC, 9));
  CHECK(ioctl(s, TIOCMGET, &v));
  CHECK(ioctl(s, TIOCOUTQ, &v));
  printf("outq=%d\n", v);
  CHECK(tcdrain(s));
  CHECK(tcsendbreak(s, 0));
  CHECK(ioctl(m, TIOCNOTTY));
  CHECK(ioctl(s, TIOCNOTTY));
  CHECK(ioctl(s, TIOCGPGRP, &v));
  CHECK(ioctl(s, TIOCGSID, &v));
  CHECK(ioctl(m, TIOCGSID, &v));
  v = -1;
  CHECK(ioctl(m, TIOCGPGRP, &v));
  printf("foreground=%d\n", v);
  CHECK(ioctl(s, TIOCSPGRP, &v));
  CHECK(ioctl(s, TIOCGEXCL, &v));
  printf("exclusive=%d\n", v);
  CHECK(ioctl(s, TIOCGSOFTCAR, &v));
  printf("softcar=%d\n", v);
  CHECK(ioctl(s, TIOCSSOFTCAR, &one));
  struct termios t;
  tcgetattr(s, &t);
  EXPECT(t.c_cflag & CLOCAL);
  CHECK(lseek(s, 0, SEEK_SET));
  CHECK(pread(m, &v, 1, 0));
  CHECK(ioctl(m, TCGETS, (void *)8));
  CHECK(ioctl(m, TIOCGWINSZ, (void *)8));
  /* The master reads EIO (and polls POLLHUP) once every replica file
   * closed, and again not once one opens. */
  close(s);
  struct pollfd pf = {m, POLLIN | POLLOUT, 0};
  CHECK(poll(&pf, 1, 0));
  printf("master after the replica closed: revents=%#x\n", pf.revents);
  char buf[64];
  CHECK(read(m, buf, sizeof buf));
  CHECK(write(m, "x", 1));
  s = open(want, O_RDWR | O_NOCTTY);
  EXPECT(s >= 0);
  drain(m, "echo of what the master wrote meanwhile");
  pf.revents = 0;
  CHECK(poll(&pf, 1, 0));
  printf("master after it opened again: revents=%#x\n", pf.revents);
  /* The master closes: the replica hangs up. */
  write(m, "unread\n", 7);
  drain(m, "echo");
  int s2 = dup(s);
  close(m);
  pf.fd = s;
  pf.revents = 0;
  CHECK(poll(&pf, 1, 0));
  printf("replica after the master closed: revents=%#x\n", pf.revents);
  CHECK(read(s, buf, sizeof buf));
  CHECK(read(s2, buf, sizeof buf));
  CHECK(write(s, "x", 1));
  CHECK(tcgetattr(s, &t));
  CHECK(ioctl(s, TIOCSPGRP, &v));
  CHECK(ioctl(s, TIOCGWINSZ, buf));
  EXPECT(isatty(s));
  CHECK(open(want, O_RDWR | O_NOCTTY));
  EXPECT(in_pts("/dev/pts", n) == 0);
  close(s);
  close(s2);
}

static void not_terminals(void) {
  printf("-- not terminals\n");
  int fd = open("/dev/null", O_RDWR);
  struct termios t;
  CHECK(tcgetattr(fd, &t));
  EXPECT(!isatty(fd));
  int p[2];
  pipe(p);
  CHECK(tcgetattr(p[0], &t));
  int v;
  CHECK(ioctl(p[0], TIOCGPGRP, &v));
  CHECK(ioctl(fd, TIOCGPTN, &v));
  CHECK(ioctl(fd, TIOCSCTTY, 0));
  errno = 0;
  EXPECT(ptsname(fd) == NULL);
  printf("ptsname errno: %s\n", strerrorname_np(errno));
  CHECK(unlockpt(fd));
  CHECK(grantpt(p[1]));
  close(fd);
  close(p[0]);
  close(p[1]);
  /* No controlling terminal: /dev/tty is ENXIO. */
  CHECK(open("/dev/tty", O_RDWR));
  CHECK(open("/dev/pts/ptmx", O_RDWR | O_DIRECTORY));
  CHECK(open("/dev/pts/4000000", O_RDWR));
  CHECK(open("/dev/pts/00", O_RDWR));
  CHECK(mkdir("/dev/pts/x", 0755));
}

static void instance(void) {
  printf("-- a devpts instance of its own\n");
  CHECK(mkdir("/tmp/pts", 0755));
  CHECK(mount("devpts", "/tmp/pts", "devpts", 0, "newinstance,bogus"));
  CHECK(mount("devpts", "/tmp/pts", "devpts", 0, "mode=999"));
  CHECK(mount("devpts", "/tmp/pts", "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0640,mode=0604,gid=7,max=2"));
  struct stat st;
  CHECK(stat("/tmp/pts", &st));
  printf("root: mode=%o uid=%d gid=%d ino=%ld\n", st.st_mode, st.st_uid,
         st.st_gid, (long)st.st_ino);
  CHECK(stat("/tmp/pts/ptmx", &st));
  printf("ptmx: mode=%o uid=%d gid=%d rdev=%u,%u ino=%ld\n", st.st_mode,
         st.st_uid, st.st_gid, major(st.st_rdev), minor(st.st_rdev),
         (long)st.st_ino);
  FILE *f = fopen("/proc/self/mounts", "r");
  char line[512];
  while (f && fgets(line, sizeof line, f))
    if (strstr(line, " /tmp/pts ")) {
      char *opts = strstr(line, "gid=");
      printf("mounts: %s", opts ? opts : line);
    }
  if (f) fclose(f);
  int m0 = open("/tmp/pts/ptmx", O_RDWR | O_NOCTTY);
  int m1 = open("/tmp/pts/ptmx", O_RDWR | O_NOCTTY);
  unsigned n0 = 99, n1 = 99;
  CHECK(ioctl(m0, TIOCGPTN, &n0));
  CHECK(ioctl(m1, TIOCGPTN, &n1));
  printf("numbers: %u %u\n", n0, n1);
  CHECK(open("/tmp/pts/ptmx", O_RDWR | O_NOCTTY));
  CHECK(stat("/tmp/pts/1", &st));
  printf("node: mode=%o uid=%d gid=%d rdev=%u,%u ino=%ld\n", st.st_mode,
         st.st_uid, st.st_gid, major(st.st_rdev), minor(st.st_rdev),
         (long)st.st_ino);
  unlockpt(m1);
  int s1 = ioctl(m1, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  EXPECT(s1 >= 0);
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", s1);
  char link[64] = "";
  readlink(path, link, sizeof link - 1);
  printf("peer: %s\n", link);
  CHECK(umount("/tmp/pts"));
  close(s1);
  close(m1);
  /* The number of a pair whose files are all closed is free again. */
  m1 = open("/tmp/pts/ptmx", O_RDWR | O_NOCTTY);
  CHECK(ioctl(m1, TIOCGPTN, &n1));
  printf("number again: %u\n", n1);
  close(m0);
  close(m1);
  CHECK(umount("/tmp/pts"));
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  pair();
  not_terminals();
  instance();
  return 0;
}
