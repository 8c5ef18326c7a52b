//! prctl(2): per-thread and per-process settings.

use crate::errno::Errno;

use super::{Hex, SysResult};
use crate::kernel::compat::Unsupported;
use crate::kernel::creds::{
    CAP_LAST_CAP, CAP_SETPCAP, SECBIT_KEEP_CAPS_LOCKED, SECBIT_NO_CAP_AMBIENT_RAISE,
    SECURE_ALL_BITS, SECURE_ALL_LOCKS,
};
use crate::kernel::signal::valid_signal;
use crate::kernel::task::Task;

const PR_SET_PDEATHSIG: i32 = 1;
const PR_GET_PDEATHSIG: i32 = 2;
const PR_GET_DUMPABLE: i32 = 3;
const PR_SET_DUMPABLE: i32 = 4;
const PR_GET_KEEPCAPS: i32 = 7;
const PR_SET_KEEPCAPS: i32 = 8;
const PR_SET_NAME: i32 = 15;
const PR_GET_NAME: i32 = 16;
const PR_GET_SECCOMP: i32 = 21;
const PR_GET_SECUREBITS: i32 = 27;
const PR_SET_SECUREBITS: i32 = 28;
const PR_SET_SECCOMP: i32 = 22;
const PR_CAPBSET_READ: i32 = 23;
const PR_CAPBSET_DROP: i32 = 24;
const PR_GET_TIMERSLACK: i32 = 30;
const PR_SET_TIMERSLACK: i32 = 29;
const PR_SET_MM: i32 = 35;
const PR_SET_CHILD_SUBREAPER: i32 = 36;
const PR_GET_CHILD_SUBREAPER: i32 = 37;
const PR_SET_NO_NEW_PRIVS: i32 = 38;
const PR_GET_NO_NEW_PRIVS: i32 = 39;
const PR_GET_TID_ADDRESS: i32 = 40;
const PR_SET_THP_DISABLE: i32 = 41;
const PR_GET_THP_DISABLE: i32 = 42;
const PR_CAP_AMBIENT: i32 = 47;
const PR_SET_VMA: i32 = 0x53564d41;

const PR_CAP_AMBIENT_IS_SET: u64 = 1;
const PR_CAP_AMBIENT_RAISE: u64 = 2;
const PR_CAP_AMBIENT_LOWER: u64 = 3;
const PR_CAP_AMBIENT_CLEAR_ALL: u64 = 4;

/// PR_SET_SECUREBITS: needs CAP_SETPCAP; a locked bit cannot change, a
/// lock cannot be undone, and bits Linux 6.6 does not know are refused
/// (the SECBIT_EXEC_* bits of later releases among them).
fn set_securebits(t: &mut Task, bits: u64) -> SysResult {
    let old = t.creds.securebits() as u64;
    let locks = SECURE_ALL_LOCKS as u64;
    if ((old & locks) >> 1) & (old ^ bits) != 0
        || old & locks & !bits != 0
        || bits & !(SECURE_ALL_BITS | SECURE_ALL_LOCKS) as u64 != 0
        || !t.creds.has_cap(CAP_SETPCAP)
    {
        return Err(Errno::EPERM);
    }
    t.creds.set_securebits(bits as u32);
    Ok(0)
}

/// PR_CAP_AMBIENT: the ambient set, whose members must be permitted and
/// inheritable.
fn cap_ambient(t: &mut Task, op: u64, cap: u64, a4: u64, a5: u64) -> SysResult {
    let c = &mut t.creds;
    if op == PR_CAP_AMBIENT_CLEAR_ALL {
        if cap | a4 | a5 != 0 {
            return Err(Errno::EINVAL);
        }
        c.cap_ambient = 0;
        return Ok(0);
    }
    if cap > CAP_LAST_CAP as u64 || a4 | a5 != 0 {
        return Err(Errno::EINVAL);
    }
    let bit = 1u64 << cap;
    match op {
        PR_CAP_AMBIENT_IS_SET => Ok((c.cap_ambient & bit != 0) as u64),
        PR_CAP_AMBIENT_RAISE => {
            if c.cap_permitted & bit == 0
                || c.cap_inheritable & bit == 0
                || c.securebits() & SECBIT_NO_CAP_AMBIENT_RAISE != 0
            {
                return Err(Errno::EPERM);
            }
            c.cap_ambient |= bit;
            Ok(0)
        }
        PR_CAP_AMBIENT_LOWER => {
            c.cap_ambient &= !bit;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// prctl options the sentry does not know.
const PRCTL_UNKNOWN: Unsupported = Unsupported {
    syscall: "prctl",
    argument: "option",
    answer: Errno::EINVAL,
};
/// Options it knows and does not implement (PR_SET_MM, the THP switch).
const PRCTL_UNIMPLEMENTED: Unsupported = Unsupported {
    syscall: "prctl",
    argument: "option",
    answer: Errno::ENOSYS,
};
/// PR_SET_VMA: naming anonymous memory, optional in Linux
/// (CONFIG_ANON_VMA_NAME) and absent here.
const PRCTL_SET_VMA: Unsupported = Unsupported {
    syscall: "prctl",
    argument: "option",
    answer: Errno::EINVAL,
};

pub fn prctl(t: &mut Task, option: i32, arg2: Hex, arg3: Hex, arg4: Hex, arg5: Hex) -> SysResult {
    let (a2, a3, a4, a5) = (arg2.0, arg3.0, arg4.0, arg5.0);
    match option {
        PR_SET_PDEATHSIG => {
            if a2 != 0 {
                valid_signal(a2 as i32)?;
            }
            t.prctl.pdeath_signal = a2 as i32;
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            t.mm.write_obj(a2, &t.prctl.pdeath_signal)?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(t.tg.prctl.lock().unwrap().dumpable as u64),
        PR_SET_DUMPABLE => {
            if a2 > 1 {
                return Err(Errno::EINVAL);
            }
            t.tg.prctl.lock().unwrap().dumpable = a2 as u32;
            Ok(0)
        }
        PR_GET_KEEPCAPS => Ok(t.creds.keep_caps as u64),
        PR_SET_KEEPCAPS => {
            if a2 > 1 {
                return Err(Errno::EINVAL);
            }
            if t.creds.securebits() & SECBIT_KEEP_CAPS_LOCKED != 0 {
                return Err(Errno::EPERM);
            }
            t.creds.keep_caps = a2 == 1;
            Ok(0)
        }
        PR_GET_SECUREBITS => Ok(t.creds.securebits() as u64),
        PR_SET_SECUREBITS => set_securebits(t, a2),
        PR_SET_NAME => {
            // The name is at most 16 bytes with its NUL; longer names are
            // cut, as Linux does.
            let mut buf = [0u8; 16];
            let n = t.mm.copy_in_partial(a2, &mut buf);
            let s = &buf[..n];
            let end = s.iter().position(|&b| b == 0);
            if end.is_none() && n < 16 {
                return Err(Errno::EFAULT);
            }
            let name = &s[..end.unwrap_or(15).min(15)];
            t.set_comm(name.to_vec());
            Ok(0)
        }
        PR_GET_NAME => {
            let mut buf = [0u8; 16];
            let comm = t.comm();
            buf[..comm.len()].copy_from_slice(&comm);
            t.mm.copy_out(a2, &buf)?;
            Ok(0)
        }
        PR_GET_SECCOMP => super::seccomp::prctl_get_seccomp(t),
        PR_SET_SECCOMP => super::seccomp::prctl_set_seccomp(t, a2, a3),
        PR_CAPBSET_READ => {
            if a2 > CAP_LAST_CAP as u64 {
                return Err(Errno::EINVAL);
            }
            Ok((t.creds.cap_bounding >> a2) & 1)
        }
        PR_CAPBSET_DROP => {
            if !t.creds.has_cap(CAP_SETPCAP) {
                return Err(Errno::EPERM);
            }
            if a2 > CAP_LAST_CAP as u64 {
                return Err(Errno::EINVAL);
            }
            t.creds.cap_bounding &= !(1 << a2);
            Ok(0)
        }
        PR_CAP_AMBIENT => cap_ambient(t, a2, a3, a4, a5),
        PR_GET_TIMERSLACK => Ok(t.prctl.timer_slack_ns),
        PR_SET_TIMERSLACK => {
            t.prctl.timer_slack_ns = if a2 == 0 { 50_000 } else { a2 };
            Ok(0)
        }
        PR_SET_CHILD_SUBREAPER => {
            t.tg.prctl.lock().unwrap().child_subreaper = a2 != 0;
            Ok(0)
        }
        PR_GET_CHILD_SUBREAPER => {
            let v = t.tg.prctl.lock().unwrap().child_subreaper as i32;
            t.mm.write_obj(a2, &v)?;
            Ok(0)
        }
        PR_SET_NO_NEW_PRIVS => {
            if a2 != 1 || a3 != 0 || a4 != 0 || a5 != 0 {
                return Err(Errno::EINVAL);
            }
            t.prctl.no_new_privs = true;
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => {
            if a2 != 0 || a3 != 0 || a4 != 0 || a5 != 0 {
                return Err(Errno::EINVAL);
            }
            Ok(t.prctl.no_new_privs as u64)
        }
        PR_GET_TID_ADDRESS => {
            t.mm.write_obj(a2, &t.clear_child_tid)?;
            Ok(0)
        }
        // Naming anonymous memory is optional in Linux (CONFIG_ANON_VMA_NAME).
        PR_SET_VMA => PRCTL_SET_VMA.answer(t, "PR_SET_VMA"),
        PR_SET_MM => PRCTL_UNIMPLEMENTED.answer(t, "PR_SET_MM"),
        PR_SET_THP_DISABLE => PRCTL_UNIMPLEMENTED.answer(t, "PR_SET_THP_DISABLE"),
        PR_GET_THP_DISABLE => PRCTL_UNIMPLEMENTED.answer(t, "PR_GET_THP_DISABLE"),
        _ => PRCTL_UNKNOWN.answer(t, option),
    }
}
