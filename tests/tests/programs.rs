//! Real programs, not hand-made stand-ins: Debian's busybox-static and a
//! static Rust program, run natively and in the sandbox with the same
//! input; output and exit status must match.

use std::path::{Path, PathBuf};
use std::process::Command;

use tests::{build_dir, compare, workspace};

const BUSYBOX: &str = "/bin/busybox";

fn busybox() -> &'static Path {
    let p = Path::new(BUSYBOX);
    assert!(
        p.exists(),
        "{BUSYBOX} is missing: install Debian's busybox-static (.ci/run does)"
    );
    p
}

fn input_file(name: &str, content: &[u8]) -> PathBuf {
    let p = build_dir().join(name);
    std::fs::write(&p, content).unwrap();
    p
}

#[test]
fn busybox_echo() {
    let r = compare(busybox(), &["echo", "hello", "from", "busybox"], None);
    assert_eq!(r.stdout, "hello from busybox\n");
}

#[test]
fn busybox_seq_100000() {
    let r = compare(busybox(), &["seq", "1", "100000"], None);
    assert_eq!(r.stdout.lines().count(), 100000);
}

#[test]
fn busybox_true_and_false() {
    assert_eq!(compare(busybox(), &["true"], None).code, 0);
    assert_eq!(compare(busybox(), &["false"], None).code, 1);
}

#[test]
fn busybox_sha256sum_stdin() {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let f = input_file("sha256-input", &data);
    let r = compare(busybox(), &["sha256sum"], Some(&f));
    assert!(r.stdout.ends_with("  -\n"), "{}", r.stdout);
}

#[test]
fn busybox_wc_stdin() {
    let f = input_file("wc-input", b"one two three\nfour five\n\nsix\n");
    let r = compare(busybox(), &["wc"], Some(&f));
    assert!(
        r.stdout.contains('4') && r.stdout.contains('6'),
        "{}",
        r.stdout
    );
}

#[test]
fn static_rust_program() {
    let src = workspace().join("tests/programs/rust_static.rs");
    let out = build_dir().join("rust_static");
    let status = Command::new("rustc")
        .args(["-O", "-C", "target-feature=+crt-static", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("running rustc");
    assert!(status.success());
    let f = input_file("rust-input", b"b a c a b a\n");
    let r = compare(&out, &["x", "--flag", "y"], Some(&f));
    assert_eq!(r.code, 3);
    assert!(r.stdout.contains("a: 3"));
}

#[test]
fn writing_to_a_closed_pipe_kills_with_sigpipe() {
    use std::io::BufRead;
    for sandboxed in [false, true] {
        let mut cmd = if sandboxed {
            let mut c = Command::new(tests::runsc());
            c.arg("do").arg(busybox());
            c
        } else {
            Command::new(busybox())
        };
        let mut child = cmd
            .arg("yes")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "y\n");
        // The reader is gone now.
        let status = child.wait().unwrap();
        let code = std::os::unix::process::ExitStatusExt::signal(&status)
            .map(|s| 128 + s)
            .or(status.code());
        assert_eq!(code, Some(128 + libc::SIGPIPE), "sandboxed: {sandboxed}");
    }
}

#[test]
fn o_append_set_by_the_guest_applies_to_a_host_stdout() {
    let prog = tests::build_c(&workspace().join("tests/programs/append.c"), &[]);
    let mut results = Vec::new();
    for sandboxed in [false, true] {
        let path = build_dir().join(format!("append-{sandboxed}.txt"));
        std::fs::write(&path, "first line\n").unwrap();
        let out = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut cmd = if sandboxed {
            let mut c = Command::new(tests::runsc());
            c.arg("do").arg(&prog);
            c
        } else {
            Command::new(&prog)
        };
        let status = cmd.stdout(out).status().unwrap();
        assert!(status.success());
        results.push(std::fs::read_to_string(&path).unwrap());
    }
    assert_eq!(results[0], "first line\nappended\n");
    assert_eq!(results[0], results[1]);
}
