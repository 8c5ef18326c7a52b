//! Shell scripts with processes, pipelines, jobs and signals, run by
//! Debian's busybox sh natively and in the sandbox: output and exit
//! status must match. busybox runs its applets in-process or through
//! `/proc/self/exe`, so the sandbox needs no host files.

use std::path::Path;

use tests::{compare, workspace};

const BUSYBOX: &str = "/bin/busybox";

fn busybox() -> &'static Path {
    let p = Path::new(BUSYBOX);
    assert!(
        p.exists(),
        "{BUSYBOX} is missing: install Debian's busybox-static (.ci/run does)"
    );
    p
}

fn script(name: &str) -> String {
    std::fs::read_to_string(workspace().join("tests/scripts").join(name)).unwrap()
}

#[test]
fn jobs_signals_and_pipelines() {
    let s = script("jobs.sh");
    let r = compare(busybox(), &["sh", "-c", &s], None);
    assert!(r.stdout.ends_with("done\n"), "{}", r.stdout);
}

#[test]
fn a_long_pipeline_of_separate_processes() {
    let r = compare(
        busybox(),
        &["sh", "-c", "seq 1 200000 | sort -r | uniq | wc -l"],
        None,
    );
    assert_eq!(r.stdout.trim(), "200000");
}

#[test]
fn exit_status_of_a_script_passes_through() {
    let r = compare(busybox(), &["sh", "-c", "(exit 3) | cat; exit 42"], None);
    assert_eq!(r.code, 42);
    let r = compare(
        busybox(),
        &["sh", "-c", "sh -c 'kill -TERM $$'; echo $?"],
        None,
    );
    assert_eq!(r.stdout, "143\n");
}

/// The sandbox's pid 1 ignores the signals it has no handler for, as a
/// container's init does (natively the shell is not pid 1, so this is
/// not compared).
#[test]
fn init_ignores_signals_without_a_handler() {
    let r = tests::run(
        busybox(),
        &[
            "sh",
            "-c",
            "echo pid $$; kill -TERM $$; kill -KILL $$; echo alive; trap 'echo trapped' USR1; kill -USR1 $$; exit 4",
        ],
        None,
        true,
    );
    assert_eq!(r.stdout, "pid 1\nalive\ntrapped\n");
    assert_eq!(r.code, 4);
}
