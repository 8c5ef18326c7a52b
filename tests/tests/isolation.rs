//! Proof that nothing passes through: the guest sees the sandbox's own
//! identity and limits, and what the sentry does not implement fails
//! instead of reaching the host. Bad guest input never crashes the sentry.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use tests::{
    build_c, build_dir, run, run_empty_root_with, run_with, runsc, start_sandboxed, stubs_of,
    workspace,
};

fn program() -> PathBuf {
    build_c(&workspace().join("tests/programs/isolation.c"), &[])
}

#[test]
fn guest_is_pid_1_of_its_own_namespace() {
    let r = run(&program(), &["ids"], None, true);
    assert_eq!(r.stdout, "pid=1 ppid=0 tid=1\n", "{}", r.stderr);
}

#[test]
fn guest_sees_the_sandbox_uname_not_the_hosts() {
    let r = run(&program(), &["uname"], None, true);
    assert!(r.stdout.contains("nodename=runsc\n"), "{}", r.stdout);
    assert!(r.stdout.contains("release=6.6.0\n"), "{}", r.stdout);
    assert!(r.stdout.contains("sysname=Linux\n"));
    let r = run_with(&program(), &["uname"], None, true, &[]);
    assert_eq!(r.code, 0);
    // The host name is the sandbox's to choose.
    let out = Command::new(runsc())
        .args(["do", "--hostname", "box-42"])
        .arg(program())
        .arg("uname")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("nodename=box-42\n"));
}

#[test]
fn guest_has_its_own_rlimits() {
    // Distinctive limits on the runsc process must not show inside.
    let mut cmd = Command::new(runsc());
    cmd.arg("do").arg(program()).arg("rlimit");
    // SAFETY: setrlimit is async-signal-safe; it only affects the child.
    unsafe {
        cmd.pre_exec(|| {
            let core = libc::rlimit {
                rlim_cur: 12345,
                rlim_max: 12345,
            };
            let nofile = libc::rlimit {
                rlim_cur: 777,
                rlim_max: 777,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &core);
            libc::setrlimit(libc::RLIMIT_NOFILE, &nofile);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("core=0/18446744073709551615\n"), "{s}");
    assert!(s.contains("nofile=1024/524288\n"), "{s}");
}

#[test]
fn unimplemented_syscalls_fail_without_touching_the_host() {
    let marker = build_dir().join(format!("marker-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let _ = std::fs::remove_dir(&marker);
    let mut victim = Command::new("sleep")
        .arg("60")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let log = build_dir().join(format!("debug-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let r = run_empty_root_with(
        &program(),
        &["host", marker.to_str().unwrap(), &victim.id().to_string()],
        &["--debug-log", log.to_str().unwrap()],
    );
    // The sandbox's own file tree has none of the host's directories.
    for call in [
        "open",
        "openat",
        "mkdir",
        "open /etc/passwd",
        "stat /bin/busybox",
    ] {
        assert!(
            r.stdout.contains(&format!("{call}: -1 ENOENT\n")),
            "{call} did not fail with ENOENT:\n{}",
            r.stdout
        );
    }
    // Host processes do not exist inside, nor do host programs; what the
    // sentry does not implement fails instead of reaching the host (a
    // packet socket: the family is not supported, as Linux answers for one
    // it was built without).
    for (call, err) in [
        ("kill", "ESRCH"),
        ("execve", "ENOENT"),
        ("socket", "EAFNOSUPPORT"),
    ] {
        assert!(
            r.stdout.contains(&format!("{call}: -1 {err}\n")),
            "{call} did not fail with {err}:\n{}",
            r.stdout
        );
    }
    assert!(!marker.exists(), "the guest created a host file");
    assert!(
        victim.try_wait().unwrap().is_none(),
        "the guest killed a host process"
    );
    victim.kill().unwrap();
    victim.wait().unwrap();
    // The log names what the guest needed.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("unimplemented: socket family AF_PACKET (answered EAFNOSUPPORT)"),
        "{logged}"
    );
}

#[test]
fn garbage_syscalls_do_not_crash_the_sentry() {
    for seed in ["1", "2", "3"] {
        let r = run(&program(), &["fuzz", seed], None, true);
        assert_eq!(r.code, 0, "seed {seed}: exit {}\n{}", r.code, r.stderr);
        assert!(
            r.stdout.ends_with("survived\n"),
            "seed {seed}: {}",
            r.stdout
        );
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
}

#[test]
fn strace_prints_calls_with_arguments_and_results() {
    let r = run_with(&program(), &["ids"], None, true, &["--strace"]);
    assert!(r.stderr.contains("getpid() = 1"), "{}", r.stderr);
    assert!(r.stderr.contains("write(1, "), "{}", r.stderr);
    assert!(
        r.stderr.contains("\"pid=1 ppid=0 tid=1\\n\""),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("exit_group(0)"), "{}", r.stderr);
}

#[test]
fn a_killed_stub_ends_the_sandbox_cleanly() {
    let mut child = start_sandboxed(&program(), &["spin"], "spinning");
    // Under ptrace, the stub process and the stub thread of the one task
    // (a process sharing the stub's memory); under systrap, the stub
    // process alone (its stub threads are threads of it).
    let stubs = stubs_of(child.id());
    for &s in &stubs {
        // SAFETY: kills a stub process the sandbox made.
        unsafe { libc::kill(s, libc::SIGKILL) };
    }
    let want = if tests::platform() == "ptrace" { 2 } else { 1 };
    if stubs.len() != want {
        // Do not leave a spinning sandbox behind a failed test.
        let _ = child.kill();
    }
    assert_eq!(stubs.len(), want, "the stub processes: {stubs:?}");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + libc::SIGKILL));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("lost its platform context"), "{err}");
}

#[test]
fn the_stub_holds_no_host_file_but_the_memory_file() {
    let mut child = start_sandboxed(&program(), &["spin"], "spinning");
    let stub = stubs_of(child.id())[0];
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{stub}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            std::fs::read_link(e.path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let maps = std::fs::read_to_string(format!("/proc/{stub}/maps")).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // Under systrap, also the platform's slots file (the message pages)
    // and the write end of the mapper's completion pipe.
    let systrap = tests::platform() == "systrap";
    let mut want = vec!["/memfd:runsc-memory"];
    if systrap {
        want.extend(["/memfd:runsc-systrap", "pipe:"]);
    }
    assert_eq!(fds.len(), want.len(), "stub fds: {fds:?}");
    for w in want {
        assert!(fds.iter().any(|f| f.starts_with(w)), "{w}: {fds:?}");
    }
    // Nothing of the sentry is mapped in the stub: only guest memory (from
    // the memory file), the stub page, and the vsyscall page (and under
    // systrap the slots of the stub's threads).
    for l in maps.lines() {
        assert!(
            l.contains("/memfd:runsc-memory")
                || (systrap && l.contains("/memfd:runsc-systrap"))
                // The rest of systrap's stub region, reserved, inaccessible.
                || (systrap && l.contains("---p 00000000 00:00 0"))
                || l.contains("[vsyscall]")
                || l.contains("r-xp 00000000 00:00 0"),
            "unexpected mapping in the stub: {l}"
        );
    }
}
