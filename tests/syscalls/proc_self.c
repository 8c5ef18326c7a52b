/* /proc/self and /proc/[pid]: stat, status, comm, cmdline, environ, auxv,
 * limits, task/, the self and thread-self links. Values that differ
 * between hosts (pids, addresses) are printed only as relations to what
 * the process knows of itself. */
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

extern char **environ;

static char buf[65536];

/* Reads a whole file into buf; returns its length or -1. */
static long slurp(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  long n = 0, r;
  while ((r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += r;
  close(fd);
  buf[n] = 0;
  return n;
}

/* The value after "key:\t" in buf (status format), up to the newline. */
static const char *field(const char *key, char *out, size_t len) {
  char pat[64];
  snprintf(pat, sizeof pat, "\n%s:\t", key);
  const char *p = strstr(buf, pat);
  if (!p && !strncmp(buf, pat + 1, strlen(pat + 1))) p = buf - 1;
  if (!p) return NULL;
  p += strlen(pat);
  size_t i = 0;
  while (p[i] && p[i] != '\n' && i + 1 < len) {
    out[i] = p[i];
    i++;
  }
  out[i] = 0;
  return out;
}

/* Splits /proc/[pid]/stat after the command name into fields[3..]. */
static int stat_fields(char *s, char *comm, unsigned long long *f) {
  char *open = strchr(s, '('), *close = strrchr(s, ')');
  if (!open || !close) return -1;
  f[1] = strtoull(s, NULL, 10);
  memcpy(comm, open + 1, close - open - 1);
  comm[close - open - 1] = 0;
  char *p = close + 2;
  f[3] = *p; /* state, as a character */
  p += 2;
  int n = 3;
  while (*p && *p != '\n') {
    char *end;
    f[++n] = strtoull(p, &end, 10);
    p = end;
    while (*p == ' ') p++;
  }
  return n;
}

static void check_stat(const char *path, long want_pid, char **argv) {
  unsigned long long f[64] = {0};
  char comm[64];
  long n = slurp(path);
  EXPECT(n > 0 && buf[n - 1] == '\n');
  int count = stat_fields(buf, comm, f);
  printf("%d fields, comm=%s state=%c\n", count, comm, (char)f[3]);
  EXPECT(f[1] == (unsigned long long)want_pid);
  EXPECT(f[4] == (unsigned long long)getppid());
  EXPECT(f[20] == 1); /* num_threads */
  EXPECT(f[23] > 0);  /* vsize */
  EXPECT(f[26] <= (unsigned long)&check_stat && (unsigned long)&check_stat < f[27]);
  EXPECT(f[28] == (unsigned long)argv - 8); /* startstack: where argc is */
  EXPECT(f[45] < f[46] && f[46] <= f[47]); /* start_data, end_data, start_brk */
  EXPECT(f[47] <= (unsigned long)sbrk(0));
  EXPECT(f[48] == (unsigned long)argv[0]); /* arg_start */
  EXPECT(f[49] == (unsigned long)environ[0]); /* arg_end = env_start */
  EXPECT(f[50] == (unsigned long)environ[0]);
  char **e = environ;
  while (e[1]) e++;
  EXPECT(f[51] == (unsigned long)*e + strlen(*e) + 1); /* env_end */
  sigset_t cur;
  sigprocmask(SIG_BLOCK, NULL, &cur);
  unsigned long long blocked = 0;
  for (int s = 1; s < 64; s++)
    if (sigismember(&cur, s) == 1) blocked |= 1ULL << (s - 1);
  printf("blocked=%llx ignored=%llx caught=%llx\n", f[32], f[33], f[34]);
  EXPECT(f[32] == blocked);
}

static void on_usr1(int sig) { (void)sig; }

int main(int argc, char **argv) {
  (void)argc;
  char s[256], want[256];
  long pid = getpid();

  printf("-- links\n");
  memset(s, 0, sizeof s);
  CHECK_OK(readlink("/proc/self", s, sizeof s));
  snprintf(want, sizeof want, "%ld", pid);
  EXPECT(!strcmp(s, want));
  memset(s, 0, sizeof s);
  CHECK_OK(readlink("/proc/thread-self", s, sizeof s));
  snprintf(want, sizeof want, "%ld/task/%d", pid, gettid());
  EXPECT(!strcmp(s, want));
  memset(s, 0, sizeof s);
  CHECK(readlink("/proc/mounts", s, sizeof s));
  printf("mounts -> %s\n", s);

  printf("-- comm\n");
  const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
  snprintf(want, sizeof want, "%.15s\n", base);
  CHECK(slurp("/proc/self/comm"));
  EXPECT(!strcmp(buf, want));
  CHECK(prctl(PR_SET_NAME, "renamed-process-x"));
  CHECK(slurp("/proc/self/comm"));
  printf("comm: %s", buf);

  printf("-- stat\n");
  /* A signal state that is the same natively and in the sandbox. */
  for (int sig = 1; sig <= 64; sig++) {
    /* The raw call: libc refuses the real-time signals it uses itself. */
    struct {
      void *handler;
      unsigned long flags;
      void *restorer;
      unsigned long mask;
    } dfl = {SIG_DFL, 0, NULL, 0};
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
  }
  signal(SIGUSR2, SIG_IGN);
  signal(SIGUSR1, on_usr1);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigprocmask(SIG_SETMASK, &set, NULL);
  check_stat("/proc/self/stat", pid, argv);
  snprintf(s, sizeof s, "/proc/%ld/stat", pid);
  check_stat(s, pid, argv);
  snprintf(s, sizeof s, "/proc/self/task/%d/stat", gettid());
  check_stat(s, gettid(), argv);

  printf("-- status\n");
  umask(027);
  CHECK_OK(slurp("/proc/self/status"));
  char v[256];
  printf("Name=%s\n", field("Name", v, sizeof v));
  printf("Umask=%s\n", field("Umask", v, sizeof v));
  printf("State=%s\n", field("State", v, sizeof v));
  snprintf(want, sizeof want, "%ld", pid);
  EXPECT(!strcmp(field("Pid", v, sizeof v), want));
  EXPECT(!strcmp(field("Tgid", v, sizeof v), want));
  EXPECT(!strcmp(field("NSpid", v, sizeof v), want));
  snprintf(want, sizeof want, "%d", getppid());
  EXPECT(!strcmp(field("PPid", v, sizeof v), want));
  printf("TracerPid=%s\n", field("TracerPid", v, sizeof v));
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  getresuid(&ru, &eu, &su);
  getresgid(&rg, &eg, &sg);
  snprintf(want, sizeof want, "%u\t%u\t%u\t%u", ru, eu, su, eu);
  EXPECT(!strcmp(field("Uid", v, sizeof v), want));
  snprintf(want, sizeof want, "%u\t%u\t%u\t%u", rg, eg, sg, eg);
  EXPECT(!strcmp(field("Gid", v, sizeof v), want));
  gid_t groups[64];
  int ng = getgroups(64, groups);
  want[0] = 0;
  for (int i = 0; i < ng; i++)
    snprintf(want + strlen(want), sizeof want - strlen(want), "%s%u", i ? " " : "", groups[i]);
  strcat(want, " ");
  EXPECT(!strcmp(field("Groups", v, sizeof v), want));
  printf("Threads=%s\n", field("Threads", v, sizeof v));
  printf("SigPnd=%s\n", field("SigPnd", v, sizeof v));
  printf("SigBlk=%s\n", field("SigBlk", v, sizeof v));
  printf("SigIgn=%s\n", field("SigIgn", v, sizeof v));
  printf("SigCgt=%s\n", field("SigCgt", v, sizeof v));
  printf("NoNewPrivs=%s\n", field("NoNewPrivs", v, sizeof v));
  printf("Mems_allowed_list=%s\n", field("Mems_allowed_list", v, sizeof v));
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  sched_getaffinity(0, sizeof cpus, &cpus);
  int ncpu = CPU_COUNT(&cpus);
  if (ncpu == 1)
    snprintf(want, sizeof want, "0");
  else
    snprintf(want, sizeof want, "0-%d", ncpu - 1);
  EXPECT(!strcmp(field("Cpus_allowed_list", v, sizeof v), want));
  const char *mem[] = {"VmPeak", "VmSize", "VmRSS", "VmData", "VmStk", "VmExe"};
  for (unsigned i = 0; i < sizeof mem / sizeof *mem; i++) {
    unsigned long kb = 0;
    char unit[8] = "";
    const char *f = field(mem[i], v, sizeof v);
    int ok = f && strlen(f) >= 11 && sscanf(f, "%8lu %7s", &kb, unit) == 2;
    printf("%s: formatted %s, %s\n", mem[i], ok && !strcmp(unit, "kB") ? "yes" : "no",
           kb > 0 ? "nonzero" : "zero");
  }

  printf("-- cmdline and environ\n");
  long n = slurp("/proc/self/cmdline");
  long want_len = 0;
  for (char **a = argv; *a; a++) want_len += strlen(*a) + 1;
  EXPECT(n == want_len);
  EXPECT(!memcmp(buf, argv[0], strlen(argv[0]) + 1));
  argv[0][0] ^= 1; /* The file shows the memory as it is now. */
  slurp("/proc/self/cmdline");
  EXPECT(buf[0] == argv[0][0]);
  argv[0][0] ^= 1;
  n = slurp("/proc/self/environ");
  long off = 0;
  int same = 1;
  for (char **e = environ; *e; e++) {
    if (off >= n || strcmp(buf + off, *e)) same = 0;
    off += strlen(*e) + 1;
  }
  EXPECT(same && off == n);

  printf("-- auxv\n");
  n = slurp("/proc/self/auxv");
  EXPECT(n > 0 && n % 16 == 0);
  unsigned long *aux = (unsigned long *)buf;
  int entries = 0, match = 1, ends = 0;
  for (long i = 0; i < n / 16; i++) {
    if (aux[2 * i] == AT_NULL) {
      ends = i == n / 16 - 1;
      break;
    }
    entries++;
    /* glibc's getauxval(AT_HWCAP) on x86-64 is its own value, not the
     * vector's. */
    if (aux[2 * i] != AT_HWCAP && getauxval(aux[2 * i]) != aux[2 * i + 1]) match = 0;
  }
  EXPECT(entries > 10);
  EXPECT(match);
  EXPECT(ends);

  printf("-- limits\n");
  struct rlimit rl = {100, 200};
  CHECK(setrlimit(RLIMIT_NOFILE, &rl));
  rl.rlim_cur = rl.rlim_max = 0;
  CHECK(setrlimit(RLIMIT_CORE, &rl));
  rl.rlim_cur = 4 << 20;
  rl.rlim_max = RLIM_INFINITY;
  getrlimit(RLIMIT_STACK, &rl);
  rl.rlim_cur = 4 << 20;
  CHECK(setrlimit(RLIMIT_STACK, &rl));
  getrlimit(RLIMIT_STACK, &rl);
  n = slurp("/proc/self/limits");
  int lines = 0;
  for (char *line = buf; *line; lines++) {
    char *nl = strchr(line, '\n');
    if (!nl) break;
    *nl = 0;
    if (!strncmp(line, "Limit ", 6) || !strncmp(line, "Max open files", 14) ||
        !strncmp(line, "Max core file size", 18))
      printf("[%s]\n", line);
    if (!strncmp(line, "Max stack size", 14)) {
      char soft[32], hard[32];
      sscanf(line + 26, "%31s %31s", soft, hard);
      printf("stack soft=%s hard matches: %s\n", soft,
             (rl.rlim_max == RLIM_INFINITY ? !strcmp(hard, "unlimited")
                                           : strtoul(hard, NULL, 10) == rl.rlim_max)
                 ? "yes"
                 : "no");
    }
    printf("line %d: %zu columns\n", lines, strlen(line));
    line = nl + 1;
  }
  printf("%d lines\n", lines);

  printf("-- task\n");
  DIR *d = opendir("/proc/self/task");
  EXPECT(d != NULL);
  int tasks = 0, me = 0;
  struct dirent *de;
  while (d && (de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    tasks++;
    if (atoi(de->d_name) == gettid() && de->d_type == DT_DIR) me = 1;
  }
  if (d) closedir(d);
  printf("tasks=%d me=%d\n", tasks, me);
  struct stat st;
  CHECK(stat("/proc/self/task", &st));
  printf("task nlink=%ld\n", (long)st.st_nlink);
  snprintf(s, sizeof s, "/proc/self/task/%d/comm", gettid());
  CHECK(slurp(s));
  printf("thread comm: %s", buf);
  snprintf(s, sizeof s, "/proc/self/task/%d/task", gettid());
  CHECK(stat(s, &st));

  printf("-- processes that are not there\n");
  CHECK(open("/proc/999999999/stat", O_RDONLY));
  CHECK(open("/proc/0/stat", O_RDONLY));
  snprintf(s, sizeof s, "/proc/0%ld/stat", pid);
  CHECK(open(s, O_RDONLY));
  CHECK(open("/proc/self/task/999999999/stat", O_RDONLY));
  CHECK(open("/proc/self/nothing", O_RDONLY));
  return 0;
}
