//! File descriptor and I/O syscalls: read/write and their vector and
//! positional forms, close, dup*, fcntl, fstat, ioctl, lseek, poll.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::errno::Errno;

use super::{Fd, Hex, InBuf, OutBuf, SysResult, UserAddr};
use crate::kernel::compat::Unsupported;
use crate::kernel::task::Task;
use crate::mm::io::{as_bytes, from_bytes};
use crate::vfs::FileDescription;

/// Linux's MAX_RW_COUNT: one read or write moves at most this much.
const MAX_RW_COUNT: usize = 0x7fff_f000;
/// The largest bounce buffer one call uses.
const MAX_CHUNK: usize = 16 << 20;
/// UIO_MAXIOV.
const UIO_MAXIOV: i32 = 1024;
const F_SETSIG: i32 = 10;
const F_GETSIG: i32 = 11;
const F_SETOWN_EX: i32 = 15;
const F_GETOWN_EX: i32 = 16;

fn nofile_limit(t: &Task) -> u64 {
    t.tg.limits.lock().unwrap().cur(libc::RLIMIT_NOFILE)
}

fn readable_file(t: &Task, fd: Fd) -> Result<Arc<FileDescription>, Errno> {
    let f = t.fds.get(fd.0)?;
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

fn writable_file(t: &Task, fd: Fd) -> Result<Arc<FileDescription>, Errno> {
    let f = t.fds.get(fd.0)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

/// The end of the user address space (x86-64 TASK_SIZE_MAX with 4-level
/// page tables).
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// Linux's `access_ok`: the range lies wholly in the user address space.
/// Checked before a copy is tried, so a range past it fails even where no
/// byte would be copied.
pub fn access_ok(addr: u64, len: u64) -> bool {
    addr.checked_add(len).is_some_and(|end| end <= TASK_SIZE)
}

/// What an I/O call did, for inotify: IN_ACCESS or IN_MODIFY when it
/// moved bytes.
fn notified(f: &FileDescription, r: SysResult, event: u32) -> SysResult {
    if matches!(r, Ok(n) if n > 0) {
        crate::vfs::inotify::notify_file(f, event);
    }
    r
}

/// Reads from `f` into guest memory at `buf`. The caller has checked the
/// range with [`access_ok`].
fn read_into(
    t: &Task,
    f: &FileDescription,
    buf: u64,
    count: usize,
    offset: Option<u64>,
) -> SysResult {
    let r = read_into_file(t, f, buf, count, offset);
    notified(f, r, crate::vfs::inotify::IN_ACCESS)
}

fn read_into_file(
    t: &Task,
    f: &FileDescription,
    buf: u64,
    count: usize,
    offset: Option<u64>,
) -> SysResult {
    let count = count.min(MAX_RW_COUNT);
    if count == 0 && !f.imp.empty_io_reaches_file() {
        return Ok(0);
    }
    if f.imp.direct_io() {
        // Straight into the guest's memory, without a sentry buffer.
        if let Some(r) = t.mm.with_guest_range(buf, count as u64, true, |mf, dst| {
            f.imp.read_to_memory(f, mf, dst, count, offset)
        }) {
            return r.map(|n| n as u64);
        }
    }
    let room = t.mm.writable_len(buf, count as u64) as usize;
    let mut data = vec![0u8; room.min(MAX_CHUNK)];
    let n = if room < count && room < MAX_CHUNK {
        // The copy would fault after `room` bytes: the file decides what
        // that means.
        f.imp.read_short(f, &mut data, count, offset)?
    } else {
        f.imp.read(f, &mut data, offset)?
    };
    t.mm.copy_out(buf, &data[..n])?;
    Ok(n as u64)
}

/// RLIMIT_FSIZE of the caller's process.
pub(crate) fn fsize_limit(t: &Task) -> u64 {
    crate::kernel::task::lock_limits(&t.tg).cur(libc::RLIMIT_FSIZE)
}

/// SIGXFSZ for a write past RLIMIT_FSIZE.
pub(crate) fn raise_xfsz(t: &Task) {
    let info = crate::kernel::signal::SigInfo::new(libc::SIGXFSZ, crate::kernel::signal::SI_KERNEL);
    t.kernel.send_thread_signal(&t.shared, info);
}

/// How much of a `count`-byte write to a regular file at `offset` (its
/// position when None) RLIMIT_FSIZE lets through: all of it, the part
/// below the limit, or nothing (EFBIG, with SIGXFSZ).
fn fsize_allows(
    t: &Task,
    f: &FileDescription,
    offset: Option<u64>,
    count: usize,
) -> Result<usize, Errno> {
    let limit = fsize_limit(t);
    if limit == u64::MAX || count == 0 {
        return Ok(count);
    }
    let Some(inode) = f.inode() else {
        return Ok(count);
    };
    let meta = inode.meta();
    if meta.file_type() != libc::S_IFREG {
        return Ok(count);
    }
    let pos = match offset {
        Some(o) => o,
        None if f.flags() & libc::O_APPEND as u32 != 0 => meta.size,
        None => f.imp.seek(f, 0, libc::SEEK_CUR).unwrap_or(0),
    };
    if pos >= limit {
        raise_xfsz(t);
        return Err(Errno::EFBIG);
    }
    Ok(count.min((limit - pos) as usize))
}

/// Writes guest memory at `buf` to `f`. The caller has checked the range
/// with [`access_ok`].
fn write_from(
    t: &Task,
    f: &FileDescription,
    buf: u64,
    count: usize,
    offset: Option<u64>,
) -> SysResult {
    let r = write_from_file(t, f, buf, count, offset);
    notified(f, r, crate::vfs::inotify::IN_MODIFY)
}

fn write_from_file(
    t: &Task,
    f: &FileDescription,
    buf: u64,
    count: usize,
    offset: Option<u64>,
) -> SysResult {
    let count = count.min(MAX_RW_COUNT);
    if count == 0 && !f.imp.empty_io_reaches_file() {
        return Ok(0);
    }
    let count = fsize_allows(t, f, offset, count)?;
    if f.imp.direct_io() {
        // Straight from the guest's memory, without a sentry buffer.
        if let Some(r) = t.mm.with_guest_range(buf, count as u64, false, |mf, src| {
            f.imp.write_from_memory(f, mf, src, count, offset)
        }) {
            return r.map(|n| n as u64);
        }
    }
    let want = count.min(MAX_CHUNK);
    let mut data = vec![0u8; want];
    let n = t.mm.copy_in_partial(buf, &mut data);
    if n < want {
        return Ok(f.imp.write_short(f, &data[..n], count, offset)? as u64);
    }
    Ok(f.imp.write(f, &data, offset)? as u64)
}

/// Linux's rw_verify_area for an explicit position: the end must not pass
/// the largest offset.
pub(crate) fn check_pos(offset: i64, count: usize) -> Result<u64, Errno> {
    if offset.checked_add(count as i64).is_none_or(|e| e < 0) {
        return Err(Errno::EINVAL);
    }
    Ok(offset as u64)
}

/// Runs `op` on `f`, waiting for `events` while it would block (unless
/// the description is non-blocking or the file never blocks).
pub(crate) fn blocking(
    t: &mut Task,
    f: &Arc<FileDescription>,
    events: i16,
    mut op: impl FnMut(&mut Task) -> SysResult,
) -> SysResult {
    loop {
        match op(t) {
            Err(Errno::EAGAIN) if !f.nonblocking() && f.imp.waitq(f).is_some() => {
                t.wait_file(f, events, None)?;
            }
            r => return r,
        }
    }
}

/// Writes `count` bytes at guest `buf` to a blocking file that takes
/// them in pieces (a pipe): the call returns when all are written, or
/// with what was written when a signal interrupts it.
fn write_blocking(t: &mut Task, f: &Arc<FileDescription>, buf: u64, count: usize) -> SysResult {
    let count = count.min(MAX_RW_COUNT);
    let mut done = 0usize;
    loop {
        match write_from(t, f, buf + done as u64, count - done, None) {
            Ok(n) => {
                done += n as usize;
                if done >= count
                    || f.nonblocking()
                    || f.imp.waitq(f).is_none()
                    || n == 0
                    || f.imp.writes_once()
                {
                    return Ok(done as u64);
                }
            }
            Err(Errno::EAGAIN) if !f.nonblocking() && f.imp.waitq(f).is_some() => {}
            Err(e) if done > 0 && e != Errno::EPIPE => return Ok(done as u64),
            Err(e) => return if done > 0 { Ok(done as u64) } else { Err(e) },
        }
        if let Err(e) = t.wait_file(f, libc::POLLOUT, None) {
            return if done > 0 { Ok(done as u64) } else { Err(e) };
        }
    }
}

/// A read of a file that does its own waiting ([`crate::vfs::TaskIo`]):
/// into a buffer as large as the writable part of `iovs` (EFAULT when
/// none is), then out to them.
fn task_read(t: &mut Task, f: &Arc<FileDescription>, iovs: &[(u64, usize)]) -> SysResult {
    let total: usize = iovs.iter().map(|v| v.1).sum::<usize>().min(MAX_CHUNK);
    if total == 0 {
        return Ok(0);
    }
    let mut room = 0usize;
    for &(base, len) in iovs {
        let w = t.mm.writable_len(base, len as u64) as usize;
        room += w;
        if w < len {
            break;
        }
    }
    let room = room.min(total);
    if room == 0 {
        return Err(Errno::EFAULT);
    }
    let io = f.imp.task_io().ok_or(Errno::EINVAL)?;
    let mut data = vec![0u8; room];
    let n = io.read(f, t, &mut data)?;
    let mut pos = 0;
    for &(base, len) in iovs {
        if pos >= n {
            break;
        }
        let k = len.min(n - pos);
        t.mm.copy_out(base, &data[pos..pos + k])?;
        pos += k;
    }
    Ok(n as u64)
}

/// A write to a file that does its own waiting: the readable part of
/// `iovs` (EFAULT when none is).
fn task_write(t: &mut Task, f: &Arc<FileDescription>, iovs: &[(u64, usize)]) -> SysResult {
    let total: usize = iovs.iter().map(|v| v.1).sum::<usize>().min(MAX_CHUNK);
    if total == 0 {
        return Ok(0);
    }
    let mut data = Vec::with_capacity(total);
    for &(base, len) in iovs {
        let want = len.min(total - data.len());
        let start = data.len();
        data.resize(start + want, 0);
        let n = t.mm.copy_in_partial(base, &mut data[start..]);
        data.truncate(start + n);
        if n < want || data.len() >= total {
            break;
        }
    }
    if data.is_empty() {
        return Err(Errno::EFAULT);
    }
    let io = f.imp.task_io().ok_or(Errno::EINVAL)?;
    Ok(io.write(f, t, &data)? as u64)
}

pub fn read(t: &mut Task, fd: Fd, buf: OutBuf, count: usize) -> SysResult {
    let f = readable_file(t, fd)?;
    if !access_ok(buf.0, count as u64) {
        return Err(Errno::EFAULT);
    }
    if f.imp.task_io().is_some() {
        return task_read(t, &f, &[(buf.0, count.min(MAX_RW_COUNT))]);
    }
    if let Some(s) = f.imp.socket() {
        return super::socket::read(t, &f, &s, vec![(buf.0, count.min(MAX_RW_COUNT))]);
    }
    blocking(t, &f, libc::POLLIN, |t| {
        read_into(t, &f, buf.0, count, None)
    })
}

pub fn write(t: &mut Task, fd: Fd, buf: InBuf, count: usize) -> SysResult {
    let f = writable_file(t, fd)?;
    if !access_ok(buf.0, count as u64) {
        return Err(Errno::EFAULT);
    }
    if f.imp.task_io().is_some() {
        return task_write(t, &f, &[(buf.0, count.min(MAX_RW_COUNT))]);
    }
    if let Some(s) = f.imp.socket() {
        return super::socket::write(t, &f, &s, vec![(buf.0, count.min(MAX_RW_COUNT))]);
    }
    write_blocking(t, &f, buf.0, count)
}

/// The checks pread64 and pwrite64 share, in Linux's order: the file and
/// the position for `count` bytes at `offset` from `buf`.
fn positional(
    t: &Task,
    fd: Fd,
    buf: u64,
    count: usize,
    offset: i64,
    write: bool,
) -> Result<(Arc<FileDescription>, u64), Errno> {
    if offset < 0 {
        return Err(Errno::EINVAL);
    }
    let f = t.fds.get(fd.0)?;
    if !f.imp.positional(&f) {
        return Err(Errno::ESPIPE);
    }
    if !(if write { f.writable() } else { f.readable() }) {
        return Err(Errno::EBADF);
    }
    if !access_ok(buf, count as u64) {
        return Err(Errno::EFAULT);
    }
    Ok((f, check_pos(offset, count)?))
}

pub fn pread64(t: &mut Task, fd: Fd, buf: OutBuf, count: usize, offset: i64) -> SysResult {
    let (f, pos) = positional(t, fd, buf.0, count, offset, false)?;
    read_into(t, &f, buf.0, count, Some(pos))
}

pub fn pwrite64(t: &mut Task, fd: Fd, buf: InBuf, count: usize, offset: i64) -> SysResult {
    let (f, pos) = positional(t, fd, buf.0, count, offset, true)?;
    write_from(t, &f, buf.0, count, Some(pos))
}

/// Reads and checks an iovec array as Linux's import_iovec does: every
/// length must fit `ssize_t` (EINVAL), every segment must lie in the user
/// address space (EFAULT), and the total is cut to MAX_RW_COUNT. A single
/// segment is cut before it is checked, several after.
pub(crate) fn read_iovecs(t: &Task, iov: u64, cnt: i32) -> Result<Vec<(u64, usize)>, Errno> {
    if !(0..=UIO_MAXIOV).contains(&cnt) {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; cnt as usize * 16];
    t.mm.copy_in(iov, &mut raw)?;
    let mut out = Vec::with_capacity(cnt as usize);
    for seg in raw.chunks_exact(16) {
        let base = u64::from_le_bytes(seg[..8].try_into().unwrap());
        let len = u64::from_le_bytes(seg[8..].try_into().unwrap());
        if len > isize::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        out.push((base, len as usize));
    }
    if let [(base, len)] = out.as_mut_slice() {
        *len = (*len).min(MAX_RW_COUNT);
        if !access_ok(*base, *len as u64) {
            return Err(Errno::EFAULT);
        }
        return Ok(out);
    }
    let mut total = 0usize;
    for (base, len) in out.iter_mut() {
        if !access_ok(*base, *len as u64) {
            return Err(Errno::EFAULT);
        }
        *len = (*len).min(MAX_RW_COUNT - total);
        total += *len;
    }
    Ok(out)
}

pub(crate) fn readv_into(
    t: &Task,
    f: &FileDescription,
    iovs: &[(u64, usize)],
    offset: Option<u64>,
) -> SysResult {
    let r = readv_into_file(t, f, iovs, offset);
    notified(f, r, crate::vfs::inotify::IN_ACCESS)
}

fn readv_into_file(
    t: &Task,
    f: &FileDescription,
    iovs: &[(u64, usize)],
    offset: Option<u64>,
) -> SysResult {
    let total: usize = iovs.iter().map(|v| v.1).sum();
    if total == 0 {
        return Ok(0);
    }
    // How much of the vector is writable, stopping at the first fault.
    let mut room = 0usize;
    let mut faulted = false;
    for &(base, len) in iovs {
        let w = t.mm.writable_len(base, len as u64) as usize;
        room += w;
        if w < len {
            faulted = true;
            break;
        }
        if room >= MAX_CHUNK {
            break;
        }
    }
    let faulted = faulted && room < MAX_CHUNK;
    let mut data = vec![0u8; room.min(MAX_CHUNK)];
    let n = if faulted {
        f.imp.read_short(f, &mut data, total, offset)?
    } else {
        f.imp.read(f, &mut data, offset)?
    };
    let mut pos = 0;
    for &(base, len) in iovs {
        if pos >= n {
            break;
        }
        let k = len.min(n - pos);
        t.mm.copy_out(base, &data[pos..pos + k])?;
        pos += k;
    }
    Ok(n as u64)
}

pub(crate) fn writev_from(
    t: &Task,
    f: &FileDescription,
    iovs: &[(u64, usize)],
    offset: Option<u64>,
) -> SysResult {
    let r = writev_from_file(t, f, iovs, offset);
    notified(f, r, crate::vfs::inotify::IN_MODIFY)
}

fn writev_from_file(
    t: &Task,
    f: &FileDescription,
    iovs: &[(u64, usize)],
    offset: Option<u64>,
) -> SysResult {
    let total: usize = iovs.iter().map(|v| v.1).sum();
    if total == 0 {
        return Ok(0);
    }
    let mut data = Vec::new();
    let mut faulted = false;
    for &(base, len) in iovs {
        let want = len.min(MAX_CHUNK.saturating_sub(data.len()));
        let start = data.len();
        data.resize(start + want, 0);
        let n = t.mm.copy_in_partial(base, &mut data[start..]);
        data.truncate(start + n);
        if n < want {
            faulted = true;
            break;
        }
        if data.len() >= MAX_CHUNK {
            break;
        }
    }
    if faulted {
        return Ok(f.imp.write_short(f, &data, total, offset)? as u64);
    }
    Ok(f.imp.write(f, &data, offset)? as u64)
}

pub fn readv(t: &mut Task, fd: Fd, iov: UserAddr, cnt: i32) -> SysResult {
    let f = readable_file(t, fd)?;
    let iovs = read_iovecs(t, iov.0, cnt)?;
    if f.imp.task_io().is_some() {
        return task_read(t, &f, &iovs);
    }
    if let Some(s) = f.imp.socket() {
        return super::socket::read(t, &f, &s, iovs);
    }
    blocking(t, &f, libc::POLLIN, |t| readv_into(t, &f, &iovs, None))
}

pub fn writev(t: &mut Task, fd: Fd, iov: UserAddr, cnt: i32) -> SysResult {
    let f = writable_file(t, fd)?;
    let iovs = read_iovecs(t, iov.0, cnt)?;
    if f.imp.task_io().is_some() {
        return task_write(t, &f, &iovs);
    }
    if let Some(s) = f.imp.socket() {
        return super::socket::write(t, &f, &s, iovs);
    }
    blocking(t, &f, libc::POLLOUT, |t| writev_from(t, &f, &iovs, None))
}

pub fn close(t: &mut Task, fd: Fd) -> SysResult {
    let f = t.fds.remove(fd.0)?;
    crate::fsimpl::mqueue::flushed(&f, t.tg.tgid);
    Ok(0)
}

pub fn dup(t: &mut Task, fd: Fd) -> SysResult {
    let f = t.fds.get(fd.0)?;
    let limit = nofile_limit(t);
    t.fds
        .install(f, false, 0, limit)
        .map(|n| n as u64)
        .map_err(|e| if e == Errno::EINVAL { Errno::EMFILE } else { e })
}

pub fn dup2(t: &mut Task, old: Fd, new: Fd) -> SysResult {
    let f = t.fds.get(old.0)?;
    if old == new {
        return Ok(new.0 as u64);
    }
    let limit = nofile_limit(t);
    t.fds.install_at(new.0, f, false, limit)?;
    Ok(new.0 as u64)
}

pub fn dup3(t: &mut Task, old: Fd, new: Fd, flags: Hex) -> SysResult {
    if flags.0 & !(libc::O_CLOEXEC as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    if old == new {
        return Err(Errno::EINVAL);
    }
    let f = t.fds.get(old.0)?;
    let limit = nofile_limit(t);
    t.fds.install_at(new.0, f, flags.0 != 0, limit)?;
    Ok(new.0 as u64)
}

/// fcntl commands the sentry does not know (none of Linux's it has).
const FCNTL_UNKNOWN: Unsupported = Unsupported {
    syscall: "fcntl",
    argument: "command",
    answer: Errno::EINVAL,
};
/// Leases and directory notification (F_GETLEASE, F_SETLEASE, F_NOTIFY).
const FCNTL_UNIMPLEMENTED: Unsupported = Unsupported {
    syscall: "fcntl",
    argument: "command",
    answer: Errno::ENOSYS,
};

pub fn fcntl(t: &mut Task, fd: Fd, cmd: i32, arg: Hex) -> SysResult {
    let f = t.fds.get(fd.0)?;
    // An O_PATH file only names a place: just the fd-level commands work.
    if f.flags() & libc::O_PATH as u32 != 0
        && !matches!(
            cmd,
            libc::F_DUPFD | libc::F_DUPFD_CLOEXEC | libc::F_GETFD | libc::F_SETFD | libc::F_GETFL
        )
    {
        return Err(Errno::EBADF);
    }
    match cmd {
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let min = arg.0 as i32;
            let limit = nofile_limit(t);
            if min < 0 || min as u64 >= limit {
                return Err(Errno::EINVAL);
            }
            Ok(t.fds.install(f, cmd == libc::F_DUPFD_CLOEXEC, min, limit)? as u64)
        }
        libc::F_GETFD => Ok(if t.fds.cloexec(fd.0)? {
            libc::FD_CLOEXEC as u64
        } else {
            0
        }),
        libc::F_SETFD => {
            t.fds
                .set_cloexec(fd.0, arg.0 & libc::FD_CLOEXEC as u64 != 0)?;
            Ok(0)
        }
        libc::F_GETFL => Ok(f.flags() as u64),
        libc::F_SETFL => {
            f.set_status_flags(arg.0 as u32);
            Ok(0)
        }
        libc::F_GETLK
        | libc::F_SETLK
        | libc::F_SETLKW
        | libc::F_OFD_GETLK
        | libc::F_OFD_SETLK
        | libc::F_OFD_SETLKW => super::lock::fcntl_lock(t, &f, cmd, arg.0),
        libc::F_ADD_SEALS | libc::F_GET_SEALS => super::memfd::fcntl_seals(t, &f, cmd, arg.0),
        libc::F_GETOWN => {
            let (kind, pid) = *f.owner.lock().unwrap();
            Ok(if kind == crate::vfs::F_OWNER_PGRP {
                -pid
            } else {
                pid
            } as i64 as u64)
        }
        libc::F_SETOWN => {
            let who = arg.0 as i32;
            let (kind, pid) = if who < 0 {
                (crate::vfs::F_OWNER_PGRP, who.wrapping_neg())
            } else {
                (crate::vfs::F_OWNER_PID, who)
            };
            set_owner(t, &f, kind, pid)
        }
        F_GETOWN_EX => {
            let (kind, pid) = *f.owner.lock().unwrap();
            t.mm.write_obj(arg.0, &[kind as u32 as u64 | ((pid as u32 as u64) << 32)])?;
            Ok(0)
        }
        F_SETOWN_EX => {
            let v: u64 = t.mm.read_obj(arg.0)?;
            let (kind, pid) = (v as u32 as i32, (v >> 32) as u32 as i32);
            if !(crate::vfs::F_OWNER_TID..=crate::vfs::F_OWNER_PGRP).contains(&kind) {
                return Err(Errno::EINVAL);
            }
            set_owner(t, &f, kind, pid)
        }
        F_GETSIG => Ok(f.signal.load(std::sync::atomic::Ordering::Relaxed) as u64),
        F_SETSIG => {
            let sig = arg.0 as i64;
            if !(0..=64).contains(&sig) {
                return Err(Errno::EINVAL);
            }
            f.signal
                .store(sig as i32, std::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        libc::F_GETPIPE_SZ => f.imp.pipe_size().map(|n| n as u64).ok_or(Errno::EBADF),
        libc::F_SETPIPE_SZ => {
            let privileged = t.creds.has_cap(crate::kernel::creds::CAP_SYS_RESOURCE);
            let size = arg.0 as u32 as usize;
            Ok(f.imp.set_pipe_size(size, privileged)? as u64)
        }
        libc::F_GETLEASE => FCNTL_UNIMPLEMENTED.answer(t, "F_GETLEASE"),
        libc::F_SETLEASE => FCNTL_UNIMPLEMENTED.answer(t, "F_SETLEASE"),
        libc::F_NOTIFY => FCNTL_UNIMPLEMENTED.answer(t, "F_NOTIFY"),
        _ => FCNTL_UNKNOWN.answer(t, cmd),
    }
}

/// F_SETOWN and F_SETOWN_EX: the owner must exist (0 clears it). The
/// sandbox's one process is pid 1, in process group 1.
fn set_owner(t: &Task, f: &FileDescription, kind: i32, pid: i32) -> SysResult {
    if pid != 0 && pid != t.tg.tgid && pid != t.tid {
        return Err(Errno::ESRCH);
    }
    *f.owner.lock().unwrap() = (kind, pid);
    Ok(0)
}

fn copy_out_stat(t: &Task, addr: u64, st: &libc::stat) -> SysResult {
    t.mm.copy_out(addr, as_bytes(st))?;
    Ok(0)
}

pub fn fstat(t: &mut Task, fd: Fd, statbuf: UserAddr) -> SysResult {
    let f = t.fds.get(fd.0)?;
    let st = f.stat()?;
    copy_out_stat(t, statbuf.0, &st)
}

/// ioctl requests the file's kind does not take. Terminal requests (type
/// 'T') on files that are not terminals are left out: Linux answers them
/// ENOTTY as well, and every `isatty` makes one.
const IOCTL_UNKNOWN: Unsupported = Unsupported {
    syscall: "ioctl",
    argument: "request",
    answer: Errno::ENOTTY,
};

pub fn ioctl(t: &mut Task, fd: Fd, request: Hex, arg: Hex) -> SysResult {
    let f = t.fds.get(fd.0)?;
    let req = request.0 as u32;
    match req as u64 {
        libc::FIONBIO => {
            let v: i32 = t.mm.read_obj(arg.0)?;
            let flags = f.flags();
            let nb = libc::O_NONBLOCK as u32;
            f.set_status_flags(if v != 0 { flags | nb } else { flags & !nb });
            Ok(0)
        }
        libc::FIOASYNC => {
            let v: i32 = t.mm.read_obj(arg.0)?;
            let flags = f.flags();
            let on = libc::O_ASYNC as u32;
            let want = if v != 0 { on } else { 0 };
            if (flags ^ want) & on != 0 {
                // Only files with asynchronous notification take it.
                if !f.imp.supports_async() {
                    return Err(Errno::ENOTTY);
                }
                f.set_status_flags((flags & !on) | want);
            }
            Ok(0)
        }
        libc::FIOCLEX => {
            t.fds.set_cloexec(fd.0, true)?;
            Ok(0)
        }
        libc::FIONCLEX => {
            t.fds.set_cloexec(fd.0, false)?;
            Ok(0)
        }
        _ => {
            let r = f.imp.ioctl(&f, t, req, arg.0);
            if r == Err(Errno::ENOTTY) {
                tracing::debug!("ioctl {req:#x} on {} answered ENOTTY", f.imp.name());
                if (req >> 8) & 0xff != u32::from(b'T') {
                    IOCTL_UNKNOWN.note(t, format_args!("{req:#x} on {}", file_kind(&f)));
                }
            }
            r
        }
    }
}

/// What kind of file a description is, for the report: its name without
/// what varies (an inode number, a path).
fn file_kind(f: &FileDescription) -> String {
    let name = f.imp.name();
    match name.split_once(':') {
        Some((kind, _)) if !kind.is_empty() && !kind.contains('/') => kind.to_string(),
        _ if name.starts_with("/dev/") => name,
        _ if name.starts_with('/') => "a file".to_string(),
        _ => name,
    }
}

pub fn lseek(t: &mut Task, fd: Fd, offset: i64, whence: i32) -> SysResult {
    let f = t.fds.get(fd.0)?;
    if !(libc::SEEK_SET..=libc::SEEK_HOLE).contains(&whence) {
        return Err(Errno::EINVAL);
    }
    f.imp.seek(&f, offset, whence)
}

fn do_poll(t: &mut Task, addr: u64, nfds: u32, timeout: Option<Duration>) -> SysResult {
    if nfds as u64 > nofile_limit(t) {
        return Err(Errno::EINVAL);
    }
    let size = std::mem::size_of::<libc::pollfd>();
    let mut raw = vec![0u8; nfds as usize * size];
    t.mm.copy_in(addr, &mut raw)?;
    let mut pfds: Vec<libc::pollfd> = raw.chunks(size).map(from_bytes).collect();
    let files: Vec<Option<Arc<FileDescription>>> = pfds
        .iter()
        .map(|p| if p.fd < 0 { None } else { t.fds.get(p.fd).ok() })
        .collect();
    let deadline = timeout.map(|d| {
        Instant::now()
            .checked_add(d)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86400))
    });
    let always = libc::POLLERR | libc::POLLHUP | libc::POLLNVAL;
    // Every file that can change registers the task's waiter, so any
    // change wakes the poll; nothing is polled by timed retries.
    let queues: Vec<Arc<crate::kernel::waiter::WaitQueue>> = files
        .iter()
        .flatten()
        .filter_map(|f| f.imp.waitq(f))
        .collect();
    let qrefs: Vec<(&crate::kernel::waiter::WaitQueue, u32)> = queues
        .iter()
        .map(|q| (&**q, crate::kernel::waiter::ALL_EVENTS))
        .collect();
    let r = t.block_on(&qrefs, deadline, |_| {
        let mut ready = 0u64;
        for (p, f) in pfds.iter_mut().zip(&files) {
            p.revents = if p.fd < 0 {
                0
            } else {
                match f {
                    None => libc::POLLNVAL,
                    Some(f) => f.imp.readiness(f, p.events) & (p.events | always),
                }
            };
            if p.revents != 0 {
                ready += 1;
            }
        }
        (ready > 0 || timeout.is_some_and(|d| d.is_zero())).then_some(Ok(ready))
    });
    let ready = match r {
        Ok(n) => n,
        Err(Errno::ETIMEDOUT) => {
            for p in pfds.iter_mut() {
                p.revents = 0;
            }
            0
        }
        // poll is never restarted after a handler (Linux's
        // ERESTARTNOHAND): EINTR then.
        Err(Errno::ERESTARTSYS) => return Err(Errno::ERESTARTNOHAND),
        Err(e) => return Err(e),
    };
    let mut out = Vec::with_capacity(raw.len());
    for p in &pfds {
        out.extend_from_slice(as_bytes(p));
    }
    t.mm.copy_out(addr, &out)?;
    Ok(ready)
}

pub fn poll(t: &mut Task, fds: UserAddr, nfds: u32, timeout_ms: i32) -> SysResult {
    let timeout = if timeout_ms < 0 {
        None
    } else {
        Some(Duration::from_millis(timeout_ms as u64))
    };
    do_poll(t, fds.0, nfds, timeout)
}

pub fn ppoll(
    t: &mut Task,
    fds: UserAddr,
    nfds: u32,
    ts: UserAddr,
    sigmask: UserAddr,
    sigsetsize: usize,
) -> SysResult {
    let timeout = if ts.0 == 0 {
        None
    } else {
        let v: libc::timespec = t.mm.read_obj(ts.0)?;
        Some(super::time::timespec_to_duration(&v)?)
    };
    if sigmask.0 != 0 {
        if sigsetsize != 8 {
            return Err(Errno::EINVAL);
        }
        // The mask applies while waiting, and comes back when the call
        // returns (after a handler, if one runs).
        let m: u64 = t.mm.read_obj(sigmask.0)?;
        t.set_temporary_mask(m);
    }
    let deadline = timeout
        .filter(|d| !d.is_zero())
        .map(|d| Instant::now().checked_add(d).unwrap_or_else(far_future));
    let r = do_poll(t, fds.0, nfds, timeout);
    select_finish(t, r, deadline, |t, left| {
        let v = libc::timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        t.mm.write_obj(ts.0, &v)
    })
}

/// The poll bits that make a descriptor readable, writable or
/// exceptional for select (Linux's POLLIN_SET, POLLOUT_SET, POLLEX_SET).
const POLLIN_SET: i16 =
    libc::POLLRDNORM | libc::POLLRDBAND | libc::POLLIN | libc::POLLHUP | libc::POLLERR;
const POLLOUT_SET: i16 = libc::POLLWRBAND | libc::POLLWRNORM | libc::POLLOUT | libc::POLLERR;
const POLLEX_SET: i16 = libc::POLLPRI;

/// Linux's `fdt->max_fds` for a table whose highest fd ever was
/// `len - 1`: 64 to begin with, then 128 times a power of two.
fn fd_table_size(len: usize) -> usize {
    if len <= 64 {
        return 64;
    }
    128 * ((len - 1) / 128 + 1).next_power_of_two()
}

/// Reads a select set of `words` longs (zeros for a null pointer).
fn read_fd_set(t: &Task, addr: u64, words: usize) -> Result<Vec<u64>, Errno> {
    let mut raw = vec![0u8; words * 8];
    if addr != 0 {
        t.mm.copy_in(addr, &mut raw)?;
    }
    Ok(raw
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect())
}

/// Linux's `core_sys_select`: waits until a descriptor in one of the
/// sets is ready, `timeout` passes or a signal comes (ERESTARTNOHAND),
/// and writes the ready sets back (whole longs, as Linux does).
fn do_select(t: &mut Task, nfds: i32, sets: [u64; 3], timeout: Option<Duration>) -> SysResult {
    if nfds < 0 {
        return Err(Errno::EINVAL);
    }
    // Linux clamps nfds to the size of the fd table, not the limit.
    let n = (nfds as usize).min(fd_table_size(t.fds.table_len()));
    let words = n.div_ceil(64);
    let mut want = [
        read_fd_set(t, sets[0], words)?,
        read_fd_set(t, sets[1], words)?,
        read_fd_set(t, sets[2], words)?,
    ];
    // Every descriptor named must be open (EBADF before any wait).
    let mut files: Vec<(usize, Arc<FileDescription>)> = Vec::new();
    for fd in 0..n {
        let (w, bit) = (fd / 64, 1u64 << (fd % 64));
        if (want[0][w] | want[1][w] | want[2][w]) & bit != 0 {
            files.push((fd, t.fds.get(fd as i32)?));
        }
    }
    let deadline = timeout.map(|d| {
        Instant::now()
            .checked_add(d)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86400))
    });
    let queues: Vec<Arc<crate::kernel::waiter::WaitQueue>> =
        files.iter().filter_map(|(_, f)| f.imp.waitq(f)).collect();
    let qrefs: Vec<(&crate::kernel::waiter::WaitQueue, u32)> = queues
        .iter()
        .map(|q| (&**q, crate::kernel::waiter::ALL_EVENTS))
        .collect();
    let mut got = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    let r = t.block_on(&qrefs, deadline, |_| {
        let mut ready = 0u64;
        for g in got.iter_mut() {
            g.fill(0);
        }
        for (fd, f) in &files {
            let (w, bit) = (fd / 64, 1u64 << (fd % 64));
            let mask = f.imp.readiness(f, POLLIN_SET | POLLOUT_SET | POLLEX_SET);
            for (i, set) in [POLLIN_SET, POLLOUT_SET, POLLEX_SET].iter().enumerate() {
                if mask & set != 0 && want[i][w] & bit != 0 {
                    got[i][w] |= bit;
                    ready += 1;
                }
            }
        }
        (ready > 0 || timeout.is_some_and(|d| d.is_zero())).then_some(Ok(ready))
    });
    let ready = match r {
        Ok(n) => n,
        Err(Errno::ETIMEDOUT) => {
            for g in got.iter_mut() {
                g.fill(0);
            }
            0
        }
        // Never restarted after a handler; restarted without one (with
        // the time left, which the caller writes back).
        Err(Errno::ERESTARTSYS) => return Err(Errno::ERESTARTNOHAND),
        Err(e) => return Err(e),
    };
    for (i, g) in got.iter().enumerate() {
        want[i].copy_from_slice(g);
        if sets[i] != 0 {
            let bytes: Vec<u8> = want[i].iter().flat_map(|w| w.to_le_bytes()).collect();
            t.mm.copy_out(sets[i], &bytes).map_err(|_| Errno::EFAULT)?;
        }
    }
    Ok(ready)
}

/// Linux's `poll_select_finish`: the saved signal mask comes back now
/// unless a restart will deliver a signal; the time left is written back
/// (not for a zero timeout); a call that cannot be given its time left
/// is not restarted.
fn select_finish(
    t: &mut Task,
    r: SysResult,
    deadline: Option<Instant>,
    write: impl FnOnce(&Task, Duration) -> Result<(), Errno>,
) -> SysResult {
    if r != Err(Errno::ERESTARTNOHAND) {
        restore_saved_mask(t);
    }
    let Some(end) = deadline else {
        return r;
    };
    let left = end.saturating_duration_since(Instant::now());
    if write(t, left).is_err() && r == Err(Errno::ERESTARTNOHAND) {
        return Err(Errno::EINTR);
    }
    r
}

/// Puts back the mask a syscall replaced for its duration
/// ([`Task::set_temporary_mask`]) when it returns without a signal to
/// deliver in it.
fn restore_saved_mask(t: &mut Task) {
    let saved = t.shared.sig.lock().saved_mask.take();
    if let Some(m) = saved {
        t.set_signal_mask(m);
    }
}

pub fn select(
    t: &mut Task,
    nfds: i32,
    readfds: UserAddr,
    writefds: UserAddr,
    exceptfds: UserAddr,
    tv: UserAddr,
) -> SysResult {
    let mut timeout = None;
    let mut deadline = None;
    if tv.0 != 0 {
        let v: libc::timeval = t.mm.read_obj(tv.0)?;
        // Microseconds past a second carry into the seconds.
        let sec = v.tv_sec.wrapping_add(v.tv_usec / 1_000_000);
        let nsec = (v.tv_usec % 1_000_000) * 1000;
        let d = super::time::timespec_to_duration(&libc::timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        })?;
        timeout = Some(d);
        if !d.is_zero() {
            deadline = Some(Instant::now().checked_add(d).unwrap_or_else(far_future));
        }
    }
    let r = do_select(t, nfds, [readfds.0, writefds.0, exceptfds.0], timeout);
    select_finish(t, r, deadline, |t, left| {
        let v = libc::timeval {
            tv_sec: left.as_secs() as i64,
            tv_usec: left.subsec_micros() as i64,
        };
        t.mm.write_obj(tv.0, &v)
    })
}

pub fn pselect6(
    t: &mut Task,
    nfds: i32,
    readfds: UserAddr,
    writefds: UserAddr,
    exceptfds: UserAddr,
    ts: UserAddr,
    sig: UserAddr,
) -> SysResult {
    // The last argument points to {const sigset_t *ss; size_t ss_len}.
    let (ss, ss_len) = if sig.0 != 0 {
        let v: [u64; 2] = t.mm.read_obj(sig.0)?;
        (v[0], v[1])
    } else {
        (0, 0)
    };
    let mut timeout = None;
    let mut deadline = None;
    if ts.0 != 0 {
        let v: libc::timespec = t.mm.read_obj(ts.0)?;
        let d = super::time::timespec_to_duration(&v)?;
        timeout = Some(d);
        if !d.is_zero() {
            deadline = Some(Instant::now().checked_add(d).unwrap_or_else(far_future));
        }
    }
    if ss != 0 {
        if ss_len != 8 {
            return Err(Errno::EINVAL);
        }
        let m: u64 = t.mm.read_obj(ss)?;
        t.set_temporary_mask(m);
    }
    let r = do_select(t, nfds, [readfds.0, writefds.0, exceptfds.0], timeout);
    select_finish(t, r, deadline, |t, left| {
        let v = libc::timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        t.mm.write_obj(ts.0, &v)
    })
}

/// A deadline for timeouts too long to add to the clock.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 86400)
}
