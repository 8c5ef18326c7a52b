//! Tasks (threads) and thread groups (processes), and the run loop.
//!
//! A task is split in two. [`Task`] is what only its runner (the sentry
//! thread the task runs on) touches: registers, the platform context, the
//! restart state of an interrupted syscall. [`TaskShared`] is what other
//! tasks, procfs, `kill` and `wait4` read and change: the signal mask and
//! pending signals, the waiter that blocks the task, exit requests, and a
//! published view of the task's credentials, name and resources.

use crate::sync::LockExt;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use platform::{
    Access, Context, Event, FpState, Interrupter, PlatformError, Registers, SignalInfo,
};

use super::creds::Credentials;
use super::limits::Limits;
use super::signal::{
    self, SigAction, SigInfo, SigQueue, SigSet, SignalHandlers, SignalStack, UNBLOCKABLE,
};
use super::waiter::{Registration, WaitQueue, Waiter, Wake};
use super::{ExitStatus, Kernel};
use crate::errno::Errno;
use crate::mm::{MemoryManager, MmLimits};
use crate::vfs::FdTable;

/// The limits of a process, locked.
pub fn lock_limits(tg: &ThreadGroup) -> std::sync::MutexGuard<'_, Limits> {
    tg.limits.locked()
}

/// The prctl state of a process, locked.
pub fn lock_prctl(tg: &ThreadGroup) -> std::sync::MutexGuard<'_, ProcessPrctl> {
    tg.prctl.locked()
}

/// A process.
pub struct ThreadGroup {
    /// Its pid in the sandbox's pid namespace.
    pub tgid: i32,
    pub limits: Mutex<Limits>,
    /// The signal actions, shared with other processes made with
    /// `CLONE_SIGHAND` (until one of them execs).
    sighand: Mutex<Arc<Mutex<SignalHandlers>>>,
    pub umask: Mutex<u32>,
    /// `/proc/PID/oom_score_adj` (the sandbox has no OOM killer of its
    /// own: the host's acts on the whole sandbox; the value is kept and
    /// inherited as Linux does).
    pub oom_score_adj: std::sync::atomic::AtomicI32,
    /// Process-wide prctl state.
    pub prctl: Mutex<ProcessPrctl>,
    /// Process-wide signal state: shared pending signals, group exit and
    /// stop.
    pub sig: parking_lot::Mutex<GroupSignals>,
    /// Notified when a child changes state (exits, stops, continues).
    pub child_events: WaitQueue,
    /// Notified when one of its threads exits (exec waits on it).
    pub thread_exits: WaitQueue,
    /// Notified when the process exits (pidfds).
    pub exit_queue: Arc<WaitQueue>,
    /// Notified when a signal is queued for the process or one of its
    /// threads (Linux's `signalfd_wqh`: signalfds report it readable).
    pub signal_queue: Arc<WaitQueue>,
    /// When the process started.
    pub start: Instant,
    /// CPU time of its threads that exited, and of its waited-for
    /// children (ns).
    pub dead_times: parking_lot::Mutex<ProcessTimes>,
    /// Its interval timers and POSIX timers.
    pub timers: super::timer::ProcessTimers,
    /// Its controlling terminal (fork copies it, setsid clears it).
    pub tty: parking_lot::Mutex<Option<Arc<super::tty::Terminal>>>,
}

/// Accumulated CPU times, in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessTimes {
    pub user: u64,
    pub sys: u64,
    pub child_user: u64,
    pub child_sys: u64,
}

/// Process-wide signal state.
#[derive(Default)]
pub struct GroupSignals {
    pub pending: SigQueue,
    /// The whole group is exiting with this status.
    pub exit: Option<ExitStatus>,
    /// An exec by this thread waits for the other threads to go.
    pub exec_tid: Option<i32>,
    /// A group stop is in effect, by this signal.
    pub stopped: Option<i32>,
}

/// prctl(2) settings of a process.
#[derive(Clone, Debug)]
pub struct ProcessPrctl {
    /// PR_SET_DUMPABLE (0 or 1).
    pub dumpable: u32,
    /// PR_SET_CHILD_SUBREAPER.
    pub child_subreaper: bool,
}

/// prctl(2) settings of a thread.
#[derive(Clone, Debug)]
pub struct ThreadPrctl {
    /// PR_SET_PDEATHSIG (0: none).
    pub pdeath_signal: i32,
    /// PR_SET_NO_NEW_PRIVS.
    pub no_new_privs: bool,
    /// PR_SET_TIMERSLACK, in nanoseconds.
    pub timer_slack_ns: u64,
}

impl Default for ThreadPrctl {
    fn default() -> Self {
        ThreadPrctl {
            pdeath_signal: 0,
            no_new_privs: false,
            timer_slack_ns: 50_000,
        }
    }
}

impl ThreadGroup {
    pub fn new(tgid: i32, limits: Limits) -> ThreadGroup {
        ThreadGroup {
            tgid,
            limits: Mutex::new(limits),
            sighand: Mutex::new(Arc::new(Mutex::new(SignalHandlers::default()))),
            umask: Mutex::new(0o022),
            oom_score_adj: std::sync::atomic::AtomicI32::new(0),
            prctl: Mutex::new(ProcessPrctl {
                dumpable: 1,
                child_subreaper: false,
            }),
            sig: parking_lot::Mutex::new(GroupSignals::default()),
            child_events: WaitQueue::default(),
            thread_exits: WaitQueue::default(),
            exit_queue: Arc::new(WaitQueue::default()),
            signal_queue: Arc::new(WaitQueue::default()),
            start: Instant::now(),
            dead_times: parking_lot::Mutex::new(ProcessTimes::default()),
            timers: super::timer::ProcessTimers::default(),
            tty: parking_lot::Mutex::new(None),
        }
    }

    /// A child process of this one: limits, umask and dumpability copied,
    /// handlers shared (`CLONE_SIGHAND`) or copied.
    pub fn fork(&self, tgid: i32, share_handlers: bool) -> ThreadGroup {
        let tg = ThreadGroup::new(tgid, self.limits.locked().clone());
        *tg.umask.locked() = *self.umask.locked();
        tg.oom_score_adj.store(
            self.oom_score_adj.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        tg.prctl.locked().dumpable = self.prctl.locked().dumpable;
        *tg.tty.lock() = self.tty.lock().clone();
        let h = self.handlers();
        *tg.sighand.locked() = if share_handlers {
            h
        } else {
            Arc::new(Mutex::new(h.locked().clone()))
        };
        tg
    }

    /// The signal actions.
    pub fn handlers(&self) -> Arc<Mutex<SignalHandlers>> {
        self.sighand.locked().clone()
    }

    /// The action for `sig`.
    pub fn action(&self, sig: i32) -> SigAction {
        self.handlers().locked().actions[(sig - 1) as usize]
    }

    /// exec: handlers of our own (no longer shared), caught signals back
    /// to the default, ignored ones stay ignored.
    pub fn reset_handlers_for_exec(&self) {
        let old = self.handlers().locked().clone();
        let mut new = SignalHandlers::default();
        for (i, a) in old.actions.iter().enumerate() {
            if a.handler == signal::SIG_IGN {
                new.actions[i].handler = signal::SIG_IGN;
            }
        }
        *self.sighand.locked() = Arc::new(Mutex::new(new));
    }

    /// The limits the memory manager enforces.
    pub fn mm_limits(&self) -> MmLimits {
        let l = self.limits.locked();
        MmLimits {
            address_space: l.cur(libc::RLIMIT_AS),
            data: l.cur(libc::RLIMIT_DATA),
            stack: l.cur(libc::RLIMIT_STACK),
        }
    }

    /// Whether the group is exiting.
    pub fn exiting(&self) -> bool {
        self.sig.lock().exit.is_some()
    }
}

/// Per-thread signal state.
#[derive(Default)]
pub struct TaskSignals {
    pub mask: SigSet,
    pub pending: SigQueue,
    /// The mask to restore when the syscall that set a temporary one
    /// (sigsuspend, ppoll, pselect6, epoll_pwait) returns.
    pub saved_mask: Option<SigSet>,
    /// The thread must exit (its group is exiting, or another thread
    /// execs).
    pub exit_requested: bool,
    /// Signals sigtimedwait waits for, unblocked meanwhile: they count as
    /// blocked when deciding whether one is ignored (Linux's
    /// real_blocked).
    pub awaited: SigSet,
}

/// What other tasks and procfs see of a task, published by its runner.
#[derive(Clone)]
pub struct TaskView {
    pub comm: Vec<u8>,
    pub creds: Credentials,
    pub mm: Arc<MemoryManager>,
    pub fds: Arc<FdTable>,
    pub fs: Arc<Mutex<crate::vfs::path::FsContext>>,
    pub prctl: ThreadPrctl,
}

/// Scheduling settings of a task, as recorded and reported.
#[derive(Clone, Debug)]
pub struct SchedState {
    pub nice: i32,
    pub policy: i32,
    pub priority: i32,
    pub reset_on_fork: bool,
    /// sched_setaffinity's mask (bit n: CPU n).
    pub affinity: u128,
    pub ioprio: i32,
    /// personality(2).
    pub personality: u32,
}

impl SchedState {
    pub fn new(cpus: usize) -> SchedState {
        SchedState {
            nice: 0,
            policy: 0,
            priority: 0,
            reset_on_fork: false,
            affinity: if cpus >= 128 {
                u128::MAX
            } else {
                (1u128 << cpus) - 1
            },
            ioprio: 0,
            personality: 0,
        }
    }
}

/// The part of a task others read and change.
pub struct TaskShared {
    pub sched: parking_lot::Mutex<SchedState>,
    tid: AtomicI32,
    pub tg: Arc<ThreadGroup>,
    pub waiter: Arc<Waiter>,
    pub sig: parking_lot::Mutex<TaskSignals>,
    interrupter: parking_lot::Mutex<Option<Interrupter>>,
    pub view: parking_lot::Mutex<TaskView>,
    /// CPU time in the guest and in the sentry for it (ns).
    pub utime_ns: AtomicU64,
    pub stime_ns: AtomicU64,
    pub start: Instant,
    /// The thread's seccomp mode and filters (TSYNC changes them).
    pub seccomp: super::seccomp::SharedSeccomp,
}

impl TaskShared {
    pub fn tid(&self) -> i32 {
        self.tid.load(Ordering::Relaxed)
    }

    /// Makes the task look at its signals, exit and stop now: wakes it if
    /// it is blocked, kicks it out of guest code if it runs.
    pub fn interrupt(&self) {
        self.waiter.interrupt();
        if let Some(i) = self.interrupter.lock().as_ref() {
            i.interrupt();
        }
    }

    /// Kicks the task out of guest code (it looks at its CPU timers),
    /// without interrupting a wait.
    pub fn kick(&self) {
        if let Some(i) = self.interrupter.lock().as_ref() {
            i.interrupt();
        }
    }

    /// Whether the task is running (not asleep in a wait).
    pub fn running(&self) -> bool {
        !self.waiter.sleeping()
    }

    /// Whether `sig` is blocked by this thread.
    pub fn blocks(&self, sig: i32) -> bool {
        self.sig.lock().mask & signal::sig_bit(sig) != 0
    }

    /// Whether `sig` is blocked, or awaited by sigtimedwait: such a
    /// signal is queued even when its action ignores it.
    pub fn blocks_or_awaits(&self, sig: i32) -> bool {
        let s = self.sig.lock();
        (s.mask | s.awaited) & signal::sig_bit(sig) != 0
    }

    /// Queues a signal for this thread only, and interrupts it unless it
    /// blocks the signal.
    pub fn send(&self, info: SigInfo) {
        let mut s = self.sig.lock();
        s.pending.push(info);
        let blocked = s.mask & signal::sig_bit(info.signo) != 0;
        drop(s);
        self.tg.signal_queue.notify(libc::POLLIN as u32);
        if !blocked || info.signo == libc::SIGKILL {
            self.interrupt();
        }
    }

    /// Asks the task to exit.
    pub fn request_exit(&self) {
        self.sig.lock().exit_requested = true;
        self.interrupt();
    }

    /// A snapshot for procfs.
    pub fn snapshot(self: &Arc<Self>, kernel: &Arc<Kernel>) -> ProcTask {
        let v = self.view.lock().clone();
        ProcTask {
            kernel: kernel.clone(),
            tg: self.tg.clone(),
            tid: self.tid(),
            comm: v.comm,
            creds: v.creds,
            mm: v.mm,
            fds: v.fds,
            fs: v.fs,
            prctl: v.prctl,
            signal_mask: self.sig.lock().mask,
            user_time: Duration::from_nanos(self.utime_ns.load(Ordering::Relaxed)),
            sys_time: Duration::from_nanos(self.stime_ns.load(Ordering::Relaxed)),
            shared: self.clone(),
        }
    }
}

/// A task as procfs shows it: a snapshot of its shared part.
pub struct ProcTask {
    pub kernel: Arc<Kernel>,
    pub tg: Arc<ThreadGroup>,
    pub tid: i32,
    pub comm: Vec<u8>,
    pub creds: Credentials,
    pub mm: Arc<MemoryManager>,
    pub fds: Arc<FdTable>,
    pub fs: Arc<Mutex<crate::vfs::path::FsContext>>,
    pub prctl: ThreadPrctl,
    pub signal_mask: SigSet,
    pub user_time: Duration,
    pub sys_time: Duration,
    pub shared: Arc<TaskShared>,
}

/// What a restarted `restart_syscall` continues.
#[derive(Clone, Copy, Debug)]
pub enum RestartBlock {
    /// A sleep until this deadline; the remaining time goes to `rem`
    /// (a guest `timespec`, 0 for none) if interrupted again.
    Sleep { deadline: Instant, rem: u64 },
}

thread_local! {
    /// The task this sentry thread runs (Linux's `current`), for files
    /// whose answers depend on who asks: a signalfd reads its caller's
    /// signals.
    static CURRENT: std::cell::RefCell<Option<Arc<TaskShared>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` with the task of the calling sentry thread (None on the
/// sentry's own threads).
pub fn with_current<R>(f: impl FnOnce(Option<&Arc<TaskShared>>) -> R) -> R {
    CURRENT.with(|c| f(c.borrow().as_ref()))
}

/// A thread.
pub struct Task {
    pub kernel: Arc<Kernel>,
    pub shared: Arc<TaskShared>,
    pub tg: Arc<ThreadGroup>,
    pub tid: i32,
    pub regs: Registers,
    pub mm: Arc<MemoryManager>,
    pub fds: Arc<FdTable>,
    pub creds: Credentials,
    pub ctx: Box<dyn Context>,
    pub alt_stack: SignalStack,
    /// set_tid_address / CLONE_CHILD_CLEARTID.
    pub clear_child_tid: u64,
    /// set_robust_list head and length.
    pub robust_list: (u64, u64),
    /// The command name (`comm`), at most 15 bytes.
    pub comm: Vec<u8>,
    pub prctl: ThreadPrctl,
    /// The last fault handled ((address, rip)) and how often in a row,
    /// with nothing else happening in between.
    pub last_fault: ((u64, u64), u32),
    /// Time spent running guest code, and in the sentry for the guest.
    pub user_time: Duration,
    pub sys_time: Duration,
    /// The task's mount table, root and working directory.
    pub fs: Arc<Mutex<crate::vfs::path::FsContext>>,
    /// The restart request of the syscall just made, for the signal
    /// delivery that follows it.
    pub restart: Option<Errno>,
    pub restart_block: Option<RestartBlock>,
    /// Set by a vfork child: released when it execs or exits.
    pub vfork_done: Option<Arc<VforkDone>>,
    /// This thread's exit code, set by exit().
    pub exit_code: Option<ExitStatus>,
    /// The runner's copy of its seccomp filter stack.
    pub seccomp: super::seccomp::Seccomp,
    /// Since when sentry time is charged to the task.
    sys_mark: Option<Instant>,
    /// A syscall set a temporary signal mask (sigsuspend, ppoll): the
    /// next look at signals restores it.
    mask_saved: bool,
}

/// What a vfork parent waits for.
#[derive(Default)]
pub struct VforkDone {
    pub done: parking_lot::Mutex<bool>,
    pub queue: WaitQueue,
}

impl VforkDone {
    pub fn release(&self) {
        *self.done.lock() = true;
        self.queue.notify_all();
    }
}

/// How many faults in a row at one place, with nothing in between, mean
/// the memory manager cannot satisfy them.
const MAX_REPEATED_FAULTS: u32 = 64;

impl Task {
    /// A new task's shared part, registered nowhere yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kernel: Arc<Kernel>,
        tg: Arc<ThreadGroup>,
        tid: i32,
        regs: Registers,
        mm: Arc<MemoryManager>,
        fds: Arc<FdTable>,
        creds: Credentials,
        ctx: Box<dyn Context>,
        comm: Vec<u8>,
        fs: Arc<Mutex<crate::vfs::path::FsContext>>,
        mask: SigSet,
    ) -> Task {
        let prctl = ThreadPrctl::default();
        let cpus = kernel.cpus;
        let shared = Arc::new(TaskShared {
            sched: parking_lot::Mutex::new(SchedState::new(cpus)),
            tid: AtomicI32::new(tid),
            tg: tg.clone(),
            waiter: Waiter::new(),
            sig: parking_lot::Mutex::new(TaskSignals {
                mask,
                ..Default::default()
            }),
            interrupter: parking_lot::Mutex::new(Some(ctx.interrupter())),
            view: parking_lot::Mutex::new(TaskView {
                comm: comm.clone(),
                creds: creds.clone(),
                mm: mm.clone(),
                fds: fds.clone(),
                fs: fs.clone(),
                prctl: prctl.clone(),
            }),
            utime_ns: AtomicU64::new(0),
            stime_ns: AtomicU64::new(0),
            start: Instant::now(),
            seccomp: Default::default(),
        });
        Task {
            kernel,
            shared,
            tg,
            tid,
            regs,
            mm,
            fds,
            creds,
            ctx,
            alt_stack: SignalStack {
                flags: signal::SS_DISABLE,
                ..SignalStack::default()
            },
            clear_child_tid: 0,
            robust_list: (0, 0),
            comm,
            prctl,
            last_fault: ((0, 0), 0),
            user_time: Duration::ZERO,
            sys_time: Duration::ZERO,
            fs,
            restart: None,
            restart_block: None,
            vfork_done: None,
            exit_code: None,
            seccomp: Default::default(),
            sys_mark: None,
            mask_saved: false,
        }
    }

    /// Publishes what others read of this task (after a syscall that may
    /// have changed it).
    pub fn publish(&self) {
        let mut v = self.shared.view.lock();
        v.creds = self.creds.clone();
        if !Arc::ptr_eq(&v.mm, &self.mm) {
            v.mm = self.mm.clone();
        }
        if !Arc::ptr_eq(&v.fds, &self.fds) {
            v.fds = self.fds.clone();
        }
        if !Arc::ptr_eq(&v.fs, &self.fs) {
            v.fs = self.fs.clone();
        }
        v.prctl = self.prctl.clone();
    }

    /// The command name. Others may set it (through /proc/[pid]/comm), so
    /// it lives in the shared part.
    pub fn comm(&self) -> Vec<u8> {
        self.shared.view.lock().comm.clone()
    }

    pub fn set_comm(&mut self, comm: Vec<u8>) {
        self.comm.clone_from(&comm);
        self.shared.view.lock().comm = comm;
    }

    /// The signal mask.
    pub fn signal_mask(&self) -> SigSet {
        self.shared.sig.lock().mask
    }

    /// Sets the signal mask (SIGKILL and SIGSTOP stay unblocked); signals
    /// it unblocks are then delivered.
    pub fn set_signal_mask(&self, mask: SigSet) {
        let mut s = self.shared.sig.lock();
        s.mask = mask & !UNBLOCKABLE;
        let unblocked_pending = (s.pending.set | self.tg.sig.lock().pending.set) & !s.mask;
        drop(s);
        if unblocked_pending != 0 {
            self.shared.waiter.interrupt();
        }
    }

    /// Sets a mask for the duration of a syscall (sigsuspend, ppoll): the
    /// old one comes back when the syscall returns or a handler returns.
    pub fn set_temporary_mask(&mut self, mask: SigSet) {
        let old = self.signal_mask();
        self.shared.sig.lock().saved_mask = Some(old);
        self.mask_saved = true;
        self.set_signal_mask(mask);
    }

    /// Whether a signal, exit or stop waits for this task's attention.
    pub fn interrupted(&self) -> bool {
        self.shared.waiter.interrupted()
    }

    // ----- Blocking -----

    /// Blocks until `ready` gives a result, `deadline` passes
    /// (`ETIMEDOUT`), or the task is interrupted (`ERESTARTSYS`, which
    /// the caller may replace). The waiter is registered on `queues` (with
    /// the events each must report) before the first check, so no change
    /// between check and sleep is lost.
    pub fn block_on<T>(
        &mut self,
        queues: &[(&WaitQueue, u32)],
        deadline: Option<Instant>,
        mut ready: impl FnMut(&mut Task) -> Option<Result<T, Errno>>,
    ) -> Result<T, Errno> {
        let waiter = self.shared.waiter.clone();
        let _regs: Vec<Registration<'_>> = queues
            .iter()
            .map(|(q, m)| q.register(&waiter, *m))
            .collect();
        loop {
            waiter.reset();
            if let Some(r) = ready(self) {
                return r;
            }
            match self.sleep_until(deadline) {
                Wake::Woken => {}
                Wake::Interrupted => return Err(Errno::ERESTARTSYS),
                Wake::TimedOut => return Err(Errno::ETIMEDOUT),
            }
        }
    }

    /// Waits until `file` reports one of `events` (or an error or hangup);
    /// ERESTARTSYS when interrupted. Files that never block are ready.
    pub fn wait_file(
        &mut self,
        file: &crate::vfs::FileDescription,
        events: i16,
        deadline: Option<Instant>,
    ) -> Result<i16, Errno> {
        let Some(q) = file.imp.waitq(file) else {
            return Ok(file.imp.readiness(file, events));
        };
        let ev = events | libc::POLLHUP | libc::POLLERR;
        self.block_on(&[(&q, super::waiter::ALL_EVENTS)], deadline, |_| {
            let r = file.imp.readiness(file, ev);
            (r != 0).then_some(Ok(r))
        })
    }

    /// Sleeps on the task's waiter (registered by the caller) until it is
    /// woken, interrupted or the deadline passes. Time asleep is neither
    /// user nor system time.
    pub fn sleep_until(&mut self, deadline: Option<Instant>) -> Wake {
        self.charge_sys();
        let w = self.shared.waiter.wait(deadline);
        self.sys_mark = Some(Instant::now());
        w
    }

    /// Sleeps until `deadline` or an interrupt. True if interrupted.
    pub fn sleep(&mut self, deadline: Instant) -> bool {
        self.shared.waiter.reset();
        loop {
            match self.sleep_until(Some(deadline)) {
                Wake::Interrupted => return true,
                Wake::TimedOut => return false,
                Wake::Woken => {}
            }
        }
    }

    // ----- The run loop -----

    /// Runs the task until it exits.
    pub fn run(mut self) {
        CURRENT.with(|c| *c.borrow_mut() = Some(self.shared.clone()));
        let mut aspace = self.mm.address_space().clone();
        loop {
            if self.kernel.freezer.frozen() {
                let shared = self.shared.clone();
                self.kernel
                    .freezer
                    .wait_thawed(|| shared.sig.lock().exit_requested);
            }
            if self.tg.timers.cpu_armed() {
                super::timer::run_cpu_timers(&self.kernel, &self.tg);
            }
            if self.handle_signals() {
                break;
            }
            if !Arc::ptr_eq(&aspace, self.mm.address_space()) {
                aspace = self.mm.address_space().clone();
            }
            let t0 = Instant::now();
            let ev = self.ctx.switch(&aspace, &mut self.regs);
            let t1 = Instant::now();
            self.user_time += t1 - t0;
            self.sys_mark = Some(t1);
            match ev {
                Ok(Event::Syscall) => {
                    self.last_fault.1 = 0;
                    crate::syscalls::dispatch(&mut self);
                }
                Ok(Event::Fault(info, access)) => self.handle_fault(info, access),
                Ok(Event::Signal(info)) => {
                    self.last_fault.1 = 0;
                    let mut si = SigInfo::fault(info.signo, info.code, info.addr);
                    si.errno = info.errno;
                    self.force_signal(si);
                }
                Ok(Event::Interrupted) => {}
                Err(e) => self.platform_failed(e),
            }
            self.charge_sys();
        }
        self.exit_thread();
    }

    fn charge_sys(&mut self) {
        if let Some(m) = self.sys_mark.take() {
            self.sys_time += m.elapsed();
        }
        self.shared
            .utime_ns
            .store(self.user_time.as_nanos() as u64, Ordering::Relaxed);
        self.shared
            .stime_ns
            .store(self.sys_time.as_nanos() as u64, Ordering::Relaxed);
    }

    fn handle_fault(&mut self, info: SignalInfo, access: Access) {
        let limits = self.tg.mm_limits();
        // The same fault again and again, with nothing in between, means
        // the memory manager maps something that does not satisfy the
        // access: a sentry bug. End the process rather than spin forever.
        let key = (info.addr, self.regs.rip);
        if self.last_fault.0 == key {
            self.last_fault.1 += 1;
        } else {
            self.last_fault = (key, 0);
        }
        if self.last_fault.1 >= MAX_REPEATED_FAULTS {
            tracing::error!(
                "task {}: fault at {:#x} (rip {:#x}) repeats after being handled; \
                 ending the process",
                self.tid,
                info.addr,
                self.regs.rip
            );
            self.last_fault.1 = 0;
            self.force_signal(SigInfo::fault(info.signo, info.code, info.addr));
            return;
        }
        if let Err(segv) = self
            .mm
            .handle_fault(info.addr, info.signo, info.code, access, limits)
        {
            let sig = if info.signo == libc::SIGBUS {
                libc::SIGBUS
            } else {
                libc::SIGSEGV
            };
            tracing::debug!(
                "task {}: fault at {:#x} (rip {:#x}, {access:?}) gives signal {sig}",
                self.tid,
                info.addr,
                self.regs.rip
            );
            self.last_fault.1 = 0;
            self.force_signal(SigInfo::fault(sig, segv.code, info.addr));
        }
    }

    /// A synchronous signal caused by the guest's own instruction: it is
    /// delivered even if blocked or ignored (then with the default
    /// action), as Linux's force_sig does.
    pub fn force_signal(&mut self, info: SigInfo) {
        let sig = info.signo;
        let handlers = self.tg.handlers();
        {
            let mut h = handlers.locked();
            let a = &mut h.actions[(sig - 1) as usize];
            let blocked = self.signal_mask() & signal::sig_bit(sig) != 0;
            if a.handler == signal::SIG_IGN || blocked {
                a.handler = signal::SIG_DFL;
            }
        }
        {
            let mut s = self.shared.sig.lock();
            s.mask &= !signal::sig_bit(sig);
            s.pending.push(info);
        }
        self.shared.waiter.interrupt();
    }

    /// A signal the kernel raises at the task itself as the result of a
    /// syscall (SIGPIPE on a write to a broken pipe, SIGXFSZ).
    pub fn raise(&mut self, sig: i32) {
        let info = SigInfo::from_process(sig, signal::SI_USER, self.tg.tgid, self.creds.uid);
        self.kernel.send_thread_signal(&self.shared, info);
    }

    fn platform_failed(&mut self, e: PlatformError) {
        tracing::error!(
            "task {} lost its platform context ({e}); killing its thread group",
            self.tid
        );
        self.kernel
            .group_exit(&self.tg, ExitStatus::Signaled(libc::SIGKILL));
    }

    // ----- Signal delivery -----

    /// Handles exit requests, stops and pending signals before the task
    /// goes back to the guest; applies the restart rules to the syscall
    /// just made. True when the task must exit.
    fn handle_signals(&mut self) -> bool {
        // The common case on every return to the guest: nothing was sent,
        // requested or left to restore since the last look.
        if !self.shared.waiter.interrupted()
            && self.restart.is_none()
            && self.exit_code.is_none()
            && !self.mask_saved
        {
            return false;
        }
        self.mask_saved = false;
        loop {
            self.shared.waiter.clear_interrupt();
            if self.should_exit() {
                return true;
            }
            if self.tg.sig.lock().stopped.is_some() {
                self.stay_stopped();
                continue;
            }
            let Some(info) = self.dequeue_signal() else {
                break;
            };
            let sig = info.signo;
            let act = self.tg.action(sig);
            match act.handler {
                signal::SIG_IGN => continue,
                signal::SIG_DFL => match signal::default_action(sig) {
                    signal::DefaultAction::Ignore | signal::DefaultAction::Continue => continue,
                    signal::DefaultAction::Stop => {
                        // The terminal stop signals do nothing to an
                        // orphaned process group: nobody could continue it.
                        if sig != libc::SIGSTOP && self.pgrp_orphaned() {
                            continue;
                        }
                        self.kernel.group_stop(&self.tg, sig);
                        continue;
                    }
                    signal::DefaultAction::Terminate => {
                        self.kernel.group_exit(&self.tg, ExitStatus::Signaled(sig));
                        return true;
                    }
                    signal::DefaultAction::CoreDump => {
                        let core = self.tg.limits.locked().cur(libc::RLIMIT_CORE) > 0;
                        let st = if core {
                            ExitStatus::Dumped(sig)
                        } else {
                            ExitStatus::Signaled(sig)
                        };
                        self.kernel.group_exit(&self.tg, st);
                        return true;
                    }
                },
                _ => {
                    self.apply_restart(Some(&act));
                    if let Err(e) = self.setup_frame(&info, &act) {
                        tracing::debug!("task {}: signal frame for {sig}: {e:?}", self.tid);
                        self.force_signal(SigInfo::new(libc::SIGSEGV, signal::SI_KERNEL));
                    }
                    continue;
                }
            }
        }
        self.apply_restart(None);
        {
            let mut s = self.shared.sig.lock();
            if let Some(m) = s.saved_mask.take() {
                s.mask = m;
            }
        }
        false
    }

    /// Whether the task's process group is orphaned.
    fn pgrp_orphaned(&self) -> bool {
        let ts = self.kernel.tasks.lock();
        match ts.procs.get(&self.tg.tgid) {
            Some(p) => ts.group_orphaned(p.pgid),
            None => false,
        }
    }

    fn should_exit(&self) -> bool {
        if self.exit_code.is_some() {
            return true;
        }
        if self.shared.sig.lock().exit_requested {
            return true;
        }
        self.tg.sig.lock().exit.is_some()
    }

    /// Parks the task while its group is stopped; SIGCONT and SIGKILL
    /// interrupt it, and the caller looks again.
    fn stay_stopped(&mut self) {
        let _ = self.block_on(&[], None, |t| {
            let g = t.tg.sig.lock();
            (g.stopped.is_none() || g.exit.is_some()).then_some(Ok(()))
        });
    }

    /// Takes the next deliverable signal: the thread's own first, then
    /// the process's.
    fn dequeue_signal(&mut self) -> Option<SigInfo> {
        let mut s = self.shared.sig.lock();
        let mask = s.mask;
        if let Some(i) = s.pending.take(mask) {
            return Some(i);
        }
        drop(s);
        self.tg.sig.lock().pending.take(mask)
    }

    /// Applies signal(7)'s restart rules to the syscall just made, if it
    /// asked for a restart: with a handler about to run (`act`), or none.
    fn apply_restart(&mut self, act: Option<&SigAction>) {
        let Some(e) = self.restart.take() else {
            return;
        };
        let restart = match (e, act) {
            (Errno::ERESTARTNOINTR, _) => true,
            (Errno::ERESTARTSYS, Some(a)) => a.flags & libc::SA_RESTART as u64 != 0,
            (_, Some(_)) => false,
            (_, None) => true,
        };
        if !restart {
            self.regs.rax = (-(libc::EINTR as i64)) as u64;
            self.restart_block = None;
            return;
        }
        // Back onto the syscall instruction, with its number.
        self.regs.rip -= 2;
        self.regs.rax = if e == Errno::ERESTART_RESTARTBLOCK {
            libc::SYS_restart_syscall as u64
        } else {
            self.regs.orig_rax
        };
    }

    /// Builds the frame of a handler on the guest stack and points the
    /// registers at the handler.
    fn setup_frame(&mut self, info: &SigInfo, act: &SigAction) -> Result<(), Errno> {
        use signal::*;
        let sig = info.signo;
        if act.flags & SA_RESTORER as u64 == 0 {
            // x86-64 has no default restorer: the frame cannot return.
            return Err(Errno::EFAULT);
        }
        let sp0 = self.regs.rsp;
        let alt = self.alt_stack;
        let on_alt = alt.size != 0 && sp0 > alt.sp && sp0 - alt.sp <= alt.size;
        let mut sp = if act.flags & libc::SA_ONSTACK as u64 != 0 && alt.size != 0 && !on_alt {
            alt.sp + alt.size
        } else {
            sp0.wrapping_sub(128)
        };
        let aspace = self.mm.address_space().clone();
        let fp = self.ctx.fp_state(&aspace).map_err(|_| Errno::EFAULT)?;
        let xsize = fp.0.len() as u64;
        sp = (sp.wrapping_sub(xsize + 4)) & !63;
        let fp_addr = sp;
        sp = ((sp.wrapping_sub(FRAME_SIZE)) & !15).wrapping_sub(8);
        let frame = sp;
        // The XSAVE area, marked as extended state.
        let mut fpb = fp.0.clone();
        if fpb.len() >= 512 {
            let xfeatures = u64::from_le_bytes(fpb[512..520].try_into().unwrap()) | 3;
            fpb[464..468].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
            fpb[468..472].copy_from_slice(&((xsize + 4) as u32).to_le_bytes());
            fpb[472..480].copy_from_slice(&xfeatures.to_le_bytes());
            fpb[480..484].copy_from_slice(&(xsize as u32).to_le_bytes());
            for b in &mut fpb[484..512] {
                *b = 0;
            }
        }
        fpb.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
        self.mm.copy_out(fp_addr, &fpb)?;
        // The mask the handler's return restores.
        let old_mask = {
            let mut s = self.shared.sig.lock();
            s.saved_mask.take().unwrap_or(s.mask)
        };
        let mut uc = vec![0u8; UC_SIZE as usize];
        let flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
        uc[0..8].copy_from_slice(&flags.to_le_bytes());
        // uc_stack: the alternate stack as sigaltstack would report it.
        let state = if alt.size == 0 {
            SS_DISABLE
        } else if on_alt {
            SS_ONSTACK
        } else {
            0
        };
        uc[16..24].copy_from_slice(&alt.sp.to_le_bytes());
        uc[24..28].copy_from_slice(&(state | (alt.flags & SS_AUTODISARM)).to_le_bytes());
        uc[32..40].copy_from_slice(&alt.size.to_le_bytes());
        let trap = if SYNCHRONOUS & sig_bit(sig) != 0 && info.code > 0 {
            let addr = u64::from_le_bytes(info.fields[0..8].try_into().unwrap());
            let trapno = if sig == libc::SIGSEGV || sig == libc::SIGBUS {
                14
            } else {
                0
            };
            (0, trapno, addr)
        } else {
            (0, 0, 0)
        };
        let sc = sigcontext_bytes(&self.regs, trap, fp_addr, old_mask);
        uc[UC_MCONTEXT as usize..UC_MCONTEXT as usize + 256].copy_from_slice(&sc);
        uc[UC_SIGMASK as usize..UC_SIGMASK as usize + 8].copy_from_slice(&old_mask.to_le_bytes());
        let mut bytes = Vec::with_capacity(FRAME_SIZE as usize);
        bytes.extend_from_slice(&act.restorer.to_le_bytes());
        bytes.extend_from_slice(&uc);
        bytes.extend_from_slice(&info.to_bytes());
        self.mm.copy_out(frame, &bytes)?;
        if act.flags & libc::SA_ONSTACK as u64 != 0
            && alt.flags & SS_AUTODISARM != 0
            && alt.size != 0
        {
            self.alt_stack = SignalStack {
                flags: SS_DISABLE,
                ..SignalStack::default()
            };
        }
        // Into the handler.
        self.regs.rsp = frame;
        self.regs.rip = act.handler;
        self.regs.rdi = sig as u64;
        self.regs.rsi = frame + FRAME_INFO;
        self.regs.rdx = frame + FRAME_UC;
        self.regs.rax = 0;
        // Direction, trap and resume flags cleared.
        self.regs.eflags &= !(0x400 | 0x100 | 0x1_0000);
        self.regs.cs = 0x33;
        self.regs.ss = 0x2b;
        self.ctx.set_fp_state(FpState::initial(&fp));
        // The handler runs with its mask added (and the signal itself,
        // unless SA_NODEFER).
        let mut add = act.mask;
        if act.flags & libc::SA_NODEFER as u64 == 0 {
            add |= sig_bit(sig);
        }
        {
            let mut s = self.shared.sig.lock();
            s.mask = (old_mask | add) & !UNBLOCKABLE;
        }
        if act.flags & libc::SA_RESETHAND as u64 != 0 {
            let h = self.tg.handlers();
            let mut h = h.locked();
            let a = &mut h.actions[(sig - 1) as usize];
            a.handler = SIG_DFL;
        }
        Ok(())
    }

    /// rt_sigreturn: back from a handler through its frame.
    pub fn sigreturn(&mut self) -> Result<u64, Errno> {
        use signal::*;
        let frame = self.regs.rsp.wrapping_sub(8);
        let mut uc = vec![0u8; UC_SIZE as usize];
        self.mm.copy_in(frame + FRAME_UC, &mut uc)?;
        let mut sc = [0u8; 256];
        sc.copy_from_slice(&uc[UC_MCONTEXT as usize..UC_MCONTEXT as usize + 256]);
        let mask = u64::from_le_bytes(
            uc[UC_SIGMASK as usize..UC_SIGMASK as usize + 8]
                .try_into()
                .unwrap(),
        );
        let fp_addr = u64::from_le_bytes(sc[SC_FPSTATE..SC_FPSTATE + 8].try_into().unwrap());
        let mut regs = self.regs;
        restore_sigcontext(&mut regs, &sc);
        if fp_addr != 0 {
            let aspace = self.mm.address_space().clone();
            let cur = self.ctx.fp_state(&aspace).map_err(|_| Errno::EFAULT)?;
            let mut legacy = vec![0u8; 512];
            self.mm.copy_in(fp_addr, &mut legacy)?;
            let magic = u32::from_le_bytes(legacy[464..468].try_into().unwrap());
            let xsize = u32::from_le_bytes(legacy[480..484].try_into().unwrap()) as usize;
            let mut new = FpState::initial(&cur);
            if magic == FP_XSTATE_MAGIC1 && xsize >= 576 && xsize <= cur.0.len() {
                let mut all = vec![0u8; xsize];
                self.mm.copy_in(fp_addr, &mut all)?;
                new.0[..xsize].copy_from_slice(&all);
            } else {
                new.0[..512].copy_from_slice(&legacy);
                new.0[512..520].copy_from_slice(&3u64.to_le_bytes());
            }
            // Keep the host's MXCSR mask; the software bytes are not state.
            new.0[FpState::MXCSR_MASK..FpState::MXCSR_MASK + 4]
                .copy_from_slice(&cur.0[FpState::MXCSR_MASK..FpState::MXCSR_MASK + 4]);
            for b in &mut new.0[464..512] {
                *b = 0;
            }
            self.ctx.set_fp_state(new);
        }
        self.regs = regs;
        self.set_signal_mask(mask);
        // The alternate stack as it was when the handler was entered.
        let alt = SignalStack {
            sp: u64::from_le_bytes(uc[16..24].try_into().unwrap()),
            flags: i32::from_le_bytes(uc[24..28].try_into().unwrap()),
            _pad: 0,
            size: u64::from_le_bytes(uc[32..40].try_into().unwrap()),
        };
        let mode = alt.flags & !SS_AUTODISARM;
        if mode == SS_DISABLE {
            self.alt_stack = SignalStack {
                flags: SS_DISABLE,
                ..SignalStack::default()
            };
        } else if alt.size >= MINSIGSTKSZ {
            self.alt_stack = SignalStack {
                sp: alt.sp,
                flags: alt.flags & SS_AUTODISARM,
                _pad: 0,
                size: alt.size,
            };
        }
        self.restart = None;
        Ok(self.regs.rax)
    }

    // ----- Exit -----

    /// The thread ends: its futex word is cleared and woken, its robust
    /// futexes released, a vfork parent released; the last thread out
    /// makes the process a zombie and tells its parent.
    fn exit_thread(mut self) {
        // The tid word is cleared only when another task shares the
        // memory (Linux's mm_release looks at mm_users).
        let shared_mm = self.clear_child_tid != 0 && {
            let ts = self.kernel.tasks.lock();
            ts.tasks
                .values()
                .filter(|s| Arc::ptr_eq(&s.view.lock().mm, &self.mm))
                .count()
                > 1
        };
        if shared_mm {
            let addr = self.clear_child_tid;
            if self.mm.write_obj(addr, &0u32).is_ok() {
                let key = self.kernel.futexes.key(&self.mm, addr, false);
                self.kernel.futexes.wake(key, u32::MAX, 1);
            }
        }
        self.release_robust_futexes();
        if let Some(v) = self.vfork_done.take() {
            v.release();
        }
        self.release_mm(self.mm.clone());
        *self.shared.interrupter.lock() = None;
        let status = self.exit_code.unwrap_or(ExitStatus::Exited(0));
        let kernel = self.kernel.clone();
        let shared = self.shared.clone();
        let times = (
            self.user_time.as_nanos() as u64,
            self.sys_time.as_nanos() as u64,
        );
        // Files close before anyone hears of the exit (a parent reading a
        // pipe from its child sees EOF once it has waited).
        self.fds = Arc::new(FdTable::default());
        self.publish();
        kernel.thread_exited(&shared, status, times);
        drop(self);
    }

    /// The task lets go of `mm` (it exits, or exec replaced it): when no
    /// other task uses it, its mappings go now (Linux's `exit_mmap`).
    /// Threads of this process that exit with it (exit_group, a fatal
    /// signal) do not count: the first of them out lets go.
    pub fn release_mm(&self, mm: Arc<crate::mm::MemoryManager>) {
        let group_exit = self.tg.exiting();
        let shared = {
            let ts = self.kernel.tasks.lock();
            ts.tasks.values().any(|s| {
                !Arc::ptr_eq(s, &self.shared)
                    && Arc::ptr_eq(&s.view.lock().mm, &mm)
                    && !(group_exit && Arc::ptr_eq(&s.tg, &self.tg))
            })
        };
        if !shared {
            mm.exit_mmap();
        }
    }

    /// Walks the robust futex list: every lock the thread still holds is
    /// marked FUTEX_OWNER_DIED and one waiter woken, as Linux's
    /// exit_robust_list does.
    fn release_robust_futexes(&mut self) {
        let (head, len) = self.robust_list;
        if head == 0 || len == 0 {
            return;
        }
        let Ok(first) = self.mm.read_obj::<u64>(head) else {
            return;
        };
        let Ok(offset) = self.mm.read_obj::<i64>(head + 8) else {
            return;
        };
        let pending = self.mm.read_obj::<u64>(head + 16).unwrap_or(0);
        let mut entry = first;
        let mut n = 0;
        let visit = |t: &mut Task, e: u64| {
            let word = e.wrapping_add(offset as u64);
            let Ok(v) = t.mm.read_obj::<u32>(word) else {
                return;
            };
            if v & 0x3fff_ffff == t.tid as u32 {
                let nv = (v & 0x8000_0000) | 0x4000_0000;
                if t.mm.write_obj(word, &nv).is_ok() && v & 0x8000_0000 != 0 {
                    let key = t.kernel.futexes.key(&t.mm, word, false);
                    t.kernel.futexes.wake(key, u32::MAX, 1);
                }
            }
        };
        while entry != head && entry != 0 && n < 2048 {
            let next = self.mm.read_obj::<u64>(entry).unwrap_or(0);
            if entry != pending {
                visit(self, entry & !1);
            }
            entry = next;
            n += 1;
        }
        if pending != 0 {
            visit(self, pending & !1);
        }
    }
}

/// A new tid for a task.
pub fn set_tid(shared: &TaskShared, tid: i32) {
    shared.tid.store(tid, Ordering::Relaxed);
}

impl Task {
    /// Moves the task to `tid` (a non-leader thread that execs takes the
    /// leader's).
    pub fn change_tid(&mut self, tid: i32) {
        self.tid = tid;
        set_tid(&self.shared, tid);
    }
}
