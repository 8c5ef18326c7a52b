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
