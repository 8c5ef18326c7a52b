//! memfd_create, and file sealing (fcntl F_ADD_SEALS / F_GET_SEALS).
//!
//! A memfd is a tmpfs regular file with no name in any directory the
//! guest can reach: it lives in an internal tmpfs, as Linux's live on its
//! internal `shm_mnt`, and /proc shows it as `/memfd:NAME (deleted)`.

use crate::sync::LockExt;
use std::any::Any;
use std::sync::{Arc, Mutex};

use crate::vfs::VfsState;

use crate::errno::Errno;

use super::file::O_LARGEFILE;
use super::{Hex, SysResult, UserPath};
use crate::fsimpl::tmpfs::{RegularFile, TMPFS_MAGIC};
use crate::kernel::task::Task;
use crate::vfs::inode::{Filesystem, Inode, InodeMeta, InodeOps};
use crate::vfs::mount::{Location, Mount, MountFlags};
use crate::vfs::FileDescription;

const MFD_CLOEXEC: u32 = 0x1;
const MFD_ALLOW_SEALING: u32 = 0x2;
const MFD_HUGETLB: u32 = 0x4;
const MFD_NOEXEC_SEAL: u32 = 0x8;
const MFD_EXEC: u32 = 0x10;
const MFD_ALL_FLAGS: u32 =
    MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;
const MFD_HUGE_SHIFT: u32 = 26;
const MFD_HUGE_MASK: u32 = 0x3f;
/// "memfd:" is prepended; the whole must fit NAME_MAX.
const MFD_NAME_MAX_LEN: usize = 255 - 6;

/// Every seal there is (F_SEAL_SEAL .. F_SEAL_EXEC).
const F_ALL_SEALS: u32 = (libc::F_SEAL_SEAL
    | libc::F_SEAL_SHRINK
    | libc::F_SEAL_GROW
    | libc::F_SEAL_WRITE
    | libc::F_SEAL_FUTURE_WRITE
    | libc::F_SEAL_EXEC) as u32;

/// The directory memfds hang from: it has no entries and is mounted
/// nowhere.
struct MemfdRoot;

impl InodeOps for MemfdRoot {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The internal tmpfs of memfds. As Linux's, it has no size; what its
/// files can take is bounded by the sandbox's memory.
fn memfd_mount(vfs: &VfsState) -> &Arc<Mount> {
    vfs.memfd_mount(|vfs| {
        let fs = Filesystem::new(vfs, "tmpfs", "tmpfs", TMPFS_MAGIC, "");
        let root = Inode::new(
            &fs,
            InodeMeta::new(libc::S_IFDIR | 0o1777, 0, 0),
            Box::new(MemfdRoot),
        );
        Arc::new(Mount {
            id: 0,
            fs,
            root,
            parent: None,
            flags: Mutex::new(MountFlags::default()),
        })
    })
}

/// Reads the name as Linux's `strncpy_from_user` with room for
/// MFD_NAME_MAX_LEN bytes: EFAULT, or EINVAL when it is longer.
fn read_name(t: &Task, addr: u64) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; MFD_NAME_MAX_LEN + 1];
    let n = t.mm.copy_in_partial(addr, &mut buf);
    match buf[..n].iter().position(|&b| b == 0) {
        Some(len) => Ok(buf[..len].to_vec()),
        None if n < buf.len() => Err(Errno::EFAULT),
        None => Err(Errno::EINVAL),
    }
}

pub fn memfd_create(t: &mut Task, name: UserPath, flags: Hex) -> SysResult {
    let mut flags = flags.0 as u32;
    let allowed = if flags & MFD_HUGETLB == 0 {
        MFD_ALL_FLAGS
    } else {
        MFD_ALL_FLAGS | (MFD_HUGE_MASK << MFD_HUGE_SHIFT)
    };
    if flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MFD_EXEC != 0 && flags & MFD_NOEXEC_SEAL != 0 {
        return Err(Errno::EINVAL);
    }
    // vm.memfd_noexec is 0: memfds are executable unless asked otherwise.
    if flags & (MFD_EXEC | MFD_NOEXEC_SEAL) == 0 {
        flags |= MFD_EXEC;
    }
    let name = read_name(t, name.0)?;
    if flags & MFD_HUGETLB != 0 {
        return super::unimplemented(t, "memfd_create MFD_HUGETLB");
    }
    let mount = memfd_mount(&t.kernel.vfs);
    let mode = if flags & MFD_NOEXEC_SEAL != 0 {
        0o666
    } else {
        0o777
    };
    let mut meta = InodeMeta::new(libc::S_IFREG | mode, t.creds.fsuid, t.creds.fsgid);
    meta.nlink = 0;
    let file = RegularFile::new(&t.kernel.memory_file, &mount.fs);
    let mut seals = file.seals();
    if flags & MFD_NOEXEC_SEAL != 0 {
        seals = (seals & !(libc::F_SEAL_SEAL as u32)) | libc::F_SEAL_EXEC as u32;
    } else if flags & MFD_ALLOW_SEALING != 0 {
        seals &= !(libc::F_SEAL_SEAL as u32);
    }
    file.seals
        .store(seals, std::sync::atomic::Ordering::Relaxed);
    let inode = Inode::new(&mount.fs, meta, Box::new(file));
    let mut full = b"memfd:".to_vec();
    full.extend_from_slice(&name);
    inode.set_parent(&mount.root, &full);
    let open_flags = libc::O_RDWR as u32 | O_LARGEFILE;
    let imp = inode.ops.open(t, &inode, open_flags)?;
    let loc = Location {
        mount: mount.clone(),
        inode,
    };
    let desc = FileDescription::new_at(open_flags, imp, Some(loc));
    let limit = t.tg.limits.locked().cur(libc::RLIMIT_NOFILE);
    let fd = t
        .fds
        .install(desc, flags & MFD_CLOEXEC != 0, 0, limit)
        .map_err(|e| if e == Errno::EINVAL { Errno::EMFILE } else { e })?;
    Ok(fd as u64)
}

/// fcntl F_ADD_SEALS and F_GET_SEALS. Every tmpfs file has seals (sealed
/// with F_SEAL_SEAL unless it is a memfd made for sealing); other files
/// have none (EINVAL).
pub fn fcntl_seals(t: &mut Task, f: &Arc<FileDescription>, cmd: i32, arg: u64) -> SysResult {
    if f.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    let inode = f.inode();
    let file = inode.as_deref().and_then(super::attr::tmpfs_file);
    if cmd == libc::F_GET_SEALS {
        return file.map(|rf| rf.seals() as u64).ok_or(Errno::EINVAL);
    }
    let mut add = arg as u32;
    if !f.writable() {
        return Err(Errno::EPERM);
    }
    if add & !F_ALL_SEALS != 0 {
        return Err(Errno::EINVAL);
    }
    let (Some(rf), Some(inode)) = (file, inode.as_ref()) else {
        return Err(Errno::EINVAL);
    };
    let meta = inode.meta.locked();
    let seals = rf.seals();
    if seals & libc::F_SEAL_SEAL as u32 != 0 {
        return Err(Errno::EPERM);
    }
    // Sealing against writes needs the file to have no shared mappings
    // that could write (Linux's `mapping_deny_writable`): this process's
    // are checked.
    let write = libc::F_SEAL_WRITE as u32;
    if add & write != 0 && seals & write == 0 && shared_mapped(t, rf) {
        return Err(Errno::EBUSY);
    }
    // F_SEAL_EXEC on an executable file makes it W^X from then on.
    if add & libc::F_SEAL_EXEC as u32 != 0 && meta.mode & 0o111 != 0 {
        add |= (libc::F_SEAL_SHRINK
            | libc::F_SEAL_GROW
            | libc::F_SEAL_WRITE
            | libc::F_SEAL_FUTURE_WRITE) as u32;
    }
    rf.seals
        .store(seals | add, std::sync::atomic::Ordering::Relaxed);
    Ok(0)
}

/// Whether the task maps `rf` shared.
fn shared_mapped(t: &Task, rf: &RegularFile) -> bool {
    let id = rf as *const RegularFile as usize;
    t.mm.vmas().iter().any(|(_, v)| {
        v.file
            .as_ref()
            .is_some_and(|fm| fm.shared && fm.file.id() == id)
    })
}
