//! Scheduling settings: nice values, policies, affinity masks, I/O
//! priorities and the execution domain (personality). The sentry records
//! and reports them as Linux does; where guest threads run on the host is
//! the sentry's own decision (the platform's placement), so the values
//! change no host scheduling.

use std::sync::Arc;

use crate::errno::Errno;

use super::{Hex, SysResult, UserAddr};
use crate::kernel::compat::Degraded;
use crate::kernel::task::{SchedState, Task, TaskShared};

const CAP_SYS_NICE: u32 = 23;

/// The task a scheduling call names: 0 is the caller.
fn target(t: &Task, pid: i32) -> Result<Arc<TaskShared>, Errno> {
    if pid == 0 || pid == t.tid {
        return Ok(t.shared.clone());
    }
    t.kernel
        .tasks
        .lock()
        .tasks
        .get(&pid)
        .cloned()
        .ok_or(Errno::ESRCH)
}

/// Whether the caller may change `target`'s settings (Linux's
/// set_one_prio_perm / check_same_owner).
fn may_change(t: &Task, target: &TaskShared) -> bool {
    if t.creds.has_cap(CAP_SYS_NICE) {
        return true;
    }
    let c = target.view.lock().creds.clone();
    c.uid == t.creds.euid || c.euid == t.creds.euid
}

const PRIO_PROCESS: i32 = 0;
const PRIO_PGRP: i32 = 1;
const PRIO_USER: i32 = 2;

/// The tasks `which`/`who` name for get/setpriority.
fn prio_targets(t: &Task, which: i32, who: i32) -> Result<Vec<Arc<TaskShared>>, Errno> {
    let ts = t.kernel.tasks.lock();
    let v: Vec<Arc<TaskShared>> = match which {
        PRIO_PROCESS => {
            if who == 0 {
                vec![t.shared.clone()]
            } else {
                ts.tasks.get(&who).cloned().into_iter().collect()
            }
        }
        PRIO_PGRP => {
            let g = if who == 0 {
                ts.procs.get(&t.tg.tgid).map(|p| p.pgid).unwrap_or(0)
            } else {
                who
            };
            ts.procs
                .values()
                .filter(|p| p.pgid == g && p.zombie.is_none())
                .flat_map(|p| ts.threads_of(p.tg.tgid))
                .collect()
        }
        PRIO_USER => {
            let uid = if who == 0 { t.creds.uid } else { who as u32 };
            ts.tasks
                .values()
                .filter(|s| s.view.lock().creds.uid == uid)
                .cloned()
                .collect()
        }
        _ => return Err(Errno::EINVAL),
    };
    Ok(v)
}

pub fn getpriority(t: &mut Task, which: i32, who: i32) -> SysResult {
    let v = prio_targets(t, which, who)?;
    // The kernel returns 20 - nice (1..40), the best of the set.
    let best = v
        .iter()
        .map(|s| s.sched.lock().nice)
        .min()
        .ok_or(Errno::ESRCH)?;
    Ok((20 - best) as u64)
}

pub fn setpriority(t: &mut Task, which: i32, who: i32, prio: i32) -> SysResult {
    let v = prio_targets(t, which, who)?;
    if v.is_empty() {
        return Err(Errno::ESRCH);
    }
    let nice = prio.clamp(-20, 19);
    let mut err = None;
    for s in v {
        if !may_change(t, &s) {
            err = Some(Errno::EPERM);
            continue;
        }
        let mut st = s.sched.lock();
        if nice < st.nice && !t.creds.has_cap(CAP_SYS_NICE) {
            err = Some(Errno::EACCES);
            continue;
        }
        st.nice = nice;
    }
    match err {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

const SCHED_OTHER: i32 = 0;
const SCHED_FIFO: i32 = 1;
const SCHED_RR: i32 = 2;
const SCHED_BATCH: i32 = 3;
const SCHED_IDLE: i32 = 5;
const SCHED_DEADLINE: i32 = 6;
const SCHED_RESET_ON_FORK: i32 = 0x4000_0000;

pub fn sched_get_priority_max(_t: &mut Task, policy: i32) -> SysResult {
    match policy {
        SCHED_FIFO | SCHED_RR => Ok(99),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sched_get_priority_min(_t: &mut Task, policy: i32) -> SysResult {
    match policy {
        SCHED_FIFO | SCHED_RR => Ok(1),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sched_getscheduler(t: &mut Task, pid: i32) -> SysResult {
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    let s = target(t, pid)?;
    let st = s.sched.lock();
    Ok((st.policy
        | if st.reset_on_fork {
            SCHED_RESET_ON_FORK
        } else {
            0
        }) as u64)
}

pub fn sched_getparam(t: &mut Task, pid: i32, param: UserAddr) -> SysResult {
    if param.0 == 0 || pid < 0 {
        return Err(Errno::EINVAL);
    }
    let s = target(t, pid)?;
    let prio = s.sched.lock().priority;
    t.mm.write_obj(param.0, &prio)?;
    Ok(0)
}

fn set_sched(t: &Task, pid: i32, policy: Option<i32>, param: u64) -> SysResult {
    if param == 0 || pid < 0 {
        return Err(Errno::EINVAL);
    }
    let prio: i32 = t.mm.read_obj(param)?;
    let s = target(t, pid)?;
    let (policy, reset) = match policy {
        Some(p) => (p & !SCHED_RESET_ON_FORK, p & SCHED_RESET_ON_FORK != 0),
        None => {
            let st = s.sched.lock();
            (st.policy, st.reset_on_fork)
        }
    };
    match policy {
        SCHED_FIFO | SCHED_RR if (1..=99).contains(&prio) => {}
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE if prio == 0 => {}
        SCHED_DEADLINE => return Err(Errno::EINVAL),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_FIFO | SCHED_RR => {
            return Err(Errno::EINVAL)
        }
        _ => return Err(Errno::EINVAL),
    }
    if !may_change(t, &s) {
        return Err(Errno::EPERM);
    }
    if matches!(policy, SCHED_FIFO | SCHED_RR) && !t.creds.has_cap(CAP_SYS_NICE) {
        return Err(Errno::EPERM);
    }
    let mut st = s.sched.lock();
    st.policy = policy;
    st.priority = prio;
    st.reset_on_fork = reset;
    Ok(0)
}

/// Real-time policies: recorded and reported, never the host's.
const REALTIME_POLICY: Degraded = Degraded {
    syscall: "sched_setscheduler",
    what: "SCHED_FIFO or SCHED_RR",
    behaviour: "recorded and reported; guest threads get no real-time scheduling on the host",
};
/// Affinity masks: recorded and reported; where a guest thread runs is
/// the platform's choice.
const AFFINITY: Degraded = Degraded {
    syscall: "sched_setaffinity",
    what: "a CPU mask",
    behaviour: "recorded and reported; the host CPU of a guest thread is the sentry's choice",
};
/// Personas: recorded and reported; their flags (ADDR_NO_RANDOMIZE,
/// READ_IMPLIES_EXEC, ...) change nothing.
const PERSONA: Degraded = Degraded {
    syscall: "personality",
    what: "a persona other than PER_LINUX",
    behaviour: "recorded and reported; its flags change nothing",
};

pub fn sched_setscheduler(t: &mut Task, pid: i32, policy: i32, param: UserAddr) -> SysResult {
    if policy < 0 {
        return Err(Errno::EINVAL);
    }
    let r = set_sched(t, pid, Some(policy), param.0);
    if r.is_ok() && matches!(policy & !0x4000_0000, libc::SCHED_FIFO | libc::SCHED_RR) {
        REALTIME_POLICY.note(t);
    }
    r
}

pub fn sched_setparam(t: &mut Task, pid: i32, param: UserAddr) -> SysResult {
    set_sched(t, pid, None, param.0)
}

pub fn sched_rr_get_interval(t: &mut Task, pid: i32, interval: UserAddr) -> SysResult {
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    let s = target(t, pid)?;
    let policy = s.sched.lock().policy;
    // Linux reports the round-robin slice (100 ms) for SCHED_RR, 0 for
    // SCHED_FIFO, and the fair scheduler's slice for the others.
    let ns: i64 = match policy {
        SCHED_FIFO => 0,
        SCHED_RR => 100_000_000,
        _ => 4_000_000,
    };
    let ts = libc::timespec {
        tv_sec: ns / 1_000_000_000,
        tv_nsec: ns % 1_000_000_000,
    };
    t.mm.write_obj(interval.0, &ts)?;
    Ok(0)
}

pub fn sched_setaffinity(t: &mut Task, pid: i32, len: u32, mask: UserAddr) -> SysResult {
    let r = set_affinity(t, pid, len, mask);
    if r.is_ok() {
        AFFINITY.note(t);
    }
    r
}

fn set_affinity(t: &mut Task, pid: i32, len: u32, mask: UserAddr) -> SysResult {
    let s = target(t, pid)?;
    let cpus = t.kernel.cpus;
    let n = (len as usize).min(cpus.div_ceil(64) * 8).min(128);
    let mut bytes = vec![0u8; n];
    t.mm.copy_in(mask.0, &mut bytes)?;
    let mut m = 0u128;
    for (i, b) in bytes.iter().enumerate() {
        m |= (*b as u128) << (8 * i);
    }
    let online = if cpus >= 128 {
        u128::MAX
    } else {
        (1u128 << cpus) - 1
    };
    let m = m & online;
    if m == 0 {
        return Err(Errno::EINVAL);
    }
    if !may_change(t, &s) {
        return Err(Errno::EPERM);
    }
    s.sched.lock().affinity = m;
    Ok(0)
}

/// The affinity mask of `pid` (all online CPUs unless set).
pub fn affinity(t: &Task, pid: i32) -> Result<u128, Errno> {
    Ok(target(t, pid)?.sched.lock().affinity)
}

const IOPRIO_WHO_PROCESS: i32 = 1;

pub fn ioprio_get(t: &mut Task, which: i32, who: i32) -> SysResult {
    if which != IOPRIO_WHO_PROCESS {
        return super::unimplemented(t, "ioprio_get of a process group or user");
    }
    let s = target(t, who)?;
    let v = s.sched.lock().ioprio;
    Ok(v as u64)
}

pub fn ioprio_set(t: &mut Task, which: i32, who: i32, prio: i32) -> SysResult {
    if which != IOPRIO_WHO_PROCESS {
        return super::unimplemented(t, "ioprio_set of a process group or user");
    }
    // The class, then the level (3 bits) and hints of its data.
    let class = prio >> 13;
    if !(0..=3).contains(&class) {
        return Err(Errno::EINVAL);
    }
    let s = target(t, who)?;
    s.sched.lock().ioprio = prio;
    Ok(0)
}

pub fn personality(t: &mut Task, persona: Hex) -> SysResult {
    let old = t.shared.sched.lock().personality;
    let p = persona.0 as u32;
    if p != 0xffff_ffff {
        t.shared.sched.lock().personality = p;
        if p != 0 {
            PERSONA.note(t);
        }
    }
    Ok(old as u64)
}

/// Defaults of a new task: the creator's settings (a nice value of 0 and
/// SCHED_OTHER when it asked for SCHED_RESET_ON_FORK).
pub fn inherit(parent: &SchedState) -> SchedState {
    let mut s = parent.clone();
    if s.reset_on_fork {
        s.policy = SCHED_OTHER;
        s.priority = 0;
        s.nice = s.nice.max(0);
        s.reset_on_fork = false;
    }
    s
}
