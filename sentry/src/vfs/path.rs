//! Path resolution with Linux's rules: symlinks (at most 40 per lookup),
//! `..` across mounts and clamped at the task's root, trailing slashes,
//! search permission on every directory walked.

use crate::sync::LockExt;
use std::sync::Arc;

use crate::errno::Errno;

use super::inode::Inode;
use super::mount::{Location, MountNamespace};
use super::perm::{self, MAY_EXEC};
use crate::kernel::task::Task;

/// Linux's MAXSYMLINKS.
const MAX_SYMLINKS: u32 = 40;
/// NAME_MAX.
pub const NAME_MAX: usize = 255;

/// A task's view of the tree: its mount table, root and working directory.
#[derive(Clone)]
pub struct FsContext {
    pub mounts: Arc<MountNamespace>,
    pub root: Location,
    pub cwd: Location,
}

/// The result of resolving all but the last component.
pub struct ParentAndName {
    pub parent: Location,
    /// The last component ("" for "/", else never empty).
    pub name: Vec<u8>,
    /// The path ended with a slash: the last component must be a
    /// directory.
    pub trailing_slash: bool,
}

/// One lookup: counts symlinks across the whole resolution.
pub struct Walker<'a> {
    t: &'a Task,
    ctx: FsContext,
    links: u32,
}

impl<'a> Walker<'a> {
    pub fn new(t: &'a Task) -> Walker<'a> {
        let ctx = t.fs.locked().clone();
        Walker { t, ctx, links: 0 }
    }

    pub fn with_context(t: &'a Task, ctx: FsContext) -> Walker<'a> {
        Walker { t, ctx, links: 0 }
    }

    pub fn context(&self) -> &FsContext {
        &self.ctx
    }

    /// Resolves `path` from `start` (the cwd or a dirfd); follows a final
    /// symlink when `follow` is set.
    pub fn resolve(
        &mut self,
        start: &Location,
        path: &[u8],
        follow: bool,
    ) -> Result<Location, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let mut cur = if path[0] == b'/' {
            self.ctx.root.clone()
        } else {
            start.clone()
        };
        let trailing = path.ends_with(b"/");
        let comps: Vec<&[u8]> = path
            .split(|&c| c == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let n = comps.len();
        for (i, name) in comps.into_iter().enumerate() {
            let last = i + 1 == n;
            cur = self.step(cur, name, !last || follow || trailing)?;
        }
        if trailing && !cur.inode.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(cur)
    }

    /// Resolves every component but the last.
    pub fn resolve_parent(
        &mut self,
        start: &Location,
        path: &[u8],
    ) -> Result<ParentAndName, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let trailing_slash = path.ends_with(b"/");
        let trimmed = {
            let mut p = path;
            while p.len() > 1 && p.ends_with(b"/") {
                p = &p[..p.len() - 1];
            }
            p
        };
        if trimmed == b"/" {
            return Ok(ParentAndName {
                parent: self.ctx.root.clone(),
                name: Vec::new(),
                trailing_slash,
            });
        }
        let (dir, name) = match trimmed.iter().rposition(|&c| c == b'/') {
            Some(i) => (&trimmed[..i + 1], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        let parent = if dir.is_empty() {
            start.clone()
        } else {
            self.resolve(start, dir, true)?
        };
        if !parent.inode.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        Ok(ParentAndName {
            parent,
            name: name.to_vec(),
            trailing_slash,
        })
    }

    /// Looks up one component in a directory, with permission checks and
    /// mount crossing; follows a symlink when `follow` is set.
    pub fn step(&mut self, cur: Location, name: &[u8], follow: bool) -> Result<Location, Errno> {
        if !cur.inode.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        perm::check(&self.t.creds, &cur.inode.meta(), MAY_EXEC)?;
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        if name == b"." {
            return Ok(cur);
        }
        if name == b".." {
            return Ok(self.dotdot(cur));
        }
        let child = cur.inode.ops.lookup(self.t, &cur.inode, name)?;
        let next = self.ctx.mounts.cross_down(Location {
            mount: cur.mount.clone(),
            inode: child,
        });
        if follow && next.inode.is_symlink() {
            return self.follow_link(&cur, &next);
        }
        Ok(next)
    }

    /// Follows the symlink `link` found in directory `dir`.
    pub fn follow_link(&mut self, dir: &Location, link: &Location) -> Result<Location, Errno> {
        self.links += 1;
        if self.links > MAX_SYMLINKS {
            return Err(Errno::ELOOP);
        }
        if let Some(target) = link.inode.ops.follow(self.t, &link.inode) {
            return match target? {
                super::inode::MagicTarget::Location(l) => Ok(l),
                super::inode::MagicTarget::File(f) => {
                    Ok(super::anon::location_for(&self.t.kernel.vfs, f))
                }
            };
        }
        let target = link.inode.ops.readlink(self.t, &link.inode)?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        self.resolve(dir, &target, true)
    }

    /// `..` of `cur`: clamped at the task's root, crossing up out of
    /// mounts.
    pub fn dotdot(&self, mut cur: Location) -> Location {
        loop {
            if cur.same(&self.ctx.root) {
                return cur;
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
                    None => return cur,
                }
            }
            break;
        }
        let parent: Arc<Inode> = cur
            .inode
            .parent()
            .map(|(p, _)| p)
            .unwrap_or_else(|| cur.inode.clone());
        self.ctx.mounts.cross_down(Location {
            mount: cur.mount,
            inode: parent,
        })
    }
}
