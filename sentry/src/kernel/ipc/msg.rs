//! System V message queues (Linux's `ipc/msg.c`).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::errno::Errno;
use crate::kernel::waiter::WaitQueue;

use super::{now, Ids, IpcObject, Perm};

pub const MSG_NOERROR: i32 = 0o10000;
pub const MSG_EXCEPT: i32 = 0o20000;
pub const MSG_COPY: i32 = 0o40000;

/// One message.
pub struct Message {
    pub mtype: i64,
    pub data: Vec<u8>,
}

/// One queue.
pub struct MsgQueue {
    pub perm: Perm,
    pub msgs: VecDeque<Message>,
    pub cbytes: u64,
    pub qbytes: u64,
    pub lspid: i32,
    pub lrpid: i32,
    pub stime: i64,
    pub rtime: i64,
    pub ctime: i64,
    pub serial: u64,
    /// Notified when messages come or go and when the queue goes.
    pub waitq: Arc<WaitQueue>,
}

impl IpcObject for MsgQueue {
    fn perm(&self) -> &Perm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut Perm {
        &mut self.perm
    }
}

/// How msgrcv picks a message (Linux's `convert_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Search {
    Any,
    Equal(i64),
    NotEqual(i64),
    /// The lowest type at most this.
    LessEqual(i64),
    /// MSG_COPY: the message at this position.
    Number(i64),
}

impl Search {
    pub fn new(msgtyp: i64, flags: i32) -> Search {
        if flags & MSG_COPY != 0 {
            Search::Number(msgtyp)
        } else if msgtyp == 0 {
            Search::Any
        } else if msgtyp < 0 {
            Search::LessEqual(if msgtyp == i64::MIN {
                i64::MAX
            } else {
                -msgtyp
            })
        } else if flags & MSG_EXCEPT != 0 {
            Search::NotEqual(msgtyp)
        } else {
            Search::Equal(msgtyp)
        }
    }
}

impl MsgQueue {
    /// `struct msqid64_ds`.
    pub fn to_bytes(&self) -> [u8; 120] {
        let mut b = [0u8; 120];
        b[0..48].copy_from_slice(&self.perm.to_bytes());
        b[48..56].copy_from_slice(&self.stime.to_le_bytes());
        b[56..64].copy_from_slice(&self.rtime.to_le_bytes());
        b[64..72].copy_from_slice(&self.ctime.to_le_bytes());
        b[72..80].copy_from_slice(&self.cbytes.to_le_bytes());
        b[80..88].copy_from_slice(&(self.msgs.len() as u64).to_le_bytes());
        b[88..96].copy_from_slice(&self.qbytes.to_le_bytes());
        b[96..100].copy_from_slice(&self.lspid.to_le_bytes());
        b[100..104].copy_from_slice(&self.lrpid.to_le_bytes());
        b
    }

    /// Whether a message of `len` bytes fits (`msg_fits_inqueue`).
    pub fn fits(&self, len: u64) -> bool {
        len + self.cbytes <= self.qbytes && (self.msgs.len() as u64) < self.qbytes
    }

    /// The index of the message `search` picks (`find_msg`).
    pub fn find(&self, search: Search) -> Option<usize> {
        let mut found = None;
        let mut lowest = match search {
            Search::LessEqual(t) => t,
            _ => 0,
        };
        for (i, m) in self.msgs.iter().enumerate() {
            match search {
                Search::Any => return Some(i),
                Search::Number(n) if n == i as i64 => return Some(i),
                Search::Equal(t) if m.mtype == t => return Some(i),
                Search::NotEqual(t) if m.mtype != t => return Some(i),
                Search::LessEqual(_) if m.mtype <= lowest => {
                    if m.mtype == 1 {
                        return Some(i);
                    }
                    lowest = m.mtype - 1;
                    found = Some(i);
                }
                _ => {}
            }
        }
        found
    }

    pub fn push(&mut self, m: Message, tgid: i32) {
        self.cbytes += m.data.len() as u64;
        self.msgs.push_back(m);
        self.lspid = tgid;
        self.stime = now();
        self.waitq.notify_all();
    }

    pub fn take(&mut self, i: usize, tgid: i32) -> Message {
        let m = self.msgs.remove(i).expect("found above");
        self.cbytes -= m.data.len() as u64;
        self.lrpid = tgid;
        self.rtime = now();
        self.waitq.notify_all();
        m
    }
}

/// The namespace's queues.
#[derive(Default)]
pub struct MsgState {
    pub ids: Ids<MsgQueue>,
}

/// Linux's `newque`.
pub fn new_queue(
    ids: &mut Ids<MsgQueue>,
    limits: &super::Limits,
    key: i32,
    flags: i32,
    creds: &crate::kernel::creds::Credentials,
) -> Result<i32, Errno> {
    let get = super::Limits::get;
    let perm = Perm::new(key, flags, creds);
    let qbytes = get(&limits.msgmnb) as u64;
    ids.add(get(&limits.msgmni) as usize, |_, serial| MsgQueue {
        perm,
        msgs: VecDeque::new(),
        cbytes: 0,
        qbytes,
        lspid: 0,
        lrpid: 0,
        stime: 0,
        rtime: 0,
        ctime: now(),
        serial,
        waitq: Arc::new(WaitQueue::default()),
    })
}

impl MsgState {
    /// Messages and bytes in all queues.
    pub fn totals(&self) -> (u64, u64) {
        self.ids
            .iter()
            .fold((0, 0), |(n, b), q| (n + q.msgs.len() as u64, b + q.cbytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// msgrcv's type rules: first of a type, first of another, lowest
    /// type up to a bound, position.
    #[test]
    fn find_follows_linux() {
        let c = crate::kernel::creds::Credentials::root();
        let mut q = MsgQueue {
            perm: Perm::new(0, 0o600, &c),
            msgs: VecDeque::new(),
            cbytes: 0,
            qbytes: 100,
            lspid: 0,
            lrpid: 0,
            stime: 0,
            rtime: 0,
            ctime: 0,
            serial: 1,
            waitq: Arc::new(WaitQueue::default()),
        };
        for t in [5, 3, 7, 3, 2] {
            q.msgs.push_back(Message {
                mtype: t,
                data: vec![],
            });
        }
        assert_eq!(q.find(Search::new(0, 0)), Some(0));
        assert_eq!(q.find(Search::new(3, 0)), Some(1));
        assert_eq!(q.find(Search::new(5, MSG_EXCEPT)), Some(1));
        assert_eq!(q.find(Search::new(-4, 0)), Some(4));
        assert_eq!(q.find(Search::new(-3, 0)), Some(4));
        assert_eq!(q.find(Search::new(-1, 0)), None);
        assert_eq!(q.find(Search::new(9, 0)), None);
        assert_eq!(q.find(Search::new(2, MSG_COPY)), Some(2));
        assert_eq!(q.find(Search::new(5, MSG_COPY)), None);
    }
}
