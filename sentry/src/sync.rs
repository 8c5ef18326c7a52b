//! Locks that do not poison. A panic in one task (a sentry bug) must not
//! turn every later lock of the same state into a panic in every other
//! task: the state behind the sentry's locks is consistent between
//! operations, so a lock whose holder panicked is taken as it is.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub trait LockExt<T> {
    /// Locks, ignoring poisoning.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> LockExt<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
