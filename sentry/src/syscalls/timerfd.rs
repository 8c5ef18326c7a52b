//! timerfd_create, timerfd_settime and timerfd_gettime (the files are
//! `fsimpl/timerfd.rs`).

use std::sync::Arc;

use crate::errno::Errno;

use super::{Fd, Hex, SysResult, UserAddr};
use crate::fsimpl::timerfd::{Setting, TimerFd};
use crate::kernel::task::Task;
use crate::vfs::FileDescription;

const TFD_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
const TFD_NONBLOCK: u32 = libc::O_NONBLOCK as u32;
const TFD_TIMER_ABSTIME: u32 = 1;
/// Accepted as Linux does; the sandbox's CLOCK_REALTIME cannot be set
/// from inside (clock_settime is not implemented), so nothing cancels.
const TFD_TIMER_CANCEL_ON_SET: u32 = 2;
const CAP_WAKE_ALARM: u32 = 35;

fn is_alarm(clock: i32) -> bool {
    clock == libc::CLOCK_REALTIME_ALARM || clock == libc::CLOCK_BOOTTIME_ALARM
}

pub fn timerfd_create(t: &mut Task, clock: i32, flags: Hex) -> SysResult {
    let flags = flags.0 as u32;
    if flags & !(TFD_CLOEXEC | TFD_NONBLOCK) != 0
        || !matches!(
            clock,
            libc::CLOCK_MONOTONIC
                | libc::CLOCK_REALTIME
                | libc::CLOCK_REALTIME_ALARM
                | libc::CLOCK_BOOTTIME
                | libc::CLOCK_BOOTTIME_ALARM
        )
    {
        return Err(Errno::EINVAL);
    }
    if is_alarm(clock) && !t.creds.has_cap(CAP_WAKE_ALARM) {
        return Err(Errno::EPERM);
    }
    let timers = (*t.kernel.timers).clone();
    let vdso = t.mm.memory_file().vdso().ok();
    let f = FileDescription::new(
        libc::O_RDWR as u32 | (flags & TFD_NONBLOCK),
        Box::new(TimerFd::new(clock, timers, vdso)),
    );
    let limit = crate::kernel::task::lock_limits(&t.tg).cur(libc::RLIMIT_NOFILE);
    let fd = t
        .fds
        .install(f, flags & TFD_CLOEXEC != 0, 0, limit)
        .map_err(|e| if e == Errno::EINVAL { Errno::EMFILE } else { e })?;
    Ok(fd as u64)
}

/// The timerfd open at `fd`: EBADF if none is open, EINVAL if it is
/// another kind of file.
fn timerfd(t: &Task, fd: Fd) -> Result<Arc<FileDescription>, Errno> {
    let f = super::attr::get_file(t, fd.0)?;
    if f.imp
        .as_any()
        .and_then(|a| a.downcast_ref::<TimerFd>())
        .is_none()
    {
        return Err(Errno::EINVAL);
    }
    Ok(f)
}

fn as_timerfd(f: &FileDescription) -> &TimerFd {
    f.imp
        .as_any()
        .and_then(|a| a.downcast_ref::<TimerFd>())
        .expect("checked by timerfd()")
}

/// A timespec as nanoseconds, if valid (Linux's `timespec64_valid`).
fn ts_ns(ts: &libc::timespec) -> Option<u64> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return None;
    }
    Some(
        (ts.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec as u64),
    )
}

fn write_setting(t: &Task, addr: u64, s: Setting) -> Result<(), Errno> {
    // struct itimerspec: it_interval, then it_value.
    let v: [u64; 4] = [
        s.interval / 1_000_000_000,
        s.interval % 1_000_000_000,
        s.value / 1_000_000_000,
        s.value % 1_000_000_000,
    ];
    t.mm.write_obj(addr, &v)
}

pub fn timerfd_settime(
    t: &mut Task,
    fd: Fd,
    flags: Hex,
    new: UserAddr,
    old: UserAddr,
) -> SysResult {
    let raw: [u64; 4] = t.mm.read_obj(new.0)?;
    let ts = |sec: u64, nsec: u64| libc::timespec {
        tv_sec: sec as i64,
        tv_nsec: nsec as i64,
    };
    let (interval, value) = (ts(raw[0], raw[1]), ts(raw[2], raw[3]));
    let flags = flags.0 as u32;
    let (Some(value), Some(interval)) = (ts_ns(&value), ts_ns(&interval)) else {
        return Err(Errno::EINVAL);
    };
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let f = timerfd(t, fd)?;
    let tfd = as_timerfd(&f);
    if is_alarm(tfd.clock()) && !t.creds.has_cap(CAP_WAKE_ALARM) {
        return Err(Errno::EPERM);
    }
    let prev = tfd.set(value, interval, flags);
    if old.0 != 0 {
        write_setting(t, old.0, prev)?;
    }
    Ok(0)
}

pub fn timerfd_gettime(t: &mut Task, fd: Fd, cur: UserAddr) -> SysResult {
    let f = timerfd(t, fd)?;
    let s = as_timerfd(&f).get();
    write_setting(t, cur.0, s)?;
    Ok(0)
}
