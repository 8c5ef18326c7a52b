//! Starting the sentry confined (DESIGN.md, invariant 2), as gVisor's
//! `runsc boot` is.
//!
//! `runsc do` opens everything the sentry needs from the host (the
//! program, the standard streams, the log) and then creates the sentry as
//! a child in new mount, pid, ipc, uts and network namespaces (and a new
//! user namespace when not started as root); with a network namespace to
//! join (the container's), the child joins it and takes over its
//! interfaces (`netns.rs`) first. With `--network=host` there is no new
//! network namespace: the sentry stays in runsc's (or joins the named one
//! and takes nothing over). The child:
//! 1. dies with its parent (`PR_SET_PDEATHSIG`), and waits until the
//!    parent has written its uid and gid maps (user namespace only);
//! 2. makes every mount private, mounts an empty tmpfs, remounts it
//!    read-only and `pivot_root`s into it (a `chroot` when `pivot_root` is
//!    impossible, say from an initramfs), detaches the old root and
//!    `chdir`s to `/`;
//! 3. drops every capability (bounding set, ambient, inheritable,
//!    permitted, effective), locks the securebits, sets `NO_NEW_PRIVS`
//!    and a core-size limit of zero;
//! 4. boots the sentry, which installs its seccomp filter
//!    (`sentry::confine`) before the first guest instruction.
//!
//! The parent waits and passes the sentry's exit status through; it
//! forwards SIGINT, SIGTERM, SIGHUP and SIGQUIT, and dies of the signal
//! itself when the sentry ended because of it (as runsc did when the
//! sentry ran in its own process). It forwards SIGWINCH too, which the
//! sentry takes as "the console's size changed". A sentry killed by a signal is reported
//! on standard error and answered 128+N; SIGSYS means its seccomp filter
//! stopped a host syscall.

use std::ffi::CStr;
use std::io::Error;
use std::sync::atomic::{AtomicI32, Ordering};

/// The name the sentry process goes by (`/proc/PID/comm`).
pub const SENTRY_NAME: &CStr = c"runsc-sentry";

/// Signals the parent passes on to the sentry, which ends with them.
const FORWARDED: [i32; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// The sentry's pid (for the parent's signal handler).
static SENTRY_PID: AtomicI32 = AtomicI32::new(0);
/// The last signal the parent forwarded (0: none).
static FORWARDED_SIGNAL: AtomicI32 = AtomicI32::new(0);

fn os_err(what: &str) -> String {
    format!("{what}: {}", Error::last_os_error())
}

/// How the sentry's process is started.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpawnOptions {
    /// The sentry outlives `runsc` (an OCI container, whose `create`
    /// exits while it runs); otherwise it dies with its parent.
    pub detached: bool,
    /// A host terminal to make the sentry's controlling terminal (in a
    /// session of its own), so that the terminal's SIGWINCH reaches it.
    pub controlling_terminal: Option<i32>,
    /// A network namespace (an open fd) to join instead of making a new
    /// one; its interfaces are taken over for the sentry's stack
    /// ([`crate::netns`]) unless `host_network`.
    pub netns: Option<i32>,
    /// `--network=host`: no new network namespace (runsc's, or `netns`
    /// joined as it is, nothing taken over).
    pub host_network: bool,
}

/// Runs `sentry` (which boots the sentry and returns the exit code) in a
/// confined child process; returns the code `runsc` exits with.
pub fn run_confined(sentry: impl FnOnce() -> i32, opts: SpawnOptions) -> i32 {
    let pid = match spawn_confined(sentry, opts, |_| Ok(())) {
        Ok(pid) => pid,
        Err(e) => {
            eprintln!("runsc: {e}");
            tracing::error!("{e}");
            return 1;
        }
    };
    wait_confined(pid)
}

/// Starts `sentry` in a confined child process; its pid.
/// `before_start` runs in the parent once the child exists, before it
/// may go on (e.g. to put it into a cgroup).
pub fn spawn_confined(
    sentry: impl FnOnce() -> i32,
    opts: SpawnOptions,
    before_start: impl FnOnce(i32) -> Result<(), String>,
) -> Result<i32, String> {
    // SAFETY: geteuid and getegid have no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let user_ns = uid != 0;
    let mut flags =
        libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    if opts.netns.is_none() && !opts.host_network {
        flags |= libc::CLONE_NEWNET;
    }
    if user_ns {
        flags |= libc::CLONE_NEWUSER;
    }
    let mut pipe = [0i32; 2];
    // SAFETY: pipe2 writes two new fds to our array.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os_err("creating the sentry's start pipe"));
    }
    let [ready_r, ready_w] = pipe;
    // SAFETY: a fork-like clone (no new stack, no shared memory) of a
    // single-threaded process: the child continues on a copy of this
    // stack, with its own copy of everything, as after fork().
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        let e = Error::last_os_error();
        // SAFETY: closing the pipe we made.
        unsafe {
            libc::close(ready_r);
            libc::close(ready_w);
        }
        return Err(format!(
            "cannot create the sentry's namespaces (mount, pid, ipc, uts, network{}): {e}",
            if user_ns { ", user" } else { "" }
        ));
    }
    if pid == 0 {
        // SAFETY: closing our copy of the write end.
        unsafe { libc::close(ready_w) };
        child(ready_r, sentry, opts);
    }
    let pid = pid as i32;
    // The parent keeps nothing of what the sentry was given.
    drop(sentry);
    // SAFETY: closing our copy of the read end.
    unsafe { libc::close(ready_r) };
    SENTRY_PID.store(pid, Ordering::SeqCst);
    if user_ns {
        if let Err(e) = write_id_maps(pid, uid, gid) {
            // SAFETY: kills the child we just made.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            wait_for(pid);
            return Err(format!("mapping the sentry's user namespace: {e}"));
        }
    }
    if let Err(e) = before_start(pid) {
        // SAFETY: kills the child we just made, then closes our pipe end.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::close(ready_w);
        }
        wait_for(pid);
        return Err(e);
    }
    // SAFETY: one byte from our buffer to our pipe: the child may go on.
    unsafe { libc::write(ready_w, b"g".as_ptr().cast(), 1) };
    // SAFETY: closes our write end.
    unsafe { libc::close(ready_w) };
    Ok(pid)
}

/// Waits for the sentry started by [`spawn_confined`], forwarding the
/// usual signals to it; returns the code `runsc` exits with.
pub fn wait_confined(pid: i32) -> i32 {
    SENTRY_PID.store(pid, Ordering::SeqCst);
    install_forwarders();
    let status = wait_for(pid);
    if libc::WIFEXITED(status) {
        let code = libc::WEXITSTATUS(status);
        let sig = FORWARDED_SIGNAL.load(Ordering::SeqCst);
        if sig != 0 && code == 128 + sig {
            die_of(sig);
        }
        return code;
    }
    let sig = libc::WTERMSIG(status);
    if sig == libc::SIGSYS {
        eprintln!(
            "runsc: the sentry was killed by SIGSYS: it made a host syscall its seccomp \
             filter forbids"
        );
        tracing::error!("the sentry was killed by SIGSYS (seccomp)");
    } else {
        eprintln!("runsc: the sentry was killed by signal {sig}");
        tracing::error!("the sentry was killed by signal {sig}");
    }
    128 + sig
}

/// Waits for the sentry; returns its wait status.
fn wait_for(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child; status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return status;
        }
        if Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // No child to wait for: report it as a failure.
            return 1 << 8;
        }
    }
}

/// Ends this process with signal `sig`'s default action.
fn die_of(sig: i32) -> ! {
    // SAFETY: restores the default action, unblocks and raises the signal
    // on ourselves; the exit is a fallback should it not kill us.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
        libc::_exit(128 + sig)
    }
}

extern "C" fn forward(sig: libc::c_int) {
    // SIGWINCH only resizes the sandbox's console.
    if sig != libc::SIGWINCH {
        FORWARDED_SIGNAL.store(sig, Ordering::SeqCst);
    }
    let pid = SENTRY_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe; it signals our child.
        unsafe { libc::kill(pid, sig) };
    }
}

fn install_forwarders() {
    // SIGWINCH from the user's terminal (the sandbox's console): the
    // sentry, which reads it from a signalfd, resizes its own terminal.
    for sig in FORWARDED.into_iter().chain([libc::SIGWINCH]) {
        // SAFETY: all-zero is a valid sigaction (empty mask, no flags).
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = forward as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        // SAFETY: installs a handler that only makes async-signal-safe calls.
        unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) };
    }
}

/// The sentry's end of a forwarded signal: as pid 1 of its namespace it
/// cannot die of it by default, so it exits with 128+N, which the parent
/// turns back into death by N.
extern "C" fn sentry_on_signal(sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(128 + sig) };
}

fn write_id_maps(pid: i32, uid: u32, gid: u32) -> Result<(), String> {
    let w = |file: &str, what: String| {
        std::fs::write(format!("/proc/{pid}/{file}"), what).map_err(|e| format!("{file}: {e}"))
    };
    w("setgroups", "deny".into())?;
    w("uid_map", format!("0 {uid} 1"))?;
    w("gid_map", format!("0 {gid} 1"))
}

/// The sentry's process: confines itself, then runs `sentry`.
fn child(ready: i32, sentry: impl FnOnce() -> i32, opts: SpawnOptions) -> ! {
    if let Some(tty) = opts.controlling_terminal {
        // SAFETY: a new session for this process, then the terminal fd
        // (ours, inherited) as its controlling terminal.
        unsafe {
            libc::setsid();
            libc::ioctl(tty, libc::TIOCSCTTY, 0);
        }
    } else if opts.detached {
        // SAFETY: a new session, away from the caller's terminal.
        unsafe { libc::setsid() };
    }
    if opts.detached {
        // The caller's standard streams are runsc's, not the sandbox's
        // (which has its own copies): a caller reading runsc's output
        // to its end must not wait for the sandbox.
        // SAFETY: opens /dev/null and dup2s it onto fds 0-2.
        unsafe {
            let n = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if n >= 0 {
                for fd in 0..3 {
                    libc::dup2(n, fd);
                }
                if n > 2 {
                    libc::close(n);
                }
            }
        }
    }
    // SAFETY: prctl on our own process; then a read from our pipe.
    let go = unsafe {
        if !opts.detached {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        }
        let mut b = 0u8;
        let n = libc::read(ready, (&raw mut b).cast(), 1);
        libc::close(ready);
        n == 1
    };
    if !go {
        // The parent died before we could start (or failed to map us).
        // SAFETY: ends this process at once.
        unsafe { libc::_exit(1) };
    }
    // Before the root is emptied: both read /proc of the namespace.
    if opts.host_network {
        crate::netns::list_host(opts.netns);
    } else if let Some(fd) = opts.netns {
        crate::netns::join_and_take_over(fd);
    }
    if let Some(fd) = opts.netns {
        // SAFETY: closes our copy of the namespace's fd.
        unsafe { libc::close(fd) };
    }
    if let Err(e) = confine_self() {
        eprintln!("runsc: confining the sentry: {e}");
        tracing::error!("confining the sentry: {e}");
        std::process::exit(1);
    }
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(sentry)).unwrap_or(101);
    std::process::exit(code)
}

/// Steps 2 and 3 of the module doc, in the sentry's process.
fn confine_self() -> Result<(), String> {
    // SAFETY: names our own process; the name is a C string.
    unsafe { libc::prctl(libc::PR_SET_NAME, SENTRY_NAME.as_ptr(), 0, 0, 0) };
    empty_root()?;
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: sets our own core-size limit from a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) } != 0 {
        return Err(os_err("setrlimit(RLIMIT_CORE)"));
    }
    drop_capabilities()?;
    for sig in FORWARDED {
        // SAFETY: all-zero is a valid sigaction (empty mask, no flags).
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = sentry_on_signal as *const () as usize;
        // SAFETY: installs a handler that only calls _exit.
        unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) };
    }
    Ok(())
}

fn mount(
    src: &CStr,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), String> {
    // SAFETY: every pointer is a C string or null.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    if rc != 0 {
        return Err(os_err(&format!("mount on {}", target.to_string_lossy())));
    }
    Ok(())
}

/// Makes the sentry's root an empty, read-only tmpfs.
fn empty_root() -> Result<(), String> {
    // Nothing we mount may propagate back to the host.
    mount(c"none", c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    // Any directory serves as the mount point: the mount is ours alone.
    let dir = [c"/tmp", c"/proc", c"/dev", c"/"]
        .into_iter()
        .find(|d| {
            std::fs::metadata(d.to_str().unwrap_or("/"))
                .map(|m| m.is_dir())
                .unwrap_or(false)
        })
        .unwrap_or(c"/");
    let fl = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount(
        c"runsc-root",
        dir,
        Some(c"tmpfs"),
        fl,
        Some(c"mode=555,size=4k,nr_inodes=2"),
    )?;
    mount(
        c"none",
        dir,
        None,
        libc::MS_REMOUNT | libc::MS_RDONLY | fl,
        None,
    )?;
    // SAFETY: chdir to a C string path.
    if unsafe { libc::chdir(dir.as_ptr()) } != 0 {
        return Err(os_err("chdir to the new root"));
    }
    let dot = c".";
    // pivot_root(".", "."): the old root ends up on top of the new one,
    // and is then detached.
    // SAFETY: pivot_root with two C strings.
    let pivoted = unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) } == 0;
    if pivoted {
        // SAFETY: detaches the old root, stacked on "."
        if unsafe { libc::umount2(dot.as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err(os_err("detaching the old root"));
        }
    } else {
        // An initramfs root cannot be pivoted away from: chroot instead
        // (without CAP_SYS_CHROOT the sentry cannot leave it).
        tracing::info!(
            "pivot_root into the sentry's empty root failed ({}); using chroot",
            Error::last_os_error()
        );
        // SAFETY: chroot to a C string path.
        if unsafe { libc::chroot(dot.as_ptr()) } != 0 {
            return Err(os_err("chroot into the empty root"));
        }
    }
    // SAFETY: chdir to a C string path.
    if unsafe { libc::chdir(c"/".as_ptr()) } != 0 {
        return Err(os_err("chdir to /"));
    }
    Ok(())
}

/// Drops every capability of the sentry (it needs none: it traces its
/// own children, which have its uid and its empty capability sets) and
/// sets no_new_privs.
fn drop_capabilities() -> Result<(), String> {
    const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
    const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
    const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;
    const SECBIT_NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
    const SECBIT_KEEP_CAPS_LOCKED: libc::c_ulong = 1 << 5;
    const SECBIT_NO_CAP_AMBIENT_RAISE: libc::c_ulong = 1 << 6;
    const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: libc::c_ulong = 1 << 7;
    let bits = SECBIT_NOROOT
        | SECBIT_NOROOT_LOCKED
        | SECBIT_NO_SETUID_FIXUP
        | SECBIT_NO_SETUID_FIXUP_LOCKED
        | SECBIT_KEEP_CAPS_LOCKED
        | SECBIT_NO_CAP_AMBIENT_RAISE
        | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    // SAFETY: prctl on our own credentials.
    if unsafe { libc::prctl(libc::PR_SET_SECUREBITS, bits, 0, 0, 0) } != 0 {
        return Err(os_err("PR_SET_SECUREBITS"));
    }
    for cap in 0..64 {
        // SAFETY: prctl on our own bounding set.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
            if Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                break; // past the last capability this kernel knows
            }
            return Err(os_err(&format!("PR_CAPBSET_DROP {cap}")));
        }
    }
    // SAFETY: prctl on our own ambient set.
    if unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    } != 0
    {
        return Err(os_err("PR_CAP_AMBIENT_CLEAR_ALL"));
    }
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset reads a v3 header and two data structs.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } != 0 {
        return Err(os_err("capset"));
    }
    // SAFETY: prctl on our own process.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(os_err("PR_SET_NO_NEW_PRIVS"));
    }
    Ok(())
}
