//! Real programs on the sandbox's epoll and event files, compared with
//! native runs: Python's asyncio event loop (epoll, pipes, subprocesses,
//! timers, signals).

use std::path::{Path, PathBuf};

use tests::{build_dir, compare, workspace};

/// A script of `tests/scripts`, copied where the sandbox sees it (its
/// /tmp is its own, and the checkout may lie under the host's /tmp).
fn script(name: &str) -> PathBuf {
    let src = workspace().join("tests/scripts").join(name);
    let dst = build_dir().join("scripts").join(name);
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(&src, &dst).unwrap();
    dst
}

#[test]
fn python_asyncio_runs_as_natively() {
    let s = script("asyncio_events.py");
    let r = compare(Path::new("/usr/bin/python3"), &[s.to_str().unwrap()], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The loop waits in epoll, and got to the end.
    assert!(
        r.stdout.starts_with("selector EpollSelector\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.ends_with("queue 4950\n"), "{}", r.stdout);
}

/// Runs `prog` natively or sandboxed with standard input a pipe that
/// gets `pieces` one at a time (each once the program has read the one
/// before), then is closed.
fn run_fed(prog: &Path, sandboxed: bool, pieces: &[&'static str]) -> tests::RunResult {
    use std::io::Write;
    let (r, w) = std::io::pipe().unwrap();
    let mut cmd = tests::command(prog, &[], sandboxed, &[]);
    cmd.stdin(r);
    let pieces = pieces.to_vec();
    let feeder = std::thread::spawn(move || {
        let mut w = w;
        for p in pieces {
            w.write_all(p.as_bytes()).unwrap();
            // Until the program has read it (FIONREAD on a pipe's write
            // end counts what waits in the pipe).
            for _ in 0..2000 {
                let mut n: libc::c_int = 0;
                use std::os::fd::AsRawFd;
                // SAFETY: FIONREAD writes one int to &mut n.
                unsafe { libc::ioctl(w.as_raw_fd(), libc::FIONREAD, &mut n) };
                if n == 0 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    let (res, _) = tests::run_command(cmd, std::time::Duration::from_secs(120));
    feeder.join().unwrap();
    res
}

#[test]
fn epoll_on_a_host_pipe_as_natively() {
    let prog = tests::build_c(&workspace().join("tests/events/epoll_stdin.c"), &[]);
    let pieces = ["first\n", "second piece\n", "third\n"];
    let native = run_fed(&prog, false, &pieces);
    let sandbox = run_fed(&prog, true, &pieces);
    assert_eq!(native.code, 0, "{}", native.stderr);
    assert_eq!(
        native.stdout,
        sandbox.stdout,
        "{}\nsandbox stderr: {}",
        tests::diff(&native.stdout, &sandbox.stdout),
        sandbox.stderr
    );
    assert_eq!(sandbox.code, 0);
    assert!(
        native.stdout.ends_with("read 0: (eof)\n"),
        "{}",
        native.stdout
    );
}
