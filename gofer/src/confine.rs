//! Confining the gofer process once it holds what it serves.
//!
//! Order (each step needs the ones before it):
//!
//! 1. Close every fd but the served roots and the socket.
//! 2. Not root on the host: a user namespace of its own, where it is
//!    root (uid and gid mapped to its own), so it may make the rest.
//! 3. A mount namespace of its own, every mount made private, an empty
//!    tmpfs as the new root (`pivot_root`, the old root detached), the
//!    tmpfs then read-only. From here no host path can be named: the
//!    served trees are reached only through the fds held.
//! 4. Capabilities: the bounding set, permitted, effective and
//!    inheritable sets cut to [`KEPT_CAPS`]; ambient cleared.
//! 5. `PR_SET_NO_NEW_PRIVS`, then the seccomp allow-list of
//!    [`syscall_allow_list`], installed before the first request is read.
//!    Any other syscall kills the process.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::os::fd::RawFd;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

fn last_err<T>() -> io::Result<T> {
    Err(io::Error::last_os_error())
}

fn ctx(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Closes every open fd not in `keep`.
pub fn close_other_fds(keep: &[RawFd]) -> io::Result<()> {
    let keep: HashSet<RawFd> = keep.iter().copied().collect();
    let mut fds = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd")? {
        if let Ok(fd) = e?.file_name().to_string_lossy().parse::<RawFd>() {
            fds.push(fd);
        }
    }
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closes an fd of this process nobody holds (the read_dir
            // fd is closed already, or closing it is harmless: its iterator
            // is gone).
            unsafe { libc::close(fd) };
        }
    }
    Ok(())
}

fn write_file(path: &str, data: &str) -> io::Result<()> {
    std::fs::write(path, data).map_err(|e| ctx(e, path))
}

/// Steps 2 and 3: namespaces and the empty root.
pub fn isolate_filesystem() -> io::Result<()> {
    // SAFETY: plain syscalls without pointers.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if uid != 0 {
        // SAFETY: plain syscall.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
            return last_err().map_err(|e| ctx(e, "unshare(CLONE_NEWUSER)"));
        }
        write_file("/proc/self/setgroups", "deny")?;
        write_file("/proc/self/uid_map", &format!("0 {uid} 1"))?;
        write_file("/proc/self/gid_map", &format!("0 {gid} 1"))?;
    }
    // SAFETY: plain syscall.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return last_err().map_err(|e| ctx(e, "unshare(CLONE_NEWNS)"));
    }
    // SAFETY: every pointer is a NUL-terminated literal or null.
    unsafe {
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return last_err().map_err(|e| ctx(e, "making mounts private"));
        }
        // The new root: an empty tmpfs over /tmp, seen only in this
        // mount namespace.
        if libc::mount(
            c"none".as_ptr(),
            c"/tmp".as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"size=16k,mode=0755".as_ptr().cast(),
        ) != 0
        {
            return last_err().map_err(|e| ctx(e, "mounting the empty root"));
        }
        if libc::mkdir(c"/tmp/old".as_ptr(), 0o700) != 0 {
            return last_err().map_err(|e| ctx(e, "mkdir old root"));
        }
        if libc::syscall(libc::SYS_pivot_root, c"/tmp".as_ptr(), c"/tmp/old".as_ptr()) != 0 {
            return last_err().map_err(|e| ctx(e, "pivot_root"));
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return last_err().map_err(|e| ctx(e, "chdir /"));
        }
        if libc::umount2(c"/old".as_ptr(), libc::MNT_DETACH) != 0 {
            return last_err().map_err(|e| ctx(e, "detaching the old root"));
        }
        if libc::rmdir(c"/old".as_ptr()) != 0 {
            return last_err().map_err(|e| ctx(e, "rmdir old root"));
        }
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REMOUNT
                | libc::MS_BIND
                | libc::MS_RDONLY
                | libc::MS_NOSUID
                | libc::MS_NODEV
                | libc::MS_NOEXEC,
            std::ptr::null(),
        ) != 0
        {
            return last_err().map_err(|e| ctx(e, "making the root read-only"));
        }
    }
    Ok(())
}

/// The capabilities the gofer keeps: to act on files whatever their
/// owner and mode, as the sentry's permission checks already decided.
pub const KEPT_CAPS: &[u32] = &[
    0, // CAP_CHOWN: owners of created files, SetAttr uid/gid
    1, // CAP_DAC_OVERRIDE: open and change files regardless of mode
    2, // CAP_DAC_READ_SEARCH: search any directory; linkat(AT_EMPTY_PATH)
    3, // CAP_FOWNER: chmod, utimes, xattrs on files of other owners
    4, // CAP_FSETID: keep set-id bits on chmod/chown as asked
];

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Step 4.
pub fn drop_capabilities() -> io::Result<()> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(40);
    for cap in 0..=last {
        if !KEPT_CAPS.contains(&cap) {
            // SAFETY: plain prctl; EINVAL for caps this kernel lacks is fine.
            unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        }
    }
    // SAFETY: plain prctl.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    let mut mask = [0u32; 2];
    for &c in KEPT_CAPS {
        mask[(c / 32) as usize] |= 1 << (c % 32);
    }
    let hdr = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [
        CapData {
            effective: mask[0],
            permitted: mask[0],
            inheritable: 0,
        },
        CapData {
            effective: mask[1],
            permitted: mask[1],
            inheritable: 0,
        },
    ];
    // SAFETY: header and two data structs of the v3 layout.
    if unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) } != 0 {
        return last_err().map_err(|e| ctx(e, "capset"));
    }
    Ok(())
}

/// The syscalls the serving gofer makes, each with why. Anything else
/// kills it. (`mmap` and `mprotect` are allowed only without
/// `PROT_EXEC`.)
pub fn syscall_allow_list() -> Vec<(i64, &'static str)> {
    vec![
        // The connection: requests in, replies and donated fds out.
        (libc::SYS_recvmsg, "receive a request"),
        (libc::SYS_sendmsg, "send a reply with fds"),
        // Walking and opening nodes.
        (libc::SYS_openat, "reopen a node for I/O; create files"),
        (libc::SYS_openat2, "walk one component beneath a directory"),
        (
            libc::SYS_newfstatat,
            "attributes of a node; identity checks",
        ),
        (libc::SYS_fstat, "attributes (libc may use fstat)"),
        (libc::SYS_statx, "attributes (libc may use statx)"),
        (libc::SYS_close, "close nodes and donated fds"),
        (libc::SYS_fcntl, "dup a root fd; clear O_NONBLOCK"),
        // Directory changes.
        (libc::SYS_mkdirat, "Mkdir"),
        (libc::SYS_mknodat, "Mknod (regular, FIFO, socket)"),
        (libc::SYS_symlinkat, "Symlink"),
        (libc::SYS_linkat, "Link"),
        (libc::SYS_unlinkat, "Unlink; undo a failed create"),
        (libc::SYS_renameat2, "Rename"),
        (libc::SYS_readlinkat, "Readlink"),
        (libc::SYS_getdents64, "Getdents"),
        (libc::SYS_lseek, "Getdents: continue from a cookie"),
        // Attributes.
        (libc::SYS_fchmodat2, "SetAttr mode on an O_PATH fd"),
        (libc::SYS_fchownat, "SetAttr owner; owner of created files"),
        (libc::SYS_ftruncate, "SetAttr size; O_TRUNC"),
        (libc::SYS_utimensat, "SetAttr times"),
        (libc::SYS_fstatfs, "StatFs"),
        (libc::SYS_fsync, "Fsync"),
        (libc::SYS_fgetxattr, "GetXattr"),
        (libc::SYS_fsetxattr, "SetXattr"),
        (libc::SYS_flistxattr, "ListXattr"),
        (libc::SYS_fremovexattr, "RemoveXattr"),
        // Unix sockets in bind mounts.
        (libc::SYS_socket, "BindSocket/ConnectSocket: the socket"),
        (libc::SYS_bind, "BindSocket"),
        (libc::SYS_listen, "BindSocket"),
        (libc::SYS_connect, "ConnectSocket"),
        (
            libc::SYS_fchdir,
            "sockets are bound by name relative to cwd",
        ),
        (
            libc::SYS_unshare,
            "CLONE_FS only: a cwd of the serving thread's own",
        ),
        // The process itself.
        (libc::SYS_write, "log lines to stderr"),
        (libc::SYS_brk, "memory allocation"),
        (libc::SYS_mmap, "memory allocation (no PROT_EXEC)"),
        (libc::SYS_mprotect, "allocator guard pages (no PROT_EXEC)"),
        (libc::SYS_munmap, "memory release"),
        (libc::SYS_mremap, "memory reallocation"),
        (libc::SYS_madvise, "allocator trims freed memory"),
        (libc::SYS_futex, "locks in the standard library"),
        (libc::SYS_getrandom, "hash map keys"),
        (libc::SYS_clock_gettime, "log time stamps"),
        (libc::SYS_rt_sigprocmask, "the runtime's signal masks"),
        (libc::SYS_rt_sigreturn, "return from a signal handler"),
        (
            libc::SYS_sigaltstack,
            "the runtime's stack-overflow handler",
        ),
        (libc::SYS_sched_yield, "spinning locks"),
        (libc::SYS_exit, "thread exit"),
        (libc::SYS_exit_group, "process exit"),
    ]
}

/// Builds the seccomp program of [`syscall_allow_list`].
pub fn seccomp_program() -> io::Result<BpfProgram> {
    let no_exec = || -> io::Result<Vec<SeccompRule>> {
        let cond = SeccompCondition::new(
            2,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(libc::PROT_EXEC as u64),
            0,
        )
        .map_err(io::Error::other)?;
        Ok(vec![SeccompRule::new(vec![cond]).map_err(io::Error::other)?])
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, _why) in syscall_allow_list() {
        let r = if nr == libc::SYS_mmap || nr == libc::SYS_mprotect {
            no_exec()?
        } else if nr == libc::SYS_unshare {
            let cond = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::Eq,
                libc::CLONE_FS as u64,
            )
            .map_err(io::Error::other)?;
            vec![SeccompRule::new(vec![cond]).map_err(io::Error::other)?]
        } else {
            Vec::new()
        };
        rules.insert(nr, r);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(io::Error::other)?;
    BpfProgram::try_from(filter).map_err(io::Error::other)
}

/// Step 5.
pub fn install_seccomp() -> io::Result<()> {
    // SAFETY: plain prctl.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return last_err().map_err(|e| ctx(e, "PR_SET_NO_NEW_PRIVS"));
    }
    let prog = seccomp_program()?;
    seccompiler::apply_filter(&prog).map_err(io::Error::other)
}

/// Steps 1 to 5, for a process that keeps `keep` open.
pub fn confine(keep: &[RawFd]) -> io::Result<()> {
    close_other_fds(keep)?;
    // Modes of created files are exactly what the sentry asks for.
    // SAFETY: plain syscall.
    unsafe { libc::umask(0) };
    isolate_filesystem()?;
    drop_capabilities()?;
    install_seccomp()
}
