//! OCI conformance: each case writes a bundle (busybox rootfs + the static
//! checker program, `tests/oci/checker.c`), drives a runtime binary
//! through the lifecycle, and checks from inside the container (the
//! checker's report) or from outside (state, exit codes, hook logs) that
//! the runtime spec was applied.
//!
//! Every case runs against runc (`runc::CASE`: the suite's own check) and
//! against our runsc (`ours::CASE`, or any runtime `OCI_SUITE_RUNTIME`
//! names, see `tests::oci::Runtime::ours`). Containers have ids unique to
//! the test process and their own `--root`, so cases run in parallel.
//!
//! `cargo test --release -p tests --test oci runc::` gives runc's pass
//! count, `... -- --ignored ours::` ours. Cases runc itself fails carry
//! the reason in the list below and are ignored for runc.
//!
//! Needs runc, busybox-static, a C compiler with a static libc, and ps
//! (runc's `ps` runs it); skips with a message without runc or busybox.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tests::oci::{fact, facts, Container, Runtime, StateRoot};
use tests::ScratchDir;

/// The single list of cases: each becomes `runc::NAME` and `ours::NAME`.
/// `NAME = "why"` marks a case runc itself fails (a runc bug or gap, not
/// the suite's): its runc test is ignored with that reason. `NAME /
/// "why"` marks one our runtime does not pass, with the reason (host
/// behaviour the sandbox deliberately does not give, or a part not built
/// yet): its `ours` test is ignored.
macro_rules! oci_cases {
    ($($name:ident $(= $runc_gap:literal)? $(/ $ours_gap:literal)?)*) => {
        mod runc {
            $(
                #[test]
                $(#[ignore = $runc_gap])?
                fn $name() {
                    if !tests::rootfs::have_busybox() {
                        return;
                    }
                    if let Some(rt) = tests::oci::Runtime::runc() {
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
                    if !tests::rootfs::have_busybox() {
                        return;
                    }
                    super::$name(&tests::oci::Runtime::ours());
                }
            )*
        }
    };
}

oci_cases! {
    process_args
    process_path_lookup
    process_env
    process_cwd
    process_user
    process_umask
    process_rlimits
    process_caps_root
    process_caps_user
    process_no_new_privileges
    no_new_privileges_setuid
    process_oom_score_adj
    root_readonly
    root_writable
    hostname
    terminal
    domainname = "runc 1.1 ignores domainname (runc PR 3600, in runc 1.2)"
    mount_bind_rw
    mount_bind_ro
    mount_tmpfs_size_mode
    mount_kernel_filesystems
    mount_mqueue
    mount_missing_destination
    mount_nosuid
    mount_nodev
    mount_noexec
    masked_paths
    readonly_paths
    hooks_state_stdin
    hooks_order = "runc 1.1 runs poststart hooks in create, before start (runc issue 1710, fixed upstream by runc PR 5186)"
    hook_failure_fails_create
    hook_timeout
    hook_start_container_failure
    hook_start_container_failure_fails_start = "runc 1.1 start returns before its init runs the startContainer hooks"
    hook_poststop_failure
    hook_poststop_failure_runs_the_rest = "runc 1.1 stops at the first failing poststop hook"
    state_transitions
    pid_file
    start_twice_errors
    kill_term_ignored_by_init
    kill_signal_forms
    kill_stopped_errors
    kill_created
    delete_running_errors
    delete_force_running
    delete_force_missing
    delete_leaves_nothing
    delete_after_killed
    run_exit_zero
    run_exit_three
    run_killed
    exec_exit_code
    exec_process_json
    exec_detach
    exec_flags
    ps
    list
    pause_resume
    features
    spec
    error_unknown_id
    error_missing_bundle
    error_bad_config
    error_duplicate_id
    log_json_errors
}

/// A container running `/checker ARGS...`.
fn checker(rt: &Runtime, tag: &str, args: &[&str]) -> Container {
    let mut all = vec!["/checker"];
    all.extend_from_slice(args);
    Container::new(rt, tag, &all)
}

/// Runs the container to its end; its output, which must not be empty.
fn report(c: &Container) -> String {
    let out = c.run_to_end();
    assert!(
        !out.is_empty(),
        "{}: no output from the container (errors: {})",
        c.rt.name,
        c.errors()
    );
    out
}

/// The checker's `status KEY` line (from /proc/self/status).
fn status_line(out: &str, key: &str) -> String {
    facts(out, "status")
        .into_iter()
        .find_map(|l| l.strip_prefix(&format!("{key} ")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {key} in the report:\n{out}"))
}

fn assert_fact(out: &str, key: &str, want: &str) {
    let got = fact(out, key);
    assert_eq!(
        got.as_deref(),
        Some(want),
        "fact {key:?}: want {want:?}; report:\n{out}"
    );
}

fn assert_has_line(out: &str, line: &str) {
    assert!(
        out.lines().any(|l| l == line),
        "no line {line:?} in:\n{out}"
    );
}

// ---- process ----

fn process_args(rt: &Runtime) {
    let c = checker(
        rt,
        "args",
        &["process", "one", "two words", "", "tab\there", "ü"],
    );
    let out = report(&c);
    let argv = facts(&out, "argv");
    assert_eq!(
        argv,
        [
            "0 /checker",
            "1 process",
            "2 one",
            "3 two words",
            "4 ",
            "5 tab\\x09here",
            "6 \\xc3\\xbc"
        ],
        "{out}"
    );
}

fn process_path_lookup(rt: &Runtime) {
    // args[0] is found as execvp would: in the PATH of the process's env.
    let c = Container::new(rt, "path-lookup", &["checker", "process"]);
    c.edit(|cfg| cfg["process"]["env"] = json!(["PATH=/no/such/dir:/"]));
    let out = report(&c);
    assert_eq!(facts(&out, "argv"), ["0 checker", "1 process"], "{out}");
}

fn process_env(rt: &Runtime) {
    let c = checker(rt, "env", &["env"]);
    let env = [
        "PATH=/bin:/usr/bin",
        "FOO=bar",
        "EMPTY=",
        "SPACES=a b  c",
        "EQUALS=x=y=z",
    ];
    c.edit(|cfg| cfg["process"]["env"] = json!(env));
    let out = report(&c);
    let got = facts(&out, "env");
    for e in env {
        assert!(got.iter().any(|g| g == e), "{e:?} missing: {got:?}");
    }
    // Nothing else but HOME, which a runtime may add from /etc/passwd.
    for g in &got {
        assert!(
            env.contains(&g.as_str()) || g.starts_with("HOME="),
            "unexpected variable {g:?} (the runtime's own environment leaked?): {got:?}"
        );
    }
}

fn process_cwd(rt: &Runtime) {
    let c = checker(rt, "cwd", &["cwd"]);
    c.edit(|cfg| cfg["process"]["cwd"] = json!("/home/user"));
    let out = report(&c);
    assert_fact(&out, "cwd", "/home/user");
}

fn process_user(rt: &Runtime) {
    let c = checker(rt, "user", &["ids"]);
    c.edit(|cfg| {
        cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 65534]})
    });
    let out = report(&c);
    assert_fact(&out, "uid", "1000 1000");
    assert_fact(&out, "gid", "1000 1000");
    assert_fact(&out, "groups", "5 65534");
    // Without additionalGids, no supplementary groups (none of the
    // runtime's own).
    let c = checker(rt, "user", &["ids"]);
    c.edit(|cfg| cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    let out = report(&c);
    assert_fact(&out, "uid", "1000 1000");
    assert_has_line(&out, "groups");
}

fn process_umask(rt: &Runtime) {
    let c = checker(rt, "umask", &["umask"]);
    c.edit(|cfg| cfg["process"]["user"]["umask"] = json!(0o027));
    let out = report(&c);
    assert_fact(&out, "umask", "0027");
}

fn process_rlimits(rt: &Runtime) {
    // Within the hard limits a runner has (raising a hard limit needs
    // CAP_SYS_RESOURCE, which a CI host may not have).
    let c = checker(rt, "rlimits", &["rlimits"]);
    c.edit(|cfg| {
        cfg["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
            {"type": "RLIMIT_CPU", "soft": 1000, "hard": 2000},
            {"type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
            {"type": "RLIMIT_NPROC", "soft": 500, "hard": 600}
        ])
    });
    let out = report(&c);
    let got = facts(&out, "rlimit");
    for want in [
        "RLIMIT_NOFILE 100 200",
        "RLIMIT_CPU 1000 2000",
        "RLIMIT_MSGQUEUE 4096 8192",
        "RLIMIT_CORE 0 0",
        "RLIMIT_NPROC 500 600",
    ] {
        assert!(got.iter().any(|g| g == want), "{want:?} missing: {got:?}");
    }
}

const CAP_CHOWN: u32 = 0;
const CAP_KILL: u32 = 5;
const CAP_SETGID: u32 = 6;
const CAP_MKNOD: u32 = 27;
const CAP_NET_BIND_SERVICE: u32 = 10;

fn mask(caps: &[u32]) -> String {
    format!("{:016x}", caps.iter().fold(0u64, |m, c| m | (1 << c)))
}

/// The capability sets of the caps cases: inheritable and ambient a
/// subset of permitted, all within the bounding set.
fn set_caps(c: &Container) {
    c.edit(|cfg| {
        cfg["process"]["capabilities"] = json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETGID"],
            "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_CHOWN", "CAP_KILL"],
            "ambient": ["CAP_KILL"]
        })
    });
}

fn process_caps_root(rt: &Runtime) {
    let bounding = [CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE, CAP_SETGID];
    let permitted = [CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE];
    // exec as root: permitted = inheritable | bounding, effective =
    // permitted; with no_new_privs no more than the permitted set before.
    for (nnp, after) in [(false, &bounding[..]), (true, &permitted[..])] {
        let c = checker(rt, "caps-root", &["caps"]);
        set_caps(&c);
        c.edit(|cfg| cfg["process"]["noNewPrivileges"] = json!(nnp));
        let out = report(&c);
        assert_eq!(status_line(&out, "CapBnd"), mask(&bounding), "{out}");
        assert_eq!(
            status_line(&out, "CapInh"),
            mask(&[CAP_KILL, CAP_NET_BIND_SERVICE])
        );
        assert_eq!(status_line(&out, "CapAmb"), mask(&[CAP_KILL]));
        assert_eq!(status_line(&out, "CapPrm"), mask(after), "nnp {nnp}");
        assert_eq!(status_line(&out, "CapEff"), mask(after), "nnp {nnp}");
    }
}

fn process_caps_user(rt: &Runtime) {
    let c = checker(rt, "caps-user", &["ids", ";", "caps"]);
    set_caps(&c);
    c.edit(|cfg| cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    let out = report(&c);
    assert_fact(&out, "uid", "1000 1000");
    assert_eq!(
        status_line(&out, "CapBnd"),
        mask(&[CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE, CAP_SETGID])
    );
    assert_eq!(
        status_line(&out, "CapInh"),
        mask(&[CAP_KILL, CAP_NET_BIND_SERVICE])
    );
    // exec as a user without file capabilities: permitted = effective =
    // ambient.
    assert_eq!(status_line(&out, "CapAmb"), mask(&[CAP_KILL]));
    assert_eq!(status_line(&out, "CapPrm"), mask(&[CAP_KILL]));
    assert_eq!(status_line(&out, "CapEff"), mask(&[CAP_KILL]));
}

fn process_no_new_privileges(rt: &Runtime) {
    // The runner itself may run with no_new_privs, which is inherited.
    let own = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("NoNewPrivs:") && l.ends_with('1'));
    for (nnp, want) in [(true, "1"), (false, if own { "1" } else { "0" })] {
        let c = checker(rt, "nnp", &["caps"]);
        c.edit(|cfg| cfg["process"]["noNewPrivileges"] = json!(nnp));
        let out = report(&c);
        assert_fact(&out, "nnp", want);
        assert_eq!(status_line(&out, "NoNewPrivs"), want);
    }
}

fn process_oom_score_adj(rt: &Runtime) {
    // Only raising works without CAP_SYS_RESOURCE.
    let own: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let want = (own.max(0) + 500).min(1000);
    let c = checker(rt, "oom", &["oom"]);
    c.edit(|cfg| cfg["process"]["oomScoreAdj"] = json!(want));
    let out = report(&c);
    assert_fact(&out, "oom", &want.to_string());
}

// ---- root, hostname ----

fn root_readonly(rt: &Runtime) {
    let c = checker(
        rt,
        "root-ro",
        &["write", "/tmp/x", "/etc/y", "/dev/shm/z", ";", "mounts"],
    );
    c.edit(|cfg| cfg["root"]["readonly"] = json!(true));
    let out = report(&c);
    assert_has_line(&out, "write /tmp/x EROFS");
    assert_has_line(&out, "write /etc/y EROFS");
    // Mounts on top of the root stay as they are.
    assert_has_line(&out, "write /dev/shm/z ok");
    let root = facts(&out, "mount")
        .into_iter()
        .rfind(|m| m.starts_with("/ "))
        .unwrap_or_else(|| panic!("no / in the mounts:\n{out}"));
    let opts = root.split(' ').nth(2).unwrap();
    assert!(
        opts.split(',').any(|o| o == "ro"),
        "/ is not mounted ro: {root}"
    );
    assert!(!c.rootfs().join("tmp/x").exists());
}

fn root_writable(rt: &Runtime) {
    let c = checker(rt, "root-rw", &["write", "/tmp/x", "/etc/y"]);
    c.edit(|cfg| cfg["root"]["readonly"] = json!(false));
    let out = report(&c);
    assert_has_line(&out, "write /tmp/x ok");
    assert_has_line(&out, "write /etc/y ok");
    assert_eq!(
        std::fs::read_to_string(c.rootfs().join("tmp/x"))
            .ok()
            .as_deref(),
        Some("x"),
        "the container's write is not in the rootfs on the host"
    );
}

fn hostname(rt: &Runtime) {
    let c = checker(rt, "hostname", &["hostname"]);
    c.edit(|cfg| cfg["hostname"] = json!("oci-host"));
    let out = report(&c);
    assert_fact(&out, "hostname", "oci-host");
}

fn domainname(rt: &Runtime) {
    let c = checker(rt, "domainname", &["hostname"]);
    c.edit(|cfg| {
        cfg["hostname"] = json!("oci-host");
        cfg["domainname"] = json!("oci.example");
    });
    let out = report(&c);
    assert_fact(&out, "hostname", "oci-host");
    assert_fact(&out, "domainname", "oci.example");
}

// ---- mounts ----

/// Adds `mount` to the config's mounts.
fn add_mount(c: &Container, mount: Value) {
    c.edit(|cfg| cfg["mounts"].as_array_mut().unwrap().push(mount));
}

/// The last mount at `point` in the checker's `mounts` report: (type,
/// mount options, super-block options).
fn mount_at(out: &str, point: &str) -> (String, Vec<String>, Vec<String>) {
    let m = facts(out, "mount")
        .into_iter()
        .rfind(|m| m.split(' ').next() == Some(point))
        .unwrap_or_else(|| panic!("nothing mounted at {point}:\n{out}"));
    let f: Vec<&str> = m.split(' ').collect();
    let split = |s: &str| s.split(',').map(str::to_string).collect();
    (f[1].to_string(), split(f[2]), split(f[3]))
}

/// A host directory with a file `hello` ("from the host").
fn host_dir(tag: &str) -> ScratchDir {
    let d = ScratchDir::new(tag);
    std::fs::write(d.0.join("hello"), "from the host").unwrap();
    d
}

/// A container that reads `/data/hello`, writes `/data/new` and reports
/// its mounts, with a host directory bind-mounted on `/data` with
/// `options`; the directory and the report.
fn bind_checker(rt: &Runtime, tag: &str, options: Value) -> (ScratchDir, String) {
    let dir = host_dir(tag);
    let c = checker(
        rt,
        tag,
        &[
            "read",
            "/data/hello",
            ";",
            "write",
            "/data/new",
            ";",
            "mounts",
        ],
    );
    add_mount(
        &c,
        json!({"destination": "/data", "type": "bind", "source": dir.0, "options": options}),
    );
    let out = report(&c);
    (dir, out)
}

fn mount_bind_rw(rt: &Runtime) {
    let (dir, out) = bind_checker(rt, "bind-rw", json!(["rbind", "rw"]));
    assert_has_line(&out, "read /data/hello ok from the host");
    assert_has_line(&out, "write /data/new ok");
    assert_eq!(
        std::fs::read_to_string(dir.0.join("new")).ok().as_deref(),
        Some("x"),
        "the container's write is not in the host directory"
    );
    let (_, opts, _) = mount_at(&out, "/data");
    assert!(opts.contains(&"rw".to_string()), "{opts:?}");
}

fn mount_bind_ro(rt: &Runtime) {
    let (dir, out) = bind_checker(rt, "bind-ro", json!(["bind", "ro"]));
    assert_has_line(&out, "read /data/hello ok from the host");
    assert_has_line(&out, "write /data/new EROFS");
    assert!(!dir.0.join("new").exists());
    let (_, opts, _) = mount_at(&out, "/data");
    assert!(opts.contains(&"ro".to_string()), "{opts:?}");
}

fn mount_tmpfs_size_mode(rt: &Runtime) {
    let c = checker(
        rt,
        "tmpfs",
        &[
            "statfs",
            "/scratch",
            ";",
            "stat",
            "/scratch",
            ";",
            "write",
            "/scratch/f",
            ";",
            "mounts",
        ],
    );
    add_mount(
        &c,
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "size=1m", "mode=750"]}),
    );
    let out = report(&c);
    // TMPFS_MAGIC, 1 MiB.
    assert_has_line(&out, "statfs /scratch 0x1021994 1048576");
    assert_has_line(&out, "stat /scratch dir 0750 0 0");
    assert_has_line(&out, "write /scratch/f ok");
    let (fstype, opts, _) = mount_at(&out, "/scratch");
    assert_eq!(fstype, "tmpfs");
    assert!(opts.contains(&"nosuid".to_string()), "{opts:?}");
}

fn mount_kernel_filesystems(rt: &Runtime) {
    let c = checker(
        rt,
        "kernelfs",
        &[
            "read",
            "/k/proc/1/comm",
            ";",
            "stat",
            "/k/sys/kernel",
            "/k/pts/ptmx",
            "/dev/pts/ptmx",
            ";",
            "mounts",
        ],
    );
    for (dest, ty, opts) in [
        ("/k/proc", "proc", json!(["nosuid", "nodev", "noexec"])),
        (
            "/k/sys",
            "sysfs",
            json!(["nosuid", "nodev", "noexec", "ro"]),
        ),
        (
            "/k/pts",
            "devpts",
            json!([
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620"
            ]),
        ),
    ] {
        add_mount(
            &c,
            json!({"destination": dest, "type": ty, "source": ty, "options": opts}),
        );
    }
    let out = report(&c);
    // The container's own pid namespace: pid 1 is the checker.
    assert_has_line(&out, "read /k/proc/1/comm ok checker\\n");
    assert!(
        fact(&out, "stat /k/sys/kernel").is_some_and(|s| s.starts_with("dir ")),
        "{out}"
    );
    assert!(
        fact(&out, "stat /k/pts/ptmx").is_some_and(|s| s.starts_with("chr ")),
        "{out}"
    );
    for (point, ty) in [
        ("/k/proc", "proc"),
        ("/k/sys", "sysfs"),
        ("/k/pts", "devpts"),
        // And those of the default config.
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/sys", "sysfs"),
    ] {
        let (fstype, opts, _) = mount_at(&out, point);
        assert_eq!(fstype, ty, "type of {point}");
        // All asked for nosuid but the default config's /proc.
        if point != "/proc" {
            assert!(opts.contains(&"nosuid".to_string()), "{point}: {opts:?}");
        }
    }
    let (_, opts, _) = mount_at(&out, "/k/sys");
    assert!(opts.contains(&"ro".to_string()), "/k/sys: {opts:?}");
}

fn mount_mqueue(rt: &Runtime) {
    let c = checker(rt, "mqueue", &["mounts"]);
    add_mount(
        &c,
        json!({"destination": "/k/mq", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "nodev", "noexec"]}),
    );
    let out = report(&c);
    for point in ["/k/mq", "/dev/mqueue"] {
        let (fstype, opts, _) = mount_at(&out, point);
        assert_eq!(fstype, "mqueue", "type of {point}");
        for o in ["nosuid", "nodev", "noexec"] {
            assert!(opts.contains(&o.to_string()), "{point}: {opts:?}");
        }
    }
}

/// `process.terminal`: create sends a terminal's master over
/// `--console-socket`; the process's streams are that terminal, of the
/// size `consoleSize` says, its controlling terminal with the process in
/// the foreground; what it writes is read from the master.
fn terminal(rt: &Runtime) {
    let c = checker(rt, "terminal", &["tty"]);
    c.edit(|cfg| {
        cfg["process"]["terminal"] = json!(true);
        cfg["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    });
    let sock = c.bundle().join("console.sock");
    let master = tests::oci::console_socket(&sock);
    let b = c.bundle().to_string_lossy().into_owned();
    let s = sock.to_string_lossy().into_owned();
    let r = c.rt(&["create", "--bundle", &b, "--console-socket", &s, &c.id]);
    assert_eq!(r.code, 0, "create: {r:?}");
    let master = std::fs::File::from(master.join().unwrap());
    c.start_ok();
    // Read until the process has gone and the terminal hangs up.
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut m = master;
        let mut buf = [0u8; 4096];
        loop {
            match std::io::Read::read(&mut m, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&out).contains("tty session") {
                break;
            }
        }
        String::from_utf8_lossy(&out).replace("\r\n", "\n")
    });
    let out = reader.join().unwrap();
    for line in [
        "tty isatty 1 1 1",
        "tty name /dev/pts/N",
        "tty winsize 30 100",
        "tty foreground self",
        "tty session self",
    ] {
        assert_has_line(&out, line);
    }
    c.wait_status("stopped");
}

fn mount_missing_destination(rt: &Runtime) {
    let dir = host_dir("missing-dest");
    let c = checker(
        rt,
        "missing-dest",
        &[
            "stat",
            "/new/deep/dir",
            "/etc/new-file",
            ";",
            "read",
            "/etc/new-file",
            ";",
            "mounts",
        ],
    );
    add_mount(
        &c,
        json!({"destination": "/new/deep/dir", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]}),
    );
    add_mount(
        &c,
        json!({"destination": "/etc/new-file", "type": "bind", "source": dir.0.join("hello"), "options": ["bind"]}),
    );
    let out = report(&c);
    assert_has_line(&out, "stat /new/deep/dir dir 0755 0 0");
    assert!(
        fact(&out, "stat /etc/new-file").is_some_and(|s| s.starts_with("file ")),
        "{out}"
    );
    assert_has_line(&out, "read /etc/new-file ok from the host");
    assert_eq!(mount_at(&out, "/new/deep/dir").0, "tmpfs");
    mount_at(&out, "/etc/new-file");
}

/// A host directory holding a set-user-ID-root copy of the checker.
fn suid_dir() -> ScratchDir {
    use std::os::unix::fs::PermissionsExt;
    let d = ScratchDir::new("suid");
    let bin = d.0.join("checker");
    std::fs::copy(tests::oci::checker(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o4755)).unwrap();
    d
}

fn mount_nosuid(rt: &Runtime) {
    let dir = suid_dir();
    let c = checker(
        rt,
        "nosuid",
        &[
            "spawn",
            "/suid/checker",
            "process",
            ";",
            "spawn",
            "/nosuid/checker",
            "process",
        ],
    );
    c.edit(|cfg| {
        cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        cfg["process"]["noNewPrivileges"] = json!(false);
        // Set-user-ID works up to the bounding set: keep one.
        cfg["process"]["capabilities"]["bounding"] = json!(["CAP_KILL"]);
    });
    add_mount(
        &c,
        json!({"destination": "/suid", "type": "bind", "source": dir.0, "options": ["bind"]}),
    );
    add_mount(
        &c,
        json!({"destination": "/nosuid", "type": "bind", "source": dir.0, "options": ["bind", "nosuid"]}),
    );
    let out = report(&c);
    assert_has_line(&out, "spawn /suid/checker exit 0");
    assert_has_line(&out, "spawn /nosuid/checker exit 0");
    // The first report: set-user-ID applied; the second: not.
    assert_eq!(facts(&out, "uid"), ["1000 0", "1000 1000"], "{out}");
}

fn no_new_privileges_setuid(rt: &Runtime) {
    let dir = suid_dir();
    let c = checker(rt, "nnp-setuid", &["spawn", "/suid/checker", "process"]);
    c.edit(|cfg| {
        cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        cfg["process"]["noNewPrivileges"] = json!(true);
    });
    add_mount(
        &c,
        json!({"destination": "/suid", "type": "bind", "source": dir.0, "options": ["bind"]}),
    );
    let out = report(&c);
    assert_has_line(&out, "spawn /suid/checker exit 0");
    // Set-user-ID does not apply under no_new_privs.
    assert_fact(&out, "uid", "1000 1000");
    assert_fact(&out, "nnp", "1");
}

fn mount_nodev(rt: &Runtime) {
    let c = checker(
        rt,
        "nodev",
        &["mknod", "/devok/null", ";", "mknod", "/nodev/null"],
    );
    c.edit(|cfg| {
        let caps = json!(["CAP_MKNOD", "CAP_KILL"]);
        for set in ["bounding", "effective", "permitted"] {
            cfg["process"]["capabilities"][set] = caps.clone();
        }
        // The device cgroup must let /dev/null's numbers through.
        cfg["linux"]["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
        ]);
    });
    assert_eq!(CAP_MKNOD, 27);
    add_mount(
        &c,
        json!({"destination": "/devok", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]}),
    );
    add_mount(
        &c,
        json!({"destination": "/nodev", "type": "tmpfs", "source": "tmpfs", "options": ["nodev", "mode=755"]}),
    );
    let out = report(&c);
    assert_has_line(&out, "mknod /devok/null ok");
    assert_has_line(&out, "open /devok/null ok");
    assert_has_line(&out, "mknod /nodev/null ok");
    assert_has_line(&out, "open /nodev/null EACCES");
}

fn mount_noexec(rt: &Runtime) {
    let c = checker(
        rt,
        "noexec",
        &[
            "copy",
            "/checker",
            "/exec/c",
            "0755",
            ";",
            "spawn",
            "/exec/c",
            "exit",
            "0",
            ";",
            "copy",
            "/checker",
            "/noexec/c",
            "0755",
            ";",
            "spawn",
            "/noexec/c",
            "exit",
            "0",
        ],
    );
    add_mount(
        &c,
        json!({"destination": "/exec", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]}),
    );
    add_mount(
        &c,
        json!({"destination": "/noexec", "type": "tmpfs", "source": "tmpfs", "options": ["noexec", "mode=755"]}),
    );
    let out = report(&c);
    assert_has_line(&out, "copy /exec/c ok");
    assert_has_line(&out, "copy /noexec/c ok");
    assert_has_line(&out, "spawn /exec/c exit 0");
    assert_has_line(&out, "spawn /noexec/c EACCES");
}

// ---- masked and read-only paths ----

fn masked_paths(rt: &Runtime) {
    let mut paths = vec!["/secret-file", "/secret-dir"];
    // Kernel files of the default list, where this kernel has them.
    for p in ["/proc/keys", "/proc/timer_list", "/proc/kcore"] {
        if Path::new(p).exists() {
            paths.push(p);
        }
    }
    let mut args = vec!["masked"];
    args.extend(&paths);
    args.extend([";", "masked", "/visible-file"]);
    let c = checker(rt, "masked", &args);
    std::fs::write(c.rootfs().join("secret-file"), "secret").unwrap();
    std::fs::write(c.rootfs().join("visible-file"), "visible").unwrap();
    std::fs::create_dir(c.rootfs().join("secret-dir")).unwrap();
    std::fs::write(c.rootfs().join("secret-dir/a"), "a").unwrap();
    std::fs::write(c.rootfs().join("secret-dir/b"), "b").unwrap();
    let mut masked: Vec<&str> = paths.clone();
    // A path that does not exist is no error.
    masked.push("/no/such/path");
    c.edit(|cfg| cfg["linux"]["maskedPaths"] = json!(masked));
    let out = report(&c);
    assert_has_line(&out, "masked /secret-file file 0");
    assert_has_line(&out, "masked /secret-dir dir 0");
    assert_has_line(&out, "masked /visible-file file 7");
    // A kernel file reads empty, or is not there at all (a sandbox's
    // /proc has no /proc/keys, timer_list or kcore to hide).
    for p in &paths[2..] {
        let masked = format!("masked {p} file 0");
        let absent = format!("masked {p} ENOENT");
        assert!(
            out.lines().any(|l| l == masked || l == absent),
            "{p} neither masked nor absent:\n{out}"
        );
    }
}

fn readonly_paths(rt: &Runtime) {
    let c = checker(
        rt,
        "readonly",
        &[
            "readonly",
            "/ro-dir",
            "/ro-dir/file",
            "/ro-file",
            "/proc/sys/kernel/domainname",
            "/rw-dir",
            ";",
            "read",
            "/ro-dir/file",
            ";",
            "mounts",
        ],
    );
    for d in ["ro-dir", "rw-dir"] {
        std::fs::create_dir(c.rootfs().join(d)).unwrap();
    }
    std::fs::write(c.rootfs().join("ro-dir/file"), "kept").unwrap();
    std::fs::write(c.rootfs().join("ro-file"), "kept").unwrap();
    c.edit(|cfg| {
        cfg["linux"]["readonlyPaths"] = json!(["/ro-dir", "/ro-file", "/proc/sys", "/no/such/path"])
    });
    let out = report(&c);
    for p in [
        "/ro-dir",
        "/ro-dir/file",
        "/ro-file",
        "/proc/sys/kernel/domainname",
    ] {
        assert_has_line(&out, &format!("readonly {p} EROFS"));
    }
    for p in ["/ro-dir", "/ro-file", "/proc/sys"] {
        let (_, opts, _) = mount_at(&out, p);
        assert!(opts.contains(&"ro".to_string()), "{p}: {opts:?}");
    }
    assert_has_line(&out, "readonly /rw-dir writable");
    assert_has_line(&out, "read /ro-dir/file ok kept");
}

// ---- hooks ----

/// A container sleeping with one hook of each kind and an annotation.
fn with_all_hooks(rt: &Runtime, tag: &str) -> Container {
    let c = checker(rt, tag, &["sleep"]);
    let hooks = json!({
        "prestart": [c.hook("prestart", "")],
        "createRuntime": [c.hook("createRuntime", "")],
        "createContainer": [c.hook("createContainer", "")],
        "startContainer": [c.hook_inside("startContainer", "")],
        "poststart": [c.hook("poststart", "")],
        "poststop": [c.hook("poststop", "")]
    });
    c.edit(|cfg| {
        cfg["hooks"] = hooks;
        cfg["annotations"] = json!({"org.example.suite": "hooks"});
    });
    c
}

fn hook_names(c: &Container) -> Vec<String> {
    c.hook_entries().into_iter().map(|e| e.name).collect()
}

/// Waits until the hook log has `n` entries.
fn wait_hooks(c: &Container, n: usize) {
    let start = Instant::now();
    while hook_names(c).len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "only hooks {:?} ran",
            hook_names(c)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every hook runs once, with its env, and gets the state on stdin.
fn hooks_state_stdin(rt: &Runtime) {
    let c = with_all_hooks(rt, "hooks-state");
    c.create_ok();
    let pid = c.state()["pid"].as_i64().unwrap();
    c.start_ok();
    wait_hooks(&c, 5);
    assert_eq!(c.kill("KILL").code, 0);
    c.wait_status("stopped");
    assert_eq!(c.delete(false).code, 0);
    let entries = c.hook_entries();
    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "createContainer",
            "createRuntime",
            "poststart",
            "poststop",
            "prestart",
            "startContainer"
        ]
    );
    let bundle = std::fs::canonicalize(c.bundle()).unwrap();
    for e in &entries {
        let s = &e.state;
        assert_eq!(e.env, "set", "{}: the hook's env", e.name);
        assert_eq!(s["id"], c.id.as_str(), "{}: {s}", e.name);
        assert!(s["ociVersion"].is_string(), "{}: {s}", e.name);
        assert!(s["status"].is_string(), "{}: {s}", e.name);
        assert_eq!(
            s["bundle"]
                .as_str()
                .map(|b| std::fs::canonicalize(b).unwrap()),
            Some(bundle.clone()),
            "{}: {s}",
            e.name
        );
        assert_eq!(
            s["annotations"]["org.example.suite"], "hooks",
            "{}: {s}",
            e.name
        );
        match e.name.as_str() {
            "poststop" => {}
            // Run in the container's namespaces: its pid as seen there
            // (runc) or from the host.
            "createContainer" | "startContainer" => assert!(
                s["pid"].as_i64() == Some(pid) || s["pid"].as_i64() == Some(1),
                "{}: {s}",
                e.name
            ),
            _ => assert_eq!(s["pid"].as_i64(), Some(pid), "{}: {s}", e.name),
        }
    }
    let status = |name: &str| {
        let e = entries.iter().find(|e| e.name == name).unwrap();
        e.state["status"].as_str().unwrap_or("").to_string()
    };
    // The hooks of create run while the container is being created.
    for name in ["prestart", "createRuntime", "createContainer"] {
        assert_eq!(status(name), "creating", "{name}");
    }
    assert_eq!(status("poststop"), "stopped");
}

/// Hooks run in the order of the lifecycle: prestart, createRuntime and
/// createContainer in create; startContainer, then poststart after the
/// process started, in start; poststop in delete.
fn hooks_order(rt: &Runtime) {
    let c = with_all_hooks(rt, "hooks-order");
    c.create_ok();
    assert_eq!(
        hook_names(&c),
        ["prestart", "createRuntime", "createContainer"],
        "after create"
    );
    c.start_ok();
    wait_hooks(&c, 5);
    assert_eq!(
        hook_names(&c),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart"
        ],
        "after start"
    );
    assert_eq!(c.kill("KILL").code, 0);
    c.wait_status("stopped");
    assert_eq!(hook_names(&c).len(), 5, "before delete");
    assert_eq!(c.delete(false).code, 0);
    assert_eq!(
        hook_names(&c).last().map(String::as_str),
        Some("poststop"),
        "after delete"
    );
}

fn hook_failure_fails_create(rt: &Runtime) {
    for phase in ["prestart", "createRuntime", "createContainer"] {
        let c = checker(rt, "hook-fails", &["write", "/hooks/ran"]);
        let hooks = json!({ phase: [c.hook(phase, "exit 1")] });
        c.edit(|cfg| cfg["hooks"] = hooks);
        let r = c.create();
        assert_ne!(r.code, 0, "{phase} hook failed, yet create succeeded");
        assert_eq!(
            c.hook_entries()
                .into_iter()
                .map(|e| e.name)
                .collect::<Vec<_>>(),
            [phase]
        );
        // No container to start.
        let s = c.rt(&["start", &c.id]);
        assert_ne!(s.code, 0, "start after a failed {phase} hook: {s:?}");
        std::thread::sleep(Duration::from_millis(100));
        assert!(!c.rootfs().join("hooks/ran").exists());
    }
}

fn hook_timeout(rt: &Runtime) {
    let c = checker(rt, "hook-timeout", &["exit", "0"]);
    let mut hook = c.hook("prestart", "exec sleep 60");
    hook["timeout"] = json!(1);
    c.edit(|cfg| cfg["hooks"] = json!({ "prestart": [hook] }));
    let start = Instant::now();
    let r = c.create();
    let took = start.elapsed();
    assert_ne!(r.code, 0, "a hook past its timeout, yet create succeeded");
    assert!(
        took < Duration::from_secs(20),
        "create took {took:?} with a 1 s hook timeout"
    );
}

/// A container whose startContainer hook fails, started; the result of
/// start.
fn start_container_fails(rt: &Runtime, tag: &str) -> (Container, tests::RunResult) {
    let c = checker(rt, tag, &["write", "/hooks/ran"]);
    let hooks = json!({ "startContainer": [c.hook_inside("startContainer", "exit 1")] });
    c.edit(|cfg| cfg["hooks"] = hooks);
    c.create_ok();
    let r = c.start();
    wait_hooks(&c, 1);
    (c, r)
}

fn hook_start_container_failure(rt: &Runtime) {
    // The container stops without running its process.
    let (c, r) = start_container_fails(rt, "start-hook-fails");
    assert_eq!(hook_names(&c), ["startContainer"]);
    c.wait_status("stopped");
    assert!(
        !c.rootfs().join("hooks/ran").exists(),
        "the process ran after its startContainer hook failed: {r:?}"
    );
}

fn hook_start_container_failure_fails_start(rt: &Runtime) {
    let (_c, r) = start_container_fails(rt, "start-hook-error");
    assert_ne!(
        r.code, 0,
        "a startContainer hook failed, yet start succeeded"
    );
}

/// A container whose first poststop hook fails, run to its end and
/// deleted; the result of delete.
fn poststop_fails(rt: &Runtime, tag: &str) -> (Container, tests::RunResult) {
    let c = checker(rt, tag, &["exit", "0"]);
    let hooks = json!({ "poststop": [c.hook("poststop", "exit 1"), c.hook("second", "")] });
    c.edit(|cfg| cfg["hooks"] = hooks);
    c.run_to_end();
    let r = c.delete(false);
    (c, r)
}

fn hook_poststop_failure(rt: &Runtime) {
    // A failing poststop hook is a warning: the container is deleted.
    let (c, r) = poststop_fails(rt, "poststop-fails");
    assert_eq!(r.code, 0, "{r:?}");
    assert_ne!(
        c.rt(&["state", &c.id]).code,
        0,
        "the container is still there after delete: {r:?}"
    );
}

fn hook_poststop_failure_runs_the_rest(rt: &Runtime) {
    // "the remaining hooks and lifecycle continue as if the hook had
    // succeeded".
    let (c, r) = poststop_fails(rt, "poststop-rest");
    assert_eq!(hook_names(&c), ["poststop", "second"], "{r:?}");
}

// ---- lifecycle ----

/// The pid a pid file holds.
fn read_pid(path: &Path) -> i64 {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no pid file {}: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid file {}: {text:?}: {e}", path.display()))
}

/// `text` as JSON, or a failure that shows it.
fn parse_json(what: &str, text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what} is not JSON ({e}): {text:?}"))
}

/// The strings of the JSON array `v`, or a failure that shows it.
fn strings<'a>(what: &str, v: &'a Value) -> Vec<&'a str> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what} is not an array: {v}"))
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

fn pid_alive(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn state_transitions(rt: &Runtime) {
    let c = checker(rt, "state", &["write", "/hooks/ran", ";", "sleep"]);
    assert_ne!(
        c.rt(&["state", &c.id]).code,
        0,
        "state of a container never created"
    );
    c.create_ok();
    let s = c.state();
    assert_eq!(s["status"], "created", "{s}");
    assert_eq!(s["id"], c.id.as_str(), "{s}");
    assert!(s["ociVersion"].is_string(), "{s}");
    assert_eq!(
        s["bundle"]
            .as_str()
            .map(|b| std::fs::canonicalize(b).unwrap()),
        Some(std::fs::canonicalize(c.bundle()).unwrap()),
        "{s}"
    );
    let pid = s["pid"].as_i64().unwrap_or(0);
    assert!(pid > 0 && pid_alive(pid), "created: pid {pid}: {s}");
    // The user's program has not run yet.
    std::thread::sleep(Duration::from_millis(100));
    assert!(!c.rootfs().join("hooks/ran").exists(), "ran before start");
    c.start_ok();
    let s = c.wait_status("running");
    assert_eq!(s["pid"].as_i64(), Some(pid), "{s}");
    let start = Instant::now();
    while !c.rootfs().join("hooks/ran").exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(c.kill("KILL").code, 0);
    c.wait_status("stopped");
    assert_eq!(c.delete(false).code, 0);
    assert_ne!(
        c.rt(&["state", &c.id]).code,
        0,
        "state after delete succeeded"
    );
    wait_gone(pid);
}

fn is_zombie(pid: i64) -> bool {
    tests::oci::is_zombie(pid as u32)
}

/// Waits until `pid` is gone (or a zombie no one reaps).
fn wait_gone(pid: i64) {
    let start = Instant::now();
    while pid_alive(pid) && !is_zombie(pid) {
        assert!(start.elapsed() < Duration::from_secs(10), "{pid} lives on");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pid_file(rt: &Runtime) {
    let c = checker(rt, "pidfile", &["sleep"]);
    c.create_ok();
    let pid = read_pid(&c.pid_file());
    assert_eq!(c.state()["pid"].as_i64(), Some(pid));
    assert!(pid_alive(pid));
}

fn start_twice_errors(rt: &Runtime) {
    let c = checker(rt, "start-twice", &["sleep"]);
    c.create_ok();
    c.start_ok();
    let r = c.start();
    assert_eq!(r.code, 1, "a second start: {r:?}");
    assert_eq!(c.status(), "running");
}

fn kill_term_ignored_by_init(rt: &Runtime) {
    let c = checker(rt, "kill-term", &["sleep"]);
    c.create_ok();
    c.start_ok();
    c.wait_status("running");
    assert_eq!(c.kill("TERM").code, 0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        c.status(),
        "running",
        "SIGTERM ended a PID 1 without a handler"
    );
    assert_eq!(c.kill("KILL").code, 0);
    c.wait_status("stopped");
}

fn kill_signal_forms(rt: &Runtime) {
    let c = checker(rt, "kill-forms", &["signal-wait", "5"]);
    c.create_ok();
    c.start_ok();
    c.wait_output_line("ready");
    for (sig, num) in [
        (Some("USR1"), 10),
        (Some("SIGUSR2"), 12),
        (Some("1"), 1),
        (Some("SIGWINCH"), 28),
        (None, 15),
    ] {
        let r = match sig {
            Some(s) => c.kill(s),
            None => c.rt(&["kill", &c.id]),
        };
        assert_eq!(r.code, 0, "kill {sig:?}: {r:?}");
        c.wait_output_line(&format!("signal {num}"));
    }
    c.wait_status("stopped");
}

fn kill_stopped_errors(rt: &Runtime) {
    let c = checker(rt, "kill-stopped", &["exit", "0"]);
    c.run_to_end();
    let r = c.kill("KILL");
    assert_eq!(r.code, 1, "kill of a stopped container: {r:?}");
    assert_eq!(c.status(), "stopped");
}

fn kill_created(rt: &Runtime) {
    let c = checker(rt, "kill-created", &["write", "/hooks/ran"]);
    c.create_ok();
    let r = c.kill("KILL");
    assert_eq!(r.code, 0, "kill of a created container: {r:?}");
    c.wait_status("stopped");
    assert!(!c.rootfs().join("hooks/ran").exists());
    assert_eq!(c.delete(false).code, 0);
}

fn delete_running_errors(rt: &Runtime) {
    let c = checker(rt, "delete-running", &["sleep"]);
    c.create_ok();
    c.start_ok();
    let pid = c.wait_status("running")["pid"].as_i64().unwrap();
    let r = c.delete(false);
    assert_eq!(r.code, 1, "delete of a running container: {r:?}");
    assert_eq!(c.status(), "running");
    assert!(pid_alive(pid));
}

fn delete_force_running(rt: &Runtime) {
    let c = checker(rt, "delete-force", &["sleep"]);
    c.create_ok();
    c.start_ok();
    let pid = c.wait_status("running")["pid"].as_i64().unwrap();
    let r = c.delete(true);
    assert_eq!(r.code, 0, "delete --force: {r:?}");
    assert_ne!(c.rt(&["state", &c.id]).code, 0);
    assert_no_helpers(&c);
    wait_gone(pid);
}

/// Waits until no process of the runtime for `c` is left (after delete).
fn assert_no_helpers(c: &Container) {
    let start = Instant::now();
    while !c.helper_processes().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "processes of the runtime outlived delete --force: {:?}",
            c.helper_processes()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A container in a cgroup of its own (under a parent of this test
/// process), sleeping; the cgroup's path.
fn sleeping_in_cgroup(rt: &Runtime, tag: &str) -> (Container, String) {
    let c = checker(rt, tag, &["sleep"]);
    let path = format!("/runsc-oci-suite/{}", c.id);
    c.edit(|cfg| cfg["linux"]["cgroupsPath"] = json!(path));
    c.create_ok();
    c.start_ok();
    c.wait_status("running");
    (c, path)
}

/// Nothing of container `c` is left on the host: no process, no state,
/// no cgroup directory in any hierarchy, no mount.
fn assert_nothing_left(c: &Container, cgroup: &str) {
    assert_no_helpers(c);
    assert!(
        !c.state_root().path().join(&c.id).exists(),
        "the state directory of {} is left",
        c.id
    );
    let mut left = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in rd.flatten() {
            let d = h.path().join(cgroup.trim_start_matches('/'));
            if d.exists() {
                left.push(d);
            }
        }
    }
    let d = Path::new("/sys/fs/cgroup").join(cgroup.trim_start_matches('/'));
    if d.exists() && !left.contains(&d) {
        left.push(d);
    }
    assert!(left.is_empty(), "cgroup directories left: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let bundle = c.bundle().to_string_lossy().into_owned();
    assert!(
        !mounts.lines().any(|l| l.contains(&bundle)),
        "mounts of the bundle left:\n{mounts}"
    );
}

fn delete_leaves_nothing(rt: &Runtime) {
    let (c, cgroup) = sleeping_in_cgroup(rt, "leaves-nothing");
    let r = c.delete(true);
    assert_eq!(r.code, 0, "delete --force: {r:?}");
    assert_nothing_left(&c, &cgroup);
}

/// The container's host process killed from outside (SIGKILL): the
/// container is stopped, and delete still removes all of it.
fn delete_after_killed(rt: &Runtime) {
    let (c, cgroup) = sleeping_in_cgroup(rt, "killed");
    let pid = c.state()["pid"].as_i64().unwrap();
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    c.wait_status("stopped");
    let r = c.delete(false);
    assert_eq!(r.code, 0, "delete: {r:?}");
    assert_nothing_left(&c, &cgroup);
}

fn delete_force_missing(rt: &Runtime) {
    let c = checker(rt, "delete-missing", &["exit", "0"]);
    let r = c.delete(true);
    assert_eq!(r.code, 0, "delete --force of an unknown id: {r:?}");
}

fn run_exit_zero(rt: &Runtime) {
    let c = checker(rt, "run-zero", &["hostname", ";", "exit", "0"]);
    let r = c.run();
    assert_eq!(r.code, 0, "{r:?}");
    assert_has_line(&r.stdout, "hostname runc");
}

fn run_exit_three(rt: &Runtime) {
    let c = checker(rt, "run-three", &["exit", "3"]);
    let r = c.run();
    assert_eq!(r.code, 3, "{r:?}");
}

fn run_killed(rt: &Runtime) {
    let c = checker(rt, "run-killed", &["sleep"]);
    let run = c.spawn_run();
    let start = Instant::now();
    while !c.rt(&["state", &c.id]).stdout.contains("\"running\"") {
        assert!(start.elapsed() < Duration::from_secs(10), "never running");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.kill("KILL").code, 0);
    let r = run.wait(Duration::from_secs(30));
    assert_eq!(r.code, 137, "{r:?}");
}

/// A started container that sleeps.
fn sleeping(rt: &Runtime, tag: &str) -> Container {
    let c = checker(rt, tag, &["sleep"]);
    c.create_ok();
    c.start_ok();
    c.wait_status("running");
    c
}

fn exec_exit_code(rt: &Runtime) {
    let c = sleeping(rt, "exec-code");
    for code in ["0", "7"] {
        let r = c.rt(&["exec", &c.id, "/checker", "hostname", ";", "exit", code]);
        assert_eq!(r.code.to_string(), code, "{r:?}");
        assert_has_line(&r.stdout, "hostname runc");
    }
}

fn exec_process_json(rt: &Runtime) {
    let c = sleeping(rt, "exec-process");
    let p = c.process_file(&json!({
        "terminal": false,
        "args": ["/checker", "process", "exec'd"],
        "env": ["PATH=/bin", "WHO=exec"],
        "cwd": "/tmp",
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [5]},
    }));
    let r = c.rt(&["exec", "--process", &p.to_string_lossy(), &c.id]);
    assert_eq!(r.code, 0, "{r:?}");
    let out = &r.stdout;
    assert_eq!(facts(out, "argv"), ["0 /checker", "1 process", "2 exec'd"]);
    assert_fact(out, "cwd", "/tmp");
    assert_fact(out, "uid", "1000 1000");
    assert_fact(out, "gid", "1000 1000");
    assert_fact(out, "groups", "5");
    let env = facts(out, "env");
    assert!(env.iter().any(|e| e == "WHO=exec"), "{env:?}");
    assert!(
        !env.iter().any(|e| e.starts_with("OCI_SUITE_HOST_ONLY")),
        "{env:?}"
    );
    // In the container's pid namespace, beside its PID 1.
    let pid: i64 = fact(out, "pid").unwrap().parse().unwrap();
    assert!(pid > 1, "{out}");
}

fn exec_detach(rt: &Runtime) {
    let c = sleeping(rt, "exec-detach");
    let pidf = c.bundle().join("exec.pid");
    let start = Instant::now();
    let r = c.rt(&[
        "exec",
        "--detach",
        "--pid-file",
        &pidf.to_string_lossy(),
        &c.id,
        "/checker",
        "sleep",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
    let pid: i64 = read_pid(&pidf);
    assert!(pid_alive(pid));
    assert_ne!(Some(pid), c.state()["pid"].as_i64());
}

fn exec_flags(rt: &Runtime) {
    let c = sleeping(rt, "exec-flags");
    let r = c.rt(&[
        "exec",
        "--env",
        "WHO=flags",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1000",
        &c.id,
        "/checker",
        "process",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let out = &r.stdout;
    assert_fact(out, "cwd", "/tmp");
    assert_fact(out, "uid", "1000 1000");
    assert_fact(out, "gid", "1000 1000");
    assert!(facts(out, "env").iter().any(|e| e == "WHO=flags"), "{out}");
}

fn ps(rt: &Runtime) {
    let c = sleeping(rt, "ps");
    let init = c.state()["pid"].as_i64().unwrap();
    let pidf = c.bundle().join("exec.pid");
    let r = c.rt(&[
        "exec",
        "--detach",
        "--pid-file",
        &pidf.to_string_lossy(),
        &c.id,
        "/checker",
        "sleep",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let exec: i64 = read_pid(&pidf);
    let r = c.rt(&["ps", "--format", "json", &c.id]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut pids: Vec<i64> = serde_json::from_value(parse_json("ps --format json", &r.stdout))
        .unwrap_or_else(|e| panic!("ps --format json: not a list of pids ({e}): {}", r.stdout));
    pids.sort();
    let mut want = vec![init, exec];
    want.sort();
    assert_eq!(pids, want);
    let r = c.rt(&["ps", &c.id]);
    assert_eq!(r.code, 0, "{r:?}");
    let table = &r.stdout;
    assert!(
        table.lines().next().is_some_and(|h| h.contains("PID")),
        "{table}"
    );
    // The table is `ps -ef`'s: runc's shows host pids, a sandbox's its own
    // (as ps inside would); both show the two checker processes.
    assert_eq!(
        table
            .lines()
            .skip(1)
            .filter(|l| l.contains("checker"))
            .count(),
        2,
        "{table}"
    );
}

fn list(rt: &Runtime) {
    let root = StateRoot::new();
    let a = Container::new_in(rt, "list-a", &["/checker", "sleep"], root.clone());
    let b = Container::new_in(rt, "list-b", &["/checker", "sleep"], root);
    a.create_ok();
    b.create_ok();
    b.start_ok();
    b.wait_status("running");
    let r = a.rt(&["list"]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines.first().is_some_and(|h| h.starts_with("ID")),
        "{}",
        r.stdout
    );
    for (c, status) in [(&a, "created"), (&b, "running")] {
        let pid = c.state()["pid"].as_i64().unwrap().to_string();
        let row = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(c.id.as_str()))
            .unwrap_or_else(|| panic!("{} not listed:\n{}", c.id, r.stdout));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols.get(1), Some(&pid.as_str()), "{row}");
        assert_eq!(cols.get(2), Some(&status), "{row}");
    }
    assert_eq!(lines.len(), 3, "{}", r.stdout);
}

fn pause_resume(rt: &Runtime) {
    let c = checker(rt, "pause", &["signal-wait", "1"]);
    c.create_ok();
    c.start_ok();
    c.wait_output_line("ready");
    let r = c.rt(&["pause", &c.id]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(c.status(), "paused");
    // A frozen process handles no signal.
    assert_eq!(c.kill("USR1").code, 0);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!c.output().contains("signal"), "{}", c.output());
    let r = c.rt(&["resume", &c.id]);
    assert_eq!(r.code, 0, "{r:?}");
    c.wait_output_line("signal 10");
    c.wait_status("stopped");
}

fn features(rt: &Runtime) {
    let c = checker(rt, "features", &["exit", "0"]);
    let r = c.rt(&["features"]);
    assert_eq!(r.code, 0, "{r:?}");
    let f = parse_json("features", &r.stdout);
    assert!(f["ociVersionMin"].is_string(), "{f}");
    assert!(f["ociVersionMax"].is_string(), "{f}");
    let hooks = strings("features' hooks", &f["hooks"]);
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(hooks.contains(&h), "{h} not in {hooks:?}");
    }
    let ns = strings("features' namespaces", &f["linux"]["namespaces"]);
    for n in ["pid", "mount", "uts", "ipc", "network"] {
        assert!(ns.contains(&n), "{n} not in {ns:?}");
    }
}

fn spec(rt: &Runtime) {
    let c = checker(rt, "spec", &["exit", "0"]);
    let dir = ScratchDir::new("spec");
    let r = c.rt(&["spec", "--bundle", &dir.0.to_string_lossy()]);
    assert_eq!(r.code, 0, "{r:?}");
    let text = std::fs::read_to_string(dir.0.join("config.json"))
        .unwrap_or_else(|e| panic!("spec wrote no config.json ({e}): {r:?}"));
    let cfg = parse_json("config.json", &text);
    assert!(cfg["ociVersion"].is_string(), "{cfg}");
    assert_eq!(cfg["root"]["path"], "rootfs", "{cfg}");
    assert!(
        cfg["process"]["args"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{cfg}"
    );
    // A second spec does not overwrite it.
    let r = c.rt(&["spec", "--bundle", &dir.0.to_string_lossy()]);
    assert_ne!(r.code, 0, "{r:?}");
}

// ---- errors ----

fn error_unknown_id(rt: &Runtime) {
    let c = checker(rt, "unknown", &["exit", "0"]);
    let id = c.id.as_str();
    for args in [
        vec!["state", id],
        vec!["start", id],
        vec!["kill", id, "KILL"],
        vec!["delete", id],
        vec!["ps", id],
        vec!["exec", id, "/checker", "exit", "0"],
    ] {
        let r = c.rt(&args);
        // exec's own failures may use 255, beyond the exit codes it passes
        // through from the process (runc and crun do).
        if args[0] == "exec" {
            assert!(r.code == 1 || r.code == 255, "{args:?}: {r:?}");
        } else {
            assert_eq!(r.code, 1, "{args:?}: {r:?}");
        }
        assert!(
            r.stderr.contains("does not exist"),
            "{args:?}: no \"does not exist\" in {:?}",
            r.stderr
        );
    }
}

fn error_missing_bundle(rt: &Runtime) {
    let c = checker(rt, "no-bundle", &["exit", "0"]);
    let missing = c.bundle().join("no-such-bundle");
    let r = c.rt(&[
        "create",
        "--bundle",
        &missing.to_string_lossy(),
        "--pid-file",
        &c.pid_file().to_string_lossy(),
        &c.id,
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!r.stderr.is_empty());
    assert_ne!(c.rt(&["state", &c.id]).code, 0);
}

fn error_bad_config(rt: &Runtime) {
    let c = checker(rt, "bad-config", &["exit", "0"]);
    std::fs::write(c.bundle().join("config.json"), "{ this is not json").unwrap();
    let r = c.create();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!r.stderr.is_empty());
    assert_ne!(c.rt(&["state", &c.id]).code, 0);
}

fn error_duplicate_id(rt: &Runtime) {
    let c = checker(rt, "duplicate", &["sleep"]);
    c.create_ok();
    let r = c.create();
    assert_eq!(r.code, 1, "a second create of one id: {r:?}");
    assert_eq!(c.status(), "created");
    // The first is still whole: delete ends all of it.
    let pid = c.state()["pid"].as_i64().unwrap_or(0);
    assert!(pid > 0 && pid_alive(pid), "pid {pid}");
    assert_eq!(c.delete(true).code, 0);
    assert_no_helpers(&c);
    wait_gone(pid);
}

/// The JSON lines of a `--log-format json` log.
fn log_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn log_json_errors(rt: &Runtime) {
    let c = checker(rt, "log-json", &["exit", "0"]);
    let log = c.bundle().join("log.json");
    let log_s = log.to_string_lossy().into_owned();
    let r = c.rt(&["--log", &log_s, "--log-format", "json", "state", &c.id]);
    assert_eq!(r.code, 1, "{r:?}");
    let lines = log_lines(&log);
    let err = lines
        .iter()
        .rev()
        .find(|l| l["level"] == "error")
        .unwrap_or_else(|| panic!("no error line in {lines:?}"));
    assert!(
        err["msg"]
            .as_str()
            .is_some_and(|m| m.contains("does not exist")),
        "{err}"
    );
    assert!(err["time"].is_string(), "{err}");
    // create with a bad config, as containerd's shim calls it.
    std::fs::write(c.bundle().join("config.json"), "{ bad").unwrap();
    let _ = std::fs::remove_file(&log);
    let r = c.rt(&[
        "--log",
        &log_s,
        "--log-format",
        "json",
        "create",
        "--bundle",
        &c.bundle().to_string_lossy(),
        "--pid-file",
        &c.pid_file().to_string_lossy(),
        &c.id,
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let lines = log_lines(&log);
    let err = lines.iter().rev().find(|l| l["level"] == "error");
    assert!(
        err.is_some_and(|e| e["msg"].as_str().is_some_and(|m| !m.is_empty())),
        "no error line in {lines:?}"
    );
}
