//! Memory syscalls: brk, mmap, munmap, mprotect, mremap, madvise.

use nix::errno::Errno;
use platform::{Prot, PAGE_SIZE};

use super::{unimplemented, Fd, Hex, SysResult, UserAddr};
use crate::kernel::task::Task;
use crate::mm::{MmapOpts, Placement, VmaKind};

pub fn brk(t: &mut Task, addr: UserAddr) -> SysResult {
    let limits = t.tg.mm_limits();
    Ok(t.mm.brk(addr.0, limits))
}

const KNOWN_MAP_FLAGS: u64 = (libc::MAP_SHARED
    | libc::MAP_PRIVATE
    | libc::MAP_SHARED_VALIDATE
    | libc::MAP_FIXED
    | libc::MAP_ANONYMOUS
    | libc::MAP_32BIT
    | libc::MAP_GROWSDOWN
    | libc::MAP_DENYWRITE
    | libc::MAP_EXECUTABLE
    | libc::MAP_LOCKED
    | libc::MAP_NORESERVE
    | libc::MAP_POPULATE
    | libc::MAP_NONBLOCK
    | libc::MAP_STACK
    | libc::MAP_HUGETLB
    | libc::MAP_SYNC
    | libc::MAP_FIXED_NOREPLACE) as u64
    | (0x3f << 26); // MAP_HUGE_* size bits

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
    if !offset.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let anonymous = flags & libc::MAP_ANONYMOUS as u64 != 0;
    if !anonymous {
        let f = t.fds.get(fd.0)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        // No file in the sandbox can be mapped yet; Linux answers ENODEV
        // for files without an mmap operation.
        t.kernel
            .note_unimplemented(&format!("mmap of a file ({})", f.imp.name()));
        return Err(Errno::ENODEV);
    }
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    let shared = match flags & 0x0f {
        x if x == libc::MAP_SHARED as u64 => true,
        x if x == libc::MAP_PRIVATE as u64 => false,
        x if x == libc::MAP_SHARED_VALIDATE as u64 => {
            if flags & !KNOWN_MAP_FLAGS != 0 {
                return Err(Errno::EOPNOTSUPP);
            }
            true
        }
        _ => return Err(Errno::EINVAL),
    };
    if flags & libc::MAP_HUGETLB as u64 != 0 {
        // The sandbox has no huge page pool, as a Linux host with
        // vm.nr_hugepages = 0.
        return Err(Errno::ENOMEM);
    }
    let placement = if flags & libc::MAP_FIXED_NOREPLACE as u64 != 0 {
        Placement::FixedNoReplace(addr.0)
    } else if flags & libc::MAP_FIXED as u64 != 0 {
        Placement::Fixed(addr.0)
    } else {
        Placement::Hint(addr.0)
    };
    let opts = MmapOpts {
        placement,
        len: len as u64,
        prot: Prot::from_bits(prot.0),
        shared,
        growsdown: flags & libc::MAP_GROWSDOWN as u64 != 0,
        populate: flags & libc::MAP_POPULATE as u64 != 0,
        below_2g: flags & libc::MAP_32BIT as u64 != 0,
        kind: VmaKind::Anonymous,
    };
    let limits = t.tg.mm_limits();
    t.mm.mmap(&opts, limits)
}

pub fn munmap(t: &mut Task, addr: UserAddr, len: usize) -> SysResult {
    t.mm.munmap(addr.0, len as u64)?;
    Ok(0)
}

pub fn mprotect(t: &mut Task, addr: UserAddr, len: usize, prot: Hex) -> SysResult {
    let known =
        (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC | libc::PROT_GROWSDOWN) as u64;
    if prot.0 & !known != 0 {
        return Err(Errno::EINVAL);
    }
    let growsdown = prot.0 & libc::PROT_GROWSDOWN as u64 != 0;
    t.mm.mprotect(addr.0, len as u64, Prot::from_bits(prot.0), growsdown)?;
    Ok(0)
}

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
    let may_move = flags.0 & libc::MREMAP_MAYMOVE as u64 != 0;
    let fixed = flags.0 & libc::MREMAP_FIXED as u64 != 0;
    if fixed && !may_move {
        return Err(Errno::EINVAL);
    }
    if flags.0 & libc::MREMAP_DONTUNMAP as u64 != 0 {
        return unimplemented(t, "mremap MREMAP_DONTUNMAP");
    }
    let limits = t.tg.mm_limits();
    t.mm.mremap(
        old.0,
        old_len as u64,
        new_len as u64,
        may_move,
        fixed.then_some(new_addr.0),
        limits,
    )
}

pub fn madvise(t: &mut Task, addr: UserAddr, len: usize, advice: i32) -> SysResult {
    t.mm.madvise(addr.0, len as u64, advice)?;
    Ok(0)
}
