//! System V semaphore sets (Linux's `ipc/sem.c`).
//!
//! A `semop` applies its operations in order and atomically: all of them
//! or none (Linux's `perform_atomic_semop_slow`, which also serves
//! operations naming one semaphore twice). One that cannot proceed
//! sleeps on its set's queue and tries again whenever the set changes;
//! while it sleeps, its blocking operation counts for GETNCNT/GETZCNT.
//! `SEM_UNDO` adjustments are kept per process and applied when it exits
//! (`exit_sem`), with Linux's clamping to [0, SEMVMX].

use std::collections::HashMap;
use std::sync::Arc;

use crate::errno::Errno;
use crate::kernel::waiter::WaitQueue;

use super::{now, Ids, IpcObject, Perm};

/// The largest semaphore value.
pub const SEMVMX: i32 = 32767;
/// The largest adjustment an undo entry may hold.
pub const SEMAEM: i32 = SEMVMX;
pub const SEM_UNDO: i16 = 0x1000;

/// One semaphore.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sem {
    pub val: i32,
    /// The last process that operated on it.
    pub pid: i32,
    pub otime: i64,
}

/// A task sleeping in semop, and the operation it waits on.
struct Sleeper {
    token: u64,
    num: u16,
    /// Waits for zero (GETZCNT) rather than for an increase (GETNCNT).
    zero: bool,
}

/// One set.
pub struct SemSet {
    pub perm: Perm,
    pub sems: Vec<Sem>,
    pub ctime: i64,
    /// Tells this set from a later one with its identifier.
    pub serial: u64,
    /// Notified on every change of values and when the set goes.
    pub waitq: Arc<WaitQueue>,
    sleepers: Vec<Sleeper>,
}

impl IpcObject for SemSet {
    fn perm(&self) -> &Perm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut Perm {
        &mut self.perm
    }
}

impl SemSet {
    /// The time of the last semop: the latest of the semaphores'.
    pub fn otime(&self) -> i64 {
        self.sems.iter().map(|s| s.otime).max().unwrap_or(0)
    }

    /// GETNCNT (`zero` false) or GETZCNT of semaphore `num`.
    pub fn count_waiting(&self, num: u16, zero: bool) -> usize {
        self.sleepers
            .iter()
            .filter(|s| s.num == num && s.zero == zero)
            .count()
    }

    /// `struct semid64_ds`.
    pub fn to_bytes(&self) -> [u8; 104] {
        let mut b = [0u8; 104];
        b[0..48].copy_from_slice(&self.perm.to_bytes());
        b[48..56].copy_from_slice(&self.otime().to_le_bytes());
        b[64..72].copy_from_slice(&self.ctime.to_le_bytes());
        b[80..88].copy_from_slice(&(self.sems.len() as u64).to_le_bytes());
        b
    }

    /// Records (or updates) a sleeping operation.
    pub fn set_sleeper(&mut self, token: u64, num: u16, zero: bool) {
        self.clear_sleeper(token);
        self.sleepers.push(Sleeper { token, num, zero });
    }

    pub fn clear_sleeper(&mut self, token: u64) {
        self.sleepers.retain(|s| s.token != token);
    }
}

/// One process's adjustments of one set.
struct Undo {
    semid: i32,
    serial: u64,
    adj: Vec<i32>,
}

/// The namespace's sets and the processes' undo lists.
#[derive(Default)]
pub struct SemState {
    pub ids: Ids<SemSet>,
    /// Semaphores in all sets (`used_sems`).
    pub used_sems: usize,
    /// Undo lists by process.
    undo: HashMap<i32, Vec<Undo>>,
    next_token: u64,
}

/// One operation of a semop (`struct sembuf`).
#[derive(Clone, Copy, Debug)]
pub struct SemBuf {
    pub num: u16,
    pub op: i16,
    pub flg: i16,
}

/// Why a semop did not complete.
#[derive(Debug, PartialEq, Eq)]
pub enum SemopError {
    /// It must wait on this operation (index into the operations).
    Block(usize),
    Err(Errno),
}

impl SemState {
    /// A token naming one sleeping semop.
    pub fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Linux's `newary`.
    pub fn new_set(
        &mut self,
        limits: &super::Limits,
        key: i32,
        nsems: i32,
        flags: i32,
        creds: &crate::kernel::creds::Credentials,
    ) -> Result<i32, Errno> {
        if nsems == 0 {
            return Err(Errno::EINVAL);
        }
        let get = super::Limits::get;
        if self.used_sems as i64 + nsems as i64 > get(&limits.semmns) {
            return Err(Errno::ENOSPC);
        }
        let perm = Perm::new(key, flags, creds);
        let id = self
            .ids
            .add(get(&limits.semmni) as usize, |_, serial| SemSet {
                perm,
                sems: vec![Sem::default(); nsems as usize],
                ctime: now(),
                serial,
                waitq: Arc::new(WaitQueue::default()),
                sleepers: Vec::new(),
            })?;
        self.used_sems += nsems as usize;
        Ok(id)
    }

    /// IPC_RMID: the set goes, its sleepers wake to EIDRM, and every
    /// process's adjustments of it are forgotten.
    pub fn remove(&mut self, id: i32) {
        if let Some(set) = self.ids.remove(id) {
            self.used_sems -= set.sems.len();
            for list in self.undo.values_mut() {
                list.retain(|u| u.serial != set.serial);
            }
            set.waitq.notify_all();
        }
    }

    /// SETVAL and SETALL: the semaphores `nums` got new values; every
    /// process's adjustments of them are reset (Linux clears them).
    pub fn values_set(&mut self, id: i32, nums: std::ops::Range<usize>) {
        let Ok(set) = self.ids.get(id) else {
            return;
        };
        let serial = set.serial;
        for list in self.undo.values_mut() {
            for u in list.iter_mut().filter(|u| u.serial == serial) {
                for n in nums.clone() {
                    if let Some(a) = u.adj.get_mut(n) {
                        *a = 0;
                    }
                }
            }
        }
        set.waitq.notify_all();
    }

    /// Tries `sops` on set `id` for process `tgid` (with `undo` when one
    /// of them has SEM_UNDO): done, EAGAIN/ERANGE, or which operation it
    /// must wait on.
    pub fn semop(&mut self, id: i32, sops: &[SemBuf], tgid: i32) -> Result<(), SemopError> {
        let undos = sops.iter().any(|s| s.flg & SEM_UNDO != 0);
        let set = self
            .ids
            .get_mut(id)
            .map_err(|_| SemopError::Err(Errno::EIDRM))?;
        let nsems = set.sems.len();
        let serial = set.serial;
        let mut no_undo = Vec::new();
        let adj: &mut Vec<i32> = if undos {
            let list = self.undo.entry(tgid).or_default();
            let at = match list.iter().position(|u| u.serial == serial) {
                Some(i) => i,
                None => {
                    list.push(Undo {
                        semid: id,
                        serial,
                        adj: vec![0; nsems],
                    });
                    list.len() - 1
                }
            };
            &mut list[at].adj
        } else {
            &mut no_undo
        };
        let r = perform(&mut set.sems, adj, sops);
        match r {
            Ok(()) => {
                let t = now();
                for s in sops {
                    let sem = &mut set.sems[s.num as usize];
                    sem.pid = tgid;
                    sem.otime = t;
                }
                if sops.iter().any(|s| s.op != 0) {
                    set.waitq.notify_all();
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// Applies `sops` to `sems` in order, undoing them all when one cannot
/// proceed (Linux's `perform_atomic_semop_slow`).
fn perform(sems: &mut [Sem], adj: &mut [i32], sops: &[SemBuf]) -> Result<(), SemopError> {
    let mut done = 0;
    let mut fail = None;
    for (i, s) in sops.iter().enumerate() {
        let cur = sems[s.num as usize].val;
        let op = s.op as i32;
        if op == 0 && cur != 0 || cur + op < 0 {
            fail = Some(if s.flg & super::IPC_NOWAIT as i16 != 0 {
                SemopError::Err(Errno::EAGAIN)
            } else {
                SemopError::Block(i)
            });
            break;
        }
        let result = cur + op;
        if result > SEMVMX {
            fail = Some(SemopError::Err(Errno::ERANGE));
            break;
        }
        if s.flg & SEM_UNDO != 0 {
            let u = adj[s.num as usize] - op;
            if !(-SEMAEM - 1..=SEMAEM).contains(&u) {
                fail = Some(SemopError::Err(Errno::ERANGE));
                break;
            }
            adj[s.num as usize] = u;
        }
        sems[s.num as usize].val = result;
        done += 1;
    }
    let Some(f) = fail else {
        return Ok(());
    };
    for s in sops[..done].iter().rev() {
        sems[s.num as usize].val -= s.op as i32;
        if s.flg & SEM_UNDO != 0 {
            adj[s.num as usize] += s.op as i32;
        }
    }
    Err(f)
}

/// A process exited: its adjustments are applied to the sets that are
/// still there, clamped to [0, SEMVMX] (Linux's `exit_sem`).
pub fn exit_sem(ns: &super::IpcNamespace, tgid: i32) {
    let mut st = ns.sem.lock();
    let Some(list) = st.undo.remove(&tgid) else {
        return;
    };
    for u in list {
        let Ok(set) = st.ids.get_mut(u.semid) else {
            continue;
        };
        if set.serial != u.serial {
            continue;
        }
        let mut changed = false;
        for (i, a) in u.adj.iter().enumerate() {
            if *a != 0 {
                let s = &mut set.sems[i];
                s.val = (s.val + a).clamp(0, SEMVMX);
                s.pid = tgid;
                changed = true;
            }
        }
        if changed {
            set.waitq.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(num: u16, op: i16, flg: i16) -> SemBuf {
        SemBuf { num, op, flg }
    }

    /// Operations apply all together or not at all, the same semaphore
    /// twice included; undo adjustments move with them.
    #[test]
    fn semop_is_atomic() {
        let mut sems = vec![Sem::default(); 2];
        let mut adj = vec![0; 2];
        assert_eq!(perform(&mut sems, &mut adj, &[op(0, 2, SEM_UNDO)]), Ok(()));
        assert_eq!((sems[0].val, adj[0]), (2, -2));
        // The second operation blocks: the first is undone.
        assert_eq!(
            perform(&mut sems, &mut adj, &[op(0, -1, SEM_UNDO), op(1, -1, 0)]),
            Err(SemopError::Block(1))
        );
        assert_eq!((sems[0].val, adj[0]), (2, -2));
        assert_eq!(
            perform(&mut sems, &mut adj, &[op(0, -1, 0), op(0, -1, 0)]),
            Ok(())
        );
        assert_eq!(sems[0].val, 0);
        assert_eq!(
            perform(&mut sems, &mut adj, &[op(1, 1, 0), op(1, 0, 0x800)]),
            Err(SemopError::Err(Errno::EAGAIN))
        );
        assert_eq!(sems[1].val, 0);
        assert_eq!(
            perform(&mut sems, &mut adj, &[op(1, i16::MAX, 0), op(1, 1, 0)]),
            Err(SemopError::Err(Errno::ERANGE))
        );
        assert_eq!(sems[1].val, 0);
    }
}
