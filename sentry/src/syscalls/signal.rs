//! Signal syscalls: rt_sigaction, rt_sigprocmask, sigaltstack. The state is
//! recorded and checked as Linux does; delivery to handlers comes with the
//! signals work.

use crate::errno::Errno;

use super::{SysResult, UserAddr};
use crate::kernel::signal::{
    valid_signal, SigAction, SigSet, SignalStack, MINSIGSTKSZ, SS_AUTODISARM, SS_DISABLE,
    SS_ONSTACK, UAPI_SA_FLAGS, UNBLOCKABLE,
};
use crate::kernel::task::Task;

const SIGSET_SIZE: usize = 8;

pub fn rt_sigaction(
    t: &mut Task,
    sig: i32,
    act: UserAddr,
    oact: UserAddr,
    size: usize,
) -> SysResult {
    if size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    // The new action is read before the signal number is checked.
    let new = if act.0 != 0 {
        Some(t.mm.read_obj::<SigAction>(act.0)?)
    } else {
        None
    };
    valid_signal(sig)?;
    if new.is_some() && (sig == libc::SIGKILL || sig == libc::SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let old = {
        let mut h = t.tg.handlers.lock().unwrap();
        let old = h.actions[(sig - 1) as usize];
        if let Some(mut a) = new {
            // Unknown flag bits are dropped, so programs can tell which
            // flags the kernel supports (SA_UNSUPPORTED).
            a.flags &= UAPI_SA_FLAGS;
            a.mask &= !UNBLOCKABLE;
            h.actions[(sig - 1) as usize] = a;
        }
        old
    };
    if oact.0 != 0 {
        t.mm.write_obj(oact.0, &old)?;
    }
    Ok(0)
}

pub fn rt_sigprocmask(
    t: &mut Task,
    how: i32,
    set: UserAddr,
    oset: UserAddr,
    size: usize,
) -> SysResult {
    if size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let old = t.signal_mask;
    if set.0 != 0 {
        let s: SigSet = t.mm.read_obj(set.0)?;
        let new = match how {
            libc::SIG_BLOCK => old | s,
            libc::SIG_UNBLOCK => old & !s,
            libc::SIG_SETMASK => s,
            _ => return Err(Errno::EINVAL),
        };
        t.signal_mask = new & !UNBLOCKABLE;
    }
    if oset.0 != 0 {
        t.mm.write_obj(oset.0, &old)?;
    }
    Ok(0)
}

/// Linux's on_sig_stack: `sp` is in (base, base + size]. A stack with
/// SS_AUTODISARM never counts: it is disarmed while a handler runs on it.
fn on_sig_stack(st: &SignalStack, sp: u64) -> bool {
    st.flags & SS_AUTODISARM == 0 && sp > st.sp && sp - st.sp <= st.size
}

pub fn sigaltstack(t: &mut Task, ss: UserAddr, old: UserAddr) -> SysResult {
    let new: Option<SignalStack> = if ss.0 != 0 {
        Some(t.mm.read_obj(ss.0)?)
    } else {
        None
    };
    let cur = t.alt_stack;
    let sp = t.regs.rsp;
    // What the old stack reads back as: a stack of size 0 is disabled.
    let state = if cur.size == 0 {
        SS_DISABLE
    } else if on_sig_stack(&cur, sp) {
        SS_ONSTACK
    } else {
        0
    };
    let report = SignalStack {
        sp: cur.sp,
        flags: state | (cur.flags & SS_AUTODISARM),
        _pad: 0,
        size: cur.size,
    };
    if let Some(new) = new {
        if on_sig_stack(&cur, sp) {
            return Err(Errno::EPERM);
        }
        let mode = new.flags & !SS_AUTODISARM;
        if mode != 0 && mode != SS_DISABLE && mode != SS_ONSTACK {
            return Err(Errno::EINVAL);
        }
        // An unchanged stack is accepted as it is.
        if (new.sp, new.size, new.flags) != (cur.sp, cur.size, cur.flags) {
            let (sp, size) = if mode == SS_DISABLE {
                (0, 0)
            } else {
                if new.size < MINSIGSTKSZ {
                    return Err(Errno::ENOMEM);
                }
                (new.sp, new.size)
            };
            t.alt_stack = SignalStack {
                sp,
                flags: new.flags,
                _pad: 0,
                size,
            };
        }
    }
    // The old stack is written only when the call succeeds.
    if old.0 != 0 {
        t.mm.write_obj(old.0, &report)?;
    }
    Ok(0)
}
