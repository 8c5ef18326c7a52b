//! The sandbox's file systems: tmpfs, devfs, procfs, sysfs, overlay, and
//! pipes.

pub mod devfs;
pub mod epoll;
pub mod eventfd;
pub mod gofer;
pub mod overlay;
pub mod pipe;
pub mod procfs;
pub mod signalfd;
pub mod synthetic;
pub mod sysfs;
pub mod timerfd;
pub mod tmpfs;
