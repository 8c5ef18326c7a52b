/* Capabilities without exec: capget/capset (versions, pids, the subset
 * rules, CAP_SETPCAP for inheritable, the bounding set's limit on it,
 * ambient bits going with inheritable), PR_CAPBSET_READ/DROP (and its
 * need of CAP_SETPCAP), PR_CAP_AMBIENT (raise, lower, is-set, clear-all
 * and their errors), securebits (privilege, locks, unknown bits,
 * SECBIT_NO_CAP_AMBIENT_RAISE, SECBIT_KEEP_CAPS_LOCKED), and what
 * setuid, seteuid and setfsuid do to the sets: keep_caps, the effective
 * set following the effective uid, the file-system capabilities
 * following the fsuid, SECBIT_NO_SETUID_FIXUP. */
#include <fcntl.h>
#include "caps.h"

#define FSCAPS                                                             \
  (CAPBIT(CAP_CHOWN) | CAPBIT(CAP_DAC_OVERRIDE) | CAPBIT(CAP_FOWNER) |     \
   CAPBIT(CAP_FSETID) | CAPBIT(CAP_MKNOD))

static void versions(void) {
  struct __user_cap_header_struct h = {0x12345678, 0};
  struct __user_cap_data_struct d[2];
  /* Probing with NULL data: success, and the preferred version back. */
  CHECK(syscall(SYS_capget, &h, NULL));
  printf("version written back: %#x\n", h.version);
  h.version = 0x12345678;
  CHECK(syscall(SYS_capget, &h, d));
  printf("version written back: %#x\n", h.version);
  h.version = 0x12345678;
  CHECK(syscall(SYS_capset, &h, d));
  printf("version written back: %#x\n", h.version);
  CHECK(syscall(SYS_capget, NULL, d));
  /* v1 carries only the low 32 bits. */
  h.version = _LINUX_CAPABILITY_VERSION_1;
  h.pid = 0;
  memset(d, 0xff, sizeof d);
  CHECK(syscall(SYS_capget, &h, d));
  printf("v1: e=%x p=%x i=%x next=%x\n", d[0].effective, d[0].permitted,
         d[0].inheritable, d[1].effective);
  h.pid = -1;
  CHECK(syscall(SYS_capget, &h, d));
  h.version = _LINUX_CAPABILITY_VERSION_2;
  h.pid = 0;
  CHECK(syscall(SYS_capget, &h, d));
  printf("v2: e=%x p=%x\n", d[0].effective, d[0].permitted);
  /* A v1 capset of the low word. */
  h.version = _LINUX_CAPABILITY_VERSION_1;
  d[0].effective = d[0].permitted = (uint32_t)BASE & ~CAPBIT(CAP_KILL);
  d[0].inheritable = 0;
  CHECK(syscall(SYS_capset, &h, d));
  show("after v1 capset");
}

static void pids(void) {
  int ready[2], hold[2];
  CHECK(pipe(ready));
  CHECK(pipe(hold));
  pid_t c = xfork();
  if (c == 0) {
    capset3(CAPBIT(CAP_KILL), CAPBIT(CAP_KILL) | CAPBIT(CAP_CHOWN),
            CAPBIT(CAP_CHOWN));
    char b = 0;
    write(ready[1], &b, 1);
    read(hold[0], &b, 1);
    _exit(0);
  }
  char b;
  read(ready[0], &b, 1);
  uint64_t e, p, i;
  /* Any task's sets can be read. */
  CHECK(capget3(c, &e, &p, &i));
  printf("child: e=%llx p=%llx i=%llx\n", (unsigned long long)e,
         (unsigned long long)p, (unsigned long long)i);
  CHECK(capget3(getpid(), &e, &p, &i));
  printf("self by pid: e=%llx\n", (unsigned long long)e);
  /* Only one's own can be set. */
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, c};
  struct __user_cap_data_struct d[2] = {{0}};
  CHECK(syscall(SYS_capset, &h, d));
  h.pid = getpid();
  d[0].effective = d[0].permitted = (uint32_t)BASE;
  CHECK(syscall(SYS_capset, &h, d));
  write(hold[1], &b, 1);
  wait_child("holder", c);
  /* A pid no task has. */
  CHECK(capget3(c, &e, &p, &i));
  h.pid = c;
  CHECK(syscall(SYS_capset, &h, d));
}

static void subsets(void) {
  uint64_t less = BASE & ~(CAPBIT(CAP_KILL) | CAPBIT(CAP_MKNOD));
  /* Effective within permitted; permitted only shrinks. */
  CHECK(capset3(BASE, less, 0));
  CHECK(capset3(less, less, 0));
  CHECK(capset3(BASE, BASE, 0));
  CHECK(capset3(less & ~CAPBIT(CAP_CHOWN), less, 0));
  show("shrunk");
  /* Inheritable: from the permitted set, with CAP_SETPCAP also beyond
   * it, but never beyond the bounding set. */
  CHECK(capset3(less, less, CAPBIT(CAP_SYS_ADMIN)));
  CHECK(capset3(less, less, CAPBIT(CAP_KILL)));
  CHECK(prctl(PR_CAPBSET_DROP, CAP_KILL, 0, 0, 0));
  CHECK(capset3(less, less, CAPBIT(CAP_KILL)));
  CHECK(capset3(less, less, CAPBIT(CAP_MKNOD) | CAPBIT(CAP_CHOWN)));
  show("inheritable beyond permitted");
  /* Without CAP_SETPCAP: only what is permitted (or was inheritable). */
  uint64_t nopcap = less & ~CAPBIT(CAP_SETPCAP);
  CHECK(capset3(nopcap, less, CAPBIT(CAP_MKNOD) | CAPBIT(CAP_CHOWN)));
  CHECK(capset3(nopcap, less, CAPBIT(CAP_MKNOD) | CAPBIT(CAP_CHOWN) |
                                  CAPBIT(CAP_SYS_CHROOT)));
  CHECK(capset3(nopcap, less, CAPBIT(CAP_SYS_ADMIN)));
  CHECK(capset3(nopcap, less, CAPBIT(CAP_CHOWN)));
  CHECK(capset3(nopcap, less, CAPBIT(CAP_CHOWN) | CAPBIT(CAP_MKNOD)));
  show("without setpcap");
  /* Bits beyond the last capability are dropped. */
  CHECK(capset3(nopcap | CAPBIT(63), less | CAPBIT(62), CAPBIT(CAP_CHOWN)));
  show("high bits");
}

static void bounding(void) {
  CHECK(prctl(PR_CAPBSET_READ, CAP_NET_RAW, 0, 0, 0));
  CHECK(prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0));
  CHECK(prctl(PR_CAPBSET_READ, 64, 0, 0, 0));
  CHECK(prctl(PR_CAPBSET_READ, -1L, 0, 0, 0));
  CHECK(prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0));
  CHECK(prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0));
  CHECK(prctl(PR_CAPBSET_READ, CAP_NET_RAW, 0, 0, 0));
  CHECK(prctl(PR_CAPBSET_DROP, 64, 0, 0, 0));
  /* Dropping from the bounding set leaves the other sets alone. */
  show("dropped net_raw");
  /* Without CAP_SETPCAP in the effective set (it stays permitted). */
  CHECK(capset3(BASE & ~CAPBIT(CAP_SETPCAP), BASE, 0));
  CHECK(prctl(PR_CAPBSET_DROP, CAP_CHOWN, 0, 0, 0));
  CHECK(prctl(PR_CAPBSET_DROP, 64, 0, 0, 0));
  CHECK(prctl(PR_CAPBSET_READ, CAP_CHOWN, 0, 0, 0));
  CHECK(prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS, 0, 0, 0));
  show("no setpcap");
}

static void ambient(void) {
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0));
  CHECK(capset3(BASE, BASE, CAPBIT(CAP_KILL) | CAPBIT(CAP_CHOWN)));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_MKNOD, 0, 0));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_MKNOD, 0, 0));
  show("raised kill, chown");
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_CHOWN, 0, 0));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_MKNOD, 0, 0));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0));
  /* Errors. */
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, 64, 0, 0));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 1, 0));
  CHECK(prctl(PR_CAP_AMBIENT, 99, CAP_KILL, 0, 0));
  CHECK(prctl(PR_CAP_AMBIENT, 99, 64, 0, 0));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 1, 0, 0));
  /* Leaving the inheritable (or permitted) set leaves the ambient one. */
  CHECK(capset3(BASE, BASE, CAPBIT(CAP_KILL)));
  show("chown no longer inheritable");
  CHECK(capset3(BASE, BASE, CAPBIT(CAP_KILL) | CAPBIT(CAP_CHOWN)));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_CHOWN, 0, 0));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0));
  CHECK(capset3(BASE & ~CAPBIT(CAP_KILL), BASE & ~CAPBIT(CAP_KILL),
                CAPBIT(CAP_KILL) | CAPBIT(CAP_CHOWN)));
  show("kill no longer permitted");
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
  show("cleared");
  /* The securebit that forbids raising. */
  CHECK(prctl(PR_SET_SECUREBITS, SECBIT_NO_CAP_AMBIENT_RAISE, 0, 0, 0));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_CHOWN, 0, 0));
}

static void securebits(void) {
  CHECK(prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
  CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
  CHECK(prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
  CHECK(prctl(PR_SET_SECUREBITS, SECBIT_NOROOT, 0, 0, 0));
  CHECK(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
  /* Unknown bits. */
  CHECK(prctl(PR_SET_SECUREBITS, 1 << 20, 0, 0, 0));
  CHECK(prctl(PR_SET_SECUREBITS, 1 << 12, 0, 0, 0));
  /* Locks: a locked bit stays, a lock cannot be undone. */
  CHECK(prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED, 0,
              0, 0));
  CHECK(prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0));
  CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
  CHECK(prctl(PR_SET_KEEPCAPS, 2, 0, 0, 0));
  CHECK(prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS_LOCKED, 0, 0, 0));
  CHECK(prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS, 0, 0, 0));
  CHECK(prctl(PR_SET_SECUREBITS,
              SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NOROOT, 0, 0,
              0));
  CHECK(prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
  /* Without CAP_SETPCAP nothing changes, even to the same bits. */
  CHECK(capset3(BASE & ~CAPBIT(CAP_SETPCAP), BASE, 0));
  CHECK(prctl(PR_SET_SECUREBITS,
              SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NOROOT, 0, 0,
              0));
  CHECK(prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
}

static void setuid_keepcaps(void) {
  CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
  CHECK(capset3(BASE, BASE, CAPBIT(CAP_KILL)));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0));
  CHECK(setuid(1000));
  /* Permitted stays; effective and ambient go. */
  show("setuid with keepcaps");
  CHECK(capset3(CAPBIT(CAP_CHOWN), BASE, CAPBIT(CAP_KILL)));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0));
  show("effective again");
  CHECK(setuid(0));
  CHECK(setuid(1001));
}

static void setuid_plain(void) {
  CHECK(setresuid(1000, 1000, 1000));
  show("setresuid");
  CHECK(capset3(0, CAPBIT(CAP_CHOWN), 0));
}

static void seteuid_moves(void) {
  CHECK(seteuid(1000));
  show("euid 1000");
  CHECK(seteuid(0));
  show("euid 0");
  CHECK(capset3(BASE & ~CAPBIT(CAP_CHOWN), BASE, 0));
  CHECK(syscall(SYS_setfsuid, 1000));
  show("fsuid 1000");
  CHECK(syscall(SYS_setfsuid, 0));
  show("fsuid 0");
  /* setresuid keeping all ids changes nothing; with the euid it sets
   * the fsuid, but the capabilities only follow setfsuid. */
  CHECK(syscall(SYS_setfsuid, 1000));
  CHECK(setresuid(-1, -1, -1));
  show("setresuid changing nothing");
  CHECK(setresuid(-1, 0, -1));
  show("fsuid back by setresuid");
  /* access() checks with the real uid's capabilities: root's are its
   * permitted set. */
  int fd = open("/tmp/caps_secret", O_CREAT | O_WRONLY, 0);
  CHECK(fd >= 0 ? 0 : -1);
  close(fd);
  CHECK(capset3(0, BASE, 0));
  CHECK(access("/tmp/caps_secret", R_OK));
  CHECK(faccessat(AT_FDCWD, "/tmp/caps_secret", R_OK, AT_EACCESS));
  CHECK(capset3(0, 0, 0));
  CHECK(access("/tmp/caps_secret", R_OK));
}

static void no_fixup(void) {
  CHECK(capset3(BASE, BASE, CAPBIT(CAP_KILL)));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0));
  CHECK(prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0));
  CHECK(setresuid(1000, 1000, 1000));
  /* The sets are untouched. */
  show("no fixup");
  CHECK(syscall(SYS_setfsuid, 0));
  CHECK(syscall(SYS_setfsuid, 1000));
  show("no fixup fsuid");
}

int main(void) {
  scenario("versions", versions);
  scenario("pids", pids);
  scenario("subsets", subsets);
  scenario("bounding", bounding);
  scenario("ambient", ambient);
  scenario("securebits", securebits);
  scenario("setuid keepcaps", setuid_keepcaps);
  scenario("setuid", setuid_plain);
  scenario("seteuid", seteuid_moves);
  scenario("no setuid fixup", no_fixup);
  return 0;
}
