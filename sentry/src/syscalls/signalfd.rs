//! signalfd and signalfd4 (the files are `fsimpl/signalfd.rs`).

use crate::errno::Errno;

use super::{Fd, Hex, SysResult, UserAddr};
use crate::fsimpl::signalfd::SignalFd;
use crate::kernel::signal::UNBLOCKABLE;
use crate::kernel::task::Task;
use crate::vfs::FileDescription;

const SFD_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
const SFD_NONBLOCK: u32 = libc::O_NONBLOCK as u32;

pub fn signalfd(t: &mut Task, fd: Fd, mask: UserAddr, sizemask: usize) -> SysResult {
    signalfd4(t, fd, mask, sizemask, Hex(0))
}

pub fn signalfd4(t: &mut Task, fd: Fd, mask: UserAddr, sizemask: usize, flags: Hex) -> SysResult {
    if sizemask != 8 {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = t.mm.read_obj(mask.0)?;
    let flags = flags.0 as u32;
    if flags & !(SFD_CLOEXEC | SFD_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let mask = mask & !UNBLOCKABLE;
    if fd.0 == -1 {
        let f = FileDescription::new(
            libc::O_RDWR as u32 | (flags & SFD_NONBLOCK),
            Box::new(SignalFd::new(mask, &t.shared)),
        );
        let limit = crate::kernel::task::lock_limits(&t.tg).cur(libc::RLIMIT_NOFILE);
        let fd = t
            .fds
            .install(f, flags & SFD_CLOEXEC != 0, 0, limit)
            .map_err(|e| if e == Errno::EINVAL { Errno::EMFILE } else { e })?;
        return Ok(fd as u64);
    }
    let f = super::attr::get_file(t, fd.0)?;
    let Some(sfd) = f.imp.as_any().and_then(|a| a.downcast_ref::<SignalFd>()) else {
        return Err(Errno::EINVAL);
    };
    sfd.set_mask(mask, &t.shared);
    Ok(fd.0 as u64)
}
