//! epoll_create, epoll_create1, epoll_ctl, epoll_wait, epoll_pwait and
//! epoll_pwait2 (the instances are `fsimpl/epoll.rs`).

use std::time::{Duration, Instant};

use crate::errno::Errno;

use super::fs::access_ok;
use super::{Fd, Hex, SysResult, UserAddr};
use crate::fsimpl::epoll::{self, epoll_of, Event, EventPoll, Op};
use crate::kernel::task::Task;
use crate::kernel::waiter::ALL_EVENTS;

/// The size of `struct epoll_event` (packed on x86-64).
const EVENT_SIZE: usize = 12;
/// Linux's EP_MAX_EVENTS.
const EP_MAX_EVENTS: i32 = i32::MAX / EVENT_SIZE as i32;

fn create(t: &mut Task, cloexec: bool) -> SysResult {
    let f = EventPoll::new_file();
    let limit = crate::kernel::task::lock_limits(&t.tg).cur(libc::RLIMIT_NOFILE);
    let fd = t.fds.install(f, cloexec, 0, limit).map_err(|e| {
        if e == Errno::EINVAL {
            Errno::EMFILE
        } else {
            e
        }
    })?;
    Ok(fd as u64)
}

pub fn epoll_create(t: &mut Task, size: i32) -> SysResult {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    create(t, false)
}

pub fn epoll_create1(t: &mut Task, flags: Hex) -> SysResult {
    let flags = flags.0 as i32;
    if flags & !libc::EPOLL_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    create(t, flags & libc::EPOLL_CLOEXEC != 0)
}

/// Reads a `struct epoll_event`.
fn read_event(t: &Task, addr: u64) -> Result<Event, Errno> {
    let mut raw = [0u8; EVENT_SIZE];
    t.mm.copy_in(addr, &mut raw)?;
    Ok(Event {
        events: u32::from_le_bytes(raw[0..4].try_into().unwrap()),
        data: u64::from_le_bytes(raw[4..12].try_into().unwrap()),
    })
}

pub fn epoll_ctl(t: &mut Task, epfd: Fd, op: i32, fd: Fd, event: UserAddr) -> SysResult {
    let op = match op {
        libc::EPOLL_CTL_ADD => Op::Add,
        libc::EPOLL_CTL_DEL => Op::Del,
        libc::EPOLL_CTL_MOD => Op::Mod,
        _ => Op::Other,
    };
    // Linux's order: the event is read first, then both fds.
    let mut ev = if op != Op::Del {
        read_event(t, event.0)?
    } else {
        Event { events: 0, data: 0 }
    };
    let f = super::attr::get_file(t, epfd.0)?;
    let tf = super::attr::get_file(t, fd.0)?;
    // A file that cannot be polled cannot be watched (regular files,
    // directories, most devices).
    if tf.imp.waitq(&tf).is_none() {
        return Err(Errno::EPERM);
    }
    // EPOLLWAKEUP keeps a system from suspending; a sandbox has no
    // system sleep, and Linux without one (CONFIG_PM_SLEEP) drops it.
    if op != Op::Del {
        ev.events &= !epoll::EPOLLWAKEUP;
    }
    if std::sync::Arc::ptr_eq(&f, &tf) {
        return Err(Errno::EINVAL);
    }
    let Some(ep) = epoll_of(&f) else {
        return Err(Errno::EINVAL);
    };
    // EPOLLEXCLUSIVE only at ADD, on a file that is not an instance, with
    // few other bits.
    if op != Op::Del && ev.events & epoll::EPOLLEXCLUSIVE != 0 {
        if op == Op::Mod {
            return Err(Errno::EINVAL);
        }
        if op == Op::Add
            && (epoll_of(&tf).is_some() || ev.events & !epoll::EPOLLEXCLUSIVE_OK_BITS != 0)
        {
            return Err(Errno::EINVAL);
        }
    }
    ep.ctl(op, fd.0, &tf, ev)?;
    Ok(0)
}

/// Writes `events` to the guest's array at `addr`; how many were
/// written (fewer when the array faults part-way).
fn copy_events(t: &Task, addr: u64, events: &[Event]) -> usize {
    let mut raw = Vec::with_capacity(events.len() * EVENT_SIZE);
    for e in events {
        raw.extend_from_slice(&e.events.to_le_bytes());
        raw.extend_from_slice(&e.data.to_le_bytes());
    }
    if t.mm.copy_out(addr, &raw).is_ok() {
        return events.len();
    }
    raw.chunks(EVENT_SIZE)
        .enumerate()
        .take_while(|(i, c)| t.mm.copy_out(addr + (i * EVENT_SIZE) as u64, c).is_ok())
        .count()
}

/// Linux's `do_epoll_wait` and `ep_poll`: `timeout` None waits for ever,
/// zero does not wait.
fn do_wait(
    t: &mut Task,
    epfd: Fd,
    events: u64,
    maxevents: i32,
    timeout: Option<Duration>,
) -> SysResult {
    let f = super::attr::get_file(t, epfd.0)?;
    if maxevents <= 0 || maxevents > EP_MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    if !access_ok(events, maxevents as u64 * EVENT_SIZE as u64) {
        return Err(Errno::EFAULT);
    }
    let Some(ep) = epoll_of(&f) else {
        return Err(Errno::EINVAL);
    };
    let deadline = match timeout {
        Some(d) if !d.is_zero() => Some(
            Instant::now()
                .checked_add(d)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86400)),
        ),
        _ => None,
    };
    let mut timed_out = timeout.is_some_and(|d| d.is_zero());
    let mut available = ep.events_available();
    loop {
        if available {
            let (got, reported) = ep.send_events(maxevents as usize);
            if !got.is_empty() {
                let n = copy_events(t, events, &got);
                if n < got.len() {
                    ep.unreport(&reported[n..]);
                }
                if n == 0 {
                    return Err(Errno::EFAULT);
                }
                return Ok(n as u64);
            }
        }
        if timed_out {
            return Ok(0);
        }
        let q = ep.wait_queue();
        match t.block_on(&[(q, ALL_EVENTS)], deadline, |_| {
            ep.events_available().then_some(Ok(()))
        }) {
            Ok(()) => available = true,
            Err(Errno::ETIMEDOUT) => {
                timed_out = true;
                available = ep.events_available();
            }
            // Never restarted after a handler (Linux answers EINTR);
            // restarted when no handler runs.
            Err(Errno::ERESTARTSYS) => return Err(Errno::ERESTARTNOHAND),
            Err(e) => return Err(e),
        }
    }
}

/// epoll_wait's timeout in milliseconds: negative waits for ever.
fn ms_timeout(ms: i32) -> Option<Duration> {
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

pub fn epoll_wait(
    t: &mut Task,
    epfd: Fd,
    events: UserAddr,
    maxevents: i32,
    timeout: i32,
) -> SysResult {
    do_wait(t, epfd, events.0, maxevents, ms_timeout(timeout))
}

/// Sets the mask of epoll_pwait and epoll_pwait2 for the wait (Linux's
/// `set_user_sigmask`).
fn set_wait_mask(t: &mut Task, sigmask: UserAddr, sigsetsize: usize) -> Result<(), Errno> {
    if sigmask.0 == 0 {
        return Ok(());
    }
    if sigsetsize != 8 {
        return Err(Errno::EINVAL);
    }
    let m: u64 = t.mm.read_obj(sigmask.0)?;
    t.set_temporary_mask(m);
    Ok(())
}

/// Puts the caller's mask back unless a signal interrupted the wait: then
/// the signal is delivered in the wait's mask, and the handler's return
/// restores it (Linux's `restore_saved_sigmask_unless`).
fn finish_wait(t: &mut Task, r: SysResult) -> SysResult {
    if r != Err(Errno::ERESTARTNOHAND) {
        let saved = t.shared.sig.lock().saved_mask.take();
        if let Some(m) = saved {
            t.set_signal_mask(m);
        }
    }
    r
}

pub fn epoll_pwait(
    t: &mut Task,
    epfd: Fd,
    events: UserAddr,
    maxevents: i32,
    timeout: i32,
    sigmask: UserAddr,
    sigsetsize: usize,
) -> SysResult {
    set_wait_mask(t, sigmask, sigsetsize)?;
    let r = do_wait(t, epfd, events.0, maxevents, ms_timeout(timeout));
    finish_wait(t, r)
}

pub fn epoll_pwait2(
    t: &mut Task,
    epfd: Fd,
    events: UserAddr,
    maxevents: i32,
    timeout: UserAddr,
    sigmask: UserAddr,
    sigsetsize: usize,
) -> SysResult {
    let timeout = if timeout.0 == 0 {
        None
    } else {
        let ts: libc::timespec = t.mm.read_obj(timeout.0)?;
        if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    };
    set_wait_mask(t, sigmask, sigsetsize)?;
    let r = do_wait(t, epfd, events.0, maxevents, timeout);
    finish_wait(t, r)
}
