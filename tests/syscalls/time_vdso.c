/* The vDSO: AT_SYSINFO_EHDR names an ELF image that exports Linux's
 * x86-64 symbols under LINUX_2.6, /proc/self/maps shows [vdso] and
 * [vvar], the clocks read through it agree with the system calls and
 * never go back, and its pages keep Linux's protections. Only relations
 * are printed, never times. */
#include <elf.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static long long ns(const struct timespec *t) { return t->tv_sec * 1000000000LL + t->tv_nsec; }

static void sys_clock(clockid_t c, struct timespec *t) { syscall(SYS_clock_gettime, c, t); }

/* ---- a lookup in the vDSO's dynamic symbol table, as a dynamic linker
 * does: by DT_HASH's symbol count, with the version from DT_VERSYM and
 * DT_VERDEF. */
static uintptr_t base;
static const Elf64_Sym *symtab;
static const char *strtab;
static const Elf64_Half *versym;
static const Elf64_Verdef *verdef;
static unsigned long nsyms;

static int parse_vdso(void) {
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_type != ET_DYN) return 0;
  const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
  uintptr_t load = 0;
  const Elf64_Dyn *dyn = NULL;
  int loads = 0;
  for (int i = 0; i < eh->e_phnum; i++) {
    if (ph[i].p_type == PT_LOAD && !loads++) load = base + ph[i].p_offset - ph[i].p_vaddr;
    if (ph[i].p_type == PT_DYNAMIC) dyn = (const Elf64_Dyn *)(base + ph[i].p_offset);
  }
  if (!dyn || !loads) return 0;
  const Elf64_Word *hash = NULL;
  for (; dyn->d_tag != DT_NULL; dyn++) {
    uintptr_t p = load + dyn->d_un.d_ptr;
    switch (dyn->d_tag) {
      case DT_SYMTAB: symtab = (const Elf64_Sym *)p; break;
      case DT_STRTAB: strtab = (const char *)p; break;
      case DT_HASH: hash = (const Elf64_Word *)p; break;
      case DT_VERSYM: versym = (const Elf64_Half *)p; break;
      case DT_VERDEF: verdef = (const Elf64_Verdef *)p; break;
    }
  }
  if (!symtab || !strtab || !hash || !versym || !verdef) return 0;
  nsyms = hash[1];
  base = load;
  return 1;
}

static const char *version_of(unsigned i) {
  unsigned idx = versym[i] & 0x7fff;
  for (const Elf64_Verdef *d = verdef;; d = (const Elf64_Verdef *)((const char *)d + d->vd_next)) {
    if (d->vd_ndx == idx && !(d->vd_flags & VER_FLG_BASE)) {
      const Elf64_Verdaux *a = (const Elf64_Verdaux *)((const char *)d + d->vd_aux);
      return strtab + a->vda_name;
    }
    if (!d->vd_next) return "";
  }
}

static void *lookup(const char *name) {
  for (unsigned i = 0; i < nsyms; i++) {
    const Elf64_Sym *s = &symtab[i];
    if (s->st_shndx == SHN_UNDEF || ELF64_ST_TYPE(s->st_info) != STT_FUNC) continue;
    if (strcmp(strtab + s->st_name, name)) continue;
    if (strcmp(version_of(i), "LINUX_2.6")) continue;
    return (void *)(base + s->st_value);
  }
  return NULL;
}

/* ---- /proc/self/maps */
static char maps[1 << 16];

static void read_maps(void) {
  int fd = open("/proc/self/maps", O_RDONLY);
  long n = 0, r;
  while ((r = read(fd, maps + n, sizeof maps - 1 - n)) > 0) n += r;
  maps[n] = 0;
  close(fd);
}

/* The line naming `name`: its range and permissions. */
static int find_line(const char *name, unsigned long *start, unsigned long *end, char *perms) {
  for (char *p = maps; *p;) {
    char *nl = strchr(p, '\n');
    if (!nl) break;
    *nl = 0;
    char *n = strrchr(p, ' ');
    int found = n && !strcmp(n + 1, name) && sscanf(p, "%lx-%lx %4s", start, end, perms) == 3;
    *nl = '\n';
    if (found) return 1;
    p = nl + 1;
  }
  return 0;
}

int main(void) {
  printf("-- the image\n");
  uintptr_t ehdr = getauxval(AT_SYSINFO_EHDR);
  EXPECT(ehdr != 0);
  if (!ehdr) return 1;
  base = ehdr;
  EXPECT(parse_vdso());
  static const char *names[] = {"__vdso_clock_gettime", "clock_gettime", "__vdso_gettimeofday",
                                "gettimeofday",         "__vdso_time",   "time",
                                "__vdso_getcpu",        "getcpu",        "__vdso_clock_getres",
                                "clock_getres"};
  for (unsigned i = 0; i < sizeof names / sizeof *names; i++)
    printf("%s@LINUX_2.6: %s\n", names[i], lookup(names[i]) ? "found" : "missing");

  printf("-- maps\n");
  read_maps();
  unsigned long vs = 0, ve = 0, ds = 0, de = 0;
  char vp[8] = "", dp[8] = "";
  EXPECT(find_line("[vvar]", &vs, &ve, vp));
  EXPECT(find_line("[vdso]", &ds, &de, dp));
  printf("[vvar] %s, [vdso] %s\n", vp, dp);
  EXPECT(ds == ehdr);
  EXPECT(ve <= ds);

  printf("-- clocks against the system calls\n");
  int (*vgettime)(clockid_t, struct timespec *) = lookup("__vdso_clock_gettime");
  static const clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME};
  for (int i = 0; i < 2; i++) {
    int ordered = 1;
    for (int k = 0; k < 1000; k++) {
      struct timespec a, b, c, d;
      sys_clock(clocks[i], &a);
      clock_gettime(clocks[i], &b);
      vgettime(clocks[i], &c);
      sys_clock(clocks[i], &d);
      if (!(ns(&a) <= ns(&b) && ns(&b) <= ns(&c) && ns(&c) <= ns(&d))) ordered = 0;
    }
    printf("clock %d: syscall <= libc <= vdso <= syscall: %s\n", clocks[i], ordered ? "yes" : "no");
  }
  {
    int ordered = 1;
    for (int k = 0; k < 1000; k++) {
      struct timeval a, b, c;
      syscall(SYS_gettimeofday, &a, NULL);
      gettimeofday(&b, NULL);
      syscall(SYS_gettimeofday, &c, NULL);
      long long x = a.tv_sec * 1000000LL + a.tv_usec, y = b.tv_sec * 1000000LL + b.tv_usec,
                z = c.tv_sec * 1000000LL + c.tv_usec;
      if (!(x <= y && y <= z)) ordered = 0;
    }
    printf("gettimeofday: syscall <= libc <= syscall: %s\n", ordered ? "yes" : "no");
    struct timezone tz = {1, 1};
    struct timeval tv;
    CHECK(gettimeofday(&tv, &tz));
    printf("timezone %d %d\n", tz.tz_minuteswest, tz.tz_dsttime);
  }
  {
    int ordered = 1;
    for (int k = 0; k < 1000; k++) {
      time_t a = syscall(SYS_time, NULL), t2;
      time_t b = time(&t2);
      time_t c = syscall(SYS_time, NULL);
      if (!(a <= b && b <= c && b == t2)) ordered = 0;
    }
    printf("time: syscall <= libc <= syscall: %s\n", ordered ? "yes" : "no");
    struct timespec r;
    clock_gettime(CLOCK_REALTIME, &r);
    EXPECT(time(NULL) <= r.tv_sec + 1 && r.tv_sec <= time(NULL));
  }
  for (int i = 0; i < 2; i++) {
    struct timespec a, b;
    syscall(SYS_clock_getres, clocks[i], &a);
    clock_getres(clocks[i], &b);
    printf("clock %d: getres agrees: %s\n", clocks[i], ns(&a) == ns(&b) ? "yes" : "no");
  }
  CHECK(clock_getres(CLOCK_MONOTONIC, NULL));
  {
    /* Clocks the vDSO passes on. */
    struct timespec t;
    CHECK(clock_gettime(CLOCK_BOOTTIME, &t));
    CHECK(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t));
    CHECK(clock_gettime(1234, &t));
    CHECK(vgettime(1234, &t));
  }

  printf("-- monotonic\n");
  {
    struct timespec prev, t, s0, s1;
    long back = 0;
    sys_clock(CLOCK_MONOTONIC, &s0);
    clock_gettime(CLOCK_MONOTONIC, &prev);
    for (long k = 0; k < 1000000; k++) {
      clock_gettime(CLOCK_MONOTONIC, &t);
      if (ns(&t) < ns(&prev)) back++;
      prev = t;
    }
    sys_clock(CLOCK_MONOTONIC, &s1);
    printf("1e6 reads, backwards: %ld\n", back);
    EXPECT(ns(&s0) <= ns(&prev) && ns(&prev) <= ns(&s1));
    /* Across a sleep: the vDSO's clock advances as the sentry's does. */
    struct timespec a, b, c, d, nap = {0, 30 * 1000 * 1000};
    sys_clock(CLOCK_MONOTONIC, &a);
    clock_gettime(CLOCK_MONOTONIC, &b);
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &c);
    sys_clock(CLOCK_MONOTONIC, &d);
    long long dv = ns(&c) - ns(&b), ds2 = ns(&d) - ns(&a);
    EXPECT(dv >= 30 * 1000 * 1000 && dv <= ds2 && ds2 < 10LL * 1000 * 1000 * 1000);
  }

  printf("-- getcpu\n");
  {
    long (*vgetcpu)(unsigned *, unsigned *, void *) = lookup("__vdso_getcpu");
    unsigned cpu = ~0u, node = ~0u;
    long ncpu = sysconf(_SC_NPROCESSORS_CONF);
    CHECK(vgetcpu(&cpu, &node, NULL));
    EXPECT(cpu < ncpu && node == 0);
    CHECK(vgetcpu(NULL, NULL, NULL));
    int c = sched_getcpu();
    EXPECT(c >= 0 && c < ncpu);
  }

  printf("-- protections\n");
  {
    /* [vvar] is never writable or executable. */
    CHECK(mprotect((void *)vs, ve - vs, PROT_READ | PROT_WRITE));
    CHECK(mprotect((void *)vs, ve - vs, PROT_READ | PROT_EXEC));
    CHECK(mprotect((void *)vs, ve - vs, PROT_READ));
    int p[2];
    CHECK(pipe(p));
    CHECK(write(p[1], "x", 1));
    CHECK(read(p[0], (void *)vs, 1));
    CHECK(write(p[1], "x", 1));
    CHECK(read(p[0], (void *)ds, 1));
    /* Made writable, the vDSO gives this process its own copy. */
    volatile unsigned char *pad = (volatile unsigned char *)ds + EI_PAD;
    unsigned char old = *pad;
    CHECK(mprotect((void *)ds, de - ds, PROT_READ | PROT_WRITE | PROT_EXEC));
    *pad = old ^ 0x5a;
    EXPECT(*pad == (unsigned char)(old ^ 0x5a));
    *pad = old;
    CHECK(mprotect((void *)ds, de - ds, PROT_READ | PROT_EXEC));
    read_maps();
    EXPECT(find_line("[vdso]", &ds, &de, dp));
    printf("[vdso] %s\n", dp);
    struct timespec t;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &t));
  }
  return 0;
}
