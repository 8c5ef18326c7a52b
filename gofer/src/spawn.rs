//! Starting the gofer as a child process.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// One bind mount to serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindMount {
    /// The host directory or file.
    pub host: PathBuf,
    /// Where the sandbox sees it (absolute).
    pub guest: String,
    pub read_only: bool,
}

impl BindMount {
    /// The `--mount` argument for it: `HOST:GUEST[:ro]`.
    pub fn to_arg(&self) -> String {
        let mut s = format!("{}:{}", self.host.display(), self.guest);
        if self.read_only {
            s.push_str(":ro");
        }
        s
    }
}

/// Starts `runsc_exe gofer --root ROOT [--root-rw] [--mount ...] --fd N`
/// as a child holding one end of a new `SOCK_SEQPACKET` pair, and returns
/// the child and the other end, for [`crate::Client::connect`]. The child
/// confines itself before it reads a request, and exits when the socket
/// is closed. Its standard error is inherited (its log).
pub fn start_gofer(
    runsc_exe: &Path,
    root: &Path,
    root_rw: bool,
    mounts: &[BindMount],
) -> io::Result<(Child, OwnedFd)> {
    start_gofer_logging(runsc_exe, root, root_rw, mounts, Stdio::inherit(), &[])
}

/// As [`start_gofer`], with the gofer's standard error (its log) going
/// to `log`, in the format the global flags `log_flags` (e.g.
/// `--log-format json`) ask for: a gofer that outlives its starter must
/// not hold the starter's standard error open.
pub fn start_gofer_logging(
    runsc_exe: &Path,
    root: &Path,
    root_rw: bool,
    mounts: &[BindMount],
    log: Stdio,
    log_flags: &[&str],
) -> io::Result<(Child, OwnedFd)> {
    let (ours, theirs) = crate::wire::socketpair()?;
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new(runsc_exe);
    cmd.args(log_flags).arg("gofer").arg("--root").arg(root);
    if root_rw {
        cmd.arg("--root-rw");
    }
    for m in mounts {
        cmd.arg("--mount").arg(m.to_arg());
    }
    cmd.arg("--fd").arg(fd.to_string());
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    // SAFETY: between fork and exec only fcntl, which is async-signal-safe,
    // on an fd the parent keeps open until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(theirs);
    Ok((child, ours))
}
