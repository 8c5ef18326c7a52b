//! UDP sockets (AF_INET and AF_INET6, SOCK_DGRAM) on the sandbox's stack.
//!
//! smoltcp keeps the datagram queues; here is what Linux adds: the
//! connected peer (sends go to it, receives come only from it), autobind
//! at the first send, the options, shutdown, and datagrams of the other
//! family dropped for a socket that cannot take them.

use std::any::Any;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use parking_lot::Mutex;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::IpListenEndpoint;

use super::inet::{self, Handled, IpOpts, SockAddr};
use super::{int_val, Received, RecvArgs, SendArgs, Socket, Timeout};
use crate::errno::Errno;
use crate::kernel::task::Task;
use crate::kernel::waiter::{WaitQueue, ALL_EVENTS};
use crate::net::{self, BindRequest, NetStack, Proto, Registered};
use crate::vfs::inode::Inode;

const MSG_PEEK: i32 = libc::MSG_PEEK;
const MSG_DONTWAIT: i32 = libc::MSG_DONTWAIT;
const MSG_TRUNC: i32 = libc::MSG_TRUNC;
const MSG_OOB: i32 = libc::MSG_OOB;

/// The largest UDP payload over IPv4 and IPv6 (65535 less the headers).
const MAX_PAYLOAD_V4: usize = 65507;
const MAX_PAYLOAD_V6: usize = 65527;

const RCV_SHUTDOWN: u8 = 1;
const SEND_SHUTDOWN: u8 = 2;

struct St {
    handle: Option<SocketHandle>,
    local: Option<SockAddr>,
    peer: Option<SockAddr>,
    opts: IpOpts,
    err: Option<Errno>,
    shutdown: u8,
    /// IP_ADD_MEMBERSHIP groups (group, interface address).
    groups: Vec<(Ipv4Addr, Ipv4Addr)>,
    cork: bool,
}

/// One UDP socket.
pub struct UdpSocket {
    family: i32,
    inode: Arc<Inode>,
    stack: Arc<NetStack>,
    queue: Arc<WaitQueue>,
    owner: u64,
    uid: u32,
    st: Mutex<St>,
}

impl UdpSocket {
    pub fn create(t: &mut Task, family: i32) -> Arc<dyn Socket> {
        let stack = t.kernel.sockets.net().clone();
        let owner = stack.lock().new_owner();
        let inode = t
            .kernel
            .sockets
            .new_inode(&t.kernel.vfs, t.creds.fsuid, t.creds.fsgid);
        Arc::new(UdpSocket {
            family,
            inode,
            stack,
            queue: Arc::new(WaitQueue::default()),
            owner,
            uid: t.creds.euid,
            st: Mutex::new(St {
                handle: None,
                local: None,
                peer: None,
                opts: IpOpts::new(super::WMEM_DEFAULT, super::RMEM_DEFAULT),
                err: None,
                shutdown: 0,
                groups: Vec::new(),
                cork: false,
            }),
        })
    }

    /// Claims the port and makes the smoltcp socket.
    fn bind_locked(
        &self,
        t: &Task,
        st: &mut St,
        g: &mut net::Inner,
        a: SockAddr,
    ) -> Result<(), Errno> {
        if st.handle.is_some() {
            return Err(Errno::EINVAL);
        }
        if self.family == libc::AF_INET6 && a.ip.is_ipv4() && st.opts.v6only {
            return Err(Errno::EADDRNOTAVAIL);
        }
        if a.port != 0 && a.port < 1024 && !t.creds.has_cap(10) {
            return Err(Errno::EACCES);
        }
        let range = *self.stack.port_range.lock();
        let port = g.bind(
            Proto::Udp,
            self.owner,
            BindRequest {
                addr: a.ip,
                port: a.port,
                v6only: st.opts.v6only,
                reuseaddr: st.opts.reuseaddr,
                reuseport: st.opts.reuseport,
                uid: self.uid,
            },
            range,
        )?;
        let mut s = net::new_udp(st.opts.rcvbuf as usize, st.opts.sndbuf as usize);
        let ep = IpListenEndpoint {
            addr: (!a.ip.is_unspecified()).then(|| net::to_ip(a.ip)),
            port,
        };
        if s.bind(ep).is_err() {
            g.unbind(self.owner);
            return Err(Errno::EINVAL);
        }
        let h = g.add_udp(s);
        g.watch(h, Arc::downgrade(&self.queue));
        g.register(
            h,
            Registered {
                family: self.family,
                uid: self.uid,
                inode: self.inode.ino,
                peer: None,
                v6only: st.opts.v6only,
            },
        );
        st.handle = Some(h);
        st.local = Some(SockAddr { ip: a.ip, port });
        Ok(())
    }

    fn autobind(&self, t: &Task, st: &mut St, g: &mut net::Inner) -> Result<SocketHandle, Errno> {
        if let Some(h) = st.handle {
            return Ok(h);
        }
        let any = SockAddr {
            ip: net::unspecified(self.family),
            port: 0,
        };
        self.bind_locked(t, st, g, any)?;
        Ok(st.handle.unwrap())
    }

    /// Moves an error ICMP reported (a connected peer's port refused) to
    /// the socket's pending error.
    fn pull_icmp_error(st: &mut St, g: &mut net::Inner) {
        if let Some(e) = st.handle.and_then(|h| g.take_icmp_error(h)) {
            st.err = Some(e);
        }
    }

    /// A datagram from `from` is one this socket takes.
    fn accepts(&self, st: &St, from: IpAddr) -> bool {
        if let Some(p) = st.peer {
            if p.ip != from {
                return false;
            }
        }
        match (self.family, from) {
            (libc::AF_INET, IpAddr::V6(_)) => false,
            (libc::AF_INET6, IpAddr::V4(_)) => !st.opts.v6only,
            _ => true,
        }
    }

    /// Drops queued datagrams this socket does not take; the size of
    /// the first one it does.
    fn next_datagram(&self, st: &St, g: &mut net::Inner) -> Option<usize> {
        let h = st.handle?;
        loop {
            let (len, from) = match g.udp_next(h, true) {
                Some((data, meta)) => (data.len(), meta.endpoint),
                None => return None,
            };
            let ok = self.accepts(st, net::from_ip(from.addr))
                && st.peer.is_none_or(|p| p.port == from.port);
            if ok {
                return Some(len);
            }
            let _ = g.udp_next(h, false);
        }
    }

    fn readable(&self) -> bool {
        let mut st = self.st.lock();
        let mut g = self.stack.peek();
        Self::pull_icmp_error(&mut st, &mut g);
        if st.err.is_some() || st.shutdown & RCV_SHUTDOWN != 0 {
            return true;
        }
        self.next_datagram(&st, &mut g).is_some()
    }

    fn writable(&self) -> bool {
        let st = self.st.lock();
        let Some(h) = st.handle else {
            return true;
        };
        let mut g = self.stack.peek();
        g.udp(h).can_send()
    }

    fn wait(
        &self,
        t: &mut Task,
        timeo: Timeout,
        ready: impl Fn(&Self) -> bool,
    ) -> Result<(), Errno> {
        let q = self.queue.clone();
        inet::wait(t, &q, timeo, || ready(self))
    }

    fn do_send(&self, t: &mut Task, args: SendArgs<'_>) -> Result<usize, Errno> {
        let SendArgs {
            src, addr, flags, ..
        } = args;
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let dest = match &addr {
            Some(a) => inet::parse(self.family, a)?,
            None => None,
        };
        let nonblock = flags & MSG_DONTWAIT != 0;
        let len = src.remaining();
        loop {
            {
                let mut st = self.st.lock();
                Self::pull_icmp_error(&mut st, &mut self.stack.peek());
                if let Some(e) = st.err.take() {
                    return Err(e);
                }
                if st.shutdown & SEND_SHUTDOWN != 0 {
                    drop(st);
                    if flags & libc::MSG_NOSIGNAL == 0 {
                        t.raise(libc::SIGPIPE);
                    }
                    return Err(Errno::EPIPE);
                }
                let mut to = match dest.or(st.peer) {
                    Some(d) => d,
                    None => return Err(Errno::EDESTADDRREQ),
                };
                if to.port == 0 {
                    return Err(Errno::EINVAL);
                }
                if self.family == libc::AF_INET6 && to.ip.is_ipv4() && st.opts.v6only {
                    return Err(Errno::ENETUNREACH);
                }
                let max = if to.ip.is_ipv4() {
                    MAX_PAYLOAD_V4
                } else {
                    MAX_PAYLOAD_V6
                };
                if len > max {
                    return Err(Errno::EMSGSIZE);
                }
                if to.ip.is_unspecified() {
                    to.ip = match to.ip {
                        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    };
                }
                let mut g = self.stack.lock();
                // The route comes first, then the broadcast permission.
                if !g.routable(to.ip) {
                    return Err(Errno::ENETUNREACH);
                }
                if to.ip == IpAddr::V4(Ipv4Addr::BROADCAST) && !st.opts.broadcast {
                    return Err(Errno::EACCES);
                }
                let h = self.autobind(t, &mut st, &mut g)?;
                let s = g.udp(h);
                if len > s.payload_send_capacity() {
                    return Err(Errno::EMSGSIZE);
                }
                if s.can_send() {
                    let data = src.take(len)?;
                    let local = st
                        .local
                        .filter(|l| !l.ip.is_unspecified())
                        .map(|l| net::to_ip(l.ip));
                    let meta = udp::UdpMetadata {
                        endpoint: (net::to_ip(to.ip), to.port).into(),
                        local_address: local,
                        meta: Default::default(),
                    };
                    return match g.udp(h).send_slice(&data, meta) {
                        Ok(()) => Ok(len),
                        Err(udp::SendError::BufferFull) => Err(Errno::EAGAIN),
                        Err(udp::SendError::Unaddressable) => Err(Errno::ENETUNREACH),
                    };
                }
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let timeo = self.st.lock().opts.sndtimeo;
            self.wait(t, timeo, |s| s.writable())?;
        }
    }

    fn do_recv(&self, t: &mut Task, args: RecvArgs<'_>) -> Result<Received, Errno> {
        let RecvArgs { dst, flags } = args;
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let nonblock = flags & MSG_DONTWAIT != 0;
        loop {
            {
                let mut st = self.st.lock();
                let mut g = self.stack.lock();
                Self::pull_icmp_error(&mut st, &mut g);
                if let Some(e) = st.err.take() {
                    return Err(e);
                }
                if self.next_datagram(&st, &mut g).is_some() {
                    let h = st.handle.unwrap();
                    let (data, meta) = g.udp_next(h, flags & MSG_PEEK != 0).ok_or(Errno::EAGAIN)?;
                    let from = meta.endpoint;
                    drop(g);
                    drop(st);
                    let room = dst.room();
                    let n = data.len().min(room);
                    dst.put(&data[..n])?;
                    let truncated = data.len() > room;
                    return Ok(Received {
                        len: if flags & MSG_TRUNC != 0 {
                            data.len()
                        } else {
                            n
                        },
                        flags: if truncated { MSG_TRUNC } else { 0 },
                        addr: Some(inet::format(
                            self.family,
                            net::from_ip(from.addr),
                            from.port,
                        )),
                        ..Default::default()
                    });
                }
                if st.shutdown & RCV_SHUTDOWN != 0 {
                    return Ok(Received::default());
                }
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let timeo = self.st.lock().opts.rcvtimeo;
            self.wait(t, timeo, |s| s.readable())?;
        }
    }
}

impl Socket for UdpSocket {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn family(&self) -> i32 {
        self.family
    }

    fn sock_type(&self) -> i32 {
        libc::SOCK_DGRAM
    }

    fn protocol(&self) -> i32 {
        libc::IPPROTO_UDP
    }

    fn inode(&self) -> &Arc<Inode> {
        &self.inode
    }

    fn bind(&self, t: &mut Task, addr: &[u8]) -> Result<(), Errno> {
        let a = inet::parse_bind(self.family, addr)?;
        let mut st = self.st.lock();
        let mut g = self.stack.lock();
        self.bind_locked(t, &mut st, &mut g, a)
    }

    fn listen(&self, _t: &mut Task, _backlog: i32) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    fn connect(&self, t: &mut Task, addr: &[u8], _nonblock: bool) -> Result<(), Errno> {
        let a = inet::parse(self.family, addr)?;
        let mut st = self.st.lock();
        let Some(mut a) = a else {
            st.peer = None;
            return Ok(());
        };
        if self.family == libc::AF_INET6 && a.ip.is_ipv4() && st.opts.v6only {
            return Err(Errno::ENETUNREACH);
        }
        if a.ip.is_unspecified() {
            a.ip = match a.ip {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
        }
        let mut g = self.stack.lock();
        if !g.routable(a.ip) {
            return Err(Errno::ENETUNREACH);
        }
        let h = self.autobind(t, &mut st, &mut g)?;
        st.peer = Some(a);
        let mut r = Registered {
            family: self.family,
            uid: self.uid,
            inode: self.inode.ino,
            peer: None,
            v6only: st.opts.v6only,
        };
        r.peer = Some((a.ip, a.port));
        g.register(h, r);
        Ok(())
    }

    fn accept(&self, _t: &mut Task, _nonblock: bool) -> Result<Arc<dyn Socket>, Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        let mut st = self.st.lock();
        let bits = match how {
            libc::SHUT_RD => RCV_SHUTDOWN,
            libc::SHUT_WR => SEND_SHUTDOWN,
            _ => RCV_SHUTDOWN | SEND_SHUTDOWN,
        };
        // Linux sets the bits even on an unconnected socket (and says
        // ENOTCONN), so pollers see the hangup.
        st.shutdown |= bits;
        let connected = st.peer.is_some();
        drop(st);
        self.queue.notify(ALL_EVENTS);
        if connected {
            Ok(())
        } else {
            Err(Errno::ENOTCONN)
        }
    }

    fn sockname(&self) -> Vec<u8> {
        let st = self.st.lock();
        let (ip, port) = st
            .local
            .map(|l| (l.ip, l.port))
            .unwrap_or((net::unspecified(self.family), 0));
        // A connected socket bound to the unspecified address reports the
        // source address its peer sees.
        let ip = match (ip.is_unspecified(), st.peer) {
            (true, Some(p)) if p.ip.is_loopback() => p.ip,
            _ => ip,
        };
        inet::format(self.family, ip, port)
    }

    fn peername(&self) -> Result<Vec<u8>, Errno> {
        let st = self.st.lock();
        let p = st.peer.ok_or(Errno::ENOTCONN)?;
        Ok(inet::format(self.family, p.ip, p.port))
    }

    fn sendmsg(&self, t: &mut Task, args: SendArgs<'_>) -> Result<usize, Errno> {
        self.do_send(t, args)
    }

    fn recvmsg(&self, t: &mut Task, args: RecvArgs<'_>) -> Result<Received, Errno> {
        self.do_recv(t, args)
    }

    fn getsockopt(
        &self,
        t: &mut Task,
        level: i32,
        name: i32,
        _len: usize,
    ) -> Result<Vec<u8>, Errno> {
        let mut st = self.st.lock();
        if level == libc::SOL_SOCKET && name == libc::SO_ERROR {
            Self::pull_icmp_error(&mut st, &mut self.stack.peek());
            return Ok(int_val(st.err.take().map_or(0, |e| e.raw())));
        }
        if level == libc::SOL_UDP && name == libc::UDP_CORK {
            return Ok(int_val(st.cork as i32));
        }
        match inet::get_shared(
            &st.opts,
            self.family,
            libc::SOCK_DGRAM,
            libc::IPPROTO_UDP,
            level,
            name,
            false,
        ) {
            Handled::Done(r) => r,
            Handled::NotMine => Err(inet::unknown_option(t, "getsockopt", level, name)),
        }
    }

    fn setsockopt(&self, t: &mut Task, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        let mut st = self.st.lock();
        if level == libc::SOL_UDP && name == libc::UDP_CORK {
            st.cork = super::get_int(val)? != 0;
            return Ok(());
        }
        if level == libc::SOL_IP
            && (name == libc::IP_ADD_MEMBERSHIP || name == libc::IP_DROP_MEMBERSHIP)
        {
            if val.len() < 8 {
                return Err(Errno::EINVAL);
            }
            let group = Ipv4Addr::new(val[0], val[1], val[2], val[3]);
            let iface = Ipv4Addr::new(val[4], val[5], val[6], val[7]);
            if !group.is_multicast() {
                return Err(Errno::EINVAL);
            }
            let pos = st.groups.iter().position(|g| g.0 == group);
            if name == libc::IP_ADD_MEMBERSHIP {
                if pos.is_some() {
                    return Err(Errno::EADDRINUSE);
                }
                st.groups.push((group, iface));
            } else {
                match pos {
                    Some(i) => {
                        st.groups.remove(i);
                    }
                    None => return Err(Errno::EADDRNOTAVAIL),
                }
            }
            return Ok(());
        }
        let bound = st.handle.is_some();
        match inet::set_shared(t, &mut st.opts, self.family, level, name, val, bound) {
            Handled::Done(r) => r,
            Handled::NotMine => Err(inet::unknown_option(t, "setsockopt", level, name)),
        }
    }

    fn ioctl(&self, t: &mut Task, request: u32, arg: u64) -> Result<u64, Errno> {
        const SIOCINQ: u32 = libc::FIONREAD as u32;
        const SIOCOUTQ: u32 = 0x5411;
        let n: i32 = match request {
            SIOCINQ => {
                let st = self.st.lock();
                let mut g = self.stack.peek();
                self.next_datagram(&st, &mut g).unwrap_or(0) as i32
            }
            SIOCOUTQ => {
                let st = self.st.lock();
                match st.handle {
                    Some(h) => self.stack.peek().udp(h).send_queue() as i32,
                    None => 0,
                }
            }
            _ => return inet::interface_ioctl(t, request, arg),
        };
        t.mm.write_obj(arg, &n)?;
        Ok(0)
    }

    fn readiness(&self, events: i16) -> i16 {
        let mut m: i16 = 0;
        let mut st = self.st.lock();
        let mut g = self.stack.peek();
        Self::pull_icmp_error(&mut st, &mut g);
        if st.err.is_some() {
            m |= libc::POLLERR;
        }
        if st.shutdown & RCV_SHUTDOWN != 0 {
            m |= libc::POLLIN | libc::POLLRDNORM | libc::POLLRDHUP;
        }
        if st.shutdown == RCV_SHUTDOWN | SEND_SHUTDOWN {
            m |= libc::POLLHUP;
        }
        if self.next_datagram(&st, &mut g).is_some() {
            m |= libc::POLLIN | libc::POLLRDNORM;
        }
        let writable = match st.handle {
            Some(h) => g.udp(h).can_send(),
            None => true,
        };
        if writable {
            m |= libc::POLLOUT | libc::POLLWRNORM | libc::POLLWRBAND;
        }
        m & (events | libc::POLLERR | libc::POLLHUP)
    }

    fn waitq(&self) -> Arc<WaitQueue> {
        self.queue.clone()
    }

    fn take_error(&self) -> Option<Errno> {
        let mut st = self.st.lock();
        Self::pull_icmp_error(&mut st, &mut self.stack.peek());
        st.err.take()
    }

    fn release(&self) {
        let st = self.st.lock();
        let mut g = self.stack.lock();
        if let Some(h) = st.handle {
            g.unregister(h);
            g.orphan(h, Some(self.owner));
        } else {
            g.unbind(self.owner);
        }
    }

    fn read_nonblocking(&self, dst: &mut [u8]) -> Result<usize, Errno> {
        let st = self.st.lock();
        let mut g = self.stack.lock();
        if self.next_datagram(&st, &mut g).is_none() {
            return Err(Errno::EAGAIN);
        }
        let h = st.handle.unwrap();
        let (d, _) = g.udp_next(h, false).ok_or(Errno::EAGAIN)?;
        let n = d.len().min(dst.len());
        dst[..n].copy_from_slice(&d[..n]);
        Ok(n)
    }

    fn write_nonblocking(&self, src: &[u8]) -> Result<usize, Errno> {
        let st = self.st.lock();
        let (Some(h), Some(p)) = (st.handle, st.peer) else {
            return Err(Errno::EDESTADDRREQ);
        };
        let mut g = self.stack.lock();
        let meta = udp::UdpMetadata {
            endpoint: (net::to_ip(p.ip), p.port).into(),
            local_address: None,
            meta: Default::default(),
        };
        g.udp(h)
            .send_slice(src, meta)
            .map(|_| src.len())
            .map_err(|_| Errno::EAGAIN)
    }
}
