/* Calls for the compatibility report and the learned seccomp profile
 * (tests/tests/compat.rs).
 *
 *   compat_calls unsupported DIR   one call of each kind the sentry does
 *                                  not support (DIR: a scratch directory)
 *   compat_calls workload          a fixed workload: files, a pipe, a unix
 *                                  socket pair, fork, ioctls; deterministic
 *                                  output
 *   compat_calls outside           the workload, then calls a profile
 *                                  learned from it does not allow
 *
 * Each call prints "NAME: RESULT" (the errno's name on failure).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

static const char *errname(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case ENOTTY: return "ENOTTY";
    case ENODEV: return "ENODEV";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ESOCKTNOSUPPORT: return "ESOCKTNOSUPPORT";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    default: return "E?";
    }
}

static void show(const char *name, long r) {
    if (r < 0)
        printf("%s: -1 %s\n", name, errname(errno));
    else
        printf("%s: ok\n", name);
    fflush(stdout);
}

static int unsupported(const char *dir) {
    char path[4096];
    int p[2];
    if (pipe(p) != 0)
        return 1;
    /* A syscall without a handler. */
    show("lookup_dcookie", syscall(SYS_lookup_dcookie, 0, 0, 0));
    /* Arguments of syscalls the sentry has. */
    show("ioctl", ioctl(p[0], 0x1234abcd, 0));
    show("fcntl", fcntl(p[0], 9999));
    show("prctl", prctl(9999, 0, 0, 0, 0));
    show("arch_prctl", syscall(SYS_arch_prctl, 0x9999, 0));
    show("socket family", socket(AF_PACKET, SOCK_RAW, 0));
    show("socket protocol", socket(AF_UNIX, SOCK_STREAM, 99));
    show("socket type", socket(AF_UNIX, SOCK_RDM, 0));
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    int one = 1;
    show("setsockopt", setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    show("unshare", unshare(CLONE_NEWUSER));
    long c = syscall(SYS_clone, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0);
    if (c == 0)
        _exit(0);
    if (c > 0)
        waitpid(c, NULL, 0);
    show("clone", c);
    snprintf(path, sizeof path, "%s/mnt", dir);
    mkdir(path, 0755);
    show("mount type", mount("none", path, "ext4", 0, NULL));
    show("mount option", mount("none", path, "tmpfs", 0, "bogus=1"));
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    show("madvise", madvise(m, 4096, 999));
    show("futex", syscall(SYS_futex, m, 99, 0, NULL, NULL, 0));
    /* Degraded behaviours. */
    show("personality", personality(ADDR_NO_RANDOMIZE));
    snprintf(path, sizeof path, "%s/direct", dir);
    int fd = open(path, O_CREAT | O_RDWR | O_DIRECT, 0644);
    show("open O_DIRECT", fd);
    /* A second process: the report names both. */
    pid_t pid = fork();
    if (pid == 0) {
        show("child fcntl", fcntl(p[0], 9998));
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    return 0;
}

/* The same every run, natively and in the sandbox. */
static int workload(void) {
    int p[2], sv[2];
    char buf[64];
    int n = 0;
    if (pipe(p) != 0)
        return 1;
    show("pipe ioctl FIONREAD", ioctl(p[0], FIONREAD, &n));
    if (write(p[1], "hello", 5) != 5)
        return 1;
    ioctl(p[0], FIONREAD, &n);
    printf("queued: %d\n", n);
    show("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    show("socket AF_UNIX", s);
    close(s);
    printf("personality: %#x\n", personality(0xffffffff));
    pid_t pid = fork();
    if (pid == 0) {
        ssize_t r = read(p[0], buf, sizeof buf);
        if (write(sv[1], buf, r) != r)
            _exit(2);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    ssize_t r = read(sv[0], buf, sizeof buf);
    printf("child: status %d, passed %.*s\n", WEXITSTATUS(st), (int)r, buf);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && strcmp(argv[1], "unsupported") == 0)
        return unsupported(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "workload") == 0)
        return workload();
    if (argc >= 2 && strcmp(argv[1], "outside") == 0) {
        if (workload() != 0)
            return 1;
        struct sysinfo si;
        int n;
        show("sysinfo", sysinfo(&si));
        show("socket AF_INET", socket(AF_INET, SOCK_STREAM, 0));
        show("ioctl FIOASYNC", ioctl(0, FIOASYNC, &n));
        show("personality", personality(PER_LINUX32));
        return 0;
    }
    fprintf(stderr, "usage: compat_calls unsupported DIR | workload | outside\n");
    return 2;
}
