//! sysfs (`/sys`), minimal and honest: the CPUs the sandbox shows
//! (`devices/system/cpu`), which is what libc's `get_nprocs` and
//! `sysconf(_SC_NPROCESSORS_*)` read, and an empty `fs/cgroup`.

use std::sync::Arc;

use super::synthetic::{entry, new_root, Entry, Node};
use crate::kernel::task::Task;
use crate::vfs::inode::{Filesystem, Inode};

/// statfs f_type of sysfs.
pub const SYSFS_MAGIC: i64 = 0x6265_6572;

/// sysfs attributes are 0444 and show a size of one page.
fn attr(s: String) -> Node {
    Node::text(0o444, s).size(4096).seek_end()
}

fn dir(entries: Vec<Entry>) -> Node {
    Node::fixed_dir(0o755, entries)
}

/// A CPU list as Linux prints one: "0", "0-3".
pub fn cpu_list(cpus: usize) -> String {
    match cpus {
        0 | 1 => "0".to_string(),
        n => format!("0-{}", n - 1),
    }
}

/// A new sysfs instance for the sandbox of `t`: its file system and root.
pub fn new_sysfs(t: &Task) -> (Arc<Filesystem>, Arc<Inode>) {
    let fs = Filesystem::new(&t.kernel.vfs, "sysfs", "sysfs", SYSFS_MAGIC, "");
    let cpus = t.kernel.cpus.max(1);
    let list = format!("{}\n", cpu_list(cpus));
    let mut cpu = vec![
        entry("online", attr(list.clone())),
        entry("possible", attr(list.clone())),
        entry("present", attr(list)),
    ];
    for i in 0..cpus {
        cpu.push(entry(&format!("cpu{i}"), dir(Vec::new())));
    }
    let mut root = dir(vec![
        entry(
            "devices",
            dir(vec![entry("system", dir(vec![entry("cpu", dir(cpu))]))]),
        ),
        entry("fs", dir(vec![entry("cgroup", dir(Vec::new()))])),
        // What allocators and runtimes read (jemalloc, Go, the JVM): the
        // sandbox's memory is never backed by transparent huge pages.
        entry(
            "kernel",
            dir(vec![entry(
                "mm",
                dir(vec![entry(
                    "transparent_hugepage",
                    dir(vec![
                        entry("enabled", attr("always madvise [never]\n".into())),
                        entry(
                            "defrag",
                            attr("always defer defer+madvise madvise [never]\n".into()),
                        ),
                    ]),
                )]),
            )]),
        ),
    ]);
    // The root of sysfs is `dr-xr-xr-x`.
    root.perm = 0o555;
    let root = new_root(&fs, root);
    (fs, root)
}
