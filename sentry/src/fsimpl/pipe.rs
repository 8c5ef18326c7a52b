//! Pipes and FIFOs: a bounded byte buffer with readers and writers.

use crate::sync::LockExt;
use std::any::Any;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::errno::Errno;

use crate::kernel::task::Task;
use crate::kernel::waiter::{block_waiter, WaitQueue, ALL_EVENTS};
use crate::vfs::inode::{Inode, InodeOps};
use crate::vfs::{FileDescription, FileImpl};

/// Linux's default pipe capacity.
pub const PIPE_CAPACITY: usize = 65536;
/// Writes up to PIPE_BUF bytes are atomic (each fits one page buffer).
pub const PIPE_BUF: usize = PAGE;

/// The page size: a pipe holds its data in page-sized buffers, one a
/// slot, as Linux's do.
const PAGE: usize = 4096;

/// One buffer: bytes that began at `start` in their page; `read` of them
/// are gone already.
struct PipeBuf {
    start: usize,
    data: Vec<u8>,
    read: usize,
    /// Whether a later small write may append to it (anonymous pipe
    /// pages; not pages spliced in).
    merge: bool,
}

impl PipeBuf {
    fn len(&self) -> usize {
        self.data.len() - self.read
    }
}

/// A pipe's buffers (Linux's ring of `pipe_buffer`s): a pipe of N pages
/// holds N buffers, however full each is.
#[derive(Default)]
struct Ring {
    bufs: VecDeque<PipeBuf>,
    bytes: usize,
}

impl Ring {
    fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    fn len(&self) -> usize {
        self.bytes
    }

    fn slots(&self) -> usize {
        self.bufs.len()
    }

    fn peek(&self, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for b in &self.bufs {
            let k = b.len().min(max - out.len());
            out.extend_from_slice(&b.data[b.read..b.read + k]);
            if out.len() >= max {
                break;
            }
        }
        out
    }

    /// Drops the first `n` bytes; emptied buffers free their slots.
    fn consume(&mut self, mut n: usize) {
        n = n.min(self.bytes);
        self.bytes -= n;
        while n > 0 {
            let b = self.bufs.front_mut().expect("bytes counted");
            let k = b.len().min(n);
            b.read += k;
            n -= k;
            if b.len() == 0 {
                self.bufs.pop_front();
            }
        }
    }

    /// Linux's pipe_write without waiting, in a pipe of `slots`: the
    /// part of `src` past whole pages goes into the last buffer if it
    /// fits there, then a page a free slot. The bytes taken.
    fn write(&mut self, src: &[u8], slots: usize) -> usize {
        let mut done = 0;
        let chars = src.len() % PAGE;
        if chars != 0 {
            if let Some(b) = self.bufs.back_mut() {
                if b.merge && b.start + b.data.len() + chars <= PAGE {
                    b.data.extend_from_slice(&src[..chars]);
                    done = chars;
                }
            }
        }
        while done < src.len() && self.bufs.len() < slots {
            let k = (src.len() - done).min(PAGE);
            self.bufs.push_back(PipeBuf {
                start: 0,
                data: src[done..done + k].to_vec(),
                read: 0,
                merge: true,
            });
            done += k;
        }
        self.bytes += done;
        done
    }

    /// Adds `src` as buffers of its own (spliced pages), the first from
    /// `start` in its page, while slots are free. The bytes taken.
    fn push(&mut self, src: &[u8], mut start: usize, slots: usize) -> usize {
        let mut done = 0;
        while done < src.len() && self.bufs.len() < slots {
            let k = (src.len() - done).min(PAGE - start);
            self.bufs.push_back(PipeBuf {
                start,
                data: src[done..done + k].to_vec(),
                read: 0,
                merge: false,
            });
            done += k;
            start = 0;
        }
        self.bytes += done;
        done
    }
}

#[derive(Default)]
struct PipeState {
    buf: Ring,
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

    /// Buffers the pipe holds at most.
    fn slots(&self) -> usize {
        self.capacity() / PAGE
    }
}

/// Linux's /proc/sys/fs/pipe-max-size: the largest size without
/// CAP_SYS_RESOURCE.
pub const PIPE_MAX_SIZE: usize = 1 << 20;

/// The buffer shared by a pipe's two ends.
#[derive(Default)]
pub struct Pipe {
    state: Mutex<PipeState>,
    /// Notified on every change: data, room, ends opened or closed.
    queue: Arc<WaitQueue>,
}

impl Pipe {
    pub fn new() -> Arc<Pipe> {
        Arc::new(Pipe::default())
    }

    /// Up to `max` buffered bytes, without taking them: empty at end of
    /// file (no data, no writers), EAGAIN when empty with writers left
    /// (the caller waits on the pipe's queue, through its task).
    pub fn peek(&self, max: usize) -> Result<Vec<u8>, Errno> {
        let st = self.state.locked();
        if !st.buf.is_empty() {
            return Ok(st.buf.peek(max));
        }
        if st.writers == 0 {
            return Ok(Vec::new());
        }
        Err(Errno::EAGAIN)
    }

    /// As [`Pipe::peek`], buffer by buffer: each with where its bytes
    /// begin in their page.
    pub fn peek_buffers(&self, max: usize) -> Result<Vec<(usize, Vec<u8>)>, Errno> {
        let st = self.state.locked();
        if st.buf.is_empty() {
            return if st.writers == 0 {
                Ok(Vec::new())
            } else {
                Err(Errno::EAGAIN)
            };
        }
        let mut out = Vec::new();
        let mut left = max;
        for b in &st.buf.bufs {
            if left == 0 {
                break;
            }
            let k = b.len().min(left);
            out.push((b.start + b.read, b.data[b.read..b.read + k].to_vec()));
            left -= k;
        }
        Ok(out)
    }

    /// Linux's `wait_for_space` test: EPIPE without readers, EAGAIN
    /// when every slot is taken.
    pub fn has_space(&self) -> Result<(), Errno> {
        let st = self.state.locked();
        if st.readers == 0 {
            return Err(Errno::EPIPE);
        }
        if st.buf.slots() >= st.slots() {
            return Err(Errno::EAGAIN);
        }
        Ok(())
    }

    /// Adds `data` as buffers of its own (pages spliced in, which later
    /// writes do not append to), the first beginning at `start` in its
    /// page, while slots are free: the bytes taken. EAGAIN when full,
    /// EPIPE without readers.
    pub fn put(&self, data: &[u8], start: usize) -> Result<usize, Errno> {
        if data.is_empty() {
            return Ok(0);
        }
        let mut st = self.state.locked();
        if st.readers == 0 {
            return Err(Errno::EPIPE);
        }
        let slots = st.slots();
        let n = st.buf.push(data, start % PAGE, slots);
        if n == 0 {
            return Err(Errno::EAGAIN);
        }
        drop(st);
        self.changed();
        Ok(n)
    }

    fn changed(&self) {
        self.queue.notify_all();
    }

    /// Drops the first `n` buffered bytes (after a peek moved them on).
    pub fn consume(&self, n: usize) {
        let mut st = self.state.locked();
        st.buf.consume(n);
        drop(st);
        self.changed();
    }

    /// Makes an end; the pipe counts it until it is dropped.
    pub fn end(self: &Arc<Pipe>, read: bool, write: bool, inode: Option<Arc<Inode>>) -> PipeEnd {
        let mut st = self.state.locked();
        if read {
            st.readers += 1;
            st.reader_opens += 1;
        }
        if write {
            st.writers += 1;
            st.writer_opens += 1;
        }
        drop(st);
        self.changed();
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
        let mut st = self.pipe.state.locked();
        if self.read {
            st.readers -= 1;
        }
        if self.write {
            st.writers -= 1;
        }
        drop(st);
        self.pipe.changed();
    }
}

impl FileImpl for PipeEnd {
    /// Reads what is buffered; EAGAIN when empty with writers left (the
    /// caller waits on the pipe's queue unless non-blocking).
    fn read(
        &self,
        _file: &FileDescription,
        dst: &mut [u8],
        _offset: Option<u64>,
    ) -> Result<usize, Errno> {
        if dst.is_empty() {
            return Ok(0);
        }
        let mut st = self.pipe.state.locked();
        if st.buf.is_empty() {
            return if st.writers == 0 {
                Ok(0)
            } else {
                Err(Errno::EAGAIN)
            };
        }
        let n = dst.len().min(st.buf.len());
        dst[..n].copy_from_slice(&st.buf.peek(n));
        st.buf.consume(n);
        drop(st);
        self.pipe.changed();
        Ok(n)
    }

    /// Writes what fits, as Linux's pipe_write: a tail shorter than a
    /// page may join the last buffer, then a page a free slot, so a
    /// write of at most PIPE_BUF bytes goes in whole or not at all;
    /// EAGAIN when nothing fits (the caller waits for room unless
    /// non-blocking); EPIPE without readers.
    fn write(
        &self,
        _file: &FileDescription,
        src: &[u8],
        _offset: Option<u64>,
    ) -> Result<usize, Errno> {
        if src.is_empty() {
            return Ok(0);
        }
        let mut st = self.pipe.state.locked();
        if st.readers == 0 {
            return Err(Errno::EPIPE);
        }
        let slots = st.slots();
        let n = st.buf.write(src, slots);
        if n == 0 {
            return Err(Errno::EAGAIN);
        }
        drop(st);
        self.pipe.changed();
        Ok(n)
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
        Some(self.pipe.state.locked().capacity())
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
        let mut st = self.pipe.state.locked();
        if st.buf.slots() > bytes / PAGE {
            return Err(Errno::EBUSY);
        }
        st.capacity = bytes;
        drop(st);
        self.pipe.changed();
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
            let n = self.pipe.state.locked().buf.len() as i32;
            t.mm.write_obj(arg, &n)?;
            return Ok(0);
        }
        Err(Errno::ENOTTY)
    }

    fn readiness(&self, _file: &FileDescription, events: i16) -> i16 {
        let st = self.pipe.state.locked();
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
            if st.buf.slots() < st.slots() {
                r |= libc::POLLOUT | libc::POLLWRNORM;
            }
            if st.readers == 0 {
                r |= libc::POLLERR;
            }
        }
        r & (events | libc::POLLHUP | libc::POLLERR)
    }

    fn waitq(&self, _file: &FileDescription) -> Option<Arc<WaitQueue>> {
        Some(self.pipe.queue.clone())
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

    fn open(&self, t: &Task, inode: &Arc<Inode>, flags: u32) -> Result<Box<dyn FileImpl>, Errno> {
        let acc = flags & libc::O_ACCMODE as u32;
        let nonblock = flags & libc::O_NONBLOCK as u32 != 0;
        let (read, write) = match acc as i32 {
            libc::O_RDONLY => (true, false),
            libc::O_WRONLY => (false, true),
            _ => (true, true),
        };
        if write && !read && nonblock && self.pipe.state.locked().readers == 0 {
            return Err(Errno::ENXIO);
        }
        let end = self.pipe.end(read, write, Some(inode.clone()));
        if read != write && !nonblock {
            // Wait for the other side to open.
            let seen = {
                let st = self.pipe.state.locked();
                if read {
                    st.writer_opens
                } else {
                    st.reader_opens
                }
            };
            let pipe = self.pipe.clone();
            block_waiter(
                &t.shared.waiter,
                &[(&self.pipe.queue, ALL_EVENTS)],
                None,
                || {
                    let st = pipe.state.locked();
                    let (present, opens) = if read {
                        (st.writers, st.writer_opens)
                    } else {
                        (st.readers, st.reader_opens)
                    };
                    (present > 0 || opens > seen).then_some(Ok(()))
                },
            )?;
        }
        Ok(Box::new(end))
    }
}
