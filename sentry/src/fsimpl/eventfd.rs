//! eventfd files: a 64-bit counter that writes add to and reads take
//! (all of it, or one in semaphore mode), as Linux's `fs/eventfd.c`.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::errno::Errno;
use crate::kernel::waiter::WaitQueue;
use crate::vfs::{FileDescription, FileImpl};

/// The largest count: a write that would reach u64::MAX waits.
pub const MAX_COUNT: u64 = u64::MAX - 1;

pub struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    queue: Arc<WaitQueue>,
    /// fdinfo's eventfd-id: the smallest number no other eventfd has.
    id: u32,
}

/// The ids of the eventfds that exist.
static IDS: Mutex<std::collections::BTreeSet<u32>> = Mutex::new(std::collections::BTreeSet::new());

impl EventFd {
    pub fn new(initval: u32, semaphore: bool) -> EventFd {
        let id = {
            let mut ids = IDS.lock();
            let id = (0..)
                .zip(ids.iter())
                .find(|(i, u)| i != *u)
                .map_or(ids.len() as u32, |(i, _)| i);
            ids.insert(id);
            id
        };
        EventFd {
            count: Mutex::new(initval as u64),
            semaphore,
            queue: Arc::new(WaitQueue::default()),
            id,
        }
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        IDS.lock().remove(&self.id);
    }
}

impl FileImpl for EventFd {
    /// Takes the count (or one), as 8 bytes; EAGAIN while it is 0 (the
    /// caller waits unless the description is non-blocking).
    fn read(&self, _f: &FileDescription, dst: &mut [u8], _o: Option<u64>) -> Result<usize, Errno> {
        if dst.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let v = {
            let mut c = self.count.lock();
            if *c == 0 {
                return Err(Errno::EAGAIN);
            }
            let v = if self.semaphore { 1 } else { *c };
            *c -= v;
            v
        };
        dst[..8].copy_from_slice(&v.to_ne_bytes());
        self.queue.notify(libc::POLLOUT as u32);
        Ok(8)
    }

    /// A read whose buffer faults: the count is taken, then the copy
    /// fails (Linux copies after taking it).
    fn read_short(
        &self,
        f: &FileDescription,
        dst: &mut [u8],
        want: usize,
        o: Option<u64>,
    ) -> Result<usize, Errno> {
        if want < 8 {
            return Err(Errno::EINVAL);
        }
        let mut v = [0u8; 8];
        self.read(f, &mut v, o)?;
        let k = dst.len().min(8);
        dst[..k].copy_from_slice(&v[..k]);
        Err(Errno::EFAULT)
    }

    /// Adds an 8-byte value; EINVAL for u64::MAX or another size, EAGAIN
    /// while the sum would pass [`MAX_COUNT`].
    fn write(&self, _f: &FileDescription, src: &[u8], _o: Option<u64>) -> Result<usize, Errno> {
        if src.len() != 8 {
            return Err(Errno::EINVAL);
        }
        let v = u64::from_ne_bytes(src.try_into().unwrap());
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        {
            let mut c = self.count.lock();
            if u64::MAX - *c <= v {
                return Err(Errno::EAGAIN);
            }
            *c += v;
        }
        // Even a write of 0 wakes (an edge for edge-triggered epoll).
        self.queue.notify(libc::POLLIN as u32);
        Ok(8)
    }

    fn empty_io_reaches_file(&self) -> bool {
        true
    }

    fn writes_once(&self) -> bool {
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

    fn readiness(&self, _f: &FileDescription, events: i16) -> i16 {
        let c = *self.count.lock();
        let mut r = 0;
        if c > 0 {
            r |= libc::POLLIN | libc::POLLRDNORM;
        }
        if c == u64::MAX {
            r |= libc::POLLERR;
        }
        if u64::MAX - 1 > c {
            r |= libc::POLLOUT | libc::POLLWRNORM;
        }
        r & (events | libc::POLLERR | libc::POLLHUP)
    }

    fn waitq(&self, _f: &FileDescription) -> Option<Arc<WaitQueue>> {
        Some(self.queue.clone())
    }

    fn name(&self) -> String {
        "anon_inode:[eventfd]".to_string()
    }

    fn fdinfo(&self, _f: &FileDescription) -> String {
        format!(
            "eventfd-count: {:16x}\neventfd-id: {}\neventfd-semaphore: {}\n",
            *self.count.lock(),
            self.id,
            self.semaphore as u8
        )
    }
}
