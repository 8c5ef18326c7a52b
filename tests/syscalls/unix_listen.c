/* Named unix stream and seqpacket sockets: bind to a path in /tmp (the
 * node, its mode, EADDRINUSE), abstract and autobound names, the lengths
 * getsockname and getpeername return for each, listen and its backlog
 * (non-blocking connects beyond it fail with EAGAIN, blocking ones wait
 * for accept), accept4's flags, SO_PEERCRED and SO_ACCEPTCONN, a
 * listener closed with connections not yet accepted, and the errors:
 * ECONNREFUSED, ENOENT, EPROTOTYPE, EISCONN, EINVAL, EOPNOTSUPP, EMFILE,
 * ENOTCONN. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

static socklen_t path_addr(struct sockaddr_un *a, const char *p) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  strcpy(a->sun_path, p);
  return offsetof(struct sockaddr_un, sun_path) + strlen(p) + 1;
}

static void show_name(const char *what, int fd, int peer) {
  struct sockaddr_un a;
  memset(&a, 0x55, sizeof a);
  socklen_t l = sizeof a;
  int r = peer ? getpeername(fd, (struct sockaddr *)&a, &l) : getsockname(fd, (struct sockaddr *)&a, &l);
  if (r < 0) {
    printf("%s: -1 %s\n", what, strerrorname_np(errno));
    return;
  }
  printf("%s: len %d family %d", what, (int)l, a.sun_family);
  if (l > offsetof(struct sockaddr_un, sun_path)) {
    if (a.sun_path[0])
      printf(" path '%s'", a.sun_path);
    else
      printf(" abstract '%.*s'", (int)(l - 3), a.sun_path + 1);
  }
  printf("\n");
}

static void names(void) {
  printf("-- names\n");
  struct sockaddr_un a;
  socklen_t l;
  umask(022);
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  show_name("unbound", s, 0);
  show_name("unbound peer", s, 1);
  l = path_addr(&a, "/tmp/sock");
  CHECK(bind(s, (struct sockaddr *)&a, l));
  show_name("bound", s, 0);
  struct stat st;
  CHECK(stat("/tmp/sock", &st));
  printf("S_ISSOCK %d mode %o size %ld\n", S_ISSOCK(st.st_mode), st.st_mode & 07777, (long)st.st_size);
  CHECK(bind(s, (struct sockaddr *)&a, l));
  int s2 = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(bind(s2, (struct sockaddr *)&a, l));
  /* A full-size address with no terminating NUL counted. */
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  strcpy(a.sun_path, "/tmp/sock2");
  CHECK(bind(s2, (struct sockaddr *)&a, sizeof a));
  show_name("bound by sizeof", s2, 0);
  CHECK(bind(s2, (struct sockaddr *)&a, sizeof a));
  CHECK(bind(s2, (struct sockaddr *)&a, 0));
  CHECK(bind(s2, (struct sockaddr *)&a, 2 + 107 + 2));
  CHECK(bind(s2, (struct sockaddr *)&a, 200));
  int s3 = socket(AF_UNIX, SOCK_STREAM, 0);
  a.sun_family = AF_INET;
  CHECK(bind(s3, (struct sockaddr *)&a, sizeof a));
  l = path_addr(&a, "/tmp/missing/sock");
  CHECK(bind(s3, (struct sockaddr *)&a, l));
  l = path_addr(&a, "/proc/sock");
  CHECK(bind(s3, (struct sockaddr *)&a, l) == 0 ? 0 : -1);
  /* Abstract names: the exact length given, nothing in the tree. */
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  memcpy(a.sun_path, "\0conformance-abstract", 21);
  CHECK(bind(s3, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 21));
  show_name("abstract", s3, 0);
  int s4 = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(bind(s4, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 21));
  /* The same name for another type is another name. */
  int d = socket(AF_UNIX, SOCK_DGRAM, 0);
  CHECK(bind(d, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 21));
  close(d);
  /* A shorter prefix is another name. */
  CHECK(bind(s4, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 12));
  close(s4);
  /* Autobind: five hex digits in the abstract namespace. */
  int s5 = socket(AF_UNIX, SOCK_STREAM, 0);
  a.sun_family = AF_UNIX;
  CHECK(bind(s5, (struct sockaddr *)&a, sizeof(sa_family_t)));
  memset(&a, 0, sizeof a);
  l = sizeof a;
  getsockname(s5, (struct sockaddr *)&a, &l);
  int hex = 1;
  for (int i = 1; i < 6; i++) hex &= !!strchr("0123456789abcdef", a.sun_path[i]);
  printf("autobind len %d first byte %d hex %d\n", (int)l, a.sun_path[0], hex);
  /* A short buffer gets the start and the whole length. */
  char small[4];
  l = sizeof small;
  CHECK(getsockname(s, (struct sockaddr *)small, &l));
  printf("short getsockname len %d\n", (int)l);
  l = -1;
  CHECK(getsockname(s, (struct sockaddr *)small, &l));
  CHECK(getsockname(s, NULL, NULL));
  close(s);
  close(s2);
  close(s3);
  close(s5);
  /* A name outlives its socket in the tree, and binding it is EADDRINUSE. */
  s = socket(AF_UNIX, SOCK_STREAM, 0);
  l = path_addr(&a, "/tmp/sock");
  CHECK(bind(s, (struct sockaddr *)&a, l));
  CHECK(unlink("/tmp/sock"));
  CHECK(unlink("/tmp/sock2"));
  close(s);
}

static void connections(void) {
  printf("-- connections\n");
  struct sockaddr_un a;
  socklen_t l = path_addr(&a, "/tmp/srv");
  int srv = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(listen(srv, 5));
  int c = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(connect(c, (struct sockaddr *)&a, l));
  CHECK(bind(srv, (struct sockaddr *)&a, l));
  CHECK(connect(c, (struct sockaddr *)&a, l));
  CHECK(accept(srv, NULL, NULL));
  int v = -1;
  socklen_t vl = sizeof v;
  CHECK(getsockopt(srv, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl));
  printf("SO_ACCEPTCONN %d\n", v);
  CHECK(listen(srv, 2));
  CHECK(fcntl(srv, F_SETFL, O_NONBLOCK));
  CHECK(accept(srv, NULL, NULL));
  CHECK(fcntl(srv, F_SETFL, 0));
  CHECK(connect(c, (struct sockaddr *)&a, l));
  show_name("client", c, 0);
  show_name("client peer", c, 1);
  struct sockaddr_un pa;
  socklen_t pl = sizeof pa;
  int s = accept4(srv, (struct sockaddr *)&pa, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
  printf("accept4 ok %d peer len %d\n", s >= 0, (int)pl);
  printf("FD_CLOEXEC %d O_NONBLOCK %d\n", fcntl(s, F_GETFD), (fcntl(s, F_GETFL) & O_NONBLOCK) != 0);
  show_name("accepted", s, 0);
  show_name("accepted peer", s, 1);
  CHECK(connect(c, (struct sockaddr *)&a, l));
  CHECK(listen(c, 1));
  CHECK(accept(c, NULL, NULL));
  struct ucred cr;
  socklen_t cl = sizeof cr;
  CHECK(getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl));
  printf("client peercred pid is ours %d uid %d gid %d len %d\n", cr.pid == getpid(), cr.uid, cr.gid, (int)cl);
  CHECK(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl));
  printf("accepted peercred pid is ours %d\n", cr.pid == getpid());
  char buf[16];
  CHECK(write(c, "ping", 4));
  CHECK(read(s, buf, sizeof buf));
  CHECK(write(s, "pong", 4));
  CHECK(read(c, buf, sizeof buf));
  CHECK(accept4(srv, NULL, NULL, 0x40));
  /* SOCK_NONBLOCK is the new file's: the listener's own flag decides
   * whether accept waits. */
  fcntl(srv, F_SETFL, O_NONBLOCK);
  CHECK(accept4(srv, NULL, NULL, SOCK_NONBLOCK));
  fcntl(srv, F_SETFL, 0);
  close(s);
  close(c);

  /* The accepted side of a connection made from another process. */
  pid_t child = xfork();
  if (child == 0) {
    int x = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un me;
    socklen_t ml = path_addr(&me, "/tmp/cli");
    bind(x, (struct sockaddr *)&me, ml);
    if (connect(x, (struct sockaddr *)&a, l) < 0) _exit(1);
    write(x, "from child", 10);
    char b[4];
    read(x, b, sizeof b);
    _exit(0);
  }
  pl = sizeof pa;
  s = accept(srv, (struct sockaddr *)&pa, &pl);
  printf("accepted from child: peer len %d '%s'\n", (int)pl, pa.sun_path);
  CHECK(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl));
  printf("peercred pid is the child %d\n", cr.pid == child);
  CHECK(read(s, buf, sizeof buf));
  close(s);
  int st;
  waitpid(child, &st, 0);
  printf("child exit %d\n", WEXITSTATUS(st));
  unlink("/tmp/cli");

  /* Errors. */
  int d = socket(AF_UNIX, SOCK_DGRAM, 0);
  CHECK(connect(d, (struct sockaddr *)&a, l));
  CHECK(listen(d, 1));
  CHECK(accept(d, NULL, NULL));
  struct sockaddr_un b;
  socklen_t bl = path_addr(&b, "/tmp/dgram");
  CHECK(bind(d, (struct sockaddr *)&b, bl));
  c = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(connect(c, (struct sockaddr *)&b, bl));
  int unl = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un u;
  socklen_t ul = path_addr(&u, "/tmp/notlistening");
  CHECK(bind(unl, (struct sockaddr *)&u, ul));
  CHECK(connect(c, (struct sockaddr *)&u, ul));
  close(open("/tmp/plain", O_CREAT | O_WRONLY, 0644));
  ul = path_addr(&u, "/tmp/plain");
  CHECK(connect(c, (struct sockaddr *)&u, ul));
  ul = path_addr(&u, "/tmp/none");
  CHECK(connect(c, (struct sockaddr *)&u, ul));
  CHECK(mkfifo("/tmp/fifo", 0644));
  ul = path_addr(&u, "/tmp/fifo");
  CHECK(connect(c, (struct sockaddr *)&u, ul));
  CHECK(connect(c, (struct sockaddr *)&u, 1));
  CHECK(connect(c, (struct sockaddr *)&u, 2));
  CHECK(connect(c, (struct sockaddr *)&u, 111));
  CHECK(connect(c, (struct sockaddr *)&u, -1));
  CHECK(connect(c, NULL, 8));
  /* A symlink to the socket reaches it. */
  CHECK(symlink("/tmp/srv", "/tmp/link"));
  ul = path_addr(&u, "/tmp/link");
  CHECK(connect(c, (struct sockaddr *)&u, ul));
  CHECK(accept(srv, NULL, NULL) >= 0);
  /* Renamed, the socket is found at its new name. */
  CHECK(rename("/tmp/srv", "/tmp/srv-moved"));
  int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(connect(c2, (struct sockaddr *)&a, l));
  ul = path_addr(&u, "/tmp/srv-moved");
  CHECK(connect(c2, (struct sockaddr *)&u, ul));
  /* Without write permission on the node: EACCES for others. */
  CHECK(chmod("/tmp/srv-moved", 0));
  child = xfork();
  if (child == 0) {
    if (setgid(65534) || setuid(65534)) _exit(2);
    int x = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(connect(x, (struct sockaddr *)&u, ul));
    _exit(0);
  }
  waitpid(child, &st, 0);
  CHECK(accept(srv, NULL, NULL) >= 0);
  close(c2);
  close(c);
  close(d);
  close(unl);
  close(srv);
  /* Closed, the name refuses. */
  c = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(connect(c, (struct sockaddr *)&u, ul));
  close(c);
  unlink("/tmp/srv-moved");
  unlink("/tmp/link");
  unlink("/tmp/dgram");
  unlink("/tmp/notlistening");
  unlink("/tmp/plain");
  unlink("/tmp/fifo");
}

static void backlog(void) {
  printf("-- backlog\n");
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  memcpy(a.sun_path, "\0backlog", 8);
  socklen_t l = offsetof(struct sockaddr_un, sun_path) + 8;
  int srv = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(bind(srv, (struct sockaddr *)&a, l));
  CHECK(listen(srv, 2));
  int ok = 0, c[8];
  for (int i = 0; i < 8; i++) {
    c[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (connect(c[i], (struct sockaddr *)&a, l) == 0) {
      ok++;
    } else {
      printf("connect %d: %s\n", i, strerrorname_np(errno));
      break;
    }
  }
  printf("connected before the backlog filled: %d\n", ok);
  struct pollfd pf = {srv, POLLIN | POLLOUT, 0};
  CHECK(poll(&pf, 1, 0));
  printf("listener revents %#x\n", pf.revents);
  /* A client may write before it is accepted. */
  CHECK(write(c[0], "early", 5));
  /* A blocking connect waits until accept makes room. */
  pid_t child = xfork();
  if (child == 0) {
    int x = socket(AF_UNIX, SOCK_STREAM, 0);
    int r = connect(x, (struct sockaddr *)&a, l);
    /* Said through the exit status, printed by the parent in order. */
    _exit(r == 0 ? 0 : 1);
  }
  usleep(50000);
  int s = accept(srv, NULL, NULL);
  char buf[8];
  CHECK(read(s, buf, sizeof buf));
  int st;
  waitpid(child, &st, 0);
  printf("blocking connect in the child: %d\n",
         WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1);
  /* Raising the backlog lets more in. */
  CHECK(listen(srv, 6));
  int x = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  CHECK(connect(x, (struct sockaddr *)&a, l));
  close(x);
  /* The listener goes with connections unaccepted: those clients see
   * ECONNRESET, then EOF. */
  close(srv);
  pf.fd = c[1];
  pf.events = POLLIN | POLLOUT | POLLRDHUP;
  CHECK(poll(&pf, 1, 0));
  printf("orphaned client revents %#x\n", pf.revents);
  CHECK(read(c[1], buf, sizeof buf));
  CHECK(read(c[1], buf, sizeof buf));
  for (int i = 0; i < ok; i++) close(c[i]);
  close(s);
  x = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(connect(x, (struct sockaddr *)&a, l));
  close(x);
}

static void emfile(void) {
  printf("-- EMFILE\n");
  struct sockaddr_un a;
  socklen_t l = path_addr(&a, "/tmp/emfile");
  int srv = socket(AF_UNIX, SOCK_STREAM, 0);
  bind(srv, (struct sockaddr *)&a, l);
  listen(srv, 4);
  int c = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(connect(c, (struct sockaddr *)&a, l));
  struct rlimit old, low;
  getrlimit(RLIMIT_NOFILE, &old);
  low = old;
  low.rlim_cur = c;
  setrlimit(RLIMIT_NOFILE, &low);
  CHECK(accept(srv, NULL, NULL));
  setrlimit(RLIMIT_NOFILE, &old);
  CHECK(accept(srv, NULL, NULL) >= 0);
  unlink("/tmp/emfile");
}

static void seqpacket(void) {
  printf("-- seqpacket\n");
  struct sockaddr_un a;
  socklen_t l = path_addr(&a, "/tmp/seq");
  int srv = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  CHECK(bind(srv, (struct sockaddr *)&a, l));
  CHECK(listen(srv, 1));
  int c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  char buf[16];
  CHECK(send(c, "x", 1, 0));
  CHECK(recv(c, buf, 1, MSG_DONTWAIT));
  CHECK(connect(c, (struct sockaddr *)&a, l));
  int s = accept(srv, NULL, NULL);
  CHECK(send(c, "one", 3, 0));
  CHECK(send(c, "two!", 4, 0));
  CHECK(recv(s, buf, sizeof buf, 0));
  CHECK(recv(s, buf, 2, 0));
  struct msghdr m = {0};
  struct iovec io = {buf, 2};
  m.msg_iov = &io;
  m.msg_iovlen = 1;
  CHECK(send(c, "three", 5, 0));
  CHECK(recvmsg(s, &m, 0));
  printf("msg_flags %#x\n", m.msg_flags);
  CHECK(send(c, "four", 4, 0));
  CHECK(recv(s, buf, 1, MSG_TRUNC));
  int st = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(connect(st, (struct sockaddr *)&a, l));
  close(c);
  CHECK(recv(s, buf, sizeof buf, 0));
  CHECK(recv(s, buf, sizeof buf, MSG_DONTWAIT));
  signal(SIGPIPE, SIG_IGN);
  CHECK(send(s, "x", 1, 0));
  signal(SIGPIPE, SIG_DFL);
  close(s);
  close(st);
  close(srv);
  unlink("/tmp/seq");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  names();
  connections();
  backlog();
  emfile();
  seqpacket();
  return 0;
}
