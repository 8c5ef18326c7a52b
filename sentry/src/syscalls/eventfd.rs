//! eventfd and eventfd2 (the files are `fsimpl/eventfd.rs`).

use crate::errno::Errno;

use super::{Hex, SysResult};
use crate::fsimpl::eventfd::EventFd;
use crate::kernel::task::Task;
use crate::vfs::FileDescription;

const EFD_SEMAPHORE: u32 = 1;
const EFD_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
const EFD_NONBLOCK: u32 = libc::O_NONBLOCK as u32;

pub fn eventfd(t: &mut Task, initval: u32) -> SysResult {
    eventfd2(t, initval, Hex(0))
}

pub fn eventfd2(t: &mut Task, initval: u32, flags: Hex) -> SysResult {
    let flags = flags.0 as u32;
    if flags & !(EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let f = FileDescription::new(
        libc::O_RDWR as u32 | (flags & EFD_NONBLOCK),
        Box::new(EventFd::new(initval, flags & EFD_SEMAPHORE != 0)),
    );
    let limit = crate::kernel::task::lock_limits(&t.tg).cur(libc::RLIMIT_NOFILE);
    let fd = t
        .fds
        .install(f, flags & EFD_CLOEXEC != 0, 0, limit)
        .map_err(|e| if e == Errno::EINVAL { Errno::EMFILE } else { e })?;
    Ok(fd as u64)
}
