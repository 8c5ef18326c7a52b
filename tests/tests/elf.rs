//! Malformed executables get ENOEXEC (exit 126 with a clear message), never
//! a sentry crash; dynamically linked ones are refused clearly until the
//! file system can supply their interpreter.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use tests::{build_c, build_dir, runsc, workspace};

fn good_binary() -> Vec<u8> {
    std::fs::read(build_c(&workspace().join("tests/syscalls/basic.c"), &[])).unwrap()
}

fn write_variant(name: &str, bytes: &[u8]) -> PathBuf {
    let p = build_dir().join(format!("elf-{name}"));
    std::fs::write(&p, bytes).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Offset of the first PT_LOAD program header.
fn first_load(b: &[u8]) -> usize {
    let phoff = u64_at(b, 32) as usize;
    let phnum = u16_at(b, 56) as usize;
    (0..phnum)
        .map(|i| phoff + i * 56)
        .find(|&o| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) == 1)
        .unwrap()
}

fn expect_enoexec(name: &str, bytes: &[u8]) {
    let p = write_variant(name, bytes);
    let out = Command::new(runsc()).arg("do").arg(&p).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(126), "{name}: {err}");
    assert!(err.contains("not an executable"), "{name}: {err}");
    assert!(!err.contains("panicked"), "{name}: {err}");
}

#[test]
fn malformed_executables_get_enoexec() {
    let good = good_binary();
    expect_enoexec("truncated", &good[..40]);
    let mut b = good.clone();
    b[18] = 3; // EM_386
    expect_enoexec("machine", &b);
    let mut b = good.clone();
    b[16] = 1; // ET_REL
    expect_enoexec("type", &b);
    let mut b = good.clone();
    b[56] = 0;
    b[57] = 0; // no program headers
    expect_enoexec("phnum", &b);
    let mut b = good.clone();
    b[32..40].copy_from_slice(&(good.len() as u64 + 4096).to_le_bytes());
    expect_enoexec("phoff", &b);
    let mut b = good.clone();
    b[54] = 40; // wrong program header size
    expect_enoexec("phentsize", &b);
    let ph = first_load(&good);
    let mut b = good.clone();
    b[ph + 8..ph + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    expect_enoexec("offset", &b);
    let mut b = good.clone();
    let memsz = u64_at(&good, ph + 40);
    b[ph + 32..ph + 40].copy_from_slice(&(memsz + 4096).to_le_bytes());
    expect_enoexec("filesz", &b);
    let mut b = good.clone();
    b[ph + 16..ph + 24].copy_from_slice(&0xffff_ffff_ffff_0000u64.to_le_bytes());
    b[ph + 8..ph + 16].copy_from_slice(&0u64.to_le_bytes());
    expect_enoexec("vaddr", &b);
}

#[test]
fn dynamically_linked_programs_run_and_need_a_root_with_their_interpreter() {
    let src = workspace().join("tests/syscalls/basic.c");
    let out = build_dir().join("basic-dynamic");
    let st = Command::new("cc")
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .arg("-I")
        .arg(workspace().join("tests/syscalls"))
        .status()
        .unwrap();
    assert!(st.success());
    // From the host's root (through the gofer): ld.so and libc are found
    // there, and the program prints what it prints natively.
    let r = tests::compare(&out, &[], None);
    assert!(r.stdout.contains("argc=1"), "{}", r.stdout);
    // In an empty root there is no interpreter to load.
    let r = tests::run_empty_root(&out, &[]);
    assert_eq!(r.code, 127, "{}", r.stderr);
    assert!(r.stderr.contains("interpreter"), "{}", r.stderr);
    assert!(r.stderr.contains("ld-linux"), "{}", r.stderr);
}
