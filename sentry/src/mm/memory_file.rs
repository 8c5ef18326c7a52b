//! The memory file: one memfd that holds every page of guest memory.
//!
//! The sentry maps the whole file once, shared, and reads and writes guest
//! memory through that mapping; platforms map ranges of the same file into
//! guest address spaces. Ranges are handed out by a simple first-fit
//! allocator; freed ranges are punched out of the file so that their memory
//! goes back to the host and they read as zeroes when reused.

use crate::sync::LockExt;
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use crate::errno::Errno;

use platform::PAGE_SIZE;

/// Virtual size of the memory file. It is sparse: only touched pages use
/// memory.
const FILE_SIZE: u64 = 1 << 40;

/// An offset past the end of the file: a mapping of the file there faults
/// with SIGBUS when accessed.
pub const BEYOND_END: u64 = FILE_SIZE;

pub struct MemoryFile {
    fd: OwnedFd,
    base: *mut u8,
    state: Mutex<Allocator>,
    /// The vDSO and its parameter page, made on first use.
    vdso: Mutex<Option<Arc<crate::vdso::Vdso>>>,
}

// SAFETY: `base` points to a MAP_SHARED mapping that lives as long as the
// MemoryFile; all access through it goes through raw-pointer copies whose
// callers own the ranges they touch.
unsafe impl Send for MemoryFile {}
// SAFETY: as above; the allocator state is behind a Mutex.
unsafe impl Sync for MemoryFile {}

struct Allocator {
    /// Free ranges below `top`: start -> length.
    free: BTreeMap<u64, u64>,
    /// Allocated ranges with more than one owner (after a fork shared
    /// private memory copy-on-write): start -> (end, extra owners). A range
    /// not listed has one owner. Extents, so a fork costs one entry per
    /// range, not per page.
    shared: BTreeMap<u64, (u64, u32)>,
    /// Everything at or above `top` is free.
    top: u64,
    /// Bytes currently allocated.
    used: u64,
}

impl Allocator {
    /// Splits the shared-range entry containing `at`, if any, at `at`.
    fn split_shared(&mut self, at: u64) {
        if let Some((&s, &(e, n))) = self.shared.range(..at).next_back() {
            if e > at {
                self.shared.insert(s, (at, n));
                self.shared.insert(at, (e, n));
            }
        }
    }
}

impl MemoryFile {
    pub fn new() -> std::io::Result<MemoryFile> {
        let name = c"runsc-memory";
        // SAFETY: memfd_create with a valid C string.
        let raw = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: ftruncate on our own fd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), FILE_SIZE as i64) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new shared mapping of our own file; nothing else is
        // mapped at the address the kernel picks.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                FILE_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(MemoryFile {
            fd,
            base: base as *mut u8,
            state: Mutex::new(Allocator {
                free: BTreeMap::new(),
                shared: BTreeMap::new(),
                // Offset 0 is never handed out, so that 0 can mean "none".
                top: PAGE_SIZE,
                used: 0,
            }),
            vdso: Mutex::new(None),
        })
    }

    /// The vDSO every address space of this memory file maps, made (its
    /// pages allocated here) on first use.
    pub fn vdso(&self) -> Result<Arc<crate::vdso::Vdso>, Errno> {
        let mut slot = self.vdso.locked();
        if let Some(v) = &*slot {
            return Ok(v.clone());
        }
        let v = crate::vdso::Vdso::new(self)?;
        *slot = Some(v.clone());
        Ok(v)
    }

    /// Maps `[off, off+len)` (page-aligned) of the file a second time, on
    /// its own: the [`Window`] stays valid as long as it lives, whatever
    /// happens to this MemoryFile.
    pub fn window(&self, off: u64, len: u64) -> Result<Window, Errno> {
        assert!(off.is_multiple_of(PAGE_SIZE) && len > 0 && off + len <= FILE_SIZE);
        // SAFETY: a new shared mapping of our own file at an address the
        // kernel picks; it replaces nothing.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.fd.as_raw_fd(),
                off as i64,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Errno::ENOMEM);
        }
        Ok(Window {
            base: base as *mut u8,
            len: len as usize,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Allocates `len` (page-aligned) bytes of zeroed memory.
    pub fn allocate(&self, len: u64) -> Result<u64, Errno> {
        debug_assert!(len.is_multiple_of(PAGE_SIZE) && len > 0);
        let mut st = self.state.locked();
        let found = st
            .free
            .iter()
            .find(|(_, &l)| l >= len)
            .map(|(&s, &l)| (s, l));
        let off = if let Some((start, flen)) = found {
            st.free.remove(&start);
            if flen > len {
                st.free.insert(start + len, flen - len);
            }
            start
        } else {
            if st.top + len > FILE_SIZE {
                return Err(Errno::ENOMEM);
            }
            let s = st.top;
            st.top += len;
            s
        };
        st.used += len;
        Ok(off)
    }

    /// Adds an owner to the allocated range `[off, off+len)`: it is freed
    /// only when every owner has freed it.
    pub fn share(&self, off: u64, len: u64) {
        if len == 0 {
            return;
        }
        let mut st = self.state.locked();
        st.split_shared(off);
        st.split_shared(off + len);
        let mut cur = off;
        let end = off + len;
        let mut updates = Vec::new();
        for (&s, &(e, n)) in st.shared.range(off..end) {
            if s > cur {
                updates.push((cur, s, 1));
            }
            updates.push((s, e, n + 1));
            cur = e;
        }
        if cur < end {
            updates.push((cur, end, 1));
        }
        for (s, e, n) in updates {
            st.shared.insert(s, (e, n));
        }
    }

    /// Whether any page of `[off, off+len)` has more than one owner.
    pub fn is_shared(&self, off: u64, len: u64) -> bool {
        let st = self.state.locked();
        let end = off + len;
        if let Some((_, &(e, _))) = st.shared.range(..=off).next_back() {
            if e > off {
                return true;
            }
        }
        st.shared.range(off..end).next().is_some()
    }

    /// Drops one owner of `[off, off+len)`; the parts left with none go
    /// back to the allocator and their memory to the host.
    pub fn free(&self, off: u64, len: u64) {
        if len == 0 {
            return;
        }
        let mut freed = Vec::new();
        {
            let mut st = self.state.locked();
            if st.shared.is_empty() {
                freed.push((off, off + len));
            } else {
                st.split_shared(off);
                st.split_shared(off + len);
                let end = off + len;
                let mut cur = off;
                let entries: Vec<(u64, u64, u32)> = st
                    .shared
                    .range(off..end)
                    .map(|(&s, &(e, n))| (s, e, n))
                    .collect();
                for (s, e, n) in entries {
                    if s > cur {
                        freed.push((cur, s));
                    }
                    if n > 1 {
                        st.shared.insert(s, (e, n - 1));
                    } else {
                        st.shared.remove(&s);
                    }
                    cur = e;
                }
                if cur < end {
                    freed.push((cur, end));
                }
            }
        }
        for (s, e) in freed {
            self.release(s, e - s);
        }
    }

    /// Returns `[off, off+len)`, which nobody owns any more, to the
    /// allocator and its memory to the host.
    fn release(&self, off: u64, len: u64) {
        // SAFETY: punches a hole in our own file; the range is no longer
        // used by anyone.
        unsafe {
            libc::fallocate(
                self.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off as i64,
                len as i64,
            );
        }
        let mut st = self.state.locked();
        st.used -= len;
        let mut start = off;
        let mut end = off + len;
        // Coalesce with neighbours.
        if let Some((&ps, &pl)) = st.free.range(..start).next_back() {
            if ps + pl == start {
                st.free.remove(&ps);
                start = ps;
            }
        }
        if let Some(&nl) = st.free.get(&end) {
            st.free.remove(&end);
            end += nl;
        }
        if end == st.top {
            st.top = start;
        } else {
            st.free.insert(start, end - start);
        }
    }

    /// Discards the contents of `[off, off+len)` (allocated, page-aligned):
    /// its memory goes back to the host and it reads as zeroes, in every
    /// mapping of it.
    pub fn punch(&self, off: u64, len: u64) {
        assert!(off + len <= FILE_SIZE);
        // SAFETY: punches a hole in our own file, in a range the caller
        // owns; no Rust reference points into the mapping.
        unsafe {
            libc::fallocate(
                self.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off as i64,
                len as i64,
            );
        }
    }

    /// Bytes of guest memory currently allocated.
    pub fn used(&self) -> u64 {
        self.state.locked().used
    }

    /// Copies `dst.len()` bytes at file offset `off` out of the file.
    pub fn read(&self, off: u64, dst: &mut [u8]) {
        assert!(off + dst.len() as u64 <= FILE_SIZE);
        // SAFETY: the range lies inside our mapping (checked above), which
        // is readable and never unmapped while `self` lives. The guest may
        // write the same bytes concurrently; we copy whatever is there.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(off as usize), dst.as_mut_ptr(), dst.len())
        }
    }

    /// Atomically replaces the aligned 32-bit word at `off` with `f(old)`
    /// (None: leave it), returning the old value: guest threads on other
    /// CPUs may change the word at the same time (futex operations).
    pub fn update_u32(&self, off: u64, mut f: impl FnMut(u32) -> Option<u32>) -> u32 {
        assert!(off + 4 <= FILE_SIZE && off.is_multiple_of(4));
        // SAFETY: the word lies inside our mapping, aligned, and the
        // mapping lives as long as `self`; every access the sentry makes
        // to it here is atomic, and the guest's own accesses are hardware
        // ones on the same memory.
        let a = unsafe { &*(self.base.add(off as usize) as *const std::sync::atomic::AtomicU32) };
        let mut cur = a.load(std::sync::atomic::Ordering::SeqCst);
        loop {
            let Some(new) = f(cur) else {
                return cur;
            };
            match a.compare_exchange(
                cur,
                new,
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
            ) {
                Ok(_) => return cur,
                Err(v) => cur = v,
            }
        }
    }

    /// Copies `src` into the file at offset `off`.
    pub fn write(&self, off: u64, src: &[u8]) {
        assert!(off + src.len() as u64 <= FILE_SIZE);
        // SAFETY: as in `read`; the mapping is writable.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.base.add(off as usize), src.len())
        }
    }

    /// Copies `len` bytes at file offset `src` to file offset `dst` with
    /// pread into the sentry's mapping (see [`read_io`](Self::read_io)):
    /// file data to guest memory or back, with no Rust reference to either.
    pub fn copy_io(&self, src: u64, dst: u64, len: u64) {
        assert!(src.checked_add(len).is_some_and(|e| e <= FILE_SIZE));
        assert!(dst.checked_add(len).is_some_and(|e| e <= FILE_SIZE));
        let mut done = 0;
        while done < len {
            // SAFETY: the kernel writes `[dst+done, dst+len)` of our mapping,
            // which lies inside it (checked above) and stays mapped while
            // `self` lives; no Rust reference points into it. Concurrent
            // guest accesses only change the bytes' values.
            let n = unsafe {
                libc::pread(
                    self.fd.as_raw_fd(),
                    self.base.add((dst + done) as usize).cast(),
                    (len - done) as usize,
                    (src + done) as i64,
                )
            };
            if n <= 0 {
                // Only EINTR can happen on a memfd; fall back to the mapping.
                self.copy(src + done, dst + done, len - done);
                return;
            }
            done += n as u64;
        }
    }

    /// Reads `dst.len()` bytes at `off` with pread: for file data, which
    /// the sentry's mapping has usually never touched, this copies without
    /// taking a page fault per page.
    pub fn read_io(&self, off: u64, dst: &mut [u8]) {
        let mut done = 0;
        while done < dst.len() {
            // SAFETY: pread into our own buffer from our own fd.
            let n = unsafe {
                libc::pread(
                    self.fd.as_raw_fd(),
                    dst[done..].as_mut_ptr().cast(),
                    dst.len() - done,
                    (off + done as u64) as i64,
                )
            };
            if n <= 0 {
                // Only EINTR can happen on a memfd; fall back to the mapping.
                self.read(off + done as u64, &mut dst[done..]);
                return;
            }
            done += n as usize;
        }
    }

    /// Writes `src` at `off` with pwrite (see [`read_io`](Self::read_io)).
    pub fn write_io(&self, off: u64, src: &[u8]) {
        let mut done = 0;
        while done < src.len() {
            // SAFETY: pwrite from our own buffer to our own fd.
            let n = unsafe {
                libc::pwrite(
                    self.fd.as_raw_fd(),
                    src[done..].as_ptr().cast(),
                    src.len() - done,
                    (off + done as u64) as i64,
                )
            };
            if n <= 0 {
                self.write(off + done as u64, &src[done..]);
                return;
            }
            done += n as usize;
        }
    }

    /// Fills `len` bytes at `off` with the data of host file `fd` from
    /// `file_off` (pread straight into the sentry's mapping); bytes past
    /// the file's end are left as they are.
    pub fn fill_from(&self, off: u64, len: u64, fd: RawFd, file_off: u64) -> Result<(), Errno> {
        assert!(off.checked_add(len).is_some_and(|e| e <= FILE_SIZE));
        let mut done = 0;
        while done < len {
            // SAFETY: the kernel writes `[off+done, off+len)` of our mapping,
            // which lies inside it (checked above) and stays mapped while
            // `self` lives; the range belongs to the caller, and no Rust
            // reference points into it.
            let n = unsafe {
                libc::pread(
                    fd,
                    self.base.add((off + done) as usize).cast(),
                    (len - done) as usize,
                    (file_off + done) as i64,
                )
            };
            if n < 0 {
                let e = Errno::last();
                if e == Errno::EINTR {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                break;
            }
            done += n as u64;
        }
        Ok(())
    }

    /// One `pread` of up to `len` bytes of host file `fd` at `file_off`
    /// straight into `[off, off+len)` of the file (guest memory): the
    /// bytes read.
    pub fn pread_into(
        &self,
        off: u64,
        len: usize,
        fd: RawFd,
        file_off: u64,
    ) -> Result<usize, Errno> {
        assert!(off.checked_add(len as u64).is_some_and(|e| e <= FILE_SIZE));
        loop {
            // SAFETY: the kernel writes at most `len` bytes at `off` of our
            // mapping, inside it (checked above); the range is guest memory
            // the caller keeps mapped, and no Rust reference points into it.
            let n = unsafe {
                libc::pread(fd, self.base.add(off as usize).cast(), len, file_off as i64)
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = Errno::last();
            if e != Errno::EINTR {
                return Err(e);
            }
        }
    }

    /// Zeroes `len` bytes at `off`.
    pub fn zero(&self, off: u64, len: u64) {
        assert!(off + len <= FILE_SIZE);
        // SAFETY: as in `write`.
        unsafe { std::ptr::write_bytes(self.base.add(off as usize), 0, len as usize) }
    }

    /// Copies `len` bytes from `src` to `dst`, both file offsets.
    pub fn copy(&self, src: u64, dst: u64, len: u64) {
        assert!(src + len <= FILE_SIZE && dst + len <= FILE_SIZE);
        // SAFETY: both ranges are inside our mapping; `copy` allows overlap.
        unsafe {
            std::ptr::copy(
                self.base.add(src as usize),
                self.base.add(dst as usize),
                len as usize,
            )
        }
    }
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `new`; no reference into it
        // outlives `self`.
        unsafe { libc::munmap(self.base as *mut libc::c_void, FILE_SIZE as usize) };
    }
}

/// A mapping of some pages of the memory file of their own (see
/// [`MemoryFile::window`]), for memory the sentry and guests share word
/// by word.
pub struct Window {
    base: *mut u8,
    len: usize,
}

// SAFETY: the window is a MAP_SHARED mapping owned by this value; it is only
// reached through atomics.
unsafe impl Send for Window {}
// SAFETY: as above.
unsafe impl Sync for Window {}

impl Window {
    /// The window as 64-bit words, which guests may read (and, for all the
    /// sentry knows, write) at any time: only atomic accesses are sound.
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is page-aligned, readable and writable, and
        // stays mapped while `self` lives; AtomicU64 has the size and
        // alignment of u64, and atomic accesses are sound on memory other
        // threads and processes access concurrently.
        unsafe { std::slice::from_raw_parts(self.base as *const AtomicU64, self.len / 8) }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `window`; the slice `words`
        // returns cannot outlive `self`.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_free_coalesce_and_zero() {
        let mf = MemoryFile::new().unwrap();
        let a = mf.allocate(PAGE_SIZE).unwrap();
        let b = mf.allocate(2 * PAGE_SIZE).unwrap();
        assert_ne!(a, b);
        mf.write(a, b"hello");
        let mut buf = [0u8; 5];
        mf.read(a, &mut buf);
        assert_eq!(&buf, b"hello");
        mf.free(a, PAGE_SIZE);
        let c = mf.allocate(PAGE_SIZE).unwrap();
        assert_eq!(c, a, "first fit reuses the freed page");
        mf.read(c, &mut buf);
        assert_eq!(buf, [0; 5], "reused memory reads as zeroes");
        mf.free(c, PAGE_SIZE);
        mf.free(b, 2 * PAGE_SIZE);
        assert_eq!(mf.used(), 0);
        assert_eq!(
            mf.allocate(3 * PAGE_SIZE).unwrap(),
            a,
            "free ranges coalesce"
        );
    }

    #[test]
    fn shared_ranges_are_freed_by_their_last_owner() {
        let mf = MemoryFile::new().unwrap();
        let a = mf.allocate(4 * PAGE_SIZE).unwrap();
        mf.write(a + PAGE_SIZE, b"x");
        mf.share(a + PAGE_SIZE, 2 * PAGE_SIZE);
        assert!(mf.is_shared(a, 2 * PAGE_SIZE));
        assert!(!mf.is_shared(a, PAGE_SIZE));
        assert!(!mf.is_shared(a + 3 * PAGE_SIZE, PAGE_SIZE));
        // One owner lets go of everything: the unshared pages go.
        mf.free(a, 4 * PAGE_SIZE);
        assert_eq!(mf.used(), 2 * PAGE_SIZE);
        let mut b = [0u8; 1];
        mf.read(a + PAGE_SIZE, &mut b);
        assert_eq!(&b, b"x", "the other owner's pages survive");
        assert!(!mf.is_shared(a + PAGE_SIZE, 2 * PAGE_SIZE));
        mf.free(a + PAGE_SIZE, PAGE_SIZE);
        mf.free(a + 2 * PAGE_SIZE, PAGE_SIZE);
        assert_eq!(mf.used(), 0);
    }
}
