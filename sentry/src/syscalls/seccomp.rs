//! seccomp(2), and prctl's PR_SET_SECCOMP and PR_GET_SECCOMP. The filters
//! themselves are in `kernel::seccomp`.

use super::{Hex, SysResult, UserAddr};
use crate::errno::Errno;
use crate::kernel::compat::Unsupported;
use crate::kernel::seccomp::{self as sc, Attached, Program, SockFilter};
use crate::kernel::task::Task;

const SECCOMP_SET_MODE_STRICT: u32 = 0;
const SECCOMP_SET_MODE_FILTER: u32 = 1;
const SECCOMP_GET_ACTION_AVAIL: u32 = 2;
const SECCOMP_GET_NOTIF_SIZES: u32 = 3;

const FLAG_TSYNC: u64 = 1;
const FLAG_LOG: u64 = 2;
const FLAG_SPEC_ALLOW: u64 = 4;
const FLAG_NEW_LISTENER: u64 = 8;
const FLAG_TSYNC_ESRCH: u64 = 16;
const FLAG_WAIT_KILLABLE_RECV: u64 = 32;
const FLAG_MASK: u64 = FLAG_TSYNC
    | FLAG_LOG
    | FLAG_SPEC_ALLOW
    | FLAG_NEW_LISTENER
    | FLAG_TSYNC_ESRCH
    | FLAG_WAIT_KILLABLE_RECV;

const CAP_SYS_ADMIN: u32 = 21;

/// seccomp operations the sentry does not know.
const SECCOMP_UNKNOWN: Unsupported = Unsupported {
    syscall: "seccomp",
    argument: "operation",
    answer: Errno::EINVAL,
};
/// User notification (a supervisor answering the filtered calls): not
/// implemented.
const SECCOMP_UNIMPLEMENTED: Unsupported = Unsupported {
    syscall: "seccomp",
    argument: "flags",
    answer: Errno::ENOSYS,
};

pub fn seccomp(t: &mut Task, op: u32, flags: Hex, uargs: UserAddr) -> SysResult {
    let flags = flags.0;
    match op {
        SECCOMP_SET_MODE_STRICT => {
            if flags != 0 || uargs.0 != 0 {
                return Err(Errno::EINVAL);
            }
            sc::set_strict(t)?;
            Ok(0)
        }
        SECCOMP_SET_MODE_FILTER => set_mode_filter(t, flags, uargs.0),
        SECCOMP_GET_ACTION_AVAIL => {
            if flags != 0 {
                return Err(Errno::EINVAL);
            }
            let action: u32 = t.mm.read_obj(uargs.0)?;
            match action {
                sc::SECCOMP_RET_KILL_PROCESS
                | sc::SECCOMP_RET_KILL_THREAD
                | sc::SECCOMP_RET_TRAP
                | sc::SECCOMP_RET_ERRNO
                | sc::SECCOMP_RET_USER_NOTIF
                | sc::SECCOMP_RET_TRACE
                | sc::SECCOMP_RET_LOG
                | sc::SECCOMP_RET_ALLOW => Ok(0),
                _ => Err(Errno::EOPNOTSUPP),
            }
        }
        SECCOMP_GET_NOTIF_SIZES => {
            if flags != 0 {
                return Err(Errno::EINVAL);
            }
            // struct seccomp_notif, seccomp_notif_resp, seccomp_data.
            let mut b = [0u8; 6];
            b[0..2].copy_from_slice(&80u16.to_le_bytes());
            b[2..4].copy_from_slice(&24u16.to_le_bytes());
            b[4..6].copy_from_slice(&(sc::SECCOMP_DATA_SIZE as u16).to_le_bytes());
            t.mm.copy_out(uargs.0, &b)?;
            Ok(0)
        }
        _ => SECCOMP_UNKNOWN.answer(t, op),
    }
}

/// The flag checks of seccomp(SECCOMP_SET_MODE_FILTER), in Linux's order.
fn check_flags(t: &Task, flags: u64) -> Result<(), Errno> {
    if flags & !FLAG_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    // A failed TSYNC returns a tid, a listener an fd: not both unless
    // TSYNC failures are ESRCH.
    if flags & FLAG_TSYNC != 0 && flags & FLAG_NEW_LISTENER != 0 && flags & FLAG_TSYNC_ESRCH == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & FLAG_WAIT_KILLABLE_RECV != 0 && flags & FLAG_NEW_LISTENER == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & FLAG_NEW_LISTENER != 0 {
        SECCOMP_UNIMPLEMENTED.answer::<()>(t, "SECCOMP_FILTER_FLAG_NEW_LISTENER")?;
    }
    Ok(())
}

/// Checks `insns` and puts it on top of the thread's filters: the end of
/// seccomp(SECCOMP_SET_MODE_FILTER) once the flags and the caller's right
/// to do it were checked.
fn attach_program(t: &mut Task, flags: u64, insns: &[SockFilter]) -> SysResult {
    let prog = Program::new(insns)?;
    // SPEC_ALLOW: no speculation mitigation is forced on the guest here.
    match sc::attach(t, prog, flags & FLAG_LOG != 0, flags & FLAG_TSYNC != 0)? {
        Attached::Done => Ok(0),
        Attached::Blocked(_) if flags & FLAG_TSYNC_ESRCH != 0 => Err(Errno::ESRCH),
        Attached::Blocked(tid) => Ok(tid as u64),
    }
}

/// seccomp(SECCOMP_SET_MODE_FILTER), with Linux's checks in Linux's order.
fn set_mode_filter(t: &mut Task, flags: u64, uprog: u64) -> SysResult {
    check_flags(t, flags)?;
    // struct sock_fprog: len (u16), padding, filter pointer.
    let mut fprog = [0u8; 16];
    t.mm.copy_in(uprog, &mut fprog)?;
    let len = u16::from_le_bytes([fprog[0], fprog[1]]) as usize;
    let filter = u64::from_le_bytes(fprog[8..16].try_into().unwrap());
    if len == 0 || len > sc::BPF_MAXINSNS {
        return Err(Errno::EINVAL);
    }
    if !t.prctl.no_new_privs && !t.creds.has_cap(CAP_SYS_ADMIN) {
        return Err(Errno::EACCES);
    }
    let mut raw = vec![0u8; len * 8];
    t.mm.copy_in(filter, &mut raw)?;
    let insns: Vec<SockFilter> = raw.chunks_exact(8).map(SockFilter::from_bytes).collect();
    attach_program(t, flags, &insns)
}

/// A container's seccomp filter as its runtime installs it on a process:
/// a classic BPF program and its `SECCOMP_FILTER_FLAG_*` flags, as they
/// would be passed to seccomp(SECCOMP_SET_MODE_FILTER). Serializable, for
/// the runtime to send it to a running sandbox for the processes it
/// execs there.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GuestFilter {
    pub program: Vec<SockFilter>,
    pub flags: u64,
}

/// Installs a runtime's filter on a task that has not run yet (the
/// sandbox's first process, or one exec'd into a running sandbox), as
/// seccomp(SECCOMP_SET_MODE_FILTER, flags, program) made by the task
/// would: the same checks of the flags and the program (EINVAL, ENOSYS
/// for a user-notification listener), on top of any filter it has, and
/// kept across its fork, clone and execve. Only the caller's right to
/// filter (no_new_privs or CAP_SYS_ADMIN) is not asked: the runtime
/// installs the filter with its own privilege, as runc does before it
/// drops the container's capabilities.
pub fn install(t: &mut Task, f: &GuestFilter) -> Result<(), Errno> {
    check_flags(t, f.flags)?;
    if f.program.is_empty() || f.program.len() > sc::BPF_MAXINSNS {
        return Err(Errno::EINVAL);
    }
    match attach_program(t, f.flags, &f.program)? {
        0 => Ok(()),
        // Another thread's filters differ (TSYNC without TSYNC_ESRCH).
        _ => Err(Errno::ESRCH),
    }
}

/// prctl(PR_SET_SECCOMP, mode, filter): seccomp(2) without flags.
pub fn prctl_set_seccomp(t: &mut Task, mode: u64, filter: u64) -> SysResult {
    match mode {
        m if m == sc::SECCOMP_MODE_STRICT as u64 => {
            // The filter argument was always ignored in strict mode.
            seccomp(t, SECCOMP_SET_MODE_STRICT, Hex(0), UserAddr(0))
        }
        m if m == sc::SECCOMP_MODE_FILTER as u64 => {
            seccomp(t, SECCOMP_SET_MODE_FILTER, Hex(0), UserAddr(filter))
        }
        _ => Err(Errno::EINVAL),
    }
}

/// prctl(PR_GET_SECCOMP): 0 off, 1 strict (never seen: prctl is not
/// allowed then), 2 filter.
pub fn prctl_get_seccomp(t: &mut Task) -> SysResult {
    Ok(t.shared.seccomp.mode() as u64)
}
