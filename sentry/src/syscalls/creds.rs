//! Changing credentials: setuid, setgid, setreuid, setregid, setresuid,
//! setresgid, setfsuid, setfsgid, setgroups, capget, capset.

use crate::errno::Errno;

use super::{SysResult, UserAddr};
use crate::kernel::creds::{Credentials, CAP_ALL, CAP_SETGID, CAP_SETPCAP, CAP_SETUID};
use crate::kernel::task::Task;

/// -1 as an id argument: leave unchanged.
const KEEP: u32 = u32::MAX;
/// NGROUPS_MAX.
const NGROUPS_MAX: i32 = 65536;

/// Changes the uids by `f` and the capabilities with them.
fn update_uids(t: &mut Task, f: impl FnOnce(&mut Credentials) -> Result<(), Errno>) -> SysResult {
    let mut c = t.creds.clone();
    let (r, e, s) = (c.uid, c.euid, c.suid);
    f(&mut c)?;
    c.fix_caps_after_setuid(r, e, s);
    commit(t, c);
    Ok(0)
}

/// Changes the gids by `f`.
fn update_gids(t: &mut Task, f: impl FnOnce(&mut Credentials) -> Result<(), Errno>) -> SysResult {
    let mut c = t.creds.clone();
    f(&mut c)?;
    commit(t, c);
    Ok(0)
}

/// Installs new credentials (Linux's `commit_creds`): a change of an
/// effective or file-system id, or more permitted capabilities, makes the
/// process undumpable and clears the parent-death signal.
pub fn commit(t: &mut Task, c: Credentials) {
    if c.raises_privilege_over(&t.creds) {
        crate::kernel::task::lock_prctl(&t.tg).dumpable = 0;
        t.prctl.pdeath_signal = 0;
    }
    t.creds = c;
}

pub fn setuid(t: &mut Task, uid: u32) -> SysResult {
    if uid == KEEP {
        return Err(Errno::EINVAL);
    }
    update_uids(t, |c| {
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
    update_gids(t, |c| {
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
    update_uids(t, |c| {
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
    update_gids(t, |c| {
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
    // A call that changes nothing (the fsuid included) does nothing.
    let c = &t.creds;
    if (r == KEEP || r == c.uid)
        && (e == KEEP || (e == c.euid && e == c.fsuid))
        && (s == KEEP || s == c.suid)
    {
        return Ok(0);
    }
    update_uids(t, |c| {
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
    let c = &t.creds;
    if (r == KEEP || r == c.gid)
        && (e == KEEP || (e == c.egid && e == c.fsgid))
        && (s == KEEP || s == c.sgid)
    {
        return Ok(0);
    }
    update_gids(t, |c| {
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
        commit(t, n);
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
        let mut n = t.creds.clone();
        n.fsgid = gid;
        commit(t, n);
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

/// The number of 32-bit words of each set that a header's version
/// carries (`cap_validate_magic`); on an unknown version, writes the
/// preferred one back and fails with EINVAL.
fn cap_words(t: &Task, hdr: u64) -> Result<usize, Errno> {
    let version: u32 = t.mm.read_obj(hdr)?;
    match version {
        LINUX_CAPABILITY_VERSION_1 => Ok(1),
        LINUX_CAPABILITY_VERSION_2 | LINUX_CAPABILITY_VERSION_3 => Ok(2),
        _ => {
            t.mm.write_obj(hdr, &LINUX_CAPABILITY_VERSION_3)?;
            Err(Errno::EINVAL)
        }
    }
}

/// capget(2): the effective, permitted and inheritable sets of the task
/// `pid` (0: the caller), which any task may read.
pub fn capget(t: &mut Task, hdr: UserAddr, data: UserAddr) -> SysResult {
    let words = match cap_words(t, hdr.0) {
        // Probing the version with NULL data succeeds.
        Err(Errno::EINVAL) if data.0 == 0 => return Ok(0),
        r => r?,
    };
    if data.0 == 0 {
        return Ok(0);
    }
    let pid: i32 = t.mm.read_obj(hdr.0 + 4)?;
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    let caps = if pid == 0 || pid == t.tid {
        t.creds.capabilities()
    } else {
        let target = t.kernel.tasks.lock().tasks.get(&pid).cloned();
        let target = target.ok_or(Errno::ESRCH)?;
        let caps = target.view.lock().creds.capabilities();
        caps
    };
    let mut out = Vec::new();
    for i in 0..words {
        let sh = 32 * i;
        for v in [caps.effective, caps.permitted, caps.inheritable] {
            out.extend_from_slice(&((v >> sh) as u32).to_le_bytes());
        }
    }
    t.mm.copy_out(data.0, &out)?;
    Ok(0)
}

/// capset(2) of the caller's own sets, with Linux's rules (`cap_capset`).
pub fn capset(t: &mut Task, hdr: UserAddr, data: UserAddr) -> SysResult {
    let words = cap_words(t, hdr.0)?;
    let pid: i32 = t.mm.read_obj(hdr.0 + 4)?;
    // Only the caller's own sets can change.
    if pid != 0 && pid != t.tid {
        return Err(Errno::EPERM);
    }
    let mut raw = vec![0u8; words * 12];
    t.mm.copy_in(data.0, &mut raw)?;
    let word = |i: usize, k: usize| {
        u32::from_le_bytes(raw[i * 12 + k * 4..i * 12 + k * 4 + 4].try_into().unwrap()) as u64
    };
    let (mut eff, mut per, mut inh) = (0u64, 0u64, 0u64);
    for i in 0..words {
        eff |= word(i, 0) << (32 * i);
        per |= word(i, 1) << (32 * i);
        inh |= word(i, 2) << (32 * i);
    }
    let (eff, per, inh) = (eff & CAP_ALL, per & CAP_ALL, inh & CAP_ALL);
    let old = &t.creds;
    // New inheritable capabilities come from the permitted set, unless
    // CAP_SETPCAP, and never from outside the bounding set.
    if !old.has_cap(CAP_SETPCAP) && inh & !(old.cap_inheritable | old.cap_permitted) != 0 {
        return Err(Errno::EPERM);
    }
    if inh & !(old.cap_inheritable | old.cap_bounding) != 0 {
        return Err(Errno::EPERM);
    }
    // Permitted may only shrink; effective stays within it.
    if per & !old.cap_permitted != 0 || eff & !per != 0 {
        return Err(Errno::EPERM);
    }
    let mut c = old.clone();
    c.cap_effective = eff;
    c.cap_permitted = per;
    c.cap_inheritable = inh;
    c.cap_ambient &= per & inh;
    commit(t, c);
    Ok(0)
}
