//! What AF_INET and AF_INET6 sockets share: their addresses as the guest
//! writes them, and the SOL_SOCKET, SOL_IP and SOL_IPV6 options every IP
//! socket keeps.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{buf_size, get_int, int_val, Timeout};
use crate::errno::Errno;
use crate::kernel::task::Task;

/// `sizeof(struct sockaddr_in)`, `sizeof(struct sockaddr_in6)` and the
/// RFC 2133 size (without scope id) Linux still accepts.
pub const SOCKADDR_IN: usize = 16;
pub const SOCKADDR_IN6: usize = 28;
const SIN6_LEN_RFC2133: usize = 24;

/// SO_RCVTIMEO_NEW and SO_SNDTIMEO_NEW (64-bit time_t on every ABI).
pub const SO_RCVTIMEO_NEW: i32 = 66;
pub const SO_SNDTIMEO_NEW: i32 = 67;

/// What an address names: the address (IPv4 for an IPv4-mapped IPv6 one)
/// and the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockAddr {
    pub ip: IpAddr,
    pub port: u16,
}

/// Parses the guest's address for a socket of `family`: EINVAL when
/// short, EAFNOSUPPORT for another family. `AF_UNSPEC` gives None (a
/// disconnect for connect(2)).
pub fn parse(family: i32, b: &[u8]) -> Result<Option<SockAddr>, Errno> {
    if b.len() < 2 {
        return Err(Errno::EINVAL);
    }
    let fam = u16::from_ne_bytes([b[0], b[1]]) as i32;
    if fam == libc::AF_UNSPEC {
        return Ok(None);
    }
    match family {
        libc::AF_INET => {
            if b.len() < SOCKADDR_IN {
                return Err(Errno::EINVAL);
            }
            if fam != libc::AF_INET {
                return Err(Errno::EAFNOSUPPORT);
            }
            Ok(Some(SockAddr {
                ip: IpAddr::V4(Ipv4Addr::new(b[4], b[5], b[6], b[7])),
                port: u16::from_be_bytes([b[2], b[3]]),
            }))
        }
        _ => {
            if b.len() < SIN6_LEN_RFC2133 {
                return Err(Errno::EINVAL);
            }
            if fam != libc::AF_INET6 {
                return Err(Errno::EAFNOSUPPORT);
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[8..24]);
            let v6 = Ipv6Addr::from(a);
            let ip = match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            };
            Ok(Some(SockAddr {
                ip,
                port: u16::from_be_bytes([b[2], b[3]]),
            }))
        }
    }
}

/// The address of bind(2): as [`parse`], except that AF_UNSPEC with
/// INADDR_ANY binds an AF_INET socket (for old programs) and is
/// EAFNOSUPPORT otherwise.
pub fn parse_bind(family: i32, b: &[u8]) -> Result<SockAddr, Errno> {
    match parse(family, b)? {
        Some(a) => Ok(a),
        None if family == libc::AF_INET && b.len() >= 8 && b[4..8] == [0, 0, 0, 0] => {
            Ok(SockAddr {
                ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                port: u16::from_be_bytes([b[2], b[3]]),
            })
        }
        None => Err(Errno::EAFNOSUPPORT),
    }
}

/// When a wait with this timeout ends (None: never).
pub fn deadline(timeo: Timeout) -> Option<std::time::Instant> {
    use std::time::Instant;
    timeo.duration().map(|d| {
        Instant::now()
            .checked_add(d)
            .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(1 << 32))
    })
}

/// A socket call's wait on `q` until `ready`: EAGAIN at a zero timeout
/// or its end, ERESTARTSYS (EINTR with a timeout) on a signal.
pub fn wait(
    t: &mut Task,
    q: &crate::kernel::waiter::WaitQueue,
    timeo: Timeout,
    mut ready: impl FnMut() -> bool,
) -> Result<(), Errno> {
    if timeo.0 == Some(0) {
        return Err(Errno::EAGAIN);
    }
    match t.block_on(
        &[(q, crate::kernel::waiter::ALL_EVENTS)],
        deadline(timeo),
        |_| ready().then_some(Ok(())),
    ) {
        Ok(()) => Ok(()),
        Err(Errno::ETIMEDOUT) => Err(Errno::EAGAIN),
        Err(Errno::ERESTARTSYS) if timeo.0.is_some() => Err(Errno::EINTR),
        Err(e) => Err(e),
    }
}

/// The address bytes of `a` for a socket of `family` (an IPv4 address on
/// an AF_INET6 socket is IPv4-mapped).
pub fn format(family: i32, ip: IpAddr, port: u16) -> Vec<u8> {
    if family == libc::AF_INET {
        let mut b = vec![0u8; SOCKADDR_IN];
        b[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        b[2..4].copy_from_slice(&port.to_be_bytes());
        let v4 = match ip {
            IpAddr::V4(v) => v,
            IpAddr::V6(v) => v.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
        };
        b[4..8].copy_from_slice(&v4.octets());
        b
    } else {
        let mut b = vec![0u8; SOCKADDR_IN6];
        b[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        b[2..4].copy_from_slice(&port.to_be_bytes());
        let v6 = match ip {
            IpAddr::V4(v) if v.is_unspecified() => Ipv6Addr::UNSPECIFIED,
            IpAddr::V4(v) => v.to_ipv6_mapped(),
            IpAddr::V6(v) => v,
        };
        b[8..24].copy_from_slice(&v6.octets());
        b
    }
}

/// The options every IP socket keeps: set, read back, and used by the
/// protocols where they mean something.
#[derive(Clone, Debug)]
pub struct IpOpts {
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub keepalive: bool,
    pub broadcast: bool,
    pub oobinline: bool,
    pub dontroute: bool,
    pub priority: i32,
    pub rcvlowat: i32,
    /// SO_LINGER: on, seconds.
    pub linger: (i32, i32),
    pub sndbuf: u32,
    pub rcvbuf: u32,
    pub rcvtimeo: Timeout,
    pub sndtimeo: Timeout,
    pub tos: i32,
    pub ttl: i32,
    pub v6only: bool,
    pub tclass: i32,
    pub unicast_hops: i32,
    pub recverr: bool,
    pub pktinfo: bool,
    pub mtu_discover: i32,
    pub multicast_ttl: i32,
    pub multicast_loop: bool,
    pub bound_device: Option<Vec<u8>>,
}

impl IpOpts {
    pub fn new(sndbuf: u32, rcvbuf: u32) -> IpOpts {
        IpOpts {
            reuseaddr: false,
            reuseport: false,
            keepalive: false,
            broadcast: false,
            oobinline: false,
            dontroute: false,
            priority: 0,
            rcvlowat: 1,
            linger: (0, 0),
            sndbuf,
            rcvbuf,
            rcvtimeo: Timeout(None),
            sndtimeo: Timeout(None),
            tos: 0,
            ttl: 64,
            v6only: false,
            tclass: 0,
            unicast_hops: 64,
            recverr: false,
            pktinfo: false,
            mtu_discover: 1,
            multicast_ttl: 1,
            multicast_loop: true,
            bound_device: None,
        }
    }
}

/// The outcome of a shared option: handled, or the protocol's to handle.
pub enum Handled<T> {
    Done(T),
    NotMine,
}

const CAP_NET_ADMIN: u32 = 12;
const SOL_IPV6: i32 = libc::SOL_IPV6;

/// getsockopt of a shared option. `acceptconn`: the socket listens.
pub fn get_shared(
    o: &IpOpts,
    family: i32,
    ty: i32,
    protocol: i32,
    level: i32,
    name: i32,
    acceptconn: bool,
) -> Handled<Result<Vec<u8>, Errno>> {
    let v = match (level, name) {
        (libc::SOL_SOCKET, libc::SO_TYPE) => int_val(ty),
        (libc::SOL_SOCKET, libc::SO_PROTOCOL) => int_val(protocol),
        (libc::SOL_SOCKET, libc::SO_DOMAIN) => int_val(family),
        (libc::SOL_SOCKET, libc::SO_ACCEPTCONN) => int_val(acceptconn as i32),
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => int_val(o.reuseaddr as i32),
        (libc::SOL_SOCKET, libc::SO_REUSEPORT) => int_val(o.reuseport as i32),
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => int_val(o.keepalive as i32),
        (libc::SOL_SOCKET, libc::SO_BROADCAST) => int_val(o.broadcast as i32),
        (libc::SOL_SOCKET, libc::SO_OOBINLINE) => int_val(o.oobinline as i32),
        (libc::SOL_SOCKET, libc::SO_DONTROUTE) => int_val(o.dontroute as i32),
        (libc::SOL_SOCKET, libc::SO_PRIORITY) => int_val(o.priority),
        (libc::SOL_SOCKET, libc::SO_RCVLOWAT) => int_val(o.rcvlowat),
        (libc::SOL_SOCKET, libc::SO_SNDLOWAT) => int_val(1),
        (libc::SOL_SOCKET, libc::SO_SNDBUF) => int_val(o.sndbuf as i32),
        (libc::SOL_SOCKET, libc::SO_RCVBUF) => int_val(o.rcvbuf as i32),
        (libc::SOL_SOCKET, libc::SO_RCVTIMEO) | (libc::SOL_SOCKET, SO_RCVTIMEO_NEW) => {
            o.rcvtimeo.to_timeval().to_vec()
        }
        (libc::SOL_SOCKET, libc::SO_SNDTIMEO) | (libc::SOL_SOCKET, SO_SNDTIMEO_NEW) => {
            o.sndtimeo.to_timeval().to_vec()
        }
        (libc::SOL_SOCKET, libc::SO_LINGER) => {
            let mut v = o.linger.0.to_ne_bytes().to_vec();
            v.extend_from_slice(&o.linger.1.to_ne_bytes());
            v
        }
        (libc::SOL_SOCKET, libc::SO_BINDTODEVICE) => o.bound_device.clone().unwrap_or_default(),
        (libc::SOL_IP, libc::IP_TOS) => int_val(o.tos),
        (libc::SOL_IP, libc::IP_TTL) => int_val(o.ttl),
        (libc::SOL_IP, libc::IP_RECVERR) => int_val(o.recverr as i32),
        (libc::SOL_IP, libc::IP_PKTINFO) => int_val(o.pktinfo as i32),
        (libc::SOL_IP, libc::IP_MTU_DISCOVER) => int_val(o.mtu_discover),
        (libc::SOL_IP, libc::IP_MULTICAST_TTL) => int_val(o.multicast_ttl),
        (libc::SOL_IP, libc::IP_MULTICAST_LOOP) => int_val(o.multicast_loop as i32),
        (SOL_IPV6, libc::IPV6_V6ONLY) if family == libc::AF_INET6 => int_val(o.v6only as i32),
        (SOL_IPV6, libc::IPV6_TCLASS) if family == libc::AF_INET6 => int_val(o.tclass),
        (SOL_IPV6, libc::IPV6_UNICAST_HOPS) if family == libc::AF_INET6 => int_val(o.unicast_hops),
        (SOL_IPV6, libc::IPV6_RECVERR) if family == libc::AF_INET6 => int_val(o.recverr as i32),
        _ => return Handled::NotMine,
    };
    Handled::Done(Ok(v))
}

/// setsockopt of a shared option. `bound`: the socket has a local port
/// already (IPV6_V6ONLY is EINVAL then).
pub fn set_shared(
    t: &Task,
    o: &mut IpOpts,
    family: i32,
    level: i32,
    name: i32,
    val: &[u8],
    bound: bool,
) -> Handled<Result<(), Errno>> {
    let r = (|| -> Result<(), Errno> {
        match (level, name) {
            (libc::SOL_SOCKET, libc::SO_RCVTIMEO) | (libc::SOL_SOCKET, SO_RCVTIMEO_NEW) => {
                o.rcvtimeo = Timeout::from_timeval(val)?;
                return Ok(());
            }
            (libc::SOL_SOCKET, libc::SO_SNDTIMEO) | (libc::SOL_SOCKET, SO_SNDTIMEO_NEW) => {
                o.sndtimeo = Timeout::from_timeval(val)?;
                return Ok(());
            }
            (libc::SOL_SOCKET, libc::SO_LINGER) => {
                if val.len() < 8 {
                    return Err(Errno::EINVAL);
                }
                let on = i32::from_ne_bytes(val[..4].try_into().unwrap());
                let secs = i32::from_ne_bytes(val[4..8].try_into().unwrap());
                o.linger = ((on != 0) as i32, secs.max(0));
                return Ok(());
            }
            (libc::SOL_SOCKET, libc::SO_BINDTODEVICE) => {
                if !t.creds.has_cap(CAP_NET_ADMIN) {
                    return Err(Errno::EPERM);
                }
                let name: Vec<u8> = val.iter().copied().take_while(|&c| c != 0).collect();
                if name.is_empty() {
                    o.bound_device = None;
                    return Ok(());
                }
                if name != b"lo" {
                    return Err(Errno::ENODEV);
                }
                o.bound_device = Some(name);
                return Ok(());
            }
            _ => {}
        }
        let v = get_int(val)?;
        match (level, name) {
            (libc::SOL_SOCKET, libc::SO_REUSEADDR) => o.reuseaddr = v != 0,
            (libc::SOL_SOCKET, libc::SO_REUSEPORT) => o.reuseport = v != 0,
            (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => o.keepalive = v != 0,
            (libc::SOL_SOCKET, libc::SO_BROADCAST) => o.broadcast = v != 0,
            (libc::SOL_SOCKET, libc::SO_OOBINLINE) => o.oobinline = v != 0,
            (libc::SOL_SOCKET, libc::SO_DONTROUTE) => o.dontroute = v != 0,
            (libc::SOL_SOCKET, libc::SO_PRIORITY) => {
                if !(0..=6).contains(&v) && !t.creds.has_cap(CAP_NET_ADMIN) {
                    return Err(Errno::EPERM);
                }
                o.priority = v;
            }
            (libc::SOL_SOCKET, libc::SO_RCVLOWAT) => o.rcvlowat = v.max(1),
            (libc::SOL_SOCKET, libc::SO_SNDBUF) | (libc::SOL_SOCKET, libc::SO_SNDBUFFORCE) => {
                let force = name == libc::SO_SNDBUFFORCE;
                if force && !t.creds.has_cap(CAP_NET_ADMIN) {
                    return Err(Errno::EPERM);
                }
                o.sndbuf = buf_size(v, super::WMEM_MAX, super::SOCK_MIN_SNDBUF, force);
            }
            (libc::SOL_SOCKET, libc::SO_RCVBUF) | (libc::SOL_SOCKET, libc::SO_RCVBUFFORCE) => {
                let force = name == libc::SO_RCVBUFFORCE;
                if force && !t.creds.has_cap(CAP_NET_ADMIN) {
                    return Err(Errno::EPERM);
                }
                o.rcvbuf = buf_size(v, super::RMEM_MAX, super::SOCK_MIN_RCVBUF, force);
            }
            (libc::SOL_IP, libc::IP_TOS) => {
                // Linux keeps the DSCP and ECN bits, dropping the ECN
                // bits of a TCP socket.
                o.tos = v & 0xff;
            }
            (libc::SOL_IP, libc::IP_TTL) => {
                if v == -1 {
                    o.ttl = 64;
                } else if !(1..=255).contains(&v) {
                    return Err(Errno::EINVAL);
                } else {
                    o.ttl = v;
                }
            }
            (libc::SOL_IP, libc::IP_RECVERR) => o.recverr = v != 0,
            (libc::SOL_IP, libc::IP_PKTINFO) => o.pktinfo = v != 0,
            (libc::SOL_IP, libc::IP_MTU_DISCOVER) => {
                if !(0..=5).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                o.mtu_discover = v;
            }
            (libc::SOL_IP, libc::IP_MULTICAST_TTL) => {
                if v == -1 {
                    o.multicast_ttl = 1;
                } else if !(0..=255).contains(&v) {
                    return Err(Errno::EINVAL);
                } else {
                    o.multicast_ttl = v;
                }
            }
            (libc::SOL_IP, libc::IP_MULTICAST_LOOP) => o.multicast_loop = v != 0,
            (SOL_IPV6, libc::IPV6_V6ONLY) if family == libc::AF_INET6 => {
                if bound {
                    return Err(Errno::EINVAL);
                }
                o.v6only = v != 0;
            }
            (SOL_IPV6, libc::IPV6_TCLASS) if family == libc::AF_INET6 => {
                if v == -1 {
                    o.tclass = 0;
                } else if !(0..=255).contains(&v) {
                    return Err(Errno::EINVAL);
                } else {
                    o.tclass = v;
                }
            }
            (SOL_IPV6, libc::IPV6_UNICAST_HOPS) if family == libc::AF_INET6 => {
                if v == -1 {
                    o.unicast_hops = 64;
                } else if !(0..=255).contains(&v) {
                    return Err(Errno::EINVAL);
                } else {
                    o.unicast_hops = v;
                }
            }
            (SOL_IPV6, libc::IPV6_RECVERR) if family == libc::AF_INET6 => o.recverr = v != 0,
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    })();
    match r {
        Err(Errno::ENOPROTOOPT) => Handled::NotMine,
        r => Handled::Done(r),
    }
}

/// A name for an option, for the log of unsupported ones.
pub fn option_name(level: i32, name: i32) -> String {
    let lvl = match level {
        libc::SOL_SOCKET => "SOL_SOCKET".to_string(),
        libc::SOL_IP => "SOL_IP".to_string(),
        libc::SOL_TCP => "SOL_TCP".to_string(),
        libc::SOL_UDP => "SOL_UDP".to_string(),
        SOL_IPV6 => "SOL_IPV6".to_string(),
        n => format!("level {n}"),
    };
    format!("{lvl} option {name}")
}

/// An option no IP socket of the sentry has: ENOPROTOOPT, logged.
pub fn unknown_option(t: &Task, call: &str, level: i32, name: i32) -> Errno {
    t.kernel.note_unsupported(
        &format!("{call} {}", option_name(level, name)),
        "ENOPROTOOPT",
    );
    Errno::ENOPROTOOPT
}

/// The interface ioctls of an IP socket (SIOCGIF* and the address
/// requests), answered from the stack; ENOTTY for the rest.
pub fn interface_ioctl(t: &mut Task, request: u32, arg: u64) -> Result<u64, Errno> {
    crate::net::ioctl::ifreq_ioctl(t, request, arg)
}
