//! POSIX message queues: mq_open, mq_unlink, mq_timedsend,
//! mq_timedreceive, mq_notify, mq_getsetattr. The queues are files of the
//! namespace's mqueue file system (`fsimpl::mqueue`); a descriptor is an
//! open file of one, and any open file of one is a descriptor.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Fd, Hex, Mode, SysResult, UserAddr, UserPath};
use crate::errno::Errno;
use crate::fsimpl::mqueue::{location, mqueue_fs, queue_of, MqDir};
use crate::kernel::ipc::mqueue::{
    Notification, Queue, MQ_PRIO_MAX, SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD,
};
use crate::kernel::signal::SigInfo;
use crate::kernel::task::Task;
use crate::kernel::waiter::ALL_EVENTS;
use crate::vfs::perm::{self, MAY_EXEC, MAY_READ, MAY_WRITE};
use crate::vfs::FileDescription;

/// si_code of a message queue notification.
const SI_MESGQ: i32 = -3;
/// NAME_MAX.
const NAME_MAX: usize = 255;

/// `struct mq_attr`: flags, maxmsg, msgsize, curmsgs, 4 reserved.
fn attr_bytes(flags: i64, maxmsg: i64, msgsize: i64, curmsgs: i64) -> [u8; 64] {
    let mut b = [0u8; 64];
    for (i, v) in [flags, maxmsg, msgsize, curmsgs].iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    b
}

fn attr_field(b: &[u8; 64], i: usize) -> i64 {
    i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap())
}

/// Checks a queue name as Linux's `getname` and `lookup_noperm` do: not
/// empty (ENOENT), no slash, not "." or "..", at most NAME_MAX.
fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name.contains(&b'/') || name == b"." || name == b".." {
        return Err(Errno::EACCES);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

fn root_dir(inode: &Arc<crate::vfs::inode::Inode>) -> &MqDir {
    inode
        .ops
        .as_any()
        .downcast_ref::<MqDir>()
        .expect("the mqueue root")
}

pub fn mq_open(t: &mut Task, name: UserPath, oflag: Hex, mode: Mode, attr: UserAddr) -> SysResult {
    let oflag = oflag.0 as u32;
    let attr = if attr.0 != 0 {
        let mut b = [0u8; 64];
        t.mm.copy_in(attr.0, &mut b)?;
        Some(b)
    } else {
        None
    };
    let name = super::file::read_path(t, name.0)?;
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    let limit = t.tg.limits.lock().unwrap().cur(libc::RLIMIT_NOFILE);
    if t.fds.open_fds().len() as u64 >= limit {
        return Err(Errno::EMFILE);
    }
    check_name(&name)?;
    let (_, root, _) = mqueue_fs(t);
    let dir = root_dir(&root);
    let o = |f: i32| oflag & f as u32 != 0;
    let inode = match dir.lookup_name(&name) {
        None => {
            if !o(libc::O_CREAT) {
                return Err(Errno::ENOENT);
            }
            perm::check(&t.creds, &root.meta(), MAY_WRITE | MAY_EXEC)?;
            let umask = *t.tg.umask.lock().unwrap();
            let attr = attr.map(|b| (attr_field(&b, 1), attr_field(&b, 2)));
            let q = dir.create_queue(t, &root, &name, mode.0 & !umask & 0o7777, attr)?;
            crate::vfs::inotify::created(&root, &name, &q);
            q
        }
        Some(inode) => {
            if o(libc::O_CREAT) && o(libc::O_EXCL) {
                return Err(Errno::EEXIST);
            }
            let acc = oflag & libc::O_ACCMODE as u32;
            let want = match acc {
                0 => MAY_READ,
                1 => MAY_WRITE,
                2 => MAY_READ | MAY_WRITE,
                _ => return Err(Errno::EINVAL),
            };
            perm::check(&t.creds, &inode.meta(), want)?;
            inode
        }
    };
    let imp = inode.ops.open(t, &inode, oflag)?;
    let dropped =
        (libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_TRUNC | libc::O_CLOEXEC) as u32;
    let flags = (oflag & !dropped) | super::file::O_LARGEFILE;
    let desc = FileDescription::new_at(flags, imp, Some(location(t, inode)));
    // Queue descriptors are always close-on-exec (Linux's do_mq_open).
    let fd = t.fds.install(desc.clone(), true, 0, limit)?;
    crate::vfs::inotify::opened(&desc);
    Ok(fd as u64)
}

pub fn mq_unlink(t: &mut Task, name: UserPath) -> SysResult {
    let name = super::file::read_path(t, name.0)?;
    check_name(&name)?;
    let (_, root, _) = mqueue_fs(t);
    let dir = root_dir(&root);
    let Some(inode) = dir.lookup_name(&name) else {
        return Err(Errno::ENOENT);
    };
    perm::check(&t.creds, &root.meta(), MAY_WRITE | MAY_EXEC)?;
    if !perm::may_delete_sticky(&t.creds, &root.meta(), &inode.meta()) {
        return Err(Errno::EPERM);
    }
    use crate::vfs::inode::InodeOps;
    let removed = dir.remove(&root, &name)?;
    {
        let mut m = removed.meta.lock().unwrap();
        m.nlink = 0;
        m.ctime = crate::vfs::inode::Timespec::now();
    }
    crate::vfs::inotify::removed(&root, &name, &removed);
    Ok(0)
}

/// The queue of descriptor `fd`: EBADF if it is none.
fn queue(t: &Task, fd: Fd) -> Result<(Arc<FileDescription>, Arc<Queue>), Errno> {
    let f = t.fds.get(fd.0)?;
    let q = queue_of(&f).ok_or(Errno::EBADF)?;
    Ok((f, q))
}

/// An absolute CLOCK_REALTIME timeout, checked as Linux's
/// `prepare_timeout` does.
fn read_timeout(t: &Task, addr: u64) -> Result<Option<Instant>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let ts: libc::timespec = t.mm.read_obj(addr)?;
    if ts.tv_nsec < 0 || ts.tv_nsec >= 1_000_000_000 || ts.tv_sec < 0 {
        return Err(Errno::EINVAL);
    }
    let abs = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Ok(Some(Instant::now() + abs.saturating_sub(now)))
}

/// Touches the queue's times, as a send or receive does.
fn touch(f: &FileDescription) {
    if let Some(l) = &f.location {
        l.inode.touch(true, true, true);
    }
}

pub fn mq_timedsend(
    t: &mut Task,
    fd: Fd,
    msg: UserAddr,
    len: usize,
    prio: u32,
    timeout: UserAddr,
) -> SysResult {
    let deadline = read_timeout(t, timeout.0)?;
    if prio >= MQ_PRIO_MAX {
        return Err(Errno::EINVAL);
    }
    let (f, q) = queue(t, fd)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    if len as u64 > q.msgsize as u64 {
        return Err(Errno::EMSGSIZE);
    }
    let mut data = vec![0u8; len];
    t.mm.copy_in(msg.0, &mut data)?;
    let mut data = Some(data);
    let waitq = q.waitq.clone();
    let nonblock = f.nonblocking();
    let delivery = t.block_on(&[(&waitq, ALL_EVENTS)], deadline, |_| {
        match q.send(data.take().expect("kept until sent"), prio) {
            Ok(d) => Some(Ok(d)),
            Err(_) if nonblock => Some(Err(Errno::EAGAIN)),
            Err(back) => {
                data = Some(back);
                None
            }
        }
    })?;
    touch(&f);
    if let Some(d) = delivery {
        let tg = t.kernel.tasks.lock().live(d.tgid).map(|p| p.tg.clone());
        if let Some(tg) = tg {
            let mut b = [0u8; 128];
            b[0..4].copy_from_slice(&d.signo.to_le_bytes());
            b[8..12].copy_from_slice(&SI_MESGQ.to_le_bytes());
            b[16..20].copy_from_slice(&t.tg.tgid.to_le_bytes());
            b[20..24].copy_from_slice(&t.creds.uid.to_le_bytes());
            b[24..32].copy_from_slice(&d.value.to_le_bytes());
            t.kernel.send_group_signal(&tg, SigInfo::from_bytes(&b));
        }
    }
    Ok(0)
}

pub fn mq_timedreceive(
    t: &mut Task,
    fd: Fd,
    msg: UserAddr,
    len: usize,
    prio: UserAddr,
    timeout: UserAddr,
) -> SysResult {
    let deadline = read_timeout(t, timeout.0)?;
    let (f, q) = queue(t, fd)?;
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    if (len as u64) < q.msgsize as u64 {
        return Err(Errno::EMSGSIZE);
    }
    let nonblock = f.nonblocking();
    let waitq = q.waitq.clone();
    let _receiving = (!nonblock).then(|| q.receiving());
    let (data, p) = t.block_on(&[(&waitq, ALL_EVENTS)], deadline, |_| match q.receive() {
        Some(m) => Some(Ok(m)),
        None if nonblock => Some(Err(Errno::EAGAIN)),
        None => None,
    })?;
    touch(&f);
    if prio.0 != 0 {
        t.mm.write_obj(prio.0, &p)?;
    }
    t.mm.copy_out(msg.0, &data)?;
    Ok(data.len() as u64)
}

pub fn mq_notify(t: &mut Task, fd: Fd, sevp: UserAddr) -> SysResult {
    let n = if sevp.0 != 0 {
        // struct sigevent: value (8), signo (4), notify (4), then the
        // union (thread id, or function and attributes).
        let mut b = [0u8; 64];
        t.mm.copy_in(sevp.0, &mut b)?;
        let value = u64::from_le_bytes(b[0..8].try_into().unwrap());
        let signo = i32::from_le_bytes(b[8..12].try_into().unwrap());
        let notify = i32::from_le_bytes(b[12..16].try_into().unwrap());
        if notify != SIGEV_NONE && notify != SIGEV_SIGNAL && notify != SIGEV_THREAD {
            return Err(Errno::EINVAL);
        }
        if notify == SIGEV_SIGNAL && !(0..=64).contains(&signo) {
            return Err(Errno::EINVAL);
        }
        if notify == SIGEV_THREAD {
            // Linux reads the 32-byte cookie, then wants a netlink socket
            // at `signo`. The sandbox has no netlink sockets, so the fd is
            // bad (EBADF), not a socket (ENOTSOCK) or another family's
            // socket (EINVAL), as Linux answers for those.
            t.kernel
                .note_unimplemented("mq_notify SIGEV_THREAD (netlink)");
            let mut cookie = [0u8; 32];
            t.mm.copy_in(value, &mut cookie)?;
            let f = t.fds.get(signo)?;
            let is_socket = f
                .stat()
                .is_ok_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFSOCK);
            return Err(if is_socket {
                Errno::EINVAL
            } else {
                Errno::ENOTSOCK
            });
        }
        Some(Notification {
            tgid: t.tg.tgid,
            notify,
            signo,
            value,
        })
    } else {
        None
    };
    let (f, q) = queue(t, fd)?;
    let changed = n.is_some();
    q.set_notify(n, t.tg.tgid)?;
    if changed {
        if let Some(l) = &f.location {
            l.inode.touch(true, false, true);
        }
    }
    Ok(0)
}

pub fn mq_getsetattr(t: &mut Task, fd: Fd, new: UserAddr, old: UserAddr) -> SysResult {
    let new = if new.0 != 0 {
        let mut b = [0u8; 64];
        t.mm.copy_in(new.0, &mut b)?;
        Some(b)
    } else {
        None
    };
    if let Some(b) = &new {
        if attr_field(b, 0) & !(libc::O_NONBLOCK as i64) != 0 {
            return Err(Errno::EINVAL);
        }
    }
    let (f, q) = queue(t, fd)?;
    let was = attr_bytes(
        (f.flags() & libc::O_NONBLOCK as u32) as i64,
        q.maxmsg,
        q.msgsize,
        q.curmsgs(),
    );
    if let Some(b) = &new {
        let nb = attr_field(b, 0) as u32 & libc::O_NONBLOCK as u32;
        f.set_status_flags((f.flags() & !(libc::O_NONBLOCK as u32)) | nb);
        if let Some(l) = &f.location {
            l.inode.touch(true, false, true);
        }
    }
    if old.0 != 0 {
        t.mm.copy_out(old.0, &was)?;
    }
    Ok(0)
}
