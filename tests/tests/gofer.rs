//! The real `runsc gofer` process: served over its socket by
//! `gofer::Client`, confined (empty root, seccomp, no new privileges,
//! few capabilities), and still alive after hostile messages.

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use gofer::proto::{self, op, Request};
use gofer::spawn::{start_gofer, BindMount};
use gofer::{wire, Client, SetAttr, NO_OWNER};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("runsc-gofer-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the gofer if the test outlives `limit` (no hang of the suite).
fn watchdog(child: &Child, limit: Duration) {
    let pid = child.id() as i32;
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        // SAFETY: kills the child this test spawned, if still there.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
}

/// Waits for the child to exit (at most `limit`); its status.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn status_field(pid: u32, key: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

fn errno<T: std::fmt::Debug>(r: Result<T, gofer::Errno>) -> i32 {
    r.expect_err("expected an error").0
}

fn names<'a>(v: &'a [&'a str]) -> Vec<&'a [u8]> {
    v.iter().map(|s| s.as_bytes()).collect()
}

fn read_all(fd: std::os::fd::OwnedFd) -> Vec<u8> {
    let mut v = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut v).unwrap();
    v
}

#[test]
fn gofer_serves_confined() {
    let root = TempDir::new("root");
    let bind = TempDir::new("bind");
    std::fs::create_dir_all(root.0.join("etc")).unwrap();
    std::fs::write(root.0.join("etc/hostname"), b"sandbox\n").unwrap();
    std::fs::write(bind.0.join("data"), b"bound").unwrap();
    let (mut child, sock) = start_gofer(
        &tests::runsc(),
        &root.0,
        false,
        &[BindMount {
            host: bind.0.clone(),
            guest: "/mnt/data".into(),
            read_only: false,
        }],
    )
    .unwrap();
    watchdog(&child, Duration::from_secs(60));
    let c = Client::connect(sock).unwrap();
    let pid = child.id();

    // Confined: nothing of the host is nameable, seccomp filter mode,
    // no new privileges, only the file capabilities.
    let listing: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/root"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(listing.is_empty(), "gofer's root lists {listing:?}");
    use std::os::unix::fs::MetadataExt;
    let theirs = std::fs::metadata(format!("/proc/{pid}/root/")).unwrap();
    let ours = std::fs::metadata("/").unwrap();
    assert_ne!((theirs.dev(), theirs.ino()), (ours.dev(), ours.ino()));
    assert_eq!(status_field(pid, "Seccomp:"), "2");
    assert_eq!(status_field(pid, "NoNewPrivs:"), "1");
    let cap_eff = u64::from_str_radix(&status_field(pid, "CapEff:"), 16).unwrap();
    let cap_bnd = u64::from_str_radix(&status_field(pid, "CapBnd:"), 16).unwrap();
    assert_eq!(cap_eff & !0x1f, 0, "CapEff {cap_eff:x}");
    assert_eq!(cap_bnd & !0x1f, 0, "CapBnd {cap_bnd:x}");
    let ns = |p: &str| std::fs::read_link(p).unwrap();
    assert_ne!(ns(&format!("/proc/{pid}/ns/mnt")), ns("/proc/self/ns/mnt"));

    // Serving: the read-only root and the writable bind mount.
    let mounts = c.mounts().to_vec();
    assert_eq!(mounts.len(), 2);
    assert_eq!(
        (mounts[0].guest_path.as_slice(), mounts[0].read_only),
        (&b"/"[..], true)
    );
    assert_eq!(mounts[1].guest_path, b"/mnt/data");
    let r = mounts[0].root;
    let w = c.walk(r, &names(&["etc", "hostname"])).unwrap();
    assert_eq!(w.status, 0);
    let fd = c.open(w.nodes[1].handle, libc::O_RDONLY).unwrap();
    assert_eq!(read_all(fd), b"sandbox\n");
    assert_eq!(
        errno(c.mkdir(r, b"x", 0o700, NO_OWNER, NO_OWNER)),
        libc::EROFS
    );

    // Every operation through the confined process (a syscall missing
    // from its allow-list would kill it, and show here as EIO).
    let b = mounts[1].root;
    let (f, fd) = c
        .create(b, b"new", 0o644, libc::O_RDWR, NO_OWNER, NO_OWNER)
        .unwrap();
    std::io::Write::write_all(&mut std::fs::File::from(fd), b"written").unwrap();
    let d = c.mkdir(b, b"dir", 0o755, 1000, 1000).unwrap();
    c.mknod(d.handle, b"fifo", libc::S_IFIFO | 0o600, NO_OWNER, NO_OWNER)
        .unwrap();
    let s = c
        .symlink(d.handle, b"ln", b"/etc", NO_OWNER, NO_OWNER)
        .unwrap();
    assert_eq!(c.readlink(s.handle).unwrap(), b"/etc");
    c.link(d.handle, b"hard", f.handle).unwrap();
    c.rename(b, b"new", d.handle, b"moved", libc::RENAME_NOREPLACE)
        .unwrap();
    assert_eq!(
        read_all(c.open(f.handle, libc::O_RDONLY).unwrap()),
        b"written"
    );
    let mut ents: Vec<_> = c
        .read_dir(d.handle)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    ents.sort();
    assert_eq!(
        ents,
        vec![
            b"fifo".to_vec(),
            b"hard".to_vec(),
            b"ln".to_vec(),
            b"moved".to_vec()
        ]
    );
    c.set_attr(
        f.handle,
        &SetAttr {
            mode: Some(0o600),
            uid: Some(7),
            size: Some(3),
            mtime: Some(gofer::Timespec { sec: 5, nsec: 0 }),
            ..Default::default()
        },
    )
    .unwrap();
    let a = c.stat(f.handle).unwrap();
    assert_eq!(
        (a.mode & 0o777, a.uid, a.size, a.mtime.sec),
        (0o600, 7, 3, 5)
    );
    c.set_xattr(f.handle, b"user.k", b"v", 0).unwrap();
    assert_eq!(c.get_xattr(f.handle, b"user.k").unwrap(), b"v");
    assert_eq!(c.list_xattr(f.handle).unwrap(), vec![b"user.k".to_vec()]);
    c.remove_xattr(f.handle, b"user.k").unwrap();
    c.statfs(b).unwrap();
    c.fsync(f.handle).unwrap();
    let (sn, listener) = c
        .bind_socket(
            d.handle,
            b"sock",
            libc::SOCK_STREAM,
            0o600,
            NO_OWNER,
            NO_OWNER,
        )
        .unwrap();
    let conn = c.connect_socket(sn.handle, libc::SOCK_STREAM).unwrap();
    drop((conn, listener));
    for n in ["fifo", "ln", "hard", "moved", "sock"] {
        c.unlink(d.handle, n.as_bytes(), 0).unwrap();
    }
    c.unlink(b, b"dir", libc::AT_REMOVEDIR).unwrap();
    assert!(std::fs::read_dir(&bind.0).unwrap().count() == 1);
    c.close(&[f.handle, d.handle, s.handle, sn.handle]).unwrap();
    assert_eq!(errno(c.stat(f.handle)), libc::EBADF);

    // Still alive; exits cleanly when the sentry's end closes.
    assert!(child.try_wait().unwrap().is_none());
    drop(c);
    let st = wait_exit(&mut child, Duration::from_secs(10)).expect("gofer did not exit");
    assert!(st.success(), "gofer exited with {st:?}");
}

fn raw(
    sock: &std::os::fd::OwnedFd,
    rec: &[u8],
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> (u32, Vec<u8>) {
    wire::send(sock.as_fd(), rec, fds).unwrap();
    let mut buf = vec![0u8; proto::MAX_MESSAGE];
    let got = wire::recv(sock.as_fd(), &mut buf)
        .unwrap()
        .expect("gofer closed");
    let (o, body) = proto::split_header(&buf[..got.len]).unwrap();
    (o, body.to_vec())
}

fn record(opc: u32, body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_le_bytes().to_vec();
    v.extend_from_slice(&opc.to_le_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn hostile_messages_do_not_kill_the_gofer() {
    let root = TempDir::new("hostile");
    std::fs::write(root.0.join("f"), b"f").unwrap();
    let (mut child, sock) = start_gofer(&tests::runsc(), Path::new(&root.0), true, &[]).unwrap();
    watchdog(&child, Duration::from_secs(60));
    let (o, _) = raw(
        &sock,
        &Request::Version {
            version: proto::VERSION,
        }
        .encode()
        .unwrap(),
        &[],
    );
    assert_eq!(o, op::VERSION);
    let err = |r: (u32, Vec<u8>)| {
        assert_eq!(r.0, proto::OP_ERROR);
        i32::from_le_bytes(r.1[..4].try_into().unwrap())
    };
    assert_eq!(err(raw(&sock, &[9, 9, 9], &[])), libc::EINVAL);
    assert_eq!(
        err(raw(&sock, &record(0xdead, &[1; 40]), &[])),
        libc::ENOSYS
    );
    let mut walk = 1u64.to_le_bytes().to_vec();
    walk.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(err(raw(&sock, &record(op::WALK, &walk), &[])), libc::EINVAL);
    assert_eq!(
        err(raw(&sock, &record(op::STAT, &77u64.to_le_bytes()), &[])),
        libc::EBADF
    );
    let devnull = std::fs::File::open("/dev/null").unwrap();
    assert_eq!(
        err(raw(
            &sock,
            &record(op::STAT, &77u64.to_le_bytes()),
            &[devnull.as_fd()]
        )),
        libc::EBADF
    );
    // Still answering, and still alive.
    let (o, _) = raw(&sock, &Request::Stat { node: 1 }.encode().unwrap(), &[]);
    assert_eq!(o, op::STAT);
    assert!(child.try_wait().unwrap().is_none());
    let _ = sock.as_raw_fd();
    drop(sock);
    let st = wait_exit(&mut child, Duration::from_secs(10)).expect("gofer did not exit");
    assert!(st.success(), "gofer exited with {st:?}");
}
