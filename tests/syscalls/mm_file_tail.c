/* The page holding a file's last byte is mapped whole: past the end of the
 * file it reads as zeroes and, privately, takes writes (a program's .bss
 * begins there). The kernel's own reads and writes of that tail work as the
 * program's do; only pages wholly past the end fail (EFAULT to a syscall).
 * Both for a host file (/etc/passwd) and a tmpfs one. */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"

#define PG 4096L

static void tail(const char *what, char *m, long size, int pipefd[2]) {
  char buf[32];
  long t = size % PG ? size : size - 1;
  printf("%s: tail reads %d %d\n", what, m[t], m[(t | (PG - 1))]);
  memcpy(m + t, "tail data", 10);
  CHECK(write(pipefd[1], m + t, 10));
  CHECK(read(pipefd[0], buf, 10));
  printf("%s: %s\n", what, buf);
  /* The kernel writing into the tail: read() from a pipe. */
  CHECK(write(pipefd[1], "from pipe", 10));
  CHECK(read(pipefd[0], m + (t | (PG - 1)) - 9, 10));
  printf("%s: %s\n", what, m + (t | (PG - 1)) - 9);
  /* A string there, for a path argument. */
  strcpy(m + t + 16, "/nonexistent");
  CHECK(open(m + t + 16, O_RDONLY));
}

int main(void) {
  int p[2];
  CHECK(pipe(p));
  int fd = open("/etc/passwd", O_RDONLY);
  struct stat st;
  CHECK(fstat(fd, &st));
  long size = st.st_size;
  long pages = (size + PG - 1) / PG;
  char *m = mmap(NULL, (pages + 1) * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  EXPECT(m != MAP_FAILED);
  if (size % PG)
    tail("host private", m, size, p);
  else
    printf("/etc/passwd is a whole number of pages: nothing to check\n");
  /* The page past the end: EFAULT to the kernel. */
  CHECK(write(p[1], m + pages * PG, 1));

  int t = open("/tmp/mm_file_tail", O_CREAT | O_RDWR | O_TRUNC, 0644);
  CHECK(ftruncate(t, 5000));
  char *sh = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, t, 0);
  EXPECT(sh != MAP_FAILED);
  tail("tmpfs shared", sh, 5000, p);
  CHECK(write(p[1], sh + 2 * PG, 1));
  char *pr = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, t, 0);
  EXPECT(pr != MAP_FAILED);
  tail("tmpfs private", pr, 5000, p);
  CHECK(write(p[1], pr + 2 * PG, 1));
  /* What the shared mapping wrote past the end is not in the file. */
  CHECK(fstat(t, &st));
  printf("size %ld\n", (long)st.st_size);
  CHECK(unlink("/tmp/mm_file_tail"));
  return 0;
}
