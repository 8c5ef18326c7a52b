//! Mounts, the mount table, and locations in the tree.

use crate::sync::LockExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::errno::Errno;

use super::inode::{Filesystem, Inode};

/// Mount flags that change behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MountFlags {
    pub readonly: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

/// One mount: a file system's root placed on a mount point.
pub struct Mount {
    pub id: u32,
    pub fs: Arc<Filesystem>,
    pub root: Arc<Inode>,
    /// The mount and directory this mount covers (None: the root mount).
    pub parent: Option<(Arc<Mount>, Arc<Inode>)>,
    pub flags: Mutex<MountFlags>,
}

impl Mount {
    pub fn readonly(&self) -> bool {
        self.flags.locked().readonly
    }
}

/// A place in the tree: an inode as reached through a mount.
#[derive(Clone)]
pub struct Location {
    pub mount: Arc<Mount>,
    pub inode: Arc<Inode>,
}

impl Location {
    pub fn same(&self, other: &Location) -> bool {
        Arc::ptr_eq(&self.mount, &other.mount) && Arc::ptr_eq(&self.inode, &other.inode)
    }

    pub fn is_mount_root(&self) -> bool {
        Arc::ptr_eq(&self.inode, &self.mount.root)
    }
}

/// The sandbox's mount table.
pub struct MountNamespace {
    mounts: Mutex<Vec<Arc<Mount>>>,
    next_id: AtomicU32,
}

impl MountNamespace {
    /// A namespace whose root mount is `root` of `fs`.
    pub fn new(fs: Arc<Filesystem>, root: Arc<Inode>) -> (Arc<MountNamespace>, Location) {
        let ns = Arc::new(MountNamespace {
            mounts: Mutex::new(Vec::new()),
            next_id: AtomicU32::new(1),
        });
        let m = Arc::new(Mount {
            id: ns.next_id.fetch_add(1, Ordering::Relaxed),
            fs,
            root: root.clone(),
            parent: None,
            flags: Mutex::new(MountFlags::default()),
        });
        ns.mounts.locked().push(m.clone());
        (
            ns,
            Location {
                mount: m,
                inode: root,
            },
        )
    }

    /// Mounts `root` of `fs` on `at` (a directory on a directory, a file
    /// on a file).
    pub fn mount(
        &self,
        at: &Location,
        fs: Arc<Filesystem>,
        root: Arc<Inode>,
        flags: MountFlags,
    ) -> Result<Location, Errno> {
        // A directory goes on a directory, a file on a file.
        if at.inode.is_dir() != root.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let m = Arc::new(Mount {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            fs,
            root: root.clone(),
            parent: Some((at.mount.clone(), at.inode.clone())),
            flags: Mutex::new(flags),
        });
        self.mounts.locked().push(m.clone());
        Ok(Location {
            mount: m,
            inode: root,
        })
    }

    /// Removes the mount whose root is `loc`. EINVAL when `loc` is not a
    /// mount root, EBUSY when something is mounted inside it.
    pub fn umount(&self, loc: &Location) -> Result<(), Errno> {
        if !loc.is_mount_root() || loc.mount.parent.is_none() {
            return Err(Errno::EINVAL);
        }
        let mut mounts = self.mounts.locked();
        let busy = mounts.iter().any(|m| {
            m.parent
                .as_ref()
                .is_some_and(|(pm, _)| Arc::ptr_eq(pm, &loc.mount))
        });
        if busy {
            return Err(Errno::EBUSY);
        }
        mounts.retain(|m| !Arc::ptr_eq(m, &loc.mount));
        Ok(())
    }

    /// The topmost mount on `loc`, if any.
    pub fn mounted_on(&self, loc: &Location) -> Option<Arc<Mount>> {
        let mounts = self.mounts.locked();
        mounts
            .iter()
            .rev()
            .find(|m| {
                m.parent.as_ref().is_some_and(|(pm, pi)| {
                    Arc::ptr_eq(pm, &loc.mount) && Arc::ptr_eq(pi, &loc.inode)
                })
            })
            .cloned()
    }

    /// Follows mounts stacked on `loc` down to the top one's root.
    pub fn cross_down(&self, mut loc: Location) -> Location {
        while let Some(m) = self.mounted_on(&loc) {
            loc = Location {
                inode: m.root.clone(),
                mount: m,
            };
        }
        loc
    }

    /// Every mount, in mount order.
    pub fn all(&self) -> Vec<Arc<Mount>> {
        self.mounts.locked().clone()
    }

    /// The path of `loc` as seen from `root`. A location outside `root`
    /// is shown from the namespace root, as Linux does for getcwd.
    pub fn path(&self, loc: &Location, root: &Location) -> Vec<u8> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut cur = loc.clone();
        let mut guard = 0;
        loop {
            guard += 1;
            if cur.same(root) || guard > 4096 {
                break;
            }
            if cur.is_mount_root() {
                match &cur.mount.parent {
                    Some((pm, pi)) => {
                        cur = Location {
                            mount: pm.clone(),
                            inode: pi.clone(),
                        };
                        continue;
                    }
                    None => break,
                }
            }
            match cur.inode.parent() {
                Some((p, name)) => {
                    parts.push(name);
                    cur.inode = p;
                }
                None => break,
            }
        }
        if parts.is_empty() {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        out
    }
}
