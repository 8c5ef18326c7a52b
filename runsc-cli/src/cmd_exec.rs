//! `runsc exec`: a new process in a running container.
//!
//! Attached, runsc waits for the process and exits with its status.
//! With `--detach`, a host process is left behind that waits for it and
//! exits with its status (what containerd's shim and conmon wait on); its
//! pid goes to `--pid-file`. A process that cannot be started is an error
//! of this command only: the container goes on.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use clap::Args;
use sentry::control::{ProcessSpec, Reply, Request};

use crate::container::{self, State, Status};
use crate::Cli;

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// A runtime-spec `process` object (JSON) to run.
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Do not wait for the process (a host process waits for it).
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Write the pid of the process that waits for it here.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to receive the process's terminal.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Give the process a terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The working directory.
    #[arg(long)]
    pub cwd: Option<String>,
    /// An environment variable (KEY=VALUE); repeatable.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// UID[:GID].
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Supplementary groups.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// A capability to add; repeatable.
    #[arg(short = 'c', long = "cap")]
    pub caps: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Pass this many fds beyond the standard three.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility (no SELinux in the sandbox).
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Accepted for runc compatibility (no AppArmor in the sandbox).
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Accepted for runc compatibility.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Accepted for runc compatibility.
    #[arg(long)]
    pub cgroup: Option<String>,
    pub id: String,
    /// The program and its arguments (unless --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn process_spec(st: &State, args: &ExecArgs) -> Result<ProcessSpec, String> {
    if let Some(p) = &args.process {
        let data = std::fs::read(p)
            .map_err(|e| format!("reading the process file {}: {e}", p.display()))?;
        let proc: oci_spec::runtime::Process = serde_json::from_slice(&data)
            .map_err(|e| format!("the process file {}: {e}", p.display()))?;
        let mut spec = crate::spec::process_spec(&proc);
        if spec.args.is_empty() {
            return Err("the process has no args".into());
        }
        spec.terminal |= args.tty;
        return Ok(spec);
    }
    if args.command.is_empty() {
        return Err("exec needs a command (or --process FILE)".into());
    }
    // As runc: what the container's own process had, with the flags on
    // top.
    let base = crate::spec::load(&st.bundle)
        .ok()
        .and_then(|s| s.process().clone())
        .map(|p| crate::spec::process_spec(&p))
        .unwrap_or_default();
    let mut spec = ProcessSpec {
        args: args.command.clone(),
        env: base.env,
        cwd: args.cwd.clone().unwrap_or(base.cwd),
        uid: base.uid,
        gid: base.gid,
        groups: base.groups,
        umask: base.umask,
        rlimits: base.rlimits,
        no_new_privileges: base.no_new_privileges || args.no_new_privs,
        capabilities: base.capabilities,
        terminal: args.tty,
        oom_score_adj: base.oom_score_adj,
        path: None,
        host_pid: None,
        seccomp: None,
    };
    if spec.cwd.is_empty() {
        spec.cwd = "/".into();
    }
    for e in &args.env {
        let key = e.split('=').next().unwrap_or("");
        spec.env.retain(|x| x.split('=').next() != Some(key));
        spec.env.push(e.clone());
    }
    if let Some(u) = &args.user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u.as_str(), None),
        };
        spec.uid = uid
            .parse()
            .map_err(|_| format!("invalid --user {u:?}: use UID[:GID]"))?;
        if let Some(g) = gid {
            spec.gid = g
                .parse()
                .map_err(|_| format!("invalid --user {u:?}: use UID[:GID]"))?;
        }
    }
    if !args.additional_gids.is_empty() {
        spec.groups = args.additional_gids.clone();
    }
    if !args.caps.is_empty() {
        let mut c = spec.capabilities.unwrap_or([0; 5]);
        for name in &args.caps {
            let n = crate::spec::cap_number(name)
                .ok_or_else(|| format!("unknown capability {name}"))?;
            for set in c.iter_mut().take(4) {
                *set |= 1 << n;
            }
        }
        spec.capabilities = Some(c);
    }
    Ok(spec)
}

pub fn run(cli: &Cli, args: &ExecArgs) -> i32 {
    match exec(cli, args) {
        Ok(code) => code,
        Err(e) => crate::fail(&e),
    }
}

fn exec(cli: &Cli, args: &ExecArgs) -> Result<i32, String> {
    let root = cli.state_root();
    let st = State::load(&root, &args.id)?;
    match st.status() {
        Status::Running | Status::Created => {}
        Status::Paused if args.ignore_paused => {}
        Status::Stopped => {
            return Err(format!(
                "cannot exec in container {}: container not running",
                args.id
            ))
        }
        s => {
            return Err(format!(
                "cannot exec in container {}: it is {}",
                args.id,
                s.as_str()
            ))
        }
    }
    let mut spec = process_spec(&st, args)?;
    // The container's filter binds every process of it.
    spec.seccomp = crate::cmd_create::container_seccomp(&st.bundle)?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    if spec.terminal {
        let sock = args
            .console_socket
            .as_ref()
            .ok_or("a terminal was asked for (--tty or process.terminal) but no --console-socket was given")?;
        fds.push(crate::console::new_pty(sock, None)?);
    } else {
        for fd in 0..3 + args.preserve_fds as i32 {
            // SAFETY: borrows one of our fds for the duration of a dup.
            let b = unsafe { BorrowedFd::borrow_raw(fd) };
            match b.try_clone_to_owned() {
                Ok(o) => fds.push(o),
                Err(_) => {
                    // A closed standard stream: the process gets /dev/null.
                    let n = std::fs::File::open("/dev/null").map_err(|e| e.to_string())?;
                    fds.push(OwnedFd::from(n));
                }
            }
        }
    }
    let sock = container::control_socket(&root, &args.id);
    if !args.detach {
        spec.host_pid = Some(std::process::id() as i32);
        let forwarded = block_forwarded_signals();
        let pid = start_process(&sock, &spec, &fds)?;
        drop(fds);
        forward_signals(forwarded, sock.clone(), pid);
        return wait_process(&sock, pid);
    }
    // Detached: a child of ours starts the process, says how it went on
    // a pipe, then waits for it and exits with its status.
    let mut p = [0i32; 2];
    // SAFETY: pipe2 writes two fds into our array.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both fds are new and ours.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
    // SAFETY: runsc exec is single-threaded here; the child only makes
    // control calls and exits.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if child == 0 {
        drop(rd);
        // SAFETY: a session of its own, away from the caller's terminal.
        unsafe { libc::setsid() };
        spec.host_pid = Some(std::process::id() as i32);
        let code = match start_process(&sock, &spec, &fds) {
            Ok(pid) => {
                drop(fds);
                write_fd(wr.as_fd(), b"ok\n");
                drop(wr);
                redirect_stdio_to_null();
                wait_process(&sock, pid).unwrap_or(255)
            }
            Err(e) => {
                write_fd(wr.as_fd(), format!("{e}\n").as_bytes());
                1
            }
        };
        // SAFETY: ends the child without running the parent's exit code.
        unsafe { libc::_exit(code) };
    }
    drop(wr);
    drop(fds);
    let mut f = std::fs::File::from(rd);
    let mut msg = String::new();
    let _ = std::io::Read::read_to_string(&mut f, &mut msg);
    let msg = msg.trim().to_string();
    if msg != "ok" {
        crate::cmd_create::wait_pid(child);
        return Err(if msg.is_empty() {
            "the process that starts the exec died".into()
        } else {
            msg
        });
    }
    if let Some(pf) = &args.pid_file {
        crate::cmd_create::write_atomic(pf, child.to_string().as_bytes())
            .map_err(|e| format!("writing the pid file {}: {e}", pf.display()))?;
    }
    Ok(0)
}

fn start_process(
    sock: &std::path::Path,
    spec: &ProcessSpec,
    fds: &[OwnedFd],
) -> Result<i32, String> {
    let b: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
    match sentry::control::call(sock, &Request::Exec(Box::new(spec.clone())), &b)? {
        Reply::Started { pid } => Ok(pid),
        Reply::Error { message } => Err(message),
        r => Err(format!("unexpected reply {r:?}")),
    }
}

fn wait_process(sock: &std::path::Path, pid: i32) -> Result<i32, String> {
    match sentry::control::call(sock, &Request::Wait { pid }, &[])? {
        Reply::Exited { status } => Ok(status),
        Reply::Error { message } => Err(message),
        r => Err(format!("unexpected reply {r:?}")),
    }
}

/// Signals an attached `runsc exec` passes on to its process.
const FORWARDED: [i32; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Blocks the forwarded signals in this (still single-threaded) process,
/// so that only the forwarding thread takes them.
fn block_forwarded_signals() -> libc::sigset_t {
    // SAFETY: sigset operations on our own set, then the process mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// A thread that sends each forwarded signal runsc gets to process `pid`
/// of the sandbox.
fn forward_signals(set: libc::sigset_t, sock: PathBuf, pid: i32) {
    std::thread::spawn(move || loop {
        let mut sig = 0;
        // SAFETY: sigwait on a set of blocked signals, into our int.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            return;
        }
        let _ = sentry::control::call(
            &sock,
            &Request::Signal {
                pid,
                all: false,
                signal: sig,
            },
            &[],
        );
    });
}

fn write_fd(fd: BorrowedFd<'_>, b: &[u8]) {
    // SAFETY: a write from our buffer to our pipe.
    unsafe { libc::write(fd.as_raw_fd(), b.as_ptr().cast(), b.len()) };
}

fn redirect_stdio_to_null() {
    if let Ok(n) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            // SAFETY: dup2 of our /dev/null onto a standard fd.
            unsafe { libc::dup2(n.as_raw_fd(), fd) };
        }
    }
}
