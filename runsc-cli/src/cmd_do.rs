//! `runsc do`: run one program in a new sandbox.

use std::ffi::OsString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::Cli;

#[derive(Args, Debug)]
pub struct DoArgs {
    /// The sandbox's host name.
    #[arg(long, default_value = "runsc")]
    pub hostname: String,
    /// The program and its arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "PROG [ARGS]..."
    )]
    pub command: Vec<OsString>,
}

/// Why a program cannot be started, with the shell's exit code for it.
struct NotRunnable {
    msg: String,
    code: i32,
}

/// Finds the program as a shell would: a path with a slash as is, else
/// along `PATH`.
fn resolve(prog: &Path) -> Result<PathBuf, NotRunnable> {
    let not_found = || NotRunnable {
        msg: format!(
            "{}: no such file or directory (checked {})",
            prog.display(),
            if prog.as_os_str().as_bytes().contains(&b'/') {
                "the path".to_string()
            } else {
                "PATH".to_string()
            }
        ),
        code: 127,
    };
    if prog.as_os_str().as_bytes().contains(&b'/') {
        return if prog.exists() {
            Ok(prog.to_path_buf())
        } else {
            Err(not_found())
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut first_found = None;
    for dir in std::env::split_paths(&path) {
        let cand = dir.join(prog);
        if let Ok(md) = std::fs::metadata(&cand) {
            if md.is_file() && md.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
            first_found.get_or_insert(cand);
        }
    }
    first_found.ok_or_else(not_found)
}

fn open_program(prog: &Path) -> Result<(std::fs::File, PathBuf), NotRunnable> {
    let path = resolve(prog)?;
    let md = std::fs::metadata(&path).map_err(|e| NotRunnable {
        msg: format!("{}: {e}", path.display()),
        code: 127,
    })?;
    if !md.is_file() || md.permissions().mode() & 0o111 == 0 {
        return Err(NotRunnable {
            msg: format!(
                "{}: permission denied (not an executable regular file; check its mode)",
                path.display()
            ),
            code: 126,
        });
    }
    let f = std::fs::File::open(&path).map_err(|e| NotRunnable {
        msg: format!("{}: {e}", path.display()),
        code: 126,
    })?;
    Ok((f, path))
}

pub fn run(cli: &Cli, args: &DoArgs) -> i32 {
    let prog = Path::new(&args.command[0]);
    let (file, path) = match open_program(prog) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!("cannot run program: {}", e.msg);
            eprintln!("runsc: {}", e.msg);
            return e.code;
        }
    };
    let mut stdio = Vec::new();
    for fd in 0..3 {
        // SAFETY: dup of one of our standard fds; the new fd is ours alone.
        let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        // SAFETY: `d` is a fresh fd from F_DUPFD_CLOEXEC.
        stdio.push((d >= 0).then(|| unsafe { OwnedFd::from_raw_fd(d) }));
    }
    let argv: Vec<Vec<u8>> = args.command.iter().map(|a| a.as_bytes().to_vec()).collect();
    let envp: Vec<Vec<u8>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k.as_bytes().to_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        })
        .collect();
    // What the sentry needs from the host is read here, before it is
    // confined: the program and the standard streams (opened above), the
    // CPU count (affinity and cgroup quota, from /proc and /sys).
    let cpus = std::thread::available_parallelism().ok().map(|n| n.get());
    let test_forbidden_syscall =
        std::env::var_os("RUNSC_TEST_FORBIDDEN_SYSCALL").is_some_and(|v| v == "1");
    let cfg = sentry::BootConfig {
        executable: file,
        exec_path: path.to_string_lossy().into_owned(),
        argv,
        envp,
        stdio,
        hostname: args.hostname.clone(),
        strace: cli.strace,
        platform: match cli.platform {
            crate::PlatformKind::Ptrace => "ptrace".to_string(),
        },
        cpus,
        seccomp: true,
        test_forbidden_syscall,
    };
    crate::confine::run_confined(move || boot(cfg))
}

/// Boots the sentry (in its confined process); returns the exit code.
fn boot(cfg: sentry::BootConfig) -> i32 {
    match sentry::boot(cfg) {
        Ok(status) => status.shell_code(),
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("runsc: {e}");
            match e {
                sentry::BootError::Load { ref source, .. }
                    if source.errno() == sentry::errno::Errno::ENOEXEC =>
                {
                    126
                }
                sentry::BootError::Load { .. } => 127,
                _ => 1,
            }
        }
    }
}
