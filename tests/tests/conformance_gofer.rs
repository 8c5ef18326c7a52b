//! The file-system conformance cases on the gofer's file system: natively
//! with a fresh host directory bind-mounted on /tmp, in the sandbox with
//! another fresh host directory (on the same host file system) as a
//! `-v DIR:/tmp` volume, so both sides see the same host file system
//! through /tmp. Output and exit status must be the same.

use tests::{case_binary, cases, compare_gofer_tmp_lines};

fn run_case(name: &str) {
    run_case_lines(name, &|_| true);
}

/// Runs a case comparing only the lines `keep` keeps.
fn run_case_lines(name: &str, keep: &dyn Fn(&str) -> bool) {
    let (bin, stdin) = case_binary(name);
    let r = compare_gofer_tmp_lines(&bin, &[], stdin.as_deref(), keep);
    assert!(
        !r.stdout.is_empty(),
        "{name} printed nothing: a case that checks nothing cannot fail"
    );
}

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
    vfs_paths
    vfs_pipe
    vfs_preadv
    vfs_rename
    vfs_sendfile
    vfs_splice_pipes
    vfs_truncate
    vfs_utimes
}

// Unix sockets bound on a host directory: the socket node is made on the
// host through the gofer (a socket-type mknod), and the socket stays in
// the sandbox (connect finds it by that node).
cases! {
    unix_listen
}

/// O_TMPFILE included: the gofer makes the unnamed host file itself
/// (`CreateTmpfile`) and names it on `linkat`.
#[test]
fn vfs_open_flags() {
    run_case("vfs_open_flags");
}

/// The gofer serves `user.*` attributes only: `trusted.*` and
/// `security.*` attributes of host files are the host's own security
/// metadata (overlayfs's `trusted.overlay.*`, file capabilities, LSM
/// labels), which a sandbox must not write, and the gofer has no
/// CAP_SYS_ADMIN to write them. So the lines of those namespaces are left
/// out, and so are listings and list sizes, which count them (and whose
/// order is the host file system's, ext4's depending on what else the
/// file holds). Everything `user.*` is compared.
#[test]
fn vfs_xattr() {
    run_case_lines("vfs_xattr", &|l| {
        !(l.contains("trusted.")
            || l.contains("security.")
            || l.starts_with("list ")
            || (l.contains("listxattr(") && !l.contains("= -1")))
    });
}
