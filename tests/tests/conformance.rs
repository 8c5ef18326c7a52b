//! The conformance suite: every C program under `tests/syscalls/` is built
//! static with the machine's `cc`, run natively and under `runsc do`, and
//! must print the same and exit the same. Standard input is
//! `tests/syscalls/<name>.stdin` when present, else `/dev/null`.

use tests::{build_c, compare, workspace};

fn run_case(name: &str) {
    let dir = workspace().join("tests/syscalls");
    let src = dir.join(format!("{name}.c"));
    let bin = build_c(&src, &[]);
    let stdin = dir.join(format!("{name}.stdin"));
    let stdin = stdin.exists().then_some(stdin);
    let r = compare(&bin, &[], stdin.as_deref());
    assert!(
        !r.stdout.is_empty(),
        "{name} printed nothing: a case that checks nothing cannot fail"
    );
}

include!(concat!(env!("OUT_DIR"), "/cases.rs"));
