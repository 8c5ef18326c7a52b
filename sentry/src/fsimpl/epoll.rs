//! epoll instances, as Linux's `fs/eventpoll.c` makes them.
//!
//! An instance keeps an interest set of (open file description, fd)
//! pairs and a ready list. Registering a file puts a callback on the
//! file's wait queue ([`WaitCallback`], Linux's `ep_poll_callback`); a
//! notification of the queue puts the file on the ready list, and a wait
//! looks only at the files on it: a wait costs what is ready, not what is
//! registered. A scan asks each file on the list for its readiness again
//! (a notification only says something changed), reports it, and keeps a
//! level-triggered file on the list for the next wait.
//!
//! A registration follows its open file description: it is not a
//! reference (closing the last fd of a description removes it from every
//! instance, through [`Watchers`]), and an fd that is closed while a dup of
//! it lives on keeps its registration, under the old fd number.
//!
//! Instances nest: an instance can watch another. Adding one to another
//! checks, as Linux does, that no loop forms and that no chain of
//! instances grows longer than [`EP_MAX_NESTS`] links (ELOOP), and that no
//! file gets more wakeup paths than Linux's limits allow (EINVAL).
//!
//! Locks, in the order they nest: the sandbox-wide nesting lock (adds
//! that may nest), an instance's `items` (Linux's `ep->mtx`; held by
//! control operations and scans, inner instances' after outer ones'), a
//! file's wait-queue lock (held while callbacks run), an instance's
//! `ready` (Linux's `ep->lock`, the innermost: nothing is locked under
//! it). A description's last reference is never dropped while `items` is
//! held (its [`Watchers`] would take it again).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::errno::Errno;
use crate::kernel::waiter::{ArcRegistration, Events, WaitCallback, WaitQueue, ALL_EVENTS};
use crate::sync::LockExt;
use crate::vfs::{FileDescription, FileImpl};

pub const EPOLLIN: u32 = libc::EPOLLIN as u32;
pub const EPOLLOUT: u32 = libc::EPOLLOUT as u32;
pub const EPOLLERR: u32 = libc::EPOLLERR as u32;
pub const EPOLLHUP: u32 = libc::EPOLLHUP as u32;
pub const EPOLLRDNORM: u32 = libc::EPOLLRDNORM as u32;
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;

/// The bits of a registration that are not events.
pub const EP_PRIVATE_BITS: u32 = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;
/// What an exclusive registration may ask for.
pub const EPOLLEXCLUSIVE_OK_BITS: u32 =
    EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;
/// The longest chain of instances watching instances, in links.
pub const EP_MAX_NESTS: usize = 4;
/// Wakeup paths of each length (1 to 5 links) one file may have, past
/// length 1 (Linux's `path_limits`).
const PATH_LIMITS: [usize; 5] = [1000, 500, 100, 50, 10];

/// The registrations watching one open file description. A
/// [`FileDescription`] owns one; when the description goes, so do they
/// (Linux's `eventpoll_release_file`).
#[derive(Default)]
pub struct Watchers(Arc<WatchList>);

/// Registrations watching a file, weakly (an instance owns its items).
type WatchList = Mutex<Vec<Weak<Item>>>;

impl Watchers {
    fn list(&self) -> Arc<WatchList> {
        self.0.clone()
    }
}

impl Drop for Watchers {
    /// The description is going: its registrations stop at once and
    /// leave their instances' interest sets at the instances' next use.
    /// (A description's last reference may go where locks are held that
    /// a scan, holding its instance's `items`, waits for: the task list,
    /// which a pidfd's readiness takes. So this never takes `items`.)
    fn drop(&mut self) {
        let items = std::mem::take(&mut *self.0.locked());
        for item in items.iter().filter_map(Weak::upgrade) {
            if let Some(ep) = item.ep.upgrade() {
                ep.release(&item);
            }
        }
    }
}

/// Live registrations of a watch list, pruning those that went.
fn live(list: &WatchList) -> Vec<Arc<Item>> {
    let mut l = list.locked();
    l.retain(|w| w.strong_count() > 0);
    l.iter().filter_map(Weak::upgrade).collect()
}

/// One registration: a file (by description and fd) in an instance.
pub struct Item {
    ep: Weak<Ep>,
    key: (usize, i32),
    /// The description watched; not kept alive by the registration.
    file: Weak<FileDescription>,
    /// The watch list of that description, which this item is on.
    file_watchers: Arc<WatchList>,
    /// The instance watched, when the file is an epoll instance.
    target: Option<Weak<Ep>>,
    /// The registration's events (with its private bits) and data.
    events: AtomicU32,
    data: AtomicU64,
    /// On the ready list (or on the list a scan took): Linux's
    /// `ep_is_linked`. Changed under `ready`, or by the scan that took
    /// the list.
    linked: AtomicBool,
    /// Noted by a callback during a scan (Linux's overflow list).
    in_ovf: AtomicBool,
    removed: AtomicBool,
    /// The callback on the file's wait queue.
    reg: Mutex<Option<ArcRegistration>>,
}

impl Item {
    fn events(&self) -> u32 {
        self.events.load(Ordering::Relaxed)
    }

    fn unregister(&self) {
        let reg = self.reg.locked().take();
        drop(reg);
    }
}

/// The callback an item puts on its file's queue. It holds the item
/// weakly: the instance owns its items.
struct Hook(Weak<Item>);

impl WaitCallback for Hook {
    /// Linux's `ep_poll_callback`: puts the item on the ready list (or
    /// the overflow list, during a scan) and wakes the instance's
    /// waiters. For an exclusive item, whether a waiter was there to
    /// take the event.
    fn notify(&self, key: Events) -> bool {
        let Some(item) = self.0.upgrade() else {
            return false;
        };
        let events = item.events();
        let exclusive = events & EPOLLEXCLUSIVE != 0;
        let Some(ep) = item.ep.upgrade() else {
            return !exclusive;
        };
        // A notification without events says "something changed".
        let key = if key == ALL_EVENTS { 0 } else { key };
        if events & !EP_PRIVATE_BITS == 0 || (key != 0 && key & events == 0) {
            return !exclusive;
        }
        let mut ewake = !exclusive;
        {
            let mut r = ep.ready.lock();
            if item.removed.load(Ordering::Relaxed) {
                return !exclusive;
            }
            if r.scanning {
                if !item.in_ovf.swap(true, Ordering::Relaxed) {
                    r.ovf.push(item.clone());
                }
            } else if !item.linked.swap(true, Ordering::Relaxed) {
                r.list.push_back(item.clone());
            }
            if exclusive && !ep.wq.is_empty() {
                ewake = match key & (EPOLLIN | EPOLLOUT) {
                    0 => true,
                    k if k == EPOLLIN => events & EPOLLIN != 0,
                    k if k == EPOLLOUT => events & EPOLLOUT != 0,
                    _ => false,
                };
            }
        }
        ep.wq.notify_all();
        ep.poll_wait.notify(EPOLLIN);
        ewake
    }
}

#[derive(Default)]
struct Ready {
    list: VecDeque<Arc<Item>>,
    /// A scan has taken the list: callbacks note items in `ovf`.
    scanning: bool,
    ovf: Vec<Arc<Item>>,
    /// Items whose descriptions went, still in the interest set.
    released: Vec<Arc<Item>>,
}

/// An epoll instance.
#[derive(Default)]
pub struct Ep {
    /// The interest set, by (description, fd): Linux's red-black tree,
    /// under `ep->mtx`.
    items: Mutex<HashMap<(usize, i32), Arc<Item>>>,
    /// Linux's `ep->lock` and ready list.
    ready: parking_lot::Mutex<Ready>,
    /// Tasks in epoll_wait (Linux's `ep->wq`).
    wq: WaitQueue,
    /// Pollers of the instance's file: poll, select, outer instances
    /// (Linux's `ep->poll_wait`).
    poll_wait: Arc<WaitQueue>,
    /// The registrations watching this instance's own file.
    refs: OnceLock<Arc<WatchList>>,
}

/// A ready event as epoll_wait reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub events: u32,
    pub data: u64,
}

/// What a scan reported, to take back if the copy to the guest fails.
pub struct Reported {
    item: Arc<Item>,
    events: u32,
    requeued: bool,
}

fn key_of(file: &Arc<FileDescription>, fd: i32) -> (usize, i32) {
    (Arc::as_ptr(file) as usize, fd)
}

/// The instance behind a description, if it is an epoll file.
pub fn epoll_of(f: &FileDescription) -> Option<Arc<Ep>> {
    f.imp
        .as_any()
        .and_then(|a| a.downcast_ref::<EventPoll>())
        .map(|e| e.ep.clone())
}

/// Serializes adds that may nest instances (Linux's `epnested_mutex`).
static NESTED: Mutex<()> = Mutex::new(());

/// The operations of epoll_ctl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Del,
    Mod,
    Other,
}

impl Ep {
    fn refs(&self) -> Vec<Arc<Item>> {
        self.refs.get().map(|l| live(l)).unwrap_or_default()
    }

    /// Whether events may be ready: Linux's `ep_events_available`.
    pub fn events_available(&self) -> bool {
        let r = self.ready.lock();
        !r.list.is_empty() || r.scanning
    }

    /// The queue epoll_wait sleeps on.
    pub fn wait_queue(&self) -> &WaitQueue {
        &self.wq
    }

    /// An item whose description went (Linux's `eventpoll_release_file`):
    /// it leaves its queue and the ready list now, the interest set at
    /// the next [`Ep::lock_items`].
    fn release(&self, item: &Arc<Item>) {
        item.unregister();
        let mut r = self.ready.lock();
        item.removed.store(true, Ordering::Relaxed);
        if item.linked.swap(false, Ordering::Relaxed) {
            r.list.retain(|i| !Arc::ptr_eq(i, item));
        }
        r.released.push(item.clone());
    }

    /// The interest set, without the items released since its last use.
    fn lock_items(&self) -> std::sync::MutexGuard<'_, HashMap<(usize, i32), Arc<Item>>> {
        let mut items = self.items.locked();
        let released = std::mem::take(&mut self.ready.lock().released);
        for item in released {
            if items.get(&item.key).is_some_and(|i| Arc::ptr_eq(i, &item)) {
                items.remove(&item.key);
            }
        }
        items
    }

    fn remove_locked(&self, items: &mut HashMap<(usize, i32), Arc<Item>>, item: &Arc<Item>) {
        match items.get(&item.key) {
            Some(i) if Arc::ptr_eq(i, item) => {}
            _ => return,
        }
        items.remove(&item.key);
        item.unregister();
        item.file_watchers
            .locked()
            .retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(item)));
        let mut r = self.ready.lock();
        item.removed.store(true, Ordering::Relaxed);
        if item.linked.swap(false, Ordering::Relaxed) {
            r.list.retain(|i| !Arc::ptr_eq(i, item));
        }
    }

    /// Puts `item` on the ready list if it is not there, and wakes the
    /// instance's waiters (an add or modify that found it ready).
    fn make_ready(&self, item: &Arc<Item>) {
        {
            let mut r = self.ready.lock();
            if r.scanning {
                if !item.in_ovf.swap(true, Ordering::Relaxed) {
                    r.ovf.push(item.clone());
                }
            } else if item.linked.swap(true, Ordering::Relaxed) {
                return;
            } else {
                r.list.push_back(item.clone());
            }
        }
        self.wq.notify_all();
        self.poll_wait.notify(EPOLLIN);
    }

    /// Linux's `ep_start_scan`: takes the ready list.
    fn start_scan(&self) -> VecDeque<Arc<Item>> {
        let mut r = self.ready.lock();
        r.scanning = true;
        std::mem::take(&mut r.list)
    }

    /// Linux's `ep_done_scan`: the items the scan did not get to, then
    /// those callbacks noted during it, go back on the ready list ahead
    /// of what the scan put back.
    fn done_scan(&self, rest: VecDeque<Arc<Item>>) {
        let wake = {
            let mut r = self.ready.lock();
            let ovf = std::mem::take(&mut r.ovf);
            let mut front = rest;
            for item in ovf {
                item.in_ovf.store(false, Ordering::Relaxed);
                if item.removed.load(Ordering::Relaxed) {
                    continue;
                }
                if !item.linked.swap(true, Ordering::Relaxed) {
                    front.push_back(item);
                }
            }
            while let Some(i) = front.pop_back() {
                r.list.push_front(i);
            }
            r.scanning = false;
            !r.list.is_empty()
        };
        if wake {
            self.wq.notify_all();
        }
    }

    /// The events of `item` ready now (Linux's `ep_item_poll`). The
    /// description, if it still lives, goes to `keep`, to be dropped
    /// after the caller's locks.
    fn item_poll(item: &Item, keep: &mut Vec<Arc<FileDescription>>) -> u32 {
        let Some(f) = item.file.upgrade() else {
            return 0;
        };
        let events = item.events();
        let want = (events & 0xffff) as u16 as i16;
        let r = f.imp.readiness(&f, want) as u16 as u32;
        keep.push(f);
        r & events
    }

    /// Linux's `ep_send_events`: up to `max` ready events, in ready-list
    /// order.
    pub fn send_events(&self, max: usize) -> (Vec<Event>, Vec<Reported>) {
        let mut keep = Vec::new();
        let mut out = Vec::new();
        let mut reported = Vec::new();
        {
            let _items = self.lock_items();
            let mut tx = self.start_scan();
            while out.len() < max {
                let Some(item) = tx.pop_front() else { break };
                item.linked.store(false, Ordering::Relaxed);
                if item.removed.load(Ordering::Relaxed) {
                    continue;
                }
                let revents = Self::item_poll(&item, &mut keep);
                if revents == 0 {
                    continue;
                }
                out.push(Event {
                    events: revents,
                    data: item.data.load(Ordering::Relaxed),
                });
                let events = item.events();
                let mut requeued = false;
                if events & EPOLLONESHOT != 0 {
                    item.events
                        .store(events & EP_PRIVATE_BITS, Ordering::Relaxed);
                } else if events & EPOLLET == 0 {
                    // Level-triggered: looked at again by the next wait.
                    let mut r = self.ready.lock();
                    item.linked.store(true, Ordering::Relaxed);
                    r.list.push_back(item.clone());
                    requeued = true;
                }
                reported.push(Reported {
                    item,
                    events,
                    requeued,
                });
            }
            self.done_scan(tx);
        }
        drop(keep);
        (out, reported)
    }

    /// Takes back reports whose events could not be copied to the guest:
    /// they stay ready, as Linux puts an item back on the list when its
    /// copy faults.
    pub fn unreport(&self, reported: &[Reported]) {
        let _items = self.lock_items();
        let mut r = self.ready.lock();
        for rep in reported.iter().rev() {
            if rep.item.removed.load(Ordering::Relaxed) {
                continue;
            }
            if rep.events & EPOLLONESHOT != 0 {
                rep.item.events.store(rep.events, Ordering::Relaxed);
            }
            if rep.requeued {
                r.list.retain(|i| !Arc::ptr_eq(i, &rep.item));
                rep.item.linked.store(false, Ordering::Relaxed);
            }
            if !rep.item.linked.swap(true, Ordering::Relaxed) {
                r.list.push_front(rep.item.clone());
            }
        }
    }

    /// Whether an event is ready, for poll on the instance's file (Linux's
    /// `__ep_eventpoll_poll`): items on the list that are not ready leave
    /// it.
    fn poll_ready(&self) -> bool {
        let mut keep = Vec::new();
        let mut ready = false;
        {
            let _items = self.lock_items();
            let mut tx = self.start_scan();
            let mut rest = VecDeque::new();
            while let Some(item) = tx.pop_front() {
                if !item.removed.load(Ordering::Relaxed) && Self::item_poll(&item, &mut keep) != 0 {
                    rest.push_back(item);
                    ready = true;
                    break;
                }
                item.linked.store(false, Ordering::Relaxed);
            }
            rest.extend(tx);
            self.done_scan(rest);
        }
        drop(keep);
        ready
    }

    /// epoll_ctl on this instance, once the syscall has checked its
    /// arguments: `target` is open at `fd`, can be polled, and is not
    /// this instance's file. `event` carries the events with
    /// EPOLLERR|EPOLLHUP not yet added.
    pub fn ctl(
        self: &Arc<Self>,
        op: Op,
        fd: i32,
        target: &Arc<FileDescription>,
        event: Event,
    ) -> Result<(), Errno> {
        let tep = epoll_of(target);
        // Adds that may nest instances take the nesting lock and check
        // the graph (Linux's full_check).
        let full_check = op == Op::Add && (tep.is_some() || !self.refs().is_empty());
        let _nested = full_check.then(|| NESTED.locked());
        let mut check_files: Vec<Arc<WatchList>> = Vec::new();
        if full_check {
            if let Some(tep) = &tep {
                if !loop_check(self, tep, &mut check_files) {
                    return Err(Errno::ELOOP);
                }
            }
        }
        let mut keep = Vec::new();
        let r = {
            let mut items = self.lock_items();
            let key = key_of(target, fd);
            let found = items.get(&key).cloned();
            match (op, found) {
                (Op::Add, Some(_)) => Err(Errno::EEXIST),
                (Op::Add, None) => self.insert(
                    &mut items,
                    key,
                    target,
                    tep.as_ref(),
                    event,
                    full_check.then_some(&mut check_files),
                    &mut keep,
                ),
                (Op::Del, Some(item)) => {
                    self.remove_locked(&mut items, &item);
                    Ok(())
                }
                (Op::Mod, Some(item)) => {
                    if item.events() & EPOLLEXCLUSIVE != 0 {
                        Err(Errno::EINVAL)
                    } else {
                        // Linux's ep_modify: the new mask first, then a
                        // look at the file.
                        item.events
                            .store(event.events | EPOLLERR | EPOLLHUP, Ordering::Relaxed);
                        item.data.store(event.data, Ordering::Relaxed);
                        if Self::item_poll(&item, &mut keep) != 0 {
                            self.make_ready(&item);
                        }
                        Ok(())
                    }
                }
                (Op::Del | Op::Mod, None) => Err(Errno::ENOENT),
                (Op::Other, _) => Err(Errno::EINVAL),
            }
        };
        drop(keep);
        r
    }

    /// Linux's `ep_insert`.
    #[allow(clippy::too_many_arguments)]
    fn insert(
        self: &Arc<Self>,
        items: &mut HashMap<(usize, i32), Arc<Item>>,
        key: (usize, i32),
        target: &Arc<FileDescription>,
        tep: Option<&Arc<Ep>>,
        event: Event,
        check_files: Option<&mut Vec<Arc<WatchList>>>,
        keep: &mut Vec<Arc<FileDescription>>,
    ) -> Result<(), Errno> {
        let events = event.events | EPOLLERR | EPOLLHUP;
        let item = Arc::new(Item {
            ep: Arc::downgrade(self),
            key,
            file: Arc::downgrade(target),
            file_watchers: target.epoll_watchers.list(),
            target: tep.map(Arc::downgrade),
            events: AtomicU32::new(events),
            data: AtomicU64::new(event.data),
            linked: AtomicBool::new(false),
            in_ovf: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            reg: Mutex::new(None),
        });
        {
            let mut w = item.file_watchers.locked();
            w.retain(|w| w.strong_count() > 0);
            w.push(Arc::downgrade(&item));
        }
        items.insert(key, item.clone());
        if let Some(files) = check_files {
            if tep.is_none() {
                list_file(files, &item.file_watchers);
            }
            if !reverse_path_check(files) {
                self.remove_locked(items, &item);
                return Err(Errno::EINVAL);
            }
        }
        // The callback goes on the queue before the first look, so that
        // no change between the two is lost.
        if let Some(q) = target.imp.waitq(target) {
            let hook: Arc<dyn WaitCallback> = Arc::new(Hook(Arc::downgrade(&item)));
            let reg = q.register_callback(hook, ALL_EVENTS, events & EPOLLEXCLUSIVE != 0);
            *item.reg.locked() = Some(reg);
        }
        if Self::item_poll(&item, keep) != 0 {
            self.make_ready(&item);
        }
        Ok(())
    }

    /// Takes every item off (the instance's file is going: Linux's
    /// `ep_clear_and_put`).
    fn clear(&self) {
        self.poll_wait.notify_all();
        let items: Vec<Arc<Item>> = {
            let mut m = self.items.locked();
            m.drain().map(|(_, i)| i).collect()
        };
        for item in &items {
            item.removed.store(true, Ordering::Relaxed);
            item.unregister();
            item.file_watchers
                .locked()
                .retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(item)));
        }
        let mut r = self.ready.lock();
        r.list.clear();
        r.ovf.clear();
        r.released.clear();
    }
}

/// Adds a file to those whose wakeup paths are checked (Linux's
/// `list_file`), once.
fn list_file(files: &mut Vec<Arc<WatchList>>, list: &Arc<WatchList>) {
    if !files.iter().any(|l| Arc::ptr_eq(l, list)) {
        files.push(list.clone());
    }
}

/// Linux's `ep_loop_check`: whether adding instance `to` into `ep`
/// keeps the graph free of loops and its chains at most
/// [`EP_MAX_NESTS`] links long. The non-epoll files below `to` are
/// added to `files`, for the path check.
fn loop_check(ep: &Arc<Ep>, to: &Arc<Ep>, files: &mut Vec<Arc<WatchList>>) -> bool {
    let mut seen: HashMap<usize, usize> = HashMap::new();
    let depth = loop_check_down(to, 0, ep, &mut seen, files);
    if depth > EP_MAX_NESTS {
        return false;
    }
    let up = depth_up(ep, &mut seen);
    depth + 1 + up <= EP_MAX_NESTS
}

/// Linux's `ep_loop_check_proc`: the depth of the subtree below `e`, or
/// more than [`EP_MAX_NESTS`] if it reaches `into` or goes too deep.
fn loop_check_down(
    e: &Arc<Ep>,
    depth: usize,
    into: &Arc<Ep>,
    seen: &mut HashMap<usize, usize>,
    files: &mut Vec<Arc<WatchList>>,
) -> usize {
    let id = Arc::as_ptr(e) as usize;
    if let Some(&d) = seen.get(&id) {
        return d;
    }
    seen.insert(id, 0);
    let mut result = 0;
    let children: Vec<Arc<Item>> = e.lock_items().values().cloned().collect();
    for item in children {
        match item.target.as_ref().and_then(Weak::upgrade) {
            Some(t) => {
                result = if Arc::ptr_eq(&t, into) || depth > EP_MAX_NESTS {
                    EP_MAX_NESTS + 1
                } else {
                    result.max(loop_check_down(&t, depth + 1, into, seen, files) + 1)
                };
                if result > EP_MAX_NESTS {
                    break;
                }
            }
            None if item.target.is_none() => list_file(files, &item.file_watchers),
            None => {}
        }
    }
    seen.insert(id, result);
    result
}

/// Linux's `ep_get_upwards_depth_proc`: the longest chain of instances
/// above `e`.
fn depth_up(e: &Arc<Ep>, seen: &mut HashMap<usize, usize>) -> usize {
    let id = Arc::as_ptr(e) as usize;
    if let Some(&d) = seen.get(&id) {
        return d;
    }
    let mut result = 0;
    for item in e.refs() {
        if let Some(parent) = item.ep.upgrade() {
            result = result.max(depth_up(&parent, seen) + 1);
        }
    }
    seen.insert(id, result);
    result
}

/// Linux's `reverse_path_check`: no file in `files` may have more wakeup
/// paths of a length than [`PATH_LIMITS`] allows, nor paths longer than
/// [`EP_MAX_NESTS`] + 1 links.
fn reverse_path_check(files: &[Arc<WatchList>]) -> bool {
    files.iter().all(|list| {
        let mut counts = [0usize; 5];
        reverse_path_proc(list, 0, &mut counts)
    })
}

fn reverse_path_proc(list: &WatchList, depth: usize, counts: &mut [usize; 5]) -> bool {
    if depth > EP_MAX_NESTS {
        return false;
    }
    for item in live(list) {
        let Some(ep) = item.ep.upgrade() else {
            continue;
        };
        let ok = match ep.refs.get() {
            Some(refs) if !live(refs).is_empty() => reverse_path_proc(refs, depth + 1, counts),
            _ => {
                // Any number of paths of length 1.
                depth == 0 || {
                    counts[depth] += 1;
                    counts[depth] <= PATH_LIMITS[depth]
                }
            }
        };
        if !ok {
            return false;
        }
    }
    true
}

/// The file of an epoll instance.
pub struct EventPoll {
    ep: Arc<Ep>,
}

impl EventPoll {
    /// A new instance's file, installed by the caller.
    pub fn new_file() -> Arc<FileDescription> {
        let ep = Arc::new(Ep::default());
        let f = FileDescription::new(libc::O_RDWR as u32, Box::new(EventPoll { ep: ep.clone() }));
        let _ = ep.refs.set(f.epoll_watchers.list());
        f
    }
}

impl Drop for EventPoll {
    fn drop(&mut self) {
        self.ep.clear();
    }
}

/// fstat of an anonymous-inode file: mode 0600 and no type, as Linux's
/// shared anonymous inode.
pub fn anon_stat() -> libc::stat {
    let mut st: libc::stat = crate::hostcall::zeroed();
    st.st_mode = 0o600;
    st.st_nlink = 1;
    st.st_blksize = 4096;
    st
}

impl FileImpl for EventPoll {
    fn read(&self, _f: &FileDescription, _dst: &mut [u8], _o: Option<u64>) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }
    fn write(&self, _f: &FileDescription, _src: &[u8], _o: Option<u64>) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }
    fn empty_io_reaches_file(&self) -> bool {
        true
    }
    fn positional(&self, _f: &FileDescription) -> bool {
        false
    }
    /// Linux's noop_llseek: the position stays 0.
    fn seek(&self, _f: &FileDescription, _off: i64, _whence: i32) -> Result<u64, Errno> {
        Ok(0)
    }
    fn stat(&self, _f: &FileDescription) -> Result<libc::stat, Errno> {
        Ok(anon_stat())
    }
    /// Every request but the generic ones (which the syscall handles) is
    /// EINVAL; the busy-poll parameters (EPIOCSPARAMS, EPIOCGPARAMS) have
    /// no meaning without a network device.
    fn ioctl(
        &self,
        _f: &FileDescription,
        t: &mut crate::kernel::task::Task,
        request: u32,
        _arg: u64,
    ) -> Result<u64, Errno> {
        const EPIOCSPARAMS: u32 = 0x4008_8a01;
        const EPIOCGPARAMS: u32 = 0x8008_8a02;
        if request == EPIOCSPARAMS || request == EPIOCGPARAMS {
            return super::super::syscalls::unimplemented(t, "epoll busy-poll ioctls");
        }
        Err(Errno::EINVAL)
    }
    fn readiness(&self, _f: &FileDescription, events: i16) -> i16 {
        if self.ep.poll_ready() {
            events & (libc::POLLIN | libc::POLLRDNORM)
        } else {
            0
        }
    }
    fn waitq(&self, _f: &FileDescription) -> Option<Arc<WaitQueue>> {
        Some(self.ep.poll_wait.clone())
    }
    fn name(&self) -> String {
        "anon_inode:[eventpoll]".to_string()
    }

    /// A line a registration, as Linux's `ep_show_fdinfo`.
    fn fdinfo(&self, _f: &FileDescription) -> String {
        use std::fmt::Write;
        let mut keep = Vec::new();
        let mut out = String::new();
        {
            let items = self.ep.lock_items();
            let mut list: Vec<&Arc<Item>> = items.values().collect();
            list.sort_by_key(|i| i.key);
            for item in list {
                let Some(f) = item.file.upgrade() else {
                    continue;
                };
                let pos = f.imp.seek(&f, 0, libc::SEEK_CUR).unwrap_or(0);
                let st = f.stat().ok();
                let ino = st.map_or(0, |s| s.st_ino);
                // The kernel's dev_t: major in the high 12 bits.
                let dev = st.map_or(0, |s| {
                    (libc::major(s.st_dev) as u64) << 20 | libc::minor(s.st_dev) as u64
                });
                let _ = writeln!(
                    out,
                    "tfd: {:8} events: {:8x} data: {:16x}  pos:{} ino:{:x} sdev:{:x}",
                    item.key.1,
                    item.events(),
                    item.data.load(Ordering::Relaxed),
                    pos,
                    ino,
                    dev
                );
                keep.push(f);
            }
        }
        drop(keep);
        out
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A file whose readiness the test sets, counting the looks at it.
    struct Probe {
        ready: Arc<AtomicBool>,
        looks: Arc<AtomicUsize>,
        queue: Arc<WaitQueue>,
    }

    impl FileImpl for Probe {
        fn read(
            &self,
            _f: &FileDescription,
            _d: &mut [u8],
            _o: Option<u64>,
        ) -> Result<usize, Errno> {
            Err(Errno::EINVAL)
        }
        fn write(&self, _f: &FileDescription, _s: &[u8], _o: Option<u64>) -> Result<usize, Errno> {
            Err(Errno::EINVAL)
        }
        fn seek(&self, _f: &FileDescription, _o: i64, _w: i32) -> Result<u64, Errno> {
            Ok(0)
        }
        fn readiness(&self, _f: &FileDescription, events: i16) -> i16 {
            self.looks.fetch_add(1, Ordering::Relaxed);
            if self.ready.load(Ordering::Relaxed) {
                events & libc::POLLIN
            } else {
                0
            }
        }
        fn waitq(&self, _f: &FileDescription) -> Option<Arc<WaitQueue>> {
            Some(self.queue.clone())
        }
    }

    struct File {
        desc: Arc<FileDescription>,
        ready: Arc<AtomicBool>,
        queue: Arc<WaitQueue>,
    }

    fn probe(looks: &Arc<AtomicUsize>) -> File {
        let queue = Arc::new(WaitQueue::default());
        let ready = Arc::new(AtomicBool::new(false));
        let desc = FileDescription::new(
            libc::O_RDWR as u32,
            Box::new(Probe {
                ready: ready.clone(),
                looks: looks.clone(),
                queue: queue.clone(),
            }),
        );
        File { desc, ready, queue }
    }

    /// A wait looks only at the files that were notified: 10,000
    /// registered, one active, one look a wait (and one more that finds
    /// a level-triggered file no longer ready).
    #[test]
    fn a_wait_costs_what_is_ready_not_what_is_registered() {
        let looks = Arc::new(AtomicUsize::new(0));
        let epf = EventPoll::new_file();
        let ep = epoll_of(&epf).unwrap();
        let files: Vec<File> = (0..10_000).map(|_| probe(&looks)).collect();
        for (i, f) in files.iter().enumerate() {
            let ev = Event {
                events: EPOLLIN,
                data: i as u64,
            };
            ep.ctl(Op::Add, i as i32, &f.desc, ev).unwrap();
        }
        // Each add looked once.
        assert_eq!(looks.swap(0, Ordering::Relaxed), 10_000);
        assert!(ep.send_events(16).0.is_empty());
        assert_eq!(looks.load(Ordering::Relaxed), 0, "nothing was notified");
        for round in 0..100usize {
            let k = (round * 37) % files.len();
            files[k].ready.store(true, Ordering::Relaxed);
            files[k].queue.notify(libc::POLLIN as u32);
            let (got, _) = ep.send_events(16);
            let want = Event {
                events: EPOLLIN,
                data: k as u64,
            };
            assert_eq!(got, vec![want]);
            files[k].ready.store(false, Ordering::Relaxed);
            assert!(ep.send_events(16).0.is_empty());
        }
        assert_eq!(looks.load(Ordering::Relaxed), 200);
        // The registrations go with their descriptions.
        drop(files);
        assert!(ep.lock_items().is_empty());
    }

    /// Instances nest up to four links; a loop or a fifth link is refused.
    #[test]
    fn nesting_limits() {
        let eps: Vec<_> = (0..6).map(|_| EventPoll::new_file()).collect();
        let ev = Event {
            events: EPOLLIN,
            data: 0,
        };
        let ep = |i: usize| epoll_of(&eps[i]).unwrap();
        for i in 0..4 {
            ep(i).ctl(Op::Add, i as i32 + 1, &eps[i + 1], ev).unwrap();
        }
        assert_eq!(ep(4).ctl(Op::Add, 5, &eps[5], ev), Err(Errno::ELOOP));
        assert_eq!(ep(3).ctl(Op::Add, 0, &eps[0], ev), Err(Errno::ELOOP));
        assert_eq!(ep(0).ctl(Op::Add, 1, &eps[1], ev), Err(Errno::EEXIST));
        assert_eq!(ep(0).ctl(Op::Del, 2, &eps[2], ev), Err(Errno::ENOENT));
        ep(0).ctl(Op::Del, 1, &eps[1], ev).unwrap();
        ep(4).ctl(Op::Add, 5, &eps[5], ev).unwrap();
    }
}
