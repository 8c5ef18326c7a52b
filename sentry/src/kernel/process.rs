//! The sandbox's pid namespace: every task and process, their relations
//! (parent, children, process group, session), exits, zombies, and
//! sending signals to them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::signal::{self, SigInfo};
use super::task::{TaskShared, ThreadGroup};
use super::{ExitStatus, Kernel};
use crate::errno::Errno;

/// `kernel.pid_max`.
pub const PID_MAX: i32 = 4_194_304;

/// A state change of a child that wait can report besides its exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    Stopped(i32),
    Continued,
}

/// A process, as the pid namespace knows it.
pub struct Process {
    pub tg: Arc<ThreadGroup>,
    /// Its first thread (procfs shows zombies through it).
    pub leader: Arc<TaskShared>,
    /// The parent's pid (0: none inside the sandbox).
    pub parent: i32,
    pub children: BTreeSet<i32>,
    pub pgid: i32,
    pub sid: i32,
    /// Live threads.
    pub threads: BTreeSet<i32>,
    /// The signal the parent gets when it exits (0: none).
    pub exit_signal: i32,
    /// Set when every thread has exited: the process is a zombie.
    pub zombie: Option<ExitStatus>,
    /// A stop or continue not yet reported to wait.
    pub report: Option<Report>,
    /// The uid wait reports.
    pub uid: u32,
    /// Whether it has exec'd since its fork (setpgid then refuses).
    pub execed: bool,
}

/// Every task and process of the sandbox.
pub struct TaskSet {
    next_pid: i32,
    /// Live threads by tid.
    pub tasks: HashMap<i32, Arc<TaskShared>>,
    /// Processes (live and zombie) by pid.
    pub procs: BTreeMap<i32, Process>,
    /// How pid 1 ended, once it has.
    pub init_status: Option<ExitStatus>,
}

impl Default for TaskSet {
    fn default() -> TaskSet {
        TaskSet {
            next_pid: 1,
            tasks: HashMap::new(),
            procs: BTreeMap::new(),
            init_status: None,
        }
    }
}

/// Whether `tg` ignores `sig` (explicitly, or by a default action that
/// does nothing): such a signal is discarded when sent, unless blocked.
fn ignored_by(tg: &ThreadGroup, sig: i32) -> bool {
    let act = tg.action(sig);
    act.handler == signal::SIG_IGN
        || (act.handler == signal::SIG_DFL
            && matches!(
                signal::default_action(sig),
                signal::DefaultAction::Ignore | signal::DefaultAction::Continue
            ))
}

/// The status word wait reports for an exit.
pub fn wait_status(s: ExitStatus) -> i32 {
    match s {
        ExitStatus::Exited(c) => (c as i32) << 8,
        ExitStatus::Signaled(sig) => sig,
        ExitStatus::Dumped(sig) => sig | 0x80,
    }
}

/// si_code and si_status of an exit, for SIGCHLD and waitid.
pub fn child_code(s: ExitStatus) -> (i32, i32) {
    match s {
        ExitStatus::Exited(c) => (signal::CLD_EXITED, c as i32),
        ExitStatus::Signaled(sig) => (signal::CLD_KILLED, sig),
        ExitStatus::Dumped(sig) => (signal::CLD_DUMPED, sig),
    }
}

impl TaskSet {
    /// A free pid: not a live task's, a process's, a group's or a
    /// session's.
    pub fn alloc_pid(&mut self) -> Result<i32, Errno> {
        for _ in 0..PID_MAX {
            let pid = self.next_pid;
            self.next_pid = if pid >= PID_MAX - 1 { 300 } else { pid + 1 };
            if self.tasks.contains_key(&pid) || self.procs.contains_key(&pid) {
                continue;
            }
            if self.procs.values().any(|p| p.pgid == pid || p.sid == pid) {
                continue;
            }
            return Ok(pid);
        }
        Err(Errno::EAGAIN)
    }

    /// The live threads of process `pid`.
    pub fn threads_of(&self, pid: i32) -> Vec<Arc<TaskShared>> {
        self.procs
            .get(&pid)
            .map(|p| {
                p.threads
                    .iter()
                    .filter_map(|t| self.tasks.get(t).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The live process with pid `pid`.
    pub fn live(&self, pid: i32) -> Option<&Process> {
        self.procs.get(&pid).filter(|p| p.zombie.is_none())
    }

    /// Whether the process group `pgid` has a member whose parent is in
    /// the same session but another group (POSIX's "not orphaned").
    pub fn group_orphaned(&self, pgid: i32) -> bool {
        !self.procs.values().any(|p| {
            p.pgid == pgid
                && p.zombie.is_none()
                && self
                    .procs
                    .get(&p.parent)
                    .is_some_and(|q| q.pgid != pgid && q.sid == p.sid)
        })
    }
}

impl Kernel {
    /// Sends `info` to a process: queued for the whole group, delivered by
    /// one thread that does not block it.
    pub fn send_group_signal(&self, tg: &Arc<ThreadGroup>, info: SigInfo) {
        let ts = self.tasks.lock();
        self.send_group_signal_locked(&ts, tg, info);
    }

    pub(crate) fn send_group_signal_locked(
        &self,
        ts: &TaskSet,
        tg: &Arc<ThreadGroup>,
        info: SigInfo,
    ) {
        let sig = info.signo;
        if ts.live(tg.tgid).is_none() {
            return;
        }
        let threads = ts.threads_of(tg.tgid);
        if sig == libc::SIGKILL {
            self.group_exit_locked(ts, tg, ExitStatus::Signaled(libc::SIGKILL));
            return;
        }
        if sig == libc::SIGCONT {
            self.group_continue_locked(ts, tg);
        } else if signal::STOP_SIGNALS & signal::sig_bit(sig) != 0 {
            // A stop signal cancels a pending SIGCONT.
            tg.sig
                .lock()
                .pending
                .discard(signal::sig_bit(libc::SIGCONT));
            for t in &threads {
                t.sig.lock().pending.discard(signal::sig_bit(libc::SIGCONT));
            }
        }
        let ignored = ignored_by(tg, sig);
        let all_block = threads.iter().all(|t| t.blocks_or_awaits(sig));
        if ignored && !all_block {
            return;
        }
        if !tg.sig.lock().pending.push(info) {
            return;
        }
        tg.signal_queue.notify(libc::POLLIN as u32);
        if let Some(t) = threads.iter().find(|t| !t.blocks(sig)) {
            t.interrupt();
        }
    }

    /// Sends `info` to one thread.
    pub fn send_thread_signal(&self, t: &Arc<TaskShared>, info: SigInfo) {
        let sig = info.signo;
        let tg = t.tg.clone();
        if sig == libc::SIGKILL
            || sig == libc::SIGCONT
            || signal::STOP_SIGNALS & signal::sig_bit(sig) != 0
        {
            // These act on the whole process.
            let ts = self.tasks.lock();
            if sig == libc::SIGKILL {
                self.group_exit_locked(&ts, &tg, ExitStatus::Signaled(libc::SIGKILL));
                return;
            }
            if sig == libc::SIGCONT {
                self.group_continue_locked(&ts, &tg);
            }
        }
        let ignored = ignored_by(&tg, sig);
        if ignored && !t.blocks_or_awaits(sig) {
            return;
        }
        t.send(info);
    }

    /// The whole process exits with `status`: every thread is told to go.
    pub fn group_exit(&self, tg: &Arc<ThreadGroup>, status: ExitStatus) {
        let ts = self.tasks.lock();
        self.group_exit_locked(&ts, tg, status);
    }

    pub(crate) fn group_exit_locked(
        &self,
        ts: &TaskSet,
        tg: &Arc<ThreadGroup>,
        status: ExitStatus,
    ) {
        {
            let mut g = tg.sig.lock();
            if g.exit.is_none() {
                g.exit = Some(status);
            }
            g.stopped = None;
        }
        for t in ts.threads_of(tg.tgid) {
            t.request_exit();
        }
    }

    /// A stop signal's default action: the process stops, and its parent
    /// hears of it.
    pub fn group_stop(&self, tg: &Arc<ThreadGroup>, sig: i32) {
        let ts = self.tasks.lock();
        {
            let mut g = tg.sig.lock();
            if g.exit.is_some() || g.stopped.is_some() {
                return;
            }
            g.stopped = Some(sig);
        }
        for t in ts.threads_of(tg.tgid) {
            t.interrupt();
        }
        drop(ts);
        let mut ts = self.tasks.lock();
        if let Some(p) = ts.procs.get_mut(&tg.tgid) {
            p.report = Some(Report::Stopped(sig));
            let (parent, uid) = (p.parent, p.uid);
            self.notify_parent_locked(&ts, tg.tgid, parent, signal::CLD_STOPPED, sig, uid, true);
        }
    }

    /// SIGCONT: a stopped process goes on, and its parent hears of it.
    fn group_continue_locked(&self, ts: &TaskSet, tg: &Arc<ThreadGroup>) {
        let was_stopped = {
            let mut g = tg.sig.lock();
            g.pending.discard(signal::STOP_SIGNALS);
            g.stopped.take().is_some()
        };
        let threads = ts.threads_of(tg.tgid);
        for t in &threads {
            t.sig.lock().pending.discard(signal::STOP_SIGNALS);
            t.interrupt();
        }
        if was_stopped {
            // The report is recorded by the caller's next look: record it
            // here through interior state the wait path reads.
            self.pending_continue.lock().push(tg.tgid);
            if let Some(p) = ts.procs.get(&tg.tgid) {
                self.notify_parent_locked(
                    ts,
                    tg.tgid,
                    p.parent,
                    signal::CLD_CONTINUED,
                    libc::SIGCONT,
                    p.uid,
                    true,
                );
            }
        }
    }

    /// Tells `parent` about its child `pid`: wakes its waits and sends it
    /// SIGCHLD (for stops and continues, unless it asked not to hear of
    /// them with SA_NOCLDSTOP).
    #[allow(clippy::too_many_arguments)]
    fn notify_parent_locked(
        &self,
        ts: &TaskSet,
        pid: i32,
        parent: i32,
        code: i32,
        status: i32,
        uid: u32,
        stop_or_continue: bool,
    ) {
        let Some(pp) = ts.live(parent) else {
            return;
        };
        let ptg = pp.tg.clone();
        ptg.child_events.notify_all();
        let act = ptg.action(libc::SIGCHLD);
        if stop_or_continue && act.flags & libc::SA_NOCLDSTOP as u64 != 0 {
            return;
        }
        let info = SigInfo::child(libc::SIGCHLD, code, pid, uid, status, (0, 0));
        self.send_group_signal_locked(ts, &ptg, info);
    }

    /// A thread has ended. The last thread of a process makes it a
    /// zombie: its children go to a reaper, its parent hears of it.
    pub fn thread_exited(&self, t: &Arc<TaskShared>, status: ExitStatus, times: (u64, u64)) {
        let tg = t.tg.clone();
        let mut ts = self.tasks.lock();
        let tid = t.tid();
        if ts.tasks.get(&tid).is_some_and(|x| Arc::ptr_eq(x, t)) {
            ts.tasks.remove(&tid);
        }
        {
            let mut d = tg.dead_times.lock();
            d.user += times.0;
            d.sys += times.1;
        }
        let last = match ts.procs.get_mut(&tg.tgid) {
            Some(p) => {
                p.threads.remove(&tid);
                p.threads.is_empty()
            }
            None => false,
        };
        tg.thread_exits.notify_all();
        if last {
            let st = tg.sig.lock().exit.unwrap_or(status);
            self.process_exited(&mut ts, tg.tgid, st);
        }
        if ts.tasks.is_empty() {
            self.all_exited.notify_all();
        }
    }

    fn process_exited(&self, ts: &mut TaskSet, pid: i32, status: ExitStatus) {
        // A session leader's controlling terminal goes with it.
        super::tty::process_exiting_locked(self, ts, pid);
        // Before anyone can see the exit: SEM_UNDO, mq_notify owners.
        self.ipc.process_exited(pid);
        let (children, parent, exit_signal, uid, tg) = {
            let Some(p) = ts.procs.get_mut(&pid) else {
                return;
            };
            p.zombie = Some(status);
            p.report = None;
            p.tg.exit_queue.notify_all();
            (
                std::mem::take(&mut p.children),
                p.parent,
                p.exit_signal,
                p.uid,
                p.tg.clone(),
            )
        };
        // Process groups this exit may orphan: our own, and our
        // children's in our session.
        let (my_pgid, my_sid) = ts
            .procs
            .get(&pid)
            .map(|p| (p.pgid, p.sid))
            .unwrap_or((0, 0));
        let mut groups = vec![my_pgid];
        for c in &children {
            if let Some(cp) = ts.procs.get(c) {
                if cp.pgid != my_pgid && cp.sid == my_sid && !groups.contains(&cp.pgid) {
                    groups.push(cp.pgid);
                }
            }
        }
        // Orphans go to the nearest subreaper ancestor, else to init.
        let reaper = self.find_reaper(ts, pid);
        for c in children {
            let zombie = match ts.procs.get_mut(&c) {
                Some(cp) => {
                    cp.parent = reaper;
                    cp.zombie.is_some()
                }
                None => continue,
            };
            for th in ts.threads_of(c) {
                let sig = th.view.lock().prctl.pdeath_signal;
                if sig != 0 {
                    self.send_thread_signal_locked(&th, SigInfo::new(sig, signal::SI_USER));
                }
            }
            if let Some(r) = ts.procs.get_mut(&reaper) {
                r.children.insert(c);
                if zombie {
                    r.tg.child_events.notify_all();
                }
            }
        }
        // A group orphaned now with stopped members gets SIGHUP and
        // SIGCONT, so that it does not stay stopped with nobody to
        // continue it (POSIX's rule for job control).
        for g in groups {
            if g == 0 || !ts.group_orphaned(g) {
                continue;
            }
            let members: Vec<Arc<ThreadGroup>> = ts
                .procs
                .values()
                .filter(|p| p.pgid == g && p.zombie.is_none())
                .map(|p| p.tg.clone())
                .collect();
            if !members.iter().any(|m| m.sig.lock().stopped.is_some()) {
                continue;
            }
            for m in members {
                self.send_group_signal_locked(
                    ts,
                    &m,
                    SigInfo::new(libc::SIGHUP, signal::SI_KERNEL),
                );
                self.send_group_signal_locked(
                    ts,
                    &m,
                    SigInfo::new(libc::SIGCONT, signal::SI_KERNEL),
                );
            }
        }
        if pid == 1 {
            ts.init_status = Some(status);
            // Init is gone: so is everyone else.
            let others: Vec<Arc<ThreadGroup>> = ts
                .procs
                .values()
                .filter(|p| p.zombie.is_none())
                .map(|p| p.tg.clone())
                .collect();
            for o in others {
                self.group_exit_locked(ts, &o, ExitStatus::Signaled(libc::SIGKILL));
            }
            self.all_exited.notify_all();
            return;
        }
        let times = {
            let d = tg.dead_times.lock();
            (d.user / 10_000_000, d.sys / 10_000_000)
        };
        let Some(pp) = ts.live(parent) else {
            return;
        };
        let ptg = pp.tg.clone();
        let act = ptg.action(libc::SIGCHLD);
        let autoreap = exit_signal == libc::SIGCHLD
            && (act.handler == signal::SIG_IGN || act.flags & libc::SA_NOCLDWAIT as u64 != 0);
        if exit_signal > 0 {
            let (code, st) = child_code(status);
            let info = SigInfo::child(exit_signal, code, pid, uid, st, times);
            self.send_group_signal_locked(ts, &ptg, info);
        }
        if autoreap {
            ts.procs.remove(&pid);
            if let Some(pp) = ts.procs.get_mut(&parent) {
                pp.children.remove(&pid);
            }
        }
        ptg.child_events.notify_all();
    }

    fn send_thread_signal_locked(&self, t: &Arc<TaskShared>, info: SigInfo) {
        t.send(info);
    }

    fn find_reaper(&self, ts: &TaskSet, pid: i32) -> i32 {
        let mut cur = ts.procs.get(&pid).map(|p| p.parent).unwrap_or(0);
        let mut n = 0;
        while cur != 0 && n < 4096 {
            let Some(p) = ts.procs.get(&cur) else { break };
            if p.zombie.is_none() && crate::kernel::task::lock_prctl(&p.tg).child_subreaper {
                return cur;
            }
            cur = p.parent;
            n += 1;
        }
        if ts.live(1).is_some() && pid != 1 {
            1
        } else {
            0
        }
    }

    /// Waits until pid 1 has exited and every task has gone; returns how
    /// pid 1 ended.
    pub fn wait_for_init(&self) -> ExitStatus {
        let mut ts = self.tasks.lock();
        loop {
            if let Some(s) = ts.init_status {
                if ts.tasks.is_empty() {
                    return s;
                }
            }
            self.all_exited.wait(&mut ts);
        }
    }

    /// Stops reports of continues queued by SIGCONT: recorded into the
    /// processes, for wait.
    pub fn take_continue_reports(&self, ts: &mut TaskSet) {
        let pending: Vec<i32> = std::mem::take(&mut *self.pending_continue.lock());
        for pid in pending {
            if let Some(p) = ts.procs.get_mut(&pid) {
                if p.zombie.is_none() {
                    p.report = Some(Report::Continued);
                }
            }
        }
    }
}
