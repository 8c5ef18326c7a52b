//! Shared helpers of the test suites: finding `runsc`, building C test
//! programs with the machine's `cc`, running a program natively and in
//! the sandbox.

pub mod clients;
pub mod oci;
pub mod rootfs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `runsc` binary built alongside these tests (same profile).
pub fn runsc_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>/runsc
    let p = exe.parent().unwrap().parent().unwrap().join("runsc");
    assert!(
        p.exists(),
        "{} is missing: run the suite with `cargo test --release --workspace`, which builds it",
        p.display()
    );
    p
}

/// The platform the tests run on: RUNSC_TEST_PLATFORM, else runsc's
/// default (systrap).
pub fn platform() -> String {
    std::env::var("RUNSC_TEST_PLATFORM").unwrap_or_else(|_| "systrap".into())
}

/// The `runsc` every test runs: the binary itself, or, when
/// RUNSC_TEST_PLATFORM names a platform, a small program that runs it with
/// `--platform=THAT` unless the command line already chooses one (a
/// program, not a shell script: a shell would add PWD to the environment
/// the sandboxed program sees). Every invocation then gets the platform
/// under test, the OCI commands and those podman and containerd make
/// included.
pub fn runsc() -> PathBuf {
    let bin = runsc_binary();
    let Ok(platform) = std::env::var("RUNSC_TEST_PLATFORM") else {
        return bin;
    };
    assert!(
        !platform.is_empty() && platform.bytes().all(|b| b.is_ascii_alphanumeric()),
        "RUNSC_TEST_PLATFORM={platform:?} is not a platform name"
    );
    let bin_s = bin.to_string_lossy();
    assert!(!bin_s.contains(['"', '\\']), "{bin_s}");
    let src = build_dir().join(format!("runsc-{platform}.c"));
    let text = format!(
        r#"#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>
int main(int argc, char **argv) {{
    static const char bin[] = "{bin_s}";
    char **v = calloc(argc + 2, sizeof *v);
    int n = 0;
    v[n++] = (char *)bin;
    int chosen = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--platform") || !strncmp(argv[i], "--platform=", 11))
            chosen = 1;
    if (!chosen)
        v[n++] = "--platform={platform}";
    for (int i = 1; i < argc; i++)
        v[n++] = argv[i];
    execv(bin, v);
    perror(bin);
    return 127;
}}
"#
    );
    // One writer at a time, across threads and processes.
    let lock = std::fs::File::create(build_dir().join(format!("runsc-{platform}.lock"))).unwrap();
    lock.lock().unwrap();
    if std::fs::read_to_string(&src).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&src, &text).unwrap();
    }
    drop(lock);
    // build_c rebuilds only when the source is newer.
    build_c(&src, &[])
}

/// Where built test programs go: beside the test binaries, unless those
/// live under /tmp, which native runs cover with a private tmpfs; then in
/// a directory of /var/tmp named after the target directory.
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().unwrap().parent().unwrap();
    let d = if target.starts_with("/tmp") {
        let name: String = target
            .to_string_lossy()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Path::new("/var/tmp/runsc-test-programs").join(name)
    } else {
        target.join("test-programs")
    };
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Compiles a C file statically; returns the binary. Rebuilds only when
/// the source or the shared header is newer.
pub fn build_c(src: &Path, extra: &[&str]) -> PathBuf {
    let name = src.file_stem().unwrap().to_string_lossy().into_owned();
    let out = build_dir().join(&name);
    // One builder at a time per program, across threads and processes:
    // a second rename over a binary another test is already running
    // would replace the file under it (the gofer then reports ESTALE).
    let lock = std::fs::File::create(build_dir().join(format!("{name}.lock"))).unwrap();
    lock.lock().unwrap();
    let header = src.parent().unwrap().join("check.h");
    let newest_src = [src, header.as_path()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .max()
        .unwrap();
    let fresh = std::fs::metadata(&out)
        .and_then(|m| m.modified())
        .map(|t| t >= newest_src)
        .unwrap_or(false);
    if !fresh {
        // Build to a temporary name, then rename: tests run in parallel.
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let tmp = build_dir().join(format!("{name}.tmp{}-{seq}", std::process::id()));
        // A case may ask for other flags on its first line:
        // `/* cflags: -static-pie */` replaces `-static`.
        let first = std::fs::read_to_string(src)
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let mut flags: Vec<String> = first
            .strip_prefix("/* cflags:")
            .and_then(|r| r.strip_suffix("*/"))
            .map(|r| r.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        if !flags.iter().any(|f| f.starts_with("-static")) {
            flags.push("-static".into());
        }
        let result = Command::new("cc")
            .args(&flags)
            .args(["-O1", "-g", "-Wall", "-Werror", "-D_GNU_SOURCE"])
            .arg("-I")
            .arg(src.parent().unwrap())
            .arg("-o")
            .arg(&tmp)
            .arg(src)
            .args(extra)
            .output()
            .expect("running cc");
        assert!(
            result.status.success(),
            "cc failed for {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&result.stderr)
        );
        std::fs::rename(&tmp, &out).unwrap();
    }
    out
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    pub stdout: String,
    pub stderr: String,
    /// Exit code, or 128 + signal.
    pub code: i32,
}

fn collect(out: Output) -> RunResult {
    use std::os::unix::process::ExitStatusExt;
    let code = match out.status.code() {
        Some(c) => c,
        None => 128 + out.status.signal().unwrap_or(0),
    };
    RunResult {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code,
    }
}

/// The binary of conformance case `name` (`tests/syscalls/NAME.c`) and
/// its standard input file, if it has one.
pub fn case_binary(name: &str) -> (PathBuf, Option<PathBuf>) {
    let dir = workspace().join("tests/syscalls");
    let bin = build_c(&dir.join(format!("{name}.c")), &[]);
    let stdin = dir.join(format!("{name}.stdin"));
    (bin, stdin.exists().then_some(stdin))
}

/// One `#[test]` a conformance case, each running `run_case(NAME)` of the
/// calling test file.
#[macro_export]
macro_rules! cases {
    ($($name:ident)*) => {
        $(
            #[test]
            fn $name() {
                run_case(stringify!($name));
            }
        )*
    };
}

/// Runs a native program with a fresh, private tmpfs on /tmp, as the
/// sandbox has: file-system cases then compare like with like.
fn private_tmp(cmd: &mut Command) {
    mount_on_tmp(
        cmd,
        c"tmpfs".into(),
        Some(c"tmpfs".into()),
        0,
        Some(c"mode=1777".into()),
    );
}

/// Runs a native program in a private mount namespace with `source`
/// mounted on /tmp (`fstype` None with `MS_BIND`: a bind mount), and in
/// fresh IPC and network namespaces, as the sandbox's are (System V
/// objects and message queues of the host are not there, identifiers
/// start afresh; only loopback, up, with no host sockets on it).
fn mount_on_tmp(
    cmd: &mut Command,
    source: std::ffi::CString,
    fstype: Option<std::ffi::CString>,
    flags: libc::c_ulong,
    data: Option<std::ffi::CString>,
) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe syscalls between fork and exec; the
    // strings are made before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The fresh network namespace's loopback starts down; the
            // sandbox's is up, as a container runtime leaves it.
            let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut ifr: libc::ifreq = std::mem::zeroed();
            ifr.ifr_name[0] = b'l' as libc::c_char;
            ifr.ifr_name[1] = b'o' as libc::c_char;
            ifr.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
            if libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            let ptr =
                |s: &Option<std::ffi::CString>| s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
            if libc::mount(
                source.as_ptr(),
                c"/tmp".as_ptr(),
                ptr(&fstype),
                flags,
                ptr(&data).cast(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A fixed environment, the same natively and in the sandbox.
fn fixed_env(cmd: &mut Command) {
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C")
        .env("CONFORMANCE", "1");
}

/// Runs `prog args` with `stdin` (a file path, or /dev/null) and a time
/// limit; natively when `sandboxed` is false, else under `runsc do`.
pub fn run(prog: &Path, args: &[&str], stdin: Option<&Path>, sandboxed: bool) -> RunResult {
    run_with(prog, args, stdin, sandboxed, &[])
}

/// As [`run`], with extra `runsc` flags before `do`.
pub fn run_with(
    prog: &Path,
    args: &[&str],
    stdin: Option<&Path>,
    sandboxed: bool,
    runsc_flags: &[&str],
) -> RunResult {
    let stdin_file = match stdin {
        Some(p) => std::fs::File::open(p).unwrap(),
        None => std::fs::File::open("/dev/null").unwrap(),
    };
    let mut cmd = command(prog, args, sandboxed, runsc_flags);
    cmd.stdin(Stdio::from(stdin_file));
    run_command(cmd, Duration::from_secs(120)).0
}

/// Runs `prog args` under `runsc do --empty-root`: a sandbox whose root
/// is an empty tmpfs (nothing of the host's tree), the static `prog`
/// handed in as an open file.
pub fn run_empty_root(prog: &Path, args: &[&str]) -> RunResult {
    run_empty_root_with(prog, args, &[])
}

/// As [`run_empty_root`], with extra `runsc` flags before `do`.
pub fn run_empty_root_with(prog: &Path, args: &[&str], runsc_flags: &[&str]) -> RunResult {
    let mut cmd = Command::new(runsc());
    cmd.args(runsc_flags)
        .arg("do")
        .arg("--empty-root")
        .arg(prog)
        .args(args);
    fixed_env(&mut cmd);
    cmd.stdin(Stdio::null());
    run_command(cmd, Duration::from_secs(120)).0
}

/// The command that runs `prog args`: natively (with a private /tmp) when
/// `sandboxed` is false, else under `runsc do` with `runsc_flags`.
pub fn command(prog: &Path, args: &[&str], sandboxed: bool, runsc_flags: &[&str]) -> Command {
    let mut cmd = if sandboxed {
        // The platform under test: RUNSC_TEST_PLATFORM (see `runsc`).
        let mut c = Command::new(runsc());
        c.args(runsc_flags).arg("do").arg(prog);
        c
    } else {
        let mut c = Command::new(prog);
        private_tmp(&mut c);
        c
    };
    cmd.args(args);
    fixed_env(&mut cmd);
    cmd
}

/// Runs `cmd` (its stdin already set) with its output collected; kills it
/// after `limit`. Returns what it produced and how long it took.
pub fn run_command(mut cmd: Command, limit: Duration) -> (RunResult, Duration) {
    use std::os::unix::process::CommandExt;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // A process group of its own, which the watchdog kills whole:
            // a program's children may outlive it, holding its output.
            libc::setpgid(0, 0);
            // Default dispositions, whatever the runner ignores (a shell
            // runs background jobs with SIGINT and SIGQUIT ignored): a
            // sandboxed program never inherits them, so native runs must
            // not either.
            for sig in 1..=64 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let child = cmd.spawn().expect("spawning");
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d2 = done.clone();
    // A watchdog: no test program may hang the suite.
    std::thread::spawn(move || {
        while start.elapsed() < limit {
            if d2.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: kills the process group of the child we spawned, and
        // the child itself (if it left the group).
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
            libc::kill(pid as i32, libc::SIGKILL);
        }
    });
    let out = child.wait_with_output().expect("waiting");
    let took = start.elapsed();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    (collect(out), took)
}

/// Prints a readable difference of two outputs.
pub fn diff(native: &str, sandbox: &str) -> String {
    let a: Vec<&str> = native.lines().collect();
    let b: Vec<&str> = sandbox.lines().collect();
    let mut out = String::new();
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i), b.get(i));
        if x != y {
            out.push_str(&format!(
                "line {}:\n  native:  {}\n  sandbox: {}\n",
                i + 1,
                x.unwrap_or(&"<none>"),
                y.unwrap_or(&"<none>")
            ));
        }
    }
    out
}

/// Runs a program natively and in the sandbox and fails the test on any
/// difference in standard output or exit status.
pub fn compare(prog: &Path, args: &[&str], stdin: Option<&Path>) -> RunResult {
    let native = run(prog, args, stdin, false);
    let sandbox = run(prog, args, stdin, true);
    assert!(
        native.stdout == sandbox.stdout && native.code == sandbox.code,
        "{} {:?}: native and sandbox differ\n{}exit: native {} sandbox {}\nsandbox stderr:\n{}",
        prog.display(),
        args,
        diff(&native.stdout, &sandbox.stdout),
        native.code,
        sandbox.code,
        sandbox.stderr
    );
    sandbox
}

/// The host pids whose parent is `ppid` (a sandbox's stub processes).
/// For a `runsc` process, whose only child is its confined sentry, the
/// sentry's children.
pub fn children_of(ppid: u32) -> Vec<i32> {
    let ppid = sentry_of(ppid).map_or(ppid, |p| p as u32);
    direct_children_of(ppid)
}

/// The confined sentry process of the `runsc` process `runsc_pid`: its
/// child named `runsc-sentry`.
pub fn sentry_of(runsc_pid: u32) -> Option<i32> {
    direct_children_of(runsc_pid).into_iter().find(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "runsc-sentry")
    })
}

/// The host pids whose parent is `ppid`.
pub fn direct_children_of(ppid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let parent: u32 = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if parent == ppid {
            out.push(pid);
        }
    }
    out
}

/// The stub processes and threads (host processes named `runsc-stub`)
/// among the descendants of `root`, oldest first.
pub fn stubs_of(root: u32) -> Vec<i32> {
    let mut procs = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let comm = stat
            .split_once('(')
            .and_then(|(_, r)| r.rsplit_once(')'))
            .map(|(c, _)| c.to_string())
            .unwrap_or_default();
        let parent: i32 = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        procs.push((pid, parent, comm));
    }
    let descends = |mut pid: i32| {
        for _ in 0..64 {
            let Some(&(_, parent, _)) = procs.iter().find(|p| p.0 == pid) else {
                return false;
            };
            if parent == root as i32 {
                return true;
            }
            pid = parent;
        }
        false
    };
    let mut out: Vec<i32> = procs
        .iter()
        .filter(|(pid, _, comm)| comm == "runsc-stub" && descends(*pid))
        .map(|p| p.0)
        .collect();
    out.sort();
    out
}

/// Starts `runsc do prog args` with its output piped and waits for its
/// first line of output, which must be `first`.
pub fn start_sandboxed(prog: &Path, args: &[&str], first: &str) -> std::process::Child {
    use std::io::BufRead;
    let mut child = Command::new(runsc())
        .arg("do")
        .arg(prog)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, format!("{first}\n"));
    child
}

/// A fresh, empty host directory (mode 1777, as /tmp) under the build
/// directory, removed when dropped.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new(tag: &str) -> ScratchDir {
        use std::os::unix::fs::PermissionsExt;
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let d = build_dir()
            .join("scratch")
            .join(format!("{tag}-{}-{seq}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        ScratchDir(d)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a native program with the host directory `dir` bind-mounted on
/// /tmp in a private mount namespace (the host file system as /tmp, as a
/// sandbox with `-v DIR:/tmp` has it).
fn bind_tmp(cmd: &mut Command, dir: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let src = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    mount_on_tmp(cmd, src, None, libc::MS_BIND, None);
}

/// Runs a program natively with a fresh host directory bind-mounted on
/// /tmp, and under `runsc do -v OTHER:/tmp` with another fresh host
/// directory (on the same host file system) as /tmp, served by the gofer;
/// fails the test on any difference in standard output or exit status.
pub fn compare_gofer_tmp(prog: &Path, args: &[&str], stdin: Option<&Path>) -> RunResult {
    compare_gofer_tmp_lines(prog, args, stdin, &|_| true)
}

/// As [`compare_gofer_tmp`], comparing only the lines of standard output
/// that `keep` keeps.
pub fn compare_gofer_tmp_lines(
    prog: &Path,
    args: &[&str],
    stdin: Option<&Path>,
    keep: &dyn Fn(&str) -> bool,
) -> RunResult {
    let open_stdin = || match stdin {
        Some(p) => std::fs::File::open(p).unwrap(),
        None => std::fs::File::open("/dev/null").unwrap(),
    };
    let tag = prog.file_name().unwrap().to_string_lossy().into_owned();
    let native = {
        let dir = ScratchDir::new(&format!("{tag}-native"));
        let mut cmd = Command::new(prog);
        cmd.args(args);
        bind_tmp(&mut cmd, &dir.0);
        fixed_env(&mut cmd);
        cmd.stdin(Stdio::from(open_stdin()));
        run_command(cmd, Duration::from_secs(120)).0
    };
    let sandbox = {
        let dir = ScratchDir::new(&format!("{tag}-sandbox"));
        let volume = format!("{}:/tmp", dir.0.display());
        let mut cmd = Command::new(runsc());
        cmd.arg("do").arg("-v").arg(&volume).arg(prog).args(args);
        fixed_env(&mut cmd);
        cmd.stdin(Stdio::from(open_stdin()));
        run_command(cmd, Duration::from_secs(120)).0
    };
    let kept = |s: &str| {
        s.lines()
            .filter(|l| keep(l))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    let (n, s) = (kept(&native.stdout), kept(&sandbox.stdout));
    assert!(
        n == s && native.code == sandbox.code,
        "{} {:?} on the gofer's /tmp: native and sandbox differ\n{}exit: native {} sandbox {}\nsandbox stderr:\n{}",
        prog.display(),
        args,
        diff(&n, &s),
        native.code,
        sandbox.code,
        sandbox.stderr
    );
    sandbox
}
