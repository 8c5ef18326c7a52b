//! Socket syscalls: socket, socketpair, bind, listen, connect, accept,
//! accept4, shutdown, getsockname, getpeername, sendto, recvfrom, sendmsg,
//! recvmsg, sendmmsg, recvmmsg, getsockopt, setsockopt; and read/write on
//! sockets. One set for every family: each call finds the socket of its
//! fd and dispatches to its family (`fsimpl::socket`). What every family
//! shares is here: sockaddr copies, the msghdr, control messages (parsed
//! on send, delivered on receive).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::errno::Errno;

use super::fs::read_iovecs;
use super::{Fd, Hex, SysResult, UserAddr};
use crate::fsimpl::socket::{
    self, Control, GuestIo, Received, RecvArgs, SendArgs, Socket, Ucred, OPTMEM_MAX,
};
use crate::kernel::compat::Unsupported;
use crate::kernel::task::Task;
use crate::vfs::FileDescription;

/// `sizeof(struct sockaddr_storage)`.
const SOCKADDR_STORAGE: usize = 128;
const SOCK_TYPE_MASK: i32 = 0xf;
/// AF_MAX and SOCK_MAX of Linux 6.
const NPROTO: i32 = 46;
const SOCK_MAX: i32 = 11;
const UIO_MAXIOV: usize = 1024;
const MSG_CMSG_CLOEXEC: i32 = libc::MSG_CMSG_CLOEXEC;
const MSG_CMSG_COMPAT: i32 = i32::MIN;
const MSG_WAITFORONE: i32 = libc::MSG_WAITFORONE;
const SCM_RIGHTS: i32 = libc::SCM_RIGHTS;
const SCM_CREDENTIALS: i32 = libc::SCM_CREDENTIALS;
/// `sizeof(struct cmsghdr)`.
const CMSG_HDR: usize = 16;

fn cmsg_align(n: usize) -> usize {
    n.div_ceil(8) * 8
}

fn nofile(t: &Task) -> u64 {
    t.tg.limits
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .cur(libc::RLIMIT_NOFILE)
}

/// The socket of `fd`: EBADF, ENOTSOCK.
fn sock_of(t: &Task, fd: Fd) -> Result<(Arc<FileDescription>, Arc<dyn Socket>), Errno> {
    let f = t.fds.get(fd.0)?;
    let s = f.imp.socket().ok_or(Errno::ENOTSOCK)?;
    Ok((f, s))
}

/// Whether `fd` is a socket (write(2)'s EPIPE raises SIGPIPE in the
/// family, not in the generic write path).
pub fn is_socket(t: &Task, fd: i32) -> bool {
    t.fds.get(fd).is_ok_and(|f| f.imp.socket().is_some())
}

/// `move_addr_to_kernel`: EINVAL for a length past sockaddr_storage.
fn read_sockaddr(t: &Task, addr: u64, len: i32) -> Result<Vec<u8>, Errno> {
    if len < 0 || len as usize > SOCKADDR_STORAGE {
        return Err(Errno::EINVAL);
    }
    let mut v = vec![0u8; len as usize];
    if len > 0 {
        t.mm.copy_in(addr, &mut v)?;
    }
    Ok(v)
}

/// `move_addr_to_user`: copies what fits of `kaddr` and writes its whole
/// length to `*ulen`.
fn write_sockaddr(t: &Task, kaddr: &[u8], uaddr: u64, ulen: u64) -> Result<(), Errno> {
    let len: i32 = t.mm.read_obj(ulen)?;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let n = (len as usize).min(kaddr.len());
    if n > 0 {
        t.mm.copy_out(uaddr, &kaddr[..n])?;
    }
    t.mm.write_obj(ulen, &(kaddr.len() as i32))
}

/// Whether a free fd below the limit exists (accept reserves one before
/// it waits).
fn fd_available(t: &Task) -> bool {
    let limit = nofile(t);
    (t.fds
        .open_fds()
        .iter()
        .filter(|&&fd| (fd as u64) < limit)
        .count() as u64)
        < limit
}

fn install(t: &Task, file: Arc<FileDescription>, cloexec: bool) -> Result<i32, Errno> {
    let limit = nofile(t);
    t.fds.install(file, cloexec, 0, limit).map_err(|e| {
        if e == Errno::EINVAL {
            Errno::EMFILE
        } else {
            e
        }
    })
}

/// The type argument: the type and the file flags (SOCK_NONBLOCK,
/// SOCK_CLOEXEC); EINVAL for other flags.
fn split_type(ty: i32) -> Result<(i32, u32, bool), Errno> {
    let flags = ty & !SOCK_TYPE_MASK;
    if flags & !(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok((
        ty & SOCK_TYPE_MASK,
        (flags & libc::SOCK_NONBLOCK) as u32,
        flags & libc::SOCK_CLOEXEC != 0,
    ))
}

/// `sock_create`'s range checks.
fn check_family_type(family: i32, ty: i32) -> Result<(), Errno> {
    if !(0..NPROTO).contains(&family) {
        return Err(Errno::EAFNOSUPPORT);
    }
    if !(0..SOCK_MAX).contains(&ty) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Socket types a family of the sentry does not have (families
/// themselves are reported by `socket::create`).
const SOCKET_TYPE: Unsupported = Unsupported {
    syscall: "socket",
    argument: "type",
    answer: Errno::ESOCKTNOSUPPORT,
};
/// Protocols a family of the sentry does not have.
const SOCKET_PROTOCOL: Unsupported = Unsupported {
    syscall: "socket",
    argument: "protocol",
    answer: Errno::EPROTONOSUPPORT,
};
/// Socket options outside SOL_SOCKET (whose own are reported by the
/// family): a level the socket does not take, or a name of a level it
/// takes that it does not know.
const SOCKOPT_UNSUPPORTED: [[Unsupported; 2]; 2] = [
    [
        Unsupported {
            syscall: "getsockopt",
            argument: "option",
            answer: Errno::EOPNOTSUPP,
        },
        Unsupported {
            syscall: "getsockopt",
            argument: "option",
            answer: Errno::ENOPROTOOPT,
        },
    ],
    [
        Unsupported {
            syscall: "setsockopt",
            argument: "option",
            answer: Errno::EOPNOTSUPP,
        },
        Unsupported {
            syscall: "setsockopt",
            argument: "option",
            answer: Errno::ENOPROTOOPT,
        },
    ],
];

/// Reports an option `getsockopt` (`set` false) or `setsockopt` refused
/// with `e`, if it is one of [`SOCKOPT_UNSUPPORTED`].
fn note_sockopt(t: &Task, set: bool, level: i32, name: i32, e: Errno) {
    if level == libc::SOL_SOCKET {
        return;
    }
    if let Some(u) = SOCKOPT_UNSUPPORTED[set as usize]
        .iter()
        .find(|u| u.answer == e)
    {
        u.note(t, format_args!("level {level} name {name}"));
    }
}

pub fn socket(t: &mut Task, family: i32, ty: i32, protocol: i32) -> SysResult {
    let (ty, nonblock, cloexec) = split_type(ty)?;
    check_family_type(family, ty)?;
    let s = socket::create(t, family, ty, protocol).inspect_err(|&e| {
        if e == SOCKET_TYPE.answer {
            SOCKET_TYPE.note(t, format_args!("{ty} of family {family}"));
        } else if e == SOCKET_PROTOCOL.answer {
            SOCKET_PROTOCOL.note(t, format_args!("{protocol} of family {family}"));
        }
    })?;
    let f = socket::new_file(s, nonblock);
    Ok(install(t, f, cloexec)? as u64)
}

pub fn socketpair(t: &mut Task, family: i32, ty: i32, protocol: i32, sv: UserAddr) -> SysResult {
    let (ty, nonblock, cloexec) = split_type(ty)?;
    if !fd_available(t) {
        return Err(Errno::EMFILE);
    }
    // The two fds are written before the sockets are made.
    let mut probe = [0u8; 8];
    t.mm.copy_in(sv.0, &mut probe)?;
    check_family_type(family, ty)?;
    if family != libc::AF_UNIX {
        // Only AF_UNIX has pairs; other families are not the sentry's.
        socket::create(t, family, ty, protocol)?;
        return Err(Errno::EOPNOTSUPP);
    }
    let (a, b) = socket::unix::UnixSocket::pair(t, ty, protocol)?;
    let fa = install(t, socket::new_file(a, nonblock), cloexec)?;
    let fb = match install(t, socket::new_file(b, nonblock), cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = t.fds.remove(fa);
            return Err(e);
        }
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&fa.to_ne_bytes());
    out[4..].copy_from_slice(&fb.to_ne_bytes());
    if let Err(e) = t.mm.copy_out(sv.0, &out) {
        let _ = t.fds.remove(fa);
        let _ = t.fds.remove(fb);
        return Err(e);
    }
    Ok(0)
}

pub fn bind(t: &mut Task, fd: Fd, addr: UserAddr, len: i32) -> SysResult {
    let (_f, s) = sock_of(t, fd)?;
    let a = read_sockaddr(t, addr.0, len)?;
    s.bind(t, &a)?;
    Ok(0)
}

pub fn listen(t: &mut Task, fd: Fd, backlog: i32) -> SysResult {
    let (_f, s) = sock_of(t, fd)?;
    s.listen(t, backlog)?;
    Ok(0)
}

pub fn connect(t: &mut Task, fd: Fd, addr: UserAddr, len: i32) -> SysResult {
    let (f, s) = sock_of(t, fd)?;
    let a = read_sockaddr(t, addr.0, len)?;
    s.connect(t, &a, f.nonblocking())?;
    Ok(0)
}

pub fn accept(t: &mut Task, fd: Fd, addr: UserAddr, len: UserAddr) -> SysResult {
    accept4(t, fd, addr, len, Hex(0))
}

pub fn accept4(t: &mut Task, fd: Fd, addr: UserAddr, len: UserAddr, flags: Hex) -> SysResult {
    let flags = flags.0 as i32;
    if flags & !(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let (f, s) = sock_of(t, fd)?;
    if !fd_available(t) {
        return Err(Errno::EMFILE);
    }
    let news = s.accept(t, f.nonblocking())?;
    let peer = news.peername().map_err(|_| Errno::ECONNABORTED)?;
    let file = socket::new_file(news, (flags & libc::SOCK_NONBLOCK) as u32);
    if addr.0 != 0 {
        write_sockaddr(t, &peer, addr.0, len.0)?;
    }
    Ok(install(t, file, flags & libc::SOCK_CLOEXEC != 0)? as u64)
}

pub fn shutdown(t: &mut Task, fd: Fd, how: i32) -> SysResult {
    let (_f, s) = sock_of(t, fd)?;
    s.shutdown(how)?;
    Ok(0)
}

pub fn getsockname(t: &mut Task, fd: Fd, addr: UserAddr, len: UserAddr) -> SysResult {
    let (_f, s) = sock_of(t, fd)?;
    let a = s.sockname();
    write_sockaddr(t, &a, addr.0, len.0)?;
    Ok(0)
}

pub fn getpeername(t: &mut Task, fd: Fd, addr: UserAddr, len: UserAddr) -> SysResult {
    let (_f, s) = sock_of(t, fd)?;
    let a = s.peername()?;
    write_sockaddr(t, &a, addr.0, len.0)?;
    Ok(0)
}

/// The MSG_DONTWAIT a non-blocking description adds.
fn with_nonblock(f: &FileDescription, flags: i32) -> i32 {
    if f.nonblocking() {
        flags | libc::MSG_DONTWAIT
    } else {
        flags
    }
}

/// A send of `iovs` on `s`.
fn do_send(
    t: &mut Task,
    s: &Arc<dyn Socket>,
    iovs: Vec<(u64, usize)>,
    addr: Option<Vec<u8>>,
    control: Control,
    flags: i32,
) -> SysResult {
    let mm = t.mm.clone();
    let mut src = GuestIo::new(&mm, iovs);
    let n = s.sendmsg(
        t,
        SendArgs {
            src: &mut src,
            addr,
            control,
            flags,
        },
    )?;
    Ok(n as u64)
}

/// A receive into `iovs` on `s`.
fn do_recv(
    t: &mut Task,
    s: &Arc<dyn Socket>,
    iovs: Vec<(u64, usize)>,
    flags: i32,
) -> Result<Received, Errno> {
    let mm = t.mm.clone();
    let mut dst = GuestIo::new(&mm, iovs);
    s.recvmsg(
        t,
        RecvArgs {
            dst: &mut dst,
            flags,
        },
    )
}

/// read(2) and readv(2) on a socket (`sock_read_iter`): nothing to read
/// is 0 at once.
pub fn read(
    t: &mut Task,
    f: &FileDescription,
    s: &Arc<dyn Socket>,
    iovs: Vec<(u64, usize)>,
) -> SysResult {
    if iovs.iter().all(|v| v.1 == 0) {
        return Ok(0);
    }
    let r = do_recv(t, s, iovs, with_nonblock(f, 0))?;
    Ok(r.len as u64)
}

/// write(2) and writev(2) on a socket (`sock_write_iter`).
pub fn write(
    t: &mut Task,
    f: &FileDescription,
    s: &Arc<dyn Socket>,
    iovs: Vec<(u64, usize)>,
) -> SysResult {
    let mut flags = with_nonblock(f, 0);
    if s.sock_type() == libc::SOCK_SEQPACKET {
        flags |= libc::MSG_EOR;
    }
    do_send(t, s, iovs, None, Control::default(), flags)
}

pub fn sendto(
    t: &mut Task,
    fd: Fd,
    buf: UserAddr,
    len: usize,
    flags: i32,
    addr: UserAddr,
    addrlen: i32,
) -> SysResult {
    let len = len.min(0x7fff_f000);
    if !super::fs::access_ok(buf.0, len as u64) {
        return Err(Errno::EFAULT);
    }
    let (f, s) = sock_of(t, fd)?;
    let a = if addr.0 != 0 {
        Some(read_sockaddr(t, addr.0, addrlen)?)
    } else {
        None
    };
    do_send(
        t,
        &s,
        vec![(buf.0, len)],
        a,
        Control::default(),
        with_nonblock(&f, flags),
    )
}

pub fn recvfrom(
    t: &mut Task,
    fd: Fd,
    buf: UserAddr,
    len: usize,
    flags: i32,
    addr: UserAddr,
    addrlen: UserAddr,
) -> SysResult {
    let len = len.min(0x7fff_f000);
    if !super::fs::access_ok(buf.0, len as u64) {
        return Err(Errno::EFAULT);
    }
    let (f, s) = sock_of(t, fd)?;
    let r = do_recv(t, &s, vec![(buf.0, len)], with_nonblock(&f, flags))?;
    if addr.0 != 0 {
        let a = r.addr.clone().unwrap_or_default();
        write_sockaddr(t, &a, addr.0, addrlen.0)?;
    }
    Ok(r.len as u64)
}

/// A `struct msghdr` as the guest passed it.
struct MsgHdr {
    name: u64,
    namelen: i32,
    iov: u64,
    iovlen: u64,
    control: u64,
    controllen: u64,
}

fn read_msghdr(t: &Task, addr: u64) -> Result<MsgHdr, Errno> {
    let mut b = [0u8; 56];
    t.mm.copy_in(addr, &mut b)?;
    let u = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap());
    let mut h = MsgHdr {
        name: u(0),
        namelen: i32::from_ne_bytes(b[8..12].try_into().unwrap()),
        iov: u(16),
        iovlen: u(24),
        control: u(32),
        controllen: u(40),
    };
    if h.name == 0 {
        h.namelen = 0;
    }
    if h.namelen < 0 {
        return Err(Errno::EINVAL);
    }
    h.namelen = h.namelen.min(SOCKADDR_STORAGE as i32);
    if h.iovlen > UIO_MAXIOV as u64 {
        return Err(Errno::EMSGSIZE);
    }
    Ok(h)
}

/// `__scm_send`: SCM_RIGHTS and SCM_CREDENTIALS of a send's control
/// data.
fn parse_control(t: &Task, s: &Arc<dyn Socket>, ctl: &[u8]) -> Result<Control, Errno> {
    let mut c = Control::default();
    let mut off = 0usize;
    while off + CMSG_HDR <= ctl.len() {
        let len = u64::from_ne_bytes(ctl[off..off + 8].try_into().unwrap()) as usize;
        let level = i32::from_ne_bytes(ctl[off + 8..off + 12].try_into().unwrap());
        let ty = i32::from_ne_bytes(ctl[off + 12..off + 16].try_into().unwrap());
        if len < CMSG_HDR || len > ctl.len() - off {
            return Err(Errno::EINVAL);
        }
        if level == libc::SOL_SOCKET {
            let data = &ctl[off + CMSG_HDR..off + len];
            match ty {
                SCM_RIGHTS => {
                    if !s.passes_fds() {
                        return Err(Errno::EINVAL);
                    }
                    let num = data.len() / 4;
                    if num > 0 {
                        if c.fds.len() + num > socket::unix::SCM_MAX_FD {
                            return Err(Errno::EINVAL);
                        }
                        for i in 0..num {
                            let fd = i32::from_ne_bytes(data[i * 4..i * 4 + 4].try_into().unwrap());
                            c.fds.push(t.fds.get(fd)?);
                        }
                    }
                }
                SCM_CREDENTIALS => {
                    if len != CMSG_HDR + 12 {
                        return Err(Errno::EINVAL);
                    }
                    let cr = Ucred {
                        pid: i32::from_ne_bytes(data[..4].try_into().unwrap()),
                        uid: u32::from_ne_bytes(data[4..8].try_into().unwrap()),
                        gid: u32::from_ne_bytes(data[8..12].try_into().unwrap()),
                    };
                    check_creds(t, &cr)?;
                    if cr.pid != t.tg.tgid && t.kernel.tasks.lock().live(cr.pid).is_none() {
                        return Err(Errno::ESRCH);
                    }
                    if cr.uid == u32::MAX || cr.gid == u32::MAX {
                        return Err(Errno::EINVAL);
                    }
                    c.creds = Some(cr);
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        let next = off + cmsg_align(len);
        if next + CMSG_HDR > ctl.len() {
            break;
        }
        off = next;
    }
    Ok(c)
}

/// `scm_check_creds`: a sender may claim its own pid and ids, or others
/// with CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID.
fn check_creds(t: &Task, c: &Ucred) -> Result<(), Errno> {
    use crate::kernel::creds::{CAP_SETGID, CAP_SETUID};
    let k = &t.creds;
    let pid_ok = c.pid == t.tg.tgid || k.has_cap(21);
    let uid_ok = [k.uid, k.euid, k.suid].contains(&c.uid) || k.has_cap(CAP_SETUID);
    let gid_ok = [k.gid, k.egid, k.sgid].contains(&c.gid) || k.has_cap(CAP_SETGID);
    if pid_ok && uid_ok && gid_ok {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// One `sendmsg` of the header at `msg`.
fn send_one(
    t: &mut Task,
    f: &FileDescription,
    s: &Arc<dyn Socket>,
    msg: u64,
    flags: i32,
) -> SysResult {
    let h = read_msghdr(t, msg)?;
    let addr = if h.namelen > 0 {
        Some(read_sockaddr(t, h.name, h.namelen)?)
    } else {
        None
    };
    let iovs = read_iovecs(t, h.iov, h.iovlen as i32)?;
    if h.controllen > i32::MAX as u64 {
        return Err(Errno::ENOBUFS);
    }
    let control = if h.controllen > 0 {
        if h.controllen as usize > OPTMEM_MAX {
            return Err(Errno::ENOBUFS);
        }
        let mut ctl = vec![0u8; h.controllen as usize];
        t.mm.copy_in(h.control, &mut ctl)?;
        parse_control(t, s, &ctl)?
    } else {
        Control::default()
    };
    do_send(t, s, iovs, addr, control, with_nonblock(f, flags))
}

pub fn sendmsg(t: &mut Task, fd: Fd, msg: UserAddr, flags: i32) -> SysResult {
    let (f, s) = sock_of(t, fd)?;
    if flags & MSG_CMSG_COMPAT != 0 {
        return Err(Errno::EINVAL);
    }
    send_one(t, &f, &s, msg.0, flags)
}

pub fn sendmmsg(t: &mut Task, fd: Fd, vec: UserAddr, vlen: u32, flags: i32) -> SysResult {
    let vlen = (vlen as usize).min(UIO_MAXIOV);
    let (f, s) = sock_of(t, fd)?;
    if flags & MSG_CMSG_COMPAT != 0 {
        return Err(Errno::EINVAL);
    }
    let mut sent = 0usize;
    while sent < vlen {
        let entry = vec.0 + sent as u64 * 64;
        let r = send_one(t, &f, &s, entry, flags).and_then(|n| {
            t.mm.write_obj(entry + 56, &(n as u32))?;
            Ok(n)
        });
        match r {
            Ok(_) => sent += 1,
            Err(e) => {
                if sent > 0 {
                    break;
                }
                return Err(e);
            }
        }
    }
    Ok(sent as u64)
}

/// Writes one control message (`put_cmsg`); returns the bytes it took
/// of the buffer, and whether it was cut short.
fn put_cmsg(t: &Task, at: u64, left: usize, ty: i32, data: &[u8]) -> (usize, bool) {
    if left < CMSG_HDR {
        return (0, true);
    }
    let mut cmlen = CMSG_HDR + data.len();
    let mut trunc = false;
    if left < cmlen {
        trunc = true;
        cmlen = left;
    }
    let mut b = Vec::with_capacity(cmlen);
    b.extend_from_slice(&(cmlen as u64).to_ne_bytes());
    b.extend_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
    b.extend_from_slice(&ty.to_ne_bytes());
    b.extend_from_slice(&data[..cmlen - CMSG_HDR]);
    if t.mm.copy_out(at, &b).is_err() {
        return (0, trunc);
    }
    (cmsg_align(CMSG_HDR + data.len()).min(left), trunc)
}

/// `scm_recv`: delivers credentials, then files, into the control buffer
/// `[control, control+len)`; returns the bytes used and MSG_CTRUNC when
/// something did not fit.
fn deliver_control(t: &Task, control: u64, len: usize, r: Received, flags: i32) -> (usize, i32) {
    if control == 0 {
        return (0, if r.had_control { libc::MSG_CTRUNC } else { 0 });
    }
    let mut used = 0usize;
    let mut out_flags = 0;
    if let Some(c) = r.creds {
        let (n, trunc) = put_cmsg(t, control, len, SCM_CREDENTIALS, &c.to_bytes());
        used += n;
        if trunc {
            out_flags |= libc::MSG_CTRUNC;
        }
    }
    if !r.fds.is_empty() {
        let left = len - used;
        let at = control + used as u64;
        let fdmax = if left <= CMSG_HDR {
            0
        } else {
            (left - CMSG_HDR) / 4
        }
        .min(r.fds.len());
        let count = r.fds.len();
        let cloexec = flags & MSG_CMSG_CLOEXEC != 0;
        let mut installed = 0usize;
        for f in r.fds.into_iter().take(fdmax) {
            let Ok(fd) = install(t, f, cloexec) else {
                break;
            };
            if t.mm
                .write_obj(at + (CMSG_HDR + installed * 4) as u64, &fd)
                .is_err()
            {
                let _ = t.fds.remove(fd);
                break;
            }
            installed += 1;
        }
        if installed > 0 {
            let cmlen = CMSG_HDR + installed * 4;
            let mut h = Vec::with_capacity(CMSG_HDR);
            h.extend_from_slice(&(cmlen as u64).to_ne_bytes());
            h.extend_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
            h.extend_from_slice(&SCM_RIGHTS.to_ne_bytes());
            if t.mm.copy_out(at, &h).is_ok() {
                used += cmsg_align(cmlen).min(left);
            }
        }
        if installed < count || (count > 0 && fdmax == 0) {
            out_flags |= libc::MSG_CTRUNC;
        }
    }
    (used, out_flags)
}

/// One `recvmsg` into the header at `msg`: the bytes received.
fn recv_one(
    t: &mut Task,
    f: &FileDescription,
    s: &Arc<dyn Socket>,
    msg: u64,
    flags: i32,
) -> SysResult {
    let h = read_msghdr(t, msg)?;
    let iovs = read_iovecs(t, h.iov, h.iovlen as i32)?;
    let r = do_recv(t, s, iovs, with_nonblock(f, flags))?;
    let n = r.len;
    if h.name != 0 {
        let a = r.addr.clone().unwrap_or_default();
        write_sockaddr(t, &a, h.name, msg + 8)?;
    }
    let rflags = r.flags;
    let (used, cflags) = deliver_control(t, h.control, h.controllen as usize, r, flags);
    let out_flags = (flags & MSG_CMSG_CLOEXEC) | rflags | cflags;
    t.mm.write_obj(msg + 48, &out_flags)?;
    t.mm.write_obj(msg + 40, &(used as u64))?;
    Ok(n as u64)
}

pub fn recvmsg(t: &mut Task, fd: Fd, msg: UserAddr, flags: i32) -> SysResult {
    let (f, s) = sock_of(t, fd)?;
    if flags & MSG_CMSG_COMPAT != 0 {
        return Err(Errno::EINVAL);
    }
    recv_one(t, &f, &s, msg.0, flags)
}

pub fn recvmmsg(
    t: &mut Task,
    fd: Fd,
    vec: UserAddr,
    vlen: u32,
    flags: i32,
    timeout: UserAddr,
) -> SysResult {
    if flags & MSG_CMSG_COMPAT != 0 {
        return Err(Errno::EINVAL);
    }
    let end = if timeout.0 != 0 {
        let ts: libc::timespec = t.mm.read_obj(timeout.0)?;
        if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        let d = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        Some(
            Instant::now()
                .checked_add(d)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86400)),
        )
    } else {
        None
    };
    let vlen = (vlen as usize).min(UIO_MAXIOV);
    let (f, s) = sock_of(t, fd)?;
    if flags & libc::MSG_ERRQUEUE == 0 {
        if let Some(e) = s.take_error() {
            return Err(e);
        }
    }
    let mut flags = flags;
    let mut got = 0usize;
    let mut err = None;
    while got < vlen {
        let entry = vec.0 + got as u64 * 64;
        let r = recv_one(t, &f, &s, entry, flags & !MSG_WAITFORONE).and_then(|n| {
            t.mm.write_obj(entry + 56, &(n as u32))?;
            Ok(n)
        });
        if let Err(e) = r {
            err = Some(e);
            break;
        }
        got += 1;
        if flags & MSG_WAITFORONE != 0 {
            flags |= libc::MSG_DONTWAIT;
        }
        if let Some(end) = end {
            if Instant::now() >= end {
                break;
            }
        }
    }
    if let Some(end) = end {
        let left = end.saturating_duration_since(Instant::now());
        let ts = libc::timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        if err.is_none() || got > 0 {
            t.mm.write_obj(timeout.0, &ts)?;
        }
    }
    match err {
        None => Ok(got as u64),
        Some(e) if got == 0 => Err(e),
        // The error is kept for the next call, as Linux keeps it.
        Some(_) => Ok(got as u64),
    }
}

pub fn getsockopt(
    t: &mut Task,
    fd: Fd,
    level: i32,
    name: i32,
    val: UserAddr,
    lenp: UserAddr,
) -> SysResult {
    let (_f, s) = sock_of(t, fd)?;
    let len: i32 = t.mm.read_obj(lenp.0)?;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let v = s
        .getsockopt(t, level, name, len as usize)
        .inspect_err(|&e| note_sockopt(t, false, level, name, e))?;
    let n = v.len().min(len as usize);
    t.mm.copy_out(val.0, &v[..n])?;
    t.mm.write_obj(lenp.0, &(n as i32))?;
    Ok(0)
}

pub fn setsockopt(
    t: &mut Task,
    fd: Fd,
    level: i32,
    name: i32,
    val: UserAddr,
    len: i32,
) -> SysResult {
    let (_f, s) = sock_of(t, fd)?;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let len = (len as usize).min(4096);
    let mut v = vec![0u8; len];
    if len >= 4 || level != libc::SOL_SOCKET {
        t.mm.copy_in(val.0, &mut v)?;
    }
    s.setsockopt(t, level, name, &v)
        .inspect_err(|&e| note_sockopt(t, true, level, name, e))?;
    Ok(0)
}
