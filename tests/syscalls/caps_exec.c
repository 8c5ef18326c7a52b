/* Capabilities across execve (the program runs itself again as
 * /proc/self/exe, or as set-id copies of itself, with "show" in argv[1]
 * to print what it got): root's exec takes the bounding and inheritable
 * sets (a dropped bounding capability stays out, an inheritable one
 * comes in), permitted grows back unless no_new_privs; ambient
 * capabilities raised before a setuid to a non-root user are gone,
 * raised after it they carry into the new program (and the next);
 * keep_caps keeps permitted across setuid but not across exec; a real
 * uid 0 with another effective uid gets permitted but not effective
 * capabilities; SECBIT_NOROOT leaves only the ambient set; set-user-ID
 * and set-group-ID programs (root's and another user's, also on a
 * nosuid mount and under no_new_privs) with the ambient set cleared
 * (but not by a set-group-ID program of one's own group);
 * AT_SECURE, dumpability (also of a program the caller cannot read)
 * and the parent-death signal. The sandbox has
 * no file capabilities: no case sets them. */
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include "caps.h"

#define SELF "/proc/self/exe"
#define NBS CAP_NET_BIND_SERVICE

static void run(const char *path, const char *mode) {
  fflush(stdout);
  char *const av[] = {(char *)"caps_exec", (char *)mode, NULL};
  execv(path, av);
  printf("execv %s: %s\n", path, strerrorname_np(errno));
  fflush(stdout);
  _exit(97);
}

static void exec_self(void) { run(SELF, "show"); }

/* Leaves root for `uid` with the permitted set kept, then raises `amb`
 * into the ambient set (it must be inheritable). */
static void become(uid_t uid, uint64_t inh, int amb) {
  CHECK(capset3(BASE, BASE, inh));
  CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
  CHECK(setresgid(uid, uid, uid));
  CHECK(setresuid(uid, uid, uid));
  if (amb >= 0) CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, amb, 0, 0));
}

static void bounding_drop(void) {
  CHECK(capset3(BASE, BASE, CAPBIT(CAP_MKNOD) | CAPBIT(CAP_KILL)));
  CHECK(prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0));
  CHECK(prctl(PR_CAPBSET_DROP, CAP_MKNOD, 0, 0, 0));
  show("before");
  exec_self();
}

static void regrow(void) {
  CHECK(capset3(CAPBIT(CAP_CHOWN), CAPBIT(CAP_CHOWN) | CAPBIT(CAP_KILL), 0));
  CHECK(prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0));
  show("before");
  exec_self();
}

static void regrow_nnp(void) {
  CHECK(capset3(CAPBIT(CAP_CHOWN), CAPBIT(CAP_CHOWN) | CAPBIT(CAP_KILL), 0));
  CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  CHECK(prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0));
  exec_self();
}

static void root_exec_keeps(void) {
  /* Nothing grows: the process stays dumpable, keeps its death signal,
   * and gets its ambient capabilities anyway. */
  CHECK(capset3(BASE, BASE, CAPBIT(CAP_KILL)));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0));
  CHECK(prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0));
  CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
  exec_self();
}

static void ambient_before_setuid(void) {
  CHECK(capset3(BASE, BASE, CAPBIT(NBS) | CAPBIT(CAP_KILL)));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, NBS, 0, 0));
  CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
  CHECK(setresuid(1000, 1000, 1000));
  show("after setresuid");
  exec_self();
}

static void ambient_after_setuid(void) {
  become(1000, CAPBIT(NBS) | CAPBIT(CAP_KILL), NBS);
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SETUID, 0, 0));
  show("after raise");
  run(SELF, "again");
}

static void keepcaps_setuid(void) {
  CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
  CHECK(setuid(1000));
  show("after setuid");
  CHECK(capset3(CAPBIT(CAP_CHOWN), BASE, 0));
  exec_self();
}

static void real_root_only(void) {
  CHECK(capset3(BASE, BASE, CAPBIT(CAP_KILL)));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0));
  CHECK(setresuid(-1, 1000, -1));
  show("euid 1000");
  exec_self();
}

static void noroot(void) {
  CHECK(capset3(BASE, BASE, CAPBIT(NBS)));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, NBS, 0, 0));
  CHECK(prctl(PR_SET_SECUREBITS, SECBIT_NOROOT, 0, 0, 0));
  exec_self();
}

static void suid_other(void) {
  become(2000, CAPBIT(NBS), NBS);
  run("/tmp/caps_suid1000", "show");
}

static void suid_root(void) {
  CHECK(capset3(BASE, BASE, CAPBIT(CAP_KILL) | CAPBIT(NBS)));
  CHECK(prctl(PR_CAPBSET_DROP, NBS, 0, 0, 0));
  CHECK(setresuid(2000, 2000, 2000));
  run("/tmp/caps_suid0", "show");
}

static void suid_root_nnp(void) {
  CHECK(setresuid(2000, 2000, 2000));
  CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  run("/tmp/caps_suid0", "show");
}

static void suid_root_nosuid(void) {
  become(2000, CAPBIT(NBS), NBS);
  run("/tmp/nosuid/caps_suid0", "show");
}

static void root_runs_suid_other(void) {
  CHECK(capset3(BASE, BASE, CAPBIT(CAP_KILL)));
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0));
  run("/tmp/caps_suid1000", "show");
}

static void sgid(void) {
  become(2000, CAPBIT(NBS), NBS);
  run("/tmp/caps_sgid", "show");
}

/* A set-group-ID program of a group the caller is in changes no ids
 * that count: the ambient set stays (Linux 6.16 and later). */
static void sgid_member(void) {
  gid_t g = 100;
  CHECK(setgroups(1, &g));
  become(2000, CAPBIT(NBS), NBS);
  run("/tmp/caps_sgid", "show");
}

/* A program its caller cannot read leaves the process undumpable; root
 * can read it. */
static void execute_only(void) {
  CHECK(setresuid(2000, 2000, 2000));
  run("/tmp/caps_xonly", "show");
}

static void execute_only_root(void) { run("/tmp/caps_xonly", "show"); }

/* A copy of this program at `path`, owned by uid:gid, mode `mode`. */
static void copy_self(const char *path, uid_t uid, gid_t gid, mode_t mode) {
  int in = open(SELF, O_RDONLY);
  int out = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0755);
  if (in < 0 || out < 0) {
    printf("copy to %s: %s\n", path, strerrorname_np(errno));
    exit(96);
  }
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0) {
    if (write(out, buf, n) != n) exit(96);
  }
  close(in);
  CHECK(fchown(out, uid, gid));
  CHECK(fchmod(out, mode));
  close(out);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "show") == 0) {
    show("  [exec]");
    int sig = -1;
    prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
    printf("  [exec]: AT_SECURE=%lu no_new_privs=%d pdeathsig=%d\n",
           getauxval(AT_SECURE), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), sig);
    return 0;
  }
  if (argc > 1 && strcmp(argv[1], "again") == 0) {
    show("  [exec once]");
    run(SELF, "show");
  }
  copy_self("/tmp/caps_suid0", 0, 0, 04755);
  copy_self("/tmp/caps_suid1000", 1000, 1000, 04755);
  copy_self("/tmp/caps_sgid", 0, 100, 02755);
  copy_self("/tmp/caps_xonly", 0, 0, 0711);
  CHECK(mkdir("/tmp/nosuid", 0755));
  CHECK(mount("tmpfs", "/tmp/nosuid", "tmpfs", MS_NOSUID, "mode=755"));
  copy_self("/tmp/nosuid/caps_suid0", 0, 0, 04755);

  scenario("bounding drop", bounding_drop);
  scenario("permitted grows back", regrow);
  scenario("permitted stays under no_new_privs", regrow_nnp);
  scenario("root exec raising nothing", root_exec_keeps);
  scenario("ambient before setuid", ambient_before_setuid);
  scenario("ambient after setuid", ambient_after_setuid);
  scenario("keepcaps across setuid", keepcaps_setuid);
  scenario("real uid 0 only", real_root_only);
  scenario("noroot", noroot);
  scenario("set-user-ID other user", suid_other);
  scenario("set-user-ID root", suid_root);
  scenario("set-user-ID root under no_new_privs", suid_root_nnp);
  scenario("set-user-ID root on nosuid", suid_root_nosuid);
  scenario("root runs set-user-ID other user", root_runs_suid_other);
  scenario("set-group-ID", sgid);
  scenario("set-group-ID of a group one is in", sgid_member);
  scenario("execute-only program", execute_only);
  scenario("execute-only program run by root", execute_only_root);
  return 0;
}
