//! Signal syscalls: actions, masks, the alternate stack, sending (kill,
//! tkill, tgkill, sigqueue), waiting (sigsuspend, pause, sigtimedwait),
//! and returning from handlers. Delivery itself is the run loop's
//! (`kernel::task`).

use crate::errno::Errno;

use super::{SysResult, UserAddr};
use crate::kernel::signal::{
    valid_signal, SigAction, SigSet, SignalStack, MINSIGSTKSZ, SIG_DFL, SIG_IGN, SS_AUTODISARM,
    SS_DISABLE, SS_ONSTACK, UAPI_SA_FLAGS, UNBLOCKABLE,
};
use crate::kernel::signal::{SigInfo, SI_TKILL, SI_USER};
use crate::kernel::task::{RestartBlock, Task, TaskShared};
use crate::kernel::waiter::Wake;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        let handlers = t.tg.handlers();
        let mut h = handlers.lock().unwrap_or_else(|e| e.into_inner());
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
    if let Some(a) = new {
        // A signal set to be ignored is discarded wherever it is pending.
        let ignored = a.handler == SIG_IGN
            || (a.handler == SIG_DFL
                && matches!(
                    crate::kernel::signal::default_action(sig),
                    crate::kernel::signal::DefaultAction::Ignore
                        | crate::kernel::signal::DefaultAction::Continue
                ));
        if ignored {
            let bit = crate::kernel::signal::sig_bit(sig);
            t.tg.sig.lock().pending.discard(bit);
            for th in t.kernel.tasks.lock().threads_of(t.tg.tgid) {
                th.sig.lock().pending.discard(bit);
            }
        }
    }
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
    let old = t.signal_mask();
    if set.0 != 0 {
        let s: SigSet = t.mm.read_obj(set.0)?;
        let new = match how {
            libc::SIG_BLOCK => old | s,
            libc::SIG_UNBLOCK => old & !s,
            libc::SIG_SETMASK => s,
            _ => return Err(Errno::EINVAL),
        };
        t.set_signal_mask(new & !UNBLOCKABLE);
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

// ----- Sending -----

/// Whether the caller may signal a process with credentials `target`
/// (Linux's kill_ok_by_cred).
fn may_signal(t: &Task, target: &crate::kernel::creds::Credentials) -> bool {
    const CAP_KILL: u32 = 5;
    t.creds.has_cap(CAP_KILL)
        || t.creds.euid == target.suid
        || t.creds.euid == target.uid
        || t.creds.uid == target.suid
        || t.creds.uid == target.uid
}

fn check_sig(sig: i32) -> Result<(), Errno> {
    if !(0..=64).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Sends `info` to process `pid` as the caller: permission, the init
/// rule (pid 1 gets only the signals it has a handler for), and signal 0
/// as an existence check.
pub(crate) fn send_to_process(t: &Task, pid: i32, info: SigInfo) -> Result<(), Errno> {
    let (tg, leader, zombie) = {
        let ts = t.kernel.tasks.lock();
        let p = ts.procs.get(&pid).ok_or(Errno::ESRCH)?;
        (p.tg.clone(), p.leader.clone(), p.zombie.is_some())
    };
    let creds = leader.view.lock().creds.clone();
    if !may_signal(t, &creds) {
        return Err(Errno::EPERM);
    }
    if info.signo == 0 || zombie {
        return Ok(());
    }
    // The init rule: pid 1 gets only the signals it has a handler for,
    // whoever inside the sandbox sends them (itself too).
    // (A blocked signal is never ignored: the handler may change before
    // it is unblocked.)
    if pid == 1 && tg.action(info.signo).handler == SIG_DFL && !leader.blocks(info.signo) {
        return Ok(());
    }
    t.kernel.send_group_signal(&tg, info);
    Ok(())
}

pub fn kill(t: &mut Task, pid: i32, sig: i32) -> SysResult {
    check_sig(sig)?;
    let info = SigInfo::from_process(sig, SI_USER, t.tg.tgid, t.creds.uid);
    if pid > 0 {
        send_to_process(t, pid, info)?;
        return Ok(0);
    }
    if pid == i32::MIN {
        return Err(Errno::ESRCH);
    }
    // A group (0: the caller's own), or every process but init and the
    // caller (-1).
    let targets: Vec<i32> = {
        let ts = t.kernel.tasks.lock();
        let my_pgid = ts.procs.get(&t.tg.tgid).map(|p| p.pgid).unwrap_or(0);
        ts.procs
            .iter()
            .filter(|(_, p)| p.zombie.is_none())
            .filter(|(&id, p)| match pid {
                0 => p.pgid == my_pgid,
                -1 => id != 1 && id != t.tg.tgid,
                g => p.pgid == -g,
            })
            .map(|(&id, _)| id)
            .collect()
    };
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    let mut sent = false;
    let mut last = Errno::EPERM;
    for p in targets {
        match send_to_process(t, p, info) {
            Ok(()) => sent = true,
            Err(e) => last = e,
        }
    }
    if sent {
        Ok(0)
    } else {
        Err(last)
    }
}

/// The live thread `tid` (of process `tgid`, if given).
fn find_thread(t: &Task, tgid: Option<i32>, tid: i32) -> Result<Arc<TaskShared>, Errno> {
    let ts = t.kernel.tasks.lock();
    let th = ts.tasks.get(&tid).cloned().ok_or(Errno::ESRCH)?;
    if let Some(g) = tgid {
        if th.tg.tgid != g {
            return Err(Errno::ESRCH);
        }
    }
    Ok(th)
}

fn send_to_thread(t: &Task, th: &Arc<TaskShared>, info: SigInfo) -> SysResult {
    let creds = th.view.lock().creds.clone();
    if !may_signal(t, &creds) {
        return Err(Errno::EPERM);
    }
    if info.signo == 0 {
        return Ok(0);
    }
    if th.tg.tgid == 1 && !Arc::ptr_eq(&th.tg, &t.tg) && th.tg.action(info.signo).handler == SIG_DFL
    {
        return Ok(0);
    }
    t.kernel.send_thread_signal(th, info);
    Ok(0)
}

pub fn tkill(t: &mut Task, tid: i32, sig: i32) -> SysResult {
    if tid <= 0 {
        return Err(Errno::EINVAL);
    }
    check_sig(sig)?;
    let th = find_thread(t, None, tid)?;
    send_to_thread(
        t,
        &th,
        SigInfo::from_process(sig, SI_TKILL, t.tg.tgid, t.creds.uid),
    )
}

pub fn tgkill(t: &mut Task, tgid: i32, tid: i32, sig: i32) -> SysResult {
    if tid <= 0 || tgid <= 0 {
        return Err(Errno::EINVAL);
    }
    check_sig(sig)?;
    let th = find_thread(t, Some(tgid), tid)?;
    send_to_thread(
        t,
        &th,
        SigInfo::from_process(sig, SI_TKILL, t.tg.tgid, t.creds.uid),
    )
}

/// The info a sigqueue caller passes: only the kernel may claim kernel
/// codes, and SI_TKILL is tkill's, unless a process signals itself.
fn queued_info(t: &Task, sig: i32, uinfo: u64, self_target: bool) -> Result<SigInfo, Errno> {
    let mut raw = [0u8; 128];
    t.mm.copy_in(uinfo, &mut raw)?;
    let mut info = SigInfo::from_bytes(&raw);
    if (info.code >= 0 || info.code == SI_TKILL) && !self_target {
        return Err(Errno::EPERM);
    }
    info.signo = sig;
    Ok(info)
}

pub fn rt_sigqueueinfo(t: &mut Task, tgid: i32, sig: i32, uinfo: UserAddr) -> SysResult {
    check_sig(sig)?;
    let info = queued_info(t, sig, uinfo.0, tgid == t.tg.tgid)?;
    send_to_process(t, tgid, info)?;
    Ok(0)
}

pub fn rt_tgsigqueueinfo(
    t: &mut Task,
    tgid: i32,
    tid: i32,
    sig: i32,
    uinfo: UserAddr,
) -> SysResult {
    if tid <= 0 || tgid <= 0 {
        return Err(Errno::EINVAL);
    }
    check_sig(sig)?;
    let info = queued_info(t, sig, uinfo.0, tgid == t.tg.tgid)?;
    let th = find_thread(t, Some(tgid), tid)?;
    send_to_thread(t, &th, info)
}

// ----- Waiting -----

/// Blocks until a signal interrupts the task.
fn wait_for_signal(t: &mut Task) -> Errno {
    t.shared.waiter.reset();
    loop {
        if t.sleep_until(None) == Wake::Interrupted {
            return Errno::ERESTARTNOHAND;
        }
    }
}

pub fn pause(t: &mut Task) -> SysResult {
    Err(wait_for_signal(t))
}

pub fn rt_sigsuspend(t: &mut Task, mask: UserAddr, size: usize) -> SysResult {
    if size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let m: SigSet = t.mm.read_obj(mask.0)?;
    t.set_temporary_mask(m);
    Err(wait_for_signal(t))
}

pub fn rt_sigpending(t: &mut Task, set: UserAddr, size: usize) -> SysResult {
    if size > SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let pending = {
        let s = t.shared.sig.lock();
        let g = t.tg.sig.lock();
        (s.pending.set | g.pending.set) & s.mask
    };
    t.mm.copy_out(set.0, &pending.to_le_bytes()[..size])?;
    Ok(0)
}

/// Takes a pending signal of `set`, the thread's first.
fn take_from(t: &Task, set: SigSet) -> Option<SigInfo> {
    if let Some(i) = t.shared.sig.lock().pending.take(!set) {
        return Some(i);
    }
    t.tg.sig.lock().pending.take(!set)
}

pub fn rt_sigtimedwait(
    t: &mut Task,
    set: UserAddr,
    info: UserAddr,
    timeout: UserAddr,
    size: usize,
) -> SysResult {
    if size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let want: SigSet = t.mm.read_obj(set.0)?;
    let want = want & !UNBLOCKABLE;
    let deadline = if timeout.0 != 0 {
        let ts: libc::timespec = t.mm.read_obj(timeout.0)?;
        if ts.tv_nsec < 0 || ts.tv_nsec >= 1_000_000_000 || ts.tv_sec < 0 {
            return Err(Errno::EINVAL);
        }
        Some(Instant::now() + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    } else {
        None
    };
    let found = match take_from(t, want) {
        Some(i) => Some(i),
        None if deadline.is_some_and(|d| d <= Instant::now()) => return Err(Errno::EAGAIN),
        None => {
            // Wait with the awaited signals unblocked, so that they wake
            // the task; they are taken here, not delivered.
            let old = t.signal_mask();
            t.shared.sig.lock().awaited = want;
            t.set_signal_mask(old & !want);
            t.shared.waiter.reset();
            let r = loop {
                if let Some(i) = take_from(t, want) {
                    break Ok(i);
                }
                match t.sleep_until(deadline) {
                    Wake::TimedOut => break Err(Errno::EAGAIN),
                    Wake::Interrupted => {
                        t.shared.waiter.clear_interrupt();
                        if let Some(i) = take_from(t, want) {
                            break Ok(i);
                        }
                        break Err(Errno::EINTR);
                    }
                    Wake::Woken => {}
                }
            };
            t.set_signal_mask(old);
            t.shared.sig.lock().awaited = 0;
            Some(r?)
        }
    };
    let i = found.unwrap();
    if info.0 != 0 {
        t.mm.copy_out(info.0, &i.to_bytes())?;
    }
    Ok(i.signo as u64)
}

pub fn rt_sigreturn(t: &mut Task) -> SysResult {
    match t.sigreturn() {
        Ok(v) => Ok(v),
        Err(_) => {
            t.force_signal(SigInfo::new(
                libc::SIGSEGV,
                crate::kernel::signal::SI_KERNEL,
            ));
            Ok(t.regs.rax)
        }
    }
}

pub fn restart_syscall(t: &mut Task) -> SysResult {
    match t.restart_block.take() {
        Some(RestartBlock::Sleep { deadline, rem }) => super::time::sleep_to(t, deadline, rem),
        None => Err(Errno::EINTR),
    }
}
