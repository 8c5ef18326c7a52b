//! AF_UNIX sockets: SOCK_STREAM, SOCK_DGRAM and SOCK_SEQPACKET, named in
//! the sandbox's file systems (a socket node found by its inode), in the
//! sandbox's own abstract namespace, or unnamed; file descriptors and
//! credentials passed in control messages, with in-flight files counted
//! and cycles of sockets that only hold each other collected.
//!
//! The shape is Linux's `net/unix/af_unix.c`: a socket's receive queue
//! holds messages ("skbs") that the sender charges to its own send buffer
//! (`wmem`) until the receiver frees them; a connection is made by queueing
//! a new socket (an embryo, already connected to the caller) on the
//! listener, which `accept` takes; a stream reader glues messages
//! together except across credentials (with SO_PASSCRED) and files.
//!
//! Locks: a socket's state is one mutex; where two are held (connect,
//! socketpair) they are taken in address order. The collector's lock
//! (`UnixShared::gc`) comes before any socket's, and messages are dropped
//! only with no lock held (dropping one may release sockets).

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::{Mutex, MutexGuard, RwLock};

use super::{
    buf_size, get_int, int_val, Control, Received, RecvArgs, SendArgs, Socket, Timeout, Ucred,
    RMEM_DEFAULT, RMEM_MAX, SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF, SOMAXCONN, WMEM_DEFAULT, WMEM_MAX,
};
use crate::errno::Errno;
use crate::kernel::task::Task;
use crate::kernel::waiter::{WaitQueue, ALL_EVENTS};
use crate::vfs::inode::{Inode, NewNode};
use crate::vfs::mount::Location;
use crate::vfs::FileDescription;

/// `sk_shutdown` bits.
const RCV_SHUTDOWN: u8 = 1;
const SEND_SHUTDOWN: u8 = 2;
const SHUTDOWN_MASK: u8 = 3;

/// net.unix.max_dgram_qlen: how many datagrams a socket that is not
/// connected back to the sender queues.
const MAX_DGRAM_QLEN: usize = 10;
/// SCM_MAX_FD: files in one message.
pub const SCM_MAX_FD: usize = 253;
/// `offsetof(struct sockaddr_un, sun_path)` and `sizeof(struct
/// sockaddr_un)`.
const SUN_PATH: usize = 2;
const SOCKADDR_UN: usize = 110;

/// Linux's SKB_MAX_HEAD(0): a stream message's head, past which its bytes
/// are in pages.
const SKB_MAX_HEAD0: usize = 4096 - 320;
/// The most one stream message holds. Linux's is its head and 32 KiB of
/// pages (36544 bytes); the sentry takes a 64 KiB write as one message, so
/// a 64 KiB read is one syscall on the other side (each costs a trap).
const STREAM_MSG_MAX: usize = 65536;
/// SKB_MAX_ALLOC: a datagram's head.
const SKB_MAX_ALLOC: usize = (4096 << 2) - 320;

/// MSG_* flags.
const MSG_OOB: i32 = libc::MSG_OOB;
const MSG_PEEK: i32 = libc::MSG_PEEK;
const MSG_DONTWAIT: i32 = libc::MSG_DONTWAIT;
const MSG_WAITALL: i32 = libc::MSG_WAITALL;
const MSG_TRUNC: i32 = libc::MSG_TRUNC;
const MSG_NOSIGNAL: i32 = libc::MSG_NOSIGNAL;

/// kmalloc's size for `n` bytes: its buckets, then whole pages in powers
/// of two.
fn kmalloc_size(n: usize) -> usize {
    const BUCKETS: [usize; 11] = [32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];
    if let Some(b) = BUCKETS.iter().find(|&&b| b >= n) {
        return *b;
    }
    n.div_ceil(4096).next_power_of_two() * 4096
}

/// What a message of `head` bytes in its head and `pages` bytes in pages
/// is charged (Linux's skb truesize): the sk_buff, the head with its
/// shared info, the pages.
fn truesize(head: usize, pages: usize) -> usize {
    256 + kmalloc_size(head.div_ceil(64) * 64 + 320) + pages.div_ceil(4096) * 4096
}

/// One message in a receive queue.
struct Msg {
    data: Vec<u8>,
    /// Bytes a stream reader already took.
    consumed: usize,
    fds: Option<FdList>,
    /// Credentials the message carries (None: none were attached).
    creds: Option<Ucred>,
    /// The sender's address when it was sent.
    from: Option<Vec<u8>>,
    /// What the sender was charged, released when the message goes.
    charge: Option<(Arc<Charge>, usize)>,
}

impl Msg {
    fn len(&self) -> usize {
        self.data.len() - self.consumed
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        if let Some((c, n)) = self.charge.take() {
            c.release(n);
        }
    }
}

/// A sender's bytes in flight (Linux's sk_wmem_alloc).
struct Charge {
    bytes: AtomicUsize,
    /// The sender's queue, woken when room comes back.
    queue: Arc<WaitQueue>,
}

impl Charge {
    fn release(&self, n: usize) {
        self.bytes.fetch_sub(n, Ordering::AcqRel);
        self.queue.notify_all();
    }
}

thread_local! {
    /// Files whose release was deferred while another release runs on
    /// this thread: a chain of sockets holding each other is let go one
    /// at a time, not by recursion.
    static DEFERRED: RefCell<Option<Vec<Arc<FileDescription>>>> = const { RefCell::new(None) };
}

/// Lets go of files (held by a message) without recursing.
fn drop_files(files: Vec<Arc<FileDescription>>) {
    let nested = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        match d.as_mut() {
            Some(q) => {
                q.extend(files.iter().cloned());
                true
            }
            None => {
                *d = Some(Vec::new());
                false
            }
        }
    });
    if nested {
        drop(files);
        return;
    }
    let mut cur = files;
    loop {
        drop(cur);
        cur = DEFERRED.with(|d| std::mem::take(d.borrow_mut().as_mut().unwrap()));
        if cur.is_empty() {
            break;
        }
    }
    DEFERRED.with(|d| *d.borrow_mut() = None);
}

/// The files of one SCM_RIGHTS message, counted in flight while queued.
struct FdList {
    files: Vec<Arc<FileDescription>>,
    /// The sender's real uid, whose in-flight count they are part of.
    uid: u32,
    ns: Arc<UnixShared>,
}

impl FdList {
    /// Takes the files out (received): no longer in flight.
    fn take(mut self) -> Vec<Arc<FileDescription>> {
        self.ns.uncount(&self.files, self.uid);
        std::mem::take(&mut self.files)
    }
}

impl Drop for FdList {
    fn drop(&mut self) {
        if self.files.is_empty() {
            return;
        }
        self.ns.uncount(&self.files, self.uid);
        drop_files(std::mem::take(&mut self.files));
    }
}

/// The unix socket behind a file, if it is one.
fn unix_of(f: &FileDescription) -> Option<Arc<dyn Socket>> {
    let s = f.imp.socket()?;
    s.as_any().downcast_ref::<UnixSocket>()?;
    Some(s)
}

fn as_unix(s: &Arc<dyn Socket>) -> &UnixSocket {
    s.as_any()
        .downcast_ref::<UnixSocket>()
        .expect("a unix socket")
}

/// In-flight files: how many queued messages hold each unix socket
/// file, and each user's count of every file.
#[derive(Default)]
struct Inflight {
    files: HashMap<usize, (Weak<FileDescription>, usize)>,
    unix_total: usize,
    per_user: HashMap<u32, usize>,
}

/// An abstract name: the socket type and the address bytes (Linux keeps
/// one namespace a type).
type AbstractName = (i32, Vec<u8>);

/// Two connected sockets.
type Pair = (Arc<dyn Socket>, Arc<dyn Socket>);

/// State every unix socket of the sandbox shares.
#[derive(Default)]
pub struct UnixShared {
    /// Sockets bound to a file-system node, by the node's (device, inode).
    bound: Mutex<HashMap<(u64, u64), Weak<UnixSocket>>>,
    /// The abstract namespace, by socket type and address bytes.
    abstract_names: Mutex<HashMap<AbstractName, Weak<UnixSocket>>>,
    /// Every socket not yet released, by inode number (/proc/net/unix).
    all: Mutex<BTreeMap<u64, Weak<UnixSocket>>>,
    inflight: Mutex<Inflight>,
    /// Taken for reading by whoever queues or takes files, for writing by
    /// the collector.
    gc: RwLock<()>,
}

impl UnixShared {
    fn count(&self, files: &[Arc<FileDescription>], uid: u32) {
        let mut inf = self.inflight.lock();
        for f in files {
            if unix_of(f).is_some() {
                let e = inf
                    .files
                    .entry(Arc::as_ptr(f) as usize)
                    .or_insert_with(|| (Arc::downgrade(f), 0));
                e.1 += 1;
                inf.unix_total += 1;
            }
        }
        *inf.per_user.entry(uid).or_insert(0) += files.len();
    }

    fn uncount(&self, files: &[Arc<FileDescription>], uid: u32) {
        let mut inf = self.inflight.lock();
        for f in files {
            if unix_of(f).is_some() {
                let key = Arc::as_ptr(f) as usize;
                if let Some(e) = inf.files.get_mut(&key) {
                    e.1 -= 1;
                    if e.1 == 0 {
                        inf.files.remove(&key);
                    }
                }
                inf.unix_total -= 1;
            }
        }
        if let Some(n) = inf.per_user.get_mut(&uid) {
            *n -= files.len().min(*n);
        }
    }

    fn user_inflight(&self, uid: u32) -> usize {
        self.inflight
            .lock()
            .per_user
            .get(&uid)
            .copied()
            .unwrap_or(0)
    }

    /// Collects sockets that only in-flight messages of each other hold
    /// (Linux's unix_gc): every in-flight socket file referenced from
    /// outside the in-flight sockets' queues is live, and so is what its
    /// queue holds, transitively; the queues of the rest are purged.
    fn collect(&self) {
        if self.inflight.lock().unix_total == 0 {
            return;
        }
        let mut purged: Vec<Msg> = Vec::new();
        {
            let _w = self.gc.write();
            let cands: Vec<Arc<FileDescription>> = self
                .inflight
                .lock()
                .files
                .values()
                .filter_map(|(w, _)| w.upgrade())
                .collect();
            let index: HashMap<usize, usize> = cands
                .iter()
                .enumerate()
                .map(|(i, f)| (Arc::as_ptr(f) as usize, i))
                .collect();
            let socks: Vec<Arc<dyn Socket>> =
                cands.iter().map(|f| unix_of(f).expect("unix")).collect();
            // What each candidate's queue (and its embryos' queues) holds.
            let held: Vec<Vec<usize>> = socks
                .iter()
                .map(|s| {
                    let mut out = Vec::new();
                    as_unix(s).each_queued_file(|f| {
                        if let Some(&j) = index.get(&(Arc::as_ptr(f) as usize)) {
                            out.push(j);
                        }
                    });
                    out
                })
                .collect();
            let mut internal = vec![0usize; cands.len()];
            for h in &held {
                for &j in h {
                    internal[j] += 1;
                }
            }
            let mut live: Vec<bool> = cands
                .iter()
                .enumerate()
                .map(|(i, f)| Arc::strong_count(f) - 1 > internal[i])
                .collect();
            let mut stack: Vec<usize> = (0..cands.len()).filter(|&i| live[i]).collect();
            while let Some(i) = stack.pop() {
                for &j in &held[i] {
                    if !live[j] {
                        live[j] = true;
                        stack.push(j);
                    }
                }
            }
            for (i, s) in socks.iter().enumerate() {
                if !live[i] {
                    purged.extend(as_unix(s).purge_queues());
                }
            }
        }
        drop(purged);
    }
}

/// The sandbox's unix-socket state.
#[derive(Default)]
pub struct UnixState {
    shared: Arc<UnixShared>,
}

impl UnixState {
    /// `/proc/net/unix`.
    pub fn proc_net_unix(&self) -> String {
        let mut out = String::from("Num       RefCount Protocol Flags    Type St Inode Path\n");
        let socks: Vec<Arc<UnixSocket>> = self
            .shared
            .all
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for s in socks {
            out.push_str(&s.proc_line());
        }
        out
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// TCP_CLOSE: unconnected (or a datagram socket without a peer).
    Close,
    Listen,
    /// TCP_ESTABLISHED.
    Established,
}

struct State {
    phase: Phase,
    peer: Option<Arc<UnixSocket>>,
    /// The bound address (sockaddr_un bytes, as long as Linux keeps it).
    addr: Option<Vec<u8>>,
    /// The node a file-system name is bound to (kept as Linux keeps the
    /// path).
    path: Option<Location>,
    shutdown: u8,
    err: Option<Errno>,
    /// Released (Linux's SOCK_DEAD).
    dead: bool,
    rq: VecDeque<Msg>,
    /// A listener's connections not yet accepted.
    embryos: VecDeque<Arc<UnixSocket>>,
    /// sk_max_ack_backlog: the listen backlog, or the datagram queue
    /// length.
    backlog: usize,
    /// Whether a file stands for the socket (an embryo has none until it
    /// is accepted).
    accepted: bool,
    passcred: bool,
    sndbuf: u32,
    rcvbuf: u32,
    rcvtimeo: Timeout,
    sndtimeo: Timeout,
    rcvlowat: i32,
    /// SO_PEERCRED.
    peercred: Option<Ucred>,
    /// Senders' queues to wake when this socket's queue has room again
    /// (datagram senders blocked on a full receiver).
    wakers: Vec<Weak<WaitQueue>>,
    /// Plain int options kept for getsockopt (SO_REUSEADDR, ...).
    opts: BTreeMap<i32, i32>,
    linger: (i32, i32),
}

/// One AF_UNIX socket.
pub struct UnixSocket {
    ty: i32,
    inode: Arc<Inode>,
    ns: Arc<UnixShared>,
    st: Mutex<State>,
    queue: Arc<WaitQueue>,
    charge: Arc<Charge>,
    me: Weak<UnixSocket>,
}

/// How a socket operation waits: with the task (interruptibly, with a
/// timeout) or, without one, not at all.
struct Cx<'a> {
    t: Option<&'a mut Task>,
}

impl Cx<'_> {
    /// Waits on `q` until `ready`, or the deadline (EAGAIN), or a signal
    /// (ERESTARTSYS without a timeout, EINTR with one). Without a task:
    /// EAGAIN at once.
    fn wait(
        &mut self,
        q: &WaitQueue,
        timeo: Timeout,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), Errno> {
        let Some(t) = self.t.as_deref_mut() else {
            return Err(Errno::EAGAIN);
        };
        if timeo.0 == Some(0) {
            return Err(Errno::EAGAIN);
        }
        match t.block_on(&[(q, ALL_EVENTS)], deadline, |_| ready().then_some(Ok(()))) {
            Ok(()) => Ok(()),
            Err(Errno::ETIMEDOUT) => Err(Errno::EAGAIN),
            Err(Errno::ERESTARTSYS) if timeo.0.is_some() => Err(Errno::EINTR),
            Err(e) => Err(e),
        }
    }

    fn creds(&self) -> Option<Ucred> {
        self.t.as_deref().map(|t| Ucred {
            pid: t.tg.tgid,
            uid: t.creds.uid,
            gid: t.creds.gid,
        })
    }

    fn raise_sigpipe(&mut self, flags: i32) {
        if flags & MSG_NOSIGNAL == 0 {
            if let Some(t) = self.t.as_deref_mut() {
                t.raise(libc::SIGPIPE);
            }
        }
    }
}

fn deadline(timeo: Timeout) -> Option<Instant> {
    timeo.duration().map(|d| {
        Instant::now()
            .checked_add(d)
            .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(1 << 32))
    })
}

/// `unix_validate_addr`.
fn validate_addr(addr: &[u8]) -> Result<(), Errno> {
    if addr.len() <= SUN_PATH || addr.len() > SOCKADDR_UN {
        return Err(Errno::EINVAL);
    }
    if u16::from_ne_bytes([addr[0], addr[1]]) != libc::AF_UNIX as u16 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// A file-system name's path (up to its first NUL) and the address as
/// Linux keeps it (`unix_mkname_bsd`: the path with one NUL).
fn bsd_name(addr: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let p = &addr[SUN_PATH..];
    let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
    let path = p[..end].to_vec();
    let mut name = addr[..SUN_PATH].to_vec();
    name.extend_from_slice(&path);
    name.push(0);
    (path, name)
}

/// The address of an unnamed socket.
fn unnamed() -> Vec<u8> {
    (libc::AF_UNIX as u16).to_ne_bytes().to_vec()
}

/// Locks two sockets' states in address order.
fn lock2<'a>(
    a: &'a UnixSocket,
    b: &'a UnixSocket,
) -> (MutexGuard<'a, State>, MutexGuard<'a, State>) {
    if (a as *const UnixSocket) < (b as *const UnixSocket) {
        let ga = a.st.lock();
        let gb = b.st.lock();
        (ga, gb)
    } else {
        let gb = b.st.lock();
        let ga = a.st.lock();
        (ga, gb)
    }
}

impl UnixSocket {
    /// `socket(AF_UNIX, ty, protocol)`.
    pub fn create(t: &mut Task, ty: i32, protocol: i32) -> Result<Arc<dyn Socket>, Errno> {
        if protocol != 0 && protocol != libc::PF_UNIX {
            return Err(Errno::EPROTONOSUPPORT);
        }
        let ty = match ty {
            libc::SOCK_STREAM | libc::SOCK_DGRAM | libc::SOCK_SEQPACKET => ty,
            libc::SOCK_RAW => libc::SOCK_DGRAM,
            _ => return Err(Errno::ESOCKTNOSUPPORT),
        };
        Ok(Self::new(t, ty, true))
    }

    /// Two connected sockets (socketpair).
    pub fn pair(t: &mut Task, ty: i32, protocol: i32) -> Result<Pair, Errno> {
        let a = Self::create(t, ty, protocol)?;
        let b = Self::create(t, ty, protocol)?;
        let cred = peer_cred_of(t);
        {
            let (ua, ub) = (as_unix(&a), as_unix(&b));
            let (mut sa, mut sb) = lock2(ua, ub);
            sa.peer = ub.me.upgrade();
            sb.peer = ua.me.upgrade();
            sa.phase = Phase::Established;
            sb.phase = Phase::Established;
            sa.peercred = Some(cred);
            sb.peercred = Some(cred);
        }
        Ok((a, b))
    }

    fn new(t: &Task, ty: i32, accepted: bool) -> Arc<UnixSocket> {
        let inode = t
            .kernel
            .sockets
            .new_inode(&t.kernel.vfs, t.creds.fsuid, t.creds.fsgid);
        let ns = t.kernel.sockets.unix.shared.clone();
        let queue = Arc::new(WaitQueue::default());
        let s = Arc::new_cyclic(|me| UnixSocket {
            ty,
            inode,
            ns: ns.clone(),
            st: Mutex::new(State {
                phase: Phase::Close,
                peer: None,
                addr: None,
                path: None,
                shutdown: 0,
                err: None,
                dead: false,
                rq: VecDeque::new(),
                embryos: VecDeque::new(),
                backlog: MAX_DGRAM_QLEN,
                accepted,
                passcred: false,
                sndbuf: WMEM_DEFAULT,
                rcvbuf: RMEM_DEFAULT,
                rcvtimeo: Timeout(None),
                sndtimeo: Timeout(None),
                rcvlowat: 1,
                peercred: None,
                wakers: Vec::new(),
                opts: BTreeMap::new(),
                linger: (0, 0),
            }),
            charge: Arc::new(Charge {
                bytes: AtomicUsize::new(0),
                queue: queue.clone(),
            }),
            queue,
            me: me.clone(),
        });
        ns.all.lock().insert(s.inode.ino, Arc::downgrade(&s));
        s
    }

    fn arc(&self) -> Arc<UnixSocket> {
        self.me.upgrade().expect("a live socket")
    }

    fn connection_based(&self) -> bool {
        self.ty != libc::SOCK_DGRAM
    }

    fn changed(&self) {
        self.queue.notify_all();
    }

    /// Wakes the senders waiting for room in this socket's queue.
    fn wake_senders(st: &mut State) {
        for w in st.wakers.drain(..) {
            if let Some(q) = w.upgrade() {
                q.notify_all();
            }
        }
    }

    fn wmem(&self) -> usize {
        self.charge.bytes.load(Ordering::Acquire)
    }

    /// Calls `f` for every file the socket's queue (and its embryos'
    /// queues) holds.
    fn each_queued_file(&self, mut f: impl FnMut(&Arc<FileDescription>)) {
        let embryos: Vec<Arc<UnixSocket>> = {
            let st = self.st.lock();
            for m in &st.rq {
                for x in m.fds.iter().flat_map(|l| l.files.iter()) {
                    f(x);
                }
            }
            st.embryos.iter().cloned().collect()
        };
        for e in embryos {
            let st = e.st.lock();
            for m in &st.rq {
                for x in m.fds.iter().flat_map(|l| l.files.iter()) {
                    f(x);
                }
            }
        }
    }

    /// Takes every message of the socket's queue and its embryos' queues
    /// (the collector, for a socket nothing live can reach).
    fn purge_queues(&self) -> Vec<Msg> {
        let (mut out, embryos): (Vec<Msg>, Vec<Arc<UnixSocket>>) = {
            let mut st = self.st.lock();
            (
                st.rq.drain(..).collect(),
                st.embryos.iter().cloned().collect(),
            )
        };
        for e in embryos {
            out.extend(e.st.lock().rq.drain(..));
        }
        self.changed();
        out
    }

    fn proc_line(&self) -> String {
        let st = self.st.lock();
        let flags = if st.phase == Phase::Listen {
            1 << 16
        } else {
            0
        };
        let state = match (st.accepted, st.phase == Phase::Established) {
            (true, true) => 3,
            (true, false) => 1,
            (false, true) => 2,
            (false, false) => 4,
        };
        let mut line = format!(
            "{:016x}: {:08X} {:08X} {:08X} {:04X} {:02X} {:5}",
            0, 2, 0, flags, self.ty, state, self.inode.ino
        );
        if let Some(a) = &st.addr {
            line.push(' ');
            let p = &a[SUN_PATH..];
            if p.first() == Some(&0) {
                line.push('@');
                for &c in &p[1..] {
                    line.push(if c == 0 { '@' } else { c as char });
                }
            } else {
                for &c in &p[..p.len() - 1] {
                    line.push(if c == 0 { '@' } else { c as char });
                }
            }
        }
        line.push('\n');
        line
    }

    // ----- Names -----

    /// `unix_autobind`: an abstract name of five hex digits.
    fn autobind(&self) -> Result<(), Errno> {
        let mut st = self.st.lock();
        if st.addr.is_some() {
            return Ok(());
        }
        let mut names = self.ns.abstract_names.lock();
        let mut r = [0u8; 4];
        let _ = crate::hostcall::fill_random(&mut r);
        let start = u32::from_ne_bytes(r) & 0xfffff;
        let mut n = start;
        loop {
            n = (n + 1) & 0xfffff;
            let mut addr = unnamed();
            addr.push(0);
            addr.extend_from_slice(format!("{n:05x}").as_bytes());
            let key = (self.ty, addr.clone());
            if names.get(&key).and_then(Weak::upgrade).is_none() {
                names.insert(key, self.me.clone());
                st.addr = Some(addr);
                return Ok(());
            }
            if n == start {
                return Err(Errno::ENOSPC);
            }
        }
    }

    fn bind_abstract(&self, addr: &[u8]) -> Result<(), Errno> {
        let mut st = self.st.lock();
        if st.addr.is_some() {
            return Err(Errno::EINVAL);
        }
        let mut names = self.ns.abstract_names.lock();
        let key = (self.ty, addr.to_vec());
        if names.get(&key).and_then(Weak::upgrade).is_some() {
            return Err(Errno::EADDRINUSE);
        }
        names.insert(key, self.me.clone());
        st.addr = Some(addr.to_vec());
        Ok(())
    }

    fn bind_bsd(&self, t: &mut Task, addr: &[u8]) -> Result<(), Errno> {
        let (path, name) = bsd_name(addr);
        let umask = *t.tg.umask.lock().unwrap_or_else(|e| e.into_inner());
        let mode = libc::S_IFSOCK | (0o777 & !umask);
        if self.st.lock().addr.is_some() {
            // Linux makes the node first: an existing name is EADDRINUSE
            // even for a socket already bound.
            return match crate::syscalls::file::lookup_at(t, libc::AT_FDCWD, &path, false, false) {
                Ok(_) => Err(Errno::EADDRINUSE),
                Err(Errno::ENOENT) => Err(Errno::EINVAL),
                Err(e) => Err(e),
            };
        }
        let loc = crate::syscalls::file::create_node(
            t,
            libc::AT_FDCWD,
            &path,
            NewNode::Node { mode, rdev: 0 },
        )
        .map_err(|e| {
            if e == Errno::EEXIST {
                Errno::EADDRINUSE
            } else {
                e
            }
        })?;
        let key = (loc.inode.fs.dev, loc.inode.ino);
        let mut st = self.st.lock();
        if st.addr.is_some() {
            return Err(Errno::EINVAL);
        }
        self.ns.bound.lock().insert(key, self.me.clone());
        st.addr = Some(name);
        st.path = Some(loc);
        Ok(())
    }

    /// `unix_find_other`: the socket bound to `addr` of this type.
    fn find_other(&self, t: &mut Task, addr: &[u8]) -> Result<Arc<UnixSocket>, Errno> {
        if addr[SUN_PATH] != 0 {
            let (path, _) = bsd_name(addr);
            let loc = crate::syscalls::file::lookup_at(t, libc::AT_FDCWD, &path, true, false)?;
            crate::vfs::perm::check(&t.creds, &loc.inode.meta(), crate::vfs::perm::MAY_WRITE)?;
            if loc.inode.mode() & libc::S_IFMT != libc::S_IFSOCK {
                return Err(Errno::ECONNREFUSED);
            }
            let key = (loc.inode.fs.dev, loc.inode.ino);
            let s = self
                .ns
                .bound
                .lock()
                .get(&key)
                .and_then(Weak::upgrade)
                .ok_or(Errno::ECONNREFUSED)?;
            if s.ty != self.ty {
                return Err(Errno::EPROTOTYPE);
            }
            return Ok(s);
        }
        self.ns
            .abstract_names
            .lock()
            .get(&(self.ty, addr.to_vec()))
            .and_then(Weak::upgrade)
            .ok_or(Errno::ECONNREFUSED)
    }

    // ----- Connections -----

    fn stream_connect(&self, t: &mut Task, addr: &[u8], nonblock: bool) -> Result<(), Errno> {
        validate_addr(addr)?;
        let (passcred, sndtimeo) = {
            let st = self.st.lock();
            (st.passcred && st.addr.is_none(), st.sndtimeo)
        };
        if passcred {
            self.autobind()?;
        }
        let timeo = if nonblock { Timeout(Some(0)) } else { sndtimeo };
        let dl = deadline(timeo);
        let embryo = UnixSocket::new(t, self.ty, false);
        let mut cred_for_embryo = Some(peer_cred_of(t));
        let result = loop {
            let other = match self.find_other(t, addr) {
                Ok(o) => o,
                Err(e) => break Err(e),
            };
            let full = {
                let so = other.st.lock();
                if so.dead {
                    continue;
                }
                if so.phase != Phase::Listen || so.shutdown & RCV_SHUTDOWN != 0 {
                    break Err(Errno::ECONNREFUSED);
                }
                if so.embryos.len() > so.backlog {
                    true
                } else {
                    drop(so);
                    let (mut me, mut so) = lock2(self, &other);
                    if so.dead || so.phase != Phase::Listen {
                        continue;
                    }
                    if me.phase != Phase::Close {
                        break Err(if me.phase == Phase::Established {
                            Errno::EISCONN
                        } else {
                            Errno::EINVAL
                        });
                    }
                    {
                        let mut se = embryo.st.lock();
                        se.peer = Some(self.arc());
                        se.phase = Phase::Established;
                        se.peercred = cred_for_embryo.take();
                        se.addr = so.addr.clone();
                        se.path = so.path.clone();
                    }
                    me.peercred = so.peercred;
                    me.phase = Phase::Established;
                    me.peer = Some(embryo.clone());
                    so.embryos.push_back(embryo.clone());
                    false
                }
            };
            if !full {
                other.changed();
                break Ok(());
            }
            // The backlog is full: wait until the listener takes one.
            let q = other.queue.clone();
            let o2 = other.clone();
            if let Err(e) = (Cx { t: Some(t) }).wait(&q, timeo, dl, || {
                let so = o2.st.lock();
                so.dead || so.phase != Phase::Listen || so.embryos.len() <= so.backlog
            }) {
                break Err(e);
            }
        };
        if result.is_err() {
            embryo.release_sock(false);
        }
        self.changed();
        result
    }

    fn dgram_connect(&self, t: &mut Task, addr: &[u8]) -> Result<(), Errno> {
        if addr.len() < 2 {
            return Err(Errno::EINVAL);
        }
        let family = u16::from_ne_bytes([addr[0], addr[1]]) as i32;
        let other = if family != libc::AF_UNSPEC {
            validate_addr(addr)?;
            let autobind = {
                let st = self.st.lock();
                st.passcred && st.addr.is_none()
            };
            if autobind {
                self.autobind()?;
            }
            loop {
                let o = self.find_other(t, addr)?;
                if o.st.lock().dead {
                    continue;
                }
                break Some(o);
            }
        } else {
            None
        };
        let old = match &other {
            Some(o) => {
                let same = std::ptr::eq(self, &**o);
                let (mut me, so_guard);
                if same {
                    me = self.st.lock();
                    so_guard = None;
                } else {
                    let (a, b) = lock2(self, o);
                    me = a;
                    so_guard = Some(b);
                }
                let o_peer_ok = match &so_guard {
                    Some(so) => so.peer.as_ref().is_none_or(|p| std::ptr::eq(&**p, self)),
                    None => me.peer.as_ref().is_none_or(|p| std::ptr::eq(&**p, self)),
                };
                if !o_peer_ok {
                    return Err(Errno::EPERM);
                }
                me.phase = Phase::Established;
                if let Some(mut so) = so_guard {
                    so.phase = Phase::Established;
                }
                me.peer.replace(o.clone())
            }
            None => {
                let mut me = self.st.lock();
                let old = me.peer.take();
                if old.is_some() {
                    me.phase = Phase::Close;
                }
                old
            }
        };
        self.changed();
        if let Some(old) = old {
            let changed = other.as_ref().is_none_or(|o| !Arc::ptr_eq(o, &old));
            if changed {
                self.dgram_disconnected(&old);
                let mut so = old.st.lock();
                if so.peer.is_none() {
                    so.phase = Phase::Close;
                }
            }
        }
        Ok(())
    }

    /// `unix_dgram_disconnected`: the old peer's messages go; a peer
    /// connected back to us learns of it (ECONNRESET).
    fn dgram_disconnected(&self, old: &Arc<UnixSocket>) {
        let purged: Vec<Msg> = {
            let mut st = self.st.lock();
            let v: Vec<Msg> = st.rq.drain(..).collect();
            Self::wake_senders(&mut st);
            v
        };
        if !purged.is_empty() {
            let mut so = old.st.lock();
            if !so.dead && so.peer.as_ref().is_some_and(|p| std::ptr::eq(&**p, self)) {
                so.err = Some(Errno::ECONNRESET);
                drop(so);
                old.changed();
            }
        }
        drop(purged);
    }

    /// `unix_release_sock`: the socket is gone (its last file closed, or
    /// an embryo its listener let go).
    fn release_sock(&self, embryo: bool) {
        let (peer, msgs, embryos, addr, path) = {
            let mut st = self.st.lock();
            if st.dead {
                return;
            }
            st.dead = true;
            st.shutdown = SHUTDOWN_MASK;
            let was_listen = st.phase == Phase::Listen;
            st.phase = Phase::Close;
            Self::wake_senders(&mut st);
            let embryos: Vec<Arc<UnixSocket>> = if was_listen {
                st.embryos.drain(..).collect()
            } else {
                Vec::new()
            };
            (
                st.peer.take(),
                st.rq.drain(..).collect::<Vec<Msg>>(),
                embryos,
                st.addr.clone(),
                st.path.take(),
            )
        };
        self.ns.all.lock().remove(&self.inode.ino);
        if let Some(a) = &addr {
            if a[SUN_PATH] == 0 {
                let mut names = self.ns.abstract_names.lock();
                let key = (self.ty, a.clone());
                if names
                    .get(&key)
                    .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
                {
                    names.remove(&key);
                }
            }
        }
        if let Some(loc) = &path {
            let key = (loc.inode.fs.dev, loc.inode.ino);
            let mut b = self.ns.bound.lock();
            if b.get(&key).is_some_and(|w| std::ptr::eq(w.as_ptr(), self)) {
                b.remove(&key);
            }
        }
        self.changed();
        if let Some(p) = peer {
            if self.connection_based() {
                {
                    let mut sp = p.st.lock();
                    sp.shutdown = SHUTDOWN_MASK;
                    if !msgs.is_empty() || embryo {
                        sp.err = Some(Errno::ECONNRESET);
                    }
                }
                p.changed();
            }
        }
        drop(msgs);
        for e in embryos {
            e.release_sock(true);
        }
        drop(path);
        self.ns.collect();
    }

    fn accept_one(&self, t: &mut Task, nonblock: bool) -> Result<Arc<dyn Socket>, Errno> {
        if !self.connection_based() {
            return Err(Errno::EOPNOTSUPP);
        }
        let (timeo, passcred) = {
            let st = self.st.lock();
            if st.phase != Phase::Listen {
                return Err(Errno::EINVAL);
            }
            (
                if nonblock {
                    Timeout(Some(0))
                } else {
                    st.rcvtimeo
                },
                st.passcred,
            )
        };
        let dl = deadline(timeo);
        let mut cx = Cx { t: Some(t) };
        loop {
            {
                let mut st = self.st.lock();
                if let Some(e) = st.embryos.pop_front() {
                    drop(st);
                    self.changed();
                    {
                        let mut se = e.st.lock();
                        se.accepted = true;
                        se.passcred |= passcred;
                    }
                    return Ok(e);
                }
                if let Some(err) = st.err.take() {
                    return Err(err);
                }
                if st.shutdown & RCV_SHUTDOWN != 0 {
                    return Err(Errno::EINVAL);
                }
            }
            cx.wait(&self.queue, timeo, dl, || {
                let st = self.st.lock();
                !st.embryos.is_empty() || st.err.is_some() || st.shutdown & RCV_SHUTDOWN != 0
            })?;
        }
    }

    // ----- Sending -----

    /// Waits for room in the send buffer (Linux's sock_alloc_send_pskb).
    fn wait_wmem(&self, cx: &mut Cx, timeo: Timeout, dl: Option<Instant>) -> Result<(), Errno> {
        loop {
            {
                let mut st = self.st.lock();
                if let Some(e) = st.err.take() {
                    return Err(e);
                }
                if st.shutdown & SEND_SHUTDOWN != 0 {
                    return Err(Errno::EPIPE);
                }
                if self.wmem() < st.sndbuf as usize {
                    return Ok(());
                }
            }
            cx.wait(&self.queue, timeo, dl, || {
                let st = self.st.lock();
                st.err.is_some()
                    || st.shutdown & SEND_SHUTDOWN != 0
                    || self.wmem() < st.sndbuf as usize
            })?;
        }
    }

    /// Whether messages to `other` carry the sender's credentials
    /// (`unix_passcred_enabled`).
    fn passcred_enabled(mine: bool, other: &State) -> bool {
        mine || other.passcred || !other.accepted
    }

    /// Checks the ETOOMANYREFS rule and makes the in-flight list.
    fn attach_fds(
        &self,
        cx: &Cx,
        files: Vec<Arc<FileDescription>>,
    ) -> Result<Option<FdList>, Errno> {
        if files.is_empty() {
            return Ok(None);
        }
        let uid = cx.t.as_deref().map_or(0, |t| t.creds.uid);
        if let Some(t) = cx.t.as_deref() {
            let limit =
                t.tg.limits
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .cur(libc::RLIMIT_NOFILE);
            if self.ns.user_inflight(uid) as u64 > limit
                && !t.creds.has_cap(crate::kernel::creds::CAP_SYS_RESOURCE)
                && !t.creds.has_cap(CAP_SYS_ADMIN)
            {
                return Err(Errno::ETOOMANYREFS);
            }
        }
        Ok(Some(FdList {
            files,
            uid,
            ns: self.ns.clone(),
        }))
    }

    fn stream_send(&self, cx: &mut Cx, args: SendArgs<'_>) -> Result<usize, Errno> {
        let flags = args.flags;
        if flags & MSG_OOB != 0 {
            if let Some(t) = cx.t.as_deref() {
                t.kernel
                    .note_unimplemented("MSG_OOB on a unix stream socket");
            }
            return Err(Errno::ENOSYS);
        }
        let (other, sndtimeo, shut) = {
            let st = self.st.lock();
            if args.addr.as_ref().is_some_and(|a| !a.is_empty()) {
                return Err(if st.phase == Phase::Established {
                    Errno::EISCONN
                } else {
                    Errno::EOPNOTSUPP
                });
            }
            let Some(p) = st.peer.clone() else {
                return Err(Errno::ENOTCONN);
            };
            (p, st.sndtimeo, st.shutdown)
        };
        if shut & SEND_SHUTDOWN != 0 {
            cx.raise_sigpipe(flags);
            return Err(Errno::EPIPE);
        }
        let src = args.src;
        let len = src.remaining();
        let timeo = if flags & MSG_DONTWAIT != 0 {
            Timeout(Some(0))
        } else {
            sndtimeo
        };
        let dl = deadline(timeo);
        let mut fds = Some(args.control.fds);
        let explicit = args.control.creds;
        let mut sent = 0usize;
        while sent < len {
            let sndbuf = self.st.lock().sndbuf as usize;
            let size = (len - sent)
                .min((sndbuf >> 1).saturating_sub(64).max(1))
                .min(STREAM_MSG_MAX);
            if let Err(e) = self.wait_wmem(cx, timeo, dl) {
                return if sent > 0 { Ok(sent) } else { Err(e) };
            }
            let data = match src.take(size) {
                Ok(d) => d,
                Err(e) => return if sent > 0 { Ok(sent) } else { Err(e) },
            };
            let pages = size.saturating_sub(SKB_MAX_HEAD0).div_ceil(4096) * 4096;
            let pages = pages.min(size);
            let charge = truesize(size - pages, pages);
            let fdl = match fds.take() {
                Some(f) => match self.attach_fds(cx, f) {
                    Ok(l) => l,
                    Err(e) => return if sent > 0 { Ok(sent) } else { Err(e) },
                },
                None => None,
            };
            let (from, my_passcred) = {
                let st = self.st.lock();
                (st.addr.clone(), st.passcred)
            };
            let mut msg = Msg {
                data,
                consumed: 0,
                fds: None,
                creds: explicit,
                from,
                charge: None,
            };
            self.charge.bytes.fetch_add(charge, Ordering::AcqRel);
            msg.charge = Some((self.charge.clone(), charge));
            let refused = {
                let _g = self.ns.gc.read();
                let mut so = other.st.lock();
                if so.dead || so.shutdown & RCV_SHUTDOWN != 0 {
                    Some((msg, fdl))
                } else {
                    if msg.creds.is_none() && Self::passcred_enabled(my_passcred, &so) {
                        msg.creds = cx.creds();
                    }
                    if let Some(l) = fdl {
                        self.ns.count(&l.files, l.uid);
                        msg.fds = Some(l);
                    }
                    so.rq.push_back(msg);
                    None
                }
            };
            if let Some(dropped) = refused {
                drop(dropped);
                if sent == 0 {
                    cx.raise_sigpipe(flags);
                }
                return if sent > 0 {
                    Ok(sent)
                } else {
                    Err(Errno::EPIPE)
                };
            }
            other.changed();
            sent += size;
        }
        Ok(sent)
    }

    /// `unix_dgram_sendmsg` (and, connected, SOCK_SEQPACKET's).
    fn dgram_send(&self, cx: &mut Cx, args: SendArgs<'_>) -> Result<usize, Errno> {
        let flags = args.flags;
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let addr = args.addr.filter(|a| !a.is_empty());
        if let Some(a) = &addr {
            validate_addr(a)?;
        }
        let mut other = if addr.is_none() {
            Some(self.st.lock().peer.clone().ok_or(Errno::ENOTCONN)?)
        } else {
            None
        };
        let (autobind, sndbuf, sndtimeo) = {
            let st = self.st.lock();
            (
                st.passcred && st.addr.is_none(),
                st.sndbuf as usize,
                st.sndtimeo,
            )
        };
        if autobind {
            self.autobind()?;
        }
        let src = args.src;
        let len = src.remaining();
        if len > sndbuf.saturating_sub(32) {
            return Err(Errno::EMSGSIZE);
        }
        let timeo = if flags & MSG_DONTWAIT != 0 {
            Timeout(Some(0))
        } else {
            sndtimeo
        };
        let dl = deadline(timeo);
        self.wait_wmem(cx, timeo, dl)?;
        let data = src.take(len)?;
        let pages = if len > SKB_MAX_ALLOC {
            ((len - SKB_MAX_ALLOC).min(17 * 4096)).div_ceil(4096) * 4096
        } else {
            0
        }
        .min(len);
        let charge = truesize(len - pages, pages);
        let fdl = self.attach_fds(cx, args.control.fds)?;
        let (from, my_passcred) = {
            let st = self.st.lock();
            (st.addr.clone(), st.passcred)
        };
        self.charge.bytes.fetch_add(charge, Ordering::AcqRel);
        let mut msg = Some(Msg {
            data,
            consumed: 0,
            fds: None,
            creds: args.control.creds,
            from,
            charge: Some((self.charge.clone(), charge)),
        });
        let mut fdl = Some(fdl);
        loop {
            let o = match other.take() {
                Some(o) => o,
                None => {
                    let Some(a) = &addr else {
                        return Err(Errno::ECONNRESET);
                    };
                    let t = cx.t.as_deref_mut().ok_or(Errno::ENOTCONN)?;
                    self.find_other(t, a)?
                }
            };
            let g = self.ns.gc.read();
            let mut so = o.st.lock();
            let me_ptr = self as *const UnixSocket;
            let o_peer_is_me = so.peer.as_ref().is_some_and(|p| std::ptr::eq(&**p, me_ptr));
            let same = std::ptr::eq(&*o, me_ptr);
            if so.peer.is_some() && !o_peer_is_me {
                return Err(Errno::EPERM);
            }
            if so.dead {
                drop(so);
                drop(g);
                if self.ty == libc::SOCK_SEQPACKET {
                    return Err(Errno::EPIPE);
                }
                let was_peer = {
                    let mut st = self.st.lock();
                    if st.peer.as_ref().is_some_and(|p| Arc::ptr_eq(p, &o)) {
                        st.peer = None;
                        st.phase = Phase::Close;
                        true
                    } else {
                        false
                    }
                };
                if was_peer {
                    self.dgram_disconnected(&o);
                    return Err(Errno::ECONNREFUSED);
                }
                continue;
            }
            if so.shutdown & RCV_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            if !same && !o_peer_is_me && so.rq.len() > so.backlog {
                // The receiver's queue is full: wait for room (or, not
                // waiting, have it wake us for poll).
                so.wakers.push(Arc::downgrade(&self.queue));
                drop(so);
                drop(g);
                let o2 = o.clone();
                cx.wait(&self.queue, timeo, dl, || {
                    let so = o2.st.lock();
                    so.dead || so.shutdown & RCV_SHUTDOWN != 0 || so.rq.len() <= so.backlog
                })?;
                other = Some(o);
                continue;
            }
            let mut m = msg.take().expect("one message");
            if m.creds.is_none() && Self::passcred_enabled(my_passcred, &so) {
                m.creds = cx.creds();
            }
            if let Some(Some(l)) = fdl.take() {
                self.ns.count(&l.files, l.uid);
                m.fds = Some(l);
            }
            so.rq.push_back(m);
            drop(so);
            drop(g);
            o.changed();
            return Ok(len);
        }
    }

    // ----- Receiving -----

    fn stream_recv(&self, cx: &mut Cx, args: RecvArgs<'_>) -> Result<Received, Errno> {
        let flags = args.flags;
        let dst = args.dst;
        let (timeo, passcred, lowat) = {
            let st = self.st.lock();
            if st.phase != Phase::Established {
                return Err(Errno::EINVAL);
            }
            (
                if flags & MSG_DONTWAIT != 0 {
                    Timeout(Some(0))
                } else {
                    st.rcvtimeo
                },
                st.passcred,
                st.rcvlowat,
            )
        };
        if flags & MSG_OOB != 0 {
            if let Some(t) = cx.t.as_deref() {
                t.kernel
                    .note_unimplemented("MSG_OOB on a unix stream socket");
            }
            return Err(Errno::ENOSYS);
        }
        let mut size = dst.room();
        let target = if flags & MSG_WAITALL != 0 {
            size
        } else {
            (lowat.max(0) as usize).min(size)
        }
        .max(1);
        let dl = deadline(timeo);
        let peek = flags & MSG_PEEK != 0;
        let mut out = Received::default();
        // The credentials of the messages read (once the first is read
        // with SO_PASSCRED): later ones must match.
        let mut scm: Option<Option<Ucred>> = None;
        let mut copied = 0usize;
        let mut fds: Vec<Arc<FileDescription>> = Vec::new();
        let mut done_msgs: Vec<Msg> = Vec::new();
        let mut fault = false;
        'outer: loop {
            let g = self.ns.gc.read();
            let mut st = self.st.lock();
            if st.rq.is_empty() {
                if copied >= target {
                    break;
                }
                if let Some(e) = st.err.take() {
                    if copied == 0 {
                        return Err(e);
                    }
                    break;
                }
                if st.shutdown & RCV_SHUTDOWN != 0 {
                    break;
                }
                drop(st);
                drop(g);
                let seen = copied;
                let _ = seen;
                match cx.wait(&self.queue, timeo, dl, || {
                    let st = self.st.lock();
                    !st.rq.is_empty() || st.err.is_some() || st.shutdown & RCV_SHUTDOWN != 0
                }) {
                    Ok(()) => continue,
                    Err(e) => {
                        if copied > 0 {
                            break;
                        }
                        return Err(e);
                    }
                }
            }
            let mut idx = 0usize;
            loop {
                let Some(m) = st.rq.get_mut(idx) else {
                    break 'outer;
                };
                if let Some(c) = &scm {
                    if *c != m.creds {
                        break 'outer;
                    }
                } else if passcred {
                    scm = Some(m.creds);
                }
                if m.from.is_some() {
                    out.addr = m.from.clone();
                }
                let chunk = m.len().min(size);
                if dst.put(&m.data[m.consumed..m.consumed + chunk]).is_err() {
                    fault = copied == 0;
                    break 'outer;
                }
                copied += chunk;
                size -= chunk;
                if !peek {
                    m.consumed += chunk;
                    let had_fds = if let Some(l) = m.fds.take() {
                        fds.extend(l.take());
                        true
                    } else {
                        false
                    };
                    if m.len() > 0 {
                        break 'outer;
                    }
                    if let Some(m) = st.rq.pop_front() {
                        done_msgs.push(m);
                    }
                    if had_fds {
                        break 'outer;
                    }
                    break;
                } else {
                    if let Some(l) = &m.fds {
                        fds.extend(l.files.iter().cloned());
                        break 'outer;
                    }
                    idx += 1;
                    if size == 0 {
                        break 'outer;
                    }
                }
            }
            if size == 0 {
                break;
            }
        }
        drop(done_msgs);
        if fault {
            return Err(Errno::EFAULT);
        }
        out.len = copied;
        if passcred {
            out.creds = Some(match scm {
                Some(c) => c.unwrap_or(NO_CREDS),
                None => Ucred {
                    pid: 0,
                    uid: 0,
                    gid: 0,
                },
            });
        }
        out.had_control = passcred || !fds.is_empty();
        out.fds = fds;
        Ok(out)
    }

    /// `__unix_dgram_recvmsg` (SOCK_DGRAM, and SOCK_SEQPACKET connected).
    fn dgram_recv(&self, cx: &mut Cx, args: RecvArgs<'_>) -> Result<Received, Errno> {
        let flags = args.flags;
        let dst = args.dst;
        if flags & MSG_OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let (timeo, passcred) = {
            let st = self.st.lock();
            if self.ty == libc::SOCK_SEQPACKET && st.phase != Phase::Established {
                return Err(Errno::ENOTCONN);
            }
            (
                if flags & MSG_DONTWAIT != 0 {
                    Timeout(Some(0))
                } else {
                    st.rcvtimeo
                },
                st.passcred,
            )
        };
        let dl = deadline(timeo);
        let peek = flags & MSG_PEEK != 0;
        loop {
            let g = self.ns.gc.read();
            let mut st = self.st.lock();
            if let Some(e) = st.err.take() {
                return Err(e);
            }
            if !st.rq.is_empty() {
                let mut out = Received::default();
                let (total, taken) = {
                    let m = st.rq.front_mut().expect("a message");
                    let total = m.data.len();
                    let n = total.min(dst.room());
                    if n < total {
                        out.flags |= MSG_TRUNC;
                    }
                    dst.put(&m.data[..n])?;
                    out.addr = m.from.clone();
                    out.creds = passcred.then_some(m.creds.unwrap_or(NO_CREDS));
                    if peek {
                        if let Some(l) = &m.fds {
                            out.fds = l.files.clone();
                        }
                    } else if let Some(l) = m.fds.take() {
                        out.fds = l.take();
                    }
                    (total, n)
                };
                let gone = if peek { None } else { st.rq.pop_front() };
                if !peek {
                    Self::wake_senders(&mut st);
                }
                drop(st);
                drop(g);
                drop(gone);
                out.len = if flags & MSG_TRUNC != 0 { total } else { taken };
                out.had_control = passcred || !out.fds.is_empty();
                return Ok(out);
            }
            let shut = st.shutdown & RCV_SHUTDOWN != 0;
            let established = st.phase == Phase::Established || st.phase == Phase::Listen;
            drop(st);
            drop(g);
            if timeo.0 == Some(0) || cx.t.is_none() {
                // Signal EOF on a disconnected non-blocking SEQPACKET
                // socket.
                if self.ty == libc::SOCK_SEQPACKET && shut {
                    return Ok(Received::default());
                }
                return Err(Errno::EAGAIN);
            }
            if shut {
                return Ok(Received::default());
            }
            if self.connection_based() && !established {
                return Err(Errno::ENOTCONN);
            }
            cx.wait(&self.queue, timeo, dl, || {
                let st = self.st.lock();
                !st.rq.is_empty() || st.err.is_some() || st.shutdown & RCV_SHUTDOWN != 0
            })?;
        }
    }

    fn recv_any(&self, cx: &mut Cx, args: RecvArgs<'_>) -> Result<Received, Errno> {
        if self.ty == libc::SOCK_STREAM {
            self.stream_recv(cx, args)
        } else {
            self.dgram_recv(cx, args)
        }
    }

    fn send_any(&self, cx: &mut Cx, args: SendArgs<'_>) -> Result<usize, Errno> {
        match self.ty {
            libc::SOCK_STREAM => self.stream_send(cx, args),
            libc::SOCK_SEQPACKET => {
                {
                    let mut st = self.st.lock();
                    if let Some(e) = st.err.take() {
                        return Err(e);
                    }
                    if st.phase != Phase::Established {
                        return Err(Errno::ENOTCONN);
                    }
                }
                let args = SendArgs { addr: None, ..args };
                let flags = args.flags;
                let r = self.dgram_send(cx, args);
                if r == Err(Errno::EPIPE) {
                    cx.raise_sigpipe(flags);
                }
                r
            }
            _ => self.dgram_send(cx, args),
        }
    }

    /// poll's mask (`unix_poll`, `unix_dgram_poll`).
    fn poll_mask(&self, events: i16) -> i16 {
        let mut st = self.st.lock();
        let mut mask: i16 = 0;
        if st.err.is_some() {
            mask |= libc::POLLERR;
        }
        if st.shutdown == SHUTDOWN_MASK {
            mask |= libc::POLLHUP;
        }
        if st.shutdown & RCV_SHUTDOWN != 0 {
            mask |= libc::POLLRDHUP | libc::POLLIN | libc::POLLRDNORM;
        }
        if !st.rq.is_empty() || !st.embryos.is_empty() {
            mask |= libc::POLLIN | libc::POLLRDNORM;
        }
        if self.connection_based() && st.phase == Phase::Close {
            mask |= libc::POLLHUP;
        }
        let mut writable = st.phase != Phase::Listen && self.wmem() << 2 <= st.sndbuf as usize;
        let wants_out = events & (libc::POLLOUT | libc::POLLWRNORM | libc::POLLWRBAND) != 0;
        if self.ty != libc::SOCK_STREAM && writable && wants_out {
            if let Some(p) = st.peer.clone() {
                if !std::ptr::eq(&*p, self) {
                    drop(st);
                    let mut sp = p.st.lock();
                    let back = sp.peer.as_ref().is_some_and(|q| std::ptr::eq(&**q, self));
                    if !back && sp.rq.len() > sp.backlog && !sp.dead {
                        sp.wakers.push(Arc::downgrade(&self.queue));
                        writable = false;
                    }
                    st = self.st.lock();
                }
            }
        }
        drop(st);
        if writable {
            mask |= libc::POLLOUT | libc::POLLWRNORM | libc::POLLWRBAND;
        }
        mask
    }

    fn sol_socket_get(&self, t: &Task, name: i32, len: usize) -> Result<Vec<u8>, Errno> {
        let mut st = self.st.lock();
        Ok(match name {
            libc::SO_TYPE => int_val(self.ty),
            libc::SO_PROTOCOL => int_val(0),
            libc::SO_DOMAIN => int_val(libc::AF_UNIX),
            libc::SO_ERROR => int_val(st.err.take().map_or(0, |e| e.raw())),
            libc::SO_ACCEPTCONN => int_val((st.phase == Phase::Listen) as i32),
            libc::SO_SNDBUF => int_val(st.sndbuf as i32),
            libc::SO_RCVBUF => int_val(st.rcvbuf as i32),
            libc::SO_PASSCRED => int_val(st.passcred as i32),
            libc::SO_RCVLOWAT => int_val(st.rcvlowat),
            libc::SO_SNDLOWAT => int_val(1),
            libc::SO_PEEK_OFF => int_val(-1),
            libc::SO_RCVTIMEO | SO_RCVTIMEO_NEW => st.rcvtimeo.to_timeval().to_vec(),
            libc::SO_SNDTIMEO | SO_SNDTIMEO_NEW => st.sndtimeo.to_timeval().to_vec(),
            libc::SO_PEERCRED => {
                let c = st.peercred.unwrap_or(Ucred {
                    pid: 0,
                    uid: u32::MAX,
                    gid: u32::MAX,
                });
                c.to_bytes().to_vec()
            }
            libc::SO_LINGER => {
                let mut v = st.linger.0.to_ne_bytes().to_vec();
                v.extend_from_slice(&st.linger.1.to_ne_bytes());
                v
            }
            libc::SO_PEERNAME => {
                let p = st.peer.clone().ok_or(Errno::ENOTCONN)?;
                drop(st);
                let a = p.st.lock().addr.clone().unwrap_or_else(unnamed);
                if a.len() < len {
                    return Err(Errno::EINVAL);
                }
                a
            }
            libc::SO_PEERSEC => return Err(Errno::ENOPROTOOPT),
            libc::SO_DEBUG
            | libc::SO_REUSEADDR
            | libc::SO_REUSEPORT
            | libc::SO_DONTROUTE
            | libc::SO_BROADCAST
            | libc::SO_KEEPALIVE
            | libc::SO_OOBINLINE
            | libc::SO_NO_CHECK
            | libc::SO_PRIORITY => int_val(st.opts.get(&name).copied().unwrap_or(0)),
            _ => return Err(unknown_option(t, "getsockopt", name)),
        })
    }

    fn sol_socket_set(&self, t: &Task, name: i32, val: &[u8]) -> Result<(), Errno> {
        let v = get_int(val)?;
        let mut st = self.st.lock();
        match name {
            libc::SO_SNDBUF | libc::SO_SNDBUFFORCE => {
                let force = name == libc::SO_SNDBUFFORCE;
                if force && !t.creds.has_cap(CAP_NET_ADMIN) {
                    return Err(Errno::EPERM);
                }
                st.sndbuf = buf_size(v, WMEM_MAX, SOCK_MIN_SNDBUF, force);
                drop(st);
                self.changed();
            }
            libc::SO_RCVBUF | libc::SO_RCVBUFFORCE => {
                let force = name == libc::SO_RCVBUFFORCE;
                if force && !t.creds.has_cap(CAP_NET_ADMIN) {
                    return Err(Errno::EPERM);
                }
                st.rcvbuf = buf_size(v, RMEM_MAX, SOCK_MIN_RCVBUF, force);
            }
            libc::SO_PASSCRED => st.passcred = v != 0,
            libc::SO_RCVLOWAT => {
                let v = if v < 0 { i32::MAX } else { v };
                st.rcvlowat = if v == 0 { 1 } else { v };
            }
            libc::SO_RCVTIMEO | SO_RCVTIMEO_NEW => st.rcvtimeo = Timeout::from_timeval(val)?,
            libc::SO_SNDTIMEO | SO_SNDTIMEO_NEW => st.sndtimeo = Timeout::from_timeval(val)?,
            libc::SO_LINGER => {
                if val.len() < 8 {
                    return Err(Errno::EINVAL);
                }
                let secs = i32::from_ne_bytes(val[4..8].try_into().unwrap());
                st.linger = ((v != 0) as i32, if v != 0 { secs } else { st.linger.1 });
            }
            libc::SO_DEBUG => {
                if v != 0 && !t.creds.has_cap(CAP_NET_ADMIN) {
                    return Err(Errno::EACCES);
                }
                st.opts.insert(name, (v != 0) as i32);
            }
            libc::SO_REUSEPORT => {
                if v != 0 {
                    return Err(Errno::EOPNOTSUPP);
                }
                st.opts.insert(name, 0);
            }
            libc::SO_PRIORITY => {
                if !(0..=6).contains(&v) && !t.creds.has_cap(CAP_NET_ADMIN) {
                    return Err(Errno::EPERM);
                }
                st.opts.insert(name, v);
            }
            libc::SO_REUSEADDR
            | libc::SO_DONTROUTE
            | libc::SO_BROADCAST
            | libc::SO_KEEPALIVE
            | libc::SO_OOBINLINE
            | libc::SO_NO_CHECK => {
                st.opts.insert(name, (v != 0) as i32);
            }
            libc::SO_TYPE
            | libc::SO_PROTOCOL
            | libc::SO_DOMAIN
            | libc::SO_ERROR
            | libc::SO_ACCEPTCONN
            | libc::SO_PEERCRED
            | libc::SO_PEERNAME
            | libc::SO_SNDLOWAT
            | libc::SO_PEERSEC => return Err(Errno::ENOPROTOOPT),
            _ => return Err(unknown_option(t, "setsockopt", name)),
        }
        Ok(())
    }
}

/// Credentials of a message that carries none, as Linux shows them (no
/// pid, the overflow ids).
const NO_CREDS: Ucred = Ucred {
    pid: 0,
    uid: 65534,
    gid: 65534,
};

const CAP_SYS_ADMIN: u32 = 21;

/// What SO_PEERCRED shows of the caller: its pid and effective ids.
fn peer_cred_of(t: &Task) -> Ucred {
    Ucred {
        pid: t.tg.tgid,
        uid: t.creds.euid,
        gid: t.creds.egid,
    }
}

const CAP_NET_ADMIN: u32 = 12;
const SO_RCVTIMEO_NEW: i32 = 66;
const SO_SNDTIMEO_NEW: i32 = 67;

/// An option Linux has and the sentry does not: logged, ENOSYS. Numbers
/// Linux does not know are ENOPROTOOPT.
fn unknown_option(t: &Task, call: &str, name: i32) -> Errno {
    if (1..=80).contains(&name) {
        t.kernel
            .note_unimplemented(&format!("{call} SOL_SOCKET option {name} on a unix socket"));
        return Errno::ENOSYS;
    }
    Errno::ENOPROTOOPT
}

impl Socket for UnixSocket {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn family(&self) -> i32 {
        libc::AF_UNIX
    }

    fn sock_type(&self) -> i32 {
        self.ty
    }

    fn inode(&self) -> &Arc<Inode> {
        &self.inode
    }

    fn passes_fds(&self) -> bool {
        true
    }

    fn bind(&self, t: &mut Task, addr: &[u8]) -> Result<(), Errno> {
        if addr.len() == SUN_PATH && u16::from_ne_bytes([addr[0], addr[1]]) == libc::AF_UNIX as u16
        {
            return self.autobind();
        }
        validate_addr(addr)?;
        if addr[SUN_PATH] != 0 {
            self.bind_bsd(t, addr)
        } else {
            self.bind_abstract(addr)
        }
    }

    fn listen(&self, _t: &mut Task, backlog: i32) -> Result<(), Errno> {
        if !self.connection_based() {
            return Err(Errno::EOPNOTSUPP);
        }
        let backlog = if (backlog as u32) > SOMAXCONN as u32 {
            SOMAXCONN
        } else {
            backlog
        };
        let mut st = self.st.lock();
        if st.addr.is_none() {
            return Err(Errno::EINVAL);
        }
        if st.phase != Phase::Close && st.phase != Phase::Listen {
            return Err(Errno::EINVAL);
        }
        st.backlog = backlog as usize;
        st.phase = Phase::Listen;
        st.peercred = Some(peer_cred_of(_t));
        drop(st);
        self.changed();
        Ok(())
    }

    fn connect(&self, t: &mut Task, addr: &[u8], nonblock: bool) -> Result<(), Errno> {
        if self.connection_based() {
            self.stream_connect(t, addr, nonblock)
        } else {
            self.dgram_connect(t, addr)
        }
    }

    fn accept(&self, t: &mut Task, nonblock: bool) -> Result<Arc<dyn Socket>, Errno> {
        self.accept_one(t, nonblock)
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        if !(libc::SHUT_RD..=libc::SHUT_RDWR).contains(&how) {
            return Err(Errno::EINVAL);
        }
        let mode = (how + 1) as u8;
        let peer = {
            let mut st = self.st.lock();
            st.shutdown |= mode;
            st.peer.clone()
        };
        self.changed();
        if let Some(p) = peer {
            if self.connection_based() {
                let mut pm = 0;
                if mode & RCV_SHUTDOWN != 0 {
                    pm |= SEND_SHUTDOWN;
                }
                if mode & SEND_SHUTDOWN != 0 {
                    pm |= RCV_SHUTDOWN;
                }
                p.st.lock().shutdown |= pm;
                p.changed();
            }
        }
        Ok(())
    }

    fn sockname(&self) -> Vec<u8> {
        self.st.lock().addr.clone().unwrap_or_else(unnamed)
    }

    fn peername(&self) -> Result<Vec<u8>, Errno> {
        let p = self.st.lock().peer.clone().ok_or(Errno::ENOTCONN)?;
        let a = p.st.lock().addr.clone().unwrap_or_else(unnamed);
        Ok(a)
    }

    fn sendmsg(&self, t: &mut Task, args: SendArgs<'_>) -> Result<usize, Errno> {
        self.send_any(&mut Cx { t: Some(t) }, args)
    }

    fn recvmsg(&self, t: &mut Task, args: RecvArgs<'_>) -> Result<Received, Errno> {
        self.recv_any(&mut Cx { t: Some(t) }, args)
    }

    fn getsockopt(
        &self,
        t: &mut Task,
        level: i32,
        name: i32,
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        if level != libc::SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        self.sol_socket_get(t, name, len)
    }

    fn setsockopt(&self, t: &mut Task, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        if level != libc::SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        self.sol_socket_set(t, name, val)
    }

    fn ioctl(&self, t: &mut Task, request: u32, arg: u64) -> Result<u64, Errno> {
        let v: i32 = match request as u64 {
            libc::FIONREAD => {
                let st = self.st.lock();
                if st.phase == Phase::Listen {
                    return Err(Errno::EINVAL);
                }
                if self.ty == libc::SOCK_DGRAM {
                    st.rq.front().map_or(0, |m| m.data.len()) as i32
                } else {
                    st.rq.iter().map(Msg::len).sum::<usize>() as i32
                }
            }
            libc::TIOCOUTQ => self.wmem() as i32,
            SIOCATMARK => 0,
            SIOCUNIXFILE => {
                t.kernel.note_unimplemented("ioctl SIOCUNIXFILE");
                return Err(Errno::ENOSYS);
            }
            // The device ioctls every socket serves.
            _ => return crate::net::ioctl::dev_ioctl(t, request, arg),
        };
        t.mm.write_obj(arg, &v)?;
        Ok(0)
    }

    fn readiness(&self, events: i16) -> i16 {
        self.poll_mask(events)
    }

    fn waitq(&self) -> Arc<WaitQueue> {
        self.queue.clone()
    }

    fn take_error(&self) -> Option<Errno> {
        self.st.lock().err.take()
    }

    fn release(&self) {
        self.release_sock(false);
    }

    fn read_nonblocking(&self, dst: &mut [u8]) -> Result<usize, Errno> {
        let mut sink = super::BufIo::sink(dst);
        let r = self.recv_any(
            &mut Cx { t: None },
            RecvArgs {
                dst: &mut sink,
                flags: MSG_DONTWAIT,
            },
        )?;
        Ok(r.len)
    }

    fn write_nonblocking(&self, src: &[u8]) -> Result<usize, Errno> {
        let mut source = super::BufIo::source(src);
        self.send_any(
            &mut Cx { t: None },
            SendArgs {
                src: &mut source,
                addr: None,
                control: Control::default(),
                flags: MSG_DONTWAIT | MSG_NOSIGNAL,
            },
        )
    }
}

const SIOCATMARK: u64 = 0x8905;
const SIOCUNIXFILE: u64 = 0x89e0;
