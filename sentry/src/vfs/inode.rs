//! Inodes and file systems.
//!
//! An [`Inode`] is one file of one file system: its metadata (mode,
//! owner, times, size, link count) and its [`InodeOps`], which say what
//! kind of file it is. Directories also remember their parent and their
//! name in it, which is how `..`, `getcwd` and `/proc/[pid]/cwd` find paths
//! (a directory has exactly one parent).

use crate::sync::LockExt;
use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::errno::Errno;

use super::FileImpl;
use crate::kernel::task::Task;

/// A time stamp, as in `struct timespec`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

impl Timespec {
    pub fn now() -> Timespec {
        let ts = crate::hostcall::clock_gettime(libc::CLOCK_REALTIME).unwrap_or(libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        });
        Timespec {
            sec: ts.tv_sec,
            nsec: ts.tv_nsec,
        }
    }
}

/// What `stat` shows of an inode.
#[derive(Clone, Debug)]
pub struct InodeMeta {
    /// File type and permission bits (`S_IFMT | 07777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub size: u64,
    /// Bytes of storage in use.
    pub blocks_bytes: u64,
    pub rdev: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
    pub btime: Timespec,
}

impl InodeMeta {
    pub fn new(mode: u32, uid: u32, gid: u32) -> InodeMeta {
        let now = Timespec::now();
        InodeMeta {
            mode,
            uid,
            gid,
            nlink: 1,
            size: 0,
            blocks_bytes: 0,
            rdev: 0,
            atime: now,
            mtime: now,
            ctime: now,
            btime: now,
        }
    }

    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }
}

/// What `statfs` shows of a file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsStats {
    pub magic: i64,
    pub block_size: i64,
    /// Size in blocks; 0: none (statfs then shows 0 blocks, 0 free).
    pub blocks: u64,
    pub blocks_free: u64,
    /// Blocks in use (tmpfs: pages of its files).
    pub blocks_used: u64,
    pub files: u64,
    pub files_free: u64,
    pub name_max: i64,
}

/// One mounted instance of a file system type.
pub struct Filesystem {
    /// `st_dev` of its inodes.
    pub dev: u64,
    /// Type name as in /proc/filesystems ("tmpfs", "proc", ...).
    pub type_name: &'static str,
    /// Source shown in /proc/mounts.
    pub source: String,
    next_ino: AtomicU64,
    pub stats: Mutex<FsStats>,
    /// Mount options shown in /proc/mounts (besides rw/ro).
    pub options: String,
}

impl Filesystem {
    pub fn new(
        vfs: &super::VfsState,
        type_name: &'static str,
        source: &str,
        magic: i64,
        options: &str,
    ) -> Arc<Filesystem> {
        Arc::new(Filesystem {
            dev: vfs.new_dev(),
            type_name,
            source: source.to_string(),
            next_ino: AtomicU64::new(1),
            stats: Mutex::new(FsStats {
                magic,
                block_size: 4096,
                name_max: 255,
                ..FsStats::default()
            }),
            options: options.to_string(),
        })
    }

    pub fn next_ino(&self) -> u64 {
        self.next_ino.fetch_add(1, Ordering::Relaxed)
    }
}

/// An entry of a directory listing.
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: u64,
    /// `DT_*` type.
    pub kind: u8,
}

pub fn dt_type(mode: u32) -> u8 {
    match mode & libc::S_IFMT {
        libc::S_IFREG => libc::DT_REG,
        libc::S_IFDIR => libc::DT_DIR,
        libc::S_IFLNK => libc::DT_LNK,
        libc::S_IFCHR => libc::DT_CHR,
        libc::S_IFBLK => libc::DT_BLK,
        libc::S_IFIFO => libc::DT_FIFO,
        libc::S_IFSOCK => libc::DT_SOCK,
        _ => libc::DT_UNKNOWN,
    }
}

/// A file made and opened at once (O_TMPFILE): its inode and its open
/// implementation.
pub type OpenedNew = (Arc<Inode>, Box<dyn FileImpl>);

/// A metadata change: each field that is set changes.
#[derive(Clone, Debug, Default)]
pub struct AttrChange {
    /// Permission bits (with the file type bits, as in `InodeMeta`).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<Timespec>,
    pub mtime: Option<Timespec>,
}

/// What to create in a directory.
#[derive(Clone, Debug)]
pub enum NewNode {
    /// A regular file, a fifo, a socket or a device: `mode` has the type.
    Node {
        mode: u32,
        rdev: u64,
    },
    Directory {
        mode: u32,
    },
    Symlink {
        target: Vec<u8>,
    },
}

/// A location a magic link (`/proc/self/fd/N`, `/proc/self/exe`) jumps
/// to, rather than a path to resolve.
pub enum MagicTarget {
    Location(super::mount::Location),
    /// An open file without a location in the tree (a pipe, a host fd).
    File(Arc<super::FileDescription>),
}

/// What is about to change in an inode, for [`InodeOps::prepare_change`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Mode, owner or times (chmod, chown, utimes).
    Metadata,
    /// An extended attribute is set or removed.
    Xattr,
    /// The size (truncate).
    Size,
    /// A new hard link to it.
    Link,
    /// It is renamed or exchanged.
    Rename,
}

/// What a kind of inode does. Defaults give Linux's answers for inodes
/// that lack the operation.
pub trait InodeOps: Send + Sync {
    fn as_any(&self) -> &dyn Any;

    /// Finds `name` (never "." or "..") in this directory.
    fn lookup(&self, _t: &Task, _dir: &Arc<Inode>, _name: &[u8]) -> Result<Arc<Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }

    /// The directory's entries, without "." and "..".
    fn entries(&self, _t: &Task, _dir: &Arc<Inode>) -> Result<Vec<DirEntry>, Errno> {
        Err(Errno::ENOTDIR)
    }

    /// Creates `name` in this directory.
    fn create(
        &self,
        _t: &Task,
        _dir: &Arc<Inode>,
        _name: &[u8],
        _node: NewNode,
    ) -> Result<Arc<Inode>, Errno> {
        Err(Errno::EPERM)
    }

    /// Adds an entry `name` for `target` (link, and the second half of
    /// rename). `replace` allows replacing an existing entry.
    fn insert(
        &self,
        _dir: &Arc<Inode>,
        _name: &[u8],
        _target: &Arc<Inode>,
        _replace: bool,
    ) -> Result<Option<Arc<Inode>>, Errno> {
        Err(Errno::EPERM)
    }

    /// Removes the entry `name`, returning its inode.
    fn remove(&self, _dir: &Arc<Inode>, _name: &[u8]) -> Result<Arc<Inode>, Errno> {
        Err(Errno::EPERM)
    }

    /// The target of a symbolic link.
    fn readlink(&self, _t: &Task, _inode: &Arc<Inode>) -> Result<Vec<u8>, Errno> {
        Err(Errno::EINVAL)
    }

    /// For magic links: where following the link goes.
    fn follow(&self, _t: &Task, _inode: &Arc<Inode>) -> Option<Result<MagicTarget, Errno>> {
        None
    }

    /// Opens the inode: the file description's implementation.
    fn open(
        &self,
        _t: &Task,
        _inode: &Arc<Inode>,
        _flags: u32,
    ) -> Result<Box<dyn FileImpl>, Errno> {
        Err(Errno::ENXIO)
    }

    /// Sets the size of a regular file.
    fn truncate(&self, _inode: &Arc<Inode>, _size: u64) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }

    /// Whether the file system lets the inode's metadata be changed
    /// (chmod, chown, utimes). Synthetic files say no with EPERM.
    fn settable(&self) -> Result<(), Errno> {
        Ok(())
    }

    /// O_TMPFILE in this directory: an unnamed regular file (`mode` with
    /// its type) and its open implementation, for file systems that make
    /// one themselves (a host directory through the gofer). `None`: the
    /// VFS makes it with `create` and `remove`.
    fn create_tmpfile(
        &self,
        _t: &Task,
        _dir: &Arc<Inode>,
        _mode: u32,
        _flags: u32,
    ) -> Option<Result<OpenedNew, Errno>> {
        None
    }

    /// Applies a metadata change where the file's metadata really lives
    /// (a host file, through the gofer), after the VFS has checked it and
    /// before it updates the inode's own copy. By default the inode's
    /// metadata is the file's, and there is nothing else to do.
    fn set_attr(&self, _inode: &Arc<Inode>, _change: &AttrChange) -> Result<(), Errno> {
        Ok(())
    }

    /// Renames `old_name` in `old_dir` (this directory) to `new_name` in
    /// `new_dir` of the same file system, replacing what is there or,
    /// with `exchange`, swapping the two, once the VFS has checked every
    /// rule. `None`: the file system has no rename of its own, and the
    /// VFS moves the entry with `remove` and `insert`.
    fn rename(
        &self,
        _old_dir: &Arc<Inode>,
        _old_name: &[u8],
        _new_dir: &Arc<Inode>,
        _new_name: &[u8],
        _exchange: bool,
    ) -> Option<Result<(), Errno>> {
        None
    }

    /// Called, with the caller's task, before the VFS changes the inode as
    /// `change` says: an overlay copies the file up here (or refuses, as
    /// it refuses to rename merged directories with EXDEV).
    fn prepare_change(&self, _t: &Task, _inode: &Arc<Inode>, _change: Change) -> Result<(), Errno> {
        Ok(())
    }

    /// Called after the VFS changed the inode's metadata or extended
    /// attributes itself: an overlay writes them through to its upper
    /// layer.
    fn changed(&self, _inode: &Arc<Inode>) {}

    /// Extended attributes in the `user.` namespace.
    fn xattrs(&self) -> Option<&Mutex<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>> {
        None
    }

    /// Extended attributes kept outside the sentry (a host file's, through
    /// the gofer): `user.*` only; the VFS's checks come first.
    fn remote_xattrs(&self) -> Option<&dyn RemoteXattrs> {
        None
    }

    /// Whether [`truncate`](Self::truncate) runs even when the size stays
    /// (the file system decides the times then: a host file system's own
    /// rules, ext4 moving mtime and ctime).
    fn truncate_same_size(&self) -> bool {
        false
    }

    /// The inode that holds this file's data, for a file system stacked on
    /// another (an overlay file's upper copy); operations on the data the
    /// VFS does itself (fallocate) go there.
    fn data_inode(&self) -> Option<Arc<Inode>> {
        None
    }

    /// The data inode changed under the VFS: show its size, blocks and
    /// times.
    fn data_changed(&self, _inode: &Arc<Inode>) {}

    /// `fallocate` of a regular file whose data lives elsewhere (a host
    /// file), once the VFS checked the mode, the range and the
    /// description. None: the VFS's own (tmpfs) answer.
    fn fallocate(
        &self,
        _inode: &Arc<Inode>,
        _mode: i32,
        _offset: u64,
        _len: u64,
    ) -> Option<Result<(), Errno>> {
        None
    }
}

/// Extended attributes of a file system that keeps them elsewhere; errors
/// are the host's (ENODATA, ERANGE, ENOSPC, EEXIST, ...).
pub trait RemoteXattrs {
    fn get(&self, name: &[u8]) -> Result<Vec<u8>, Errno>;
    /// `flags`: 0, XATTR_CREATE or XATTR_REPLACE.
    fn set(&self, name: &[u8], value: &[u8], flags: u32) -> Result<(), Errno>;
    /// Names in the host's order.
    fn list(&self) -> Result<Vec<Vec<u8>>, Errno>;
    fn remove(&self, name: &[u8]) -> Result<(), Errno>;
}

/// One file.
pub struct Inode {
    pub ino: u64,
    pub fs: Arc<Filesystem>,
    pub meta: Mutex<InodeMeta>,
    pub ops: Box<dyn InodeOps>,
    /// Directories: the parent and the name there. Other files: the last
    /// place they were linked, for names in /proc.
    pub parent: Mutex<Option<(Weak<Inode>, Vec<u8>)>>,
    /// Advisory locks (flock and record locks) on the file.
    pub locks: super::lock::FileLocks,
    /// inotify watches on the file.
    pub watches: super::inotify::Watches,
}

impl Inode {
    pub fn new(fs: &Arc<Filesystem>, meta: InodeMeta, ops: Box<dyn InodeOps>) -> Arc<Inode> {
        Arc::new(Inode {
            ino: fs.next_ino(),
            fs: fs.clone(),
            meta: Mutex::new(meta),
            ops,
            parent: Mutex::new(None),
            locks: Default::default(),
            watches: Default::default(),
        })
    }

    pub fn meta(&self) -> InodeMeta {
        self.meta.locked().clone()
    }

    pub fn mode(&self) -> u32 {
        self.meta.locked().mode
    }

    pub fn is_dir(&self) -> bool {
        self.mode() & libc::S_IFMT == libc::S_IFDIR
    }

    pub fn is_symlink(&self) -> bool {
        self.mode() & libc::S_IFMT == libc::S_IFLNK
    }

    pub fn set_parent(&self, parent: &Arc<Inode>, name: &[u8]) {
        *self.parent.locked() = Some((Arc::downgrade(parent), name.to_vec()));
    }

    pub fn parent(&self) -> Option<(Arc<Inode>, Vec<u8>)> {
        let p = self.parent.locked();
        p.as_ref()
            .and_then(|(w, n)| w.upgrade().map(|i| (i, n.clone())))
    }

    /// Updates times: `a`ccess, `m`odification, `c`hange.
    pub fn touch(&self, a: bool, m: bool, c: bool) {
        let now = Timespec::now();
        let mut meta = self.meta.locked();
        if a {
            meta.atime = now;
        }
        if m {
            meta.mtime = now;
        }
        if c {
            meta.ctime = now;
        }
    }

    /// Records a read access as a `relatime` mount does (Linux's default):
    /// atime moves only when it is not newer than mtime or ctime, or a day
    /// old.
    pub fn touch_atime(&self) {
        let now = Timespec::now();
        let mut m = self.meta.locked();
        if m.atime <= m.mtime || m.atime <= m.ctime || now.sec - m.atime.sec >= 24 * 3600 {
            m.atime = now;
        }
    }

    /// `struct stat` for this inode.
    pub fn stat(&self) -> libc::stat {
        let m = self.meta();
        let mut st: libc::stat = crate::hostcall::zeroed();
        st.st_dev = self.fs.dev;
        st.st_ino = self.ino;
        st.st_nlink = m.nlink;
        st.st_mode = m.mode;
        st.st_uid = m.uid;
        st.st_gid = m.gid;
        st.st_rdev = m.rdev;
        st.st_size = m.size as i64;
        st.st_blksize = 4096;
        st.st_blocks = m.blocks_bytes.div_ceil(512) as i64;
        st.st_atime = m.atime.sec;
        st.st_atime_nsec = m.atime.nsec;
        st.st_mtime = m.mtime.sec;
        st.st_mtime_nsec = m.mtime.nsec;
        st.st_ctime = m.ctime.sec;
        st.st_ctime_nsec = m.ctime.nsec;
        st
    }
}

/// `makedev` as glibc encodes device numbers.
pub fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (major as u64, minor as u64);
    ((ma & 0xfffff000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffffff00) << 12) | (mi & 0xff)
}

pub fn major(dev: u64) -> u32 {
    (((dev >> 32) & 0xfffff000) | ((dev >> 8) & 0xfff)) as u32
}

pub fn minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffffff00) | (dev & 0xff)) as u32
}
