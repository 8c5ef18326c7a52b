//! tmpfs: a file system that lives in the sentry's memory. Regular file
//! data lives in the memory file, page by page, so that it can be mapped
//! into guests.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::errno::Errno;

use crate::kernel::task::Task;
use crate::mm::MemoryFile;
use crate::vfs::inode::{
    dt_type, DirEntry, Filesystem, Inode, InodeMeta, InodeOps, NewNode, Timespec,
};
use crate::vfs::{FileDescription, FileImpl};
use platform::PAGE_SIZE;

/// statfs f_type of tmpfs.
pub const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Linux's MAX_LFS_FILESIZE.
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// A new tmpfs instance: its file system and root directory.
pub fn new_tmpfs(
    mf: &Arc<MemoryFile>,
    source: &str,
    mode: u32,
    uid: u32,
    gid: u32,
) -> (Arc<Filesystem>, Arc<Inode>) {
    let fs = Filesystem::new("tmpfs", source, TMPFS_MAGIC, "");
    {
        let mut st = fs.stats.lock().unwrap();
        // As a tmpfs of half the memory of a 24 GiB machine would say.
        st.blocks = 3_145_728;
        st.blocks_free = 3_145_728;
        st.files = 3_145_728;
        st.files_free = 3_145_728;
    }
    let root = new_dir(&fs, mf, libc::S_IFDIR | (mode & 0o7777), uid, gid);
    let mut m = root.meta.lock().unwrap();
    m.nlink = 2;
    drop(m);
    (fs, root)
}

fn new_dir(
    fs: &Arc<Filesystem>,
    mf: &Arc<MemoryFile>,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Arc<Inode> {
    let mut meta = InodeMeta::new(mode, uid, gid);
    meta.nlink = 2;
    meta.size = 40;
    Inode::new(
        fs,
        meta,
        Box::new(Dir {
            mf: mf.clone(),
            entries: Mutex::new(DirEntries::default()),
            xattrs: Mutex::new(BTreeMap::new()),
        }),
    )
}

/// A directory's entries in creation order (Linux's tmpfs lists the newest
/// first).
#[derive(Default)]
pub struct DirEntries {
    by_name: HashMap<Vec<u8>, (u64, Arc<Inode>)>,
    order: BTreeMap<u64, Vec<u8>>,
    next: u64,
}

impl DirEntries {
    fn get(&self, name: &[u8]) -> Option<Arc<Inode>> {
        self.by_name.get(name).map(|(_, i)| i.clone())
    }

    fn insert(&mut self, name: &[u8], inode: Arc<Inode>) -> Option<Arc<Inode>> {
        let old = self.remove(name);
        self.next += 1;
        self.order.insert(self.next, name.to_vec());
        self.by_name.insert(name.to_vec(), (self.next, inode));
        old
    }

    fn remove(&mut self, name: &[u8]) -> Option<Arc<Inode>> {
        let (seq, inode) = self.by_name.remove(name)?;
        self.order.remove(&seq);
        Some(inode)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

pub struct Dir {
    mf: Arc<MemoryFile>,
    entries: Mutex<DirEntries>,
    xattrs: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl Dir {
    pub fn is_empty(&self) -> bool {
        self.entries.lock().unwrap().is_empty()
    }
}

impl InodeOps for Dir {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, _t: &Task, _dir: &Arc<Inode>, name: &[u8]) -> Result<Arc<Inode>, Errno> {
        self.entries.lock().unwrap().get(name).ok_or(Errno::ENOENT)
    }

    fn entries(&self, _t: &Task, _dir: &Arc<Inode>) -> Result<Vec<DirEntry>, Errno> {
        let e = self.entries.lock().unwrap();
        Ok(e.order
            .values()
            .rev()
            .map(|name| {
                let inode = &e.by_name[name].1;
                DirEntry {
                    name: name.clone(),
                    ino: inode.ino,
                    kind: dt_type(inode.mode()),
                }
            })
            .collect())
    }

    fn create(
        &self,
        t: &Task,
        dir: &Arc<Inode>,
        name: &[u8],
        node: NewNode,
    ) -> Result<Arc<Inode>, Errno> {
        let mut e = self.entries.lock().unwrap();
        if e.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
        let (uid, gid) = (t.creds.fsuid, t.creds.fsgid);
        let dmeta = dir.meta();
        // Set-group-ID directories pass their group on.
        let sgid_dir = dmeta.mode & libc::S_ISGID != 0;
        let gid = if sgid_dir { dmeta.gid } else { gid };
        let inode = match node {
            NewNode::Directory { mode } => {
                let mut mode = libc::S_IFDIR | (mode & 0o7777);
                if sgid_dir {
                    mode |= libc::S_ISGID;
                }
                let d = new_dir(&dir.fs, &self.mf, mode, uid, gid);
                dir.meta.lock().unwrap().nlink += 1;
                d
            }
            NewNode::Symlink { target } => {
                let mut meta = InodeMeta::new(libc::S_IFLNK | 0o777, uid, gid);
                meta.size = target.len() as u64;
                Inode::new(&dir.fs, meta, Box::new(Symlink { target }))
            }
            NewNode::Node { mode, rdev } => {
                let ft = mode & libc::S_IFMT;
                let mut meta = InodeMeta::new(mode, uid, gid);
                meta.rdev = rdev;
                let ops: Box<dyn InodeOps> = match ft {
                    libc::S_IFREG => Box::new(RegularFile::new(&self.mf)),
                    libc::S_IFCHR | libc::S_IFBLK => Box::new(DeviceNode),
                    libc::S_IFIFO => Box::new(crate::fsimpl::pipe::FifoNode::default()),
                    libc::S_IFSOCK => Box::new(SocketNode),
                    _ => return Err(Errno::EINVAL),
                };
                Inode::new(&dir.fs, meta, ops)
            }
        };
        inode.set_parent(dir, name);
        e.insert(name, inode.clone());
        drop(e);
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
        let mut e = self.entries.lock().unwrap();
        if !replace && e.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
        let old = e.insert(name, target.clone());
        drop(e);
        target.set_parent(dir, name);
        if target.is_dir() {
            dir.meta.lock().unwrap().nlink += 1;
        }
        if let Some(o) = &old {
            if o.is_dir() {
                dir.meta.lock().unwrap().nlink -= 1;
            }
        }
        dir.touch(false, true, true);
        Ok(old)
    }

    fn remove(&self, dir: &Arc<Inode>, name: &[u8]) -> Result<Arc<Inode>, Errno> {
        let removed = self
            .entries
            .lock()
            .unwrap()
            .remove(name)
            .ok_or(Errno::ENOENT)?;
        if removed.is_dir() {
            dir.meta.lock().unwrap().nlink -= 1;
        }
        dir.touch(false, true, true);
        Ok(removed)
    }

    fn open(
        &self,
        _t: &Task,
        _inode: &Arc<Inode>,
        _flags: u32,
    ) -> Result<Box<dyn FileImpl>, Errno> {
        Ok(Box::new(crate::vfs::DirFile::new()))
    }

    fn xattrs(&self) -> Option<&Mutex<BTreeMap<Vec<u8>, Vec<u8>>>> {
        Some(&self.xattrs)
    }
}

pub struct Symlink {
    pub target: Vec<u8>,
}

impl InodeOps for Symlink {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn readlink(&self, _t: &Task, _inode: &Arc<Inode>) -> Result<Vec<u8>, Errno> {
        Ok(self.target.clone())
    }

    fn open(
        &self,
        _t: &Task,
        _inode: &Arc<Inode>,
        _flags: u32,
    ) -> Result<Box<dyn FileImpl>, Errno> {
        Err(Errno::ELOOP)
    }
}

/// A device special file: opening it asks the device registry.
pub struct DeviceNode;

impl InodeOps for DeviceNode {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn open(&self, t: &Task, inode: &Arc<Inode>, flags: u32) -> Result<Box<dyn FileImpl>, Errno> {
        let m = inode.meta();
        if m.file_type() != libc::S_IFCHR {
            return Err(Errno::ENXIO);
        }
        crate::fsimpl::devfs::open_device(t, inode, flags)
    }
}

/// A socket file: bound sockets come with networking; opening one is
/// ENXIO, as on Linux.
pub struct SocketNode;

impl InodeOps for SocketNode {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn open(
        &self,
        _t: &Task,
        _inode: &Arc<Inode>,
        _flags: u32,
    ) -> Result<Box<dyn FileImpl>, Errno> {
        Err(Errno::ENXIO)
    }
}

/// Pages of a regular file: page index -> memory-file offset. Missing
/// pages are holes.
#[derive(Default)]
pub struct FileData {
    pub pages: BTreeMap<u64, u64>,
}

pub struct RegularFile {
    mf: Arc<MemoryFile>,
    pub data: Mutex<FileData>,
    xattrs: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    /// File seals (`F_SEAL_*`). Every tmpfs file has them; only memfds
    /// made with MFD_ALLOW_SEALING start without F_SEAL_SEAL.
    pub seals: AtomicU32,
    /// Address spaces that map the file, for taking pages away from them
    /// before they are freed (truncate, punching holes).
    mappers: Mutex<Vec<std::sync::Weak<crate::mm::MemoryManager>>>,
}

impl RegularFile {
    pub fn new(mf: &Arc<MemoryFile>) -> RegularFile {
        RegularFile {
            mf: mf.clone(),
            data: Mutex::new(FileData::default()),
            xattrs: Mutex::new(BTreeMap::new()),
            seals: AtomicU32::new(libc::F_SEAL_SEAL as u32),
            mappers: Mutex::new(Vec::new()),
        }
    }

    /// Records that `mm` maps this file.
    pub fn add_mapper(&self, mm: &Arc<crate::mm::MemoryManager>) {
        let mut v = self.mappers.lock().unwrap();
        v.retain(|w| w.strong_count() > 0);
        if !v.iter().any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(mm))) {
            v.push(Arc::downgrade(mm));
        }
    }

    /// Takes the file's pages in `[start, end)` (file offsets, page
    /// aligned) away from every address space that maps them, so that they
    /// can be freed: the next access faults and sees the file as it is then.
    /// Called with no lock of the file held.
    pub fn invalidate_mappings(&self, start: u64, end: u64, even_cows: bool) {
        let mms: Vec<Arc<crate::mm::MemoryManager>> = self
            .mappers
            .lock()
            .unwrap()
            .iter()
            .filter_map(|w| w.upgrade())
            .collect();
        let id = self as *const RegularFile as usize;
        for mm in mms {
            mm.invalidate_file(id, start, end, even_cows);
        }
    }

    pub fn seals(&self) -> u32 {
        self.seals.load(Ordering::Relaxed)
    }

    /// How much of a write of `len` bytes at `off` the seals allow, with a
    /// file of `size` bytes: EPERM when sealed against writes; with
    /// F_SEAL_GROW, the page-sized steps that end within the file (Linux
    /// checks each step of a write).
    fn sealed_write_len(&self, size: u64, off: u64, len: usize) -> Result<usize, Errno> {
        let seals = self.seals();
        if seals & (libc::F_SEAL_WRITE | libc::F_SEAL_FUTURE_WRITE) as u32 != 0 {
            return Err(Errno::EPERM);
        }
        let end = off + len as u64;
        if seals & libc::F_SEAL_GROW as u32 == 0 || end <= size {
            return Ok(len);
        }
        let ok_end = (size / PAGE_SIZE) * PAGE_SIZE;
        if ok_end <= off {
            return Err(Errno::EPERM);
        }
        Ok((ok_end - off) as usize)
    }

    /// Reads up to `dst.len()` bytes at `off` of a file of size `size`.
    pub fn read_at(&self, size: u64, off: u64, dst: &mut [u8]) -> usize {
        if off >= size {
            return 0;
        }
        let n = (dst.len() as u64).min(size - off) as usize;
        let data = self.data.lock().unwrap();
        for (start, len, fo) in runs(&data, off, n) {
            let part = &mut dst[start..start + len];
            match fo {
                Some(fo) => self.mf.read_io(fo, part),
                None => part.fill(0),
            }
        }
        n
    }

    /// Writes `src` at `off`, allocating pages; returns the bytes written.
    pub fn write_at(&self, off: u64, src: &[u8]) -> Result<usize, Errno> {
        if src.is_empty() {
            return Ok(0);
        }
        let mut data = self.data.lock().unwrap();
        // Allocate the holes first, so that new pages come out contiguous
        // and each run is written with one copy.
        let first = off / PAGE_SIZE;
        let last = (off + src.len() as u64 - 1) / PAGE_SIZE;
        let mut len = src.len();
        for page in first..=last {
            if data.pages.contains_key(&page) {
                continue;
            }
            match self.mf.allocate(PAGE_SIZE) {
                Ok(fo) => {
                    data.pages.insert(page, fo);
                }
                Err(e) => {
                    let room = (page * PAGE_SIZE).saturating_sub(off) as usize;
                    if room == 0 {
                        return Err(if e == Errno::ENOMEM { Errno::ENOSPC } else { e });
                    }
                    len = room;
                    break;
                }
            }
        }
        for (start, n, fo) in runs(&data, off, len) {
            let fo = fo.expect("allocated above");
            self.mf.write_io(fo, &src[start..start + n]);
        }
        Ok(len)
    }

    /// The memory-file offset of page `index`, allocating it (for shared
    /// mappings of the file).
    pub fn page(&self, index: u64) -> Result<u64, Errno> {
        let mut data = self.data.lock().unwrap();
        if let Some(&fo) = data.pages.get(&index) {
            return Ok(fo);
        }
        let fo = self.mf.allocate(PAGE_SIZE)?;
        data.pages.insert(index, fo);
        Ok(fo)
    }

    /// Frees pages at or past `size` and zeroes the tail of the last page.
    pub fn truncate_pages(&self, size: u64) {
        let mut data = self.data.lock().unwrap();
        let first_gone = size.div_ceil(PAGE_SIZE);
        let gone: Vec<(u64, u64)> = data
            .pages
            .range(first_gone..)
            .map(|(k, v)| (*k, *v))
            .collect();
        for (k, fo) in gone {
            data.pages.remove(&k);
            self.mf.free(fo, PAGE_SIZE);
        }
        if !size.is_multiple_of(PAGE_SIZE) {
            if let Some(&fo) = data.pages.get(&(size / PAGE_SIZE)) {
                let keep = size % PAGE_SIZE;
                self.mf.zero(fo + keep, PAGE_SIZE - keep);
            }
        }
    }

    /// Frees whole pages inside `[start, end)` and zeroes partial ones
    /// (fallocate PUNCH_HOLE).
    pub fn punch(&self, start: u64, end: u64) {
        let whole = (
            start.div_ceil(PAGE_SIZE) * PAGE_SIZE,
            end / PAGE_SIZE * PAGE_SIZE,
        );
        if whole.0 < whole.1 {
            self.invalidate_mappings(whole.0, whole.1, false);
        }
        let mut data = self.data.lock().unwrap();
        let mut pos = start;
        while pos < end {
            let page = pos / PAGE_SIZE;
            let in_page = pos % PAGE_SIZE;
            let chunk = (PAGE_SIZE - in_page).min(end - pos);
            if let Some(&fo) = data.pages.get(&page) {
                if chunk == PAGE_SIZE {
                    data.pages.remove(&page);
                    self.mf.free(fo, PAGE_SIZE);
                } else {
                    self.mf.zero(fo + in_page, chunk);
                }
            }
            pos += chunk;
        }
    }

    /// Allocates pages covering `[start, end)`.
    pub fn allocate(&self, start: u64, end: u64) -> Result<(), Errno> {
        let mut page = start / PAGE_SIZE;
        while page * PAGE_SIZE < end {
            let mut data = self.data.lock().unwrap();
            if let std::collections::btree_map::Entry::Vacant(v) = data.pages.entry(page) {
                let fo = self.mf.allocate(PAGE_SIZE).map_err(|_| Errno::ENOSPC)?;
                v.insert(fo);
            }
            page += 1;
        }
        Ok(())
    }

    pub fn allocated_bytes(&self) -> u64 {
        self.data.lock().unwrap().pages.len() as u64 * PAGE_SIZE
    }

    /// SEEK_DATA / SEEK_HOLE: the next data (or hole) at or after `off`.
    pub fn seek_data(&self, size: u64, off: u64, data_wanted: bool) -> Result<u64, Errno> {
        if off >= size {
            return Err(Errno::ENXIO);
        }
        let data = self.data.lock().unwrap();
        let mut page = off / PAGE_SIZE;
        loop {
            let pos = (page * PAGE_SIZE).max(off);
            if pos >= size {
                return if data_wanted {
                    Err(Errno::ENXIO)
                } else {
                    Ok(size)
                };
            }
            let present = data.pages.contains_key(&page);
            if present == data_wanted {
                return Ok(pos);
            }
            page += 1;
        }
    }
}

impl Drop for RegularFile {
    fn drop(&mut self) {
        let data = self.data.get_mut().unwrap();
        for (_, fo) in std::mem::take(&mut data.pages) {
            self.mf.free(fo, PAGE_SIZE);
        }
    }
}

impl InodeOps for RegularFile {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn open(&self, _t: &Task, inode: &Arc<Inode>, _flags: u32) -> Result<Box<dyn FileImpl>, Errno> {
        Ok(Box::new(RegularFileDescription {
            inode: inode.clone(),
        }))
    }

    fn truncate(&self, inode: &Arc<Inode>, size: u64) -> Result<(), Errno> {
        if size > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let old = {
            let mut m = inode.meta.lock().unwrap();
            let seals = self.seals();
            if (size < m.size && seals & libc::F_SEAL_SHRINK as u32 != 0)
                || (size > m.size && seals & libc::F_SEAL_GROW as u32 != 0)
            {
                return Err(Errno::EPERM);
            }
            // The new size first, so that no new mapping reaches past it.
            std::mem::replace(&mut m.size, size)
        };
        if size < old {
            self.invalidate_mappings(size.div_ceil(PAGE_SIZE) * PAGE_SIZE, u64::MAX, true);
            self.truncate_pages(size);
        }
        let mut m = inode.meta.lock().unwrap();
        m.blocks_bytes = self.allocated_bytes();
        let now = Timespec::now();
        m.mtime = now;
        m.ctime = now;
        Ok(())
    }

    fn xattrs(&self) -> Option<&Mutex<BTreeMap<Vec<u8>, Vec<u8>>>> {
        Some(&self.xattrs)
    }
}

/// The pieces of the file range `[off, off+n)`: (offset in the caller's
/// buffer, length, memory-file offset or None for a hole), with pages that
/// lie next to each other in the memory file joined.
fn runs(data: &FileData, off: u64, n: usize) -> Vec<(usize, usize, Option<u64>)> {
    let mut out: Vec<(usize, usize, Option<u64>)> = Vec::new();
    let mut done = 0usize;
    while done < n {
        let pos = off + done as u64;
        let page = pos / PAGE_SIZE;
        let in_page = pos % PAGE_SIZE;
        let chunk = (PAGE_SIZE as usize - in_page as usize).min(n - done);
        let fo = data.pages.get(&page).map(|&fo| fo + in_page);
        match (out.last_mut(), fo) {
            (Some((s, l, Some(prev))), Some(fo)) if *prev + *l as u64 == fo && *s + *l == done => {
                *l += chunk;
            }
            (Some((s, l, None)), None) if *s + *l == done => *l += chunk,
            _ => out.push((done, chunk, fo)),
        }
        done += chunk;
    }
    out
}

/// An open tmpfs regular file.
pub struct RegularFileDescription {
    pub inode: Arc<Inode>,
}

impl RegularFileDescription {
    fn file(&self) -> &RegularFile {
        self.inode
            .ops
            .as_any()
            .downcast_ref::<RegularFile>()
            .expect("a tmpfs regular file")
    }
}

impl FileImpl for RegularFileDescription {
    fn direct_io(&self) -> bool {
        true
    }

    fn read(
        &self,
        file: &FileDescription,
        dst: &mut [u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let mut pos = file.pos.lock().unwrap();
        let off = offset.unwrap_or(*pos);
        let size = self.inode.meta.lock().unwrap().size;
        let n = self.file().read_at(size, off, dst);
        if offset.is_none() {
            *pos = off + n as u64;
        }
        if file.flags() & libc::O_NOATIME as u32 == 0 {
            self.inode.touch_atime();
        }
        Ok(n)
    }

    fn write(
        &self,
        file: &FileDescription,
        src: &[u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let mut pos = file.pos.lock().unwrap();
        let append = file.flags() & libc::O_APPEND as u32 != 0;
        let off = if append {
            self.inode.meta.lock().unwrap().size
        } else {
            offset.unwrap_or(*pos)
        };
        if off >= MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let src = &src[..(src.len() as u64).min(MAX_FILE_SIZE - off) as usize];
        let size = self.inode.meta.lock().unwrap().size;
        let src = &src[..self.file().sealed_write_len(size, off, src.len())?];
        let n = self.file().write_at(off, src)?;
        {
            let mut m = self.inode.meta.lock().unwrap();
            if off + n as u64 > m.size {
                m.size = off + n as u64;
            }
            m.blocks_bytes = self.file().allocated_bytes();
            let now = Timespec::now();
            m.mtime = now;
            m.ctime = now;
        }
        // pwrite on an O_APPEND file appends but leaves the position.
        if offset.is_none() {
            *pos = off + n as u64;
        }
        Ok(n)
    }

    fn seek(&self, file: &FileDescription, offset: i64, whence: i32) -> Result<u64, Errno> {
        let mut pos = file.pos.lock().unwrap();
        let size = self.inode.meta.lock().unwrap().size;
        if whence == libc::SEEK_DATA || whence == libc::SEEK_HOLE {
            if offset < 0 {
                return Err(Errno::ENXIO);
            }
            let at = self
                .file()
                .seek_data(size, offset as u64, whence == libc::SEEK_DATA)?;
            *pos = at;
            return Ok(at);
        }
        crate::vfs::seek_position(&mut pos, offset, whence, Some(size), Errno::EOVERFLOW)
    }

    fn ioctl(
        &self,
        _file: &FileDescription,
        t: &mut Task,
        request: u32,
        arg: u64,
    ) -> Result<u64, Errno> {
        if request as u64 == libc::FIONREAD {
            let size = self.inode.meta.lock().unwrap().size;
            let pos = *_file.pos.lock().unwrap();
            let n = size.saturating_sub(pos).min(i32::MAX as u64) as i32;
            t.mm.write_obj(arg, &n)?;
            return Ok(0);
        }
        Err(Errno::ENOTTY)
    }

    fn inode(&self) -> Option<Arc<Inode>> {
        Some(self.inode.clone())
    }
}

/// A tmpfs regular file as the memory manager maps it.
pub struct MappedFile {
    inode: Arc<Inode>,
    /// The path it was mapped by.
    name: String,
}

impl MappedFile {
    pub fn new(inode: Arc<Inode>, name: String) -> MappedFile {
        MappedFile { inode, name }
    }

    fn file(&self) -> &RegularFile {
        self.inode
            .ops
            .as_any()
            .downcast_ref::<RegularFile>()
            .expect("a tmpfs regular file")
    }
}

impl crate::mm::MappableFile for MappedFile {
    fn id(&self) -> usize {
        self.file() as *const RegularFile as usize
    }

    fn add_mapper(&self, mm: &Arc<crate::mm::MemoryManager>) {
        self.file().add_mapper(mm);
    }

    fn size(&self) -> u64 {
        self.inode.meta.lock().unwrap().size
    }

    fn page(&self, index: u64) -> Result<u64, Errno> {
        let fo = self.file().page(index)?;
        let mut m = self.inode.meta.lock().unwrap();
        m.blocks_bytes = self.file().allocated_bytes();
        Ok(fo)
    }

    fn identity(&self) -> (u64, u64, String) {
        let mut name = self.name.clone();
        if self.inode.meta.lock().unwrap().nlink == 0 {
            name.push_str(" (deleted)");
        }
        (self.inode.fs.dev, self.inode.ino, name)
    }
}
