//! Runtime and sentry logs: text or JSON (as containerd's shim reads it),
//! to standard error, `--log` or `--debug-log`.

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

use crate::{Cli, LogFormat};

pub struct Guard;

pub fn init(cli: &Cli) -> std::io::Result<Guard> {
    let path = cli.debug_log.as_ref().or(cli.log.as_ref());
    let level = if cli.debug {
        "debug"
    } else if cli.strace || path.is_some() {
        "info"
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_env("RUNSC_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    // SAFETY: isatty only inspects fd 2.
    let ansi = path.is_none() && unsafe { libc::isatty(2) } == 1;
    let writer: Box<dyn std::io::Write + Send> = match path {
        Some(p) => Box::new(OpenOptions::new().create(true).append(true).open(p)?),
        None => Box::new(std::io::stderr()),
    };
    let writer = Mutex::new(writer);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .with_ansi(ansi);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.without_time().init(),
    }
    Ok(Guard)
}
