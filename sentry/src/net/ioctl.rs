//! The interface ioctls (`SIOCGIF*`, `SIOCSIFFLAGS`, `SIOCGIFCONF`) on
//! the stack's links, as Linux's `dev_ioctl`, `dev_ifconf` and
//! `devinet_ioctl` answer them.
//!
//! [`dev_ioctl`] is what every socket serves (Linux's `sock_do_ioctl`
//! falls back to it for any family); [`ifreq_ioctl`] adds the IPv4
//! address requests an AF_INET socket serves (`inet_ioctl`).

use std::net::IpAddr;

use super::{LinkInfo, NetStack, IFF_UP};
use crate::errno::Errno;
use crate::kernel::task::Task;

pub const SIOCADDRT: u32 = 0x890B;
pub const SIOCDELRT: u32 = 0x890C;
pub const SIOCGIFNAME: u32 = 0x8910;
pub const SIOCSIFLINK: u32 = 0x8911;
pub const SIOCGIFCONF: u32 = 0x8912;
pub const SIOCGIFFLAGS: u32 = 0x8913;
pub const SIOCSIFFLAGS: u32 = 0x8914;
pub const SIOCGIFADDR: u32 = 0x8915;
pub const SIOCSIFADDR: u32 = 0x8916;
pub const SIOCGIFDSTADDR: u32 = 0x8917;
pub const SIOCSIFDSTADDR: u32 = 0x8918;
pub const SIOCGIFBRDADDR: u32 = 0x8919;
pub const SIOCSIFBRDADDR: u32 = 0x891a;
pub const SIOCGIFNETMASK: u32 = 0x891b;
pub const SIOCSIFNETMASK: u32 = 0x891c;
pub const SIOCGIFMETRIC: u32 = 0x891d;
pub const SIOCSIFMETRIC: u32 = 0x891e;
pub const SIOCGIFMEM: u32 = 0x891f;
pub const SIOCSIFMEM: u32 = 0x8920;
pub const SIOCGIFMTU: u32 = 0x8921;
pub const SIOCSIFMTU: u32 = 0x8922;
pub const SIOCSIFNAME: u32 = 0x8923;
pub const SIOCSIFHWADDR: u32 = 0x8924;
pub const SIOCGIFHWADDR: u32 = 0x8927;
pub const SIOCGIFSLAVE: u32 = 0x8929;
pub const SIOCSIFSLAVE: u32 = 0x8930;
pub const SIOCADDMULTI: u32 = 0x8931;
pub const SIOCDELMULTI: u32 = 0x8932;
pub const SIOCGIFINDEX: u32 = 0x8933;
pub const SIOCSIFHWBROADCAST: u32 = 0x8937;
pub const SIOCGIFTXQLEN: u32 = 0x8942;
pub const SIOCSIFTXQLEN: u32 = 0x8943;
pub const SIOCETHTOOL: u32 = 0x8946;
pub const SIOCGIFMAP: u32 = 0x8970;
pub const SIOCSIFMAP: u32 = 0x8971;

/// `sizeof(struct ifreq)`, `IFNAMSIZ`, `sizeof(struct ifconf)`.
const IFREQ: usize = 40;
const IFNAMSIZ: usize = 16;
const IFCONF: usize = 16;
const CAP_NET_ADMIN: u32 = 12;

/// Whether `request` is a socket ioctl (`is_socket_ioctl_cmd`: type
/// 0x89), which every socket passes to the device layer.
pub fn is_socket_ioctl(request: u32) -> bool {
    (request >> 8) & 0xff == 0x89
}

/// An ifreq read from the guest: its bytes, and the device name (up to a
/// NUL, or the colon of an alias label) and the full label.
struct Ifreq {
    b: [u8; IFREQ],
    dev: String,
    label: String,
}

fn read_ifreq(t: &Task, arg: u64) -> Result<Ifreq, Errno> {
    let mut b = [0u8; IFREQ];
    t.mm.copy_in(arg, &mut b)?;
    b[IFNAMSIZ - 1] = 0;
    let end = b[..IFNAMSIZ]
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(IFNAMSIZ);
    let label = String::from_utf8_lossy(&b[..end]).into_owned();
    let dev = label.split(':').next().unwrap_or("").to_string();
    Ok(Ifreq { b, dev, label })
}

fn link_named(stack: &NetStack, name: &str) -> Result<LinkInfo, Errno> {
    stack
        .links()
        .into_iter()
        .find(|l| l.name == name)
        .ok_or(Errno::ENODEV)
}

/// A `struct sockaddr_in` with `a`.
fn sockaddr_in(a: [u8; 4]) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
    s[4..8].copy_from_slice(&a);
    s
}

/// The device ioctls every socket serves (`dev_ioctl`, `dev_ifconf`);
/// ENOTTY for the rest.
pub fn dev_ioctl(t: &mut Task, request: u32, arg: u64) -> Result<u64, Errno> {
    if !is_socket_ioctl(request) {
        return Err(Errno::ENOTTY);
    }
    let stack = t.kernel.sockets.net().clone();
    if request == SIOCGIFCONF {
        return ifconf(t, &stack, arg);
    }
    let mut r = read_ifreq(t, arg)?;
    match request {
        SIOCGIFNAME => {
            let index = i32::from_ne_bytes(r.b[16..20].try_into().unwrap());
            let l = stack
                .links()
                .into_iter()
                .find(|l| l.index as i32 == index)
                .ok_or(Errno::ENODEV)?;
            r.b[..IFNAMSIZ].fill(0);
            let n = l.name.len().min(IFNAMSIZ - 1);
            r.b[..n].copy_from_slice(&l.name.as_bytes()[..n]);
        }
        SIOCGIFFLAGS | SIOCGIFMETRIC | SIOCGIFMTU | SIOCGIFSLAVE | SIOCGIFMAP | SIOCGIFINDEX
        | SIOCGIFTXQLEN | SIOCGIFHWADDR => {
            let l = link_named(&stack, &r.dev)?;
            let u = &mut r.b[16..];
            match request {
                // The flags as a short: IFF_LOWER_UP and above do not fit.
                SIOCGIFFLAGS => u[..2].copy_from_slice(&(l.flags as u16).to_ne_bytes()),
                SIOCGIFMETRIC => u[..4].copy_from_slice(&0i32.to_ne_bytes()),
                SIOCGIFMTU => u[..4].copy_from_slice(&(l.mtu as i32).to_ne_bytes()),
                SIOCGIFSLAVE => return Err(Errno::EINVAL),
                // struct ifmap: no memory, I/O port, IRQ or DMA.
                SIOCGIFMAP => u.fill(0),
                SIOCGIFINDEX => u[..4].copy_from_slice(&(l.index as i32).to_ne_bytes()),
                SIOCGIFTXQLEN => {
                    u[..4].copy_from_slice(&(super::rtnetlink::TXQLEN as i32).to_ne_bytes())
                }
                _ => {
                    // SIOCGIFHWADDR: sa_family is the link type, then the
                    // address's 6 bytes; the rest is left as it was.
                    u[..2].copy_from_slice(&l.kind.to_ne_bytes());
                    u[2..8].copy_from_slice(&l.mac);
                }
            }
        }
        SIOCSIFFLAGS => {
            if !t.creds.has_cap(CAP_NET_ADMIN) {
                return Err(Errno::EPERM);
            }
            let l = link_named(&stack, &r.dev)?;
            let new = u16::from_ne_bytes(r.b[16..18].try_into().unwrap()) as u32;
            set_flags(t, &stack, &l, new)?;
            return Ok(0);
        }
        SIOCSIFMAP | SIOCSIFTXQLEN | SIOCSIFMETRIC | SIOCSIFMTU | SIOCSIFHWADDR | SIOCSIFSLAVE
        | SIOCADDMULTI | SIOCDELMULTI | SIOCSIFHWBROADCAST | SIOCSIFNAME => {
            if !t.creds.has_cap(CAP_NET_ADMIN) {
                return Err(Errno::EPERM);
            }
            link_named(&stack, &r.dev)?;
            t.kernel
                .note_unimplemented(&format!("ioctl {request:#x} on a network interface"));
            return Err(Errno::ENOSYS);
        }
        SIOCETHTOOL => {
            link_named(&stack, &r.dev)?;
            t.kernel.note_unimplemented("ioctl SIOCETHTOOL");
            return Err(Errno::ENOSYS);
        }
        // SIOCDEVPRIVATE..+15: the driver's own requests; the sandbox's
        // links have none.
        0x89f0..=0x89ff => {
            link_named(&stack, &r.dev)?;
            return Err(Errno::EOPNOTSUPP);
        }
        _ => return Err(Errno::ENOTTY),
    }
    t.mm.copy_out(arg, &r.b)?;
    Ok(0)
}

/// SIOCSIFFLAGS (`dev_change_flags`): only IFF_UP changes in the sandbox.
fn set_flags(t: &Task, stack: &NetStack, l: &LinkInfo, new: u32) -> Result<(), Errno> {
    // The bits dev_change_flags takes from the caller.
    const SETTABLE: u32 =
        IFF_UP | 0x4 | 0x20 | 0x80 | 0x100 | 0x200 | 0x1000 | 0x2000 | 0x4000 | 0x8000;
    let diff = (new ^ l.flags) & SETTABLE;
    if diff & !IFF_UP != 0 {
        t.kernel.note_unimplemented(&format!(
            "SIOCSIFFLAGS changing flags {:#x}",
            diff & !IFF_UP
        ));
        return Err(Errno::ENOSYS);
    }
    if diff & IFF_UP != 0 {
        stack.set_link_flags(l.index, new)?;
        if let Some(nl) = stack.links().iter().find(|x| x.index == l.index) {
            let m = super::rtnetlink::link_msg(nl, super::rtnetlink::RTM_NEWLINK, 0, 0, 0, IFF_UP);
            crate::fsimpl::socket::netlink::broadcast(super::rtnetlink::RTNLGRP_LINK, m);
        }
    }
    Ok(())
}

/// SIOCGIFCONF (`dev_ifconf`, `inet_gifconf`): an ifreq per IPv4
/// address, link by link; with no buffer, the length they need.
fn ifconf(t: &mut Task, stack: &NetStack, arg: u64) -> Result<u64, Errno> {
    let mut c = [0u8; IFCONF];
    t.mm.copy_in(arg, &mut c)?;
    let len = i32::from_ne_bytes(c[..4].try_into().unwrap());
    let buf = u64::from_ne_bytes(c[8..16].try_into().unwrap());
    let links = stack.links();
    let addrs = stack.addrs();
    let mut total: i32 = 0;
    for l in &links {
        for a in addrs.iter().filter(|a| a.index == l.index) {
            let IpAddr::V4(v) = a.addr else {
                continue;
            };
            if buf == 0 {
                total += IFREQ as i32;
                continue;
            }
            if len - total < IFREQ as i32 {
                break;
            }
            let mut r = [0u8; IFREQ];
            let n = l.name.len().min(IFNAMSIZ - 1);
            r[..n].copy_from_slice(&l.name.as_bytes()[..n]);
            r[16..32].copy_from_slice(&sockaddr_in(v.octets()));
            t.mm.copy_out(buf + total as u64, &r)?;
            total += IFREQ as i32;
        }
    }
    t.mm.write_obj(arg, &total)?;
    Ok(0)
}

/// The interface ioctls of an AF_INET socket: the IPv4 address requests
/// (`devinet_ioctl`), the routing-table requests (not the sandbox's) and
/// every [`dev_ioctl`] one.
pub fn ifreq_ioctl(t: &mut Task, request: u32, arg: u64) -> Result<u64, Errno> {
    match request {
        SIOCGIFADDR | SIOCGIFBRDADDR | SIOCGIFDSTADDR | SIOCGIFNETMASK => {}
        SIOCSIFADDR | SIOCSIFBRDADDR | SIOCSIFDSTADDR | SIOCSIFNETMASK => {
            if !t.creds.has_cap(CAP_NET_ADMIN) {
                return Err(Errno::EPERM);
            }
            let r = read_ifreq(t, arg)?;
            if u16::from_ne_bytes([r.b[16], r.b[17]]) != libc::AF_INET as u16 {
                return Err(Errno::EINVAL);
            }
            link_named(t.kernel.sockets.net(), &r.dev)?;
            t.kernel
                .note_unimplemented(&format!("ioctl {request:#x} setting an IPv4 address"));
            return Err(Errno::ENOSYS);
        }
        SIOCADDRT | SIOCDELRT => {
            if !t.creds.has_cap(CAP_NET_ADMIN) {
                return Err(Errno::EPERM);
            }
            t.kernel.note_unimplemented("ioctl SIOCADDRT/SIOCDELRT");
            return Err(Errno::ENOSYS);
        }
        _ => return dev_ioctl(t, request, arg),
    }
    let stack = t.kernel.sockets.net().clone();
    let mut r = read_ifreq(t, arg)?;
    let l = link_named(&stack, &r.dev)?;
    let orig_family = u16::from_ne_bytes([r.b[16], r.b[17]]);
    let orig: [u8; 4] = r.b[20..24].try_into().unwrap();
    let mine: Vec<_> = stack
        .addrs()
        .into_iter()
        .filter(|a| a.index == l.index && a.addr.is_ipv4() && r.label == l.name)
        .collect();
    // 4.4BSD style: the address given, when the caller gave one; else the
    // label's first.
    let ifa = mine
        .iter()
        .find(|a| orig_family == libc::AF_INET as u16 && a.addr == IpAddr::from(orig))
        .or(mine.first())
        .ok_or(Errno::EADDRNOTAVAIL)?;
    let IpAddr::V4(v) = ifa.addr else {
        unreachable!()
    };
    let out = match request {
        SIOCGIFADDR | SIOCGIFDSTADDR => v.octets(),
        SIOCGIFBRDADDR => {
            super::rtnetlink::broadcast_of(ifa, Some(&l)).map_or([0; 4], |b| b.octets())
        }
        _ => {
            let m = if ifa.prefix == 0 {
                0
            } else {
                u32::MAX << (32 - ifa.prefix as u32)
            };
            m.to_be_bytes()
        }
    };
    r.b[16..IFREQ].fill(0);
    r.b[16..32].copy_from_slice(&sockaddr_in(out));
    t.mm.copy_out(arg, &r.b)?;
    Ok(0)
}
