//! The foundation of the multi-task kernel: stub death reaches sleeping
//! tasks, signals sent to stubs from outside are not the guest's, the
//! sentry cannot be followed by a tracer without saying so, and busy
//! threads run on different CPUs.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tests::{build_c, run, runsc, start_sandboxed, stubs_of, workspace};

fn program() -> PathBuf {
    build_c(
        &workspace().join("tests/programs/foundation.c"),
        &["-pthread"],
    )
}

fn start(args: &[&str], first: &str) -> std::process::Child {
    start_sandboxed(&program(), args, first)
}

#[test]
fn a_stub_killed_while_its_guest_sleeps_ends_the_sandbox_at_once() {
    let child = start(&["sleep"], "sleeping");
    let t0 = Instant::now();
    let stubs = stubs_of(child.id());
    assert!(!stubs.is_empty());
    // SAFETY: kills a stub process of the sandbox.
    unsafe { libc::kill(stubs[0], libc::SIGKILL) };
    let out = child.wait_with_output().unwrap();
    // The guest would sleep 60 s; the sandbox ends as soon as it notices.
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "the sandbox noticed the dead stub only after {:?}",
        t0.elapsed()
    );
    assert_eq!(out.status.code(), Some(128 + libc::SIGKILL));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("died"), "{err}");
}

#[test]
fn signals_sent_to_stubs_from_outside_are_not_the_guests() {
    let child = start(&["busy", "1"], "busy");
    let stubs = stubs_of(child.id());
    assert!(!stubs.is_empty());
    for _ in 0..20 {
        for &s in &stubs {
            for sig in [libc::SIGWINCH, libc::SIGINT, libc::SIGUSR1, libc::SIGTERM] {
                // SAFETY: signals a stub process of the sandbox.
                unsafe { libc::kill(s, sig) };
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "done\n");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_tracer_following_children_gets_a_clear_error_not_a_hang() {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("strace is not installed; skipped");
        return;
    }
    let t0 = Instant::now();
    let out = Command::new("timeout")
        .args(["60", "strace", "-f", "-o", "/dev/null"])
        .arg(runsc())
        .arg("do")
        .arg(program())
        .arg("busy")
        .arg("0")
        .output()
        .unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(50),
        "runsc hung under strace -f"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(124), "runsc hung under strace -f");
    assert!(
        out.status.success() || err.contains("PTRACE_TRACEME failed"),
        "{err}"
    );
}

#[test]
fn two_busy_threads_run_on_two_cpus() {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if cpus < 2 {
        eprintln!("one CPU: skipped");
        return;
    }
    let r = run(&program(), &["two-threads"], None, true);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Vec<i32> = r
        .stdout
        .trim()
        .strip_prefix("cpus ")
        .unwrap()
        .split(' ')
        .map(|x| x.parse().unwrap())
        .collect();
    assert_ne!(v[0], v[1], "both threads ran on CPU {}", v[0]);
}
