//! The socket layer: one object model for every address family.
//!
//! A socket is a [`Socket`] (one implementation a family: `unix.rs` for
//! AF_UNIX; the IP families plug in the same way, on the sandbox's stack
//! or, with `--network=host`, as host sockets in `hostinet.rs`) behind a [`SocketFile`],
//! the open file description's implementation. The socket syscalls
//! (`syscalls/socket.rs`) find the socket of an fd with
//! [`FileImpl::socket`] and call the trait; what is common to every family
//! (sockaddr copies, the msghdr, control messages and their delivery,
//! `read`/`write` as `recvmsg`/`sendmsg`) lives in the syscall layer and
//! here, what differs lives in the family.
//!
//! Data moves between guest memory and a family's queues through
//! [`Source`] and [`Sink`]: the family pulls exactly the bytes it takes
//! and pushes exactly the bytes it gives, so a send never copies more than
//! it queues and a receive never takes more than fits.

pub mod hostinet;
pub mod inet;
pub mod netlink;
pub mod tcp;
pub mod udp;
pub mod unix;

use std::any::Any;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::errno::Errno;
use crate::kernel::task::Task;
use crate::kernel::waiter::WaitQueue;
use crate::mm::MemoryManager;
use crate::vfs::inode::{Filesystem, Inode, InodeMeta, InodeOps};
use crate::vfs::{FileDescription, FileImpl, VfsState};

/// `struct ucred`: who sent a message or made a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

impl Ucred {
    /// The kernel's 12 bytes.
    pub fn to_bytes(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&self.pid.to_ne_bytes());
        b[4..8].copy_from_slice(&self.uid.to_ne_bytes());
        b[8..].copy_from_slice(&self.gid.to_ne_bytes());
        b
    }
}

/// Control data of a message being sent (SCM_RIGHTS, SCM_CREDENTIALS),
/// checked by the syscall layer.
#[derive(Default)]
pub struct Control {
    /// The files of SCM_RIGHTS, in order.
    pub fds: Vec<Arc<FileDescription>>,
    /// SCM_CREDENTIALS as the sender gave them.
    pub creds: Option<Ucred>,
}

/// What a receive hands back besides the bytes.
#[derive(Default)]
pub struct Received {
    /// The syscall's value: bytes copied, or the whole datagram's length
    /// with MSG_TRUNC.
    pub len: usize,
    /// MSG_TRUNC, MSG_EOR, ... for msg_flags.
    pub flags: i32,
    /// The sender's address (for msg_name / recvfrom), if it has one.
    pub addr: Option<Vec<u8>>,
    /// Credentials to deliver (SCM_CREDENTIALS), when the socket asks.
    pub creds: Option<Ucred>,
    /// Files to deliver (SCM_RIGHTS).
    pub fds: Vec<Arc<FileDescription>>,
    /// The socket would deliver control data (credentials, files): a
    /// receive without a control buffer reports MSG_CTRUNC.
    pub had_control: bool,
}

/// Where a send's bytes come from.
pub trait Source {
    /// Bytes left to take.
    fn remaining(&self) -> usize;
    /// Takes the next `n` bytes (at most [`remaining`](Self::remaining));
    /// EFAULT when the guest memory is not readable.
    fn take(&mut self, n: usize) -> Result<Vec<u8>, Errno>;
    /// Takes the next `buf.len()` bytes (at most
    /// [`remaining`](Self::remaining)) into `buf`, without a copy between.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), Errno> {
        let v = self.take(buf.len())?;
        buf[..v.len()].copy_from_slice(&v);
        Ok(())
    }
}

/// Where a receive's bytes go.
pub trait Sink {
    /// Room left.
    fn room(&self) -> usize;
    /// Puts `data` (at most [`room`](Self::room) bytes); EFAULT when the
    /// guest memory is not writable.
    fn put(&mut self, data: &[u8]) -> Result<(), Errno>;
}

/// Guest iovecs, as a source or a sink.
pub struct GuestIo<'a> {
    mm: &'a MemoryManager,
    iovs: Vec<(u64, usize)>,
    /// The current segment and the offset in it.
    seg: usize,
    off: usize,
    left: usize,
}

impl<'a> GuestIo<'a> {
    pub fn new(mm: &'a MemoryManager, iovs: Vec<(u64, usize)>) -> GuestIo<'a> {
        let left = iovs.iter().map(|v| v.1).sum();
        GuestIo {
            mm,
            iovs,
            seg: 0,
            off: 0,
            left,
        }
    }

    /// Walks `n` bytes of the vector, calling `f(addr, len, pos)` for each
    /// piece (`pos`: where the piece starts in the `n` bytes).
    fn walk(
        &mut self,
        n: usize,
        mut f: impl FnMut(u64, usize, usize) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let mut done = 0;
        while done < n {
            let (base, len) = self.iovs[self.seg];
            let k = (len - self.off).min(n - done);
            if k > 0 {
                f(base + self.off as u64, k, done)?;
            }
            done += k;
            self.off += k;
            if self.off == len {
                self.seg += 1;
                self.off = 0;
            }
        }
        self.left -= n;
        Ok(())
    }
}

impl Source for GuestIo<'_> {
    fn remaining(&self) -> usize {
        self.left
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), Errno> {
        let n = buf.len().min(self.left);
        let mm = self.mm;
        self.walk(n, |addr, len, pos| {
            mm.copy_in(addr, &mut buf[pos..pos + len])
        })
    }

    fn take(&mut self, n: usize) -> Result<Vec<u8>, Errno> {
        let n = n.min(self.left);
        let mut out = vec![0u8; n];
        let mm = self.mm;
        self.walk(n, |addr, len, pos| {
            mm.copy_in(addr, &mut out[pos..pos + len])
        })?;
        Ok(out)
    }
}

impl Sink for GuestIo<'_> {
    fn room(&self) -> usize {
        self.left
    }

    fn put(&mut self, data: &[u8]) -> Result<(), Errno> {
        let n = data.len().min(self.left);
        let mm = self.mm;
        self.walk(n, |addr, len, pos| mm.copy_out(addr, &data[pos..pos + len]))
    }
}

/// A sentry buffer, as a source or a sink (read and write of a socket
/// through the generic file paths: splice, sendfile).
pub struct BufIo<'a> {
    buf: BufKind<'a>,
    pos: usize,
}

enum BufKind<'a> {
    In(&'a [u8]),
    Out(&'a mut [u8]),
}

impl<'a> BufIo<'a> {
    pub fn source(b: &'a [u8]) -> BufIo<'a> {
        BufIo {
            buf: BufKind::In(b),
            pos: 0,
        }
    }

    pub fn sink(b: &'a mut [u8]) -> BufIo<'a> {
        BufIo {
            buf: BufKind::Out(b),
            pos: 0,
        }
    }

    fn len(&self) -> usize {
        match &self.buf {
            BufKind::In(b) => b.len(),
            BufKind::Out(b) => b.len(),
        }
    }
}

impl Source for BufIo<'_> {
    fn remaining(&self) -> usize {
        self.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<Vec<u8>, Errno> {
        let n = n.min(self.remaining());
        let BufKind::In(b) = &self.buf else {
            return Err(Errno::EFAULT);
        };
        let v = b[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(v)
    }
}

impl Sink for BufIo<'_> {
    fn room(&self) -> usize {
        self.len() - self.pos
    }

    fn put(&mut self, data: &[u8]) -> Result<(), Errno> {
        let n = data.len().min(self.room());
        let pos = self.pos;
        let BufKind::Out(b) = &mut self.buf else {
            return Err(Errno::EFAULT);
        };
        b[pos..pos + n].copy_from_slice(&data[..n]);
        self.pos += n;
        Ok(())
    }
}

/// A send: bytes, an address (sendto, msg_name), control data and the
/// MSG_* flags (MSG_DONTWAIT already set for a non-blocking description).
pub struct SendArgs<'a> {
    pub src: &'a mut dyn Source,
    pub addr: Option<Vec<u8>>,
    pub control: Control,
    pub flags: i32,
}

/// A receive: where the bytes go, the MSG_* flags (MSG_DONTWAIT already
/// set for a non-blocking description).
pub struct RecvArgs<'a> {
    pub dst: &'a mut dyn Sink,
    pub flags: i32,
}

/// One family's socket. Calls may block (through the task) unless the
/// description is non-blocking or MSG_DONTWAIT is given; they return
/// ERESTARTSYS when a signal interrupts a wait that has no timeout, and
/// EINTR when it has one (Linux's `sock_intr_errno`).
pub trait Socket: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    /// AF_*.
    fn family(&self) -> i32;
    /// SOCK_STREAM, SOCK_DGRAM, ...
    fn sock_type(&self) -> i32;
    /// SO_PROTOCOL.
    fn protocol(&self) -> i32 {
        0
    }
    /// The socket's inode in the sandbox's socket file system (fstat,
    /// `socket:[INO]`).
    fn inode(&self) -> &Arc<Inode>;
    fn bind(&self, t: &mut Task, addr: &[u8]) -> Result<(), Errno>;
    fn listen(&self, t: &mut Task, backlog: i32) -> Result<(), Errno>;
    /// `nonblock`: the description's O_NONBLOCK.
    fn connect(&self, t: &mut Task, addr: &[u8], nonblock: bool) -> Result<(), Errno>;
    /// A new connection (its socket); `nonblock` is the listening
    /// description's O_NONBLOCK.
    fn accept(&self, t: &mut Task, nonblock: bool) -> Result<Arc<dyn Socket>, Errno>;
    /// SHUT_RD, SHUT_WR or SHUT_RDWR (checked by the caller).
    fn shutdown(&self, how: i32) -> Result<(), Errno>;
    /// getsockname: the address bytes.
    fn sockname(&self) -> Vec<u8>;
    /// getpeername: the peer's address bytes, or ENOTCONN.
    fn peername(&self) -> Result<Vec<u8>, Errno>;
    /// Sends; the bytes taken (a stream may take part of them before an
    /// error or a signal).
    fn sendmsg(&self, t: &mut Task, args: SendArgs<'_>) -> Result<usize, Errno>;
    fn recvmsg(&self, t: &mut Task, args: RecvArgs<'_>) -> Result<Received, Errno>;
    /// getsockopt: the value's bytes (the caller copies at most the
    /// guest's length); `len` is the guest's buffer length.
    fn getsockopt(&self, t: &mut Task, level: i32, name: i32, len: usize)
        -> Result<Vec<u8>, Errno>;
    fn setsockopt(&self, t: &mut Task, level: i32, name: i32, val: &[u8]) -> Result<(), Errno>;
    /// Socket ioctls (FIONREAD, SIOCOUTQ, ...); ENOTTY for others.
    fn ioctl(&self, t: &mut Task, request: u32, arg: u64) -> Result<u64, Errno>;
    /// poll's events now.
    fn readiness(&self, events: i16) -> i16;
    fn waitq(&self) -> Arc<WaitQueue>;
    /// A pending error (SO_ERROR), taken.
    fn take_error(&self) -> Option<Errno>;
    /// The last file description of the socket is gone.
    fn release(&self);
    /// Whether the family takes file descriptors in control messages
    /// (SCM_RIGHTS).
    fn passes_fds(&self) -> bool {
        false
    }
    /// A receive that never waits, for the generic file paths that have
    /// no task (splice, sendfile): EAGAIN when it would wait.
    fn read_nonblocking(&self, dst: &mut [u8]) -> Result<usize, Errno> {
        let _ = dst;
        Err(Errno::EINVAL)
    }
    /// A send that never waits (see [`read_nonblocking`](Self::read_nonblocking)).
    fn write_nonblocking(&self, src: &[u8]) -> Result<usize, Errno> {
        let _ = src;
        Err(Errno::EINVAL)
    }
}

/// The open file of a socket.
pub struct SocketFile {
    pub sock: Arc<dyn Socket>,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        self.sock.release();
    }
}

/// Makes the description of a new socket (`flags`: O_NONBLOCK, with
/// O_RDWR added).
pub fn new_file(sock: Arc<dyn Socket>, flags: u32) -> Arc<FileDescription> {
    FileDescription::new(
        libc::O_RDWR as u32 | (flags & libc::O_NONBLOCK as u32),
        Box::new(SocketFile { sock }),
    )
}

impl FileImpl for SocketFile {
    /// A receive that never waits: read(2) and write(2) reach sockets
    /// through the socket syscall layer, which has the task; the generic
    /// paths without one (splice, sendfile) get EAGAIN and wait on the
    /// socket's queue themselves.
    fn read(
        &self,
        _file: &FileDescription,
        dst: &mut [u8],
        _offset: Option<u64>,
    ) -> Result<usize, Errno> {
        self.sock.read_nonblocking(dst)
    }

    fn write(
        &self,
        _file: &FileDescription,
        src: &[u8],
        _offset: Option<u64>,
    ) -> Result<usize, Errno> {
        self.sock.write_nonblocking(src)
    }

    fn positional(&self, _file: &FileDescription) -> bool {
        false
    }

    fn seek(&self, _file: &FileDescription, _offset: i64, _whence: i32) -> Result<u64, Errno> {
        Err(Errno::ESPIPE)
    }

    fn stat(&self, _file: &FileDescription) -> Result<libc::stat, Errno> {
        Ok(self.sock.inode().stat())
    }

    fn ioctl(
        &self,
        _file: &FileDescription,
        t: &mut Task,
        request: u32,
        arg: u64,
    ) -> Result<u64, Errno> {
        self.sock.ioctl(t, request, arg)
    }

    fn readiness(&self, _file: &FileDescription, events: i16) -> i16 {
        self.sock.readiness(events)
    }

    fn waitq(&self, _file: &FileDescription) -> Option<Arc<WaitQueue>> {
        Some(self.sock.waitq())
    }

    fn name(&self) -> String {
        format!("socket:[{}]", self.sock.inode().ino)
    }

    fn supports_async(&self) -> bool {
        true
    }

    fn inode(&self) -> Option<Arc<Inode>> {
        Some(self.sock.inode().clone())
    }

    fn socket(&self) -> Option<Arc<dyn Socket>> {
        Some(self.sock.clone())
    }
}

/// The sandbox's socket state: its socket file system (the inodes of
/// sockets) and each family's namespaces.
#[derive(Default)]
pub struct SocketState {
    sockfs: OnceLock<Arc<Filesystem>>,
    /// AF_UNIX: bound names (file system and abstract), every socket for
    /// /proc/net/unix, in-flight files and their collection.
    pub unix: unix::UnixState,
    /// The TCP/IP stack (AF_INET, AF_INET6), made at boot or at first use.
    net: OnceLock<Arc<crate::net::NetStack>>,
}

/// The inode of a socket: it has no operations (opening a socket through
/// /proc/PID/fd is ENXIO).
struct SockInode;

impl InodeOps for SockInode {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Linux's sockfs magic.
const SOCKFS_MAGIC: i64 = 0x534F_434B;

impl SocketState {
    /// The sandbox's TCP/IP stack.
    pub fn net(&self) -> &Arc<crate::net::NetStack> {
        self.net
            .get_or_init(|| crate::net::NetStack::new(crate::net::NetBoot::default()))
    }

    /// Makes the stack with the interfaces runsc took over (at boot,
    /// before any socket).
    pub fn init_net(&self, boot: crate::net::NetBoot) {
        let _ = self.net.set(crate::net::NetStack::new(boot));
    }

    /// A new socket's inode: S_IFSOCK|0777, owned by the caller's fs ids.
    pub fn new_inode(&self, vfs: &VfsState, uid: u32, gid: u32) -> Arc<Inode> {
        let fs = self
            .sockfs
            .get_or_init(|| Filesystem::new(vfs, "sockfs", "sockfs", SOCKFS_MAGIC, ""));
        Inode::new(
            fs,
            InodeMeta::new(libc::S_IFSOCK | 0o777, uid, gid),
            Box::new(SockInode),
        )
    }
}

// ----- Options and values every family shares -----

/// Linux's net.core.wmem_default, wmem_max, rmem_default, rmem_max (the
/// defaults of a kernel of its own: the sandbox has no sysctls for them).
pub const WMEM_DEFAULT: u32 = 212_992;
pub const WMEM_MAX: u32 = 212_992;
pub const RMEM_DEFAULT: u32 = 212_992;
pub const RMEM_MAX: u32 = 212_992;
/// SOCK_MIN_SNDBUF and SOCK_MIN_RCVBUF (from the size of Linux's sk_buff).
pub const SOCK_MIN_SNDBUF: u32 = 4608;
pub const SOCK_MIN_RCVBUF: u32 = 2304;
/// net.core.somaxconn.
pub const SOMAXCONN: i32 = 4096;
/// net.core.optmem_max: the most control data a send takes.
pub const OPTMEM_MAX: usize = 131_072;

/// The kernel's timer frequency, to which socket timeouts are rounded.
const HZ: u64 = 250;

/// SO_RCVTIMEO / SO_SNDTIMEO as Linux keeps them: None for no timeout,
/// else a number of jiffies (0: do not wait at all).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeout(pub Option<u64>);

impl Timeout {
    /// `sock_set_timeout` from a `struct timeval` (16 bytes): EINVAL when
    /// short, EDOM for microseconds out of range; negative seconds mean
    /// "do not wait".
    pub fn from_timeval(v: &[u8]) -> Result<Timeout, Errno> {
        if v.len() < 16 {
            return Err(Errno::EINVAL);
        }
        let sec = i64::from_ne_bytes(v[..8].try_into().unwrap());
        let usec = i64::from_ne_bytes(v[8..16].try_into().unwrap());
        if !(0..1_000_000).contains(&usec) {
            return Err(Errno::EDOM);
        }
        if sec < 0 {
            return Ok(Timeout(Some(0)));
        }
        if sec == 0 && usec == 0 {
            return Ok(Timeout(None));
        }
        let max = (i64::MAX as u64) / HZ - 1;
        if (sec as u64) >= max {
            return Ok(Timeout(None));
        }
        Ok(Timeout(Some(
            sec as u64 * HZ + (usec as u64).div_ceil(1_000_000 / HZ),
        )))
    }

    /// `sock_get_timeout`: the timeval bytes.
    pub fn to_timeval(self) -> [u8; 16] {
        let (sec, usec) = match self.0 {
            None => (0, 0),
            Some(j) => ((j / HZ) as i64, ((j % HZ) * 1_000_000 / HZ) as i64),
        };
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&sec.to_ne_bytes());
        b[8..].copy_from_slice(&usec.to_ne_bytes());
        b
    }

    /// How long a wait may last: None forever, Some(ZERO) not at all.
    pub fn duration(self) -> Option<Duration> {
        self.0
            .map(|j| Duration::from_nanos(j.saturating_mul(1_000_000_000 / HZ)))
    }
}

/// `sock_set_sndbuf`-style: `val` (as an unsigned, limited to `max`)
/// doubled, at least `min`.
pub fn buf_size(val: i32, max: u32, min: u32, force: bool) -> u32 {
    let v = if force {
        val.max(0) as u32
    } else {
        (val as u32).min(max)
    };
    let v = v.min(i32::MAX as u32 / 2);
    (v * 2).max(min)
}

/// An int option's value as getsockopt returns it.
pub fn int_val(v: i32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// An int option's value as setsockopt gets it (at least 4 bytes, else
/// EINVAL).
pub fn get_int(v: &[u8]) -> Result<i32, Errno> {
    if v.len() < 4 {
        return Err(Errno::EINVAL);
    }
    Ok(i32::from_ne_bytes(v[..4].try_into().unwrap()))
}

/// Creates a socket of `family`: AF_UNIX is the sentry's; every other
/// family answers EAFNOSUPPORT (logged), never a host socket.
pub fn create(t: &mut Task, family: i32, ty: i32, protocol: i32) -> Result<Arc<dyn Socket>, Errno> {
    match family {
        libc::AF_UNIX => unix::UnixSocket::create(t, ty, protocol),
        libc::AF_INET | libc::AF_INET6 => inet_create(t, family, ty, protocol),
        libc::AF_NETLINK => netlink::NetlinkSocket::create(t, ty, protocol),
        _ => {
            t.kernel.note_unsupported(
                &format!("socket family {}", family_name(family)),
                "EAFNOSUPPORT",
            );
            Err(Errno::EAFNOSUPPORT)
        }
    }
}

/// An IP socket: TCP and UDP are the stack's (or, with `--network=host`,
/// the host's); ICMP, raw sockets and the other protocols are not built
/// (logged).
fn inet_create(
    t: &mut Task,
    family: i32,
    ty: i32,
    protocol: i32,
) -> Result<Arc<dyn Socket>, Errno> {
    let icmp = matches!(
        (ty, protocol),
        (libc::SOCK_DGRAM, libc::IPPROTO_ICMP | libc::IPPROTO_ICMPV6)
    );
    if !icmp && t.kernel.sockets.net().mode == crate::net::NetworkMode::Host {
        return hostinet::create(t, family, ty, protocol);
    }
    match (ty, protocol) {
        (libc::SOCK_STREAM, 0 | libc::IPPROTO_TCP) => Ok(tcp::TcpSocket::create(t, family)),
        (libc::SOCK_DGRAM, 0 | libc::IPPROTO_UDP) => Ok(udp::UdpSocket::create(t, family)),
        (libc::SOCK_DGRAM, libc::IPPROTO_ICMP | libc::IPPROTO_ICMPV6) => {
            // ICMP echo sockets are for the groups of
            // net.ipv4.ping_group_range, which admits none (Linux's
            // default), so every caller gets Linux's EACCES.
            let (lo, hi) = PING_GROUP_RANGE;
            let gid = t.creds.egid;
            if lo <= gid && gid <= hi {
                t.kernel
                    .note_unsupported("ICMP echo (ping) sockets", "EPROTONOSUPPORT");
                return Err(Errno::EPROTONOSUPPORT);
            }
            Err(Errno::EACCES)
        }
        (libc::SOCK_RAW, _) if !t.creds.has_cap(CAP_NET_RAW) => Err(Errno::EPERM),
        (libc::SOCK_STREAM | libc::SOCK_DGRAM | libc::SOCK_RAW, p) => {
            t.kernel.note_unsupported(
                &format!("socket {} type {ty} protocol {p}", family_name(family)),
                "EPROTONOSUPPORT",
            );
            Err(Errno::EPROTONOSUPPORT)
        }
        _ => Err(Errno::ESOCKTNOSUPPORT),
    }
}

const CAP_NET_RAW: u32 = 13;

/// net.ipv4.ping_group_range: the groups that may open ICMP echo
/// sockets. Linux's default, an empty range, fixed in the sandbox.
pub const PING_GROUP_RANGE: (u32, u32) = (1, 0);

/// A name for a family, for the log.
fn family_name(family: i32) -> String {
    match family {
        libc::AF_INET => "AF_INET".into(),
        libc::AF_INET6 => "AF_INET6".into(),
        libc::AF_NETLINK => "AF_NETLINK".into(),
        libc::AF_PACKET => "AF_PACKET".into(),
        libc::AF_VSOCK => "AF_VSOCK".into(),
        libc::AF_ALG => "AF_ALG".into(),
        n => format!("{n}"),
    }
}
