//! The container's own seccomp filter: an OCI `linux.seccomp` object
//! compiled into the classic BPF program libseccomp makes of it for runc,
//! over Linux's `struct seccomp_data`, for the sentry to run on each guest
//! system call (`sentry::kernel::seccomp`). The filter never reaches the
//! host: the host only ever sees the sentry's own system calls.
//!
//! What the program does, in libseccomp's and runc's terms:
//! - An architecture other than x86-64 gets the "bad architecture" action,
//!   KILL_THREAD (libseccomp's default). An x86-64 call with the x32 bit
//!   (0x40000000) is x32's: bad architecture too, unless the profile lists
//!   SCMP_ARCH_X32. The sentry knows x86-64's syscall names only, so a
//!   listed foreign architecture (SCMP_ARCH_X86, X32, ...) gets the default
//!   action when that denies, and KILL_THREAD when it allows: its calls are
//!   never let through unchecked. Syscall -1 gets the default action.
//! - runc's -ENOSYS stub: when the default action is not ALLOW, LOG or
//!   TRACE, a syscall numbered above every one the profile names fails
//!   with ENOSYS (so that programs fall back from syscalls newer than the
//!   profile, as under runc).
//! - Then a binary search on the syscall number: a syscall without rules
//!   gets the default action, one with an unconditional rule that rule's
//!   action, one with argument rules a block checking them.
//! - Rules: names unknown to x86-64 are skipped (logged at debug), as
//!   libseccomp does; a rule whose action is the default action is
//!   skipped (runc). A syscall's first unconditional rule wins over any
//!   other rule of it (libseccomp keeps it and drops the others). Argument
//!   rules are tried in the profile's order, the first whose conditions
//!   all hold gives its action; conditions on the same argument index in
//!   one rule become separate rules (runc's "multiple args" rule). Each
//!   condition compares all 64 bits, unsigned; SCMP_CMP_MASKED_EQ is
//!   `(arg & value) == valueTwo`.
//! - Actions: ALLOW, ERRNO (`errnoRet`, default EPERM), KILL and
//!   KILL_THREAD, KILL_PROCESS, TRAP (SIGSYS), LOG, and TRACE (no tracer
//!   can attach to a guest, so the call fails with ENOSYS, as Linux fails
//!   it without a tracer). NOTIFY is refused: no seccomp agent can answer
//!   for the sentry.
//! - Flags: SECCOMP_FILTER_FLAG_LOG logs what the filter denies,
//!   SECCOMP_FILTER_FLAG_TSYNC and SPEC_ALLOW are accepted (the filter goes
//!   on a process before it runs, and the sentry forces no speculation
//!   mitigation on guests). The user-notification flags
//!   (NEW_LISTENER, WAIT_KILLABLE_RECV) are refused with NOTIFY, and so is
//!   any flag unknown here.
//!
//! [`Profile`] reads the seccomp profiles Docker and podman take
//! (`--security-opt seccomp=FILE`, as moby's `default.json`): an OCI
//! object with `archMap` and rules conditional on the container's
//! capabilities, architecture and kernel (`includes`, `excludes`), and
//! resolves them into the OCI object as moby does.

use std::collections::HashMap;
use std::sync::OnceLock;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompArg,
    LinuxSeccompFilterFlag as Flag, LinuxSeccompOperator as Op, LinuxSyscall,
};
use sentry::kernel::seccomp::{
    bpf, SockFilter, AUDIT_ARCH_X86_64, BPF_MAXINSNS, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO,
    SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD, SECCOMP_RET_LOG, SECCOMP_RET_TRACE,
    SECCOMP_RET_TRAP,
};
use sentry::syscalls::seccomp::GuestFilter;

/// `__X32_SYSCALL_BIT`.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// The filter flags of seccomp(2).
const FLAG_TSYNC: u64 = 1;
const FLAG_LOG: u64 = 2;
const FLAG_SPEC_ALLOW: u64 = 4;
/// libseccomp's action for a foreign architecture (SCMP_ACT_KILL).
const BAD_ARCH: u32 = SECCOMP_RET_KILL_THREAD;
/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// The x86-64 syscall number of a name, from the sentry's table.
pub fn syscall_number(name: &str) -> Option<u32> {
    static BY_NAME: OnceLock<HashMap<&'static str, u32>> = OnceLock::new();
    BY_NAME
        .get_or_init(|| {
            sentry::syscalls::names::NAMES
                .iter()
                .enumerate()
                .filter(|(_, n)| !n.is_empty())
                .map(|(i, n)| (*n, i as u32))
                .collect()
        })
        .get(name)
        .copied()
}

/// Compiles `s` into the program the sentry runs on every guest syscall.
/// Errors say what in the profile cannot be enforced, or is invalid.
pub fn compile(s: &LinuxSeccomp) -> Result<Vec<SockFilter>, String> {
    let policy = Policy::new(s)?;
    let prog = policy.emit()?;
    if prog.len() > BPF_MAXINSNS {
        return Err(format!(
            "the seccomp profile compiles to {} BPF instructions, more than the {BPF_MAXINSNS} \
             Linux allows in one filter; merge rules that share an action",
            prog.len()
        ));
    }
    // What the sentry (and Linux) will check when it installs it.
    sentry::kernel::seccomp::check_program(&prog)
        .map_err(|e| format!("internal error: the compiled seccomp filter is invalid ({e})"))?;
    Ok(prog)
}

/// The `SECCOMP_FILTER_FLAG_*` bits to install `s`'s filter with.
pub fn flags(s: &LinuxSeccomp) -> u64 {
    let mut bits = 0;
    for f in s.flags().iter().flatten() {
        bits |= match f {
            Flag::SeccompFilterFlagLog => FLAG_LOG,
            Flag::SeccompFilterFlagTsync => FLAG_TSYNC,
            Flag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
        };
    }
    bits
}

/// The filter and its flags, as the sentry installs them.
pub fn guest_filter(s: &LinuxSeccomp) -> Result<GuestFilter, String> {
    Ok(GuestFilter {
        program: compile(s)?,
        flags: flags(s),
    })
}

/// The name of an action as profiles write it.
fn action_name(a: Action) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{a:?}"))
}

/// The return value of a filter for an action (runc's getAction).
fn action_value(a: Action, errno_ret: Option<u32>) -> Result<u32, String> {
    let data = |d: u32| {
        if d > 0xffff {
            Err(format!(
                "errnoRet {d} of {} is out of range (at most 65535)",
                action_name(a)
            ))
        } else {
            Ok(d)
        }
    };
    Ok(match a {
        Action::ScmpActKill | Action::ScmpActKillThread => SECCOMP_RET_KILL_THREAD,
        Action::ScmpActKillProcess => SECCOMP_RET_KILL_PROCESS,
        Action::ScmpActTrap => SECCOMP_RET_TRAP,
        Action::ScmpActErrno => SECCOMP_RET_ERRNO | data(errno_ret.unwrap_or(libc::EPERM as u32))?,
        Action::ScmpActTrace => SECCOMP_RET_TRACE | data(errno_ret.unwrap_or(libc::EPERM as u32))?,
        Action::ScmpActLog => SECCOMP_RET_LOG,
        Action::ScmpActAllow => SECCOMP_RET_ALLOW,
        Action::ScmpActNotify => {
            return Err("SCMP_ACT_NOTIFY cannot be enforced by runsc: it hands the system call \
                        to a seccomp agent, and no agent can answer for the sentry's guest; \
                        use another action (SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, ...)"
                .into())
        }
    })
}

/// Whether an action lets every call through (runc's isAllowAction, for
/// the -ENOSYS stub).
fn is_allow_like(a: Action) -> bool {
    matches!(
        a,
        Action::ScmpActAllow | Action::ScmpActLog | Action::ScmpActTrace
    )
}

/// One condition on one argument.
#[derive(Clone, Copy, Debug)]
struct Cond {
    index: u32,
    op: Op,
    value: u64,
    value_two: u64,
}

/// The conditions of a rule (all must hold) and its action.
#[derive(Clone, Debug)]
struct Rule {
    conds: Vec<Cond>,
    action: u32,
}

/// What a syscall that has rules gets.
#[derive(Clone, Debug)]
enum Plan {
    /// An unconditional rule's action.
    Always(u32),
    /// Argument rules, tried in order; the default action if none holds.
    Rules(Vec<Rule>),
}

/// A profile as the filter sees it.
struct Policy {
    default: u32,
    /// What a listed foreign architecture gets (see the module's doc).
    foreign: Vec<u32>,
    /// Whether x32 calls are the profile's.
    x32: bool,
    /// The syscalls with rules, by number.
    plans: std::collections::BTreeMap<u32, Plan>,
    /// The -ENOSYS stub's bound: syscalls above it fail with ENOSYS.
    enosys_above: Option<u32>,
}

impl Policy {
    fn new(s: &LinuxSeccomp) -> Result<Policy, String> {
        let default_action = s.default_action();
        if default_action == Action::ScmpActNotify {
            return Err("SCMP_ACT_NOTIFY cannot be the default action (and runsc cannot \
                        enforce it at all: no seccomp agent can answer for the sentry's guest)"
                .into());
        }
        let default = action_value(default_action, s.default_errno_ret())?;
        // Listed architectures other than x86-64.
        let mut foreign = Vec::new();
        let mut x32 = false;
        for a in s.architectures().iter().flatten() {
            match a {
                Arch::ScmpArchNative | Arch::ScmpArchX86_64 => {}
                Arch::ScmpArchX32 => x32 = true,
                other => {
                    // Every other token is its AUDIT_ARCH_ value.
                    let audit = *other as u32;
                    if !foreign.contains(&audit) {
                        foreign.push(audit);
                    }
                }
            }
        }
        let mut plans = std::collections::BTreeMap::new();
        let mut max_named: Option<u32> = None;
        for (i, call) in s.syscalls().iter().flatten().enumerate() {
            let what = || format!("syscall rule {} ({})", i + 1, call.names().join(", "));
            let action = action_value(call.action(), call.errno_ret())
                .map_err(|e| format!("{}: {e}", what()))?;
            if call.names().iter().any(|n| n.is_empty()) {
                return Err(format!("{}: an empty syscall name", what()));
            }
            let nrs: Vec<u32> = call
                .names()
                .iter()
                .filter_map(|n| {
                    let nr = syscall_number(n);
                    if nr.is_none() {
                        tracing::debug!("seccomp: unknown syscall {n:?} ignored (not on x86-64)");
                    }
                    nr
                })
                .collect();
            if let Some(&m) = nrs.iter().max() {
                max_named = Some(max_named.map_or(m, |x| x.max(m)));
            }
            if action == default {
                // Redundant: runc skips it.
                continue;
            }
            let rules = rules_of(call.args().as_deref().unwrap_or(&[]), action)
                .map_err(|e| format!("{}: {e}", what()))?;
            for nr in nrs {
                match (plans.get_mut(&nr), &rules) {
                    // The first unconditional rule stays.
                    (Some(Plan::Always(_)), _) => {}
                    (_, None) => {
                        plans.insert(nr, Plan::Always(action));
                    }
                    (Some(Plan::Rules(have)), Some(new)) => have.extend(new.iter().cloned()),
                    (None, Some(new)) => {
                        plans.insert(nr, Plan::Rules(new.clone()));
                    }
                }
            }
        }
        let enosys_above = if is_allow_like(default_action) {
            None
        } else {
            max_named
        };
        // A foreign architecture's calls: the default action when it
        // denies, else the bad-architecture one.
        let foreign_action = if matches!(default_action, Action::ScmpActAllow | Action::ScmpActLog)
        {
            BAD_ARCH
        } else {
            default
        };
        Ok(Policy {
            default,
            foreign: if foreign_action == BAD_ARCH {
                Vec::new()
            } else {
                foreign
            },
            x32: x32 && foreign_action != BAD_ARCH,
            plans,
            enosys_above,
        })
    }

    fn emit(&self) -> Result<Vec<SockFilter>, String> {
        let mut a = Asm::default();
        let native = a.label();
        let bad = a.label();
        a.stmt(bpf::LD | bpf::W | bpf::ABS, OFF_ARCH);
        a.jump(bpf::JEQ, AUDIT_ARCH_X86_64, native, bad);
        a.bind(bad);
        for &arch in &self.foreign {
            let next = a.label();
            let deny = a.label();
            a.jump(bpf::JEQ, arch, deny, next);
            a.bind(deny);
            a.ret(self.default);
            a.bind(next);
        }
        a.ret(BAD_ARCH);
        // x86-64 (and x32).
        a.bind(native);
        a.stmt(bpf::LD | bpf::W | bpf::ABS, OFF_NR);
        let x32 = a.label();
        let x64 = a.label();
        a.jump(bpf::JGE, X32_SYSCALL_BIT, x32, x64);
        a.bind(x64);
        if let Some(max) = self.enosys_above {
            let enosys = a.label();
            let ok = a.label();
            a.jump(bpf::JGT, max, enosys, ok);
            a.bind(enosys);
            a.ret(SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
            a.bind(ok);
        }
        // The binary search over intervals of syscall numbers.
        let blocks: HashMap<u32, Label> = self
            .plans
            .iter()
            .filter(|(_, p)| matches!(p, Plan::Rules(_)))
            .map(|(&nr, _)| (nr, a.label()))
            .collect();
        let intervals = self.intervals();
        a.search(&intervals, &blocks);
        // x32 (and syscall -1, which libseccomp lets through to the rules).
        a.bind(x32);
        let minus_one = a.label();
        let other = a.label();
        a.jump(bpf::JEQ, u32::MAX, minus_one, other);
        a.bind(minus_one);
        a.ret(self.default);
        a.bind(other);
        a.ret(if self.x32 { self.default } else { BAD_ARCH });
        // The argument checks.
        for (nr, plan) in &self.plans {
            let Plan::Rules(rules) = plan else { continue };
            a.bind(blocks[nr]);
            for r in rules {
                let next_rule = a.label();
                for c in &r.conds {
                    a.cond(c, next_rule);
                }
                a.ret(r.action);
                a.bind(next_rule);
            }
            a.ret(self.default);
        }
        a.assemble()
    }

    /// The syscall numbers below the x32 bit as intervals with one outcome
    /// each: (first number, outcome), sorted, adjacent ones different.
    fn intervals(&self) -> Vec<(u32, Outcome)> {
        let def = Outcome::Ret(self.default);
        let mut out: Vec<(u32, Outcome)> = Vec::new();
        let push = |out: &mut Vec<(u32, Outcome)>, start: u32, o: Outcome| {
            if out.last().map(|l| l.1) != Some(o) {
                out.push((start, o));
            }
        };
        let mut next = 0u32;
        for (&nr, plan) in self.plans.range(..X32_SYSCALL_BIT) {
            if nr > next {
                push(&mut out, next, def);
            }
            let o = match plan {
                Plan::Always(v) => Outcome::Ret(*v),
                Plan::Rules(_) => Outcome::Block(nr),
            };
            push(&mut out, nr, o);
            next = nr + 1;
        }
        if next < X32_SYSCALL_BIT {
            push(&mut out, next, def);
        }
        out
    }
}

/// The rules one profile entry makes: None for an unconditional one.
fn rules_of(args: &[LinuxSeccompArg], action: u32) -> Result<Option<Vec<Rule>>, String> {
    if args.is_empty() {
        return Ok(None);
    }
    let mut conds = Vec::new();
    for a in args {
        if a.index() >= 6 {
            return Err(format!(
                "argument index {} is out of range (a system call has 6 arguments, 0 to 5)",
                a.index()
            ));
        }
        conds.push(Cond {
            index: a.index() as u32,
            op: a.op(),
            value: a.value(),
            value_two: a.value_two().unwrap_or(0),
        });
    }
    let mut seen = [0u32; 6];
    for c in &conds {
        seen[c.index as usize] += 1;
    }
    Ok(Some(if seen.iter().any(|&n| n > 1) {
        // runc: each condition its own rule.
        conds
            .into_iter()
            .map(|c| Rule {
                conds: vec![c],
                action,
            })
            .collect()
    } else {
        vec![Rule { conds, action }]
    }))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ret(u32),
    /// The argument checks of this syscall.
    Block(u32),
}

// ----- A small assembler with labels -----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Label(usize);

enum Item {
    Insn(SockFilter),
    /// A conditional jump (JEQ, JGT, JGE, JSET with K) to two labels.
    Jump {
        op: u16,
        k: u32,
        jt: Label,
        jf: Label,
    },
    Ja(Label),
    Bind(Label),
}

/// Builds a program whose jumps name labels; [`Asm::assemble`] resolves
/// them, turning a conditional jump farther than 255 instructions into a
/// short one over two unconditional (32-bit) jumps.
#[derive(Default)]
struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    fn bind(&mut self, l: Label) {
        self.items.push(Item::Bind(l));
    }
    fn stmt(&mut self, code: u16, k: u32) {
        self.items.push(Item::Insn(SockFilter::new(code, 0, 0, k)));
    }
    fn ret(&mut self, k: u32) {
        self.stmt(bpf::RET | bpf::K, k);
    }
    fn jump(&mut self, op: u16, k: u32, jt: Label, jf: Label) {
        self.items.push(Item::Jump { op, k, jt, jf });
    }
    fn ja(&mut self, l: Label) {
        self.items.push(Item::Ja(l));
    }

    /// A binary search: the outcome of the interval holding A.
    fn search(&mut self, iv: &[(u32, Outcome)], blocks: &HashMap<u32, Label>) {
        if iv.len() == 1 {
            match iv[0].1 {
                Outcome::Ret(v) => self.ret(v),
                Outcome::Block(nr) => self.ja(blocks[&nr]),
            }
            return;
        }
        let mid = iv.len() / 2;
        let (left, right) = (self.label(), self.label());
        self.jump(bpf::JGE, iv[mid].0, right, left);
        self.bind(left);
        self.search(&iv[..mid], blocks);
        self.bind(right);
        self.search(&iv[mid..], blocks);
    }

    /// Falls through when the condition holds, else jumps to `fail`.
    fn cond(&mut self, c: &Cond, fail: Label) {
        let lo = OFF_ARGS + 8 * c.index;
        let hi = lo + 4;
        let (vlo, vhi) = (c.value as u32, (c.value >> 32) as u32);
        let pass = self.label();
        let ld = |a: &mut Asm, off: u32| a.stmt(bpf::LD | bpf::W | bpf::ABS, off);
        match c.op {
            Op::ScmpCmpEq | Op::ScmpCmpNe => {
                // EQ holds when both halves are equal; NE is its negation.
                let (t, f) = if c.op == Op::ScmpCmpEq {
                    (pass, fail)
                } else {
                    (fail, pass)
                };
                let low = self.label();
                ld(self, hi);
                self.jump(bpf::JEQ, vhi, low, f);
                self.bind(low);
                ld(self, lo);
                self.jump(bpf::JEQ, vlo, t, f);
            }
            Op::ScmpCmpGt | Op::ScmpCmpGe | Op::ScmpCmpLt | Op::ScmpCmpLe => {
                // GT / GE: the high half greater, or equal and the low
                // half greater (or equal). LE / LT are their negations.
                let (low_op, t, f) = match c.op {
                    Op::ScmpCmpGt => (bpf::JGT, pass, fail),
                    Op::ScmpCmpGe => (bpf::JGE, pass, fail),
                    Op::ScmpCmpLe => (bpf::JGT, fail, pass),
                    _ => (bpf::JGE, fail, pass),
                };
                let (eq, low) = (self.label(), self.label());
                ld(self, hi);
                self.jump(bpf::JGT, vhi, t, eq);
                self.bind(eq);
                self.jump(bpf::JEQ, vhi, low, f);
                self.bind(low);
                ld(self, lo);
                self.jump(low_op, vlo, t, f);
            }
            Op::ScmpCmpMaskedEq => {
                let (dlo, dhi) = (c.value_two as u32, (c.value_two >> 32) as u32);
                let low = self.label();
                ld(self, hi);
                self.stmt(bpf::ALU | bpf::AND | bpf::K, vhi);
                self.jump(bpf::JEQ, dhi, low, fail);
                self.bind(low);
                ld(self, lo);
                self.stmt(bpf::ALU | bpf::AND | bpf::K, vlo);
                self.jump(bpf::JEQ, dlo, pass, fail);
            }
        }
        self.bind(pass);
    }

    fn assemble(&self) -> Result<Vec<SockFilter>, String> {
        let n = self.items.len();
        let mut long = vec![false; n];
        let mut at = vec![0usize; n];
        let mut label_at = vec![usize::MAX; self.labels];
        // Lengthen the jumps that do not reach until none is left.
        loop {
            let mut pos = 0;
            for (i, it) in self.items.iter().enumerate() {
                at[i] = pos;
                pos += match it {
                    Item::Insn(_) | Item::Ja(_) => 1,
                    Item::Jump { .. } if long[i] => 3,
                    Item::Jump { .. } => 1,
                    Item::Bind(l) => {
                        label_at[l.0] = pos;
                        0
                    }
                };
            }
            let mut changed = false;
            for (i, it) in self.items.iter().enumerate() {
                if let Item::Jump { jt, jf, .. } = it {
                    if long[i] {
                        continue;
                    }
                    let far = |l: &Label| label_at[l.0].saturating_sub(at[i] + 1) > 255;
                    if far(jt) || far(jf) {
                        long[i] = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let mut out = Vec::new();
        let dist = |from: usize, l: &Label| -> Result<u32, String> {
            let to = label_at[l.0];
            if to == usize::MAX || to <= from {
                return Err("internal error: a seccomp filter jump goes backwards".into());
            }
            Ok((to - from - 1) as u32)
        };
        for (i, it) in self.items.iter().enumerate() {
            match it {
                Item::Insn(f) => out.push(*f),
                Item::Ja(l) => out.push(SockFilter::new(
                    bpf::JMP | bpf::JA,
                    0,
                    0,
                    dist(at[i], l)?,
                )),
                Item::Jump { op, k, jt, jf } if !long[i] => out.push(SockFilter::new(
                    bpf::JMP | op | bpf::K,
                    dist(at[i], jt)? as u8,
                    dist(at[i], jf)? as u8,
                    *k,
                )),
                Item::Jump { op, k, jt, jf } => {
                    out.push(SockFilter::new(bpf::JMP | op | bpf::K, 0, 1, *k));
                    out.push(SockFilter::new(bpf::JMP | bpf::JA, 0, 0, dist(at[i] + 1, jt)?));
                    out.push(SockFilter::new(bpf::JMP | bpf::JA, 0, 0, dist(at[i] + 2, jf)?));
                }
                Item::Bind(_) => {}
            }
        }
        Ok(out)
    }
}

// ----- Docker's and podman's profile format -----

/// A seccomp profile as Docker and podman read it (moby's `default.json`
/// format): an OCI `linux.seccomp` object, plus `archMap` (the
/// architectures by native architecture) and rules kept or dropped by the
/// container's capabilities, architecture and kernel (`includes`,
/// `excludes`), and the older `name` for `names`. A plain OCI object
/// reads as one too.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    default_action: Option<Action>,
    default_errno_ret: Option<u32>,
    architectures: Option<Vec<String>>,
    arch_map: Option<Vec<ArchMapEntry>>,
    flags: Option<Vec<String>>,
    listener_path: Option<String>,
    syscalls: Option<Vec<ProfileSyscall>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMapEntry {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileSyscall {
    names: Option<Vec<String>>,
    name: Option<String>,
    action: Action,
    errno_ret: Option<u32>,
    args: Option<Vec<LinuxSeccompArg>>,
    includes: Option<Condition>,
    excludes: Option<Condition>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Condition {
    caps: Option<Vec<String>>,
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

/// What a profile's conditional rules are resolved against.
#[derive(Clone, Debug)]
pub struct Conditions {
    /// The container's bounding capabilities (`CAP_SYS_ADMIN` or
    /// `SYS_ADMIN`).
    pub caps: Vec<String>,
    /// The container's architecture, as moby names it (`amd64`).
    pub arch: String,
    /// The kernel version the container sees (major, minor).
    pub kernel: (u64, u64),
}

impl Conditions {
    /// A sandbox's: x86-64, the sentry's kernel version, and `caps`.
    pub fn sandbox(caps: Vec<String>) -> Conditions {
        Conditions {
            caps,
            arch: "amd64".into(),
            kernel: parse_kernel(sentry::kernel::RELEASE).unwrap_or((0, 0)),
        }
    }
}

/// Every capability Linux 6.x knows, by name.
pub const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// "6.6.0-foo" -> (6, 6).
fn parse_kernel(s: &str) -> Option<(u64, u64)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

fn cap_name(c: &str) -> String {
    let c = c.trim().to_ascii_uppercase();
    if c.starts_with("CAP_") {
        c
    } else {
        format!("CAP_{c}")
    }
}

/// The libseccomp token of moby's native architecture names.
fn native_scmp_arch(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "amd64" => "SCMP_ARCH_X86_64",
        "x86" => "SCMP_ARCH_X86",
        "arm64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => return None,
    })
}

fn parse_arch(s: &str) -> Result<Arch, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("unknown seccomp architecture {s:?}"))
}

impl Profile {
    /// Reads a profile (JSON).
    pub fn parse(json: &str) -> Result<Profile, String> {
        serde_json::from_str(json).map_err(|e| format!("not a seccomp profile: {e}"))
    }

    /// The OCI `linux.seccomp` object for a container, as moby makes it:
    /// `archMap`'s entry for the container's architecture, and the rules
    /// whose `includes` hold and `excludes` do not. None for a profile
    /// with neither a default action nor rules (no filter, as moby).
    pub fn resolve(&self, cond: &Conditions) -> Result<Option<LinuxSeccomp>, String> {
        let rules = self.syscalls.as_deref().unwrap_or(&[]);
        let Some(default_action) = self.default_action else {
            if rules.is_empty() {
                return Ok(None);
            }
            return Err("the seccomp profile has rules but no defaultAction".into());
        };
        let archs = self.architectures.as_deref().unwrap_or(&[]);
        let map = self.arch_map.as_deref().unwrap_or(&[]);
        if !archs.is_empty() && !map.is_empty() {
            return Err("the seccomp profile has both 'architectures' and 'archMap': use one".into());
        }
        let mut arches = archs
            .iter()
            .map(|a| parse_arch(a))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(native) = native_scmp_arch(&cond.arch) {
            if let Some(e) = map.iter().find(|e| e.architecture == native) {
                arches.push(parse_arch(&e.architecture)?);
                for s in e.sub_architectures.iter().flatten() {
                    arches.push(parse_arch(s)?);
                }
            }
        }
        let mut flags = Vec::new();
        for f in self.flags.iter().flatten() {
            flags.push(match f.as_str() {
                "SECCOMP_FILTER_FLAG_LOG" => Flag::SeccompFilterFlagLog,
                "SECCOMP_FILTER_FLAG_TSYNC" => Flag::SeccompFilterFlagTsync,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => Flag::SeccompFilterFlagSpecAllow,
                "SECCOMP_FILTER_FLAG_NEW_LISTENER" | "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => {
                    return Err(format!(
                        "seccomp flag {f} is refused: it is for user notification \
                         (SCMP_ACT_NOTIFY), which runsc cannot do"
                    ))
                }
                other => {
                    return Err(format!(
                        "seccomp flag {other} is not known to runsc (it accepts \
                         SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_TSYNC and \
                         SECCOMP_FILTER_FLAG_SPEC_ALLOW)"
                    ))
                }
            });
        }
        let caps: Vec<String> = cond.caps.iter().map(|c| cap_name(c)).collect();
        let has_cap = |c: &String| caps.contains(&cap_name(c));
        let kernel_at_least = |v: &str| -> Result<bool, String> {
            let want = parse_kernel(v)
                .filter(|_| v.split('.').count() == 2)
                .ok_or_else(|| {
                    format!("invalid minKernel {v:?}: expected \"<kernel>.<major>\"")
                })?;
            Ok(cond.kernel >= want)
        };
        let mut out = Vec::new();
        for r in rules {
            if r.name.is_some() && r.names.as_ref().is_some_and(|n| !n.is_empty()) {
                return Err(
                    "a seccomp rule has both 'name' and 'names': use one ('names')".into(),
                );
            }
            if let Some(ex) = &r.excludes {
                if ex.arches.iter().flatten().any(|a| *a == cond.arch)
                    || ex.caps.iter().flatten().any(has_cap)
                {
                    continue;
                }
                if let Some(k) = &ex.min_kernel {
                    if !k.is_empty() && kernel_at_least(k)? {
                        continue;
                    }
                }
            }
            if let Some(inc) = &r.includes {
                let arches = inc.arches.as_deref().unwrap_or(&[]);
                if !arches.is_empty() && !arches.contains(&cond.arch) {
                    continue;
                }
                if !inc.caps.iter().flatten().all(has_cap) {
                    continue;
                }
                if let Some(k) = &inc.min_kernel {
                    if !k.is_empty() && !kernel_at_least(k)? {
                        continue;
                    }
                }
            }
            let mut s = LinuxSyscall::default();
            s.set_names(match &r.name {
                Some(n) => vec![n.clone()],
                None => r.names.clone().unwrap_or_default(),
            });
            s.set_action(r.action);
            s.set_errno_ret(r.errno_ret);
            s.set_args(r.args.clone());
            out.push(s);
        }
        let mut s = LinuxSeccomp::default();
        s.set_default_action(default_action);
        s.set_default_errno_ret(self.default_errno_ret);
        s.set_architectures((!arches.is_empty()).then_some(arches));
        s.set_flags((!flags.is_empty()).then_some(flags));
        s.set_listener_path(self.listener_path.clone().map(Into::into));
        s.set_syscalls(Some(out));
        Ok(Some(s))
    }
}
