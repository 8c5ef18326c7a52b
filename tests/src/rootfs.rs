//! Root file systems and OCI bundles for the runtime suites: a cached
//! busybox tree, a cached Debian minbase tree, scratch copies of them, and
//! bundles (`config.json` + root) with a runc-spec-like default config.
//!
//! Cached trees live under [`CACHE`], each in a directory named after a
//! hash of what built it, made in a temporary directory and renamed into
//! place, so that test processes building at the same time never see a
//! half-made tree. They are never modified by tests: take a [`copy_of`]
//! one to write into it.

use crate::ScratchDir;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where slow test set-up is cached, outside any checkout.
pub const CACHE: &str = "/var/cache/runsc-tests";

/// Bump when the layout of a cached tree changes.
const LAYOUT: u32 = 1;

/// The host's static busybox (Debian's `busybox-static`).
const BUSYBOX: &str = "/bin/busybox";

/// FNV-1a, 64 bits: a hash that is the same in every build.
fn fnv(data: &[u8], mut h: u64) -> u64 {
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

const FNV_INIT: u64 = 0xcbf2_9ce4_8422_2325;

/// Makes `dir` (under [`CACHE`]) with `fill`, unless it is there: `fill`
/// gets a fresh temporary directory beside it, which is then renamed to
/// `dir`. When another process got there first, its tree is kept.
fn cached(dir: &Path, fill: &dyn Fn(&Path) -> Result<(), String>) -> Result<PathBuf, String> {
    if dir.is_dir() {
        return Ok(dir.to_path_buf());
    }
    std::fs::create_dir_all(CACHE).map_err(|e| format!("creating {CACHE}: {e}"))?;
    remove_stale(dir);
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let tmp = PathBuf::from(format!("{}.tmp{}-{seq}", dir.display(), std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if std::fs::rename(&tmp, dir).is_err() {
        // Someone else's rename won (the target exists and is not empty).
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.is_dir() {
            return Err(format!("could not move {} into place", tmp.display()));
        }
    }
    Ok(dir.to_path_buf())
}

/// Removes the temporary directories of `dir` left by builders that died
/// (`DIR.tmpPID-SEQ` with no process PID).
fn remove_stale(dir: &Path) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return;
    };
    let prefix = format!("{}.tmp", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = n
            .strip_prefix(&prefix)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

fn mkdir(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

/// The users every test rootfs has.
pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
     user:x:1000:1000:user:/home/user:/bin/sh\n\
     nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

/// The groups every test rootfs has.
pub const GROUP: &str = "root:x:0:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n";

fn fill_busybox(root: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    for (d, mode) in [
        ("bin", 0o755),
        ("sbin", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("etc", 0o755),
        ("root", 0o700),
        ("home/user", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("tmp", 0o1777),
        ("var/tmp", 0o1777),
    ] {
        mkdir(&root.join(d), mode)?;
    }
    let bb = root.join("bin/busybox");
    std::fs::copy(BUSYBOX, &bb).map_err(|e| format!("copying {BUSYBOX}: {e}"))?;
    std::fs::set_permissions(&bb, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {}: {e}", bb.display()))?;
    let list = Command::new(BUSYBOX)
        .arg("--list-full")
        .output()
        .map_err(|e| format!("running {BUSYBOX} --list-full: {e}"))?;
    if !list.status.success() {
        return Err(format!("{BUSYBOX} --list-full failed"));
    }
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "bin/busybox" {
            continue;
        }
        let link = root.join(applet);
        if link.symlink_metadata().is_ok() {
            continue;
        }
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        std::os::unix::fs::symlink("/bin/busybox", &link)
            .map_err(|e| format!("linking {}: {e}", link.display()))?;
    }
    write(&root.join("etc/passwd"), PASSWD)?;
    write(&root.join("etc/group"), GROUP)?;
    write(&root.join("etc/hostname"), "busybox\n")?;
    write(&root.join("etc/hosts"), "127.0.0.1\tlocalhost\n")?;
    write(&root.join("etc/resolv.conf"), "")?;
    Ok(())
}

/// The cached busybox rootfs: `/bin/busybox` from busybox-static, every
/// applet of `busybox --list-full` linked to it, `etc/passwd` (root,
/// `user` 1000, `nobody` 65534), `etc/group`, `tmp` 1777, `root`, `proc`,
/// `sys`, `dev`. Never modified: write into a [`copy_of`] it.
pub fn busybox() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(build_busybox).clone()
}

fn build_busybox() -> PathBuf {
    let bin = std::fs::read(BUSYBOX).unwrap_or_else(|e| {
        panic!("{BUSYBOX} is missing ({e}): install the Debian package busybox-static")
    });
    let mut h = fnv(&bin, FNV_INIT);
    h = fnv(&LAYOUT.to_le_bytes(), h);
    h = fnv(PASSWD.as_bytes(), h);
    h = fnv(GROUP.as_bytes(), h);
    let dir = Path::new(CACHE).join(format!("busybox-{h:016x}"));
    cached(&dir, &fill_busybox).unwrap_or_else(|e| panic!("building the busybox rootfs: {e}"))
}

/// Whether busybox-static is installed (else [`busybox`] panics); prints
/// why not.
pub fn have_busybox() -> bool {
    let ok = Path::new(BUSYBOX).is_file();
    if !ok {
        eprintln!("skipped: {BUSYBOX} is missing (Debian package busybox-static)");
    }
    ok
}

/// A scratch copy of `rootfs` (symlinks, modes and owners kept), removed
/// when dropped. Its root is `.0`.
pub fn copy_of(rootfs: &Path, tag: &str) -> ScratchDir {
    let dir = ScratchDir::new(tag);
    let out = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", rootfs.display()))
        .arg(&dir.0)
        .output()
        .expect("running cp");
    assert!(
        out.status.success(),
        "cp -a {} {} failed: {}",
        rootfs.display(),
        dir.0.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The Debian mirror apt uses (first `deb` line or `URIs:` of a deb822
/// source not for security updates); Debian's own when none is found.
fn debian_mirror() -> String {
    let mut texts = Vec::new();
    if let Ok(t) = std::fs::read_to_string("/etc/apt/sources.list") {
        texts.push(t);
    }
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut names: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        names.sort();
        for p in names {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext == "list" || ext == "sources" {
                if let Ok(t) = std::fs::read_to_string(&p) {
                    texts.push(t);
                }
            }
        }
    }
    for t in &texts {
        for line in t.lines() {
            let line = line.trim();
            let words: Vec<&str> = line.split_whitespace().collect();
            let uri = match words.as_slice() {
                ["deb", rest @ ..] => rest.iter().find(|w| w.contains("://")).copied(),
                ["URIs:", uri, ..] => Some(*uri),
                _ => None,
            };
            if let Some(uri) = uri {
                if !uri.contains("security") && uri.starts_with("http") {
                    return uri.to_string();
                }
            }
        }
    }
    "http://deb.debian.org/debian".to_string()
}

/// The cached `debootstrap --variant=minbase bookworm` tree (about 35 s
/// and 206 MB the first time); None, with a message, when debootstrap is
/// not installed or fails. Never modified: bundles use it read-only.
pub fn debian_minbase() -> Option<PathBuf> {
    let version = match Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "debootstrap"])
        .output()
    {
        Ok(o) if o.status.success() && !o.stdout.is_empty() => {
            String::from_utf8_lossy(&o.stdout).into_owned()
        }
        _ => {
            eprintln!("skipped: debootstrap is not installed (Debian package debootstrap)");
            return None;
        }
    };
    let mirror = debian_mirror();
    let mut h = fnv(version.as_bytes(), FNV_INIT);
    h = fnv(mirror.as_bytes(), h);
    h = fnv(&LAYOUT.to_le_bytes(), h);
    let dir = Path::new(CACHE).join(format!("debian-bookworm-minbase-{h:016x}"));
    let fill = |tmp: &Path| {
        let out = Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(tmp)
            .arg(&mirror)
            .output()
            .map_err(|e| format!("running debootstrap: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "debootstrap failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    };
    match cached(&dir, &fill) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipped: no Debian rootfs: {e}");
            None
        }
    }
}

/// A runc-spec-like `config.json` running `args`: terminal false, the
/// environment, capabilities, rlimit, mounts, masked and read-only paths
/// and namespaces (pid, network, ipc, uts, mount) of `runc spec`, hostname
/// `runc`; the root is writable (runc's default has it read-only) and its
/// path is filled in by [`bundle`].
pub fn default_config(args: &[&str]) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// A bundle directory (removed when dropped) holding `config` as
/// `config.json`, with `root.path` set to `rootfs` (absolute; the tree is
/// used in place, not copied: pass a [`copy_of`] one when the container
/// may write to it or its mounts need new mount points).
pub fn bundle(rootfs: &Path, mut config: Value) -> ScratchDir {
    let dir = ScratchDir::new("bundle");
    let root = std::fs::canonicalize(rootfs)
        .unwrap_or_else(|e| panic!("rootfs {}: {e}", rootfs.display()));
    config["root"]["path"] = json!(root.to_string_lossy());
    write_config(&dir.0, &config);
    dir
}

/// Writes `config` as `BUNDLE/config.json`.
pub fn write_config(bundle: &Path, config: &Value) {
    let text = serde_json::to_string_pretty(config).unwrap();
    std::fs::write(bundle.join("config.json"), text).unwrap();
}
