/* Helpers for the capability cases: reading, printing and setting the
 * five sets. The cases run as root, natively with whatever bounding set
 * the machine gives root; each scenario runs in a forked child that
 * first normalizes its sets to BASE (Docker's default capabilities), so
 * that what it prints does not depend on where it runs. */
#ifndef CAPS_H
#define CAPS_H

#include <linux/capability.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

#define CAPBIT(n) (1ULL << (n))
/* Docker's default 14. */
#define BASE                                                                \
  (CAPBIT(CAP_CHOWN) | CAPBIT(CAP_DAC_OVERRIDE) | CAPBIT(CAP_FOWNER) |      \
   CAPBIT(CAP_FSETID) | CAPBIT(CAP_KILL) | CAPBIT(CAP_SETGID) |             \
   CAPBIT(CAP_SETUID) | CAPBIT(CAP_SETPCAP) | CAPBIT(CAP_NET_BIND_SERVICE) | \
   CAPBIT(CAP_NET_RAW) | CAPBIT(CAP_SYS_CHROOT) | CAPBIT(CAP_MKNOD) |       \
   CAPBIT(CAP_AUDIT_WRITE) | CAPBIT(CAP_SETFCAP))

#ifndef SECBIT_NOROOT
#define SECBIT_NOROOT (1 << 0)
#define SECBIT_NOROOT_LOCKED (1 << 1)
#define SECBIT_NO_SETUID_FIXUP (1 << 2)
#define SECBIT_KEEP_CAPS (1 << 4)
#define SECBIT_KEEP_CAPS_LOCKED (1 << 5)
#define SECBIT_NO_CAP_AMBIENT_RAISE (1 << 6)
#endif

static int capget3(pid_t pid, uint64_t *e, uint64_t *p, uint64_t *i) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, pid};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  int r = syscall(SYS_capget, &h, d);
  *e = d[0].effective | (uint64_t)d[1].effective << 32;
  *p = d[0].permitted | (uint64_t)d[1].permitted << 32;
  *i = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
  return r;
}

static int capset3(uint64_t e, uint64_t p, uint64_t i) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2] = {
      {(uint32_t)e, (uint32_t)p, (uint32_t)i},
      {(uint32_t)(e >> 32), (uint32_t)(p >> 32), (uint32_t)(i >> 32)}};
  return syscall(SYS_capset, &h, d);
}

/* The Cap* lines of /proc/self/status, on one line. */
static void status_caps(char *out, size_t n) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  out[0] = 0;
  if (!f) {
    snprintf(out, n, "(no status: %s)", strerrorname_np(errno));
    return;
  }
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "Cap", 3) != 0) continue;
    line[strcspn(line, "\n")] = 0;
    char *tab = strchr(line, '\t');
    if (tab) *tab = '=';
    strncat(out, line + 3, n - strlen(out) - 2);
    strncat(out, " ", n - strlen(out) - 1);
  }
  fclose(f);
}

/* Prints the five sets (status), the three of capget, the ids and the
 * per-process flags that go with the sets. */
static void show(const char *tag) {
  char st[256];
  uint64_t e, p, i;
  status_caps(st, sizeof st);
  int r = capget3(0, &e, &p, &i);
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  getresuid(&ru, &eu, &su);
  getresgid(&rg, &eg, &sg);
  long fsu = syscall(SYS_setfsuid, -1);
  printf("%s: %s\n", tag, st);
  printf("%s: capget=%d e=%llx p=%llx i=%llx\n", tag, r, (unsigned long long)e,
         (unsigned long long)p, (unsigned long long)i);
  printf("%s: uids %u %u %u %ld gids %u %u %u keepcaps=%d securebits=%#x "
         "dumpable=%d\n",
         tag, ru, eu, su, fsu, rg, eg, sg, prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0),
         prctl(PR_GET_SECUREBITS, 0, 0, 0, 0), prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
}

/* Drops every bounding capability outside BASE, then makes permitted
 * and effective BASE, inheritable and ambient empty, securebits 0. */
static void normalize(void) {
  for (int c = 0; c < 64; c++) {
    if (BASE & CAPBIT(c)) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) {
      printf("normalize: drop %d: %s\n", c, strerrorname_np(errno));
      exit(98);
    }
  }
  if (capset3(BASE, BASE, 0) != 0 ||
      prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 ||
      prctl(PR_SET_SECUREBITS, 0, 0, 0, 0) != 0) {
    printf("normalize: %s\n", strerrorname_np(errno));
    exit(98);
  }
}

static pid_t xfork(void) {
  fflush(stdout);
  pid_t p = fork();
  if (p < 0) {
    perror("fork");
    exit(99);
  }
  return p;
}

static void wait_child(const char *what, pid_t c) {
  int st;
  pid_t w = waitpid(c, &st, 0);
  printf("%s: waited=%d status=%#x\n", what, w == c, st);
}

/* Runs `f` in a child with normalized sets, and waits for it. */
static void scenario(const char *name, void (*f)(void)) {
  printf("== %s\n", name);
  pid_t c = xfork();
  if (c == 0) {
    normalize();
    f();
    fflush(stdout);
    _exit(0);
  }
  wait_child(name, c);
}

#endif
