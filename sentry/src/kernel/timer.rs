//! Timers: the sentry's timer thread, and the timers of processes
//! (setitimer's three, POSIX timers, sleeps on CPU clocks).
//!
//! Wall-clock timers wait on one deadline-ordered [`TimerQueue`], served
//! by one sentry thread the kernel starts when the first timer is armed.
//! The thread sleeps until the earliest deadline (it never polls) and
//! calls the timer's [`Expire`], which sends its signal and re-arms a
//! periodic timer.
//!
//! CPU-clock timers (ITIMER_VIRTUAL, ITIMER_PROF, timers and sleeps on
//! CPU clocks) are checked by the threads whose CPU time they count: the
//! run loop calls [`run_cpu_timers`] before each switch into the guest
//! while the process has one armed (one atomic load otherwise). A guest
//! that computes without making syscalls never comes back on its own, so
//! a sampler on the queue kicks the process's running threads back into
//! the sentry at the earliest wall time the next expiry can be reached.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::signal::{SigInfo, SigQueue, SI_KERNEL, SI_TIMER};
use super::task::{TaskShared, ThreadGroup};
use super::waiter::WaitQueue;
use super::Kernel;

// ----- The timer queue -----

/// What the timer thread calls when a deadline comes.
pub trait Expire: Send + Sync {
    /// The deadline this was armed with has come (`now` is at or after
    /// it). Runs on the timer thread, with no queue lock held: it may arm
    /// again through `queue`.
    fn expire(&self, queue: &TimerHandle, now: Instant);
}

#[derive(Default)]
struct QueueState {
    /// Armed entries by (deadline, key).
    order: BTreeMap<(Instant, u64), Weak<dyn Expire>>,
    /// The deadline of each armed key.
    deadlines: HashMap<u64, Instant>,
    started: bool,
    stop: bool,
}

struct QueueInner {
    state: Mutex<QueueState>,
    cv: Condvar,
}

/// A handle on the timer queue: arm and cancel deadlines.
#[derive(Clone)]
pub struct TimerHandle(Arc<QueueInner>);

/// The timer queue and its thread (stopped when this is dropped).
pub struct TimerQueue {
    handle: TimerHandle,
}

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// A key no other timer has, naming one entry of the queue.
pub fn new_key() -> u64 {
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

impl Default for TimerQueue {
    fn default() -> Self {
        TimerQueue::new()
    }
}

impl TimerQueue {
    pub fn new() -> TimerQueue {
        TimerQueue {
            handle: TimerHandle(Arc::new(QueueInner {
                state: Mutex::new(QueueState::default()),
                cv: Condvar::new(),
            })),
        }
    }
}

impl std::ops::Deref for TimerQueue {
    type Target = TimerHandle;
    fn deref(&self) -> &TimerHandle {
        &self.handle
    }
}

impl Drop for TimerQueue {
    fn drop(&mut self) {
        let mut s = self.handle.0.state.lock();
        s.stop = true;
        self.handle.0.cv.notify_all();
    }
}

impl TimerHandle {
    /// Arms `key` for `deadline` (replacing its earlier deadline, if
    /// any): `target` expires then, if it still exists.
    pub fn arm(&self, key: u64, deadline: Instant, target: Weak<dyn Expire>) {
        let mut s = self.0.state.lock();
        if let Some(old) = s.deadlines.insert(key, deadline) {
            s.order.remove(&(old, key));
        }
        s.order.insert((deadline, key), target);
        let first = s.order.keys().next() == Some(&(deadline, key));
        if !s.started {
            s.started = true;
            let h = self.clone();
            std::thread::Builder::new()
                .name("timers".into())
                .spawn(move || h.serve())
                .expect("the timer thread must start");
        } else if first {
            self.0.cv.notify_all();
        }
    }

    /// Disarms `key`; true if it was armed.
    pub fn cancel(&self, key: u64) -> bool {
        let mut s = self.0.state.lock();
        match s.deadlines.remove(&key) {
            Some(d) => {
                s.order.remove(&(d, key));
                true
            }
            None => false,
        }
    }

    /// When `key` is armed for.
    pub fn deadline(&self, key: u64) -> Option<Instant> {
        self.0.state.lock().deadlines.get(&key).copied()
    }

    /// How many entries are armed.
    pub fn len(&self) -> usize {
        self.0.state.lock().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The timer thread: sleeps until the first deadline, expires what is
    /// due, until the queue is dropped.
    fn serve(self) {
        let mut s = self.0.state.lock();
        loop {
            if s.stop {
                return;
            }
            let now = Instant::now();
            let mut due = Vec::new();
            while let Some((&(d, key), _)) = s.order.iter().next() {
                if d > now {
                    break;
                }
                let t = s.order.remove(&(d, key)).unwrap();
                s.deadlines.remove(&key);
                due.push(t);
            }
            if !due.is_empty() {
                parking_lot::MutexGuard::unlocked(&mut s, || {
                    for t in due {
                        if let Some(t) = t.upgrade() {
                            t.expire(&self, now);
                        }
                    }
                });
                continue;
            }
            match s.order.keys().next() {
                Some(&(d, _)) => {
                    self.0.cv.wait_until(&mut s, d);
                }
                None => self.0.cv.wait(&mut s),
            }
        }
    }
}

// ----- Time on the timers' clocks -----

/// The origin of the monotonic nanoseconds wall-clock timers count in.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// `i` in monotonic nanoseconds.
pub fn mono_ns(i: Instant) -> u64 {
    i.saturating_duration_since(base()).as_nanos() as u64
}

/// Now, in monotonic nanoseconds.
pub fn mono_now() -> u64 {
    mono_ns(Instant::now())
}

fn instant_at(ns: u64) -> Instant {
    base() + Duration::from_nanos(ns)
}

/// What a CPU-time clock counts.
#[derive(Clone)]
pub enum CpuTarget {
    /// A process: its live threads and those that exited.
    Process(Weak<ThreadGroup>),
    /// One thread.
    Thread(Weak<TaskShared>),
}

/// A timer's clock.
#[derive(Clone)]
pub enum TimerClock {
    /// A wall clock (the host clock id, for absolute times): times are
    /// monotonic nanoseconds ([`mono_ns`]).
    Wall(i32),
    /// A CPU-time clock: user time only, or user and system time.
    Cpu { target: CpuTarget, user_only: bool },
}

/// User and system time (ns) of a process.
pub fn process_times(kernel: &Kernel, tg: &ThreadGroup) -> (u64, u64) {
    let d = *tg.dead_times.lock();
    let (mut u, mut s) = (d.user, d.sys);
    for th in kernel.tasks.lock().threads_of(tg.tgid) {
        u += th.utime_ns.load(Ordering::Relaxed);
        s += th.stime_ns.load(Ordering::Relaxed);
    }
    (u, s)
}

impl TimerClock {
    /// The clock's time now; None if what it counts has gone.
    fn now(&self, kernel: &Kernel) -> Option<u64> {
        match self {
            TimerClock::Wall(_) => Some(mono_now()),
            TimerClock::Cpu { target, user_only } => {
                let (u, s) = match target {
                    CpuTarget::Process(tg) => process_times(kernel, &*tg.upgrade()?),
                    CpuTarget::Thread(th) => {
                        let th = th.upgrade()?;
                        (
                            th.utime_ns.load(Ordering::Relaxed),
                            th.stime_ns.load(Ordering::Relaxed),
                        )
                    }
                };
                Some(if *user_only { u } else { u + s })
            }
        }
    }

    /// The process whose threads advance this CPU clock.
    fn cpu_process(&self) -> Option<Arc<ThreadGroup>> {
        match self {
            TimerClock::Wall(_) => None,
            TimerClock::Cpu {
                target: CpuTarget::Process(tg),
                ..
            } => tg.upgrade(),
            TimerClock::Cpu {
                target: CpuTarget::Thread(th),
                ..
            } => th.upgrade().map(|t| t.tg.clone()),
        }
    }
}

// ----- Timers -----

/// What a timer does when it expires.
pub enum Notify {
    /// Nothing (SIGEV_NONE): the time is only read back.
    None,
    /// setitimer's signal, sent by the kernel (SI_KERNEL) to the process.
    Itimer(i32),
    /// A POSIX timer's signal (SI_TIMER, with the timer id and the
    /// sigevent's value), to the process or to one of its threads.
    Signal {
        signo: i32,
        id: i32,
        value: u64,
        thread: Option<Weak<TaskShared>>,
    },
    /// Wakes a sleeper (clock_nanosleep on a CPU clock).
    Wake(Arc<WaitQueue>),
}

#[derive(Default)]
struct TimerState {
    /// The next expiry on the timer's clock; None when disarmed.
    expires: Option<u64>,
    interval: u64,
    /// A signal of this timer was queued and may still be pending.
    queued: bool,
    /// The overruns counted on that signal.
    queued_overrun: i32,
    /// The overruns of the last signal delivered (timer_getoverrun).
    overrun_last: i32,
}

/// One timer of a process.
pub struct Timer {
    key: u64,
    clock: TimerClock,
    notify: Notify,
    kernel: Weak<Kernel>,
    owner: Weak<ThreadGroup>,
    me: Weak<Timer>,
    state: Mutex<TimerState>,
}

/// A timer's setting as the guest reads it: the time left (ns, 0 when
/// disarmed) and the interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Setting {
    pub value: u64,
    pub interval: u64,
}

fn is_signal_of(info: &SigInfo, signo: i32, id: i32) -> bool {
    info.code == SI_TIMER && info.signo == signo && info.timer_id() == id
}

impl Timer {
    pub fn new(
        kernel: &Arc<Kernel>,
        owner: &Arc<ThreadGroup>,
        clock: TimerClock,
        notify: Notify,
    ) -> Arc<Timer> {
        Arc::new_cyclic(|me| Timer {
            key: new_key(),
            clock,
            notify,
            kernel: Arc::downgrade(kernel),
            owner: Arc::downgrade(owner),
            me: me.clone(),
            state: Mutex::new(TimerState::default()),
        })
    }

    pub fn clock(&self) -> &TimerClock {
        &self.clock
    }

    /// The clock's time now (0 if what it counts has gone).
    pub fn now(&self) -> u64 {
        match self.kernel.upgrade() {
            Some(k) => self.clock.now(&k).unwrap_or(0),
            None => 0,
        }
    }

    /// Whether the timer is armed.
    pub fn armed(&self) -> bool {
        self.state.lock().expires.is_some()
    }

    /// The raw setting: the next expiry on the clock, and the interval.
    pub fn raw(&self) -> (Option<u64>, u64) {
        let s = self.state.lock();
        (s.expires, s.interval)
    }

    /// Arms the timer to expire at `expires` on its clock (None
    /// disarms), then every `interval` ns (0: once). A signal of an
    /// earlier setting still pending is dropped, as its delivery would
    /// be. An expiry already reached fires at once.
    pub fn set(&self, expires: Option<u64>, interval: u64) {
        let Some(kernel) = self.kernel.upgrade() else {
            return;
        };
        {
            let mut st = self.state.lock();
            self.drop_pending(&mut st);
            st.overrun_last = 0;
            st.expires = expires;
            st.interval = interval;
            if matches!(self.clock, TimerClock::Wall(_)) {
                match expires {
                    Some(e) if !matches!(self.notify, Notify::None) => {
                        let me: Weak<dyn Expire> = self.me.clone();
                        kernel.timers.arm(self.key, instant_at(e), me);
                    }
                    _ => {
                        kernel.timers.cancel(self.key);
                    }
                }
            }
        }
        if let TimerClock::Cpu { .. } = &self.clock {
            let Some(tg) = self.clock.cpu_process() else {
                return;
            };
            match expires {
                Some(e) if !matches!(self.notify, Notify::None) => {
                    tg.timers.watch(&self.me, e);
                    run_cpu_timers(&kernel, &tg);
                }
                // Disarmed: the run loop need not look for it any more.
                _ => tg.timers.recompute(),
            }
        } else if let (Some(e), TimerClock::Wall(_)) = (expires, &self.clock) {
            let now = mono_now();
            if e <= now && !matches!(self.notify, Notify::None) {
                self.fire(now);
            }
        }
    }

    /// Keeps the interval of a disarmed timer (setitimer's CPU timers
    /// report it).
    pub fn set_interval_only(&self, interval: u64) {
        self.state.lock().interval = interval;
    }

    /// The time left and the interval. A timer whose time has come but
    /// whose expiry has not been handled yet reports `imminent` left; a
    /// SIGEV_NONE timer is moved on to its next period, or reports 0.
    pub fn get(&self, imminent: u64) -> Setting {
        let now = self.now();
        let mut st = self.state.lock();
        let Some(e) = st.expires else {
            return Setting {
                value: 0,
                interval: st.interval,
            };
        };
        let interval = st.interval;
        if e > now {
            return Setting {
                value: e - now,
                interval,
            };
        }
        if matches!(self.notify, Notify::None) {
            if interval == 0 {
                st.expires = None;
                return Setting::default();
            }
            let next = e + ((now - e) / interval + 1) * interval;
            st.expires = Some(next);
            return Setting {
                value: next - now,
                interval,
            };
        }
        Setting {
            value: imminent,
            interval,
        }
    }

    /// The overruns of the signal last delivered.
    pub fn overrun(&self) -> i32 {
        let mut st = self.state.lock();
        self.settle(&mut st);
        st.overrun_last
    }

    /// Disarms the timer for good (timer_delete, exec): its pending
    /// signal goes.
    pub fn delete(&self) {
        {
            let mut st = self.state.lock();
            self.drop_pending(&mut st);
            st.expires = None;
            st.interval = 0;
        }
        match self.clock.cpu_process() {
            Some(tg) => tg.timers.recompute(),
            None => {
                if let Some(k) = self.kernel.upgrade() {
                    k.timers.cancel(self.key);
                }
            }
        }
    }

    /// Runs `f` on the signal queue this timer's signals go to.
    fn with_queue<R>(&self, f: impl FnOnce(&mut SigQueue) -> R) -> Option<R> {
        let Notify::Signal { thread, .. } = &self.notify else {
            return None;
        };
        match thread {
            Some(th) => Some(f(&mut th.upgrade()?.sig.lock().pending)),
            None => Some(f(&mut self.owner.upgrade()?.sig.lock().pending)),
        }
    }

    /// Notices the delivery of the signal queued last: its overruns
    /// become the delivered count.
    fn settle(&self, st: &mut TimerState) {
        let Notify::Signal { signo, id, .. } = self.notify else {
            return;
        };
        if !st.queued {
            return;
        }
        let pending = self
            .with_queue(|q| q.find_mut(|i| is_signal_of(i, signo, id)).is_some())
            .unwrap_or(false);
        if !pending {
            st.queued = false;
            st.overrun_last = st.queued_overrun;
        }
    }

    /// Removes the timer's pending signal, if any.
    fn drop_pending(&self, st: &mut TimerState) {
        if let Notify::Signal { signo, id, .. } = self.notify {
            if st.queued {
                self.with_queue(|q| q.remove_where(|i| is_signal_of(i, signo, id)));
            }
        }
        st.queued = false;
        st.queued_overrun = 0;
    }

    /// Handles the expiry at `now` (on the timer's clock), if it is due:
    /// notifies and moves a periodic timer on, counting the periods
    /// missed as overruns.
    fn fire(&self, now: u64) {
        let mut st = self.state.lock();
        let Some(e) = st.expires else {
            return;
        };
        if e > now {
            return;
        }
        let (Some(kernel), Some(owner)) = (self.kernel.upgrade(), self.owner.upgrade()) else {
            st.expires = None;
            return;
        };
        if kernel.tasks.lock().live(owner.tgid).is_none() {
            st.expires = None;
            return;
        }
        let missed = (now - e).checked_div(st.interval);
        st.expires = missed.map(|m| e.saturating_add((m + 1).saturating_mul(st.interval)));
        let missed = missed.unwrap_or(0);
        self.deliver(&kernel, &owner, &mut st, missed);
        if let (Some(next), TimerClock::Wall(_)) = (st.expires, &self.clock) {
            let me: Weak<dyn Expire> = self.me.clone();
            kernel.timers.arm(self.key, instant_at(next), me);
        }
    }

    fn deliver(&self, kernel: &Kernel, owner: &Arc<ThreadGroup>, st: &mut TimerState, missed: u64) {
        match &self.notify {
            Notify::None => {}
            Notify::Wake(q) => q.notify_all(),
            Notify::Itimer(sig) => {
                if !init_ignores(kernel, owner, *sig, None) {
                    kernel.send_group_signal(owner, SigInfo::new(*sig, SI_KERNEL));
                }
            }
            Notify::Signal {
                signo,
                id,
                value,
                thread,
            } => {
                let th = thread.as_ref().and_then(Weak::upgrade);
                if init_ignores(kernel, owner, *signo, th.as_deref()) {
                    return;
                }
                let missed = missed.min(i32::MAX as u64) as i32;
                // The signal still pending counts the expiry as an
                // overrun; a timer's signal is queued once.
                if st.queued {
                    let bumped = self
                        .with_queue(|q| match q.find_mut(|i| is_signal_of(i, *signo, *id)) {
                            Some(i) => {
                                let n = st.queued_overrun.saturating_add(1).saturating_add(missed);
                                i.set_overrun(n);
                                st.queued_overrun = n;
                                true
                            }
                            None => false,
                        })
                        .unwrap_or(false);
                    if bumped {
                        return;
                    }
                    st.queued = false;
                    st.overrun_last = st.queued_overrun;
                }
                let info = SigInfo::timer(*signo, *id, missed, *value);
                st.queued = true;
                st.queued_overrun = missed;
                match thread {
                    Some(th) => {
                        if let Some(th) = th.upgrade() {
                            kernel.send_thread_signal(&th, info);
                        }
                    }
                    None => kernel.send_group_signal(owner, info),
                }
            }
        }
    }
}

/// Whether the sandbox's init drops `sig`: as Linux's SIGNAL_UNKILLABLE,
/// the kernel's own signals to it are ignored when it has no handler for
/// them, unless the target thread (the leader, for the process) blocks
/// them.
fn init_ignores(kernel: &Kernel, tg: &ThreadGroup, sig: i32, thread: Option<&TaskShared>) -> bool {
    if tg.tgid != 1 || tg.action(sig).handler != super::signal::SIG_DFL {
        return false;
    }
    let blocked = match thread {
        Some(th) => th.blocks(sig),
        None => kernel
            .tasks
            .lock()
            .procs
            .get(&1)
            .is_some_and(|p| p.leader.blocks(sig)),
    };
    !blocked
}

impl Expire for Timer {
    fn expire(&self, _queue: &TimerHandle, now: Instant) {
        self.fire(mono_ns(now));
    }
}

// ----- A process's timers -----

/// setitimer's timers.
pub const ITIMER_REAL: usize = 0;
pub const ITIMER_VIRTUAL: usize = 1;
pub const ITIMER_PROF: usize = 2;

/// The POSIX timers of a process, by id.
#[derive(Default)]
pub struct PosixTimers {
    pub next_id: i32,
    pub map: BTreeMap<i32, Arc<Timer>>,
}

impl PosixTimers {
    /// The next id, as Linux hands them out: increasing, wrapping at
    /// INT_MAX, skipping ids in use. None if every id is taken.
    pub fn alloc_id(&mut self) -> Option<i32> {
        for _ in 0..=self.map.len() {
            let id = self.next_id;
            self.next_id = if id == i32::MAX { 0 } else { id + 1 };
            if !self.map.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }
}

/// The timers of one process, and the CPU-clock timers counting its time.
pub struct ProcessTimers {
    /// ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF, made on first use.
    pub itimers: Mutex<[Option<Arc<Timer>>; 3]>,
    pub posix: Mutex<PosixTimers>,
    /// Armed timers on this process's CPU clocks (or its threads'),
    /// whoever owns them.
    cpu: Mutex<Vec<Weak<Timer>>>,
    /// The earliest expiry among `cpu`, in ns of their clocks (each
    /// reads at most the process's user+system time); u64::MAX if none.
    cpu_next: AtomicU64,
    /// The sampler, and when it is armed for (monotonic ns, u64::MAX
    /// when not).
    sampler: Mutex<Option<Arc<Sampler>>>,
    sampler_at: AtomicU64,
}

impl Default for ProcessTimers {
    fn default() -> Self {
        ProcessTimers {
            itimers: Mutex::new([None, None, None]),
            posix: Mutex::new(PosixTimers::default()),
            cpu: Mutex::new(Vec::new()),
            cpu_next: AtomicU64::new(u64::MAX),
            sampler: Mutex::new(None),
            sampler_at: AtomicU64::new(u64::MAX),
        }
    }
}

impl ProcessTimers {
    /// Whether a timer on this process's CPU time is armed: the run
    /// loop's check.
    #[inline]
    pub fn cpu_armed(&self) -> bool {
        self.cpu_next.load(Ordering::Relaxed) != u64::MAX
    }

    /// exec: the POSIX timers go; setitimer's stay.
    pub fn exec(&self) {
        let timers = std::mem::take(&mut self.posix.lock().map);
        for t in timers.values() {
            t.delete();
        }
    }

    /// Recomputes the earliest CPU expiry; disarmed and dropped timers
    /// leave the watch list.
    fn recompute(&self) {
        let mut l = self.cpu.lock();
        let mut next = u64::MAX;
        l.retain(|w| match w.upgrade() {
            Some(t) => match t.state.lock().expires {
                Some(e) => {
                    next = next.min(e);
                    true
                }
                None => false,
            },
            None => false,
        });
        self.cpu_next.store(next, Ordering::Relaxed);
    }

    /// Watches `t`, armed to expire at `expires` on one of this process's
    /// CPU clocks.
    fn watch(&self, t: &Weak<Timer>, expires: u64) {
        let mut l = self.cpu.lock();
        if !l.iter().any(|w| w.ptr_eq(t)) {
            l.push(t.clone());
        }
        self.cpu_next.fetch_min(expires, Ordering::Relaxed);
    }
}

/// Kicks a process's running threads back into the sentry, so that they
/// check its CPU timers.
struct Sampler {
    key: u64,
    kernel: Weak<Kernel>,
    tg: Weak<ThreadGroup>,
}

impl Expire for Sampler {
    fn expire(&self, _queue: &TimerHandle, _now: Instant) {
        let (Some(kernel), Some(tg)) = (self.kernel.upgrade(), self.tg.upgrade()) else {
            return;
        };
        tg.timers.sampler_at.store(u64::MAX, Ordering::Relaxed);
        if !tg.timers.cpu_armed() {
            return;
        }
        for th in kernel.tasks.lock().threads_of(tg.tgid) {
            if th.running() {
                th.kick();
            }
        }
    }
}

/// The shortest wait of the sampler: a CPU timer fires at most this late.
const SAMPLE_MIN: u64 = 200_000;

/// Fires the timers on `tg`'s CPU clocks whose time has come, and arms
/// the sampler for the next. Called by the run loop of `tg`'s threads
/// while one is armed, and when one is set.
pub fn run_cpu_timers(kernel: &Arc<Kernel>, tg: &Arc<ThreadGroup>) {
    let pt = &tg.timers;
    let threads = kernel.tasks.lock().threads_of(tg.tgid);
    let d = *tg.dead_times.lock();
    let (mut u, mut s) = (d.user, d.sys);
    for th in &threads {
        u += th.utime_ns.load(Ordering::Relaxed);
        s += th.stime_ns.load(Ordering::Relaxed);
    }
    let total = u + s;
    if total >= pt.cpu_next.load(Ordering::Relaxed) {
        let timers: Vec<Arc<Timer>> = pt.cpu.lock().iter().filter_map(Weak::upgrade).collect();
        for t in &timers {
            let TimerClock::Cpu { target, user_only } = &t.clock else {
                continue;
            };
            let now = match target {
                CpuTarget::Process(_) => Some(if *user_only { u } else { total }),
                CpuTarget::Thread(th) => th.upgrade().map(|th| {
                    let u = th.utime_ns.load(Ordering::Relaxed);
                    if *user_only {
                        u
                    } else {
                        u + th.stime_ns.load(Ordering::Relaxed)
                    }
                }),
            };
            if let Some(now) = now {
                t.fire(now);
            } else {
                t.state.lock().expires = None;
            }
        }
        pt.recompute();
    }
    let next = pt.cpu_next.load(Ordering::Relaxed);
    if next == u64::MAX {
        return;
    }
    // The clock cannot get there sooner than with every running thread
    // on a CPU of its own.
    let running = threads.iter().filter(|t| t.running()).count();
    let par = running.min(kernel.cpus).max(1) as u64;
    let at = mono_now() + (next.saturating_sub(total) / par).max(SAMPLE_MIN);
    if at >= pt.sampler_at.load(Ordering::Relaxed) {
        return;
    }
    let sampler = pt
        .sampler
        .lock()
        .get_or_insert_with(|| {
            Arc::new(Sampler {
                key: new_key(),
                kernel: Arc::downgrade(kernel),
                tg: Arc::downgrade(tg),
            })
        })
        .clone();
    pt.sampler_at.store(at, Ordering::Relaxed);
    let w: Weak<dyn Expire> = Arc::downgrade(&sampler) as Weak<dyn Expire>;
    kernel.timers.arm(sampler.key, instant_at(at), w);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records its expiries; re-arms itself `period` later `repeat`
    /// times.
    struct Probe {
        key: u64,
        label: u32,
        log: Arc<Mutex<Vec<(u32, Instant)>>>,
        period: Duration,
        repeat: Mutex<u32>,
        me: Weak<Probe>,
    }

    impl Expire for Probe {
        fn expire(&self, queue: &TimerHandle, now: Instant) {
            self.log.lock().push((self.label, now));
            let mut r = self.repeat.lock();
            if *r > 0 {
                *r -= 1;
                let me: Weak<dyn Expire> = self.me.clone();
                queue.arm(self.key, now + self.period, me);
            }
        }
    }

    fn probe(
        label: u32,
        log: &Arc<Mutex<Vec<(u32, Instant)>>>,
        period: Duration,
        repeat: u32,
    ) -> Arc<Probe> {
        Arc::new_cyclic(|me| Probe {
            key: new_key(),
            label,
            log: log.clone(),
            period,
            repeat: Mutex::new(repeat),
            me: me.clone(),
        })
    }

    fn arm(q: &TimerQueue, p: &Arc<Probe>, at: Instant) {
        let w: Weak<dyn Expire> = Arc::downgrade(p) as Weak<dyn Expire>;
        q.arm(p.key, at, w);
    }

    fn wait_for(log: &Arc<Mutex<Vec<(u32, Instant)>>>, n: usize) {
        let end = Instant::now() + Duration::from_secs(5);
        while log.lock().len() < n {
            assert!(Instant::now() < end, "timers did not expire in time");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn expires_in_deadline_order_and_not_early() {
        let q = TimerQueue::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let t0 = Instant::now();
        let ps: Vec<_> = (0..4).map(|i| probe(i, &log, Duration::ZERO, 0)).collect();
        // Armed out of order; the thread starts with the first.
        let at = |ms| t0 + Duration::from_millis(ms);
        arm(&q, &ps[2], at(30));
        arm(&q, &ps[0], at(10));
        arm(&q, &ps[3], at(40));
        arm(&q, &ps[1], at(20));
        assert_eq!(q.len(), 4);
        wait_for(&log, 4);
        let l = log.lock().clone();
        let labels: Vec<u32> = l.iter().map(|e| e.0).collect();
        assert_eq!(labels, vec![0, 1, 2, 3]);
        for (label, when) in l {
            assert!(when >= at(10 * (label as u64 + 1)), "expired early");
        }
        assert!(q.is_empty());
    }

    #[test]
    fn cancel_and_rearm_replace_the_deadline() {
        let q = TimerQueue::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let a = probe(1, &log, Duration::ZERO, 0);
        let b = probe(2, &log, Duration::ZERO, 0);
        let now = Instant::now();
        arm(&q, &a, now + Duration::from_secs(3600));
        arm(&q, &b, now + Duration::from_secs(3600));
        assert!(q.cancel(b.key));
        assert!(!q.cancel(b.key));
        assert_eq!(q.deadline(b.key), None);
        // Moving `a` earlier wakes the sleeping thread.
        let soon = Instant::now() + Duration::from_millis(5);
        arm(&q, &a, soon);
        assert_eq!(q.deadline(a.key), Some(soon));
        assert_eq!(q.len(), 1);
        wait_for(&log, 1);
        assert_eq!(log.lock()[0].0, 1);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(log.lock().len(), 1, "one entry per key");
    }

    #[test]
    fn periodic_rearm_from_expire_and_dropped_targets() {
        let q = TimerQueue::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let p = probe(7, &log, Duration::from_millis(2), 4);
        arm(&q, &p, Instant::now() + Duration::from_millis(1));
        wait_for(&log, 5);
        std::thread::sleep(Duration::from_millis(10));
        let l = log.lock().clone();
        assert_eq!(l.len(), 5);
        for w in l.windows(2) {
            assert!(w[1].1 >= w[0].1 + Duration::from_millis(2));
        }
        // A target that has gone is skipped.
        let gone = probe(8, &log, Duration::ZERO, 0);
        let (key, w) = (gone.key, Arc::downgrade(&gone) as Weak<dyn Expire>);
        drop(gone);
        q.arm(key, Instant::now(), w);
        let after = probe(9, &log, Duration::ZERO, 0);
        arm(&q, &after, Instant::now() + Duration::from_millis(2));
        wait_for(&log, 6);
        assert_eq!(log.lock()[5].0, 9);
    }

    #[test]
    fn posix_ids_increase_wrap_and_skip_used() {
        let mut p = PosixTimers::default();
        assert_eq!(p.alloc_id(), Some(0));
        assert_eq!(p.alloc_id(), Some(1));
        p.next_id = i32::MAX;
        assert_eq!(p.alloc_id(), Some(i32::MAX));
        assert_eq!(p.next_id, 0);
    }
}
