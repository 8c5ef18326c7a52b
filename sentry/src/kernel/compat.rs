//! What the sandbox tells its user about a run: the compatibility report
//! (every syscall the sentry answered `ENOSYS`, every argument value it
//! does not support, every behaviour it knows it only approximates), the
//! seccomp profile learned from the syscalls the workload made, and the
//! `--strace` filter and log.
//!
//! The unsupported cases are declared once, next to their handler, as an
//! [`Unsupported`] or [`Degraded`] constant: the handler answers through
//! it, and the report names what it says, so the two cannot drift apart.
//! Requests recorded by free text ([`super::Kernel::note_unimplemented`],
//! [`crate::syscalls::unimplemented`]) land in the same report, under the
//! syscall being handled.
//!
//! The report and the profile are written by the sentry when the sandbox
//! ends, to files `runsc` opened for it before it was confined (the
//! confined sentry can open nothing): [`Reports`].

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Display;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use serde_json::{json, Value};

use crate::errno::Errno;
use crate::kernel::task::Task;
use crate::syscalls::names::{NAMES, SYSCALL_COUNT};

/// An argument value (a command, an option, a flag, a family, ...) a
/// handler does not support, declared next to the handler: the handler
/// answers with [`Unsupported::answer`], which records it for the report.
pub struct Unsupported {
    /// The syscall the value is an argument of.
    pub syscall: &'static str,
    /// What the argument is ("command", "option", "family", ...).
    pub argument: &'static str,
    /// What the guest gets.
    pub answer: Errno,
}

impl Unsupported {
    /// Records `value` for the report and returns the declared answer.
    pub fn answer<T>(&self, t: &Task, value: impl Display) -> Result<T, Errno> {
        self.note(t, value);
        Err(self.answer)
    }

    /// Records `value` for the report (for a caller that answers itself).
    pub fn note(&self, t: &Task, value: impl Display) {
        let value = value.to_string();
        let name = format!("{} {} {}", self.syscall, self.argument, value);
        t.kernel.compat.record(
            Kind::Argument,
            name,
            self.syscall,
            self.argument,
            value,
            self.answer.name(),
        );
    }
}

/// A request the sentry carries out in a way it knows differs from
/// Linux's, declared next to its handler.
pub struct Degraded {
    pub syscall: &'static str,
    /// What the guest asked for.
    pub what: &'static str,
    /// What it gets instead.
    pub behaviour: &'static str,
}

impl Degraded {
    /// Records one such request for the report.
    pub fn note(&self, t: &Task) {
        let name = format!("{} {}", self.syscall, self.what);
        t.kernel.compat.record(
            Kind::Degraded,
            name,
            self.syscall,
            "",
            self.what.to_string(),
            self.behaviour,
        );
    }
}

/// What `runsc` asks the sentry to write and where (files it opened
/// before the sentry was confined).
#[derive(Default)]
pub struct Reports {
    /// `--compat-report`: where, and whether as a short summary for a
    /// person (`-`: standard error) rather than JSON.
    pub compat: Option<(File, bool)>,
    /// `--learn-profile`.
    pub profile: Option<File>,
    /// `--strace-log`: the trace goes there instead of the log.
    pub strace_log: Option<File>,
    /// `--strace-syscalls`: the numbers traced (None: all).
    pub strace_syscalls: Option<Vec<u64>>,
}

/// The number of a syscall by its name (as `--strace-syscalls` and
/// seccomp profiles name them).
pub fn syscall_number(name: &str) -> Option<u64> {
    NAMES
        .iter()
        .position(|n| !n.is_empty() && *n == name)
        .map(|i| i as u64)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A syscall number the sentry has no handler for.
    Syscall,
    /// An argument value a handler does not support.
    Argument,
    /// A behaviour the sentry approximates.
    Degraded,
}

/// The task whose syscall the current host thread handles (for notes
/// made without a task at hand).
#[derive(Clone, Copy)]
struct Current {
    nr: u64,
    pid: i32,
    comm: [u8; 16],
}

thread_local! {
    static CURRENT: Cell<Option<Current>> = const { Cell::new(None) };
}

/// How many processes an entry lists at most.
const MAX_PROCESSES: usize = 32;
/// How many of them the summary for a person names.
const SUMMARY_PROCESSES: usize = 6;

struct Entry {
    syscall: String,
    argument: &'static str,
    value: String,
    answer: &'static str,
    count: u64,
    processes: BTreeSet<(i32, String)>,
    first: Instant,
}

/// The sandbox-wide state of this module, in the kernel.
pub struct CompatState {
    boot: Instant,
    boot_wall: SystemTime,
    entries: Mutex<HashMap<(Kind, String), Entry>>,
    /// Whether a report is asked for (so notes find their process).
    reporting: bool,
    report: Mutex<Option<(File, bool)>>,
    profile: Mutex<Option<File>>,
    /// `--learn-profile`: what the workload made.
    pub learn: Option<Learn>,
    strace_filter: Option<Vec<bool>>,
    strace_log: Option<Mutex<File>>,
}

impl Default for CompatState {
    fn default() -> Self {
        CompatState::new(Reports::default())
    }
}

impl CompatState {
    pub fn new(r: Reports) -> CompatState {
        let strace_filter = r.strace_syscalls.map(|nrs| {
            let mut v = vec![false; SYSCALL_COUNT];
            for nr in nrs {
                if let Some(b) = v.get_mut(nr as usize) {
                    *b = true;
                }
            }
            v
        });
        CompatState {
            boot: Instant::now(),
            boot_wall: SystemTime::now(),
            entries: Mutex::new(HashMap::new()),
            reporting: r.compat.is_some(),
            report: Mutex::new(r.compat),
            learn: r.profile.is_some().then(Learn::default),
            profile: Mutex::new(r.profile),
            strace_filter,
            strace_log: r.strace_log.map(Mutex::new),
        }
    }

    /// Called as a syscall starts: remembers who makes it (when a report
    /// is asked for) and what it is (when a profile is).
    #[inline]
    pub fn enter(&self, t: &Task, nr: u64, args: &[u64; 6]) {
        if self.reporting {
            let mut comm = [0u8; 16];
            let n = t.comm.len().min(15);
            comm[..n].copy_from_slice(&t.comm[..n]);
            CURRENT.with(|c| {
                c.set(Some(Current {
                    nr,
                    pid: t.tg.tgid,
                    comm,
                }))
            });
        }
        if let Some(l) = &self.learn {
            l.record(nr, args);
        }
    }

    /// Whether `--strace` shows syscall `nr`.
    #[inline]
    pub fn traced(&self, nr: u64) -> bool {
        match &self.strace_filter {
            None => true,
            Some(v) => v.get(nr as usize).copied().unwrap_or(false),
        }
    }

    /// Writes one line of the trace: to `--strace-log`, or the log.
    pub fn strace_line(&self, line: &str) {
        match &self.strace_log {
            Some(f) => {
                let mut l = String::with_capacity(line.len() + 1);
                l.push_str(line);
                l.push('\n');
                let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
                let _ = f.write_all(l.as_bytes());
            }
            None => tracing::info!("{line}"),
        }
    }

    /// A syscall number without a handler, answered ENOSYS.
    pub fn unimplemented_syscall(&self, nr: u64) {
        let name = NAMES
            .get(nr as usize)
            .copied()
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        let what = match &name {
            Some(n) => format!("syscall {n} ({nr})"),
            None => format!("syscall {nr}"),
        };
        self.record(
            Kind::Syscall,
            what,
            name.as_deref().unwrap_or(""),
            "",
            nr.to_string(),
            "ENOSYS",
        );
    }

    /// A request named by free text, answered `answer`.
    pub fn note_text(&self, what: &str, answer: &'static str) {
        let syscall = CURRENT
            .with(|c| c.get())
            .and_then(|c| NAMES.get(c.nr as usize).copied())
            .unwrap_or("");
        self.record(
            Kind::Argument,
            what.to_string(),
            syscall,
            "",
            String::new(),
            answer,
        );
    }

    fn record(
        &self,
        kind: Kind,
        name: String,
        syscall: &str,
        argument: &'static str,
        value: String,
        answer: &'static str,
    ) {
        let who = CURRENT.with(|c| c.get()).map(|c| {
            let n = c.comm.iter().position(|&b| b == 0).unwrap_or(16);
            (c.pid, String::from_utf8_lossy(&c.comm[..n]).into_owned())
        });
        let mut m = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry((kind, name)).or_insert_with_key(|(_, name)| {
            match kind {
                Kind::Degraded => tracing::info!("degraded: {name} ({answer})"),
                _ => tracing::info!("unimplemented: {name} (answered {answer})"),
            }
            Entry {
                syscall: syscall.to_string(),
                argument,
                value,
                answer,
                count: 0,
                processes: BTreeSet::new(),
                first: Instant::now(),
            }
        });
        e.count += 1;
        if let Some(p) = who {
            if e.processes.len() < MAX_PROCESSES {
                e.processes.insert(p);
            }
        }
    }

    /// Counts of what was recorded, sorted by name.
    pub fn counts(&self) -> Vec<(String, u64)> {
        let m = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<(String, u64)> = m.iter().map(|((_, k), e)| (k.clone(), e.count)).collect();
        v.sort();
        v
    }

    /// The report as JSON.
    pub fn report_json(&self) -> Value {
        let m = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut sorted: Vec<(&(Kind, String), &Entry)> = m.iter().collect();
        sorted.sort_by_key(|(k, e)| (k.0, e.first, k.1.clone()));
        let mut syscalls = Vec::new();
        let mut arguments = Vec::new();
        let mut degraded = Vec::new();
        for ((kind, name), e) in sorted {
            let since = e.first.duration_since(self.boot);
            let mut o = serde_json::Map::new();
            o.insert("name".into(), name.clone().into());
            o.insert("syscall".into(), e.syscall.clone().into());
            match kind {
                Kind::Syscall => {
                    o.insert("number".into(), e.value.parse::<u64>().unwrap_or(0).into());
                    o.insert("answer".into(), e.answer.into());
                }
                Kind::Argument => {
                    if !e.argument.is_empty() {
                        o.insert("argument".into(), e.argument.into());
                    }
                    // Free-text notes have their name only.
                    if !e.value.is_empty() {
                        o.insert("value".into(), e.value.clone().into());
                    }
                    o.insert("answer".into(), e.answer.into());
                }
                Kind::Degraded => {
                    o.insert("what".into(), e.value.clone().into());
                    o.insert("behaviour".into(), e.answer.into());
                }
            }
            o.insert("count".into(), e.count.into());
            o.insert(
                "processes".into(),
                e.processes
                    .iter()
                    .map(|(pid, comm)| json!({"pid": pid, "comm": comm}))
                    .collect::<Vec<_>>()
                    .into(),
            );
            o.insert("first_seconds".into(), json!(since.as_secs_f64()));
            o.insert("first_time".into(), rfc3339(self.boot_wall + since).into());
            match kind {
                Kind::Syscall => syscalls.push(Value::Object(o)),
                Kind::Argument => arguments.push(Value::Object(o)),
                Kind::Degraded => degraded.push(Value::Object(o)),
            }
        }
        json!({
            "version": 1,
            "started": rfc3339(self.boot_wall),
            "unimplemented_syscalls": syscalls,
            "unsupported_arguments": arguments,
            "degraded": degraded,
        })
    }

    /// The report as a few lines for a person.
    pub fn report_summary(&self) -> String {
        let v = self.report_json();
        let list = |k: &str| v[k].as_array().cloned().unwrap_or_default();
        let (s, a, d) = (
            list("unimplemented_syscalls"),
            list("unsupported_arguments"),
            list("degraded"),
        );
        if s.is_empty() && a.is_empty() && d.is_empty() {
            return "runsc: compatibility report: the sandbox gave the workload everything it \
                    asked for\n"
                .to_string();
        }
        let mut out = format!(
            "runsc: compatibility report: {} unimplemented syscall{}, {} unsupported \
             argument{}, {} degraded behaviour{}\n",
            s.len(),
            if s.len() == 1 { "" } else { "s" },
            a.len(),
            if a.len() == 1 { "" } else { "s" },
            d.len(),
            if d.len() == 1 { "" } else { "s" },
        );
        for (label, l) in [("unimplemented", &s), ("unsupported", &a), ("degraded", &d)] {
            for e in l {
                let all = e["processes"].as_array().cloned().unwrap_or_default();
                let mut procs: Vec<String> = all
                    .iter()
                    .take(SUMMARY_PROCESSES)
                    .map(|p| format!("{}[{}]", p["comm"].as_str().unwrap_or(""), p["pid"]))
                    .collect();
                if all.len() > SUMMARY_PROCESSES {
                    procs.push(format!("and {} more", all.len() - SUMMARY_PROCESSES));
                }
                let answer = e
                    .get("answer")
                    .or_else(|| e.get("behaviour"))
                    .and_then(|a| a.as_str())
                    .unwrap_or("");
                out.push_str(&format!(
                    "  {label}: {} -> {answer} ({} call{}{}{})\n",
                    e["name"].as_str().unwrap_or(""),
                    e["count"],
                    if e["count"] == 1 { "" } else { "s" },
                    if procs.is_empty() { "" } else { ", by " },
                    procs.join(" "),
                ));
            }
        }
        out
    }

    /// Writes the report and the profile asked for (at the sandbox's end).
    pub fn finish(&self) {
        if let Some((mut f, human)) = self.report.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let text = if human {
                self.report_summary()
            } else {
                let mut s = serde_json::to_string_pretty(&self.report_json()).unwrap_or_default();
                s.push('\n');
                s
            };
            if let Err(e) = f.write_all(text.as_bytes()) {
                tracing::warn!("writing the compatibility report: {e}");
            }
        }
        if let Some(mut f) = self
            .profile
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            if let Some(l) = &self.learn {
                let mut s = serde_json::to_string_pretty(&l.profile()).unwrap_or_default();
                s.push('\n');
                if let Err(e) = f.write_all(s.as_bytes()) {
                    tracing::warn!("writing the learned seccomp profile: {e}");
                }
            }
        }
    }
}

/// The syscalls whose arguments a learned profile filters on, and which
/// argument (as Docker's default profile filters them): `clone`'s flags,
/// `socket`'s family, `personality`'s persona, `ioctl`'s request.
const FILTERED: [(i64, usize); 4] = [
    (libc::SYS_clone, 0),
    (libc::SYS_socket, 0),
    (libc::SYS_personality, 0),
    (libc::SYS_ioctl, 1),
];

/// The namespace flags of `clone`: Docker's profile allows `clone` only
/// without them (unless CAP_SYS_ADMIN), with a masked compare.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7e02_0000;

/// What the OCI runtime itself calls between installing the container's
/// filter and the container's program taking over, as traced with
/// `strace -f` of `runc run` (1.1) and `crun run` (podman's default), and
/// in the kernel's log with `SCMP_ACT_LOG` under podman.
/// With `noNewPrivileges` both install it right before the exec (runc
/// then opens its exec FIFO, closes its fds reading `/proc/self/fd`, and
/// the threads of its Go runtime run on until the exec); without it, as
/// podman and Docker run containers, they install it before they drop
/// capabilities and change ids, so those calls come after it too. A
/// learned profile allows these whatever the workload did, as Docker's
/// default profile does.
const RUNTIME_SYSCALLS: &[&str] = &[
    // runc's init: the exec FIFO, the fds it closes, the exec.
    "openat",
    "read",
    "write",
    "close",
    "fcntl",
    "fstat",
    "fstatfs",
    "newfstatat",
    "faccessat2",
    "getdents64",
    "getcwd",
    "chdir",
    "getpid",
    "getppid",
    "execve",
    // Without noNewPrivileges: capabilities, ids and groups (runc uses
    // setuid and setgid, crun setresuid and setresgid), and crun's
    // signal set-up.
    "capget",
    "capset",
    "prctl",
    "setgroups",
    "setuid",
    "setgid",
    "setresuid",
    "setresgid",
    "rt_sigaction",
    // crun under podman waits on a descriptor before the exec.
    "pselect6",
    // The Go runtime's threads of runc, until the exec: its scheduler,
    // timers, network poller, preemption signals and stacks.
    "futex",
    "nanosleep",
    "sched_yield",
    "epoll_ctl",
    "epoll_pwait",
    "rt_sigreturn",
    "rt_sigprocmask",
    "sigaltstack",
    "tgkill",
    "gettid",
    "mmap",
    "munmap",
    "madvise",
    "exit",
    "exit_group",
];

/// The syscalls (and arguments of [`FILTERED`]) the workload made.
pub struct Learn {
    made: [AtomicU64; SYSCALL_COUNT.div_ceil(64)],
    args: Mutex<BTreeMap<u64, BTreeSet<u64>>>,
}

impl Default for Learn {
    fn default() -> Self {
        Learn {
            made: std::array::from_fn(|_| AtomicU64::new(0)),
            args: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Learn {
    fn record(&self, nr: u64, args: &[u64; 6]) {
        let Some(word) = self.made.get(nr as usize / 64) else {
            return;
        };
        word.fetch_or(1 << (nr % 64), Ordering::Relaxed);
        if let Some(&(_, i)) = FILTERED.iter().find(|(n, _)| *n as u64 == nr) {
            self.args
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(nr)
                .or_default()
                .insert(args[i]);
        }
    }

    /// The numbers of the syscalls made.
    pub fn made(&self) -> Vec<u64> {
        (0..SYSCALL_COUNT as u64)
            .filter(|&nr| {
                self.made[nr as usize / 64].load(Ordering::Relaxed) & (1 << (nr % 64)) != 0
            })
            .collect()
    }

    /// The learned profile: an OCI `linux.seccomp` object.
    pub fn profile(&self) -> Value {
        let made = self.made();
        let args = self.args.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut plain: BTreeSet<&str> = RUNTIME_SYSCALLS.iter().copied().collect();
        let mut rules = Vec::new();
        for &nr in &made {
            let Some(name) = NAMES.get(nr as usize).copied().filter(|n| !n.is_empty()) else {
                continue;
            };
            let seen = args.get(&nr).cloned().unwrap_or_default();
            match nr as i64 {
                libc::SYS_clone if seen.iter().all(|f| f & CLONE_NAMESPACE_FLAGS == 0) => {
                    rules.push(json!({
                        "names": [name],
                        "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS,
                                  "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                    }));
                }
                libc::SYS_socket | libc::SYS_personality | libc::SYS_ioctl => {
                    let index = if nr as i64 == libc::SYS_ioctl { 1 } else { 0 };
                    for v in seen {
                        rules.push(json!({
                            "names": [name],
                            "action": "SCMP_ACT_ALLOW",
                            "args": [{"index": index, "value": v, "op": "SCMP_CMP_EQ"}],
                        }));
                    }
                }
                _ => {
                    plain.insert(name);
                }
            }
        }
        let mut syscalls = vec![json!({
            "names": plain.into_iter().collect::<Vec<_>>(),
            "action": "SCMP_ACT_ALLOW",
        })];
        syscalls.extend(rules);
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": libc::EPERM,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": syscalls,
        })
    }
}

/// A time as RFC 3339 (UTC, microseconds).
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dates() {
        assert_eq!(syscall_number("read"), Some(0));
        assert_eq!(syscall_number("openat"), Some(257));
        assert_eq!(syscall_number("nosuchcall"), None);
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn profile_filters_arguments() {
        let l = Learn::default();
        l.record(libc::SYS_clone as u64, &[0x1200011, 0, 0, 0, 0, 0]);
        l.record(libc::SYS_socket as u64, &[1, 1, 0, 0, 0, 0]);
        l.record(libc::SYS_ioctl as u64, &[1, 0x5401, 0, 0, 0, 0]);
        l.record(libc::SYS_getpid as u64, &[0; 6]);
        let p = l.profile();
        let s = p["syscalls"].as_array().unwrap();
        let plain: Vec<&str> = s[0]["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert!(plain.contains(&"getpid") && plain.contains(&"execve"));
        assert!(!plain.contains(&"clone") && !plain.contains(&"ioctl"));
        let rule = |n: &str| s.iter().find(|r| r["names"][0] == n).unwrap().clone();
        assert_eq!(rule("clone")["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(rule("socket")["args"][0]["value"], 1);
        assert_eq!(rule("ioctl")["args"][0]["index"], 1);
        assert_eq!(rule("ioctl")["args"][0]["value"], 0x5401);
        // A clone with a namespace flag: clone allowed whatever its flags.
        l.record(libc::SYS_clone as u64, &[0x2000_0000, 0, 0, 0, 0, 0]);
        let p = l.profile();
        assert!(p["syscalls"][0]["names"]
            .as_array()
            .unwrap()
            .contains(&"clone".into()));
    }
}
