//! Taking over a network namespace's interfaces for the sentry
//! (`--network=sandbox`), as gVisor's runsc does.
//!
//! In the sentry's process, still privileged and before it is confined:
//! it joins the namespace the container's spec names (or `runsc do
//! --netns`), and for each interface but loopback reads its index, MAC,
//! MTU, addresses and routes, opens an `AF_PACKET` socket bound to it and
//! then removes its addresses from the host side (IPv4 ones by netlink;
//! IPv6 by turning IPv6 off on the interface, which also stops the host's
//! neighbour discovery on it). The host kernel then neither answers for
//! the container's addresses nor routes through the interface; only the
//! sentry's stack, which gets the sockets and what was read, speaks
//! there. Nothing of the namespace is changed beyond that.
//!
//! With `--network=host` nothing is taken over: the sentry's process
//! stays in runsc's namespace (or joins the named one) and reads its
//! interfaces, addresses and gateway routes once, for the sandbox's
//! interface listings ([`list_host`]).

use std::ffi::CStr;
use std::io::Error;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Mutex;

use sentry::net::ether::{HostLink, HostRoute, ListedLink};

/// What the sentry's process took over (or why it could not), until it
/// boots the sentry.
static TAKEN: Mutex<Option<Result<Vec<HostLink>, String>>> = Mutex::new(None);

/// The interfaces taken over in this process (none when nothing was to
/// be taken over), or why taking them over failed.
pub fn taken() -> Result<Vec<HostLink>, String> {
    TAKEN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or(Ok(Vec::new()))
}

/// Joins the namespace open at `fd` and takes over its interfaces,
/// keeping the outcome for [`taken`].
pub fn join_and_take_over(fd: i32) {
    let r = join(fd).and_then(|()| take_over());
    *TAKEN.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
}

/// The host's interfaces read by [`list_host`] (none when it did not
/// run), or why reading them failed.
static LISTED: Mutex<Option<Result<Vec<ListedLink>, String>>> = Mutex::new(None);

/// `--network=host`: joins the namespace open at `fd` as it is, if one
/// is given, and reads its interfaces but loopback for the sandbox's
/// listings, keeping the outcome for [`listed`]. Nothing is taken over.
pub fn list_host(fd: Option<i32>) {
    let r = match fd {
        Some(fd) => join(fd),
        None => Ok(()),
    }
    .and_then(|()| describe());
    *LISTED.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
}

/// What [`list_host`] read in this process.
pub fn listed() -> Result<Vec<ListedLink>, String> {
    LISTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or(Ok(Vec::new()))
}

/// This namespace's interfaces but loopback, as they are now.
fn describe() -> Result<Vec<ListedLink>, String> {
    let found = interfaces()?;
    let routes: Vec<(String, HostRoute)> = read_v4_routes()
        .into_iter()
        .chain(read_v6_routes())
        .collect();
    let mut out = Vec::new();
    for f in found.into_iter().filter(|f| !f.loopback) {
        let mtu = mtu_of(&f.name)?;
        let kind = hw_type_of(&f.name)?;
        out.push(ListedLink {
            routes: routes
                .iter()
                .filter(|(dev, _)| *dev == f.name)
                .map(|(_, r)| *r)
                .collect(),
            name: f.name,
            index: f.index,
            mac: f.mac,
            mtu,
            flags: f.flags,
            kind,
            addrs: f.addrs,
        });
    }
    Ok(out)
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", Error::last_os_error())
}

/// Joins the network namespace open at `fd`.
fn join(fd: i32) -> Result<(), String> {
    // SAFETY: setns on an fd we hold; no memory is passed.
    if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
        return Err(os_err("joining the container's network namespace (setns)"));
    }
    Ok(())
}

/// An interface as getifaddrs lists it.
#[derive(Default)]
struct Found {
    name: String,
    index: u32,
    mac: [u8; 6],
    addrs: Vec<(IpAddr, u8)>,
    loopback: bool,
    /// IFF_* bits.
    flags: u32,
}

/// Takes over every interface of this process's network namespace but
/// loopback (see the module doc).
fn take_over() -> Result<Vec<HostLink>, String> {
    let found = interfaces()?;
    let v4_routes = read_v4_routes();
    let v6_routes = read_v6_routes();
    let mut out = Vec::new();
    for f in found.into_iter().filter(|f| !f.loopback) {
        let mtu = mtu_of(&f.name)?;
        let routes: Vec<HostRoute> = v4_routes
            .iter()
            .chain(v6_routes.iter())
            .filter(|(dev, _)| *dev == f.name)
            .map(|(_, r)| *r)
            .collect();
        let fd = packet_socket(f.index, &f.name)?;
        for (a, p) in &f.addrs {
            if let IpAddr::V4(v4) = a {
                delete_v4(f.index, *v4, *p)
                    .map_err(|e| format!("removing {a}/{p} from {}: {e}", f.name))?;
            }
        }
        if f.addrs.iter().any(|(a, _)| a.is_ipv6()) {
            let path = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", f.name);
            std::fs::write(&path, "1")
                .map_err(|e| format!("turning IPv6 off on the host side of {}: {e}", f.name))?;
        }
        tracing::info!(
            "network: took over {} (index {}, mtu {mtu}, {:?}, routes {:?})",
            f.name,
            f.index,
            f.addrs,
            routes
        );
        out.push(HostLink {
            name: f.name,
            index: f.index,
            mac: f.mac,
            mtu,
            addrs: f.addrs,
            routes,
            fd,
        });
    }
    Ok(out)
}

/// The prefix length of a netmask.
fn prefix_of(mask: &[u8]) -> u8 {
    mask.iter().map(|b| b.count_ones() as u8).sum()
}

fn interfaces() -> Result<Vec<Found>, String> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills our pointer with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(os_err("listing the network interfaces (getifaddrs)"));
    }
    let mut out: Vec<Found> = Vec::new();
    let mut p = head;
    while !p.is_null() {
        // SAFETY: p is an element of the list getifaddrs made, alive
        // until freeifaddrs; its name is a C string, its addresses null
        // or sockaddrs of the family they say.
        unsafe {
            let ifa = &*p;
            p = ifa.ifa_next;
            let name = CStr::from_ptr(ifa.ifa_name).to_string_lossy().into_owned();
            let pos = match out.iter().position(|f| f.name == name) {
                Some(i) => i,
                None => {
                    let c = std::ffi::CString::new(name.clone()).unwrap_or_default();
                    out.push(Found {
                        name,
                        index: libc::if_nametoindex(c.as_ptr()),
                        loopback: ifa.ifa_flags & libc::IFF_LOOPBACK as u32 != 0,
                        flags: ifa.ifa_flags,
                        ..Found::default()
                    });
                    out.len() - 1
                }
            };
            let f = &mut out[pos];
            if ifa.ifa_addr.is_null() {
                continue;
            }
            match (*ifa.ifa_addr).sa_family as i32 {
                libc::AF_PACKET => {
                    let ll = &*(ifa.ifa_addr as *const libc::sockaddr_ll);
                    f.mac.copy_from_slice(&ll.sll_addr[..6]);
                }
                libc::AF_INET => {
                    let a = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
                    let addr = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                    let prefix = prefix_of(&m.sin_addr.s_addr.to_ne_bytes());
                    f.addrs.push((IpAddr::V4(addr), prefix));
                }
                libc::AF_INET6 => {
                    let a = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in6);
                    let addr = Ipv6Addr::from(a.sin6_addr.s6_addr);
                    f.addrs
                        .push((IpAddr::V6(addr), prefix_of(&m.sin6_addr.s6_addr)));
                }
                _ => {}
            }
        }
    }
    // SAFETY: frees the list getifaddrs made; nothing points into it now.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// An ioctl of the interface named `name` on a datagram socket: the
/// filled ifreq.
fn ifreq_of(name: &str, request: u64, what: &str) -> Result<libc::ifreq, String> {
    // SAFETY: a new datagram socket, owned below.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(os_err("a socket for interface ioctls"));
    }
    // SAFETY: s is a new fd we own.
    let s = unsafe { OwnedFd::from_raw_fd(s) };
    // SAFETY: all-zero is a valid ifreq.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, b) in r.ifr_name.iter_mut().zip(name.bytes().take(15)) {
        *d = b as libc::c_char;
    }
    // SAFETY: the request reads the name and writes into our ifreq.
    if unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&s), request, &mut r) } != 0 {
        return Err(os_err(&format!("reading the {what} of {name}")));
    }
    Ok(r)
}

/// The ARPHRD_* type of an interface (SIOCGIFHWADDR's address family).
fn hw_type_of(name: &str) -> Result<u16, String> {
    let r = ifreq_of(name, libc::SIOCGIFHWADDR, "hardware type")?;
    // SAFETY: SIOCGIFHWADDR filled the union's hardware address member.
    Ok(unsafe { r.ifr_ifru.ifru_hwaddr.sa_family })
}

fn mtu_of(name: &str) -> Result<u32, String> {
    let r = ifreq_of(name, libc::SIOCGIFMTU, "MTU")?;
    // SAFETY: SIOCGIFMTU filled the union's MTU member.
    Ok(unsafe { r.ifr_ifru.ifru_mtu } as u32)
}

/// A raw packet socket bound to the interface, non-blocking, that does
/// not see the frames it sends, with a large receive buffer.
fn packet_socket(index: u32, name: &str) -> Result<OwnedFd, String> {
    let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
    // SAFETY: a new socket, owned below.
    let s = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            proto,
        )
    };
    if s < 0 {
        return Err(os_err(&format!("opening a packet socket on {name}")));
    }
    // SAFETY: s is a new fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(s) };
    // SAFETY: all-zero is a valid sockaddr_ll; bind reads it.
    let rc = unsafe {
        let mut ll: libc::sockaddr_ll = std::mem::zeroed();
        ll.sll_family = libc::AF_PACKET as u16;
        ll.sll_protocol = proto as u16;
        ll.sll_ifindex = index as i32;
        libc::bind(
            s,
            (&raw const ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc != 0 {
        return Err(os_err(&format!("binding a packet socket to {name}")));
    }
    let set = |level: i32, opt: i32, v: i32| {
        // SAFETY: setsockopt reads one int from our stack.
        unsafe {
            libc::setsockopt(
                s,
                level,
                opt,
                (&raw const v).cast(),
                std::mem::size_of::<i32>() as u32,
            )
        }
    };
    // PACKET_IGNORE_OUTGOING (Linux 4.20): our own frames are not read back.
    if set(libc::SOL_PACKET, 23, 1) != 0 {
        return Err(os_err("PACKET_IGNORE_OUTGOING on the packet socket"));
    }
    // Room for bursts while the stack is busy; best effort.
    let _ = set(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 8 << 20);
    let _ = set(libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, 8 << 20);
    Ok(fd)
}

/// Removes an IPv4 address from an interface (RTM_DELADDR).
fn delete_v4(index: u32, addr: Ipv4Addr, prefix: u8) -> Result<(), String> {
    // SAFETY: a new netlink socket, owned below.
    let s = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if s < 0 {
        return Err(os_err("a netlink socket"));
    }
    // SAFETY: s is a new fd we own.
    let _owned = unsafe { OwnedFd::from_raw_fd(s) };
    let mut m = Vec::with_capacity(40);
    let len: u32 = 16 + 8 + 8;
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&libc::RTM_DELADDR.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // ifaddrmsg: family, prefix length, flags, scope, index.
    m.extend_from_slice(&[libc::AF_INET as u8, prefix, 0, 0]);
    m.extend_from_slice(&index.to_ne_bytes());
    // IFA_LOCAL.
    m.extend_from_slice(&8u16.to_ne_bytes());
    m.extend_from_slice(&(libc::IFA_LOCAL).to_ne_bytes());
    m.extend_from_slice(&addr.octets());
    // SAFETY: sends our buffer on our socket (to the kernel: no address).
    if unsafe { libc::send(s, m.as_ptr().cast(), m.len(), 0) } < 0 {
        return Err(os_err("sending RTM_DELADDR"));
    }
    let mut buf = [0u8; 1024];
    // SAFETY: receives into our buffer.
    let n = unsafe { libc::recv(s, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 20 {
        return Err(os_err("reading netlink's answer"));
    }
    let kind = u16::from_ne_bytes([buf[4], buf[5]]);
    if kind == libc::NLMSG_ERROR as u16 {
        let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
        if code != 0 {
            return Err(Error::from_raw_os_error(-code).to_string());
        }
    }
    Ok(())
}

/// The IPv4 routes of this namespace, by interface name
/// (/proc/net/route: hexadecimal words in network order).
fn read_v4_routes() -> Vec<(String, HostRoute)> {
    let text = std::fs::read_to_string("/proc/self/net/route").unwrap_or_default();
    let word = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|w| Ipv4Addr::from(u32::from_be(w)))
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let dst = word(f[1])?;
            let gw = word(f[2])?;
            let mask = word(f[7])?;
            let flags = u32::from_str_radix(f[3], 16).ok()?;
            // RTF_UP, and RTF_GATEWAY for a gateway route.
            if flags & 1 == 0 {
                return None;
            }
            let gateway = (flags & 2 != 0).then_some(IpAddr::V4(gw));
            Some((
                f[0].to_string(),
                HostRoute {
                    dst: IpAddr::V4(dst),
                    prefix: prefix_of(&mask.octets()),
                    gateway,
                },
            ))
        })
        // The subnets of the interface's own addresses are implied.
        .filter(|(_, r)| r.gateway.is_some())
        .collect()
}

/// The IPv6 gateway routes of this namespace, by interface name
/// (/proc/net/ipv6_route).
fn read_v6_routes() -> Vec<(String, HostRoute)> {
    let text = std::fs::read_to_string("/proc/self/net/ipv6_route").unwrap_or_default();
    let addr = |s: &str| u128::from_str_radix(s, 16).ok().map(Ipv6Addr::from);
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let dst = addr(f[0])?;
            let prefix = u8::from_str_radix(f[1], 16).ok()?;
            let gw = addr(f[4])?;
            let flags = u32::from_str_radix(f[8], 16).ok()?;
            if flags & 1 == 0 || flags & 2 == 0 || gw.is_unspecified() {
                return None;
            }
            Some((
                f[9].to_string(),
                HostRoute {
                    dst: IpAddr::V6(dst),
                    prefix,
                    gateway: Some(IpAddr::V6(gw)),
                },
            ))
        })
        .collect()
}
