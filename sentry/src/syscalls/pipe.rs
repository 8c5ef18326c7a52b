//! pipe and pipe2.

use crate::errno::Errno;
use crate::sync::LockExt;

use super::{Hex, SysResult, UserAddr};
use crate::fsimpl::pipe::Pipe;
use crate::kernel::compat::Unsupported;
use crate::kernel::task::Task;
use crate::vfs::FileDescription;

/// O_NOTIFICATION_PIPE (it shares O_EXCL's bit).
const O_NOTIFICATION_PIPE: u32 = libc::O_EXCL as u32;

pub fn pipe(t: &mut Task, fds: UserAddr) -> SysResult {
    pipe2(t, fds, Hex(0))
}

/// Notification pipes (for watch_queue): not implemented.
const PIPE2_UNIMPLEMENTED: Unsupported = Unsupported {
    syscall: "pipe2",
    argument: "flags",
    answer: Errno::ENOSYS,
};
/// Packet-mode pipes: not implemented (EINVAL, as a kernel without them
/// answers, so that a program falls back to a plain pipe).
const PIPE2_UNIMPLEMENTED_DIRECT: Unsupported = Unsupported {
    syscall: "pipe2",
    argument: "flags",
    answer: Errno::EINVAL,
};

pub fn pipe2(t: &mut Task, fds: UserAddr, flags: Hex) -> SysResult {
    let flags = flags.0 as u32;
    let known = (libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_DIRECT) as u32 | O_NOTIFICATION_PIPE;
    if flags & !known != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & O_NOTIFICATION_PIPE != 0 {
        return PIPE2_UNIMPLEMENTED.answer(t, "O_NOTIFICATION_PIPE");
    }
    if flags & libc::O_DIRECT as u32 != 0 {
        return PIPE2_UNIMPLEMENTED_DIRECT.answer(t, "O_DIRECT");
    }
    let nonblock = flags & libc::O_NONBLOCK as u32;
    let cloexec = flags & libc::O_CLOEXEC as u32 != 0;
    let pipe = Pipe::new();
    let r = FileDescription::new(
        libc::O_RDONLY as u32 | nonblock,
        Box::new(pipe.end(true, false, None)),
    );
    let w = FileDescription::new(
        libc::O_WRONLY as u32 | nonblock,
        Box::new(pipe.end(false, true, None)),
    );
    let limit = t.tg.limits.locked().cur(libc::RLIMIT_NOFILE);
    let emfile = |e| if e == Errno::EINVAL { Errno::EMFILE } else { e };
    let rfd = t.fds.install(r, cloexec, 0, limit).map_err(emfile)?;
    let wfd = match t.fds.install(w, cloexec, 0, limit) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = t.fds.remove(rfd);
            return Err(emfile(e));
        }
    };
    let out = [rfd, wfd];
    let bytes: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
    if let Err(e) = t.mm.copy_out(fds.0, &bytes) {
        let _ = t.fds.remove(rfd);
        let _ = t.fds.remove(wfd);
        return Err(e);
    }
    Ok(0)
}
