//! Files backed by a host fd the sandbox was given (its standard streams).
//!
//! The sentry does the host I/O on its own fd; the guest never names a
//! host file. Offsets are the host fd's, so `runsc do prog < file` sees the
//! file as Linux would.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;

use super::{FileDescription, FileImpl};
use crate::kernel::task::Task;
use crate::mm::io::as_bytes;

pub struct HostFile {
    fd: OwnedFd,
    name: String,
}

impl HostFile {
    pub fn new(fd: OwnedFd, name: String) -> HostFile {
        HostFile { fd, name }
    }

    fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    fn poll_host(&self, events: i16, timeout_ms: i32) -> i16 {
        let mut pfd = libc::pollfd {
            fd: self.raw(),
            events,
            revents: 0,
        };
        loop {
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
            if r >= 0 {
                return pfd.revents;
            }
            if Errno::last() != Errno::EINTR {
                return libc::POLLERR;
            }
        }
    }

    /// For a non-blocking description on a host fd that may be blocking:
    /// EAGAIN unless the host fd is ready.
    fn check_ready(&self, file: &FileDescription, ev: i16) -> Result<(), Errno> {
        if file.nonblocking() && self.poll_host(ev, 0) == 0 {
            return Err(Errno::EAGAIN);
        }
        Ok(())
    }
}

fn retry<T: PartialOrd + Default>(mut f: impl FnMut() -> T) -> Result<T, Errno> {
    loop {
        let r = f();
        if r >= T::default() {
            return Ok(r);
        }
        let e = Errno::last();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

impl FileImpl for HostFile {
    fn read(
        &self,
        file: &FileDescription,
        dst: &mut [u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        self.check_ready(file, libc::POLLIN)?;
        let r = retry(|| match offset {
            // SAFETY: dst is a valid writable buffer of dst.len() bytes.
            None => unsafe { libc::read(self.raw(), dst.as_mut_ptr().cast(), dst.len()) },
            // SAFETY: as above.
            Some(o) => unsafe {
                libc::pread(self.raw(), dst.as_mut_ptr().cast(), dst.len(), o as i64)
            },
        })?;
        Ok(r as usize)
    }

    fn write(
        &self,
        file: &FileDescription,
        src: &[u8],
        offset: Option<u64>,
    ) -> Result<usize, Errno> {
        self.check_ready(file, libc::POLLOUT)?;
        let r = retry(|| match offset {
            // SAFETY: src is a valid buffer of src.len() bytes.
            None => unsafe { libc::write(self.raw(), src.as_ptr().cast(), src.len()) },
            // SAFETY: as above.
            Some(o) => unsafe {
                libc::pwrite(self.raw(), src.as_ptr().cast(), src.len(), o as i64)
            },
        });
        match r {
            // The guest gets EPIPE; SIGPIPE delivery comes with signals.
            Err(e) => Err(e),
            Ok(n) => Ok(n as usize),
        }
    }

    fn seek(&self, _file: &FileDescription, offset: i64, whence: i32) -> Result<u64, Errno> {
        // SAFETY: lseek on our own fd.
        let r = unsafe { libc::lseek(self.raw(), offset, whence) };
        if r < 0 {
            return Err(Errno::last());
        }
        Ok(r as u64)
    }

    fn stat(&self, _file: &FileDescription) -> Result<libc::stat, Errno> {
        // SAFETY: all-zero is a valid stat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes one stat to &mut st.
        if unsafe { libc::fstat(self.raw(), &mut st) } != 0 {
            return Err(Errno::last());
        }
        Ok(st)
    }

    fn ioctl(
        &self,
        _file: &FileDescription,
        t: &mut Task,
        request: u32,
        arg: u64,
    ) -> Result<u64, Errno> {
        match request as u64 {
            libc::TCGETS => {
                // SAFETY: all-zero is a valid termios.
                let mut tio: libc::termios = unsafe { std::mem::zeroed() };
                // SAFETY: TCGETS writes one termios to &mut tio.
                if unsafe { libc::ioctl(self.raw(), libc::TCGETS, &mut tio) } != 0 {
                    return Err(Errno::last());
                }
                t.mm.copy_out(arg, as_bytes(&tio))?;
                Ok(0)
            }
            libc::TIOCGWINSZ => {
                // SAFETY: all-zero is a valid winsize.
                let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
                // SAFETY: TIOCGWINSZ writes one winsize to &mut ws.
                if unsafe { libc::ioctl(self.raw(), libc::TIOCGWINSZ, &mut ws) } != 0 {
                    return Err(Errno::last());
                }
                t.mm.copy_out(arg, as_bytes(&ws))?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }

    fn readiness(&self, _file: &FileDescription, events: i16) -> i16 {
        self.poll_host(events, 0)
    }

    fn wait_ready(&self, _file: &FileDescription, events: i16, timeout_ms: i32) -> i16 {
        self.poll_host(events, timeout_ms)
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}
