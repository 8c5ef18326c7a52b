//! The file-system conformance cases on an overlay: natively on Linux's
//! overlayfs, in the sandbox on the sentry's, each mounted on /tmp with a
//! fresh empty host directory as its lower layer (in the sandbox a
//! read-only `-v` volume, so the lower layer is the gofer's, as under the
//! root) and a tmpfs directory as its upper layer. Output and exit status
//! must be the same.

use std::process::{Command, Stdio};
use std::time::Duration;

use tests::{case_binary, cases, diff, run_command, runsc, ScratchDir};

/// Mounts the overlay on /tmp (layers made under the /tmp it hides), then
/// execs the case.
const MOUNT: &str = "mkdir /tmp/.u /tmp/.w && mount -t overlay \
                     -o lowerdir=\"$LOWER\",upperdir=/tmp/.u,workdir=/tmp/.w none /tmp && \
                     exec \"$0\" \"$@\"";

fn run_case(name: &str) {
    let (bin, _) = case_binary(name);
    let bin = bin.to_str().unwrap();
    let native = {
        let lower = ScratchDir::new(&format!("{name}-ovl-native"));
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "/bin/busybox", "sh", "-c"])
            .arg(format!(
                "mount --make-rprivate / && mount -t tmpfs none /tmp && {MOUNT}"
            ))
            .arg(bin)
            .env("LOWER", &lower.0)
            .stdin(Stdio::null());
        run_command(cmd, Duration::from_secs(120)).0
    };
    let sandbox = {
        let lower = ScratchDir::new(&format!("{name}-ovl-sandbox"));
        let volume = format!("{}:/lower:ro", lower.0.display());
        let mut cmd = Command::new(runsc());
        cmd.args(["do", "-v", &volume, "/bin/busybox", "sh", "-c", MOUNT])
            .arg(bin)
            .env("LOWER", "/lower")
            .stdin(Stdio::null());
        run_command(cmd, Duration::from_secs(120)).0
    };
    assert!(
        !native.stdout.is_empty(),
        "{name} printed nothing natively: {}",
        native.stderr
    );
    assert!(
        native.stdout == sandbox.stdout && native.code == sandbox.code,
        "{name} on an overlay: native and sandbox differ\n{}exit: native {} sandbox {}\nsandbox stderr:\n{}",
        diff(&native.stdout, &sandbox.stdout),
        native.code,
        sandbox.code,
        sandbox.stderr
    );
}

// Left out: vfs_preadv (Linux's overlayfs writes through a real file opened with O_APPEND, so
// `pwritev2(..., -1, RWF_NOAPPEND)` on an O_APPEND description still
// appends there; the sentry's overlay keeps the VFS's rule, as tmpfs and
// Linux's other file systems do).
cases! {
    vfs_attr
    vfs_basic
    vfs_close_range
    vfs_fallocate
    vfs_fcntl_locks
    vfs_fcntl_misc
    vfs_flock
    vfs_inotify
    vfs_memfd
    vfs_mmap
    vfs_mmap_seals
    vfs_mount
    vfs_open_flags
    vfs_paths
    vfs_pipe
    vfs_rename
    vfs_sendfile
    vfs_splice_pipes
    vfs_truncate
    vfs_utimes
    vfs_xattr
}

// Unix sockets bound in the overlay: the socket node is made in the upper
// layer, and connect finds the socket by that node.
cases! {
    unix_listen
}
