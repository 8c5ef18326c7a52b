/* System V semaphores across processes: parent and child hand a turn
 * back and forth through a set of two semaphores (each waits on its own,
 * then posts the other's). Prints nanoseconds per round trip (four
 * semops, two wakeups). Usage: sem_pingpong N */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int id;

static void op(int num, int v) {
  struct sembuf b = {.sem_num = num, .sem_op = v, .sem_flg = 0};
  if (semop(id, &b, 1) != 0) _exit(1);
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 10000;
  id = semget(IPC_PRIVATE, 2, 0600);
  if (id < 0) return 1;
  pid_t c = fork();
  if (c < 0) return 1;
  if (c == 0) {
    for (long i = 0; i < n; i++) {
      op(0, -1);
      op(1, 1);
    }
    _exit(0);
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++) {
    op(0, 1);
    op(1, -1);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int st;
  waitpid(c, &st, 0);
  semctl(id, 0, IPC_RMID);
  double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
  printf("%.0f\n", ns / n);
  return 0;
}
