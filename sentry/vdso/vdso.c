/*
 * The sandbox's vDSO: clock_gettime, gettimeofday, time, getcpu and
 * clock_getres answered in the guest, without a trap to the sentry.
 *
 * Time comes from the TSC and the parameters the sentry keeps in the
 * [vvar] page mapped just below this image. The sentry's reads of the
 * same clocks (the system calls) use the same parameters and formula, so
 * the two never disagree. Whatever this code cannot answer (other
 * clocks, a parameter page that is not valid or is being updated) goes
 * to the real system call, which the sentry answers.
 *
 * Built freestanding: no libc, no relocations, no writable data.
 */

#include <stddef.h>
#include <stdint.h>

/* Must match sentry/src/vdso/mod.rs. */
#define VVAR_SIZE 4096
#define VVAR_VALID_TSC 1u /* the clock parameters may be used */
#define VVAR_GETCPU_RDPID 2u
#define VVAR_GETCPU_RDTSCP 4u

struct vvar {
  uint64_t seq;       /* odd while the sentry updates the rest */
  uint64_t flags;     /* VVAR_* */
  uint64_t tsc_base;  /* the TSC value the bases are for */
  uint64_t mult;      /* ns = (tsc - tsc_base) * mult >> shift */
  uint64_t shift;
  uint64_t mono_sec;  /* CLOCK_MONOTONIC at tsc_base */
  uint64_t mono_nsec;
  uint64_t real_sec;  /* CLOCK_REALTIME at tsc_base */
  uint64_t real_nsec;
  uint64_t ncpus;     /* getcpu answers cpu % ncpus, as the sentry does */
};

struct timespec_k {
  int64_t tv_sec;
  int64_t tv_nsec;
};

struct timeval_k {
  int64_t tv_sec;
  int64_t tv_usec;
};

struct timezone_k {
  int tz_minuteswest;
  int tz_dsttime;
};

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1

#define SYS_gettimeofday 96
#define SYS_time 201
#define SYS_clock_gettime 228
#define SYS_clock_getres 229
#define SYS_getcpu 309

#define NSEC_PER_SEC 1000000000ull

/* The ELF header of this image, which the sentry maps right after the
 * parameter page. */
extern const char __ehdr_start[] __attribute__((visibility("hidden")));

static inline const volatile struct vvar *vvar(void) {
  uintptr_t a = (uintptr_t)__ehdr_start;
  /* Hide the address's origin: the page lies outside the object. */
  __asm__("" : "+r"(a));
  return (const volatile struct vvar *)(a - VVAR_SIZE);
}

static inline long sys2(long nr, long a, long b) {
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "0"(nr), "D"(a), "S"(b)
                   : "rcx", "r11", "memory");
  return ret;
}

static inline long sys3(long nr, long a, long b, long c) {
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "0"(nr), "D"(a), "S"(b), "d"(c)
                   : "rcx", "r11", "memory");
  return ret;
}

static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

/* The TSC, read after every earlier load (lfence), and `dep`: zero, but
 * known only once the TSC has been read, for a later load to depend on, so
 * that it cannot be performed before the TSC read either. */
static inline uint64_t rdtsc_ordered(uintptr_t *dep) {
  uint32_t lo, hi;
  uintptr_t z;
  __asm__ volatile(
      "lfence\n\t"
      "rdtsc\n\t"
      "mov %%eax, %k2\n\t"
      "and $0, %2"
      : "=a"(lo), "=d"(hi), "=r"(z)
      :
      : "memory");
  *dep = z;
  return ((uint64_t)hi << 32) | lo;
}

/* Adds `ns` nanoseconds to sec/nsec, with nsec below a second. */
static inline void add_ns(uint64_t *sec, uint64_t *nsec, uint64_t ns) {
  uint64_t n = *nsec + ns;
  if (__builtin_expect(n >= 4 * NSEC_PER_SEC, 0)) {
    *sec += n / NSEC_PER_SEC;
    n %= NSEC_PER_SEC;
  } else {
    while (n >= NSEC_PER_SEC) {
      n -= NSEC_PER_SEC;
      (*sec)++;
    }
  }
  *nsec = n;
}

/* Reads the clock `clk` (REALTIME or MONOTONIC) from the parameters.
 * Returns 0, or -1 when the caller must ask the sentry. */
static inline int read_clock(int clk, uint64_t *sec, uint64_t *nsec) {
  const volatile struct vvar *v = vvar();
  uint64_t seq = v->seq;
  barrier();
  if (__builtin_expect((seq & 1) || !(v->flags & VVAR_VALID_TSC), 0)) return -1;
  uint64_t base = v->tsc_base, mult = v->mult, shift = v->shift;
  uint64_t s, n;
  if (clk == CLOCK_MONOTONIC) {
    s = v->mono_sec;
    n = v->mono_nsec;
  } else {
    s = v->real_sec;
    n = v->real_nsec;
  }
  uintptr_t dep;
  uint64_t tsc = rdtsc_ordered(&dep);
  barrier();
  /* The check's load depends on the TSC read, so it comes after it. */
  if (__builtin_expect(*(const volatile uint64_t *)((uintptr_t)&v->seq + dep) != seq, 0))
    return -1;
  /* A TSC a little behind the base (another CPU's) counts as the base. */
  uint64_t delta = tsc > base ? tsc - base : 0;
  uint64_t ns = (uint64_t)(((unsigned __int128)delta * mult) >> shift);
  add_ns(&s, &n, ns);
  *sec = s;
  *nsec = n;
  return 0;
}

int __vdso_clock_gettime(int clk, struct timespec_k *ts) {
  uint64_t s, n;
  if ((clk == CLOCK_MONOTONIC || clk == CLOCK_REALTIME) && read_clock(clk, &s, &n) == 0) {
    ts->tv_sec = (int64_t)s;
    ts->tv_nsec = (int64_t)n;
    return 0;
  }
  return (int)sys2(SYS_clock_gettime, clk, (long)ts);
}

int __vdso_gettimeofday(struct timeval_k *tv, struct timezone_k *tz) {
  uint64_t s, n;
  if (tv) {
    if (read_clock(CLOCK_REALTIME, &s, &n) != 0)
      return (int)sys2(SYS_gettimeofday, (long)tv, (long)tz);
    tv->tv_sec = (int64_t)s;
    tv->tv_usec = (int64_t)(n / 1000);
  }
  if (tz) {
    tz->tz_minuteswest = 0;
    tz->tz_dsttime = 0;
  }
  return 0;
}

long __vdso_time(long *t) {
  uint64_t s, n;
  if (read_clock(CLOCK_REALTIME, &s, &n) != 0) return sys2(SYS_time, (long)t, 0);
  if (t) *t = (long)s;
  return (long)s;
}

long __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused) {
  const volatile struct vvar *v = vvar();
  uint64_t flags = v->flags, ncpus = v->ncpus;
  uint32_t aux;
  if ((flags & VVAR_GETCPU_RDPID) && ncpus) {
    uint64_t p;
    __asm__ volatile("rdpid %0" : "=r"(p));
    aux = (uint32_t)p;
  } else if ((flags & VVAR_GETCPU_RDTSCP) && ncpus) {
    uint32_t lo, hi;
    __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
  } else {
    return sys3(SYS_getcpu, (long)cpu, (long)node, (long)unused);
  }
  /* Linux keeps (node << 12) | cpu in TSC_AUX; the sandbox has one node. */
  if (cpu) *cpu = (unsigned)((aux & 0xfff) % ncpus);
  if (node) *node = 0;
  return 0;
}

int __vdso_clock_getres(int clk, struct timespec_k *res) {
  const volatile struct vvar *v = vvar();
  if ((clk == CLOCK_MONOTONIC || clk == CLOCK_REALTIME) && (v->flags & VVAR_VALID_TSC)) {
    if (res) {
      res->tv_sec = 0;
      res->tv_nsec = 1;
    }
    return 0;
  }
  return (int)sys2(SYS_clock_getres, clk, (long)res);
}

int clock_gettime(int, struct timespec_k *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval_k *, struct timezone_k *)
    __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) __attribute__((weak, alias("__vdso_time")));
long getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
int clock_getres(int, struct timespec_k *) __attribute__((weak, alias("__vdso_clock_getres")));
