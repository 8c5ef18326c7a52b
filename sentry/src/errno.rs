//! The sentry's errno type.
//!
//! Syscall handlers return `Result<_, Errno>`. Besides the errors a guest
//! sees, it expresses the kernel-internal restart requests (`ERESTARTSYS`
//! and friends), which never reach the guest: the run loop turns them into
//! `EINTR` or a restart of the syscall by signal(7)'s rules.

use std::fmt;

/// An errno value (positive), or one of the internal restart codes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(i32);

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(pub const $name: Errno = Errno(libc::$name);)*
        }
        fn name_of(v: i32) -> Option<&'static str> {
            match v {
                $(libc::$name => Some(stringify!($name)),)*
                _ => None,
            }
        }
    };
}

errnos!(
    EPERM,
    ENOENT,
    ESRCH,
    EINTR,
    EIO,
    ENXIO,
    E2BIG,
    ENOEXEC,
    EBADF,
    ECHILD,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    ENOTBLK,
    EBUSY,
    EEXIST,
    EXDEV,
    ENODEV,
    ENOTDIR,
    EISDIR,
    EINVAL,
    ENFILE,
    EMFILE,
    ENOTTY,
    ETXTBSY,
    EFBIG,
    ENOSPC,
    ESPIPE,
    EROFS,
    EMLINK,
    EPIPE,
    EDOM,
    ERANGE,
    EDEADLK,
    ENAMETOOLONG,
    ENOLCK,
    ENOSYS,
    ENOTEMPTY,
    ELOOP,
    ENOMSG,
    EIDRM,
    ENODATA,
    ETIME,
    EOVERFLOW,
    EBADFD,
    EILSEQ,
    ENOTSOCK,
    EDESTADDRREQ,
    EMSGSIZE,
    EPROTOTYPE,
    ENOPROTOOPT,
    EPROTONOSUPPORT,
    ESOCKTNOSUPPORT,
    ETOOMANYREFS,
    EOPNOTSUPP,
    EAFNOSUPPORT,
    EADDRINUSE,
    EADDRNOTAVAIL,
    ENETDOWN,
    ENETUNREACH,
    ECONNABORTED,
    ECONNRESET,
    ENOBUFS,
    EISCONN,
    ENOTCONN,
    ETIMEDOUT,
    ECONNREFUSED,
    EHOSTUNREACH,
    EHOSTDOWN,
    EALREADY,
    EINPROGRESS,
    ESTALE,
    EDQUOT,
    ECANCELED,
    EOWNERDEAD,
    ENOTRECOVERABLE,
    ELIBBAD,
);

impl Errno {
    /// Restart the syscall if the signal that interrupted it has no handler
    /// or its handler has `SA_RESTART`; else `EINTR`.
    pub const ERESTARTSYS: Errno = Errno(512);
    /// Always restart the syscall after the signal (handler or not).
    pub const ERESTARTNOINTR: Errno = Errno(513);
    /// Restart if no handler runs; `EINTR` if one does.
    pub const ERESTARTNOHAND: Errno = Errno(514);
    /// Restart through `restart_syscall` if no handler runs (sleeps that
    /// must continue with the time that was left); `EINTR` if one does.
    pub const ERESTART_RESTARTBLOCK: Errno = Errno(516);

    /// The value as the guest sees it in `-rax`.
    pub const fn raw(self) -> i32 {
        self.0
    }

    pub const fn from_raw(v: i32) -> Errno {
        Errno(v)
    }

    /// The calling host thread's errno.
    pub fn last() -> Errno {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }

    /// Whether this is one of the internal restart requests.
    pub const fn is_restart(self) -> bool {
        matches!(self.0, 512 | 513 | 514 | 516)
    }

    pub fn name(self) -> &'static str {
        match self.0 {
            512 => "ERESTARTSYS",
            513 => "ERESTARTNOINTR",
            514 => "ERESTARTNOHAND",
            516 => "ERESTART_RESTARTBLOCK",
            v => name_of(v).unwrap_or("E?"),
        }
    }

    pub fn desc(self) -> String {
        if self.is_restart() {
            return "interrupted, to be restarted".to_string();
        }
        std::io::Error::from_raw_os_error(self.0).to_string()
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match name_of(self.0) {
            Some(n) => f.write_str(n),
            None if self.is_restart() => f.write_str(self.name()),
            None => write!(f, "E{}", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name(), self.desc())
    }
}

impl std::error::Error for Errno {}

impl From<nix::errno::Errno> for Errno {
    fn from(e: nix::errno::Errno) -> Errno {
        Errno(e as i32)
    }
}

impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> std::io::Error {
        std::io::Error::from_raw_os_error(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_restarts() {
        assert_eq!(format!("{:?}", Errno::EINVAL), "EINVAL");
        assert_eq!(Errno::EAGAIN.raw(), libc::EAGAIN);
        assert!(Errno::ERESTARTSYS.is_restart());
        assert!(!Errno::EINTR.is_restart());
        assert_eq!(Errno::ERESTART_RESTARTBLOCK.name(), "ERESTART_RESTARTBLOCK");
    }
}
