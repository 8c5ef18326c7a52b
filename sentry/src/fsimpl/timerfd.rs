//! timerfd files, as Linux's `fs/timerfd.c`: a timer on a clock whose
//! expirations are counted and read as an 8-byte number.
//!
//! Expiry times are kept on the timer's own clock, in nanoseconds; the
//! sentry's timer thread ([`crate::kernel::timer`]) wakes the timer at the
//! matching host instant. As in Linux, an expiry only counts one tick and
//! leaves the timer stopped; a read (or timerfd_gettime) of a periodic
//! timer counts the periods that passed since and starts it again, so a
//! very short period costs nothing while nobody reads.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::errno::Errno;
use crate::kernel::timer::{new_key, Expire, TimerHandle};
use crate::kernel::waiter::WaitQueue;
use crate::vfs::{FileDescription, FileImpl};

/// TFD_IOC_SET_TICKS (`_IOW('T', 0, u64)`).
const TFD_IOC_SET_TICKS: u32 = 0x4008_5400;

/// The clock a timer's times are read on: the alarm clocks count as
/// their base clocks (the sandbox has no suspend to wake from).
fn base_clock(clock: i32) -> i32 {
    match clock {
        libc::CLOCK_REALTIME_ALARM => libc::CLOCK_REALTIME,
        libc::CLOCK_BOOTTIME_ALARM => libc::CLOCK_BOOTTIME,
        c => c,
    }
}

/// Now on `clock`, in nanoseconds: as the guest reads it through the
/// vDSO (for the clocks it has), so that a timer never expires early by
/// the guest's clock.
fn clock_ns(vdso: Option<&crate::vdso::Vdso>, clock: i32) -> i128 {
    let clock = base_clock(clock);
    if let Some(ns) = vdso.and_then(|v| v.clock().now_ns(clock)) {
        return ns as i128;
    }
    match crate::hostcall::clock_gettime(clock) {
        Ok(ts) => ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128,
        Err(_) => 0,
    }
}

#[derive(Default)]
struct State {
    /// The next expiry on the clock (ns); None when disarmed.
    expires: Option<i128>,
    /// The period (ns); 0 for a one-shot timer.
    interval: i128,
    /// Expirations not read yet.
    ticks: u64,
    /// Expired since the last read, and not started again.
    expired: bool,
    /// Armed on the timer thread.
    armed: bool,
    /// The flags of the last timerfd_settime, for fdinfo.
    flags: u32,
}

struct Inner {
    clock: i32,
    vdso: Option<Arc<crate::vdso::Vdso>>,
    key: u64,
    timers: TimerHandle,
    me: Weak<Inner>,
    state: Mutex<State>,
    queue: Arc<WaitQueue>,
}

impl Inner {
    fn now(&self) -> i128 {
        clock_ns(self.vdso.as_deref(), self.clock)
    }

    /// Arms the timer thread for the expiry in `st`.
    fn arm(&self, st: &mut State, now: i128) {
        let Some(e) = st.expires else {
            return;
        };
        let wait = (e - now).clamp(0, u64::MAX as i128) as u64;
        let at = Instant::now()
            .checked_add(Duration::from_nanos(wait))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86400));
        st.armed = true;
        let me: Weak<dyn Expire> = self.me.clone();
        self.timers.arm(self.key, at, me);
    }

    /// Counts an expiry that is due but that the timer thread has not got
    /// to yet: Linux's timer has fired by then, so a read or poll right
    /// after a setting in the past (or under load) must see it.
    fn catch_up(&self, st: &mut State) {
        if st.armed && st.expires.is_some_and(|e| e <= self.now()) {
            self.timers.cancel(self.key);
            st.armed = false;
            st.expired = true;
            st.ticks = st.ticks.saturating_add(1);
        }
    }

    /// Linux's `hrtimer_forward_now` for an expired periodic timer:
    /// moves the expiry past `now` by whole periods and counts them into
    /// the ticks, then starts the timer again.
    fn forward(&self, st: &mut State, now: i128) {
        if !st.expired || st.interval == 0 {
            return;
        }
        st.expired = false;
        let Some(e) = st.expires else {
            return;
        };
        if now >= e {
            let periods = (now - e) / st.interval + 1;
            st.expires = Some(e + periods * st.interval);
            st.ticks = st
                .ticks
                .saturating_add((periods - 1).clamp(0, u64::MAX as i128) as u64);
        }
        self.arm(st, now);
    }
}

impl Expire for Inner {
    fn expire(&self, _queue: &TimerHandle, _now: Instant) {
        {
            let mut st = self.state.lock();
            if !st.armed {
                return;
            }
            let now = self.now();
            match st.expires {
                // Early on the timer's clock (the clocks drift apart, or
                // the timer was set again): wait for the rest.
                Some(e) if e > now => {
                    self.arm(&mut st, now);
                    return;
                }
                Some(_) => {}
                None => return,
            }
            st.armed = false;
            st.expired = true;
            st.ticks = st.ticks.saturating_add(1);
        }
        self.queue.notify(libc::POLLIN as u32);
    }
}

/// A timer's setting as timerfd_gettime reports it (ns).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Setting {
    pub value: u64,
    pub interval: u64,
}

pub struct TimerFd {
    inner: Arc<Inner>,
}

impl TimerFd {
    pub fn new(clock: i32, timers: TimerHandle, vdso: Option<Arc<crate::vdso::Vdso>>) -> TimerFd {
        TimerFd {
            inner: Arc::new_cyclic(|me| Inner {
                clock,
                vdso,
                key: new_key(),
                timers,
                me: me.clone(),
                state: Mutex::new(State::default()),
                queue: Arc::new(WaitQueue::default()),
            }),
        }
    }

    /// The clock the timer was made on.
    pub fn clock(&self) -> i32 {
        self.inner.clock
    }

    fn setting(&self, st: &State, now: i128) -> Setting {
        Setting {
            value: st
                .expires
                .filter(|_| st.armed)
                .map_or(0, |e| (e - now).clamp(0, u64::MAX as i128) as u64),
            interval: st.interval as u64,
        }
    }

    /// timerfd_gettime: the time left and the period.
    pub fn get(&self) -> Setting {
        let mut st = self.inner.state.lock();
        let now = self.inner.now();
        self.inner.forward(&mut st, now);
        self.setting(&st, now)
    }

    /// timerfd_settime: expires after `value` ns (at `value` on the clock
    /// if `abs`; never if 0), then every `interval` ns. The old setting.
    pub fn set(&self, value: u64, interval: u64, flags: u32) -> Setting {
        let abs = flags & 1 != 0;
        let inner = &self.inner;
        let mut st = inner.state.lock();
        inner.timers.cancel(inner.key);
        let now = inner.now();
        // An expired periodic timer moves on first, so that the old value
        // is its next expiry.
        let mut live = st.armed;
        if st.expired && st.interval != 0 {
            if let Some(e) = st.expires {
                if now >= e {
                    let periods = (now - e) / st.interval + 1;
                    st.expires = Some(e + periods * st.interval);
                }
                live = true;
            }
        }
        st.armed = live;
        let old = self.setting(&st, now);
        st.expired = false;
        st.ticks = 0;
        st.flags = flags;
        st.interval = interval as i128;
        st.armed = false;
        st.expires = if value == 0 {
            None
        } else if abs {
            Some(value as i128)
        } else {
            Some(now + value as i128)
        };
        inner.arm(&mut st, now);
        old
    }
}

impl Drop for TimerFd {
    fn drop(&mut self) {
        self.inner.timers.cancel(self.inner.key);
    }
}

impl FileImpl for TimerFd {
    /// The expirations since the last read, as 8 bytes; EAGAIN while
    /// there are none.
    fn read(&self, _f: &FileDescription, dst: &mut [u8], _o: Option<u64>) -> Result<usize, Errno> {
        if dst.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let ticks = {
            let mut st = self.inner.state.lock();
            self.inner.catch_up(&mut st);
            if st.ticks == 0 {
                return Err(Errno::EAGAIN);
            }
            let now = self.inner.now();
            self.inner.forward(&mut st, now);
            st.expired = false;
            std::mem::take(&mut st.ticks)
        };
        dst[..8].copy_from_slice(&ticks.to_ne_bytes());
        Ok(8)
    }

    /// A read whose buffer faults: the expirations are taken, then the
    /// copy fails (as Linux's put_user after taking them).
    fn read_short(
        &self,
        f: &FileDescription,
        dst: &mut [u8],
        want: usize,
        o: Option<u64>,
    ) -> Result<usize, Errno> {
        if want < 8 {
            return Err(Errno::EINVAL);
        }
        let mut v = [0u8; 8];
        self.read(f, &mut v, o)?;
        let _ = dst;
        Err(Errno::EFAULT)
    }

    fn write(&self, _f: &FileDescription, _src: &[u8], _o: Option<u64>) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn empty_io_reaches_file(&self) -> bool {
        true
    }

    fn positional(&self, _f: &FileDescription) -> bool {
        false
    }

    /// Linux's noop_llseek: the position stays 0.
    fn seek(&self, _f: &FileDescription, _off: i64, _whence: i32) -> Result<u64, Errno> {
        Ok(0)
    }

    fn stat(&self, _f: &FileDescription) -> Result<libc::stat, Errno> {
        Ok(super::epoll::anon_stat())
    }

    /// TFD_IOC_SET_TICKS sets the expirations a read returns.
    fn ioctl(
        &self,
        _f: &FileDescription,
        t: &mut crate::kernel::task::Task,
        request: u32,
        arg: u64,
    ) -> Result<u64, Errno> {
        if request != TFD_IOC_SET_TICKS {
            return Err(Errno::ENOTTY);
        }
        let ticks: u64 = t.mm.read_obj(arg)?;
        if ticks == 0 {
            return Err(Errno::EINVAL);
        }
        self.inner.state.lock().ticks = ticks;
        self.inner.queue.notify(libc::POLLIN as u32);
        Ok(0)
    }

    fn readiness(&self, _f: &FileDescription, events: i16) -> i16 {
        let mut st = self.inner.state.lock();
        self.inner.catch_up(&mut st);
        if st.ticks > 0 {
            events & (libc::POLLIN | libc::POLLRDNORM)
        } else {
            0
        }
    }

    fn waitq(&self, _f: &FileDescription) -> Option<Arc<WaitQueue>> {
        Some(self.inner.queue.clone())
    }

    fn name(&self) -> String {
        "anon_inode:[timerfd]".to_string()
    }

    fn fdinfo(&self, _f: &FileDescription) -> String {
        let st = self.inner.state.lock();
        let s = self.setting(&st, self.inner.now());
        let nsec = 1_000_000_000;
        format!(
            "clockid: {}\nticks: {}\nsettime flags: 0{:o}\nit_value: ({}, {})\nit_interval: ({}, {})\n",
            self.inner.clock,
            st.ticks,
            st.flags,
            s.value / nsec,
            s.value % nsec,
            s.interval / nsec,
            s.interval % nsec
        )
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
