//! `runsc`: the OCI runtime whose containers run on the sentry.

mod cgroup;
mod cmd_create;
mod cmd_do;
mod cmd_exec;
mod cmd_gofer;
mod cmd_ops;
mod confine;
mod console;
mod container;
mod hooks;
mod logging;
mod netns;
mod oci_seccomp;
mod reports;
mod spec;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "runsc",
    disable_version_flag = true,
    about = "An OCI runtime that runs containers on a user-space application kernel"
)]
pub struct Cli {
    /// Print the version (runc's format).
    #[arg(short = 'v', long)]
    pub version: bool,
    /// Directory for container state (default: /var/run/runsc, or
    /// $XDG_RUNTIME_DIR/runsc when not root).
    #[arg(long, global = true)]
    pub root: Option<std::path::PathBuf>,
    /// Where runtime logs go (as containerd passes it).
    #[arg(long, global = true)]
    pub log: Option<std::path::PathBuf>,
    /// Format of runtime logs.
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug messages.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Write the sentry's log to this file instead of standard error.
    #[arg(long = "debug-log", global = true)]
    pub debug_log: Option<std::path::PathBuf>,
    /// Accepted for runc compatibility: the sandbox's cgroup path is read
    /// as systemd's slice:prefix:name form.
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility (true, false or auto).
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Log every guest system call with its arguments and result.
    #[arg(long, global = true)]
    pub strace: bool,
    /// Trace only these syscalls (comma-separated names; implies
    /// --strace).
    #[arg(
        long = "strace-syscalls",
        global = true,
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub strace_syscalls: Option<Vec<String>>,
    /// Write the syscall trace to this file, one line per call with the
    /// pid and tid (implies --strace).
    #[arg(long = "strace-log", global = true, value_name = "FILE")]
    pub strace_log: Option<std::path::PathBuf>,
    /// At the sandbox's end, write a JSON report of what the workload
    /// asked for that the sandbox does not give (syscalls answered ENOSYS,
    /// unsupported arguments, degraded behaviours); `-`: a short summary
    /// on standard error.
    #[arg(long = "compat-report", global = true, value_name = "FILE")]
    pub compat_report: Option<std::path::PathBuf>,
    /// At the sandbox's end, write an OCI `linux.seccomp` profile that
    /// allows what the workload's processes called, and nothing else.
    #[arg(long = "learn-profile", global = true, value_name = "FILE")]
    pub learn_profile: Option<std::path::PathBuf>,
    /// How guest code runs.
    #[arg(long, global = true, value_enum, default_value_t = PlatformKind::Systrap)]
    pub platform: PlatformKind,
    /// Networking of the sandbox: `sandbox` (the sentry's own stack),
    /// `none` (loopback only) or `host` (the host's network through host
    /// sockets the sentry makes: less isolated, see the README).
    #[arg(long, global = true, value_enum, default_value_t = Network::Sandbox)]
    pub network: Network,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// `--root`, or its default.
    pub fn state_root(&self) -> std::path::PathBuf {
        self.root.clone().unwrap_or_else(container::default_root)
    }

    pub fn platform_name(&self) -> &'static str {
        match self.platform {
            PlatformKind::Ptrace => "ptrace",
            PlatformKind::Systrap => "systrap",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlatformKind {
    /// PTRACE_SYSEMU on stub processes.
    Ptrace,
    /// seccomp traps handled in the stub, handed to the sentry through
    /// shared memory.
    Systrap,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Network {
    /// Loopback only, in the sentry's stack.
    None,
    /// The sentry's stack on the container's interfaces, taken over from
    /// the network namespace the spec (or `do --netns`) names; loopback
    /// only when it names none.
    Sandbox,
    /// Host sockets, made by the sentry for the guest's TCP and UDP
    /// sockets, in the host's network namespace (or the one the spec or
    /// `--netns` names, joined as it is). LESS ISOLATED: the guest's
    /// network calls reach the host kernel's stack (through the sentry,
    /// under its seccomp filter).
    Host,
}

impl Network {
    /// The sentry's mode for this choice.
    pub fn mode(self) -> sentry::net::NetworkMode {
        match self {
            Network::None => sentry::net::NetworkMode::None,
            Network::Sandbox => sentry::net::NetworkMode::Sandbox,
            Network::Host => sentry::net::NetworkMode::Host,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a program in a new sandbox, with the host's standard streams.
    Do(cmd_do::DoArgs),
    /// Serve a sandbox's host files to its sentry (started by runsc).
    Gofer(cmd_gofer::GoferArgs),
    /// Create a container from a bundle; its process waits for `start`.
    Create(cmd_create::CreateArgs),
    /// Let a created container's process run.
    Start { id: String },
    /// Print a container's state (runtime-spec JSON).
    State { id: String },
    /// Send a signal to a container's process (or all of them).
    Kill(cmd_ops::KillArgs),
    /// Remove a container (and stop it with --force).
    Delete(cmd_ops::DeleteArgs),
    /// Create and start a container, and wait for it.
    Run(cmd_create::RunArgs),
    /// Run a new process in a running container.
    Exec(cmd_exec::ExecArgs),
    /// List a container's processes.
    Ps(cmd_ops::PsArgs),
    /// List containers.
    List(cmd_ops::ListArgs),
    /// Write a default config.json.
    Spec(cmd_ops::SpecArgs),
    /// Print a container's statistics.
    Events(cmd_ops::EventsArgs),
    /// Stop every process of a container where it is.
    Pause { id: String },
    /// Let a paused container go on.
    Resume { id: String },
    /// Change a container's resource limits.
    Update(cmd_ops::UpdateArgs),
    /// What this runtime supports (runtime-spec features JSON).
    Features,
    /// Wait for a container's process to exit; print its status.
    Wait { id: String },
}

/// Reports a failed command (in the log, as containerd reads it, and on
/// standard error); the exit code for it.
pub fn fail(msg: &str) -> i32 {
    tracing::error!("{msg}");
    if logging::to_file() {
        eprintln!("runsc: {msg}");
    }
    1
}

/// The container's cgroup, from its state.
fn cgroup_of(st: &container::State) -> Result<cgroup::Cgroup, String> {
    let v = st
        .cgroup
        .as_ref()
        .ok_or_else(|| format!("container {} has no cgroup recorded", st.id))?;
    cgroup::Cgroup::load(&v.to_string())
}

/// The cgroup statistics of a container, by name (empty if it has none).
pub fn cgroup_stats(st: &container::State) -> serde_json::Map<String, serde_json::Value> {
    match cgroup_of(st).and_then(|c| c.stats()) {
        Ok(s) => match serde_json::to_value(s) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => Default::default(),
        },
        Err(e) => {
            tracing::warn!("cgroup statistics: {e}");
            Default::default()
        }
    }
}

/// Applies new resource limits (a runtime-spec `linux.resources`) to a
/// container's cgroup.
pub fn cgroup_update(st: &container::State, res: &serde_json::Value) -> Result<(), String> {
    let r: oci_spec::runtime::LinuxResources =
        serde_json::from_value(res.clone()).map_err(|e| format!("the resources: {e}"))?;
    cgroup_of(st)?.update(&r)
}

fn print_version() {
    println!("runsc version {}", env!("CARGO_PKG_VERSION"));
    println!("commit: {}", env!("RUNSC_COMMIT"));
    println!("spec: {}", container::OCI_VERSION);
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        print_version();
        return ExitCode::from(0);
    }
    let _guard = match logging::init(&cli) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("runsc: setting up logging: {e}");
            return ExitCode::from(1);
        }
    };
    let Some(command) = &cli.command else {
        eprintln!("runsc: a command is needed (see runsc --help)");
        return ExitCode::from(1);
    };
    let code = match command {
        Command::Do(args) => cmd_do::run(&cli, args),
        Command::Gofer(args) => cmd_gofer::run(&cli, args),
        Command::Create(args) => cmd_create::run_create(&cli, args),
        Command::Start { id } => cmd_ops::run_start(&cli, id),
        Command::State { id } => cmd_ops::run_state(&cli, id),
        Command::Kill(args) => cmd_ops::run_kill(&cli, args),
        Command::Delete(args) => cmd_ops::run_delete(&cli, args),
        Command::Run(args) => cmd_create::run_run(&cli, args),
        Command::Exec(args) => cmd_exec::run(&cli, args),
        Command::Ps(args) => cmd_ops::run_ps(&cli, args),
        Command::List(args) => cmd_ops::run_list(&cli, args),
        Command::Spec(args) => cmd_ops::run_spec(&cli, args),
        Command::Events(args) => cmd_ops::run_events(&cli, args),
        Command::Pause { id } => cmd_ops::run_pause(&cli, id, true),
        Command::Resume { id } => cmd_ops::run_pause(&cli, id, false),
        Command::Update(args) => cmd_ops::run_update(&cli, args),
        Command::Features => cmd_ops::run_features(),
        Command::Wait { id } => cmd_ops::run_wait(&cli, id),
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}
