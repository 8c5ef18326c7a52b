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
