//! `--compat-report`, `--learn-profile`, `--strace-log` and
//! `--strace-syscalls`: the files are opened here, before the sentry is
//! confined (it can open nothing then), and handed to it at boot; it
//! writes them when the sandbox ends.

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

use sentry::kernel::compat::{syscall_number, Reports};

use crate::Cli;

fn create(path: &Path, what: &str) -> Result<File, String> {
    File::create(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

/// The reports asked for on the command line, their files opened.
pub fn open(cli: &Cli) -> Result<Reports, String> {
    let compat = match &cli.compat_report {
        None => None,
        Some(p) if p.as_os_str() == "-" => {
            // SAFETY: dup of our standard error; the new fd is ours alone.
            let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
            if fd < 0 {
                return Err(format!(
                    "--compat-report -: standard error: {}",
                    std::io::Error::last_os_error()
                ));
            }
            // SAFETY: `fd` is a fresh fd from F_DUPFD_CLOEXEC.
            Some((File::from(unsafe { OwnedFd::from_raw_fd(fd) }), true))
        }
        Some(p) => Some((create(p, "the compatibility report")?, false)),
    };
    let profile = cli
        .learn_profile
        .as_deref()
        .map(|p| create(p, "the learned seccomp profile"))
        .transpose()?;
    let strace_log = cli
        .strace_log
        .as_deref()
        .map(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("the strace log {}: {e}", p.display()))
        })
        .transpose()?;
    let strace_syscalls = cli
        .strace_syscalls
        .as_ref()
        .map(|names| {
            names
                .iter()
                .filter(|n| !n.is_empty())
                .map(|n| {
                    syscall_number(n).ok_or_else(|| {
                        format!("--strace-syscalls: {n:?} is not an x86-64 syscall name")
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(Reports {
        compat,
        profile,
        strace_log,
        strace_syscalls,
    })
}

/// Whether syscalls are traced: `--strace`, or a filter or log for it.
pub fn strace(cli: &Cli) -> bool {
    cli.strace || cli.strace_syscalls.is_some() || cli.strace_log.is_some()
}
