//! procfs (`/proc`), generated from the sentry's own state when a file is
//! opened: the sandbox's processes (`[pid]/`, `self`, `thread-self`), its
//! CPUs, memory, uptime and mounts, and the sysctls of `sys/`. Nothing
//! comes from the host's /proc: the guest sees only its own processes,
//! mounts and command lines.
//!
//! Formats are Linux's (`fs/proc/*.c`, `kernel/sysctl.c`), field by field.

use crate::sync::LockExt;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::errno::Errno;

use super::synthetic::{entry, new_root, Contents, Entry, Fixed, Node, Sink, Writes};
use crate::kernel::limits::RLIM_INFINITY;
use crate::kernel::task::{ProcTask, Task};
use crate::kernel::{RELEASE, VERSION};
use crate::mm::{Vma, VmaKind};
use crate::vfs::inode::{major, minor, Filesystem, Inode, MagicTarget};
use crate::vfs::mount::Location;
use crate::vfs::FileDescription;
use platform::PAGE_SIZE;

/// statfs f_type of procfs.
pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;
/// Clock ticks per second of /proc's times (USER_HZ).
const USER_HZ: u64 = 100;
/// `kernel.pid_max`.
const PID_MAX: u32 = 4_194_304;
/// `kernel.threads-max`: twice the default RLIMIT_NPROC, as Linux sizes
/// them together.
const THREADS_MAX: u64 = 126_764;
/// `kernel.ngroups_max`.
const NGROUPS_MAX: u32 = 65_536;
/// __NEW_UTS_LEN.
const UTS_LEN: usize = 64;

// ----- Finding processes -----

/// The task with thread id `tid`, as the caller `t` sees it; ENOENT if
/// there is none. A zombie process is seen through its leader.
fn find_task(t: &Task, tid: i32) -> Result<ProcTask, Errno> {
    let ts = t.kernel.tasks.lock();
    if let Some(s) = ts.tasks.get(&tid) {
        return Ok(s.snapshot(&t.kernel));
    }
    if let Some(p) = ts.procs.get(&tid) {
        return Ok(p.leader.snapshot(&t.kernel));
    }
    Err(Errno::ENOENT)
}

/// Every live task of the sandbox, as the caller `t` sees them.
fn all_tasks(t: &Task) -> Vec<ProcTask> {
    let shared: Vec<_> = t.kernel.tasks.lock().tasks.values().cloned().collect();
    shared.iter().map(|s| s.snapshot(&t.kernel)).collect()
}

/// The pids of the sandbox's processes (zombies too), ascending.
fn pids(t: &Task) -> Vec<i32> {
    t.kernel.tasks.lock().procs.keys().copied().collect()
}

/// The thread ids of process `pid`, ascending (a zombie shows its
/// leader).
fn tids(t: &Task, pid: i32) -> Vec<i32> {
    let ts = t.kernel.tasks.lock();
    let Some(p) = ts.procs.get(&pid) else {
        return Vec::new();
    };
    if p.threads.is_empty() {
        return vec![pid];
    }
    p.threads.iter().copied().collect()
}

/// A task of process `pid`: its leader, or thread `tid`.
fn task_of(t: &Task, pid: i32, tid: Option<i32>) -> Result<ProcTask, Errno> {
    let task = find_task(t, tid.unwrap_or(pid))?;
    if task.tg.tgid != pid {
        return Err(Errno::ENOENT);
    }
    Ok(task)
}

/// A process's relations: parent, process group, session, its state
/// letter and exit signal, thread count.
struct Relations {
    ppid: i32,
    pgrp: i32,
    sid: i32,
    state: (char, &'static str),
    exit_signal: i32,
    threads: usize,
}

fn relations(p: &ProcTask) -> Relations {
    let ts = p.kernel.tasks.lock();
    let pr = ts.procs.get(&p.tg.tgid);
    let zombie = pr.is_some_and(|x| x.zombie.is_some());
    let stopped = p.tg.sig.lock().stopped.is_some();
    let state = if zombie {
        ('Z', "zombie")
    } else if stopped {
        ('T', "stopped")
    } else if p.shared.running() {
        ('R', "running")
    } else {
        ('S', "sleeping")
    };
    Relations {
        ppid: pr.map(|x| x.parent).unwrap_or(0),
        pgrp: pr.map(|x| x.pgid).unwrap_or(p.tg.tgid),
        sid: pr.map(|x| x.sid).unwrap_or(p.tg.tgid),
        state,
        exit_signal: pr.map(|x| x.exit_signal).unwrap_or(libc::SIGCHLD),
        threads: pr.map(|x| x.threads.len().max(1)).unwrap_or(1),
    }
}

/// Who owns a process's /proc files: its effective ids, or root when it
/// is not dumpable (Linux's `task_dump_owner`).
fn dump_owner(p: &ProcTask) -> (u32, u32) {
    if p.tg.prctl.locked().dumpable == 1 {
        (p.creds.euid, p.creds.egid)
    } else {
        (0, 0)
    }
}

// ----- The file system -----

/// A new procfs instance for the sandbox of `t`: its file system and root.
pub fn new_procfs(t: &Task) -> (Arc<Filesystem>, Arc<Inode>) {
    let fs = Filesystem::new(&t.kernel.vfs, "proc", "proc", PROC_SUPER_MAGIC, "");
    let statics = vec![
        entry(
            "cpuinfo",
            top_file(|t| Ok(cpuinfo(t.kernel.cpus).into_bytes())),
        ),
        entry("meminfo", top_file(|t| Ok(meminfo(t).into_bytes()))),
        entry("stat", top_file(|t| Ok(stat(t).into_bytes()))),
        entry("uptime", top_file(|t| Ok(uptime(t).into_bytes()))),
        entry("loadavg", top_file(|t| Ok(loadavg(t).into_bytes()))),
        entry(
            "version",
            top_file(|_| {
                Ok(
                    format!("Linux version {RELEASE} (runsc@runsc) (runsc) {VERSION}\n")
                        .into_bytes(),
                )
            }),
        ),
        entry(
            "filesystems",
            top_file(|_| {
                Ok(
                    b"nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tpipefs\nnodev\tmqueue\n"
                        .to_vec(),
                )
            }),
        ),
        entry(
            "mounts",
            Node::symlink(|_| Ok(b"self/mounts".to_vec())).size(11),
        ),
        entry("sys", sys_dir()),
        entry("sysvipc", crate::kernel::ipc::proc::sysvipc_dir()),
        entry(
            "net",
            Node::dir(
                0o555,
                Arc::new(Fixed {
                    entries: net_files(),
                    absent_error: Some(Errno::ENOENT),
                }),
            ),
        ),
        entry(
            "self",
            Node::symlink(|t| Ok(t.tg.tgid.to_string().into_bytes())),
        ),
        entry(
            "thread-self",
            Node::symlink(|t| Ok(format!("{}/task/{}", t.tg.tgid, t.tid).into_bytes())),
        ),
    ];
    let subdirs = statics.iter().filter(|e| e.node.is_dir()).count() as u64;
    let root =
        Node::dir(0o555, Arc::new(Root { statics })).nlink(2 + subdirs + pids(t).len() as u64);
    let root = new_root(&fs, root);
    (fs, root)
}

/// A top-level file: root's, 0444, and writes fail with EIO (Linux's
/// `proc_reg_write` without a handler).
fn top_file(f: impl Fn(&Task) -> Result<Vec<u8>, Errno> + Send + Sync + 'static) -> Node {
    Node::file(0o444, f).writes(Writes::Fail(Errno::EIO))
}

/// `/proc`: its fixed entries, then a directory per process.
struct Root {
    statics: Vec<Entry>,
}

impl Contents for Root {
    fn absent_error(&self) -> Option<Errno> {
        Some(Errno::ENOENT)
    }

    fn list(&self, t: &Task) -> Result<Vec<Entry>, Errno> {
        let mut v = self.statics.clone();
        for pid in pids(t) {
            v.push(Entry {
                name: pid.to_string().into_bytes(),
                node: task_dir_node(t, pid, None)?,
            });
        }
        Ok(v)
    }

    fn find(&self, t: &Task, name: &[u8]) -> Result<Node, Errno> {
        if let Some(pid) = parse_id(name) {
            if pids(t).contains(&pid) {
                return task_dir_node(t, pid, None);
            }
            return Err(Errno::ENOENT);
        }
        self.statics
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.node.clone())
            .ok_or(Errno::ENOENT)
    }
}

/// A pid or fd in a name, as Linux's `name_to_int` reads it: decimal, no
/// leading zero.
fn parse_id(name: &[u8]) -> Option<i32> {
    if name.is_empty() || (name.len() > 1 && name[0] == b'0') {
        return None;
    }
    if !name.iter().all(|c| c.is_ascii_digit()) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

// ----- /proc/[pid] and /proc/[pid]/task/[tid] -----

/// The entries of a process directory, in Linux's order; a thread's
/// directory has them all but `task`.
const TASK_FILES: &[&str] = &[
    "task",
    "fd",
    "fdinfo",
    "environ",
    "auxv",
    "status",
    "limits",
    "comm",
    "cmdline",
    "stat",
    "statm",
    "maps",
    "cwd",
    "root",
    "exe",
    "mounts",
    "mountinfo",
    "oom_score_adj",
    "oom_score",
];

fn task_dir_node(t: &Task, pid: i32, tid: Option<i32>) -> Result<Node, Errno> {
    let task = task_of(t, pid, tid)?;
    let (uid, gid) = dump_owner(&task);
    let dir = TaskDir { pid, tid };
    let subdirs = TASK_FILES
        .iter()
        .filter(|n| dir.has(n) && matches!(**n, "task" | "fd" | "fdinfo"))
        .count() as u64;
    Ok(Node::dir(0o555, Arc::new(dir))
        .owner(uid, gid)
        .nlink(2 + subdirs))
}

/// `/proc/[pid]` (`tid` None) or `/proc/[pid]/task/[tid]`.
struct TaskDir {
    pid: i32,
    tid: Option<i32>,
}

type Gen = fn(&Task, &ProcTask) -> Result<Vec<u8>, Errno>;

impl TaskDir {
    fn has(&self, name: &str) -> bool {
        name != "task" || self.tid.is_none()
    }

    /// A file of the task whose contents `g` makes from (caller, target).
    fn file(&self, perm: u32, g: Gen) -> Node {
        let (pid, tid) = (self.pid, self.tid);
        Node::file(perm, move |t| g(t, &task_of(t, pid, tid)?)).writes(Writes::Fail(Errno::EINVAL))
    }

    fn node(&self, t: &Task, name: &str) -> Result<Node, Errno> {
        let task = task_of(t, self.pid, self.tid)?;
        let (uid, gid) = dump_owner(&task);
        let (pid, tid) = (self.pid, self.tid);
        let node = match name {
            "task" => {
                Node::dir(0o555, Arc::new(TaskList { pid })).nlink(2 + tids(t, pid).len() as u64)
            }
            "fd" => Node::dir(
                0o500,
                Arc::new(FdDir {
                    pid,
                    tid,
                    info: false,
                }),
            )
            .size(task.fds.open_fds().len() as u64),
            "fdinfo" => Node::dir(
                0o555,
                Arc::new(FdDir {
                    pid,
                    tid,
                    info: true,
                }),
            ),
            "environ" => self.file(0o400, |_, p| Ok(environ(p))),
            "auxv" => self.file(0o400, |_, p| Ok(auxv(p))),
            "status" => self.file(0o444, |_, p| Ok(status(p).into_bytes())),
            "limits" => self.file(0o444, |_, p| Ok(limits(p).into_bytes())),
            "comm" => {
                let (pid, tid) = (self.pid, self.tid);
                Node::file(0o644, move |t| {
                    let mut v = task_of(t, pid, tid)?.comm;
                    v.push(b'\n');
                    Ok(v)
                })
                .writes(Writes::To(Arc::new(
                    move |t: &Task| -> Result<Sink, Errno> {
                        // Only threads of the writer's own process may be
                        // renamed, as Linux's comm_write checks.
                        let target = task_of(t, pid, tid)?;
                        if target.tg.tgid != t.tg.tgid {
                            return Err(Errno::EINVAL);
                        }
                        let shared = target.shared.clone();
                        Ok(Box::new(move |data: &[u8], _off: u64| {
                            let end = data.iter().position(|&c| c == b'\n').unwrap_or(data.len());
                            let name: Vec<u8> = data[..end].iter().copied().take(15).collect();
                            shared.view.lock().comm = name;
                            Ok(data.len())
                        }))
                    },
                )))
            }
            "oom_score" => self.file(0o444, |_, p| {
                let adj =
                    p.tg.oom_score_adj
                        .load(std::sync::atomic::Ordering::Relaxed);
                Ok(format!("{}\n", (666 + adj).clamp(0, 2000)).into_bytes())
            }),
            "oom_score_adj" => {
                let (pid, tid) = (self.pid, self.tid);
                Node::file(0o644, move |t| {
                    let p = task_of(t, pid, tid)?;
                    let v =
                        p.tg.oom_score_adj
                            .load(std::sync::atomic::Ordering::Relaxed);
                    Ok(format!("{v}\n").into_bytes())
                })
                .writes(Writes::To(Arc::new(
                    move |t: &Task| -> Result<Sink, Errno> {
                        let target = task_of(t, pid, tid)?;
                        let tg = target.tg.clone();
                        // Lowering it takes CAP_SYS_RESOURCE, as Linux's
                        // __set_oom_adj checks.
                        let privileged = t.creds.has_cap(crate::kernel::creds::CAP_SYS_RESOURCE);
                        Ok(Box::new(move |data: &[u8], _off: u64| {
                            let text = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
                            let v: i32 = text.trim().parse().map_err(|_| Errno::EINVAL)?;
                            if !(-1000..=1000).contains(&v) {
                                return Err(Errno::EINVAL);
                            }
                            let old = tg.oom_score_adj.load(std::sync::atomic::Ordering::Relaxed);
                            if v < old && !privileged {
                                return Err(Errno::EACCES);
                            }
                            tg.oom_score_adj
                                .store(v, std::sync::atomic::Ordering::Relaxed);
                            Ok(data.len())
                        }))
                    },
                )))
            }
            "cmdline" => self.file(0o444, |_, p| Ok(cmdline(p))),
            "stat" => self.file(0o444, |_, p| Ok(task_stat(p).into_bytes())),
            "statm" => self.file(0o444, |_, p| Ok(statm(p).into_bytes())),
            "maps" => self.file(0o444, |_, p| Ok(maps(p).into_bytes())),
            "mounts" => self.file(0o444, |_, p| Ok(mounts(p).into_bytes())),
            "mountinfo" => self.file(0o444, |_, p| Ok(mountinfo(p).into_bytes())),
            "cwd" | "root" => {
                let want_root = name == "root";
                let place = move |t: &Task| -> Result<Location, Errno> {
                    let p = task_of(t, pid, tid)?;
                    let ctx = p.fs.locked();
                    Ok(if want_root {
                        ctx.root.clone()
                    } else {
                        ctx.cwd.clone()
                    })
                };
                Node::magic_link(
                    0o777,
                    move |t| Ok(path_name(t, &place(t)?)),
                    move |t| Ok(MagicTarget::Location(place(t)?)),
                )
            }
            "exe" => Node::magic_link(
                0o777,
                move |t| Ok(exe_path(t, &task_of(t, pid, tid)?)),
                move |t| {
                    let p = task_of(t, pid, tid)?;
                    match p.mm.exe() {
                        Some(f) => match &f.location {
                            Some(l) => Ok(MagicTarget::Location(l.clone())),
                            // An executable from outside the sandbox's
                            // tree: the link leads to the open file.
                            None => Ok(MagicTarget::File(f)),
                        },
                        None => Err(Errno::ENOENT),
                    }
                },
            ),
            _ => return Err(Errno::ENOENT),
        };
        Ok(node.owner(uid, gid))
    }
}

impl Contents for TaskDir {
    fn absent_error(&self) -> Option<Errno> {
        Some(Errno::ENOENT)
    }

    fn list(&self, t: &Task) -> Result<Vec<Entry>, Errno> {
        TASK_FILES
            .iter()
            .filter(|n| self.has(n))
            .map(|n| Ok(entry(n, self.node(t, n)?)))
            .collect()
    }

    fn find(&self, t: &Task, name: &[u8]) -> Result<Node, Errno> {
        let name = std::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
        if !TASK_FILES.contains(&name) || !self.has(name) {
            return Err(Errno::ENOENT);
        }
        self.node(t, name)
    }
}

/// `/proc/[pid]/task`: a directory per thread.
struct TaskList {
    pid: i32,
}

impl Contents for TaskList {
    fn absent_error(&self) -> Option<Errno> {
        Some(Errno::ENOENT)
    }

    fn list(&self, t: &Task) -> Result<Vec<Entry>, Errno> {
        tids(t, self.pid)
            .into_iter()
            .map(|tid| {
                Ok(Entry {
                    name: tid.to_string().into_bytes(),
                    node: task_dir_node(t, self.pid, Some(tid))?,
                })
            })
            .collect()
    }

    fn find(&self, t: &Task, name: &[u8]) -> Result<Node, Errno> {
        let tid = parse_id(name).ok_or(Errno::ENOENT)?;
        task_dir_node(t, self.pid, Some(tid))
    }
}

/// `fd/` (magic links to the open files) or `fdinfo/`.
struct FdDir {
    pid: i32,
    tid: Option<i32>,
    info: bool,
}

impl FdDir {
    fn node(&self, t: &Task, fd: i32) -> Result<Node, Errno> {
        let task = task_of(t, self.pid, self.tid)?;
        let f = task.fds.get(fd).map_err(|_| Errno::ENOENT)?;
        let (uid, gid) = dump_owner(&task);
        let (pid, tid) = (self.pid, self.tid);
        let file = move |t: &Task| -> Result<Arc<FileDescription>, Errno> {
            task_of(t, pid, tid)?.fds.get(fd).map_err(|_| Errno::ENOENT)
        };
        let node = if self.info {
            Node::file(0o444, move |t| {
                let p = task_of(t, pid, tid)?;
                let f = file(t)?;
                Ok(fdinfo(&p, fd, &f).into_bytes())
            })
            .writes(Writes::Fail(Errno::EINVAL))
        } else {
            // r-x for reading, -wx for writing, as Linux's proc_fd_link;
            // nothing for an O_PATH file.
            let mut perm = 0;
            let path_only = f.flags() & libc::O_PATH as u32 != 0;
            if f.readable() && !path_only {
                perm |= 0o500;
            }
            if f.writable() && !path_only {
                perm |= 0o300;
            }
            Node::magic_link(
                perm,
                move |t| {
                    let f = file(t)?;
                    Ok(file_name(t, &f))
                },
                move |t| {
                    let f = file(t)?;
                    Ok(match &f.location {
                        Some(l) => MagicTarget::Location(l.clone()),
                        None => MagicTarget::File(f),
                    })
                },
            )
            .size(64)
        };
        Ok(node.owner(uid, gid))
    }
}

impl Contents for FdDir {
    fn absent_error(&self) -> Option<Errno> {
        Some(Errno::ENOENT)
    }

    fn list(&self, t: &Task) -> Result<Vec<Entry>, Errno> {
        let task = task_of(t, self.pid, self.tid)?;
        let mut v = Vec::new();
        for fd in task.fds.open_fds() {
            // An fd closed meanwhile is left out.
            if let Ok(node) = self.node(t, fd) {
                v.push(Entry {
                    name: fd.to_string().into_bytes(),
                    node,
                });
            }
        }
        Ok(v)
    }

    fn find(&self, t: &Task, name: &[u8]) -> Result<Node, Errno> {
        let fd = parse_id(name).ok_or(Errno::ENOENT)?;
        self.node(t, fd)
    }
}

// ----- Names of places and files -----

/// The executable's path, absolute as Linux's `exe` link always is (the
/// program may have been started by a relative path, which is what
/// AT_EXECFN keeps).
fn exe_path(t: &Task, p: &ProcTask) -> Vec<u8> {
    if let Some(f) = p.mm.exe() {
        if let Some(l) = &f.location {
            return path_name(t, l);
        }
        // A program from outside the tree (the one `runsc` was given):
        // the name it was opened by.
        let name = f.imp.name();
        if name.starts_with('/') {
            return name.into_bytes();
        }
    }
    p.mm.process_info().execfn.into_bytes()
}

/// The path of `loc` as the caller sees it from its root, with
/// " (deleted)" when it has been removed, as Linux's `d_path`.
/// The path of `loc` as `t` sees it.
pub fn location_name(t: &Task, loc: &Location) -> Vec<u8> {
    path_name(t, loc)
}

fn path_name(t: &Task, loc: &Location) -> Vec<u8> {
    let ctx = t.fs.locked().clone();
    let mut p = ctx.mounts.path(loc, &ctx.root);
    if loc.inode.meta().nlink == 0 {
        p.extend_from_slice(b" (deleted)");
    }
    p
}

/// What `readlink /proc/[pid]/fd/N` shows: the file's path, or for files
/// outside the tree their kind's name (`pipe:[N]`, `host:[N]`).
fn file_name(t: &Task, f: &FileDescription) -> Vec<u8> {
    match &f.location {
        Some(l) if l.mount.fs.type_name != "anon_inodefs" => path_name(t, l),
        _ => f.imp.name().into_bytes(),
    }
}

// ----- Per-process files -----

/// Reads `[start, end)` of a process's memory; what cannot be read is
/// left out.
fn read_range(p: &ProcTask, (start, end): (u64, u64)) -> Vec<u8> {
    if end <= start {
        return Vec::new();
    }
    let mut buf = vec![0u8; (end - start).min(1 << 20) as usize];
    let n = p.mm.copy_in_partial(start, &mut buf);
    buf.truncate(n);
    buf
}

/// `cmdline`: the argument strings as they are now in the process's
/// memory; if the program overwrote the last NUL (setproctitle), the
/// string goes on into the environment area, as Linux's `get_mm_cmdline`.
pub(crate) fn cmdline(p: &ProcTask) -> Vec<u8> {
    let info = p.mm.process_info();
    let mut v = read_range(p, info.argv);
    if v.last().is_some_and(|&c| c != 0) {
        let env = read_range(p, info.envp);
        let n = env.iter().position(|&c| c == 0).unwrap_or(env.len());
        v.extend_from_slice(&env[..n]);
    } else if let Some(i) = v.iter().position(|&c| c == 0) {
        // A program that shortened its title with a NUL in argv[0] shows
        // only that.
        if v[i + 1..].iter().all(|&c| c == 0) {
            v.truncate(i + 1);
        }
    }
    v
}

fn environ(p: &ProcTask) -> Vec<u8> {
    read_range(p, p.mm.process_info().envp)
}

fn auxv(p: &ProcTask) -> Vec<u8> {
    let mut v = Vec::new();
    for (k, val) in p.mm.process_info().auxv {
        v.extend_from_slice(&k.to_le_bytes());
        v.extend_from_slice(&val.to_le_bytes());
    }
    v
}

/// `limits`, in Linux's exact columns.
fn limits(p: &ProcTask) -> String {
    const NAMES: [(&str, &str); 16] = [
        ("Max cpu time", "seconds"),
        ("Max file size", "bytes"),
        ("Max data size", "bytes"),
        ("Max stack size", "bytes"),
        ("Max core file size", "bytes"),
        ("Max resident set", "bytes"),
        ("Max processes", "processes"),
        ("Max open files", "files"),
        ("Max locked memory", "bytes"),
        ("Max address space", "bytes"),
        ("Max file locks", "locks"),
        ("Max pending signals", "signals"),
        ("Max msgqueue size", "bytes"),
        ("Max nice priority", ""),
        ("Max realtime priority", ""),
        ("Max realtime timeout", "us"),
    ];
    let lim = p.tg.limits.locked().clone();
    let mut s = format!(
        "{:<25} {:<20} {:<20} {:<10}\n",
        "Limit", "Soft Limit", "Hard Limit", "Units"
    );
    let show = |v: u64| {
        if v == RLIM_INFINITY {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    for (i, (name, unit)) in NAMES.iter().enumerate() {
        let l = lim.get(i as u32).unwrap_or(crate::kernel::limits::Limit {
            cur: RLIM_INFINITY,
            max: RLIM_INFINITY,
        });
        let _ = write!(s, "{:<25} {:<20} {:<20} ", name, show(l.cur), show(l.max));
        if !unit.is_empty() {
            let _ = write!(s, "{unit:<10}");
        }
        s.push('\n');
    }
    s
}

/// `fdinfo/N`.
fn fdinfo(p: &ProcTask, fd: i32, f: &FileDescription) -> String {
    let pos = f.imp.seek(f, 0, libc::SEEK_CUR).unwrap_or(0);
    let mut flags = f.flags();
    if p.fds.cloexec(fd).unwrap_or(false) {
        flags |= libc::O_CLOEXEC as u32;
    }
    let mnt_id = f.location.as_ref().map(|l| l.mount.id).unwrap_or(0);
    let ino = match f.inode() {
        Some(i) => i.ino,
        None => f.stat().map(|s| s.st_ino).unwrap_or(0),
    };
    let extra = f.imp.fdinfo(f);
    format!("pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t{mnt_id}\nino:\t{ino}\n{extra}")
}

// ----- Memory: maps, statm, and the numbers of status and stat -----

/// One PT_LOAD of the executable.
struct Segment {
    vaddr: u64,
    offset: u64,
    filesz: u64,
    memsz: u64,
    exec: bool,
}

/// The executable's segments as loaded, read back from its program
/// headers in the process's memory (where AT_PHDR says they are).
struct ExeLayout {
    bias: u64,
    loads: Vec<Segment>,
}

const PT_LOAD: u32 = 1;
const PT_PHDR: u32 = 6;
const PF_X: u32 = 1;

fn auxv_value(p: &ProcTask, key: u64) -> Option<u64> {
    p.mm.process_info()
        .auxv
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

impl ExeLayout {
    fn read(p: &ProcTask) -> Option<ExeLayout> {
        let phdr = auxv_value(p, libc::AT_PHDR)?;
        let phnum = auxv_value(p, libc::AT_PHNUM)? as usize;
        if auxv_value(p, libc::AT_PHENT)? != 56 || phnum == 0 || phnum > 1024 {
            return None;
        }
        let mut b = vec![0u8; phnum * 56];
        p.mm.copy_in(phdr, &mut b).ok()?;
        let mut loads = Vec::new();
        let mut phdr_vaddr = None;
        for i in 0..phnum {
            let h = &b[i * 56..(i + 1) * 56];
            match u32_at(h, 0) {
                PT_LOAD => loads.push(Segment {
                    vaddr: u64_at(h, 16),
                    offset: u64_at(h, 8),
                    filesz: u64_at(h, 32),
                    memsz: u64_at(h, 40),
                    exec: u32_at(h, 4) & PF_X != 0,
                }),
                PT_PHDR => phdr_vaddr = Some(u64_at(h, 16)),
                _ => {}
            }
        }
        let bias = match phdr_vaddr {
            Some(v) => phdr.wrapping_sub(v),
            None => {
                // The headers follow the 64-byte ELF header, in the
                // segment that maps the start of the file.
                let mut eh = [0u8; 64];
                p.mm.copy_in(phdr.checked_sub(64)?, &mut eh).ok()?;
                if &eh[..4] != b"\x7fELF" || u64_at(&eh, 32) != 64 {
                    return None;
                }
                let l = loads
                    .iter()
                    .find(|l| l.offset <= 64 && 64 < l.offset + l.filesz)?;
                phdr.wrapping_sub(l.vaddr + 64 - l.offset)
            }
        };
        Some(ExeLayout { bias, loads })
    }

    /// The segment mapped at `addr` (as first mapped), with where its
    /// mapping starts.
    fn segment_at(&self, addr: u64) -> Option<(&Segment, u64)> {
        self.loads.iter().find_map(|l| {
            let start = page_down(l.vaddr.wrapping_add(self.bias));
            let end = page_up(l.vaddr.wrapping_add(self.bias) + l.memsz);
            (start <= addr && addr < end).then_some((l, start))
        })
    }

    /// Linux's `mm->start_code`, `end_code`, `start_data`, `end_data`.
    fn code_and_data(&self) -> (u64, u64, u64, u64) {
        let (mut sc, mut ec, mut sd, mut ed) = (u64::MAX, 0, 0, 0);
        for l in &self.loads {
            let k = l.vaddr;
            if l.exec && k < sc {
                sc = k;
            }
            sd = sd.max(k);
            let k = l.vaddr + l.filesz;
            if l.exec && ec < k {
                ec = k;
            }
            ed = ed.max(k);
        }
        if sc == u64::MAX {
            sc = 0;
        }
        let b = self.bias;
        (
            sc.wrapping_add(b),
            ec.wrapping_add(b),
            sd.wrapping_add(b),
            ed.wrapping_add(b),
        )
    }
}

fn page_down(a: u64) -> u64 {
    a & !(PAGE_SIZE - 1)
}

fn page_up(a: u64) -> u64 {
    a.wrapping_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// One line of `maps`.
struct MapLine {
    start: u64,
    end: u64,
    perms: [u8; 4],
    offset: u64,
    dev: (u32, u32),
    ino: u64,
    name: String,
}

/// A stable inode number for shared anonymous memory (Linux's shmem
/// inode), without showing where the sentry keeps it.
fn shm_ino(m: &Arc<crate::mm::SharedMemory>) -> u64 {
    let mut x = Arc::as_ptr(m) as u64;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x & 0x7f_ffff) + 1
}

/// The lines of `maps` for the VMA at `start`.
fn vma_lines(start: u64, v: &Vma, exe: Option<&ExeLayout>, out: &mut Vec<MapLine>) {
    let perms = [
        if v.prot.read { b'r' } else { b'-' },
        if v.prot.write { b'w' } else { b'-' },
        if v.prot.exec { b'x' } else { b'-' },
        if v.shared() { b's' } else { b'p' },
    ];
    let line = |s: u64, e: u64, offset: u64, dev: (u32, u32), ino: u64, name: String| MapLine {
        start: s,
        end: e,
        perms,
        offset,
        dev,
        ino,
        name,
    };
    match v.kind {
        VmaKind::Vvar => return out.push(line(start, v.end, v.off, (0, 0), 0, "[vvar]".into())),
        VmaKind::Vdso => return out.push(line(start, v.end, v.off, (0, 0), 0, "[vdso]".into())),
        _ => {}
    }
    if let Some(fm) = &v.file {
        let (dev, ino, name) = fm.file.identity();
        out.push(line(
            start,
            v.end,
            v.off,
            (major(dev), minor(dev)),
            ino,
            name,
        ));
        return;
    }
    if let Some(m) = &v.shm {
        out.push(line(
            start,
            v.end,
            v.off,
            (0, 1),
            shm_ino(m),
            "/dev/zero (deleted)".into(),
        ));
        return;
    }
    match &v.kind {
        VmaKind::Heap => out.push(line(start, v.end, 0, (0, 0), 0, "[heap]".into())),
        VmaKind::Stack => out.push(line(start, v.end, 0, (0, 0), 0, "[stack]".into())),
        VmaKind::Anonymous | VmaKind::Vvar | VmaKind::Vdso => {
            out.push(line(start, v.end, 0, (0, 0), 0, String::new()))
        }
        VmaKind::File(path) => {
            // The loader's copies of segments (neighbours may have merged
            // into one VMA). As Linux maps a segment: the file's pages up
            // to the page holding its last file byte, then anonymous
            // memory (the rest of .bss).
            let mut a = start;
            while a < v.end {
                let orig = v.off + (a - start);
                let Some((x, l, seg_start)) =
                    exe.and_then(|x| x.segment_at(orig).map(|(l, s)| (x, l, s)))
                else {
                    out.push(line(a, v.end, 0, (0, 0), 0, path.clone()));
                    return;
                };
                let seg_end = page_up(l.vaddr.wrapping_add(x.bias) + l.memsz);
                let file_end = page_up(l.vaddr.wrapping_add(x.bias) + l.filesz);
                let piece_end = (a + (seg_end - orig)).min(v.end);
                let split = (a + file_end.saturating_sub(orig)).min(piece_end);
                if split > a {
                    let offset = page_down(l.offset) + (orig - seg_start);
                    out.push(line(a, split, offset, (0, 0), 0, path.clone()));
                }
                if split < piece_end {
                    out.push(line(split, piece_end, 0, (0, 0), 0, String::new()));
                }
                a = piece_end;
            }
        }
    }
}

/// `maps`, in Linux's format: the name starts at column 73.
fn maps(p: &ProcTask) -> String {
    let exe = ExeLayout::read(p);
    let mut lines = Vec::new();
    for (start, v) in p.mm.vmas() {
        vma_lines(start, &v, exe.as_ref(), &mut lines);
    }
    let mut s = String::new();
    for l in lines {
        let head = format!(
            "{:08x}-{:08x} {} {:08x} {:02x}:{:02x} {} ",
            l.start,
            l.end,
            std::str::from_utf8(&l.perms).unwrap(),
            l.offset,
            l.dev.0,
            l.dev.1,
            l.ino
        );
        s.push_str(&head);
        if !l.name.is_empty() {
            // seq_pad: spaces up to 72 columns, then one more.
            for _ in head.len()..72 {
                s.push(' ');
            }
            s.push(' ');
            s.push_str(&mangle_path(&l.name, "\n"));
        }
        s.push('\n');
    }
    s
}

/// Memory figures of a process, in bytes.
#[derive(Default)]
struct MemStats {
    /// Every VMA (VmSize).
    size: u64,
    /// Memory in use (VmRSS): what the memory file holds, at most `size`.
    rss: u64,
    /// Private writable memory that is not a stack (VmData).
    data: u64,
    /// Stacks (VmStk).
    stack: u64,
    /// Executable, non-writable memory (Linux's `exec_vm`).
    exec: u64,
    /// Shared memory.
    shared: u64,
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
}

impl MemStats {
    fn of(p: &ProcTask) -> MemStats {
        let mut m = MemStats::default();
        for (start, v) in p.mm.vmas() {
            let len = v.end - start;
            m.size += len;
            if v.growsdown || v.kind == VmaKind::Stack {
                m.stack += len;
            } else if v.prot.write && !v.shared() {
                m.data += len;
            }
            if v.prot.exec && !v.prot.write && !v.growsdown {
                m.exec += len;
            }
            if v.shared() {
                m.shared += len;
            }
        }
        m.rss = p.mm.memory_file().used().min(m.size);
        if let Some(x) = ExeLayout::read(p) {
            (m.start_code, m.end_code, m.start_data, m.end_data) = x.code_and_data();
        }
        m
    }

    /// Linux's `text`: the code's pages.
    fn text(&self) -> u64 {
        page_up(self.end_code).saturating_sub(page_down(self.start_code))
    }

    /// Linux's `lib`: executable memory that is not the program's code.
    fn lib(&self) -> u64 {
        self.exec.saturating_sub(self.text())
    }
}

/// `statm`: sizes in pages.
fn statm(p: &ProcTask) -> String {
    let m = MemStats::of(p);
    let pg = |b: u64| b / PAGE_SIZE;
    format!(
        "{} {} {} {} 0 {} 0\n",
        pg(m.size),
        pg(m.rss),
        pg(m.shared.min(m.rss)),
        pg(m.text()),
        pg(m.data + m.stack)
    )
}

// ----- status and stat -----

/// Signal sets of a process: (ignored, caught).
fn signal_dispositions(p: &ProcTask) -> (u64, u64) {
    let hs = p.tg.handlers();
    let h = hs.lock().unwrap_or_else(|e| e.into_inner());
    let (mut ign, mut cgt) = (0u64, 0u64);
    for (i, a) in h.actions.iter().enumerate() {
        if a.handler == crate::kernel::signal::SIG_IGN {
            ign |= 1 << i;
        } else if a.handler != crate::kernel::signal::SIG_DFL {
            cgt |= 1 << i;
        }
    }
    (ign, cgt)
}

/// A bitmap as Linux's `%*pb` prints it: 32-bit groups, most significant
/// first, comma-separated; the first group only as wide as needed.
fn bitmap_hex(bits: usize, set: impl Fn(usize) -> bool) -> String {
    let groups = bits.div_ceil(32).max(1);
    let mut out = Vec::new();
    for g in (0..groups).rev() {
        let mut w = 0u32;
        for b in 0..32 {
            let i = g * 32 + b;
            if i < bits && set(i) {
                w |= 1 << b;
            }
        }
        let width = if g == groups - 1 {
            (bits - g * 32).div_ceil(4).max(1)
        } else {
            8
        };
        out.push(format!("{w:0width$x}"));
    }
    out.join(",")
}

/// The number of fd slots Linux's table would have for these fds.
fn fd_table_size(p: &ProcTask) -> usize {
    let highest = p.fds.open_fds().last().copied().unwrap_or(0) as usize;
    if highest < 64 {
        64
    } else {
        ((highest + 1) / 128 + 1).next_power_of_two() * 128
    }
}

/// Escapes a command name as `status` shows it.
fn escape_comm(comm: &[u8]) -> String {
    let mut s = String::new();
    for &c in comm {
        match c {
            b'\n' => s.push_str("\\n"),
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            c if c.is_ascii_graphic() || c == b' ' => s.push(c as char),
            c => {
                let _ = write!(s, "\\{c:03o}");
            }
        }
    }
    s
}

/// The process group and session.
fn pgrp_and_session(p: &ProcTask) -> (i32, i32) {
    let r = relations(p);
    (r.pgrp, r.sid)
}

fn status(p: &ProcTask) -> String {
    let c = &p.creds;
    let m = MemStats::of(p);
    let kb = |b: u64| b / 1024;
    let (pgrp, sid) = pgrp_and_session(p);
    let (ign, cgt) = signal_dispositions(p);
    let cpus = p.kernel.cpus.max(1);
    let sigpending = p.tg.limits.locked().cur(libc::RLIMIT_SIGPENDING);
    let mut s = String::new();
    let _ = writeln!(s, "Name:\t{}", escape_comm(&p.comm));
    let _ = writeln!(s, "Umask:\t{:04o}", *p.tg.umask.locked());
    let st = relations(p).state;
    let _ = writeln!(s, "State:\t{} ({})", st.0, st.1);
    let _ = writeln!(s, "Tgid:\t{}", p.tg.tgid);
    s.push_str("Ngid:\t0\n");
    let _ = writeln!(s, "Pid:\t{}", p.tid);
    let _ = writeln!(s, "PPid:\t{}", relations(p).ppid);
    s.push_str("TracerPid:\t0\n");
    let _ = writeln!(s, "Uid:\t{}\t{}\t{}\t{}", c.uid, c.euid, c.suid, c.fsuid);
    let _ = writeln!(s, "Gid:\t{}\t{}\t{}\t{}", c.gid, c.egid, c.sgid, c.fsgid);
    let _ = writeln!(s, "FDSize:\t{}", fd_table_size(p));
    let groups: Vec<String> = c.groups.iter().map(|g| g.to_string()).collect();
    let _ = writeln!(s, "Groups:\t{} ", groups.join(" "));
    let _ = writeln!(s, "NStgid:\t{}", p.tg.tgid);
    let _ = writeln!(s, "NSpid:\t{}", p.tid);
    let _ = writeln!(s, "NSpgid:\t{pgrp}");
    let _ = writeln!(s, "NSsid:\t{sid}");
    for (name, v) in [
        ("VmPeak", m.size),
        ("VmSize", m.size),
        ("VmLck", 0),
        ("VmPin", 0),
        ("VmHWM", m.rss),
        ("VmRSS", m.rss),
        ("RssAnon", m.rss.saturating_sub(m.shared)),
        ("RssFile", 0),
        ("RssShmem", m.shared.min(m.rss)),
        ("VmData", m.data),
        ("VmStk", m.stack),
        ("VmExe", m.text()),
        ("VmLib", m.lib()),
        ("VmPTE", 0),
        ("VmSwap", 0),
    ] {
        let _ = writeln!(s, "{name}:\t{:>8} kB", kb(v));
    }
    s.push_str("HugetlbPages:\t       0 kB\n");
    s.push_str("CoreDumping:\t0\n");
    s.push_str("THP_enabled:\t1\n");
    s.push_str("untag_mask:\t0xffffffffffffffff\n");
    let _ = writeln!(s, "Threads:\t{}", relations(p).threads);
    let _ = writeln!(s, "SigQ:\t0/{sigpending}");
    s.push_str("SigPnd:\t0000000000000000\n");
    s.push_str("ShdPnd:\t0000000000000000\n");
    let _ = writeln!(s, "SigBlk:\t{:016x}", p.signal_mask);
    let _ = writeln!(s, "SigIgn:\t{ign:016x}");
    let _ = writeln!(s, "SigCgt:\t{cgt:016x}");
    let _ = writeln!(s, "CapInh:\t{:016x}", c.cap_inheritable);
    let _ = writeln!(s, "CapPrm:\t{:016x}", c.cap_permitted);
    let _ = writeln!(s, "CapEff:\t{:016x}", c.cap_effective);
    let _ = writeln!(s, "CapBnd:\t{:016x}", c.cap_bounding);
    let _ = writeln!(s, "CapAmb:\t{:016x}", c.cap_ambient);
    let _ = writeln!(s, "NoNewPrivs:\t{}", p.prctl.no_new_privs as u8);
    s.push_str("Seccomp:\t0\n");
    s.push_str("Seccomp_filters:\t0\n");
    s.push_str("Speculation_Store_Bypass:\tunknown\n");
    s.push_str("SpeculationIndirectBranch:\tunknown\n");
    let _ = writeln!(s, "Cpus_allowed:\t{}", bitmap_hex(cpus, |_| true));
    let _ = writeln!(s, "Cpus_allowed_list:\t{}", super::sysfs::cpu_list(cpus));
    let _ = writeln!(s, "Mems_allowed:\t{}", bitmap_hex(1024, |i| i == 0));
    s.push_str("Mems_allowed_list:\t0\n");
    s.push_str("voluntary_ctxt_switches:\t0\n");
    s.push_str("nonvoluntary_ctxt_switches:\t0\n");
    s
}

fn ticks(d: Duration) -> u64 {
    d.as_nanos() as u64 / (1_000_000_000 / USER_HZ)
}

/// Where the initial stack pointer was (the address of `argc`), from the
/// way the loader laid out the stack; checked against memory, 0 if it
/// does not hold argc.
fn start_stack(p: &ProcTask) -> u64 {
    let info = p.mm.process_info();
    let count = |r: (u64, u64)| read_range(p, r).iter().filter(|&&c| c == 0).count() as u64;
    let (argc, envc) = (count(info.argv), count(info.envp));
    let Some(random) = auxv_value(p, libc::AT_RANDOM) else {
        return 0;
    };
    let words = 3 + argc + envc + 2 * info.auxv.len() as u64;
    let sp = random.wrapping_sub(words * 8) & !15;
    match p.mm.read_obj::<u64>(sp) {
        Ok(v) if v == argc => sp,
        _ => 0,
    }
}

/// `[pid]/stat`: Linux's 52 fields.
fn task_stat(p: &ProcTask) -> String {
    let m = MemStats::of(p);
    let (pgrp, sid) = pgrp_and_session(p);
    let (ign, cgt) = signal_dispositions(p);
    let info = p.mm.process_info();
    let (start_brk, _) = p.mm.brk_range();
    let rsslim = p.tg.limits.locked().cur(libc::RLIMIT_RSS);
    let (tty_nr, tpgid) = crate::kernel::tty::stat_fields(&p.tg);
    let fields: Vec<String> = vec![
        relations(p).ppid.to_string(),
        pgrp.to_string(),
        sid.to_string(),
        tty_nr.to_string(),
        tpgid.to_string(),
        "0".into(), // flags
        "0".into(), // minflt
        "0".into(), // cminflt
        "0".into(), // majflt
        "0".into(), // cmajflt
        ticks(p.user_time).to_string(),
        ticks(p.sys_time).to_string(),
        "0".into(),                       // cutime
        "0".into(),                       // cstime
        "20".into(),                      // priority
        "0".into(),                       // nice
        relations(p).threads.to_string(), // num_threads
        "0".into(),                       // itrealvalue
        "0".into(),                       // starttime: the first process starts at boot
        m.size.to_string(),
        (m.rss / PAGE_SIZE).to_string(),
        rsslim.to_string(),
        m.start_code.to_string(),
        m.end_code.to_string(),
        start_stack(p).to_string(),
        "0".into(), // kstkesp
        "0".into(), // kstkeip
        "0".into(), // pending signals
        p.signal_mask.to_string(),
        ign.to_string(),
        cgt.to_string(),
        "0".into(), // wchan
        "0".into(), // nswap
        "0".into(), // cnswap
        relations(p).exit_signal.to_string(),
        "0".into(), // processor
        "0".into(), // rt_priority
        "0".into(), // policy
        "0".into(), // delayacct_blkio_ticks
        "0".into(), // guest_time
        "0".into(), // cguest_time
        m.start_data.to_string(),
        m.end_data.to_string(),
        start_brk.to_string(),
        info.argv.0.to_string(),
        info.argv.1.to_string(),
        info.envp.0.to_string(),
        info.envp.1.to_string(),
        "0".into(), // exit_code
    ];
    format!(
        "{} ({}) {} {}\n",
        p.tid,
        String::from_utf8_lossy(&p.comm),
        relations(p).state.0,
        fields.join(" ")
    )
}

// ----- Mounts -----

/// Escapes a path as Linux's `mangle` does for mount tables.
fn mangle_path(s: &str, special: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        if special.contains(ch) {
            let _ = write!(out, "\\{:03o}", ch as u32);
        } else {
            out.push(ch);
        }
    }
    out
}

fn mangle(b: &[u8]) -> String {
    mangle_path(&String::from_utf8_lossy(b), " \t\n\\")
}

/// The mount flags part of a mount's options.
fn mount_options(m: &crate::vfs::mount::Mount) -> String {
    let f = *m.flags.locked();
    let mut s = String::from(if f.readonly { "ro" } else { "rw" });
    if f.nosuid {
        s.push_str(",nosuid");
    }
    if f.nodev {
        s.push_str(",nodev");
    }
    if f.noexec {
        s.push_str(",noexec");
    }
    s
}

/// A mount's mount point as the process sees it from its root.
fn mount_point(p: &ProcTask, m: &Arc<crate::vfs::mount::Mount>) -> Vec<u8> {
    let ctx = p.fs.locked().clone();
    ctx.mounts.path(
        &Location {
            mount: m.clone(),
            inode: m.root.clone(),
        },
        &ctx.root,
    )
}

/// Where a mount's root is in its file system ("/" unless it is a bind
/// mount of part of one).
fn root_in_fs(m: &crate::vfs::mount::Mount) -> Vec<u8> {
    let mut parts = Vec::new();
    let mut cur = m.root.clone();
    for _ in 0..4096 {
        match cur.parent() {
            Some((p, name)) => {
                parts.push(name);
                cur = p;
            }
            None => break,
        }
    }
    let mut out = Vec::new();
    for p in parts.iter().rev() {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// `mounts`: `source mountpoint type options 0 0`.
fn mounts(p: &ProcTask) -> String {
    let ns = p.fs.locked().mounts.clone();
    let mut s = String::new();
    for m in ns.all() {
        let mut opts = mount_options(&m);
        if !m.fs.options.is_empty() {
            opts.push(',');
            opts.push_str(&m.fs.options);
        }
        let _ = writeln!(
            s,
            "{} {} {} {} 0 0",
            mangle(m.fs.source.as_bytes()),
            mangle(&mount_point(p, &m)),
            m.fs.type_name,
            opts
        );
    }
    s
}

/// `mountinfo`: `id parent major:minor root mountpoint options - type
/// source superoptions`.
fn mountinfo(p: &ProcTask) -> String {
    let ns = p.fs.locked().mounts.clone();
    let mut s = String::new();
    for m in ns.all() {
        let parent = m.parent.as_ref().map(|(pm, _)| pm.id).unwrap_or(m.id);
        let mut sb = String::from(if m.readonly() { "ro" } else { "rw" });
        if !m.fs.options.is_empty() {
            sb.push(',');
            sb.push_str(&m.fs.options);
        }
        let _ = writeln!(
            s,
            "{} {} {}:{} {} {} {} - {} {} {}",
            m.id,
            parent,
            major(m.fs.dev),
            minor(m.fs.dev),
            mangle(&root_in_fs(&m)),
            mangle(&mount_point(p, &m)),
            mount_options(&m),
            m.fs.type_name,
            mangle(m.fs.source.as_bytes()),
            sb
        );
    }
    s
}

// ----- Top-level files -----

use crate::hostcall::{cpuid, rdtsc};

/// Feature flags as /proc/cpuinfo names them, by (leaf, subleaf,
/// register, bit), in Linux's order of feature words.
const CPU_FLAGS: &[(u32, u32, u8, u32, &str)] = &[
    // Leaf 1, EDX (word 0).
    (1, 0, b'd', 0, "fpu"),
    (1, 0, b'd', 1, "vme"),
    (1, 0, b'd', 2, "de"),
    (1, 0, b'd', 3, "pse"),
    (1, 0, b'd', 4, "tsc"),
    (1, 0, b'd', 5, "msr"),
    (1, 0, b'd', 6, "pae"),
    (1, 0, b'd', 7, "mce"),
    (1, 0, b'd', 8, "cx8"),
    (1, 0, b'd', 9, "apic"),
    (1, 0, b'd', 11, "sep"),
    (1, 0, b'd', 12, "mtrr"),
    (1, 0, b'd', 13, "pge"),
    (1, 0, b'd', 14, "mca"),
    (1, 0, b'd', 15, "cmov"),
    (1, 0, b'd', 16, "pat"),
    (1, 0, b'd', 17, "pse36"),
    (1, 0, b'd', 18, "pn"),
    (1, 0, b'd', 19, "clflush"),
    (1, 0, b'd', 21, "dts"),
    (1, 0, b'd', 22, "acpi"),
    (1, 0, b'd', 23, "mmx"),
    (1, 0, b'd', 24, "fxsr"),
    (1, 0, b'd', 25, "sse"),
    (1, 0, b'd', 26, "sse2"),
    (1, 0, b'd', 27, "ss"),
    (1, 0, b'd', 28, "ht"),
    (1, 0, b'd', 29, "tm"),
    (1, 0, b'd', 30, "ia64"),
    (1, 0, b'd', 31, "pbe"),
    // Leaf 0x80000001, EDX (word 1).
    (0x8000_0001, 0, b'd', 11, "syscall"),
    (0x8000_0001, 0, b'd', 19, "mp"),
    (0x8000_0001, 0, b'd', 20, "nx"),
    (0x8000_0001, 0, b'd', 22, "mmxext"),
    (0x8000_0001, 0, b'd', 25, "fxsr_opt"),
    (0x8000_0001, 0, b'd', 26, "pdpe1gb"),
    (0x8000_0001, 0, b'd', 27, "rdtscp"),
    (0x8000_0001, 0, b'd', 29, "lm"),
    (0x8000_0001, 0, b'd', 30, "3dnowext"),
    (0x8000_0001, 0, b'd', 31, "3dnow"),
    // Leaf 1, ECX (word 4).
    (1, 0, b'c', 0, "pni"),
    (1, 0, b'c', 1, "pclmulqdq"),
    (1, 0, b'c', 2, "dtes64"),
    (1, 0, b'c', 3, "monitor"),
    (1, 0, b'c', 4, "ds_cpl"),
    (1, 0, b'c', 5, "vmx"),
    (1, 0, b'c', 6, "smx"),
    (1, 0, b'c', 7, "est"),
    (1, 0, b'c', 8, "tm2"),
    (1, 0, b'c', 9, "ssse3"),
    (1, 0, b'c', 10, "cid"),
    (1, 0, b'c', 11, "sdbg"),
    (1, 0, b'c', 12, "fma"),
    (1, 0, b'c', 13, "cx16"),
    (1, 0, b'c', 14, "xtpr"),
    (1, 0, b'c', 15, "pdcm"),
    (1, 0, b'c', 17, "pcid"),
    (1, 0, b'c', 18, "dca"),
    (1, 0, b'c', 19, "sse4_1"),
    (1, 0, b'c', 20, "sse4_2"),
    (1, 0, b'c', 21, "x2apic"),
    (1, 0, b'c', 22, "movbe"),
    (1, 0, b'c', 23, "popcnt"),
    (1, 0, b'c', 24, "tsc_deadline_timer"),
    (1, 0, b'c', 25, "aes"),
    (1, 0, b'c', 26, "xsave"),
    (1, 0, b'c', 28, "avx"),
    (1, 0, b'c', 29, "f16c"),
    (1, 0, b'c', 30, "rdrand"),
    (1, 0, b'c', 31, "hypervisor"),
    // Leaf 0x80000001, ECX (word 6).
    (0x8000_0001, 0, b'c', 0, "lahf_lm"),
    (0x8000_0001, 0, b'c', 1, "cmp_legacy"),
    (0x8000_0001, 0, b'c', 2, "svm"),
    (0x8000_0001, 0, b'c', 3, "extapic"),
    (0x8000_0001, 0, b'c', 4, "cr8_legacy"),
    (0x8000_0001, 0, b'c', 5, "abm"),
    (0x8000_0001, 0, b'c', 6, "sse4a"),
    (0x8000_0001, 0, b'c', 7, "misalignsse"),
    (0x8000_0001, 0, b'c', 8, "3dnowprefetch"),
    (0x8000_0001, 0, b'c', 9, "osvw"),
    (0x8000_0001, 0, b'c', 10, "ibs"),
    (0x8000_0001, 0, b'c', 11, "xop"),
    (0x8000_0001, 0, b'c', 12, "skinit"),
    (0x8000_0001, 0, b'c', 13, "wdt"),
    (0x8000_0001, 0, b'c', 15, "lwp"),
    (0x8000_0001, 0, b'c', 16, "fma4"),
    (0x8000_0001, 0, b'c', 17, "tce"),
    (0x8000_0001, 0, b'c', 19, "nodeid_msr"),
    (0x8000_0001, 0, b'c', 21, "tbm"),
    (0x8000_0001, 0, b'c', 22, "topoext"),
    (0x8000_0001, 0, b'c', 23, "perfctr_core"),
    (0x8000_0001, 0, b'c', 24, "perfctr_nb"),
    (0x8000_0001, 0, b'c', 26, "bpext"),
    (0x8000_0001, 0, b'c', 27, "ptsc"),
    (0x8000_0001, 0, b'c', 28, "perfctr_llc"),
    (0x8000_0001, 0, b'c', 29, "mwaitx"),
    // Leaf 7, EBX (word 9).
    (7, 0, b'b', 0, "fsgsbase"),
    (7, 0, b'b', 1, "tsc_adjust"),
    (7, 0, b'b', 2, "sgx"),
    (7, 0, b'b', 3, "bmi1"),
    (7, 0, b'b', 4, "hle"),
    (7, 0, b'b', 5, "avx2"),
    (7, 0, b'b', 7, "smep"),
    (7, 0, b'b', 8, "bmi2"),
    (7, 0, b'b', 9, "erms"),
    (7, 0, b'b', 10, "invpcid"),
    (7, 0, b'b', 11, "rtm"),
    (7, 0, b'b', 12, "cqm"),
    (7, 0, b'b', 14, "mpx"),
    (7, 0, b'b', 15, "rdt_a"),
    (7, 0, b'b', 16, "avx512f"),
    (7, 0, b'b', 17, "avx512dq"),
    (7, 0, b'b', 18, "rdseed"),
    (7, 0, b'b', 19, "adx"),
    (7, 0, b'b', 20, "smap"),
    (7, 0, b'b', 21, "avx512ifma"),
    (7, 0, b'b', 23, "clflushopt"),
    (7, 0, b'b', 24, "clwb"),
    (7, 0, b'b', 25, "intel_pt"),
    (7, 0, b'b', 26, "avx512pf"),
    (7, 0, b'b', 27, "avx512er"),
    (7, 0, b'b', 28, "avx512cd"),
    (7, 0, b'b', 29, "sha_ni"),
    (7, 0, b'b', 30, "avx512bw"),
    (7, 0, b'b', 31, "avx512vl"),
    // Leaf 0xd subleaf 1, EAX (word 10).
    (0xd, 1, b'a', 0, "xsaveopt"),
    (0xd, 1, b'a', 1, "xsavec"),
    (0xd, 1, b'a', 2, "xgetbv1"),
    (0xd, 1, b'a', 3, "xsaves"),
    // Leaf 7, ECX (word 16).
    (7, 0, b'c', 1, "avx512vbmi"),
    (7, 0, b'c', 2, "umip"),
    (7, 0, b'c', 3, "pku"),
    (7, 0, b'c', 4, "ospke"),
    (7, 0, b'c', 5, "waitpkg"),
    (7, 0, b'c', 6, "avx512_vbmi2"),
    (7, 0, b'c', 8, "gfni"),
    (7, 0, b'c', 9, "vaes"),
    (7, 0, b'c', 10, "vpclmulqdq"),
    (7, 0, b'c', 11, "avx512_vnni"),
    (7, 0, b'c', 12, "avx512_bitalg"),
    (7, 0, b'c', 13, "tme"),
    (7, 0, b'c', 14, "avx512_vpopcntdq"),
    (7, 0, b'c', 16, "la57"),
    (7, 0, b'c', 22, "rdpid"),
    (7, 0, b'c', 24, "bus_lock_detect"),
    (7, 0, b'c', 25, "cldemote"),
    (7, 0, b'c', 27, "movdiri"),
    (7, 0, b'c', 28, "movdir64b"),
    (7, 0, b'c', 29, "enqcmd"),
    (7, 0, b'c', 30, "sgx_lc"),
    // Leaf 7, EDX (word 18).
    (7, 0, b'd', 2, "avx512_4vnniw"),
    (7, 0, b'd', 3, "avx512_4fmaps"),
    (7, 0, b'd', 4, "fsrm"),
    (7, 0, b'd', 8, "avx512_vp2intersect"),
    (7, 0, b'd', 10, "md_clear"),
    (7, 0, b'd', 14, "serialize"),
    (7, 0, b'd', 16, "tsxldtrk"),
    (7, 0, b'd', 18, "pconfig"),
    (7, 0, b'd', 19, "arch_lbr"),
    (7, 0, b'd', 20, "ibt"),
    (7, 0, b'd', 22, "amx_bf16"),
    (7, 0, b'd', 23, "avx512_fp16"),
    (7, 0, b'd', 24, "amx_tile"),
    (7, 0, b'd', 25, "amx_int8"),
    (7, 0, b'd', 28, "flush_l1d"),
    (7, 0, b'd', 29, "arch_capabilities"),
];

/// The TSC's frequency in kHz, measured once.
fn tsc_khz() -> u64 {
    static KHZ: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *KHZ.get_or_init(|| {
        let (t0, c0) = (std::time::Instant::now(), rdtsc());
        std::thread::sleep(Duration::from_millis(10));
        let (dt, c1) = (t0.elapsed(), rdtsc());
        (c1.wrapping_sub(c0) as f64 / dt.as_secs_f64() / 1000.0) as u64
    })
}

/// `/proc/cpuinfo` for `cpus` CPUs of the host's model, from CPUID.
fn cpuinfo(cpus: usize) -> String {
    let (max_leaf, vb, vc, vd) = cpuid(0, 0);
    let mut vendor = Vec::new();
    for r in [vb, vd, vc] {
        vendor.extend_from_slice(&r.to_le_bytes());
    }
    let vendor = String::from_utf8_lossy(&vendor).into_owned();
    let (max_ext, ..) = cpuid(0x8000_0000, 0);
    let (sig, b1, ..) = cpuid(1, 0);
    let stepping = sig & 0xf;
    let mut model = (sig >> 4) & 0xf;
    let mut family = (sig >> 8) & 0xf;
    if family == 0xf {
        family += (sig >> 20) & 0xff;
    }
    if family >= 6 {
        model += ((sig >> 16) & 0xf) << 4;
    }
    let mut name = Vec::new();
    if max_ext >= 0x8000_0004 {
        for leaf in 0x8000_0002..=0x8000_0004 {
            let (a, b, c, d) = cpuid(leaf, 0);
            for r in [a, b, c, d] {
                name.extend_from_slice(&r.to_le_bytes());
            }
        }
    }
    let name = String::from_utf8_lossy(&name)
        .trim_matches(char::from(0))
        .trim()
        .to_string();
    let name = if name.is_empty() {
        "unknown".to_string()
    } else {
        name
    };
    // The base frequency in kHz: from CPUID, or the model name, or else by
    // timing the TSC.
    let mut khz = if max_leaf >= 0x16 {
        cpuid(0x16, 0).0 as u64 * 1000
    } else {
        0
    };
    if khz == 0 {
        if let Some(ghz) = name
            .rsplit('@')
            .next()
            .filter(|_| name.contains('@'))
            .and_then(|s| s.trim().strip_suffix("GHz"))
            .and_then(|s| s.trim().parse::<f64>().ok())
        {
            khz = (ghz * 1_000_000.0) as u64;
        }
    }
    if khz == 0 && cpuid(1, 0).3 & (1 << 4) != 0 {
        khz = tsc_khz();
    }
    let cache_kb = if max_ext >= 0x8000_0006 {
        cpuid(0x8000_0006, 0).2 >> 16
    } else {
        0
    };
    let (phys_bits, virt_bits) = if max_ext >= 0x8000_0008 {
        let a = cpuid(0x8000_0008, 0).0;
        (a & 0xff, (a >> 8) & 0xff)
    } else {
        (36, 48)
    };
    let clflush = ((b1 >> 8) & 0xff) * 8;
    let mut flags = String::new();
    for &(leaf, sub, reg, bit, fname) in CPU_FLAGS {
        let max = if leaf >= 0x8000_0000 {
            max_ext
        } else {
            max_leaf
        };
        if leaf > max {
            continue;
        }
        let (a, b, c, d) = cpuid(leaf, sub);
        let r = match reg {
            b'a' => a,
            b'b' => b,
            b'c' => c,
            _ => d,
        };
        if r & (1 << bit) != 0 {
            flags.push(' ');
            flags.push_str(fname);
        }
    }
    let mut s = String::new();
    for i in 0..cpus.max(1) {
        let _ = write!(
            s,
            "processor\t: {i}\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\n\
             model name\t: {name}\nstepping\t: {stepping}\n"
        );
        let _ = writeln!(s, "cpu MHz\t\t: {}.{:03}", khz / 1000, khz % 1000);
        if cache_kb != 0 {
            let _ = writeln!(s, "cache size\t: {cache_kb} KB");
        }
        let _ = write!(
            s,
            "physical id\t: 0\nsiblings\t: {cpus}\ncore id\t\t: {i}\ncpu cores\t: {cpus}\n\
             apicid\t\t: {i}\ninitial apicid\t: {i}\nfpu\t\t: yes\nfpu_exception\t: yes\n\
             cpuid level\t: {max_leaf}\nwp\t\t: yes\nflags\t\t:{flags}\nbugs\t\t:\n"
        );
        let bogo = khz * 2 / 10;
        let _ = write!(
            s,
            "bogomips\t: {}.{:02}\nclflush size\t: {clflush}\ncache_alignment\t: {clflush}\n\
             address sizes\t: {phys_bits} bits physical, {virt_bits} bits virtual\n\
             power management:\n\n",
            bogo / 100,
            bogo % 100
        );
    }
    s
}

/// The machine's memory, which the sandbox may use all of, in bytes.
fn total_memory() -> u64 {
    match crate::hostcall::physical_memory() {
        0 => 1 << 30,
        m => m,
    }
}

/// `meminfo`: the machine's memory and what the sandbox uses of it.
fn meminfo(t: &Task) -> String {
    let total = total_memory();
    let used = t.kernel.memory_file.used().min(total);
    let free = total - used;
    let mut s = String::new();
    for (name, v) in [
        ("MemTotal", total),
        ("MemFree", free),
        ("MemAvailable", free),
        ("Buffers", 0),
        ("Cached", 0),
        ("SwapCached", 0),
        ("Active", used),
        ("Inactive", 0),
        ("Active(anon)", used),
        ("Inactive(anon)", 0),
        ("Active(file)", 0),
        ("Inactive(file)", 0),
        ("Unevictable", 0),
        ("Mlocked", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", used),
        ("Mapped", 0),
        ("Shmem", 0),
        ("KReclaimable", 0),
        ("Slab", 0),
        ("SReclaimable", 0),
        ("SUnreclaim", 0),
        ("KernelStack", 0),
        ("PageTables", 0),
        ("CommitLimit", total / 2),
        ("Committed_AS", used),
    ] {
        let _ = writeln!(s, "{:<16}{:>8} kB", format!("{name}:"), v / 1024);
    }
    s
}

/// Time since the sandbox booted.
fn since_boot(t: &Task) -> Duration {
    t.kernel.boot_time.elapsed()
}

/// CPU time the sandbox's tasks have used: (user, system).
fn busy(t: &Task) -> (Duration, Duration) {
    all_tasks(t)
        .into_iter()
        .fold((Duration::ZERO, Duration::ZERO), |(u, s), x| {
            (u + x.user_time, s + x.sys_time)
        })
}

/// Idle time summed over the CPUs.
fn idle(t: &Task) -> Duration {
    let (u, s) = busy(t);
    (since_boot(t) * t.kernel.cpus.max(1) as u32).saturating_sub(u + s)
}

fn uptime(t: &Task) -> String {
    let up = since_boot(t);
    let id = idle(t);
    let cs = |d: Duration| d.as_millis() / 10;
    format!(
        "{}.{:02} {}.{:02}\n",
        cs(up) / 100,
        cs(up) % 100,
        cs(id) / 100,
        cs(id) % 100
    )
}

fn loadavg(t: &Task) -> String {
    let n = all_tasks(t).len();
    let last = all_tasks(t).iter().map(|x| x.tid).max().unwrap_or(0);
    format!("0.00 0.00 0.00 1/{n} {last}\n")
}

/// `/proc/stat`: CPU times in USER_HZ ticks, boot time, process counts.
fn stat(t: &Task) -> String {
    let cpus = t.kernel.cpus.max(1);
    let (u, sy) = busy(t);
    let per_cpu_idle = ticks(since_boot(t)).saturating_sub(ticks(u + sy) / cpus as u64);
    let total_idle = ticks(idle(t));
    let line = |name: &str, user: u64, system: u64, idle: u64| {
        format!("{name} {user} 0 {system} {idle} 0 0 0 0 0 0\n")
    };
    let mut s = line("cpu ", ticks(u), ticks(sy), total_idle);
    for i in 0..cpus {
        let (cu, cs) = if i == 0 {
            (ticks(u), ticks(sy))
        } else {
            (0, 0)
        };
        let ci = if i == 0 {
            per_cpu_idle
        } else {
            ticks(since_boot(t))
        };
        s.push_str(&line(&format!("cpu{i}"), cu, cs, ci));
    }
    let boot = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(since_boot(t));
    let n = all_tasks(t).len();
    let _ = write!(
        s,
        "intr 0\nctxt 0\nbtime {}\nprocesses {}\nprocs_running {}\nprocs_blocked 0\n\
         softirq 0 0 0 0 0 0 0 0 0 0 0\n",
        boot.as_secs(),
        pids(t).len(),
        n
    );
    s
}

// ----- /proc/sys -----

/// A random version-4 UUID, as `random/uuid` gives.
fn uuid() -> String {
    let mut b = [0u8; 16];
    let _ = crate::hostcall::fill_random(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..].concat()
    )
}

/// A read-only sysctl.
fn sysctl(s: impl Into<String>) -> Node {
    let s: String = s.into();
    Node::text(0o444, format!("{s}\n")).seek_end()
}

/// A writable string sysctl backed by one of the kernel's UTS names:
/// writes replace it as Linux's `proc_dostring` does, up to a newline,
/// at most 64 bytes.
fn uts_sysctl(field: fn(&mut crate::kernel::Uts) -> &mut String) -> Node {
    Node::file(0o644, move |t| {
        let mut uts = t.kernel.uts.locked();
        Ok(format!("{}\n", field(&mut uts)).into_bytes())
    })
    .seek_end()
    .writes(Writes::To(Arc::new(
        move |t: &Task| -> Result<Sink, Errno> {
            let kernel = t.kernel.clone();
            Ok(Box::new(move |data: &[u8], off: u64| {
                let mut uts = kernel.uts.locked();
                let cur = field(&mut uts);
                let off = off as usize;
                if off > cur.len() {
                    // Past the end: the write is taken and ignored.
                    return Ok(data.len());
                }
                let end = data
                    .iter()
                    .position(|&c| c == b'\n' || c == 0)
                    .unwrap_or(data.len());
                let mut v = cur.as_bytes()[..off].to_vec();
                v.extend_from_slice(&data[..end]);
                v.truncate(UTS_LEN);
                *cur = String::from_utf8_lossy(&v).into_owned();
                Ok(data.len())
            }))
        },
    )))
}

fn sysctl_dir(entries: Vec<Entry>) -> Node {
    // Linux's sysctl directories have a link count of 1, and fail the
    // lookup of a name they do not have, so creating one is ENOENT.
    Node::dir(
        0o555,
        Arc::new(Fixed {
            entries,
            absent_error: Some(Errno::ENOENT),
        }),
    )
    .nlink(1)
}

/// `ours` and `more` in one list, sorted as Linux lists sysctl names.
fn sorted(mut ours: Vec<Entry>, more: Vec<Entry>) -> Vec<Entry> {
    ours.extend(more);
    ours.sort_by(|a, b| a.name.cmp(&b.name));
    ours
}

/// `random/boot_id`: made once per sandbox (a sentry runs one).
fn boot_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(uuid)
}

fn sys_dir() -> Node {
    let kernel = sysctl_dir(sorted(
        vec![
            entry(
                "cap_last_cap",
                sysctl(crate::kernel::creds::CAP_LAST_CAP.to_string()),
            ),
            entry("domainname", uts_sysctl(|u| &mut u.domainname)),
            entry("hostname", uts_sysctl(|u| &mut u.hostname)),
            entry("ngroups_max", sysctl(NGROUPS_MAX.to_string())),
            entry("osrelease", sysctl(RELEASE)),
            entry("ostype", sysctl("Linux")),
            entry("pid_max", sysctl(PID_MAX.to_string())),
            entry(
                "random",
                sysctl_dir(vec![
                    entry("boot_id", sysctl(boot_id())),
                    entry(
                        "uuid",
                        Node::file(0o444, |_| Ok(format!("{}\n", uuid()).into_bytes())).seek_end(),
                    ),
                ]),
            ),
            entry("tainted", sysctl("0")),
            entry("threads-max", sysctl(THREADS_MAX.to_string())),
            entry("version", sysctl(VERSION)),
        ],
        crate::kernel::ipc::proc::kernel_sysctls(),
    ));
    let vm = sysctl_dir(vec![entry("overcommit_memory", sysctl("0"))]);
    let fs = sysctl_dir(sorted(
        vec![
            entry("file-max", sysctl(i64::MAX.to_string())),
            entry("nr_open", sysctl(crate::kernel::NR_OPEN.to_string())),
        ],
        vec![
            entry(
                "mqueue",
                sysctl_dir(crate::kernel::ipc::proc::mqueue_sysctls()),
            ),
            entry("inotify", sysctl_dir(crate::vfs::inotify::sysctls())),
        ],
    ));
    sysctl_dir(vec![
        entry("fs", fs),
        entry("kernel", kernel),
        entry("net", net_sysctls()),
        entry("vm", vm),
    ])
}

/// `/proc/net`: the stack's sockets, links and routes, and AF_UNIX's
/// sockets.
fn net_files() -> Vec<Entry> {
    use crate::net::proc as p;
    fn net_file(f: fn(&crate::net::NetStack) -> String) -> Node {
        top_file(move |t| Ok(f(t.kernel.sockets.net()).into_bytes()))
    }
    vec![
        entry("dev", net_file(p::dev)),
        entry("if_inet6", net_file(p::if_inet6)),
        entry("ipv6_route", net_file(p::ipv6_route)),
        entry("netstat", top_file(|_| Ok(p::netstat().into_bytes()))),
        entry("route", net_file(p::route)),
        entry("snmp", net_file(p::snmp)),
        entry("sockstat", net_file(p::sockstat)),
        entry("sockstat6", net_file(p::sockstat6)),
        entry("tcp", net_file(p::tcp)),
        entry("tcp6", net_file(p::tcp6)),
        entry("udp", net_file(p::udp)),
        entry("udp6", net_file(p::udp6)),
        entry(
            "unix",
            top_file(|t| Ok(t.kernel.sockets.unix.proc_net_unix().into_bytes())),
        ),
    ]
}

/// `net.ipv4.ip_local_port_range`: the stack's ephemeral ports, two
/// numbers; a write takes one or two (the second kept when absent), each
/// in 1..=65535 and in order, else EINVAL.
fn port_range_sysctl() -> Node {
    Node::file(0o644, |t| {
        let (lo, hi) = *t.kernel.sockets.net().port_range.lock();
        Ok(format!("{lo}\t{hi}\n").into_bytes())
    })
    .seek_end()
    .writes(Writes::To(Arc::new(
        move |t: &Task| -> Result<Sink, Errno> {
            let stack = t.kernel.sockets.net().clone();
            Ok(Box::new(move |data: &[u8], off: u64| {
                if off != 0 {
                    return Ok(data.len());
                }
                let text = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
                let words: Vec<&str> = text.trim_end_matches('\0').split_whitespace().collect();
                if words.is_empty() {
                    return Err(Errno::EINVAL);
                }
                let mut range = stack.port_range.lock();
                let mut v = [range.0 as i64, range.1 as i64];
                for (i, w) in words.iter().take(2).enumerate() {
                    v[i] = w.parse().map_err(|_| Errno::EINVAL)?;
                }
                if !(1..=65535).contains(&v[0]) || !(1..=65535).contains(&v[1]) || v[1] < v[0] {
                    return Err(Errno::EINVAL);
                }
                *range = (v[0] as u16, v[1] as u16);
                Ok(data.len())
            }))
        },
    )))
}

/// `/proc/sys/net`: the settings of the sandbox's stack that programs
/// read (each is what the stack does: Linux's defaults, CUBIC, the
/// keep-alive timings the stack uses); the port range is writable.
fn net_sysctls() -> Node {
    let core = sysctl_dir(vec![
        entry("netdev_max_backlog", sysctl("1000")),
        entry(
            "optmem_max",
            sysctl(crate::fsimpl::socket::OPTMEM_MAX.to_string()),
        ),
        entry(
            "rmem_default",
            sysctl(crate::fsimpl::socket::RMEM_DEFAULT.to_string()),
        ),
        entry(
            "rmem_max",
            sysctl(crate::fsimpl::socket::RMEM_MAX.to_string()),
        ),
        entry(
            "somaxconn",
            sysctl(crate::fsimpl::socket::SOMAXCONN.to_string()),
        ),
        entry(
            "wmem_default",
            sysctl(crate::fsimpl::socket::WMEM_DEFAULT.to_string()),
        ),
        entry(
            "wmem_max",
            sysctl(crate::fsimpl::socket::WMEM_MAX.to_string()),
        ),
    ]);
    let ipv4 = sysctl_dir(vec![
        entry("ip_default_ttl", sysctl("64")),
        entry("ip_forward", sysctl("0")),
        entry("ip_local_port_range", port_range_sysctl()),
        entry("ip_nonlocal_bind", sysctl("0")),
        // No group may open ICMP echo ("ping") sockets: Linux's default,
        // and the sandbox's fixed answer (see fsimpl/socket/mod.rs).
        entry(
            "ping_group_range",
            sysctl(format!(
                "{}\t{}",
                crate::fsimpl::socket::PING_GROUP_RANGE.0,
                crate::fsimpl::socket::PING_GROUP_RANGE.1
            )),
        ),
        entry("ip_unprivileged_port_start", sysctl("1024")),
        entry("tcp_available_congestion_control", sysctl("cubic")),
        entry("tcp_congestion_control", sysctl("cubic")),
        entry("tcp_fin_timeout", sysctl("60")),
        entry("tcp_keepalive_intvl", sysctl("75")),
        entry("tcp_keepalive_probes", sysctl("9")),
        entry("tcp_keepalive_time", sysctl("7200")),
        entry("tcp_max_syn_backlog", sysctl("4096")),
        entry("tcp_rmem", sysctl("4096\t131072\t6291456")),
        entry("tcp_sack", sysctl("1")),
        entry("tcp_syn_retries", sysctl("6")),
        entry("tcp_timestamps", sysctl("1")),
        entry("tcp_window_scaling", sysctl("1")),
        entry("tcp_wmem", sysctl("4096\t16384\t4194304")),
    ]);
    let conf = |name: &str| {
        entry(
            name,
            sysctl_dir(vec![
                entry("disable_ipv6", sysctl("0")),
                entry("forwarding", sysctl("0")),
                entry("mtu", sysctl(if name == "lo" { "65536" } else { "1280" })),
            ]),
        )
    };
    let ipv6 = sysctl_dir(vec![
        entry("bindv6only", sysctl("0")),
        entry(
            "conf",
            sysctl_dir(vec![conf("all"), conf("default"), conf("lo")]),
        ),
    ]);
    sysctl_dir(vec![
        entry("core", core),
        entry("ipv4", ipv4),
        entry("ipv6", ipv6),
    ])
}
