//! Hostile inputs: calls whose arguments once made the sentry loop over
//! every page of a file, allocate without bound, write past a guest
//! buffer or abort. Each must now answer at once, as Linux does.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use tests::{build_c, build_dir, command, diff, run_command, runsc, workspace, RunResult};

fn program() -> PathBuf {
    let include = workspace().join("tests/syscalls");
    build_c(
        &workspace().join("tests/programs/hostile.c"),
        &["-I", include.to_str().unwrap()],
    )
}

/// Runs the program's `case` natively and in the sandbox with `stdin`
/// made by `stdin()`; both must print the same and exit the same, and the
/// sandbox must finish within `limit`.
fn compare_case(case: &[&str], stdin: impl Fn() -> Stdio, limit: Duration) -> RunResult {
    let prog = program();
    let mut native = command(&prog, case, false, &[]);
    native.stdin(stdin());
    let (native, _) = run_command(native, Duration::from_secs(60));
    let sandboxed = sandbox_case(case, stdin(), limit);
    assert!(
        native.stdout == sandboxed.stdout && native.code == sandboxed.code,
        "{case:?}: native and sandbox differ\n{}exit: native {} sandbox {}\nsandbox stderr:\n{}",
        diff(&native.stdout, &sandboxed.stdout),
        native.code,
        sandboxed.code,
        sandboxed.stderr
    );
    sandboxed
}

/// Runs the program's `case` in the sandbox, which must finish within
/// `limit` (it is killed a little after).
fn sandbox_case(case: &[&str], stdin: Stdio, limit: Duration) -> RunResult {
    let mut cmd = command(&program(), case, true, &[]);
    cmd.stdin(stdin);
    let (r, took) = run_command(cmd, limit + Duration::from_secs(2));
    assert!(
        took < limit,
        "{case:?} took {took:?} in the sandbox (limit {limit:?}); stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    r
}

/// A pseudo-terminal: (master, slave).
fn openpty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two fds; the name and settings are optional.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both fds are new and ours alone.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

#[test]
fn termios_is_the_kernels_struct() {
    let (_master, slave) = openpty();
    let r = compare_case(
        &["termios"],
        || Stdio::from(slave.try_clone().unwrap()),
        Duration::from_secs(10),
    );
    assert!(r.stdout.contains("intact: yes"), "{}", r.stdout);
    assert!(r.stdout.contains("VINTR=7"), "{}", r.stdout);
}

#[test]
fn huge_memfd_fallocate_fails_at_once() {
    // Not run natively: a memfd has no size limit on Linux, so the host
    // would try to allocate the terabyte.
    let r = sandbox_case(&["memfd"], Stdio::null(), Duration::from_secs(1));
    assert_eq!(
        r.stdout,
        "fd >= 0: yes\n\
         fallocate(fd, 0, 1L << 40, 1L << 40) = -1 ENOSPC\n\
         size=0 blocks=0\n\
         fallocate(fd, 0, 0, 1L << 30) = 0\n\
         size=1073741824 blocks=2097152\n\
         ftruncate(fd, 0) = 0\n\
         size=0 blocks=0\n",
        "stderr:\n{}",
        r.stderr
    );
    assert_eq!(r.code, 0);
}

#[test]
fn largest_file_offsets_answer_at_once() {
    compare_case(&["huge"], Stdio::null, Duration::from_secs(1));
}

#[test]
fn tmpfs_size_is_enforced() {
    compare_case(&["size"], Stdio::null, Duration::from_secs(10));
}

fn write_variant(name: &str, bytes: &[u8]) -> PathBuf {
    let p = build_dir().join(format!("hostile-{name}"));
    std::fs::write(&p, bytes).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

#[test]
fn huge_segment_file_size_is_enoexec() {
    let good = std::fs::read(build_c(&workspace().join("tests/syscalls/basic.c"), &[])).unwrap();
    let phoff = u64_at(&good, 32) as usize;
    let phnum = u16_at(&good, 56) as usize;
    let ph = (0..phnum)
        .map(|i| phoff + i * 56)
        .find(|&o| u32::from_le_bytes(good[o..o + 4].try_into().unwrap()) == 1)
        .unwrap();
    for (name, filesz) in [
        ("filesz-64g", 64u64 << 30),
        ("filesz-1t", 1 << 40),
        ("filesz-max", u64::MAX - 4096),
    ] {
        let mut b = good.clone();
        b[ph + 32..ph + 40].copy_from_slice(&filesz.to_le_bytes());
        b[ph + 40..ph + 48].copy_from_slice(&filesz.to_le_bytes());
        let p = write_variant(name, &b);
        let mut cmd = Command::new(runsc());
        cmd.arg("do").arg(&p).stdin(Stdio::null());
        let (out, took) = run_command(cmd, Duration::from_secs(10));
        assert_eq!(out.code, 126, "{name}: {}", out.stderr);
        assert!(
            out.stderr.contains("not an executable"),
            "{name}: {}",
            out.stderr
        );
        assert!(took < Duration::from_secs(2), "{name} took {took:?}");
    }
}
