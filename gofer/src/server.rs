//! The gofer's end: serves the exported trees to one connection.
//!
//! How files are held:
//!
//! - Every node is an `O_PATH` fd in a handle table. A walk opens one
//!   component at a time with `openat2(dir, name, O_PATH|O_NOFOLLOW,
//!   RESOLVE_BENEATH|RESOLVE_NO_XDEV|RESOLVE_NO_SYMLINKS|
//!   RESOLVE_NO_MAGICLINKS)`, where the name was already checked to be
//!   one component (no `/`, not `.` or `..`). Nothing is ever resolved
//!   from a path string or from the root again, and no symlink is
//!   followed: a symlink is a node whose target `Readlink` returns.
//! - A walk that reaches a mount point (`EXDEV`) continues only when the
//!   mount there is one of the served exports (its root then becomes the
//!   node, with that export's read-only flag); any other mount stops the
//!   walk with `EXDEV`.
//! - Opening for I/O never goes through a path: a directory is reopened
//!   as `openat(node, ".")`; a regular file or FIFO (which has no such
//!   self-name) is opened by its parent directory's fd and its name with
//!   `O_NOFOLLOW|O_NONBLOCK`, then `fstat` must show the node's own
//!   device and inode, else `ESTALE`. Non-directory nodes therefore
//!   remember their parent and name; renames made through the gofer keep
//!   that record current.
//! - The node count is capped (`ENFILE` past it); handles are never
//!   reused within a connection.
//!
//! The server is single-threaded: one connection, one request at a time.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use crate::proto::{
    self, op, setattr, Attr, Dirent, Handle, MountInfo, NodeInfo, Reply, Request, Timespec,
    MAX_MESSAGE, VERSION,
};
use crate::sys::{self, SysResult};
use crate::wire;

/// The default cap on live nodes of one connection.
pub const DEFAULT_MAX_NODES: usize = 1 << 20;

/// One exported tree: the container root or a bind mount.
#[derive(Debug)]
pub struct Export {
    /// `O_PATH` fd of the export's root.
    root: OwnedFd,
    /// For an export whose root is not a directory (a bind-mounted
    /// file): its parent directory and name, used only to reopen it.
    parent: Option<(OwnedFd, Vec<u8>)>,
    dev: u64,
    ino: u64,
    guest_path: Vec<u8>,
    read_only: bool,
}

impl Export {
    /// Opens `host` (the operator's path: symlinks in it are followed,
    /// once, here) to be served at `guest_path`.
    pub fn open(host: &Path, guest_path: &str, read_only: bool) -> io::Result<Export> {
        use std::os::unix::ffi::OsStrExt;
        let cwd = std::fs::File::open(".")?;
        if !guest_path.starts_with('/') || guest_path.len() > proto::MAX_PATH {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "guest path must be absolute",
            ));
        }
        let canon = std::fs::canonicalize(host)?;
        let bytes = canon.as_os_str().as_bytes();
        let root = sys::openat(cwd.as_fd(), bytes, libc::O_PATH | libc::O_CLOEXEC, 0)
            .map_err(io::Error::from_raw_os_error)?;
        let st = sys::fstat(root.as_fd()).map_err(io::Error::from_raw_os_error)?;
        let parent = if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            let dir = canon.parent().unwrap_or(Path::new("/"));
            let name = canon
                .file_name()
                .map(|n| n.as_bytes().to_vec())
                .unwrap_or_default();
            let pfd = sys::openat(
                cwd.as_fd(),
                dir.as_os_str().as_bytes(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                0,
            )
            .map_err(io::Error::from_raw_os_error)?;
            Some((pfd, name))
        } else {
            None
        };
        Ok(Export {
            root,
            parent,
            dev: st.st_dev,
            ino: st.st_ino,
            guest_path: guest_path.as_bytes().to_vec(),
            read_only,
        })
    }

    /// As [`open`](Self::open), but a directory is served as a
    /// non-recursive bind mount of it would show it: file systems mounted
    /// beneath it stay hidden, and their mount points are the directories
    /// under them (a detached clone of its mount, `open_tree` with
    /// `OPEN_TREE_CLONE`; where that is not allowed, as `open`, whose
    /// walks stop at such mounts with EXDEV).
    pub fn open_hiding_submounts(
        host: &Path,
        guest_path: &str,
        read_only: bool,
    ) -> io::Result<Export> {
        let mut e = Export::open(host, guest_path, read_only)?;
        if e.parent.is_some() {
            return Ok(e);
        }
        // SAFETY: open_tree on our own fd with an empty path; it returns
        // a new fd or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                e.root.as_raw_fd(),
                c"".as_ptr(),
                (libc::AT_EMPTY_PATH as u32) | 1 /* OPEN_TREE_CLONE */ | libc::O_CLOEXEC as u32,
            )
        };
        if fd >= 0 {
            // SAFETY: `fd` is a new fd nothing else owns.
            e.root = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) };
        } else {
            tracing::debug!(
                "open_tree of {}: {}; mounts beneath it stop walks",
                host.display(),
                io::Error::last_os_error()
            );
        }
        Ok(e)
    }

    /// The fds this export holds (to keep when closing everything else).
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut v = vec![self.root.as_fd()];
        if let Some((p, _)) = &self.parent {
            v.push(p.as_fd());
        }
        v
    }
}

/// One file the server holds.
struct Node {
    fd: OwnedFd,
    /// Index of the export it belongs to.
    mount: usize,
    dev: u64,
    ino: u64,
    ftype: u32,
    /// Non-directories: the directory holding it and its name there.
    link: RefCell<Option<(Rc<Node>, Vec<u8>)>>,
    live: Rc<Cell<usize>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.live.set(self.live.get().saturating_sub(1));
    }
}

fn to_attr(st: &libc::stat) -> Attr {
    let t = |sec: i64, nsec: i64| Timespec { sec, nsec };
    Attr {
        ino: st.st_ino,
        dev: st.st_dev,
        mode: st.st_mode,
        nlink: st.st_nlink,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev,
        size: st.st_size.max(0) as u64,
        blocks: st.st_blocks.max(0) as u64,
        blksize: st.st_blksize.max(0) as u64,
        atime: t(st.st_atime, st.st_atime_nsec),
        mtime: t(st.st_mtime, st.st_mtime_nsec),
        ctime: t(st.st_ctime, st.st_ctime_nsec),
    }
}

const WALK_RESOLVE: u64 = libc::RESOLVE_BENEATH
    | libc::RESOLVE_NO_XDEV
    | libc::RESOLVE_NO_SYMLINKS
    | libc::RESOLVE_NO_MAGICLINKS;

/// Open flags a client may ask for beside the access mode.
const OPEN_EXTRA: i32 = libc::O_TRUNC
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DSYNC
    | libc::O_SYNC
    | libc::O_DIRECT
    | libc::O_NOATIME
    | libc::O_LARGEFILE
    | libc::O_CLOEXEC;

/// Serves `exports` (the first is normally the root) on `sock` until the
/// peer goes away or breaks the protocol. Returns `Ok` on an orderly end.
pub fn serve(exports: &[Export], sock: OwnedFd) -> io::Result<()> {
    Server::new(exports).run(sock)
}

/// The state of one connection.
pub struct Server<'a> {
    exports: &'a [Export],
    /// Hidden parent nodes of file exports (never in the table).
    export_parents: Vec<Option<Rc<Node>>>,
    nodes: HashMap<Handle, Rc<Node>>,
    next: Handle,
    live: Rc<Cell<usize>>,
    max_nodes: usize,
    handshaken: bool,
    /// This thread has a working directory of its own (for sockets).
    private_cwd: bool,
}

impl<'a> Server<'a> {
    pub fn new(exports: &'a [Export]) -> Self {
        let live = Rc::new(Cell::new(0));
        let export_parents = exports
            .iter()
            .map(|e| {
                let (pfd, _) = e.parent.as_ref()?;
                let fd = pfd.try_clone().ok()?;
                let st = sys::fstat(fd.as_fd()).ok()?;
                live.set(live.get() + 1);
                Some(Rc::new(Node {
                    fd,
                    mount: usize::MAX,
                    dev: st.st_dev,
                    ino: st.st_ino,
                    ftype: libc::S_IFDIR,
                    link: RefCell::new(None),
                    live: live.clone(),
                }))
            })
            .collect();
        Server {
            exports,
            export_parents,
            nodes: HashMap::new(),
            next: 1,
            live,
            max_nodes: DEFAULT_MAX_NODES,
            handshaken: false,
            private_cwd: false,
        }
    }

    /// Caps the live nodes of this connection (default
    /// [`DEFAULT_MAX_NODES`]).
    pub fn with_max_nodes(mut self, max: usize) -> Self {
        self.max_nodes = max;
        self
    }

    /// Serves requests on `sock` until the peer closes it.
    pub fn run(mut self, sock: OwnedFd) -> io::Result<()> {
        self.private_cwd = sys::unshare_fs().is_ok();
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            let got = match wire::recv(sock.as_fd(), &mut buf) {
                Ok(Some(g)) => g,
                Ok(None) => return Ok(()),
                Err(e) => return Err(e),
            };
            // Fds sent to the gofer are closed unread.
            drop(got.fds);
            let (reply, fds, fatal) = if got.truncated {
                (Reply::Error(libc::EMSGSIZE), Vec::new(), false)
            } else {
                self.handle(&buf[..got.len])
            };
            let rec = match reply.encode() {
                Ok(r) => r,
                Err(e) => Reply::Error(e).encode().unwrap_or_default(),
            };
            let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
            wire::send(sock.as_fd(), &rec, &borrowed)?;
            if fatal {
                return Ok(());
            }
        }
    }

    /// Answers one record: the reply, fds to donate, and whether the
    /// connection ends after it.
    pub fn handle(&mut self, rec: &[u8]) -> (Reply, Vec<OwnedFd>, bool) {
        let req = match Request::decode(rec) {
            Ok(r) => r,
            Err(e) => return (Reply::Error(e), Vec::new(), !self.handshaken),
        };
        if !self.handshaken {
            return match req {
                Request::Version { version } if version == VERSION => match self.handshake() {
                    Ok(r) => {
                        self.handshaken = true;
                        (r, Vec::new(), false)
                    }
                    Err(e) => (Reply::Error(e), Vec::new(), true),
                },
                Request::Version { .. } => (Reply::Error(libc::EPROTONOSUPPORT), Vec::new(), true),
                _ => (Reply::Error(libc::EPROTO), Vec::new(), true),
            };
        }
        let mut fds = Vec::new();
        let reply = match self.dispatch(req, &mut fds) {
            Ok(r) => r,
            Err(e) => {
                fds.clear();
                Reply::Error(e)
            }
        };
        (reply, fds, false)
    }

    fn handshake(&mut self) -> SysResult<Reply> {
        let mut mounts = Vec::with_capacity(self.exports.len());
        for i in 0..self.exports.len() {
            let node = self.export_root(i)?;
            let attr = to_attr(&sys::fstat(node.fd.as_fd())?);
            let root = self.insert(node)?;
            mounts.push(MountInfo {
                root,
                attr,
                read_only: self.exports[i].read_only,
                guest_path: self.exports[i].guest_path.clone(),
            });
        }
        Ok(Reply::Version {
            version: VERSION,
            mounts,
        })
    }

    // -----------------------------------------------------------------
    // The handle table.

    fn room(&self) -> SysResult<()> {
        if self.live.get() >= self.max_nodes {
            Err(libc::ENFILE)
        } else {
            Ok(())
        }
    }

    fn new_node(
        &self,
        fd: OwnedFd,
        mount: usize,
        st: &libc::stat,
        link: Option<(Rc<Node>, Vec<u8>)>,
    ) -> Rc<Node> {
        self.live.set(self.live.get() + 1);
        let ftype = st.st_mode & libc::S_IFMT;
        Rc::new(Node {
            fd,
            mount,
            dev: st.st_dev,
            ino: st.st_ino,
            ftype,
            link: RefCell::new(if ftype == libc::S_IFDIR { None } else { link }),
            live: self.live.clone(),
        })
    }

    fn export_root(&self, i: usize) -> SysResult<Rc<Node>> {
        self.room()?;
        let e = &self.exports[i];
        let fd = e.root.try_clone().map_err(|_| libc::EMFILE)?;
        let st = sys::fstat(fd.as_fd())?;
        let link = match (&e.parent, &self.export_parents[i]) {
            (Some((_, name)), Some(p)) => Some((p.clone(), name.clone())),
            _ => None,
        };
        Ok(self.new_node(fd, i, &st, link))
    }

    fn insert(&mut self, node: Rc<Node>) -> SysResult<Handle> {
        let h = self.next;
        self.next = self.next.checked_add(1).ok_or(libc::ENFILE)?;
        self.nodes.insert(h, node);
        Ok(h)
    }

    fn node(&self, h: Handle) -> SysResult<Rc<Node>> {
        self.nodes.get(&h).cloned().ok_or(libc::EBADF)
    }

    fn dir(&self, h: Handle) -> SysResult<Rc<Node>> {
        let n = self.node(h)?;
        if n.ftype != libc::S_IFDIR {
            return Err(libc::ENOTDIR);
        }
        Ok(n)
    }

    fn writable(&self, n: &Node) -> SysResult<()> {
        match self.exports.get(n.mount) {
            Some(e) if !e.read_only => Ok(()),
            Some(_) => Err(libc::EROFS),
            None => Err(libc::EBADF),
        }
    }

    fn node_info(&mut self, node: Rc<Node>) -> SysResult<NodeInfo> {
        let attr = to_attr(&sys::fstat(node.fd.as_fd())?);
        let handle = self.insert(node)?;
        Ok(NodeInfo { handle, attr })
    }

    // -----------------------------------------------------------------
    // Lookups and reopening.

    /// Opens the single component `name` of `dir` as a node.
    fn lookup(&self, dir: &Rc<Node>, name: &[u8]) -> SysResult<Rc<Node>> {
        if dir.ftype != libc::S_IFDIR {
            return Err(libc::ENOTDIR);
        }
        proto::check_name(name)?;
        self.room()?;
        match sys::openat2(
            dir.fd.as_fd(),
            name,
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            WALK_RESOLVE,
        ) {
            Ok(fd) => {
                let st = sys::fstat(fd.as_fd())?;
                Ok(self.new_node(fd, dir.mount, &st, Some((dir.clone(), name.to_vec()))))
            }
            Err(libc::EXDEV) => {
                // A mount point. Served only if it is an export's root.
                let st = sys::fstatat(dir.fd.as_fd(), name, libc::AT_SYMLINK_NOFOLLOW)?;
                let i = self
                    .exports
                    .iter()
                    .position(|e| e.dev == st.st_dev && e.ino == st.st_ino)
                    .ok_or(libc::EXDEV)?;
                self.export_root(i)
            }
            Err(e) => Err(e),
        }
    }

    /// Opens `name` in `dir` as an `O_PATH` node after the server made it,
    /// for the reply.
    fn made(&mut self, dir: &Rc<Node>, name: &[u8]) -> SysResult<Rc<Node>> {
        self.lookup(dir, name)
    }

    /// Opens the node for I/O with `flags` (already checked), never
    /// following a symlink and never reaching another file.
    fn reopen(&self, n: &Node, flags: i32) -> SysResult<OwnedFd> {
        let acc = flags & libc::O_ACCMODE;
        match n.ftype {
            libc::S_IFDIR => {
                if acc != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
                    return Err(libc::EISDIR);
                }
                let fd = sys::openat(
                    n.fd.as_fd(),
                    b".",
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                    0,
                )?;
                self.same(n, &fd)?;
                Ok(fd)
            }
            libc::S_IFREG | libc::S_IFIFO => {
                let link = n.link.borrow().clone();
                let (parent, name) = link.ok_or(libc::ESTALE)?;
                let base = (flags & !(libc::O_TRUNC | libc::O_CLOEXEC))
                    | libc::O_NOFOLLOW
                    | libc::O_CLOEXEC
                    | libc::O_NOCTTY
                    | libc::O_NONBLOCK;
                let fd = sys::openat(parent.fd.as_fd(), &name, base, 0)?;
                self.same(n, &fd)?;
                if flags & libc::O_NONBLOCK == 0 {
                    let f = sys::get_flags(fd.as_fd())?;
                    sys::set_flags(fd.as_fd(), f & !libc::O_NONBLOCK)?;
                }
                if flags & libc::O_TRUNC != 0 && n.ftype == libc::S_IFREG {
                    sys::ftruncate(fd.as_fd(), 0)?;
                }
                Ok(fd)
            }
            libc::S_IFLNK => Err(libc::ELOOP),
            libc::S_IFSOCK => Err(libc::ENXIO),
            _ => Err(libc::EACCES),
        }
    }

    /// Checks that `fd` is the node's own file.
    fn same(&self, n: &Node, fd: &OwnedFd) -> SysResult<()> {
        let st = sys::fstat(fd.as_fd())?;
        if st.st_dev != n.dev || st.st_ino != n.ino {
            return Err(libc::ESTALE);
        }
        Ok(())
    }

    fn check_open_flags(&self, n: &Node, flags: u32) -> SysResult<i32> {
        let flags = flags as i32;
        if flags & !(OPEN_EXTRA | libc::O_ACCMODE) != 0 || flags & libc::O_ACCMODE == 3 {
            return Err(libc::EINVAL);
        }
        if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
            self.writable(n)?;
        }
        Ok(flags)
    }

    fn chown_new(&self, node: &Node, uid: u32, gid: u32) -> SysResult<()> {
        if uid == u32::MAX && gid == u32::MAX {
            return Ok(());
        }
        sys::fchownat_empty(node.fd.as_fd(), uid, gid)
    }

    // -----------------------------------------------------------------
    // Operations.

    fn dispatch(&mut self, req: Request, fds: &mut Vec<OwnedFd>) -> SysResult<Reply> {
        match req {
            Request::Version { .. } => Err(libc::EINVAL),
            Request::Walk { dir, names } => {
                let mut cur = self.node(dir)?;
                let mut nodes = Vec::with_capacity(names.len());
                let mut status = 0;
                for name in &names {
                    match self
                        .lookup(&cur, name)
                        .and_then(|n| Ok((self.node_info(n.clone())?, n)))
                    {
                        Ok((info, n)) => {
                            nodes.push(info);
                            cur = n;
                        }
                        Err(e) => {
                            status = e;
                            break;
                        }
                    }
                }
                Ok(Reply::Walk { nodes, status })
            }
            Request::Stat { node } => {
                let n = self.node(node)?;
                Ok(Reply::Stat(to_attr(&sys::fstat(n.fd.as_fd())?)))
            }
            Request::Open { node, flags } => {
                let n = self.node(node)?;
                let flags = self.check_open_flags(&n, flags)?;
                fds.push(self.reopen(&n, flags)?);
                Ok(Reply::Open)
            }
            Request::Create {
                dir,
                name,
                mode,
                flags,
                uid,
                gid,
            } => {
                let d = self.dir(dir)?;
                self.writable(&d)?;
                let flags = self.check_open_flags(&d, flags)?;
                self.room()?;
                let fd = sys::openat(
                    d.fd.as_fd(),
                    &name,
                    (flags & !(libc::O_TRUNC | libc::O_CLOEXEC))
                        | libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_NOFOLLOW
                        | libc::O_NOCTTY
                        | libc::O_CLOEXEC,
                    mode & 0o7777,
                )?;
                let result = (|| {
                    let node = self.made(&d, &name)?;
                    self.same(&node, &fd)?;
                    self.chown_new(&node, uid, gid)?;
                    self.node_info(node)
                })();
                match result {
                    Ok(info) => {
                        fds.push(fd);
                        Ok(Reply::Node {
                            op: op::CREATE,
                            node: info,
                        })
                    }
                    Err(e) => {
                        let _ = sys::unlinkat(d.fd.as_fd(), &name, 0);
                        Err(e)
                    }
                }
            }
            Request::CreateTmpfile {
                dir,
                mode,
                flags,
                uid,
                gid,
            } => {
                let d = self.dir(dir)?;
                self.writable(&d)?;
                let excl = flags as i32 & libc::O_EXCL;
                if flags as i32 & !libc::O_EXCL != 0 {
                    return Err(libc::EINVAL);
                }
                self.room()?;
                let fd = sys::openat(
                    d.fd.as_fd(),
                    b".",
                    libc::O_TMPFILE | libc::O_RDWR | excl | libc::O_CLOEXEC,
                    mode & 0o7777,
                )?;
                // The node holds a copy of the file's own fd: the file has
                // no name to reopen it by, and `Link` names it through it.
                let keep = fd.try_clone().map_err(|_| libc::EMFILE)?;
                let st = sys::fstat(keep.as_fd())?;
                let node = self.new_node(keep, d.mount, &st, None);
                self.chown_new(&node, uid, gid)?;
                let info = self.node_info(node)?;
                fds.push(fd);
                Ok(Reply::Node {
                    op: op::CREATE_TMPFILE,
                    node: info,
                })
            }
            Request::Mkdir {
                dir,
                name,
                mode,
                uid,
                gid,
            } => {
                let d = self.dir(dir)?;
                self.writable(&d)?;
                self.room()?;
                sys::mkdirat(d.fd.as_fd(), &name, mode & 0o7777)?;
                self.finish_made(&d, &name, uid, gid, op::MKDIR, libc::AT_REMOVEDIR)
            }
            Request::Mknod {
                dir,
                name,
                mode,
                uid,
                gid,
            } => {
                let d = self.dir(dir)?;
                self.writable(&d)?;
                let t = mode & libc::S_IFMT;
                if t != libc::S_IFREG && t != libc::S_IFIFO && t != libc::S_IFSOCK {
                    return Err(libc::EPERM);
                }
                self.room()?;
                sys::mknodat(d.fd.as_fd(), &name, t | (mode & 0o7777))?;
                self.finish_made(&d, &name, uid, gid, op::MKNOD, 0)
            }
            Request::Symlink {
                dir,
                name,
                target,
                uid,
                gid,
            } => {
                let d = self.dir(dir)?;
                self.writable(&d)?;
                self.room()?;
                sys::symlinkat(&target, d.fd.as_fd(), &name)?;
                self.finish_made(&d, &name, uid, gid, op::SYMLINK, 0)
            }
            Request::Link { dir, name, target } => {
                let d = self.dir(dir)?;
                let t = self.node(target)?;
                self.writable(&d)?;
                if t.ftype == libc::S_IFDIR {
                    return Err(libc::EPERM);
                }
                if t.mount != d.mount {
                    return Err(libc::EXDEV);
                }
                self.room()?;
                let linked =
                    sys::linkat(t.fd.as_fd(), b"", d.fd.as_fd(), &name, libc::AT_EMPTY_PATH);
                if let Err(e) = linked {
                    // Without CAP_DAC_READ_SEARCH: link by the parent's fd
                    // and name, after checking the name still is the node.
                    if e != libc::ENOENT && e != libc::EPERM {
                        return Err(e);
                    }
                    let link = t.link.borrow().clone();
                    let (parent, pname) = link.ok_or(e)?;
                    let st = sys::fstatat(parent.fd.as_fd(), &pname, libc::AT_SYMLINK_NOFOLLOW)?;
                    if st.st_dev != t.dev || st.st_ino != t.ino {
                        return Err(libc::ESTALE);
                    }
                    sys::linkat(parent.fd.as_fd(), &pname, d.fd.as_fd(), &name, 0)?;
                }
                let node = self.made(&d, &name)?;
                let info = self.node_info(node)?;
                Ok(Reply::Node {
                    op: op::LINK,
                    node: info,
                })
            }
            Request::Unlink { dir, name, flags } => {
                let d = self.dir(dir)?;
                self.writable(&d)?;
                let flags = flags as i32;
                if flags & !libc::AT_REMOVEDIR != 0 {
                    return Err(libc::EINVAL);
                }
                sys::unlinkat(d.fd.as_fd(), &name, flags)?;
                Ok(Reply::Empty { op: op::UNLINK })
            }
            Request::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => {
                let od = self.dir(old_dir)?;
                let nd = self.dir(new_dir)?;
                self.writable(&od)?;
                self.writable(&nd)?;
                if od.mount != nd.mount {
                    return Err(libc::EXDEV);
                }
                let known = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE;
                if flags & !known != 0 || flags == known {
                    return Err(libc::EINVAL);
                }
                sys::renameat2(od.fd.as_fd(), &old_name, nd.fd.as_fd(), &new_name, flags)?;
                self.renamed(
                    &od,
                    &old_name,
                    &nd,
                    &new_name,
                    flags & libc::RENAME_EXCHANGE != 0,
                );
                Ok(Reply::Empty { op: op::RENAME })
            }
            Request::Readlink { node } => {
                let n = self.node(node)?;
                if n.ftype != libc::S_IFLNK {
                    return Err(libc::EINVAL);
                }
                Ok(Reply::Readlink(sys::readlink_fd(n.fd.as_fd())?))
            }
            Request::Getdents { dir, cookie } => {
                let d = self.dir(dir)?;
                Ok(Reply::Getdents(self.getdents(&d, cookie)?))
            }
            Request::SetAttr {
                node,
                mask,
                mode,
                uid,
                gid,
                size,
                atime,
                mtime,
            } => {
                let n = self.node(node)?;
                if mask & !setattr::ALL != 0 {
                    return Err(libc::EINVAL);
                }
                if mask == 0 {
                    return Ok(Reply::Empty { op: op::SETATTR });
                }
                self.writable(&n)?;
                self.set_attr(&n, mask, mode, uid, gid, size, atime, mtime)?;
                Ok(Reply::Empty { op: op::SETATTR })
            }
            Request::StatFs { node } => {
                let n = self.node(node)?;
                let s = sys::fstatfs(n.fd.as_fd())?;
                Ok(Reply::StatFs(proto::StatFs {
                    fs_type: s.f_type as u64,
                    bsize: s.f_bsize as u64,
                    blocks: s.f_blocks,
                    bfree: s.f_bfree,
                    bavail: s.f_bavail,
                    files: s.f_files,
                    ffree: s.f_ffree,
                    namelen: s.f_namelen as u64,
                    frsize: s.f_frsize as u64,
                    // libc's statfs has no f_flags: say what the gofer
                    // enforces.
                    flags: if self.writable(&n).is_err() {
                        libc::ST_RDONLY
                    } else {
                        0
                    },
                }))
            }
            Request::GetXattr { node, name } => {
                let n = self.node(node)?;
                user_xattr(&name)?;
                let fd = self.xattr_fd(&n)?;
                Ok(Reply::GetXattr(sys::fgetxattr(fd.as_fd(), &name)?))
            }
            Request::SetXattr {
                node,
                name,
                value,
                flags,
            } => {
                let n = self.node(node)?;
                user_xattr(&name)?;
                self.writable(&n)?;
                let flags = flags as i32;
                if flags & !(libc::XATTR_CREATE | libc::XATTR_REPLACE) != 0 {
                    return Err(libc::EINVAL);
                }
                let fd = self.xattr_fd(&n)?;
                sys::fsetxattr(fd.as_fd(), &name, &value, flags)?;
                Ok(Reply::Empty { op: op::SETXATTR })
            }
            Request::ListXattr { node } => {
                let n = self.node(node)?;
                let fd = match self.xattr_fd(&n) {
                    Ok(fd) => fd,
                    // Special files have no user xattrs.
                    Err(libc::EPERM) => return Ok(Reply::ListXattr(Vec::new())),
                    Err(e) => return Err(e),
                };
                let raw = sys::flistxattr(fd.as_fd())?;
                let names = raw
                    .split(|&b| b == 0)
                    .filter(|n| n.starts_with(b"user.") && n.len() <= proto::MAX_XATTR_NAME)
                    .map(|n| n.to_vec())
                    .collect();
                Ok(Reply::ListXattr(names))
            }
            Request::RemoveXattr { node, name } => {
                let n = self.node(node)?;
                user_xattr(&name)?;
                self.writable(&n)?;
                let fd = self.xattr_fd(&n)?;
                sys::fremovexattr(fd.as_fd(), &name)?;
                Ok(Reply::Empty {
                    op: op::REMOVEXATTR,
                })
            }
            Request::Fsync { node } => {
                let n = self.node(node)?;
                if n.ftype != libc::S_IFDIR && n.ftype != libc::S_IFREG {
                    return Err(libc::EINVAL);
                }
                let fd = self.reopen(&n, libc::O_RDONLY)?;
                sys::fsync(fd.as_fd())?;
                Ok(Reply::Empty { op: op::FSYNC })
            }
            Request::Close { handles } => {
                let mut bad = false;
                for h in handles {
                    bad |= self.nodes.remove(&h).is_none();
                }
                if bad {
                    Err(libc::EBADF)
                } else {
                    Ok(Reply::Empty { op: op::CLOSE })
                }
            }
            Request::BindSocket {
                dir,
                name,
                sock_type,
                mode,
                uid,
                gid,
            } => {
                let d = self.dir(dir)?;
                self.writable(&d)?;
                let st = socket_type(sock_type)?;
                if !self.private_cwd {
                    return Err(libc::ENOSYS);
                }
                self.room()?;
                let sock = sys::unix_socket(st)?;
                sys::fchdir(d.fd.as_fd())?;
                sys::bind_rel(sock.as_fd(), &name)?;
                let result = (|| {
                    let node = self.made(&d, &name)?;
                    if node.ftype != libc::S_IFSOCK {
                        return Err(libc::ESTALE);
                    }
                    sys::fchmod_empty(node.fd.as_fd(), mode & 0o7777)?;
                    self.chown_new(&node, uid, gid)?;
                    if st != libc::SOCK_DGRAM {
                        sys::listen(sock.as_fd())?;
                    }
                    self.node_info(node)
                })();
                match result {
                    Ok(info) => {
                        fds.push(sock);
                        Ok(Reply::Node {
                            op: op::BIND_SOCKET,
                            node: info,
                        })
                    }
                    Err(e) => {
                        let _ = sys::unlinkat(d.fd.as_fd(), &name, 0);
                        Err(e)
                    }
                }
            }
            Request::ConnectSocket { node, sock_type } => {
                let n = self.node(node)?;
                let st = socket_type(sock_type)?;
                if n.ftype != libc::S_IFSOCK {
                    return Err(libc::ECONNREFUSED);
                }
                if !self.private_cwd {
                    return Err(libc::ENOSYS);
                }
                let link = n.link.borrow().clone();
                let (parent, name) = link.ok_or(libc::ESTALE)?;
                // The name must still be this socket (not a symlink put
                // there since): connect(2) would follow one.
                let cur = sys::fstatat(parent.fd.as_fd(), &name, libc::AT_SYMLINK_NOFOLLOW)?;
                if cur.st_dev != n.dev || cur.st_ino != n.ino {
                    return Err(libc::ESTALE);
                }
                let sock = sys::unix_socket(st)?;
                sys::fchdir(parent.fd.as_fd())?;
                match sys::connect_rel(sock.as_fd(), &name) {
                    Ok(()) | Err(libc::EINPROGRESS) => {}
                    Err(e) => return Err(e),
                }
                fds.push(sock);
                Ok(Reply::Empty {
                    op: op::CONNECT_SOCKET,
                })
            }
        }
    }

    /// Finishes a mkdir/mknod/symlink: the node, its owner, the reply.
    /// On failure the new file is removed again.
    fn finish_made(
        &mut self,
        d: &Rc<Node>,
        name: &[u8],
        uid: u32,
        gid: u32,
        opc: u32,
        unlink_flags: i32,
    ) -> SysResult<Reply> {
        let result = (|| {
            let node = self.made(d, name)?;
            self.chown_new(&node, uid, gid)?;
            self.node_info(node)
        })();
        match result {
            Ok(info) => Ok(Reply::Node {
                op: opc,
                node: info,
            }),
            Err(e) => {
                let _ = sys::unlinkat(d.fd.as_fd(), name, unlink_flags);
                Err(e)
            }
        }
    }

    /// Keeps the parent/name records of open non-directory nodes right
    /// after a rename made through the gofer.
    fn renamed(&self, od: &Rc<Node>, oname: &[u8], nd: &Rc<Node>, nname: &[u8], exchange: bool) {
        let is = |p: &Node, dir: &Node| p.dev == dir.dev && p.ino == dir.ino;
        for n in self.nodes.values() {
            let mut link = n.link.borrow_mut();
            let Some((p, name)) = link.as_ref() else {
                continue;
            };
            if is(p, od) && name.as_slice() == oname {
                *link = Some((nd.clone(), nname.to_vec()));
            } else if exchange && is(p, nd) && name.as_slice() == nname {
                *link = Some((od.clone(), oname.to_vec()));
            }
        }
    }

    fn getdents(&self, d: &Node, cookie: u64) -> SysResult<Vec<Dirent>> {
        let fd = self.reopen(d, libc::O_RDONLY)?;
        if cookie > i64::MAX as u64 {
            return Err(libc::EINVAL);
        }
        sys::lseek(fd.as_fd(), cookie as i64)?;
        let mut buf = vec![0u8; 32 * 1024];
        let mut out = Vec::new();
        loop {
            let n = sys::getdents64(fd.as_fd(), &mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            parse_dirents(&buf[..n.min(buf.len())], &mut out);
            if !out.is_empty() || out.len() >= proto::MAX_DIRENTS {
                out.truncate(proto::MAX_DIRENTS);
                return Ok(out);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn set_attr(
        &self,
        n: &Node,
        mask: u32,
        mode: u32,
        uid: u32,
        gid: u32,
        size: u64,
        atime: Timespec,
        mtime: Timespec,
    ) -> SysResult<()> {
        if mask & setattr::MODE != 0 {
            sys::fchmod_empty(n.fd.as_fd(), mode & 0o7777)?;
        }
        if mask & (setattr::UID | setattr::GID) != 0 {
            let u = if mask & setattr::UID != 0 {
                uid
            } else {
                u32::MAX
            };
            let g = if mask & setattr::GID != 0 {
                gid
            } else {
                u32::MAX
            };
            sys::fchownat_empty(n.fd.as_fd(), u, g)?;
        }
        if mask & setattr::SIZE != 0 {
            match n.ftype {
                libc::S_IFREG => {}
                libc::S_IFDIR => return Err(libc::EISDIR),
                _ => return Err(libc::EINVAL),
            }
            let size = i64::try_from(size).map_err(|_| libc::EFBIG)?;
            let fd = self.reopen(n, libc::O_WRONLY)?;
            sys::ftruncate(fd.as_fd(), size)?;
        }
        if mask & (setattr::ATIME | setattr::MTIME) != 0 {
            let ts = |on: bool, t: Timespec| -> SysResult<libc::timespec> {
                if !on {
                    return Ok(libc::timespec {
                        tv_sec: 0,
                        tv_nsec: libc::UTIME_OMIT,
                    });
                }
                let special = t.nsec == libc::UTIME_NOW || t.nsec == libc::UTIME_OMIT;
                if !special && !(0..1_000_000_000).contains(&t.nsec) {
                    return Err(libc::EINVAL);
                }
                Ok(libc::timespec {
                    tv_sec: t.sec,
                    tv_nsec: t.nsec,
                })
            };
            let times = [
                ts(mask & setattr::ATIME != 0, atime)?,
                ts(mask & setattr::MTIME != 0, mtime)?,
            ];
            sys::utimens_empty(n.fd.as_fd(), &times)?;
        }
        Ok(())
    }

    /// An fd on which the f*xattr calls work: regular files and
    /// directories only (Linux keeps user xattrs off other files).
    fn xattr_fd(&self, n: &Node) -> SysResult<OwnedFd> {
        match n.ftype {
            libc::S_IFDIR | libc::S_IFREG => self.reopen(n, libc::O_RDONLY),
            _ => Err(libc::EPERM),
        }
    }
}

fn user_xattr(name: &[u8]) -> SysResult<()> {
    if name.starts_with(b"user.") && name.len() > 5 {
        Ok(())
    } else {
        Err(libc::EOPNOTSUPP)
    }
}

fn socket_type(t: u32) -> SysResult<i32> {
    match t as i32 {
        libc::SOCK_STREAM | libc::SOCK_DGRAM | libc::SOCK_SEQPACKET => Ok(t as i32),
        _ => Err(libc::EINVAL),
    }
}

/// Parses `linux_dirent64` records, bounds-checked; skips `.`, `..` and
/// anything that is not a valid name.
fn parse_dirents(buf: &[u8], out: &mut Vec<Dirent>) {
    const HDR: usize = 19; // ino 8, off 8, reclen 2, type 1
    let mut pos = 0usize;
    while pos + HDR <= buf.len() {
        let rec = &buf[pos..];
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&rec[i..i + 8]);
            u64::from_ne_bytes(a)
        };
        let ino = u64_at(0);
        let off = u64_at(8);
        let reclen = u16::from_ne_bytes([rec[16], rec[17]]) as usize;
        let dtype = rec[18];
        if reclen < HDR || reclen > rec.len() {
            return;
        }
        let raw = &rec[HDR..reclen];
        let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
        if proto::valid_name(name) {
            out.push(Dirent {
                ino,
                off,
                dtype,
                name: name.to_vec(),
            });
        }
        pos += reclen;
    }
}
