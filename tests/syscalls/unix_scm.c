/* Control messages on unix sockets: SCM_RIGHTS between processes (a pipe
 * and a file passed to a child, which uses them), several fds in one
 * message, MSG_CTRUNC when the buffer is short (the fds that did not fit
 * are closed) or absent, MSG_CMSG_CLOEXEC, MSG_PEEK duplicating fds,
 * EMFILE at the receiver, a stream reader stopping at a message with
 * fds; SCM_CREDENTIALS with SO_PASSCRED (the sender's pid, explicit
 * credentials, ESRCH, EPERM, readers not gluing messages of different
 * senders); the errors of bad control data (EBADF, EINVAL); in-flight fds
 * limited by RLIMIT_NOFILE without CAP_SYS_RESOURCE (ETOOMANYREFS); and
 * sockets that hold each other only in their queues collected once
 * closed (a socket sent over itself, a cycle of two). */
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

static pid_t xfork(void) {
  fflush(stdout);
  pid_t p = fork();
  if (p < 0) exit(99);
  return p;
}

/* Sends `n` fds with `data` on `s`. */
static int send_fds(int s, const int *fds, int n, const char *data) {
  char ctl[CMSG_SPACE(sizeof(int) * 256)];
  memset(ctl, 0, sizeof ctl);
  struct iovec io = {(void *)data, strlen(data)};
  struct msghdr m = {0};
  m.msg_iov = &io;
  m.msg_iovlen = 1;
  if (n > 0) {
    m.msg_control = ctl;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * n);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
  }
  return sendmsg(s, &m, 0);
}

/* Receives into `buf`, with a control buffer of `ctllen`; the fds found
 * go to `fds` (up to 16). Prints what came. */
static int recv_fds(int s, char *buf, size_t len, size_t ctllen, int flags, int *fds, int *nfds) {
  char ctl[1024];
  struct iovec io = {buf, len};
  struct msghdr m = {0};
  m.msg_iov = &io;
  m.msg_iovlen = 1;
  m.msg_control = ctllen ? ctl : NULL;
  m.msg_controllen = ctllen;
  int r = recvmsg(s, &m, flags);
  *nfds = 0;
  if (r < 0) {
    printf("recvmsg = -1 %s\n", strerrorname_np(errno));
    return r;
  }
  printf("recvmsg = %d flags%s%s%s controllen %d", r, m.msg_flags & MSG_CTRUNC ? " CTRUNC" : "",
         m.msg_flags & MSG_TRUNC ? " TRUNC" : "", m.msg_flags & MSG_CMSG_CLOEXEC ? " CMSG_CLOEXEC" : "",
         (int)m.msg_controllen);
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_type == SCM_RIGHTS) {
      int n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      printf(" rights[%d]", n);
      for (int i = 0; i < n && *nfds < 16; i++) memcpy(&fds[(*nfds)++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    } else if (c->cmsg_type == SCM_CREDENTIALS) {
      struct ucred u;
      memcpy(&u, CMSG_DATA(c), sizeof u);
      printf(" creds(len %d, pid ours %d, parent %d, uid %d gid %d)", (int)c->cmsg_len, u.pid == getpid(),
             u.pid != 0 && u.pid == getppid(), u.uid, u.gid);
    }
  }
  printf("\n");
  return r;
}

static int open_fds(void) {
  int n = 0;
  for (int fd = 0; fd < 256; fd++)
    if (fcntl(fd, F_GETFD) >= 0) n++;
  return n;
}

static void rights(void) {
  printf("-- SCM_RIGHTS\n");
  int sv[2], p[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  pipe(p);
  int f = open("/tmp/passed", O_CREAT | O_RDWR | O_TRUNC, 0644);
  write(f, "file contents", 13);
  /* The child prints only after the parent's line (a fixed order). */
  int go[2];
  pipe(go);
  pid_t c = xfork();
  if (c == 0) {
    close(sv[0]);
    char buf[32];
    int fds[16], n;
    if (read(go[0], buf, 1) != 1) _exit(1);
    if (recv_fds(sv[1], buf, sizeof buf, 256, 0, fds, &n) < 0 || n != 2) _exit(1);
    write(fds[0], "through the pipe", 16);
    lseek(fds[1], 0, SEEK_SET);
    int r = read(fds[1], buf, sizeof buf);
    printf("child read %d from the file\n", r);
    _exit(0);
  }
  close(sv[1]);
  int two[2] = {p[1], f};
  CHECK(send_fds(sv[0], two, 2, "fds"));
  write(go[1], "g", 1);
  close(p[1]);
  int st;
  waitpid(c, &st, 0);
  printf("child exit %d\n", WEXITSTATUS(st));
  char buf[32];
  CHECK(read(p[0], buf, sizeof buf));
  close(p[0]);
  close(sv[0]);

  /* Short, absent and exact control buffers. */
  socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
  int before = open_fds();
  int three[3] = {f, f, f};
  int got[16], n;
  CHECK(send_fds(sv[0], three, 3, "a"));
  recv_fds(sv[1], buf, sizeof buf, CMSG_SPACE(sizeof(int) * 2) - 4, 0, got, &n);
  for (int i = 0; i < n; i++) close(got[i]);
  printf("fds leaked after a short buffer: %d\n", open_fds() - before);
  CHECK(send_fds(sv[0], three, 3, "b"));
  recv_fds(sv[1], buf, sizeof buf, 0, 0, got, &n);
  CHECK(send_fds(sv[0], three, 3, "c"));
  recv_fds(sv[1], buf, sizeof buf, sizeof(struct cmsghdr), 0, got, &n);
  CHECK(send_fds(sv[0], three, 3, "d"));
  recv_fds(sv[1], buf, sizeof buf, CMSG_SPACE(sizeof(int) * 3), MSG_CMSG_CLOEXEC, got, &n);
  printf("FD_CLOEXEC %d %d\n", fcntl(got[0], F_GETFD), fcntl(got[2], F_GETFD));
  for (int i = 0; i < n; i++) close(got[i]);
  printf("fds leaked: %d\n", open_fds() - before);
  /* Peeking duplicates the fds; the receive gets them again. */
  CHECK(send_fds(sv[0], &f, 1, "peek"));
  recv_fds(sv[1], buf, sizeof buf, 64, MSG_PEEK, got, &n);
  if (n) close(got[0]);
  recv_fds(sv[1], buf, sizeof buf, 64, 0, got, &n);
  if (n) close(got[0]);
  /* EMFILE at the receiver: the message comes, the fd does not. */
  struct rlimit old, low;
  getrlimit(RLIMIT_NOFILE, &old);
  CHECK(send_fds(sv[0], &f, 1, "emfile"));
  int hi = 0;
  for (int fd = 0; fd < 64; fd++)
    if (fcntl(fd, F_GETFD) >= 0) hi = fd;
  low = old;
  low.rlim_cur = hi + 1;
  int holes = 0;
  for (int fd = 0; fd <= hi; fd++)
    if (fcntl(fd, F_GETFD) < 0) holes++;
  for (int i = 0; i < holes; i++) dup(0);
  setrlimit(RLIMIT_NOFILE, &low);
  recv_fds(sv[1], buf, sizeof buf, 64, 0, got, &n);
  setrlimit(RLIMIT_NOFILE, &old);
  printf("fds leaked: %d\n", open_fds() - before - holes);
  /* Bad control data. */
  int bad = 999;
  CHECK(send_fds(sv[0], &bad, 1, "x"));
  int many[254];
  for (int i = 0; i < 254; i++) many[i] = f;
  CHECK(send_fds(sv[0], many, 254, "x"));
  CHECK(send_fds(sv[0], many, 253, "x"));
  recv_fds(sv[1], buf, sizeof buf, 0, 0, got, &n);
  struct msghdr m = {0};
  struct iovec io = {"x", 1};
  m.msg_iov = &io;
  m.msg_iovlen = 1;
  char ctl[64] = {0};
  struct cmsghdr *cm = (struct cmsghdr *)ctl;
  m.msg_control = ctl;
  m.msg_controllen = sizeof ctl;
  cm->cmsg_len = 8;
  CHECK(sendmsg(sv[0], &m, 0));
  cm->cmsg_len = 100;
  CHECK(sendmsg(sv[0], &m, 0));
  cm->cmsg_len = CMSG_LEN(4);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = 99;
  CHECK(sendmsg(sv[0], &m, 0));
  cm->cmsg_level = 6;
  CHECK(sendmsg(sv[0], &m, 0));
  m.msg_controllen = 4;
  CHECK(sendmsg(sv[0], &m, 0));
  m.msg_control = (void *)8;
  m.msg_controllen = 64;
  CHECK(sendmsg(sv[0], &m, 0));
  m.msg_controllen = 1 << 20;
  CHECK(sendmsg(sv[0], &m, 0));
  m.msg_control = NULL;
  m.msg_controllen = 0;
  m.msg_iovlen = 1025;
  CHECK(sendmsg(sv[0], &m, 0));
  while (recv(sv[1], buf, sizeof buf, MSG_DONTWAIT) >= 0) {
  }
  close(sv[0]);
  close(sv[1]);

  /* A stream reader stops at a message carrying fds. */
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  CHECK(write(sv[0], "plain-", 6));
  CHECK(send_fds(sv[0], &f, 1, "withfd-"));
  CHECK(write(sv[0], "after", 5));
  recv_fds(sv[1], buf, sizeof buf, 64, 0, got, &n);
  if (n) close(got[0]);
  recv_fds(sv[1], buf, sizeof buf, 64, 0, got, &n);
  if (n) close(got[0]);
  recv_fds(sv[1], buf, sizeof buf, 64, MSG_DONTWAIT, got, &n);
  close(sv[0]);
  close(sv[1]);
  close(f);
  unlink("/tmp/passed");
}

static void credentials(void) {
  printf("-- SCM_CREDENTIALS\n");
  int sv[2];
  char buf[32];
  int got[16], n;
  socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
  int one = 1;
  CHECK(write(sv[0], "before", 6));
  CHECK(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one));
  int v = -1;
  socklen_t vl = sizeof v;
  CHECK(getsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &v, &vl));
  printf("SO_PASSCRED %d\n", v);
  recv_fds(sv[1], buf, sizeof buf, 64, 0, got, &n);
  CHECK(write(sv[0], "after", 5));
  recv_fds(sv[1], buf, sizeof buf, 64, 0, got, &n);
  CHECK(write(sv[0], "no buffer", 9));
  recv_fds(sv[1], buf, sizeof buf, 0, 0, got, &n);
  CHECK(write(sv[0], "short", 5));
  recv_fds(sv[1], buf, sizeof buf, CMSG_LEN(4), 0, got, &n);
  /* From a child. */
  pid_t c = xfork();
  if (c == 0) {
    write(sv[0], "child", 5);
    _exit(0);
  }
  waitpid(c, NULL, 0);
  recv_fds(sv[1], buf, sizeof buf, 64, 0, got, &n);
  /* Explicit credentials. */
  struct {
    struct cmsghdr h;
    struct ucred u;
  } cc;
  struct msghdr m = {0};
  struct iovec io = {"e", 1};
  m.msg_iov = &io;
  m.msg_iovlen = 1;
  m.msg_control = &cc;
  m.msg_controllen = CMSG_SPACE(sizeof(struct ucred));
  cc.h.cmsg_len = CMSG_LEN(sizeof(struct ucred));
  cc.h.cmsg_level = SOL_SOCKET;
  cc.h.cmsg_type = SCM_CREDENTIALS;
  cc.u.pid = getpid();
  cc.u.uid = getuid();
  cc.u.gid = getgid();
  CHECK(sendmsg(sv[0], &m, 0));
  recv_fds(sv[1], buf, sizeof buf, 64, 0, got, &n);
  cc.u.pid = 99999;
  CHECK(sendmsg(sv[0], &m, 0));
  cc.u.pid = getpid();
  cc.u.uid = -1;
  CHECK(sendmsg(sv[0], &m, 0));
  cc.u.uid = getuid();
  cc.h.cmsg_len = CMSG_LEN(8);
  CHECK(sendmsg(sv[0], &m, 0));
  cc.h.cmsg_len = CMSG_LEN(sizeof(struct ucred));
  c = xfork();
  if (c == 0) {
    setgid(65534);
    setuid(65534);
    cc.u.uid = 0;
    cc.u.gid = 65534;
    cc.u.pid = getpid();
    CHECK(sendmsg(sv[0], &m, 0));
    cc.u.uid = 65534;
    cc.u.pid = getppid();
    CHECK(sendmsg(sv[0], &m, 0));
    cc.u.pid = getpid();
    CHECK(sendmsg(sv[0], &m, 0));
    _exit(0);
  }
  waitpid(c, NULL, 0);
  recv_fds(sv[1], buf, sizeof buf, 64, 0, got, &n);
  close(sv[0]);
  close(sv[1]);

  /* Stream readers do not glue messages of different senders. */
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
  CHECK(write(sv[0], "mine-", 5));
  CHECK(write(sv[0], "mine2-", 6));
  c = xfork();
  if (c == 0) {
    write(sv[0], "childs", 6);
    _exit(0);
  }
  waitpid(c, NULL, 0);
  recv_fds(sv[1], buf, sizeof buf, 64, 0, got, &n);
  recv_fds(sv[1], buf, sizeof buf, 64, 0, got, &n);
  close(sv[0]);
  recv_fds(sv[1], buf, sizeof buf, 64, 0, got, &n);
  close(sv[1]);
}

static int capset_drop(unsigned drop_lo) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  if (syscall(SYS_capget, &h, d)) return -1;
  d[0].effective &= ~drop_lo;
  return syscall(SYS_capset, &h, d);
}

static void toomanyrefs(void) {
  printf("-- ETOOMANYREFS\n");
  pid_t c = xfork();
  if (c == 0) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    int f = open("/dev/null", O_RDONLY);
    /* Without CAP_SYS_RESOURCE and CAP_SYS_ADMIN, RLIMIT_NOFILE bounds
     * the fds one user has in flight. */
    if (capset_drop((1u << CAP_SYS_RESOURCE) | (1u << CAP_SYS_ADMIN))) _exit(2);
    struct rlimit r = {16, 16};
    setrlimit(RLIMIT_NOFILE, &r);
    int sent = 0;
    for (int i = 0; i < 40; i++) {
      if (send_fds(sv[0], &f, 1, "x") < 0) {
        printf("in flight %d: %s\n", sent, strerrorname_np(errno));
        break;
      }
      sent++;
    }
    int two[2] = {f, f};
    char buf[4];
    int got[16], n;
    recv_fds(sv[1], buf, sizeof buf, 64, 0, got, &n);
    close(got[0]);
    CHECK(send_fds(sv[0], two, 2, "y"));
    CHECK(send_fds(sv[0], two, 2, "y"));
    _exit(0);
  }
  int st;
  waitpid(c, &st, 0);
  printf("child exit %d\n", WEXITSTATUS(st));
}

/* Waits for `fd` to see EOF (its peer collected); prints what it saw. */
static void expect_eof(const char *what, int fd) {
  struct pollfd pf = {fd, POLLIN, 0};
  int r = 0;
  /* The collector runs when a socket is released. */
  for (int i = 0; i < 50 && r == 0; i++) {
    close(socket(AF_UNIX, SOCK_DGRAM, 0));
    r = poll(&pf, 1, 100);
  }
  char c;
  printf("%s: poll %d revents %#x read %d\n", what, r, pf.revents, (int)read(fd, &c, 1));
}

static void collection(void) {
  printf("-- collection\n");
  /* A socket passed over itself: its queue holds its own file. */
  int sv[2], w[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  socketpair(AF_UNIX, SOCK_STREAM, 0, w);
  int both[2] = {sv[1], w[1]};
  CHECK(send_fds(sv[0], both, 2, "self"));
  close(sv[0]);
  close(sv[1]);
  close(w[1]);
  expect_eof("watcher of a self-held socket", w[0]);
  close(w[0]);
  /* Two sockets each holding the other. */
  int a[2], b[2];
  socketpair(AF_UNIX, SOCK_DGRAM, 0, a);
  socketpair(AF_UNIX, SOCK_DGRAM, 0, b);
  socketpair(AF_UNIX, SOCK_STREAM, 0, w);
  int ab[2] = {b[1], w[1]};
  CHECK(send_fds(a[0], ab, 2, "x"));
  CHECK(send_fds(b[0], &a[1], 1, "y"));
  close(a[0]);
  close(a[1]);
  close(b[0]);
  close(b[1]);
  close(w[1]);
  expect_eof("watcher of a cycle", w[0]);
  close(w[0]);
  /* Still reachable: nothing is collected. */
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  socketpair(AF_UNIX, SOCK_STREAM, 0, w);
  CHECK(send_fds(sv[0], &w[1], 1, "kept"));
  close(w[1]);
  close(socket(AF_UNIX, SOCK_DGRAM, 0));
  struct pollfd pf = {w[0], POLLIN, 0};
  CHECK(poll(&pf, 1, 50));
  char buf[8];
  int got[16], n;
  recv_fds(sv[1], buf, sizeof buf, 64, 0, got, &n);
  CHECK(write(got[0], "alive", 5));
  CHECK(read(w[0], buf, sizeof buf));
  close(got[0]);
  close(sv[0]);
  close(sv[1]);
  close(w[0]);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  rights();
  credentials();
  toomanyrefs();
  collection();
  return 0;
}
