/* System V message queues: msgget, msgsnd, msgrcv, msgctl. Message
 * types (first, exact, lowest up to a bound, MSG_EXCEPT), MSG_NOERROR,
 * IPC_NOWAIT, MSG_COPY, full queues, sleepers woken by another process
 * and by IPC_RMID (EIDRM), signals, permissions, limits, errors. Both
 * runs are in a fresh IPC namespace. */
#include <signal.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/wait.h>
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

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

struct m {
  long type;
  char text[64];
};

static int q;

static void snd(long type, const char *text) {
  struct m b = {.type = type};
  strcpy(b.text, text);
  if (msgsnd(q, &b, strlen(text), IPC_NOWAIT) != 0)
    printf("msgsnd %ld: %s\n", type, strerrorname_np(errno));
}

static void rcv(long type, int flags, size_t size) {
  struct m b;
  memset(&b, 0, sizeof b);
  long n = msgrcv(q, &b, size, type, flags | IPC_NOWAIT);
  if (n < 0)
    printf("msgrcv(%ld, %#x, %zu) = -1 %s\n", type, flags, size, strerrorname_np(errno));
  else
    printf("msgrcv(%ld, %#x, %zu) = %ld: type %ld \"%.*s\"\n", type, flags, size, n, b.type,
           (int)n, b.text);
}

static void stat_q(void) {
  struct msqid_ds ds;
  if (msgctl(q, IPC_STAT, &ds) != 0) {
    printf("IPC_STAT: %s\n", strerrorname_np(errno));
    return;
  }
  printf("qnum=%lu cbytes=%lu qbytes=%lu mode=%o lspid_is_me=%d lrpid_is_me=%d stime_set=%d rtime_set=%d\n",
         (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes,
         (unsigned long)ds.msg_qbytes, ds.msg_perm.mode, ds.msg_lspid == getpid(),
         ds.msg_lrpid == getpid(), ds.msg_stime != 0, ds.msg_rtime != 0);
}

static void on_alarm(int sig) { (void)sig; }

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  CHECK(msgget(0x77, 0600));
  q = msgget(0x77, IPC_CREAT | 0620);
  printf("q = %d\n", q);
  CHECK(msgget(0x77, IPC_CREAT | IPC_EXCL | 0600));
  CHECK(msgget(0x77, 0) == q);
  stat_q();

  /* Types. */
  snd(5, "five");
  snd(3, "three");
  snd(7, "seven");
  snd(3, "three again");
  snd(2, "two");
  stat_q();
  rcv(3, 0, 64);
  rcv(5, MSG_EXCEPT, 64);
  rcv(-6, 0, 64);
  rcv(-1, 0, 64);
  rcv(9, 0, 64);
  rcv(0, 0, 3);
  rcv(0, MSG_NOERROR, 3);
  CHECK(msgrcv(q, &(struct m){0}, 64, 0, MSG_COPY | IPC_NOWAIT));
  CHECK(msgrcv(q, &(struct m){0}, 64, 0, MSG_COPY));
  CHECK(msgrcv(q, &(struct m){0}, 64, 0, MSG_COPY | MSG_EXCEPT | IPC_NOWAIT));
  rcv(0, 0, 64);
  rcv(0, 0, 64);
  stat_q();

  /* Errors of msgsnd and msgrcv. */
  struct m b = {.type = 0};
  CHECK(msgsnd(q, &b, 4, IPC_NOWAIT));
  b.type = 1;
  CHECK(msgsnd(q, &b, 8193, IPC_NOWAIT));
  CHECK(msgsnd(q, &b, -1, IPC_NOWAIT));
  CHECK(msgsnd(q, (void *)8, 4, IPC_NOWAIT));
  CHECK(msgsnd(q + 1, &b, 4, IPC_NOWAIT));
  CHECK(msgsnd(-1, &b, 4, IPC_NOWAIT));
  CHECK(msgrcv(q, &b, -1, 0, IPC_NOWAIT));
  CHECK(msgrcv(q + 1, &b, 4, 0, IPC_NOWAIT));
  CHECK(msgsnd(q, &b, 0, IPC_NOWAIT));
  CHECK(msgrcv(q, &b, 0, 0, IPC_NOWAIT));
  CHECK(msgrcv(q, (void *)8, 4, 0, IPC_NOWAIT));

  /* A full queue: IPC_NOWAIT fails; a sleeping sender wakes when a
   * receiver makes room. */
  struct msqid_ds ds;
  CHECK(msgctl(q, IPC_STAT, &ds));
  ds.msg_qbytes = 100;
  CHECK(msgctl(q, IPC_SET, &ds));
  stat_q();
  static char big[200] = {0};
  *(long *)big = 1;
  CHECK(msgsnd(q, big, 60, 0));
  CHECK(msgsnd(q, big, 60, IPC_NOWAIT));
  pid_t pid = fork();
  if (pid == 0) {
    int r = msgsnd(q, big, 60, 0);
    printf("child: blocked msgsnd = %d\n", r);
    _exit(0);
  }
  usleep(100000);
  WAKE(msgrcv(q, big, 100, 0, 0), pid);
  stat_q();
  CHECK(msgrcv(q, big, 100, 0, 0));

  /* A sleeping receiver wakes when its type arrives. */
  pid = fork();
  if (pid == 0) {
    struct m r;
    long n = msgrcv(q, &r, 64, 42, 0);
    printf("child: received %ld bytes of type %ld \"%.*s\"\n", n, r.type, (int)n, r.text);
    _exit(0);
  }
  usleep(100000);
  snd(41, "not this");
  snd(42, "this");
  waitpid(pid, NULL, 0);
  rcv(0, 0, 64);

  /* A signal interrupts a sleeping msgrcv: EINTR, even with SA_RESTART. */
  struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
  sigaction(SIGALRM, &sa, NULL);
  ualarm(50000, 0);
  CHECK(msgrcv(q, &b, 64, 0, 0));

  /* IPC_INFO, MSG_INFO, MSG_STAT. */
  struct msginfo mi;
  CHECK(msgctl(0, IPC_INFO, (struct msqid_ds *)&mi));
  printf("msgpool=%d msgmap=%d msgmax=%d msgmnb=%d msgmni=%d msgssz=%d msgtql=%d msgseg=%d\n",
         mi.msgpool, mi.msgmap, mi.msgmax, mi.msgmnb, mi.msgmni, mi.msgssz, mi.msgtql, mi.msgseg);
  snd(1, "abc");
  CHECK(msgctl(0, MSG_INFO, (struct msqid_ds *)&mi));
  printf("msgpool=%d msgmap=%d msgtql=%d\n", mi.msgpool, mi.msgmap, mi.msgtql);
  CHECK(msgctl(q % 32768, MSG_STAT, &ds) == q);
  CHECK(msgctl(9, MSG_STAT, &ds));
  CHECK(msgctl(q, 99, &ds));
  CHECK(msgctl(-1, IPC_STAT, &ds));

  /* Another user: write-only mode 0620 for the group. */
  pid = fork();
  if (pid == 0) {
    if (setuid(65534) != 0)
      _exit(1);
    CHECK(msgrcv(q, &b, 64, 0, IPC_NOWAIT));
    b.type = 1;
    CHECK(msgsnd(q, &b, 1, IPC_NOWAIT));
    CHECK(msgctl(q, IPC_STAT, &ds));
    CHECK(msgctl(q, IPC_RMID, NULL));
    CHECK(msgget(0x77, 0400));
    CHECK(msgget(0x77, 0200) == q);
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  stat_q();

  /* IPC_RMID wakes a sleeper with EIDRM. */
  pid = fork();
  if (pid == 0) {
    long n = msgrcv(q, &b, 64, 99, 0);
    printf("child: msgrcv after IPC_RMID = %ld %s\n", n, strerrorname_np(errno));
    _exit(0);
  }
  usleep(100000);
  WAKE(msgctl(q, IPC_RMID, NULL), pid);
  CHECK(msgctl(q, IPC_STAT, &ds));
  CHECK(msgget(0x77, 0));
  return 0;
}
