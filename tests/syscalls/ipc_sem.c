/* System V semaphores: semget, semop, semtimedop, semctl. Atomic
 * operation sets, blocking and waking across processes, GETNCNT and
 * GETZCNT of sleepers, SEM_UNDO applied at exit, IPC_RMID waking
 * sleepers with EIDRM, timeouts, signals, permissions, errors. Both runs
 * are in a fresh IPC namespace. */
#include <signal.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

/* As CHECK, for a call that wakes the child `pid`, which prints too: the
 * result is printed once the child has exited, so the order is fixed. */
#define WAKE(expr, pid)                                                    \
  do {                                                                     \
    errno = 0;                                                             \
    long _r = (long)(expr);                                                \
    int _e = errno;                                                        \
    waitpid(pid, NULL, 0);                                                 \
    if (_r < 0)                                                            \
      printf("%s = %ld %s\n", #expr, _r, strerrorname_np(_e));             \
    else                                                                   \
      printf("%s = %ld\n", #expr, _r);                                     \
  } while (0)

union semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
  struct seminfo *__buf;
};

static int id;

static void show(const char *what) {
  unsigned short v[3];
  union semun u = {.array = v};
  if (semctl(id, 0, GETALL, u) != 0) {
    printf("%s: GETALL %s\n", what, strerrorname_np(errno));
    return;
  }
  printf("%s: %d %d %d\n", what, v[0], v[1], v[2]);
}

static int op(int num, int o, int flg) {
  struct sembuf b = {.sem_num = num, .sem_op = o, .sem_flg = flg};
  return semop(id, &b, 1);
}

/* Waits until semaphore `num`'s GETNCNT (or GETZCNT) is `want`. */
static void wait_count(int cmd, int num, int want) {
  for (int i = 0; i < 400; i++) {
    if (semctl(id, num, cmd) == want)
      break;
    usleep(5000);
  }
  printf("%s(%d) = %d\n", cmd == GETNCNT ? "GETNCNT" : "GETZCNT", num, semctl(id, num, cmd));
}

static void on_alarm(int sig) { (void)sig; }

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  CHECK(semget(0x55, 0, IPC_CREAT | 0600));
  CHECK(semget(0x55, 1, 0600));
  CHECK(semget(0x55, 40000, IPC_CREAT | 0600));
  CHECK(semget(0x55, -1, IPC_CREAT | 0600));
  id = semget(0x55, 3, IPC_CREAT | IPC_EXCL | 0640);
  printf("id = %d\n", id);
  CHECK(semget(0x55, 3, IPC_CREAT | IPC_EXCL | 0600));
  CHECK(semget(0x55, 4, 0));
  CHECK(semget(0x55, 2, 0) == id);
  CHECK(semget(0x55, 0, 0) == id);
  show("new");

  /* Values. */
  CHECK(semctl(id, 0, SETVAL, 5));
  CHECK(semctl(id, 0, GETVAL));
  CHECK(semctl(id, 1, SETVAL, 40000));
  CHECK(semctl(id, 1, SETVAL, -1));
  CHECK(semctl(id, 3, SETVAL, 1));
  CHECK(semctl(id, -1, GETVAL));
  unsigned short all[3] = {1, 2, 3};
  union semun u = {.array = all};
  CHECK(semctl(id, 0, SETALL, u));
  show("setall");
  CHECK(semctl(id, 0, GETPID) == getpid());
  all[1] = 40000;
  CHECK(semctl(id, 0, SETALL, u));
  CHECK(semctl(id, 0, SETALL, (unsigned short *)8));
  show("after bad setall");
  CHECK(semctl(id, 0, SETVAL, 2));

  /* Operations: all or nothing. */
  struct sembuf two[2] = {{0, -1, 0}, {1, -5, IPC_NOWAIT}};
  CHECK(semop(id, two, 2));
  show("not applied");
  struct sembuf dup[3] = {{0, -1, 0}, {0, -1, 0}, {2, 1, 0}};
  CHECK(semop(id, dup, 3));
  show("applied");
  CHECK(op(2, 32767, 0));
  CHECK(op(0, 0, IPC_NOWAIT));
  CHECK(op(0, 1, 0));
  CHECK(op(0, -2, IPC_NOWAIT));
  CHECK(op(3, 1, 0));
  CHECK(semop(id, two, 0));
  struct sembuf many[501];
  for (int i = 0; i < 501; i++)
    many[i] = (struct sembuf){0, 0, IPC_NOWAIT};
  CHECK(semop(id, many, 501));
  CHECK(semop(id + 1, two, 1));
  CHECK(semop(-1, two, 1));
  CHECK(semop(id, (struct sembuf *)8, 1));
  struct timespec ts = {0, 50 * 1000 * 1000};
  CHECK(semtimedop(id, &(struct sembuf){1, -10, 0}, 1, &ts));
  ts.tv_nsec = 2000000000;
  CHECK(semtimedop(id, &(struct sembuf){1, -10, 0}, 1, &ts));
  show("before fork");

  /* A child sleeps for a decrement; the parent sees it in GETNCNT, wakes
   * it, and it ran with its own pid. */
  pid_t pid = fork();
  if (pid == 0) {
    int r = op(1, -3, 0);
    printf("child: semop = %d\n", r);
    _exit(0);
  }
  wait_count(GETNCNT, 1, 1);
  WAKE(op(1, 1, 0), pid);
  CHECK(semctl(id, 1, GETPID) == pid);
  CHECK(semctl(id, 1, GETNCNT));
  show("after the child");

  /* Waiting for zero. */
  pid = fork();
  if (pid == 0) {
    int r = op(2, 0, 0);
    printf("child: zero wait = %d\n", r);
    _exit(0);
  }
  wait_count(GETZCNT, 2, 1);
  WAKE(semctl(id, 2, SETVAL, 0), pid);

  /* SEM_UNDO: the child's adjustments go when it exits. */
  CHECK(semctl(id, 0, SETVAL, 3));
  pid = fork();
  if (pid == 0) {
    op(0, -2, SEM_UNDO);
    op(1, 4, SEM_UNDO);
    op(1, 1, 0);
    show("child before exit");
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  show("after the child's exit");
  CHECK(semctl(id, 0, GETPID) == pid);
  /* SETVAL clears adjustments: nothing comes back. */
  pid = fork();
  if (pid == 0) {
    op(2, 5, SEM_UNDO);
    semctl(id, 2, SETVAL, 7);
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  show("undo after SETVAL");

  /* A signal interrupts a sleeping semop: EINTR, even with SA_RESTART. */
  struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
  sigaction(SIGALRM, &sa, NULL);
  ualarm(50000, 0);
  CHECK(op(1, -100, 0));

  /* IPC_STAT, IPC_SET, SEM_STAT, IPC_INFO, SEM_INFO. */
  struct semid_ds ds;
  u.buf = &ds;
  CHECK(semctl(id, 0, IPC_STAT, u));
  printf("mode=%o nsems=%lu uid=%d otime_set=%d ctime_set=%d\n", ds.sem_perm.mode,
         (unsigned long)ds.sem_nsems, ds.sem_perm.uid, ds.sem_otime != 0, ds.sem_ctime != 0);
  ds.sem_perm.mode = 0666;
  CHECK(semctl(id, 0, IPC_SET, u));
  CHECK(semctl(id, 0, IPC_STAT, u));
  printf("mode=%o\n", ds.sem_perm.mode);
  CHECK(semctl(id % 32768, 0, SEM_STAT, u) == id);
  CHECK(semctl(7, 0, SEM_STAT, u));
  struct seminfo si;
  u.__buf = &si;
  CHECK(semctl(0, 0, IPC_INFO, u));
  printf("semmap=%d semmni=%d semmns=%d semmnu=%d semmsl=%d semopm=%d semume=%d semusz=%d semvmx=%d semaem=%d\n",
         si.semmap, si.semmni, si.semmns, si.semmnu, si.semmsl, si.semopm, si.semume,
         si.semusz, si.semvmx, si.semaem);
  CHECK(semctl(0, 0, SEM_INFO, u));
  printf("semusz=%d semaem=%d\n", si.semusz, si.semaem);
  CHECK(semctl(id, 0, 99));
  CHECK(semctl(-1, 0, GETVAL));

  /* Another user. */
  int priv = semget(IPC_PRIVATE, 1, 0600);
  pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0)
      _exit(1);
    CHECK(semctl(priv, 0, GETVAL));
    CHECK(semctl(priv, 0, SETVAL, 1));
    CHECK(semctl(priv, 0, IPC_RMID));
    struct sembuf b = {0, 1, 0};
    CHECK(semop(priv, &b, 1));
    CHECK(semget(0x55, 1, 0));
    CHECK(semget(0x55, 1, 0400) == id);
    CHECK(semctl(id, 0, GETVAL));
    _exit(0);
  }
  waitpid(pid, NULL, 0);

  /* IPC_RMID wakes a sleeper with EIDRM. */
  pid = fork();
  if (pid == 0) {
    int r = op(1, -100, 0);
    printf("child: semop after IPC_RMID = %d %s\n", r, strerrorname_np(errno));
    _exit(0);
  }
  wait_count(GETNCNT, 1, 1);
  WAKE(semctl(id, 0, IPC_RMID), pid);
  CHECK(semctl(id, 0, GETVAL));
  CHECK(semctl(priv, 0, IPC_RMID));
  CHECK(semctl(0, 0, SEM_INFO, u));
  printf("semusz=%d semaem=%d\n", si.semusz, si.semaem);
  return 0;
}
