//! The ptrace platform.
//!
//! Each guest address space is a *stub process*: a child of the sentry that
//! unmapped everything but one page of stub code and stopped itself under
//! `PTRACE_TRACEME`. Guest threads run in stub threads under
//! `PTRACE_SYSEMU`, so every guest `syscall` instruction stops before the
//! host executes it. The sentry changes a stub's mappings by making one of
//! its stopped threads execute `mmap`/`munmap` at the stub page's `syscall;
//! int3` pair; that is the only host syscall a stub ever makes for the
//! sentry.
//!
//! ptrace requests must come from the tracing thread. A stub thread is
//! traced by the sentry thread that created it, and each address space
//! keeps one stub thread per sentry thread that uses it.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::{
    AddressSpace, Context, Event, FpRegisters, Interrupt, Interrupter, PlatformError, Prot,
    Registers, SignalInfo, PAGE_SIZE,
};

/// Highest user address of the x86-64 host (47-bit address space).
const HOST_TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// Size of the region that holds the stub code in every stub process.
const STUB_REGION_SIZE: u64 = PAGE_SIZE;

/// The signal an [`Interrupter`] sends to a stub thread. Its default action
/// is to ignore, and stubs have no children, so it never means anything
/// else to a stub.
const INTERRUPT_SIGNAL: i32 = libc::SIGCHLD;

// The stub's code. It is copied to the stub page, so it must be position
// independent and use no stack.
//
// Entry (in a freshly forked child): rdi = start of the stub region,
// rsi = end of the stub region, rdx = host task size. It unmaps everything
// else and stops itself; from then on the sentry only ever points `rip` at
// `runsc_stub_syscall` to make it execute one syscall and trap.
std::arch::global_asm!(
    ".pushsection .text.runsc_stub, \"ax\"",
    ".globl runsc_stub_start",
    ".globl runsc_stub_syscall",
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
    static runsc_stub_end: u8;
}

/// Where the stub code lives: one address, the same in the sentry and in
/// every stub process.
#[derive(Clone, Copy, Debug)]
struct StubRegion {
    start: u64,
    syscall_addr: u64,
}

static STUB_REGION: OnceLock<Result<StubRegion, String>> = OnceLock::new();

/// Maps the stub page into the sentry, as high as possible, once.
fn stub_region() -> Result<StubRegion, PlatformError> {
    let r = STUB_REGION.get_or_init(|| {
        let start_sym = &raw const runsc_stub_start as u64;
        let syscall_sym = &raw const runsc_stub_syscall as u64;
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

/// Binds host thread `tid` (0: the caller) to one CPU.
fn bind_to_cpu(tid: i32, cpu: i32) -> bool {
    // SAFETY: all-zero is an empty cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET checks the index against the set's size.
    unsafe { libc::CPU_SET(cpu as usize, &mut set) };
    // SAFETY: sets the affinity of the caller or of our own stub thread.
    unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
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

/// The ptrace platform.
pub struct PtracePlatform {
    memory_fd: RawFd,
    stub: StubRegion,
}

impl PtracePlatform {
    /// A platform whose address spaces map from `memory_fd`. The fd must
    /// stay open for the platform's lifetime.
    pub fn new(memory_fd: RawFd) -> Result<PtracePlatform, PlatformError> {
        Ok(PtracePlatform {
            memory_fd,
            stub: stub_region()?,
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
        Ok(Arc::new(Subprocess::new(self.memory_fd, self.stub)?))
    }

    fn new_context(&self) -> Box<dyn Context> {
        Box::new(PtraceContext {
            interrupt: Arc::new(InterruptState {
                pending: AtomicBool::new(false),
                pid: AtomicI32::new(0),
                tid: AtomicI32::new(0),
            }),
        })
    }
}

/// One stub thread, traced by one sentry thread.
#[derive(Debug)]
struct StubThread {
    tid: i32,
    /// The host CPU the stub thread is bound to (-1: none).
    cpu: i32,
}

/// A stub process: one guest address space.
pub struct Subprocess {
    pid: i32,
    memory_fd: RawFd,
    stub: StubRegion,
    /// Stub threads by the tid of the sentry thread that traces them.
    threads: Mutex<HashMap<i32, StubThread>>,
}

impl Subprocess {
    fn new(memory_fd: RawFd, stub: StubRegion) -> Result<Subprocess, PlatformError> {
        // SAFETY: fork in a multi-threaded process; the child only makes
        // async-signal-safe raw syscalls and then jumps to the stub code,
        // never returning into Rust.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(PlatformError::os("fork of the stub process"));
        }
        if pid == 0 {
            // SAFETY: we are the freshly forked child; see `stub_child`.
            unsafe { stub_child(memory_fd, stub) }
        }
        let sp = Subprocess {
            pid,
            memory_fd,
            stub,
            threads: Mutex::new(HashMap::new()),
        };
        // The child stops itself with SIGSTOP once its address space is
        // empty.
        match wait_stop(pid)? {
            Stop::Signal(libc::SIGSTOP) => {}
            other => {
                return Err(PlatformError::StubDied {
                    pid,
                    reason: format!("unexpected first stop {other:?}"),
                })
            }
        }
        if std::env::var_os("RUNSC_DEBUG_STUB").is_some() {
            eprintln!("initial stub regs: {:x?}", get_regs(pid)?);
        }
        let opts = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL;
        // SAFETY: pid is our stopped tracee.
        let rc = unsafe {
            libc::ptrace(
                libc::PTRACE_SETOPTIONS,
                pid,
                std::ptr::null_mut::<libc::c_void>(),
                opts as usize as *mut libc::c_void,
            )
        };
        if rc != 0 {
            return Err(PlatformError::os("PTRACE_SETOPTIONS"));
        }
        sp.threads
            .lock()
            .unwrap()
            .insert(current_tid(), StubThread { tid: pid, cpu: -1 });
        Ok(sp)
    }

    /// The stub thread traced by the calling sentry thread.
    ///
    /// On first use the sentry thread and its stub thread are bound to the
    /// host CPU the sentry thread runs on. Every switch hands the CPU from
    /// one to the other and back; on one CPU that is a plain context
    /// switch, across CPUs it costs inter-processor wake-ups and migrations
    /// that make each guest syscall several times slower (measured: 12 us
    /// against 22 to 60 us on a 2-CPU VM). Spreading many tasks over CPUs
    /// is left to the scheduler's choice of where each task thread starts.
    fn my_thread(&self) -> Result<i32, PlatformError> {
        let mut threads = self.threads.lock().unwrap();
        let t = threads
            .get_mut(&current_tid())
            .ok_or(PlatformError::NotBound)?;
        if t.cpu < 0 {
            // SAFETY: sched_getcpu has no preconditions.
            let cpu = unsafe { libc::sched_getcpu() };
            if cpu >= 0 && bind_to_cpu(0, cpu) && bind_to_cpu(t.tid, cpu) {
                t.cpu = cpu;
            }
        }
        Ok(t.tid)
    }

    /// Makes stub thread `tid` (stopped, traced by us) execute one host
    /// syscall, returning its raw result.
    fn stub_syscall(&self, tid: i32, nr: i64, args: [u64; 6]) -> Result<i64, PlatformError> {
        let mut regs = get_regs(tid)?;
        regs.rip = self.stub.syscall_addr;
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
                Stop::Signal(INTERRUPT_SIGNAL) | Stop::Signal(libc::SIGSTOP) => {
                    // An interrupt raced with us; its pending flag survives.
                    resume(tid, libc::PTRACE_CONT)?;
                }
                other => {
                    let r = get_regs(tid).ok().map(|r| (r.rip, r.rsp, r.rax, r.cs));
                    let si = get_siginfo(tid).ok();
                    return Err(PlatformError::StubDied {
                        pid: self.pid,
                        reason: format!("stub syscall {nr} stopped with {other:?} regs {r:x?} {si:x?} stub {:x?}", self.stub),
                    });
                }
            }
        }
        let out = get_regs(tid)?;
        Ok(out.rax as i64)
    }
}

impl AddressSpace for Subprocess {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn map_file(&self, addr: u64, len: u64, offset: u64, prot: Prot) -> Result<(), PlatformError> {
        let tid = self.my_thread()?;
        let rc = self.stub_syscall(
            tid,
            libc::SYS_mmap,
            [
                addr,
                len,
                prot.bits() as u64,
                (libc::MAP_SHARED | libc::MAP_FIXED) as u64,
                self.memory_fd as u64,
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
        let tid = self.my_thread()?;
        let rc = self.stub_syscall(tid, libc::SYS_munmap, [addr, len, 0, 0, 0, 0])?;
        if rc < 0 {
            return Err(PlatformError::Os {
                op: "munmap in the stub",
                source: std::io::Error::from_raw_os_error(-rc as i32),
            });
        }
        Ok(())
    }
}

impl Drop for Subprocess {
    fn drop(&mut self) {
        // SAFETY: kills our own child; a stale pid cannot be reused before
        // we reap it below.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let mut status = 0;
        loop {
            // SAFETY: reaps our own child; status is a valid out-pointer.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::__WALL) };
            if r >= 0 || last_errno() != libc::EINTR {
                break;
            }
        }
    }
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Runs in the forked child: becomes a tracee, drops every fd but the
/// memory file, and jumps to the stub code, which empties the address space
/// and stops.
///
/// # Safety
/// Must be called only in a freshly forked child of a multi-threaded
/// process. It never returns.
unsafe fn stub_child(memory_fd: RawFd, stub: StubRegion) -> ! {
    // SAFETY: raw syscalls on our own process state; none allocates or
    // takes a lock.
    unsafe {
        libc::ptrace(
            libc::PTRACE_TRACEME,
            0,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        );
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
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
enum Stop {
    /// A syscall-enter stop (SIGTRAP | 0x80).
    Syscall,
    /// A signal-delivery stop.
    Signal(i32),
    Exited(i32),
    Killed(i32),
}

fn wait_stop(tid: i32) -> Result<Stop, PlatformError> {
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

fn ptrace_err(op: &'static str, tid: i32) -> PlatformError {
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

fn resume(tid: i32, request: libc::c_uint) -> Result<(), PlatformError> {
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

fn get_regs(tid: i32) -> Result<Registers, PlatformError> {
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

fn set_regs(tid: i32, regs: &Registers) -> Result<(), PlatformError> {
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
    pid: AtomicI32,
    tid: AtomicI32,
}

impl Interrupt for InterruptState {
    fn interrupt(&self) {
        self.pending.store(true, Ordering::SeqCst);
        let (pid, tid) = (
            self.pid.load(Ordering::SeqCst),
            self.tid.load(Ordering::SeqCst),
        );
        if tid > 0 {
            // SAFETY: signals a stub thread; if it died the call fails with
            // ESRCH, which is fine.
            unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, INTERRUPT_SIGNAL) };
        }
    }
}

/// A guest thread's context on the ptrace platform.
struct PtraceContext {
    interrupt: Arc<InterruptState>,
}

impl PtraceContext {
    fn thread(&self, address_space: &Arc<dyn AddressSpace>) -> Result<(i32, i32), PlatformError> {
        // The only address spaces this platform hands out are subprocesses.
        let sp = address_space_as_subprocess(address_space)?;
        let tid = sp.my_thread()?;
        self.interrupt.pid.store(sp.pid, Ordering::SeqCst);
        self.interrupt.tid.store(tid, Ordering::SeqCst);
        Ok((sp.pid, tid))
    }
}

fn address_space_as_subprocess(
    address_space: &Arc<dyn AddressSpace>,
) -> Result<&Subprocess, PlatformError> {
    address_space
        .as_any()
        .downcast_ref::<Subprocess>()
        .ok_or(PlatformError::NotBound)
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
        let (_pid, tid) = self.thread(address_space)?;
        // Never let the kernel's syscall-restart logic look at a stale
        // syscall number.
        regs.orig_rax = u64::MAX;
        set_regs(tid, regs)?;
        resume(tid, libc::PTRACE_SYSEMU)?;
        match wait_stop(tid)? {
            Stop::Syscall => {
                *regs = get_regs(tid)?;
                Ok(Event::Syscall)
            }
            Stop::Signal(sig) => {
                *regs = get_regs(tid)?;
                if sig == INTERRUPT_SIGNAL || sig == libc::SIGSTOP {
                    self.interrupt.pending.store(false, Ordering::SeqCst);
                    return Ok(Event::Interrupted);
                }
                let info = get_siginfo(tid)?;
                if sig == libc::SIGSEGV || sig == libc::SIGBUS {
                    return Ok(Event::Fault(info));
                }
                Ok(Event::Signal(info))
            }
            Stop::Exited(code) => Err(PlatformError::StubDied {
                pid: tid,
                reason: format!("exited with status {code}"),
            }),
            Stop::Killed(sig) => Err(PlatformError::StubDied {
                pid: tid,
                reason: format!("killed by signal {sig}"),
            }),
        }
    }

    fn fp_registers(
        &mut self,
        address_space: &Arc<dyn AddressSpace>,
    ) -> Result<FpRegisters, PlatformError> {
        let (_, tid) = self.thread(address_space)?;
        // SAFETY: all-zero is a valid user_fpregs_struct.
        let mut fp: FpRegisters = unsafe { std::mem::zeroed() };
        // SAFETY: the kernel writes one user_fpregs_struct to &mut fp.
        let rc = unsafe {
            libc::ptrace(
                libc::PTRACE_GETFPREGS,
                tid,
                std::ptr::null_mut::<libc::c_void>(),
                &mut fp as *mut FpRegisters as *mut libc::c_void,
            )
        };
        if rc != 0 {
            return Err(ptrace_err("PTRACE_GETFPREGS", tid));
        }
        Ok(fp)
    }

    fn set_fp_registers(
        &mut self,
        address_space: &Arc<dyn AddressSpace>,
        fp: &FpRegisters,
    ) -> Result<(), PlatformError> {
        let (_, tid) = self.thread(address_space)?;
        // SAFETY: the kernel reads one user_fpregs_struct from fp.
        let rc = unsafe {
            libc::ptrace(
                libc::PTRACE_SETFPREGS,
                tid,
                std::ptr::null_mut::<libc::c_void>(),
                fp as *const FpRegisters as *mut libc::c_void,
            )
        };
        if rc != 0 {
            return Err(ptrace_err("PTRACE_SETFPREGS", tid));
        }
        Ok(())
    }

    fn interrupter(&self) -> Interrupter {
        Interrupter::new(self.interrupt.clone())
    }
}
