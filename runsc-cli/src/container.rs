//! A container's state under `--root`: one directory per container
//! holding `state.json` (written to a temporary name and renamed, so a
//! reader never sees half of it), a lock file that serializes commands on
//! the container, and the sandbox's control socket.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a container is, as `runsc state` derives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// The record kept for a container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// The sandbox's host process (the sentry), 0 before it exists.
    pub pid: i32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat` field
    /// 22): a pid reused by another process does not match it.
    pub pid_start: u64,
    pub gofer_pid: i32,
    pub bundle: PathBuf,
    /// The status last recorded by a command (`creating`, `created`,
    /// `running`, `paused`); `stopped` is derived from the process.
    pub status: Status,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// RFC 3339.
    pub created: String,
    /// The container's cgroup (as the cgroup module records it).
    #[serde(default)]
    pub cgroup: Option<serde_json::Value>,
    /// The uid that made it (`list` shows its name).
    #[serde(default)]
    pub owner: u32,
    /// The root file system's path (for `list`).
    #[serde(default)]
    pub rootfs: PathBuf,
    /// Init's exit status, once a waiter learned it.
    #[serde(default)]
    pub exit_status: Option<i32>,
}

/// The default `--root`: `/var/run/runsc` for root, else a directory in
/// the user's runtime directory.
pub fn default_root() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/run/runsc");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("runsc"),
        // SAFETY: geteuid has no preconditions.
        _ => PathBuf::from(format!("/tmp/runsc-{}", unsafe { libc::geteuid() })),
    }
}

/// Container ids as runc accepts them.
pub fn valid_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
        && id != "."
        && id != "..";
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid container id {id:?}: use letters, digits, '_', '+', '-' and '.'"
        ))
    }
}

/// The directory of container `id`.
pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

pub fn control_socket(root: &Path, id: &str) -> PathBuf {
    dir(root, id).join("control.sock")
}

/// A held lock on a container (released when dropped).
pub struct Lock {
    _file: std::fs::File,
}

/// Takes the container's lock, waiting for another command to finish.
pub fn lock(root: &Path, id: &str) -> Result<Lock, String> {
    let path = dir(root, id).join("lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("opening the lock {}: {e}", path.display()))?;
    // A POSIX record lock, which (unlike flock) the sandbox's process
    // does not inherit when it is forked off while the lock is held.
    // SAFETY: all-zero is a valid flock (whole file).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    loop {
        // SAFETY: F_SETLKW on our own open file with a valid flock.
        if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLKW, &fl) } == 0 {
            return Ok(Lock { _file: f });
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(format!("locking {}: {e}", path.display()));
        }
    }
}

/// Takes the lock of a container that must exist.
pub fn lock_existing(root: &Path, id: &str) -> Result<Lock, String> {
    valid_id(id)?;
    if !dir(root, id).join("state.json").exists() {
        return Err(format!("container {id} does not exist"));
    }
    lock(root, id)
}

/// Makes the container's directory; fails if the id is taken.
pub fn make_dir(root: &Path, id: &str) -> Result<PathBuf, String> {
    valid_id(id)?;
    std::fs::create_dir_all(root)
        .map_err(|e| format!("making the state directory {}: {e}", root.display()))?;
    let d = dir(root, id);
    match std::fs::create_dir(&d) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(format!("container with id exists: {id}"));
        }
        Err(e) => return Err(format!("making {}: {e}", d.display())),
    }
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700));
    Ok(d)
}

impl State {
    /// Reads container `id`'s record.
    pub fn load(root: &Path, id: &str) -> Result<State, String> {
        let p = dir(root, id).join("state.json");
        let data = match std::fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!("container {id} does not exist"));
            }
            Err(e) => return Err(format!("reading {}: {e}", p.display())),
        };
        serde_json::from_slice(&data).map_err(|e| format!("the state file {}: {e}", p.display()))
    }

    /// Writes the record atomically.
    pub fn save(&self, root: &Path) -> Result<(), String> {
        let d = dir(root, &self.id);
        let tmp = d.join("state.json.tmp");
        let data = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        let mut f =
            std::fs::File::create(&tmp).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        f.write_all(&data)
            .and_then(|_| f.sync_data())
            .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, d.join("state.json"))
            .map_err(|e| format!("renaming {}: {e}", tmp.display()))
    }

    /// The container's status now: what was recorded, unless its
    /// process has gone (exited, a zombie, or a different process with
    /// the same pid).
    pub fn status(&self) -> Status {
        if self.pid <= 0 {
            return if self.status == Status::Creating {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        match process_start(self.pid) {
            Some((start, state)) if start == self.pid_start && state != 'Z' && state != 'X' => {
                self.status
            }
            _ => Status::Stopped,
        }
    }

    /// Whether the sandbox's process is still there (possibly a zombie
    /// its parent has not reaped).
    pub fn process_alive(&self) -> bool {
        self.pid > 0
            && process_start(self.pid).is_some_and(|(s, st)| s == self.pid_start && st != 'Z')
    }

    /// The runtime-spec state object.
    pub fn to_oci(&self) -> serde_json::Value {
        let status = self.status();
        let mut v = serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "status": status.as_str(),
            "pid": if status == Status::Stopped { 0 } else { self.pid },
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": owner_name(self.owner),
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::to_value(&self.annotations).unwrap_or_default();
        }
        v
    }
}

/// The runtime-spec version this runtime implements.
pub const OCI_VERSION: &str = "1.0.2";

/// Start time (clock ticks since boot) and state letter of process
/// `pid`, from `/proc/PID/stat`.
pub fn process_start(pid: i32) -> Option<(u64, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command is in parentheses and may hold spaces: the fields
    // follow the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state))
}

fn owner_name(uid: u32) -> String {
    if let Ok(passwd) = std::fs::read_to_string("/etc/passwd") {
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() > 2 && f[2] == uid.to_string() {
                return f[0].to_string();
            }
        }
    }
    format!("#{uid}")
}

/// The current time as RFC 3339 with nanoseconds (UTC).
pub fn now_rfc3339() -> String {
    crate::logging::rfc3339_now()
}

/// The ids of every container under `root`.
pub fn list(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("state.json").exists())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
