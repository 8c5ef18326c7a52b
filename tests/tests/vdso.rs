//! The vDSO is used: a static program that reads the clocks a million
//! times makes (almost) none of those reads as system calls, as the
//! sandbox's strace log shows. Not a timing test.

use tests::{build_c, run_with, workspace};

/// Runs a clock loop program under `runsc --strace do`; returns the
/// strace lines per call name.
fn traced_calls(source: &str) -> std::collections::HashMap<&'static str, usize> {
    let prog = build_c(&workspace().join("tests/programs").join(source), &[]);
    let r = run_with(&prog, &["1000000"], None, true, &["--strace"]);
    assert_eq!(r.code, 0, "clock_loop failed: {}", r.stderr);
    assert_eq!(r.stdout, "backwards 0, getcpu ok yes\n");
    let mut counts = std::collections::HashMap::new();
    for name in ["clock_gettime", "gettimeofday", "time", "getcpu"] {
        // strace lines read "[pid:tid] name(args) = result".
        let pat = format!("] {name}(");
        counts.insert(name, r.stderr.lines().filter(|l| l.contains(&pat)).count());
    }
    assert!(
        r.stderr.lines().any(|l| l.contains("] write(")),
        "the strace log is missing or its format changed:\n{}",
        &r.stderr[..r.stderr.len().min(2000)]
    );
    counts
}

fn check(source: &str) {
    let counts = traced_calls(source);
    // Two million clock_gettime calls, a hundred thousand of each other:
    // a handful may trap (a read during an update of the parameters goes
    // to the sentry), not thousands.
    for (name, n) in &counts {
        assert!(
            *n < 1000,
            "{n} {name} calls trapped: the vDSO is not used ({counts:?})"
        );
    }
}

#[test]
fn static_program_reads_clocks_without_trapping() {
    check("clock_loop.c");
}

#[test]
fn static_pie_program_reads_clocks_without_trapping() {
    check("clock_loop_pie.c");
}
