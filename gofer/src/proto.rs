//! The gofer protocol: typed messages and their binary encoding.
//!
//! Every message is one `SOCK_SEQPACKET` record:
//!
//! ```text
//! +----------------+----------------+---------------------+
//! | len: u32 (LE)  | op: u32 (LE)   | body (len - 8 bytes) |
//! +----------------+----------------+---------------------+
//! ```
//!
//! `len` is the length of the whole record and must equal what was
//! received. A reply carries the op of its request, or [`OP_ERROR`] with
//! a Linux errno as its body. Integers are little-endian; byte strings
//! are a `u32` length followed by the bytes; lists are a `u32` count
//! followed by the items. Host fds travel beside a record as
//! `SCM_RIGHTS` (only in the replies to `Open`, `Create`, `BindSocket` and
//! `ConnectSocket`; a request that carries fds has them closed unread).
//!
//! Decoding is total: every count and length is checked against a fixed
//! bound and against the bytes that remain before anything is allocated
//! for it, names are validated, and trailing bytes are an error. A
//! malformed record decodes to an errno (`EINVAL`, `EMSGSIZE`,
//! `ENAMETOOLONG`, `ENOSYS` for an unknown op), never to a panic.

/// The protocol version exchanged by the handshake.
pub const VERSION: u32 = 1;
/// The largest record either side sends or accepts.
pub const MAX_MESSAGE: usize = 1 << 20;
/// Length of the record header (`len`, `op`).
pub const HEADER_LEN: usize = 8;
/// The longest file name.
pub const MAX_NAME: usize = 255;
/// The most names one walk may carry.
pub const MAX_WALK_NAMES: usize = 256;
/// The longest symlink target and guest mount path.
pub const MAX_PATH: usize = 4095;
/// The most handles one `Close` may carry (128 KiB: a record must fit
/// a unix socket's default send buffer, about 208 KiB).
pub const MAX_CLOSE: usize = 16384;
/// The longest xattr name (Linux's `XATTR_NAME_MAX`).
pub const MAX_XATTR_NAME: usize = 255;
/// The largest xattr value, and the largest xattr name list.
pub const MAX_XATTR_VALUE: usize = 65536;
/// The most mounts a handshake may announce.
pub const MAX_MOUNTS: usize = 256;
/// The most entries one `Getdents` reply carries.
pub const MAX_DIRENTS: usize = 4096;

/// A node handle: names one file the gofer holds open for this
/// connection. Handles come only from the handshake and from replies; an
/// unknown or closed one is `EBADF`.
pub type Handle = u64;

/// Operation codes (the `op` field of a record).
pub mod op {
    pub const VERSION: u32 = 1;
    pub const WALK: u32 = 2;
    pub const STAT: u32 = 3;
    pub const OPEN: u32 = 4;
    pub const CREATE: u32 = 5;
    pub const MKDIR: u32 = 6;
    pub const MKNOD: u32 = 7;
    pub const SYMLINK: u32 = 8;
    pub const LINK: u32 = 9;
    pub const UNLINK: u32 = 10;
    pub const RENAME: u32 = 11;
    pub const READLINK: u32 = 12;
    pub const GETDENTS: u32 = 13;
    pub const SETATTR: u32 = 14;
    pub const STATFS: u32 = 15;
    pub const GETXATTR: u32 = 16;
    pub const SETXATTR: u32 = 17;
    pub const LISTXATTR: u32 = 18;
    pub const REMOVEXATTR: u32 = 19;
    pub const FSYNC: u32 = 20;
    pub const CLOSE: u32 = 21;
    pub const BIND_SOCKET: u32 = 22;
    pub const CONNECT_SOCKET: u32 = 23;
    pub const CREATE_TMPFILE: u32 = 24;
}

/// The op of an error reply; its body is one `i32` errno.
pub const OP_ERROR: u32 = 0xffff;

/// `SetAttr` mask bits: which fields of the request apply.
pub mod setattr {
    pub const MODE: u32 = 1 << 0;
    pub const UID: u32 = 1 << 1;
    pub const GID: u32 = 1 << 2;
    pub const SIZE: u32 = 1 << 3;
    pub const ATIME: u32 = 1 << 4;
    pub const MTIME: u32 = 1 << 5;
    /// Every bit a request may set.
    pub const ALL: u32 = MODE | UID | GID | SIZE | ATIME | MTIME;
}

/// A time stamp. In `SetAttr`, `nsec` may be `libc::UTIME_NOW` or
/// `libc::UTIME_OMIT`, with utimensat(2)'s meaning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

/// A file's attributes, as `stat(2)` gives them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub dev: u64,
    /// File type and permission bits (`S_IFMT | 07777`).
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    pub blksize: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

impl Attr {
    /// The file type bits (`mode & S_IFMT`).
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }
    pub fn is_regular(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }
}

/// One served mount, announced by the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountInfo {
    /// The handle of the mount's root node.
    pub root: Handle,
    /// The root's attributes.
    pub attr: Attr,
    /// Every modifying operation on this mount fails with `EROFS`.
    pub read_only: bool,
    /// Where the sandbox mounts it (absolute, `/` for the root).
    pub guest_path: Vec<u8>,
}

/// A node found by a walk or made by a create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub handle: Handle,
    pub attr: Attr,
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirent {
    pub ino: u64,
    /// The cookie that continues the listing after this entry.
    pub off: u64,
    /// `DT_*` type.
    pub dtype: u8,
    pub name: Vec<u8>,
}

/// `statfs(2)`'s answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatFs {
    pub fs_type: u64,
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub namelen: u64,
    pub frsize: u64,
    pub flags: u64,
}

/// A request, sentry to gofer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// The first message of a connection.
    Version {
        version: u32,
    },
    /// Looks up `names` one after the other from `dir`.
    Walk {
        dir: Handle,
        names: Vec<Vec<u8>>,
    },
    Stat {
        node: Handle,
    },
    /// Donates a host fd; `flags` is an `open(2)` access mode plus
    /// optionally `O_TRUNC`, `O_APPEND`, `O_NONBLOCK`, `O_DSYNC`, `O_SYNC`,
    /// `O_DIRECT`, `O_NOATIME`, `O_LARGEFILE`.
    Open {
        node: Handle,
        flags: u32,
    },
    /// Makes a regular file (always exclusive) and opens it.
    Create {
        dir: Handle,
        name: Vec<u8>,
        mode: u32,
        flags: u32,
        uid: u32,
        gid: u32,
    },
    Mkdir {
        dir: Handle,
        name: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// An unnamed regular file in `dir` (`O_TMPFILE`), opened read-write;
    /// `flags` may hold `O_EXCL` (never to be linked in). Its node can be
    /// given a name with `Link`.
    CreateTmpfile {
        dir: Handle,
        mode: u32,
        flags: u32,
        uid: u32,
        gid: u32,
    },
    /// `mode` carries the type: `S_IFREG`, `S_IFIFO` or `S_IFSOCK`.
    Mknod {
        dir: Handle,
        name: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Symlink {
        dir: Handle,
        name: Vec<u8>,
        target: Vec<u8>,
        uid: u32,
        gid: u32,
    },
    /// Makes `dir/name` a hard link to `target`.
    Link {
        dir: Handle,
        name: Vec<u8>,
        target: Handle,
    },
    /// `flags` is 0 or `AT_REMOVEDIR`.
    Unlink {
        dir: Handle,
        name: Vec<u8>,
        flags: u32,
    },
    /// `flags`: `RENAME_NOREPLACE` or `RENAME_EXCHANGE`, or 0.
    Rename {
        old_dir: Handle,
        old_name: Vec<u8>,
        new_dir: Handle,
        new_name: Vec<u8>,
        flags: u32,
    },
    Readlink {
        node: Handle,
    },
    /// Lists `dir` from `cookie` (0 to start; a `Dirent::off` to go on).
    Getdents {
        dir: Handle,
        cookie: u64,
    },
    SetAttr {
        node: Handle,
        mask: u32,
        mode: u32,
        uid: u32,
        gid: u32,
        size: u64,
        atime: Timespec,
        mtime: Timespec,
    },
    StatFs {
        node: Handle,
    },
    GetXattr {
        node: Handle,
        name: Vec<u8>,
    },
    /// `flags`: 0, `XATTR_CREATE` or `XATTR_REPLACE`.
    SetXattr {
        node: Handle,
        name: Vec<u8>,
        value: Vec<u8>,
        flags: u32,
    },
    ListXattr {
        node: Handle,
    },
    RemoveXattr {
        node: Handle,
        name: Vec<u8>,
    },
    Fsync {
        node: Handle,
    },
    Close {
        handles: Vec<Handle>,
    },
    /// Makes a unix socket of `sock_type` bound at `dir/name`, listening.
    BindSocket {
        dir: Handle,
        name: Vec<u8>,
        sock_type: u32,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Connects a new unix socket of `sock_type` to the socket `node`.
    ConnectSocket {
        node: Handle,
        sock_type: u32,
    },
}

/// A reply, gofer to sentry. Which variant answers which request is
/// fixed by the op; `Error` answers any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Error(i32),
    Version {
        version: u32,
        mounts: Vec<MountInfo>,
    },
    /// The nodes found, in order; `status` is 0 when every name was
    /// found, else the errno that stopped the walk at `nodes.len()`.
    Walk {
        nodes: Vec<NodeInfo>,
        status: i32,
    },
    Stat(Attr),
    /// The fd travels beside the record.
    Open,
    /// Create, Mkdir, Mknod, Symlink, Link, BindSocket (fd beside for
    /// Create and BindSocket).
    Node {
        op: u32,
        node: NodeInfo,
    },
    /// Unlink, Rename, SetAttr, SetXattr, RemoveXattr, Fsync, Close,
    /// ConnectSocket (fd beside).
    Empty {
        op: u32,
    },
    Readlink(Vec<u8>),
    /// An empty list is the end of the directory.
    Getdents(Vec<Dirent>),
    StatFs(StatFs),
    GetXattr(Vec<u8>),
    ListXattr(Vec<Vec<u8>>),
}

/// Is `name` a valid single component: 1..=255 bytes, not `.` or `..`,
/// no NUL and no `/`?
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name != b"."
        && name != b".."
        && !name.iter().any(|&b| b == 0 || b == b'/')
}

/// Checks a name, giving the errno Linux would.
pub fn check_name(name: &[u8]) -> Result<(), i32> {
    if name.len() > MAX_NAME {
        Err(libc::ENAMETOOLONG)
    } else if valid_name(name) {
        Ok(())
    } else {
        Err(libc::EINVAL)
    }
}

fn check_xattr_name(name: &[u8]) -> Result<(), i32> {
    if name.len() > MAX_XATTR_NAME {
        return Err(libc::ERANGE);
    }
    if name.is_empty() || name.contains(&0) {
        return Err(libc::EINVAL);
    }
    Ok(())
}

fn check_target(t: &[u8]) -> Result<(), i32> {
    if t.len() > MAX_PATH {
        return Err(libc::ENAMETOOLONG);
    }
    if t.is_empty() || t.contains(&0) {
        return Err(libc::EINVAL);
    }
    Ok(())
}

// ---------------------------------------------------------------------
// Encoding.

/// Appends little-endian fields to a record.
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn new(op: u32) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_le_bytes());
        buf.extend_from_slice(&op.to_le_bytes());
        Writer { buf }
    }
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.buf.extend_from_slice(b);
    }
    fn time(&mut self, t: Timespec) {
        self.i64(t.sec);
        self.i64(t.nsec);
    }
    fn attr(&mut self, a: &Attr) {
        self.u64(a.ino);
        self.u64(a.dev);
        self.u32(a.mode);
        self.u64(a.nlink);
        self.u32(a.uid);
        self.u32(a.gid);
        self.u64(a.rdev);
        self.u64(a.size);
        self.u64(a.blocks);
        self.u64(a.blksize);
        self.time(a.atime);
        self.time(a.mtime);
        self.time(a.ctime);
    }
    fn node(&mut self, n: &NodeInfo) {
        self.u64(n.handle);
        self.attr(&n.attr);
    }
    /// Fills in the length. Fails with `EMSGSIZE` past [`MAX_MESSAGE`].
    fn finish(mut self) -> Result<Vec<u8>, i32> {
        if self.buf.len() > MAX_MESSAGE {
            return Err(libc::EMSGSIZE);
        }
        let len = (self.buf.len() as u32).to_le_bytes();
        self.buf[..4].copy_from_slice(&len);
        Ok(self.buf)
    }
}

/// Reads fields of a received record, bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
}

const BAD: i32 = libc::EINVAL;

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], i32> {
        if n > self.buf.len() {
            return Err(BAD);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], i32> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, i32> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, i32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, i32> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, i32> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn bool(&mut self) -> Result<bool, i32> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(BAD),
        }
    }
    /// A byte string of at most `max` bytes (checked before copying).
    fn bytes(&mut self, max: usize) -> Result<Vec<u8>, i32> {
        let n = self.u32()? as usize;
        if n > max || n > self.buf.len() {
            return Err(BAD);
        }
        Ok(self.take(n)?.to_vec())
    }
    /// A count of items each at least `min_item` bytes long, at most
    /// `max`; checked against the bytes left so nothing is allocated for
    /// items that cannot be there.
    fn count(&mut self, max: usize, min_item: usize) -> Result<usize, i32> {
        let n = self.u32()? as usize;
        if n > max || n.saturating_mul(min_item) > self.buf.len() {
            return Err(BAD);
        }
        Ok(n)
    }
    fn name(&mut self) -> Result<Vec<u8>, i32> {
        let n = self.bytes(MAX_NAME)?;
        check_name(&n)?;
        Ok(n)
    }
    fn time(&mut self) -> Result<Timespec, i32> {
        Ok(Timespec {
            sec: self.i64()?,
            nsec: self.i64()?,
        })
    }
    fn attr(&mut self) -> Result<Attr, i32> {
        Ok(Attr {
            ino: self.u64()?,
            dev: self.u64()?,
            mode: self.u32()?,
            nlink: self.u64()?,
            uid: self.u32()?,
            gid: self.u32()?,
            rdev: self.u64()?,
            size: self.u64()?,
            blocks: self.u64()?,
            blksize: self.u64()?,
            atime: self.time()?,
            mtime: self.time()?,
            ctime: self.time()?,
        })
    }
    fn node(&mut self) -> Result<NodeInfo, i32> {
        Ok(NodeInfo {
            handle: self.u64()?,
            attr: self.attr()?,
        })
    }
    fn end(&self) -> Result<(), i32> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(BAD)
        }
    }
}

/// The encoded size of an [`Attr`].
const ATTR_LEN: usize = 7 * 8 + 3 * 4 + 3 * 16;

/// Splits a record into its op and body, checking the header.
pub fn split_header(rec: &[u8]) -> Result<(u32, &[u8]), i32> {
    if rec.len() > MAX_MESSAGE {
        return Err(libc::EMSGSIZE);
    }
    if rec.len() < HEADER_LEN {
        return Err(BAD);
    }
    let mut r = Reader { buf: rec };
    let len = r.u32()? as usize;
    let op = r.u32()?;
    if len != rec.len() {
        return Err(BAD);
    }
    Ok((op, r.buf))
}

impl Request {
    /// The request's op code.
    pub fn op(&self) -> u32 {
        match self {
            Request::Version { .. } => op::VERSION,
            Request::Walk { .. } => op::WALK,
            Request::Stat { .. } => op::STAT,
            Request::Open { .. } => op::OPEN,
            Request::Create { .. } => op::CREATE,
            Request::Mkdir { .. } => op::MKDIR,
            Request::Mknod { .. } => op::MKNOD,
            Request::CreateTmpfile { .. } => op::CREATE_TMPFILE,
            Request::Symlink { .. } => op::SYMLINK,
            Request::Link { .. } => op::LINK,
            Request::Unlink { .. } => op::UNLINK,
            Request::Rename { .. } => op::RENAME,
            Request::Readlink { .. } => op::READLINK,
            Request::Getdents { .. } => op::GETDENTS,
            Request::SetAttr { .. } => op::SETATTR,
            Request::StatFs { .. } => op::STATFS,
            Request::GetXattr { .. } => op::GETXATTR,
            Request::SetXattr { .. } => op::SETXATTR,
            Request::ListXattr { .. } => op::LISTXATTR,
            Request::RemoveXattr { .. } => op::REMOVEXATTR,
            Request::Fsync { .. } => op::FSYNC,
            Request::Close { .. } => op::CLOSE,
            Request::BindSocket { .. } => op::BIND_SOCKET,
            Request::ConnectSocket { .. } => op::CONNECT_SOCKET,
        }
    }

    /// Encodes the request as one record. The same checks as decoding
    /// apply, so a request the client sends is one the server accepts.
    pub fn encode(&self) -> Result<Vec<u8>, i32> {
        let mut w = Writer::new(self.op());
        match self {
            Request::Version { version } => w.u32(*version),
            Request::Walk { dir, names } => {
                if names.len() > MAX_WALK_NAMES {
                    return Err(libc::EINVAL);
                }
                w.u64(*dir);
                w.u32(names.len() as u32);
                for n in names {
                    check_name(n)?;
                    w.bytes(n);
                }
            }
            Request::Stat { node }
            | Request::Readlink { node }
            | Request::StatFs { node }
            | Request::ListXattr { node }
            | Request::Fsync { node } => w.u64(*node),
            Request::Open { node, flags } => {
                w.u64(*node);
                w.u32(*flags);
            }
            Request::Create {
                dir,
                name,
                mode,
                flags,
                uid,
                gid,
            } => {
                check_name(name)?;
                w.u64(*dir);
                w.bytes(name);
                w.u32(*mode);
                w.u32(*flags);
                w.u32(*uid);
                w.u32(*gid);
            }
            Request::CreateTmpfile {
                dir,
                mode,
                flags,
                uid,
                gid,
            } => {
                w.u64(*dir);
                w.u32(*mode);
                w.u32(*flags);
                w.u32(*uid);
                w.u32(*gid);
            }
            Request::Mkdir {
                dir,
                name,
                mode,
                uid,
                gid,
            }
            | Request::Mknod {
                dir,
                name,
                mode,
                uid,
                gid,
            } => {
                check_name(name)?;
                w.u64(*dir);
                w.bytes(name);
                w.u32(*mode);
                w.u32(*uid);
                w.u32(*gid);
            }
            Request::Symlink {
                dir,
                name,
                target,
                uid,
                gid,
            } => {
                check_name(name)?;
                check_target(target)?;
                w.u64(*dir);
                w.bytes(name);
                w.bytes(target);
                w.u32(*uid);
                w.u32(*gid);
            }
            Request::Link { dir, name, target } => {
                check_name(name)?;
                w.u64(*dir);
                w.bytes(name);
                w.u64(*target);
            }
            Request::Unlink { dir, name, flags } => {
                check_name(name)?;
                w.u64(*dir);
                w.bytes(name);
                w.u32(*flags);
            }
            Request::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => {
                check_name(old_name)?;
                check_name(new_name)?;
                w.u64(*old_dir);
                w.bytes(old_name);
                w.u64(*new_dir);
                w.bytes(new_name);
                w.u32(*flags);
            }
            Request::Getdents { dir, cookie } => {
                w.u64(*dir);
                w.u64(*cookie);
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
                w.u64(*node);
                w.u32(*mask);
                w.u32(*mode);
                w.u32(*uid);
                w.u32(*gid);
                w.u64(*size);
                w.time(*atime);
                w.time(*mtime);
            }
            Request::GetXattr { node, name } | Request::RemoveXattr { node, name } => {
                check_xattr_name(name)?;
                w.u64(*node);
                w.bytes(name);
            }
            Request::SetXattr {
                node,
                name,
                value,
                flags,
            } => {
                check_xattr_name(name)?;
                if value.len() > MAX_XATTR_VALUE {
                    return Err(libc::E2BIG);
                }
                w.u64(*node);
                w.bytes(name);
                w.bytes(value);
                w.u32(*flags);
            }
            Request::Close { handles } => {
                if handles.len() > MAX_CLOSE {
                    return Err(libc::EINVAL);
                }
                w.u32(handles.len() as u32);
                for h in handles {
                    w.u64(*h);
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
                check_name(name)?;
                w.u64(*dir);
                w.bytes(name);
                w.u32(*sock_type);
                w.u32(*mode);
                w.u32(*uid);
                w.u32(*gid);
            }
            Request::ConnectSocket { node, sock_type } => {
                w.u64(*node);
                w.u32(*sock_type);
            }
        }
        w.finish()
    }

    /// Decodes one received record. Any malformation is an errno.
    pub fn decode(rec: &[u8]) -> Result<Request, i32> {
        let (opc, body) = split_header(rec)?;
        let mut r = Reader { buf: body };
        let req = match opc {
            op::VERSION => Request::Version { version: r.u32()? },
            op::WALK => {
                let dir = r.u64()?;
                let n = r.count(MAX_WALK_NAMES, 4 + 1)?;
                let mut names = Vec::with_capacity(n);
                for _ in 0..n {
                    names.push(r.name()?);
                }
                Request::Walk { dir, names }
            }
            op::STAT => Request::Stat { node: r.u64()? },
            op::READLINK => Request::Readlink { node: r.u64()? },
            op::STATFS => Request::StatFs { node: r.u64()? },
            op::LISTXATTR => Request::ListXattr { node: r.u64()? },
            op::FSYNC => Request::Fsync { node: r.u64()? },
            op::OPEN => Request::Open {
                node: r.u64()?,
                flags: r.u32()?,
            },
            op::CREATE => Request::Create {
                dir: r.u64()?,
                name: r.name()?,
                mode: r.u32()?,
                flags: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            op::MKDIR => Request::Mkdir {
                dir: r.u64()?,
                name: r.name()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            op::MKNOD => Request::Mknod {
                dir: r.u64()?,
                name: r.name()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            op::CREATE_TMPFILE => Request::CreateTmpfile {
                dir: r.u64()?,
                mode: r.u32()?,
                flags: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            op::SYMLINK => {
                let dir = r.u64()?;
                let name = r.name()?;
                let target = r.bytes(MAX_PATH)?;
                check_target(&target)?;
                Request::Symlink {
                    dir,
                    name,
                    target,
                    uid: r.u32()?,
                    gid: r.u32()?,
                }
            }
            op::LINK => Request::Link {
                dir: r.u64()?,
                name: r.name()?,
                target: r.u64()?,
            },
            op::UNLINK => Request::Unlink {
                dir: r.u64()?,
                name: r.name()?,
                flags: r.u32()?,
            },
            op::RENAME => Request::Rename {
                old_dir: r.u64()?,
                old_name: r.name()?,
                new_dir: r.u64()?,
                new_name: r.name()?,
                flags: r.u32()?,
            },
            op::GETDENTS => Request::Getdents {
                dir: r.u64()?,
                cookie: r.u64()?,
            },
            op::SETATTR => Request::SetAttr {
                node: r.u64()?,
                mask: r.u32()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
                size: r.u64()?,
                atime: r.time()?,
                mtime: r.time()?,
            },
            op::GETXATTR | op::REMOVEXATTR => {
                let node = r.u64()?;
                let name = r.bytes(MAX_XATTR_NAME)?;
                check_xattr_name(&name)?;
                if opc == op::GETXATTR {
                    Request::GetXattr { node, name }
                } else {
                    Request::RemoveXattr { node, name }
                }
            }
            op::SETXATTR => {
                let node = r.u64()?;
                let name = r.bytes(MAX_XATTR_NAME)?;
                check_xattr_name(&name)?;
                let value = r.bytes(MAX_XATTR_VALUE)?;
                Request::SetXattr {
                    node,
                    name,
                    value,
                    flags: r.u32()?,
                }
            }
            op::CLOSE => {
                let n = r.count(MAX_CLOSE, 8)?;
                let mut handles = Vec::with_capacity(n);
                for _ in 0..n {
                    handles.push(r.u64()?);
                }
                Request::Close { handles }
            }
            op::BIND_SOCKET => Request::BindSocket {
                dir: r.u64()?,
                name: r.name()?,
                sock_type: r.u32()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
            },
            op::CONNECT_SOCKET => Request::ConnectSocket {
                node: r.u64()?,
                sock_type: r.u32()?,
            },
            _ => return Err(libc::ENOSYS),
        };
        r.end()?;
        Ok(req)
    }
}

impl Reply {
    /// The op of the record this reply encodes to.
    pub fn op(&self) -> u32 {
        match self {
            Reply::Error(_) => OP_ERROR,
            Reply::Version { .. } => op::VERSION,
            Reply::Walk { .. } => op::WALK,
            Reply::Stat(_) => op::STAT,
            Reply::Open => op::OPEN,
            Reply::Node { op, .. } | Reply::Empty { op } => *op,
            Reply::Readlink(_) => op::READLINK,
            Reply::Getdents(_) => op::GETDENTS,
            Reply::StatFs(_) => op::STATFS,
            Reply::GetXattr(_) => op::GETXATTR,
            Reply::ListXattr(_) => op::LISTXATTR,
        }
    }

    /// Encodes the reply as one record.
    pub fn encode(&self) -> Result<Vec<u8>, i32> {
        let mut w = Writer::new(self.op());
        match self {
            Reply::Error(e) => w.i32(*e),
            Reply::Version { version, mounts } => {
                w.u32(*version);
                w.u32(mounts.len() as u32);
                for m in mounts {
                    w.u64(m.root);
                    w.attr(&m.attr);
                    w.u8(m.read_only as u8);
                    w.bytes(&m.guest_path);
                }
            }
            Reply::Walk { nodes, status } => {
                w.i32(*status);
                w.u32(nodes.len() as u32);
                for n in nodes {
                    w.node(n);
                }
            }
            Reply::Stat(a) => w.attr(a),
            Reply::Open | Reply::Empty { .. } => {}
            Reply::Node { node, .. } => w.node(node),
            Reply::Readlink(t) | Reply::GetXattr(t) => w.bytes(t),
            Reply::Getdents(ents) => {
                w.u32(ents.len() as u32);
                for e in ents {
                    w.u64(e.ino);
                    w.u64(e.off);
                    w.u8(e.dtype);
                    w.bytes(&e.name);
                }
            }
            Reply::StatFs(s) => {
                for v in [
                    s.fs_type, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.namelen,
                    s.frsize, s.flags,
                ] {
                    w.u64(v);
                }
            }
            Reply::ListXattr(names) => {
                w.u32(names.len() as u32);
                for n in names {
                    w.bytes(n);
                }
            }
        }
        w.finish()
    }

    /// Decodes a reply to a request of op `expect`. An error reply
    /// decodes to `Reply::Error`; a reply of another op, or any
    /// malformation, is `EIO` (the connection cannot be trusted after it).
    pub fn decode(rec: &[u8], expect: u32) -> Result<Reply, i32> {
        Self::decode_inner(rec, expect).map_err(|_| libc::EIO)
    }

    fn decode_inner(rec: &[u8], expect: u32) -> Result<Reply, i32> {
        let (opc, body) = split_header(rec)?;
        let mut r = Reader { buf: body };
        let reply = if opc == OP_ERROR {
            let e = r.i32()?;
            if e <= 0 || e > 4095 {
                return Err(BAD);
            }
            Reply::Error(e)
        } else if opc != expect {
            return Err(BAD);
        } else {
            match opc {
                op::VERSION => {
                    let version = r.u32()?;
                    let n = r.count(MAX_MOUNTS, 8 + ATTR_LEN + 1 + 4)?;
                    let mut mounts = Vec::with_capacity(n);
                    for _ in 0..n {
                        let root = r.u64()?;
                        let attr = r.attr()?;
                        let read_only = r.bool()?;
                        let guest_path = r.bytes(MAX_PATH)?;
                        if guest_path.first() != Some(&b'/') || guest_path.contains(&0) {
                            return Err(BAD);
                        }
                        mounts.push(MountInfo {
                            root,
                            attr,
                            read_only,
                            guest_path,
                        });
                    }
                    Reply::Version { version, mounts }
                }
                op::WALK => {
                    let status = r.i32()?;
                    if !(0..=4095).contains(&status) {
                        return Err(BAD);
                    }
                    let n = r.count(MAX_WALK_NAMES, 8 + ATTR_LEN)?;
                    let mut nodes = Vec::with_capacity(n);
                    for _ in 0..n {
                        nodes.push(r.node()?);
                    }
                    Reply::Walk { nodes, status }
                }
                op::STAT => Reply::Stat(r.attr()?),
                op::OPEN => Reply::Open,
                op::CREATE
                | op::CREATE_TMPFILE
                | op::MKDIR
                | op::MKNOD
                | op::SYMLINK
                | op::LINK
                | op::BIND_SOCKET => Reply::Node {
                    op: opc,
                    node: r.node()?,
                },
                op::UNLINK
                | op::RENAME
                | op::SETATTR
                | op::SETXATTR
                | op::REMOVEXATTR
                | op::FSYNC
                | op::CLOSE
                | op::CONNECT_SOCKET => Reply::Empty { op: opc },
                op::READLINK => Reply::Readlink(r.bytes(MAX_PATH)?),
                op::GETXATTR => Reply::GetXattr(r.bytes(MAX_XATTR_VALUE)?),
                op::GETDENTS => {
                    let n = r.count(MAX_DIRENTS, 8 + 8 + 1 + 4 + 1)?;
                    let mut ents = Vec::with_capacity(n);
                    for _ in 0..n {
                        let ino = r.u64()?;
                        let off = r.u64()?;
                        let dtype = r.u8()?;
                        let name = r.name()?;
                        ents.push(Dirent {
                            ino,
                            off,
                            dtype,
                            name,
                        });
                    }
                    Reply::Getdents(ents)
                }
                op::STATFS => {
                    let mut v = [0u64; 10];
                    for x in v.iter_mut() {
                        *x = r.u64()?;
                    }
                    Reply::StatFs(StatFs {
                        fs_type: v[0],
                        bsize: v[1],
                        blocks: v[2],
                        bfree: v[3],
                        bavail: v[4],
                        files: v[5],
                        ffree: v[6],
                        namelen: v[7],
                        frsize: v[8],
                        flags: v[9],
                    })
                }
                op::LISTXATTR => {
                    let n = r.count(MAX_XATTR_VALUE, 4 + 1)?;
                    let mut names = Vec::with_capacity(n);
                    for _ in 0..n {
                        let name = r.bytes(MAX_XATTR_NAME)?;
                        check_xattr_name(&name)?;
                        names.push(name);
                    }
                    Reply::ListXattr(names)
                }
                _ => return Err(BAD),
            }
        };
        r.end()?;
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let reqs = vec![
            Request::Version { version: VERSION },
            Request::Walk {
                dir: 3,
                names: vec![b"a".to_vec(), b"bc".to_vec()],
            },
            Request::Rename {
                old_dir: 1,
                old_name: b"x".to_vec(),
                new_dir: 2,
                new_name: b"y".to_vec(),
                flags: 1,
            },
            Request::SetXattr {
                node: 1,
                name: b"user.a".to_vec(),
                value: b"v".to_vec(),
                flags: 0,
            },
            Request::Close {
                handles: vec![1, 2, 3],
            },
        ];
        for q in reqs {
            let rec = q.encode().unwrap();
            assert_eq!(Request::decode(&rec).unwrap(), q);
            // Every truncation (with the length fixed up) and every
            // extension is an error.
            for cut in 0..rec.len() {
                let mut t = rec[..cut].to_vec();
                if t.len() >= 4 {
                    let l = (t.len() as u32).to_le_bytes();
                    t[..4].copy_from_slice(&l);
                }
                assert!(Request::decode(&t).is_err(), "{q:?} cut at {cut}");
            }
            let mut long = rec.clone();
            long.push(0);
            let l = (long.len() as u32).to_le_bytes();
            long[..4].copy_from_slice(&l);
            assert!(Request::decode(&long).is_err());
        }
    }

    #[test]
    fn attr_len_is_the_encoded_size() {
        let mut w = Writer::new(0);
        w.attr(&Attr::default());
        assert_eq!(w.buf.len() - HEADER_LEN, ATTR_LEN);
    }

    #[test]
    fn names_are_checked() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b", &[b'x'; 256][..]] {
            let q = Request::Walk {
                dir: 1,
                names: vec![bad.to_vec()],
            };
            assert!(q.encode().is_err());
            // Forge it past the encoder's check.
            let mut rec = Vec::new();
            rec.extend_from_slice(&0u32.to_le_bytes());
            rec.extend_from_slice(&op::WALK.to_le_bytes());
            rec.extend_from_slice(&1u64.to_le_bytes());
            rec.extend_from_slice(&1u32.to_le_bytes());
            rec.extend_from_slice(&(bad.len() as u32).to_le_bytes());
            rec.extend_from_slice(bad);
            let l = (rec.len() as u32).to_le_bytes();
            rec[..4].copy_from_slice(&l);
            assert!(Request::decode(&rec).is_err());
        }
    }

    #[test]
    fn huge_counts_allocate_nothing() {
        let mut rec = Vec::new();
        rec.extend_from_slice(&16u32.to_le_bytes());
        rec.extend_from_slice(&op::CLOSE.to_le_bytes());
        rec.extend_from_slice(&u32::MAX.to_le_bytes());
        rec.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(Request::decode(&rec), Err(libc::EINVAL));
        let reply_rec = {
            let mut v = Vec::new();
            v.extend_from_slice(&16u32.to_le_bytes());
            v.extend_from_slice(&op::GETDENTS.to_le_bytes());
            v.extend_from_slice(&0x1000u32.to_le_bytes());
            v.extend_from_slice(&0u32.to_le_bytes());
            v
        };
        assert_eq!(Reply::decode(&reply_rec, op::GETDENTS), Err(libc::EIO));
    }
}
