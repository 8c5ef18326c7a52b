//! mount and umount2 inside the sandbox's mount table: new tmpfs, proc
//! and devpts instances, bind mounts, remounts that change a mount's
//! flags, and propagation changes (every mount is private, so they change
//! nothing).

use crate::sync::LockExt;
use std::sync::Arc;

use crate::errno::Errno;

use super::file::{lookup_at, read_path, PATH_MAX};
use super::{Hex, SysResult, UserAddr, UserPath};
use crate::fsimpl::tmpfs::new_tmpfs;
use crate::kernel::compat::{Degraded, Unsupported};
use crate::kernel::task::Task;
use crate::vfs::inode::{Filesystem, Inode};
use crate::vfs::mount::{Location, Mount, MountFlags};
use crate::vfs::perm::CAP_SYS_ADMIN;

const MS_RDONLY: u64 = 1;
const MS_NOSUID: u64 = 2;
const MS_NODEV: u64 = 4;
const MS_NOEXEC: u64 = 8;
const MS_REMOUNT: u64 = 32;
const MS_BIND: u64 = 4096;
const MS_MOVE: u64 = 8192;
const MS_REC: u64 = 16384;
const MS_SILENT: u64 = 32768;
const MS_UNBINDABLE: u64 = 1 << 17;
const MS_PRIVATE: u64 = 1 << 18;
const MS_SLAVE: u64 = 1 << 19;
const MS_SHARED: u64 = 1 << 20;
const MS_NOUSER: u64 = 1 << 31;
const MS_MGC_MSK: u64 = 0xffff_0000;
const MS_MGC_VAL: u64 = 0xc0ed_0000;
const MS_PROPAGATION: u64 = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;

const MNT_FORCE: u32 = 1;
const MNT_DETACH: u32 = 2;
const MNT_EXPIRE: u32 = 4;
const UMOUNT_NOFOLLOW: u32 = 8;

/// Linux's `copy_mount_string`: None for NULL; EFAULT, or EINVAL when
/// longer than PATH_MAX.
fn mount_string(t: &Task, addr: u64) -> Result<Option<Vec<u8>>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    match t.mm.read_cstring(addr, PATH_MAX) {
        Ok(s) => Ok(Some(s)),
        Err(Errno::ENAMETOOLONG) => Err(Errno::EINVAL),
        Err(e) => Err(e),
    }
}

/// Linux's `copy_mount_options`: up to a page, as much as is readable
/// (EFAULT when none is), cut at the first NUL.
fn mount_options(t: &Task, addr: u64) -> Result<Option<Vec<u8>>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let mut buf = vec![0u8; platform::PAGE_SIZE as usize];
    let n = t.mm.copy_in_partial(addr, &mut buf);
    if n == 0 {
        return Err(Errno::EFAULT);
    }
    buf.truncate(n.min(buf.len() - 1));
    if let Some(nul) = buf.iter().position(|&b| b == 0) {
        buf.truncate(nul);
    }
    Ok(Some(buf))
}

fn mount_flags(flags: u64) -> MountFlags {
    MountFlags {
        readonly: flags & MS_RDONLY != 0,
        nosuid: flags & MS_NOSUID != 0,
        nodev: flags & MS_NODEV != 0,
        noexec: flags & MS_NOEXEC != 0,
    }
}

/// Linux's `memparse`: a number (decimal, 0x hex or 0 octal) with an
/// optional K/M/G/T/P/E suffix; the rest of the string is returned.
fn memparse(s: &str) -> Option<(u64, &str)> {
    let (digits_start, radix) = if let Some(r) = s.strip_prefix("0x").or(s.strip_prefix("0X")) {
        (r, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    let end = digits_start
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits_start.len());
    if end == 0 && radix == 10 {
        return None;
    }
    let mut v = if end == 0 {
        0
    } else {
        u64::from_str_radix(&digits_start[..end], radix).ok()?
    };
    let mut rest = &digits_start[end..];
    let shift = match rest.chars().next().map(|c| c.to_ascii_uppercase()) {
        Some('E') => 60,
        Some('P') => 50,
        Some('T') => 40,
        Some('G') => 30,
        Some('M') => 20,
        Some('K') => 10,
        _ => 0,
    };
    if shift > 0 {
        v = v.checked_shl(shift).unwrap_or(0);
        rest = &rest[1..];
    }
    Some((v, rest))
}

/// File system types the sentry does not have (Linux: not configured).
const MOUNT_TYPE: Unsupported = Unsupported {
    syscall: "mount",
    argument: "type",
    answer: Errno::ENODEV,
};
/// Options of the sentry's file systems it does not know.
const MOUNT_OPTION: Unsupported = Unsupported {
    syscall: "mount",
    argument: "option",
    answer: Errno::EINVAL,
};
/// Moves, and recursive binds of trees with mounts: not implemented.
const MOUNT_FLAGS: Unsupported = Unsupported {
    syscall: "mount",
    argument: "flags",
    answer: Errno::ENOSYS,
};
/// Expiry marks, and unmounting the root: not implemented.
const UMOUNT_UNIMPLEMENTED: Unsupported = Unsupported {
    syscall: "umount2",
    argument: "target or flags",
    answer: Errno::ENOSYS,
};
/// Shared and slave mounts: accepted, but every mount stays private.
const MOUNT_PROPAGATION: Degraded = Degraded {
    syscall: "mount",
    what: "MS_SHARED or MS_SLAVE",
    behaviour: "accepted; every mount stays private, nothing propagates",
};

/// What tmpfs's mount options ask for.
#[derive(Default)]
struct TmpfsOptions {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    blocks: Option<u64>,
    inodes: Option<u64>,
    readonly: Option<bool>,
}

/// Parses tmpfs's options as `shmem_parse_one` does; EINVAL for unknown
/// options and bad values.
fn parse_tmpfs_options(t: &Task, data: &[u8]) -> Result<TmpfsOptions, Errno> {
    let mut o = TmpfsOptions::default();
    let text = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
    for opt in text.split(',').filter(|s| !s.is_empty()) {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        match (key, value) {
            ("ro", None) => o.readonly = Some(true),
            ("rw", None) => o.readonly = Some(false),
            ("sync" | "async" | "dirsync" | "lazytime" | "nolazytime" | "silent", None) => {}
            ("mode", Some(v)) => {
                let m = u32::from_str_radix(v, 8).map_err(|_| Errno::EINVAL)?;
                o.mode = Some(m & 0o7777);
            }
            ("uid", Some(v)) => o.uid = Some(v.parse().map_err(|_| Errno::EINVAL)?),
            ("gid", Some(v)) => o.gid = Some(v.parse().map_err(|_| Errno::EINVAL)?),
            ("size", Some(v)) => {
                let (size, rest) = memparse(v).ok_or(Errno::EINVAL)?;
                if !rest.is_empty() {
                    // A percentage of the sandbox's memory.
                    if rest != "%" {
                        return Err(Errno::EINVAL);
                    }
                    let pages = crate::fsimpl::tmpfs::memory_pages();
                    o.blocks = Some(size.saturating_mul(pages).div_ceil(100));
                } else {
                    o.blocks = Some(size.div_ceil(platform::PAGE_SIZE));
                }
            }
            ("nr_blocks", Some(v)) => {
                let (n, rest) = memparse(v).ok_or(Errno::EINVAL)?;
                if !rest.is_empty() {
                    return Err(Errno::EINVAL);
                }
                o.blocks = Some(n);
            }
            ("nr_inodes", Some(v)) => {
                let (n, rest) = memparse(v).ok_or(Errno::EINVAL)?;
                if !rest.is_empty() {
                    return Err(Errno::EINVAL);
                }
                o.inodes = Some(n);
            }
            ("huge", Some("never" | "always" | "within_size" | "advise"))
            | ("mpol", Some(_))
            | ("inode32" | "inode64" | "noswap", None) => {}
            _ => return MOUNT_OPTION.answer(t, format_args!("tmpfs {opt}")),
        }
    }
    Ok(o)
}

/// Applies size options to a tmpfs's statistics. A remount cannot give
/// a size to a tmpfs without one, nor one smaller than what its files use
/// (EINVAL, as Linux's shmem_reconfigure).
fn apply_tmpfs_stats(fs: &Filesystem, o: &TmpfsOptions, remount: bool) -> Result<(), Errno> {
    let mut st = fs.stats.locked();
    if let Some(b) = o.blocks {
        if remount && b != 0 && (st.blocks == 0 || b < st.blocks_used) {
            return Err(Errno::EINVAL);
        }
        st.blocks = b;
        st.blocks_free = b.saturating_sub(st.blocks_used);
    }
    if let Some(n) = o.inodes {
        st.files = n;
        st.files_free = n.saturating_sub(1);
    }
    Ok(())
}

/// A new file system, its root, and whether its options asked for it to
/// be read-only.
pub(crate) type NewFs = (Arc<Filesystem>, Arc<Inode>, Option<bool>);

/// A new file system of `fstype` for `mount`.
pub(crate) fn new_fs(t: &Task, fstype: &[u8], source: &[u8], data: &[u8]) -> Result<NewFs, Errno> {
    match fstype {
        b"tmpfs" => {
            let o = parse_tmpfs_options(t, data)?;
            let source = String::from_utf8_lossy(source);
            let (fs, root) = new_tmpfs(
                &t.kernel.vfs,
                &t.kernel.memory_file,
                &source,
                o.mode.unwrap_or(0o1777),
                o.uid.unwrap_or(t.creds.fsuid),
                o.gid.unwrap_or(t.creds.fsgid),
            );
            apply_tmpfs_stats(&fs, &o, false)?;
            Ok((fs, root, o.readonly))
        }
        b"proc" => {
            let (fs, root) = crate::fsimpl::procfs::new_procfs(t);
            Ok((fs, root, None))
        }
        b"sysfs" => {
            let (fs, root) = crate::fsimpl::sysfs::new_sysfs(t);
            Ok((fs, root, None))
        }
        b"overlay" => new_overlay_fs(t, source, data),
        b"devpts" => {
            let opts = crate::fsimpl::devpts::Options::parse(data)?;
            let source = String::from_utf8_lossy(source);
            let (fs, root) = crate::fsimpl::devpts::new_devpts(&t.kernel.vfs, &source, opts);
            Ok((fs, root, None))
        }
        // The IPC namespace's queues: every mount shows the same ones.
        b"mqueue" => {
            let (fs, root, _) = crate::fsimpl::mqueue::mqueue_fs(t);
            Ok((fs, root, None))
        }
        _ => MOUNT_TYPE.answer(t, String::from_utf8_lossy(fstype)),
    }
}

/// What overlay's mount options ask for.
#[derive(Default)]
struct OverlayOptions {
    lowerdir: Option<String>,
    upperdir: Option<String>,
    workdir: Option<String>,
}

/// Parses overlay's options as Linux's `ovl_parse_param` does: the three
/// directories, and the feature switches at the values this overlay has
/// (the defaults of a Linux without those features compiled in); other
/// values and unknown options are EINVAL.
fn parse_overlay_options(t: &Task, data: &[u8]) -> Result<OverlayOptions, Errno> {
    let text = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
    let mut o = OverlayOptions::default();
    for opt in text.split(',').filter(|s| !s.is_empty()) {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        match (key, value) {
            ("lowerdir", Some(v)) => o.lowerdir = Some(v.to_string()),
            ("upperdir", Some(v)) => o.upperdir = Some(v.to_string()),
            ("workdir", Some(v)) => o.workdir = Some(v.to_string()),
            ("redirect_dir", Some("off" | "nofollow" | "follow"))
            | ("index" | "nfs_export" | "metacopy" | "xino", Some("off"))
            | ("uuid", Some("off" | "null" | "auto" | "on"))
            | ("default_permissions" | "ro" | "rw" | "silent", None) => {}
            _ => return MOUNT_OPTION.answer(t, format_args!("overlay {opt}")),
        }
    }
    Ok(o)
}

/// A directory named by an overlay option.
fn overlay_dir(t: &Task, path: &str) -> Result<Location, Errno> {
    if path.is_empty() {
        return Err(Errno::EINVAL);
    }
    let loc = lookup_at(t, libc::AT_FDCWD, path.as_bytes(), true, false)?;
    if !loc.inode.is_dir() {
        return Err(Errno::EINVAL);
    }
    Ok(loc)
}

/// `mount -t overlay -o lowerdir=A[:B...][,upperdir=U,workdir=W]`: the
/// upper directory must be on a tmpfs, the work directory on the same
/// file system (it gets Linux's empty `work` directory, unused otherwise);
/// without an upper directory the overlay is read-only.
fn new_overlay_fs(t: &Task, source: &[u8], data: &[u8]) -> Result<NewFs, Errno> {
    let o = parse_overlay_options(t, data)?;
    let lowerdir = o.lowerdir.clone().ok_or(Errno::EINVAL)?;
    let mut lowers = Vec::new();
    for p in lowerdir.split(':') {
        lowers.push(overlay_dir(t, p)?.inode);
    }
    let upper = match &o.upperdir {
        Some(u) => {
            let w = o.workdir.as_deref().ok_or(Errno::EINVAL)?;
            let upper = overlay_dir(t, u)?;
            let work = overlay_dir(t, w)?;
            let tmpfs_dir = |l: &Location| {
                l.inode
                    .ops
                    .as_any()
                    .downcast_ref::<crate::fsimpl::tmpfs::Dir>()
                    .is_some()
            };
            if !tmpfs_dir(&upper) || !tmpfs_dir(&work) {
                return Err(Errno::EINVAL);
            }
            if !Arc::ptr_eq(&upper.mount, &work.mount) || Arc::ptr_eq(&upper.inode, &work.inode) {
                return Err(Errno::EINVAL);
            }
            if upper.mount.readonly() {
                return Err(Errno::EROFS);
            }
            if let Ok(d) = work.inode.ops.lookup(t, &work.inode, b"work") {
                if !d.is_dir() {
                    return Err(Errno::EINVAL);
                }
            } else {
                let d = work.inode.ops.create(
                    t,
                    &work.inode,
                    b"work",
                    crate::vfs::inode::NewNode::Directory { mode: 0 },
                )?;
                d.meta.locked().mode = libc::S_IFDIR;
            }
            Some(upper.inode)
        }
        None => None,
    };
    let mut options = format!("lowerdir={lowerdir}");
    if let (Some(u), Some(w)) = (&o.upperdir, &o.workdir) {
        options.push_str(&format!(",upperdir={u},workdir={w}"));
    }
    let readonly = upper.is_none();
    // Linux: "at least 2 lowerdir are needed while upperdir nonexistent".
    if readonly && lowers.len() < 2 {
        return Err(Errno::EINVAL);
    }
    let source = String::from_utf8_lossy(source);
    let (fs, root) =
        crate::fsimpl::overlay::new_overlay(&t.kernel.vfs, lowers, upper, &source, &options)?;
    Ok((fs, root, readonly.then_some(true)))
}

pub fn mount(
    t: &mut Task,
    source: UserPath,
    target: UserPath,
    fstype: UserPath,
    flags: Hex,
    data: UserAddr,
) -> SysResult {
    let fstype = mount_string(t, fstype.0)?;
    let source = mount_string(t, source.0)?;
    let data = mount_options(t, data.0)?.unwrap_or_default();
    let mut flags = flags.0;
    if flags & MS_MGC_MSK == MS_MGC_VAL {
        flags &= !MS_MGC_MSK;
    }
    let path = read_path(t, target.0)?;
    let at = lookup_at(t, libc::AT_FDCWD, &path, true, false)?;
    if flags & MS_NOUSER != 0 {
        return Err(Errno::EINVAL);
    }
    if !t.creds.has_cap(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let ns = t.fs.locked().mounts.clone();
    if flags & (MS_REMOUNT | MS_BIND) == MS_REMOUNT | MS_BIND {
        // Only the mount's own flags change.
        if !at.is_mount_root() {
            return Err(Errno::EINVAL);
        }
        *at.mount.flags.locked() = mount_flags(flags);
        return Ok(0);
    }
    if flags & MS_REMOUNT != 0 {
        if !at.is_mount_root() {
            return Err(Errno::EINVAL);
        }
        let mut readonly = flags & MS_RDONLY != 0;
        if at.mount.fs.type_name == "tmpfs" {
            let o = parse_tmpfs_options(t, &data)?;
            apply_tmpfs_stats(&at.mount.fs, &o, true)?;
            readonly = o.readonly.unwrap_or(readonly);
        }
        *at.mount.flags.locked() = MountFlags {
            readonly,
            ..mount_flags(flags)
        };
        return Ok(0);
    }
    if flags & MS_BIND != 0 {
        let src = source.filter(|s| !s.is_empty()).ok_or(Errno::EINVAL)?;
        let from = lookup_at(t, libc::AT_FDCWD, &src, true, false)?;
        if flags & MS_REC != 0 && has_submounts(&ns.all(), &from.mount) {
            return MOUNT_FLAGS.answer(t, "MS_BIND|MS_REC of a tree with mounts");
        }
        if at.inode.is_dir() != from.inode.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let mflags = *from.mount.flags.locked();
        ns.mount(&at, from.mount.fs.clone(), from.inode.clone(), mflags)?;
        return Ok(0);
    }
    if flags & MS_PROPAGATION != 0 {
        if !at.is_mount_root() {
            return Err(Errno::EINVAL);
        }
        let kind = flags & !(MS_REC | MS_SILENT);
        if kind & !MS_PROPAGATION != 0 || !kind.is_power_of_two() {
            return Err(Errno::EINVAL);
        }
        // Every mount of the sandbox is private: nothing propagates.
        if kind & (MS_SHARED | MS_SLAVE) != 0 {
            MOUNT_PROPAGATION.note(t);
        }
        return Ok(0);
    }
    if flags & MS_MOVE != 0 {
        return MOUNT_FLAGS.answer(t, "MS_MOVE");
    }
    let fstype = fstype.ok_or(Errno::EINVAL)?;
    let (fs, root, ro) = new_fs(t, &fstype, &source.unwrap_or_default(), &data)?;
    if !at.inode.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let mut mflags = mount_flags(flags);
    if let Some(ro) = ro {
        mflags.readonly |= ro;
    }
    ns.mount(&at, fs, root, mflags)?;
    Ok(0)
}

/// Whether anything is mounted inside `m`.
fn has_submounts(all: &[Arc<Mount>], m: &Arc<Mount>) -> bool {
    all.iter()
        .any(|c| c.parent.as_ref().is_some_and(|(pm, _)| Arc::ptr_eq(pm, m)))
}

/// The mounts below `m` (its submounts and theirs), deepest last.
fn submounts(all: &[Arc<Mount>], m: &Arc<Mount>) -> Vec<Arc<Mount>> {
    let mut out: Vec<Arc<Mount>> = Vec::new();
    let mut frontier = vec![m.clone()];
    while let Some(p) = frontier.pop() {
        for c in all {
            let child = c.parent.as_ref().is_some_and(|(pm, _)| Arc::ptr_eq(pm, &p));
            if child {
                out.push(c.clone());
                frontier.push(c.clone());
            }
        }
    }
    out
}

pub fn umount2(t: &mut Task, target: UserPath, flags: i32) -> SysResult {
    let flags = flags as u32;
    if flags & !(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = read_path(t, target.0)?;
    let follow = flags & UMOUNT_NOFOLLOW == 0;
    let at = lookup_at(t, libc::AT_FDCWD, &path, follow, false)?;
    if !t.creds.has_cap(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    if !at.is_mount_root() {
        return Err(Errno::EINVAL);
    }
    if flags & MNT_EXPIRE != 0 {
        if flags & (MNT_FORCE | MNT_DETACH) != 0 {
            return Err(Errno::EINVAL);
        }
        return UMOUNT_UNIMPLEMENTED.answer(t, "MNT_EXPIRE");
    }
    let ns = t.fs.locked().mounts.clone();
    if at.mount.parent.is_none() {
        return UMOUNT_UNIMPLEMENTED.answer(t, "the root mount");
    }
    // Busy: anything but the table and this lookup holds the mount (open
    // files, working directories), or something is mounted in it.
    let held = Arc::strong_count(&at.mount) > 2;
    let below = submounts(&ns.all(), &at.mount);
    if flags & MNT_DETACH == 0 && (held || !below.is_empty()) {
        return Err(Errno::EBUSY);
    }
    for m in below.iter().rev() {
        let loc = Location {
            mount: m.clone(),
            inode: m.root.clone(),
        };
        ns.umount(&loc)?;
    }
    ns.umount(&at)?;
    Ok(0)
}
