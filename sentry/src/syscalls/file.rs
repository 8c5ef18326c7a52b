//! Path syscalls that open and name files: open, openat, openat2, creat,
//! mkdir, mknod, symlink, link, unlink, rmdir, rename, readlink, chdir,
//! fchdir, getcwd, chroot.

use crate::sync::LockExt;
use std::sync::Arc;

use crate::errno::Errno;

use super::{Fd, Hex, Mode, OutBuf, SysResult, UserAddr, UserPath};
use crate::kernel::task::Task;
use crate::vfs::inode::{Inode, NewNode};
use crate::vfs::mount::Location;
use crate::vfs::path::{ParentAndName, Walker};
use crate::vfs::perm::{self, MAY_EXEC, MAY_READ, MAY_WRITE};
use crate::vfs::FileDescription;

/// O_LARGEFILE as the x86-64 kernel encodes it (libc's constant is 0 on
/// 64-bit targets); Linux sets it on every file opened by a 64-bit task.
pub const O_LARGEFILE: u32 = 0o100000;

/// PATH_MAX, with its NUL.
pub const PATH_MAX: usize = 4096;

/// Reads a path argument: EFAULT, or ENAMETOOLONG at PATH_MAX.
pub fn read_path(t: &Task, addr: u64) -> Result<Vec<u8>, Errno> {
    t.mm.read_cstring(addr, PATH_MAX - 1)
}

/// Where a relative path starts: the working directory or a directory fd.
pub fn start_dir(t: &Task, dirfd: i32) -> Result<Location, Errno> {
    if dirfd == libc::AT_FDCWD {
        return Ok(t.fs.locked().cwd.clone());
    }
    let f = t.fds.get(dirfd)?;
    match &f.location {
        Some(l) => Ok(l.clone()),
        None => Err(Errno::ENOTDIR),
    }
}

/// Resolves `path` relative to `dirfd`, with `AT_EMPTY_PATH` and
/// `AT_SYMLINK_NOFOLLOW` as `flags` give them.
pub fn lookup_at(
    t: &Task,
    dirfd: i32,
    path: &[u8],
    follow: bool,
    empty_ok: bool,
) -> Result<Location, Errno> {
    if path.is_empty() {
        if !empty_ok {
            return Err(Errno::ENOENT);
        }
        if dirfd == libc::AT_FDCWD {
            return Ok(t.fs.locked().cwd.clone());
        }
        let f = t.fds.get(dirfd)?;
        return Ok(match &f.location {
            Some(l) => l.clone(),
            None => crate::vfs::anon::location_for(&t.kernel.vfs, f.clone()),
        });
    }
    let start = if path[0] == b'/' {
        t.fs.locked().root.clone()
    } else {
        start_dir_checked(t, dirfd)?
    };
    Walker::new(t).resolve(&start, path, follow)
}

/// A start directory for a relative path: must be a directory.
fn start_dir_checked(t: &Task, dirfd: i32) -> Result<Location, Errno> {
    let d = start_dir(t, dirfd)?;
    if !d.inode.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(d)
}

/// Resolves all but the last component of `path` relative to `dirfd`.
pub fn parent_at(t: &Task, dirfd: i32, path: &[u8]) -> Result<ParentAndName, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let start = if path[0] == b'/' {
        t.fs.locked().root.clone()
    } else {
        start_dir_checked(t, dirfd)?
    };
    Walker::new(t).resolve_parent(&start, path)
}

/// Write and search permission on a directory, and a writable mount.
fn may_modify_dir(t: &Task, dir: &Location) -> Result<(), Errno> {
    perm::check(&t.creds, &dir.inode.meta(), MAY_WRITE | MAY_EXEC)?;
    if dir.mount.readonly() {
        return Err(Errno::EROFS);
    }
    Ok(())
}

fn umask(t: &Task) -> u32 {
    *t.tg.umask.locked()
}

fn nofile(t: &Task) -> u64 {
    t.tg.limits.locked().cur(libc::RLIMIT_NOFILE)
}

/// Flags open() accepts (others are ignored, as Linux does).
const O_PATH_ALLOWED: u32 =
    (libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u32;

/// The flags an open file description keeps.
fn description_flags(flags: u32) -> u32 {
    let dropped =
        (libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_TRUNC | libc::O_CLOEXEC) as u32;
    (flags & !dropped) | O_LARGEFILE
}

/// Direct I/O: accepted and kept as a status flag, but reads and writes
/// go through the sentry's caches, without O_DIRECT's alignment rules.
const OPEN_DIRECT: crate::kernel::compat::Degraded = crate::kernel::compat::Degraded {
    syscall: "open",
    what: "O_DIRECT",
    behaviour: "accepted; I/O goes through the sentry's caches, without alignment rules",
};

/// Opens `path` (relative to `dirfd`) with `flags` and `mode`; returns the
/// new fd.
pub fn do_open(t: &mut Task, dirfd: i32, path: &[u8], flags: u32, mode: u32) -> SysResult {
    let o = |f: i32| flags & f as u32 != 0;
    if o(libc::O_DIRECT) && !o(libc::O_PATH) {
        OPEN_DIRECT.note(t);
    }
    if o(libc::O_TMPFILE & !libc::O_DIRECTORY) {
        return open_tmpfile(t, dirfd, path, flags, mode);
    }
    let flags = if o(libc::O_PATH) {
        flags & O_PATH_ALLOWED
    } else {
        flags
    };
    let o = |f: i32| flags & f as u32 != 0;
    // O_DIRECTORY | O_CREAT once created regular files; Linux refuses it.
    if o(libc::O_DIRECTORY) && o(libc::O_CREAT) {
        return Err(Errno::EINVAL);
    }
    let acc = flags & libc::O_ACCMODE as u32;
    let want_read =
        !o(libc::O_PATH) && (acc == libc::O_RDONLY as u32 || acc == libc::O_RDWR as u32);
    let want_write =
        !o(libc::O_PATH) && (acc == libc::O_WRONLY as u32 || acc == libc::O_RDWR as u32);
    let follow = !o(libc::O_NOFOLLOW);
    let mut created = false;
    let loc = if o(libc::O_CREAT) {
        let pn = parent_at(t, dirfd, path)?;
        if pn.name.is_empty() || pn.name == b"." || pn.name == b".." || pn.trailing_slash {
            return Err(Errno::EISDIR);
        }
        let mut walker = Walker::new(t);
        match walker.step(pn.parent.clone(), &pn.name, false) {
            Ok(existing) => {
                if o(libc::O_EXCL) {
                    return Err(Errno::EEXIST);
                }
                if existing.inode.is_symlink() {
                    if !follow {
                        return Err(Errno::ELOOP);
                    }
                    walker.follow_link(&pn.parent, &existing)?
                } else {
                    existing
                }
            }
            Err(Errno::ENOENT) => {
                may_modify_dir(t, &pn.parent)?;
                let mode = (mode & 0o7777 & !umask(t)) | libc::S_IFREG;
                let inode = pn.parent.inode.ops.create(
                    t,
                    &pn.parent.inode,
                    &pn.name,
                    NewNode::Node { mode, rdev: 0 },
                )?;
                created = true;
                crate::vfs::inotify::created(&pn.parent.inode, &pn.name, &inode);
                Location {
                    mount: pn.parent.mount.clone(),
                    inode,
                }
            }
            Err(e) => return Err(e),
        }
    } else {
        lookup_at(t, dirfd, path, follow, false)?
    };
    let meta = loc.inode.meta();
    if o(libc::O_DIRECTORY) && !meta.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if meta.is_symlink() && !o(libc::O_PATH) {
        return Err(Errno::ELOOP);
    }
    if meta.is_dir() && (want_write || o(libc::O_CREAT) || o(libc::O_TRUNC)) {
        return Err(Errno::EISDIR);
    }
    if !created && !o(libc::O_PATH) {
        let mut need = 0;
        if want_read {
            need |= MAY_READ;
        }
        if want_write || o(libc::O_TRUNC) {
            need |= MAY_WRITE;
        }
        perm::check(&t.creds, &meta, need)?;
    }
    let ft = meta.file_type();
    if (want_write || o(libc::O_TRUNC))
        && loc.mount.readonly()
        && ft != libc::S_IFCHR
        && ft != libc::S_IFIFO
    {
        return Err(Errno::EROFS);
    }
    if ft == libc::S_IFCHR && loc.mount.flags.locked().nodev && !o(libc::O_PATH) {
        return Err(Errno::EACCES);
    }
    let imp: Box<dyn crate::vfs::FileImpl> = if o(libc::O_PATH) {
        Box::new(PathFile)
    } else {
        loc.inode.ops.open(t, &loc.inode, flags)?
    };
    // O_TRUNC truncates whatever the access mode (O_RDONLY too).
    let truncated = o(libc::O_TRUNC) && ft == libc::S_IFREG && !created;
    if truncated {
        loc.inode.ops.truncate(&loc.inode, 0)?;
    }
    let desc_flags = if o(libc::O_PATH) {
        // O_PATH drops every other flag, O_LARGEFILE too.
        (flags & !(libc::O_CLOEXEC as u32))
            & (libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW) as u32
    } else {
        description_flags(flags)
    };
    let file = FileDescription::new_at(desc_flags, imp, Some(loc));
    let limit = nofile(t);
    let fd = t
        .fds
        .install(file.clone(), o(libc::O_CLOEXEC), 0, limit)
        .map_err(|e| if e == Errno::EINVAL { Errno::EMFILE } else { e })?;
    crate::vfs::inotify::opened(&file);
    if truncated {
        // After IN_OPEN, as Linux's do_dentry_open comes before
        // handle_truncate.
        crate::vfs::inotify::notify_file(&file, crate::vfs::inotify::IN_MODIFY);
    }
    Ok(fd as u64)
}

/// O_TMPFILE: an unnamed regular file in the directory `path`.
fn open_tmpfile(t: &mut Task, dirfd: i32, path: &[u8], flags: u32, mode: u32) -> SysResult {
    let acc = flags & libc::O_ACCMODE as u32;
    if acc != libc::O_WRONLY as u32 && acc != libc::O_RDWR as u32 {
        return Err(Errno::EINVAL);
    }
    if flags & libc::O_CREAT as u32 != 0 {
        return Err(Errno::EINVAL);
    }
    let dir = lookup_at(t, dirfd, path, true, false)?;
    if !dir.inode.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    may_modify_dir(t, &dir)?;
    let mode = (mode & 0o7777 & !umask(t)) | libc::S_IFREG;
    if let Some(made) = dir.inode.ops.create_tmpfile(t, &dir.inode, mode, flags) {
        let (inode, imp) = made?;
        let loc = Location {
            mount: dir.mount.clone(),
            inode,
        };
        let file = FileDescription::new_at(description_flags(flags), imp, Some(loc));
        let limit = nofile(t);
        let fd = t
            .fds
            .install(file.clone(), flags & libc::O_CLOEXEC as u32 != 0, 0, limit)?;
        crate::vfs::inotify::opened(&file);
        return Ok(fd as u64);
    }
    // Create it under a name no one can guess, then take the name away.
    let name = format!(
        ".tmpfile-{:x}",
        crate::vfs::inode::Timespec::now().nsec as u64 ^ dir.inode.ino
    );
    let inode = dir.inode.ops.create(
        t,
        &dir.inode,
        name.as_bytes(),
        NewNode::Node { mode, rdev: 0 },
    )?;
    dir.inode.ops.remove(&dir.inode, name.as_bytes())?;
    {
        let mut m = inode.meta.locked();
        m.nlink = 0;
    }
    // Without a parent the file may be linked in once (linkat); with
    // O_EXCL it never may, so it keeps the parent it was made in.
    if flags & libc::O_EXCL as u32 == 0 {
        *inode.parent.locked() = None;
    }
    let imp = inode.ops.open(t, &inode, flags)?;
    let loc = Location {
        mount: dir.mount.clone(),
        inode,
    };
    // The description keeps O_TMPFILE (with its O_DIRECTORY), as Linux's.
    let file = FileDescription::new_at(description_flags(flags), imp, Some(loc));
    let limit = nofile(t);
    let fd = t
        .fds
        .install(file.clone(), flags & libc::O_CLOEXEC as u32 != 0, 0, limit)?;
    crate::vfs::inotify::opened(&file);
    Ok(fd as u64)
}

/// An O_PATH file: it names a place; reading or writing it is EBADF.
pub struct PathFile;

impl crate::vfs::FileImpl for PathFile {
    fn read(&self, _f: &FileDescription, _d: &mut [u8], _o: Option<u64>) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }
    fn write(&self, _f: &FileDescription, _s: &[u8], _o: Option<u64>) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }
    fn seek(&self, _f: &FileDescription, _o: i64, _w: i32) -> Result<u64, Errno> {
        Err(Errno::EBADF)
    }
    fn stat(&self, f: &FileDescription) -> Result<libc::stat, Errno> {
        f.location
            .as_ref()
            .map(|l| l.inode.stat())
            .ok_or(Errno::EBADF)
    }
    fn ioctl(&self, _f: &FileDescription, _t: &mut Task, _r: u32, _a: u64) -> Result<u64, Errno> {
        Err(Errno::EBADF)
    }
    fn readiness(&self, _f: &FileDescription, _e: i16) -> i16 {
        libc::POLLNVAL
    }
}

pub fn open(t: &mut Task, path: UserPath, flags: Hex, mode: Mode) -> SysResult {
    let p = read_path(t, path.0)?;
    do_open(t, libc::AT_FDCWD, &p, flags.0 as u32, mode.0)
}

pub fn openat(t: &mut Task, dirfd: Fd, path: UserPath, flags: Hex, mode: Mode) -> SysResult {
    let p = read_path(t, path.0)?;
    do_open(t, dirfd.0, &p, flags.0 as u32, mode.0)
}

pub fn creat(t: &mut Task, path: UserPath, mode: Mode) -> SysResult {
    let p = read_path(t, path.0)?;
    let flags = (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u32;
    do_open(t, libc::AT_FDCWD, &p, flags, mode.0)
}

/// `struct open_how` of openat2.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

// SAFETY: three u64 fields.
unsafe impl crate::mm::io::Pod for OpenHow {}
crate::assert_no_padding!(OpenHow {
    flags,
    mode,
    resolve
});

const RESOLVE_NO_XDEV: u64 = 0x01;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;
const RESOLVE_CACHED: u64 = 0x20;

pub fn openat2(t: &mut Task, dirfd: Fd, path: UserPath, how: UserAddr, size: usize) -> SysResult {
    if size < std::mem::size_of::<OpenHow>() {
        return Err(Errno::EINVAL);
    }
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let h: OpenHow = t.mm.read_obj(how.0)?;
    if size > 24 {
        // Unknown trailing fields must be zero.
        let mut rest = vec![0u8; size - 24];
        t.mm.copy_in(how.0 + 24, &mut rest)?;
        if rest.iter().any(|&b| b != 0) {
            return Err(Errno::E2BIG);
        }
    }
    let known_flags = 0o37777777u64 | libc::O_TMPFILE as u64 | libc::O_PATH as u64;
    if h.flags & !known_flags != 0 || h.flags > u32::MAX as u64 {
        return Err(Errno::EINVAL);
    }
    let creating = h.flags & (libc::O_CREAT | libc::O_TMPFILE) as u64 != 0;
    if h.mode != 0 && !creating || h.mode & !0o7777 != 0 {
        return Err(Errno::EINVAL);
    }
    let all = RESOLVE_NO_XDEV
        | RESOLVE_NO_MAGICLINKS
        | RESOLVE_NO_SYMLINKS
        | RESOLVE_BENEATH
        | RESOLVE_IN_ROOT
        | RESOLVE_CACHED;
    if h.resolve & !all != 0 {
        return Err(Errno::EINVAL);
    }
    if h.resolve & RESOLVE_BENEATH != 0 && h.resolve & RESOLVE_IN_ROOT != 0 {
        return Err(Errno::EINVAL);
    }
    let p = read_path(t, path.0)?;
    if h.resolve & RESOLVE_CACHED != 0 {
        // Nothing is cached specially: Linux answers EAGAIN when a lookup
        // cannot be done from the cache alone.
        return Err(Errno::EAGAIN);
    }
    if h.resolve != 0 {
        check_resolve(t, dirfd.0, &p, h.resolve, h.flags as u32)?;
    }
    if h.resolve & RESOLVE_IN_ROOT != 0 {
        // Resolve with the directory as the root.
        let dir = start_dir_checked(t, dirfd.0)?;
        let saved = t.fs.locked().clone();
        {
            let mut fs = t.fs.locked();
            fs.root = dir.clone();
        }
        let rel: Vec<u8> = p.iter().copied().skip_while(|&c| c == b'/').collect();
        let rel = if rel.is_empty() { b".".to_vec() } else { rel };
        let tmp_fd = {
            let f = FileDescription::new_at(libc::O_PATH as u32, Box::new(PathFile), Some(dir));
            t.fds.install(f, true, 0, u64::MAX)?
        };
        let r = do_open(t, tmp_fd, &rel, h.flags as u32, h.mode as u32);
        let _ = t.fds.remove(tmp_fd);
        *t.fs.locked() = saved;
        return r;
    }
    do_open(t, dirfd.0, &p, h.flags as u32, h.mode as u32)
}

/// Checks RESOLVE_* restrictions by walking the path component by
/// component.
fn check_resolve(t: &Task, dirfd: i32, path: &[u8], resolve: u64, flags: u32) -> Result<(), Errno> {
    let beneath = resolve & RESOLVE_BENEATH != 0;
    if beneath && path.first() == Some(&b'/') {
        return Err(Errno::EXDEV);
    }
    let start = if path.first() == Some(&b'/') {
        t.fs.locked().root.clone()
    } else {
        start_dir_checked(t, dirfd)?
    };
    let mut walker = Walker::new(t);
    let mut cur = start.clone();
    let mut depth: i64 = 0;
    let comps: Vec<&[u8]> = path
        .split(|&c| c == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    let n = comps.len();
    for (i, c) in comps.into_iter().enumerate() {
        let last = i + 1 == n;
        if c == b".." {
            depth -= 1;
            if beneath && depth < 0 {
                return Err(Errno::EXDEV);
            }
        } else if c != b"." {
            depth += 1;
        }
        let next = match walker.step(cur.clone(), c, false) {
            Ok(l) => l,
            Err(Errno::ENOENT) if last => return Ok(()),
            Err(e) => return Err(e),
        };
        if resolve & RESOLVE_NO_XDEV != 0 && !Arc::ptr_eq(&next.mount, &cur.mount) {
            return Err(Errno::EXDEV);
        }
        if next.inode.is_symlink() && (!last || flags & libc::O_NOFOLLOW as u32 == 0) {
            let magic = next.inode.ops.follow(t, &next.inode).is_some();
            if resolve & RESOLVE_NO_SYMLINKS != 0 || (magic && resolve & RESOLVE_NO_MAGICLINKS != 0)
            {
                return Err(Errno::ELOOP);
            }
            if beneath {
                let target = next.inode.ops.readlink(t, &next.inode).unwrap_or_default();
                if target.first() == Some(&b'/') {
                    return Err(Errno::EXDEV);
                }
            }
        }
        cur = next;
    }
    Ok(())
}

fn mknod_common(t: &mut Task, dirfd: i32, path: &[u8], node: NewNode) -> SysResult {
    create_node(t, dirfd, path, node).map(|_| 0)
}

/// Creates `path` as mknod(2) does (a socket's bind makes its node
/// through it): where the new node is.
pub(crate) fn create_node(
    t: &mut Task,
    dirfd: i32,
    path: &[u8],
    node: NewNode,
) -> Result<Location, Errno> {
    let pn = parent_at(t, dirfd, path)?;
    if pn.name.is_empty() || pn.name == b"." || pn.name == b".." {
        return Err(Errno::EEXIST);
    }
    let is_dir = matches!(node, NewNode::Directory { .. });
    if pn.trailing_slash && !is_dir {
        // mknod("x/") of a missing x: ENOENT, of an existing one: EEXIST.
        return match Walker::new(t).step(pn.parent.clone(), &pn.name, false) {
            Ok(_) => Err(Errno::EEXIST),
            Err(_) => Err(Errno::ENOENT),
        };
    }
    match Walker::new(t).step(pn.parent.clone(), &pn.name, false) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    may_modify_dir(t, &pn.parent)?;
    let inode = pn
        .parent
        .inode
        .ops
        .create(t, &pn.parent.inode, &pn.name, node)?;
    crate::vfs::inotify::created(&pn.parent.inode, &pn.name, &inode);
    Ok(Location {
        mount: pn.parent.mount.clone(),
        inode,
    })
}

pub fn mkdir(t: &mut Task, path: UserPath, mode: Mode) -> SysResult {
    mkdirat(t, Fd(libc::AT_FDCWD), path, mode)
}

pub fn mkdirat(t: &mut Task, dirfd: Fd, path: UserPath, mode: Mode) -> SysResult {
    let p = read_path(t, path.0)?;
    let mode = mode.0 & 0o7777 & !umask(t);
    mknod_common(t, dirfd.0, &p, NewNode::Directory { mode })
}

pub fn mknod(t: &mut Task, path: UserPath, mode: Mode, dev: u64) -> SysResult {
    mknodat(t, Fd(libc::AT_FDCWD), path, mode, dev)
}

pub fn mknodat(t: &mut Task, dirfd: Fd, path: UserPath, mode: Mode, dev: u64) -> SysResult {
    let p = read_path(t, path.0)?;
    let mut ft = mode.0 & libc::S_IFMT;
    if ft == 0 {
        ft = libc::S_IFREG;
    }
    match ft {
        libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK => {}
        libc::S_IFCHR | libc::S_IFBLK => {
            if !t.creds.has_cap(perm::CAP_MKNOD) {
                return Err(Errno::EPERM);
            }
        }
        libc::S_IFDIR => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    }
    let perms = mode.0 & 0o7777 & !umask(t);
    let rdev = if ft == libc::S_IFCHR || ft == libc::S_IFBLK {
        // The guest passes the kernel's encoding; convert to ours.
        let (ma, mi) = (
            (dev >> 8) & 0xfff | (dev >> 32) & !0xfff,
            dev & 0xff | (dev >> 12) & !0xff,
        );
        crate::vfs::inode::makedev(ma as u32, mi as u32)
    } else {
        0
    };
    mknod_common(
        t,
        dirfd.0,
        &p,
        NewNode::Node {
            mode: ft | perms,
            rdev,
        },
    )
}

pub fn symlink(t: &mut Task, target: UserPath, path: UserPath) -> SysResult {
    symlinkat(t, target, Fd(libc::AT_FDCWD), path)
}

pub fn symlinkat(t: &mut Task, target: UserPath, dirfd: Fd, path: UserPath) -> SysResult {
    let tgt = read_path(t, target.0)?;
    if tgt.is_empty() {
        return Err(Errno::ENOENT);
    }
    let p = read_path(t, path.0)?;
    mknod_common(t, dirfd.0, &p, NewNode::Symlink { target: tgt })
}

pub fn link(t: &mut Task, old: UserPath, new: UserPath) -> SysResult {
    linkat(t, Fd(libc::AT_FDCWD), old, Fd(libc::AT_FDCWD), new, Hex(0))
}

pub fn linkat(
    t: &mut Task,
    olddir: Fd,
    old: UserPath,
    newdir: Fd,
    new: UserPath,
    flags: Hex,
) -> SysResult {
    if flags.0 & !((libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH) as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let op = read_path(t, old.0)?;
    let np = read_path(t, new.0)?;
    let follow = flags.0 & libc::AT_SYMLINK_FOLLOW as u64 != 0;
    let empty = flags.0 & libc::AT_EMPTY_PATH as u64 != 0;
    let src = lookup_at(t, olddir.0, &op, follow, empty)?;
    if src.inode.is_dir() {
        return Err(Errno::EPERM);
    }
    let pn = parent_at(t, newdir.0, &np)?;
    if pn.name.is_empty() || pn.name == b"." || pn.name == b".." {
        return Err(Errno::EEXIST);
    }
    if pn.trailing_slash {
        return Err(Errno::ENOENT);
    }
    if !Arc::ptr_eq(&src.mount, &pn.parent.mount) {
        return Err(Errno::EXDEV);
    }
    match Walker::new(t).step(pn.parent.clone(), &pn.name, false) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    may_modify_dir(t, &pn.parent)?;
    {
        let m = src.inode.meta();
        if m.nlink == 0 && empty && src.inode.parent().is_none() {
            // An O_TMPFILE file can be given a name once (unless made
            // with O_EXCL, which leaves it its parent).
        } else if m.nlink == 0 {
            return Err(Errno::ENOENT);
        }
    }
    src.inode
        .ops
        .prepare_change(t, &src.inode, crate::vfs::inode::Change::Link)?;
    pn.parent
        .inode
        .ops
        .insert(&pn.parent.inode, &pn.name, &src.inode, false)?;
    {
        let mut m = src.inode.meta.locked();
        m.nlink += 1;
        m.ctime = crate::vfs::inode::Timespec::now();
    }
    src.inode.ops.changed(&src.inode);
    crate::vfs::inotify::linked(&pn.parent.inode, &pn.name, &src.inode);
    Ok(0)
}

/// Drops one link of `inode`, which was just removed from a directory.
fn drop_link(inode: &Arc<Inode>) {
    let mut m = inode.meta.locked();
    if m.is_dir() {
        m.nlink = 0;
    } else {
        m.nlink = m.nlink.saturating_sub(1);
    }
    m.ctime = crate::vfs::inode::Timespec::now();
}

/// `name` in `dir` was removed and `inode`, which remembered that name
/// as its place, still has links: it remembers another of its names in
/// `dir`, if it has one there (for the names inotify and /proc show).
fn other_link(t: &Task, dir: &Arc<Inode>, name: &[u8], inode: &Arc<Inode>) {
    if inode.is_dir() || inode.meta().nlink == 0 {
        return;
    }
    let here = inode
        .parent()
        .is_some_and(|(d, n)| Arc::ptr_eq(&d, dir) && n == name);
    if !here {
        return;
    }
    let Ok(entries) = dir.ops.entries(t, dir) else {
        return;
    };
    for e in entries.iter().filter(|e| e.ino == inode.ino) {
        if dir
            .ops
            .lookup(t, dir, &e.name)
            .is_ok_and(|i| Arc::ptr_eq(&i, inode))
        {
            inode.set_parent(dir, &e.name);
            return;
        }
    }
}

fn remove_common(t: &mut Task, dirfd: i32, path: &[u8], dir: bool) -> SysResult {
    let pn = parent_at(t, dirfd, path)?;
    if dir {
        if pn.name == b"." {
            return Err(Errno::EINVAL);
        }
        if pn.name == b".." {
            return Err(Errno::ENOTEMPTY);
        }
        if pn.name.is_empty() {
            return Err(Errno::EBUSY);
        }
    } else if pn.name.is_empty() || pn.name == b"." || pn.name == b".." {
        return Err(Errno::EISDIR);
    }
    let victim = Walker::new(t).step(pn.parent.clone(), &pn.name, false)?;
    // A mount point (or a mount root reached through it) is busy.
    if victim.is_mount_root() && !Arc::ptr_eq(&victim.mount, &pn.parent.mount) {
        return Err(Errno::EBUSY);
    }
    let vmeta = victim.inode.meta();
    if dir {
        if !vmeta.is_dir() {
            return Err(Errno::ENOTDIR);
        }
    } else {
        if vmeta.is_dir() {
            return Err(Errno::EISDIR);
        }
        if pn.trailing_slash {
            return Err(Errno::ENOTDIR);
        }
    }
    may_modify_dir(t, &pn.parent)?;
    if !perm::may_delete_sticky(&t.creds, &pn.parent.inode.meta(), &vmeta) {
        return Err(Errno::EPERM);
    }
    if dir {
        let entries = victim.inode.ops.entries(t, &victim.inode)?;
        if !entries.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        let fs = t.fs.locked().clone();
        if victim.same(&fs.root) {
            return Err(Errno::EBUSY);
        }
    }
    let removed = pn.parent.inode.ops.remove(&pn.parent.inode, &pn.name)?;
    drop_link(&removed);
    other_link(t, &pn.parent.inode, &pn.name, &removed);
    crate::vfs::inotify::removed(&pn.parent.inode, &pn.name, &removed);
    Ok(0)
}

pub fn unlink(t: &mut Task, path: UserPath) -> SysResult {
    let p = read_path(t, path.0)?;
    remove_common(t, libc::AT_FDCWD, &p, false)
}

pub fn rmdir(t: &mut Task, path: UserPath) -> SysResult {
    let p = read_path(t, path.0)?;
    remove_common(t, libc::AT_FDCWD, &p, true)
}

pub fn unlinkat(t: &mut Task, dirfd: Fd, path: UserPath, flags: Hex) -> SysResult {
    if flags.0 & !(libc::AT_REMOVEDIR as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = read_path(t, path.0)?;
    remove_common(t, dirfd.0, &p, flags.0 != 0)
}

pub fn rename(t: &mut Task, old: UserPath, new: UserPath) -> SysResult {
    renameat2(t, Fd(libc::AT_FDCWD), old, Fd(libc::AT_FDCWD), new, Hex(0))
}

pub fn renameat(t: &mut Task, olddir: Fd, old: UserPath, newdir: Fd, new: UserPath) -> SysResult {
    renameat2(t, olddir, old, newdir, new, Hex(0))
}

/// Whether `anc` is `dir` or one of its ancestors (same mount).
fn is_ancestor(anc: &Arc<Inode>, dir: &Arc<Inode>) -> bool {
    let mut cur = dir.clone();
    for _ in 0..4096 {
        if Arc::ptr_eq(&cur, anc) {
            return true;
        }
        match cur.parent() {
            Some((p, _)) => cur = p,
            None => return false,
        }
    }
    false
}

pub fn renameat2(
    t: &mut Task,
    olddir: Fd,
    old: UserPath,
    newdir: Fd,
    new: UserPath,
    flags: Hex,
) -> SysResult {
    let noreplace = libc::RENAME_NOREPLACE as u64;
    let exchange = libc::RENAME_EXCHANGE as u64;
    let whiteout = libc::RENAME_WHITEOUT as u64;
    if flags.0 & !(noreplace | exchange | whiteout) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags.0 & noreplace != 0 && flags.0 & exchange != 0 {
        return Err(Errno::EINVAL);
    }
    if flags.0 & whiteout != 0 {
        return super::unimplemented(t, "renameat2 RENAME_WHITEOUT");
    }
    let op = read_path(t, old.0)?;
    let np = read_path(t, new.0)?;
    let src = parent_at(t, olddir.0, &op)?;
    let dst = parent_at(t, newdir.0, &np)?;
    // Linux compares the parents' mounts before it looks at the names.
    if !Arc::ptr_eq(&src.parent.mount, &dst.parent.mount) {
        return Err(Errno::EXDEV);
    }
    for n in [&src.name, &dst.name] {
        if n.is_empty() || n.as_slice() == b"." || n.as_slice() == b".." {
            return Err(Errno::EBUSY);
        }
    }
    let victim = Walker::new(t).step(src.parent.clone(), &src.name, false)?;
    let vmeta = victim.inode.meta();
    if (src.trailing_slash || dst.trailing_slash) && !vmeta.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    // A mount point (found as the root of what is mounted on it) is busy,
    // once the types of source and target have been checked.
    let mounted = |l: &Location, parent: &Location| {
        l.is_mount_root() && !Arc::ptr_eq(&l.mount, &parent.mount)
    };
    let target = match Walker::new(t).step(dst.parent.clone(), &dst.name, false) {
        Ok(l) => Some(l),
        Err(Errno::ENOENT) => None,
        Err(e) => return Err(e),
    };
    if flags.0 & exchange != 0 && target.is_none() {
        return Err(Errno::ENOENT);
    }
    if flags.0 & noreplace != 0 && target.is_some() {
        return Err(Errno::EEXIST);
    }
    // A directory cannot move beneath itself, nor replace one of its
    // ancestors.
    if vmeta.is_dir() && is_ancestor(&victim.inode, &dst.parent.inode) {
        return Err(Errno::EINVAL);
    }
    if let Some(tl) = &target {
        if tl.inode.is_dir() && is_ancestor(&tl.inode, &src.parent.inode) {
            return Err(if flags.0 & exchange != 0 {
                Errno::EINVAL
            } else {
                Errno::ENOTEMPTY
            });
        }
    }
    may_modify_dir(t, &src.parent)?;
    may_modify_dir(t, &dst.parent)?;
    if let Some(tl) = &target {
        if Arc::ptr_eq(&tl.inode, &victim.inode) {
            // Renaming a file onto a hard link of itself does nothing.
            return Ok(0);
        }
    }
    if !perm::may_delete_sticky(&t.creds, &src.parent.inode.meta(), &vmeta) {
        return Err(Errno::EPERM);
    }
    if let Some(tl) = &target {
        let tmeta = tl.inode.meta();
        if !perm::may_delete_sticky(&t.creds, &dst.parent.inode.meta(), &tmeta) {
            return Err(Errno::EPERM);
        }
        if flags.0 & exchange == 0 {
            if vmeta.is_dir() && !tmeta.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if !vmeta.is_dir() && tmeta.is_dir() {
                return Err(Errno::EISDIR);
            }
        }
        if mounted(&victim, &src.parent) || mounted(tl, &dst.parent) {
            return Err(Errno::EBUSY);
        }
        if flags.0 & exchange == 0
            && tmeta.is_dir()
            && !tl.inode.ops.entries(t, &tl.inode)?.is_empty()
        {
            return Err(Errno::ENOTEMPTY);
        }
    } else if mounted(&victim, &src.parent) {
        return Err(Errno::EBUSY);
    }
    // The file systems' own refusals (an overlay's EXDEV for merged
    // directories) and preparations (its copy-up) come last.
    let rename = crate::vfs::inode::Change::Rename;
    victim.inode.ops.prepare_change(t, &victim.inode, rename)?;
    if let (Some(tl), true) = (&target, flags.0 & exchange != 0) {
        tl.inode.ops.prepare_change(t, &tl.inode, rename)?;
    }
    let exchanging = target.is_some() && flags.0 & exchange != 0;
    if let Some(r) = src.parent.inode.ops.rename(
        &src.parent.inode,
        &src.name,
        &dst.parent.inode,
        &dst.name,
        exchanging,
    ) {
        r?;
        if let (Some(tl), false) = (&target, exchanging) {
            drop_link(&tl.inode);
        }
        victim.inode.touch(false, false, true);
        let replaced = target.as_ref().filter(|_| !exchanging).map(|l| &l.inode);
        crate::vfs::inotify::renamed(
            &src.parent.inode,
            &src.name,
            &dst.parent.inode,
            &dst.name,
            &victim.inode,
            replaced,
        );
        if let (Some(tl), true) = (&target, exchanging) {
            crate::vfs::inotify::renamed(
                &dst.parent.inode,
                &dst.name,
                &src.parent.inode,
                &src.name,
                &tl.inode,
                None,
            );
        }
        return Ok(0);
    }
    if let (Some(tl), true) = (&target, flags.0 & exchange != 0) {
        src.parent.inode.ops.remove(&src.parent.inode, &src.name)?;
        dst.parent.inode.ops.remove(&dst.parent.inode, &dst.name)?;
        src.parent
            .inode
            .ops
            .insert(&src.parent.inode, &src.name, &tl.inode, false)?;
        dst.parent
            .inode
            .ops
            .insert(&dst.parent.inode, &dst.name, &victim.inode, false)?;
        crate::vfs::inotify::renamed(
            &src.parent.inode,
            &src.name,
            &dst.parent.inode,
            &dst.name,
            &victim.inode,
            None,
        );
        crate::vfs::inotify::renamed(
            &dst.parent.inode,
            &dst.name,
            &src.parent.inode,
            &src.name,
            &tl.inode,
            None,
        );
        return Ok(0);
    }
    src.parent.inode.ops.remove(&src.parent.inode, &src.name)?;
    let replaced =
        dst.parent
            .inode
            .ops
            .insert(&dst.parent.inode, &dst.name, &victim.inode, true)?;
    if let Some(r) = &replaced {
        drop_link(r);
    }
    victim.inode.touch(false, false, true);
    crate::vfs::inotify::renamed(
        &src.parent.inode,
        &src.name,
        &dst.parent.inode,
        &dst.name,
        &victim.inode,
        replaced.as_ref(),
    );
    Ok(0)
}

pub fn readlink(t: &mut Task, path: UserPath, buf: OutBuf, size: i32) -> SysResult {
    readlinkat(t, Fd(libc::AT_FDCWD), path, buf, size)
}

pub fn readlinkat(t: &mut Task, dirfd: Fd, path: UserPath, buf: OutBuf, size: i32) -> SysResult {
    let p = read_path(t, path.0)?;
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let loc = lookup_at(t, dirfd.0, &p, false, true)?;
    if !loc.inode.is_symlink() {
        return Err(Errno::EINVAL);
    }
    let target = loc.inode.ops.readlink(t, &loc.inode)?;
    let n = target.len().min(size as usize);
    t.mm.copy_out(buf.0, &target[..n])?;
    loc.inode.touch_atime();
    Ok(n as u64)
}

/// A directory the caller may search: what chdir, fchdir and chroot
/// accept.
fn searchable_dir(t: &Task, loc: Location) -> Result<Location, Errno> {
    if !loc.inode.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    perm::check(&t.creds, &loc.inode.meta(), MAY_EXEC)?;
    Ok(loc)
}

pub fn chdir(t: &mut Task, path: UserPath) -> SysResult {
    let p = read_path(t, path.0)?;
    let loc = searchable_dir(t, lookup_at(t, libc::AT_FDCWD, &p, true, false)?)?;
    t.fs.locked().cwd = loc;
    Ok(0)
}

pub fn fchdir(t: &mut Task, fd: Fd) -> SysResult {
    let f = t.fds.get(fd.0)?;
    let loc = searchable_dir(t, f.location.clone().ok_or(Errno::ENOTDIR)?)?;
    t.fs.locked().cwd = loc;
    Ok(0)
}

/// CAP_SYS_CHROOT.
const CAP_SYS_CHROOT: u32 = 18;

pub fn chroot(t: &mut Task, path: UserPath) -> SysResult {
    let p = read_path(t, path.0)?;
    let loc = searchable_dir(t, lookup_at(t, libc::AT_FDCWD, &p, true, false)?)?;
    if !t.creds.has_cap(CAP_SYS_CHROOT) {
        return Err(Errno::EPERM);
    }
    t.fs.locked().root = loc;
    Ok(0)
}

pub fn getcwd(t: &mut Task, buf: OutBuf, size: usize) -> SysResult {
    let fs = t.fs.locked().clone();
    let mut path = fs.mounts.path(&fs.cwd, &fs.root);
    // A working directory outside the root (after chroot) or removed is
    // shown as Linux does.
    let reachable = {
        let mut cur = fs.cwd.clone();
        let w = Walker::with_context(t, fs.clone());
        let mut ok = false;
        for _ in 0..4096 {
            if cur.same(&fs.root) {
                ok = true;
                break;
            }
            let up = w.dotdot(cur.clone());
            if up.same(&cur) {
                break;
            }
            cur = up;
        }
        ok
    };
    if !reachable {
        let mut p = b"(unreachable)".to_vec();
        p.extend_from_slice(&path);
        path = p;
    } else if fs.cwd.inode.meta().nlink == 0 {
        return Err(Errno::ENOENT);
    }
    path.push(0);
    if size < path.len() {
        return Err(Errno::ERANGE);
    }
    t.mm.copy_out(buf.0, &path)?;
    Ok(path.len() as u64)
}
