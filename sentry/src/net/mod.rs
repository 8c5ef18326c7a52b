//! The sandbox's TCP/IP stack: smoltcp's interfaces and sockets, and what
//! a Linux program needs around them.
//!
//! smoltcp does the protocols (IPv4, IPv6, TCP with its congestion
//! control, UDP, ICMP). Around it, this module keeps what Linux has and
//! smoltcp does not:
//!
//! * a port table (`bind` conflicts, SO_REUSEADDR/SO_REUSEPORT, ephemeral
//!   ports from `ip_local_port_range`, ports held through TIME_WAIT);
//! * listen backlogs: a listener is a queue of smoltcp sockets, one spare
//!   socket always waiting in LISTEN while the queue has room, so a SYN
//!   finds a socket; with the queue full a SYN is dropped (the client
//!   retries), never answered with a reset;
//! * sockets the program closed ("orphans") live on until smoltcp is done
//!   with them (the FIN exchange), still holding their ports; one that
//!   reaches TIME_WAIT leaves smoltcp's socket set then, and only a small
//!   record of it stays for Linux's 60 seconds (its port held, listed in
//!   /proc/net/tcp), as Linux's own timewait sockets do: a server closing
//!   thousands of connections a second must not make every poll walk
//!   thousands of sockets;
//! * readiness: after every poll the wait queue of each socket whose state
//!   moved is notified, which is what poll, epoll and blocked calls wait on.
//!
//! One lock (`NetStack::inner`) covers the stack. Socket calls take it,
//! act, poll the interfaces until no packet is left in flight (loopback
//! traffic is delivered within the call that sent it), and notify after
//! letting it go. A timer thread polls at smoltcp's deadlines
//! (retransmissions, keep-alives, TIME_WAIT).

pub mod config;
pub mod device;
pub mod ether;
pub mod ioctl;
pub mod proc;
pub mod rtnetlink;
pub mod sock_diag;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpListenEndpoint};

use crate::errno::Errno;
use crate::kernel::waiter::{WaitQueue, ALL_EVENTS};
use device::Loopback;

/// What the stack starts with: its mode and the interfaces runsc took
/// over from the host for it.
#[derive(Debug, Default)]
pub struct NetBoot {
    pub mode: NetworkMode,
    pub links: Vec<ether::HostLink>,
    /// `--network=host`: the host's interfaces but loopback, listed only.
    pub listed: Vec<ether::ListedLink>,
}

/// How the sandbox is networked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// Loopback only, in the sentry.
    #[default]
    None,
    /// The sentry's stack on the container's interfaces.
    Sandbox,
    /// IP sockets are host sockets the sentry makes for the guest
    /// (`fsimpl::socket::hostinet`); the stack keeps loopback only, for
    /// the interface listings.
    Host,
}

/// `IFF_*` bits of a link.
pub const IFF_UP: u32 = 0x1;
pub const IFF_BROADCAST: u32 = 0x2;
pub const IFF_LOOPBACK: u32 = 0x8;
pub const IFF_RUNNING: u32 = 0x40;
pub const IFF_MULTICAST: u32 = 0x1000;
pub const IFF_LOWER_UP: u32 = 0x10000;

/// ARPHRD_* link types.
pub const ARPHRD_ETHER: u16 = 1;
pub const ARPHRD_LOOPBACK: u16 = 772;

/// Counters of a link, as /proc/net/dev and netlink's IFLA_STATS show.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

/// A network interface of the sandbox.
#[derive(Clone, Debug)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// IFF_* bits.
    pub flags: u32,
    /// ARPHRD_*.
    pub kind: u16,
    pub stats: LinkStats,
}

/// An address on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrInfo {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix: u8,
}

/// A route of the sandbox's main table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    pub dst: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    pub index: u32,
    /// The preferred source (the interface's address).
    pub src: Option<IpAddr>,
}

/// Which protocol a port belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

/// One socket's claim on a port.
#[derive(Clone, Debug)]
struct Binding {
    owner: u64,
    /// Accepted connections that hold this (their listener's) binding.
    holders: u32,
    /// The owner let go of it while connections still hold it.
    released: bool,
    addr: IpAddr,
    /// An IPv6 socket with IPV6_V6ONLY: its unspecified address does not
    /// cover IPv4.
    v6only: bool,
    reuseaddr: bool,
    reuseport: bool,
    listening: bool,
    uid: u32,
}

/// How long a connection stays in TIME_WAIT (Linux's TCP_TIMEWAIT_LEN).
pub const TIME_WAIT_LEN: std::time::Duration = std::time::Duration::from_secs(60);

/// A connection in TIME_WAIT, out of smoltcp's socket set: it holds its
/// binding until it expires. A segment for it meets no socket (a
/// retransmitted FIN gets a reset, where Linux would acknowledge it; a
/// new SYN goes to the listener, as Linux lets a SYN reopen TIME_WAIT).
struct TimeWait {
    expires: std::time::Instant,
    owner: Option<u64>,
    info: SocketInfo,
}

/// What a socket asks of `bind`.
#[derive(Clone, Copy, Debug)]
pub struct BindRequest {
    pub addr: IpAddr,
    pub port: u16,
    pub v6only: bool,
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub uid: u32,
}

/// Linux's TCP states (`TCP_ESTABLISHED` = 1, ...), for TCP_INFO,
/// /proc/net/tcp and sock_diag.
pub fn linux_tcp_state(s: tcp::State) -> u8 {
    match s {
        tcp::State::Established => 1,
        tcp::State::SynSent => 2,
        tcp::State::SynReceived => 3,
        tcp::State::FinWait1 => 4,
        tcp::State::FinWait2 => 5,
        tcp::State::TimeWait => 6,
        tcp::State::Closed => 7,
        tcp::State::CloseWait => 8,
        tcp::State::LastAck => 9,
        tcp::State::Listen => 10,
        tcp::State::Closing => 11,
    }
}

/// A socket as /proc/net/{tcp,udp}{,6} lists it.
#[derive(Clone, Debug)]
pub struct SocketInfo {
    pub proto: Proto,
    /// AF_INET or AF_INET6 (which file lists it).
    pub family: i32,
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
    /// Linux's TCP state number; 7 (CLOSE) for an unconnected UDP socket,
    /// 1 for a connected one.
    pub state: u8,
    pub tx_queue: usize,
    pub rx_queue: usize,
    pub uid: u32,
    /// 0 for a connection not yet accepted (it has no socket yet).
    pub inode: u64,
    /// A listener that takes IPv6 only (sock_diag's INET_DIAG_SKV6ONLY).
    pub v6only: bool,
}

/// What the socket layer tells the stack about one of its sockets, for
/// listings.
#[derive(Clone, Debug)]
pub struct Registered {
    pub family: i32,
    pub uid: u32,
    pub inode: u64,
    /// For a UDP socket: the peer it connected to.
    pub peer: Option<(IpAddr, u16)>,
    /// IPV6_V6ONLY: an AF_INET6 socket that takes no IPv4.
    pub v6only: bool,
}

/// A datagram the stack took out of the smoltcp socket that received it,
/// for the socket Linux would have given it to.
type Datagram = (Vec<u8>, udp::UdpMetadata);

/// A UDP socket's datagrams that the stack handed it, and their bytes.
#[derive(Default)]
struct SideQueue {
    q: VecDeque<Datagram>,
    bytes: usize,
}

/// A listener's queue of connections.
pub struct ListenQueue {
    pub endpoint: IpListenEndpoint,
    /// The most connections, complete or not, the queue holds
    /// (`backlog + 1`, as Linux's `sk_acceptq_is_full` allows).
    pub limit: usize,
    /// smoltcp sockets in LISTEN, SYN-RECEIVED or past it, not yet
    /// accepted, in the order they took their SYN.
    pub pending: Vec<SocketHandle>,
    /// Where the listener waits.
    pub queue: Weak<WaitQueue>,
    /// Buffer sizes of new connections.
    pub rx_size: usize,
    pub tx_size: usize,
    pub nodelay: bool,
    /// The listener's binding owner; its connections get copies.
    pub owner: u64,
    /// IPv4-only (an AF_INET listener on the unspecified address).
    pub v4_only: bool,
    /// IPv6-only (IPV6_V6ONLY).
    pub v6_only: bool,
    /// The listening socket, for listings.
    pub reg: Registered,
}

/// What a smoltcp socket of the stack is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Tcp,
    Udp,
}

/// Sockets smoltcp woke (their state, queues or windows moved) since the
/// stack last looked: only these are looked at after a poll.
#[derive(Default)]
struct Dirty(std::sync::Mutex<Vec<SocketHandle>>);

/// The waker smoltcp calls for one socket.
struct HandleWaker {
    h: SocketHandle,
    dirty: Arc<Dirty>,
}

impl std::task::Wake for HandleWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.dirty
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.h);
    }
}

/// A socket's wait queue and the waker smoltcp calls for it.
struct Watch {
    queue: Weak<WaitQueue>,
    waker: std::task::Waker,
}

/// The stack's state, under one lock.
pub struct Inner {
    pub iface: Interface,
    pub dev: Loopback,
    pub sockets: SocketSet<'static>,
    /// What each socket of `sockets` is (a handle is looked up by kind,
    /// never by a walk of the set).
    kinds: HashMap<SocketHandle, Kind>,
    watches: HashMap<SocketHandle, Watch>,
    dirty: Arc<Dirty>,
    /// TCP sockets that got their peer's FIN (a reset after it is EPIPE to
    /// the program, not ECONNRESET).
    fin_seen: std::collections::HashSet<SocketHandle>,
    /// Sockets the program closed, kept until smoltcp is done, with the
    /// binding owner to release then.
    orphans: Vec<(SocketHandle, Option<u64>)>,
    ports: HashMap<(Proto, u16), Vec<Binding>>,
    /// Accepted connections' owners: the port and owner of the binding
    /// they hold (their listener's).
    copies: HashMap<u64, (u16, u64)>,
    /// Connections in TIME_WAIT, oldest first.
    time_wait: VecDeque<TimeWait>,
    /// Errors ICMP reported for sockets (a refused or unreachable peer),
    /// until their socket takes them.
    icmp_errors: HashMap<SocketHandle, Errno>,
    /// UDP sockets by bound port.
    udp_ports: HashMap<u16, Vec<SocketHandle>>,
    /// Datagrams the stack handed to a UDP socket itself (see
    /// `demux_udp`), read before what its smoltcp socket holds.
    udp_side: HashMap<SocketHandle, SideQueue>,
    next_ephemeral: u16,
    pub listeners: HashMap<u64, ListenQueue>,
    registered: HashMap<SocketHandle, Registered>,
    /// Owner ids of bindings, for sockets that have none yet.
    next_owner: u64,
    links: Vec<LinkInfo>,
    addrs: Vec<AddrInfo>,
    /// Routes beyond the addresses' own subnets (gateways, as the host
    /// had them).
    routes: Vec<RouteInfo>,
    /// Where the timer thread must poll next.
    pub next_poll: Option<std::time::Instant>,
}

/// The sandbox's network stack.
pub struct NetStack {
    inner: Mutex<Inner>,
    /// Kicks the timer thread when a deadline moved earlier.
    timer_cv: Condvar,
    start: std::time::Instant,
    pub mode: NetworkMode,
    /// net.ipv4.ip_local_port_range.
    pub port_range: Mutex<(u16, u16)>,
}

/// The guard of the stack's lock: dropping it polls, lets the lock go
/// and notifies the sockets whose state moved.
pub struct Locked<'a> {
    stack: &'a NetStack,
    guard: Option<MutexGuard<'a, Inner>>,
}

impl std::ops::Deref for Locked<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        self.guard.as_ref().unwrap()
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        self.guard.as_mut().unwrap()
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let mut g = self.guard.take().unwrap();
        let now = self.stack.now();
        g.poll(now);
        let wake = g.changed();
        let g2 = &mut *g;
        let delay = g2.iface.poll_delay(now, &g2.sockets);
        let earlier = self.stack.set_deadline(&mut g, delay);
        drop(g);
        if earlier {
            self.stack.timer_cv.notify_one();
        }
        for q in wake {
            q.notify(ALL_EVENTS);
        }
    }
}

/// TCP buffer sizes: Linux's tcp_rmem and tcp_wmem defaults are 128 KiB
/// and 16 KiB and grow with the connection; a smoltcp buffer is fixed,
/// so a connection gets what Linux would grow to on a fast path.
pub const TCP_RX_DEFAULT: usize = 256 * 1024;
pub const TCP_TX_DEFAULT: usize = 256 * 1024;
/// How long a connection attempt lasts without an answer (Linux: six SYN
/// retries, 127 seconds).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(127);

impl NetStack {
    /// A stack with the loopback interface `lo` (127.0.0.1/8 and ::1),
    /// the interfaces of `boot` with their addresses and routes, its
    /// timer thread and a receiving thread per interface.
    pub fn new(boot: NetBoot) -> Arc<NetStack> {
        let start = std::time::Instant::now();
        let mut dev = Loopback::new();
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = random_seed();
        let mut iface = Interface::new(config, &mut dev, smoltcp::time::Instant::ZERO);
        // 127.0.0.0/8 is local as a whole, as on Linux's lo, but smoltcp
        // takes only packets for its own addresses: with AnyIP it takes
        // every packet it is handed. Only local ones reach it: the device
        // loops back what is for 127/8 and the stack's addresses, and a
        // link passes on only what is for its addresses (or broadcast and
        // multicast).
        iface.set_any_ip(true);
        let mut links = vec![LinkInfo {
            index: 1,
            name: "lo".into(),
            mac: [0; 6],
            mtu: 65536,
            flags: IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP,
            kind: ARPHRD_LOOPBACK,
            stats: LinkStats::default(),
        }];
        let mut addrs = vec![
            AddrInfo {
                index: 1,
                addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                prefix: 8,
            },
            AddrInfo {
                index: 1,
                addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
                prefix: 128,
            },
        ];
        let mut routes = Vec::new();
        // The links' addresses come first in smoltcp's table: for a
        // destination on no subnet of the stack, smoltcp takes the first
        // address of the family as the source, which must be the one of
        // the link the default route leaves by (Linux's choice), not
        // 127.0.0.1.
        let mut cidrs = Vec::new();
        let mut fds = Vec::new();
        for h in boot.listed {
            links.push(LinkInfo {
                index: h.index,
                name: h.name,
                mac: h.mac,
                mtu: h.mtu,
                flags: h.flags,
                kind: h.kind,
                stats: LinkStats::default(),
            });
            addrs.extend(h.addrs.iter().map(|&(addr, prefix)| AddrInfo {
                index: h.index,
                addr,
                prefix,
            }));
            routes.extend(h.routes.iter().map(|r| RouteInfo {
                dst: mask_addr(r.dst, r.prefix),
                prefix: r.prefix,
                gateway: r.gateway,
                index: h.index,
                src: None,
            }));
        }
        for h in boot.links {
            links.push(LinkInfo {
                index: h.index,
                name: h.name.clone(),
                mac: h.mac,
                mtu: h.mtu,
                flags: IFF_UP | IFF_BROADCAST | IFF_RUNNING | IFF_MULTICAST | IFF_LOWER_UP,
                kind: ARPHRD_ETHER,
                stats: LinkStats::default(),
            });
            for &(a, p) in &h.addrs {
                addrs.push(AddrInfo {
                    index: h.index,
                    addr: a,
                    prefix: p,
                });
                cidrs.push(IpCidr::new(to_ip(a), p));
                dev.local.push(a);
            }
            for r in &h.routes {
                if let Some(gw) = r.gateway {
                    let via = to_ip(gw);
                    let cidr = IpCidr::new(to_ip(r.dst), r.prefix);
                    iface.routes_mut().update(|t| {
                        let _ = t.push(smoltcp::iface::Route {
                            cidr,
                            via_router: via,
                            preferred_until: None,
                            expires_at: None,
                        });
                    });
                }
                routes.push(RouteInfo {
                    dst: mask_addr(r.dst, r.prefix),
                    prefix: r.prefix,
                    gateway: r.gateway,
                    index: h.index,
                    src: None,
                });
            }
            fds.push((std::os::fd::AsRawFd::as_raw_fd(&h.fd), h.index));
            dev.ext.push(ether::EthLink::new(h));
        }
        iface.update_ip_addrs(|a| {
            for c in cidrs {
                let _ = a.push(c);
            }
            let _ = a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8));
            let _ = a.push(IpCidr::new(IpAddress::v6(0, 0, 0, 0, 0, 0, 0, 1), 128));
        });
        let seed = random_seed();
        let stack = Arc::new(NetStack {
            inner: Mutex::new(Inner {
                iface,
                dev,
                sockets: SocketSet::new(vec![]),
                kinds: HashMap::new(),
                watches: HashMap::new(),
                dirty: Arc::default(),
                fin_seen: Default::default(),
                orphans: Vec::new(),
                ports: HashMap::new(),
                copies: HashMap::new(),
                time_wait: VecDeque::new(),
                icmp_errors: HashMap::new(),
                udp_ports: HashMap::new(),
                udp_side: HashMap::new(),
                next_ephemeral: 32768 + (seed % 28232) as u16,
                listeners: HashMap::new(),
                registered: HashMap::new(),
                next_owner: 1,
                links,
                addrs,
                routes,
                next_poll: None,
            }),
            timer_cv: Condvar::new(),
            start,
            mode: boot.mode,
            port_range: Mutex::new((32768, 60999)),
        });
        let weak = Arc::downgrade(&stack);
        let _ = std::thread::Builder::new()
            .name("netstack-timer".into())
            .spawn(move || timer_loop(weak));
        for (fd, index) in fds {
            let weak = Arc::downgrade(&stack);
            let _ = std::thread::Builder::new()
                .name(format!("netstack-rx{index}"))
                .spawn(move || ether::receive_loop(weak, fd, index));
        }
        stack
    }

    /// Frames a link received: neighbour protocol frames are answered,
    /// IP packets for the stack are delivered (the poll on unlocking).
    pub fn receive_frames(&self, index: u32, frames: Vec<Vec<u8>>) {
        let mut g = self.lock();
        let dev = &mut g.dev;
        let Some(pos) = dev.ext.iter().position(|l| l.index == index) else {
            return;
        };
        let mut deliver = std::mem::take(&mut dev.queue);
        for f in frames {
            dev.ext[pos].receive(&f, &mut deliver);
        }
        dev.queue = deliver;
    }

    /// smoltcp's clock: time since the stack began.
    pub fn now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(self.start.elapsed().as_micros() as i64)
    }

    /// Takes the stack's lock (see [`Locked`]).
    pub fn lock(&self) -> Locked<'_> {
        Locked {
            stack: self,
            guard: Some(self.inner.lock()),
        }
    }

    /// Takes the stack's lock to look, or to change only what no packet
    /// depends on: no poll follows.
    pub fn peek(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    /// Records when the timer must poll next; whether that is earlier
    /// than it was.
    fn set_deadline(&self, g: &mut Inner, delay: Option<smoltcp::time::Duration>) -> bool {
        let at = delay.map(|d| std::time::Instant::now() + Duration::from_micros(d.total_micros()));
        let earlier = match (at, g.next_poll) {
            (Some(a), Some(b)) => a < b,
            (Some(_), None) => true,
            _ => false,
        };
        g.next_poll = at;
        earlier
    }

    // ----- What listings read -----

    pub fn links(&self) -> Vec<LinkInfo> {
        let g = self.inner.lock();
        let mut v = g.links.clone();
        for l in v.iter_mut() {
            if l.index == 1 {
                l.stats = g.dev.stats;
            } else if let Some(e) = g.dev.ext.iter().find(|e| e.index == l.index) {
                l.stats = e.stats;
            }
        }
        v
    }

    pub fn addrs(&self) -> Vec<AddrInfo> {
        self.inner.lock().addrs.clone()
    }

    /// The main table's routes: each address's prefix on its link.
    pub fn routes(&self) -> Vec<RouteInfo> {
        let g = self.inner.lock();
        let mut v: Vec<RouteInfo> = g
            .addrs
            .iter()
            .map(|a| RouteInfo {
                dst: mask_addr(a.addr, a.prefix),
                prefix: a.prefix,
                gateway: None,
                index: a.index,
                src: Some(a.addr),
            })
            .collect();
        v.extend(g.routes.iter().copied());
        v
    }

    /// Sets a link up or down (`ip link set lo up`): EPERM without
    /// CAP_NET_ADMIN is the caller's check. Loopback is always up.
    pub fn set_link_flags(&self, index: u32, flags: u32) -> Result<(), Errno> {
        let mut g = self.inner.lock();
        let l = g
            .links
            .iter_mut()
            .find(|l| l.index == index)
            .ok_or(Errno::ENODEV)?;
        let changeable = IFF_UP;
        l.flags = (l.flags & !changeable) | (flags & changeable);
        if l.flags & IFF_UP != 0 {
            l.flags |= IFF_RUNNING | IFF_LOWER_UP;
        } else {
            l.flags &= !(IFF_RUNNING | IFF_LOWER_UP);
        }
        let up = l.flags & IFF_UP != 0;
        if let Some(e) = g.dev.ext.iter_mut().find(|e| e.index == index) {
            e.up = up;
        }
        Ok(())
    }

    /// Every TCP or UDP socket, for /proc/net and sock_diag.
    pub fn sockets(&self, proto: Proto) -> Vec<SocketInfo> {
        let g = self.inner.lock();
        let mut out = Vec::new();
        for (h, r) in &g.registered {
            match proto {
                Proto::Tcp => {
                    let Some(s) =
                        g.sockets
                            .iter()
                            .find(|(hh, _)| hh == h)
                            .and_then(|(_, s)| match s {
                                smoltcp::socket::Socket::Tcp(t) => Some(t),
                                _ => None,
                            })
                    else {
                        continue;
                    };
                    let le = s.listen_endpoint();
                    let local = s
                        .local_endpoint()
                        .map(|e| (from_ip(e.addr), e.port))
                        .unwrap_or((
                            le.addr.map(from_ip).unwrap_or(unspecified(r.family)),
                            le.port,
                        ));
                    let remote = s
                        .remote_endpoint()
                        .map(|e| (from_ip(e.addr), e.port))
                        .unwrap_or((unspecified(r.family), 0));
                    out.push(SocketInfo {
                        proto,
                        family: r.family,
                        local,
                        remote,
                        state: linux_tcp_state(s.state()),
                        tx_queue: s.send_queue(),
                        rx_queue: s.recv_queue(),
                        uid: r.uid,
                        inode: r.inode,
                        v6only: false,
                    });
                }
                Proto::Udp => {
                    let Some(s) =
                        g.sockets
                            .iter()
                            .find(|(hh, _)| hh == h)
                            .and_then(|(_, s)| match s {
                                smoltcp::socket::Socket::Udp(u) => Some(u),
                                _ => None,
                            })
                    else {
                        continue;
                    };
                    let e = s.endpoint();
                    let queued = g.udp_recv_queue(*h);
                    out.push(SocketInfo {
                        proto,
                        family: r.family,
                        local: (e.addr.map(from_ip).unwrap_or(unspecified(r.family)), e.port),
                        remote: r.peer.unwrap_or((unspecified(r.family), 0)),
                        state: if r.peer.is_some() { 1 } else { 7 },
                        tx_queue: s.send_queue(),
                        rx_queue: queued,
                        uid: r.uid,
                        inode: r.inode,
                        v6only: false,
                    });
                }
            }
        }
        if proto == Proto::Tcp {
            out.extend(g.time_wait.iter().map(|t| t.info.clone()));
            // Listeners, as Linux lists them: the accept queue's length
            // and its limit in place of the receive and send queues.
            for (id, l) in &g.listeners {
                let (waiting, limit) = g.listener_backlog(*id);
                out.push(SocketInfo {
                    proto,
                    family: l.reg.family,
                    local: (
                        l.endpoint
                            .addr
                            .map(from_ip)
                            .unwrap_or(unspecified(l.reg.family)),
                        l.endpoint.port,
                    ),
                    remote: (unspecified(l.reg.family), 0),
                    state: linux_tcp_state(tcp::State::Listen),
                    tx_queue: limit,
                    rx_queue: waiting,
                    uid: l.reg.uid,
                    inode: l.reg.inode,
                    v6only: l.v6_only,
                });
                // Its connections past the handshake, not yet accepted.
                for h in &l.pending {
                    let s = g.sockets.get::<tcp::Socket>(*h);
                    if matches!(
                        s.state(),
                        tcp::State::Listen | tcp::State::SynReceived | tcp::State::Closed
                    ) {
                        continue;
                    }
                    let (Some(le), Some(re)) = (s.local_endpoint(), s.remote_endpoint()) else {
                        continue;
                    };
                    out.push(SocketInfo {
                        proto,
                        family: l.reg.family,
                        local: (from_ip(le.addr), le.port),
                        remote: (from_ip(re.addr), re.port),
                        state: linux_tcp_state(s.state()),
                        tx_queue: s.send_queue(),
                        rx_queue: s.recv_queue(),
                        uid: l.reg.uid,
                        inode: 0,
                        v6only: false,
                    });
                }
            }
        }
        out.sort_by_key(|s| s.inode);
        out
    }
}

/// The timer thread: polls at smoltcp's deadlines until the stack is
/// gone.
fn timer_loop(stack: Weak<NetStack>) {
    loop {
        let Some(s) = stack.upgrade() else {
            return;
        };
        let mut g = s.inner.lock();
        let due = g
            .next_poll
            .is_some_and(|at| at <= std::time::Instant::now());
        if due {
            g.next_poll = None;
            drop(g);
            // Polls, notifies and sets the next deadline.
            drop(s.lock());
            continue;
        }
        match g.next_poll {
            Some(at) => {
                let _ = s.timer_cv.wait_until(&mut g, at);
            }
            None => {
                // Wake now and then to notice the stack is gone.
                let _ = s.timer_cv.wait_for(&mut g, Duration::from_secs(1));
            }
        }
    }
}

fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    let _ = crate::hostcall::fill_random(&mut b);
    u64::from_ne_bytes(b)
}

/// An address as std has it.
pub fn from_ip(a: IpAddress) -> IpAddr {
    match a {
        IpAddress::Ipv4(a) => IpAddr::V4(a),
        IpAddress::Ipv6(a) => IpAddr::V6(a),
    }
}

/// An address as smoltcp has it.
pub fn to_ip(a: IpAddr) -> IpAddress {
    match a {
        IpAddr::V4(a) => IpAddress::Ipv4(a),
        IpAddr::V6(a) => IpAddress::Ipv6(a),
    }
}

/// The unspecified address of a family.
pub fn unspecified(family: i32) -> IpAddr {
    if family == libc::AF_INET6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// `a` with the bits past `prefix` cleared.
pub fn mask_addr(a: IpAddr, prefix: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix as u32)
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(v) & m))
        }
        IpAddr::V6(v) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix as u32)
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(v) & m))
        }
    }
}

/// Whether two bound addresses overlap (one covers the other).
fn overlaps(a: &Binding, b_addr: IpAddr, b_v6only: bool) -> bool {
    // Whether x, bound with x_v6only, takes what y, bound with y_v6only,
    // would: an IPv6-only socket on `::` leaves IPv4 alone either way.
    let covers = |x: IpAddr, x_v6only: bool, y: IpAddr, y_v6only: bool| -> bool {
        if x.is_unspecified() {
            match (x, y) {
                (IpAddr::V4(_), IpAddr::V4(_)) => true,
                (IpAddr::V6(_), IpAddr::V6(_)) => true,
                (IpAddr::V6(_), IpAddr::V4(_)) => !x_v6only,
                (IpAddr::V4(_), IpAddr::V6(y6)) => {
                    (y6.is_unspecified() && !y_v6only) || y6.to_ipv4_mapped().is_some()
                }
            }
        } else {
            x == y
        }
    };
    covers(a.addr, a.v6only, b_addr, b_v6only) || covers(b_addr, b_v6only, a.addr, a.v6only)
}

impl Inner {
    /// Polls until nothing is left in flight: every packet sent on
    /// loopback is received within the same call. Before each SYN
    /// reaches smoltcp, its listener gets a spare socket in LISTEN if its
    /// queue has room; with the queue full the SYN is dropped.
    pub fn poll(&mut self, now: smoltcp::time::Instant) {
        self.iface.poll_maintenance(now);
        for _ in 0..100_000 {
            while !self.dev.is_empty() {
                if let Some(e) = self.dev.queue.front().and_then(|p| device::icmp_error(p)) {
                    self.deliver_icmp_error(e);
                }
                if let Some(syn) = self.dev.front_syn() {
                    if !self.prepare_listener(syn) {
                        self.dev.drop_front();
                        continue;
                    }
                }
                let front = self.dev.queue.front();
                let udp_port = front.and_then(|p| device::udp_port(p));
                // A fragment may complete a datagram of any port.
                let fragment = front.is_some_and(|p| device::is_ipv4_fragment(p));
                self.iface
                    .poll_ingress_single(now, &mut self.dev, &mut self.sockets);
                let shared: Vec<u16> = match udp_port {
                    Some(port) => vec![port],
                    None if fragment => self.udp_ports.keys().copied().collect(),
                    None => Vec::new(),
                };
                for port in shared {
                    if self.udp_ports.get(&port).is_some_and(|v| v.len() > 1) {
                        self.demux_udp(port);
                    }
                }
            }
            self.reset_orphans_with_data();
            let r = self
                .iface
                .poll_egress(now, &mut self.dev, &mut self.sockets);
            self.report_unreachable();
            if self.dev.is_empty() && r == smoltcp::iface::PollResult::None {
                break;
            }
        }
        for l in &mut self.dev.ext {
            l.flush();
        }
        self.reap();
    }

    /// Makes sure a listener for the SYN's destination has a socket in
    /// LISTEN; false when its queue is full (the SYN is dropped). A SYN
    /// no listener wants passes (smoltcp answers it with a reset).
    fn prepare_listener(&mut self, (dst, port): (IpAddr, u16)) -> bool {
        let ids: Vec<u64> = self
            .listeners
            .iter()
            .filter(|(_, l)| {
                l.endpoint.port == port
                    && match l.endpoint.addr {
                        Some(a) => from_ip(a) == dst,
                        None => !(l.v4_only && dst.is_ipv6() || l.v6_only && dst.is_ipv4()),
                    }
            })
            .map(|(id, _)| *id)
            .collect();
        // smoltcp knows nothing of IPV6_V6ONLY (nor of an AF_INET
        // listener's refusal of IPv6): a listener on the unspecified
        // address that must not take this SYN gives up its spare LISTEN
        // socket, or smoltcp could hand it the SYN (nginx and redis listen
        // on 0.0.0.0 and on an IPv6-only [::] at once). It gets a new
        // spare with its own next SYN.
        let refusing: Vec<u64> = self
            .listeners
            .iter()
            .filter(|(_, l)| {
                l.endpoint.port == port
                    && l.endpoint.addr.is_none()
                    && (l.v4_only && dst.is_ipv6() || l.v6_only && dst.is_ipv4())
            })
            .map(|(id, _)| *id)
            .collect();
        for id in refusing {
            let spares: Vec<SocketHandle> = self.listeners[&id]
                .pending
                .iter()
                .copied()
                .filter(|h| self.sockets.get::<tcp::Socket>(*h).state() == tcp::State::Listen)
                .collect();
            if let Some(l) = self.listeners.get_mut(&id) {
                l.pending.retain(|h| !spares.contains(h));
            }
            for h in spares {
                self.remove_socket(h);
            }
        }
        if ids.is_empty() {
            return true;
        }
        let mut any_room = false;
        for id in ids {
            let l = self.listeners.get(&id).unwrap();
            let spare = l
                .pending
                .iter()
                .any(|h| self.sockets.get::<tcp::Socket>(*h).state() == tcp::State::Listen);
            if spare {
                return true;
            }
            if l.pending.len() < l.limit {
                any_room = true;
                let (ep, rx, tx, nodelay, q) =
                    (l.endpoint, l.rx_size, l.tx_size, l.nodelay, l.queue.clone());
                let mut s = new_tcp(rx, tx);
                s.set_nagle_enabled(!nodelay);
                if s.listen(ep).is_err() {
                    continue;
                }
                let h = self.add_tcp(s);
                self.watch(h, q);
                self.listeners.get_mut(&id).unwrap().pending.push(h);
                return true;
            }
        }
        any_room
    }

    /// Hands the datagrams smoltcp received on `port` to the sockets Linux
    /// would give them to. smoltcp gives a datagram to the first socket
    /// whose port and address take it, blind to families, IPV6_V6ONLY and
    /// connected peers; with several sockets on a port the stack takes
    /// every datagram out again and picks as `__udp4_lib_lookup` does:
    /// the best match of local address and connected peer among the
    /// sockets whose family takes the datagram (a copy to each for
    /// broadcast and multicast), dropped when none does or the socket's
    /// queue is full.
    fn demux_udp(&mut self, port: u16) {
        let hs = self.udp_ports.get(&port).cloned().unwrap_or_default();
        for &h in &hs {
            while let Ok((data, meta)) = self.sockets.get_mut::<udp::Socket>(h).recv() {
                let d = (data.to_vec(), meta);
                for t in self.udp_targets(&hs, &d.1) {
                    let cap = self.sockets.get::<udp::Socket>(t).payload_recv_capacity();
                    let side = self.udp_side.entry(t).or_default();
                    if side.bytes + d.0.len() > cap {
                        continue;
                    }
                    side.bytes += d.0.len();
                    side.q.push_back(d.clone());
                    self.dirty
                        .0
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(t);
                }
            }
        }
    }

    /// The sockets among `hs` a datagram goes to.
    fn udp_targets(&self, hs: &[SocketHandle], meta: &udp::UdpMetadata) -> Vec<SocketHandle> {
        let src = (from_ip(meta.endpoint.addr), meta.endpoint.port);
        let Some(dst) = meta.local_address.map(from_ip) else {
            return Vec::new();
        };
        let v4 = match dst {
            IpAddr::V4(_) => true,
            IpAddr::V6(v) => v.to_ipv4_mapped().is_some(),
        };
        let group = match dst {
            IpAddr::V4(v) => v.is_multicast() || v.is_broadcast() || self.is_subnet_broadcast(v),
            IpAddr::V6(v) => v.is_multicast(),
        };
        let mut best: Vec<(u32, SocketHandle)> = Vec::new();
        for &h in hs {
            let Some(r) = self.registered.get(&h) else {
                continue;
            };
            let family_ok = match r.family {
                libc::AF_INET => v4,
                _ => !v4 || !r.v6only,
            };
            if !family_ok {
                continue;
            }
            let mut score = if r.family == libc::AF_INET { 2 } else { 1 };
            match self.sockets.get::<udp::Socket>(h).endpoint().addr {
                Some(a) if from_ip(a) != dst && !group => continue,
                Some(_) => score += 4,
                None => {}
            }
            match r.peer {
                Some(p) if p != src => continue,
                Some(_) => score += 8,
                None => {}
            }
            best.push((score, h));
        }
        if group {
            return best.into_iter().map(|(_, h)| h).collect();
        }
        best.iter()
            .max_by_key(|(score, h)| (*score, std::cmp::Reverse(hs.iter().position(|x| x == h))))
            .map(|&(_, h)| vec![h])
            .unwrap_or_default()
    }

    fn is_subnet_broadcast(&self, v: Ipv4Addr) -> bool {
        self.addrs.iter().any(|a| match a.addr {
            IpAddr::V4(x) => a.prefix < 31 && u32::from(v) == u32::from(x) | (u32::MAX >> a.prefix),
            _ => false,
        })
    }

    /// The next datagram for UDP socket `h` (from, payload, to), copied,
    /// and taken off its queue unless `peek`.
    pub fn udp_next(&mut self, h: SocketHandle, peek: bool) -> Option<Datagram> {
        if let Some(side) = self.udp_side.get_mut(&h) {
            let d = if peek {
                side.q.front().cloned()
            } else {
                let d = side.q.pop_front();
                side.bytes -= d.as_ref().map_or(0, |(b, _)| b.len());
                d
            };
            if d.is_some() {
                return d;
            }
        }
        let s = self.sockets.get_mut::<udp::Socket>(h);
        if peek {
            s.peek().ok().map(|(d, m)| (d.to_vec(), *m))
        } else {
            s.recv().ok().map(|(d, m)| (d.to_vec(), m))
        }
    }

    /// The bytes UDP socket `h` has queued to read.
    pub fn udp_recv_queue(&self, h: SocketHandle) -> usize {
        let side = self.udp_side.get(&h).map_or(0, |q| q.bytes);
        side + self.sockets.get::<udp::Socket>(h).recv_queue()
    }

    /// Packets a link dropped because their neighbour never answered:
    /// their senders hear the host is unreachable (a soft error: a
    /// connecting TCP socket fails with it, a UDP socket does not hear).
    fn report_unreachable(&mut self) {
        let dropped: Vec<Vec<u8>> = self
            .dev
            .ext
            .iter_mut()
            .flat_map(|l| l.unreachable.drain(..))
            .collect();
        for p in dropped {
            if let Some((proto, local, remote)) = device::flow(&p) {
                self.deliver_icmp_error(device::IcmpError {
                    proto,
                    local,
                    remote,
                    errno: Errno::EHOSTUNREACH,
                    hard: false,
                });
            }
        }
    }

    /// Hands an ICMP error to the socket whose packet it quotes, as
    /// Linux's `tcp_v4_err` and `__udp4_lib_err` do: a TCP socket still
    /// connecting fails with it; a connected UDP socket gets a hard error
    /// (a refused port) at its next call; other sockets ignore it.
    fn deliver_icmp_error(&mut self, e: device::IcmpError) {
        let same = |ep: Option<smoltcp::wire::IpEndpoint>, want: (IpAddr, u16)| {
            ep.is_some_and(|ep| ep.port == want.1 && from_ip(ep.addr) == want.0)
        };
        let mut hit = None;
        for (h, k) in &self.kinds {
            match (k, e.proto) {
                (Kind::Tcp, 6) => {
                    let s = self.sockets.get::<tcp::Socket>(*h);
                    if s.state() == tcp::State::SynSent
                        && same(s.local_endpoint(), e.local)
                        && same(s.remote_endpoint(), e.remote)
                    {
                        hit = Some(*h);
                        break;
                    }
                }
                (Kind::Udp, 17) if e.hard => {
                    let ep = self.sockets.get::<udp::Socket>(*h).endpoint();
                    let bound =
                        ep.port == e.local.1 && ep.addr.is_none_or(|a| from_ip(a) == e.local.0);
                    let peer = self.registered.get(h).and_then(|r| r.peer);
                    if bound && peer == Some(e.remote) {
                        hit = Some(*h);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(h) = hit else {
            return;
        };
        tracing::debug!(
            "network: ICMP error {:?} for {:?} -> {:?}",
            e.errno,
            e.local,
            e.remote
        );
        self.icmp_errors.insert(h, e.errno);
        if self.kinds.get(&h) == Some(&Kind::Tcp) {
            self.sockets.get_mut::<tcp::Socket>(h).abort();
        }
        self.dirty
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(h);
    }

    /// The error ICMP reported for `h`, taken.
    pub fn take_icmp_error(&mut self, h: SocketHandle) -> Option<Errno> {
        self.icmp_errors.remove(&h)
    }

    /// Whether ICMP reported an error for `h` not yet taken.
    pub fn has_icmp_error(&self, h: SocketHandle) -> bool {
        self.icmp_errors.contains_key(&h)
    }

    /// Data arriving for a socket the program closed is answered with a
    /// reset, as Linux does (nobody will read it).
    fn reset_orphans_with_data(&mut self) {
        for (h, _) in &self.orphans {
            if self.kinds.get(h) == Some(&Kind::Tcp) {
                let t = self.sockets.get_mut::<tcp::Socket>(*h);
                if t.recv_queue() > 0 {
                    t.abort();
                }
            }
        }
    }

    /// Drops orphans smoltcp is done with, and their ports.
    fn reap(&mut self) {
        self.expire_time_wait();
        let mut i = 0;
        while i < self.orphans.len() {
            let (h, owner) = self.orphans[i];
            let done = match self.kinds.get(&h) {
                Some(Kind::Tcp) => {
                    let s = self.sockets.get::<tcp::Socket>(h);
                    match s.state() {
                        tcp::State::Closed => true,
                        tcp::State::TimeWait => {
                            let family =
                                self.registered.get(&h).map_or(libc::AF_INET, |r| r.family);
                            let end = |e: Option<smoltcp::wire::IpEndpoint>| {
                                e.map_or((unspecified(family), 0), |e| (from_ip(e.addr), e.port))
                            };
                            let info = SocketInfo {
                                proto: Proto::Tcp,
                                family,
                                local: end(s.local_endpoint()),
                                remote: end(s.remote_endpoint()),
                                state: linux_tcp_state(tcp::State::TimeWait),
                                tx_queue: 0,
                                rx_queue: 0,
                                uid: 0,
                                inode: 0,
                                v6only: false,
                            };
                            self.time_wait.push_back(TimeWait {
                                expires: std::time::Instant::now() + TIME_WAIT_LEN,
                                owner,
                                info,
                            });
                            self.orphans.swap_remove(i);
                            self.remove_socket(h);
                            continue;
                        }
                        _ => false,
                    }
                }
                _ => true,
            };
            if done {
                self.orphans.swap_remove(i);
                self.remove_socket(h);
                if let Some(o) = owner {
                    self.unbind(o);
                }
            } else {
                i += 1;
            }
        }
    }

    /// The wait queues of sockets smoltcp woke since the last look (data,
    /// an acknowledgement, a state change), their wakers registered
    /// again. Every woken socket is notified: comparing with what it
    /// looked like before would miss a queue the program emptied and a
    /// packet filled to the same length.
    fn changed(&mut self) -> Vec<Arc<WaitQueue>> {
        let mut woken =
            std::mem::take(&mut *self.dirty.0.lock().unwrap_or_else(|e| e.into_inner()));
        woken.sort_unstable();
        woken.dedup();
        let mut out = Vec::new();
        for h in woken {
            let Some(w) = self.watches.get(&h) else {
                continue;
            };
            match self.kinds.get(&h) {
                Some(Kind::Tcp) => {
                    let t = self.sockets.get_mut::<tcp::Socket>(h);
                    t.register_recv_waker(&w.waker);
                    t.register_send_waker(&w.waker);
                    if matches!(
                        t.state(),
                        tcp::State::CloseWait
                            | tcp::State::LastAck
                            | tcp::State::Closing
                            | tcp::State::TimeWait
                    ) {
                        self.fin_seen.insert(h);
                    }
                }
                Some(Kind::Udp) => {
                    let u = self.sockets.get_mut::<udp::Socket>(h);
                    u.register_recv_waker(&w.waker);
                    u.register_send_waker(&w.waker);
                }
                None => continue,
            }
            if let Some(q) = w.queue.upgrade() {
                out.push(q);
            }
        }
        out
    }

    /// Adds a TCP socket to the stack.
    pub fn add_tcp(&mut self, s: tcp::Socket<'static>) -> SocketHandle {
        let h = self.sockets.add(s);
        self.kinds.insert(h, Kind::Tcp);
        h
    }

    /// Adds a UDP socket to the stack.
    pub fn add_udp(&mut self, s: udp::Socket<'static>) -> SocketHandle {
        let port = s.endpoint().port;
        let h = self.sockets.add(s);
        self.kinds.insert(h, Kind::Udp);
        self.udp_ports.entry(port).or_default().push(h);
        h
    }

    /// Removes a socket and everything kept about it.
    pub fn remove_socket(&mut self, h: SocketHandle) {
        if self.kinds.get(&h) == Some(&Kind::Udp) {
            let port = self.sockets.get::<udp::Socket>(h).endpoint().port;
            if let Some(v) = self.udp_ports.get_mut(&port) {
                v.retain(|x| *x != h);
                if v.is_empty() {
                    self.udp_ports.remove(&port);
                }
            }
            self.udp_side.remove(&h);
        }
        if self.kinds.remove(&h).is_some() {
            self.sockets.remove(h);
        }
        self.watches.remove(&h);
        self.registered.remove(&h);
        self.fin_seen.remove(&h);
        self.icmp_errors.remove(&h);
    }

    /// Whether the peer's FIN reached `h` before anything else happened
    /// to it.
    pub fn peer_finished(&self, h: SocketHandle) -> bool {
        self.fin_seen.contains(&h)
    }

    /// Notifies `queue` whenever `h`'s state moves.
    pub fn watch(&mut self, h: SocketHandle, queue: Weak<WaitQueue>) {
        let waker = std::task::Waker::from(Arc::new(HandleWaker {
            h,
            dirty: self.dirty.clone(),
        }));
        match self.kinds.get(&h) {
            Some(Kind::Tcp) => {
                let t = self.sockets.get_mut::<tcp::Socket>(h);
                t.register_recv_waker(&waker);
                t.register_send_waker(&waker);
            }
            Some(Kind::Udp) => {
                let u = self.sockets.get_mut::<udp::Socket>(h);
                u.register_recv_waker(&waker);
                u.register_send_waker(&waker);
            }
            None => return,
        }
        self.watches.insert(h, Watch { queue, waker });
        // The first look happens at the next poll.
        self.dirty
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(h);
    }

    /// Lists `h` in /proc/net and sock_diag.
    pub fn register(&mut self, h: SocketHandle, r: Registered) {
        self.registered.insert(h, r);
    }

    pub fn unregister(&mut self, h: SocketHandle) {
        self.registered.remove(&h);
    }

    /// Hands `h` over to the stack: it lives until smoltcp is done with
    /// it, then its binding (if no other socket holds it) goes.
    pub fn orphan(&mut self, h: SocketHandle, owner: Option<u64>) {
        self.orphans.push((h, owner));
    }

    /// A fresh owner id for a binding.
    pub fn new_owner(&mut self) -> u64 {
        self.next_owner += 1;
        self.next_owner
    }

    /// Claims a port (0: an ephemeral one) for `owner`; the port.
    /// EADDRINUSE on a conflict, EADDRNOTAVAIL for an address the sandbox
    /// does not have.
    pub fn bind(
        &mut self,
        proto: Proto,
        owner: u64,
        req: BindRequest,
        range: (u16, u16),
    ) -> Result<u16, Errno> {
        if !req.addr.is_unspecified() && !self.is_local(req.addr) {
            return Err(Errno::EADDRNOTAVAIL);
        }
        self.expire_time_wait();
        if req.port != 0 {
            if self.conflicts(proto, req.port, &req, false) {
                return Err(Errno::EADDRINUSE);
            }
            self.claim(proto, owner, req.port, &req);
            return Ok(req.port);
        }
        let (lo, hi) = range;
        let n = (hi - lo) as u32 + 1;
        for _ in 0..n {
            let p = self.next_ephemeral;
            self.next_ephemeral = if p >= hi || p < lo { lo } else { p + 1 };
            if !(lo..=hi).contains(&p) {
                continue;
            }
            if self.ports.get(&(proto, p)).is_some_and(|v| !v.is_empty()) {
                continue;
            }
            self.claim(proto, owner, p, &req);
            return Ok(p);
        }
        Err(Errno::EADDRINUSE)
    }

    fn claim(&mut self, proto: Proto, owner: u64, port: u16, req: &BindRequest) {
        self.ports.entry((proto, port)).or_default().push(Binding {
            owner,
            holders: 0,
            released: false,
            addr: req.addr,
            v6only: req.v6only,
            reuseaddr: req.reuseaddr,
            reuseport: req.reuseport,
            listening: false,
            uid: req.uid,
        });
    }

    /// Whether another binding on `port` conflicts with `req` (Linux's
    /// `inet_csk_bind_conflict`, and UDP's simpler rule).
    fn conflicts(&self, proto: Proto, port: u16, req: &BindRequest, listening: bool) -> bool {
        let Some(v) = self.ports.get(&(proto, port)) else {
            return false;
        };
        v.iter().any(|b| {
            if !overlaps(b, req.addr, req.v6only) {
                return false;
            }
            if req.reuseport && b.reuseport && b.uid == req.uid {
                return false;
            }
            match proto {
                Proto::Tcp => !req.reuseaddr || !b.reuseaddr || b.listening || listening,
                Proto::Udp => !(req.reuseaddr && b.reuseaddr),
            }
        })
    }

    /// listen(2) on a bound socket: EADDRINUSE when another socket listens
    /// on the port (or holds it without SO_REUSEADDR).
    pub fn set_listening(&mut self, owner: u64, port: u16) -> Result<(), Errno> {
        let key = (Proto::Tcp, port);
        let Some(v) = self.ports.get(&key) else {
            return Ok(());
        };
        let Some(me) = v.iter().find(|b| b.owner == owner).cloned() else {
            return Ok(());
        };
        let others: Vec<Binding> = v.iter().filter(|b| b.owner != owner).cloned().collect();
        let req = BindRequest {
            addr: me.addr,
            port,
            v6only: me.v6only,
            reuseaddr: me.reuseaddr,
            reuseport: me.reuseport,
            uid: me.uid,
        };
        let conflict = others.iter().any(|b| {
            overlaps(b, req.addr, req.v6only)
                && !(req.reuseport && b.reuseport && b.uid == req.uid)
                && (b.listening || !(req.reuseaddr && b.reuseaddr))
        });
        if conflict {
            return Err(Errno::EADDRINUSE);
        }
        for b in self.ports.get_mut(&key).unwrap() {
            if b.owner == owner {
                b.listening = true;
            }
        }
        Ok(())
    }

    /// Stops listening (the listener closed; its port may stay held by
    /// connections).
    pub fn clear_listening(&mut self, owner: u64) {
        for v in self.ports.values_mut() {
            for b in v.iter_mut() {
                if b.owner == owner {
                    b.listening = false;
                }
            }
        }
    }

    /// Releases every port `owner` holds. A binding accepted connections
    /// still hold stays (not listening) until the last of them goes.
    pub fn unbind(&mut self, owner: u64) {
        if let Some((port, from)) = self.copies.remove(&owner) {
            let key = (Proto::Tcp, port);
            if let Some(v) = self.ports.get_mut(&key) {
                if let Some(i) = v.iter().position(|b| b.owner == from) {
                    v[i].holders = v[i].holders.saturating_sub(1);
                    if v[i].holders == 0 && v[i].released {
                        v.swap_remove(i);
                    }
                }
                if v.is_empty() {
                    self.ports.remove(&key);
                }
            }
            return;
        }
        self.ports.retain(|_, v| {
            v.retain_mut(|b| {
                if b.owner != owner {
                    return true;
                }
                b.released = true;
                b.listening = false;
                b.holders > 0
            });
            !v.is_empty()
        });
    }

    /// Lets go of the connections whose TIME_WAIT is over, and their
    /// ports.
    fn expire_time_wait(&mut self) {
        let now = std::time::Instant::now();
        while self.time_wait.front().is_some_and(|t| t.expires <= now) {
            if let Some(o) = self.time_wait.pop_front().and_then(|t| t.owner) {
                self.unbind(o);
            }
        }
    }

    /// Whether `a` is one of the sandbox's addresses (127/8 counts whole,
    /// as on Linux's loopback).
    pub fn is_local(&self, a: IpAddr) -> bool {
        let a = match a {
            IpAddr::V6(v) => match v.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => a,
            },
            a => a,
        };
        if let IpAddr::V4(v) = a {
            if v.is_loopback() {
                return true;
            }
        }
        self.addrs.iter().any(|x| x.addr == a)
    }

    /// Whether the stack has a route to `a` (ENETUNREACH otherwise).
    pub fn routable(&self, a: IpAddr) -> bool {
        if self.is_local(a) {
            return true;
        }
        let on_subnet = self
            .addrs
            .iter()
            .filter(|x| x.addr.is_ipv4() == a.is_ipv4() && x.prefix > 0)
            .any(|x| {
                !matches!(x.addr, IpAddr::V4(v) if v.is_loopback())
                    && !matches!(x.addr, IpAddr::V6(v) if v.is_loopback())
                    && mask_addr(x.addr, x.prefix) == mask_addr(a, x.prefix)
            });
        on_subnet
            || self.routes.iter().any(|r| {
                r.dst.is_ipv4() == a.is_ipv4()
                    && mask_addr(r.dst, r.prefix) == mask_addr(a, r.prefix)
            })
    }

    /// A TCP socket by handle.
    pub fn tcp(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }

    /// A UDP socket by handle.
    pub fn udp(&mut self, h: SocketHandle) -> &mut udp::Socket<'static> {
        self.sockets.get_mut::<udp::Socket>(h)
    }

    /// A listener's first connection that completed its handshake, taken
    /// off its queue; sockets that died before being accepted are
    /// dropped on the way.
    pub fn take_established(&mut self, id: u64) -> Option<SocketHandle> {
        let pending = self.listeners.get(&id)?.pending.clone();
        let mut dead = Vec::new();
        let mut found = None;
        for h in pending {
            let st = self.sockets.get::<tcp::Socket>(h).state();
            match st {
                tcp::State::Listen | tcp::State::SynReceived => {}
                tcp::State::Closed => dead.push(h),
                _ => {
                    found = Some(h);
                    break;
                }
            }
        }
        let l = self.listeners.get_mut(&id)?;
        l.pending.retain(|h| !dead.contains(h) && Some(*h) != found);
        for h in dead {
            self.remove_socket(h);
        }
        found
    }

    /// Whether a listener has a connection to accept.
    pub fn has_established(&self, id: u64) -> bool {
        self.listeners.get(&id).is_some_and(|l| {
            l.pending.iter().any(|h| {
                !matches!(
                    self.sockets.get::<tcp::Socket>(*h).state(),
                    tcp::State::Listen | tcp::State::SynReceived | tcp::State::Closed
                )
            })
        })
    }

    /// Closes a listener: connections not accepted are reset, and its
    /// port is released.
    pub fn close_listener(&mut self, id: u64) {
        if let Some(owner) = self.stop_listener(id) {
            self.unbind(owner);
        }
    }

    /// Stops a listener (shutdown(SHUT_RD) of a listening socket):
    /// connections not accepted are reset; the port stays bound. The
    /// binding's owner.
    pub fn stop_listener(&mut self, id: u64) -> Option<u64> {
        let l = self.listeners.remove(&id)?;
        for h in l.pending {
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            if s.state() == tcp::State::Listen {
                self.remove_socket(h);
            } else {
                s.abort();
                self.orphans.push((h, None));
            }
        }
        self.clear_listening(l.owner);
        Some(l.owner)
    }

    /// Lets `to` (an accepted connection) hold `from`'s binding on
    /// `port`: the port stays bound (with the listener's SO_REUSEADDR,
    /// not listening) while the connection lives, even when the listener
    /// is gone.
    pub fn clone_binding(&mut self, from: u64, to: u64, port: u16) {
        let key = (Proto::Tcp, port);
        let Some(v) = self.ports.get_mut(&key) else {
            return;
        };
        if let Some(b) = v.iter_mut().find(|b| b.owner == from) {
            b.holders += 1;
            self.copies.insert(to, (port, from));
        }
    }

    /// The smoltcp context, for connect.
    pub fn connect_tcp(
        &mut self,
        h: SocketHandle,
        remote: (IpAddr, u16),
        local: (IpAddr, u16),
    ) -> Result<(), Errno> {
        let cx = self.iface.context();
        let s = self.sockets.get_mut::<tcp::Socket>(h);
        let local = IpListenEndpoint {
            addr: (!local.0.is_unspecified()).then(|| to_ip(local.0)),
            port: local.1,
        };
        s.connect(cx, (to_ip(remote.0), remote.1), local)
            .map_err(|e| match e {
                tcp::ConnectError::InvalidState => Errno::EISCONN,
                tcp::ConnectError::Unaddressable => Errno::ENETUNREACH,
            })
    }

    /// A queue of listen backlogs is kept per listener id.
    pub fn add_listener(&mut self, id: u64, l: ListenQueue) {
        self.listeners.insert(id, l);
    }

    /// The smoltcp pending sockets of a listener that a poll moved, to
    /// count for SO_ACCEPTCONN-style listings.
    pub fn listener_backlog(&self, id: u64) -> (usize, usize) {
        self.listeners.get(&id).map_or((0, 0), |l| {
            let done = l
                .pending
                .iter()
                .filter(|h| {
                    !matches!(
                        self.sockets.get::<tcp::Socket>(**h).state(),
                        tcp::State::Listen | tcp::State::SynReceived
                    )
                })
                .count();
            (done, l.limit.saturating_sub(1))
        })
    }

    /// Pending connections of a listener, for listings.
    pub fn pending_of(&self, id: u64) -> VecDeque<SocketHandle> {
        self.listeners
            .get(&id)
            .map(|l| l.pending.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// A new smoltcp TCP socket with buffers of these sizes, Linux-like
/// timers: no delayed ACK on the sandbox's own traffic (it is answered
/// within the call), keep-alive off until SO_KEEPALIVE.
pub fn new_tcp(rx: usize, tx: usize) -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0u8; rx]),
        tcp::SocketBuffer::new(vec![0u8; tx]),
    );
    s.set_ack_delay(None);
    s.set_congestion_control(tcp::CongestionControl::Cubic);
    s
}

/// A new smoltcp UDP socket whose queues hold `rx` and `tx` bytes.
pub fn new_udp(rx: usize, tx: usize) -> udp::Socket<'static> {
    let slots = |bytes: usize| (bytes / 512).clamp(16, 1024);
    udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; slots(rx)], vec![0u8; rx]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; slots(tx)], vec![0u8; tx]),
    )
}
