//! The sandbox's IPC namespace: System V shared memory, semaphores and
//! message queues, and POSIX message queues, as Linux's `ipc/` keeps
//! them. None of it is a host object: segments are memory of the
//! sentry's memory file, the rest lives in the sentry.
//!
//! Objects of each System V family live in one [`Ids`] table behind one
//! lock, with Linux's identifiers (index + sequence * 32768), key lookup
//! (`ipcget`) and permission rules (`ipcperms`, the owner checks of
//! `IPC_SET`/`IPC_RMID`). Tasks that block (semop, msgsnd, msgrcv) wait
//! on the object's queue with the table unlocked and look again when
//! woken; an object that went meanwhile is `EIDRM`.

pub mod mqueue;
pub mod msg;
pub mod proc;
pub mod sem;
pub mod shm;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::errno::Errno;
use crate::kernel::creds::Credentials;

pub const IPC_PRIVATE: i32 = 0;
pub const IPC_CREAT: i32 = 0o1000;
pub const IPC_EXCL: i32 = 0o2000;
pub const IPC_NOWAIT: i32 = 0o4000;

pub const IPC_RMID: i32 = 0;
pub const IPC_SET: i32 = 1;
pub const IPC_STAT: i32 = 2;
pub const IPC_INFO: i32 = 3;

/// Linux's IPCMNI: an identifier is `seq * IPCMNI + index`.
pub const IPCMNI: i32 = 32768;
/// The smallest range indexes cycle through (`ipc_min_cycle`).
const MIN_CYCLE: usize = 64;
/// The sequence numbers an identifier can carry (`ipcid_seq_max`).
const SEQ_MAX: i32 = i32::MAX / IPCMNI;

const S_IRWXUGO: u32 = 0o777;

/// CAP_IPC_LOCK: SHM_LOCK of any segment.
pub const CAP_IPC_LOCK: u32 = 14;
/// CAP_IPC_OWNER: bypass IPC permission checks.
pub const CAP_IPC_OWNER: u32 = 15;
/// CAP_SYS_ADMIN: IPC_SET and IPC_RMID of objects one does not own.
pub const CAP_SYS_ADMIN: u32 = 21;

/// Seconds since the epoch, for the time stamps of IPC objects.
pub fn now() -> i64 {
    crate::vfs::inode::Timespec::now().sec
}

/// An object's owner and permissions (Linux's `kern_ipc_perm`).
#[derive(Clone, Debug)]
pub struct Perm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    /// Permission bits, and the family's flags (SHM_DEST, SHM_LOCKED).
    pub mode: u32,
    pub seq: i32,
    pub id: i32,
}

impl Perm {
    fn new(key: i32, flags: i32, creds: &Credentials) -> Perm {
        Perm {
            key,
            uid: creds.euid,
            gid: creds.egid,
            cuid: creds.euid,
            cgid: creds.egid,
            mode: flags as u32 & S_IRWXUGO,
            seq: 0,
            id: 0,
        }
    }

    /// `struct ipc64_perm`.
    pub fn to_bytes(&self) -> [u8; 48] {
        let mut b = [0u8; 48];
        b[0..4].copy_from_slice(&self.key.to_le_bytes());
        b[4..8].copy_from_slice(&self.uid.to_le_bytes());
        b[8..12].copy_from_slice(&self.gid.to_le_bytes());
        b[12..16].copy_from_slice(&self.cuid.to_le_bytes());
        b[16..20].copy_from_slice(&self.cgid.to_le_bytes());
        b[20..22].copy_from_slice(&(self.mode as u16).to_le_bytes());
        b[24..26].copy_from_slice(&(self.seq as u16).to_le_bytes());
        b
    }

    /// Linux's `ipcperms`: may the caller do what `flag`'s permission bits
    /// ask (0444: read, 0222: write)? EACCES if not.
    pub fn check(&self, creds: &Credentials, flag: i32) -> Result<(), Errno> {
        let requested = ((flag >> 6) | (flag >> 3) | flag) as u32;
        let mut granted = self.mode;
        if creds.euid == self.cuid || creds.euid == self.uid {
            granted >>= 6;
        } else if crate::vfs::perm::in_group(creds, self.cgid)
            || crate::vfs::perm::in_group(creds, self.gid)
        {
            granted >>= 3;
        }
        if requested & !granted & 0o7 != 0 && !creds.has_cap(CAP_IPC_OWNER) {
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    /// Whether the caller may IPC_SET or IPC_RMID the object (Linux's
    /// `ipcctl_obtain_check`): its owner, its creator, or CAP_SYS_ADMIN.
    pub fn check_owner(&self, creds: &Credentials) -> Result<(), Errno> {
        if creds.euid == self.cuid || creds.euid == self.uid || creds.has_cap(CAP_SYS_ADMIN) {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// IPC_SET of the owner and permission bits (`ipc_update_perm`).
    pub fn set(&mut self, uid: u32, gid: u32, mode: u32) {
        self.uid = uid;
        self.gid = gid;
        self.mode = (self.mode & !S_IRWXUGO) | (mode & S_IRWXUGO);
    }

    /// Reads the owner and mode an IPC_SET gives from a `struct
    /// ipc64_perm`: (uid, gid, mode).
    pub fn from_set(b: &[u8]) -> (u32, u32, u32) {
        let u = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        (
            u(4),
            u(8),
            u16::from_le_bytes(b[20..22].try_into().unwrap()) as u32,
        )
    }
}

/// What every object of a family has.
pub trait IpcObject {
    fn perm(&self) -> &Perm;
    fn perm_mut(&mut self) -> &mut Perm;
}

/// Linux's `ipc_ids`: the objects of one family by index, and how
/// identifiers are made.
pub struct Ids<T> {
    objs: BTreeMap<i32, T>,
    seq: i32,
    last_idx: i32,
    /// Where the cyclic search for a free index starts.
    next_idx: i32,
    /// Tells objects apart across the table's whole life (an object and
    /// a later one that got its identifier back).
    next_serial: u64,
}

impl<T> Default for Ids<T> {
    fn default() -> Ids<T> {
        Ids {
            objs: BTreeMap::new(),
            seq: 0,
            last_idx: -1,
            next_idx: 0,
            next_serial: 1,
        }
    }
}

impl<T: IpcObject> Ids<T> {
    /// Adds the object `make` builds for its identifier and serial
    /// (`ipc_addid`, `ipc_idr_alloc`): the next free index after the last
    /// one given, cycling through [0, max(1.5 * in use, 64)); the sequence
    /// moves on when the index does not grow. ENOSPC with `limit` objects
    /// already.
    pub fn add(&mut self, limit: usize, make: impl FnOnce(i32, u64) -> T) -> Result<i32, Errno> {
        let limit = limit.min(IPCMNI as usize);
        if self.objs.len() >= limit {
            return Err(Errno::ENOSPC);
        }
        let max_idx = ((self.objs.len() * 3 / 2).max(MIN_CYCLE) as i32).min(IPCMNI);
        let free = |from: i32| (from..max_idx).find(|i| !self.objs.contains_key(i));
        let idx = free(self.next_idx.max(0))
            .or_else(|| free(0))
            .ok_or(Errno::ENOSPC)?;
        self.next_idx = idx + 1;
        if idx <= self.last_idx {
            self.seq += 1;
            if self.seq >= SEQ_MAX {
                self.seq = 0;
            }
        }
        self.last_idx = idx;
        let id = self.seq * IPCMNI + idx;
        let serial = self.next_serial;
        self.next_serial += 1;
        let mut obj = make(id, serial);
        obj.perm_mut().id = id;
        obj.perm_mut().seq = self.seq;
        self.objs.insert(idx, obj);
        Ok(id)
    }

    /// The object with identifier `id`; EINVAL if there is none.
    pub fn get(&self, id: i32) -> Result<&T, Errno> {
        if id < 0 {
            return Err(Errno::EINVAL);
        }
        self.objs
            .get(&(id % IPCMNI))
            .filter(|o| o.perm().id == id)
            .ok_or(Errno::EINVAL)
    }

    pub fn get_mut(&mut self, id: i32) -> Result<&mut T, Errno> {
        if id < 0 {
            return Err(Errno::EINVAL);
        }
        self.objs
            .get_mut(&(id % IPCMNI))
            .filter(|o| o.perm().id == id)
            .ok_or(Errno::EINVAL)
    }

    /// The object at index `idx` (the `*_STAT` commands); EINVAL if none.
    pub fn at_index(&self, idx: i32) -> Result<&T, Errno> {
        if idx < 0 {
            return Err(Errno::EINVAL);
        }
        self.objs.get(&(idx % IPCMNI)).ok_or(Errno::EINVAL)
    }

    pub fn remove(&mut self, id: i32) -> Option<T> {
        self.get(id).ok()?;
        self.objs.remove(&(id % IPCMNI))
    }

    /// The identifier of the object with `key` (never IPC_PRIVATE).
    pub fn find_key(&self, key: i32) -> Option<i32> {
        self.objs
            .values()
            .find(|o| o.perm().key == key)
            .map(|o| o.perm().id)
    }

    /// The highest index in use, or -1 (what the INFO commands return).
    pub fn max_idx(&self) -> i32 {
        self.objs.keys().next_back().copied().unwrap_or(-1)
    }

    pub fn len(&self) -> usize {
        self.objs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objs.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.objs.values()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.objs.values_mut()
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.objs.retain(|_, o| keep(o));
    }
}

/// Linux's `ipcget`: a new object for IPC_PRIVATE or a new key with
/// IPC_CREAT, else the existing one (EEXIST with IPC_EXCL, then the
/// family's `more_checks`, then the permission bits `flags` asks for).
pub fn ipcget<T: IpcObject>(
    ids: &mut Ids<T>,
    key: i32,
    flags: i32,
    creds: &Credentials,
    more_checks: impl FnOnce(&T) -> Result<(), Errno>,
    create: impl FnOnce(&mut Ids<T>) -> Result<i32, Errno>,
) -> Result<i32, Errno> {
    if key == IPC_PRIVATE {
        return create(ids);
    }
    let Some(id) = ids.find_key(key) else {
        if flags & IPC_CREAT == 0 {
            return Err(Errno::ENOENT);
        }
        return create(ids);
    };
    if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 {
        return Err(Errno::EEXIST);
    }
    let obj = ids.get(id)?;
    more_checks(obj)?;
    obj.perm().check(creds, flags)?;
    Ok(id)
}

/// The namespace's limits, as `/proc/sys/kernel` and `/proc/sys/fs/mqueue`
/// show them (root may change them there).
pub struct Limits {
    pub shmmax: AtomicI64,
    pub shmall: AtomicI64,
    pub shmmni: AtomicI64,
    /// `kernel.sem`: SEMMSL, SEMMNS, SEMOPM, SEMMNI.
    pub semmsl: AtomicI64,
    pub semmns: AtomicI64,
    pub semopm: AtomicI64,
    pub semmni: AtomicI64,
    pub msgmax: AtomicI64,
    pub msgmnb: AtomicI64,
    pub msgmni: AtomicI64,
    pub mq_queues_max: AtomicI64,
    pub mq_msg_max: AtomicI64,
    pub mq_msgsize_max: AtomicI64,
    pub mq_msg_default: AtomicI64,
    pub mq_msgsize_default: AtomicI64,
}

/// Linux's SHMMAX and SHMALL: ULONG_MAX - 2^24 (as unsigned).
pub const SHM_UNLIMITED: u64 = u64::MAX - (1 << 24);

impl Default for Limits {
    fn default() -> Limits {
        let a = AtomicI64::new;
        Limits {
            shmmax: a(SHM_UNLIMITED as i64),
            shmall: a(SHM_UNLIMITED as i64),
            shmmni: a(4096),
            semmsl: a(32000),
            semmns: a(1_024_000_000),
            semopm: a(500),
            semmni: a(32000),
            msgmax: a(8192),
            msgmnb: a(16384),
            msgmni: a(32000),
            mq_queues_max: a(256),
            mq_msg_max: a(10),
            mq_msgsize_max: a(8192),
            mq_msg_default: a(10),
            mq_msgsize_default: a(8192),
        }
    }
}

impl Limits {
    pub fn get(v: &AtomicI64) -> i64 {
        v.load(Ordering::Relaxed)
    }
}

/// One IPC namespace (the sandbox has one).
#[derive(Default)]
pub struct IpcNamespace {
    pub limits: Limits,
    pub shm: parking_lot::Mutex<shm::ShmState>,
    pub sem: parking_lot::Mutex<sem::SemState>,
    pub msg: parking_lot::Mutex<msg::MsgState>,
    pub mq: mqueue::MqNamespace,
}

impl IpcNamespace {
    /// A process is gone: its semaphore adjustments are applied, its
    /// message queue notifications removed.
    pub fn process_exited(&self, tgid: i32) {
        sem::exit_sem(self, tgid);
        self.mq.process_exited(tgid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct O(Perm);
    impl IpcObject for O {
        fn perm(&self) -> &Perm {
            &self.0
        }
        fn perm_mut(&mut self) -> &mut Perm {
            &mut self.0
        }
    }

    /// Identifiers are Linux's: indexes given cyclically through the
    /// first 64, a new sequence number whenever the cycle wraps.
    #[test]
    fn identifiers_follow_linux() {
        let c = Credentials::root();
        let mut ids: Ids<O> = Ids::default();
        let mk = |ids: &mut Ids<O>| ids.add(100, |_, _| O(Perm::new(0, 0o600, &c))).unwrap();
        assert_eq!(mk(&mut ids), 0);
        assert_eq!(mk(&mut ids), 1);
        ids.remove(1);
        assert_eq!(mk(&mut ids), 2);
        ids.remove(0);
        ids.remove(2);
        for i in 3..64 {
            assert_eq!(mk(&mut ids), i);
            ids.remove(i);
        }
        // Wrapped: index 0 again, with the next sequence number.
        assert_eq!(mk(&mut ids), IPCMNI);
        assert_eq!(mk(&mut ids), IPCMNI + 1);
        assert_eq!(ids.get(1).err(), Some(Errno::EINVAL));
        assert!(ids.get(IPCMNI + 1).is_ok());
        assert_eq!(ids.max_idx(), 1);
    }
}
