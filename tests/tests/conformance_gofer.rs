//! The file-system conformance cases on the gofer's file system: natively
//! with a fresh host directory bind-mounted on /tmp, in the sandbox with
//! another fresh host directory (on the same host file system) as a
//! `-v DIR:/tmp` volume, so both sides see the same host file system
//! through /tmp. Output and exit status must be the same.

use tests::{build_c, compare_gofer_tmp, workspace};

fn run_case(name: &str) {
    let dir = workspace().join("tests/syscalls");
    let src = dir.join(format!("{name}.c"));
    let bin = build_c(&src, &[]);
    let stdin = dir.join(format!("{name}.stdin"));
    let stdin = stdin.exists().then_some(stdin);
    let r = compare_gofer_tmp(&bin, &[], stdin.as_deref());
    assert!(
        !r.stdout.is_empty(),
        "{name} printed nothing: a case that checks nothing cannot fail"
    );
}

macro_rules! cases {
    ($($name:ident)*) => {
        $(
            #[test]
            fn $name() {
                run_case(stringify!($name));
            }
        )*
    };
}

cases! {
    vfs_attr
    vfs_basic
    vfs_close_range
    vfs_fallocate
    vfs_fcntl_locks
    vfs_fcntl_misc
    vfs_flock
    vfs_memfd
    vfs_mmap
    vfs_mmap_seals
    vfs_mount
    vfs_open_flags
    vfs_paths
    vfs_pipe
    vfs_preadv
    vfs_rename
    vfs_sendfile
    vfs_splice_pipes
    vfs_truncate
    vfs_utimes
    vfs_xattr
}
