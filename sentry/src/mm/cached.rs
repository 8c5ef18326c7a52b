//! Page caches of files whose data lives outside the memory file (host
//! files: the program `runsc` was given, and files the gofer donates):
//! their pages are read into the memory file on first use and kept there,
//! so that every mapping of the file (every exec of a program, every
//! process mapping a library) shares one copy, and private mappings copy a
//! page only when they write it.
//!
//! For files the sandbox also reads and writes (gofer files), the cache
//! is coherent with that I/O: the file system reads cached chunks from
//! the cache ([`CachedFile::read`]) and writes both the host file and the
//! cached chunks ([`CachedFile::wrote`]), and changes the cache's size
//! with the file's ([`CachedFile::set_size`], which takes pages past a
//! new end away from every mapping first). Shared writable mappings write
//! the cached pages; [`CachedFile::write_back`] writes to the host file
//! the cached pages that differ from it (the platform has no dirty bits,
//! so it compares). Changes made to the host file
//! from outside the sandbox are not seen while the cache lives.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use platform::PAGE_SIZE;

use super::memory_file::MemoryFile;
use super::{MappableFile, MemoryManager};
use crate::errno::Errno;
use crate::sync::LockExt;

/// Pages read at once: one host read and one contiguous memory-file
/// range per 64 KiB, so that a fault maps neighbours in one go.
const CHUNK_PAGES: u64 = 16;
const CHUNK_BYTES: u64 = CHUNK_PAGES * PAGE_SIZE;

static NEXT_ID: AtomicUsize = AtomicUsize::new(1 << 40);

/// A host file's pages, cached in the memory file.
pub struct CachedFile {
    id: usize,
    mf: Arc<MemoryFile>,
    fd: OwnedFd,
    size: AtomicU64,
    identity: (u64, u64, String),
    /// Chunk index -> memory-file offset of its first page.
    chunks: Mutex<HashMap<u64, u64>>,
    /// Address spaces that map the file, for taking pages away from them
    /// before they are freed.
    mappers: Mutex<Vec<Weak<MemoryManager>>>,
}

/// `write(2)`-style loop of pwrite on a host fd.
fn pwrite_all(fd: RawFd, mut src: &[u8], mut off: u64) -> Result<(), Errno> {
    while !src.is_empty() {
        // SAFETY: pwrite from our own buffer to a host fd.
        let n = unsafe { libc::pwrite(fd, src.as_ptr().cast(), src.len(), off as i64) };
        if n < 0 {
            let e = Errno::last();
            if e == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(Errno::EIO);
        }
        src = &src[n as usize..];
        off += n as u64;
    }
    Ok(())
}

/// Reads up to `dst.len()` bytes at `off` of a host fd; fewer only at
/// its end.
fn pread_full(fd: RawFd, dst: &mut [u8], off: u64) -> Result<usize, Errno> {
    let mut done = 0;
    while done < dst.len() {
        // SAFETY: pread into our own buffer from a host fd.
        let n = unsafe {
            libc::pread(
                fd,
                dst[done..].as_mut_ptr().cast(),
                dst.len() - done,
                (off + done as u64) as i64,
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
        done += n as usize;
    }
    Ok(done)
}

impl CachedFile {
    /// A cache over `fd` (a regular file, kept open by the cache, read
    /// from for pages not cached yet), whose size and identity are taken
    /// now.
    pub fn new(mf: &Arc<MemoryFile>, fd: OwnedFd, name: String) -> Result<Arc<CachedFile>, Errno> {
        let st = crate::hostcall::fstat(fd.as_raw_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(Errno::ENODEV);
        }
        Ok(Arc::new(CachedFile {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            mf: mf.clone(),
            fd,
            size: AtomicU64::new(st.st_size as u64),
            identity: (st.st_dev, st.st_ino, name),
            chunks: Mutex::new(HashMap::new()),
            mappers: Mutex::new(Vec::new()),
        }))
    }

    /// Bytes of the memory file the cache holds.
    pub fn cached_bytes(&self) -> u64 {
        self.chunks.locked().len() as u64 * CHUNK_BYTES
    }

    /// Reads `dst.len()` bytes at `off` (clipped to the file's size) from
    /// the cache where chunks are cached and with `host` (a pread of the
    /// host file) elsewhere; returns the bytes read.
    pub fn read(
        &self,
        dst: &mut [u8],
        off: u64,
        host: impl Fn(&mut [u8], u64) -> Result<usize, Errno>,
    ) -> Result<usize, Errno> {
        let chunks = self.chunks.locked();
        let size = self.size.load(Ordering::Relaxed);
        if off >= size {
            return Ok(0);
        }
        let len = (dst.len() as u64).min(size - off) as usize;
        let mut done = 0;
        while done < len {
            let at = off + done as u64;
            let chunk = at / CHUNK_BYTES;
            let within = at % CHUNK_BYTES;
            let n = ((CHUNK_BYTES - within) as usize).min(len - done);
            match chunks.get(&chunk) {
                Some(&mo) => self.mf.read_io(mo + within, &mut dst[done..done + n]),
                None => {
                    let got = host(&mut dst[done..done + n], at)?;
                    if got < n {
                        // The host file ends early: zeroes up to the size
                        // the sandbox knows.
                        dst[done + got..done + n].fill(0);
                    }
                }
            }
            done += n;
        }
        Ok(len)
    }

    /// Records that `src` was written to the host file at `off`: cached
    /// chunks take the bytes too, and the size grows to cover them.
    /// `write` does the host write, under the cache's lock (so that no
    /// chunk is read in between).
    pub fn wrote(
        &self,
        src: &[u8],
        off: u64,
        write: impl FnOnce() -> Result<usize, Errno>,
    ) -> Result<usize, Errno> {
        let chunks = self.chunks.locked();
        let n = write()?;
        let mut done = 0;
        while done < n {
            let at = off + done as u64;
            let chunk = at / CHUNK_BYTES;
            let within = at % CHUNK_BYTES;
            let k = ((CHUNK_BYTES - within) as usize).min(n - done);
            if let Some(&mo) = chunks.get(&chunk) {
                self.mf.write_io(mo + within, &src[done..done + k]);
            }
            done += k;
        }
        self.size.fetch_max(off + n as u64, Ordering::Relaxed);
        Ok(n)
    }

    /// Makes the host file hold what the cached pages hold, through `fd`
    /// (open for writing): each cached page (up to the file's size) that
    /// differs from the host file's is written. With no dirty bits this
    /// compares; pages no shared mapping changed are not written, so the
    /// host file's times and allocation stay as they are.
    pub fn write_back(&self, fd: RawFd) -> Result<(), Errno> {
        let chunks = self.chunks.locked();
        let size = self.size.load(Ordering::Relaxed);
        let mut list: Vec<(u64, u64)> = chunks.iter().map(|(&c, &o)| (c, o)).collect();
        list.sort_unstable();
        let mut mine = vec![0u8; CHUNK_BYTES as usize];
        let mut host = vec![0u8; CHUNK_BYTES as usize];
        for (chunk, mo) in list {
            let start = chunk * CHUNK_BYTES;
            if start >= size {
                continue;
            }
            let len = (size - start).min(CHUNK_BYTES) as usize;
            self.mf.read_io(mo, &mut mine[..len]);
            let got = pread_full(self.fd.as_raw_fd(), &mut host[..len], start)?;
            host[got..len].fill(0);
            for p in (0..len).step_by(PAGE_SIZE as usize) {
                let e = (p + PAGE_SIZE as usize).min(len);
                if mine[p..e] != host[p..e] {
                    pwrite_all(fd, &mine[p..e], start + p as u64)?;
                }
            }
        }
        Ok(())
    }

    /// Sets the size after the host file was truncated to `size`: pages
    /// past the new end are taken away from every mapping (private copies
    /// too, as Linux's truncation drops them) and freed; the part of the
    /// last chunk past the end reads zeroes, as a grown file does there.
    pub fn set_size(&self, size: u64) {
        let old = self.size.swap(size, Ordering::Relaxed);
        let (gone, from) = {
            let mut chunks = self.chunks.locked();
            let edge = size.min(old);
            let chunk = edge / CHUNK_BYTES;
            if let Some(&mo) = chunks.get(&chunk) {
                let within = edge % CHUNK_BYTES;
                if within != 0 {
                    self.mf.zero(mo + within, CHUNK_BYTES - within);
                }
            }
            if size >= old {
                return;
            }
            let first = size.div_ceil(CHUNK_BYTES);
            let gone: Vec<u64> = chunks.keys().copied().filter(|&c| c >= first).collect();
            let gone: Vec<u64> = gone.iter().filter_map(|c| chunks.remove(c)).collect();
            (gone, size.div_ceil(PAGE_SIZE) * PAGE_SIZE)
        };
        self.invalidate(from, u64::MAX, true);
        for mo in gone {
            self.mf.free(mo, CHUNK_BYTES);
        }
    }

    /// Forgets every cached page (after the host file changed in a way the
    /// cache cannot follow: fallocate's hole punching, collapsing,
    /// inserting), with `size` the file's size now. Mappings read the file
    /// again at their next access; private copies stay.
    pub fn reload(&self, size: u64) {
        let gone: Vec<u64> = {
            let mut chunks = self.chunks.locked();
            self.size.store(size, Ordering::Relaxed);
            chunks.drain().map(|(_, o)| o).collect()
        };
        self.invalidate(0, u64::MAX, false);
        for mo in gone {
            self.mf.free(mo, CHUNK_BYTES);
        }
    }

    /// Takes the file's pages in `[start, end)` away from every address
    /// space that maps them. Called with no lock of the cache held.
    fn invalidate(&self, start: u64, end: u64, even_cows: bool) {
        let mms: Vec<Arc<MemoryManager>> = self
            .mappers
            .locked()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for mm in mms {
            mm.invalidate_file(self.id, start, end, even_cows);
        }
    }
}

impl MappableFile for CachedFile {
    fn id(&self) -> usize {
        self.id
    }

    fn add_mapper(&self, mm: &Arc<MemoryManager>) {
        let mut v = self.mappers.locked();
        v.retain(|w| w.strong_count() > 0);
        if !v.iter().any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(mm))) {
            v.push(Arc::downgrade(mm));
        }
    }

    fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    fn page(&self, index: u64) -> Result<u64, Errno> {
        let mut chunks = self.chunks.locked();
        let size = self.size.load(Ordering::Relaxed);
        if index.checked_mul(PAGE_SIZE).is_none_or(|o| o >= size) {
            return Err(Errno::EFAULT);
        }
        let chunk = index / CHUNK_PAGES;
        let within = (index % CHUNK_PAGES) * PAGE_SIZE;
        if let Some(&off) = chunks.get(&chunk) {
            return Ok(off + within);
        }
        let off = self.mf.allocate(CHUNK_BYTES)?;
        let start = chunk * CHUNK_BYTES;
        let len = (size - start).min(CHUNK_BYTES);
        if let Err(e) = self.mf.fill_from(off, len, self.fd.as_raw_fd(), start) {
            self.mf.free(off, CHUNK_BYTES);
            return Err(e);
        }
        chunks.insert(chunk, off);
        Ok(off + within)
    }

    fn identity(&self) -> (u64, u64, String) {
        self.identity.clone()
    }
}

impl Drop for CachedFile {
    fn drop(&mut self) {
        for (_, off) in self
            .chunks
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            self.mf.free(off, CHUNK_BYTES);
        }
    }
}
