//! Reading a bundle's `config.json` (with `oci-spec`) into what the gofer
//! and the sentry are given. What the sandbox cannot honour is said in
//! the log; what would weaken the container's security if ignored fails.

use std::path::{Path, PathBuf};

use sentry::vfs::mount::MountFlags;

use oci_spec::runtime::{Capability, LinuxCapabilities, Mount, PosixRlimitType, Process, Spec};

/// Capability names in Linux's numbering (CAP_CHOWN is 0).
const CAP_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

pub fn cap_number(name: &str) -> Option<u32> {
    let n = name.to_ascii_uppercase();
    let n = n.strip_prefix("CAP_").unwrap_or(&n);
    CAP_NAMES.iter().position(|c| *c == n).map(|i| i as u32)
}

pub fn cap_names() -> impl Iterator<Item = String> {
    CAP_NAMES.iter().map(|n| format!("CAP_{n}"))
}

fn cap_mask(set: Option<&std::collections::HashSet<Capability>>) -> u64 {
    let mut m = 0;
    for c in set.into_iter().flatten() {
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match cap_number(&name) {
            Some(n) => m |= 1 << n,
            None => tracing::warn!("capability {name} is unknown to the sandbox: left out"),
        }
    }
    m
}

/// effective, permitted, inheritable, bounding, ambient.
pub fn capabilities(c: Option<&LinuxCapabilities>) -> Option<[u64; 5]> {
    let c = c?;
    Some([
        cap_mask(c.effective().as_ref()),
        cap_mask(c.permitted().as_ref()),
        cap_mask(c.inheritable().as_ref()),
        cap_mask(c.bounding().as_ref()),
        cap_mask(c.ambient().as_ref()),
    ])
}

/// Reads `bundle/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, String> {
    let p = bundle.join("config.json");
    if !p.exists() {
        return Err(format!(
            "{}: no such file (is --bundle the directory holding config.json?)",
            p.display()
        ));
    }
    Spec::load(&p).map_err(|e| format!("reading {}: {e}", p.display()))
}

/// `RLIMIT_*` number of an OCI rlimit type.
fn rlimit_number(t: PosixRlimitType) -> u32 {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// The control protocol's form of an OCI `process`.
pub fn process_spec(p: &Process) -> sentry::control::ProcessSpec {
    let user = p.user();
    sentry::control::ProcessSpec {
        args: p.args().clone().unwrap_or_default(),
        env: p.env().clone().unwrap_or_default(),
        cwd: p.cwd().to_string_lossy().into_owned(),
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        rlimits: p
            .rlimits()
            .iter()
            .flatten()
            .map(|r| (rlimit_number(r.typ()), r.soft(), r.hard()))
            .collect(),
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        capabilities: capabilities(p.capabilities().as_ref()),
        terminal: p.terminal().unwrap_or(false),
        oom_score_adj: p.oom_score_adj(),
        path: None,
        host_pid: None,
        seccomp: None,
    }
}

/// The gofer's exports and the sentry's tree for a container.
pub struct Tree {
    pub root: PathBuf,
    pub root_readonly: bool,
    /// Bind mounts for the gofer (their index + 1 is their export).
    pub binds: Vec<gofer::spawn::BindMount>,
    pub tree: sentry::OciTree,
}

/// Splits mount options into the mount's flags, whether it is a bind,
/// and the file system's own options.
fn mount_options(opts: &[String]) -> (MountFlags, bool, Vec<String>) {
    let mut f = MountFlags::default();
    let mut bind = false;
    let mut data = Vec::new();
    for o in opts {
        match o.as_str() {
            "ro" => f.readonly = true,
            "rw" => f.readonly = false,
            "nosuid" => f.nosuid = true,
            "suid" => f.nosuid = false,
            "nodev" => f.nodev = true,
            "dev" => f.nodev = false,
            "noexec" => f.noexec = true,
            "exec" => f.noexec = false,
            "bind" | "rbind" => bind = true,
            // Propagation, access times and the like: nothing in the
            // sandbox propagates, and times are the sentry's.
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" | "relatime" | "norelatime" | "strictatime" | "nostrictatime"
            | "noatime" | "atime" | "nodiratime" | "diratime" | "sync" | "async" | "dirsync"
            | "remount" | "mand" | "nomand" | "lazytime" | "nolazytime" | "silent" | "loud"
            | "tmpcopyup" | "notmpcopyup" | "rro" | "rrw" | "idmap" | "ridmap" => {
                if o == "rro" {
                    f.readonly = true;
                }
            }
            other => data.push(other.to_string()),
        }
    }
    (f, bind, data)
}

/// The mounts and paths of `spec`, for the gofer and the sentry.
pub fn tree(spec: &Spec, bundle: &Path) -> Result<Tree, String> {
    let root = spec
        .root()
        .as_ref()
        .ok_or("config.json has no root: the container needs a root file system")?;
    let mut root_path = root.path().clone();
    if root_path.is_relative() {
        root_path = bundle.join(root_path);
    }
    let root_path = std::fs::canonicalize(&root_path)
        .map_err(|e| format!("the root file system {}: {e}", root_path.display()))?;
    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    for m in spec.mounts().iter().flatten() {
        if let Some(spec) = mount_spec(m, bundle, &mut binds)? {
            mounts.push(spec);
        }
    }
    let linux = spec.linux().as_ref();
    Ok(Tree {
        root: root_path,
        root_readonly: root.readonly().unwrap_or(false),
        binds,
        tree: sentry::OciTree {
            root_readonly: root.readonly().unwrap_or(false),
            mounts,
            masked_paths: linux
                .and_then(|l| l.masked_paths().clone())
                .unwrap_or_default(),
            readonly_paths: linux
                .and_then(|l| l.readonly_paths().clone())
                .unwrap_or_default(),
        },
    })
}

fn mount_spec(
    m: &Mount,
    bundle: &Path,
    binds: &mut Vec<gofer::spawn::BindMount>,
) -> Result<Option<sentry::MountSpec>, String> {
    let dest = m.destination().to_string_lossy().into_owned();
    if !dest.starts_with('/') {
        return Err(format!("mount destination {dest:?} is not absolute"));
    }
    let (flags, bind, data) = mount_options(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().clone().unwrap_or_default();
    if bind || typ == "bind" {
        let mut src = m
            .source()
            .clone()
            .ok_or_else(|| format!("bind mount on {dest} without a source"))?;
        if src.is_relative() {
            src = bundle.join(src);
        }
        let host = std::fs::canonicalize(&src)
            .map_err(|e| format!("bind mount source {} (for {dest}): {e}", src.display()))?;
        // Device nodes of the host are never passed in: the sandbox has
        // its own /dev.
        if host.starts_with("/dev") && host != Path::new("/dev/shm") {
            tracing::warn!(
                "bind mount of host device path {} on {dest} left out: the sandbox has its own \
                 devices",
                host.display()
            );
            return Ok(None);
        }
        binds.push(gofer::spawn::BindMount {
            host,
            guest: dest.clone(),
            read_only: flags.readonly,
        });
        return Ok(Some(sentry::MountSpec {
            destination: dest,
            kind: sentry::MountKind::Bind {
                export: binds.len(),
            },
            flags,
        }));
    }
    let supported = ["tmpfs", "proc", "sysfs", "devpts", "overlay", "mqueue"];
    if !supported.contains(&typ.as_str()) {
        let why = match typ.as_str() {
            "cgroup" | "cgroup2" => "the sandbox has no cgroup file system yet",
            _ => "the sandbox does not implement this file system",
        };
        tracing::warn!("mount of type {typ:?} on {dest} left out: {why}");
        return Ok(None);
    }
    Ok(Some(sentry::MountSpec {
        destination: dest,
        kind: sentry::MountKind::Fs {
            fstype: typ,
            source: m
                .source()
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            data: data.join(","),
        },
        flags,
    }))
}

/// Says in the log what in `spec` the sandbox does not apply, and fails
/// for what it must not ignore.
pub fn check_unsupported(spec: &Spec) -> Result<(), String> {
    if let Some(p) = spec.process() {
        if p.apparmor_profile().is_some() {
            tracing::warn!("process.apparmorProfile is not applied: the sandbox has no AppArmor");
        }
        if p.selinux_label().is_some() {
            tracing::warn!("process.selinuxLabel is not applied: the sandbox has no SELinux");
        }
        if p.io_priority().is_some() {
            tracing::warn!("process.ioPriority is not applied");
        }
        if p.scheduler().is_some() {
            tracing::warn!("process.scheduler is not applied");
        }
    }
    if let Some(l) = spec.linux() {
        if l.intel_rdt().is_some() {
            tracing::warn!("linux.intelRdt is not applied");
        }
        if l.mount_label().is_some() {
            tracing::warn!("linux.mountLabel is not applied: the sandbox has no SELinux");
        }
        if l.uid_mappings().is_some() || l.gid_mappings().is_some() {
            tracing::warn!(
                "linux.uidMappings/gidMappings: the container's ids are the sandbox's own, not \
                 mapped to host ids"
            );
        }
        for d in l.devices().iter().flatten() {
            let p = d.path().to_string_lossy();
            let provided = [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty",
            ];
            if !provided.contains(&p.as_ref()) {
                tracing::warn!(
                    "device {p} ({:?} {}:{}) is not provided: the sandbox has only its own \
                     devices",
                    d.typ(),
                    d.major(),
                    d.minor()
                );
            }
        }
        for (k, _) in l.sysctl().iter().flatten() {
            tracing::warn!("linux.sysctl {k} is not applied");
        }
        if l.personality().is_some() {
            tracing::warn!("linux.personality is not applied");
        }
    }
    Ok(())
}
