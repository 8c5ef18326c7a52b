//! The `mqueue` file system: the POSIX message queues of the IPC
//! namespace, as files of one directory. Every mount of it (`mount -t
//! mqueue`) shows the same directory, the one `mq_open` and `mq_unlink`
//! work in; reading a queue's file shows Linux's status line
//! (`QSIZE:... NOTIFY:... SIGNO:... NOTIFY_PID:...`), creating a file
//! there makes a queue with the default attributes, removing one is
//! `mq_unlink`. Nothing else can be made there (EPERM), as on Linux.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::errno::Errno;
use crate::kernel::ipc::mqueue::{NewQueue, Queue};
use crate::kernel::task::Task;
use crate::sync::LockExt;
use crate::vfs::inode::{dt_type, DirEntry, Filesystem, Inode, InodeMeta, InodeOps, NewNode};
use crate::vfs::mount::{Location, Mount, MountFlags};
use crate::vfs::{FileDescription, FileImpl};

/// statfs f_type of mqueue.
pub const MQUEUE_MAGIC: i64 = 0x1980_0202;
/// What Linux's directory size counts per entry, and a queue file's size.
const DIRENT_SIZE: u64 = 20;
const FILENT_SIZE: u64 = 80;

/// The namespace's mqueue file system, its root, and the internal mount
/// mq_open's descriptors are opened through.
pub fn mqueue_fs(t: &Task) -> (Arc<Filesystem>, Arc<Inode>, Arc<Mount>) {
    let ns = &t.kernel.ipc.mq;
    ns.fs
        .get_or_init(|| {
            let fs = Filesystem::new(&t.kernel.vfs, "mqueue", "mqueue", MQUEUE_MAGIC, "");
            let mut meta = InodeMeta::new(libc::S_IFDIR | libc::S_ISVTX | 0o777, 0, 0);
            meta.nlink = 2;
            meta.size = 2 * DIRENT_SIZE;
            let root = Inode::new(&fs, meta, Box::new(MqDir::default()));
            let mount = Arc::new(Mount {
                id: 0,
                fs: fs.clone(),
                root: root.clone(),
                parent: None,
                flags: Mutex::new(MountFlags::default()),
            });
            (fs, root, mount)
        })
        .clone()
}

/// Queue files by creation order: name and inode.
type Entries = BTreeMap<u64, (Vec<u8>, Arc<Inode>)>;

/// The directory of queues (newest listed first, as Linux's libfs does).
#[derive(Default)]
pub struct MqDir {
    entries: Mutex<Entries>,
    next: Mutex<u64>,
}

impl MqDir {
    fn find(&self, name: &[u8]) -> Option<(u64, Arc<Inode>)> {
        self.entries
            .locked()
            .iter()
            .find(|(_, (n, _))| n == name)
            .map(|(k, (_, i))| (*k, i.clone()))
    }

    /// The queue file `name`.
    pub fn lookup_name(&self, name: &[u8]) -> Option<Arc<Inode>> {
        self.find(name).map(|(_, i)| i)
    }

    /// Makes the queue `name` with `mode` (permission bits) and the
    /// attributes `attr` (None: the namespace's defaults).
    pub fn create_queue(
        &self,
        t: &Task,
        dir: &Arc<Inode>,
        name: &[u8],
        mode: u32,
        attr: Option<(i64, i64)>,
    ) -> Result<Arc<Inode>, Errno> {
        if self.find(name).is_some() {
            return Err(Errno::EEXIST);
        }
        let rlimit = t.tg.limits.locked().cur(libc::RLIMIT_MSGQUEUE);
        let queue = t.kernel.ipc.mq.new_queue(
            &t.kernel.ipc.limits,
            NewQueue {
                attr,
                privileged: t.creds.has_cap(crate::kernel::creds::CAP_SYS_RESOURCE),
                uid: t.creds.uid,
                rlimit,
            },
        )?;
        let mut meta = InodeMeta::new(
            libc::S_IFREG | (mode & 0o7777),
            t.creds.fsuid,
            t.creds.fsgid,
        );
        meta.size = FILENT_SIZE;
        let inode = Inode::new(&dir.fs, meta, Box::new(QueueNode { queue }));
        inode.set_parent(dir, name);
        let mut next = self.next.locked();
        *next += 1;
        self.entries
            .locked()
            .insert(*next, (name.to_vec(), inode.clone()));
        drop(next);
        let mut m = dir.meta.locked();
        m.size += DIRENT_SIZE;
        drop(m);
        dir.touch(true, true, true);
        Ok(inode)
    }
}

impl InodeOps for MqDir {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, _t: &Task, _dir: &Arc<Inode>, name: &[u8]) -> Result<Arc<Inode>, Errno> {
        self.find(name).map(|(_, i)| i).ok_or(Errno::ENOENT)
    }

    fn entries(&self, _t: &Task, _dir: &Arc<Inode>) -> Result<Vec<DirEntry>, Errno> {
        Ok(self
            .entries
            .locked()
            .values()
            .rev()
            .map(|(n, i)| DirEntry {
                name: n.clone(),
                ino: i.ino,
                kind: dt_type(i.mode()),
            })
            .collect())
    }

    /// open(O_CREAT) and mknod of a regular file make a queue; nothing
    /// else can be made here.
    fn create(
        &self,
        t: &Task,
        dir: &Arc<Inode>,
        name: &[u8],
        node: NewNode,
    ) -> Result<Arc<Inode>, Errno> {
        match node {
            NewNode::Node { mode, .. } if mode & libc::S_IFMT == libc::S_IFREG => {
                self.create_queue(t, dir, name, mode, None)
            }
            _ => Err(Errno::EPERM),
        }
    }

    fn remove(&self, dir: &Arc<Inode>, name: &[u8]) -> Result<Arc<Inode>, Errno> {
        let (k, inode) = self.find(name).ok_or(Errno::ENOENT)?;
        self.entries.locked().remove(&k);
        let mut m = dir.meta.locked();
        m.size -= DIRENT_SIZE;
        drop(m);
        dir.touch(true, true, true);
        Ok(inode)
    }

    fn rename(
        &self,
        _old_dir: &Arc<Inode>,
        _old_name: &[u8],
        _new_dir: &Arc<Inode>,
        _new_name: &[u8],
        _exchange: bool,
    ) -> Option<Result<(), Errno>> {
        Some(Err(Errno::EPERM))
    }

    fn open(
        &self,
        _t: &Task,
        _inode: &Arc<Inode>,
        _flags: u32,
    ) -> Result<Box<dyn FileImpl>, Errno> {
        Ok(Box::new(crate::vfs::DirFile::new()))
    }
}

/// A queue's inode.
pub struct QueueNode {
    pub queue: Arc<Queue>,
}

impl InodeOps for QueueNode {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn open(&self, t: &Task, _inode: &Arc<Inode>, _flags: u32) -> Result<Box<dyn FileImpl>, Errno> {
        Ok(Box::new(MqFile {
            queue: self.queue.clone(),
            opener: t.tg.tgid,
        }))
    }

    /// O_TRUNC of a queue changes nothing.
    fn truncate(&self, _inode: &Arc<Inode>, _size: u64) -> Result<(), Errno> {
        Ok(())
    }
}

/// The queue behind an open file, if it is one (and not an O_PATH one).
pub fn queue_of(f: &FileDescription) -> Option<Arc<Queue>> {
    if f.flags() & libc::O_PATH as u32 != 0 {
        return None;
    }
    let inode = f.location.as_ref()?.inode.clone();
    inode
        .ops
        .as_any()
        .downcast_ref::<QueueNode>()
        .map(|q| q.queue.clone())
}

/// close(2) of a descriptor of `f` by process `tgid`: a queue's
/// notification that process registered goes (Linux's
/// `mqueue_flush_file`).
pub fn flushed(f: &FileDescription, tgid: i32) {
    if let Some(q) = queue_of(f) {
        q.forget(tgid);
    }
}

/// An open queue: a message queue descriptor, and a file whose contents
/// are the status line.
pub struct MqFile {
    queue: Arc<Queue>,
    opener: i32,
}

impl Drop for MqFile {
    /// The description goes: a registration of the process that opened
    /// it goes with it (what Linux's flush on close does).
    fn drop(&mut self) {
        self.queue.forget(self.opener);
    }
}

impl FileImpl for MqFile {
    fn read(
        &self,
        file: &FileDescription,
        dst: &mut [u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let text = self.queue.status();
        let mut pos = file.pos.locked();
        let at = offset.unwrap_or(*pos) as usize;
        if at >= text.len() {
            return Ok(0);
        }
        let n = dst.len().min(text.len() - at);
        dst[..n].copy_from_slice(&text.as_bytes()[at..at + n]);
        if offset.is_none() {
            *pos += n as u64;
        }
        drop(pos);
        if n > 0 {
            if let Some(l) = &file.location {
                l.inode.touch(true, false, true);
            }
        }
        Ok(n)
    }

    fn write(&self, _f: &FileDescription, _src: &[u8], _o: Option<u64>) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn seek(&self, file: &FileDescription, offset: i64, whence: i32) -> Result<u64, Errno> {
        let mut pos = file.pos.locked();
        let end = file.location.as_ref().map(|l| l.inode.meta().size);
        crate::vfs::seek_position(&mut pos, offset, whence, end, Errno::EINVAL)
    }

    fn readiness(&self, _f: &FileDescription, events: i16) -> i16 {
        self.queue.readiness(events)
    }

    fn waitq(&self, _f: &FileDescription) -> Option<Arc<crate::kernel::waiter::WaitQueue>> {
        Some(self.queue.waitq.clone())
    }
}

/// The location of a queue's inode for a new descriptor (the internal
/// mount, as mq_open's are).
pub fn location(t: &Task, inode: Arc<Inode>) -> Location {
    Location {
        mount: mqueue_fs(t).2,
        inode,
    }
}
