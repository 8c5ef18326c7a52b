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

pub mod io;
pub mod memory_file;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use nix::errno::Errno;
use platform::{AddressSpace, Prot, PAGE_SIZE};

pub use memory_file::MemoryFile;

/// How much memory one fault backs at most: the aligned window around the
/// faulting address, clipped to its VMA.
const FAULT_WINDOW: u64 = 2 << 20;

/// si_code of a fault on an address with no mapping.
pub const SEGV_MAPERR: i32 = 1;
/// si_code of a fault the mapping's protection did not allow.
pub const SEGV_ACCERR: i32 = 2;

/// Linux's `mmap_min_addr` default.
pub const MMAP_MIN_ADDR: u64 = 0x10000;

/// Linux's `stack_guard_gap`: 256 pages.
const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;

/// Linux's `vm.max_map_count` default.
const MAX_MAP_COUNT: usize = 65530;

pub fn page_down(a: u64) -> u64 {
    a & !(PAGE_SIZE - 1)
}

/// Rounds up to a page boundary; `None` on overflow.
pub fn page_up(a: u64) -> Option<u64> {
    a.checked_add(PAGE_SIZE - 1).map(|v| v & !(PAGE_SIZE - 1))
}

/// What a VMA is, for `/proc/[pid]/maps` and for growth rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmaKind {
    Anonymous,
    Heap,
    Stack,
    /// A private copy of a file's pages made by the loader (name = path).
    File(String),
}

#[derive(Clone, Debug)]
pub struct Vma {
    pub end: u64,
    pub prot: Prot,
    pub shared: bool,
    pub growsdown: bool,
    pub kind: VmaKind,
}

#[derive(Clone, Copy, Debug)]
struct Pma {
    end: u64,
    /// Offset in the memory file of this PMA's first page.
    off: u64,
    /// What the platform has mapped here, if anything.
    mapped: Option<Prot>,
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
}

/// Resource limits the memory manager enforces, from the caller's thread
/// group.
#[derive(Clone, Copy, Debug)]
pub struct MmLimits {
    /// RLIMIT_AS.
    pub address_space: u64,
    /// RLIMIT_DATA (for brk).
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
    /// `SEGV_MAPERR` or `SEGV_ACCERR`, for the guest's siginfo.
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
    mf: Arc<MemoryFile>,
    info: Mutex<ProcessInfo>,
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
}

impl MemoryManager {
    pub fn new(mf: Arc<MemoryFile>, aspace: Arc<dyn AddressSpace>, max_addr: u64) -> MemoryManager {
        MemoryManager {
            mf,
            info: Mutex::new(ProcessInfo::default()),
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
            }),
        }
    }

    pub fn address_space(&self) -> &Arc<dyn AddressSpace> {
        &self.aspace
    }

    pub fn max_addr(&self) -> u64 {
        self.max_addr
    }

    fn lock(&self) -> MutexGuard<'_, MmState> {
        self.state.lock().unwrap()
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

    pub fn set_process_info(&self, info: ProcessInfo) {
        *self.info.lock().unwrap() = info;
    }

    pub fn process_info(&self) -> ProcessInfo {
        self.info.lock().unwrap().clone()
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
        let len = page_up(opts.len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        if len > self.max_addr {
            return Err(Errno::ENOMEM);
        }
        let mut st = self.lock();
        let addr = match opts.placement {
            Placement::Fixed(a) | Placement::FixedNoReplace(a) => {
                if a % PAGE_SIZE != 0 {
                    return Err(Errno::EINVAL);
                }
                let end = a.checked_add(len).ok_or(Errno::ENOMEM)?;
                if end > self.max_addr {
                    return Err(Errno::ENOMEM);
                }
                if a < MMAP_MIN_ADDR {
                    return Err(Errno::EPERM);
                }
                if matches!(opts.placement, Placement::FixedNoReplace(_)) && st.overlaps(a, end) {
                    return Err(Errno::EEXIST);
                }
                a
            }
            Placement::Hint(h) => {
                let h = page_down(h);
                let (lo, hi) = if opts.below_2g {
                    (0x4000_0000, 0x8000_0000)
                } else {
                    (MMAP_MIN_ADDR, st.mmap_base.min(self.max_addr))
                };
                if h >= MMAP_MIN_ADDR
                    && h.checked_add(len).is_some_and(|e| e <= self.max_addr)
                    && !st.overlaps(h, h + len)
                    && (!opts.below_2g || (h >= lo && h + len <= hi))
                {
                    h
                } else {
                    st.find_free(len, lo, hi)
                        .or_else(|| st.find_free(len, lo, self.max_addr))
                        .ok_or(Errno::ENOMEM)?
                }
            }
        };
        let end = addr + len;
        let replaced = st.overlap_bytes(addr, end);
        if st.mapped_bytes - replaced + len > limits.address_space {
            return Err(Errno::ENOMEM);
        }
        if st.vmas.len() + 2 > MAX_MAP_COUNT {
            return Err(Errno::ENOMEM);
        }
        self.remove_range(&mut st, addr, end);
        st.insert_vma(
            addr,
            Vma {
                end,
                prot: opts.prot,
                shared: opts.shared,
                growsdown: opts.growsdown,
                kind: opts.kind.clone(),
            },
        );
        if opts.populate {
            // Linux ignores failures of MAP_POPULATE; so do we.
            let _ = self.populate_locked(&mut st, addr, end, true);
        }
        Ok(addr)
    }

    pub fn munmap(&self, addr: u64, len: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::EINVAL)?;
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        if end > self.max_addr {
            return Err(Errno::EINVAL);
        }
        let mut st = self.lock();
        self.remove_range(&mut st, addr, end);
        Ok(())
    }

    pub fn mprotect(&self, addr: u64, len: u64, prot: Prot, growsdown: bool) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        let mut start = addr;
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        if end > self.max_addr {
            return Err(Errno::ENOMEM);
        }
        let mut st = self.lock();
        if growsdown {
            // PROT_GROWSDOWN: extend the change down to the VMA's start.
            match st.vma_at(start) {
                Some((vs, v)) if v.growsdown => start = vs,
                Some(_) => return Err(Errno::EINVAL),
                None => return Err(Errno::ENOMEM),
            }
        }
        if !st.fully_mapped(start, end) {
            return Err(Errno::ENOMEM);
        }
        st.split_vma(start);
        st.split_vma(end);
        for (_, v) in st.vmas.range_mut(start..end) {
            v.prot = prot;
        }
        st.merge_around(start, end);
        // Drop the platform's mappings so the next access maps the pages
        // with the new protection.
        self.unmap_platform(&mut st, start, end);
        Ok(())
    }

    /// mremap(2). `new_addr` is only used with MREMAP_FIXED.
    pub fn mremap(
        &self,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed: Option<u64>,
        limits: MmLimits,
    ) -> Result<u64, Errno> {
        if !old.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
        if new_len == 0 {
            return Err(Errno::EINVAL);
        }
        let old_end = old.checked_add(old_len).ok_or(Errno::EINVAL)?;
        let mut st = self.lock();
        let (vs, v) = st.vma_at(old).ok_or(Errno::EFAULT)?;
        let v = v.clone();
        if old_len == 0 {
            // Duplicating a shared mapping; private ones cannot be.
            if !v.shared {
                return Err(Errno::EINVAL);
            }
            return Err(Errno::EINVAL);
        }
        if old_end > v.end {
            return Err(Errno::EFAULT);
        }
        if let Some(na) = fixed {
            if na % PAGE_SIZE != 0 {
                return Err(Errno::EINVAL);
            }
            let ne = na.checked_add(new_len).ok_or(Errno::EINVAL)?;
            if ne > self.max_addr || na < MMAP_MIN_ADDR {
                return Err(Errno::EINVAL);
            }
            if na < old_end && old < ne {
                return Err(Errno::EINVAL);
            }
            if st.mapped_bytes - st.overlap_bytes(na, ne) - old_len.min(new_len) + new_len
                > limits.address_space.saturating_add(old_len.min(new_len))
            {
                return Err(Errno::ENOMEM);
            }
            self.remove_range(&mut st, na, ne);
            return Ok(self.move_range(&mut st, old, old_len, na, new_len, &v));
        }
        if new_len <= old_len {
            self.remove_range(&mut st, old + new_len, old_end);
            return Ok(old);
        }
        let grow = new_len - old_len;
        if st.mapped_bytes + grow > limits.address_space {
            return Err(Errno::ENOMEM);
        }
        // Grow in place when the range is the end of its VMA and the
        // following pages are free.
        let new_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
        if old_end == v.end && new_end <= self.max_addr && !st.overlaps(old_end, new_end) {
            let vma = st.vmas.get_mut(&vs).unwrap();
            vma.end = new_end;
            st.mapped_bytes += grow;
            return Ok(old);
        }
        if !may_move {
            return Err(Errno::ENOMEM);
        }
        let (lo, hi) = (MMAP_MIN_ADDR, st.mmap_base.min(self.max_addr));
        let na = st
            .find_free(new_len, lo, hi)
            .or_else(|| st.find_free(new_len, lo, self.max_addr))
            .ok_or(Errno::ENOMEM)?;
        Ok(self.move_range(&mut st, old, old_len, na, new_len, &v))
    }

    /// Moves `[old, old+old_len)` (inside one VMA like `proto`) to
    /// `[new, new+new_len)`, which is free, keeping its memory.
    fn move_range(
        &self,
        st: &mut MmState,
        old: u64,
        old_len: u64,
        new: u64,
        new_len: u64,
        proto: &Vma,
    ) -> u64 {
        let keep = old_len.min(new_len);
        st.split_pma(old);
        st.split_pma(old + keep);
        self.unmap_platform(st, old, old + old_len);
        let moved: Vec<(u64, Pma)> = st
            .pmas
            .range(old..old + keep)
            .map(|(s, p)| (*s, *p))
            .collect();
        for (s, _) in &moved {
            st.pmas.remove(s);
        }
        self.remove_range(st, old, old + old_len);
        let mut v = proto.clone();
        v.end = new + new_len;
        st.insert_vma(new, v);
        for (s, p) in moved {
            let ns = s - old + new;
            st.pmas.insert(
                ns,
                Pma {
                    end: p.end - old + new,
                    off: p.off,
                    mapped: None,
                },
            );
        }
        new
    }

    /// brk(2): returns the new break, or the old one on failure.
    pub fn brk(&self, addr: u64, limits: MmLimits) -> u64 {
        let mut st = self.lock();
        if addr < st.brk_start || addr >= self.max_addr {
            return st.brk;
        }
        let old_top = page_up(st.brk).unwrap();
        let new_top = match page_up(addr) {
            Some(t) => t,
            None => return st.brk,
        };
        if addr - st.brk_start > limits.data {
            return st.brk;
        }
        if new_top > old_top {
            if st.overlaps(old_top, new_top)
                || st.mapped_bytes + (new_top - old_top) > limits.address_space
                || new_top > st.mmap_base.max(st.brk_start)
                    && st.stack_top.saturating_sub(STACK_GUARD_GAP) < new_top
            {
                return st.brk;
            }
            st.insert_vma(
                old_top,
                Vma {
                    end: new_top,
                    prot: Prot::RW,
                    shared: false,
                    growsdown: false,
                    kind: VmaKind::Heap,
                },
            );
        } else if new_top < old_top {
            self.remove_range(&mut st, new_top, old_top);
        }
        st.brk = addr;
        addr
    }

    /// madvise(2).
    pub fn madvise(&self, addr: u64, len: u64, advice: i32) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let known = matches!(
            advice,
            libc::MADV_NORMAL
                | libc::MADV_RANDOM
                | libc::MADV_SEQUENTIAL
                | libc::MADV_WILLNEED
                | libc::MADV_DONTNEED
                | libc::MADV_FREE
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
        );
        if !known {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::EINVAL)?;
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        let mut st = self.lock();
        let fully = st.fully_mapped(addr, end);
        if advice == libc::MADV_DONTNEED {
            // Private anonymous memory reads as zeroes afterwards; so does
            // shared anonymous memory of a single process.
            self.drop_pmas(&mut st, addr, end);
        }
        // The other advice values are hints that change no visible
        // behaviour (MADV_FREE may keep the data, which is allowed).
        if !fully {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    // ----- faults and access -----

    /// Handles a guest page fault at `addr`. `code` is the host's si_code.
    pub fn handle_fault(&self, addr: u64, _host_code: i32, limits: MmLimits) -> Result<(), Segv> {
        let mut st = self.lock();
        let page = page_down(addr);
        let (vs, vma) = match st.vma_at(page) {
            Some((s, v)) => (s, v.clone()),
            None => {
                if self.grow_stack(&mut st, page, limits) {
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
            if let Some(m) = p.mapped {
                // The platform already maps this page with the VMA's
                // protection: the access itself is not allowed.
                if m == vma.prot {
                    return Err(Segv { code: SEGV_ACCERR });
                }
            }
        }
        let wstart = page_down(addr & !(FAULT_WINDOW - 1)).max(vs);
        let wend = ((addr | (FAULT_WINDOW - 1)) + 1).min(vma.end);
        if self.populate_locked(&mut st, wstart, wend, false).is_err() {
            return Err(Segv { code: SEGV_MAPERR });
        }
        Ok(())
    }

    /// Extends a grows-down VMA above `page` down to it, if Linux would.
    fn grow_stack(&self, st: &mut MmState, page: u64, limits: MmLimits) -> bool {
        let Some((&ns, next)) = st.vmas.range(page..).next() else {
            return false;
        };
        if !next.growsdown {
            return false;
        }
        let size = next.end - page;
        if size > limits.stack {
            return false;
        }
        if let Some((_, prev)) = st.vmas.range(..page).next_back() {
            if prev.end + STACK_GUARD_GAP > page {
                return false;
            }
        }
        if page < MMAP_MIN_ADDR {
            return false;
        }
        let mut v = st.vmas.remove(&ns).unwrap();
        let grow = ns - page;
        v.end = v.end.max(ns);
        st.vmas.insert(page, v);
        st.mapped_bytes += grow;
        true
    }

    /// Backs `[start, end)` with memory and maps it into the platform.
    /// With `check`, fails with EFAULT where no VMA covers the range.
    fn populate_locked(
        &self,
        st: &mut MmState,
        start: u64,
        end: u64,
        _write: bool,
    ) -> Result<(), Errno> {
        // Fill the gaps between existing PMAs, VMA by VMA.
        let vmas: Vec<(u64, Vma)> = st
            .vmas
            .range(..end)
            .rev()
            .take_while(|(_, v)| v.end > start)
            .map(|(s, v)| (*s, v.clone()))
            .collect();
        for (vs, v) in vmas.iter().rev() {
            let s = (*vs).max(start);
            let e = v.end.min(end);
            if v.prot.is_none() {
                continue;
            }
            st.split_pma(s);
            st.split_pma(e);
            let mut cur = s;
            let existing: Vec<(u64, Pma)> = st.pmas.range(s..e).map(|(a, p)| (*a, *p)).collect();
            let mut gaps = Vec::new();
            for (ps, p) in &existing {
                if *ps > cur {
                    gaps.push((cur, *ps));
                }
                cur = p.end;
            }
            if cur < e {
                gaps.push((cur, e));
            }
            for (gs, ge) in gaps {
                let off = self.mf.allocate(ge - gs)?;
                st.pmas.insert(
                    gs,
                    Pma {
                        end: ge,
                        off,
                        mapped: None,
                    },
                );
            }
            // Map whatever the platform does not have with the right
            // protection.
            let to_map: Vec<(u64, Pma)> = st
                .pmas
                .range(s..e)
                .filter(|(_, p)| p.mapped != Some(v.prot))
                .map(|(a, p)| (*a, *p))
                .collect();
            for (ps, p) in to_map {
                self.aspace
                    .map_file(ps, p.end - ps, p.off, v.prot)
                    .map_err(|e| {
                        tracing::error!("mapping guest memory failed: {e}");
                        Errno::EFAULT
                    })?;
                st.pmas.get_mut(&ps).unwrap().mapped = Some(v.prot);
            }
        }
        Ok(())
    }

    /// Removes VMAs and PMAs in `[start, end)`, freeing memory and the
    /// platform's mappings.
    fn remove_range(&self, st: &mut MmState, start: u64, end: u64) {
        st.split_vma(start);
        st.split_vma(end);
        let keys: Vec<u64> = st.vmas.range(start..end).map(|(s, _)| *s).collect();
        for k in keys {
            let v = st.vmas.remove(&k).unwrap();
            st.mapped_bytes -= v.end - k;
        }
        self.drop_pmas(st, start, end);
    }

    fn drop_pmas(&self, st: &mut MmState, start: u64, end: u64) {
        st.split_pma(start);
        st.split_pma(end);
        self.unmap_platform(st, start, end);
        let keys: Vec<u64> = st.pmas.range(start..end).map(|(s, _)| *s).collect();
        for k in keys {
            let p = st.pmas.remove(&k).unwrap();
            self.mf.free(p.off, p.end - k);
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
    /// access that way; returns the bytes visited.
    pub(crate) fn for_each_range(
        &self,
        addr: u64,
        len: u64,
        write: bool,
        force: bool,
        mut f: impl FnMut(u64, u64),
    ) -> u64 {
        let mut st = self.lock();
        let mut done = 0u64;
        while done < len {
            let a = addr + done;
            let page = page_down(a);
            let (vs, vma) = match st.vma_at(page) {
                Some((s, v)) => (s, v.clone()),
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
            if st.pma_at(page).is_none() {
                let wstart = page_down(a & !(FAULT_WINDOW - 1)).max(vs);
                let wend = ((a | (FAULT_WINDOW - 1)) + 1).min(vma.end);
                let r = if vma.prot.is_none() {
                    // Forced access to PROT_NONE memory (the loader): back
                    // it without mapping it.
                    self.back_only(&mut st, wstart, wend)
                } else {
                    self.populate_locked(&mut st, wstart, wend, write)
                };
                if r.is_err() {
                    break;
                }
            }
            let (ps, p) = match st.pma_at(page) {
                Some(x) => x,
                None => break,
            };
            let chunk = (p.end.min(vma.end) - a).min(len - done);
            f(p.off + (a - ps), chunk);
            done += chunk;
        }
        done
    }

    fn back_only(&self, st: &mut MmState, start: u64, end: u64) -> Result<(), Errno> {
        st.split_pma(start);
        st.split_pma(end);
        if st.pmas.range(start..end).next().is_none() {
            let off = self.mf.allocate(end - start)?;
            st.pmas.insert(
                start,
                Pma {
                    end,
                    off,
                    mapped: None,
                },
            );
        }
        Ok(())
    }

    pub fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.mf
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

impl MmState {
    fn vma_at(&self, addr: u64) -> Option<(u64, &Vma)> {
        self.vmas
            .range(..=addr)
            .next_back()
            .filter(|(_, v)| v.end > addr)
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
        if let Some((_, v)) = self.vmas.range(..start).next_back() {
            if v.end > start {
                return true;
            }
        }
        self.vmas.range(start..end).next().is_some()
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

    fn fully_mapped(&self, start: u64, end: u64) -> bool {
        let mut cur = start;
        while cur < end {
            match self.vma_at(cur) {
                Some((_, v)) => cur = v.end,
                None => return false,
            }
        }
        true
    }

    /// Highest free range of `len` bytes inside `[lo, hi)`.
    fn find_free(&self, len: u64, lo: u64, hi: u64) -> Option<u64> {
        let mut top = hi;
        for (s, v) in self.vmas.range(..hi).rev() {
            let gap_end = top;
            let gap_start = v.end.max(lo);
            if gap_end >= gap_start && gap_end - gap_start >= len {
                return Some(gap_end - len);
            }
            top = top.min(*s);
            if top <= lo {
                return None;
            }
        }
        if top >= lo && top - lo >= len {
            return Some(top - len);
        }
        None
    }

    fn split_vma(&mut self, at: u64) {
        if let Some((s, v)) = self.vma_at(at) {
            if s < at {
                let mut tail = v.clone();
                tail.end = v.end;
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
                        end: p.end,
                        off: p.off + (at - s),
                        mapped: p.mapped,
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
        let keys: Vec<u64> = self
            .vmas
            .range(..=end)
            .rev()
            .take_while(|(_, v)| v.end >= start)
            .map(|(s, _)| *s)
            .collect();
        // Ascending order.
        let mut keys = keys;
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
            if va.end == b
                && va.prot == vb.prot
                && va.shared == vb.shared
                && va.growsdown == vb.growsdown
                && va.kind == vb.kind
            {
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
