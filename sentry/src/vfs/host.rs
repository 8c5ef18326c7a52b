//! Files backed by a host fd the sandbox was given (its standard streams).
//!
//! The sentry does the host I/O on its own fd; the guest never names a
//! host file. Offsets are the host fd's, so `runsc do prog < file` sees the
//! file as Linux would.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::kernel::waiter::WaitQueue;

use crate::errno::Errno;

use super::{FileDescription, FileImpl};
use crate::kernel::task::Task;
use crate::mm::io::as_bytes;

pub struct HostFile {
    fd: OwnedFd,
    name: String,
    /// Whether the host fd has positions (lseek works), found out once.
    positional: OnceLock<bool>,
    /// Notified by the sentry's host event loop when the fd's readiness
    /// changes; None for fds epoll cannot watch (regular files, which are
    /// always ready).
    queue: Option<(Arc<HostEvents>, u64, Arc<WaitQueue>)>,
    /// Its pages in the memory file, once something maps it.
    cache: OnceLock<Option<Arc<crate::mm::cached::CachedFile>>>,
}

/// The sentry's event loop over host fds: one epoll instance and one
/// thread that turns host readiness into wait-queue notifications. The
/// host fds stay blocking (they are shared with whoever gave them to the
/// sandbox, a terminal perhaps): the sentry does I/O on them only when
/// they are ready.
pub struct HostEvents {
    epfd: OwnedFd,
    queues: Mutex<HashMap<u64, Weak<WaitQueue>>>,
    next: AtomicU64,
}

impl HostEvents {
    pub fn new() -> std::io::Result<Arc<HostEvents>> {
        // SAFETY: creates a new epoll fd that we own.
        let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let ev = Arc::new(HostEvents {
            // SAFETY: `raw` is a new fd nothing else owns.
            epfd: unsafe { OwnedFd::from_raw_fd(raw) },
            queues: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        });
        let e = ev.clone();
        std::thread::Builder::new()
            .name("host-events".into())
            .spawn(move || e.run())?;
        Ok(ev)
    }

    fn run(&self) {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        loop {
            // SAFETY: the buffer holds 64 events.
            let n = unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), events.as_mut_ptr(), 64, -1) };
            if n < 0 {
                if Errno::last() == Errno::EINTR {
                    continue;
                }
                tracing::error!("host event loop: epoll_wait: {}", Errno::last());
                return;
            }
            let q = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            for e in &events[..n as usize] {
                let id = e.u64;
                if let Some(queue) = q.get(&id).and_then(|w| w.upgrade()) {
                    queue.notify_all();
                }
            }
        }
    }

    /// Watches `fd`; None if epoll cannot (a regular file).
    pub(crate) fn watch(
        self: &Arc<Self>,
        fd: i32,
    ) -> Option<(Arc<HostEvents>, u64, Arc<WaitQueue>)> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: id,
        };
        let queue = Arc::new(WaitQueue::default());
        self.queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::downgrade(&queue));
        // SAFETY: adds our own fd to our own epoll instance.
        let rc =
            unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if rc != 0 {
            self.queues
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            return None;
        }
        Some((self.clone(), id, queue))
    }

    /// Stops watching `fd` (before it is closed).
    pub(crate) fn unwatch(&self, fd: i32, id: u64) {
        // SAFETY: removes our own fd from our own epoll instance.
        unsafe {
            libc::epoll_ctl(
                self.epfd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
        self.queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        if let Some((ev, id, _)) = &self.queue {
            ev.unwatch(self.fd.as_raw_fd(), *id);
        }
    }
}

/// The longest stretch of [`fault_region`].
const FAULT_REGION_LEN: usize = 16 << 20;

/// A range of the sentry's address space that faults on every access
/// (reserved `PROT_NONE`). It stands in for the part of a guest buffer
/// that faults: a host `readv`/`writev` whose last segment points here
/// makes the host kernel apply its own rules for a copy that fails
/// part-way (a regular file returns the bytes before the fault, a pipe
/// fails whole, `/dev/null` never copies). None if it cannot be reserved.
fn fault_region() -> Option<usize> {
    static REGION: OnceLock<Option<usize>> = OnceLock::new();
    *REGION.get_or_init(|| {
        // SAFETY: a fresh anonymous PROT_NONE mapping; it is never
        // unmapped, and nothing in the sentry reads or writes it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                FAULT_REGION_LEN,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        (p != libc::MAP_FAILED).then_some(p as usize)
    })
}

impl HostFile {
    pub fn new(fd: OwnedFd, name: String, events: &Arc<HostEvents>) -> HostFile {
        let queue = events.watch(fd.as_raw_fd());
        HostFile {
            fd,
            name,
            positional: OnceLock::new(),
            queue,
            cache: OnceLock::new(),
        }
    }

    fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    fn poll_host(&self, events: i16, timeout_ms: i32) -> i16 {
        let mut pfd = libc::pollfd {
            fd: self.raw(),
            events,
            revents: 0,
        };
        loop {
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
            if r >= 0 {
                return pfd.revents;
            }
            if Errno::last() != Errno::EINTR {
                return libc::POLLERR;
            }
        }
    }

    /// The host fd is blocking: I/O happens only when it is ready, and
    /// otherwise the caller waits (or a non-blocking description gets
    /// EAGAIN).
    fn check_ready(&self, _file: &FileDescription, ev: i16) -> Result<(), Errno> {
        if self.queue.is_some() && self.poll_host(ev, 0) == 0 {
            return Err(Errno::EAGAIN);
        }
        Ok(())
    }
}

fn retry<T: PartialOrd + Default>(mut f: impl FnMut() -> T) -> Result<T, Errno> {
    loop {
        let r = f();
        if r >= T::default() {
            return Ok(r);
        }
        let e = Errno::last();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// The kernel's `struct termios`, which TCGETS and TCSETS* pass (glibc's
/// `struct termios` is larger: tcgetattr converts).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct KernelTermios {
    c_iflag: u32,
    c_oflag: u32,
    c_cflag: u32,
    c_lflag: u32,
    c_line: u8,
    c_cc: [u8; 19],
}

// SAFETY: integer fields only, 36 bytes without padding.
unsafe impl crate::mm::io::Pod for KernelTermios {}
crate::assert_no_padding!(KernelTermios {
    c_iflag,
    c_oflag,
    c_cflag,
    c_lflag,
    c_line,
    c_cc
});

impl FileImpl for HostFile {
    fn mappable(
        &self,
        file: &FileDescription,
        mf: &Arc<crate::mm::memory_file::MemoryFile>,
    ) -> Option<Arc<dyn crate::mm::MappableFile>> {
        // Read-only: writes through a shared mapping would stay in the
        // cache, never reaching the host file.
        if file.flags() & libc::O_ACCMODE as u32 != libc::O_RDONLY as u32 {
            return None;
        }
        let cache = self.cache.get_or_init(|| {
            // SAFETY: dups our own fd; the new fd is the cache's alone.
            let d = unsafe { libc::fcntl(self.raw(), libc::F_DUPFD_CLOEXEC, 0) };
            if d < 0 {
                return None;
            }
            // SAFETY: `d` is a new fd nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(d) };
            crate::mm::cached::CachedFile::new(mf, fd, self.name.clone()).ok()
        });
        cache.clone().map(|c| c as Arc<dyn crate::mm::MappableFile>)
    }

    /// O_APPEND belongs to the host's open file description, which the
    /// guest shares with whoever gave the sandbox the fd, as a child
    /// process would. O_NONBLOCK stays the sentry's: the sentry never
    /// blocks on a host fd the guest asked not to block on.
    fn status_flags_changed(&self, flags: u32) {
        let Some(host) = crate::hostcall::fd_status_flags(self.raw()) else {
            return;
        };
        let append = libc::O_APPEND;
        let want = if flags & append as u32 != 0 {
            host | append
        } else {
            host & !append
        };
        if want != host {
            // SAFETY: F_SETFL on an fd we own.
            unsafe { libc::fcntl(self.raw(), libc::F_SETFL, want) };
        }
    }
    fn read(
        &self,
        file: &FileDescription,
        dst: &mut [u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        self.check_ready(file, libc::POLLIN)?;
        let r = retry(|| match offset {
            // SAFETY: dst is a valid writable buffer of dst.len() bytes.
            None => unsafe { libc::read(self.raw(), dst.as_mut_ptr().cast(), dst.len()) },
            // SAFETY: as above.
            Some(o) => unsafe {
                libc::pread(self.raw(), dst.as_mut_ptr().cast(), dst.len(), o as i64)
            },
        })?;
        Ok(r as usize)
    }

    fn write(
        &self,
        file: &FileDescription,
        src: &[u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        self.check_ready(file, libc::POLLOUT)?;
        // A ready pipe or terminal takes a page without blocking; more
        // might block the sentry's thread.
        let src = if self.queue.is_some() && src.len() > 4096 {
            &src[..4096]
        } else {
            src
        };
        let r = retry(|| match offset {
            // SAFETY: src is a valid buffer of src.len() bytes.
            None => unsafe { libc::write(self.raw(), src.as_ptr().cast(), src.len()) },
            // SAFETY: as above.
            Some(o) => unsafe {
                libc::pwrite(self.raw(), src.as_ptr().cast(), src.len(), o as i64)
            },
        });
        match r {
            // The guest gets EPIPE; SIGPIPE delivery comes with signals.
            Err(e) => Err(e),
            Ok(n) => Ok(n as usize),
        }
    }

    fn read_short(
        &self,
        file: &FileDescription,
        dst: &mut [u8],
        want: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let Some(region) = fault_region() else {
            return if dst.is_empty() {
                Err(Errno::EFAULT)
            } else {
                self.read(file, dst, offset)
            };
        };
        self.check_ready(file, libc::POLLIN)?;
        let tail = want.saturating_sub(dst.len()).clamp(1, FAULT_REGION_LEN);
        let iov = [
            libc::iovec {
                iov_base: dst.as_mut_ptr().cast(),
                iov_len: dst.len(),
            },
            libc::iovec {
                iov_base: region as *mut libc::c_void,
                iov_len: tail,
            },
        ];
        let r = retry(|| match offset {
            // SAFETY: the first segment is our writable buffer; the second
            // is the PROT_NONE region, where the host's copy faults (an
            // error for the host kernel, never a fault of the sentry).
            None => unsafe { libc::readv(self.raw(), iov.as_ptr(), 2) },
            // SAFETY: as above.
            Some(o) => unsafe { libc::preadv(self.raw(), iov.as_ptr(), 2, o as i64) },
        })?;
        Ok((r as usize).min(dst.len()))
    }

    fn write_short(
        &self,
        file: &FileDescription,
        src: &[u8],
        want: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let Some(region) = fault_region() else {
            return if src.is_empty() {
                Err(Errno::EFAULT)
            } else {
                self.write(file, src, offset)
            };
        };
        self.check_ready(file, libc::POLLOUT)?;
        let tail = want.saturating_sub(src.len()).clamp(1, FAULT_REGION_LEN);
        let iov = [
            libc::iovec {
                iov_base: src.as_ptr() as *mut libc::c_void,
                iov_len: src.len(),
            },
            libc::iovec {
                iov_base: region as *mut libc::c_void,
                iov_len: tail,
            },
        ];
        let r = retry(|| match offset {
            // SAFETY: the first segment is our buffer (only read); the
            // second is the PROT_NONE region, where the host's copy faults.
            None => unsafe { libc::writev(self.raw(), iov.as_ptr(), 2) },
            // SAFETY: as above.
            Some(o) => unsafe { libc::pwritev(self.raw(), iov.as_ptr(), 2, o as i64) },
        })?;
        Ok(r as usize)
    }

    fn positional(&self, _file: &FileDescription) -> bool {
        *self.positional.get_or_init(|| {
            // SAFETY: lseek on our own fd; SEEK_CUR with 0 moves nothing.
            let r = unsafe { libc::lseek(self.raw(), 0, libc::SEEK_CUR) };
            !(r < 0 && Errno::last() == Errno::ESPIPE)
        })
    }

    fn seek(&self, _file: &FileDescription, offset: i64, whence: i32) -> Result<u64, Errno> {
        // SAFETY: lseek on our own fd.
        let r = unsafe { libc::lseek(self.raw(), offset, whence) };
        if r < 0 {
            return Err(Errno::last());
        }
        Ok(r as u64)
    }

    fn stat(&self, _file: &FileDescription) -> Result<libc::stat, Errno> {
        // SAFETY: all-zero is a valid stat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes one stat to &mut st.
        if unsafe { libc::fstat(self.raw(), &mut st) } != 0 {
            return Err(Errno::last());
        }
        Ok(st)
    }

    fn ioctl(
        &self,
        _file: &FileDescription,
        t: &mut Task,
        request: u32,
        arg: u64,
    ) -> Result<u64, Errno> {
        match request as u64 {
            libc::TCGETS => {
                let mut tio = KernelTermios::default();
                // SAFETY: TCGETS writes one kernel termios to &mut tio.
                if unsafe { libc::ioctl(self.raw(), libc::TCGETS, &mut tio) } != 0 {
                    return Err(Errno::last());
                }
                t.mm.write_obj(arg, &tio)?;
                Ok(0)
            }
            libc::TCSETS | libc::TCSETSW | libc::TCSETSF => {
                let tio: KernelTermios = t.mm.read_obj(arg)?;
                // SAFETY: TCSETS* reads one kernel termios from &tio.
                if unsafe { libc::ioctl(self.raw(), request as u64, &tio) } != 0 {
                    return Err(Errno::last());
                }
                Ok(0)
            }
            libc::TIOCGWINSZ => {
                // SAFETY: all-zero is a valid winsize.
                let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
                // SAFETY: TIOCGWINSZ writes one winsize to &mut ws.
                if unsafe { libc::ioctl(self.raw(), libc::TIOCGWINSZ, &mut ws) } != 0 {
                    return Err(Errno::last());
                }
                t.mm.copy_out(arg, as_bytes(&ws))?;
                Ok(0)
            }
            libc::FIONREAD => {
                // Regular files answer the bytes left before the end, pipes
                // the bytes queued; files without it answer ENOTTY.
                let mut n: libc::c_int = 0;
                // SAFETY: FIONREAD writes one int to &mut n.
                if unsafe { libc::ioctl(self.raw(), libc::FIONREAD, &mut n) } != 0 {
                    return Err(Errno::last());
                }
                t.mm.write_obj(arg, &n)?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }

    fn readiness(&self, _file: &FileDescription, events: i16) -> i16 {
        self.poll_host(events, 0)
    }

    fn wait_ready(&self, _file: &FileDescription, events: i16, timeout_ms: i32) -> i16 {
        self.poll_host(events, timeout_ms)
    }

    fn waitq(&self, _file: &FileDescription) -> Option<Arc<WaitQueue>> {
        self.queue.as_ref().map(|(_, _, q)| q.clone())
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}
