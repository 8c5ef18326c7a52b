//! The sandbox's file systems: tmpfs, devfs, devpts, procfs, sysfs, overlay,
//! pipes and sockets.

pub mod devfs;
pub mod devpts;
pub mod epoll;
pub mod eventfd;
pub mod gofer;
pub mod mqueue;
pub mod overlay;
pub mod pipe;
pub mod procfs;
pub mod signalfd;
pub mod socket;
pub mod synthetic;
pub mod sysfs;
pub mod timerfd;
pub mod tmpfs;
