/* fstat, newfstatat with AT_EMPTY_PATH, and lseek. Standard input is a
 * regular file of 39 bytes, standard output a pipe. */
#define _FILE_OFFSET_BITS 64
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

#define BAD ((void *)8)

static const char *kind(mode_t m) {
  if (S_ISREG(m)) return "regular";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISCHR(m)) return "chr";
  if (S_ISDIR(m)) return "dir";
  if (S_ISSOCK(m)) return "sock";
  return "other";
}

static void show(const char *what, const struct stat *st) {
  printf("%s: %s size=%lld nlink>0=%d blksize>0=%d\n", what, kind(st->st_mode),
         S_ISREG(st->st_mode) ? (long long)st->st_size : -1LL, st->st_nlink > 0,
         st->st_blksize > 0);
}

int main(void) {
  /* Natively the harness may leak descriptors past 2; start clean. */
  for (int fd = 3; fd < 1024; fd++)
    close(fd);
  struct stat st, st2;
  char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *edge = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ro == MAP_FAILED || edge == MAP_FAILED || mprotect(edge + 4096, 4096, PROT_NONE))
    return 1;
  edge += 4096;

  printf("-- fstat\n");
  CHECK(fstat(0, &st));
  show("0", &st);
  CHECK(fstat(1, &st));
  show("1", &st);
  CHECK(syscall(SYS_fstat, 0, NULL));
  CHECK(syscall(SYS_fstat, 0, BAD));
  CHECK(syscall(SYS_fstat, 0, ro));
  CHECK(syscall(SYS_fstat, 0, edge - 16)); /* part of the struct faults */
  CHECK(syscall(SYS_fstat, -1, &st));
  CHECK(syscall(SYS_fstat, -1, NULL));
  CHECK(syscall(SYS_fstat, 99, &st));

  printf("-- newfstatat\n");
  memset(&st2, 0, sizeof st2);
  CHECK(fstat(0, &st));
  CHECK(syscall(SYS_newfstatat, 0, "", &st2, AT_EMPTY_PATH));
  EXPECT(st.st_ino == st2.st_ino && st.st_dev == st2.st_dev && st.st_size == st2.st_size);
  CHECK(syscall(SYS_newfstatat, 1, "", &st2, AT_EMPTY_PATH));
  show("1", &st2);
  CHECK(syscall(SYS_newfstatat, 0, "", &st2, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
  CHECK(syscall(SYS_newfstatat, 0, "", &st2, AT_EMPTY_PATH | AT_NO_AUTOMOUNT));
  CHECK(syscall(SYS_newfstatat, 0, "", &st2, AT_EMPTY_PATH | AT_STATX_DONT_SYNC));
  CHECK(syscall(SYS_newfstatat, 0, "", &st2, AT_EMPTY_PATH | AT_STATX_FORCE_SYNC));
  CHECK(syscall(SYS_newfstatat, 0, "", &st2, 0));
  CHECK(syscall(SYS_newfstatat, 0, "", &st2, AT_SYMLINK_NOFOLLOW));
  CHECK(syscall(SYS_newfstatat, 0, "", &st2, AT_EMPTY_PATH | AT_REMOVEDIR));
  CHECK(syscall(SYS_newfstatat, 0, "", &st2, AT_EMPTY_PATH | 0x10000000));
  CHECK(syscall(SYS_newfstatat, 0, "", &st2, -1));
  CHECK(syscall(SYS_newfstatat, -1, "", &st2, AT_EMPTY_PATH));
  CHECK(syscall(SYS_newfstatat, 42, "", &st2, AT_EMPTY_PATH));
  CHECK(syscall(SYS_newfstatat, 0, "", NULL, AT_EMPTY_PATH));
  CHECK(syscall(SYS_newfstatat, 0, "", ro, AT_EMPTY_PATH));
  CHECK(syscall(SYS_newfstatat, 0, BAD, &st2, AT_EMPTY_PATH));
  CHECK(syscall(SYS_newfstatat, 0, BAD, &st2, 0));
  CHECK(syscall(SYS_newfstatat, -1, BAD, &st2, AT_EMPTY_PATH));
  CHECK(syscall(SYS_newfstatat, 0, "", &st2, 0));
  CHECK(syscall(SYS_newfstatat, -1, "", &st2, 0));
  /* An empty string that ends right before unmapped memory. */
  edge[-1] = 0;
  CHECK(syscall(SYS_newfstatat, 0, edge - 1, &st2, AT_EMPTY_PATH));

  printf("-- lseek\n");
  CHECK(lseek(0, 0, SEEK_CUR));
  CHECK(lseek(0, 10, SEEK_SET));
  CHECK(lseek(0, 5, SEEK_CUR));
  CHECK(lseek(0, -3, SEEK_CUR));
  CHECK(lseek(0, 0, SEEK_END));
  CHECK(lseek(0, -39, SEEK_END));
  CHECK(lseek(0, -40, SEEK_END));
  CHECK(lseek(0, 100, SEEK_END)); /* past the end is fine */
  CHECK(lseek(0, 0, SEEK_CUR));
  char c;
  CHECK(read(0, &c, 1));
  CHECK(lseek(0, -1, SEEK_SET));
  CHECK(lseek(0, 0, SEEK_CUR));
  CHECK(lseek(0, LLONG_MAX, SEEK_SET));
  CHECK(lseek(0, 1, SEEK_CUR));
  CHECK(lseek(0, LLONG_MIN, SEEK_SET));
  CHECK(lseek(0, 4, SEEK_SET));
  CHECK(lseek(0, 0, SEEK_DATA));
  CHECK(lseek(0, 39, SEEK_DATA));
  CHECK(lseek(0, 0, SEEK_HOLE));
  CHECK(lseek(0, 0, 5));
  CHECK(lseek(0, 0, -1));
  CHECK(syscall(SYS_lseek, 0, 0L, 0x100000000L | SEEK_END)); /* whence is 32 bits */
  CHECK(lseek(0, 0, SEEK_CUR));
  CHECK(lseek(1, 0, SEEK_CUR));
  CHECK(lseek(1, 0, SEEK_SET));
  CHECK(lseek(1, 0, 99));  /* EINVAL beats ESPIPE */
  CHECK(lseek(-1, 0, SEEK_SET));
  CHECK(lseek(-1, 0, 99));
  CHECK(lseek(12, 0, SEEK_SET));
  /* A dup shares the offset. */
  int d = dup(0);
  CHECK(lseek(d, 7, SEEK_SET));
  CHECK(lseek(0, 0, SEEK_CUR));
  CHECK(read(0, &c, 1));
  printf("c=%c\n", c);
  CHECK(lseek(d, 0, SEEK_CUR));
  return 0;
}
