//! The seccomp-trap platform ("systrap").
//!
//! Each guest address space is a stub process, as with ptrace, but guest
//! threads run in stub threads that are *not* traced. Each stub thread
//! runs under a seccomp filter of its own that answers every system call
//! made outside the stub's code page with `SECCOMP_RET_TRAP`, and a
//! handler for SIGSYS (and the fault signals, and the interrupt signal)
//! written in position-independent machine code runs on the thread's
//! alternate stack. It copies the signal frame's registers into the
//! thread's *message page*, a page of a memory file mapped both in the
//! stub and in the sentry, wakes the sentry with a futex on that page and
//! waits on the same futex. The sentry answers with the registers to go
//! on with; the handler writes them into the frame and `rt_sigreturn`s
//! into the guest. No ptrace stop is on that path.
//!
//! ptrace is used only to set stubs up: a stub process is cloned from a
//! template and attached by an *owner* thread of its own (as with the
//! ptrace platform), and each new stub thread is cloned by the stopped
//! master under `PTRACE_O_TRACECLONE`, so it starts traced and stopped;
//! the owner makes it install its alternate stack and its seccomp filter
//! (checking both results while the thread is still stopped, where no
//! guest code can reach it) and only then detaches it.
//!
//! Mapping changes go to a *mapper* thread of the stub, which waits on a
//! futex in a page the stub maps read-only, and executes the `mmap` or
//! `munmap` the sentry wrote there; it reports completion by writing one
//! byte, taken from that read-only page, to a pipe whose only write end is
//! in the stub and whose read end only the sentry has. The guest cannot
//! write the pipe (its filter forbids `write`), so the byte is the
//! mapper's.
//!
//! See the systrap section of docs/design-notes.md for the security
//! argument: what a guest that takes over its stub completely can and
//! cannot do.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};

use crate::ptrace::placement;
use crate::ptrace::{
    attach, get_regs, last_errno, lock, pidfd, ptrace_err, reap, resume, set_regs, stub_syscall,
    wait_stop, Stop, HOST_TASK_SIZE, TRACEME_FAILED,
};
use crate::{
    Access, AddressSpace, Context, Event, FpState, Interrupt, Interrupter, PlatformError, Prot,
    Registers, SignalInfo, PAGE_SIZE,
};

/// One stub thread's share of the memory file and of the stub's address
/// space: a control page (read-only in the stub), the message page, the
/// FP page, and the alternate signal stack. Aligned to its size, so that
/// the handler finds its slot from its stack pointer.
const SLOT_SIZE: u64 = 0x10000;
/// How many stub threads can exist at once, over all address spaces.
const NSLOTS: usize = 4096;
const AREA_SIZE: u64 = SLOT_SIZE * NSLOTS as u64;
const CODE_SIZE: u64 = PAGE_SIZE;
/// Offsets in a slot.
const MSG: u64 = 0x1000;
const FP: u64 = 0x2000;
const ALTSTACK: u64 = 0x3000;

// The control page (written by the sentry only).
const REQ_SEQ: usize = 0;
const REQ_NR: usize = 8;
const REQ_ARGS: usize = 16;
const PIPE_FD: usize = 64;
const FPSIZE: usize = 68;
const SPIN: usize = 72;
const TOK_OK: usize = 80;
const TOK_FAIL: usize = 81;
const STACK_T: usize = 96;
const FPROG: usize = 128;
const FILTER: usize = 256;

// The message page (written by both sides: hostile input).
const STATE: usize = 0;
const SIGNO: usize = 4;
const CODE: usize = 8;
const ERRNO: usize = 12;
const ADDR: usize = 16;
const SYSNR: usize = 24;
const FSBASE: usize = 32;
const GSBASE: usize = 40;
const FPLOAD: usize = 48;
const RESULT: usize = 56;
const GREGS: usize = 64;
const PIPE_FDS: usize = 0x800;

/// States of a message page. `ST_NONE` is also what the kernel writes
/// when the thread exits (`CLONE_CHILD_CLEARTID`).
const ST_NONE: u32 = 0;
const ST_EVENT: u32 = 1;
const ST_RUN: u32 = 2;
const ST_FPGET: u32 = 3;
const ST_EXIT: u32 = 4;

/// The signal an interrupter sends to a stub thread.
const INTERRUPT_SIGNAL: i32 = libc::SIGCHLD;
/// The signals the stub's handler serves.
const HANDLED: [i32; 7] = [
    libc::SIGSYS,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGTRAP,
    INTERRUPT_SIGNAL,
];

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const SYS_SECCOMP: i32 = 1;
const SA_RESTORER: i32 = 0x0400_0000;
const SI_KERNEL: i32 = 0x80;
const SYS_URETPROBE: u64 = 335;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_SET_MODE_FILTER: u64 = 1;
const PTRACE_EVENT_CLONE: i32 = 3;
const PTRACE_GETEVENTMSG: libc::c_uint = 0x4201;

// The stub's code, copied to the code page at the top of the stub region,
// so position independent. `runsc_systrap_start` to `_clone` are as in the
// ptrace platform's stub (empty the address space, stop; one traced
// syscall; clone). The rest runs untraced:
//
// * `init`: a new guest stub thread's first instruction; it raises SIGILL,
//   whose handling reports the thread ready and waits for its first run.
// * `handler`: rdi = signo, rsi = siginfo, rdx = ucontext, rsp in the
//   slot's alternate stack. Saves siginfo, registers and fs/gs base into
//   the message page, publishes ST_EVENT and waits (spinning first, as
//   long as the control page says) until the sentry writes ST_RUN (load
//   registers and return into the guest), ST_FPGET (copy the FP state out)
//   or anything else (the thread exits).
// * `mapper`: r12 = its slot; executes the requests of its control page.
std::arch::global_asm!(
    ".pushsection .text.runsc_systrap, \"ax\"",
    ".globl runsc_systrap_start",
    ".globl runsc_systrap_syscall",
    ".globl runsc_systrap_clone",
    ".globl runsc_systrap_init",
    ".globl runsc_systrap_handler",
    ".globl runsc_systrap_restorer",
    ".globl runsc_systrap_mapper",
    ".globl runsc_systrap_ksa",
    ".globl runsc_systrap_end",
    "runsc_systrap_start:",
    "mov r12, rdi",
    "mov r13, rsi",
    "mov r14, rdx",
    "mov eax, 11",
    "xor edi, edi",
    "mov rsi, r12",
    "syscall",
    "mov eax, 11",
    "mov rdi, r13",
    "mov rsi, r14",
    "sub rsi, r13",
    "syscall",
    "mov eax, 39",
    "syscall",
    "mov edi, eax",
    "mov eax, 62",
    "mov esi, 19",
    "syscall",
    "runsc_systrap_syscall:",
    "syscall",
    "int3",
    "jmp runsc_systrap_syscall",
    "runsc_systrap_clone:",
    "syscall",
    "test rax, rax",
    "jz 2f",
    "int3",
    "jmp runsc_systrap_syscall",
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
    "jmp runsc_systrap_syscall",
    "3:",
    ".asciz \"runsc-stub\"",
    "runsc_systrap_init:",
    "ud2",
    "runsc_systrap_handler:",
    "mov r15, rsp",
    "mov rbx, rsp",
    "and rbx, {slot_mask}",
    "lea r12, [rbx + {msg}]",
    "mov r13, rdx",
    "mov [r12 + {signo}], edi",
    "mov eax, [rsi + 4]",
    "mov [r12 + {errno}], eax",
    "mov eax, [rsi + 8]",
    "mov [r12 + {code}], eax",
    "mov rax, [rsi + 16]",
    "mov [r12 + {addr}], rax",
    "mov rax, [rsi + 24]",
    "mov [r12 + {sysnr}], rax",
    "lea rsi, [r13 + 40]",
    "lea rdi, [r12 + {gregs}]",
    "mov ecx, 23",
    "rep movsq",
    "rdfsbase rax",
    "mov [r12 + {fsbase}], rax",
    "rdgsbase rax",
    "mov [r12 + {gsbase}], rax",
    // Publish the event and wake the sentry.
    "4:",
    "mov dword ptr [r12 + {state}], {st_event}",
    "mov eax, 202",
    "lea rdi, [r12 + {state}]",
    "mov esi, 1",
    "mov edx, 1",
    "syscall",
    // Wait for the answer.
    "5:",
    "mov ecx, [rbx + {spin}]",
    "6:",
    "mov eax, [r12 + {state}]",
    "cmp eax, {st_event}",
    "jne 7f",
    "pause",
    "dec ecx",
    "jg 6b",
    "mov eax, 202",
    "lea rdi, [r12 + {state}]",
    "xor esi, esi",
    "mov edx, {st_event}",
    "xor r10d, r10d",
    "syscall",
    "jmp 5b",
    "7:",
    "cmp eax, {st_run}",
    "je 8f",
    "cmp eax, {st_fpget}",
    "jne 9f",
    "mov rsi, [r13 + 224]",
    "lea rdi, [r12 + {fp_from_msg}]",
    "mov ecx, [rbx + {fpsize}]",
    "rep movsb",
    "jmp 4b",
    "8:",
    "lea rsi, [r12 + {gregs}]",
    "lea rdi, [r13 + 40]",
    "mov ecx, 18",
    "rep movsq",
    "mov rax, [r12 + {fsbase}]",
    "wrfsbase rax",
    "mov rax, [r12 + {gsbase}]",
    "wrgsbase rax",
    // The guest runs with no host signal blocked.
    "mov qword ptr [r13 + 296], 0",
    "cmp dword ptr [r12 + {fpload}], 0",
    "je 10f",
    "mov dword ptr [r12 + {fpload}], 0",
    "mov rdi, [r13 + 224]",
    "lea rsi, [r12 + {fp_from_msg}]",
    "mov ecx, 464",
    "rep movsb",
    "add rdi, 48",
    "add rsi, 48",
    "mov ecx, [rbx + {fpsize}]",
    "sub ecx, 512",
    "rep movsb",
    "10:",
    "lea rsp, [r15 + 8]",
    "mov eax, 15",
    "syscall",
    "ud2",
    "9:",
    "mov eax, 60",
    "xor edi, edi",
    "syscall",
    "ud2",
    "runsc_systrap_restorer:",
    "mov eax, 15",
    "syscall",
    "ud2",
    "runsc_systrap_mapper:",
    "xor r14d, r14d",
    "11:",
    "mov eax, [r12 + {req_seq}]",
    "cmp eax, r14d",
    "jne 12f",
    "mov eax, 202",
    "lea rdi, [r12 + {req_seq}]",
    "xor esi, esi",
    "mov edx, r14d",
    "xor r10d, r10d",
    "syscall",
    "jmp 11b",
    "12:",
    "mov r14d, eax",
    "mov rax, [r12 + {req_nr}]",
    "mov rdi, [r12 + {req_args}]",
    "mov rsi, [r12 + {req_args} + 8]",
    "mov rdx, [r12 + {req_args} + 16]",
    "mov r10, [r12 + {req_args} + 24]",
    "mov r8, [r12 + {req_args} + 32]",
    "mov r9, [r12 + {req_args} + 40]",
    "syscall",
    "mov [r12 + {msg} + {result}], rax",
    "lea rsi, [r12 + {tok_ok}]",
    "cmp rax, -4095",
    "jb 13f",
    "lea rsi, [r12 + {tok_fail}]",
    "13:",
    "mov eax, 1",
    "mov edi, [r12 + {pipe_fd}]",
    "mov edx, 1",
    "syscall",
    "jmp 11b",
    ".balign 8",
    "runsc_systrap_ksa:",
    ".skip 32",
    "runsc_systrap_end:",
    ".popsection",
    slot_mask = const -(SLOT_SIZE as i64),
    msg = const MSG,
    signo = const SIGNO,
    errno = const ERRNO,
    code = const CODE,
    addr = const ADDR,
    sysnr = const SYSNR,
    gregs = const GREGS,
    fsbase = const FSBASE,
    gsbase = const GSBASE,
    state = const STATE,
    st_event = const ST_EVENT,
    st_run = const ST_RUN,
    st_fpget = const ST_FPGET,
    spin = const SPIN,
    fpsize = const FPSIZE,
    fp_from_msg = const FP - MSG,
    fpload = const FPLOAD,
    req_seq = const REQ_SEQ,
    req_nr = const REQ_NR,
    req_args = const REQ_ARGS,
    result = const RESULT,
    tok_ok = const TOK_OK,
    tok_fail = const TOK_FAIL,
    pipe_fd = const PIPE_FD,
);

extern "C" {
    static __rseq_offset: isize;
    static __rseq_size: libc::c_uint;
    static runsc_systrap_start: u8;
    static runsc_systrap_syscall: u8;
    static runsc_systrap_clone: u8;
    static runsc_systrap_init: u8;
    static runsc_systrap_handler: u8;
    static runsc_systrap_restorer: u8;
    static runsc_systrap_mapper: u8;
    static runsc_systrap_ksa: u8;
    static runsc_systrap_end: u8;
}

/// Where things are in every stub process (and reserved in the sentry).
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Slot 0 of the slot area.
    area: u64,
    /// The code page.
    code: u64,
    syscall: u64,
    clone: u64,
    init: u64,
    mapper: u64,
    ksa: u64,
}

impl Layout {
    fn slot(&self, i: usize) -> u64 {
        self.area + i as u64 * SLOT_SIZE
    }
}

/// Reserves the stub region in the sentry (so that no sentry memory is
/// there to be inherited by a stub) and fills the code page.
fn make_layout() -> Result<Layout, PlatformError> {
    let sym = |p: *const u8| p as u64;
    // Taking the addresses of our own assembly labels.
    let (start, syscall, clone, init, handler, restorer, mapper, ksa, end) = {
        (
            sym(&raw const runsc_systrap_start),
            sym(&raw const runsc_systrap_syscall),
            sym(&raw const runsc_systrap_clone),
            sym(&raw const runsc_systrap_init),
            sym(&raw const runsc_systrap_handler),
            sym(&raw const runsc_systrap_restorer),
            sym(&raw const runsc_systrap_mapper),
            sym(&raw const runsc_systrap_ksa),
            sym(&raw const runsc_systrap_end),
        )
    };
    let code_len = (end - start) as usize;
    assert!(code_len as u64 <= CODE_SIZE);
    let total = AREA_SIZE + CODE_SIZE;
    let mut candidate = (HOST_TASK_SIZE - total - 0x2000_0000) & !(SLOT_SIZE - 1);
    for _ in 0..256 {
        let code = candidate + AREA_SIZE;
        // The filters compare the instruction pointer's halves: the code
        // page must not end on a 4 GiB boundary.
        if (code + CODE_SIZE) & 0xffff_ffff == 0 {
            candidate -= SLOT_SIZE;
            continue;
        }
        // SAFETY: MAP_FIXED_NOREPLACE never replaces a mapping; the new
        // inaccessible range is ours alone.
        let p = unsafe {
            libc::mmap(
                candidate as *mut libc::c_void,
                total as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE
                    | libc::MAP_ANONYMOUS
                    | libc::MAP_FIXED_NOREPLACE
                    | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            candidate -= 0x1000_0000;
            continue;
        }
        if p as u64 != candidate {
            // SAFETY: gives back what an old kernel mapped elsewhere.
            unsafe { libc::munmap(p, total as usize) };
            candidate -= 0x1000_0000;
            continue;
        }
        // SAFETY: replaces the last page of the range we just reserved.
        let c = unsafe {
            libc::mmap(
                code as *mut libc::c_void,
                CODE_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if c == libc::MAP_FAILED {
            return Err(PlatformError::os("mmap of the systrap code page"));
        }
        let at = |a: u64| code + (a - start);
        // SAFETY: copies our stub code (code_len bytes of our text) into
        // the writable page just mapped, then fills the sigaction record
        // (32 bytes at the ksa label, inside the page).
        unsafe {
            std::ptr::copy_nonoverlapping(start as *const u8, code as *mut u8, code_len);
            let k = at(ksa) as *mut u64;
            k.write(at(handler));
            k.add(1)
                .write((libc::SA_SIGINFO | libc::SA_ONSTACK | SA_RESTORER) as u64);
            k.add(2).write(at(restorer));
            k.add(3).write(u64::MAX);
        }
        // SAFETY: changes the protection of our own page only.
        if unsafe { libc::mprotect(c, CODE_SIZE as usize, libc::PROT_READ | libc::PROT_EXEC) } != 0
        {
            return Err(PlatformError::os("mprotect of the systrap code page"));
        }
        return Ok(Layout {
            area: candidate,
            code,
            syscall: at(syscall),
            clone: at(clone),
            init: at(init),
            mapper: at(mapper),
            ksa: at(ksa),
        });
    }
    Err(PlatformError::StubDied {
        pid: 0,
        reason: "no free address range for the systrap stub region".into(),
    })
}

/// The size of the XSAVE area a signal frame holds: every feature the
/// host enabled but those the kernel gives a task only on request (AMX
/// tile data).
fn frame_xsave_size() -> usize {
    // SAFETY: CPUID and XGETBV are available on every x86-64 CPU with
    // XSAVE, which the platform requires (checked by the caller through
    // the size being sane).
    let xcr0 = unsafe { std::arch::x86_64::_xgetbv(0) };
    let mut size = 576usize;
    for i in 2..63u32 {
        if xcr0 & (1 << i) == 0 || i == 18 {
            continue;
        }
        // SAFETY: CPUID leaf 0xD sub-leaf i: size and offset of component i.
        #[allow(unused_unsafe)]
        let r = unsafe { std::arch::x86_64::__cpuid_count(0xd, i) };
        size = size.max((r.ebx + r.eax) as usize);
    }
    size
}

// --- seccomp programs -------------------------------------------------

#[repr(C)]
#[derive(Clone, Copy)]
struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

#[derive(Clone, Copy)]
enum Ins {
    /// Load the 32-bit word at this offset of seccomp_data.
    Ld(u32),
    Jeq(u32, u8, u8),
    Jge(u32, u8, u8),
    And(u32),
    Ret(u32),
    Label(u8),
}

fn assemble(prog: &[Ins]) -> Vec<SockFilter> {
    let mut pos = [usize::MAX; 64];
    let mut n = 0;
    for i in prog {
        match i {
            Ins::Label(l) => pos[*l as usize] = n,
            _ => n += 1,
        }
    }
    let mut out = Vec::with_capacity(n);
    let rel = |pc: usize, l: u8| -> u8 {
        let t = pos[l as usize];
        assert!(
            t != usize::MAX && t > pc && t - pc - 1 < 256,
            "bad BPF jump"
        );
        (t - pc - 1) as u8
    };
    for i in prog {
        let pc = out.len();
        let f = match *i {
            Ins::Label(_) => continue,
            Ins::Ld(off) => SockFilter {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: off,
            },
            Ins::Jeq(k, t, f) => SockFilter {
                code: 0x15,
                jt: rel(pc, t),
                jf: rel(pc, f),
                k,
            },
            Ins::Jge(k, t, f) => SockFilter {
                code: 0x35,
                jt: rel(pc, t),
                jf: rel(pc, f),
                k,
            },
            Ins::And(k) => SockFilter {
                code: 0x54,
                jt: 0,
                jf: 0,
                k,
            },
            Ins::Ret(k) => SockFilter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k,
            },
        };
        out.push(f);
    }
    out
}

const L_ALLOW: u8 = 60;
const L_TRAP: u8 = 61;
const L_KILL: u8 = 62;

fn lo(v: u64) -> u32 {
    v as u32
}
fn hi(v: u64) -> u32 {
    (v >> 32) as u32
}
/// Offset of the low half of syscall argument `i` in seccomp_data.
fn arg(i: u32) -> u32 {
    16 + 8 * i
}

/// Checks that argument `i` (all 64 bits) equals `v`, else kills.
fn arg_eq(p: &mut Vec<Ins>, i: u32, v: u64, next: &mut u8) {
    let a = *next;
    let b = *next + 1;
    *next += 2;
    p.extend([
        Ins::Ld(arg(i)),
        Ins::Jeq(lo(v), a, L_KILL),
        Ins::Label(a),
        Ins::Ld(arg(i) + 4),
        Ins::Jeq(hi(v), b, L_KILL),
        Ins::Label(b),
    ]);
}

/// The arch check and the instruction-pointer range check: syscalls from
/// outside the code page go to `outside`.
fn prologue(l: &Layout, outside: u8, wrong_arch: u8) -> Vec<Ins> {
    let end = l.code + CODE_SIZE;
    vec![
        Ins::Ld(4),
        Ins::Jeq(AUDIT_ARCH_X86_64, 1, wrong_arch),
        Ins::Label(1),
        Ins::Ld(12),
        Ins::Jeq(hi(l.code), 2, outside),
        Ins::Label(2),
        Ins::Ld(8),
        Ins::Jge(lo(l.code), 3, outside),
        Ins::Label(3),
        Ins::Jge(lo(end), outside, 4),
        Ins::Label(4),
        Ins::Ld(0),
    ]
}

fn epilogue(p: &mut Vec<Ins>) {
    p.extend([
        Ins::Label(L_ALLOW),
        Ins::Ret(SECCOMP_RET_ALLOW),
        Ins::Label(L_TRAP),
        Ins::Ret(SECCOMP_RET_TRAP),
        Ins::Label(L_KILL),
        Ins::Ret(SECCOMP_RET_KILL_PROCESS),
    ]);
}

/// A guest stub thread's filter: every syscall from guest code traps;
/// from the stub's code only futex wait/wake on the thread's own state
/// word, rt_sigreturn and exit run. Anything else from the stub's code
/// kills the stub.
fn guest_filter(l: &Layout, slot: usize) -> Vec<SockFilter> {
    let state = l.slot(slot) + MSG + STATE as u64;
    let mut p = prologue(l, L_TRAP, L_TRAP);
    let mut next = 10;
    p.extend([
        Ins::Jeq(libc::SYS_futex as u32, 5, 6),
        Ins::Label(6),
        Ins::Jeq(libc::SYS_rt_sigreturn as u32, L_ALLOW, 7),
        Ins::Label(7),
        Ins::Jeq(libc::SYS_exit as u32, L_ALLOW, L_KILL),
        Ins::Label(5),
    ]);
    arg_eq(&mut p, 0, state, &mut next);
    p.extend([
        Ins::Ld(arg(1)),
        Ins::Jeq(libc::FUTEX_WAIT as u32, L_ALLOW, 8),
        Ins::Label(8),
        Ins::Jeq(libc::FUTEX_WAKE as u32, L_ALLOW, L_KILL),
    ]);
    epilogue(&mut p);
    assemble(&p)
}

/// Every stub thread's first filter, installed in the template before it
/// first runs the stub's code, so inherited by every stub process and
/// thread: syscalls from the stub's code page run (the stopped master's,
/// which the sentry makes through ptrace; each thread's own filter narrows
/// that further), every other one traps. The master never runs guest code;
/// with this filter a stub has no thread that could make a host syscall
/// from anywhere else.
fn master_filter(l: &Layout) -> Vec<SockFilter> {
    let mut p = prologue(l, L_TRAP, L_TRAP);
    p.push(Ins::Ret(SECCOMP_RET_ALLOW));
    epilogue(&mut p);
    assemble(&p)
}

/// The mapper's filter: futex wait on its request word, mmap of the
/// memory file (shared, fixed), munmap, and the one-byte completion write
/// to its pipe. Anything else kills the stub.
fn mapper_filter(l: &Layout, slot: usize, memory_fd: RawFd, pipe: RawFd) -> Vec<SockFilter> {
    let ctl = l.slot(slot);
    let mut p = prologue(l, L_KILL, L_KILL);
    let mut next = 10;
    p.extend([
        Ins::Jeq(libc::SYS_futex as u32, 5, 6),
        Ins::Label(6),
        Ins::Jeq(libc::SYS_mmap as u32, 7, 8),
        Ins::Label(8),
        Ins::Jeq(libc::SYS_munmap as u32, L_ALLOW, 9),
        Ins::Label(9),
        Ins::Jeq(libc::SYS_write as u32, 40, L_KILL),
        Ins::Label(5),
    ]);
    arg_eq(&mut p, 0, ctl + REQ_SEQ as u64, &mut next);
    arg_eq(&mut p, 1, libc::FUTEX_WAIT as u64, &mut next);
    p.extend([Ins::Ret(SECCOMP_RET_ALLOW), Ins::Label(7)]);
    arg_eq(&mut p, 4, memory_fd as u64, &mut next);
    arg_eq(
        &mut p,
        3,
        (libc::MAP_SHARED | libc::MAP_FIXED) as u64,
        &mut next,
    );
    p.extend([Ins::Ld(arg(2) + 4), Ins::Jeq(0, 41, L_KILL), Ins::Label(41)]);
    p.extend([
        Ins::Ld(arg(2)),
        Ins::And(!7u32),
        Ins::Jeq(0, L_ALLOW, L_KILL),
        Ins::Label(40),
    ]);
    arg_eq(&mut p, 0, pipe as u64, &mut next);
    arg_eq(&mut p, 2, 1, &mut next);
    p.extend([
        Ins::Ld(arg(1) + 4),
        Ins::Jeq(hi(ctl + TOK_OK as u64), 42, L_KILL),
        Ins::Label(42),
        Ins::Ld(arg(1)),
        Ins::Jeq(lo(ctl + TOK_OK as u64), L_ALLOW, 43),
        Ins::Label(43),
        Ins::Jeq(lo(ctl + TOK_FAIL as u64), L_ALLOW, L_KILL),
    ]);
    epilogue(&mut p);
    assemble(&p)
}

// --- shared memory ----------------------------------------------------

/// What every address space of the platform shares.
struct Global {
    memory_fd: RawFd,
    /// The memory file of the slots.
    slots_fd: OwnedFd,
    /// The sentry's mapping of all slots.
    view: usize,
    layout: Layout,
    fpsize: usize,
    /// The most rounds a sentry thread spins waiting for its stub thread
    /// before it sleeps on the futex (adaptive below that, per context).
    spin: u32,
    /// The rounds a stub thread spins waiting for the sentry.
    stub_spin: u32,
    /// Whether contexts may run split (see `SystrapContext::place`).
    split: bool,
    free: Mutex<Vec<usize>>,
    template: Mutex<Option<mpsc::Sender<StubReply>>>,
}

type StubReply = mpsc::Sender<Result<i32, PlatformError>>;

impl Global {
    fn ptr(&self, slot: usize, off: u64) -> *mut u8 {
        assert!(slot < NSLOTS && off < SLOT_SIZE);
        (self.view + slot * SLOT_SIZE as usize + off as usize) as *mut u8
    }

    fn ctl_u64(&self, slot: usize, off: usize) -> *mut u64 {
        self.ptr(slot, off as u64).cast()
    }

    fn state(&self, slot: usize) -> &AtomicU32 {
        // SAFETY: the word is in our shared mapping, which lives as long as
        // the platform, and is 4-byte aligned; others write it only
        // atomically or with plain aligned stores.
        unsafe { &*(self.ptr(slot, MSG + STATE as u64) as *const AtomicU32) }
    }

    fn read_msg_u32(&self, slot: usize, off: usize) -> u32 {
        // SAFETY: an aligned read inside our mapping of the slot.
        unsafe { std::ptr::read_volatile(self.ptr(slot, MSG + off as u64) as *const u32) }
    }

    fn read_msg_u64(&self, slot: usize, off: usize) -> u64 {
        // SAFETY: an aligned read inside our mapping of the slot.
        unsafe { std::ptr::read_volatile(self.ptr(slot, MSG + off as u64) as *const u64) }
    }

    fn write_msg_u64(&self, slot: usize, off: usize, v: u64) {
        // SAFETY: an aligned write inside our mapping of the slot.
        unsafe { std::ptr::write_volatile(self.ptr(slot, MSG + off as u64) as *mut u64, v) }
    }

    fn write_msg_u32(&self, slot: usize, off: usize, v: u32) {
        // SAFETY: an aligned write inside our mapping of the slot.
        unsafe { std::ptr::write_volatile(self.ptr(slot, MSG + off as u64) as *mut u32, v) }
    }

    /// A free slot, zeroed, with its control page's fixed part written.
    fn alloc_slot(&self) -> Result<usize, PlatformError> {
        let slot = lock(&self.free).pop().ok_or(PlatformError::Os {
            op: "a systrap slot for a new stub thread",
            source: std::io::Error::from_raw_os_error(libc::EAGAIN),
        })?;
        // SAFETY: punches a hole in our own slots file (zeroing the slot).
        let rc = unsafe {
            libc::fallocate(
                self.slots_fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                (slot as u64 * SLOT_SIZE) as i64,
                SLOT_SIZE as i64,
            )
        };
        if rc != 0 {
            // SAFETY: zeroes the slot in our own mapping instead.
            unsafe { std::ptr::write_bytes(self.ptr(slot, 0), 0, SLOT_SIZE as usize) };
        }
        let base = self.layout.slot(slot);
        // SAFETY: writes into the control page of the slot, in our mapping.
        unsafe {
            self.ptr(slot, FPSIZE as u64)
                .cast::<u32>()
                .write(self.fpsize as u32);
            self.ptr(slot, SPIN as u64).cast::<u32>().write(0);
            *self.ptr(slot, TOK_OK as u64) = 1;
            *self.ptr(slot, TOK_FAIL as u64) = 2;
            let st = self.ctl_u64(slot, STACK_T);
            st.write(base + ALTSTACK);
            st.add(1).write(0);
            st.add(2).write(SLOT_SIZE - ALTSTACK);
        }
        Ok(slot)
    }

    fn free_slots(&self, slots: &[usize]) {
        lock(&self.free).extend_from_slice(slots);
    }

    /// Writes a filter into the slot's control page, with its sock_fprog.
    fn write_filter(&self, slot: usize, prog: &[SockFilter]) -> Result<(), PlatformError> {
        let max = (PAGE_SIZE as usize - FILTER) / 8;
        if prog.len() > max {
            return Err(PlatformError::Os {
                op: "building a stub filter",
                source: std::io::Error::from_raw_os_error(libc::E2BIG),
            });
        }
        // SAFETY: writes prog.len() * 8 bytes (checked to fit) from FILTER
        // and the 16-byte sock_fprog at FPROG, all in the control page.
        unsafe {
            std::ptr::copy_nonoverlapping(
                prog.as_ptr().cast::<u8>(),
                self.ptr(slot, FILTER as u64),
                prog.len() * 8,
            );
            let f = self.ptr(slot, FPROG as u64);
            f.cast::<u64>().write(prog.len() as u64);
            f.add(8)
                .cast::<u64>()
                .write(self.layout.slot(slot) + FILTER as u64);
        }
        Ok(())
    }
}

fn futex_wake(w: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a word of our shared mapping.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            w as *const AtomicU32,
            libc::FUTEX_WAKE,
            i32::MAX,
            0,
            0,
            0,
        )
    };
}

fn futex_wait(w: &AtomicU32, val: u32, timeout_ns: i64) {
    let ts = libc::timespec {
        tv_sec: timeout_ns / 1_000_000_000,
        tv_nsec: timeout_ns % 1_000_000_000,
    };
    // SAFETY: FUTEX_WAIT on a word of our shared mapping, with a relative
    // timeout in our stack.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            w as *const AtomicU32,
            libc::FUTEX_WAIT,
            val,
            &ts as *const libc::timespec,
            0,
            0,
        )
    };
}

// --- the platform -----------------------------------------------------

/// The systrap platform.
pub struct SystrapPlatform {
    g: Arc<Global>,
    /// An address space made ahead of need, with one stub thread ready:
    /// making them is most of a fork's cost.
    spare: Arc<Spare>,
}

#[derive(Default)]
struct Spare {
    ready: Mutex<Option<Subprocess>>,
    wanted: Mutex<bool>,
    cv: std::sync::Condvar,
    started: AtomicBool,
    made: std::sync::atomic::AtomicU32,
}

impl Spare {
    fn take(&self) -> Option<Subprocess> {
        lock(&self.ready).take()
    }

    fn want(self: &Arc<Self>, g: &Arc<Global>, max_addr: u64) {
        *lock(&self.wanted) = true;
        self.cv.notify_one();
        if !self.started.swap(true, Ordering::SeqCst) {
            let me = self.clone();
            let g = g.clone();
            let r = std::thread::Builder::new()
                .name("systrap-spare".into())
                .spawn(move || me.refill(&g, max_addr));
            if r.is_err() {
                self.started.store(false, Ordering::SeqCst);
            }
        }
    }

    fn refill(&self, g: &Arc<Global>, max_addr: u64) {
        crate::ptrace::unbind_current_thread();
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
            let made = Subprocess::new(g, max_addr).and_then(|sp| {
                let t = sp.inner.new_thread()?;
                lock(&sp.inner.ready).push(t);
                Ok(sp)
            });
            match made {
                Ok(sp) => *lock(&self.ready) = Some(sp),
                Err(e) => {
                    tracing::warn!("making a spare systrap address space: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
    }
}

impl SystrapPlatform {
    /// A platform whose address spaces map from `memory_fd`. Starts the
    /// template stub at once: it must be forked before the sentry
    /// confines itself (the stubs install their own, stricter filters).
    pub fn new(memory_fd: RawFd) -> Result<SystrapPlatform, PlatformError> {
        placement::init();
        // SAFETY: getauxval has no preconditions.
        let hwcap2 = unsafe { libc::getauxval(libc::AT_HWCAP2) };
        if hwcap2 & 2 == 0 {
            return Err(PlatformError::StubDied {
                pid: 0,
                reason: "systrap needs FSGSBASE (the host kernel does not enable it)".into(),
            });
        }
        let fpsize = frame_xsave_size();
        if !(576..=PAGE_SIZE as usize).contains(&fpsize) {
            return Err(PlatformError::StubDied {
                pid: 0,
                reason: format!("unexpected XSAVE size {fpsize}"),
            });
        }
        let layout = make_layout()?;
        // SAFETY: creates a new memfd that we own.
        let fd = unsafe { libc::memfd_create(c"runsc-systrap".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(PlatformError::os("memfd_create for the systrap slots"));
        }
        // SAFETY: `fd` is new and ours.
        let slots_fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sizes our own memfd.
        if unsafe { libc::ftruncate(fd, AREA_SIZE as i64) } != 0 {
            return Err(PlatformError::os("ftruncate of the systrap slots"));
        }
        // SAFETY: maps our own memfd, shared, at an address the kernel picks.
        let view = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                AREA_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if view == libc::MAP_FAILED {
            return Err(PlatformError::os("mmap of the systrap slots"));
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Spinning only pays where the other side runs on another CPU at
        // the same time; on one CPU it only delays the other side.
        let knob = |name: &str, default: u32| match std::env::var(name) {
            Ok(v) => v.parse().unwrap_or(0),
            Err(_) if cpus > 1 => default,
            Err(_) => 0,
        };
        let spin = knob("RUNSC_SYSTRAP_SPIN", DEFAULT_SPIN);
        let stub_spin = knob("RUNSC_SYSTRAP_STUB_SPIN", DEFAULT_STUB_SPIN);
        // `RUNSC_SYSTRAP_SPLIT=0` keeps both sides of every context on one
        // CPU (see `SystrapContext::place`).
        let split =
            cpus > 1 && spin > 0 && std::env::var("RUNSC_SYSTRAP_SPLIT").map_or(true, |v| v != "0");
        let g = Arc::new(Global {
            memory_fd,
            slots_fd,
            view: view as usize,
            layout,
            fpsize,
            spin,
            stub_spin,
            split,
            free: Mutex::new((0..NSLOTS).rev().collect()),
            template: Mutex::new(None),
        });
        start_template(&g)?;
        Ok(SystrapPlatform {
            g,
            spare: Arc::new(Spare::default()),
        })
    }
}

/// The most spin rounds (of `pause`, about 20 ns each on this machine's
/// CPUs) a sentry thread spends before a futex sleep, while its context
/// runs split (see `SystrapContext::place`; bound to one CPU, neither
/// side spins: a spinner would only delay the side it waits for). 50 us:
/// several times a syscall's round trip with the guest's work between
/// two syscalls, short enough that a guest that computes longer costs
/// little. `RUNSC_SYSTRAP_SPIN` sets it (0: never split), for the
/// adaptive spin (see `Spin`); `RUNSC_SYSTRAP_STUB_SPIN` the stub's,
/// which waits for the sentry to answer.
const DEFAULT_SPIN: u32 = 2500;
const DEFAULT_STUB_SPIN: u32 = 2500;

/// A context's spin budget: doubled when the last wait ended while
/// spinning, halved when it had to sleep; at zero, a short probe every
/// so many waits finds out whether spinning pays again.
struct Spin {
    budget: u32,
    max: u32,
    idle: u32,
    /// Whether the last wait ended while spinning.
    spun: bool,
}

impl Spin {
    const PROBE: u32 = 16;
    const PROBE_EVERY: u32 = 256;

    fn new(max: u32) -> Spin {
        Spin {
            budget: max,
            max,
            idle: 0,
            spun: false,
        }
    }

    /// Rounds to spin for the next wait.
    fn rounds(&mut self) -> u32 {
        if self.budget == 0 && self.max > 0 {
            self.idle += 1;
            if self.idle >= Self::PROBE_EVERY {
                self.idle = 0;
                return self.max.min(Self::PROBE);
            }
        }
        self.budget
    }

    fn outcome(&mut self, rounds: u32, spun: bool) {
        self.spun = spun;
        if rounds == 0 {
            return;
        }
        self.budget = if spun {
            (rounds * 2).min(self.max)
        } else {
            rounds / 2
        };
    }
}

/// Forks the template stub (a thread of its own traces it), has it block
/// nothing, install the stub's signal handlers and set no_new_privs, and
/// serves clone requests.
fn start_template(g: &Arc<Global>) -> Result<(), PlatformError> {
    let (tx, rx) = mpsc::channel::<StubReply>();
    let (ready_tx, ready_rx) = mpsc::channel();
    let gg = g.clone();
    std::thread::Builder::new()
        .name("systrap-template".into())
        .spawn(move || {
            crate::ptrace::unbind_current_thread();
            let pid = match spawn_template(&gg) {
                Ok(pid) => pid,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let l = gg.layout;
            for reply in rx {
                let flags = libc::CLONE_PARENT | libc::CLONE_UNTRACED;
                let r = stub_syscall(
                    pid,
                    pid,
                    l.clone,
                    libc::SYS_clone,
                    [flags as u64, 0, 0, 0, 0, 0],
                )
                .and_then(|rc| {
                    if rc <= 0 {
                        Err(PlatformError::Os {
                            op: "clone of a systrap stub process",
                            source: std::io::Error::from_raw_os_error((-rc) as i32),
                        })
                    } else {
                        Ok(rc as i32)
                    }
                });
                let _ = reply.send(r);
            }
            // SAFETY: kills our own stub process, then reaps it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            reap(pid);
        })
        .map_err(|e| PlatformError::Os {
            op: "spawning the systrap template's thread",
            source: e,
        })?;
    ready_rx.recv().map_err(|_| PlatformError::StubDied {
        pid: 0,
        reason: "the systrap template's thread ended early".into(),
    })??;
    *lock(&g.template) = Some(tx);
    Ok(())
}

fn check_zero(rc: i64, op: &'static str) -> Result<(), PlatformError> {
    if rc != 0 {
        return Err(PlatformError::Os {
            op,
            source: std::io::Error::from_raw_os_error((-rc) as i32),
        });
    }
    Ok(())
}

fn spawn_template(g: &Global) -> Result<i32, PlatformError> {
    let l = g.layout;
    // Made before the fork: the child does not allocate.
    let filter = master_filter(&l);
    let fprog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fork in a multi-threaded process; the child only makes raw
    // syscalls and jumps to the stub code, never returning into Rust.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(PlatformError::os("fork of the systrap template"));
    }
    if pid == 0 {
        // SAFETY: we are the freshly forked child; fprog points at the
        // filter, in our copy of the parent's memory.
        unsafe { stub_child(g.memory_fd, g.slots_fd.as_raw_fd(), l, &fprog) }
    }
    drop(filter);
    match wait_stop(pid)? {
        Stop::Signal(libc::SIGSTOP) => {}
        Stop::Exited(TRACEME_FAILED) => {
            return Err(PlatformError::StubDied {
                pid,
                reason: "PTRACE_TRACEME failed in the systrap template (is runsc itself \
                         traced?)"
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
    let r = (|| {
        let rc = stub_syscall(
            pid,
            pid,
            l.syscall,
            libc::SYS_prctl,
            [libc::PR_SET_NO_NEW_PRIVS as u64, 1, 0, 0, 0, 0],
        )?;
        check_zero(rc, "prctl(PR_SET_NO_NEW_PRIVS) in the systrap template")?;
        for sig in HANDLED {
            let rc = stub_syscall(
                pid,
                pid,
                l.syscall,
                libc::SYS_rt_sigaction,
                [sig as u64, l.ksa, 0, 8, 0, 0],
            )?;
            check_zero(rc, "rt_sigaction in the systrap template")?;
        }
        Ok(())
    })();
    if let Err(e) = r {
        // SAFETY: kills and reaps our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        reap(pid);
        return Err(e);
    }
    Ok(pid)
}

fn set_options(tid: i32) -> Result<(), PlatformError> {
    let opts = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL | libc::PTRACE_O_TRACECLONE;
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

/// Runs in the forked template: becomes a tracee in a session of its own,
/// keeps only the memory file and the slots file, and jumps to the stub
/// code, which empties the address space but the stub region and stops.
///
/// # Safety
/// Must be called only in a freshly forked child. It never returns.
unsafe fn stub_child(memory_fd: RawFd, slots_fd: RawFd, l: Layout, fprog: &libc::sock_fprog) -> ! {
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
        libc::prctl(libc::PR_SET_NAME, c"runsc-template".as_ptr(), 0, 0, 0);
        libc::setsid();
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
        // Signals sent to a stub from outside are not the guest's (the
        // sentry keeps the guest's signals): every one the handler does
        // not serve is ignored, so none can end or stop a stub thread
        // (but SIGKILL and SIGSTOP, which nothing can catch).
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP && !HANDLED.contains(&sig) {
                libc::signal(sig, libc::SIG_IGN);
            }
        }
        // Close every fd but the two files.
        let (a, b) = (memory_fd.min(slots_fd), memory_fd.max(slots_fd));
        if a > 0 {
            libc::syscall(libc::SYS_close_range, 0u32, (a - 1) as u32, 0u32);
        }
        if b > a + 1 {
            libc::syscall(libc::SYS_close_range, (a + 1) as u32, (b - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (b + 1) as u32, u32::MAX, 0u32);
        // The last syscalls from outside the stub's code: from here on
        // every syscall of this process and its clones but the code
        // page's traps.
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                0u64,
                fprog as *const libc::sock_fprog,
            ) != 0
        {
            libc::_exit(TRACEME_FAILED + 1);
        }
        std::arch::asm!(
            "jmp {entry}",
            entry = in(reg) l.code,
            in("rdi") l.area,
            in("rsi") l.code + CODE_SIZE,
            in("rdx") HOST_TASK_SIZE,
            options(noreturn)
        );
    }
}

impl crate::Platform for SystrapPlatform {
    fn name(&self) -> &'static str {
        "systrap"
    }

    fn max_user_address(&self) -> u64 {
        (self.g.layout.area - 0x1000_0000) & !(PAGE_SIZE - 1)
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
        let sp = match self.spare.take() {
            Some(sp) if !sp.inner.shared.is_dead.load(Ordering::SeqCst) => sp,
            _ => Subprocess::new(&self.g, self.max_user_address())?,
        };
        // As with ptrace: programs that never fork need only the first
        // address spaces; a spare is kept from the third on.
        if self.spare.made.fetch_add(1, Ordering::Relaxed) >= 2 {
            self.spare.want(&self.g, self.max_user_address());
        }
        Ok(Arc::new(sp))
    }

    fn initial_fp_state(&self) -> FpState {
        let mut fx = [0u8; 512 + 64];
        let off = fx.as_ptr().align_offset(16);
        // SAFETY: FXSAVE writes 512 bytes at a 16-byte aligned address
        // inside our buffer.
        unsafe { std::arch::x86_64::_fxsave64(fx.as_mut_ptr().add(off)) };
        let mut like = vec![0u8; self.g.fpsize];
        like[FpState::MXCSR_MASK..FpState::MXCSR_MASK + 4]
            .copy_from_slice(&fx[off + FpState::MXCSR_MASK..off + FpState::MXCSR_MASK + 4]);
        FpState::initial(&FpState(like))
    }

    fn new_context(&self) -> Box<dyn Context> {
        Box::new(SystrapContext {
            g: self.g.clone(),
            interrupt: Arc::new(InterruptState {
                pending: AtomicBool::new(false),
                target: AtomicU64::new(0),
            }),
            threads: Vec::new(),
            last: None,
            pending_fp: None,
            spin: Spin::new(0),
            slot: placement::new_slot(),
            switches: 0,
            bound: 0,
            bound_cpu: -1,
            pair: Pairing::new(),
            stub_spin_set: (0, 0, u32::MAX),
        })
    }
}

// --- address spaces ---------------------------------------------------

enum Request {
    /// Clone a new guest stub thread in `slot`.
    NewThread {
        slot: usize,
        reply: mpsc::Sender<Result<i32, PlatformError>>,
    },
}

struct OwnerShared {
    wake: OwnedFd,
    dead: Mutex<Option<String>>,
    is_dead: AtomicBool,
    notifier: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    /// Every slot this address space holds (mapped in its stub); given
    /// back once the stub is reaped.
    slots: Mutex<Vec<usize>>,
    /// Slots of exited stub threads, for reuse in this address space.
    spare_slots: Mutex<Vec<usize>>,
}

impl OwnerShared {
    fn kick(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from our buffer to our own eventfd.
        unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr().cast(), 8) };
    }

    /// Marks the address space dead and wakes every sentry thread waiting
    /// on one of its stub threads.
    fn died(&self, g: &Global, why: String) {
        {
            let mut d = lock(&self.dead);
            if d.is_some() {
                return;
            }
            tracing::error!("{why}; the address space is dead");
            *d = Some(why);
            self.is_dead.store(true, Ordering::SeqCst);
        }
        for &s in lock(&self.slots).iter() {
            g.state(s).store(ST_NONE, Ordering::SeqCst);
            futex_wake(g.state(s));
        }
        if let Some(f) = lock(&self.notifier).as_ref() {
            f();
        }
    }
}

struct Mapper {
    slot: usize,
    seq: u32,
    pipe: OwnedFd,
}

struct Inner {
    pid: i32,
    g: Arc<Global>,
    max_addr: u64,
    owner: Mutex<Option<mpsc::Sender<Request>>>,
    shared: Arc<OwnerShared>,
    mapper: Mutex<Mapper>,
    /// Stub threads made ahead of need (by the spare's thread), waiting
    /// at their first event for a context.
    ready: Mutex<Vec<Thread>>,
}

/// A stub process: one guest address space.
pub struct Subprocess {
    inner: Arc<Inner>,
}

impl Subprocess {
    fn new(g: &Arc<Global>, max_addr: u64) -> Result<Subprocess, PlatformError> {
        let (tx, rx) = mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::channel();
        // SAFETY: creates a new eventfd that we own.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(PlatformError::os("eventfd for the stub's owner"));
        }
        let shared = Arc::new(OwnerShared {
            // SAFETY: `efd` is a new fd nothing else owns.
            wake: unsafe { OwnedFd::from_raw_fd(efd) },
            dead: Mutex::new(None),
            is_dead: AtomicBool::new(false),
            notifier: Mutex::new(None),
            slots: Mutex::new(Vec::new()),
            spare_slots: Mutex::new(Vec::new()),
        });
        let sh = shared.clone();
        let gg = g.clone();
        std::thread::Builder::new()
            .name("systrap-owner".into())
            .spawn(move || owner_main(&gg, ready_tx, rx, sh))
            .map_err(|e| PlatformError::Os {
                op: "spawning the stub's owner thread",
                source: e,
            })?;
        let (pid, mapper) = ready_rx.recv().map_err(|_| PlatformError::StubDied {
            pid: 0,
            reason: "the owner thread ended before the stub started".into(),
        })??;
        Ok(Subprocess {
            inner: Arc::new(Inner {
                pid,
                g: g.clone(),
                max_addr,
                owner: Mutex::new(Some(tx)),
                shared,
                mapper: Mutex::new(mapper),
                ready: Mutex::new(Vec::new()),
            }),
        })
    }
}

impl Subprocess {
    /// The host pid of the stub process.
    pub fn pid(&self) -> i32 {
        self.inner.pid
    }
}

type Ready = mpsc::Sender<Result<(i32, Mapper), PlatformError>>;

fn new_stub(g: &Global) -> Result<i32, PlatformError> {
    let gone = || PlatformError::StubDied {
        pid: 0,
        reason: "the systrap template is gone".into(),
    };
    let (tx, rx) = mpsc::channel();
    lock(&g.template)
        .as_ref()
        .ok_or_else(gone)?
        .send(tx)
        .map_err(|_| gone())?;
    let pid = rx.recv().map_err(|_| gone())??;
    // The new stub stopped itself with SIGSTOP, which may have stopped its
    // thread group before the attach: SIGCONT ends that group stop, or
    // every thread detached later would stop at once.
    let r = attach(pid).and_then(|_| {
        // SAFETY: continues our own (traced, still ptrace-stopped) stub.
        if unsafe { libc::kill(pid, libc::SIGCONT) } != 0 {
            return Err(PlatformError::os("SIGCONT to a new stub"));
        }
        set_options(pid)
    });
    if let Err(e) = r {
        // SAFETY: kills and reaps the stub we could not attach, our child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        reap(pid);
        return Err(e);
    }
    Ok(pid)
}

fn owner_main(
    g: &Arc<Global>,
    ready: Ready,
    requests: mpsc::Receiver<Request>,
    shared: Arc<OwnerShared>,
) {
    crate::ptrace::unbind_current_thread();
    let pid = match new_stub(g) {
        Ok(pid) => pid,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut pfd = pidfd(pid);
    let finish = |shared: &OwnerShared| {
        // SAFETY: kills our own stub process (every thread of it), then
        // reaps it.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        reap(pid);
        let slots: Vec<usize> = std::mem::take(&mut *lock(&shared.slots));
        g.free_slots(&slots);
    };
    let mapper = match pfd
        .as_ref()
        .ok_or_else(|| PlatformError::os("pidfd_open of a stub"))
        .and_then(|fd| start_mapper(g, pid, fd, &shared))
    {
        Ok(m) => m,
        Err(e) => {
            let _ = ready.send(Err(e));
            finish(&shared);
            return;
        }
    };
    let _ = ready.send(Ok((pid, mapper)));
    let wake = shared.wake.as_raw_fd();
    'serve: loop {
        let mut fds = vec![libc::pollfd {
            fd: wake,
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(p) = &pfd {
            fds.push(libc::pollfd {
                fd: p.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: polls our own fds.
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
                Ok(Request::NewThread { slot, reply }) => {
                    let r = new_guest_thread(g, pid, slot, &shared);
                    if let Err(e) = &r {
                        shared.died(g, format!("setting up a stub thread: {e}"));
                    }
                    let _ = reply.send(r);
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => break 'serve,
            }
        }
        if fds.len() > 1 && fds[1].revents != 0 {
            pfd = None;
            shared.died(g, format!("stub process {pid} died"));
        }
    }
    finish(&shared);
}

/// Maps `slot` into the stub (control page read-only, the rest
/// read-write), through the master.
fn map_slot(g: &Global, pid: i32, slot: usize, shared: &OwnerShared) -> Result<(), PlatformError> {
    let l = g.layout;
    let off = slot as u64 * SLOT_SIZE;
    lock(&shared.slots).push(slot);
    for (at, len, prot) in [
        (0, PAGE_SIZE, libc::PROT_READ),
        (
            PAGE_SIZE,
            SLOT_SIZE - PAGE_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
        ),
    ] {
        let rc = stub_syscall(
            pid,
            pid,
            l.syscall,
            libc::SYS_mmap,
            [
                l.slot(slot) + at,
                len,
                prot as u64,
                (libc::MAP_SHARED | libc::MAP_FIXED) as u64,
                g.slots_fd.as_raw_fd() as u64,
                off + at,
            ],
        )?;
        if rc != (l.slot(slot) + at) as i64 {
            return Err(PlatformError::Os {
                op: "mmap of a slot in the stub",
                source: std::io::Error::from_raw_os_error((-rc) as i32),
            });
        }
    }
    Ok(())
}

/// Makes the master clone a new stub thread for `slot`; the thread starts
/// traced by the calling thread and stopped.
fn clone_thread(g: &Global, pid: i32, slot: usize) -> Result<i32, PlatformError> {
    let l = g.layout;
    let flags = libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_CHILD_CLEARTID;
    let mut regs = get_regs(pid)?;
    regs.rip = l.clone;
    regs.rax = libc::SYS_clone as u64;
    regs.orig_rax = u64::MAX;
    regs.rdi = flags as u64;
    regs.rsi = 0;
    regs.rdx = 0;
    regs.r10 = l.slot(slot) + MSG + STATE as u64;
    regs.r8 = 0;
    set_regs(pid, &regs)?;
    resume(pid, libc::PTRACE_CONT)?;
    let mut tid = 0i32;
    loop {
        let mut status = 0;
        // SAFETY: waits for our own tracee.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r != pid {
            if last_errno() == libc::EINTR {
                continue;
            }
            return Err(ptrace_err("waitpid for the stub's clone", pid));
        }
        if !libc::WIFSTOPPED(status) {
            return Err(PlatformError::StubDied {
                pid,
                reason: format!("the stub ended while cloning a thread (status {status:#x})"),
            });
        }
        let sig = libc::WSTOPSIG(status);
        if sig == libc::SIGTRAP && status >> 16 == PTRACE_EVENT_CLONE {
            let mut msg: libc::c_ulong = 0;
            // SAFETY: the kernel writes one unsigned long to &mut msg.
            let rc = unsafe {
                libc::ptrace(
                    PTRACE_GETEVENTMSG,
                    pid,
                    std::ptr::null_mut::<libc::c_void>(),
                    &mut msg as *mut libc::c_ulong as *mut libc::c_void,
                )
            };
            if rc != 0 {
                return Err(ptrace_err("PTRACE_GETEVENTMSG", pid));
            }
            tid = msg as i32;
            resume(pid, libc::PTRACE_CONT)?;
            continue;
        }
        if sig == libc::SIGTRAP {
            break;
        }
        resume(pid, libc::PTRACE_CONT)?;
    }
    let rc = get_regs(pid)?.rax as i64;
    if rc <= 0 || tid <= 0 {
        return Err(PlatformError::Os {
            op: "clone of a stub thread",
            source: std::io::Error::from_raw_os_error((-rc).max(1) as i32),
        });
    }
    // Its first stop: the SIGSTOP of an automatic attach.
    for _ in 0..16 {
        match wait_stop(tid)? {
            Stop::Signal(libc::SIGSTOP) => return Ok(tid),
            Stop::Signal(_) => resume(tid, libc::PTRACE_CONT)?,
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
        reason: "new stub thread never stopped".into(),
    })
}

/// Installs the filter of the slot's control page on `tid` (stopped,
/// traced by the caller) and points it at `entry` with r12 = its slot;
/// then lets it go.
fn seal_and_detach(
    g: &Global,
    pid: i32,
    tid: i32,
    slot: usize,
    entry: u64,
    altstack: bool,
) -> Result<(), PlatformError> {
    let l = g.layout;
    let ctl = l.slot(slot);
    if altstack {
        let rc = stub_syscall(
            tid,
            pid,
            l.syscall,
            libc::SYS_sigaltstack,
            [ctl + STACK_T as u64, 0, 0, 0, 0, 0],
        )?;
        check_zero(rc, "sigaltstack in a stub thread")?;
    }
    let rc = stub_syscall(
        tid,
        pid,
        l.syscall,
        libc::SYS_seccomp,
        [SECCOMP_SET_MODE_FILTER, 0, ctl + FPROG as u64, 0, 0, 0],
    )?;
    check_zero(rc, "seccomp in a stub thread")?;
    let mut regs = get_regs(tid)?;
    regs.rip = entry;
    regs.r12 = ctl;
    regs.rsp = 0;
    regs.orig_rax = u64::MAX;
    set_regs(tid, &regs)?;
    // SAFETY: detaches our stopped tracee, with no signal.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_DETACH,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    if rc != 0 {
        return Err(ptrace_err("PTRACE_DETACH", tid));
    }
    Ok(())
}

fn start_mapper(
    g: &Global,
    pid: i32,
    pfd: &OwnedFd,
    shared: &OwnerShared,
) -> Result<Mapper, PlatformError> {
    let l = g.layout;
    let slot = g.alloc_slot()?;
    map_slot(g, pid, slot, shared)?;
    let rc = stub_syscall(
        pid,
        pid,
        l.syscall,
        libc::SYS_pipe2,
        [l.slot(slot) + MSG + PIPE_FDS as u64, 0, 0, 0, 0, 0],
    )?;
    check_zero(rc, "pipe2 in the stub")?;
    // No guest code has run in this stub yet: the fds are the kernel's.
    let rfd = g.read_msg_u32(slot, PIPE_FDS) as i32;
    let wfd = g.read_msg_u32(slot, PIPE_FDS + 4) as i32;
    // SAFETY: copies an fd of our own child process into ours.
    let mine = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pfd.as_raw_fd(), rfd, 0u32) };
    if mine < 0 {
        return Err(PlatformError::os("pidfd_getfd of the stub's pipe"));
    }
    // SAFETY: the fd is new and ours.
    let pipe = unsafe { OwnedFd::from_raw_fd(mine as i32) };
    let rc = stub_syscall(
        pid,
        pid,
        l.syscall,
        libc::SYS_close,
        [rfd as u64, 0, 0, 0, 0, 0],
    )?;
    check_zero(rc, "close in the stub")?;
    // SAFETY: writes the pipe fd into the slot's control page.
    unsafe { g.ptr(slot, PIPE_FD as u64).cast::<u32>().write(wfd as u32) };
    g.write_filter(slot, &mapper_filter(&l, slot, g.memory_fd, wfd))?;
    let tid = clone_thread(g, pid, slot)?;
    seal_and_detach(g, pid, tid, slot, l.mapper, false)?;
    Ok(Mapper { slot, seq: 0, pipe })
}

fn new_guest_thread(
    g: &Global,
    pid: i32,
    slot: usize,
    shared: &OwnerShared,
) -> Result<i32, PlatformError> {
    let l = g.layout;
    if !lock(&shared.slots).contains(&slot) {
        map_slot(g, pid, slot, shared)?;
    }
    g.write_filter(slot, &guest_filter(&l, slot))?;
    g.state(slot).store(ST_NONE, Ordering::SeqCst);
    let tid = clone_thread(g, pid, slot)?;
    seal_and_detach(g, pid, tid, slot, l.init, true)?;
    Ok(tid)
}

impl Inner {
    fn check_alive(&self) -> Result<(), PlatformError> {
        match &*lock(&self.shared.dead) {
            Some(why) => Err(PlatformError::AddressSpaceDead(why.clone())),
            None => Ok(()),
        }
    }

    fn kill(&self, why: String) {
        tracing::error!("stub {}: {why}; killing its address space", self.pid);
        // SAFETY: kills our own stub process.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        self.shared.died(&self.g, why);
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

    /// A new guest stub thread: its slot and tid, stopped at its first
    /// event.
    fn new_thread(&self) -> Result<Thread, PlatformError> {
        self.check_alive()?;
        if let Some(t) = lock(&self.ready).pop() {
            return Ok(t);
        }
        let slot = match lock(&self.shared.spare_slots).pop() {
            Some(s) => s,
            None => self.g.alloc_slot()?,
        };
        let tid = match self.ask_owner(|reply| Request::NewThread { slot, reply }) {
            Ok(t) => t,
            Err(e) => {
                // The slot may be mapped in the stub: it stays with it.
                if !lock(&self.shared.slots).contains(&slot) {
                    self.g.free_slots(&[slot]);
                }
                return Err(e);
            }
        };
        let th = Thread { slot, tid };
        // Its first event, raised by the stub code before any guest code.
        let s = wait_change(&self.g, self, slot, ST_NONE, None, None)?;
        if s != ST_EVENT {
            self.kill(format!("new stub thread {tid} reported state {s}"));
            return Err(PlatformError::StubDied {
                pid: tid,
                reason: "bad first state".into(),
            });
        }
        Ok(th)
    }

    /// Ends a guest stub thread waiting in its handler; its slot can then
    /// serve another thread of this address space.
    fn release(&self, th: Thread) {
        let st = self.g.state(th.slot);
        if self.shared.is_dead.load(Ordering::SeqCst) {
            return;
        }
        if st
            .compare_exchange(ST_EVENT, ST_EXIT, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        futex_wake(st);
        for _ in 0..40 {
            if st.load(Ordering::SeqCst) == ST_NONE {
                lock(&self.shared.spare_slots).push(th.slot);
                return;
            }
            futex_wait(st, ST_EXIT, 5_000_000);
        }
    }

    /// Makes the mapper execute one syscall; returns its raw result.
    fn mapper_call(&self, nr: i64, args: [u64; 6]) -> Result<i64, PlatformError> {
        self.check_alive()?;
        let g = &self.g;
        let mut m = lock(&self.mapper);
        let slot = m.slot;
        // SAFETY: writes the request into the mapper's control page in our
        // mapping; the mapper reads it only after the sequence word changes.
        unsafe {
            g.ctl_u64(slot, REQ_NR).write_volatile(nr as u64);
            for (i, a) in args.iter().enumerate() {
                g.ctl_u64(slot, REQ_ARGS + 8 * i).write_volatile(*a);
            }
        }
        m.seq = m.seq.wrapping_add(1).max(1);
        // SAFETY: the request word, 4-byte aligned in our mapping.
        let seq = unsafe { &*(g.ptr(slot, REQ_SEQ as u64) as *const AtomicU32) };
        seq.store(m.seq, Ordering::Release);
        futex_wake(seq);
        let mut b = [0u8; 1];
        let n = loop {
            // SAFETY: reads one byte into our buffer from our own pipe.
            let n = unsafe { libc::read(m.pipe.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
            if n < 0 && last_errno() == libc::EINTR {
                continue;
            }
            break n;
        };
        if n != 1 {
            drop(m);
            self.kill("the stub's mapper is gone".into());
            return Err(PlatformError::StubDied {
                pid: self.pid,
                reason: "the mapper's pipe closed".into(),
            });
        }
        match b[0] {
            1 => Ok(0),
            2 => {
                // The errno is the guest's to forge; the failure is not.
                let r = g.read_msg_u64(slot, RESULT) as i64;
                Ok(if (-4095..0).contains(&r) {
                    r
                } else {
                    -(libc::EIO as i64)
                })
            }
            // Only the mapper writes the pipe, one byte of its control
            // page (1 or 2); anything else means the stub is not what the
            // sentry made.
            other => {
                let why = format!("the stub's mapper wrote {other} to its pipe");
                self.kill(why.clone());
                Err(PlatformError::StubDied {
                    pid: self.pid,
                    reason: why,
                })
            }
        }
    }
}

impl AddressSpace for Subprocess {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn on_death(&self, f: Box<dyn Fn() + Send + Sync>) {
        *lock(&self.inner.shared.notifier) = Some(f);
    }

    fn map_file(&self, addr: u64, len: u64, offset: u64, prot: Prot) -> Result<(), PlatformError> {
        if addr
            .checked_add(len)
            .is_none_or(|e| e > self.inner.max_addr)
        {
            return Err(PlatformError::Os {
                op: "mmap in the stub",
                source: std::io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        let rc = self.inner.mapper_call(
            libc::SYS_mmap,
            [
                addr,
                len,
                prot.bits() as u64,
                (libc::MAP_SHARED | libc::MAP_FIXED) as u64,
                self.inner.g.memory_fd as u64,
                offset,
            ],
        )?;
        if rc < 0 {
            return Err(PlatformError::Os {
                op: "mmap in the stub",
                source: std::io::Error::from_raw_os_error(-rc as i32),
            });
        }
        Ok(())
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        if addr
            .checked_add(len)
            .is_none_or(|e| e > self.inner.max_addr)
        {
            return Err(PlatformError::Os {
                op: "munmap in the stub",
                source: std::io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        let r = match self
            .inner
            .mapper_call(libc::SYS_munmap, [addr, len, 0, 0, 0, 0])
        {
            Ok(rc) if rc < 0 => Err(PlatformError::Os {
                op: "munmap in the stub",
                source: std::io::Error::from_raw_os_error(-rc as i32),
            }),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = &r {
            self.inner
                .kill(format!("unmap of {addr:#x}+{len:#x} failed: {e}"));
        }
        r
    }
}

impl Drop for Subprocess {
    fn drop(&mut self) {
        // Closing the channel ends the owner, which kills the stub (all its
        // threads), reaps it and gives its slots back.
        lock(&self.inner.owner).take();
        self.inner.shared.kick();
    }
}

// --- contexts ---------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Thread {
    slot: usize,
    tid: i32,
}

struct InterruptState {
    pending: AtomicBool,
    /// (stub pid << 32) | stub tid of the thread the context last ran on.
    target: AtomicU64,
}

impl InterruptState {
    fn kick(&self) {
        let t = self.target.load(Ordering::SeqCst);
        if t != 0 {
            // SAFETY: signals one of our stub threads; if it is gone the
            // call fails with ESRCH, which is fine.
            unsafe {
                libc::syscall(
                    libc::SYS_tgkill,
                    (t >> 32) as i32,
                    t as u32 as i32,
                    INTERRUPT_SIGNAL,
                )
            };
        }
    }
}

impl Interrupt for InterruptState {
    fn interrupt(&self) {
        self.pending.store(true, Ordering::SeqCst);
        self.kick();
    }
}

/// Waits until the slot's state is no longer `from`, spinning first.
/// With `intr`, a pending interrupt the stub thread does not answer is
/// sent again, and after a few seconds the stub is killed (a guest can
/// block host signals in its stub thread through a forged rt_sigreturn).
fn wait_change(
    g: &Global,
    inner: &Inner,
    slot: usize,
    from: u32,
    intr: Option<&InterruptState>,
    spin: Option<&mut Spin>,
) -> Result<u32, PlatformError> {
    let st = g.state(slot);
    if let Some(sp) = spin {
        let rounds = sp.rounds();
        for _ in 0..rounds {
            let s = st.load(Ordering::Acquire);
            if s != from {
                sp.outcome(rounds, true);
                return Ok(s);
            }
            std::hint::spin_loop();
        }
        sp.outcome(rounds, false);
    }
    let mut rounds = 0u32;
    loop {
        let s = st.load(Ordering::Acquire);
        if s != from {
            return Ok(s);
        }
        futex_wait(st, from, 50_000_000);
        let s = st.load(Ordering::Acquire);
        if s != from {
            return Ok(s);
        }
        if inner.shared.is_dead.load(Ordering::SeqCst) {
            inner.check_alive()?;
        }
        if let Some(i) = intr {
            if i.pending.load(Ordering::SeqCst) {
                rounds += 1;
                i.kick();
                if rounds > 100 {
                    inner.kill("a stub thread ignored its interrupts for 5 s".into());
                    return Err(PlatformError::StubDied {
                        pid: inner.pid,
                        reason: "interrupt not answered".into(),
                    });
                }
            }
        }
    }
}

/// An event as the handler reported it, copied once out of the message
/// page.
struct RawEvent {
    signo: i32,
    code: i32,
    errno: i32,
    addr: u64,
    syscall_arch: u64,
    fs_base: u64,
    gs_base: u64,
    gregs: [u64; 23],
}

fn read_event(g: &Global, slot: usize) -> RawEvent {
    let mut gregs = [0u64; 23];
    for (i, r) in gregs.iter_mut().enumerate() {
        *r = g.read_msg_u64(slot, GREGS + 8 * i);
    }
    RawEvent {
        signo: g.read_msg_u32(slot, SIGNO) as i32,
        code: g.read_msg_u32(slot, CODE) as i32,
        errno: g.read_msg_u32(slot, ERRNO) as i32,
        addr: g.read_msg_u64(slot, ADDR),
        syscall_arch: g.read_msg_u64(slot, SYSNR),
        fs_base: g.read_msg_u64(slot, FSBASE),
        gs_base: g.read_msg_u64(slot, GSBASE),
        gregs,
    }
}

// Indices in mcontext's gregs.
const R8: usize = 0;
const R9: usize = 1;
const R10: usize = 2;
const R11: usize = 3;
const R12: usize = 4;
const R13: usize = 5;
const R14: usize = 6;
const R15: usize = 7;
const RDI: usize = 8;
const RSI: usize = 9;
const RBP: usize = 10;
const RBX: usize = 11;
const RDX: usize = 12;
const RAX: usize = 13;
const RCX: usize = 14;
const RSP: usize = 15;
const RIP: usize = 16;
const EFL: usize = 17;
const ERR: usize = 19;
const TRAPNO: usize = 20;

fn regs_from_event(ev: &RawEvent) -> Registers {
    let g = &ev.gregs;
    // SAFETY: user_regs_struct is plain integers; all-zero is valid.
    let mut r: Registers = unsafe { std::mem::zeroed() };
    r.r8 = g[R8];
    r.r9 = g[R9];
    r.r10 = g[R10];
    r.r11 = g[R11];
    r.r12 = g[R12];
    r.r13 = g[R13];
    r.r14 = g[R14];
    r.r15 = g[R15];
    r.rdi = g[RDI];
    r.rsi = g[RSI];
    r.rbp = g[RBP];
    r.rbx = g[RBX];
    r.rdx = g[RDX];
    r.rax = g[RAX];
    r.rcx = g[RCX];
    r.rsp = g[RSP];
    r.rip = g[RIP];
    r.eflags = g[EFL];
    r.orig_rax = u64::MAX;
    // Never taken from the stub: a 64-bit user thread has these.
    r.cs = 0x33;
    r.ss = 0x2b;
    r.fs_base = ev.fs_base;
    r.gs_base = ev.gs_base;
    r
}

fn is_canonical(a: u64) -> bool {
    !(0x0000_8000_0000_0000..0xffff_8000_0000_0000).contains(&a)
}

fn write_regs(g: &Global, slot: usize, r: &Registers) -> Result<(), PlatformError> {
    if !is_canonical(r.fs_base) || !is_canonical(r.gs_base) {
        return Err(PlatformError::Os {
            op: "setting fs/gs base",
            source: std::io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    let mut v = [0u64; 18];
    v[R8] = r.r8;
    v[R9] = r.r9;
    v[R10] = r.r10;
    v[R11] = r.r11;
    v[R12] = r.r12;
    v[R13] = r.r13;
    v[R14] = r.r14;
    v[R15] = r.r15;
    v[RDI] = r.rdi;
    v[RSI] = r.rsi;
    v[RBP] = r.rbp;
    v[RBX] = r.rbx;
    v[RDX] = r.rdx;
    v[RAX] = r.rax;
    v[RCX] = r.rcx;
    v[RSP] = r.rsp;
    v[RIP] = r.rip;
    v[EFL] = r.eflags;
    for (i, x) in v.iter().enumerate() {
        g.write_msg_u64(slot, GREGS + 8 * i, *x);
    }
    g.write_msg_u64(slot, FSBASE, r.fs_base);
    g.write_msg_u64(slot, GSBASE, r.gs_base);
    Ok(())
}

struct SystrapContext {
    g: Arc<Global>,
    interrupt: Arc<InterruptState>,
    threads: Vec<(Weak<Inner>, Thread)>,
    last: Option<(Weak<Inner>, Thread)>,
    pending_fp: Option<FpState>,
    spin: Spin,
    slot: Arc<placement::Slot>,
    switches: u32,
    /// The stub thread last bound, and the CPU it was bound to.
    bound: i32,
    bound_cpu: i32,
    pair: Pairing,
    /// The stub thread (tid, slot) whose spin budget was last written, and
    /// the value (a reused slot comes with its budget zeroed).
    stub_spin_set: (i32, usize, u32),
}

impl SystrapContext {
    fn thread(
        &mut self,
        address_space: &Arc<dyn AddressSpace>,
    ) -> Result<(Arc<Inner>, Thread), PlatformError> {
        let sp = address_space
            .as_any()
            .downcast_ref::<Subprocess>()
            .ok_or(PlatformError::ForeignAddressSpace)?;
        let inner = sp.inner.clone();
        if let Some((w, th)) = &self.last {
            if std::ptr::eq(w.as_ptr(), Arc::as_ptr(&inner)) {
                if inner.shared.is_dead.load(Ordering::SeqCst) {
                    inner.check_alive()?;
                }
                return Ok((inner, *th));
            }
        }
        let found = self
            .threads
            .iter()
            .find(|(w, _)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&inner)))
            .map(|(_, t)| *t);
        let th = match found {
            Some(t) => t,
            None => {
                let t = inner.new_thread()?;
                self.threads.retain(|(w, _)| w.strong_count() > 0);
                self.threads.push((Arc::downgrade(&inner), t));
                t
            }
        };
        self.last = Some((Arc::downgrade(&inner), th));
        self.interrupt.target.store(
            ((inner.pid as u64) << 32) | th.tid as u32 as u64,
            Ordering::SeqCst,
        );
        Ok((inner, th))
    }
}

impl SystrapContext {
    /// Places this context's sentry thread and its stub thread. By default
    /// both are bound to one CPU, chosen sentry-wide, as the ptrace
    /// platform does: a futex wake-up of a thread on the same CPU, which
    /// the waker then leaves, runs it at once; one on the other CPU waits
    /// for that CPU, which on a loaded machine another process holds
    /// (measured: getppid 8 us bound against 12 to 25 us unbound under a
    /// load average of 5). When another CPU is free of active contexts the
    /// two sides are *split*: the stub thread goes to that CPU and both
    /// sides spin for each other (bounded) instead of sleeping, so a
    /// round trip costs two cache-line transfers instead of two context
    /// switches (getppid 2.6 us split against 7.4 us bound, idle 2-CPU
    /// VM). A split that does not pay (the sentry side sleeps through
    /// more than half of its waits: the guest computes between syscalls,
    /// or another process holds the stub's CPU) or whose second CPU
    /// another context now uses is undone, and not tried again for a
    /// while.
    fn place(&mut self, th: Thread) {
        let tid = th.tid;
        let now = placement::now_ns();
        let last = self.slot.last.load(Ordering::Relaxed);
        self.switches = self.switches.wrapping_add(1);
        let cur = self.slot.cpu.load(Ordering::Relaxed);
        let moved = cur < 0
            || self.switches.is_multiple_of(crate::ptrace::REPLACE_EVERY)
            || now - last > crate::ptrace::REPLACE_AFTER_NS;
        if moved {
            let cpu = placement::choose(&self.slot);
            if cpu != cur && placement::bind(0, cpu) {
                self.slot.cpu.store(cpu, Ordering::Relaxed);
            }
        }
        if moved || (self.pair.stub_cpu >= 0 && self.pair.waits >= Pairing::REVIEW_WAITS) {
            self.review(now);
        }
        let cpu = self.slot.cpu.load(Ordering::Relaxed);
        let want = if self.pair.stub_cpu >= 0 {
            self.pair.stub_cpu
        } else {
            cpu
        };
        if (self.bound != tid || self.bound_cpu != want) && want >= 0 && placement::bind(tid, want)
        {
            self.bound = tid;
            self.bound_cpu = want;
        }
        let spin = if self.pair.stub_cpu >= 0 {
            self.g.stub_spin
        } else {
            0
        };
        if self.stub_spin_set != (tid, th.slot, spin) {
            // SAFETY: an aligned write into the control page of this
            // context's slot, in our mapping (the stub reads it at each
            // wait).
            unsafe {
                std::ptr::write_volatile(self.g.ptr(th.slot, SPIN as u64).cast::<u32>(), spin)
            };
            self.stub_spin_set = (tid, th.slot, spin);
        }
        self.slot.last.store(now, Ordering::Relaxed);
    }

    /// Decides whether the context's two sides run split (see `place`).
    fn review(&mut self, now: u64) {
        let cpu = self.slot.cpu.load(Ordering::Relaxed);
        let p = &mut self.pair;
        if p.stub_cpu >= 0 {
            let unpaid = p.waits >= Pairing::REVIEW_WAITS / 4 && p.slept * 2 > p.waits;
            let spare = placement::spare(&self.slot, cpu, p.stub_cpu);
            if unpaid || spare != Some(p.stub_cpu) {
                p.stub_cpu = -1;
                self.slot.partner.store(-1, Ordering::Relaxed);
                self.spin = Spin::new(0);
                if unpaid {
                    p.hold_until = now + Pairing::HOLD_NS;
                }
            }
        } else if self.g.split && cpu >= 0 && now >= p.hold_until {
            if let Some(c) = placement::spare(&self.slot, cpu, -1) {
                p.stub_cpu = c;
                self.slot.partner.store(c, Ordering::Relaxed);
                self.spin = Spin::new(self.g.spin);
            }
        }
        p.waits = 0;
        p.slept = 0;
    }
}

/// Whether a context runs split, and how its waits went since the last
/// review.
struct Pairing {
    /// The stub thread's CPU while split, else -1.
    stub_cpu: i32,
    waits: u32,
    /// Waits of the sentry side that ended asleep.
    slept: u32,
    /// No split before this time (ns), after one that did not pay.
    hold_until: u64,
}

impl Pairing {
    const REVIEW_WAITS: u32 = 256;
    const HOLD_NS: u64 = 200_000_000;

    fn new() -> Pairing {
        Pairing {
            stub_cpu: -1,
            waits: 0,
            slept: 0,
            hold_until: 0,
        }
    }
}

impl Drop for SystrapContext {
    fn drop(&mut self) {
        for (w, th) in self.threads.drain(..) {
            if let Some(inner) = w.upgrade() {
                inner.release(th);
            }
        }
    }
}

fn garbage(inner: &Inner, what: String) -> PlatformError {
    inner.kill(what.clone());
    PlatformError::StubDied {
        pid: inner.pid,
        reason: what,
    }
}

impl Context for SystrapContext {
    fn switch(
        &mut self,
        address_space: &Arc<dyn AddressSpace>,
        regs: &mut Registers,
    ) -> Result<Event, PlatformError> {
        let (inner, th) = self.thread(address_space)?;
        if self.interrupt.pending.swap(false, Ordering::SeqCst) {
            return Ok(Event::Interrupted);
        }
        self.place(th);
        let g = &*self.g;
        let st = g.state(th.slot);
        if st.load(Ordering::SeqCst) != ST_EVENT {
            inner.check_alive()?;
            return Err(garbage(
                &inner,
                format!("stub thread {} is not waiting for the sentry", th.tid),
            ));
        }
        if let Some(fp) = self.pending_fp.take() {
            let n = fp.0.len().min(g.fpsize);
            // SAFETY: writes at most fpsize (<= one page) bytes into the
            // slot's FP page, in our mapping.
            unsafe {
                let dst = g.ptr(th.slot, FP);
                std::ptr::write_bytes(dst, 0, g.fpsize);
                std::ptr::copy_nonoverlapping(fp.0.as_ptr(), dst, n);
            }
            g.write_msg_u32(th.slot, FPLOAD, 1);
        }
        loop {
            write_regs(g, th.slot, regs)?;
            st.store(ST_RUN, Ordering::Release);
            futex_wake(st);
            let s = wait_change(
                g,
                &inner,
                th.slot,
                ST_RUN,
                Some(&self.interrupt),
                Some(&mut self.spin),
            )?;
            self.pair.waits += 1;
            if !self.spin.spun {
                self.pair.slept += 1;
            }
            if s != ST_EVENT {
                inner.check_alive()?;
                return Err(garbage(
                    &inner,
                    format!("stub thread {} reported state {s}", th.tid),
                ));
            }
            let ev = read_event(g, th.slot);
            *regs = regs_from_event(&ev);
            let info = SignalInfo {
                signo: ev.signo,
                code: ev.code,
                errno: ev.errno,
                addr: if ev.code > 0 { ev.addr } else { 0 },
                pid: if ev.code <= 0 {
                    ev.addr as u32 as i32
                } else {
                    0
                },
            };
            match ev.signo {
                libc::SIGSYS if ev.code == SYS_SECCOMP => {
                    if (ev.syscall_arch >> 32) as u32 == AUDIT_ARCH_X86_64 {
                        regs.orig_rax = regs.rax;
                        return Ok(Event::Syscall);
                    }
                    return Ok(Event::Signal(info));
                }
                // Linux lets `uretprobe` (335) through every seccomp
                // filter; called from anywhere but a uretprobe trampoline it
                // raises SIGILL (SI_KERNEL) with rax = -1. It is the guest's
                // syscall 335, which the sentry answers.
                libc::SIGILL if ev.code == SI_KERNEL && regs.rax == u64::MAX && ev.addr == 0 => {
                    regs.rax = SYS_URETPROBE;
                    regs.orig_rax = SYS_URETPROBE;
                    return Ok(Event::Syscall);
                }
                INTERRUPT_SIGNAL => {
                    self.interrupt.pending.store(false, Ordering::SeqCst);
                    return Ok(Event::Interrupted);
                }
                _ if !HANDLED.contains(&ev.signo) => {
                    return Err(garbage(
                        &inner,
                        format!("stub thread {} reported signal {}", th.tid, ev.signo),
                    ));
                }
                // Sent from outside, not raised by the guest: drop it.
                _ if ev.code <= 0 => continue,
                libc::SIGSEGV | libc::SIGBUS => {
                    let access = if ev.gregs[TRAPNO] == 14 {
                        let err = ev.gregs[ERR];
                        let write = err & 2 != 0;
                        let exec = err & 16 != 0;
                        Access {
                            read: !write && !exec,
                            write,
                            exec,
                        }
                    } else {
                        Access::ANY
                    };
                    return Ok(Event::Fault(info, access));
                }
                _ => return Ok(Event::Signal(info)),
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
        let (inner, th) = self.thread(address_space)?;
        let g = &*self.g;
        let st = g.state(th.slot);
        if st
            .compare_exchange(ST_EVENT, ST_FPGET, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            inner.check_alive()?;
            return Err(garbage(
                &inner,
                format!("stub thread {} is not waiting for the sentry", th.tid),
            ));
        }
        futex_wake(st);
        let s = wait_change(g, &inner, th.slot, ST_FPGET, None, None)?;
        if s != ST_EVENT {
            inner.check_alive()?;
            return Err(garbage(
                &inner,
                format!("stub thread {} reported state {s}", th.tid),
            ));
        }
        let mut v = vec![0u8; g.fpsize];
        // SAFETY: copies fpsize (<= one page) bytes out of the slot's FP
        // page in our mapping, once.
        unsafe { std::ptr::copy_nonoverlapping(g.ptr(th.slot, FP), v.as_mut_ptr(), g.fpsize) };
        Ok(FpState(v))
    }

    fn set_fp_state(&mut self, fp: FpState) {
        self.pending_fp = Some(fp);
    }

    fn interrupter(&self) -> Interrupter {
        Interrupter::new(self.interrupt.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_assemble() {
        let l = Layout {
            area: 0x7ff0_0000_0000,
            code: 0x7ff0_1000_0000,
            syscall: 0,
            clone: 0,
            init: 0,
            mapper: 0,
            ksa: 0,
        };
        assert!(guest_filter(&l, 5).len() < 64);
        assert!(mapper_filter(&l, 5, 3, 7).len() < 128);
    }
}
