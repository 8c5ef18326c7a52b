//! Advisory locks: flock(2), and the record-lock commands of fcntl
//! (F_GETLK, F_SETLK, F_SETLKW and their OFD forms), on the per-inode lock
//! model of `vfs::lock`.

use std::sync::Arc;

use crate::errno::Errno;

use super::attr::get_file;
use super::{Fd, SysResult};
use crate::kernel::task::Task;
use crate::vfs::lock::{self, LockType, Owner, OFFSET_MAX};
use crate::vfs::FileDescription;

const LOCK_SH: u32 = 1;
const LOCK_EX: u32 = 2;
const LOCK_NB: u32 = 4;
const LOCK_UN: u32 = 8;
/// The long-dead mandatory flock modes, which Linux ignores.
const LOCK_MAND: u32 = 32;

pub fn flock(t: &mut Task, fd: Fd, cmd: u32) -> SysResult {
    if cmd & LOCK_MAND != 0 {
        return Ok(0);
    }
    let typ = match cmd & !LOCK_NB {
        LOCK_SH => Some(LockType::Read),
        LOCK_EX => Some(LockType::Write),
        LOCK_UN => None,
        _ => return Err(Errno::EINVAL),
    };
    let f = get_file(t, fd.0)?;
    if typ.is_some() && !f.readable() && !f.writable() {
        return Err(Errno::EBADF);
    }
    let owner = Arc::as_ptr(&f) as usize;
    let waiter = t.shared.waiter.clone();
    let wait = (cmd & LOCK_NB == 0).then_some(&waiter);
    lock::with_file_locks(&t.kernel.vfs.anon_locks, &f, |l| l.flock(owner, typ, wait))
        .unwrap_or(Ok(()))?;
    Ok(0)
}

/// `struct flock` as x86-64 lays it out.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Flock {
    l_type: i16,
    l_whence: i16,
    _pad0: i32,
    l_start: i64,
    l_len: i64,
    l_pid: i32,
    _pad1: i32,
}

// SAFETY: integer fields with explicit padding, 32 bytes.
unsafe impl crate::mm::io::Pod for Flock {}
crate::assert_no_padding!(Flock {
    l_type,
    l_whence,
    _pad0,
    l_start,
    l_len,
    l_pid,
    _pad1
});

/// A request's type: F_RDLCK, F_WRLCK, or F_UNLCK (None); EINVAL else.
fn lock_type(l_type: i16) -> Result<Option<LockType>, Errno> {
    match l_type as i32 {
        libc::F_RDLCK => Ok(Some(LockType::Read)),
        libc::F_WRLCK => Ok(Some(LockType::Write)),
        libc::F_UNLCK => Ok(None),
        _ => Err(Errno::EINVAL),
    }
}

/// Linux's `flock_to_posix_lock`: the byte range `[start, end]` a
/// `struct flock` names, and its type.
fn to_range(f: &FileDescription, l: &Flock) -> Result<(u64, u64, Option<LockType>), Errno> {
    let base: i64 = match l.l_whence as i32 {
        libc::SEEK_SET => 0,
        libc::SEEK_CUR => f.imp.seek(f, 0, libc::SEEK_CUR).unwrap_or(0) as i64,
        libc::SEEK_END => f.stat().map(|s| s.st_size).unwrap_or(0),
        _ => return Err(Errno::EINVAL),
    };
    let max = OFFSET_MAX as i64;
    if l.l_start > max - base {
        return Err(Errno::EOVERFLOW);
    }
    let mut start = base + l.l_start;
    if start < 0 {
        return Err(Errno::EINVAL);
    }
    let end;
    if l.l_len > 0 {
        if l.l_len - 1 > max - start {
            return Err(Errno::EOVERFLOW);
        }
        end = start + (l.l_len - 1);
    } else if l.l_len < 0 {
        if start + l.l_len < 0 {
            return Err(Errno::EINVAL);
        }
        end = start - 1;
        start += l.l_len;
    } else {
        end = max;
    }
    Ok((start as u64, end as u64, lock_type(l.l_type)?))
}

/// The fcntl record-lock commands. `arg` points at a `struct flock`.
pub fn fcntl_lock(t: &mut Task, f: &Arc<FileDescription>, cmd: i32, arg: u64) -> SysResult {
    if f.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    let mut l: Flock = t.mm.read_obj(arg)?;
    let ofd = matches!(
        cmd,
        libc::F_OFD_GETLK | libc::F_OFD_SETLK | libc::F_OFD_SETLKW
    );
    let owner = if ofd {
        Owner::File(Arc::as_ptr(f) as usize)
    } else {
        t.fds.lock_owner()
    };
    match cmd {
        libc::F_GETLK | libc::F_OFD_GETLK => {
            if cmd == libc::F_GETLK
                && l.l_type as i32 != libc::F_RDLCK
                && l.l_type as i32 != libc::F_WRLCK
            {
                return Err(Errno::EINVAL);
            }
            let (start, end, typ) = to_range(f, &l)?;
            if ofd && l.l_pid != 0 {
                return Err(Errno::EINVAL);
            }
            let found = lock::with_file_locks(&t.kernel.vfs.anon_locks, f, |l| {
                l.test(owner, typ, start, end)
            })
            .flatten();
            match found {
                None => l.l_type = libc::F_UNLCK as i16,
                Some(c) => {
                    l.l_pid = match c.owner {
                        Owner::File(_) => -1,
                        Owner::Process(_) => c.pid,
                    };
                    l.l_start = c.start as i64;
                    l.l_len = if c.end == OFFSET_MAX {
                        0
                    } else {
                        (c.end - c.start + 1) as i64
                    };
                    l.l_whence = libc::SEEK_SET as i16;
                    l.l_type = c.typ.as_flock();
                }
            }
            t.mm.write_obj(arg, &l)?;
            Ok(0)
        }
        _ => {
            let (start, end, typ) = to_range(f, &l)?;
            match typ {
                Some(LockType::Read) if !f.readable() => return Err(Errno::EBADF),
                Some(LockType::Write) if !f.writable() => return Err(Errno::EBADF),
                _ => {}
            }
            if ofd && l.l_pid != 0 {
                return Err(Errno::EINVAL);
            }
            let waiter = t.shared.waiter.clone();
            let graph = &t.kernel.vfs.lock_graph;
            let wait =
                matches!(cmd, libc::F_SETLKW | libc::F_OFD_SETLKW).then_some((&waiter, graph));
            let pid = t.tg.tgid;
            lock::with_file_locks(&t.kernel.vfs.anon_locks, f, |l| {
                l.set(owner, pid, typ, start, end, wait)
            })
            .unwrap_or(Ok(()))
            .map(|()| 0)
        }
    }
}
