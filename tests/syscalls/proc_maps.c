/* /proc/self/maps and statm: the format, the lines of the executable's
 * segments, the stack, the heap, anonymous, shared and file mappings just
 * made, and how mprotect splits them. Addresses differ between runs, so
 * lines are found by the addresses the program knows. */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"

static char buf[1 << 20];

struct line {
  unsigned long start, end, offset, ino;
  unsigned maj, min;
  char perms[8];
  char name[512];
  int name_col; /* column where the name starts, or -1 */
};

static struct line lines[4096];
static int nlines;

static void load(void) {
  int fd = open("/proc/self/maps", O_RDONLY);
  long n = 0, r;
  while ((r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += r;
  close(fd);
  buf[n] = 0;
  nlines = 0;
  int bad = 0;
  for (char *p = buf; *p;) {
    char *nl = strchr(p, '\n');
    if (!nl) {
      bad++;
      break;
    }
    *nl = 0;
    struct line *l = &lines[nlines++];
    int used = 0;
    if (sscanf(p, "%lx-%lx %4s %lx %x:%x %lu %n", &l->start, &l->end, l->perms, &l->offset,
               &l->maj, &l->min, &l->ino, &used) < 7)
      bad++;
    l->name[0] = 0;
    l->name_col = -1;
    if (p[used]) {
      snprintf(l->name, sizeof l->name, "%s", p + used);
      l->name_col = used;
    } else if (used == 0 || p[used - 1] != ' ') {
      bad++; /* a line without a name still ends with a space */
    }
    p = nl + 1;
  }
  printf("maps: %s\n", bad ? "malformed" : "well-formed");
}

static struct line *covering(unsigned long a) {
  for (int i = 0; i < nlines; i++)
    if (lines[i].start <= a && a < lines[i].end) return &lines[i];
  return NULL;
}

/* Prints the line covering `a`: perms, offset, device and inode (as
 * "00:00 0" for anonymous memory, else whether they are set) and, when
 * `named`, the name. */
static void show(const char *what, unsigned long a, int named) {
  struct line *l = covering(a);
  if (!l) {
    printf("%s: no line\n", what);
    return;
  }
  char dev[32];
  if (!l->maj && !l->min && !l->ino)
    snprintf(dev, sizeof dev, "00:00 0");
  else
    snprintf(dev, sizeof dev, "%s %s", l->maj || l->min ? "dev" : "nodev", l->ino ? "ino" : "0");
  printf("%s: %s %08lx %s [%s] pages=%lu", what, l->perms, l->offset, named ? dev : "-",
         named ? l->name : "-", (l->end - l->start) / 4096);
  /* How deep the stack is used depends on the environment's size. */
  if (strcmp(l->name, "[stack]")) printf(" at=%lu", (a - l->start) / 4096);
  printf("\n");
}

int main(int argc, char **argv) {
  (void)argc;
  char exe[4096] = {0};
  CHECK_OK(readlink("/proc/self/exe", exe, sizeof exe - 1));
  EXPECT(!strcmp(exe, argv[0]));
  int local = 0;
  sbrk(64 << 10);
  char *brk_end = sbrk(0);
  char *anon = mmap(NULL, 5 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *shared = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  int fd = open("/tmp/mapfile", O_CREAT | O_RDWR, 0600);
  static char page[3 * 4096];
  CHECK(write(fd, page, sizeof page));
  char *file = mmap(NULL, 2 * 4096, PROT_READ, MAP_SHARED, fd, 4096);
  char *priv = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  struct stat st;
  fstat(fd, &st);
  EXPECT(anon != MAP_FAILED && shared != MAP_FAILED && file != MAP_FAILED && priv != MAP_FAILED);

  printf("-- format\n");
  load();
  int sorted = 1, columns = 1;
  for (int i = 0; i < nlines; i++) {
    if (lines[i].start >= lines[i].end) sorted = 0;
    if (i && lines[i - 1].end > lines[i].start) sorted = 0;
    /* seq_pad: names start at column 73 unless the prefix is longer. */
    if (lines[i].name_col >= 0 && lines[i].name_col != 73) columns = 0;
  }
  EXPECT(sorted);
  EXPECT(columns);

  printf("-- the executable\n");
  int exe_lines = 0;
  for (int i = 0; i < nlines; i++) {
    if (strcmp(lines[i].name, exe)) continue;
    exe_lines++;
    printf("%s %08lx\n", lines[i].perms, lines[i].offset);
    /* The segment after the last file page: anonymous .bss. */
    if (i + 1 < nlines && strcmp(lines[i + 1].name, exe) && lines[i + 1].start == lines[i].end)
      printf("then %s %08lx %02x:%02x %lu [%s]\n", lines[i + 1].perms, lines[i + 1].offset,
             lines[i + 1].maj, lines[i + 1].min, lines[i + 1].ino, lines[i + 1].name);
  }
  printf("%d lines name the executable\n", exe_lines);
  show("main", (unsigned long)&main, 0);

  printf("-- stack and heap\n");
  show("stack", (unsigned long)&local, 1);
  show("heap", (unsigned long)brk_end - 1, 1);

  printf("-- new mappings\n");
  show("anon", (unsigned long)anon, 1);
  struct line *l = covering((unsigned long)anon);
  EXPECT(l && l->start == (unsigned long)anon && l->end == (unsigned long)anon + 5 * 4096);
  CHECK(mprotect(anon + 4096, 2 * 4096, PROT_READ));
  load();
  show("anon", (unsigned long)anon, 1);
  show("anon+1", (unsigned long)anon + 4096, 1);
  show("anon+3", (unsigned long)anon + 3 * 4096, 1);
  show("shared", (unsigned long)shared, 1);
  show("file", (unsigned long)file, 0);
  l = covering((unsigned long)file);
  EXPECT(l && l->ino == st.st_ino && l->maj == major(st.st_dev) && l->min == minor(st.st_dev));
  EXPECT(l && l->name[0] && !strcmp(strrchr(l->name, '/') ? strrchr(l->name, '/') + 1 : l->name,
                                    "mapfile"));
  show("private file", (unsigned long)priv, 0);
  CHECK(munmap(anon + 4096, 4096));
  load();
  show("anon", (unsigned long)anon, 1);
  show("hole", (unsigned long)anon + 4096, 1);
  show("anon+2", (unsigned long)anon + 2 * 4096, 1);

  printf("-- statm\n");
  fd = open("/proc/self/statm", O_RDONLY);
  char s[256] = {0};
  CHECK_OK(read(fd, s, sizeof s - 1));
  unsigned long size, res, shr, text, lib, data, dt;
  int n = sscanf(s, "%lu %lu %lu %lu %lu %lu %lu", &size, &res, &shr, &text, &lib, &data, &dt);
  printf("fields=%d\n", n);
  EXPECT(s[strlen(s) - 1] == '\n');
  EXPECT(size > 0 && res > 0 && res <= size);
  EXPECT(text > 0 && text < size && data > 0);
  printf("lib=%lu dt=%lu\n", lib, dt);
  return 0;
}
