//! Changing credentials: setuid, setgid, setreuid, setregid, setresuid,
//! setresgid, setfsuid, setfsgid, setgroups, capget, capset.

use crate::errno::Errno;

use super::{SysResult, UserAddr};
use crate::kernel::creds::{Credentials, CAP_LAST_CAP, CAP_SETGID, CAP_SETUID};
use crate::kernel::task::Task;

/// -1 as an id argument: leave unchanged.
const KEEP: u32 = u32::MAX;
/// NGROUPS_MAX.
const NGROUPS_MAX: i32 = 65536;

fn update(t: &mut Task, f: impl FnOnce(&mut Credentials) -> Result<(), Errno>) -> SysResult {
    let mut c = t.creds.clone();
    let (r, e, s, fs) = (c.uid, c.euid, c.suid, c.fsuid);
    f(&mut c)?;
    c.fix_caps_after_setuid(r, e, s);
    c.fix_caps_after_setfsuid(fs);
    t.creds = c;
    Ok(0)
}

pub fn setuid(t: &mut Task, uid: u32) -> SysResult {
    if uid == KEEP {
        return Err(Errno::EINVAL);
    }
    update(t, |c| {
        if c.has_cap(CAP_SETUID) {
            c.uid = uid;
            c.suid = uid;
        } else if uid != c.uid && uid != c.suid {
            return Err(Errno::EPERM);
        }
        c.euid = uid;
        c.fsuid = uid;
        Ok(())
    })
}

pub fn setgid(t: &mut Task, gid: u32) -> SysResult {
    if gid == KEEP {
        return Err(Errno::EINVAL);
    }
    update(t, |c| {
        if c.has_cap(CAP_SETGID) {
            c.gid = gid;
            c.sgid = gid;
        } else if gid != c.gid && gid != c.sgid {
            return Err(Errno::EPERM);
        }
        c.egid = gid;
        c.fsgid = gid;
        Ok(())
    })
}

pub fn setreuid(t: &mut Task, ruid: u32, euid: u32) -> SysResult {
    update(t, |c| {
        let priv_ = c.has_cap(CAP_SETUID);
        let old_r = c.uid;
        if ruid != KEEP && !priv_ && ruid != c.uid && ruid != c.euid {
            return Err(Errno::EPERM);
        }
        if euid != KEEP && !priv_ && euid != c.uid && euid != c.euid && euid != c.suid {
            return Err(Errno::EPERM);
        }
        if ruid != KEEP {
            c.uid = ruid;
        }
        if euid != KEEP {
            c.euid = euid;
        }
        if ruid != KEEP || (euid != KEEP && euid != old_r) {
            c.suid = c.euid;
        }
        c.fsuid = c.euid;
        Ok(())
    })
}

pub fn setregid(t: &mut Task, rgid: u32, egid: u32) -> SysResult {
    update(t, |c| {
        let priv_ = c.has_cap(CAP_SETGID);
        let old_r = c.gid;
        if rgid != KEEP && !priv_ && rgid != c.gid && rgid != c.egid {
            return Err(Errno::EPERM);
        }
        if egid != KEEP && !priv_ && egid != c.gid && egid != c.egid && egid != c.sgid {
            return Err(Errno::EPERM);
        }
        if rgid != KEEP {
            c.gid = rgid;
        }
        if egid != KEEP {
            c.egid = egid;
        }
        if rgid != KEEP || (egid != KEEP && egid != old_r) {
            c.sgid = c.egid;
        }
        c.fsgid = c.egid;
        Ok(())
    })
}

pub fn setresuid(t: &mut Task, r: u32, e: u32, s: u32) -> SysResult {
    update(t, |c| {
        if !c.has_cap(CAP_SETUID) {
            let ok = |v: u32| v == KEEP || v == c.uid || v == c.euid || v == c.suid;
            if !ok(r) || !ok(e) || !ok(s) {
                return Err(Errno::EPERM);
            }
        }
        if r != KEEP {
            c.uid = r;
        }
        if e != KEEP {
            c.euid = e;
        }
        if s != KEEP {
            c.suid = s;
        }
        c.fsuid = c.euid;
        Ok(())
    })
}

pub fn setresgid(t: &mut Task, r: u32, e: u32, s: u32) -> SysResult {
    update(t, |c| {
        if !c.has_cap(CAP_SETGID) {
            let ok = |v: u32| v == KEEP || v == c.gid || v == c.egid || v == c.sgid;
            if !ok(r) || !ok(e) || !ok(s) {
                return Err(Errno::EPERM);
            }
        }
        if r != KEEP {
            c.gid = r;
        }
        if e != KEEP {
            c.egid = e;
        }
        if s != KEEP {
            c.sgid = s;
        }
        c.fsgid = c.egid;
        Ok(())
    })
}

/// setfsuid returns the old fsuid whether or not it changed it.
pub fn setfsuid(t: &mut Task, uid: u32) -> SysResult {
    let old = t.creds.fsuid;
    let c = &t.creds;
    if uid != KEEP
        && (c.has_cap(CAP_SETUID)
            || uid == c.uid
            || uid == c.euid
            || uid == c.suid
            || uid == c.fsuid)
    {
        let mut n = t.creds.clone();
        n.fsuid = uid;
        n.fix_caps_after_setfsuid(old);
        t.creds = n;
    }
    Ok(old as u64)
}

pub fn setfsgid(t: &mut Task, gid: u32) -> SysResult {
    let old = t.creds.fsgid;
    let c = &t.creds;
    if gid != KEEP
        && (c.has_cap(CAP_SETGID)
            || gid == c.gid
            || gid == c.egid
            || gid == c.sgid
            || gid == c.fsgid)
    {
        t.creds.fsgid = gid;
    }
    Ok(old as u64)
}

pub fn setgroups(t: &mut Task, size: i32, list: UserAddr) -> SysResult {
    if !(0..=NGROUPS_MAX).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; size as usize * 4];
    t.mm.copy_in(list.0, &mut raw)?;
    if !t.creds.has_cap(CAP_SETGID) {
        return Err(Errno::EPERM);
    }
    let mut groups: Vec<u32> = raw
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    groups.sort_unstable();
    t.creds.groups = groups;
    Ok(0)
}

const LINUX_CAPABILITY_VERSION_1: u32 = 0x1998_0330;
const LINUX_CAPABILITY_VERSION_2: u32 = 0x2007_1026;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Reads the header; on a bad version writes the preferred one back.
fn cap_header(t: &Task, hdr: u64) -> Result<(u32, i32), Errno> {
    let version: u32 = t.mm.read_obj(hdr)?;
    let pid: i32 = t.mm.read_obj(hdr + 4)?;
    match version {
        LINUX_CAPABILITY_VERSION_1 => Ok((1, pid)),
        LINUX_CAPABILITY_VERSION_2 | LINUX_CAPABILITY_VERSION_3 => Ok((2, pid)),
        _ => {
            t.mm.write_obj(hdr, &LINUX_CAPABILITY_VERSION_3)?;
            Err(Errno::EINVAL)
        }
    }
}

pub fn capget(t: &mut Task, hdr: UserAddr, data: UserAddr) -> SysResult {
    let (words, pid) = match cap_header(t, hdr.0) {
        Ok(x) => x,
        // Probing the version with NULL data succeeds.
        Err(Errno::EINVAL) if data.0 == 0 => return Ok(0),
        Err(e) => return Err(e),
    };
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid != 0 && pid != t.tid {
        return Err(Errno::ESRCH);
    }
    if data.0 == 0 {
        return Ok(0);
    }
    let c = &t.creds;
    let mut out = Vec::new();
    for i in 0..words {
        let sh = 32 * i;
        for v in [c.cap_effective, c.cap_permitted, c.cap_inheritable] {
            out.extend_from_slice(&((v >> sh) as u32).to_le_bytes());
        }
    }
    t.mm.copy_out(data.0, &out)?;
    Ok(0)
}

pub fn capset(t: &mut Task, hdr: UserAddr, data: UserAddr) -> SysResult {
    let (words, pid) = cap_header(t, hdr.0)?;
    if pid != 0 && pid != t.tid {
        return Err(Errno::EPERM);
    }
    let mut raw = vec![0u8; words as usize * 12];
    t.mm.copy_in(data.0, &mut raw)?;
    let word = |i: usize, k: usize| {
        u32::from_le_bytes(raw[i * 12 + k * 4..i * 12 + k * 4 + 4].try_into().unwrap()) as u64
    };
    let mut eff = 0u64;
    let mut per = 0u64;
    let mut inh = 0u64;
    for i in 0..words as usize {
        eff |= word(i, 0) << (32 * i);
        per |= word(i, 1) << (32 * i);
        inh |= word(i, 2) << (32 * i);
    }
    let valid = (1u64 << (CAP_LAST_CAP + 1)) - 1;
    let (eff, per, inh) = (eff & valid, per & valid, inh & valid);
    let c = &t.creds;
    // Permitted may only shrink; effective must be within permitted;
    // inheritable within inheritable | permitted (no CAP_SETPCAP rules
    // beyond that).
    if per & !c.cap_permitted != 0
        || eff & !per != 0
        || inh & !(c.cap_inheritable | c.cap_permitted) != 0
    {
        return Err(Errno::EPERM);
    }
    t.creds.cap_effective = eff;
    t.creds.cap_permitted = per;
    t.creds.cap_inheritable = inh;
    Ok(0)
}
