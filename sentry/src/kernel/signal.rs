//! Signal state: actions, masks and the alternate stack. Recorded and
//! validated here; delivery to guest handlers comes with the signals work.

use crate::errno::Errno;

/// Number of signals (1..=64).
pub const NSIG: usize = 64;

/// A signal set as the kernel stores it: bit `n-1` is signal `n`.
pub type SigSet = u64;

pub fn sig_bit(sig: i32) -> SigSet {
    1u64 << (sig - 1)
}

/// Signals that can be neither caught, blocked nor ignored.
pub const UNBLOCKABLE: SigSet = (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1));

/// `struct sigaction` as the x86-64 kernel takes it (`rt_sigaction`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: SigSet,
}

// SAFETY: four u64 fields.
unsafe impl crate::mm::io::Pod for SigAction {}

/// The sa_flags bits the kernel keeps (x86-64's UAPI_SA_FLAGS); others
/// are dropped.
pub const UAPI_SA_FLAGS: u64 = (libc::SA_NOCLDSTOP
    | libc::SA_NOCLDWAIT
    | libc::SA_SIGINFO
    | libc::SA_ONSTACK
    | libc::SA_RESTART
    | libc::SA_NODEFER
    | libc::SA_RESETHAND
    | SA_EXPOSE_TAGBITS
    | SA_RESTORER) as u32 as u64;
/// SA_EXPOSE_TAGBITS.
pub const SA_EXPOSE_TAGBITS: i32 = 0x800;
/// SA_RESTORER.
pub const SA_RESTORER: i32 = 0x0400_0000;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

/// `stack_t` (`sigaltstack`). A task's alternate stack keeps, as Linux's
/// `sas_ss_*` do, the flags exactly as last set (the mode and
/// SS_AUTODISARM); the stack is disabled when its size is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalStack {
    pub sp: u64,
    pub flags: i32,
    pub _pad: i32,
    pub size: u64,
}

// SAFETY: integer fields with explicit padding.
unsafe impl crate::mm::io::Pod for SignalStack {}

pub const SS_ONSTACK: i32 = 1;
pub const SS_DISABLE: i32 = 2;
pub const SS_AUTODISARM: i32 = 1 << 31;
/// MINSIGSTKSZ as the x86-64 kernel checks it.
pub const MINSIGSTKSZ: u64 = 2048;

/// Checks a signal number.
pub fn valid_signal(sig: i32) -> Result<(), Errno> {
    if sig < 1 || sig as usize > NSIG {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// What a signal does when it has no handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    CoreDump,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: i32) -> DefaultAction {
    match sig {
        libc::SIGCHLD | libc::SIGURG | libc::SIGWINCH => DefaultAction::Ignore,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => DefaultAction::Stop,
        libc::SIGCONT => DefaultAction::Continue,
        libc::SIGQUIT
        | libc::SIGILL
        | libc::SIGTRAP
        | libc::SIGABRT
        | libc::SIGBUS
        | libc::SIGFPE
        | libc::SIGSEGV
        | libc::SIGXCPU
        | libc::SIGXFSZ
        | libc::SIGSYS => DefaultAction::CoreDump,
        _ => DefaultAction::Terminate,
    }
}

/// One thread group's signal actions.
#[derive(Clone, Debug)]
pub struct SignalHandlers {
    pub actions: [SigAction; NSIG],
}

impl Default for SignalHandlers {
    fn default() -> Self {
        SignalHandlers {
            actions: [SigAction::default(); NSIG],
        }
    }
}

// ----- Queued signals -----

/// si_code values.
pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_QUEUE: i32 = -1;
pub const SI_TIMER: i32 = -2;
pub const SI_TKILL: i32 = -6;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;
pub const CLD_TRAPPED: i32 = 4;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;

/// First real-time signal.
pub const SIGRTMIN: i32 = 32;

/// A `siginfo_t` (128 bytes on x86-64): the three common fields and the
/// union, kept as the raw bytes the guest sees.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    /// The union, from offset 16.
    pub fields: [u8; 112],
}

impl std::fmt::Debug for SigInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigInfo {{ signo: {}, code: {}, pid: {} }}",
            self.signo,
            self.code,
            self.pid()
        )
    }
}

impl SigInfo {
    pub fn new(signo: i32, code: i32) -> SigInfo {
        SigInfo {
            signo,
            errno: 0,
            code,
            fields: [0; 112],
        }
    }

    fn put32(&mut self, off: usize, v: u32) {
        self.fields[off - 16..off - 12].copy_from_slice(&v.to_le_bytes());
    }

    fn put64(&mut self, off: usize, v: u64) {
        self.fields[off - 16..off - 8].copy_from_slice(&v.to_le_bytes());
    }

    fn get32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.fields[off - 16..off - 12].try_into().unwrap())
    }

    /// A signal sent by a process (kill, tkill, sigqueue: `si_pid`,
    /// `si_uid`).
    pub fn from_process(signo: i32, code: i32, pid: i32, uid: u32) -> SigInfo {
        let mut s = SigInfo::new(signo, code);
        s.put32(16, pid as u32);
        s.put32(20, uid);
        s
    }

    /// A fault at `addr`.
    pub fn fault(signo: i32, code: i32, addr: u64) -> SigInfo {
        let mut s = SigInfo::new(signo, code);
        s.put64(16, addr);
        s
    }

    /// SIGCHLD (or a child's exit signal) about a child.
    pub fn child(
        signo: i32,
        code: i32,
        pid: i32,
        uid: u32,
        status: i32,
        times: (u64, u64),
    ) -> SigInfo {
        let mut s = SigInfo::from_process(signo, code, pid, uid);
        s.put32(24, status as u32);
        s.put64(32, times.0);
        s.put64(40, times.1);
        s
    }

    /// A timer's signal: timer id, overrun count, the sigevent's value.
    pub fn timer(signo: i32, timer_id: i32, overrun: i32, value: u64) -> SigInfo {
        let mut s = SigInfo::new(signo, SI_TIMER);
        s.put32(16, timer_id as u32);
        s.put32(20, overrun as u32);
        s.put64(24, value);
        s
    }

    /// `si_pid` of process-sent signals.
    pub fn pid(&self) -> i32 {
        self.get32(16) as i32
    }

    /// `si_timerid` of a timer signal.
    pub fn timer_id(&self) -> i32 {
        self.get32(16) as i32
    }

    /// Overwrites the overrun count of a timer signal.
    pub fn set_overrun(&mut self, n: i32) {
        self.put32(20, n as u32);
    }

    pub fn to_bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..4].copy_from_slice(&self.signo.to_le_bytes());
        b[4..8].copy_from_slice(&self.errno.to_le_bytes());
        b[8..12].copy_from_slice(&self.code.to_le_bytes());
        b[16..].copy_from_slice(&self.fields);
        b
    }

    pub fn from_bytes(b: &[u8; 128]) -> SigInfo {
        let mut fields = [0u8; 112];
        fields.copy_from_slice(&b[16..]);
        SigInfo {
            signo: i32::from_le_bytes(b[0..4].try_into().unwrap()),
            errno: i32::from_le_bytes(b[4..8].try_into().unwrap()),
            code: i32::from_le_bytes(b[8..12].try_into().unwrap()),
            fields,
        }
    }
}

/// Pending signals: a standard signal is pending at most once; real-time
/// signals queue, each with its own info.
#[derive(Default, Clone, Debug)]
pub struct SigQueue {
    pub set: SigSet,
    infos: std::collections::VecDeque<SigInfo>,
}

/// How many signals may queue (RLIMIT_SIGPENDING's default is larger;
/// this bounds the sentry's memory).
const MAX_QUEUED: usize = 4096;

impl SigQueue {
    /// Queues `info`; false if it was dropped (a standard signal already
    /// pending, or the queue full).
    pub fn push(&mut self, info: SigInfo) -> bool {
        let bit = sig_bit(info.signo);
        if info.signo < SIGRTMIN && self.set & bit != 0 {
            return false;
        }
        if self.infos.len() >= MAX_QUEUED {
            return false;
        }
        self.set |= bit;
        self.infos.push_back(info);
        true
    }

    /// Takes the lowest-numbered pending signal not in `blocked`.
    pub fn take(&mut self, blocked: SigSet) -> Option<SigInfo> {
        let ready = self.set & !blocked;
        if ready == 0 {
            return None;
        }
        let sig = ready.trailing_zeros() as i32 + 1;
        self.take_signal(sig)
    }

    /// Takes one pending instance of `sig`.
    pub fn take_signal(&mut self, sig: i32) -> Option<SigInfo> {
        let i = self.infos.iter().position(|s| s.signo == sig)?;
        let info = self.infos.remove(i).unwrap();
        if !self.infos.iter().any(|s| s.signo == sig) {
            self.set &= !sig_bit(sig);
        }
        Some(info)
    }

    /// Drops every pending instance of the signals in `set`.
    pub fn discard(&mut self, set: SigSet) {
        self.infos.retain(|s| sig_bit(s.signo) & set == 0);
        self.set &= !set;
    }

    /// The first pending signal `f` accepts, to change in place.
    pub fn find_mut(&mut self, f: impl Fn(&SigInfo) -> bool) -> Option<&mut SigInfo> {
        self.infos.iter_mut().find(|i| f(i))
    }

    /// Drops the pending signals `f` accepts.
    pub fn remove_where(&mut self, f: impl Fn(&SigInfo) -> bool) {
        self.infos.retain(|i| !f(i));
        self.set = self.infos.iter().fold(0, |s, i| s | sig_bit(i.signo));
    }

    pub fn is_pending(&self, sig: i32) -> bool {
        self.set & sig_bit(sig) != 0
    }
}

/// The stop signals.
pub const STOP_SIGNALS: SigSet = (1 << (libc::SIGSTOP - 1))
    | (1 << (libc::SIGTSTP - 1))
    | (1 << (libc::SIGTTIN - 1))
    | (1 << (libc::SIGTTOU - 1));

/// Signals a fault or trap raises synchronously.
pub const SYNCHRONOUS: SigSet = (1 << (libc::SIGSEGV - 1))
    | (1 << (libc::SIGBUS - 1))
    | (1 << (libc::SIGILL - 1))
    | (1 << (libc::SIGTRAP - 1))
    | (1 << (libc::SIGFPE - 1))
    | (1 << (libc::SIGSYS - 1));

// ----- Signal frames -----

/// uc_flags: the frame has XSAVE state; the saved SS is meaningful.
pub const UC_FP_XSTATE: u64 = 1;
pub const UC_SIGCONTEXT_SS: u64 = 2;
pub const UC_STRICT_RESTORE_SS: u64 = 4;
/// The magic numbers of an extended FP state in a frame.
pub const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
pub const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;

/// Offsets in `struct rt_sigframe` (x86-64): the return address, then
/// the ucontext, then the siginfo.
pub const FRAME_UC: u64 = 8;
/// ucontext: uc_flags, uc_link, uc_stack (24), uc_mcontext (256),
/// uc_sigmask.
pub const UC_STACK: u64 = 16;
pub const UC_MCONTEXT: u64 = 40;
pub const UC_SIGMASK: u64 = 296;
pub const UC_SIZE: u64 = 304;
pub const FRAME_INFO: u64 = FRAME_UC + UC_SIZE;
pub const FRAME_SIZE: u64 = FRAME_INFO + 128;
/// Offset of `fpstate` in sigcontext.
pub const SC_FPSTATE: usize = 184;

/// The general registers as `struct sigcontext` orders them, with
/// err/trapno/oldmask/cr2 and the fpstate pointer: 256 bytes.
pub fn sigcontext_bytes(
    r: &platform::Registers,
    trap: (u64, u64, u64),
    fpstate: u64,
    oldmask: u64,
) -> [u8; 256] {
    let mut b = [0u8; 256];
    let words = [
        r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rdi, r.rsi, r.rbp, r.rbx, r.rdx,
        r.rax, r.rcx, r.rsp, r.rip, r.eflags,
    ];
    for (i, w) in words.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    // cs, gs, fs, ss (16 bits each).
    b[144..146].copy_from_slice(&(r.cs as u16).to_le_bytes());
    b[146..148].copy_from_slice(&(r.gs as u16).to_le_bytes());
    b[148..150].copy_from_slice(&(r.fs as u16).to_le_bytes());
    b[150..152].copy_from_slice(&(r.ss as u16).to_le_bytes());
    b[152..160].copy_from_slice(&trap.0.to_le_bytes()); // err
    b[160..168].copy_from_slice(&trap.1.to_le_bytes()); // trapno
    b[168..176].copy_from_slice(&oldmask.to_le_bytes());
    b[176..184].copy_from_slice(&trap.2.to_le_bytes()); // cr2
    b[184..192].copy_from_slice(&fpstate.to_le_bytes());
    b
}

/// Restores general registers from a `struct sigcontext`, as Linux's
/// restore_sigcontext does: segment selectors stay the user ones, and
/// only the flags a program may change are taken.
pub fn restore_sigcontext(r: &mut platform::Registers, b: &[u8; 256]) {
    let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
    r.r8 = w(0);
    r.r9 = w(1);
    r.r10 = w(2);
    r.r11 = w(3);
    r.r12 = w(4);
    r.r13 = w(5);
    r.r14 = w(6);
    r.r15 = w(7);
    r.rdi = w(8);
    r.rsi = w(9);
    r.rbp = w(10);
    r.rbx = w(11);
    r.rdx = w(12);
    r.rax = w(13);
    r.rcx = w(14);
    r.rsp = w(15);
    r.rip = w(16);
    // FIX_EFLAGS: AC, OF, DF, TF, SF, ZF, AF, PF, CF and RF.
    const FIX: u64 = 0x4_0000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x1_0000;
    r.eflags = (r.eflags & !FIX) | (w(17) & FIX);
    r.orig_rax = u64::MAX;
}
