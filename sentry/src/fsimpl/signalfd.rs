//! signalfd files, as Linux's `fs/signalfd.c`: the signals of a mask that
//! are pending for the reading task (its own, then its process's) are
//! consumed by reads, each as a 128-byte `struct signalfd_siginfo`.
//!
//! Like Linux's, a signalfd has no owner: it reads the signals of
//! whichever task reads it or polls it (a child after fork reads its own),
//! and waits on that task's process's signal queue.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::errno::Errno;
use crate::kernel::signal::{SigInfo, SigSet, SI_KERNEL, SI_TIMER, SI_USER};
use crate::kernel::task::{with_current, TaskShared};
use crate::kernel::waiter::WaitQueue;
use crate::vfs::{FileDescription, FileImpl};

/// The size of `struct signalfd_siginfo`.
pub const SIGINFO_SIZE: usize = 128;

const SI_SIGIO: i32 = -5;
/// The number of si_codes of each signal with its own layout (Linux's
/// `sig_sicodes`): SIGILL, SIGFPE, SIGSEGV, SIGBUS, SIGTRAP, SIGCHLD,
/// SIGPOLL, SIGSYS.
const NSIGILL: i32 = 11;
const NSIGFPE: i32 = 15;
const NSIGSEGV: i32 = 10;
const NSIGBUS: i32 = 5;
const NSIGTRAP: i32 = 6;
const NSIGCHLD: i32 = 6;
const NSIGPOLL: i32 = 6;
const NSIGSYS: i32 = 2;
const BUS_MCEERR_AR: i32 = 4;
const BUS_MCEERR_AO: i32 = 5;

/// Which union member of a siginfo is meaningful (Linux's
/// `siginfo_layout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Kill,
    Timer,
    Poll,
    Fault,
    FaultMceErr,
    Chld,
    Rt,
    Sys,
}

fn layout(sig: i32, code: i32) -> Layout {
    if code > SI_USER && code < SI_KERNEL {
        let own = match sig {
            libc::SIGILL => Some((NSIGILL, Layout::Fault)),
            libc::SIGFPE => Some((NSIGFPE, Layout::Fault)),
            libc::SIGSEGV => Some((NSIGSEGV, Layout::Fault)),
            libc::SIGBUS => Some((NSIGBUS, Layout::Fault)),
            libc::SIGTRAP => Some((NSIGTRAP, Layout::Fault)),
            libc::SIGCHLD => Some((NSIGCHLD, Layout::Chld)),
            libc::SIGPOLL => Some((NSIGPOLL, Layout::Poll)),
            libc::SIGSYS => Some((NSIGSYS, Layout::Sys)),
            _ => None,
        };
        match own {
            Some((limit, l)) if code <= limit => {
                if sig == libc::SIGBUS && (BUS_MCEERR_AR..=BUS_MCEERR_AO).contains(&code) {
                    Layout::FaultMceErr
                } else {
                    l
                }
            }
            _ if code <= NSIGPOLL => Layout::Poll,
            _ => Layout::Kill,
        }
    } else if code == SI_TIMER {
        Layout::Timer
    } else if code == SI_SIGIO {
        Layout::Poll
    } else if code < 0 {
        Layout::Rt
    } else {
        Layout::Kill
    }
}

/// A siginfo as `struct signalfd_siginfo` (Linux's `signalfd_copyinfo`):
/// the fields of its layout, everything else zero.
pub fn signalfd_siginfo(info: &SigInfo) -> [u8; SIGINFO_SIZE] {
    let si = info.to_bytes();
    let u32_at = |o: usize| u32::from_le_bytes(si[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(si[o..o + 8].try_into().unwrap());
    let mut out = [0u8; SIGINFO_SIZE];
    let mut put32 = |o: usize, v: u32| out[o..o + 4].copy_from_slice(&v.to_le_bytes());
    put32(0, info.signo as u32);
    put32(4, info.errno as u32);
    put32(8, info.code as u32);
    // signalfd_siginfo: pid 12, uid 16, fd 20, tid 24, band 28, overrun
    // 32, trapno 36, status 40, int 44, ptr 48, utime 56, stime 64, addr
    // 72, addr_lsb 80, syscall 84, call_addr 88, arch 96. siginfo_t's
    // union starts at 16.
    let mut fields32: Vec<(usize, u32)> = Vec::new();
    let mut fields64: Vec<(usize, u64)> = Vec::new();
    match layout(info.signo, info.code) {
        Layout::Kill => fields32.extend([(12, u32_at(16)), (16, u32_at(20))]),
        Layout::Timer => {
            fields32.extend([(24, u32_at(16)), (32, u32_at(20)), (44, u32_at(24))]);
            fields64.push((48, u64_at(24)));
        }
        Layout::Poll => fields32.extend([(28, u64_at(16) as u32), (20, u32_at(24))]),
        Layout::Fault => fields64.push((72, u64_at(16))),
        Layout::FaultMceErr => {
            fields64.push((72, u64_at(16)));
            let lsb = u16::from_le_bytes(si[24..26].try_into().unwrap());
            fields32.push((80, lsb as u32));
        }
        Layout::Chld => {
            fields32.extend([(12, u32_at(16)), (16, u32_at(20)), (40, u32_at(24))]);
            fields64.extend([(56, u64_at(32)), (64, u64_at(40))]);
        }
        Layout::Rt => {
            fields32.extend([(12, u32_at(16)), (16, u32_at(20)), (44, u32_at(24))]);
            fields64.push((48, u64_at(24)));
        }
        Layout::Sys => {
            fields64.push((88, u64_at(16)));
            fields32.extend([(84, u32_at(24)), (96, u32_at(28))]);
        }
    }
    for (o, v) in fields32 {
        put32(o, v);
    }
    for (o, v) in fields64 {
        out[o..o + 8].copy_from_slice(&v.to_le_bytes());
    }
    out
}

pub struct SignalFd {
    /// The signals the file reads (never SIGKILL or SIGSTOP).
    mask: Mutex<SigSet>,
    /// The queue of the process that made the file, for callers that are
    /// not a task.
    fallback: Arc<WaitQueue>,
}

impl SignalFd {
    pub fn new(mask: SigSet, creator: &TaskShared) -> SignalFd {
        SignalFd {
            mask: Mutex::new(mask),
            fallback: creator.tg.signal_queue.clone(),
        }
    }

    /// signalfd on an existing file: a new mask; the calling task's
    /// pollers look again.
    pub fn set_mask(&self, mask: SigSet, caller: &TaskShared) {
        *self.mask.lock() = mask;
        caller.tg.signal_queue.notify_all();
    }

    /// Takes the first pending signal of the mask: the task's own, then
    /// its process's.
    fn dequeue(&self, t: &TaskShared) -> Option<SigInfo> {
        let blocked = !*self.mask.lock();
        if let Some(i) = t.sig.lock().pending.take(blocked) {
            return Some(i);
        }
        t.tg.sig.lock().pending.take(blocked)
    }
}

impl FileImpl for SignalFd {
    /// As many pending signals as whole records fit; EAGAIN if none is
    /// pending (the caller waits unless the file is non-blocking).
    fn read(&self, _f: &FileDescription, dst: &mut [u8], _o: Option<u64>) -> Result<usize, Errno> {
        let n = dst.len() / SIGINFO_SIZE;
        if n == 0 {
            return Err(Errno::EINVAL);
        }
        with_current(|t| {
            let Some(t) = t else {
                return Err(Errno::EAGAIN);
            };
            let mut done = 0;
            while done < n {
                let Some(info) = self.dequeue(t) else { break };
                dst[done * SIGINFO_SIZE..(done + 1) * SIGINFO_SIZE]
                    .copy_from_slice(&signalfd_siginfo(&info));
                done += 1;
            }
            if done == 0 {
                return Err(Errno::EAGAIN);
            }
            Ok(done * SIGINFO_SIZE)
        })
    }

    /// A read whose buffer faults after `dst`: the records that fit are
    /// read; the one the copy faults on is taken and lost, as in Linux
    /// (EFAULT if it is the first).
    fn read_short(
        &self,
        _f: &FileDescription,
        dst: &mut [u8],
        want: usize,
        _o: Option<u64>,
    ) -> Result<usize, Errno> {
        let n = want / SIGINFO_SIZE;
        if n == 0 {
            return Err(Errno::EINVAL);
        }
        let fit = dst.len() / SIGINFO_SIZE;
        with_current(|t| {
            let Some(t) = t else {
                return Err(Errno::EAGAIN);
            };
            let mut done = 0;
            while done < n {
                let Some(info) = self.dequeue(t) else { break };
                if done == fit {
                    return if done == 0 {
                        Err(Errno::EFAULT)
                    } else {
                        Ok(done * SIGINFO_SIZE)
                    };
                }
                dst[done * SIGINFO_SIZE..(done + 1) * SIGINFO_SIZE]
                    .copy_from_slice(&signalfd_siginfo(&info));
                done += 1;
            }
            if done == 0 {
                return Err(Errno::EAGAIN);
            }
            Ok(done * SIGINFO_SIZE)
        })
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
        Ok(super::epoll::anon_stat())
    }

    /// Readable when a signal of the mask is pending for the caller.
    fn readiness(&self, _f: &FileDescription, events: i16) -> i16 {
        let mask = *self.mask.lock();
        let pending = with_current(|t| {
            t.is_some_and(|t| (t.sig.lock().pending.set | t.tg.sig.lock().pending.set) & mask != 0)
        });
        if pending {
            events & (libc::POLLIN | libc::POLLRDNORM)
        } else {
            0
        }
    }

    fn waitq(&self, _f: &FileDescription) -> Option<Arc<WaitQueue>> {
        Some(with_current(|t| {
            t.map(|t| t.tg.signal_queue.clone())
                .unwrap_or_else(|| self.fallback.clone())
        }))
    }

    fn name(&self) -> String {
        "anon_inode:[signalfd]".to_string()
    }

    fn fdinfo(&self, _f: &FileDescription) -> String {
        format!("sigmask:\t{:016x}\n", *self.mask.lock())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
