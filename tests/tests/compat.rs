//! What the sandbox tells its user after a run: the compatibility report
//! (`--compat-report`), the seccomp profile learned from the run
//! (`--learn-profile`), and the syscall trace's filter and log
//! (`--strace-syscalls`, `--strace-log`).
//!
//! `tests/programs/compat_calls.c` makes one call of each kind the sentry
//! does not support (the report must name each, with its answer, count,
//! processes and first time), and a fixed workload whose learned profile
//! must let it run to the same output under runc and under our runsc
//! (`linux.seccomp`), while what it did not call fails with EPERM.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tests::oci::{Container, Runtime};
use tests::{build_c, build_dir, run_command, runsc, workspace, RunResult, ScratchDir};

fn program() -> PathBuf {
    build_c(&workspace().join("tests/programs/compat_calls.c"), &[])
}

/// `runsc FLAGS do --empty-root PROG ARGS`.
fn run_do(flags: &[&str], prog: &Path, args: &[&str]) -> RunResult {
    let mut cmd = Command::new(runsc());
    cmd.args(flags)
        .args(["do", "--empty-root"])
        .arg(prog)
        .args(args)
        .env("LANG", "C")
        .stdin(Stdio::null());
    run_command(cmd, Duration::from_secs(120)).0
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}:\n{text}", path.display()))
}

/// The entry of `section` named `name`.
fn entry<'a>(report: &'a Value, section: &str, name: &str) -> &'a Value {
    report[section]
        .as_array()
        .unwrap_or_else(|| panic!("no {section} in {report:#}"))
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name:?} is not in {section}: {report:#}"))
}

#[test]
fn report_names_every_kind_of_unsupported_call() {
    let dir = ScratchDir::new("compat-report");
    let report_path = dir.0.join("report.json");
    let r = run_do(
        &["--compat-report", report_path.to_str().unwrap()],
        &program(),
        &["unsupported", "/tmp"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let report = read_json(&report_path);
    // (section, name, syscall, answer, the program's line)
    let expected = [
        (
            "unimplemented_syscalls",
            "syscall lookup_dcookie (212)",
            "lookup_dcookie",
            "ENOSYS",
            "lookup_dcookie: -1 ENOSYS",
        ),
        (
            "unsupported_arguments",
            "ioctl request 0x1234abcd on pipe",
            "ioctl",
            "ENOTTY",
            "ioctl: -1 ENOTTY",
        ),
        (
            "unsupported_arguments",
            "fcntl command 9999",
            "fcntl",
            "EINVAL",
            "fcntl: -1 EINVAL",
        ),
        (
            "unsupported_arguments",
            "prctl option 9999",
            "prctl",
            "EINVAL",
            "prctl: -1 EINVAL",
        ),
        (
            "unsupported_arguments",
            "arch_prctl code 0x9999",
            "arch_prctl",
            "EINVAL",
            "arch_prctl: -1 EINVAL",
        ),
        (
            "unsupported_arguments",
            "socket family AF_PACKET",
            "socket",
            "EAFNOSUPPORT",
            "socket family: -1 EAFNOSUPPORT",
        ),
        (
            "unsupported_arguments",
            "socket protocol 99 of family 1",
            "socket",
            "EPROTONOSUPPORT",
            "socket protocol: -1 EPROTONOSUPPORT",
        ),
        (
            "unsupported_arguments",
            "socket type 4 of family 1",
            "socket",
            "ESOCKTNOSUPPORT",
            "socket type: -1 ESOCKTNOSUPPORT",
        ),
        (
            "unsupported_arguments",
            "setsockopt option level 6 name 1",
            "setsockopt",
            "EOPNOTSUPP",
            "setsockopt: -1 EOPNOTSUPP",
        ),
        (
            "unsupported_arguments",
            "unshare flags CLONE_NEWUSER",
            "unshare",
            "ENOSYS",
            "unshare: -1 ENOSYS",
        ),
        (
            "unsupported_arguments",
            "clone flags CLONE_NEWUTS",
            "clone",
            "ENOSYS",
            "clone: -1 ENOSYS",
        ),
        (
            "unsupported_arguments",
            "mount type ext4",
            "mount",
            "ENODEV",
            "mount type: -1 ENODEV",
        ),
        (
            "unsupported_arguments",
            "mount option tmpfs bogus=1",
            "mount",
            "EINVAL",
            "mount option: -1 EINVAL",
        ),
        (
            "unsupported_arguments",
            "madvise advice 999",
            "madvise",
            "EINVAL",
            "madvise: -1 EINVAL",
        ),
        (
            "unsupported_arguments",
            "futex operation 99",
            "futex",
            "ENOSYS",
            "futex: -1 ENOSYS",
        ),
    ];
    for (section, name, syscall, answer, line) in expected {
        assert!(
            r.stdout.lines().any(|l| l == line),
            "the program did not print {line:?}:\n{}",
            r.stdout
        );
        let e = entry(&report, section, name);
        assert_eq!(e["syscall"], syscall, "{e:#}");
        assert_eq!(e["answer"], answer, "{e:#}");
        assert_eq!(e["count"], 1, "{e:#}");
        assert_eq!(
            e["processes"],
            serde_json::json!([{"pid": 1, "comm": "compat_calls"}]),
            "{e:#}"
        );
        let t = e["first_seconds"].as_f64().unwrap();
        assert!((0.0..60.0).contains(&t), "{e:#}");
        assert!(e["first_time"].as_str().unwrap().ends_with('Z'), "{e:#}");
    }
    // Degraded behaviours: the call succeeds, the report says how.
    for (name, line) in [
        (
            "personality a persona other than PER_LINUX",
            "personality: ok",
        ),
        ("open O_DIRECT", "open O_DIRECT: ok"),
    ] {
        assert!(r.stdout.lines().any(|l| l == line), "{}", r.stdout);
        let e = entry(&report, "degraded", name);
        assert!(!e["behaviour"].as_str().unwrap().is_empty(), "{e:#}");
        assert_eq!(e["count"], 1, "{e:#}");
    }
    // A second process is named by its own pid.
    assert!(
        r.stdout.contains("child fcntl: -1 EINVAL\n"),
        "{}",
        r.stdout
    );
    let child = entry(&report, "unsupported_arguments", "fcntl command 9998");
    let procs = child["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 1, "{child:#}");
    assert_ne!(procs[0]["pid"], 1, "{child:#}");
    // Entries in the order they first happened.
    let args = report["unsupported_arguments"].as_array().unwrap();
    let times: Vec<f64> = args
        .iter()
        .map(|e| e["first_seconds"].as_f64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn report_summary_goes_to_standard_error() {
    let r = run_do(
        &["--compat-report", "-"],
        &program(),
        &["unsupported", "/tmp"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("runsc: compatibility report: ")
            && r.stderr.contains(" unimplemented syscall")
            && r.stderr
                .contains(" unsupported arguments, 2 degraded behaviours\n"),
        "{}",
        r.stderr
    );
    for line in [
        "  unimplemented: syscall lookup_dcookie (212) -> ENOSYS (1 call, by compat_calls[1])",
        "  unsupported: fcntl command 9999 -> EINVAL (1 call, by compat_calls[1])",
        "  unsupported: socket family AF_PACKET -> EAFNOSUPPORT (1 call, by compat_calls[1])",
    ] {
        assert!(
            r.stderr.lines().any(|l| l == line),
            "{line:?} missing:\n{}",
            r.stderr
        );
    }
    // The program's own output is untouched.
    assert!(
        r.stdout.starts_with("lookup_dcookie: -1 ENOSYS\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn report_of_a_workload_that_lacks_nothing() {
    // glibc registers restartable sequences at start (answered ENOSYS);
    // its tunable turns that off, and the workload needs nothing else.
    let mut cmd = Command::new(runsc());
    cmd.args(["--compat-report", "-", "do", "--empty-root"])
        .arg(program())
        .arg("workload")
        .env("GLIBC_TUNABLES", "glibc.pthread.rseq=0")
        .stdin(Stdio::null());
    let r = run_command(cmd, Duration::from_secs(120)).0;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(
            "runsc: compatibility report: the sandbox gave the workload everything it asked for\n"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn report_of_an_oci_container() {
    let rt = Runtime::ours();
    let mut c = Container::new(&rt, "compat-oci", &["/compat_calls", "unsupported", "/tmp"]);
    std::fs::copy(program(), c.rootfs().join("compat_calls")).unwrap();
    let report_path = c.bundle().join("report.json");
    c.rt.flags.extend([
        "--compat-report".to_string(),
        report_path.to_string_lossy().into_owned(),
    ]);
    let r = c.run();
    assert_eq!(r.code, 0, "{r:?}");
    let report = read_json(&report_path);
    let e = entry(&report, "unsupported_arguments", "prctl option 9999");
    assert_eq!(e["processes"][0]["comm"], "compat_calls", "{e:#}");
    entry(
        &report,
        "unimplemented_syscalls",
        "syscall lookup_dcookie (212)",
    );
}

/// Learns a profile from `compat_calls workload` under `runsc do`.
fn learn(dir: &Path) -> (PathBuf, RunResult) {
    let profile = dir.join("profile.json");
    let r = run_do(
        &["--learn-profile", profile.to_str().unwrap()],
        &program(),
        &["workload"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    (profile, r)
}

/// An argument rule: (syscall, argument index, op, value).
type ArgRule = (String, u64, String, u64);

/// The profile's rule lists: the names allowed unconditionally, and each
/// argument rule.
fn rules(profile: &Value) -> (Vec<String>, Vec<ArgRule>) {
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(
        profile["architectures"],
        serde_json::json!(["SCMP_ARCH_X86_64"])
    );
    let mut plain = Vec::new();
    let mut args = Vec::new();
    for r in profile["syscalls"].as_array().unwrap() {
        assert_eq!(r["action"], "SCMP_ACT_ALLOW", "{r:#}");
        let names: Vec<String> = r["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect();
        match r.get("args") {
            None => plain.extend(names),
            Some(a) => {
                let a = &a[0];
                args.push((
                    names[0].clone(),
                    a["index"].as_u64().unwrap(),
                    a["op"].as_str().unwrap().to_string(),
                    a["value"].as_u64().unwrap(),
                ));
            }
        }
    }
    (plain, args)
}

#[test]
fn learned_profile_has_the_calls_made_and_argument_rules() {
    let dir = ScratchDir::new("compat-learn");
    let (profile, _) = learn(&dir.0);
    let p = read_json(&profile);
    let (plain, args) = rules(&p);
    for name in [
        "pipe2",
        "socketpair",
        "wait4",
        "write",
        "execve",
        "exit_group",
    ] {
        assert!(plain.iter().any(|n| n == name), "{name} missing: {p:#}");
    }
    // Never made, never allowed.
    for name in ["sysinfo", "ptrace", "mount", "kexec_load", "clone3"] {
        assert!(!plain.iter().any(|n| n == name), "{name} allowed: {p:#}");
    }
    let has = |n: &str, i: u64, op: &str, v: u64| {
        args.iter()
            .any(|(an, ai, aop, av)| an == n && *ai == i && aop == op && *av == v)
    };
    assert!(
        has("socket", 0, "SCMP_CMP_EQ", libc::AF_UNIX as u64),
        "{p:#}"
    );
    assert!(has("ioctl", 1, "SCMP_CMP_EQ", libc::FIONREAD), "{p:#}");
    assert!(has("personality", 0, "SCMP_CMP_EQ", 0xffff_ffff), "{p:#}");
    assert!(has("clone", 0, "SCMP_CMP_MASKED_EQ", 0x7e02_0000), "{p:#}");
    for filtered in ["socket", "ioctl", "personality", "clone"] {
        assert!(!plain.iter().any(|n| n == filtered), "{filtered}: {p:#}");
    }
}

/// What `compat_calls outside` prints beyond the workload's output under
/// the profile learned from the workload.
const OUTSIDE: &str = "sysinfo: -1 EPERM\nsocket AF_INET: -1 EPERM\nioctl FIOASYNC: -1 EPERM\n\
                       personality: -1 EPERM\n";

/// Runs `compat_calls ARGS` in a busybox container of `rt` under the
/// seccomp profile at `profile`.
fn run_container(rt: &Runtime, tag: &str, profile: &Path, args: &[&str]) -> RunResult {
    let mut argv = vec!["/compat_calls"];
    argv.extend_from_slice(args);
    let c = Container::new(rt, tag, &argv);
    std::fs::copy(program(), c.rootfs().join("compat_calls")).unwrap();
    let seccomp = read_json(profile);
    c.edit(|v| v["linux"]["seccomp"] = seccomp);
    c.run()
}

#[test]
fn learned_profile_runs_the_workload_under_runc_and_runsc() {
    if !tests::rootfs::have_busybox() {
        return;
    }
    let dir = ScratchDir::new("compat-roundtrip");
    let (profile, learned_run) = learn(&dir.0);
    let native = Command::new(program()).arg("workload").output().unwrap();
    let native = String::from_utf8_lossy(&native.stdout).into_owned();
    assert_eq!(learned_run.stdout, native);
    let mut runtimes = vec![Runtime::ours()];
    match Runtime::runc() {
        Some(r) => runtimes.push(r),
        None => eprintln!("runc missing: the profile is tried under our runsc only"),
    }
    for rt in &runtimes {
        let r = run_container(rt, "compat-wl", &profile, &["workload"]);
        assert_eq!(r.code, 0, "{}: {r:?}", rt.name);
        assert_eq!(r.stdout, native, "{} under the learned profile", rt.name);
        // What the workload never called is refused, argument rules too.
        let r = run_container(rt, "compat-out", &profile, &["outside"]);
        assert_eq!(r.code, 0, "{}: {r:?}", rt.name);
        assert_eq!(
            r.stdout,
            format!("{native}{OUTSIDE}"),
            "{} under the learned profile",
            rt.name
        );
    }
    // And through `runsc do --seccomp-profile`.
    let r = run_do(&[], &program(), &["outside"]);
    assert!(r.stdout.contains("sysinfo: ok\n"), "{r:?}");
    let mut cmd = Command::new(runsc());
    cmd.args(["do", "--empty-root", "--seccomp-profile"])
        .arg(&profile)
        .arg(program())
        .arg("outside")
        .stdin(Stdio::null());
    let r = run_command(cmd, Duration::from_secs(120)).0;
    assert_eq!(r.stdout, format!("{native}{OUTSIDE}"), "{r:?}");
}

#[test]
fn strace_filter_and_log() {
    let log = build_dir().join(format!("compat-strace-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let r = run_do(
        &[
            "--strace-syscalls=pipe2,socketpair,wait4",
            "--strace-log",
            log.to_str().unwrap(),
        ],
        &program(),
        &["workload"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let mut seen = std::collections::BTreeSet::new();
    for line in text.lines() {
        // `[ PID: TID] name(args) = result`
        let (ids, call) = line
            .strip_prefix('[')
            .and_then(|l| l.split_once("] "))
            .unwrap_or_else(|| panic!("not a trace line: {line:?}"));
        let (pid, tid) = ids.split_once(':').unwrap();
        assert!(
            pid.trim().parse::<u32>().is_ok() && tid.trim().parse::<u32>().is_ok(),
            "{line}"
        );
        let name = call.split('(').next().unwrap();
        assert!(
            ["pipe2", "socketpair", "wait4"].contains(&name),
            "{name} traced: {line}"
        );
        assert!(call.contains(") = "), "{line}");
        seen.insert(name.to_string());
    }
    assert_eq!(seen.len(), 3, "{text}");
    // The trace went to the file, not to standard error.
    assert!(!r.stderr.contains("pipe2("), "{}", r.stderr);
    // Without a log, the filtered trace is the log's (standard error).
    let r = run_do(&["--strace-syscalls=socketpair"], &program(), &["workload"]);
    assert!(r.stderr.contains("] socketpair(1, 1, 0, "), "{}", r.stderr);
    assert!(!r.stderr.contains("] pipe2("), "{}", r.stderr);
    // An unknown name is refused before anything runs.
    let r = run_do(
        &["--strace-syscalls=pipe2,nosuchcall"],
        &program(),
        &["workload"],
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("\"nosuchcall\" is not an x86-64 syscall name"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout, "");
}

#[test]
fn learned_profile_under_podman() {
    use tests::clients::{find_program, Podman, Runtime as Client};
    if !tests::rootfs::have_busybox() {
        return;
    }
    let dir = ScratchDir::new("compat-podman");
    let (profile, learned_run) = learn(&dir.0);
    // podman runs containers without noNewPrivileges: the runtime drops
    // capabilities and changes ids under the filter. crun is podman's
    // default runtime, runc the other.
    let mut clients = Vec::new();
    for (name, package) in [("crun", "crun"), ("runc", "runc")] {
        if let Some(path) = find_program(name, package) {
            clients.push((
                name,
                Client {
                    path,
                    flags: Vec::new(),
                },
            ));
        }
    }
    let profile_opt = format!("seccomp={}", profile.display());
    for (name, client) in &clients {
        let Some(podman) = Podman::new(client) else {
            return;
        };
        let root = podman.busybox().unwrap();
        std::fs::copy(program(), root.join("compat_calls")).unwrap();
        let root = root.to_string_lossy().into_owned();
        for (args, expected) in [
            ("workload", learned_run.stdout.clone()),
            ("outside", format!("{}{OUTSIDE}", learned_run.stdout)),
        ] {
            let r = podman.run(&[
                "run",
                "--rm",
                "--security-opt",
                &profile_opt,
                "--rootfs",
                &root,
                "/compat_calls",
                args,
            ]);
            assert_eq!(r.code, 0, "podman with {name}, {args}: {r:?}");
            assert_eq!(r.stdout, expected, "podman with {name}, {args}: {r:?}");
        }
    }
}
