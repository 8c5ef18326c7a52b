//! busybox-static applets that work on files, run in the sandbox on its
//! own file tree (tmpfs, devfs, procfs). Each `runsc do` is a fresh
//! sandbox, so each applet is checked on its own: exit status and output
//! as Linux gives them.

use std::path::Path;
use std::process::{Command, Stdio};

use tests::{build_dir, runsc};

/// Runs `busybox ARGS` in a new sandbox with `stdin` (bytes).
fn bb(args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, String) {
    assert!(Path::new("/bin/busybox").exists(), "install busybox-static");
    let mut child = Command::new(runsc())
        .arg("do")
        .arg("/bin/busybox")
        .args(args)
        .env_clear()
        .env("PATH", "/bin")
        // A directory the sandbox has too (the checkout may lie under the
        // host's /tmp, which the sandbox does not show).
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut i = child.stdin.take().unwrap();
        i.write_all(stdin).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = bb(args, b"");
    assert_eq!(code, 0, "busybox {args:?} failed: {err}");
    assert!(err.is_empty(), "busybox {args:?} complained: {err}");
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn mkdir_p_and_touch_and_ln_s() {
    ok(&["mkdir", "-p", "/tmp/a/b/c"]);
    ok(&["touch", "/tmp/x"]);
    ok(&["ln", "-s", "/dev/null", "/tmp/l"]);
}

#[test]
fn ls_la_shows_devices_and_links() {
    let out = ok(&["ls", "-la", "/dev"]);
    assert!(out.contains("crw-rw-rw-"), "{out}");
    assert!(out.contains("1,   3") && out.contains(" null\n"), "{out}");
    assert!(out.contains("fd -> /proc/self/fd"), "{out}");
    assert!(
        out.contains("drwxrwxrwt") && out.contains(" shm\n"),
        "{out}"
    );
}

#[test]
fn find_lists_the_tree() {
    let out = ok(&["find", "/dev"]);
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    let mut want = vec![
        "/dev",
        "/dev/fd",
        "/dev/full",
        "/dev/null",
        "/dev/ptmx",
        "/dev/pts",
        "/dev/pts/ptmx",
        "/dev/random",
        "/dev/shm",
        "/dev/stderr",
        "/dev/stdin",
        "/dev/stdout",
        "/dev/tty",
        "/dev/urandom",
        "/dev/zero",
    ];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn cp_a_mv_rm_r() {
    ok(&["cp", "-a", "/dev", "/tmp/devcopy"]);
    ok(&[
        "sh",
        "-c",
        "mkdir -p /dev/d/e && mv /dev/d /dev/d2 && rm -r /dev/d2",
    ]);
    ok(&["rm", "-r", "/dev/fd"]);
    // A mount point cannot be moved or removed.
    for m in ["/tmp", "/dev/pts"] {
        let (code, _, err) = bb(&["mv", m, "/dev/moved"], b"");
        assert_eq!(code, 1);
        assert!(err.contains("busy"), "{err}");
    }
}

#[test]
fn du_and_stat() {
    assert_eq!(ok(&["du", "-s", "/dev/shm"]), "0\t/dev/shm\n");
    let out = ok(&["stat", "/dev/null"]);
    assert!(out.contains("character special file"), "{out}");
    assert!(out.contains("Device type: 1,3"), "{out}");
    assert!(out.contains("(0666/crw-rw-rw-)"), "{out}");
}

#[test]
fn sha256sum_of_files() {
    assert_eq!(
        ok(&["sha256sum", "/dev/null"]),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  /dev/null\n"
    );
}

#[test]
fn tar_c_writes_an_archive_the_host_can_read() {
    let (code, out, err) = bb(&["tar", "c", "/dev/shm", "/dev/null"], b"");
    assert_eq!(code, 0, "{err}");
    let f = build_dir().join("bb-archive.tar");
    std::fs::write(&f, &out).unwrap();
    let list = Command::new("tar").arg("tf").arg(&f).output().unwrap();
    let names = String::from_utf8_lossy(&list.stdout);
    assert!(
        names.contains("dev/shm/") && names.contains("dev/null"),
        "{names}"
    );
}

#[test]
fn tar_x_extracts_into_tmpfs() {
    // An archive made on the host, extracted in the sandbox.
    let src = build_dir().join("bb-tar-src");
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(src.join("d/e")).unwrap();
    std::fs::write(src.join("d/file.txt"), "hello tar\n").unwrap();
    std::os::unix::fs::symlink("file.txt", src.join("d/link")).unwrap();
    let archive = Command::new("tar")
        .arg("c")
        .arg("-C")
        .arg(&src)
        .arg("d")
        .output()
        .unwrap();
    assert!(archive.status.success());
    let (code, out, err) = bb(&["tar", "xvf", "-", "-C", "/tmp"], &archive.stdout);
    assert_eq!(code, 0, "{err}");
    let mut names: Vec<String> = String::from_utf8_lossy(&out)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    assert_eq!(names, ["d/", "d/e/", "d/file.txt", "d/link"]);
}

#[test]
fn ps_reads_the_sandbox_proc() {
    let out = ok(&["ps", "-o", "pid,ppid,comm,args"]);
    let lines: Vec<&str> = out.lines().collect();
    // The header and exactly one process: the guest itself, pid 1.
    assert_eq!(lines.len(), 2, "{out}");
    let fields: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&fields[..3], ["1", "0", "busybox"], "{out}");
    assert!(
        lines[1].ends_with("/bin/busybox ps -o pid,ppid,comm,args"),
        "{out}"
    );
}
