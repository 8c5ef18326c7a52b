//! The sandbox's file systems: tmpfs, devfs, procfs, sysfs, overlay, and
//! pipes.

pub mod devfs;
pub mod gofer;
pub mod mqueue;
pub mod overlay;
pub mod pipe;
pub mod procfs;
pub mod synthetic;
pub mod sysfs;
pub mod tmpfs;
