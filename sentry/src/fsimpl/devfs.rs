//! devfs (`/dev`): a tmpfs populated with the sandbox's devices, and the
//! device registry that opening a device node consults.

use std::sync::Arc;

use crate::errno::Errno;

use crate::kernel::task::Task;
use crate::mm::MemoryFile;
use crate::vfs::inode::{major, makedev, minor, Filesystem, Inode, NewNode};
use crate::vfs::{FileDescription, FileImpl};

/// The devices of /dev: name, mode, major, minor.
const DEVICES: &[(&str, u32, u32, u32)] = &[
    ("null", 0o666, 1, 3),
    ("zero", 0o666, 1, 5),
    ("full", 0o666, 1, 7),
    ("random", 0o666, 1, 8),
    ("urandom", 0o666, 1, 9),
    ("tty", 0o666, 5, 0),
    ("ptmx", 0o666, 5, 2),
];

/// Builds /dev: device nodes, the fd symlinks, and `shm` and `pts`
/// directories (the caller mounts a tmpfs on `shm` and a devpts on `pts`).
pub fn new_devfs(t: &Task, mf: &Arc<MemoryFile>) -> Result<(Arc<Filesystem>, Arc<Inode>), Errno> {
    let (fs, root) = super::tmpfs::new_tmpfs(&t.kernel.vfs, mf, "none", 0o755, 0, 0);
    let ops = &root.ops;
    for (name, mode, ma, mi) in DEVICES {
        ops.create(
            t,
            &root,
            name.as_bytes(),
            NewNode::Node {
                mode: libc::S_IFCHR | mode,
                rdev: makedev(*ma, *mi),
            },
        )?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ops.create(
            t,
            &root,
            name.as_bytes(),
            NewNode::Symlink {
                target: target.as_bytes().to_vec(),
            },
        )?;
    }
    for name in ["shm", "pts"] {
        ops.create(
            t,
            &root,
            name.as_bytes(),
            NewNode::Directory { mode: 0o755 },
        )?;
    }
    // Device nodes belong to root whatever the caller's ids.
    Ok((fs, root))
}

/// Opens the device `inode` refers to.
pub fn open_device(t: &Task, inode: &Arc<Inode>, flags: u32) -> Result<Box<dyn FileImpl>, Errno> {
    let rdev = inode.meta().rdev;
    let kind = match (major(rdev), minor(rdev)) {
        (1, 3) => Kind::Null,
        (1, 5) => Kind::Zero,
        (1, 7) => Kind::Full,
        (1, 8) => Kind::Random,
        (1, 9) => Kind::URandom,
        // /dev/tty: the caller's controlling terminal.
        (5, 0) => return super::devpts::open_controlling(t, flags),
        // /dev/ptmx: a new pair in the devpts beside it.
        (5, 2) => return super::devpts::open_ptmx_beside(t, inode),
        _ => return Err(Errno::ENXIO),
    };
    Ok(Box::new(Device {
        kind,
        inode: inode.clone(),
    }))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Zero,
    Full,
    Random,
    URandom,
}

struct Device {
    kind: Kind,
    inode: Arc<Inode>,
}

impl FileImpl for Device {
    fn read(
        &self,
        _file: &FileDescription,
        dst: &mut [u8],
        _offset: Option<u64>,
    ) -> Result<usize, Errno> {
        match self.kind {
            Kind::Null => Ok(0),
            Kind::Zero | Kind::Full => {
                dst.fill(0);
                Ok(dst.len())
            }
            Kind::Random | Kind::URandom => {
                crate::hostcall::fill_random(dst)?;
                let done = dst.len();
                Ok(done)
            }
        }
    }

    fn read_short(
        &self,
        file: &FileDescription,
        dst: &mut [u8],
        _want: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        if self.kind == Kind::Null {
            return Ok(0);
        }
        if dst.is_empty() {
            return Err(Errno::EFAULT);
        }
        self.read(file, dst, offset)
    }

    fn write(
        &self,
        _file: &FileDescription,
        src: &[u8],
        _offset: Option<u64>,
    ) -> Result<usize, Errno> {
        match self.kind {
            Kind::Full => Err(Errno::ENOSPC),
            _ => Ok(src.len()),
        }
    }

    fn write_short(
        &self,
        file: &FileDescription,
        src: &[u8],
        want: usize,
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        // /dev/null and /dev/zero never look at the data.
        match self.kind {
            Kind::Null | Kind::Zero => Ok(want),
            _ => {
                if src.is_empty() {
                    return Err(Errno::EFAULT);
                }
                self.write(file, src, offset)
            }
        }
    }

    fn seek(&self, _file: &FileDescription, _offset: i64, _whence: i32) -> Result<u64, Errno> {
        // Character devices without positions accept any seek and stay at 0.
        Ok(0)
    }

    fn inode(&self) -> Option<Arc<Inode>> {
        Some(self.inode.clone())
    }

    /// /dev/random can be polled (epoll takes it): readable, as Linux's
    /// once its generator is ready. The other devices cannot (epoll
    /// refuses them) and poll reports them ready for both.
    fn readiness(&self, _file: &FileDescription, events: i16) -> i16 {
        match self.kind {
            Kind::Random => events & (libc::POLLIN | libc::POLLRDNORM),
            _ => events & (libc::POLLIN | libc::POLLOUT | libc::POLLRDNORM | libc::POLLWRNORM),
        }
    }

    fn waitq(&self, _file: &FileDescription) -> Option<Arc<crate::kernel::waiter::WaitQueue>> {
        // Never notified: its readiness never changes.
        static RANDOM: std::sync::OnceLock<Arc<crate::kernel::waiter::WaitQueue>> =
            std::sync::OnceLock::new();
        (self.kind == Kind::Random).then(|| RANDOM.get_or_init(Default::default).clone())
    }
}
