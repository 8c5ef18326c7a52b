/* /proc/self/mounts and /proc/self/mountinfo: their format, and that the
 * lines of /, /tmp, /proc and /sys agree with what stat and statx say of
 * those directories. The mounts themselves differ between the machine and
 * the sandbox, so only these are looked at. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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

struct info {
  int id, parent;
  unsigned maj, min;
  char root[256], point[256], opts[256], type[64], source[256], super[256];
};

static struct info infos[1024];
static int ninfos;

static void parse_mountinfo(void) {
  ninfos = 0;
  int bad = 0;
  for (char *p = buf; *p;) {
    char *nl = strchr(p, '\n');
    if (!nl) {
      bad++;
      break;
    }
    *nl = 0;
    struct info *m = &infos[ninfos];
    int used = 0;
    char *sep = strstr(p, " - ");
    if (sscanf(p, "%d %d %u:%u %255s %255s %255s%n", &m->id, &m->parent, &m->maj, &m->min,
               m->root, m->point, m->opts, &used) < 7 ||
        !sep || sscanf(sep + 3, "%63s %255s %255s", m->type, m->source, m->super) < 3)
      bad++;
    else if (ninfos < 1023)
      ninfos++;
    p = nl + 1;
  }
  printf("mountinfo: %s\n", bad ? "malformed" : "well-formed");
}

/* The last (topmost) mount on `point`. */
static struct info *at(const char *point) {
  struct info *found = NULL;
  for (int i = 0; i < ninfos; i++)
    if (!strcmp(infos[i].point, point)) found = &infos[i];
  return found;
}

static struct info *by_id(int id) {
  for (int i = 0; i < ninfos; i++)
    if (infos[i].id == id) return &infos[i];
  return NULL;
}

static void check_mount(const char *point) {
  struct info *m = at(point);
  if (!m) {
    printf("%s: not listed\n", point);
    return;
  }
  struct stat st;
  struct statx sx;
  stat(point, &st);
  statx(AT_FDCWD, point, 0, STATX_MNT_ID, &sx);
  char first[64] = {0};
  strncpy(first, m->opts, strcspn(m->opts, ","));
  /* The root file system is the machine's own. */
  printf("%s: type=%s root=%s first option=%s\n", point, strcmp(point, "/") ? m->type : "-",
         m->root, first);
  EXPECT(m->id == (int)sx.stx_mnt_id);
  EXPECT(m->maj == major(st.st_dev) && m->min == minor(st.st_dev));
  EXPECT(!strcmp(point, "/") || (by_id(m->parent) && !strcmp(by_id(m->parent)->point, "/")));
}

int main(void) {
  printf("-- mountinfo\n");
  CHECK_OK(slurp("/proc/self/mountinfo"));
  parse_mountinfo();
  check_mount("/");
  check_mount("/tmp");
  check_mount("/proc");
  check_mount("/sys");
  struct info *p = at("/proc");
  printf("proc source=%s\n", p ? p->source : "-");
  p = at("/sys");
  printf("sys source=%s\n", p ? p->source : "-");
  char pidpath[64];
  snprintf(pidpath, sizeof pidpath, "/proc/%d/mountinfo", getpid());
  long n = slurp(pidpath);
  EXPECT(n > 0);

  printf("-- mounts\n");
  CHECK_OK(slurp("/proc/self/mounts"));
  int bad = 0, tmp = 0, proc = 0;
  for (char *l = buf; *l;) {
    char *nl = strchr(l, '\n');
    if (!nl) {
      bad++;
      break;
    }
    *nl = 0;
    char src[256], point[256], type[64], opts[256];
    int d1 = -1, d2 = -1;
    if (sscanf(l, "%255s %255s %63s %255s %d %d", src, point, type, opts, &d1, &d2) != 6 || d1 ||
        d2)
      bad++;
    if (!strcmp(point, "/tmp"))
      tmp = !strcmp(type, "tmpfs") && (!strncmp(opts, "rw,", 3) || !strcmp(opts, "rw"));
    if (!strcmp(point, "/proc")) proc = !strcmp(type, "proc") && !strcmp(src, "proc");
    l = nl + 1;
  }
  printf("mounts: %s tmp=%d proc=%d\n", bad ? "malformed" : "well-formed", tmp, proc);
  struct stat a, b;
  CHECK(stat("/proc/mounts", &a));
  CHECK(stat("/proc/self/mounts", &b));
  EXPECT(a.st_ino == b.st_ino);
  return 0;
}
