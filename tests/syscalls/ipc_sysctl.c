/* The IPC namespace's limits in /proc/sys/kernel and /proc/sys/fs/mqueue:
 * what they show, writes by root (bounds, bad numbers), and their effect
 * on shmget, semget, semop, msgsnd, new queues and mq_open. Both runs
 * are in a fresh IPC namespace, whose limits these are; /proc/sysvipc
 * lists the objects. */
#include <fcntl.h>
#include <linux/capability.h>
#include <mqueue.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

static const char *files[] = {
    "/proc/sys/kernel/shmmax",         "/proc/sys/kernel/shmall",
    "/proc/sys/kernel/shmmni",         "/proc/sys/kernel/sem",
    "/proc/sys/kernel/msgmax",         "/proc/sys/kernel/msgmnb",
    "/proc/sys/kernel/msgmni",         "/proc/sys/fs/mqueue/msg_default",
    "/proc/sys/fs/mqueue/msg_max",     "/proc/sys/fs/mqueue/msgsize_default",
    "/proc/sys/fs/mqueue/msgsize_max", "/proc/sys/fs/mqueue/queues_max",
};

static void show(const char *path) {
  char buf[256];
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    printf("%s: %s\n", path, strerrorname_np(errno));
    return;
  }
  long n = read(fd, buf, sizeof buf - 1);
  close(fd);
  buf[n < 0 ? 0 : n] = 0;
  printf("%s: %s", path, buf);
}

static void put(const char *path, const char *v) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) {
    printf("open %s: %s\n", path, strerrorname_np(errno));
    return;
  }
  long n = write(fd, v, strlen(v));
  printf("write %s \"%s\" = %ld %s\n", path, v, n, n < 0 ? strerrorname_np(errno) : "");
  close(fd);
}

/* The header of a /proc/sysvipc listing and how many objects it lists. */
static void listing(const char *path) {
  char buf[8192];
  int fd = open(path, O_RDONLY);
  long n = read(fd, buf, sizeof buf - 1);
  close(fd);
  buf[n < 0 ? 0 : n] = 0;
  int lines = 0;
  for (char *p = buf; *p; p++)
    lines += *p == '\n';
  char *nl = strchr(buf, '\n');
  if (nl)
    *nl = 0;
  printf("%s: %d objects; header: %s\n", path, lines - 1, buf);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  /* Without CAP_SYS_RESOURCE, whatever root may have where this runs:
   * the mqueue limits then hold for root too. */
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  syscall(SYS_capget, &h, d);
  d[0].effective &= ~(1u << CAP_SYS_RESOURCE);
  CHECK(syscall(SYS_capset, &h, d));
  for (unsigned i = 0; i < sizeof files / sizeof files[0]; i++)
    show(files[i]);
  listing("/proc/sysvipc/shm");

  put("/proc/sys/kernel/shmmax", "8192\n");
  show("/proc/sys/kernel/shmmax");
  CHECK(shmget(IPC_PRIVATE, 8193, 0600));
  int s = shmget(IPC_PRIVATE, 8192, 0600);
  EXPECT(s >= 0);
  put("/proc/sys/kernel/shmall", "3");
  CHECK(shmget(IPC_PRIVATE, 4096, 0600));
  CHECK(shmget(IPC_PRIVATE, 4097, 0600));
  put("/proc/sys/kernel/shmmni", "1");
  CHECK(shmget(IPC_PRIVATE, 1, 0600));
  put("/proc/sys/kernel/shmmni", "40000");
  put("/proc/sys/kernel/shmmni", "-1");
  put("/proc/sys/kernel/shmmni", "abc");
  show("/proc/sys/kernel/shmmni");

  put("/proc/sys/kernel/sem", "10 100 5 3");
  show("/proc/sys/kernel/sem");
  CHECK(semget(IPC_PRIVATE, 11, 0600));
  int sem = semget(IPC_PRIVATE, 10, 0600);
  EXPECT(sem >= 0);
  struct sembuf six[6] = {{0}};
  CHECK(semop(sem, six, 6));
  CHECK(semop(sem, six, 5));
  put("/proc/sys/kernel/sem", "10 100 5 40000");
  put("/proc/sys/kernel/sem", "10 100 5 3 9");

  put("/proc/sys/kernel/msgmax", "16");
  put("/proc/sys/kernel/msgmnb", "40");
  int q = msgget(IPC_PRIVATE, 0600);
  struct {
    long t;
    char b[32];
  } m = {1, ""};
  CHECK(msgsnd(q, &m, 17, IPC_NOWAIT));
  CHECK(msgsnd(q, &m, 16, IPC_NOWAIT));
  CHECK(msgsnd(q, &m, 16, IPC_NOWAIT));
  CHECK(msgsnd(q, &m, 16, IPC_NOWAIT));
  struct msqid_ds ds;
  CHECK(msgctl(q, IPC_STAT, &ds));
  printf("qbytes=%lu qnum=%lu\n", (unsigned long)ds.msg_qbytes, (unsigned long)ds.msg_qnum);
  listing("/proc/sysvipc/shm");
  listing("/proc/sysvipc/sem");
  listing("/proc/sysvipc/msg");

  put("/proc/sys/fs/mqueue/msg_default", "4");
  put("/proc/sys/fs/mqueue/msgsize_default", "200");
  put("/proc/sys/fs/mqueue/msgsize_default", "100");
  put("/proc/sys/fs/mqueue/msg_max", "0");
  put("/proc/sys/fs/mqueue/msg_max", "3");
  mqd_t mq = mq_open("/limits", O_RDWR | O_CREAT, 0600, NULL);
  struct mq_attr a;
  mq_getattr(mq, &a);
  printf("default queue: maxmsg=%ld msgsize=%ld\n", a.mq_maxmsg, a.mq_msgsize);
  put("/proc/sys/fs/mqueue/queues_max", "1");
  CHECK(mq_open("/more", O_RDWR | O_CREAT, 0600, NULL));
  a.mq_maxmsg = 100;
  CHECK(mq_open("/bigger", O_RDWR | O_CREAT, 0600, &a));
  pid_t pid = fork();
  if (pid == 0) {
    if (setuid(65534) != 0)
      _exit(1);
    CHECK(mq_open("/user", O_RDWR | O_CREAT, 0600, NULL));
    put("/proc/sys/kernel/msgmax", "100");
    _exit(0);
  }
  int st;
  waitpid(pid, &st, 0);
  for (unsigned i = 0; i < sizeof files / sizeof files[0]; i++)
    show(files[i]);
  return 0;
}
