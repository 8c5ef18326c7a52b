/* Process identity and small queries: pids, user and group ids, uname,
 * umask, sched_yield, sched_getaffinity, getrandom. Values that differ
 * between hosts (pids, ids, the release) are printed only as relations. */
#include <ctype.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "check.h"

static long sys_getrandom(void *b, size_t n, unsigned f) { return syscall(SYS_getrandom, b, n, f); }

#define BAD ((void *)8)
#define KADDR ((void *)0xffff800000000000UL)

static char *ro, *edge;

static void pids(void) {
  printf("-- pids\n");
  long pid = syscall(SYS_getpid), tid = syscall(SYS_gettid), ppid = syscall(SYS_getppid);
  EXPECT(pid > 0);
  EXPECT(pid == tid);
  EXPECT(getpid() == pid);
  EXPECT(gettid() == tid);
  EXPECT(ppid >= 0 && ppid != pid);
  EXPECT(getppid() == ppid);
}

static void ids(void) {
  printf("-- uids and gids\n");
  uid_t r = 1234, e = 1234, s = 1234;
  gid_t gr = 1234, ge = 1234, gs = 1234;
  CHECK(syscall(SYS_getresuid, &r, &e, &s));
  EXPECT(r == (uid_t)syscall(SYS_getuid));
  EXPECT(e == (uid_t)syscall(SYS_geteuid));
  EXPECT(r == e && e == s);
  CHECK(syscall(SYS_getresgid, &gr, &ge, &gs));
  EXPECT(gr == (gid_t)syscall(SYS_getgid));
  EXPECT(ge == (gid_t)syscall(SYS_getegid));
  EXPECT(gr == ge && ge == gs);
  EXPECT(getuid() == r && geteuid() == e && getgid() == gr && getegid() == ge);
  /* Each pointer is written in turn; the first bad one stops it. */
  r = e = s = 1234;
  CHECK(syscall(SYS_getresuid, NULL, &e, &s));
  EXPECT(e == 1234 && s == 1234);
  CHECK(syscall(SYS_getresuid, &r, BAD, &s));
  EXPECT(r != 1234 && s == 1234);
  r = e = s = 1234;
  CHECK(syscall(SYS_getresuid, &r, &e, ro));
  EXPECT(r != 1234 && e != 1234);
  CHECK(syscall(SYS_getresuid, KADDR, &e, &s));
  gr = ge = gs = 1234;
  CHECK(syscall(SYS_getresgid, &gr, &ge, NULL));
  EXPECT(gr != 1234 && ge != 1234);
  CHECK(syscall(SYS_getresgid, BAD, BAD, BAD));
  /* The u32 lands right before a fault. */
  CHECK(syscall(SYS_getresuid, edge - 4, edge - 4, edge - 4));
  CHECK(syscall(SYS_getresuid, edge - 2, edge - 4, edge - 4));
}

static void names(void) {
  printf("-- uname\n");
  struct utsname u;
  memset(&u, 'x', sizeof u);
  CHECK(syscall(SYS_uname, &u));
  printf("sysname=%s machine=%s\n", u.sysname, u.machine);
  EXPECT(isdigit((unsigned char)u.release[0]));
  EXPECT(strchr(u.release, '.') != NULL);
  EXPECT(memchr(u.nodename, 0, sizeof u.nodename) != NULL);
  EXPECT(memchr(u.version, 0, sizeof u.version) != NULL);
  EXPECT(memchr(u.domainname, 0, sizeof u.domainname) != NULL);
  CHECK(syscall(SYS_uname, NULL));
  CHECK(syscall(SYS_uname, BAD));
  CHECK(syscall(SYS_uname, ro));
  CHECK(syscall(SYS_uname, edge - 100));
  CHECK(syscall(SYS_uname, edge - sizeof u));
  CHECK(uname(&u));
}

static void masks(void) {
  printf("-- umask\n");
  mode_t old = umask(0);
  printf("old=%#o\n", old == 022 ? 022 : old == 02 ? 02 : 0777);
  CHECK(syscall(SYS_umask, 077));
  CHECK(syscall(SYS_umask, 0));
  CHECK(syscall(SYS_umask, 0777 | 07000));
  CHECK(syscall(SYS_umask, 0xffffffffL));
  CHECK(syscall(SYS_umask, 0123));
  CHECK(syscall(SYS_umask, 0x100000000L)); /* the mode is 32 bits */
  CHECK(syscall(SYS_umask, 022));
  umask(old);
}

static void sched(void) {
  printf("-- sched\n");
  CHECK(sched_yield());
  CHECK(syscall(SYS_sched_yield));
  unsigned long mask[16];
  long r;
  memset(mask, 0, sizeof mask);
  CHECK((r = syscall(SYS_sched_getaffinity, 0, sizeof mask, mask)) > 0);
  EXPECT(r % 8 == 0 && r <= (long)sizeof mask);
  int cpus = 0;
  for (int i = 0; i < 16; i++)
    cpus += __builtin_popcountl(mask[i]);
  EXPECT(cpus >= 1);
  EXPECT(mask[0] != 0);
  cpu_set_t set;
  CHECK(sched_getaffinity(0, sizeof set, &set));
  EXPECT(CPU_COUNT(&set) == cpus);
  CHECK(syscall(SYS_sched_getaffinity, syscall(SYS_gettid), sizeof mask, mask) == r);
  CHECK(syscall(SYS_sched_getaffinity, getpid(), sizeof mask, mask) == r);
  CHECK(syscall(SYS_sched_getaffinity, 0, 0, mask));
  CHECK(syscall(SYS_sched_getaffinity, 0, 4, mask));
  CHECK(syscall(SYS_sched_getaffinity, 0, 7, mask));
  CHECK(syscall(SYS_sched_getaffinity, 0, 9, mask));
  CHECK(syscall(SYS_sched_getaffinity, 0, 12, mask));
  CHECK(syscall(SYS_sched_getaffinity, 0, 0x100000008L, mask)); /* len is 32 bits */
  CHECK(syscall(SYS_sched_getaffinity, 0, 4, NULL)); /* length first */
  CHECK(syscall(SYS_sched_getaffinity, -1, 4, mask));
  CHECK(syscall(SYS_sched_getaffinity, -1, sizeof mask, mask));
  CHECK(syscall(SYS_sched_getaffinity, 0x3fffffff, sizeof mask, mask));
  CHECK(syscall(SYS_sched_getaffinity, 0, sizeof mask, NULL));
  CHECK(syscall(SYS_sched_getaffinity, 0, sizeof mask, BAD));
  CHECK(syscall(SYS_sched_getaffinity, 0, sizeof mask, ro));
  CHECK(syscall(SYS_sched_getaffinity, -1, sizeof mask, NULL)); /* ESRCH first */
  /* Only the kernel's mask size is copied: the rest may be unmapped. */
  CHECK(syscall(SYS_sched_getaffinity, 0, 4096, edge - r) == r);
  CHECK(syscall(SYS_sched_getaffinity, 0, r, edge - r) == r);
}

static void random_bytes(void) {
  printf("-- getrandom\n");
  unsigned char buf[300];
  memset(buf, 0, sizeof buf);
  CHECK(sys_getrandom(buf, sizeof buf, 0));
  int nz = 0;
  for (size_t i = 0; i < sizeof buf; i++)
    nz += buf[i] != 0;
  EXPECT(nz > 200);
  CHECK(sys_getrandom(buf, 1, 0));
  CHECK(sys_getrandom(buf, 0, 0));
  CHECK(sys_getrandom(NULL, 0, 0));
  CHECK(sys_getrandom(BAD, 0, 0));
  CHECK(sys_getrandom(buf, 64, GRND_NONBLOCK));
  CHECK(sys_getrandom(buf, 64, GRND_RANDOM));
  CHECK(sys_getrandom(buf, 64, GRND_RANDOM | GRND_NONBLOCK));
  CHECK(sys_getrandom(buf, 64, GRND_INSECURE));
  CHECK(sys_getrandom(buf, 64, GRND_INSECURE | GRND_NONBLOCK));
  CHECK(sys_getrandom(buf, 64, GRND_INSECURE | GRND_RANDOM));
  CHECK(sys_getrandom(buf, 64, 0x8));
  CHECK(sys_getrandom(buf, 64, 0x80000000u));
  CHECK(sys_getrandom(buf, 64, -1));
  CHECK(sys_getrandom(NULL, 64, 0x8)); /* flags first */
  CHECK(sys_getrandom(NULL, 16, 0));
  CHECK(sys_getrandom(BAD, 16, 0));
  CHECK(sys_getrandom(KADDR, 16, 0));
  CHECK(sys_getrandom(ro, 16, 0));
  CHECK(sys_getrandom(KADDR, SIZE_MAX, 0));
  /* Short buffers: as many bytes as fit before the fault. */
  CHECK(sys_getrandom(edge - 10, 64, 0));
  CHECK(sys_getrandom(edge - 100, 200, 0));
  CHECK(sys_getrandom(edge - 4096, 8192, 0));
  CHECK(sys_getrandom(edge - 64, 64, 0));
  /* Large requests are not cut short (no signal is pending). */
  size_t big = 40 << 20;
  char *p = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return;
  CHECK(sys_getrandom(p, big, 0));
  CHECK(sys_getrandom(p, big, GRND_INSECURE));
  munmap(p, big);
}

int main(void) {
  ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  edge = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ro == MAP_FAILED || edge == MAP_FAILED || mprotect(edge + 4096, 4096, PROT_NONE))
    return 1;
  edge += 4096;
  pids();
  ids();
  names();
  masks();
  sched();
  random_bytes();
  return 0;
}
