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
//!   no round trip through the gofer. `mmap` of it maps pages cached in
//!   the memory file ([`crate::mm::cached`]).
//! - Changes (create, mkdir, mknod of fifos and sockets, symlink, link,
//!   unlink, rename, chmod, chown, utimes, truncate) are one request each.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use gofer::{Attr, Client, Handle, NodeInfo, SetAttr};

use crate::errno::Errno;
use crate::kernel::task::Task;
use crate::mm::memory_file::MemoryFile;
use crate::sync::LockExt;
use crate::vfs::inode::{
    AttrChange, DirEntry, Filesystem, FsStats, Inode, InodeMeta, InodeOps, NewNode, Timespec,
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
}

impl GoferMount {
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
            libc::S_IFREG => Kind::Regular(Mutex::new(None)),
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
    /// The file's pages as mappings share them, once it is mapped.
    Regular(Mutex<Option<Arc<crate::mm::cached::CachedFile>>>),
    /// A fifo of the host tree is a pipe of the sandbox's own.
    Fifo(crate::fsimpl::pipe::FifoNode),
    Other,
}

/// One node of the gofer.
pub struct GoferNode {
    mount: Arc<GoferMount>,
    handle: Handle,
    kind: Kind,
}

impl Drop for GoferNode {
    fn drop(&mut self) {
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

    /// The page cache of a regular file, made on first use.
    fn pages(&self, inode: &Inode) -> Option<Arc<dyn crate::mm::MappableFile>> {
        let Kind::Regular(cache) = &self.kind else {
            return None;
        };
        let mut c = cache.locked();
        if let Some(p) = c.as_ref() {
            if crate::mm::MappableFile::size(&**p) == inode.meta.locked().size {
                return Some(p.clone());
            }
        }
        let fd = self.client().open(self.handle, libc::O_RDONLY).ok()?;
        let name = format!("gofer:{}", inode.ino);
        let p = crate::mm::cached::CachedFile::new(&self.mount.mf, fd, name).ok()?;
        *c = Some(p.clone());
        Some(p)
    }
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
                let fd = self.client().open(self.handle, host_flags).map_err(errno)?;
                if host_flags & libc::O_TRUNC != 0 {
                    let mut m = inode.meta.locked();
                    if m.size != 0 {
                        m.size = 0;
                        m.blocks_bytes = 0;
                        let now = Timespec::now();
                        m.mtime = now;
                        m.ctime = now;
                    }
                }
                Ok(Box::new(GoferFile {
                    fd,
                    inode: inode.clone(),
                }))
            }
            Kind::Fifo(f) => f.open(t, inode, flags),
            _ => Err(Errno::ENXIO),
        }
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
        let mut m = inode.meta.locked();
        m.size = size;
        let now = Timespec::now();
        m.mtime = now;
        m.ctime = now;
        Ok(())
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

/// An open regular file of the gofer: the host fd it donated, read and
/// written directly at the sandbox's own offsets.
pub struct GoferFile {
    fd: OwnedFd,
    inode: Arc<Inode>,
}

impl GoferFile {
    fn pread(&self, dst: &mut [u8], off: u64) -> Result<usize, Errno> {
        loop {
            // SAFETY: pread into our own buffer from our own fd.
            let n = unsafe {
                libc::pread(
                    self.fd.as_raw_fd(),
                    dst.as_mut_ptr().cast(),
                    dst.len(),
                    off as i64,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = Errno::last();
            if e != Errno::EINTR {
                return Err(e);
            }
        }
    }

    fn pwrite(&self, src: &[u8], off: u64) -> Result<usize, Errno> {
        loop {
            // SAFETY: pwrite from our own buffer to our own fd.
            let n = unsafe {
                libc::pwrite(
                    self.fd.as_raw_fd(),
                    src.as_ptr().cast(),
                    src.len(),
                    off as i64,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = Errno::last();
            if e != Errno::EINTR {
                return Err(e);
            }
        }
    }
}

impl FileImpl for GoferFile {
    fn read(
        &self,
        file: &FileDescription,
        dst: &mut [u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        match offset {
            Some(off) => self.pread(dst, off),
            None => {
                let mut pos = file.pos.locked();
                let n = self.pread(dst, *pos)?;
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
        let n = self.pwrite(src, at)?;
        if offset.is_none() {
            *pos = at + n as u64;
        }
        drop(pos);
        let mut m = self.inode.meta.locked();
        m.size = m.size.max(at + n as u64);
        m.blocks_bytes = m.blocks_bytes.max(m.size.div_ceil(512) * 512);
        let now = Timespec::now();
        m.mtime = now;
        m.ctime = now;
        Ok(n)
    }

    fn seek(&self, file: &FileDescription, offset: i64, whence: i32) -> Result<u64, Errno> {
        let mut pos = file.pos.locked();
        let size = self.inode.meta.locked().size;
        match whence {
            libc::SEEK_DATA | libc::SEEK_HOLE => {
                if offset < 0 || offset as u64 >= size {
                    return Err(Errno::ENXIO);
                }
                // The whole file is data, as for file systems that do
                // not track holes.
                *pos = if whence == libc::SEEK_DATA {
                    offset as u64
                } else {
                    size
                };
                Ok(*pos)
            }
            _ => crate::vfs::seek_position(&mut pos, offset, whence, Some(size), Errno::EINVAL),
        }
    }

    fn mappable(
        &self,
        file: &FileDescription,
        _mf: &Arc<MemoryFile>,
    ) -> Option<Arc<dyn crate::mm::MappableFile>> {
        // Pages are cached, not written back: only files opened for
        // reading are mapped (what loaders and libraries need).
        if file.flags() & libc::O_ACCMODE as u32 != libc::O_RDONLY as u32 {
            return None;
        }
        node(&self.inode)?.pages(&self.inode)
    }

    fn inode(&self) -> Option<Arc<Inode>> {
        Some(self.inode.clone())
    }
}
