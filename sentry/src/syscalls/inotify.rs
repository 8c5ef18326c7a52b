//! inotify: inotify_init, inotify_init1, inotify_add_watch,
//! inotify_rm_watch (the instances and the hooks are `vfs::inotify`).

use super::{Fd, Hex, SysResult, UserPath};
use crate::errno::Errno;
use crate::kernel::task::Task;
use crate::vfs::inotify::{
    self, InotifyFile, IN_ALL_EVENTS, IN_DONT_FOLLOW, IN_EXCL_UNLINK, IN_IGNORED, IN_ISDIR,
    IN_MASK_ADD, IN_MASK_CREATE, IN_ONESHOT, IN_ONLYDIR, IN_Q_OVERFLOW, IN_UNMOUNT,
};
use crate::vfs::perm::{self, MAY_READ};
use crate::vfs::FileDescription;

/// Every bit inotify_add_watch knows.
const ALL_INOTIFY_BITS: u32 = IN_ALL_EVENTS
    | IN_UNMOUNT
    | IN_Q_OVERFLOW
    | IN_IGNORED
    | IN_ISDIR
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
    | IN_MASK_ADD
    | IN_MASK_CREATE
    | IN_ONESHOT;

pub fn inotify_init(t: &mut Task) -> SysResult {
    inotify_init1(t, Hex(0))
}

pub fn inotify_init1(t: &mut Task, flags: Hex) -> SysResult {
    let flags = flags.0 as i32;
    if flags & !(libc::IN_CLOEXEC | libc::IN_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let inst = inotify::new_instance(t)?;
    let mut fl = libc::O_RDONLY as u32;
    if flags & libc::IN_NONBLOCK != 0 {
        fl |= libc::O_NONBLOCK as u32;
    }
    let file = FileDescription::new(fl, Box::new(InotifyFile { inst }));
    let limit = crate::kernel::task::lock_limits(&t.tg).cur(libc::RLIMIT_NOFILE);
    let fd = t
        .fds
        .install(file, flags & libc::IN_CLOEXEC != 0, 0, limit)?;
    Ok(fd as u64)
}

pub fn inotify_add_watch(t: &mut Task, fd: Fd, path: UserPath, mask: u32) -> SysResult {
    if mask & IN_MASK_ADD != 0 && mask & IN_MASK_CREATE != 0 {
        return Err(Errno::EINVAL);
    }
    if mask & ALL_INOTIFY_BITS == 0 {
        return Err(Errno::EINVAL);
    }
    let f = t.fds.get(fd.0)?;
    let inst = f.imp.inotify().ok_or(Errno::EINVAL)?;
    let p = super::file::read_path(t, path.0)?;
    let loc = super::file::lookup_at(t, libc::AT_FDCWD, &p, mask & IN_DONT_FOLLOW == 0, false)?;
    if mask & IN_ONLYDIR != 0 && !loc.inode.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    perm::check(&t.creds, &loc.inode.meta(), MAY_READ)?;
    let wd = inotify::add_watch(t, &inst, &loc.inode, mask)?;
    Ok(wd as u64)
}

pub fn inotify_rm_watch(t: &mut Task, fd: Fd, wd: i32) -> SysResult {
    let f = t.fds.get(fd.0)?;
    let inst = f.imp.inotify().ok_or(Errno::EINVAL)?;
    inotify::rm_watch(&inst, wd)?;
    Ok(0)
}
