//! The gofer: the only process of a sandbox that opens host files, and the
//! protocol the sentry speaks to it.
//!
//! - [`proto`]: the messages and their encoding (both ends).
//! - [`Client`]: the sentry's end; one call a round trip.
//! - [`server`]: the gofer's end, serving the container root and its bind
//!   mounts through `O_PATH` fds, never by path.
//! - [`confine`]: how the `runsc gofer` process shuts itself in before it
//!   serves (namespaces, empty root, capabilities, seccomp).
//! - [`spawn::start_gofer`]: starts `runsc gofer` as a child with one end
//!   of a socketpair and returns the other, ready for [`Client::connect`].
//!
//! A typical sentry-side lookup:
//!
//! ```no_run
//! # fn f(sock: std::os::fd::OwnedFd) -> Result<(), gofer::Errno> {
//! let c = gofer::Client::connect(sock)?;
//! let root = c.mounts()[0].root;
//! let w = c.walk(root, &[b"etc", b"hostname"])?;
//! if w.status == 0 {
//!     let file = w.nodes.last().unwrap().handle;
//!     let fd = c.open(file, libc::O_RDONLY)?; // read with pread(2)
//!     # drop(fd);
//! }
//! c.close(&w.nodes.iter().map(|n| n.handle).collect::<Vec<_>>())?;
//! # Ok(()) }
//! ```

pub mod client;
pub mod confine;
pub mod proto;
pub mod server;
pub mod spawn;
mod sys;
pub mod wire;

pub use client::{Client, Errno, SetAttr, Walked, NO_OWNER};
pub use proto::{Attr, Dirent, Handle, MountInfo, NodeInfo, StatFs, Timespec};
pub use server::{serve, Export, Server};
