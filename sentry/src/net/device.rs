//! The stack's one smoltcp device, raw IP: what the stack sends to its
//! own addresses is queued back to it (loopback), delivered in order
//! within the call that sent it; what it sends elsewhere goes out of the
//! Ethernet link that reaches it (`ether.rs`), whose incoming packets
//! join the same queue.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::ether::EthLink;
use super::LinkStats;
use crate::errno::Errno;

/// The largest packet on loopback: Linux's lo has MTU 65536, but an IP
/// packet's length field stops at 65535.
pub const LOOPBACK_MTU: usize = 65535;

#[derive(Default)]
pub struct Loopback {
    /// Packets for the stack: its own, and those the links received.
    pub queue: VecDeque<Vec<u8>>,
    /// `lo`'s counters (the stack's traffic to itself).
    pub stats: LinkStats,
    /// The Ethernet links taken over from the host.
    pub ext: Vec<EthLink>,
    /// The stack's addresses besides 127.0.0.0/8 and ::1 (packets to them
    /// are looped back).
    pub local: Vec<IpAddr>,
}

impl Loopback {
    pub fn new() -> Loopback {
        Loopback::default()
    }

    /// Whether a packet for `dst` stays in the stack.
    fn is_local(&self, dst: IpAddr) -> bool {
        match dst {
            IpAddr::V4(v) if v.is_loopback() => true,
            IpAddr::V6(v) if v.is_loopback() => true,
            _ => self.local.contains(&dst),
        }
    }

    /// Where a packet the stack made goes: back into the queue, or out of
    /// the link that reaches its destination best.
    fn dispatch(&mut self, packet: Vec<u8>) {
        let Some(dst) = super::ether::ip_destination(&packet) else {
            return;
        };
        if self.ext.is_empty() || self.is_local(dst) {
            let n = packet.len() as u64;
            self.stats.tx_packets += 1;
            self.stats.tx_bytes += n;
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += n;
            self.queue.push_back(packet);
            return;
        }
        let best = self
            .ext
            .iter_mut()
            .filter_map(|l| l.reach(dst).map(|p| (p, l)))
            .max_by_key(|(p, _)| *p);
        match best {
            Some((_, l)) => l.transmit(packet, std::time::Instant::now()),
            None => self.stats.tx_dropped += 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The destination of the next packet when it is a TCP SYN (no ACK):
    /// the stack gives its listener a socket before it is delivered.
    pub fn front_syn(&self) -> Option<(IpAddr, u16)> {
        syn_destination(self.queue.front()?)
    }

    /// Drops the next packet (a SYN for a full listen queue).
    pub fn drop_front(&mut self) {
        if self.queue.pop_front().is_some() {
            self.stats.rx_dropped += 1;
        }
    }
}

/// Where a TCP SYN (without ACK) in a raw IP packet goes.
pub fn syn_destination(p: &[u8]) -> Option<(IpAddr, u16)> {
    let version = p.first()? >> 4;
    let (dst, proto, l4) = match version {
        4 => {
            let ihl = ((p[0] & 0xf) as usize) * 4;
            if p.len() < ihl || ihl < 20 {
                return None;
            }
            // A fragment past the first has no TCP header.
            let frag = u16::from_be_bytes([p[6], p[7]]) & 0x1fff;
            if frag != 0 {
                return None;
            }
            let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            (IpAddr::V4(dst), p[9], &p[ihl..])
        }
        6 => {
            if p.len() < 40 {
                return None;
            }
            let mut d = [0u8; 16];
            d.copy_from_slice(&p[24..40]);
            (IpAddr::V6(Ipv6Addr::from(d)), p[6], &p[40..])
        }
        _ => return None,
    };
    if proto != 6 || l4.len() < 14 {
        return None;
    }
    let flags = l4[13];
    let (syn, ack) = (flags & 0x02 != 0, flags & 0x10 != 0);
    if !syn || ack {
        return None;
    }
    Some((dst, u16::from_be_bytes([l4[2], l4[3]])))
}

impl Device for Loopback {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.max_transmission_unit = LOOPBACK_MTU;
        c.medium = Medium::Ip;
        // Packets never leave the sentry: checksums are not worth computing.
        c.checksum = phy::ChecksumCapabilities::ignored();
        c
    }

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let buffer = self.queue.pop_front()?;
        Some((RxToken { buffer }, TxToken { dev: self }))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        Some(TxToken { dev: self })
    }
}

pub struct RxToken {
    buffer: Vec<u8>,
}

impl phy::RxToken for RxToken {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.buffer)
    }
}

pub struct TxToken<'a> {
    dev: &'a mut Loopback,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buffer = vec![0u8; len];
        let r = f(&mut buffer);
        self.dev.dispatch(buffer);
        r
    }
}

/// An ICMP error about a packet the stack sent, for the socket that sent
/// it.
#[derive(Clone, Copy, Debug)]
pub struct IcmpError {
    /// IPPROTO_TCP or IPPROTO_UDP.
    pub proto: u8,
    /// The packet's source (the socket's end) and destination.
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
    pub errno: Errno,
    /// A hard error (Linux's `icmp_err_convert` "fatal"): a connected UDP
    /// socket hears only of these.
    pub hard: bool,
}

/// Whether a packet is a fragment of an IPv4 datagram.
pub fn is_ipv4_fragment(p: &[u8]) -> bool {
    p.len() >= 20 && p[0] >> 4 == 4 && u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0
}

/// The destination port of a UDP packet (a first or only fragment).
pub fn udp_port(p: &[u8]) -> Option<u16> {
    let (proto, l4) = match p.first()? >> 4 {
        4 => {
            let ihl = ((p[0] & 0xf) as usize) * 4;
            let frag = u16::from_be_bytes([*p.get(6)?, *p.get(7)?]) & 0x1fff;
            if ihl < 20 || p.len() < ihl + 4 || frag != 0 {
                return None;
            }
            (p[9], &p[ihl..])
        }
        6 if p.len() >= 44 => (p[6], &p[40..]),
        _ => return None,
    };
    (proto == 17).then(|| u16::from_be_bytes([l4[2], l4[3]]))
}

/// A packet's protocol (IPPROTO_TCP or IPPROTO_UDP), source and
/// destination.
pub type Flow = (u8, (IpAddr, u16), (IpAddr, u16));

/// The protocol and ends of a raw IP packet's TCP or UDP header.
pub fn flow(p: &[u8]) -> Option<Flow> {
    let (proto, src, dst, l4) = match p.first()? >> 4 {
        4 => {
            let ihl = ((p[0] & 0xf) as usize) * 4;
            if ihl < 20 || p.len() < ihl + 4 {
                return None;
            }
            let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            (p[9], IpAddr::V4(src), IpAddr::V4(dst), &p[ihl..])
        }
        6 => {
            if p.len() < 44 {
                return None;
            }
            let a = |at: usize| {
                let b: [u8; 16] = p[at..at + 16].try_into().unwrap();
                IpAddr::V6(Ipv6Addr::from(b))
            };
            (p[6], a(8), a(24), &p[40..])
        }
        _ => return None,
    };
    if proto != 6 && proto != 17 {
        return None;
    }
    let port = |at: usize| u16::from_be_bytes([l4[at], l4[at + 1]]);
    Some((proto, (src, port(0)), (dst, port(2))))
}

/// The error an incoming ICMP destination-unreachable or time-exceeded
/// message reports, and about which of the stack's packets (the one it
/// quotes). None for any other packet.
pub fn icmp_error(p: &[u8]) -> Option<IcmpError> {
    let (ty, code, quoted) = match p.first()? >> 4 {
        4 => {
            let ihl = ((p[0] & 0xf) as usize) * 4;
            if p.len() < ihl + 8 || p[9] != 1 {
                return None;
            }
            (p[ihl], p[ihl + 1], &p[ihl + 8..])
        }
        6 => {
            if p.len() < 48 || p[6] != 58 {
                return None;
            }
            (p[40], p[41], &p[48..])
        }
        _ => return None,
    };
    let v4 = p[0] >> 4 == 4;
    // Linux's icmp_err_convert and icmpv6_err_convert.
    let (errno, hard) = match (v4, ty, code) {
        (true, 3, 0) | (true, 3, 6) | (true, 3, 11) => {
            (Errno::ENETUNREACH, code != 0 && code != 11)
        }
        (true, 3, 1) | (true, 3, 12) => (Errno::EHOSTUNREACH, false),
        (true, 3, 2) => (Errno::ENOPROTOOPT, true),
        (true, 3, 3) => (Errno::ECONNREFUSED, true),
        (true, 3, 5) => (Errno::EOPNOTSUPP, false),
        (true, 3, 7) | (true, 3, 8) => (Errno::EHOSTDOWN, true),
        (true, 3, 9) | (true, 3, 10) | (true, 3, 13) => (Errno::EHOSTUNREACH, true),
        (true, 3, 14) | (true, 3, 15) => (Errno::EHOSTUNREACH, true),
        (true, 11, _) => (Errno::EHOSTUNREACH, false),
        (false, 1, 0) => (Errno::ENETUNREACH, false),
        (false, 1, 1) | (false, 1, 5) | (false, 1, 6) => (Errno::EACCES, true),
        (false, 1, 2) | (false, 1, 3) => (Errno::EHOSTUNREACH, false),
        (false, 1, 4) => (Errno::ECONNREFUSED, true),
        (false, 3, _) => (Errno::EHOSTUNREACH, false),
        _ => return None,
    };
    let (proto, local, remote) = flow(quoted)?;
    Some(IcmpError {
        proto,
        local,
        remote,
        errno,
        hard,
    })
}
