/* Large mappings: 64 MiB written densely and summed, a 1 GiB mapping
 * touched sparsely, and a large mapping released and mapped again. */
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>
#include "check.h"

#define MiB (1024L * 1024)

int main(void) {
  printf("-- 64 MiB, densely\n");
  unsigned char *p = mmap(NULL, 64 * MiB, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  EXPECT(p != MAP_FAILED);
  memset(p, 0x5a, 64 * MiB);
  for (long i = 0; i < 64 * MiB; i += 4096) p[i] = (unsigned char)(i >> 12);
  uint64_t sum = 0;
  for (long i = 0; i < 64 * MiB; i++) sum += p[i];
  printf("sum=%llu\n", (unsigned long long)sum);
  CHECK(munmap(p, 64 * MiB));

  printf("-- 1 GiB, sparsely\n");
  p = mmap(NULL, 1024 * MiB, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  EXPECT(p != MAP_FAILED);
  for (long i = 0; i < 1024 * MiB; i += 3 * MiB + 4096) p[i] = 1;
  p[1024 * MiB - 1] = 2;
  sum = 0;
  for (long i = 0; i < 1024 * MiB; i += 4096 * 37) sum += p[i];
  for (long i = 0; i < 1024 * MiB; i += 3 * MiB + 4096) sum += p[i];
  sum += p[1024 * MiB - 1];
  printf("sum=%llu\n", (unsigned long long)sum);
  /* Half of it, released in the middle. */
  CHECK(munmap(p + 256 * MiB, 512 * MiB));
  EXPECT(p[0] == 1 && p[1024 * MiB - 1] == 2);
  CHECK(munmap(p, 1024 * MiB));

  printf("-- released memory comes back as zeroes\n");
  for (int round = 0; round < 4; round++) {
    p = mmap(NULL, 16 * MiB, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    long nonzero = 0;
    for (long i = 0; i < 16 * MiB; i += 512) nonzero += p[i] != 0;
    printf("round %d: nonzero=%ld\n", round, nonzero);
    memset(p, 0xff, 16 * MiB);
    CHECK(munmap(p, 16 * MiB));
  }

  printf("-- a large shared mapping\n");
  p = mmap(NULL, 32 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
           -1, 0);
  for (long i = 0; i < 32 * MiB; i += 4096) p[i] = (unsigned char)i | 1;
  sum = 0;
  for (long i = 0; i < 32 * MiB; i += 4096) sum += p[i];
  printf("sum=%llu\n", (unsigned long long)sum);
  CHECK(munmap(p, 32 * MiB));

  printf("-- many small mappings\n");
  void *maps[1000];
  for (int i = 0; i < 1000; i++) {
    maps[i] = mmap(NULL, 4096 * (1 + i % 3), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ((char *)maps[i])[0] = (char)i;
  }
  long ok = 0;
  for (int i = 0; i < 1000; i++) ok += ((char *)maps[i])[0] == (char)i;
  printf("ok=%ld\n", ok);
  for (int i = 0; i < 1000; i++) munmap(maps[i], 4096 * (1 + i % 3));
  return 0;
}
