//! IP sockets of the host (`--network=host`): AF_INET and AF_INET6,
//! SOCK_STREAM and SOCK_DGRAM, each a host socket the sentry owns and
//! works on for the guest, as gVisor's hostinet does.
//!
//! The host socket is non-blocking and watched by the sentry's host event
//! loop ([`HostEvents`]): its readiness wakes the socket's wait queue,
//! which is what poll, epoll and blocked calls wait on. The guest's
//! blocking semantics (SO_RCVTIMEO, SO_SNDTIMEO, MSG_WAITALL, a blocking
//! connect) are made here by waiting on that queue; signals interrupt the
//! waits as they do any other socket's.
//!
//! What reaches the host is narrow: the guest's bytes and addresses (as
//! checked sockaddrs of the socket's family), the flags this module
//! translates, and the options of [`HOST_SET_OPTS`] and
//! [`HOST_GET_OPTS`]; never control data, never a file. The sentry's
//! seccomp filter allows the host socket calls only in this mode, and
//! only with these options (`confine::host_net_rules`).

use std::any::Any;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use parking_lot::Mutex;

use super::inet::{self, SO_RCVTIMEO_NEW, SO_SNDTIMEO_NEW};
use super::{get_int, int_val, Received, RecvArgs, SendArgs, Socket, Timeout, SOMAXCONN};
use crate::errno::Errno;
use crate::kernel::task::Task;
use crate::kernel::waiter::WaitQueue;
use crate::vfs::host::HostEvents;
use crate::vfs::inode::Inode;

/// The options a guest may set on its host socket, (level, name).
pub const HOST_SET_OPTS: &[(i32, i32)] = &[
    (libc::SOL_SOCKET, libc::SO_REUSEADDR),
    (libc::SOL_SOCKET, libc::SO_REUSEPORT),
    (libc::SOL_SOCKET, libc::SO_KEEPALIVE),
    (libc::SOL_SOCKET, libc::SO_LINGER),
    (libc::SOL_SOCKET, libc::SO_RCVBUF),
    (libc::SOL_SOCKET, libc::SO_SNDBUF),
    (libc::SOL_SOCKET, libc::SO_BROADCAST),
    (libc::SOL_SOCKET, libc::SO_RCVLOWAT),
    (libc::SOL_TCP, libc::TCP_NODELAY),
    (libc::SOL_TCP, libc::TCP_CORK),
    (libc::SOL_TCP, libc::TCP_KEEPIDLE),
    (libc::SOL_TCP, libc::TCP_KEEPINTVL),
    (libc::SOL_TCP, libc::TCP_KEEPCNT),
    (libc::SOL_TCP, libc::TCP_USER_TIMEOUT),
    (libc::SOL_TCP, libc::TCP_QUICKACK),
    (libc::SOL_IP, libc::IP_TOS),
    (libc::SOL_IP, libc::IP_TTL),
    (libc::SOL_IPV6, libc::IPV6_V6ONLY),
    (libc::SOL_IPV6, libc::IPV6_TCLASS),
    (libc::SOL_IPV6, libc::IPV6_UNICAST_HOPS),
];

/// The options a guest may read from its host socket beyond
/// [`HOST_SET_OPTS`].
pub const HOST_GET_OPTS: &[(i32, i32)] = &[
    (libc::SOL_SOCKET, libc::SO_ERROR),
    (libc::SOL_SOCKET, libc::SO_ACCEPTCONN),
    (libc::SOL_TCP, libc::TCP_INFO),
    (libc::SOL_TCP, libc::TCP_MAXSEG),
];

/// The socket types of [`create`] as the host socket is made: always
/// non-blocking and close-on-exec.
pub const HOST_STREAM: i32 = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
pub const HOST_DGRAM: i32 = libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;

/// SIOCOUTQ (TIOCOUTQ): bytes not yet acknowledged (TCP) or sent (UDP).
pub const SIOCOUTQ: u64 = 0x5411;

/// The largest piece a send or a receive moves through the sentry at once.
const CHUNK: usize = 256 * 1024;
/// The largest datagram (IP's 16-bit length).
const MAX_DATAGRAM: usize = 65_535;
/// The most option bytes passed to or read from the host.
const MAX_OPT: usize = 256;
/// SOCK_STREAM flags of a send the host gets as they are.
const SEND_FLAGS: i32 = libc::MSG_MORE | libc::MSG_EOR | libc::MSG_CONFIRM;

/// What the sentry keeps of a host socket.
struct St {
    rcvtimeo: Timeout,
    sndtimeo: Timeout,
    /// A connect the host answered EINPROGRESS and no one has seen end.
    connecting: bool,
}

/// One host socket.
pub struct HostSocket {
    family: i32,
    ty: i32,
    protocol: i32,
    fd: OwnedFd,
    inode: Arc<Inode>,
    events: Arc<HostEvents>,
    watch_id: u64,
    queue: Arc<WaitQueue>,
    st: Mutex<St>,
}

/// Makes a host socket for the guest's `socket(family, ty, protocol)`
/// (`ty` without its flags): TCP and UDP of AF_INET and AF_INET6 only.
/// Every other protocol is refused here, never asked of the host.
pub fn create(t: &mut Task, family: i32, ty: i32, protocol: i32) -> Result<Arc<dyn Socket>, Errno> {
    let (host_ty, proto) = match (ty, protocol) {
        (libc::SOCK_STREAM, 0 | libc::IPPROTO_TCP) => (HOST_STREAM, libc::IPPROTO_TCP),
        (libc::SOCK_DGRAM, 0 | libc::IPPROTO_UDP) => (HOST_DGRAM, libc::IPPROTO_UDP),
        (libc::SOCK_RAW, _) => {
            t.kernel.note_unsupported(
                "raw IP socket with --network=host (not passed to the host)",
                "EPERM",
            );
            return Err(Errno::EPERM);
        }
        (libc::SOCK_STREAM | libc::SOCK_DGRAM, p) => {
            t.kernel.note_unsupported(
                &format!("host socket type {ty} protocol {p}"),
                "EPROTONOSUPPORT",
            );
            return Err(Errno::EPROTONOSUPPORT);
        }
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    let fd = host::socket(family, host_ty)?;
    Ok(HostSocket::wrap(t, family, ty, proto, fd))
}

impl HostSocket {
    fn wrap(t: &Task, family: i32, ty: i32, protocol: i32, fd: OwnedFd) -> Arc<dyn Socket> {
        let inode = t
            .kernel
            .sockets
            .new_inode(&t.kernel.vfs, t.creds.fsuid, t.creds.fsgid);
        let events = t.kernel.host_events.clone();
        // A socket is always something epoll can watch; should the host
        // refuse, the queue is never woken by the host and waits end only
        // by their timeouts and signals, which is logged.
        let (watch_id, queue) = match events.watch(fd.as_raw_fd()) {
            Some((_, id, q)) => (id, q),
            None => {
                tracing::warn!("hostinet: the host event loop cannot watch a host socket");
                (0, Arc::new(WaitQueue::default()))
            }
        };
        Arc::new(HostSocket {
            family,
            ty,
            protocol,
            fd,
            inode,
            events,
            watch_id,
            queue,
            st: Mutex::new(St {
                rcvtimeo: Timeout(None),
                sndtimeo: Timeout(None),
                connecting: false,
            }),
        })
    }

    fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Whether the host socket shows one of `events` (or an error or a
    /// hangup) now.
    fn ready(&self, events: i16) -> bool {
        host::poll(self.raw(), events) & (events | libc::POLLERR | libc::POLLHUP) != 0
    }

    /// Waits until the host socket shows `events` (see [`inet::wait`]).
    fn wait(&self, t: &mut Task, events: i16, timeo: Timeout) -> Result<(), Errno> {
        let q = self.queue.clone();
        inet::wait(t, &q, timeo, || self.ready(events))
    }

    /// The guest's address as the host takes it: checked for the
    /// socket's family by the rules of the sentry's own sockets, then
    /// written out anew (an IPv6 address keeps its flow label and scope).
    fn host_addr(&self, b: &[u8], for_bind: bool) -> Result<Vec<u8>, Errno> {
        let a = if for_bind {
            Some(inet::parse_bind(self.family, b)?)
        } else {
            inet::parse(self.family, b)?
        };
        let Some(a) = a else {
            // AF_UNSPEC: connect's disconnect.
            let mut u = vec![0u8; inet::SOCKADDR_IN];
            u[..2].copy_from_slice(&(libc::AF_UNSPEC as u16).to_ne_bytes());
            return Ok(u);
        };
        let mut out = inet::format(self.family, a.ip, a.port);
        if self.family == libc::AF_INET6 {
            out[4..8].copy_from_slice(&b[4..8]);
            if b.len() >= inet::SOCKADDR_IN6 {
                out[24..28].copy_from_slice(&b[24..28]);
            }
        }
        Ok(out)
    }

    /// The pending error of the host socket (SO_ERROR, which clears it).
    fn host_error(&self) -> Option<Errno> {
        match host::getsockopt(self.raw(), libc::SOL_SOCKET, libc::SO_ERROR, 4) {
            Ok(v) if v.len() >= 4 => {
                let e = i32::from_ne_bytes(v[..4].try_into().unwrap());
                (e != 0).then(|| Errno::from_raw(e))
            }
            _ => None,
        }
    }

    /// The end of a blocking connect: wait for the host's answer, then
    /// take it from SO_ERROR.
    fn finish_connect(&self, t: &mut Task) -> Result<(), Errno> {
        let timeo = self.st.lock().sndtimeo;
        match self.wait(t, libc::POLLOUT, timeo) {
            Ok(()) => {}
            // Linux's inet_stream_connect: a timed-out blocking connect
            // goes on in the background, EINPROGRESS for the caller.
            Err(Errno::EAGAIN) => return Err(Errno::EINPROGRESS),
            Err(e) => return Err(e),
        }
        self.st.lock().connecting = false;
        match self.host_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// EPIPE raises SIGPIPE unless MSG_NOSIGNAL, as for the sentry's
    /// own sockets.
    fn broken_pipe(t: &mut Task, flags: i32) -> Errno {
        if flags & libc::MSG_NOSIGNAL == 0 {
            t.raise(libc::SIGPIPE);
        }
        Errno::EPIPE
    }

    fn send_stream(&self, t: &mut Task, args: SendArgs<'_>) -> Result<usize, Errno> {
        let SendArgs { src, flags, .. } = args;
        let nonblock = flags & libc::MSG_DONTWAIT != 0;
        let timeo = if nonblock {
            Timeout(Some(0))
        } else {
            self.st.lock().sndtimeo
        };
        let host_flags = (flags & SEND_FLAGS) | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        let mut done = 0usize;
        // Bytes taken from the guest and not yet taken by the host (a
        // short host send); the count the guest sees is what the host took.
        let mut pending: Vec<u8> = Vec::new();
        let mut off = 0usize;
        loop {
            if off == pending.len() {
                if src.remaining() == 0 && done > 0 {
                    return Ok(done);
                }
                pending = match src.take(src.remaining().min(CHUNK)) {
                    Ok(v) => v,
                    Err(e) => return if done > 0 { Ok(done) } else { Err(e) },
                };
                off = 0;
            }
            match host::send(self.raw(), &pending[off..], host_flags, None) {
                Ok(n) => {
                    done += n;
                    off += n;
                    if off == pending.len() && src.remaining() == 0 {
                        return Ok(done);
                    }
                    if off < pending.len() || n == 0 {
                        continue;
                    }
                }
                Err(Errno::EAGAIN) => {
                    if nonblock {
                        return if done > 0 {
                            Ok(done)
                        } else {
                            Err(Errno::EAGAIN)
                        };
                    }
                    if let Err(e) = self.wait(t, libc::POLLOUT, timeo) {
                        return if done > 0 { Ok(done) } else { Err(e) };
                    }
                }
                Err(Errno::EPIPE) => {
                    if done > 0 {
                        return Ok(done);
                    }
                    return Err(Self::broken_pipe(t, flags));
                }
                Err(e) => return if done > 0 { Ok(done) } else { Err(e) },
            }
        }
    }

    fn send_dgram(&self, t: &mut Task, args: SendArgs<'_>) -> Result<usize, Errno> {
        let SendArgs {
            src, flags, addr, ..
        } = args;
        if src.remaining() > MAX_DATAGRAM {
            return Err(Errno::EMSGSIZE);
        }
        let to = match &addr {
            Some(a) => Some(self.host_addr(a, false)?),
            None => None,
        };
        let data = src.take(src.remaining())?;
        let nonblock = flags & libc::MSG_DONTWAIT != 0;
        let timeo = if nonblock {
            Timeout(Some(0))
        } else {
            self.st.lock().sndtimeo
        };
        let host_flags = (flags & (libc::MSG_MORE | libc::MSG_CONFIRM))
            | libc::MSG_DONTWAIT
            | libc::MSG_NOSIGNAL;
        loop {
            match host::send(self.raw(), &data, host_flags, to.as_deref()) {
                Ok(n) => return Ok(n),
                Err(Errno::EAGAIN) if !nonblock => self.wait(t, libc::POLLOUT, timeo)?,
                Err(Errno::EPIPE) => return Err(Self::broken_pipe(t, flags)),
                Err(e) => return Err(e),
            }
        }
    }

    fn recv(&self, t: &mut Task, args: RecvArgs<'_>) -> Result<Received, Errno> {
        let RecvArgs { dst, flags } = args;
        if flags & libc::MSG_OOB != 0 {
            t.kernel
                .note_unsupported("MSG_OOB receive on a host socket", "EOPNOTSUPP");
            return Err(Errno::EOPNOTSUPP);
        }
        if flags & libc::MSG_ERRQUEUE != 0 {
            t.kernel
                .note_unsupported("MSG_ERRQUEUE on a host socket", "EOPNOTSUPP");
            return Err(Errno::EOPNOTSUPP);
        }
        let nonblock = flags & libc::MSG_DONTWAIT != 0;
        let timeo = if nonblock {
            Timeout(Some(0))
        } else {
            self.st.lock().rcvtimeo
        };
        let stream = self.ty == libc::SOCK_STREAM;
        let host_flags = (flags & (libc::MSG_PEEK | libc::MSG_TRUNC)) | libc::MSG_DONTWAIT;
        let waitall = stream && flags & libc::MSG_WAITALL != 0 && flags & libc::MSG_PEEK == 0;
        let want = dst.room();
        let mut done = 0usize;
        // What a stream read that stops early answers: the bytes it got,
        // or the error when it got none.
        let partial = |done: usize, e: Errno| {
            if done > 0 {
                Ok(Received {
                    len: done,
                    ..Default::default()
                })
            } else {
                Err(e)
            }
        };
        let most = if stream {
            want.min(CHUNK)
        } else {
            want.min(MAX_DATAGRAM)
        };
        let mut buf = vec![0u8; most];
        loop {
            let cap = if stream { most.min(want - done) } else { most };
            match host::recv(self.raw(), &mut buf[..cap], host_flags) {
                Ok((n, rflags, from)) => {
                    // A stream's MSG_TRUNC discards on the host; a
                    // datagram's gives its whole length.
                    let copy = n.min(cap);
                    if !(stream && flags & libc::MSG_TRUNC != 0) {
                        if let Err(e) = dst.put(&buf[..copy]) {
                            return partial(done, e);
                        }
                    }
                    if !stream {
                        return Ok(Received {
                            len: n,
                            flags: rflags & libc::MSG_TRUNC,
                            addr: from,
                            ..Default::default()
                        });
                    }
                    done += n;
                    if n == 0 || !waitall || done >= want {
                        return Ok(Received {
                            len: done,
                            ..Default::default()
                        });
                    }
                }
                Err(Errno::EAGAIN) => {
                    if nonblock || (done > 0 && !waitall) {
                        return partial(done, Errno::EAGAIN);
                    }
                    if let Err(e) = self.wait(t, libc::POLLIN, timeo) {
                        return partial(done, e);
                    }
                }
                Err(e) => return partial(done, e),
            }
        }
    }
}

impl Drop for HostSocket {
    fn drop(&mut self) {
        if self.watch_id != 0 {
            self.events.unwatch(self.raw(), self.watch_id);
        }
    }
}

impl Socket for HostSocket {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn family(&self) -> i32 {
        self.family
    }

    fn sock_type(&self) -> i32 {
        self.ty
    }

    fn protocol(&self) -> i32 {
        self.protocol
    }

    fn inode(&self) -> &Arc<Inode> {
        &self.inode
    }

    fn bind(&self, t: &mut Task, addr: &[u8]) -> Result<(), Errno> {
        let a = self.host_addr(addr, true)?;
        let port = u16::from_be_bytes([a[2], a[3]]);
        // The guest's own privilege for a low port, before the host's.
        if port != 0 && port < 1024 && !t.creds.has_cap(CAP_NET_BIND_SERVICE) {
            return Err(Errno::EACCES);
        }
        host::bind(self.raw(), &a)
    }

    fn listen(&self, _t: &mut Task, backlog: i32) -> Result<(), Errno> {
        if self.ty != libc::SOCK_STREAM {
            return Err(Errno::EOPNOTSUPP);
        }
        let backlog = if (backlog as u32) > SOMAXCONN as u32 {
            SOMAXCONN
        } else {
            backlog
        };
        host::listen(self.raw(), backlog)
    }

    fn connect(&self, t: &mut Task, addr: &[u8], nonblock: bool) -> Result<(), Errno> {
        let a = self.host_addr(addr, false)?;
        match host::connect(self.raw(), &a) {
            Ok(()) => {
                self.st.lock().connecting = false;
                Ok(())
            }
            Err(Errno::EINPROGRESS) => {
                self.st.lock().connecting = true;
                if nonblock {
                    return Err(Errno::EINPROGRESS);
                }
                self.finish_connect(t)
            }
            // A blocking connect restarted after a signal finds the
            // attempt under way: it waits for it again, as on Linux.
            Err(Errno::EALREADY) if !nonblock && self.st.lock().connecting => {
                self.finish_connect(t)
            }
            Err(e) => Err(e),
        }
    }

    fn accept(&self, t: &mut Task, nonblock: bool) -> Result<Arc<dyn Socket>, Errno> {
        let timeo = if nonblock {
            Timeout(Some(0))
        } else {
            self.st.lock().rcvtimeo
        };
        loop {
            match host::accept(self.raw()) {
                Ok(fd) => return Ok(HostSocket::wrap(t, self.family, self.ty, self.protocol, fd)),
                // A connection the peer reset before it was taken: Linux
                // gives the next one.
                Err(Errno::ECONNABORTED) => continue,
                Err(Errno::EAGAIN) => self.wait(t, libc::POLLIN, timeo)?,
                Err(e) => return Err(e),
            }
        }
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        host::shutdown(self.raw(), how)
    }

    fn sockname(&self) -> Vec<u8> {
        host::name(self.raw(), false).unwrap_or_else(|_| {
            inet::format(
                self.family,
                std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                0,
            )
        })
    }

    fn peername(&self) -> Result<Vec<u8>, Errno> {
        host::name(self.raw(), true)
    }

    fn sendmsg(&self, t: &mut Task, args: SendArgs<'_>) -> Result<usize, Errno> {
        if !args.control.fds.is_empty() || args.control.creds.is_some() {
            // Nothing but bytes and addresses goes to the host.
            t.kernel
                .note_unsupported("control messages on a host socket", "EINVAL");
            return Err(Errno::EINVAL);
        }
        if args.flags & libc::MSG_OOB != 0 {
            t.kernel
                .note_unsupported("MSG_OOB send on a host socket", "EOPNOTSUPP");
            return Err(Errno::EOPNOTSUPP);
        }
        if self.ty == libc::SOCK_STREAM {
            self.send_stream(t, args)
        } else {
            self.send_dgram(t, args)
        }
    }

    fn recvmsg(&self, t: &mut Task, args: RecvArgs<'_>) -> Result<Received, Errno> {
        self.recv(t, args)
    }

    fn getsockopt(
        &self,
        t: &mut Task,
        level: i32,
        name: i32,
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        match (level, name) {
            (libc::SOL_SOCKET, libc::SO_TYPE) => return Ok(int_val(self.ty)),
            (libc::SOL_SOCKET, libc::SO_DOMAIN) => return Ok(int_val(self.family)),
            (libc::SOL_SOCKET, libc::SO_PROTOCOL) => return Ok(int_val(self.protocol)),
            (libc::SOL_SOCKET, libc::SO_RCVTIMEO) | (libc::SOL_SOCKET, SO_RCVTIMEO_NEW) => {
                return Ok(self.st.lock().rcvtimeo.to_timeval().to_vec())
            }
            (libc::SOL_SOCKET, libc::SO_SNDTIMEO) | (libc::SOL_SOCKET, SO_SNDTIMEO_NEW) => {
                return Ok(self.st.lock().sndtimeo.to_timeval().to_vec())
            }
            _ => {}
        }
        if !HOST_SET_OPTS.contains(&(level, name)) && !HOST_GET_OPTS.contains(&(level, name)) {
            return Err(inet::unknown_option(t, "getsockopt", level, name));
        }
        if level == libc::SOL_IPV6 && self.family != libc::AF_INET6 {
            return Err(Errno::ENOPROTOOPT);
        }
        host::getsockopt(self.raw(), level, name, len.clamp(4, MAX_OPT))
    }

    fn setsockopt(&self, t: &mut Task, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        match (level, name) {
            (libc::SOL_SOCKET, libc::SO_RCVTIMEO) | (libc::SOL_SOCKET, SO_RCVTIMEO_NEW) => {
                self.st.lock().rcvtimeo = Timeout::from_timeval(val)?;
                return Ok(());
            }
            (libc::SOL_SOCKET, libc::SO_SNDTIMEO) | (libc::SOL_SOCKET, SO_SNDTIMEO_NEW) => {
                self.st.lock().sndtimeo = Timeout::from_timeval(val)?;
                return Ok(());
            }
            _ => {}
        }
        if !HOST_SET_OPTS.contains(&(level, name)) {
            return Err(inet::unknown_option(t, "setsockopt", level, name));
        }
        if level == libc::SOL_IPV6 && self.family != libc::AF_INET6 {
            return Err(Errno::ENOPROTOOPT);
        }
        if name != libc::SO_LINGER {
            // An int option: Linux's length check, before the host's.
            get_int(val)?;
        }
        host::setsockopt(self.raw(), level, name, &val[..val.len().min(MAX_OPT)])
    }

    fn ioctl(&self, t: &mut Task, request: u32, arg: u64) -> Result<u64, Errno> {
        match request as u64 {
            libc::FIONREAD | SIOCOUTQ => {
                let n = host::ioctl_int(self.raw(), request as u64)?;
                t.mm.write_obj(arg, &n)?;
                Ok(0)
            }
            // The interface requests answer from the sandbox's own table.
            _ => inet::interface_ioctl(t, request, arg),
        }
    }

    fn readiness(&self, events: i16) -> i16 {
        host::poll(self.raw(), events | libc::POLLRDHUP) & (events | libc::POLLERR | libc::POLLHUP)
    }

    fn waitq(&self) -> Arc<WaitQueue> {
        self.queue.clone()
    }

    fn take_error(&self) -> Option<Errno> {
        self.host_error()
    }

    fn release(&self) {
        // The host socket closes with the last reference (Drop); lingering
        // and the connection's end are the host's.
    }

    fn read_nonblocking(&self, dst: &mut [u8]) -> Result<usize, Errno> {
        host::recv(self.raw(), dst, libc::MSG_DONTWAIT).map(|(n, _, _)| n.min(dst.len()))
    }

    fn write_nonblocking(&self, src: &[u8]) -> Result<usize, Errno> {
        host::send(
            self.raw(),
            src,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            None,
        )
    }
}

const CAP_NET_BIND_SERVICE: u32 = 10;

/// The host calls, each on a socket fd this module owns.
mod host {
    use super::*;

    fn check(r: isize) -> Result<usize, Errno> {
        if r < 0 {
            Err(Errno::last())
        } else {
            Ok(r as usize)
        }
    }

    /// Retries a call the host interrupted (the sentry's threads take
    /// signals of their own).
    fn retry(mut f: impl FnMut() -> isize) -> Result<usize, Errno> {
        loop {
            match check(f()) {
                Err(Errno::EINTR) => continue,
                r => return r,
            }
        }
    }

    pub fn socket(family: i32, ty: i32) -> Result<OwnedFd, Errno> {
        // SAFETY: makes a new socket fd, owned below.
        let fd = unsafe { libc::socket(family, ty, 0) };
        if fd < 0 {
            return Err(Errno::last());
        }
        // SAFETY: `fd` is new and ours alone.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    pub fn bind(fd: i32, a: &[u8]) -> Result<(), Errno> {
        // SAFETY: bind reads `a.len()` bytes of our buffer.
        retry(|| unsafe { libc::bind(fd, a.as_ptr().cast(), a.len() as u32) } as isize).map(drop)
    }

    pub fn listen(fd: i32, backlog: i32) -> Result<(), Errno> {
        // SAFETY: no memory is passed.
        check(unsafe { libc::listen(fd, backlog) } as isize).map(drop)
    }

    /// connect(2); an interrupted one is under way (EINPROGRESS), not
    /// to be made again.
    pub fn connect(fd: i32, a: &[u8]) -> Result<(), Errno> {
        // SAFETY: connect reads `a.len()` bytes of our buffer.
        match check(unsafe { libc::connect(fd, a.as_ptr().cast(), a.len() as u32) } as isize) {
            Err(Errno::EINTR) => Err(Errno::EINPROGRESS),
            r => r.map(drop),
        }
    }

    pub fn accept(fd: i32) -> Result<OwnedFd, Errno> {
        let n = retry(|| {
            // SAFETY: no address is asked for; the new fd is owned below.
            let r = unsafe {
                libc::accept4(
                    fd,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            r as isize
        })?;
        // SAFETY: `n` is a new fd and ours alone.
        Ok(unsafe { OwnedFd::from_raw_fd(n as i32) })
    }

    pub fn shutdown(fd: i32, how: i32) -> Result<(), Errno> {
        // SAFETY: no memory is passed.
        check(unsafe { libc::shutdown(fd, how) } as isize).map(drop)
    }

    /// getsockname (`peer` false) or getpeername.
    pub fn name(fd: i32, peer: bool) -> Result<Vec<u8>, Errno> {
        let mut buf = [0u8; 128];
        let mut len = buf.len() as u32;
        // SAFETY: the call writes at most `len` bytes to our buffer and
        // the length it wrote to `len`.
        let r = unsafe {
            if peer {
                libc::getpeername(fd, buf.as_mut_ptr().cast(), &mut len)
            } else {
                libc::getsockname(fd, buf.as_mut_ptr().cast(), &mut len)
            }
        };
        check(r as isize)?;
        Ok(buf[..(len as usize).min(buf.len())].to_vec())
    }

    /// send(2) or sendto(2): the bytes the host took.
    pub fn send(fd: i32, data: &[u8], flags: i32, to: Option<&[u8]>) -> Result<usize, Errno> {
        let (p, l) = match to {
            Some(a) => (a.as_ptr(), a.len() as u32),
            None => (std::ptr::null(), 0),
        };
        retry(|| {
            // SAFETY: sendto reads `data.len()` bytes of our buffer and
            // `l` bytes of the address (none when it is null).
            unsafe { libc::sendto(fd, data.as_ptr().cast(), data.len(), flags, p.cast(), l) }
        })
    }

    /// recvmsg(2) without control data: the length (a datagram's whole
    /// length with MSG_TRUNC), the message's flags and the sender.
    pub fn recv(
        fd: i32,
        buf: &mut [u8],
        flags: i32,
    ) -> Result<(usize, i32, Option<Vec<u8>>), Errno> {
        let mut from = [0u8; 128];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: all-zero is a valid msghdr (no name, no control).
        let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
        mh.msg_name = from.as_mut_ptr().cast();
        mh.msg_namelen = from.len() as u32;
        mh.msg_iov = &mut iov;
        mh.msg_iovlen = 1;
        // SAFETY: recvmsg writes into our buffer (one iovec) and our
        // address buffer; no control buffer is given.
        let n = retry(|| unsafe { libc::recvmsg(fd, &mut mh, flags) })?;
        let namelen = (mh.msg_namelen as usize).min(from.len());
        let addr = (namelen > 0).then(|| from[..namelen].to_vec());
        Ok((n, mh.msg_flags, addr))
    }

    pub fn getsockopt(fd: i32, level: i32, name: i32, len: usize) -> Result<Vec<u8>, Errno> {
        let mut buf = vec![0u8; len];
        let mut l = len as u32;
        // SAFETY: getsockopt writes at most `l` bytes to our buffer.
        let r = unsafe { libc::getsockopt(fd, level, name, buf.as_mut_ptr().cast(), &mut l) };
        check(r as isize)?;
        buf.truncate(l as usize);
        Ok(buf)
    }

    pub fn setsockopt(fd: i32, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        // SAFETY: setsockopt reads `val.len()` bytes of our buffer.
        let r = unsafe { libc::setsockopt(fd, level, name, val.as_ptr().cast(), val.len() as u32) };
        check(r as isize).map(drop)
    }

    /// An ioctl that writes one int (FIONREAD, SIOCOUTQ).
    pub fn ioctl_int(fd: i32, request: u64) -> Result<i32, Errno> {
        let mut n: libc::c_int = 0;
        // SAFETY: the request writes one int to `n`.
        check(unsafe { libc::ioctl(fd, request, &mut n) } as isize)?;
        Ok(n)
    }

    /// poll(2) of one fd without waiting: its revents.
    pub fn poll(fd: i32, events: i16) -> i16 {
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        loop {
            // SAFETY: one valid pollfd, no wait.
            let r = unsafe { libc::poll(&mut p, 1, 0) };
            if r >= 0 {
                return p.revents;
            }
            if Errno::last() != Errno::EINTR {
                return libc::POLLERR;
            }
        }
    }
}
