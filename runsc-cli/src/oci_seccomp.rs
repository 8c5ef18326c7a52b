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
//!   `(arg & value) == valueTwo`. (libseccomp before 2.6.1 could merge
//!   64-bit comparisons of different rules on one argument wrongly, and
//!   let calls through that no rule allows; here each rule keeps its
//!   meaning.)
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
            return Err(
                "SCMP_ACT_NOTIFY cannot be enforced by runsc: it hands the system call \
                        to a seccomp agent, and no agent can answer for the sentry's guest; \
                        use another action (SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, ...)"
                    .into(),
            )
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
            return Err(
                "SCMP_ACT_NOTIFY cannot be the default action (and runsc cannot \
                        enforce it at all: no seccomp agent can answer for the sentry's guest)"
                    .into(),
            );
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
                Item::Ja(l) => out.push(SockFilter::new(bpf::JMP | bpf::JA, 0, 0, dist(at[i], l)?)),
                Item::Jump { op, k, jt, jf } if !long[i] => out.push(SockFilter::new(
                    bpf::JMP | op | bpf::K,
                    dist(at[i], jt)? as u8,
                    dist(at[i], jf)? as u8,
                    *k,
                )),
                Item::Jump { op, k, jt, jf } => {
                    out.push(SockFilter::new(bpf::JMP | op | bpf::K, 0, 1, *k));
                    out.push(SockFilter::new(
                        bpf::JMP | bpf::JA,
                        0,
                        0,
                        dist(at[i] + 1, jt)?,
                    ));
                    out.push(SockFilter::new(
                        bpf::JMP | bpf::JA,
                        0,
                        0,
                        dist(at[i] + 2, jf)?,
                    ));
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
            return Err(
                "the seccomp profile has both 'architectures' and 'archMap': use one".into(),
            );
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
                .ok_or_else(|| format!("invalid minKernel {v:?}: expected \"<kernel>.<major>\""))?;
            Ok(cond.kernel >= want)
        };
        let mut out = Vec::new();
        for r in rules {
            if r.name.is_some() && r.names.as_ref().is_some_and(|n| !n.is_empty()) {
                return Err("a seccomp rule has both 'name' and 'names': use one ('names')".into());
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

#[cfg(test)]
mod tests {
    use super::*;
    use sentry::kernel::seccomp::{run, seccomp_data};

    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;

    fn oci(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    fn nr(name: &str) -> u64 {
        syscall_number(name).unwrap() as u64
    }

    /// The program's answer for a call on `arch`.
    fn eval_arch(prog: &[SockFilter], arch: u32, nr: u64, args: [u64; 6]) -> u32 {
        let mut d = seccomp_data(nr, 0x7f00_1234_5678, &args);
        d[1] = arch;
        run(prog, &d)
    }

    fn eval(prog: &[SockFilter], nr: u64, args: [u64; 6]) -> u32 {
        eval_arch(prog, AUDIT_ARCH_X86_64, nr, args)
    }

    const ERRNO: u32 = SECCOMP_RET_ERRNO;

    #[test]
    fn names_come_from_the_sentrys_table() {
        assert_eq!(syscall_number("read"), Some(0));
        assert_eq!(syscall_number("getpid"), Some(39));
        assert_eq!(syscall_number("newfstatat"), Some(262));
        assert_eq!(syscall_number("clone3"), Some(435));
        // Not x86-64's.
        assert_eq!(syscall_number("socketcall"), None);
        assert_eq!(syscall_number(""), None);
    }

    #[test]
    fn default_actions_and_errno_values() {
        let p = compile(&oci(r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#)).unwrap();
        assert_eq!(eval(&p, 39, [0; 6]), ERRNO | libc::EPERM as u32);
        let p = compile(&oci(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}"#,
        ))
        .unwrap();
        assert_eq!(eval(&p, 0, [0; 6]), ERRNO | 38);
        for (name, want) in [
            ("SCMP_ACT_ALLOW", SECCOMP_RET_ALLOW),
            ("SCMP_ACT_LOG", SECCOMP_RET_LOG),
            ("SCMP_ACT_KILL", SECCOMP_RET_KILL_THREAD),
            ("SCMP_ACT_KILL_THREAD", SECCOMP_RET_KILL_THREAD),
            ("SCMP_ACT_KILL_PROCESS", SECCOMP_RET_KILL_PROCESS),
            ("SCMP_ACT_TRAP", SECCOMP_RET_TRAP),
            ("SCMP_ACT_TRACE", SECCOMP_RET_TRACE | libc::EPERM as u32),
        ] {
            let p = compile(&oci(&format!(r#"{{"defaultAction": "{name}"}}"#))).unwrap();
            assert_eq!(eval(&p, 1, [0; 6]), want, "{name}");
        }
        let e = compile(&oci(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}"#,
        ))
        .unwrap_err();
        assert!(e.contains("70000"), "{e}");
    }

    #[test]
    fn rule_actions() {
        let p = compile(&oci(r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77},
                {"names": ["getuid", "getgid"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["getsid"], "action": "SCMP_ACT_KILL"},
                {"names": ["setsid"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["getpgid"], "action": "SCMP_ACT_TRAP"},
                {"names": ["getpgrp"], "action": "SCMP_ACT_TRACE", "errnoRet": 9},
                {"names": ["sched_yield"], "action": "SCMP_ACT_LOG"},
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}
            ]}"#))
        .unwrap();
        assert_eq!(eval(&p, nr("getppid"), [0; 6]), ERRNO | 77);
        assert_eq!(eval(&p, nr("getuid"), [0; 6]), ERRNO | 1);
        assert_eq!(eval(&p, nr("getgid"), [0; 6]), ERRNO | 1);
        assert_eq!(eval(&p, nr("getsid"), [0; 6]), SECCOMP_RET_KILL_THREAD);
        assert_eq!(eval(&p, nr("setsid"), [0; 6]), SECCOMP_RET_KILL_PROCESS);
        assert_eq!(eval(&p, nr("getpgid"), [0; 6]), SECCOMP_RET_TRAP);
        assert_eq!(eval(&p, nr("getpgrp"), [0; 6]), SECCOMP_RET_TRACE | 9);
        assert_eq!(eval(&p, nr("sched_yield"), [0; 6]), SECCOMP_RET_LOG);
        assert_eq!(eval(&p, nr("getpid"), [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(eval(&p, nr("read"), [0; 6]), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn notify_is_refused_clearly() {
        let e = compile(&oci(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#))
        .unwrap_err();
        assert!(e.contains("SCMP_ACT_NOTIFY cannot be enforced"), "{e}");
        assert!(e.contains("mkdir"), "{e}");
        let e = compile(&oci(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#)).unwrap_err();
        assert!(e.contains("SCMP_ACT_NOTIFY"), "{e}");
    }

    #[test]
    fn bad_rules_are_errors_and_unknown_names_are_skipped() {
        let e = compile(&oci(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read", ""], "action": "SCMP_ACT_ERRNO"}]}"#))
        .unwrap_err();
        assert!(e.contains("empty syscall name"), "{e}");
        let e = compile(&oci(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#))
        .unwrap_err();
        assert!(e.contains("index 6"), "{e}");
        let p = compile(&oci(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["socketcall", "no_such_call", "read"], "action": "SCMP_ACT_ERRNO"}]}"#))
        .unwrap();
        assert_eq!(eval(&p, 0, [0; 6]), ERRNO | 1);
    }

    /// The argument rules of `op` on argument 1 against `value`.
    fn one_cond(op: &str, value: u64, value_two: u64) -> Vec<SockFilter> {
        compile(&oci(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5, "syscalls": [
                {{"names": ["lseek"], "action": "SCMP_ACT_ALLOW",
                  "args": [{{"index": 1, "value": {value}, "valueTwo": {value_two},
                             "op": "{op}"}}]}}]}}"#
        )))
        .unwrap()
    }

    #[test]
    fn comparisons_are_64_bits_unsigned() {
        let v: u64 = 0x0000_0001_0000_0010;
        let probes: [u64; 10] = [
            0,
            0x10,
            0x11,
            0x0000_0001_0000_000f,
            v,
            0x0000_0001_0000_0011,
            0x0000_0002_0000_0000,
            0x0000_0000_ffff_ffff,
            u64::MAX,
            0x8000_0000_0000_0010,
        ];
        for (op, f) in [
            ("SCMP_CMP_EQ", (|a, b| a == b) as fn(u64, u64) -> bool),
            ("SCMP_CMP_NE", |a, b| a != b),
            ("SCMP_CMP_LT", |a, b| a < b),
            ("SCMP_CMP_LE", |a, b| a <= b),
            ("SCMP_CMP_GT", |a, b| a > b),
            ("SCMP_CMP_GE", |a, b| a >= b),
        ] {
            let p = one_cond(op, v, 0);
            for a in probes {
                let want = if f(a, v) {
                    SECCOMP_RET_ALLOW
                } else {
                    ERRNO | 5
                };
                assert_eq!(eval(&p, 8, [3, a, 0, 0, 0, 0]), want, "{op} {a:#x}");
            }
            // Only argument 1 counts; other syscalls get the default.
            assert_eq!(eval(&p, 0, [3, v, 0, 0, 0, 0]), ERRNO | 5);
        }
        // (arg & value) == valueTwo, both halves.
        let p = one_cond(
            "SCMP_CMP_MASKED_EQ",
            0xff00_0000_0000_00f0,
            0x1200_0000_0000_0030,
        );
        for (a, ok) in [
            (0x1200_0000_0000_0030u64, true),
            (0x12ff_ffff_ffff_ff3f, true),
            (0x1300_0000_0000_0030, false),
            (0x1200_0000_0000_0020, false),
            (0, false),
        ] {
            let want = if ok { SECCOMP_RET_ALLOW } else { ERRNO | 5 };
            assert_eq!(eval(&p, 8, [0, a, 0, 0, 0, 0]), want, "{a:#x}");
        }
    }

    #[test]
    fn conditions_of_a_rule_and_across_rules() {
        let p = compile(&oci(r#"{
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5,
            "syscalls": [
                {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 101,
                 "args": [{"index": 1, "value": 20, "op": "SCMP_CMP_EQ"},
                          {"index": 2, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["lseek"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_LT"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                          {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
            ]}"#))
        .unwrap();
        // Both conditions of the first rule.
        assert_eq!(eval(&p, 8, [0, 20, 1, 0, 0, 0]), ERRNO | 101);
        assert_eq!(eval(&p, 8, [0, 20, 2, 0, 0, 0]), ERRNO | 5);
        assert_eq!(eval(&p, 8, [0, 21, 1, 0, 0, 0]), ERRNO | 5);
        assert_eq!(eval(&p, 8, [0, 9, 1, 0, 0, 0]), SECCOMP_RET_ALLOW);
        // Two conditions on one argument: either (runc's rule).
        let pers = nr("personality");
        assert_eq!(eval(&p, pers, [0, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(eval(&p, pers, [8, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(eval(&p, pers, [9, 0, 0, 0, 0, 0]), ERRNO | 5);
        assert_eq!(eval(&p, pers, [1 << 32, 0, 0, 0, 0, 0]), ERRNO | 5);
    }

    #[test]
    fn unconditional_rules_win_and_redundant_ones_are_skipped() {
        let p = compile(&oci(r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
                 "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]},
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 8},
                {"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9,
                 "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]},
                {"names": ["close"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["close"], "action": "SCMP_ACT_TRAP",
                 "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]}
            ]}"#))
        .unwrap();
        assert_eq!(eval(&p, 0, [3, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(eval(&p, 1, [3, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        // close's unconditional rule is the default action: skipped, so
        // only its argument rule is left.
        assert_eq!(eval(&p, 3, [3, 0, 0, 0, 0, 0]), SECCOMP_RET_TRAP);
        assert_eq!(eval(&p, 3, [4, 0, 0, 0, 0, 0]), ERRNO | 1);
    }

    #[test]
    fn architectures() {
        let restrictive = |arches: &str| {
            compile(&oci(&format!(
                r#"{{"defaultAction": "SCMP_ACT_ERRNO", "architectures": [{arches}],
                    "syscalls": [{{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}}]}}"#
            )))
            .unwrap()
        };
        let permissive = |arches: &str| {
            compile(&oci(&format!(
                r#"{{"defaultAction": "SCMP_ACT_ALLOW", "architectures": [{arches}],
                    "syscalls": [{{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}}]}}"#
            )))
            .unwrap()
        };
        let eperm = ERRNO | 1;
        let kill = SECCOMP_RET_KILL_THREAD;
        // Not listed: foreign calls and x32 calls are killed.
        for p in [restrictive(""), permissive("")] {
            assert_eq!(eval_arch(&p, AUDIT_ARCH_I386, 20, [0; 6]), kill);
            assert_eq!(eval_arch(&p, AUDIT_ARCH_AARCH64, 39, [0; 6]), kill);
            assert_eq!(eval(&p, 0x4000_0000 | 39, [0; 6]), kill);
        }
        // Listed: the default action when it denies, so that none of
        // them gets through unchecked ...
        let all = r#""SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32""#;
        let p = restrictive(all);
        assert_eq!(eval(&p, 39, [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(eval_arch(&p, AUDIT_ARCH_I386, 20, [0; 6]), eperm);
        assert_eq!(eval_arch(&p, AUDIT_ARCH_I386, 39, [0; 6]), eperm);
        assert_eq!(eval(&p, 0x4000_0000 | 39, [0; 6]), eperm);
        assert_eq!(eval_arch(&p, AUDIT_ARCH_AARCH64, 39, [0; 6]), kill);
        // ... and killed when it allows (their rules cannot be checked).
        let p = permissive(all);
        assert_eq!(eval(&p, 39, [0; 6]), eperm);
        assert_eq!(eval(&p, 40, [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(eval_arch(&p, AUDIT_ARCH_I386, 20, [0; 6]), kill);
        assert_eq!(eval(&p, 0x4000_0000 | 39, [0; 6]), kill);
        // Syscall -1 gets the default action.
        assert_eq!(eval(&restrictive(""), u32::MAX as u64, [0; 6]), eperm);
        assert_eq!(
            eval(&permissive(""), u32::MAX as u64, [0; 6]),
            SECCOMP_RET_ALLOW
        );
        // The native architecture by its other name.
        let p = restrictive(r#""SCMP_ARCH_NATIVE""#);
        assert_eq!(eval(&p, 39, [0; 6]), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn syscalls_newer_than_the_profile_fail_with_enosys() {
        let p = compile(&oci(r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO"}]}"#))
        .unwrap();
        assert_eq!(eval(&p, 39, [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(eval(&p, 434, [0; 6]), ERRNO | 1);
        // clone3 (435) is named, even by a rule that was skipped.
        assert_eq!(eval(&p, 435, [0; 6]), ERRNO | 1);
        assert_eq!(eval(&p, 436, [0; 6]), ERRNO | libc::ENOSYS as u32);
        assert_eq!(eval(&p, 1000, [0; 6]), ERRNO | libc::ENOSYS as u32);
        // Not when unlisted calls are allowed.
        let p = compile(&oci(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]}"#))
        .unwrap();
        assert_eq!(eval(&p, 1000, [0; 6]), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn flags() {
        let s = oci(r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                      "SECCOMP_FILTER_FLAG_TSYNC"]}"#);
        let f = guest_filter(&s).unwrap();
        assert_eq!(f.flags, FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_TSYNC);
        let p = Profile::parse(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
        )
        .unwrap();
        let e = p.resolve(&Conditions::sandbox(vec![])).unwrap_err();
        assert!(
            e.contains("refused") && e.contains("SCMP_ACT_NOTIFY"),
            "{e}"
        );
        let p = Profile::parse(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}"#,
        )
        .unwrap();
        let e = p.resolve(&Conditions::sandbox(vec![])).unwrap_err();
        assert!(e.contains("not known"), "{e}");
    }

    /// The filter as a plain reading of the profile: what the compiled
    /// program must answer.
    fn reference(s: &LinuxSeccomp, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let da = s.default_action();
        let default = action_value(da, s.default_errno_ret()).unwrap();
        let denies = !matches!(da, Action::ScmpActAllow | Action::ScmpActLog);
        let listed = |a: Arch| s.architectures().iter().flatten().any(|x| *x == a);
        if arch != AUDIT_ARCH_X86_64 {
            let foreign = s
                .architectures()
                .iter()
                .flatten()
                .any(|a| !matches!(a, Arch::ScmpArchX32) && *a as u32 == arch);
            return if foreign && denies { default } else { BAD_ARCH };
        }
        if nr == u32::MAX {
            return default;
        }
        if nr >= X32_SYSCALL_BIT {
            return if listed(Arch::ScmpArchX32) && denies {
                default
            } else {
                BAD_ARCH
            };
        }
        let calls: Vec<&LinuxSyscall> = s.syscalls().iter().flatten().collect();
        let named = |c: &LinuxSyscall| c.names().iter().any(|n| syscall_number(n) == Some(nr));
        let max = calls
            .iter()
            .flat_map(|c| c.names().iter().filter_map(|n| syscall_number(n)))
            .max();
        if !is_allow_like(da) && max.is_some_and(|m| nr > m) {
            return SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        }
        let act = |c: &LinuxSyscall| action_value(c.action(), c.errno_ret()).unwrap();
        let live: Vec<&&LinuxSyscall> = calls
            .iter()
            .filter(|c| named(c) && act(c) != default)
            .collect();
        if let Some(c) = live
            .iter()
            .find(|c| c.args().as_deref().unwrap_or(&[]).is_empty())
        {
            return act(c);
        }
        let holds = |a: &LinuxSeccompArg| {
            let x = args[a.index()];
            let v = a.value();
            match a.op() {
                Op::ScmpCmpEq => x == v,
                Op::ScmpCmpNe => x != v,
                Op::ScmpCmpLt => x < v,
                Op::ScmpCmpLe => x <= v,
                Op::ScmpCmpGt => x > v,
                Op::ScmpCmpGe => x >= v,
                Op::ScmpCmpMaskedEq => x & v == a.value_two().unwrap_or(0),
            }
        };
        for c in live {
            let a = c.args().as_deref().unwrap();
            let mut idx: Vec<usize> = a.iter().map(|x| x.index()).collect();
            idx.sort();
            idx.dedup();
            let ok = if idx.len() < a.len() {
                a.iter().any(holds)
            } else {
                a.iter().all(holds)
            };
            if ok {
                return act(c);
            }
        }
        default
    }

    /// xorshift64*.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        /// A value near the interesting boundaries.
        fn value(&mut self) -> u64 {
            let base = [0, 1, 2, 0xffff_ffff, 1 << 32, u64::MAX, 1 << 63, 40];
            let b = base[self.below(base.len() as u64) as usize];
            b.wrapping_add(self.below(3)).wrapping_sub(1)
        }
    }

    #[test]
    fn random_profiles_agree_with_a_plain_reading() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let names = [
            "read", "write", "lseek", "getpid", "mmap", "clone3", "ioctl", "rseq",
        ];
        let actions = [
            r#""action": "SCMP_ACT_ALLOW""#,
            r#""action": "SCMP_ACT_ERRNO", "errnoRet": 11"#,
            r#""action": "SCMP_ACT_ERRNO""#,
            r#""action": "SCMP_ACT_KILL_PROCESS""#,
            r#""action": "SCMP_ACT_TRAP""#,
            r#""action": "SCMP_ACT_LOG""#,
        ];
        let ops = [
            "SCMP_CMP_EQ",
            "SCMP_CMP_NE",
            "SCMP_CMP_LT",
            "SCMP_CMP_LE",
            "SCMP_CMP_GT",
            "SCMP_CMP_GE",
            "SCMP_CMP_MASKED_EQ",
        ];
        let defaults = [
            r#""defaultAction": "SCMP_ACT_ERRNO""#,
            r#""defaultAction": "SCMP_ACT_ALLOW""#,
            r#""defaultAction": "SCMP_ACT_KILL_PROCESS""#,
        ];
        let arch_sets = [
            "",
            r#", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]"#,
        ];
        for round in 0..300 {
            let mut rules = Vec::new();
            for _ in 0..rng.below(8) {
                let mut ns = Vec::new();
                for _ in 0..1 + rng.below(3) {
                    ns.push(format!(
                        "\"{}\"",
                        names[rng.below(names.len() as u64) as usize]
                    ));
                }
                let mut args = Vec::new();
                for _ in 0..rng.below(3) {
                    args.push(format!(
                        r#"{{"index": {}, "value": {}, "valueTwo": {}, "op": "{}"}}"#,
                        rng.below(3),
                        rng.value(),
                        rng.value(),
                        ops[rng.below(ops.len() as u64) as usize]
                    ));
                }
                rules.push(format!(
                    r#"{{"names": [{}], {}, "args": [{}]}}"#,
                    ns.join(","),
                    actions[rng.below(actions.len() as u64) as usize],
                    args.join(",")
                ));
            }
            let json = format!(
                r#"{{{}{}, "syscalls": [{}]}}"#,
                defaults[rng.below(3) as usize],
                arch_sets[rng.below(2) as usize],
                rules.join(",")
            );
            let s = oci(&json);
            let p = compile(&s).unwrap();
            for _ in 0..200 {
                let arch =
                    [AUDIT_ARCH_X86_64, AUDIT_ARCH_X86_64, AUDIT_ARCH_I386][rng.below(3) as usize];
                let nr = match rng.below(10) {
                    0 => u32::MAX,
                    1 => 0x4000_0000 | rng.below(20) as u32,
                    2 => rng.below(500) as u32,
                    _ => syscall_number(names[rng.below(names.len() as u64) as usize]).unwrap(),
                };
                let mut args = [0u64; 6];
                for a in args.iter_mut().take(3) {
                    *a = rng.value();
                }
                assert_eq!(
                    eval_arch(&p, arch, nr as u64, args),
                    reference(&s, arch, nr, args),
                    "round {round}: {json}\narch {arch:#x} nr {nr} args {args:x?}"
                );
            }
        }
    }

    #[test]
    fn far_jumps_are_relaxed() {
        // Hundreds of argument blocks: the search's jumps to the later
        // ones, and across them, are far beyond 255 instructions.
        let mut rules = Vec::new();
        for n in sentry::syscalls::names::NAMES
            .iter()
            .filter(|n| !n.is_empty())
        {
            rules.push(format!(
                r#"{{"names": ["{n}"], "action": "SCMP_ACT_ALLOW",
                    "args": [{{"index": 0, "value": 7, "op": "SCMP_CMP_GE"}}]}}"#
            ));
        }
        let s = oci(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{}]}}"#,
            rules.join(",")
        ));
        let p = compile(&s).unwrap();
        assert!(p.len() > 1000, "{}", p.len());
        for nr in 0..470u32 {
            for a in [0, 6, 7, 8, 1 << 40] {
                let args = [a, 0, 0, 0, 0, 0];
                assert_eq!(
                    eval(&p, nr as u64, args),
                    reference(&s, AUDIT_ARCH_X86_64, nr, args),
                    "nr {nr} arg {a}"
                );
            }
        }
    }

    fn docker_default() -> Profile {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/docker-default-seccomp.json"
        );
        Profile::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn dockers_default_profile() {
        const CLONE_NEWUSER: u64 = 0x1000_0000;
        let fork_flags = 0x0120_0011;
        let eperm = ERRNO | 1;
        for (caps, admin) in [
            (vec![], false),
            (
                vec!["CAP_CHOWN".to_string(), "SYS_PTRACE".to_string()],
                false,
            ),
            (ALL_CAPS.iter().map(|c| c.to_string()).collect(), true),
        ] {
            let s = docker_default()
                .resolve(&Conditions::sandbox(caps.clone()))
                .unwrap()
                .unwrap();
            let p = compile(&s).unwrap();
            // Compact: far below BPF_MAXINSNS.
            assert!(p.len() < 1000, "{} instructions", p.len());
            assert_eq!(eval(&p, nr("getpid"), [0; 6]), SECCOMP_RET_ALLOW);
            assert_eq!(eval(&p, nr("execve"), [0; 6]), SECCOMP_RET_ALLOW);
            assert_eq!(eval(&p, nr("add_key"), [0; 6]), eperm);
            assert_eq!(eval(&p, nr("kexec_load"), [0; 6]), eperm);
            assert_eq!(
                eval(&p, nr("clone"), [fork_flags, 0, 0, 0, 0, 0]),
                SECCOMP_RET_ALLOW
            );
            // Namespaces and mounts need CAP_SYS_ADMIN.
            let want = if admin { SECCOMP_RET_ALLOW } else { eperm };
            assert_eq!(eval(&p, nr("clone"), [CLONE_NEWUSER, 0, 0, 0, 0, 0]), want);
            assert_eq!(eval(&p, nr("mount"), [0; 6]), want);
            assert_eq!(eval(&p, nr("unshare"), [0; 6]), want);
            let clone3 = if admin {
                SECCOMP_RET_ALLOW
            } else {
                ERRNO | libc::ENOSYS as u32
            };
            assert_eq!(eval(&p, nr("clone3"), [0; 6]), clone3);
            // ptrace: with minKernel 4.8, which the sentry's 6.6 is past.
            assert_eq!(eval(&p, nr("ptrace"), [0; 6]), SECCOMP_RET_ALLOW);
            // x86-64's own; AF_VSOCK (40) sockets are denied.
            assert_eq!(eval(&p, nr("arch_prctl"), [0; 6]), SECCOMP_RET_ALLOW);
            assert_eq!(
                eval(&p, nr("socket"), [1, 0, 0, 0, 0, 0]),
                SECCOMP_RET_ALLOW
            );
            assert_eq!(eval(&p, nr("socket"), [40, 0, 0, 0, 0, 0]), eperm);
            assert_eq!(
                eval(&p, nr("socket"), [41, 0, 0, 0, 0, 0]),
                SECCOMP_RET_ALLOW
            );
            assert_eq!(
                eval(&p, nr("personality"), [8, 0, 0, 0, 0, 0]),
                SECCOMP_RET_ALLOW
            );
            assert_eq!(eval(&p, nr("personality"), [1, 0, 0, 0, 0, 0]), eperm);
            // i386 and x32 calls never get through unchecked.
            assert_eq!(eval_arch(&p, AUDIT_ARCH_I386, 20, [0; 6]), eperm);
            assert_eq!(eval(&p, 0x4000_0000 | 39, [0; 6]), eperm);
            // Every number agrees with the plain reading.
            for n in (0..500u32).chain([u32::MAX, 0x4000_0001]) {
                for args in [[0; 6], [40, 0, 0, 0, 0, 0], [CLONE_NEWUSER, 1, 0, 0, 0, 0]] {
                    assert_eq!(
                        eval(&p, n as u64, args),
                        reference(&s, AUDIT_ARCH_X86_64, n, args),
                        "caps {caps:?} nr {n} args {args:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn profiles_resolve_as_moby_does() {
        let p = Profile::parse(
            r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64",
                 "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_LOONGARCH64", "subArchitectures": null}
            ],
            "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                {"name": "getppid", "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["chroot"], "action": "SCMP_ACT_ALLOW",
                 "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"arches": ["amd64", "x32"]}},
                {"names": ["set_tls"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"arches": ["arm"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"minKernel": "4.8"}},
                {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"minKernel": "99.0"}},
                {"names": ["uselib"], "action": "SCMP_ACT_ALLOW",
                 "excludes": {"minKernel": "5.0"}}
            ]}"#,
        )
        .unwrap();
        let names = |caps: &[&str]| -> Vec<String> {
            let c = Conditions::sandbox(caps.iter().map(|c| c.to_string()).collect());
            let s = p.resolve(&c).unwrap().unwrap();
            assert_eq!(
                s.architectures().clone().unwrap(),
                vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
            );
            s.syscalls()
                .iter()
                .flatten()
                .flat_map(|r| r.names().clone())
                .collect()
        };
        assert_eq!(
            names(&[]),
            ["getpid", "getppid", "chroot", "arch_prctl", "ptrace"]
        );
        assert_eq!(
            names(&["sys_admin"]),
            ["getpid", "getppid", "mount", "arch_prctl", "ptrace"]
        );
        // Both architectures forms, both name forms: refused.
        let both = Profile::parse(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
        )
        .unwrap();
        assert!(both.resolve(&Conditions::sandbox(vec![])).is_err());
        let both = Profile::parse(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        assert!(both.resolve(&Conditions::sandbox(vec![])).is_err());
        // Nothing at all: no filter.
        let none = Profile::parse("{}").unwrap();
        assert!(none
            .resolve(&Conditions::sandbox(vec![]))
            .unwrap()
            .is_none());
        // A plain OCI object reads as a profile.
        let plain = Profile::parse(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3,
                   "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_NE"}]}]}"#,
        )
        .unwrap()
        .resolve(&Conditions::sandbox(vec![]))
        .unwrap()
        .unwrap();
        let f = guest_filter(&plain).unwrap();
        assert_eq!(f.flags, FLAG_LOG);
        assert_eq!(eval(&f.program, 39, [0; 6]), ERRNO | 3);
        assert_eq!(eval(&f.program, 39, [1, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
    }
}
