/* The OCI suite's checker: run inside a container, it prints what it finds
 * (one fact a line, `KEY VALUE...`) for the test to compare with what the
 * bundle's config.json asked for.
 *
 * Usage: checker CMD [ARGS...] [";" CMD [ARGS...]]...
 *
 *   process [ARGS...]   all of the next eight, argv being the whole
 *                       command line
 *   args [ARGS...]      `argv N ARG` for the command's own arguments
 *   cwd                 the working directory
 *   ids                 pid, real and effective uid and gid, groups
 *   umask               the umask, in octal
 *   env                 `env NAME=VALUE` for each variable
 *   caps                the Cap* and NoNewPrivs lines of
 *                       /proc/self/status, and prctl's no_new_privs
 *   oom                 /proc/self/oom_score_adj
 *   rlimits             `rlimit NAME SOFT HARD` for each resource
 *   hostname            the host and domain names
 *   mounts              each mount of /proc/self/mountinfo: point, type,
 *                       mount options, super-block options
 *   stat PATH...        mode, owner, group of each path
 *   statfs PATH...      file-system magic and size in bytes
 *   read PATH...        the content of each file (escaped), or the error
 *   write PATH...       creates/truncates each file and writes "x"
 *   masked PATH...      a directory's number of entries, a file's size
 *   readonly PATH...    whether each file (opened for writing) or each
 *                       directory (a file created in it) is writable
 *   mknod PATH          makes a /dev/null-like device and opens it
 *   copy FROM TO MODE   copies a file
 *   spawn PATH ARGS...  runs a program, prints how it ended
 *   sleep [SECONDS]     waits (forever without an argument), no handlers
 *   exit N              exits with status N
 *   signal-wait N       catches every catchable signal, prints `ready`,
 *                       then `signal NUM` for each of N signals, exits 0
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <termios.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *err_name(int e) {
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

/* Prints `s` with backslash, newline and non-printing bytes escaped. */
static void put_escaped(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\')
            fputs("\\\\", stdout);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

static void print_status_lines(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        printf("status %s\n", err_name(errno));
        return;
    }
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char key[64], val[256];
        if (sscanf(line, "%63[^:]:%*[ \t]%255s", key, val) != 2)
            continue;
        if (strncmp(key, "Cap", 3) == 0 || strcmp(key, "NoNewPrivs") == 0)
            printf("status %s %s\n", key, val);
    }
    fclose(f);
}

static const struct {
    const char *name;
    int resource;
} rlimits[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},       {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},       {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},     {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

static void print_limit(rlim_t v) {
    if (v == RLIM_INFINITY)
        printf(" unlimited");
    else
        printf(" %llu", (unsigned long long)v);
}

static void cmd_args(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        printf("argv %d ", i);
        put_escaped(argv[i], strlen(argv[i]));
        putchar('\n');
    }
}

static void cmd_cwd(void) {
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd))
        printf("cwd %s\n", cwd);
    else
        printf("cwd %s\n", err_name(errno));
}

static void cmd_ids(void) {
    printf("pid %d\n", getpid());
    printf("uid %u %u\n", getuid(), geteuid());
    printf("gid %u %u\n", getgid(), getegid());
    gid_t groups[256];
    int n = getgroups(256, groups);
    printf("groups");
    /* Sorted, for comparison. */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (groups[j] < groups[i]) {
                gid_t t = groups[i];
                groups[i] = groups[j];
                groups[j] = t;
            }
    for (int i = 0; i < n; i++)
        printf(" %u", groups[i]);
    putchar('\n');
}

static void cmd_umask(void) {
    mode_t m = umask(0);
    umask(m);
    printf("umask %04o\n", m);
}

static void cmd_env(void) {
    for (char **e = environ; *e; e++) {
        printf("env ");
        put_escaped(*e, strlen(*e));
        putchar('\n');
    }
}

static void cmd_caps(void) {
    print_status_lines();
    printf("nnp %d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
}

static void cmd_oom(void) {
    char buf[64] = {0};
    int fd = open("/proc/self/oom_score_adj", O_RDONLY);
    if (fd < 0) {
        printf("oom %s\n", err_name(errno));
        return;
    }
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r < 0) {
        printf("oom %s\n", err_name(errno));
        return;
    }
    buf[strcspn(buf, "\n")] = 0;
    printf("oom %s\n", buf);
}

static void cmd_rlimits(void) {
    for (size_t i = 0; i < sizeof rlimits / sizeof rlimits[0]; i++) {
        struct rlimit rl;
        if (getrlimit(rlimits[i].resource, &rl) != 0) {
            printf("rlimit %s %s\n", rlimits[i].name, err_name(errno));
            continue;
        }
        printf("rlimit %s", rlimits[i].name);
        print_limit(rl.rlim_cur);
        print_limit(rl.rlim_max);
        putchar('\n');
    }
}

/* Everything about this process. */
static void cmd_process(int argc, char **argv) {
    cmd_args(argc, argv);
    cmd_cwd();
    cmd_ids();
    cmd_umask();
    cmd_env();
    cmd_caps();
    cmd_oom();
    cmd_rlimits();
}

static void cmd_hostname(void) {
    struct utsname u;
    uname(&u);
    printf("hostname %s\n", u.nodename);
    printf("domainname %s\n", u.domainname);
}

static void cmd_mounts(void) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f) {
        printf("mountinfo %s\n", err_name(errno));
        return;
    }
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        /* id parent major:minor root point opts [optional...] - type source super */
        char *fields[64];
        int n = 0;
        for (char *tok = strtok(line, " \n"); tok && n < 64; tok = strtok(NULL, " \n"))
            fields[n++] = tok;
        int dash = -1;
        for (int i = 6; i < n; i++)
            if (strcmp(fields[i], "-") == 0) {
                dash = i;
                break;
            }
        if (dash < 0 || dash + 1 >= n)
            continue;
        printf("mount %s %s %s %s\n", fields[4], fields[dash + 1], fields[5],
               dash + 3 < n ? fields[dash + 3] : "-");
    }
    fclose(f);
}

static void cmd_stat(char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        printf("stat %s %s\n", path, err_name(errno));
        return;
    }
    const char *type = S_ISDIR(st.st_mode)    ? "dir"
                       : S_ISREG(st.st_mode)  ? "file"
                       : S_ISLNK(st.st_mode)  ? "link"
                       : S_ISCHR(st.st_mode)  ? "chr"
                       : S_ISBLK(st.st_mode)  ? "blk"
                       : S_ISFIFO(st.st_mode) ? "fifo"
                                              : "other";
    printf("stat %s %s %04o %u %u\n", path, type, st.st_mode & 07777, st.st_uid, st.st_gid);
}

static void cmd_statfs(char *path) {
    struct statfs s;
    if (statfs(path, &s) != 0) {
        printf("statfs %s %s\n", path, err_name(errno));
        return;
    }
    printf("statfs %s 0x%lx %llu\n", path, (unsigned long)s.f_type,
           (unsigned long long)s.f_blocks * (unsigned long long)s.f_bsize);
}

static void cmd_read(char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("read %s %s\n", path, err_name(errno));
        return;
    }
    char buf[4096];
    ssize_t total = 0, r;
    printf("read %s ok ", path);
    while ((r = read(fd, buf, sizeof buf)) > 0 && total < 65536) {
        put_escaped(buf, r);
        total += r;
    }
    putchar('\n');
    close(fd);
}

static void cmd_write(char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        printf("write %s %s\n", path, err_name(errno));
        return;
    }
    if (write(fd, "x", 1) != 1) {
        printf("write %s %s\n", path, err_name(errno));
        close(fd);
        return;
    }
    close(fd);
    printf("write %s ok\n", path);
}

static void cmd_masked(char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        printf("masked %s %s\n", path, err_name(errno));
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) {
            printf("masked %s %s\n", path, err_name(errno));
            return;
        }
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                n++;
        closedir(d);
        printf("masked %s dir %d\n", path, n);
        return;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("masked %s %s\n", path, err_name(errno));
        return;
    }
    char buf[4096];
    ssize_t r;
    long total = 0;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        total += r;
    close(fd);
    printf("masked %s file %ld\n", path, total);
}

static void cmd_readonly(char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        printf("readonly %s %s\n", path, err_name(errno));
        return;
    }
    char probe[4200];
    int fd;
    if (S_ISDIR(st.st_mode)) {
        snprintf(probe, sizeof probe, "%s/.oci-probe", path);
        fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0644);
    } else {
        fd = open(path, O_WRONLY);
    }
    if (fd < 0) {
        printf("readonly %s %s\n", path, err_name(errno));
        return;
    }
    close(fd);
    if (S_ISDIR(st.st_mode))
        unlink(probe);
    printf("readonly %s writable\n", path);
}

static void cmd_mknod(char *path) {
    if (mknod(path, S_IFCHR | 0666, makedev(1, 3)) != 0) {
        printf("mknod %s %s\n", path, err_name(errno));
        return;
    }
    printf("mknod %s ok\n", path);
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        printf("open %s %s\n", path, err_name(errno));
        return;
    }
    close(fd);
    printf("open %s ok\n", path);
}

static void cmd_copy(char *from, char *to, char *mode) {
    int in = open(from, O_RDONLY);
    int out = in < 0 ? -1 : open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0) {
        printf("copy %s %s\n", to, err_name(errno));
        if (in >= 0)
            close(in);
        return;
    }
    char buf[65536];
    ssize_t r;
    while ((r = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, r) != r) {
            printf("copy %s %s\n", to, err_name(errno));
            close(in);
            close(out);
            return;
        }
    close(in);
    close(out);
    if (chmod(to, strtol(mode, NULL, 8)) != 0) {
        printf("copy %s %s\n", to, err_name(errno));
        return;
    }
    printf("copy %s ok\n", to);
}

static void cmd_spawn(int argc, char **argv) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        printf("spawn %s %s\n", argv[0], err_name(errno));
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        char *args[64];
        int n = 0;
        for (; n < argc && n < 63; n++)
            args[n] = argv[n];
        args[n] = NULL;
        execv(argv[0], args);
        int e = errno;
        if (write(p[1], &e, sizeof e) != sizeof e)
            _exit(126);
        _exit(127);
    }
    close(p[1]);
    int e = 0;
    ssize_t got = read(p[0], &e, sizeof e);
    close(p[0]);
    int status;
    waitpid(pid, &status, 0);
    if (got == sizeof e)
        printf("spawn %s %s\n", argv[0], err_name(e));
    else if (WIFEXITED(status))
        printf("spawn %s exit %d\n", argv[0], WEXITSTATUS(status));
    else
        printf("spawn %s signal %d\n", argv[0], WTERMSIG(status));
}

static volatile sig_atomic_t caught[65];
static volatile sig_atomic_t ncaught;

static void on_signal(int sig) {
    caught[sig]++;
    ncaught++;
}

static void cmd_signal_wait(int want) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int s = 1; s < 65; s++)
        if (s != SIGKILL && s != SIGSTOP && s != SIGCHLD)
            sigaction(s, &sa, NULL);
    printf("ready\n");
    fflush(stdout);
    int seen = 0;
    sigset_t all, old;
    sigfillset(&all);
    while (seen < want) {
        sigprocmask(SIG_BLOCK, &all, &old);
        while (ncaught == 0)
            sigsuspend(&old);
        for (int s = 1; s < 65; s++)
            while (caught[s] > 0) {
                caught[s]--;
                ncaught--;
                printf("signal %d\n", s);
                seen++;
            }
        fflush(stdout);
        sigprocmask(SIG_SETMASK, &old, NULL);
    }
}

/* Runs one command of argv[0..argc). */
/* tty: the standard streams as a terminal: whether each is one, the
 * name of fd 0's, the window size, and whether it is the controlling
 * terminal of our session with our group in the foreground. */
static void cmd_tty(void) {
    printf("tty isatty %d %d %d\n", isatty(0), isatty(1), isatty(2));
    const char *name = ttyname(0);
    if (name && strncmp(name, "/dev/pts/", 9) == 0)
        printf("tty name /dev/pts/N\n");
    else
        printf("tty name %s\n", name ? name : err_name(errno));
    struct winsize ws;
    if (ioctl(0, TIOCGWINSZ, &ws) == 0)
        printf("tty winsize %d %d\n", ws.ws_row, ws.ws_col);
    else
        printf("tty winsize %s\n", err_name(errno));
    pid_t fg = tcgetpgrp(0);
    printf("tty foreground %s\n", fg == getpgrp() ? "self" : fg < 0 ? err_name(errno) : "other");
    pid_t sid = tcgetsid(0);
    printf("tty session %s\n", sid == getsid(0) ? "self" : sid < 0 ? err_name(errno) : "other");
}

static int run(int argc, char **argv) {
    const char *cmd = argv[0];
    if (strcmp(cmd, "process") == 0) {
        cmd_process(argc, argv);
    } else if (strcmp(cmd, "args") == 0) {
        cmd_args(argc, argv);
    } else if (strcmp(cmd, "cwd") == 0) {
        cmd_cwd();
    } else if (strcmp(cmd, "ids") == 0) {
        cmd_ids();
    } else if (strcmp(cmd, "umask") == 0) {
        cmd_umask();
    } else if (strcmp(cmd, "env") == 0) {
        cmd_env();
    } else if (strcmp(cmd, "caps") == 0) {
        cmd_caps();
    } else if (strcmp(cmd, "oom") == 0) {
        cmd_oom();
    } else if (strcmp(cmd, "rlimits") == 0) {
        cmd_rlimits();
    } else if (strcmp(cmd, "hostname") == 0) {
        cmd_hostname();
    } else if (strcmp(cmd, "tty") == 0) {
        cmd_tty();
    } else if (strcmp(cmd, "mounts") == 0) {
        cmd_mounts();
    } else if (strcmp(cmd, "stat") == 0) {
        for (int i = 1; i < argc; i++)
            cmd_stat(argv[i]);
    } else if (strcmp(cmd, "statfs") == 0) {
        for (int i = 1; i < argc; i++)
            cmd_statfs(argv[i]);
    } else if (strcmp(cmd, "read") == 0) {
        for (int i = 1; i < argc; i++)
            cmd_read(argv[i]);
    } else if (strcmp(cmd, "write") == 0) {
        for (int i = 1; i < argc; i++)
            cmd_write(argv[i]);
    } else if (strcmp(cmd, "masked") == 0) {
        for (int i = 1; i < argc; i++)
            cmd_masked(argv[i]);
    } else if (strcmp(cmd, "readonly") == 0) {
        for (int i = 1; i < argc; i++)
            cmd_readonly(argv[i]);
    } else if (strcmp(cmd, "mknod") == 0 && argc == 2) {
        cmd_mknod(argv[1]);
    } else if (strcmp(cmd, "copy") == 0 && argc == 4) {
        cmd_copy(argv[1], argv[2], argv[3]);
    } else if (strcmp(cmd, "spawn") == 0 && argc >= 2) {
        cmd_spawn(argc - 1, argv + 1);
    } else if (strcmp(cmd, "sleep") == 0) {
        fflush(stdout);
        if (argc > 1)
            sleep(atoi(argv[1]));
        else
            for (;;)
                pause();
    } else if (strcmp(cmd, "exit") == 0 && argc == 2) {
        fflush(stdout);
        exit(atoi(argv[1]));
    } else if (strcmp(cmd, "signal-wait") == 0 && argc == 2) {
        cmd_signal_wait(atoi(argv[1]));
    } else {
        fprintf(stderr, "checker: unknown command or arguments: %s\n", cmd);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: checker CMD [ARGS...] [\";\" CMD [ARGS...]]...\n");
        return 2;
    }
    /* `process` reports the whole argv; other commands are split at ";". */
    if (strcmp(argv[1], "process") == 0) {
        cmd_process(argc, argv);
        return 0;
    }
    int start = 1;
    for (int i = 1; i <= argc; i++) {
        if (i == argc || strcmp(argv[i], ";") == 0) {
            if (i > start) {
                int rc = run(i - start, argv + start);
                if (rc)
                    return rc;
            }
            start = i + 1;
        }
    }
    return 0;
}
