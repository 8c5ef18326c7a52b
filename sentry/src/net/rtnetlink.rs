//! NETLINK_ROUTE's messages: the stack's links, addresses, routes and
//! neighbours as rtnetlink describes them (what `ip` and glibc's
//! `getifaddrs` read), and the changes `ip link set` and `ip addr add`
//! make. The socket side (queues, acks, dumps split into datagrams) is
//! `fsimpl/socket/netlink.rs`; this file answers one request.
//!
//! Attributes come in the order Linux's `rtnl_fill_ifinfo`,
//! `inet_fill_ifaddr`, `inet6_fill_ifaddr`, `fib_dump_info` and
//! `rt6_fill_node` put them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{mask_addr, AddrInfo, LinkInfo, NetStack, ARPHRD_LOOPBACK, IFF_LOOPBACK, IFF_UP};
use crate::errno::Errno;
use crate::kernel::task::Task;

// ----- Netlink's framing -----

pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
/// Types below this are netlink's own (NOOP, ERROR, DONE, OVERRUN).
pub const NLMSG_MIN_TYPE: u16 = 0x10;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP_FILTERED: u16 = 0x20;
pub const NLM_F_ROOT: u16 = 0x100;
pub const NLM_F_MATCH: u16 = 0x200;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
/// In an ack: the request is not echoed.
pub const NLM_F_CAPPED: u16 = 0x100;

pub fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A message's header.
#[derive(Clone, Copy, Debug)]
pub struct NlHdr {
    pub len: u32,
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
}

impl NlHdr {
    pub fn parse(b: &[u8]) -> Option<NlHdr> {
        if b.len() < NLMSG_HDRLEN {
            return None;
        }
        Some(NlHdr {
            len: u32::from_ne_bytes(b[0..4].try_into().unwrap()),
            ty: u16::from_ne_bytes(b[4..6].try_into().unwrap()),
            flags: u16::from_ne_bytes(b[6..8].try_into().unwrap()),
            seq: u32::from_ne_bytes(b[8..12].try_into().unwrap()),
            pid: u32::from_ne_bytes(b[12..16].try_into().unwrap()),
        })
    }
}

/// A message being built.
pub struct MsgBuf(Vec<u8>);

impl MsgBuf {
    pub fn new(ty: u16, flags: u16, seq: u32, pid: u32) -> MsgBuf {
        let mut v = Vec::with_capacity(256);
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&pid.to_ne_bytes());
        MsgBuf(v)
    }

    /// Appends bytes, padded to 4.
    pub fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
        self.0.resize(align4(self.0.len()), 0);
    }

    pub fn attr(&mut self, ty: u16, b: &[u8]) {
        self.0
            .extend_from_slice(&((4 + b.len()) as u16).to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.raw(b);
    }

    pub fn u8(&mut self, ty: u16, v: u8) {
        self.attr(ty, &[v]);
    }

    pub fn u32(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_ne_bytes());
    }

    /// A NUL-terminated string.
    pub fn str(&mut self, ty: u16, s: &str) {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.attr(ty, &b);
    }

    pub fn ip(&mut self, ty: u16, a: IpAddr) {
        match a {
            IpAddr::V4(v) => self.attr(ty, &v.octets()),
            IpAddr::V6(v) => self.attr(ty, &v.octets()),
        }
    }

    /// Starts a nested attribute; [`end_nest`](Self::end_nest) closes it.
    pub fn nest(&mut self, ty: u16) -> usize {
        let at = self.0.len();
        self.attr(ty, &[]);
        at
    }

    pub fn end_nest(&mut self, at: usize) {
        let len = (self.0.len() - at) as u16;
        self.0[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    pub fn finish(mut self) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&len.to_ne_bytes());
        self.0
    }
}

/// The attributes after a fixed header of `fixed` bytes in a message's
/// payload, as (type without the nested/byte-order bits, value). A
/// malformed attribute ends the list (Linux: EINVAL from strict
/// parsing; the sentry takes what came before).
pub fn attrs(payload: &[u8], fixed: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut off = align4(fixed);
    while off + 4 <= payload.len() {
        let len = u16::from_ne_bytes([payload[off], payload[off + 1]]) as usize;
        let ty = u16::from_ne_bytes([payload[off + 2], payload[off + 3]]) & 0x3fff;
        if len < 4 || off + len > payload.len() {
            break;
        }
        out.push((ty, &payload[off + 4..off + len]));
        off += align4(len);
    }
    out
}

fn find<'a>(a: &[(u16, &'a [u8])], ty: u16) -> Option<&'a [u8]> {
    a.iter().find(|x| x.0 == ty).map(|x| x.1)
}

fn get_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

/// A string attribute up to its NUL.
fn get_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

// ----- rtnetlink's numbers -----

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_SETLINK: u16 = 19;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_GETROUTE: u16 = 26;
pub const RTM_GETNEIGH: u16 = 30;
/// The last rtnetlink type of Linux 6 (RTM_GETTUNNEL + 3 ... the table's
/// end).
pub const RTM_MAX: u16 = 127;

/// Multicast groups (RTNLGRP_*).
pub const RTNLGRP_LINK: u32 = 1;
pub const RTNLGRP_IPV4_IFADDR: u32 = 5;
pub const RTNLGRP_IPV6_IFADDR: u32 = 9;

const IFLA_ADDRESS: u16 = 1;
const IFLA_BROADCAST: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_QDISC: u16 = 6;
const IFLA_STATS: u16 = 7;
const IFLA_TXQLEN: u16 = 13;
const IFLA_MAP: u16 = 14;
const IFLA_PROTINFO: u16 = 12;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKMODE: u16 = 17;
const IFLA_STATS64: u16 = 23;
const IFLA_GROUP: u16 = 27;
const IFLA_EXT_MASK: u16 = 29;
const IFLA_PROMISCUITY: u16 = 30;
const IFLA_NUM_TX_QUEUES: u16 = 31;
const IFLA_NUM_RX_QUEUES: u16 = 32;
const IFLA_CARRIER: u16 = 33;
const IFLA_CARRIER_CHANGES: u16 = 35;
const IFLA_PROTO_DOWN: u16 = 39;
const IFLA_GSO_MAX_SEGS: u16 = 40;
const IFLA_GSO_MAX_SIZE: u16 = 41;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_CARRIER_UP_COUNT: u16 = 47;
const IFLA_CARRIER_DOWN_COUNT: u16 = 48;
const IFLA_MIN_MTU: u16 = 50;
const IFLA_MAX_MTU: u16 = 51;
const IFLA_ALT_IFNAME: u16 = 53;
const IFLA_GRO_MAX_SIZE: u16 = 58;
const IFLA_TSO_MAX_SIZE: u16 = 59;
const IFLA_TSO_MAX_SEGS: u16 = 60;
const IFLA_ALLMULTI: u16 = 61;
const IFLA_GSO_IPV4_MAX_SIZE: u16 = 63;
const IFLA_GRO_IPV4_MAX_SIZE: u16 = 64;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_BROADCAST: u16 = 4;
const IFA_CACHEINFO: u16 = 6;
const IFA_FLAGS: u16 = 8;
pub const IFA_F_PERMANENT: u32 = 0x80;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_CACHEINFO: u16 = 12;
const RTA_TABLE: u16 = 15;
const RTA_PREF: u16 = 20;

pub const RT_TABLE_MAIN: u8 = 254;
pub const RT_TABLE_LOCAL: u8 = 255;
pub const RTPROT_KERNEL: u8 = 2;
pub const RTPROT_BOOT: u8 = 3;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
pub const RT_SCOPE_LINK: u8 = 253;
pub const RT_SCOPE_HOST: u8 = 254;
pub const RTN_UNICAST: u8 = 1;
pub const RTN_LOCAL: u8 = 2;
pub const RTN_BROADCAST: u8 = 3;

/// The link's transmit queue length (Linux's default for loopback and
/// Ethernet devices).
pub const TXQLEN: u32 = 1000;
const IF_OPER_UNKNOWN: u8 = 0;
const IF_OPER_DOWN: u8 = 2;
const IF_OPER_UP: u8 = 6;

/// `sizeof(struct ifinfomsg)`, `struct ifaddrmsg`, `struct rtmsg`.
const IFINFOMSG: usize = 16;
const IFADDRMSG: usize = 8;
const RTMSG: usize = 12;

/// What a request asks of the socket.
pub enum Answer {
    /// Messages to queue, then an ack if NLM_F_ACK was set.
    Done(Vec<Vec<u8>>),
    /// A dump's messages (NLM_F_MULTI already set); the socket splits
    /// them into datagrams and ends them with NLMSG_DONE. No ack.
    Dump(Vec<Vec<u8>>),
}

/// A change other sockets hear of: (group, message).
pub type Notification = (u32, Vec<u8>);

/// One rtnetlink request (`rtnetlink_rcv_msg`): `msg` is the whole
/// message, `portid` the sender's port, `strict` its
/// NETLINK_GET_STRICT_CHK. Notifications of changes are pushed on
/// `notify`; `extack` gets the message Linux gives with some errors
/// (NLMSGERR_ATTR_MSG).
pub fn handle(
    t: &Task,
    stack: &NetStack,
    msg: &[u8],
    portid: u32,
    strict: bool,
    notify: &mut Vec<Notification>,
    extack: &mut Option<&'static str>,
) -> Result<Answer, Errno> {
    let h = NlHdr::parse(msg).ok_or(Errno::EINVAL)?;
    let payload = &msg[NLMSG_HDRLEN..h.len as usize];
    if h.ty > RTM_MAX {
        return Err(Errno::EOPNOTSUPP);
    }
    // Every message has at least a family byte; shorter ones are
    // skipped.
    if payload.is_empty() {
        return Ok(Answer::Done(Vec::new()));
    }
    let family = payload[0] as i32;
    let kind = (h.ty - RTM_NEWLINK) & 3;
    const GET: u16 = 2;
    if kind != GET && !t.creds.has_cap(CAP_NET_ADMIN) {
        return Err(Errno::EPERM);
    }
    let dump = kind == GET && h.flags & (NLM_F_ROOT | NLM_F_MATCH) != 0;
    let cx = Cx {
        stack,
        seq: h.seq,
        pid: portid,
        strict,
        created: stack.created_cs(t),
    };
    match (h.ty, dump) {
        (RTM_GETLINK, true) if family == libc::AF_INET6 => Ok(Answer::Dump(
            stack.links().iter().map(|l| cx.link6(l)).collect(),
        )),
        (RTM_GETLINK, true) => Ok(Answer::Dump(
            stack
                .links()
                .iter()
                .map(|l| cx.link(l, RTM_NEWLINK, NLM_F_MULTI, 0))
                .collect(),
        )),
        (RTM_GETLINK, false) => {
            let l = cx.find_link(payload)?;
            Ok(Answer::Done(vec![cx.link(&l, RTM_NEWLINK, 0, 0)]))
        }
        (RTM_NEWLINK | RTM_SETLINK, _) => {
            cx.setlink(t, h, payload, notify)?;
            Ok(Answer::Done(Vec::new()))
        }
        (RTM_DELLINK, _) => {
            // The sandbox's links are not made by link types that can be
            // deleted (Linux: loopback has no rtnl_link_ops).
            cx.find_link(payload)?;
            Err(Errno::EOPNOTSUPP)
        }
        (RTM_GETADDR, true) => Ok(Answer::Dump(cx.addr_dump(family, payload))),
        (RTM_NEWADDR, _) => {
            cx.newaddr(t, h, family, payload, notify, extack)?;
            Ok(Answer::Done(Vec::new()))
        }
        (RTM_DELADDR, _) => {
            cx.deladdr(family, payload, notify, extack)?;
            Ok(Answer::Done(Vec::new()))
        }
        (RTM_GETROUTE, true) => Ok(Answer::Dump(cx.route_dump(family, payload))),
        // No neighbours: the sandbox's only link is loopback, which
        // resolves none.
        (RTM_GETNEIGH, true) => Ok(Answer::Dump(Vec::new())),
        (ty, dump) => {
            t.kernel.note_unsupported(
                &format!(
                    "netlink route message type {ty}{}",
                    if dump { " (dump)" } else { "" }
                ),
                "EOPNOTSUPP",
            );
            Err(Errno::EOPNOTSUPP)
        }
    }
}

const CAP_NET_ADMIN: u32 = 12;

impl NetStack {
    /// When the stack's addresses were made, in hundredths of a second
    /// since boot (IFA_CACHEINFO's stamps).
    fn created_cs(&self, t: &Task) -> u32 {
        (self
            .start
            .saturating_duration_since(t.kernel.boot_time)
            .as_millis()
            / 10) as u32
    }
}

struct Cx<'a> {
    stack: &'a NetStack,
    seq: u32,
    pid: u32,
    strict: bool,
    created: u32,
}

/// An address's scope as Linux gives it to addresses it makes: loopback
/// addresses are host-scoped, IPv6 link-local ones link-scoped.
pub fn addr_scope(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(v) if v.is_loopback() => RT_SCOPE_HOST,
        IpAddr::V6(v) if v.is_loopback() => RT_SCOPE_HOST,
        IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80 => RT_SCOPE_LINK,
        _ => RT_SCOPE_UNIVERSE,
    }
}

/// An IPv4 address's broadcast address as `ip addr add ... brd +` and
/// the sandbox's own set-up make it: none on loopback or for /31 and /32.
pub fn broadcast_of(a: &AddrInfo, link: Option<&LinkInfo>) -> Option<Ipv4Addr> {
    let IpAddr::V4(v) = a.addr else {
        return None;
    };
    if link.is_some_and(|l| l.flags & IFF_LOOPBACK != 0) || a.prefix >= 31 {
        return None;
    }
    let host = if a.prefix == 0 {
        u32::MAX
    } else {
        u32::MAX >> a.prefix
    };
    Some(Ipv4Addr::from(u32::from(v) | host))
}

/// The operational state of a link (IFLA_OPERSTATE): loopback has no
/// carrier detection and is "unknown" when up.
pub fn operstate(l: &LinkInfo) -> u8 {
    if l.flags & IFF_UP == 0 {
        IF_OPER_DOWN
    } else if l.kind == ARPHRD_LOOPBACK {
        IF_OPER_UNKNOWN
    } else {
        IF_OPER_UP
    }
}

/// `rtnl_fill_ifinfo`: a link's message.
pub fn link_msg(l: &LinkInfo, ty: u16, flags: u16, seq: u32, pid: u32, change: u32) -> Vec<u8> {
    let mut m = MsgBuf::new(ty, flags, seq, pid);

    let mut hdr = [0u8; IFINFOMSG];
    hdr[2..4].copy_from_slice(&l.kind.to_ne_bytes());
    hdr[4..8].copy_from_slice(&(l.index as i32).to_ne_bytes());
    hdr[8..12].copy_from_slice(&l.flags.to_ne_bytes());
    hdr[12..16].copy_from_slice(&change.to_ne_bytes());
    m.raw(&hdr);
    let up = l.flags & IFF_UP != 0;
    m.str(IFLA_IFNAME, &l.name);
    m.u32(IFLA_TXQLEN, TXQLEN);
    m.u8(IFLA_OPERSTATE, operstate(l));
    m.u8(IFLA_LINKMODE, 0);
    m.u32(IFLA_MTU, l.mtu);
    m.u32(IFLA_MIN_MTU, if l.kind == ARPHRD_LOOPBACK { 0 } else { 68 });
    m.u32(
        IFLA_MAX_MTU,
        if l.kind == ARPHRD_LOOPBACK { 0 } else { 65535 },
    );
    m.u32(IFLA_GROUP, 0);
    m.u32(IFLA_PROMISCUITY, 0);
    m.u32(IFLA_ALLMULTI, 0);
    m.u32(IFLA_NUM_TX_QUEUES, 1);
    m.u32(IFLA_GSO_MAX_SEGS, 65535);
    m.u32(IFLA_GSO_MAX_SIZE, 65536);
    m.u32(IFLA_GRO_MAX_SIZE, 65536);
    m.u32(IFLA_GSO_IPV4_MAX_SIZE, 65536);
    m.u32(IFLA_GRO_IPV4_MAX_SIZE, 65536);
    m.u32(IFLA_TSO_MAX_SIZE, 524280);
    m.u32(IFLA_TSO_MAX_SEGS, 65535);
    m.u32(IFLA_NUM_RX_QUEUES, 1);
    m.u8(IFLA_CARRIER, up as u8);
    m.u32(IFLA_CARRIER_CHANGES, 0);
    m.u32(IFLA_CARRIER_UP_COUNT, 0);
    m.u32(IFLA_CARRIER_DOWN_COUNT, 0);
    m.u8(IFLA_PROTO_DOWN, 0);
    m.attr(IFLA_ADDRESS, &l.mac);
    let brd = if l.kind == ARPHRD_LOOPBACK {
        [0u8; 6]
    } else {
        [0xff; 6]
    };
    m.attr(IFLA_BROADCAST, &brd);
    let s = &l.stats;
    // struct rtnl_link_stats64 (25 counters) and rtnl_link_stats
    // (24): rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors,
    // tx_errors, rx_dropped, the rest zero.
    let firsts = [
        s.rx_packets,
        s.tx_packets,
        s.rx_bytes,
        s.tx_bytes,
        0,
        0,
        s.rx_dropped,
    ];
    let mut st64 = Vec::with_capacity(200);
    let mut st32 = Vec::with_capacity(96);
    for i in 0..25 {
        let v = firsts.get(i).copied().unwrap_or(0);
        st64.extend_from_slice(&v.to_ne_bytes());
        if i < 24 {
            st32.extend_from_slice(&(v as u32).to_ne_bytes());
        }
    }
    m.attr(IFLA_STATS64, &st64);
    m.attr(IFLA_STATS, &st32);
    let x = m.nest(IFLA_XDP);
    m.u8(IFLA_XDP_ATTACHED, 0);
    m.end_nest(x);
    // The sandbox's links have been up: their qdisc is set up (Linux
    // shows "noop" only for a link never brought up).
    m.str(IFLA_QDISC, "noqueue");
    // struct rtnl_link_ifmap: mem_start, mem_end, base_addr, irq,
    // dma, port, padding.
    m.attr(IFLA_MAP, &[0u8; 32]);
    m.finish()
}

impl Cx<'_> {
    fn link(&self, l: &LinkInfo, ty: u16, flags: u16, change: u32) -> Vec<u8> {
        link_msg(l, ty, flags, self.seq, self.pid, change)
    }

    /// IPv6's view of a link (`inet6_fill_ifinfo`), what a GETLINK dump
    /// for AF_INET6 lists: the name, address, MTU, operational state and
    /// IFLA_PROTINFO with the interface's IPv6 flags and address
    /// generation mode.
    fn link6(&self, l: &LinkInfo) -> Vec<u8> {
        let mut m = MsgBuf::new(RTM_NEWLINK, NLM_F_MULTI, self.seq, self.pid);
        let mut hdr = [0u8; IFINFOMSG];
        hdr[0] = libc::AF_INET6 as u8;
        hdr[2..4].copy_from_slice(&l.kind.to_ne_bytes());
        hdr[4..8].copy_from_slice(&(l.index as i32).to_ne_bytes());
        hdr[8..12].copy_from_slice(&l.flags.to_ne_bytes());
        m.raw(&hdr);
        m.str(IFLA_IFNAME, &l.name);
        m.attr(IFLA_ADDRESS, &l.mac);
        m.u32(IFLA_MTU, l.mtu);
        m.u8(IFLA_OPERSTATE, operstate(l));
        let p = m.nest(IFLA_PROTINFO);
        // IFLA_INET6_FLAGS: IF_READY; IFLA_INET6_ADDR_GEN_MODE: EUI64.
        m.u32(1, 0x8000_0000);
        m.u8(8, 0);
        m.end_nest(p);
        m.finish()
    }

    /// The link a GETLINK, SETLINK or DELLINK names: by index, else by
    /// IFLA_IFNAME or IFLA_ALT_IFNAME; EINVAL when it names none, ENODEV
    /// when there is no such link.
    fn find_link(&self, payload: &[u8]) -> Result<LinkInfo, Errno> {
        if payload.len() < IFINFOMSG {
            return Err(Errno::EINVAL);
        }
        let index = i32::from_ne_bytes(payload[4..8].try_into().unwrap());
        let a = attrs(payload, IFINFOMSG);
        let links = self.stack.links();
        if index > 0 {
            return links
                .into_iter()
                .find(|l| l.index == index as u32)
                .ok_or(Errno::ENODEV);
        }
        let name = find(&a, IFLA_IFNAME)
            .or_else(|| find(&a, IFLA_ALT_IFNAME))
            .ok_or(Errno::EINVAL)?;
        let name = get_str(name);
        links
            .into_iter()
            .find(|l| l.name == name)
            .ok_or(Errno::ENODEV)
    }

    /// RTM_NEWLINK on an existing link and RTM_SETLINK (`do_setlink`):
    /// the flags (only IFF_UP changes in the sandbox), and attributes
    /// that keep the link as it is.
    fn setlink(
        &self,
        t: &Task,
        h: NlHdr,
        payload: &[u8],
        notify: &mut Vec<Notification>,
    ) -> Result<(), Errno> {
        let l = match self.find_link(payload) {
            Ok(l) => l,
            Err(Errno::ENODEV | Errno::EINVAL) if h.ty == RTM_NEWLINK => {
                if h.flags & NLM_F_CREATE == 0 {
                    return Err(Errno::ENODEV);
                }
                t.kernel
                    .note_unsupported("netlink RTM_NEWLINK creating a link", "EOPNOTSUPP");
                return Err(Errno::EOPNOTSUPP);
            }
            Err(e) => return Err(e),
        };
        if h.ty == RTM_NEWLINK && h.flags & NLM_F_EXCL != 0 {
            return Err(Errno::EEXIST);
        }
        let a = attrs(payload, IFINFOMSG);
        for &(ty, v) in &a {
            let same = match ty {
                IFLA_IFNAME => get_str(v) == l.name,
                IFLA_MTU => get_u32(v) == Some(l.mtu),
                IFLA_TXQLEN => get_u32(v) == Some(TXQLEN),
                IFLA_GROUP => get_u32(v) == Some(0),
                IFLA_ADDRESS => v == l.mac,
                IFLA_EXT_MASK => true,
                _ => false,
            };
            if !same {
                t.kernel.note_unsupported(
                    &format!("netlink setting link attribute {ty}"),
                    "EOPNOTSUPP",
                );
                return Err(Errno::EOPNOTSUPP);
            }
        }
        let ifi_flags = u32::from_ne_bytes(payload[8..12].try_into().unwrap());
        let change = u32::from_ne_bytes(payload[12..16].try_into().unwrap());
        if ifi_flags == 0 && change == 0 {
            return Ok(());
        }
        let new = if change != 0 {
            (ifi_flags & change) | (l.flags & !change)
        } else {
            ifi_flags
        };
        // The bits dev_change_flags takes from the caller.
        const SETTABLE: u32 =
            IFF_UP | 0x4 | 0x20 | 0x80 | 0x100 | 0x200 | 0x1000 | 0x2000 | 0x4000 | 0x8000;
        let diff = (new ^ l.flags) & SETTABLE;
        if diff & !IFF_UP != 0 {
            t.kernel.note_unsupported(
                &format!("netlink changing link flags {:#x}", diff & !IFF_UP),
                "EOPNOTSUPP",
            );
            return Err(Errno::EOPNOTSUPP);
        }
        if diff & IFF_UP != 0 {
            self.stack.set_link_flags(l.index, new)?;
            if let Some(nl) = self.stack.links().iter().find(|x| x.index == l.index) {
                let cx = Cx {
                    seq: 0,
                    pid: 0,
                    ..*self
                };
                notify.push((RTNLGRP_LINK, cx.link(nl, RTM_NEWLINK, 0, IFF_UP)));
            }
        }
        Ok(())
    }

    /// `inet_fill_ifaddr` and `inet6_fill_ifaddr`.
    fn addr(&self, a: &AddrInfo, link: Option<&LinkInfo>, ty: u16, flags: u16) -> Vec<u8> {
        let mut m = MsgBuf::new(ty, flags, self.seq, self.pid);
        let family = if a.addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let mut hdr = [0u8; IFADDRMSG];
        hdr[0] = family as u8;
        hdr[1] = a.prefix;
        hdr[2] = IFA_F_PERMANENT as u8;
        hdr[3] = addr_scope(a.addr);
        hdr[4..8].copy_from_slice(&a.index.to_ne_bytes());
        m.raw(&hdr);
        let mut cache = Vec::with_capacity(16);
        cache.extend_from_slice(&u32::MAX.to_ne_bytes());
        cache.extend_from_slice(&u32::MAX.to_ne_bytes());
        cache.extend_from_slice(&self.created.to_ne_bytes());
        cache.extend_from_slice(&self.created.to_ne_bytes());
        if a.addr.is_ipv4() {
            m.ip(IFA_ADDRESS, a.addr);
            m.ip(IFA_LOCAL, a.addr);
            if let Some(b) = broadcast_of(a, link) {
                m.ip(IFA_BROADCAST, IpAddr::V4(b));
            }
            m.str(IFA_LABEL, link.map_or("", |l| &l.name));
            m.u32(IFA_FLAGS, IFA_F_PERMANENT);
            m.attr(IFA_CACHEINFO, &cache);
        } else {
            m.ip(IFA_ADDRESS, a.addr);
            m.attr(IFA_CACHEINFO, &cache);
            m.u32(IFA_FLAGS, IFA_F_PERMANENT);
        }
        m.finish()
    }

    /// RTM_GETADDR's dump: AF_INET's addresses then AF_INET6's (all of
    /// them for AF_UNSPEC), link by link; with strict checking, only
    /// those of the link `ifa_index` names.
    fn addr_dump(&self, family: i32, payload: &[u8]) -> Vec<Vec<u8>> {
        let links = self.stack.links();
        let addrs = self.stack.addrs();
        let index = if self.strict && payload.len() >= IFADDRMSG {
            u32::from_ne_bytes(payload[4..8].try_into().unwrap())
        } else {
            0
        };
        let flags = NLM_F_MULTI | if index != 0 { NLM_F_DUMP_FILTERED } else { 0 };
        let mut out = Vec::new();
        for v4 in [true, false] {
            let fam = if v4 { libc::AF_INET } else { libc::AF_INET6 };
            if (family == libc::AF_INET || family == libc::AF_INET6) && family != fam {
                continue;
            }
            for l in &links {
                if index != 0 && l.index != index {
                    continue;
                }
                let mut mine: Vec<&AddrInfo> = addrs
                    .iter()
                    .filter(|a| a.index == l.index && a.addr.is_ipv4() == v4)
                    .collect();
                if !v4 {
                    // IPv6's list: by scope (global, host, link), the newest
                    // first within one.
                    mine.reverse();
                    mine.sort_by_key(|a| match addr_scope(a.addr) {
                        RT_SCOPE_HOST => 1,
                        RT_SCOPE_LINK => 2,
                        _ => 0,
                    });
                }
                for a in mine {
                    out.push(self.addr(a, Some(l), RTM_NEWADDR, flags));
                }
            }
        }
        out
    }

    /// The address a NEWADDR or DELADDR names (IFA_LOCAL, else
    /// IFA_ADDRESS).
    fn req_addr(family: i32, a: &[(u16, &[u8])]) -> Option<IpAddr> {
        let v = find(a, IFA_LOCAL).or_else(|| find(a, IFA_ADDRESS))?;
        match family {
            libc::AF_INET if v.len() >= 4 => {
                Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3])))
            }
            libc::AF_INET6 if v.len() >= 16 => Some(IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(&v[..16]).unwrap(),
            ))),
            _ => None,
        }
    }

    /// RTM_NEWADDR (`inet_rtm_newaddr`, `inet6_rtm_newaddr`).
    fn newaddr(
        &self,
        t: &Task,
        h: NlHdr,
        family: i32,
        payload: &[u8],
        notify: &mut Vec<Notification>,
        extack: &mut Option<&'static str>,
    ) -> Result<(), Errno> {
        let max = match family {
            libc::AF_INET => 32,
            libc::AF_INET6 => 128,
            _ => return Err(Errno::EOPNOTSUPP),
        };
        if payload.len() < IFADDRMSG {
            return Err(Errno::EINVAL);
        }
        let prefix = payload[1];
        let index = u32::from_ne_bytes(payload[4..8].try_into().unwrap());
        let a = attrs(payload, IFADDRMSG);
        let addr = Self::req_addr(family, &a).ok_or(Errno::EINVAL)?;
        if prefix > max {
            return Err(Errno::EINVAL);
        }
        let links = self.stack.links();
        let link = links
            .iter()
            .find(|l| l.index == index)
            .ok_or(Errno::ENODEV)?;
        if let Some(label) = find(&a, IFA_LABEL) {
            if get_str(label) != link.name {
                t.kernel
                    .note_unsupported("netlink address labels (aliases)", "EOPNOTSUPP");
                return Err(Errno::EOPNOTSUPP);
            }
        }
        let info = AddrInfo {
            index,
            addr,
            prefix,
        };
        match self.stack.add_addr(info) {
            Ok(()) => {}
            Err(Errno::EEXIST) if h.flags & NLM_F_REPLACE != 0 && h.flags & NLM_F_EXCL == 0 => {
                return Ok(())
            }
            Err(Errno::EEXIST) if addr.is_ipv4() => {
                *extack = Some("ipv4: Address already assigned");
                return Err(Errno::EEXIST);
            }
            Err(e) => return Err(e),
        }
        let group = if addr.is_ipv4() {
            RTNLGRP_IPV4_IFADDR
        } else {
            RTNLGRP_IPV6_IFADDR
        };
        notify.push((group, self.addr(&info, Some(link), RTM_NEWADDR, 0)));
        Ok(())
    }

    /// RTM_DELADDR (`inet_rtm_deladdr`: with no address named, the link's
    /// first IPv4 address goes; `inet6_rtm_deladdr`).
    fn deladdr(
        &self,
        family: i32,
        payload: &[u8],
        notify: &mut Vec<Notification>,
        extack: &mut Option<&'static str>,
    ) -> Result<(), Errno> {
        if family != libc::AF_INET && family != libc::AF_INET6 {
            return Err(Errno::EOPNOTSUPP);
        }
        if payload.len() < IFADDRMSG {
            return Err(Errno::EINVAL);
        }
        let prefix = payload[1];
        let index = u32::from_ne_bytes(payload[4..8].try_into().unwrap());
        let a = attrs(payload, IFADDRMSG);
        let links = self.stack.links();
        let link = links
            .iter()
            .find(|l| l.index == index)
            .ok_or(Errno::ENODEV)?;
        let named = Self::req_addr(family, &a);
        let v4 = family == libc::AF_INET;
        let target = match named {
            Some(x) => self.stack.addrs().into_iter().find(|y| {
                // IPv4 checks the prefix length only when IFA_ADDRESS
                // is given; IPv6 always.
                let check_prefix = !v4 || find(&a, IFA_ADDRESS).is_some();
                y.index == index && y.addr == x && (!check_prefix || y.prefix == prefix)
            }),
            None if v4 => self
                .stack
                .addrs()
                .into_iter()
                .find(|y| y.index == index && y.addr.is_ipv4()),
            None => return Err(Errno::EINVAL),
        }
        .ok_or_else(|| {
            if v4 {
                *extack = Some("ipv4: Address not found");
            }
            Errno::EADDRNOTAVAIL
        })?;
        self.stack
            .del_addr(index, target.addr, Some(target.prefix))?;
        let group = if v4 {
            RTNLGRP_IPV4_IFADDR
        } else {
            RTNLGRP_IPV6_IFADDR
        };
        notify.push((group, self.addr(&target, Some(link), RTM_DELADDR, 0)));
        Ok(())
    }

    /// RTM_GETROUTE's dump: IPv4's main then local table, then IPv6's;
    /// with strict checking, filtered by RTA_TABLE and RTA_OIF.
    fn route_dump(&self, family: i32, payload: &[u8]) -> Vec<Vec<u8>> {
        let (mut table, mut oif) = (None, None);
        if self.strict && payload.len() >= RTMSG {
            let a = attrs(payload, RTMSG);
            table = find(&a, RTA_TABLE).and_then(get_u32);
            if table.is_none() && payload[4] != 0 {
                table = Some(payload[4] as u32);
            }
            oif = find(&a, RTA_OIF).and_then(get_u32);
        }
        // RT_TABLE_UNSPEC asks for every table.
        let table = table.filter(|&t| t != 0);
        let filtered = table.is_some() || oif.is_some();
        let flags = NLM_F_MULTI | if filtered { NLM_F_DUMP_FILTERED } else { 0 };
        fib(self.stack)
            .iter()
            .filter(|r| match family {
                libc::AF_INET => r.dst.is_ipv4(),
                libc::AF_INET6 => !r.dst.is_ipv4(),
                _ => true,
            })
            .filter(|r| table.is_none_or(|t| t == r.table as u32))
            .filter(|r| oif.is_none_or(|o| o == r.oif))
            .map(|r| self.route(r, flags))
            .collect()
    }

    /// `fib_dump_info` and `rt6_fill_node`.
    fn route(&self, r: &Route, flags: u16) -> Vec<u8> {
        let mut m = MsgBuf::new(RTM_NEWROUTE, flags, self.seq, self.pid);
        let v4 = r.dst.is_ipv4();
        let hdr = [
            if v4 { libc::AF_INET } else { libc::AF_INET6 } as u8,
            r.dst_len,
            0,
            0,
            r.table,
            r.proto,
            r.scope,
            r.rtype,
            0,
            0,
            0,
            0,
        ];
        m.raw(&hdr);
        m.u32(RTA_TABLE, r.table as u32);
        if r.dst_len > 0 {
            m.ip(RTA_DST, r.dst);
        }
        if v4 {
            if r.priority != 0 {
                m.u32(RTA_PRIORITY, r.priority);
            }
            if let Some(s) = r.prefsrc {
                m.ip(RTA_PREFSRC, s);
            }
            if let Some(g) = r.gateway {
                m.ip(RTA_GATEWAY, g);
            }
            m.u32(RTA_OIF, r.oif);
        } else {
            if let Some(g) = r.gateway {
                m.ip(RTA_GATEWAY, g);
            }
            m.u32(RTA_OIF, r.oif);
            m.u32(RTA_PRIORITY, r.priority);
            // struct rta_cacheinfo: no expiry, no error.
            m.attr(RTA_CACHEINFO, &[0u8; 32]);
            m.u8(RTA_PREF, 0);
        }
        m.finish()
    }
}

/// A route of the stack's tables, as netlink and /proc/net list them.
#[derive(Clone, Debug)]
pub struct Route {
    pub dst: IpAddr,
    pub dst_len: u8,
    pub table: u8,
    pub proto: u8,
    pub scope: u8,
    pub rtype: u8,
    pub prefsrc: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
    pub oif: u32,
    pub priority: u32,
}

/// The routes Linux makes for the stack's addresses (`fib_add_ifaddr`,
/// `addrconf`), on links that are up, and the stack's gateway routes:
/// IPv4's main table, IPv4's local table, IPv6's main, IPv6's local, each
/// in address order.
pub fn fib(stack: &NetStack) -> Vec<Route> {
    let links = stack.links();
    let up = |i: u32| links.iter().find(|l| l.index == i && l.flags & IFF_UP != 0);
    let mut v4_main = Vec::new();
    let mut v4_local = Vec::new();
    let mut v6_main = Vec::new();
    let mut v6_local = Vec::new();
    let base = |dst, dst_len, table, scope, rtype, a: &AddrInfo| Route {
        dst,
        dst_len,
        table,
        proto: RTPROT_KERNEL,
        scope,
        rtype,
        prefsrc: None,
        gateway: None,
        oif: a.index,
        priority: 0,
    };
    for a in stack.addrs() {
        let Some(l) = up(a.index) else {
            // A loopback link that is down keeps its IPv4 local routes
            // (Linux's fib_disable_ip flushes the others).
            let lo_down = links
                .iter()
                .any(|l| l.index == a.index && l.flags & IFF_LOOPBACK != 0);
            if lo_down && a.addr.is_ipv4() {
                let net = mask_addr(a.addr, a.prefix);
                v4_local.push(Route {
                    prefsrc: Some(a.addr),
                    ..base(a.addr, 32, RT_TABLE_LOCAL, RT_SCOPE_HOST, RTN_LOCAL, &a)
                });
                if a.prefix < 32 {
                    v4_local.push(Route {
                        prefsrc: Some(a.addr),
                        ..base(net, a.prefix, RT_TABLE_LOCAL, RT_SCOPE_HOST, RTN_LOCAL, &a)
                    });
                }
            }
            continue;
        };
        let lo = l.flags & IFF_LOOPBACK != 0;
        let net = mask_addr(a.addr, a.prefix);
        match a.addr {
            IpAddr::V4(_) => {
                let src = Some(a.addr);
                v4_local.push(Route {
                    prefsrc: src,
                    ..base(a.addr, 32, RT_TABLE_LOCAL, RT_SCOPE_HOST, RTN_LOCAL, &a)
                });
                if a.prefix < 32 {
                    let r = if lo {
                        base(net, a.prefix, RT_TABLE_LOCAL, RT_SCOPE_HOST, RTN_LOCAL, &a)
                    } else {
                        base(net, a.prefix, RT_TABLE_MAIN, RT_SCOPE_LINK, RTN_UNICAST, &a)
                    };
                    let r = Route { prefsrc: src, ..r };
                    if lo {
                        v4_local.push(r);
                    } else {
                        v4_main.push(r);
                    }
                }
                if a.prefix < 31 {
                    let host = u32::MAX >> a.prefix;
                    let IpAddr::V4(n) = net else { unreachable!() };
                    let b = IpAddr::V4(Ipv4Addr::from(u32::from(n) | host));
                    v4_local.push(Route {
                        prefsrc: src,
                        ..base(b, 32, RT_TABLE_LOCAL, RT_SCOPE_LINK, RTN_BROADCAST, &a)
                    });
                }
            }
            IpAddr::V6(_) => {
                if a.prefix < 128 {
                    v6_main.push(Route {
                        priority: 256,
                        ..base(
                            net,
                            a.prefix,
                            RT_TABLE_MAIN,
                            RT_SCOPE_UNIVERSE,
                            RTN_UNICAST,
                            &a,
                        )
                    });
                }
                v6_local.push(base(
                    a.addr,
                    128,
                    RT_TABLE_LOCAL,
                    RT_SCOPE_UNIVERSE,
                    RTN_LOCAL,
                    &a,
                ));
            }
        }
    }
    for r in stack.routes() {
        let Some(g) = r.gateway else {
            continue;
        };
        if up(r.index).is_none() {
            continue;
        }
        let route = Route {
            dst: r.dst,
            dst_len: r.prefix,
            table: RT_TABLE_MAIN,
            proto: RTPROT_BOOT,
            scope: RT_SCOPE_UNIVERSE,
            rtype: RTN_UNICAST,
            prefsrc: None,
            gateway: Some(g),
            oif: r.index,
            priority: if r.dst.is_ipv4() { 0 } else { 1024 },
        };
        if r.dst.is_ipv4() {
            v4_main.push(route);
        } else {
            v6_main.push(route);
        }
    }
    let key = |r: &Route| (r.dst, r.dst_len);
    for v in [&mut v4_main, &mut v4_local, &mut v6_main, &mut v6_local] {
        v.sort_by_key(key);
    }
    v4_main
        .into_iter()
        .chain(v4_local)
        .chain(v6_main)
        .chain(v6_local)
        .collect()
}
