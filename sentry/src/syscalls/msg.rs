//! System V message queues: msgget, msgsnd, msgrcv, msgctl (the queues
//! are in `kernel::ipc::msg`).

use super::{Hex, SysResult, UserAddr};
use crate::errno::Errno;
use crate::kernel::compat::Unsupported;
use crate::kernel::ipc::msg::{new_queue, Message, Search, MSG_COPY, MSG_EXCEPT, MSG_NOERROR};
use crate::kernel::ipc::{self, Limits, IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT};
use crate::kernel::task::Task;
use crate::kernel::waiter::ALL_EVENTS;

const MSG_STAT: i32 = 11;
const MSG_INFO: i32 = 12;
const MSG_STAT_ANY: i32 = 13;

/// MSGSSZ, MSGSEG, as the INFO commands report them.
const MSGSSZ: i32 = 16;
const MSGSEG: u16 = 0xffff;

pub fn msgget(t: &mut Task, key: i32, flags: Hex) -> SysResult {
    let flags = flags.0 as i32;
    let kernel = t.kernel.clone();
    let ns = &kernel.ipc;
    let mut st = ns.msg.lock();
    let limits = &ns.limits;
    let creds = t.creds.clone();
    let id = ipc::ipcget(
        &mut st.ids,
        key,
        flags,
        &creds,
        |_| Ok(()),
        |ids| new_queue(ids, limits, key, flags, &creds),
    )?;
    Ok(id as u64)
}

pub fn msgsnd(t: &mut Task, msqid: i32, msgp: UserAddr, msgsz: u64, flags: Hex) -> SysResult {
    let flags = flags.0 as i32;
    let mtype: i64 = t.mm.read_obj(msgp.0)?;
    let ns = &t.kernel.ipc;
    if msgsz as i64 > Limits::get(&ns.limits.msgmax) || (msgsz as i64) < 0 || msqid < 0 {
        return Err(Errno::EINVAL);
    }
    if mtype < 1 {
        return Err(Errno::EINVAL);
    }
    let mut data = vec![0u8; msgsz as usize];
    t.mm.copy_in(msgp.0.wrapping_add(8), &mut data)?;
    let (waitq, serial) = {
        let st = ns.msg.lock();
        let q = st.ids.get(msqid)?;
        (q.waitq.clone(), q.serial)
    };
    let tgid = t.tg.tgid;
    let kernel = t.kernel.clone();
    let mut msg = Some(Message { mtype, data });
    let r = t.block_on(&[(&waitq, ALL_EVENTS)], None, |t| {
        let mut st = kernel.ipc.msg.lock();
        let q = match st.ids.get_mut(msqid) {
            Ok(q) if q.serial == serial => q,
            _ => return Some(Err(Errno::EIDRM)),
        };
        if let Err(e) = q.perm.check(&t.creds, 0o222) {
            return Some(Err(e));
        }
        if q.fits(msgsz) {
            q.push(msg.take().expect("sent once"), tgid);
            return Some(Ok(0));
        }
        if flags & IPC_NOWAIT != 0 {
            return Some(Err(Errno::EAGAIN));
        }
        None
    });
    match r {
        // msgsnd is never restarted after a handler (signal(7)).
        Err(Errno::ERESTARTSYS) => Err(Errno::ERESTARTNOHAND),
        r => r,
    }
}

pub fn msgrcv(
    t: &mut Task,
    msqid: i32,
    msgp: UserAddr,
    msgsz: u64,
    msgtyp: i64,
    flags: Hex,
) -> SysResult {
    let flags = flags.0 as i32;
    let ns = &t.kernel.ipc;
    if msqid < 0 || (msgsz as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let copy = flags & MSG_COPY != 0;
    if copy && (flags & MSG_EXCEPT != 0 || flags & IPC_NOWAIT == 0) {
        return Err(Errno::EINVAL);
    }
    let copy_max = msgsz.min(Limits::get(&ns.limits.msgmax) as u64);
    let search = Search::new(msgtyp, flags);
    let (waitq, serial) = {
        let st = ns.msg.lock();
        let q = st.ids.get(msqid)?;
        (q.waitq.clone(), q.serial)
    };
    let tgid = t.tg.tgid;
    let kernel = t.kernel.clone();
    let r = t.block_on(&[(&waitq, ALL_EVENTS)], None, |t| {
        let mut st = kernel.ipc.msg.lock();
        let q = match st.ids.get_mut(msqid) {
            Ok(q) if q.serial == serial => q,
            _ => return Some(Err(Errno::EIDRM)),
        };
        if let Err(e) = q.perm.check(&t.creds, 0o444) {
            return Some(Err(e));
        }
        if let Some(i) = q.find(search) {
            let len = q.msgs[i].data.len() as u64;
            if msgsz < len && flags & MSG_NOERROR == 0 {
                return Some(Err(Errno::E2BIG));
            }
            if copy {
                if len > copy_max {
                    return Some(Err(Errno::EINVAL));
                }
                let m = &q.msgs[i];
                return Some(Ok(Message {
                    mtype: m.mtype,
                    data: m.data.clone(),
                }));
            }
            return Some(Ok(q.take(i, tgid)));
        }
        if flags & IPC_NOWAIT != 0 {
            return Some(Err(Errno::ENOMSG));
        }
        None
    });
    let m = match r {
        Err(Errno::ERESTARTSYS) => return Err(Errno::ERESTARTNOHAND),
        r => r?,
    };
    // A message that cannot be copied out is lost, as on Linux.
    t.mm.write_obj(msgp.0, &m.mtype)?;
    let n = (m.data.len() as u64).min(msgsz) as usize;
    t.mm.copy_out(msgp.0.wrapping_add(8), &m.data[..n])?;
    Ok(n as u64)
}

/// msgctl commands the sentry does not know.
const CTL_UNKNOWN: Unsupported = Unsupported {
    syscall: "msgctl",
    argument: "command",
    answer: Errno::EINVAL,
};

pub fn msgctl(t: &mut Task, msqid: i32, cmd: i32, buf: UserAddr) -> SysResult {
    let ns = &t.kernel.ipc;
    let l = &ns.limits;
    if msqid < 0 || cmd < 0 {
        return Err(Errno::EINVAL);
    }
    match cmd {
        IPC_INFO | MSG_INFO => {
            let st = ns.msg.lock();
            let get = |v| Limits::get(v) as i32;
            let msgmnb = get(&l.msgmnb);
            let (pool, map, tql) = if cmd == MSG_INFO {
                let (n, bytes) = st.totals();
                (st.ids.len() as i32, n as i32, bytes as i32)
            } else {
                // MSGPOOL, MSGMAP, MSGTQL of Linux's defaults.
                (32000 * 16384 / 1024, 16384, 16384)
            };
            // struct msginfo: msgpool, msgmap, msgmax, msgmnb, msgmni,
            // msgssz, msgtql, msgseg.
            let mut b = Vec::with_capacity(32);
            for v in [
                pool,
                map,
                get(&l.msgmax),
                msgmnb,
                get(&l.msgmni),
                MSGSSZ,
                tql,
            ] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            b.extend_from_slice(&MSGSEG.to_le_bytes());
            b.extend_from_slice(&[0, 0]);
            let max = st.ids.max_idx().max(0);
            drop(st);
            t.mm.copy_out(buf.0, &b)?;
            Ok(max as u64)
        }
        IPC_STAT | MSG_STAT | MSG_STAT_ANY => {
            let st = ns.msg.lock();
            let q = if cmd == IPC_STAT {
                st.ids.get(msqid)?
            } else {
                st.ids.at_index(msqid)?
            };
            if cmd != MSG_STAT_ANY {
                q.perm.check(&t.creds, 0o444)?;
            }
            let b = q.to_bytes();
            let ret = if cmd == IPC_STAT { 0 } else { q.perm.id };
            drop(st);
            t.mm.copy_out(buf.0, &b)?;
            Ok(ret as u64)
        }
        IPC_SET => {
            let mut b = [0u8; 120];
            t.mm.copy_in(buf.0, &mut b)?;
            let qbytes = u64::from_le_bytes(b[88..96].try_into().unwrap());
            let mut st = ns.msg.lock();
            let q = st.ids.get_mut(msqid)?;
            q.perm.check_owner(&t.creds)?;
            if qbytes > Limits::get(&l.msgmnb) as u64
                && !t.creds.has_cap(crate::kernel::creds::CAP_SYS_RESOURCE)
            {
                return Err(Errno::EPERM);
            }
            let (uid, gid, mode) = ipc::Perm::from_set(&b[..48]);
            q.qbytes = qbytes;
            q.perm.set(uid, gid, mode);
            q.ctime = ipc::now();
            // Senders may fit now, and receivers may have lost the right.
            q.waitq.notify_all();
            Ok(0)
        }
        IPC_RMID => {
            let mut st = ns.msg.lock();
            st.ids.get(msqid)?.perm.check_owner(&t.creds)?;
            if let Some(q) = st.ids.remove(msqid) {
                q.waitq.notify_all();
            }
            Ok(0)
        }
        _ => CTL_UNKNOWN.answer(t, cmd),
    }
}
