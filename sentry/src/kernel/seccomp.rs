//! Guest seccomp: strict mode and classic-BPF filters, checked as Linux's
//! checker does and run by the sentry before each syscall's handler.
//!
//! A thread's filters form an immutable stack ([`Filter`], newest first,
//! linked to the ones beneath it); a new filter goes on top, and children
//! share their parent's stack. The authoritative state of a thread is in
//! its shared part ([`SharedSeccomp`]), where another thread's
//! `SECCOMP_FILTER_FLAG_TSYNC` can replace it; the thread's runner keeps
//! a copy ([`Seccomp`]) that it refreshes when the shared generation word
//! moves, so a filtered syscall takes no lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::signal::SigInfo;
use super::task::Task;
use super::ExitStatus;
use crate::errno::Errno;

// ----- ABI -----

pub const SECCOMP_MODE_DISABLED: u8 = 0;
pub const SECCOMP_MODE_STRICT: u8 = 1;
pub const SECCOMP_MODE_FILTER: u8 = 2;

pub const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const SECCOMP_RET_KILL_THREAD: u32 = 0x0000_0000;
pub const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
pub const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
pub const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
pub const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
pub const SECCOMP_RET_ACTION_FULL: u32 = 0xffff_0000;
pub const SECCOMP_RET_DATA: u32 = 0x0000_ffff;

/// The `si_code` of a SIGSYS raised by a filter.
pub const SYS_SECCOMP: i32 = 1;
/// `AUDIT_ARCH_X86_64`, the `arch` of every `seccomp_data` here.
pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// `sizeof(struct seccomp_data)`.
pub const SECCOMP_DATA_SIZE: u32 = 64;
/// BPF_MAXINSNS.
pub const BPF_MAXINSNS: usize = 4096;
/// The most instructions all of a thread's filters may hold together,
/// counting 4 more for each filter beneath the newest (Linux's
/// MAX_INSNS_PER_PATH). Linux counts the instructions of the programs
/// as it translates them to eBPF: see [`translated_len`].
pub const MAX_INSNS_PER_PATH: usize = 32768;
/// MAX_ERRNO: the largest errno a filter can ask for.
const MAX_ERRNO: u32 = 4095;

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl SockFilter {
    pub const fn new(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
        SockFilter { code, jt, jf, k }
    }

    /// From the 8 bytes the guest gives.
    pub fn from_bytes(b: &[u8]) -> SockFilter {
        SockFilter {
            code: u16::from_le_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// Classic BPF opcodes (linux/bpf_common.h and linux/filter.h).
pub mod bpf {
    pub const LD: u16 = 0x00;
    pub const LDX: u16 = 0x01;
    pub const ST: u16 = 0x02;
    pub const STX: u16 = 0x03;
    pub const ALU: u16 = 0x04;
    pub const JMP: u16 = 0x05;
    pub const RET: u16 = 0x06;
    pub const MISC: u16 = 0x07;

    pub const W: u16 = 0x00;
    pub const H: u16 = 0x08;
    pub const B: u16 = 0x10;

    pub const IMM: u16 = 0x00;
    pub const ABS: u16 = 0x20;
    pub const IND: u16 = 0x40;
    pub const MEM: u16 = 0x60;
    pub const LEN: u16 = 0x80;
    pub const MSH: u16 = 0xa0;

    pub const ADD: u16 = 0x00;
    pub const SUB: u16 = 0x10;
    pub const MUL: u16 = 0x20;
    pub const DIV: u16 = 0x30;
    pub const OR: u16 = 0x40;
    pub const AND: u16 = 0x50;
    pub const LSH: u16 = 0x60;
    pub const RSH: u16 = 0x70;
    pub const NEG: u16 = 0x80;
    pub const MOD: u16 = 0x90;
    pub const XOR: u16 = 0xa0;

    pub const JA: u16 = 0x00;
    pub const JEQ: u16 = 0x10;
    pub const JGT: u16 = 0x20;
    pub const JGE: u16 = 0x30;
    pub const JSET: u16 = 0x40;

    pub const K: u16 = 0x00;
    pub const X: u16 = 0x08;
    pub const A: u16 = 0x10;

    pub const TAX: u16 = 0x00;
    pub const TXA: u16 = 0x80;

    /// Scratch memory words (BPF_MEMWORDS).
    pub const MEMWORDS: u32 = 16;
    /// The start of the ancillary-data offsets (SKF_AD_OFF).
    pub const SKF_AD_OFF: u32 = (-0x1000i32) as u32;
}

use bpf::*;

// ----- The checker -----

/// Whether classic BPF knows the opcode at all (net/core/filter.c's
/// chk_code_allowed).
fn code_allowed(code: u16) -> bool {
    matches!(
        code,
        // 32-bit ALU operations.
        0x04 | 0x0c | 0x14 | 0x1c | 0x24 | 0x2c | 0x34 | 0x3c | 0x94 | 0x9c
            | 0x54 | 0x5c | 0x44 | 0x4c | 0xa4 | 0xac | 0x64 | 0x6c | 0x74 | 0x7c | 0x84
            // Loads.
            | 0x20 | 0x28 | 0x30 | 0x80 | 0x40 | 0x48 | 0x50 | 0x00 | 0x60
            | 0x81 | 0xb1 | 0x01 | 0x61
            // Stores.
            | 0x02 | 0x03
            // Misc.
            | 0x07 | 0x87
            // Returns.
            | 0x06 | 0x16
            // Jumps.
            | 0x05 | 0x15 | 0x1d | 0x35 | 0x3d | 0x25 | 0x2d | 0x45 | 0x4d
    )
}

fn is_cond_jump(code: u16) -> bool {
    matches!(code, 0x15 | 0x1d | 0x35 | 0x3d | 0x25 | 0x2d | 0x45 | 0x4d)
}

/// Checks a program as Linux does when a filter is attached
/// (`bpf_check_classic`, `check_load_and_stores`, then
/// `seccomp_check_filter`), and rewrites the length loads into the
/// constant they load. EINVAL for any program Linux refuses.
pub fn check_program(prog: &[SockFilter]) -> Result<Vec<SockFilter>, Errno> {
    let flen = prog.len();
    if flen == 0 || flen > BPF_MAXINSNS {
        return Err(Errno::EINVAL);
    }
    for (pc, i) in prog.iter().enumerate() {
        if !code_allowed(i.code) {
            return Err(Errno::EINVAL);
        }
        let bad = match i.code {
            c if c == ALU | DIV | K || c == ALU | MOD | K => i.k == 0,
            c if c == ALU | LSH | K || c == ALU | RSH | K => i.k >= 32,
            c if c == LD | MEM || c == LDX | MEM || c == ST || c == STX => i.k >= MEMWORDS,
            c if c == JMP | JA => i.k as u64 >= (flen - pc - 1) as u64,
            c if is_cond_jump(c) => {
                pc + i.jt as usize + 1 >= flen || pc + i.jf as usize + 1 >= flen
            }
            // No ancillary loads exist for seccomp's data.
            c if c == LD | W | ABS || c == LD | H | ABS || c == LD | B | ABS => i.k >= SKF_AD_OFF,
            _ => false,
        };
        if bad {
            return Err(Errno::EINVAL);
        }
    }
    let last = prog[flen - 1].code;
    if last != RET | K && last != RET | A {
        return Err(Errno::EINVAL);
    }
    check_loads_after_stores(prog)?;
    // What seccomp allows of classic BPF.
    let mut out = prog.to_vec();
    for i in &mut out {
        match i.code {
            // Aligned words of seccomp_data only.
            c if c == LD | W | ABS && (i.k >= SECCOMP_DATA_SIZE || i.k & 3 != 0) => {
                return Err(Errno::EINVAL);
            }
            c if c == LD | W | LEN => {
                *i = SockFilter::new(LD | IMM, 0, 0, SECCOMP_DATA_SIZE);
            }
            c if c == LDX | W | LEN => {
                *i = SockFilter::new(LDX | IMM, 0, 0, SECCOMP_DATA_SIZE);
            }
            0x20 // LD W ABS
            | 0x06 | 0x16 // RET K, RET A
            | 0x04 | 0x0c | 0x14 | 0x1c | 0x24 | 0x2c | 0x34 | 0x3c // ADD SUB MUL DIV
            | 0x54 | 0x5c | 0x44 | 0x4c | 0xa4 | 0xac // AND OR XOR
            | 0x64 | 0x6c | 0x74 | 0x7c | 0x84 // LSH RSH NEG
            | 0x00 | 0x01 // LD IMM, LDX IMM
            | 0x07 | 0x87 // TAX TXA
            | 0x60 | 0x61 | 0x02 | 0x03 // LD MEM, LDX MEM, ST, STX
            | 0x05 | 0x15 | 0x1d | 0x35 | 0x3d | 0x25 | 0x2d | 0x45 | 0x4d => {}
            _ => return Err(Errno::EINVAL),
        }
    }
    Ok(out)
}

/// Every load of a scratch word must follow a store to it on every path
/// (Linux's check_load_and_stores).
fn check_loads_after_stores(prog: &[SockFilter]) -> Result<(), Errno> {
    let mut masks = vec![u16::MAX; prog.len()];
    let mut valid: u16 = 0;
    for (pc, i) in prog.iter().enumerate() {
        valid &= masks[pc];
        match i.code {
            c if c == ST || c == STX => valid |= 1 << i.k,
            c if (c == LD | MEM || c == LDX | MEM) && valid & (1 << i.k) == 0 => {
                return Err(Errno::EINVAL);
            }
            c if c == JMP | JA => {
                masks[pc + 1 + i.k as usize] &= valid;
                valid = u16::MAX;
            }
            c if is_cond_jump(c) => {
                masks[pc + 1 + i.jt as usize] &= valid;
                masks[pc + 1 + i.jf as usize] &= valid;
                valid = u16::MAX;
            }
            _ => {}
        }
    }
    Ok(())
}

/// How many eBPF instructions Linux's bpf_convert_filter makes of a
/// checked program: a prologue of 3; 2 for RET K; 5 for DIV X (the
/// division-by-zero exit); a conditional jump 1, 1 more to load a
/// negative immediate, 1 more unless the false branch is next (or the
/// true one is, and the test can be inverted); 1 for the rest.
pub fn translated_len(prog: &[SockFilter]) -> usize {
    let mut n = 3;
    for i in prog {
        n += match i.code {
            c if c == RET | K => 2,
            c if c == ALU | DIV | X => 5,
            c if is_cond_jump(c) => {
                let imm = (c & X == 0 && (i.k as i32) < 0) as usize;
                let invertible = matches!(c & 0xf0, JEQ | JGT | JGE);
                let two = i.jf != 0 && !(i.jt == 0 && invertible);
                1 + imm + two as usize
            }
            _ => 1,
        };
    }
    n
}

// ----- The interpreter -----

/// `struct seccomp_data` as the 16 words a filter loads.
pub type SeccompData = [u32; 16];

/// The data a filter sees for a syscall.
pub fn seccomp_data(nr: u64, ip: u64, args: &[u64; 6]) -> SeccompData {
    let mut d = [0u32; 16];
    d[0] = nr as u32;
    d[1] = AUDIT_ARCH_X86_64;
    d[2] = ip as u32;
    d[3] = (ip >> 32) as u32;
    for (i, a) in args.iter().enumerate() {
        d[4 + 2 * i] = *a as u32;
        d[5 + 2 * i] = (*a >> 32) as u32;
    }
    d
}

/// Runs a checked program. Division by a zero X ends the program with 0,
/// as classic BPF always did.
pub fn run(prog: &[SockFilter], data: &SeccompData) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEMWORDS as usize];
    let mut pc = 0usize;
    while let Some(i) = prog.get(pc) {
        pc += 1;
        let k = i.k;
        match i.code {
            0x20 => a = data[(k as usize / 4) & 15], // LD W ABS
            0x00 => a = k,                           // LD IMM
            0x01 => x = k,                           // LDX IMM
            0x60 => a = mem[(k & 15) as usize],      // LD MEM
            0x61 => x = mem[(k & 15) as usize],      // LDX MEM
            0x02 => mem[(k & 15) as usize] = a,      // ST
            0x03 => mem[(k & 15) as usize] = x,      // STX
            0x04 => a = a.wrapping_add(k),
            0x0c => a = a.wrapping_add(x),
            0x14 => a = a.wrapping_sub(k),
            0x1c => a = a.wrapping_sub(x),
            0x24 => a = a.wrapping_mul(k),
            0x2c => a = a.wrapping_mul(x),
            0x34 => a /= k.max(1), // k is never 0 (checked)
            0x3c => {
                if x == 0 {
                    return 0;
                }
                a /= x;
            }
            0x54 => a &= k,
            0x5c => a &= x,
            0x44 => a |= k,
            0x4c => a |= x,
            0xa4 => a ^= k,
            0xac => a ^= x,
            0x64 => a = a.wrapping_shl(k),
            0x6c => a = a.wrapping_shl(x),
            0x74 => a = a.wrapping_shr(k),
            0x7c => a = a.wrapping_shr(x),
            0x84 => a = a.wrapping_neg(),
            0x07 => x = a, // TAX
            0x87 => a = x, // TXA
            0x05 => pc += k as usize,
            0x15 => pc += if a == k { i.jt } else { i.jf } as usize,
            0x1d => pc += if a == x { i.jt } else { i.jf } as usize,
            0x35 => pc += if a >= k { i.jt } else { i.jf } as usize,
            0x3d => pc += if a >= x { i.jt } else { i.jf } as usize,
            0x25 => pc += if a > k { i.jt } else { i.jf } as usize,
            0x2d => pc += if a > x { i.jt } else { i.jf } as usize,
            0x45 => pc += if a & k != 0 { i.jt } else { i.jf } as usize,
            0x4d => pc += if a & x != 0 { i.jt } else { i.jf } as usize,
            0x06 => return k, // RET K
            0x16 => return a, // RET A
            _ => break,
        }
    }
    // A checked program always returns; anything else fails closed.
    SECCOMP_RET_KILL_PROCESS
}

/// The action of a return value, for ordering: lower wins.
fn action_rank(ret: u32) -> i32 {
    (ret & SECCOMP_RET_ACTION_FULL) as i32
}

/// How many syscall numbers the allow cache covers.
const CACHE_NRS: usize = 512;
type AllowCache = [u64; CACHE_NRS / 64];

/// Whether the program allows syscall `nr` of x86-64 whatever its
/// arguments and instruction pointer: it reaches `RET ALLOW` looking only
/// at the number and the architecture (Linux's seccomp_is_const_allow).
fn const_allows(prog: &[SockFilter], nr: u32) -> bool {
    let mut a = 0u32;
    let mut pc = 0usize;
    while let Some(i) = prog.get(pc) {
        pc += 1;
        let k = i.k;
        let taken = |c: bool| if c { i.jt } else { i.jf } as usize;
        match i.code {
            0x20 => match k {
                0 => a = nr,
                4 => a = AUDIT_ARCH_X86_64,
                _ => return false,
            },
            0x06 => return k == SECCOMP_RET_ALLOW,
            0x05 => pc += k as usize,
            0x15 => pc += taken(a == k),
            0x35 => pc += taken(a >= k),
            0x25 => pc += taken(a > k),
            0x45 => pc += taken(a & k != 0),
            0x54 => a &= k,
            _ => return false,
        }
    }
    false
}

fn allow_cache(prog: &[SockFilter]) -> AllowCache {
    let mut c = [0u64; CACHE_NRS / 64];
    for nr in 0..CACHE_NRS {
        if const_allows(prog, nr as u32) {
            c[nr / 64] |= 1 << (nr % 64);
        }
    }
    c
}

/// A checked program, ready to attach.
pub struct Program {
    insns: Box<[SockFilter]>,
    cache: AllowCache,
    /// Its length as Linux counts it ([`translated_len`]).
    cost: usize,
}

impl Program {
    /// Checks `prog` (EINVAL as Linux) and prepares it.
    pub fn new(prog: &[SockFilter]) -> Result<Program, Errno> {
        let insns = check_program(prog)?.into_boxed_slice();
        let cache = allow_cache(&insns);
        let cost = translated_len(&insns);
        Ok(Program { insns, cache, cost })
    }
}

/// One attached filter and the ones beneath it.
pub struct Filter {
    prog: Program,
    /// SECCOMP_FILTER_FLAG_LOG.
    log: bool,
    prev: Option<Arc<Filter>>,
    /// The syscalls every filter of the stack allows outright.
    cache: AllowCache,
    /// The instructions of the stack as Linux counts them against
    /// MAX_INSNS_PER_PATH: each filter's, plus 4 a filter.
    path_len: usize,
}

impl Filter {
    /// `prog` on top of `prev`; ENOMEM when the stack grows too long.
    pub fn attach(
        prog: Program,
        log: bool,
        prev: Option<Arc<Filter>>,
    ) -> Result<Arc<Filter>, Errno> {
        let below = prev.as_ref().map_or(0, |p| p.path_len);
        if prog.cost + below > MAX_INSNS_PER_PATH {
            return Err(Errno::ENOMEM);
        }
        let mut cache = prog.cache;
        if let Some(p) = &prev {
            for (c, pc) in cache.iter_mut().zip(p.cache.iter()) {
                *c &= pc;
            }
        }
        Ok(Arc::new(Filter {
            path_len: below + prog.cost + 4,
            prog,
            log,
            prev,
            cache,
        }))
    }

    /// Runs every filter of the stack: the return value whose action
    /// comes first wins (the newest filter's among equals), with whether
    /// the filter that gave it asked for logging.
    pub fn run_all(&self, data: &SeccompData) -> (u32, bool) {
        let nr = data[0] as usize;
        if data[1] == AUDIT_ARCH_X86_64
            && nr < CACHE_NRS
            && self.cache[nr / 64] & (1 << (nr % 64)) != 0
        {
            return (SECCOMP_RET_ALLOW, false);
        }
        let mut ret = SECCOMP_RET_ALLOW;
        let mut log = false;
        let mut f = Some(self);
        while let Some(cur) = f {
            let r = run(&cur.prog.insns, data);
            if action_rank(r) < action_rank(ret) {
                ret = r;
                log = cur.log;
            }
            f = cur.prev.as_deref();
        }
        (ret, log)
    }

    /// Whether `self` is `f` or beneath it.
    fn is_ancestor_of(self: &Arc<Filter>, f: &Arc<Filter>) -> bool {
        let mut cur = Some(f);
        while let Some(c) = cur {
            if Arc::ptr_eq(c, self) {
                return true;
            }
            cur = c.prev.as_ref();
        }
        false
    }
}

impl Drop for Filter {
    // A stack can be thousands of filters deep: unlink it iteratively.
    fn drop(&mut self) {
        let mut prev = self.prev.take();
        while let Some(p) = prev {
            match Arc::try_unwrap(p) {
                Ok(mut f) => prev = f.prev.take(),
                Err(_) => break,
            }
        }
    }
}

// ----- Per-thread state -----

#[derive(Clone, Default)]
struct State {
    mode: u8,
    filter: Option<Arc<Filter>>,
    /// Set by another thread's TSYNC: the thread takes no_new_privs.
    no_new_privs: bool,
}

/// A thread's seccomp state as others see and change it.
#[derive(Default)]
pub struct SharedSeccomp {
    /// 0 while seccomp is off; else the generation of the state (bumped
    /// on every change) and its mode in the low byte.
    word: AtomicU64,
    state: parking_lot::Mutex<State>,
}

impl SharedSeccomp {
    /// Whether the thread's syscalls must go through [`intercept`].
    #[inline]
    pub fn enabled(&self) -> bool {
        self.word.load(Ordering::Relaxed) != 0
    }

    /// The mode (PR_GET_SECCOMP).
    pub fn mode(&self) -> u8 {
        self.state.lock().mode
    }

    fn set(&self, s: &mut State, new: State) {
        *s = new;
        let gen = (self.word.load(Ordering::Relaxed) >> 8) + 1;
        self.word.store(gen << 8 | s.mode as u64, Ordering::Release);
    }
}

/// The runner's copy of its thread's state.
#[derive(Default)]
pub struct Seccomp {
    word: u64,
    mode: u8,
    filter: Option<Arc<Filter>>,
}

/// Takes the thread's shared state if it changed.
fn refresh(t: &mut Task) {
    let w = t.shared.seccomp.word.load(Ordering::Acquire);
    if w == t.seccomp.word {
        return;
    }
    let s = {
        // The word changes only under the lock: read both together.
        let g = t.shared.seccomp.state.lock();
        t.seccomp.word = t.shared.seccomp.word.load(Ordering::Acquire);
        g.clone()
    };
    t.seccomp.mode = s.mode;
    t.seccomp.filter = s.filter;
    if s.no_new_privs && !t.prctl.no_new_privs {
        t.prctl.no_new_privs = true;
        t.publish();
    }
}

/// A child (fork, clone, a new thread) gets its parent's mode and filters.
///
/// Called with the task registry locked, as TSYNC runs, so a thread being
/// made while a sibling synchronizes gets the synchronized filters.
pub fn inherit(parent: &Task, child: &Task) {
    let s = parent.shared.seccomp.state.lock().clone();
    if s.mode == SECCOMP_MODE_DISABLED {
        return;
    }
    let mut cs = child.shared.seccomp.state.lock();
    child.shared.seccomp.set(&mut cs, s);
}

// ----- Enforcement -----

/// The syscalls strict mode allows (x86-64's mode1_syscalls).
const STRICT_SYSCALLS: [u64; 4] = [
    libc::SYS_read as u64,
    libc::SYS_write as u64,
    libc::SYS_exit as u64,
    libc::SYS_rt_sigreturn as u64,
];

/// Applies the thread's seccomp state to the syscall in `t.regs` before
/// its handler runs. True when the syscall must not run: its result is in
/// `rax`, or the thread is on its way out or to a SIGSYS handler.
pub fn intercept(t: &mut Task, nr: u64, args: &[u64; 6]) -> bool {
    refresh(t);
    match t.seccomp.mode {
        SECCOMP_MODE_STRICT => {
            if STRICT_SYSCALLS.contains(&nr) {
                return false;
            }
            tracing::info!(
                "seccomp: strict mode kills task {} at syscall {}",
                t.tid,
                nr as i32
            );
            // do_exit(SIGKILL): this thread only.
            t.exit_code = Some(ExitStatus::Signaled(libc::SIGKILL));
            true
        }
        SECCOMP_MODE_FILTER => {
            let data = seccomp_data(nr, t.regs.rip, args);
            let (ret, log) = match &t.seccomp.filter {
                Some(f) => f.run_all(&data),
                None => (SECCOMP_RET_KILL_PROCESS, false),
            };
            act(t, nr, ret, log)
        }
        _ => false,
    }
}

fn act(t: &mut Task, nr: u64, ret: u32, log: bool) -> bool {
    let data = ret & SECCOMP_RET_DATA;
    let action = ret & SECCOMP_RET_ACTION_FULL;
    let sysno = nr as i32;
    let tid = t.tid;
    let note = |what: &str| {
        tracing::info!("seccomp: task {tid} syscall {sysno}: {what} (filter returned {ret:#x})")
    };
    match action {
        SECCOMP_RET_ALLOW => false,
        SECCOMP_RET_LOG => {
            note("logged and allowed");
            false
        }
        SECCOMP_RET_ERRNO => {
            if log {
                note("errno");
            }
            t.regs.rax = (-(data.min(MAX_ERRNO) as i64)) as u64;
            true
        }
        // No tracer is ever attached, and no listener can be: the
        // syscall fails with ENOSYS, as Linux fails it without them.
        SECCOMP_RET_TRACE | SECCOMP_RET_USER_NOTIF => {
            if log {
                note("no tracer or listener: ENOSYS");
            }
            t.regs.rax = (-(libc::ENOSYS as i64)) as u64;
            true
        }
        SECCOMP_RET_TRAP => {
            if log {
                note("SIGSYS");
            }
            // The handler sees the registers of the call (rax back to the
            // syscall number), as Linux's syscall_rollback leaves them.
            t.regs.rax = t.regs.orig_rax;
            let info = sigsys(t.regs.rip, sysno, data);
            t.force_signal(info);
            true
        }
        _ => {
            // KILL_THREAD, KILL_PROCESS, and any unknown action.
            note("killed by SIGSYS");
            let alone = action == SECCOMP_RET_KILL_THREAD && live_threads(t) > 1;
            if alone {
                // do_exit(SIGSYS): this thread only.
                t.exit_code = Some(ExitStatus::Signaled(libc::SIGSYS));
            } else {
                // SIGSYS's default action, which dumps core.
                let core = super::task::lock_limits(&t.tg).cur(libc::RLIMIT_CORE) > 0;
                let st = if core {
                    ExitStatus::Dumped(libc::SIGSYS)
                } else {
                    ExitStatus::Signaled(libc::SIGSYS)
                };
                t.kernel.group_exit(&t.tg, st);
                t.exit_code = Some(st);
            }
            t.regs.rax = t.regs.orig_rax;
            true
        }
    }
}

fn live_threads(t: &Task) -> usize {
    let ts = t.kernel.tasks.lock();
    ts.procs.get(&t.tg.tgid).map_or(1, |p| p.threads.len())
}

/// The SIGSYS of SECCOMP_RET_TRAP: `si_call_addr`, `si_syscall`,
/// `si_arch`, and the filter's data in `si_errno`.
pub fn sigsys(call_addr: u64, syscall: i32, data: u32) -> SigInfo {
    let mut s = SigInfo::new(libc::SIGSYS, SYS_SECCOMP);
    s.errno = data as i32;
    s.fields[0..8].copy_from_slice(&call_addr.to_le_bytes());
    s.fields[8..12].copy_from_slice(&syscall.to_le_bytes());
    s.fields[12..16].copy_from_slice(&AUDIT_ARCH_X86_64.to_le_bytes());
    s
}

// ----- Installing -----

/// seccomp(SECCOMP_SET_MODE_STRICT).
pub fn set_strict(t: &mut Task) -> Result<(), Errno> {
    let sh = t.shared.clone();
    let mut s = sh.seccomp.state.lock();
    if s.mode != SECCOMP_MODE_DISABLED && s.mode != SECCOMP_MODE_STRICT {
        return Err(Errno::EINVAL);
    }
    let new = State {
        mode: SECCOMP_MODE_STRICT,
        filter: None,
        no_new_privs: s.no_new_privs,
    };
    sh.seccomp.set(&mut s, new);
    drop(s);
    refresh(t);
    Ok(())
}

/// What attaching a filter with TSYNC found.
#[derive(Debug, PartialEq, Eq)]
pub enum Attached {
    Done,
    /// TSYNC could not apply to this thread (its filters are not an
    /// ancestor of the caller's): nothing was changed.
    Blocked(i32),
}

/// Attaches `prog` on top of the thread's filters; with `tsync`, makes it
/// every thread's of the process.
pub fn attach(t: &mut Task, prog: Program, log: bool, tsync: bool) -> Result<Attached, Errno> {
    let r = if tsync {
        attach_tsync(t, prog, log)
    } else {
        let sh = t.shared.clone();
        let mut s = sh.seccomp.state.lock();
        if s.mode != SECCOMP_MODE_DISABLED && s.mode != SECCOMP_MODE_FILTER {
            return Err(Errno::EINVAL);
        }
        let f = Filter::attach(prog, log, s.filter.clone())?;
        let new = State {
            mode: SECCOMP_MODE_FILTER,
            filter: Some(f),
            no_new_privs: s.no_new_privs,
        };
        sh.seccomp.set(&mut s, new);
        Ok(Attached::Done)
    };
    refresh(t);
    r
}

fn attach_tsync(t: &mut Task, prog: Program, log: bool) -> Result<Attached, Errno> {
    let kernel = t.kernel.clone();
    let ts = kernel.tasks.lock();
    let mut threads = ts.threads_of(t.tg.tgid);
    if !threads.iter().any(|s| Arc::ptr_eq(s, &t.shared)) {
        threads.push(t.shared.clone());
    }
    threads.sort_by_key(|s| s.tid());
    // Every thread's state, locked in tid order, for the check and the
    // change to be one step.
    let mut guards: Vec<_> = threads.iter().map(|s| s.seccomp.state.lock()).collect();
    let me = threads
        .iter()
        .position(|s| Arc::ptr_eq(s, &t.shared))
        .expect("the caller is one of its threads");
    let mine = (*guards[me]).clone();
    if mine.mode != SECCOMP_MODE_DISABLED && mine.mode != SECCOMP_MODE_FILTER {
        return Err(Errno::EINVAL);
    }
    let f = Filter::attach(prog, log, mine.filter.clone())?;
    for (i, g) in guards.iter().enumerate() {
        if i == me {
            continue;
        }
        let ok = match (g.mode, &g.filter, &mine.filter) {
            (SECCOMP_MODE_DISABLED, _, _) => true,
            (SECCOMP_MODE_FILTER, None, _) => true,
            (SECCOMP_MODE_FILTER, Some(theirs), Some(ours)) => theirs.is_ancestor_of(ours),
            _ => false,
        };
        if !ok {
            return Ok(Attached::Blocked(threads[i].tid()));
        }
    }
    let nnp = t.prctl.no_new_privs;
    for (i, g) in guards.iter_mut().enumerate() {
        let new = State {
            mode: SECCOMP_MODE_FILTER,
            filter: Some(f.clone()),
            no_new_privs: g.no_new_privs || (i != me && nnp),
        };
        threads[i].seccomp.set(g, new);
    }
    // Each thread sees the change at its next syscall: the dispatch hook
    // reads the shared word every time.
    drop(guards);
    drop(ts);
    Ok(Attached::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn stmt(code: u16, k: u32) -> SockFilter {
        SockFilter::new(code, 0, 0, k)
    }
    const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
        SockFilter::new(code, jt, jf, k)
    }

    /// Returns `ret` for syscall `nr`, allows the rest.
    fn on_nr(nr: u32, ret: u32) -> Vec<SockFilter> {
        vec![
            stmt(LD | W | ABS, 0),
            jump(JMP | JEQ | K, nr, 0, 1),
            stmt(RET | K, ret),
            stmt(RET | K, SECCOMP_RET_ALLOW),
        ]
    }

    fn data(nr: u64, args: [u64; 6]) -> SeccompData {
        seccomp_data(nr, 0x1234_5678_9abc_def0, &args)
    }

    fn eval(prog: &[SockFilter], d: &SeccompData) -> u32 {
        run(&check_program(prog).unwrap(), d)
    }

    #[test]
    fn checker_refuses_what_linux_refuses() {
        let ok = on_nr(39, SECCOMP_RET_ERRNO | 1);
        assert!(check_program(&ok).is_ok());
        // Empty and too long.
        assert_eq!(check_program(&[]), Err(Errno::EINVAL));
        let long = vec![stmt(RET | K, SECCOMP_RET_ALLOW); BPF_MAXINSNS + 1];
        assert_eq!(check_program(&long), Err(Errno::EINVAL));
        let max = vec![stmt(RET | K, SECCOMP_RET_ALLOW); BPF_MAXINSNS];
        assert!(check_program(&max).is_ok());
        // No return at the end.
        assert_eq!(check_program(&[stmt(LD | W | ABS, 0)]), Err(Errno::EINVAL));
        // Jumps out of range, conditional and not.
        let mut bad = ok.clone();
        bad[1].jf = 2;
        assert_eq!(check_program(&bad), Err(Errno::EINVAL));
        let mut bad = ok.clone();
        bad[1].jt = 200;
        assert_eq!(check_program(&bad), Err(Errno::EINVAL));
        let ja = [stmt(JMP | JA, 1), stmt(RET | K, 0)];
        assert_eq!(check_program(&ja), Err(Errno::EINVAL));
        let ja = [stmt(JMP | JA, 0), stmt(RET | K, 0)];
        assert!(check_program(&ja).is_ok());
        // Loads seccomp does not have: half words, bytes, indirect,
        // unaligned or past the data, MSH.
        for i in [
            stmt(LD | H | ABS, 0),
            stmt(LD | B | ABS, 0),
            stmt(LD | W | IND, 0),
            stmt(LD | W | ABS, 2),
            stmt(LD | W | ABS, 64),
            stmt(LD | W | ABS, SKF_AD_OFF),
            stmt(LDX | B | MSH, 0),
            stmt(ALU | MOD | K, 3),
            stmt(ALU | MOD | X, 0),
            stmt(ALU | DIV | K, 0),
            stmt(ALU | LSH | K, 32),
            stmt(ST, 16),
            stmt(0xffff, 0),
            stmt(JMP | JA | X, 0),
        ] {
            assert_eq!(
                check_program(&[i, stmt(RET | K, 0)]),
                Err(Errno::EINVAL),
                "{i:?}"
            );
        }
        // What it does have.
        for i in [
            stmt(LD | W | ABS, 60),
            stmt(LD | W | LEN, 0),
            stmt(LDX | W | LEN, 0),
            stmt(LD | IMM, 7),
            stmt(LDX | IMM, 7),
            stmt(ALU | DIV | K, 3),
            stmt(ALU | DIV | X, 0),
            stmt(ALU | NEG, 0),
            stmt(MISC | TAX, 0),
            stmt(MISC | TXA, 0),
            stmt(ST, 15),
        ] {
            assert!(check_program(&[i, stmt(RET | A, 0)]).is_ok(), "{i:?}");
        }
    }

    #[test]
    fn checker_wants_stores_before_loads() {
        let load = [stmt(LD | MEM, 3), stmt(RET | A, 0)];
        assert_eq!(check_program(&load), Err(Errno::EINVAL));
        let stored = [stmt(ST, 3), stmt(LDX | MEM, 3), stmt(RET | A, 0)];
        assert!(check_program(&stored).is_ok());
        // Stored on one path only.
        let one_path = [
            stmt(LD | W | ABS, 0),
            jump(JMP | JEQ | K, 1, 0, 1),
            stmt(ST, 2),
            stmt(LD | MEM, 2),
            stmt(RET | A, 0),
        ];
        assert_eq!(check_program(&one_path), Err(Errno::EINVAL));
        // Stored before the branch.
        let both = [
            stmt(ST, 2),
            stmt(LD | W | ABS, 0),
            jump(JMP | JEQ | K, 1, 0, 1),
            stmt(LD | IMM, 9),
            stmt(LD | MEM, 2),
            stmt(RET | A, 0),
        ];
        assert!(check_program(&both).is_ok());
    }

    #[test]
    fn interpreter_loads_compares_and_computes() {
        let d = data(39, [1, 0xffff_ffff_0000_0002, 3, 4, 5, 6]);
        // Number, arch, both halves of ip and arguments.
        for (off, want) in [
            (0, 39),
            (4, AUDIT_ARCH_X86_64),
            (8, 0x9abc_def0),
            (12, 0x1234_5678),
            (16, 1),
            (20, 0),
            (24, 2),
            (28, 0xffff_ffff),
            (56, 6),
        ] {
            assert_eq!(eval(&[stmt(LD | W | ABS, off), stmt(RET | A, 0)], &d), want);
        }
        assert_eq!(eval(&[stmt(LD | W | LEN, 0), stmt(RET | A, 0)], &d), 64);
        assert_eq!(
            eval(
                &[
                    stmt(LDX | W | LEN, 0),
                    stmt(MISC | TXA, 0),
                    stmt(RET | A, 0)
                ],
                &d
            ),
            64
        );
        // Arithmetic wraps as 32 bits; shifts by X take its low 5 bits.
        let alu = [
            stmt(LD | IMM, 10),
            stmt(ALU | SUB | K, 11),
            stmt(ALU | MUL | K, 3),
            stmt(ALU | NEG, 0),
            stmt(LDX | IMM, 33),
            stmt(ALU | LSH | X, 0),
            stmt(ALU | OR | K, 0x100),
            stmt(ALU | XOR | K, 1),
            stmt(ALU | AND | K, 0xfff),
            stmt(ALU | RSH | K, 1),
            stmt(ALU | ADD | K, 1),
            stmt(ALU | DIV | K, 2),
            stmt(RET | A, 0),
        ];
        // 10 - 11 = -1; * 3 = -3; neg = 3; << 1 = 6; | 0x100 ^ 1 = 0x107;
        // >> 1 = 0x83; + 1 = 0x84; / 2 = 0x42.
        assert_eq!(eval(&alu, &d), 0x42);
        // Division by a zero X ends the program with 0 (KILL_THREAD).
        let div0 = [stmt(LD | IMM, 5), stmt(ALU | DIV | X, 0), stmt(RET | K, 7)];
        assert_eq!(eval(&div0, &d), 0);
        // Scratch memory.
        let mem = [
            stmt(LD | IMM, 41),
            stmt(ST, 15),
            stmt(LD | IMM, 0),
            stmt(LDX | MEM, 15),
            stmt(MISC | TXA, 0),
            stmt(ALU | ADD | K, 1),
            stmt(RET | A, 0),
        ];
        assert_eq!(eval(&mem, &d), 42);
        // Conditional jumps with K and X.
        let cmp = |code: u16, a: u32, b: u32| {
            let p = [
                stmt(LD | IMM, a),
                stmt(LDX | IMM, b),
                jump(code, b, 0, 1),
                stmt(RET | K, 1),
                stmt(RET | K, 2),
            ];
            eval(&p, &d)
        };
        assert_eq!(cmp(JMP | JEQ | K, 5, 5), 1);
        assert_eq!(cmp(JMP | JEQ | X, 5, 6), 2);
        assert_eq!(cmp(JMP | JGT | K, 6, 5), 1);
        assert_eq!(cmp(JMP | JGT | X, 5, 5), 2);
        assert_eq!(cmp(JMP | JGE | K, 5, 5), 1);
        assert_eq!(cmp(JMP | JGE | X, 4, 5), 2);
        assert_eq!(cmp(JMP | JSET | K, 6, 2), 1);
        assert_eq!(cmp(JMP | JSET | X, 4, 2), 2);
        let ja = [stmt(JMP | JA, 1), stmt(RET | K, 1), stmt(RET | K, 2)];
        assert_eq!(eval(&ja, &d), 2);
    }

    #[test]
    fn stack_ranks_actions_and_caches_plain_allows() {
        let p = |v: Vec<SockFilter>| Program::new(&v).unwrap();
        let f1 = Filter::attach(p(on_nr(39, SECCOMP_RET_ERRNO | 1)), false, None).unwrap();
        let f2 =
            Filter::attach(p(on_nr(39, SECCOMP_RET_TRAP | 2)), true, Some(f1.clone())).unwrap();
        let f3 = Filter::attach(p(on_nr(39, SECCOMP_RET_LOG)), false, Some(f2.clone())).unwrap();
        let d = data(39, [0; 6]);
        assert_eq!(f1.run_all(&d), (SECCOMP_RET_ERRNO | 1, false));
        // TRAP comes before ERRNO, whichever filter is newer.
        assert_eq!(f2.run_all(&d), (SECCOMP_RET_TRAP | 2, true));
        assert_eq!(f3.run_all(&d), (SECCOMP_RET_TRAP | 2, true));
        // Other syscalls are allowed through the cache.
        assert!(f3.cache[0] & 1 != 0);
        assert!(f3.cache[0] & (1 << 39) == 0);
        assert_eq!(f3.run_all(&data(1, [0; 6])), (SECCOMP_RET_ALLOW, false));
        // KILL_PROCESS is first of all; among equal actions the newest
        // filter's data counts.
        let k = Filter::attach(
            p(on_nr(39, SECCOMP_RET_KILL_PROCESS)),
            false,
            Some(f3.clone()),
        )
        .unwrap();
        assert_eq!(k.run_all(&d).0, SECCOMP_RET_KILL_PROCESS);
        let e =
            Filter::attach(p(on_nr(39, SECCOMP_RET_ERRNO | 9)), false, Some(f1.clone())).unwrap();
        assert_eq!(e.run_all(&d).0, SECCOMP_RET_ERRNO | 9);
        assert!(f1.is_ancestor_of(&k));
        assert!(!k.is_ancestor_of(&f1));
        // A filter that looks at arguments is never cached.
        let args = vec![
            stmt(LD | W | ABS, 16),
            jump(JMP | JEQ | K, 7, 0, 1),
            stmt(RET | K, SECCOMP_RET_ERRNO | 3),
            stmt(RET | K, SECCOMP_RET_ALLOW),
        ];
        let a = Filter::attach(p(args), false, None).unwrap();
        assert_eq!(a.cache, [0; CACHE_NRS / 64]);
        assert_eq!(
            a.run_all(&data(0, [7, 0, 0, 0, 0, 0])).0,
            SECCOMP_RET_ERRNO | 3
        );
        assert_eq!(a.run_all(&data(0, [8, 0, 0, 0, 0, 0])).0, SECCOMP_RET_ALLOW);
    }

    #[test]
    fn translated_lengths_are_linuxs() {
        assert_eq!(translated_len(&[stmt(RET | K, 0)]), 5);
        assert_eq!(translated_len(&[stmt(RET | A, 0)]), 4);
        assert_eq!(translated_len(&[stmt(ALU | DIV | X, 0)]), 8);
        // jf next; jt next and invertible; neither; JSET not invertible;
        // a negative immediate.
        assert_eq!(translated_len(&[jump(JMP | JEQ | K, 1, 3, 0)]), 4);
        assert_eq!(translated_len(&[jump(JMP | JGE | K, 1, 0, 3)]), 4);
        assert_eq!(translated_len(&[jump(JMP | JGT | X, 1, 1, 3)]), 5);
        assert_eq!(translated_len(&[jump(JMP | JSET | K, 1, 0, 3)]), 5);
        assert_eq!(
            translated_len(&[jump(JMP | JEQ | K, AUDIT_ARCH_X86_64, 1, 0)]),
            5
        );
        assert_eq!(
            translated_len(&[jump(JMP | JEQ | X, AUDIT_ARCH_X86_64, 1, 0)]),
            4
        );
    }

    #[test]
    fn stacks_are_bounded_and_drop_deep() {
        let allow = || Program::new(&[stmt(RET | K, SECCOMP_RET_ALLOW)]).unwrap();
        let mut top: Option<Arc<Filter>> = None;
        let mut n = 0;
        loop {
            match Filter::attach(allow(), false, top.clone()) {
                Ok(f) => {
                    top = Some(f);
                    n += 1;
                }
                Err(e) => {
                    assert_eq!(e, Errno::ENOMEM);
                    break;
                }
            }
        }
        // Each costs 3 + 2, and 4 more beneath another:
        // 5 + 9 * (n - 1) <= 32768 < 5 + 9 * n.
        assert_eq!(n, (MAX_INSNS_PER_PATH - 5) / 9 + 1);
        drop(top);
    }
}
