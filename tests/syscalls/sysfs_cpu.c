/* /sys: the CPU lists libc's get_nprocs and sysconf read, the cpuN
 * directories, /sys/fs/cgroup; modes, sizes, statfs, and what writing,
 * seeking and creating do. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/vfs.h>
#include <unistd.h>
#include "check.h"

/* Counts the CPUs of a list such as "0-3,5\n"; -1 if it is malformed. */
static int count_list(const char *s) {
  int n = 0;
  while (*s && *s != '\n') {
    char *end;
    long a = strtol(s, &end, 10), b = a;
    if (end == s) return -1;
    s = end;
    if (*s == '-') {
      b = strtol(s + 1, &end, 10);
      if (end == s + 1 || b < a) return -1;
      s = end;
    }
    n += b - a + 1;
    if (*s == ',') s++;
  }
  return *s == '\n' && s[1] == 0 ? n : -1;
}

static int read_list(const char *path) {
  char buf[256] = {0};
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  long n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n > 0 ? count_list(buf) : -1;
}

static void mode_of(const char *path) {
  struct stat st;
  if (stat(path, &st) < 0) {
    printf("%s: %s\n", path, strerrorname_np(errno));
    return;
  }
  printf("%s: mode=%o size=%ld owner=%s\n", path, st.st_mode,
         S_ISDIR(st.st_mode) ? 0L : (long)st.st_size, st.st_uid == 0 ? "root" : "other");
}

int main(void) {
  int online = read_list("/sys/devices/system/cpu/online");
  printf("-- the CPU lists\n");
  EXPECT(online > 0);
  EXPECT(online == get_nprocs());
  EXPECT(online == sysconf(_SC_NPROCESSORS_ONLN));
  int possible = read_list("/sys/devices/system/cpu/possible");
  int present = read_list("/sys/devices/system/cpu/present");
  EXPECT(possible >= online && present >= online);

  printf("-- cpuN directories\n");
  DIR *d = opendir("/sys/devices/system/cpu");
  EXPECT(d != NULL);
  int cpus = 0, all_dirs = 1;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (strncmp(e->d_name, "cpu", 3) || !isdigit((unsigned char)e->d_name[3])) continue;
    cpus++;
    if (e->d_type != DT_DIR) all_dirs = 0;
  }
  if (d) closedir(d);
  EXPECT(cpus == get_nprocs_conf());
  EXPECT(cpus == sysconf(_SC_NPROCESSORS_CONF));
  EXPECT(cpus >= online);
  EXPECT(all_dirs);

  printf("-- modes\n");
  mode_of("/sys");
  mode_of("/sys/devices");
  mode_of("/sys/devices/system");
  mode_of("/sys/devices/system/cpu");
  mode_of("/sys/devices/system/cpu/cpu0");
  mode_of("/sys/devices/system/cpu/online");
  mode_of("/sys/devices/system/cpu/possible");
  mode_of("/sys/devices/system/cpu/present");
  struct stat st;
  CHECK(stat("/sys/fs/cgroup", &st));
  EXPECT(S_ISDIR(st.st_mode));

  printf("-- statfs\n");
  struct statfs sf;
  CHECK(statfs("/sys", &sf));
  printf("type=%lx bsize=%ld blocks=%ld namelen=%ld\n", (long)sf.f_type, (long)sf.f_bsize,
         (long)sf.f_blocks, (long)sf.f_namelen);
  CHECK(statfs("/sys/devices/system/cpu/online", &sf));
  printf("type=%lx\n", (long)sf.f_type);

  printf("-- reading, seeking, writing\n");
  int fd = open("/sys/devices/system/cpu/online", O_RDONLY);
  char a[64] = {0}, b[64] = {0};
  CHECK_OK(read(fd, a, sizeof a));
  CHECK_OK(pread(fd, b, sizeof b, 1));
  EXPECT(!strcmp(a + 1, b));
  CHECK(lseek(fd, 0, SEEK_END));
  CHECK(lseek(fd, -4096, SEEK_END));
  CHECK(lseek(fd, -1, SEEK_SET));
  close(fd);
  CHECK(open("/sys/devices/system/cpu/online", O_WRONLY));
  CHECK(open("/sys/devices/system/cpu/online", O_RDWR));
  CHECK(open("/sys/devices/system/cpu/online", O_RDONLY | O_DIRECTORY));
  CHECK(open("/sys/devices", O_RDWR));

  printf("-- creating and removing\n");
  CHECK(mkdir("/sys/devices/newdir", 0755));
  CHECK(open("/sys/devices/newfile", O_CREAT | O_RDWR, 0644));
  CHECK(symlink("x", "/sys/devices/newlink"));
  CHECK(unlink("/sys/devices/system/cpu/online"));
  CHECK(open("/sys/devices/nothing", O_RDONLY));
  return 0;
}
