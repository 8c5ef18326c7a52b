/* rt_sigaction: the old action round trip, which flag bits the kernel
 * keeps, SIGKILL/SIGSTOP, bad signal numbers, bad sigsetsize, bad
 * pointers and the order of the checks. Handlers are only recorded (no
 * signal is sent). Uses the kernel's struct sigaction directly. */
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.h"

#define BAD ((void *)8)

struct ksa {
  unsigned long handler;
  unsigned long flags;
  unsigned long restorer;
  unsigned long mask;
};

#define SA_UNSUPPORTED_ 0x400
#define SA_EXPOSE_TAGBITS_ 0x800
#define SA_RESTORER_ 0x04000000

static char *ro, *edge;

static long sa(int sig, const void *act, void *old, long size) {
  return syscall(SYS_rt_sigaction, sig, act, old, size);
}

static void show(const char *what, const struct ksa *k) {
  printf("%s: handler=%#lx flags=%#lx restorer=%#lx mask=%#lx\n", what, k->handler, k->flags,
         k->restorer, k->mask);
}

static void handler(int sig) { (void)sig; }

int main(void) {
  struct ksa a, o;
  ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  edge = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ro == MAP_FAILED || edge == MAP_FAILED || mprotect(edge + 4096, 4096, PROT_NONE))
    return 1;
  edge += 4096;

  printf("-- defaults\n");
  for (int s = 1; s <= 64; s++) {
    memset(&o, 0x5a, sizeof o);
    if (sa(s, NULL, &o, 8) != 0) {
      printf("sig %d: %s\n", s, strerrorname_np(errno));
      continue;
    }
    /* glibc installs nothing in a static program; exec keeps only
     * SIG_IGN (the parent's choice, so not printed), without flags. */
    if (o.handler > 1 || o.flags != 0 || o.mask != 0)
      printf("sig %d: handler=%#lx flags=%#lx mask=%#lx\n", s, o.handler, o.flags, o.mask);
  }

  printf("-- round trip\n");
  a = (struct ksa){1 /* SIG_IGN */, SA_RESTART, 0, 1UL << (SIGINT - 1)};
  CHECK(sa(SIGUSR1, &a, NULL, 8));
  CHECK(sa(SIGUSR1, NULL, &o, 8));
  show("usr1", &o);
  a = (struct ksa){0x1234, SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESETHAND | SA_NOCLDSTOP |
                               SA_NOCLDWAIT | SA_RESTORER_,
                   0x5678, ~0UL};
  CHECK(sa(SIGUSR1, &a, &o, 8));
  show("old", &o);
  CHECK(sa(SIGUSR1, NULL, &o, 8));
  show("new", &o); /* SIGKILL and SIGSTOP leave the mask */
  /* Unknown flag bits are dropped. */
  a = (struct ksa){0, ~0UL, 0, 0};
  CHECK(sa(SIGUSR2, &a, &o, 8));
  CHECK(sa(SIGUSR2, NULL, &o, 8));
  show("all flags", &o);
  a = (struct ksa){0, SA_UNSUPPORTED_ | SA_EXPOSE_TAGBITS_ | SA_RESTART | 0x100000000UL, 0, 0};
  CHECK(sa(SIGUSR2, &a, NULL, 8));
  CHECK(sa(SIGUSR2, NULL, &o, 8));
  show("unsupported", &o);
  /* act and oact may be the same buffer: the old one is read out first. */
  a = (struct ksa){1, 0, 0, 0};
  CHECK(sa(SIGUSR2, &a, &a, 8));
  show("same buffer", &a);
  CHECK(sa(SIGUSR2, NULL, &o, 8));
  show("now", &o);
  /* Real-time signals. */
  a = (struct ksa){0x4000, SA_SIGINFO, 0, 0};
  CHECK(sa(SIGRTMIN, &a, NULL, 8));
  CHECK(sa(64, &a, NULL, 8));
  CHECK(sa(64, NULL, &o, 8));
  show("64", &o);
  CHECK(sa(32, NULL, &o, 8));
  CHECK(sa(33, NULL, &o, 8));

  printf("-- SIGKILL and SIGSTOP\n");
  a = (struct ksa){0, 0, 0, 0};
  CHECK(sa(SIGKILL, &a, NULL, 8));
  CHECK(sa(SIGSTOP, &a, NULL, 8));
  a.handler = 1;
  CHECK(sa(SIGKILL, &a, NULL, 8));
  CHECK(sa(SIGSTOP, &a, &o, 8));
  CHECK(sa(SIGKILL, NULL, &o, 8)); /* reading is fine */
  show("kill", &o);
  CHECK(sa(SIGSTOP, NULL, NULL, 8));
  CHECK(sa(SIGKILL, BAD, NULL, 8));  /* act is read first */
  CHECK(sa(SIGKILL, NULL, BAD, 8));

  printf("-- bad numbers and sizes\n");
  a = (struct ksa){1, 0, 0, 0};
  CHECK(sa(0, &a, NULL, 8));
  CHECK(sa(0, NULL, NULL, 8));
  CHECK(sa(65, NULL, &o, 8));
  CHECK(sa(-1, NULL, &o, 8));
  CHECK(sa(1000, &a, NULL, 8));
  CHECK(sa(0, BAD, NULL, 8));    /* EFAULT before the number */
  CHECK(sa(65, NULL, BAD, 8));
  CHECK(sa(SIGUSR1, &a, NULL, 4));
  CHECK(sa(SIGUSR1, &a, NULL, 16));
  CHECK(sa(SIGUSR1, &a, NULL, 0));
  CHECK(sa(SIGUSR1, NULL, NULL, 128));
  CHECK(sa(0, BAD, BAD, 4)); /* size first */
  CHECK(sa(SIGUSR1, NULL, NULL, 8));

  printf("-- bad pointers\n");
  a = (struct ksa){1, 0, 0, 0};
  CHECK(sa(SIGUSR1, BAD, NULL, 8));
  CHECK(sa(SIGUSR1, NULL, BAD, 8));
  CHECK(sa(SIGUSR1, NULL, ro, 8));
  CHECK(sa(SIGUSR1, ro, NULL, 8)); /* all zeros: SIG_DFL */
  CHECK(sa(SIGUSR1, NULL, &o, 8));
  show("from ro", &o);
  /* A bad oact still installs the new action. */
  a = (struct ksa){1, SA_RESTART, 0, 0};
  CHECK(sa(SIGUSR1, &a, BAD, 8));
  CHECK(sa(SIGUSR1, NULL, &o, 8));
  show("after bad oact", &o);
  /* A struct that runs into unmapped memory. */
  memcpy(edge - sizeof a, &a, sizeof a);
  CHECK(sa(SIGUSR1, edge - sizeof a, NULL, 8));
  CHECK(sa(SIGUSR1, edge - 16, NULL, 8));
  CHECK(sa(SIGUSR1, NULL, edge - 16, 8));

  printf("-- glibc\n");
  struct sigaction s, os;
  memset(&s, 0, sizeof s);
  s.sa_handler = handler;
  sigemptyset(&s.sa_mask);
  sigaddset(&s.sa_mask, SIGTERM);
  CHECK(sigaction(SIGHUP, &s, NULL));
  CHECK(sigaction(SIGHUP, NULL, &os));
  EXPECT(os.sa_handler == handler);
  EXPECT(sigismember(&os.sa_mask, SIGTERM) == 1);
  EXPECT((os.sa_flags & SA_RESTORER_) != 0);
  CHECK(signal(SIGHUP, SIG_IGN) == handler);
  CHECK(signal(SIGHUP, SIG_DFL) == SIG_IGN);
  CHECK(sigaction(SIGKILL, &s, NULL));
  CHECK(sigaction(0, NULL, &os));
  return 0;
}
