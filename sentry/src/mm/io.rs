//! Checked copies between the sentry and guest memory.
//!
//! Every guest pointer is checked against the VMAs: an address the guest may
//! not access that way gives `EFAULT`, never a sentry fault. Bytes move
//! through the sentry's own mapping of the memory file.

use crate::errno::Errno;

use super::MemoryManager;

/// Plain data: any bit pattern is a valid value and there is no padding
/// that could leak sentry memory (callers zero structs before filling).
///
/// # Safety
/// Implement only for `repr(C)` types made of integers (and arrays of
/// them) that are valid for every bit pattern and have no implicit
/// padding: every byte belongs to a field (padding is an explicit field).
/// Each struct implementing it says so with [`assert_no_padding!`].
pub unsafe trait Pod: Copy + 'static {}

/// The size of the field that `_f` picks out of a `T`.
pub const fn field_size<T, F>(_f: fn(&T) -> &F) -> usize {
    std::mem::size_of::<F>()
}

/// Fails the build unless the struct's size is the sum of the sizes of
/// the fields listed: every field must be listed, and there is then no
/// byte of implicit padding.
#[macro_export]
macro_rules! assert_no_padding {
    ($t:ty { $($f:ident),+ $(,)? }) => {
        $crate::assert_no_padding!($t { $($f),+ } + 0);
    };
    // `+ N`: N bytes of explicit padding fields that are private (libc's).
    ($t:ty { $($f:ident),+ $(,)? } + $private:expr) => {
        const _: () = assert!(
            ::std::mem::size_of::<$t>()
                == $private $(+ $crate::mm::io::field_size(|v: &$t| &v.$f))+,
            concat!(stringify!($t), " has implicit padding")
        );
    };
}

// SAFETY: integers are valid for every bit pattern.
unsafe impl Pod for u8 {}
// SAFETY: as above.
unsafe impl Pod for u16 {}
// SAFETY: as above.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for u64 {}
// SAFETY: as above.
unsafe impl Pod for i32 {}
// SAFETY: as above.
unsafe impl Pod for i64 {}
// SAFETY: integer arrays are valid for every bit pattern.
unsafe impl<const N: usize> Pod for [u8; N] {}
// SAFETY: integer arrays are valid for every bit pattern.
unsafe impl<const N: usize> Pod for [u64; N] {}
// SAFETY: two i64 fields.
unsafe impl Pod for libc::timespec {}
assert_no_padding!(libc::timespec { tv_sec, tv_nsec });
// SAFETY: two i64 fields.
unsafe impl Pod for libc::timeval {}
assert_no_padding!(libc::timeval { tv_sec, tv_usec });
// SAFETY: integer fields only (with explicit padding fields in libc).
unsafe impl Pod for libc::stat {}
assert_no_padding!(
    libc::stat {
        st_dev,
        st_ino,
        st_nlink,
        st_mode,
        st_uid,
        st_gid,
        st_rdev,
        st_size,
        st_blksize,
        st_blocks,
        st_atime,
        st_atime_nsec,
        st_mtime,
        st_mtime_nsec,
        st_ctime,
        st_ctime_nsec,
    } + 4
        + 24
); // libc's private `__pad0: c_int` and `__unused: [i64; 3]`
   // SAFETY: arrays of c_char.
unsafe impl Pod for libc::utsname {}
assert_no_padding!(libc::utsname {
    sysname,
    nodename,
    release,
    version,
    machine,
    domainname,
});
// SAFETY: two u64 fields.
unsafe impl Pod for libc::rlimit {}
assert_no_padding!(libc::rlimit { rlim_cur, rlim_max });
// SAFETY: a pointer-sized integer and a length.
unsafe impl Pod for libc::iovec {}
assert_no_padding!(libc::iovec { iov_base, iov_len });
// SAFETY: four u16 fields.
unsafe impl Pod for libc::winsize {}
assert_no_padding!(libc::winsize {
    ws_row,
    ws_col,
    ws_xpixel,
    ws_ypixel,
});
// SAFETY: an i32 and two i16 fields.
unsafe impl Pod for libc::pollfd {}
assert_no_padding!(libc::pollfd {
    fd,
    events,
    revents
});
// The signal structures are Pod where they are defined.
assert_no_padding!(crate::kernel::signal::SigAction {
    handler,
    flags,
    restorer,
    mask
});
assert_no_padding!(crate::kernel::signal::SignalStack {
    sp,
    flags,
    _pad,
    size
});

/// The bytes of a plain-data value.
pub fn as_bytes<T: Pod>(v: &T) -> &[u8] {
    // SAFETY: T is Pod, so all its size_of bytes are initialized integers.
    unsafe { std::slice::from_raw_parts(v as *const T as *const u8, std::mem::size_of::<T>()) }
}

/// A plain-data value from bytes (`b` is at least `size_of::<T>()` long).
pub fn from_bytes<T: Pod>(b: &[u8]) -> T {
    assert!(b.len() >= std::mem::size_of::<T>());
    // SAFETY: T is Pod, so any bytes make a valid T; read_unaligned copes
    // with any alignment of `b`.
    unsafe { std::ptr::read_unaligned(b.as_ptr() as *const T) }
}

impl MemoryManager {
    /// How much of `[addr, addr+len)` lies below the top of the guest
    /// address space.
    fn clip(&self, addr: u64, len: u64) -> u64 {
        self.max_addr().saturating_sub(addr).min(len)
    }

    /// Copies guest memory at `addr` into `dst`; EFAULT unless all of it is
    /// readable.
    pub fn copy_in(&self, addr: u64, dst: &mut [u8]) -> Result<(), Errno> {
        if self.copy_in_partial(addr, dst) == dst.len() {
            Ok(())
        } else {
            Err(Errno::EFAULT)
        }
    }

    /// Copies as much of `dst` as is readable from `addr` on; returns the
    /// number of bytes copied.
    pub fn copy_in_partial(&self, addr: u64, dst: &mut [u8]) -> usize {
        let n = self.clip(addr, dst.len() as u64) as usize;
        let dst = &mut dst[..n];
        let mf = self.memory_file().clone();
        let mut pos = 0usize;
        self.for_each_range(addr, dst.len() as u64, false, false, |off, n| {
            mf.read(off, &mut dst[pos..pos + n as usize]);
            pos += n as usize;
        }) as usize
    }

    /// Copies `src` to guest memory at `addr`; EFAULT unless all of it is
    /// writable.
    pub fn copy_out(&self, addr: u64, src: &[u8]) -> Result<(), Errno> {
        if self.copy_out_partial(addr, src) == src.len() {
            Ok(())
        } else {
            Err(Errno::EFAULT)
        }
    }

    /// Copies as much of `src` as is writable at `addr` on.
    pub fn copy_out_partial(&self, addr: u64, src: &[u8]) -> usize {
        self.copy_out_inner(addr, src, false)
    }

    /// Writes regardless of protection (the loader filling read-only
    /// segments, as the kernel's own writes do).
    pub fn copy_out_force(&self, addr: u64, src: &[u8]) -> Result<(), Errno> {
        if self.copy_out_inner(addr, src, true) == src.len() {
            Ok(())
        } else {
            Err(Errno::EFAULT)
        }
    }

    fn copy_out_inner(&self, addr: u64, src: &[u8], force: bool) -> usize {
        let src = &src[..self.clip(addr, src.len() as u64) as usize];
        let mf = self.memory_file().clone();
        let mut pos = 0usize;
        self.for_each_range(addr, src.len() as u64, true, force, |off, n| {
            mf.write(off, &src[pos..pos + n as usize]);
            pos += n as usize;
        }) as usize
    }

    /// Bytes writable from `addr` on, up to `len`.
    pub fn writable_len(&self, addr: u64, len: u64) -> u64 {
        let len = self.clip(addr, len);
        self.for_each_range(addr, len, true, false, |_, _| {})
    }

    /// Reads a value of plain data.
    pub fn read_obj<T: Pod>(&self, addr: u64) -> Result<T, Errno> {
        let mut buf = vec![0u8; std::mem::size_of::<T>()];
        self.copy_in(addr, &mut buf)?;
        Ok(from_bytes(&buf))
    }

    /// Writes a value of plain data.
    pub fn write_obj<T: Pod>(&self, addr: u64, v: &T) -> Result<(), Errno> {
        self.copy_out(addr, as_bytes(v))
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the
    /// NUL). ENAMETOOLONG if no NUL comes within `max` bytes.
    pub fn read_cstring(&self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut a = addr;
        loop {
            // Read up to the end of the page, so a string that ends just
            // before an unmapped page is fine.
            let chunk = (platform::PAGE_SIZE - (a % platform::PAGE_SIZE)) as usize;
            let mut buf = vec![0u8; chunk];
            let n = self.copy_in_partial(a, &mut buf);
            if let Some(nul) = buf[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&buf[..nul]);
                if out.len() > max {
                    return Err(Errno::ENAMETOOLONG);
                }
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
            if n < chunk {
                return Err(Errno::EFAULT);
            }
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            a += chunk as u64;
        }
    }
}
