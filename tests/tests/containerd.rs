//! containerd driving the runtime: a private daemon per test, the
//! busybox rootfs as an image (built with umoci, imported with `ctr image
//! import`), and `ctr run --runc-binary RUNTIME` through the runc v2 shim
//! (which calls the runtime's `create`, `start`, `exec`, `kill`, `ps`,
//! `pause`, `resume` and `delete`). Every scenario runs against runc
//! (`runc::NAME`, which checks the test itself) and against our runsc
//! (`ours::NAME`). Each test checks at its end that no task, container,
//! shim or mount is left, and stops its daemon.

use std::time::{Duration, Instant};

use tests::clients::{expect, wait_until, Containerd, Counter, Runtime, LIMIT};
use tests::RunResult;

use tests::client_scenarios as scenarios;

scenarios! {
    run_output
    exit_codes
    tty
    process_settings
    mounts
    exec
    task_ps
    pause_resume
    kill_term
    kill_sigkill
    delete
}

/// A daemon with the busybox image, or None when containerd, umoci or
/// busybox is not installed.
fn setup(rt: &Runtime) -> Option<(Containerd, &'static str)> {
    if !tests::rootfs::have_busybox() {
        return None;
    }
    let c = Containerd::start(rt)?;
    let image = c.import_busybox()?;
    Some((c, image))
}

fn run_args(c: &Containerd, flags: &[&str], image: &str, id: &str, cmd: &[&str]) -> Vec<String> {
    let mut args = c.run_args();
    args.extend(flags.iter().map(|s| s.to_string()));
    args.push(image.into());
    args.push(id.into());
    args.extend(cmd.iter().map(|s| s.to_string()));
    args
}

/// `ctr run --rm ... IMAGE ID CMD...`.
fn run(c: &Containerd, flags: &[&str], image: &str, id: &str, cmd: &[&str]) -> RunResult {
    let mut f = vec!["--rm"];
    f.extend_from_slice(flags);
    let args = run_args(c, &f, image, id, cmd);
    c.ctr_with(&strs(&args), LIMIT)
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Starts `CMD` detached as container and task `id`.
fn start(c: &Containerd, flags: &[&str], image: &str, id: &str, cmd: &[&str]) {
    let mut f = vec!["-d"];
    f.extend_from_slice(flags);
    let args = run_args(c, &f, image, id, cmd);
    let r = c.ctr(&strs(&args));
    assert_eq!(r.code, 0, "ctr run -d: {r:?}");
}

/// `task exec --exec-id EXEC FLAGS ID CMD...`.
fn exec_in(c: &Containerd, flags: &[&str], id: &str, exec_id: &str, cmd: &[&str]) -> RunResult {
    let args = exec_args(c, flags, id, exec_id, cmd);
    c.ctr(&strs(&args))
}

fn exec_args(c: &Containerd, flags: &[&str], id: &str, exec_id: &str, cmd: &[&str]) -> Vec<String> {
    let mut args = c.exec_args();
    args.extend(["--exec-id".to_string(), exec_id.to_string()]);
    args.extend(flags.iter().map(|s| s.to_string()));
    args.push(id.into());
    args.extend(cmd.iter().map(|s| s.to_string()));
    args
}

/// The status of task `id` in `ctr task ls` (RUNNING, PAUSED, STOPPED),
/// and its pid.
fn task_status(c: &Containerd, id: &str) -> Option<(String, String)> {
    c.ok(&["task", "ls"]).lines().skip(1).find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.first() == Some(&id)).then(|| (w[2].to_string(), w[1].to_string()))
    })
}

fn wait_status(c: &Containerd, id: &str, status: &str) {
    wait_until(
        &format!("task {id} {status}"),
        Duration::from_secs(20),
        || task_status(c, id).is_some_and(|(s, _)| s == status),
    );
}

/// Deletes the stopped task `id`; returns its exit code (ctr warns about
/// a non-zero one).
fn delete_task(c: &Containerd, id: &str) -> i32 {
    let r = c.ctr(&["task", "delete", id]);
    assert_eq!(r.code, 0, "task delete: {r:?}");
    match r.stderr.split("non-zero exit code ").nth(1) {
        Some(rest) => rest
            .split(|ch: char| !ch.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap(),
        None => 0,
    }
}

/// Waits until process 1 of task `id` runs `comm` (`ctr run -d` may
/// return before the runtime's own process 1 has executed it; that one,
/// runc's, dies of SIGTERM).
fn wait_process1(c: &Containerd, id: &str, comm: &str) {
    let mut n = 0;
    wait_until(
        &format!("{comm} as process 1"),
        Duration::from_secs(20),
        || {
            n += 1;
            let r = exec_in(c, &[], id, &format!("comm{n}"), &["cat", "/proc/1/comm"]);
            r.stdout == format!("{comm}\n")
        },
    );
}

/// Kills task `id` with SIGKILL and deletes it and its container.
fn remove(c: &Containerd, id: &str) {
    c.ok(&["task", "kill", "-s", "KILL", id]);
    wait_status(c, id, "STOPPED");
    assert_eq!(delete_task(c, id), 137);
    c.ok(&["container", "delete", id]);
}

fn run_output(rt: &Runtime) {
    let Some((c, image)) = setup(rt) else { return };
    expect(
        &run(
            &c,
            &[],
            image,
            "echo",
            &["/bin/echo", "hello", "containerd"],
        ),
        0,
        "hello containerd\n",
    );
    let r = run(
        &c,
        &[],
        image,
        "sh",
        &["sh", "-c", "echo out; echo err >&2; echo $((6 * 7))"],
    );
    expect(&r, 0, "out\n42\n");
    assert!(r.stderr.contains("err"), "{r:?}");
    // The image's command (/bin/sh) when none is given; it reads its
    // standard input, which ctr never closes (even when its own is
    // /dev/null), so the container gets /dev/null itself.
    expect(&run(&c, &["--null-io"], image, "default", &[]), 0, "");
    c.finish();
}

fn exit_codes(rt: &Runtime) {
    let Some((c, image)) = setup(rt) else { return };
    expect(
        &run(&c, &[], image, "three", &["sh", "-c", "exit 3"]),
        3,
        "",
    );
    expect(&run(&c, &[], image, "false", &["false"]), 1, "");
    expect(
        &run(
            &c,
            &[],
            image,
            "child",
            &["sh", "-c", "sleep 1000 & kill -KILL $!; wait $!; echo $?"],
        ),
        0,
        "137\n",
    );
    c.finish();
}

fn tty(rt: &Runtime) {
    let Some((c, image)) = setup(rt) else { return };
    let mut args = c.run_args();
    args.extend(
        [
            "--rm",
            "--tty",
            image,
            "tty",
            "sh",
            "-c",
            "tty; [ -t 0 ] && [ -t 1 ] && echo both-terminals; exit 5",
        ]
        .map(String::from),
    );
    let r = c.ctr_pty(&strs(&args));
    assert_eq!(r.code, 5, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("/dev/pts/"))
            && lines.get(1) == Some(&"both-terminals"),
        "{r:?}"
    );
    c.finish();
}

fn process_settings(rt: &Runtime) {
    let Some((c, image)) = setup(rt) else { return };
    expect(
        &run(
            &c,
            &["--env", "FOO=bar", "--env", "SPACED=a b", "--cwd", "/tmp"],
            image,
            "settings",
            &["sh", "-c", "echo \"$FOO|$SPACED\"; pwd; id -u"],
        ),
        0,
        "bar|a b\n/tmp\n0\n",
    );
    c.finish();
}

fn mounts(rt: &Runtime) {
    let Some((c, image)) = setup(rt) else { return };
    let host = c.dir().join("volume");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("from-host"), "host data\n").unwrap();
    let rw = format!(
        "type=bind,src={},dst=/data,options=rbind:rw",
        host.display()
    );
    expect(
        &run(
            &c,
            &["--mount", &rw],
            image,
            "rw",
            &[
                "sh",
                "-c",
                "cat /data/from-host; echo container data > /data/from-container",
            ],
        ),
        0,
        "host data\n",
    );
    assert_eq!(
        std::fs::read_to_string(host.join("from-container")).unwrap(),
        "container data\n"
    );
    let ro = format!(
        "type=bind,src={},dst=/data,options=rbind:ro",
        host.display()
    );
    let r = run(
        &c,
        &["--mount", &ro],
        image,
        "ro",
        &["sh", "-c", "echo no > /data/refused"],
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Read-only file system"), "{r:?}");
    assert!(!host.join("refused").exists());
    let r = run(
        &c,
        &["--read-only"],
        image,
        "rootro",
        &["sh", "-c", "touch /new-file"],
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Read-only file system"), "{r:?}");
    c.finish();
}

fn exec(rt: &Runtime) {
    let Some((c, image)) = setup(rt) else { return };
    start(&c, &[], image, "box", &["sleep", "1000"]);
    expect(
        &exec_in(
            &c,
            &[],
            "box",
            "e1",
            &["sh", "-c", "echo in the container; exit 7"],
        ),
        7,
        "in the container\n",
    );
    // The same file system and processes as the task's.
    expect(
        &exec_in(&c, &[], "box", "e2", &["sh", "-c", "echo shared > /tmp/s"]),
        0,
        "",
    );
    expect(
        &exec_in(&c, &[], "box", "e3", &["cat", "/tmp/s"]),
        0,
        "shared\n",
    );
    // ctr can lose a short exec's output (it may leave before its copy
    // from the FIFO ends: seen under load with runc too), so up to three
    // tries, each under an exec id of its own.
    let mut r = exec_in(&c, &[], "box", "e4", &["cat", "/proc/1/cmdline"]);
    for id in ["e4b", "e4c"] {
        if !r.stdout.is_empty() {
            break;
        }
        r = exec_in(&c, &[], "box", id, &["cat", "/proc/1/cmdline"]);
    }
    expect(&r, 0, "sleep\u{0}1000\u{0}");
    expect(
        &exec_in(
            &c,
            &["--user", "1000", "--cwd", "/tmp"],
            "box",
            "e5",
            &["sh", "-c", "id -u; pwd"],
        ),
        0,
        "1000\n/tmp\n",
    );
    let args = exec_args(&c, &["--tty"], "box", "e6", &["sh", "-c", "tty; exit 6"]);
    let r = c.ctr_pty(&strs(&args));
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stdout.starts_with("/dev/pts/"), "{r:?}");
    remove(&c, "box");
    c.finish();
}

fn task_ps(rt: &Runtime) {
    let Some((c, image)) = setup(rt) else { return };
    start(
        &c,
        &[],
        image,
        "box",
        &["sh", "-c", "sleep 1000 & echo started > /tmp/started; wait"],
    );
    wait_until("the child", Duration::from_secs(20), || {
        exec_in(&c, &[], "box", "probe", &["cat", "/tmp/started"]).code == 0
    });
    let (status, pid) = task_status(&c, "box").unwrap();
    assert_eq!(status, "RUNNING");
    let ps = c.ok(&["task", "ps", "box"]);
    let pids: Vec<&str> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    // The shell (the task's own pid) and its sleep.
    assert_eq!(pids.len(), 2, "{ps}");
    assert!(pids.contains(&pid.as_str()), "task pid {pid} not in {ps}");
    remove(&c, "box");
    c.finish();
}

fn pause_resume(rt: &Runtime) {
    let Some((c, image)) = setup(rt) else { return };
    let out = c.dir().join("out");
    std::fs::create_dir(&out).unwrap();
    let mount = format!("type=bind,src={},dst=/out,options=rbind:rw", out.display());
    start(
        &c,
        &["--mount", &mount],
        image,
        "box",
        &["sh", "-c", Counter::SCRIPT],
    );
    let counter = Counter::new(&out);
    assert!(counter.counts(), "the counter does not count");
    c.ok(&["task", "pause", "box"]);
    assert_eq!(task_status(&c, "box").unwrap().0, "PAUSED");
    assert!(counter.stands_still(), "the counter counts while paused");
    c.ok(&["task", "resume", "box"]);
    assert_eq!(task_status(&c, "box").unwrap().0, "RUNNING");
    assert!(counter.counts(), "the counter does not count after resume");
    remove(&c, "box");
    c.finish();
}

fn kill_term(rt: &Runtime) {
    let Some((c, image)) = setup(rt) else { return };
    let out = c.dir().join("out");
    std::fs::create_dir(&out).unwrap();
    let mount = format!("type=bind,src={},dst=/out,options=rbind:rw", out.display());
    start(
        &c,
        &["--mount", &mount],
        image,
        "box",
        &[
            "sh",
            "-c",
            "trap 'exit 42' TERM; touch /out/ready; sleep 1000 & wait",
        ],
    );
    wait_until("the TERM handler", Duration::from_secs(20), || {
        out.join("ready").exists()
    });
    // `task kill` sends SIGTERM by default.
    c.ok(&["task", "kill", "box"]);
    wait_status(&c, "box", "STOPPED");
    assert_eq!(delete_task(&c, "box"), 42);
    c.ok(&["container", "delete", "box"]);
    c.finish();
}

fn kill_sigkill(rt: &Runtime) {
    let Some((c, image)) = setup(rt) else { return };
    // A process 1 without a handler ignores SIGTERM, not SIGKILL.
    start(&c, &[], image, "box", &["sleep", "1000"]);
    wait_process1(&c, "box", "sleep");
    c.ok(&["task", "kill", "box"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(task_status(&c, "box").unwrap().0, "RUNNING");
    remove(&c, "box");
    // A task that `ctr run` waits for, killed from outside: ctr exits
    // 128 + 9.
    let args = run_args(&c, &["--rm"], image, "fg", &["sleep", "1000"]);
    let cmd = {
        let mut cmd = c.ctr_command(&strs(&args), LIMIT);
        cmd.stdin(std::process::Stdio::null());
        cmd
    };
    let waiter =
        std::thread::spawn(move || tests::run_command(cmd, LIMIT + Duration::from_secs(10)));
    wait_status(&c, "fg", "RUNNING");
    let t = Instant::now();
    c.ok(&["task", "kill", "-s", "KILL", "fg"]);
    let (r, _) = waiter.join().unwrap();
    assert_eq!(r.code, 137, "{r:?}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "ctr run took {:?} to end",
        t.elapsed()
    );
    c.finish();
}

fn delete(rt: &Runtime) {
    let Some((c, image)) = setup(rt) else { return };
    start(&c, &[], image, "box", &["sleep", "1000"]);
    // A running task is not deleted without --force, nor a container
    // with a task.
    let r = c.ctr(&["task", "delete", "box"]);
    assert_ne!(r.code, 0, "{r:?}");
    let r = c.ctr(&["container", "delete", "box"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert_eq!(task_status(&c, "box").unwrap().0, "RUNNING");
    // --force kills it.
    c.ok(&["task", "delete", "--force", "box"]);
    assert_eq!(task_status(&c, "box"), None);
    c.ok(&["container", "delete", "box"]);
    // Its snapshot goes with it.
    let snapshots = c.ok(&["snapshot", "ls"]);
    assert!(
        !snapshots.lines().any(|l| l.starts_with("box ")),
        "{snapshots}"
    );
    c.finish();
}
