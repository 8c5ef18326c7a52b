//! Synthetic file systems: directories whose entries are computed when
//! they are looked up or listed, files whose contents are generated when
//! they are opened, and links (plain or magic) resolved when they are
//! read or followed. procfs and sysfs are built from these.
//!
//! A directory's [`Contents`] answers with [`Node`]s: what a name is (mode,
//! owner, link count, size) and how it behaves. The directory keeps the
//! inode it made for each name, so inode numbers stay put and `..` works
//! from below; the metadata is refreshed from the node at every lookup,
//! as Linux's procfs revalidates its dentries.

use crate::sync::LockExt;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::errno::Errno;

use crate::kernel::task::Task;
use crate::vfs::inode::{
    dt_type, DirEntry, Filesystem, Inode, InodeMeta, InodeOps, MagicTarget, NewNode,
};
use crate::vfs::{FileDescription, FileImpl};

/// Makes a file's contents, for the task opening it.
pub type Generate = Arc<dyn Fn(&Task) -> Result<Vec<u8>, Errno> + Send + Sync>;
/// Takes a write of `data` at `offset`; returns the bytes consumed.
pub type Sink = Box<dyn Fn(&[u8], u64) -> Result<usize, Errno> + Send + Sync>;
/// Makes the sink of a file opened for writing, for the task opening it.
pub type OpenSink = Arc<dyn Fn(&Task) -> Result<Sink, Errno> + Send + Sync>;
/// Where a magic link leads, for the task following it.
pub type Follow = Arc<dyn Fn(&Task) -> Result<MagicTarget, Errno> + Send + Sync>;

/// What writing a generated file does.
#[derive(Clone)]
pub enum Writes {
    /// Opening it for writing fails with EACCES, whoever asks (Linux's
    /// sysctl and sysfs files without a write handler).
    Refused,
    /// It opens for writing (if the mode allows), and writes fail with
    /// this error (procfs files without a write handler: EINVAL, or EIO
    /// for the top-level ones).
    Fail(Errno),
    /// Writes go to a sink made at open.
    To(OpenSink),
}

/// How a node behaves.
#[derive(Clone)]
pub enum Kind {
    Dir(Arc<dyn Contents>),
    File {
        read: Generate,
        writes: Writes,
        /// Whether SEEK_END works (relative to the node's size), as for
        /// sysctl and sysfs files; procfs's seq files refuse it.
        seek_end: bool,
    },
    /// A symbolic link; with `follow`, a magic link: following it goes
    /// where `follow` says rather than to the path `target` gives.
    Link {
        target: Generate,
        follow: Option<Follow>,
    },
}

/// A name's inode as the directory describes it now.
#[derive(Clone)]
pub struct Node {
    /// Permission bits (the type comes from `kind`).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub size: u64,
    pub kind: Kind,
}

impl Node {
    /// A directory (link count 2 until [`Node::nlink`] says otherwise).
    pub fn dir(perm: u32, contents: Arc<dyn Contents>) -> Node {
        Node {
            perm,
            uid: 0,
            gid: 0,
            nlink: 2,
            size: 0,
            kind: Kind::Dir(contents),
        }
    }

    /// A directory of fixed entries; its link count counts its
    /// subdirectories, as on Linux.
    pub fn fixed_dir(perm: u32, entries: Vec<Entry>) -> Node {
        let subdirs = entries.iter().filter(|e| e.node.is_dir()).count() as u64;
        Node::dir(perm, Arc::new(Fixed::new(entries))).nlink(2 + subdirs)
    }

    /// A file whose contents `read` generates at open.
    pub fn file(
        perm: u32,
        read: impl Fn(&Task) -> Result<Vec<u8>, Errno> + Send + Sync + 'static,
    ) -> Node {
        Node {
            perm,
            uid: 0,
            gid: 0,
            nlink: 1,
            size: 0,
            kind: Kind::File {
                read: Arc::new(read),
                writes: Writes::Refused,
                seek_end: false,
            },
        }
    }

    /// A file with fixed contents.
    pub fn text(perm: u32, s: impl Into<String>) -> Node {
        let s: String = s.into();
        Node::file(perm, move |_| Ok(s.clone().into_bytes()))
    }

    /// A symbolic link to the path `target` gives.
    pub fn symlink(
        target: impl Fn(&Task) -> Result<Vec<u8>, Errno> + Send + Sync + 'static,
    ) -> Node {
        Node {
            perm: 0o777,
            uid: 0,
            gid: 0,
            nlink: 1,
            size: 0,
            kind: Kind::Link {
                target: Arc::new(target),
                follow: None,
            },
        }
    }

    /// A magic link: `readlink` shows `name`, following goes to `follow`.
    pub fn magic_link(
        perm: u32,
        name: impl Fn(&Task) -> Result<Vec<u8>, Errno> + Send + Sync + 'static,
        follow: impl Fn(&Task) -> Result<MagicTarget, Errno> + Send + Sync + 'static,
    ) -> Node {
        Node {
            perm,
            uid: 0,
            gid: 0,
            nlink: 1,
            size: 0,
            kind: Kind::Link {
                target: Arc::new(name),
                follow: Some(Arc::new(follow)),
            },
        }
    }

    pub fn owner(mut self, uid: u32, gid: u32) -> Node {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn nlink(mut self, n: u64) -> Node {
        self.nlink = n;
        self
    }

    pub fn size(mut self, n: u64) -> Node {
        self.size = n;
        self
    }

    /// What writes do (files only; the default refuses them).
    pub fn writes(mut self, w: Writes) -> Node {
        if let Kind::File { writes, .. } = &mut self.kind {
            *writes = w;
        }
        self
    }

    /// Lets SEEK_END work, relative to the node's size (files only).
    pub fn seek_end(mut self) -> Node {
        if let Kind::File { seek_end, .. } = &mut self.kind {
            *seek_end = true;
        }
        self
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }

    fn file_type(&self) -> u32 {
        match self.kind {
            Kind::Dir(_) => libc::S_IFDIR,
            Kind::File { .. } => libc::S_IFREG,
            Kind::Link { .. } => libc::S_IFLNK,
        }
    }

    fn mode(&self) -> u32 {
        self.file_type() | (self.perm & 0o7777)
    }

    fn apply(&self, m: &mut InodeMeta) {
        m.mode = self.mode();
        m.uid = self.uid;
        m.gid = self.gid;
        m.nlink = self.nlink;
        m.size = self.size;
    }

    fn ops(&self) -> Box<dyn InodeOps> {
        match &self.kind {
            Kind::Dir(c) => Box::new(SynDir {
                contents: c.clone(),
                cache: Mutex::new(HashMap::new()),
            }),
            Kind::File {
                read,
                writes,
                seek_end,
            } => Box::new(SynFile {
                read: read.clone(),
                writes: writes.clone(),
                seek_end: *seek_end,
            }),
            Kind::Link { target, follow } => Box::new(SynLink {
                target: target.clone(),
                follow: follow.clone(),
            }),
        }
    }
}

/// A named node.
#[derive(Clone)]
pub struct Entry {
    pub name: Vec<u8>,
    pub node: Node,
}

pub fn entry(name: &str, node: Node) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        node,
    }
}

/// What a synthetic directory contains, asked at every lookup and
/// listing.
pub trait Contents: Send + Sync {
    /// The entries, in listing order.
    fn list(&self, t: &Task) -> Result<Vec<Entry>, Errno>;

    /// The entry `name` (never "." or ".."); ENOENT if there is none.
    fn find(&self, t: &Task, name: &[u8]) -> Result<Node, Errno> {
        self.list(t)?
            .into_iter()
            .find(|e| e.name == name)
            .map(|e| e.node)
            .ok_or(Errno::ENOENT)
    }

    /// Whether looking up a name that is not here fails outright, with
    /// this error, as procfs's lookups do (ENOENT): then creating,
    /// linking or renaming to such a name fails with it too. `None`: the
    /// name is merely absent (sysfs), and those fail as in a directory
    /// without the operation.
    fn absent_error(&self) -> Option<Errno> {
        None
    }
}

/// Linux's `vfs_create`/`vfs_mkdir`/... answer for a directory that
/// lacks the operation: EACCES for a regular file, EPERM for the rest.
fn no_create_op(node: &NewNode) -> Errno {
    match node {
        NewNode::Node { mode, .. } if mode & libc::S_IFMT == libc::S_IFREG => Errno::EACCES,
        _ => Errno::EPERM,
    }
}

/// A fixed list of entries.
pub struct Fixed {
    pub entries: Vec<Entry>,
    /// See [`Contents::absent_error`].
    pub absent_error: Option<Errno>,
}

impl Fixed {
    pub fn new(entries: Vec<Entry>) -> Fixed {
        Fixed {
            entries,
            absent_error: None,
        }
    }
}

impl Contents for Fixed {
    fn list(&self, _t: &Task) -> Result<Vec<Entry>, Errno> {
        Ok(self.entries.clone())
    }

    fn find(&self, _t: &Task, name: &[u8]) -> Result<Node, Errno> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.node.clone())
            .ok_or(Errno::ENOENT)
    }

    fn absent_error(&self) -> Option<Errno> {
        self.absent_error
    }
}

/// The root inode of a synthetic file system `fs`.
pub fn new_root(fs: &Arc<Filesystem>, node: Node) -> Arc<Inode> {
    new_inode(fs, &node)
}

fn new_inode(fs: &Arc<Filesystem>, node: &Node) -> Arc<Inode> {
    let mut meta = InodeMeta::new(node.mode(), node.uid, node.gid);
    node.apply(&mut meta);
    Inode::new(fs, meta, node.ops())
}

struct SynDir {
    contents: Arc<dyn Contents>,
    /// The inodes made for names, kept while the names exist.
    cache: Mutex<HashMap<Vec<u8>, Arc<Inode>>>,
}

impl SynDir {
    /// The inode for `name`, now described by `node`: the one made before
    /// if it is still of the same type, else a new one.
    fn instantiate(&self, dir: &Arc<Inode>, name: &[u8], node: &Node) -> Arc<Inode> {
        let mut cache = self.cache.locked();
        if let Some(i) = cache.get(name) {
            if i.mode() & libc::S_IFMT == node.file_type() {
                node.apply(&mut i.meta.locked());
                return i.clone();
            }
        }
        let inode = new_inode(&dir.fs, node);
        inode.set_parent(dir, name);
        cache.insert(name.to_vec(), inode.clone());
        inode
    }
}

impl InodeOps for SynDir {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, t: &Task, dir: &Arc<Inode>, name: &[u8]) -> Result<Arc<Inode>, Errno> {
        match self.contents.find(t, name) {
            Ok(node) => Ok(self.instantiate(dir, name, &node)),
            Err(e) => {
                self.cache.locked().remove(name);
                Err(e)
            }
        }
    }

    fn entries(&self, t: &Task, dir: &Arc<Inode>) -> Result<Vec<DirEntry>, Errno> {
        let list = self.contents.list(t)?;
        self.cache
            .lock()
            .unwrap()
            .retain(|name, _| list.iter().any(|e| &e.name == name));
        Ok(list
            .iter()
            .map(|e| {
                let inode = self.instantiate(dir, &e.name, &e.node);
                DirEntry {
                    name: e.name.clone(),
                    ino: inode.ino,
                    kind: dt_type(e.node.mode()),
                }
            })
            .collect())
    }

    fn create(
        &self,
        _t: &Task,
        _dir: &Arc<Inode>,
        _name: &[u8],
        node: NewNode,
    ) -> Result<Arc<Inode>, Errno> {
        Err(self.contents.absent_error().unwrap_or(no_create_op(&node)))
    }

    fn insert(
        &self,
        _dir: &Arc<Inode>,
        _name: &[u8],
        _target: &Arc<Inode>,
        _replace: bool,
    ) -> Result<Option<Arc<Inode>>, Errno> {
        Err(self.contents.absent_error().unwrap_or(Errno::EPERM))
    }

    fn open(
        &self,
        _t: &Task,
        _inode: &Arc<Inode>,
        _flags: u32,
    ) -> Result<Box<dyn FileImpl>, Errno> {
        Ok(Box::new(crate::vfs::DirFile::new()))
    }

    fn settable(&self) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }
}

struct SynLink {
    target: Generate,
    follow: Option<Follow>,
}

impl InodeOps for SynLink {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn readlink(&self, t: &Task, _inode: &Arc<Inode>) -> Result<Vec<u8>, Errno> {
        (self.target)(t)
    }

    fn follow(&self, t: &Task, _inode: &Arc<Inode>) -> Option<Result<MagicTarget, Errno>> {
        self.follow.as_ref().map(|f| f(t))
    }

    fn open(
        &self,
        _t: &Task,
        _inode: &Arc<Inode>,
        _flags: u32,
    ) -> Result<Box<dyn FileImpl>, Errno> {
        Err(Errno::ELOOP)
    }

    fn settable(&self) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }
}

struct SynFile {
    read: Generate,
    writes: Writes,
    seek_end: bool,
}

impl InodeOps for SynFile {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn open(&self, t: &Task, inode: &Arc<Inode>, flags: u32) -> Result<Box<dyn FileImpl>, Errno> {
        let acc = flags & libc::O_ACCMODE as u32;
        let writing = acc == libc::O_WRONLY as u32 || acc == libc::O_RDWR as u32;
        let sink = match (&self.writes, writing) {
            (Writes::Refused, true) => return Err(Errno::EACCES),
            (Writes::To(open), true) => Ok(open(t)?),
            (Writes::Fail(e), _) => Err(*e),
            _ => Err(Errno::EBADF),
        };
        let data = (self.read)(t)?;
        Ok(Box::new(GeneratedFile {
            data,
            sink,
            seek_end: self.seek_end,
            inode: inode.clone(),
        }))
    }

    /// `O_TRUNC` (as in `echo x > /proc/sys/...`) is accepted and does
    /// nothing.
    fn truncate(&self, _inode: &Arc<Inode>, _size: u64) -> Result<(), Errno> {
        Ok(())
    }

    fn settable(&self) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }
}

/// An open generated file: the contents as they were at open.
struct GeneratedFile {
    data: Vec<u8>,
    sink: Result<Sink, Errno>,
    seek_end: bool,
    inode: Arc<Inode>,
}

impl FileImpl for GeneratedFile {
    fn read(
        &self,
        file: &FileDescription,
        dst: &mut [u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let mut pos = file.pos.locked();
        let off = offset.unwrap_or(*pos);
        let n = if off >= self.data.len() as u64 {
            0
        } else {
            let src = &self.data[off as usize..];
            let n = src.len().min(dst.len());
            dst[..n].copy_from_slice(&src[..n]);
            n
        };
        if offset.is_none() {
            *pos = off + n as u64;
        }
        Ok(n)
    }

    fn write(
        &self,
        file: &FileDescription,
        src: &[u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let sink = self.sink.as_ref().map_err(|e| *e)?;
        let mut pos = file.pos.locked();
        let off = offset.unwrap_or(*pos);
        let n = sink(src, off)?;
        if offset.is_none() {
            *pos = off + n as u64;
        }
        Ok(n)
    }

    /// As `seq_lseek`, or `default_llseek` for files that allow SEEK_END.
    fn seek(&self, file: &FileDescription, offset: i64, whence: i32) -> Result<u64, Errno> {
        let mut pos = file.pos.locked();
        let size = self.inode.meta.locked().size;
        let end = self.seek_end.then_some(size);
        crate::vfs::seek_position(&mut pos, offset, whence, end, Errno::EINVAL)
    }

    fn inode(&self) -> Option<Arc<Inode>> {
        Some(self.inode.clone())
    }
}
