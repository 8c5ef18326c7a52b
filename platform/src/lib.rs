//! Running guest code and getting control back.
//!
//! The sentry sees three things, whatever the platform (see DESIGN.md):
//!
//! * an [`AddressSpace`]: map and unmap ranges of the sentry's memory file
//!   into one guest address space;
//! * a [`Context`]: "run this guest thread with these registers until it
//!   makes a syscall, faults, or is interrupted", returning an [`Event`];
//! * an [`Interrupter`]: another sentry thread kicks a running guest thread
//!   back into the sentry.
//!
//! The platform knows nothing of what a syscall means. It never executes a
//! guest syscall on the host.

pub mod ptrace;
pub mod systrap;

use std::os::fd::RawFd;
use std::sync::Arc;

/// Guest general-purpose registers, in the layout the x86-64 kernel uses for
/// `PTRACE_GETREGS` (`struct user_regs_struct`).
pub type Registers = libc::user_regs_struct;

/// Guest floating point, SSE and AVX state: the whole XSAVE area in the
/// standard (non-compacted) format, as `PTRACE_GETREGSET NT_X86_XSTATE`
/// gives it and as a signal frame holds it. The first 512 bytes are the
/// FXSAVE layout; the XSAVE header follows at 512.
#[derive(Clone, PartialEq, Eq)]
pub struct FpState(pub Vec<u8>);

impl std::fmt::Debug for FpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FpState({} bytes)", self.0.len())
    }
}

impl FpState {
    /// Offset of MXCSR in the FXSAVE layout.
    pub const MXCSR: usize = 24;
    /// Offset of MXCSR_MASK.
    pub const MXCSR_MASK: usize = 28;
    /// Offset of the XSAVE header (XSTATE_BV first).
    pub const HEADER: usize = 512;

    /// The state of a freshly exec'd program: x87 control word 0x37f,
    /// MXCSR 0x1f80, every register zero, extended components in their
    /// initial state. `like` gives the size and the host's MXCSR mask.
    pub fn initial(like: &FpState) -> FpState {
        let mut v = vec![0u8; like.0.len().max(576)];
        v[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
        v[Self::MXCSR..Self::MXCSR + 4].copy_from_slice(&0x1f80u32.to_le_bytes());
        if like.0.len() >= Self::MXCSR_MASK + 4 {
            v[Self::MXCSR_MASK..Self::MXCSR_MASK + 4]
                .copy_from_slice(&like.0[Self::MXCSR_MASK..Self::MXCSR_MASK + 4]);
        }
        // XSTATE_BV: x87 and SSE state present; the rest initial.
        v[Self::HEADER] = 0b11;
        FpState(v)
    }
}

/// Page size of the guest and the host.
pub const PAGE_SIZE: u64 = 4096;

/// Memory protection of a mapping, as the `PROT_*` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct Prot {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Prot {
    pub const NONE: Prot = Prot {
        read: false,
        write: false,
        exec: false,
    };
    pub const READ: Prot = Prot {
        read: true,
        write: false,
        exec: false,
    };
    pub const RW: Prot = Prot {
        read: true,
        write: true,
        exec: false,
    };

    /// From Linux `PROT_*` bits (unknown bits ignored; the caller validates).
    pub fn from_bits(bits: u64) -> Prot {
        Prot {
            read: bits & libc::PROT_READ as u64 != 0,
            write: bits & libc::PROT_WRITE as u64 != 0,
            exec: bits & libc::PROT_EXEC as u64 != 0,
        }
    }

    pub fn bits(self) -> i32 {
        let mut b = 0;
        if self.read {
            b |= libc::PROT_READ;
        }
        if self.write {
            b |= libc::PROT_WRITE;
        }
        if self.exec {
            b |= libc::PROT_EXEC;
        }
        b
    }

    /// Whether every access `self` allows is also allowed by `other`.
    pub fn subset_of(self, other: Prot) -> bool {
        (!self.read || other.read) && (!self.write || other.write) && (!self.exec || other.exec)
    }

    pub fn is_none(self) -> bool {
        !self.read && !self.write && !self.exec
    }
}

/// The `siginfo` fields the sentry needs from a host signal that stopped a
/// guest thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalInfo {
    pub signo: i32,
    pub code: i32,
    pub errno: i32,
    /// `si_addr` for faults; zero otherwise.
    pub addr: u64,
    /// Sender pid for signals sent by a process (`SI_USER`, `SI_TKILL`).
    pub pid: i32,
}

/// What a faulting access tried to do, as far as the platform can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Access {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Access {
    /// The platform could not tell: any access the mapping allows.
    pub const ANY: Access = Access {
        read: true,
        write: true,
        exec: true,
    };
    pub const WRITE: Access = Access {
        read: false,
        write: true,
        exec: false,
    };
    pub const EXEC: Access = Access {
        read: false,
        write: false,
        exec: true,
    };
}

/// Why a guest thread stopped running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The guest executed a system call. The registers hold it: number in
    /// `orig_rax`, arguments in `rdi, rsi, rdx, r10, r8, r9`, and `rip`
    /// already points after the instruction. The host did not execute it.
    Syscall,
    /// A memory fault (SIGSEGV or SIGBUS) at `info.addr`. `info.code` is
    /// `SEGV_MAPERR` when the host had nothing mapped there and
    /// `SEGV_ACCERR` when the host mapping did not allow the access.
    /// `access` is what the access was, as far as the platform knows.
    Fault(SignalInfo, Access),
    /// Any other synchronous signal raised by the guest's instructions
    /// (SIGILL, SIGFPE, SIGTRAP, ...).
    Signal(SignalInfo),
    /// An [`Interrupter`] kicked the thread, or the switch was interrupted
    /// before the guest ran.
    Interrupted,
}

/// Errors of the platform. None of them is the guest's fault; the sentry
/// kills the affected guest thread group and carries on.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("the stub process {pid} died: {reason}")]
    StubDied { pid: i32, reason: String },
    #[error("{op} failed: {source}")]
    Os {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("the address space belongs to another platform")]
    ForeignAddressSpace,
    #[error("the address space is dead: {0}")]
    AddressSpaceDead(String),
}

impl PlatformError {
    pub(crate) fn os(op: &'static str) -> PlatformError {
        PlatformError::Os {
            op,
            source: std::io::Error::last_os_error(),
        }
    }
}

/// A guest address space.
pub trait AddressSpace: Send + Sync {
    /// The platform's own type behind this address space.
    fn as_any(&self) -> &dyn std::any::Any;

    /// Maps `len` bytes of the memory file at `offset` at guest address
    /// `addr` with protection `prot`, replacing whatever was there.
    /// `addr`, `len` and `offset` are page-aligned.
    fn map_file(&self, addr: u64, len: u64, offset: u64, prot: Prot) -> Result<(), PlatformError>;

    /// Calls `f` (once, from a platform thread) if the address space dies
    /// without being asked to: its host process was killed from outside.
    fn on_death(&self, f: Box<dyn Fn() + Send + Sync>);

    /// Removes every mapping in `[addr, addr+len)`. A failure leaves the
    /// address space dead: every thread running in it gets an error.
    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError>;
}

/// A handle that kicks a guest thread out of [`Context::switch`]. Cheap to
/// clone and usable from any sentry thread.
#[derive(Clone)]
pub struct Interrupter {
    inner: Arc<dyn Interrupt>,
}

/// What a platform does to interrupt one of its contexts.
pub trait Interrupt: Send + Sync {
    /// Marks an interrupt pending and, if the guest is running, forces it
    /// back into the sentry. Pending interrupts are consumed by the next
    /// return of `switch`.
    fn interrupt(&self);
}

impl Interrupter {
    pub fn new(inner: Arc<dyn Interrupt>) -> Interrupter {
        Interrupter { inner }
    }

    pub fn interrupt(&self) {
        self.inner.interrupt()
    }
}

/// One guest thread's execution context.
pub trait Context: Send {
    /// Runs the guest with `regs` in `address_space` until an [`Event`];
    /// `regs` then holds the guest's registers at that point.
    fn switch(
        &mut self,
        address_space: &Arc<dyn AddressSpace>,
        regs: &mut Registers,
    ) -> Result<Event, PlatformError>;

    /// Reads the guest's floating point state (the whole XSAVE area).
    fn fp_state(&mut self, address_space: &Arc<dyn AddressSpace>)
        -> Result<FpState, PlatformError>;

    /// Replaces the guest's floating point state; it takes effect at the
    /// next switch, in whatever address space that runs.
    fn set_fp_state(&mut self, fp: FpState);

    /// A handle for other sentry threads to interrupt this context.
    fn interrupter(&self) -> Interrupter;
}

/// A way of running guest code.
pub trait Platform: Send + Sync {
    fn name(&self) -> &'static str;

    /// One past the highest address a guest mapping may use.
    fn max_user_address(&self) -> u64;

    /// Registers for a new guest thread: segment selectors and flags set,
    /// everything else zero.
    fn initial_registers(&self) -> Registers;

    /// A new, empty address space. Any sentry thread may map into it and
    /// run guest threads in it.
    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError>;

    /// The floating point state of a freshly exec'd program.
    fn initial_fp_state(&self) -> FpState;

    /// A new context, for one guest thread.
    fn new_context(&self) -> Box<dyn Context>;
}

/// The sentry's memory file, as a platform needs it: an fd every address
/// space can map from.
#[derive(Clone, Copy, Debug)]
pub struct MemoryFileFd(pub RawFd);
