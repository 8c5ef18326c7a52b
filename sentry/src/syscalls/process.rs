//! Processes: clone, clone3, fork, vfork, execve, execveat, exit, wait4,
//! waitid, and sessions and process groups.

use crate::sync::LockExt;
use std::sync::{Arc, Mutex};

use crate::errno::Errno;

use super::file::{lookup_at, read_path};
use super::{Fd, Hex, SysResult, UserAddr, UserPath};
use crate::kernel::compat::Unsupported;
use crate::kernel::process::{child_code, wait_status, Process, Report};
use crate::kernel::signal::{self, SigInfo};
use crate::kernel::task::{Task, ThreadGroup, VforkDone};
use crate::kernel::waiter::ALL_EVENTS;
use crate::kernel::ExitStatus;
use crate::vfs::perm;
use crate::vfs::FileDescription;

const CLONE_NEWTIME: u64 = 0x80;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The namespaces the sentry cannot make yet.
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64
    | CLONE_NEWTIME;

/// New namespaces (clone and clone3 with CLONE_NEW*): not made yet.
const CLONE_NAMESPACES: Unsupported = Unsupported {
    syscall: "clone",
    argument: "flags",
    answer: Errno::ENOSYS,
};
/// unshare of namespaces: not made yet.
const UNSHARE_NAMESPACES: Unsupported = Unsupported {
    syscall: "unshare",
    argument: "flags",
    answer: Errno::ENOSYS,
};
/// clone3's choice of pids (set_tid): not implemented.
const CLONE3_SET_TID: Unsupported = Unsupported {
    syscall: "clone3",
    argument: "field",
    answer: Errno::ENOSYS,
};
/// clone3 into a cgroup: the sandbox has no cgroups of its own.
const CLONE3_UNIMPLEMENTED: Unsupported = Unsupported {
    syscall: "clone3",
    argument: "flags",
    answer: Errno::ENOSYS,
};

/// The names of namespace flags, `CLONE_NEWNS|CLONE_NEWPID`.
fn namespace_names(f: u64) -> String {
    let names = [
        (libc::CLONE_NEWNS as u64, "CLONE_NEWNS"),
        (libc::CLONE_NEWUTS as u64, "CLONE_NEWUTS"),
        (libc::CLONE_NEWIPC as u64, "CLONE_NEWIPC"),
        (libc::CLONE_NEWUSER as u64, "CLONE_NEWUSER"),
        (libc::CLONE_NEWPID as u64, "CLONE_NEWPID"),
        (libc::CLONE_NEWNET as u64, "CLONE_NEWNET"),
        (libc::CLONE_NEWCGROUP as u64, "CLONE_NEWCGROUP"),
        (CLONE_NEWTIME, "CLONE_NEWTIME"),
    ];
    names
        .iter()
        .filter(|(b, _)| f & b != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join("|")
}

/// What clone and clone3 were asked for.
#[derive(Clone, Copy, Debug, Default)]
pub struct CloneArgs {
    pub flags: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub parent_tid: u64,
    pub child_tid: u64,
    pub tls: u64,
    pub pidfd: u64,
}

pub fn clone(
    t: &mut Task,
    flags: Hex,
    stack: UserAddr,
    parent_tid: UserAddr,
    child_tid: UserAddr,
    tls: Hex,
) -> SysResult {
    let f = flags.0;
    let args = CloneArgs {
        flags: f & !0xff,
        exit_signal: f & 0xff,
        stack: stack.0,
        parent_tid: parent_tid.0,
        child_tid: child_tid.0,
        tls: tls.0,
        // clone() returns the pidfd through parent_tid.
        pidfd: parent_tid.0,
    };
    if args.flags & CLONE_PIDFD != 0 && args.flags & libc::CLONE_PARENT_SETTID as u64 != 0 {
        return Err(Errno::EINVAL);
    }
    do_clone(t, args)
}

/// `struct clone_args` (clone3), up to the fields this kernel knows.
const CLONE_ARGS_SIZE_VER0: usize = 64;
const CLONE_ARGS_SIZE_VER2: usize = 88;

pub fn clone3(t: &mut Task, uargs: UserAddr, size: usize) -> SysResult {
    if !(CLONE_ARGS_SIZE_VER0..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; size];
    t.mm.copy_in(uargs.0, &mut raw)?;
    // Fields past the ones known must be zero.
    if raw.len() > CLONE_ARGS_SIZE_VER2 && raw[CLONE_ARGS_SIZE_VER2..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG);
    }
    raw.resize(CLONE_ARGS_SIZE_VER2, 0);
    let w = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
    let (flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls) =
        (w(0), w(1), w(2), w(3), w(4), w(5), w(6), w(7));
    let (set_tid, set_tid_size, cgroup) = (w(8), w(9), w(10));
    if exit_signal > 64 {
        return Err(Errno::EINVAL);
    }
    if (stack == 0) != (stack_size == 0) {
        return Err(Errno::EINVAL);
    }
    if set_tid != 0 || set_tid_size != 0 {
        return CLONE3_SET_TID.answer(t, "set_tid");
    }
    if flags & CLONE_INTO_CGROUP != 0 {
        let _ = cgroup;
        return CLONE3_UNIMPLEMENTED.answer(t, "CLONE_INTO_CGROUP");
    }
    if flags & CLONE_CLEAR_SIGHAND != 0 && flags & libc::CLONE_SIGHAND as u64 != 0 {
        return Err(Errno::EINVAL);
    }
    do_clone(
        t,
        CloneArgs {
            flags,
            exit_signal,
            // clone3 gives the lowest address of the stack.
            stack: if stack != 0 { stack + stack_size } else { 0 },
            parent_tid,
            child_tid,
            tls,
            pidfd,
        },
    )
}

pub fn fork(t: &mut Task) -> SysResult {
    do_clone(
        t,
        CloneArgs {
            exit_signal: libc::SIGCHLD as u64,
            ..Default::default()
        },
    )
}

pub fn vfork(t: &mut Task) -> SysResult {
    do_clone(
        t,
        CloneArgs {
            flags: (libc::CLONE_VM | libc::CLONE_VFORK) as u64,
            exit_signal: libc::SIGCHLD as u64,
            ..Default::default()
        },
    )
}

/// Makes a new task: a thread of the caller's process, or a new process.
pub fn do_clone(t: &mut Task, a: CloneArgs) -> SysResult {
    let f = a.flags;
    let has = |x: i32| f & x as u64 != 0;
    // Linux's checks, in its order.
    if has(libc::CLONE_NEWNS) && has(libc::CLONE_FS) {
        return Err(Errno::EINVAL);
    }
    if has(libc::CLONE_THREAD) && !has(libc::CLONE_SIGHAND) {
        return Err(Errno::EINVAL);
    }
    if has(libc::CLONE_SIGHAND) && !has(libc::CLONE_VM) {
        return Err(Errno::EINVAL);
    }
    if has(libc::CLONE_PARENT) && t.tg.tgid == 1 {
        return Err(Errno::EINVAL);
    }
    if f & NAMESPACE_FLAGS != 0 {
        return CLONE_NAMESPACES.answer(t, namespace_names(f & NAMESPACE_FLAGS));
    }
    if f & CLONE_PIDFD != 0 && has(libc::CLONE_THREAD) {
        return Err(Errno::EINVAL);
    }
    if a.exit_signal > 64 {
        return Err(Errno::EINVAL);
    }
    let kernel = t.kernel.clone();
    // RLIMIT_NPROC counts the caller's real uid's processes.
    if !has(libc::CLONE_THREAD) && t.creds.uid != 0 {
        let limit = crate::kernel::task::lock_limits(&t.tg).cur(libc::RLIMIT_NPROC);
        let ts = kernel.tasks.lock();
        let n = ts
            .procs
            .values()
            .filter(|p| p.zombie.is_none() && p.uid == t.creds.uid)
            .count();
        if n as u64 >= limit {
            return Err(Errno::EAGAIN);
        }
    }
    let tid = kernel.tasks.lock().alloc_pid()?;
    // Memory: shared, or a copy-on-write copy.
    let mm = if has(libc::CLONE_VM) {
        t.mm.clone()
    } else {
        let aspace = kernel.platform.new_address_space().map_err(|e| {
            tracing::error!("fork: a new address space: {e}");
            Errno::EAGAIN
        })?;
        let mm = t.mm.fork(aspace)?;
        mm.set_owner(tid);
        crate::kernel::watch_address_space(&kernel, &mm);
        mm
    };
    let fds = if has(libc::CLONE_FILES) {
        t.fds.clone()
    } else {
        Arc::new(t.fds.duplicate())
    };
    let fs = if has(libc::CLONE_FS) {
        t.fs.clone()
    } else {
        Arc::new(Mutex::new(t.fs.locked().clone()))
    };
    let tg = if has(libc::CLONE_THREAD) {
        t.tg.clone()
    } else {
        let tg = Arc::new(t.tg.fork(tid, has(libc::CLONE_SIGHAND)));
        if f & CLONE_CLEAR_SIGHAND != 0 {
            tg.reset_handlers_for_exec();
        }
        tg
    };
    let mut regs = t.regs;
    regs.rax = 0;
    if a.stack != 0 {
        regs.rsp = a.stack;
    }
    if has(libc::CLONE_SETTLS) {
        if a.tls >= super::fs::TASK_SIZE {
            return Err(Errno::EPERM);
        }
        regs.fs_base = a.tls;
    }
    let aspace = t.mm.address_space().clone();
    let fp = t.ctx.fp_state(&aspace).map_err(|_| Errno::EAGAIN)?;
    let mut ctx = kernel.platform.new_context();
    ctx.set_fp_state(fp);
    let mut child = Task::new(
        kernel.clone(),
        tg.clone(),
        tid,
        regs,
        mm.clone(),
        fds,
        t.creds.clone(),
        ctx,
        t.comm(),
        fs,
        t.signal_mask(),
    );
    // A thread sharing memory without vfork gets no alternate stack.
    if !has(libc::CLONE_VM) || has(libc::CLONE_VFORK) {
        child.alt_stack = t.alt_stack;
    }
    *child.shared.sched.lock() = super::sched::inherit(&t.shared.sched.lock());
    child.prctl.timer_slack_ns = t.prctl.timer_slack_ns;
    child.prctl.no_new_privs = t.prctl.no_new_privs;
    if has(libc::CLONE_CHILD_CLEARTID) {
        child.clear_child_tid = a.child_tid;
    }
    if has(libc::CLONE_CHILD_SETTID) {
        // Into the child's memory (after a fork, only the child sees it).
        mm.write_obj(a.child_tid, &tid)?;
    }
    if has(libc::CLONE_PARENT_SETTID) {
        t.mm.write_obj(a.parent_tid, &tid)?;
    }
    if f & CLONE_PIDFD != 0 {
        let fd = super::pidfd::install_pidfd(t, tg.clone(), false)?;
        if let Err(e) = t.mm.write_obj(a.pidfd, &fd) {
            let _ = t.fds.remove(fd);
            return Err(e);
        }
    }
    let vfork = has(libc::CLONE_VFORK).then(|| Arc::new(VforkDone::default()));
    child.vfork_done = vfork.clone();
    child.publish();
    // Into the pid namespace.
    {
        let mut ts = kernel.tasks.lock();
        if t.tg.exiting() {
            // The caller is being killed: no new task for it.
            return Err(Errno::ERESTARTNOINTR);
        }
        ts.tasks.insert(tid, child.shared.clone());
        // Seccomp filters are inherited (and kept across exec), under the
        // lock a sibling's TSYNC takes, so none is missed.
        crate::kernel::seccomp::inherit(t, &child);
        if has(libc::CLONE_THREAD) {
            if let Some(p) = ts.procs.get_mut(&t.tg.tgid) {
                p.threads.insert(tid);
            }
        } else {
            let me = ts.procs.get(&t.tg.tgid).ok_or(Errno::ESRCH)?;
            let parent = if has(libc::CLONE_PARENT) {
                me.parent
            } else {
                t.tg.tgid
            };
            let (pgid, sid) = (me.pgid, me.sid);
            ts.procs.insert(
                tid,
                Process {
                    tg: tg.clone(),
                    leader: child.shared.clone(),
                    parent,
                    children: Default::default(),
                    pgid,
                    sid,
                    threads: [tid].into_iter().collect(),
                    exit_signal: a.exit_signal as i32,
                    zombie: None,
                    report: None,
                    uid: t.creds.uid,
                    execed: false,
                },
            );
            if let Some(pp) = ts.procs.get_mut(&parent) {
                pp.children.insert(tid);
            }
        }
    }
    spawn(child)?;
    if let Some(v) = vfork {
        // The parent waits until the child execs or exits.
        let v2 = v.clone();
        let waiter = t.shared.waiter.clone();
        let _r = v.queue.register(&waiter, ALL_EVENTS);
        loop {
            waiter.reset();
            if *v2.done.lock() || t.tg.exiting() {
                break;
            }
            // Only a kill ends the wait early; other signals wait.
            waiter.wait_woken(Some(std::time::Instant::now() + RECHECK));
        }
    }
    Ok(tid as u64)
}

/// How often a wait that signals cannot end looks whether the process is
/// being killed.
const RECHECK: std::time::Duration = std::time::Duration::from_millis(20);

/// Starts a task on a sentry thread of its own.
pub fn spawn(task: Task) -> Result<(), Errno> {
    let tid = task.tid;
    let shared = task.shared.clone();
    let kernel = task.kernel.clone();
    let r = std::thread::Builder::new()
        .name(format!("task-{tid}"))
        .spawn(move || {
            platform::ptrace::unbind_current_thread();
            task.run();
        });
    if let Err(e) = r {
        tracing::error!("no sentry thread for task {tid}: {e}");
        kernel.thread_exited(&shared, ExitStatus::Signaled(libc::SIGKILL), (0, 0));
        return Err(Errno::EAGAIN);
    }
    Ok(())
}

// ----- exec -----

/// Linux's MAX_ARG_STRLEN and MAX_ARG_STRINGS.
const MAX_ARG_STRLEN: usize = 32 * 4096;
const MAX_ARG_STRINGS: usize = 0x7fff_ffff;

/// Reads a NULL-terminated array of guest strings.
fn read_strings(
    t: &Task,
    addr: u64,
    total: &mut usize,
    limit: usize,
) -> Result<Vec<Vec<u8>>, Errno> {
    let mut v = Vec::new();
    if addr == 0 {
        return Ok(v);
    }
    for i in 0..MAX_ARG_STRINGS {
        let p: u64 = t.mm.read_obj(addr + 8 * i as u64)?;
        if p == 0 {
            break;
        }
        let s = t.mm.read_cstring(p, MAX_ARG_STRLEN).map_err(|e| {
            if e == Errno::ENAMETOOLONG {
                Errno::E2BIG
            } else {
                e
            }
        })?;
        *total += s.len() + 1 + 8;
        if *total > limit {
            return Err(Errno::E2BIG);
        }
        v.push(s);
    }
    Ok(v)
}

impl crate::loader::ExecutableFile for FileDescription {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let n = self
                .imp
                .read(self, &mut buf[done..], Some(offset + done as u64))
                .map_err(std::io::Error::from)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    fn size(&self) -> std::io::Result<u64> {
        let st = self.imp.stat(self).map_err(std::io::Error::from)?;
        Ok(st.st_size as u64)
    }
}

pub fn execve(t: &mut Task, path: UserPath, argv: UserAddr, envp: UserAddr) -> SysResult {
    do_execve(t, libc::AT_FDCWD, path.0, argv.0, envp.0, 0)
}

pub fn execveat(
    t: &mut Task,
    dirfd: Fd,
    path: UserPath,
    argv: UserAddr,
    envp: UserAddr,
    flags: Hex,
) -> SysResult {
    do_execve(t, dirfd.0, path.0, argv.0, envp.0, flags.0 as i32)
}

/// How many `#!` interpreters may follow one another.
const MAX_INTERPRETERS: usize = 4;

/// Resolves and opens an executable: a regular file the caller may
/// execute, on a mount that allows it.
fn open_executable(
    t: &Task,
    dirfd: i32,
    name: &[u8],
    follow: bool,
    empty_ok: bool,
) -> Result<(crate::vfs::mount::Location, Arc<FileDescription>), Errno> {
    let loc = lookup_at(t, dirfd, name, follow, empty_ok)?;
    let meta = loc.inode.meta();
    if meta.is_symlink() {
        return Err(Errno::ELOOP);
    }
    if meta.file_type() != libc::S_IFREG {
        return Err(Errno::EACCES);
    }
    if loc
        .mount
        .flags
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .noexec
    {
        return Err(Errno::EACCES);
    }
    perm::check(&t.creds, &meta, perm::MAY_EXEC)?;
    let imp = loc.inode.ops.open(t, &loc.inode, libc::O_RDONLY as u32)?;
    let file = FileDescription::new_at(libc::O_RDONLY as u32, imp, Some(loc.clone()));
    // Opened, and its head read (Linux's do_open_execat, prepare_binprm).
    crate::vfs::inotify::opened(&file);
    crate::vfs::inotify::notify_file(&file, crate::vfs::inotify::IN_ACCESS);
    Ok((loc, file))
}

/// A `#!` line: the interpreter and its one optional argument.
type Interpreter = (Vec<u8>, Option<Vec<u8>>);

/// The interpreter line of a `#!` script.
fn interpreter(file: &FileDescription) -> Result<Option<Interpreter>, Errno> {
    use crate::loader::ExecutableFile;
    let mut head = [0u8; 256];
    let n = file.read_at(&mut head, 0).map_err(|_| Errno::EIO)?;
    if n < 2 || &head[..2] != b"#!" {
        return Ok(None);
    }
    let line = &head[2..n];
    let line = &line[..line.iter().position(|&c| c == b'\n').unwrap_or(line.len())];
    let ws = |c: &u8| *c == b' ' || *c == b'\t';
    let start = line.iter().position(|c| !ws(c)).unwrap_or(line.len());
    let line = &line[start..];
    let end = line.iter().position(ws).unwrap_or(line.len());
    let interp = line[..end].to_vec();
    if interp.is_empty() {
        return Err(Errno::ENOEXEC);
    }
    let rest = &line[end..];
    let a = rest.iter().position(|c| !ws(c));
    let arg = a.map(|a| {
        let r = &rest[a..];
        let e = r.iter().rposition(|c| !ws(c)).map(|i| i + 1).unwrap_or(0);
        r[..e].to_vec()
    });
    Ok(Some((interp, arg)))
}

/// The stack limit a privilege-raising exec leaves at most (Linux's
/// _STK_LIM).
const SECURE_STACK_LIMIT: u64 = 8 << 20;

fn do_execve(t: &mut Task, dirfd: i32, path: u64, argv: u64, envp: u64, flags: i32) -> SysResult {
    let name = read_path(t, path)?;
    if name.is_empty() && flags & libc::AT_EMPTY_PATH == 0 {
        return Err(Errno::ENOENT);
    }
    if flags & !(libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let limit = ((crate::kernel::task::lock_limits(&t.tg).cur(libc::RLIMIT_STACK) / 4)
        .max(32 * 4096)) as usize;
    let mut total = 0;
    let argv = read_strings(t, argv, &mut total, limit)?;
    let envp = read_strings(t, envp, &mut total, limit)?;
    exec_with(t, dirfd, name, argv, envp, flags)
}

/// execve of `name` (relative to `dirfd`) with arguments and environment
/// already read: what the syscall does once it has copied them in, and
/// how the sandbox's first program starts from its file system.
pub fn exec_with(
    t: &mut Task,
    dirfd: i32,
    name: Vec<u8>,
    mut argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    flags: i32,
) -> SysResult {
    let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
    // The path as the new program sees it (AT_EXECFN): the name given,
    // or /dev/fd/N for execveat of an fd.
    let execfn = if name.is_empty() || (dirfd != libc::AT_FDCWD && name[0] != b'/') {
        if name.is_empty() {
            format!("/dev/fd/{dirfd}")
        } else {
            format!("/dev/fd/{dirfd}/{}", String::from_utf8_lossy(&name))
        }
    } else {
        String::from_utf8_lossy(&name).into_owned()
    };
    let (script_loc, script_file) =
        open_executable(t, dirfd, &name, follow, flags & libc::AT_EMPTY_PATH != 0)?;
    let mut file = script_file.clone();
    let mut loc = script_loc.clone();
    // `#!` scripts run their interpreter with the script's path.
    let mut depth = 0;
    while let Some((interp, arg)) = interpreter(&file)? {
        depth += 1;
        if depth > MAX_INTERPRETERS {
            return Err(Errno::ELOOP);
        }
        let mut v = vec![interp.clone()];
        v.extend(arg);
        v.push(execfn.clone().into_bytes());
        v.extend(argv.into_iter().skip(1));
        argv = v;
        let (l, f) = open_executable(t, libc::AT_FDCWD, &interp, true, false)?;
        loc = l;
        file = f;
    }
    // The new credentials: set-user-ID and set-group-ID executables,
    // where allowed, and the capabilities (Linux ignores the set-id bits
    // on scripts: those of the interpreter count).
    let meta = loc.inode.meta();
    let nosuid = loc
        .mount
        .flags
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .nosuid;
    let exec_file = crate::kernel::creds::ExecFile {
        mode: meta.mode,
        uid: meta.uid,
        gid: meta.gid,
        nosuid,
    };
    let crate::kernel::creds::ExecCreds { creds, secure } =
        t.creds.for_exec(&exec_file, t.prctl.no_new_privs);
    let unreadable = perm::check(&t.creds, &meta, perm::MAY_READ).is_err()
        || perm::check(&t.creds, &script_loc.inode.meta(), perm::MAY_READ).is_err();
    // An executable reached through a magic link to an open file without
    // a place in the tree (/proc/self/exe of the first program): the new
    // image is that file, and /proc/self/exe keeps its name.
    if let Some(orig) = crate::vfs::anon::open_file_at(&loc) {
        file = orig;
    }
    let kernel = t.kernel.clone();
    let aspace = kernel.platform.new_address_space().map_err(|e| {
        tracing::error!("exec: a new address space: {e}");
        Errno::ENOMEM
    })?;
    let mm = Arc::new(crate::mm::MemoryManager::new(
        kernel.memory_file.clone(),
        aspace,
        kernel.platform.max_user_address(),
    ));
    let pages = match crate::syscalls::mm::mappable(t, &file) {
        crate::syscalls::mm::Mappable::File(m) => Some(m),
        _ => None,
    };
    let mut open_interp = |path: &[u8]| {
        let (_, f) = open_executable(t, libc::AT_FDCWD, path, true, false)?;
        let pages = match crate::syscalls::mm::mappable(t, &f) {
            crate::syscalls::mm::Mappable::File(m) => Some(m),
            _ => None,
        };
        Ok((f as Arc<dyn crate::loader::ExecutableFile>, pages))
    };
    // A privilege-raising exec gets a stack limit of at most 8 MiB.
    let mut limits = t.tg.mm_limits();
    if secure {
        limits.stack = limits.stack.min(SECURE_STACK_LIMIT);
    }
    let image = crate::loader::load_secure(
        &mm,
        crate::loader::Executable {
            file: &*file,
            pages,
        },
        Some(&mut open_interp),
        &execfn,
        &argv,
        &envp,
        &creds,
        secure,
        limits,
    )
    .map_err(|e| e.errno())?;
    mm.set_exe(file.clone());
    mm.set_owner(t.tg.tgid);
    crate::kernel::watch_address_space(&kernel, &mm);
    // The point of no return: the other threads go.
    kill_other_threads(t)?;
    let old = std::mem::replace(&mut t.mm, mm);
    t.release_mm(old);
    if Arc::strong_count(&t.fds) > 2 {
        // Shared with another process (CLONE_FILES): exec gets its own.
        t.fds = Arc::new(t.fds.duplicate());
    }
    t.fds.close_on_exec();
    t.tg.reset_handlers_for_exec();
    t.tg.timers.exec();
    t.alt_stack = signal::SignalStack {
        flags: signal::SS_DISABLE,
        ..Default::default()
    };
    // Dumpability: lost when the program (or its script) is not
    // readable or the old effective ids were not the real ones, and by
    // the new credentials' raising privilege (which also clears the
    // parent-death signal, as does a privilege-raising exec).
    if unreadable || t.creds.euid != t.creds.uid || t.creds.egid != t.creds.gid {
        crate::kernel::task::lock_prctl(&t.tg).dumpable = 0;
    } else {
        crate::kernel::task::lock_prctl(&t.tg).dumpable = 1;
    }
    if secure {
        t.prctl.pdeath_signal = 0;
        let mut l = crate::kernel::task::lock_limits(&t.tg);
        if let Ok(stack) = l.get(libc::RLIMIT_STACK) {
            if stack.cur > SECURE_STACK_LIMIT {
                let lower = crate::kernel::limits::Limit {
                    cur: SECURE_STACK_LIMIT,
                    max: stack.max,
                };
                // Lowering the soft limit cannot fail.
                let _ = l.set(libc::RLIMIT_STACK, lower, true);
            }
        }
    }
    super::creds::commit(t, creds);
    // The new name: the last component of the path, or of the file's own
    // path when it was named by an fd.
    let base = if name.is_empty() {
        let n = crate::fsimpl::procfs::location_name(t, &script_loc);
        if n.starts_with(b"/") && !n.ends_with(b"/") {
            n
        } else {
            // A file from outside the sandbox's tree: its own name.
            script_file.imp.name().into_bytes()
        }
    } else {
        name.clone()
    };
    t.set_comm(
        base.rsplit(|&b| b == b'/')
            .next()
            .unwrap_or(&[])
            .iter()
            .copied()
            .take(15)
            .collect(),
    );
    let mut regs = kernel.platform.initial_registers();
    regs.rip = image.entry;
    regs.rsp = image.stack_pointer;
    t.regs = regs;
    t.ctx.set_fp_state(kernel.platform.initial_fp_state());
    t.clear_child_tid = 0;
    t.robust_list = (0, 0);
    t.restart_block = None;
    if let Some(v) = t.vfork_done.take() {
        v.release();
    }
    if let Some(p) = kernel.tasks.lock().procs.get_mut(&t.tg.tgid) {
        p.execed = true;
    }
    t.publish();
    Ok(0)
}

/// exec's de_thread: every other thread of the process exits; a
/// non-leader that execs takes the leader's tid.
fn kill_other_threads(t: &mut Task) -> Result<(), Errno> {
    let kernel = t.kernel.clone();
    let tg = t.tg.clone();
    {
        let mut g = tg.sig.lock();
        if g.exit.is_some() || g.exec_tid.is_some() {
            return Err(Errno::ERESTARTNOINTR);
        }
        g.exec_tid = Some(t.tid);
    }
    let others: Vec<_> = kernel
        .tasks
        .lock()
        .threads_of(tg.tgid)
        .into_iter()
        .filter(|s| !Arc::ptr_eq(s, &t.shared))
        .collect();
    for o in &others {
        o.request_exit();
    }
    let waiter = t.shared.waiter.clone();
    let _r = tg.thread_exits.register(&waiter, ALL_EVENTS);
    loop {
        waiter.reset();
        let alone = kernel.tasks.lock().threads_of(tg.tgid).len() <= 1;
        if alone || tg.exiting() {
            break;
        }
        // Signals wait for the exec to finish; they stay pending.
        waiter.wait_woken(Some(std::time::Instant::now() + RECHECK));
    }
    tg.sig.lock().exec_tid = None;
    if tg.exiting() {
        return Err(Errno::ERESTARTNOINTR);
    }
    if t.tid != tg.tgid {
        let mut ts = kernel.tasks.lock();
        let old = t.tid;
        ts.tasks.remove(&old);
        ts.tasks.insert(tg.tgid, t.shared.clone());
        if let Some(p) = ts.procs.get_mut(&tg.tgid) {
            p.threads.remove(&old);
            p.threads.insert(tg.tgid);
            p.leader = t.shared.clone();
        }
        drop(ts);
        t.change_tid(tg.tgid);
    }
    Ok(())
}

// ----- exit -----

pub fn exit(t: &mut Task, code: i32) -> SysResult {
    t.exit_code = Some(ExitStatus::Exited(code as u8));
    Ok(0)
}

pub fn exit_group(t: &mut Task, code: i32) -> SysResult {
    let st = ExitStatus::Exited(code as u8);
    t.kernel.group_exit(&t.tg, st);
    t.exit_code = Some(st);
    Ok(0)
}

// ----- wait -----

/// Which children a wait is for.
#[derive(Clone, Copy, Debug)]
enum Which {
    Any,
    Pid(i32),
    Pgid(i32),
}

/// What a wait found.
struct Found {
    pid: i32,
    uid: u32,
    /// The status word wait4 reports.
    status: i32,
    /// si_code and si_status for waitid.
    code: i32,
    si_status: i32,
    /// Its CPU time (user, sys, ns), for rusage.
    times: (u64, u64),
}

const WNOHANG: i32 = 1;
const WUNTRACED: i32 = 2;
const WEXITED: i32 = 4;
const WCONTINUED: i32 = 8;
const WNOWAIT: i32 = 0x0100_0000;
const WNOTHREAD: i32 = 0x2000_0000;
const WALL: i32 = 0x4000_0000;
const WCLONE: i32 = -0x8000_0000;

fn do_wait(t: &mut Task, which: Which, options: i32) -> Result<Option<Found>, Errno> {
    let kernel = t.kernel.clone();
    let tg = t.tg.clone();
    let waiter = t.shared.waiter.clone();
    let _r = tg.child_events.register(&waiter, ALL_EVENTS);
    loop {
        waiter.reset();
        {
            let mut ts = kernel.tasks.lock();
            kernel.take_continue_reports(&mut ts);
            let me = tg.tgid;
            let Some(p) = ts.procs.get(&me) else {
                return Err(Errno::ECHILD);
            };
            let children: Vec<i32> = p
                .children
                .iter()
                .copied()
                .filter(|c| {
                    let Some(cp) = ts.procs.get(c) else {
                        return false;
                    };
                    let sel = match which {
                        Which::Any => true,
                        Which::Pid(pid) => *c == pid,
                        Which::Pgid(g) => cp.pgid == g,
                    };
                    // A "clone" child reports with another signal than
                    // SIGCHLD; __WALL waits for both kinds.
                    let clone_child = cp.exit_signal != libc::SIGCHLD;
                    let kind = options & WALL != 0 || (options & WCLONE != 0) == clone_child;
                    sel && kind
                })
                .collect();
            if children.is_empty() {
                return Err(Errno::ECHILD);
            }
            for c in children {
                let cp = ts.procs.get(&c).unwrap();
                let times = {
                    let d = cp.tg.dead_times.lock();
                    (d.user, d.sys)
                };
                if let (Some(st), true) = (cp.zombie, options & WEXITED != 0) {
                    let (code, si_status) = child_code(st);
                    let found = Found {
                        pid: c,
                        uid: cp.uid,
                        status: wait_status(st),
                        code,
                        si_status,
                        times,
                    };
                    if options & WNOWAIT == 0 {
                        ts.procs.remove(&c);
                        if let Some(me) = ts.procs.get_mut(&me) {
                            me.children.remove(&c);
                        }
                        let mut d = tg.dead_times.lock();
                        d.child_user += times.0;
                        d.child_sys += times.1;
                    }
                    return Ok(Some(found));
                }
                match cp.report {
                    Some(Report::Stopped(sig)) if options & WUNTRACED != 0 => {
                        let found = Found {
                            pid: c,
                            uid: cp.uid,
                            status: (sig << 8) | 0x7f,
                            code: signal::CLD_STOPPED,
                            si_status: sig,
                            times,
                        };
                        if options & WNOWAIT == 0 {
                            ts.procs.get_mut(&c).unwrap().report = None;
                        }
                        return Ok(Some(found));
                    }
                    Some(Report::Continued) if options & WCONTINUED != 0 => {
                        let found = Found {
                            pid: c,
                            uid: cp.uid,
                            status: 0xffff,
                            code: signal::CLD_CONTINUED,
                            si_status: libc::SIGCONT,
                            times,
                        };
                        if options & WNOWAIT == 0 {
                            ts.procs.get_mut(&c).unwrap().report = None;
                        }
                        return Ok(Some(found));
                    }
                    _ => {}
                }
            }
        }
        if options & WNOHANG != 0 {
            return Ok(None);
        }
        if t.sleep_until(None) == crate::kernel::waiter::Wake::Interrupted {
            return Err(Errno::ERESTARTSYS);
        }
    }
}

/// `struct rusage` with a waited-for child's user and system times.
fn write_rusage(t: &Task, addr: u64, times: (u64, u64)) -> Result<(), Errno> {
    if addr == 0 {
        return Ok(());
    }
    t.mm.copy_out(addr, &super::time::rusage_bytes(times.0, times.1, 0))
}

pub fn wait4(
    t: &mut Task,
    pid: i32,
    status: UserAddr,
    options: i32,
    rusage: UserAddr,
) -> SysResult {
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(Errno::EINVAL);
    }
    // INT_MIN would name no process group.
    if pid == i32::MIN {
        return Err(Errno::ESRCH);
    }
    let which = match pid {
        -1 => Which::Any,
        0 => Which::Pgid(own_pgid(t)),
        p if p < 0 => Which::Pgid(-p),
        p => Which::Pid(p),
    };
    match do_wait(t, which, options | WEXITED)? {
        None => Ok(0),
        Some(f) => {
            if status.0 != 0 {
                t.mm.write_obj(status.0, &f.status)?;
            }
            write_rusage(t, rusage.0, f.times)?;
            Ok(f.pid as u64)
        }
    }
}

const P_ALL: i32 = 0;
const P_PID: i32 = 1;
const P_PGID: i32 = 2;
const P_PIDFD: i32 = 3;

pub fn waitid(
    t: &mut Task,
    idtype: i32,
    id: i32,
    infop: UserAddr,
    options: i32,
    rusage: UserAddr,
) -> SysResult {
    if options & !(WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE)
        != 0
    {
        return Err(Errno::EINVAL);
    }
    if options & (WEXITED | WUNTRACED | WCONTINUED) == 0 {
        return Err(Errno::EINVAL);
    }
    let which = match idtype {
        P_ALL => Which::Any,
        P_PID if id > 0 => Which::Pid(id),
        P_PID => return Err(Errno::EINVAL),
        P_PGID if id == 0 => Which::Pgid(own_pgid(t)),
        P_PGID if id > 0 => Which::Pgid(id),
        P_PGID => return Err(Errno::EINVAL),
        P_PIDFD => Which::Pid(super::pidfd::pidfd_pid(t, id)?),
        _ => return Err(Errno::EINVAL),
    };
    let result = do_wait(t, which, options);
    if let Err(e) = result {
        if e.is_restart() {
            return Err(e);
        }
    }
    // Linux writes the info whatever the outcome (zeroes when nothing
    // was found), and a bad pointer then wins over the wait's error.
    if infop.0 != 0 {
        let info = match &result {
            Ok(Some(f)) => SigInfo::child(libc::SIGCHLD, f.code, f.pid, f.uid, f.si_status, (0, 0)),
            _ => SigInfo::new(0, 0),
        };
        t.mm.copy_out(infop.0, &info.to_bytes())?;
    }
    let found = result?;
    if let Some(f) = &found {
        write_rusage(t, rusage.0, f.times)?;
    }
    Ok(0)
}

// ----- Sessions and process groups -----

fn own_pgid(t: &Task) -> i32 {
    t.kernel
        .tasks
        .lock()
        .procs
        .get(&t.tg.tgid)
        .map(|p| p.pgid)
        .unwrap_or(t.tg.tgid)
}

pub fn getppid(t: &mut Task) -> SysResult {
    let ts = t.kernel.tasks.lock();
    Ok(ts.procs.get(&t.tg.tgid).map(|p| p.parent).unwrap_or(0) as u64)
}

pub fn getpgrp(t: &mut Task) -> SysResult {
    Ok(own_pgid(t) as u64)
}

pub fn getpgid(t: &mut Task, pid: i32) -> SysResult {
    let ts = t.kernel.tasks.lock();
    let pid = if pid == 0 { t.tg.tgid } else { pid };
    ts.procs
        .get(&pid)
        .map(|p| p.pgid as u64)
        .ok_or(Errno::ESRCH)
}

pub fn getsid(t: &mut Task, pid: i32) -> SysResult {
    let ts = t.kernel.tasks.lock();
    let pid = if pid == 0 { t.tg.tgid } else { pid };
    ts.procs.get(&pid).map(|p| p.sid as u64).ok_or(Errno::ESRCH)
}

pub fn setsid(t: &mut Task) -> SysResult {
    let mut ts = t.kernel.tasks.lock();
    let me = t.tg.tgid;
    // A process group leader cannot start a session (its group would
    // span two sessions).
    if ts.procs.values().any(|p| p.pgid == me) {
        return Err(Errno::EPERM);
    }
    let p = ts.procs.get_mut(&me).ok_or(Errno::ESRCH)?;
    p.sid = me;
    p.pgid = me;
    // A new session has no controlling terminal.
    *t.tg.tty.lock() = None;
    Ok(me as u64)
}

pub fn setpgid(t: &mut Task, pid: i32, pgid: i32) -> SysResult {
    if pgid < 0 || pid < 0 {
        return Err(Errno::EINVAL);
    }
    let me = t.tg.tgid;
    let pid = if pid == 0 { me } else { pid };
    let pgid = if pgid == 0 { pid } else { pgid };
    let mut ts = t.kernel.tasks.lock();
    let my_sid = ts.procs.get(&me).map(|p| p.sid).ok_or(Errno::ESRCH)?;
    let target = ts.live(pid).ok_or(Errno::ESRCH)?;
    if pid != me {
        if target.parent != me {
            return Err(Errno::ESRCH);
        }
        if target.sid != my_sid {
            return Err(Errno::EPERM);
        }
        if target.execed {
            return Err(Errno::EACCES);
        }
    }
    if target.sid == pid {
        // A session leader stays in its group.
        return Err(Errno::EPERM);
    }
    if pgid != pid
        && !ts
            .procs
            .values()
            .any(|p| p.pgid == pgid && p.sid == my_sid && p.zombie.is_none())
    {
        return Err(Errno::EPERM);
    }
    ts.procs.get_mut(&pid).unwrap().pgid = pgid;
    Ok(0)
}

/// The thread group of a live process, for other families.
pub fn process_tg(t: &Task, pid: i32) -> Option<Arc<ThreadGroup>> {
    t.kernel.tasks.lock().live(pid).map(|p| p.tg.clone())
}

/// unshare(2): a task stops sharing its fd table or its root, working
/// directory and umask (CLONE_FILES, CLONE_FS); CLONE_SYSVSEM and
/// CLONE_SIGHAND of a one-thread process have nothing to undo. New
/// namespaces are not made yet.
pub fn unshare(t: &mut Task, flags: Hex) -> SysResult {
    let f = flags.0;
    let known = (libc::CLONE_FILES
        | libc::CLONE_FS
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SIGHAND
        | libc::CLONE_VM
        | libc::CLONE_THREAD) as u64
        | NAMESPACE_FLAGS;
    if f & !known != 0 {
        return Err(Errno::EINVAL);
    }
    if f & NAMESPACE_FLAGS != 0 {
        return UNSHARE_NAMESPACES.answer(t, namespace_names(f & NAMESPACE_FLAGS));
    }
    // Sharing memory, handlers or the thread group can be undone only
    // when nothing is shared (Linux's check_unshare_flags).
    let threads = t.kernel.tasks.lock().threads_of(t.tg.tgid).len();
    if f & (libc::CLONE_THREAD | libc::CLONE_SIGHAND | libc::CLONE_VM) as u64 != 0 && threads > 1 {
        return Err(Errno::EINVAL);
    }
    if f & libc::CLONE_FILES as u64 != 0 && Arc::strong_count(&t.fds) > 2 {
        t.fds = Arc::new(t.fds.duplicate());
    }
    if f & libc::CLONE_FS as u64 != 0 && Arc::strong_count(&t.fs) > 2 {
        let copy = t.fs.locked().clone();
        t.fs = Arc::new(Mutex::new(copy));
    }
    Ok(0)
}
