//! OCI hooks: host programs run at points of the container's life, each
//! given the container's state JSON on its standard input.
//!
//! `prestart`, `createRuntime` and `createContainer` run on the host at
//! the end of `create` (in that order; runc runs createContainer in the
//! container's mount namespace before it pivots, where host paths still
//! resolve); `startContainer` runs *in the sandbox*, as a process of the
//! container (its path is the container's, and a program of the image
//! never runs on the host), just before the first process is let go;
//! `poststart` on the host after it; `poststop` on the host at `delete`,
//! every one of them even when one fails (the spec's rule).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

/// Runs `hooks` in order; the first failure stops them and is returned.
pub fn run(kind: &str, hooks: Option<&Vec<Hook>>, state: &serde_json::Value) -> Result<(), String> {
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        run_one(h, state).map_err(|e| format!("{kind} hook #{i} ({}): {e}", h.path().display()))?;
    }
    Ok(())
}

/// Runs every hook, whatever happens to the others; the failures.
pub fn run_all(kind: &str, hooks: Option<&Vec<Hook>>, state: &serde_json::Value) -> Vec<String> {
    hooks
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, h)| {
            run_one(h, state)
                .err()
                .map(|e| format!("{kind} hook #{i} ({}): {e}", h.path().display()))
        })
        .collect()
}

/// Runs `hooks` in order as processes of the sandbox behind the control
/// socket `sock`; the first failure stops them and is returned.
pub fn run_in_sandbox(
    kind: &str,
    hooks: Option<&Vec<Hook>>,
    state: &serde_json::Value,
    sock: &std::path::Path,
) -> Result<(), String> {
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        run_one_in_sandbox(h, state, sock)
            .map_err(|e| format!("{kind} hook #{i} ({}): {e}", h.path().display()))?;
    }
    Ok(())
}

fn run_one_in_sandbox(
    h: &Hook,
    state: &serde_json::Value,
    sock: &std::path::Path,
) -> Result<(), String> {
    use sentry::control::{ProcessSpec, Reply, Request};
    use std::os::fd::AsFd;
    let path = h.path().to_string_lossy().into_owned();
    let mut args = h.args().clone().unwrap_or_default();
    if args.is_empty() {
        args.push(path.clone());
    }
    let spec = ProcessSpec {
        args,
        env: h.env().clone().unwrap_or_default(),
        cwd: "/".into(),
        path: Some(path),
        ..Default::default()
    };
    // Its input: the state; its output goes nowhere, its errors come back.
    let (in_r, in_w) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let (err_r, err_w) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("/dev/null: {e}"))?;
    let pid = match sentry::control::call(
        sock,
        &Request::Exec(Box::new(spec)),
        &[in_r.as_fd(), null.as_fd(), err_w.as_fd()],
    )? {
        Reply::Started { pid } => pid,
        Reply::Error { message } => return Err(format!("cannot run it: {message}")),
        r => return Err(format!("unexpected reply {r:?}")),
    };
    drop((in_r, err_w, null));
    let mut in_w = in_w;
    let _ = in_w.write_all(state.to_string().as_bytes());
    drop(in_w);
    let errs = std::thread::spawn(move || {
        let mut s = String::new();
        let mut r = err_r;
        let _ = std::io::Read::read_to_string(&mut r, &mut s);
        s
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let sock2 = sock.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(sentry::control::call(&sock2, &Request::Wait { pid }, &[]));
    });
    let limit = h
        .timeout()
        .filter(|&t| t > 0)
        .map(|t| Duration::from_secs(t as u64))
        .unwrap_or(Duration::from_secs(24 * 3600));
    let status = match rx.recv_timeout(limit) {
        Ok(Ok(Reply::Exited { status })) => status,
        Ok(Ok(r)) => return Err(format!("unexpected reply {r:?}")),
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            let _ = sentry::control::call(
                sock,
                &Request::Signal {
                    pid,
                    all: false,
                    signal: libc::SIGKILL,
                },
                &[],
            );
            return Err(format!(
                "timed out after {} s (its timeout)",
                limit.as_secs()
            ));
        }
    };
    if status == 0 {
        return Ok(());
    }
    let err = errs.join().unwrap_or_default();
    Err(format!(
        "exit status {status}{}",
        if err.trim().is_empty() {
            String::new()
        } else {
            format!(": {}", err.trim())
        }
    ))
}

fn run_one(h: &Hook, state: &serde_json::Value) -> Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some(argv0) = args.first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(argv0);
        cmd.args(&args[1..]);
    }
    cmd.env_clear();
    for e in h.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run it: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its input is no error.
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let limit = h
        .timeout()
        .filter(|&t| t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for it: {e}")),
        }
        if limit.is_some_and(|l| start.elapsed() >= l) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "timed out after {} s (its timeout)",
                limit.map(|l| l.as_secs()).unwrap_or(0)
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    Err(format!(
        "{status}{}",
        if err.is_empty() {
            String::new()
        } else {
            format!(": {}", err.trim())
        }
    ))
}
