/* cflags: -static-pie */
/* The same checks for a static-PIE executable (loaded at a base). */
#include <elf.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <unistd.h>
#include "check.h"

extern char **environ;

int main(int argc, char **argv) {
  printf("AT_PAGESZ=%lu\n", getauxval(AT_PAGESZ));
  printf("AT_CLKTCK=%lu\n", getauxval(AT_CLKTCK));
  printf("AT_PHENT=%lu\n", getauxval(AT_PHENT));
  printf("AT_PHNUM=%lu\n", getauxval(AT_PHNUM));
  printf("AT_FLAGS=%lu\n", getauxval(AT_FLAGS));
  printf("AT_BASE=%lu\n", getauxval(AT_BASE));
  printf("AT_SECURE=%lu\n", getauxval(AT_SECURE));
  printf("AT_UID=%lu AT_EUID=%lu AT_GID=%lu AT_EGID=%lu\n", getauxval(AT_UID),
         getauxval(AT_EUID), getauxval(AT_GID), getauxval(AT_EGID));
  printf("AT_HWCAP=%lx\n", getauxval(AT_HWCAP));
  printf("AT_HWCAP2=%lx\n", getauxval(AT_HWCAP2));
  printf("AT_PLATFORM=%s\n", (char *)getauxval(AT_PLATFORM));
  printf("AT_EXECFN==argv[0]: %s\n",
         strcmp((char *)getauxval(AT_EXECFN), argv[0]) == 0 ? "yes" : "no");
  EXPECT(getauxval(AT_RANDOM) != 0);
  /* AT_ENTRY is where _start is. */
  extern void _start(void);
  EXPECT(getauxval(AT_ENTRY) == (unsigned long)&_start);
  /* AT_PHDR points at this program's own ELF program headers. */
  Elf64_Phdr *ph = (Elf64_Phdr *)getauxval(AT_PHDR);
  int loads = 0;
  for (unsigned long i = 0; i < getauxval(AT_PHNUM); i++)
    if (ph[i].p_type == PT_LOAD) loads++;
  printf("PT_LOAD segments=%d\n", loads);
  /* The stack: 16-byte alignment at entry is not observable here, but the
   * vectors are contiguous: argv, NULL, envp, NULL, auxv. */
  EXPECT(argv[argc] == NULL);
  EXPECT(environ == argv + argc + 1);
  char **e = environ;
  while (*e) e++;
  Elf64_auxv_t *auxv = (Elf64_auxv_t *)(e + 1);
  EXPECT(auxv[0].a_type != AT_NULL);
  /* A write to a fresh global and the heap works. */
  static int bss_var;
  bss_var = 42;
  char *p = malloc(100000);
  memset(p, 1, 100000);
  printf("bss=%d heap=%d\n", bss_var, p[99999]);
  return 0;
}
