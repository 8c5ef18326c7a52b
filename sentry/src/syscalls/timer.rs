//! Timers: setitimer, getitimer, alarm, and POSIX timers (timer_create,
//! timer_settime, timer_gettime, timer_getoverrun, timer_delete).
//!
//! The timers themselves are the kernel's ([`crate::kernel::timer`]);
//! these handlers check and convert what the guest passes, in Linux's
//! order, so that each bad argument gets the errno Linux gives it.

use std::sync::Arc;

use crate::errno::Errno;
use crate::kernel::task::Task;
use crate::kernel::timer::{
    self, CpuTarget, Notify, Setting, Timer, TimerClock, ITIMER_PROF, ITIMER_REAL, ITIMER_VIRTUAL,
};

use super::time::{cpu_clock_valid, decode, jiffy_res, read_clock, Clock, CpuWhich};
use super::{SysResult, UserAddr};

const NSEC_PER_SEC: u64 = 1_000_000_000;

/// TICK_NSEC: what the kernel adds to a CPU itimer, and reports as the
/// time left of one about to fire.
fn tick_ns() -> u64 {
    jiffy_res().tv_nsec as u64
}

// ----- setitimer, getitimer, alarm -----

/// A timeval pair (`struct itimerval`: interval, then value) in ns;
/// EINVAL unless both are valid.
fn read_itimerval(t: &Task, addr: u64) -> Result<Setting, Errno> {
    let v: [u64; 4] = t.mm.read_obj(addr)?;
    let tv = |sec: u64, usec: u64| {
        if (sec as i64) < 0 || usec >= 1_000_000 {
            return Err(Errno::EINVAL);
        }
        Ok(sec.saturating_mul(NSEC_PER_SEC).saturating_add(usec * 1000))
    };
    Ok(Setting {
        interval: tv(v[0], v[1])?,
        value: tv(v[2], v[3])?,
    })
}

fn write_itimerval(t: &Task, addr: u64, s: Setting) -> Result<(), Errno> {
    let tv = |ns: u64| [ns / NSEC_PER_SEC, (ns % NSEC_PER_SEC) / 1000];
    let (i, v) = (tv(s.interval), tv(s.value));
    t.mm.write_obj(addr, &[i[0], i[1], v[0], v[1]])
}

/// The process's itimer `which`, made on first use.
fn itimer(t: &Task, which: usize) -> Arc<Timer> {
    let mut it = t.tg.timers.itimers.lock();
    it[which]
        .get_or_insert_with(|| {
            let process = CpuTarget::Process(Arc::downgrade(&t.tg));
            let (clock, sig) = match which {
                ITIMER_REAL => (TimerClock::Wall(libc::CLOCK_MONOTONIC), libc::SIGALRM),
                ITIMER_VIRTUAL => (
                    TimerClock::Cpu {
                        target: process,
                        user_only: true,
                    },
                    libc::SIGVTALRM,
                ),
                _ => (
                    TimerClock::Cpu {
                        target: process,
                        user_only: false,
                    },
                    libc::SIGPROF,
                ),
            };
            Timer::new(&t.kernel, &t.tg, clock, Notify::Itimer(sig))
        })
        .clone()
}

fn itimer_which(which: i32) -> Result<usize, Errno> {
    match which {
        0 => Ok(ITIMER_REAL),
        1 => Ok(ITIMER_VIRTUAL),
        2 => Ok(ITIMER_PROF),
        _ => Err(Errno::EINVAL),
    }
}

/// What getitimer reports. ITIMER_REAL's time left is at least 1 us
/// while armed; a CPU itimer about to fire reports a tick.
fn itimer_get(t: &Task, which: usize) -> Setting {
    let existing = t.tg.timers.itimers.lock()[which].clone();
    match existing {
        None => Setting::default(),
        Some(tm) if which == ITIMER_REAL => tm.get(1000),
        Some(tm) => tm.get(tick_ns()),
    }
}

/// Sets itimer `which`; returns the old setting.
fn itimer_set(t: &Task, which: usize, new: Setting) -> Setting {
    let old = itimer_get(t, which);
    if new.value == 0 && old == Setting::default() && new.interval == 0 {
        return old;
    }
    let tm = itimer(t, which);
    if which == ITIMER_REAL {
        if new.value == 0 {
            tm.set(None, 0);
        } else {
            tm.set(
                Some(timer::mono_now().saturating_add(new.value)),
                new.interval,
            );
        }
    } else if new.value == 0 {
        // A CPU itimer keeps its interval, armed or not.
        tm.set(None, 0);
        tm.set_interval_only(new.interval);
    } else {
        let at = tm.now().saturating_add(new.value).saturating_add(tick_ns());
        tm.set(Some(at), new.interval);
    }
    old
}

pub fn setitimer(t: &mut Task, which: i32, new: UserAddr, old: UserAddr) -> SysResult {
    // A NULL new value disarms, as Linux still accepts.
    let new = if new.0 != 0 {
        read_itimerval(t, new.0)?
    } else {
        Setting::default()
    };
    let which = itimer_which(which)?;
    let prev = itimer_set(t, which, new);
    if old.0 != 0 {
        write_itimerval(t, old.0, prev)?;
    }
    Ok(0)
}

pub fn getitimer(t: &mut Task, which: i32, cur: UserAddr) -> SysResult {
    let which = itimer_which(which)?;
    let s = itimer_get(t, which);
    write_itimerval(t, cur.0, s)?;
    Ok(0)
}

pub fn alarm(t: &mut Task, secs: u32) -> SysResult {
    let old = itimer_set(
        t,
        ITIMER_REAL,
        Setting {
            value: secs as u64 * NSEC_PER_SEC,
            interval: 0,
        },
    );
    // Never 0 while an alarm is pending; half a second or more rounds up.
    let (s, ns) = (old.value / NSEC_PER_SEC, old.value % NSEC_PER_SEC);
    let up = (s == 0 && ns != 0) || ns >= NSEC_PER_SEC / 2;
    Ok(s + up as u64)
}

// ----- POSIX timers -----

const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD: i32 = 2;
const SIGEV_THREAD_ID: i32 = 4;
/// CAP_WAKE_ALARM.
const CAP_WAKE_ALARM: u32 = 35;

fn valid_timer_signal(signo: i32) -> Result<(), Errno> {
    crate::kernel::signal::valid_signal(signo)
}

/// The kernel's good_sigevent: what the timer does, or EINVAL.
fn sigevent_notify(t: &Task, ev: &[u8; 64], id: i32) -> Result<Notify, Errno> {
    let value = u64::from_le_bytes(ev[0..8].try_into().unwrap());
    let signo = i32::from_le_bytes(ev[8..12].try_into().unwrap());
    let notify = i32::from_le_bytes(ev[12..16].try_into().unwrap());
    let tid = i32::from_le_bytes(ev[16..20].try_into().unwrap());
    match notify {
        n if n == SIGEV_SIGNAL | SIGEV_THREAD_ID => {
            let th = if tid == t.tid {
                Some(t.shared.clone())
            } else {
                t.kernel.tasks.lock().tasks.get(&tid).cloned()
            };
            let th = th
                .filter(|th| th.tg.tgid == t.tg.tgid)
                .ok_or(Errno::EINVAL)?;
            valid_timer_signal(signo)?;
            Ok(Notify::Signal {
                signo,
                id,
                value,
                thread: Some(Arc::downgrade(&th)),
            })
        }
        // SIGEV_THREAD is the C library's: to the kernel, a signal.
        SIGEV_SIGNAL | SIGEV_THREAD => {
            valid_timer_signal(signo)?;
            Ok(Notify::Signal {
                signo,
                id,
                value,
                thread: None,
            })
        }
        SIGEV_NONE => Ok(Notify::None),
        _ => Err(Errno::EINVAL),
    }
}

pub fn timer_create(t: &mut Task, clock: i32, sevp: UserAddr, idp: UserAddr) -> SysResult {
    let ev: Option<[u8; 64]> = match sevp.0 {
        0 => None,
        a => Some(t.mm.read_obj(a)?),
    };
    let kind = decode(clock)?;
    match kind {
        Clock::Host(
            libc::CLOCK_REALTIME
            | libc::CLOCK_MONOTONIC
            | libc::CLOCK_BOOTTIME
            | libc::CLOCK_TAI
            | libc::CLOCK_REALTIME_ALARM
            | libc::CLOCK_BOOTTIME_ALARM,
        )
        | Clock::Cpu { .. } => {}
        Clock::Host(_) | Clock::Fd => return Err(Errno::EOPNOTSUPP),
    }
    // From here on the id is used up, whatever fails.
    let id = t.tg.timers.posix.lock().alloc_id().ok_or(Errno::EAGAIN)?;
    let notify = match ev {
        Some(ev) => sigevent_notify(t, &ev, id)?,
        None => Notify::Signal {
            signo: libc::SIGALRM,
            id,
            value: id as u64,
            thread: None,
        },
    };
    t.mm.write_obj(idp.0, &id)?;
    let tclock = match kind {
        Clock::Host(c @ (libc::CLOCK_REALTIME_ALARM | libc::CLOCK_BOOTTIME_ALARM)) => {
            // Alarm timers need a real-time clock device: the host has
            // one when it can say their resolution.
            if crate::hostcall::clock_getres(c).is_err() {
                return Err(Errno::EOPNOTSUPP);
            }
            if !t.creds.has_cap(CAP_WAKE_ALARM) {
                return Err(Errno::EPERM);
            }
            TimerClock::Wall(c)
        }
        Clock::Host(c) => TimerClock::Wall(c),
        Clock::Cpu { which, pid, thread } => cpu_timer_clock(t, which, pid, thread)?,
        Clock::Fd => return Err(Errno::EOPNOTSUPP),
    };
    let tm = Timer::new(&t.kernel, &t.tg, tclock, notify);
    t.tg.timers.posix.lock().map.insert(id, tm);
    Ok(0)
}

/// The clock of a CPU-time timer or sleep: the thread or process it
/// counts, checked as the kernel's pid_for_clock does.
pub(super) fn cpu_timer_clock(
    t: &Task,
    which: Option<CpuWhich>,
    pid: i32,
    thread: bool,
) -> Result<TimerClock, Errno> {
    let which = cpu_clock_valid(t, which, pid, thread)?;
    let target = if thread {
        let th = if pid == 0 || pid == t.tid {
            Some(t.shared.clone())
        } else {
            t.kernel.tasks.lock().tasks.get(&pid).cloned()
        };
        CpuTarget::Thread(Arc::downgrade(&th.ok_or(Errno::EINVAL)?))
    } else if pid == 0 || pid == t.tg.tgid {
        CpuTarget::Process(Arc::downgrade(&t.tg))
    } else {
        let tg = super::process::process_tg(t, pid).ok_or(Errno::EINVAL)?;
        CpuTarget::Process(Arc::downgrade(&tg))
    };
    Ok(TimerClock::Cpu {
        target,
        user_only: which == CpuWhich::Virt,
    })
}

fn lookup(t: &Task, id: i32) -> Result<Arc<Timer>, Errno> {
    t.tg.timers
        .posix
        .lock()
        .map
        .get(&id)
        .cloned()
        .ok_or(Errno::EINVAL)
}

fn write_itimerspec(t: &Task, addr: u64, s: Setting) -> Result<(), Errno> {
    let v = [
        s.interval / NSEC_PER_SEC,
        s.interval % NSEC_PER_SEC,
        s.value / NSEC_PER_SEC,
        s.value % NSEC_PER_SEC,
    ];
    t.mm.write_obj(addr, &v)
}

/// A timespec in ns, EINVAL unless valid.
fn timespec_ns(sec: u64, nsec: u64) -> Result<u64, Errno> {
    if (sec as i64) < 0 || nsec >= NSEC_PER_SEC {
        return Err(Errno::EINVAL);
    }
    Ok(sec.saturating_mul(NSEC_PER_SEC).saturating_add(nsec))
}

/// `ns` on clock `clock` (as the guest reads it), on the monotonic
/// timeline the timer queue keeps.
fn wall_to_mono(t: &Task, clock: i32, ns: u64) -> u64 {
    let now = read_clock(t, clock)
        .map(|ts| ts.tv_sec as u64 * NSEC_PER_SEC + ts.tv_nsec as u64)
        .unwrap_or(0);
    timer::mono_now().saturating_add(ns.saturating_sub(now))
}

pub fn timer_settime(t: &mut Task, id: i32, flags: i32, new: UserAddr, old: UserAddr) -> SysResult {
    if new.0 == 0 {
        return Err(Errno::EINVAL);
    }
    let v: [u64; 4] = t.mm.read_obj(new.0)?;
    let interval = timespec_ns(v[0], v[1])?;
    let value = timespec_ns(v[2], v[3])?;
    let tm = lookup(t, id)?;
    let prev = tm.get(1);
    if value == 0 {
        tm.set(None, 0);
    } else {
        let abs = flags & libc::TIMER_ABSTIME != 0;
        let at = match (tm.clock(), abs) {
            (TimerClock::Wall(c), true) => wall_to_mono(t, *c, value),
            (TimerClock::Wall(_), false) => timer::mono_now().saturating_add(value),
            (TimerClock::Cpu { .. }, true) => value,
            (TimerClock::Cpu { .. }, false) => tm.now().saturating_add(value),
        };
        tm.set(Some(at), interval);
    }
    if old.0 != 0 {
        write_itimerspec(t, old.0, prev)?;
    }
    Ok(0)
}

pub fn timer_gettime(t: &mut Task, id: i32, cur: UserAddr) -> SysResult {
    let tm = lookup(t, id)?;
    write_itimerspec(t, cur.0, tm.get(1))?;
    Ok(0)
}

pub fn timer_getoverrun(t: &mut Task, id: i32) -> SysResult {
    Ok(lookup(t, id)?.overrun() as u64)
}

pub fn timer_delete(t: &mut Task, id: i32) -> SysResult {
    let tm = t.tg.timers.posix.lock().map.remove(&id);
    tm.ok_or(Errno::EINVAL)?.delete();
    Ok(0)
}
