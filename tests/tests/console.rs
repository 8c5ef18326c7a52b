//! The sandbox's console: `runsc do` with a terminal on stdin runs the
//! program on a terminal of the sandbox's own, bridged to the host's. The
//! tests make a host pty, start `runsc do` on its replica (as its
//! controlling terminal, in its foreground, as a shell would), and type
//! at its master.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BUSYBOX: &str = "/bin/busybox";

/// A host pty pair with a window size.
fn openpty(rows: u16, cols: u16) -> (OwnedFd, OwnedFd) {
    let (mut master, mut replica) = (-1, -1);
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two fds; the name and settings are null, the
    // size is ours.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut replica,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    for fd in [master, replica] {
        // SAFETY: marks our own new fd close-on-exec: no runsc of this
        // or another test may hold the master open.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // SAFETY: both fds are new and ours alone.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(replica)) }
}

/// What a program on the terminal printed, read by a thread.
struct Screen {
    master: std::fs::File,
    out: Arc<Mutex<Vec<u8>>>,
    /// Where the next `expect` starts looking.
    seen: usize,
}

impl Screen {
    fn new(master: OwnedFd) -> Screen {
        let out = Arc::new(Mutex::new(Vec::new()));
        let mut reader = std::fs::File::from(master.try_clone().unwrap());
        let o = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once every replica is closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Screen {
            master: std::fs::File::from(master),
            out,
            seen: 0,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
    }

    /// Waits until `what` appears after what earlier calls matched;
    /// false after `limit`.
    fn wait_for(&mut self, what: &str, limit: Duration) -> bool {
        let start = Instant::now();
        loop {
            let text = self.text();
            if let Some(i) = text.get(self.seen..).and_then(|t| t.find(what)) {
                self.seen += i + what.len();
                return true;
            }
            if start.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn expect(&mut self, what: &str) {
        assert!(
            self.wait_for(what, Duration::from_secs(20)),
            "{what:?} did not appear; the terminal shows:\n{:?}",
            self.text()
        );
    }
}

/// Starts `runsc do ARGS` with the pty's replica as its terminal: stdin,
/// and stdout and stderr unless given.
fn start(replica: &OwnedFd, args: &[&str], stdout: Option<Stdio>) -> Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(tests::runsc());
    cmd.arg("do").args(args);
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("PS1", "$ ")
        .env("TERM", "dumb")
        .env("LANG", "C");
    cmd.stdin(Stdio::from(replica.try_clone().unwrap()));
    cmd.stdout(stdout.unwrap_or_else(|| Stdio::from(replica.try_clone().unwrap())));
    cmd.stderr(Stdio::from(replica.try_clone().unwrap()));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // A session of its own with the pty as its terminal, as a
            // login shell has: runsc is then in its foreground group.
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            for sig in 1..32 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            Ok(())
        });
    }
    cmd.spawn().expect("starting runsc")
}

/// Waits for `child` (killing it after `limit`); its exit code.
fn finish(mut child: Child, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            use std::os::unix::process::ExitStatusExt;
            return st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("runsc did not exit in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn local_flags(fd: &OwnedFd) -> libc::tcflag_t {
    // SAFETY: all-zero is a valid termios; tcgetattr writes one.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: as above, on our own fd.
    assert_eq!(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) }, 0);
    t.c_lflag
}

#[test]
fn an_interactive_shell_with_signals_and_resizes() {
    assert!(
        std::path::Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing"
    );
    let (master, replica) = openpty(24, 80);
    let before = local_flags(&replica);
    assert!(before & libc::ICANON != 0 && before & libc::ECHO != 0);
    let child = start(&replica, &[BUSYBOX, "sh"], None);
    let mut s = Screen::new(master);
    s.expect("$ ");
    // The host terminal is raw: the sandbox's own terminal edits and
    // echoes.
    let raw = local_flags(&replica);
    assert_eq!(raw & (libc::ICANON | libc::ECHO | libc::ISIG), 0);
    s.send("echo hello $((6 * 7))\r");
    s.expect("echo hello $((6 * 7))\r\n");
    s.expect("hello 42\r\n");
    s.expect("$ ");
    s.send("tty; [ -t 1 ] && echo is a terminal\r");
    s.expect("/dev/pts/0\r\n");
    s.expect("is a terminal\r\n");
    s.send("stty size; echo $LINES $COLUMNS\r");
    s.expect("24 80\r\n");
    s.expect("$ ");
    // ^C interrupts a foreground job, and the shell goes on.
    s.send("sleep 30\r");
    s.expect("sleep 30\r\n");
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    s.send("\x03");
    s.expect("^C");
    s.expect("$ ");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "^C did not end sleep"
    );
    s.send("echo status $?\r");
    s.expect("status 130\r\n");
    // A resize of the host terminal reaches the sandbox's.
    let ws = libc::winsize {
        ws_row: 40,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from our stack.
    let r = unsafe { libc::ioctl(s.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    assert_eq!(r, 0);
    let mut resized = false;
    for _ in 0..50 {
        s.send("stty size\r");
        if s.wait_for("40 100\r\n", Duration::from_millis(300)) {
            resized = true;
            break;
        }
    }
    assert!(resized, "the size did not follow:\n{:?}", s.text());
    // The foreground job gets SIGWINCH (the shell's own handler is its
    // line editor's while it reads a command).
    s.send(
        "sh -c 'trap \"echo winched; exit 3\" WINCH; echo armed; while :; do sleep 0.1; done'\r",
    );
    s.expect("armed\r\n");
    let ws = libc::winsize {
        ws_row: 30,
        ws_col: 90,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: as above.
    unsafe { libc::ioctl(s.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    s.expect("winched\r\n");
    s.send("echo status $?\r");
    s.expect("status 3\r\n");
    s.send("exit 7\r");
    assert_eq!(finish(child, Duration::from_secs(20)), 7);
    // The host terminal has its settings back.
    assert_eq!(local_flags(&replica), before);
}

#[test]
fn only_the_streams_that_are_the_terminal_use_it() {
    let (master, replica) = openpty(24, 80);
    let (mut r, w) = std::io::pipe().unwrap();
    let child = start(
        &replica,
        &[
            BUSYBOX,
            "sh",
            "-c",
            "tty; [ -t 1 ] || echo stdout is no terminal; echo to the terminal >&2",
        ],
        Some(Stdio::from(w)),
    );
    let mut s = Screen::new(master);
    assert_eq!(finish(child, Duration::from_secs(20)), 0);
    let mut out = String::new();
    r.read_to_string(&mut out).unwrap();
    assert_eq!(out, "/dev/pts/0\nstdout is no terminal\n");
    s.expect("to the terminal\r\n");
}

/// A program that reads lines: the sandbox's line discipline echoes,
/// erases and ends the input at ^D.
#[test]
fn canonical_input_echo_erase_and_eof() {
    let (master, replica) = openpty(24, 80);
    let child = start(&replica, &[BUSYBOX, "cat"], None);
    let mut s = Screen::new(master);
    s.send("line one\r");
    s.expect("line one\r\nline one\r\n");
    s.send("abx\x7fc wrong\x17right\r");
    s.expect("abx\x08 \x08c wrong\x08 \x08\x08 \x08\x08 \x08\x08 \x08\x08 \x08right\r\n");
    s.expect("abc right\r\n");
    s.send("\x04");
    assert_eq!(finish(child, Duration::from_secs(20)), 0);
}

/// The host terminal goes away: the sandbox ends, it does not hang.
#[test]
fn closing_the_host_terminal_ends_the_sandbox() {
    let (master, replica) = openpty(24, 80);
    let child = start(&replica, &[BUSYBOX, "sh"], None);
    // The prompt, read here (a Screen's thread would keep the master open).
    let mut seen = Vec::new();
    let start = Instant::now();
    while !String::from_utf8_lossy(&seen).contains("$ ") {
        assert!(start.elapsed() < Duration::from_secs(20), "no prompt");
        let mut p = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd of ours.
        if unsafe { libc::poll(&mut p, 1, 100) } == 1 {
            let mut buf = [0u8; 1024];
            // SAFETY: reads into our buffer from our fd.
            let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                seen.extend_from_slice(&buf[..n as usize]);
            }
        }
    }
    drop(master);
    drop(replica);
    // Killed by the host's SIGHUP (runsc, the session leader of that
    // terminal, dies of it), or ended by the guest's hangup.
    let code = finish(child, Duration::from_secs(20));
    assert!(code == 128 + libc::SIGHUP || code == 0, "exit {code}");
}
