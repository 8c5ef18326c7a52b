//! Memory syscalls: brk, mmap, munmap, mprotect, mremap, madvise.

use crate::errno::Errno;
use crate::sync::LockExt;
use platform::{Prot, PAGE_SIZE};

use super::{Fd, Hex, SysResult, UserAddr};
use crate::kernel::compat::Unsupported;
use crate::kernel::task::Task;
use std::sync::Arc;

use crate::mm::{self, FileMap, MappableFile, MmapOpts, MremapFlags, Placement, VmaKind};
use crate::vfs::FileDescription;

fn page_align_len(len: u64) -> u64 {
    len.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

pub fn brk(t: &mut Task, addr: UserAddr) -> SysResult {
    let limits = t.tg.mm_limits();
    Ok(t.mm.brk(addr.0, limits))
}

/// The flags MAP_SHARED_VALIDATE accepts for files (Linux's
/// LEGACY_MAP_MASK).
const LEGACY_MAP_MASK: u64 = (libc::MAP_SHARED
    | libc::MAP_PRIVATE
    | libc::MAP_FIXED
    | libc::MAP_ANONYMOUS
    | libc::MAP_DENYWRITE
    | libc::MAP_EXECUTABLE
    | 0x400_0000 // MAP_UNINITIALIZED
    | libc::MAP_GROWSDOWN
    | libc::MAP_LOCKED
    | libc::MAP_NORESERVE
    | libc::MAP_POPULATE
    | libc::MAP_NONBLOCK
    | libc::MAP_STACK
    | libc::MAP_HUGETLB
    | libc::MAP_32BIT
    | 0x80) as u64 // MAP_ABOVE4G
    | MAP_HUGE_2MB
    | MAP_HUGE_1GB;

const MAP_TYPE: u64 = 0x0f;
const MAP_HUGE_SHIFT: u64 = 26;
const MAP_HUGE_MASK: u64 = 0x3f;
const MAP_HUGE_2MB: u64 = 21 << MAP_HUGE_SHIFT;
const MAP_HUGE_1GB: u64 = 30 << MAP_HUGE_SHIFT;

pub fn mmap(
    t: &mut Task,
    addr: UserAddr,
    len: usize,
    prot: Hex,
    flags: Hex,
    fd: Fd,
    offset: u64,
) -> SysResult {
    let flags = flags.0;
    let has = |f: i32| flags & f as u64 != 0;
    if !offset.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let prot_bits = Prot::from_bits(prot.0);
    let map_type = flags & MAP_TYPE;
    let shared = map_type == libc::MAP_SHARED as u64;
    // Linux checks the mapping's type, and whether the file can be mapped
    // at all, only once the address is known.
    let late_error = if !has(libc::MAP_ANONYMOUS) {
        let f = t.fds.get(fd.0)?;
        if has(libc::MAP_HUGETLB) {
            return Err(Errno::EINVAL);
        }
        let shared =
            map_type == libc::MAP_SHARED as u64 || map_type == libc::MAP_SHARED_VALIDATE as u64;
        Some(if !shared && map_type != libc::MAP_PRIVATE as u64 {
            Errno::EINVAL
        } else if map_type == libc::MAP_SHARED_VALIDATE as u64 && flags & !LEGACY_MAP_MASK != 0 {
            Errno::EOPNOTSUPP
        } else if (shared
            && prot_bits.write
            && (!f.writable() || f.flags() & libc::O_APPEND as u32 != 0))
            || !f.readable()
        {
            Errno::EACCES
        } else if prot_bits.exec
            && f.location
                .as_ref()
                .is_some_and(|l| l.mount.flags.locked().noexec)
        {
            Errno::EPERM
        } else {
            match mappable(t, &f) {
                Mappable::File(file) => {
                    let sealed = f.inode().is_some_and(|i| {
                        i.ops
                            .as_any()
                            .downcast_ref::<crate::fsimpl::tmpfs::RegularFile>()
                            .is_some_and(|rf| {
                                rf.seals() & (libc::F_SEAL_WRITE | libc::F_SEAL_FUTURE_WRITE) as u32
                                    != 0
                            })
                    });
                    if sealed && shared && prot_bits.write {
                        // A sealed file takes no shared writable mapping.
                        return finish_mmap(
                            t,
                            addr,
                            len,
                            prot_bits,
                            flags,
                            shared,
                            None,
                            offset,
                            Some(Errno::EPERM),
                        );
                    }
                    file.add_mapper(&t.mm);
                    if shared && f.writable() {
                        file.mapped_shared_writable();
                    }
                    let file_map = Some(FileMap { file, shared });
                    return finish_mmap(
                        t, addr, len, prot_bits, flags, shared, file_map, offset, None,
                    );
                }
                Mappable::Zero => {
                    // /dev/zero maps as anonymous memory.
                    return finish_mmap(t, addr, len, prot_bits, flags, shared, None, 0, None);
                }
                Mappable::No => Errno::ENODEV,
            }
        })
    } else if has(libc::MAP_HUGETLB) {
        let size = (flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
        if size != 0
            && size << MAP_HUGE_SHIFT != MAP_HUGE_2MB
            && size << MAP_HUGE_SHIFT != MAP_HUGE_1GB
        {
            return Err(Errno::EINVAL);
        }
        // The sandbox has no huge page pool, as a Linux host with
        // vm.nr_hugepages = 0.
        Some(Errno::ENOMEM)
    } else if !shared && map_type != libc::MAP_PRIVATE as u64 {
        Some(Errno::EINVAL)
    } else if shared && has(libc::MAP_GROWSDOWN) {
        // Shared memory cannot grow down.
        Some(Errno::EINVAL)
    } else {
        None
    };
    finish_mmap(
        t, addr, len, prot_bits, flags, shared, None, offset, late_error,
    )
}

/// What an open file offers mmap.
pub(crate) enum Mappable {
    File(Arc<dyn MappableFile>),
    /// /dev/zero: anonymous memory.
    Zero,
    No,
}

pub(crate) fn mappable(t: &Task, f: &FileDescription) -> Mappable {
    if let Some(m) = f.imp.mappable(f, &t.kernel.memory_file) {
        // Shown in /proc/[pid]/maps as the file the sandbox opened.
        if let Some(l) = &f.location {
            let fs = t.fs.locked();
            let name = String::from_utf8_lossy(&fs.mounts.path(l, &fs.root)).into_owned();
            return Mappable::File(Arc::new(Named {
                inner: m,
                identity: (l.inode.fs.dev, l.inode.ino, name),
            }));
        }
        return Mappable::File(m);
    }
    let Some(inode) = f.inode() else {
        return Mappable::No;
    };
    let meta = inode.meta();
    if meta.file_type() == libc::S_IFCHR && meta.rdev == crate::vfs::inode::makedev(1, 5) {
        return Mappable::Zero;
    }
    if inode
        .ops
        .as_any()
        .downcast_ref::<crate::fsimpl::tmpfs::RegularFile>()
        .is_some()
    {
        // Its path, for /proc/[pid]/maps.
        let name = match &f.location {
            Some(l) => {
                let fs = t.fs.locked();
                String::from_utf8_lossy(&fs.mounts.path(l, &fs.root)).into_owned()
            }
            None => f.imp.name(),
        };
        return Mappable::File(Arc::new(crate::fsimpl::tmpfs::MappedFile::new(inode, name)));
    }
    Mappable::No
}

/// A mappable file under the name and numbers the sandbox knows it by.
struct Named {
    inner: Arc<dyn MappableFile>,
    identity: (u64, u64, String),
}

impl MappableFile for Named {
    fn id(&self) -> usize {
        self.inner.id()
    }
    fn add_mapper(&self, mm: &Arc<crate::mm::MemoryManager>) {
        self.inner.add_mapper(mm)
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn page(&self, index: u64) -> Result<u64, Errno> {
        self.inner.page(index)
    }
    fn identity(&self) -> (u64, u64, String) {
        self.identity.clone()
    }
    fn mapped_shared_writable(&self) {
        self.inner.mapped_shared_writable()
    }
    fn write_back(&self) -> Result<(), Errno> {
        self.inner.write_back()
    }
}

#[allow(clippy::too_many_arguments)]
fn finish_mmap(
    t: &mut Task,
    addr: UserAddr,
    len: usize,
    prot_bits: Prot,
    flags: u64,
    shared: bool,
    file: Option<FileMap>,
    offset: u64,
    late_error: Option<Errno>,
) -> SysResult {
    let has = |f: i32| flags & f as u64 != 0;
    if file.is_some()
        && offset
            .checked_add(page_align_len(len as u64))
            .is_none_or(|e| e > i64::MAX as u64)
    {
        return Err(Errno::EOVERFLOW);
    }
    let placement = if has(libc::MAP_FIXED_NOREPLACE) {
        Placement::FixedNoReplace(addr.0)
    } else if has(libc::MAP_FIXED) {
        Placement::Fixed(addr.0)
    } else {
        Placement::Hint(addr.0)
    };
    let opts = MmapOpts {
        placement,
        len: len as u64,
        prot: prot_bits,
        shared,
        growsdown: has(libc::MAP_GROWSDOWN),
        populate: has(libc::MAP_POPULATE),
        below_2g: has(libc::MAP_32BIT),
        kind: VmaKind::Anonymous,
        file,
        offset,
    };
    let limits = t.tg.mm_limits();
    t.mm.mmap_checked(&opts, limits, late_error)
}

/// msync: validates as Linux does and writes back the shared file
/// mappings in the range whose pages are a cache (gofer files); tmpfs
/// pages are the file. ENOMEM when part of the range is not mapped.
pub fn msync(t: &mut Task, addr: UserAddr, len: usize, flags: i32) -> SysResult {
    let known = libc::MS_ASYNC | libc::MS_SYNC | libc::MS_INVALIDATE;
    if flags & !known != 0 || !addr.0.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    if flags & libc::MS_ASYNC != 0 && flags & libc::MS_SYNC != 0 {
        return Err(Errno::EINVAL);
    }
    let Some(len) = mm::page_up(len as u64) else {
        return Err(Errno::ENOMEM);
    };
    let end = addr.0.checked_add(len).ok_or(Errno::ENOMEM)?;
    if len == 0 {
        return Ok(0);
    }
    let mut at = addr.0;
    let mut unmapped = false;
    let mut files: Vec<Arc<dyn MappableFile>> = Vec::new();
    for (start, v) in t.mm.vmas() {
        if v.end <= at || start >= end {
            continue;
        }
        if start > at {
            unmapped = true;
        }
        at = v.end;
        if let Some(fm) = &v.file {
            if fm.shared && !files.iter().any(|f| Arc::ptr_eq(f, &fm.file)) {
                files.push(fm.file.clone());
            }
        }
    }
    if at < end {
        unmapped = true;
    }
    for f in files {
        f.write_back()?;
    }
    if unmapped {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}

pub fn munmap(t: &mut Task, addr: UserAddr, len: usize) -> SysResult {
    t.mm.munmap(addr.0, len as u64)?;
    Ok(0)
}

pub fn mprotect(t: &mut Task, addr: UserAddr, len: usize, prot: Hex) -> SysResult {
    let prot = prot.0;
    let growsdown = prot & libc::PROT_GROWSDOWN as u64 != 0;
    let growsup = prot & libc::PROT_GROWSUP as u64 != 0;
    if growsdown && growsup {
        return Err(Errno::EINVAL);
    }
    if !addr.0.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let len = mm::page_up(len as u64).unwrap_or(0);
    if len == 0 || addr.0.checked_add(len).is_none() {
        return Err(Errno::ENOMEM);
    }
    // PROT_SEM is accepted (and means nothing on x86).
    let known = (libc::PROT_READ
        | libc::PROT_WRITE
        | libc::PROT_EXEC
        | PROT_SEM
        | libc::PROT_GROWSDOWN
        | libc::PROT_GROWSUP) as u64;
    if prot & !known != 0 {
        return Err(Errno::EINVAL);
    }
    let limits = t.tg.mm_limits();
    t.mm.mprotect(
        addr.0,
        len,
        Prot::from_bits(prot),
        growsdown,
        growsup,
        limits,
    )?;
    Ok(0)
}

const PROT_SEM: i32 = 0x8;

pub fn mremap(
    t: &mut Task,
    old: UserAddr,
    old_len: usize,
    new_len: usize,
    flags: Hex,
    new_addr: UserAddr,
) -> SysResult {
    let known = (libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED | libc::MREMAP_DONTUNMAP) as u64;
    if flags.0 & !known != 0 {
        return Err(Errno::EINVAL);
    }
    let flags = MremapFlags {
        may_move: flags.0 & libc::MREMAP_MAYMOVE as u64 != 0,
        fixed: flags.0 & libc::MREMAP_FIXED as u64 != 0,
        dont_unmap: flags.0 & libc::MREMAP_DONTUNMAP as u64 != 0,
    };
    let limits = t.tg.mm_limits();
    t.mm.mremap(
        old.0,
        old_len as u64,
        new_len as u64,
        flags,
        new_addr.0,
        limits,
    )
}

/// madvise advice the sentry does not know (MADV_HWPOISON,
/// MADV_SOFT_OFFLINE, MADV_COLLAPSE, newer ones).
const MADVISE_UNKNOWN: Unsupported = Unsupported {
    syscall: "madvise",
    argument: "advice",
    answer: Errno::EINVAL,
};

pub fn madvise(t: &mut Task, addr: UserAddr, len: usize, advice: i32) -> SysResult {
    if !mm::advice_known(advice) {
        return MADVISE_UNKNOWN.answer(t, advice);
    }
    t.mm.madvise(addr.0, len as u64, advice)?;
    Ok(0)
}
