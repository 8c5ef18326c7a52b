//! Thread and process identity syscalls: exit, arch_prctl, ids,
//! set_tid_address, robust lists, rseq, scheduling queries.

use crate::errno::Errno;

use super::{Hex, SysResult, UserAddr};
use crate::kernel::compat::Unsupported;
use crate::kernel::task::Task;

const ARCH_SET_GS: i32 = 0x1001;
const ARCH_SET_FS: i32 = 0x1002;
const ARCH_GET_FS: i32 = 0x1003;
const ARCH_GET_GS: i32 = 0x1004;
const ARCH_GET_CPUID: i32 = 0x1011;
const ARCH_SET_CPUID: i32 = 0x1012;

/// A base the kernel accepts: below the end of the user address space.
fn canonical(a: u64) -> bool {
    a < super::fs::TASK_SIZE
}

/// arch_prctl codes the sentry does not know (the shadow stack's, AMX's).
const ARCH_PRCTL_UNKNOWN: Unsupported = Unsupported {
    syscall: "arch_prctl",
    argument: "code",
    answer: Errno::EINVAL,
};
/// CPUID faulting (ARCH_SET_CPUID): not offered.
const ARCH_PRCTL_UNIMPLEMENTED: Unsupported = Unsupported {
    syscall: "arch_prctl",
    argument: "code",
    answer: Errno::ENOSYS,
};

pub fn arch_prctl(t: &mut Task, code: i32, addr: Hex) -> SysResult {
    match code {
        ARCH_SET_FS => {
            if !canonical(addr.0) {
                return Err(Errno::EPERM);
            }
            t.regs.fs_base = addr.0;
            Ok(0)
        }
        ARCH_SET_GS => {
            if !canonical(addr.0) {
                return Err(Errno::EPERM);
            }
            t.regs.gs_base = addr.0;
            Ok(0)
        }
        ARCH_GET_FS => {
            t.mm.write_obj(addr.0, &t.regs.fs_base)?;
            Ok(0)
        }
        ARCH_GET_GS => {
            t.mm.write_obj(addr.0, &t.regs.gs_base)?;
            Ok(0)
        }
        // CPUID faulting is not offered: cpuid always works.
        ARCH_GET_CPUID => Ok(1),
        ARCH_SET_CPUID => ARCH_PRCTL_UNIMPLEMENTED.answer(t, "ARCH_SET_CPUID"),
        _ => ARCH_PRCTL_UNKNOWN.answer(t, format_args!("{code:#x}")),
    }
}

pub fn set_tid_address(t: &mut Task, tidptr: UserAddr) -> SysResult {
    t.clear_child_tid = tidptr.0;
    Ok(t.tid as u64)
}

/// sizeof(struct robust_list_head).
const ROBUST_LIST_HEAD_SIZE: usize = 24;

pub fn set_robust_list(t: &mut Task, head: UserAddr, len: usize) -> SysResult {
    if len != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    t.robust_list = (head.0, len as u64);
    Ok(0)
}

pub fn get_robust_list(t: &mut Task, pid: i32, head: UserAddr, len: UserAddr) -> SysResult {
    if pid != 0 && pid != t.tid {
        return Err(Errno::ESRCH);
    }
    // The length goes out first.
    t.mm.write_obj(len.0, &(ROBUST_LIST_HEAD_SIZE as u64))?;
    t.mm.write_obj(head.0, &t.robust_list.0)?;
    Ok(0)
}

pub fn rseq(t: &mut Task, _rseq: UserAddr, _len: u32, _flags: Hex, _sig: Hex) -> SysResult {
    // Restartable sequences need the kernel to fix up the guest's critical
    // sections on preemption; the sentry does not, and says so. glibc then
    // runs without them.
    super::unimplemented_syscall(t)
}

pub fn getpid(t: &mut Task) -> SysResult {
    Ok(t.tg.tgid as u64)
}

pub fn gettid(t: &mut Task) -> SysResult {
    Ok(t.tid as u64)
}

pub fn getuid(t: &mut Task) -> SysResult {
    Ok(t.creds.uid as u64)
}

pub fn geteuid(t: &mut Task) -> SysResult {
    Ok(t.creds.euid as u64)
}

pub fn getgid(t: &mut Task) -> SysResult {
    Ok(t.creds.gid as u64)
}

pub fn getegid(t: &mut Task) -> SysResult {
    Ok(t.creds.egid as u64)
}

pub fn getresuid(t: &mut Task, r: UserAddr, e: UserAddr, s: UserAddr) -> SysResult {
    t.mm.write_obj(r.0, &t.creds.uid)?;
    t.mm.write_obj(e.0, &t.creds.euid)?;
    t.mm.write_obj(s.0, &t.creds.suid)?;
    Ok(0)
}

pub fn getresgid(t: &mut Task, r: UserAddr, e: UserAddr, s: UserAddr) -> SysResult {
    t.mm.write_obj(r.0, &t.creds.gid)?;
    t.mm.write_obj(e.0, &t.creds.egid)?;
    t.mm.write_obj(s.0, &t.creds.sgid)?;
    Ok(0)
}

pub fn getgroups(t: &mut Task, size: i32, list: UserAddr) -> SysResult {
    let groups = t.creds.groups.clone();
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    if size == 0 {
        return Ok(groups.len() as u64);
    }
    if (size as usize) < groups.len() {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    t.mm.copy_out(list.0, &bytes)?;
    Ok(groups.len() as u64)
}

pub fn sched_yield(_t: &mut Task) -> SysResult {
    std::thread::yield_now();
    Ok(0)
}

pub fn sched_getaffinity(t: &mut Task, pid: i32, len: usize, mask: UserAddr) -> SysResult {
    let cpus = t.kernel.cpus;
    // The length is an unsigned int, checked first (the product wraps as
    // the kernel's does).
    let len = len as u32;
    if (len.wrapping_mul(8) as usize) < cpus || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let set = super::sched::affinity(t, pid)?;
    // The kernel's cpumask size: nr_cpu_ids bits in whole longs. Only
    // that much is copied, however long the buffer.
    let mask_bytes = cpus.div_ceil(64) * 8;
    let mut bytes = vec![0u8; mask_bytes];
    for c in 0..cpus.min(128) {
        if set & (1u128 << c) != 0 {
            bytes[c / 8] |= 1 << (c % 8);
        }
    }
    t.mm.copy_out(mask.0, &bytes)?;
    Ok(mask_bytes as u64)
}

pub fn getcpu(t: &mut Task, cpu: UserAddr, node: UserAddr, _cache: UserAddr) -> SysResult {
    let c = crate::hostcall::current_cpu().max(0) as u32 % t.kernel.cpus as u32;
    if cpu.0 != 0 {
        t.mm.write_obj(cpu.0, &c)?;
    }
    if node.0 != 0 {
        t.mm.write_obj(node.0, &0u32)?;
    }
    Ok(0)
}
