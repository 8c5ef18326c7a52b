//! Clocks and sleeping: clock_gettime, clock_getres, gettimeofday, time,
//! nanosleep, clock_nanosleep.
//!
//! Wall and monotonic clocks are the host's (the sentry reads them through
//! its own vDSO); CPU-time clocks count the time the task ran guest code
//! and the time the sentry spent on its behalf.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;

use super::{Hex, SysResult, UserAddr};
use crate::kernel::task::Task;

pub fn timespec_to_duration(ts: &libc::timespec) -> Result<Duration, Errno> {
    if ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1_000_000_000 {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

fn duration_to_timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos() as i64,
    }
}

const HOST_CLOCKS: &[i32] = &[
    libc::CLOCK_REALTIME,
    libc::CLOCK_MONOTONIC,
    libc::CLOCK_MONOTONIC_RAW,
    libc::CLOCK_REALTIME_COARSE,
    libc::CLOCK_MONOTONIC_COARSE,
    libc::CLOCK_BOOTTIME,
    libc::CLOCK_REALTIME_ALARM,
    libc::CLOCK_BOOTTIME_ALARM,
    libc::CLOCK_TAI,
];

fn host_clock(clock: i32) -> Result<libc::timespec, Errno> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec to &mut ts.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(Errno::last());
    }
    Ok(ts)
}

fn read_clock(t: &Task, clock: i32) -> Result<libc::timespec, Errno> {
    match clock {
        libc::CLOCK_PROCESS_CPUTIME_ID | libc::CLOCK_THREAD_CPUTIME_ID => {
            Ok(duration_to_timespec(t.user_time + t.sys_time))
        }
        c if HOST_CLOCKS.contains(&c) => host_clock(c),
        // Negative ids name other processes' CPU clocks; none are offered
        // yet beyond the caller's own ids above.
        _ => Err(Errno::EINVAL),
    }
}

pub fn clock_gettime(t: &mut Task, clock: i32, tp: UserAddr) -> SysResult {
    let ts = read_clock(t, clock)?;
    t.mm.write_obj(tp.0, &ts)?;
    Ok(0)
}

pub fn clock_getres(t: &mut Task, clock: i32, res: UserAddr) -> SysResult {
    let r = match clock {
        libc::CLOCK_PROCESS_CPUTIME_ID | libc::CLOCK_THREAD_CPUTIME_ID => libc::timespec {
            tv_sec: 0,
            tv_nsec: 1,
        },
        c if HOST_CLOCKS.contains(&c) => {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: writes one timespec to &mut ts.
            if unsafe { libc::clock_getres(c, &mut ts) } != 0 {
                return Err(Errno::last());
            }
            ts
        }
        _ => return Err(Errno::EINVAL),
    };
    if res.0 != 0 {
        t.mm.write_obj(res.0, &r)?;
    }
    Ok(0)
}

pub fn gettimeofday(t: &mut Task, tv: UserAddr, tz: UserAddr) -> SysResult {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    if tv.0 != 0 {
        let v = libc::timeval {
            tv_sec: now.as_secs() as i64,
            tv_usec: now.subsec_micros() as i64,
        };
        t.mm.write_obj(tv.0, &v)?;
    }
    if tz.0 != 0 {
        // struct timezone: minutes west and dst type, both zero (UTC).
        t.mm.write_obj(tz.0, &[0u8; 8])?;
    }
    Ok(0)
}

pub fn time(t: &mut Task, tloc: UserAddr) -> SysResult {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if tloc.0 != 0 {
        t.mm.write_obj(tloc.0, &now)?;
    }
    Ok(now)
}

fn sleep_until_clock(clock: i32, deadline: &libc::timespec) {
    loop {
        // SAFETY: sleeps the calling sentry thread; deadline is valid.
        let r = unsafe {
            libc::clock_nanosleep(clock, libc::TIMER_ABSTIME, deadline, std::ptr::null_mut())
        };
        if r != libc::EINTR {
            return;
        }
    }
}

pub fn nanosleep(t: &mut Task, req: UserAddr, _rem: UserAddr) -> SysResult {
    let ts: libc::timespec = t.mm.read_obj(req.0)?;
    let d = timespec_to_duration(&ts)?;
    std::thread::sleep(d);
    Ok(0)
}

pub fn clock_nanosleep(
    t: &mut Task,
    clock: i32,
    flags: Hex,
    req: UserAddr,
    _rem: UserAddr,
) -> SysResult {
    let ts: libc::timespec = t.mm.read_obj(req.0)?;
    let d = timespec_to_duration(&ts)?;
    match clock {
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME | libc::CLOCK_TAI => {}
        libc::CLOCK_PROCESS_CPUTIME_ID => return Err(Errno::EINVAL),
        libc::CLOCK_THREAD_CPUTIME_ID => return Err(Errno::EINVAL),
        c if HOST_CLOCKS.contains(&c) => return Err(Errno::EOPNOTSUPP),
        _ => return Err(Errno::EINVAL),
    }
    if flags.0 & libc::TIMER_ABSTIME as u64 != 0 {
        sleep_until_clock(clock, &ts);
    } else {
        std::thread::sleep(d);
    }
    Ok(0)
}
