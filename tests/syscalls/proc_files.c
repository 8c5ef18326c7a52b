/* The rest of /proc: cpuinfo, meminfo, stat, uptime, loadavg, version,
 * filesystems, sys/; the modes and owners of procfs files, statfs, the
 * listing of /proc and /proc/self, what writing, seeking and creating do.
 * Machine-dependent numbers are printed only as relations. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

static char buf[1 << 20];

static long slurp(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  long n = 0, r;
  while ((r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += r;
  close(fd);
  buf[n] = 0;
  return n;
}

static int count_prefix(const char *prefix) {
  int n = 0;
  size_t len = strlen(prefix);
  for (char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
    if (!strncmp(p, prefix, len)) n++;
  return n;
}

static void mode_of(const char *path) {
  struct stat st;
  if (lstat(path, &st) < 0) {
    printf("%s: %s\n", path, strerrorname_np(errno));
    return;
  }
  printf("%s: mode=%o owner=%s\n", path, st.st_mode, st.st_uid == geteuid() ? "me" : "other");
}

static void cpuid(unsigned leaf, unsigned r[4]) {
  __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

static void sysctl(const char *path) {
  long n = slurp(path);
  printf("%s: ", path);
  if (n < 0)
    printf("%s\n", strerrorname_np(errno));
  else
    fwrite(buf, 1, n, stdout);
}

int main(void) {
  int nprocs = get_nprocs();

  printf("-- cpuinfo\n");
  CHECK_OK(slurp("/proc/cpuinfo"));
  EXPECT(count_prefix("processor\t: ") == nprocs);
  EXPECT(count_prefix("model name\t: ") == nprocs);
  EXPECT(count_prefix("flags\t\t: ") == nprocs);
  int numbered = 1;
  for (int i = 0; i < nprocs; i++) {
    char want[64];
    snprintf(want, sizeof want, "processor\t: %d\n", i);
    if (!strstr(buf, want)) numbered = 0;
  }
  EXPECT(numbered);
  unsigned r[4];
  cpuid(0, r);
  char vendor[13] = {0}, want[128];
  memcpy(vendor, &r[1], 4);
  memcpy(vendor + 4, &r[3], 4);
  memcpy(vendor + 8, &r[2], 4);
  snprintf(want, sizeof want, "vendor_id\t: %s\n", vendor);
  EXPECT(count_prefix(want) == nprocs);
  cpuid(1, r);
  unsigned family = (r[0] >> 8) & 0xf, model = (r[0] >> 4) & 0xf;
  if (family == 0xf) family += (r[0] >> 20) & 0xff;
  if (family >= 6) model += ((r[0] >> 16) & 0xf) << 4;
  snprintf(want, sizeof want, "cpu family\t: %u\nmodel\t\t: %u\n", family, model);
  EXPECT(strstr(buf, want) != NULL);
  snprintf(want, sizeof want, "stepping\t: %u\n", r[0] & 0xf);
  EXPECT(strstr(buf, want) != NULL);
  EXPECT(strstr(buf, " fpu ") && strstr(buf, " sse2 ") && strstr(buf, " lm "));
  EXPECT(buf[strlen(buf) - 1] == '\n' && buf[strlen(buf) - 2] == '\n');

  printf("-- meminfo\n");
  CHECK_OK(slurp("/proc/meminfo"));
  unsigned long total = 0, freemem = 0, avail = 0;
  int fields = sscanf(buf, "MemTotal: %lu kB\nMemFree: %lu kB\nMemAvailable: %lu kB", &total,
                      &freemem, &avail);
  printf("fields=%d\n", fields);
  EXPECT(total > 0 && freemem <= total && avail <= total);
  EXPECT(!strncmp(buf, "MemTotal:       ", 16) && strchr(buf, '\n') - buf == 27);
  EXPECT(strstr(buf, "\nSwapTotal:") && strstr(buf, "\nCached:") && strstr(buf, "\nBuffers:"));

  printf("-- stat\n");
  CHECK_OK(slurp("/proc/stat"));
  EXPECT(!strncmp(buf, "cpu  ", 5));
  int cpu_lines = 0;
  for (int i = 0; i < nprocs; i++) {
    char p[32];
    snprintf(p, sizeof p, "cpu%d ", i);
    cpu_lines += count_prefix(p);
  }
  EXPECT(cpu_lines == nprocs);
  unsigned long long cols[10];
  EXPECT(sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &cols[0], &cols[1],
                &cols[2], &cols[3], &cols[4], &cols[5], &cols[6], &cols[7], &cols[8],
                &cols[9]) == 10);
  char *bt = strstr(buf, "\nbtime ");
  unsigned long btime = bt ? strtoul(bt + 7, NULL, 10) : 0;
  EXPECT(count_prefix("intr ") == 1 && count_prefix("ctxt ") == 1);
  EXPECT(count_prefix("processes ") == 1 && count_prefix("procs_running ") == 1);
  EXPECT(count_prefix("procs_blocked ") == 1 && count_prefix("softirq ") == 1);

  printf("-- uptime\n");
  long n = slurp("/proc/uptime");
  unsigned long up, up_cs, idle, idle_cs;
  int consumed = 0;
  EXPECT(sscanf(buf, "%lu.%2lu %lu.%2lu\n%n", &up, &up_cs, &idle, &idle_cs, &consumed) == 4);
  EXPECT(consumed == n && buf[n - 4] == '.' && strchr(buf, '.')[3] == ' ');
  time_t now = time(NULL);
  EXPECT(btime <= (unsigned long)now && (unsigned long)now - btime <= up + 2 &&
         up <= (unsigned long)now - btime + 2);

  printf("-- loadavg\n");
  slurp("/proc/loadavg");
  float l1, l5, l15;
  int running, total_threads, last;
  EXPECT(sscanf(buf, "%f %f %f %d/%d %d", &l1, &l5, &l15, &running, &total_threads, &last) == 6);
  EXPECT(running >= 1 && total_threads >= running && last > 0);

  printf("-- version\n");
  struct utsname u;
  uname(&u);
  slurp("/proc/version");
  snprintf(want, sizeof want, "Linux version %s ", u.release);
  EXPECT(!strncmp(buf, want, strlen(want)));

  printf("-- filesystems\n");
  slurp("/proc/filesystems");
  EXPECT(strstr(buf, "nodev\tproc\n") && strstr(buf, "nodev\ttmpfs\n") &&
         strstr(buf, "nodev\tsysfs\n"));

  printf("-- sys\n");
  slurp("/proc/sys/kernel/osrelease");
  snprintf(want, sizeof want, "%s\n", u.release);
  EXPECT(!strcmp(buf, want));
  slurp("/proc/sys/kernel/version");
  snprintf(want, sizeof want, "%s\n", u.version);
  EXPECT(!strcmp(buf, want));
  slurp("/proc/sys/kernel/hostname");
  snprintf(want, sizeof want, "%s\n", u.nodename);
  EXPECT(!strcmp(buf, want));
  slurp("/proc/sys/kernel/domainname");
  snprintf(want, sizeof want, "%s\n", u.domainname);
  EXPECT(!strcmp(buf, want));
  sysctl("/proc/sys/kernel/ostype");
  sysctl("/proc/sys/kernel/ngroups_max");
  sysctl("/proc/sys/kernel/cap_last_cap");
  CHECK_OK(slurp("/proc/sys/kernel/pid_max"));
  EXPECT(atol(buf) >= 32768);
  CHECK_OK(slurp("/proc/sys/kernel/threads-max"));
  EXPECT(atol(buf) > 0);
  CHECK_OK(slurp("/proc/sys/kernel/tainted"));
  CHECK_OK(slurp("/proc/sys/vm/overcommit_memory"));
  EXPECT(buf[0] >= '0' && buf[0] <= '2' && buf[1] == '\n');
  CHECK_OK(slurp("/proc/sys/fs/file-max"));
  EXPECT(atol(buf) > 0);
  CHECK_OK(slurp("/proc/sys/fs/nr_open"));
  EXPECT(atol(buf) >= 1024);
  char id1[64] = {0}, id2[64] = {0};
  slurp("/proc/sys/kernel/random/boot_id");
  strncpy(id1, buf, 63);
  slurp("/proc/sys/kernel/random/boot_id");
  strncpy(id2, buf, 63);
  EXPECT(strlen(id1) == 37 && id1[8] == '-' && id1[14] == '4' && !strcmp(id1, id2));
  slurp("/proc/sys/kernel/random/uuid");
  strncpy(id1, buf, 63);
  slurp("/proc/sys/kernel/random/uuid");
  strncpy(id2, buf, 63);
  EXPECT(strlen(id1) == 37 && id1[14] == '4' && strcmp(id1, id2));

  printf("-- modes\n");
  mode_of("/proc");
  mode_of("/proc/cpuinfo");
  mode_of("/proc/self");
  mode_of("/proc/thread-self");
  mode_of("/proc/self/");
  mode_of("/proc/self/stat");
  mode_of("/proc/self/status");
  mode_of("/proc/self/comm");
  mode_of("/proc/self/environ");
  mode_of("/proc/self/auxv");
  mode_of("/proc/self/maps");
  mode_of("/proc/self/mounts");
  mode_of("/proc/self/mountinfo");
  mode_of("/proc/self/fd");
  mode_of("/proc/self/fdinfo");
  mode_of("/proc/self/task");
  mode_of("/proc/self/cwd");
  mode_of("/proc/self/root");
  mode_of("/proc/self/exe");
  mode_of("/proc/sys");
  mode_of("/proc/sys/kernel");
  mode_of("/proc/sys/kernel/hostname");
  mode_of("/proc/sys/kernel/osrelease");
  struct stat st;
  stat("/proc/sys/kernel", &st);
  printf("sysctl dir nlink=%ld\n", (long)st.st_nlink);
  stat("/proc/self/stat", &st);
  printf("stat size=%ld\n", (long)st.st_size);

  printf("-- statfs\n");
  struct statfs sf;
  CHECK(statfs("/proc", &sf));
  printf("type=%lx bsize=%ld blocks=%ld files=%ld namelen=%ld\n", (long)sf.f_type,
         (long)sf.f_bsize, (long)sf.f_blocks, (long)sf.f_files, (long)sf.f_namelen);
  CHECK(statfs("/proc/self/status", &sf));
  printf("type=%lx\n", (long)sf.f_type);

  printf("-- listings\n");
  DIR *d = opendir("/proc");
  int self = 0, thread_self = 0, mine = 0, cpuinfo = 0, sys = 0, dups = 0;
  static char names[4096][256];
  int nn = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    for (int i = 0; i < nn; i++)
      if (!strcmp(names[i], e->d_name)) dups++;
    if (nn < 4096) strcpy(names[nn++], e->d_name);
    if (!strcmp(e->d_name, "self") && e->d_type == DT_LNK) self = 1;
    if (!strcmp(e->d_name, "thread-self") && e->d_type == DT_LNK) thread_self = 1;
    if (atoi(e->d_name) == getpid() && e->d_type == DT_DIR) mine = 1;
    if (!strcmp(e->d_name, "cpuinfo") && e->d_type == DT_REG) cpuinfo = 1;
    if (!strcmp(e->d_name, "sys") && e->d_type == DT_DIR) sys = 1;
  }
  if (d) closedir(d);
  printf("self=%d thread-self=%d mine=%d cpuinfo=%d sys=%d dups=%d\n", self, thread_self, mine,
         cpuinfo, sys, dups);
  const char *want_names[] = {"task", "fd",    "fdinfo", "environ", "auxv",  "status",
                              "limits", "comm", "cmdline", "stat", "statm", "maps",
                              "cwd",  "root",  "exe",    "mounts",  "mountinfo"};
  d = opendir("/proc/self");
  int found[17] = {0};
  while (d && (e = readdir(d)))
    for (int i = 0; i < 17; i++)
      if (!strcmp(e->d_name, want_names[i])) found[i] = e->d_type;
  if (d) closedir(d);
  for (int i = 0; i < 17; i++) printf("%s:%d ", want_names[i], found[i]);
  printf("\n");

  printf("-- reads at offsets\n");
  n = slurp("/proc/version");
  char whole[512];
  memcpy(whole, buf, n);
  int fd = open("/proc/version", O_RDONLY);
  char part[16] = {0};
  CHECK(pread(fd, part, 10, 6));
  EXPECT(!memcmp(part, whole + 6, 10));
  CHECK(pread(fd, part, 10, n));
  CHECK(pread(fd, part, 10, n + 100));
  CHECK(read(fd, part, 5));
  CHECK(lseek(fd, 0, SEEK_CUR));
  CHECK(lseek(fd, 0, SEEK_END));
  CHECK(lseek(fd, -1, SEEK_SET));
  CHECK(lseek(fd, 1000, SEEK_SET));
  CHECK(read(fd, part, 5));
  close(fd);
  fd = open("/proc/self/stat", O_RDONLY);
  CHECK(lseek(fd, 0, SEEK_END));
  CHECK(lseek(fd, 10, SEEK_SET));
  CHECK(lseek(fd, 5, SEEK_CUR));
  close(fd);
  fd = open("/proc/sys/kernel/osrelease", O_RDONLY);
  CHECK(lseek(fd, 0, SEEK_END));
  CHECK(lseek(fd, 2, SEEK_END));
  close(fd);

  printf("-- writes\n");
  fd = open("/proc/self/stat", O_WRONLY);
  CHECK_OK(fd);
  CHECK(write(fd, "x", 1));
  close(fd);
  fd = open("/proc/self/status", O_RDWR);
  CHECK_OK(fd);
  CHECK(write(fd, "x", 1));
  close(fd);
  fd = open("/proc/cpuinfo", O_WRONLY);
  CHECK_OK(fd);
  CHECK(write(fd, "x", 1));
  close(fd);
  fd = open("/proc/uptime", O_WRONLY | O_TRUNC);
  CHECK_OK(fd);
  CHECK(write(fd, "x", 1));
  close(fd);
  CHECK(open("/proc/sys/kernel/osrelease", O_WRONLY));
  CHECK(open("/proc/sys/kernel/osrelease", O_RDWR));
  CHECK(open("/proc/sys/kernel/random/boot_id", O_WRONLY));
  CHECK(open("/proc", O_RDWR));
  CHECK(open("/proc/self/stat", O_RDONLY | O_DIRECTORY));

  printf("-- creating and removing\n");
  CHECK(mkdir("/proc/newdir", 0755));
  CHECK(open("/proc/newfile", O_CREAT | O_RDWR, 0644));
  CHECK(open("/proc/self/newfile", O_CREAT | O_RDWR, 0644));
  CHECK(mkdir("/proc/sys/kernel/newdir", 0755));
  CHECK(symlink("x", "/proc/self/newlink"));
  CHECK(mknod("/proc/self/newfifo", S_IFIFO | 0600, 0));
  CHECK(unlink("/proc/self/stat"));
  CHECK(unlink("/proc/cpuinfo"));
  CHECK(unlink("/proc/self"));
  CHECK(link("/proc/cpuinfo", "/proc/cpuinfo2"));
  return 0;
}
