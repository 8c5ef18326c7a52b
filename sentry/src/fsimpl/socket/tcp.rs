//! TCP sockets (AF_INET and AF_INET6, SOCK_STREAM) on the sandbox's
//! stack (`crate::net`).
//!
//! A socket is, in turn: unbound; bound (a port claimed in the stack's
//! table); listening (a listen queue in the stack, whose smoltcp sockets
//! become connections that `accept` takes); connecting and connected (one
//! smoltcp socket). What smoltcp does not keep is kept here: the options,
//! a pending error (SO_ERROR), the shutdown of the receive side, and
//! whether the connection was reset (smoltcp only says "closed").
//!
//! Locks: the socket's state, then the stack's.

use std::any::Any;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self, State as TcpState};

use super::inet::{self, Handled, IpOpts, SockAddr};
use super::{get_int, int_val, Received, RecvArgs, SendArgs, Socket, Timeout, SOMAXCONN};
use crate::errno::Errno;
use crate::kernel::task::Task;
use crate::kernel::waiter::{WaitQueue, ALL_EVENTS};
use crate::net::{self, BindRequest, ListenQueue, NetStack, Proto, Registered};
use crate::vfs::inode::Inode;

/// TCP options (SOL_TCP).
const TCP_NODELAY: i32 = 1;
const TCP_MAXSEG: i32 = 2;
const TCP_CORK: i32 = 3;
const TCP_KEEPIDLE: i32 = 4;
const TCP_KEEPINTVL: i32 = 5;
const TCP_KEEPCNT: i32 = 6;
const TCP_SYNCNT: i32 = 7;
const TCP_LINGER2: i32 = 8;
const TCP_DEFER_ACCEPT: i32 = 9;
const TCP_WINDOW_CLAMP: i32 = 10;
const TCP_INFO: i32 = 11;
const TCP_QUICKACK: i32 = 12;
const TCP_CONGESTION: i32 = 13;
const TCP_USER_TIMEOUT: i32 = 18;
const TCP_FASTOPEN: i32 = 23;
const TCP_NOTSENT_LOWAT: i32 = 25;

/// MSG_* flags.
const MSG_OOB: i32 = libc::MSG_OOB;
const MSG_PEEK: i32 = libc::MSG_PEEK;
const MSG_DONTWAIT: i32 = libc::MSG_DONTWAIT;
const MSG_WAITALL: i32 = libc::MSG_WAITALL;
const MSG_TRUNC: i32 = libc::MSG_TRUNC;
const MSG_NOSIGNAL: i32 = libc::MSG_NOSIGNAL;

/// `sizeof(struct tcp_info)` of Linux 6.1.
const TCP_INFO_LEN: usize = 232;
/// The MSS over loopback (MTU 65536 less the IP and TCP headers).
const LOOPBACK_MSS: u32 = 65483;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Unbound,
    Bound,
    /// The listen queue's id in the stack.
    Listening(u64),
    Connecting(SocketHandle),
    Connected(SocketHandle),
}

struct St {
    phase: Phase,
    /// The local address asked for at bind (or chosen at connect).
    local: Option<SockAddr>,
    opts: IpOpts,
    nodelay: bool,
    cork: bool,
    quickack: bool,
    keepidle: i32,
    keepintvl: i32,
    keepcnt: i32,
    syncnt: i32,
    user_timeout: u32,
    defer_accept: i32,
    maxseg: i32,
    linger2: i32,
    window_clamp: i32,
    notsent_lowat: u32,
    /// A pending error for SO_ERROR and the next call.
    err: Option<Errno>,
    shut_rd: bool,
    /// shutdown(SHUT_WR) or close: smoltcp was told to close.
    closed_by_us: bool,
    /// A reset was reported (ECONNRESET is given once).
    reset_reported: bool,
    connect_started: Option<Instant>,
    backlog: i32,
    /// The last connect failed (Linux's socket is then shut both ways).
    failed: bool,
}

/// One TCP socket.
pub struct TcpSocket {
    family: i32,
    inode: Arc<Inode>,
    stack: Arc<NetStack>,
    queue: Arc<WaitQueue>,
    /// The socket's binding in the stack's port table.
    owner: u64,
    uid: u32,
    st: Mutex<St>,
}

use inet::wait;

impl TcpSocket {
    pub fn create(t: &mut Task, family: i32) -> Arc<dyn Socket> {
        let stack = t.kernel.sockets.net().clone();
        let owner = stack.lock().new_owner();
        Self::make(t, family, stack, owner, Phase::Unbound)
    }

    fn make(
        t: &Task,
        family: i32,
        stack: Arc<NetStack>,
        owner: u64,
        phase: Phase,
    ) -> Arc<dyn Socket> {
        let inode = t
            .kernel
            .sockets
            .new_inode(&t.kernel.vfs, t.creds.fsuid, t.creds.fsgid);
        Arc::new(TcpSocket {
            family,
            inode,
            stack,
            queue: Arc::new(WaitQueue::default()),
            owner,
            uid: t.creds.euid,
            st: Mutex::new(St {
                phase,
                local: None,
                opts: IpOpts::new(16384, 131072),
                nodelay: false,
                cork: false,
                quickack: true,
                keepidle: 7200,
                keepintvl: 75,
                keepcnt: 9,
                syncnt: 6,
                user_timeout: 0,
                defer_accept: 0,
                maxseg: 0,
                linger2: 60,
                window_clamp: 0,
                notsent_lowat: u32::MAX,
                err: None,
                shut_rd: false,
                closed_by_us: false,
                reset_reported: false,
                connect_started: None,
                backlog: 0,
                failed: false,
            }),
        })
    }

    fn me(&self) -> Weak<WaitQueue> {
        Arc::downgrade(&self.queue)
    }

    fn registered(&self, t: &Task) -> Registered {
        let _ = t;
        Registered {
            family: self.family,
            uid: self.uid,
            inode: self.inode.ino,
            peer: None,
            // Only UDP's demultiplexing reads it (a listener's own
            // v6-only flag is in its queue).
            v6only: false,
        }
    }

    /// smoltcp buffer sizes for a connection of this socket.
    fn sizes(st: &St) -> (usize, usize) {
        let rx = (st.opts.rcvbuf as usize).max(net::TCP_RX_DEFAULT);
        let tx = (st.opts.sndbuf as usize).max(net::TCP_TX_DEFAULT);
        (rx, tx)
    }

    /// Applies the options smoltcp keeps to connection `h`.
    fn apply(st: &St, s: &mut tcp::Socket<'static>) {
        s.set_nagle_enabled(!st.nodelay && !st.cork);
        s.set_keep_alive(
            st.opts
                .keepalive
                .then(|| smoltcp::time::Duration::from_secs(st.keepintvl.max(1) as u64)),
        );
        let timeout = if st.user_timeout > 0 {
            Some(smoltcp::time::Duration::from_millis(st.user_timeout as u64))
        } else if st.opts.keepalive {
            Some(smoltcp::time::Duration::from_secs(
                (st.keepidle as u64) + (st.keepintvl as u64) * (st.keepcnt as u64),
            ))
        } else {
            None
        };
        s.set_timeout(timeout);
        s.set_hop_limit(Some(st.opts.ttl.clamp(1, 255) as u8));
    }

    /// Moves a connecting socket to connected or failed, as smoltcp's
    /// state says.
    fn settle(&self, st: &mut St, g: &mut net::Inner) {
        let Phase::Connecting(h) = st.phase else {
            return;
        };
        match g.tcp(h).state() {
            TcpState::SynSent | TcpState::SynReceived => {}
            TcpState::Closed => {
                let timed_out = st.connect_started.is_some_and(|at| {
                    let limit = if st.user_timeout > 0 {
                        std::time::Duration::from_millis(st.user_timeout as u64)
                    } else {
                        net::CONNECT_TIMEOUT
                    };
                    at.elapsed() >= limit
                });
                // ICMP's word (an unreachable host or network), else a
                // reset or the timeout.
                st.err = Some(g.take_icmp_error(h).unwrap_or(if timed_out {
                    Errno::ETIMEDOUT
                } else {
                    Errno::ECONNREFUSED
                }));
                g.remove_socket(h);
                st.phase = Phase::Bound;
                st.failed = true;
                // A failed connect lets go of the port it was given.
                if st.local.is_some_and(|l| l.ip.is_unspecified()) {
                    g.unbind(self.owner);
                    st.local = None;
                    st.phase = Phase::Unbound;
                }
            }
            _ => {
                st.phase = Phase::Connected(h);
                st.err = None;
                Self::apply(st, g.tcp(h));
            }
        }
    }

    /// The smoltcp socket was closed without our asking: a reset (or a
    /// timeout).
    fn was_reset(st: &St, s: &tcp::Socket<'static>) -> bool {
        s.state() == TcpState::Closed && !st.closed_by_us
    }

    fn local_of(&self, st: &St, g: &mut net::Inner) -> (IpAddr, u16) {
        match st.phase {
            Phase::Connecting(h) | Phase::Connected(h) => {
                if let Some(e) = g.tcp(h).local_endpoint() {
                    return (net::from_ip(e.addr), e.port);
                }
            }
            _ => {}
        }
        match st.local {
            Some(l) => (l.ip, l.port),
            None => (net::unspecified(self.family), 0),
        }
    }

    fn bind_locked(
        &self,
        t: &Task,
        st: &mut St,
        g: &mut net::Inner,
        a: SockAddr,
    ) -> Result<(), Errno> {
        if st.local.is_some() || st.phase != Phase::Unbound {
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
            Proto::Tcp,
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
        st.local = Some(SockAddr { ip: a.ip, port });
        st.phase = Phase::Bound;
        Ok(())
    }

    fn do_connect(&self, t: &mut Task, addr: &[u8], nonblock: bool) -> Result<(), Errno> {
        let a = inet::parse(self.family, addr)?;
        let mut st = self.st.lock();
        let mut g = self.stack.lock();
        self.settle(&mut st, &mut g);
        match st.phase {
            Phase::Connected(_) => return Err(Errno::EISCONN),
            Phase::Listening(_) => return Err(Errno::EISCONN),
            Phase::Connecting(_) => {
                if nonblock {
                    return Err(Errno::EALREADY);
                }
                drop(g);
                drop(st);
                return self.wait_connected(t);
            }
            _ => {}
        }
        let Some(mut a) = a else {
            // AF_UNSPEC: nothing to disconnect.
            return Ok(());
        };
        if self.family == libc::AF_INET6 && a.ip.is_ipv4() && st.opts.v6only {
            return Err(Errno::ENETUNREACH);
        }
        if a.ip.is_unspecified() {
            // Linux connects to the unspecified address as to loopback.
            a.ip = match a.ip {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
        }
        if !g.routable(a.ip) {
            return Err(Errno::ENETUNREACH);
        }
        // An error left by an earlier attempt is forgotten.
        st.err = None;
        st.failed = false;
        if st.phase == Phase::Unbound {
            let range = *self.stack.port_range.lock();
            let port = g.bind(
                Proto::Tcp,
                self.owner,
                BindRequest {
                    addr: net::unspecified(self.family),
                    port: 0,
                    v6only: st.opts.v6only,
                    reuseaddr: st.opts.reuseaddr,
                    reuseport: st.opts.reuseport,
                    uid: self.uid,
                },
                range,
            )?;
            st.local = Some(SockAddr {
                ip: net::unspecified(self.family),
                port,
            });
            st.phase = Phase::Bound;
        }
        let local = st.local.unwrap();
        let (rx, tx) = Self::sizes(&st);
        let mut s = net::new_tcp(rx, tx);
        Self::apply(&st, &mut s);
        let limit = if st.user_timeout > 0 {
            smoltcp::time::Duration::from_millis(st.user_timeout as u64)
        } else {
            smoltcp::time::Duration::from_secs(net::CONNECT_TIMEOUT.as_secs())
        };
        s.set_timeout(Some(limit));
        let h = g.add_tcp(s);
        if a.port == 0 {
            // No port is listening on 0: refused at once, as Linux does.
            g.remove_socket(h);
            return Err(Errno::ECONNREFUSED);
        }
        let local_ip = if local.ip.is_unspecified() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            local.ip
        };
        if let Err(e) = g.connect_tcp(h, (a.ip, a.port), (local_ip, local.port)) {
            g.remove_socket(h);
            return Err(e);
        }
        g.watch(h, self.me());
        g.register(h, self.registered(t));
        st.phase = Phase::Connecting(h);
        st.connect_started = Some(Instant::now());
        drop(g);
        // The stack polled on the way out: over loopback the handshake is
        // done (or refused) already.
        let mut g = self.stack.lock();
        self.settle(&mut st, &mut g);
        let phase = st.phase;
        drop(g);
        drop(st);
        match phase {
            // Linux's handshake completes after a non-blocking connect
            // returns, even over loopback: the caller polls for it.
            _ if nonblock => Err(Errno::EINPROGRESS),
            Phase::Connected(_) => Ok(()),
            Phase::Connecting(_) => self.wait_connected(t),
            _ => Err(self.st.lock().err.take().unwrap_or(Errno::ECONNREFUSED)),
        }
    }

    fn wait_connected(&self, t: &mut Task) -> Result<(), Errno> {
        let q = self.queue.clone();
        let r = t.block_on(&[(&q, ALL_EVENTS)], None, |_| {
            let mut st = self.st.lock();
            let mut g = self.stack.lock();
            self.settle(&mut st, &mut g);
            match st.phase {
                Phase::Connected(_) => Some(Ok(())),
                Phase::Connecting(_) => None,
                _ => Some(Err(st.err.take().unwrap_or(Errno::ECONNREFUSED))),
            }
        });
        r
    }

    fn do_listen(&self, t: &mut Task, backlog: i32) -> Result<(), Errno> {
        let mut st = self.st.lock();
        let mut g = self.stack.lock();
        let backlog = if (backlog as u32) > SOMAXCONN as u32 {
            SOMAXCONN
        } else {
            backlog
        };
        match st.phase {
            Phase::Listening(id) => {
                if let Some(l) = g.listeners.get_mut(&id) {
                    l.limit = backlog as usize + 1;
                }
                st.backlog = backlog;
                return Ok(());
            }
            Phase::Connecting(_) | Phase::Connected(_) => return Err(Errno::EINVAL),
            Phase::Unbound => {
                let any = SockAddr {
                    ip: net::unspecified(self.family),
                    port: 0,
                };
                self.bind_locked(t, &mut st, &mut g, any)?;
            }
            Phase::Bound => {}
        }
        let local = st.local.unwrap();
        g.set_listening(self.owner, local.port)?;
        let (rx, tx) = Self::sizes(&st);
        let id = self.owner;
        g.add_listener(
            id,
            ListenQueue {
                endpoint: smoltcp::wire::IpListenEndpoint {
                    addr: (!local.ip.is_unspecified()).then(|| net::to_ip(local.ip)),
                    port: local.port,
                },
                limit: backlog as usize + 1,
                pending: Vec::new(),
                queue: self.me(),
                rx_size: rx,
                tx_size: tx,
                nodelay: st.nodelay,
                owner: self.owner,
                v4_only: self.family == libc::AF_INET,
                v6_only: self.family == libc::AF_INET6 && st.opts.v6only,
                reg: self.registered(t),
            },
        );
        st.phase = Phase::Listening(id);
        st.backlog = backlog;
        Ok(())
    }

    fn do_accept(&self, t: &mut Task, nonblock: bool) -> Result<Arc<dyn Socket>, Errno> {
        let id = match self.st.lock().phase {
            Phase::Listening(id) => id,
            _ => return Err(Errno::EINVAL),
        };
        let timeo = if nonblock {
            Timeout(Some(0))
        } else {
            self.st.lock().opts.rcvtimeo
        };
        loop {
            {
                let st = self.st.lock();
                if !matches!(st.phase, Phase::Listening(_)) {
                    return Err(Errno::EINVAL);
                }
                let mut g = self.stack.lock();
                if let Some(h) = g.take_established(id) {
                    let owner = g.new_owner();
                    let port = st.local.map_or(0, |l| l.port);
                    g.clone_binding(self.owner, owner, port);
                    let child = TcpSocket::make(
                        t,
                        self.family,
                        self.stack.clone(),
                        owner,
                        Phase::Connected(h),
                    );
                    let c = child.as_any().downcast_ref::<TcpSocket>().unwrap();
                    {
                        let mut cs = c.st.lock();
                        cs.opts = st.opts.clone();
                        cs.nodelay = st.nodelay;
                        cs.keepidle = st.keepidle;
                        cs.keepintvl = st.keepintvl;
                        cs.keepcnt = st.keepcnt;
                        cs.user_timeout = st.user_timeout;
                        cs.local = st.local;
                        Self::apply(&cs, g.tcp(h));
                    }
                    g.watch(h, Arc::downgrade(&c.queue));
                    g.register(h, c.registered(t));
                    return Ok(child);
                }
            }
            let q = self.queue.clone();
            wait(t, &q, timeo, || self.stack.peek().has_established(id))?;
        }
    }

    fn handle(&self) -> Option<SocketHandle> {
        match self.st.lock().phase {
            Phase::Connected(h) | Phase::Connecting(h) => Some(h),
            _ => None,
        }
    }

    fn do_send(&self, t: &mut Task, args: SendArgs<'_>) -> Result<usize, Errno> {
        let SendArgs {
            src, flags, addr, ..
        } = args;
        if flags & MSG_OOB != 0 {
            t.kernel.note_unsupported("TCP MSG_OOB send", "EOPNOTSUPP");
            return Err(Errno::EOPNOTSUPP);
        }
        let _ = addr;
        let nonblock = flags & MSG_DONTWAIT != 0;
        let timeo = if nonblock {
            Timeout(Some(0))
        } else {
            self.st.lock().opts.sndtimeo
        };
        let mut done = 0usize;
        loop {
            {
                let mut st = self.st.lock();
                let mut g = self.stack.lock();
                self.settle(&mut st, &mut g);
                if let Some(e) = st.err.take() {
                    return if done > 0 { Ok(done) } else { Err(e) };
                }
                let h = match st.phase {
                    Phase::Connected(h) => h,
                    Phase::Connecting(_) => {
                        drop(g);
                        drop(st);
                        if nonblock {
                            return Err(Errno::EAGAIN);
                        }
                        self.wait_connected(t)?;
                        continue;
                    }
                    _ => {
                        // Linux's sk_stream_wait_connect on a socket that
                        // is not connecting.
                        drop(g);
                        drop(st);
                        if flags & MSG_NOSIGNAL == 0 {
                            t.raise(libc::SIGPIPE);
                        }
                        return Err(Errno::EPIPE);
                    }
                };
                let after_fin = g.peer_finished(h);
                let s = g.tcp(h);
                if Self::was_reset(&st, s) && !st.reset_reported {
                    st.reset_reported = true;
                    if done > 0 {
                        return Ok(done);
                    }
                    // Linux's tcp_reset: after the peer's FIN it is EPIPE.
                    if after_fin {
                        drop(g);
                        drop(st);
                        if flags & MSG_NOSIGNAL == 0 {
                            t.raise(libc::SIGPIPE);
                        }
                        return Err(Errno::EPIPE);
                    }
                    return Err(Errno::ECONNRESET);
                }
                if st.closed_by_us || !s.may_send() {
                    if done > 0 {
                        return Ok(done);
                    }
                    drop(g);
                    drop(st);
                    if flags & MSG_NOSIGNAL == 0 {
                        t.raise(libc::SIGPIPE);
                    }
                    return Err(Errno::EPIPE);
                }
                let room = s.send_capacity() - s.send_queue();
                if room > 0 {
                    // Straight from guest memory into the send buffer
                    // (twice when its free space wraps around).
                    for _ in 0..2 {
                        let want = src.remaining();
                        if want == 0 {
                            break;
                        }
                        let r = s.send(|buf: &mut [u8]| {
                            let n = buf.len().min(want);
                            match src.fill(&mut buf[..n]) {
                                Ok(()) => (n, Ok(n)),
                                Err(e) => (0, Err(e)),
                            }
                        });
                        match r {
                            Ok(Ok(0)) | Err(_) => break,
                            Ok(Ok(n)) => done += n,
                            Ok(Err(e)) => return if done > 0 { Ok(done) } else { Err(e) },
                        }
                    }
                    if src.remaining() == 0 {
                        return Ok(done);
                    }
                    continue;
                }
            }
            if nonblock {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(Errno::EAGAIN)
                };
            }
            let q = self.queue.clone();
            match wait(t, &q, timeo, || self.writable()) {
                Ok(()) => {}
                Err(e) => return if done > 0 { Ok(done) } else { Err(e) },
            }
        }
    }

    fn writable(&self) -> bool {
        let mut st = self.st.lock();
        let mut g = self.stack.peek();
        self.settle(&mut st, &mut g);
        if st.err.is_some() {
            return true;
        }
        match st.phase {
            Phase::Connected(h) => {
                let s = g.tcp(h);
                !s.may_send() || s.send_queue() < s.send_capacity()
            }
            Phase::Connecting(_) => false,
            _ => true,
        }
    }

    fn readable(&self) -> bool {
        let mut st = self.st.lock();
        let mut g = self.stack.peek();
        self.settle(&mut st, &mut g);
        if st.err.is_some() || st.shut_rd {
            return true;
        }
        match st.phase {
            Phase::Connected(h) => {
                let s = g.tcp(h);
                s.recv_queue() > 0 || !s.may_recv()
            }
            Phase::Connecting(_) => false,
            _ => true,
        }
    }

    fn do_recv(&self, t: &mut Task, args: RecvArgs<'_>) -> Result<Received, Errno> {
        let RecvArgs { dst, flags } = args;
        if flags & MSG_OOB != 0 {
            // No urgent data is ever queued: Linux's answer without any.
            return Err(Errno::EINVAL);
        }
        let nonblock = flags & MSG_DONTWAIT != 0;
        let timeo = if nonblock {
            Timeout(Some(0))
        } else {
            self.st.lock().opts.rcvtimeo
        };
        let want = dst.room();
        let mut done = 0usize;
        loop {
            {
                let mut st = self.st.lock();
                let mut g = self.stack.lock();
                self.settle(&mut st, &mut g);
                let h = match st.phase {
                    Phase::Connected(h) => h,
                    Phase::Connecting(_) => {
                        if nonblock {
                            return Err(Errno::EAGAIN);
                        }
                        drop(g);
                        drop(st);
                        let q = self.queue.clone();
                        wait(t, &q, timeo, || self.readable())?;
                        continue;
                    }
                    _ => {
                        if let Some(e) = st.err.take() {
                            return Err(e);
                        }
                        return Err(Errno::ENOTCONN);
                    }
                };
                let s = g.tcp(h);
                let avail = s.recv_queue();
                if avail > 0 && want > done {
                    let n = avail.min(want - done);
                    let got = if flags & (MSG_PEEK | MSG_TRUNC) != 0 {
                        let mut buf = vec![0u8; n];
                        let got = if flags & MSG_PEEK != 0 {
                            s.peek_slice(&mut buf).unwrap_or(0)
                        } else {
                            s.recv_slice(&mut buf).unwrap_or(0)
                        };
                        drop(g);
                        drop(st);
                        if flags & MSG_TRUNC == 0 {
                            dst.put(&buf[..got])?;
                        }
                        got
                    } else {
                        // Straight from the receive buffer into guest
                        // memory (twice when the data wraps around); bytes
                        // the guest cannot take stay queued.
                        let mut got = 0;
                        for _ in 0..2 {
                            let left = n - got;
                            if left == 0 {
                                break;
                            }
                            let r = s.recv(|buf: &mut [u8]| {
                                let k = buf.len().min(left);
                                match dst.put(&buf[..k]) {
                                    Ok(()) => (k, Ok(k)),
                                    Err(e) => (0, Err(e)),
                                }
                            });
                            match r {
                                Ok(Ok(0)) | Err(_) => break,
                                Ok(Ok(k)) => got += k,
                                Ok(Err(e)) => {
                                    if got + done == 0 {
                                        return Err(e);
                                    }
                                    break;
                                }
                            }
                        }
                        drop(g);
                        drop(st);
                        got
                    };
                    done += got;
                    if done >= want || flags & MSG_WAITALL == 0 || flags & MSG_PEEK != 0 {
                        return Ok(Received {
                            len: done,
                            ..Default::default()
                        });
                    }
                    continue;
                }
                if want == 0 {
                    return Ok(Received::default());
                }
                if Self::was_reset(&st, s) && !st.reset_reported {
                    st.reset_reported = true;
                    if done > 0 {
                        return Ok(Received {
                            len: done,
                            ..Default::default()
                        });
                    }
                    return Err(Errno::ECONNRESET);
                }
                if !s.may_recv() || st.shut_rd {
                    return Ok(Received {
                        len: done,
                        ..Default::default()
                    });
                }
                if let Some(e) = st.err.take() {
                    return if done > 0 {
                        Ok(Received {
                            len: done,
                            ..Default::default()
                        })
                    } else {
                        Err(e)
                    };
                }
            }
            if nonblock {
                return if done > 0 {
                    Ok(Received {
                        len: done,
                        ..Default::default()
                    })
                } else {
                    Err(Errno::EAGAIN)
                };
            }
            let q = self.queue.clone();
            match wait(t, &q, timeo, || self.readable()) {
                Ok(()) => {}
                Err(e) => {
                    if done > 0 {
                        return Ok(Received {
                            len: done,
                            ..Default::default()
                        });
                    }
                    return Err(e);
                }
            }
        }
    }

    fn poll_mask(&self) -> i16 {
        let mut st = self.st.lock();
        let mut g = self.stack.peek();
        self.settle(&mut st, &mut g);
        let mut m: i16 = 0;
        if st.err.is_some() {
            m |= libc::POLLERR;
        }
        let inout = libc::POLLIN | libc::POLLRDNORM;
        let out = libc::POLLOUT | libc::POLLWRNORM;
        // Linux's tcp_poll: a closed socket is hung up; a shut receive
        // side is readable; a shut send side is writable (so a writer
        // wakes to its EPIPE); nothing but errors while connecting.
        match st.phase {
            Phase::Listening(id) => {
                if g.has_established(id) {
                    m |= inout;
                }
            }
            Phase::Unbound | Phase::Bound => {
                m |= libc::POLLHUP | out;
                if st.failed {
                    m |= inout | libc::POLLRDHUP;
                }
            }
            Phase::Connecting(_) => {}
            Phase::Connected(h) => {
                let s = g.tcp(h);
                let closed = s.state() == TcpState::Closed;
                let reset = Self::was_reset(&st, s);
                let rd_shut = !s.may_recv() || st.shut_rd || reset;
                let wr_shut = st.closed_by_us || reset;
                if reset && !st.reset_reported {
                    m |= libc::POLLERR;
                }
                if closed || (rd_shut && wr_shut) {
                    m |= libc::POLLHUP;
                }
                if rd_shut {
                    m |= inout | libc::POLLRDHUP;
                }
                if s.recv_queue() > 0 {
                    m |= inout;
                }
                if wr_shut || s.send_queue() < s.send_capacity() {
                    m |= out;
                }
            }
        }
        m
    }

    fn tcp_get(&self, t: &Task, name: i32, len: usize) -> Result<Vec<u8>, Errno> {
        let mut st = self.st.lock();
        Ok(match name {
            TCP_NODELAY => int_val(st.nodelay as i32),
            TCP_CORK => int_val(st.cork as i32),
            TCP_QUICKACK => int_val(st.quickack as i32),
            TCP_KEEPIDLE => int_val(st.keepidle),
            TCP_KEEPINTVL => int_val(st.keepintvl),
            TCP_KEEPCNT => int_val(st.keepcnt),
            TCP_SYNCNT => int_val(st.syncnt),
            TCP_USER_TIMEOUT => int_val(st.user_timeout as i32),
            TCP_DEFER_ACCEPT => int_val(st.defer_accept),
            TCP_LINGER2 => int_val(st.linger2),
            TCP_WINDOW_CLAMP => int_val(st.window_clamp),
            TCP_NOTSENT_LOWAT => int_val(st.notsent_lowat as i32),
            TCP_MAXSEG => {
                let mss = match st.phase {
                    Phase::Connected(_) => LOOPBACK_MSS as i32,
                    _ if st.maxseg > 0 => st.maxseg,
                    _ => 536,
                };
                int_val(mss)
            }
            TCP_CONGESTION => {
                let mut v = b"cubic".to_vec();
                v.resize(len.min(16), 0);
                v
            }
            TCP_INFO => {
                let mut g = self.stack.peek();
                self.settle(&mut st, &mut g);
                let mut b = vec![0u8; TCP_INFO_LEN];
                let state = match st.phase {
                    Phase::Connected(h) | Phase::Connecting(h) => {
                        net::linux_tcp_state(g.tcp(h).state())
                    }
                    Phase::Listening(_) => 10,
                    _ => 7,
                };
                b[0] = state;
                if let Phase::Connected(h) = st.phase {
                    let s = g.tcp(h);
                    // tcpi_rto, tcpi_snd_mss, tcpi_rcv_mss, tcpi_unacked.
                    b[8..12].copy_from_slice(&200_000u32.to_ne_bytes());
                    b[16..20].copy_from_slice(&LOOPBACK_MSS.to_ne_bytes());
                    b[20..24].copy_from_slice(&536u32.to_ne_bytes());
                    let _ = s;
                    // tcpi_snd_cwnd.
                    b[80..84].copy_from_slice(&10u32.to_ne_bytes());
                }
                b
            }
            TCP_FASTOPEN => int_val(0),
            _ => return Err(inet::unknown_option(t, "getsockopt", libc::SOL_TCP, name)),
        })
    }

    fn tcp_set(&self, t: &Task, name: i32, val: &[u8]) -> Result<(), Errno> {
        if name == TCP_CONGESTION {
            let n: Vec<u8> = val.iter().copied().take_while(|&c| c != 0).collect();
            return match n.as_slice() {
                b"cubic" | b"reno" => Ok(()),
                _ => Err(Errno::ENOENT),
            };
        }
        let v = get_int(val)?;
        let mut st = self.st.lock();
        match name {
            TCP_NODELAY => st.nodelay = v != 0,
            // Corking holds small writes back until uncorked; smoltcp has
            // no cork, so Nagle's rule stands in for it while corked.
            TCP_CORK => st.cork = v != 0,
            TCP_QUICKACK => st.quickack = v != 0,
            TCP_KEEPIDLE => {
                if !(1..=32767).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                st.keepidle = v;
            }
            TCP_KEEPINTVL => {
                if !(1..=32767).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                st.keepintvl = v;
            }
            TCP_KEEPCNT => {
                if !(1..=127).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                st.keepcnt = v;
            }
            TCP_SYNCNT => {
                if !(1..=127).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                st.syncnt = v;
            }
            TCP_USER_TIMEOUT => {
                if v < 0 {
                    return Err(Errno::EINVAL);
                }
                st.user_timeout = v as u32;
            }
            TCP_DEFER_ACCEPT => st.defer_accept = v.max(0),
            TCP_LINGER2 => st.linger2 = v,
            TCP_WINDOW_CLAMP => st.window_clamp = v.max(0),
            TCP_NOTSENT_LOWAT => st.notsent_lowat = v as u32,
            TCP_MAXSEG => {
                if v != 0 && !(88..=32767).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                st.maxseg = v;
            }
            TCP_FASTOPEN => {}
            _ => return Err(inet::unknown_option(t, "setsockopt", libc::SOL_TCP, name)),
        }
        let mut g = self.stack.lock();
        if let Phase::Connected(h) = st.phase {
            Self::apply(&st, g.tcp(h));
        }
        Ok(())
    }
}

impl Socket for TcpSocket {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn family(&self) -> i32 {
        self.family
    }

    fn sock_type(&self) -> i32 {
        libc::SOCK_STREAM
    }

    fn protocol(&self) -> i32 {
        libc::IPPROTO_TCP
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

    fn listen(&self, t: &mut Task, backlog: i32) -> Result<(), Errno> {
        self.do_listen(t, backlog)
    }

    fn connect(&self, t: &mut Task, addr: &[u8], nonblock: bool) -> Result<(), Errno> {
        self.do_connect(t, addr, nonblock)
    }

    fn accept(&self, t: &mut Task, nonblock: bool) -> Result<Arc<dyn Socket>, Errno> {
        self.do_accept(t, nonblock)
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        let mut st = self.st.lock();
        let mut g = self.stack.lock();
        self.settle(&mut st, &mut g);
        match st.phase {
            Phase::Connected(h) => {
                if how == libc::SHUT_RD || how == libc::SHUT_RDWR {
                    st.shut_rd = true;
                }
                if how == libc::SHUT_WR || how == libc::SHUT_RDWR {
                    st.closed_by_us = true;
                    g.tcp(h).close();
                }
                drop(g);
                drop(st);
                self.queue.notify(ALL_EVENTS);
                Ok(())
            }
            Phase::Listening(_) if how == libc::SHUT_WR => Ok(()),
            Phase::Listening(id) => {
                // Linux disconnects a listener shut for reading: it stops
                // listening and stays bound.
                g.stop_listener(id);
                st.phase = Phase::Bound;
                drop(g);
                drop(st);
                self.queue.notify(ALL_EVENTS);
                Ok(())
            }
            _ => Err(Errno::ENOTCONN),
        }
    }

    fn sockname(&self) -> Vec<u8> {
        let st = self.st.lock();
        let mut g = self.stack.peek();
        let (ip, port) = self.local_of(&st, &mut g);
        inet::format(self.family, ip, port)
    }

    fn peername(&self) -> Result<Vec<u8>, Errno> {
        let mut st = self.st.lock();
        let mut g = self.stack.peek();
        self.settle(&mut st, &mut g);
        match st.phase {
            Phase::Connected(h) => {
                let s = g.tcp(h);
                match s.remote_endpoint() {
                    Some(e) if s.state() != TcpState::Closed || st.closed_by_us => {
                        Ok(inet::format(self.family, net::from_ip(e.addr), e.port))
                    }
                    _ => Err(Errno::ENOTCONN),
                }
            }
            _ => Err(Errno::ENOTCONN),
        }
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
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        if level == libc::SOL_TCP {
            return self.tcp_get(t, name, len);
        }
        if level == libc::SOL_SOCKET && name == libc::SO_ERROR {
            let mut st = self.st.lock();
            let mut g = self.stack.peek();
            self.settle(&mut st, &mut g);
            let mut e = st.err.take();
            if e.is_none() {
                if let Phase::Connected(h) = st.phase {
                    if Self::was_reset(&st, g.tcp(h)) && !st.reset_reported {
                        st.reset_reported = true;
                        e = Some(Errno::ECONNRESET);
                    }
                }
            }
            return Ok(int_val(e.map_or(0, |e| e.raw())));
        }
        let st = self.st.lock();
        let listening = matches!(st.phase, Phase::Listening(_));
        match inet::get_shared(
            &st.opts,
            self.family,
            libc::SOCK_STREAM,
            libc::IPPROTO_TCP,
            level,
            name,
            listening,
        ) {
            Handled::Done(r) => r,
            Handled::NotMine => Err(inet::unknown_option(t, "getsockopt", level, name)),
        }
    }

    fn setsockopt(&self, t: &mut Task, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        if level == libc::SOL_TCP {
            return self.tcp_set(t, name, val);
        }
        let mut st = self.st.lock();
        let bound = st.local.is_some();
        match inet::set_shared(t, &mut st.opts, self.family, level, name, val, bound) {
            Handled::Done(r) => {
                r?;
                let mut g = self.stack.lock();
                if let Phase::Connected(h) = st.phase {
                    Self::apply(&st, g.tcp(h));
                }
                Ok(())
            }
            Handled::NotMine => Err(inet::unknown_option(t, "setsockopt", level, name)),
        }
    }

    fn ioctl(&self, t: &mut Task, request: u32, arg: u64) -> Result<u64, Errno> {
        const SIOCINQ: u32 = libc::FIONREAD as u32;
        const SIOCOUTQ: u32 = 0x5411;
        const SIOCOUTQNSD: u32 = 0x894b;
        const SIOCATMARK: u32 = 0x8905;
        let n: i32 = match request {
            SIOCINQ | SIOCOUTQ | SIOCOUTQNSD => {
                let st = self.st.lock();
                match st.phase {
                    Phase::Listening(_) => return Err(Errno::EINVAL),
                    Phase::Connected(h) | Phase::Connecting(h) => {
                        let mut g = self.stack.peek();
                        let s = g.tcp(h);
                        if request == SIOCINQ {
                            s.recv_queue() as i32
                        } else {
                            s.send_queue() as i32
                        }
                    }
                    _ => 0,
                }
            }
            SIOCATMARK => 0,
            _ => return inet::interface_ioctl(t, request, arg),
        };
        t.mm.write_obj(arg, &n)?;
        Ok(0)
    }

    fn readiness(&self, events: i16) -> i16 {
        self.poll_mask() & (events | libc::POLLERR | libc::POLLHUP)
    }

    fn waitq(&self) -> Arc<WaitQueue> {
        self.queue.clone()
    }

    fn take_error(&self) -> Option<Errno> {
        self.st.lock().err.take()
    }

    fn release(&self) {
        let st = self.st.lock();
        let mut g = self.stack.lock();
        match st.phase {
            Phase::Unbound => {}
            Phase::Bound => g.unbind(self.owner),
            Phase::Listening(id) => g.close_listener(id),
            Phase::Connecting(h) | Phase::Connected(h) => {
                let abort = {
                    let s = g.tcp(h);
                    s.recv_queue() > 0 || (st.opts.linger.0 != 0 && st.opts.linger.1 == 0)
                };
                let s = g.tcp(h);
                if abort {
                    s.abort();
                } else {
                    s.close();
                }
                g.unregister(h);
                g.orphan(h, Some(self.owner));
            }
        }
    }

    fn read_nonblocking(&self, dst: &mut [u8]) -> Result<usize, Errno> {
        let Some(h) = self.handle() else {
            return Err(Errno::ENOTCONN);
        };
        let mut g = self.stack.lock();
        let s = g.tcp(h);
        if s.recv_queue() == 0 {
            return if s.may_recv() {
                Err(Errno::EAGAIN)
            } else {
                Ok(0)
            };
        }
        Ok(s.recv_slice(dst).unwrap_or(0))
    }

    fn write_nonblocking(&self, src: &[u8]) -> Result<usize, Errno> {
        let Some(h) = self.handle() else {
            return Err(Errno::ENOTCONN);
        };
        let mut g = self.stack.lock();
        let s = g.tcp(h);
        if !s.may_send() {
            return Err(Errno::EPIPE);
        }
        match s.send_slice(src) {
            Ok(0) => Err(Errno::EAGAIN),
            Ok(n) => Ok(n),
            Err(_) => Err(Errno::EPIPE),
        }
    }
}
