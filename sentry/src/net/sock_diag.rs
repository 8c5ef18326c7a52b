//! NETLINK_SOCK_DIAG for the stack's TCP and UDP sockets: the
//! `inet_diag` requests `ss` makes (`SOCK_DIAG_BY_FAMILY` with a
//! `struct inet_diag_req_v2`), answered from the same listing as
//! /proc/net/tcp and /proc/net/udp.
//!
//! A dump lists every socket of the family and protocol whose state is
//! in the request's state mask; without NLM_F_DUMP the request names one
//! socket by its addresses and ports (`inet_diag_find_one_icsk`).
//! Families other than AF_INET and AF_INET6 (AF_UNIX's `unix_diag`, for
//! one) are not the stack's: ENOENT, which `ss` takes as "read /proc"
//! (Linux answers so for a family whose diag module is not loaded). A
//! request's bytecode filter (INET_DIAG_REQ_BYTECODE) is not run: every
//! socket the masks select is sent, and `ss` filters them again itself.
//! Of the extensions a request can ask for, none is filled: the stack
//! keeps no memory counts, and TCP_INFO is the socket's own to give.

use std::net::IpAddr;

use super::rtnetlink::{Answer, MsgBuf, NlHdr, NLMSG_HDRLEN, NLM_F_MATCH, NLM_F_MULTI, NLM_F_ROOT};
use super::{NetStack, Proto, SocketInfo};
use crate::errno::Errno;
use crate::kernel::task::Task;

/// `SOCK_DIAG_BY_FAMILY`.
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `SOCK_DESTROY`.
const SOCK_DESTROY: u16 = 21;
/// `sizeof(struct inet_diag_req_v2)`.
const REQ_V2_LEN: usize = 56;
/// `INET_DIAG_SKV6ONLY`.
const INET_DIAG_SKV6ONLY: u16 = 11;

/// The `struct inet_diag_sockid` of a request.
struct SockId {
    sport: u16,
    dport: u16,
    src: [u8; 16],
    dst: [u8; 16],
}

/// A parsed `struct inet_diag_req_v2`.
struct Request {
    family: u8,
    protocol: u8,
    ext: u8,
    states: u32,
    id: SockId,
}

fn parse(payload: &[u8]) -> Option<Request> {
    if payload.len() < REQ_V2_LEN {
        return None;
    }
    let id = &payload[8..56];
    Some(Request {
        family: payload[0],
        protocol: payload[1],
        ext: payload[2],
        states: u32::from_ne_bytes(payload[4..8].try_into().unwrap()),
        id: SockId {
            sport: u16::from_be_bytes([id[0], id[1]]),
            dport: u16::from_be_bytes([id[2], id[3]]),
            src: id[4..20].try_into().unwrap(),
            dst: id[20..36].try_into().unwrap(),
        },
    })
}

/// An address as `inet_diag_sockid` holds it: IPv4 in the first four
/// bytes, IPv6 in all sixteen (a v4 address of an IPv6 socket mapped).
fn addr_bytes(a: IpAddr, family: i32) -> [u8; 16] {
    let mut b = [0u8; 16];
    match (a, family) {
        (IpAddr::V4(v), libc::AF_INET) => b[..4].copy_from_slice(&v.octets()),
        (IpAddr::V4(v), _) => b.copy_from_slice(&v.to_ipv6_mapped().octets()),
        (IpAddr::V6(v), _) => b.copy_from_slice(&v.octets()),
    }
    b
}

/// Whether `s` is the socket a non-dump request names.
fn names(r: &Request, s: &SocketInfo) -> bool {
    let fam = s.family;
    let len = if fam == libc::AF_INET { 4 } else { 16 };
    r.id.sport == s.local.1
        && r.id.dport == s.remote.1
        && r.id.src[..len] == addr_bytes(s.local.0, fam)[..len]
        && r.id.dst[..len] == addr_bytes(s.remote.0, fam)[..len]
}

/// One `struct inet_diag_msg` and its attributes.
fn message(s: &SocketInfo, seq: u32, portid: u32, flags: u16) -> Vec<u8> {
    let mut m = MsgBuf::new(SOCK_DIAG_BY_FAMILY, flags, seq, portid);
    let mut b = Vec::with_capacity(72);
    b.push(s.family as u8);
    b.push(s.state);
    b.push(0); // timer
    b.push(0); // retransmits
    b.extend_from_slice(&s.local.1.to_be_bytes());
    b.extend_from_slice(&s.remote.1.to_be_bytes());
    b.extend_from_slice(&addr_bytes(s.local.0, s.family));
    b.extend_from_slice(&addr_bytes(s.remote.0, s.family));
    b.extend_from_slice(&0u32.to_ne_bytes()); // bound device
                                              // The cookie: the inode stands in for the socket's address.
    b.extend_from_slice(&(s.inode as u32).to_ne_bytes());
    b.extend_from_slice(&((s.inode >> 32) as u32).to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes()); // expires
    b.extend_from_slice(&(s.rx_queue as u32).to_ne_bytes());
    b.extend_from_slice(&(s.tx_queue as u32).to_ne_bytes());
    b.extend_from_slice(&s.uid.to_ne_bytes());
    b.extend_from_slice(&(s.inode as u32).to_ne_bytes());
    m.raw(&b);
    // Linux tells an IPv6 socket that is listening or closed whether it
    // is v6-only.
    if s.family == libc::AF_INET6 && (s.state == 10 || s.state == 7) {
        m.u8(INET_DIAG_SKV6ONLY, s.v6only as u8);
    }
    m.finish()
}

/// One NETLINK_SOCK_DIAG request; `msg` is the whole message.
pub fn handle(t: &Task, stack: &NetStack, msg: &[u8], portid: u32) -> Result<Answer, Errno> {
    let h = NlHdr::parse(msg).ok_or(Errno::EINVAL)?;
    let payload = &msg[NLMSG_HDRLEN..h.len as usize];
    match h.ty {
        SOCK_DIAG_BY_FAMILY => {}
        SOCK_DESTROY => {
            t.kernel
                .note_unsupported("sock_diag SOCK_DESTROY", "EOPNOTSUPP");
            return Err(Errno::EOPNOTSUPP);
        }
        // The old TCPDIAG_GETSOCK and DCCPDIAG_GETSOCK requests.
        18 | 19 => {
            t.kernel.note_unsupported(
                "sock_diag's old inet_diag_req (TCPDIAG_GETSOCK)",
                "EOPNOTSUPP",
            );
            return Err(Errno::EOPNOTSUPP);
        }
        _ => return Err(Errno::EINVAL),
    }
    // The family byte comes first in every family's request.
    let family = *payload.first().ok_or(Errno::EINVAL)? as i32;
    if family != libc::AF_INET && family != libc::AF_INET6 {
        return Err(Errno::ENOENT);
    }
    let r = parse(payload).ok_or(Errno::EINVAL)?;
    let proto = match r.protocol as i32 {
        libc::IPPROTO_TCP => Proto::Tcp,
        libc::IPPROTO_UDP => Proto::Udp,
        _ => return Err(Errno::ENOENT),
    };
    if r.ext != 0 {
        tracing::debug!("sock_diag: extensions {:#x} asked for, none filled", r.ext);
    }
    let socks: Vec<SocketInfo> = stack
        .sockets(proto)
        .into_iter()
        .filter(|s| s.family == r.family as i32)
        .collect();
    let dump = NLM_F_ROOT | NLM_F_MATCH;
    if h.flags & dump != 0 {
        let msgs = socks
            .iter()
            .filter(|s| r.states & (1 << s.state) != 0)
            .map(|s| message(s, h.seq, portid, NLM_F_MULTI))
            .collect();
        return Ok(Answer::Dump(msgs));
    }
    let s = socks.iter().find(|s| names(&r, s)).ok_or(Errno::ENOENT)?;
    Ok(Answer::Done(vec![message(s, h.seq, portid, 0)]))
}
