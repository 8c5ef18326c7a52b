//! System V shared memory segments (Linux's `ipc/shm.c`).
//!
//! A segment's pages are a tmpfs file's, in an internal file system of
//! the namespace (as Linux's are a shmem file): `shmat` maps that file
//! shared into the caller's address space, so every attaching process
//! and every fork sees the same pages. Each attach is a mapping object
//! of its own ([`ShmMapping`]), which tells its VMAs from another
//! attach's (`shmdt` removes one attach) and names them in
//! `/proc/[pid]/maps` as Linux does (`/SYSV<key> (deleted)`, the
//! identifier as the inode number).
//!
//! `shm_nattch` counts the VMAs that map the segment in every address
//! space that ever mapped it (Linux counts VMAs too: a fork or a split
//! adds one). A segment removed with IPC_RMID while attached is marked
//! SHM_DEST, loses its key, and goes when nothing maps it any more;
//! that is noticed by the next look at the table (any shm call, or
//! /proc/sysvipc/shm), which is the first moment anyone could tell.

use std::sync::{Arc, Mutex, Weak};

use crate::errno::Errno;
use crate::fsimpl::tmpfs::{MappedFile, RegularFile};
use crate::kernel::creds::Credentials;
use crate::mm::{MappableFile, MemoryManager};
use crate::sync::LockExt;
use crate::vfs::inode::{Filesystem, Inode, InodeMeta};

use super::{now, Ids, IpcObject, Perm};

/// `shm_perm.mode` bits: removed while attached, and locked in memory.
pub const SHM_DEST: u32 = 0o1000;
pub const SHM_LOCKED: u32 = 0o2000;

/// SHMMIN, and SHMSEG (segments one process may attach: SHMMNI).
pub const SHMMIN: u64 = 1;
pub const SHMSEG: u64 = 4096;

pub const PAGE: u64 = 4096;

/// One segment.
pub struct Segment {
    pub perm: Perm,
    pub size: u64,
    pub ctime: i64,
    pub cpid: i32,
    /// The attach and detach times and the last process that did either,
    /// which VMAs going away change (under no lock of the table).
    pub times: Arc<Mutex<Times>>,
    /// The tmpfs file holding the pages.
    pub inode: Arc<Inode>,
    /// Address spaces that mapped it.
    mappers: Arc<Mutex<Vec<Weak<MemoryManager>>>>,
}

/// `shm_atime`, `shm_dtime`, `shm_lpid`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Times {
    pub atime: i64,
    pub dtime: i64,
    pub lpid: i32,
}

impl IpcObject for Segment {
    fn perm(&self) -> &Perm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut Perm {
        &mut self.perm
    }
}

impl Segment {
    fn file(&self) -> &RegularFile {
        self.inode
            .ops
            .as_any()
            .downcast_ref::<RegularFile>()
            .expect("a tmpfs regular file")
    }

    /// What identifies the segment's pages to the memory manager.
    pub fn file_id(&self) -> usize {
        self.file() as *const RegularFile as usize
    }

    pub fn pages(&self) -> u64 {
        self.size.div_ceil(PAGE)
    }

    /// Pages with memory behind them.
    pub fn resident_pages(&self) -> u64 {
        self.file().allocated_bytes() / PAGE
    }

    /// VMAs that map the segment, in every address space.
    pub fn nattch(&self) -> u64 {
        let id = self.file_id();
        let mms: Vec<Arc<MemoryManager>> = {
            let mut m = self.mappers.locked();
            m.retain(|w| w.strong_count() > 0);
            m.iter().filter_map(|w| w.upgrade()).collect()
        };
        mms.iter()
            .map(|mm| {
                mm.vmas()
                    .iter()
                    .filter(|(_, v)| v.file.as_ref().is_some_and(|f| f.file.id() == id))
                    .count() as u64
            })
            .sum()
    }

    /// A new attach of the segment: what shmat maps.
    pub fn mapping(&self) -> Arc<ShmMapping> {
        Arc::new(ShmMapping {
            inner: MappedFile::new(self.inode.clone(), String::new()),
            shmid: self.perm.id,
            name: format!("/SYSV{:08x} (deleted)", self.perm.key as u32),
            mappers: self.mappers.clone(),
            times: self.times.clone(),
        })
    }

    /// `struct shmid64_ds`.
    pub fn to_bytes(&self) -> [u8; 112] {
        let mut b = [0u8; 112];
        b[0..48].copy_from_slice(&self.perm.to_bytes());
        let tm = *self.times.locked();
        b[48..56].copy_from_slice(&self.size.to_le_bytes());
        b[56..64].copy_from_slice(&tm.atime.to_le_bytes());
        b[64..72].copy_from_slice(&tm.dtime.to_le_bytes());
        b[72..80].copy_from_slice(&self.ctime.to_le_bytes());
        b[80..84].copy_from_slice(&self.cpid.to_le_bytes());
        b[84..88].copy_from_slice(&tm.lpid.to_le_bytes());
        b[88..96].copy_from_slice(&self.nattch().to_le_bytes());
        b
    }
}

/// One attach of a segment, as its VMAs map it.
pub struct ShmMapping {
    inner: MappedFile,
    pub shmid: i32,
    name: String,
    mappers: Arc<Mutex<Vec<Weak<MemoryManager>>>>,
    times: Arc<Mutex<Times>>,
}

impl ShmMapping {
    pub fn times(&self) -> &Mutex<Times> {
        &self.times
    }
}

impl MappableFile for ShmMapping {
    fn id(&self) -> usize {
        self.inner.id()
    }
    fn add_mapper(&self, mm: &Arc<MemoryManager>) {
        self.inner.add_mapper(mm);
        let mut v = self.mappers.locked();
        v.retain(|w| w.strong_count() > 0);
        if !v.iter().any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(mm))) {
            v.push(Arc::downgrade(mm));
        }
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn page(&self, index: u64) -> Result<u64, Errno> {
        self.inner.page(index)
    }
    fn identity(&self) -> (u64, u64, String) {
        let (dev, _, _) = self.inner.identity();
        (dev, self.shmid as u64, self.name.clone())
    }
    /// A VMA of the attach went: a detach (Linux's `shm_close`).
    fn unmapped(&self, owner: i32) {
        let mut t = self.times.locked();
        t.dtime = now();
        t.lpid = owner;
    }
}

/// The namespace's segments.
#[derive(Default)]
pub struct ShmState {
    pub ids: Ids<Segment>,
    /// The internal file system of the segments' files.
    fs: Option<Arc<Filesystem>>,
}

impl ShmState {
    /// Pages of all segments (`shm_tot`).
    pub fn total_pages(&self) -> u64 {
        self.ids.iter().map(|s| s.pages()).sum()
    }

    /// Drops segments removed while attached that nothing maps any more.
    pub fn reap(&mut self) {
        self.ids
            .retain(|s| s.perm.mode & SHM_DEST == 0 || s.nattch() > 0);
    }

    /// The internal file system of the segments' files.
    pub fn fs(&mut self, vfs: &crate::vfs::VfsState) -> Arc<Filesystem> {
        self.fs
            .get_or_insert_with(|| {
                Filesystem::new(vfs, "tmpfs", "tmpfs", crate::fsimpl::tmpfs::TMPFS_MAGIC, "")
            })
            .clone()
    }
}

/// What a new segment is made of and in.
pub struct NewSegment<'a> {
    pub fs: &'a Arc<Filesystem>,
    pub mf: &'a Arc<crate::mm::MemoryFile>,
    pub limits: &'a super::Limits,
    /// Pages of the segments there are.
    pub total_pages: u64,
    pub key: i32,
    pub size: u64,
    pub flags: i32,
    pub creds: &'a Credentials,
    pub tgid: i32,
}

/// Linux's `newseg`, once `ipcget` decided to make one.
pub fn new_segment(ids: &mut Ids<Segment>, n: NewSegment<'_>) -> Result<i32, Errno> {
    let get = super::Limits::get;
    let size = n.size;
    if size < SHMMIN || size > get(&n.limits.shmmax) as u64 {
        return Err(Errno::EINVAL);
    }
    let pages = size.div_ceil(PAGE);
    if n.total_pages
        .checked_add(pages)
        .is_none_or(|p| p > get(&n.limits.shmall) as u64)
    {
        return Err(Errno::ENOSPC);
    }
    if n.flags & SHM_HUGETLB != 0 {
        // The sandbox has no huge page pool, as a Linux host with
        // vm.nr_hugepages = 0 (hugetlb_reserve_pages fails).
        return Err(Errno::ENOMEM);
    }
    let limit = get(&n.limits.shmmni) as usize;
    let perm = Perm::new(n.key, n.flags, n.creds);
    let (fs, mf, tgid) = (n.fs, n.mf, n.tgid);
    ids.add(limit, |_, _| {
        let mut meta = InodeMeta::new(libc::S_IFREG | (perm.mode & 0o777), perm.uid, perm.gid);
        meta.nlink = 0;
        meta.size = size;
        let inode = Inode::new(fs, meta, Box::new(RegularFile::new(mf, fs)));
        Segment {
            perm,
            size,
            ctime: now(),
            cpid: tgid,
            times: Arc::new(Mutex::new(Times::default())),
            inode,
            mappers: Arc::new(Mutex::new(Vec::new())),
        }
    })
}

/// shmget's SHM_HUGETLB.
pub const SHM_HUGETLB: i32 = 0o4000;
