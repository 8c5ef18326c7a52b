//! System V semaphores: semget, semop, semtimedop, semctl (the sets are
//! in `kernel::ipc::sem`).

use std::time::Instant;

use super::{Hex, SysResult, UserAddr};
use crate::errno::Errno;
use crate::kernel::compat::Unsupported;
use crate::kernel::ipc::sem::{SemBuf, SemopError, SEMAEM, SEMVMX};
use crate::kernel::ipc::{self, Limits, IPC_INFO, IPC_RMID, IPC_SET, IPC_STAT};
use crate::kernel::task::Task;

const GETPID: i32 = 11;
const GETVAL: i32 = 12;
const GETALL: i32 = 13;
const GETNCNT: i32 = 14;
const GETZCNT: i32 = 15;
const SETVAL: i32 = 16;
const SETALL: i32 = 17;
const SEM_STAT: i32 = 18;
const SEM_INFO: i32 = 19;
const SEM_STAT_ANY: i32 = 20;

/// SEMUSZ, as IPC_INFO reports it.
const SEMUSZ: i32 = 20;

pub fn semget(t: &mut Task, key: i32, nsems: i32, flags: Hex) -> SysResult {
    let flags = flags.0 as i32;
    let kernel = t.kernel.clone();
    let ns = &kernel.ipc;
    if nsems < 0 || nsems as i64 > Limits::get(&ns.limits.semmsl) {
        return Err(Errno::EINVAL);
    }
    let mut st = ns.sem.lock();
    let creds = t.creds.clone();
    // ipcget, with the new set made from the whole state.
    let existing = (key != ipc::IPC_PRIVATE)
        .then(|| st.ids.find_key(key))
        .flatten();
    let id = match existing {
        None if key == ipc::IPC_PRIVATE || flags & ipc::IPC_CREAT != 0 => {
            st.new_set(&ns.limits, key, nsems, flags, &creds)?
        }
        None => return Err(Errno::ENOENT),
        Some(id) => {
            if flags & ipc::IPC_CREAT != 0 && flags & ipc::IPC_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            let set = st.ids.get(id)?;
            if nsems as usize > set.sems.len() {
                return Err(Errno::EINVAL);
            }
            set.perm.check(&creds, flags)?;
            id
        }
    };
    Ok(id as u64)
}

pub fn semop(t: &mut Task, semid: i32, sops: UserAddr, nsops: u64) -> SysResult {
    do_semtimedop(t, semid, sops.0, nsops, None)
}

pub fn semtimedop(
    t: &mut Task,
    semid: i32,
    sops: UserAddr,
    nsops: u64,
    timeout: UserAddr,
) -> SysResult {
    let ts = if timeout.0 != 0 {
        Some(t.mm.read_obj::<libc::timespec>(timeout.0)?)
    } else {
        None
    };
    do_semtimedop(t, semid, sops.0, nsops, ts)
}

fn do_semtimedop(
    t: &mut Task,
    semid: i32,
    sops: u64,
    nsops: u64,
    timeout: Option<libc::timespec>,
) -> SysResult {
    let kernel = t.kernel.clone();
    let ns = &kernel.ipc;
    if nsops < 1 || semid < 0 {
        return Err(Errno::EINVAL);
    }
    // Unsigned, as Linux compares the size_t.
    if nsops > Limits::get(&ns.limits.semopm).max(0) as u64 {
        return Err(Errno::E2BIG);
    }
    let mut raw = vec![0u8; nsops as usize * 6];
    t.mm.copy_in(sops, &mut raw)?;
    let ops: Vec<SemBuf> = raw
        .chunks_exact(6)
        .map(|c| SemBuf {
            num: u16::from_le_bytes([c[0], c[1]]),
            op: i16::from_le_bytes([c[2], c[3]]),
            flg: i16::from_le_bytes([c[4], c[5]]),
        })
        .collect();
    let deadline = match timeout {
        Some(ts) => Some(Instant::now() + super::time::timespec_to_duration(&ts)?),
        None => None,
    };
    let max = ops.iter().map(|o| o.num).max().unwrap_or(0) as usize;
    let alter = ops.iter().any(|o| o.op != 0);
    let (waitq, serial, token) = {
        let mut st = ns.sem.lock();
        let set = st.ids.get(semid)?;
        if max >= set.sems.len() {
            return Err(Errno::EFBIG);
        }
        set.perm
            .check(&t.creds, if alter { 0o222 } else { 0o444 })?;
        let (waitq, serial) = (set.waitq.clone(), set.serial);
        let token = st.token();
        (waitq, serial, token)
    };
    let tgid = t.tg.tgid;
    let r = t.block_on(
        &[(&waitq, crate::kernel::waiter::ALL_EVENTS)],
        deadline,
        |_| {
            let mut st = kernel.ipc.sem.lock();
            if !st.ids.get(semid).is_ok_and(|s| s.serial == serial) {
                return Some(Err(Errno::EIDRM));
            }
            match st.semop(semid, &ops, tgid) {
                Ok(()) => Some(Ok(0)),
                Err(SemopError::Err(e)) => Some(Err(e)),
                Err(SemopError::Block(i)) => {
                    let o = ops[i];
                    if let Ok(set) = st.ids.get_mut(semid) {
                        set.set_sleeper(token, o.num, o.op == 0);
                    }
                    None
                }
            }
        },
    );
    let mut st = ns.sem.lock();
    if let Ok(set) = st.ids.get_mut(semid) {
        if set.serial == serial {
            set.clear_sleeper(token);
        }
    }
    match r {
        // A semop is never restarted after a handler (signal(7)).
        Err(Errno::ERESTARTSYS) => Err(Errno::ERESTARTNOHAND),
        // semtimedop's timeout is EAGAIN.
        Err(Errno::ETIMEDOUT) => Err(Errno::EAGAIN),
        r => r,
    }
}

/// semctl commands the sentry does not know.
const CTL_UNKNOWN: Unsupported = Unsupported {
    syscall: "semctl",
    argument: "command",
    answer: Errno::EINVAL,
};

pub fn semctl(t: &mut Task, semid: i32, semnum: i32, cmd: i32, arg: Hex) -> SysResult {
    let arg = arg.0;
    let kernel = t.kernel.clone();
    let ns = &kernel.ipc;
    let l = &ns.limits;
    if semid < 0 {
        return Err(Errno::EINVAL);
    }
    match cmd {
        IPC_INFO | SEM_INFO => {
            let st = ns.sem.lock();
            let get = |v| Limits::get(v) as i32;
            let semmns = get(&l.semmns);
            let (usz, aem) = if cmd == SEM_INFO {
                (st.ids.len() as i32, st.used_sems as i32)
            } else {
                (SEMUSZ, SEMAEM)
            };
            // struct seminfo: semmap, semmni, semmns, semmnu, semmsl,
            // semopm, semume, semusz, semvmx, semaem.
            let v = [
                semmns,
                get(&l.semmni),
                semmns,
                semmns,
                get(&l.semmsl),
                get(&l.semopm),
                get(&l.semopm),
                usz,
                SEMVMX,
                aem,
            ];
            let max = st.ids.max_idx().max(0);
            drop(st);
            let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            t.mm.copy_out(arg, &b)?;
            Ok(max as u64)
        }
        IPC_STAT | SEM_STAT | SEM_STAT_ANY => {
            let st = ns.sem.lock();
            let set = if cmd == IPC_STAT {
                st.ids.get(semid)?
            } else {
                st.ids.at_index(semid)?
            };
            if cmd != SEM_STAT_ANY {
                set.perm.check(&t.creds, 0o444)?;
            }
            let b = set.to_bytes();
            let ret = if cmd == IPC_STAT { 0 } else { set.perm.id };
            drop(st);
            t.mm.copy_out(arg, &b)?;
            Ok(ret as u64)
        }
        IPC_SET => {
            let mut b = [0u8; 104];
            t.mm.copy_in(arg, &mut b)?;
            let mut st = ns.sem.lock();
            let set = st.ids.get_mut(semid)?;
            set.perm.check_owner(&t.creds)?;
            let (uid, gid, mode) = ipc::Perm::from_set(&b[..48]);
            set.perm.set(uid, gid, mode);
            set.ctime = ipc::now();
            Ok(0)
        }
        IPC_RMID => {
            let mut st = ns.sem.lock();
            st.ids.get(semid)?.perm.check_owner(&t.creds)?;
            st.remove(semid);
            Ok(0)
        }
        SETVAL => {
            let val = arg as i32;
            if !(0..=SEMVMX).contains(&val) {
                return Err(Errno::ERANGE);
            }
            let mut st = ns.sem.lock();
            let set = st.ids.get_mut(semid)?;
            if semnum < 0 || semnum as usize >= set.sems.len() {
                return Err(Errno::EINVAL);
            }
            set.perm.check(&t.creds, 0o222)?;
            let s = &mut set.sems[semnum as usize];
            s.val = val;
            s.pid = t.tg.tgid;
            set.ctime = ipc::now();
            st.values_set(semid, semnum as usize..semnum as usize + 1);
            Ok(0)
        }
        GETALL => {
            let st = ns.sem.lock();
            let set = st.ids.get(semid)?;
            set.perm.check(&t.creds, 0o444)?;
            let b: Vec<u8> = set
                .sems
                .iter()
                .flat_map(|s| (s.val as u16).to_le_bytes())
                .collect();
            drop(st);
            t.mm.copy_out(arg, &b)?;
            Ok(0)
        }
        SETALL => {
            let n = {
                let st = ns.sem.lock();
                let set = st.ids.get(semid)?;
                set.perm.check(&t.creds, 0o222)?;
                set.sems.len()
            };
            let mut b = vec![0u8; n * 2];
            t.mm.copy_in(arg, &mut b)?;
            let vals: Vec<i32> = b
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as i32)
                .collect();
            if vals.iter().any(|&v| v > SEMVMX) {
                return Err(Errno::ERANGE);
            }
            let mut st = ns.sem.lock();
            let set = st.ids.get_mut(semid).map_err(|_| Errno::EIDRM)?;
            if set.sems.len() != n {
                return Err(Errno::EIDRM);
            }
            for (s, v) in set.sems.iter_mut().zip(vals) {
                s.val = v;
                s.pid = t.tg.tgid;
            }
            set.ctime = ipc::now();
            st.values_set(semid, 0..n);
            Ok(0)
        }
        GETVAL | GETPID | GETNCNT | GETZCNT => {
            let st = ns.sem.lock();
            let set = st.ids.get(semid)?;
            set.perm.check(&t.creds, 0o444)?;
            if semnum < 0 || semnum as usize >= set.sems.len() {
                return Err(Errno::EINVAL);
            }
            let s = set.sems[semnum as usize];
            Ok(match cmd {
                GETVAL => s.val as u64,
                GETPID => s.pid as u64,
                GETNCNT => set.count_waiting(semnum as u16, false) as u64,
                _ => set.count_waiting(semnum as u16, true) as u64,
            })
        }
        _ => CTL_UNKNOWN.answer(t, cmd),
    }
}
