//! AF_NETLINK sockets, protocols NETLINK_ROUTE and NETLINK_SOCK_DIAG: the
//! sandbox's kernel side answers rtnetlink requests from the TCP/IP
//! stack's state (`net/rtnetlink.rs`), and sockets hear of the changes
//! made through it on the multicast groups they joined; sock_diag
//! requests list the stack's sockets (`net/sock_diag.rs`).
//!
//! The shape is Linux's `net/netlink/af_netlink.c`: a socket has a port
//! id (bound explicitly or by autobind: the thread group's id, else a
//! negative number), a receive queue of datagrams each holding one or
//! more messages, and a send is processed by the kernel side within the
//! call (`netlink_rcv_skb`: each message in turn, acked with
//! NLMSG_ERROR when asked or when it failed). A dump is answered in
//! datagrams of at most the size the reader has asked for so far (at
//! least a page), then NLMSG_DONE in a datagram of its own.
//!
//! Other netlink protocols are not the sandbox's: EPROTONOSUPPORT, as
//! Linux answers for a protocol it was built without.

use std::any::Any;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Weak};
use std::time::Instant;

use parking_lot::Mutex;

use super::{
    buf_size, get_int, int_val, Received, RecvArgs, SendArgs, Socket, Timeout, Ucred, RMEM_DEFAULT,
    RMEM_MAX, SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF, WMEM_DEFAULT, WMEM_MAX,
};
use crate::errno::Errno;
use crate::kernel::task::Task;
use crate::kernel::waiter::{WaitQueue, ALL_EVENTS};
use crate::net::rtnetlink::{
    self, align4, Answer, MsgBuf, NlHdr, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_MIN_TYPE,
    NLM_F_ACK, NLM_F_CAPPED, NLM_F_MULTI, NLM_F_REQUEST,
};
use crate::vfs::inode::Inode;

pub const NETLINK_ROUTE: i32 = 0;
pub const NETLINK_SOCK_DIAG: i32 = 4;
/// Linux's MAX_LINKS: protocol numbers.
const MAX_LINKS: i32 = 32;
const SOL_NETLINK: i32 = 270;
const NETLINK_ADD_MEMBERSHIP: i32 = 1;
const NETLINK_DROP_MEMBERSHIP: i32 = 2;
const NETLINK_PKTINFO: i32 = 3;
const NETLINK_BROADCAST_ERROR: i32 = 4;
const NETLINK_NO_ENOBUFS: i32 = 5;
const NETLINK_LISTEN_ALL_NSID: i32 = 8;
const NETLINK_LIST_MEMBERSHIPS: i32 = 9;
const NETLINK_CAP_ACK: i32 = 10;
const NETLINK_EXT_ACK: i32 = 11;
const NETLINK_GET_STRICT_CHK: i32 = 12;
/// RTNLGRP_MAX of Linux 6: NETLINK_ROUTE's groups.
const RTNLGRP_MAX: u32 = 41;
/// `sizeof(struct sockaddr_nl)`.
const SOCKADDR_NL: usize = 12;
/// SKB_WITH_OVERHEAD(PAGE_SIZE): the smallest datagram of a dump.
const NLMSG_GOODSIZE: usize = 4096 - 320;
/// SKB_WITH_OVERHEAD(32768): the largest.
const DUMP_MAX: usize = 32768 - 320;
const CAP_NET_ADMIN: u32 = 12;
/// An ack's flag: TLVs follow (NLMSGERR_ATTR_*).
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
const SO_RCVTIMEO_NEW: i32 = 66;
const SO_SNDTIMEO_NEW: i32 = 67;

/// A datagram in a receive queue.
struct Datagram {
    data: Vec<u8>,
    /// The sender's port (0: the kernel) and the group it was sent to.
    from: u32,
    group: u32,
}

struct State {
    /// The port id; 0 until bound.
    portid: u32,
    bound: bool,
    /// Joined multicast groups (1-based).
    groups: BTreeSet<u32>,
    /// connect's destination.
    dst_portid: u32,
    dst_group: u32,
    rq: VecDeque<Datagram>,
    rq_bytes: usize,
    err: Option<Errno>,
    rcvbuf: u32,
    sndbuf: u32,
    rcvtimeo: Timeout,
    sndtimeo: Timeout,
    passcred: bool,
    /// NETLINK_* flag options.
    cap_ack: bool,
    ext_ack: bool,
    strict: bool,
    no_enobufs: bool,
    broadcast_error: bool,
    /// The largest buffer a receive has passed (sizes dump datagrams).
    max_recvmsg_len: usize,
}

/// One AF_NETLINK socket.
pub struct NetlinkSocket {
    ty: i32,
    protocol: i32,
    inode: Arc<Inode>,
    queue: Arc<WaitQueue>,
    st: Mutex<State>,
    me: Weak<NetlinkSocket>,
}

/// Bound sockets by (protocol, port id): the sandbox's netlink port
/// table (a sentry runs one sandbox).
static PORTS: LazyLock<Mutex<PortTable>> = LazyLock::new(|| Mutex::new(HashMap::new()));

type PortTable = HashMap<(i32, u32), Weak<NetlinkSocket>>;

/// The address bytes of a `struct sockaddr_nl`.
fn sockaddr_nl(pid: u32, groups: u32) -> Vec<u8> {
    let mut v = vec![0u8; SOCKADDR_NL];
    v[..2].copy_from_slice(&(libc::AF_NETLINK as u16).to_ne_bytes());
    v[4..8].copy_from_slice(&pid.to_ne_bytes());
    v[8..12].copy_from_slice(&groups.to_ne_bytes());
    v
}

/// A sockaddr_nl's (pid, groups): EINVAL when short or of another family.
fn parse_addr(addr: &[u8]) -> Result<(u32, u32), Errno> {
    if addr.len() < SOCKADDR_NL || u16::from_ne_bytes([addr[0], addr[1]]) != libc::AF_NETLINK as u16
    {
        return Err(Errno::EINVAL);
    }
    Ok((
        u32::from_ne_bytes(addr[4..8].try_into().unwrap()),
        u32::from_ne_bytes(addr[8..12].try_into().unwrap()),
    ))
}

/// `netlink_group_mask`: a group's bit in a 32-bit mask (0 past 32).
fn group_mask(group: u32) -> u32 {
    if group == 0 || group > 32 {
        0
    } else {
        1 << (group - 1)
    }
}

/// Sends `msg` from the kernel to every NETLINK_ROUTE socket in `group`
/// (`rtnl_notify`).
pub fn broadcast(group: u32, msg: Vec<u8>) {
    let socks: Vec<Arc<NetlinkSocket>> = PORTS
        .lock()
        .iter()
        .filter(|(k, _)| k.0 == NETLINK_ROUTE)
        .filter_map(|(_, w)| w.upgrade())
        .collect();
    for s in socks {
        if s.st.lock().groups.contains(&group) {
            s.deliver(msg.clone(), 0, group);
        }
    }
}

impl NetlinkSocket {
    /// `socket(AF_NETLINK, ty, protocol)` (`netlink_create`).
    pub fn create(t: &mut Task, ty: i32, protocol: i32) -> Result<Arc<dyn Socket>, Errno> {
        if ty != libc::SOCK_RAW && ty != libc::SOCK_DGRAM {
            return Err(Errno::ESOCKTNOSUPPORT);
        }
        if !(0..MAX_LINKS).contains(&protocol) {
            return Err(Errno::EPROTONOSUPPORT);
        }
        if protocol != NETLINK_ROUTE && protocol != NETLINK_SOCK_DIAG {
            t.kernel.note_unsupported(
                &format!("netlink protocol {}", protocol_name(protocol)),
                "EPROTONOSUPPORT",
            );
            return Err(Errno::EPROTONOSUPPORT);
        }
        let inode = t
            .kernel
            .sockets
            .new_inode(&t.kernel.vfs, t.creds.fsuid, t.creds.fsgid);
        Ok(Arc::new_cyclic(|me| NetlinkSocket {
            ty,
            protocol,
            inode,
            queue: Arc::new(WaitQueue::default()),
            st: Mutex::new(State {
                portid: 0,
                bound: false,
                groups: BTreeSet::new(),
                dst_portid: 0,
                dst_group: 0,
                rq: VecDeque::new(),
                rq_bytes: 0,
                err: None,
                rcvbuf: RMEM_DEFAULT,
                sndbuf: WMEM_DEFAULT,
                rcvtimeo: Timeout(None),
                sndtimeo: Timeout(None),
                passcred: false,
                cap_ack: false,
                ext_ack: false,
                strict: false,
                no_enobufs: false,
                broadcast_error: false,
                max_recvmsg_len: 0,
            }),
            me: me.clone(),
        }))
    }

    /// The protocol's multicast groups. sock_diag's (notices of sockets
    /// destroyed) are not made: a socket cannot join them.
    fn groups_max(&self) -> u32 {
        if self.protocol == NETLINK_ROUTE {
            RTNLGRP_MAX
        } else {
            0
        }
    }

    /// `netlink_insert` at `portid`: EADDRINUSE when taken.
    fn insert(&self, st: &mut State, portid: u32) -> Result<(), Errno> {
        let mut ports = PORTS.lock();
        let key = (self.protocol, portid);
        if ports.get(&key).is_some_and(|w| w.strong_count() > 0) {
            return Err(Errno::EADDRINUSE);
        }
        ports.insert(key, self.me.clone());
        st.portid = portid;
        st.bound = true;
        Ok(())
    }

    /// `netlink_autobind`: the thread group's id, else a negative port.
    fn autobind(&self, t: &Task, st: &mut State) -> Result<(), Errno> {
        if st.bound {
            return Ok(());
        }
        if self.insert(st, t.tg.tgid as u32).is_ok() {
            return Ok(());
        }
        let mut b = [0u8; 4];
        let _ = crate::hostcall::fill_random(&mut b);
        // [S32_MIN, -4097], as Linux's rover starts.
        let span = (-4096i64 - i32::MIN as i64) as u64;
        let mut p = (i32::MIN as i64 + (u32::from_ne_bytes(b) as u64 % span) as i64) as i32;
        loop {
            if self.insert(st, p as u32).is_ok() {
                return Ok(());
            }
            p = if p == i32::MIN { -4097 } else { p - 1 };
        }
    }

    /// Queues a datagram: dropped with ENOBUFS on the socket when the
    /// queue is over its buffer (`netlink_overrun`), unless
    /// NETLINK_NO_ENOBUFS.
    fn deliver(&self, data: Vec<u8>, from: u32, group: u32) {
        let mut st = self.st.lock();
        if st.rq_bytes > st.rcvbuf as usize {
            if !st.no_enobufs {
                st.err = Some(Errno::ENOBUFS);
            }
        } else {
            st.rq_bytes += data.len();
            st.rq.push_back(Datagram { data, from, group });
        }
        drop(st);
        self.queue.notify(ALL_EVENTS);
    }

    /// Queues without the buffer check (a dump's datagrams: Linux stops
    /// filling and resumes as the reader reads; all of them are made at
    /// once here).
    fn deliver_all(&self, dgrams: Vec<Vec<u8>>) {
        let mut st = self.st.lock();
        for data in dgrams {
            st.rq_bytes += data.len();
            st.rq.push_back(Datagram {
                data,
                from: 0,
                group: 0,
            });
        }
        drop(st);
        self.queue.notify(ALL_EVENTS);
    }

    /// `netlink_ack`: NLMSG_ERROR with `err` (0 for an ack) and the
    /// request's header, or the whole request for an error unless
    /// NETLINK_CAP_ACK.
    fn ack(&self, msg: &[u8], h: &NlHdr, portid: u32, err: i32, extack: Option<&str>) -> Vec<u8> {
        let (cap, ext) = {
            let st = self.st.lock();
            (st.cap_ack, st.ext_ack)
        };
        let whole = err != 0 && !cap;
        let text = extack.filter(|_| ext && err != 0);
        let mut flags = if whole { 0 } else { NLM_F_CAPPED };
        if text.is_some() {
            flags |= NLM_F_ACK_TLVS;
        }
        let mut m = MsgBuf::new(NLMSG_ERROR, flags, h.seq, portid);
        let mut body = (err).to_ne_bytes().to_vec();
        if whole {
            body.extend_from_slice(&msg[..h.len as usize]);
        } else {
            body.extend_from_slice(&msg[..NLMSG_HDRLEN]);
        }
        m.raw(&body);
        if let Some(text) = text {
            m.str(NLMSGERR_ATTR_MSG, text);
        }
        m.finish()
    }

    /// The kernel side of a send (`netlink_rcv_skb` with
    /// `rtnetlink_rcv_msg`).
    fn kernel_rcv(&self, t: &Task, data: &[u8], portid: u32) {
        let stack = t.kernel.sockets.net().clone();
        let strict = self.st.lock().strict;
        let mut off = 0;
        let mut notify = Vec::new();
        while data.len() - off >= NLMSG_HDRLEN {
            let msg = &data[off..];
            let h = NlHdr::parse(msg).unwrap();
            if (h.len as usize) < NLMSG_HDRLEN || msg.len() < h.len as usize {
                break;
            }
            let mut err = 0;
            let mut skip_ack = false;
            let mut extack = None;
            if h.flags & NLM_F_REQUEST != 0 && h.ty >= NLMSG_MIN_TYPE {
                let answer = if self.protocol == NETLINK_SOCK_DIAG {
                    crate::net::sock_diag::handle(t, &stack, msg, portid)
                } else {
                    rtnetlink::handle(t, &stack, msg, portid, strict, &mut notify, &mut extack)
                };
                match answer {
                    Ok(Answer::Done(replies)) => {
                        for r in replies {
                            self.deliver(r, 0, 0);
                        }
                    }
                    Ok(Answer::Dump(msgs)) => {
                        self.queue_dump(msgs, &h, portid);
                        skip_ack = true;
                    }
                    Err(e) => err = -e.raw(),
                }
            }
            if !skip_ack && (h.flags & NLM_F_ACK != 0 || err != 0) {
                let a = self.ack(msg, &h, portid, err, extack);
                self.deliver(a, 0, 0);
            }
            for (g, m) in notify.drain(..) {
                broadcast(g, m);
            }
            off += align4(h.len as usize).min(msg.len());
        }
    }

    /// A dump's messages in datagrams, then NLMSG_DONE alone.
    fn queue_dump(&self, msgs: Vec<Vec<u8>>, h: &NlHdr, portid: u32) {
        let limit = {
            let st = self.st.lock();
            st.max_recvmsg_len.clamp(NLMSG_GOODSIZE, DUMP_MAX)
        };
        let mut dgrams = Vec::new();
        let mut cur: Vec<u8> = Vec::new();
        for m in msgs {
            if !cur.is_empty() && cur.len() + m.len() > limit {
                dgrams.push(std::mem::take(&mut cur));
            }
            cur.extend_from_slice(&m);
        }
        if !cur.is_empty() {
            dgrams.push(cur);
        }
        let mut done = MsgBuf::new(NLMSG_DONE, NLM_F_MULTI, h.seq, portid);
        done.raw(&0i32.to_ne_bytes());
        dgrams.push(done.finish());
        self.deliver_all(dgrams);
    }

    /// Whether the caller may send to groups or other ports (Linux: for
    /// NETLINK_ROUTE, only with CAP_NET_ADMIN).
    fn may_send_other(t: &Task) -> bool {
        t.creds.has_cap(CAP_NET_ADMIN)
    }

    fn recv(&self, t: &mut Task, args: RecvArgs<'_>) -> Result<Received, Errno> {
        if args.flags & libc::MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        if args.flags & libc::MSG_ERRQUEUE != 0 {
            return Err(Errno::EAGAIN);
        }
        let room = args.dst.room();
        let (timeo, nonblock) = {
            let mut st = self.st.lock();
            st.max_recvmsg_len = st.max_recvmsg_len.max(room).min(DUMP_MAX);
            (st.rcvtimeo, args.flags & libc::MSG_DONTWAIT != 0)
        };
        let peek = args.flags & libc::MSG_PEEK != 0;
        let take = |st: &mut State| -> Option<Result<Datagram, Errno>> {
            if peek {
                if let Some(d) = st.rq.front() {
                    return Some(Ok(Datagram {
                        data: d.data.clone(),
                        from: d.from,
                        group: d.group,
                    }));
                }
            } else if let Some(d) = st.rq.pop_front() {
                st.rq_bytes -= d.data.len();
                return Some(Ok(d));
            }
            st.err.take().map(Err)
        };
        let first = take(&mut self.st.lock());
        let d = match first {
            Some(r) => r?,
            None => {
                if nonblock || timeo.0 == Some(0) {
                    return Err(Errno::EAGAIN);
                }
                let deadline = timeo.duration().map(|d| {
                    Instant::now()
                        .checked_add(d)
                        .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(1 << 32))
                });
                match t.block_on(&[(&self.queue, ALL_EVENTS)], deadline, |_| {
                    take(&mut self.st.lock())
                }) {
                    Ok(d) => d,
                    Err(Errno::ETIMEDOUT) => return Err(Errno::EAGAIN),
                    Err(Errno::ERESTARTSYS) if timeo.0.is_some() => return Err(Errno::EINTR),
                    Err(e) => return Err(e),
                }
            }
        };
        let n = d.data.len().min(room);
        args.dst.put(&d.data[..n])?;
        let mut r = Received {
            len: n,
            addr: Some(sockaddr_nl(d.from, group_mask(d.group))),
            ..Default::default()
        };
        if n < d.data.len() {
            r.flags |= libc::MSG_TRUNC;
        }
        if args.flags & libc::MSG_TRUNC != 0 {
            r.len = d.data.len();
        }
        if self.st.lock().passcred {
            // The kernel's messages carry its credentials.
            r.creds = Some(Ucred {
                pid: 0,
                uid: 0,
                gid: 0,
            });
            r.had_control = true;
        }
        Ok(r)
    }

    fn send(&self, t: &mut Task, args: SendArgs<'_>) -> Result<usize, Errno> {
        if args.flags & libc::MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let (dst_portid, dst_group) = match &args.addr {
            Some(a) => {
                let (pid, groups) = parse_addr(a)?;
                let group = if groups == 0 {
                    0
                } else {
                    groups.trailing_zeros() + 1
                };
                if (group != 0 || pid != 0) && !Self::may_send_other(t) {
                    return Err(Errno::EPERM);
                }
                (pid, group)
            }
            None => {
                let st = self.st.lock();
                (st.dst_portid, st.dst_group)
            }
        };
        let portid = {
            let mut st = self.st.lock();
            self.autobind(t, &mut st)?;
            st.portid
        };
        let len = args.src.remaining();
        if len > (self.st.lock().sndbuf as usize).saturating_sub(32) {
            return Err(Errno::EMSGSIZE);
        }
        let data = args.src.take(len)?;
        if dst_group != 0 {
            let socks: Vec<Arc<NetlinkSocket>> = PORTS
                .lock()
                .iter()
                .filter(|(k, _)| k.0 == self.protocol && k.1 != portid)
                .filter_map(|(_, w)| w.upgrade())
                .collect();
            for s in socks {
                if s.st.lock().groups.contains(&dst_group) {
                    s.deliver(data.clone(), portid, dst_group);
                }
            }
        }
        if dst_portid == 0 {
            self.kernel_rcv(t, &data, portid);
        } else {
            let other = PORTS
                .lock()
                .get(&(self.protocol, dst_portid))
                .and_then(|w| w.upgrade())
                .ok_or(Errno::ECONNREFUSED)?;
            other.deliver(data, portid, 0);
        }
        Ok(len)
    }

    fn sol_netlink_set(&self, name: i32, val: &[u8]) -> Result<(), Errno> {
        let v = if val.len() >= 4 {
            u32::from_ne_bytes(val[..4].try_into().unwrap())
        } else {
            0
        };
        let mut st = self.st.lock();
        match name {
            NETLINK_ADD_MEMBERSHIP | NETLINK_DROP_MEMBERSHIP => {
                if v == 0 || v > self.groups_max() {
                    return Err(Errno::EINVAL);
                }
                if name == NETLINK_ADD_MEMBERSHIP {
                    st.groups.insert(v);
                } else {
                    st.groups.remove(&v);
                }
            }
            NETLINK_CAP_ACK => st.cap_ack = v != 0,
            NETLINK_EXT_ACK => st.ext_ack = v != 0,
            NETLINK_GET_STRICT_CHK => st.strict = v != 0,
            NETLINK_NO_ENOBUFS => {
                st.no_enobufs = v != 0;
                if v != 0 {
                    st.err = None;
                }
            }
            NETLINK_BROADCAST_ERROR => st.broadcast_error = v != 0,
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    fn sol_netlink_get(&self, name: i32, len: usize) -> Result<Vec<u8>, Errno> {
        let st = self.st.lock();
        let flag = match name {
            NETLINK_CAP_ACK => st.cap_ack,
            NETLINK_EXT_ACK => st.ext_ack,
            NETLINK_GET_STRICT_CHK => st.strict,
            NETLINK_NO_ENOBUFS => st.no_enobufs,
            NETLINK_BROADCAST_ERROR => st.broadcast_error,
            NETLINK_PKTINFO | NETLINK_LISTEN_ALL_NSID => false,
            NETLINK_LIST_MEMBERSHIPS => {
                let mut words = vec![0u32; RTNLGRP_MAX.div_ceil(32) as usize];
                for &g in &st.groups {
                    words[((g - 1) / 32) as usize] |= 1 << ((g - 1) % 32);
                }
                let mut v: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
                // Linux writes what fits and reports the whole length;
                // the caller copies at most `len`.
                v.truncate(v.len().max(len.min(v.len())));
                return Ok(v);
            }
            _ => return Err(Errno::ENOPROTOOPT),
        };
        if len < 4 {
            return Err(Errno::EINVAL);
        }
        Ok(int_val(flag as i32))
    }

    fn sol_socket_get(&self, t: &Task, name: i32) -> Result<Vec<u8>, Errno> {
        let mut st = self.st.lock();
        Ok(match name {
            libc::SO_TYPE => int_val(self.ty),
            libc::SO_PROTOCOL => int_val(self.protocol),
            libc::SO_DOMAIN => int_val(libc::AF_NETLINK),
            libc::SO_ERROR => int_val(st.err.take().map_or(0, |e| e.raw())),
            libc::SO_ACCEPTCONN => int_val(0),
            libc::SO_SNDBUF => int_val(st.sndbuf as i32),
            libc::SO_RCVBUF => int_val(st.rcvbuf as i32),
            libc::SO_PASSCRED => int_val(st.passcred as i32),
            libc::SO_RCVTIMEO | SO_RCVTIMEO_NEW => st.rcvtimeo.to_timeval().to_vec(),
            libc::SO_SNDTIMEO | SO_SNDTIMEO_NEW => st.sndtimeo.to_timeval().to_vec(),
            _ => return Err(unknown_option(t, "getsockopt", name)),
        })
    }

    fn sol_socket_set(&self, t: &Task, name: i32, val: &[u8]) -> Result<(), Errno> {
        let mut st = self.st.lock();
        match name {
            libc::SO_SNDBUF | libc::SO_SNDBUFFORCE => {
                let force = name == libc::SO_SNDBUFFORCE;
                if force && !t.creds.has_cap(CAP_NET_ADMIN) {
                    return Err(Errno::EPERM);
                }
                st.sndbuf = buf_size(get_int(val)?, WMEM_MAX, SOCK_MIN_SNDBUF, force);
            }
            libc::SO_RCVBUF | libc::SO_RCVBUFFORCE => {
                let force = name == libc::SO_RCVBUFFORCE;
                if force && !t.creds.has_cap(CAP_NET_ADMIN) {
                    return Err(Errno::EPERM);
                }
                st.rcvbuf = buf_size(get_int(val)?, RMEM_MAX, SOCK_MIN_RCVBUF, force);
            }
            libc::SO_PASSCRED => st.passcred = get_int(val)? != 0,
            libc::SO_RCVTIMEO | SO_RCVTIMEO_NEW => st.rcvtimeo = Timeout::from_timeval(val)?,
            libc::SO_SNDTIMEO | SO_SNDTIMEO_NEW => st.sndtimeo = Timeout::from_timeval(val)?,
            libc::SO_TYPE
            | libc::SO_PROTOCOL
            | libc::SO_DOMAIN
            | libc::SO_ERROR
            | libc::SO_ACCEPTCONN => return Err(Errno::ENOPROTOOPT),
            _ => return Err(unknown_option(t, "setsockopt", name)),
        }
        Ok(())
    }
}

/// An option Linux has and the sentry does not: logged, ENOSYS. Numbers
/// Linux does not know are ENOPROTOOPT.
fn unknown_option(t: &Task, call: &str, name: i32) -> Errno {
    if (1..=80).contains(&name) {
        t.kernel.note_unimplemented(&format!(
            "{call} SOL_SOCKET option {name} on a netlink socket"
        ));
        return Errno::ENOSYS;
    }
    Errno::ENOPROTOOPT
}

/// A netlink protocol's name, for the log.
fn protocol_name(p: i32) -> String {
    let n = match p {
        2 => "NETLINK_USERSOCK",
        4 => "NETLINK_SOCK_DIAG",
        6 => "NETLINK_XFRM",
        9 => "NETLINK_AUDIT",
        12 => "NETLINK_NETFILTER",
        15 => "NETLINK_KOBJECT_UEVENT",
        16 => "NETLINK_GENERIC",
        _ => return p.to_string(),
    };
    n.into()
}

impl Socket for NetlinkSocket {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn family(&self) -> i32 {
        libc::AF_NETLINK
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

    /// `netlink_bind`.
    fn bind(&self, t: &mut Task, addr: &[u8]) -> Result<(), Errno> {
        let (pid, groups) = parse_addr(addr)?;
        if groups != 0 && self.groups_max() == 0 {
            t.kernel.note_unsupported(
                "sock_diag multicast groups (socket destroy notices)",
                "none joined",
            );
        }
        let mut st = self.st.lock();
        if st.bound && pid != st.portid {
            return Err(Errno::EINVAL);
        }
        if !st.bound {
            if pid != 0 {
                self.insert(&mut st, pid)?;
            } else {
                self.autobind(t, &mut st)?;
            }
        }
        // The mask replaces the first 32 groups.
        if groups != 0 || st.groups.iter().any(|&g| g <= 32) {
            st.groups.retain(|&g| g > 32);
            for i in 0..32 {
                if groups & (1 << i) != 0 && i < self.groups_max() {
                    st.groups.insert(i + 1);
                }
            }
        }
        Ok(())
    }

    fn listen(&self, _t: &mut Task, _backlog: i32) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    /// `netlink_connect`: sets the default destination; AF_UNSPEC
    /// clears it.
    fn connect(&self, t: &mut Task, addr: &[u8], _nonblock: bool) -> Result<(), Errno> {
        if addr.len() < 2 {
            return Err(Errno::EINVAL);
        }
        let family = u16::from_ne_bytes([addr[0], addr[1]]) as i32;
        let mut st = self.st.lock();
        if family == libc::AF_UNSPEC {
            st.dst_portid = 0;
            st.dst_group = 0;
            return Ok(());
        }
        let (pid, groups) = parse_addr(addr)?;
        if (groups != 0 || pid != 0) && !Self::may_send_other(t) {
            return Err(Errno::EPERM);
        }
        self.autobind(t, &mut st)?;
        st.dst_portid = pid;
        st.dst_group = if groups == 0 {
            0
        } else {
            groups.trailing_zeros() + 1
        };
        Ok(())
    }

    fn accept(&self, _t: &mut Task, _nonblock: bool) -> Result<Arc<dyn Socket>, Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    fn shutdown(&self, _how: i32) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    fn sockname(&self) -> Vec<u8> {
        let st = self.st.lock();
        let mask = st
            .groups
            .iter()
            .filter(|&&g| g <= 32)
            .fold(0u32, |m, &g| m | group_mask(g));
        sockaddr_nl(st.portid, mask)
    }

    fn peername(&self) -> Result<Vec<u8>, Errno> {
        let st = self.st.lock();
        Ok(sockaddr_nl(st.dst_portid, group_mask(st.dst_group)))
    }

    fn sendmsg(&self, t: &mut Task, args: SendArgs<'_>) -> Result<usize, Errno> {
        self.send(t, args)
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
        match level {
            libc::SOL_SOCKET => self.sol_socket_get(t, name),
            SOL_NETLINK => self.sol_netlink_get(name, len),
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn setsockopt(&self, t: &mut Task, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        match level {
            libc::SOL_SOCKET => self.sol_socket_set(t, name, val),
            SOL_NETLINK => {
                if name == NETLINK_PKTINFO || name == NETLINK_LISTEN_ALL_NSID {
                    t.kernel
                        .note_unimplemented(&format!("setsockopt SOL_NETLINK option {name}"));
                    return Err(Errno::ENOSYS);
                }
                self.sol_netlink_set(name, val)
            }
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    /// Netlink has no ioctls of its own; the device ioctls every socket
    /// serves, else ENOTTY.
    fn ioctl(&self, t: &mut Task, request: u32, arg: u64) -> Result<u64, Errno> {
        crate::net::ioctl::dev_ioctl(t, request, arg)
    }

    fn readiness(&self, _events: i16) -> i16 {
        let st = self.st.lock();
        let mut mask = libc::POLLOUT | libc::POLLWRNORM | libc::POLLWRBAND;
        if !st.rq.is_empty() {
            mask |= libc::POLLIN | libc::POLLRDNORM;
        }
        if st.err.is_some() {
            mask |= libc::POLLERR;
        }
        mask
    }

    fn waitq(&self) -> Arc<WaitQueue> {
        self.queue.clone()
    }

    fn take_error(&self) -> Option<Errno> {
        self.st.lock().err.take()
    }

    fn release(&self) {
        let mut st = self.st.lock();
        if st.bound {
            let mut ports = PORTS.lock();
            let key = (self.protocol, st.portid);
            if ports
                .get(&key)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), self as *const NetlinkSocket))
            {
                ports.remove(&key);
            }
            st.bound = false;
        }
        st.rq.clear();
        st.rq_bytes = 0;
    }
}
