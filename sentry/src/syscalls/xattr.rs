//! Extended attributes: setxattr, lsetxattr, fsetxattr, getxattr,
//! lgetxattr, fgetxattr, listxattr, llistxattr, flistxattr, removexattr,
//! lremovexattr, fremovexattr.
//!
//! tmpfs keeps `security.*`, `trusted.*` and `user.*` attributes in the
//! inode's map ([`InodeOps::xattrs`]), full names as keys; the gofer's
//! files keep `user.*` attributes on the host ([`InodeOps::remote_xattrs`],
//! other namespaces EOPNOTSUPP); other file systems have none
//! (EOPNOTSUPP). The checks are Linux's
//! `xattr_permission` and `xattr_resolve_name`, in its order.

use crate::sync::LockExt;
use std::sync::Arc;

use crate::errno::Errno;

use super::attr::get_file;
use super::file::{lookup_at, read_path};
use super::{Fd, Hex, SysResult, UserAddr, UserPath};
use crate::kernel::task::Task;
use crate::vfs::inode::{Change, Inode, InodeOps, RemoteXattrs, Timespec};
use crate::vfs::perm::{self, CAP_SYS_ADMIN, MAY_READ, MAY_WRITE};

/// XATTR_NAME_MAX.
const XATTR_NAME_MAX: usize = 255;
/// XATTR_SIZE_MAX: the largest value.
const XATTR_SIZE_MAX: usize = 65536;
/// XATTR_LIST_MAX: the largest list.
const XATTR_LIST_MAX: usize = 65536;
const XATTR_CREATE: u32 = 1;
const XATTR_REPLACE: u32 = 2;

const USER: &[u8] = b"user.";
const TRUSTED: &[u8] = b"trusted.";
const SECURITY: &[u8] = b"security.";
const SYSTEM: &[u8] = b"system.";
const POSIX_ACL_ACCESS: &[u8] = b"system.posix_acl_access";
const POSIX_ACL_DEFAULT: &[u8] = b"system.posix_acl_default";

/// Reads an attribute name as Linux's `import_xattr_name`: ERANGE when
/// empty or longer than XATTR_NAME_MAX, EFAULT when unreadable.
fn read_name(t: &Task, addr: u64) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; XATTR_NAME_MAX + 1];
    let n = t.mm.copy_in_partial(addr, &mut buf);
    match buf[..n].iter().position(|&b| b == 0) {
        Some(0) => Err(Errno::ERANGE),
        Some(len) => Ok(buf[..len].to_vec()),
        None if n < buf.len() => Err(Errno::EFAULT),
        None => Err(Errno::ERANGE),
    }
}

/// What the call acts on: an inode, and whether its mount is read-only.
struct Target {
    inode: Arc<Inode>,
    readonly: bool,
}

/// Resolves the path or fd of an xattr call (`path` None: the fd). Files
/// outside the tree (pipes) stand for themselves with their type, and
/// have no attributes.
fn target(t: &Task, fd: i32, path: Option<u64>, follow: bool) -> Result<Target, Errno> {
    let loc = match path {
        Some(p) => {
            let p = read_path(t, p)?;
            lookup_at(t, libc::AT_FDCWD, &p, follow, false)?
        }
        None => {
            let f = get_file(t, fd)?;
            match &f.location {
                Some(l) => l.clone(),
                None => crate::vfs::anon::location_for(&t.kernel.vfs, f.clone()),
            }
        }
    };
    Ok(Target {
        readonly: loc.mount.readonly(),
        inode: loc.inode,
    })
}

/// Linux's `xattr_permission`.
fn permission(t: &Task, inode: &Inode, name: &[u8], write: bool) -> Result<(), Errno> {
    if name.starts_with(SECURITY) || name.starts_with(SYSTEM) {
        return Ok(());
    }
    let meta = inode.meta();
    if name.starts_with(TRUSTED) {
        if !t.creds.has_cap(CAP_SYS_ADMIN) {
            return Err(if write { Errno::EPERM } else { Errno::ENODATA });
        }
        return Ok(());
    }
    if name.starts_with(USER) {
        let ft = meta.file_type();
        if ft != libc::S_IFREG && ft != libc::S_IFDIR {
            return Err(if write { Errno::EPERM } else { Errno::ENODATA });
        }
        if ft == libc::S_IFDIR
            && meta.mode & libc::S_ISVTX != 0
            && write
            && !perm::is_owner(&t.creds, &meta)
        {
            return Err(Errno::EPERM);
        }
    }
    perm::check(&t.creds, &meta, if write { MAY_WRITE } else { MAY_READ })
}

type XattrMap = std::sync::Mutex<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>;

/// Where a file's attributes are.
enum Store<'a> {
    /// In the inode (tmpfs).
    Map(&'a XattrMap),
    /// Elsewhere (a host file, through the gofer).
    Remote(&'a dyn RemoteXattrs),
}

/// Linux's `xattr_resolve_name`: where a name in one of the file
/// system's namespaces lives; EOPNOTSUPP for other names and other file
/// systems, EINVAL for a bare prefix.
fn resolve<'a>(ops: &'a dyn InodeOps, name: &[u8]) -> Result<Store<'a>, Errno> {
    let (store, prefixes): (Store<'a>, &[&[u8]]) = if let Some(map) = ops.xattrs() {
        (Store::Map(map), &[SECURITY, TRUSTED, USER])
    } else if let Some(r) = ops.remote_xattrs() {
        (Store::Remote(r), &[USER])
    } else {
        return Err(Errno::EOPNOTSUPP);
    };
    for prefix in prefixes {
        if let Some(rest) = name.strip_prefix(*prefix) {
            if rest.is_empty() {
                return Err(Errno::EINVAL);
            }
            return Ok(store);
        }
    }
    Err(Errno::EOPNOTSUPP)
}

/// Whether the file system has attributes at all.
fn has_xattrs(ops: &dyn InodeOps) -> bool {
    ops.xattrs().is_some() || ops.remote_xattrs().is_some()
}

fn is_posix_acl(name: &[u8]) -> bool {
    name == POSIX_ACL_ACCESS || name == POSIX_ACL_DEFAULT
}

// ----- set -----

#[allow(clippy::too_many_arguments)]
fn set_common(
    t: &Task,
    fd: i32,
    path: Option<u64>,
    follow: bool,
    name: u64,
    value: u64,
    size: usize,
    flags: u32,
) -> SysResult {
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = read_name(t, name)?;
    if size > XATTR_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let mut data = vec![0u8; size];
    if size > 0 {
        t.mm.copy_in(value, &mut data)?;
    }
    let tg = target(t, fd, path, follow)?;
    if tg.readonly {
        return Err(Errno::EROFS);
    }
    if is_posix_acl(&name) {
        return super::unimplemented(t, "setxattr of a POSIX ACL");
    }
    let inode = &tg.inode;
    permission(t, inode, &name, true)?;
    if name.starts_with(SECURITY) {
        if name == b"security.capability" {
            return super::unimplemented(t, "setxattr security.capability");
        }
        if !t.creds.has_cap(CAP_SYS_ADMIN) {
            return Err(Errno::EPERM);
        }
    }
    let map = match resolve(inode.ops.as_ref(), &name)? {
        Store::Map(m) => m,
        Store::Remote(r) => {
            inode.ops.prepare_change(t, inode, Change::Xattr)?;
            r.set(&name, &data, flags)?;
            inode.meta.locked().ctime = Timespec::now();
            inode.ops.changed(inode);
            crate::vfs::inotify::notify(inode, crate::vfs::inotify::IN_ATTRIB);
            return Ok(0);
        }
    };
    inode.ops.prepare_change(t, inode, Change::Xattr)?;
    {
        let mut m = map.locked();
        let exists = m.contains_key(&name);
        if exists && flags & XATTR_CREATE != 0 {
            return Err(Errno::EEXIST);
        }
        if !exists && flags & XATTR_REPLACE != 0 {
            return Err(Errno::ENODATA);
        }
        m.insert(name, data);
    }
    inode.meta.locked().ctime = Timespec::now();
    inode.ops.changed(inode);
    crate::vfs::inotify::notify(inode, crate::vfs::inotify::IN_ATTRIB);
    Ok(0)
}

pub fn setxattr(
    t: &mut Task,
    path: UserPath,
    name: UserPath,
    value: UserAddr,
    size: usize,
    flags: Hex,
) -> SysResult {
    set_common(
        t,
        -1,
        Some(path.0),
        true,
        name.0,
        value.0,
        size,
        flags.0 as u32,
    )
}

pub fn lsetxattr(
    t: &mut Task,
    path: UserPath,
    name: UserPath,
    value: UserAddr,
    size: usize,
    flags: Hex,
) -> SysResult {
    set_common(
        t,
        -1,
        Some(path.0),
        false,
        name.0,
        value.0,
        size,
        flags.0 as u32,
    )
}

pub fn fsetxattr(
    t: &mut Task,
    fd: Fd,
    name: UserPath,
    value: UserAddr,
    size: usize,
    flags: Hex,
) -> SysResult {
    set_common(t, fd.0, None, true, name.0, value.0, size, flags.0 as u32)
}

// ----- get -----

fn get_common(
    t: &Task,
    fd: i32,
    path: Option<u64>,
    follow: bool,
    name: u64,
    value: u64,
    size: usize,
) -> SysResult {
    let name = read_name(t, name)?;
    let size = size.min(XATTR_SIZE_MAX);
    let tg = target(t, fd, path, follow)?;
    let inode = &tg.inode;
    if is_posix_acl(&name) {
        // No file has an ACL.
        if !has_xattrs(inode.ops.as_ref()) {
            return Err(Errno::EOPNOTSUPP);
        }
        return Err(Errno::ENODATA);
    }
    permission(t, inode, &name, false)?;
    let v = match resolve(inode.ops.as_ref(), &name)? {
        Store::Map(map) => map.locked().get(&name).cloned().ok_or(Errno::ENODATA)?,
        Store::Remote(r) => r.get(&name)?,
    };
    if size == 0 {
        return Ok(v.len() as u64);
    }
    if v.len() > size {
        return Err(Errno::ERANGE);
    }
    t.mm.copy_out(value, &v)?;
    Ok(v.len() as u64)
}

pub fn getxattr(
    t: &mut Task,
    path: UserPath,
    name: UserPath,
    value: UserAddr,
    size: usize,
) -> SysResult {
    get_common(t, -1, Some(path.0), true, name.0, value.0, size)
}

pub fn lgetxattr(
    t: &mut Task,
    path: UserPath,
    name: UserPath,
    value: UserAddr,
    size: usize,
) -> SysResult {
    get_common(t, -1, Some(path.0), false, name.0, value.0, size)
}

pub fn fgetxattr(t: &mut Task, fd: Fd, name: UserPath, value: UserAddr, size: usize) -> SysResult {
    get_common(t, fd.0, None, true, name.0, value.0, size)
}

// ----- list -----

fn list_common(
    t: &Task,
    fd: i32,
    path: Option<u64>,
    follow: bool,
    list: u64,
    size: usize,
) -> SysResult {
    let size = size.min(XATTR_LIST_MAX);
    let tg = target(t, fd, path, follow)?;
    let names: Vec<Vec<u8>> = if let Some(map) = tg.inode.ops.xattrs() {
        // tmpfs lists in descending name order.
        map.locked().keys().rev().cloned().collect()
    } else if let Some(r) = tg.inode.ops.remote_xattrs() {
        r.list()?
    } else {
        return Ok(0);
    };
    let trusted = t.creds.has_cap(CAP_SYS_ADMIN);
    let mut out = Vec::new();
    for name in &names {
        if !trusted && name.starts_with(TRUSTED) {
            continue;
        }
        out.extend_from_slice(name);
        out.push(0);
    }
    if size == 0 {
        return Ok(out.len() as u64);
    }
    if out.len() > size {
        return Err(if size >= XATTR_LIST_MAX {
            Errno::E2BIG
        } else {
            Errno::ERANGE
        });
    }
    t.mm.copy_out(list, &out)?;
    Ok(out.len() as u64)
}

pub fn listxattr(t: &mut Task, path: UserPath, list: UserAddr, size: usize) -> SysResult {
    list_common(t, -1, Some(path.0), true, list.0, size)
}

pub fn llistxattr(t: &mut Task, path: UserPath, list: UserAddr, size: usize) -> SysResult {
    list_common(t, -1, Some(path.0), false, list.0, size)
}

pub fn flistxattr(t: &mut Task, fd: Fd, list: UserAddr, size: usize) -> SysResult {
    list_common(t, fd.0, None, true, list.0, size)
}

// ----- remove -----

fn remove_common(t: &Task, fd: i32, path: Option<u64>, follow: bool, name: u64) -> SysResult {
    let name = read_name(t, name)?;
    let tg = target(t, fd, path, follow)?;
    if tg.readonly {
        return Err(Errno::EROFS);
    }
    if is_posix_acl(&name) {
        return super::unimplemented(t, "removexattr of a POSIX ACL");
    }
    let inode = &tg.inode;
    permission(t, inode, &name, true)?;
    if name.starts_with(SECURITY) && !t.creds.has_cap(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let map = match resolve(inode.ops.as_ref(), &name)? {
        Store::Map(m) => m,
        Store::Remote(r) => {
            inode.ops.prepare_change(t, inode, Change::Xattr)?;
            r.remove(&name)?;
            inode.meta.locked().ctime = Timespec::now();
            inode.ops.changed(inode);
            crate::vfs::inotify::notify(inode, crate::vfs::inotify::IN_ATTRIB);
            return Ok(0);
        }
    };
    if !map.locked().contains_key(&name) {
        return Err(Errno::ENODATA);
    }
    inode.ops.prepare_change(t, inode, Change::Xattr)?;
    map.locked().remove(&name).ok_or(Errno::ENODATA)?;
    inode.meta.locked().ctime = Timespec::now();
    inode.ops.changed(inode);
    crate::vfs::inotify::notify(inode, crate::vfs::inotify::IN_ATTRIB);
    Ok(0)
}

pub fn removexattr(t: &mut Task, path: UserPath, name: UserPath) -> SysResult {
    remove_common(t, -1, Some(path.0), true, name.0)
}

pub fn lremovexattr(t: &mut Task, path: UserPath, name: UserPath) -> SysResult {
    remove_common(t, -1, Some(path.0), false, name.0)
}

pub fn fremovexattr(t: &mut Task, fd: Fd, name: UserPath) -> SysResult {
    remove_common(t, fd.0, None, true, name.0)
}
