//! Process file descriptors: pidfd_open, pidfd_send_signal, pidfd_getfd,
//! and the pidfds of CLONE_PIDFD and waitid(P_PIDFD). A pidfd is
//! readable once its process has exited.

use std::sync::Arc;

use crate::errno::Errno;

use super::{Fd, Hex, SysResult, UserAddr};
use crate::kernel::signal::{SigInfo, SI_USER};
use crate::kernel::task::{Task, ThreadGroup};
use crate::kernel::waiter::WaitQueue;
use crate::kernel::Kernel;
use crate::vfs::{FileDescription, FileImpl};

/// A file standing for a process.
pub struct PidFd {
    kernel: Arc<Kernel>,
    tg: Arc<ThreadGroup>,
}

impl FileImpl for PidFd {
    fn read(&self, _f: &FileDescription, _dst: &mut [u8], _o: Option<u64>) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
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
    fn readiness(&self, _f: &FileDescription, events: i16) -> i16 {
        let ts = self.kernel.tasks.lock();
        match ts.procs.get(&self.tg.tgid) {
            Some(p) if Arc::ptr_eq(&p.tg, &self.tg) && p.zombie.is_none() => 0,
            // Exited: readable; reaped as well: hung up.
            Some(p) if Arc::ptr_eq(&p.tg, &self.tg) => events & (libc::POLLIN | libc::POLLRDNORM),
            _ => events & (libc::POLLIN | libc::POLLRDNORM) | libc::POLLHUP,
        }
    }
    fn waitq(&self, _f: &FileDescription) -> Option<Arc<WaitQueue>> {
        Some(self.tg.exit_queue.clone())
    }
    fn name(&self) -> String {
        "anon_inode:[pidfd]".to_string()
    }
    fn pidfd(&self) -> Option<i32> {
        Some(self.tg.tgid)
    }
}

/// A new pidfd for the process `tg`, installed close-on-exec.
pub fn install_pidfd(t: &Task, tg: Arc<ThreadGroup>, nonblock: bool) -> Result<i32, Errno> {
    let mut flags = libc::O_RDWR as u32;
    if nonblock {
        flags |= libc::O_NONBLOCK as u32;
    }
    let file = FileDescription::new(
        flags,
        Box::new(PidFd {
            kernel: t.kernel.clone(),
            tg,
        }),
    );
    let limit = crate::kernel::task::lock_limits(&t.tg).cur(libc::RLIMIT_NOFILE);
    t.fds.install(file, true, 0, limit)
}

/// The process a pidfd stands for.
pub fn pidfd_pid(t: &Task, fd: i32) -> Result<i32, Errno> {
    let f = t.fds.get(fd)?;
    f.imp.pidfd().ok_or(Errno::EBADF)
}

const PIDFD_NONBLOCK: u32 = libc::O_NONBLOCK as u32;

pub fn pidfd_open(t: &mut Task, pid: i32, flags: Hex) -> SysResult {
    if flags.0 as u32 & !PIDFD_NONBLOCK != 0 || pid <= 0 {
        return Err(Errno::EINVAL);
    }
    let tg = {
        let ts = t.kernel.tasks.lock();
        match ts.procs.get(&pid) {
            Some(p) if p.zombie.is_none() => p.tg.clone(),
            // A thread that leads no process: Linux refuses it.
            _ if ts.tasks.contains_key(&pid) => return Err(Errno::EINVAL),
            _ => return Err(Errno::ESRCH),
        }
    };
    Ok(install_pidfd(t, tg, flags.0 as u32 & PIDFD_NONBLOCK != 0)? as u64)
}

const PIDFD_SIGNAL_THREAD: u64 = 1;
const PIDFD_SIGNAL_THREAD_GROUP: u64 = 2;
const PIDFD_SIGNAL_PROCESS_GROUP: u64 = 4;

pub fn pidfd_send_signal(t: &mut Task, fd: Fd, sig: i32, info: UserAddr, flags: Hex) -> SysResult {
    let scope = flags.0;
    if scope & !(PIDFD_SIGNAL_THREAD | PIDFD_SIGNAL_THREAD_GROUP | PIDFD_SIGNAL_PROCESS_GROUP) != 0
        || scope.count_ones() > 1
    {
        return Err(Errno::EINVAL);
    }
    let pid = pidfd_pid(t, fd.0)?;
    if !(0..=64).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    let si = if info.0 != 0 {
        let mut raw = [0u8; 128];
        t.mm.copy_in(info.0, &mut raw)?;
        let mut si = SigInfo::from_bytes(&raw);
        if si.signo != sig {
            return Err(Errno::EINVAL);
        }
        if (si.code >= 0 || si.code == crate::kernel::signal::SI_TKILL) && pid != t.tg.tgid {
            return Err(Errno::EPERM);
        }
        si.signo = sig;
        si
    } else {
        SigInfo::from_process(sig, SI_USER, t.tg.tgid, t.creds.uid)
    };
    if scope == PIDFD_SIGNAL_PROCESS_GROUP {
        let pgid = t
            .kernel
            .tasks
            .lock()
            .procs
            .get(&pid)
            .map(|p| p.pgid)
            .ok_or(Errno::ESRCH)?;
        return super::signal::kill(t, -pgid, sig);
    }
    // A pidfd names a process; PIDFD_SIGNAL_THREAD its leading thread,
    // which here receives it as the process would.
    super::signal::send_to_process(t, pid, si)?;
    Ok(0)
}

pub fn pidfd_getfd(t: &mut Task, fd: Fd, target: i32, flags: Hex) -> SysResult {
    if flags.0 != 0 {
        return Err(Errno::EINVAL);
    }
    let pid = pidfd_pid(t, fd.0)?;
    let leader = {
        let ts = t.kernel.tasks.lock();
        let p = ts.live(pid).ok_or(Errno::ESRCH)?;
        p.leader.clone()
    };
    let view = leader.view.lock().clone();
    // Linux asks for ptrace access: the same user, or CAP_SYS_PTRACE.
    const CAP_SYS_PTRACE: u32 = 19;
    if view.creds.uid != t.creds.uid && !t.creds.has_cap(CAP_SYS_PTRACE) {
        return Err(Errno::EPERM);
    }
    let file = view.fds.get(target)?;
    let limit = crate::kernel::task::lock_limits(&t.tg).cur(libc::RLIMIT_NOFILE);
    Ok(t.fds.install(file, true, 0, limit)? as u64)
}
