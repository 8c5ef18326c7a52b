//! Real terminal programs against the sandbox's terminals, compared with
//! native runs: an interactive bash with job control driven through tmux
//! (the sandbox's console bridged to tmux's pty), and `script`, which
//! makes a pty inside the sandbox.

use std::process::Command;
use std::time::Duration;

fn have(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Drives `cmd` (a shell command line) in a detached tmux session: sends
/// each of `keys` (a tmux key list, e.g. `["jobs", "Enter"]`) with a pause
/// after it, and returns the pane's text.
fn tmux_session(tag: &str, cmd: &str, keys: &[&[&str]]) -> String {
    let sock = tests::build_dir().join(format!("tmux-{tag}-{}", std::process::id()));
    let s = sock.to_string_lossy().into_owned();
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-S", &s])
            .args(args)
            .output()
            .expect("running tmux")
    };
    let _ = tmux(&["kill-server"]);
    let r = tmux(&["new-session", "-d", "-c", "/", "-x", "100", "-y", "40", cmd]);
    assert!(r.status.success(), "tmux new-session: {r:?}");
    std::thread::sleep(Duration::from_millis(1500));
    for k in keys {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(k);
        tmux(&args);
        std::thread::sleep(Duration::from_millis(700));
    }
    let out = tmux(&["capture-pane", "-p", "-S", "0"]);
    let _ = tmux(&["kill-server"]);
    let _ = std::fs::remove_file(&sock);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Job numbers' pids differ between runs: `[1] 1234` becomes `[1] PID`.
fn without_pids(s: &str) -> String {
    s.lines()
        .map(|l| {
            let mut w = l.split(' ');
            match (w.next(), w.next(), w.next()) {
                (Some(j), Some(p), None)
                    if j.starts_with('[') && p.chars().all(|c| c.is_ascii_digit()) =>
                {
                    format!("{j} PID")
                }
                _ => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An interactive bash on a terminal: a background job, ^Z of a
/// foreground one, jobs, bg, fg and ^C behave as on Linux.
#[test]
fn bash_job_control_in_tmux() {
    if !have("tmux") || !have("bash") {
        eprintln!("SKIPPED: tmux or bash is not installed (apt-get install tmux)");
        return;
    }
    let keys: &[&[&str]] = &[
        &["sleep 100 &", "Enter"],
        &["jobs", "Enter"],
        &["sleep 200", "Enter"],
        &["C-z"],
        &["jobs", "Enter"],
        &["bg", "Enter"],
        &["fg %1", "Enter"],
        &["C-c"],
        &["jobs; echo done", "Enter"],
    ];
    let bash = "env -i PS1='$ ' TERM=xterm PATH=/usr/bin:/bin bash --norc --noprofile -i";
    let native = tmux_session("native", bash, keys);
    let runsc = tests::runsc();
    let sandboxed = tmux_session("sandbox", &format!("{} do {bash}", runsc.display()), keys);
    assert!(
        native.contains("Stopped") && native.contains("done"),
        "the native run did not go as planned:\n{native}"
    );
    assert_eq!(
        without_pids(&sandboxed),
        without_pids(&native),
        "\n--- sandbox:\n{sandboxed}\n--- native:\n{native}"
    );
}

/// `script` makes a pseudo-terminal inside the sandbox and runs a shell
/// on it: its name, and `stty -a`'s view of its settings, as natively.
#[test]
fn script_makes_a_pty() {
    if !have("script") {
        eprintln!("SKIPPED: script is not installed (apt-get install bsdutils)");
        return;
    }
    let cmd = "script -qec 'tty; stty -a' /dev/null";
    let run = |sandboxed: bool| {
        let mut c = if sandboxed {
            let mut c = Command::new(tests::runsc());
            c.args(["do", "sh", "-c", cmd]);
            c
        } else {
            let mut c = Command::new("sh");
            c.args(["-c", cmd]);
            c
        };
        c.stdin(std::process::Stdio::null());
        let (r, _) = tests::run_command(c, Duration::from_secs(60));
        assert_eq!(r.code, 0, "{r:?}");
        // The pty's number is the kernel's choice.
        r.stdout
            .replace("\r\n", "\n")
            .lines()
            .map(|l| {
                if l.starts_with("/dev/pts/") {
                    "/dev/pts/N".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let native = run(false);
    let sandboxed = run(true);
    assert!(native.contains("/dev/pts/N"), "{native}");
    assert_eq!(sandboxed, native);
}
