//! The ptrace platform.
//!
//! Each guest address space is a *stub process*: a child of the sentry that
//! unmapped everything but one page of stub code and stopped itself under
//! `PTRACE_TRACEME`. Guest threads run in stub threads under
//! `PTRACE_SYSEMU`, so every guest `syscall` instruction stops before the
//! host executes it. The sentry changes a stub's mappings by making one of
//! its stopped threads execute `mmap`/`munmap` at the stub page's `syscall;
//! int3` pair; that is the only kind of host syscall a stub makes for the
//! sentry.
//!
//! ptrace requests must come from the tracing thread. Each address space
//! has an *owner*: a sentry thread of its own that traces the stub's first
//! thread (the master, which never runs guest code), and serves requests
//! from other sentry threads: changing mappings, and cloning a new stub
//! thread. Every sentry thread that runs guest code in an address space
//! gets a stub thread of its own there, cloned by the master and then
//! attached by that sentry thread, and changes mappings through it; a
//! sentry thread with no stub thread in an address space asks the owner.
//! Stub threads are processes that share the stub's memory (`CLONE_VM`,
//! not `CLONE_THREAD`), so a stop or a signal of one never touches another.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::{
    Access, AddressSpace, Context, Event, FpState, Interrupt, Interrupter, PlatformError, Prot,
    Registers, SignalInfo, PAGE_SIZE,
};

/// Highest user address of the x86-64 host (47-bit address space).
pub(crate) const HOST_TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// Size of the region that holds the stub code in every stub process.
const STUB_REGION_SIZE: u64 = PAGE_SIZE;

/// The signal an [`Interrupter`] sends to a stub thread. Its default action
/// is to ignore, and stubs have no children, so it never means anything
/// else to a stub.
const INTERRUPT_SIGNAL: i32 = libc::SIGCHLD;

/// `NT_X86_XSTATE`, the regset of the XSAVE area.
const NT_X86_XSTATE: usize = 0x202;

/// What the stub child exits with when `PTRACE_TRACEME` fails.
pub(crate) const TRACEME_FAILED: i32 = 71;

// The stub's code. It is copied to the stub page, so it must be position
// independent and use no stack.
//
// Entry (in a freshly forked child): rdi = start of the stub region,
// rsi = end of the stub region, rdx = host task size. It unmaps everything
// else and stops itself; from then on the sentry only ever points `rip` at
// `runsc_stub_syscall` to make it execute one syscall and trap, or (in the
// master) at `runsc_stub_clone` to clone a new stub thread. The new thread
// stops itself and traps once its new tracer has attached.
std::arch::global_asm!(
    ".pushsection .text.runsc_stub, \"ax\"",
    ".globl runsc_stub_start",
    ".globl runsc_stub_syscall",
    ".globl runsc_stub_clone",
    ".globl runsc_stub_end",
    "runsc_stub_start:",
    "mov r12, rdi",
    "mov r13, rsi",
    "mov r14, rdx",
    // munmap(0, stub_start)
    "mov eax, 11",
    "xor edi, edi",
    "mov rsi, r12",
    "syscall",
    // munmap(stub_end, task_size - stub_end)
    "mov eax, 11",
    "mov rdi, r13",
    "mov rsi, r14",
    "sub rsi, r13",
    "syscall",
    // kill(getpid(), SIGSTOP): the tracer takes over from here.
    "mov eax, 39",
    "syscall",
    "mov edi, eax",
    "mov eax, 62",
    "mov esi, 19",
    "syscall",
    "runsc_stub_syscall:",
    "syscall",
    "int3",
    "jmp runsc_stub_syscall",
    "runsc_stub_clone:",
    "syscall",
    "test rax, rax",
    "jz 2f",
    "int3",
    "jmp runsc_stub_syscall",
    // The new stub thread or process: named for what it is (as a clone
    // of the template it would carry the template's name), then stopped
    // until attached, then trapping to the tracer.
    "2:",
    "mov eax, 157",
    "mov edi, 15",
    "lea rsi, [rip + 3f]",
    "syscall",
    "mov eax, 39",
    "syscall",
    "mov edi, eax",
    "mov eax, 62",
    "mov esi, 19",
    "syscall",
    "int3",
    "jmp runsc_stub_syscall",
    "3:",
    ".asciz \"runsc-stub\"",
    "runsc_stub_end:",
    ".popsection",
);

extern "C" {
    /// glibc's registration of this thread's rseq area: offset from the
    /// thread pointer, and size.
    static __rseq_offset: isize;
    static __rseq_size: libc::c_uint;
    static runsc_stub_start: u8;
    static runsc_stub_syscall: u8;
    static runsc_stub_clone: u8;
    static runsc_stub_end: u8;
}

/// Where the stub code lives: one address, the same in the sentry and in
/// every stub process.
#[derive(Clone, Copy, Debug)]
struct StubRegion {
    start: u64,
    syscall_addr: u64,
    clone_addr: u64,
}

static STUB_REGION: OnceLock<Result<StubRegion, String>> = OnceLock::new();

/// Maps the stub page into the sentry, as high as possible, once.
fn stub_region() -> Result<StubRegion, PlatformError> {
    let r = STUB_REGION.get_or_init(|| {
        let start_sym = &raw const runsc_stub_start as u64;
        let syscall_sym = &raw const runsc_stub_syscall as u64;
        let clone_sym = &raw const runsc_stub_clone as u64;
        let end_sym = &raw const runsc_stub_end as u64;
        let code_len = (end_sym - start_sym) as usize;
        assert!(code_len as u64 <= STUB_REGION_SIZE);
        // Try the top of the address space first, then lower, skipping
        // whatever the sentry already has there (its stack, usually).
        let mut candidate = HOST_TASK_SIZE - STUB_REGION_SIZE - 0x1000_0000;
        for _ in 0..4096 {
            // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping;
            // the new anonymous page is ours alone.
            let p = unsafe {
                libc::mmap(
                    candidate as *mut libc::c_void,
                    STUB_REGION_SIZE as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED && p as u64 == candidate {
                // SAFETY: the source is the stub code in our text section,
                // `code_len` bytes long; the destination is the page we just
                // mapped writable, at least that long.
                unsafe {
                    std::ptr::copy_nonoverlapping(start_sym as *const u8, p as *mut u8, code_len);
                }
                // SAFETY: changes the protection of our own page only.
                let rc = unsafe {
                    libc::mprotect(
                        p,
                        STUB_REGION_SIZE as usize,
                        libc::PROT_READ | libc::PROT_EXEC,
                    )
                };
                if rc != 0 {
                    return Err(format!(
                        "mprotect of the stub page: {}",
                        std::io::Error::last_os_error()
                    ));
                }
                return Ok(StubRegion {
                    start: candidate,
                    syscall_addr: candidate + (syscall_sym - start_sym),
                    clone_addr: candidate + (clone_sym - start_sym),
                });
            }
            if p != libc::MAP_FAILED {
                // An old kernel ignored MAP_FIXED_NOREPLACE; give it back.
                // SAFETY: `p` is the page mmap just gave us.
                unsafe { libc::munmap(p, STUB_REGION_SIZE as usize) };
            }
            candidate -= 0x1000_0000;
        }
        Err("no free address for the stub page".to_string())
    });
    r.clone()
        .map_err(|reason| PlatformError::StubDied { pid: 0, reason })
}

fn current_tid() -> i32 {
    thread_local! {
        static TID: i32 = {
            // SAFETY: gettid has no preconditions.
            unsafe { libc::gettid() }
        };
    }
    TID.with(|t| *t)
}

/// The size of the XSAVE area for the features the host enabled.
fn xsave_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| {
        // SAFETY: CPUID leaf 0xD exists on every x86-64 CPU with XSAVE;
        // on one without, it reads zeroes and the FXSAVE size is used.
        #[allow(unused_unsafe)]
        let r = unsafe { std::arch::x86_64::__cpuid_count(0xd, 0) };
        (r.ebx as usize).max(576)
    })
}

pub(crate) mod placement {
    //! Where task threads run. A sentry thread and the stub thread it
    //! traces hand the CPU back and forth on every guest syscall; on one
    //! CPU that is a plain context switch, across CPUs it costs
    //! inter-processor wake-ups that make each round trip several times
    //! slower (measured: 12 us against 22 to 60 us on a 2-CPU VM). So both
    //! are bound to one CPU. Which CPU is decided sentry-wide: each
    //! context goes where the fewest recently active contexts are, and the
    //! choice is revisited when the context comes back from a pause in the
    //! sentry (it blocked) and every few thousand switches, so tasks
    //! spread over the CPUs and move when their CPU gets crowded.

    use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, OnceLock, Weak};
    use std::time::Instant;

    /// A context counts on its CPU if it switched this recently.
    const ACTIVE_NS: u64 = 20_000_000;

    /// One context's placement, shared with the registry.
    #[derive(Default)]
    pub struct Slot {
        pub cpu: AtomicI32,
        /// When it last entered the guest, in ns since the platform began.
        pub last: AtomicU64,
        /// A second CPU the context holds (its stub thread's, when the two
        /// sides spin on CPUs of their own), or -1.
        pub partner: AtomicI32,
    }

    struct Registry {
        cpus: Vec<i32>,
        slots: Vec<Weak<Slot>>,
    }

    fn registry() -> &'static Mutex<Registry> {
        static R: OnceLock<Mutex<Registry>> = OnceLock::new();
        R.get_or_init(|| {
            Mutex::new(Registry {
                cpus: allowed_cpus(),
                slots: Vec::new(),
            })
        })
    }

    pub fn epoch() -> Instant {
        static E: OnceLock<Instant> = OnceLock::new();
        *E.get_or_init(Instant::now)
    }

    pub fn now_ns() -> u64 {
        epoch().elapsed().as_nanos() as u64
    }

    /// The CPUs the sentry may use, read once (by the first caller, which
    /// is the platform's creator, before any thread was bound).
    pub fn allowed_cpus() -> Vec<i32> {
        // SAFETY: all-zero is an empty cpu_set_t; the kernel fills it.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: reads the affinity of the whole process's main thread
        // into our set.
        let rc = unsafe {
            libc::sched_getaffinity(
                libc::getpid(),
                std::mem::size_of::<libc::cpu_set_t>(),
                &mut set,
            )
        };
        let mut v = Vec::new();
        if rc == 0 {
            for c in 0..libc::CPU_SETSIZE as usize {
                // SAFETY: CPU_ISSET checks the index against the set's size.
                if unsafe { libc::CPU_ISSET(c, &set) } {
                    v.push(c as i32);
                }
            }
        }
        if v.is_empty() {
            v.push(0);
        }
        v
    }

    pub fn init() {
        let _ = registry();
        let _ = epoch();
    }

    pub fn new_slot() -> Arc<Slot> {
        let s = Arc::new(Slot {
            cpu: AtomicI32::new(-1),
            last: AtomicU64::new(0),
            partner: AtomicI32::new(-1),
        });
        let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
        r.slots.retain(|w| w.strong_count() > 0);
        r.slots.push(Arc::downgrade(&s));
        s
    }

    /// The CPU `slot` should be on now: the least loaded, staying where it
    /// is on a tie.
    pub fn choose(slot: &Arc<Slot>) -> i32 {
        let r = registry().lock().unwrap_or_else(|e| e.into_inner());
        let now = now_ns();
        let mut load = vec![0u32; r.cpus.len()];
        for w in &r.slots {
            let Some(s) = w.upgrade() else { continue };
            if Arc::ptr_eq(&s, slot) {
                continue;
            }
            let cpu = s.cpu.load(Ordering::Relaxed);
            if now.saturating_sub(s.last.load(Ordering::Relaxed)) > ACTIVE_NS {
                continue;
            }
            if let Some(i) = r.cpus.iter().position(|&c| c == cpu) {
                load[i] += 1;
            }
            let partner = s.partner.load(Ordering::Relaxed);
            if let Some(i) = r.cpus.iter().position(|&c| c == partner) {
                load[i] += 1;
            }
        }
        let cur = slot.cpu.load(Ordering::Relaxed);
        let mut best = r.cpus.iter().position(|&c| c == cur);
        for i in 0..r.cpus.len() {
            match best {
                Some(b) if load[i] >= load[b] => {}
                _ => best = Some(i),
            }
        }
        r.cpus[best.unwrap_or(0)]
    }

    /// A CPU other than `cpu` that no other recently active context uses
    /// (`prefer` if it is one), for `slot`'s stub thread to spin on; none
    /// if the CPUs are too few to give every active context two.
    pub fn spare(slot: &Arc<Slot>, cpu: i32, prefer: i32) -> Option<i32> {
        let r = registry().lock().unwrap_or_else(|e| e.into_inner());
        let now = now_ns();
        let mut busy = vec![cpu];
        let mut others = 0;
        for w in &r.slots {
            let Some(s) = w.upgrade() else { continue };
            if Arc::ptr_eq(&s, slot)
                || now.saturating_sub(s.last.load(Ordering::Relaxed)) > ACTIVE_NS
            {
                continue;
            }
            others += 1;
            busy.push(s.cpu.load(Ordering::Relaxed));
            busy.push(s.partner.load(Ordering::Relaxed));
        }
        // Two CPUs for every active context, or none gets a second.
        if (others + 1) * 2 > r.cpus.len() {
            return None;
        }
        if prefer >= 0 && r.cpus.contains(&prefer) && !busy.contains(&prefer) {
            return Some(prefer);
        }
        r.cpus.iter().copied().find(|c| !busy.contains(c))
    }

    /// Binds host thread `tid` (0: the caller) to one CPU.
    pub fn bind(tid: i32, cpu: i32) -> bool {
        // SAFETY: all-zero is an empty cpu_set_t.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: CPU_SET checks the index against the set's size.
        unsafe { libc::CPU_SET(cpu as usize, &mut set) };
        // SAFETY: sets the affinity of the caller or of our own stub thread.
        unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
    }

    /// Lets the calling thread run on every CPU the sentry may use (a new
    /// thread inherits its creator's binding).
    pub fn unbind_self() {
        let cpus = registry()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cpus
            .clone();
        // SAFETY: all-zero is an empty cpu_set_t.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for c in cpus {
            // SAFETY: CPU_SET checks the index against the set's size.
            unsafe { libc::CPU_SET(c as usize, &mut set) };
        }
        // SAFETY: sets the calling thread's affinity from our own set.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    }
}

/// Lets the calling sentry thread run on any CPU. Call it first thing in a
/// new task thread: threads inherit the one-CPU binding of their creator.
pub fn unbind_current_thread() {
    placement::unbind_self();
}

/// The host CPU the calling thread runs on.
pub fn current_cpu() -> i32 {
    // SAFETY: sched_getcpu has no preconditions.
    unsafe { libc::sched_getcpu() }
}

/// The ptrace platform.
pub struct PtracePlatform {
    memory_fd: RawFd,
    stub: StubRegion,
    /// An address space made ahead of need: creating one (an owner
    /// thread, a clone of the template, the attach) takes most of a
    /// fork's time, so a thread of its own keeps one ready.
    spare: Arc<Spare>,
    /// The stub process new address spaces are cloned from, started with
    /// the first address space (so that it is forked under whatever
    /// seccomp filter the sentry has installed by then).
    template: OnceLock<Arc<Template>>,
}

/// A stub process that never runs guest code, traced by a thread of its
/// own: every new address space is a clone of it. Cloning it copies the
/// page tables of its one stub page, where forking the sentry would copy
/// (and the child then tear down) all of the sentry's.
struct Template {
    requests: Mutex<Option<mpsc::Sender<StubReply>>>,
}

/// Where the template's thread sends the pid of a new stub process.
type StubReply = mpsc::Sender<Result<i32, PlatformError>>;

impl Template {
    fn start(memory_fd: RawFd, stub: StubRegion) -> Result<Arc<Template>, PlatformError> {
        let (tx, rx) = mpsc::channel::<StubReply>();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("stub-template".into())
            .spawn(move || {
                placement::unbind_self();
                let pid = match spawn_stub(memory_fd, stub, b"runsc-template\0") {
                    Ok(pid) => pid,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                for reply in rx {
                    let _ = reply.send(clone_stub_process(pid, stub));
                }
                // SAFETY: kills our own stub process, then reaps it.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                reap(pid);
            })
            .map_err(|e| PlatformError::Os {
                op: "spawning the template stub's thread",
                source: e,
            })?;
        ready_rx.recv().map_err(|_| PlatformError::StubDied {
            pid: 0,
            reason: "the template stub's thread ended before the stub started".into(),
        })??;
        Ok(Arc::new(Template {
            requests: Mutex::new(Some(tx)),
        }))
    }

    /// A new stub process, a child of the sentry, stopped and untraced
    /// until its owner attaches it.
    fn new_stub(&self) -> Result<i32, PlatformError> {
        let gone = || PlatformError::StubDied {
            pid: 0,
            reason: "the template stub is gone".into(),
        };
        let (tx, rx) = mpsc::channel();
        lock(&self.requests)
            .as_ref()
            .ok_or_else(gone)?
            .send(tx)
            .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

#[derive(Default)]
struct Spare {
    ready: Mutex<Option<Subprocess>>,
    /// Set when the spare was taken and a new one is wanted.
    wanted: Mutex<bool>,
    cv: std::sync::Condvar,
    started: std::sync::atomic::AtomicBool,
    /// Address spaces handed out so far.
    made: std::sync::atomic::AtomicU32,
}

impl Spare {
    fn take(&self) -> Option<Subprocess> {
        lock(&self.ready).take()
    }

    /// Asks the refill thread (started on first use) for a new spare.
    fn want(self: &Arc<Self>, memory_fd: RawFd, stub: StubRegion, template: &Arc<Template>) {
        *lock(&self.wanted) = true;
        self.cv.notify_one();
        if !self.started.swap(true, Ordering::SeqCst) {
            let me = self.clone();
            let template = template.clone();
            let r = std::thread::Builder::new()
                .name("stub-spare".into())
                .spawn(move || me.refill(memory_fd, stub, &template));
            if r.is_err() {
                self.started.store(false, Ordering::SeqCst);
            }
        }
    }

    fn refill(&self, memory_fd: RawFd, stub: StubRegion, template: &Arc<Template>) {
        placement::unbind_self();
        loop {
            {
                let mut w = lock(&self.wanted);
                while !*w {
                    w = self.cv.wait(w).unwrap_or_else(|e| e.into_inner());
                }
                *w = false;
            }
            if lock(&self.ready).is_some() {
                continue;
            }
            match Subprocess::new(memory_fd, stub, template) {
                Ok(sp) => *lock(&self.ready) = Some(sp),
                Err(e) => {
                    tracing::warn!("making a spare address space: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
    }
}

impl PtracePlatform {
    /// A platform whose address spaces map from `memory_fd`. The fd must
    /// stay open for the platform's lifetime.
    pub fn new(memory_fd: RawFd) -> Result<PtracePlatform, PlatformError> {
        placement::init();
        let stub = stub_region()?;
        Ok(PtracePlatform {
            memory_fd,
            stub,
            spare: Arc::new(Spare::default()),
            template: OnceLock::new(),
        })
    }
}

impl crate::Platform for PtracePlatform {
    fn name(&self) -> &'static str {
        "ptrace"
    }

    fn max_user_address(&self) -> u64 {
        // Leave a gap below the stub page.
        (self.stub.start - 0x1000_0000) & !(PAGE_SIZE - 1)
    }

    fn initial_registers(&self) -> Registers {
        // SAFETY: user_regs_struct is plain integers; all-zero is valid.
        let mut regs: Registers = unsafe { std::mem::zeroed() };
        regs.cs = 0x33;
        regs.ss = 0x2b;
        regs.eflags = 0x202;
        regs
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        let template = match self.template.get() {
            Some(t) => t.clone(),
            None => {
                let t = Template::start(self.memory_fd, self.stub)?;
                self.template.get_or_init(|| t).clone()
            }
        };
        let sp = match self.spare.take() {
            Some(sp) if lock(&sp.inner.shared.dead).is_none() => sp,
            _ => Subprocess::new(self.memory_fd, self.stub, &template)?,
        };
        // The first address spaces are the only ones a program that never
        // forks or execs needs (the sandbox's first, and the one its first
        // exec makes); a spare is kept from the third on.
        if self.spare.made.fetch_add(1, Ordering::Relaxed) >= 2 {
            self.spare.want(self.memory_fd, self.stub, &template);
        }
        Ok(Arc::new(sp))
    }

    fn initial_fp_state(&self) -> FpState {
        let mut fx = [0u8; 512 + 64];
        // FXSAVE needs a 16-byte aligned area.
        let off = fx.as_ptr().align_offset(16);
        // SAFETY: FXSAVE writes 512 bytes at a 16-byte aligned address
        // inside our buffer; it only reads the CPU's state.
        unsafe { std::arch::x86_64::_fxsave64(fx.as_mut_ptr().add(off)) };
        let mut like = vec![0u8; xsave_size()];
        like[FpState::MXCSR_MASK..FpState::MXCSR_MASK + 4]
            .copy_from_slice(&fx[off + FpState::MXCSR_MASK..off + FpState::MXCSR_MASK + 4]);
        FpState::initial(&FpState(like))
    }

    fn new_context(&self) -> Box<dyn Context> {
        Box::new(PtraceContext {
            interrupt: Arc::new(InterruptState {
                pending: AtomicBool::new(false),
                tid: AtomicI32::new(0),
            }),
            slot: placement::new_slot(),
            switches: 0,
            used: Vec::new(),
            pending_fp: None,
            last: None,
        })
    }
}

/// One stub thread, traced by one sentry thread.
#[derive(Debug)]
struct StubThread {
    tid: i32,
}

/// A request to the owner of an address space.
enum Request {
    /// Make the master execute one syscall.
    Syscall {
        nr: i64,
        args: [u64; 6],
        reply: mpsc::Sender<Result<i64, PlatformError>>,
    },
    /// Clone a new stub thread, left stopped for its tracer to attach.
    NewThread {
        reply: mpsc::Sender<Result<i32, PlatformError>>,
    },
}

/// What an address space's owner thread shares with the rest.
struct OwnerShared {
    /// Written to wake the owner when a request is queued.
    wake: std::os::fd::OwnedFd,
    /// Why the address space died, once it has.
    dead: Mutex<Option<String>>,
    /// Whether it has (read on every switch, without the lock).
    is_dead: AtomicBool,
    /// Called once when a stub process or thread dies unasked.
    notifier: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    /// Stub threads the sentry killed itself: their death is expected.
    retired: Mutex<std::collections::HashSet<i32>>,
}

impl OwnerShared {
    fn kick(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from our buffer to our own eventfd.
        unsafe {
            libc::write(
                std::os::fd::AsRawFd::as_raw_fd(&self.wake),
                one.as_ptr().cast(),
                8,
            )
        };
    }

    fn died(&self, why: String) {
        {
            let mut d = lock(&self.dead);
            if d.is_some() {
                return;
            }
            tracing::error!("{why}; the address space is dead");
            *d = Some(why);
            self.is_dead.store(true, Ordering::SeqCst);
        }
        if let Some(f) = lock(&self.notifier).as_ref() {
            f();
        }
    }
}

struct Inner {
    /// The master stub thread (the stub process's first), traced by the
    /// owner thread.
    pid: i32,
    memory_fd: RawFd,
    stub: StubRegion,
    /// Stub threads by the tid of the sentry thread that traces them.
    threads: Mutex<HashMap<i32, StubThread>>,
    owner: Mutex<Option<mpsc::Sender<Request>>>,
    shared: Arc<OwnerShared>,
}

/// A stub process: one guest address space.
pub struct Subprocess {
    inner: Arc<Inner>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not take the platform down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Subprocess {
    fn new(
        memory_fd: RawFd,
        stub: StubRegion,
        template: &Arc<Template>,
    ) -> Result<Subprocess, PlatformError> {
        let (tx, rx) = mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<i32, PlatformError>>();
        // SAFETY: creates a new eventfd that we own.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(PlatformError::os("eventfd for the stub's owner"));
        }
        let shared = Arc::new(OwnerShared {
            // SAFETY: `efd` is a new fd nothing else owns.
            wake: unsafe { std::os::fd::FromRawFd::from_raw_fd(efd) },
            dead: Mutex::new(None),
            is_dead: AtomicBool::new(false),
            notifier: Mutex::new(None),
            retired: Mutex::new(Default::default()),
        });
        let sh = shared.clone();
        let template = template.clone();
        std::thread::Builder::new()
            .name("stub-owner".into())
            .spawn(move || owner_main(memory_fd, stub, &template, ready_tx, rx, sh))
            .map_err(|e| PlatformError::Os {
                op: "spawning the stub's owner thread",
                source: e,
            })?;
        let pid = ready_rx.recv().map_err(|_| PlatformError::StubDied {
            pid: 0,
            reason: "the owner thread ended before the stub started".into(),
        })??;
        Ok(Subprocess {
            inner: Arc::new(Inner {
                pid,
                memory_fd,
                stub,
                threads: Mutex::new(HashMap::new()),
                owner: Mutex::new(Some(tx)),
                shared,
            }),
        })
    }

    /// The host pid of the stub process's master thread.
    pub fn pid(&self) -> i32 {
        self.inner.pid
    }
}

impl Inner {
    fn check_alive(&self) -> Result<(), PlatformError> {
        match &*lock(&self.shared.dead) {
            Some(why) => Err(PlatformError::AddressSpaceDead(why.clone())),
            None => Ok(()),
        }
    }

    /// Kills every stub thread: the address space is unusable.
    fn kill(&self, why: String) {
        tracing::error!("stub {}: {why}; killing its address space", self.pid);
        {
            let mut d = lock(&self.shared.dead);
            if d.is_none() {
                *d = Some(why);
            }
            self.shared.is_dead.store(true, Ordering::SeqCst);
        }
        for t in lock(&self.threads).values() {
            // SAFETY: kills our own stub thread.
            unsafe { libc::kill(t.tid, libc::SIGKILL) };
        }
        // SAFETY: kills our own stub process.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }

    fn ask_owner<T>(
        &self,
        make: impl FnOnce(mpsc::Sender<Result<T, PlatformError>>) -> Request,
    ) -> Result<T, PlatformError> {
        let (tx, rx) = mpsc::channel();
        let owner = lock(&self.owner).clone();
        let gone = || PlatformError::StubDied {
            pid: self.pid,
            reason: "the stub's owner thread is gone".into(),
        };
        owner.ok_or_else(gone)?.send(make(tx)).map_err(|_| gone())?;
        self.shared.kick();
        rx.recv().map_err(|_| gone())?
    }

    /// The stub thread the calling sentry thread traces, if it has one.
    fn my_thread(&self) -> Option<i32> {
        lock(&self.threads).get(&current_tid()).map(|t| t.tid)
    }

    /// Makes the calling sentry thread's stub thread, or failing that the
    /// master through the owner, execute one host syscall.
    fn syscall(&self, nr: i64, args: [u64; 6]) -> Result<i64, PlatformError> {
        self.check_alive()?;
        match self.my_thread() {
            Some(tid) => stub_syscall(tid, self.pid, self.stub.syscall_addr, nr, args),
            None => self.ask_owner(|reply| Request::Syscall { nr, args, reply }),
        }
    }

    /// A stub thread for the calling sentry thread, created on first use.
    fn thread_for_caller(&self) -> Result<(i32, bool), PlatformError> {
        self.check_alive()?;
        if let Some(tid) = self.my_thread() {
            return Ok((tid, false));
        }
        let tid = self.ask_owner(|reply| Request::NewThread { reply })?;
        if let Err(e) = attach(tid) {
            // SAFETY: kills the stub thread we could not attach; it is our
            // child (CLONE_PARENT), so we reap it.
            unsafe { libc::kill(tid, libc::SIGKILL) };
            reap(tid);
            return Err(e);
        }
        lock(&self.threads).insert(current_tid(), StubThread { tid });
        Ok((tid, true))
    }

    /// Forgets (and kills) the calling sentry thread's stub thread.
    fn release_caller(&self) {
        if let Some(t) = lock(&self.threads).remove(&current_tid()) {
            lock(&self.shared.retired).insert(t.tid);
            // SAFETY: kills our own stub thread, then reaps it.
            unsafe { libc::kill(t.tid, libc::SIGKILL) };
            reap(t.tid);
        }
    }
}

/// The owner of one address space: starts the stub, traces its master and
/// serves requests until the address space is dropped.
fn owner_main(
    memory_fd: RawFd,
    stub: StubRegion,
    template: &Template,
    ready: mpsc::Sender<Result<i32, PlatformError>>,
    requests: mpsc::Receiver<Request>,
    shared: Arc<OwnerShared>,
) {
    placement::unbind_self();
    // A clone of the template, attached by this thread; should the
    // template be gone, a fork of the sentry (slower, same result).
    let cloned = template.new_stub().and_then(|pid| match attach(pid) {
        Ok(()) => Ok(pid),
        Err(e) => {
            // SAFETY: kills and reaps the stub process we could not attach,
            // our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            reap(pid);
            Err(e)
        }
    });
    let pid = match cloned.or_else(|e| {
        tracing::warn!("cloning the template stub: {e}; forking a new stub");
        spawn_stub(memory_fd, stub, b"runsc-stub\0")
    }) {
        Ok(pid) => pid,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(pid));
    // Every stub process and thread is watched through a pidfd: one that
    // dies unasked kills the address space at once, and wakes the tasks
    // using it even while they sleep in the sentry.
    let mut watched: Vec<(i32, std::os::fd::OwnedFd)> = Vec::new();
    if let Some(fd) = pidfd(pid) {
        watched.push((pid, fd));
    }
    let wake = std::os::fd::AsRawFd::as_raw_fd(&shared.wake);
    'serve: loop {
        let mut fds: Vec<libc::pollfd> = std::iter::once(wake)
            .chain(
                watched
                    .iter()
                    .map(|(_, f)| std::os::fd::AsRawFd::as_raw_fd(f)),
            )
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: polls our own fds, `fds.len()` of them.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if last_errno() == libc::EINTR {
                continue;
            }
            break;
        }
        if fds[0].revents != 0 {
            let mut b = [0u8; 8];
            // SAFETY: reads 8 bytes into our buffer from our own eventfd.
            unsafe { libc::read(wake, b.as_mut_ptr().cast(), 8) };
        }
        loop {
            match requests.try_recv() {
                Ok(Request::Syscall { nr, args, reply }) => {
                    let _ = reply.send(stub_syscall(pid, pid, stub.syscall_addr, nr, args));
                }
                Ok(Request::NewThread { reply }) => {
                    let r = clone_stub_thread(pid, stub);
                    if let Ok(tid) = r {
                        if let Some(fd) = pidfd(tid) {
                            watched.push((tid, fd));
                        }
                    }
                    let _ = reply.send(r);
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => break 'serve,
            }
        }
        let gone: Vec<usize> = (1..fds.len()).filter(|&i| fds[i].revents != 0).collect();
        for &i in gone.iter().rev() {
            let (dead, _) = watched.remove(i - 1);
            if !lock(&shared.retired).remove(&dead) {
                shared.died(format!("stub process {dead} of address space {pid} died"));
            }
        }
    }
    // SAFETY: kills our own stub process, then reaps it.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    reap(pid);
}

/// A pidfd for our own child `pid`.
pub(crate) fn pidfd(pid: i32) -> Option<std::os::fd::OwnedFd> {
    // SAFETY: pidfd_open makes a new fd for a process of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` is a new fd nothing else owns.
    Some(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) })
}

/// Forks a stub process; the calling thread becomes its tracer.
fn spawn_stub(
    memory_fd: RawFd,
    stub: StubRegion,
    name: &'static [u8],
) -> Result<i32, PlatformError> {
    // SAFETY: fork in a multi-threaded process; the child only makes
    // async-signal-safe raw syscalls and then jumps to the stub code,
    // never returning into Rust.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(PlatformError::os("fork of the stub process"));
    }
    if pid == 0 {
        // SAFETY: we are the freshly forked child; see `stub_child`.
        unsafe { stub_child(memory_fd, stub, name) }
    }
    // The child stops itself with SIGSTOP once its address space is empty.
    match wait_stop(pid)? {
        Stop::Signal(libc::SIGSTOP) => {}
        Stop::Exited(TRACEME_FAILED) => {
            return Err(PlatformError::StubDied {
                pid,
                reason: "PTRACE_TRACEME failed in the stub process: the sentry cannot trace \
                         its stubs (is runsc itself being traced, e.g. by strace -f or a \
                         debugger? trace it without following children)"
                    .into(),
            })
        }
        other => {
            // SAFETY: kills and reaps our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            reap(pid);
            return Err(PlatformError::StubDied {
                pid,
                reason: format!("unexpected first stop {other:?}"),
            });
        }
    }
    set_options(pid)?;
    Ok(pid)
}

fn set_options(tid: i32) -> Result<(), PlatformError> {
    let opts = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL;
    // SAFETY: tid is our stopped tracee.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_SETOPTIONS,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            opts as usize as *mut libc::c_void,
        )
    };
    if rc != 0 {
        return Err(ptrace_err("PTRACE_SETOPTIONS", tid));
    }
    Ok(())
}

/// Makes the master (traced by the caller) clone a new stub thread that
/// shares its memory; returns the new thread's pid. The new thread stops
/// itself, untraced, until some sentry thread attaches it.
fn clone_stub_thread(master: i32, stub: StubRegion) -> Result<i32, PlatformError> {
    let flags = libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_PARENT
        | libc::CLONE_UNTRACED;
    let rc = stub_syscall(
        master,
        master,
        stub.clone_addr,
        libc::SYS_clone,
        [flags as u64, 0, 0, 0, 0, 0],
    )?;
    if rc <= 0 {
        return Err(PlatformError::Os {
            op: "clone of a stub thread",
            source: std::io::Error::from_raw_os_error((-rc) as i32),
        });
    }
    Ok(rc as i32)
}

/// Makes the template stub (traced by the caller) clone a new stub
/// process: a child of the sentry, with the template's empty address
/// space, fds (the memory file) and session. It stops itself, untraced,
/// until its owner attaches it.
fn clone_stub_process(template: i32, stub: StubRegion) -> Result<i32, PlatformError> {
    let flags = libc::CLONE_PARENT | libc::CLONE_UNTRACED;
    let rc = stub_syscall(
        template,
        template,
        stub.clone_addr,
        libc::SYS_clone,
        [flags as u64, 0, 0, 0, 0, 0],
    )?;
    if rc <= 0 {
        return Err(PlatformError::Os {
            op: "clone of a stub process",
            source: std::io::Error::from_raw_os_error((-rc) as i32),
        });
    }
    Ok(rc as i32)
}

/// Attaches a stub thread made by [`clone_stub_thread`] (or a stub
/// process made by [`clone_stub_process`]): the calling
/// thread becomes its tracer, and it is left stopped at its trap.
pub(crate) fn attach(tid: i32) -> Result<(), PlatformError> {
    // SAFETY: attaches to our own stub thread.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_ATTACH,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    if rc != 0 {
        return Err(ptrace_err("PTRACE_ATTACH", tid));
    }
    // The thread stops for the attach and for its own SIGSTOP, in either
    // order, then traps.
    for _ in 0..16 {
        match wait_stop(tid)? {
            Stop::Signal(libc::SIGTRAP) => return set_options(tid),
            Stop::Signal(libc::SIGSTOP) | Stop::Signal(INTERRUPT_SIGNAL) => {
                resume(tid, libc::PTRACE_CONT)?
            }
            other => {
                return Err(PlatformError::StubDied {
                    pid: tid,
                    reason: format!("new stub thread stopped with {other:?}"),
                })
            }
        }
    }
    Err(PlatformError::StubDied {
        pid: tid,
        reason: "new stub thread never reached its trap".into(),
    })
}

/// Reaps a dead child (a stub process or thread).
pub(crate) fn reap(pid: i32) {
    let mut status = 0;
    loop {
        // SAFETY: reaps our own child; status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r == pid && (libc::WIFEXITED(status) || libc::WIFSIGNALED(status)) {
            break;
        }
        if r < 0 && last_errno() != libc::EINTR {
            break;
        }
    }
}

/// Makes stub thread `tid` (stopped, traced by the caller) execute one host
/// syscall at `entry`, returning its raw result.
pub(crate) fn stub_syscall(
    tid: i32,
    pid: i32,
    entry: u64,
    nr: i64,
    args: [u64; 6],
) -> Result<i64, PlatformError> {
    let mut regs = get_regs(tid)?;
    regs.rip = entry;
    regs.rax = nr as u64;
    regs.orig_rax = u64::MAX;
    regs.rdi = args[0];
    regs.rsi = args[1];
    regs.rdx = args[2];
    regs.r10 = args[3];
    regs.r8 = args[4];
    regs.r9 = args[5];
    set_regs(tid, &regs)?;
    resume(tid, libc::PTRACE_CONT)?;
    loop {
        match wait_stop(tid)? {
            Stop::Signal(libc::SIGTRAP) => break,
            Stop::Signal(_) => {
                // An interrupt (or a signal from outside) raced with us;
                // the interrupt's pending flag survives.
                resume(tid, libc::PTRACE_CONT)?;
            }
            other => {
                return Err(PlatformError::StubDied {
                    pid,
                    reason: format!("stub syscall {nr} ended with {other:?}"),
                });
            }
        }
    }
    let out = get_regs(tid)?;
    Ok(out.rax as i64)
}

impl AddressSpace for Subprocess {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn on_death(&self, f: Box<dyn Fn() + Send + Sync>) {
        *lock(&self.inner.shared.notifier) = Some(f);
    }

    fn map_file(&self, addr: u64, len: u64, offset: u64, prot: Prot) -> Result<(), PlatformError> {
        let rc = self.inner.syscall(
            libc::SYS_mmap,
            [
                addr,
                len,
                prot.bits() as u64,
                (libc::MAP_SHARED | libc::MAP_FIXED) as u64,
                self.inner.memory_fd as u64,
                offset,
            ],
        )?;
        if rc < 0 && rc > -4096 {
            return Err(PlatformError::Os {
                op: "mmap in the stub",
                source: std::io::Error::from_raw_os_error(-rc as i32),
            });
        }
        Ok(())
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        let r = match self
            .inner
            .syscall(libc::SYS_munmap, [addr, len, 0, 0, 0, 0])
        {
            Ok(rc) if rc < 0 => Err(PlatformError::Os {
                op: "munmap in the stub",
                source: std::io::Error::from_raw_os_error(-rc as i32),
            }),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = &r {
            // Pages the sentry took back would stay reachable by the
            // guest: the address space cannot go on.
            self.inner
                .kill(format!("unmap of {addr:#x}+{len:#x} failed: {e}"));
        }
        r
    }
}

impl Drop for Subprocess {
    fn drop(&mut self) {
        let threads: Vec<i32> = lock(&self.inner.threads)
            .drain()
            .map(|(_, t)| t.tid)
            .collect();
        // Their deaths are expected.
        lock(&self.inner.shared.retired).extend(threads.iter().copied());
        for tid in threads {
            // SAFETY: kills our own stub thread (a child of the sentry),
            // then reaps it.
            unsafe { libc::kill(tid, libc::SIGKILL) };
            reap(tid);
        }
        // Closing the channel ends the owner, which kills and reaps the
        // master.
        lock(&self.inner.owner).take();
        self.inner.shared.kick();
    }
}

pub(crate) fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Runs in the forked child: becomes a tracee in a session of its own,
/// drops every fd but the memory file, and jumps to the stub code, which
/// empties the address space and stops.
///
/// # Safety
/// Must be called only in a freshly forked child of a multi-threaded
/// process. It never returns.
unsafe fn stub_child(memory_fd: RawFd, stub: StubRegion, name: &'static [u8]) -> ! {
    // SAFETY: raw syscalls on our own process state; none allocates or
    // takes a lock.
    unsafe {
        if libc::ptrace(
            libc::PTRACE_TRACEME,
            0,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        ) != 0
        {
            libc::_exit(TRACEME_FAILED);
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        // `name` ends with a NUL.
        libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0);
        // Out of the sentry's session and process group: a terminal's
        // signals (SIGINT, SIGWINCH, ...) never reach a stub.
        libc::setsid();
        // The child inherited glibc's rseq registration; once the area is
        // unmapped the kernel would kill the stub for it. Unregister it
        // (the registered length varies across glibc versions).
        if __rseq_size > 0 {
            let tp: u64;
            std::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly));
            let area = (tp as i64 + __rseq_offset as i64) as u64;
            for len in [32u32, __rseq_size, 20] {
                let r = libc::syscall(libc::SYS_rseq, area, len, 1u32, 0x5305_3053u32);
                if r == 0 {
                    break;
                }
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        if memory_fd > 0 {
            libc::syscall(libc::SYS_close_range, 0u32, (memory_fd - 1) as u32, 0u32);
        }
        libc::syscall(
            libc::SYS_close_range,
            (memory_fd + 1) as u32,
            u32::MAX,
            0u32,
        );
        std::arch::asm!(
            "jmp {entry}",
            entry = in(reg) stub.start,
            in("rdi") stub.start,
            in("rsi") stub.start + STUB_REGION_SIZE,
            in("rdx") HOST_TASK_SIZE,
            options(noreturn)
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// A syscall-enter stop (SIGTRAP | 0x80).
    Syscall,
    /// A signal-delivery stop.
    Signal(i32),
    Exited(i32),
    Killed(i32),
}

pub(crate) fn wait_stop(tid: i32) -> Result<Stop, PlatformError> {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own tracee; status is a valid out-pointer.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL) };
        if r == tid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return Err(PlatformError::StubDied {
            pid: tid,
            reason: format!("waitpid: {err}"),
        });
    }
    if libc::WIFSTOPPED(status) {
        let sig = libc::WSTOPSIG(status);
        if sig == libc::SIGTRAP | 0x80 {
            return Ok(Stop::Syscall);
        }
        return Ok(Stop::Signal(sig));
    }
    if libc::WIFEXITED(status) {
        return Ok(Stop::Exited(libc::WEXITSTATUS(status)));
    }
    Ok(Stop::Killed(libc::WTERMSIG(status)))
}

pub(crate) fn ptrace_err(op: &'static str, tid: i32) -> PlatformError {
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        PlatformError::StubDied {
            pid: tid,
            reason: format!("{op}: {err}"),
        }
    } else {
        PlatformError::Os { op, source: err }
    }
}

pub(crate) fn resume(tid: i32, request: libc::c_uint) -> Result<(), PlatformError> {
    // SAFETY: tid is a stopped tracee of this thread; data 0 suppresses the
    // signal it stopped with.
    let rc = unsafe {
        libc::ptrace(
            request,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    if rc != 0 {
        return Err(ptrace_err("ptrace resume", tid));
    }
    Ok(())
}

pub(crate) fn get_regs(tid: i32) -> Result<Registers, PlatformError> {
    // SAFETY: all-zero is a valid user_regs_struct.
    let mut regs: Registers = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one user_regs_struct to &mut regs.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGS,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            &mut regs as *mut Registers as *mut libc::c_void,
        )
    };
    if rc != 0 {
        return Err(ptrace_err("PTRACE_GETREGS", tid));
    }
    Ok(regs)
}

pub(crate) fn set_regs(tid: i32, regs: &Registers) -> Result<(), PlatformError> {
    // SAFETY: the kernel reads one user_regs_struct from regs.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_SETREGS,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            regs as *const Registers as *mut libc::c_void,
        )
    };
    if rc != 0 {
        return Err(ptrace_err("PTRACE_SETREGS", tid));
    }
    Ok(())
}

/// PTRACE_GETREGSET or PTRACE_SETREGSET of the XSAVE area through `buf`;
/// returns the length the kernel used.
fn xstate_regset(tid: i32, request: libc::c_uint, buf: &mut [u8]) -> Result<usize, PlatformError> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: the kernel reads or writes at most iov_len bytes of buf,
    // which lives across the call.
    let rc = unsafe {
        libc::ptrace(
            request,
            tid,
            NT_X86_XSTATE as *mut libc::c_void,
            &mut iov as *mut libc::iovec as *mut libc::c_void,
        )
    };
    if rc != 0 {
        return Err(ptrace_err("PTRACE_GETREGSET/SETREGSET NT_X86_XSTATE", tid));
    }
    Ok(iov.iov_len)
}

fn get_xstate(tid: i32) -> Result<FpState, PlatformError> {
    let mut buf = vec![0u8; xsave_size()];
    let n = xstate_regset(tid, libc::PTRACE_GETREGSET, &mut buf)?;
    buf.truncate(n);
    Ok(FpState(buf))
}

fn set_xstate(tid: i32, fp: &FpState) -> Result<(), PlatformError> {
    let mut buf = fp.0.clone();
    buf.resize(xsave_size(), 0);
    xstate_regset(tid, libc::PTRACE_SETREGSET, &mut buf)?;
    Ok(())
}

fn get_siginfo(tid: i32) -> Result<SignalInfo, PlatformError> {
    // SAFETY: all-zero is a valid siginfo_t.
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one siginfo_t to &mut si.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_GETSIGINFO,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            &mut si as *mut libc::siginfo_t as *mut libc::c_void,
        )
    };
    if rc != 0 {
        return Err(ptrace_err("PTRACE_GETSIGINFO", tid));
    }
    // SAFETY: si_addr and si_pid read the union as the kernel filled it;
    // for other signal kinds they read unrelated but initialized integers.
    let (addr, pid) = unsafe { (si.si_addr() as u64, si.si_pid()) };
    Ok(SignalInfo {
        signo: si.si_signo,
        code: si.si_code,
        errno: si.si_errno,
        addr,
        pid,
    })
}

/// Shared between a context and its interrupters.
struct InterruptState {
    pending: AtomicBool,
    /// The stub thread the context last ran on (0: none yet).
    tid: AtomicI32,
}

impl Interrupt for InterruptState {
    fn interrupt(&self) {
        self.pending.store(true, Ordering::SeqCst);
        let tid = self.tid.load(Ordering::SeqCst);
        if tid > 0 {
            // SAFETY: signals a stub thread; if it died the call fails with
            // ESRCH, which is fine.
            unsafe { libc::syscall(libc::SYS_tgkill, tid, tid, INTERRUPT_SIGNAL) };
        }
    }
}

/// How many switches between reconsiderations of the CPU.
pub(crate) const REPLACE_EVERY: u32 = 4096;
/// A pause this long outside the guest (the task blocked) makes the next
/// switch reconsider the CPU.
pub(crate) const REPLACE_AFTER_NS: u64 = 2_000_000;

/// A guest thread's context on the ptrace platform.
struct PtraceContext {
    interrupt: Arc<InterruptState>,
    slot: Arc<placement::Slot>,
    switches: u32,
    /// The address spaces this context has a stub thread in.
    used: Vec<Weak<Inner>>,
    /// FP state to load at the next switch.
    pending_fp: Option<FpState>,
    /// The address space switched to last and this context's stub
    /// thread there.
    last: Option<(Weak<Inner>, i32)>,
}

impl PtraceContext {
    fn thread(&mut self, address_space: &Arc<dyn AddressSpace>) -> Result<i32, PlatformError> {
        // The only address spaces this platform hands out are subprocesses.
        let sp = address_space
            .as_any()
            .downcast_ref::<Subprocess>()
            .ok_or(PlatformError::ForeignAddressSpace)?;
        // The stub thread of the address space switched to last, without
        // the address space's locks (the held Weak keeps the allocation,
        // so a new address space cannot take its address).
        if let Some((w, tid)) = &self.last {
            if std::ptr::eq(w.as_ptr(), Arc::as_ptr(&sp.inner)) {
                if sp.inner.shared.is_dead.load(Ordering::SeqCst) {
                    sp.inner.check_alive()?;
                }
                return Ok(*tid);
            }
        }
        let (tid, new) = sp.inner.thread_for_caller()?;
        self.last = Some((Arc::downgrade(&sp.inner), tid));
        if new {
            self.used.retain(|w| w.strong_count() > 0);
            self.used.push(Arc::downgrade(&sp.inner));
            // A new stub thread gets the context's CPU.
            let cpu = self.slot.cpu.load(Ordering::Relaxed);
            if cpu >= 0 {
                placement::bind(tid, cpu);
            }
        }
        self.interrupt.tid.store(tid, Ordering::SeqCst);
        Ok(tid)
    }

    /// Keeps this context and its stub thread on one CPU, chosen
    /// sentry-wide.
    fn place(&mut self, tid: i32) {
        let now = placement::now_ns();
        let last = self.slot.last.load(Ordering::Relaxed);
        self.switches = self.switches.wrapping_add(1);
        let cur = self.slot.cpu.load(Ordering::Relaxed);
        if cur < 0 || self.switches.is_multiple_of(REPLACE_EVERY) || now - last > REPLACE_AFTER_NS {
            let cpu = placement::choose(&self.slot);
            if cpu != cur && placement::bind(0, cpu) && placement::bind(tid, cpu) {
                self.slot.cpu.store(cpu, Ordering::Relaxed);
            }
        }
        self.slot.last.store(now, Ordering::Relaxed);
    }
}

impl Drop for PtraceContext {
    fn drop(&mut self) {
        // The context's stub threads are traced by this sentry thread;
        // forget them before the thread's id can be reused.
        for w in self.used.drain(..) {
            if let Some(inner) = w.upgrade() {
                inner.release_caller();
            }
        }
    }
}

/// Whether a signal that stopped a stub thread was sent from outside (by
/// kill, tgkill, sigqueue) rather than raised by the guest's instruction.
fn sent_from_outside(info: &SignalInfo) -> bool {
    info.code <= 0
}

impl Context for PtraceContext {
    fn switch(
        &mut self,
        address_space: &Arc<dyn AddressSpace>,
        regs: &mut Registers,
    ) -> Result<Event, PlatformError> {
        if self.interrupt.pending.swap(false, Ordering::SeqCst) {
            return Ok(Event::Interrupted);
        }
        let tid = self.thread(address_space)?;
        if let Some(fp) = self.pending_fp.take() {
            set_xstate(tid, &fp)?;
        }
        self.place(tid);
        loop {
            // Never let the kernel's syscall-restart logic look at a stale
            // syscall number.
            regs.orig_rax = u64::MAX;
            set_regs(tid, regs)?;
            resume(tid, libc::PTRACE_SYSEMU)?;
            match wait_stop(tid)? {
                Stop::Syscall => {
                    *regs = get_regs(tid)?;
                    return Ok(Event::Syscall);
                }
                Stop::Signal(sig) => {
                    *regs = get_regs(tid)?;
                    if sig == INTERRUPT_SIGNAL || sig == libc::SIGSTOP {
                        self.interrupt.pending.store(false, Ordering::SeqCst);
                        return Ok(Event::Interrupted);
                    }
                    let info = get_siginfo(tid)?;
                    if sent_from_outside(&info) {
                        // Not the guest's doing (a stray signal from the
                        // host): drop it and go on.
                        continue;
                    }
                    if sig == libc::SIGSEGV || sig == libc::SIGBUS {
                        // ptrace does not report the page-fault error code.
                        // A mapped page that refused the access was
                        // written (the sentry maps readable what it maps)
                        // or executed; for an unmapped page the kind of
                        // access is unknown.
                        let access = if info.code == 2 && info.addr == regs.rip {
                            Access::EXEC
                        } else if info.code == 2 {
                            Access::WRITE
                        } else {
                            Access::ANY
                        };
                        return Ok(Event::Fault(info, access));
                    }
                    return Ok(Event::Signal(info));
                }
                Stop::Exited(code) => {
                    return Err(PlatformError::StubDied {
                        pid: tid,
                        reason: format!("exited with status {code}"),
                    })
                }
                Stop::Killed(sig) => {
                    return Err(PlatformError::StubDied {
                        pid: tid,
                        reason: format!("killed by signal {sig}"),
                    })
                }
            }
        }
    }

    fn fp_state(
        &mut self,
        address_space: &Arc<dyn AddressSpace>,
    ) -> Result<FpState, PlatformError> {
        if let Some(fp) = &self.pending_fp {
            return Ok(fp.clone());
        }
        let tid = self.thread(address_space)?;
        get_xstate(tid)
    }

    fn set_fp_state(&mut self, fp: FpState) {
        self.pending_fp = Some(fp);
    }

    fn interrupter(&self) -> Interrupter {
        Interrupter::new(self.interrupt.clone())
    }
}
