//! Open directories: getdents positions over a directory's listing.

use crate::sync::LockExt;
use std::sync::Arc;

use crate::errno::Errno;

use super::inode::{DirEntry, Inode};
use super::{FileDescription, FileImpl};
use crate::kernel::task::Task;

/// An open directory of any file system. Its position counts entries of
/// the listing: 0 is ".", 1 is "..", then the directory's entries. The
/// listing is taken when reading starts at position 0 and kept until the
/// directory is read from 0 again (rewinddir), so a long listing costs one
/// walk of the directory, not one per getdents call.
#[derive(Default)]
pub struct DirFile {
    snapshot: std::sync::Mutex<Option<Arc<Vec<DirEntry>>>>,
}

impl DirFile {
    pub fn new() -> DirFile {
        DirFile::default()
    }
}

impl FileImpl for DirFile {
    fn read(
        &self,
        _f: &FileDescription,
        _dst: &mut [u8],
        _offset: Option<u64>,
    ) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    fn write(
        &self,
        _f: &FileDescription,
        _src: &[u8],
        _offset: Option<u64>,
    ) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }

    fn seek(&self, file: &FileDescription, offset: i64, whence: i32) -> Result<u64, Errno> {
        let mut pos = file.pos.locked();
        super::seek_position(&mut pos, offset, whence, None, Errno::EINVAL)
    }

    fn stat(&self, file: &FileDescription) -> Result<libc::stat, Errno> {
        file.location
            .as_ref()
            .map(|l| l.inode.stat())
            .ok_or(Errno::EBADF)
    }

    fn ioctl(
        &self,
        _f: &FileDescription,
        _t: &mut Task,
        _request: u32,
        _arg: u64,
    ) -> Result<u64, Errno> {
        Err(Errno::ENOTTY)
    }

    fn readiness(&self, _f: &FileDescription, events: i16) -> i16 {
        events & (libc::POLLIN | libc::POLLRDNORM)
    }

    fn readdir(&self, file: &FileDescription, t: &Task) -> Result<Arc<Vec<DirEntry>>, Errno> {
        let at_start = *file.pos.locked() == 0;
        let mut snap = self.snapshot.locked();
        if let (false, Some(s)) = (at_start, snap.as_ref()) {
            return Ok(s.clone());
        }
        let loc = file.location.as_ref().ok_or(Errno::ENOTDIR)?;
        let inode: &Arc<Inode> = &loc.inode;
        let entries = inode.ops.entries(t, inode)?;
        let parent_ino = {
            let w = super::path::Walker::new(t);
            w.dotdot(loc.clone()).inode.ino
        };
        let mut out = Vec::with_capacity(entries.len() + 2);
        out.push(DirEntry {
            name: b".".to_vec(),
            ino: inode.ino,
            kind: libc::DT_DIR,
        });
        out.push(DirEntry {
            name: b"..".to_vec(),
            ino: parent_ino,
            kind: libc::DT_DIR,
        });
        out.extend(entries);
        inode.touch_atime();
        let out = Arc::new(out);
        *snap = Some(out.clone());
        Ok(out)
    }
}
