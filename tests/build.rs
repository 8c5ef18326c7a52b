//! Generates one test per C program under `syscalls/`, so that adding a
//! case is adding a file.

use std::fmt::Write;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("syscalls");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/syscalls")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".c"))
        .map(|n| n.trim_end_matches(".c").to_string())
        .collect();
    names.sort();
    let mut out = String::new();
    for n in &names {
        let ident: String = n
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        writeln!(
            out,
            "#[test]\nfn {ident}() {{\n    run_case(\"{n}\");\n}}\n"
        )
        .unwrap();
    }
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("cases.rs");
    std::fs::write(dest, out).unwrap();
}
