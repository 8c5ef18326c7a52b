//! The host console bridge.
//!
//! A host terminal given to the sandbox (the replica of a pty the OCI
//! runtime made for `--console-socket`, or the user's own terminal for
//! `runsc do`) is never a guest file. The sentry makes a pair of its own
//! in the sandbox's `/dev/pts`, gives the guest its replica, and copies
//! bytes between the host terminal and the master: host input to the
//! master (so the sentry's line discipline echoes, edits lines and turns
//! ^C into SIGINT), master output to the host. The host terminal is raw
//! while the bridge runs and gets its settings back at the end. The
//! sandbox terminal's window size is the host's: copied at the start, and
//! again when it changes (for the boot console the sentry's own SIGWINCH,
//! which every sentry thread blocks and a signalfd made before the
//! seccomp filter reads; for others [`Console::resync_size`]).
//!
//! Two sentry threads per console: one waits in `poll` on the host fd
//! (and the signalfd, and an eventfd that ends it), one waits for the
//! master's output. Their host syscalls are `read`, `write` and `poll`,
//! and `ioctl` TCGETS, TCSETS and TIOCGWINSZ on the host fd, all in the
//! seccomp allow-list.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::errno::Errno;
use crate::fsimpl::devpts::{self, MasterEnd};
use crate::hostcall;
use crate::kernel::tty::{Settings, Terminal, WinSize};
use crate::kernel::waiter::{Waiter, ALL_EVENTS};
use crate::kernel::Kernel;
use crate::sync::LockExt;
use crate::vfs::FileDescription;

/// A host terminal bridged to a terminal of the sandbox's own.
pub struct Console {
    shared: Arc<Shared>,
    input: Option<std::thread::JoinHandle<()>>,
    output: Option<(std::thread::JoinHandle<()>, mpsc::Receiver<()>)>,
}

struct Shared {
    host: OwnedFd,
    term: Arc<Terminal>,
    /// The master (None once the host hung up: the guest's terminal hangs
    /// up too).
    master: Mutex<Option<MasterEnd>>,
    /// The host terminal's settings before the bridge made it raw.
    saved: Option<[u8; 36]>,
    stop: AtomicBool,
    /// Written once, to end the input thread's poll.
    wake: OwnedFd,
    /// SIGWINCH as it reaches the sentry (the boot console's).
    winch: Option<OwnedFd>,
}

/// `cfmakeraw` of host settings.
fn make_raw(t: &[u8; 36]) -> [u8; 36] {
    use libc::*;
    let mut s = Settings::from_termios(t);
    s.iflag &= !(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    s.oflag &= !OPOST;
    s.lflag &= !(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    s.cflag = (s.cflag & !(CSIZE | PARENB)) | CS8;
    s.cc[VMIN] = 1;
    s.cc[VTIME] = 0;
    s.to_termios()
}

/// Bridges the host terminal `host` to a new pair in the sandbox's
/// `/dev/pts` (its node owned by `uid`/`gid`, with the tty group the
/// mount gives): the console, and the replica open for reading and
/// writing, to install as a process's fds 0, 1 and 2. `winch`: a signalfd
/// of the sentry's SIGWINCH, for the console whose host terminal sends it
/// to the sentry. Nothing of the sandbox's terminal is anyone's
/// controlling terminal yet: see [`Console::set_controlling`].
pub fn attach(
    kernel: &Arc<Kernel>,
    host: OwnedFd,
    uid: u32,
    gid: u32,
    winch: Option<OwnedFd>,
) -> Result<(Console, Arc<FileDescription>), Errno> {
    let (master, replica) = devpts::new_console_pair(kernel, uid, gid)?;
    let term = master.terminal().clone();
    let fd = host.as_raw_fd();
    let saved = hostcall::host_tcgets(fd).ok();
    if let Some(s) = &saved {
        if let Err(e) = hostcall::host_tcsets(fd, &make_raw(s)) {
            tracing::warn!("console: cannot make the host terminal raw: {e}");
        }
    }
    let shared = Arc::new(Shared {
        host,
        term,
        master: Mutex::new(Some(master)),
        saved,
        stop: AtomicBool::new(false),
        wake: hostcall::eventfd()?,
        winch,
    });
    shared.resync_size();
    let s = shared.clone();
    let input = std::thread::Builder::new()
        .name("console-in".into())
        .spawn(move || s.input_loop())
        .map_err(|_| Errno::EAGAIN)?;
    let s = shared.clone();
    let (done_tx, done_rx) = mpsc::channel();
    let output = std::thread::Builder::new()
        .name("console-out".into())
        .spawn(move || {
            s.output_loop();
            let _ = done_tx.send(());
        })
        .map_err(|_| Errno::EAGAIN)?;
    let console = Console {
        shared,
        input: Some(input),
        output: Some((output, done_rx)),
    };
    Ok((console, replica))
}

/// For `runsc exec --tty` into a running sandbox: bridges `host` to a new
/// terminal of the sandbox (see [`attach`]); its size follows the host's
/// when the caller asks ([`Console::resync_size`]).
pub fn attach_console(
    kernel: &Arc<Kernel>,
    host: OwnedFd,
    uid: u32,
    gid: u32,
) -> Result<(Console, Arc<FileDescription>), Errno> {
    attach(kernel, host, uid, gid, None)
}

impl Console {
    /// The sandbox's terminal.
    pub fn terminal(&self) -> &Arc<Terminal> {
        &self.shared.term
    }

    /// Makes the console the controlling terminal of process `pid` (a
    /// session leader without one), its process group in the foreground.
    pub fn set_controlling(&self, kernel: &Kernel, pid: i32) -> Result<(), Errno> {
        crate::kernel::tty::set_controlling_terminal(kernel, pid, &self.shared.term)
    }

    /// Gives the sandbox's terminal the host terminal's window size (its
    /// foreground group gets SIGWINCH when that changes it).
    pub fn resync_size(&self) {
        self.shared.resync_size();
    }

    /// Ends the bridge: output still waiting goes to the host (for at most
    /// a few seconds if the host takes none), the host terminal gets its
    /// settings back, and the sandbox's terminal hangs up.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        let s = &self.shared;
        s.stop.store(true, Ordering::SeqCst);
        let _ = hostcall::write_fd(s.wake.as_raw_fd(), &1u64.to_le_bytes());
        s.term.queue().notify_all();
        if let Some(h) = self.input.take() {
            let _ = h.join();
        }
        if let Some((h, done)) = self.output.take() {
            if done.recv_timeout(Duration::from_secs(5)).is_ok() {
                let _ = h.join();
            } else {
                tracing::warn!("console: the host terminal takes no more output; giving up on it");
            }
        }
        if let Some(saved) = &s.saved {
            let _ = hostcall::host_tcsets(s.host.as_raw_fd(), saved);
        }
        s.master.locked().take();
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if self.input.is_some() || self.output.is_some() {
            self.end();
        }
    }
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn resync_size(&self) {
        if let Ok([row, col, xpixel, ypixel]) = hostcall::host_winsize(self.host.as_raw_fd()) {
            self.term.set_winsize(WinSize {
                row,
                col,
                xpixel,
                ypixel,
            });
        }
    }

    /// Waits until the terminal changes after `gen`, the bridge stops, or
    /// `timeout` passes.
    fn wait_change(&self, gen: u64, timeout: Option<Duration>) {
        let deadline = timeout.map(|d| Instant::now() + d);
        let q = self.term.queue();
        let w = Waiter::new();
        let _r = q.register(&w, ALL_EVENTS);
        loop {
            w.reset();
            if self.term.generation() != gen || self.stopping() {
                return;
            }
            if !w.wait_woken(deadline) && deadline.is_some_and(|d| Instant::now() >= d) {
                return;
            }
        }
    }

    /// Host input, and SIGWINCH, until the bridge stops or the host hangs
    /// up.
    fn input_loop(&self) {
        let mut buf = [0u8; 4096];
        let pfd = |fd: i32| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            if self.stopping() {
                return;
            }
            let mut fds = vec![pfd(self.host.as_raw_fd()), pfd(self.wake.as_raw_fd())];
            if let Some(w) = &self.winch {
                fds.push(pfd(w.as_raw_fd()));
            }
            if hostcall::poll_fds(&mut fds, -1).is_err() || fds[1].revents != 0 {
                return;
            }
            if fds.get(2).is_some_and(|f| f.revents != 0) {
                if let Some(w) = &self.winch {
                    let mut info = [0u8; 128];
                    while hostcall::read_fd(w.as_raw_fd(), &mut info).is_ok_and(|n| n > 0) {}
                }
                self.resync_size();
            }
            let rev = fds[0].revents;
            if rev & libc::POLLNVAL != 0 {
                return;
            }
            if rev & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                match hostcall::read_fd(self.host.as_raw_fd(), &mut buf) {
                    Ok(n) if n > 0 => self.to_master(&buf[..n]),
                    Err(Errno::EAGAIN) => {}
                    _ => {
                        // The host terminal hung up: so does the sandbox's.
                        tracing::info!("console: the host terminal hung up");
                        self.master.locked().take();
                        return;
                    }
                }
            }
        }
    }

    fn to_master(&self, mut data: &[u8]) {
        while !data.is_empty() && !self.stopping() {
            let gen = self.term.generation();
            match self.term.master_write(data) {
                Ok(n) => data = &data[n..],
                Err(Errno::EAGAIN) => self.wait_change(gen, Some(Duration::from_millis(100))),
                Err(_) => return,
            }
        }
    }

    /// The master's output to the host, until the bridge stops (then what
    /// is left) or the host takes no more.
    fn output_loop(&self) {
        let mut buf = vec![0u8; 4096];
        loop {
            let gen = self.term.generation();
            let stopping = self.stopping();
            match self.term.master_read(&mut buf) {
                Ok(n) => {
                    if !self.write_host(&buf[..n]) {
                        return;
                    }
                    continue;
                }
                Err(_) if stopping => return,
                Err(_) => {}
            }
            self.wait_change(gen, None);
        }
    }

    fn write_host(&self, mut data: &[u8]) -> bool {
        let fd = self.host.as_raw_fd();
        while !data.is_empty() {
            match hostcall::write_fd(fd, data) {
                Ok(n) => data = &data[n..],
                Err(Errno::EAGAIN) => {
                    let mut p = [libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    }];
                    if hostcall::poll_fds(&mut p, 1000).is_err() {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
        true
    }
}
