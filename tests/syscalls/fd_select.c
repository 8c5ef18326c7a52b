/* select and pselect6: argument errors in Linux's order, nfds bounds,
 * EBADF for a closed fd, the read/write/except mapping of pipe states,
 * whole words written back, the time left written back (not for a zero
 * timeout), pselect6's signal mask (a signal it unblocks interrupts it;
 * a signal it blocks does not); vmsplice errors, slots and directions;
 * splice, tee and vmsplice blocked on a pipe interrupted by a handled
 * signal: EINTR without SA_RESTART, restarted with it. */
#include <fcntl.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

struct sigarg {
  const sigset_t *ss;
  size_t len;
};

static long sel(int n, void *r, void *w, void *e, void *tv) {
  return syscall(SYS_select, n, r, w, e, tv);
}

static long psel(int n, void *r, void *w, void *e, void *ts, void *sig) {
  return syscall(SYS_pselect6, n, r, w, e, ts, sig);
}

static void errors(void) {
  printf("-- errors\n");
  struct timeval tv = {0, 0};
  unsigned long s[4] = {0};
  CHECK(sel(-1, NULL, NULL, NULL, &tv));
  CHECK(sel(0x7fffffff, NULL, NULL, NULL, &tv)); /* clamped, not EINVAL */
  CHECK(sel(1 << 20, NULL, NULL, NULL, &tv));
  CHECK(sel(1, (void *)8, NULL, NULL, &tv));
  CHECK(sel(0, (void *)8, NULL, NULL, &tv)); /* no bytes read */
  CHECK(sel(1, NULL, NULL, NULL, (void *)8));
  tv = (struct timeval){-1, 0};
  CHECK(sel(0, NULL, NULL, NULL, &tv));
  tv = (struct timeval){0, -1};
  CHECK(sel(0, NULL, NULL, NULL, &tv));
  tv = (struct timeval){0, 1000100}; /* microseconds carry over */
  CHECK(sel(0, NULL, NULL, NULL, &tv));
  printf("tv after: %ld %ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
  /* A closed fd in any set: EBADF, and the set is left alone. */
  tv = (struct timeval){0, 0};
  s[0] = 1UL << 40;
  CHECK(sel(41, s, NULL, NULL, &tv));
  CHECK(sel(41, NULL, s, NULL, &tv));
  CHECK(sel(41, NULL, NULL, s, &tv));
  printf("set kept: %d\n", s[0] == 1UL << 40);
  /* Past nfds it is not looked at; the whole word is written back. */
  CHECK(sel(40, s, NULL, NULL, &tv));
  printf("word cleared: %d\n", s[0] == 0);

  struct timespec ts = {0, 0};
  sigset_t m;
  sigemptyset(&m);
  struct sigarg a = {&m, 16};
  CHECK(psel(0, NULL, NULL, NULL, &ts, (void *)8));
  CHECK(psel(0, NULL, NULL, NULL, &ts, &a));
  a.ss = NULL; /* no mask: the size is not looked at */
  CHECK(psel(0, NULL, NULL, NULL, &ts, &a));
  a = (struct sigarg){(void *)8, 8};
  CHECK(psel(0, NULL, NULL, NULL, &ts, &a));
  a.len = 16;
  CHECK(psel(0, NULL, NULL, NULL, &ts, &a));
  CHECK(psel(0, NULL, NULL, NULL, (void *)8, &a)); /* the timespec first */
  ts.tv_nsec = 1000000000;
  CHECK(psel(0, NULL, NULL, NULL, &ts, NULL));
  ts.tv_nsec = -1;
  CHECK(psel(0, NULL, NULL, NULL, &ts, NULL));
  /* A read-only timeout: the time left is not written, no error. */
  static const struct timeval ro = {0, 1000};
  CHECK(sel(0, NULL, NULL, NULL, (void *)&ro));
}

static void states(void) {
  printf("-- readiness\n");
  int p[2], q[2];
  pipe(p);
  pipe(q);
  struct timeval tv = {0, 0};
  unsigned long r = 0, w = 0, e = 0;
#define BITS(x) (((x) >> p[0] & 1) | ((x) >> p[1] & 1) << 1 | ((x) >> q[0] & 1) << 2 | ((x) >> q[1] & 1) << 3)
#define ALL (1UL << p[0] | 1UL << p[1] | 1UL << q[0] | 1UL << q[1])
  r = w = e = ALL;
  CHECK(sel(q[1] + 1, &r, &w, &e, &tv));
  printf("empty: r=%lx w=%lx e=%lx\n", BITS(r), BITS(w), BITS(e));
  write(p[1], "x", 1);
  r = w = e = ALL;
  CHECK(sel(q[1] + 1, &r, &w, &e, &tv));
  printf("data: r=%lx w=%lx e=%lx\n", BITS(r), BITS(w), BITS(e));
  /* No writer: readable (POLLHUP). No reader: readable and writable
   * (POLLERR). */
  close(p[1]);
  close(q[0]);
  p[1] = q[0] = 63;
  r = w = e = ALL;
  CHECK(sel(q[1] + 1, &r, &w, &e, &tv));
  printf("ends gone: r=%lx w=%lx e=%lx\n", BITS(r), BITS(w), BITS(e));
  close(p[0]);
  close(q[1]);
  /* Full: not writable. */
  pipe(p);
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  char buf[4096] = {0};
  while (write(p[1], buf, sizeof buf) > 0) {
  }
  w = 1UL << p[1];
  CHECK(sel(p[1] + 1, NULL, &w, NULL, &tv));
  /* A blocked timeout runs out: the sets are cleared, the time left is
   * zero. */
  r = 1UL << p[1];
  w = 1UL << p[1];
  tv = (struct timeval){0, 20000};
  CHECK(sel(p[1] + 1, &r, &w, NULL, &tv));
  printf("timed out: r=%lx w=%lx tv=%ld.%06ld\n", r, w, (long)tv.tv_sec, (long)tv.tv_usec);
  struct timespec ts = {0, 20000000};
  w = 1UL << p[1];
  CHECK(psel(p[1] + 1, NULL, &w, NULL, &ts, NULL));
  printf("ts=%ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
  /* Ready before the timeout: time is left. */
  r = 1UL << p[0];
  tv = (struct timeval){5, 0};
  CHECK(sel(p[0] + 1, &r, NULL, NULL, &tv));
  printf("time left: %d\n", tv.tv_sec >= 4 && tv.tv_sec <= 5);
  close(p[0]);
  close(p[1]);
}

static volatile int handled;
static void on_sig(int s) {
  (void)s;
  handled++;
}

static void set_handler(int sig, int flags) {
  struct sigaction sa = {0};
  sa.sa_handler = on_sig;
  sa.sa_flags = flags;
  sigaction(sig, &sa, NULL);
}

/* A child that signals us every 5 ms until `ack` is readable, or
 * `count` times (if count > 0); then it writes `data` to `wfd` and reads
 * a page from `rfd` (each if >= 0). */
static int ack[2];
static pid_t nagger(int count, int wfd, const char *data, int rfd) {
  pid_t parent = getpid();
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    close(ack[1]);
    for (int i = 0; count == 0 || i < count; i++) {
      kill(parent, SIGUSR1);
      fd_set rs;
      FD_ZERO(&rs);
      FD_SET(ack[0], &rs);
      struct timeval tv = {0, 5000};
      if (select(ack[0] + 1, &rs, NULL, NULL, &tv) > 0) break;
    }
    if (wfd >= 0) write(wfd, data, strlen(data));
    if (rfd >= 0) {
      static char b[4096];
      read(rfd, b, sizeof b);
    }
    _exit(0);
  }
  return c;
}

static void done_with(pid_t c) {
  write(ack[1], "a", 1);
  int st;
  while (waitpid(c, &st, 0) < 0 && errno == EINTR) {
  }
  close(ack[0]);
  close(ack[1]);
}

/* Reads what a pipe holds without waiting: its length. */
static long drain(int fd) {
  unsigned long rs = 1UL << fd;
  struct timeval tv = {0, 0};
  if (syscall(SYS_select, fd + 1, &rs, NULL, NULL, &tv) <= 0) return 0;
  char b[64];
  return read(fd, b, sizeof b);
}

static void show(const char *what, long r) {
  if (r < 0)
    printf("%s: -1 %s\n", what, strerrorname_np(errno));
  else
    printf("%s: %ld\n", what, r);
}

static void masks(void) {
  printf("-- pselect6's mask\n");
  int p[2];
  pipe(p);
  set_handler(SIGUSR1, SA_RESTART);
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigprocmask(SIG_BLOCK, &block, &old);
  /* Pending and blocked; the temporary mask unblocks it: EINTR (never
   * restarted after a handler), the handler runs, and the old mask is
   * back afterwards. */
  kill(getpid(), SIGUSR1);
  handled = 0;
  sigset_t empty;
  sigemptyset(&empty);
  struct sigarg a = {&empty, 8};
  unsigned long r = 1UL << p[0];
  struct timespec ts = {5, 0};
  long n = psel(p[0] + 1, &r, NULL, NULL, &ts, &a);
  show("unblocked by the mask", n);
  sigset_t now;
  sigprocmask(SIG_SETMASK, NULL, &now);
  printf("handled=%d still blocked=%d\n", handled, sigismember(&now, SIGUSR1));
  /* Ready at once with a pending signal the mask blocks: it returns the
   * fd and the signal stays pending. */
  write(p[1], "x", 1);
  kill(getpid(), SIGUSR1);
  a.ss = &block;
  r = 1UL << p[0];
  ts = (struct timespec){5, 0};
  n = psel(p[0] + 1, &r, NULL, NULL, &ts, &a);
  show("ready, signal blocked", n);
  sigset_t pend;
  sigpending(&pend);
  printf("handled=%d pending=%d\n", handled, sigismember(&pend, SIGUSR1));
  sigprocmask(SIG_SETMASK, &old, NULL);
  printf("after unblocking: handled=%d\n", handled);
  close(p[0]);
  close(p[1]);
}

static void interrupts(void) {
  printf("-- interrupted waits\n");
  int p[2], q[2];
  char buf[16] = {0};
  pipe(p);
  pipe(q);
  static char page[4096] __attribute__((aligned(4096)));
  for (int restart = 0; restart < 2; restart++) {
    printf("%s:\n", restart ? "SA_RESTART" : "no SA_RESTART");
    set_handler(SIGUSR1, restart ? SA_RESTART : 0);
    /* Without SA_RESTART the child signals until told to stop; with it,
     * ten times, and then it writes (or drains), so a restarted call
     * completes. */
    int count = restart ? 10 : 0;
    pipe(ack);
    pid_t c = nagger(count, p[1], "sp", -1);
    show("  splice from an empty pipe", splice(p[0], NULL, q[1], NULL, 16, 0));
    done_with(c);
    printf("  left: %ld %ld\n", drain(p[0]), drain(q[0]));

    pipe(ack);
    c = nagger(count, p[1], "tee", -1);
    show("  tee from an empty pipe", tee(p[0], q[1], 16, 0));
    done_with(c);
    printf("  left: %ld %ld\n", drain(p[0]), drain(q[0]));

    pipe(ack);
    c = nagger(count, p[1], "vm", -1);
    struct iovec o = {buf, sizeof buf};
    show("  vmsplice from an empty pipe", vmsplice(p[0], &o, 1, 0));
    done_with(c);
    printf("  left: %ld\n", drain(p[0]));

    /* Into a full one-page pipe: a wait for room. */
    int r[2];
    pipe(r);
    fcntl(r[1], F_SETPIPE_SZ, 4096);
    struct iovec in = {page, sizeof page};
    show("  fill", vmsplice(r[1], &in, 1, 0));
    pipe(ack);
    c = nagger(count, -1, "", r[0]);
    show("  vmsplice into a full pipe", vmsplice(r[1], &in, 1, 0));
    done_with(c);
    close(r[0]);
    close(r[1]);
    pipe(r);
    fcntl(r[1], F_SETPIPE_SZ, 4096);
    show("  fill", vmsplice(r[1], &in, 1, 0));
    write(p[1], "s", 1);
    pipe(ack);
    c = nagger(count, -1, "", r[0]);
    show("  splice into a full pipe", splice(p[0], NULL, r[1], NULL, 1, 0));
    done_with(c);
    printf("  left: %ld\n", drain(p[0]));
    close(r[0]);
    close(r[1]);

    /* select is never restarted after a handler. */
    unsigned long rs = 1UL << p[0];
    struct timeval tv = {5, 0};
    pipe(ack);
    c = nagger(0, -1, "", -1);
    show("  select", sel(p[0] + 1, &rs, NULL, NULL, &tv));
    done_with(c);
    printf("  time left written: %d\n", tv.tv_sec < 5);
  }
  signal(SIGUSR1, SIG_DFL);
  close(p[0]);
  close(p[1]);
  close(q[0]);
  close(q[1]);
}

static void vmsplices(void) {
  printf("-- vmsplice\n");
  int v[2];
  pipe(v);
  char buf[8] = "abc";
  struct iovec io = {buf, 3};
  CHECK(vmsplice(v[1], &io, 1, 0xf)); /* every flag known, gift ignored */
  CHECK(vmsplice(v[1], &io, 1, 0x10));
  CHECK(vmsplice(v[1], &io, 1025, 0));
  CHECK(vmsplice(v[1], &io, -1, 0));
  CHECK(vmsplice(v[1], NULL, 1, 0));
  CHECK(vmsplice(v[1], NULL, 0, 0));
  CHECK(vmsplice(-1, &io, 1, 0));
  int dir = open("/tmp", O_RDONLY);
  CHECK(vmsplice(dir, &io, 1, 0));
  close(dir);
  CHECK(vmsplice(v[0], &io, 1, 0));
  CHECK(vmsplice(v[0], &io, 1, SPLICE_F_NONBLOCK));
  /* A fault in a later segment: what came before. */
  struct iovec bad[2] = {{buf, 3}, {(void *)8, 3}};
  CHECK(vmsplice(v[1], bad, 2, 0));
  CHECK(read(v[0], buf, 8));
  io.iov_len = 0;
  CHECK(vmsplice(v[1], &io, 1, 0));
  io.iov_len = (size_t)-1;
  CHECK(vmsplice(v[1], &io, 1, 0));
  /* Out of the pipe with a fault: EFAULT, the data stays. */
  write(v[1], "xyz", 3);
  struct iovec ob[2] = {{buf, 1}, {(void *)8, 3}};
  CHECK(vmsplice(v[0], ob, 2, 0));
  CHECK(read(v[0], buf, 8));
  /* Across segments, in both directions. */
  write(v[1], "abcdef", 6);
  struct iovec two[2] = {{buf, 2}, {buf + 4, 2}};
  CHECK(vmsplice(v[0], two, 2, 0));
  printf("%.2s %.2s\n", buf, buf + 4);
  CHECK(read(v[0], buf, 8));
  /* Each vmsplice takes a slot of its own: two small ones fill a
   * two-page pipe, for writes too. */
  CHECK(fcntl(v[1], F_SETPIPE_SZ, 8192));
  io = (struct iovec){buf, 3};
  CHECK(vmsplice(v[1], &io, 1, 0));
  CHECK(vmsplice(v[1], &io, 1, 0));
  CHECK(vmsplice(v[1], &io, 1, SPLICE_F_NONBLOCK));
  fcntl(v[1], F_SETFL, O_NONBLOCK);
  CHECK(write(v[1], "q", 1));
  CHECK(read(v[0], buf, 8));
  /* Small writes share a buffer: many fit in one slot. */
  CHECK(write(v[1], "q", 1));
  CHECK(write(v[1], "r", 1));
  CHECK(vmsplice(v[1], &io, 1, SPLICE_F_NONBLOCK));
  CHECK(write(v[1], "s", 1));
  CHECK(read(v[0], buf, 8));
  fcntl(v[1], F_SETFL, 0);
  /* A FIFO open for both: spliced into. */
  unlink("/tmp/ff");
  mkfifo("/tmp/ff", 0600);
  int rw = open("/tmp/ff", O_RDWR);
  CHECK(vmsplice(rw, &io, 1, 0));
  CHECK(read(rw, buf, 8));
  close(rw);
  unlink("/tmp/ff");
  /* No reader: EPIPE (SIGPIPE is ignored here). No writer: 0. */
  close(v[0]);
  CHECK(vmsplice(v[1], &io, 1, 0));
  close(v[1]);
  pipe(v);
  close(v[1]);
  CHECK(vmsplice(v[0], &io, 1, 0));
  close(v[0]);
}

int main(void) {
  setvbuf(stdout, NULL, _IOFBF, 4096);
  signal(SIGPIPE, SIG_IGN);
  errors();
  states();
  masks();
  vmsplices();
  interrupts();
  printf("-- done\n");
  return 0;
}
