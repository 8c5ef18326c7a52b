//! `runsc do`: run one program in a new sandbox.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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
    /// The directory served (read-only, under an overlay kept in memory)
    /// as the sandbox's root.
    #[arg(long = "root-dir", value_name = "DIR", default_value = "/")]
    pub root_dir: PathBuf,
    /// A bind mount: HOST:GUEST[:ro] (changes to it reach the host unless
    /// `:ro`). May be given many times.
    #[arg(short = 'v', long = "volume", value_name = "HOST:GUEST[:ro]")]
    pub volumes: Vec<String>,
    /// An empty root (a tmpfs) instead of a host directory; the program,
    /// which must then be static, is handed in as an open file.
    #[arg(long = "empty-root", conflicts_with_all = ["root_dir", "volumes"])]
    pub empty_root: bool,
    /// Run the program under this seccomp profile, enforced by the
    /// sentry: a JSON file holding an OCI `linux.seccomp` object, or a
    /// profile as Docker and podman take it (`--security-opt
    /// seccomp=FILE`), whose conditional rules are resolved against the
    /// program's capabilities (all for root, none otherwise).
    #[arg(long = "seccomp-profile", value_name = "FILE")]
    pub seccomp_profile: Option<PathBuf>,
    /// Run in this network namespace (e.g. /run/netns/NAME) and, with
    /// `--network=sandbox`, take over its interfaces: the sandbox's stack
    /// gets their addresses and routes, and the host side loses them.
    /// Without it the sandbox has loopback only. With `--network=host`
    /// the namespace is joined as it is and its host sockets are made
    /// there (without it, in runsc's namespace).
    #[arg(long = "netns", value_name = "PATH")]
    pub netns: Option<PathBuf>,
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

/// Parses `HOST:GUEST[:ro]`.
fn parse_volume(v: &str) -> Result<gofer::spawn::BindMount, String> {
    let (rest, read_only) = match v.strip_suffix(":ro") {
        Some(r) => (r, true),
        None => (v.strip_suffix(":rw").unwrap_or(v), false),
    };
    let (host, guest) = rest
        .split_once(':')
        .ok_or_else(|| format!("volume {v:?}: expected HOST:GUEST[:ro]"))?;
    if !guest.starts_with('/') {
        return Err(format!("volume {v:?}: the guest path must be absolute"));
    }
    let host = std::fs::canonicalize(host)
        .map_err(|e| format!("volume {v:?}: the host path {host}: {e}"))?;
    Ok(gofer::spawn::BindMount {
        host,
        guest: guest.to_string(),
        read_only,
    })
}

/// Starts the gofer serving the root and the volumes; its client.
fn start_gofer(args: &DoArgs) -> Result<(std::process::Child, gofer::Client), String> {
    let mounts = args
        .volumes
        .iter()
        .map(|v| parse_volume(v))
        .collect::<Result<Vec<_>, _>>()?;
    let root = std::fs::canonicalize(&args.root_dir)
        .map_err(|e| format!("the root directory {}: {e}", args.root_dir.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("finding runsc itself: {e}"))?;
    let (child, sock) = gofer::spawn::start_gofer(&exe, &root, false, &mounts)
        .map_err(|e| format!("starting the gofer: {e}"))?;
    let client = gofer::Client::connect(sock)
        .map_err(|e| format!("connecting to the gofer: {e:?} (see its log above)"))?;
    Ok((child, client))
}

/// The sentry holds a host fd for every open host file of the sandbox
/// (and the gofer one for every node): their soft fd limit goes up to
/// the hard one, which children inherit.
fn raise_fd_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit to our stack; setrlimit reads it.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// The filter of `--seccomp-profile`, if given.
fn seccomp_filter(args: &DoArgs) -> Result<Option<sentry::syscalls::seccomp::GuestFilter>, String> {
    use crate::oci_seccomp::{guest_filter, Conditions, Profile, ALL_CAPS};
    let Some(path) = &args.seccomp_profile else {
        return Ok(None);
    };
    let what = |e: String| format!("seccomp profile {}: {e}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| what(e.to_string()))?;
    let profile = Profile::parse(&text).map_err(what)?;
    // The program runs as the caller, with every capability when root.
    // SAFETY: getuid has no preconditions.
    let caps = if unsafe { libc::getuid() } == 0 {
        ALL_CAPS.iter().map(|c| c.to_string()).collect()
    } else {
        Vec::new()
    };
    match profile.resolve(&Conditions::sandbox(caps)).map_err(what)? {
        Some(s) => guest_filter(&s).map(Some).map_err(what),
        None => {
            tracing::info!(
                "seccomp profile {}: no default action and no rules: no filter",
                path.display()
            );
            Ok(None)
        }
    }
}

pub fn run(cli: &Cli, args: &DoArgs) -> i32 {
    raise_fd_limit();
    let guest_seccomp = match seccomp_filter(args) {
        Ok(f) => f,
        Err(msg) => {
            tracing::error!("{msg}");
            eprintln!("runsc: {msg}");
            return 125;
        }
    };
    let reports = match crate::reports::open(cli) {
        Ok(r) => r,
        Err(msg) => {
            tracing::error!("{msg}");
            eprintln!("runsc: {msg}");
            return 125;
        }
    };
    let prog = Path::new(&args.command[0]);
    let mut gofer_child = None;
    let (file, gofer, path) = if args.empty_root {
        match open_program(prog) {
            Ok((f, p)) => {
                // As /proc/self/exe shows it: absolute, links resolved.
                let name = std::fs::canonicalize(&p)
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| p.to_string_lossy().into_owned());
                (Some((f, name)), None, p)
            }
            Err(e) => {
                tracing::error!("cannot run program: {}", e.msg);
                eprintln!("runsc: {}", e.msg);
                return e.code;
            }
        }
    } else {
        match start_gofer(args) {
            Ok((child, client)) => {
                gofer_child = Some(child);
                (None, Some(std::sync::Arc::new(client)), prog.to_path_buf())
            }
            Err(msg) => {
                tracing::error!("{msg}");
                eprintln!("runsc: {msg}");
                return 125;
            }
        }
    };
    let cwd = std::env::current_dir()
        .map(|d| d.as_os_str().as_bytes().to_vec())
        .unwrap_or_else(|_| b"/".to_vec());
    // A terminal on stdin, with runsc in its foreground: the sandbox gets
    // a terminal of its own bridged to it, and the standard streams that
    // are that terminal are the sandbox's terminal (others stay host fds).
    let console = foreground_terminal().then(|| dup_fd(0)).flatten();
    let mut stdio = Vec::new();
    for fd in 0..3 {
        if console.is_some() && same_file(0, fd) {
            stdio.push(None);
        } else {
            stdio.push(dup_fd(fd));
        }
    }
    let saved_termios = console.as_ref().and_then(|_| termios_of(0));
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
        gofer,
        cwd,
        // SAFETY: getuid and getgid have no preconditions.
        user: unsafe { (libc::getuid(), libc::getgid()) },
        argv,
        envp,
        stdio,
        console,
        hostname: args.hostname.clone(),
        strace: crate::reports::strace(cli),
        platform: cli.platform_name().to_string(),
        cpus,
        seccomp: true,
        test_forbidden_syscall,
        domainname: None,
        oom_score_adj: None,
        groups: Vec::new(),
        umask: None,
        rlimits: Vec::new(),
        no_new_privileges: false,
        capabilities: None,
        tree: sentry::Tree::Do,
        control: None,
        guest_seccomp,
        reports,
        network: sentry::net::NetBoot {
            mode: cli.network.mode(),
            ..Default::default()
        },
    };
    let netns = match open_netns(cli, args) {
        Ok(n) => n,
        Err(msg) => {
            tracing::error!("{msg}");
            eprintln!("runsc: {msg}");
            return 1;
        }
    };
    let opts = crate::confine::SpawnOptions {
        netns: netns.as_ref().map(|f| f.as_raw_fd()),
        host_network: cli.network == crate::Network::Host,
        ..Default::default()
    };
    let code = crate::confine::run_confined(
        move || {
            let mut cfg = cfg;
            match crate::netns::taken().and_then(|links| {
                cfg.network.links = links;
                crate::netns::listed()
            }) {
                Ok(listed) => cfg.network.listed = listed,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("runsc: {e}");
                    return 1;
                }
            }
            boot(cfg)
        },
        opts,
    );
    drop(netns);
    if let Some(t) = saved_termios {
        // The sentry restores the terminal; this covers a sentry that
        // could not (killed, or crashed).
        // SAFETY: sets fd 0's settings from a termios tcgetattr filled.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
    }
    if let Some(mut c) = gofer_child {
        // The sentry's end of the socket is closed: the gofer exits.
        let _ = c.wait();
    }
    code
}

/// A copy of one of our fds, ours alone (None if it is not open).
fn dup_fd(fd: i32) -> Option<OwnedFd> {
    // SAFETY: dup of one of our fds; the new fd is ours alone.
    let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    // SAFETY: `d` is a fresh fd from F_DUPFD_CLOEXEC.
    (d >= 0).then(|| unsafe { OwnedFd::from_raw_fd(d) })
}

/// Whether stdin is a terminal whose foreground process group is ours (a
/// background `runsc do` reading its terminal would be stopped).
fn foreground_terminal() -> bool {
    // SAFETY: isatty, tcgetpgrp and getpgrp only inspect fd 0 and us.
    unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() }
}

/// Whether fds `a` and `b` are the same file.
fn same_file(a: i32, b: i32) -> bool {
    let stat = |fd: i32| {
        // SAFETY: all-zero is a valid stat; fstat writes one.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino, st.st_rdev))
    };
    matches!((stat(a), stat(b)), (Some(x), Some(y)) if x == y)
}

/// The terminal settings of `fd`.
fn termios_of(fd: i32) -> Option<libc::termios> {
    // SAFETY: all-zero is a valid termios; tcgetattr writes one.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    (unsafe { libc::tcgetattr(fd, &mut t) } == 0).then_some(t)
}

/// Boots the sentry (in its confined process); returns the exit code.
/// The network namespace `--netns` names, open, when the sandbox is to
/// take over its interfaces.
fn open_netns(cli: &Cli, args: &DoArgs) -> Result<Option<std::fs::File>, String> {
    let Some(path) = &args.netns else {
        return Ok(None);
    };
    if cli.network == crate::Network::None {
        return Ok(None);
    }
    std::fs::File::open(path)
        .map(Some)
        .map_err(|e| format!("opening the network namespace {}: {e}", path.display()))
}

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
                sentry::BootError::Exec { errno, .. } if errno == sentry::errno::Errno::ENOENT => {
                    127
                }
                sentry::BootError::Exec { .. } => 126,
                _ => 1,
            }
        }
    }
}
