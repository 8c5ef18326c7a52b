/* Programs for the foundation tests: a sleeper, a busy loop of syscalls,
 * and two busy threads that report where they ran. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Busy with syscalls for `secs`; counts, per CPU, where it ran. */
struct busy {
  double secs;
  long on[256];
};

static void *busy(void *arg) {
  struct busy *b = arg;
  double end = now() + b->secs;
  while (now() < end) {
    for (int i = 0; i < 50; i++) syscall(SYS_getppid);
    int c = sched_getcpu();
    if (c >= 0 && c < 256) b->on[c]++;
  }
  return NULL;
}

static int dominant(struct busy *b) {
  int best = 0;
  for (int i = 1; i < 256; i++)
    if (b->on[i] > b->on[best]) best = i;
  return best;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (!strcmp(mode, "sleep")) {
    printf("sleeping\n");
    fflush(stdout);
    sleep(60);
    return 0;
  }
  if (!strcmp(mode, "busy")) {
    printf("busy\n");
    fflush(stdout);
    struct busy b = {.secs = atof(argc > 2 ? argv[2] : "1")};
    busy(&b);
    printf("done\n");
    return 0;
  }
  if (!strcmp(mode, "two-threads")) {
    static struct busy b[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
      b[i].secs = 0.5;
      pthread_create(&t[i], NULL, busy, &b[i]);
    }
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    printf("cpus %d %d\n", dominant(&b[0]), dominant(&b[1]));
    return 0;
  }
  fprintf(stderr, "unknown mode\n");
  return 2;
}
