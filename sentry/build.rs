//! Builds the guest vDSO (`vdso/vdso.c`) with the machine's C compiler;
//! the sentry embeds the shared object it makes.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vdso");
    let src = dir.join("vdso.c");
    let script = dir.join("vdso.lds");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("vdso.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let result = Command::new(&cc)
        .args([
            "-nostdlib",
            "-shared",
            "-fPIC",
            "-O2",
            "-fno-stack-protector",
            "-fno-builtin",
            "-fno-plt",
            "-fcf-protection=none",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wl,--hash-style=both",
            "-Wl,-soname=linux-vdso.so.1",
            "-Wl,--no-undefined",
            "-Wl,-z,max-page-size=4096",
            "-Wl,--build-id=none",
            "-Wl,--eh-frame-hdr",
        ])
        .arg(format!("-Wl,-T,{}", script.display()))
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .output();
    match result {
        Err(e) => panic!(
            "building the guest vDSO needs a C compiler: running `{cc}` failed: {e} \
             (install gcc, or set CC)"
        ),
        Ok(o) if !o.status.success() => panic!(
            "building the guest vDSO with `{cc}` failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Ok(_) => {}
    }
}
