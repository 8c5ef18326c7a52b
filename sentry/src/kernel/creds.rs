//! Credentials of a task: ids, Linux's five capability sets, the
//! securebits, and how they change on exec and on changes of uids
//! (`security/commoncap.c`).

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
    /// Bounding set: what exec may put into the permitted set.
    pub cap_bounding: u64,
    /// Ambient set: kept across exec of a program by a non-root user.
    /// Always within `cap_permitted & cap_inheritable`.
    pub cap_ambient: u64,
    /// PR_SET_KEEPCAPS (the SECBIT_KEEP_CAPS securebit): keep permitted
    /// capabilities when all uids leave 0.
    pub keep_caps: bool,
    /// The other securebits (`SECBIT_*` but SECBIT_KEEP_CAPS, which is
    /// `keep_caps`); `securebits()` gives them all.
    pub securebits: u32,
}

/// The five capability sets, as an OCI runtime configures them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub bounding: u64,
    pub ambient: u64,
}

/// The capabilities that follow the file-system uid (Linux's
/// CAP_FS_MASK): chown, dac_override, dac_read_search, fowner, fsetid,
/// linux_immutable, mknod, mac_override.
pub const CAP_FS_MASK: u64 =
    (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 9) | (1 << 27) | (1 << 32);
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
/// CAP_SETPCAP: change the bounding set, the securebits, and inheritable
/// capabilities beyond the permitted set.
pub const CAP_SETPCAP: u32 = 8;

/// CAP_SYS_RESOURCE.
pub const CAP_SYS_RESOURCE: u32 = 24;
/// The highest capability number Linux 6.x knows (CAP_CHECKPOINT_RESTORE).
pub const CAP_LAST_CAP: u32 = 40;
/// Every capability there is (Linux's CAP_VALID_MASK).
pub const CAP_ALL: u64 = (1u64 << (CAP_LAST_CAP + 1)) - 1;

/// The securebits (`linux/securebits.h`). A bit's lock is the bit above it.
pub const SECBIT_NOROOT: u32 = 1 << 0;
pub const SECBIT_NO_SETUID_FIXUP: u32 = 1 << 2;
pub const SECBIT_KEEP_CAPS: u32 = 1 << 4;
pub const SECBIT_KEEP_CAPS_LOCKED: u32 = 1 << 5;
pub const SECBIT_NO_CAP_AMBIENT_RAISE: u32 = 1 << 6;
/// The bits Linux 6.6 (the release the sandbox reports) knows.
pub const SECURE_ALL_BITS: u32 =
    SECBIT_NOROOT | SECBIT_NO_SETUID_FIXUP | SECBIT_KEEP_CAPS | SECBIT_NO_CAP_AMBIENT_RAISE;
/// Their locks.
pub const SECURE_ALL_LOCKS: u32 = SECURE_ALL_BITS << 1;

/// What exec needs to know of the file it runs (the final one: a
/// script's interpreter, whose set-id bits count, not the script's).
#[derive(Clone, Copy, Debug)]
pub struct ExecFile {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The file is on a `nosuid` mount.
    pub nosuid: bool,
}

/// The credentials a program starts with after exec.
#[derive(Clone, Debug)]
pub struct ExecCreds {
    pub creds: Credentials,
    /// A privilege-raising exec (Linux's `bprm->secureexec`): AT_SECURE
    /// is 1, and the parent-death signal is cleared.
    pub secure: bool,
}

impl Credentials {
    /// The sandbox's root, with every capability.
    pub fn root() -> Credentials {
        Credentials::new(0, 0)
    }

    /// `uid` and `gid` as all ids; root has every capability in its
    /// permitted and effective sets, others none; the bounding set is
    /// full, the inheritable and ambient sets empty.
    pub fn new(uid: u32, gid: u32) -> Credentials {
        let caps = if uid == 0 { CAP_ALL } else { 0 };
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
            cap_effective: caps,
            cap_permitted: caps,
            cap_inheritable: 0,
            cap_bounding: CAP_ALL,
            cap_ambient: 0,
            keep_caps: false,
            securebits: 0,
        }
    }

    /// Sets the five capability sets (as an OCI runtime's
    /// `process.capabilities` names them). Bits beyond CAP_LAST_CAP are
    /// dropped, and so is what would break Linux's invariants: effective
    /// within permitted, ambient within permitted and inheritable.
    ///
    /// These are the sets of the task before its program is exec'd; an
    /// exec then transforms them as Linux does (`for_exec`), just as a
    /// runtime's init process sets them with capset and prctl and then
    /// execs the container's program.
    pub fn set_capabilities(&mut self, s: CapSets) {
        self.cap_permitted = s.permitted & CAP_ALL;
        self.cap_effective = s.effective & self.cap_permitted;
        self.cap_inheritable = s.inheritable & CAP_ALL;
        self.cap_bounding = s.bounding & CAP_ALL;
        self.cap_ambient = s.ambient & self.cap_permitted & self.cap_inheritable;
    }

    /// The five capability sets.
    pub fn capabilities(&self) -> CapSets {
        CapSets {
            effective: self.cap_effective,
            permitted: self.cap_permitted,
            inheritable: self.cap_inheritable,
            bounding: self.cap_bounding,
            ambient: self.cap_ambient,
        }
    }

    pub fn has_cap(&self, cap: u32) -> bool {
        cap <= CAP_LAST_CAP && self.cap_effective & (1 << cap) != 0
    }

    /// All securebits, as PR_GET_SECUREBITS reports them.
    pub fn securebits(&self) -> u32 {
        self.securebits | if self.keep_caps { SECBIT_KEEP_CAPS } else { 0 }
    }

    /// Sets all securebits (the caller checked them).
    pub fn set_securebits(&mut self, bits: u32) {
        self.keep_caps = bits & SECBIT_KEEP_CAPS != 0;
        self.securebits = bits & !SECBIT_KEEP_CAPS;
    }

    fn secure(&self, bit: u32) -> bool {
        self.securebits() & bit != 0
    }

    /// Applies Linux's capability rules after a change of uids by
    /// setuid, setreuid or setresuid from (`old_r`, `old_e`, `old_s`)
    /// (`cap_task_fix_setuid`, `cap_emulate_setxuid`), unless
    /// SECBIT_NO_SETUID_FIXUP.
    pub fn fix_caps_after_setuid(&mut self, old_r: u32, old_e: u32, old_s: u32) {
        if self.secure(SECBIT_NO_SETUID_FIXUP) {
            return;
        }
        let was_root = old_r == 0 || old_e == 0 || old_s == 0;
        let now_root = self.uid == 0 || self.euid == 0 || self.suid == 0;
        if was_root && !now_root {
            if !self.keep_caps {
                self.cap_permitted = 0;
                self.cap_effective = 0;
            }
            // Even with keep_caps: a program exec'd after leaving root
            // gets no ambient capabilities.
            self.cap_ambient = 0;
        }
        if old_e == 0 && self.euid != 0 {
            self.cap_effective = 0;
        }
        if old_e != 0 && self.euid == 0 {
            self.cap_effective = self.cap_permitted;
        }
    }

    /// The file-system capabilities follow the fsuid when setfsuid
    /// changes it (`cap_task_fix_setuid` with LSM_SETID_FS), unless
    /// SECBIT_NO_SETUID_FIXUP.
    pub fn fix_caps_after_setfsuid(&mut self, old_fsuid: u32) {
        if self.secure(SECBIT_NO_SETUID_FIXUP) {
            return;
        }
        if old_fsuid == 0 && self.fsuid != 0 {
            self.cap_effective &= !CAP_FS_MASK;
        }
        if old_fsuid != 0 && self.fsuid == 0 {
            self.cap_effective |= self.cap_permitted & CAP_FS_MASK;
        }
    }

    /// Whether a task with these credentials, replacing `old`, loses its
    /// dumpability and parent-death signal (what `commit_creds` checks:
    /// an effective or file-system id changed, or permitted grew).
    pub fn raises_privilege_over(&self, old: &Credentials) -> bool {
        self.euid != old.euid
            || self.egid != old.egid
            || self.fsuid != old.fsuid
            || self.fsgid != old.fsgid
            || self.cap_permitted & !old.cap_permitted != 0
    }

    /// The credentials after exec of `file` (`bprm_fill_uid` and
    /// `cap_bprm_creds_from_file`, as in Linux 6.16 and later). The
    /// sandbox has no file capabilities (no `security.capability`
    /// attributes), so every file is one without: root (the effective
    /// uid, or the real uid, unless SECBIT_NOROOT) gets the bounding and
    /// inheritable sets as its permitted set, all of it effective when
    /// the effective uid is 0; everyone keeps the ambient set on top,
    /// unless the exec changes the effective uid, or the effective gid to
    /// a group the caller is not in (a set-user-ID or set-group-ID
    /// program), which clears it. Under no_new_privs the set-id bits do
    /// nothing, and an exec that would still change the ids or add
    /// permitted capabilities gets the real ids and no new capabilities.
    /// (Linux's other reasons for that downgrade, a ptracer and a
    /// file-system context shared with another process, do not arise:
    /// the sandbox has no guest ptrace and does not track the sharing.)
    pub fn for_exec(&self, file: &ExecFile, no_new_privs: bool) -> ExecCreds {
        let old = self;
        let mut new = old.clone();
        if !file.nosuid && !no_new_privs {
            if file.mode & libc::S_ISUID != 0 {
                new.euid = file.uid;
            }
            if file.mode & (libc::S_ISGID | libc::S_IXGRP) == libc::S_ISGID | libc::S_IXGRP {
                new.egid = file.gid;
            }
        }
        // The file's capabilities: none.
        new.cap_permitted = 0;
        let mut effective = false;
        if !old.secure(SECBIT_NOROOT) {
            // Root's exec: as if the file's permitted and inheritable
            // sets were full.
            if new.euid == 0 || new.uid == 0 {
                new.cap_permitted = old.cap_bounding | old.cap_inheritable;
            }
            // Only the effective uid 0 makes them effective.
            if new.euid == 0 {
                effective = true;
            }
        }
        // Whether the exec changes the ids (Linux 6.16 and later: the
        // effective uid, or the effective gid to a group the caller is
        // not in; before, any effective id other than the real one).
        let id_changed = new.euid != old.euid || !crate::vfs::perm::in_group(old, new.egid);
        let gained = new.cap_permitted & !old.cap_permitted != 0;
        if (id_changed || gained) && no_new_privs {
            new.euid = new.uid;
            new.egid = new.gid;
            new.cap_permitted &= old.cap_permitted;
        }
        new.suid = new.euid;
        new.fsuid = new.euid;
        new.sgid = new.egid;
        new.fsgid = new.egid;
        if id_changed {
            new.cap_ambient = 0;
        }
        new.cap_permitted |= new.cap_ambient;
        new.cap_effective = if effective {
            new.cap_permitted
        } else {
            new.cap_ambient
        };
        new.keep_caps = false;
        let secure = id_changed
            || new.euid != old.uid
            || new.egid != old.gid
            || (new.uid != 0 && (effective || new.cap_permitted & !new.cap_ambient != 0));
        ExecCreds { creds: new, secure }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> ExecFile {
        ExecFile {
            mode: 0o755,
            uid: 0,
            gid: 0,
            nosuid: false,
        }
    }

    #[test]
    fn root_exec_takes_bounding_and_inheritable() {
        let mut c = Credentials::root();
        c.set_capabilities(CapSets {
            effective: 0,
            permitted: 0b11,
            inheritable: 0b1000,
            bounding: 0b111,
            ambient: 0,
        });
        let e = c.for_exec(&plain(), false);
        assert_eq!(e.creds.cap_permitted, 0b1111);
        assert_eq!(e.creds.cap_effective, 0b1111);
        assert!(!e.secure);
        // Under no_new_privs permitted cannot grow.
        let e = c.for_exec(&plain(), true);
        assert_eq!(e.creds.cap_permitted, 0b11);
        assert_eq!(e.creds.cap_effective, 0b11);
    }

    #[test]
    fn non_root_keeps_ambient_unless_setid() {
        let mut c = Credentials::new(1000, 1000);
        c.cap_permitted = 0b110;
        c.cap_inheritable = 0b110;
        c.cap_ambient = 0b100;
        let e = c.for_exec(&plain(), false);
        assert_eq!(e.creds.cap_permitted, 0b100);
        assert_eq!(e.creds.cap_effective, 0b100);
        assert_eq!(e.creds.cap_inheritable, 0b110);
        assert!(!e.secure);
        let setuid = ExecFile {
            mode: 0o4755,
            uid: 1001,
            ..plain()
        };
        let e = c.for_exec(&setuid, false);
        assert_eq!((e.creds.euid, e.creds.suid), (1001, 1001));
        assert_eq!(e.creds.cap_permitted | e.creds.cap_ambient, 0);
        assert!(e.secure);
        // nosuid: an ordinary exec.
        let e = c.for_exec(
            &ExecFile {
                nosuid: true,
                ..setuid
            },
            false,
        );
        assert_eq!(e.creds.euid, 1000);
        assert_eq!(e.creds.cap_ambient, 0b100);
    }

    #[test]
    fn setuid_root_and_noroot() {
        let c = Credentials::new(1000, 1000);
        let suid_root = ExecFile {
            mode: 0o4755,
            ..plain()
        };
        let e = c.for_exec(&suid_root, false);
        assert_eq!(e.creds.euid, 0);
        assert_eq!(e.creds.cap_effective, CAP_ALL);
        assert!(e.secure);
        let mut r = Credentials::root();
        r.set_securebits(SECBIT_NOROOT);
        let e = r.for_exec(&plain(), false);
        assert_eq!(e.creds.cap_permitted, 0);
        // Real uid 0 alone: permitted but not effective.
        let mut r = Credentials::root();
        r.euid = 1000;
        r.cap_effective = 0;
        let e = r.for_exec(&plain(), false);
        assert_eq!(e.creds.cap_permitted, CAP_ALL);
        assert_eq!(e.creds.cap_effective, 0);
    }

    #[test]
    fn leaving_root() {
        let mut c = Credentials::root();
        c.cap_inheritable = 1;
        c.cap_ambient = 1;
        c.keep_caps = true;
        c.uid = 5;
        c.euid = 5;
        c.suid = 5;
        c.fix_caps_after_setuid(0, 0, 0);
        assert_eq!(
            (c.cap_permitted, c.cap_effective, c.cap_ambient),
            (CAP_ALL, 0, 0)
        );
    }
}
