//! Server and client in one process over a socketpair, on temporary
//! directories: every operation, its errors, escape attempts and hostile
//! input.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use gofer::proto::{self, op, Reply, Request};
use gofer::{wire, Client, Export, Server, SetAttr, Timespec, NO_OWNER};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("gofer-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts a server thread on `exports`; returns the raw client socket.
fn start_raw(exports: Vec<Export>, max_nodes: usize) -> (OwnedFd, JoinHandle<std::io::Result<()>>) {
    let (a, b) = wire::socketpair().unwrap();
    let t = std::thread::spawn(move || {
        let ex = exports;
        Server::new(&ex).with_max_nodes(max_nodes).run(b)
    });
    (a, t)
}

fn start(exports: Vec<Export>) -> (Client, JoinHandle<std::io::Result<()>>) {
    let (a, t) = start_raw(exports, gofer::server::DEFAULT_MAX_NODES);
    (Client::connect(a).unwrap(), t)
}

fn rw_root(dir: &Path) -> Vec<Export> {
    vec![Export::open(dir, "/", false).unwrap()]
}

fn names<'a>(v: &'a [&'a str]) -> Vec<&'a [u8]> {
    v.iter().map(|s| s.as_bytes()).collect()
}

fn read_fd(fd: &OwnedFd) -> Vec<u8> {
    let mut f = std::fs::File::from(fd.try_clone().unwrap());
    let mut v = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut v).unwrap();
    v
}

fn errno<T: std::fmt::Debug>(r: Result<T, gofer::Errno>) -> i32 {
    r.expect_err("expected an error").0
}

#[test]
fn handshake_walk_open_read() {
    let t = TempDir::new("basic");
    std::fs::create_dir_all(t.path().join("a/b")).unwrap();
    std::fs::write(t.path().join("a/b/f"), b"hello").unwrap();
    let (c, _th) = start(rw_root(t.path()));
    assert_eq!(c.mounts().len(), 1);
    let m = &c.mounts()[0];
    assert_eq!(m.guest_path, b"/");
    assert!(m.attr.is_dir());
    assert!(!m.read_only);

    let w = c.walk(m.root, &names(&["a", "b", "f"])).unwrap();
    assert_eq!(w.status, 0);
    assert_eq!(w.nodes.len(), 3);
    assert!(w.nodes[1].attr.is_dir());
    let f = w.nodes[2];
    assert!(f.attr.is_regular());
    assert_eq!(f.attr.size, 5);
    let fd = c.open(f.handle, libc::O_RDONLY).unwrap();
    assert_eq!(read_fd(&fd), b"hello");

    // Missing component: the found prefix and ENOENT.
    let w = c.walk(m.root, &names(&["a", "zz", "q"])).unwrap();
    assert_eq!((w.nodes.len(), w.status), (1, libc::ENOENT));
    // Through a file: ENOTDIR.
    let w = c.walk(m.root, &names(&["a", "b", "f", "x"])).unwrap();
    assert_eq!((w.nodes.len(), w.status), (3, libc::ENOTDIR));
    // Stat, statfs.
    assert_eq!(c.stat(f.handle).unwrap().ino, f.attr.ino);
    assert!(c.statfs(m.root).unwrap().bsize > 0);
    // Bad names never leave the client; the server rejects them too
    // (see hostile_messages).
    for bad in ["..", ".", "", "a/b"] {
        assert_eq!(errno(c.walk(m.root, &[bad.as_bytes()])), libc::EINVAL);
    }
    // Unknown and closed handles.
    assert_eq!(errno(c.stat(999_999)), libc::EBADF);
    c.close(&[f.handle]).unwrap();
    assert_eq!(errno(c.stat(f.handle)), libc::EBADF);
    assert_eq!(errno(c.close(&[f.handle])), libc::EBADF);
    // A directory opens for getdents, read-only only.
    let d = c.walk(m.root, &names(&["a"])).unwrap().nodes[0].handle;
    let dfd = c.open(d, libc::O_RDONLY).unwrap();
    let list: Vec<_> = std::fs::read_dir(format!("/proc/self/fd/{}", dfd.as_raw_fd()))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(list, vec![std::ffi::OsString::from("b")]);
    assert_eq!(errno(c.open(d, libc::O_RDWR)), libc::EISDIR);
    assert_eq!(
        errno(c.open(d, libc::O_RDONLY | libc::O_CREAT)),
        libc::EINVAL
    );
}

#[test]
fn every_operation() {
    let t = TempDir::new("ops");
    let (c, _th) = start(rw_root(t.path()));
    let root = c.mounts()[0].root;

    // Create: node, attrs, and a writable fd.
    let (f, fd) = c
        .create(root, b"file", 0o640, libc::O_RDWR, NO_OWNER, NO_OWNER)
        .unwrap();
    assert_eq!(f.attr.mode, libc::S_IFREG | 0o640);
    std::io::Write::write_all(&mut std::fs::File::from(fd), b"abcdef").unwrap();
    assert_eq!(c.stat(f.handle).unwrap().size, 6);
    assert_eq!(
        errno(c.create(root, b"file", 0o600, libc::O_RDWR, NO_OWNER, NO_OWNER)),
        libc::EEXIST
    );
    // Owner as asked (the tests run as root).
    let (g, _) = c
        .create(root, b"owned", 0o600, libc::O_RDONLY, 1234, 5678)
        .unwrap();
    assert_eq!((g.attr.uid, g.attr.gid), (1234, 5678));

    // Mkdir, mknod (FIFO, socket; devices refused), symlink, readlink.
    let d = c.mkdir(root, b"dir", 0o755, NO_OWNER, NO_OWNER).unwrap();
    assert!(d.attr.is_dir());
    assert_eq!(
        errno(c.mkdir(root, b"dir", 0o755, NO_OWNER, NO_OWNER)),
        libc::EEXIST
    );
    let fifo = c
        .mknod(d.handle, b"fifo", libc::S_IFIFO | 0o600, NO_OWNER, NO_OWNER)
        .unwrap();
    assert_eq!(fifo.attr.file_type(), libc::S_IFIFO);
    c.mknod(
        d.handle,
        b"sock",
        libc::S_IFSOCK | 0o600,
        NO_OWNER,
        NO_OWNER,
    )
    .unwrap();
    c.mknod(d.handle, b"reg", libc::S_IFREG | 0o600, NO_OWNER, NO_OWNER)
        .unwrap();
    for dev in [libc::S_IFCHR, libc::S_IFBLK] {
        assert_eq!(
            errno(c.mknod(d.handle, b"dev", dev | 0o600, NO_OWNER, NO_OWNER)),
            libc::EPERM
        );
    }
    let s = c.symlink(root, b"sl", b"file", NO_OWNER, NO_OWNER).unwrap();
    assert!(s.attr.is_symlink());
    assert_eq!(c.readlink(s.handle).unwrap(), b"file");
    assert_eq!(errno(c.readlink(f.handle)), libc::EINVAL);
    assert_eq!(errno(c.open(s.handle, libc::O_RDONLY)), libc::ELOOP);
    // A FIFO opens without blocking.
    let ff = c
        .open(fifo.handle, libc::O_RDONLY | libc::O_NONBLOCK)
        .unwrap();
    drop(ff);

    // Link.
    let l = c.link(d.handle, b"hard", f.handle).unwrap();
    assert_eq!(l.attr.ino, f.attr.ino);
    assert_eq!(c.stat(f.handle).unwrap().nlink, 2);
    assert_eq!(errno(c.link(root, b"dl", d.handle)), libc::EPERM);

    // Getdents: names, inode numbers, types; no . and ..
    let ents = c.read_dir(d.handle).unwrap();
    let mut got: Vec<(Vec<u8>, u8)> = ents.iter().map(|e| (e.name.clone(), e.dtype)).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (b"fifo".to_vec(), libc::DT_FIFO),
            (b"hard".to_vec(), libc::DT_REG),
            (b"reg".to_vec(), libc::DT_REG),
            (b"sock".to_vec(), libc::DT_SOCK),
        ]
    );
    assert_eq!(errno(c.getdents(f.handle, 0)), libc::ENOTDIR);

    // Rename, NOREPLACE, EXCHANGE; an open handle follows its file.
    c.rename(root, b"file", d.handle, b"moved", 0).unwrap();
    let fd = c.open(f.handle, libc::O_RDONLY).unwrap();
    assert_eq!(read_fd(&fd), b"abcdef");
    assert_eq!(
        errno(c.rename(d.handle, b"moved", d.handle, b"reg", libc::RENAME_NOREPLACE)),
        libc::EEXIST
    );
    c.rename(d.handle, b"moved", d.handle, b"reg", libc::RENAME_EXCHANGE)
        .unwrap();
    assert_eq!(
        read_fd(&c.open(f.handle, libc::O_RDONLY).unwrap()),
        b"abcdef"
    );
    assert_eq!(std::fs::read(t.path().join("dir/reg")).unwrap(), b"abcdef");
    assert_eq!(errno(c.rename(root, b"nope", root, b"x", 0)), libc::ENOENT);
    assert_eq!(
        errno(c.rename(root, b"owned", root, b"x", 0xff)),
        libc::EINVAL
    );

    // SetAttr in one message: mode, owner, size, times.
    c.set_attr(
        f.handle,
        &SetAttr {
            mode: Some(0o600),
            uid: Some(42),
            gid: Some(43),
            size: Some(3),
            atime: Some(Timespec { sec: 1000, nsec: 5 }),
            mtime: Some(Timespec { sec: 2000, nsec: 7 }),
        },
    )
    .unwrap();
    let a = c.stat(f.handle).unwrap();
    assert_eq!(a.mode & 0o7777, 0o600);
    assert_eq!((a.uid, a.gid, a.size), (42, 43, 3));
    assert_eq!((a.atime.sec, a.atime.nsec), (1000, 5));
    assert_eq!((a.mtime.sec, a.mtime.nsec), (2000, 7));
    // UTIME_OMIT keeps, UTIME_NOW sets now.
    c.set_attr(
        f.handle,
        &SetAttr {
            atime: Some(Timespec {
                sec: 0,
                nsec: libc::UTIME_OMIT,
            }),
            mtime: Some(Timespec {
                sec: 0,
                nsec: libc::UTIME_NOW,
            }),
            ..Default::default()
        },
    )
    .unwrap();
    let b = c.stat(f.handle).unwrap();
    assert_eq!(b.atime.sec, 1000);
    assert!(b.mtime.sec > 1_600_000_000);
    assert_eq!(
        errno(c.set_attr(
            d.handle,
            &SetAttr {
                size: Some(0),
                ..Default::default()
            }
        )),
        libc::EISDIR
    );
    assert_eq!(
        errno(c.set_attr(
            f.handle,
            &SetAttr {
                mtime: Some(Timespec {
                    sec: 0,
                    nsec: 2_000_000_000
                }),
                ..Default::default()
            }
        )),
        libc::EINVAL
    );
    // O_TRUNC through open.
    drop(c.open(f.handle, libc::O_WRONLY | libc::O_TRUNC).unwrap());
    assert_eq!(c.stat(f.handle).unwrap().size, 0);

    // Xattrs (user. only).
    c.set_xattr(f.handle, b"user.k", b"v1", 0).unwrap();
    assert_eq!(c.get_xattr(f.handle, b"user.k").unwrap(), b"v1");
    assert_eq!(
        errno(c.set_xattr(f.handle, b"user.k", b"v2", libc::XATTR_CREATE)),
        libc::EEXIST
    );
    assert_eq!(c.list_xattr(f.handle).unwrap(), vec![b"user.k".to_vec()]);
    c.remove_xattr(f.handle, b"user.k").unwrap();
    assert_eq!(errno(c.get_xattr(f.handle, b"user.k")), libc::ENODATA);
    assert_eq!(
        errno(c.set_xattr(f.handle, b"trusted.k", b"v", 0)),
        libc::EOPNOTSUPP
    );
    c.fsync(f.handle).unwrap();
    c.fsync(d.handle).unwrap();

    // Unlink: ENOTEMPTY, ENOENT, EISDIR/ENOTDIR by flags.
    assert_eq!(
        errno(c.unlink(root, b"dir", libc::AT_REMOVEDIR)),
        libc::ENOTEMPTY
    );
    assert_eq!(errno(c.unlink(root, b"dir", 0)), libc::EISDIR);
    assert_eq!(
        errno(c.unlink(root, b"owned", libc::AT_REMOVEDIR)),
        libc::ENOTDIR
    );
    assert_eq!(errno(c.unlink(root, b"gone", 0)), libc::ENOENT);
    assert_eq!(errno(c.unlink(root, b"owned", 0x1234)), libc::EINVAL);
    c.unlink(root, b"owned", 0).unwrap();
    for n in ["fifo", "sock", "hard", "reg", "moved"] {
        c.unlink(d.handle, n.as_bytes(), 0).unwrap();
    }
    c.unlink(root, b"dir", libc::AT_REMOVEDIR).unwrap();
    // The node of a removed file can no longer be opened.
    assert_eq!(errno(c.open(f.handle, libc::O_RDONLY)), libc::ENOENT);
    // Operations on the wrong kind of node.
    assert_eq!(
        errno(c.mkdir(s.handle, b"x", 0o700, NO_OWNER, NO_OWNER)),
        libc::ENOTDIR
    );
}

#[test]
fn large_directory_is_batched() {
    let t = TempDir::new("big");
    for i in 0..3000 {
        std::fs::write(
            t.path().join(format!("entry-with-a-longish-name-{i:05}")),
            b"",
        )
        .unwrap();
    }
    let (c, _th) = start(rw_root(t.path()));
    let root = c.mounts()[0].root;
    let first = c.getdents(root, 0).unwrap();
    assert!(
        !first.is_empty() && first.len() < 3000,
        "one batch: {}",
        first.len()
    );
    let all = c.read_dir(root).unwrap();
    let mut names: Vec<_> = all.iter().map(|e| e.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3000);
}

#[test]
fn unix_sockets() {
    let t = TempDir::new("sock");
    let (c, _th) = start(rw_root(t.path()));
    let root = c.mounts()[0].root;
    let (n, listener) = c
        .bind_socket(root, b"s", libc::SOCK_STREAM, 0o600, NO_OWNER, NO_OWNER)
        .unwrap();
    assert_eq!(n.attr.file_type(), libc::S_IFSOCK);
    assert_eq!(n.attr.mode & 0o777, 0o600);
    let conn = c.connect_socket(n.handle, libc::SOCK_STREAM).unwrap();
    // SAFETY: accept on a listening socket we own; no address wanted.
    let acc = unsafe {
        libc::accept(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    assert!(acc >= 0);
    // SAFETY: closes the fd accept returned.
    unsafe { libc::close(acc) };
    drop(conn);
    assert_eq!(
        errno(c.connect_socket(root, libc::SOCK_STREAM)),
        libc::ECONNREFUSED
    );
}

#[test]
fn unnamed_files_can_be_named_once_unless_exclusive() {
    let t = TempDir::new("tmpfile");
    let (c, _th) = start(rw_root(t.path()));
    let root = c.mounts()[0].root;
    let (n, fd) = c
        .create_tmpfile(root, 0o640, 0, NO_OWNER, NO_OWNER)
        .unwrap();
    assert_eq!(n.attr.mode, libc::S_IFREG | 0o640);
    assert_eq!(n.attr.nlink, 0);
    std::io::Write::write_all(&mut std::fs::File::from(fd), b"unnamed").unwrap();
    // Nothing in the directory until it is linked in.
    assert!(std::fs::read_dir(t.path()).unwrap().next().is_none());
    c.link(root, b"named", n.handle).unwrap();
    assert_eq!(std::fs::read(t.path().join("named")).unwrap(), b"unnamed");
    let (x, _fd) = c
        .create_tmpfile(root, 0o600, libc::O_EXCL, NO_OWNER, NO_OWNER)
        .unwrap();
    assert_eq!(errno(c.link(root, b"never", x.handle)), libc::ENOENT);
    assert_eq!(
        errno(c.create_tmpfile(root, 0o600, libc::O_TRUNC, NO_OWNER, NO_OWNER)),
        libc::EINVAL
    );
}

#[test]
fn read_only_mounts_refuse_changes() {
    let t = TempDir::new("ro");
    std::fs::create_dir(t.path().join("d")).unwrap();
    std::fs::write(t.path().join("f"), b"x").unwrap();
    let (c, _th) = start(vec![Export::open(t.path(), "/", true).unwrap()]);
    let m = &c.mounts()[0];
    assert!(m.read_only);
    let root = m.root;
    let w = c.walk(root, &names(&["f"])).unwrap();
    let f = w.nodes[0].handle;
    let rofs = libc::EROFS;
    assert_eq!(
        errno(c.create(root, b"n", 0o600, libc::O_RDWR, NO_OWNER, NO_OWNER)),
        rofs
    );
    assert_eq!(errno(c.mkdir(root, b"n", 0o700, NO_OWNER, NO_OWNER)), rofs);
    assert_eq!(
        errno(c.mknod(root, b"n", libc::S_IFIFO | 0o600, NO_OWNER, NO_OWNER)),
        rofs
    );
    assert_eq!(errno(c.symlink(root, b"n", b"t", NO_OWNER, NO_OWNER)), rofs);
    assert_eq!(errno(c.link(root, b"n", f)), rofs);
    assert_eq!(errno(c.unlink(root, b"f", 0)), rofs);
    assert_eq!(errno(c.rename(root, b"f", root, b"g", 0)), rofs);
    assert_eq!(
        errno(c.set_attr(
            f,
            &SetAttr {
                mode: Some(0o777),
                ..Default::default()
            }
        )),
        rofs
    );
    assert_eq!(errno(c.set_xattr(f, b"user.a", b"b", 0)), rofs);
    assert_eq!(errno(c.remove_xattr(f, b"user.a")), rofs);
    assert_eq!(errno(c.open(f, libc::O_RDWR)), rofs);
    assert_eq!(errno(c.open(f, libc::O_WRONLY)), rofs);
    assert_eq!(errno(c.open(f, libc::O_RDONLY | libc::O_TRUNC)), rofs);
    assert_eq!(
        errno(c.bind_socket(root, b"s", libc::SOCK_STREAM, 0o600, NO_OWNER, NO_OWNER)),
        rofs
    );
    assert_eq!(read_fd(&c.open(f, libc::O_RDONLY).unwrap()), b"x");
    assert_ne!(c.statfs(root).unwrap().flags & libc::ST_RDONLY, 0);
    assert_eq!(std::fs::read(t.path().join("f")).unwrap(), b"x");
}

#[test]
fn symlinks_are_never_followed() {
    let t = TempDir::new("sym");
    std::fs::create_dir(t.path().join("d")).unwrap();
    symlink("/", t.path().join("d/toroot")).unwrap();
    symlink("../../..", t.path().join("d/up")).unwrap();
    symlink("/etc/passwd", t.path().join("pw")).unwrap();
    let (c, _th) = start(rw_root(t.path()));
    let root = c.mounts()[0].root;
    for (name, target) in [("toroot", &b"/"[..]), ("up", b"../../..")] {
        let w = c.walk(root, &names(&["d", name, "etc"])).unwrap();
        assert_eq!(w.status, libc::ENOTDIR, "{name}");
        assert_eq!(w.nodes.len(), 2);
        let s = w.nodes[1];
        assert!(s.attr.is_symlink());
        assert_eq!(c.readlink(s.handle).unwrap(), target);
        assert_eq!(errno(c.open(s.handle, libc::O_RDONLY)), libc::ELOOP);
        assert_eq!(errno(c.getdents(s.handle, 0)), libc::ENOTDIR);
        assert_eq!(
            errno(c.create(s.handle, b"x", 0o600, 0, NO_OWNER, NO_OWNER)),
            libc::ENOTDIR
        );
    }
    let pw = c.walk(root, &names(&["pw"])).unwrap().nodes[0];
    assert!(pw.attr.is_symlink());
    assert_eq!(errno(c.open(pw.handle, libc::O_RDONLY)), libc::ELOOP);
    assert_eq!(errno(c.get_xattr(pw.handle, b"user.x")), libc::EPERM);
    // A hard link of a symlink links the symlink, not what it names.
    let l = c.link(root, b"pw2", pw.handle).unwrap();
    assert!(l.attr.is_symlink());
    // SetAttr on a symlink touches the link, never its target.
    let before = std::fs::metadata("/etc/passwd").unwrap();
    let _ = c.set_attr(
        pw.handle,
        &SetAttr {
            mode: Some(0o777),
            uid: Some(4242),
            ..Default::default()
        },
    );
    let after = std::fs::metadata("/etc/passwd").unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((before.mode(), before.uid()), (after.mode(), after.uid()));
}

/// A symlink swapped in for a directory, and for a file, between and
/// during walks and opens, never yields anything outside the root.
#[test]
fn swap_races_stay_inside() {
    let t = TempDir::new("race");
    let outside = TempDir::new("race-outside");
    std::fs::write(outside.path().join("secret"), b"SECRET").unwrap();
    std::fs::create_dir(t.path().join("d")).unwrap();
    std::fs::write(t.path().join("f"), b"inside").unwrap();
    symlink(outside.path(), t.path().join("dlink")).unwrap();
    symlink(outside.path().join("secret"), t.path().join("flink")).unwrap();
    let (c, _th) = start(rw_root(t.path()));
    let root = c.mounts()[0].root;
    let f = c.walk(root, &names(&["f"])).unwrap().nodes[0].handle;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let base = CString::new(t.path().as_os_str().as_bytes()).unwrap();
    let stop2 = stop.clone();
    let swapper = std::thread::spawn(move || {
        let dirfd = std::fs::File::open(base.to_str().unwrap()).unwrap();
        let mut n = 0u64;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            for (a, b) in [(c"d", c"dlink"), (c"f", c"flink")] {
                // SAFETY: renameat2 on names in a directory we own.
                unsafe {
                    libc::syscall(
                        libc::SYS_renameat2,
                        dirfd.as_raw_fd(),
                        a.as_ptr(),
                        dirfd.as_raw_fd(),
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
            }
            n += 1;
        }
        n
    });
    let mut handles = Vec::new();
    for _ in 0..3000 {
        for first in ["d", "dlink"] {
            let w = c.walk(root, &names(&[first, "secret"])).unwrap();
            assert_ne!(w.status, 0, "walked out of the root through {first}");
            handles.extend(w.nodes.iter().map(|n| n.handle));
        }
        for name in ["f", "flink"] {
            let w = c.walk(root, &names(&[name])).unwrap();
            for n in &w.nodes {
                if let Ok(fd) = c.open(n.handle, libc::O_RDONLY) {
                    assert_eq!(read_fd(&fd), b"inside");
                }
                handles.push(n.handle);
            }
        }
        if let Ok(fd) = c.open(f, libc::O_RDONLY) {
            assert_eq!(read_fd(&fd), b"inside");
        }
        if handles.len() > 1000 {
            c.close(&handles).unwrap();
            handles.clear();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(swapper.join().unwrap() > 0);
}

#[test]
fn links_and_renames_stay_on_one_mount() {
    let t = TempDir::new("xdev");
    let other = TempDir::new("xdev-other");
    std::fs::write(other.path().join("o"), b"o").unwrap();
    let (c, _th) = start(vec![
        Export::open(t.path(), "/", false).unwrap(),
        Export::open(other.path(), "/other", false).unwrap(),
    ]);
    let (root, oroot) = (c.mounts()[0].root, c.mounts()[1].root);
    assert_eq!(c.mounts()[1].guest_path, b"/other");
    let o = c.walk(oroot, &names(&["o"])).unwrap().nodes[0].handle;
    assert_eq!(errno(c.link(root, b"l", o)), libc::EXDEV);
    assert_eq!(errno(c.rename(oroot, b"o", root, b"o", 0)), libc::EXDEV);
    assert!(!t.path().join("l").exists());
}

fn mount_tmpfs(at: &Path) {
    let p = CString::new(at.as_os_str().as_bytes()).unwrap();
    // SAFETY: NUL-terminated strings for mount(2).
    let rc = unsafe {
        libc::mount(
            c"none".as_ptr(),
            p.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "mount: {}", std::io::Error::last_os_error());
}

/// Mounts inside the root are not crossed unless they are served.
#[test]
fn unserved_mounts_are_not_crossed() {
    let t = TempDir::new("mnt");
    let served_dir = t.path().join("served");
    let hidden_dir = t.path().join("hidden");
    std::fs::create_dir(&served_dir).unwrap();
    std::fs::create_dir(&hidden_dir).unwrap();
    let path = t.path().to_path_buf();
    // A mount namespace of this test's thread (and the server thread it
    // starts) only, so nothing is left mounted on the host.
    std::thread::spawn(move || {
        // SAFETY: plain syscalls; affect this thread's namespaces only.
        unsafe {
            assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0);
            assert_eq!(
                libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null()
                ),
                0
            );
        }
        mount_tmpfs(&served_dir);
        mount_tmpfs(&hidden_dir);
        std::fs::write(served_dir.join("s"), b"served").unwrap();
        std::fs::write(hidden_dir.join("h"), b"hidden").unwrap();
        let (c, th) = start(vec![
            Export::open(&path, "/", false).unwrap(),
            Export::open(&served_dir, "/served", true).unwrap(),
        ]);
        let root = c.mounts()[0].root;
        let w = c.walk(root, &names(&["hidden", "h"])).unwrap();
        assert_eq!((w.nodes.len(), w.status), (0, libc::EXDEV));
        let w = c.walk(root, &names(&["served", "s"])).unwrap();
        assert_eq!(w.status, 0);
        assert_eq!(w.nodes[0].attr, c.mounts()[1].attr);
        // It is the served mount, with its read-only flag.
        assert_eq!(
            errno(c.mkdir(w.nodes[0].handle, b"x", 0o700, NO_OWNER, NO_OWNER)),
            libc::EROFS
        );
        assert_eq!(read_fd(&c.open(w.nodes[1].handle, 0).unwrap()), b"served");
        drop(c);
        th.join().unwrap().unwrap();
    })
    .join()
    .unwrap();
}

#[test]
fn node_table_is_capped() {
    let t = TempDir::new("cap");
    std::fs::create_dir(t.path().join("d")).unwrap();
    let (sock, _th) = start_raw(rw_root(t.path()), 10);
    let c = Client::connect(sock).unwrap();
    let root = c.mounts()[0].root;
    let mut hs = Vec::new();
    loop {
        let w = c.walk(root, &names(&["d"])).unwrap();
        hs.extend(w.nodes.iter().map(|n| n.handle));
        if w.status != 0 {
            assert_eq!(w.status, libc::ENFILE);
            break;
        }
        assert!(hs.len() < 100);
    }
    assert_eq!(hs.len(), 9);
    c.close(&hs).unwrap();
    assert_eq!(c.walk(root, &names(&["d"])).unwrap().status, 0);
}

// ---------------------------------------------------------------------
// Hostile peers.

/// Sends `rec` and returns the reply's op and body.
fn raw(sock: &OwnedFd, rec: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]) -> Option<(u32, Vec<u8>)> {
    wire::send(sock.as_fd(), rec, fds).ok()?;
    let mut buf = vec![0u8; proto::MAX_MESSAGE];
    let got = wire::recv(sock.as_fd(), &mut buf).ok()??;
    let (o, body) = proto::split_header(&buf[..got.len]).expect("server sent a bad record");
    Some((o, body.to_vec()))
}

fn error_of(r: Option<(u32, Vec<u8>)>) -> i32 {
    let (o, body) = r.expect("no reply");
    assert_eq!(o, proto::OP_ERROR);
    i32::from_le_bytes(body[..4].try_into().unwrap())
}

fn handshake(sock: &OwnedFd) -> u64 {
    let (o, body) = raw(
        sock,
        &Request::Version {
            version: proto::VERSION,
        }
        .encode()
        .unwrap(),
        &[],
    )
    .unwrap();
    assert_eq!(o, op::VERSION);
    let mut rec = Vec::new();
    rec.extend_from_slice(&((body.len() + 8) as u32).to_le_bytes());
    rec.extend_from_slice(&o.to_le_bytes());
    rec.extend_from_slice(&body);
    match Reply::decode(&rec, op::VERSION).unwrap() {
        Reply::Version { mounts, .. } => mounts[0].root,
        r => panic!("{r:?}"),
    }
}

fn record(opc: u32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&((body.len() + 8) as u32).to_le_bytes());
    v.extend_from_slice(&opc.to_le_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn requests_before_the_handshake_end_the_connection() {
    let t = TempDir::new("prehs");
    let (sock, th) = start_raw(rw_root(t.path()), 100);
    assert_eq!(
        error_of(raw(
            &sock,
            &Request::Stat { node: 1 }.encode().unwrap(),
            &[]
        )),
        libc::EPROTO
    );
    th.join().unwrap().unwrap();
    let (sock, th) = start_raw(rw_root(t.path()), 100);
    assert_eq!(
        error_of(raw(
            &sock,
            &Request::Version { version: 99 }.encode().unwrap(),
            &[]
        )),
        libc::EPROTONOSUPPORT
    );
    th.join().unwrap().unwrap();
    // A client refuses a server of another version.
    let (a, b) = wire::socketpair().unwrap();
    let fake = std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        wire::recv(b.as_fd(), &mut buf).unwrap();
        let r = Reply::Version {
            version: 2,
            mounts: vec![],
        }
        .encode()
        .unwrap();
        wire::send(b.as_fd(), &r, &[]).unwrap();
    });
    assert_eq!(Client::connect(a).unwrap_err().0, libc::EPROTONOSUPPORT);
    fake.join().unwrap();
}

#[test]
fn hostile_messages() {
    let t = TempDir::new("hostile");
    std::fs::create_dir(t.path().join("d")).unwrap();
    let (sock, th) = start_raw(rw_root(t.path()), 1000);
    let root = handshake(&sock);
    let einval = libc::EINVAL;
    // Truncated header, length not matching, trailing garbage.
    assert_eq!(error_of(raw(&sock, &[1, 2, 3], &[])), einval);
    let mut r = record(op::STAT, &root.to_le_bytes());
    r[0] = 200;
    assert_eq!(error_of(raw(&sock, &r, &[])), einval);
    let mut body = root.to_le_bytes().to_vec();
    body.push(0);
    assert_eq!(error_of(raw(&sock, &record(op::STAT, &body), &[])), einval);
    assert_eq!(
        error_of(raw(&sock, &record(op::STAT, &body[..5]), &[])),
        einval
    );
    // Unknown ops, the error op itself.
    assert_eq!(
        error_of(raw(&sock, &record(0x7777, &[]), &[])),
        libc::ENOSYS
    );
    assert_eq!(
        error_of(raw(&sock, &record(proto::OP_ERROR, &[0; 4]), &[])),
        libc::ENOSYS
    );
    // Garbage counts and lengths.
    let mut w = root.to_le_bytes().to_vec();
    w.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(error_of(raw(&sock, &record(op::WALK, &w), &[])), einval);
    let mut w = root.to_le_bytes().to_vec();
    w.extend_from_slice(&1u32.to_le_bytes());
    w.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
    w.extend_from_slice(b"d");
    assert_eq!(error_of(raw(&sock, &record(op::WALK, &w), &[])), einval);
    // Names with '/', '..', NUL forged past the encoder.
    for bad in [&b".."[..], b"d/..", b"d\0", b"", b"."] {
        let mut w = root.to_le_bytes().to_vec();
        w.extend_from_slice(&1u32.to_le_bytes());
        w.extend_from_slice(&(bad.len() as u32).to_le_bytes());
        w.extend_from_slice(bad);
        assert_eq!(
            error_of(raw(&sock, &record(op::WALK, &w), &[])),
            einval,
            "{bad:?}"
        );
    }
    // Too many names in one walk.
    let mut w = root.to_le_bytes().to_vec();
    w.extend_from_slice(&((proto::MAX_WALK_NAMES + 1) as u32).to_le_bytes());
    for _ in 0..=proto::MAX_WALK_NAMES {
        w.extend_from_slice(&1u32.to_le_bytes());
        w.push(b'd');
    }
    assert_eq!(error_of(raw(&sock, &record(op::WALK, &w), &[])), einval);
    // Bad handles.
    for h in [0u64, 12345, u64::MAX] {
        assert_eq!(
            error_of(raw(&sock, &record(op::STAT, &h.to_le_bytes()), &[])),
            libc::EBADF
        );
    }
    // A second handshake.
    assert_eq!(
        error_of(raw(
            &sock,
            &Request::Version { version: 1 }.encode().unwrap(),
            &[]
        )),
        einval
    );
    // An oversized record (past MAX_MESSAGE): needs a send buffer that
    // holds it.
    let big: libc::c_int = 4 << 20;
    // SAFETY: setsockopt with a valid int.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUFFORCE,
            (&big as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    let mut huge = record(op::STAT, &vec![0u8; proto::MAX_MESSAGE]);
    let l = (huge.len() as u32).to_le_bytes();
    huge[..4].copy_from_slice(&l);
    if wire::send(sock.as_fd(), &huge, &[]).is_ok() {
        let mut buf = vec![0u8; 64];
        let got = wire::recv(sock.as_fd(), &mut buf).unwrap().unwrap();
        let (o, body) = proto::split_header(&buf[..got.len]).unwrap();
        assert_eq!(
            (o, body),
            (proto::OP_ERROR, &libc::EMSGSIZE.to_le_bytes()[..])
        );
    }
    // Fds sent to the gofer are closed: the pipe's write end goes away.
    let (rd, wr) = nix::unistd::pipe().unwrap();
    assert_eq!(
        error_of(raw(
            &sock,
            &record(op::STAT, &12345u64.to_le_bytes()),
            &[wr.as_fd(), wr.as_fd()]
        )),
        libc::EBADF
    );
    drop(wr);
    let mut b = [0u8; 1];
    assert_eq!(
        nix::unistd::read(rd.as_raw_fd(), &mut b).unwrap(),
        0,
        "the gofer kept a sent fd"
    );
    // Still serving.
    let (o, _) = raw(&sock, &Request::Stat { node: root }.encode().unwrap(), &[]).unwrap();
    assert_eq!(o, op::STAT);
    drop(sock);
    th.join().unwrap().unwrap();
}

/// xorshift64*: a seeded generator, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn fuzzed_messages() {
    let t = TempDir::new("fuzz");
    std::fs::create_dir_all(t.path().join("a/b")).unwrap();
    std::fs::write(t.path().join("a/f"), b"data").unwrap();
    let (sock, th) = start_raw(rw_root(t.path()), 4096);
    let root = handshake(&sock);
    let seeds: Vec<Request> = vec![
        Request::Walk {
            dir: root,
            names: vec![b"a".to_vec(), b"b".to_vec()],
        },
        Request::Stat { node: root },
        Request::Open { node: 2, flags: 0 },
        Request::Create {
            dir: 2,
            name: b"c".to_vec(),
            mode: 0o600,
            flags: 2,
            uid: u32::MAX,
            gid: u32::MAX,
        },
        Request::Mkdir {
            dir: root,
            name: b"m".to_vec(),
            mode: 0o700,
            uid: u32::MAX,
            gid: u32::MAX,
        },
        Request::Symlink {
            dir: root,
            name: b"s".to_vec(),
            target: b"/".to_vec(),
            uid: u32::MAX,
            gid: u32::MAX,
        },
        Request::Rename {
            old_dir: root,
            old_name: b"m".to_vec(),
            new_dir: 2,
            new_name: b"n".to_vec(),
            flags: 0,
        },
        Request::Getdents {
            dir: root,
            cookie: 0,
        },
        Request::SetAttr {
            node: 3,
            mask: 0x3f,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 10,
            atime: Timespec::default(),
            mtime: Timespec::default(),
        },
        Request::SetXattr {
            node: root,
            name: b"user.x".to_vec(),
            value: b"y".to_vec(),
            flags: 0,
        },
        Request::ListXattr { node: root },
        Request::Close {
            handles: vec![5, 6, 7],
        },
        Request::Unlink {
            dir: root,
            name: b"s".to_vec(),
            flags: 0,
        },
        Request::Readlink { node: 4 },
        Request::StatFs { node: root },
    ];
    let encoded: Vec<Vec<u8>> = seeds.iter().map(|r| r.encode().unwrap()).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = vec![0u8; proto::MAX_MESSAGE];
    for i in 0..20000 {
        let mut m = encoded[rng.below(encoded.len() as u64) as usize].clone();
        match rng.below(6) {
            0 => {
                // Random bytes, random length.
                let n = rng.below(64) as usize;
                m = (0..n).map(|_| rng.next() as u8).collect();
            }
            1 => {
                // Flip a few bytes.
                for _ in 0..=rng.below(4) {
                    let j = rng.below(m.len() as u64) as usize;
                    m[j] ^= rng.next() as u8;
                }
            }
            2 => {
                // Truncate, keeping the length field honest or not.
                m.truncate(rng.below(m.len() as u64) as usize);
                if m.len() >= 4 && rng.below(2) == 0 {
                    let l = (m.len() as u32).to_le_bytes();
                    m[..4].copy_from_slice(&l);
                }
            }
            3 => {
                // Garbage appended.
                for _ in 0..rng.below(16) + 1 {
                    m.push(rng.next() as u8);
                }
                if rng.below(2) == 0 {
                    let l = (m.len() as u32).to_le_bytes();
                    m[..4].copy_from_slice(&l);
                }
            }
            4 => {
                // A random op on a valid body.
                let o = (rng.below(30) as u32).to_le_bytes();
                m[4..8].copy_from_slice(&o);
            }
            _ => {
                // A u32 somewhere set to a huge or boundary value.
                if m.len() >= 12 {
                    let j = 8 + rng.below((m.len() - 11) as u64) as usize;
                    let v = [u32::MAX, 0x8000_0000, 0, 256, 255, 4096][rng.below(6) as usize];
                    m[j..j + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        if m.is_empty() {
            // An empty record reads as the end of the connection.
            continue;
        }
        wire::send(sock.as_fd(), &m, &[]).unwrap_or_else(|e| panic!("message {i}: {e}"));
        let got = wire::recv(sock.as_fd(), &mut buf)
            .unwrap()
            .unwrap_or_else(|| panic!("server closed after message {i}: {m:?}"));
        proto::split_header(&buf[..got.len]).expect("bad reply record");
        // Donated fds are simply dropped here.
    }
    // Still serving a valid request correctly.
    let mut rec = Vec::new();
    let (o, body) = raw(
        &sock,
        &Request::Walk {
            dir: root,
            names: vec![b"a".to_vec()],
        }
        .encode()
        .unwrap(),
        &[],
    )
    .unwrap();
    rec.extend_from_slice(&((body.len() + 8) as u32).to_le_bytes());
    rec.extend_from_slice(&o.to_le_bytes());
    rec.extend_from_slice(&body);
    match Reply::decode(&rec, op::WALK) {
        Ok(Reply::Walk { status: 0, nodes }) => assert!(nodes[0].attr.is_dir()),
        // The fuzzing may have renamed or removed "a" or closed the root.
        Ok(Reply::Walk { .. }) | Ok(Reply::Error(_)) => {}
        r => panic!("{r:?}"),
    }
    drop(sock);
    th.join().unwrap().unwrap();
}

#[test]
fn a_dead_gofer_is_eio() {
    let (a, b) = wire::socketpair().unwrap();
    let fake = std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        wire::recv(b.as_fd(), &mut buf).unwrap();
        let r = Reply::Version {
            version: proto::VERSION,
            mounts: vec![],
        }
        .encode()
        .unwrap();
        wire::send(b.as_fd(), &r, &[]).unwrap();
        // Answer the next request with garbage, then die.
        wire::recv(b.as_fd(), &mut buf).unwrap();
        wire::send(b.as_fd(), &record(op::STAT, &[1, 2, 3]), &[]).unwrap();
    });
    let c = Client::connect(a).unwrap();
    assert_eq!(errno(c.stat(1)), libc::EIO);
    fake.join().unwrap();
    assert_eq!(errno(c.stat(1)), libc::EIO);
    assert_eq!(errno(c.walk(1, &[b"x"])), libc::EIO);
    // A client that lost its gofer.
    let (a, b) = wire::socketpair().unwrap();
    let fake = std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        wire::recv(b.as_fd(), &mut buf).unwrap();
        let r = Reply::Version {
            version: proto::VERSION,
            mounts: vec![],
        }
        .encode()
        .unwrap();
        wire::send(b.as_fd(), &r, &[]).unwrap();
    });
    let c = Client::connect(a).unwrap();
    fake.join().unwrap();
    assert_eq!(errno(c.readlink(1)), libc::EIO);
}

#[test]
fn client_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Client>();
    let t = TempDir::new("threads");
    std::fs::write(t.path().join("f"), b"x").unwrap();
    let (c, _th) = start(rw_root(t.path()));
    let c = std::sync::Arc::new(c);
    let root = c.mounts()[0].root;
    let ts: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let w = c.walk(root, &[b"f"]).unwrap();
                    assert_eq!(w.status, 0);
                    c.close(&[w.nodes[0].handle]).unwrap();
                }
            })
        })
        .collect();
    for t in ts {
        t.join().unwrap();
    }
}
