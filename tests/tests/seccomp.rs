//! The container's own seccomp profile (OCI `linux.seccomp`), enforced by
//! the sentry on the guest: `runsc do --seccomp-profile FILE`.
//!
//! `tests/programs/seccomp_profile.c` makes system calls that
//! `tests/data/seccomp-test.json` decides (allowed ones, denied ones with
//! chosen errno values, argument rules on 64-bit values, TRACE, LOG, TRAP,
//! KILL and KILL_PROCESS in child processes, a syscall newer than the
//! profile) and prints one line each. Under runc, with the profile in a
//! busybox bundle's `config.json`, and in the sandbox it must print
//! `tests/data/seccomp-test.expected`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tests::{build_c, run_command, runsc, workspace, RunResult, ScratchDir};

fn program() -> PathBuf {
    build_c(
        &workspace().join("tests/programs/seccomp_profile.c"),
        &["-pthread"],
    )
}

fn data(name: &str) -> PathBuf {
    workspace().join("tests/data").join(name)
}

/// `runsc do --seccomp-profile PROFILE PROG ARGS`.
fn run_sandboxed(profile: Option<&Path>, prog: &Path, args: &[&str]) -> RunResult {
    let mut cmd = Command::new(runsc());
    cmd.arg("do");
    if let Some(p) = profile {
        cmd.arg("--seccomp-profile").arg(p);
    }
    cmd.arg(prog).args(args).stdin(Stdio::null());
    run_command(cmd, Duration::from_secs(120)).0
}

/// Runs `prog` under runc as the process of a bundle whose root is a
/// busybox tree holding it, with `seccomp` as `linux.seccomp`. None when
/// runc is not installed.
fn run_under_runc(prog: &Path, seccomp: serde_json::Value) -> Option<RunResult> {
    if !Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return None;
    }
    let dir = ScratchDir::new("seccomp-runc");
    let bundle = dir.0.join("bundle");
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::fs::copy(prog, rootfs.join("prog")).unwrap();
    let spec = Command::new("runc")
        .arg("spec")
        .arg("--bundle")
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        spec.status.success(),
        "runc spec: {}",
        String::from_utf8_lossy(&spec.stderr)
    );
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["/prog"]);
    config["linux"]["seccomp"] = seccomp;
    std::fs::write(&config_path, config.to_string()).unwrap();
    let mut cmd = Command::new("runc");
    cmd.arg("--root")
        .arg(dir.0.join("state"))
        .arg("run")
        .arg("--bundle")
        .arg(&bundle)
        .arg(format!("runsc-seccomp-test-{}", std::process::id()))
        .stdin(Stdio::null());
    Some(run_command(cmd, Duration::from_secs(120)).0)
}

#[test]
fn profile_decides_as_under_runc() {
    let prog = program();
    let expected = std::fs::read_to_string(data("seccomp-test.expected")).unwrap();
    let profile = data("seccomp-test.json");
    let sandbox = run_sandboxed(Some(&profile), &prog, &[]);
    assert_eq!(sandbox.code, 0, "runsc: {}", sandbox.stderr);
    assert!(
        sandbox.stdout == expected,
        "the sandbox and the expected output differ:\n{}sandbox stderr:\n{}",
        tests::diff(&expected, &sandbox.stdout),
        sandbox.stderr
    );
    let seccomp = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    match run_under_runc(&prog, seccomp) {
        None => eprintln!(
            "SKIPPED the runc half of profile_decides_as_under_runc: runc is not installed \
             (apt-get install runc); the sandbox's output was checked against the expected one"
        ),
        Some(native) => {
            assert_eq!(native.code, 0, "runc: {}", native.stderr);
            assert!(
                native.stdout == sandbox.stdout,
                "runc and the sandbox differ:\n{}runc stderr:\n{}",
                tests::diff(&native.stdout, &sandbox.stdout),
                native.stderr
            );
        }
    }
}

#[test]
fn dockers_default_profile_runs_a_busybox_shell() {
    let profile = data("docker-default-seccomp.json");
    let script = "echo hello; echo $((6*7)); busybox uname -s; echo a b | busybox wc -w; \
                  (exit 3); echo $?; busybox ls / >/dev/null && echo listed; \
                  busybox sh -c 'exit 5' & wait $!; echo $?";
    let r = run_sandboxed(
        Some(&profile),
        Path::new("/bin/busybox"),
        &["sh", "-c", script],
    );
    assert_eq!(
        (r.stdout.as_str(), r.code),
        ("hello\n42\nLinux\n2\n3\nlisted\n5\n", 0),
        "stderr: {}",
        r.stderr
    );
    // It is enforced: calls it denies fail with its EPERM, not with what
    // the sentry answers them.
    let prog = program();
    let filtered = run_sandboxed(Some(&profile), &prog, &["docker"]);
    assert_eq!(
        filtered.stdout,
        "getpid: ok\nadd_key: errno 1\nkeyctl: errno 1\nsocket(AF_VSOCK): errno 1\n\
         personality(1): errno 1\npersonality(0xffffffff): ok\n",
        "stderr: {}",
        filtered.stderr
    );
    // The filter is kept across fork and execve.
    let script = format!("{} docker; echo $?", prog.display());
    let execed = run_sandboxed(
        Some(&profile),
        Path::new("/bin/busybox"),
        &["sh", "-c", &script],
    );
    assert_eq!(
        execed.stdout,
        format!("{}0\n", filtered.stdout),
        "{}",
        execed.stderr
    );
    let open = run_sandboxed(None, &prog, &["docker"]);
    assert!(
        open.stdout.contains("personality(1): ok\n") && !open.stdout.contains("errno 1\n"),
        "without the profile: {}",
        open.stdout
    );
}

#[test]
fn profiles_the_sentry_cannot_enforce_fail_before_the_program_runs() {
    let dir = ScratchDir::new("seccomp-refused");
    for (profile, says) in [
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#,
            "SCMP_ACT_NOTIFY cannot be enforced",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is refused",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_MAYBE"}"#,
            "not a seccomp profile",
        ),
    ] {
        let path = dir.0.join("profile.json");
        std::fs::write(&path, profile).unwrap();
        let r = run_sandboxed(Some(&path), Path::new("/bin/busybox"), &["echo", "ran"]);
        assert_eq!(r.code, 125, "{profile}: {r:?}");
        assert!(r.stdout.is_empty(), "{profile}: {r:?}");
        assert!(
            r.stderr.contains(says) && r.stderr.contains("profile.json"),
            "{profile}: {}",
            r.stderr
        );
    }
}
