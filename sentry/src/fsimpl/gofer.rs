//! Host files through the gofer: a file system whose inodes are nodes the
//! gofer holds, reached by handles over its socket.
//!
//! - Lookups walk one name (the VFS resolves a path a component at a
//!   time) and keep the child: a directory's children are remembered by
//!   name as weak references, and the most recently looked-up inodes are
//!   kept alive by a bounded list, so repeated lookups cost no round trip
//!   while memory and the gofer's open nodes stay bounded. An inode that
//!   nothing holds any more gives its handle back, in batches.
//! - Attributes are read when the node is found and kept: the sandbox's
//!   own changes update them (this is gVisor's "exclusive" policy, right
//!   for a container's image and for bind mounts the container alone
//!   changes; a file changed from outside shows its new attributes once
//!   its inode has dropped out of the cache and is found again).
//! - Opening a regular file asks the gofer for a host fd (read-only or
//!   read-write as the open asks) and reads and writes it directly, with
//!   no round trip through the gofer; `fallocate` and `SEEK_DATA`/
//!   `SEEK_HOLE` act on that fd too. After a write the size and blocks are
//!   the host file's (`fstat` of the fd).
//! - `mmap` maps pages cached in the memory file ([`crate::mm::cached`]),
//!   one cache per file, coherent with the sandbox's reads and writes
//!   (which go through it once it exists). Private mappings copy on
//!   write. Shared mappings made from a description open for writing
//!   write the cached pages, which go back to the host file (every cached
//!   chunk, as there are no dirty bits) on `msync` and when the last VMA
//!   of that mapping goes (munmap, exit, exec).
//! - Extended attributes in the `user.` namespace are the host file's,
//!   through the gofer; the gofer serves no others (`trusted.` and
//!   `security.` attributes of host files are the host's business), so
//!   those answer EOPNOTSUPP.
//! - Changes (create, mkdir, mknod of fifos and sockets, symlink, link,
//!   unlink, rename, chmod, chown, utimes, truncate) are one request each.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use gofer::{Attr, Client, Handle, NodeInfo, SetAttr};

use crate::errno::Errno;
use crate::kernel::task::Task;
use crate::mm::cached::CachedFile;
use crate::mm::memory_file::MemoryFile;
use crate::mm::MappableFile;
use crate::sync::LockExt;
use crate::vfs::inode::{
    AttrChange, DirEntry, Filesystem, FsStats, Inode, InodeMeta, InodeOps, NewNode, RemoteXattrs,
    Timespec,
};
use crate::vfs::{FileDescription, FileImpl, VfsState};

/// How many recently looked-up inodes are kept alive.
const KEEP_RECENT: usize = 8192;
/// Handles given back in one close request.
const CLOSE_BATCH: usize = 128;

/// What every inode of one gofer mount shares.
pub struct GoferMount {
    client: Arc<Client>,
    mf: Arc<MemoryFile>,
    fs: OnceLock<Weak<Filesystem>>,
    /// Recently used inodes, kept alive (may hold one inode many times).
    recent: Mutex<VecDeque<Arc<Inode>>>,
    /// Handles of dropped inodes, not yet given back.
    to_close: Mutex<Vec<Handle>>,
    /// Read-only host fds kept by inodes for their next opens.
    readers: std::sync::atomic::AtomicUsize,
    /// The RWF_* flags (of RWF_NOWAIT, RWF_DONTCACHE) the host file
    /// system takes on regular files; `u32::MAX` until asked.
    rw_flags: AtomicU32,
}

/// How many read-only host fds one mount's inodes keep at the most.
const MAX_KEPT_READERS: usize = 1024;

impl GoferMount {
    /// Whether one more inode may keep a read-only fd.
    fn keep_reader(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.readers
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < MAX_KEPT_READERS).then_some(n + 1)
            })
            .is_ok()
    }

    fn keep(&self, inode: &Arc<Inode>) {
        let mut r = self.recent.locked();
        if r.back().is_some_and(|b| Arc::ptr_eq(b, inode)) {
            return;
        }
        r.push_back(inode.clone());
        if r.len() > KEEP_RECENT {
            r.pop_front();
        }
    }

    fn release(&self, h: Handle) {
        let batch = {
            let mut c = self.to_close.locked();
            c.push(h);
            if c.len() < CLOSE_BATCH {
                return;
            }
            std::mem::take(&mut *c)
        };
        if let Err(e) = self.client.close(&batch) {
            tracing::debug!("giving back gofer handles: {e:?}");
        }
    }

    fn fs(&self) -> Arc<Filesystem> {
        self.fs
            .get()
            .and_then(Weak::upgrade)
            .expect("a gofer mount's file system outlives its inodes")
    }

    /// An inode for a node the gofer just gave us.
    fn inode(self: &Arc<Self>, info: NodeInfo, parent: Option<(&Arc<Inode>, &[u8])>) -> Arc<Inode> {
        let kind = match info.attr.file_type() {
            libc::S_IFDIR => Kind::Dir {
                children: Mutex::new(HashMap::new()),
                parent: Mutex::new(parent.map(|(d, _)| d.clone())),
            },
            libc::S_IFLNK => Kind::Symlink(OnceLock::new()),
            libc::S_IFREG => Kind::Regular(RegularNode::default()),
            libc::S_IFIFO => Kind::Fifo(crate::fsimpl::pipe::FifoNode::default()),
            _ => Kind::Other,
        };
        let node = GoferNode {
            mount: self.clone(),
            handle: info.handle,
            kind,
        };
        let inode = Arc::new(Inode {
            ino: info.attr.ino,
            fs: self.fs(),
            meta: Mutex::new(meta_of(&info.attr)),
            ops: Box::new(node),
            parent: Mutex::new(None),
            locks: Default::default(),
            watches: Default::default(),
        });
        if let Some((dir, name)) = parent {
            inode.set_parent(dir, name);
        }
        self.keep(&inode);
        inode
    }
}

fn ts(t: gofer::Timespec) -> Timespec {
    Timespec {
        sec: t.sec,
        nsec: t.nsec,
    }
}

fn meta_of(a: &Attr) -> InodeMeta {
    InodeMeta {
        mode: a.mode,
        uid: a.uid,
        gid: a.gid,
        nlink: a.nlink,
        size: a.size,
        blocks_bytes: a.blocks * 512,
        rdev: a.rdev,
        atime: ts(a.atime),
        mtime: ts(a.mtime),
        ctime: ts(a.ctime),
        btime: ts(a.ctime),
    }
}

fn errno(e: gofer::Errno) -> Errno {
    Errno::from_raw(e.0)
}

/// A gofer mount's file system and root inode, for the export `index` of
/// the gofer behind `client`.
pub fn new_gofer_fs(
    vfs: &VfsState,
    mf: &Arc<MemoryFile>,
    client: &Arc<Client>,
    index: usize,
    source: &str,
) -> Result<(Arc<Filesystem>, Arc<Inode>), Errno> {
    let info = client.mounts().get(index).cloned().ok_or(Errno::ENOENT)?;
    let fs = Filesystem::new(
        vfs,
        "9p",
        source,
        0x0102_1997,
        "trans=fd,cache=remote_revalidating",
    );
    if let Ok(s) = client.statfs(info.root) {
        *fs.stats.locked() = FsStats {
            magic: 0x0102_1997,
            block_size: s.bsize as i64,
            blocks: s.blocks,
            blocks_free: s.bfree,
            blocks_used: s.blocks.saturating_sub(s.bfree),
            files: s.files,
            files_free: s.ffree,
            name_max: s.namelen as i64,
        };
    }
    let mount = Arc::new(GoferMount {
        client: client.clone(),
        mf: mf.clone(),
        fs: OnceLock::new(),
        recent: Mutex::new(VecDeque::new()),
        to_close: Mutex::new(Vec::new()),
        readers: Default::default(),
        rw_flags: AtomicU32::new(u32::MAX),
    });
    let _ = mount.fs.set(Arc::downgrade(&fs));
    let root = mount.inode(
        NodeInfo {
            handle: info.root,
            attr: info.attr,
        },
        None,
    );
    Ok((fs, root))
}

/// A directory's children found so far, by name.
type Children = Mutex<HashMap<Vec<u8>, Weak<Inode>>>;

enum Kind {
    Dir {
        children: Children,
        /// Kept alive for `..` while this directory lives.
        parent: Mutex<Option<Arc<Inode>>>,
    },
    Symlink(OnceLock<Vec<u8>>),
    Regular(RegularNode),
    /// A fifo of the host tree is a pipe of the sandbox's own.
    Fifo(crate::fsimpl::pipe::FifoNode),
    Other,
}

/// What a regular file keeps.
#[derive(Default)]
struct RegularNode {
    /// The file's pages as mappings share them, once it is mapped.
    cache: Mutex<Option<Arc<CachedFile>>>,
    /// The host fds of its open descriptions that may write, for
    /// operations on the file rather than on one description (fallocate).
    writers: Mutex<Vec<Weak<OwnedFd>>>,
    /// A read-only host fd shared by every read-only open of the file:
    /// reads are positional (the sandbox keeps the offsets), so one fd
    /// serves them all, and an open after the first costs no request.
    reader: Mutex<Option<Arc<OwnedFd>>>,
}

impl RegularNode {
    fn cache(&self) -> Option<Arc<CachedFile>> {
        self.cache.locked().clone()
    }

    fn writer(&self) -> Option<Arc<OwnedFd>> {
        let mut w = self.writers.locked();
        w.retain(|f| f.strong_count() > 0);
        w.iter().find_map(Weak::upgrade)
    }
}

/// Sets the inode's mode, size, blocks and times from the host file's
/// `fstat` (a write or fallocate by the sentry, which has no CAP_FSETID,
/// may have dropped set-user-ID there).
fn refresh_from_fd(inode: &Inode, fd: RawFd) {
    if let Ok(st) = crate::hostcall::fstat(fd) {
        let mut m = inode.meta.locked();
        m.mode = st.st_mode;
        m.size = st.st_size as u64;
        m.blocks_bytes = st.st_blocks as u64 * 512;
        m.mtime = Timespec {
            sec: st.st_mtime,
            nsec: st.st_mtime_nsec,
        };
        m.ctime = Timespec {
            sec: st.st_ctime,
            nsec: st.st_ctime_nsec,
        };
    }
}

/// One node of the gofer.
pub struct GoferNode {
    mount: Arc<GoferMount>,
    handle: Handle,
    kind: Kind,
}

impl Drop for GoferNode {
    fn drop(&mut self) {
        if let Kind::Regular(r) = &self.kind {
            if r.reader.locked().take().is_some() {
                self.mount
                    .readers
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.mount.release(self.handle);
    }
}

fn node(inode: &Inode) -> Option<&GoferNode> {
    inode.ops.as_any().downcast_ref::<GoferNode>()
}

impl GoferNode {
    fn client(&self) -> &Client {
        &self.mount.client
    }

    fn children(&self) -> Result<&Children, Errno> {
        match &self.kind {
            Kind::Dir { children, .. } => Ok(children),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn cached(&self, name: &[u8]) -> Option<Arc<Inode>> {
        let c = self.children().ok()?.locked();
        c.get(name).and_then(Weak::upgrade)
    }

    fn remember(&self, name: &[u8], inode: &Arc<Inode>) {
        if let Ok(c) = self.children() {
            let mut c = c.locked();
            if c.len() >= 1024 && c.len().is_power_of_two() {
                c.retain(|_, w| w.strong_count() > 0);
            }
            c.insert(name.to_vec(), Arc::downgrade(inode));
        }
    }

    fn forget(&self, name: &[u8]) {
        if let Ok(c) = self.children() {
            c.locked().remove(name);
        }
    }

    fn regular(&self) -> Option<&RegularNode> {
        match &self.kind {
            Kind::Regular(r) => Some(r),
            _ => None,
        }
    }

    /// The page cache of a regular file, made on first use and kept with
    /// the inode.
    fn pages(&self, inode: &Inode) -> Option<Arc<CachedFile>> {
        let r = self.regular()?;
        let mut c = r.cache.locked();
        if let Some(p) = c.as_ref() {
            return Some(p.clone());
        }
        let fd = self.client().open(self.handle, libc::O_RDONLY).ok()?;
        let name = format!("gofer:{}", inode.ino);
        let p = CachedFile::new(&self.mount.mf, fd, name).ok()?;
        // The sandbox's idea of the size (its own writes) is the cache's.
        p.set_size(inode.meta.locked().size);
        *c = Some(p.clone());
        Some(p)
    }

    /// Which of `flags` (RWF_NOWAIT, RWF_DONTCACHE) the host file system
    /// takes for reads and writes of regular files: asked once per mount,
    /// with a one-byte `preadv2` of this file with each flag (EOPNOTSUPP:
    /// no).
    fn host_rw_flags(&self) -> u32 {
        const PROBED: [u32; 2] = [0x08 /* RWF_NOWAIT */, 0x80 /* RWF_DONTCACHE */];
        let known = self.mount.rw_flags.load(Ordering::Relaxed);
        if known != u32::MAX {
            return known;
        }
        let Ok(fd) = self.client().open(self.handle, libc::O_RDONLY) else {
            return 0;
        };
        let mut ok = 0;
        for f in PROBED {
            let mut b = [0u8; 1];
            let iov = libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: 1,
            };
            // SAFETY: a one-byte read into our own buffer from our own fd.
            let n = unsafe { libc::preadv2(fd.as_raw_fd(), &iov, 1, 0, f as i32) };
            if n >= 0 || Errno::last() != Errno::EOPNOTSUPP {
                ok |= f;
            }
        }
        self.mount.rw_flags.store(ok, Ordering::Relaxed);
        ok
    }
}

/// For `preadv2`/`pwritev2`: the RWF_* flags of RWF_NOWAIT and
/// RWF_DONTCACHE that a regular file of a gofer mount takes (its host
/// file system's answer); None for other files.
pub fn host_rw_flags(inode: &Inode) -> Option<u32> {
    let n = node(inode)?;
    n.regular()?;
    Some(n.host_rw_flags())
}

impl InodeOps for GoferNode {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, _t: &Task, dir: &Arc<Inode>, name: &[u8]) -> Result<Arc<Inode>, Errno> {
        self.children()?;
        if let Some(i) = self.cached(name) {
            self.mount.keep(&i);
            return Ok(i);
        }
        let w = self.client().walk(self.handle, &[name]).map_err(errno)?;
        let Some(info) = w.nodes.into_iter().next() else {
            return Err(Errno::from_raw(if w.status != 0 {
                w.status
            } else {
                libc::ENOENT
            }));
        };
        let inode = self.mount.inode(info, Some((dir, name)));
        self.remember(name, &inode);
        Ok(inode)
    }

    fn entries(&self, _t: &Task, _dir: &Arc<Inode>) -> Result<Vec<DirEntry>, Errno> {
        self.children()?;
        let list = self.client().read_dir(self.handle).map_err(errno)?;
        Ok(list
            .into_iter()
            .filter(|d| d.name != b"." && d.name != b"..")
            .map(|d| DirEntry {
                name: d.name,
                ino: d.ino,
                kind: d.dtype,
            })
            .collect())
    }

    fn create(
        &self,
        t: &Task,
        dir: &Arc<Inode>,
        name: &[u8],
        new: NewNode,
    ) -> Result<Arc<Inode>, Errno> {
        self.children()?;
        let dmeta = dir.meta();
        let (uid, mut gid) = (t.creds.fsuid, t.creds.fsgid);
        let sgid_dir = dmeta.mode & libc::S_ISGID != 0;
        if sgid_dir {
            gid = dmeta.gid;
        }
        let c = self.client();
        let info = match new {
            NewNode::Directory { mode } => {
                let mut mode = mode & 0o7777;
                if sgid_dir {
                    mode |= libc::S_ISGID;
                }
                let i = c.mkdir(self.handle, name, mode, uid, gid).map_err(errno)?;
                dir.meta.locked().nlink += 1;
                i
            }
            NewNode::Symlink { target } => c
                .symlink(self.handle, name, &target, uid, gid)
                .map_err(errno)?,
            NewNode::Node { mode, .. } => match mode & libc::S_IFMT {
                libc::S_IFREG => {
                    let (i, fd) = c
                        .create(self.handle, name, mode & 0o7777, libc::O_RDONLY, uid, gid)
                        .map_err(errno)?;
                    drop(fd);
                    i
                }
                libc::S_IFIFO | libc::S_IFSOCK => {
                    c.mknod(self.handle, name, mode, uid, gid).map_err(errno)?
                }
                // No device nodes on host file systems from a sandbox.
                _ => return Err(Errno::EPERM),
            },
        };
        let inode = self.mount.inode(info, Some((dir, name)));
        self.remember(name, &inode);
        dir.touch(false, true, true);
        Ok(inode)
    }

    fn insert(
        &self,
        dir: &Arc<Inode>,
        name: &[u8],
        target: &Arc<Inode>,
        replace: bool,
    ) -> Result<Option<Arc<Inode>>, Errno> {
        // Only link reaches here: rename is the file system's own.
        if replace {
            return Err(Errno::EXDEV);
        }
        let tn = node(target).ok_or(Errno::EXDEV)?;
        let info = self
            .client()
            .link(self.handle, name, tn.handle)
            .map_err(errno)?;
        // The new name's node is the same file as `target`.
        self.mount.release(info.handle);
        self.remember(name, target);
        dir.touch(false, true, true);
        Ok(None)
    }

    fn remove(&self, dir: &Arc<Inode>, name: &[u8]) -> Result<Arc<Inode>, Errno> {
        let victim = match self.cached(name) {
            Some(i) => i,
            None => {
                let w = self.client().walk(self.handle, &[name]).map_err(errno)?;
                let info = w.nodes.into_iter().next().ok_or(Errno::ENOENT)?;
                self.mount.inode(info, Some((dir, name)))
            }
        };
        let flags = if victim.is_dir() {
            libc::AT_REMOVEDIR
        } else {
            0
        };
        self.client()
            .unlink(self.handle, name, flags)
            .map_err(errno)?;
        self.forget(name);
        if victim.is_dir() {
            let mut m = dir.meta.locked();
            m.nlink = m.nlink.saturating_sub(1);
        }
        dir.touch(false, true, true);
        Ok(victim)
    }

    fn rename(
        &self,
        old_dir: &Arc<Inode>,
        old_name: &[u8],
        new_dir: &Arc<Inode>,
        new_name: &[u8],
        exchange: bool,
    ) -> Option<Result<(), Errno>> {
        Some((|| {
            let nd = node(new_dir).ok_or(Errno::EXDEV)?;
            let moving = self.cached(old_name);
            let replaced = nd.cached(new_name);
            let flags = if exchange { libc::RENAME_EXCHANGE } else { 0 };
            self.client()
                .rename(self.handle, old_name, nd.handle, new_name, flags)
                .map_err(errno)?;
            self.forget(old_name);
            nd.forget(new_name);
            if let Some(m) = &moving {
                m.set_parent(new_dir, new_name);
                if let Some(GoferNode {
                    kind: Kind::Dir { parent, .. },
                    ..
                }) = node(m)
                {
                    *parent.locked() = Some(new_dir.clone());
                }
                nd.remember(new_name, m);
            }
            if exchange {
                if let Some(r) = &replaced {
                    r.set_parent(old_dir, old_name);
                    self.remember(old_name, r);
                }
            }
            let moved_dir = moving.as_ref().is_some_and(|m| m.is_dir());
            if moved_dir && !Arc::ptr_eq(old_dir, new_dir) && !exchange {
                let mut o = old_dir.meta.locked();
                o.nlink = o.nlink.saturating_sub(1);
                drop(o);
                if !replaced.as_ref().is_some_and(|r| r.is_dir()) {
                    new_dir.meta.locked().nlink += 1;
                }
            }
            old_dir.touch(false, true, true);
            new_dir.touch(false, true, true);
            Ok(())
        })())
    }

    fn readlink(&self, _t: &Task, _inode: &Arc<Inode>) -> Result<Vec<u8>, Errno> {
        let Kind::Symlink(target) = &self.kind else {
            return Err(Errno::EINVAL);
        };
        if let Some(t) = target.get() {
            return Ok(t.clone());
        }
        let t = self.client().readlink(self.handle).map_err(errno)?;
        Ok(target.get_or_init(|| t).clone())
    }

    fn open(&self, t: &Task, inode: &Arc<Inode>, flags: u32) -> Result<Box<dyn FileImpl>, Errno> {
        match &self.kind {
            Kind::Dir { .. } => Ok(Box::new(crate::vfs::DirFile::new())),
            Kind::Regular(_) => {
                let acc = flags as i32 & libc::O_ACCMODE;
                let mut host_flags = match acc {
                    libc::O_WRONLY => libc::O_WRONLY,
                    libc::O_RDWR => libc::O_RDWR,
                    _ => libc::O_RDONLY,
                };
                if flags as i32 & libc::O_TRUNC != 0 && acc != libc::O_RDONLY {
                    host_flags |= libc::O_TRUNC;
                }
                let r = self.regular().expect("a regular file");
                let shared = host_flags == libc::O_RDONLY;
                let reused = if shared {
                    r.reader.locked().clone()
                } else {
                    None
                };
                let fd = match reused {
                    Some(fd) => fd,
                    None => {
                        let fd =
                            Arc::new(self.client().open(self.handle, host_flags).map_err(errno)?);
                        if shared && self.mount.keep_reader() {
                            *r.reader.locked() = Some(fd.clone());
                        }
                        fd
                    }
                };
                if host_flags & libc::O_TRUNC != 0 {
                    refresh_from_fd(inode, fd.as_raw_fd());
                    if let Some(c) = r.cache() {
                        c.set_size(0);
                    }
                }
                if acc != libc::O_RDONLY {
                    let mut w = r.writers.locked();
                    w.retain(|f| f.strong_count() > 0);
                    w.push(Arc::downgrade(&fd));
                }
                Ok(Box::new(GoferFile {
                    fd,
                    writable: acc != libc::O_RDONLY,
                    inode: inode.clone(),
                }))
            }
            Kind::Fifo(f) => f.open(t, inode, flags),
            _ => Err(Errno::ENXIO),
        }
    }

    fn create_tmpfile(
        &self,
        t: &Task,
        dir: &Arc<Inode>,
        mode: u32,
        flags: u32,
    ) -> Option<Result<crate::vfs::inode::OpenedNew, Errno>> {
        Some((|| {
            self.children()?;
            let excl = flags as i32 & libc::O_EXCL;
            let (info, fd) = self
                .client()
                .create_tmpfile(
                    self.handle,
                    mode & 0o7777,
                    excl,
                    t.creds.fsuid,
                    t.creds.fsgid,
                )
                .map_err(errno)?;
            // Without a parent the file may be linked in once; with O_EXCL
            // it never may, and keeps the directory it was made in.
            let inode = self
                .mount
                .inode(info, (excl != 0).then_some((dir, &b""[..])));
            let fd = Arc::new(fd);
            let acc = flags as i32 & libc::O_ACCMODE;
            let writable = acc != libc::O_RDONLY;
            if writable {
                if let Some(r) = node(&inode).and_then(|n| n.regular()) {
                    r.writers.locked().push(Arc::downgrade(&fd));
                }
            }
            let imp: Box<dyn FileImpl> = Box::new(GoferFile {
                fd,
                writable,
                inode: inode.clone(),
            });
            Ok((inode, imp))
        })())
    }

    fn truncate(&self, inode: &Arc<Inode>, size: u64) -> Result<(), Errno> {
        if !matches!(self.kind, Kind::Regular(_)) {
            return Err(Errno::EINVAL);
        }
        self.client()
            .set_attr(
                self.handle,
                &SetAttr {
                    size: Some(size),
                    ..Default::default()
                },
            )
            .map_err(errno)?;
        // The host file system decides the times (and blocks).
        match self.client().stat(self.handle) {
            Ok(a) => {
                let mut m = inode.meta.locked();
                m.size = a.size;
                m.blocks_bytes = a.blocks * 512;
                m.mtime = ts(a.mtime);
                m.ctime = ts(a.ctime);
            }
            Err(_) => {
                let mut m = inode.meta.locked();
                m.size = size;
                let now = Timespec::now();
                m.mtime = now;
                m.ctime = now;
            }
        }
        if let Some(c) = self.regular().and_then(RegularNode::cache) {
            c.set_size(size);
        }
        Ok(())
    }

    fn truncate_same_size(&self) -> bool {
        true
    }

    fn fallocate(
        &self,
        inode: &Arc<Inode>,
        mode: i32,
        offset: u64,
        len: u64,
    ) -> Option<Result<(), Errno>> {
        let r = self.regular()?;
        Some((|| {
            // The VFS checked that the caller's description may write, so
            // a writable fd of the file is open.
            let fd = r.writer().ok_or(Errno::EBADF)?;
            let cache = r.cache();
            if let Some(c) = &cache {
                // Mapped changes first: the host file then has them all.
                c.write_back(fd.as_raw_fd())?;
            }
            // SAFETY: fallocate on our own fd; no memory is passed.
            let rc = unsafe { libc::fallocate(fd.as_raw_fd(), mode, offset as i64, len as i64) };
            if rc != 0 {
                return Err(Errno::last());
            }
            refresh_from_fd(inode, fd.as_raw_fd());
            if let Some(c) = &cache {
                // Allocating changes no data; anything else may have.
                let size = inode.meta.locked().size;
                if mode & !libc::FALLOC_FL_KEEP_SIZE == 0 {
                    c.set_size(size);
                } else {
                    c.reload(size);
                }
            }
            Ok(())
        })())
    }

    fn remote_xattrs(&self) -> Option<&dyn RemoteXattrs> {
        match self.kind {
            Kind::Regular(_) | Kind::Dir { .. } => Some(self),
            _ => None,
        }
    }

    fn set_attr(&self, _inode: &Arc<Inode>, c: &AttrChange) -> Result<(), Errno> {
        let g = |t: Timespec| gofer::Timespec {
            sec: t.sec,
            nsec: t.nsec,
        };
        self.client()
            .set_attr(
                self.handle,
                &SetAttr {
                    mode: c.mode.map(|m| m & 0o7777),
                    uid: c.uid,
                    gid: c.gid,
                    size: None,
                    atime: c.atime.map(g),
                    mtime: c.mtime.map(g),
                },
            )
            .map_err(errno)
    }
}

impl RemoteXattrs for GoferNode {
    fn get(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        self.client().get_xattr(self.handle, name).map_err(errno)
    }

    fn set(&self, name: &[u8], value: &[u8], flags: u32) -> Result<(), Errno> {
        self.client()
            .set_xattr(self.handle, name, value, flags as i32)
            .map_err(errno)
    }

    fn list(&self) -> Result<Vec<Vec<u8>>, Errno> {
        self.client().list_xattr(self.handle).map_err(errno)
    }

    fn remove(&self, name: &[u8]) -> Result<(), Errno> {
        self.client().remove_xattr(self.handle, name).map_err(errno)
    }
}

/// Runs a host I/O call until it is not interrupted: its byte count, or
/// its errno.
fn retry(mut call: impl FnMut() -> isize) -> Result<usize, Errno> {
    loop {
        let n = call();
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = Errno::last();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// An open regular file of the gofer: the host fd it donated, read and
/// written directly at the sandbox's own offsets (through the file's page
/// cache once it has one).
pub struct GoferFile {
    fd: Arc<OwnedFd>,
    writable: bool,
    inode: Arc<Inode>,
}

impl GoferFile {
    fn pread(&self, dst: &mut [u8], off: u64) -> Result<usize, Errno> {
        retry(|| {
            // SAFETY: pread into our own buffer from our own fd.
            unsafe {
                libc::pread(
                    self.fd.as_raw_fd(),
                    dst.as_mut_ptr().cast(),
                    dst.len(),
                    off as i64,
                )
            }
        })
    }

    fn pwrite(&self, src: &[u8], off: u64) -> Result<usize, Errno> {
        retry(|| {
            // SAFETY: pwrite from our own buffer to our own fd.
            unsafe {
                libc::pwrite(
                    self.fd.as_raw_fd(),
                    src.as_ptr().cast(),
                    src.len(),
                    off as i64,
                )
            }
        })
    }

    fn cache(&self) -> Option<Arc<CachedFile>> {
        node(&self.inode)?.regular()?.cache()
    }

    fn read_at(&self, dst: &mut [u8], off: u64) -> Result<usize, Errno> {
        match self.cache() {
            Some(c) => c.read(dst, off, |b, o| self.pread(b, o)),
            None => self.pread(dst, off),
        }
    }
}

impl FileImpl for GoferFile {
    fn direct_io(&self) -> bool {
        true
    }

    fn fsync(&self, _file: &FileDescription, data_only: bool) -> Option<Result<(), Errno>> {
        Some((|| {
            // What shared mappings changed goes to the host file first.
            if let Some(r) = node(&self.inode).and_then(|n| n.regular()) {
                if let (Some(c), Some(w)) = (r.cache(), r.writer()) {
                    c.write_back(w.as_raw_fd())?;
                }
            }
            // SAFETY: fsync/fdatasync of our own fd; no memory is passed.
            let rc = unsafe {
                if data_only {
                    libc::fdatasync(self.fd.as_raw_fd())
                } else {
                    libc::fsync(self.fd.as_raw_fd())
                }
            };
            if rc != 0 {
                return Err(Errno::last());
            }
            Ok(())
        })())
    }

    /// Reads straight from the host fd into guest memory (one copy), unless
    /// the file's pages are cached (then the cache holds the truth).
    fn read_to_memory(
        &self,
        file: &FileDescription,
        mf: &MemoryFile,
        dst: u64,
        len: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let direct = |off: u64| -> Result<usize, Errno> {
            if self.cache().is_some() {
                let mut buf = vec![0u8; len.min(crate::vfs::MEMORY_IO_CHUNK)];
                let n = self.read_at(&mut buf, off)?;
                mf.write(dst, &buf[..n]);
                return Ok(n);
            }
            mf.pread_into(dst, len, self.fd.as_raw_fd(), off)
        };
        match offset {
            Some(off) => direct(off),
            None => {
                let mut pos = file.pos.locked();
                let n = direct(*pos)?;
                *pos += n as u64;
                Ok(n)
            }
        }
    }

    fn read(
        &self,
        file: &FileDescription,
        dst: &mut [u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        match offset {
            Some(off) => self.read_at(dst, off),
            None => {
                let mut pos = file.pos.locked();
                let n = self.read_at(dst, *pos)?;
                *pos += n as u64;
                Ok(n)
            }
        }
    }

    fn write(
        &self,
        file: &FileDescription,
        src: &[u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let append = file.flags() & libc::O_APPEND as u32 != 0;
        let mut pos = file.pos.locked();
        let at = if append {
            self.inode.meta.locked().size
        } else {
            offset.unwrap_or(*pos)
        };
        let n = match self.cache() {
            Some(c) => c.wrote(src, at, || self.pwrite(src, at))?,
            None => self.pwrite(src, at)?,
        };
        if offset.is_none() {
            *pos = at + n as u64;
        }
        drop(pos);
        // Size, blocks and times as the host file system has them now.
        refresh_from_fd(&self.inode, self.fd.as_raw_fd());
        Ok(n)
    }

    fn seek(&self, file: &FileDescription, offset: i64, whence: i32) -> Result<u64, Errno> {
        let mut pos = file.pos.locked();
        let size = self.inode.meta.locked().size;
        match whence {
            libc::SEEK_DATA | libc::SEEK_HOLE => {
                // The host file system knows where its holes are.
                // SAFETY: lseek of our own fd (its offset is unused: I/O
                // is positional).
                let r = unsafe { libc::lseek(self.fd.as_raw_fd(), offset, whence) };
                if r < 0 {
                    return Err(Errno::last());
                }
                *pos = r as u64;
                Ok(*pos)
            }
            _ => crate::vfs::seek_position(&mut pos, offset, whence, Some(size), Errno::EINVAL),
        }
    }

    fn mappable(
        &self,
        _file: &FileDescription,
        _mf: &Arc<MemoryFile>,
    ) -> Option<Arc<dyn MappableFile>> {
        let cache = node(&self.inode)?.pages(&self.inode)?;
        Some(Arc::new(GoferMapping {
            cache,
            fd: self.writable.then(|| self.fd.clone()),
            shared_writable: AtomicBool::new(false),
        }))
    }

    fn inode(&self) -> Option<Arc<Inode>> {
        Some(self.inode.clone())
    }
}

/// One `mmap` of a gofer file: its page cache, and for a shared mapping
/// made from a description open for writing, that description's host fd
/// for writing the pages back (the mapping keeps it open, as a Linux
/// mapping keeps its file). Every VMA the mapping becomes (splits, forks)
/// shares this object; when the last goes, the pages are written back.
struct GoferMapping {
    cache: Arc<CachedFile>,
    fd: Option<Arc<OwnedFd>>,
    shared_writable: AtomicBool,
}

impl MappableFile for GoferMapping {
    fn id(&self) -> usize {
        self.cache.id()
    }

    fn add_mapper(&self, mm: &Arc<crate::mm::MemoryManager>) {
        self.cache.add_mapper(mm)
    }

    fn size(&self) -> u64 {
        self.cache.size()
    }

    fn page(&self, index: u64) -> Result<u64, Errno> {
        self.cache.page(index)
    }

    fn identity(&self) -> (u64, u64, String) {
        self.cache.identity()
    }

    fn mapped_shared_writable(&self) {
        if self.fd.is_some() {
            self.shared_writable.store(true, Ordering::Relaxed);
        }
    }

    fn write_back(&self) -> Result<(), Errno> {
        match &self.fd {
            Some(fd) if self.shared_writable.load(Ordering::Relaxed) => {
                self.cache.write_back(fd.as_raw_fd())
            }
            _ => Ok(()),
        }
    }
}

impl Drop for GoferMapping {
    fn drop(&mut self) {
        if let Err(e) = self.write_back() {
            tracing::warn!("writing back a shared mapping of a gofer file: {e:?}");
        }
    }
}
