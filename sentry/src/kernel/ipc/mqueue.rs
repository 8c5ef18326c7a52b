//! POSIX message queues (Linux's `ipc/mqueue.c`): the queue objects and
//! the namespace's accounting. The queues are files of the namespace's
//! `mqueue` file system (`fsimpl::mqueue`); the syscalls are in
//! `syscalls::mqueue`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::errno::Errno;
use crate::kernel::waiter::WaitQueue;

/// MQ_PRIO_MAX.
pub const MQ_PRIO_MAX: u32 = 32768;
/// HARD_MSGMAX and HARD_MSGSIZEMAX: the bounds with CAP_SYS_RESOURCE.
pub const HARD_MSGMAX: i64 = 65536;
pub const HARD_MSGSIZEMAX: i64 = 16 << 20;
/// What Linux charges RLIMIT_MSGQUEUE per message slot, besides its
/// bytes: a `struct msg_msg` and a share of the priority tree.
const MSG_MSG_SIZE: i64 = 48;
const TREE_NODE_SIZE: i64 = 48;

pub const SIGEV_SIGNAL: i32 = 0;
pub const SIGEV_NONE: i32 = 1;
pub const SIGEV_THREAD: i32 = 2;

/// A registered mq_notify.
#[derive(Clone, Debug)]
pub struct Notification {
    /// The registering process.
    pub tgid: i32,
    /// SIGEV_NONE, SIGEV_SIGNAL or SIGEV_THREAD.
    pub notify: i32,
    pub signo: i32,
    pub value: u64,
}

/// A signal a send must deliver, once the queue is unlocked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub tgid: i32,
    pub signo: i32,
    pub value: u64,
}

struct State {
    /// Messages by priority, each priority's in arrival order.
    msgs: BTreeMap<u32, VecDeque<Vec<u8>>>,
    count: i64,
    /// Bytes of all messages.
    qsize: u64,
    notify: Option<Notification>,
    /// Tasks blocked in mq_timedreceive.
    receivers: usize,
}

/// What the namespace counts across its queues: how many there are and
/// what each user's take of RLIMIT_MSGQUEUE is.
#[derive(Default)]
pub struct Accounting {
    queues: AtomicI64,
    bytes: Mutex<HashMap<u32, i64>>,
}

/// One queue.
pub struct Queue {
    pub maxmsg: i64,
    pub msgsize: i64,
    state: Mutex<State>,
    /// Notified when messages come or go (senders, receivers, poll).
    pub waitq: Arc<WaitQueue>,
    accounting: Arc<Accounting>,
    /// The user charged for it, and how much.
    charged: (u32, i64),
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.accounting.queues.fetch_sub(1, Ordering::Relaxed);
        let mut b = self.accounting.bytes.lock();
        if let Some(v) = b.get_mut(&self.charged.0) {
            *v -= self.charged.1;
        }
    }
}

impl Queue {
    pub fn curmsgs(&self) -> i64 {
        self.state.lock().count
    }

    /// Adds a message, unless the queue is full (the message comes back).
    /// A first message with nobody waiting to receive it fires the
    /// notification, which the caller delivers.
    pub fn send(&self, data: Vec<u8>, prio: u32) -> Result<Option<Delivery>, Vec<u8>> {
        let mut s = self.state.lock();
        if s.count >= self.maxmsg {
            return Err(data);
        }
        s.qsize += data.len() as u64;
        s.count += 1;
        s.msgs.entry(prio).or_default().push_back(data);
        let mut out = None;
        if s.count == 1 && s.receivers == 0 {
            if let Some(n) = s.notify.take() {
                // A signal number of 0 sends nothing (Linux accepts it).
                if n.notify == SIGEV_SIGNAL && n.signo != 0 {
                    out = Some(Delivery {
                        tgid: n.tgid,
                        signo: n.signo,
                        value: n.value,
                    });
                }
            }
        }
        drop(s);
        self.waitq.notify_all();
        Ok(out)
    }

    /// Takes the oldest message of the highest priority.
    pub fn receive(&self) -> Option<(Vec<u8>, u32)> {
        let mut s = self.state.lock();
        let (&prio, q) = s.msgs.iter_mut().next_back()?;
        let m = q.pop_front().expect("no empty priorities");
        if q.is_empty() {
            s.msgs.remove(&prio);
        }
        s.count -= 1;
        s.qsize -= m.len() as u64;
        drop(s);
        self.waitq.notify_all();
        Some((m, prio))
    }

    /// Counts a task blocked in mq_timedreceive while the guard lives.
    pub fn receiving(self: &Arc<Self>) -> ReceiverGuard {
        self.state.lock().receivers += 1;
        ReceiverGuard(self.clone())
    }

    /// mq_notify: registers `n`, or with None removes the caller's.
    pub fn set_notify(&self, n: Option<Notification>, tgid: i32) -> Result<(), Errno> {
        let mut s = self.state.lock();
        match n {
            None => {
                if s.notify.as_ref().is_some_and(|o| o.tgid == tgid) {
                    s.notify = None;
                }
                Ok(())
            }
            Some(_) if s.notify.is_some() => Err(Errno::EBUSY),
            Some(n) => {
                s.notify = Some(n);
                Ok(())
            }
        }
    }

    /// The process `tgid` closed a descriptor of the queue or exited: its
    /// registration goes (Linux's `mqueue_flush_file`).
    pub fn forget(&self, tgid: i32) {
        let mut s = self.state.lock();
        if s.notify.as_ref().is_some_and(|o| o.tgid == tgid) {
            s.notify = None;
        }
    }

    /// What reading the queue's file shows.
    pub fn status(&self) -> String {
        let s = self.state.lock();
        let (notify, signo, pid) = match &s.notify {
            Some(n) => (
                n.notify,
                if n.notify == SIGEV_SIGNAL { n.signo } else { 0 },
                n.tgid,
            ),
            None => (0, 0, 0),
        };
        format!(
            "QSIZE:{:<10} NOTIFY:{:<5} SIGNO:{:<5} NOTIFY_PID:{:<6}\n",
            s.qsize, notify, signo, pid
        )
    }

    /// poll: POLLIN with messages, POLLOUT with room.
    pub fn readiness(&self, events: i16) -> i16 {
        let s = self.state.lock();
        let mut r = 0;
        if s.count > 0 {
            r |= libc::POLLIN | libc::POLLRDNORM;
        }
        if s.count < self.maxmsg {
            r |= libc::POLLOUT | libc::POLLWRNORM;
        }
        r & events
    }
}

/// See [`Queue::receiving`].
pub struct ReceiverGuard(Arc<Queue>);

impl Drop for ReceiverGuard {
    fn drop(&mut self) {
        self.0.state.lock().receivers -= 1;
    }
}

/// The namespace's queues: accounting, every queue (for exits), and its
/// `mqueue` file system, made on first use.
#[derive(Default)]
pub struct MqNamespace {
    accounting: Arc<Accounting>,
    queues: Mutex<Vec<Weak<Queue>>>,
    pub fs: std::sync::OnceLock<(
        Arc<crate::vfs::inode::Filesystem>,
        Arc<crate::vfs::inode::Inode>,
        Arc<crate::vfs::mount::Mount>,
    )>,
}

/// What a new queue asks for.
pub struct NewQueue {
    /// `mq_attr`'s maxmsg and msgsize; None for the defaults.
    pub attr: Option<(i64, i64)>,
    /// CAP_SYS_RESOURCE.
    pub privileged: bool,
    pub uid: u32,
    /// RLIMIT_MSGQUEUE.
    pub rlimit: u64,
}

impl MqNamespace {
    /// A new queue (Linux's `mqueue_create_attr` and `mqueue_get_inode`):
    /// ENOSPC past queues_max, EINVAL for attributes out of bounds,
    /// EOVERFLOW, EMFILE past the user's RLIMIT_MSGQUEUE.
    pub fn new_queue(&self, limits: &super::Limits, n: NewQueue) -> Result<Arc<Queue>, Errno> {
        let get = super::Limits::get;
        let acc = &self.accounting;
        if acc.queues.load(Ordering::Relaxed) >= get(&limits.mq_queues_max) && !n.privileged {
            return Err(Errno::ENOSPC);
        }
        let (maxmsg, msgsize) = n.attr.unwrap_or((
            get(&limits.mq_msg_max).min(get(&limits.mq_msg_default)),
            get(&limits.mq_msgsize_max).min(get(&limits.mq_msgsize_default)),
        ));
        if maxmsg <= 0 || msgsize <= 0 {
            return Err(Errno::EINVAL);
        }
        if n.privileged {
            if maxmsg > HARD_MSGMAX || msgsize > HARD_MSGSIZEMAX {
                return Err(Errno::EINVAL);
            }
        } else if maxmsg > get(&limits.mq_msg_max) || msgsize > get(&limits.mq_msgsize_max) {
            return Err(Errno::EINVAL);
        }
        let tree = maxmsg * MSG_MSG_SIZE + maxmsg.min(MQ_PRIO_MAX as i64) * TREE_NODE_SIZE;
        let bytes = maxmsg
            .checked_mul(msgsize)
            .and_then(|b| b.checked_add(tree))
            .ok_or(Errno::EOVERFLOW)?;
        {
            let mut b = acc.bytes.lock();
            let used = b.entry(n.uid).or_insert(0);
            if (*used + bytes) as u64 > n.rlimit {
                return Err(Errno::EMFILE);
            }
            *used += bytes;
        }
        acc.queues.fetch_add(1, Ordering::Relaxed);
        let q = Arc::new(Queue {
            maxmsg,
            msgsize,
            state: Mutex::new(State {
                msgs: BTreeMap::new(),
                count: 0,
                qsize: 0,
                notify: None,
                receivers: 0,
            }),
            waitq: Arc::new(WaitQueue::default()),
            accounting: acc.clone(),
            charged: (n.uid, bytes),
        });
        let mut all = self.queues.lock();
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&q));
        Ok(q)
    }

    /// A process exited: its registrations go.
    pub fn process_exited(&self, tgid: i32) {
        let all: Vec<Arc<Queue>> = self
            .queues
            .lock()
            .iter()
            .filter_map(|w| w.upgrade())
            .collect();
        for q in all {
            q.forget(tgid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages come out by priority, oldest first within one; the first
    /// message of an empty queue fires the notification once.
    #[test]
    fn order_and_notification() {
        let ns = MqNamespace::default();
        let limits = super::super::Limits::default();
        let q = ns
            .new_queue(
                &limits,
                NewQueue {
                    attr: Some((3, 16)),
                    privileged: false,
                    uid: 0,
                    rlimit: 1 << 20,
                },
            )
            .unwrap();
        q.set_notify(
            Some(Notification {
                tgid: 7,
                notify: SIGEV_SIGNAL,
                signo: 10,
                value: 5,
            }),
            7,
        )
        .unwrap();
        assert_eq!(q.send(b"a".to_vec(), 1).unwrap().map(|d| d.signo), Some(10));
        assert!(q.send(b"b".to_vec(), 5).unwrap().is_none());
        assert!(q.send(b"c".to_vec(), 1).unwrap().is_none());
        assert_eq!(q.send(b"d".to_vec(), 1), Err(b"d".to_vec()));
        assert_eq!(q.receive(), Some((b"b".to_vec(), 5)));
        assert_eq!(q.receive(), Some((b"a".to_vec(), 1)));
        assert_eq!(q.receive(), Some((b"c".to_vec(), 1)));
        assert_eq!(q.receive(), None);
        assert!(q.status().starts_with("QSIZE:0 "));
        drop(q);
        assert_eq!(ns.accounting.queues.load(Ordering::Relaxed), 0);
    }
}
