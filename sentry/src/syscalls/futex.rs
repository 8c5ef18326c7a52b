//! futex(2): FUTEX_WAIT, FUTEX_WAKE and their bitset forms. Requeue and
//! priority-inheritance operations come with threads.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;

use super::{SysResult, UserAddr};
use crate::kernel::task::Task;

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_PRIVATE_FLAG: i32 = 128;
const FUTEX_CLOCK_REALTIME: i32 = 256;
const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

pub fn futex(
    t: &mut Task,
    uaddr: UserAddr,
    op: i32,
    val: u32,
    timeout: UserAddr,
    _uaddr2: UserAddr,
    val3: u32,
) -> SysResult {
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    if realtime && cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET {
        return Err(Errno::ENOSYS);
    }
    if !uaddr.0.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let key = (Arc::as_ptr(&t.mm) as usize, uaddr.0);
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT {
                FUTEX_BITSET_MATCH_ANY
            } else {
                val3
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            let deadline = if timeout.0 == 0 {
                None
            } else {
                let ts: libc::timespec = t.mm.read_obj(timeout.0)?;
                let d = super::time::timespec_to_duration(&ts)?;
                Some(if cmd == FUTEX_WAIT {
                    // Relative.
                    Instant::now() + d
                } else if realtime {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default();
                    Instant::now() + d.saturating_sub(now)
                } else {
                    let mut m = libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    };
                    // SAFETY: writes one timespec.
                    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut m) };
                    let now = Duration::new(m.tv_sec as u64, m.tv_nsec as u32);
                    Instant::now() + d.saturating_sub(now)
                })
            };
            let mm = t.mm.clone();
            let kernel = t.kernel.clone();
            kernel.futexes.wait(
                key,
                bitset,
                || {
                    let cur: u32 = mm.read_obj(uaddr.0)?;
                    Ok(cur == val)
                },
                deadline,
            )?;
            Ok(0)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE {
                FUTEX_BITSET_MATCH_ANY
            } else {
                val3
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            Ok(t.kernel.futexes.wake(key, bitset, val) as u64)
        }
        _ => super::unimplemented(t, &format!("futex operation {cmd}")),
    }
}
