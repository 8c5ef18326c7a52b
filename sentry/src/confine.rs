//! The sentry's seccomp filter: the fixed list of host system calls the
//! sentry (and the stub processes it forks) may make once it has booted.
//!
//! DESIGN.md, invariant 1: the host only ever sees the sentry's own, fixed
//! set of system calls. [`ALLOWED`] is that set, kept as data: one entry a
//! syscall, each with a comment saying who makes it, and argument rules
//! where they narrow it cheaply. [`install`] compiles it with `seccompiler`
//! and installs it on every sentry thread (TSYNC) after the platform and
//! the kernel are set up and before the first guest instruction runs; the
//! stub processes are forked after that and inherit it. Guest syscalls
//! never reach it: `PTRACE_SYSEMU` stops them before seccomp runs. What
//! the stubs run themselves (their start-up in `platform::ptrace`, the
//! `mmap`/`munmap`/`clone` the sentry makes them execute) is in the list.
//! The systrap platform's stubs are the exception: they are cloned from a
//! template forked when the platform is made, before this filter, because
//! each stub thread installs a filter of its own (`platform::systrap`),
//! which allows far less than this list and traps every guest syscall.
//!
//! A syscall outside the list does not run: the filter traps it
//! (`SECCOMP_RET_TRAP`), and the sentry's SIGSYS handler writes "the sentry
//! made host syscall N (name), which its seccomp filter forbids" to
//! standard error and then makes the sentry die of SIGSYS (it makes a
//! forbidden syscall again with SIGSYS blocked, which the kernel turns into
//! a forced, default SIGSYS: the same end as `SECCOMP_RET_KILL_PROCESS`).
//! `runsc` sees the sentry killed by SIGSYS and says so.
//!
//! **Maintenance: every change that makes the sentry or the stubs use a new
//! host syscall (or a new argument of a filtered one) adds it to [`ALLOWED`]
//! in the same change**, with its reason. The whole test suite runs under
//! this filter, so a missing entry shows up as a sentry that dies naming
//! the syscall.
//!
//! `clone3` is answered `ENOSYS` by a first, separate filter: its flags are
//! in memory, out of a filter's reach, and glibc falls back to `clone`,
//! whose flags the list checks.

use std::collections::BTreeMap;
use std::os::fd::RawFd;

use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

/// The value an argument is compared with.
#[derive(Clone, Copy, Debug)]
pub enum Value {
    Const(u64),
    /// The memory file's fd (known only at boot).
    MemoryFd,
    /// Any fd but the memory file's.
    NotMemoryFd,
}

/// One condition on a syscall argument: `(arg & mask) == value`.
#[derive(Clone, Copy, Debug)]
pub struct Cond {
    pub arg: u8,
    /// Whether the argument is a 32-bit one (an `int`): only its low half
    /// is compared.
    pub dword: bool,
    pub mask: u64,
    pub value: Value,
}

/// A syscall the sentry may make: with any arguments (`rules` empty), or
/// when all conditions of one of `rules` hold.
#[derive(Clone, Copy, Debug)]
pub struct Allowed {
    pub nr: i64,
    pub rules: &'static [&'static [Cond]],
}

const fn any(nr: i64) -> Allowed {
    Allowed { nr, rules: &[] }
}

const fn when(nr: i64, rules: &'static [&'static [Cond]]) -> Allowed {
    Allowed { nr, rules }
}

/// 32-bit argument `arg` equals `v`.
const fn eq32(arg: u8, v: u64) -> Cond {
    Cond {
        arg,
        dword: true,
        mask: u32::MAX as u64,
        value: Value::Const(v),
    }
}

/// 64-bit argument `arg` equals `v`.
const fn eq64(arg: u8, v: u64) -> Cond {
    Cond {
        arg,
        dword: false,
        mask: u64::MAX,
        value: Value::Const(v),
    }
}

/// The bits `mask` of 64-bit argument `arg` are `v`.
const fn bits(arg: u8, mask: u64, v: u64) -> Cond {
    Cond {
        arg,
        dword: false,
        mask,
        value: Value::Const(v),
    }
}

/// 32-bit argument `arg` is the memory file's fd.
const fn memory_fd(arg: u8) -> Cond {
    Cond {
        arg,
        dword: true,
        mask: u32::MAX as u64,
        value: Value::MemoryFd,
    }
}

/// 32-bit argument `arg` is not the memory file's fd.
const fn not_memory_fd(arg: u8) -> Cond {
    Cond {
        arg,
        dword: true,
        mask: u32::MAX as u64,
        value: Value::NotMemoryFd,
    }
}

use libc::*;

/// glibc's `pthread_create` (Rust's `std::thread`): the flags of its
/// `clone` once `clone3` answered ENOSYS.
const THREAD_CLONE: u64 = (CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND
    | CLONE_THREAD
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID) as u64;
/// glibc's `fork()`: the ptrace platform's fork of a stub process.
const FORK_CLONE: u64 = (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD) as u64;
/// A stub thread, cloned by a stub's master at the sentry's request
/// (`platform::ptrace::clone_stub_thread`).
const STUB_THREAD_CLONE: u64 =
    (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_PARENT | CLONE_UNTRACED) as u64;
/// A stub process, cloned by the template stub at the sentry's request
/// (`platform::ptrace::clone_stub_process`).
const STUB_PROCESS_CLONE: u64 = (CLONE_PARENT | CLONE_UNTRACED) as u64;

/// The host syscalls of the sentry and of its stub processes after boot.
pub static ALLOWED: &[Allowed] = &[
    // read: guest reads of host-backed fds (vfs::host), the stub owners'
    // request eventfds (platform::ptrace), the console's host terminal
    // and its SIGWINCH signalfd (console).
    any(SYS_read),
    // write: guest writes to host-backed fds, the owners' eventfds, the
    // sentry's log, this module's SIGSYS message, the console's host
    // terminal and wake-up eventfd.
    any(SYS_write),
    // readv, writev: vectored guest I/O on host-backed fds (vfs::host).
    any(SYS_readv),
    any(SYS_writev),
    // pread64, pwrite64, preadv, pwritev: the memory file's page copies
    // (mm::memory_file), the loader's reads of the executable,
    // positional guest I/O on host fds.
    any(SYS_pread64),
    any(SYS_pwrite64),
    any(SYS_preadv),
    any(SYS_pwritev),
    // lseek: positions of host-backed fds (vfs::host); SEEK_DATA and
    // SEEK_HOLE on host files the gofer donated (fsimpl::gofer).
    any(SYS_lseek),
    // preadv2: a one-byte read of a donated host file with RWF_NOWAIT or
    // RWF_DONTCACHE, once per gofer mount, to learn whether its file
    // system takes those flags (fsimpl::gofer).
    any(SYS_preadv2),
    // close: fds the sentry drops (host fds of closed files, pidfds,
    // eventfds of dead address spaces).
    any(SYS_close),
    // fstat: stat of host-backed fds (vfs::host), of files the gofer
    // donates (mm::cached).
    any(SYS_fstat),
    // open, openat, openat2: answered EACCES by the second filter (see
    // `opens_filter`); never reach the host.
    any(SYS_open),
    any(SYS_openat),
    any(SYS_openat2),
    // fsync, fdatasync: a guest's fsync of a file the gofer donated
    // (fsimpl::gofer), after its mapped changes are written back.
    any(SYS_fsync),
    any(SYS_fdatasync),
    // sendmsg, recvmsg: requests to the gofer and its replies, with the
    // fds it donates (gofer::Client, over the socket runsc gave us).
    any(SYS_sendmsg),
    any(SYS_recvmsg),
    // sendmmsg, recvmmsg: the frames of a taken-over interface, sent and
    // received in batches on its packet socket (net::ether).
    any(SYS_sendmmsg),
    any(SYS_recvmmsg),
    // accept4: connections to an OCI sandbox's control socket, which
    // runsc bound and handed over listening (control::Server).
    any(SYS_accept4),
    // newfstatat: glibc's fstat() is fstatat(fd, "", AT_EMPTY_PATH).
    when(
        SYS_newfstatat,
        &[
            // AT_EMPTY_PATH: an fd, never a path.
            &[bits(3, AT_EMPTY_PATH as u64, AT_EMPTY_PATH as u64)],
        ],
    ),
    // getcwd: procfs's `exe` link of a program started by a relative
    // path (std::path::absolute); the sentry's cwd is its empty root.
    any(SYS_getcwd),
    // poll: the stub owners' wait on their eventfd and pidfds
    // (platform::ptrace), readiness checks of host fds (vfs::host), the
    // console's wait for host input and SIGWINCH (console).
    any(SYS_poll),
    // epoll_wait, epoll_ctl: the host event loop (vfs::host::HostEvents).
    any(SYS_epoll_wait),
    any(SYS_epoll_pwait),
    any(SYS_epoll_ctl),
    // eventfd2: a new address space's owner wake-up fd (platform::ptrace),
    // a console's wake-up fd (console).
    any(SYS_eventfd2),
    // pidfd_open: the owner watches each stub process and thread.
    any(SYS_pidfd_open),
    // pidfd_getfd: the read end of a new systrap stub's completion pipe,
    // taken from the stub (platform::systrap).
    any(SYS_pidfd_getfd),
    // ioctl: only what vfs::host passes on for host-backed streams, and
    // what the console bridge asks of its host terminal.
    when(
        SYS_ioctl,
        &[
            // TCGETS: tcgetattr / isatty of a host terminal; the console's
            // settings to restore.
            &[eq32(1, TCGETS)],
            // TCSETS, TCSETSW, TCSETSF: tcsetattr of a host terminal (the
            // console made raw and restored with TCSETS).
            &[eq32(1, TCSETS)],
            &[eq32(1, TCSETSW)],
            &[eq32(1, TCSETSF)],
            // TIOCGWINSZ: the terminal's size (the console's, copied to
            // the sandbox's terminal).
            &[eq32(1, TIOCGWINSZ)],
            // FIONREAD: bytes ready on a host fd.
            &[eq32(1, FIONREAD)],
        ],
    ),
    // fcntl: status flags of host fds (hostcall::fd_status_flags,
    // vfs::host's non-blocking I/O).
    when(
        SYS_fcntl,
        &[
            // F_GETFL: reading a host fd's status flags.
            &[eq32(1, F_GETFL as u64)],
            // F_SETFL: O_NONBLOCK on and off around host fd I/O.
            &[eq32(1, F_SETFL as u64)],
            // F_DUPFD_CLOEXEC: the page cache of a mapped host file keeps
            // a copy of its fd (vfs::host).
            &[eq32(1, F_DUPFD_CLOEXEC as u64)],
        ],
    ),
    // mmap: the sentry's own memory (allocator, thread stacks) and
    // windows of the memory file; in the stubs, guest mappings of the
    // memory file.
    when(
        SYS_mmap,
        &[
            // Anonymous memory, never executable: nothing new to run
            // appears in the sentry after boot.
            &[
                bits(3, MAP_ANONYMOUS as u64, MAP_ANONYMOUS as u64),
                bits(2, PROT_EXEC as u64, 0),
            ],
            // The memory file: the sentry's windows, guest memory in stubs
            // (any protection: guest code is executable).
            &[memory_fd(4)],
        ],
    ),
    // mprotect: glibc's thread-stack guard pages; never executable.
    when(SYS_mprotect, &[&[bits(2, PROT_EXEC as u64, 0)]]),
    // munmap: the allocator, thread stacks; in the stubs, guest unmaps and
    // the stub emptying its address space at start.
    any(SYS_munmap),
    // mremap: the allocator's realloc of large blocks.
    any(SYS_mremap),
    // madvise: the allocator and glibc's thread-stack reuse giving
    // memory back.
    when(
        SYS_madvise,
        &[
            // MADV_DONTNEED: glibc frees a cached thread stack's pages.
            &[eq32(2, MADV_DONTNEED as u64)],
            // MADV_FREE: the allocator trims freed heap.
            &[eq32(2, MADV_FREE as u64)],
        ],
    ),
    // brk: the allocator's main heap.
    any(SYS_brk),
    // fallocate: hole punching of freed memory-file ranges
    // (mm::memory_file); on other fds, the guest's fallocate of a host
    // file the gofer donated (fsimpl::gofer), with the modes the syscall
    // layer checked. The memory file takes nothing else.
    when(
        SYS_fallocate,
        &[
            &[
                memory_fd(0),
                eq32(1, (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) as u64),
            ],
            &[not_memory_fd(0)],
        ],
    ),
    // futex: every lock and condition variable of the sentry.
    any(SYS_futex),
    // set_robust_list, rseq: glibc's start of every new thread; the stub
    // unregisters the rseq area it inherited (platform::ptrace).
    any(SYS_set_robust_list),
    any(SYS_rseq),
    // sched_yield: spinning locks (parking_lot, std).
    any(SYS_sched_yield),
    // sched_getaffinity, sched_setaffinity: CPU placement of task and stub
    // threads (platform::ptrace::placement).
    any(SYS_sched_getaffinity),
    any(SYS_sched_setaffinity),
    // getcpu: sched_getcpu when the vDSO cannot answer (hostcall,
    // placement).
    any(SYS_getcpu),
    // clock_gettime, clock_getres, gettimeofday: clocks when the vDSO
    // falls back to the kernel, CPU-time clocks (hostcall, vdso::clock).
    any(SYS_clock_gettime),
    any(SYS_clock_getres),
    any(SYS_gettimeofday),
    // clock_nanosleep: guest sleeps and timers (hostcall::sleep_until),
    // std::thread::sleep (the timekeeper, the spare-stub thread's retry).
    any(SYS_clock_nanosleep),
    // getrandom: /dev/urandom, AT_RANDOM, getrandom(2) for the guest
    // (hostcall::fill_random); std's HashMap keys.
    any(SYS_getrandom),
    // sysinfo: memory totals for the guest's sysinfo and tmpfs sizes.
    any(SYS_sysinfo),
    // clone: threads and stub processes, by their exact flags.
    when(
        SYS_clone,
        &[
            // A sentry thread (std::thread, glibc's pthread_create).
            &[eq64(0, THREAD_CLONE)],
            // A stub process (platform::ptrace::spawn_stub's fork()).
            &[eq64(0, FORK_CLONE)],
            // A stub thread, cloned by the stub's master.
            &[eq64(0, STUB_THREAD_CLONE)],
            // A stub process, cloned by the template stub.
            &[eq64(0, STUB_PROCESS_CLONE)],
        ],
    ),
    // clone3: answered ENOSYS by the first filter (see the module doc);
    // allowed here so that the ENOSYS, not a trap, is what glibc sees.
    any(SYS_clone3),
    // ptrace: the platform; the requests it makes.
    when(
        SYS_ptrace,
        &[
            // PTRACE_TRACEME: a new stub process, before it empties itself.
            &[eq32(0, PTRACE_TRACEME as u64)],
            // PTRACE_ATTACH: a new stub thread.
            &[eq32(0, PTRACE_ATTACH as u64)],
            // PTRACE_SETOPTIONS: TRACESYSGOOD and EXITKILL on each tracee.
            &[eq32(0, PTRACE_SETOPTIONS as u64)],
            // PTRACE_CONT: a stub syscall, an attach's stops.
            &[eq32(0, PTRACE_CONT as u64)],
            // PTRACE_SYSEMU: running guest code.
            &[eq32(0, PTRACE_SYSEMU as u64)],
            // PTRACE_GETREGS, PTRACE_SETREGS: guest registers.
            &[eq32(0, PTRACE_GETREGS as u64)],
            &[eq32(0, PTRACE_SETREGS as u64)],
            // PTRACE_GETREGSET, PTRACE_SETREGSET: the XSAVE area.
            &[eq32(0, PTRACE_GETREGSET as u64)],
            &[eq32(0, PTRACE_SETREGSET as u64)],
            // PTRACE_GETSIGINFO: what stopped a stub thread.
            &[eq32(0, PTRACE_GETSIGINFO as u64)],
            // PTRACE_GETEVENTMSG: the tid of a systrap stub thread its
            // master cloned under PTRACE_O_TRACECLONE.
            &[eq32(0, PTRACE_GETEVENTMSG as u64)],
            // PTRACE_DETACH: a systrap stub thread set up (alternate
            // stack, seccomp filter) and let go to run guest code.
            &[eq32(0, PTRACE_DETACH as u64)],
        ],
    ),
    // wait4: waiting for stub stops and reaping stubs (waitpid).
    any(SYS_wait4),
    // kill: the platform kills stubs; a new stub stops itself.
    when(
        SYS_kill,
        &[
            // SIGKILL: a dead or dropped address space's stubs.
            &[eq32(1, SIGKILL as u64)],
            // SIGSTOP: a new stub process or thread stops itself for its
            // tracer (the stub code's kill(getpid(), SIGSTOP)).
            &[eq32(1, SIGSTOP as u64)],
            // SIGCONT: ends the group stop a new systrap stub stopped
            // itself in, so that its threads run once detached.
            &[eq32(1, SIGCONT as u64)],
        ],
    ),
    // tgkill: interrupting a stub thread; abort().
    when(
        SYS_tgkill,
        &[
            // SIGCHLD: the ptrace platform's interrupt signal.
            &[eq32(2, SIGCHLD as u64)],
            // SIGABRT: abort() after a failure the sentry cannot go on from.
            &[eq32(2, SIGABRT as u64)],
        ],
    ),
    // getpid: the stub code (kill(getpid(), SIGSTOP)), raise().
    any(SYS_getpid),
    // gettid: the platform's tracer identity (platform::ptrace).
    any(SYS_gettid),
    // prctl: two options.
    when(
        SYS_prctl,
        &[
            // PR_SET_NAME: std::thread names its threads.
            &[eq32(0, PR_SET_NAME as u64)],
            // PR_SET_PDEATHSIG: a new stub dies with its owner thread.
            &[eq32(0, PR_SET_PDEATHSIG as u64)],
        ],
    ),
    // setsid: a new stub leaves the sentry's session (platform::ptrace).
    any(SYS_setsid),
    // close_range: a new stub closes every fd but the memory file.
    any(SYS_close_range),
    // rt_sigprocmask: glibc masks signals around thread creation; a new
    // stub process unblocks every signal before it runs guest code. The
    // console's SIGWINCH is blocked, and its signalfd made, before the
    // filter goes on.
    any(SYS_rt_sigprocmask),
    // rt_sigreturn: the return of a signal handler.
    any(SYS_rt_sigreturn),
    // sigaltstack: std sets up and drops each thread's alternate signal
    // stack (stack-overflow reports).
    any(SYS_sigaltstack),
    // restart_syscall: the kernel restarts an interrupted sleep with it
    // after the sentry was stopped and continued (job control, a
    // debugger).
    any(SYS_restart_syscall),
    // exit: a sentry thread ends.
    any(SYS_exit),
    // exit_group: the sentry ends.
    any(SYS_exit_group),
];

/// The host calls of `--network=host` (`fsimpl::socket::hostinet`), in
/// the filter only in that mode. read, write, readv, writev, close,
/// sendmsg, recvmsg, accept4, poll and epoll_ctl are in [`ALLOWED`]
/// already; [`host_net_rules`] adds the options of getsockopt and
/// setsockopt and the ioctl.
pub static HOST_NET: &[Allowed] = &[
    // socket: the guest's TCP and UDP sockets, made non-blocking and
    // close-on-exec, of AF_INET and AF_INET6 only, protocol 0: never a
    // raw, packet or netlink socket on the host.
    when(
        SYS_socket,
        &[
            &[
                eq32(0, AF_INET as u64),
                eq32(1, (SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC) as u64),
                eq32(2, 0),
            ],
            &[
                eq32(0, AF_INET as u64),
                eq32(1, (SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC) as u64),
                eq32(2, 0),
            ],
            &[
                eq32(0, AF_INET6 as u64),
                eq32(1, (SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC) as u64),
                eq32(2, 0),
            ],
            &[
                eq32(0, AF_INET6 as u64),
                eq32(1, (SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC) as u64),
                eq32(2, 0),
            ],
        ],
    ),
    // bind, listen, connect, shutdown: the guest's calls on its host
    // sockets, with addresses the sentry checked and wrote anew.
    any(SYS_bind),
    any(SYS_listen),
    any(SYS_connect),
    any(SYS_shutdown),
    // getsockname, getpeername: the guest's, on its host sockets.
    any(SYS_getsockname),
    any(SYS_getpeername),
    // sendto: the guest's sends (with an address for UDP); its receives
    // go through recvmsg, without a control buffer.
    any(SYS_sendto),
];

/// The argument-checked rules of `--network=host` beyond [`HOST_NET`]:
/// getsockopt and setsockopt of the options `hostinet` passes on (by
/// level and name), and ioctl SIOCOUTQ (FIONREAD is in [`ALLOWED`]).
fn host_net_rules() -> Vec<(i64, Vec<Vec<Cond>>)> {
    use crate::fsimpl::socket::hostinet::{HOST_GET_OPTS, HOST_SET_OPTS};
    let opt = |&(level, name): &(i32, i32)| vec![eq32(1, level as u64), eq32(2, name as u64)];
    let set: Vec<Vec<Cond>> = HOST_SET_OPTS.iter().map(opt).collect();
    let get: Vec<Vec<Cond>> = HOST_SET_OPTS
        .iter()
        .chain(HOST_GET_OPTS.iter())
        .map(opt)
        .collect();
    vec![
        (SYS_setsockopt, set),
        (SYS_getsockopt, get),
        (
            SYS_ioctl,
            vec![vec![eq32(1, crate::fsimpl::socket::hostinet::SIOCOUTQ)]],
        ),
    ]
}

/// What [`install`] can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("building the seccomp filter: {0}")]
    Build(String),
    #[error("installing the seccomp filter: {0}")]
    Install(String),
    #[error("installing the SIGSYS handler: {0}")]
    Handler(std::io::Error),
}

/// The syscall the SIGSYS handler makes to end the sentry: never allowed.
const DEATH_SYSCALL: i64 = SYS_reboot;

fn condition(c: &Cond, memory_fd: RawFd) -> Result<SeccompCondition, seccompiler::BackendError> {
    let value = match c.value {
        Value::Const(v) => v,
        Value::MemoryFd | Value::NotMemoryFd => memory_fd as u64,
    };
    let len = if c.dword {
        SeccompCmpArgLen::Dword
    } else {
        SeccompCmpArgLen::Qword
    };
    let full = if c.dword { u32::MAX as u64 } else { u64::MAX };
    let op = if matches!(c.value, Value::NotMemoryFd) {
        SeccompCmpOp::Ne
    } else if c.mask == full {
        SeccompCmpOp::Eq
    } else {
        SeccompCmpOp::MaskedEq(c.mask)
    };
    SeccompCondition::new(c.arg, len, op, value)
}

/// The allow-list compiled to BPF, for a sentry whose memory file is
/// `memory_fd`; `mismatch` is what a syscall outside it gets. With
/// `host_net` (`--network=host`), [`HOST_NET`] and [`host_net_rules`]
/// are added.
pub fn build(
    memory_fd: RawFd,
    mismatch: SeccompAction,
    host_net: bool,
) -> Result<seccompiler::BpfProgram, ConfineError> {
    let err = |e: seccompiler::BackendError| ConfineError::Build(e.to_string());
    let compile = |r: &[Cond]| -> Result<SeccompRule, ConfineError> {
        let conds = r
            .iter()
            .map(|c| condition(c, memory_fd))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        SeccompRule::new(conds).map_err(err)
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let lists: &[&[Allowed]] = if host_net {
        &[ALLOWED, HOST_NET]
    } else {
        &[ALLOWED]
    };
    for a in lists.iter().flat_map(|l| l.iter()) {
        let v = a
            .rules
            .iter()
            .map(|r| compile(r))
            .collect::<Result<_, _>>()?;
        if rules.insert(a.nr, v).is_some() {
            return Err(ConfineError::Build(format!(
                "syscall {} is listed twice",
                a.nr
            )));
        }
    }
    if host_net {
        for (nr, extra) in host_net_rules() {
            let more = extra
                .iter()
                .map(|r| compile(r))
                .collect::<Result<Vec<_>, _>>()?;
            match rules.get_mut(&nr) {
                // Allowed with any arguments already.
                Some(v) if v.is_empty() => {}
                Some(v) => v.extend(more),
                None => {
                    rules.insert(nr, more);
                }
            }
        }
    }
    let filter = SeccompFilter::new(rules, mismatch, SeccompAction::Allow, TargetArch::x86_64)
        .map_err(err)?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| err(e))
}

/// The first filter: `clone3` answers ENOSYS, everything else goes on to
/// the allow-list.
fn clone3_filter() -> Result<seccompiler::BpfProgram, ConfineError> {
    let err = |e: seccompiler::BackendError| ConfineError::Build(e.to_string());
    let rules = BTreeMap::from([(SYS_clone3, Vec::new())]);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(ENOSYS as u32),
        TargetArch::x86_64,
    )
    .map_err(err)?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| err(e))
}

/// The second filter: opening a path fails with EACCES. The sentry has
/// no host path to open (its root is empty), but glibc looks at a few
/// system files on its own when it first needs them (malloc's
/// `/proc/sys/vm/overcommit_memory` when a thread's heap first shrinks,
/// the CPU count in `/sys` for its arena limit), at moments no setup can
/// anticipate; each copes with a failed open. `open` and `openat` are in
/// [`ALLOWED`] only so that this filter's answer is the one that counts
/// (a trap from the list would take precedence over an errno).
fn opens_filter() -> Result<seccompiler::BpfProgram, ConfineError> {
    let err = |e: seccompiler::BackendError| ConfineError::Build(e.to_string());
    let rules = BTreeMap::from([
        (SYS_open, Vec::new()),
        (SYS_openat, Vec::new()),
        (SYS_openat2, Vec::new()),
    ]);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(EACCES as u32),
        TargetArch::x86_64,
    )
    .map_err(err)?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| err(e))
}

/// What must be settled before the filter, on the sentry's main thread
/// before it starts any other: glibc's malloc asks for the number of CPUs
/// (by opening `/sys/devices/system/cpu/online`) the first time it has
/// more than 8 arenas, unless the arena limit is set. It is set here to
/// glibc's own default for `cpus` CPUs (8 arenas a CPU).
pub fn prepare(cpus: usize) {
    let arenas = (cpus.max(1) * 8).min(c_int::MAX as usize) as c_int;
    // SAFETY: mallopt only sets a malloc parameter.
    unsafe { libc::mallopt(M_ARENA_MAX, arenas) };
}

/// Installs the SIGSYS handler and then the filters on every thread of
/// the sentry. From here on, the sentry's host syscalls are [`ALLOWED`]
/// (and, with `host_net`, those of `--network=host`).
pub fn install(memory_fd: RawFd, host_net: bool) -> Result<(), ConfineError> {
    let first = clone3_filter()?;
    let opens = opens_filter()?;
    let list = build(memory_fd, SeccompAction::Trap, host_net)?;
    install_sigsys_handler().map_err(ConfineError::Handler)?;
    for f in [&first, &opens, &list] {
        seccompiler::apply_filter_all_threads(f)
            .map_err(|e| ConfineError::Install(e.to_string()))?;
    }
    Ok(())
}

/// For tests of the filter: a host syscall outside [`ALLOWED`]
/// (`socket(AF_INET, SOCK_STREAM, 0)`), which must kill the sentry.
pub fn make_forbidden_syscall() {
    // SAFETY: socket makes a new fd or fails; under the filter it traps.
    let fd = unsafe { libc::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) };
    if fd >= 0 {
        // SAFETY: closes the fd socket just made.
        unsafe { libc::close(fd) };
    }
}

fn install_sigsys_handler() -> std::io::Result<()> {
    // SAFETY: all-zero is a valid sigaction (no handler, empty mask).
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_sigsys as *const () as usize;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    // SAFETY: installs a handler that only makes async-signal-safe
    // syscalls; SIGSYS stays blocked while it runs (no SA_NODEFER).
    if unsafe { libc::sigaction(SIGSYS, &sa, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Offset of `si_syscall` in a SIGSYS siginfo (after `si_signo`,
/// `si_errno`, `si_code`, padding and `si_call_addr`).
const SI_SYSCALL_OFFSET: usize = 24;

/// Writes `n` in decimal at the end of `buf[..end]`; returns where it
/// starts.
fn decimal(buf: &mut [u8], end: usize, mut n: u64) -> usize {
    let mut i = end;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return i;
        }
    }
}

extern "C" fn on_sigsys(_sig: c_int, info: *mut siginfo_t, _ctx: *mut c_void) {
    // SAFETY: the kernel passes a SIGSYS siginfo, whose `si_syscall` (an
    // int) is at this offset for a seccomp trap.
    let nr =
        unsafe { std::ptr::read_unaligned(info.cast::<u8>().add(SI_SYSCALL_OFFSET).cast::<i32>()) };
    let mut msg = [0u8; 200];
    let mut len = 0;
    let mut put = |s: &[u8], len: &mut usize| {
        let n = s.len().min(msg.len() - *len);
        msg[*len..*len + n].copy_from_slice(&s[..n]);
        *len += n;
    };
    put(b"runsc: the sentry made host syscall ", &mut len);
    let mut num = [0u8; 20];
    let start = decimal(&mut num, 20, nr.max(0) as u64);
    put(&num[start..], &mut len);
    let name = crate::syscalls::names::NAMES
        .get(nr.max(0) as usize)
        .copied()
        .unwrap_or("?");
    put(b" (", &mut len);
    put(name.as_bytes(), &mut len);
    put(b"), which its seccomp filter forbids\n", &mut len);
    // SAFETY: writes our buffer to fd 2; async-signal-safe.
    unsafe { libc::write(2, msg.as_ptr().cast(), len) };
    // A forbidden syscall with SIGSYS blocked (it is, in its own handler):
    // the kernel resets SIGSYS to its default and the sentry dies of it.
    // SAFETY: reboot with bad magic numbers does nothing, and it is not
    // allowed: it traps before it runs.
    unsafe { libc::syscall(DEATH_SYSCALL, 0, 0, 0, 0) };
    // SAFETY: only if the above somehow returned: end the process.
    unsafe { libc::_exit(128 + SIGSYS) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_compiles_and_leaves_out_what_the_sentry_must_not_do() {
        let prog = build(3, SeccompAction::Trap, false).unwrap();
        assert!(!prog.is_empty());
        assert!(build(3, SeccompAction::Trap, true).unwrap().len() > prog.len());
        for nr in [
            DEATH_SYSCALL,
            SYS_socket,
            SYS_execve,
            SYS_execveat,
            SYS_mount,
            SYS_unshare,
            SYS_setns,
            SYS_chroot,
            SYS_pivot_root,
            SYS_rt_sigaction,
            SYS_seccomp,
            SYS_open_by_handle_at,
        ] {
            assert!(
                ALLOWED.iter().all(|a| a.nr != nr),
                "syscall {nr} must not be allowed"
            );
        }
        clone3_filter().unwrap();
        // Opens are in the list only for the filter that refuses them.
        opens_filter().unwrap();
    }

    #[test]
    fn host_network_adds_socket_calls_only() {
        for a in HOST_NET {
            assert!(
                ![SYS_execve, SYS_setns, SYS_unshare, SYS_mount].contains(&a.nr),
                "{} in the host network list",
                a.nr
            );
        }
        let socket = HOST_NET.iter().find(|a| a.nr == SYS_socket).unwrap();
        assert!(!socket.rules.is_empty(), "socket must be argument-checked");
    }

    #[test]
    fn each_syscall_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for a in ALLOWED.iter().chain(HOST_NET.iter()) {
            assert!(seen.insert(a.nr), "{} twice", a.nr);
        }
    }
}
