//! `runsc`: the OCI runtime whose containers run on the sentry.

// The sandbox's cgroup, for the OCI lifecycle commands that create,
// update, pause and delete it.
#[allow(dead_code)]
mod cgroup;
mod cmd_do;
mod cmd_gofer;
mod confine;
mod logging;
mod oci_seccomp;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "runsc",
    version,
    about = "An OCI runtime that runs containers on a user-space application kernel"
)]
pub struct Cli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/var/run/runsc")]
    pub root: std::path::PathBuf,
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
    /// Log every guest system call with its arguments and result.
    #[arg(long, global = true)]
    pub strace: bool,
    /// How guest code runs.
    #[arg(long, global = true, value_enum, default_value_t = PlatformKind::Ptrace)]
    pub platform: PlatformKind,
    /// Networking of the sandbox.
    #[arg(long, global = true, value_enum, default_value_t = Network::None)]
    pub network: Network,
    #[command(subcommand)]
    pub command: Command,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Network {
    /// Loopback only.
    None,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a program in a new sandbox, with the host's standard streams.
    Do(cmd_do::DoArgs),
    /// Serve a sandbox's host files to its sentry (started by runsc).
    Gofer(cmd_gofer::GoferArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _guard = match logging::init(&cli) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("runsc: setting up logging: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match &cli.command {
        Command::Do(args) => cmd_do::run(&cli, args),
        Command::Gofer(args) => cmd_gofer::run(&cli, args),
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}
