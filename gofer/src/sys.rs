//! Thin, checked wrappers over the host calls the server makes. Every
//! function returns `Err(errno)` instead of a raw `-1`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

pub type SysResult<T> = Result<T, i32>;

pub fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Turns a `-1`-on-error return into a result.
fn check(rc: libc::c_long) -> SysResult<libc::c_long> {
    if rc < 0 {
        Err(errno())
    } else {
        Ok(rc)
    }
}

pub fn cstr(b: &[u8]) -> SysResult<CString> {
    CString::new(b).map_err(|_| libc::EINVAL)
}

fn own(fd: libc::c_long) -> OwnedFd {
    // SAFETY: `fd` was just returned by the kernel as a new descriptor.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// `openat(dir, name, flags, mode)`; the result is a new fd.
pub fn openat(dir: BorrowedFd<'_>, name: &[u8], flags: i32, mode: u32) -> SysResult<OwnedFd> {
    let c = cstr(name)?;
    loop {
        // SAFETY: `c` is a valid NUL-terminated string for the call.
        let rc = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags, mode) };
        match check(rc as libc::c_long) {
            Ok(fd) => return Ok(own(fd)),
            Err(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `openat2(dir, name, how)` with the given `resolve` flags.
pub fn openat2(dir: BorrowedFd<'_>, name: &[u8], flags: i32, resolve: u64) -> SysResult<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: all-zero is a valid `open_how` (no flags, no mode).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.resolve = resolve;
    loop {
        // SAFETY: `c` and `how` are valid for the call; the size passed is
        // the size of `how`.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        match check(rc) {
            Ok(fd) => return Ok(own(fd)),
            Err(libc::EINTR) | Err(libc::EAGAIN) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `fstatat(fd, name, flags)`; `name` empty means the fd itself.
pub fn fstatat(fd: BorrowedFd<'_>, name: &[u8], flags: i32) -> SysResult<libc::stat> {
    let c = cstr(name)?;
    // SAFETY: all-zero is a valid `stat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated, `st` is writable.
    let rc = unsafe { libc::fstatat(fd.as_raw_fd(), c.as_ptr(), &mut st, flags) };
    check(rc as libc::c_long)?;
    Ok(st)
}

/// The fd's own attributes (symlinks not followed).
pub fn fstat(fd: BorrowedFd<'_>) -> SysResult<libc::stat> {
    fstatat(fd, b"", libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW)
}

pub fn mkdirat(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> SysResult<()> {
    let c = cstr(name)?;
    // SAFETY: `c` is NUL-terminated.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode) } as libc::c_long).map(drop)
}

pub fn mknodat(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> SysResult<()> {
    let c = cstr(name)?;
    // SAFETY: `c` is NUL-terminated.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), c.as_ptr(), mode, 0) } as libc::c_long).map(drop)
}

pub fn symlinkat(target: &[u8], dir: BorrowedFd<'_>, name: &[u8]) -> SysResult<()> {
    let t = cstr(target)?;
    let c = cstr(name)?;
    // SAFETY: both strings are NUL-terminated.
    check(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), c.as_ptr()) } as libc::c_long)
        .map(drop)
}

pub fn linkat(
    old: BorrowedFd<'_>,
    old_name: &[u8],
    new: BorrowedFd<'_>,
    new_name: &[u8],
    flags: i32,
) -> SysResult<()> {
    let o = cstr(old_name)?;
    let n = cstr(new_name)?;
    // SAFETY: both strings are NUL-terminated.
    let rc = unsafe {
        libc::linkat(
            old.as_raw_fd(),
            o.as_ptr(),
            new.as_raw_fd(),
            n.as_ptr(),
            flags,
        )
    };
    check(rc as libc::c_long).map(drop)
}

pub fn unlinkat(dir: BorrowedFd<'_>, name: &[u8], flags: i32) -> SysResult<()> {
    let c = cstr(name)?;
    // SAFETY: `c` is NUL-terminated.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), flags) } as libc::c_long).map(drop)
}

pub fn renameat2(
    old: BorrowedFd<'_>,
    old_name: &[u8],
    new: BorrowedFd<'_>,
    new_name: &[u8],
    flags: u32,
) -> SysResult<()> {
    let o = cstr(old_name)?;
    let n = cstr(new_name)?;
    // SAFETY: both strings are NUL-terminated; renameat2 takes no other
    // pointers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            old.as_raw_fd(),
            o.as_ptr(),
            new.as_raw_fd(),
            n.as_ptr(),
            flags,
        )
    };
    check(rc).map(drop)
}

/// The target of the symlink `fd` refers to (an `O_PATH` fd).
pub fn readlink_fd(fd: BorrowedFd<'_>) -> SysResult<Vec<u8>> {
    let mut buf = vec![0u8; crate::proto::MAX_PATH + 1];
    // SAFETY: `buf` is writable for its length; the path is "".
    let n = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = check(n as libc::c_long)? as usize;
    if n > crate::proto::MAX_PATH || n == 0 {
        return Err(libc::ENAMETOOLONG);
    }
    buf.truncate(n);
    Ok(buf)
}

pub fn fchownat_empty(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> SysResult<()> {
    // SAFETY: the path is "", the fd is ours.
    let rc = unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check(rc as libc::c_long).map(drop)
}

/// `fchmodat2(fd, "", mode, AT_EMPTY_PATH)`: works on `O_PATH` fds
/// (Linux 6.6).
pub fn fchmod_empty(fd: BorrowedFd<'_>, mode: u32) -> SysResult<()> {
    // SAFETY: the path is "", no other pointers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode,
            libc::AT_EMPTY_PATH,
        )
    };
    check(rc).map(drop)
}

pub fn utimens_empty(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> SysResult<()> {
    // SAFETY: `times` points at two timespecs, the path is "".
    let rc = unsafe {
        libc::utimensat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            times.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check(rc as libc::c_long).map(drop)
}

pub fn ftruncate(fd: BorrowedFd<'_>, size: i64) -> SysResult<()> {
    // SAFETY: plain syscall on our fd.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), size) } as libc::c_long).map(drop)
}

pub fn fsync(fd: BorrowedFd<'_>) -> SysResult<()> {
    // SAFETY: plain syscall on our fd.
    check(unsafe { libc::fsync(fd.as_raw_fd()) } as libc::c_long).map(drop)
}

pub fn lseek(fd: BorrowedFd<'_>, off: i64) -> SysResult<()> {
    // SAFETY: plain syscall on our fd.
    check(unsafe { libc::lseek(fd.as_raw_fd(), off, libc::SEEK_SET) } as libc::c_long).map(drop)
}

pub fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: `buf` is writable for its length.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            fd.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    check(rc).map(|n| n as usize)
}

pub fn fstatfs(fd: BorrowedFd<'_>) -> SysResult<libc::statfs> {
    // SAFETY: all-zero is a valid `statfs`.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `s` is writable.
    check(unsafe { libc::fstatfs(fd.as_raw_fd(), &mut s) } as libc::c_long)?;
    Ok(s)
}

pub fn get_flags(fd: BorrowedFd<'_>) -> SysResult<i32> {
    // SAFETY: plain fcntl on our fd.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) } as libc::c_long).map(|f| f as i32)
}

pub fn set_flags(fd: BorrowedFd<'_>, flags: i32) -> SysResult<()> {
    // SAFETY: plain fcntl on our fd.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) } as libc::c_long).map(drop)
}

pub fn fgetxattr(fd: BorrowedFd<'_>, name: &[u8]) -> SysResult<Vec<u8>> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; crate::proto::MAX_XATTR_VALUE];
    // SAFETY: `buf` is writable for its length, `c` NUL-terminated.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = check(n as libc::c_long)? as usize;
    buf.truncate(n.min(buf.len()));
    Ok(buf)
}

pub fn fsetxattr(fd: BorrowedFd<'_>, name: &[u8], value: &[u8], flags: i32) -> SysResult<()> {
    let c = cstr(name)?;
    // SAFETY: `value` is readable for its length, `c` NUL-terminated.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            c.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    };
    check(rc as libc::c_long).map(drop)
}

pub fn flistxattr(fd: BorrowedFd<'_>) -> SysResult<Vec<u8>> {
    let mut buf = vec![0u8; crate::proto::MAX_XATTR_VALUE];
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    let n = check(n as libc::c_long)? as usize;
    buf.truncate(n.min(buf.len()));
    Ok(buf)
}

pub fn fremovexattr(fd: BorrowedFd<'_>, name: &[u8]) -> SysResult<()> {
    let c = cstr(name)?;
    // SAFETY: `c` is NUL-terminated.
    check(unsafe { libc::fremovexattr(fd.as_raw_fd(), c.as_ptr()) } as libc::c_long).map(drop)
}

pub fn fchdir(fd: BorrowedFd<'_>) -> SysResult<()> {
    // SAFETY: plain syscall on our fd.
    check(unsafe { libc::fchdir(fd.as_raw_fd()) } as libc::c_long).map(drop)
}

pub fn unix_socket(sock_type: i32) -> SysResult<OwnedFd> {
    // SAFETY: plain syscall.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            sock_type | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    check(fd as libc::c_long).map(own)
}

/// A `sockaddr_un` for a relative one-component name.
fn sockaddr(name: &[u8]) -> SysResult<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: all-zero is a valid `sockaddr_un`.
    let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if name.len() >= sa.sun_path.len() {
        return Err(libc::ENAMETOOLONG);
    }
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in sa.sun_path.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + name.len() + 1;
    Ok((sa, len as libc::socklen_t))
}

pub fn bind_rel(sock: BorrowedFd<'_>, name: &[u8]) -> SysResult<()> {
    let (sa, len) = sockaddr(name)?;
    // SAFETY: `sa` is a valid address of `len` bytes.
    let rc = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            &sa as *const libc::sockaddr_un as *const libc::sockaddr,
            len,
        )
    };
    check(rc as libc::c_long).map(drop)
}

pub fn connect_rel(sock: BorrowedFd<'_>, name: &[u8]) -> SysResult<()> {
    let (sa, len) = sockaddr(name)?;
    // SAFETY: `sa` is a valid address of `len` bytes.
    let rc = unsafe {
        libc::connect(
            sock.as_raw_fd(),
            &sa as *const libc::sockaddr_un as *const libc::sockaddr,
            len,
        )
    };
    check(rc as libc::c_long).map(drop)
}

pub fn listen(sock: BorrowedFd<'_>) -> SysResult<()> {
    // SAFETY: plain syscall on our fd.
    check(unsafe { libc::listen(sock.as_raw_fd(), 128) } as libc::c_long).map(drop)
}

/// Gives the calling thread a working directory of its own (the server
/// changes it to bind and connect sockets by relative name).
pub fn unshare_fs() -> SysResult<()> {
    // SAFETY: plain syscall; affects only this thread's fs context.
    check(unsafe { libc::unshare(libc::CLONE_FS) } as libc::c_long).map(drop)
}
