//! File attributes: chmod, fchmod, fchmodat, fchmodat2, chown, fchown,
//! lchown, fchownat, utime, utimes, futimesat, utimensat, truncate,
//! ftruncate, fallocate, fsync, fdatasync, sync, syncfs.
//!
//! The checks follow Linux's `notify_change`/`setattr_prepare` and tmpfs's
//! `shmem_setattr`, in their order: a read-only mount (EROFS) first, then
//! the file's type, then ownership and capabilities (EPERM), then seals.

use crate::sync::LockExt;
use std::sync::Arc;

use crate::errno::Errno;
use crate::vfs::inotify;

use super::file::{lookup_at, read_path};
use super::{Fd, Hex, Mode, SysResult, UserAddr, UserPath};
use crate::fsimpl::tmpfs::{RegularFile, MAX_FILE_SIZE};
use crate::kernel::task::Task;
use crate::vfs::inode::{AttrChange, Change, Inode, Timespec};
use crate::vfs::mount::Location;
use crate::vfs::perm::{self, CAP_CHOWN, CAP_FSETID, MAY_WRITE};
use crate::vfs::FileDescription;

/// An fd as Linux's `fdget` sees it: O_PATH descriptions are not there
/// (EBADF) for calls that act on an open file.
pub(crate) fn get_file(t: &Task, fd: i32) -> Result<Arc<FileDescription>, Errno> {
    let f = t.fds.get(fd)?;
    if f.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

/// The tmpfs regular file behind an inode, if it is one.
pub(crate) fn tmpfs_file(inode: &Inode) -> Option<&RegularFile> {
    inode.ops.as_any().downcast_ref::<RegularFile>()
}

/// The file whose attributes change, and whether its mount is read-only.
struct Target {
    inode: Arc<Inode>,
    readonly: bool,
}

impl Target {
    fn of(loc: &Location) -> Target {
        Target {
            inode: loc.inode.clone(),
            readonly: loc.mount.readonly(),
        }
    }

    /// The file an fd refers to; None for files without an inode of ours
    /// (Linux's pipes and sockets have inodes whose attributes change
    /// unseen: the call succeeds).
    fn of_file(f: &FileDescription) -> Option<Target> {
        match &f.location {
            Some(l) if l.mount.fs.type_name != "anon_inodefs" => Some(Target::of(l)),
            _ => f.imp.inode().map(|inode| Target {
                inode,
                readonly: false,
            }),
        }
    }

    fn writable(&self) -> Result<(), Errno> {
        if self.readonly {
            return Err(Errno::EROFS);
        }
        Ok(())
    }
}

/// Linux's `in_group_or_capable`: may keep set-group-ID for group `gid`.
fn in_group_or_capable(t: &Task, gid: u32) -> bool {
    perm::in_group(&t.creds, gid) || t.creds.has_cap(CAP_FSETID)
}

/// Looks up the path argument of an `*at` call with AT_* `flags` (only
/// AT_SYMLINK_NOFOLLOW and AT_EMPTY_PATH allowed, else EINVAL).
fn path_target(t: &Task, dirfd: i32, path: u64, flags: u64, follow: bool) -> Result<Target, Errno> {
    let allowed = (libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) as u64;
    if flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    let follow = follow && flags & libc::AT_SYMLINK_NOFOLLOW as u64 == 0;
    let empty = flags & libc::AT_EMPTY_PATH as u64 != 0;
    let p = read_path(t, path)?;
    let loc = lookup_at(t, dirfd, &p, follow, empty)?;
    Ok(Target::of(&loc))
}

// ----- chmod -----

fn chmod_common(t: &Task, tg: &Target, mode: u32) -> SysResult {
    tg.writable()?;
    let inode = &tg.inode;
    let meta = inode.meta();
    if meta.is_symlink() {
        return Err(Errno::EOPNOTSUPP);
    }
    if !perm::is_owner(&t.creds, &meta) {
        return Err(Errno::EPERM);
    }
    inode.ops.settable()?;
    let mut new = (mode & 0o7777) | (meta.mode & libc::S_IFMT);
    if !in_group_or_capable(t, meta.gid) {
        new &= !libc::S_ISGID;
    }
    if let Some(rf) = tmpfs_file(inode) {
        if rf.seals() & libc::F_SEAL_EXEC as u32 != 0 && (meta.mode ^ new) & 0o111 != 0 {
            return Err(Errno::EPERM);
        }
    }
    inode.ops.prepare_change(t, inode, Change::Metadata)?;
    inode.ops.set_attr(
        inode,
        &AttrChange {
            mode: Some(new),
            ..Default::default()
        },
    )?;
    {
        let mut m = inode.meta.locked();
        m.mode = new;
        m.ctime = Timespec::now();
    }
    inode.ops.changed(inode);
    inotify::notify(inode, inotify::IN_ATTRIB);
    Ok(0)
}

pub fn chmod(t: &mut Task, path: UserPath, mode: Mode) -> SysResult {
    let tg = path_target(t, libc::AT_FDCWD, path.0, 0, true)?;
    chmod_common(t, &tg, mode.0)
}

pub fn fchmod(t: &mut Task, fd: Fd, mode: Mode) -> SysResult {
    let f = get_file(t, fd.0)?;
    match Target::of_file(&f) {
        Some(tg) => chmod_common(t, &tg, mode.0),
        None => Ok(0),
    }
}

pub fn fchmodat(t: &mut Task, dirfd: Fd, path: UserPath, mode: Mode) -> SysResult {
    let tg = path_target(t, dirfd.0, path.0, 0, true)?;
    chmod_common(t, &tg, mode.0)
}

pub fn fchmodat2(t: &mut Task, dirfd: Fd, path: UserPath, mode: Mode, flags: Hex) -> SysResult {
    let tg = path_target(t, dirfd.0, path.0, flags.0, true)?;
    chmod_common(t, &tg, mode.0)
}

// ----- chown -----

fn chown_common(t: &Task, tg: &Target, uid: u32, gid: u32) -> SysResult {
    tg.writable()?;
    let inode = &tg.inode;
    let meta = inode.meta();
    let set_uid = uid != u32::MAX;
    let set_gid = gid != u32::MAX;
    // Changing the owner of anything but a directory drops set-user-ID,
    // and set-group-ID when it means mandatory locking is off (group
    // execute) or the caller could not have set it.
    let mut new_mode = None;
    if !meta.is_dir() {
        let mut mode = meta.mode;
        if mode & libc::S_ISUID != 0 {
            mode &= !libc::S_ISUID;
            new_mode = Some(mode);
        }
        let drop_sgid = mode & libc::S_ISGID != 0
            && (mode & libc::S_IXGRP != 0 || !in_group_or_capable(t, meta.gid));
        if drop_sgid {
            mode &= !libc::S_ISGID;
            new_mode = Some(mode);
        }
    }
    inode.ops.settable()?;
    let creds = &t.creds;
    let is_owner = creds.fsuid == meta.uid;
    let may_chown = creds.has_cap(CAP_CHOWN);
    if set_uid && !(is_owner && uid == meta.uid || may_chown) {
        return Err(Errno::EPERM);
    }
    if set_gid && !(is_owner && (gid == meta.gid || perm::in_group(creds, gid)) || may_chown) {
        return Err(Errno::EPERM);
    }
    let new_gid = if set_gid { gid } else { meta.gid };
    if let Some(mode) = new_mode.as_mut() {
        if !perm::is_owner(creds, &meta) {
            return Err(Errno::EPERM);
        }
        if !in_group_or_capable(t, new_gid) {
            *mode &= !libc::S_ISGID;
        }
    }
    inode.ops.prepare_change(t, inode, Change::Metadata)?;
    inode.ops.set_attr(
        inode,
        &AttrChange {
            mode: new_mode,
            uid: set_uid.then_some(uid),
            gid: set_gid.then_some(gid),
            ..Default::default()
        },
    )?;
    {
        let mut m = inode.meta.locked();
        if set_uid {
            m.uid = uid;
        }
        if set_gid {
            m.gid = gid;
        }
        if let Some(mode) = new_mode {
            m.mode = mode;
        }
        m.ctime = Timespec::now();
    }
    inode.ops.changed(inode);
    if set_uid || set_gid {
        inotify::notify(inode, inotify::IN_ATTRIB);
    }
    Ok(0)
}

pub fn chown(t: &mut Task, path: UserPath, uid: u32, gid: u32) -> SysResult {
    let tg = path_target(t, libc::AT_FDCWD, path.0, 0, true)?;
    chown_common(t, &tg, uid, gid)
}

pub fn lchown(t: &mut Task, path: UserPath, uid: u32, gid: u32) -> SysResult {
    let tg = path_target(t, libc::AT_FDCWD, path.0, 0, false)?;
    chown_common(t, &tg, uid, gid)
}

pub fn fchown(t: &mut Task, fd: Fd, uid: u32, gid: u32) -> SysResult {
    let f = get_file(t, fd.0)?;
    match Target::of_file(&f) {
        Some(tg) => chown_common(t, &tg, uid, gid),
        None => Ok(0),
    }
}

pub fn fchownat(
    t: &mut Task,
    dirfd: Fd,
    path: UserPath,
    uid: u32,
    gid: u32,
    flags: Hex,
) -> SysResult {
    let tg = path_target(t, dirfd.0, path.0, flags.0, true)?;
    chown_common(t, &tg, uid, gid)
}

// ----- Times -----

/// One of the two times a utimes call sets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetTime {
    Now,
    Omit,
    At(Timespec),
}

impl SetTime {
    fn from_timespec(ts: &libc::timespec) -> Result<SetTime, Errno> {
        match ts.tv_nsec {
            libc::UTIME_NOW => Ok(SetTime::Now),
            libc::UTIME_OMIT => Ok(SetTime::Omit),
            0..=999_999_999 => Ok(SetTime::At(Timespec {
                sec: ts.tv_sec,
                nsec: ts.tv_nsec,
            })),
            _ => Err(Errno::EINVAL),
        }
    }
}

/// Linux's `vfs_utimes`: `times` None (or both UTIME_NOW) sets both to
/// now, which write permission allows; explicit times need ownership.
fn utimes_common(t: &Task, tg: &Target, times: Option<[SetTime; 2]>) -> SysResult {
    let times = times.filter(|ts| *ts != [SetTime::Now, SetTime::Now]);
    tg.writable()?;
    let inode = &tg.inode;
    let meta = inode.meta();
    let owner = perm::is_owner(&t.creds, &meta);
    match times {
        None => {
            if !owner {
                perm::check(&t.creds, &meta, MAY_WRITE)?;
            }
        }
        Some(_) => {
            if !owner {
                return Err(Errno::EPERM);
            }
        }
    }
    inode.ops.settable()?;
    let [a, m] = times.unwrap_or([SetTime::Now, SetTime::Now]);
    inode.ops.prepare_change(t, inode, Change::Metadata)?;
    let now = Timespec::now();
    let at = |s: SetTime| match s {
        SetTime::Now => Some(now),
        SetTime::At(ts) => Some(ts),
        SetTime::Omit => None,
    };
    inode.ops.set_attr(
        inode,
        &AttrChange {
            atime: at(a),
            mtime: at(m),
            ..Default::default()
        },
    )?;
    {
        let mut md = inode.meta.locked();
        match a {
            SetTime::Now => md.atime = now,
            SetTime::At(ts) => md.atime = ts,
            SetTime::Omit => {}
        }
        match m {
            SetTime::Now => md.mtime = now,
            SetTime::At(ts) => md.mtime = ts,
            SetTime::Omit => {}
        }
        md.ctime = now;
    }
    inode.ops.changed(inode);
    // Linux's fsnotify_change: both times are IN_ATTRIB, one alone
    // IN_ACCESS or IN_MODIFY.
    match (a != SetTime::Omit, m != SetTime::Omit) {
        (true, true) => inotify::notify(inode, inotify::IN_ATTRIB),
        (true, false) => inotify::notify(inode, inotify::IN_ACCESS),
        (false, true) => inotify::notify(inode, inotify::IN_MODIFY),
        (false, false) => {}
    }
    Ok(0)
}

/// `do_utimes`: a NULL path with a real dirfd names the fd itself (which
/// takes no flags); anything else is a path lookup.
fn do_utimes(
    t: &Task,
    dirfd: i32,
    path: u64,
    times: Option<[SetTime; 2]>,
    flags: u64,
) -> SysResult {
    if path == 0 && dirfd != libc::AT_FDCWD {
        if flags != 0 {
            return Err(Errno::EINVAL);
        }
        let f = get_file(t, dirfd)?;
        return match Target::of_file(&f) {
            Some(tg) => utimes_common(t, &tg, times),
            None => Ok(0),
        };
    }
    let tg = path_target(t, dirfd, path, flags, true)?;
    utimes_common(t, &tg, times)
}

pub fn utimensat(
    t: &mut Task,
    dirfd: Fd,
    path: UserPath,
    times: UserAddr,
    flags: Hex,
) -> SysResult {
    let ts = if times.0 == 0 {
        None
    } else {
        let a: libc::timespec = t.mm.read_obj(times.0)?;
        let m: libc::timespec = t.mm.read_obj(times.0 + 16)?;
        // Both omitted: nothing to do, not even the lookup.
        if a.tv_nsec == libc::UTIME_OMIT && m.tv_nsec == libc::UTIME_OMIT {
            return Ok(0);
        }
        Some([SetTime::from_timespec(&a), SetTime::from_timespec(&m)])
    };
    // Bad nanoseconds are found after the lookup, in vfs_utimes.
    let valid = match ts {
        None => None,
        Some([Ok(a), Ok(m)]) => Some(Ok([a, m])),
        Some(_) => Some(Err(Errno::EINVAL)),
    };
    match valid {
        Some(Err(e)) => {
            // Still resolve what the call names, for its errors first.
            if path.0 == 0 && dirfd.0 != libc::AT_FDCWD {
                if flags.0 != 0 {
                    return Err(Errno::EINVAL);
                }
                get_file(t, dirfd.0)?;
            } else {
                path_target(t, dirfd.0, path.0, flags.0, true)?;
            }
            Err(e)
        }
        Some(Ok(ts)) => do_utimes(t, dirfd.0, path.0, Some(ts), flags.0),
        None => do_utimes(t, dirfd.0, path.0, None, flags.0),
    }
}

/// Reads the two `struct timeval`s of utimes/futimesat.
fn read_timevals(t: &Task, addr: u64) -> Result<Option<[SetTime; 2]>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let a: libc::timeval = t.mm.read_obj(addr)?;
    let m: libc::timeval = t.mm.read_obj(addr + 16)?;
    let mut out = [SetTime::Now; 2];
    for (o, tv) in out.iter_mut().zip([a, m]) {
        if !(0..1_000_000).contains(&tv.tv_usec) {
            return Err(Errno::EINVAL);
        }
        *o = SetTime::At(Timespec {
            sec: tv.tv_sec,
            nsec: tv.tv_usec * 1000,
        });
    }
    Ok(Some(out))
}

pub fn utimes(t: &mut Task, path: UserPath, times: UserAddr) -> SysResult {
    let ts = read_timevals(t, times.0)?;
    do_utimes(t, libc::AT_FDCWD, path.0, ts, 0)
}

pub fn futimesat(t: &mut Task, dirfd: Fd, path: UserPath, times: UserAddr) -> SysResult {
    let ts = read_timevals(t, times.0)?;
    do_utimes(t, dirfd.0, path.0, ts, 0)
}

pub fn utime(t: &mut Task, path: UserPath, times: UserAddr) -> SysResult {
    let ts = if times.0 == 0 {
        None
    } else {
        let v: [i64; 2] = [t.mm.read_obj(times.0)?, t.mm.read_obj(times.0 + 8)?];
        Some(v.map(|sec| SetTime::At(Timespec { sec, nsec: 0 })))
    };
    do_utimes(t, libc::AT_FDCWD, path.0, ts, 0)
}

// ----- Sizes -----

/// Drops set-user-ID (and set-group-ID with group execute) from a regular
/// file changed by a caller without CAP_FSETID, as Linux's
/// `file_remove_privs`.
fn remove_privs(t: &Task, inode: &Inode) {
    if t.creds.has_cap(CAP_FSETID) {
        return;
    }
    let mut m = inode.meta.locked();
    if m.file_type() != libc::S_IFREG {
        return;
    }
    let mut mode = m.mode & !libc::S_ISUID;
    if mode & (libc::S_ISGID | libc::S_IXGRP) == libc::S_ISGID | libc::S_IXGRP {
        mode &= !libc::S_ISGID;
    }
    m.mode = mode;
}

/// Linux's `file_modified`: privileges dropped, times updated.
fn file_modified(t: &Task, inode: &Inode) {
    remove_privs(t, inode);
    inode.touch(false, true, true);
}

/// `do_truncate`: sets the size; `touch` (ftruncate, O_TRUNC) updates the
/// times even when the size stays.
fn set_size(t: &Task, inode: &Arc<Inode>, size: i64, touch: bool) -> SysResult {
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    let size = size as u64;
    if size > MAX_FILE_SIZE {
        return Err(Errno::EFBIG);
    }
    // Growing a file past RLIMIT_FSIZE: SIGXFSZ and EFBIG (Linux's
    // inode_newsize_ok).
    if size > inode.meta().size && size > super::fs::fsize_limit(t) {
        super::fs::raise_xfsz(t);
        return Err(Errno::EFBIG);
    }
    inode.ops.prepare_change(t, inode, Change::Size)?;
    remove_privs(t, inode);
    let old = inode.meta().size;
    if old != size || inode.ops.truncate_same_size() {
        // The file system takes freed pages away from mappings.
        inode.ops.truncate(inode, size)?;
    } else if touch {
        inode.touch(false, true, true);
    }
    inode.ops.changed(inode);
    inotify::notify(inode, inotify::IN_MODIFY);
    Ok(0)
}

pub fn truncate(t: &mut Task, path: UserPath, length: i64) -> SysResult {
    if length < 0 {
        return Err(Errno::EINVAL);
    }
    let p = read_path(t, path.0)?;
    let loc = lookup_at(t, libc::AT_FDCWD, &p, true, false)?;
    let meta = loc.inode.meta();
    if meta.is_dir() {
        return Err(Errno::EISDIR);
    }
    if meta.file_type() != libc::S_IFREG {
        return Err(Errno::EINVAL);
    }
    if loc.mount.readonly() {
        return Err(Errno::EROFS);
    }
    perm::check(&t.creds, &meta, MAY_WRITE)?;
    set_size(t, &loc.inode, length, false)
}

pub fn ftruncate(t: &mut Task, fd: Fd, length: i64) -> SysResult {
    if length < 0 {
        return Err(Errno::EINVAL);
    }
    let f = get_file(t, fd.0)?;
    let inode = f.inode();
    let regular = inode
        .as_ref()
        .is_some_and(|i| i.meta().file_type() == libc::S_IFREG);
    if !regular || !f.writable() {
        return Err(Errno::EINVAL);
    }
    set_size(t, inode.as_ref().unwrap(), length, true)
}

const FALLOC_FL_KEEP_SIZE: i32 = 0x01;
const FALLOC_FL_PUNCH_HOLE: i32 = 0x02;
const FALLOC_FL_COLLAPSE_RANGE: i32 = 0x08;
const FALLOC_FL_ZERO_RANGE: i32 = 0x10;
const FALLOC_FL_INSERT_RANGE: i32 = 0x20;
const FALLOC_FL_UNSHARE_RANGE: i32 = 0x40;
const FALLOC_FL_WRITE_ZEROES: i32 = 0x80;
/// The modes (one at most), as Linux's FALLOC_FL_MODE_MASK.
const FALLOC_FL_MODE_MASK: i32 = FALLOC_FL_PUNCH_HOLE
    | FALLOC_FL_COLLAPSE_RANGE
    | FALLOC_FL_ZERO_RANGE
    | FALLOC_FL_INSERT_RANGE
    | FALLOC_FL_UNSHARE_RANGE
    | FALLOC_FL_WRITE_ZEROES;

pub fn fallocate(t: &mut Task, fd: Fd, mode: i32, offset: i64, len: i64) -> SysResult {
    let r = do_fallocate(t, fd, mode, offset, len);
    if r.is_ok() {
        if let Ok(f) = t.fds.get(fd.0) {
            inotify::notify_file(&f, inotify::IN_MODIFY);
        }
    }
    r
}

fn do_fallocate(t: &mut Task, fd: Fd, mode: i32, offset: i64, len: i64) -> SysResult {
    let f = get_file(t, fd.0)?;
    if offset < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    if mode & !(FALLOC_FL_MODE_MASK | FALLOC_FL_KEEP_SIZE) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let keep = mode & FALLOC_FL_KEEP_SIZE != 0;
    match mode & FALLOC_FL_MODE_MASK {
        0 | FALLOC_FL_UNSHARE_RANGE | FALLOC_FL_ZERO_RANGE => {}
        FALLOC_FL_PUNCH_HOLE => {
            if !keep {
                return Err(Errno::EOPNOTSUPP);
            }
        }
        FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE | FALLOC_FL_WRITE_ZEROES => {
            if keep {
                return Err(Errno::EOPNOTSUPP);
            }
        }
        _ => return Err(Errno::EOPNOTSUPP),
    }
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    let st = f.stat()?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => return Err(Errno::ESPIPE),
        libc::S_IFDIR => return Err(Errno::EISDIR),
        libc::S_IFREG | libc::S_IFBLK => {}
        _ => return Err(Errno::ENODEV),
    }
    let end = offset.checked_add(len).ok_or(Errno::EFBIG)? as u64;
    if end > MAX_FILE_SIZE {
        return Err(Errno::EFBIG);
    }
    let inode = f.inode().ok_or(Errno::EOPNOTSUPP)?;
    if let Some(r) = inode.ops.fallocate(&inode, mode, offset as u64, len as u64) {
        // A host file: its file system answers, sets the times and drops
        // set-user-ID itself.
        r?;
        return Ok(0);
    }
    // An overlay file's data is its upper copy's.
    let over = inode.ops.data_inode().map(|d| (inode.clone(), d));
    let inode = over.as_ref().map_or(inode, |(_, d)| d.clone());
    let r = (|| -> SysResult {
        let Some(rf) = tmpfs_file(&inode) else {
            return Err(Errno::EOPNOTSUPP);
        };
        // tmpfs knows allocation and hole punching only.
        if mode & !(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE) != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let start = offset as u64;
        let seals = rf.seals();
        if mode & FALLOC_FL_PUNCH_HOLE != 0 {
            if seals & (libc::F_SEAL_WRITE | libc::F_SEAL_FUTURE_WRITE) as u32 != 0 {
                return Err(Errno::EPERM);
            }
            // Nothing lies past the last page the file has.
            let stop = end.min(rf.allocated_end());
            if start < stop {
                rf.punch(start, stop);
            }
            inode.meta.locked().blocks_bytes = rf.allocated_bytes();
            file_modified(t, &inode);
            return Ok(0);
        }
        let size = inode.meta().size;
        if seals & libc::F_SEAL_GROW as u32 != 0 && end > size {
            return Err(Errno::EPERM);
        }
        // All the pages the file system has room for, or none and ENOSPC.
        rf.allocate(start, end)?;
        {
            let mut m = inode.meta.locked();
            m.blocks_bytes = rf.allocated_bytes();
            if !keep && end > m.size {
                m.size = end;
            }
        }
        file_modified(t, &inode);
        Ok(0)
    })();
    if let Some((o, _)) = &over {
        o.ops.data_changed(o);
    }
    r
}

// ----- Syncing -----

/// fsync and fdatasync: a host file's data (through the gofer) is
/// written back and flushed on the host; the sentry's own files live in
/// memory, with nothing to write back; files without an fsync operation
/// (pipes, sockets, devices) answer EINVAL.
fn sync_file(t: &Task, fd: Fd, data_only: bool) -> SysResult {
    let f = get_file(t, fd.0)?;
    if let Some(r) = f.imp.fsync(&f, data_only) {
        r?;
        return Ok(0);
    }
    let st = f.stat()?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFDIR => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn fsync(t: &mut Task, fd: Fd) -> SysResult {
    sync_file(t, fd, false)
}

pub fn fdatasync(t: &mut Task, fd: Fd) -> SysResult {
    sync_file(t, fd, true)
}

pub fn sync(_t: &mut Task) -> SysResult {
    Ok(0)
}

pub fn syncfs(t: &mut Task, fd: Fd) -> SysResult {
    get_file(t, fd.0)?;
    Ok(0)
}
