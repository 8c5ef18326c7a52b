//! Changes to the stack's configuration that programs make through
//! netlink (`ip addr add`, `ip addr del`) and the interface ioctls.

use std::net::IpAddr;

use smoltcp::wire::IpCidr;

use super::{to_ip, AddrInfo, NetStack};
use crate::errno::Errno;

impl NetStack {
    /// Adds an address to a link: ENODEV for no such link, EEXIST when
    /// the link has it already, ENOSPC when smoltcp's table is full.
    pub fn add_addr(&self, a: AddrInfo) -> Result<(), Errno> {
        let mut g = self.inner.lock();
        if !g.links.iter().any(|l| l.index == a.index) {
            return Err(Errno::ENODEV);
        }
        if g.addrs
            .iter()
            .any(|x| x.index == a.index && x.addr == a.addr)
        {
            return Err(Errno::EEXIST);
        }
        let mut full = false;
        g.iface.update_ip_addrs(|v| {
            if v.push(IpCidr::new(to_ip(a.addr), a.prefix)).is_err() {
                full = true;
            }
        });
        if full {
            return Err(Errno::ENOSPC);
        }
        g.addrs.push(a);
        if a.index != 1 {
            g.dev.local.push(a.addr);
        }
        if let Some(l) = g.dev.ext.iter_mut().find(|l| l.index == a.index) {
            l.addrs.push((a.addr, a.prefix));
        }
        Ok(())
    }

    /// Removes an address from a link: ENODEV for no such link,
    /// EADDRNOTAVAIL when the link does not have it (with that prefix
    /// length, when `prefix` is given).
    pub fn del_addr(&self, index: u32, addr: IpAddr, prefix: Option<u8>) -> Result<(), Errno> {
        let mut g = self.inner.lock();
        if !g.links.iter().any(|l| l.index == index) {
            return Err(Errno::ENODEV);
        }
        let pos = g
            .addrs
            .iter()
            .position(|x| {
                x.index == index && x.addr == addr && prefix.is_none_or(|p| p == x.prefix)
            })
            .ok_or(Errno::EADDRNOTAVAIL)?;
        let gone = g.addrs.remove(pos);
        let ip = to_ip(gone.addr);
        // smoltcp has one table for every link: keep the address if
        // another link still has it.
        if !g.addrs.iter().any(|x| x.addr == gone.addr) {
            g.iface.update_ip_addrs(|v| v.retain(|c| c.address() != ip));
            g.dev.local.retain(|x| *x != gone.addr);
        }
        if let Some(l) = g.dev.ext.iter_mut().find(|l| l.index == index) {
            l.addrs.retain(|x| *x != (gone.addr, gone.prefix));
        }
        Ok(())
    }
}
