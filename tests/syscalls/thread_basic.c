/* cflags: -pthread */
/* Threads: 16 threads under a mutex, a condition-variable queue and a
 * barrier, with deterministic sums; pthread_join's values and errors;
 * thread ids (distinct, not the pid) and one pid; thread-local storage;
 * /proc/self/task; thread names; exit() from a thread ends the process
 * with that code, a fatal signal in a thread kills all, and the process
 * lives on after the main thread's pthread_exit; signals sent to one
 * thread (pthread_kill, tgkill) run the handler there, and a signal sent
 * to the process goes to the thread that does not block it; new threads
 * inherit the signal mask; fork from a thread leaves one thread. */
#include <dirent.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

#define N 16

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static pid_t xfork(void) {
  fflush(stdout);
  pid_t p = fork();
  if (p < 0) {
    perror("fork");
    exit(99);
  }
  return p;
}

static int count_tasks(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

/* ---- mutex, barrier, TLS, ids ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static pthread_barrier_t bar;
static __thread int tls = 0;
static __thread char tls_buf[64] = "initial";
static pid_t tids[N];
static int serial_count, tls_ok, tasks_seen;

static void *worker(void *arg) {
  int i = (int)(long)arg;
  tls = i + 1;
  snprintf(tls_buf, sizeof tls_buf, "thread %d", i);
  tids[i] = gettid_();
  for (int k = 0; k < 10000; k++) {
    pthread_mutex_lock(&mu);
    counter++;
    pthread_mutex_unlock(&mu);
  }
  for (int round = 0; round < 3; round++) {
    int r = pthread_barrier_wait(&bar);
    if (r == PTHREAD_BARRIER_SERIAL_THREAD) {
      pthread_mutex_lock(&mu);
      serial_count++;
      if (round == 0) tasks_seen = count_tasks();
      pthread_mutex_unlock(&mu);
    }
  }
  char want[64];
  snprintf(want, sizeof want, "thread %d", i);
  pthread_mutex_lock(&mu);
  if (tls == i + 1 && strcmp(tls_buf, want) == 0) tls_ok++;
  pthread_mutex_unlock(&mu);
  return (void *)(long)(i * i);
}

static pid_t main_pid;

static void *pid_checker(void *arg) {
  (void)arg;
  return (void *)(long)(getpid() == main_pid && gettid_() != main_pid);
}

static void basics(void) {
  printf("-- mutex, barrier, TLS, join values\n");
  main_pid = getpid();
  printf("tasks before: %d\n", count_tasks());
  pthread_barrier_init(&bar, NULL, N);
  pthread_t t[N];
  int failed = 0;
  for (long i = 0; i < N; i++) failed += pthread_create(&t[i], NULL, worker, (void *)i) != 0;
  long sum = 0;
  for (int i = 0; i < N; i++) {
    void *ret;
    failed += pthread_join(t[i], &ret) != 0;
    sum += (long)ret;
  }
  printf("failed creates and joins: %d\n", failed);
  printf("counter=%ld join sum=%ld serial=%d tls_ok=%d tasks during=%d\n", counter, sum,
         serial_count, tls_ok, tasks_seen);
  printf("main tls=%d buf=%s\n", tls, tls_buf);
  int distinct = 1;
  for (int i = 0; i < N; i++) {
    if (tids[i] == main_pid || tids[i] <= 0) distinct = 0;
    for (int j = 0; j < i; j++)
      if (tids[i] == tids[j]) distinct = 0;
  }
  printf("tids distinct and not the pid: %d\n", distinct);
  EXPECT(gettid_() == getpid());
  pthread_barrier_destroy(&bar);
  pthread_t pc;
  void *ok;
  pthread_create(&pc, NULL, pid_checker, NULL);
  pthread_join(pc, &ok);
  printf("thread sees our pid, its own tid: %ld\n", (long)ok);
  printf("tasks after: %d\n", count_tasks());
  /* Join errors. */
  CHECK(pthread_join(pthread_self(), NULL) == EDEADLK);
}

/* ---- condition variables: a bounded queue ---- */

static pthread_mutex_t qm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;
static int queue[8], qhead, qlen, done_producing;
static long consumed_sum, consumed_n;

static void *producer(void *arg) {
  int base = (int)(long)arg * 1000;
  for (int k = 1; k <= 500; k++) {
    pthread_mutex_lock(&qm);
    while (qlen == 8) pthread_cond_wait(&not_full, &qm);
    queue[(qhead + qlen) % 8] = base + k;
    qlen++;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&qm);
  }
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  long s = 0, n = 0;
  for (;;) {
    pthread_mutex_lock(&qm);
    while (qlen == 0 && !done_producing) pthread_cond_wait(&not_empty, &qm);
    if (qlen == 0) {
      pthread_mutex_unlock(&qm);
      break;
    }
    s += queue[qhead];
    n++;
    qhead = (qhead + 1) % 8;
    qlen--;
    pthread_cond_signal(&not_full);
    pthread_mutex_unlock(&qm);
  }
  pthread_mutex_lock(&qm);
  consumed_sum += s;
  consumed_n += n;
  pthread_mutex_unlock(&qm);
  return NULL;
}

static void condvars(void) {
  printf("-- condition variables\n");
  pthread_t p[8], c[8];
  for (long i = 0; i < 8; i++) pthread_create(&c[i], NULL, consumer, NULL);
  for (long i = 0; i < 8; i++) pthread_create(&p[i], NULL, producer, (void *)i);
  for (int i = 0; i < 8; i++) pthread_join(p[i], NULL);
  pthread_mutex_lock(&qm);
  done_producing = 1;
  pthread_cond_broadcast(&not_empty);
  pthread_mutex_unlock(&qm);
  for (int i = 0; i < 8; i++) pthread_join(c[i], NULL);
  printf("consumed n=%ld sum=%ld\n", consumed_n, consumed_sum);
  /* A timed wait that times out. */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += 20 * 1000000;
  if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
  pthread_mutex_lock(&qm);
  CHECK(pthread_cond_timedwait(&not_empty, &qm, &ts) == ETIMEDOUT);
  pthread_mutex_unlock(&qm);
}

/* ---- names ---- */

static void *named(void *arg) {
  sem_t *s = arg;
  sem_wait(s);
  return NULL;
}

static void names(void) {
  printf("-- thread names\n");
  sem_t s;
  sem_init(&s, 0, 0);
  pthread_t t;
  pthread_create(&t, NULL, named, &s);
  char buf[32] = {0};
  CHECK(pthread_setname_np(t, "worker-one"));
  CHECK(pthread_getname_np(t, buf, sizeof buf));
  printf("name=%s\n", buf);
  CHECK(pthread_setname_np(t, "this-name-is-far-too-long") == ERANGE);
  CHECK(pthread_getname_np(pthread_self(), buf, sizeof buf));
  printf("main name=%s\n", buf);
  sem_post(&s);
  pthread_join(t, NULL);
}

/* ---- process exit from threads ---- */

static void *exiter(void *arg) {
  exit((int)(long)arg);
}

static void *named(void *arg);

static void *faulter(void *arg) {
  (void)arg;
  raise(SIGTERM); /* the default action kills the whole process */
  return NULL;
}

static int pipefd[2];

static void *survivor(void *arg) {
  (void)arg;
  char b;
  read(pipefd[0], &b, 1);
  struct timespec ts = {0, 20 * 1000000};
  nanosleep(&ts, NULL); /* most likely after the main thread is gone */
  printf("survivor: still running\n");
  fflush(stdout);
  return NULL; /* the last thread: the process exits 0 */
}

static void *lone_exit(void *arg) {
  (void)arg;
  syscall(SYS_exit, 0); /* ends this thread only */
  return NULL;
}

static void exits(void) {
  int st;
  printf("-- exit from threads\n");
  pid_t c = xfork();
  if (c == 0) {
    pthread_t t;
    pthread_create(&t, NULL, exiter, (void *)37L);
    for (;;) pause();
  }
  EXPECT(waitpid(c, &st, 0) == c);
  printf("exit(37) in a thread: exited=%d code=%d\n", WIFEXITED(st), WEXITSTATUS(st));

  c = xfork();
  if (c == 0) {
    signal(SIGTERM, SIG_DFL);
    static sem_t never;
    sem_init(&never, 0, 0);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, i == 1 ? faulter : named, &never);
    for (;;) pause();
  }
  EXPECT(waitpid(c, &st, 0) == c);
  printf("SIGTERM in a thread: signaled=%d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));

  c = xfork();
  if (c == 0) {
    pipe(pipefd);
    pthread_t t;
    pthread_create(&t, NULL, survivor, NULL);
    /* The main thread leaves; the process lives while a thread does. */
    write(pipefd[1], "x", 1);
    pthread_exit(NULL);
  }
  EXPECT(waitpid(c, &st, 0) == c);
  printf("pthread_exit in main: exited=%d code=%d\n", WIFEXITED(st), WEXITSTATUS(st));

  c = xfork();
  if (c == 0) {
    pthread_t t;
    pthread_create(&t, NULL, lone_exit, NULL);
    while (count_tasks() != 1) sched_yield();
    _exit(38);
  }
  EXPECT(waitpid(c, &st, 0) == c);
  printf("SYS_exit in a thread, then main exits: code=%d\n", WEXITSTATUS(st));
}

/* ---- signals to threads ---- */

static __thread int my_index = -1;
static volatile int got[8];
static volatile pid_t got_tid[8];
static sem_t handled, ready;
static pid_t sig_tids[4];

static void on_usr(int s) {
  (void)s;
  if (my_index >= 0) {
    got[my_index]++;
    got_tid[my_index] = gettid_();
  } else {
    got[7]++;
  }
  sem_post(&handled);
}

static volatile int stop_threads;

static void *sig_target(void *arg) {
  my_index = (int)(long)arg;
  sig_tids[my_index] = gettid_();
  if (my_index != 2) {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &m, NULL);
  }
  sem_post(&ready);
  while (!stop_threads) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  return (void *)(long)sigismember(&cur, SIGHUP);
}

static void thread_signals(void) {
  printf("-- signals to threads\n");
  sem_init(&handled, 0, 0);
  sem_init(&ready, 0, 0);
  struct sigaction sa = {0};
  sa.sa_handler = on_usr;
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);
  /* SIGHUP blocked before creating: inherited by each thread. */
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &m, NULL);
  pthread_t t[4];
  for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, sig_target, (void *)i);
  for (int i = 0; i < 4; i++) sem_wait(&ready);
  /* One at a time, to each thread. */
  for (int i = 0; i < 4; i++) {
    CHECK(pthread_kill(t[i], SIGUSR1));
    sem_wait(&handled);
  }
  CHECK(syscall(SYS_tgkill, getpid(), sig_tids[3], SIGUSR1));
  sem_wait(&handled);
  printf("per thread: %d %d %d %d (main %d)\n", got[0], got[1], got[2], got[3], got[7]);
  int right = 1;
  for (int i = 0; i < 4; i++)
    if (got_tid[i] != sig_tids[i]) right = 0;
  printf("handler ran on the target thread: %d\n", right);
  /* To the process: only thread 2 (and main) do not block SIGUSR2; block
   * it in main so that thread 2 must take it. */
  sigemptyset(&m);
  sigaddset(&m, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &m, NULL);
  CHECK(kill(getpid(), SIGUSR2));
  sem_wait(&handled);
  printf("process-directed SIGUSR2 taken by thread 2: %d\n", got[2] == 2);
  pthread_sigmask(SIG_UNBLOCK, &m, NULL);
  /* Errors: bad signal, and tgkill with a tid of another process group. */
  CHECK(pthread_kill(t[0], 999) == EINVAL);
  CHECK(pthread_kill(t[0], 0));
  CHECK(syscall(SYS_tgkill, getpid(), sig_tids[0], 0));
  CHECK(syscall(SYS_tgkill, getpid() + 0, 0, SIGUSR1));
  CHECK(syscall(SYS_tgkill, 0, sig_tids[0], SIGUSR1));
  CHECK(syscall(SYS_tgkill, getpid(), sig_tids[0], 65));
  stop_threads = 1;
  long inherited = 0;
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    inherited += (long)r;
  }
  printf("threads that inherited the blocked SIGHUP: %ld\n", inherited);
  /* A dead thread's tid: ESRCH. */
  CHECK(syscall(SYS_tgkill, getpid(), sig_tids[0], 0));
  sigemptyset(&m);
  sigaddset(&m, SIGHUP);
  pthread_sigmask(SIG_UNBLOCK, &m, NULL);
  signal(SIGUSR1, SIG_DFL);
  signal(SIGUSR2, SIG_DFL);
}

/* ---- fork from a thread ---- */

static void *forker(void *arg) {
  (void)arg;
  pid_t c = xfork();
  if (c == 0) _exit(count_tasks() == 1 && gettid_() == getpid() ? 40 : 41);
  int st;
  waitpid(c, &st, 0);
  return (void *)(long)WEXITSTATUS(st);
}

static void fork_thread(void) {
  printf("-- fork from a thread\n");
  pthread_t t, idle;
  sem_t s;
  sem_init(&s, 0, 0);
  pthread_create(&idle, NULL, named, &s);
  pthread_create(&t, NULL, forker, NULL);
  void *r;
  pthread_join(t, &r);
  printf("child of a thread: one thread, tid=pid: code=%ld\n", (long)r);
  sem_post(&s);
  pthread_join(idle, NULL);
}

int main(void) {
  setvbuf(stdout, NULL, _IOFBF, 4096);
  basics();
  condvars();
  names();
  exits();
  thread_signals();
  fork_thread();
  printf("-- done\n");
  return 0;
}
