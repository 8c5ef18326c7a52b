//! Futexes: wait queues keyed by the futex word.
//!
//! A private futex (or any futex in private memory) is keyed by its
//! address space and address; a shared one in shared memory by the place
//! of its word in the memory file, so processes that map the same memory
//! at different addresses meet. Keys use the address space's id, never an
//! object's address, so they are never reused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::waiter::Waiter;
use crate::errno::Errno;
use crate::mm::MemoryManager;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FutexKey {
    /// Address space id, address, and whether the operation was a shared
    /// one (Linux keeps shared operations on private memory apart from
    /// private ones).
    Private(u64, u64, bool),
    /// Offset of the word in the memory file.
    Shared(u64),
}

/// One waiting task.
pub struct FutexWaiter {
    pub bitset: u32,
    waiter: Arc<Waiter>,
    woken: AtomicBool,
    /// The queue it is on (requeue moves it).
    key: Mutex<FutexKey>,
}

impl FutexWaiter {
    pub fn woken(&self) -> bool {
        self.woken.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
pub struct FutexTable {
    queues: Mutex<HashMap<FutexKey, Vec<Arc<FutexWaiter>>>>,
}

impl FutexTable {
    /// The key of the futex word at `addr` of `mm`.
    pub fn key(&self, mm: &MemoryManager, addr: u64, private: bool) -> FutexKey {
        if !private {
            if let Some(off) = mm.shared_offset(addr) {
                return FutexKey::Shared(off);
            }
        }
        FutexKey::Private(mm.id, addr, !private)
    }

    /// Queues `waiter` on `key` if `check()` (run under the table lock, so
    /// no wake can slip in between) says the word still holds the expected
    /// value; EAGAIN if not.
    pub fn enqueue(
        &self,
        key: FutexKey,
        bitset: u32,
        waiter: &Arc<Waiter>,
        check: impl FnOnce() -> Result<bool, Errno>,
    ) -> Result<Arc<FutexWaiter>, Errno> {
        let mut q = self.queues.lock();
        if !check()? {
            return Err(Errno::EAGAIN);
        }
        let w = Arc::new(FutexWaiter {
            bitset,
            waiter: waiter.clone(),
            woken: AtomicBool::new(false),
            key: Mutex::new(key),
        });
        q.entry(key).or_default().push(w.clone());
        Ok(w)
    }

    /// Takes `w` off its queue (a timeout or a signal); false if it was
    /// woken first.
    pub fn dequeue(&self, w: &Arc<FutexWaiter>) -> bool {
        let mut q = self.queues.lock();
        if w.woken() {
            return false;
        }
        let key = *w.key.lock();
        if let Some(v) = q.get_mut(&key) {
            v.retain(|x| !Arc::ptr_eq(x, w));
            if v.is_empty() {
                q.remove(&key);
            }
        }
        true
    }

    fn wake_locked(
        q: &mut HashMap<FutexKey, Vec<Arc<FutexWaiter>>>,
        key: FutexKey,
        bitset: u32,
        n: u32,
    ) -> u32 {
        let Some(v) = q.get_mut(&key) else {
            return 0;
        };
        let mut woke = 0;
        let mut i = 0;
        while i < v.len() && woke < n {
            if v[i].bitset & bitset != 0 {
                let w = v.remove(i);
                w.woken.store(true, Ordering::SeqCst);
                w.waiter.wake();
                woke += 1;
            } else {
                i += 1;
            }
        }
        if v.is_empty() {
            q.remove(&key);
        }
        woke
    }

    /// Wakes up to `n` waiters on `key` whose bitset intersects `bitset`
    /// (at least one, as Linux's futex_wake counts).
    pub fn wake(&self, key: FutexKey, bitset: u32, n: u32) -> u32 {
        let mut q = self.queues.lock();
        Self::wake_locked(&mut q, key, bitset, n.max(1))
    }

    /// FUTEX_REQUEUE / FUTEX_CMP_REQUEUE: wakes up to `nwake` waiters of
    /// `from` and moves up to `nmove` of the rest to `to`, if `check()`
    /// (under the table lock) passes. Returns woken + moved.
    pub fn requeue(
        &self,
        from: FutexKey,
        to: FutexKey,
        nwake: u32,
        nmove: u32,
        check: impl FnOnce() -> Result<bool, Errno>,
    ) -> Result<u32, Errno> {
        let mut q = self.queues.lock();
        if !check()? {
            return Err(Errno::EAGAIN);
        }
        let woke = Self::wake_locked(&mut q, from, u32::MAX, nwake);
        if from == to {
            return Ok(woke);
        }
        let mut moved = Vec::new();
        if let Some(v) = q.get_mut(&from) {
            let n = (nmove as usize).min(v.len());
            moved = v.drain(..n).collect();
            if v.is_empty() {
                q.remove(&from);
            }
        }
        let count = moved.len() as u32;
        for w in &moved {
            *w.key.lock() = to;
        }
        if !moved.is_empty() {
            q.entry(to).or_default().extend(moved);
        }
        Ok(woke + count)
    }

    /// FUTEX_WAKE_OP: under the table lock, runs `op` (the atomic update
    /// of the second word, returning whether its old value passes the
    /// comparison), then wakes up to `n1` waiters of `k1` and, if the
    /// comparison passed, up to `n2` of `k2`.
    pub fn wake_op(
        &self,
        k1: FutexKey,
        k2: FutexKey,
        n1: u32,
        n2: u32,
        op: impl FnOnce() -> Result<bool, Errno>,
    ) -> Result<u32, Errno> {
        let mut q = self.queues.lock();
        let pass = op()?;
        let mut woke = Self::wake_locked(&mut q, k1, u32::MAX, n1.max(1));
        if pass {
            woke += Self::wake_locked(&mut q, k2, u32::MAX, n2.max(1));
        }
        Ok(woke)
    }
}

/// What a priority-inheritance lock attempt found.
pub enum PiAttempt {
    /// The lock is the caller's now.
    Taken,
    /// Another task holds it (the owner's tid): the caller is queued.
    Queued(Arc<FutexWaiter>, i32),
    /// The caller holds it already.
    Deadlock,
}

/// The owner-tid bits and flag bits of a PI futex word.
pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
pub const FUTEX_WAITERS: u32 = 0x8000_0000;
pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;

impl FutexTable {
    /// One attempt at a PI lock for `tid`, under the table lock: takes a
    /// free word (keeping FUTEX_WAITERS when others wait), or marks it
    /// FUTEX_WAITERS and queues `waiter` (unless `queue` is false, for
    /// FUTEX_TRYLOCK_PI). `update` changes the word atomically and
    /// returns its old value.
    pub fn pi_attempt(
        &self,
        key: FutexKey,
        tid: u32,
        waiter: &Arc<Waiter>,
        queue: bool,
        update: impl FnOnce(&mut dyn FnMut(u32) -> Option<u32>) -> Result<u32, Errno>,
    ) -> Result<Option<PiAttempt>, Errno> {
        let mut q = self.queues.lock();
        let others = q.get(&key).is_some_and(|v| !v.is_empty());
        let mut outcome = None;
        let old = update(&mut |v| {
            let owner = v & FUTEX_TID_MASK;
            if owner == 0 {
                let w = if others { FUTEX_WAITERS } else { 0 };
                outcome = Some(true);
                Some(tid | (v & FUTEX_OWNER_DIED) | w)
            } else if owner == tid {
                outcome = Some(false);
                None
            } else if queue {
                outcome = None;
                Some(v | FUTEX_WAITERS)
            } else {
                outcome = None;
                None
            }
        })?;
        match outcome {
            Some(true) => Ok(Some(PiAttempt::Taken)),
            Some(false) => Ok(Some(PiAttempt::Deadlock)),
            None if !queue => Ok(None),
            None => {
                let w = Arc::new(FutexWaiter {
                    bitset: u32::MAX,
                    waiter: waiter.clone(),
                    woken: AtomicBool::new(false),
                    key: Mutex::new(key),
                });
                q.entry(key).or_default().push(w.clone());
                Ok(Some(PiAttempt::Queued(w, (old & FUTEX_TID_MASK) as i32)))
            }
        }
    }

    /// FUTEX_UNLOCK_PI for `tid`: EPERM unless it owns the word; the word
    /// is released (FUTEX_WAITERS kept while others wait) and the first
    /// waiter woken to take it.
    pub fn pi_unlock(
        &self,
        key: FutexKey,
        tid: u32,
        update: impl FnOnce(&mut dyn FnMut(u32) -> Option<u32>) -> Result<u32, Errno>,
    ) -> Result<(), Errno> {
        let mut q = self.queues.lock();
        let waiting = q.get(&key).map(|v| v.len()).unwrap_or(0);
        let mut mine = true;
        update(&mut |v| {
            if v & FUTEX_TID_MASK != tid {
                mine = false;
                return None;
            }
            Some(if waiting > 0 { FUTEX_WAITERS } else { 0 })
        })?;
        if !mine {
            return Err(Errno::EPERM);
        }
        Self::wake_locked(&mut q, key, u32::MAX, 1);
        Ok(())
    }
}
