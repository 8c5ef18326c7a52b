//! Driving an OCI runtime binary (runc, or ours) through the container
//! lifecycle for the OCI suite (`tests/tests/oci.rs`): each container has
//! its own id, its own `--root` state directory, a scratch busybox rootfs
//! with the suite's checker program at `/checker`, and a bundle; dropping
//! it runs `delete --force`.

use crate::rootfs;
use crate::{RunResult, ScratchDir};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long any one runtime command may take.
const LIMIT: Duration = Duration::from_secs(30);

/// Set in every runtime command's environment: a container must not see
/// it (its environment is the config's).
pub const HOST_MARKER: &str = "OCI_SUITE_HOST_ONLY=leaked";

/// A runtime binary and the global flags it always gets.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub name: String,
    pub bin: PathBuf,
    pub flags: Vec<String>,
}

impl Runtime {
    /// runc from the PATH (or /usr/sbin), or None with a message.
    pub fn runc() -> Option<Runtime> {
        let path = std::env::var("PATH").unwrap_or_default();
        let found = path
            .split(':')
            .chain(["/usr/sbin", "/usr/bin", "/sbin"])
            .map(|d| Path::new(d).join("runc"))
            .find(|p| p.is_file());
        match found {
            Some(bin) => Some(Runtime {
                name: "runc".into(),
                bin,
                flags: vec![],
            }),
            None => {
                eprintln!("skipped: runc is not installed (Debian package runc)");
                None
            }
        }
    }

    /// Our `runsc`, built beside the tests; or, to try the suite on
    /// another runtime, the binary `OCI_SUITE_RUNTIME` names, with the
    /// global flags of `OCI_SUITE_RUNTIME_FLAGS` (split at spaces).
    pub fn ours() -> Runtime {
        if let Ok(bin) = std::env::var("OCI_SUITE_RUNTIME") {
            let flags = std::env::var("OCI_SUITE_RUNTIME_FLAGS").unwrap_or_default();
            return Runtime {
                name: bin.clone(),
                bin: bin.into(),
                flags: flags.split_whitespace().map(str::to_string).collect(),
            };
        }
        Runtime {
            name: "runsc".into(),
            bin: crate::runsc(),
            flags: vec![],
        }
    }

    /// The command `RUNTIME FLAGS... --root ROOT ARGS...`.
    pub fn command(&self, root: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(&self.flags).arg("--root").arg(root).args(args);
        let (k, v) = HOST_MARKER.split_once('=').unwrap();
        c.env(k, v);
        c
    }
}

/// The checker program (`tests/oci/checker.c`), built statically.
pub fn checker() -> PathBuf {
    crate::build_c(&crate::workspace().join("tests/oci/checker.c"), &[])
}

/// A file for a command's output, numbered so that no two commands of a
/// test share one.
fn out_file(dir: &Path, what: &str) -> PathBuf {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    dir.join(format!("{what}.{seq}"))
}

/// A spawned runtime command whose output goes to files (a container
/// started by it may inherit them and outlive it: files never block).
pub struct Running {
    pub child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Running {
    /// Spawns `cmd` in a process group of its own, stdin from /dev/null,
    /// stdout and stderr to files in `dir`.
    pub fn spawn(mut cmd: Command, dir: &Path, what: &str) -> Running {
        use std::os::unix::process::CommandExt;
        let out = out_file(dir, &format!("{what}.stdout"));
        let err = out_file(dir, &format!("{what}.stderr"));
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        Running { child, out, err }
    }

    /// Waits for the command to end (killing its process group after
    /// `limit`); its exit code (128 + signal when killed) and output.
    pub fn wait(mut self, limit: Duration) -> RunResult {
        use std::os::unix::process::ExitStatusExt;
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > limit {
                let pgid = self.child.id().to_string();
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pgid}")])
                    .status();
                let _ = self.child.kill();
                let s = self.child.wait().unwrap();
                eprintln!("a runtime command took over {limit:?}: killed");
                break s;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        RunResult {
            stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
            code,
        }
    }
}

/// A runtime's `--root` state directory, shared by the containers of one
/// test that must see each other (`list`).
pub struct StateRoot(ScratchDir);

impl StateRoot {
    pub fn new() -> Rc<StateRoot> {
        Rc::new(StateRoot(ScratchDir::new("oci-root")))
    }

    pub fn path(&self) -> &Path {
        &self.0 .0
    }
}

/// One container of a test: id, state root, rootfs (a busybox copy with
/// `/checker` and `/hooks/hook.sh`), bundle. Dropping it deletes it by
/// force, then removes its directories.
pub struct Container {
    pub rt: Runtime,
    pub id: String,
    root: Rc<StateRoot>,
    // Dropped after `drop` deleted the container: the bundle first.
    bundle: ScratchDir,
    rootfs: ScratchDir,
}

impl Container {
    /// A container `TAG-PID-SEQ` running `args` with [`rootfs::default_config`],
    /// in a state root of its own.
    pub fn new(rt: &Runtime, tag: &str, args: &[&str]) -> Container {
        Container::new_in(rt, tag, args, StateRoot::new())
    }

    /// As [`Container::new`], in the state root `root`.
    pub fn new_in(rt: &Runtime, tag: &str, args: &[&str], root: Rc<StateRoot>) -> Container {
        use std::os::unix::fs::PermissionsExt;
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let id = format!("{tag}-{}-{seq}", std::process::id());
        let rootfs = rootfs::copy_of(&rootfs::busybox(), &format!("{tag}-rootfs"));
        let checker_in = rootfs.0.join("checker");
        std::fs::copy(checker(), &checker_in).unwrap();
        std::fs::set_permissions(&checker_in, std::fs::Permissions::from_mode(0o755)).unwrap();
        let hooks = rootfs.0.join("hooks");
        std::fs::create_dir(&hooks).unwrap();
        std::fs::set_permissions(&hooks, std::fs::Permissions::from_mode(0o777)).unwrap();
        let hook = hooks.join("hook.sh");
        std::fs::write(&hook, HOOK_SCRIPT).unwrap();
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bundle = rootfs::bundle(&rootfs.0, rootfs::default_config(args));
        Container {
            rt: rt.clone(),
            id,
            root,
            bundle,
            rootfs,
        }
    }

    pub fn bundle(&self) -> &Path {
        &self.bundle.0
    }

    pub fn rootfs(&self) -> &Path {
        &self.rootfs.0
    }

    pub fn state_root(&self) -> &Rc<StateRoot> {
        &self.root
    }

    /// The bundle's config.json.
    pub fn config(&self) -> Value {
        let text = std::fs::read_to_string(self.bundle().join("config.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Changes the bundle's config.json with `f`.
    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut c = self.config();
        f(&mut c);
        rootfs::write_config(self.bundle(), &c);
    }

    /// Runs `RUNTIME --root ROOT ARGS...` to its end.
    pub fn rt(&self, args: &[&str]) -> RunResult {
        self.spawn_rt(args, "rt").wait(LIMIT)
    }

    /// Spawns `RUNTIME --root ROOT ARGS...`, its output to files of the
    /// bundle named after `what`.
    pub fn spawn_rt(&self, args: &[&str], what: &str) -> Running {
        Running::spawn(self.rt.command(self.root.path(), args), self.bundle(), what)
    }

    /// The pid file `create` is given.
    pub fn pid_file(&self) -> PathBuf {
        self.bundle().join("container.pid")
    }

    /// `create --bundle B --pid-file P ID`; the container's standard
    /// output and error are those of the command: files of the bundle,
    /// read by [`Container::output`].
    pub fn create(&self) -> RunResult {
        let b = self.bundle().to_string_lossy().into_owned();
        let p = self.pid_file().to_string_lossy().into_owned();
        let cmd = self.rt.command(
            self.root.path(),
            &["create", "--bundle", &b, "--pid-file", &p, &self.id],
        );
        let mut cmd = cmd;
        use std::os::unix::process::CommandExt;
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(self.bundle().join("container.stdout")).unwrap())
            .stderr(std::fs::File::create(self.bundle().join("container.stderr")).unwrap())
            .process_group(0);
        let child = cmd.spawn().unwrap();
        let run = Running {
            child,
            out: self.bundle().join("container.stdout"),
            err: self.bundle().join("container.stderr"),
        };
        run.wait(LIMIT)
    }

    /// `create`, which must succeed.
    pub fn create_ok(&self) {
        let r = self.create();
        assert_eq!(r.code, 0, "{} create failed: {r:?}", self.rt.name);
    }

    /// `start ID`.
    pub fn start(&self) -> RunResult {
        self.rt(&["start", &self.id])
    }

    /// `start`, which must succeed.
    pub fn start_ok(&self) {
        let r = self.start();
        assert_eq!(r.code, 0, "{} start failed: {r:?}", self.rt.name);
    }

    /// `state ID` as JSON; panics when it fails.
    pub fn state(&self) -> Value {
        let r = self.rt(&["state", &self.id]);
        assert_eq!(r.code, 0, "{} state failed: {r:?}", self.rt.name);
        serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("state is not JSON ({e}): {:?}", r.stdout))
    }

    /// The `status` of `state`.
    pub fn status(&self) -> String {
        self.state()["status"].as_str().unwrap_or("").to_string()
    }

    /// Waits until `state` says `want`; the state then.
    pub fn wait_status(&self, want: &str) -> Value {
        let start = Instant::now();
        loop {
            let s = self.state();
            if s["status"] == want {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{} never reached {want}: {s}",
                self.id
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill ID SIGNAL`.
    pub fn kill(&self, signal: &str) -> RunResult {
        self.rt(&["kill", &self.id, signal])
    }

    /// `delete ID`, with `--force` when `force`.
    pub fn delete(&self, force: bool) -> RunResult {
        if force {
            self.rt(&["delete", "--force", &self.id])
        } else {
            self.rt(&["delete", &self.id])
        }
    }

    /// What the container wrote to its standard output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.bundle().join("container.stdout")).unwrap_or_default()
    }

    /// What the container wrote to its standard error so far.
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.bundle().join("container.stderr")).unwrap_or_default()
    }

    /// Waits until the container's output has a line `line`.
    pub fn wait_output_line(&self, line: &str) {
        let start = Instant::now();
        while !self.output().lines().any(|l| l == line) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{}: no line {line:?} in its output {:?} (errors {:?})",
                self.id,
                self.output(),
                self.errors()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// create, start, wait for it to stop; its output. The container is
    /// still there (stopped) afterwards.
    pub fn run_to_end(&self) -> String {
        self.create_ok();
        self.start_ok();
        self.wait_status("stopped");
        self.output()
    }

    /// `run --bundle B ID` in the foreground, its output (the
    /// container's) to files.
    pub fn run(&self) -> RunResult {
        self.spawn_run().wait(LIMIT)
    }

    /// Spawns `run --bundle B ID`.
    pub fn spawn_run(&self) -> Running {
        let b = self.bundle().to_string_lossy().into_owned();
        self.spawn_rt(&["run", "--bundle", &b, &self.id], "run")
    }

    /// Writes `process` as a file of the bundle for `exec --process`; its
    /// path.
    pub fn process_file(&self, process: &Value) -> PathBuf {
        let p = out_file(self.bundle(), "process.json");
        std::fs::write(&p, serde_json::to_string_pretty(process).unwrap()).unwrap();
        p
    }

    /// A hook entry for config.json that runs the host's `/bin/sh` on
    /// `/hooks/hook.sh` of the rootfs (by its host path), appending
    /// `NAME <state JSON from stdin>` to the hook log; `extra` lines run
    /// after (e.g. `exit 1`, `sleep 30`).
    pub fn hook(&self, name: &str, extra: &str) -> Value {
        let script = self.rootfs().join("hooks/hook.sh");
        json!({
            "path": script.to_string_lossy(),
            "args": ["hook.sh", name, self.hook_log().to_string_lossy(), extra],
            "env": ["OCI_HOOK_ENV=set"]
        })
    }

    /// As [`Container::hook`], with the paths as the container sees them
    /// (for `startContainer` hooks, which run in the container).
    pub fn hook_inside(&self, name: &str, extra: &str) -> Value {
        json!({
            "path": "/hooks/hook.sh",
            "args": ["hook.sh", name, "/hooks/log", extra],
            "env": ["OCI_HOOK_ENV=set"]
        })
    }

    /// The hook log on the host.
    pub fn hook_log(&self) -> PathBuf {
        self.rootfs().join("hooks/log")
    }

    /// The hook log's entries: each hook's name, the OCI_HOOK_ENV it saw
    /// and the state it got (Null when not JSON).
    pub fn hook_entries(&self) -> Vec<HookEntry> {
        let text = std::fs::read_to_string(self.hook_log()).unwrap_or_default();
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let mut parts = l.splitn(3, ' ');
                let name = parts.next().unwrap_or("").to_string();
                let env = parts.next().unwrap_or("").to_string();
                let state = serde_json::from_str(parts.next().unwrap_or("")).unwrap_or(Value::Null);
                HookEntry { name, env, state }
            })
            .collect()
    }
}

/// One line of the hook log.
#[derive(Debug, Clone)]
pub struct HookEntry {
    pub name: String,
    pub env: String,
    pub state: Value,
}

/// The hook program: `hook.sh NAME LOG EXTRA` appends `NAME ENV STDIN`
/// (ENV: its OCI_HOOK_ENV, or `unset`) as a line of LOG, then runs EXTRA.
const HOOK_SCRIPT: &str = r#"#!/bin/sh
state=$(cat)
printf '%s %s %s\n' "$1" "${OCI_HOOK_ENV:-unset}" "$state" >> "$2"
eval "$3"
"#;

impl Container {
    /// The live host processes (not zombies) whose command line names
    /// this container's bundle or state root: a runtime's own helpers
    /// (runc's container processes name neither).
    pub fn helper_processes(&self) -> Vec<u32> {
        let marks = [
            self.bundle().to_string_lossy().into_owned(),
            self.root.path().to_string_lossy().into_owned(),
        ];
        let me = std::process::id();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid == me {
                continue;
            }
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if marks.iter().any(|m| cmdline.contains(m.as_str())) && !is_zombie(pid) {
                out.push(pid);
            }
        }
        out
    }
}

/// Whether `pid` is a zombie (or gone).
pub fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().unwrap_or("").trim().starts_with('Z'))
        .unwrap_or(true)
}

impl Drop for Container {
    fn drop(&mut self) {
        let r = self.delete(true);
        if r.code != 0 && !std::thread::panicking() {
            eprintln!("{}: delete --force {} failed: {r:?}", self.rt.name, self.id);
        }
        // A runtime that lost track of a container leaves its helpers
        // running: end them (they are this test's).
        let left = self.helper_processes();
        if !left.is_empty() {
            eprintln!(
                "{}: processes {left:?} of {} outlived delete --force: killed",
                self.rt.name, self.id
            );
            for pid in left {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// The rest of the first line of `out` that starts with `key `.
pub fn fact(out: &str, key: &str) -> Option<String> {
    facts(out, key).into_iter().next()
}

/// The rest of each line of `out` that starts with `key `.
pub fn facts(out: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key} ");
    out.lines()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

/// A unix socket at `path` that receives one terminal master (as
/// `--console-socket` sends it: an `SCM_RIGHTS` fd beside the terminal's
/// name); the thread's result is the master.
pub fn console_socket(path: &Path) -> std::thread::JoinHandle<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 256];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        #[repr(C, align(8))]
        struct Cmsg([u8; 64]);
        let mut cbuf = Cmsg([0; 64]);
        // SAFETY: an all-zero msghdr is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = cbuf.0.len();
        // SAFETY: msg describes buf and cbuf, both live and writable.
        let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, 0) };
        assert!(n > 0, "nothing came on the console socket");
        // SAFETY: the kernel filled msg_controllen bytes of cbuf; the
        // first header carries the fd.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            assert!(!c.is_null(), "no fd came on the console socket");
            assert_eq!((*c).cmsg_type, libc::SCM_RIGHTS);
            let fd = libc::CMSG_DATA(c).cast::<i32>().read_unaligned();
            OwnedFd::from_raw_fd(fd)
        }
    })
}
