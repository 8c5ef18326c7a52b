//! The sentry's own host system calls and CPU queries, as safe functions.
//!
//! Together with `mm::memory_file`, `mm::io` and `vfs::host`, this is
//! where the sentry's `unsafe` lives; nothing here acts for the guest.

use crate::errno::Errno;

use crate::mm::io::Pod;

/// A value of plain data with every byte zero.
pub fn zeroed<T: Pod>() -> T {
    // SAFETY: T is Pod: every bit pattern, all zeroes included, is valid.
    unsafe { std::mem::zeroed() }
}

pub fn clock_gettime(clock: i32) -> Result<libc::timespec, Errno> {
    let mut ts: libc::timespec = zeroed();
    // SAFETY: writes one timespec to &mut ts.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(Errno::last());
    }
    Ok(ts)
}

pub fn clock_getres(clock: i32) -> Result<libc::timespec, Errno> {
    let mut ts: libc::timespec = zeroed();
    // SAFETY: writes one timespec to &mut ts.
    if unsafe { libc::clock_getres(clock, &mut ts) } != 0 {
        return Err(Errno::last());
    }
    Ok(ts)
}

/// Sleeps the calling sentry thread until `deadline` on `clock`.
pub fn sleep_until(clock: i32, deadline: &libc::timespec) {
    loop {
        // SAFETY: sleeps the calling thread; deadline is a valid timespec
        // and no remainder is asked for.
        let r = unsafe {
            libc::clock_nanosleep(clock, libc::TIMER_ABSTIME, deadline, std::ptr::null_mut())
        };
        if r != libc::EINTR {
            return;
        }
    }
}

/// Fills `buf` from the host's random number generator.
pub fn fill_random(buf: &mut [u8]) -> Result<(), Errno> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: writes at most rest.len() bytes into rest.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            return Err(Errno::last());
        }
        done += n as usize;
    }
    Ok(())
}

/// The host CPU the calling thread runs on.
pub fn current_cpu() -> i32 {
    // SAFETY: sched_getcpu has no preconditions.
    unsafe { libc::sched_getcpu() }
}

// SAFETY: integer fields and integer arrays only.
unsafe impl Pod for libc::user_fpregs_struct {}
crate::assert_no_padding!(
    libc::user_fpregs_struct {
        cwd,
        swd,
        ftw,
        fop,
        rip,
        rdp,
        mxcsr,
        mxcr_mask,
        st_space,
        xmm_space,
    } + 96
); // libc's private `padding: [u32; 24]`

/// The host's sysinfo (memory totals). Not `Pod`: glibc's struct has
/// implicit padding after `procs` and at its end.
pub fn sysinfo() -> libc::sysinfo {
    // SAFETY: all-zero is a valid sysinfo (integers only).
    let mut s: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: writes one struct sysinfo.
    unsafe { libc::sysinfo(&mut s) };
    s
}

/// Physical memory of the machine, in bytes (0 if unknown).
pub fn physical_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    pages.max(0) as u64 * platform::PAGE_SIZE
}

/// An entry of the sentry's own auxiliary vector.
pub fn getauxval(key: u64) -> u64 {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(key) }
}

/// `fstat` of a host fd the sentry owns.
pub fn fstat(fd: i32) -> Result<libc::stat, Errno> {
    let mut st: libc::stat = zeroed();
    // SAFETY: fstat writes one stat to &mut st.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(Errno::last());
    }
    Ok(st)
}

/// The status flags of a host fd the sentry owns.
pub fn fd_status_flags(fd: i32) -> Option<i32> {
    // SAFETY: F_GETFL only reads the fd's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    (flags >= 0).then_some(flags)
}

/// CPUID with a sub-leaf.
pub fn cpuid(leaf: u32, sub: u32) -> (u32, u32, u32, u32) {
    let r = std::arch::x86_64::__cpuid_count(leaf, sub);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter.
    unsafe { std::arch::x86_64::_rdtsc() }
}

/// The TSC, read once every earlier instruction has executed and before
/// any later one starts (`lfence; rdtsc; lfence`).
pub fn rdtsc_ordered() -> u64 {
    use std::arch::x86_64::{_mm_lfence, _rdtsc};
    // SAFETY: lfence (SSE2, baseline on x86-64) and rdtsc have no
    // preconditions and touch no memory.
    unsafe {
        _mm_lfence();
        let t = _rdtsc();
        _mm_lfence();
        t
    }
}

/// The TSC, read once every earlier store is visible to other CPUs
/// (`mfence; lfence; rdtsc; lfence`, as the SDM prescribes).
pub fn rdtsc_after_stores() -> u64 {
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    // SAFETY: mfence (SSE2, baseline on x86-64) has no preconditions.
    unsafe { std::arch::x86_64::_mm_mfence() };
    rdtsc_ordered()
}

// ----- Host terminals (the console bridge) -----

/// The settings of a host terminal: its `struct termios` (TCGETS).
pub fn host_tcgets(fd: i32) -> Result<[u8; 36], Errno> {
    let mut b = [0u8; 36];
    // SAFETY: TCGETS writes one 36-byte kernel termios to our buffer.
    if unsafe { libc::ioctl(fd, libc::TCGETS, b.as_mut_ptr()) } != 0 {
        return Err(Errno::last());
    }
    Ok(b)
}

/// Sets a host terminal's settings at once (TCSETS).
pub fn host_tcsets(fd: i32, t: &[u8; 36]) -> Result<(), Errno> {
    // SAFETY: TCSETS reads one 36-byte kernel termios from our buffer.
    if unsafe { libc::ioctl(fd, libc::TCSETS, t.as_ptr()) } != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// A host terminal's window size (TIOCGWINSZ): rows, columns, pixels.
pub fn host_winsize(fd: i32) -> Result<[u16; 4], Errno> {
    let mut w = [0u16; 4];
    // SAFETY: TIOCGWINSZ writes one 8-byte struct winsize to our array.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, w.as_mut_ptr()) } != 0 {
        return Err(Errno::last());
    }
    Ok(w)
}

/// Reads from a host fd the sentry owns (EINTR retried).
pub fn read_fd(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: reads at most buf.len() bytes into buf.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        if Errno::last() != Errno::EINTR {
            return Err(Errno::last());
        }
    }
}

/// Writes to a host fd the sentry owns (EINTR retried).
pub fn write_fd(fd: i32, buf: &[u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: writes at most buf.len() bytes from buf.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        if Errno::last() != Errno::EINTR {
            return Err(Errno::last());
        }
    }
}

/// One `mmsghdr` per iovec, each naming only it (no address, no control
/// data): what sendmmsg and recvmmsg take for a batch of frames.
fn mmsg_headers(iovs: &mut [libc::iovec]) -> Vec<libc::mmsghdr> {
    iovs.iter_mut()
        .map(|iov| {
            // SAFETY: an all-zero mmsghdr is valid (no name, no control
            // data); its one iovec is set below.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect()
}

/// Sends `frames` on a packet socket the sentry owns, as many as one
/// `sendmmsg` takes (EINTR retried): how many went.
pub fn send_frames(fd: i32, frames: &[Vec<u8>]) -> Result<usize, Errno> {
    let mut iovs: Vec<libc::iovec> = frames
        .iter()
        .map(|f| libc::iovec {
            iov_base: f.as_ptr() as *mut libc::c_void,
            iov_len: f.len(),
        })
        .collect();
    let mut msgs = mmsg_headers(&mut iovs);
    loop {
        // SAFETY: msgs holds frames.len() headers, each naming one iovec
        // over a frame that outlives the call; the kernel only reads them.
        let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), msgs.len() as u32, 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        if Errno::last() != Errno::EINTR {
            return Err(Errno::last());
        }
    }
}

/// Receives up to `bufs.len()` frames from a non-blocking packet socket
/// the sentry owns in one `recvmmsg` (EINTR retried): the length of each
/// frame received, in order (none: nothing was waiting).
pub fn recv_frames(fd: i32, bufs: &mut [Vec<u8>]) -> Result<Vec<usize>, Errno> {
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    let mut msgs = mmsg_headers(&mut iovs);
    loop {
        // SAFETY: msgs holds bufs.len() headers, each naming one iovec
        // over a buffer of its length that outlives the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                msgs.len() as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n >= 0 {
            return Ok(msgs[..n as usize]
                .iter()
                .map(|m| m.msg_len as usize)
                .collect());
        }
        match Errno::last() {
            Errno::EINTR => continue,
            Errno::EAGAIN => return Ok(Vec::new()),
            e => return Err(e),
        }
    }
}

/// Waits until one of `fds` is ready or `timeout_ms` passes (<0: no
/// limit); EINTR retried. The number ready.
pub fn poll_fds(fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<usize, Errno> {
    loop {
        // SAFETY: fds is a valid array of fds.len() pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n >= 0 {
            return Ok(n as usize);
        }
        if Errno::last() != Errno::EINTR {
            return Err(Errno::last());
        }
    }
}

/// A new non-blocking eventfd.
pub fn eventfd() -> Result<std::os::fd::OwnedFd, Errno> {
    // SAFETY: creates a new fd that we own.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `fd` is new and nothing else owns it.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// Blocks `sig` in the calling thread (and so in every thread it starts
/// later).
pub fn block_signal(sig: i32) {
    // SAFETY: an empty set with one signal added; pthread_sigmask only
    // changes the calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// A non-blocking signalfd for `sig` (which every thread must block, so
/// that it stays pending for the fd): made before the seccomp filter,
/// which has no signalfd4.
pub fn signalfd(sig: i32) -> Result<std::os::fd::OwnedFd, Errno> {
    // SAFETY: an empty set with one signal added; signalfd makes a new fd.
    let fd = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `fd` is new and nothing else owns it.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}
