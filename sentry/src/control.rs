//! The sandbox's control socket: how `runsc start`, `exec`, `kill`, `ps`,
//! `pause`, `resume`, `events` and `wait` reach a running sentry.
//!
//! `runsc create` binds a `SOCK_SEQPACKET` socket in the container's
//! state directory and hands the listening fd to the sentry. Each
//! connection carries one request (a JSON record, with the fds it needs
//! beside it: the standard streams of a process to exec) and gets one
//! reply. Connections are served on their own threads, so a `wait` that
//! blocks until a process exits holds up no other command.
//!
//! The sentry trusts the socket no more than it must: it is reachable
//! only through the state directory (mode 0700, owned by the runtime's
//! user), and every request only acts on the sandbox's own guests.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::errno::Errno;
use crate::kernel::signal::{self, SigInfo};
use crate::kernel::{ExitStatus, Kernel};

/// One request to a sandbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Let the container's first process run (`runsc start`).
    Start,
    /// Send `signal` to process `pid` (0: the first process), or to every
    /// process of the sandbox.
    Signal { pid: i32, all: bool, signal: i32 },
    /// Start a new process in the sandbox; its standard streams (or its
    /// terminal) come as fds beside the request.
    Exec(Box<ProcessSpec>),
    /// Wait until process `pid` (0: the first process) exits; its status.
    Wait { pid: i32 },
    /// The sandbox's processes.
    Processes,
    /// Stop every task of the sandbox where it is (`runsc pause`).
    Pause,
    /// Let them go on.
    Resume,
    /// Accounting for `runsc events --stats`.
    Stats,
}

/// A process to start, as an OCI `process` object says it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProcessSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub groups: Vec<u32>,
    #[serde(default)]
    pub umask: Option<u32>,
    /// (resource, soft, hard).
    #[serde(default)]
    pub rlimits: Vec<(u32, u64, u64)>,
    #[serde(default)]
    pub no_new_privileges: bool,
    /// effective, permitted, inheritable, bounding, ambient.
    #[serde(default)]
    pub capabilities: Option<[u64; 5]>,
    /// The process's streams are one terminal (one fd beside the request)
    /// rather than three fds.
    #[serde(default)]
    pub terminal: bool,
    /// `process.oomScoreAdj`.
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// The program to exec, when it is not `args[0]` (a hook's `path`).
    #[serde(default)]
    pub path: Option<String>,
    /// The host process that waits for this one (`runsc ps --format json`
    /// shows it, as containerd's shim matches exec'd processes by it).
    #[serde(default)]
    pub host_pid: Option<i32>,
    /// The container's seccomp filter, put on the process before it runs.
    #[serde(default)]
    pub seccomp: Option<crate::syscalls::seccomp::GuestFilter>,
}

/// One process, as `runsc ps` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    /// Nanoseconds since the sandbox booted.
    pub started_ns: u64,
    /// CPU time, user and system, in nanoseconds.
    pub cpu_ns: u64,
    pub comm: String,
    pub cmdline: Vec<String>,
    pub threads: usize,
    /// The host process that stands for it, where one does (the waiter
    /// of a process exec'd from outside).
    #[serde(default)]
    pub host_pid: Option<i32>,
}

/// The sandbox's accounting.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub pids: u64,
    pub cpu_user_ns: u64,
    pub cpu_system_ns: u64,
    /// Bytes of the memory file in use (guest memory and file data).
    pub memory_bytes: u64,
}

/// A reply.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Ok,
    Error { message: String },
    Started { pid: i32 },
    Exited { status: i32 },
    Processes { list: Vec<ProcessInfo> },
    Stats { stats: Stats },
}

/// How the control server starts a process in the running sandbox
/// (supplied by the boot code, which knows how to build one).
pub type Spawner =
    dyn Fn(&Arc<Kernel>, &ProcessSpec, Vec<OwnedFd>) -> Result<i32, String> + Send + Sync;

/// The state the server shares between its connections.
pub struct Server {
    kernel: Arc<Kernel>,
    listener: OwnedFd,
    /// The first process, until `start` lets it run.
    init: std::sync::Mutex<Option<crate::kernel::task::Task>>,
    started: std::sync::Mutex<bool>,
    spawner: Box<Spawner>,
    /// Guest pid -> the host process waiting for it.
    host_pids: std::sync::Mutex<std::collections::HashMap<i32, i32>>,
}

impl Server {
    pub fn new(
        kernel: Arc<Kernel>,
        listener: OwnedFd,
        init: crate::kernel::task::Task,
        spawner: Box<Spawner>,
    ) -> Arc<Server> {
        Arc::new(Server {
            kernel,
            listener,
            init: std::sync::Mutex::new(Some(init)),
            started: std::sync::Mutex::new(false),
            spawner,
            host_pids: Default::default(),
        })
    }

    /// Accepts connections for as long as the sandbox lives.
    pub fn serve(self: &Arc<Self>) -> std::io::Result<()> {
        let me = self.clone();
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || loop {
                match accept(me.listener.as_fd()) {
                    Ok(conn) => {
                        let me2 = me.clone();
                        let r = std::thread::Builder::new()
                            .name("control-conn".into())
                            .spawn(move || me2.connection(conn));
                        if let Err(e) = r {
                            tracing::warn!("control: no thread for a connection: {e}");
                        }
                    }
                    Err(e) => {
                        tracing::warn!("control: accept: {e}");
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                }
            })?;
        Ok(())
    }

    fn connection(&self, conn: OwnedFd) {
        let mut buf = vec![0u8; gofer::proto::MAX_MESSAGE];
        let rec = match gofer::wire::recv(conn.as_fd(), &mut buf) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!("control: reading a request: {e}");
                return;
            }
        };
        let reply = match serde_json::from_slice::<Request>(&buf[..rec.len]) {
            Ok(req) => {
                tracing::debug!("control: {req:?}");
                self.handle(req, rec.fds)
            }
            Err(e) => Reply::Error {
                message: format!("a request the sandbox does not understand: {e}"),
            },
        };
        send_reply(conn.as_fd(), &reply);
    }

    fn handle(&self, req: Request, fds: Vec<OwnedFd>) -> Reply {
        match req {
            Request::Start => self.start(),
            Request::Signal { pid, all, signal } => self.signal(pid, all, signal),
            Request::Exec(spec) => match (self.spawner)(&self.kernel, &spec, fds) {
                Ok(pid) => {
                    if let Some(h) = spec.host_pid {
                        let mut m = self.host_pids.lock().unwrap_or_else(|e| e.into_inner());
                        // Forget processes that have gone.
                        let ts = self.kernel.tasks.lock();
                        m.retain(|p, _| ts.procs.contains_key(p));
                        drop(ts);
                        m.insert(pid, h);
                    }
                    Reply::Started { pid }
                }
                Err(message) => Reply::Error { message },
            },
            Request::Wait { pid } => self.wait(if pid == 0 { 1 } else { pid }),
            Request::Processes => {
                let mut list = processes(&self.kernel);
                let m = self.host_pids.lock().unwrap_or_else(|e| e.into_inner());
                for p in &mut list {
                    p.host_pid = m.get(&p.pid).copied();
                }
                Reply::Processes { list }
            }
            Request::Pause => {
                self.kernel.freezer.freeze(&self.kernel);
                Reply::Ok
            }
            Request::Resume => {
                self.kernel.freezer.thaw();
                Reply::Ok
            }
            Request::Stats => Reply::Stats {
                stats: stats(&self.kernel),
            },
        }
    }

    fn start(&self) -> Reply {
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if *started {
            return Reply::Error {
                message: "the container has already been started".into(),
            };
        }
        let Some(task) = self.init.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Reply::Error {
                message: "the container's first process is gone".into(),
            };
        };
        match crate::syscalls::process::spawn(task) {
            Ok(()) => {
                *started = true;
                Reply::Ok
            }
            Err(e) => Reply::Error {
                message: format!("starting the container's first process: {e}"),
            },
        }
    }

    fn signal(&self, pid: i32, all: bool, sig: i32) -> Reply {
        if sig != 0 && signal::valid_signal(sig).is_err() {
            return Reply::Error {
                message: format!("{sig} is not a signal number"),
            };
        }
        let started = *self.started.lock().unwrap_or_else(|e| e.into_inner());
        if !started {
            // The first process has not run: only a signal that ends it
            // whatever it would do (SIGKILL) has an effect, and it ends
            // the sandbox.
            if sig == libc::SIGKILL {
                self.init.lock().unwrap_or_else(|e| e.into_inner()).take();
                let mut ts = self.kernel.tasks.lock();
                ts.init_status = Some(ExitStatus::Signaled(libc::SIGKILL));
                ts.tasks.clear();
                drop(ts);
                self.kernel.all_exited.notify_all();
            }
            return Reply::Ok;
        }
        let pid = if pid == 0 { 1 } else { pid };
        let ts = self.kernel.tasks.lock();
        let targets: Vec<_> = if all {
            ts.procs
                .values()
                .filter(|p| p.zombie.is_none())
                .map(|p| p.tg.clone())
                .collect()
        } else {
            match ts.live(pid) {
                Some(p) => vec![p.tg.clone()],
                None => {
                    return Reply::Error {
                        message: format!("no process {pid} in the sandbox"),
                    }
                }
            }
        };
        if sig == 0 {
            return Reply::Ok;
        }
        for tg in targets {
            // A signal from outside the sandbox's pid namespace reaches
            // its init only if init handles it, or it is SIGKILL or
            // SIGSTOP (Linux's rule for a namespace's init).
            if tg.tgid == 1 && sig != libc::SIGKILL && sig != libc::SIGSTOP {
                let h = tg.action(sig).handler;
                if h == signal::SIG_DFL || h == signal::SIG_IGN {
                    continue;
                }
            }
            self.kernel.send_group_signal_locked(
                &ts,
                &tg,
                SigInfo::from_process(sig, signal::SI_USER, 0, 0),
            );
        }
        Reply::Ok
    }

    fn wait(&self, pid: i32) -> Reply {
        if pid == 1 {
            let mut ts = self.kernel.tasks.lock();
            loop {
                if let Some(s) = ts.init_status {
                    return Reply::Exited {
                        status: s.shell_code(),
                    };
                }
                self.kernel.all_exited.wait(&mut ts);
            }
        }
        let tg = {
            let ts = self.kernel.tasks.lock();
            match ts.procs.get(&pid) {
                Some(p) => p.tg.clone(),
                None => {
                    return Reply::Error {
                        message: format!("no process {pid} in the sandbox"),
                    }
                }
            }
        };
        loop {
            let mut ts = self.kernel.tasks.lock();
            match ts.procs.get(&pid) {
                Some(p) if !Arc::ptr_eq(&p.tg, &tg) => break,
                Some(p) => {
                    if let Some(s) = p.zombie {
                        // A process exec'd from outside has no parent in
                        // the sandbox: this wait reaps it.
                        if p.parent == 0 {
                            ts.procs.remove(&pid);
                        }
                        return Reply::Exited {
                            status: s.shell_code(),
                        };
                    }
                }
                None => break,
            }
            drop(ts);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Reply::Error {
            message: format!("process {pid} was reaped by another waiter"),
        }
    }
}

/// Every live process of the sandbox.
pub fn processes(kernel: &Arc<Kernel>) -> Vec<ProcessInfo> {
    let procs: Vec<(i32, i32, u32, Arc<crate::kernel::task::TaskShared>, usize)> = {
        let ts = kernel.tasks.lock();
        ts.procs
            .iter()
            .filter(|(_, p)| p.zombie.is_none())
            .map(|(pid, p)| (*pid, p.parent, p.uid, p.leader.clone(), p.threads.len()))
            .collect()
    };
    procs
        .into_iter()
        .map(|(pid, ppid, uid, leader, threads)| {
            let snap = leader.snapshot(kernel);
            let cmdline = crate::fsimpl::procfs::cmdline(&snap)
                .split(|&b| b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            let cpu = crate::kernel::timer::process_times(kernel, &leader.tg);
            ProcessInfo {
                pid,
                ppid,
                uid,
                started_ns: leader
                    .start
                    .saturating_duration_since(kernel.boot_time)
                    .as_nanos() as u64,
                cpu_ns: cpu.0 + cpu.1,
                comm: String::from_utf8_lossy(&snap.comm).into_owned(),
                cmdline,
                threads,
                host_pid: None,
            }
        })
        .collect()
}

fn stats(kernel: &Arc<Kernel>) -> Stats {
    let tgs: Vec<_> = {
        let ts = kernel.tasks.lock();
        ts.procs
            .values()
            .filter(|p| p.zombie.is_none())
            .map(|p| p.tg.clone())
            .collect()
    };
    let mut s = Stats {
        pids: tgs.len() as u64,
        memory_bytes: kernel.memory_file.used(),
        ..Default::default()
    };
    for tg in tgs {
        let (u, sy) = crate::kernel::timer::process_times(kernel, &tg);
        s.cpu_user_ns += u;
        s.cpu_system_ns += sy;
    }
    s
}

fn accept(listener: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    loop {
        // SAFETY: accept4 on our listening socket, without an address.
        let fd = unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if fd >= 0 {
            // SAFETY: a new fd from accept4; ours alone.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

fn send_reply(conn: BorrowedFd<'_>, reply: &Reply) {
    let body = serde_json::to_vec(reply).unwrap_or_else(|_| b"{\"reply\":\"ok\"}".to_vec());
    if let Err(e) = gofer::wire::send(conn, &body, &[]) {
        tracing::debug!("control: sending a reply: {e}");
    }
}

/// The client side, for `runsc`: one request on a new connection to the
/// socket at `path`, with `fds` beside it; the reply.
pub fn call(
    path: &std::path::Path,
    req: &Request,
    fds: &[BorrowedFd<'_>],
) -> Result<Reply, String> {
    let sock = connect(path)?;
    let body = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    gofer::wire::send(sock.as_fd(), &body, fds)
        .map_err(|e| format!("sending to the sandbox's control socket: {e}"))?;
    let mut buf = vec![0u8; gofer::proto::MAX_MESSAGE];
    match gofer::wire::recv(sock.as_fd(), &mut buf) {
        Ok(Some(r)) => serde_json::from_slice(&buf[..r.len])
            .map_err(|e| format!("a reply from the sandbox that runsc does not understand: {e}")),
        Ok(None) => Err(
            "the sandbox closed its control connection without a reply (it has \
                         probably exited)"
                .into(),
        ),
        Err(e) => Err(format!("reading the sandbox's reply: {e}")),
    }
}

/// A socket address for `path`; paths longer than `sun_path` allows are
/// reached through the directory's fd (`/proc/self/fd/N/NAME`), so the
/// directory fd must stay open while the address is used.
pub fn socket_addr(path: &std::path::Path) -> Result<(libc::sockaddr_un, Option<OwnedFd>), String> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as u16;
    let bytes = path.as_os_str().as_bytes();
    let (name, dirfd) = if bytes.len() < addr.sun_path.len() {
        (bytes.to_vec(), None)
    } else {
        let dir = path.parent().ok_or("a socket path without a directory")?;
        let file = path.file_name().ok_or("a socket path without a name")?;
        let d = std::fs::File::open(dir).map_err(|e| format!("opening {}: {e}", dir.display()))?;
        let fd = OwnedFd::from(d);
        let mut n = format!("/proc/self/fd/{}/", fd.as_raw_fd()).into_bytes();
        n.extend_from_slice(file.as_bytes());
        if n.len() >= addr.sun_path.len() {
            return Err(format!("the socket name {:?} is too long", file));
        }
        (n, Some(fd))
    };
    for (i, b) in name.iter().enumerate() {
        addr.sun_path[i] = *b as libc::c_char;
    }
    Ok((addr, dirfd))
}

fn connect(path: &std::path::Path) -> Result<OwnedFd, String> {
    let (addr, _dir) = socket_addr(path)?;
    // SAFETY: a new socket; the fd is ours.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fd is the new socket's.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: connect with a sockaddr_un of the right size.
    let rc = unsafe {
        libc::connect(
            sock.as_raw_fd(),
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as u32,
        )
    };
    if rc != 0 {
        return Err(format!(
            "connecting to the sandbox's control socket {}: {} (the sandbox has probably exited)",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(sock)
}

/// Binds and listens on a new control socket at `path`.
pub fn listen(path: &std::path::Path) -> Result<OwnedFd, String> {
    let (addr, _dir) = socket_addr(path)?;
    // SAFETY: a new socket; the fd is ours.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fd is the new socket's.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: bind with a sockaddr_un of the right size, then listen.
    let rc = unsafe {
        let r = libc::bind(
            sock.as_raw_fd(),
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as u32,
        );
        if r == 0 {
            libc::listen(sock.as_raw_fd(), 64)
        } else {
            r
        }
    };
    if rc != 0 {
        return Err(format!(
            "making the control socket {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(sock)
}

impl From<Errno> for Reply {
    fn from(e: Errno) -> Reply {
        Reply::Error {
            message: format!("{e:?}"),
        }
    }
}
