//! Pipes and FIFOs: a bounded byte buffer with readers and writers.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::errno::Errno;

use crate::kernel::task::Task;
use crate::vfs::inode::{Inode, InodeOps};
use crate::vfs::{FileDescription, FileImpl};

/// Linux's default pipe capacity.
pub const PIPE_CAPACITY: usize = 65536;
/// Writes up to PIPE_BUF bytes are atomic.
pub const PIPE_BUF: usize = 4096;

#[derive(Default)]
struct PipeState {
    buf: VecDeque<u8>,
    /// Bytes the pipe holds at most (F_SETPIPE_SZ); 0 means the default.
    capacity: usize,
    readers: usize,
    writers: usize,
    /// Opens ever made, to wake FIFO openers.
    reader_opens: u64,
    writer_opens: u64,
}

impl PipeState {
    fn capacity(&self) -> usize {
        if self.capacity == 0 {
            PIPE_CAPACITY
        } else {
            self.capacity
        }
    }
}

/// Linux's /proc/sys/fs/pipe-max-size: the largest size without
/// CAP_SYS_RESOURCE.
pub const PIPE_MAX_SIZE: usize = 1 << 20;

/// The buffer shared by a pipe's two ends.
#[derive(Default)]
pub struct Pipe {
    state: Mutex<PipeState>,
    changed: Condvar,
}

impl Pipe {
    pub fn new() -> Arc<Pipe> {
        Arc::new(Pipe::default())
    }

    /// Up to `max` buffered bytes, without taking them: waits for data
    /// while writers remain (EAGAIN instead with `nonblock`); empty at end
    /// of file.
    pub fn peek(&self, max: usize, nonblock: bool) -> Result<Vec<u8>, Errno> {
        let mut st = self.state.lock().unwrap();
        loop {
            if !st.buf.is_empty() {
                return Ok(st.buf.iter().take(max).copied().collect());
            }
            if st.writers == 0 {
                return Ok(Vec::new());
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            st = self.changed.wait(st).unwrap();
        }
    }

    /// Drops the first `n` buffered bytes (after a peek moved them on).
    pub fn consume(&self, n: usize) {
        let mut st = self.state.lock().unwrap();
        let n = n.min(st.buf.len());
        st.buf.drain(..n);
        drop(st);
        self.changed.notify_all();
    }

    /// Makes an end; the pipe counts it until it is dropped.
    pub fn end(self: &Arc<Pipe>, read: bool, write: bool, inode: Option<Arc<Inode>>) -> PipeEnd {
        let mut st = self.state.lock().unwrap();
        if read {
            st.readers += 1;
            st.reader_opens += 1;
        }
        if write {
            st.writers += 1;
            st.writer_opens += 1;
        }
        drop(st);
        self.changed.notify_all();
        PipeEnd {
            pipe: self.clone(),
            read,
            write,
            inode,
        }
    }
}

/// One open end of a pipe (a FIFO opened O_RDWR is both).
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    read: bool,
    write: bool,
    inode: Option<Arc<Inode>>,
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let mut st = self.pipe.state.lock().unwrap();
        if self.read {
            st.readers -= 1;
        }
        if self.write {
            st.writers -= 1;
        }
        drop(st);
        self.pipe.changed.notify_all();
    }
}

impl FileImpl for PipeEnd {
    fn read(
        &self,
        file: &FileDescription,
        dst: &mut [u8],
        _offset: Option<u64>,
    ) -> Result<usize, Errno> {
        if dst.is_empty() {
            return Ok(0);
        }
        let mut st = self.pipe.state.lock().unwrap();
        loop {
            if !st.buf.is_empty() {
                let n = dst.len().min(st.buf.len());
                for (d, b) in dst.iter_mut().zip(st.buf.drain(..n)) {
                    *d = b;
                }
                drop(st);
                self.pipe.changed.notify_all();
                return Ok(n);
            }
            if st.writers == 0 {
                return Ok(0);
            }
            if file.nonblocking() {
                return Err(Errno::EAGAIN);
            }
            st = self.pipe.changed.wait(st).unwrap();
        }
    }

    fn write(
        &self,
        file: &FileDescription,
        src: &[u8],
        _offset: Option<u64>,
    ) -> Result<usize, Errno> {
        if src.is_empty() {
            return Ok(0);
        }
        let mut st = self.pipe.state.lock().unwrap();
        let mut done = 0;
        loop {
            if st.readers == 0 {
                // SIGPIPE delivery comes with signals.
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(Errno::EPIPE)
                };
            }
            let room = st.capacity() - st.buf.len();
            let rest = src.len() - done;
            // Small writes go in whole or not at all.
            let fits = if rest <= PIPE_BUF {
                room >= rest
            } else {
                room > 0
            };
            if fits {
                let n = rest.min(room);
                st.buf.extend(&src[done..done + n]);
                done += n;
                self.pipe.changed.notify_all();
                if done == src.len() {
                    return Ok(done);
                }
            }
            if file.nonblocking() {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(Errno::EAGAIN)
                };
            }
            st = self.pipe.changed.wait(st).unwrap();
        }
    }

    fn write_short(
        &self,
        _file: &FileDescription,
        _src: &[u8],
        _want: usize,
        _offset: Option<u64>,
    ) -> Result<usize, Errno> {
        Err(Errno::EFAULT)
    }

    fn positional(&self, _file: &FileDescription) -> bool {
        false
    }

    fn supports_async(&self) -> bool {
        true
    }

    fn pipe(&self) -> Option<Arc<Pipe>> {
        Some(self.pipe.clone())
    }

    fn pipe_size(&self) -> Option<usize> {
        Some(self.pipe.state.lock().unwrap().capacity())
    }

    fn set_pipe_size(&self, size: usize, privileged: bool) -> Result<usize, Errno> {
        // A whole number of pages, a power of two of them, one at least.
        let pages = size.max(1).div_ceil(4096).next_power_of_two();
        let bytes = pages.checked_mul(4096).ok_or(Errno::EINVAL)?;
        if bytes > i32::MAX as usize {
            return Err(Errno::EINVAL);
        }
        if bytes > PIPE_MAX_SIZE && !privileged {
            return Err(Errno::EPERM);
        }
        let mut st = self.pipe.state.lock().unwrap();
        if st.buf.len() > bytes {
            return Err(Errno::EBUSY);
        }
        st.capacity = bytes;
        drop(st);
        self.pipe.changed.notify_all();
        Ok(bytes)
    }

    fn seek(&self, _file: &FileDescription, _offset: i64, _whence: i32) -> Result<u64, Errno> {
        Err(Errno::ESPIPE)
    }

    fn stat(&self, _file: &FileDescription) -> Result<libc::stat, Errno> {
        if let Some(i) = &self.inode {
            return Ok(i.stat());
        }
        let mut st: libc::stat = crate::hostcall::zeroed();
        st.st_mode = libc::S_IFIFO | 0o600;
        st.st_nlink = 1;
        st.st_blksize = 4096;
        st.st_ino = Arc::as_ptr(&self.pipe) as u64 & 0xffff_ffff;
        Ok(st)
    }

    fn ioctl(
        &self,
        _file: &FileDescription,
        t: &mut Task,
        request: u32,
        arg: u64,
    ) -> Result<u64, Errno> {
        if request as u64 == libc::FIONREAD {
            let n = self.pipe.state.lock().unwrap().buf.len() as i32;
            t.mm.write_obj(arg, &n)?;
            return Ok(0);
        }
        Err(Errno::ENOTTY)
    }

    fn readiness(&self, _file: &FileDescription, events: i16) -> i16 {
        let st = self.pipe.state.lock().unwrap();
        let mut r = 0;
        if self.read {
            if !st.buf.is_empty() {
                r |= libc::POLLIN | libc::POLLRDNORM;
            }
            if st.writers == 0 && st.writer_opens > 0 {
                r |= libc::POLLHUP;
            }
        }
        if self.write {
            if st.capacity() - st.buf.len() >= PIPE_BUF.min(st.capacity()) {
                r |= libc::POLLOUT | libc::POLLWRNORM;
            }
            if st.readers == 0 {
                r |= libc::POLLERR;
            }
        }
        r & (events | libc::POLLHUP | libc::POLLERR)
    }

    fn wait_ready(&self, file: &FileDescription, events: i16, timeout_ms: i32) -> i16 {
        let deadline =
            (timeout_ms >= 0).then(|| Instant::now() + Duration::from_millis(timeout_ms as u64));
        let mut st = self.pipe.state.lock().unwrap();
        loop {
            drop(st);
            let r = self.readiness(file, events);
            if r != 0 {
                return r;
            }
            st = self.pipe.state.lock().unwrap();
            match deadline {
                None => st = self.pipe.changed.wait(st).unwrap(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return 0;
                    }
                    st = self.pipe.changed.wait_timeout(st, d - now).unwrap().0;
                }
            }
        }
    }

    fn name(&self) -> String {
        format!("pipe:[{}]", Arc::as_ptr(&self.pipe) as u64 & 0xffff_ffff)
    }

    fn inode(&self) -> Option<Arc<Inode>> {
        self.inode.clone()
    }
}

/// A FIFO in a file system: opening it joins its pipe.
#[derive(Default)]
pub struct FifoNode {
    pipe: Arc<Pipe>,
}

impl InodeOps for FifoNode {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn open(&self, _t: &Task, inode: &Arc<Inode>, flags: u32) -> Result<Box<dyn FileImpl>, Errno> {
        let acc = flags & libc::O_ACCMODE as u32;
        let nonblock = flags & libc::O_NONBLOCK as u32 != 0;
        let (read, write) = match acc as i32 {
            libc::O_RDONLY => (true, false),
            libc::O_WRONLY => (false, true),
            _ => (true, true),
        };
        if write && !read && nonblock && self.pipe.state.lock().unwrap().readers == 0 {
            return Err(Errno::ENXIO);
        }
        let end = self.pipe.end(read, write, Some(inode.clone()));
        if read != write && !nonblock {
            // Wait for the other side to open.
            let mut st = self.pipe.state.lock().unwrap();
            let seen = if read {
                st.writer_opens
            } else {
                st.reader_opens
            };
            loop {
                let (present, opens) = if read {
                    (st.writers, st.writer_opens)
                } else {
                    (st.readers, st.reader_opens)
                };
                if present > 0 || opens > seen {
                    break;
                }
                st = self.pipe.changed.wait(st).unwrap();
            }
        }
        Ok(Box::new(end))
    }
}
