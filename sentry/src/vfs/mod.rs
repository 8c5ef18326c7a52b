//! Open file descriptions and file descriptor tables.
//!
//! This is the seam the VFS builds on: a [`FileDescription`] is what an fd
//! refers to (shared by `dup` and inheritance, with its status flags), and
//! its [`FileImpl`] says what kind of file it is. For now the only kind is
//! a host fd (the standard streams handed to the sandbox); mounts, dentries
//! and the in-sandbox file systems come with the VFS.

pub mod anon;
pub mod dir;
pub mod host;
pub mod inode;
pub mod inotify;
pub mod lock;
pub mod mount;
pub mod path;
pub mod perm;

pub use dir::DirFile;

use crate::sync::LockExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::errno::Errno;

use crate::kernel::task::Task;

/// What the VFS keeps for one sandbox, in its kernel: device numbers of
/// file systems, the internal mounts (memfds, open files without a place
/// in the tree) and the graph of record-lock waiters.
#[derive(Default)]
pub struct VfsState {
    /// The last minor number given to a file system (major 0, anonymous
    /// devices, as Linux gives virtual file systems).
    last_dev: std::sync::atomic::AtomicU64,
    anon: std::sync::OnceLock<(Arc<inode::Filesystem>, Arc<mount::Mount>)>,
    memfd: std::sync::OnceLock<Arc<mount::Mount>>,
    /// Processes waiting for a record lock, and whose lock each waits for.
    pub lock_graph: lock::LockGraph,
    /// Lock state of files without an inode.
    pub anon_locks: lock::AnonLocks,
    /// inotify's limits and per-user counts.
    pub inotify: inotify::InotifyState,
}

impl VfsState {
    /// A device number for a new file system.
    pub fn new_dev(&self) -> u64 {
        // Linux's first anonymous devices go to its own internal mounts.
        0x10 + self.last_dev.fetch_add(1, Ordering::Relaxed)
    }

    /// The mount of open files without a place in the tree.
    pub fn anon_mount(&self) -> &(Arc<inode::Filesystem>, Arc<mount::Mount>) {
        self.anon.get_or_init(|| anon::new_mount(self))
    }

    /// The internal tmpfs of memfds.
    pub fn memfd_mount(
        &self,
        make: impl FnOnce(&VfsState) -> Arc<mount::Mount>,
    ) -> &Arc<mount::Mount> {
        self.memfd.get_or_init(|| make(self))
    }
}

/// The most a default [`FileImpl::read_to_memory`] or
/// [`FileImpl::write_from_memory`] moves in one call.
pub const MEMORY_IO_CHUNK: usize = 16 << 20;

/// `struct f_owner_ex` types.
pub const F_OWNER_TID: i32 = 0;
pub const F_OWNER_PID: i32 = 1;
pub const F_OWNER_PGRP: i32 = 2;

/// The status flags `F_SETFL` may change.
pub const SETFL_MASK: u32 =
    (libc::O_APPEND | libc::O_NONBLOCK | libc::O_ASYNC | libc::O_DIRECT | libc::O_NOATIME) as u32;

/// What a kind of file does. Offsets are the implementation's business
/// (host files use the host's).
pub trait FileImpl: Send + Sync {
    /// Reads at the current offset (or at `offset`, for `pread`).
    fn read(
        &self,
        file: &FileDescription,
        dst: &mut [u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno>;
    /// Writes at the current offset (or at `offset`, for `pwrite`).
    fn write(
        &self,
        file: &FileDescription,
        src: &[u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno>;
    /// Reads into a guest buffer of which only the first `dst.len()` bytes
    /// are writable, when the guest asked for `want` bytes: what a read
    /// does when its copy to user memory faults part-way. Files that copy
    /// in order return the bytes before the fault, or EFAULT if there are
    /// none; some never copy at all (`/dev/null` returns 0). At the end of
    /// a file nothing is copied either, so nothing faults: the default
    /// finds that out, for files with positions, with a one-byte read at
    /// the position, which moves nothing.
    fn read_short(
        &self,
        file: &FileDescription,
        dst: &mut [u8],
        want: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let _ = want;
        if !dst.is_empty() {
            return self.read(file, dst, offset);
        }
        if self.positional(file) {
            let pos = offset.or_else(|| self.seek(file, 0, libc::SEEK_CUR).ok());
            if let Some(pos) = pos {
                if self.read(file, &mut [0u8; 1], Some(pos))? == 0 {
                    return Ok(0);
                }
            }
        }
        Err(Errno::EFAULT)
    }
    /// Writes from a guest buffer of which only `src` (a prefix of the
    /// `want` bytes the guest passed) is readable. Files that copy in order
    /// write that prefix or fail with EFAULT if it is empty; pipes write
    /// nothing and fail.
    fn write_short(
        &self,
        file: &FileDescription,
        src: &[u8],
        want: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let _ = want;
        if src.is_empty() {
            return Err(Errno::EFAULT);
        }
        self.write(file, src, offset)
    }
    /// Whether the file has positions: `pread`/`pwrite` work on it
    /// (Linux's FMODE_PREAD/FMODE_PWRITE). Pipes, sockets and terminals
    /// have none, and those calls answer ESPIPE.
    fn positional(&self, file: &FileDescription) -> bool {
        let _ = file;
        true
    }
    fn seek(&self, file: &FileDescription, offset: i64, whence: i32) -> Result<u64, Errno>;
    /// `fstat`: by default the inode's metadata.
    fn stat(&self, file: &FileDescription) -> Result<libc::stat, Errno> {
        file.location
            .as_ref()
            .map(|l| l.inode.clone())
            .or_else(|| self.inode())
            .map(|i| i.stat())
            .ok_or(Errno::EBADF)
    }
    /// An ioctl; ENOTTY for requests the file does not know.
    fn ioctl(
        &self,
        file: &FileDescription,
        t: &mut Task,
        request: u32,
        arg: u64,
    ) -> Result<u64, Errno> {
        let _ = (file, t, request, arg);
        Err(Errno::ENOTTY)
    }
    /// Which of `events` (POLLIN, POLLOUT, ...) are ready now.
    /// By default a file is always ready for reading and writing, as
    /// regular files and most devices are.
    fn readiness(&self, file: &FileDescription, events: i16) -> i16 {
        let _ = file;
        events & (libc::POLLIN | libc::POLLOUT | libc::POLLRDNORM | libc::POLLWRNORM)
    }
    /// The process a pidfd stands for.
    fn pidfd(&self) -> Option<i32> {
        None
    }
    /// The implementation itself, for calls that act on one kind of file
    /// (epoll_ctl on an epoll instance, timerfd_settime on a timerfd).
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
    /// The instance an inotify file is.
    fn inotify(&self) -> Option<Arc<inotify::Instance>> {
        None
    }
    /// The queue notified when the file's readiness changes; None for
    /// files that are always ready (and never block).
    fn waitq(&self, file: &FileDescription) -> Option<Arc<crate::kernel::waiter::WaitQueue>> {
        let _ = file;
        None
    }
    /// Waits, not interruptibly, until one of `events` is ready or
    /// `timeout_ms` passes (<0: forever); returns the ready events. Only
    /// for the sentry's own waits that have no task to interrupt; guest
    /// waits go through `Task::wait_file`.
    fn wait_ready(&self, file: &FileDescription, events: i16, timeout_ms: i32) -> i16 {
        let Some(q) = self.waitq(file) else {
            return self.readiness(file, events);
        };
        let deadline = (timeout_ms >= 0).then(|| {
            std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms as u64)
        });
        let w = crate::kernel::waiter::Waiter::new();
        let _r = q.register(&w, crate::kernel::waiter::ALL_EVENTS);
        loop {
            w.reset();
            let r = self.readiness(file, events);
            if r != 0 {
                return r;
            }
            if w.wait(deadline) == crate::kernel::waiter::Wake::TimedOut {
                return self.readiness(file, events);
            }
        }
    }
    /// A name for /proc/[pid]/fd and strace.
    fn name(&self) -> String {
        String::new()
    }
    /// Lines of /proc/[pid]/fdinfo/N after the common ones (an eventfd's
    /// count, an epoll instance's registrations).
    fn fdinfo(&self, file: &FileDescription) -> String {
        let _ = file;
        String::new()
    }
    /// Whether reads and writes may work directly on guest memory, with
    /// [`read_to_memory`](Self::read_to_memory) and
    /// [`write_from_memory`](Self::write_from_memory): they never block and
    /// never touch the caller's address space (tmpfs files). Others go
    /// through a sentry buffer.
    fn direct_io(&self) -> bool {
        false
    }
    /// As [`read`](Self::read), into `[dst, dst+len)` of the memory file
    /// (guest memory that the caller keeps from being unmapped). Files
    /// with `direct_io` copy straight from their data; by default the bytes
    /// go through a buffer of at most [`MEMORY_IO_CHUNK`].
    fn read_to_memory(
        &self,
        file: &FileDescription,
        mf: &crate::mm::MemoryFile,
        dst: u64,
        len: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let mut buf = vec![0u8; len.min(MEMORY_IO_CHUNK)];
        let n = self.read(file, &mut buf, offset)?;
        mf.write(dst, &buf[..n]);
        Ok(n)
    }
    /// As [`write`](Self::write), from `[src, src+len)` of the memory file
    /// (see [`read_to_memory`](Self::read_to_memory)).
    fn write_from_memory(
        &self,
        file: &FileDescription,
        mf: &crate::mm::MemoryFile,
        src: u64,
        len: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let mut buf = vec![0u8; len.min(MEMORY_IO_CHUNK)];
        mf.read(src, &mut buf);
        self.write(file, &buf, offset)
    }
    /// fsync (`data_only`: fdatasync) of a file whose data lives
    /// elsewhere (a host file): written back and flushed there. `None`:
    /// the file's data is the sentry's own, and there is nothing to do.
    fn fsync(&self, file: &FileDescription, data_only: bool) -> Option<Result<(), Errno>> {
        let _ = (file, data_only);
        None
    }
    /// Whether a read or write of zero bytes reaches the file (eventfds,
    /// timerfds and signalfds answer EINVAL), rather than returning 0 at
    /// once as Linux's regular files and pipes do.
    fn empty_io_reaches_file(&self) -> bool {
        false
    }
    /// Whether a blocking write returns with what one call to `write`
    /// took (an eventfd's counter), rather than waiting to write the rest
    /// (pipes, terminals).
    fn writes_once(&self) -> bool {
        false
    }
    /// Told when F_SETFL (or FIONBIO) changed the status flags.
    fn status_flags_changed(&self, flags: u32) {
        let _ = flags;
    }
    /// The socket behind a socket file (what the socket syscalls work on).
    fn socket(&self) -> Option<Arc<dyn crate::fsimpl::socket::Socket>> {
        None
    }
    /// The pipe behind a pipe or FIFO end (for splice and tee).
    fn pipe(&self) -> Option<Arc<crate::fsimpl::pipe::Pipe>> {
        None
    }
    /// A pipe's capacity (F_GETPIPE_SZ); None for other files.
    fn pipe_size(&self) -> Option<usize> {
        None
    }
    /// Sets a pipe's capacity (F_SETPIPE_SZ); EBADF for other files.
    fn set_pipe_size(&self, size: usize, privileged: bool) -> Result<usize, Errno> {
        let _ = (size, privileged);
        Err(Errno::EBADF)
    }
    /// Whether the file can signal I/O readiness (O_ASYNC, FIOASYNC):
    /// pipes, sockets and terminals can.
    fn supports_async(&self) -> bool {
        false
    }
    /// The inode of a file that lives in a file system.
    fn inode(&self) -> Option<Arc<inode::Inode>> {
        None
    }
    /// The file's pages as mmap and the ELF loader map them, for files
    /// whose data is not an inode's (host files); `None`: not mappable
    /// this way.
    fn mappable(
        &self,
        file: &FileDescription,
        mf: &Arc<crate::mm::memory_file::MemoryFile>,
    ) -> Option<Arc<dyn crate::mm::MappableFile>> {
        let _ = (file, mf);
        None
    }
    /// Reads and writes that need the calling task (a terminal's job
    /// control and its VMIN/VTIME timing): `read`, `readv`, `write` and
    /// `writev` hand the whole call to it, through a sentry buffer.
    fn task_io(&self) -> Option<&dyn TaskIo> {
        None
    }
    /// Directory entries, for getdents: the directory's listing with "."
    /// and "..", from entry index `pos` on.
    fn readdir(
        &self,
        file: &FileDescription,
        t: &Task,
    ) -> Result<Arc<Vec<inode::DirEntry>>, Errno> {
        let _ = (file, t);
        Err(Errno::ENOTDIR)
    }
}

/// A file whose reads and writes block, signal and time out by rules of
/// their own, with the caller at hand ([`FileImpl::task_io`]).
pub trait TaskIo {
    /// Reads into `dst` (the writable part of the caller's buffers),
    /// waiting as the file's rules say unless the description is
    /// non-blocking.
    fn read(&self, file: &FileDescription, t: &mut Task, dst: &mut [u8]) -> Result<usize, Errno>;
    /// Writes `src` (the readable part of the caller's buffers), waiting
    /// for room unless non-blocking; a write interrupted after some bytes
    /// returns their count.
    fn write(&self, file: &FileDescription, t: &mut Task, src: &[u8]) -> Result<usize, Errno>;
}

/// Linux's generic llseek on a position kept in the file description:
/// SEEK_SET and SEEK_CUR, and SEEK_END when the file has an `end`.
/// `overflow` is the errno for an offset that overflows (regular files say
/// EOVERFLOW, synthetic files and directories EINVAL); a negative result
/// is EINVAL. Other `whence` values are the caller's, or EINVAL.
pub fn seek_position(
    pos: &mut u64,
    offset: i64,
    whence: i32,
    end: Option<u64>,
    overflow: Errno,
) -> Result<u64, Errno> {
    let new = match (whence, end) {
        (libc::SEEK_SET, _) => offset,
        (libc::SEEK_CUR, _) => (*pos as i64).checked_add(offset).ok_or(overflow)?,
        (libc::SEEK_END, Some(e)) => (e as i64).checked_add(offset).ok_or(overflow)?,
        _ => return Err(Errno::EINVAL),
    };
    if new < 0 {
        return Err(Errno::EINVAL);
    }
    *pos = new as u64;
    Ok(*pos)
}

/// An open file description.
pub struct FileDescription {
    /// Access mode and status flags (`O_RDONLY`.., `O_APPEND`, `O_NONBLOCK`).
    flags: AtomicU32,
    pub imp: Box<dyn FileImpl>,
    /// The file position, for files whose implementation keeps it here.
    pub pos: Mutex<u64>,
    /// F_SETOWN: who gets SIGIO/SIGURG (owner type, pid), and F_SETSIG's
    /// signal; recorded for when signals are delivered.
    pub owner: Mutex<(i32, i32)>,
    pub signal: std::sync::atomic::AtomicI32,
    /// Where the file was opened, for files in the tree.
    pub location: Option<mount::Location>,
    /// Lock state of a file without an inode, once a lock call needs it.
    locks: std::sync::OnceLock<Arc<lock::FileLocks>>,
    /// The epoll registrations of this description (Linux's `f_ep`):
    /// they go when the description goes.
    pub epoll_watchers: crate::fsimpl::epoll::Watchers,
}

impl FileDescription {
    pub fn new(flags: u32, imp: Box<dyn FileImpl>) -> Arc<FileDescription> {
        Self::new_at(flags, imp, None)
    }

    /// A description of a file opened at `location`.
    pub fn new_at(
        flags: u32,
        imp: Box<dyn FileImpl>,
        location: Option<mount::Location>,
    ) -> Arc<FileDescription> {
        let f = Arc::new(FileDescription {
            flags: AtomicU32::new(flags & !(libc::O_CLOEXEC as u32)),
            imp,
            pos: Mutex::new(0),
            owner: Mutex::new((F_OWNER_PID, 0)),
            signal: std::sync::atomic::AtomicI32::new(0),
            location,
            locks: std::sync::OnceLock::new(),
            epoll_watchers: Default::default(),
        });
        inotify::description_opened(&f);
        f
    }

    /// The inode behind the file, if it lives in a file system.
    pub fn inode(&self) -> Option<Arc<inode::Inode>> {
        self.location
            .as_ref()
            .map(|l| l.inode.clone())
            .or_else(|| self.imp.inode())
    }

    /// `fstat`: the inode's metadata, or what the implementation says.
    pub fn stat(&self) -> Result<libc::stat, Errno> {
        match &self.location {
            Some(l) => Ok(l.inode.stat()),
            None => self.imp.stat(self),
        }
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// F_SETFL: replaces the changeable status flags.
    pub fn set_status_flags(&self, new: u32) {
        let old = self.flags();
        let flags = (old & !SETFL_MASK) | (new & SETFL_MASK);
        self.flags.store(flags, Ordering::Relaxed);
        self.imp.status_flags_changed(flags);
    }

    pub fn readable(&self) -> bool {
        let acc = self.flags() & libc::O_ACCMODE as u32;
        acc == libc::O_RDONLY as u32 || acc == libc::O_RDWR as u32
    }

    pub fn writable(&self) -> bool {
        let acc = self.flags() & libc::O_ACCMODE as u32;
        acc == libc::O_WRONLY as u32 || acc == libc::O_RDWR as u32
    }

    pub fn nonblocking(&self) -> bool {
        self.flags() & libc::O_NONBLOCK as u32 != 0
    }

    /// The lock state of a file without an inode, found by `find` on
    /// first use.
    pub fn anon_locks(&self, find: impl FnOnce() -> Arc<lock::FileLocks>) -> Arc<lock::FileLocks> {
        self.locks.get_or_init(find).clone()
    }

    /// As [`anon_locks`](Self::anon_locks), without making lock state.
    pub fn anon_locks_if_any(&self) -> Option<Arc<lock::FileLocks>> {
        self.locks.get().cloned()
    }
}

impl Drop for FileDescription {
    /// The last reference to the description is gone: its flock lock and
    /// its OFD record locks go with it (Linux's `locks_remove_file`).
    fn drop(&mut self) {
        lock::description_gone(self);
        inotify::description_closed(self);
    }
}

#[derive(Clone)]
struct FdEntry {
    file: Arc<FileDescription>,
    cloexec: bool,
}

/// A process's file descriptor table.
pub struct FdTable {
    /// Names the table for as long as the sandbox lives (lock owners).
    id: u64,
    fds: Mutex<Vec<Option<FdEntry>>>,
}

impl Default for FdTable {
    fn default() -> FdTable {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        FdTable {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            fds: Mutex::new(Vec::new()),
        }
    }
}

impl FdTable {
    /// Closes every fd marked close-on-exec.
    pub fn close_on_exec(&self) {
        let closing: Vec<Arc<FileDescription>> = {
            let mut fds = self.fds.lock().unwrap_or_else(|e| e.into_inner());
            fds.iter_mut()
                .filter(|e| e.as_ref().is_some_and(|e| e.cloexec))
                .filter_map(|e| e.take().map(|e| e.file))
                .collect()
        };
        for f in &closing {
            self.closed(f);
        }
    }

    pub fn get(&self, fd: i32) -> Result<Arc<FileDescription>, Errno> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        let fds = self.fds.locked();
        fds.get(fd as usize)
            .and_then(|e| e.as_ref())
            .map(|e| e.file.clone())
            .ok_or(Errno::EBADF)
    }

    pub fn cloexec(&self, fd: i32) -> Result<bool, Errno> {
        let fds = self.fds.locked();
        fds.get(fd as usize)
            .and_then(|e| e.as_ref())
            .map(|e| e.cloexec)
            .ok_or(Errno::EBADF)
    }

    pub fn set_cloexec(&self, fd: i32, cloexec: bool) -> Result<(), Errno> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        let mut fds = self.fds.locked();
        match fds.get_mut(fd as usize).and_then(|e| e.as_mut()) {
            Some(e) => {
                e.cloexec = cloexec;
                Ok(())
            }
            None => Err(Errno::EBADF),
        }
    }

    /// Installs `file` at the lowest free fd >= `min`, below `limit`
    /// (RLIMIT_NOFILE). EMFILE when there is none; EINVAL when `min` is
    /// already past the limit.
    pub fn install(
        &self,
        file: Arc<FileDescription>,
        cloexec: bool,
        min: i32,
        limit: u64,
    ) -> Result<i32, Errno> {
        if min < 0 || min as u64 >= limit {
            return Err(Errno::EINVAL);
        }
        let mut fds = self.fds.locked();
        let mut fd = min as usize;
        while fd < fds.len() && fds[fd].is_some() {
            fd += 1;
        }
        if fd as u64 >= limit {
            return Err(Errno::EMFILE);
        }
        if fd >= fds.len() {
            fds.resize(fd + 1, None);
        }
        fds[fd] = Some(FdEntry { file, cloexec });
        Ok(fd as i32)
    }

    /// Puts `file` at exactly `fd`, closing what was there (dup2/dup3).
    pub fn install_at(
        &self,
        fd: i32,
        file: Arc<FileDescription>,
        cloexec: bool,
        limit: u64,
    ) -> Result<(), Errno> {
        if fd < 0 || fd as u64 >= limit {
            return Err(Errno::EBADF);
        }
        let old = {
            let mut fds = self.fds.locked();
            if fd as usize >= fds.len() {
                fds.resize(fd as usize + 1, None);
            }
            fds[fd as usize].replace(FdEntry { file, cloexec })
        };
        // The old description is released outside the lock.
        if let Some(old) = old {
            self.closed(&old.file);
        }
        Ok(())
    }

    pub fn remove(&self, fd: i32) -> Result<Arc<FileDescription>, Errno> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        let file = {
            let mut fds = self.fds.locked();
            fds.get_mut(fd as usize)
                .and_then(|e| e.take())
                .map(|e| e.file)
                .ok_or(Errno::EBADF)?
        };
        self.closed(&file);
        Ok(file)
    }

    /// The owner of this table's POSIX record locks (Linux's
    /// `current->files`).
    pub fn lock_owner(&self) -> lock::Owner {
        lock::Owner::Process(self.id as usize)
    }

    /// An fd of `file` was closed: the process's record locks on the file
    /// go (Linux's `locks_remove_posix`, whichever fd set them).
    fn closed(&self, file: &FileDescription) {
        lock::file_closed(file, self.lock_owner());
    }

    /// A copy of the table (the same descriptions at the same fds), for
    /// unsharing it.
    pub fn duplicate(&self) -> FdTable {
        let t = FdTable::default();
        *t.fds.locked() = self.fds.locked().clone();
        t
    }

    /// How many fd slots the table has had (one past the highest fd it
    /// ever held), for select's bound.
    pub fn table_len(&self) -> usize {
        self.fds.lock().unwrap().len()
    }

    /// The open fds in order, for /proc and close_range.
    pub fn open_fds(&self) -> Vec<i32> {
        let fds = self.fds.locked();
        fds.iter()
            .enumerate()
            .filter(|(_, e)| e.is_some())
            .map(|(i, _)| i as i32)
            .collect()
    }
}

impl Drop for FdTable {
    /// The table goes away with its process: every fd closes.
    fn drop(&mut self) {
        let entries = std::mem::take(self.fds.get_mut().unwrap());
        for e in entries.into_iter().flatten() {
            self.closed(&e.file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two sandboxes' kernels share nothing of the VFS: each numbers its
    /// own file systems and has its own internal mounts.
    #[test]
    fn vfs_state_is_per_kernel() {
        let (a, b) = (VfsState::default(), VfsState::default());
        let fa = inode::Filesystem::new(&a, "tmpfs", "x", 0, "");
        let fb = inode::Filesystem::new(&b, "tmpfs", "x", 0, "");
        assert_eq!(fa.dev, fb.dev);
        assert_ne!(inode::Filesystem::new(&a, "tmpfs", "y", 0, "").dev, fa.dev);
        assert!(!Arc::ptr_eq(&a.anon_mount().1, &b.anon_mount().1));
        assert!(Arc::ptr_eq(&a.anon_mount().1, &a.anon_mount().1));
    }
}
