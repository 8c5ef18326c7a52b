/* cflags: -pthread */
/* System V shared memory: shmget, shmat, shmdt, shmctl. Segments shared
 * across fork, attach counts, IPC_RMID of an attached segment, read-only
 * attaches, permissions by credentials, and the errors. Both runs are in
 * a fresh IPC namespace, so identifiers are printed as they are. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

static struct shmid_ds ds;

static void stat_of(int id) {
  if (shmctl(id, IPC_STAT, &ds) != 0) {
    printf("IPC_STAT %d: %s\n", id, strerrorname_np(errno));
    return;
  }
  printf("key=%#x mode=%o segsz=%zu nattch=%lu cpid_is_me=%d lpid_is_me=%d uid=%d cuid=%d atime_set=%d dtime_set=%d\n",
         (unsigned)ds.shm_perm.__key, ds.shm_perm.mode, ds.shm_segsz,
         (unsigned long)ds.shm_nattch, ds.shm_cpid == getpid(),
         ds.shm_lpid == getpid(), ds.shm_perm.uid, ds.shm_perm.cuid,
         ds.shm_atime != 0, ds.shm_dtime != 0);
}

/* Whether the maps line of `p` names the segment as Linux does. */
static void maps_name(void *p) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  uintptr_t want = (uintptr_t)p;
  while (f && fgets(line, sizeof line, f)) {
    uintptr_t s = strtoul(line, NULL, 16);
    if (s == want) {
      char *name = strchr(line, '/');
      printf("maps: %s", name ? name : "(none)\n");
    }
  }
  if (f)
    fclose(f);
}

static void *sleeper(void *arg) {
  (void)arg;
  for (;;)
    pause();
  return NULL;
}

static sigjmp_buf jb;
static void on_segv(int sig) {
  (void)sig;
  siglongjmp(jb, 1);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  /* Errors of shmget. */
  CHECK(shmget(0x1234, 0, IPC_CREAT | 0600));
  CHECK(shmget(0x1234, 4096, 0600));
  int a = shmget(0x1234, 10000, IPC_CREAT | IPC_EXCL | 0640);
  printf("a = %d\n", a);
  CHECK(shmget(0x1234, 4096, IPC_CREAT | IPC_EXCL | 0600));
  CHECK(shmget(0x1234, 20000, 0));
  CHECK(shmget(0x1234, 100, 0));
  CHECK(shmget(0x1234, 0, 0));
  int b = shmget(IPC_PRIVATE, 3 * 4096, 0600);
  int c = shmget(IPC_PRIVATE, 1, 0600);
  printf("b = %d, c = %d\n", b, c);
  stat_of(a);
  stat_of(c);

  /* Attach, write, fork: the child sees and writes the same pages. */
  char *p = shmat(a, NULL, 0);
  EXPECT(p != (void *)-1);
  maps_name(p);
  strcpy(p, "parent");
  stat_of(a);
  pid_t pid = fork();
  if (pid == 0) {
    if (shmctl(a, IPC_STAT, &ds) == 0)
      printf("child sees nattch=%lu and \"%s\"\n", (unsigned long)ds.shm_nattch, p);
    strcpy(p + 100, "child");
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  printf("parent reads \"%s\"\n", p + 100);
  stat_of(a);

  /* A second attach of the same segment. */
  char *q = shmat(a, NULL, SHM_RDONLY);
  EXPECT(q != (void *)-1 && q != p);
  printf("second attach reads \"%s\"\n", q);
  stat_of(a);
  signal(SIGSEGV, on_segv);
  if (sigsetjmp(jb, 1) == 0) {
    q[0] = 'x';
    printf("read-only attach took a write\n");
  } else {
    printf("read-only attach: SIGSEGV on write\n");
  }
  CHECK(shmdt(q));
  CHECK(shmdt(q));
  CHECK(shmdt(p + 1));
  stat_of(a);

  /* Addresses: unaligned without SHM_RND, rounded with it, in use. */
  char *r = shmat(b, NULL, 0);
  EXPECT(r != (void *)-1);
  CHECK(shmdt(r));
  CHECK((long)shmat(b, r + 1, 0));
  char *r2 = shmat(b, r + 1, SHM_RND);
  EXPECT(r2 == r);
  CHECK((long)shmat(c, r, 0));
  CHECK((long)shmat(b, NULL, SHM_REMAP));
  char *r3 = shmat(c, r, SHM_REMAP);
  EXPECT(r3 == r);
  CHECK(shmdt(r));
  CHECK((long)shmat(9999, NULL, 0));
  CHECK((long)shmat(-1, NULL, 0));

  /* IPC_RMID while attached: SHM_DEST, key gone, still attachable by id. */
  CHECK(shmctl(a, IPC_RMID, NULL));
  stat_of(a);
  CHECK(shmget(0x1234, 0, 0));
  char *s = shmat(a, NULL, 0);
  EXPECT(s != (void *)-1);
  printf("after IPC_RMID reads \"%s\"\n", s);
  stat_of(a);
  CHECK(shmdt(s));
  stat_of(a);
  CHECK(shmdt(p));
  stat_of(a);
  CHECK(shmctl(a, IPC_RMID, NULL));

  /* IPC_SET, SHM_STAT, IPC_INFO, SHM_INFO. */
  CHECK(shmctl(b, IPC_STAT, &ds));
  ds.shm_perm.mode = 0604;
  CHECK(shmctl(b, IPC_SET, &ds));
  stat_of(b);
  struct shminfo info;
  CHECK(shmctl(0, IPC_INFO, (struct shmid_ds *)&info));
  printf("shmmax=%lu shmmin=%lu shmmni=%lu shmseg=%lu shmall=%lu\n", info.shmmax,
         info.shmmin, info.shmmni, info.shmseg, info.shmall);
  struct shm_info si;
  CHECK(shmctl(0, SHM_INFO, (struct shmid_ds *)&si));
  printf("used_ids=%d shm_tot=%lu\n", si.used_ids, si.shm_tot);
  CHECK(shmctl(b % 32768, SHM_STAT, &ds));
  CHECK(shmctl(c % 32768, SHM_STAT, &ds));
  CHECK(shmctl(5, SHM_STAT, &ds));
  CHECK(shmctl(b, 12345, &ds));
  CHECK(shmctl(-1, IPC_STAT, &ds));
  CHECK(shmctl(b, IPC_STAT, (struct shmid_ds *)8));

  /* Another user: EACCES by mode, EPERM for the owner's commands. */
  int d = shmget(IPC_PRIVATE, 4096, 0600);
  pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0)
      _exit(1);
    CHECK((long)shmat(d, NULL, 0));
    CHECK(shmctl(d, IPC_STAT, &ds));
    CHECK(shmctl(d, SHM_STAT_ANY, &ds) == d);
    CHECK(shmctl(d, IPC_RMID, NULL));
    char *ro = shmat(b, NULL, SHM_RDONLY);
    printf("other user, 0604, read-only attach: %s\n", ro == (void *)-1 ? strerrorname_np(errno) : ro);
    CHECK((long)shmat(b, NULL, 0));
    CHECK(shmget(IPC_PRIVATE, 0, 0600));
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  CHECK(shmctl(b, IPC_RMID, NULL));
  CHECK(shmctl(c, IPC_RMID, NULL));
  CHECK(shmctl(d, IPC_RMID, NULL));
  CHECK(shmctl(0, SHM_INFO, (struct shmid_ds *)&si));
  printf("used_ids=%d shm_tot=%lu\n", si.used_ids, si.shm_tot);
  /* A process whose threads are all still running when it exits lets go
   * of its attach before its parent hears of the exit. */
  int t = shmget(IPC_PRIVATE, 4096, 0600);
  pid = fork();
  if (pid == 0) {
    shmat(t, NULL, 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
      pthread_create(&th[i], NULL, sleeper, NULL);
    usleep(20000);
    exit(0);
  }
  waitpid(pid, NULL, 0);
  stat_of(t);
  CHECK(shmctl(t, IPC_RMID, NULL));

  /* Identifiers move on. */
  int e = shmget(IPC_PRIVATE, 4096, 0600);
  printf("e = %d\n", e);
  CHECK(shmctl(e, IPC_RMID, NULL));
  return 0;
}
