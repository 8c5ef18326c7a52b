//! Futexes: wait queues keyed by address space and address.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::errno::Errno;

/// Identifies a futex word: the address space (by identity) and the
/// address. Shared futexes across address spaces come with shared memory.
pub type FutexKey = (usize, u64);

struct Waiter {
    bitset: u32,
    woken: Arc<(Mutex<bool>, Condvar)>,
}

#[derive(Default)]
pub struct FutexTable {
    queues: Mutex<HashMap<FutexKey, Vec<Waiter>>>,
}

impl FutexTable {
    /// Waits on `key` if `check()` (run under the table lock, so no wake
    /// can slip in between) says the word still holds the expected value.
    /// `deadline` None waits forever.
    pub fn wait(
        &self,
        key: FutexKey,
        bitset: u32,
        check: impl FnOnce() -> Result<bool, Errno>,
        deadline: Option<Instant>,
    ) -> Result<(), Errno> {
        let woken = Arc::new((Mutex::new(false), Condvar::new()));
        {
            let mut q = self.queues.lock().unwrap();
            if !check()? {
                return Err(Errno::EAGAIN);
            }
            q.entry(key).or_default().push(Waiter {
                bitset,
                woken: woken.clone(),
            });
        }
        let (lock, cv) = &*woken;
        let mut done = lock.lock().unwrap();
        while !*done {
            match deadline {
                None => done = cv.wait(done).unwrap(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    done = cv.wait_timeout(done, d - now).unwrap().0;
                }
            }
        }
        if *done {
            return Ok(());
        }
        drop(done);
        // Timed out: leave the queue, unless a wake raced us.
        let mut q = self.queues.lock().unwrap();
        if let Some(v) = q.get_mut(&key) {
            v.retain(|w| !Arc::ptr_eq(&w.woken, &woken));
            if v.is_empty() {
                q.remove(&key);
            }
        }
        if *woken.0.lock().unwrap() {
            return Ok(());
        }
        Err(Errno::ETIMEDOUT)
    }

    /// Wakes up to `n` waiters on `key` whose bitset intersects `bitset`.
    pub fn wake(&self, key: FutexKey, bitset: u32, n: u32) -> u32 {
        let mut q = self.queues.lock().unwrap();
        let Some(v) = q.get_mut(&key) else {
            return 0;
        };
        let mut woke = 0;
        let mut i = 0;
        while i < v.len() && woke < n {
            if v[i].bitset & bitset != 0 {
                let w = v.remove(i);
                *w.woken.0.lock().unwrap() = true;
                w.woken.1.notify_one();
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
}
