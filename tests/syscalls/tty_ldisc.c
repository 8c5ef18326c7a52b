/* The line discipline, as seen from both ends of a pty pair: input the
 * master writes and what the replica reads of it (canonical lines,
 * VERASE, VKILL, VWERASE, VEOF, VEOL, VLNEXT, VREPRINT, ICRNL, INLCR,
 * IGNCR, ISTRIP, IUCLC), the echo the master reads back (ECHO, ECHOE,
 * ECHOK, ECHOKE, ECHONL, ECHOCTL, ECHOPRT, tab erase), output processing
 * of what the replica writes (OPOST, ONLCR, OCRNL, ONOCR, ONLRET, OLCUC,
 * XTABS), FIONREAD, TCFLSH, flow control (VSTOP/VSTART, TCXONC), and
 * settings changes (TCSETSF, canonical to raw with a pending line, CS8 and
 * CREAD kept). */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include "check.h"

#ifndef BOTHER
#define BOTHER 0010000
#endif

static int m, s;

static void show(const char *what, const char *buf, ssize_t n) {
  printf("%s: \"", what);
  for (ssize_t i = 0; i < n; i++) {
    unsigned char c = buf[i];
    if (c == '\n')
      printf("\\n");
    else if (c == '\r')
      printf("\\r");
    else if (c == '\t')
      printf("\\t");
    else if (c < 32 || c >= 127)
      printf("\\x%02x", c);
    else
      putchar(c);
  }
  printf("\"\n");
}

/* Everything the master can read within 200 ms of quiet. */
static void echo(const char *what) {
  char buf[8192];
  ssize_t n = 0;
  for (;;) {
    struct pollfd p = {m, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0 || !(p.revents & POLLIN)) break;
    ssize_t r = read(m, buf + n, sizeof buf - n);
    if (r <= 0) break;
    n += r;
  }
  show(what, buf, n);
}

static void type(const char *in) { write(m, in, strlen(in)); }

/* One read of the replica once it is readable (or after 300 ms). */
static void line(size_t max) {
  char buf[8192];
  struct pollfd p = {s, POLLIN, 0};
  if (poll(&p, 1, 300) <= 0) {
    printf("read: nothing readable\n");
    return;
  }
  ssize_t n = read(s, buf, max);
  if (n < 0) {
    printf("read: -1 %s\n", strerrorname_np(errno));
    return;
  }
  show("read", buf, n);
}

enum { IFLAG, OFLAG, LFLAG };

/* Turns flags of one field of the replica's settings on and off. */
static void set(int field, tcflag_t on, tcflag_t off) {
  struct termios t;
  tcgetattr(s, &t);
  tcflag_t *f = field == IFLAG ? &t.c_iflag : field == OFLAG ? &t.c_oflag : &t.c_lflag;
  *f = (*f | on) & ~off;
  tcsetattr(s, TCSANOW, &t);
}

static void cc(int which, int v) {
  struct termios t;
  tcgetattr(s, &t);
  t.c_cc[which] = v;
  tcsetattr(s, TCSANOW, &t);
}

static void reset(void) {
  struct termios t;
  tcgetattr(s, &t);
  t.c_iflag = ICRNL | IXON;
  t.c_oflag = OPOST | ONLCR;
  t.c_lflag = ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN;
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  t.c_cc[VEOL] = 0;
  t.c_cc[VEOL2] = 0;
  tcsetattr(s, TCSAFLUSH, &t);
  echo("(reset)");
}

static void canonical(void) {
  printf("-- canonical lines\n");
  type("hello\r");
  echo("echo");
  line(100);
  type("two\rlines\r");
  echo("echo");
  line(100);
  line(100);
  /* A short read leaves the rest of the line. */
  type("abcdef\r");
  echo("echo");
  line(3);
  line(100);
  /* Nothing before the line is complete. */
  type("partial");
  echo("echo");
  line(100);
  int n = -1;
  CHECK(ioctl(s, FIONREAD, &n));
  printf("FIONREAD=%d\n", n);
  type(" done\r");
  echo("echo");
  CHECK(ioctl(s, FIONREAD, &n));
  printf("FIONREAD=%d\n", n);
  line(100);
  /* VEOF ends a line without itself; alone it reads 0. */
  type("eof\x04");
  echo("echo");
  line(100);
  type("\x04");
  echo("echo");
  line(100);
  /* VEOL ends a line and is kept. */
  cc(VEOL, '!');
  type("bang!");
  echo("echo");
  line(100);
  reset();
}

static void editing(void) {
  printf("-- editing\n");
  type("abx\x7f" "c\r");
  echo("VERASE with ECHOE");
  line(100);
  type("one two three\x17\x17" "four\r");
  echo("VWERASE");
  line(100);
  type("gone\x15kept\r");
  echo("VKILL with ECHOKE");
  line(100);
  set(LFLAG, 0, ECHOKE);
  type("gone\x15kept\r");
  echo("VKILL with ECHOK, no ECHOKE");
  line(100);
  set(LFLAG, 0, ECHOE);
  type("ab\x7f\r");
  echo("VERASE without ECHOE");
  line(100);
  reset();
  type("a\tb\x7f\x7f\r");
  echo("erasing a tab");
  line(100);
  type("x\x01\x7f\r");
  echo("erasing a control character");
  line(100);
  set(LFLAG, ECHOPRT, 0);
  type("abc\x7f\x7f" "d\r");
  echo("ECHOPRT");
  line(100);
  reset();
  type("lit\x16\x7f\x16\x03\r");
  echo("VLNEXT");
  line(100);
  type("again\x12\r");
  echo("VREPRINT");
  line(100);
  /* Erasing at the start of a line does nothing. */
  type("\x7f\x17\x15ok\r");
  echo("erase at the start");
  line(100);
  reset();
}

static void echo_flags(void) {
  printf("-- echo flags\n");
  type("\x01\x1b[A\r");
  echo("ECHOCTL");
  line(100);
  set(LFLAG, 0, ECHOCTL);
  type("\x01z\r");
  echo("no ECHOCTL");
  line(100);
  set(LFLAG, ECHONL, ECHO);
  type("quiet\r");
  echo("ECHONL without ECHO");
  line(100);
  set(LFLAG, 0, ECHONL);
  type("silent\r");
  echo("no echo at all");
  line(100);
  reset();
}

static void input_flags(void) {
  printf("-- input flags\n");
  set(IFLAG, 0, ICRNL);
  type("cr\r\n");
  echo("no ICRNL");
  line(100);
  set(IFLAG, INLCR, 0);
  type("nl\n\r");
  echo("INLCR");
  line(100);
  set(IFLAG, IGNCR, INLCR);
  type("ign\r\r\n");
  echo("IGNCR");
  line(100);
  reset();
  set(IFLAG, ISTRIP, 0);
  type("\xc1\xe2\r");
  echo("ISTRIP");
  line(100);
  set(IFLAG, IUCLC, ISTRIP);
  type("MiXeD\r");
  echo("IUCLC");
  line(100);
  reset();
}

static void output_flags(void) {
  printf("-- output processing\n");
  write(s, "a\nb\r\n", 5);
  echo("ONLCR");
  set(OFLAG, OCRNL, ONLCR);
  write(s, "c\rd\n", 4);
  echo("OCRNL");
  set(OFLAG, ONOCR, OCRNL);
  write(s, "\rx\r\n", 4);
  echo("ONOCR");
  set(OFLAG, ONLRET | ONLCR, ONOCR);
  write(s, "e\n\rf\n", 5);
  echo("ONLRET");
  set(OFLAG, OLCUC, ONLRET);
  write(s, "lower\n", 6);
  echo("OLCUC");
  set(OFLAG, XTABS, OLCUC);
  write(s, "1\t12\t123456789\tx\n", 17);
  echo("XTABS");
  set(OFLAG, 0, OPOST);
  write(s, "raw\n\t\n", 6);
  echo("no OPOST");
  reset();
}

/* A write to the replica that does not wait. */
static void put(const char *out) {
  fcntl(s, F_SETFL, O_NONBLOCK);
  ssize_t n = write(s, out, strlen(out));
  printf("write: %zd %s\n", n, n < 0 ? strerrorname_np(errno) : "");
  fcntl(s, F_SETFL, 0);
}

static void flush_and_flow(void) {
  printf("-- flushing and flow control\n");
  type("flushed\r");
  echo("echo");
  CHECK(tcflush(s, TCIFLUSH));
  line(100);
  type("\x13");
  echo("VSTOP");
  put("held\n");
  struct pollfd p = {s, POLLOUT, 0};
  CHECK(poll(&p, 1, 0));
  type("typed\r");
  echo("echo while stopped");
  type("\x11");
  echo("VSTART");
  put("free\n");
  echo("after VSTART");
  line(100);
  CHECK(tcflow(s, TCOOFF));
  type("x\r");
  echo("after TCOOFF");
  put("out\n");
  type("\x11");
  echo("VSTART does not undo TCOOFF");
  CHECK(tcflow(s, TCOON));
  echo("after TCOON: the echo waits");
  put("out\n");
  echo("a write sends it");
  line(100);
  CHECK(tcflow(s, TCIOFF));
  echo("TCIOFF sends VSTOP");
  CHECK(tcflow(m, TCIOFF));
  echo("the master's TCIOFF");
  put("stopped by the master\n");
  CHECK(tcflow(m, TCION));
  echo("the master's TCION");
  put("started\n");
  echo("written");
  /* Output flushed by a signal character (NOFLSH off), with the echo. */
  type("\x13");
  echo("VSTOP");
  type("held echo");
  type("\x1c");
  echo("VQUIT while stopped");
  type("\x11");
  echo("VSTART");
  reset();
}

static void changes(void) {
  printf("-- settings changes\n");
  type("pending");
  echo("echo");
  struct termios t;
  tcgetattr(s, &t);
  t.c_lflag &= ~ICANON;
  tcsetattr(s, TCSANOW, &t);
  line(100);
  type("raw");
  echo("raw echo");
  t.c_lflag |= ICANON;
  tcsetattr(s, TCSANOW, &t);
  line(100);
  type("dropped");
  echo("echo");
  CHECK(tcsetattr(s, TCSAFLUSH, &t));
  line(100);
  t.c_cflag = 0;
  CHECK(tcsetattr(s, TCSANOW, &t));
  tcgetattr(s, &t);
  printf("cflag after 0: %o\n", t.c_cflag);
  t.c_cflag = B9600 | CS7 | PARENB | CSTOPB;
  CHECK(tcsetattr(s, TCSANOW, &t));
  tcgetattr(s, &t);
  printf("cflag after B9600|CS7|PARENB|CSTOPB: %o speed %d\n", t.c_cflag,
         (int)cfgetospeed(&t));
  struct termios2 {
    tcflag_t c_iflag, c_oflag, c_cflag, c_lflag;
    cc_t c_line, c_cc[19];
    speed_t c_ispeed, c_ospeed;
  } t2;
  CHECK(ioctl(s, TCGETS2, &t2));
  printf("termios2 speeds: %u %u\n", t2.c_ispeed, t2.c_ospeed);
  t2.c_cflag = (t2.c_cflag & ~CBAUD) | BOTHER;
  t2.c_ospeed = 12345;
  t2.c_ispeed = 0;
  CHECK(ioctl(s, TCSETS2, &t2));
  CHECK(ioctl(s, TCGETS2, &t2));
  printf("termios2 BOTHER: %o %u %u\n", t2.c_cflag & CBAUD, t2.c_ispeed,
         t2.c_ospeed);
  struct termio old;
  CHECK(ioctl(s, TCGETA, &old));
  printf("termio: lflag=%o cc[VINTR]=%d\n", old.c_lflag, old.c_cc[VINTR]);
  old.c_cc[VINTR] = 7;
  CHECK(ioctl(s, TCSETA, &old));
  tcgetattr(s, &t);
  printf("after TCSETA: VINTR=%d VSUSP=%d\n", t.c_cc[VINTR], t.c_cc[VSUSP]);
  reset();
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  m = posix_openpt(O_RDWR | O_NOCTTY);
  grantpt(m);
  unlockpt(m);
  s = open(ptsname(m), O_RDWR | O_NOCTTY);
  if (m < 0 || s < 0) {
    printf("no pair\n");
    return 1;
  }
  /* The replica's reads never block here: every read waits for poll. */
  canonical();
  editing();
  echo_flags();
  input_flags();
  output_flags();
  flush_and_flow();
  changes();
  return 0;
}
