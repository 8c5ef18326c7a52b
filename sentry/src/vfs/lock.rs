//! Advisory file locks, kept per inode as Linux's `file_lock_context`:
//! `flock(2)` locks, owned by an open file description, and POSIX record
//! locks (`fcntl` F_SETLK..), owned either by a process (its fd table, as
//! Linux's `current->files`) or by an open file description (OFD locks).
//!
//! Record locks of one owner never conflict with each other; setting one
//! splits, trims and merges that owner's locks as Linux's
//! `posix_lock_inode` does. Blocking requests wait on the inode's
//! condition variable; classic POSIX waiters are checked for deadlocks
//! (EDEADLK) as `posix_locks_deadlock` does.

use crate::sync::LockExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::kernel::waiter::{WaitQueue, Waiter, Wake, ALL_EVENTS};

use crate::errno::Errno;

use super::FileDescription;

/// The largest offset a lock covers (`OFFSET_MAX`): a lock "to EOF" ends
/// here.
pub const OFFSET_MAX: u64 = i64::MAX as u64;

/// How far deadlock detection follows a chain of waiters.
const MAX_DEADLK_ITERATIONS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockType {
    Read,
    Write,
}

impl LockType {
    /// The `F_RDLCK`/`F_WRLCK` value.
    pub fn as_flock(self) -> i16 {
        match self {
            LockType::Read => libc::F_RDLCK as i16,
            LockType::Write => libc::F_WRLCK as i16,
        }
    }
}

/// Who holds a record lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// Classic POSIX locks: the process's fd table (its address).
    Process(usize),
    /// OFD locks: the open file description (its address).
    File(usize),
}

/// A record lock, or a request for one (`typ` None: unlock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordLock {
    pub owner: Owner,
    /// The pid F_GETLK reports (the setter's thread group).
    pub pid: i32,
    pub typ: LockType,
    pub start: u64,
    /// Inclusive; OFFSET_MAX for "to the end of the file".
    pub end: u64,
}

impl RecordLock {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start <= end && start <= self.end
    }

    fn conflicts(&self, owner: Owner, typ: LockType, start: u64, end: u64) -> bool {
        self.owner != owner
            && self.overlaps(start, end)
            && (self.typ == LockType::Write || typ == LockType::Write)
    }
}

#[derive(Default)]
struct LockState {
    /// flock locks: the file description holding each, and its type.
    flock: Vec<(usize, LockType)>,
    /// Record locks, grouped by owner (in the order owners first locked),
    /// each owner's sorted by start: the order Linux keeps them in, which
    /// decides which conflict F_GETLK reports.
    posix: Vec<RecordLock>,
}

/// The locks of one inode.
#[derive(Default)]
pub struct FileLocks {
    state: Mutex<LockState>,
    /// Notified whenever a lock goes or changes; waiters recheck.
    changed: WaitQueue,
}

/// Classic POSIX owners that are waiting, and the owner of the lock each
/// waits for: the graph deadlock detection walks (one per sandbox).
#[derive(Default)]
pub struct LockGraph(Mutex<HashMap<usize, Owner>>);

impl LockGraph {
    fn waiting(&self) -> MutexGuard<'_, HashMap<usize, Owner>> {
        self.0.locked()
    }
}

/// Whether `caller` waiting for a lock of `blocker` would close a cycle.
fn would_deadlock(graph: &LockGraph, caller: usize, blocker: Owner) -> bool {
    let w = graph.waiting();
    let mut cur = blocker;
    for _ in 0..=MAX_DEADLK_ITERATIONS {
        let Owner::Process(p) = cur else {
            return false;
        };
        match w.get(&p) {
            Some(&next) => {
                if next == Owner::Process(caller) {
                    return true;
                }
                cur = next;
            }
            None => return false,
        }
    }
    false
}

impl FileLocks {
    /// Whether any lock is held (cheap check before releasing).
    fn is_empty(state: &LockState) -> bool {
        state.flock.is_empty() && state.posix.is_empty()
    }

    /// flock(2) for the file description `file`: `typ` None unlocks.
    /// Converting a lock drops the old one first, as Linux does.
    /// With `wait`, a conflicting lock is waited for on that waiter
    /// (ERESTARTSYS when it is interrupted); without, EAGAIN.
    pub fn flock(
        &self,
        file: usize,
        typ: Option<LockType>,
        wait: Option<&Arc<Waiter>>,
    ) -> Result<(), Errno> {
        let _reg = wait.map(|w| self.changed.register(w, ALL_EVENTS));
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = st.flock.iter().position(|&(f, _)| f == file) {
            if Some(st.flock[i].1) == typ {
                return Ok(());
            }
            st.flock.remove(i);
            self.changed.notify_all();
        }
        let Some(typ) = typ else {
            return Ok(());
        };
        loop {
            let conflict = st
                .flock
                .iter()
                .any(|&(f, t)| f != file && (t == LockType::Write || typ == LockType::Write));
            if !conflict {
                st.flock.push((file, typ));
                return Ok(());
            }
            let Some(w) = wait else {
                return Err(Errno::EAGAIN);
            };
            w.reset();
            drop(st);
            if w.wait(None) == Wake::Interrupted {
                return Err(Errno::ERESTARTSYS);
            }
            st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        }
    }

    /// F_GETLK: the first lock that would block `req`, if any. A request
    /// of type None (F_OFD_GETLK with F_UNLCK) asks for the owner's own
    /// lock overlapping the range.
    pub fn test(
        &self,
        owner: Owner,
        typ: Option<LockType>,
        start: u64,
        end: u64,
    ) -> Option<RecordLock> {
        let st = self.state.locked();
        st.posix
            .iter()
            .find(|l| match typ {
                Some(t) => l.conflicts(owner, t, start, end),
                None => l.owner == owner && l.overlaps(start, end),
            })
            .cloned()
    }

    /// F_SETLK/F_SETLKW: sets (or, with `typ` None, removes) a record lock
    /// over `[start, end]` for `owner`. EAGAIN on conflict unless `wait`;
    /// EDEADLK when waiting would deadlock.
    pub fn set(
        &self,
        owner: Owner,
        pid: i32,
        typ: Option<LockType>,
        start: u64,
        end: u64,
        wait: Option<(&Arc<Waiter>, &LockGraph)>,
    ) -> Result<(), Errno> {
        let _reg = wait.map(|(w, _)| self.changed.register(w, ALL_EVENTS));
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = typ {
            loop {
                let blocker = st
                    .posix
                    .iter()
                    .find(|l| l.conflicts(owner, t, start, end))
                    .map(|l| l.owner);
                let Some(blocker) = blocker else {
                    break;
                };
                let Some((w, graph)) = wait else {
                    return Err(Errno::EAGAIN);
                };
                if let Owner::Process(me) = owner {
                    if would_deadlock(graph, me, blocker) {
                        return Err(Errno::EDEADLK);
                    }
                    graph.waiting().insert(me, blocker);
                }
                w.reset();
                drop(st);
                let woke = w.wait(None);
                if let Owner::Process(me) = owner {
                    graph.waiting().remove(&me);
                }
                if woke == Wake::Interrupted {
                    return Err(Errno::ERESTARTSYS);
                }
                st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            }
        }
        Self::apply(&mut st, owner, pid, typ, start, end);
        drop(st);
        self.changed.notify_all();
        Ok(())
    }

    /// Replaces `owner`'s locks with the result of the request.
    fn apply(
        st: &mut LockState,
        owner: Owner,
        pid: i32,
        typ: Option<LockType>,
        start: u64,
        end: u64,
    ) {
        let at = st.posix.iter().position(|l| l.owner == owner);
        let mine: Vec<RecordLock> = st
            .posix
            .iter()
            .filter(|l| l.owner == owner)
            .cloned()
            .collect();
        st.posix.retain(|l| l.owner != owner);
        let (mut s, mut e) = (start, end);
        if let Some(t) = typ {
            // Same-type locks that overlap or touch the range merge into it.
            loop {
                let mut grew = false;
                for l in mine.iter().filter(|l| l.typ == t) {
                    let touches = l.start <= e.saturating_add(1) && s <= l.end.saturating_add(1);
                    if touches && (l.start < s || l.end > e) {
                        s = s.min(l.start);
                        e = e.max(l.end);
                        grew = true;
                    }
                }
                if !grew {
                    break;
                }
            }
        }
        let mut out: Vec<RecordLock> = Vec::with_capacity(mine.len() + 2);
        for l in mine {
            if !l.overlaps(s, e) {
                out.push(l);
                continue;
            }
            if l.start < s {
                out.push(RecordLock {
                    end: s - 1,
                    ..l.clone()
                });
            }
            if l.end > e {
                out.push(RecordLock { start: e + 1, ..l });
            }
        }
        if let Some(t) = typ {
            out.push(RecordLock {
                owner,
                pid,
                typ: t,
                start: s,
                end: e,
            });
        }
        out.sort_by_key(|l| l.start);
        let at = at.unwrap_or(st.posix.len()).min(st.posix.len());
        st.posix.splice(at..at, out);
    }

    /// Drops every record lock of `owner` (a process closing any fd of
    /// the file, or an OFD going away).
    pub fn release_owner(&self, owner: Owner) {
        let mut st = self.state.locked();
        if Self::is_empty(&st) {
            return;
        }
        let before = st.posix.len();
        st.posix.retain(|l| l.owner != owner);
        if st.posix.len() != before {
            drop(st);
            self.changed.notify_all();
        }
    }

    /// The last reference to the file description `file` is gone: drops
    /// its flock lock and its OFD locks.
    pub fn release_file(&self, file: usize) {
        let mut st = self.state.locked();
        if Self::is_empty(&st) {
            return;
        }
        let before = st.flock.len() + st.posix.len();
        st.flock.retain(|&(f, _)| f != file);
        st.posix.retain(|l| l.owner != Owner::File(file));
        if st.flock.len() + st.posix.len() != before {
            drop(st);
            self.changed.notify_all();
        }
    }

    /// The record locks held, in order (for /proc/locks and tests).
    pub fn record_locks(&self) -> Vec<RecordLock> {
        self.state.locked().posix.clone()
    }
}

/// Lock state of open files that have no inode in a file system (pipes,
/// host fds), by their `(st_dev, st_ino)`: the two ends of a pipe share
/// it, as they share the pipe's inode on Linux. Each description keeps
/// what it found here; the table only lets others find it while one
/// does.
#[derive(Default)]
pub struct AnonLocks(Mutex<HashMap<(u64, u64), std::sync::Weak<FileLocks>>>);

impl AnonLocks {
    fn get(&self, key: (u64, u64)) -> Arc<FileLocks> {
        let mut table = self.0.locked();
        if let Some(l) = table.get(&key).and_then(|w| w.upgrade()) {
            return l;
        }
        table.retain(|_, w| w.strong_count() > 0);
        let l = Arc::new(FileLocks::default());
        table.insert(key, Arc::downgrade(&l));
        l
    }
}

/// Runs `op` on the locks of the file `f` is open on: its inode's, or for
/// files outside the file systems, the shared state of what fstat names.
/// None when the file has neither.
pub fn with_file_locks<R>(
    table: &AnonLocks,
    f: &FileDescription,
    op: impl FnOnce(&FileLocks) -> R,
) -> Option<R> {
    if let Some(inode) = f.inode() {
        return Some(op(&inode.locks));
    }
    let st = f.imp.stat(f).ok()?;
    let locks = f.anon_locks(|| table.get((st.st_dev, st.st_ino)));
    Some(op(&locks))
}

/// Releases locks of `f`'s file without creating lock state.
fn release(f: &FileDescription, op: impl FnOnce(&FileLocks)) {
    if let Some(inode) = f.inode() {
        op(&inode.locks);
        return;
    }
    if let Some(locks) = f.anon_locks_if_any() {
        op(&locks);
    }
}

/// A process (lock owner `owner`) closed an fd of `f`: its record locks
/// on the file go.
pub fn file_closed(f: &FileDescription, owner: Owner) {
    release(f, |l| l.release_owner(owner));
}

/// The last reference to the description `f` is gone: its flock lock and
/// OFD locks go.
pub fn description_gone(f: &FileDescription) {
    let id = f as *const FileDescription as usize;
    release(f, |l| l.release_file(id));
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Owner = Owner::Process(1);
    const Q: Owner = Owner::Process(2);

    fn ranges(l: &FileLocks) -> Vec<(u64, u64, LockType)> {
        l.record_locks()
            .iter()
            .map(|l| (l.start, l.end, l.typ))
            .collect()
    }

    #[test]
    fn split_and_merge() {
        let l = FileLocks::default();
        l.set(P, 1, Some(LockType::Write), 0, 99, None).unwrap();
        l.set(P, 1, Some(LockType::Read), 10, 19, None).unwrap();
        assert_eq!(
            ranges(&l),
            vec![
                (0, 9, LockType::Write),
                (10, 19, LockType::Read),
                (20, 99, LockType::Write)
            ]
        );
        l.set(P, 1, Some(LockType::Write), 10, 19, None).unwrap();
        assert_eq!(ranges(&l), vec![(0, 99, LockType::Write)]);
        l.set(P, 1, None, 50, OFFSET_MAX, None).unwrap();
        assert_eq!(ranges(&l), vec![(0, 49, LockType::Write)]);
        l.set(P, 1, Some(LockType::Write), 50, 59, None).unwrap();
        assert_eq!(ranges(&l), vec![(0, 59, LockType::Write)]);
    }

    #[test]
    fn conflicts() {
        let l = FileLocks::default();
        l.set(P, 1, Some(LockType::Read), 0, 9, None).unwrap();
        assert!(l.set(Q, 2, Some(LockType::Read), 5, 5, None).is_ok());
        assert_eq!(
            l.set(Q, 2, Some(LockType::Write), 0, 0, None),
            Err(Errno::EAGAIN)
        );
        let c = l.test(Q, Some(LockType::Write), 0, OFFSET_MAX).unwrap();
        assert_eq!((c.owner, c.start, c.end), (P, 0, 9));
        l.release_owner(P);
        assert!(l.set(Q, 2, Some(LockType::Write), 0, 0, None).is_ok());
    }

    #[test]
    fn waiting_and_deadlock() {
        let l = Arc::new(FileLocks::default());
        let graph = Arc::new(LockGraph::default());
        l.set(P, 1, Some(LockType::Write), 0, 0, None).unwrap();
        l.set(Q, 2, Some(LockType::Write), 1, 1, None).unwrap();
        // Q waits for P's byte 0...
        let (l2, g2) = (l.clone(), graph.clone());
        let waiter = std::thread::spawn(move || {
            l2.set(
                Q,
                2,
                Some(LockType::Write),
                0,
                0,
                Some((&Waiter::new(), &g2)),
            )
        });
        while !graph.waiting().contains_key(&2) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // ...so P waiting for Q's byte 1 would never end.
        assert_eq!(
            l.set(
                P,
                1,
                Some(LockType::Write),
                1,
                1,
                Some((&Waiter::new(), &graph))
            ),
            Err(Errno::EDEADLK)
        );
        l.release_owner(P);
        assert_eq!(waiter.join().unwrap(), Ok(()));
        let c = l.test(P, Some(LockType::Read), 0, 1).unwrap();
        assert_eq!((c.owner, c.start, c.end), (Q, 0, 1));
    }

    #[test]
    fn flock_waits() {
        let l = Arc::new(FileLocks::default());
        l.flock(1, Some(LockType::Write), None).unwrap();
        let l2 = l.clone();
        let waiter =
            std::thread::spawn(move || l2.flock(2, Some(LockType::Read), Some(&Waiter::new())));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!waiter.is_finished());
        l.flock(1, None, None).unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(()));
    }

    #[test]
    fn flock_conversion() {
        let l = FileLocks::default();
        l.flock(1, Some(LockType::Read), None).unwrap();
        l.flock(2, Some(LockType::Read), None).unwrap();
        assert_eq!(l.flock(1, Some(LockType::Write), None), Err(Errno::EAGAIN));
        // The conversion dropped the old lock.
        l.flock(2, Some(LockType::Write), None).unwrap();
        l.release_file(2);
        l.flock(1, Some(LockType::Write), None).unwrap();
    }
}
