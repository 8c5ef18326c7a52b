//! inotify: watches on inodes, the instances that queue their events, and
//! the notification functions the VFS calls where files change (Linux's
//! `fsnotify.h` hooks, with inotify's semantics).
//!
//! A watch lives on its inode ([`Watches`], a field of every inode) and
//! in its instance, which holds the inode while it watches it (as Linux's
//! marks pin theirs). An event on an inode goes to its own watches and,
//! with its name, to its directory's (the place it was last linked);
//! events that the last queued one repeats are dropped, and a full queue
//! takes one IN_Q_OVERFLOW. An inode with no link left sends
//! IN_DELETE_SELF (and its watches end, IN_IGNORED) once no open file
//! holds it: at the unlink, or at the last close, as Linux's dentry
//! release does.
//!
//! The call sites are one line each: [`notify`] (modify, attrib, access,
//! open, close), [`created`], [`linked`], [`removed`], [`renamed`],
//! [`opened`], and the description's own [`description_opened`] and
//! [`description_closed`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::inode::Inode;
use super::{FileDescription, FileImpl};
use crate::errno::Errno;
use crate::kernel::task::Task;
use crate::kernel::waiter::WaitQueue;

pub const IN_ACCESS: u32 = 0x1;
pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_CLOSE_NOWRITE: u32 = 0x10;
pub const IN_OPEN: u32 = 0x20;
pub const IN_MOVED_FROM: u32 = 0x40;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;
pub const IN_DELETE: u32 = 0x200;
pub const IN_DELETE_SELF: u32 = 0x400;
pub const IN_MOVE_SELF: u32 = 0x800;
pub const IN_UNMOUNT: u32 = 0x2000;
pub const IN_Q_OVERFLOW: u32 = 0x4000;
pub const IN_IGNORED: u32 = 0x8000;
pub const IN_ONLYDIR: u32 = 0x0100_0000;
pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
pub const IN_MASK_CREATE: u32 = 0x1000_0000;
pub const IN_MASK_ADD: u32 = 0x2000_0000;
pub const IN_ISDIR: u32 = 0x4000_0000;
pub const IN_ONESHOT: u32 = 0x8000_0000;
pub const IN_ALL_EVENTS: u32 = 0xfff;

/// Bits a watch's mask keeps (events and flags; not the add-time ones).
const WATCH_BITS: u32 = IN_ALL_EVENTS | IN_EXCL_UNLINK | IN_ONESHOT | IN_ONLYDIR | IN_DONT_FOLLOW;

/// Live watches in this process, a hint that lets every hook return at
/// once while nobody watches anything (the common case).
static LIVE_WATCHES: AtomicUsize = AtomicUsize::new(0);

/// The sandbox's inotify limits (`/proc/sys/fs/inotify`) and per-user
/// counts.
pub struct InotifyState {
    pub max_queued_events: AtomicI64,
    pub max_user_instances: AtomicI64,
    pub max_user_watches: AtomicI64,
    /// Instances and watches by user.
    users: Mutex<HashMap<u32, (i64, i64)>>,
}

impl Default for InotifyState {
    fn default() -> InotifyState {
        // Linux's default: 1% of memory, at ~1 KiB a watch, clamped.
        let mem = crate::fsimpl::tmpfs::memory_pages() * 4096;
        let watches = (mem / 100 / 1024).clamp(8192, 1_048_576) as i64;
        InotifyState {
            max_queued_events: AtomicI64::new(16384),
            max_user_instances: AtomicI64::new(128),
            max_user_watches: AtomicI64::new(watches),
            users: Mutex::new(HashMap::new()),
        }
    }
}

/// `/proc/sys/fs/inotify`.
pub fn sysctls() -> Vec<crate::fsimpl::synthetic::Entry> {
    use crate::fsimpl::synthetic::entry;
    use crate::kernel::ipc::proc::int_sysctl;
    const MAX: i64 = i32::MAX as i64;
    vec![
        entry(
            "max_queued_events",
            int_sysctl(|k| vec![(&k.vfs.inotify.max_queued_events, 0, MAX)]),
        ),
        entry(
            "max_user_instances",
            int_sysctl(|k| vec![(&k.vfs.inotify.max_user_instances, 0, MAX)]),
        ),
        entry(
            "max_user_watches",
            int_sysctl(|k| vec![(&k.vfs.inotify.max_user_watches, 0, MAX)]),
        ),
    ]
}

struct Watch {
    inst: Weak<Instance>,
    wd: i32,
    mask: u32,
}

/// An inode's watches, and how many open files hold it.
#[derive(Default)]
pub struct Watches {
    list: Mutex<Vec<Watch>>,
    any: AtomicBool,
    opens: AtomicUsize,
    /// IN_DELETE_SELF was sent: the inode is gone for inotify.
    deleted: AtomicBool,
}

impl Watches {
    fn watched(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// The watches interested in `mask`, to deliver to outside the lock.
    fn matching(&self, mask: u32) -> Vec<(Arc<Instance>, i32, u32)> {
        if !self.watched() {
            return Vec::new();
        }
        self.list
            .lock()
            .iter()
            .filter(|w| w.mask & mask & IN_ALL_EVENTS != 0)
            .filter_map(|w| w.inst.upgrade().map(|i| (i, w.wd, w.mask)))
            .collect()
    }

    fn remove(&self, inst: *const Instance) {
        let mut l = self.list.lock();
        let before = l.len();
        l.retain(|w| w.inst.as_ptr() != inst);
        LIVE_WATCHES.fetch_sub(before - l.len(), Ordering::Relaxed);
        self.any.store(!l.is_empty(), Ordering::Release);
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        let n = self.list.get_mut().len();
        LIVE_WATCHES.fetch_sub(n, Ordering::Relaxed);
    }
}

/// One queued event.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Vec<u8>,
}

impl Event {
    /// Its size as read: the header and the name padded to 16 bytes
    /// with at least one NUL.
    fn size(&self) -> usize {
        16 + self.padded()
    }

    fn padded(&self) -> usize {
        if self.name.is_empty() {
            0
        } else {
            (self.name.len() + 1).div_ceil(16) * 16
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.size());
        b.extend_from_slice(&self.wd.to_le_bytes());
        b.extend_from_slice(&self.mask.to_le_bytes());
        b.extend_from_slice(&self.cookie.to_le_bytes());
        b.extend_from_slice(&(self.padded() as u32).to_le_bytes());
        b.extend_from_slice(&self.name);
        b.resize(self.size(), 0);
        b
    }
}

struct InstState {
    events: VecDeque<Event>,
    /// Bytes of all queued events (FIONREAD).
    bytes: usize,
    /// Watched inodes by watch descriptor.
    wds: BTreeMap<i32, Arc<Inode>>,
    last_wd: i32,
}

/// One inotify instance.
pub struct Instance {
    state: Mutex<InstState>,
    pub waitq: Arc<WaitQueue>,
    max_events: usize,
    /// The user it counts against, and its limits.
    uid: u32,
    kernel: Weak<crate::kernel::Kernel>,
}

impl Instance {
    /// Queues an event (dropped if it repeats the last one; past the
    /// limit, one IN_Q_OVERFLOW).
    fn queue(&self, ev: Event) {
        let mut s = self.state.lock();
        let ev = if s.events.len() >= self.max_events {
            if s.events.back().is_some_and(|e| e.mask == IN_Q_OVERFLOW) {
                return;
            }
            Event {
                wd: -1,
                mask: IN_Q_OVERFLOW,
                cookie: 0,
                name: Vec::new(),
            }
        } else {
            if let Some(last) = s.events.back() {
                if last.mask & IN_IGNORED == 0
                    && last.mask == ev.mask
                    && last.wd == ev.wd
                    && last.name == ev.name
                {
                    return;
                }
            }
            ev
        };
        s.bytes += ev.size();
        s.events.push_back(ev);
        drop(s);
        self.waitq.notify_all();
    }

    /// Ends watch `wd`: it leaves its inode, and IN_IGNORED is queued.
    fn end_watch(&self, wd: i32) -> bool {
        let inode = self.state.lock().wds.remove(&wd);
        let Some(inode) = inode else {
            return false;
        };
        inode.watches.remove(self as *const Instance);
        self.uncount_watch();
        self.queue(Event {
            wd,
            mask: IN_IGNORED,
            cookie: 0,
            name: Vec::new(),
        });
        true
    }

    fn uncount_watch(&self) {
        if let Some(k) = self.kernel.upgrade() {
            if let Some(u) = k.vfs.inotify.users.lock().get_mut(&self.uid) {
                u.1 -= 1;
            }
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let me = self as *const Instance;
        let wds = std::mem::take(&mut self.state.get_mut().wds);
        let n = wds.len() as i64;
        for inode in wds.values() {
            inode.watches.remove(me);
        }
        if let Some(k) = self.kernel.upgrade() {
            if let Some(u) = k.vfs.inotify.users.lock().get_mut(&self.uid) {
                u.0 -= 1;
                u.1 -= n;
            }
        }
    }
}

/// Delivers `mask` (one event, with IN_ISDIR when it is about a
/// directory) to the watches of `w`: with `name`, as its directory sees a
/// child (`unlinked`: a child with no link left, which IN_EXCL_UNLINK
/// watches skip).
fn deliver(w: &Watches, mask: u32, cookie: u32, name: &[u8], unlinked: bool) {
    for (inst, wd, wmask) in w.matching(mask) {
        if !name.is_empty() && unlinked && wmask & IN_EXCL_UNLINK != 0 {
            continue;
        }
        inst.queue(Event {
            wd,
            mask,
            cookie,
            name: name.to_vec(),
        });
        if wmask & IN_ONESHOT != 0 {
            inst.end_watch(wd);
        }
    }
}

fn active() -> bool {
    LIVE_WATCHES.load(Ordering::Relaxed) != 0
}

fn isdir(inode: &Inode) -> u32 {
    if inode.is_dir() {
        IN_ISDIR
    } else {
        0
    }
}

/// `event` happened to `inode` (IN_MODIFY, IN_ATTRIB, IN_ACCESS, IN_OPEN,
/// IN_CLOSE_*): its directory hears it with its name, then it does.
pub fn notify(inode: &Arc<Inode>, event: u32) {
    if !active() {
        return;
    }
    let mask = event | isdir(inode);
    if let Some((dir, name)) = inode.parent() {
        if dir.watches.watched() {
            let unlinked = inode.meta.lock().unwrap().nlink == 0;
            deliver(&dir.watches, mask, 0, &name, unlinked);
        }
    }
    deliver(&inode.watches, mask, 0, &[], false);
}

/// An event of an open file: [`notify`] of its inode.
pub fn notify_file(f: &FileDescription, event: u32) {
    if !active() {
        return;
    }
    if let Some(l) = &f.location {
        notify(&l.inode, event);
    }
}

/// `event` happened to `inode` itself, its directory not told (the link
/// count changed: IN_ATTRIB).
fn notify_self(inode: &Inode, event: u32) {
    deliver(&inode.watches, event | isdir(inode), 0, &[], false);
}

/// `name` was made in `dir` (create, mkdir, mknod, symlink).
pub fn created(dir: &Arc<Inode>, name: &[u8], child: &Arc<Inode>) {
    if !active() {
        return;
    }
    deliver(&dir.watches, IN_CREATE | isdir(child), 0, name, false);
}

/// `name` in `dir` is a new link to `inode`.
pub fn linked(dir: &Arc<Inode>, name: &[u8], inode: &Arc<Inode>) {
    if !active() {
        return;
    }
    notify_self(inode, IN_ATTRIB);
    created(dir, name, inode);
}

/// `name` was removed from `dir`; `victim` was what it named.
pub fn removed(dir: &Arc<Inode>, name: &[u8], victim: &Arc<Inode>) {
    if !active() {
        return;
    }
    let is_dir = victim.is_dir();
    if !is_dir {
        notify_self(victim, IN_ATTRIB);
    }
    maybe_deleted(victim);
    deliver(&dir.watches, IN_DELETE | isdir(victim), 0, name, false);
}

/// A new cookie tying an IN_MOVED_FROM to its IN_MOVED_TO.
fn cookie() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
}

/// `old_name` in `old_dir` became `new_name` in `new_dir`: the moved
/// inode, and the one it replaced (which lost a link).
pub fn renamed(
    old_dir: &Arc<Inode>,
    old_name: &[u8],
    new_dir: &Arc<Inode>,
    new_name: &[u8],
    moved: &Arc<Inode>,
    replaced: Option<&Arc<Inode>>,
) {
    if !active() {
        return;
    }
    let c = cookie();
    let d = isdir(moved);
    deliver(&old_dir.watches, IN_MOVED_FROM | d, c, old_name, false);
    deliver(&new_dir.watches, IN_MOVED_TO | d, c, new_name, false);
    if let Some(r) = replaced {
        notify_self(r, IN_ATTRIB);
    }
    deliver(&moved.watches, IN_MOVE_SELF, 0, &[], false);
    if let Some(r) = replaced {
        maybe_deleted(r);
    }
}

/// IN_DELETE_SELF, and the end of the inode's watches, once it has no
/// link and no open file.
fn maybe_deleted(inode: &Inode) {
    if !inode.watches.watched() || inode.watches.opens.load(Ordering::Acquire) > 0 {
        return;
    }
    if inode.meta.lock().unwrap().nlink != 0 {
        return;
    }
    if inode.watches.deleted.swap(true, Ordering::AcqRel) {
        return;
    }
    let ws = inode.watches.matching(u32::MAX);
    for (inst, wd, wmask) in ws {
        if wmask & IN_DELETE_SELF != 0 {
            inst.queue(Event {
                wd,
                mask: IN_DELETE_SELF,
                cookie: 0,
                name: Vec::new(),
            });
        }
        inst.end_watch(wd);
    }
}

/// A description of a file in the tree was made.
pub fn description_opened(f: &FileDescription) {
    if let Some(l) = &f.location {
        l.inode.watches.opens.fetch_add(1, Ordering::AcqRel);
    }
}

/// The file was opened (open, openat, creat, openat2).
pub fn opened(f: &FileDescription) {
    if f.flags() & libc::O_PATH as u32 == 0 {
        notify_file(f, IN_OPEN);
    }
}

/// The last reference to a description went: IN_CLOSE_WRITE or
/// IN_CLOSE_NOWRITE, and a deferred IN_DELETE_SELF.
pub fn description_closed(f: &FileDescription) {
    let Some(l) = &f.location else {
        return;
    };
    l.inode.watches.opens.fetch_sub(1, Ordering::AcqRel);
    if !active() || f.flags() & libc::O_PATH as u32 != 0 {
        return;
    }
    notify(
        &l.inode,
        if f.writable() {
            IN_CLOSE_WRITE
        } else {
            IN_CLOSE_NOWRITE
        },
    );
    maybe_deleted(&l.inode);
}

// ----- The syscalls' side -----

/// A new instance for the caller: EMFILE past max_user_instances.
pub fn new_instance(t: &Task) -> Result<Arc<Instance>, Errno> {
    let st = &t.kernel.vfs.inotify;
    let uid = t.creds.uid;
    {
        let mut users = st.users.lock();
        let u = users.entry(uid).or_insert((0, 0));
        if u.0 >= st.max_user_instances.load(Ordering::Relaxed) {
            return Err(Errno::EMFILE);
        }
        u.0 += 1;
    }
    Ok(Arc::new(Instance {
        state: Mutex::new(InstState {
            events: VecDeque::new(),
            bytes: 0,
            wds: BTreeMap::new(),
            last_wd: 0,
        }),
        waitq: Arc::new(WaitQueue::default()),
        max_events: st.max_queued_events.load(Ordering::Relaxed).max(0) as usize,
        uid,
        kernel: Arc::downgrade(&t.kernel),
    }))
}

/// inotify_add_watch on an inode, once the path is resolved and checked:
/// the watch descriptor, the same one for an inode watched already.
pub fn add_watch(
    t: &Task,
    inst: &Arc<Instance>,
    inode: &Arc<Inode>,
    mask: u32,
) -> Result<i32, Errno> {
    let mut s = inst.state.lock();
    let existing = s
        .wds
        .iter()
        .find(|(_, i)| Arc::ptr_eq(i, inode))
        .map(|(wd, _)| *wd);
    if let Some(wd) = existing {
        if mask & IN_MASK_CREATE != 0 {
            return Err(Errno::EEXIST);
        }
        let mut l = inode.watches.list.lock();
        if let Some(w) = l
            .iter_mut()
            .find(|w| w.wd == wd && w.inst.as_ptr() == Arc::as_ptr(inst))
        {
            w.mask = if mask & IN_MASK_ADD != 0 {
                w.mask | (mask & WATCH_BITS)
            } else {
                mask & WATCH_BITS
            };
        }
        return Ok(wd);
    }
    let st = &t.kernel.vfs.inotify;
    {
        let mut users = st.users.lock();
        let u = users.entry(inst.uid).or_insert((0, 0));
        if u.1 >= st.max_user_watches.load(Ordering::Relaxed) {
            return Err(Errno::ENOSPC);
        }
        u.1 += 1;
    }
    // Watch descriptors count up from 1 and are not reused soon (Linux's
    // idr_alloc_cyclic).
    let mut wd = s.last_wd;
    loop {
        wd = if wd == i32::MAX { 1 } else { wd + 1 };
        if !s.wds.contains_key(&wd) {
            break;
        }
    }
    s.last_wd = wd;
    s.wds.insert(wd, inode.clone());
    drop(s);
    let mut l = inode.watches.list.lock();
    l.push(Watch {
        inst: Arc::downgrade(inst),
        wd,
        mask: mask & WATCH_BITS,
    });
    LIVE_WATCHES.fetch_add(1, Ordering::Relaxed);
    inode.watches.any.store(true, Ordering::Release);
    inode.watches.deleted.store(false, Ordering::Release);
    Ok(wd)
}

/// inotify_rm_watch: EINVAL for a watch descriptor it does not have.
pub fn rm_watch(inst: &Instance, wd: i32) -> Result<(), Errno> {
    if inst.end_watch(wd) {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}

/// The file of an inotify instance.
pub struct InotifyFile {
    pub inst: Arc<Instance>,
}

impl FileImpl for InotifyFile {
    /// Whole events, as many as fit; EINVAL if the first does not;
    /// EAGAIN when there is none (the syscall layer waits).
    fn read(&self, _f: &FileDescription, dst: &mut [u8], _o: Option<u64>) -> Result<usize, Errno> {
        let mut s = self.inst.state.lock();
        if s.events.is_empty() {
            return Err(Errno::EAGAIN);
        }
        let mut n = 0;
        while let Some(e) = s.events.front() {
            let size = e.size();
            if n + size > dst.len() {
                break;
            }
            let b = e.bytes();
            dst[n..n + size].copy_from_slice(&b);
            n += size;
            s.bytes -= size;
            s.events.pop_front();
        }
        if n == 0 {
            return Err(Errno::EINVAL);
        }
        Ok(n)
    }

    fn write(&self, _f: &FileDescription, _src: &[u8], _o: Option<u64>) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn positional(&self, _f: &FileDescription) -> bool {
        false
    }

    fn seek(&self, _f: &FileDescription, _off: i64, _whence: i32) -> Result<u64, Errno> {
        Err(Errno::ESPIPE)
    }

    fn stat(&self, _f: &FileDescription) -> Result<libc::stat, Errno> {
        let mut st: libc::stat = crate::hostcall::zeroed();
        st.st_mode = 0o600;
        st.st_nlink = 1;
        st.st_blksize = 4096;
        Ok(st)
    }

    fn ioctl(
        &self,
        _f: &FileDescription,
        t: &mut Task,
        request: u32,
        arg: u64,
    ) -> Result<u64, Errno> {
        if request == libc::FIONREAD as u32 {
            let n = self.inst.state.lock().bytes as i32;
            t.mm.write_obj(arg, &n)?;
            return Ok(0);
        }
        Err(Errno::ENOTTY)
    }

    fn readiness(&self, _f: &FileDescription, events: i16) -> i16 {
        if self.inst.state.lock().events.is_empty() {
            0
        } else {
            events & (libc::POLLIN | libc::POLLRDNORM)
        }
    }

    fn waitq(&self, _f: &FileDescription) -> Option<Arc<WaitQueue>> {
        Some(self.inst.waitq.clone())
    }

    fn name(&self) -> String {
        "anon_inode:inotify".to_string()
    }

    fn inotify(&self) -> Option<Arc<Instance>> {
        Some(self.inst.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The read format: header, name padded to 16 with a NUL.
    #[test]
    fn event_layout() {
        let e = Event {
            wd: 3,
            mask: IN_CREATE,
            cookie: 0,
            name: b"abcdefghijklmno".to_vec(),
        };
        assert_eq!(e.size(), 16 + 16);
        let e2 = Event {
            name: b"abcdefghijklmnop".to_vec(),
            ..e.clone()
        };
        assert_eq!(e2.size(), 16 + 32);
        let b = e.bytes();
        assert_eq!(&b[0..4], &3i32.to_le_bytes());
        assert_eq!(&b[12..16], &16u32.to_le_bytes());
        assert_eq!(b[31], 0);
    }
}
