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
    /// Permitted capability set.
    pub cap_permitted: u64,
    /// Inheritable capability set.
    pub cap_inheritable: u64,
    /// PR_SET_KEEPCAPS: keep permitted capabilities when all uids leave 0.
    pub keep_caps: bool,
}

/// The capabilities that follow the file-system uid (Linux's
/// CAP_FS_MASK): chown, dac_override, dac_read_search, fowner, fsetid,
/// linux_immutable, mknod, mac_override.
pub const CAP_FS_MASK: u64 =
    (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 9) | (1 << 27) | (1 << 32);
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;

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
        let all = (1u64 << (CAP_LAST_CAP + 1)) - 1;
        Credentials {
            cap_permitted: if uid == 0 { all } else { 0 },
            cap_inheritable: 0,
            keep_caps: false,
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

    /// Applies Linux's capability rules after a change of uids from
    /// (`old_r`, `old_e`, `old_s`) (`cap_emulate_setxuid`).
    pub fn fix_caps_after_setuid(&mut self, old_r: u32, old_e: u32, old_s: u32) {
        let was_root = old_r == 0 || old_e == 0 || old_s == 0;
        let now_root = self.uid == 0 || self.euid == 0 || self.suid == 0;
        if was_root && !now_root && !self.keep_caps {
            self.cap_permitted = 0;
            self.cap_effective = 0;
        }
        if old_e == 0 && self.euid != 0 {
            self.cap_effective = 0;
        }
        if old_e != 0 && self.euid == 0 {
            self.cap_effective = self.cap_permitted;
        }
    }

    /// The file-system capabilities follow the fsuid (`cap_emulate_setfsuid`).
    pub fn fix_caps_after_setfsuid(&mut self, old_fsuid: u32) {
        if old_fsuid == 0 && self.fsuid != 0 {
            self.cap_effective &= !CAP_FS_MASK;
        }
        if old_fsuid != 0 && self.fsuid == 0 {
            self.cap_effective |= self.cap_permitted & CAP_FS_MASK;
        }
    }
}
