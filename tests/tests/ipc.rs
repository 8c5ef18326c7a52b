//! IPC and file events with real programs, against native runs (each in
//! a fresh IPC namespace and with a private /tmp): util-linux's `ipcs`
//! over objects a program made, Python's `multiprocessing.shared_memory`,
//! `inotifywait` (inotify-tools) seeing a file another process makes;
//! and fanotify refused, logged.

use std::path::Path;

use tests::{build_c, compare, run, run_command, runsc, workspace};

fn ipc_objects() -> std::path::PathBuf {
    build_c(&workspace().join("tests/programs/ipc_objects.c"), &[])
}

/// `ipcs` (its listings, creators, limits and summary) after a program
/// made a segment, a semaphore set and a queue, as natively. The columns
/// that legitimately differ (pids, times) are in none of these views;
/// the pages resident line is left out (see below).
#[test]
fn ipcs_shows_what_a_program_made() {
    let prog = ipc_objects();
    let script = format!(
        "{p} && ipcs && ipcs -c && ipcs -l && ipcs -u && ipcs -m -s -q --human && {p} rmid && ipcs",
        p = prog.display()
    );
    // Pages resident differ: a fault backs the sentry's whole fault
    // window of a shared mapping, where Linux backs the page touched.
    let keep = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("pages resident"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let native = run(Path::new("/bin/sh"), &["-c", &script], None, false);
    let r = run(Path::new("/bin/sh"), &["-c", &script], None, true);
    assert_eq!(
        keep(&native.stdout),
        keep(&r.stdout),
        "{}",
        tests::diff(&native.stdout, &r.stdout)
    );
    assert_eq!((native.code, r.code), (0, 0), "{}", r.stderr);
    for want in [
        "0x5eed0001",
        "0x5eed0002",
        "0x5eed0003",
        "max number of segments",
    ] {
        assert!(r.stdout.contains(want), "{want}:\n{}", r.stdout);
    }
}

/// Python's `multiprocessing.shared_memory` (POSIX shared memory in
/// /dev/shm, mapped by two processes; a ShareableList) works as natively.
#[test]
fn python_shared_memory() {
    let script = r#"
import os
from multiprocessing import Process, shared_memory

def child(name):
    s = shared_memory.SharedMemory(name=name)
    s.buf[:5] = b"hello"
    s.close()
    l = shared_memory.ShareableList(name=name + "l")
    l[0] = l[0] * 10
    l.shm.close()

if __name__ == "__main__":
    shm = shared_memory.SharedMemory(create=True, size=10000)
    lst = shared_memory.ShareableList([4, 2.5, "text", None, True], name=shm.name + "l")
    p = Process(target=child, args=(shm.name,))
    p.start()
    p.join()
    print(p.exitcode, bytes(shm.buf[:5]), shm.size >= 10000, list(lst))
    print(os.path.exists("/dev/shm/" + shm.name))
    shm.close()
    shm.unlink()
    lst.shm.close()
    lst.shm.unlink()
    print(os.path.exists("/dev/shm/" + shm.name))
"#;
    let r = compare(Path::new("/usr/bin/python3"), &["-c", script], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("0 b'hello' True [40, 2.5, 'text', None, True]\nTrue\nFalse\n"),
        "{}",
        r.stdout
    );
}

/// `inotifywait` sees a file that another process creates, writes and
/// removes, and reports each as natively.
#[test]
fn inotifywait_sees_another_process() {
    assert!(
        Path::new("/usr/bin/inotifywait").exists(),
        "inotifywait is missing: install inotify-tools (.ci/run does)"
    );
    // Each inotifywait exits at its first event; the other process acts
    // once the watch is in place (inotifywait says so on stderr).
    let script = r#"
d=/tmp/watched
mkdir $d
wait_for() {
    rm -f $d.out $d.err
    inotifywait -e "$1" --format '%e %f' "$d" > $d.out 2> $d.err &
    pid=$!
    until grep -q established $d.err; do sleep 0.01; done
    sh -c "$2"
    wait $pid
    echo "status $?"
    cat $d.out
}
wait_for create "touch $d/new"
wait_for close_write "echo data > $d/new"
wait_for moved_to "mv $d/new $d/renamed"
wait_for delete "rm $d/renamed"
wait_for create,isdir "mkdir $d/sub"
cp /bin/true $d/prog
wait_for open "$d/prog"
wait_for access "$d/prog"
inotifywait -t 1 -e create "$d" 2>/dev/null
echo "timeout status $?"
"#;
    let r = compare(Path::new("/bin/sh"), &["-c", script], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("CREATE new\n"), "{}", r.stdout);
    assert!(r.stdout.contains("CREATE,ISDIR sub\n"), "{}", r.stdout);
    assert!(r.stdout.contains("timeout status 2\n"), "{}", r.stdout);
}

/// fanotify is not implemented: ENOSYS, and the sentry's log says so.
#[test]
fn fanotify_is_enosys_and_logged() {
    let prog = ipc_objects();
    let log = tests::build_dir().join(format!("fanotify-{}.log", std::process::id()));
    let mut cmd = std::process::Command::new(runsc());
    cmd.arg("--debug-log")
        .arg(&log)
        .arg("do")
        .arg(&prog)
        .arg("fanotify")
        .stdin(std::process::Stdio::null());
    let (r, _) = run_command(cmd, std::time::Duration::from_secs(60));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "fanotify_init = -1 ENOSYS\nfanotify_mark = -1 ENOSYS\n"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(text.contains("fanotify_init"), "{text}");
}
