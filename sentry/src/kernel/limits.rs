//! Resource limits (`getrlimit`/`setrlimit`/`prlimit64`): the sandbox's own
//! table, never the host's.

use crate::errno::Errno;

pub const RLIM_INFINITY: u64 = u64::MAX;
pub const RLIMIT_NLIMITS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub cur: u64,
    pub max: u64,
}

/// One thread group's limits.
#[derive(Clone, Debug)]
pub struct Limits {
    table: [Limit; RLIMIT_NLIMITS],
}

impl Default for Limits {
    /// What Linux gives its first process.
    fn default() -> Limits {
        let inf = Limit {
            cur: RLIM_INFINITY,
            max: RLIM_INFINITY,
        };
        let mut table = [inf; RLIMIT_NLIMITS];
        table[libc::RLIMIT_STACK as usize] = Limit {
            cur: 8 << 20,
            max: RLIM_INFINITY,
        };
        table[libc::RLIMIT_CORE as usize] = Limit {
            cur: 0,
            max: RLIM_INFINITY,
        };
        table[libc::RLIMIT_NPROC as usize] = Limit {
            cur: 63_382,
            max: 63_382,
        };
        table[libc::RLIMIT_NOFILE as usize] = Limit {
            cur: 1024,
            max: 524_288,
        };
        table[libc::RLIMIT_MEMLOCK as usize] = Limit {
            cur: 8 << 20,
            max: 8 << 20,
        };
        table[libc::RLIMIT_SIGPENDING as usize] = Limit {
            cur: 63_382,
            max: 63_382,
        };
        table[libc::RLIMIT_MSGQUEUE as usize] = Limit {
            cur: 819_200,
            max: 819_200,
        };
        table[libc::RLIMIT_NICE as usize] = Limit { cur: 0, max: 0 };
        table[libc::RLIMIT_RTPRIO as usize] = Limit { cur: 0, max: 0 };
        Limits { table }
    }
}

impl Limits {
    pub fn get(&self, resource: u32) -> Result<Limit, Errno> {
        self.table
            .get(resource as usize)
            .copied()
            .ok_or(Errno::EINVAL)
    }

    /// Sets a limit as `setrlimit` does. `privileged` is CAP_SYS_RESOURCE.
    pub fn set(&mut self, resource: u32, new: Limit, privileged: bool) -> Result<Limit, Errno> {
        let old = self.get(resource)?;
        if new.cur > new.max {
            return Err(Errno::EINVAL);
        }
        if resource == libc::RLIMIT_NOFILE && new.max > super::NR_OPEN {
            return Err(Errno::EPERM);
        }
        if new.max > old.max && !privileged {
            return Err(Errno::EPERM);
        }
        self.table[resource as usize] = new;
        Ok(old)
    }

    pub fn cur(&self, resource: u32) -> u64 {
        self.table[resource as usize].cur
    }
}
