//! What the guest sees in /proc is the sandbox's, never the host's: only
//! its own process, the sandbox's mounts, its own uptime and boot time.
//! These facts differ from a native run by design, so they are checked
//! here rather than by the conformance suite.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tests::{build_c, run, workspace};

fn program() -> PathBuf {
    build_c(&workspace().join("tests/programs/procfs.c"), &[])
}

/// The value after `prefix` on the line that starts with it.
fn line_value<'a>(out: &'a str, prefix: &str) -> Option<&'a str> {
    out.lines().find_map(|l| l.strip_prefix(prefix))
}

#[test]
fn guest_sees_only_its_own_process() {
    let prog = program();
    let r = run(&prog, &["listing"], None, true);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = &r.stdout;
    assert!(out.contains("pids: 1\n"), "{out}");
    assert!(out.contains("self -> 1\n"), "{out}");
    assert!(out.contains("thread-self -> 1/task/1\n"), "{out}");
    assert!(out.contains("tasks: 1\n"), "{out}");
    assert!(
        out.contains("Pid:\t1\n") && out.contains("PPid:\t0\n"),
        "{out}"
    );
    // Its pid 1 is itself: its own command line, not the host's init.
    let want = format!("cmdline of 1: {} listing \n", prog.display());
    assert!(out.contains(&want), "{out}");
    let host_init = std::fs::read("/proc/1/cmdline").unwrap_or_default();
    let host_init: String = String::from_utf8_lossy(&host_init)
        .replace('\0', " ")
        .trim()
        .to_string();
    if !host_init.is_empty() {
        assert!(
            !out.contains(&host_init),
            "the host's init ({host_init}) shows inside:\n{out}"
        );
    }
    assert!(out.contains("processes 1\n"), "{out}");
    assert!(out.contains("procs_running 1\n"), "{out}");
    assert!(
        line_value(out, "loadavg: ").is_some_and(|v| v.ends_with(" 1/1 1")),
        "{out}"
    );
}

#[test]
fn host_pids_are_absent() {
    let mut victim = Command::new("sleep")
        .arg("60")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let me = std::process::id().to_string();
    let other = victim.id().to_string();
    let r = run(&program(), &["probe", &me, &other], None, true);
    victim.kill().unwrap();
    victim.wait().unwrap();
    for pid in [&me, &other] {
        assert!(
            r.stdout.contains(&format!("cmdline of {pid}: -1 ENOENT\n")),
            "host pid {pid} is visible:\n{}",
            r.stdout
        );
        assert!(
            r.stdout.contains(&format!("dir of {pid}: ENOENT\n")),
            "host pid {pid} is visible:\n{}",
            r.stdout
        );
    }
    assert!(!r.stdout.contains("sleep"), "{}", r.stdout);
}

/// The mount points a `/proc/*/mounts` text lists.
fn mount_points(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split(' ').nth(1))
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn mounts_are_the_sandboxs() {
    let r = run(&program(), &["mounts"], None, true);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = &r.stdout;
    let mounts: String = out
        .lines()
        .skip_while(|l| !l.starts_with("mounts: "))
        .take_while(|l| !l.starts_with("mountinfo: "))
        .map(|l| format!("{}\n", l.strip_prefix("mounts: ").unwrap_or(l)))
        .collect();
    let points = mount_points(&mounts);
    let want: BTreeSet<String> = ["/", "/dev", "/dev/shm", "/dev/pts", "/tmp", "/proc", "/sys"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(points, want, "{out}");
    // mountinfo lists the same mounts, with the same points.
    let info: BTreeSet<String> = out
        .lines()
        .skip_while(|l| !l.starts_with("mountinfo: "))
        .take_while(|l| !l.starts_with("mounts of 1: "))
        .filter_map(|l| l.strip_prefix("mountinfo: ").or(Some(l)))
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.to_string())
        .collect();
    assert_eq!(info, want, "{out}");
    // Nothing of the host's mount table: not the test's working
    // directory, not the workspace, not any other host mount point.
    let cwd = std::env::current_dir().unwrap();
    for path in [cwd.display().to_string(), workspace().display().to_string()] {
        assert!(!out.contains(&path), "{path} shows inside:\n{out}");
    }
    let host = std::fs::read_to_string("/proc/self/mounts").unwrap();
    for p in mount_points(&host) {
        if !want.contains(&p) {
            assert!(
                !points.contains(&p) && !info.contains(&p),
                "host mount {p} shows inside:\n{out}"
            );
        }
    }
    for line in host.lines() {
        let source = line.split(' ').next().unwrap_or("");
        if source.starts_with('/') {
            assert!(
                !out.contains(source),
                "host device {source} shows inside:\n{out}"
            );
        }
    }
}

#[test]
fn uptime_and_boot_time_are_the_sandboxs() {
    let started = Instant::now();
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let r = run(&program(), &["listing"], None, true);
    let elapsed = started.elapsed().as_secs_f64();
    let uptime: f64 = line_value(&r.stdout, "uptime: ")
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no uptime:\n{}", r.stdout));
    assert!(
        uptime <= elapsed + 0.5,
        "uptime {uptime}s is longer than the sandbox has run ({elapsed}s)"
    );
    let btime: u64 = line_value(&r.stdout, "btime ")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no btime:\n{}", r.stdout));
    assert!(
        btime + 1 >= wall,
        "boot time {btime} is before the sandbox started ({wall})"
    );
}

#[test]
fn hostname_is_writable_through_proc() {
    let r = run(&program(), &["hostname", "box-7\n"], None, true);
    assert!(r.stdout.contains("nodename=box-7\n"), "{}", r.stdout);
    assert!(r.stdout.contains("hostname: box-7\n"), "{}", r.stdout);
}

#[test]
fn standard_streams_show_no_host_path() {
    let r = run(&program(), &["fds"], None, true);
    for fd in 0..3 {
        assert!(
            r.stdout.contains(&format!("fd {fd} -> host:[{fd}]\n")),
            "{}",
            r.stdout
        );
    }
}
