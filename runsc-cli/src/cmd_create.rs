//! `runsc create` and `runsc run`: a sandbox for an OCI bundle.
//!
//! create reads `config.json`, starts the gofer (serving the root and the
//! bind mounts) and the sentry (confined, detached from runsc, in a new
//! session), which builds the container's tree, loads its first process
//! and waits on the control socket for `start`. The sentry's host process
//! is the container's pid: it outlives create (the caller, or its
//! subreaper, reaps it) and its exit status is the container's.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use clap::Args;

use crate::container::{self, State, Status};
use crate::Cli;

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// The bundle directory (holding config.json).
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's host pid here.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to receive the container's terminal (its master
    /// side), when config.json asks for one.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Pass this many fds beyond the standard three (3, 4, ...).
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility (the sandbox's root is its own).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for runc compatibility (the sandbox has no keyrings).
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// A unix socket to receive a pidfd of the container's process.
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// The container's id.
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Do not wait for the container: exit once it has started.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits (no delete).
    #[arg(long)]
    pub keep: bool,
}

/// A sandbox made by [`create`], its first process waiting for `start`.
pub struct Created {
    pub state: State,
    pub gofer: Option<std::process::Child>,
}

pub fn run_create(cli: &Cli, args: &CreateArgs) -> i32 {
    match create(cli, args) {
        Ok(_) => 0,
        Err(e) => crate::fail(&e),
    }
}

pub fn run_run(cli: &Cli, args: &RunArgs) -> i32 {
    let created = match create(cli, &args.create) {
        Ok(c) => c,
        Err(e) => return crate::fail(&e),
    };
    let root = cli.state_root();
    let id = &args.create.id;
    if let Err(e) = crate::cmd_ops::start(cli, id) {
        crate::cmd_ops::destroy(&root, id, true);
        return crate::fail(&e);
    }
    if args.detach {
        return 0;
    }
    let code = crate::confine::wait_confined(created.state.pid);
    if let Some(mut g) = created.gofer {
        let _ = g.wait();
    }
    if !args.keep {
        crate::cmd_ops::destroy(&root, id, true);
    }
    code
}

/// Makes the container `args.id`; on failure nothing of it is left.
pub fn create(cli: &Cli, args: &CreateArgs) -> Result<Created, String> {
    let root = cli.state_root();
    container::make_dir(&root, &args.id)?;
    let _lock = container::lock(&root, &args.id)?;
    match create_locked(cli, args, &root) {
        Ok(c) => Ok(c),
        Err(e) => {
            crate::cmd_ops::destroy(&root, &args.id, false);
            Err(e)
        }
    }
}

fn create_locked(cli: &Cli, args: &CreateArgs, root: &Path) -> Result<Created, String> {
    let bundle = std::fs::canonicalize(&args.bundle)
        .map_err(|e| format!("the bundle {}: {e}", args.bundle.display()))?;
    let spec = crate::spec::load(&bundle)?;
    crate::spec::check_unsupported(&spec)?;
    let process = spec
        .process()
        .clone()
        .ok_or("config.json has no process: nothing to run")?;
    let pspec = crate::spec::process_spec(&process);
    if pspec.args.is_empty() {
        return Err("config.json's process.args is empty: nothing to run".into());
    }
    let tree = crate::spec::tree(&spec, &bundle)?;
    // The report, profile and trace files, before anything is started.
    let reports = crate::reports::open(cli)?;
    // SAFETY: geteuid has no preconditions.
    let owner = unsafe { libc::geteuid() };
    let mut state = State {
        id: args.id.clone(),
        pid: 0,
        pid_start: 0,
        gofer_pid: 0,
        bundle: bundle.clone(),
        status: Status::Creating,
        annotations: spec.annotations().clone().unwrap_or_default(),
        created: container::now_rfc3339(),
        cgroup: None,
        owner,
        rootfs: tree.root.clone(),
        exit_status: None,
    };
    state.save(root)?;
    let guest_seccomp = container_seccomp(&bundle)?;
    let linux = spec.linux().as_ref();
    let cgroups_path = linux
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned());
    let resources = linux.and_then(|l| l.resources().as_ref());
    let cgroup = match crate::cgroup::Cgroup::create(
        cgroups_path.as_deref(),
        &args.id,
        cli.systemd_cgroup,
        resources,
    ) {
        Ok(c) => Some(c),
        // Without privilege over cgroups (a rootless container), a
        // container that asks for no limits runs without a cgroup of its
        // own, as runc's rootless mode does.
        // SAFETY: geteuid has no preconditions.
        Err(e) if unsafe { libc::geteuid() } != 0 && resources.is_none() => {
            tracing::warn!("no cgroup for the container: {e}");
            None
        }
        Err(e) => return Err(e),
    };
    state.cgroup = cgroup.as_ref().and_then(|c| serde_json::to_value(c).ok());
    state.save(root)?;

    // The container's terminal, or its standard streams.
    let mut stdio: Vec<Option<OwnedFd>> = Vec::new();
    let mut terminal: Option<OwnedFd> = None;
    if pspec.terminal {
        let sock = args.console_socket.as_ref().ok_or(
            "config.json asks for a terminal (process.terminal) but no --console-socket was given",
        )?;
        let replica = crate::console::new_pty(sock, process.console_size().as_ref())?;
        // fds 0-2 are the sandbox's own terminal, bridged to this one.
        stdio.extend([None, None, None]);
        terminal = Some(replica);
    } else {
        for fd in 0..3 {
            stdio.push(dup_fd(fd));
        }
    }
    for i in 0..args.preserve_fds as i32 {
        stdio.push(dup_fd(3 + i));
    }

    // The gofer.
    let exe = std::env::current_exe().map_err(|e| format!("finding runsc itself: {e}"))?;
    // The gofer outlives create: its log goes to runsc's log file, never
    // to create's standard error (a caller reading that to its end would
    // wait for the gofer).
    let gofer_log = match cli.debug_log.as_ref().or(cli.log.as_ref()) {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map(std::process::Stdio::from)
            .unwrap_or_else(|_| std::process::Stdio::null()),
        None => std::process::Stdio::null(),
    };
    let (gofer_child, sock) = gofer::spawn::start_gofer_logging(
        &exe,
        &tree.root,
        !tree.root_readonly,
        &tree.binds,
        gofer_log,
        match cli.log_format {
            crate::LogFormat::Json => &["--log-format", "json"],
            crate::LogFormat::Text => &[],
        },
    )
    .map_err(|e| format!("starting the gofer: {e}"))?;
    state.gofer_pid = gofer_child.id() as i32;
    if let Some(c) = &cgroup {
        c.add(state.gofer_pid)?;
    }
    let client = gofer::Client::connect(sock).map_err(|e| {
        format!("connecting to the gofer: {e:?} (its error, if any, is in the log above)")
    })?;

    // The control socket and the ready pipe.
    let listener = sentry::control::listen(&container::control_socket(root, &args.id))?;
    let (ready_r, ready_w) = pipe()?;
    let ready_w2 = ready_w
        .try_clone()
        .map_err(|e| format!("dup of the ready pipe: {e}"))?;

    let hostname = spec.hostname().clone().unwrap_or_else(host_name);
    let cfg = sentry::BootConfig {
        executable: None,
        exec_path: pspec.args[0].clone(),
        gofer: Some(std::sync::Arc::new(client)),
        cwd: pspec.cwd.as_bytes().to_vec(),
        user: (pspec.uid, pspec.gid),
        argv: pspec.args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        envp: pspec.env.iter().map(|a| a.as_bytes().to_vec()).collect(),
        stdio,
        console: terminal
            .as_ref()
            .map(|t| t.try_clone())
            .transpose()
            .map_err(|e| format!("dup of the terminal: {e}"))?,
        hostname,
        strace: crate::reports::strace(cli),
        platform: cli.platform_name().to_string(),
        cpus: std::thread::available_parallelism().ok().map(|n| n.get()),
        seccomp: true,
        test_forbidden_syscall: false,
        domainname: spec.domainname().clone(),
        oom_score_adj: pspec.oom_score_adj,
        groups: pspec.groups.clone(),
        umask: pspec.umask,
        rlimits: pspec.rlimits.clone(),
        no_new_privileges: pspec.no_new_privileges,
        capabilities: pspec.capabilities,
        tree: sentry::Tree::Oci(tree.tree),
        control: Some(sentry::Control {
            listener,
            ready: ready_w,
        }),
        guest_seccomp,
        reports,
        network: sentry::net::NetBoot {
            mode: cli.network.mode(),
            ..Default::default()
        },
    };
    // The network namespace the spec names, whose interfaces the
    // sentry's stack takes over (`--network=sandbox`); a network
    // namespace without a path, or none at all, is a new one with
    // loopback only. With `--network=host` the named namespace is joined
    // as it is, one without a path is a new one (host sockets with
    // loopback only), and a spec without a network namespace shares
    // runsc's.
    let netns_entry = linux.and_then(|l| l.namespaces().as_ref()).and_then(|v| {
        v.iter()
            .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
    });
    let netns_path = netns_entry
        .and_then(|n| n.path().clone())
        .filter(|_| cli.network != crate::Network::None);
    let host_network =
        cli.network == crate::Network::Host && (netns_entry.is_none() || netns_path.is_some());
    let netns = match &netns_path {
        Some(p) => Some(std::fs::File::open(p).map_err(|e| {
            format!(
                "opening the container's network namespace {}: {e}",
                p.display()
            )
        })?),
        None => None,
    };
    let boot = move || {
        let mut cfg = cfg;
        let booted = crate::netns::taken()
            .map_err(|e| e.to_string())
            .and_then(|links| {
                cfg.network.links = links;
                cfg.network.listed = crate::netns::listed()?;
                sentry::boot(cfg).map_err(|e| e.to_string())
            });
        match booted {
            Ok(status) => status.shell_code(),
            Err(e) => {
                let mut line = e.replace('\n', " ");
                line.push('\n');
                // SAFETY: a write from our buffer to the ready pipe.
                unsafe { libc::write(ready_w2.as_raw_fd(), line.as_ptr().cast(), line.len()) };
                1
            }
        }
    };
    let pid = crate::confine::spawn_confined(
        boot,
        crate::confine::SpawnOptions {
            detached: true,
            controlling_terminal: terminal.as_ref().map(|t| t.as_raw_fd()),
            netns: netns.as_ref().map(|f| f.as_raw_fd()),
            host_network,
        },
        // Into the cgroup before it makes its first stub.
        |pid| cgroup.as_ref().map_or(Ok(()), |c| c.add(pid)),
    )?;
    drop(terminal);
    drop(netns);
    if let Some(adj) = pspec.oom_score_adj {
        host_oom_score_adj(&[pid, state.gofer_pid], adj);
    }
    state.pid = pid;
    state.pid_start = container::process_start(pid).map(|s| s.0).unwrap_or(0);
    state.save(root)?;
    // Wait for boot to load the first process, or to fail.
    let msg = read_line(ready_r);
    if msg != "ok" {
        // SAFETY: kills the sandbox we made.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let status = wait_pid(pid);
        return Err(if msg.is_empty() {
            format!("the sandbox exited while booting ({status}); see the log for why")
        } else {
            format!("starting the container: {msg}")
        });
    }
    let hooks = spec.hooks().clone().unwrap_or_default();
    let oci_state = state.to_oci();
    crate::hooks::run("prestart", hooks.prestart().as_ref(), &oci_state)
        .and_then(|_| {
            crate::hooks::run("createRuntime", hooks.create_runtime().as_ref(), &oci_state)
        })
        .and_then(|_| {
            crate::hooks::run(
                "createContainer",
                hooks.create_container().as_ref(),
                &oci_state,
            )
        })?;
    state.status = Status::Created;
    state.save(root)?;
    if let Some(p) = &args.pid_file {
        write_atomic(p, pid.to_string().as_bytes())
            .map_err(|e| format!("writing the pid file {}: {e}", p.display()))?;
    }
    if let Some(p) = &args.pidfd_socket {
        crate::console::send_pidfd(p, pid)?;
    }
    Ok(Created {
        state,
        gofer: Some(gofer_child),
    })
}

/// The compiled `linux.seccomp` of the bundle's config.json, if any.
pub fn container_seccomp(
    bundle: &Path,
) -> Result<Option<sentry::syscalls::seccomp::GuestFilter>, String> {
    let spec = crate::spec::load(bundle)?;
    match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => crate::oci_seccomp::guest_filter(s)
            .map(Some)
            .map_err(|e| format!("linux.seccomp cannot be enforced: {e}")),
        None => Ok(None),
    }
}

/// The host's OOM killer sees the sandbox's processes with the
/// container's `oomScoreAdj` (as gVisor sets it on its sandbox): raising
/// it always works; lowering it needs CAP_SYS_RESOURCE, and is only
/// logged when refused.
fn host_oom_score_adj(pids: &[i32], adj: i32) {
    for pid in pids {
        let p = format!("/proc/{pid}/oom_score_adj");
        if let Err(e) = std::fs::write(&p, adj.to_string()) {
            tracing::warn!("setting the sandbox's oom_score_adj ({p}) to {adj}: {e}");
        }
    }
}

fn dup_fd(fd: i32) -> Option<OwnedFd> {
    // SAFETY: dup of one of our fds; the new fd is ours alone.
    let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    // SAFETY: `d` is a fresh fd from F_DUPFD_CLOEXEC.
    (d >= 0).then(|| unsafe { OwnedFd::from_raw_fd(d) })
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut p = [0i32; 2];
    // SAFETY: pipe2 writes two new fds to our array.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both fds are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) })
}

/// The first line from `fd` (until every writer has closed it).
fn read_line(fd: OwnedFd) -> String {
    let mut f = std::fs::File::from(fd);
    let mut buf = Vec::new();
    let mut b = [0u8; 256];
    loop {
        match f.read(&mut b) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&b[..n]);
                if buf.contains(&b'\n') {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let s = String::from_utf8_lossy(&buf);
    s.lines().next().unwrap_or("").trim().to_string()
}

/// Waits for our child `pid`; its status, described.
pub fn wait_pid(pid: i32) -> String {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child into a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return "status unknown".into();
        }
    }
    if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else {
        format!("killed by signal {}", libc::WTERMSIG(status))
    }
}

pub fn write_atomic(p: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = p.with_extension("runsc-tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, p)
}

fn host_name() -> String {
    let mut b = [0u8; 256];
    // SAFETY: gethostname writes at most b.len() bytes into b.
    if unsafe { libc::gethostname(b.as_mut_ptr().cast(), b.len()) } != 0 {
        return "runsc".into();
    }
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}
