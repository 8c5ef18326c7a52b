//! The one way a task blocks.
//!
//! Every wait in the sentry (pipes, futexes, sleeps, locks, poll, wait4,
//! host fds) parks the task on its own [`Waiter`]. Whatever the task waits
//! for registers that waiter on a [`WaitQueue`] and notifies the queue when
//! its state changes; signals, exits and stops interrupt the waiter. A
//! blocked task costs no CPU: it sleeps on a condition variable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// Readiness events, as poll's bits (`POLLIN`, `POLLOUT`, ...), plus
/// kernel-internal ones above them.
pub type Events = u32;

/// Every event: for queues whose waiters want any change.
pub const ALL_EVENTS: Events = u32::MAX;

#[derive(Default)]
struct State {
    /// A queue the waiter is registered on was notified.
    woken: bool,
    /// The task must look at its signals, exit or stop.
    interrupted: bool,
}

/// One task's blocking point.
#[derive(Default)]
pub struct Waiter {
    state: Mutex<State>,
    cv: Condvar,
    /// Whether the task sleeps in a wait now (procfs's S, not R).
    sleeping: std::sync::atomic::AtomicBool,
}

/// Why [`Waiter::wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    Woken,
    Interrupted,
    TimedOut,
}

impl Waiter {
    pub fn new() -> Arc<Waiter> {
        Arc::new(Waiter::default())
    }

    /// Forgets earlier notifications, before the caller checks its
    /// condition (registration comes first, so nothing is lost).
    pub fn reset(&self) {
        self.state.lock().woken = false;
    }

    pub fn wake(&self) {
        let mut s = self.state.lock();
        s.woken = true;
        self.cv.notify_one();
    }

    /// Makes the current or next wait return [`Wake::Interrupted`].
    pub fn interrupt(&self) {
        let mut s = self.state.lock();
        s.interrupted = true;
        self.cv.notify_one();
    }

    /// Whether an interrupt is pending.
    pub fn interrupted(&self) -> bool {
        self.state.lock().interrupted
    }

    /// Called by the task when it is about to look at its signals: an
    /// interrupt from before that is handled by the look.
    pub fn clear_interrupt(&self) {
        self.state.lock().interrupted = false;
    }

    /// Sleeps until woken or `deadline`, whatever interrupts come (waits
    /// that signals must not end). True if woken.
    pub fn wait_woken(&self, deadline: Option<Instant>) -> bool {
        let mut s = self.state.lock();
        loop {
            if s.woken {
                s.woken = false;
                return true;
            }
            match deadline {
                None => self.cv.wait(&mut s),
                Some(d) => {
                    if Instant::now() >= d || self.cv.wait_until(&mut s, d).timed_out() {
                        let w = s.woken;
                        s.woken = false;
                        return w;
                    }
                }
            }
        }
    }

    pub fn sleeping(&self) -> bool {
        self.sleeping.load(Ordering::Relaxed)
    }

    /// Sleeps until woken, interrupted or `deadline`. A notification is
    /// consumed; an interrupt stays pending until cleared.
    pub fn wait(&self, deadline: Option<Instant>) -> Wake {
        self.sleeping.store(true, Ordering::Relaxed);
        let w = self.wait_inner(deadline);
        self.sleeping.store(false, Ordering::Relaxed);
        w
    }

    fn wait_inner(&self, deadline: Option<Instant>) -> Wake {
        let mut s = self.state.lock();
        loop {
            if s.interrupted {
                return Wake::Interrupted;
            }
            if s.woken {
                s.woken = false;
                return Wake::Woken;
            }
            match deadline {
                None => self.cv.wait(&mut s),
                Some(d) => {
                    if Instant::now() >= d || self.cv.wait_until(&mut s, d).timed_out() {
                        if s.interrupted {
                            return Wake::Interrupted;
                        }
                        if s.woken {
                            s.woken = false;
                            return Wake::Woken;
                        }
                        return Wake::TimedOut;
                    }
                }
            }
        }
    }
}

/// Blocks on `waiter` until `ready` gives a result, `deadline` passes
/// (`ETIMEDOUT`) or the waiter is interrupted (`ERESTARTSYS`). The waiter
/// is registered on `queues` before the first check, so no change between
/// check and sleep is lost.
pub fn block_waiter<T>(
    waiter: &Arc<Waiter>,
    queues: &[(&WaitQueue, Events)],
    deadline: Option<Instant>,
    mut ready: impl FnMut() -> Option<Result<T, crate::errno::Errno>>,
) -> Result<T, crate::errno::Errno> {
    let _regs: Vec<Registration<'_>> = queues.iter().map(|(q, m)| q.register(waiter, *m)).collect();
    loop {
        waiter.reset();
        if let Some(r) = ready() {
            return r;
        }
        match waiter.wait(deadline) {
            Wake::Woken => {}
            Wake::Interrupted => return Err(crate::errno::Errno::ERESTARTSYS),
            Wake::TimedOut => return Err(crate::errno::Errno::ETIMEDOUT),
        }
    }
}

/// What a queue calls in place of waking a waiter when it is notified:
/// epoll's hook that puts a file on its ready list (Linux's
/// `ep_poll_callback`). It runs with the queue's lock held, so it must
/// not register on or leave this queue; it may notify other queues.
pub trait WaitCallback: Send + Sync {
    /// The queue was notified of `events` ([`ALL_EVENTS`] when the
    /// notifier did not say which). For an exclusive entry, true if the
    /// notification was taken: no later exclusive entry is called.
    fn notify(&self, events: Events) -> bool;
}

enum Target {
    Waiter(Arc<Waiter>),
    Callback {
        cb: Arc<dyn WaitCallback>,
        exclusive: bool,
    },
}

struct Entry {
    id: u64,
    target: Target,
    mask: Events,
}

/// Waiters interested in an object's state changes.
#[derive(Default)]
pub struct WaitQueue {
    entries: Mutex<Vec<Entry>>,
}

static NEXT_ENTRY: AtomicU64 = AtomicU64::new(1);

impl WaitQueue {
    /// Registers `waiter` for the events in `mask` until the returned
    /// guard is dropped.
    pub fn register(&self, waiter: &Arc<Waiter>, mask: Events) -> Registration<'_> {
        let id = NEXT_ENTRY.fetch_add(1, Ordering::Relaxed);
        self.entries.lock().push(Entry {
            id,
            target: Target::Waiter(waiter.clone()),
            mask,
        });
        Registration { queue: self, id }
    }

    /// Registers a callback for the events in `mask` until the returned
    /// guard is dropped. An exclusive callback is called after every
    /// other entry, and only until one exclusive callback takes the
    /// notification (Linux's `add_wait_queue_exclusive`, woken one at a
    /// time).
    pub fn register_callback(
        self: &Arc<Self>,
        cb: Arc<dyn WaitCallback>,
        mask: Events,
        exclusive: bool,
    ) -> ArcRegistration {
        let id = NEXT_ENTRY.fetch_add(1, Ordering::Relaxed);
        self.entries.lock().push(Entry {
            id,
            target: Target::Callback { cb, exclusive },
            mask,
        });
        ArcRegistration {
            queue: self.clone(),
            id,
        }
    }

    /// Wakes every waiter interested in one of `events`, and calls the
    /// callbacks interested in them.
    pub fn notify(&self, events: Events) {
        let e = self.entries.lock();
        let mut exclusive = false;
        for w in e.iter().filter(|w| w.mask & events != 0) {
            match &w.target {
                Target::Waiter(waiter) => waiter.wake(),
                Target::Callback {
                    cb,
                    exclusive: false,
                } => {
                    cb.notify(events);
                }
                Target::Callback {
                    exclusive: true, ..
                } => exclusive = true,
            }
        }
        if exclusive {
            for w in e.iter().filter(|w| w.mask & events != 0) {
                if let Target::Callback {
                    cb,
                    exclusive: true,
                } = &w.target
                {
                    if cb.notify(events) {
                        break;
                    }
                }
            }
        }
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.notify(ALL_EVENTS);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.lock().is_empty()
    }

    fn remove(&self, id: u64) {
        self.entries.lock().retain(|e| e.id != id);
    }
}

/// A waiter's place on a queue; leaves it when dropped.
pub struct Registration<'a> {
    queue: &'a WaitQueue,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.queue.remove(self.id);
    }
}

/// An owned registration, for queues reached through an `Arc`.
pub struct ArcRegistration {
    queue: Arc<WaitQueue>,
    id: u64,
}

impl ArcRegistration {
    pub fn new(queue: Arc<WaitQueue>, waiter: &Arc<Waiter>, mask: Events) -> ArcRegistration {
        let r = queue.register(waiter, mask);
        let id = r.id;
        std::mem::forget(r);
        ArcRegistration { queue, id }
    }
}

impl Drop for ArcRegistration {
    fn drop(&mut self) {
        self.queue.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// Counts its calls; takes (for exclusive entries) when `take`.
    struct Counter {
        calls: AtomicUsize,
        take: bool,
    }

    impl WaitCallback for Counter {
        fn notify(&self, _events: Events) -> bool {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.take
        }
    }

    fn counter(take: bool) -> Arc<Counter> {
        Arc::new(Counter {
            calls: AtomicUsize::new(0),
            take,
        })
    }

    #[test]
    fn callbacks_by_mask_exclusive_ones_until_one_takes() {
        let q = Arc::new(WaitQueue::default());
        let (a, b, x, y, z) = (
            counter(false),
            counter(false),
            counter(false),
            counter(true),
            counter(true),
        );
        let _ra = q.register_callback(a.clone(), 1, false);
        let _rb = q.register_callback(b.clone(), 2, false);
        // Exclusive entries: x declines, y takes, z is not called.
        let _rx = q.register_callback(x.clone(), ALL_EVENTS, true);
        let ry = q.register_callback(y.clone(), ALL_EVENTS, true);
        let _rz = q.register_callback(z.clone(), ALL_EVENTS, true);
        let w = Waiter::new();
        let _rw = q.register(&w, 1);
        q.notify(1);
        let n = |c: &Arc<Counter>| c.calls.load(Ordering::Relaxed);
        assert_eq!((n(&a), n(&b), n(&x), n(&y), n(&z)), (1, 0, 1, 1, 0));
        assert_eq!(w.wait(Some(Instant::now())), Wake::Woken);
        drop(ry);
        q.notify_all();
        assert_eq!((n(&a), n(&b), n(&x), n(&y), n(&z)), (2, 1, 2, 1, 1));
    }

    #[test]
    fn notify_wakes_and_interrupt_sticks() {
        let q = WaitQueue::default();
        let w = Waiter::new();
        let _r = q.register(&w, 1);
        q.notify(2);
        assert_eq!(
            w.wait(Some(Instant::now() + Duration::from_millis(5))),
            Wake::TimedOut
        );
        q.notify(1);
        assert_eq!(w.wait(None), Wake::Woken);
        w.interrupt();
        assert_eq!(w.wait(None), Wake::Interrupted);
        assert_eq!(
            w.wait(None),
            Wake::Interrupted,
            "interrupts stay until cleared"
        );
        w.clear_interrupt();
        let w2 = w.clone();
        let t = std::thread::spawn(move || w2.wait(None));
        std::thread::sleep(Duration::from_millis(10));
        q.notify(1);
        assert_eq!(t.join().unwrap(), Wake::Woken);
    }
}
