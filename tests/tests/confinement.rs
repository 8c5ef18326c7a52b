//! The sentry is confined (DESIGN.md, invariants 1 and 2): from the host,
//! its process lives in an empty read-only root, in namespaces of its own,
//! with no capabilities, no_new_privs and a seccomp filter; a host syscall
//! outside its allow-list kills it with a clear message; and a guest that
//! tries the usual ways out reaches nothing of the host.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tests::{
    build_c, build_dir, direct_children_of, run_empty_root, runsc, sentry_of, start_sandboxed,
    workspace,
};

const BUSYBOX: &str = "/bin/busybox";

fn busybox() -> &'static Path {
    let p = Path::new(BUSYBOX);
    assert!(p.exists(), "{BUSYBOX} is missing: install busybox-static");
    p
}

/// A sandbox whose guest sleeps, and its sentry's host pid.
fn sleeping_sandbox() -> (Child, i32) {
    let child = start_sandboxed(
        busybox(),
        &["sh", "-c", "echo ready; exec sleep 60"],
        "ready",
    );
    let sentry = sentry_of(child.id()).expect("runsc has no runsc-sentry child");
    (child, sentry)
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn status_field(pid: i32, name: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

#[test]
fn the_sentry_is_the_child_of_runsc_and_lives_in_an_empty_read_only_root() {
    let (child, sentry) = sleeping_sandbox();
    let root = PathBuf::from(format!("/proc/{sentry}/root"));
    let entries: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let theirs = std::fs::metadata(&root).unwrap();
    let ours = std::fs::metadata("/").unwrap();
    let mounts = std::fs::read_to_string(format!("/proc/{sentry}/mountinfo")).unwrap();
    let cwd = std::fs::read_link(format!("/proc/{sentry}/cwd")).unwrap();
    stop(child);
    assert!(entries.is_empty(), "the sentry's root has {entries:?}");
    assert_ne!(
        (theirs.dev(), theirs.ino()),
        (ours.dev(), ours.ino()),
        "the sentry's root is the host's"
    );
    // One mount, the empty tmpfs, read-only.
    let lines: Vec<&str> = mounts.lines().collect();
    assert_eq!(lines.len(), 1, "the sentry sees mounts: {mounts}");
    let fields: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(fields[4], "/", "{mounts}");
    assert!(fields[5].split(',').any(|o| o == "ro"), "{mounts}");
    assert!(lines[0].contains(" - tmpfs "), "{mounts}");
    assert_eq!(cwd, Path::new("/"));
}

#[test]
fn the_sentry_has_no_capabilities_no_new_privs_and_a_seccomp_filter() {
    let (child, sentry) = sleeping_sandbox();
    let fields: Vec<(&str, String)> = [
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
    ]
    .into_iter()
    .map(|f| (f, status_field(sentry, f)))
    .collect();
    // Every sentry thread has the filter (TSYNC), and so do the stubs.
    let threads: Vec<(String, String)> = std::fs::read_dir(format!("/proc/{sentry}/task"))
        .unwrap()
        .flatten()
        // A thread that exits while we look is no longer there to check.
        .filter_map(|t| {
            let s = std::fs::read_to_string(t.path().join("status")).ok()?;
            let seccomp = s
                .lines()
                .find_map(|l| l.strip_prefix("Seccomp:"))
                .unwrap_or("")
                .trim()
                .to_string();
            Some((t.file_name().to_string_lossy().into_owned(), seccomp))
        })
        .collect();
    // A stub that exits while we look (one the sentry made and dropped)
    // is no longer there to check.
    let stubs: Vec<(i32, String, String)> = direct_children_of(sentry as u32)
        .into_iter()
        .filter_map(|p| {
            let s = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
            let field = |name: &str| {
                s.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}:")))
                    .map(|v| v.trim().to_string())
            };
            Some((p, field("Seccomp")?, field("CapEff")?))
        })
        .collect();
    stop(child);
    for (f, v) in &fields {
        let want = match *f {
            "NoNewPrivs" => "1",
            "Seccomp" => "2",
            _ => "0000000000000000",
        };
        assert_eq!(v, want, "{f} of the sentry");
    }
    assert!(threads.len() > 1, "{threads:?}");
    for (tid, s) in &threads {
        assert_eq!(s, "2", "sentry thread {tid} has no seccomp filter");
    }
    assert!(!stubs.is_empty());
    for (pid, s, cap) in &stubs {
        assert_eq!(s, "2", "stub {pid} has no seccomp filter");
        assert_eq!(cap, "0000000000000000", "stub {pid} has capabilities");
    }
}

#[test]
fn the_sentry_has_namespaces_of_its_own() {
    let (child, sentry) = sleeping_sandbox();
    let ns = |pid: &str, n: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let pairs: Vec<(&str, String, String)> = ["mnt", "pid", "net", "ipc", "uts"]
        .into_iter()
        .map(|n| (n, ns(&sentry.to_string(), n), ns("self", n)))
        .collect();
    // It is pid 1 of its pid namespace.
    let nspid = status_field(sentry, "NSpid");
    stop(child);
    for (n, theirs, ours) in &pairs {
        assert_ne!(theirs, ours, "the sentry shares the host's {n} namespace");
    }
    assert!(
        nspid.ends_with("\t1") || nspid.ends_with(" 1"),
        "NSpid: {nspid}"
    );
}

#[test]
fn a_forbidden_host_syscall_kills_the_sentry_with_a_clear_message() {
    let out = Command::new(runsc())
        .env("RUNSC_TEST_FORBIDDEN_SYSCALL", "1")
        .arg("do")
        .arg(busybox())
        .args(["echo", "never printed"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + libc::SIGSYS), "{err}");
    assert!(
        err.contains(&format!(
            "the sentry made host syscall {} (socket), which its seccomp filter forbids",
            libc::SYS_socket
        )),
        "{err}"
    );
    assert!(err.contains("the sentry was killed by SIGSYS"), "{err}");
    assert!(out.stdout.is_empty(), "the guest ran: {:?}", out.stdout);
    // Without the switch the same run works: it was the switch.
    let out = Command::new(runsc())
        .arg("do")
        .arg(busybox())
        .args(["echo", "printed"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "printed\n");
}

#[test]
fn runsc_passes_a_terminating_signal_on_and_dies_of_it() {
    let (child, sentry) = sleeping_sandbox();
    // SAFETY: signals the runsc process we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{out:?}");
    assert!(gone_soon(sentry), "the sentry {sentry} outlived runsc");
}

#[test]
fn the_sentry_and_its_stubs_die_with_runsc() {
    let (mut child, sentry) = sleeping_sandbox();
    let stubs = direct_children_of(sentry as u32);
    assert!(!stubs.is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(gone_soon(sentry), "the sentry {sentry} outlived runsc");
    for s in stubs {
        assert!(gone_soon(s), "stub {s} outlived runsc");
    }
}

/// Whether process `pid` is gone (or a zombie) within a few seconds.
fn gone_soon(pid: i32) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(s)
                if s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z')) =>
            {
                return true
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    false
}

/// A static C program that tries the usual ways out of a chroot or a
/// container, one line of output each.
const ESCAPE_C: &str = r#"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The entries of a directory, sorted, comma-separated, or the error. */
static void list(const char *what, const char *path) {
    DIR *d = opendir(path);
    if (!d) { printf("%s: error %s\n", what, strerror(errno)); return; }
    char names[64][256]; int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(names[n++], 256, "%s", e->d_name);
    }
    closedir(d);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) > 0) {
                char t[256]; memcpy(t, names[i], 256); memcpy(names[i], names[j], 256); memcpy(names[j], t, 256);
            }
    printf("%s:", what);
    for (int i = 0; i < n; i++) printf("%s%s", i ? "," : " ", names[i]);
    printf("\n");
}

static void try_open(const char *path) {
    int fd = open(path, O_RDONLY);
    printf("open %s: %s\n", path, fd >= 0 ? "opened" : strerror(errno));
    if (fd >= 0) close(fd);
}

int main(int argc, char **argv) {
    list("root", "/");
    list("proc1root", "/proc/1/root");
    list("selfrootdotdot", "/proc/self/root/..");
    list("dotdot", "/../../../../..");
    /* .. chains from a deep directory */
    mkdir("/tmp/a", 0755); mkdir("/tmp/a/b", 0755);
    if (chdir("/tmp/a/b") == 0) {
        for (int i = 0; i < 64; i++) if (chdir("..") != 0) break;
        list("cwd after 64 ..", ".");
    }
    /* the classic chroot escape: chroot into a subdirectory while keeping
       a cwd outside it, then climb */
    mkdir("/tmp/jail", 0755);
    int keep = open("/", O_RDONLY | O_DIRECTORY);
    int r = chroot("/tmp/jail");
    printf("chroot: %s\n", r == 0 ? "ok" : strerror(errno));
    if (keep >= 0 && fchdir(keep) == 0) {
        for (int i = 0; i < 64; i++) if (chdir("..") != 0) break;
        r = chroot(".");
        list("after chroot escape", ".");
        list("after chroot escape, /", "/");
    }
    /* file handles of the host */
    struct { unsigned int bytes; int type; unsigned char f[128]; } h;
    memset(&h, 0, sizeof h); h.bytes = 128;
    int mnt;
    r = syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &h, &mnt, 0);
    printf("name_to_handle_at: %s\n", r == 0 ? "ok" : strerror(errno));
    memset(&h, 0, sizeof h); h.bytes = 8; h.type = 1; /* FILEID_INO32_GEN: inode 2 */
    h.f[0] = 2;
    r = syscall(SYS_open_by_handle_at, AT_FDCWD, &h, O_RDONLY);
    printf("open_by_handle_at: %s\n", r >= 0 ? "opened" : strerror(errno));
    /* host fds that might have been inherited */
    int open_fds = 0;
    for (int fd = 3; fd <= 64; fd++)
        if (fd != keep && fcntl(fd, F_GETFD) >= 0) {
            char link[64], target[256]; snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
            ssize_t n = readlink(link, target, sizeof target - 1);
            target[n > 0 ? n : 0] = 0;
            printf("fd %d open: %s\n", fd, target);
            open_fds++;
        }
    printf("inherited fds: %d\n", open_fds);
    /* host paths */
    try_open("/etc/passwd");
    try_open("/usr/bin/busybox");
    try_open("/proc/1/root/etc/passwd");
    try_open("/proc/self/root/../etc/passwd");
    try_open("/proc/1/cwd/../etc/passwd");
    struct stat st;
    /* argv[1]: a host directory (the workspace) */
    if (argc > 1)
        printf("stat host dir: %s\n", stat(argv[1], &st) == 0 ? "exists" : strerror(errno));
    printf("stat /root: %s\n", stat("/root", &st) == 0 ? "exists" : strerror(errno));
    /* the host's processes */
    printf("kill 1 0: %s\n", kill(1, 0) == 0 ? "ok (itself)" : strerror(errno));
    printf("kill 2 0: %s\n", kill(2, 0) == 0 ? "ok" : strerror(errno));
    return 0;
}
"#;

fn escape_program() -> PathBuf {
    let src = build_dir().join("confinement_escape.c");
    // Written only when changed: build_c rebuilds on a newer source.
    if std::fs::read_to_string(&src).ok().as_deref() != Some(ESCAPE_C) {
        let tmp = build_dir().join(format!("confinement_escape.c.{}", std::process::id()));
        std::fs::write(&tmp, ESCAPE_C).unwrap();
        std::fs::rename(&tmp, &src).unwrap();
    }
    build_c(&src, &[])
}

#[test]
fn guest_escape_attempts_reach_nothing_of_the_host() {
    let host_dir = workspace();
    // The sandbox's tree alone: an empty root (a root from the gofer is
    // a host directory, which the guest sees by design).
    let r = run_empty_root(&escape_program(), &[host_dir.to_str().unwrap()]);
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let out = &r.stdout;
    let line = |prefix: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{out}"))
            .to_string()
    };
    // The sandbox's own root, wherever the guest looks for the host's.
    let sandbox_root = "dev,proc,sys,tmp";
    assert_eq!(line("root:"), format!("root: {sandbox_root}"), "{out}");
    for what in ["proc1root", "selfrootdotdot", "dotdot", "cwd after 64 .."] {
        assert_eq!(
            line(&format!("{what}:")),
            format!("{what}: {sandbox_root}"),
            "{out}"
        );
    }
    // Whatever chroot does in the sandbox, climbing out of it ends at the
    // sandbox's root at most.
    for what in ["after chroot escape:", "after chroot escape, /:"] {
        if let Some(l) = out.lines().find(|l| l.starts_with(what)) {
            let rest = l[what.len()..].trim();
            assert!(
                rest.is_empty() || rest == sandbox_root || rest.starts_with("error"),
                "{l}\n{out}"
            );
        }
    }
    assert!(!line("open_by_handle_at:").ends_with("opened"), "{out}");
    assert_eq!(line("inherited fds:"), "inherited fds: 0", "{out}");
    for p in [
        "/etc/passwd",
        "/usr/bin/busybox",
        "/proc/1/root/etc/passwd",
        "/proc/self/root/../etc/passwd",
        "/proc/1/cwd/../etc/passwd",
    ] {
        assert_eq!(
            line(&format!("open {p}:")),
            format!("open {p}: No such file or directory"),
            "{out}"
        );
    }
    assert_eq!(
        line("stat host dir:"),
        "stat host dir: No such file or directory"
    );
    assert_eq!(line("stat /root:"), "stat /root: No such file or directory");
    assert_eq!(line("kill 2 0:"), "kill 2 0: No such process");
}

#[test]
fn a_sentry_started_without_root_runs_in_a_user_namespace() {
    // runsc as an unprivileged user: the sentry gets a user namespace of
    // its own (root inside, that user outside) and is confined the same.
    let prog = busybox();
    let runsc = runsc();
    let mut cmd = Command::new(&runsc);
    cmd.arg("do")
        .arg(prog)
        .args(["sh", "-c", "echo ready; exec sleep 60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setgroups, setgid and setuid are async-signal-safe; they only
    // change the child's credentials before exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            // The build tree is not reachable by other users here.
            eprintln!(
                "{} is not executable by uid 65534 ({e}); skipped",
                runsc.display()
            );
            return;
        }
        Err(e) => panic!("cannot start runsc as uid 65534: {e}"),
    };
    let mut first = String::new();
    {
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut first)
            .unwrap();
    }
    if first != "ready\n" {
        let out = child.wait_with_output().unwrap();
        panic!(
            "runsc as uid 65534 did not start: {first:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let sentry = sentry_of(child.id()).expect("no sentry");
    let user = std::fs::read_link(format!("/proc/{sentry}/ns/user")).unwrap();
    let ours = std::fs::read_link("/proc/self/ns/user").unwrap();
    let uid_map = std::fs::read_to_string(format!("/proc/{sentry}/uid_map")).unwrap();
    let cap_eff = status_field(sentry, "CapEff");
    let seccomp = status_field(sentry, "Seccomp");
    let root_empty = std::fs::read_dir(format!("/proc/{sentry}/root"))
        .map(|d| d.count() == 0)
        .unwrap_or(false);
    stop(child);
    assert_ne!(user, ours, "no user namespace of its own");
    assert_eq!(
        uid_map.split_whitespace().collect::<Vec<_>>(),
        ["0", "65534", "1"]
    );
    assert_eq!(cap_eff, "0000000000000000");
    assert_eq!(seccomp, "2");
    assert!(root_empty);
}
