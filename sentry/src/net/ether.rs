//! An Ethernet interface the sentry took over from the host (the
//! container's `eth0`): runsc opened an `AF_PACKET` socket on it, read its
//! addresses and routes and removed them from the host side, so the host
//! kernel no longer answers for it. Here the stack's IP packets become
//! frames on that socket and back.
//!
//! smoltcp runs every interface as one raw-IP device (see `device.rs`);
//! what Ethernet needs beyond that is done here: neighbour resolution
//! (ARP for IPv4, neighbour solicitation and advertisement for IPv6, with
//! packets held until their neighbour answers), answering the neighbours'
//! own requests for our addresses, the checksums the host's peer checks
//! (the loopback path skips them), and IPv4 fragmentation of datagrams
//! larger than the link's MTU, as Linux fragments a UDP datagram.
//!
//! Frames larger than the MTU arrive when the host side segments lazily
//! (GSO on a veth); they are taken whole, up to 64 KiB.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::{mask_addr, LinkStats};

const ETH_HEADER: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// Frames taken in one `recvmmsg` at most.
const RECV_BATCH: usize = 16;

/// Frames batched for one `sendmmsg` at most.
const OUTBOX_MAX: usize = 64;

/// Packets held per unresolved neighbour (Linux's `unres_qlen` is about
/// 100 packets' worth of bytes; a few suffice for a handshake).
const HELD_PER_NEIGHBOUR: usize = 32;
/// How often a neighbour is asked again while packets wait for it.
const RESOLVE_RETRY: Duration = Duration::from_secs(1);
/// How many times it is asked before its held packets are dropped.
const RESOLVE_TRIES: u32 = 3;

/// A route the host had through an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostRoute {
    pub dst: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
}

/// An interface of the host's network namespace as `--network=host`
/// lists it to the sandbox (netlink, the interface ioctls, /proc/net), as
/// runsc read it at boot. No packet of the sandbox goes through the
/// sentry's stack on it: the host sockets carry the traffic.
#[derive(Clone, Debug)]
pub struct ListedLink {
    pub name: String,
    pub index: u32,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// IFF_* bits, as the host had them.
    pub flags: u32,
    /// ARPHRD_*.
    pub kind: u16,
    pub addrs: Vec<(IpAddr, u8)>,
    pub routes: Vec<HostRoute>,
}

/// An interface as runsc hands it over: its identity, its addresses and
/// routes as the host had them, and the packet socket bound to it.
#[derive(Debug)]
pub struct HostLink {
    pub name: String,
    pub index: u32,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub addrs: Vec<(IpAddr, u8)>,
    pub routes: Vec<HostRoute>,
    /// `AF_PACKET`, `SOCK_RAW`, bound to the interface, non-blocking,
    /// outgoing frames not looped back.
    pub fd: OwnedFd,
}

/// A neighbour being resolved.
struct Unresolved {
    asked: Instant,
    tries: u32,
    held: VecDeque<Vec<u8>>,
}

/// An Ethernet link of the stack.
pub struct EthLink {
    pub index: u32,
    pub name: String,
    pub mac: [u8; 6],
    pub mtu: usize,
    pub up: bool,
    fd: OwnedFd,
    /// Its addresses with their prefix lengths.
    pub addrs: Vec<(IpAddr, u8)>,
    pub routes: Vec<HostRoute>,
    neighbours: HashMap<IpAddr, [u8; 6]>,
    unresolved: HashMap<IpAddr, Unresolved>,
    /// Packets dropped because their neighbour never answered: the stack
    /// tells their senders the host is unreachable, as Linux's failed
    /// neighbour entry does.
    pub unreachable: Vec<Vec<u8>>,
    /// IPv6 datagrams arriving in fragments, being put together.
    reassembly: Reassembly,
    /// The next IPv6 fragment identification.
    next_frag_id: u32,
    /// Frames waiting to go out in one batch (see `flush`).
    outbox: Vec<Vec<u8>>,
    pub stats: LinkStats,
}

impl EthLink {
    pub fn new(h: HostLink) -> EthLink {
        EthLink {
            index: h.index,
            name: h.name,
            mac: h.mac,
            mtu: (h.mtu as usize).max(1280),
            up: true,
            fd: h.fd,
            addrs: h.addrs,
            routes: h.routes,
            neighbours: HashMap::new(),
            unresolved: HashMap::new(),
            unreachable: Vec::new(),
            reassembly: Reassembly::default(),
            next_frag_id: std::process::id().wrapping_mul(2654435761),
            outbox: Vec::new(),
            stats: LinkStats::default(),
        }
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// How well this link reaches `dst`: the prefix length of the best
    /// match among its subnets and routes (None: it does not).
    pub fn reach(&self, dst: IpAddr) -> Option<u8> {
        let subnets = self.addrs.iter().map(|&(a, p)| (a, p));
        let routes = self.routes.iter().map(|r| (r.dst, r.prefix));
        subnets
            .chain(routes)
            .filter(|(a, p)| {
                a.is_ipv4() == dst.is_ipv4() && mask_addr(*a, *p) == mask_addr(dst, *p)
            })
            .map(|(_, p)| p)
            .max()
            .or_else(|| (is_multicast(dst) && self.has_family(dst)).then_some(0))
    }

    fn has_family(&self, dst: IpAddr) -> bool {
        self.addrs.iter().any(|(a, _)| a.is_ipv4() == dst.is_ipv4())
    }

    /// The neighbour a packet for `dst` goes to: `dst` itself on one of
    /// the link's subnets (or an on-link route), else the gateway of the
    /// longest matching route.
    fn next_hop(&self, dst: IpAddr) -> Option<IpAddr> {
        let on_subnet = self
            .addrs
            .iter()
            .filter(|(a, p)| {
                a.is_ipv4() == dst.is_ipv4() && mask_addr(*a, *p) == mask_addr(dst, *p)
            })
            .map(|(_, p)| *p)
            .max();
        let route = self
            .routes
            .iter()
            .filter(|r| {
                r.dst.is_ipv4() == dst.is_ipv4()
                    && mask_addr(r.dst, r.prefix) == mask_addr(dst, r.prefix)
            })
            .max_by_key(|r| r.prefix);
        match (on_subnet, route) {
            (Some(p), Some(r)) if r.prefix > p => Some(r.gateway.unwrap_or(dst)),
            (Some(_), _) => Some(dst),
            (None, Some(r)) => Some(r.gateway.unwrap_or(dst)),
            (None, None) => None,
        }
    }

    /// Whether `a` is one of this link's addresses, or its broadcast.
    fn is_ours(&self, a: IpAddr) -> bool {
        self.addrs.iter().any(|&(x, p)| {
            x == a
                || matches!((x, a), (IpAddr::V4(x4), IpAddr::V4(a4))
                    if p < 31 && u32::from(a4) == u32::from(x4) | (u32::MAX >> p))
        })
    }

    /// Sends an IP packet the stack made out of this link.
    pub fn transmit(&mut self, mut packet: Vec<u8>, now: Instant) {
        if !self.up || packet.is_empty() {
            self.stats.tx_dropped += 1;
            return;
        }
        fill_checksums(&mut packet);
        let Some(dst) = ip_destination(&packet) else {
            self.stats.tx_dropped += 1;
            return;
        };
        let mac = match self.destination_mac(dst) {
            Some(m) => m,
            None => {
                self.hold(dst, packet, now);
                return;
            }
        };
        self.send_ip(mac, packet);
    }

    /// The MAC of a destination that needs no resolution (broadcast,
    /// multicast) or is resolved already; None: it must be asked for
    /// (or cannot be reached).
    fn destination_mac(&self, dst: IpAddr) -> Option<[u8; 6]> {
        match dst {
            IpAddr::V4(v) if v.is_broadcast() || self.is_broadcast(v) => Some(BROADCAST_MAC),
            IpAddr::V4(v) if v.is_multicast() => {
                let o = v.octets();
                Some([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
            }
            IpAddr::V6(v) if v.is_multicast() => {
                let o = v.octets();
                Some([0x33, 0x33, o[12], o[13], o[14], o[15]])
            }
            _ => self
                .next_hop(dst)
                .and_then(|n| self.neighbours.get(&n).copied()),
        }
    }

    fn is_broadcast(&self, v: Ipv4Addr) -> bool {
        self.addrs.iter().any(|&(x, p)| match x {
            IpAddr::V4(x4) => p < 31 && u32::from(v) == u32::from(x4) | (u32::MAX >> p),
            _ => false,
        })
    }

    /// Holds a packet until its neighbour answers, asking it (again)
    /// when it is time to.
    fn hold(&mut self, dst: IpAddr, packet: Vec<u8>, now: Instant) {
        let Some(hop) = self.next_hop(dst) else {
            self.stats.tx_dropped += 1;
            return;
        };
        let ask = {
            let u = self.unresolved.entry(hop).or_insert(Unresolved {
                asked: now - RESOLVE_RETRY,
                tries: 0,
                held: VecDeque::new(),
            });
            if u.held.len() >= HELD_PER_NEIGHBOUR {
                u.held.pop_front();
                self.stats.tx_dropped += 1;
            }
            u.held.push_back(packet);
            if now.duration_since(u.asked) >= RESOLVE_RETRY {
                if u.tries >= RESOLVE_TRIES {
                    // Nobody answers: what waited is lost, and its senders
                    // hear that the host is unreachable.
                    self.stats.tx_dropped += u.held.len() as u64;
                    self.unreachable.extend(u.held.drain(..));
                    u.tries = 0;
                }
                u.asked = now;
                u.tries += 1;
                true
            } else {
                false
            }
        };
        if ask {
            self.solicit(hop);
        }
    }

    /// Asks who has `hop`: an ARP request, or a neighbour solicitation.
    fn solicit(&mut self, hop: IpAddr) {
        match hop {
            IpAddr::V4(target) => {
                let Some(src) = self.source_v4(target) else {
                    return;
                };
                let arp = arp_packet(1, self.mac, src, [0; 6], target);
                self.send_frame(BROADCAST_MAC, ETHERTYPE_ARP, &arp);
            }
            IpAddr::V6(target) => {
                let Some(src) = self.source_v6() else {
                    return;
                };
                let t = target.octets();
                let group = Ipv6Addr::new(
                    0xff02,
                    0,
                    0,
                    0,
                    0,
                    1,
                    0xff00 | t[13] as u16,
                    u16::from_be_bytes([t[14], t[15]]),
                );
                let mut body = vec![135u8, 0, 0, 0, 0, 0, 0, 0];
                body.extend_from_slice(&t);
                body.extend_from_slice(&[1, 1]);
                body.extend_from_slice(&self.mac);
                let packet = ipv6_packet(src, group, 58, 255, &body);
                let m = group.octets();
                self.send_ip([0x33, 0x33, m[12], m[13], m[14], m[15]], packet);
            }
        }
    }

    /// The address ARP requests for `target` come from: one on its
    /// subnet, else the first.
    fn source_v4(&self, target: Ipv4Addr) -> Option<Ipv4Addr> {
        let v4 = self.addrs.iter().filter_map(|&(a, p)| match a {
            IpAddr::V4(x) => Some((x, p)),
            _ => None,
        });
        let all: Vec<_> = v4.collect();
        all.iter()
            .find(|(x, p)| mask_addr(IpAddr::V4(*x), *p) == mask_addr(IpAddr::V4(target), *p))
            .or(all.first())
            .map(|(x, _)| *x)
    }

    /// The address neighbour solicitations come from: the link-local
    /// one, else the first.
    fn source_v6(&self) -> Option<Ipv6Addr> {
        let all: Vec<Ipv6Addr> = self
            .addrs
            .iter()
            .filter_map(|&(a, _)| match a {
                IpAddr::V6(x) => Some(x),
                _ => None,
            })
            .collect();
        all.iter()
            .find(|x| x.segments()[0] & 0xffc0 == 0xfe80)
            .or(all.first())
            .copied()
    }

    /// A neighbour told us its MAC: remember it, and send what waited.
    fn learn(&mut self, ip: IpAddr, mac: [u8; 6]) {
        if mac == [0; 6] || mac[0] & 1 != 0 {
            return;
        }
        self.neighbours.insert(ip, mac);
        if let Some(u) = self.unresolved.remove(&ip) {
            for p in u.held {
                self.send_ip(mac, p);
            }
        }
    }

    /// Sends an IP packet to a MAC, fragmenting an IPv4 one larger than
    /// the MTU.
    fn send_ip(&mut self, mac: [u8; 6], packet: Vec<u8>) {
        let ethertype = if packet[0] >> 4 == 6 {
            ETHERTYPE_IPV6
        } else {
            ETHERTYPE_IPV4
        };
        if packet.len() <= self.mtu {
            self.send_frame(mac, ethertype, &packet);
            return;
        }
        if ethertype == ETHERTYPE_IPV6 {
            // Fragmented at the source, as Linux's ip6_fragment does for
            // a datagram larger than the path (TCP keeps to the MSS).
            self.next_frag_id = self.next_frag_id.wrapping_add(1);
            match fragment_v6(&packet, self.mtu, self.next_frag_id) {
                Some(frags) => {
                    for f in frags {
                        self.send_frame(mac, ETHERTYPE_IPV6, &f);
                    }
                }
                None => self.stats.tx_dropped += 1,
            }
            return;
        }
        for f in fragment_v4(&packet, self.mtu) {
            self.send_frame(mac, ETHERTYPE_IPV4, &f);
        }
    }

    fn send_frame(&mut self, dst: [u8; 6], ethertype: u16, payload: &[u8]) {
        let mut frame = Vec::with_capacity(ETH_HEADER + payload.len());
        frame.extend_from_slice(&dst);
        frame.extend_from_slice(&self.mac);
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame.extend_from_slice(payload);
        self.outbox.push(frame);
        if self.outbox.len() >= OUTBOX_MAX {
            self.flush();
        }
    }

    /// Sends the frames waiting, as few `sendmmsg` calls as they take
    /// (the stack flushes at the end of every poll: nothing waits longer
    /// than the call that made it).
    pub fn flush(&mut self) {
        let mut sent = 0;
        while sent < self.outbox.len() {
            match crate::hostcall::send_frames(self.fd.as_raw_fd(), &self.outbox[sent..]) {
                Ok(n) if n > 0 => {
                    for f in &self.outbox[sent..sent + n] {
                        self.stats.tx_packets += 1;
                        self.stats.tx_bytes += f.len() as u64;
                    }
                    sent += n;
                }
                // A full socket buffer or a link gone: the frame is lost,
                // as a full device queue loses it; the rest are tried.
                _ => {
                    self.stats.tx_dropped += 1;
                    sent += 1;
                }
            }
        }
        self.outbox.clear();
    }

    /// A frame from the link: IP packets for us are appended to `deliver`;
    /// neighbour protocol frames are answered here.
    pub fn receive(&mut self, frame: &[u8], deliver: &mut VecDeque<Vec<u8>>) {
        if frame.len() < ETH_HEADER || !self.up {
            return;
        }
        let dst: [u8; 6] = frame[0..6].try_into().unwrap();
        if dst != self.mac && dst[0] & 1 == 0 {
            return;
        }
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += frame.len() as u64;
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let p = &frame[ETH_HEADER..];
        match ethertype {
            ETHERTYPE_ARP => self.receive_arp(p),
            ETHERTYPE_IPV4 => {
                if p.len() < 20 || p[0] >> 4 != 4 {
                    return;
                }
                let len = (u16::from_be_bytes([p[2], p[3]]) as usize).min(p.len());
                let d = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
                if self.is_ours(IpAddr::V4(d)) || d.is_broadcast() || d.is_multicast() {
                    deliver.push_back(p[..len].to_vec());
                } else {
                    self.stats.rx_dropped += 1;
                }
            }
            ETHERTYPE_IPV6 => {
                if p.len() < 40 || p[0] >> 4 != 6 {
                    return;
                }
                let len = (40 + u16::from_be_bytes([p[4], p[5]]) as usize).min(p.len());
                let p = &p[..len];
                if p[6] == 58 && len >= 48 && (133..=137).contains(&p[40]) {
                    self.receive_ndp(p);
                    return;
                }
                let d = ipv6_at(p, 24);
                if !(self.is_ours(IpAddr::V6(d)) || d.is_multicast()) {
                    self.stats.rx_dropped += 1;
                } else if p[6] == IPV6_FRAGMENT {
                    if let Some(whole) = self.reassembly.add(p, Instant::now()) {
                        deliver.push_back(whole);
                    }
                } else {
                    deliver.push_back(p.to_vec());
                }
            }
            _ => {}
        }
    }

    fn receive_arp(&mut self, p: &[u8]) {
        // Ethernet/IPv4 ARP only.
        if p.len() < 28 || p[0..2] != [0, 1] || p[2..4] != [8, 0] || p[4] != 6 || p[5] != 4 {
            return;
        }
        let op = u16::from_be_bytes([p[6], p[7]]);
        let sha: [u8; 6] = p[8..14].try_into().unwrap();
        let spa = Ipv4Addr::new(p[14], p[15], p[16], p[17]);
        let tpa = Ipv4Addr::new(p[24], p[25], p[26], p[27]);
        let for_us = self.addrs.iter().any(|&(a, _)| a == IpAddr::V4(tpa));
        // As Linux: a request for us, or any word from a neighbour we
        // know or wait for, updates what we know of its sender.
        if for_us
            || self.neighbours.contains_key(&IpAddr::V4(spa))
            || self.unresolved.contains_key(&IpAddr::V4(spa))
        {
            self.learn(IpAddr::V4(spa), sha);
        }
        if op == 1 && for_us {
            let reply = arp_packet(2, self.mac, tpa, sha, spa);
            self.send_frame(sha, ETHERTYPE_ARP, &reply);
        }
    }

    fn receive_ndp(&mut self, p: &[u8]) {
        let src = ipv6_at(p, 8);
        let body = &p[40..];
        let kind = body[0];
        if body.len() < 24 || p[7] != 255 {
            return;
        }
        let target = ipv6_at(body, 8);
        let option = |want: u8| -> Option<[u8; 6]> {
            let mut o = &body[24..];
            while o.len() >= 8 {
                let len = o[1] as usize * 8;
                if len == 0 || len > o.len() {
                    return None;
                }
                if o[0] == want && len >= 8 {
                    return o[2..8].try_into().ok();
                }
                o = &o[len..];
            }
            None
        };
        match kind {
            135 => {
                let ours = self.addrs.iter().any(|&(a, _)| a == IpAddr::V6(target));
                if !ours {
                    return;
                }
                if let (false, Some(mac)) = (src.is_unspecified(), option(1)) {
                    self.learn(IpAddr::V6(src), mac);
                }
                let (dst, flags) = if src.is_unspecified() {
                    (Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0x20)
                } else {
                    (src, 0x60)
                };
                let mut na = vec![136u8, 0, 0, 0, flags, 0, 0, 0];
                na.extend_from_slice(&target.octets());
                na.extend_from_slice(&[2, 1]);
                na.extend_from_slice(&self.mac);
                let packet = ipv6_packet(target, dst, 58, 255, &na);
                let mac = if dst.is_multicast() {
                    let m = dst.octets();
                    [0x33, 0x33, m[12], m[13], m[14], m[15]]
                } else {
                    match self.neighbours.get(&IpAddr::V6(dst)) {
                        Some(m) => *m,
                        None => return,
                    }
                };
                self.send_ip(mac, packet);
            }
            136 => {
                if let Some(mac) = option(2) {
                    self.learn(IpAddr::V6(target), mac);
                }
            }
            // Router solicitations and advertisements, redirects: the
            // routes are the ones the host had.
            _ => {}
        }
    }
}

/// Waits for frames on a link's packet socket and hands them to the
/// stack, in batches, until the stack is gone.
pub fn receive_loop(stack: std::sync::Weak<super::NetStack>, fd: i32, index: u32) {
    let mut bufs: Vec<Vec<u8>> = (0..RECV_BATCH)
        .map(|_| vec![0u8; 65536 + ETH_HEADER])
        .collect();
    loop {
        let mut pfd = [libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        }];
        let ready = crate::hostcall::poll_fds(&mut pfd, 1000);
        let Some(s) = stack.upgrade() else {
            return;
        };
        if !matches!(ready, Ok(n) if n > 0) {
            continue;
        }
        let mut frames = Vec::new();
        while frames.len() < 64 {
            match crate::hostcall::recv_frames(fd, &mut bufs) {
                Ok(lens) if !lens.is_empty() => {
                    let full = lens.len() == bufs.len();
                    frames.extend(lens.iter().zip(&bufs).map(|(&n, b)| b[..n].to_vec()));
                    if !full {
                        break;
                    }
                }
                _ => break,
            }
        }
        if !frames.is_empty() {
            s.receive_frames(index, frames);
        }
    }
}

fn ipv6_at(p: &[u8], at: usize) -> Ipv6Addr {
    let b: [u8; 16] = p[at..at + 16].try_into().unwrap();
    Ipv6Addr::from(b)
}

fn is_multicast(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_multicast() || v.is_broadcast(),
        IpAddr::V6(v) => v.is_multicast(),
    }
}

/// The destination of a raw IP packet.
pub fn ip_destination(p: &[u8]) -> Option<IpAddr> {
    match p.first()? >> 4 {
        4 if p.len() >= 20 => Some(IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19]))),
        6 if p.len() >= 40 => Some(IpAddr::V6(ipv6_at(p, 24))),
        _ => None,
    }
}

fn arp_packet(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&tha);
    a.extend_from_slice(&tpa.octets());
    a
}

/// An IPv6 packet with this payload, its ICMPv6/TCP/UDP checksum filled.
fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hops: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.push(next);
    p.push(hops);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    fill_checksums(&mut p);
    p
}

/// The one's-complement sum of `data`, added to `sum`.
fn sum16(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u32) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Where a transport protocol keeps its checksum, and whether a zero
/// result is sent as all ones (UDP).
fn checksum_field(proto: u8) -> Option<(usize, bool)> {
    match proto {
        6 => Some((16, false)),
        17 => Some((6, true)),
        1 | 58 => Some((2, false)),
        _ => None,
    }
}

/// Fills the checksums of an unfragmented IP packet: the IPv4 header's,
/// and the TCP, UDP, ICMP or ICMPv6 one (with its pseudo-header, except
/// for ICMP).
pub fn fill_checksums(p: &mut [u8]) {
    match p.first().map(|b| b >> 4) {
        Some(4) if p.len() >= 20 => {
            let ihl = (p[0] & 0xf) as usize * 4;
            let total = (u16::from_be_bytes([p[2], p[3]]) as usize).min(p.len());
            if ihl < 20 || total < ihl {
                return;
            }
            p[10] = 0;
            p[11] = 0;
            let h = fold(sum16(0, &p[..ihl]));
            p[10..12].copy_from_slice(&h.to_be_bytes());
            let frag = u16::from_be_bytes([p[6], p[7]]);
            if frag & 0x3fff != 0 {
                return;
            }
            let proto = p[9];
            let Some((at, udp)) = checksum_field(proto) else {
                return;
            };
            let l4_len = total - ihl;
            if l4_len < at + 2 {
                return;
            }
            let mut sum = 0;
            if proto != 1 {
                sum = sum16(sum, &p[12..20]);
                sum += proto as u32 + l4_len as u32;
            }
            put_checksum(&mut p[ihl..total], at, udp, sum);
        }
        Some(6) if p.len() >= 40 => {
            let proto = p[6];
            let Some((at, udp)) = checksum_field(proto) else {
                return;
            };
            if proto == 1 {
                return;
            }
            let total = (40 + u16::from_be_bytes([p[4], p[5]]) as usize).min(p.len());
            let l4_len = total - 40;
            if l4_len < at + 2 {
                return;
            }
            let mut sum = sum16(0, &p[8..40]);
            sum += l4_len as u32 + proto as u32;
            put_checksum(&mut p[40..total], at, udp, sum);
        }
        _ => {}
    }
}

/// Writes a transport checksum at `at` of `l4`, over `l4` and the
/// pseudo-header sum `pseudo`.
fn put_checksum(l4: &mut [u8], at: usize, udp: bool, pseudo: u32) {
    l4[at] = 0;
    l4[at + 1] = 0;
    let mut c = fold(sum16(pseudo, l4));
    if udp && c == 0 {
        c = 0xffff;
    }
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Splits an IPv4 packet (checksums filled) into fragments of at most
/// `mtu` bytes, each with its header checksum.
/// IPv6's Fragment extension header (next header 44).
const IPV6_FRAGMENT: u8 = 44;
/// How long the pieces of a datagram wait for the rest (Linux's
/// ipfrag_time).
const REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Datagrams being reassembled at once; past this the oldest is dropped.
const REASSEMBLY_MAX: usize = 64;

/// An IPv6 datagram's fragments so far.
struct Partial {
    started: Instant,
    /// The unfragmentable part: the fixed header (its next header and
    /// length fixed up when done).
    header: Vec<u8>,
    /// The next header the Fragment header names.
    next: u8,
    /// (offset, bytes) of each fragment.
    pieces: Vec<(usize, Vec<u8>)>,
    /// The payload's length, known from the last fragment.
    total: Option<usize>,
}

/// IPv6 reassembly (Linux's `ipv6_frag_rcv`): fragments whose Fragment
/// header follows the fixed header directly, keyed by source,
/// destination and identification.
#[derive(Default)]
struct Reassembly {
    partial: HashMap<(Ipv6Addr, Ipv6Addr, u32), Partial>,
}

impl Reassembly {
    /// Takes a fragment; the whole datagram once its last piece came.
    fn add(&mut self, p: &[u8], now: Instant) -> Option<Vec<u8>> {
        self.partial
            .retain(|_, d| now.duration_since(d.started) < REASSEMBLY_TIMEOUT);
        if p.len() < 48 {
            return None;
        }
        let next = p[40];
        let word = u16::from_be_bytes([p[42], p[43]]);
        let offset = (word & !7) as usize;
        let more = word & 1 != 0;
        let id = u32::from_be_bytes([p[44], p[45], p[46], p[47]]);
        let data = &p[48..];
        // Every fragment but the last carries a multiple of 8 bytes.
        if (more && !data.len().is_multiple_of(8)) || offset + data.len() > 65535 {
            return None;
        }
        let key = (ipv6_at(p, 8), ipv6_at(p, 24), id);
        if !self.partial.contains_key(&key) && self.partial.len() >= REASSEMBLY_MAX {
            let oldest = self
                .partial
                .iter()
                .min_by_key(|(_, d)| d.started)
                .map(|(k, _)| *k)?;
            self.partial.remove(&oldest);
        }
        let d = self.partial.entry(key).or_insert_with(|| Partial {
            started: now,
            header: p[..40].to_vec(),
            next,
            pieces: Vec::new(),
            total: None,
        });
        if offset == 0 {
            d.next = next;
        }
        if !more {
            d.total = Some(offset + data.len());
        }
        // Overlapping fragments make the datagram invalid (RFC 5722).
        if d.pieces
            .iter()
            .any(|(o, b)| offset < o + b.len() && *o < offset + data.len())
        {
            self.partial.remove(&key);
            return None;
        }
        d.pieces.push((offset, data.to_vec()));
        let total = d.total?;
        let have: usize = d.pieces.iter().map(|(_, b)| b.len()).sum();
        if have != total {
            return None;
        }
        let mut d = self.partial.remove(&key)?;
        d.pieces.sort_by_key(|(o, _)| *o);
        let mut out = d.header;
        out[4..6].copy_from_slice(&(total as u16).to_be_bytes());
        out[6] = d.next;
        for (_, b) in d.pieces {
            out.extend_from_slice(&b);
        }
        Some(out)
    }
}

/// An IPv6 packet in fragments of at most `mtu` bytes (a Fragment header
/// after the fixed one); None when it carries extension headers of its
/// own (not made here) or the MTU leaves no room.
fn fragment_v6(p: &[u8], mtu: usize, id: u32) -> Option<Vec<Vec<u8>>> {
    if p.len() < 40 || !matches!(p[6], 6 | 17 | 58) {
        return None;
    }
    let payload = &p[40..];
    let step = mtu.checked_sub(48)? & !7;
    if step == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + step).min(payload.len());
        let more = end < payload.len();
        let mut f = Vec::with_capacity(48 + end - off);
        f.extend_from_slice(&p[..40]);
        f[4..6].copy_from_slice(&((8 + end - off) as u16).to_be_bytes());
        f[6] = IPV6_FRAGMENT;
        f.push(p[6]);
        f.push(0);
        let word = (off as u16) | more as u16;
        f.extend_from_slice(&word.to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
        f.extend_from_slice(&payload[off..end]);
        out.push(f);
        off = end;
    }
    Some(out)
}

fn fragment_v4(p: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    let ihl = (p[0] & 0xf) as usize * 4;
    let total = (u16::from_be_bytes([p[2], p[3]]) as usize).min(p.len());
    let payload = &p[ihl..total];
    let step = (mtu - ihl) & !7;
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + step).min(payload.len());
        let more = end < payload.len();
        let mut f = Vec::with_capacity(ihl + end - off);
        f.extend_from_slice(&p[..ihl]);
        f.extend_from_slice(&payload[off..end]);
        let len = f.len() as u16;
        f[2..4].copy_from_slice(&len.to_be_bytes());
        let word = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
        f[6..8].copy_from_slice(&word.to_be_bytes());
        f[10] = 0;
        f[11] = 0;
        let h = fold(sum16(0, &f[..ihl]));
        f[10..12].copy_from_slice(&h.to_be_bytes());
        out.push(f);
        off = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv6_udp(len: usize) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((len + 8) as u16).to_be_bytes());
        p[6] = 17;
        p[7] = 64;
        p[8..24].copy_from_slice(&"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        p[24..40].copy_from_slice(&"fd00::2".parse::<Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(&[0x30, 0x39, 0, 53]);
        p.extend_from_slice(&((len + 8) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend((0..len).map(|i| (i % 253) as u8));
        p
    }

    #[test]
    fn ipv6_fragments_fit_the_mtu_and_reassemble_in_any_order() {
        let p = ipv6_udp(5000);
        let mut frags = fragment_v6(&p, 1500, 7).unwrap();
        assert_eq!(frags.len(), 4);
        assert!(frags.iter().all(|f| f.len() <= 1500));
        frags.reverse();
        let mut r = Reassembly::default();
        let now = Instant::now();
        let last = frags.pop().unwrap();
        for f in &frags {
            assert!(r.add(f, now).is_none());
        }
        assert_eq!(r.add(&last, now).unwrap(), p);
        // A fragment overlapping another spoils its datagram.
        let frags = fragment_v6(&p, 1500, 8).unwrap();
        assert!(r.add(&frags[0], now).is_none());
        let mut bad = frags[1].clone();
        bad[42..44].copy_from_slice(&(8u16 | 1).to_be_bytes());
        assert!(r.add(&bad, now).is_none());
        for f in &frags[1..] {
            assert!(r.add(f, now).is_none());
        }
    }

    #[test]
    fn ipv4_header_checksum_verifies() {
        // A UDP packet 10.0.0.1 -> 10.0.0.2, 4 bytes of data.
        let mut p = vec![
            0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0, 53,
            0, 12, 0, 0, b'a', b'b', b'c', b'd',
        ];
        fill_checksums(&mut p);
        assert_eq!(fold(sum16(0, &p[..20])), 0);
        let mut pseudo = sum16(0, &p[12..20]);
        pseudo += 17 + 12;
        assert_eq!(fold(sum16(pseudo, &p[20..])), 0);
    }

    #[test]
    fn fragments_cover_the_payload() {
        let mut p = vec![
            0x45, 0, 0, 0, 0, 7, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p.extend((0..3000u32).map(|i| i as u8));
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        let f = fragment_v4(&p, 1500);
        assert_eq!(f.len(), 3);
        let data: Vec<u8> = f.iter().flat_map(|x| x[20..].to_vec()).collect();
        assert_eq!(data, p[20..]);
        assert!(f.iter().all(|x| x.len() <= 1500));
        assert_eq!(u16::from_be_bytes([f[1][6], f[1][7]]) & 0x1fff, 1480 / 8);
        assert_eq!(u16::from_be_bytes([f[2][6], f[2][7]]) & 0x2000, 0);
    }
}
