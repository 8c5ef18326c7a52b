//! Tasks (threads) and thread groups (processes), and the run loop.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use platform::{Context, Event, PlatformError, Registers, SignalInfo};

use super::creds::Credentials;
use super::limits::Limits;
use super::signal::{self, SigSet, SignalHandlers, SignalStack};
use super::{ExitStatus, Kernel};
use crate::mm::{MemoryManager, MmLimits};
use crate::vfs::FdTable;

/// A process.
pub struct ThreadGroup {
    /// Its pid in the sandbox's pid namespace.
    pub tgid: i32,
    /// Its parent's pid (0: none inside the sandbox).
    pub ppid: i32,
    pub limits: Mutex<Limits>,
    pub handlers: Mutex<SignalHandlers>,
    pub umask: Mutex<u32>,
    /// Process-wide prctl state.
    pub prctl: Mutex<ProcessPrctl>,
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
    pub fn new(tgid: i32, ppid: i32, limits: Limits) -> ThreadGroup {
        ThreadGroup {
            tgid,
            ppid,
            limits: Mutex::new(limits),
            handlers: Mutex::new(SignalHandlers::default()),
            umask: Mutex::new(0o022),
            prctl: Mutex::new(ProcessPrctl {
                dumpable: 1,
                child_subreaper: false,
            }),
        }
    }

    /// The limits the memory manager enforces.
    pub fn mm_limits(&self) -> MmLimits {
        let l = self.limits.lock().unwrap();
        MmLimits {
            address_space: l.cur(libc::RLIMIT_AS),
            data: l.cur(libc::RLIMIT_DATA),
            stack: l.cur(libc::RLIMIT_STACK),
        }
    }
}

/// A thread.
pub struct Task {
    pub kernel: Arc<Kernel>,
    pub tg: Arc<ThreadGroup>,
    pub tid: i32,
    pub regs: Registers,
    pub mm: Arc<MemoryManager>,
    pub fds: Arc<FdTable>,
    pub creds: Credentials,
    pub ctx: Box<dyn Context>,
    pub signal_mask: SigSet,
    pub alt_stack: SignalStack,
    /// set_tid_address / CLONE_CHILD_CLEARTID.
    pub clear_child_tid: u64,
    /// set_robust_list head and length.
    pub robust_list: (u64, u64),
    /// The command name (`comm`), at most 15 bytes.
    pub comm: Vec<u8>,
    pub prctl: ThreadPrctl,
    /// Set when the task is to stop running: the thread group's exit.
    pub exit: Option<ExitStatus>,
    /// The last fault handled ((address, rip)) and how often in a row.
    pub last_fault: ((u64, u64), u32),
    /// Time spent running guest code, and in the sentry for the guest.
    pub user_time: Duration,
    pub sys_time: Duration,
    /// The task's mount table, root and working directory.
    pub fs: Arc<Mutex<crate::vfs::path::FsContext>>,
}

impl Task {
    /// Runs the task until its thread group exits.
    pub fn run(mut self) -> ExitStatus {
        let aspace = self.mm.address_space().clone();
        loop {
            if let Some(status) = self.exit {
                return status;
            }
            let t0 = Instant::now();
            let ev = self.ctx.switch(&aspace, &mut self.regs);
            let t1 = Instant::now();
            self.user_time += t1 - t0;
            match ev {
                Ok(Event::Syscall) => crate::syscalls::dispatch(&mut self),
                Ok(Event::Fault(info)) => self.handle_fault(info),
                Ok(Event::Signal(info)) => self.force_signal(info.signo, info),
                Ok(Event::Interrupted) => {}
                Err(e) => self.platform_failed(e),
            }
            self.sys_time += t1.elapsed();
        }
    }

    fn handle_fault(&mut self, info: SignalInfo) {
        let limits = self.tg.mm_limits();
        // The same fault again and again means the memory manager maps
        // something that does not satisfy the access: a sentry bug. End
        // the process rather than spin forever.
        let key = (info.addr, self.regs.rip);
        if self.last_fault.0 == key {
            self.last_fault.1 += 1;
        } else {
            self.last_fault = (key, 0);
        }
        if self.last_fault.1 >= 64 {
            tracing::error!(
                "task {}: fault at {:#x} (rip {:#x}) repeats after being handled; \
                 ending the process",
                self.tid,
                info.addr,
                self.regs.rip
            );
            self.force_signal(info.signo, info);
            return;
        }
        match self.mm.handle_fault(info.addr, info.code, limits) {
            Ok(()) => {}
            Err(segv) => {
                let sig = if info.signo == libc::SIGBUS {
                    libc::SIGBUS
                } else {
                    libc::SIGSEGV
                };
                self.force_signal(
                    sig,
                    SignalInfo {
                        signo: sig,
                        code: segv.code,
                        ..info
                    },
                )
            }
        }
    }

    /// A synchronous signal caused by the guest's own instruction. Guest
    /// handlers are not run yet (signal delivery comes with the signals
    /// work), so the default action applies: the thread group dies.
    pub fn force_signal(&mut self, sig: i32, info: SignalInfo) {
        let handler = self.tg.handlers.lock().unwrap().actions[(sig - 1) as usize].handler;
        if handler != signal::SIG_DFL && handler != signal::SIG_IGN {
            tracing::warn!(
                "guest has a handler for signal {sig}, but signal delivery is not implemented; \
                 applying the default action"
            );
        }
        if self.kernel.strace {
            tracing::info!(
                "[{:>4}:{:>4}] killed by signal {sig} (code {}, addr {:#x}) at rip {:#x}",
                self.tg.tgid,
                self.tid,
                info.code,
                info.addr,
                self.regs.rip
            );
        }
        self.exit = Some(ExitStatus::Signaled(sig));
    }

    /// A signal the kernel raises at the task itself as the result of a
    /// syscall (SIGPIPE on a write to a broken pipe). Ignored and blocked
    /// signals do nothing; a signal whose default action ends the process
    /// ends it. Running guest handlers comes with signal delivery.
    pub fn raise(&mut self, sig: i32) {
        let handler = self.tg.handlers.lock().unwrap().actions[(sig - 1) as usize].handler;
        if self.signal_mask & signal::sig_bit(sig) != 0 || handler == signal::SIG_IGN {
            return;
        }
        if handler != signal::SIG_DFL {
            tracing::warn!(
                "guest has a handler for signal {sig}, but signal delivery is not implemented; \
                 the signal is dropped"
            );
            return;
        }
        match signal::default_action(sig) {
            signal::DefaultAction::Terminate | signal::DefaultAction::CoreDump => {
                self.exit = Some(ExitStatus::Signaled(sig));
            }
            _ => {}
        }
    }

    fn platform_failed(&mut self, e: PlatformError) {
        tracing::error!(
            "task {} lost its platform context ({e}); killing its thread group",
            self.tid
        );
        self.exit = Some(ExitStatus::Signaled(libc::SIGKILL));
    }
}
