//! Debian's dynamically linked programs under `runsc do`, whose root is
//! the host's (or `--root-dir`'s) through the gofer, under an overlay:
//! the same output as natively, changes kept inside, bind mounts written
//! through (or refused when read-only), and nothing outside the root
//! reachable.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tests::{build_dir, compare, run_command, runsc, workspace};

/// A script of `tests/scripts`, copied where the sandbox sees it (its
/// /tmp is its own, and the checkout may lie under the host's /tmp).
fn script(name: &str) -> PathBuf {
    let src = workspace().join("tests/scripts").join(name);
    let dst = build_dir().join("scripts").join(name);
    if src.is_dir() {
        std::fs::create_dir_all(&dst).unwrap();
        for e in std::fs::read_dir(&src).unwrap().flatten() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    } else {
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&src, &dst).unwrap();
    }
    dst
}

/// Runs `runsc do [do_flags] prog args` and returns (stdout, stderr, code).
fn sandboxed(do_flags: &[&str], prog: &str, args: &[&str]) -> tests::RunResult {
    let mut cmd = Command::new(runsc());
    cmd.arg("do").args(do_flags).arg(prog).args(args);
    cmd.stdin(Stdio::null());
    run_command(cmd, std::time::Duration::from_secs(120)).0
}

fn scratch(name: &str) -> PathBuf {
    let d = build_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn debian_programs_print_what_they_print_natively() {
    let r = compare(
        Path::new("/bin/bash"),
        &[script("debian.sh").to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("[0, 1, 4, 9, 16, 25, 36, 49]"),
        "{}",
        r.stdout
    );
}

#[test]
fn make_j2_builds_a_c_project_with_gcc() {
    let dir = scratch("cproject");
    for f in ["main.c", "add.c", "mul.c", "Makefile"] {
        std::fs::copy(script("cproject").join(f), dir.join(f)).unwrap();
    }
    let r = compare(
        Path::new("/bin/bash"),
        &[script("make.sh").to_str().unwrap(), dir.to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("add=5 mul=20\n"), "{}", r.stdout);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn changes_stay_inside_and_bind_mounts_follow_their_option() {
    let dir = scratch("overlay");
    std::fs::write(dir.join("image-file"), "from the image\n").unwrap();
    let rw = scratch("volume-rw");
    let ro = scratch("volume-ro");
    std::fs::write(ro.join("kept"), "read-only\n").unwrap();
    let d = dir.to_str().unwrap();
    let sh = format!(
        "echo changed > {d}/image-file; cat {d}/image-file; echo new > {d}/new-file; \
         rm {d}/image-file; ls {d}; echo through > /data/out; cat /ro/kept; \
         echo no > /ro/x || echo refused"
    );
    let vrw = format!("{}:/data", rw.display());
    let vro = format!("{}:/ro:ro", ro.display());
    let r = sandboxed(&["-v", &vrw, "-v", &vro], "/bin/sh", &["-c", &sh]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout, "changed\nnew-file\nread-only\nrefused\n",
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Read-only file system"), "{}", r.stderr);
    // The image is untouched; the writable volume has what was written.
    assert_eq!(
        std::fs::read_to_string(dir.join("image-file")).unwrap(),
        "from the image\n"
    );
    assert!(!dir.join("new-file").exists());
    assert_eq!(
        std::fs::read_to_string(rw.join("out")).unwrap(),
        "through\n"
    );
    assert!(!ro.join("x").exists());
    for d in [dir, rw, ro] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn nothing_outside_the_root_dir_is_reachable() {
    let outside = scratch("outside");
    std::fs::write(outside.join("secret"), "host secret\n").unwrap();
    let root = scratch("rootdir");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("/", root.join("to-slash")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", root.join("up")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("to-outside")).unwrap();
    let secret = outside.join("secret");
    let s = secret.to_str().unwrap();
    let rel = s.trim_start_matches('/');
    // Every way the guest might name the host file.
    let sh = format!(
        "for p in {s} /to-slash/{rel} /up/{rel} /to-outside/secret /proc/self/root/{rel} \
         /proc/1/root/{rel} /proc/self/cwd/../../../../{rel} /../../{rel}; do \
         cat $p 2>/dev/null && echo LEAK $p; done; \
         ln /to-outside/secret /stolen 2>/dev/null && echo LEAK link; \
         ls /; echo done"
    );
    let r = sandboxed(
        &["--root-dir", root.to_str().unwrap()],
        "/bin/busybox",
        &["sh", "-c", &sh],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("LEAK"), "{}", r.stdout);
    assert!(!r.stdout.contains("host secret"), "{}", r.stdout);
    assert!(
        r.stdout.contains("to-slash") && r.stdout.ends_with("done\n"),
        "{}",
        r.stdout
    );
    for d in [outside, root] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn fsync_writes_a_shared_mapping_back_to_the_host_file() {
    use std::io::BufRead;
    let dir = scratch("fsync");
    std::fs::write(dir.join("m"), b"hello, world\n").unwrap();
    let vol = format!("{}:/data", dir.display());
    // Changed through a shared mapping and fsync'd, then left mapped: only
    // fsync can have written the change back when the host reads it.
    let py = "import mmap, os, sys, time\n\
              f = open('/data/m', 'r+b')\n\
              m = mmap.mmap(f.fileno(), 0)\n\
              m[0:5] = b'HELLO'\n\
              os.fsync(f.fileno())\n\
              print('synced', flush=True)\n\
              time.sleep(30)\n";
    let mut child = Command::new(runsc())
        .args(["do", "-v", &vol, "/usr/bin/python3", "-c", py])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let on_host = std::fs::read(dir.join("m")).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(line, "synced\n");
    assert_eq!(on_host, b"HELLO, world\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_volume_shows_files_made_from_outside_after_it_was_listed() {
    use std::io::{BufRead, Write};
    // The policy for bind mounts (README): the sandbox's own changes are
    // always coherent; lookups are never cached negatively, so a name made
    // on the host is found at once; attributes of a file the sandbox holds
    // are its own view until it lets go of the file.
    let dir = scratch("revalidate");
    let vol = format!("{}:/data", dir.display());
    let py = "import os, sys\n\
              print(sorted(os.listdir('/data')), flush=True)\n\
              sys.stdin.readline()\n\
              print(sorted(os.listdir('/data')), open('/data/late').read().strip(), flush=True)\n";
    let mut child = Command::new(runsc())
        .args(["do", "-v", &vol, "/usr/bin/python3", "-c", py])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    std::fs::write(dir.join("late"), "made on the host\n").unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut second = String::new();
    out.read_line(&mut second).unwrap();
    let _ = child.wait();
    assert_eq!(first, "[]\n");
    assert_eq!(second, "['late'] made on the host\n");
    std::fs::remove_dir_all(&dir).unwrap();
}
