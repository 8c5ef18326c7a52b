//! The sentry: the application kernel that answers every system call of
//! the sandboxed program.
//!
//! Layout (see DESIGN.md): `kernel` (tasks, thread groups, credentials,
//! limits, signal state, futexes), `mm` (memory file, memory manager,
//! checked guest copies), `loader` (ELF), `vfs` (file descriptions, fd
//! tables, file kinds), `syscalls` (the table and one file per family).

pub mod confine;
pub mod console;
pub mod control;
pub mod errno;
pub mod fsimpl;
pub mod hostcall;
pub mod kernel;
pub mod loader;
pub mod mm;
pub mod net;
pub mod sync;
pub mod syscalls;
pub mod vdso;
pub mod vfs;

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use platform::ptrace::PtracePlatform;
use platform::Platform;

use kernel::creds::Credentials;
use kernel::limits::Limits;
use kernel::task::{Task, ThreadGroup};
pub use kernel::ExitStatus;
use kernel::Kernel;
use mm::{MemoryFile, MemoryManager};
use vfs::host::HostFile;
use vfs::{FdTable, FileDescription};

/// What the sandbox runs.
pub struct BootConfig {
    /// The program, opened by the caller, for a sandbox without a gofer
    /// (an empty root), with the name /proc/self/exe shows for it (its
    /// absolute path, symbolic links resolved). `None`: the program is
    /// found in the sandbox's own file system, at `exec_path` (or along
    /// `PATH` when it has no slash).
    pub executable: Option<(std::fs::File, String)>,
    /// Its path as the guest sees it (`AT_EXECFN`).
    pub exec_path: String,
    /// The gofer serving the root (its export for `/`) and bind mounts
    /// (the other exports, at their guest paths); `None`: the root is an
    /// empty tmpfs.
    pub gofer: Option<Arc<gofer::Client>>,
    /// The working directory the program starts in (`/` if it does not
    /// exist in the sandbox).
    pub cwd: Vec<u8>,
    /// The user and group the program runs as (`runsc do`: the caller's).
    pub user: (u32, u32),
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// Host fds that become the guest's fds 0, 1, 2, ...
    /// (`None`: that fd is closed in the guest, or with a console, for
    /// 0, 1 and 2, the console's terminal).
    pub stdio: Vec<Option<OwnedFd>>,
    /// A host terminal for the sandbox's console: the replica of a pty the
    /// runtime made for `--console-socket`, or the user's own terminal
    /// (`runsc do`). The first process gets a terminal of the sandbox's
    /// own, bridged to it ([`console`]), as its fds 0, 1 and 2 where
    /// `stdio` has no host fd, and as the controlling terminal of its
    /// session. The host terminal is raw until the sandbox ends. SIGWINCH
    /// sent to the sentry resizes the sandbox's terminal to the host's.
    pub console: Option<OwnedFd>,
    pub hostname: String,
    /// Log every guest syscall.
    pub strace: bool,
    /// How guest code runs: the platform's name ("ptrace").
    pub platform: String,
    /// The number of CPUs the sandbox shows, read from the host before
    /// the sentry was confined (None: the sentry asks the host itself).
    pub cpus: Option<usize>,
    /// Install the seccomp filter of [`confine`] once booted.
    pub seccomp: bool,
    /// For tests: once the filter is in, make a host syscall it forbids.
    pub test_forbidden_syscall: bool,
    /// The container's own seccomp filter (OCI `linux.seccomp`), put on
    /// the first process before it runs ([`syscalls::seccomp::install`]).
    pub guest_seccomp: Option<syscalls::seccomp::GuestFilter>,
    /// The first process's `/proc/self/oom_score_adj`.
    pub oom_score_adj: Option<i32>,
    /// The sandbox's NIS domain name (`None`: "(none)").
    pub domainname: Option<String>,
    /// The first process's supplementary groups, umask, limits
    /// ((resource, soft, hard)), no_new_privs and capability sets
    /// (effective, permitted, inheritable, bounding, ambient; `None`:
    /// what Linux gives a process of its uid).
    pub groups: Vec<u32>,
    pub umask: Option<u32>,
    pub rlimits: Vec<(u32, u64, u64)>,
    pub no_new_privileges: bool,
    pub capabilities: Option<[u64; 5]>,
    /// What the file tree is made of.
    pub tree: Tree,
    /// An OCI container's control socket: the first process is loaded,
    /// then waits for `start` on it.
    pub control: Option<Control>,
    /// The compatibility report, learned seccomp profile and strace log
    /// asked for, and the strace filter.
    pub reports: kernel::compat::Reports,
    /// The network stack's mode and the host interfaces runsc took over.
    pub network: net::NetBoot,
}

/// The sandbox's file tree.
#[derive(Debug, Default)]
pub enum Tree {
    /// `runsc do`: the root from the gofer (under an in-memory overlay
    /// when read-only) or an empty tmpfs, the gofer's other exports at
    /// their paths, and the sandbox's own /dev, /proc, /sys and /tmp.
    #[default]
    Do,
    /// An OCI container's: the root, then config.json's mounts in order,
    /// then its masked and read-only paths.
    Oci(OciTree),
}

#[derive(Debug, Default)]
pub struct OciTree {
    /// `root.readonly`.
    pub root_readonly: bool,
    pub mounts: Vec<MountSpec>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
}

/// One entry of config.json's `mounts`, as the sentry makes it.
#[derive(Clone, Debug)]
pub struct MountSpec {
    pub destination: String,
    pub kind: MountKind,
    pub flags: vfs::mount::MountFlags,
}

#[derive(Clone, Debug)]
pub enum MountKind {
    /// A bind mount: the gofer's export with this index.
    Bind { export: usize },
    /// A file system of the sentry (`tmpfs`, `proc`, `sysfs`, `devpts`,
    /// ...), with its mount options (`size=64m,mode=755`). A tmpfs on
    /// `/dev` becomes the sandbox's devfs.
    Fs {
        fstype: String,
        source: String,
        data: String,
    },
}

/// The control socket of an OCI sandbox.
pub struct Control {
    /// The listening socket (`control::listen`).
    pub listener: OwnedFd,
    /// Where boot reports: "ok" once the first process is loaded, or what
    /// failed.
    pub ready: OwnedFd,
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("creating the memory file: {0}")]
    MemoryFile(std::io::Error),
    #[error("starting the platform: {0}")]
    Platform(#[from] platform::PlatformError),
    #[error("cannot run {path}: {source}")]
    Load {
        path: String,
        source: loader::LoadError,
    },
    #[error("cannot run {path}: {}", exec_reason(*errno))]
    Exec { path: String, errno: errno::Errno },
    #[error("building the sandbox's file tree: {0}")]
    Tree(String),
    #[error("the sentry's task thread failed: {0}")]
    Thread(String),
    #[error("unknown platform {0:?} (this sentry has: ptrace, systrap)")]
    UnknownPlatform(String),
    #[error("confining the sentry: {0}")]
    Confine(#[from] confine::ConfineError),
    #[error("installing the container's seccomp filter: {0}")]
    GuestSeccomp(errno::Errno),
}

/// Why execve of the first program failed, as a user reads it.
fn exec_reason(e: errno::Errno) -> String {
    use errno::Errno;
    match e {
        Errno::ENOENT => "no such file or directory in the sandbox (checked the path, or PATH                           for a name without a slash)"
            .into(),
        Errno::EACCES => {
            "permission denied (not an executable regular file; check its mode and mount)".into()
        }
        Errno::ENOEXEC => "not an executable this kernel can run (exec format error)".into(),
        Errno::ELIBBAD => "its interpreter (ld.so) is not an executable".into(),
        e => e.to_string(),
    }
}

/// Boots a sandbox running one program and waits for it to exit.
pub fn boot(mut cfg: BootConfig) -> Result<ExitStatus, BootError> {
    // SIGWINCH stays pending for a signalfd (the console's size follows
    // the host's): blocked before any other thread starts, so that every
    // thread inherits the mask and none is interrupted by it.
    hostcall::block_signal(libc::SIGWINCH);
    let winch = match cfg.console {
        Some(_) => Some(
            hostcall::signalfd(libc::SIGWINCH)
                .map_err(|e| BootError::Tree(format!("making the console's signalfd: {e}")))?,
        ),
        None => None,
    };
    confine::prepare(cfg.cpus.unwrap_or(1));
    let mf = Arc::new(MemoryFile::new().map_err(BootError::MemoryFile)?);
    let platform: Arc<dyn Platform> = match cfg.platform.as_str() {
        "ptrace" => Arc::new(PtracePlatform::new(mf.fd())?),
        "systrap" => Arc::new(platform::systrap::SystrapPlatform::new(mf.fd())?),
        other => return Err(BootError::UnknownPlatform(other.to_string())),
    };
    let mut kernel = Kernel::new(
        platform.clone(),
        mf.clone(),
        cfg.hostname.clone(),
        cfg.strace,
    );
    if let Some(n) = cfg.cpus {
        kernel.cpus = n.max(1);
    }
    kernel.compat = kernel::compat::CompatState::new(std::mem::take(&mut cfg.reports));
    let host_net = cfg.network.mode == net::NetworkMode::Host;
    kernel.sockets.init_net(std::mem::take(&mut cfg.network));
    let kernel = Arc::new(kernel);
    if cfg.seccomp {
        // The vDSO and its timekeeper (which calibrates the TSC) before
        // the filter, so that the first stub process is forked under it.
        mf.vdso()
            .map_err(|e| BootError::Tree(format!("making the vDSO: {e}")))?;
        // Under the filter a panic cannot symbolize a backtrace (that opens
        // files): say where it happened, and nothing more.
        std::panic::set_hook(Box::new(|info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("?");
            tracing::error!("sentry thread {name} panicked at {at}: {msg}");
            eprintln!("runsc: sentry thread {name} panicked at {at}: {msg}");
        }));
        confine::install(mf.fd(), host_net)?;
        if cfg.test_forbidden_syscall {
            confine::make_forbidden_syscall();
        }
    }
    let control = cfg.control.take();
    let console_fd = cfg.console.take();
    let (task, console) = match start_init(kernel.clone(), cfg, console_fd.map(|fd| (fd, winch))) {
        Ok(t) => t,
        Err(e) => {
            if let Some(c) = &control {
                report_ready(&c.ready, &e.to_string());
            }
            kernel.compat.finish();
            return Err(e);
        }
    };
    match control {
        None => syscalls::process::spawn(task).map_err(|e| BootError::Thread(e.to_string()))?,
        Some(c) => {
            let server =
                control::Server::new(kernel.clone(), c.listener, task, Box::new(exec_process));
            server
                .serve()
                .map_err(|e| BootError::Thread(e.to_string()))?;
            report_ready(&c.ready, "ok");
        }
    }
    let status = kernel.wait_for_init();
    if let Some(c) = console {
        c.finish();
    }
    for (what, n) in kernel.unimplemented_counts() {
        tracing::info!("unimplemented {what}: {n} calls");
    }
    kernel.compat.finish();
    Ok(status)
}

/// Tells `runsc create` how boot went (one line on the ready pipe).
fn report_ready(fd: &OwnedFd, msg: &str) {
    let mut line = msg.replace('\n', " ");
    line.push('\n');
    // SAFETY: a write from our buffer to the pipe runsc gave us.
    unsafe { libc::write(fd.as_raw_fd(), line.as_ptr().cast(), line.len()) };
}

/// Applies a process's credentials extras: groups and capabilities.
fn process_creds(uid: u32, gid: u32, groups: &[u32], caps: Option<[u64; 5]>) -> Credentials {
    let mut creds = Credentials::new(uid, gid);
    creds.groups = groups.to_vec();
    if let Some([effective, permitted, inheritable, bounding, ambient]) = caps {
        creds.set_capabilities(kernel::creds::CapSets {
            effective,
            permitted,
            inheritable,
            bounding,
            ambient,
        });
    }
    creds
}

/// Limits of a new process: Linux's defaults with `rlimits` applied.
fn process_limits(rlimits: &[(u32, u64, u64)]) -> Result<Limits, String> {
    let mut l = Limits::default();
    for &(res, cur, max) in rlimits {
        l.set(res, kernel::limits::Limit { cur, max }, true)
            .map_err(|e| format!("rlimit {res} ({cur}, {max}): {e:?}"))?;
    }
    Ok(l)
}

/// Starts a process in a running sandbox (`runsc exec`): a new session
/// with no parent inside the sandbox, in the first process's mount
/// namespace and root; `fds` are its standard streams (or its terminal,
/// used for all three). Returns its pid.
fn exec_process(
    kernel: &Arc<Kernel>,
    spec: &control::ProcessSpec,
    fds: Vec<OwnedFd>,
) -> Result<i32, String> {
    let init_fs = {
        let ts = kernel.tasks.lock();
        let p = ts
            .live(1)
            .ok_or("the container's first process has exited")?;
        let fs = p.leader.view.lock().fs.clone();
        fs
    };
    let fs_context = init_fs.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let creds = process_creds(spec.uid, spec.gid, &spec.groups, spec.capabilities);
    let limits = process_limits(&spec.rlimits)?;
    let mut host_terminal = None;
    let stdio: Vec<Option<OwnedFd>> = if spec.terminal {
        host_terminal = Some(
            fds.into_iter()
                .next()
                .ok_or("no terminal came with the request")?,
        );
        Vec::new()
    } else {
        fds.into_iter().map(Some).collect()
    };
    let argv: Vec<Vec<u8>> = spec.args.iter().map(|a| a.as_bytes().to_vec()).collect();
    let envp: Vec<Vec<u8>> = spec.env.iter().map(|a| a.as_bytes().to_vec()).collect();
    let path = match &spec.path {
        Some(p) => p.clone(),
        None => spec
            .args
            .first()
            .cloned()
            .ok_or("no program to run (empty args)")?,
    };
    let mut task = new_process(
        kernel.clone(),
        NewProcess {
            creds,
            limits,
            stdio,
            fs_context,
            exec_path: &path,
            parent: 0,
            umask: spec.umask,
            no_new_privileges: spec.no_new_privileges,
            oom_score_adj: spec.oom_score_adj,
        },
    )
    .map_err(|e| e.to_string())?;
    let pid = task.tid;
    // A terminal of the sandbox's own, bridged to the host's, as the
    // process's streams and the controlling terminal of its session.
    let console = match host_terminal {
        Some(host) => {
            let made = console::attach_console(kernel, host, spec.uid, spec.gid).and_then(
                |(console, replica)| {
                    for fd in 0..3 {
                        task.fds.install_at(fd, replica.clone(), false, u64::MAX)?;
                    }
                    console.set_controlling(kernel, pid)?;
                    Ok(console)
                },
            );
            match made {
                Ok(c) => Some(c),
                Err(e) => {
                    drop_unstarted(kernel, &task);
                    return Err(format!("making the process's terminal: {e:?}"));
                }
            }
        }
        None => None,
    };
    set_cwd(&task, spec.cwd.as_bytes());
    if let Err(errno) = exec_first(&mut task, &path, argv, envp) {
        let why = match errno {
            errno::Errno::ENOENT => "no such file or directory".to_string(),
            errno::Errno::EACCES => "permission denied".to_string(),
            e => format!("{e:?}"),
        };
        drop_unstarted(kernel, &task);
        return Err(format!("exec of {path} in the sandbox: {why}"));
    }
    if let Some(f) = &spec.seccomp {
        if let Err(e) = syscalls::seccomp::install(&mut task, f) {
            drop_unstarted(kernel, &task);
            return Err(format!("installing the container's seccomp filter: {e:?}"));
        }
    }
    syscalls::process::spawn(task).map_err(|e| format!("starting {path}: {e}"))?;
    if let Some(c) = console {
        // The bridge lives as long as the process. Nothing tells the
        // sentry when the client resizes an exec's terminal (containerd's
        // shim and conmon resize the host pty's master themselves): its
        // size is followed by looking.
        let k = kernel.clone();
        let _ = std::thread::Builder::new()
            .name("console-exec".into())
            .spawn(move || {
                while k
                    .tasks
                    .lock()
                    .procs
                    .get(&pid)
                    .is_some_and(|p| p.zombie.is_none())
                {
                    c.resync_size();
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                c.finish();
            });
    }
    Ok(pid)
}

/// Forgets a process that never ran.
fn drop_unstarted(kernel: &Arc<Kernel>, task: &Task) {
    let mut ts = kernel.tasks.lock();
    ts.tasks.remove(&task.tid);
    ts.procs.remove(&task.tid);
}

/// What a new process (the first, or one exec'd from outside) is made of.
struct NewProcess<'a> {
    creds: Credentials,
    limits: Limits,
    stdio: Vec<Option<OwnedFd>>,
    fs_context: vfs::path::FsContext,
    exec_path: &'a str,
    /// Its parent in the sandbox (0: none).
    parent: i32,
    umask: Option<u32>,
    no_new_privileges: bool,
    oom_score_adj: Option<i32>,
}

/// Makes a process with an empty address space, registered in the pid
/// namespace as the leader of its own session; the caller execs its
/// program into it.
fn new_process(kernel: Arc<Kernel>, np: NewProcess<'_>) -> Result<Task, BootError> {
    let platform = kernel.platform.clone();
    let aspace = platform.new_address_space()?;
    let mm = Arc::new(MemoryManager::new(
        kernel.memory_file.clone(),
        aspace.clone(),
        platform.max_user_address(),
    ));
    let tid = kernel
        .tasks
        .lock()
        .alloc_pid()
        .map_err(|e| BootError::Thread(e.to_string()))?;
    let tg = Arc::new(ThreadGroup::new(tid, np.limits));
    if let Some(m) = np.umask {
        *tg.umask.lock().unwrap_or_else(|e| e.into_inner()) = m & 0o777;
    }
    if let Some(a) = np.oom_score_adj {
        tg.oom_score_adj
            .store(a.clamp(-1000, 1000), std::sync::atomic::Ordering::Relaxed);
    }
    kernel::watch_address_space(&kernel, &mm);
    let fds = Arc::new(FdTable::default());
    install_stdio(&kernel, &fds, np.stdio);
    let mut ctx = platform.new_context();
    ctx.set_fp_state(platform.initial_fp_state());
    let regs = platform.initial_registers();
    let comm = np
        .exec_path
        .rsplit('/')
        .next()
        .unwrap_or("")
        .bytes()
        .take(15)
        .collect();
    let creds = np.creds;
    let mut task = Task::new(
        kernel.clone(),
        tg.clone(),
        tid,
        regs,
        mm,
        fds,
        creds.clone(),
        ctx,
        comm,
        Arc::new(std::sync::Mutex::new(np.fs_context)),
        0,
    );
    task.prctl.no_new_privs = np.no_new_privileges;
    let mut ts = kernel.tasks.lock();
    ts.tasks.insert(tid, task.shared.clone());
    ts.procs.insert(
        tid,
        kernel::process::Process {
            tg,
            leader: task.shared.clone(),
            parent: np.parent,
            children: Default::default(),
            pgid: tid,
            sid: tid,
            threads: [tid].into_iter().collect(),
            exit_signal: if np.parent == 0 { 0 } else { libc::SIGCHLD },
            zombie: None,
            report: None,
            uid: creds.uid,
            execed: false,
        },
    );
    drop(ts);
    task.publish();
    Ok(task)
}

/// Host fds that become the guest's fds 0, 1, 2, ...
fn install_stdio(kernel: &Arc<Kernel>, fds: &FdTable, stdio: Vec<Option<OwnedFd>>) {
    for (i, fd) in stdio.into_iter().enumerate() {
        let Some(fd) = fd else { continue };
        let flags = hostcall::fd_status_flags(fd.as_raw_fd()).unwrap_or(libc::O_RDWR) as u32;
        let name = format!("host:[{i}]");
        let file = FileDescription::new(
            flags,
            Box::new(HostFile::new(fd, name, &kernel.host_events)),
        );
        fds.install_at(i as i32, file, false, u64::MAX)
            .expect("installing a standard stream");
    }
}

/// The host console and the signalfd of the sentry's SIGWINCH.
type ConsoleFds = (OwnedFd, Option<OwnedFd>);

fn start_init(
    kernel: Arc<Kernel>,
    cfg: BootConfig,
    console: Option<ConsoleFds>,
) -> Result<(Task, Option<console::Console>), BootError> {
    if let Some(d) = &cfg.domainname {
        kernel
            .uts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .domainname = d.clone();
    }
    let root_readonly = matches!(&cfg.tree, Tree::Oci(t) if t.root_readonly);
    let (root_fs, root_dir) = match &cfg.gofer {
        // A read-only export always gets an in-memory upper layer: for
        // `do`, the sandbox's own changes; for a read-only container root,
        // the mount points its config.json needs (the root mount is made
        // read-only once they are there).
        Some(client) => root_of(&kernel, client)
            .map_err(|e| BootError::Tree(format!("the root file system: {e:?}")))?,
        None => fsimpl::tmpfs::new_tmpfs(&kernel.vfs, &kernel.memory_file, "none", 0o755, 0, 0),
    };
    let (mounts, root) = vfs::mount::MountNamespace::new(root_fs, root_dir);
    let fs_context = vfs::path::FsContext {
        mounts,
        root: root.clone(),
        cwd: root,
    };
    let limits = process_limits(&cfg.rlimits).map_err(BootError::Tree)?;
    // With a console, the standard streams without a host fd are its.
    let console_fds: Vec<i32> = (0..3)
        .filter(|&i| cfg.stdio.get(i as usize).is_none_or(|f| f.is_none()))
        .collect();
    let creds = process_creds(cfg.user.0, cfg.user.1, &cfg.groups, cfg.capabilities);
    let mut task = new_process(
        kernel.clone(),
        NewProcess {
            creds: creds.clone(),
            limits,
            stdio: cfg.stdio,
            fs_context,
            exec_path: &cfg.exec_path,
            parent: 0,
            umask: cfg.umask,
            no_new_privileges: cfg.no_new_privileges,
            oom_score_adj: cfg.oom_score_adj,
        },
    )?;
    // A program handed in as an open host file: the sandbox's first open
    // file (/proc/self/exe leads to it, and exec of it works). Otherwise
    // the program is exec'd from the sandbox's file system once the tree
    // is built.
    let mut loaded = false;
    if let Some((executable, name)) = cfg.executable {
        let exe_fd = OwnedFd::from(executable);
        let exe = FileDescription::new(
            libc::O_RDONLY as u32,
            Box::new(HostFile::new(exe_fd, name, &kernel.host_events)),
        );
        let pages = exe.imp.mappable(&exe, &kernel.memory_file);
        let image = loader::load(
            &task.mm,
            loader::Executable { file: &*exe, pages },
            None,
            &cfg.exec_path,
            &cfg.argv,
            &cfg.envp,
            &creds,
            task.tg.mm_limits(),
        )
        .map_err(|source| BootError::Load {
            path: cfg.exec_path.clone(),
            source,
        })?;
        task.mm.set_exe(exe);
        task.regs.rip = image.entry;
        task.regs.rsp = image.stack_pointer;
        loaded = true;
    }
    match &cfg.tree {
        Tree::Do => {
            build_tree(&task).map_err(|e| BootError::Tree(e.to_string()))?;
            if let Some(client) = &cfg.gofer {
                bind_mounts(&task, client).map_err(|e| BootError::Tree(e.to_string()))?;
            }
        }
        Tree::Oci(tree) => oci_tree(&task, cfg.gofer.as_ref(), tree).map_err(BootError::Tree)?,
    }
    let console = match console {
        Some((host, winch)) => {
            let err = |e: errno::Errno| BootError::Tree(format!("making the console: {e:?}"));
            let (console, replica) =
                console::attach(&kernel, host, cfg.user.0, cfg.user.1, winch).map_err(err)?;
            for &fd in &console_fds {
                task.fds
                    .install_at(fd, replica.clone(), false, u64::MAX)
                    .map_err(err)?;
            }
            console.set_controlling(&kernel, task.tid).map_err(err)?;
            Some(console)
        }
        None => None,
    };
    if root_readonly {
        let root = task
            .fs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .root
            .clone();
        root.mount
            .flags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .readonly = true;
    }
    set_cwd(&task, &cfg.cwd);
    if !loaded {
        exec_first(&mut task, &cfg.exec_path, cfg.argv, cfg.envp).map_err(|errno| {
            BootError::Exec {
                path: cfg.exec_path.clone(),
                errno,
            }
        })?;
    }
    if let Some(f) = &cfg.guest_seccomp {
        syscalls::seccomp::install(&mut task, f).map_err(BootError::GuestSeccomp)?;
    }
    Ok((task, console))
}

/// An OCI container's tree (see [`Tree::Oci`]).
fn oci_tree(t: &Task, gofer: Option<&Arc<gofer::Client>>, tree: &OciTree) -> Result<(), String> {
    use vfs::inode::NewNode;
    let ctx = t.fs.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mf = &t.kernel.memory_file;
    for m in &tree.mounts {
        let what = |e: errno::Errno| format!("mount on {}: {e:?}", m.destination);
        let dir_node = NewNode::Directory { mode: 0o755 };
        match &m.kind {
            MountKind::Bind { export } => {
                let client = gofer.ok_or("a bind mount without a gofer")?;
                let info = client
                    .mounts()
                    .get(*export)
                    .ok_or_else(|| format!("no gofer export {export}"))?;
                let node = if info.attr.is_dir() {
                    dir_node
                } else {
                    NewNode::Node {
                        mode: libc::S_IFREG | 0o644,
                        rdev: 0,
                    }
                };
                let at = mount_point(t, &ctx.root, m.destination.as_bytes(), node).map_err(what)?;
                let (fs, root) =
                    fsimpl::gofer::new_gofer_fs(&t.kernel.vfs, mf, client, *export, "none")
                        .map_err(what)?;
                let mut flags = m.flags;
                flags.readonly |= info.read_only;
                ctx.mounts.mount(&at, fs, root, flags).map_err(what)?;
            }
            MountKind::Fs {
                fstype,
                source,
                data,
            } => {
                let at =
                    mount_point(t, &ctx.root, m.destination.as_bytes(), dir_node).map_err(what)?;
                let (fs, root, ro) =
                    if fstype == "tmpfs" && m.destination.trim_end_matches('/') == "/dev" {
                        let (fs, root) = fsimpl::devfs::new_devfs(t, mf).map_err(what)?;
                        (fs, root, None)
                    } else {
                        syscalls::mount::new_fs(
                            t,
                            fstype.as_bytes(),
                            source.as_bytes(),
                            data.as_bytes(),
                        )
                        .map_err(what)?
                    };
                let mut flags = m.flags;
                if let Some(ro) = ro {
                    flags.readonly |= ro;
                }
                let mounted = ctx.mounts.mount(&at, fs, root, flags).map_err(what)?;
                // The container's /dev/pts is where its consoles get
                // their terminals.
                if fstype == "devpts" && m.destination.trim_end_matches('/') == "/dev/pts" {
                    t.kernel.ptys.set(&mounted.mount);
                }
            }
        }
    }
    let walk = |path: &str| vfs::path::Walker::new(t).resolve(&ctx.root, path.as_bytes(), true);
    for p in &tree.masked_paths {
        let Ok(at) = walk(p) else { continue };
        let what = |e: errno::Errno| format!("masking {p}: {e:?}");
        let (fs, root) = fsimpl::tmpfs::new_tmpfs(&t.kernel.vfs, mf, "tmpfs", 0o755, 0, 0);
        let flags = vfs::mount::MountFlags {
            readonly: true,
            ..Default::default()
        };
        if at.inode.is_dir() {
            ctx.mounts.mount(&at, fs, root, flags).map_err(what)?;
        } else {
            // A file reads as empty: an empty file of its own is mounted
            // on it (as runc binds /dev/null).
            let file = root
                .ops
                .create(
                    t,
                    &root,
                    b"masked",
                    NewNode::Node {
                        mode: libc::S_IFREG | 0o444,
                        rdev: 0,
                    },
                )
                .map_err(what)?;
            ctx.mounts.mount(&at, fs, file, flags).map_err(what)?;
        }
    }
    for p in &tree.readonly_paths {
        let Ok(at) = walk(p) else { continue };
        let flags = vfs::mount::MountFlags {
            readonly: true,
            ..*at.mount.flags.lock().unwrap_or_else(|e| e.into_inner())
        };
        ctx.mounts
            .mount(&at, at.mount.fs.clone(), at.inode.clone(), flags)
            .map_err(|e| format!("making {p} read-only: {e:?}"))?;
    }
    Ok(())
}

/// The root of a sandbox with a gofer: the gofer's export for `/`, read
/// only, under an overlay whose upper layer is a tmpfs (so the sandbox
/// changes its copy, never the image), unless the export is writable.
fn root_of(
    kernel: &Arc<Kernel>,
    client: &Arc<gofer::Client>,
) -> Result<(Arc<vfs::inode::Filesystem>, Arc<vfs::inode::Inode>), errno::Errno> {
    let index = client
        .mounts()
        .iter()
        .position(|m| m.guest_path == b"/")
        .ok_or(errno::Errno::ENOENT)?;
    let (lower_fs, lower) =
        fsimpl::gofer::new_gofer_fs(&kernel.vfs, &kernel.memory_file, client, index, "none")?;
    if !client.mounts()[index].read_only {
        return Ok((lower_fs, lower));
    }
    let (_, upper) =
        fsimpl::tmpfs::new_tmpfs(&kernel.vfs, &kernel.memory_file, "none", 0o755, 0, 0);
    fsimpl::overlay::new_overlay(
        &kernel.vfs,
        vec![lower],
        Some(upper),
        "overlay",
        "lowerdir=/,upperdir=(memory)",
    )
}

/// The gofer's other exports, at their guest paths.
fn bind_mounts(t: &Task, client: &Arc<gofer::Client>) -> Result<(), errno::Errno> {
    let ctx = t.fs.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (i, m) in client.mounts().iter().enumerate() {
        if m.guest_path == b"/" {
            continue;
        }
        let at = mount_point(
            t,
            &ctx.root,
            &m.guest_path,
            if m.attr.is_dir() {
                vfs::inode::NewNode::Directory { mode: 0o755 }
            } else {
                vfs::inode::NewNode::Node {
                    mode: libc::S_IFREG | 0o644,
                    rdev: 0,
                }
            },
        )?;
        let (fs, root) =
            fsimpl::gofer::new_gofer_fs(&t.kernel.vfs, &t.kernel.memory_file, client, i, "none")?;
        ctx.mounts.mount(
            &at,
            fs,
            root,
            vfs::mount::MountFlags {
                readonly: m.read_only,
                ..Default::default()
            },
        )?;
    }
    Ok(())
}

/// The place for a bind mount at `path`, made (as `mkdir -p`, or an
/// empty file for a file's bind mount) where the root lacks it, as runc
/// makes mount points.
fn mount_point(
    t: &Task,
    root: &vfs::mount::Location,
    path: &[u8],
    last_new: vfs::inode::NewNode,
) -> Result<vfs::mount::Location, errno::Errno> {
    use vfs::inode::NewNode;
    let comps: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    let mut cur = root.clone();
    for (i, name) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        cur = match vfs::path::Walker::new(t).step(cur.clone(), name, true) {
            Ok(l) => l,
            // Missing, or a host mount point the gofer does not cross
            // (where it cannot hide the mounts beneath its root: without
            // privilege): made in the sandbox's own layer.
            Err(errno::Errno::ENOENT) | Err(errno::Errno::EXDEV) => {
                let node = if last {
                    last_new.clone()
                } else {
                    NewNode::Directory { mode: 0o755 }
                };
                let inode = cur.inode.ops.create(t, &cur.inode, name, node)?;
                vfs::mount::Location {
                    mount: cur.mount.clone(),
                    inode,
                }
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

/// Starts in `cwd` if the sandbox has it, else in `/`.
fn set_cwd(t: &Task, cwd: &[u8]) {
    let root = t.fs.lock().unwrap_or_else(|e| e.into_inner()).root.clone();
    match vfs::path::Walker::new(t).resolve(&root, cwd, true) {
        Ok(l) if l.inode.is_dir() => t.fs.lock().unwrap_or_else(|e| e.into_inner()).cwd = l,
        _ if cwd != b"/" => {
            let cwd = String::from_utf8_lossy(cwd);
            tracing::warn!(
                "the working directory {cwd} is not in the sandbox (its /tmp, /dev, /proc \
                 and /sys are its own); starting in /"
            );
        }
        _ => {}
    }
}

/// Execs the sandbox's first program from its file system: `path` as
/// given when it has a slash, else the first match along `PATH` (as
/// execvp: EACCES from a candidate is remembered, ENOENT moves on).
fn exec_first(
    t: &mut Task,
    path: &str,
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
) -> Result<(), errno::Errno> {
    if path.contains('/') {
        return syscalls::process::exec_with(t, libc::AT_FDCWD, path.into(), argv, envp, 0)
            .map(|_| ());
    }
    let search = envp
        .iter()
        .find_map(|e| e.strip_prefix(b"PATH="))
        .map(|p| p.to_vec())
        .unwrap_or_else(|| b"/usr/local/bin:/usr/bin:/bin".to_vec());
    let mut err = errno::Errno::ENOENT;
    for dir in search.split(|&b| b == b':') {
        let mut cand = if dir.is_empty() {
            b".".to_vec()
        } else {
            dir.to_vec()
        };
        cand.push(b'/');
        cand.extend_from_slice(path.as_bytes());
        match syscalls::process::exec_with(t, libc::AT_FDCWD, cand, argv.clone(), envp.clone(), 0) {
            Ok(_) => return Ok(()),
            Err(errno::Errno::EACCES) => err = errno::Errno::EACCES,
            Err(errno::Errno::ENOENT) | Err(errno::Errno::ENOTDIR) => {}
            Err(e) => return Err(e),
        }
    }
    Err(err)
}

/// The sandbox's file tree: a tmpfs root with /dev (devfs, a tmpfs on
/// /dev/shm, a devpts on /dev/pts), /proc, /sys and a tmpfs on /tmp.
fn build_tree(t: &Task) -> Result<(), errno::Errno> {
    use vfs::inode::NewNode;
    use vfs::mount::MountFlags;
    let ctx = t.fs.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let root = &ctx.root;
    let mf = &t.kernel.memory_file;
    let mut dirs = std::collections::HashMap::new();
    for (name, mode) in [
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("tmp", 0o1777),
    ] {
        // A root from the gofer has them already.
        let d = mount_point(t, root, name.as_bytes(), NewNode::Directory { mode })?;
        dirs.insert(name, d);
    }
    let (dev_fs, dev_root) = fsimpl::devfs::new_devfs(t, mf)?;
    let dev = ctx.mounts.mount(
        &dirs["dev"],
        dev_fs,
        dev_root,
        MountFlags {
            nosuid: true,
            ..Default::default()
        },
    )?;
    let shm_dir = dev.inode.ops.lookup(t, &dev.inode, b"shm")?;
    let (shm_fs, shm_root) = fsimpl::tmpfs::new_tmpfs(&t.kernel.vfs, mf, "shm", 0o1777, 0, 0);
    ctx.mounts.mount(
        &vfs::mount::Location {
            mount: dev.mount.clone(),
            inode: shm_dir,
        },
        shm_fs,
        shm_root,
        MountFlags {
            nosuid: true,
            nodev: true,
            ..Default::default()
        },
    )?;
    // /dev/pts as runc's default spec mounts it; consoles get their
    // terminals there.
    let pts_dir = dev.inode.ops.lookup(t, &dev.inode, b"pts")?;
    let (pts_fs, pts_root) =
        fsimpl::devpts::new_devpts(&t.kernel.vfs, "devpts", fsimpl::devpts::Options::sandbox());
    let pts = ctx.mounts.mount(
        &vfs::mount::Location {
            mount: dev.mount.clone(),
            inode: pts_dir,
        },
        pts_fs,
        pts_root,
        MountFlags {
            nosuid: true,
            noexec: true,
            ..Default::default()
        },
    )?;
    t.kernel.ptys.set(&pts.mount);
    // /tmp is the sandbox's own, whatever the root (as a private /tmp
    // of systemd's PrivateTmp): what a program leaves there goes with it.
    let (tmp_fs, tmp_root) = fsimpl::tmpfs::new_tmpfs(&t.kernel.vfs, mf, "tmpfs", 0o1777, 0, 0);
    ctx.mounts
        .mount(&dirs["tmp"], tmp_fs, tmp_root, MountFlags::default())?;
    // procfs and sysfs, as a Linux system mounts them.
    let pseudo = MountFlags {
        nosuid: true,
        nodev: true,
        noexec: true,
        ..Default::default()
    };
    let (proc_fs, proc_root) = fsimpl::procfs::new_procfs(t);
    ctx.mounts
        .mount(&dirs["proc"], proc_fs, proc_root, pseudo)?;
    let (sys_fs, sys_root) = fsimpl::sysfs::new_sysfs(t);
    ctx.mounts.mount(&dirs["sys"], sys_fs, sys_root, pseudo)?;
    Ok(())
}
