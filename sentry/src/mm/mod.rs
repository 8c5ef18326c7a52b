//! The memory manager: one per guest address space.
//!
//! Two maps describe an address space, as in Linux and gVisor:
//!
//! * VMAs (`vmas`): what the guest asked for with mmap, brk and the loader
//!   (ranges, protection, sharing, growth direction);
//! * PMAs (`pmas`): which ranges of the memory file back which guest pages,
//!   and whether the platform currently has them mapped, with what
//!   protection.
//!
//! VMAs are backed lazily: the first access (a guest page fault, or a copy by
//! the sentry) allocates memory-file ranges for a window around it and maps
//! them into the platform address space in one call.
//!
//! Private memory belongs to its PMAs: a PMA allocates its memory-file range
//! and frees it when it goes. Shared anonymous memory is an object of its own
//! ([`SharedMemory`], Linux's shmem file behind `MAP_SHARED|MAP_ANONYMOUS`):
//! every VMA that maps it (after `mremap` moves or duplicates it) shows the
//! same pages, its PMAs only point into it, and it keeps the size it was
//! created with; pages of a mapping beyond that size fault with SIGBUS.
//!
//! The errors and their order follow Linux's `mm/mmap.c`, `mm/mprotect.c`,
//! `mm/mremap.c` and `mm/madvise.c`.

pub mod cached;
pub mod io;
pub mod memory_file;

use crate::sync::LockExt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::errno::Errno;
use platform::{AddressSpace, Prot, PAGE_SIZE};

pub use memory_file::MemoryFile;

/// How much memory one fault backs at most: the aligned window around the
/// faulting address, clipped to its VMA.
const FAULT_WINDOW: u64 = 2 << 20;

/// si_code of a fault on an address with no mapping.
pub const SEGV_MAPERR: i32 = 1;
/// si_code of a fault the mapping's protection did not allow.
pub const SEGV_ACCERR: i32 = 2;
/// si_code of a bus error: an access past the end of shared memory.
pub const BUS_ADRERR: i32 = 2;

/// Linux's `mmap_min_addr` default.
pub const MMAP_MIN_ADDR: u64 = 0x10000;

/// Linux's TASK_SIZE on x86-64 with 4-level page tables: the bound its
/// argument checks use. The sandbox's own address space ends lower
/// ([`MemoryManager::max_addr`]); nothing is ever mapped in between.
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// Linux's `stack_guard_gap`: 256 pages.
const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;

/// Linux's `vm.max_map_count` default.
const MAX_MAP_COUNT: usize = 65530;

/// Where MAP_32BIT mappings go: the second GiB, as on Linux.
const MAP_32BIT_START: u64 = 0x4000_0000;
const MAP_32BIT_END: u64 = 0x8000_0000;

pub fn page_down(a: u64) -> u64 {
    a & !(PAGE_SIZE - 1)
}

/// Rounds up to a page boundary; `None` on overflow.
pub fn page_up(a: u64) -> Option<u64> {
    a.checked_add(PAGE_SIZE - 1).map(|v| v & !(PAGE_SIZE - 1))
}

/// Linux's PAGE_ALIGN: rounds up to a page boundary, wrapping to 0 past the
/// top.
fn page_align(a: u64) -> u64 {
    a.wrapping_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// What a VMA is, for `/proc/[pid]/maps` and for growth rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmaKind {
    Anonymous,
    Heap,
    Stack,
    /// A private copy of a file's pages made by the loader (name = path).
    File(String),
    /// The vDSO's parameter page: never writable or executable.
    Vvar,
    /// The vDSO.
    Vdso,
}

impl VmaKind {
    /// Linux's special mappings ([vvar], [vdso]) cannot be split: an
    /// mprotect or munmap of part of one fails with EINVAL.
    pub fn unsplittable(&self) -> bool {
        matches!(self, VmaKind::Vvar | VmaKind::Vdso)
    }
}

/// Shared anonymous memory: a range of the memory file of a fixed size,
/// freed when the last VMA that maps it goes.
pub struct SharedMemory {
    mf: Arc<MemoryFile>,
    /// Offset in the memory file of its first byte.
    off: u64,
    /// Its size in bytes (page-aligned).
    size: u64,
}

impl SharedMemory {
    fn new(mf: &Arc<MemoryFile>, size: u64) -> Result<Arc<SharedMemory>, Errno> {
        let off = mf.allocate(size)?;
        Ok(Arc::new(SharedMemory {
            mf: mf.clone(),
            off,
            size,
        }))
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        self.mf.free(self.off, self.size);
    }
}

impl std::fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMemory")
            .field("off", &self.off)
            .field("size", &self.size)
            .finish()
    }
}

/// A file whose pages can be mapped into guests: its pages live in the
/// memory file (tmpfs files, memfds).
pub trait MappableFile: Send + Sync {
    /// Identifies the file (the same for every handle on it).
    fn id(&self) -> usize;
    /// Records that `mm` maps the file, so that truncation can take pages
    /// away from it.
    fn add_mapper(&self, mm: &Arc<MemoryManager>);
    /// The file's size in bytes: pages past it give SIGBUS.
    fn size(&self) -> u64;
    /// The memory-file offset of page `index`, allocated if it is a hole.
    fn page(&self, index: u64) -> Result<u64, Errno>;
    /// Device, inode number and path, for `/proc/[pid]/maps`.
    fn identity(&self) -> (u64, u64, String);
    /// Called when a shared mapping is made from a description open for
    /// writing: files whose pages are a cache of data kept elsewhere (a
    /// host file) must write them back from now on.
    fn mapped_shared_writable(&self) {}
    /// Writes pages that shared mappings may have changed back to where
    /// the file's data lives (msync); nothing for files whose pages are
    /// their data.
    fn write_back(&self) -> Result<(), Errno> {
        Ok(())
    }
    /// A VMA that mapped the file went (munmap, exit, exec, a mapping
    /// over it), in the address space of process `owner` (Linux's
    /// `vm_ops->close`).
    fn unmapped(&self, owner: i32) {
        let _ = owner;
    }
}

/// A VMA's file: shared mappings write to the file's pages; private ones
/// read them until the first write to a page copies it.
#[derive(Clone)]
pub struct FileMap {
    pub file: Arc<dyn MappableFile>,
    pub shared: bool,
}

impl std::fmt::Debug for FileMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileMap")
            .field("file", &self.file.identity())
            .field("shared", &self.shared)
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct Vma {
    pub end: u64,
    pub prot: Prot,
    pub growsdown: bool,
    pub kind: VmaKind,
    /// The shared memory the VMA maps; `None` for private memory.
    pub shm: Option<Arc<SharedMemory>>,
    /// The file the VMA maps (`off` is then the file offset of its start).
    pub file: Option<FileMap>,
    /// The offset of the VMA's first byte in what it maps: in its shared
    /// memory, or for private memory the address where it was first mapped
    /// (Linux's anonymous `vm_pgoff`, which a move with mremap keeps and
    /// which must line up for neighbours to merge).
    pub off: u64,
    /// What a fork does with it (MADV_DONTFORK, MADV_WIPEONFORK).
    pub on_fork: OnFork,
    /// Linux's VM_ACCOUNT: a private mapping that has been writable keeps
    /// it after mprotect takes write away, and does not merge with one
    /// that never was (a program's RELRO part stays apart from its
    /// read-only segment).
    pub accounted: bool,
}

/// What fork does with a VMA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnFork {
    /// The child gets it (copy-on-write for private memory).
    #[default]
    Copy,
    /// The child does not get it (MADV_DONTFORK).
    Skip,
    /// The child gets it empty (MADV_WIPEONFORK).
    Wipe,
}

impl Vma {
    pub fn shared(&self) -> bool {
        self.shm.is_some() || self.file.as_ref().is_some_and(|f| f.shared)
    }

    /// A private mapping of a file: its pages are copied on first write.
    fn copy_on_write(&self) -> bool {
        self.file.as_ref().is_some_and(|f| !f.shared)
    }

    /// The protection to map a PMA with: private file pages that are still
    /// the file's, and private pages shared since a fork, are mapped
    /// without write access.
    fn map_prot(&self, p: &Pma) -> Prot {
        if (self.copy_on_write() && !p.owned) || p.cow {
            Prot {
                write: false,
                ..self.prot
            }
        } else {
            self.prot
        }
    }

    /// Whether RLIMIT_DATA counts it (Linux's `is_data_mapping`).
    fn is_data(&self) -> bool {
        is_data(self.prot, self.shared(), self.growsdown)
    }

    /// Where the guest address `a` (inside this VMA, which starts at
    /// `start`) lies in its shared memory: the memory and the offset.
    fn shm_at(&self, start: u64, a: u64) -> Option<(&Arc<SharedMemory>, u64)> {
        self.shm.as_ref().map(|m| (m, self.off + (a - start)))
    }

    /// The VMA as a new one starting `delta` bytes further into it.
    fn advanced(&self, delta: u64) -> Vma {
        let mut v = self.clone();
        v.off += delta;
        v
    }
}

/// Private writable memory that is not a stack: what RLIMIT_DATA limits.
fn is_data(prot: Prot, shared: bool, growsdown: bool) -> bool {
    prot.write && !shared && !growsdown
}

/// Where placement must stop below a VMA: its start, or for a stack the
/// start of its guard gap (Linux's `vm_start_gap`).
fn start_gap(start: u64, v: &Vma) -> u64 {
    if v.growsdown {
        start.saturating_sub(STACK_GUARD_GAP)
    } else {
        start
    }
}

#[derive(Clone, Copy, Debug)]
struct Pma {
    end: u64,
    /// Offset in the memory file of this PMA's first page.
    off: u64,
    /// What the platform has mapped here, if anything.
    mapped: Option<Prot>,
    /// Whether the PMA owns its memory-file range (private memory) or only
    /// points into shared memory (or past the end of the file, for pages
    /// past the end of shared memory).
    owned: bool,
    /// Owned memory that another address space may own too, since a fork:
    /// mapped without write access; the first write takes the pages over
    /// when nobody else owns them any more, or copies them.
    cow: bool,
}

/// How `mmap` chooses an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Anywhere; the value is a hint.
    Hint(u64),
    /// MAP_FIXED: exactly here, replacing what is there.
    Fixed(u64),
    /// MAP_FIXED_NOREPLACE: exactly here, EEXIST if anything is there.
    FixedNoReplace(u64),
}

/// A request to map anonymous memory.
#[derive(Clone, Debug)]
pub struct MmapOpts {
    pub placement: Placement,
    pub len: u64,
    pub prot: Prot,
    pub shared: bool,
    pub growsdown: bool,
    pub populate: bool,
    /// MAP_32BIT: place within the first 2 GiB.
    pub below_2g: bool,
    pub kind: VmaKind,
    /// The file to map, at `offset`; None for anonymous memory.
    pub file: Option<FileMap>,
    pub offset: u64,
}

/// What `mremap` was asked to do besides resizing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MremapFlags {
    /// MREMAP_MAYMOVE.
    pub may_move: bool,
    /// MREMAP_FIXED.
    pub fixed: bool,
    /// MREMAP_DONTUNMAP.
    pub dont_unmap: bool,
}

/// Resource limits the memory manager enforces, from the caller's thread
/// group.
#[derive(Clone, Copy, Debug)]
pub struct MmLimits {
    /// RLIMIT_AS.
    pub address_space: u64,
    /// RLIMIT_DATA (private writable memory and brk).
    pub data: u64,
    /// RLIMIT_STACK (for stack growth).
    pub stack: u64,
}

impl MmLimits {
    pub const UNLIMITED: MmLimits = MmLimits {
        address_space: u64::MAX,
        data: u64::MAX,
        stack: 8 << 20,
    };
}

/// The outcome of a guest page fault the memory manager cannot satisfy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segv {
    /// `SEGV_MAPERR` or `SEGV_ACCERR` (or `BUS_ADRERR` when the host
    /// reported a bus error), for the guest's siginfo.
    pub code: i32,
}

/// What the loader left for /proc: the auxiliary vector and where argv
/// and envp live.
#[derive(Clone, Debug, Default)]
pub struct ProcessInfo {
    pub auxv: Vec<(u64, u64)>,
    /// `[start, end)` of the argument strings.
    pub argv: (u64, u64),
    /// `[start, end)` of the environment strings.
    pub envp: (u64, u64),
    pub execfn: String,
}

pub struct MemoryManager {
    /// Names the address space for as long as the sandbox lives (futex
    /// keys).
    pub id: u64,
    /// The process whose address space it is.
    owner: std::sync::atomic::AtomicI32,
    mf: Arc<MemoryFile>,
    info: Mutex<ProcessInfo>,
    exe: Mutex<Option<Arc<crate::vfs::FileDescription>>>,
    aspace: Arc<dyn AddressSpace>,
    /// One past the highest guest address.
    max_addr: u64,
    state: Mutex<MmState>,
}

struct MmState {
    vmas: BTreeMap<u64, Vma>,
    pmas: BTreeMap<u64, Pma>,
    /// Total bytes of all VMAs (for RLIMIT_AS).
    mapped_bytes: u64,
    /// Where top-down mmap placement starts.
    mmap_base: u64,
    brk_start: u64,
    brk: u64,
    /// The top of the initial stack, set by the loader.
    pub stack_top: u64,
    /// The limits of the last call that passed them, for the stack growth
    /// the sentry's own accesses to guest memory cause.
    limits: MmLimits,
}

impl MemoryManager {
    pub fn new(mf: Arc<MemoryFile>, aspace: Arc<dyn AddressSpace>, max_addr: u64) -> MemoryManager {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        MemoryManager {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            owner: std::sync::atomic::AtomicI32::new(0),
            mf,
            info: Mutex::new(ProcessInfo::default()),
            exe: Mutex::new(None),
            aspace,
            max_addr,
            state: Mutex::new(MmState {
                vmas: BTreeMap::new(),
                pmas: BTreeMap::new(),
                mapped_bytes: 0,
                mmap_base: max_addr,
                brk_start: 0,
                brk: 0,
                stack_top: max_addr,
                limits: MmLimits::UNLIMITED,
            }),
        }
    }

    pub fn address_space(&self) -> &Arc<dyn AddressSpace> {
        &self.aspace
    }

    /// Records the process the address space is for (fork, exec, boot).
    pub fn set_owner(&self, tgid: i32) {
        self.owner.store(tgid, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn max_addr(&self) -> u64 {
        self.max_addr
    }

    fn lock(&self) -> MutexGuard<'_, MmState> {
        self.state.locked()
    }

    /// Sets the layout decided by the loader: the top of the stack (mmap
    /// placement starts below the stack's maximum size) and the program
    /// break.
    pub fn set_layout(&self, stack_top: u64, stack_limit: u64, brk_start: u64) {
        let mut st = self.lock();
        st.stack_top = stack_top;
        let gap = stack_limit.clamp(128 << 20, (self.max_addr / 6) * 5);
        st.mmap_base = page_down(stack_top.saturating_sub(gap));
        st.brk_start = brk_start;
        st.brk = brk_start;
    }

    /// The executable the address space was loaded from.
    pub fn set_exe(&self, file: Arc<crate::vfs::FileDescription>) {
        *self.exe.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
    }

    pub fn exe(&self) -> Option<Arc<crate::vfs::FileDescription>> {
        self.exe.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_process_info(&self, info: ProcessInfo) {
        *self.info.locked() = info;
    }

    pub fn process_info(&self) -> ProcessInfo {
        self.info.locked().clone()
    }

    /// A snapshot of the VMAs, for /proc and tests.
    pub fn vmas(&self) -> Vec<(u64, Vma)> {
        self.lock()
            .vmas
            .iter()
            .map(|(s, v)| (*s, v.clone()))
            .collect()
    }

    // ----- mmap family -----

    /// Maps anonymous memory; returns its address.
    pub fn mmap(&self, opts: &MmapOpts, limits: MmLimits) -> Result<u64, Errno> {
        self.mmap_checked(opts, limits, None)
    }

    /// As [`mmap`](Self::mmap), with `late_error`: an error Linux reports
    /// only once the address is known (a bad mapping type, a file that
    /// cannot be mapped), returned then instead of mapping anything.
    pub fn mmap_checked(
        &self,
        opts: &MmapOpts,
        limits: MmLimits,
        late_error: Option<Errno>,
    ) -> Result<u64, Errno> {
        if opts.len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_align(opts.len);
        if len == 0 || len > TASK_SIZE {
            return Err(Errno::ENOMEM);
        }
        let mut st = self.lock();
        st.limits = limits;
        let addr = match opts.placement {
            Placement::Fixed(a) | Placement::FixedNoReplace(a) => {
                if a > TASK_SIZE - len {
                    return Err(Errno::ENOMEM);
                }
                if !a.is_multiple_of(PAGE_SIZE) {
                    return Err(Errno::EINVAL);
                }
                if a < MMAP_MIN_ADDR {
                    return Err(Errno::EPERM);
                }
                if a + len > self.max_addr {
                    // Above the sandbox's address space.
                    return Err(Errno::ENOMEM);
                }
                a
            }
            Placement::Hint(h) => self.place(&st, h, len, opts.below_2g)?,
        };
        let end = addr + len;
        if matches!(opts.placement, Placement::FixedNoReplace(_)) && st.overlaps(addr, end) {
            return Err(Errno::EEXIST);
        }
        if let Some(e) = late_error {
            return Err(e);
        }
        if st.splits_special(addr, end) {
            return Err(Errno::EINVAL);
        }
        // Only what MAP_FIXED adds to the pages it replaces counts.
        let added = len - st.overlap_bytes(addr, end);
        if !st.may_expand(limits, opts.prot, opts.shared, opts.growsdown, added) {
            return Err(Errno::ENOMEM);
        }
        if st.vmas.len() + 2 > MAX_MAP_COUNT {
            return Err(Errno::ENOMEM);
        }
        let (shm, off) = if opts.file.is_some() {
            (None, opts.offset)
        } else if opts.shared {
            (Some(SharedMemory::new(&self.mf, len)?), 0)
        } else {
            (None, addr)
        };
        self.remove_range(&mut st, addr, end);
        st.insert_vma(
            addr,
            Vma {
                end,
                prot: opts.prot,
                growsdown: opts.growsdown,
                kind: opts.kind.clone(),
                shm,
                file: opts.file.clone(),
                off,
                on_fork: OnFork::Copy,
                accounted: !opts.shared && opts.prot.write,
            },
        );
        if opts.populate {
            // Linux ignores failures of MAP_POPULATE; so do we.
            let _ = self.populate_locked(&mut st, addr, end, false);
        }
        Ok(addr)
    }

    /// Chooses an address for `len` bytes with the hint `hint`, as Linux's
    /// x86-64 `arch_get_unmapped_area_topdown` does (bottom-up in the
    /// second GiB for MAP_32BIT).
    fn place(&self, st: &MmState, hint: u64, len: u64, below_2g: bool) -> Result<u64, Errno> {
        let hint = if hint != 0 && hint < MMAP_MIN_ADDR {
            MMAP_MIN_ADDR
        } else {
            hint
        };
        if below_2g {
            if len > MAP_32BIT_END {
                return Err(Errno::ENOMEM);
            }
            if hint != 0 {
                if let Some(h) = page_up(hint) {
                    if MAP_32BIT_END - len >= h && st.fits_below_next(h, len) {
                        return Ok(h);
                    }
                }
            }
            return st
                .find_free_bottom_up(len, MAP_32BIT_START, MAP_32BIT_END)
                .ok_or(Errno::ENOMEM);
        }
        if hint != 0 {
            let h = page_down(hint);
            if h <= TASK_SIZE - len && h + len <= self.max_addr && st.fits_below_next(h, len) {
                return Ok(h);
            }
        }
        let top = st.mmap_base.min(self.max_addr);
        st.find_free_top_down(len, MMAP_MIN_ADDR, top)
            .or_else(|| st.find_free_bottom_up(len, page_down(self.max_addr / 3), self.max_addr))
            .ok_or(Errno::ENOMEM)
    }

    /// The last task using the address space exited (Linux's
    /// `exit_mmap`): every mapping goes now, not when the process is
    /// reaped, so what it mapped shared (a System V segment's attach) is
    /// let go at exit, as on Linux.
    pub fn exit_mmap(&self) {
        let mut st = self.lock();
        let end = self.max_addr;
        // One platform call for all of it; a stub that died has nothing
        // mapped any more, so its error means nothing here.
        if st.pmas.values().any(|p| p.mapped.is_some()) {
            let _ = self.aspace.unmap(0, end);
            for p in st.pmas.values_mut() {
                p.mapped = None;
            }
        }
        self.remove_range(&mut st, 0, end);
        drop(st);
        // The executable goes with the mappings (a zombie has none).
        *self.exe.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub fn munmap(&self, addr: u64, len: u64) -> Result<(), Errno> {
        let mut st = self.lock();
        self.munmap_locked(&mut st, addr, len)
    }

    /// Linux's `do_vmi_munmap`: the checks, then the unmapping.
    fn munmap_locked(&self, st: &mut MmState, addr: u64, len: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) || addr > TASK_SIZE || len > TASK_SIZE - addr {
            return Err(Errno::EINVAL);
        }
        let len = page_align(len);
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = (addr + len).min(self.max_addr);
        if st.splits_special(addr, end) {
            return Err(Errno::EINVAL);
        }
        if addr < end {
            self.remove_range(st, addr, end);
        }
        Ok(())
    }

    /// mprotect(2) on `[addr, addr+len)` (page-aligned, non-empty, checked
    /// by the caller). As on Linux, the VMAs are changed one by one: a hole
    /// gives ENOMEM after the part before it has changed.
    pub fn mprotect(
        &self,
        addr: u64,
        len: u64,
        prot: Prot,
        growsdown: bool,
        growsup: bool,
        limits: MmLimits,
    ) -> Result<(), Errno> {
        let mut start = addr;
        let end = addr + len;
        let mut st = self.lock();
        st.limits = limits;
        let (first, fv) = match st.first_overlapping(start, end) {
            Some((s, v)) => (s, v.clone()),
            None => return Err(Errno::ENOMEM),
        };
        if growsdown {
            // PROT_GROWSDOWN: the change extends down to the VMA's start.
            if first >= end {
                return Err(Errno::ENOMEM);
            }
            start = first;
            if !fv.growsdown {
                return Err(Errno::EINVAL);
            }
        } else {
            if first > start {
                return Err(Errno::ENOMEM);
            }
            if growsup {
                // No VMA grows up on x86.
                return Err(Errno::EINVAL);
            }
        }
        let mut cur = start;
        let mut result = Ok(());
        while cur < end {
            let (vs, v) = match st.vma_at(cur) {
                Some((s, v)) => (s, v.clone()),
                None => {
                    result = Err(Errno::ENOMEM);
                    break;
                }
            };
            let e = v.end.min(end);
            if v.kind == VmaKind::Vvar && (prot.write || prot.exec) {
                // Linux's [vvar] lacks VM_MAYWRITE and VM_MAYEXEC.
                result = Err(Errno::EACCES);
                break;
            }
            if v.prot != prot && v.kind.unsplittable() && (vs < cur || e < v.end) {
                result = Err(Errno::EINVAL);
                break;
            }
            if prot.write {
                // Memory that turns into data must fit RLIMIT_DATA.
                let n = e - cur;
                let new_ok = st.may_expand(limits, prot, v.shared(), v.growsdown, n);
                let old_ok = st.may_expand(limits, v.prot, v.shared(), v.growsdown, n);
                if !new_ok && old_ok {
                    result = Err(Errno::ENOMEM);
                    break;
                }
            }
            if v.prot != prot {
                st.split_vma(cur);
                st.split_vma(e);
                let vm = st.vmas.get_mut(&cur).unwrap();
                vm.prot = prot;
                vm.accounted |= prot.write && !vm.shared();
                // Drop the platform's mappings so the next access maps the
                // pages with the new protection.
                self.unmap_platform(&mut st, cur, e);
            }
            cur = e;
        }
        st.merge_around(start, cur);
        result
    }

    /// mremap(2), after the check of the flags' bits. Follows Linux's
    /// `do_mremap`: a move to a fixed address of the same size may cover
    /// several VMAs; anything else works on the one VMA at `addr`.
    pub fn mremap(
        &self,
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: MremapFlags,
        new_addr: u64,
        limits: MmLimits,
    ) -> Result<u64, Errno> {
        let old_len = page_align(old_len);
        let new_len = page_align(new_len);
        if !addr.is_multiple_of(PAGE_SIZE) || new_len == 0 || new_len > TASK_SIZE {
            return Err(Errno::EINVAL);
        }
        let implies_new_addr = flags.fixed || flags.dont_unmap;
        if implies_new_addr
            && (new_addr > TASK_SIZE - new_len
                || !new_addr.is_multiple_of(PAGE_SIZE)
                || !flags.may_move
                || (flags.dont_unmap && old_len != new_len)
                || (addr.wrapping_add(old_len) > new_addr && new_addr + new_len > addr))
        {
            return Err(Errno::EINVAL);
        }
        let mut st = self.lock();
        st.limits = limits;
        if st.vmas.len() + 2 >= MAX_MAP_COUNT - 3 {
            return Err(Errno::ENOMEM);
        }
        if flags.fixed && old_len == new_len {
            return self.remap_move(&mut st, addr, old_len, new_addr, flags);
        }
        let (vs, v) = match st.vma_at(addr) {
            Some((s, v)) => (s, v.clone()),
            None => return Err(Errno::EFAULT),
        };
        st.check_remap(&v, addr, old_len, new_len, flags, limits)?;
        if implies_new_addr {
            self.mremap_to(&mut st, addr, old_len, new_len, new_addr, flags, limits)
        } else if old_len == new_len {
            Ok(addr)
        } else if new_len < old_len {
            self.munmap_locked(&mut st, addr + new_len, old_len - new_len)?;
            Ok(addr)
        } else {
            self.expand(&mut st, vs, &v, addr, old_len, new_len, flags)
        }
    }

    /// Linux's `remap_move`: moves every VMA in `[addr, addr+len)` to the
    /// same offset from `new_addr`. The range must start in a VMA; holes
    /// after it stay holes (what is mapped in the target's holes stays).
    fn remap_move(
        &self,
        st: &mut MmState,
        addr: u64,
        len: u64,
        new_addr: u64,
        flags: MremapFlags,
    ) -> Result<u64, Errno> {
        let end = addr.saturating_add(len);
        let mut cur = addr;
        let mut res = Err(Errno::EFAULT);
        let mut seen = false;
        while cur < end {
            let Some((vs, v)) = st.first_overlapping(cur, end).map(|(s, v)| (s, v.clone())) else {
                break;
            };
            if !seen && addr < vs {
                return Err(Errno::EFAULT);
            }
            let ps = vs.max(cur);
            let pe = v.end.min(end);
            let limits = st.limits;
            let n = self.mremap_to(
                st,
                ps,
                pe - ps,
                pe - ps,
                new_addr + (ps - addr),
                flags,
                limits,
            )?;
            if !seen {
                res = Ok(n);
                seen = true;
            }
            cur = pe;
        }
        res
    }

    /// Linux's `mremap_to`: a move to a new address (fixed, or chosen with
    /// `new_addr` as a hint for MREMAP_DONTUNMAP).
    #[allow(clippy::too_many_arguments)]
    fn mremap_to(
        &self,
        st: &mut MmState,
        addr: u64,
        mut old_len: u64,
        new_len: u64,
        new_addr: u64,
        flags: MremapFlags,
        limits: MmLimits,
    ) -> Result<u64, Errno> {
        if flags.fixed {
            if new_addr + new_len > self.max_addr || new_addr < MMAP_MIN_ADDR {
                // Outside the sandbox's address space.
                return Err(Errno::ENOMEM);
            }
            self.munmap_locked(st, new_addr, new_len)?;
            if st.vma_at(addr).is_none() {
                return Err(Errno::EFAULT);
            }
        }
        if new_len < old_len {
            self.munmap_locked(st, addr + new_len, old_len - new_len)?;
            if st.vma_at(addr).is_none() {
                return Err(Errno::EFAULT);
            }
            old_len = new_len;
        }
        let (vs, v) = match st.vma_at(addr) {
            Some((s, v)) => (s, v.clone()),
            None => return Err(Errno::EFAULT),
        };
        if flags.dont_unmap && !st.may_expand(limits, v.prot, v.shared(), v.growsdown, old_len) {
            return Err(Errno::ENOMEM);
        }
        let target = if flags.fixed {
            new_addr
        } else {
            self.place(st, new_addr, new_len, false)?
        };
        Ok(self.move_vma(st, vs, &v, addr, old_len, target, new_len, flags.dont_unmap))
    }

    /// Linux's `expand_vma`: grows `[addr, addr+old_len)` in place if it
    /// ends its VMA and the pages after it are free, else moves it if
    /// allowed.
    #[allow(clippy::too_many_arguments)]
    fn expand(
        &self,
        st: &mut MmState,
        vs: u64,
        v: &Vma,
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: MremapFlags,
    ) -> Result<u64, Errno> {
        let delta = new_len - old_len;
        if v.end - addr == old_len {
            if let Some(new_end) = v.end.checked_add(delta) {
                if new_end <= TASK_SIZE.min(self.max_addr) && !st.overlaps(v.end, new_end) {
                    st.vmas.get_mut(&vs).unwrap().end = new_end;
                    st.mapped_bytes += delta;
                    st.merge_around(vs, new_end);
                    return Ok(addr);
                }
            }
        }
        if !flags.may_move {
            return Err(Errno::ENOMEM);
        }
        let target = self.place(st, 0, new_len, false)?;
        Ok(self.move_vma(st, vs, v, addr, old_len, target, new_len, false))
    }

    /// Moves `[addr, addr+old_len)` of the VMA `v` (at `vs`) to
    /// `[new, new+new_len)`, which is free, keeping its memory: private
    /// pages move, shared memory is mapped at the new place. With
    /// `dont_unmap` the old range stays mapped (without its private pages).
    #[allow(clippy::too_many_arguments)]
    fn move_vma(
        &self,
        st: &mut MmState,
        vs: u64,
        v: &Vma,
        addr: u64,
        old_len: u64,
        new: u64,
        new_len: u64,
        dont_unmap: bool,
    ) -> u64 {
        let old_end = addr + old_len;
        let keep = old_len.min(new_len);
        let mut moved: Vec<(u64, Pma)> = Vec::new();
        if !v.shared() && keep > 0 {
            st.split_pma(addr);
            st.split_pma(addr + keep);
            self.unmap_platform(st, addr, addr + keep);
            moved = st
                .pmas
                .range(addr..addr + keep)
                .map(|(s, p)| (*s, *p))
                .collect();
            for (s, _) in &moved {
                st.pmas.remove(s);
            }
        }
        if !dont_unmap && old_len > 0 {
            self.remove_range(st, addr, old_end);
        }
        let mut nv = v.advanced(addr - vs);
        nv.end = new + new_len;
        st.insert_vma(new, nv);
        for (s, p) in moved {
            st.pmas.insert(
                s - addr + new,
                Pma {
                    end: p.end - addr + new,
                    mapped: None,
                    ..p
                },
            );
        }
        new
    }

    /// brk(2): returns the new break, or the old one on failure.
    pub fn brk(&self, addr: u64, limits: MmLimits) -> u64 {
        let mut st = self.lock();
        st.limits = limits;
        let orig = st.brk;
        if addr < st.brk_start {
            return orig;
        }
        // RLIMIT_DATA bounds the heap (Linux adds the data segment's size,
        // which RLIMIT_DATA's accounting of the mappings covers below).
        if limits.data != u64::MAX && addr - st.brk_start > limits.data {
            return orig;
        }
        let new_top = page_align(addr);
        let old_top = page_align(orig);
        if new_top == old_top {
            st.brk = addr;
            return addr;
        }
        if addr <= orig {
            // Shrinking; there must be something to unmap.
            if !st.overlaps(new_top, old_top) {
                return orig;
            }
            self.remove_range(&mut st, new_top, old_top);
            st.brk = addr;
            return addr;
        }
        if new_top == 0 || new_top > TASK_SIZE.min(self.max_addr) {
            return orig;
        }
        // The heap stays a page away from the next mapping (and out of a
        // stack's guard gap).
        if let Some((ns, nv)) = st.first_overlapping(old_top, u64::MAX) {
            if new_top + PAGE_SIZE > start_gap(ns, nv) {
                return orig;
            }
        }
        if !st.may_expand(limits, Prot::RW, false, false, new_top - old_top)
            || st.vmas.len() > MAX_MAP_COUNT
        {
            return orig;
        }
        st.insert_vma(
            old_top,
            Vma {
                end: new_top,
                prot: Prot::RW,
                growsdown: false,
                kind: VmaKind::Heap,
                shm: None,
                file: None,
                off: old_top,
                on_fork: OnFork::Copy,
                accounted: true,
            },
        );
        st.brk = addr;
        addr
    }

    /// madvise(2).
    pub fn madvise(&self, addr: u64, len: u64, advice: i32) -> Result<(), Errno> {
        let known = advice_known(advice);
        if !known || !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let alen = page_align(len);
        if len != 0 && alen == 0 {
            return Err(Errno::EINVAL);
        }
        let end = addr.checked_add(alen).ok_or(Errno::EINVAL)?;
        if end == addr {
            return Ok(());
        }
        let mut st = self.lock();
        if advice == MADV_POPULATE_READ || advice == MADV_POPULATE_WRITE {
            return self.madvise_populate(&mut st, addr, end, advice == MADV_POPULATE_WRITE);
        }
        // Linux's madvise_walk_vmas: advise every VMA piece in the range;
        // holes give ENOMEM at the end, errors stop at once.
        let mut cur = addr;
        let mut unmapped = false;
        loop {
            let Some((vs, v)) = st
                .first_overlapping(cur, u64::MAX)
                .map(|(s, v)| (s, v.clone()))
            else {
                return Err(Errno::ENOMEM);
            };
            if cur < vs {
                unmapped = true;
                cur = vs;
                if cur >= end {
                    break;
                }
            }
            let e = v.end.min(end);
            self.advise_vma(&mut st, vs, &v, cur, e, advice)?;
            cur = e;
            if cur >= end {
                break;
            }
        }
        if unmapped {
            Err(Errno::ENOMEM)
        } else {
            Ok(())
        }
    }

    /// Applies `advice` to `[start, end)` of the VMA `v` at `vs`.
    fn advise_vma(
        &self,
        st: &mut MmState,
        vs: u64,
        v: &Vma,
        start: u64,
        end: u64,
        advice: i32,
    ) -> Result<(), Errno> {
        let file = matches!(v.kind, VmaKind::File(_)) || v.file.is_some();
        match advice {
            libc::MADV_DONTNEED | MADV_DONTNEED_LOCKED => {
                // Private memory reads as zeroes afterwards; shared memory
                // keeps its data, only the mapping of it goes.
                self.drop_pmas(st, start, end);
            }
            // MADV_FREE lets the kernel free the pages until they are
            // written to again; keeping them is one of the allowed outcomes.
            libc::MADV_FREE | libc::MADV_WIPEONFORK if v.shared() || file => {
                return Err(Errno::EINVAL)
            }
            libc::MADV_DONTFORK
            | libc::MADV_DOFORK
            | libc::MADV_WIPEONFORK
            | libc::MADV_KEEPONFORK => {
                let _ = vs;
                st.split_vma(start);
                st.split_vma(end);
                let keys: Vec<u64> = st.vmas.range(start..end).map(|(k, _)| *k).collect();
                for k in keys {
                    let vm = st.vmas.get_mut(&k).unwrap();
                    vm.on_fork = match (advice, vm.on_fork) {
                        (libc::MADV_DONTFORK, _) => OnFork::Skip,
                        (libc::MADV_WIPEONFORK, OnFork::Skip) => OnFork::Skip,
                        (libc::MADV_WIPEONFORK, _) => OnFork::Wipe,
                        (libc::MADV_DOFORK, OnFork::Skip) => OnFork::Copy,
                        (libc::MADV_KEEPONFORK, OnFork::Wipe) => OnFork::Copy,
                        (_, f) => f,
                    };
                }
                st.merge_around(start, end);
            }
            libc::MADV_REMOVE => match v.shm_at(vs, start) {
                Some((m, off)) => {
                    // Frees the memory itself: every mapping reads zeroes.
                    let n = (end - start).min(m.size.saturating_sub(off));
                    if n > 0 {
                        self.mf.punch(m.off + off, n);
                    }
                }
                None if file => return Err(Errno::EACCES),
                None => return Err(Errno::EINVAL),
            },
            // The others are hints that change no visible behaviour.
            _ => {}
        }
        Ok(())
    }

    /// MADV_POPULATE_READ/WRITE: back `[start, end)` as a fault would,
    /// stopping at the first page that cannot be.
    fn madvise_populate(
        &self,
        st: &mut MmState,
        start: u64,
        end: u64,
        write: bool,
    ) -> Result<(), Errno> {
        let mut cur = start;
        while cur < end {
            let Some((vs, v)) = st.vma_at(cur).map(|(s, v)| (s, v.clone())) else {
                return Err(Errno::ENOMEM);
            };
            if (write && !v.prot.write) || (!write && !v.prot.read) {
                return Err(Errno::EINVAL);
            }
            let e = v.end.min(end);
            if let Some((m, off)) = v.shm_at(vs, cur) {
                if off + (e - cur) > m.size {
                    let ok = m.size.saturating_sub(off);
                    self.populate_locked(st, cur, cur + ok, false)?;
                    return Err(Errno::EFAULT);
                }
            }
            self.populate_locked(st, cur, e, false)?;
            cur = e;
        }
        Ok(())
    }

    // ----- faults and access -----

    /// Handles a guest page fault at `addr`. `code` is the host's si_code.
    /// Handles a guest fault at `addr` (`signo` and `host_code` as the host
    /// reported it, `access` what the platform knows of the access).
    pub fn handle_fault(
        &self,
        addr: u64,
        signo: i32,
        host_code: i32,
        access: platform::Access,
        limits: MmLimits,
    ) -> Result<(), Segv> {
        let mut st = self.lock();
        st.limits = limits;
        let page = page_down(addr);
        let (vs, vma) = match st.vma_at(page) {
            Some((s, v)) => (s, v.clone()),
            None => {
                if self.grow_stack(&mut st, page) {
                    let (s, v) = st.vma_at(page).unwrap();
                    (s, v.clone())
                } else {
                    return Err(Segv { code: SEGV_MAPERR });
                }
            }
        };
        if vma.prot.is_none() {
            return Err(Segv { code: SEGV_ACCERR });
        }
        if let Some((_, p)) = st.pma_at(page) {
            // A write to a private file page still shared with the file,
            // or to a private page shared since a fork.
            let cow_file = vma.copy_on_write() && !p.owned && p.off != memory_file::BEYOND_END;
            if (cow_file || p.cow) && vma.prot.write && p.mapped == Some(vma.map_prot(&p)) {
                return self
                    .break_cow(&mut st, &vma, page)
                    .map_err(|_| Segv { code: SEGV_MAPERR });
            }
            if let Some(m) = p.mapped {
                // The platform already maps this page with the VMA's
                // protection. Either another thread of the address space
                // handled the same fault first (the page was not mapped,
                // or not writable, when this access faulted), or the access
                // itself is not allowed (or the page lies past the end of
                // shared memory, and the host reported a bus error).
                if m == vma.map_prot(&p) {
                    let allowed = (!access.write || m.write) && (!access.exec || m.exec);
                    let raced = signo == libc::SIGSEGV
                        && (host_code == SEGV_MAPERR
                            || (allowed && access != platform::Access::ANY));
                    if raced {
                        return Ok(());
                    }
                    return Err(Segv { code: SEGV_ACCERR });
                }
            }
        }
        let wstart = page_down(addr & !(FAULT_WINDOW - 1)).max(vs);
        let wend = ((addr | (FAULT_WINDOW - 1)) + 1).min(vma.end);
        if self.populate_locked(&mut st, wstart, wend, true).is_err() {
            return Err(Segv { code: SEGV_MAPERR });
        }
        Ok(())
    }

    /// Extends the grows-down VMA above `page` down to it, if Linux would
    /// (`expand_downwards` and `acct_stack_growth`).
    fn grow_stack(&self, st: &mut MmState, page: u64) -> bool {
        let limits = st.limits;
        let Some((&ns, next)) = st.vmas.range(page..).next() else {
            return false;
        };
        if !next.growsdown || page < MMAP_MIN_ADDR {
            return false;
        }
        if let Some((_, prev)) = st.vmas.range(..page).next_back() {
            // The guard gap keeps a stack away from accessible memory
            // below it.
            if !prev.growsdown && !prev.prot.is_none() && page - prev.end < STACK_GUARD_GAP {
                return false;
            }
        }
        let size = next.end - page;
        let grow = ns - page;
        if size > limits.stack || !st.may_expand(limits, next.prot, next.shared(), true, grow) {
            return false;
        }
        let mut v = st.vmas.remove(&ns).unwrap();
        v.off = v.off.wrapping_sub(grow);
        st.vmas.insert(page, v);
        st.mapped_bytes += grow;
        true
    }

    /// Backs `[start, end)` with memory and maps it into the platform.
    /// With `traps`, pages past the end of shared memory are mapped so that
    /// an access to them faults with SIGBUS on the host; without, they are
    /// left alone.
    fn populate_locked(
        &self,
        st: &mut MmState,
        start: u64,
        end: u64,
        traps: bool,
    ) -> Result<(), Errno> {
        let vmas: Vec<(u64, Vma)> = st
            .vmas
            .range(..end)
            .rev()
            .take_while(|(_, v)| v.end > start)
            .map(|(s, v)| (*s, v.clone()))
            .collect();
        for (vs, v) in vmas.iter().rev() {
            if v.prot.is_none() {
                continue;
            }
            let s = (*vs).max(start);
            let e = v.end.min(end);
            self.fill_gaps(st, *vs, v, s, e, traps)?;
            // Map whatever the platform does not have with the right
            // protection.
            let to_map: Vec<(u64, Pma)> = st
                .pmas
                .range(s..e)
                .filter(|(_, p)| p.mapped != Some(v.map_prot(p)))
                .map(|(a, p)| (*a, *p))
                .collect();
            for (ps, p) in to_map {
                let prot = v.map_prot(&p);
                self.aspace
                    .map_file(ps, p.end - ps, p.off, prot)
                    .map_err(|e| {
                        tracing::error!("mapping guest memory failed: {e}");
                        Errno::EFAULT
                    })?;
                st.pmas.get_mut(&ps).unwrap().mapped = Some(prot);
            }
        }
        Ok(())
    }

    /// Creates PMAs for the parts of `[s, e)` (inside the VMA `v` at `vs`)
    /// that have none: new memory for private VMAs, the shared memory's
    /// pages for shared ones (and, with `traps`, pages past its end).
    fn fill_gaps(
        &self,
        st: &mut MmState,
        vs: u64,
        v: &Vma,
        s: u64,
        e: u64,
        traps: bool,
    ) -> Result<(), Errno> {
        st.split_pma(s);
        st.split_pma(e);
        let mut gaps = Vec::new();
        let mut cur = s;
        for (ps, p) in st.pmas.range(s..e) {
            if *ps > cur {
                gaps.push((cur, *ps));
            }
            cur = p.end;
        }
        if cur < e {
            gaps.push((cur, e));
        }
        for (gs, ge) in gaps {
            if let Some(fm) = &v.file {
                self.fill_file_gap(st, vs, v, fm, gs, ge, traps)?;
                continue;
            }
            match v.shm_at(vs, gs) {
                None => {
                    let off = self.mf.allocate(ge - gs)?;
                    st.pmas.insert(
                        gs,
                        Pma {
                            end: ge,
                            off,
                            mapped: None,
                            owned: true,
                            cow: false,
                        },
                    );
                }
                Some((m, off)) => {
                    // The part inside the shared memory, then the part past
                    // its end.
                    let inside = m.size.saturating_sub(off).min(ge - gs);
                    if inside > 0 {
                        st.pmas.insert(
                            gs,
                            Pma {
                                end: gs + inside,
                                off: m.off + off,
                                mapped: None,
                                owned: false,
                                cow: false,
                            },
                        );
                    }
                    if traps && gs + inside < ge {
                        st.pmas.insert(
                            gs + inside,
                            Pma {
                                end: ge,
                                off: memory_file::BEYOND_END,
                                mapped: None,
                                owned: false,
                                cow: false,
                            },
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Drops the PMAs that point at the file `id`'s pages in the file
    /// range `[start, end)`, unmapping them. Pages a private mapping
    /// already copied stay unless `even_cows` (truncation drops them too,
    /// punching a hole does not). The next access faults and sees the file as it
    /// is then (past its end: SIGBUS).
    pub fn invalidate_file(&self, id: usize, start: u64, end: u64, even_cows: bool) {
        let mut st = self.lock();
        let ranges: Vec<(u64, u64)> = st
            .vmas
            .iter()
            .filter(|(_, v)| v.file.as_ref().is_some_and(|f| f.file.id() == id))
            .filter_map(|(&vs, v)| {
                // The VMA's part that maps file offsets in [start, end).
                let fs = v.off;
                let fe = v.off + (v.end - vs);
                let s = start.max(fs);
                let e = end.min(fe);
                (s < e).then(|| (vs + (s - fs), vs + (e - fs)))
            })
            .collect();
        for (s, e) in ranges {
            st.split_pma(s);
            st.split_pma(e);
            let gone: Vec<(u64, u64)> = st
                .pmas
                .range(s..e)
                .filter(|(_, p)| even_cows || !p.owned)
                .map(|(a, p)| (*a, p.end))
                .collect();
            for (a, pe) in gone {
                self.unmap_platform(&mut st, a, pe);
                let p = st.pmas.remove(&a).unwrap();
                if p.owned {
                    self.mf.free(p.off, pe - a);
                }
            }
        }
    }

    /// Points the pages `[gs, ge)` of the file VMA `v` (at `vs`) at the
    /// file's pages; pages past its end trap (with `traps`).
    #[allow(clippy::too_many_arguments)]
    fn fill_file_gap(
        &self,
        st: &mut MmState,
        vs: u64,
        v: &Vma,
        fm: &FileMap,
        gs: u64,
        ge: u64,
        traps: bool,
    ) -> Result<(), Errno> {
        let size = fm.file.size();
        let mut a = gs;
        while a < ge {
            let foff = v.off + (a - vs);
            if foff >= size.div_ceil(PAGE_SIZE) * PAGE_SIZE {
                if traps {
                    st.pmas.insert(
                        a,
                        Pma {
                            end: ge,
                            off: memory_file::BEYOND_END,
                            mapped: None,
                            owned: false,
                            cow: false,
                        },
                    );
                }
                break;
            }
            let off = fm.file.page(foff / PAGE_SIZE)?;
            // Extend the previous PMA when the file's pages are contiguous.
            let extended = match st.pmas.range_mut(..a).next_back() {
                Some((ps, p))
                    if p.end == a
                        && !p.owned
                        && p.mapped.is_none()
                        && p.off != memory_file::BEYOND_END
                        && p.off + (a - *ps) == off =>
                {
                    p.end = a + PAGE_SIZE;
                    true
                }
                _ => false,
            };
            if !extended {
                st.pmas.insert(
                    a,
                    Pma {
                        end: a + PAGE_SIZE,
                        off,
                        mapped: None,
                        owned: false,
                        cow: false,
                    },
                );
            }
            a += PAGE_SIZE;
        }
        Ok(())
    }

    /// Gives the private VMA's page at `page` a page of its own, mapped
    /// writable: a copy of the file's page, or of the page shared since a
    /// fork. Shared pages nobody else owns any more are simply taken over,
    /// the whole PMA at once.
    fn break_cow(&self, st: &mut MmState, v: &Vma, page: u64) -> Result<(), Errno> {
        if let Some((ps, p)) = st.pma_at(page) {
            if p.owned && p.cow && !self.mf.is_shared(p.off, p.end - ps) {
                let pm = st.pmas.get_mut(&ps).unwrap();
                pm.cow = false;
                if p.mapped.is_some() && !v.prot.is_none() {
                    self.aspace
                        .map_file(ps, p.end - ps, p.off, v.prot)
                        .map_err(|_| Errno::EFAULT)?;
                    st.pmas.get_mut(&ps).unwrap().mapped = Some(v.prot);
                }
                return Ok(());
            }
        }
        st.split_pma(page);
        st.split_pma(page + PAGE_SIZE);
        let p = match st.pmas.get(&page) {
            Some(p) => *p,
            None => return Err(Errno::EFAULT),
        };
        if p.owned && !p.cow {
            return Ok(());
        }
        let new = self.mf.allocate(PAGE_SIZE)?;
        self.mf.copy(p.off, new, PAGE_SIZE);
        if p.owned {
            // Our share of the page shared since the fork.
            self.mf.free(p.off, PAGE_SIZE);
        }
        st.pmas.insert(
            page,
            Pma {
                end: page + PAGE_SIZE,
                off: new,
                mapped: None,
                owned: true,
                cow: false,
            },
        );
        if !v.prot.is_none() {
            self.aspace
                .map_file(page, PAGE_SIZE, new, v.prot)
                .map_err(|_| Errno::EFAULT)?;
            st.pmas.get_mut(&page).unwrap().mapped = Some(v.prot);
        }
        Ok(())
    }

    /// A copy of this address space for a forked child, in `aspace`:
    /// the same VMAs; private memory owned by both and copied on the first
    /// write by either (nothing is copied now); shared memory and files'
    /// pages shared. The parent's writable private mappings become
    /// read-only so that its next write faults.
    pub fn fork(&self, aspace: Arc<dyn AddressSpace>) -> Result<Arc<MemoryManager>, Errno> {
        let mut st = self.lock();
        let child = Arc::new(MemoryManager::new(self.mf.clone(), aspace, self.max_addr));
        let mut remap = Vec::new();
        {
            let mut cs = child.lock();
            cs.vmas = st
                .vmas
                .iter()
                .filter(|(_, v)| v.on_fork != OnFork::Skip)
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            cs.mapped_bytes = cs.vmas.iter().map(|(k, v)| v.end - k).sum();
            cs.mmap_base = st.mmap_base;
            cs.brk_start = st.brk_start;
            cs.brk = st.brk;
            cs.stack_top = st.stack_top;
            cs.limits = st.limits;
            // Pages of VMAs the child does not get, or gets empty.
            let not_copied: Vec<(u64, u64)> = st
                .vmas
                .iter()
                .filter(|(_, v)| v.on_fork != OnFork::Copy)
                .map(|(k, v)| (*k, v.end))
                .collect();
            for (s0, e0) in &not_copied {
                st.split_pma(*s0);
                st.split_pma(*e0);
            }
            for (&ps, p) in st.pmas.iter_mut() {
                if not_copied.iter().any(|(s0, e0)| ps >= *s0 && ps < *e0) {
                    continue;
                }
                if p.owned {
                    self.mf.share(p.off, p.end - ps);
                    p.cow = true;
                    if let Some(m) = p.mapped.filter(|m| m.write) {
                        remap.push((ps, p.end, p.off, Prot { write: false, ..m }));
                    }
                }
                cs.pmas.insert(ps, Pma { mapped: None, ..*p });
            }
        }
        for (ps, pe, off, prot) in remap {
            let r = self.aspace.map_file(ps, pe - ps, off, prot);
            let pm = st.pmas.get_mut(&ps).unwrap();
            match r {
                Ok(()) => pm.mapped = Some(prot),
                Err(e) => {
                    // Leave nothing writable behind that the child shares.
                    tracing::error!("write-protecting memory for fork failed: {e}");
                    pm.mapped = None;
                    let _ = self.aspace.unmap(ps, pe - ps);
                }
            }
        }
        *child.info.lock().unwrap_or_else(|e| e.into_inner()) = self.process_info();
        *child.exe.lock().unwrap_or_else(|e| e.into_inner()) = self.exe();
        let files: Vec<Arc<dyn MappableFile>> = st
            .vmas
            .values()
            .filter_map(|v| v.file.as_ref().map(|f| f.file.clone()))
            .collect();
        drop(st);
        for f in files {
            f.add_mapper(&child);
        }
        Ok(child)
    }

    /// Removes VMAs and PMAs in `[start, end)`, freeing memory and the
    /// platform's mappings.
    fn remove_range(&self, st: &mut MmState, start: u64, end: u64) {
        if start >= end {
            return;
        }
        st.split_vma(start);
        st.split_vma(end);
        let keys: Vec<u64> = st.vmas.range(start..end).map(|(s, _)| *s).collect();
        let mut removed = Vec::with_capacity(keys.len());
        for k in keys {
            let v = st.vmas.remove(&k).unwrap();
            st.mapped_bytes -= v.end - k;
            removed.push(v);
        }
        self.drop_pmas(st, start, end);
        let owner = self.owner.load(std::sync::atomic::Ordering::Relaxed);
        for v in &removed {
            if let Some(f) = &v.file {
                f.file.unmapped(owner);
            }
        }
        // Only now, with the platform's mappings gone, may shared memory
        // that no VMA maps any more be freed.
        drop(removed);
    }

    /// Removes the PMAs in `[start, end)` and the platform's mappings of
    /// them, freeing the private memory.
    fn drop_pmas(&self, st: &mut MmState, start: u64, end: u64) {
        st.split_pma(start);
        st.split_pma(end);
        self.unmap_platform(st, start, end);
        let keys: Vec<u64> = st.pmas.range(start..end).map(|(s, _)| *s).collect();
        for k in keys {
            let p = st.pmas.remove(&k).unwrap();
            if p.owned {
                self.mf.free(p.off, p.end - k);
            }
        }
    }

    /// Unmaps from the platform every mapped PMA piece in `[start, end)`.
    fn unmap_platform(&self, st: &mut MmState, start: u64, end: u64) {
        st.split_pma(start);
        st.split_pma(end);
        let mut any = false;
        for (_, p) in st.pmas.range_mut(start..end) {
            if p.mapped.take().is_some() {
                any = true;
            }
        }
        if any {
            if let Err(e) = self.aspace.unmap(start, end - start) {
                tracing::error!("unmapping guest memory failed: {e}");
            }
        }
    }

    /// Runs `f` over the memory-file ranges backing `[addr, addr+len)`,
    /// populating as needed. Stops at the first page the guest may not
    /// access that way; returns the bytes visited. Like the kernel's own
    /// accesses, it grows the stack below its current extent.
    pub(crate) fn for_each_range(
        &self,
        addr: u64,
        len: u64,
        write: bool,
        force: bool,
        f: impl FnMut(u64, u64),
    ) -> u64 {
        let mut st = self.lock();
        self.for_each_range_locked(&mut st, addr, len, write, force, f)
    }

    /// Runs `f` with the memory file and the offset in it of the guest
    /// range `[addr, addr+len)`, when one contiguous range of the file
    /// backs the whole range and the guest may access it that way (`write`:
    /// the guest's buffer is written). The memory manager stays locked
    /// while `f` runs, so the memory cannot be unmapped and reused under
    /// it: `f` must not block or touch this address space. Guest threads
    /// may read and write the range meanwhile, so `f` must copy with the
    /// memory file's raw copies, never through a reference. None when the
    /// range is not one piece of the file.
    pub fn with_guest_range<R>(
        &self,
        addr: u64,
        len: u64,
        write: bool,
        f: impl FnOnce(&MemoryFile, u64) -> R,
    ) -> Option<R> {
        if len == 0 || addr.checked_add(len).is_none_or(|e| e > self.max_addr) {
            return None;
        }
        let mut st = self.lock();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let done = self.for_each_range_locked(&mut st, addr, len, write, false, |off, n| {
            match ranges.last_mut() {
                Some(last) if last.0 + last.1 == off => last.1 += n,
                _ => ranges.push((off, n)),
            }
        });
        if done != len || ranges.len() != 1 {
            return None;
        }
        Some(f(&self.mf, ranges[0].0))
    }

    fn for_each_range_locked(
        &self,
        st: &mut MmState,
        addr: u64,
        len: u64,
        write: bool,
        force: bool,
        mut f: impl FnMut(u64, u64),
    ) -> u64 {
        let mut done = 0u64;
        while done < len {
            let a = addr + done;
            let page = page_down(a);
            let found = st.vma_at(page).map(|(s, v)| (s, v.clone()));
            let (vs, vma) = match found {
                Some(x) => x,
                None if self.grow_stack(st, page) => {
                    let (s, v) = st.vma_at(page).unwrap();
                    (s, v.clone())
                }
                None => break,
            };
            let allowed = force
                || if write {
                    vma.prot.write
                } else {
                    !vma.prot.is_none()
                };
            if !allowed {
                break;
            }
            if let Some((m, off)) = vma.shm_at(vs, a) {
                // Shared memory: straight into it, up to its end.
                if off >= m.size {
                    break;
                }
                let chunk = (vma.end - a).min(m.size - off).min(len - done);
                f(m.off + off, chunk);
                done += chunk;
                continue;
            }
            if let Some(fm) = &vma.file {
                let foff = vma.off + (a - vs);
                // Only pages wholly past the end of the file fault (SIGBUS
                // to the guest): the rest of the page holding the last
                // byte reads as zeroes, and a private mapping may have
                // written there (a program's .bss begins in that page).
                if page_down(foff) >= fm.file.size() {
                    break;
                }
                if fm.shared {
                    // Straight into the file's page.
                    let Ok(fo) = fm.file.page(foff / PAGE_SIZE) else {
                        break;
                    };
                    let in_page = foff % PAGE_SIZE;
                    let chunk = (PAGE_SIZE - in_page).min(len - done);
                    f(fo + in_page, chunk);
                    done += chunk;
                    continue;
                }
            }
            if st.pma_at(page).is_none() {
                let wstart = page_down(a & !(FAULT_WINDOW - 1)).max(vs);
                let wend = ((a | (FAULT_WINDOW - 1)) + 1).min(vma.end);
                let r = if vma.prot.is_none() {
                    // Forced access to PROT_NONE memory (the loader): back
                    // it without mapping it.
                    self.fill_gaps(st, vs, &vma, wstart, wend, false)
                } else {
                    self.populate_locked(st, wstart, wend, false)
                };
                if r.is_err() {
                    break;
                }
            }
            let (mut ps, mut p) = match st.pma_at(page) {
                Some(x) => x,
                None => break,
            };
            if write && ((vma.copy_on_write() && !p.owned) || p.cow) {
                if p.off == memory_file::BEYOND_END || self.break_cow(st, &vma, page).is_err() {
                    break;
                }
                (ps, p) = st.pma_at(page).unwrap();
            }
            let chunk = (p.end.min(vma.end) - a).min(len - done);
            f(p.off + (a - ps), chunk);
            done += chunk;
        }
        done
    }

    pub fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.mf
    }

    /// Where the word at `addr` lives in the memory file, if it is shared
    /// memory (shared anonymous or a shared file mapping): what a shared
    /// futex is keyed by. None for private memory.
    pub fn shared_offset(&self, addr: u64) -> Option<u64> {
        let shared = {
            let st = self.lock();
            st.vma_at(addr).is_some_and(|(_, v)| v.shared())
        };
        if !shared {
            return None;
        }
        let mut off = None;
        self.for_each_range(addr, 4, false, false, |o, _| {
            if off.is_none() {
                off = Some(o)
            }
        });
        off
    }

    /// The memory-file offset of the aligned word at `addr`, backing it if
    /// needed; the guest must be allowed to write it. For atomic updates.
    pub fn word_offset(&self, addr: u64) -> Result<u64, Errno> {
        let mut off = None;
        let n = self.for_each_range(addr, 4, true, false, |o, _| {
            if off.is_none() {
                off = Some(o)
            }
        });
        match off {
            Some(o) if n == 4 => Ok(o),
            _ => Err(Errno::EFAULT),
        }
    }

    /// Bytes of all VMAs.
    pub fn mapped_bytes(&self) -> u64 {
        self.lock().mapped_bytes
    }

    pub fn brk_range(&self) -> (u64, u64) {
        let st = self.lock();
        (st.brk_start, st.brk)
    }
}

/// madvise values the libc crate does not name.
const MADV_POPULATE_READ: i32 = 22;
const MADV_POPULATE_WRITE: i32 = 23;
const MADV_DONTNEED_LOCKED: i32 = 24;

impl MmState {
    fn vma_at(&self, addr: u64) -> Option<(u64, &Vma)> {
        self.vmas
            .range(..=addr)
            .next_back()
            .filter(|(_, v)| v.end > addr)
            .map(|(s, v)| (*s, v))
    }

    /// Whether changing `[start, end)` would split an unsplittable VMA.
    fn splits_special(&self, start: u64, end: u64) -> bool {
        [start, end].into_iter().any(|a| {
            self.vma_at(a)
                .is_some_and(|(s, v)| s < a && v.kind.unsplittable())
        })
    }

    /// The first VMA that overlaps `[start, end)`.
    fn first_overlapping(&self, start: u64, end: u64) -> Option<(u64, &Vma)> {
        if let Some(x) = self.vma_at(start) {
            return Some(x);
        }
        self.vmas
            .range(start..)
            .next()
            .filter(|(s, _)| **s < end)
            .map(|(s, v)| (*s, v))
    }

    fn pma_at(&self, addr: u64) -> Option<(u64, Pma)> {
        self.pmas
            .range(..=addr)
            .next_back()
            .filter(|(_, p)| p.end > addr)
            .map(|(s, p)| (*s, *p))
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        start < end && self.first_overlapping(start, end).is_some()
    }

    fn overlap_bytes(&self, start: u64, end: u64) -> u64 {
        let mut n = 0;
        for (s, v) in self.vmas.range(..end).rev() {
            if v.end <= start {
                break;
            }
            n += v.end.min(end) - (*s).max(start);
        }
        n
    }

    /// Bytes of the VMAs RLIMIT_DATA counts.
    fn data_bytes(&self) -> u64 {
        self.vmas
            .iter()
            .filter(|(_, v)| v.is_data())
            .map(|(s, v)| v.end - s)
            .sum()
    }

    /// Linux's `may_expand_vm`: whether `bytes` more of memory like this
    /// fit RLIMIT_AS and, for data, RLIMIT_DATA.
    fn may_expand(
        &self,
        limits: MmLimits,
        prot: Prot,
        shared: bool,
        growsdown: bool,
        bytes: u64,
    ) -> bool {
        let pages = |b: u64| b / PAGE_SIZE;
        if pages(self.mapped_bytes) + pages(bytes) > pages(limits.address_space) {
            return false;
        }
        if is_data(prot, shared, growsdown)
            && limits.data != u64::MAX
            && pages(self.data_bytes()) + pages(bytes) > pages(limits.data)
        {
            return false;
        }
        true
    }

    /// Linux's `check_prep_vma`, for the VMA `v` holding `addr`.
    fn check_remap(
        &self,
        v: &Vma,
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: MremapFlags,
        limits: MmLimits,
    ) -> Result<(), Errno> {
        if new_len <= old_len && !flags.fixed && !flags.dont_unmap {
            return Ok(());
        }
        if old_len == 0 && !v.shared() {
            // Only shared memory can be duplicated.
            return Err(Errno::EINVAL);
        }
        // A shrink may cross VMAs in the part it unmaps.
        let kept = old_len.min(new_len);
        if kept > v.end - addr {
            return Err(Errno::EFAULT);
        }
        if new_len > kept
            && !self.may_expand(limits, v.prot, v.shared(), v.growsdown, new_len - kept)
        {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// Whether `[addr, addr+len)` is free and ends before the next VMA's
    /// guard gap: what a hint needs to be honoured.
    fn fits_below_next(&self, addr: u64, len: u64) -> bool {
        match self.first_overlapping(addr, u64::MAX) {
            None => true,
            Some((s, v)) => s >= addr && addr + len <= start_gap(s, v),
        }
    }

    /// Highest free range of `len` bytes inside `[lo, hi)`, keeping out of
    /// stacks' guard gaps.
    fn find_free_top_down(&self, len: u64, lo: u64, hi: u64) -> Option<u64> {
        let mut top = hi;
        if let Some((s, v)) = self.vmas.range(hi..).next() {
            top = top.min(start_gap(*s, v));
        }
        for (s, v) in self.vmas.range(..hi).rev() {
            let bottom = v.end.max(lo);
            if top > bottom && top - bottom >= len {
                return Some(top - len);
            }
            top = top.min(start_gap(*s, v));
            if top <= lo {
                return None;
            }
        }
        (top > lo && top - lo >= len).then(|| top - len)
    }

    /// Lowest free range of `len` bytes inside `[lo, hi)`, keeping out of
    /// stacks' guard gaps.
    fn find_free_bottom_up(&self, len: u64, lo: u64, hi: u64) -> Option<u64> {
        let mut bottom = lo;
        if let Some((_, v)) = self.vmas.range(..lo).next_back() {
            bottom = bottom.max(v.end);
        }
        for (s, v) in self.vmas.range(lo..) {
            let top = start_gap(*s, v).min(hi);
            if top > bottom && top - bottom >= len {
                return Some(bottom);
            }
            bottom = bottom.max(v.end);
            if bottom >= hi {
                return None;
            }
        }
        (hi > bottom && hi - bottom >= len).then_some(bottom)
    }

    fn split_vma(&mut self, at: u64) {
        if let Some((s, v)) = self.vma_at(at) {
            if s < at {
                let tail = v.advanced(at - s);
                self.vmas.get_mut(&s).unwrap().end = at;
                self.vmas.insert(at, tail);
            }
        }
    }

    fn split_pma(&mut self, at: u64) {
        if let Some((s, p)) = self.pma_at(at) {
            if s < at {
                self.pmas.get_mut(&s).unwrap().end = at;
                self.pmas.insert(
                    at,
                    Pma {
                        off: p.off + (at - s),
                        ..p
                    },
                );
            }
        }
    }

    fn insert_vma(&mut self, start: u64, v: Vma) {
        self.mapped_bytes += v.end - start;
        let end = v.end;
        self.vmas.insert(start, v);
        self.merge_around(start, end);
    }

    /// Merges VMAs touching `[start, end)` with identical neighbours.
    fn merge_around(&mut self, start: u64, end: u64) {
        let mut keys: Vec<u64> = self
            .vmas
            .range(..=end)
            .rev()
            .take_while(|(_, v)| v.end >= start)
            .map(|(s, _)| *s)
            .collect();
        // Ascending order.
        keys.reverse();
        if let Some((ps, _)) = self.vmas.range(..start).next_back() {
            if !keys.contains(ps) {
                keys.insert(0, *ps);
            }
        }
        let mut i = 0;
        while i + 1 < keys.len() {
            let (a, b) = (keys[i], keys[i + 1]);
            let (Some(va), Some(vb)) = (self.vmas.get(&a), self.vmas.get(&b)) else {
                i += 1;
                continue;
            };
            if mergeable(a, va, b, vb) {
                let e = vb.end;
                self.vmas.remove(&b);
                self.vmas.get_mut(&a).unwrap().end = e;
                keys.remove(i + 1);
            } else {
                i += 1;
            }
        }
    }
}

/// Whether the VMA `a` at `sa` and the VMA `b` at `sb` can be one.
fn mergeable(sa: u64, a: &Vma, sb: u64, b: &Vma) -> bool {
    a.end == sb
        && a.prot == b.prot
        && a.growsdown == b.growsdown
        && a.on_fork == b.on_fork
        && a.accounted == b.accounted
        && a.kind == b.kind
        && a.off.wrapping_add(a.end - sa) == b.off
        && match (&a.shm, &b.shm) {
            (None, None) => true,
            (Some(ma), Some(mb)) => Arc::ptr_eq(ma, mb),
            _ => false,
        }
        && match (&a.file, &b.file) {
            (None, None) => true,
            (Some(fa), Some(fb)) => Arc::ptr_eq(&fa.file, &fb.file) && fa.shared == fb.shared,
            _ => false,
        }
}

/// Whether madvise(2) knows `advice`.
pub fn advice_known(advice: i32) -> bool {
    matches!(
        advice,
        libc::MADV_NORMAL
            | libc::MADV_RANDOM
            | libc::MADV_SEQUENTIAL
            | libc::MADV_WILLNEED
            | libc::MADV_DONTNEED
            | libc::MADV_FREE
            | libc::MADV_REMOVE
            | libc::MADV_DONTFORK
            | libc::MADV_DOFORK
            | libc::MADV_MERGEABLE
            | libc::MADV_UNMERGEABLE
            | libc::MADV_HUGEPAGE
            | libc::MADV_NOHUGEPAGE
            | libc::MADV_DONTDUMP
            | libc::MADV_DODUMP
            | libc::MADV_WIPEONFORK
            | libc::MADV_KEEPONFORK
            | libc::MADV_COLD
            | libc::MADV_PAGEOUT
            | MADV_POPULATE_READ
            | MADV_POPULATE_WRITE
            | MADV_DONTNEED_LOCKED
    )
}
