//! overlay: a merged view of read-only lower layers and a writable upper
//! layer, with Linux overlayfs's rules (Documentation/filesystems/
//! overlayfs.rst).
//!
//! - The lower layers are directories of any file system, top first; the
//!   upper layer is a directory of a sentry tmpfs. Nothing ever changes in
//!   a lower layer.
//! - Whiteouts and opaque directories are kept in the upper layer as
//!   Linux keeps them: a whiteout is a character device 0:0 named like the
//!   entry it hides, an opaque directory has the xattr
//!   `trusted.overlay.opaque="y"` (tmpfs stores `trusted.*`). Whiteouts and
//!   opaque directories in lower layers are honoured too.
//! - Every file of the overlay is an overlay inode of its own (st_dev of
//!   the overlay, an inode number given at first lookup), kept in its
//!   directory's cache of children for the life of the mount, so a name
//!   looks up to the same inode every time and its number never changes,
//!   also across copy-up. Its metadata is what `stat` shows; changes made
//!   through the VFS are written through to the upper copy
//!   ([`InodeOps::changed`]), changes made by the upper file (writes,
//!   truncation) are read back after each call.
//! - Copy-up happens before any change to a lower file or directory
//!   (write-open, truncate, chmod, chown, utimes, xattrs, link, rename;
//!   [`InodeOps::prepare_change`]): parents first (mode, owner, times,
//!   xattrs), then the file with all its data at once, its mode, owner,
//!   times and xattrs (symlinks with their target, devices and FIFOs with
//!   their type and number). A file opened before the copy-up keeps the
//!   lower file; opens after it get the upper one.
//! - Removing an entry that exists in a lower layer leaves a whiteout;
//!   `mkdir` over a whiteout makes an opaque directory. Renaming a
//!   directory that has a lower layer is EXDEV (Linux without
//!   `redirect_dir`); files are copied up and moved, leaving a whiteout.
//! - Hard links within a lower layer show as separate files that share
//!   nothing after one of them is copied up (Linux without `index=on`
//!   breaks them the same way).
//! - `statfs` shows the upper file system's numbers (the top lower's for
//!   a read-only overlay) with overlayfs's magic.

use crate::sync::LockExt;
use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::errno::Errno;
use crate::fsimpl::tmpfs;
use crate::kernel::task::Task;
use crate::vfs::inode::{Change, DirEntry, Filesystem, Inode, InodeMeta, InodeOps, NewNode};
use crate::vfs::{FileDescription, FileImpl, VfsState};

/// statfs f_type of overlayfs.
pub const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// The xattr that makes an upper directory opaque.
pub const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";

/// The overlay's own xattrs, never shown through it.
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

/// The most a copy-up moves in one read.
const COPY_CHUNK: usize = 1 << 20;

type XattrMap = BTreeMap<Vec<u8>, Vec<u8>>;

/// A new overlay of `lowers` (directories of any file systems, the top
/// layer first) and `upper` (a directory of a tmpfs; None: a read-only
/// overlay, which the caller mounts read-only): its file system and root.
/// `source` and `options` are what /proc/mounts shows. EINVAL when there
/// is no lower layer, when a layer is not a directory, or when the upper
/// layer is not a tmpfs directory.
pub fn new_overlay(
    vfs: &VfsState,
    lowers: Vec<Arc<Inode>>,
    upper: Option<Arc<Inode>>,
    source: &str,
    options: &str,
) -> Result<(Arc<Filesystem>, Arc<Inode>), Errno> {
    if lowers.is_empty() || lowers.iter().any(|l| !l.is_dir()) {
        return Err(Errno::EINVAL);
    }
    if let Some(u) = &upper {
        if upper_dir(u).is_none() {
            return Err(Errno::EINVAL);
        }
    }
    let fs = Filesystem::new(vfs, "overlay", source, OVERLAYFS_SUPER_MAGIC, options);
    let shared = Arc::new(Shared {
        stats_from: match &upper {
            Some(u) => u.fs.clone(),
            None => lowers[0].fs.clone(),
        },
        copy_lock: Mutex::new(()),
    });
    let root = make_node(&fs, &shared, upper, lowers);
    shared.sync_stats(&fs);
    Ok((fs, root))
}

/// What all inodes of one overlay share.
struct Shared {
    /// Whose statfs numbers the overlay shows.
    stats_from: Arc<Filesystem>,
    /// Held while the upper layer's tree changes (copy-up, create,
    /// remove, insert), so that two copy-ups of one file or of one parent
    /// never race.
    copy_lock: Mutex<()>,
}

impl Shared {
    fn sync_stats(&self, fs: &Filesystem) {
        let mut s = *self.stats_from.stats.locked();
        s.magic = OVERLAYFS_SUPER_MAGIC;
        *fs.stats.locked() = s;
    }
}

/// An entry in a directory's cache of children: an inode with an upper
/// file (its state is the upper layer's, and stays), or a weak reference
/// to one that only shows lower files (found again from the lower layers
/// once nothing holds it: the cache of a large image stays bounded).
enum Cached {
    Pinned(Child),
    Clean {
        inode: std::sync::Weak<Inode>,
        lower_positive: bool,
    },
}

/// A directory's child, as the cache gives it.
#[derive(Clone)]
struct Child {
    inode: Arc<Inode>,
    /// Whether a lower layer has the name (under no whiteout or opaque
    /// directory): removing the entry must then leave a whiteout.
    lower_positive: bool,
}

/// An overlay inode.
pub struct Node {
    shared: Arc<Shared>,
    /// The upper file, once there is one.
    upper: Mutex<Option<Arc<Inode>>>,
    /// Directories: the lower directories merged into this one, top
    /// first. Other files: the lower file (none when it was made in the
    /// upper layer).
    lowers: Vec<Arc<Inode>>,
    /// Directories: the children looked up so far.
    children: Mutex<HashMap<Vec<u8>, Cached>>,
    /// The directory this inode was found in, kept alive while it lives
    /// (for `..`, and for copying up its parents).
    parent: Mutex<Option<Arc<Inode>>>,
    /// The xattrs shown (the overlay's own left out).
    xattrs: Mutex<XattrMap>,
}

fn node(inode: &Inode) -> Option<&Node> {
    inode.ops.as_any().downcast_ref::<Node>()
}

fn upper_dir(inode: &Inode) -> Option<&tmpfs::Dir> {
    inode.ops.as_any().downcast_ref::<tmpfs::Dir>()
}

/// Whether `inode` is a whiteout: a character device 0:0.
pub fn is_whiteout(inode: &Inode) -> bool {
    let m = inode.meta.locked();
    m.file_type() == libc::S_IFCHR && m.rdev == 0
}

/// Whether `inode` is an opaque directory.
pub fn is_opaque(inode: &Inode) -> bool {
    inode.is_dir()
        && inode
            .ops
            .xattrs()
            .is_some_and(|x| x.locked().get(OPAQUE_XATTR).is_some_and(|v| v == b"y"))
}

/// The xattrs of `inode` that the overlay shows.
fn visible_xattrs(inode: &Inode) -> XattrMap {
    inode.ops.xattrs().map_or_else(BTreeMap::new, |x| {
        x.locked()
            .iter()
            .filter(|(k, _)| !k.starts_with(OVERLAY_XATTR_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    })
}

/// A new overlay inode for `upper` and `lowers` (see [`Node`]).
fn make_node(
    fs: &Arc<Filesystem>,
    shared: &Arc<Shared>,
    upper: Option<Arc<Inode>>,
    lowers: Vec<Arc<Inode>>,
) -> Arc<Inode> {
    let real = match &upper {
        Some(u) => u.clone(),
        None => lowers[0].clone(),
    };
    let mut meta = real.meta();
    // Linux: "nlink=1 seems to pacify 'find' and other utilities" for
    // merged directories.
    if meta.is_dir() && upper.is_some() && !lowers.is_empty() {
        meta.nlink = 1;
    }
    // The real file's inode number (as Linux's overlay shows it without
    // xino): the same each time the file is found again.
    Arc::new(Inode {
        ino: real.ino,
        fs: fs.clone(),
        meta: Mutex::new(meta),
        ops: Box::new(Node {
            shared: shared.clone(),
            upper: Mutex::new(upper),
            lowers,
            children: Mutex::new(HashMap::new()),
            parent: Mutex::new(None),
            xattrs: Mutex::new(visible_xattrs(&real)),
        }),
        parent: Mutex::new(None),
        locks: Default::default(),
        watches: Default::default(),
    })
}

/// Records where `inode` was found (see [`Node::parent`]).
fn set_place(inode: &Arc<Inode>, dir: &Arc<Inode>, name: &[u8]) {
    inode.set_parent(dir, name);
    if let Some(n) = node(inode) {
        *n.parent.locked() = Some(dir.clone());
    }
}

/// Sets an upper inode's mode, owner and times to `meta`'s.
fn set_upper_meta(upper: &Inode, meta: &InodeMeta) {
    let mut m = upper.meta.locked();
    m.mode = meta.mode;
    m.uid = meta.uid;
    m.gid = meta.gid;
    m.atime = meta.atime;
    m.mtime = meta.mtime;
    m.ctime = meta.ctime;
}

/// Makes the upper inode's xattrs the overlay's, keeping the overlay's
/// own.
fn set_upper_xattrs(upper: &Inode, shown: &XattrMap) {
    if let Some(x) = upper.ops.xattrs() {
        let mut x = x.locked();
        x.retain(|k, _| k.starts_with(OVERLAY_XATTR_PREFIX));
        x.extend(shown.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// Leaves a whiteout named `name` in the upper directory `dir`.
fn make_whiteout(dir: &Arc<Inode>, name: &[u8]) -> Result<(), Errno> {
    let d = upper_dir(dir).ok_or(Errno::EIO)?;
    let w = d.create_as(
        dir,
        name,
        NewNode::Node {
            mode: libc::S_IFCHR,
            rdev: 0,
        },
        0,
        0,
    )?;
    w.meta.locked().mode = libc::S_IFCHR;
    Ok(())
}

/// The file's path from the overlay's root, for /proc/[pid]/maps.
fn overlay_path(inode: &Arc<Inode>) -> String {
    let mut parts = Vec::new();
    let mut cur = inode.clone();
    for _ in 0..4096 {
        match cur.parent() {
            Some((p, name)) => {
                parts.push(String::from_utf8_lossy(&name).into_owned());
                cur = p;
            }
            None => break,
        }
    }
    parts.reverse();
    format!("/{}", parts.join("/"))
}

impl Node {
    fn upper(&self) -> Option<Arc<Inode>> {
        self.upper.locked().clone()
    }

    /// The file that holds the data now: the upper one or the lower one.
    fn real(&self) -> Arc<Inode> {
        self.upper().unwrap_or_else(|| self.lowers[0].clone())
    }

    /// Copies `inode` (this node's) up with its parents; returns the
    /// upper file.
    fn copy_up(&self, t: &Task, inode: &Arc<Inode>) -> Result<Arc<Inode>, Errno> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        let _g = self.shared.copy_lock.locked();
        self.copy_up_locked(Some(t), inode)
    }

    /// As [`copy_up`](Self::copy_up), with the copy lock held; without a
    /// task only directories can be copied up (they need nothing read
    /// from their lower layer: their entries stay there).
    fn copy_up_locked(&self, t: Option<&Task>, inode: &Arc<Inode>) -> Result<Arc<Inode>, Errno> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        // The root always has an upper layer unless the overlay is
        // read-only.
        let (parent, name) = inode.parent().ok_or(Errno::EROFS)?;
        let pnode = node(&parent).ok_or(Errno::EIO)?;
        let pu = pnode.copy_up_locked(t, &parent)?;
        let pd = upper_dir(&pu).ok_or(Errno::EIO)?;
        if pd.get(&name).is_some() {
            // A visible lower file has no upper entry of its name.
            return Err(Errno::EIO);
        }
        let meta = inode.meta();
        let lower = &self.lowers[0];
        let u = match meta.file_type() {
            libc::S_IFDIR => pd.create_as(
                &pu,
                &name,
                NewNode::Directory {
                    mode: meta.mode & 0o7777,
                },
                meta.uid,
                meta.gid,
            )?,
            libc::S_IFLNK => {
                let t = t.ok_or(Errno::EIO)?;
                let target = lower.ops.readlink(t, lower)?;
                pd.create_as(&pu, &name, NewNode::Symlink { target }, meta.uid, meta.gid)?
            }
            libc::S_IFREG => {
                let t = t.ok_or(Errno::EIO)?;
                let u = pd.create_as(
                    &pu,
                    &name,
                    NewNode::Node {
                        mode: meta.mode,
                        rdev: 0,
                    },
                    meta.uid,
                    meta.gid,
                )?;
                if let Err(e) = copy_data(t, lower, &u, meta.size) {
                    let _ = pu.ops.remove(&pu, &name);
                    return Err(e);
                }
                u
            }
            _ => pd.create_as(
                &pu,
                &name,
                NewNode::Node {
                    mode: meta.mode,
                    rdev: meta.rdev,
                },
                meta.uid,
                meta.gid,
            )?,
        };
        set_upper_meta(&u, &meta);
        set_upper_xattrs(&u, &self.xattrs.locked());
        *self.upper.locked() = Some(u.clone());
        pnode.pin(&name, inode);
        if meta.is_dir() {
            inode.meta.locked().nlink = 1;
        }
        self.shared.sync_stats(&inode.fs);
        Ok(u)
    }

    /// Brings a directory's shown metadata up to date after its upper
    /// directory changed.
    fn dir_changed(&self, dir: &Arc<Inode>) {
        if let Some(u) = self.upper() {
            let um = u.meta();
            let mut m = dir.meta.locked();
            m.mtime = um.mtime;
            m.ctime = um.ctime;
            m.size = um.size;
            m.nlink = if self.lowers.is_empty() { um.nlink } else { 1 };
        }
        self.shared.sync_stats(&dir.fs);
    }

    fn cached(&self, name: &[u8]) -> Option<Child> {
        match self.children.locked().get(name)? {
            Cached::Pinned(c) => Some(c.clone()),
            Cached::Clean {
                inode,
                lower_positive,
            } => inode.upgrade().map(|inode| Child {
                inode,
                lower_positive: *lower_positive,
            }),
        }
    }

    /// Keeps the child `name` (which now has an upper file) in the cache.
    fn pin(&self, name: &[u8], inode: &Arc<Inode>) {
        let mut c = self.children.locked();
        let lower_positive = match c.get(name) {
            Some(Cached::Pinned(ch)) => ch.lower_positive,
            Some(Cached::Clean { lower_positive, .. }) => *lower_positive,
            None => true,
        };
        c.insert(
            name.to_vec(),
            Cached::Pinned(Child {
                inode: inode.clone(),
                lower_positive,
            }),
        );
    }

    fn remember(&self, name: &[u8], child: Child) {
        let mut c = self.children.locked();
        if c.len() >= 1024 && c.len().is_power_of_two() {
            c.retain(|_, e| match e {
                Cached::Pinned(_) => true,
                Cached::Clean { inode, .. } => inode.strong_count() > 0,
            });
        }
        let pinned = node(&child.inode).is_some_and(|n| n.upper().is_some());
        let e = if pinned {
            Cached::Pinned(child)
        } else {
            Cached::Clean {
                inode: Arc::downgrade(&child.inode),
                lower_positive: child.lower_positive,
            }
        };
        c.insert(name.to_vec(), e);
    }
}

/// Copies a regular file's data from `lower` into the new upper file `u`.
fn copy_data(t: &Task, lower: &Arc<Inode>, u: &Arc<Inode>, size: u64) -> Result<(), Errno> {
    let src = FileDescription::new(libc::O_RDONLY as u32, lower.ops.open(t, lower, 0)?);
    let dst = FileDescription::new(libc::O_WRONLY as u32, u.ops.open(t, u, 1)?);
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut off = 0u64;
    loop {
        let n = src.imp.read(&src, &mut buf, Some(off))?;
        if n == 0 {
            break;
        }
        // Runs of zeroes stay holes.
        if buf[..n].iter().any(|&b| b != 0) {
            let mut done = 0;
            while done < n {
                let w = dst
                    .imp
                    .write(&dst, &buf[done..n], Some(off + done as u64))?;
                if w == 0 {
                    return Err(Errno::ENOSPC);
                }
                done += w;
            }
        }
        off += n as u64;
    }
    let end = off.max(size);
    if u.meta().size != end {
        u.ops.truncate(u, end)?;
    }
    Ok(())
}

impl InodeOps for Node {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn data_inode(&self) -> Option<Arc<Inode>> {
        // Only a copied-up regular file: a lower one is never changed.
        self.upper().filter(|u| {
            u.ops
                .as_any()
                .downcast_ref::<tmpfs::RegularFile>()
                .is_some()
        })
    }

    fn data_changed(&self, inode: &Arc<Inode>) {
        if let Some(u) = self.upper() {
            pull_data_meta(&u, inode);
            self.shared.sync_stats(&inode.fs);
        }
    }

    fn lookup(&self, t: &Task, dir: &Arc<Inode>, name: &[u8]) -> Result<Arc<Inode>, Errno> {
        if !dir.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if let Some(c) = self.cached(name) {
            return Ok(c.inode);
        }
        let mut upper = None;
        if let Some(ud) = self.upper() {
            if let Some(u) = upper_dir(&ud).and_then(|d| d.get(name)) {
                if is_whiteout(&u) {
                    return Err(Errno::ENOENT);
                }
                upper = Some(u);
            }
        }
        let upper_opaque = upper.as_ref().is_some_and(|u| !u.is_dir() || is_opaque(u));
        let mut found: Vec<Arc<Inode>> = Vec::new();
        let mut lower_positive = false;
        for l in &self.lowers {
            let x = match l.ops.lookup(t, l, name) {
                Ok(x) => x,
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(e),
            };
            if is_whiteout(&x) {
                break;
            }
            lower_positive = true;
            // What lies above: a directory merges with lower directories
            // only, anything else hides what is below it.
            let merges = match (&upper, found.last()) {
                (Some(_), _) => !upper_opaque && x.is_dir(),
                (None, Some(f)) => f.is_dir() && x.is_dir(),
                (None, None) => true,
            };
            if !merges {
                break;
            }
            let stop = !x.is_dir() || is_opaque(&x);
            found.push(x);
            if stop {
                break;
            }
        }
        if upper.is_none() && found.is_empty() {
            return Err(Errno::ENOENT);
        }
        let inode = make_node(&dir.fs, &self.shared, upper, found);
        set_place(&inode, dir, name);
        // Another lookup of the name may have won the race.
        if let Some(c) = self.cached(name) {
            return Ok(c.inode);
        }
        self.remember(
            name,
            Child {
                inode: inode.clone(),
                lower_positive,
            },
        );
        Ok(inode)
    }

    fn entries(&self, t: &Task, _dir: &Arc<Inode>) -> Result<Vec<DirEntry>, Errno> {
        // Merged from the layers' own listings, top first, without
        // looking each name up: an upper name (a whiteout too) hides the
        // lower ones; an opaque directory hides what lies below it.
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let ino_of = |name: &[u8], ino: u64| self.cached(name).map_or(ino, |c| c.inode.ino);
        let mut opaque = false;
        if let Some(u) = self.upper() {
            let ud = upper_dir(&u);
            for e in u.ops.entries(t, &u)? {
                seen.insert(e.name.clone());
                if e.kind == libc::DT_CHR
                    && ud
                        .and_then(|d| d.get(&e.name))
                        .is_some_and(|x| is_whiteout(&x))
                {
                    continue;
                }
                let ino = ino_of(&e.name, e.ino);
                out.push(DirEntry { ino, ..e });
            }
            opaque = is_opaque(&u);
        }
        if !opaque {
            for l in &self.lowers {
                for e in l.ops.entries(t, l)? {
                    if !seen.insert(e.name.clone()) {
                        continue;
                    }
                    if e.kind == libc::DT_CHR
                        && l.ops.lookup(t, l, &e.name).is_ok_and(|x| is_whiteout(&x))
                    {
                        continue;
                    }
                    let ino = ino_of(&e.name, e.ino);
                    out.push(DirEntry { ino, ..e });
                }
                if is_opaque(l) {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn create(
        &self,
        t: &Task,
        dir: &Arc<Inode>,
        name: &[u8],
        new: NewNode,
    ) -> Result<Arc<Inode>, Errno> {
        let _g = self.shared.copy_lock.locked();
        let ud = self.copy_up_locked(Some(t), dir)?;
        let d = upper_dir(&ud).ok_or(Errno::EIO)?;
        let mut over_whiteout = false;
        if let Some(e) = d.get(name) {
            if !is_whiteout(&e) {
                return Err(Errno::EEXIST);
            }
            ud.ops.remove(&ud, name)?;
            over_whiteout = true;
        }
        let u = match ud.ops.create(t, &ud, name, new) {
            Ok(u) => u,
            Err(e) => {
                if over_whiteout {
                    let _ = make_whiteout(&ud, name);
                }
                return Err(e);
            }
        };
        if over_whiteout && u.is_dir() {
            if let Some(x) = u.ops.xattrs() {
                x.locked().insert(OPAQUE_XATTR.to_vec(), b"y".to_vec());
            }
        }
        let inode = make_node(&dir.fs, &self.shared, Some(u), Vec::new());
        set_place(&inode, dir, name);
        self.remember(
            name,
            Child {
                inode: inode.clone(),
                lower_positive: over_whiteout,
            },
        );
        self.dir_changed(dir);
        Ok(inode)
    }

    fn insert(
        &self,
        dir: &Arc<Inode>,
        name: &[u8],
        target: &Arc<Inode>,
        replace: bool,
    ) -> Result<Option<Arc<Inode>>, Errno> {
        if !Arc::ptr_eq(&target.fs, &dir.fs) {
            return Err(Errno::EXDEV);
        }
        // The VFS had the target copied up (prepare_change).
        let tu = node(target).and_then(|n| n.upper()).ok_or(Errno::EXDEV)?;
        let _g = self.shared.copy_lock.locked();
        let ud = self.copy_up_locked(None, dir)?;
        let d = upper_dir(&ud).ok_or(Errno::EIO)?;
        let old = self.cached(name);
        if old.is_some() && !replace {
            return Err(Errno::EEXIST);
        }
        let mut lower_positive = old.as_ref().is_some_and(|c| c.lower_positive);
        if let Some(e) = d.get(name) {
            if is_whiteout(&e) {
                lower_positive = true;
            } else if old.is_none() && !replace {
                return Err(Errno::EEXIST);
            }
        }
        let replaced = ud.ops.insert(&ud, name, &tu, true)?;
        if let Some(r) = replaced {
            if !r.is_dir() && !is_whiteout(&r) {
                let mut m = r.meta.locked();
                m.nlink = m.nlink.saturating_sub(1);
            }
        }
        if tu.is_dir() {
            if lower_positive {
                // What the lower layers have under this name stays hidden.
                if let Some(x) = tu.ops.xattrs() {
                    x.locked().insert(OPAQUE_XATTR.to_vec(), b"y".to_vec());
                }
            }
        } else {
            tu.meta.locked().nlink += 1;
        }
        set_place(target, dir, name);
        self.remember(
            name,
            Child {
                inode: target.clone(),
                lower_positive,
            },
        );
        self.dir_changed(dir);
        Ok(old.map(|c| c.inode))
    }

    fn remove(&self, dir: &Arc<Inode>, name: &[u8]) -> Result<Arc<Inode>, Errno> {
        let _g = self.shared.copy_lock.locked();
        // The VFS looked the entry up: it is in the cache.
        let child = self.cached(name).ok_or(Errno::ENOENT)?;
        let ud = self.copy_up_locked(None, dir)?;
        let d = upper_dir(&ud).ok_or(Errno::EIO)?;
        if let Some(cu) = node(&child.inode).and_then(|n| n.upper()) {
            if d.get(name).is_some_and(|e| Arc::ptr_eq(&e, &cu)) {
                ud.ops.remove(&ud, name)?;
                if !cu.is_dir() {
                    let mut m = cu.meta.locked();
                    m.nlink = m.nlink.saturating_sub(1);
                }
            }
        }
        if child.lower_positive {
            make_whiteout(&ud, name)?;
        }
        self.children.locked().remove(name);
        self.dir_changed(dir);
        Ok(child.inode)
    }

    fn readlink(&self, t: &Task, _inode: &Arc<Inode>) -> Result<Vec<u8>, Errno> {
        let r = self.real();
        r.ops.readlink(t, &r)
    }

    fn open(&self, t: &Task, inode: &Arc<Inode>, flags: u32) -> Result<Box<dyn FileImpl>, Errno> {
        if inode.is_dir() {
            // Listings come from this inode's entries.
            return Ok(Box::new(crate::vfs::DirFile::new()));
        }
        let acc = flags & libc::O_ACCMODE as u32;
        let write = acc != libc::O_RDONLY as u32 || flags & libc::O_TRUNC as u32 != 0;
        let real = if write && inode.meta().file_type() == libc::S_IFREG {
            self.copy_up(t, inode)?
        } else {
            self.real()
        };
        let is_upper = self.upper().is_some_and(|u| Arc::ptr_eq(&u, &real));
        let imp = real.ops.open(t, &real, flags)?;
        Ok(Box::new(OverlayFile {
            overlay: inode.clone(),
            real: Mutex::new(Arc::new(RealFile {
                inode: real,
                imp,
                is_upper,
            })),
            name: overlay_path(inode),
        }))
    }

    fn truncate(&self, inode: &Arc<Inode>, size: u64) -> Result<(), Errno> {
        // The VFS had the file copied up (prepare_change, or the open).
        let u = self.upper().ok_or(Errno::EROFS)?;
        u.ops.truncate(&u, size)?;
        pull_data_meta(&u, inode);
        self.shared.sync_stats(&inode.fs);
        Ok(())
    }

    fn settable(&self) -> Result<(), Errno> {
        self.real().ops.settable()
    }

    fn prepare_change(&self, t: &Task, inode: &Arc<Inode>, change: Change) -> Result<(), Errno> {
        if change == Change::Rename && inode.is_dir() && !self.lowers.is_empty() {
            // Linux without redirect_dir: userspace copies instead.
            return Err(Errno::EXDEV);
        }
        self.copy_up(t, inode)?;
        Ok(())
    }

    fn changed(&self, inode: &Arc<Inode>) {
        if let Some(u) = self.upper() {
            set_upper_meta(&u, &inode.meta());
            set_upper_xattrs(&u, &self.xattrs.locked());
        }
    }

    fn xattrs(&self) -> Option<&Mutex<XattrMap>> {
        Some(&self.xattrs)
    }
}

/// Copies what the upper file's own I/O changes (size, space, times)
/// into the overlay inode.
fn pull_data_meta(real: &Inode, overlay: &Inode) {
    let r = real.meta();
    let mut m = overlay.meta.locked();
    m.size = r.size;
    m.blocks_bytes = r.blocks_bytes;
    m.atime = r.atime;
    m.mtime = r.mtime;
    m.ctime = r.ctime;
}

/// The file an open overlay file reads and writes now.
struct RealFile {
    inode: Arc<Inode>,
    imp: Box<dyn FileImpl>,
    /// Whether `inode` is the upper file (whose changes are shown).
    is_upper: bool,
}

/// An open overlay file: the real (upper or lower) file's own
/// implementation, given the overlay's description (positions and status
/// flags live there). A regular file opened before its copy-up moves to
/// the upper file at its next call, as Linux's stacked file operations
/// do (since 4.19); its mappings made before stay on the lower file.
struct OverlayFile {
    overlay: Arc<Inode>,
    real: Mutex<Arc<RealFile>>,
    /// The path in the overlay, for /proc/[pid]/maps.
    name: String,
}

impl OverlayFile {
    /// The real file, the upper one if the file was copied up since.
    fn real(&self) -> Arc<RealFile> {
        let mut r = self.real.locked();
        if !r.is_upper && self.overlay.meta.locked().file_type() == libc::S_IFREG {
            if let Some(u) = node(&self.overlay).and_then(|n| n.upper()) {
                if u.ops
                    .as_any()
                    .downcast_ref::<tmpfs::RegularFile>()
                    .is_some()
                {
                    *r = Arc::new(RealFile {
                        inode: u.clone(),
                        imp: Box::new(tmpfs::RegularFileDescription { inode: u }),
                        is_upper: true,
                    });
                }
            }
        }
        r.clone()
    }

    fn after<T>(&self, real: &RealFile, r: Result<T, Errno>) -> Result<T, Errno> {
        if real.is_upper {
            pull_data_meta(&real.inode, &self.overlay);
            if let Some(n) = node(&self.overlay) {
                n.shared.sync_stats(&self.overlay.fs);
            }
        }
        r
    }
}

impl FileImpl for OverlayFile {
    fn read(
        &self,
        file: &FileDescription,
        dst: &mut [u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let real = self.real();
        let r = real.imp.read(file, dst, offset);
        self.after(&real, r)
    }

    fn write(
        &self,
        file: &FileDescription,
        src: &[u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let real = self.real();
        let r = real.imp.write(file, src, offset);
        self.after(&real, r)
    }

    fn read_short(
        &self,
        file: &FileDescription,
        dst: &mut [u8],
        want: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let real = self.real();
        let r = real.imp.read_short(file, dst, want, offset);
        self.after(&real, r)
    }

    fn write_short(
        &self,
        file: &FileDescription,
        src: &[u8],
        want: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let real = self.real();
        let r = real.imp.write_short(file, src, want, offset);
        self.after(&real, r)
    }

    fn positional(&self, file: &FileDescription) -> bool {
        self.real().imp.positional(file)
    }

    fn seek(&self, file: &FileDescription, offset: i64, whence: i32) -> Result<u64, Errno> {
        self.real().imp.seek(file, offset, whence)
    }

    fn ioctl(
        &self,
        file: &FileDescription,
        t: &mut Task,
        request: u32,
        arg: u64,
    ) -> Result<u64, Errno> {
        self.real().imp.ioctl(file, t, request, arg)
    }

    fn readiness(&self, file: &FileDescription, events: i16) -> i16 {
        self.real().imp.readiness(file, events)
    }

    fn waitq(&self, file: &FileDescription) -> Option<Arc<crate::kernel::waiter::WaitQueue>> {
        self.real().imp.waitq(file)
    }

    fn wait_ready(&self, file: &FileDescription, events: i16, timeout_ms: i32) -> i16 {
        self.real().imp.wait_ready(file, events, timeout_ms)
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn direct_io(&self) -> bool {
        self.real().imp.direct_io()
    }

    fn read_to_memory(
        &self,
        file: &FileDescription,
        mf: &crate::mm::MemoryFile,
        dst: u64,
        len: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let real = self.real();
        let r = real.imp.read_to_memory(file, mf, dst, len, offset);
        self.after(&real, r)
    }

    fn write_from_memory(
        &self,
        file: &FileDescription,
        mf: &crate::mm::MemoryFile,
        src: u64,
        len: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        let real = self.real();
        let r = real.imp.write_from_memory(file, mf, src, len, offset);
        self.after(&real, r)
    }

    fn status_flags_changed(&self, flags: u32) {
        self.real().imp.status_flags_changed(flags)
    }

    fn pipe(&self) -> Option<Arc<crate::fsimpl::pipe::Pipe>> {
        self.real().imp.pipe()
    }

    fn pipe_size(&self) -> Option<usize> {
        self.real().imp.pipe_size()
    }

    fn set_pipe_size(&self, size: usize, privileged: bool) -> Result<usize, Errno> {
        self.real().imp.set_pipe_size(size, privileged)
    }

    fn supports_async(&self) -> bool {
        self.real().imp.supports_async()
    }

    fn inode(&self) -> Option<Arc<Inode>> {
        Some(self.overlay.clone())
    }

    fn mappable(
        &self,
        file: &FileDescription,
        mf: &Arc<crate::mm::memory_file::MemoryFile>,
    ) -> Option<Arc<dyn crate::mm::MappableFile>> {
        let real = self.real();
        if real
            .inode
            .ops
            .as_any()
            .downcast_ref::<tmpfs::RegularFile>()
            .is_some()
        {
            return Some(Arc::new(tmpfs::MappedFile::new(
                real.inode.clone(),
                self.name.clone(),
            )));
        }
        real.imp.mappable(file, mf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpfs(vfs: &VfsState, mf: &Arc<crate::mm::MemoryFile>) -> Arc<Inode> {
        tmpfs::new_tmpfs(vfs, mf, "t", 0o755, 0, 0).1
    }

    /// The constructor takes directories, the upper one of a tmpfs, and
    /// gives an overlay root with the overlay's magic and the upper's
    /// numbers; whiteouts and opaque directories are recognised as Linux
    /// writes them.
    #[test]
    fn constructor_and_markers() {
        let vfs = VfsState::default();
        let Ok(mf) = crate::mm::MemoryFile::new() else {
            return;
        };
        let mf = Arc::new(mf);
        let (lower, upper) = (tmpfs(&vfs, &mf), tmpfs(&vfs, &mf));
        assert!(new_overlay(&vfs, Vec::new(), Some(upper.clone()), "none", "").is_err());
        let d = upper_dir(&upper).unwrap();
        make_whiteout(&upper, b"gone").unwrap();
        let w = d.get(b"gone").unwrap();
        assert!(is_whiteout(&w));
        assert_eq!(w.mode(), libc::S_IFCHR);
        let file = d
            .create_as(
                &upper,
                b"f",
                NewNode::Node {
                    mode: libc::S_IFREG | 0o644,
                    rdev: 0,
                },
                0,
                0,
            )
            .unwrap();
        assert!(new_overlay(&vfs, vec![lower.clone()], Some(file), "none", "").is_err());
        let sub = d
            .create_as(&upper, b"d", NewNode::Directory { mode: 0o755 }, 0, 0)
            .unwrap();
        assert!(!is_opaque(&sub));
        sub.ops
            .xattrs()
            .unwrap()
            .locked()
            .insert(OPAQUE_XATTR.to_vec(), b"y".to_vec());
        assert!(is_opaque(&sub));
        let (fs, root) = new_overlay(&vfs, vec![lower], Some(upper), "none", "").unwrap();
        assert_eq!(fs.type_name, "overlay");
        assert_eq!(fs.stats.locked().magic, OVERLAYFS_SUPER_MAGIC);
        assert!(root.is_dir());
        assert_eq!(root.meta().nlink, 1);
        assert_ne!(root.fs.dev, 0);
    }
}
