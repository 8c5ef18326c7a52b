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
