//! devpts (`/dev/pts`): the file system of pseudo-terminal replicas, its
//! `ptmx` (each open makes a new pair), the open files of both ends and
//! their ioctls. The line discipline and job control are
//! `kernel::tty`'s.
//!
//! Every mount is an instance of its own, as on Linux since 4.7 (the
//! `newinstance` option is taken and changes nothing): its pairs are
//! numbered from 0, and `/dev/pts/N` is there from the master's open to
//! its close. `/dev/ptmx` (devfs's character device 5:2) opens a pair in
//! the devpts mounted on `pts` beside it, as Linux's devpts_acquire finds
//! it.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use parking_lot::Mutex;

use crate::errno::Errno;
use crate::kernel::task::Task;
use crate::kernel::tty::{self, ReadAttempt, Settings, Side, Terminal, WinSize};
use crate::kernel::waiter::{WaitQueue, ALL_EVENTS};
use crate::kernel::Kernel;
use crate::syscalls::SysResult;
use crate::vfs::inode::{makedev, DirEntry, Filesystem, Inode, InodeMeta, InodeOps};
use crate::vfs::mount::{Location, Mount};
use crate::vfs::perm::CAP_SYS_ADMIN;
use crate::vfs::{FileDescription, FileImpl, TaskIo};

/// statfs's f_type of devpts.
pub const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
pub use crate::kernel::tty::REPLICA_MAJOR;
/// The most pairs an instance numbers (Linux's NR_UNIX98_PTY_MAX).
const NR_PTY_MAX: u32 = 1 << 20;

/// A devpts instance's mount options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Owner of new replicas (default: the opener's fsuid).
    pub uid: Option<u32>,
    /// Group of new replicas (default: the opener's fsgid).
    pub gid: Option<u32>,
    /// Permission bits of new replicas.
    pub mode: u32,
    /// Permission bits of `ptmx`.
    pub ptmxmode: u32,
    /// The most pairs at once.
    pub max: u32,
}

impl Default for Options {
    /// Linux's defaults: replicas 0600, `ptmx` 0000.
    fn default() -> Options {
        Options {
            uid: None,
            gid: None,
            mode: 0o600,
            ptmxmode: 0,
            max: NR_PTY_MAX,
        }
    }
}

impl Options {
    /// The options of the sandbox's own `/dev/pts`, as runc's default spec
    /// mounts it: `gid=5,mode=620,ptmxmode=666`.
    pub fn sandbox() -> Options {
        Options {
            gid: Some(5),
            mode: 0o620,
            ptmxmode: 0o666,
            ..Options::default()
        }
    }

    /// Parses mount options as Linux's devpts_parse_param: EINVAL for
    /// unknown options and bad values.
    pub fn parse(data: &[u8]) -> Result<Options, Errno> {
        let text = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
        let mut o = Options::default();
        let num = |v: &str| v.parse::<u32>().map_err(|_| Errno::EINVAL);
        let oct = |v: &str| u32::from_str_radix(v, 8).map_err(|_| Errno::EINVAL);
        for opt in text.split(',').filter(|s| !s.is_empty()) {
            match opt.split_once('=') {
                Some(("uid", v)) => o.uid = Some(num(v)?),
                Some(("gid", v)) => o.gid = Some(num(v)?),
                Some(("mode", v)) => o.mode = oct(v)? & 0o777,
                Some(("ptmxmode", v)) => o.ptmxmode = oct(v)? & 0o777,
                Some(("max", v)) => {
                    let m = num(v)?;
                    if m > NR_PTY_MAX {
                        return Err(Errno::EINVAL);
                    }
                    o.max = m;
                }
                None if matches!(opt, "newinstance" | "ro" | "rw" | "silent") => {}
                _ => return Err(Errno::EINVAL),
            }
        }
        Ok(o)
    }

    /// As /proc/mounts shows them (Linux's devpts_show_options).
    fn show(&self) -> String {
        let mut s = String::new();
        if let Some(u) = self.uid {
            s.push_str(&format!("uid={u},"));
        }
        if let Some(g) = self.gid {
            s.push_str(&format!("gid={g},"));
        }
        s.push_str(&format!(
            "mode={:03o},ptmxmode={:03o}",
            self.mode, self.ptmxmode
        ));
        if self.max < NR_PTY_MAX {
            s.push_str(&format!(",max={}", self.max));
        }
        s
    }
}

/// The numbers in use and the replicas' nodes.
#[derive(Default)]
struct Pairs {
    /// Numbers of live pairs (freed when the pair is gone).
    used: BTreeSet<u32>,
    /// `/dev/pts/N` of each pair whose master is open.
    nodes: BTreeMap<u32, Arc<Inode>>,
}

/// One devpts instance (Linux's pts_fs_info).
pub struct Instance {
    fs: Arc<Filesystem>,
    opts: Options,
    pairs: Mutex<Pairs>,
    root: OnceLock<Weak<Inode>>,
    ptmx: OnceLock<Arc<Inode>>,
}

/// A new devpts instance with `opts`; its file system and root.
pub fn new_devpts(
    vfs: &crate::vfs::VfsState,
    source: &str,
    opts: Options,
) -> (Arc<Filesystem>, Arc<Inode>) {
    let fs = Filesystem::new(vfs, "devpts", source, DEVPTS_SUPER_MAGIC, &opts.show());
    let inst = Arc::new(Instance {
        fs: fs.clone(),
        opts,
        pairs: Mutex::new(Pairs::default()),
        root: OnceLock::new(),
        ptmx: OnceLock::new(),
    });
    let node = |ino: u64, mode: u32, rdev: u64, ops: Box<dyn InodeOps>| {
        let mut meta = InodeMeta::new(mode, 0, 0);
        meta.rdev = rdev;
        Arc::new(Inode {
            ino,
            fs: fs.clone(),
            meta: std::sync::Mutex::new(meta),
            ops,
            parent: std::sync::Mutex::new(None),
            locks: Default::default(),
            watches: Default::default(),
        })
    };
    let root = node(1, libc::S_IFDIR | 0o755, 0, Box::new(Root(inst.clone())));
    root.meta.lock().unwrap_or_else(|e| e.into_inner()).nlink = 2;
    let ptmx = node(
        2,
        libc::S_IFCHR | opts.ptmxmode,
        makedev(5, 2),
        Box::new(Ptmx(Arc::downgrade(&inst))),
    );
    ptmx.set_parent(&root, b"ptmx");
    let _ = inst.root.set(Arc::downgrade(&root));
    let _ = inst.ptmx.set(ptmx);
    (fs, root)
}

impl Instance {
    /// A new pair: the lowest free number (ENOSPC past `max`), its
    /// terminal, and `/dev/pts/N` owned by `uid`/`gid` unless the options
    /// say otherwise.
    fn new_pair(
        self: &Arc<Self>,
        kernel: &Arc<Kernel>,
        uid: u32,
        gid: u32,
    ) -> Result<MasterEnd, Errno> {
        let index = {
            let mut p = self.pairs.lock();
            let index = (0..self.opts.max)
                .find(|i| !p.used.contains(i))
                .ok_or(Errno::ENOSPC)?;
            p.used.insert(index);
            index
        };
        let weak = Arc::downgrade(self);
        let term = Terminal::new(
            index,
            kernel,
            Box::new(move |i| {
                if let Some(inst) = weak.upgrade() {
                    inst.pairs.lock().used.remove(&i);
                }
            }),
        );
        let mut meta = InodeMeta::new(
            libc::S_IFCHR | self.opts.mode,
            self.opts.uid.unwrap_or(uid),
            self.opts.gid.unwrap_or(gid),
        );
        meta.rdev = makedev(REPLICA_MAJOR, index);
        let inode = Arc::new(Inode {
            ino: index as u64 + 3,
            fs: self.fs.clone(),
            meta: std::sync::Mutex::new(meta),
            ops: Box::new(Pts(Arc::downgrade(&term))),
            parent: std::sync::Mutex::new(None),
            locks: Default::default(),
            watches: Default::default(),
        });
        if let Some(root) = self.root.get().and_then(|w| w.upgrade()) {
            inode.set_parent(&root, index.to_string().as_bytes());
        }
        self.pairs.lock().nodes.insert(index, inode);
        Ok(MasterEnd {
            term,
            inst: self.clone(),
        })
    }

    fn node(&self, index: u32) -> Option<Arc<Inode>> {
        self.pairs.lock().nodes.get(&index).cloned()
    }

    /// The mount of this instance in `t`'s mount table, if it is mounted.
    fn mount_for(&self, t: &Task) -> Option<Arc<Mount>> {
        let root = self.root.get()?.upgrade()?;
        let ns =
            t.fs.lock()
                .unwrap_or_else(|e| e.into_inner())
                .mounts
                .clone();
        ns.all()
            .into_iter()
            .rev()
            .find(|m| Arc::ptr_eq(&m.root, &root))
    }
}

/// The root directory: `ptmx` and a node for each open master.
struct Root(Arc<Instance>);

impl InodeOps for Root {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, _t: &Task, _dir: &Arc<Inode>, name: &[u8]) -> Result<Arc<Inode>, Errno> {
        if name == b"ptmx" {
            return self.0.ptmx.get().cloned().ok_or(Errno::ENOENT);
        }
        let s = std::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
        let index: u32 = s.parse().map_err(|_| Errno::ENOENT)?;
        if index.to_string() != s {
            return Err(Errno::ENOENT);
        }
        self.0.node(index).ok_or(Errno::ENOENT)
    }

    fn open(
        &self,
        _t: &Task,
        _inode: &Arc<Inode>,
        _flags: u32,
    ) -> Result<Box<dyn FileImpl>, Errno> {
        Ok(Box::new(crate::vfs::DirFile::new()))
    }

    fn entries(&self, _t: &Task, _dir: &Arc<Inode>) -> Result<Vec<DirEntry>, Errno> {
        let mut out = vec![DirEntry {
            name: b"ptmx".to_vec(),
            ino: 2,
            kind: libc::DT_CHR,
        }];
        for (i, node) in self.0.pairs.lock().nodes.iter() {
            out.push(DirEntry {
                name: i.to_string().into_bytes(),
                ino: node.ino,
                kind: libc::DT_CHR,
            });
        }
        Ok(out)
    }
}

/// `/dev/pts/ptmx`.
struct Ptmx(Weak<Instance>);

impl InodeOps for Ptmx {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn open(&self, t: &Task, _inode: &Arc<Inode>, _flags: u32) -> Result<Box<dyn FileImpl>, Errno> {
        let inst = self.0.upgrade().ok_or(Errno::ENODEV)?;
        open_master(t, &inst)
    }
}

/// `/dev/pts/N`.
struct Pts(Weak<Terminal>);

impl InodeOps for Pts {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn open(&self, t: &Task, _inode: &Arc<Inode>, flags: u32) -> Result<Box<dyn FileImpl>, Errno> {
        let term = self.0.upgrade().ok_or(Errno::EIO)?;
        Ok(Box::new(ReplicaFile::open(t, &term, flags, true)?))
    }
}

fn open_master(t: &Task, inst: &Arc<Instance>) -> Result<Box<dyn FileImpl>, Errno> {
    let end = inst.new_pair(&t.kernel, t.creds.fsuid, t.creds.fsgid)?;
    Ok(Box::new(MasterFile { end }))
}

/// Opens devfs's `ptmx` (`inode`, character device 5:2): a pair in the
/// devpts mounted on `pts` in the same directory (ENODEV without one).
pub fn open_ptmx_beside(t: &Task, inode: &Arc<Inode>) -> Result<Box<dyn FileImpl>, Errno> {
    let (dir, _) = inode.parent().ok_or(Errno::ENODEV)?;
    let pts = dir.ops.lookup(t, &dir, b"pts").map_err(|_| Errno::ENODEV)?;
    let ns =
        t.fs.lock()
            .unwrap_or_else(|e| e.into_inner())
            .mounts
            .clone();
    let top = ns
        .all()
        .into_iter()
        .rev()
        .find(|m| m.parent.as_ref().is_some_and(|(_, i)| Arc::ptr_eq(i, &pts)))
        .ok_or(Errno::ENODEV)?;
    let root = top.root.clone();
    let inst = root
        .ops
        .as_any()
        .downcast_ref::<Root>()
        .map(|r| r.0.clone())
        .ok_or(Errno::ENODEV)?;
    open_master(t, &inst)
}

/// Opens `/dev/tty`: the caller's controlling terminal (ENXIO without
/// one). It never becomes anyone's controlling terminal by this open.
pub fn open_controlling(t: &Task, flags: u32) -> Result<Box<dyn FileImpl>, Errno> {
    let term = tty::controlling(&t.tg).ok_or(Errno::ENXIO)?;
    Ok(Box::new(ReplicaFile::open(t, &term, flags, false)?))
}

/// The master end of a pair: closing it (dropping it) hangs up the
/// replica and takes `/dev/pts/N` away.
pub struct MasterEnd {
    term: Arc<Terminal>,
    inst: Arc<Instance>,
}

impl MasterEnd {
    pub fn terminal(&self) -> &Arc<Terminal> {
        &self.term
    }
}

impl Drop for MasterEnd {
    fn drop(&mut self) {
        self.inst.pairs.lock().nodes.remove(&self.term.index);
        self.term.master_closed();
    }
}

/// A pair made for a host console in the sandbox's own `/dev/pts`
/// (unlocked): its master and an open replica file, at `/dev/pts/N`.
pub fn new_console_pair(
    kernel: &Arc<Kernel>,
    uid: u32,
    gid: u32,
) -> Result<(MasterEnd, Arc<FileDescription>), Errno> {
    let (mount, root) = kernel.ptys.sandbox_pts().ok_or(Errno::ENODEV)?;
    let inst = root
        .ops
        .as_any()
        .downcast_ref::<Root>()
        .map(|r| r.0.clone())
        .ok_or(Errno::ENODEV)?;
    let end = inst.new_pair(kernel, uid, gid)?;
    end.term.set_locked(false);
    end.term.replica_opened(true)?;
    let imp = ReplicaFile {
        term: end.term.clone(),
    };
    let inode = inst.node(end.term.index).ok_or(Errno::EIO)?;
    let loc = mount.map(|mount| Location { mount, inode });
    let file = FileDescription::new_at(libc::O_RDWR as u32, Box::new(imp), loc);
    Ok((end, file))
}

/// The sandbox's own `/dev/pts`, where consoles get their pairs; set when
/// the tree is built.
#[derive(Default)]
pub struct SandboxPts {
    at: std::sync::Mutex<Option<(Weak<Mount>, Arc<Inode>)>>,
}

impl SandboxPts {
    pub fn set(&self, mount: &Arc<Mount>) {
        *self.at.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Arc::downgrade(mount), mount.root.clone()));
    }

    /// Its mount (None once unmounted) and root.
    fn sandbox_pts(&self) -> Option<(Option<Arc<Mount>>, Arc<Inode>)> {
        let at = self.at.lock().unwrap_or_else(|e| e.into_inner());
        at.as_ref().map(|(m, r)| (m.upgrade(), r.clone()))
    }
}

/// Waits on `term` for any change after generation `gen` (or until
/// `deadline`); ERESTARTSYS when interrupted.
fn wait_change(
    t: &mut Task,
    term: &Terminal,
    gen: u64,
    deadline: Option<Instant>,
) -> Result<(), Errno> {
    let q = term.queue();
    match t.block_on(&[(&q, ALL_EVENTS)], deadline, |_| {
        (term.generation() != gen).then_some(Ok(()))
    }) {
        Ok(()) | Err(Errno::ETIMEDOUT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The master's open file.
struct MasterFile {
    end: MasterEnd,
}

impl MasterFile {
    fn term(&self) -> &Arc<Terminal> {
        &self.end.term
    }
}

impl FileImpl for MasterFile {
    fn read(&self, _f: &FileDescription, dst: &mut [u8], _o: Option<u64>) -> Result<usize, Errno> {
        self.term().master_read(dst)
    }

    fn write(&self, _f: &FileDescription, src: &[u8], _o: Option<u64>) -> Result<usize, Errno> {
        self.term().master_write(src)
    }

    fn positional(&self, _f: &FileDescription) -> bool {
        false
    }

    fn seek(&self, _f: &FileDescription, _o: i64, _w: i32) -> Result<u64, Errno> {
        Err(Errno::ESPIPE)
    }

    fn ioctl(&self, f: &FileDescription, t: &mut Task, request: u32, arg: u64) -> SysResult {
        tty_ioctl(t, f, self.term(), Some(&self.end.inst), request, arg)
    }

    fn readiness(&self, _f: &FileDescription, events: i16) -> i16 {
        self.term().master_readiness() & (events | libc::POLLHUP | libc::POLLERR)
    }

    fn waitq(&self, _f: &FileDescription) -> Option<Arc<WaitQueue>> {
        Some(self.term().queue())
    }

    fn supports_async(&self) -> bool {
        true
    }

    fn task_io(&self) -> Option<&dyn TaskIo> {
        Some(self)
    }

    fn name(&self) -> String {
        "/dev/ptmx".into()
    }
}

impl TaskIo for MasterFile {
    fn read(&self, f: &FileDescription, t: &mut Task, dst: &mut [u8]) -> Result<usize, Errno> {
        loop {
            let gen = self.term().generation();
            match self.term().master_read(dst) {
                Err(Errno::EAGAIN) if !f.nonblocking() => wait_change(t, self.term(), gen, None)?,
                r => return r,
            }
        }
    }

    fn write(&self, f: &FileDescription, t: &mut Task, src: &[u8]) -> Result<usize, Errno> {
        let mut done = 0;
        loop {
            let gen = self.term().generation();
            match self.term().master_write(&src[done..]) {
                Ok(n) => done += n,
                Err(Errno::EAGAIN) => {}
                Err(e) => return if done > 0 { Ok(done) } else { Err(e) },
            }
            if done == src.len() {
                return Ok(done);
            }
            if f.nonblocking() {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(Errno::EAGAIN)
                };
            }
            if let Err(e) = wait_change(t, self.term(), gen, None) {
                return if done > 0 { Ok(done) } else { Err(e) };
            }
        }
    }
}

/// A replica's open file (also what `/dev/tty` opens).
pub struct ReplicaFile {
    term: Arc<Terminal>,
}

impl ReplicaFile {
    /// Opens `term`'s replica with `flags`; with `acquire`, an open
    /// without O_NOCTTY may make it the caller's controlling terminal.
    fn open(
        t: &Task,
        term: &Arc<Terminal>,
        flags: u32,
        acquire: bool,
    ) -> Result<ReplicaFile, Errno> {
        term.replica_opened(t.creds.has_cap(CAP_SYS_ADMIN))?;
        let f = ReplicaFile { term: term.clone() };
        let acc = flags & libc::O_ACCMODE as u32;
        let readable = acc == libc::O_RDONLY as u32 || acc == libc::O_RDWR as u32;
        if acquire && flags & libc::O_NOCTTY as u32 == 0 {
            tty::acquire_on_open(t, term, readable);
        }
        Ok(f)
    }
}

impl Drop for ReplicaFile {
    fn drop(&mut self) {
        self.term.replica_closed();
    }
}

impl FileImpl for ReplicaFile {
    /// Without the caller (splice, sendfile): what is readable now.
    fn read(&self, _f: &FileDescription, dst: &mut [u8], _o: Option<u64>) -> Result<usize, Errno> {
        match self.term.replica_read(dst, Instant::now(), true)? {
            ReadAttempt::Done(n) => Ok(n),
            ReadAttempt::Wait(..) => Err(Errno::EAGAIN),
        }
    }

    fn write(&self, _f: &FileDescription, src: &[u8], _o: Option<u64>) -> Result<usize, Errno> {
        self.term.replica_write(src)
    }

    fn positional(&self, _f: &FileDescription) -> bool {
        false
    }

    fn seek(&self, _f: &FileDescription, _o: i64, _w: i32) -> Result<u64, Errno> {
        Err(Errno::ESPIPE)
    }

    fn ioctl(&self, f: &FileDescription, t: &mut Task, request: u32, arg: u64) -> SysResult {
        tty_ioctl(t, f, &self.term, None, request, arg)
    }

    fn readiness(&self, _f: &FileDescription, events: i16) -> i16 {
        self.term.replica_readiness() & (events | libc::POLLHUP | libc::POLLERR)
    }

    fn waitq(&self, _f: &FileDescription) -> Option<Arc<WaitQueue>> {
        Some(self.term.queue())
    }

    fn supports_async(&self) -> bool {
        true
    }

    fn task_io(&self) -> Option<&dyn TaskIo> {
        Some(self)
    }

    fn name(&self) -> String {
        format!("/dev/pts/{}", self.term.index)
    }
}

impl TaskIo for ReplicaFile {
    /// Linux's n_tty_read: job control first (SIGTTIN for a background
    /// reader), then a line or VMIN/VTIME's bytes.
    fn read(&self, f: &FileDescription, t: &mut Task, dst: &mut [u8]) -> Result<usize, Errno> {
        if !self.term.hung_up() {
            tty::check_change(t, &self.term, libc::SIGTTIN)?;
        }
        let started = Instant::now();
        loop {
            match self.term.replica_read(dst, started, f.nonblocking())? {
                ReadAttempt::Done(n) => return Ok(n),
                ReadAttempt::Wait(deadline, gen) => wait_change(t, &self.term, gen, deadline)?,
            }
        }
    }

    /// Linux's n_tty_write: with TOSTOP a background writer gets SIGTTOU;
    /// then everything is written, waiting for room.
    fn write(&self, f: &FileDescription, t: &mut Task, src: &[u8]) -> Result<usize, Errno> {
        if self.term.hung_up() {
            return Err(Errno::EIO);
        }
        if self.term.settings().lflag & libc::TOSTOP != 0 {
            tty::check_change(t, &self.term, libc::SIGTTOU)?;
        }
        let mut done = 0;
        loop {
            let gen = self.term.generation();
            match self.term.replica_write(&src[done..]) {
                Ok(n) => done += n,
                Err(Errno::EAGAIN) => {}
                Err(e) => return if done > 0 { Ok(done) } else { Err(e) },
            }
            if done == src.len() {
                return Ok(done);
            }
            if f.nonblocking() {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(Errno::EAGAIN)
                };
            }
            if let Err(e) = wait_change(t, &self.term, gen, None) {
                return if done > 0 { Ok(done) } else { Err(e) };
            }
        }
    }
}

// ----- ioctls -----

/// The ioctls of both ends (`inst` is the master's instance; None on the
/// replica). Settings, size and job control act on the replica from
/// either end, as Linux's `real_tty`; only the replica has job control.
fn tty_ioctl(
    t: &mut Task,
    f: &FileDescription,
    term: &Arc<Terminal>,
    inst: Option<&Arc<Instance>>,
    request: u32,
    arg: u64,
) -> SysResult {
    let side = if inst.is_some() {
        Side::Master
    } else {
        Side::Replica
    };
    let req = request as u64;
    if side == Side::Replica && term.hung_up() {
        // Linux's hung_up_tty_ioctl.
        return Err(if req == libc::TIOCSPGRP {
            Errno::ENOTTY
        } else {
            Errno::EIO
        });
    }
    // Changes by a background process of the terminal's session.
    let check = |t: &Task| {
        if side == Side::Replica {
            tty::check_change(t, term, libc::SIGTTOU)
        } else {
            Ok(())
        }
    };
    match req {
        libc::TCGETS => {
            t.mm.copy_out(arg, &term.settings().to_termios())?;
            Ok(0)
        }
        libc::TCGETS2 => {
            t.mm.copy_out(arg, &term.settings().to_termios2())?;
            Ok(0)
        }
        libc::TCGETA => {
            t.mm.copy_out(arg, &term.settings().to_termio())?;
            Ok(0)
        }
        libc::TCSETS | libc::TCSETSW | libc::TCSETSF => {
            check(t)?;
            let mut b = [0u8; 36];
            t.mm.copy_in(arg, &mut b)?;
            term.set_settings(Settings::from_termios(&b), req == libc::TCSETSF);
            Ok(0)
        }
        libc::TCSETS2 | libc::TCSETSW2 | libc::TCSETSF2 => {
            check(t)?;
            let mut b = [0u8; 44];
            t.mm.copy_in(arg, &mut b)?;
            term.set_settings(Settings::from_termios2(&b), req == libc::TCSETSF2);
            Ok(0)
        }
        libc::TCSETA | libc::TCSETAW | libc::TCSETAF => {
            check(t)?;
            let mut b = [0u8; 18];
            t.mm.copy_in(arg, &mut b)?;
            let s = term.settings().with_termio(&b);
            term.set_settings(s, req == libc::TCSETAF);
            Ok(0)
        }
        libc::TIOCGWINSZ => {
            t.mm.copy_out(arg, &term.winsize().to_bytes())?;
            Ok(0)
        }
        libc::TIOCSWINSZ => {
            let mut b = [0u8; 8];
            t.mm.copy_in(arg, &mut b)?;
            term.set_winsize(WinSize::from_bytes(&b));
            Ok(0)
        }
        libc::TCFLSH => {
            check(t)?;
            term.flush(side, arg as i32)?;
            Ok(0)
        }
        libc::TCXONC => {
            check(t)?;
            term.flow(side, arg as i32)?;
            Ok(0)
        }
        libc::TCSBRK | libc::TCSBRKP | libc::TIOCSBRK | libc::TIOCCBRK => {
            // A pty has no line to break, and no output waits in a driver.
            check(t)?;
            Ok(0)
        }
        libc::FIONREAD => {
            t.mm.write_obj(arg, &(term.readable_bytes(side) as i32))?;
            Ok(0)
        }
        libc::TIOCOUTQ => {
            // A pty keeps no output in a driver: Linux answers 0.
            t.mm.write_obj(arg, &0i32)?;
            Ok(0)
        }
        libc::TIOCSCTTY => {
            tty::tiocsctty(t, term, arg as i32, f.readable())?;
            Ok(0)
        }
        libc::TIOCNOTTY => {
            if side == Side::Master {
                return Err(Errno::ENOTTY);
            }
            tty::tiocnotty(t, term)?;
            Ok(0)
        }
        libc::TIOCGPGRP => {
            let pg = tty::tiocgpgrp(t, term, side == Side::Master)?;
            t.mm.write_obj(arg, &pg)?;
            Ok(0)
        }
        libc::TIOCGSID => {
            let sid = tty::tiocgsid(t, term, side == Side::Master)?;
            t.mm.write_obj(arg, &sid)?;
            Ok(0)
        }
        libc::TIOCSPGRP => {
            match tty::check_change(t, term, libc::SIGTTOU) {
                Err(Errno::EIO) => return Err(Errno::ENOTTY),
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            let pg: i32 = t.mm.read_obj(arg)?;
            tty::tiocspgrp(t, term, pg)?;
            Ok(0)
        }
        libc::TIOCGETD => {
            t.mm.write_obj(arg, &0i32)?;
            Ok(0)
        }
        libc::TIOCSETD => {
            check(t)?;
            let ld: i32 = t.mm.read_obj(arg)?;
            if ld == 0 {
                return Ok(0);
            }
            crate::syscalls::unimplemented(t, &format!("TIOCSETD line discipline {ld}"))
        }
        libc::TIOCGDEV => {
            t.mm.write_obj(arg, &term.encoded_device())?;
            Ok(0)
        }
        libc::TIOCEXCL | libc::TIOCNXCL => {
            term.set_exclusive(req == libc::TIOCEXCL);
            Ok(0)
        }
        libc::TIOCGEXCL => {
            t.mm.write_obj(arg, &(term.exclusive() as i32))?;
            Ok(0)
        }
        libc::TIOCGSOFTCAR => {
            let on = term.settings().cflag & libc::CLOCAL != 0;
            t.mm.write_obj(arg, &(on as i32))?;
            Ok(0)
        }
        libc::TIOCSSOFTCAR => {
            let v: i32 = t.mm.read_obj(arg)?;
            let mut s = term.settings();
            s.cflag = (s.cflag & !libc::CLOCAL) | if v != 0 { libc::CLOCAL } else { 0 };
            term.set_settings(s, false);
            Ok(0)
        }
        libc::TIOCGLCKTRMIOS => {
            // Nothing of a pty's settings is locked.
            t.mm.copy_out(arg, &[0u8; 36])?;
            Ok(0)
        }
        // The master's own requests; the replica knows none of them.
        libc::TIOCGPTN
        | libc::TIOCSPTLCK
        | libc::TIOCGPTLCK
        | libc::TIOCGPKT
        | libc::TIOCPKT
        | libc::TIOCSIG
            if side == Side::Replica =>
        {
            Err(Errno::ENOTTY)
        }
        libc::TIOCGPTN => {
            t.mm.write_obj(arg, &term.index)?;
            Ok(0)
        }
        libc::TIOCSPTLCK => {
            let v: i32 = t.mm.read_obj(arg)?;
            term.set_locked(v != 0);
            Ok(0)
        }
        libc::TIOCGPTLCK => {
            t.mm.write_obj(arg, &(term.locked() as i32))?;
            Ok(0)
        }
        libc::TIOCGPKT => {
            t.mm.write_obj(arg, &0i32)?;
            Ok(0)
        }
        libc::TIOCPKT => {
            let v: i32 = t.mm.read_obj(arg)?;
            if v == 0 {
                return Ok(0);
            }
            crate::syscalls::unimplemented(t, "TIOCPKT packet mode")
        }
        libc::TIOCSIG => {
            // Linux's pty_signal: a signal character's signal only.
            let sig = arg as i32;
            if ![libc::SIGINT, libc::SIGQUIT, libc::SIGTSTP].contains(&sig) {
                return Err(Errno::EINVAL);
            }
            term.signal_foreground(sig);
            Ok(0)
        }
        libc::TIOCGPTPEER => match inst {
            Some(inst) => open_peer(t, term, inst, arg as u32),
            None => Err(Errno::EIO),
        },
        libc::TIOCSTI => crate::syscalls::unimplemented(t, "ioctl TIOCSTI"),
        libc::TIOCCONS => crate::syscalls::unimplemented(t, "ioctl TIOCCONS"),
        libc::TIOCVHANGUP => crate::syscalls::unimplemented(t, "ioctl TIOCVHANGUP"),
        libc::TIOCSLCKTRMIOS => crate::syscalls::unimplemented(t, "ioctl TIOCSLCKTRMIOS"),
        // Modem lines, serial ports, consoles: not a pty's (Linux's
        // answer too).
        _ => Err(Errno::ENOTTY),
    }
}

/// TIOCGPTPEER: opens the replica of the master's pair with `flags`, at
/// its place in the master's devpts; the new fd.
fn open_peer(t: &mut Task, term: &Arc<Terminal>, inst: &Arc<Instance>, flags: u32) -> SysResult {
    let inode = inst.node(term.index).ok_or(Errno::EIO)?;
    let imp = ReplicaFile::open(t, term, flags, true)?;
    let loc = inst.mount_for(t).map(|mount| Location { mount, inode });
    let dropped =
        (libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_TRUNC | libc::O_CLOEXEC) as u32;
    let file = FileDescription::new_at(flags & !dropped, Box::new(imp), loc);
    let limit =
        t.tg.limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cur(libc::RLIMIT_NOFILE);
    let cloexec = flags & libc::O_CLOEXEC as u32 != 0;
    let fd = t.fds.install(file, cloexec, 0, limit).map_err(|e| {
        if e == Errno::EINVAL {
            Errno::EMFILE
        } else {
            e
        }
    })?;
    Ok(fd as u64)
}
