//! The gofer: the only process of a sandbox that opens host files, and the
//! protocol the sentry speaks to it.
//!
//! Not built yet. Until it is, a sandbox has no host files at all: its tree
//! is the sentry's own (tmpfs, devfs, procfs, sysfs), and `runsc do` hands
//! the sentry the one program it runs as an open fd.
