//! Page caches of files whose data lives outside the memory file (host
//! files: the program `runsc` was given, and later files the gofer
//! donates): their pages are read into the memory file on first use and
//! kept there, so that every mapping of the file (every exec of a
//! program, every process mapping a library) shares one copy, and private
//! mappings copy a page only when they write it.
//!
//! The cache assumes the file's data does not change under it while the
//! sandbox maps it: right for executables and read-only image files,
//! which is what it serves.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    size: u64,
    identity: (u64, u64, String),
    /// Chunk index -> memory-file offset of its first page.
    chunks: Mutex<HashMap<u64, u64>>,
}

impl CachedFile {
    /// A cache over `fd` (a regular file, kept open by the cache), whose
    /// size and identity are taken now.
    pub fn new(mf: &Arc<MemoryFile>, fd: OwnedFd, name: String) -> Result<Arc<CachedFile>, Errno> {
        let st = crate::hostcall::fstat(fd.as_raw_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(Errno::ENODEV);
        }
        Ok(Arc::new(CachedFile {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            mf: mf.clone(),
            fd,
            size: st.st_size as u64,
            identity: (st.st_dev, st.st_ino, name),
            chunks: Mutex::new(HashMap::new()),
        }))
    }

    /// Bytes of the memory file the cache holds.
    pub fn cached_bytes(&self) -> u64 {
        self.chunks.locked().len() as u64 * CHUNK_BYTES
    }
}

impl MappableFile for CachedFile {
    fn id(&self) -> usize {
        self.id
    }

    fn add_mapper(&self, _mm: &Arc<MemoryManager>) {
        // The file never shrinks under the cache: nothing to take back.
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn page(&self, index: u64) -> Result<u64, Errno> {
        if index.checked_mul(PAGE_SIZE).is_none_or(|o| o >= self.size) {
            return Err(Errno::EFAULT);
        }
        let chunk = index / CHUNK_PAGES;
        let within = (index % CHUNK_PAGES) * PAGE_SIZE;
        let mut chunks = self.chunks.locked();
        if let Some(&off) = chunks.get(&chunk) {
            return Ok(off + within);
        }
        let off = self.mf.allocate(CHUNK_BYTES)?;
        let start = chunk * CHUNK_BYTES;
        let len = (self.size - start).min(CHUNK_BYTES);
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
