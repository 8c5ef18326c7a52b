//! The x86-64 system call table and dispatch.
//!
//! One place maps number to name and handler ([`table`]). Handlers are
//! plain functions with typed arguments, one file per syscall family; the
//! argument types also tell `--strace` how to print each argument. A number
//! without a handler answers `ENOSYS`, and is counted and logged once by
//! name.

pub mod attr;
pub mod creds;
pub mod epoll;
pub mod eventfd;
pub mod file;
pub mod fs;
pub mod futex;
pub mod inotify;
pub mod lock;
pub mod memfd;
pub mod mm;
pub mod mount;
pub mod mqueue;
pub mod msg;
pub mod names;
pub mod pidfd;
pub mod pipe;
pub mod prctl;
pub mod process;
pub mod rw;
pub mod sched;
pub mod seccomp;
pub mod sem;
pub mod shm;
pub mod signal;
pub mod signalfd;
pub mod socket;
pub mod splice;
pub mod stat;
pub mod sys;
pub mod thread;
pub mod time;
pub mod timer;
pub mod timerfd;
pub mod xattr;

use std::sync::OnceLock;

use crate::errno::Errno;

use crate::kernel::task::Task;

/// What a handler returns: the value for `rax`, or an errno.
pub type SysResult = Result<u64, Errno>;

type Handler = fn(&mut Task, &[u64; 6]) -> SysResult;

/// How strace prints an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    Int,
    Hex,
    Oct,
    Fd,
    Ptr,
    /// A NUL-terminated string.
    Path,
    /// A buffer the guest passes in; the next argument is its length.
    InBuf,
    /// A buffer the kernel fills; the return value is its length.
    OutBuf,
}

/// Converts a raw register into a typed argument.
pub trait FromArg: Sized {
    const KIND: ArgKind;
    fn from_arg(v: u64) -> Self;
}

/// A file descriptor argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fd(pub i32);

/// A guest pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserAddr(pub u64);

/// A guest pointer to a NUL-terminated string (a path, a name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserPath(pub u64);

/// A guest buffer the guest fills (its length is the next argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InBuf(pub u64);

/// A guest buffer the sentry fills (its length is the result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutBuf(pub u64);

/// Flags and other values best shown in hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hex(pub u64);

/// A file mode, shown in octal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode(pub u32);

macro_rules! from_arg {
    ($t:ty, $kind:ident, |$v:ident| $e:expr) => {
        impl FromArg for $t {
            const KIND: ArgKind = ArgKind::$kind;
            fn from_arg($v: u64) -> Self {
                $e
            }
        }
    };
}

from_arg!(i32, Int, |v| v as i32);
from_arg!(u32, Int, |v| v as u32);
from_arg!(i64, Int, |v| v as i64);
from_arg!(u64, Int, |v| v);
from_arg!(usize, Int, |v| v as usize);
from_arg!(Fd, Fd, |v| Fd(v as i32));
from_arg!(UserAddr, Ptr, |v| UserAddr(v));
from_arg!(UserPath, Path, |v| UserPath(v));
from_arg!(InBuf, InBuf, |v| InBuf(v));
from_arg!(OutBuf, OutBuf, |v| OutBuf(v));
from_arg!(Hex, Hex, |v| Hex(v));
from_arg!(Mode, Oct, |v| Mode(v as u32));

/// One row of the table.
#[derive(Clone, Copy)]
pub struct SyscallEntry {
    pub name: &'static str,
    pub args: &'static [ArgKind],
    pub handler: Option<Handler>,
}

/// Wraps a typed handler `f(task, A, B, ...)` into a table row.
macro_rules! handler {
    ($f:path $(, $ty:ty)* $(,)?) => {{
        fn wrapped(t: &mut Task, _a: &[u64; 6]) -> SysResult {
            let mut _i = 0usize;
            $f(t $(, {
                let v = <$ty as FromArg>::from_arg(_a[_i]);
                _i += 1;
                v
            })*)
        }
        const KINDS: &[ArgKind] = &[$(<$ty as FromArg>::KIND),*];
        (wrapped as Handler, KINDS)
    }};
}

/// The table, built once.
pub fn table() -> &'static [SyscallEntry] {
    static TABLE: OnceLock<Vec<SyscallEntry>> = OnceLock::new();
    TABLE.get_or_init(build_table)
}

#[rustfmt::skip]
fn build_table() -> Vec<SyscallEntry> {
    let mut t: Vec<SyscallEntry> = names::NAMES
        .iter()
        .map(|n| SyscallEntry {
            name: n,
            args: &[],
            handler: None,
        })
        .collect();
    let mut set = |nr: i64, (h, args): (Handler, &'static [ArgKind])| {
        let e = &mut t[nr as usize];
        e.handler = Some(h);
        e.args = args;
    };
    use libc::*;
    // File descriptors and I/O (fs.rs).
    set(SYS_read, handler!(fs::read, Fd, OutBuf, usize));
    set(SYS_write, handler!(fs::write, Fd, InBuf, usize));
    set(SYS_readv, handler!(fs::readv, Fd, UserAddr, i32));
    set(SYS_writev, handler!(fs::writev, Fd, UserAddr, i32));
    set(SYS_pread64, handler!(fs::pread64, Fd, OutBuf, usize, i64));
    set(SYS_pwrite64, handler!(fs::pwrite64, Fd, InBuf, usize, i64));
    set(SYS_close, handler!(fs::close, Fd));
    set(SYS_dup, handler!(fs::dup, Fd));
    set(SYS_dup2, handler!(fs::dup2, Fd, Fd));
    set(SYS_dup3, handler!(fs::dup3, Fd, Fd, Hex));
    set(SYS_fcntl, handler!(fs::fcntl, Fd, i32, Hex));
    set(SYS_fstat, handler!(fs::fstat, Fd, UserAddr));
    set(SYS_ioctl, handler!(fs::ioctl, Fd, Hex, Hex));
    set(SYS_lseek, handler!(fs::lseek, Fd, i64, i32));
    set(SYS_poll, handler!(fs::poll, UserAddr, u32, i32));
    set(
        SYS_ppoll,
        handler!(fs::ppoll, UserAddr, u32, UserAddr, UserAddr, usize),
    );
    set(SYS_select, handler!(fs::select, i32, UserAddr, UserAddr, UserAddr, UserAddr));
    set(
        SYS_pselect6,
        handler!(fs::pselect6, i32, UserAddr, UserAddr, UserAddr, UserAddr, UserAddr),
    );
    // Opening and naming files (file.rs).
    set(SYS_open, handler!(file::open, UserPath, Hex, Mode));
    set(SYS_openat, handler!(file::openat, Fd, UserPath, Hex, Mode));
    set(SYS_openat2, handler!(file::openat2, Fd, UserPath, UserAddr, usize));
    set(SYS_creat, handler!(file::creat, UserPath, Mode));
    set(SYS_mkdir, handler!(file::mkdir, UserPath, Mode));
    set(SYS_mkdirat, handler!(file::mkdirat, Fd, UserPath, Mode));
    set(SYS_mknod, handler!(file::mknod, UserPath, Mode, u64));
    set(SYS_mknodat, handler!(file::mknodat, Fd, UserPath, Mode, u64));
    set(SYS_symlink, handler!(file::symlink, UserPath, UserPath));
    set(SYS_symlinkat, handler!(file::symlinkat, UserPath, Fd, UserPath));
    set(SYS_link, handler!(file::link, UserPath, UserPath));
    set(SYS_linkat, handler!(file::linkat, Fd, UserPath, Fd, UserPath, Hex));
    set(SYS_unlink, handler!(file::unlink, UserPath));
    set(SYS_unlinkat, handler!(file::unlinkat, Fd, UserPath, Hex));
    set(SYS_rmdir, handler!(file::rmdir, UserPath));
    set(SYS_rename, handler!(file::rename, UserPath, UserPath));
    set(SYS_renameat, handler!(file::renameat, Fd, UserPath, Fd, UserPath));
    set(SYS_renameat2, handler!(file::renameat2, Fd, UserPath, Fd, UserPath, Hex));
    set(SYS_readlink, handler!(file::readlink, UserPath, OutBuf, i32));
    set(SYS_readlinkat, handler!(file::readlinkat, Fd, UserPath, OutBuf, i32));
    set(SYS_chdir, handler!(file::chdir, UserPath));
    set(SYS_fchdir, handler!(file::fchdir, Fd));
    set(SYS_chroot, handler!(file::chroot, UserPath));
    set(SYS_getcwd, handler!(file::getcwd, OutBuf, usize));
    // File status and directory listings (stat.rs).
    set(SYS_stat, handler!(self::stat::stat, UserPath, UserAddr));
    set(SYS_lstat, handler!(self::stat::lstat, UserPath, UserAddr));
    set(SYS_newfstatat, handler!(self::stat::newfstatat, Fd, UserPath, UserAddr, Hex));
    set(SYS_statx, handler!(self::stat::statx, Fd, UserPath, Hex, u32, UserAddr));
    set(SYS_access, handler!(self::stat::access, UserPath, u32));
    set(SYS_faccessat, handler!(self::stat::faccessat, Fd, UserPath, u32));
    set(SYS_faccessat2, handler!(self::stat::faccessat2, Fd, UserPath, u32, Hex));
    set(SYS_statfs, handler!(self::stat::statfs, UserPath, UserAddr));
    set(SYS_fstatfs, handler!(self::stat::fstatfs, Fd, UserAddr));
    set(SYS_getdents, handler!(self::stat::getdents, Fd, UserAddr, u32));
    set(SYS_getdents64, handler!(self::stat::getdents64, Fd, UserAddr, u32));
    // File attributes, sizes and syncing (attr.rs).
    set(SYS_chmod, handler!(attr::chmod, UserPath, Mode));
    set(SYS_fchmod, handler!(attr::fchmod, Fd, Mode));
    set(SYS_fchmodat, handler!(attr::fchmodat, Fd, UserPath, Mode));
    set(SYS_fchmodat2, handler!(attr::fchmodat2, Fd, UserPath, Mode, Hex));
    set(SYS_chown, handler!(attr::chown, UserPath, u32, u32));
    set(SYS_fchown, handler!(attr::fchown, Fd, u32, u32));
    set(SYS_lchown, handler!(attr::lchown, UserPath, u32, u32));
    set(SYS_fchownat, handler!(attr::fchownat, Fd, UserPath, u32, u32, Hex));
    set(SYS_utime, handler!(attr::utime, UserPath, UserAddr));
    set(SYS_utimes, handler!(attr::utimes, UserPath, UserAddr));
    set(SYS_futimesat, handler!(attr::futimesat, Fd, UserPath, UserAddr));
    set(SYS_utimensat, handler!(attr::utimensat, Fd, UserPath, UserAddr, Hex));
    set(SYS_truncate, handler!(attr::truncate, UserPath, i64));
    set(SYS_ftruncate, handler!(attr::ftruncate, Fd, i64));
    set(SYS_fallocate, handler!(attr::fallocate, Fd, i32, i64, i64));
    set(SYS_fsync, handler!(attr::fsync, Fd));
    set(SYS_fdatasync, handler!(attr::fdatasync, Fd));
    set(SYS_sync, handler!(attr::sync));
    set(SYS_syncfs, handler!(attr::syncfs, Fd));
    // Advisory locks (lock.rs; the fcntl commands go through fs.rs).
    set(SYS_flock, handler!(lock::flock, Fd, u32));
    // Extended attributes (xattr.rs).
    set(SYS_setxattr, handler!(xattr::setxattr, UserPath, UserPath, UserAddr, usize, Hex));
    set(SYS_lsetxattr, handler!(xattr::lsetxattr, UserPath, UserPath, UserAddr, usize, Hex));
    set(SYS_fsetxattr, handler!(xattr::fsetxattr, Fd, UserPath, UserAddr, usize, Hex));
    set(SYS_getxattr, handler!(xattr::getxattr, UserPath, UserPath, UserAddr, usize));
    set(SYS_lgetxattr, handler!(xattr::lgetxattr, UserPath, UserPath, UserAddr, usize));
    set(SYS_fgetxattr, handler!(xattr::fgetxattr, Fd, UserPath, UserAddr, usize));
    set(SYS_listxattr, handler!(xattr::listxattr, UserPath, UserAddr, usize));
    set(SYS_llistxattr, handler!(xattr::llistxattr, UserPath, UserAddr, usize));
    set(SYS_flistxattr, handler!(xattr::flistxattr, Fd, UserAddr, usize));
    set(SYS_removexattr, handler!(xattr::removexattr, UserPath, UserPath));
    set(SYS_lremovexattr, handler!(xattr::lremovexattr, UserPath, UserPath));
    set(SYS_fremovexattr, handler!(xattr::fremovexattr, Fd, UserPath));
    // memfd_create (memfd.rs) and pipes (pipe.rs).
    set(SYS_memfd_create, handler!(memfd::memfd_create, UserPath, Hex));
    set(SYS_pipe, handler!(pipe::pipe, UserAddr));
    set(SYS_pipe2, handler!(pipe::pipe2, UserAddr, Hex));
    // In-kernel copies (splice.rs).
    set(SYS_sendfile, handler!(splice::sendfile, Fd, Fd, UserAddr, usize));
    set(
        SYS_copy_file_range,
        handler!(splice::copy_file_range, Fd, UserAddr, Fd, UserAddr, usize, u32),
    );
    set(SYS_splice, handler!(splice::splice, Fd, UserAddr, Fd, UserAddr, usize, Hex));
    set(SYS_tee, handler!(splice::tee, Fd, Fd, usize, Hex));
    set(SYS_vmsplice, handler!(splice::vmsplice, Fd, UserAddr, u64, Hex));
    // Mounts (mount.rs).
    set(SYS_mount, handler!(mount::mount, UserPath, UserPath, UserPath, Hex, UserAddr));
    set(SYS_umount2, handler!(mount::umount2, UserPath, i32));
    // Positional vector I/O and close_range (rw.rs).
    set(SYS_preadv, handler!(rw::preadv, Fd, UserAddr, u64, u64, u64));
    set(SYS_pwritev, handler!(rw::pwritev, Fd, UserAddr, u64, u64, u64));
    set(SYS_preadv2, handler!(rw::preadv2, Fd, UserAddr, u64, u64, u64, Hex));
    set(SYS_pwritev2, handler!(rw::pwritev2, Fd, UserAddr, u64, u64, u64, Hex));
    set(SYS_close_range, handler!(rw::close_range, u32, u32, Hex));
    // Memory (mm.rs).
    set(SYS_brk, handler!(mm::brk, UserAddr));
    set(
        SYS_mmap,
        handler!(mm::mmap, UserAddr, usize, Hex, Hex, Fd, u64),
    );
    set(SYS_munmap, handler!(mm::munmap, UserAddr, usize));
    set(SYS_mprotect, handler!(mm::mprotect, UserAddr, usize, Hex));
    set(
        SYS_mremap,
        handler!(mm::mremap, UserAddr, usize, usize, Hex, UserAddr),
    );
    set(SYS_madvise, handler!(mm::madvise, UserAddr, usize, i32));
    set(SYS_msync, handler!(mm::msync, UserAddr, usize, i32));
    // Threads and processes (thread.rs).
    // Processes (process.rs).
    set(SYS_exit, handler!(process::exit, i32));
    set(SYS_exit_group, handler!(process::exit_group, i32));
    set(SYS_clone, handler!(process::clone, Hex, UserAddr, UserAddr, UserAddr, Hex));
    set(SYS_clone3, handler!(process::clone3, UserAddr, usize));
    set(SYS_fork, handler!(process::fork));
    set(SYS_vfork, handler!(process::vfork));
    set(SYS_execve, handler!(process::execve, UserPath, UserAddr, UserAddr));
    set(SYS_execveat, handler!(process::execveat, Fd, UserPath, UserAddr, UserAddr, Hex));
    set(SYS_wait4, handler!(process::wait4, i32, UserAddr, i32, UserAddr));
    set(SYS_waitid, handler!(process::waitid, i32, i32, UserAddr, i32, UserAddr));
    set(SYS_setsid, handler!(process::setsid));
    set(SYS_setpgid, handler!(process::setpgid, i32, i32));
    set(SYS_getpgid, handler!(process::getpgid, i32));
    set(SYS_getpgrp, handler!(process::getpgrp));
    set(SYS_getsid, handler!(process::getsid, i32));
    set(SYS_unshare, handler!(process::unshare, Hex));
    // Process file descriptors (pidfd.rs).
    set(SYS_pidfd_open, handler!(pidfd::pidfd_open, i32, Hex));
    set(SYS_pidfd_send_signal, handler!(pidfd::pidfd_send_signal, Fd, i32, UserAddr, Hex));
    set(SYS_pidfd_getfd, handler!(pidfd::pidfd_getfd, Fd, i32, Hex));
    set(SYS_arch_prctl, handler!(thread::arch_prctl, i32, Hex));
    set(
        SYS_set_tid_address,
        handler!(thread::set_tid_address, UserAddr),
    );
    set(
        SYS_set_robust_list,
        handler!(thread::set_robust_list, UserAddr, usize),
    );
    set(
        SYS_get_robust_list,
        handler!(thread::get_robust_list, i32, UserAddr, UserAddr),
    );
    set(SYS_rseq, handler!(thread::rseq, UserAddr, u32, Hex, Hex));
    set(SYS_getpid, handler!(thread::getpid));
    set(SYS_gettid, handler!(thread::gettid));
    set(SYS_getppid, handler!(process::getppid));
    set(SYS_getuid, handler!(thread::getuid));
    set(SYS_geteuid, handler!(thread::geteuid));
    set(SYS_getgid, handler!(thread::getgid));
    set(SYS_getegid, handler!(thread::getegid));
    set(
        SYS_getresuid,
        handler!(thread::getresuid, UserAddr, UserAddr, UserAddr),
    );
    set(
        SYS_getresgid,
        handler!(thread::getresgid, UserAddr, UserAddr, UserAddr),
    );
    set(SYS_getgroups, handler!(thread::getgroups, i32, UserAddr));
    set(SYS_sched_yield, handler!(thread::sched_yield));
    // Scheduling settings (sched.rs).
    set(SYS_getpriority, handler!(sched::getpriority, i32, i32));
    set(SYS_setpriority, handler!(sched::setpriority, i32, i32, i32));
    set(SYS_sched_get_priority_max, handler!(sched::sched_get_priority_max, i32));
    set(SYS_sched_get_priority_min, handler!(sched::sched_get_priority_min, i32));
    set(SYS_sched_getscheduler, handler!(sched::sched_getscheduler, i32));
    set(SYS_sched_setscheduler, handler!(sched::sched_setscheduler, i32, i32, UserAddr));
    set(SYS_sched_getparam, handler!(sched::sched_getparam, i32, UserAddr));
    set(SYS_sched_setparam, handler!(sched::sched_setparam, i32, UserAddr));
    set(SYS_sched_rr_get_interval, handler!(sched::sched_rr_get_interval, i32, UserAddr));
    set(SYS_sched_setaffinity, handler!(sched::sched_setaffinity, i32, u32, UserAddr));
    set(SYS_ioprio_get, handler!(sched::ioprio_get, i32, i32));
    set(SYS_ioprio_set, handler!(sched::ioprio_set, i32, i32, i32));
    set(SYS_personality, handler!(sched::personality, Hex));
    set(
        SYS_sched_getaffinity,
        handler!(thread::sched_getaffinity, i32, usize, UserAddr),
    );
    set(
        SYS_getcpu,
        handler!(thread::getcpu, UserAddr, UserAddr, UserAddr),
    );
    // Credentials (creds.rs).
    set(SYS_setuid, handler!(creds::setuid, u32));
    set(SYS_setgid, handler!(creds::setgid, u32));
    set(SYS_setreuid, handler!(creds::setreuid, u32, u32));
    set(SYS_setregid, handler!(creds::setregid, u32, u32));
    set(SYS_setresuid, handler!(creds::setresuid, u32, u32, u32));
    set(SYS_setresgid, handler!(creds::setresgid, u32, u32, u32));
    set(SYS_setfsuid, handler!(creds::setfsuid, u32));
    set(SYS_setfsgid, handler!(creds::setfsgid, u32));
    set(SYS_setgroups, handler!(creds::setgroups, i32, UserAddr));
    set(SYS_capget, handler!(creds::capget, UserAddr, UserAddr));
    set(SYS_capset, handler!(creds::capset, UserAddr, UserAddr));
    // prctl (prctl.rs).
    set(SYS_prctl, handler!(prctl::prctl, i32, Hex, Hex, Hex, Hex));
    // seccomp (seccomp.rs; the filters run in dispatch).
    set(SYS_seccomp, handler!(seccomp::seccomp, u32, Hex, UserAddr));
    // System identity, limits, randomness (sys.rs).
    set(SYS_uname, handler!(sys::uname, UserAddr));
    set(SYS_sethostname, handler!(sys::sethostname, UserAddr, usize));
    set(
        SYS_setdomainname,
        handler!(sys::setdomainname, UserAddr, usize),
    );
    set(SYS_getrlimit, handler!(sys::getrlimit, u32, UserAddr));
    set(SYS_setrlimit, handler!(sys::setrlimit, u32, UserAddr));
    set(
        SYS_prlimit64,
        handler!(sys::prlimit64, i32, u32, UserAddr, UserAddr),
    );
    set(SYS_getrandom, handler!(sys::getrandom, OutBuf, usize, Hex));
    set(SYS_umask, handler!(sys::umask, Mode));
    set(SYS_sysinfo, handler!(sys::sysinfo, UserAddr));
    // Time (time.rs).
    set(
        SYS_clock_gettime,
        handler!(time::clock_gettime, i32, UserAddr),
    );
    set(
        SYS_clock_getres,
        handler!(time::clock_getres, i32, UserAddr),
    );
    set(
        SYS_gettimeofday,
        handler!(time::gettimeofday, UserAddr, UserAddr),
    );
    set(SYS_time, handler!(time::time, UserAddr));
    set(SYS_getrusage, handler!(time::getrusage, i32, UserAddr));
    set(SYS_times, handler!(time::times, UserAddr));
    set(SYS_nanosleep, handler!(time::nanosleep, UserAddr, UserAddr));
    set(
        SYS_clock_nanosleep,
        handler!(time::clock_nanosleep, i32, Hex, UserAddr, UserAddr),
    );
    // Timers (timer.rs).
    set(SYS_setitimer, handler!(timer::setitimer, i32, UserAddr, UserAddr));
    set(SYS_getitimer, handler!(timer::getitimer, i32, UserAddr));
    set(SYS_alarm, handler!(timer::alarm, u32));
    set(SYS_timer_create, handler!(timer::timer_create, i32, UserAddr, UserAddr));
    set(SYS_timer_settime, handler!(timer::timer_settime, i32, i32, UserAddr, UserAddr));
    set(SYS_timer_gettime, handler!(timer::timer_gettime, i32, UserAddr));
    set(SYS_timer_getoverrun, handler!(timer::timer_getoverrun, i32));
    set(SYS_timer_delete, handler!(timer::timer_delete, i32));
    // Signals (signal.rs).
    set(
        SYS_rt_sigaction,
        handler!(signal::rt_sigaction, i32, UserAddr, UserAddr, usize),
    );
    set(
        SYS_rt_sigprocmask,
        handler!(signal::rt_sigprocmask, i32, UserAddr, UserAddr, usize),
    );
    set(
        SYS_sigaltstack,
        handler!(signal::sigaltstack, UserAddr, UserAddr),
    );
    set(SYS_kill, handler!(signal::kill, i32, i32));
    set(SYS_tkill, handler!(signal::tkill, i32, i32));
    set(SYS_tgkill, handler!(signal::tgkill, i32, i32, i32));
    set(SYS_rt_sigqueueinfo, handler!(signal::rt_sigqueueinfo, i32, i32, UserAddr));
    set(SYS_rt_tgsigqueueinfo, handler!(signal::rt_tgsigqueueinfo, i32, i32, i32, UserAddr));
    set(SYS_rt_sigsuspend, handler!(signal::rt_sigsuspend, UserAddr, usize));
    set(SYS_pause, handler!(signal::pause));
    set(SYS_rt_sigpending, handler!(signal::rt_sigpending, UserAddr, usize));
    set(SYS_rt_sigtimedwait, handler!(signal::rt_sigtimedwait, UserAddr, UserAddr, UserAddr, usize));
    set(SYS_rt_sigreturn, handler!(signal::rt_sigreturn));
    set(SYS_restart_syscall, handler!(signal::restart_syscall));
    // epoll (epoll.rs).
    set(SYS_epoll_create, handler!(epoll::epoll_create, i32));
    set(SYS_epoll_create1, handler!(epoll::epoll_create1, Hex));
    set(SYS_epoll_ctl, handler!(epoll::epoll_ctl, Fd, i32, Fd, UserAddr));
    set(SYS_epoll_wait, handler!(epoll::epoll_wait, Fd, UserAddr, i32, i32));
    set(SYS_epoll_pwait, handler!(epoll::epoll_pwait, Fd, UserAddr, i32, i32, UserAddr, usize));
    set(SYS_epoll_pwait2, handler!(epoll::epoll_pwait2, Fd, UserAddr, i32, UserAddr, UserAddr, usize));
    // Event files: eventfd.rs, timerfd.rs, signalfd.rs.
    set(SYS_eventfd, handler!(eventfd::eventfd, u32));
    set(SYS_eventfd2, handler!(eventfd::eventfd2, u32, Hex));
    set(SYS_timerfd_create, handler!(timerfd::timerfd_create, i32, Hex));
    set(SYS_timerfd_settime, handler!(timerfd::timerfd_settime, Fd, Hex, UserAddr, UserAddr));
    set(SYS_timerfd_gettime, handler!(timerfd::timerfd_gettime, Fd, UserAddr));
    set(SYS_signalfd, handler!(signalfd::signalfd, Fd, UserAddr, usize));
    set(SYS_signalfd4, handler!(signalfd::signalfd4, Fd, UserAddr, usize, Hex));
    // Futexes (futex.rs).
    set(
        SYS_futex,
        handler!(futex::futex, UserAddr, i32, u32, UserAddr, UserAddr, u32),
    );
    set(449, handler!(futex::futex_waitv, UserAddr, u32, u32, UserAddr, i32));
    // Sockets (socket.rs).
    set(SYS_socket, handler!(socket::socket, i32, i32, i32));
    set(SYS_socketpair, handler!(socket::socketpair, i32, i32, i32, UserAddr));
    set(SYS_bind, handler!(socket::bind, Fd, UserAddr, i32));
    set(SYS_listen, handler!(socket::listen, Fd, i32));
    set(SYS_connect, handler!(socket::connect, Fd, UserAddr, i32));
    set(SYS_accept, handler!(socket::accept, Fd, UserAddr, UserAddr));
    set(SYS_accept4, handler!(socket::accept4, Fd, UserAddr, UserAddr, Hex));
    set(SYS_shutdown, handler!(socket::shutdown, Fd, i32));
    set(SYS_getsockname, handler!(socket::getsockname, Fd, UserAddr, UserAddr));
    set(SYS_getpeername, handler!(socket::getpeername, Fd, UserAddr, UserAddr));
    set(SYS_sendto, handler!(socket::sendto, Fd, UserAddr, usize, i32, UserAddr, i32));
    set(SYS_recvfrom, handler!(socket::recvfrom, Fd, UserAddr, usize, i32, UserAddr, UserAddr));
    set(SYS_sendmsg, handler!(socket::sendmsg, Fd, UserAddr, i32));
    set(SYS_recvmsg, handler!(socket::recvmsg, Fd, UserAddr, i32));
    set(SYS_sendmmsg, handler!(socket::sendmmsg, Fd, UserAddr, u32, i32));
    set(SYS_recvmmsg, handler!(socket::recvmmsg, Fd, UserAddr, u32, i32, UserAddr));
    set(SYS_getsockopt, handler!(socket::getsockopt, Fd, i32, i32, UserAddr, UserAddr));
    set(SYS_setsockopt, handler!(socket::setsockopt, Fd, i32, i32, UserAddr, i32));
    // System V IPC (shm.rs, sem.rs, msg.rs) and POSIX message queues
    // (mqueue.rs).
    set(SYS_shmget, handler!(shm::shmget, i32, u64, Hex));
    set(SYS_shmat, handler!(shm::shmat, i32, UserAddr, Hex));
    set(SYS_shmdt, handler!(shm::shmdt, UserAddr));
    set(SYS_shmctl, handler!(shm::shmctl, i32, i32, UserAddr));
    set(SYS_semget, handler!(sem::semget, i32, i32, Hex));
    set(SYS_semop, handler!(sem::semop, i32, UserAddr, u64));
    set(SYS_semtimedop, handler!(sem::semtimedop, i32, UserAddr, u64, UserAddr));
    set(SYS_semctl, handler!(sem::semctl, i32, i32, i32, Hex));
    set(SYS_msgget, handler!(msg::msgget, i32, Hex));
    set(SYS_msgsnd, handler!(msg::msgsnd, i32, UserAddr, u64, Hex));
    set(SYS_msgrcv, handler!(msg::msgrcv, i32, UserAddr, u64, i64, Hex));
    set(SYS_msgctl, handler!(msg::msgctl, i32, i32, UserAddr));
    set(SYS_mq_open, handler!(mqueue::mq_open, UserPath, Hex, Mode, UserAddr));
    set(SYS_mq_unlink, handler!(mqueue::mq_unlink, UserPath));
    set(SYS_mq_timedsend, handler!(mqueue::mq_timedsend, Fd, UserAddr, usize, u32, UserAddr));
    set(SYS_mq_timedreceive, handler!(mqueue::mq_timedreceive, Fd, UserAddr, usize, UserAddr, UserAddr));
    set(SYS_mq_notify, handler!(mqueue::mq_notify, Fd, UserAddr));
    set(SYS_mq_getsetattr, handler!(mqueue::mq_getsetattr, Fd, UserAddr, UserAddr));
    // inotify (inotify.rs).
    set(SYS_inotify_init, handler!(inotify::inotify_init));
    set(SYS_inotify_init1, handler!(inotify::inotify_init1, Hex));
    set(SYS_inotify_add_watch, handler!(inotify::inotify_add_watch, Fd, UserPath, u32));
    set(SYS_inotify_rm_watch, handler!(inotify::inotify_rm_watch, Fd, i32));
    t
}

/// Handles the syscall in `t.regs` and writes its result to `rax`.
pub fn dispatch(t: &mut Task) {
    let nr = t.regs.orig_rax;
    let args = [
        t.regs.rdi, t.regs.rsi, t.regs.rdx, t.regs.r10, t.regs.r8, t.regs.r9,
    ];
    let table = table();
    let entry = table.get(nr as usize).copied();
    t.kernel.compat.enter(t, nr, &args);
    let strace = t.kernel.strace && t.kernel.compat.traced(nr);
    let noreturn = matches!(
        nr as i64,
        libc::SYS_exit | libc::SYS_exit_group | libc::SYS_rt_sigreturn
    );
    // The guest's seccomp filters decide before the handler runs.
    if t.shared.seccomp.enabled() && crate::kernel::seccomp::intercept(t, nr, &args) {
        if strace {
            let line = format_call(t, entry, nr, &args, None);
            let line = format!("{line} (seccomp: rax {:#x})", t.regs.rax);
            t.kernel.compat.strace_line(&line);
        }
        return;
    }
    if strace && noreturn {
        let line = format_call(t, entry, nr, &args, None);
        t.kernel.compat.strace_line(&line);
    }
    let result = match entry.and_then(|e| e.handler) {
        Some(h) => h(t, &args),
        None => {
            t.kernel.compat.unimplemented_syscall(nr);
            Err(Errno::ENOSYS)
        }
    };
    // Writing to a pipe with no reader raises SIGPIPE, as Linux's pipe
    // write path does (a socket's family raises it itself, by its rules).
    if result == Err(Errno::EPIPE)
        && !(matches!(nr as i64, libc::SYS_write | libc::SYS_writev)
            && socket::is_socket(t, args[0] as i32))
        && matches!(
            nr as i64,
            libc::SYS_write
                | libc::SYS_writev
                | libc::SYS_pwrite64
                | libc::SYS_pwritev
                | libc::SYS_pwritev2
                | libc::SYS_sendfile
                | libc::SYS_splice
                | libc::SYS_tee
                | libc::SYS_vmsplice
                | libc::SYS_copy_file_range
        )
    {
        t.raise(libc::SIGPIPE);
    }
    if strace && !noreturn {
        let line = format_call(t, entry, nr, &args, Some(&result));
        t.kernel.compat.strace_line(&line);
    }
    t.regs.rax = match result {
        Ok(v) => v,
        // The run loop decides: EINTR or a restart, by the signal that
        // interrupted the call.
        Err(e) if e.is_restart() => {
            t.restart = Some(e);
            (-(libc::EINTR as i64)) as u64
        }
        Err(e) => (-(e.raw() as i64)) as u64,
    };
    if publishes(nr as i64) {
        t.publish();
    }
}

/// Syscalls after which the task's published view may have changed.
fn publishes(nr: i64) -> bool {
    matches!(
        nr,
        libc::SYS_setuid
            | libc::SYS_setgid
            | libc::SYS_setreuid
            | libc::SYS_setregid
            | libc::SYS_setresuid
            | libc::SYS_setresgid
            | libc::SYS_setfsuid
            | libc::SYS_setfsgid
            | libc::SYS_setgroups
            | libc::SYS_capset
            | libc::SYS_prctl
            | libc::SYS_execve
            | libc::SYS_execveat
            | libc::SYS_unshare
            | libc::SYS_chroot
    )
}

/// For a handler that answers its whole syscall ENOSYS (there is a
/// handler only to say why): counted and reported as a syscall without a
/// handler is.
pub fn unimplemented_syscall(t: &Task) -> SysResult {
    t.kernel.compat.unimplemented_syscall(t.regs.orig_rax);
    Err(Errno::ENOSYS)
}

/// Logs a request (a sub-command, an ioctl, a flag) the sentry does not
/// implement and returns ENOSYS for it. Better: an
/// [`Unsupported`](crate::kernel::compat::Unsupported) declared next to
/// the handler.
pub fn unimplemented(t: &Task, what: &str) -> SysResult {
    t.kernel.note_unimplemented(what);
    Err(Errno::ENOSYS)
}

fn format_call(
    t: &Task,
    entry: Option<SyscallEntry>,
    nr: u64,
    args: &[u64; 6],
    result: Option<&SysResult>,
) -> String {
    let name = entry
        .map(|e| e.name)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("syscall_{nr}"));
    let kinds: &[ArgKind] = match entry {
        Some(e) if e.handler.is_some() => e.args,
        _ => &[ArgKind::Hex; 6],
    };
    let mut parts = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        let v = args[i];
        parts.push(match k {
            ArgKind::Int => (v as i64).to_string(),
            ArgKind::Hex => format!("{v:#x}"),
            ArgKind::Oct => format!("{:#o}", v as u32),
            ArgKind::Fd => {
                let fd = v as i32;
                if fd == libc::AT_FDCWD {
                    "AT_FDCWD".to_string()
                } else {
                    fd.to_string()
                }
            }
            ArgKind::Ptr => format!("{v:#x}"),
            ArgKind::Path => match t.mm.read_cstring(v, 4096) {
                Ok(s) => format!("{v:#x} {}", quote(&s, 256)),
                Err(_) => format!("{v:#x}"),
            },
            ArgKind::InBuf => {
                let len = args.get(i + 1).copied().unwrap_or(0).min(64) as usize;
                show_buf(t, v, len)
            }
            ArgKind::OutBuf => match result {
                Some(Ok(n)) => show_buf(t, v, (*n).min(64) as usize),
                _ => format!("{v:#x}"),
            },
        });
    }
    let res = match result {
        None => "?".to_string(),
        Some(Ok(v)) => {
            if *v > 0xffff && matches!(nr as i64, libc::SYS_mmap | libc::SYS_brk | libc::SYS_mremap)
            {
                format!("{v:#x}")
            } else {
                (*v as i64).to_string()
            }
        }
        Some(Err(e)) => format!("-1 {:?} ({})", e, e.desc()),
    };
    format!(
        "[{:>4}:{:>4}] {}({}) = {}",
        t.tg.tgid,
        t.tid,
        name,
        parts.join(", "),
        res
    )
}

fn show_buf(t: &Task, addr: u64, len: usize) -> String {
    let mut buf = vec![0u8; len];
    let n = t.mm.copy_in_partial(addr, &mut buf);
    format!("{addr:#x} {}", quote(&buf[..n], 64))
}

fn quote(b: &[u8], max: usize) -> String {
    let mut s = String::from("\"");
    for &c in b.iter().take(max) {
        match c {
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    if b.len() > max {
        s.push_str("...");
    }
    s
}
