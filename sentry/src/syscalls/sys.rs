//! The sandbox's identity and limits: uname, host names, rlimits,
//! getrandom, umask.

use crate::errno::Errno;
use crate::sync::LockExt;

use super::fs::access_ok;
use super::{Hex, Mode, OutBuf, SysResult, UserAddr};
use crate::kernel::creds::CAP_SYS_RESOURCE;
use crate::kernel::limits::Limit;
use crate::kernel::task::Task;
use crate::kernel::{RELEASE, VERSION};

const CAP_SYS_ADMIN: u32 = 21;
/// Linux's MAX_RW_COUNT: the most one getrandom call returns.
const MAX_RW_COUNT: usize = 0x7fff_f000;
/// The most random bytes made at once.
const RANDOM_CHUNK: usize = 16 << 20;
/// __NEW_UTS_LEN.
const UTS_LEN: usize = 64;

fn fill(field: &mut [libc::c_char; 65], s: &str) {
    for (d, b) in field.iter_mut().zip(s.bytes().take(UTS_LEN)) {
        *d = b as libc::c_char;
    }
}

pub fn uname(t: &mut Task, buf: UserAddr) -> SysResult {
    let mut u: libc::utsname = crate::hostcall::zeroed();
    let uts = t.kernel.uts.locked().clone();
    fill(&mut u.sysname, "Linux");
    fill(&mut u.nodename, &uts.hostname);
    fill(&mut u.release, RELEASE);
    fill(&mut u.version, VERSION);
    fill(&mut u.machine, "x86_64");
    fill(&mut u.domainname, &uts.domainname);
    t.mm.write_obj(buf.0, &u)?;
    Ok(0)
}

fn read_name(t: &Task, addr: u64, len: usize) -> Result<String, Errno> {
    if !t.creds.has_cap(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    if len > UTS_LEN {
        return Err(Errno::EINVAL);
    }
    let mut b = vec![0u8; len];
    t.mm.copy_in(addr, &mut b)?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

pub fn sethostname(t: &mut Task, name: UserAddr, len: usize) -> SysResult {
    let s = read_name(t, name.0, len)?;
    t.kernel.uts.locked().hostname = s;
    Ok(0)
}

pub fn setdomainname(t: &mut Task, name: UserAddr, len: usize) -> SysResult {
    let s = read_name(t, name.0, len)?;
    t.kernel.uts.locked().domainname = s;
    Ok(0)
}

pub fn getrlimit(t: &mut Task, resource: u32, rlim: UserAddr) -> SysResult {
    let l = t.tg.limits.locked().get(resource)?;
    let r = libc::rlimit {
        rlim_cur: l.cur,
        rlim_max: l.max,
    };
    t.mm.write_obj(rlim.0, &r)?;
    Ok(0)
}

pub fn setrlimit(t: &mut Task, resource: u32, rlim: UserAddr) -> SysResult {
    let r: libc::rlimit = t.mm.read_obj(rlim.0)?;
    let privileged = t.creds.has_cap(CAP_SYS_RESOURCE);
    t.tg.limits.locked().set(
        resource,
        Limit {
            cur: r.rlim_cur,
            max: r.rlim_max,
        },
        privileged,
    )?;
    Ok(0)
}

pub fn prlimit64(t: &mut Task, pid: i32, resource: u32, new: UserAddr, old: UserAddr) -> SysResult {
    // The new limit is read before the target is looked up.
    let new_limit = if new.0 != 0 {
        let r: libc::rlimit = t.mm.read_obj(new.0)?;
        Some(Limit {
            cur: r.rlim_cur,
            max: r.rlim_max,
        })
    } else {
        None
    };
    // Any thread of any process may be named; this sandbox has one.
    if pid != 0 && pid != t.tg.tgid && pid != t.tid {
        return Err(Errno::ESRCH);
    }
    let privileged = t.creds.has_cap(CAP_SYS_RESOURCE);
    let prev = {
        let mut limits = t.tg.limits.locked();
        match new_limit {
            Some(l) => limits.set(resource, l, privileged)?,
            None => limits.get(resource)?,
        }
    };
    if old.0 != 0 {
        let r = libc::rlimit {
            rlim_cur: prev.cur,
            rlim_max: prev.max,
        };
        t.mm.write_obj(old.0, &r)?;
    }
    Ok(0)
}

pub fn getrandom(t: &mut Task, buf: OutBuf, len: usize, flags: Hex) -> SysResult {
    let known = (libc::GRND_NONBLOCK | libc::GRND_RANDOM | libc::GRND_INSECURE) as u64;
    if flags.0 & !known != 0 {
        return Err(Errno::EINVAL);
    }
    if flags.0 & (libc::GRND_RANDOM | libc::GRND_INSECURE) as u64
        == (libc::GRND_RANDOM | libc::GRND_INSECURE) as u64
    {
        return Err(Errno::EINVAL);
    }
    let len = len.min(MAX_RW_COUNT);
    if !access_ok(buf.0, len as u64) {
        return Err(Errno::EFAULT);
    }
    if len == 0 {
        return Ok(0);
    }
    // Bytes go out up to the first fault; none at all is EFAULT.
    let room = t.mm.writable_len(buf.0, len as u64) as usize;
    if room == 0 {
        return Err(Errno::EFAULT);
    }
    let mut data = vec![0u8; room.min(RANDOM_CHUNK)];
    let mut done = 0;
    while done < room {
        let part = &mut data[..(room - done).min(RANDOM_CHUNK)];
        crate::hostcall::fill_random(part)?;
        t.mm.copy_out(buf.0 + done as u64, part)?;
        done += part.len();
    }
    Ok(room as u64)
}

pub fn umask(t: &mut Task, mask: Mode) -> SysResult {
    let mut m = t.tg.umask.locked();
    let old = *m;
    *m = mask.0 & 0o777;
    Ok(old as u64)
}

/// `struct sysinfo`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SysInfo {
    uptime: i64,
    loads: [u64; 3],
    totalram: u64,
    freeram: u64,
    sharedram: u64,
    bufferram: u64,
    totalswap: u64,
    freeswap: u64,
    procs: u16,
    _pad: u16,
    _pad2: u32,
    totalhigh: u64,
    freehigh: u64,
    mem_unit: u32,
    _pad3: u32,
}

// SAFETY: integer fields with explicit padding, 112 bytes.
unsafe impl crate::mm::io::Pod for SysInfo {}
crate::assert_no_padding!(SysInfo {
    uptime,
    loads,
    totalram,
    freeram,
    sharedram,
    bufferram,
    totalswap,
    freeswap,
    procs,
    _pad,
    _pad2,
    totalhigh,
    freehigh,
    mem_unit,
    _pad3
});

/// sysinfo(2): the sandbox's uptime and process count; memory as the
/// machine's total less what the sandbox uses.
pub fn sysinfo(t: &mut Task, info: UserAddr) -> SysResult {
    let host = crate::hostcall::sysinfo();
    let total = host.totalram * host.mem_unit as u64;
    let used = t.kernel.memory_file.used();
    let v = SysInfo {
        uptime: t.kernel.boot_time.elapsed().as_secs() as i64,
        totalram: total,
        freeram: total.saturating_sub(used),
        procs: 1,
        mem_unit: 1,
        ..SysInfo::default()
    };
    t.mm.write_obj(info.0, &v)?;
    Ok(0)
}
