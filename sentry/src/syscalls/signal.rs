//! Signal syscalls: rt_sigaction, rt_sigprocmask, sigaltstack. The state is
//! recorded and checked as Linux does; delivery to handlers comes with the
//! signals work.

use nix::errno::Errno;

use super::{SysResult, UserAddr};
use crate::kernel::signal::{
    valid_signal, SigAction, SigSet, SignalStack, MINSIGSTKSZ, SS_AUTODISARM, SS_DISABLE,
    SS_ONSTACK, UNBLOCKABLE,
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
    valid_signal(sig)?;
    let new = if act.0 != 0 {
        let mut a: SigAction = t.mm.read_obj(act.0)?;
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            return Err(Errno::EINVAL);
        }
        a.mask &= !UNBLOCKABLE;
        Some(a)
    } else {
        None
    };
    let old = {
        let mut h = t.tg.handlers.lock().unwrap();
        let old = h.actions[(sig - 1) as usize];
        if let Some(a) = new {
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

pub fn sigaltstack(t: &mut Task, ss: UserAddr, old: UserAddr) -> SysResult {
    let cur = t.alt_stack;
    let on_stack = cur.flags & SS_DISABLE == 0
        && t.regs.rsp > cur.sp
        && t.regs.rsp <= cur.sp.wrapping_add(cur.size);
    if old.0 != 0 {
        let mut o = cur;
        if on_stack {
            o.flags |= SS_ONSTACK;
        }
        if cur.flags & SS_DISABLE != 0 {
            o = SignalStack {
                flags: SS_DISABLE,
                ..SignalStack::default()
            };
        }
        t.mm.write_obj(old.0, &o)?;
    }
    if ss.0 != 0 {
        let new: SignalStack = t.mm.read_obj(ss.0)?;
        if on_stack {
            return Err(Errno::EPERM);
        }
        let mode = new.flags & !SS_AUTODISARM;
        if mode != 0 && mode != SS_DISABLE && mode != SS_ONSTACK {
            return Err(Errno::EINVAL);
        }
        if mode == SS_DISABLE {
            t.alt_stack = SignalStack {
                flags: SS_DISABLE,
                ..SignalStack::default()
            };
        } else {
            if new.size < MINSIGSTKSZ {
                return Err(Errno::ENOMEM);
            }
            t.alt_stack = SignalStack {
                sp: new.sp,
                flags: new.flags & SS_AUTODISARM,
                _pad: 0,
                size: new.size,
            };
        }
    }
    Ok(0)
}
