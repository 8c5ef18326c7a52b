//! Clocks and sleeping: clock_gettime, clock_getres, gettimeofday, time,
//! nanosleep, clock_nanosleep.
//!
//! Wall and monotonic clocks are the host's; CLOCK_MONOTONIC and
//! CLOCK_REALTIME are read as the guest's vDSO reads them
//! ([`crate::vdso`]), so that calls that trap and calls that do not agree.
//! CPU-time clocks count the time the task ran guest code
//! and the time the sentry spent on its behalf; sleeps on them wait for a
//! CPU-clock timer ([`crate::kernel::timer`]).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::errno::Errno;

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

/// What a CPU-time clock counts (the kernel's CPUCLOCK_PROF, _VIRT, _SCHED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CpuWhich {
    /// User and system time.
    Prof,
    /// User time.
    Virt,
    /// Time on a CPU, finely measured.
    Sched,
}

/// A clock id, decoded as the kernel's clockid_to_kclock does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Clock {
    /// A clock the host keeps (wall, monotonic, boot, alarm, TAI).
    Host(i32),
    /// A process or thread CPU-time clock: the fixed ids, or a negative
    /// id encoding `(~pid << 3) | perthread << 2 | which`.
    Cpu {
        which: Option<CpuWhich>,
        pid: i32,
        thread: bool,
    },
    /// A negative id naming a dynamic clock by fd (`(~fd << 3) | 3`).
    Fd,
}

/// CLOCKFD: the low bits of a clock id naming a dynamic clock by fd.
const CLOCKFD: i32 = 3;

pub(super) fn decode(clock: i32) -> Result<Clock, Errno> {
    if clock < 0 {
        if clock & 7 == CLOCKFD {
            return Ok(Clock::Fd);
        }
        let which = match clock & 3 {
            0 => Some(CpuWhich::Prof),
            1 => Some(CpuWhich::Virt),
            2 => Some(CpuWhich::Sched),
            _ => None,
        };
        return Ok(Clock::Cpu {
            which,
            pid: !(clock >> 3),
            thread: clock & 4 != 0,
        });
    }
    match clock {
        libc::CLOCK_PROCESS_CPUTIME_ID => Ok(Clock::Cpu {
            which: Some(CpuWhich::Sched),
            pid: 0,
            thread: false,
        }),
        libc::CLOCK_THREAD_CPUTIME_ID => Ok(Clock::Cpu {
            which: Some(CpuWhich::Sched),
            pid: 0,
            thread: true,
        }),
        c if HOST_CLOCKS.contains(&c) => Ok(Clock::Host(c)),
        _ => Err(Errno::EINVAL),
    }
}

/// The kernel's pid_for_clock: whether a CPU clock names a task here. A
/// thread clock takes a thread of the caller's group, a process clock a
/// process; 0 is the caller.
pub(super) fn cpu_clock_valid(
    t: &Task,
    which: Option<CpuWhich>,
    pid: i32,
    thread: bool,
) -> Result<CpuWhich, Errno> {
    let which = which.ok_or(Errno::EINVAL)?;
    if pid == 0 || pid == t.tid {
        return Ok(which);
    }
    let ts = t.kernel.tasks.lock();
    let ok = if thread {
        ts.tasks.get(&pid).is_some_and(|th| th.tg.tgid == t.tg.tgid)
    } else {
        ts.live(pid).is_some()
    };
    if !ok {
        return Err(Errno::EINVAL);
    }
    Ok(which)
}

fn cpu_time(t: &Task, which: CpuWhich) -> Duration {
    match which {
        CpuWhich::Virt => t.user_time,
        CpuWhich::Prof | CpuWhich::Sched => t.user_time + t.sys_time,
    }
}

use crate::hostcall::{clock_getres as host_res, clock_gettime as host_clock};

/// CLOCK_MONOTONIC or CLOCK_REALTIME as the vDSO computes it (so that
/// the guest sees one clock whether it traps or not), in nanoseconds.
fn vdso_clock_ns(t: &Task, clock: i32) -> Option<u64> {
    t.mm.memory_file().vdso().ok()?.clock().now_ns(clock)
}

fn ns_to_timespec(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as i64,
        tv_nsec: (ns % 1_000_000_000) as i64,
    }
}

/// CLOCK_REALTIME, since the epoch.
fn realtime(t: &Task) -> Duration {
    match vdso_clock_ns(t, libc::CLOCK_REALTIME) {
        Some(ns) => Duration::from_nanos(ns),
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    }
}

pub(super) fn read_clock(t: &Task, clock: i32) -> Result<libc::timespec, Errno> {
    match decode(clock)? {
        Clock::Host(c) => match vdso_clock_ns(t, c) {
            Some(ns) => Ok(ns_to_timespec(ns)),
            None => host_clock(c),
        },
        Clock::Cpu { which, pid, thread } => {
            let which = cpu_clock_valid(t, which, pid, thread)?;
            if thread && pid != 0 && pid != t.tid {
                // Another thread of the process.
                let th = t
                    .kernel
                    .tasks
                    .lock()
                    .tasks
                    .get(&pid)
                    .cloned()
                    .ok_or(Errno::EINVAL)?;
                use std::sync::atomic::Ordering;
                let u = th.utime_ns.load(Ordering::Relaxed);
                let s = th.stime_ns.load(Ordering::Relaxed);
                let ns = match which {
                    CpuWhich::Virt => u,
                    _ => u + s,
                };
                return Ok(duration_to_timespec(Duration::from_nanos(ns)));
            }
            if !thread {
                let (u, s) = if pid == 0 || pid == t.tg.tgid {
                    process_cpu_ns(t)
                } else {
                    let tg = super::process::process_tg(t, pid).ok_or(Errno::EINVAL)?;
                    let d = *tg.dead_times.lock();
                    let mut u = d.user;
                    let mut s = d.sys;
                    for th in t.kernel.tasks.lock().threads_of(pid) {
                        u += th.utime_ns.load(std::sync::atomic::Ordering::Relaxed);
                        s += th.stime_ns.load(std::sync::atomic::Ordering::Relaxed);
                    }
                    (u, s)
                };
                let ns = match which {
                    CpuWhich::Virt => u,
                    _ => u + s,
                };
                return Ok(duration_to_timespec(Duration::from_nanos(ns)));
            }
            Ok(duration_to_timespec(cpu_time(t, which)))
        }
        // No fd of the sandbox is a dynamic clock.
        Clock::Fd => Err(Errno::EINVAL),
    }
}

pub fn clock_gettime(t: &mut Task, clock: i32, tp: UserAddr) -> SysResult {
    let ts = read_clock(t, clock)?;
    t.mm.write_obj(tp.0, &ts)?;
    Ok(0)
}

/// The resolution of the tick-sampled CPU clocks: a jiffy, rounded up as
/// the kernel does. The host's coarse clocks tick once a jiffy.
pub(super) fn jiffy_res() -> libc::timespec {
    let tick = host_res(libc::CLOCK_MONOTONIC_COARSE)
        .map(|r| r.tv_sec * 1_000_000_000 + r.tv_nsec)
        .unwrap_or(4_000_000)
        .max(1);
    let hz = ((1_000_000_000 + tick / 2) / tick).max(1);
    libc::timespec {
        tv_sec: 0,
        tv_nsec: (1_000_000_000 + hz - 1) / hz,
    }
}

pub fn clock_getres(t: &mut Task, clock: i32, res: UserAddr) -> SysResult {
    let r = match decode(clock)? {
        Clock::Host(c) => host_res(c)?,
        Clock::Cpu { which, pid, thread } => match cpu_clock_valid(t, which, pid, thread)? {
            CpuWhich::Sched => libc::timespec {
                tv_sec: 0,
                tv_nsec: 1,
            },
            CpuWhich::Prof | CpuWhich::Virt => jiffy_res(),
        },
        Clock::Fd => return Err(Errno::EINVAL),
    };
    if res.0 != 0 {
        t.mm.write_obj(res.0, &r)?;
    }
    Ok(0)
}

pub fn gettimeofday(t: &mut Task, tv: UserAddr, tz: UserAddr) -> SysResult {
    let now = realtime(t);
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
    let now = realtime(t).as_secs();
    if tloc.0 != 0 {
        t.mm.write_obj(tloc.0, &now)?;
    }
    Ok(now)
}

/// When an absolute time `ts` on host clock `clock` comes, as an instant.
fn abs_deadline(clock: i32, ts: &libc::timespec) -> Instant {
    let now = crate::hostcall::clock_gettime(clock).unwrap_or(libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    });
    let target = Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    );
    let cur = Duration::new(
        now.tv_sec.max(0) as u64,
        now.tv_nsec.clamp(0, 999_999_999) as u32,
    );
    Instant::now() + target.saturating_sub(cur)
}

/// A far deadline for "relative" sleeps too long to represent.
fn later(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86400))
}

/// Sleeps until `deadline`; interrupted, it writes the time left to
/// `rem` (if not 0) and asks for a restart through restart_syscall.
pub fn sleep_to(t: &mut Task, deadline: Instant, rem: u64) -> SysResult {
    if !t.sleep(deadline) {
        return Ok(0);
    }
    if rem != 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = libc::timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        t.mm.write_obj(rem, &ts)?;
    }
    t.restart_block = Some(crate::kernel::task::RestartBlock::Sleep { deadline, rem });
    Err(Errno::ERESTART_RESTARTBLOCK)
}

/// Sleeps relative (restartable with the time left) or until an absolute
/// time on a host clock (restarted as it was).
fn host_sleep(
    t: &mut Task,
    clock: i32,
    abs: bool,
    ts: &libc::timespec,
    d: Duration,
    rem: u64,
) -> SysResult {
    if abs {
        let deadline = abs_deadline(clock, ts);
        if t.sleep(deadline) {
            return Err(Errno::ERESTARTNOHAND);
        }
        // A realtime clock may have been set meanwhile: sleep on if the
        // time has not come.
        let now = crate::hostcall::clock_gettime(clock);
        if let Ok(n) = now {
            if (n.tv_sec, n.tv_nsec) < (ts.tv_sec, ts.tv_nsec) {
                return Err(Errno::ERESTARTNOINTR);
            }
        }
        Ok(0)
    } else {
        sleep_to(t, later(d), rem)
    }
}

pub fn nanosleep(t: &mut Task, req: UserAddr, rem: UserAddr) -> SysResult {
    let ts: libc::timespec = t.mm.read_obj(req.0)?;
    let d = timespec_to_duration(&ts)?;
    sleep_to(t, later(d), rem.0)
}

/// CAP_WAKE_ALARM.
const CAP_WAKE_ALARM: u32 = 35;

pub fn clock_nanosleep(
    t: &mut Task,
    clock: i32,
    flags: Hex,
    req: UserAddr,
    rem: UserAddr,
) -> SysResult {
    // The clock is checked first: unknown ids, then clocks that cannot be
    // slept on.
    let kind = decode(clock)?;
    match kind {
        Clock::Host(
            libc::CLOCK_REALTIME
            | libc::CLOCK_MONOTONIC
            | libc::CLOCK_BOOTTIME
            | libc::CLOCK_TAI
            | libc::CLOCK_REALTIME_ALARM
            | libc::CLOCK_BOOTTIME_ALARM,
        ) => {}
        Clock::Host(_) | Clock::Fd => return Err(Errno::EOPNOTSUPP),
        // The thread clock by its fixed id has no sleep; by an encoded id
        // it goes to the CPU-clock sleep, which refuses it below.
        Clock::Cpu { thread: true, .. } if clock == libc::CLOCK_THREAD_CPUTIME_ID => {
            return Err(Errno::EOPNOTSUPP)
        }
        Clock::Cpu { .. } => {}
    }
    let ts: libc::timespec = t.mm.read_obj(req.0)?;
    let d = timespec_to_duration(&ts)?;
    let abs = flags.0 as u32 & libc::TIMER_ABSTIME as u32 != 0;
    match kind {
        Clock::Host(c @ (libc::CLOCK_REALTIME_ALARM | libc::CLOCK_BOOTTIME_ALARM)) => {
            // Alarm clocks need a real-time clock device; the host has one
            // when it can say their resolution.
            if host_res(c).is_err() {
                return Err(Errno::EOPNOTSUPP);
            }
            if flags.0 as u32 & !(libc::TIMER_ABSTIME as u32) != 0 {
                return Err(Errno::EINVAL);
            }
            if !t.creds.has_cap(CAP_WAKE_ALARM) {
                return Err(Errno::EPERM);
            }
            let base = if c == libc::CLOCK_REALTIME_ALARM {
                libc::CLOCK_REALTIME
            } else {
                libc::CLOCK_BOOTTIME
            };
            host_sleep(t, base, abs, &ts, d, rem.0)
        }
        Clock::Host(c) => host_sleep(t, c, abs, &ts, d, rem.0),
        Clock::Cpu { which, pid, thread } => {
            // A thread cannot wait for its own CPU time.
            if thread && (pid == 0 || pid == t.tid) {
                return Err(Errno::EINVAL);
            }
            let clock = super::timer::cpu_timer_clock(t, which, pid, thread)?;
            cpu_sleep(t, clock, abs, d, rem.0)
        }
        Clock::Fd => Err(Errno::EOPNOTSUPP),
    }
}

/// Sleeps until a CPU clock (of another thread, or of a process) reaches
/// the time: a timer on that clock wakes the sleeper.
fn cpu_sleep(
    t: &mut Task,
    clock: crate::kernel::timer::TimerClock,
    abs: bool,
    d: Duration,
    rem: u64,
) -> SysResult {
    use crate::kernel::timer::{Notify, Timer};
    let q = std::sync::Arc::new(crate::kernel::waiter::WaitQueue::default());
    let timer = Timer::new(&t.kernel, &t.tg, clock, Notify::Wake(q.clone()));
    let now = timer.now();
    let ns = d.as_nanos().min(u64::MAX as u128) as u64;
    let at = if abs { ns } else { now.saturating_add(ns) };
    // A zero time, or a time already reached, returns at once.
    if ns == 0 || at <= now {
        return Ok(0);
    }
    timer.set(Some(at), 0);
    let r = t.block_on(&[(&q, crate::kernel::waiter::ALL_EVENTS)], None, |_| {
        (!timer.armed()).then_some(Ok(()))
    });
    timer.delete();
    match r {
        Ok(()) => Ok(0),
        Err(_) => {
            if !abs && rem != 0 {
                let left = ns_to_timespec(at.saturating_sub(timer.now()));
                t.mm.write_obj(rem, &left)?;
            }
            Err(Errno::ERESTARTNOHAND)
        }
    }
}

// ----- CPU time of processes -----

/// User and system time (ns) of the caller's process: its live threads
/// and those that exited.
pub fn process_cpu_ns(t: &Task) -> (u64, u64) {
    use std::sync::atomic::Ordering;
    let d = *t.tg.dead_times.lock();
    let mut u = d.user;
    let mut s = d.sys;
    for th in t.kernel.tasks.lock().threads_of(t.tg.tgid) {
        if std::sync::Arc::ptr_eq(&th, &t.shared) {
            continue;
        }
        u += th.utime_ns.load(Ordering::Relaxed);
        s += th.stime_ns.load(Ordering::Relaxed);
    }
    (
        u + t.user_time.as_nanos() as u64,
        s + t.sys_time.as_nanos() as u64,
    )
}

const RUSAGE_SELF: i32 = 0;
const RUSAGE_CHILDREN: i32 = -1;
const RUSAGE_THREAD: i32 = 1;

pub fn getrusage(t: &mut Task, who: i32, usage: UserAddr) -> SysResult {
    let (u, s) = match who {
        RUSAGE_SELF => process_cpu_ns(t),
        RUSAGE_CHILDREN => {
            let d = *t.tg.dead_times.lock();
            (d.child_user, d.child_sys)
        }
        RUSAGE_THREAD => (t.user_time.as_nanos() as u64, t.sys_time.as_nanos() as u64),
        _ => return Err(Errno::EINVAL),
    };
    // ru_maxrss, in KiB: the memory the address space maps.
    let rss = t.mm.mapped_bytes() / 1024;
    t.mm.copy_out(usage.0, &rusage_bytes(u, s, rss))?;
    Ok(0)
}

/// A `struct rusage` (144 bytes) with user and system time (ns) and
/// ru_maxrss (KiB); the other counters zero.
pub(crate) fn rusage_bytes(user_ns: u64, sys_ns: u64, maxrss_kib: u64) -> [u8; 144] {
    let mut r = [0u8; 144];
    let tv = |ns: u64| {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
        b[8..16].copy_from_slice(&((ns % 1_000_000_000) / 1000).to_le_bytes());
        b
    };
    r[0..16].copy_from_slice(&tv(user_ns));
    r[16..32].copy_from_slice(&tv(sys_ns));
    r[32..40].copy_from_slice(&maxrss_kib.to_le_bytes());
    r
}

/// Clock ticks per second of times(2) (USER_HZ).
const USER_HZ: u64 = 100;

pub fn times(t: &mut Task, buf: UserAddr) -> SysResult {
    let (u, s) = process_cpu_ns(t);
    let d = *t.tg.dead_times.lock();
    let tick = |ns: u64| ns / (1_000_000_000 / USER_HZ);
    if buf.0 != 0 {
        let v = [tick(u), tick(s), tick(d.child_user), tick(d.child_sys)];
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        t.mm.copy_out(buf.0, &bytes)?;
    }
    // Ticks since the sandbox booted.
    let since = t.kernel.boot_time.elapsed().as_nanos() as u64;
    Ok(tick(since))
}
