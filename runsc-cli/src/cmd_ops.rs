//! The commands on an existing container: start, state, kill, delete,
//! wait, pause, resume, ps, list, events, update; and features, spec.

use std::path::{Path, PathBuf};

use clap::Args;
use sentry::control::{Reply, Request};

use crate::container::{self, State, Status};
use crate::Cli;

fn call(root: &Path, id: &str, req: &Request) -> Result<Reply, String> {
    match sentry::control::call(&container::control_socket(root, id), req, &[])? {
        Reply::Error { message } => Err(message),
        r => Ok(r),
    }
}

/// The container's state, and that it is in one of `want`.
fn load_in(root: &Path, id: &str, want: &[Status], doing: &str) -> Result<State, String> {
    let st = State::load(root, id)?;
    let now = st.status();
    if !want.contains(&now) {
        return Err(match now {
            Status::Stopped => format!("cannot {doing} {id}: container not running"),
            s => format!("cannot {doing} {id}: the container is {}", s.as_str()),
        });
    }
    Ok(st)
}

/// Lets the first process of container `id` run.
pub fn start(cli: &Cli, id: &str) -> Result<(), String> {
    let root = cli.state_root();
    let _lock = container::lock_existing(&root, id)?;
    let mut st = State::load(&root, id)?;
    match st.status() {
        Status::Created => {}
        Status::Stopped => {
            return Err(format!(
                "cannot start {id}: container not running (it has stopped)"
            ))
        }
        s => return Err(format!("cannot start a container that is {}", s.as_str())),
    }
    let spec = crate::spec::load(&st.bundle).ok();
    let hooks = spec.and_then(|s| s.hooks().clone()).unwrap_or_default();
    let sock = container::control_socket(&root, id);
    let started = crate::hooks::run_in_sandbox(
        "startContainer",
        hooks.start_container().as_ref(),
        &st.to_oci(),
        &sock,
    );
    if let Err(e) = started {
        // The container's process must not run: the sandbox ends.
        if st.process_alive() {
            // SAFETY: the sandbox's host process, checked by start time.
            unsafe { libc::kill(st.pid, libc::SIGKILL) };
            wait_gone(st.pid, st.pid_start);
        }
        return Err(e);
    }
    call(&root, id, &Request::Start)?;
    st.status = Status::Running;
    st.save(&root)?;
    if let Err(e) = crate::hooks::run("poststart", hooks.poststart().as_ref(), &st.to_oci()) {
        return Err(format!("the container started, but {e}"));
    }
    Ok(())
}

pub fn run_start(cli: &Cli, id: &str) -> i32 {
    match start(cli, id) {
        Ok(()) => 0,
        Err(e) => crate::fail(&e),
    }
}

pub fn run_state(cli: &Cli, id: &str) -> i32 {
    match State::load(&cli.state_root(), id) {
        Ok(st) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&st.to_oci()).unwrap_or_default()
            );
            0
        }
        Err(e) => crate::fail(&e),
    }
}

/// A signal by name (`TERM`, `SIGTERM`) or number.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        if (0..=64).contains(&n) {
            return Ok(n);
        }
        return Err(format!("invalid signal number {n}"));
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let table: [(&str, i32); 33] = [
        ("HUP", libc::SIGHUP),
        ("INT", libc::SIGINT),
        ("QUIT", libc::SIGQUIT),
        ("ILL", libc::SIGILL),
        ("TRAP", libc::SIGTRAP),
        ("ABRT", libc::SIGABRT),
        ("IOT", libc::SIGIOT),
        ("BUS", libc::SIGBUS),
        ("FPE", libc::SIGFPE),
        ("KILL", libc::SIGKILL),
        ("USR1", libc::SIGUSR1),
        ("SEGV", libc::SIGSEGV),
        ("USR2", libc::SIGUSR2),
        ("PIPE", libc::SIGPIPE),
        ("ALRM", libc::SIGALRM),
        ("TERM", libc::SIGTERM),
        ("STKFLT", libc::SIGSTKFLT),
        ("CHLD", libc::SIGCHLD),
        ("CLD", libc::SIGCHLD),
        ("CONT", libc::SIGCONT),
        ("STOP", libc::SIGSTOP),
        ("TSTP", libc::SIGTSTP),
        ("TTIN", libc::SIGTTIN),
        ("TTOU", libc::SIGTTOU),
        ("URG", libc::SIGURG),
        ("XCPU", libc::SIGXCPU),
        ("XFSZ", libc::SIGXFSZ),
        ("VTALRM", libc::SIGVTALRM),
        ("PROF", libc::SIGPROF),
        ("WINCH", libc::SIGWINCH),
        ("IO", libc::SIGIO),
        ("POLL", libc::SIGPOLL),
        ("PWR", libc::SIGPWR),
    ];
    if let Some((_, n)) = table.iter().find(|(n, _)| *n == name) {
        return Ok(*n);
    }
    if name == "SYS" {
        return Ok(libc::SIGSYS);
    }
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.trim_start_matches('+')
                .parse()
                .map_err(|_| format!("unknown signal {s:?}"))?
        };
        return Ok(34 + off);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.trim_start_matches('-')
                .parse()
                .map_err(|_| format!("unknown signal {s:?}"))?
        };
        return Ok(64 - off);
    }
    Err(format!("unknown signal {s:?}"))
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Send the signal to every process of the container.
    #[arg(short = 'a', long)]
    pub all: bool,
    pub id: String,
    /// A name (TERM, SIGTERM) or number.
    #[arg(default_value = "TERM")]
    pub signal: String,
}

pub fn run_kill(cli: &Cli, args: &KillArgs) -> i32 {
    let root = cli.state_root();
    let r = (|| {
        let sig = parse_signal(&args.signal)?;
        let st = load_in(
            &root,
            &args.id,
            &[Status::Created, Status::Running, Status::Paused],
            "kill",
        )?;
        match call(
            &root,
            &args.id,
            &Request::Signal {
                pid: 0,
                all: args.all,
                signal: sig,
            },
        ) {
            Ok(_) => Ok(()),
            // The sandbox went away under us: SIGKILL's work is done.
            Err(_) if sig == libc::SIGKILL && !st.process_alive() => Ok(()),
            Err(_) if sig == libc::SIGKILL => {
                // SAFETY: kills the sandbox's own host process (checked
                // by its start time above).
                unsafe { libc::kill(st.pid, libc::SIGKILL) };
                Ok(())
            }
            Err(e) => Err(e),
        }
    })();
    match r {
        Ok(()) => 0,
        Err(e) => crate::fail(&e),
    }
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill a running container first; no error if it does not exist.
    #[arg(short = 'f', long)]
    pub force: bool,
    pub id: String,
}

pub fn run_delete(cli: &Cli, args: &DeleteArgs) -> i32 {
    let root = cli.state_root();
    let st = match State::load(&root, &args.id) {
        Ok(s) => s,
        Err(e) => {
            if args.force {
                // Also whatever a failed create left.
                let _ = std::fs::remove_dir_all(container::dir(&root, &args.id));
                return 0;
            }
            return crate::fail(&e);
        }
    };
    let status = st.status();
    if !args.force && !matches!(status, Status::Stopped | Status::Created) {
        return crate::fail(&format!(
            "cannot delete container {} that is not stopped: {} (use --force)",
            args.id,
            status.as_str()
        ));
    }
    destroy(&root, &args.id, true);
    0
}

/// Ends container `id`'s sandbox (SIGKILL to its host process, which
/// takes the stubs with it; the gofer exits when the sentry's socket
/// closes) and removes everything it made. `hooks`: run poststop.
pub fn destroy(root: &Path, id: &str, hooks: bool) {
    let st = State::load(root, id).ok();
    if let Some(st) = &st {
        if st.process_alive() {
            // SAFETY: the sandbox's host process, checked by start time.
            unsafe { libc::kill(st.pid, libc::SIGKILL) };
            wait_gone(st.pid, st.pid_start);
        }
        if st.gofer_pid > 0 {
            // The gofer exits once the sentry's end of its socket closes;
            // make sure of it.
            if let Some((_, state)) = container::process_start(st.gofer_pid) {
                if state != 'Z' && is_gofer(st.gofer_pid) {
                    // SAFETY: our gofer (its command line says so).
                    unsafe { libc::kill(st.gofer_pid, libc::SIGKILL) };
                }
            }
        }
        if hooks {
            if let Ok(spec) = crate::spec::load(&st.bundle) {
                let h = spec.hooks().clone().unwrap_or_default();
                let mut s = st.to_oci();
                s["status"] = "stopped".into();
                for e in crate::hooks::run_all("poststop", h.poststop().as_ref(), &s) {
                    tracing::warn!("{e}");
                }
            }
        }
    }
    if let Some(cg) = st.as_ref().and_then(|s| s.cgroup.as_ref()) {
        match crate::cgroup::Cgroup::load(&cg.to_string()).and_then(|c| c.destroy()) {
            Ok(()) => {}
            Err(e) => tracing::warn!("removing the container's cgroup: {e}"),
        }
    }
    let _ = std::fs::remove_dir_all(container::dir(root, id));
}

fn is_gofer(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.split(|&b| b == 0).nth(1) == Some(b"gofer"))
        .unwrap_or(false)
}

/// Waits (up to 10 s) until process `pid` started at `start` has exited.
fn wait_gone(pid: i32, start: u64) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < until {
        match container::process_start(pid) {
            Some((s, st)) if s == start && st != 'Z' && st != 'X' => {}
            _ => return,
        }
        // Our own child (run): reap it.
        // SAFETY: a non-blocking waitpid; harmless when not our child.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

pub fn run_wait(cli: &Cli, id: &str) -> i32 {
    let root = cli.state_root();
    let r = (|| {
        let st = State::load(&root, id)?;
        if let Some(s) = st.exit_status {
            return Ok(s);
        }
        match call(&root, id, &Request::Wait { pid: 0 }) {
            Ok(Reply::Exited { status }) => Ok(status),
            Ok(r) => Err(format!("unexpected reply {r:?}")),
            Err(e) => Err(e),
        }
    })();
    match r {
        Ok(status) => {
            println!("{}", serde_json::json!({"id": id, "exitStatus": status}));
            0
        }
        Err(e) => crate::fail(&e),
    }
}

pub fn run_pause(cli: &Cli, id: &str, pause: bool) -> i32 {
    let root = cli.state_root();
    let r = (|| {
        let _lock = container::lock_existing(&root, id)?;
        let (want, doing) = if pause {
            (Status::Running, "pause")
        } else {
            (Status::Paused, "resume")
        };
        let mut st = load_in(&root, id, &[want], doing)?;
        call(
            &root,
            id,
            if pause {
                &Request::Pause
            } else {
                &Request::Resume
            },
        )?;
        st.status = if pause {
            Status::Paused
        } else {
            Status::Running
        };
        st.save(&root)
    })();
    match r {
        Ok(()) => 0,
        Err(e) => crate::fail(&e),
    }
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// table or json (a list of pids, as runc prints).
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    pub id: String,
    /// ps options (accepted; the table is always `ps -ef`'s).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run_ps(cli: &Cli, args: &PsArgs) -> i32 {
    let root = cli.state_root();
    let r = (|| {
        let st = load_in(
            &root,
            &args.id,
            &[Status::Created, Status::Running, Status::Paused],
            "list processes of",
        )?;
        let list = match call(&root, &args.id, &Request::Processes)? {
            Reply::Processes { list } => list,
            r => return Err(format!("unexpected reply {r:?}")),
        };
        match args.format.as_str() {
            "json" => {
                // Host pids, as runc prints (containerd's shim matches its
                // exec'd processes by them): the sandbox's process for the
                // first process, the waiter for an exec'd one, else the
                // sandbox's own pid.
                let pids: Vec<i32> = list
                    .iter()
                    .map(|p| match (p.pid, p.host_pid) {
                        (1, _) => st.pid,
                        (_, Some(h)) => h,
                        (g, None) => g,
                    })
                    .collect();
                println!("{}", serde_json::to_string(&pids).unwrap_or_default());
            }
            "table" => {
                println!("UID          PID    PPID  C STIME TTY          TIME CMD");
                for p in &list {
                    let cmd = if p.cmdline.is_empty() {
                        format!("[{}]", p.comm)
                    } else {
                        p.cmdline.join(" ")
                    };
                    let t = p.cpu_ns / 1_000_000_000;
                    println!(
                        "{:<8} {:>7} {:>7}  0 00:00 ?        {:02}:{:02}:{:02} {}",
                        user_name(p.uid),
                        p.pid,
                        p.ppid,
                        t / 3600,
                        t / 60 % 60,
                        t % 60,
                        cmd
                    );
                }
            }
            f => return Err(format!("invalid format {f:?}: use table or json")),
        }
        Ok(())
    })();
    match r {
        Ok(()) => 0,
        Err(e) => crate::fail(&e),
    }
}

fn user_name(uid: u32) -> String {
    if uid == 0 {
        "root".into()
    } else {
        uid.to_string()
    }
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// table or json.
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// Print only the ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

pub fn run_list(cli: &Cli, args: &ListArgs) -> i32 {
    let root = cli.state_root();
    let states: Vec<State> = container::list(&root)
        .iter()
        .filter_map(|id| State::load(&root, id).ok())
        .collect();
    if args.quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return 0;
    }
    match args.format.as_str() {
        "json" => {
            let v: Vec<serde_json::Value> = states
                .iter()
                .map(|s| {
                    let o = s.to_oci();
                    serde_json::json!({
                        "ociVersion": o["ociVersion"],
                        "id": s.id,
                        "pid": o["pid"],
                        "status": o["status"],
                        "bundle": s.bundle,
                        "rootfs": s.rootfs,
                        "created": s.created,
                        "annotations": s.annotations,
                        "owner": o["owner"],
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(v));
        }
        "table" => {
            println!("ID          PID         STATUS      BUNDLE      CREATED     OWNER");
            for s in &states {
                let o = s.to_oci();
                println!(
                    "{:<11} {:<11} {:<11} {:<11} {:<11} {}",
                    s.id,
                    o["pid"],
                    s.status().as_str(),
                    s.bundle.display(),
                    s.created,
                    o["owner"].as_str().unwrap_or("")
                );
            }
        }
        f => return crate::fail(&format!("invalid format {f:?}: use table or json")),
    }
    0
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print the container's statistics once and exit.
    #[arg(long)]
    pub stats: bool,
    /// Seconds between statistics otherwise.
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

fn stats_event(root: &Path, id: &str) -> Result<serde_json::Value, String> {
    let st = load_in(
        root,
        id,
        &[Status::Created, Status::Running, Status::Paused],
        "get statistics of",
    )?;
    let s = match call(root, id, &Request::Stats)? {
        Reply::Stats { stats } => stats,
        r => return Err(format!("unexpected reply {r:?}")),
    };
    let cg = crate::cgroup_stats(&st);
    Ok(serde_json::json!({
        "type": "stats",
        "id": id,
        "data": {
            "cpu": {
                "usage": {
                    "total": s.cpu_user_ns + s.cpu_system_ns,
                    "kernel": s.cpu_system_ns,
                    "user": s.cpu_user_ns,
                },
                "throttling": {},
            },
            "memory": {
                "usage": {
                    "usage": cg.get("memory_usage").cloned().unwrap_or(s.memory_bytes.into()),
                    "limit": cg.get("memory_limit").cloned().unwrap_or(serde_json::Value::from(u64::MAX)),
                },
                "raw": {"sandbox_memory_file": s.memory_bytes},
            },
            "pids": {
                "current": s.pids,
                "limit": cg.get("pids_limit").cloned().unwrap_or(0.into()),
            },
        },
    }))
}

pub fn run_events(cli: &Cli, args: &EventsArgs) -> i32 {
    let root = cli.state_root();
    let interval = parse_duration(&args.interval).unwrap_or(std::time::Duration::from_secs(5));
    loop {
        match stats_event(&root, &args.id) {
            Ok(v) => println!("{v}"),
            Err(e) => {
                if args.stats {
                    return crate::fail(&e);
                }
                return 0;
            }
        }
        if args.stats {
            return 0;
        }
        std::thread::sleep(interval);
    }
}

fn parse_duration(s: &str) -> Option<std::time::Duration> {
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse().ok().map(std::time::Duration::from_millis);
    }
    let n = s.strip_suffix('s').unwrap_or(s);
    n.parse::<f64>()
        .ok()
        .map(std::time::Duration::from_secs_f64)
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// A file with a runtime-spec `linux.resources` object (`-`: stdin).
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes.
    #[arg(long)]
    pub memory: Option<String>,
    /// Maximum number of pids.
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// CPU shares.
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CPU CFS quota (µs per period).
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period (µs).
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    pub id: String,
}

pub fn run_update(cli: &Cli, args: &UpdateArgs) -> i32 {
    let root = cli.state_root();
    let r = (|| {
        let st = load_in(
            &root,
            &args.id,
            &[Status::Created, Status::Running, Status::Paused],
            "update",
        )?;
        let mut res: serde_json::Value = match &args.resources {
            Some(p) => {
                let data = if p.as_os_str() == "-" {
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                        .map_err(|e| format!("reading the resources from stdin: {e}"))?;
                    s
                } else {
                    std::fs::read_to_string(p)
                        .map_err(|e| format!("reading {}: {e}", p.display()))?
                };
                serde_json::from_str(&data).map_err(|e| format!("the resources JSON: {e}"))?
            }
            None => serde_json::json!({}),
        };
        if let Some(m) = &args.memory {
            res["memory"]["limit"] = parse_bytes(m)?.into();
        }
        if let Some(p) = args.pids_limit {
            res["pids"]["limit"] = p.into();
        }
        if let Some(s) = args.cpu_shares {
            res["cpu"]["shares"] = s.into();
        }
        if let Some(q) = args.cpu_quota {
            res["cpu"]["quota"] = q.into();
        }
        if let Some(p) = args.cpu_period {
            res["cpu"]["period"] = p.into();
        }
        crate::cgroup_update(&st, &res)
    })();
    match r {
        Ok(()) => 0,
        Err(e) => crate::fail(&e),
    }
}

fn parse_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t.as_str(), 1),
    };
    num.trim_end_matches('b')
        .parse::<i64>()
        .map(|n| n * mul)
        .map_err(|_| format!("invalid size {s:?}"))
}

pub fn run_features() -> i32 {
    let caps: Vec<String> = crate::spec::cap_names().collect();
    let v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": container::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "bind", "rbind",
                         "private", "rprivate", "relatime", "noatime", "strictatime"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_LOG"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GT",
                              "SCMP_CMP_GE", "SCMP_CMP_MASKED_EQ"],
                "archs": ["SCMP_ARCH_X86_64"],
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
        },
        "annotations": {
            "org.opencontainers.runtime-spec.features.runtime": "runsc (an application kernel in Rust)",
        },
    });
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    0
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Where to write config.json.
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
}

/// `runsc spec [--rootless]`.
pub fn run_spec(cli: &Cli, args: &SpecArgs) -> i32 {
    let p = args.bundle.join("config.json");
    if p.exists() {
        return crate::fail(&format!("File {} exists. Remove it first", p.display()));
    }
    let spec = if cli.rootless.as_deref().is_some_and(|v| v != "false") {
        oci_spec::runtime::Spec::rootless(0, 0)
    } else {
        oci_spec::runtime::Spec::default()
    };
    match spec.save(&p) {
        Ok(()) => 0,
        Err(e) => crate::fail(&format!("writing {}: {e}", p.display())),
    }
}
