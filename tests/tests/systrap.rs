//! The systrap platform's security argument (docs/design-notes.md,
//! "systrap"), tested: a guest that takes over its stub — jumps to the
//! stub's own syscall instructions with the registers of a forbidden host
//! syscall, overwrites the shared pages with garbage while another of its
//! threads makes syscalls, flips the shared state words under a running
//! exchange — gets no host syscall, cannot write the read-only control
//! pages, and at worst kills itself: the sentry and the rest of the
//! sandbox go on.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use tests::{build_c, run_command, runsc, workspace, RunResult};

fn program() -> PathBuf {
    build_c(
        &workspace().join("tests/programs/systrap_attack.c"),
        &["-pthread"],
    )
}

fn attack(mode: &str) -> RunResult {
    let mut cmd = Command::new(runsc());
    cmd.arg("--platform=systrap")
        .arg("do")
        .arg(program())
        .arg(mode)
        .stdin(Stdio::null());
    let (r, took) = run_command(cmd, Duration::from_secs(120));
    assert!(
        took < Duration::from_secs(100),
        "{mode} took {took:?}; stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(
        r.code, 0,
        "{mode}: exit {}\n{}\n{}",
        r.code, r.stdout, r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(
        r.stdout.starts_with("found the stub code page\n"),
        "{mode}: {}",
        r.stdout
    );
    r
}

#[test]
fn jumping_to_the_stubs_syscall_instructions_gets_no_host_syscall() {
    let r = attack("jump");
    assert!(
        r.stdout
            .ends_with("jump: syscall sites found, every attempt ended its process\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn garbage_in_the_shared_pages_harms_only_the_guest() {
    let r = attack("scribble");
    assert!(
        r.stdout.ends_with(
            "scribble: control page written: no\n\
             scribble: the attacker found its slots\n\
             scribble: the sandbox goes on (getppid 0)\n"
        ),
        "{}",
        r.stdout
    );
}

#[test]
fn racing_the_state_words_harms_only_the_guest() {
    let r = attack("race");
    assert!(
        r.stdout.ends_with(
            "race: control page written: no\n\
             race: the attacker found its slots\n\
             race: the sandbox goes on (getppid 0)\n"
        ),
        "{}",
        r.stdout
    );
}
