//! Terminals for containers (`--console-socket`) and fds handed to the
//! caller over unix sockets (the terminal's master, a pidfd).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::Box as ConsoleSize;

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// Makes a host pseudo-terminal, sends its master to the unix socket at
/// `socket` (as runc does: the message is the terminal's name, the master
/// rides beside it), and returns the replica.
pub fn new_pty(socket: &Path, size: Option<&ConsoleSize>) -> Result<OwnedFd, String> {
    // SAFETY: posix_openpt returns a new fd or -1.
    let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if m < 0 {
        return Err(os_err("opening /dev/ptmx for the container's terminal"));
    }
    // SAFETY: `m` is the new master; ours alone.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: grantpt/unlockpt on our master; ptsname_r writes at most
    // name.len() bytes.
    unsafe {
        if libc::grantpt(m) != 0 || libc::unlockpt(m) != 0 {
            return Err(os_err("unlocking the container's terminal"));
        }
        if libc::ptsname_r(m, name.as_mut_ptr(), name.len()) != 0 {
            return Err(os_err("naming the container's terminal"));
        }
    }
    // SAFETY: ptsname_r wrote a NUL-terminated string.
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_owned();
    // SAFETY: opens the replica by its name.
    let r = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if r < 0 {
        return Err(os_err("opening the container's terminal"));
    }
    // SAFETY: a new fd; ours alone.
    let replica = unsafe { OwnedFd::from_raw_fd(r) };
    if let Some(sz) = size {
        let ws = libc::winsize {
            ws_row: sz.height() as u16,
            ws_col: sz.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from our stack.
        unsafe { libc::ioctl(replica.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    send_fd(socket, path.to_bytes(), master.as_fd())?;
    Ok(replica)
}

/// Connects to the unix stream socket at `path` and sends `fd` with
/// `msg`.
pub fn send_fd(path: &Path, msg: &[u8], fd: std::os::fd::BorrowedFd<'_>) -> Result<(), String> {
    let sock = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("connecting to {}: {e}", path.display()))?;
    gofer::wire::send(sock.as_fd(), msg, &[fd])
        .map_err(|e| format!("sending to {}: {e}", path.display()))
}

/// Sends a pidfd of `pid` to the socket at `path` (`--pidfd-socket`).
pub fn send_pidfd(path: &Path, pid: i32) -> Result<(), String> {
    // SAFETY: pidfd_open returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(os_err("pidfd_open of the container's process"));
    }
    // SAFETY: a new fd; ours alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    send_fd(path, b"pidfd", fd.as_fd())
}
