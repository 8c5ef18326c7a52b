//! The kernel: tasks, thread groups, credentials, limits, signals state,
//! futexes, and the identity of the sandbox.

pub mod compat;
pub mod creds;
pub mod futex;
pub mod ipc;
pub mod limits;
pub mod process;
pub mod seccomp;
pub mod signal;
pub mod task;
pub mod timer;
pub mod tty;
pub mod waiter;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use platform::Platform;

use crate::mm::MemoryFile;

/// The kernel release the sandbox reports. Programs gate features on it;
/// the sentry answers ENOSYS for what it does not implement of it.
pub const RELEASE: &str = "6.6.0";
/// `uname -v`.
pub const VERSION: &str = "#1 SMP PREEMPT_DYNAMIC runsc";
/// `/proc/sys/fs/nr_open`.
pub const NR_OPEN: u64 = 1 << 20;

/// How a thread group ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(u8),
    Signaled(i32),
    /// Killed by a signal whose default action dumps core (and a core
    /// limit that allows one).
    Dumped(i32),
}

impl ExitStatus {
    /// The status a shell reports: the code, or 128 + the signal.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c as i32,
            ExitStatus::Signaled(s) | ExitStatus::Dumped(s) => 128 + s,
        }
    }
}

/// The sandbox's host and domain names.
#[derive(Clone, Debug)]
pub struct Uts {
    pub hostname: String,
    pub domainname: String,
}

/// State shared by every task of the sandbox.
pub struct Kernel {
    pub platform: Arc<dyn Platform>,
    pub memory_file: Arc<MemoryFile>,
    pub uts: Mutex<Uts>,
    pub futexes: futex::FutexTable,
    /// Log every syscall with its arguments and result.
    pub strace: bool,
    pub boot_time: Instant,
    /// How many CPUs the sandbox shows.
    pub cpus: usize,
    /// What the guest asked for that the sentry lacks (the compatibility
    /// report), the learned seccomp profile, the strace filter and log.
    pub compat: compat::CompatState,
    /// Every task and process: the sandbox's pid namespace.
    pub tasks: parking_lot::Mutex<process::TaskSet>,
    /// Notified when the last task exits or pid 1 exits.
    pub all_exited: parking_lot::Condvar,
    /// Processes continued by SIGCONT, not yet recorded for wait.
    pub pending_continue: parking_lot::Mutex<Vec<i32>>,
    /// The event loop over the host fds the sandbox was given.
    pub host_events: Arc<crate::vfs::host::HostEvents>,
    /// The timer thread's queue (wall-clock timers of every process).
    pub timers: timer::TimerQueue,
    /// The VFS's sandbox-wide state.
    pub vfs: crate::vfs::VfsState,
    /// The sandbox's own /dev/pts, where consoles get their terminals.
    pub ptys: crate::fsimpl::devpts::SandboxPts,
    /// `runsc pause`: every task stops where it enters guest code.
    pub freezer: Freezer,
    /// Sockets: the socket file system and each family's namespaces.
    pub sockets: crate::fsimpl::socket::SocketState,
    /// The sandbox's IPC namespace (System V IPC, POSIX message queues).
    pub ipc: ipc::IpcNamespace,
}

/// Stops every task of the sandbox (as the cgroup freezer stops a
/// container's processes): a task running guest code is kicked back into
/// the sentry and waits there; a task blocked in a syscall waits once it
/// returns. A task told to exit (SIGKILL) goes on to exit.
#[derive(Default)]
pub struct Freezer {
    frozen: std::sync::atomic::AtomicBool,
    lock: parking_lot::Mutex<()>,
    thawed: parking_lot::Condvar,
}

impl Freezer {
    pub fn frozen(&self) -> bool {
        self.frozen.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn freeze(&self, kernel: &Kernel) {
        self.frozen
            .store(true, std::sync::atomic::Ordering::Release);
        for t in kernel.tasks.lock().tasks.values() {
            t.kick();
        }
    }

    pub fn thaw(&self) {
        let _g = self.lock.lock();
        self.frozen
            .store(false, std::sync::atomic::Ordering::Release);
        self.thawed.notify_all();
    }

    /// Waits while the sandbox is frozen, unless `leave` says the task
    /// must go on (it is exiting).
    pub fn wait_thawed(&self, leave: impl Fn() -> bool) {
        let mut g = self.lock.lock();
        while self.frozen() && !leave() {
            self.thawed
                .wait_for(&mut g, std::time::Duration::from_millis(50));
        }
    }
}

impl Kernel {
    pub fn new(
        platform: Arc<dyn Platform>,
        memory_file: Arc<MemoryFile>,
        hostname: String,
        strace: bool,
    ) -> Kernel {
        Kernel {
            platform,
            memory_file,
            uts: Mutex::new(Uts {
                hostname,
                domainname: "(none)".to_string(),
            }),
            futexes: futex::FutexTable::default(),
            strace,
            boot_time: Instant::now(),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            compat: Default::default(),
            tasks: parking_lot::Mutex::new(process::TaskSet::default()),
            all_exited: parking_lot::Condvar::new(),
            pending_continue: parking_lot::Mutex::new(Vec::new()),
            host_events: crate::vfs::host::HostEvents::new()
                .expect("the host event loop needs an epoll instance"),
            timers: timer::TimerQueue::new(),
            vfs: Default::default(),
            freezer: Freezer::default(),
            ptys: Default::default(),
            sockets: Default::default(),
            ipc: Default::default(),
        }
    }

    /// Records a guest request the sentry does not implement (answered
    /// ENOSYS); logs it the first time per name.
    pub fn note_unimplemented(&self, what: &str) {
        self.note_unsupported(what, "ENOSYS");
    }

    /// As [`Kernel::note_unimplemented`], for a request answered with
    /// another error (`answer`, e.g. EAFNOSUPPORT for a socket family).
    /// Recorded for the compatibility report under the syscall being
    /// handled; a handler's own cases are better declared next to it
    /// ([`compat::Unsupported`]).
    pub fn note_unsupported(&self, what: &str, answer: &'static str) {
        self.compat.note_text(what, answer);
    }

    /// Counts of unimplemented requests, sorted by name.
    pub fn unimplemented_counts(&self) -> Vec<(String, u64)> {
        self.compat.counts()
    }
}

/// Makes the death of `mm`'s address space (its stub killed from outside)
/// wake every task that uses it, wherever it waits: each then finds its
/// platform context gone and its process is killed.
pub fn watch_address_space(kernel: &Arc<Kernel>, mm: &crate::mm::MemoryManager) {
    let k = Arc::downgrade(kernel);
    let id = mm.id;
    mm.address_space().on_death(Box::new(move || {
        let Some(k) = k.upgrade() else {
            return;
        };
        let victims: Vec<_> = k
            .tasks
            .lock()
            .tasks
            .values()
            .filter(|t| t.view.lock().mm.id == id)
            .cloned()
            .collect();
        for v in victims {
            v.interrupt();
        }
    }));
}
