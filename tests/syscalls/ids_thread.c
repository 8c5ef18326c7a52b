/* Per-thread state: arch_prctl (FS and GS bases), set_tid_address,
 * set_robust_list/get_robust_list. The real FS base (glibc's thread
 * pointer) is saved and restored around the changes, with raw syscalls
 * that touch no thread-local storage in between. */
#include <asm/prctl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

#define BAD ((void *)8)
#define KADDR ((void *)0xffff800000000000UL)

static long raw2(long nr, long a, long b) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
  return r;
}

static unsigned long fs_self(void) {
  unsigned long v;
  __asm__ volatile("mov %%fs:0, %0" : "=r"(v));
  return v;
}

static char *ro;

static void fs_gs(void) {
  printf("-- arch_prctl\n");
  unsigned long fs = 0, gs = 1, v;
  CHECK(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs));
  EXPECT(fs != 0 && fs == fs_self());
  CHECK(syscall(SYS_arch_prctl, ARCH_GET_GS, &gs));
  printf("gs=%#lx\n", gs);
  CHECK(syscall(SYS_arch_prctl, ARCH_SET_FS, fs)); /* same value */
  EXPECT(fs_self() == fs);

  /* Move FS to a fake block and back without touching TLS in between. */
  static unsigned long fake[64];
  fake[0] = (unsigned long)fake;
  long r1 = raw2(SYS_arch_prctl, ARCH_SET_FS, (long)fake);
  unsigned long seen = fs_self(), got = 0;
  long r2 = raw2(SYS_arch_prctl, ARCH_GET_FS, (long)&got);
  long r3 = raw2(SYS_arch_prctl, ARCH_SET_FS, (long)fs);
  printf("set=%ld get=%ld restore=%ld\n", r1, r2, r3);
  EXPECT(seen == (unsigned long)fake);
  EXPECT(got == (unsigned long)fake);
  EXPECT(fs_self() == fs);

  /* Bases past the user address space are refused. */
  long e1 = raw2(SYS_arch_prctl, ARCH_SET_FS, 0x800000000000L);
  long e2 = raw2(SYS_arch_prctl, ARCH_SET_FS, (long)KADDR);
  long e3 = raw2(SYS_arch_prctl, ARCH_SET_FS, 0x7ffffffff000L);
  long e4 = raw2(SYS_arch_prctl, ARCH_SET_FS, -1L);
  long e5 = raw2(SYS_arch_prctl, ARCH_SET_FS, (long)fs);
  printf("past the end: %ld %ld %ld %ld restore=%ld\n", e1, e2, e3, e4, e5);
  EXPECT(fs_self() == fs);

  CHECK(syscall(SYS_arch_prctl, ARCH_SET_GS, 0x12345000L));
  CHECK(syscall(SYS_arch_prctl, ARCH_GET_GS, &v));
  printf("gs=%#lx\n", v);
  CHECK(syscall(SYS_arch_prctl, ARCH_SET_GS, 0x7ffffffff000L));
  CHECK(syscall(SYS_arch_prctl, ARCH_SET_GS, 0x7fffffffefffL));
  CHECK(syscall(SYS_arch_prctl, ARCH_GET_GS, &v));
  printf("gs=%#lx\n", v);
  CHECK(syscall(SYS_arch_prctl, ARCH_SET_GS, 0L));
  CHECK(syscall(SYS_arch_prctl, ARCH_GET_GS, &v));
  printf("gs=%#lx\n", v);
  CHECK(syscall(SYS_arch_prctl, ARCH_GET_FS, NULL));
  CHECK(syscall(SYS_arch_prctl, ARCH_GET_FS, BAD));
  CHECK(syscall(SYS_arch_prctl, ARCH_GET_FS, ro));
  CHECK(syscall(SYS_arch_prctl, ARCH_GET_GS, KADDR));
  CHECK(syscall(SYS_arch_prctl, ARCH_GET_CPUID, 0));
  CHECK(syscall(SYS_arch_prctl, 0, 0));
  CHECK(syscall(SYS_arch_prctl, 0x1005, 0));
  CHECK(syscall(SYS_arch_prctl, 0x9999, &v));
  CHECK(syscall(SYS_arch_prctl, -1, &v));
  EXPECT(fs_self() == fs);
}

static void tid_address(void) {
  printf("-- set_tid_address\n");
  static int word = 77;
  long tid = syscall(SYS_gettid);
  EXPECT(syscall(SYS_set_tid_address, &word) == tid);
  EXPECT(syscall(SYS_set_tid_address, NULL) == tid);
  EXPECT(syscall(SYS_set_tid_address, BAD) == tid);   /* not checked now */
  EXPECT(syscall(SYS_set_tid_address, KADDR) == tid);
  EXPECT(syscall(SYS_set_tid_address, &word) == tid);
  printf("word=%d\n", word);
}

struct robust_head {
  void *next;
  long offset;
  void *pending;
};

static void robust(void) {
  printf("-- robust lists\n");
  void *glibc_head = NULL, *h = NULL;
  size_t len = 0;
  CHECK(syscall(SYS_get_robust_list, 0, &glibc_head, &len));
  printf("len=%zu\n", len);
  static struct robust_head mine;
  mine.next = &mine;
  CHECK(syscall(SYS_set_robust_list, &mine, sizeof mine));
  CHECK(syscall(SYS_get_robust_list, 0, &h, &len));
  EXPECT(h == &mine);
  CHECK(syscall(SYS_get_robust_list, syscall(SYS_gettid), &h, &len));
  EXPECT(h == &mine);
  CHECK(syscall(SYS_set_robust_list, &mine, 0));
  CHECK(syscall(SYS_set_robust_list, &mine, 23));
  CHECK(syscall(SYS_set_robust_list, &mine, 25));
  CHECK(syscall(SYS_set_robust_list, &mine, 48));
  CHECK(syscall(SYS_set_robust_list, &mine, -1L));
  CHECK(syscall(SYS_set_robust_list, NULL, 0)); /* length first */
  /* The head is not checked until the thread exits. */
  CHECK(syscall(SYS_set_robust_list, BAD, sizeof mine));
  CHECK(syscall(SYS_get_robust_list, 0, &h, &len));
  EXPECT(h == BAD);
  CHECK(syscall(SYS_set_robust_list, KADDR, sizeof mine));
  CHECK(syscall(SYS_set_robust_list, NULL, sizeof mine));
  CHECK(syscall(SYS_get_robust_list, 0, &h, &len));
  EXPECT(h == NULL);
  CHECK(syscall(SYS_get_robust_list, 0, NULL, &len));
  CHECK(syscall(SYS_get_robust_list, 0, &h, NULL));
  CHECK(syscall(SYS_get_robust_list, 0, BAD, BAD));
  CHECK(syscall(SYS_get_robust_list, 0, &h, ro));
  /* The length is written before the head. */
  len = 0;
  CHECK(syscall(SYS_get_robust_list, 0, BAD, &len));
  printf("len=%zu\n", len);
  h = (void *)1;
  CHECK(syscall(SYS_get_robust_list, 0, &h, BAD));
  EXPECT(h == (void *)1);
  CHECK(syscall(SYS_get_robust_list, 0x3fffffff, &h, &len));
  CHECK(syscall(SYS_get_robust_list, -1, &h, &len));
  CHECK(syscall(SYS_get_robust_list, -1, BAD, BAD));
  /* Put glibc's list back. */
  CHECK(syscall(SYS_set_robust_list, glibc_head, sizeof mine));
  CHECK(syscall(SYS_get_robust_list, 0, &h, &len));
  EXPECT(h == glibc_head);
}

int main(void) {
  ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ro == MAP_FAILED)
    return 1;
  fs_gs();
  tid_address();
  robust();
  return 0;
}
