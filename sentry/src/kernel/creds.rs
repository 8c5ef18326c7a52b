//! Credentials of a task.

/// User and group ids and capabilities. The sandbox's root has every
/// capability inside the sandbox; none of it means anything on the host.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
    /// Effective capability set (bit n = capability n).
    pub cap_effective: u64,
}

/// CAP_SYS_RESOURCE.
pub const CAP_SYS_RESOURCE: u32 = 24;
/// The highest capability number Linux 6.x knows (CAP_CHECKPOINT_RESTORE).
pub const CAP_LAST_CAP: u32 = 40;

impl Credentials {
    /// The sandbox's root, with every capability.
    pub fn root() -> Credentials {
        Credentials::new(0, 0)
    }

    pub fn new(uid: u32, gid: u32) -> Credentials {
        Credentials {
            uid,
            euid: uid,
            suid: uid,
            fsuid: uid,
            gid,
            egid: gid,
            sgid: gid,
            fsgid: gid,
            groups: Vec::new(),
            cap_effective: if uid == 0 {
                (1u64 << (CAP_LAST_CAP + 1)) - 1
            } else {
                0
            },
        }
    }

    pub fn has_cap(&self, cap: u32) -> bool {
        self.cap_effective & (1 << cap) != 0
    }
}
