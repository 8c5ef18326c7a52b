//! What procfs shows of the IPC namespace: `/proc/sysvipc/{shm,sem,msg}`
//! in Linux's format (what `ipcs` reads), and the limits in
//! `/proc/sys/kernel` and `/proc/sys/fs/mqueue`, which root may change.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::errno::Errno;
use crate::fsimpl::synthetic::{entry, Entry, Fixed, Node, Sink, Writes};
use crate::kernel::task::Task;

use super::{IpcNamespace, IPCMNI};
use crate::kernel::Kernel;

/// `/proc/sysvipc`.
pub fn sysvipc_dir() -> Node {
    let file = |f: fn(&IpcNamespace) -> String| {
        Node::file(0o444, move |t: &Task| Ok(f(&t.kernel.ipc).into_bytes()))
            .writes(Writes::Fail(Errno::EIO))
    };
    Node::dir(
        0o555,
        Arc::new(Fixed {
            entries: vec![
                entry("msg", file(msg_listing)),
                entry("sem", file(sem_listing)),
                entry("shm", file(shm_listing)),
            ],
            absent_error: Some(Errno::ENOENT),
        }),
    )
}

fn shm_listing(ns: &IpcNamespace) -> String {
    let mut st = ns.shm.lock();
    st.reap();
    let mut s = String::from(
        "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n",
    );
    for g in st.ids.iter() {
        let p = &g.perm;
        let tm = *g.times.lock().unwrap_or_else(|e| e.into_inner());
        s.push_str(&format!(
            "{:>10} {:>10}  {:>4o} {:>21} {:>5} {:>5}  {:>5} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10} {:>21} {:>21}\n",
            p.key,
            p.id,
            p.mode,
            g.size,
            g.cpid,
            tm.lpid,
            g.nattch(),
            p.uid,
            p.gid,
            p.cuid,
            p.cgid,
            tm.atime,
            tm.dtime,
            g.ctime,
            g.resident_pages() * super::shm::PAGE,
            0
        ));
    }
    s
}

fn sem_listing(ns: &IpcNamespace) -> String {
    let st = ns.sem.lock();
    let mut s = String::from(
        "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n",
    );
    for set in st.ids.iter() {
        let p = &set.perm;
        s.push_str(&format!(
            "{:>10} {:>10}  {:>4o} {:>10} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10}\n",
            p.key,
            p.id,
            p.mode,
            set.sems.len(),
            p.uid,
            p.gid,
            p.cuid,
            p.cgid,
            set.otime(),
            set.ctime
        ));
    }
    s
}

fn msg_listing(ns: &IpcNamespace) -> String {
    let st = ns.msg.lock();
    let mut s = String::from(
        "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n",
    );
    for q in st.ids.iter() {
        let p = &q.perm;
        s.push_str(&format!(
            "{:>10} {:>10}  {:>4o}  {:>10} {:>10} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10}\n",
            p.key,
            p.id,
            p.mode,
            q.cbytes,
            q.msgs.len(),
            q.lspid,
            q.lrpid,
            p.uid,
            p.gid,
            p.cuid,
            p.cgid,
            q.stime,
            q.rtime,
            q.ctime
        ));
    }
    s
}

/// Which limits a sysctl file shows, and the bounds of each.
pub type Fields = fn(&Kernel) -> Vec<(&AtomicI64, i64, i64)>;

/// A sysctl of one or more integers (tab-separated, as Linux's
/// `proc_dointvec` prints arrays). A write at offset 0 sets the values it
/// gives (values past the last are ignored): EINVAL for one that is not a
/// number or out of its bounds, nothing set then. `kernel.sem` is the
/// exception, as Linux's `proc_ipc_sem_dointvec`: its SEMMNI out of
/// bounds is ERANGE, with the other values set. Writes elsewhere are
/// taken and ignored, as with `kernel.sysctl_writes_strict`.
pub fn int_sysctl(fields: Fields) -> Node {
    Node::file(0o644, move |t: &Task| {
        let v: Vec<String> = fields(&t.kernel)
            .iter()
            .map(|(a, _, _)| {
                let x = a.load(Ordering::Relaxed);
                // The unsigned long ones (shmmax, shmall) print unsigned.
                if x < 0 {
                    (x as u64).to_string()
                } else {
                    x.to_string()
                }
            })
            .collect();
        Ok(format!("{}\n", v.join("\t")).into_bytes())
    })
    .seek_end()
    .writes(Writes::To(Arc::new(
        move |t: &Task| -> Result<Sink, Errno> {
            let kernel = t.kernel.clone();
            Ok(Box::new(move |data: &[u8], off: u64| {
                if off != 0 {
                    return Ok(data.len());
                }
                let text = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
                let text = text.trim_end_matches('\0');
                let f = fields(&kernel);
                let mut vals = Vec::new();
                let mut range = None;
                // The words, with where each ends.
                let words: Vec<(&str, usize)> = text
                    .split_whitespace()
                    .map(|w| (w, w.as_ptr() as usize - text.as_ptr() as usize + w.len()))
                    .collect();
                let mut consumed = 0;
                for (&(w, end), (_, lo, hi)) in words.iter().zip(f.iter()) {
                    consumed = end;
                    let v: i64 = match w.parse::<i64>() {
                        Ok(v) => v,
                        // The unsigned long sysctls take any u64.
                        Err(_) if *lo == i64::MIN => {
                            w.parse::<u64>().map_err(|_| Errno::EINVAL)? as i64
                        }
                        Err(_) => return Err(Errno::EINVAL),
                    };
                    if v < *lo || v > *hi {
                        if f.len() == 4 && vals.len() == 3 {
                            range = Some(Errno::ERANGE);
                            break;
                        }
                        return Err(Errno::EINVAL);
                    }
                    vals.push(v);
                }
                if vals.is_empty() && range.is_none() {
                    return Err(Errno::EINVAL);
                }
                for (i, v) in vals.into_iter().enumerate() {
                    f[i].0.store(v, Ordering::Relaxed);
                }
                // What was consumed: up to the last value taken and the
                // blanks after it (a longer write is cut short there).
                let rest = &text.as_bytes()[consumed..];
                consumed += rest.iter().take_while(|c| c.is_ascii_whitespace()).count();
                match range {
                    Some(e) => Err(e),
                    None if words.len() > f.len() => Ok(consumed),
                    None => Ok(data.len()),
                }
            }))
        },
    )))
}

const INT_MAX: i64 = i32::MAX as i64;
const IPCMNI_: i64 = IPCMNI as i64;

/// The IPC entries of `/proc/sys/kernel`.
pub fn kernel_sysctls() -> Vec<Entry> {
    vec![
        entry(
            "msgmax",
            int_sysctl(|k| vec![(&k.ipc.limits.msgmax, 0, INT_MAX)]),
        ),
        entry(
            "msgmnb",
            int_sysctl(|k| vec![(&k.ipc.limits.msgmnb, 0, INT_MAX)]),
        ),
        entry(
            "msgmni",
            int_sysctl(|k| vec![(&k.ipc.limits.msgmni, 0, IPCMNI_)]),
        ),
        entry(
            "sem",
            int_sysctl(|k| {
                let l = &k.ipc.limits;
                vec![
                    (&l.semmsl, i32::MIN as i64, INT_MAX),
                    (&l.semmns, i32::MIN as i64, INT_MAX),
                    (&l.semopm, i32::MIN as i64, INT_MAX),
                    (&l.semmni, 0, IPCMNI_),
                ]
            }),
        ),
        entry(
            "shmall",
            int_sysctl(|k| vec![(&k.ipc.limits.shmall, i64::MIN, i64::MAX)]),
        ),
        entry(
            "shmmax",
            int_sysctl(|k| vec![(&k.ipc.limits.shmmax, i64::MIN, i64::MAX)]),
        ),
        entry(
            "shmmni",
            int_sysctl(|k| vec![(&k.ipc.limits.shmmni, 0, IPCMNI_)]),
        ),
    ]
}

/// `/proc/sys/fs/mqueue`.
pub fn mqueue_sysctls() -> Vec<Entry> {
    use super::mqueue::{HARD_MSGMAX, HARD_MSGSIZEMAX};
    vec![
        entry(
            "msg_default",
            int_sysctl(|k| vec![(&k.ipc.limits.mq_msg_default, 1, HARD_MSGMAX)]),
        ),
        entry(
            "msg_max",
            int_sysctl(|k| vec![(&k.ipc.limits.mq_msg_max, 1, HARD_MSGMAX)]),
        ),
        entry(
            "msgsize_default",
            int_sysctl(|k| vec![(&k.ipc.limits.mq_msgsize_default, 128, HARD_MSGSIZEMAX)]),
        ),
        entry(
            "msgsize_max",
            int_sysctl(|k| vec![(&k.ipc.limits.mq_msgsize_max, 128, HARD_MSGSIZEMAX)]),
        ),
        entry(
            "queues_max",
            int_sysctl(|k| vec![(&k.ipc.limits.mq_queues_max, i32::MIN as i64, INT_MAX)]),
        ),
    ]
}
