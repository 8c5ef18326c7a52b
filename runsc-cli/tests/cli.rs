//! The command line itself: errors a user sees before any sandbox starts.

use std::process::Command;

fn runsc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_runsc"))
}

/// A directory the sandbox sees (its /tmp is its own): under the build's
/// target directory, or /var/tmp when that lies under the host's /tmp.
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_runsc"));
    let base = if exe.starts_with("/tmp") {
        std::path::PathBuf::from("/var/tmp")
    } else {
        exe.parent().unwrap().to_path_buf()
    };
    base.join(format!("{name}-{}", std::process::id()))
}

#[test]
fn missing_program_is_a_clear_error() {
    let out = runsc().args(["do", "/nonexistent/prog"]).output().unwrap();
    assert_eq!(out.status.code(), Some(127));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/prog") && err.contains("no such file"),
        "{err}"
    );
}

#[test]
fn program_not_on_path_is_a_clear_error() {
    let out = runsc()
        .args(["do", "no-such-program-anywhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-program-anywhere"));
}

#[test]
fn non_executable_file_is_refused() {
    let dir = scratch_dir("runsc-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("data.txt");
    std::fs::write(&f, "not a program").unwrap();
    let out = runsc().arg("do").arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(126));
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn executable_that_is_not_elf_gives_enoexec() {
    let dir = scratch_dir("runsc-cli-noexec");
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("garbage");
    std::fs::write(&f, vec![0x7fu8; 200]).unwrap();
    std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = runsc().arg("do").arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(126));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not an executable"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_subcommand_fails() {
    let out = runsc().arg("frobnicate").output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn json_logs_are_what_containerd_reads() {
    let dir = std::env::temp_dir().join(format!("runsc-cli-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("log.json");
    let out = runsc()
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "do", "/nonexistent/prog"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last = text.lines().last().expect("a log line");
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["level"], "error", "{last}");
    assert!(
        v["msg"].as_str().unwrap().contains("/nonexistent/prog"),
        "{last}"
    );
    assert!(v["time"].as_str().unwrap().ends_with('Z'), "{last}");
    std::fs::remove_dir_all(&dir).unwrap();
}
