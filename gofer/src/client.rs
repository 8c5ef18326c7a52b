//! The sentry's end of the protocol.

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use crate::proto::{
    Attr, Dirent, Handle, MountInfo, NodeInfo, Reply, Request, StatFs, Timespec, MAX_MESSAGE,
    VERSION,
};
use crate::wire;

/// A Linux errno, as the gofer or the connection reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (errno {})",
            std::io::Error::from_raw_os_error(self.0),
            self.0
        )
    }
}

impl std::error::Error for Errno {}

impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> Self {
        std::io::Error::from_raw_os_error(e.0)
    }
}

/// The result of every client call.
pub type Result<T> = std::result::Result<T, Errno>;

/// What a walk found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walked {
    /// One node per name found, in order. Each handle is the caller's to
    /// close.
    pub nodes: Vec<NodeInfo>,
    /// 0 when every name was found; else the errno that stopped the walk
    /// at name `nodes.len()`: `ENOENT` (missing), `ENOTDIR` (the node
    /// before it is not a directory; check whether it is a symlink),
    /// `EXDEV` (a host mount that is not served), `ENFILE` (too many
    /// handles), `EACCES`, ...
    pub status: i32,
}

/// The attribute changes of one [`Client::set_attr`] call. `None` leaves
/// a field alone. Times may use `UTIME_NOW` in `nsec`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<Timespec>,
    pub mtime: Option<Timespec>,
}

/// "Leave the owner as it is" for the `uid`/`gid` of create calls.
pub const NO_OWNER: u32 = u32::MAX;

struct Conn {
    sock: OwnedFd,
    buf: Vec<u8>,
    /// Set after any transport or protocol error: requests and replies
    /// may no longer pair up, so every later call fails with `EIO`.
    broken: bool,
}

/// A connection to a gofer.
///
/// `Client` is `Send + Sync`: any number of threads may call it. One
/// request is in flight at a time (a mutex is held from send to reply).
/// Replies are checked as strictly as requests are on the server: a
/// malformed or unexpected reply, a dead gofer or a closed socket gives
/// `EIO` (and the connection is then unusable), never a panic.
///
/// Handles returned by calls belong to the caller, who closes them with
/// [`Client::close`] (batched). A handle is never reused by the gofer
/// within a connection.
pub struct Client {
    conn: Mutex<Conn>,
    mounts: Vec<MountInfo>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("mounts", &self.mounts)
            .finish()
    }
}

impl Client {
    /// Takes over `sock` (one end of a `SOCK_SEQPACKET` pair whose other
    /// end a gofer serves) and does the version handshake. Fails with
    /// `EPROTONOSUPPORT` on a version mismatch, `EIO` on a dead or
    /// misbehaving gofer.
    pub fn connect(sock: OwnedFd) -> Result<Client> {
        let conn = Conn {
            sock,
            buf: vec![0u8; MAX_MESSAGE],
            broken: false,
        };
        let mut c = Client {
            conn: Mutex::new(conn),
            mounts: Vec::new(),
        };
        let (reply, _) = c.call(&Request::Version { version: VERSION }, 0)?;
        match reply {
            Reply::Version { version, mounts } if version == VERSION => {
                c.mounts = mounts;
                Ok(c)
            }
            Reply::Version { .. } => Err(Errno(libc::EPROTONOSUPPORT)),
            _ => Err(Errno(libc::EIO)),
        }
    }

    /// The mounts the gofer serves (the first is normally the root `/`).
    pub fn mounts(&self) -> &[MountInfo] {
        &self.mounts
    }

    /// Sends `req` and waits for its reply and up to `want_fds` fds.
    /// Error replies become `Err`.
    fn call(&self, req: &Request, want_fds: usize) -> Result<(Reply, Vec<OwnedFd>)> {
        let rec = req.encode().map_err(Errno)?;
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let conn = &mut *guard;
        if conn.broken {
            return Err(Errno(libc::EIO));
        }
        let result = (|| {
            wire::send(conn.sock.as_fd(), &rec, &[]).map_err(|_| libc::EIO)?;
            let got = wire::recv(conn.sock.as_fd(), &mut conn.buf)
                .map_err(|_| libc::EIO)?
                .ok_or(libc::EIO)?;
            if got.truncated {
                return Err(libc::EIO);
            }
            let reply = Reply::decode(&conn.buf[..got.len], req.op())?;
            Ok((reply, got.fds))
        })();
        match result {
            Err(e) => {
                conn.broken = true;
                Err(Errno(e))
            }
            Ok((Reply::Error(e), _)) => Err(Errno(e)),
            Ok((reply, mut fds)) => {
                if fds.len() != want_fds {
                    // A reply with the wrong fds is a broken gofer.
                    conn.broken = true;
                    return Err(Errno(libc::EIO));
                }
                fds.truncate(want_fds);
                Ok((reply, fds))
            }
        }
    }

    fn one_fd(fds: Vec<OwnedFd>) -> Result<OwnedFd> {
        fds.into_iter().next().ok_or(Errno(libc::EIO))
    }

    fn node_reply(reply: Reply) -> Result<NodeInfo> {
        match reply {
            Reply::Node { node, .. } => Ok(node),
            _ => Err(Errno(libc::EIO)),
        }
    }

    fn empty_reply(reply: Reply) -> Result<()> {
        match reply {
            Reply::Empty { .. } => Ok(()),
            _ => Err(Errno(libc::EIO)),
        }
    }

    /// Looks up `names` (each one component: no `/`, not `.` or `..`)
    /// one after another from directory `dir`, in one round trip. Stops
    /// at the first name that fails; see [`Walked`]. Symlinks are
    /// returned as nodes, never followed.
    pub fn walk(&self, dir: Handle, names: &[&[u8]]) -> Result<Walked> {
        let req = Request::Walk {
            dir,
            names: names.iter().map(|n| n.to_vec()).collect(),
        };
        match self.call(&req, 0)?.0 {
            Reply::Walk { nodes, status } if nodes.len() <= names.len() => {
                if (status == 0) != (nodes.len() == names.len()) {
                    return Err(Errno(libc::EIO));
                }
                Ok(Walked { nodes, status })
            }
            _ => Err(Errno(libc::EIO)),
        }
    }

    /// The node's current attributes.
    pub fn stat(&self, node: Handle) -> Result<Attr> {
        match self.call(&Request::Stat { node }, 0)?.0 {
            Reply::Stat(a) => Ok(a),
            _ => Err(Errno(libc::EIO)),
        }
    }

    /// Opens the node for I/O and returns the host fd (close-on-exec).
    /// `flags`: `O_RDONLY`/`O_WRONLY`/`O_RDWR` plus optionally `O_TRUNC`,
    /// `O_APPEND`, `O_NONBLOCK`, `O_DSYNC`, `O_SYNC`, `O_DIRECT`,
    /// `O_NOATIME`. Directories open read-only (for `getdents64`),
    /// symlinks never (`ELOOP`), devices never (`EACCES`); writing on a
    /// read-only mount is `EROFS`.
    pub fn open(&self, node: Handle, flags: i32) -> Result<OwnedFd> {
        let (_, fds) = self.call(
            &Request::Open {
                node,
                flags: flags as u32,
            },
            1,
        )?;
        Self::one_fd(fds)
    }

    /// Makes the regular file `dir/name` (exclusively: `EEXIST` if the
    /// name exists) with permission bits `mode` and owner `uid`/`gid`
    /// ([`NO_OWNER`] keeps the gofer's), opens it with `flags` as
    /// [`Client::open`] does, and returns its node and the fd.
    pub fn create(
        &self,
        dir: Handle,
        name: &[u8],
        mode: u32,
        flags: i32,
        uid: u32,
        gid: u32,
    ) -> Result<(NodeInfo, OwnedFd)> {
        let req = Request::Create {
            dir,
            name: name.to_vec(),
            mode,
            flags: flags as u32,
            uid,
            gid,
        };
        let (reply, fds) = self.call(&req, 1)?;
        Ok((Self::node_reply(reply)?, Self::one_fd(fds)?))
    }

    /// Makes an unnamed regular file in `dir` (`O_TMPFILE`), read-write,
    /// with its node (which `link` can name, unless `flags` has `O_EXCL`)
    /// and its donated fd.
    pub fn create_tmpfile(
        &self,
        dir: Handle,
        mode: u32,
        flags: i32,
        uid: u32,
        gid: u32,
    ) -> Result<(NodeInfo, OwnedFd)> {
        let req = Request::CreateTmpfile {
            dir,
            mode,
            flags: flags as u32,
            uid,
            gid,
        };
        let (reply, fds) = self.call(&req, 1)?;
        Ok((Self::node_reply(reply)?, Self::one_fd(fds)?))
    }

    /// Makes the directory `dir/name`.
    pub fn mkdir(
        &self,
        dir: Handle,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<NodeInfo> {
        let req = Request::Mkdir {
            dir,
            name: name.to_vec(),
            mode,
            uid,
            gid,
        };
        Self::node_reply(self.call(&req, 0)?.0)
    }

    /// Makes a regular file, FIFO or socket node (`mode` includes
    /// `S_IFREG`, `S_IFIFO` or `S_IFSOCK`; devices are `EPERM`).
    pub fn mknod(
        &self,
        dir: Handle,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<NodeInfo> {
        let req = Request::Mknod {
            dir,
            name: name.to_vec(),
            mode,
            uid,
            gid,
        };
        Self::node_reply(self.call(&req, 0)?.0)
    }

    /// Makes the symlink `dir/name` pointing at `target`.
    pub fn symlink(
        &self,
        dir: Handle,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<NodeInfo> {
        let req = Request::Symlink {
            dir,
            name: name.to_vec(),
            target: target.to_vec(),
            uid,
            gid,
        };
        Self::node_reply(self.call(&req, 0)?.0)
    }

    /// Makes `dir/name` a hard link to the node `target` (same mount,
    /// not a directory).
    pub fn link(&self, dir: Handle, name: &[u8], target: Handle) -> Result<NodeInfo> {
        let req = Request::Link {
            dir,
            name: name.to_vec(),
            target,
        };
        Self::node_reply(self.call(&req, 0)?.0)
    }

    /// Removes `dir/name`; `flags` is 0 or `AT_REMOVEDIR`.
    pub fn unlink(&self, dir: Handle, name: &[u8], flags: i32) -> Result<()> {
        let req = Request::Unlink {
            dir,
            name: name.to_vec(),
            flags: flags as u32,
        };
        Self::empty_reply(self.call(&req, 0)?.0)
    }

    /// `renameat2(old_dir, old_name, new_dir, new_name, flags)`; `flags`
    /// 0, `RENAME_NOREPLACE` or `RENAME_EXCHANGE`. Both directories must
    /// be on one mount (`EXDEV`). Open handles of the moved files follow
    /// them.
    pub fn rename(
        &self,
        old_dir: Handle,
        old_name: &[u8],
        new_dir: Handle,
        new_name: &[u8],
        flags: u32,
    ) -> Result<()> {
        let req = Request::Rename {
            old_dir,
            old_name: old_name.to_vec(),
            new_dir,
            new_name: new_name.to_vec(),
            flags,
        };
        Self::empty_reply(self.call(&req, 0)?.0)
    }

    /// A symlink's target.
    pub fn readlink(&self, node: Handle) -> Result<Vec<u8>> {
        match self.call(&Request::Readlink { node }, 0)?.0 {
            Reply::Readlink(t) => Ok(t),
            _ => Err(Errno(libc::EIO)),
        }
    }

    /// One batch of `dir`'s entries from `cookie` (0 to start, then the
    /// last entry's `off`). An empty batch is the end. `.` and `..` are
    /// not listed.
    pub fn getdents(&self, dir: Handle, cookie: u64) -> Result<Vec<Dirent>> {
        match self.call(&Request::Getdents { dir, cookie }, 0)?.0 {
            Reply::Getdents(e) => Ok(e),
            _ => Err(Errno(libc::EIO)),
        }
    }

    /// Every entry of `dir` (several round trips for large directories).
    pub fn read_dir(&self, dir: Handle) -> Result<Vec<Dirent>> {
        let mut all = Vec::new();
        let mut cookie = 0;
        loop {
            let batch = self.getdents(dir, cookie)?;
            let Some(last) = batch.last() else {
                return Ok(all);
            };
            cookie = last.off;
            all.extend(batch);
        }
    }

    /// Changes any of mode, owner, size and times in one round trip. The
    /// changes apply in that order and stop at the first failure.
    pub fn set_attr(&self, node: Handle, a: &SetAttr) -> Result<()> {
        use crate::proto::setattr::*;
        let mut mask = 0;
        let omit = Timespec {
            sec: 0,
            nsec: libc::UTIME_OMIT,
        };
        if a.mode.is_some() {
            mask |= MODE;
        }
        if a.uid.is_some() {
            mask |= UID;
        }
        if a.gid.is_some() {
            mask |= GID;
        }
        if a.size.is_some() {
            mask |= SIZE;
        }
        if a.atime.is_some() {
            mask |= ATIME;
        }
        if a.mtime.is_some() {
            mask |= MTIME;
        }
        let req = Request::SetAttr {
            node,
            mask,
            mode: a.mode.unwrap_or(0),
            uid: a.uid.unwrap_or(u32::MAX),
            gid: a.gid.unwrap_or(u32::MAX),
            size: a.size.unwrap_or(0),
            atime: a.atime.unwrap_or(omit),
            mtime: a.mtime.unwrap_or(omit),
        };
        Self::empty_reply(self.call(&req, 0)?.0)
    }

    /// `statfs(2)` of the file system holding `node`.
    pub fn statfs(&self, node: Handle) -> Result<StatFs> {
        match self.call(&Request::StatFs { node }, 0)?.0 {
            Reply::StatFs(s) => Ok(s),
            _ => Err(Errno(libc::EIO)),
        }
    }

    /// An extended attribute's value (only the `user.` namespace is
    /// served; others are `EOPNOTSUPP`).
    pub fn get_xattr(&self, node: Handle, name: &[u8]) -> Result<Vec<u8>> {
        let req = Request::GetXattr {
            node,
            name: name.to_vec(),
        };
        match self.call(&req, 0)?.0 {
            Reply::GetXattr(v) => Ok(v),
            _ => Err(Errno(libc::EIO)),
        }
    }

    /// Sets an extended attribute; `flags` 0, `XATTR_CREATE` or
    /// `XATTR_REPLACE`.
    pub fn set_xattr(&self, node: Handle, name: &[u8], value: &[u8], flags: i32) -> Result<()> {
        let req = Request::SetXattr {
            node,
            name: name.to_vec(),
            value: value.to_vec(),
            flags: flags as u32,
        };
        Self::empty_reply(self.call(&req, 0)?.0)
    }

    /// The names of the node's `user.` extended attributes.
    pub fn list_xattr(&self, node: Handle) -> Result<Vec<Vec<u8>>> {
        match self.call(&Request::ListXattr { node }, 0)?.0 {
            Reply::ListXattr(v) => Ok(v),
            _ => Err(Errno(libc::EIO)),
        }
    }

    /// Removes an extended attribute.
    pub fn remove_xattr(&self, node: Handle, name: &[u8]) -> Result<()> {
        let req = Request::RemoveXattr {
            node,
            name: name.to_vec(),
        };
        Self::empty_reply(self.call(&req, 0)?.0)
    }

    /// Flushes the node's data and metadata to storage. (A donated fd can
    /// also be `fsync`ed directly.)
    pub fn fsync(&self, node: Handle) -> Result<()> {
        Self::empty_reply(self.call(&Request::Fsync { node }, 0)?.0)
    }

    /// Closes handles, in batches of up to `MAX_CLOSE` (16384) a round trip. Every
    /// valid handle is closed; `EBADF` if any was not a handle.
    pub fn close(&self, handles: &[Handle]) -> Result<()> {
        let mut result = Ok(());
        for chunk in handles.chunks(crate::proto::MAX_CLOSE) {
            let req = Request::Close {
                handles: chunk.to_vec(),
            };
            if let Err(e) = self.call(&req, 0).and_then(|(r, _)| Self::empty_reply(r)) {
                result = Err(e);
            }
        }
        result
    }

    /// Makes a unix socket of `sock_type` (`SOCK_STREAM`,
    /// `SOCK_SEQPACKET` or `SOCK_DGRAM`) bound at `dir/name` (listening
    /// unless datagram), and returns its node and the socket fd.
    pub fn bind_socket(
        &self,
        dir: Handle,
        name: &[u8],
        sock_type: i32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(NodeInfo, OwnedFd)> {
        let req = Request::BindSocket {
            dir,
            name: name.to_vec(),
            sock_type: sock_type as u32,
            mode,
            uid,
            gid,
        };
        let (reply, fds) = self.call(&req, 1)?;
        Ok((Self::node_reply(reply)?, Self::one_fd(fds)?))
    }

    /// Connects a new unix socket of `sock_type` to the socket node
    /// `node` and returns it.
    pub fn connect_socket(&self, node: Handle, sock_type: i32) -> Result<OwnedFd> {
        let req = Request::ConnectSocket {
            node,
            sock_type: sock_type as u32,
        };
        let (reply, fds) = self.call(&req, 1)?;
        Self::empty_reply(reply)?;
        Self::one_fd(fds)
    }
}
