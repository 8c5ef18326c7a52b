//! The sandbox's file systems: tmpfs, devfs, procfs, sysfs, and pipes.

pub mod devfs;
pub mod gofer;
pub mod pipe;
pub mod procfs;
pub mod synthetic;
pub mod sysfs;
pub mod tmpfs;
