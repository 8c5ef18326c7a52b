//! Real OCI clients driving a runtime: podman (with a private store and
//! `containers.conf`) and containerd (a private daemon, driven with
//! `ctr` through the runc v2 shim), plus what their tests share: the
//! runtime under test, runs under a pseudo-terminal, an OCI image of the
//! busybox rootfs built with umoci, and the reaping of the orphans the
//! clients leave (conmon and the shims double-fork, and the machine's
//! PID 1 may not reap them).

use crate::{direct_children_of, rootfs, run_command, RunResult, ScratchDir};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The longest any one client command may take.
pub const LIMIT: Duration = Duration::from_secs(60);

/// An OCI runtime under test: its binary and the global flags it needs
/// before the command (`runsc --platform=ptrace create ...`).
#[derive(Debug, Clone)]
pub struct Runtime {
    pub path: PathBuf,
    pub flags: Vec<String>,
}

impl Runtime {
    /// runc, when installed (else None, with a message).
    pub fn runc() -> Option<Runtime> {
        let path = find_program("runc", "runc")?;
        Some(Runtime {
            path,
            flags: Vec::new(),
        })
    }

    /// Our `runsc`.
    pub fn ours() -> Runtime {
        Runtime {
            path: crate::runsc(),
            flags: Vec::new(),
        }
    }

    /// A program that runs the runtime with its global flags, for clients
    /// that take only a path: the binary itself, or a script in `dir`.
    pub fn program(&self, dir: &Path) -> PathBuf {
        if self.flags.is_empty() {
            return self.path.clone();
        }
        use std::os::unix::fs::PermissionsExt;
        let script = dir.join("runtime");
        let flags: Vec<String> = self.flags.iter().map(|f| sh_quote(f)).collect();
        let text = format!(
            "#!/bin/sh\nexec {} {} \"$@\"\n",
            sh_quote(&self.path.to_string_lossy()),
            flags.join(" ")
        );
        std::fs::write(&script, text).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }
}

/// `name` found in the PATH (and the sbin directories), or None with a
/// message naming the Debian package that has it.
pub fn find_program(name: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!("skipped: {name} is not installed (Debian package {package})");
    }
    found
}

/// Quotes `s` for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `cmd` run on a new pseudo-terminal (util-linux's `script`, whose own
/// standard input is /dev/null): what it writes to its standard output
/// and error both comes back in `stdout`, with the terminal's `\r\n`
/// turned into `\n` and NUL bytes dropped; the exit code is `cmd`'s.
pub fn run_in_pty(cmd: &Command, limit: Duration) -> RunResult {
    let mut line = vec![sh_quote(&cmd.get_program().to_string_lossy())];
    line.extend(cmd.get_args().map(|a| sh_quote(&a.to_string_lossy())));
    let mut script = Command::new("script");
    script
        .args(["-q", "-e", "-c"])
        .arg(line.join(" "))
        .arg("/dev/null")
        .env("SHELL", "/bin/sh");
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    script.stdin(Stdio::null());
    let mut r = run_command(script, limit).0;
    r.stdout = r.stdout.replace(['\0', '\r'], "");
    r
}

/// Polls `f` every 20 ms until it holds; panics after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts a run's exit code and standard output.
#[track_caller]
pub fn expect(r: &RunResult, code: i32, stdout: &str) {
    assert!(
        r.code == code && r.stdout == stdout,
        "expected exit {code} and {stdout:?}, got exit {} and {:?}\nstderr: {}",
        r.code,
        r.stdout,
        r.stderr
    );
}

/// A counter that a container's shell keeps in `/out/n`, `/out` being a
/// host directory bind-mounted: whether it moves tells whether the
/// container runs (frozen, it stands still).
pub struct Counter {
    file: PathBuf,
}

impl Counter {
    /// The container's command (`sh -c SCRIPT`).
    pub const SCRIPT: &'static str =
        "i=0; while :; do i=$((i+1)); echo $i > /out/n.new; mv /out/n.new /out/n; usleep 10000; done";

    /// The counter kept in `dir` (the host side of `/out`).
    pub fn new(dir: &Path) -> Counter {
        Counter {
            file: dir.join("n"),
        }
    }

    fn value(&self) -> String {
        std::fs::read_to_string(&self.file).unwrap_or_default()
    }

    /// Whether it moves within 10 s.
    pub fn counts(&self) -> bool {
        let before = self.value();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
            if self.value() != before {
                return true;
            }
        }
        false
    }

    /// Whether it stays the same for half a second.
    pub fn stands_still(&self) -> bool {
        let before = self.value();
        std::thread::sleep(Duration::from_millis(500));
        self.value() == before
    }
}

/// Makes this process the reaper of its descendants' orphans: conmon
/// and containerd's shims daemonize, and without a subreaper their
/// zombies go to the machine's PID 1, which may never reap them.
pub fn adopt_orphans() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl with integer arguments changes only this
        // process's subreaper flag.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(r, 0, "PR_SET_CHILD_SUBREAPER");
    });
}

/// Names of the adopted daemons [`reap_orphans`] reaps: never a program
/// the tests spawn themselves (whose `Child` waits for it).
const ORPHANS: [&str; 2] = ["conmon", "containerd-shim"];

/// The state letter and name of process `pid`, from /proc.
fn stat_of(pid: i32) -> Option<(char, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.split_once('(')?;
    let (comm, rest) = rest.rsplit_once(')')?;
    let state = rest.trim_start().chars().next()?;
    Some((state, comm.to_string()))
}

/// Reaps the zombies among this process's adopted orphans (see
/// [`adopt_orphans`]).
pub fn reap_orphans() {
    for pid in direct_children_of(std::process::id()) {
        if let Some(('Z', comm)) = stat_of(pid) {
            if ORPHANS.contains(&comm.as_str()) {
                let mut status = 0;
                // SAFETY: waits for one zombie child that no `Child` of
                // this process owns (see ORPHANS); `status` is ours.
                unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            }
        }
    }
}

/// The live (not zombie) processes whose command line contains
/// `needle`, other than this one: (pid, command line).
pub fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
        if line.contains(needle) && !matches!(stat_of(pid), Some(('Z', _)) | None) {
            out.push((pid, line.trim_end().to_string()));
        }
    }
    out
}

/// What the paths inside `dir` start with: `DIR/` (`DIR` alone would
/// also match the paths of a sibling `DIR0`).
pub fn inside(dir: &Path) -> String {
    format!("{}/", dir.display())
}

/// Waits up to `limit` for no live process to mention `needle`; returns
/// those still there.
pub fn wait_gone(needle: &str, limit: Duration) -> Vec<(i32, String)> {
    let start = Instant::now();
    loop {
        reap_orphans();
        let left = processes_mentioning(needle);
        if left.is_empty() || start.elapsed() > limit {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `signal` (a name, as `kill -s` takes it) to `pid`.
fn signal(pid: i32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// The mount points at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Lazily unmounts what is mounted under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let mut points = mounts_under(dir);
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for p in points {
        let _ = Command::new("umount").arg("-l").arg(&p).status();
    }
}

/// A fresh directory with a short path, `/run/runsc-tests/TAG-PID-SEQ`,
/// removed when dropped: for what needs one (socket addresses are at
/// most 108 bytes long; podman refuses a run root longer than 50).
pub struct ShortDir(pub PathBuf);

impl ShortDir {
    pub fn new(tag: &str) -> ShortDir {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let d = PathBuf::from(format!(
            "/run/runsc-tests/{tag}-{}-{seq}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        ShortDir(d)
    }
}

impl Drop for ShortDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file holding `text`, to give a client as its standard input.
fn stdin_file(dir: &Path, text: &str) -> File {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let p = dir.join(format!("stdin-{seq}"));
    std::fs::write(&p, text).unwrap();
    File::open(&p).unwrap()
}

/// podman with a store, run directory, temporary directory and
/// `containers.conf` of its own (the machine's store is never touched),
/// running containers with `runtime`. Dropping it removes its
/// containers and unmounts what it left mounted.
pub struct Podman {
    lab: ScratchDir,
    /// The run root (podman wants its path short).
    run: ShortDir,
    runtime: PathBuf,
    /// Root file systems copied for the containers (podman writes into a
    /// `--rootfs` tree), removed after the containers.
    copies: std::cell::RefCell<Vec<ScratchDir>>,
}

/// The `containers.conf` of the tests: default ulimits capped (the
/// runtimes cannot raise a hard rlimit without CAP_SYS_RESOURCE, which
/// the machine's bounding set may lack), no network namespace unless a
/// test asks for podman's bridge (through netavark, so that podman never
/// reads the host's CNI configuration), cgroupfs,
/// and events and state files kept in the lab.
fn containers_conf(lab: &Path) -> String {
    format!(
        "[containers]\n\
         default_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
         netns = \"none\"\n\
         log_driver = \"k8s-file\"\n\
         [network]\n\
         network_backend = \"netavark\"\n\
         [engine]\n\
         cgroup_manager = \"cgroupfs\"\n\
         events_logger = \"file\"\n\
         events_logfile_path = \"{lab}/events.log\"\n\
         tmp_dir = \"{lab}/tmp\"\n",
        lab = lab.display()
    )
}

impl Podman {
    /// A fresh podman set-up for `runtime`; None (with a message) when
    /// podman is not installed.
    pub fn new(runtime: &Runtime) -> Option<Podman> {
        find_program("podman", "podman")?;
        adopt_orphans();
        let lab = ScratchDir::new("podman");
        std::fs::write(lab.0.join("containers.conf"), containers_conf(&lab.0)).unwrap();
        let runtime = runtime.program(&lab.0);
        Some(Podman {
            lab,
            run: ShortDir::new("podman"),
            runtime,
            copies: Default::default(),
        })
    }

    /// A scratch copy of `rootfs` for `--rootfs` (absolute, as podman
    /// wants it), kept until the containers are gone.
    pub fn copy_of(&self, rootfs: &Path) -> PathBuf {
        let copy = rootfs::copy_of(rootfs, "podman-rootfs");
        let path = copy.0.clone();
        self.copies.borrow_mut().push(copy);
        path
    }

    /// A copy of the busybox rootfs, or None (with a message) when
    /// busybox-static is not installed.
    pub fn busybox(&self) -> Option<PathBuf> {
        rootfs::have_busybox().then(|| self.copy_of(&rootfs::busybox()))
    }

    /// The lab directory (scratch files may go there).
    pub fn dir(&self) -> &Path {
        &self.lab.0
    }

    /// `podman <own dirs> --runtime R args`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", self.lab.0.join("containers.conf"))
            .arg("--root")
            .arg(self.lab.0.join("root"))
            .arg("--runroot")
            .arg(&self.run.0)
            .arg("--tmpdir")
            .arg(self.lab.0.join("tmp"))
            .arg("--runtime")
            .arg(&self.runtime)
            .args(args);
        cmd
    }

    /// Runs `podman args` with standard input /dev/null.
    pub fn run(&self, args: &[&str]) -> RunResult {
        self.run_stdin(args, None)
    }

    /// Runs `podman args` with `stdin` (or /dev/null) as standard input.
    pub fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> RunResult {
        let mut cmd = self.command(args);
        match stdin {
            Some(text) => cmd.stdin(stdin_file(&self.lab.0, text)),
            None => cmd.stdin(Stdio::null()),
        };
        run_command(cmd, LIMIT).0
    }

    /// As [`Podman::run`], asserting success; returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "podman {args:?} failed: {}{}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    /// Runs `podman args` on a pseudo-terminal.
    pub fn run_pty(&self, args: &[&str]) -> RunResult {
        run_in_pty(&self.command(args), LIMIT)
    }

    /// Asserts that nothing is left: no container, no conmon or other
    /// process working for this set-up, nothing mounted in it.
    pub fn finish(self) {
        let ids = self.ok(&["ps", "-a", "-q"]);
        assert_eq!(ids.trim(), "", "containers left behind");
        // The storage library makes its home (`root/overlay`) a private
        // bind mount of itself, which a podman process racing another
        // (`rm --force` and conmon's clean-up command) may leave: that one
        // is podman's, not the runtime's, and is unmounted when dropped.
        let storage_home = self.lab.0.join("root/overlay");
        for dir in [&self.lab.0, &self.run.0] {
            let left = wait_gone(&inside(dir), Duration::from_secs(10));
            assert!(left.is_empty(), "processes left behind: {left:?}");
            let mounts: Vec<PathBuf> = mounts_under(dir)
                .into_iter()
                .filter(|m| *m != storage_home)
                .collect();
            assert!(mounts.is_empty(), "mounts left behind: {mounts:?}");
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
        for dir in [&self.lab.0, &self.run.0] {
            for (pid, _) in wait_gone(&inside(dir), Duration::from_secs(5)) {
                signal(pid, "KILL");
            }
            unmount_under(dir);
        }
        reap_orphans();
    }
}

/// The name the busybox image is imported under.
pub const BUSYBOX_IMAGE: &str = "docker.io/library/busybox-test:latest";

/// The OCI architecture name of this machine.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn checked(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("running {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} {:?} failed:\n{}{}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Builds, in `dir`, an OCI image layout of `root` with umoci (one layer,
/// command /bin/sh, named [`BUSYBOX_IMAGE`] for containerd) and tars it
/// as `dir/image.tar`.
fn build_image(umoci: &Path, root: &Path, dir: &Path) -> Result<PathBuf, String> {
    let layout = dir.join("oci");
    let image = format!("{}:busybox", layout.display());
    checked(Command::new(umoci).arg("init").arg("--layout").arg(&layout))?;
    checked(Command::new(umoci).args(["new", "--image", &image]))?;
    checked(
        Command::new(umoci)
            .args(["insert", "--image", &image])
            .arg(root)
            .arg("/"),
    )?;
    checked(Command::new(umoci).args([
        "config",
        "--image",
        &image,
        "--config.cmd",
        "/bin/sh",
        "--architecture",
        oci_arch(),
        "--os",
        "linux",
    ]))?;
    checked(Command::new(umoci).arg("gc").arg("--layout").arg(&layout))?;
    let index_path = layout.join("index.json");
    let text = std::fs::read_to_string(&index_path).map_err(|e| e.to_string())?;
    let mut index: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let manifests = index["manifests"]
        .as_array_mut()
        .filter(|m| m.len() == 1)
        .ok_or("the layout's index has not one manifest")?;
    manifests[0]["annotations"]["io.containerd.image.name"] = BUSYBOX_IMAGE.into();
    std::fs::write(&index_path, index.to_string()).map_err(|e| e.to_string())?;
    let tar = dir.join("image.tar");
    checked(
        Command::new("tar")
            .arg("-C")
            .arg(&layout)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    )?;
    Ok(tar)
}

/// The busybox rootfs as an OCI image archive for `ctr image import`,
/// cached under the rootfs cache, keyed by the rootfs (whose name is a
/// hash of what built it) and umoci's version; None (with a message)
/// when umoci is not installed.
pub fn busybox_image() -> Option<PathBuf> {
    let umoci = find_program("umoci", "umoci")?;
    let root = rootfs::busybox();
    let version = Command::new(&umoci)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let version: String = version
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = root.file_name().unwrap().to_string_lossy().into_owned();
    let tar = Path::new(rootfs::CACHE).join(format!("{name}-image-umoci{version}-v1.tar"));
    if tar.is_file() {
        return Some(tar);
    }
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let tmp = PathBuf::from(format!("{}.tmp{}-{seq}", tar.display(), std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let built = build_image(&umoci, &root, &tmp);
    let result = built.map(|t| std::fs::rename(t, &tar));
    let _ = std::fs::remove_dir_all(&tmp);
    match result {
        Ok(Ok(())) => Some(tar),
        // Another process renamed its archive into place first.
        Ok(Err(_)) if tar.is_file() => Some(tar),
        Ok(Err(e)) => panic!("moving the image into {}: {e}", tar.display()),
        Err(e) => panic!("building the busybox image: {e}"),
    }
}

/// A private containerd (its own root, state, socket and config; the CRI
/// plugin off) whose containers run with `runtime` through the runc v2
/// shim. [`Containerd::finish`] checks that nothing is left and stops it;
/// dropping it kills whatever is left (tasks, shims, the daemon) and
/// unmounts what is mounted in it.
pub struct Containerd {
    lab: ScratchDir,
    /// Where the sockets are.
    sockets: ShortDir,
    /// The containerd namespace of the tests' containers, unique: the
    /// runc shim names a container's cgroups `/NAMESPACE/ID`, and two
    /// tests' containers of the same name would share them.
    namespace: String,
    daemon: Option<std::process::Child>,
    runtime: PathBuf,
}

impl Containerd {
    /// Starts a daemon for `runtime`, waiting until it answers; None
    /// (with a message) when containerd or ctr is not installed.
    pub fn start(runtime: &Runtime) -> Option<Containerd> {
        let containerd = find_program("containerd", "containerd")?;
        find_program("ctr", "containerd")?;
        find_program("containerd-shim-runc-v2", "containerd")?;
        adopt_orphans();
        let lab = ScratchDir::new("containerd");
        let sockets = ShortDir::new("containerd");
        let config = format!(
            "version = 2\n\
             root = \"{lab}/root\"\n\
             state = \"{lab}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{sock}/containerd.sock\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{lab}/opt\"\n",
            lab = lab.0.display(),
            sock = sockets.0.display()
        );
        std::fs::write(lab.0.join("config.toml"), config).unwrap();
        let log = File::create(lab.0.join("containerd.log")).unwrap();
        let daemon = Command::new(containerd)
            .arg("--config")
            .arg(lab.0.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting containerd");
        let runtime = runtime.program(&lab.0);
        let mut c = Containerd {
            namespace: format!(
                "runsc-tests-{}",
                sockets.0.file_name().unwrap().to_string_lossy()
            ),
            lab,
            sockets,
            daemon: Some(daemon),
            runtime,
        };
        let start = Instant::now();
        loop {
            if c.ctr_with(&["version"], Duration::from_secs(5)).code == 0 {
                break;
            }
            if let Some(status) = c.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("containerd exited ({status}):\n{}", c.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "containerd does not answer:\n{}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(c)
    }

    /// The daemon's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.lab.0.join("containerd.log")).unwrap_or_default()
    }

    /// The lab directory (scratch files may go there).
    pub fn dir(&self) -> &Path {
        &self.lab.0
    }

    /// The daemon's socket.
    pub fn socket(&self) -> PathBuf {
        self.sockets.0.join("containerd.sock")
    }

    /// Where the runtime keeps its state (`--runc-root`).
    pub fn runtime_root(&self) -> PathBuf {
        self.lab.0.join("runtime-root")
    }

    /// `timeout -k 5 LIMIT ctr -a SOCK args` (ctr forwards SIGTERM to
    /// the container, which may ignore it).
    pub fn ctr_command(&self, args: &[&str], limit: Duration) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.args(["-k", "5", &limit.as_secs().max(1).to_string(), "ctr", "-a"])
            .arg(self.socket())
            .args(["-n", &self.namespace])
            .args(args);
        cmd
    }

    /// Runs `ctr args` (standard input /dev/null) within `limit`.
    pub fn ctr_with(&self, args: &[&str], limit: Duration) -> RunResult {
        let mut cmd = self.ctr_command(args, limit);
        cmd.stdin(Stdio::null());
        run_command(cmd, limit + Duration::from_secs(10)).0
    }

    /// Runs `ctr args` (standard input /dev/null).
    pub fn ctr(&self, args: &[&str]) -> RunResult {
        self.ctr_with(args, LIMIT)
    }

    /// As [`Containerd::ctr`], asserting success; returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.ctr(args);
        assert_eq!(r.code, 0, "ctr {args:?} failed: {}{}", r.stdout, r.stderr);
        r.stdout
    }

    /// Runs `ctr args` on a pseudo-terminal (`timeout --foreground`, so
    /// that ctr may set the terminal up).
    pub fn ctr_pty(&self, args: &[&str]) -> RunResult {
        let mut cmd = Command::new("timeout");
        cmd.args(["--foreground", "-k", "5", &LIMIT.as_secs().to_string()])
            .arg("ctr")
            .arg("-a")
            .arg(self.socket())
            .args(["-n", &self.namespace])
            .args(args);
        let mut r = run_in_pty(&cmd, LIMIT + Duration::from_secs(10));
        // ctr may write a NUL byte to the container's terminal as it
        // starts, which the terminal echoes as `^@`.
        if let Some(rest) = r.stdout.strip_prefix("^@") {
            r.stdout = rest.to_string();
        }
        r
    }

    /// `run` with the runtime under test and the FIFOs in the lab: the
    /// start of a `ctr run` command line.
    pub fn run_args(&self) -> Vec<String> {
        vec![
            "run".into(),
            "--runc-binary".into(),
            self.runtime.to_string_lossy().into_owned(),
            "--runc-root".into(),
            self.runtime_root().to_string_lossy().into_owned(),
            "--fifo-dir".into(),
            self.lab.0.join("fifo").to_string_lossy().into_owned(),
        ]
    }

    /// `task exec` with the FIFOs in the lab.
    pub fn exec_args(&self) -> Vec<String> {
        vec![
            "task".into(),
            "exec".into(),
            "--fifo-dir".into(),
            self.lab.0.join("fifo").to_string_lossy().into_owned(),
        ]
    }

    /// Imports the busybox image; returns its name, or None (with a
    /// message) when umoci is not installed.
    pub fn import_busybox(&self) -> Option<&'static str> {
        let tar = busybox_image()?;
        self.ok(&["image", "import", &tar.to_string_lossy()]);
        Some(BUSYBOX_IMAGE)
    }

    /// The cgroup directories of this daemon's namespace, one per
    /// hierarchy that has one.
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let d = e.path().join(&self.namespace);
                if d.is_dir() {
                    out.push(d);
                }
            }
        }
        out
    }

    /// The containers' cgroups left in this daemon's namespace.
    fn cgroups_left(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for d in self.cgroup_dirs() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    out.push(e.path());
                }
            }
        }
        out
    }

    /// Removes the (empty) cgroups of this daemon's namespace.
    fn remove_cgroups(&self) {
        for d in self.cgroups_left() {
            let _ = std::fs::remove_dir(d);
        }
        for d in self.cgroup_dirs() {
            let _ = std::fs::remove_dir(d);
        }
    }

    /// The shims working for this daemon (their `-address` is its socket).
    fn shims(&self) -> Vec<(i32, String)> {
        processes_mentioning(&format!("-address {}", self.socket().display()))
            .into_iter()
            .filter(|(_, line)| line.contains("containerd-shim"))
            .collect()
    }

    /// Asserts that the test left no task and no container, stops the
    /// daemon, and asserts that no shim, runtime process or mount is left.
    pub fn finish(mut self) {
        let tasks = self.ok(&["task", "ls", "-q"]);
        assert_eq!(tasks.trim(), "", "tasks left behind");
        let containers = self.ok(&["container", "ls", "-q"]);
        assert_eq!(containers.trim(), "", "containers left behind");
        self.stop_daemon();
        let left = wait_gone(&inside(&self.lab.0), Duration::from_secs(10));
        assert!(left.is_empty(), "processes left behind: {left:?}");
        let shims = self.shims();
        assert!(shims.is_empty(), "shims left behind: {shims:?}");
        let mounts = mounts_under(&self.lab.0);
        assert!(mounts.is_empty(), "mounts left behind: {mounts:?}");
        let cgroups = self.cgroups_left();
        assert!(cgroups.is_empty(), "cgroups left behind: {cgroups:?}");
    }

    /// SIGTERM to the daemon, SIGKILL if it has not gone in 10 s.
    fn stop_daemon(&mut self) {
        let Some(mut daemon) = self.daemon.take() else {
            return;
        };
        signal(daemon.id() as i32, "TERM");
        let start = Instant::now();
        while daemon.try_wait().unwrap().is_none() {
            if start.elapsed() > Duration::from_secs(10) {
                let _ = daemon.kill();
                let _ = daemon.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let short = Duration::from_secs(10);
            let ids = self.ctr_with(&["container", "ls", "-q"], short).stdout;
            for id in ids.split_whitespace() {
                let _ = self.ctr_with(&["task", "kill", "-s", "KILL", id], short);
                let _ = self.ctr_with(&["task", "delete", "--force", id], short);
                let _ = self.ctr_with(&["container", "delete", id], short);
            }
            self.stop_daemon();
        }
        for (pid, _) in self.shims() {
            signal(pid, "KILL");
        }
        for (pid, _) in wait_gone(&inside(&self.lab.0), Duration::from_secs(2)) {
            signal(pid, "KILL");
        }
        unmount_under(&self.lab.0);
        self.remove_cgroups();
        reap_orphans();
    }
}

/// One `#[test]` per scenario and runtime: `runc::NAME` and `ours::NAME`,
/// each calling `NAME(&runtime)`. `NAME / "why"` marks a scenario our
/// runtime cannot pass, with the reason: its `ours` test is ignored.
#[macro_export]
macro_rules! client_scenarios {
    ($($name:ident $(/ $ours_gap:literal)?)*) => {
        mod runc {
            $(
                #[test]
                fn $name() {
                    if let Some(rt) = tests::clients::Runtime::runc() {
                        super::$name(&rt);
                    }
                }
            )*
        }
        mod ours {
            $(
                #[test]
                $(#[ignore = $ours_gap])?
                fn $name() {
                    super::$name(&tests::clients::Runtime::ours());
                }
            )*
        }
    };
}
