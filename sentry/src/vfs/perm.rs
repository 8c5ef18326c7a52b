//! Permission checks by the guest's credentials, as Linux's
//! `generic_permission` with the capabilities root has.

use crate::errno::Errno;

use super::inode::InodeMeta;
use crate::kernel::creds::Credentials;

pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;

pub const CAP_CHOWN: u32 = 0;
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_FSETID: u32 = 4;
pub const CAP_MKNOD: u32 = 27;
pub const CAP_SYS_ADMIN: u32 = 21;

pub fn in_group(creds: &Credentials, gid: u32) -> bool {
    creds.fsgid == gid || creds.groups.contains(&gid)
}

/// Checks `want` (MAY_* bits) on an inode with metadata `meta`.
pub fn check(creds: &Credentials, meta: &InodeMeta, want: u32) -> Result<(), Errno> {
    let mode = meta.mode;
    let bits = if creds.fsuid == meta.uid {
        mode >> 6
    } else if in_group(creds, meta.gid) {
        mode >> 3
    } else {
        mode
    } & 7;
    if bits & want == want {
        return Ok(());
    }
    let is_dir = meta.is_dir();
    // CAP_DAC_READ_SEARCH: read any file, search any directory.
    if creds.has_cap(CAP_DAC_READ_SEARCH) && (want == MAY_READ || (is_dir && want & MAY_WRITE == 0))
    {
        return Ok(());
    }
    // CAP_DAC_OVERRIDE: anything, except executing a file no one may
    // execute.
    if creds.has_cap(CAP_DAC_OVERRIDE) && (want & MAY_EXEC == 0 || is_dir || mode & 0o111 != 0) {
        return Ok(());
    }
    Err(Errno::EACCES)
}

/// Whether the caller owns the inode or may act as its owner.
pub fn is_owner(creds: &Credentials, meta: &InodeMeta) -> bool {
    creds.fsuid == meta.uid || creds.has_cap(CAP_FOWNER)
}

/// The sticky-directory rule for removing or renaming `victim` from `dir`.
pub fn may_delete_sticky(creds: &Credentials, dir: &InodeMeta, victim: &InodeMeta) -> bool {
    dir.mode & libc::S_ISVTX == 0
        || creds.fsuid == victim.uid
        || creds.fsuid == dir.uid
        || creds.has_cap(CAP_FOWNER)
}
