/* Makes one of each System V IPC object, with fixed keys, and leaves
 * them for `ipcs` to show: a segment (written to, attached while the
 * program runs), a set of three semaphores (one operated on), a queue
 * with two messages. With "rmid" it removes them again. Also checks
 * that fanotify is refused (argument "fanotify"). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "fanotify") == 0) {
    long r = syscall(SYS_fanotify_init, 0, 0);
    printf("fanotify_init = %ld %s\n", r, r < 0 ? strerrorname_np(errno) : "");
    r = syscall(SYS_fanotify_mark, 0, 0, 0, -100, "/");
    printf("fanotify_mark = %ld %s\n", r, r < 0 ? strerrorname_np(errno) : "");
    return 0;
  }
  int shm = shmget(0x5eed0001, 3 * 4096 + 100, IPC_CREAT | 0640);
  int sem = semget(0x5eed0002, 3, IPC_CREAT | 0600);
  int msg = msgget(0x5eed0003, IPC_CREAT | 0666);
  if (shm < 0 || sem < 0 || msg < 0) {
    perror("get");
    return 1;
  }
  if (argc > 1 && strcmp(argv[1], "rmid") == 0) {
    shmctl(shm, IPC_RMID, NULL);
    semctl(sem, 0, IPC_RMID);
    msgctl(msg, IPC_RMID, NULL);
    return 0;
  }
  char *p = shmat(shm, NULL, 0);
  memset(p, 1, 2 * 4096);
  struct sembuf op = {1, 2, 0};
  semop(sem, &op, 1);
  struct {
    long type;
    char text[32];
  } m = {1, "hello"};
  msgsnd(msg, &m, 5, 0);
  m.type = 2;
  msgsnd(msg, &m, 20, 0);
  shmdt(p);
  printf("made shm %d, sem %d, msg %d\n", shm, sem, msg);
  return 0;
}
