//! System V shared memory: shmget, shmat, shmdt, shmctl (the segments
//! are in `kernel::ipc::shm`).

use std::sync::Arc;

use platform::{Prot, PAGE_SIZE};

use super::{Hex, SysResult, UserAddr};
use crate::errno::Errno;
use crate::kernel::compat::Unsupported;
use crate::kernel::ipc::shm::{
    new_segment, NewSegment, Segment, SHMMIN, SHMSEG, SHM_DEST, SHM_LOCKED,
};
use crate::kernel::ipc::{self, Limits, CAP_IPC_LOCK, IPC_INFO, IPC_RMID, IPC_SET, IPC_STAT};
use crate::kernel::task::Task;
use crate::mm::{FileMap, MappableFile, MmapOpts, Placement, VmaKind};
use crate::sync::LockExt;

const SHM_RDONLY: i32 = 0o10000;
const SHM_RND: i32 = 0o20000;
const SHM_REMAP: i32 = 0o40000;
const SHM_EXEC: i32 = 0o100000;

const SHM_LOCK: i32 = 11;
const SHM_UNLOCK: i32 = 12;
const SHM_STAT: i32 = 13;
const SHM_INFO: i32 = 14;
const SHM_STAT_ANY: i32 = 15;

/// SHMLBA: attach addresses are multiples of a page on x86.
const SHMLBA: u64 = PAGE_SIZE;

pub fn shmget(t: &mut Task, key: i32, size: u64, flags: Hex) -> SysResult {
    let flags = flags.0 as i32;
    let kernel = t.kernel.clone();
    let ns = &kernel.ipc;
    let mut st = ns.shm.lock();
    st.reap();
    let fs = st.fs(&kernel.vfs);
    let total_pages = st.total_pages();
    let new = NewSegment {
        fs: &fs,
        mf: &kernel.memory_file,
        limits: &ns.limits,
        total_pages,
        key,
        size,
        flags,
        creds: &t.creds,
        tgid: t.tg.tgid,
    };
    let id = ipc::ipcget(
        &mut st.ids,
        key,
        flags,
        &t.creds,
        |s| {
            if s.size < size {
                Err(Errno::EINVAL)
            } else {
                Ok(())
            }
        },
        |ids| new_segment(ids, new),
    )?;
    Ok(id as u64)
}

pub fn shmat(t: &mut Task, shmid: i32, addr: UserAddr, flags: Hex) -> SysResult {
    let flags = flags.0 as i32;
    let mut addr = addr.0;
    if shmid < 0 {
        return Err(Errno::EINVAL);
    }
    if addr != 0 {
        if addr & (SHMLBA - 1) != 0 {
            if flags & SHM_RND != 0 {
                addr &= !(SHMLBA - 1);
                if addr == 0 && flags & SHM_REMAP != 0 {
                    return Err(Errno::EINVAL);
                }
            } else {
                return Err(Errno::EINVAL);
            }
        }
    } else if flags & SHM_REMAP != 0 {
        return Err(Errno::EINVAL);
    }
    let (mut prot, mut acc) = if flags & SHM_RDONLY != 0 {
        (Prot::from_bits(libc::PROT_READ as u64), 0o444)
    } else {
        (
            Prot::from_bits((libc::PROT_READ | libc::PROT_WRITE) as u64),
            0o666,
        )
    };
    if flags & SHM_EXEC != 0 {
        prot.exec = true;
        acc |= 0o111;
    }
    let ns = &t.kernel.ipc;
    let (mapping, size) = {
        let mut st = ns.shm.lock();
        st.reap();
        let seg = st.ids.get(shmid)?;
        seg.perm.check(&t.creds, acc)?;
        (seg.mapping(), seg.size)
    };
    mapping.add_mapper(&t.mm);
    let placement = if addr == 0 {
        Placement::Hint(0)
    } else if flags & SHM_REMAP != 0 {
        Placement::Fixed(addr)
    } else {
        if addr.checked_add(size).is_none() {
            return Err(Errno::EINVAL);
        }
        Placement::FixedNoReplace(addr)
    };
    let opts = MmapOpts {
        placement,
        len: size,
        prot,
        shared: true,
        growsdown: false,
        populate: false,
        below_2g: false,
        kind: VmaKind::Anonymous,
        file: Some(FileMap {
            file: mapping.clone() as Arc<dyn crate::mm::MappableFile>,
            shared: true,
        }),
        offset: 0,
    };
    let limits = t.tg.mm_limits();
    let at = t.mm.mmap(&opts, limits).map_err(|e| {
        // An address in use is EINVAL (find_vma_intersection).
        if e == Errno::EEXIST {
            Errno::EINVAL
        } else {
            e
        }
    })?;
    // Linux's shm_open: the attach time and process.
    let mut tm = mapping.times().locked();
    tm.atime = ipc::now();
    tm.lpid = t.tg.tgid;
    Ok(at)
}

/// shmdt: unmaps the attach whose first page is at `addr`, with the
/// pieces mprotect or munmap made of it (Linux's two passes).
pub fn shmdt(t: &mut Task, addr: UserAddr) -> SysResult {
    let addr = addr.0;
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let ns = &t.kernel.ipc;
    // Each segment's pages, by what identifies them, and its size.
    let segs: Vec<(usize, u64)> = {
        let mut st = ns.shm.lock();
        st.reap();
        st.ids.iter().map(|s| (s.file_id(), s.size)).collect()
    };
    let vmas = t.mm.vmas();
    let shm_of = |v: &crate::mm::Vma| {
        let f = v.file.as_ref()?;
        segs.iter()
            .find(|s| s.0 == f.file.id())
            .map(|s| (f.file.clone(), s.1))
    };
    // The offset of the VMA's start from `addr` must be its offset in
    // the segment.
    let lines_up = |start: u64, v: &crate::mm::Vma| start >= addr && start - addr == v.off;
    let mut found: Option<(Arc<dyn crate::mm::MappableFile>, u64)> = None;
    let mut unmap = Vec::new();
    let mut rest = vmas.iter().filter(|(_, v)| v.end > addr);
    for (start, v) in rest.by_ref() {
        if let Some(s) = shm_of(v) {
            if lines_up(*start, v) {
                unmap.push((*start, v.end));
                found = Some(s);
                break;
            }
        }
    }
    let Some((file, size)) = found else {
        return Err(Errno::EINVAL);
    };
    let size = crate::mm::page_up(size).unwrap_or(u64::MAX);
    for (start, v) in rest {
        if v.end - addr > size {
            break;
        }
        if let Some(f) = &v.file {
            if Arc::ptr_eq(&f.file, &file) && lines_up(*start, v) {
                unmap.push((*start, v.end));
            }
        }
    }
    drop(vmas);
    drop(file);
    for (s, e) in unmap {
        let _ = t.mm.munmap(s, e - s);
    }
    // Each unmapped VMA recorded the detach (`ShmMapping::unmapped`).
    ns.shm.lock().reap();
    Ok(0)
}

/// shmctl commands the sentry does not know.
const CTL_UNKNOWN: Unsupported = Unsupported {
    syscall: "shmctl",
    argument: "command",
    answer: Errno::EINVAL,
};

pub fn shmctl(t: &mut Task, shmid: i32, cmd: i32, buf: UserAddr) -> SysResult {
    let ns = &t.kernel.ipc;
    let l = &ns.limits;
    if shmid < 0 || cmd < 0 {
        return Err(Errno::EINVAL);
    }
    let mut st = ns.shm.lock();
    st.reap();
    match cmd {
        IPC_INFO => {
            // struct shminfo64.
            let mut b = [0u8; 72];
            let v = [
                Limits::get(&l.shmmax) as u64,
                SHMMIN,
                Limits::get(&l.shmmni) as u64,
                SHMSEG,
                Limits::get(&l.shmall) as u64,
            ];
            for (i, x) in v.iter().enumerate() {
                b[i * 8..i * 8 + 8].copy_from_slice(&x.to_le_bytes());
            }
            let max = st.ids.max_idx().max(0);
            drop(st);
            t.mm.copy_out(buf.0, &b)?;
            Ok(max as u64)
        }
        SHM_INFO => {
            // struct shm_info.
            let mut b = [0u8; 48];
            b[0..4].copy_from_slice(&(st.ids.len() as i32).to_le_bytes());
            b[8..16].copy_from_slice(&st.total_pages().to_le_bytes());
            let rss: u64 = st.ids.iter().map(|s| s.resident_pages()).sum();
            b[16..24].copy_from_slice(&rss.to_le_bytes());
            let max = st.ids.max_idx().max(0);
            drop(st);
            t.mm.copy_out(buf.0, &b)?;
            Ok(max as u64)
        }
        IPC_STAT | SHM_STAT | SHM_STAT_ANY => {
            let seg: &Segment = if cmd == IPC_STAT {
                st.ids.get(shmid)?
            } else {
                st.ids.at_index(shmid)?
            };
            if cmd != SHM_STAT_ANY {
                seg.perm.check(&t.creds, 0o444)?;
            }
            let b = seg.to_bytes();
            let ret = if cmd == IPC_STAT { 0 } else { seg.perm.id };
            drop(st);
            t.mm.copy_out(buf.0, &b)?;
            Ok(ret as u64)
        }
        IPC_SET => {
            let mut b = [0u8; 112];
            t.mm.copy_in(buf.0, &mut b)?;
            let seg = st.ids.get_mut(shmid)?;
            seg.perm.check_owner(&t.creds)?;
            let (uid, gid, mode) = ipc::Perm::from_set(&b[..48]);
            seg.perm.set(uid, gid, mode);
            seg.ctime = ipc::now();
            Ok(0)
        }
        IPC_RMID => {
            let seg = st.ids.get_mut(shmid)?;
            seg.perm.check_owner(&t.creds)?;
            if seg.nattch() > 0 {
                seg.perm.mode |= SHM_DEST;
                seg.perm.key = ipc::IPC_PRIVATE;
            } else {
                st.ids.remove(shmid);
            }
            Ok(0)
        }
        SHM_LOCK | SHM_UNLOCK => {
            let memlock = t.tg.limits.lock().unwrap().cur(libc::RLIMIT_MEMLOCK);
            let seg = st.ids.get_mut(shmid)?;
            if !t.creds.has_cap(CAP_IPC_LOCK) {
                if t.creds.euid != seg.perm.uid && t.creds.euid != seg.perm.cuid {
                    return Err(Errno::EPERM);
                }
                if cmd == SHM_LOCK && memlock == 0 {
                    return Err(Errno::EPERM);
                }
            }
            if cmd == SHM_LOCK {
                seg.perm.mode |= SHM_LOCKED;
            } else {
                seg.perm.mode &= !SHM_LOCKED;
            }
            Ok(0)
        }
        _ => CTL_UNKNOWN.answer(t, cmd),
    }
}
