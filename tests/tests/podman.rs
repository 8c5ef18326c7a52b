//! podman driving the runtime: `podman run --rootfs` of the busybox and
//! Debian minbase trees with a private store and `containers.conf`
//! (conmon then calls the runtime's `create` and `exec`, podman its
//! `start`, `kill`, `pause`, `resume` and `delete`). Every scenario runs
//! against runc (`runc::NAME`, which checks the test itself) and against
//! our runsc (`ours::NAME`).

use std::path::Path;
use std::time::{Duration, Instant};

use tests::clients::{expect, wait_until, Counter, Podman, Runtime};
use tests::{rootfs, RunResult};

use tests::client_scenarios as scenarios;

scenarios! {
    echo
    sh_c
    exit_codes
    stdin_with_i
    tty
    env
    user
    workdir
    volumes
    read_only
    tmpfs
    exec
    exec_tty
    stop_after_timeout
    stop_with_term_handler
    kill
    ps_and_top
    top_psgo / "podman's own top (psgo) reads /proc in the mount namespace of the container's host process, which for a sandbox is the sentry's empty root: the guest's processes are not host processes"
    pause_unpause
    debian_minbase
    bridge_network
    bridge_network_debian_servers
}

/// A podman set-up and a copy of the busybox rootfs, or None when either
/// is not installed.
fn setup(rt: &Runtime) -> Option<(Podman, String)> {
    let p = Podman::new(rt)?;
    let root = p.busybox()?;
    Some((p, root.to_string_lossy().into_owned()))
}

/// `podman run --rm FLAGS --rootfs ROOT CMD...` (the rootfs stands where
/// an image would: options go before it).
fn run(p: &Podman, flags: &[&str], root: &str, cmd: &[&str]) -> RunResult {
    p.run(&run_args(flags, root, cmd))
}

fn run_args<'a>(flags: &[&'a str], root: &'a str, cmd: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--rootfs", root]);
    args.extend_from_slice(cmd);
    args
}

/// Starts `CMD` detached as container `name`.
fn start(p: &Podman, name: &str, flags: &[&str], root: &str, cmd: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--rootfs", root]);
    args.extend_from_slice(cmd);
    p.ok(&args);
}

/// `podman inspect -f FORMAT name`, trimmed.
fn inspect(p: &Podman, name: &str, format: &str) -> String {
    p.ok(&["inspect", "-f", format, name]).trim().to_string()
}

fn echo(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    expect(
        &run(&p, &[], &root, &["/bin/echo", "hello", "podman"]),
        0,
        "hello podman\n",
    );
    p.finish();
}

fn sh_c(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    let r = run(
        &p,
        &[],
        &root,
        &["sh", "-c", "echo $((6 * 7)); echo to-stderr >&2; echo $0"],
    );
    expect(&r, 0, "42\nsh\n");
    assert!(r.stderr.contains("to-stderr"), "{}", r.stderr);
    p.finish();
}

fn exit_codes(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    expect(&run(&p, &[], &root, &["sh", "-c", "exit 3"]), 3, "");
    expect(&run(&p, &[], &root, &["false"]), 1, "");
    // A child killed by a signal: 128 + the signal.
    expect(
        &run(
            &p,
            &[],
            &root,
            &["sh", "-c", "sleep 1000 & kill -KILL $!; wait $!; echo $?"],
        ),
        0,
        "137\n",
    );
    // Process 1 of the container's PID namespace is not killed by a
    // signal without a handler sent from inside, not even SIGKILL.
    expect(
        &run(
            &p,
            &[],
            &root,
            &["sh", "-c", "kill -KILL $$; echo survived"],
        ),
        0,
        "survived\n",
    );
    p.finish();
}

fn stdin_with_i(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    let input = "line one\nline two\n";
    let cmd = ["sh", "-c", "cat; echo end"];
    let r = p.run_stdin(&run_args(&["-i"], &root, &cmd), Some(input));
    expect(&r, 0, "line one\nline two\nend\n");
    // Without -i the container's standard input is not the client's.
    let r = p.run_stdin(&run_args(&[], &root, &cmd), Some(input));
    expect(&r, 0, "end\n");
    p.finish();
}

fn tty(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    let script = "tty; [ -t 0 ] && [ -t 1 ] && echo both-terminals; stty size; exit 4";
    let r = p.run_pty(&run_args(&["-t"], &root, &["sh", "-c", script]));
    assert_eq!(r.code, 4, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("/dev/pts/"))
            && lines.get(1) == Some(&"both-terminals"),
        "{r:?}"
    );
    // Without -t the container's output is a pipe, even under a terminal.
    let r = p.run_pty(&run_args(&[], &root, &["sh", "-c", "tty; true"]));
    expect(&r, 0, "not a tty\n");
    p.finish();
}

fn env(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    let r = run(
        &p,
        &["-e", "FOO=bar", "-e", "SPACED=a b  c", "--env", "EMPTY="],
        &root,
        &[
            "sh",
            "-c",
            "echo \"$FOO|$SPACED|${EMPTY-unset}|\"; echo $PATH",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "bar|a b  c||", "{r:?}");
    assert!(lines[1].contains("/bin"), "{r:?}");
    p.finish();
}

fn user(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    expect(
        &run(&p, &["-u", "1000"], &root, &["id"]),
        0,
        "uid=1000(user) gid=1000(user) groups=1000(user)\n",
    );
    // Files it makes are its own; root's home is closed to it.
    let r = run(
        &p,
        &["-u", "1000:1000"],
        &root,
        &[
            "sh",
            "-c",
            "touch /tmp/f && stat -c %u:%g /tmp/f; echo x > /root/f",
        ],
    );
    assert_eq!(r.stdout, "1000:1000\n", "{r:?}");
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
    expect(&run(&p, &[], &root, &["id", "-u"]), 0, "0\n");
    p.finish();
}

fn workdir(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    expect(&run(&p, &["-w", "/tmp"], &root, &["pwd"]), 0, "/tmp\n");
    expect(
        &run(&p, &["-u", "1000", "-w", "/home/user"], &root, &["pwd"]),
        0,
        "/home/user\n",
    );
    p.finish();
}

fn volumes(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    let host = p.dir().join("volume");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("from-host"), "host data\n").unwrap();
    let rw = format!("{}:/data", host.display());
    let r = run(
        &p,
        &["-v", &rw],
        &root,
        &[
            "sh",
            "-c",
            "cat /data/from-host; echo container data > /data/from-container",
        ],
    );
    expect(&r, 0, "host data\n");
    assert_eq!(
        std::fs::read_to_string(host.join("from-container")).unwrap(),
        "container data\n"
    );
    let ro = format!("{}:/data:ro", host.display());
    let r = run(
        &p,
        &["-v", &ro],
        &root,
        &["sh", "-c", "cat /data/from-host; echo no > /data/refused"],
    );
    assert_eq!(r.stdout, "host data\n", "{r:?}");
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Read-only file system"), "{r:?}");
    assert!(!host.join("refused").exists());
    p.finish();
}

fn read_only(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    let r = run(
        &p,
        &["--read-only"],
        &root,
        &["sh", "-c", "touch /new-file"],
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Read-only file system"), "{r:?}");
    assert!(!Path::new(&root).join("new-file").exists());
    // podman gives a read-only container a writable tmpfs on /tmp.
    expect(
        &run(
            &p,
            &["--read-only"],
            &root,
            &["sh", "-c", "echo ok > /tmp/f && cat /tmp/f"],
        ),
        0,
        "ok\n",
    );
    p.finish();
}

fn tmpfs(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    let r = run(
        &p,
        &["--tmpfs", "/run"],
        &root,
        &[
            "sh",
            "-c",
            "grep ' /run ' /proc/mounts | cut -d' ' -f1-3; echo in-tmpfs > /run/f; cat /run/f",
        ],
    );
    expect(&r, 0, "tmpfs /run tmpfs\nin-tmpfs\n");
    assert!(!Path::new(&root).join("run/f").exists());
    p.finish();
}

fn exec(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    start(&p, "c", &[], &root, &["sleep", "1000"]);
    expect(
        &p.run(&["exec", "c", "sh", "-c", "echo in the container; exit 7"]),
        7,
        "in the container\n",
    );
    // The same file system and processes as the container's first process.
    expect(
        &p.run(&["exec", "c", "sh", "-c", "echo shared > /tmp/s"]),
        0,
        "",
    );
    expect(&p.run(&["exec", "c", "cat", "/tmp/s"]), 0, "shared\n");
    let r = p.run(&["exec", "c", "cat", "/proc/1/cmdline"]);
    expect(&r, 0, "sleep\u{0}1000\u{0}");
    expect(
        &p.run(&["exec", "-u", "1000", "c", "id", "-u"]),
        0,
        "1000\n",
    );
    expect(&p.run(&["exec", "-w", "/tmp", "c", "pwd"]), 0, "/tmp\n");
    expect(
        &p.run(&["exec", "-e", "X=from-exec", "c", "sh", "-c", "echo $X"]),
        0,
        "from-exec\n",
    );
    expect(
        &p.run_stdin(&["exec", "-i", "c", "cat"], Some("piped in\n")),
        0,
        "piped in\n",
    );
    p.ok(&["rm", "--force", "--time", "0", "c"]);
    p.finish();
}

fn exec_tty(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    start(&p, "c", &[], &root, &["sleep", "1000"]);
    let r = p.run_pty(&["exec", "-t", "c", "sh", "-c", "tty; exit 5"]);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stdout.starts_with("/dev/pts/"), "{r:?}");
    p.ok(&["rm", "--force", "--time", "0", "c"]);
    p.finish();
}

fn stop_after_timeout(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    // A process 1 without a handler ignores SIGTERM: podman kills it
    // when the timeout runs out.
    start(&p, "c", &[], &root, &["sleep", "1000"]);
    // `run -d` may return before the runtime's own process 1 (which
    // SIGTERM kills) has executed sleep.
    wait_until("sleep as process 1", Duration::from_secs(20), || {
        p.run(&["exec", "c", "cat", "/proc/1/comm"]).stdout == "sleep\n"
    });
    let t = Instant::now();
    p.ok(&["stop", "--time", "2", "c"]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(15),
        "stop took {took:?}"
    );
    assert_eq!(
        inspect(&p, "c", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    p.ok(&["rm", "c"]);
    p.finish();
}

/// Starts container `name` whose process 1 exits 42 on SIGTERM, and
/// waits until its handler is set.
fn start_term_handler(p: &Podman, name: &str, root: &str) {
    start(
        p,
        name,
        &[],
        root,
        &[
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready; sleep 1000 & wait",
        ],
    );
    wait_until("the TERM handler", Duration::from_secs(20), || {
        p.ok(&["logs", name]).contains("ready")
    });
}

fn stop_with_term_handler(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    start_term_handler(&p, "c", &root);
    let t = Instant::now();
    p.ok(&["stop", "--time", "20", "c"]);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    assert_eq!(
        inspect(&p, "c", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 42"
    );
    p.ok(&["rm", "c"]);
    p.finish();
}

fn kill(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    start(&p, "k", &[], &root, &["sleep", "1000"]);
    p.ok(&["kill", "k"]);
    expect(&p.run(&["wait", "k"]), 0, "137\n");
    p.ok(&["rm", "k"]);
    start_term_handler(&p, "t", &root);
    p.ok(&["kill", "--signal", "TERM", "t"]);
    expect(&p.run(&["wait", "t"]), 0, "42\n");
    p.ok(&["rm", "t"]);
    p.finish();
}

fn ps_and_top(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    start(&p, "c", &[], &root, &["sleep", "1000"]);
    let ps = p.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("c Up "), "{ps}");
    // With ps options, podman runs ps(1) in the container (through the
    // runtime's exec).
    let top = p.ok(&["top", "c", "-o", "pid,args"]);
    let rows: Vec<Vec<&str>> = top
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .filter(|r: &Vec<&str>| r.get(1) != Some(&"ps"))
        .collect();
    assert_eq!(rows, vec![vec!["1", "sleep", "1000"]], "{top}");
    p.ok(&["rm", "--force", "--time", "0", "c"]);
    // A container that has exited is listed with -a until removed.
    p.ok(&["run", "--name", "done", "--rootfs", &root, "true"]);
    let ps = p.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("done Exited (0) "), "{ps}");
    p.ok(&["rm", "done"]);
    p.finish();
}

/// podman's built-in top, which reads the container's processes from the
/// host's /proc.
fn top_psgo(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    start(&p, "c", &[], &root, &["sleep", "1000"]);
    let top = p.ok(&["top", "c", "pid", "args"]);
    let rows: Vec<Vec<&str>> = top
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows, vec![vec!["1", "sleep", "1000"]], "{top}");
    p.ok(&["rm", "--force", "--time", "0", "c"]);
    p.finish();
}

fn pause_unpause(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    let out = p.dir().join("out");
    std::fs::create_dir(&out).unwrap();
    let volume = format!("{}:/out", out.display());
    start(
        &p,
        "c",
        &["-v", &volume],
        &root,
        &["sh", "-c", Counter::SCRIPT],
    );
    let counter = Counter::new(&out);
    assert!(counter.counts(), "the counter does not count");
    p.ok(&["pause", "c"]);
    assert_eq!(inspect(&p, "c", "{{.State.Status}}"), "paused");
    assert!(counter.stands_still(), "the counter counts while paused");
    p.ok(&["unpause", "c"]);
    assert_eq!(inspect(&p, "c", "{{.State.Status}}"), "running");
    assert!(counter.counts(), "the counter does not count after unpause");
    p.ok(&["rm", "--force", "--time", "0", "c"]);
    p.finish();
}

fn debian_minbase(rt: &Runtime) {
    let Some(p) = Podman::new(rt) else { return };
    let Some(debian) = rootfs::debian_minbase() else {
        return;
    };
    let root = p.copy_of(&debian);
    let root = root.to_str().unwrap();
    let r = run(&p, &[], root, &["cat", "/etc/os-release"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("VERSION_CODENAME=bookworm"), "{r:?}");
    let r = run(&p, &[], root, &["apt-get", "--version"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("apt "), "{r:?}");
    expect(
        &run(
            &p,
            &[],
            root,
            &["bash", "-c", "a=(x y z); echo ${#a[@]} ${a[1]^^} $((2**10)); [[ $BASH_VERSION == 5.* ]] && echo bash5"],
        ),
        0,
        "3 Y 1024\nbash5\n",
    );
    let r = run(&p, &[], root, &["ls", "-l", "/"]);
    assert_eq!(r.code, 0, "{r:?}");
    for name in ["bin -> usr/bin", " etc", " usr", " var", " tmp"] {
        assert!(r.stdout.contains(name), "{name} missing: {r:?}");
    }
    p.finish();
}

/// podman's default bridge network (netavark): the container has its
/// address on podman's bridge and its default route through it; a
/// server in the container answers the host side.
fn bridge_network(rt: &Runtime) {
    let Some((p, root)) = setup(rt) else { return };
    let r = run(
        &p,
        &["--network=bridge"],
        &root,
        &[
            "sh",
            "-c",
            "ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d. -f1,2; \
             ip route | grep '^default' | cut -d' ' -f1-3,5",
        ],
    );
    expect(&r, 0, "10.88\ndefault via 10.88.0.1 eth0\n");
    start(
        &p,
        "web",
        &["--network=bridge"],
        &root,
        &["httpd", "-f", "-p", "8000", "-h", "/bin"],
    );
    let ip = inspect(&p, "web", "{{.NetworkSettings.IPAddress}}");
    assert!(ip.starts_with("10.88."), "{ip}");
    let size = std::fs::metadata(Path::new(&root).join("bin/busybox"))
        .unwrap()
        .len();
    let url = format!("http://{ip}:8000/busybox");
    let fetch = || {
        std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{size_download}",
                "-m",
                "10",
            ])
            .arg(&url)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    wait_until("the container's server", Duration::from_secs(30), || {
        fetch().starts_with("200")
    });
    assert_eq!(fetch(), format!("200 {size}"));
    p.ok(&["rm", "--force", "--time", "0", "web"]);
    p.finish();
}

/// Debian's nginx (its default configuration) and redis-server in
/// containers on podman's default bridge network, the host's own root
/// read-only as their rootfs (tmpfs where the servers write): nginx
/// serves a 1 MiB file to curl on the host side, redis answers redis-cli
/// there.
fn bridge_network_debian_servers(rt: &Runtime) {
    let Some(p) = Podman::new(rt) else { return };
    for (prog, pkg) in [
        ("/usr/sbin/nginx", "nginx-light"),
        ("/usr/bin/redis-server", "redis-server"),
        ("/usr/bin/redis-cli", "redis-tools"),
    ] {
        assert!(
            Path::new(prog).exists(),
            "{prog} is missing: install Debian's {pkg} (.ci/run does)"
        );
    }
    // The host's root, bound read-only (without its submounts) outside
    // the lab: under runc a tmpfs on the container's /run would hide the
    // host's /run (podman's run root, whence it binds /etc/hosts) were
    // the rootfs / itself.
    let host_root = HostRootBind::new();
    let root = host_root.0.to_str().unwrap();
    let www = p.dir().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let body: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(www.join("big.bin"), &body).unwrap();
    let vol = format!("{}:/var/www/html:ro", www.display());
    // Fresh tmpfs, not copies of the host's directories (the host's /run
    // holds what a copy cannot take, network namespaces among them).
    let ro = [
        "--network=bridge",
        "--read-only",
        "--read-only-tmpfs=false",
        "--tmpfs",
        "/run:notmpcopyup",
        "--tmpfs",
        "/tmp:notmpcopyup",
        "--tmpfs",
        "/var/lib/nginx:notmpcopyup",
        "--tmpfs",
        "/var/log/nginx:notmpcopyup",
    ];
    let mut flags = ro.to_vec();
    flags.extend_from_slice(&["-v", &vol]);
    start(
        &p,
        "nginx",
        &flags,
        root,
        &["nginx", "-g", "daemon off; error_log stderr;"],
    );
    start(
        &p,
        "redis",
        &ro,
        root,
        &[
            "redis-server",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--dir",
            "/tmp",
        ],
    );
    let ip = inspect(&p, "nginx", "{{.NetworkSettings.IPAddress}}");
    assert!(ip.starts_with("10.88."), "{ip}");
    let url = format!("http://{ip}/big.bin");
    let fetch = || {
        std::process::Command::new("curl")
            .args(["-s", "-m", "10", "-o", "-", "-w", "%{http_code}"])
            .arg(&url)
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default()
    };
    wait_until("nginx in the container", Duration::from_secs(30), || {
        fetch().ends_with(b"200")
    });
    let got = fetch();
    assert_eq!(
        got.len(),
        body.len() + 3,
        "{}",
        String::from_utf8_lossy(&got[got.len().saturating_sub(300)..])
    );
    assert!(got[..body.len()] == body[..], "the file came back changed");
    let rip = inspect(&p, "redis", "{{.NetworkSettings.IPAddress}}");
    let cli = |args: &[&str]| {
        std::process::Command::new("redis-cli")
            .args(["-h", &rip])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    wait_until("redis in the container", Duration::from_secs(30), || {
        cli(&["ping"]).trim() == "PONG"
    });
    assert_eq!(cli(&["set", "k", "v1"]).trim(), "OK");
    assert_eq!(cli(&["append", "k", "-more"]).trim(), "7");
    assert_eq!(cli(&["get", "k"]).trim(), "v1-more");
    p.ok(&["rm", "--force", "--time", "0", "nginx", "redis"]);
    p.finish();
}

/// A read-only bind mount of the host's root (not its submounts) in a
/// directory of its own, unmounted (lazily, even if busy) and removed on
/// drop; never under a directory something removes recursively.
struct HostRootBind(std::path::PathBuf);

impl HostRootBind {
    fn new() -> HostRootBind {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::path::PathBuf::from(format!(
            "/var/tmp/runsc-test-hostroot-{}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let ok = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "mount --bind / {d} && mount -o remount,bind,ro {d}"
            ))
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot bind the host's root read-only at {d}");
        HostRootBind(dir)
    }
}

impl Drop for HostRootBind {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
        // rmdir only: it fails, harmlessly, if the unmount did not happen.
        let _ = std::fs::remove_dir(&self.0);
    }
}
