//! The cgroup of a sandbox: its host processes (the sentry, the gofer and
//! the stubs) all go into one cgroup, which carries the container's
//! `linux.resources`.
//!
//! cgroup v1 (one hierarchy a controller: memory, pids, cpu, cpuacct,
//! cpuset, freezer; and in hybrid mode the cgroup2 mount too, which runc
//! also joins) and cgroup v2 (one directory, with the controllers enabled
//! in every parent's `cgroup.subtree_control`). The hierarchies are found
//! in `/proc/self/mountinfo`. The path comes from `linux.cgroupsPath`:
//! absolute (from each hierarchy's root), relative (from runsc's own
//! cgroup; under v2 from its parent, as runc), or with `--systemd-cgroup`
//! `slice:prefix:name`, which is the cgroupfs path systemd would give that
//! unit (`/<slice path>/<prefix>-<name>.scope`; nothing is asked of
//! systemd). The default is `/runsc/<id>` (`system.slice:runsc:<id>` with
//! systemd).
//!
//! Resources are written as runc writes them: memory limit, reservation
//! and swap (v2: `memory.max`, `memory.low`, `memory.swap.max` less the
//! limit), pids, cpu shares (v2: the weight runc converts them to),
//! quota and period (v2: `cpu.max`), realtime runtime and period (v1),
//! cpuset cpus and mems, and v2's `unified` files. Device rules are not
//! needed (the sentry opens no host device for the guest); block I/O,
//! huge pages, network and RDMA limits are not applied, and are logged.
//!
//! A [`Cgroup`] (de)serializes as its directories, for the runtime's
//! state file; [`Cgroup::destroy`] kills what is left in it, waits until
//! it is empty and removes it from every hierarchy (its parents, which
//! other sandboxes may share, stay).

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

/// The cgroup v1 controllers a sandbox's cgroup is made in.
const V1_CONTROLLERS: [&str; 6] = ["memory", "pids", "cpu", "cpuacct", "cpuset", "freezer"];
/// The cgroup v2 controllers enabled for it.
const V2_CONTROLLERS: [&str; 4] = ["cpuset", "cpu", "memory", "pids"];
/// The key of the cgroup2 directory in [`Cgroup`]'s paths.
const UNIFIED: &str = "unified";
/// How long freezing, killing and removing may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A sandbox's cgroup: its directory in each hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "State", into = "State")]
pub struct Cgroup {
    /// 1 (v1, with the hybrid cgroup2 directory if any) or 2.
    version: u8,
    /// By controller (v1), and [`UNIFIED`] for the cgroup2 directory.
    paths: BTreeMap<String, PathBuf>,
}

/// What a state file holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    version: u8,
    paths: BTreeMap<String, PathBuf>,
}

impl TryFrom<State> for Cgroup {
    type Error = String;
    fn try_from(s: State) -> Result<Cgroup, String> {
        if s.version != 1 && s.version != 2 {
            return Err(format!(
                "cgroup state: unknown cgroup version {}",
                s.version
            ));
        }
        for (k, p) in &s.paths {
            let known = k == UNIFIED || (s.version == 1 && V1_CONTROLLERS.contains(&k.as_str()));
            if !known {
                return Err(format!("cgroup state: unknown hierarchy {k:?}"));
            }
            if !p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
                return Err(format!(
                    "cgroup state: {} is not an absolute path without '..'",
                    p.display()
                ));
            }
        }
        if s.version == 2 && !s.paths.contains_key(UNIFIED) {
            return Err("cgroup state: a cgroup v2 without its directory".into());
        }
        Ok(Cgroup {
            version: s.version,
            paths: s.paths,
        })
    }
}

impl From<Cgroup> for State {
    fn from(c: Cgroup) -> State {
        State {
            version: c.version,
            paths: c.paths,
        }
    }
}

/// What `runc events --stats` reports of a cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CgroupStats {
    pub cpu_usage_ns: u64,
    pub cpu_user_ns: u64,
    pub cpu_system_ns: u64,
    pub memory_usage: u64,
    /// u64::MAX when unlimited.
    pub memory_limit: u64,
    pub memory_max_usage: u64,
    pub pids_current: u64,
    /// 0 when unlimited (as runc reports it).
    pub pids_limit: u64,
}

// ----- Errors -----

/// "what PATH: error (hint)".
fn io_error(what: &str, path: &Path, e: &std::io::Error) -> String {
    let hint = match e.raw_os_error() {
        Some(libc::ENOENT) => {
            "it does not exist: is the controller mounted, and enabled for this cgroup?"
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "runsc must run as root, or in a cgroup delegated to its user"
        }
        Some(libc::EROFS) => {
            "the cgroup file system is mounted read-only (in a container, give runsc a \
             writable /sys/fs/cgroup)"
        }
        Some(libc::EBUSY) => {
            "busy: for a memory limit, the usage is above it; for cgroup v2 controllers, \
             the parent cgroup has processes of its own"
        }
        Some(libc::EINVAL) => "the kernel refused the value",
        Some(libc::ENOSPC) => "no CPUs or memory nodes to run on (check cpuset.cpus and mems)",
        Some(libc::ESRCH) => "no such process",
        _ => "",
    };
    let sep = if hint.is_empty() { "" } else { ": " };
    format!("cgroup: {what} {}: {e}{sep}{hint}", path.display())
}

fn write_file(dir: &Path, file: &str, value: &str) -> Result<(), String> {
    let p = dir.join(file);
    std::fs::write(&p, value).map_err(|e| io_error(&format!("writing {value:?} to"), &p, &e))
}

fn read_file(dir: &Path, file: &str) -> Result<String, String> {
    let p = dir.join(file);
    std::fs::read_to_string(&p).map_err(|e| io_error("reading", &p, &e))
}

/// A file's contents, or None when it does not exist.
fn read_optional(dir: &Path, file: &str) -> Result<Option<String>, String> {
    let p = dir.join(file);
    match std::fs::read_to_string(&p) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("reading", &p, &e)),
    }
}

/// A number, or `max` (as `max_is`).
fn parse_value(s: &str, max_is: u64) -> Result<u64, String> {
    let s = s.trim();
    if s == "max" {
        return Ok(max_is);
    }
    s.parse()
        .map_err(|_| format!("cgroup: unexpected value {s:?}"))
}

/// `key value` lines.
fn parse_keyed(s: &str) -> BTreeMap<&str, u64> {
    s.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k, v.trim().parse().ok()?))
        })
        .collect()
}

// ----- Finding the hierarchies -----

/// A cgroup file system mount.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mount {
    point: PathBuf,
    /// Its root within the hierarchy.
    root: String,
    /// v1: its controllers (and `name=...`); empty for cgroup2.
    controllers: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Mounts {
    v1: Vec<Mount>,
    v2: Option<Mount>,
}

/// mountinfo escapes spaces and such as `\040`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mountinfo(text: &str) -> Mounts {
    let mut m = Mounts::default();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if f.len() < 5 || r.len() < 3 {
            continue;
        }
        let mount = |controllers| Mount {
            point: PathBuf::from(unescape(f[4])),
            root: unescape(f[3]),
            controllers,
        };
        match r[0] {
            "cgroup" => {
                m.v1.push(mount(r[2].split(',').map(str::to_string).collect()))
            }
            // The first cgroup2 mount, or the one at /sys/fs/cgroup.
            "cgroup2" if m.v2.is_none() || f[4] == "/sys/fs/cgroup" => {
                m.v2 = Some(mount(Vec::new()))
            }
            _ => {}
        }
    }
    m
}

/// `/proc/self/cgroup`: v1 paths by controller, and the v2 path.
fn parse_proc_cgroup(text: &str) -> (BTreeMap<String, String>, Option<String>) {
    let mut v1 = BTreeMap::new();
    let mut v2 = None;
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if ctrls.is_empty() {
            v2 = Some(path.to_string());
        } else {
            for c in ctrls.split(',') {
                v1.insert(c.to_string(), path.to_string());
            }
        }
    }
    (v1, v2)
}

/// Where a cgroup goes, below each hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Inner {
    Absolute(String),
    /// From runsc's own cgroup.
    Relative(String),
}

/// systemd's cgroupfs path of a slice: `a-b.slice` -> `/a.slice/a-b.slice`.
fn expand_slice(slice: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "invalid systemd slice {slice:?}: expected a name like \"system.slice\" or \
             \"machine-app.slice\""
        )
    };
    if slice == "-.slice" {
        return Ok(String::new());
    }
    let name = slice.strip_suffix(".slice").ok_or_else(bad)?;
    if name.is_empty()
        || name.contains('/')
        || name.starts_with('-')
        || name.ends_with('-')
        || name.contains("--")
    {
        return Err(bad());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in name.split('-') {
        prefix.push_str(part);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
        prefix.push('-');
    }
    Ok(path)
}

/// The path of a sandbox's cgroup below each hierarchy.
fn inner_path(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<Inner, String> {
    let check = |p: String| -> Result<String, String> {
        if Path::new(&p)
            .components()
            .any(|c| matches!(c, Component::ParentDir))
        {
            return Err(format!("linux.cgroupsPath {p:?} must not contain '..'"));
        }
        Ok(p)
    };
    if systemd {
        let spec = cgroups_path
            .map(str::to_string)
            .unwrap_or_else(|| format!("system.slice:runsc:{id}"));
        let parts: Vec<&str> = spec.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(format!(
                "linux.cgroupsPath {spec:?}: with --systemd-cgroup it must be \
                 \"slice:prefix:name\""
            ));
        };
        if name.is_empty() || name.contains('/') {
            return Err(format!(
                "linux.cgroupsPath {spec:?}: invalid unit name {name:?}"
            ));
        }
        let slice_path = expand_slice(if slice.is_empty() {
            "system.slice"
        } else {
            slice
        })?;
        let unit = if name.ends_with(".slice") {
            name.to_string()
        } else if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        return Ok(Inner::Absolute(check(format!("{slice_path}/{unit}"))?));
    }
    match cgroups_path {
        None => Ok(Inner::Absolute(format!("/runsc/{id}"))),
        Some(p) if p.starts_with('/') => Ok(Inner::Absolute(check(p.to_string())?)),
        Some(p) if p.split(':').count() == 3 => Err(format!(
            "linux.cgroupsPath {p:?} is systemd's \"slice:prefix:name\": run runsc with \
             --systemd-cgroup, or give a path"
        )),
        Some("") => Err("linux.cgroupsPath is empty".into()),
        Some(p) => Ok(Inner::Relative(check(p.to_string())?)),
    }
}

/// `base` + `rel` (which may start with '/').
fn join(base: &Path, rel: &str) -> PathBuf {
    let mut p = base.to_path_buf();
    for c in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
        p.push(c);
    }
    p
}

/// A mount's directory for a path of its hierarchy (`own`, as
/// /proc/self/cgroup shows it), as seen through the mount.
fn through_mount(m: &Mount, own: &str) -> PathBuf {
    let rel = own.strip_prefix(m.root.as_str()).unwrap_or(own);
    join(&m.point, rel)
}

/// Computes the cgroup's directories from the mounts and runsc's own
/// cgroups.
fn plan(mounts: &Mounts, own: &str, inner: &Inner) -> Result<Cgroup, String> {
    let (own_v1, own_v2) = parse_proc_cgroup(own);
    let mut paths = BTreeMap::new();
    let has_v1 = mounts.v1.iter().any(|m| {
        m.controllers
            .iter()
            .any(|c| V1_CONTROLLERS.contains(&c.as_str()))
    });
    if has_v1 {
        for c in V1_CONTROLLERS {
            let Some(m) = mounts
                .v1
                .iter()
                .find(|m| m.controllers.iter().any(|x| x == c))
            else {
                continue;
            };
            let dir = match inner {
                Inner::Absolute(p) => join(&m.point, p),
                Inner::Relative(p) => {
                    let own = own_v1.get(c).map(String::as_str).unwrap_or("/");
                    join(&through_mount(m, own), p)
                }
            };
            paths.insert(c.to_string(), dir);
        }
        if let Some(m) = &mounts.v2 {
            let dir = match inner {
                Inner::Absolute(p) => join(&m.point, p),
                Inner::Relative(p) => join(&through_mount(m, own_v2.as_deref().unwrap_or("/")), p),
            };
            paths.insert(UNIFIED.to_string(), dir);
        }
        return Ok(Cgroup { version: 1, paths });
    }
    let Some(m) = &mounts.v2 else {
        return Err(
            "cgroup: no cgroup file system is mounted (mount cgroup2 on \
                    /sys/fs/cgroup)"
                .into(),
        );
    };
    let dir = match inner {
        Inner::Absolute(p) => join(&m.point, p),
        Inner::Relative(p) => {
            // From the parent of runsc's own cgroup, which (unlike a
            // session's scope) can have controllers enabled for children.
            let own = own_v2.as_deref().unwrap_or("/");
            let parent = Path::new(own)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| "/".into());
            join(&through_mount(m, &parent), p)
        }
    };
    paths.insert(UNIFIED.to_string(), dir);
    Ok(Cgroup { version: 2, paths })
}

// ----- Resources as files to write -----

/// One file to write, in the directory of `hierarchy`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Write {
    hierarchy: &'static str,
    file: String,
    value: String,
}

fn w(hierarchy: &'static str, file: &str, value: impl ToString) -> Write {
    Write {
        hierarchy,
        file: file.to_string(),
        value: value.to_string(),
    }
}

/// runc's conversion of cpu shares (2 to 262144, default 1024) to a cgroup
/// v2 weight (1 to 10000, default 100): a quadratic fit in log2(shares).
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        s if s >= 262_144 => 10_000,
        s => {
            let l = (s as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

/// runc's conversion of the OCI swap limit (memory + swap) to cgroup v2's
/// `memory.swap.max` (swap alone); -1 is unlimited, 0 unset.
pub fn swap_to_v2(swap: i64, memory: i64) -> Result<i64, String> {
    Ok(match (swap, memory) {
        (0, -1) => -1,
        (-1, _) | (0, _) => swap,
        (_, -1) => swap,
        (_, 0) => {
            return Err("linux.resources.memory.swap needs a memory limit under cgroup v2".into())
        }
        (_, m) if m < 0 => return Err(format!("invalid memory limit {m}")),
        (s, m) if s < m => {
            return Err(format!(
                "linux.resources.memory.swap ({s}) is below the memory limit ({m}): it \
                 counts memory and swap together"
            ))
        }
        (s, m) => s - m,
    })
}

/// A v2 limit: -1 is "max".
fn v2_value(v: i64) -> String {
    if v == -1 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// What of `r` is not applied, logged.
fn note_unapplied(r: &LinuxResources) {
    for (set, what) in [
        (r.block_io().is_some(), "blockIO"),
        (
            r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()),
            "hugepageLimits",
        ),
        (r.network().is_some(), "network"),
        (r.rdma().as_ref().is_some_and(|h| !h.is_empty()), "rdma"),
    ] {
        if set {
            tracing::warn!("linux.resources.{what} is not applied by runsc (ignored)");
        }
    }
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        tracing::debug!(
            "linux.resources.devices: not needed, the sentry opens no host device for the \
             container"
        );
    }
}

/// The writes of `r` under cgroup v1. `current_limit` is the memory limit
/// in force (to order the limit and swap writes as the kernel wants them:
/// memory+swap may never be below memory).
fn v1_writes(r: &LinuxResources, current_limit: u64, memsw: bool) -> Result<Vec<Write>, String> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        let limit = m.limit().unwrap_or(0);
        let mut swap = m.swap().unwrap_or(0);
        if limit == -1 && swap == 0 && memsw {
            swap = -1;
        }
        if swap != 0 && !memsw {
            return Err(
                "linux.resources.memory.swap is set but this host does not account \
                        swap (memory.memsw.limit_in_bytes is missing: boot Linux with \
                        swapaccount=1, or drop the swap limit)"
                    .into(),
            );
        }
        let lim = (limit != 0).then(|| w("memory", "memory.limit_in_bytes", limit));
        let sw = (swap != 0).then(|| w("memory", "memory.memsw.limit_in_bytes", swap));
        let swap_first =
            limit != 0 && swap != 0 && (swap == -1 || (current_limit as i128) < swap as i128);
        if swap_first {
            out.extend(sw);
            out.extend(lim);
        } else {
            out.extend(lim);
            out.extend(sw);
        }
        if let Some(res) = m.reservation().filter(|&v| v != 0) {
            out.push(w("memory", "memory.soft_limit_in_bytes", res));
        }
        if let Some(s) = m.swappiness().filter(|&s| s as i64 != -1) {
            if s > 100 {
                return Err(format!(
                    "linux.resources.memory.swappiness {s} is out of range (0 to 100)"
                ));
            }
            out.push(w("memory", "memory.swappiness", s));
        }
        if m.disable_oom_killer() == Some(true) {
            out.push(w("memory", "memory.oom_control", 1));
        }
    }
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            let v = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".into()
            };
            out.push(w("pids", "pids.max", v));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            out.push(w("cpu", "cpu.shares", s));
        }
        if let Some(p) = c.period().filter(|&p| p != 0) {
            out.push(w("cpu", "cpu.cfs_period_us", p));
        }
        if let Some(q) = c.quota().filter(|&q| q != 0) {
            out.push(w("cpu", "cpu.cfs_quota_us", q));
        }
        if let Some(p) = c.realtime_period().filter(|&p| p != 0) {
            out.push(w("cpu", "cpu.rt_period_us", p));
        }
        if let Some(rt) = c.realtime_runtime().filter(|&v| v != 0) {
            out.push(w("cpu", "cpu.rt_runtime_us", rt));
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            out.push(w("cpuset", "cpuset.cpus", cpus));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            out.push(w("cpuset", "cpuset.mems", mems));
        }
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err("linux.resources.unified needs cgroup v2, and this host has cgroup v1".into());
    }
    Ok(out)
}

/// The writes of `r` under cgroup v2.
fn v2_writes(r: &LinuxResources) -> Result<Vec<Write>, String> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        let limit = m.limit().unwrap_or(0);
        let swap = swap_to_v2(m.swap().unwrap_or(0), limit)?;
        if swap != 0 || m.swap().is_some_and(|s| s > 0) {
            out.push(w(UNIFIED, "memory.swap.max", v2_value(swap)));
        }
        if limit != 0 {
            out.push(w(UNIFIED, "memory.max", v2_value(limit)));
        }
        if let Some(res) = m.reservation().filter(|&v| v != 0) {
            out.push(w(UNIFIED, "memory.low", v2_value(res)));
        }
    }
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            out.push(w(UNIFIED, "pids.max", v2_value(p.limit().max(-1))));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            out.push(w(UNIFIED, "cpu.weight", cpu_shares_to_weight(s)));
        }
        let quota = c.quota().unwrap_or(0);
        let period = c.period().unwrap_or(0);
        if quota != 0 || period != 0 {
            let mut v = if quota > 0 {
                quota.to_string()
            } else {
                "max".into()
            };
            if period != 0 {
                v.push_str(&format!(" {period}"));
            }
            out.push(w(UNIFIED, "cpu.max", v));
        }
        if c.realtime_period().is_some() || c.realtime_runtime().is_some() {
            return Err("linux.resources.cpu realtime limits need cgroup v1".into());
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            out.push(w(UNIFIED, "cpuset.cpus", cpus));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            out.push(w(UNIFIED, "cpuset.mems", mems));
        }
    }
    for (k, v) in r.unified().iter().flatten() {
        if k.contains('/') || !k.contains('.') || k.starts_with("cgroup.") {
            return Err(format!(
                "linux.resources.unified: {k:?} is not a controller's file of the cgroup"
            ));
        }
        out.push(w(UNIFIED, k, v));
    }
    Ok(out)
}

// ----- The cgroup -----

impl Cgroup {
    /// Makes the cgroup of sandbox `id` in every hierarchy and applies
    /// `resources`. Nothing is left behind when it fails.
    pub fn create(
        cgroups_path: Option<&str>,
        id: &str,
        systemd: bool,
        resources: Option<&LinuxResources>,
    ) -> Result<Cgroup, String> {
        let inner = inner_path(cgroups_path, id, systemd)?;
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cgroup: reading /proc/self/mountinfo: {e}"))?;
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cgroup: reading /proc/self/cgroup: {e}"))?;
        let cg = plan(&parse_mountinfo(&mountinfo), &own, &inner)?;
        cg.make(resources)?;
        Ok(cg)
    }

    /// Makes the directories and applies `resources`; undoes what it made
    /// when that fails.
    fn make(&self, resources: Option<&LinuxResources>) -> Result<(), String> {
        let mut made = Vec::new();
        let r = self.make_dirs(&mut made).and_then(|()| match resources {
            Some(r) => self.update(r),
            None => Ok(()),
        });
        if r.is_err() {
            for d in made.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
        }
        r
    }

    /// The distinct directories (co-mounted controllers share one).
    fn dirs(&self) -> Vec<&PathBuf> {
        let mut v: Vec<&PathBuf> = self.paths.values().collect();
        v.sort();
        v.dedup();
        v
    }

    fn dir(&self, hierarchy: &str) -> Option<&Path> {
        self.paths.get(hierarchy).map(PathBuf::as_path)
    }

    /// mkdir -p in each hierarchy, noting the directories made; the v1
    /// cpuset levels get their parent's CPUs and memory nodes, the v2
    /// parents enable the controllers for their children.
    fn make_dirs(&self, made: &mut Vec<PathBuf>) -> Result<(), String> {
        for (h, dir) in &self.paths {
            let mut missing = Vec::new();
            let mut p = dir.as_path();
            while !p.exists() {
                missing.push(p.to_path_buf());
                p = p
                    .parent()
                    .ok_or_else(|| format!("cgroup: {} has no root", dir.display()))?;
            }
            let v2 = self.version == 2 && h == UNIFIED;
            if v2 {
                // The existing levels, from the top, enable the
                // controllers for the ones below.
                let mut up = Vec::new();
                let mut q = Some(p);
                while let Some(a) = q.filter(|a| a.join("cgroup.controllers").exists()) {
                    up.push(a);
                    q = a.parent();
                }
                for a in up.iter().rev() {
                    self.enable_controllers(a, dir)?;
                }
            }
            for d in missing.iter().rev() {
                match std::fs::create_dir(d) {
                    Ok(()) => made.push(d.clone()),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io_error("making", d, &e)),
                }
                if v2 {
                    self.enable_controllers(d, dir)?;
                }
            }
            if self.version == 1 && h == "cpuset" {
                self.fill_cpusets(dir)?;
            }
        }
        Ok(())
    }

    /// Enables the controllers that `parent` has for its children, on the
    /// way to `target` (runc's way: all at once, else one by one).
    fn enable_controllers(&self, parent: &Path, target: &Path) -> Result<(), String> {
        if !target.starts_with(parent) || parent == target {
            return Ok(());
        }
        let have = read_file(parent, "cgroup.controllers")?;
        let enabled = read_file(parent, "cgroup.subtree_control")?;
        let want: Vec<&str> = V2_CONTROLLERS
            .iter()
            .copied()
            .filter(|c| have.split_whitespace().any(|x| x == *c))
            .filter(|c| !enabled.split_whitespace().any(|x| x == *c))
            .collect();
        if want.is_empty() {
            return Ok(());
        }
        let all: Vec<String> = want.iter().map(|c| format!("+{c}")).collect();
        if write_file(parent, "cgroup.subtree_control", &all.join(" ")).is_ok() {
            return Ok(());
        }
        for c in want {
            if let Err(e) = write_file(parent, "cgroup.subtree_control", &format!("+{c}")) {
                tracing::debug!("{e}");
            }
        }
        Ok(())
    }

    /// A new cpuset cgroup has no CPUs and no memory nodes: each level
    /// below the root takes its parent's where it has none.
    fn fill_cpusets(&self, dir: &Path) -> Result<(), String> {
        let mut levels = Vec::new();
        let mut p = dir;
        while p.join("cpuset.cpus").exists() {
            levels.push(p);
            match p.parent() {
                Some(q) => p = q,
                None => break,
            }
        }
        // From the top: the hierarchy's root always has both.
        for pair in levels.iter().rev().collect::<Vec<_>>().windows(2) {
            let (parent, child) = (pair[0], pair[1]);
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if read_file(child, f)?.trim().is_empty() {
                    write_file(child, f, read_file(parent, f)?.trim())?;
                }
            }
        }
        Ok(())
    }

    /// Applies `r` (`runsc update --resources`).
    pub fn update(&self, r: &LinuxResources) -> Result<(), String> {
        note_unapplied(r);
        let writes = if self.version == 2 {
            v2_writes(r)?
        } else {
            let mem = self.dir("memory");
            let current = match mem {
                Some(d) => parse_value(&read_file(d, "memory.limit_in_bytes")?, u64::MAX)?,
                None => u64::MAX,
            };
            let memsw = mem.is_some_and(|d| d.join("memory.memsw.limit_in_bytes").exists());
            v1_writes(r, current, memsw)?
        };
        for wr in writes {
            let Some(dir) = self.dir(wr.hierarchy) else {
                return Err(format!(
                    "cgroup: {} cannot be set: this host has no {} controller mounted",
                    wr.file, wr.hierarchy
                ));
            };
            if self.version == 2 && !dir.join(&wr.file).exists() {
                let ctrl = wr.file.split('.').next().unwrap_or("");
                return Err(format!(
                    "cgroup: {} cannot be set: the {ctrl} controller is not enabled for {} \
                     (it is missing from its parent's cgroup.subtree_control; enable it \
                     there, or drop the limit)",
                    wr.file,
                    dir.display()
                ));
            }
            write_file(dir, &wr.file, &wr.value).map_err(|e| {
                if wr.file == "memory.limit_in_bytes" && e.contains("busy") {
                    let usage = read_file(dir, "memory.usage_in_bytes").unwrap_or_default();
                    format!("{e} (usage now {} bytes)", usage.trim())
                } else {
                    e
                }
            })?;
            if wr.file == "cpu.shares" {
                // The kernel clamps them: say so rather than run with
                // other shares than asked.
                let got = read_file(dir, "cpu.shares")?;
                if got.trim() != wr.value {
                    return Err(format!(
                        "cgroup: cpu shares {} are out of the kernel's range (it set {})",
                        wr.value,
                        got.trim()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Moves process `pid` (all its threads) into the cgroup, in every
    /// hierarchy.
    pub fn add(&self, pid: i32) -> Result<(), String> {
        for d in self.dirs() {
            write_file(d, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// What `runc events --stats` reports.
    pub fn stats(&self) -> Result<CgroupStats, String> {
        let mut s = CgroupStats::default();
        let num = |d: &Path, f: &str, max_is: u64| -> Result<u64, String> {
            match read_optional(d, f)? {
                Some(v) => parse_value(&v, max_is),
                None => Ok(0),
            }
        };
        if self.version == 2 {
            let d = self.dir(UNIFIED).expect("a v2 cgroup has its directory");
            if let Some(cpu) = read_optional(d, "cpu.stat")? {
                let k = parse_keyed(&cpu);
                let us = |key: &str| k.get(key).copied().unwrap_or(0) * 1000;
                s.cpu_usage_ns = us("usage_usec");
                s.cpu_user_ns = us("user_usec");
                s.cpu_system_ns = us("system_usec");
            }
            s.memory_usage = num(d, "memory.current", u64::MAX)?;
            s.memory_limit = num(d, "memory.max", u64::MAX)?;
            s.memory_max_usage = num(d, "memory.peak", u64::MAX)?;
            s.pids_current = num(d, "pids.current", 0)?;
            s.pids_limit = num(d, "pids.max", 0)?;
            return Ok(s);
        }
        if let Some(d) = self.dir("cpuacct") {
            s.cpu_usage_ns = num(d, "cpuacct.usage", 0)?;
            if let Some(st) = read_optional(d, "cpuacct.stat")? {
                // In USER_HZ ticks.
                // SAFETY: sysconf has no preconditions.
                let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
                let k = parse_keyed(&st);
                s.cpu_user_ns = k.get("user").copied().unwrap_or(0) * 1_000_000_000 / hz;
                s.cpu_system_ns = k.get("system").copied().unwrap_or(0) * 1_000_000_000 / hz;
            }
        }
        if let Some(d) = self.dir("memory") {
            s.memory_usage = num(d, "memory.usage_in_bytes", u64::MAX)?;
            s.memory_limit = num(d, "memory.limit_in_bytes", u64::MAX)?;
            s.memory_max_usage = num(d, "memory.max_usage_in_bytes", u64::MAX)?;
        }
        if let Some(d) = self.dir("pids") {
            s.pids_current = num(d, "pids.current", 0)?;
            s.pids_limit = num(d, "pids.max", 0)?;
        }
        Ok(s)
    }

    /// Stops every process of the cgroup (v1 freezer, v2 cgroup.freeze)
    /// and waits until they are. (`runsc pause` freezes the guest in the
    /// sentry instead, which must go on answering its control socket.)
    #[allow(dead_code)]
    pub fn freeze(&self) -> Result<(), String> {
        self.set_frozen(true)
    }

    /// Lets them run again.
    #[allow(dead_code)]
    pub fn thaw(&self) -> Result<(), String> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), String> {
        let start = Instant::now();
        if self.version == 1 {
            let d = self.dir("freezer").ok_or(
                "cgroup: this host has no freezer hierarchy mounted (mount the cgroup v1 \
                 freezer controller)",
            )?;
            let want = if frozen { "FROZEN" } else { "THAWED" };
            loop {
                write_file(d, "freezer.state", want)?;
                if read_file(d, "freezer.state")?.trim() == want {
                    return Ok(());
                }
                if start.elapsed() > TIMEOUT {
                    return Err(format!(
                        "cgroup: {} did not become {want} within {TIMEOUT:?} (a process in \
                         uninterruptible sleep?)",
                        d.display()
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let d = self.dir(UNIFIED).expect("a v2 cgroup has its directory");
        write_file(d, "cgroup.freeze", if frozen { "1" } else { "0" })?;
        let want = if frozen { 1 } else { 0 };
        loop {
            let ev = read_file(d, "cgroup.events")?;
            if parse_keyed(&ev).get("frozen") == Some(&want) {
                return Ok(());
            }
            if start.elapsed() > TIMEOUT {
                return Err(format!(
                    "cgroup: {} did not become {} within {TIMEOUT:?}",
                    d.display(),
                    if frozen { "frozen" } else { "thawed" }
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether a directory of the cgroup is still there.
    fn exists(&self) -> bool {
        self.dirs().iter().any(|d| d.exists())
    }

    /// The processes in the cgroup and in cgroups below it, in every
    /// hierarchy.
    fn procs(&self) -> Result<Vec<i32>, String> {
        fn walk(d: &Path, out: &mut Vec<i32>) -> Result<(), String> {
            let Some(text) = read_optional(d, "cgroup.procs")? else {
                return Ok(());
            };
            out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            let entries = match std::fs::read_dir(d) {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io_error("listing", d, &e)),
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out)?;
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        for d in self.dirs() {
            walk(d, &mut out)?;
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Kills every process left in the cgroup, waits until it is empty and
    /// removes it (and the cgroups below it) from every hierarchy. Done
    /// when it is already gone.
    pub fn destroy(&self) -> Result<(), String> {
        if !self.exists() {
            return Ok(());
        }
        let me = std::process::id() as i32;
        let start = Instant::now();
        loop {
            let pids = self.procs()?;
            if pids.is_empty() {
                break;
            }
            if pids.contains(&me) {
                return Err(format!(
                    "cgroup: runsc itself (pid {me}) is in the cgroup it was asked to remove"
                ));
            }
            if start.elapsed() > TIMEOUT {
                return Err(format!(
                    "cgroup: processes {pids:?} are still in {} {TIMEOUT:?} after SIGKILL \
                     (in uninterruptible sleep?); try again later",
                    self.dirs()[0].display()
                ));
            }
            // cgroup v2's kill, which no fork escapes; else frozen, so
            // that none forks between the list and the kill.
            let killed = self.dir(UNIFIED).is_some_and(|d| {
                d.join("cgroup.kill").exists() && write_file(d, "cgroup.kill", "1").is_ok()
            });
            let freezer = self.dir("freezer").filter(|_| !killed);
            let frozen = freezer.is_some_and(|d| write_file(d, "freezer.state", "FROZEN").is_ok());
            for p in &pids {
                // SAFETY: kill has no memory-safety preconditions; the pids
                // are the cgroup's processes, never runsc itself.
                unsafe { libc::kill(*p, libc::SIGKILL) };
            }
            if let Some(d) = freezer.filter(|_| frozen) {
                let _ = write_file(d, "freezer.state", "THAWED");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for d in self.dirs() {
            remove_tree(d, start)?;
        }
        Ok(())
    }
}

/// rmdir of a cgroup and the cgroups below it, children first; a cgroup
/// just emptied can be busy for a moment.
fn remove_tree(d: &Path, start: Instant) -> Result<(), String> {
    let entries = match std::fs::read_dir(d) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error("listing", d, &e)),
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path(), start)?;
        }
    }
    loop {
        match std::fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < TIMEOUT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(io_error("removing", d, &e)),
        }
    }
}

impl Cgroup {
    /// The cgroup a state file recorded (its serialized form, JSON).
    pub fn load(json: &str) -> Result<Cgroup, String> {
        serde_json::from_str(json).map_err(|e| format!("cgroup state: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This kind of machine: cgroup v1 with a cgroup2 mount beside.
    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 /outer /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:40 / /mnt/with\\040space rw - ext4 /dev/sda1 rw
";
    const HYBRID_OWN: &str = "\
9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/outer/job
3:cpuset:/
1:cpu,cpuacct:/user.slice
0::/user.slice/session-1.scope
";
    const V2: &str = "\
24 1 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
25 1 0:23 / /sys rw - sysfs sysfs rw
";

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn mountinfo_and_own_cgroups() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(m.v1.len(), 6);
        assert_eq!(m.v1[0].point, p("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(m.v1[0].controllers, ["rw", "cpu", "cpuacct"]);
        assert_eq!(m.v1[2].root, "/outer");
        assert_eq!(m.v2.as_ref().unwrap().point, p("/sys/fs/cgroup/unified"));
        assert_eq!(unescape("/mnt/with\\040space"), "/mnt/with space");
        let (v1, v2) = parse_proc_cgroup(HYBRID_OWN);
        assert_eq!(v1["cpuacct"], "/user.slice");
        assert_eq!(v1["memory"], "/outer/job");
        assert_eq!(v2.as_deref(), Some("/user.slice/session-1.scope"));
        let m = parse_mountinfo(V2);
        assert!(m.v1.is_empty());
        assert_eq!(m.v2.unwrap().point, p("/sys/fs/cgroup"));
    }

    #[test]
    fn paths_in_every_hierarchy() {
        let m = parse_mountinfo(HYBRID);
        let inner = inner_path(None, "abc", false).unwrap();
        assert_eq!(inner, Inner::Absolute("/runsc/abc".into()));
        let cg = plan(&m, HYBRID_OWN, &inner).unwrap();
        assert_eq!(cg.version, 1);
        let want: BTreeMap<String, PathBuf> = [
            ("cpu", "/sys/fs/cgroup/cpu,cpuacct/runsc/abc"),
            ("cpuacct", "/sys/fs/cgroup/cpu,cpuacct/runsc/abc"),
            ("cpuset", "/sys/fs/cgroup/cpuset/runsc/abc"),
            ("freezer", "/sys/fs/cgroup/freezer/runsc/abc"),
            ("memory", "/sys/fs/cgroup/memory/runsc/abc"),
            ("pids", "/sys/fs/cgroup/pids/runsc/abc"),
            ("unified", "/sys/fs/cgroup/unified/runsc/abc"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), p(v)))
        .collect();
        assert_eq!(cg.paths, want);
        // Co-mounted controllers share a directory.
        assert_eq!(cg.dirs().len(), 6);
        // Relative: from runsc's own cgroup, as seen through each mount.
        let rel = inner_path(Some("box/1"), "abc", false).unwrap();
        let cg = plan(&m, HYBRID_OWN, &rel).unwrap();
        assert_eq!(cg.paths["memory"], p("/sys/fs/cgroup/memory/job/box/1"));
        assert_eq!(
            cg.paths["cpu"],
            p("/sys/fs/cgroup/cpu,cpuacct/user.slice/box/1")
        );
        assert_eq!(cg.paths["pids"], p("/sys/fs/cgroup/pids/box/1"));
        // cgroup v2: one directory; relative from the parent of runsc's.
        let m2 = parse_mountinfo(V2);
        let cg = plan(&m2, "0::/user.slice/session-1.scope\n", &rel).unwrap();
        assert_eq!(cg.version, 2);
        assert_eq!(
            cg.paths.into_iter().collect::<Vec<_>>(),
            [("unified".to_string(), p("/sys/fs/cgroup/user.slice/box/1"))]
        );
        let abs = inner_path(Some("/a/b"), "x", false).unwrap();
        let cg = plan(&m2, "0::/\n", &abs).unwrap();
        assert_eq!(cg.paths["unified"], p("/sys/fs/cgroup/a/b"));
        assert!(plan(&Mounts::default(), "", &abs).is_err());
    }

    #[test]
    fn systemd_paths() {
        let sd = |p: Option<&str>| inner_path(p, "abc", true);
        assert_eq!(
            sd(None).unwrap(),
            Inner::Absolute("/system.slice/runsc-abc.scope".into())
        );
        assert_eq!(
            sd(Some("machine-app-web.slice:libpod:x1")).unwrap(),
            Inner::Absolute(
                "/machine.slice/machine-app.slice/machine-app-web.slice/libpod-x1.scope".into()
            )
        );
        assert_eq!(
            sd(Some(":crio:x")).unwrap(),
            Inner::Absolute("/system.slice/crio-x.scope".into())
        );
        assert_eq!(
            sd(Some("-.slice::x")).unwrap(),
            Inner::Absolute("/x.scope".into())
        );
        assert_eq!(
            sd(Some("user.slice:p:sub.slice")).unwrap(),
            Inner::Absolute("/user.slice/sub.slice".into())
        );
        for bad in [
            "system.slice",
            "a:b",
            "bad:p:x",
            "a--b.slice:p:x",
            "-a.slice:p:x",
            "s.slice:p:",
        ] {
            assert!(sd(Some(bad)).is_err(), "{bad}");
        }
        // The systemd form without --systemd-cgroup, and '..'.
        let e = inner_path(Some("system.slice:p:x"), "i", false).unwrap_err();
        assert!(e.contains("--systemd-cgroup"), "{e}");
        assert!(inner_path(Some("/a/../b"), "i", false).is_err());
        assert!(inner_path(Some("a/.."), "i", false).is_err());
        assert_eq!(
            inner_path(Some("rel/x"), "i", false).unwrap(),
            Inner::Relative("rel/x".into())
        );
    }

    #[test]
    fn conversions_are_runcs() {
        assert_eq!(cpu_shares_to_weight(0), 0);
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 100);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        assert_eq!(cpu_shares_to_weight(512), 59);
        assert_eq!(swap_to_v2(0, -1).unwrap(), -1);
        assert_eq!(swap_to_v2(-1, 100).unwrap(), -1);
        assert_eq!(swap_to_v2(0, 100).unwrap(), 0);
        assert_eq!(swap_to_v2(300, 100).unwrap(), 200);
        assert_eq!(swap_to_v2(100, 100).unwrap(), 0);
        assert_eq!(swap_to_v2(300, -1).unwrap(), 300);
        assert!(swap_to_v2(50, 100).is_err());
        assert!(swap_to_v2(50, 0).is_err());
    }

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn files(ws: &[Write]) -> Vec<(&str, &str, &str)> {
        ws.iter()
            .map(|w| (w.hierarchy, w.file.as_str(), w.value.as_str()))
            .collect()
    }

    #[test]
    fn v1_writes() {
        let r = resources(
            r#"{"memory": {"limit": 1000, "reservation": 500, "swap": 3000},
                "pids": {"limit": 20},
                "cpu": {"shares": 512, "quota": 50000, "period": 100000,
                        "cpus": "0-1", "mems": "0"}}"#,
        );
        // Raising: the swap limit first (memory+swap never below memory).
        let ws = super::v1_writes(&r, 500, true).unwrap();
        assert_eq!(
            files(&ws),
            [
                ("memory", "memory.memsw.limit_in_bytes", "3000"),
                ("memory", "memory.limit_in_bytes", "1000"),
                ("memory", "memory.soft_limit_in_bytes", "500"),
                ("pids", "pids.max", "20"),
                ("cpu", "cpu.shares", "512"),
                ("cpu", "cpu.cfs_period_us", "100000"),
                ("cpu", "cpu.cfs_quota_us", "50000"),
                ("cpuset", "cpuset.cpus", "0-1"),
                ("cpuset", "cpuset.mems", "0"),
            ]
        );
        // Lowering below the current limit: memory first.
        let ws = super::v1_writes(&r, u64::MAX, true).unwrap();
        assert_eq!(ws[0].file, "memory.limit_in_bytes");
        // Unlimited memory unlimits swap; -1 pids is max.
        let r = resources(r#"{"memory": {"limit": -1}, "pids": {"limit": -1}}"#);
        let ws = super::v1_writes(&r, 100, true).unwrap();
        assert_eq!(
            files(&ws),
            [
                ("memory", "memory.memsw.limit_in_bytes", "-1"),
                ("memory", "memory.limit_in_bytes", "-1"),
                ("pids", "pids.max", "max"),
            ]
        );
        // Swap without swap accounting, v2-only fields: clear errors.
        let r = resources(r#"{"memory": {"limit": 10, "swap": 20}}"#);
        let e = super::v1_writes(&r, 0, false).unwrap_err();
        assert!(e.contains("swapaccount=1"), "{e}");
        let r = resources(r#"{"unified": {"memory.high": "5"}}"#);
        assert!(super::v1_writes(&r, 0, true)
            .unwrap_err()
            .contains("cgroup v2"));
        // Nothing set, nothing written.
        assert!(super::v1_writes(&resources("{}"), 0, true)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn v2_writes() {
        let r = resources(
            r#"{"memory": {"limit": 1000, "reservation": 500, "swap": 3000},
                "pids": {"limit": 20},
                "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "1"},
                "unified": {"memory.high": "900"}}"#,
        );
        assert_eq!(
            files(&super::v2_writes(&r).unwrap()),
            [
                ("unified", "memory.swap.max", "2000"),
                ("unified", "memory.max", "1000"),
                ("unified", "memory.low", "500"),
                ("unified", "pids.max", "20"),
                ("unified", "cpu.weight", "100"),
                ("unified", "cpu.max", "50000 100000"),
                ("unified", "cpuset.cpus", "1"),
                ("unified", "memory.high", "900"),
            ]
        );
        let r =
            resources(r#"{"memory": {"limit": -1}, "cpu": {"quota": -1}, "pids": {"limit": -1}}"#);
        assert_eq!(
            files(&super::v2_writes(&r).unwrap()),
            [
                ("unified", "memory.swap.max", "max"),
                ("unified", "memory.max", "max"),
                ("unified", "pids.max", "max"),
                ("unified", "cpu.max", "max"),
            ]
        );
        // memory == swap: no swap at all.
        let r = resources(r#"{"memory": {"limit": 100, "swap": 100}}"#);
        assert_eq!(
            files(&super::v2_writes(&r).unwrap())[0],
            ("unified", "memory.swap.max", "0")
        );
        let r = resources(r#"{"unified": {"../x": "1"}}"#);
        assert!(super::v2_writes(&r).is_err());
        let r = resources(r#"{"cpu": {"realtimeRuntime": 5}}"#);
        assert!(super::v2_writes(&r).is_err());
    }

    #[test]
    fn stats_files_parse() {
        assert_eq!(parse_value("max\n", 7).unwrap(), 7);
        assert_eq!(parse_value("123\n", 7).unwrap(), 123);
        assert!(parse_value("x", 7).is_err());
        let k = parse_keyed("usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 0\n");
        assert_eq!(
            (k["usage_usec"], k["user_usec"], k["system_usec"]),
            (10, 6, 4)
        );
        let k = parse_keyed("populated 1\nfrozen 0\n");
        assert_eq!(k["frozen"], 0);
    }

    #[test]
    fn state_round_trips_and_is_checked() {
        let cg = plan(
            &parse_mountinfo(HYBRID),
            HYBRID_OWN,
            &Inner::Absolute("/runsc/x".into()),
        )
        .unwrap();
        let json = serde_json::to_string(&cg).unwrap();
        assert_eq!(Cgroup::load(&json).unwrap(), cg);
        for bad in [
            r#"{"version": 3, "paths": {}}"#,
            r#"{"version": 1, "paths": {"memory": "/sys/fs/cgroup/memory/../../etc"}}"#,
            r#"{"version": 1, "paths": {"memory": "relative"}}"#,
            r#"{"version": 1, "paths": {"devices": "/sys/fs/cgroup/devices/x"}}"#,
            r#"{"version": 2, "paths": {}}"#,
        ] {
            assert!(Cgroup::load(bad).is_err(), "{bad}");
        }
    }

    // ----- On this machine's cgroups (as root) -----

    fn root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    /// A shell that, once told on its standard input, forks a few
    /// children (charging the cgroup memory and CPU) and then sleeps.
    fn worker() -> std::process::Child {
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("read x; for i in 1 2 3 4 5 6 7 8; do y=$(echo $i); done; exec sleep 60")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ok() {
            assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn read(d: &Path, f: &str) -> String {
        std::fs::read_to_string(d.join(f))
            .unwrap()
            .trim()
            .to_string()
    }

    #[test]
    fn a_cgroup_on_this_machine() {
        use std::io::Write as _;
        use std::os::unix::process::ExitStatusExt;
        if !root() {
            eprintln!("SKIPPED a_cgroup_on_this_machine: making cgroups needs root");
            return;
        }
        let id = format!("t{}", std::process::id());
        let parent = format!("/runsc-cgroup-test-{id}");
        let r = resources(
            r#"{"memory": {"limit": 67108864, "reservation": 33554432},
                "pids": {"limit": 20},
                "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}}"#,
        );
        let cg = Cgroup::create(Some(&format!("{parent}/{id}")), &id, false, Some(&r)).unwrap();
        assert!(cg.dirs().iter().all(|d| d.is_dir()));
        // The limits, read back.
        if cg.version == 1 {
            let d = |h: &str| cg.paths[h].clone();
            assert_eq!(read(&d("memory"), "memory.limit_in_bytes"), "67108864");
            assert_eq!(read(&d("memory"), "memory.soft_limit_in_bytes"), "33554432");
            assert_eq!(read(&d("pids"), "pids.max"), "20");
            assert_eq!(read(&d("cpu"), "cpu.shares"), "512");
            assert_eq!(read(&d("cpu"), "cpu.cfs_quota_us"), "50000");
            assert_eq!(read(&d("cpuset"), "cpuset.cpus"), "0");
        } else {
            let d = cg.paths[UNIFIED].clone();
            assert_eq!(read(&d, "memory.max"), "67108864");
            assert_eq!(read(&d, "pids.max"), "20");
            assert_eq!(read(&d, "cpu.max"), "50000 100000");
        }
        // A process in it.
        let mut child = worker();
        cg.add(child.id() as i32).unwrap();
        for d in cg.dirs() {
            assert_eq!(
                read(d, "cgroup.procs"),
                child.id().to_string(),
                "{}",
                d.display()
            );
        }
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        wait_for("the worker's usage", || {
            let s = cg.stats().unwrap();
            s.cpu_usage_ns > 0 && s.memory_usage > 0 && s.pids_current == 1
        });
        let s = cg.stats().unwrap();
        assert_eq!(s.memory_limit, 67108864);
        assert_eq!(s.pids_limit, 20);
        assert!(s.memory_max_usage >= s.memory_usage, "{s:?}");
        assert!(
            s.cpu_user_ns + s.cpu_system_ns <= s.cpu_usage_ns + 20_000_000,
            "{s:?}"
        );
        // Frozen and thawed.
        cg.freeze().unwrap();
        if cg.version == 1 {
            assert_eq!(read(&cg.paths["freezer"], "freezer.state"), "FROZEN");
        }
        cg.thaw().unwrap();
        if cg.version == 1 {
            assert_eq!(read(&cg.paths["freezer"], "freezer.state"), "THAWED");
        }
        // Updated.
        cg.update(&resources(r#"{"pids": {"limit": 30}}"#)).unwrap();
        assert_eq!(cg.stats().unwrap().pids_limit, 30);
        // A limit below the usage is refused, saying so.
        if cg.version == 1 {
            let e = cg
                .update(&resources(r#"{"memory": {"limit": 4096}}"#))
                .unwrap_err();
            assert!(e.contains("memory.limit_in_bytes"), "{e}");
        }
        // Found again from its state, and destroyed: the process is
        // killed and nothing is left in any hierarchy.
        let again = Cgroup::load(&serde_json::to_string(&cg).unwrap()).unwrap();
        again.destroy().unwrap();
        let st = child.wait().unwrap();
        assert_eq!(st.signal(), Some(libc::SIGKILL), "{st:?}");
        for d in cg.dirs() {
            assert!(!d.exists(), "{} is left", d.display());
        }
        again.destroy().unwrap();
        for d in cg.dirs() {
            let _ = std::fs::remove_dir(d.parent().unwrap());
        }
    }

    #[test]
    fn creation_failures_leave_nothing() {
        if !root() {
            eprintln!("SKIPPED creation_failures_leave_nothing: making cgroups needs root");
            return;
        }
        let id = format!("f{}", std::process::id());
        let path = format!("/runsc-cgroup-fail-{id}/{id}");
        // Shares out of the kernel's range: refused.
        let r = resources(r#"{"cpu": {"shares": 1}, "pids": {"limit": 5}}"#);
        let e = Cgroup::create(Some(&path), &id, false, Some(&r)).unwrap_err();
        assert!(e.contains("cpu"), "{e}");
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let cg = plan(
            &parse_mountinfo(&mountinfo),
            &own,
            &Inner::Absolute(path.clone()),
        )
        .unwrap();
        for d in cg.dirs() {
            assert!(!d.exists(), "{} is left", d.display());
            assert!(!d.parent().unwrap().exists(), "{} is left", d.display());
        }
    }

    #[test]
    fn a_cgroup_v2_directory() {
        // cgroup v2's own files (freeze, kill, events) on the machine's
        // cgroup2 mount, even where the controllers are v1's.
        if !root() {
            eprintln!("SKIPPED a_cgroup_v2_directory: making cgroups needs root");
            return;
        }
        use std::io::Write as _;
        use std::os::unix::process::ExitStatusExt;
        let mounts = parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap());
        let Some(m) = mounts.v2 else {
            eprintln!("SKIPPED a_cgroup_v2_directory: no cgroup2 mount");
            return;
        };
        let id = format!("v{}", std::process::id());
        let only_v2 = Mounts {
            v1: Vec::new(),
            v2: Some(m),
        };
        let cg = plan(
            &only_v2,
            "0::/\n",
            &Inner::Absolute(format!("/runsc-v2-test/{id}")),
        )
        .unwrap();
        assert_eq!(cg.version, 2);
        cg.make(None).unwrap();
        let d = cg.paths[UNIFIED].clone();
        let mut child = worker();
        cg.add(child.id() as i32).unwrap();
        assert_eq!(read(&d, "cgroup.procs"), child.id().to_string());
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        wait_for("the worker's CPU time", || {
            cg.stats().unwrap().cpu_usage_ns > 0
        });
        cg.freeze().unwrap();
        assert!(read(&d, "cgroup.events").contains("frozen 1"));
        cg.thaw().unwrap();
        assert!(read(&d, "cgroup.events").contains("frozen 0"));
        // A limit of a controller the directory does not have: said so.
        let has_pids = read(d.parent().unwrap(), "cgroup.subtree_control").contains("pids");
        if !has_pids {
            let e = cg
                .update(&resources(r#"{"pids": {"limit": 5}}"#))
                .unwrap_err();
            assert!(e.contains("pids controller is not enabled"), "{e}");
        }
        cg.destroy().unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert!(!d.exists());
        let _ = std::fs::remove_dir(d.parent().unwrap());
    }
}
