/* cflags: -pthread */
/* futex with several threads and processes: FUTEX_WAIT woken by
 * FUTEX_WAKE (and how many are woken), EAGAIN and ETIMEDOUT, bitsets
 * (FUTEX_WAIT_BITSET with an absolute timeout, FUTEX_WAKE_BITSET
 * matching only some waiters), FUTEX_REQUEUE and FUTEX_CMP_REQUEUE
 * (EAGAIN on a changed value), FUTEX_WAKE_OP's operations and
 * comparisons, waits interrupted by a handler with and without
 * SA_RESTART, a shared futex in a MAP_SHARED page across fork (and a
 * private wake that does not reach another process), 32 threads on a
 * futex lock, CLONE_CHILD_SETTID/CLEARTID and set_tid_address, and the
 * errors. Waiters are counted by requeueing them to a spare word and
 * back, so nothing depends on timing. */
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

#define P FUTEX_PRIVATE_FLAG

static long fx(void *addr, int op, unsigned val, const void *ts, void *addr2, unsigned val3) {
  return syscall(SYS_futex, addr, op, val, ts, addr2, val3);
}

static long fx2(void *addr, int op, unsigned val, unsigned long val2, void *addr2, unsigned val3) {
  return syscall(SYS_futex, addr, op, val, val2, addr2, val3);
}

static uint32_t spare;

/* How many threads wait on `a` (private futexes): moves them all to
 * `spare` and back. */
static long waiters(uint32_t *a) {
  long n = fx2(a, FUTEX_CMP_REQUEUE | P, 0, INT_MAX, &spare, *a);
  fx2(&spare, FUTEX_CMP_REQUEUE | P, 0, INT_MAX, a, spare);
  return n;
}

static void wait_for(uint32_t *a, long n) {
  while (waiters(a) < n) sched_yield();
}

struct waiter {
  uint32_t *addr;
  uint32_t val;
  int op;
  unsigned bitset;
  long ret;
  int err;
  pthread_t t;
};

static void *wait_thread(void *arg) {
  struct waiter *w = arg;
  errno = 0;
  w->ret = fx(w->addr, w->op, w->val, NULL, NULL, w->bitset);
  w->err = errno;
  return NULL;
}

static void start(struct waiter *w, uint32_t *addr, int op, unsigned bitset) {
  w->addr = addr;
  w->val = *addr;
  w->op = op;
  w->bitset = bitset;
  w->ret = -2;
  pthread_create(&w->t, NULL, wait_thread, w);
}

static void finish(const char *what, struct waiter *w) {
  pthread_join(w->t, NULL);
  if (w->ret < 0)
    printf("%s: %ld %s\n", what, w->ret, strerrorname_np(w->err));
  else
    printf("%s: %ld\n", what, w->ret);
}

static uint32_t a, b;

static void wait_wake(void) {
  printf("-- FUTEX_WAIT and FUTEX_WAKE\n");
  struct waiter w[5];
  a = 0;
  start(&w[0], &a, FUTEX_WAIT | P, 0);
  wait_for(&a, 1);
  CHECK(fx(&a, FUTEX_WAKE | P, 1, NULL, NULL, 0));
  finish("woken", &w[0]);
  for (int i = 0; i < 5; i++) start(&w[i], &a, FUTEX_WAIT | P, 0);
  wait_for(&a, 5);
  CHECK(fx(&a, FUTEX_WAKE | P, 0, NULL, NULL, 0)); /* 0 still wakes one */
  CHECK(fx(&a, FUTEX_WAKE | P, 2, NULL, NULL, 0));
  CHECK(fx(&a, FUTEX_WAKE | P, INT_MAX, NULL, NULL, 0));
  CHECK(fx(&a, FUTEX_WAKE | P, INT_MAX, NULL, NULL, 0));
  for (int i = 0; i < 5; i++) finish("woken", &w[i]);
  /* Private and shared are separate queues for the same word. */
  start(&w[0], &a, FUTEX_WAIT | P, 0);
  wait_for(&a, 1);
  CHECK(fx(&a, FUTEX_WAKE, 1, NULL, NULL, 0));
  CHECK(fx(&a, FUTEX_WAKE | P, 1, NULL, NULL, 0));
  finish("private waiter woken by private wake", &w[0]);
  /* The value is checked under the queue lock: EAGAIN when changed. */
  a = 7;
  CHECK(fx(&a, FUTEX_WAIT | P, 6, NULL, NULL, 0));
  struct timespec rel = {0, 10 * 1000000};
  CHECK(fx(&a, FUTEX_WAIT | P, 7, &rel, NULL, 0));
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  now.tv_nsec += 10 * 1000000;
  if (now.tv_nsec >= 1000000000) now.tv_sec++, now.tv_nsec -= 1000000000;
  CHECK(fx(&a, FUTEX_WAIT_BITSET | P, 7, &now, NULL, FUTEX_BITSET_MATCH_ANY));
  clock_gettime(CLOCK_REALTIME, &now);
  CHECK(fx(&a, FUTEX_WAIT_BITSET | P | FUTEX_CLOCK_REALTIME, 7, &now, NULL, ~0u));
  /* An absolute time already past. */
  struct timespec past = {0, 0};
  CHECK(fx(&a, FUTEX_WAIT_BITSET | P, 7, &past, NULL, ~0u));
}

static void bitsets(void) {
  printf("-- bitsets\n");
  struct waiter w[3];
  a = 0;
  start(&w[0], &a, FUTEX_WAIT_BITSET | P, 0x1);
  start(&w[1], &a, FUTEX_WAIT_BITSET | P, 0x2);
  start(&w[2], &a, FUTEX_WAIT_BITSET | P, 0x3);
  wait_for(&a, 3);
  CHECK(fx(&a, FUTEX_WAKE_BITSET | P, INT_MAX, NULL, NULL, 0x4));
  CHECK(fx(&a, FUTEX_WAKE_BITSET | P, INT_MAX, NULL, NULL, 0x1));
  finish("bitset 0x1", &w[0]);
  CHECK(fx(&a, FUTEX_WAKE_BITSET | P, INT_MAX, NULL, NULL, 0x2));
  finish("bitset 0x2", &w[1]);
  finish("bitset 0x3", &w[2]);
  /* FUTEX_WAKE matches every bitset; FUTEX_WAIT waits with all bits. */
  start(&w[0], &a, FUTEX_WAIT_BITSET | P, 0x10);
  start(&w[1], &a, FUTEX_WAIT | P, 0);
  wait_for(&a, 2);
  CHECK(fx(&a, FUTEX_WAKE_BITSET | P, INT_MAX, NULL, NULL, 0x80000000));
  finish("FUTEX_WAIT woken by any bit", &w[1]);
  CHECK(fx(&a, FUTEX_WAKE | P, INT_MAX, NULL, NULL, 0));
  finish("bitset 0x10 woken by FUTEX_WAKE", &w[0]);
  CHECK(fx(&a, FUTEX_WAKE_BITSET | P, 1, NULL, NULL, 0));
}

static void requeue(void) {
  printf("-- FUTEX_REQUEUE and FUTEX_CMP_REQUEUE\n");
  struct waiter w[4];
  a = 0;
  b = 0;
  for (int i = 0; i < 4; i++) start(&w[i], &a, FUTEX_WAIT | P, 0);
  wait_for(&a, 4);
  CHECK(fx2(&a, FUTEX_REQUEUE | P, 1, 2, &b, 0));
  CHECK(waiters(&a));
  CHECK(waiters(&b));
  CHECK(fx2(&a, FUTEX_CMP_REQUEUE | P, 0, 1, &b, 1)); /* a is 0, not 1 */
  CHECK(fx2(&a, FUTEX_CMP_REQUEUE | P, 0, 1, &b, 0));
  CHECK(waiters(&a));
  CHECK(waiters(&b));
  CHECK(fx(&b, FUTEX_WAKE | P, INT_MAX, NULL, NULL, 0));
  CHECK(fx(&a, FUTEX_WAKE | P, INT_MAX, NULL, NULL, 0));
  for (int i = 0; i < 4; i++) finish("woken", &w[i]);
  /* Requeueing wakes up to nr_wake and moves up to nr_requeue. */
  for (int i = 0; i < 4; i++) start(&w[i], &a, FUTEX_WAIT | P, 0);
  wait_for(&a, 4);
  CHECK(fx2(&a, FUTEX_CMP_REQUEUE | P, 2, 0, &b, 0));
  CHECK(fx2(&a, FUTEX_CMP_REQUEUE | P, 0, INT_MAX, &b, 0));
  CHECK(fx(&b, FUTEX_WAKE | P, INT_MAX, NULL, NULL, 0));
  for (int i = 0; i < 4; i++) finish("woken", &w[i]);
  CHECK(fx2(&a, FUTEX_CMP_REQUEUE | P, 1, (unsigned long)-1, &b, 0));
  CHECK(fx2(&a, FUTEX_CMP_REQUEUE | P, -1, 1, &b, 0));
}

#define OP(op, oparg, cmp, cmparg) FUTEX_OP(op, oparg, cmp, cmparg)

static void wake_op(void) {
  printf("-- FUTEX_WAKE_OP\n");
  a = 0;
  b = 0;
  struct {
    const char *name;
    unsigned op;
  } ops[] = {
      {"ADD 1, EQ 0", OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0)},
      {"ADD 1, EQ 0", OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0)},
      {"SET 12, NE 0", OP(FUTEX_OP_SET, 12, FUTEX_OP_CMP_NE, 0)},
      {"OR 0x100, LT 13", OP(FUTEX_OP_OR, 0x100, FUTEX_OP_CMP_LT, 13)},
      {"ANDN 4, LE 0", OP(FUTEX_OP_ANDN, 4, FUTEX_OP_CMP_LE, 0)},
      {"XOR 0xff, GT 1", OP(FUTEX_OP_XOR, 0xff, FUTEX_OP_CMP_GT, 1)},
      {"SET 1<<5, GE 0", OP((FUTEX_OP_SET | FUTEX_OP_OPARG_SHIFT), 5, FUTEX_OP_CMP_GE, 0)},
      {"ADD -1, EQ 32", OP(FUTEX_OP_ADD, 0xfff, FUTEX_OP_CMP_EQ, 32)},
  };
  for (unsigned i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    long r = fx2(&a, FUTEX_WAKE_OP | P, 1, 1, &b, ops[i].op);
    printf("%s: ret=%ld b=%#x\n", ops[i].name, r, b);
  }
  /* With waiters on both words: the second is woken only if the
   * comparison holds. */
  struct waiter w[4];
  a = 0;
  b = 5;
  start(&w[0], &a, FUTEX_WAIT | P, 0);
  start(&w[1], &a, FUTEX_WAIT | P, 0);
  start(&w[2], &b, FUTEX_WAIT | P, 0);
  start(&w[3], &b, FUTEX_WAIT | P, 0);
  wait_for(&a, 2);
  wait_for(&b, 2);
  /* b is 5: EQ 4 fails, wakes one on a. (b becomes 6: the waiters on b
   * stay asleep, the value is only checked when they start.) */
  CHECK(fx2(&a, FUTEX_WAKE_OP | P, 1, 2, &b, OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 4)));
  wait_for(&a, 1);
  printf("b=%u\n", b);
  /* b is 6: EQ 6 holds; wakes one on a and both on b. */
  CHECK(fx2(&a, FUTEX_WAKE_OP | P, 1, 2, &b, OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 6)));
  for (int i = 0; i < 4; i++) pthread_join(w[i].t, NULL);
  printf("all woken: %ld %ld %ld %ld\n", w[0].ret, w[1].ret, w[2].ret, w[3].ret);
  /* Unknown operation and comparison. */
  CHECK(fx2(&a, FUTEX_WAKE_OP | P, 1, 1, &b, OP(7, 0, FUTEX_OP_CMP_EQ, 0)));
  CHECK(fx2(&a, FUTEX_WAKE_OP | P, 1, 1, &b, OP(FUTEX_OP_SET, 0, 7, 0)));
  printf("b=%u\n", b);
  CHECK(fx2(&a, FUTEX_WAKE_OP | P, 1, 1, (void *)8, OP(FUTEX_OP_SET, 0, FUTEX_OP_CMP_EQ, 0)));
}

static volatile int handled;
static void on_usr1(int s) {
  (void)s;
  handled++;
}

static void interrupted(void) {
  printf("-- waits interrupted by a handler\n");
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  struct waiter w;
  a = 0;
  handled = 0;
  start(&w, &a, FUTEX_WAIT | P, 0);
  wait_for(&a, 1);
  pthread_kill(w.t, SIGUSR1);
  finish("FUTEX_WAIT without SA_RESTART", &w);
  printf("handled=%d\n", handled);
  start(&w, &a, FUTEX_WAIT_BITSET | P, ~0u);
  wait_for(&a, 1);
  pthread_kill(w.t, SIGUSR1);
  finish("FUTEX_WAIT_BITSET without SA_RESTART", &w);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  handled = 0;
  start(&w, &a, FUTEX_WAIT | P, 0);
  wait_for(&a, 1);
  pthread_kill(w.t, SIGUSR1);
  while (!handled) sched_yield();
  /* Restarted: it waits again until woken. */
  while (fx(&a, FUTEX_WAKE | P, 1, NULL, NULL, 0) == 0) sched_yield();
  finish("FUTEX_WAIT with SA_RESTART, then woken", &w);
  signal(SIGUSR1, SIG_DFL);
}

static void shared(void) {
  int st;
  printf("-- shared futex across fork\n");
  uint32_t *s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (s == MAP_FAILED) exit(98);
  s[0] = 0;
  s[1] = 0;
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    long r = fx(&s[0], FUTEX_WAIT, 0, NULL, NULL, 0);
    s[1] = 1;
    _exit(r == 0 ? 0 : 1);
  }
  /* A private wake cannot reach another process's waiter. */
  CHECK(fx(&s[0], FUTEX_WAKE | P, 1, NULL, NULL, 0));
  long n;
  while ((n = fx(&s[0], FUTEX_WAKE, 1, NULL, NULL, 0)) == 0) sched_yield();
  printf("shared wake: %ld\n", n);
  EXPECT(waitpid(c, &st, 0) == c);
  printf("child woken: code=%d flag=%u\n", WEXITSTATUS(st), s[1]);
  /* The child changes the value and wakes; the parent waits for it. */
  s[0] = 0;
  fflush(stdout);
  c = fork();
  if (c == 0) {
    __atomic_store_n(&s[0], 1, __ATOMIC_SEQ_CST);
    fx(&s[0], FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    _exit(0);
  }
  while (__atomic_load_n(&s[0], __ATOMIC_SEQ_CST) == 0) fx(&s[0], FUTEX_WAIT, 0, NULL, NULL, 0);
  printf("saw the child's store: %u\n", s[0]);
  EXPECT(waitpid(c, &st, 0) == c);
  munmap(s, 4096);
}

/* A lock: 0 free, 1 locked, 2 locked with waiters. */
static uint32_t lockword;
static long lock_counter;

static void lock(void) {
  uint32_t c = 0;
  if (__atomic_compare_exchange_n(&lockword, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
  if (c != 2) c = __atomic_exchange_n(&lockword, 2, __ATOMIC_ACQUIRE);
  while (c != 0) {
    fx(&lockword, FUTEX_WAIT | P, 2, NULL, NULL, 0);
    c = __atomic_exchange_n(&lockword, 2, __ATOMIC_ACQUIRE);
  }
}

static void unlock(void) {
  if (__atomic_fetch_sub(&lockword, 1, __ATOMIC_RELEASE) != 1) {
    __atomic_store_n(&lockword, 0, __ATOMIC_RELEASE);
    fx(&lockword, FUTEX_WAKE | P, 1, NULL, NULL, 0);
  }
}

static void *contender(void *arg) {
  (void)arg;
  for (int i = 0; i < 2000; i++) {
    lock();
    long v = lock_counter;
    if (i % 64 == 0) sched_yield(); /* hold the lock across a switch */
    lock_counter = v + 1;
    unlock();
  }
  return NULL;
}

static void contention(void) {
  printf("-- 32 threads on a futex lock\n");
  pthread_t t[32];
  for (int i = 0; i < 32; i++) pthread_create(&t[i], NULL, contender, NULL);
  for (int i = 0; i < 32; i++) pthread_join(t[i], NULL);
  printf("counter=%ld lockword=%u\n", lock_counter, lockword);
}

static volatile pid_t ctid = -1, ptid = -1;
static volatile int release;

static int clone_fn(void *arg) {
  (void)arg;
  while (!release) {
  }
  return 0; /* the thread exits; the kernel clears ctid and wakes it */
}

static void cleartid(void) {
  printf("-- CLONE_CHILD_SETTID and CLONE_CHILD_CLEARTID\n");
  size_t sz = 1 << 16;
  char *stack = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
              CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
  int r = clone(clone_fn, stack + sz, flags, NULL, (pid_t *)&ptid, NULL, (pid_t *)&ctid);
  EXPECT(r > 0 && r == ptid);
  while (ctid == -1) sched_yield();
  EXPECT(ctid == ptid && ctid != getpid());
  release = 1;
  pid_t v;
  while ((v = ctid) != 0) fx((void *)&ctid, FUTEX_WAIT, v, NULL, NULL, 0);
  printf("ctid cleared: %d\n", ctid);
  munmap(stack, sz);
  /* pthread_join waits on the same mechanism. */
  pthread_t t;
  pthread_create(&t, NULL, (void *(*)(void *))sched_yield, NULL);
  CHECK(pthread_join(t, NULL));
  /* set_tid_address returns the caller's tid. The kernel clears the
   * word at exit only if another task shares the memory: not here. */
  static pid_t *shared_tid;
  shared_tid = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  *shared_tid = 12345;
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    long t = syscall(SYS_set_tid_address, shared_tid);
    _exit(t == getpid() ? 0 : 1);
  }
  int st;
  EXPECT(waitpid(c, &st, 0) == c);
  printf("set_tid_address: code=%d word after exit: %d\n", WEXITSTATUS(st), *shared_tid);
}

static void errors(void) {
  printf("-- errors\n");
  char *bytes = (char *)&a;
  a = 0;
  struct timespec bad = {0, 1000000000};
  struct timespec neg = {-1, 0};
  CHECK(fx(&a, 99, 0, NULL, NULL, 0));
  CHECK(fx(&a, FUTEX_WAKE | 0x400, 1, NULL, NULL, 0));
  CHECK(fx(bytes + 1, FUTEX_WAIT | P, 0, NULL, NULL, 0));
  CHECK(fx(bytes + 2, FUTEX_WAKE | P, 1, NULL, NULL, 0));
  CHECK(fx(bytes + 1, FUTEX_WAKE, 1, NULL, NULL, 0));
  CHECK(fx(NULL, FUTEX_WAIT | P, 0, NULL, NULL, 0));
  CHECK(fx((void *)8, FUTEX_WAIT | P, 0, NULL, NULL, 0));
  CHECK(fx((void *)8, FUTEX_WAKE, 1, NULL, NULL, 0));
  CHECK(fx(&a, FUTEX_WAIT | P, 0, &bad, NULL, 0));
  CHECK(fx(&a, FUTEX_WAIT | P, 0, &neg, NULL, 0));
  CHECK(fx(&a, FUTEX_WAIT | P, 0, (void *)8, NULL, 0));
  CHECK(fx(&a, FUTEX_WAIT_BITSET | P, 0, NULL, NULL, 0));
  CHECK(fx(&a, FUTEX_WAKE_BITSET | P, 1, NULL, NULL, 0));
  CHECK(fx(&a, FUTEX_WAKE | P | FUTEX_CLOCK_REALTIME, 1, NULL, NULL, 0));
  CHECK(fx2(&a, FUTEX_CMP_REQUEUE | P, 1, 1, bytes + 1, 0));
  CHECK(fx2(&a, FUTEX_CMP_REQUEUE | P, 1, 1, (void *)8, 0));
  CHECK(fx2((void *)8, FUTEX_CMP_REQUEUE | P, 1, 1, &b, 0));
  CHECK(fx2(&a, FUTEX_REQUEUE | P, 1, 1, bytes + 1, 0));
  CHECK(fx2(&a, FUTEX_WAKE_OP | P, 1, 1, bytes + 1, 0));
}

int main(void) {
  setvbuf(stdout, NULL, _IOFBF, 4096);
  wait_wake();
  bitsets();
  requeue();
  wake_op();
  interrupted();
  shared();
  contention();
  cleartid();
  errors();
  printf("-- done\n");
  return 0;
}
