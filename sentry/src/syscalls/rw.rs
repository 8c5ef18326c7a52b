//! Positional vector I/O (preadv, pwritev, preadv2, pwritev2) and
//! close_range.

use crate::sync::LockExt;
use std::sync::Arc;

use crate::errno::Errno;

use super::attr::get_file;
use super::fs::{check_pos, read_iovecs, readv_into, writev_from};
use super::{Fd, Hex, SysResult, UserAddr};
use crate::kernel::task::Task;
use crate::vfs::FileDescription;

const RWF_HIPRI: u32 = 0x01;
const RWF_DSYNC: u32 = 0x02;
const RWF_SYNC: u32 = 0x04;
const RWF_NOWAIT: u32 = 0x08;
const RWF_APPEND: u32 = 0x10;
const RWF_NOAPPEND: u32 = 0x20;
const RWF_ATOMIC: u32 = 0x40;
const RWF_DONTCACHE: u32 = 0x80;
/// Suppresses SIGPIPE on writes to a pipe or socket.
const RWF_NOSIGNAL: u32 = 0x100;
const RWF_SUPPORTED: u32 = RWF_HIPRI
    | RWF_DSYNC
    | RWF_SYNC
    | RWF_NOWAIT
    | RWF_APPEND
    | RWF_NOAPPEND
    | RWF_ATOMIC
    | RWF_DONTCACHE
    | RWF_NOSIGNAL;

/// The iovec count argument (an unsigned long) as `read_iovecs` takes it.
fn iov_count(vlen: u64) -> i32 {
    i32::try_from(vlen).unwrap_or(-1)
}

fn file_type(f: &FileDescription) -> u32 {
    f.stat().map(|s| s.st_mode & libc::S_IFMT).unwrap_or(0)
}

/// The RWF_NOWAIT and RWF_DONTCACHE flags a host file (of a gofer mount)
/// takes: its host file system's answer.
fn host_flags(f: &FileDescription) -> u32 {
    f.inode()
        .and_then(|i| crate::fsimpl::gofer::host_rw_flags(&i))
        .unwrap_or(0)
}

/// Whether the file takes RWF_NOWAIT (Linux's FMODE_NOWAIT): pipes and
/// sockets do; tmpfs files do not; host files as their file system does.
fn nowait_capable(f: &FileDescription) -> bool {
    matches!(file_type(f), libc::S_IFIFO | libc::S_IFSOCK) || host_flags(f) & RWF_NOWAIT != 0
}

/// Linux's `kiocb_set_rw_flags`: the RWF_* flags a read or write of `f`
/// accepts.
fn check_rw_flags(f: &FileDescription, flags: u32, write: bool) -> Result<(), Errno> {
    if flags == 0 {
        return Ok(());
    }
    if flags & !RWF_SUPPORTED != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    if flags & RWF_APPEND != 0 && flags & RWF_NOAPPEND != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & RWF_NOWAIT != 0 && !nowait_capable(f) {
        return Err(Errno::EOPNOTSUPP);
    }
    if flags & RWF_ATOMIC != 0 {
        // No file here supports untorn writes.
        let _ = write;
        return Err(Errno::EOPNOTSUPP);
    }
    if flags & RWF_DONTCACHE != 0 && host_flags(f) & RWF_DONTCACHE == 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(())
}

/// Files without a `read_iter` (directories) take no flags but RWF_HIPRI.
fn loop_only(f: &FileDescription) -> bool {
    file_type(f) == libc::S_IFDIR
}

/// The checks vectored reads and writes share, in Linux's order: access
/// mode, the iovecs, the position, the RWF_* flags, RWF_NOWAIT readiness.
/// None when there is nothing to move.
fn prepare_vectored(
    t: &Task,
    f: &FileDescription,
    iov: u64,
    vlen: u64,
    pos: Option<u64>,
    flags: u32,
    write: bool,
) -> Result<Option<Vec<(u64, usize)>>, Errno> {
    if !(if write { f.writable() } else { f.readable() }) {
        return Err(Errno::EBADF);
    }
    let iovs = read_iovecs(t, iov, iov_count(vlen))?;
    let total: usize = iovs.iter().map(|v| v.1).sum();
    if total == 0 {
        return Ok(None);
    }
    if let Some(p) = pos {
        check_pos(p as i64, total)?;
    }
    if loop_only(f) {
        if flags & !RWF_HIPRI != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
    } else {
        check_rw_flags(f, flags, write)?;
    }
    if flags & RWF_NOWAIT != 0 {
        let (want, also) = if write {
            (libc::POLLOUT, libc::POLLERR)
        } else {
            (libc::POLLIN, libc::POLLHUP)
        };
        if f.imp.readiness(f, want) & (want | also) == 0 {
            return Err(Errno::EAGAIN);
        }
    }
    Ok(Some(iovs))
}

fn do_readv(
    t: &Task,
    f: &FileDescription,
    iov: u64,
    vlen: u64,
    pos: Option<u64>,
    flags: u32,
) -> SysResult {
    match prepare_vectored(t, f, iov, vlen, pos, flags, false)? {
        None => Ok(0),
        Some(iovs) => readv_into(t, f, &iovs, pos),
    }
}

fn do_writev(
    t: &Task,
    f: &FileDescription,
    iov: u64,
    vlen: u64,
    pos: Option<u64>,
    flags: u32,
) -> SysResult {
    let Some(iovs) = prepare_vectored(t, f, iov, vlen, pos, flags, true)? else {
        return Ok(0);
    };
    let append_flag = f.flags() & libc::O_APPEND as u32 != 0;
    let regular = file_type(f) == libc::S_IFREG;
    if regular && flags & RWF_APPEND != 0 && !append_flag {
        // This write alone appends: at the end, and the position (when
        // it is the file's) follows it.
        let end = f.stat()?.st_size as u64;
        let n = writev_from(t, f, &iovs, Some(end))?;
        if pos.is_none() {
            *f.pos.locked() = end + n;
        }
        return Ok(n);
    }
    if regular && flags & RWF_NOAPPEND != 0 && append_flag {
        // This write alone does not append: lift O_APPEND around it.
        f.set_status_flags(f.flags() & !(libc::O_APPEND as u32));
        let r = writev_from(t, f, &iovs, pos);
        f.set_status_flags(f.flags() | libc::O_APPEND as u32);
        return r;
    }
    writev_from(t, f, &iovs, pos)
}

/// The file of a positional call: EINVAL for a negative offset, EBADF,
/// ESPIPE for files without positions.
fn positional_file(t: &Task, fd: Fd, pos: i64) -> Result<Arc<FileDescription>, Errno> {
    if pos < 0 {
        return Err(Errno::EINVAL);
    }
    let f = get_file(t, fd.0)?;
    if !f.imp.positional(&f) {
        return Err(Errno::ESPIPE);
    }
    Ok(f)
}

pub fn preadv(
    t: &mut Task,
    fd: Fd,
    iov: UserAddr,
    vlen: u64,
    pos_l: u64,
    _pos_h: u64,
) -> SysResult {
    let pos = pos_l as i64;
    let f = positional_file(t, fd, pos)?;
    do_readv(t, &f, iov.0, vlen, Some(pos as u64), 0)
}

pub fn pwritev(
    t: &mut Task,
    fd: Fd,
    iov: UserAddr,
    vlen: u64,
    pos_l: u64,
    _pos_h: u64,
) -> SysResult {
    let pos = pos_l as i64;
    let f = positional_file(t, fd, pos)?;
    do_writev(t, &f, iov.0, vlen, Some(pos as u64), 0)
}

pub fn preadv2(
    t: &mut Task,
    fd: Fd,
    iov: UserAddr,
    vlen: u64,
    pos_l: u64,
    _pos_h: u64,
    flags: Hex,
) -> SysResult {
    let pos = pos_l as i64;
    let flags = flags.0 as u32;
    if pos == -1 {
        let f = get_file(t, fd.0)?;
        return do_readv(t, &f, iov.0, vlen, None, flags);
    }
    let f = positional_file(t, fd, pos)?;
    do_readv(t, &f, iov.0, vlen, Some(pos as u64), flags)
}

pub fn pwritev2(
    t: &mut Task,
    fd: Fd,
    iov: UserAddr,
    vlen: u64,
    pos_l: u64,
    _pos_h: u64,
    flags: Hex,
) -> SysResult {
    let pos = pos_l as i64;
    let flags = flags.0 as u32;
    if pos == -1 {
        let f = get_file(t, fd.0)?;
        return do_writev(t, &f, iov.0, vlen, None, flags);
    }
    let f = positional_file(t, fd, pos)?;
    do_writev(t, &f, iov.0, vlen, Some(pos as u64), flags)
}

const CLOSE_RANGE_UNSHARE: u32 = 1 << 1;
const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;

pub fn close_range(t: &mut Task, first: u32, last: u32, flags: Hex) -> SysResult {
    let flags = flags.0 as u32;
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    if first > last {
        return Err(Errno::EINVAL);
    }
    if flags & CLOSE_RANGE_UNSHARE != 0 && Arc::strong_count(&t.fds) > 1 {
        t.fds = Arc::new(t.fds.duplicate());
    }
    let in_range = |fd: &i32| (first..=last).contains(&(*fd as u32));
    for fd in t.fds.open_fds().into_iter().filter(in_range) {
        if flags & CLOSE_RANGE_CLOEXEC != 0 {
            let _ = t.fds.set_cloexec(fd, true);
        } else {
            let _ = t.fds.remove(fd);
        }
    }
    Ok(0)
}
