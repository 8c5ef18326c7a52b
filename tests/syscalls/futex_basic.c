/* futex with one thread: FUTEX_WAIT/FUTEX_WAIT_BITSET value mismatches
 * and timeouts (relative, absolute, both clocks), FUTEX_WAKE with no
 * waiters, the private flag, misaligned and bad addresses, bad timeouts,
 * bitset 0, unknown operations, and the order of the checks. */
#include <linux/futex.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#define BAD ((void *)8)
#define KADDR ((void *)0xffff800000000000UL)
#define P FUTEX_PRIVATE_FLAG
#define RT FUTEX_CLOCK_REALTIME

static long fx(void *addr, int op, unsigned val, const void *ts, void *addr2, unsigned val3) {
  return syscall(SYS_futex, addr, op, val, ts, addr2, val3);
}

static long long now_ns(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static struct timespec abs_after(clockid_t c, long long ns) {
  long long t = now_ns(c) + ns;
  return (struct timespec){t / 1000000000, t % 1000000000};
}

static uint32_t word __attribute__((aligned(8))) = 5;
static char *ro, *edge;

static void timed(const char *what, void *addr, int op, unsigned val, const struct timespec *ts,
                  unsigned val3, long long min_ns) {
  long long t0 = now_ns(CLOCK_MONOTONIC);
  long r = fx(addr, op, val, ts, NULL, val3);
  const char *e = r < 0 ? strerrorname_np(errno) : "ok";
  long long dt = now_ns(CLOCK_MONOTONIC) - t0;
  printf("%s: %ld %s waited=%d\n", what, r, e, dt >= min_ns && dt < 5000000000LL);
}

int main(void) {
  struct timespec ts;
  ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  edge = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ro == MAP_FAILED || edge == MAP_FAILED || mprotect(edge + 4096, 4096, PROT_NONE))
    return 1;
  edge += 4096;
  char *bytes = (char *)&word;

  printf("-- value mismatch\n");
  CHECK(fx(&word, FUTEX_WAIT, 4, NULL, NULL, 0));
  CHECK(fx(&word, FUTEX_WAIT | P, 6, NULL, NULL, 0));
  CHECK(fx(&word, FUTEX_WAIT_BITSET, 0, NULL, NULL, ~0u));
  CHECK(fx(&word, FUTEX_WAIT_BITSET | P, 0, NULL, NULL, 1));
  CHECK(fx(&word, FUTEX_WAIT_BITSET | P | RT, 0, NULL, NULL, 1));
  CHECK(fx(ro, FUTEX_WAIT, 1, NULL, NULL, 0)); /* read-only memory can be waited on */
  CHECK(fx(ro, FUTEX_WAIT | P, 1, NULL, NULL, 0));
  ts = (struct timespec){0, 0};
  CHECK(fx(&word, FUTEX_WAIT, 4, &ts, NULL, 0)); /* EAGAIN beats ETIMEDOUT */

  printf("-- timeouts\n");
  ts = (struct timespec){0, 20000000};
  timed("wait 20ms", &word, FUTEX_WAIT, 5, &ts, 0, 20000000);
  timed("wait private 20ms", &word, FUTEX_WAIT | P, 5, &ts, 0, 20000000);
  timed("wait ro", ro, FUTEX_WAIT | P, 0, &ts, 0, 20000000);
  ts = (struct timespec){0, 0};
  timed("wait 0", &word, FUTEX_WAIT | P, 5, &ts, 0, 0);
  ts = (struct timespec){0, 20000000};
  timed("wait realtime flag", &word, FUTEX_WAIT | P | RT, 5, &ts, 0, 20000000);
  ts = abs_after(CLOCK_MONOTONIC, 20000000);
  timed("bitset monotonic abs", &word, FUTEX_WAIT_BITSET | P, 5, &ts, ~0u, 15000000);
  ts = abs_after(CLOCK_REALTIME, 20000000);
  timed("bitset realtime abs", &word, FUTEX_WAIT_BITSET | P | RT, 5, &ts, 1, 15000000);
  ts = (struct timespec){1, 0};
  timed("bitset past", &word, FUTEX_WAIT_BITSET | P, 5, &ts, 1, 0);
  timed("bitset realtime past", &word, FUTEX_WAIT_BITSET | RT, 5, &ts, 1, 0);
  ts = (struct timespec){0, 0};
  timed("bitset zero", &word, FUTEX_WAIT_BITSET, 5, &ts, 1, 0);

  printf("-- bad timeouts\n");
  ts = (struct timespec){0, 1000000000};
  CHECK(fx(&word, FUTEX_WAIT, 5, &ts, NULL, 0));
  ts = (struct timespec){0, -1};
  CHECK(fx(&word, FUTEX_WAIT_BITSET, 5, &ts, NULL, 1));
  ts = (struct timespec){-1, 0};
  CHECK(fx(&word, FUTEX_WAIT | P, 5, &ts, NULL, 0));
  CHECK(fx(&word, FUTEX_WAIT | P, 4, &ts, NULL, 0));     /* timeout before value */
  CHECK(fx(bytes + 1, FUTEX_WAIT, 5, &ts, NULL, 0));     /* before alignment */
  CHECK(fx(&word, FUTEX_WAIT | P, 5, BAD, NULL, 0));
  CHECK(fx(bytes + 1, FUTEX_WAIT | P, 5, BAD, NULL, 0)); /* EFAULT first */
  CHECK(fx(&word, FUTEX_WAIT_BITSET | P, 5, BAD, NULL, 0));
  CHECK(fx(&word, 99 | P, 5, BAD, NULL, 0));             /* unknown op: no timeout read */
  /* FUTEX_WAKE takes no timeout: the pointer slot is not read. */
  CHECK(fx(&word, FUTEX_WAKE | P, 1, BAD, NULL, 0));
  ts = (struct timespec){-1, -1};
  CHECK(fx(&word, FUTEX_WAKE, 1, &ts, NULL, 0));

  printf("-- wake\n");
  CHECK(fx(&word, FUTEX_WAKE, 1, NULL, NULL, 0));
  CHECK(fx(&word, FUTEX_WAKE | P, 1, NULL, NULL, 0));
  CHECK(fx(&word, FUTEX_WAKE | P, 0, NULL, NULL, 0));
  CHECK(fx(&word, FUTEX_WAKE | P, -1, NULL, NULL, 0));
  CHECK(fx(&word, FUTEX_WAKE_BITSET | P, 1, NULL, NULL, 1));
  CHECK(fx(&word, FUTEX_WAKE_BITSET, 1, NULL, NULL, ~0u));
  CHECK(fx(ro, FUTEX_WAKE, 1, NULL, NULL, 0));
  CHECK(fx(NULL, FUTEX_WAKE | P, 1, NULL, NULL, 0)); /* private: not looked at */
  CHECK(fx(BAD, FUTEX_WAKE | P, 1, NULL, NULL, 0));
  CHECK(fx(edge, FUTEX_WAKE | P, 1, NULL, NULL, 0));
  CHECK(fx(NULL, FUTEX_WAKE, 1, NULL, NULL, 0));     /* shared: must be mapped */
  CHECK(fx(BAD, FUTEX_WAKE, 1, NULL, NULL, 0));
  CHECK(fx(edge, FUTEX_WAKE, 1, NULL, NULL, 0));
  CHECK(fx(KADDR, FUTEX_WAKE | P, 1, NULL, NULL, 0));
  CHECK(fx(KADDR, FUTEX_WAKE, 1, NULL, NULL, 0));

  printf("-- bad addresses\n");
  CHECK(fx(bytes + 1, FUTEX_WAIT, 5, NULL, NULL, 0));
  CHECK(fx(bytes + 2, FUTEX_WAIT | P, 5, NULL, NULL, 0));
  CHECK(fx(bytes + 3, FUTEX_WAKE, 1, NULL, NULL, 0));
  CHECK(fx(bytes + 1, FUTEX_WAKE | P, 1, NULL, NULL, 0));
  CHECK(fx(bytes + 1, FUTEX_WAIT_BITSET | P, 5, NULL, NULL, 1));
  CHECK(fx(bytes + 1, FUTEX_WAKE_BITSET | P, 5, NULL, NULL, 1));
  CHECK(fx(NULL, FUTEX_WAIT, 0, NULL, NULL, 0));
  CHECK(fx(NULL, FUTEX_WAIT | P, 0, NULL, NULL, 0));
  CHECK(fx(BAD, FUTEX_WAIT | P, 0, NULL, NULL, 0));
  CHECK(fx(edge, FUTEX_WAIT | P, 0, NULL, NULL, 0));
  CHECK(fx(edge - 4, FUTEX_WAIT | P, 1, NULL, NULL, 0));
  CHECK(fx(KADDR, FUTEX_WAIT | P, 0, NULL, NULL, 0));
  CHECK(fx((char *)KADDR + 1, FUTEX_WAIT | P, 0, NULL, NULL, 0));

  printf("-- bitset 0\n");
  CHECK(fx(&word, FUTEX_WAIT_BITSET, 5, NULL, NULL, 0));
  CHECK(fx(&word, FUTEX_WAIT_BITSET | P, 4, NULL, NULL, 0)); /* before the value */
  CHECK(fx(&word, FUTEX_WAKE_BITSET, 1, NULL, NULL, 0));
  CHECK(fx(&word, FUTEX_WAKE_BITSET | P, 1, NULL, NULL, 0));
  CHECK(fx(bytes + 1, FUTEX_WAIT_BITSET | P, 5, NULL, NULL, 0)); /* before alignment */
  CHECK(fx(NULL, FUTEX_WAIT_BITSET | P, 5, NULL, NULL, 0));
  CHECK(fx(&word, FUTEX_WAIT, 4, NULL, NULL, 0)); /* FUTEX_WAIT ignores val3 */

  printf("-- operations\n");
  CHECK(fx(&word, FUTEX_WAKE | RT, 1, NULL, NULL, 0));
  CHECK(fx(&word, FUTEX_WAKE_BITSET | P | RT, 1, NULL, NULL, 1));
  CHECK(fx(bytes + 1, FUTEX_WAKE | RT, 1, NULL, NULL, 0)); /* ENOSYS first */
  CHECK(fx(&word, 99, 1, NULL, NULL, 0));
  CHECK(fx(&word, 99 | P, 1, NULL, NULL, 0));
  CHECK(fx(&word, 14, 1, NULL, NULL, 0));
  CHECK(fx(&word, -1, 1, NULL, NULL, 0));
  CHECK(fx(bytes + 1, 99, 1, NULL, NULL, 0));
  CHECK(fx(&word, FUTEX_WAKE | 0x200, 1, NULL, NULL, 0));
  EXPECT(word == 5);
  return 0;
}
