//! tmpfs: a file system that lives in the sentry's memory. Regular file
//! data lives in the memory file, page by page, so that it can be mapped
//! into guests.

use crate::sync::LockExt;
use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::errno::Errno;

use crate::kernel::task::Task;
use crate::mm::MemoryFile;
use crate::vfs::inode::{
    dt_type, DirEntry, Filesystem, FsStats, Inode, InodeMeta, InodeOps, NewNode, Timespec,
};
use crate::vfs::{FileDescription, FileImpl};
use platform::PAGE_SIZE;

/// statfs f_type of tmpfs.
pub const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Linux's MAX_LFS_FILESIZE.
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// A new tmpfs instance: its file system and root directory.
pub fn new_tmpfs(
    vfs: &crate::vfs::VfsState,
    mf: &Arc<MemoryFile>,
    source: &str,
    mode: u32,
    uid: u32,
    gid: u32,
) -> (Arc<Filesystem>, Arc<Inode>) {
    let fs = Filesystem::new(vfs, "tmpfs", source, TMPFS_MAGIC, "");
    {
        let mut st = fs.stats.locked();
        // Linux's defaults: half of memory, as many inodes as pages.
        st.blocks = default_blocks();
        st.blocks_free = st.blocks;
        st.files = default_blocks();
        st.files_free = st.files;
    }
    let root = new_dir(&fs, mf, libc::S_IFDIR | (mode & 0o7777), uid, gid);
    let mut m = root.meta.locked();
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
        self.entries.locked().is_empty()
    }

    /// The entry `name`, without a task (for an overlay's upper layer).
    pub fn get(&self, name: &[u8]) -> Option<Arc<Inode>> {
        self.entries.locked().get(name)
    }

    /// As [`InodeOps::create`], owned by `uid`/`gid` rather than by the
    /// caller's credentials (an overlay's copy-up and whiteouts).
    pub fn create_as(
        &self,
        dir: &Arc<Inode>,
        name: &[u8],
        node: NewNode,
        uid: u32,
        gid: u32,
    ) -> Result<Arc<Inode>, Errno> {
        let mut e = self.entries.locked();
        if e.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
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
                dir.meta.locked().nlink += 1;
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
                    libc::S_IFREG => Box::new(RegularFile::new(&self.mf, &dir.fs)),
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
}

impl InodeOps for Dir {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, _t: &Task, _dir: &Arc<Inode>, name: &[u8]) -> Result<Arc<Inode>, Errno> {
        self.entries.locked().get(name).ok_or(Errno::ENOENT)
    }

    fn entries(&self, _t: &Task, _dir: &Arc<Inode>) -> Result<Vec<DirEntry>, Errno> {
        let e = self.entries.locked();
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
        self.create_as(dir, name, node, t.creds.fsuid, t.creds.fsgid)
    }

    fn insert(
        &self,
        dir: &Arc<Inode>,
        name: &[u8],
        target: &Arc<Inode>,
        replace: bool,
    ) -> Result<Option<Arc<Inode>>, Errno> {
        let mut e = self.entries.locked();
        if !replace && e.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
        let old = e.insert(name, target.clone());
        drop(e);
        target.set_parent(dir, name);
        if target.is_dir() {
            dir.meta.locked().nlink += 1;
        }
        if let Some(o) = &old {
            if o.is_dir() {
                dir.meta.locked().nlink -= 1;
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
            dir.meta.locked().nlink -= 1;
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

/// The sandbox's memory in pages: what a tmpfs's default size is half of,
/// and what bounds a tmpfs without a size (and the memfds).
pub fn memory_pages() -> u64 {
    static PAGES: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PAGES.get_or_init(|| match crate::hostcall::physical_memory() {
        0 => (1 << 30) / PAGE_SIZE,
        m => m / PAGE_SIZE,
    })
}

/// Linux's default tmpfs size, in pages: half of memory.
pub fn default_blocks() -> u64 {
    memory_pages() / 2
}

/// The most pages the file system may hold: its size, or memory for a
/// tmpfs without one.
fn block_limit(st: &FsStats) -> u64 {
    if st.blocks != 0 {
        st.blocks
    } else {
        memory_pages()
    }
}

/// Takes `pages` of the file system's space: all of them, or none and
/// ENOSPC.
fn charge(fs: &Filesystem, pages: u64) -> Result<(), Errno> {
    let mut st = fs.stats.locked();
    if block_limit(&st).saturating_sub(st.blocks_used) < pages {
        return Err(Errno::ENOSPC);
    }
    st.blocks_used += pages;
    st.blocks_free = st.blocks.saturating_sub(st.blocks_used);
    Ok(())
}

/// Takes up to `pages` of the file system's space; returns how many.
fn charge_up_to(fs: &Filesystem, pages: u64) -> u64 {
    let mut st = fs.stats.locked();
    let got = block_limit(&st).saturating_sub(st.blocks_used).min(pages);
    st.blocks_used += got;
    st.blocks_free = st.blocks.saturating_sub(st.blocks_used);
    got
}

/// Gives back `pages` of the file system's space.
fn uncharge(fs: &Filesystem, pages: u64) {
    let mut st = fs.stats.locked();
    st.blocks_used -= pages;
    st.blocks_free = st.blocks.saturating_sub(st.blocks_used);
}

/// A run of a file's pages that lie together in the memory file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Extent {
    /// Pages in the run.
    len: u64,
    /// Memory-file offset of its first page.
    fo: u64,
    /// Whether the pages hold data. Pages that fallocate made and nothing
    /// has written read as zeroes and are holes to SEEK_DATA, as Linux's
    /// !Uptodate tmpfs pages are.
    written: bool,
}

/// A regular file's pages, as extents: page index of an extent's first
/// page -> the extent. Extents never overlap; pages in none are holes.
/// Space is bookkept per extent, never per page, so that a file of any
/// size costs the sentry memory in proportion to its pieces.
#[derive(Default)]
pub struct FileData {
    extents: BTreeMap<u64, Extent>,
    /// Pages in all extents.
    pages: u64,
}

impl FileData {
    /// The extent holding page `p`, with its first page.
    fn find(&self, p: u64) -> Option<(u64, Extent)> {
        let (&s, &e) = self.extents.range(..=p).next_back()?;
        (p - s < e.len).then_some((s, e))
    }

    /// The memory-file offset of page `p`.
    fn lookup(&self, p: u64) -> Option<u64> {
        self.find(p).map(|(s, e)| e.fo + (p - s) * PAGE_SIZE)
    }

    /// The extents that overlap pages `[a, b)`, clipped to them, in order.
    fn overlapping(&self, a: u64, b: u64) -> Vec<(u64, Extent)> {
        let mut out = Vec::new();
        if a >= b {
            return out;
        }
        let head = self.find(a).filter(|&(s, _)| s < a);
        for (s, e) in head
            .into_iter()
            .chain(self.extents.range(a..b).map(|(&s, &e)| (s, e)))
        {
            let cs = s.max(a);
            let ce = (s + e.len).min(b);
            out.push((
                cs,
                Extent {
                    len: ce - cs,
                    fo: e.fo + (cs - s) * PAGE_SIZE,
                    written: e.written,
                },
            ));
        }
        out
    }

    /// The holes in pages `[a, b)`: (first page, pages).
    fn holes(&self, a: u64, b: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut pos = a;
        for (s, e) in self.overlapping(a, b) {
            if s > pos {
                out.push((pos, s - pos));
            }
            pos = s + e.len;
        }
        if pos < b {
            out.push((pos, b - pos));
        }
        out
    }

    /// Makes page `p` start an extent if an extent holds it.
    fn split_at(&mut self, p: u64) {
        if let Some((s, e)) = self.find(p) {
            if s < p {
                let head = p - s;
                self.extents.insert(s, Extent { len: head, ..e });
                self.extents.insert(
                    p,
                    Extent {
                        len: e.len - head,
                        fo: e.fo + head * PAGE_SIZE,
                        written: e.written,
                    },
                );
            }
        }
    }

    /// Takes pages `[a, b)` out of the file; returns the memory-file
    /// ranges they held (offset, pages), for freeing.
    fn remove(&mut self, a: u64, b: u64) -> Vec<(u64, u64)> {
        if a >= b {
            return Vec::new();
        }
        self.split_at(a);
        self.split_at(b);
        let keys: Vec<u64> = self.extents.range(a..b).map(|(&s, _)| s).collect();
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let e = self.extents.remove(&k).unwrap();
            self.pages -= e.len;
            match out.last_mut() {
                Some((fo, n)) if *fo + *n * PAGE_SIZE == e.fo => *n += e.len,
                _ => out.push((e.fo, e.len)),
            }
        }
        out
    }

    /// Puts `e` at page `p`, which starts a hole of at least `e.len`
    /// pages, joining it with neighbours that continue it.
    fn insert(&mut self, p: u64, mut e: Extent) {
        self.pages += e.len;
        let mut start = p;
        if let Some((&ps, &pe)) = self.extents.range(..p).next_back() {
            if ps + pe.len == p && pe.fo + pe.len * PAGE_SIZE == e.fo && pe.written == e.written {
                start = ps;
                e = Extent {
                    len: pe.len + e.len,
                    fo: pe.fo,
                    written: e.written,
                };
            }
        }
        let next = start + e.len;
        if let Some(&ne) = self.extents.get(&next) {
            if e.fo + e.len * PAGE_SIZE == ne.fo && ne.written == e.written {
                self.extents.remove(&next);
                e.len += ne.len;
            }
        }
        self.extents.insert(start, e);
    }

    /// Marks pages `[a, b)` (all in extents) as holding data.
    fn mark_written(&mut self, a: u64, b: u64) {
        let unwritten: Vec<(u64, Extent)> = self
            .overlapping(a, b)
            .into_iter()
            .filter(|(_, e)| !e.written)
            .collect();
        for (s, e) in unwritten {
            self.remove(s, s + e.len);
            self.insert(s, Extent { written: true, ..e });
        }
    }
}

/// Where a read's bytes go.
pub enum ReadDst<'a> {
    Buf(&'a mut [u8]),
    /// A range of the memory file, by its offset.
    Memory(u64),
}

/// Where a write's bytes come from.
pub enum WriteSrc<'a> {
    Buf(&'a [u8]),
    /// A range of the memory file, by its offset.
    Memory(u64),
}

pub struct RegularFile {
    mf: Arc<MemoryFile>,
    /// The file system whose space the file's pages take.
    fs: Arc<Filesystem>,
    data: Mutex<FileData>,
    xattrs: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    /// File seals (`F_SEAL_*`). Every tmpfs file has them; only memfds
    /// made with MFD_ALLOW_SEALING start without F_SEAL_SEAL.
    pub seals: AtomicU32,
    /// Address spaces that map the file, for taking pages away from them
    /// before they are freed (truncate, punching holes).
    mappers: Mutex<Vec<std::sync::Weak<crate::mm::MemoryManager>>>,
}

impl RegularFile {
    /// A new empty file whose pages count against `fs`'s size.
    pub fn new(mf: &Arc<MemoryFile>, fs: &Arc<Filesystem>) -> RegularFile {
        RegularFile {
            mf: mf.clone(),
            fs: fs.clone(),
            data: Mutex::new(FileData::default()),
            xattrs: Mutex::new(BTreeMap::new()),
            seals: AtomicU32::new(libc::F_SEAL_SEAL as u32),
            mappers: Mutex::new(Vec::new()),
        }
    }

    /// Records that `mm` maps this file.
    pub fn add_mapper(&self, mm: &Arc<crate::mm::MemoryManager>) {
        let mut v = self.mappers.locked();
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

    /// Frees memory-file ranges (offset, pages) taken out of the file.
    fn release(&self, ranges: Vec<(u64, u64)>) {
        let mut pages = 0;
        for (fo, n) in ranges {
            self.mf.free(fo, n * PAGE_SIZE);
            pages += n;
        }
        if pages != 0 {
            uncharge(&self.fs, pages);
        }
    }

    /// Fills the hole of `n` pages at page `p` with new memory, already
    /// charged to the file system, in as few pieces as the memory file
    /// allows. Returns the pages filled from `p` on (fewer when the memory
    /// file is full).
    fn fill(&self, data: &mut FileData, p: u64, n: u64, written: bool) -> u64 {
        let mut done = 0;
        let mut chunk = n;
        while done < n {
            chunk = chunk.min(n - done);
            match self.mf.allocate(chunk * PAGE_SIZE) {
                Ok(fo) => {
                    data.insert(
                        p + done,
                        Extent {
                            len: chunk,
                            fo,
                            written,
                        },
                    );
                    done += chunk;
                }
                Err(_) if chunk > 1 => chunk /= 2,
                Err(_) => break,
            }
        }
        done
    }

    /// Reads up to `len` bytes at `off` of a file of size `size` into
    /// `dst`.
    pub fn read_at(&self, size: u64, off: u64, mut dst: ReadDst<'_>, len: usize) -> usize {
        if off >= size {
            return 0;
        }
        let n = (len as u64).min(size - off) as usize;
        let data = self.data.locked();
        for (start, len, fo) in runs(&data, off, n) {
            match (&mut dst, fo) {
                (ReadDst::Buf(b), Some(fo)) => self.mf.read_io(fo, &mut b[start..start + len]),
                (ReadDst::Buf(b), None) => b[start..start + len].fill(0),
                (ReadDst::Memory(m), Some(fo)) => {
                    self.mf.copy_io(fo, *m + start as u64, len as u64)
                }
                (ReadDst::Memory(m), None) => self.mf.zero(*m + start as u64, len as u64),
            }
        }
        n
    }

    /// Writes `len` bytes of `src` at `off`, allocating pages; returns the
    /// bytes written: short, or ENOSPC, when the file system is full.
    pub fn write_at(&self, off: u64, src: WriteSrc<'_>, len: usize) -> Result<usize, Errno> {
        if len == 0 {
            return Ok(0);
        }
        let mut data = self.data.locked();
        // Fill the holes first, so that each run is written with one copy.
        let first = off / PAGE_SIZE;
        let last = (off + len as u64 - 1) / PAGE_SIZE;
        let mut len = len;
        for (hs, hn) in data.holes(first, last + 1) {
            let got = charge_up_to(&self.fs, hn);
            let filled = self.fill(&mut data, hs, got, true);
            if filled < got {
                uncharge(&self.fs, got - filled);
            }
            if filled < hn {
                let room = ((hs + filled) * PAGE_SIZE).saturating_sub(off) as usize;
                if room == 0 {
                    return Err(Errno::ENOSPC);
                }
                len = room;
                break;
            }
        }
        data.mark_written(first, (off + len as u64 - 1) / PAGE_SIZE + 1);
        for (start, n, fo) in runs(&data, off, len) {
            let fo = fo.expect("allocated above");
            match &src {
                WriteSrc::Buf(b) => self.mf.write_io(fo, &b[start..start + n]),
                WriteSrc::Memory(m) => self.mf.copy_io(*m + start as u64, fo, n as u64),
            }
        }
        Ok(len)
    }

    /// The memory-file offset of page `index`, allocating it (for shared
    /// mappings of the file): ENOSPC when the file system is full.
    pub fn page(&self, index: u64) -> Result<u64, Errno> {
        let mut data = self.data.locked();
        if data.find(index).is_some_and(|(_, e)| !e.written) {
            data.mark_written(index, index + 1);
        }
        if let Some(fo) = data.lookup(index) {
            return Ok(fo);
        }
        charge(&self.fs, 1)?;
        if self.fill(&mut data, index, 1, true) == 0 {
            uncharge(&self.fs, 1);
            return Err(Errno::ENOSPC);
        }
        Ok(data.lookup(index).expect("filled above"))
    }

    /// Frees pages at or past `size` and zeroes the tail of the last page.
    pub fn truncate_pages(&self, size: u64) {
        let mut data = self.data.locked();
        let gone = data.remove(size.div_ceil(PAGE_SIZE), u64::MAX);
        if !size.is_multiple_of(PAGE_SIZE) {
            if let Some(fo) = data.lookup(size / PAGE_SIZE) {
                let keep = size % PAGE_SIZE;
                self.mf.zero(fo + keep, PAGE_SIZE - keep);
            }
        }
        drop(data);
        self.release(gone);
    }

    /// Frees whole pages inside `[start, end)` and zeroes partial ones
    /// (fallocate PUNCH_HOLE).
    pub fn punch(&self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let whole = (start.div_ceil(PAGE_SIZE), end / PAGE_SIZE);
        if whole.0 < whole.1 {
            self.invalidate_mappings(whole.0 * PAGE_SIZE, whole.1 * PAGE_SIZE, false);
        }
        let mut data = self.data.locked();
        let gone = data.remove(whole.0, whole.1);
        // The partial pages at either end.
        let head = start / PAGE_SIZE;
        if !start.is_multiple_of(PAGE_SIZE) {
            if let Some(fo) = data.lookup(head) {
                let stop = end.min((head + 1) * PAGE_SIZE);
                self.mf.zero(fo + start % PAGE_SIZE, stop - start);
            }
        }
        let tail = end / PAGE_SIZE;
        if !end.is_multiple_of(PAGE_SIZE) && tail * PAGE_SIZE >= start {
            if let Some(fo) = data.lookup(tail) {
                self.mf.zero(fo, end % PAGE_SIZE);
            }
        }
        drop(data);
        self.release(gone);
    }

    /// Allocates pages covering `[start, end)` (fallocate): all of them,
    /// or none and ENOSPC.
    pub fn allocate(&self, start: u64, end: u64) -> Result<(), Errno> {
        let mut data = self.data.locked();
        let holes = data.holes(start / PAGE_SIZE, end.div_ceil(PAGE_SIZE));
        let want: u64 = holes.iter().map(|h| h.1).sum();
        charge(&self.fs, want)?;
        for (i, &(hs, hn)) in holes.iter().enumerate() {
            let filled = self.fill(&mut data, hs, hn, false);
            if filled < hn {
                // The memory file is full: undo this call's allocations.
                let mut gone = data.remove(hs, hs + filled);
                for &(s, n) in &holes[..i] {
                    gone.extend(data.remove(s, s + n));
                }
                drop(data);
                uncharge(
                    &self.fs,
                    want - filled - holes[..i].iter().map(|h| h.1).sum::<u64>(),
                );
                self.release(gone);
                return Err(Errno::ENOSPC);
            }
        }
        Ok(())
    }

    pub fn allocated_bytes(&self) -> u64 {
        self.data.locked().pages * PAGE_SIZE
    }

    /// The offset just past the file's last allocated page (0 without
    /// pages).
    pub fn allocated_end(&self) -> u64 {
        let data = self.data.locked();
        data.extents
            .iter()
            .next_back()
            .map_or(0, |(&s, e)| (s + e.len) * PAGE_SIZE)
    }

    /// SEEK_DATA / SEEK_HOLE: the next data (or hole) at or after `off`.
    pub fn seek_data(&self, size: u64, off: u64, data_wanted: bool) -> Result<u64, Errno> {
        if off >= size {
            return Err(Errno::ENXIO);
        }
        let data = self.data.locked();
        let p = off / PAGE_SIZE;
        // Written extents from the one holding `p` on.
        let mut written = data
            .find(p)
            .into_iter()
            .chain(data.extents.range(p + 1..).map(|(&s, &e)| (s, e)))
            .filter(|(_, e)| e.written);
        if data_wanted {
            return match written.next() {
                Some((s, _)) => {
                    let pos = (s * PAGE_SIZE).max(off);
                    if pos < size {
                        Ok(pos)
                    } else {
                        Err(Errno::ENXIO)
                    }
                }
                None => Err(Errno::ENXIO),
            };
        }
        // The hole: the first page from `p` on that no written extent
        // holds.
        let mut pos = p;
        for (s, e) in written {
            if s > pos {
                break;
            }
            pos = s + e.len;
        }
        Ok((pos * PAGE_SIZE).max(off).min(size))
    }
}

impl Drop for RegularFile {
    fn drop(&mut self) {
        let data = self.data.get_mut().unwrap();
        let gone = data.remove(0, u64::MAX);
        self.release(gone);
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
            let mut m = inode.meta.locked();
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
        let mut m = inode.meta.locked();
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
/// buffer, length, memory-file offset or None for a hole), one a run of
/// an extent or a hole.
fn runs(data: &FileData, off: u64, n: usize) -> Vec<(usize, usize, Option<u64>)> {
    let mut out: Vec<(usize, usize, Option<u64>)> = Vec::new();
    if n == 0 {
        return out;
    }
    let end = off + n as u64;
    let mut pos = off;
    for (s, e) in data.overlapping(off / PAGE_SIZE, (end - 1) / PAGE_SIZE + 1) {
        let es = (s * PAGE_SIZE).max(off);
        let ee = ((s + e.len) * PAGE_SIZE).min(end);
        if es > pos {
            out.push(((pos - off) as usize, (es - pos) as usize, None));
        }
        let fo = e.fo + (es - s * PAGE_SIZE);
        match out.last_mut() {
            // Extents that lie together in the memory file read as one.
            Some((bs, bl, Some(prev)))
                if *prev + *bl as u64 == fo && *bs + *bl == (es - off) as usize =>
            {
                *bl += (ee - es) as usize;
            }
            _ => out.push(((es - off) as usize, (ee - es) as usize, Some(fo))),
        }
        pos = ee;
    }
    if pos < end {
        out.push(((pos - off) as usize, (end - pos) as usize, None));
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

impl RegularFileDescription {
    fn read_into(
        &self,
        file: &FileDescription,
        dst: ReadDst<'_>,
        len: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let mut pos = file.pos.locked();
        let off = offset.unwrap_or(*pos);
        let size = self.inode.meta.locked().size;
        let n = self.file().read_at(size, off, dst, len);
        if offset.is_none() {
            *pos = off + n as u64;
        }
        if file.flags() & libc::O_NOATIME as u32 == 0 {
            self.inode.touch_atime();
        }
        Ok(n)
    }

    fn write_from(
        &self,
        file: &FileDescription,
        src: WriteSrc<'_>,
        len: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let mut pos = file.pos.locked();
        let append = file.flags() & libc::O_APPEND as u32 != 0;
        let off = if append {
            self.inode.meta.locked().size
        } else {
            offset.unwrap_or(*pos)
        };
        if off >= MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let len = (len as u64).min(MAX_FILE_SIZE - off) as usize;
        let size = self.inode.meta.locked().size;
        let len = self.file().sealed_write_len(size, off, len)?;
        let n = self.file().write_at(off, src, len)?;
        {
            let mut m = self.inode.meta.locked();
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
        let len = dst.len();
        self.read_into(file, ReadDst::Buf(dst), len, offset)
    }

    fn read_to_memory(
        &self,
        file: &FileDescription,
        mf: &MemoryFile,
        dst: u64,
        len: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        debug_assert!(std::ptr::eq(mf, &*self.file().mf));
        self.read_into(file, ReadDst::Memory(dst), len, offset)
    }

    fn write(
        &self,
        file: &FileDescription,
        src: &[u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        self.write_from(file, WriteSrc::Buf(src), src.len(), offset)
    }

    fn write_from_memory(
        &self,
        file: &FileDescription,
        mf: &MemoryFile,
        src: u64,
        len: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        debug_assert!(std::ptr::eq(mf, &*self.file().mf));
        self.write_from(file, WriteSrc::Memory(src), len, offset)
    }

    fn seek(&self, file: &FileDescription, offset: i64, whence: i32) -> Result<u64, Errno> {
        let mut pos = file.pos.locked();
        let size = self.inode.meta.locked().size;
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
            let size = self.inode.meta.locked().size;
            let pos = *_file.pos.locked();
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
        self.inode.meta.locked().size
    }

    fn page(&self, index: u64) -> Result<u64, Errno> {
        let fo = self.file().page(index)?;
        let mut m = self.inode.meta.locked();
        m.blocks_bytes = self.file().allocated_bytes();
        Ok(fo)
    }

    fn identity(&self) -> (u64, u64, String) {
        let mut name = self.name.clone();
        if self.inode.meta.locked().nlink == 0 {
            name.push_str(" (deleted)");
        }
        (self.inode.fs.dev, self.inode.ino, name)
    }
}
