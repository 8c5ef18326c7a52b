//! Moving data between files inside the kernel: sendfile, copy_file_range,
//! splice and tee, for transfers where one side is a file. Data goes
//! through a sentry buffer with the files' own read and write at explicit
//! offsets; pipes take what fits and give what they have, as Linux's pipe
//! buffers would.

use std::sync::Arc;

use crate::errno::Errno;

use super::attr::get_file;
use super::{Fd, Hex, SysResult, UserAddr};
use crate::kernel::task::Task;
use crate::vfs::FileDescription;

/// Linux's MAX_RW_COUNT.
const MAX_RW_COUNT: usize = 0x7fff_f000;
/// The most one call moves: a pipe's worth.
const CHUNK: usize = 65536;
const SPLICE_F_NONBLOCK: u32 = 0x02;
const SPLICE_F_ALL: u32 = 0x0f;
/// The largest file offset (MAX_LFS_FILESIZE).
const MAX_OFFSET: i64 = i64::MAX;

fn file_type(f: &FileDescription) -> u32 {
    f.stat().map(|s| s.st_mode & libc::S_IFMT).unwrap_or(0)
}

fn is_pipe(f: &FileDescription) -> bool {
    file_type(f) == libc::S_IFIFO
}

/// The file's position (0 for files without one).
fn position(f: &FileDescription) -> i64 {
    f.imp.seek(f, 0, libc::SEEK_CUR).unwrap_or(0) as i64
}

fn set_position(f: &FileDescription, pos: i64) {
    let _ = f.imp.seek(f, pos, libc::SEEK_SET);
}

/// Linux's rw_verify_area for an offset: EINVAL when negative or when
/// the end passes the largest offset.
fn verify_area(pos: i64, count: usize) -> Result<(), Errno> {
    if (count as i64) < 0 || pos < 0 || pos.checked_add(count as i64).is_none() {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Puts `data`, read from a file at `pos`, into the pipe `p` as page
/// buffers of their own: what fits, waiting for room unless `nonblock`.
/// EPIPE without readers; ERESTARTSYS when a signal ends the wait.
fn pipe_put(t: &mut Task, p: &FileDescription, data: &[u8], pos: i64, nonblock: bool) -> SysResult {
    let pipe = p.imp.pipe().ok_or(Errno::EBADF)?;
    loop {
        match pipe.put(data, pos as usize % 4096) {
            Err(Errno::EAGAIN) if !nonblock => {
                t.wait_file(p, libc::POLLOUT, None)?;
            }
            r => return r.map(|n| n as u64),
        }
    }
}

/// Waits until the pipe `p` has room (Linux's `wait_for_space`): EPIPE
/// without readers, EAGAIN when full and `nonblock`, ERESTARTSYS when a
/// signal ends the wait.
fn pipe_wait_room(t: &mut Task, p: &FileDescription, nonblock: bool) -> Result<(), Errno> {
    loop {
        let r = p.imp.readiness(p, libc::POLLOUT);
        if r & libc::POLLERR != 0 {
            return Err(Errno::EPIPE);
        }
        if r & libc::POLLOUT != 0 {
            return Ok(());
        }
        if nonblock {
            return Err(Errno::EAGAIN);
        }
        t.wait_file(p, libc::POLLOUT, None)?;
    }
}

/// Up to `len` bytes buffered in the pipe `p`, without taking them,
/// waiting for data unless `nonblock` (Linux's `ipipe_prep` and
/// `splice_from_pipe_next`); empty when the pipe is empty and has no
/// writers. ERESTARTSYS when a signal ends the wait.
fn pipe_peek(
    t: &mut Task,
    p: &FileDescription,
    len: usize,
    nonblock: bool,
) -> Result<Vec<u8>, Errno> {
    let pipe = p.imp.pipe().ok_or(Errno::EBADF)?;
    loop {
        match pipe.peek(len) {
            Err(Errno::EAGAIN) if !nonblock => {
                t.wait_file(p, libc::POLLIN, None)?;
            }
            r => return r,
        }
    }
}

/// Moves up to `len` bytes of the file `inf` at `*pos` into the pipe
/// `out` (Linux's `splice_file_to_pipe`); advances `*pos`.
fn file_to_pipe(
    t: &mut Task,
    inf: &FileDescription,
    pos: &mut i64,
    out: &FileDescription,
    len: usize,
    nonblock: bool,
) -> SysResult {
    pipe_wait_room(t, out, nonblock)?;
    if len == 0 {
        return Ok(0);
    }
    if is_pipe(inf) || file_type(inf) == libc::S_IFDIR {
        return Err(Errno::EINVAL);
    }
    let mut buf = vec![0u8; len.min(CHUNK)];
    let n = inf.imp.read(inf, &mut buf, Some(*pos as u64))?;
    if n == 0 {
        return Ok(0);
    }
    let put = pipe_put(t, out, &buf[..n], *pos, nonblock)?;
    *pos += put as i64;
    Ok(put)
}

/// Moves up to `len` bytes of the pipe `inp` to the file `out` at `*pos`
/// (Linux's `do_splice_from`); advances `*pos`.
fn pipe_to_file(
    t: &mut Task,
    inp: &FileDescription,
    out: &FileDescription,
    pos: &mut i64,
    len: usize,
    nonblock: bool,
) -> SysResult {
    let data = pipe_peek(t, inp, len.min(CHUNK), nonblock)?;
    if data.is_empty() {
        return Ok(0);
    }
    let n = out.imp.write(out, &data, Some(*pos as u64))?;
    // Only what the file took leaves the pipe.
    if let Some(p) = inp.imp.pipe() {
        p.consume(n);
    }
    *pos += n as i64;
    Ok(n as u64)
}

/// Copies up to `len` bytes from `inf` at `*ipos` to `out` at `*opos`
/// (Linux's `do_splice_direct`).
fn file_to_file(
    inf: &FileDescription,
    ipos: &mut i64,
    out: &FileDescription,
    opos: &mut i64,
    len: usize,
) -> SysResult {
    if !out.writable() {
        return Err(Errno::EBADF);
    }
    if out.flags() & libc::O_APPEND as u32 != 0 {
        return Err(Errno::EINVAL);
    }
    let ft = file_type(inf);
    if ft != libc::S_IFREG && ft != libc::S_IFBLK {
        return Err(Errno::EINVAL);
    }
    copy_out(inf, ipos, len, |b| {
        out.imp
            .write(out, b, Some(*opos as u64))
            .inspect(|w| *opos += *w as i64)
    })
}

/// Reads `inf` from `*ipos` in chunks of up to `len` bytes in all and
/// hands each to `write`, until `len`, the file's end, a short write or
/// an error; what was written (an error only when nothing was).
fn copy_out(
    inf: &FileDescription,
    ipos: &mut i64,
    len: usize,
    mut write: impl FnMut(&[u8]) -> Result<usize, Errno>,
) -> SysResult {
    let mut done = 0usize;
    let mut buf = vec![0u8; len.min(CHUNK)];
    while done < len {
        let want = (len - done).min(buf.len());
        let n = inf.imp.read(inf, &mut buf[..want], Some(*ipos as u64))?;
        if n == 0 {
            break;
        }
        let w = match write(&buf[..n]) {
            Ok(w) => w,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        *ipos += w as i64;
        done += w;
        if w < n {
            break;
        }
    }
    Ok(done as u64)
}

/// sendfile to a socket: as a send of the file's bytes, which waits for
/// room on a blocking socket (Linux's `splice_to_socket`); what was sent
/// when the socket fills (non-blocking) or fails part way is the result.
fn file_to_socket(
    t: &mut Task,
    inf: &FileDescription,
    ipos: &mut i64,
    out: &FileDescription,
    sock: &Arc<dyn crate::fsimpl::socket::Socket>,
    len: usize,
) -> SysResult {
    let ft = file_type(inf);
    if ft != libc::S_IFREG && ft != libc::S_IFBLK {
        return Err(Errno::EINVAL);
    }
    let flags = if out.nonblocking() {
        libc::MSG_DONTWAIT
    } else {
        0
    };
    copy_out(inf, ipos, len, |b| {
        let mut src = crate::fsimpl::socket::BufIo::source(b);
        sock.sendmsg(
            t,
            crate::fsimpl::socket::SendArgs {
                src: &mut src,
                addr: None,
                control: Default::default(),
                flags,
            },
        )
    })
}

/// inotify's view of a copy that moved bytes: the source was read, the
/// destination written.
fn moved(t: &Task, r: SysResult, fd_in: Fd, fd_out: Fd) -> SysResult {
    if matches!(r, Ok(n) if n > 0) {
        use crate::vfs::inotify::{notify_file, IN_ACCESS, IN_MODIFY};
        if let Ok(f) = t.fds.get(fd_in.0) {
            notify_file(&f, IN_ACCESS);
        }
        if let Ok(f) = t.fds.get(fd_out.0) {
            notify_file(&f, IN_MODIFY);
        }
    }
    r
}

pub fn sendfile(t: &mut Task, out_fd: Fd, in_fd: Fd, offset: UserAddr, count: usize) -> SysResult {
    let r = do_sendfile(t, out_fd, in_fd, offset, count);
    moved(t, r, in_fd, out_fd)
}

fn do_sendfile(t: &mut Task, out_fd: Fd, in_fd: Fd, offset: UserAddr, count: usize) -> SysResult {
    let user_pos = if offset.0 != 0 {
        Some(t.mm.read_obj::<i64>(offset.0)?)
    } else {
        None
    };
    let inf = get_file(t, in_fd.0)?;
    if !inf.readable() {
        return Err(Errno::EBADF);
    }
    if user_pos.is_some() && !inf.imp.positional(&inf) {
        return Err(Errno::ESPIPE);
    }
    let mut pos = user_pos.unwrap_or_else(|| position(&inf));
    verify_area(pos, count)?;
    let count = count.min(MAX_RW_COUNT);
    let out = get_file(t, out_fd.0)?;
    if !out.writable() {
        return Err(Errno::EBADF);
    }
    let r = if is_pipe(&out) {
        let nonblock = out.nonblocking();
        file_to_pipe(t, &inf, &mut pos, &out, count, nonblock)
    } else if let Some(sock) = out.imp.socket() {
        file_to_socket(t, &inf, &mut pos, &out, &sock, count)
    } else {
        let mut opos = position(&out);
        verify_area(opos, count)?;
        let r = file_to_file(&inf, &mut pos, &out, &mut opos, count);
        if matches!(r, Ok(n) if n > 0) {
            set_position(&out, opos);
        }
        r
    };
    let n = r?;
    if user_pos.is_some() {
        t.mm.write_obj(offset.0, &pos)?;
    } else if n > 0 {
        set_position(&inf, pos);
    }
    Ok(n)
}

pub fn copy_file_range(
    t: &mut Task,
    fd_in: Fd,
    off_in: UserAddr,
    fd_out: Fd,
    off_out: UserAddr,
    len: usize,
    flags: u32,
) -> SysResult {
    let r = do_copy_file_range(t, fd_in, off_in, fd_out, off_out, len, flags);
    moved(t, r, fd_in, fd_out)
}

fn do_copy_file_range(
    t: &mut Task,
    fd_in: Fd,
    off_in: UserAddr,
    fd_out: Fd,
    off_out: UserAddr,
    len: usize,
    flags: u32,
) -> SysResult {
    let inf = get_file(t, fd_in.0)?;
    let out = get_file(t, fd_out.0)?;
    let mut ipos = if off_in.0 != 0 {
        t.mm.read_obj::<i64>(off_in.0)?
    } else {
        position(&inf)
    };
    let mut opos = if off_out.0 != 0 {
        t.mm.read_obj::<i64>(off_out.0)?
    } else {
        position(&out)
    };
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    // generic_copy_file_checks.
    let (ti, to) = (file_type(&inf), file_type(&out));
    if ti == libc::S_IFDIR || to == libc::S_IFDIR {
        return Err(Errno::EISDIR);
    }
    if ti != libc::S_IFREG || to != libc::S_IFREG {
        return Err(Errno::EINVAL);
    }
    if !inf.readable() || !out.writable() || out.flags() & libc::O_APPEND as u32 != 0 {
        return Err(Errno::EBADF);
    }
    let (ii, io) = (inf.inode(), out.inode());
    let same_fs = match (&ii, &io) {
        (Some(a), Some(b)) => Arc::ptr_eq(&a.fs, &b.fs),
        _ => false,
    };
    if !same_fs {
        return Err(Errno::EXDEV);
    }
    let mut count = len as u64;
    if (ipos as u64).checked_add(count).is_none() || (opos as u64).checked_add(count).is_none() {
        return Err(Errno::EOVERFLOW);
    }
    let size_in = inf.stat()?.st_size;
    count = if ipos >= size_in {
        0
    } else {
        count.min((size_in - ipos) as u64)
    };
    if opos == MAX_OFFSET {
        return Err(Errno::EFBIG);
    }
    if let Some(room) = MAX_OFFSET.checked_sub(opos) {
        count = count.min(room as u64);
    }
    let same_inode = match (&ii, &io) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    };
    if same_inode && opos as u64 + count > ipos as u64 && (opos as u64) < ipos as u64 + count {
        return Err(Errno::EINVAL);
    }
    let count = count as usize;
    verify_area(ipos, count)?;
    verify_area(opos, count)?;
    if count == 0 {
        return Ok(0);
    }
    let n = file_to_file(&inf, &mut ipos, &out, &mut opos, count.min(MAX_RW_COUNT))?;
    if n > 0 {
        if off_in.0 != 0 {
            t.mm.write_obj(off_in.0, &ipos)?;
        } else {
            set_position(&inf, ipos);
        }
        if off_out.0 != 0 {
            t.mm.write_obj(off_out.0, &opos)?;
        } else {
            set_position(&out, opos);
        }
    }
    Ok(n)
}

pub fn splice(
    t: &mut Task,
    fd_in: Fd,
    off_in: UserAddr,
    fd_out: Fd,
    off_out: UserAddr,
    len: usize,
    flags: Hex,
) -> SysResult {
    let r = do_splice(t, fd_in, off_in, fd_out, off_out, len, flags);
    moved(t, r, fd_in, fd_out)
}

fn do_splice(
    t: &mut Task,
    fd_in: Fd,
    off_in: UserAddr,
    fd_out: Fd,
    off_out: UserAddr,
    len: usize,
    flags: Hex,
) -> SysResult {
    if len == 0 {
        return Ok(0);
    }
    let flags = flags.0 as u32;
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let inf = get_file(t, fd_in.0)?;
    let out = get_file(t, fd_out.0)?;
    let (ipipe, opipe) = (is_pipe(&inf), is_pipe(&out));
    if (ipipe && off_in.0 != 0) || (opipe && off_out.0 != 0) {
        return Err(Errno::ESPIPE);
    }
    let user_out = if off_out.0 != 0 {
        Some(t.mm.read_obj::<i64>(off_out.0)?)
    } else {
        None
    };
    let user_in = if off_in.0 != 0 {
        Some(t.mm.read_obj::<i64>(off_in.0)?)
    } else {
        None
    };
    if !inf.readable() || !out.writable() {
        return Err(Errno::EBADF);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    if ipipe && opipe {
        let nonblock = nonblock || inf.nonblocking() || out.nonblocking();
        return pipe_to_pipe(t, &inf, &out, len.min(MAX_RW_COUNT), nonblock, true);
    }
    if ipipe {
        if user_out.is_some() && !out.imp.positional(&out) {
            return Err(Errno::EINVAL);
        }
        let mut pos = user_out.unwrap_or_else(|| position(&out));
        if out.flags() & libc::O_APPEND as u32 != 0 {
            return Err(Errno::EINVAL);
        }
        verify_area(pos, len)?;
        let nonblock = nonblock || inf.nonblocking();
        let n = pipe_to_file(t, &inf, &out, &mut pos, len.min(MAX_RW_COUNT), nonblock)?;
        match user_out {
            Some(_) => t.mm.write_obj(off_out.0, &pos)?,
            None => set_position(&out, pos),
        }
        return Ok(n);
    }
    if opipe {
        if user_in.is_some() && !inf.imp.positional(&inf) {
            return Err(Errno::EINVAL);
        }
        let mut pos = user_in.unwrap_or_else(|| position(&inf));
        verify_area(pos, len)?;
        let nonblock = nonblock || out.nonblocking();
        let n = file_to_pipe(t, &inf, &mut pos, &out, len.min(MAX_RW_COUNT), nonblock)?;
        match user_in {
            Some(_) => t.mm.write_obj(off_in.0, &pos)?,
            None => set_position(&inf, pos),
        }
        return Ok(n);
    }
    Err(Errno::EINVAL)
}

pub fn tee(t: &mut Task, fd_in: Fd, fd_out: Fd, len: usize, flags: Hex) -> SysResult {
    if flags.0 as u32 & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let inf = get_file(t, fd_in.0)?;
    let out = get_file(t, fd_out.0)?;
    if !inf.readable() || !out.writable() {
        return Err(Errno::EBADF);
    }
    if !is_pipe(&inf) || !is_pipe(&out) {
        return Err(Errno::EINVAL);
    }
    let nonblock =
        flags.0 as u32 & SPLICE_F_NONBLOCK != 0 || inf.nonblocking() || out.nonblocking();
    pipe_to_pipe(t, &inf, &out, len.min(MAX_RW_COUNT), nonblock, false)
}

/// Moves (splice) or copies (tee, `consume` false) up to `len` bytes
/// from the pipe `inf` to the pipe `out`, as Linux's
/// `splice_pipe_to_pipe` and `link_pipe`: waits for data in `inf`, then
/// for room in `out`, unless `nonblock`, and moves what fits. Bytes
/// leave `inf` only once `out` took them.
fn pipe_to_pipe(
    t: &mut Task,
    inf: &Arc<FileDescription>,
    out: &Arc<FileDescription>,
    len: usize,
    nonblock: bool,
    consume: bool,
) -> SysResult {
    let (Some(src), Some(dst)) = (inf.imp.pipe(), out.imp.pipe()) else {
        return Err(Errno::EINVAL);
    };
    if Arc::ptr_eq(&src, &dst) {
        return Err(Errno::EINVAL);
    }
    loop {
        let bufs = loop {
            match src.peek_buffers(len.min(CHUNK)) {
                Err(Errno::EAGAIN) if !nonblock => {
                    t.wait_file(inf, libc::POLLIN, None)?;
                }
                r => break r?,
            }
        };
        if bufs.is_empty() {
            return Ok(0);
        }
        // Buffer by buffer, while the output has free slots.
        let mut moved = 0usize;
        let mut err = None;
        for (start, data) in &bufs {
            match dst.put(data, *start) {
                Ok(n) => {
                    moved += n;
                    if n < data.len() {
                        break;
                    }
                }
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        match err {
            _ if moved > 0 => {
                if consume {
                    src.consume(moved);
                }
                return Ok(moved as u64);
            }
            // Full: wait for room, then look at the input again (a
            // reader may have taken it meanwhile).
            Some(Errno::EAGAIN) if !nonblock => {
                t.wait_file(out, libc::POLLOUT, None)?;
            }
            Some(e) => return Err(e),
            None => return Ok(0),
        }
    }
}

/// The most iovecs one call takes (UIO_MAXIOV).
const UIO_MAXIOV: u64 = 1024;

/// vmsplice(2): into a pipe (a write end) from the caller's iovecs, or
/// out of one (a read end) into them. Only SPLICE_F_NONBLOCK makes it
/// non-blocking (not the file's O_NONBLOCK, as in Linux); the data is
/// copied, so SPLICE_F_GIFT changes nothing.
pub fn vmsplice(t: &mut Task, fd: Fd, iov: UserAddr, nr_segs: u64, flags: Hex) -> SysResult {
    if flags.0 as u32 & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let f = t.fds.get(fd.0)?;
    // A file open for writing is spliced to, else one open for reading
    // from; either way it must be a pipe.
    let to_pipe = f.writable();
    if !to_pipe && !f.readable() {
        return Err(Errno::EBADF);
    }
    let Some(pipe) = f.imp.pipe() else {
        return Err(Errno::EBADF);
    };
    if nr_segs > UIO_MAXIOV {
        return Err(Errno::EINVAL);
    }
    let iovs = super::fs::read_iovecs(t, iov.0, nr_segs as i32)?;
    let total: usize = iovs.iter().map(|v| v.1).sum();
    if total == 0 {
        return Ok(0);
    }
    let nonblock = flags.0 as u32 & SPLICE_F_NONBLOCK != 0;
    if to_pipe {
        vmsplice_to_pipe(t, &f, &pipe, &iovs, nonblock)
    } else {
        vmsplice_to_user(t, &f, &pipe, &iovs, total, nonblock)
    }
}

/// Waits for a free slot (Linux's `wait_for_space`), then adds the
/// iovecs' bytes as buffers of their own, a page of memory a buffer, while
/// slots are free; a fault ends the copy (EFAULT if nothing was copied).
fn vmsplice_to_pipe(
    t: &mut Task,
    f: &FileDescription,
    pipe: &crate::fsimpl::pipe::Pipe,
    iovs: &[(u64, usize)],
    nonblock: bool,
) -> SysResult {
    loop {
        match pipe.has_space() {
            Err(Errno::EAGAIN) if !nonblock => {
                t.wait_file(f, libc::POLLOUT, None)?;
            }
            r => break r?,
        }
    }
    let mut done = 0usize;
    for &(base, len) in iovs {
        let mut off = 0usize;
        while off < len {
            let addr = base + off as u64;
            let mut data = vec![0u8; (len - off).min(CHUNK)];
            let n = t.mm.copy_in_partial(addr, &mut data);
            if n == 0 {
                return if done > 0 {
                    Ok(done as u64)
                } else {
                    Err(Errno::EFAULT)
                };
            }
            let put = match pipe.put(&data[..n], (addr % 4096) as usize) {
                Ok(k) => k,
                Err(_) if done > 0 => return Ok(done as u64),
                Err(e) => return Err(e),
            };
            done += put;
            off += put;
            if put < data.len() {
                return Ok(done as u64);
            }
        }
    }
    Ok(done as u64)
}

/// Copies buffered data out of the pipe into the iovecs, waiting for
/// data unless `nonblock`; 0 at end of file. What was copied leaves the
/// pipe; a fault leaves it all there (the pipe's data counts as one
/// buffer, which Linux consumes whole or not at all) and gives EFAULT.
fn vmsplice_to_user(
    t: &mut Task,
    f: &FileDescription,
    pipe: &crate::fsimpl::pipe::Pipe,
    iovs: &[(u64, usize)],
    total: usize,
    nonblock: bool,
) -> SysResult {
    let data = pipe_peek(t, f, total.min(CHUNK), nonblock)?;
    let mut pos = 0;
    for &(base, len) in iovs {
        if pos >= data.len() {
            break;
        }
        let k = len.min(data.len() - pos);
        t.mm.copy_out(base, &data[pos..pos + k])?;
        pos += k;
    }
    pipe.consume(pos);
    Ok(pos as u64)
}
