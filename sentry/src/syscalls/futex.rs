//! futex(2): FUTEX_WAIT, FUTEX_WAKE and their bitset forms, FUTEX_REQUEUE,
//! FUTEX_CMP_REQUEUE and FUTEX_WAKE_OP, private and shared, futex_waitv,
//! and the priority-inheritance lock operations (without the priority
//! boost). Waits block on the task's waiter, so signals interrupt them.
//! The requeue-PI operations answer ENOSYS (logged): glibc uses them only
//! for condition variables on priority-inheritance mutexes.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::errno::Errno;

use super::{SysResult, UserAddr};
use crate::kernel::compat::Unsupported;
use crate::kernel::futex::FutexKey;
use crate::kernel::task::Task;
use crate::kernel::waiter::Wake;
use crate::mm::VmaKind;

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_REQUEUE: i32 = 3;
const FUTEX_CMP_REQUEUE: i32 = 4;
const FUTEX_WAKE_OP: i32 = 5;
const FUTEX_LOCK_PI: i32 = 6;
const FUTEX_UNLOCK_PI: i32 = 7;
const FUTEX_TRYLOCK_PI: i32 = 8;
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_WAIT_REQUEUE_PI: i32 = 11;
const FUTEX_CMP_REQUEUE_PI: i32 = 12;
const FUTEX_LOCK_PI2: i32 = 13;
const FUTEX_PRIVATE_FLAG: i32 = 128;
const FUTEX_CLOCK_REALTIME: i32 = 256;
const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

/// Checks a futex address as Linux's get_futex_key does: aligned (EINVAL),
/// in the user address space (EFAULT). A shared futex must also be mapped,
/// and a read-only one must not be private anonymous memory (that page can
/// never change).
fn check_key(t: &Task, uaddr: u64, private: bool) -> Result<(), Errno> {
    if !uaddr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    if !super::fs::access_ok(uaddr, 4) {
        return Err(Errno::EFAULT);
    }
    if private {
        return Ok(());
    }
    let vma =
        t.mm.vmas()
            .into_iter()
            .find(|(start, v)| *start <= uaddr && uaddr < v.end)
            .map(|(_, v)| v)
            .ok_or(Errno::EFAULT)?;
    if vma.prot.write {
        return Ok(());
    }
    let anonymous = !vma.shared() && !matches!(vma.kind, VmaKind::File(_)) && vma.file.is_none();
    if !vma.prot.read || anonymous {
        return Err(Errno::EFAULT);
    }
    Ok(())
}

/// Where an absolute FUTEX_WAIT_BITSET timeout falls, on the clock named.
fn deadline_at(d: Duration, realtime: bool) -> Instant {
    let now = if realtime {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    } else {
        let m = crate::hostcall::clock_gettime(libc::CLOCK_MONOTONIC).unwrap_or(libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        });
        Duration::new(m.tv_sec as u64, m.tv_nsec as u32)
    };
    Instant::now() + d.saturating_sub(now)
}

/// Operations Linux does not know either.
const FUTEX_UNKNOWN: Unsupported = Unsupported {
    syscall: "futex",
    argument: "operation",
    answer: Errno::ENOSYS,
};
/// The requeue-PI pair (condition variables with PI mutexes): not
/// implemented.
const FUTEX_UNIMPLEMENTED: Unsupported = Unsupported {
    syscall: "futex",
    argument: "operation",
    answer: Errno::ENOSYS,
};

pub fn futex(
    t: &mut Task,
    uaddr: UserAddr,
    op: i32,
    val: u32,
    timeout: UserAddr,
    uaddr2: UserAddr,
    val3: u32,
) -> SysResult {
    let timeout_raw = timeout.0;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    // Operations that take a timeout read and check it first.
    let takes_timeout = matches!(
        cmd,
        FUTEX_WAIT | FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI
    );
    let timeout = if timeout.0 != 0 && takes_timeout {
        let ts: libc::timespec = t.mm.read_obj(timeout.0)?;
        Some(super::time::timespec_to_duration(&ts)?)
    } else {
        None
    };
    // FUTEX_WAIT's timeout is relative; the others' absolute.
    let deadline = timeout.map(|d| match cmd {
        FUTEX_WAIT => Instant::now() + d,
        // FUTEX_LOCK_PI's timeout is on CLOCK_REALTIME, always.
        FUTEX_LOCK_PI => deadline_at(d, true),
        _ => deadline_at(d, realtime),
    });
    if realtime
        && !matches!(
            cmd,
            FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2
        )
    {
        return Err(Errno::ENOSYS);
    }
    let key = t.kernel.futexes.key(&t.mm, uaddr.0, private);
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT {
                FUTEX_BITSET_MATCH_ANY
            } else {
                val3
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            check_key(t, uaddr.0, private)?;
            futex_wait(t, key, uaddr.0, val, bitset, deadline)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE {
                FUTEX_BITSET_MATCH_ANY
            } else {
                val3
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            check_key(t, uaddr.0, private)?;
            Ok(t.kernel.futexes.wake(key, bitset, val) as u64)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            // The "timeout" argument is the number to requeue.
            let nmove = timeout_raw as u32;
            if (nmove as i32) < 0 || (val as i32) < 0 {
                return Err(Errno::EINVAL);
            }
            check_key(t, uaddr.0, private)?;
            check_key(t, uaddr2.0, private)?;
            let key2 = t.kernel.futexes.key(&t.mm, uaddr2.0, private);
            let mm = t.mm.clone();
            let n = t.kernel.futexes.requeue(key, key2, val, nmove, || {
                if cmd == FUTEX_REQUEUE {
                    return Ok(true);
                }
                let cur: u32 = mm.read_obj(uaddr.0)?;
                Ok(cur == val3)
            })?;
            Ok(n as u64)
        }
        FUTEX_WAKE_OP => {
            let nwake2 = timeout_raw as u32;
            check_key(t, uaddr.0, private)?;
            check_key(t, uaddr2.0, private)?;
            let key2 = t.kernel.futexes.key(&t.mm, uaddr2.0, private);
            let mm = t.mm.clone();
            let n = t.kernel.futexes.wake_op(key, key2, val, nwake2, || {
                let off = mm.word_offset(uaddr2.0)?;
                let op = (val3 >> 28) & 7;
                let shift = val3 & (8 << 28) != 0;
                let cmp = (val3 >> 24) & 15;
                let mut oparg = (val3 >> 12) & 0xfff;
                let cmparg = val3 & 0xfff;
                // The 12-bit arguments are signed.
                if oparg & 0x800 != 0 {
                    oparg |= 0xffff_f000;
                }
                let cmparg = if cmparg & 0x800 != 0 {
                    cmparg | 0xffff_f000
                } else {
                    cmparg
                };
                if shift {
                    if oparg > 31 {
                        // Linux warns and masks the shift.
                        oparg &= 31;
                    }
                    oparg = 1u32 << oparg;
                }
                // An unknown operation changes nothing; an unknown
                // comparison fails after the update (Linux's order).
                if op > 4 {
                    return Err(Errno::ENOSYS);
                }
                let old = mm.memory_file().update_u32(off, |v| {
                    Some(match op {
                        0 => oparg,
                        1 => v.wrapping_add(oparg),
                        2 => v | oparg,
                        3 => v & !oparg,
                        _ => v ^ oparg,
                    })
                });
                let (o, c) = (old as i32, cmparg as i32);
                if cmp > 5 {
                    return Err(Errno::ENOSYS);
                }
                Ok(match cmp {
                    0 => o == c,
                    1 => o != c,
                    2 => o < c,
                    3 => o <= c,
                    4 => o > c,
                    _ => o >= c,
                })
            })?;
            Ok(n as u64)
        }
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_TRYLOCK_PI => {
            check_key(t, uaddr.0, private)?;
            pi_lock(t, key, uaddr.0, cmd == FUTEX_TRYLOCK_PI, deadline)
        }
        FUTEX_UNLOCK_PI => {
            check_key(t, uaddr.0, private)?;
            let off = t.mm.word_offset(uaddr.0)?;
            let mf = t.mm.memory_file().clone();
            t.kernel
                .futexes
                .pi_unlock(key, t.tid as u32, |f| Ok(mf.update_u32(off, f)))?;
            Ok(0)
        }
        FUTEX_WAIT_REQUEUE_PI => FUTEX_UNIMPLEMENTED.answer(t, "FUTEX_WAIT_REQUEUE_PI"),
        FUTEX_CMP_REQUEUE_PI => FUTEX_UNIMPLEMENTED.answer(t, "FUTEX_CMP_REQUEUE_PI"),
        // Not an operation Linux knows.
        _ => FUTEX_UNKNOWN.answer(t, cmd),
    }
}

/// Blocks on the futex word at `addr` while it holds `val`.
fn futex_wait(
    t: &mut Task,
    key: FutexKey,
    addr: u64,
    val: u32,
    bitset: u32,
    deadline: Option<Instant>,
) -> SysResult {
    let mm = t.mm.clone();
    let waiter = t.shared.waiter.clone();
    waiter.reset();
    let kernel = t.kernel.clone();
    let w = kernel.futexes.enqueue(key, bitset, &waiter, || {
        let cur: u32 = mm.read_obj(addr)?;
        Ok(cur == val)
    })?;
    loop {
        if w.woken() {
            return Ok(0);
        }
        match t.sleep_until(deadline) {
            Wake::Woken => {}
            Wake::Interrupted => {
                if !kernel.futexes.dequeue(&w) {
                    return Ok(0);
                }
                return Err(Errno::ERESTARTSYS);
            }
            Wake::TimedOut => {
                if !kernel.futexes.dequeue(&w) {
                    return Ok(0);
                }
                return Err(Errno::ETIMEDOUT);
            }
        }
    }
}

/// `struct futex_waitv`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

// SAFETY: integer fields, no padding (8 + 8 + 4 + 4 bytes).
unsafe impl crate::mm::io::Pod for FutexWaitv {}

const FUTEX2_SIZE_U32: u32 = 0x02;
const FUTEX2_PRIVATE: u32 = 128;
const FUTEX_WAITV_MAX: u32 = 128;

/// futex_waitv(2): waits on up to 128 futexes at once; returns the index
/// of one that was woken.
pub fn futex_waitv(
    t: &mut Task,
    waiters: UserAddr,
    nr: u32,
    flags: u32,
    timeout: UserAddr,
    clockid: i32,
) -> SysResult {
    if flags != 0 || nr == 0 || nr > FUTEX_WAITV_MAX || waiters.0 == 0 {
        return Err(Errno::EINVAL);
    }
    let deadline = if timeout.0 != 0 {
        if clockid != libc::CLOCK_MONOTONIC && clockid != libc::CLOCK_REALTIME {
            return Err(Errno::EINVAL);
        }
        let ts: libc::timespec = t.mm.read_obj(timeout.0)?;
        let d = super::time::timespec_to_duration(&ts)?;
        Some(deadline_at(d, clockid == libc::CLOCK_REALTIME))
    } else {
        None
    };
    let mut list = Vec::with_capacity(nr as usize);
    for i in 0..nr as u64 {
        let w: FutexWaitv = t.mm.read_obj(waiters.0 + i * 24)?;
        if w.reserved != 0 || w.flags & !(FUTEX2_SIZE_U32 | FUTEX2_PRIVATE) != 0 {
            return Err(Errno::EINVAL);
        }
        if w.flags & FUTEX2_SIZE_U32 == 0 {
            return Err(Errno::EINVAL);
        }
        if w.val > u32::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        let private = w.flags & FUTEX2_PRIVATE != 0;
        check_key(t, w.uaddr, private)?;
        list.push((
            t.kernel.futexes.key(&t.mm, w.uaddr, private),
            w.uaddr,
            w.val as u32,
        ));
    }
    let kernel = t.kernel.clone();
    let mm = t.mm.clone();
    let waiter = t.shared.waiter.clone();
    waiter.reset();
    let mut queued = Vec::with_capacity(list.len());
    let unqueue = |queued: &[Arc<crate::kernel::futex::FutexWaiter>]| -> Option<usize> {
        let mut woken = None;
        for (i, w) in queued.iter().enumerate() {
            if !kernel.futexes.dequeue(w) && woken.is_none() {
                woken = Some(i);
            }
        }
        woken
    };
    for &(key, addr, val) in &list {
        match kernel.futexes.enqueue(key, u32::MAX, &waiter, || {
            let cur: u32 = mm.read_obj(addr)?;
            Ok(cur == val)
        }) {
            Ok(w) => queued.push(w),
            Err(e) => {
                // One word already changed: nothing waits (unless a wake
                // for an earlier one came first).
                if let Some(i) = unqueue(&queued) {
                    return Ok(i as u64);
                }
                return Err(e);
            }
        }
    }
    loop {
        if queued.iter().any(|w| w.woken()) {
            return Ok(unqueue(&queued).unwrap_or(0) as u64);
        }
        match t.sleep_until(deadline) {
            Wake::Woken => {}
            Wake::Interrupted => {
                return match unqueue(&queued) {
                    Some(i) => Ok(i as u64),
                    None => Err(Errno::ERESTARTSYS),
                }
            }
            Wake::TimedOut => {
                return match unqueue(&queued) {
                    Some(i) => Ok(i as u64),
                    None => Err(Errno::ETIMEDOUT),
                }
            }
        }
    }
}

/// FUTEX_LOCK_PI, FUTEX_LOCK_PI2 and FUTEX_TRYLOCK_PI. The lock is taken
/// when its word holds no owner; otherwise the caller marks it
/// FUTEX_WAITERS and sleeps until an unlock wakes it to try again. The
/// sentry does not boost the owner's priority: its tasks have none that
/// the host scheduler would see.
fn pi_lock(
    t: &mut Task,
    key: FutexKey,
    addr: u64,
    try_only: bool,
    deadline: Option<Instant>,
) -> SysResult {
    use crate::kernel::futex::PiAttempt;
    let off = t.mm.word_offset(addr)?;
    let mf = t.mm.memory_file().clone();
    let kernel = t.kernel.clone();
    let waiter = t.shared.waiter.clone();
    loop {
        waiter.reset();
        let r = kernel
            .futexes
            .pi_attempt(key, t.tid as u32, &waiter, !try_only, |f| {
                Ok(mf.update_u32(off, f))
            })?;
        let (w, owner) = match r {
            Some(PiAttempt::Taken) => return Ok(0),
            Some(PiAttempt::Deadlock) => return Err(Errno::EDEADLK),
            None => {
                // Busy: with an owner that exists, EAGAIN; else ESRCH.
                let v: u32 = t.mm.read_obj(addr)?;
                let owner = (v & crate::kernel::futex::FUTEX_TID_MASK) as i32;
                if kernel.tasks.lock().tasks.contains_key(&owner) {
                    return Err(Errno::EAGAIN);
                }
                return Err(Errno::ESRCH);
            }
            Some(PiAttempt::Queued(w, owner)) => (w, owner),
        };
        // An owner that does not exist can never unlock.
        if !kernel.tasks.lock().tasks.contains_key(&owner) {
            kernel.futexes.dequeue(&w);
            return Err(Errno::ESRCH);
        }
        loop {
            if w.woken() {
                break;
            }
            match t.sleep_until(deadline) {
                Wake::Woken => {}
                Wake::Interrupted => {
                    if kernel.futexes.dequeue(&w) {
                        // Linux restarts an interrupted PI lock.
                        return Err(Errno::ERESTARTNOINTR);
                    }
                    break;
                }
                Wake::TimedOut => {
                    if kernel.futexes.dequeue(&w) {
                        return Err(Errno::ETIMEDOUT);
                    }
                    break;
                }
            }
        }
    }
}
