//! `runsc gofer`: the file proxy of one sandbox.
//!
//! It opens what it serves first (the root and each `--mount`), then
//! confines itself (`gofer::confine`: private mount namespace, an empty
//! tmpfs root, capabilities cut to the file-owner set, no new privileges,
//! a seccomp allow-list) and only then reads the first request from the
//! socket it inherited as `--fd`. It serves one connection and exits when
//! the sentry closes it.
//!
//! `runsc` starts it with `gofer::spawn::start_gofer`, which passes one
//! end of a `SOCK_SEQPACKET` pair as `--fd` and returns the other end for
//! `gofer::Client::connect`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use clap::Args;

use crate::Cli;

#[derive(Args, Debug)]
pub struct GoferArgs {
    /// The host directory served as the sandbox's root.
    #[arg(id = "root", long = "root", value_name = "DIR")]
    pub serve_root: PathBuf,
    /// Serve the root writable (it is read-only otherwise).
    #[arg(long = "root-rw")]
    pub root_rw: bool,
    /// A bind mount to serve: HOST:GUEST, or HOST:GUEST:ro. Repeatable.
    #[arg(long = "mount", value_name = "HOST:GUEST[:ro]")]
    pub mounts: Vec<String>,
    /// The connected socket inherited from the parent.
    #[arg(long, value_name = "N")]
    pub fd: RawFd,
}

/// Parses `HOST:GUEST[:ro]`.
fn parse_mount(s: &str) -> Result<(PathBuf, String, bool), String> {
    let (rest, ro) = match s.strip_suffix(":ro") {
        Some(r) => (r, true),
        None => (s.strip_suffix(":rw").unwrap_or(s), false),
    };
    let (host, guest) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("--mount {s}: expected HOST:GUEST[:ro]"))?;
    if host.is_empty() || !guest.starts_with('/') {
        return Err(format!("--mount {s}: the guest path must be absolute"));
    }
    Ok((PathBuf::from(host), guest.to_string(), ro))
}

pub fn run(_cli: &Cli, args: &GoferArgs) -> i32 {
    match serve(args) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("gofer: {e}");
            eprintln!("runsc gofer: {e}");
            1
        }
    }
}

fn serve(args: &GoferArgs) -> Result<(), String> {
    if args.fd <= 2 {
        return Err(format!("--fd {}: not a socket fd", args.fd));
    }
    // SAFETY: the fd was handed to this process for it to own (checked to
    // be a seqpacket socket just below).
    let sock = unsafe { OwnedFd::from_raw_fd(args.fd) };
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one int into `ty`.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut ty as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 || ty != libc::SOCK_SEQPACKET {
        std::mem::forget(sock);
        return Err(format!("--fd {}: not a SOCK_SEQPACKET socket", args.fd));
    }
    let mut exports =
        vec![
            gofer::Export::open_hiding_submounts(&args.serve_root, "/", !args.root_rw)
                .map_err(|e| format!("opening {}: {e}", args.serve_root.display()))?,
        ];
    for m in &args.mounts {
        let (host, guest, ro) = parse_mount(m)?;
        exports.push(
            gofer::Export::open_hiding_submounts(&host, &guest, ro)
                .map_err(|e| format!("opening {}: {e}", host.display()))?,
        );
    }
    let mut keep: Vec<RawFd> = vec![sock.as_raw_fd()];
    for e in &exports {
        keep.extend(e.fds().iter().map(|f| f.as_raw_fd()));
    }
    gofer::confine::confine(&keep).map_err(|e| format!("confining: {e}"))?;
    tracing::debug!(mounts = exports.len(), "gofer serving");
    gofer::serve(&exports, sock).map_err(|e| format!("serving: {e}"))
}

#[cfg(test)]
mod tests {
    use super::parse_mount;

    #[test]
    fn mount_args() {
        assert_eq!(
            parse_mount("/a:/b").unwrap(),
            ("/a".into(), "/b".to_string(), false)
        );
        assert_eq!(
            parse_mount("/a:b:/c:ro").unwrap(),
            ("/a:b".into(), "/c".to_string(), true)
        );
        assert!(parse_mount("/a").is_err());
        assert!(parse_mount("/a:rel").is_err());
    }
}
