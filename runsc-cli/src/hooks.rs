//! OCI hooks: host programs run at points of the container's life, each
//! given the container's state JSON on its standard input.
//!
//! The container's processes run on the sentry, not in host namespaces,
//! so every hook runs on the host: `prestart`, `createRuntime` and
//! `createContainer` at the end of `create` (in that order), then
//! `startContainer` and `poststart` around `start`, and `poststop` at
//! `delete` (as gVisor runs them).

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
