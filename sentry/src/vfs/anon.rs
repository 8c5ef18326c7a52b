//! Inodes for open files that have no place in the tree (pipes, host
//! fds), reached through magic links such as `/proc/self/fd/N`.

use std::any::Any;
use std::sync::{Arc, Mutex};

use crate::errno::Errno;

use super::inode::{Filesystem, Inode, InodeMeta, InodeOps};
use super::mount::{Location, Mount, MountFlags};
use super::{FileDescription, FileImpl};
use crate::kernel::task::Task;

/// The mount that holds inodes for open files without a place in the
/// tree (one per sandbox, in its [`VfsState`](super::VfsState)).
pub(super) fn new_mount(vfs: &super::VfsState) -> (Arc<Filesystem>, Arc<Mount>) {
    let fs = Filesystem::new(vfs, "anon_inodefs", "anon_inodefs", 0x0904_1934, "");
    let root = Inode::new(
        &fs,
        InodeMeta::new(libc::S_IFDIR | 0o700, 0, 0),
        Box::new(Nothing),
    );
    let m = Arc::new(Mount {
        id: 0,
        fs: fs.clone(),
        root,
        parent: None,
        flags: Mutex::new(MountFlags::default()),
    });
    (fs, m)
}

struct Nothing;

impl InodeOps for Nothing {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An inode standing for an open file; opening it shares the file.
struct OpenFile {
    file: Arc<FileDescription>,
}

impl InodeOps for OpenFile {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn open(
        &self,
        _t: &Task,
        _inode: &Arc<Inode>,
        _flags: u32,
    ) -> Result<Box<dyn FileImpl>, Errno> {
        // A socket cannot be opened, as Linux's sockfs inodes cannot.
        if self.file.imp.socket().is_some() {
            return Err(Errno::ENXIO);
        }
        Ok(Box::new(Shared(self.file.clone())))
    }
}

/// A file description that forwards to another one (re-opening a pipe or
/// a host fd through /proc/self/fd shares it).
struct Shared(Arc<FileDescription>);

impl FileImpl for Shared {
    fn read(
        &self,
        _f: &FileDescription,
        dst: &mut [u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        self.0.imp.read(&self.0, dst, offset)
    }
    fn write(&self, _f: &FileDescription, src: &[u8], offset: Option<u64>) -> Result<usize, Errno> {
        self.0.imp.write(&self.0, src, offset)
    }
    fn positional(&self, _f: &FileDescription) -> bool {
        self.0.imp.positional(&self.0)
    }
    fn seek(&self, _f: &FileDescription, offset: i64, whence: i32) -> Result<u64, Errno> {
        self.0.imp.seek(&self.0, offset, whence)
    }
    fn stat(&self, _f: &FileDescription) -> Result<libc::stat, Errno> {
        self.0.imp.stat(&self.0)
    }
    fn ioctl(
        &self,
        _f: &FileDescription,
        t: &mut Task,
        request: u32,
        arg: u64,
    ) -> Result<u64, Errno> {
        self.0.imp.ioctl(&self.0, t, request, arg)
    }
    fn readiness(&self, _f: &FileDescription, events: i16) -> i16 {
        self.0.imp.readiness(&self.0, events)
    }
    fn wait_ready(&self, _f: &FileDescription, events: i16, timeout_ms: i32) -> i16 {
        self.0.imp.wait_ready(&self.0, events, timeout_ms)
    }
    fn waitq(&self, _f: &FileDescription) -> Option<Arc<crate::kernel::waiter::WaitQueue>> {
        self.0.imp.waitq(&self.0)
    }
    fn name(&self) -> String {
        self.0.imp.name()
    }
    fn empty_io_reaches_file(&self) -> bool {
        self.0.imp.empty_io_reaches_file()
    }
    fn writes_once(&self) -> bool {
        self.0.imp.writes_once()
    }
    fn fdinfo(&self, _f: &FileDescription) -> String {
        self.0.imp.fdinfo(&self.0)
    }
    fn mappable(
        &self,
        _f: &FileDescription,
        mf: &Arc<crate::mm::memory_file::MemoryFile>,
    ) -> Option<Arc<dyn crate::mm::MappableFile>> {
        self.0.imp.mappable(&self.0, mf)
    }
}

/// The open file a location made by [`location_for`] stands for.
pub fn open_file_at(loc: &Location) -> Option<Arc<FileDescription>> {
    loc.inode
        .ops
        .as_any()
        .downcast_ref::<OpenFile>()
        .map(|o| o.file.clone())
}

/// A location for an open file without one.
pub fn location_for(vfs: &super::VfsState, file: Arc<FileDescription>) -> Location {
    let (fs, m) = vfs.anon_mount();
    let st = file.imp.stat(&file).ok();
    let mut meta = InodeMeta::new(st.map(|s| s.st_mode).unwrap_or(libc::S_IFREG | 0o600), 0, 0);
    if let Some(s) = st {
        meta.size = s.st_size as u64;
        meta.uid = s.st_uid;
        meta.gid = s.st_gid;
    }
    let inode = Inode::new(fs, meta, Box::new(OpenFile { file }));
    Location {
        mount: m.clone(),
        inode,
    }
}
