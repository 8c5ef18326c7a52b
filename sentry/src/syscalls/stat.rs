//! File status by path: stat, lstat, newfstatat, statx, access,
//! faccessat, faccessat2, statfs, fstatfs; and directory listings:
//! getdents, getdents64.

use crate::errno::Errno;
use crate::sync::LockExt;

use super::file::{lookup_at, read_path};
use super::{Fd, Hex, SysResult, UserAddr, UserPath};
use crate::kernel::task::Task;
use crate::mm::io::as_bytes;
use crate::vfs::mount::Location;
use crate::vfs::perm::{self, MAY_EXEC, MAY_READ, MAY_WRITE};

fn stat_of(t: &Task, loc: &Location) -> libc::stat {
    let _ = t;
    loc.inode.stat()
}

pub fn stat(t: &mut Task, path: UserPath, buf: UserAddr) -> SysResult {
    let p = read_path(t, path.0)?;
    let loc = lookup_at(t, libc::AT_FDCWD, &p, true, false)?;
    t.mm.copy_out(buf.0, as_bytes(&stat_of(t, &loc)))?;
    Ok(0)
}

pub fn lstat(t: &mut Task, path: UserPath, buf: UserAddr) -> SysResult {
    let p = read_path(t, path.0)?;
    let loc = lookup_at(t, libc::AT_FDCWD, &p, false, false)?;
    t.mm.copy_out(buf.0, as_bytes(&stat_of(t, &loc)))?;
    Ok(0)
}

/// Reads the path of an `*at` call that may name `dirfd` itself: with
/// AT_EMPTY_PATH, a NULL or empty path gives `None`.
fn path_or_self(t: &Task, path: u64, empty_ok: bool) -> Result<Option<Vec<u8>>, Errno> {
    if empty_ok && path == 0 {
        return Ok(None);
    }
    let p = read_path(t, path)?;
    if p.is_empty() {
        return if empty_ok {
            Ok(None)
        } else {
            Err(Errno::ENOENT)
        };
    }
    Ok(Some(p))
}

pub fn newfstatat(t: &mut Task, dirfd: Fd, path: UserPath, buf: UserAddr, flags: Hex) -> SysResult {
    let flags = flags.0 as u32 as i32;
    let empty_ok = flags & libc::AT_EMPTY_PATH != 0;
    let name = path_or_self(t, path.0, empty_ok);
    // An fd with an empty path is fstat, which looks at no other flag.
    if matches!(name, Ok(None)) && dirfd.0 >= 0 {
        let f = t.fds.get(dirfd.0)?;
        let st = f.stat()?;
        t.mm.copy_out(buf.0, as_bytes(&st))?;
        return Ok(0);
    }
    let allowed = libc::AT_SYMLINK_NOFOLLOW
        | libc::AT_NO_AUTOMOUNT
        | libc::AT_EMPTY_PATH
        | libc::AT_STATX_FORCE_SYNC
        | libc::AT_STATX_DONT_SYNC;
    if flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    let loc = match name? {
        None => lookup_at(t, dirfd.0, b"", true, true)?,
        Some(p) => {
            let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
            lookup_at(t, dirfd.0, &p, follow, false)?
        }
    };
    t.mm.copy_out(buf.0, as_bytes(&stat_of(t, &loc)))?;
    Ok(0)
}

/// `struct statx`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Statx {
    mask: u32,
    blksize: u32,
    attributes: u64,
    nlink: u32,
    uid: u32,
    gid: u32,
    mode: u16,
    _pad0: u16,
    ino: u64,
    size: u64,
    blocks: u64,
    attributes_mask: u64,
    atime: StatxTime,
    btime: StatxTime,
    ctime: StatxTime,
    mtime: StatxTime,
    rdev_major: u32,
    rdev_minor: u32,
    dev_major: u32,
    dev_minor: u32,
    mnt_id: u64,
    dio_mem_align: u32,
    dio_offset_align: u32,
    _spare: [u64; 12],
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct StatxTime {
    sec: i64,
    nsec: u32,
    _pad: i32,
}

// SAFETY: integer fields with explicit padding, 256 bytes.
unsafe impl crate::mm::io::Pod for Statx {}
crate::assert_no_padding!(Statx {
    mask,
    blksize,
    attributes,
    nlink,
    uid,
    gid,
    mode,
    _pad0,
    ino,
    size,
    blocks,
    attributes_mask,
    atime,
    btime,
    ctime,
    mtime,
    rdev_major,
    rdev_minor,
    dev_major,
    dev_minor,
    mnt_id,
    dio_mem_align,
    dio_offset_align,
    _spare
});
crate::assert_no_padding!(StatxTime { sec, nsec, _pad });

const STATX_BASIC_STATS: u32 = 0x7ff;
const STATX_BTIME: u32 = 0x800;
const STATX_MNT_ID: u32 = 0x1000;
const STATX__RESERVED: u32 = 0x8000_0000;
const AT_STATX_SYNC_TYPE: u64 = 0x6000;

pub fn statx(
    t: &mut Task,
    dirfd: Fd,
    path: UserPath,
    flags: Hex,
    mask: u32,
    buf: UserAddr,
) -> SysResult {
    let allowed = (libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT) as u64
        | AT_STATX_SYNC_TYPE;
    if flags.0 & !allowed != 0 || flags.0 & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE {
        return Err(Errno::EINVAL);
    }
    if mask & STATX__RESERVED != 0 {
        return Err(Errno::EINVAL);
    }
    let p = read_path(t, path.0)?;
    let empty = flags.0 & libc::AT_EMPTY_PATH as u64 != 0;
    let (st, mnt_id) = if p.is_empty() && empty && dirfd.0 != libc::AT_FDCWD {
        let f = t.fds.get(dirfd.0)?;
        let id = f.location.as_ref().map(|l| l.mount.id as u64).unwrap_or(0);
        (f.stat()?, id)
    } else {
        let follow = flags.0 & libc::AT_SYMLINK_NOFOLLOW as u64 == 0;
        let loc = lookup_at(t, dirfd.0, &p, follow, empty)?;
        (stat_of(t, &loc), loc.mount.id as u64)
    };
    let btime = stat_btime(t, dirfd.0, &p, flags.0);
    let tm = |sec: i64, nsec: i64| StatxTime {
        sec,
        nsec: nsec as u32,
        _pad: 0,
    };
    let sx = Statx {
        mask: STATX_BASIC_STATS | STATX_MNT_ID | if btime.is_some() { STATX_BTIME } else { 0 },
        blksize: st.st_blksize as u32,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        mode: st.st_mode as u16,
        ino: st.st_ino,
        size: st.st_size as u64,
        blocks: st.st_blocks as u64,
        atime: tm(st.st_atime, st.st_atime_nsec),
        btime: btime.map(|b| tm(b.sec, b.nsec)).unwrap_or_default(),
        ctime: tm(st.st_ctime, st.st_ctime_nsec),
        mtime: tm(st.st_mtime, st.st_mtime_nsec),
        rdev_major: crate::vfs::inode::major(st.st_rdev),
        rdev_minor: crate::vfs::inode::minor(st.st_rdev),
        dev_major: crate::vfs::inode::major(st.st_dev),
        dev_minor: crate::vfs::inode::minor(st.st_dev),
        mnt_id,
        ..Statx::default()
    };
    t.mm.write_obj(buf.0, &sx)?;
    Ok(0)
}

/// The birth time of the file statx is asked about, when it has one.
fn stat_btime(t: &Task, dirfd: i32, p: &[u8], flags: u64) -> Option<crate::vfs::inode::Timespec> {
    let empty = flags & libc::AT_EMPTY_PATH as u64 != 0;
    let inode = if p.is_empty() && empty && dirfd != libc::AT_FDCWD {
        t.fds.get(dirfd).ok()?.inode()?
    } else {
        let follow = flags & libc::AT_SYMLINK_NOFOLLOW as u64 == 0;
        lookup_at(t, dirfd, p, follow, empty).ok()?.inode
    };
    let b = inode.meta().btime;
    Some(b)
}

fn access_common(t: &mut Task, dirfd: i32, path: u64, mode: u32, flags: u64) -> SysResult {
    if mode & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let allowed = (libc::AT_EACCESS | libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) as u64;
    if flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    let p = read_path(t, path)?;
    let follow = flags & libc::AT_SYMLINK_NOFOLLOW as u64 == 0;
    let empty = flags & libc::AT_EMPTY_PATH as u64 != 0;
    // access() checks with the real ids unless AT_EACCESS.
    let mut creds = t.creds.clone();
    if flags & libc::AT_EACCESS as u64 == 0 {
        creds.fsuid = creds.uid;
        creds.fsgid = creds.gid;
        // Root's capabilities follow the real uid too, unless
        // SECBIT_NO_SETUID_FIXUP.
        if creds.securebits() & crate::kernel::creds::SECBIT_NO_SETUID_FIXUP == 0 {
            creds.cap_effective = if creds.uid == 0 {
                creds.cap_permitted
            } else {
                0
            };
        }
    }
    let loc = lookup_at(t, dirfd, &p, follow, empty)?;
    if mode == 0 {
        return Ok(0);
    }
    let mut want = 0;
    if mode & 4 != 0 {
        want |= MAY_READ;
    }
    if mode & 2 != 0 {
        want |= MAY_WRITE;
    }
    if mode & 1 != 0 {
        want |= MAY_EXEC;
    }
    perm::check(&creds, &loc.inode.meta(), want)?;
    if mode & 2 != 0 && loc.mount.readonly() {
        let ft = loc.inode.meta().file_type();
        if ft == libc::S_IFREG || ft == libc::S_IFDIR || ft == libc::S_IFLNK {
            return Err(Errno::EROFS);
        }
    }
    Ok(0)
}

pub fn access(t: &mut Task, path: UserPath, mode: u32) -> SysResult {
    access_common(t, libc::AT_FDCWD, path.0, mode, 0)
}

pub fn faccessat(t: &mut Task, dirfd: Fd, path: UserPath, mode: u32) -> SysResult {
    access_common(t, dirfd.0, path.0, mode, 0)
}

pub fn faccessat2(t: &mut Task, dirfd: Fd, path: UserPath, mode: u32, flags: Hex) -> SysResult {
    access_common(t, dirfd.0, path.0, mode, flags.0)
}

/// `struct statfs` as the x86-64 kernel writes it.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Statfs {
    f_type: i64,
    f_bsize: i64,
    f_blocks: u64,
    f_bfree: u64,
    f_bavail: u64,
    f_files: u64,
    f_ffree: u64,
    f_fsid: [i32; 2],
    f_namelen: i64,
    f_frsize: i64,
    f_flags: i64,
    f_spare: [i64; 4],
}

// SAFETY: integer fields only, no padding.
unsafe impl crate::mm::io::Pod for Statfs {}
crate::assert_no_padding!(Statfs {
    f_type,
    f_bsize,
    f_blocks,
    f_bfree,
    f_bavail,
    f_files,
    f_ffree,
    f_fsid,
    f_namelen,
    f_frsize,
    f_flags,
    f_spare
});

fn statfs_of(loc: &Location) -> Statfs {
    let s = *loc.inode.fs.stats.locked();
    let fl = *loc.mount.flags.locked();
    let mut flags = 0x20; // ST_VALID
    if fl.readonly {
        flags |= libc::ST_RDONLY as i64;
    }
    if fl.nosuid {
        flags |= libc::ST_NOSUID as i64;
    }
    if fl.nodev {
        flags |= libc::ST_NODEV as i64;
    }
    if fl.noexec {
        flags |= libc::ST_NOEXEC as i64;
    }
    Statfs {
        f_type: s.magic,
        f_bsize: s.block_size,
        f_blocks: s.blocks,
        f_bfree: s.blocks_free,
        f_bavail: s.blocks_free,
        f_files: s.files,
        f_ffree: s.files_free,
        f_fsid: [0, 0],
        f_namelen: s.name_max,
        f_frsize: s.block_size,
        f_flags: flags,
        f_spare: [0; 4],
    }
}

pub fn statfs(t: &mut Task, path: UserPath, buf: UserAddr) -> SysResult {
    let p = read_path(t, path.0)?;
    let loc = lookup_at(t, libc::AT_FDCWD, &p, true, false)?;
    t.mm.write_obj(buf.0, &statfs_of(&loc))?;
    Ok(0)
}

pub fn fstatfs(t: &mut Task, fd: Fd, buf: UserAddr) -> SysResult {
    let f = t.fds.get(fd.0)?;
    let loc = match &f.location {
        Some(l) => l.clone(),
        None => crate::vfs::anon::location_for(&t.kernel.vfs, f.clone()),
    };
    t.mm.write_obj(buf.0, &statfs_of(&loc))?;
    Ok(0)
}

/// Fills a getdents buffer from the file's position on. `wide` selects
/// `linux_dirent64`.
fn getdents_common(t: &mut Task, fd: Fd, buf: u64, count: usize, wide: bool) -> SysResult {
    let f = t.fds.get(fd.0)?;
    if f.location.is_none() && f.imp.inode().is_none() {
        return Err(Errno::ENOTDIR);
    }
    let entries = f.imp.readdir(&f, t)?;
    crate::vfs::inotify::notify_file(&f, crate::vfs::inotify::IN_ACCESS);
    let mut pos = f.pos.locked();
    let mut out: Vec<u8> = Vec::new();
    let mut i = *pos as usize;
    while i < entries.len() {
        let e = &entries[i];
        let name_len = e.name.len();
        // ino, off, reclen, [type,] name, NUL, [type,] padded to 8.
        let rec = if wide {
            (8 + 8 + 2 + 1 + name_len + 1).div_ceil(8) * 8
        } else {
            (8 + 8 + 2 + name_len + 1 + 1).div_ceil(8) * 8
        };
        if out.len() + rec > count {
            break;
        }
        let mut r = vec![0u8; rec];
        r[0..8].copy_from_slice(&e.ino.to_le_bytes());
        r[8..16].copy_from_slice(&((i + 1) as u64).to_le_bytes());
        r[16..18].copy_from_slice(&(rec as u16).to_le_bytes());
        if wide {
            r[18] = e.kind;
            r[19..19 + name_len].copy_from_slice(&e.name);
        } else {
            r[18..18 + name_len].copy_from_slice(&e.name);
            r[rec - 1] = e.kind;
        }
        out.extend_from_slice(&r);
        i += 1;
    }
    if out.is_empty() && i < entries.len() {
        return Err(Errno::EINVAL);
    }
    t.mm.copy_out(buf, &out)?;
    *pos = i as u64;
    Ok(out.len() as u64)
}

pub fn getdents64(t: &mut Task, fd: Fd, buf: UserAddr, count: u32) -> SysResult {
    getdents_common(t, fd, buf.0, count as usize, true)
}

pub fn getdents(t: &mut Task, fd: Fd, buf: UserAddr, count: u32) -> SysResult {
    getdents_common(t, fd, buf.0, count as usize, false)
}
