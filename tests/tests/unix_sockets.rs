//! Unix sockets with real programs and at the sandbox's edge: Python's
//! asyncio echo server and clients over a unix socket, socat relaying
//! between two unix sockets (both compared with native runs); a host
//! socket reached through a bind mount is refused and a socket bound
//! inside stays inside; the abstract namespace is the sandbox's own;
//! other socket families answer EAFNOSUPPORT, logged.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tests::{build_c, build_dir, compare, run_command, runsc, workspace, ScratchDir};

/// A file of `tests/scripts`, copied where the sandbox sees it.
fn script(name: &str) -> PathBuf {
    let src = workspace().join("tests/scripts").join(name);
    let dst = build_dir().join("scripts").join(name);
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(&src, &dst).unwrap();
    dst
}

fn host_program() -> PathBuf {
    build_c(&workspace().join("tests/programs/unix_host.c"), &[])
}

fn sandboxed(flags: &[&str], prog: &Path, args: &[&str]) -> tests::RunResult {
    let mut cmd = Command::new(runsc());
    cmd.args(flags).arg("do").arg(prog).args(args);
    cmd.stdin(Stdio::null());
    run_command(cmd, Duration::from_secs(120)).0
}

#[test]
fn python_asyncio_echo_over_a_unix_socket() {
    let r = compare(
        Path::new("/usr/bin/python3"),
        &[script("asyncio_unix.py").to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("1 MiB echoed: True"), "{}", r.stdout);
    assert!(r.stdout.ends_with("done\n"), "{}", r.stdout);
}

#[test]
fn socat_between_two_unix_sockets() {
    if !Path::new("/usr/bin/socat").exists() {
        // .ci/run installs socat; a machine without it cannot run this.
        panic!("socat is not installed (apt-get install socat)");
    }
    let r = compare(
        Path::new("/bin/sh"),
        &[script("socat.sh").to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout, "hello one\nhello two\nhello three\n2\ndone\n",
        "{}",
        r.stderr
    );
}

#[test]
fn a_host_socket_through_a_bind_mount_is_refused() {
    let dir = ScratchDir::new("unix-host");
    let host_path = dir.0.join("host.sock");
    let listener = std::os::unix::net::UnixListener::bind(&host_path).unwrap();
    let vol = format!("{}:/data", dir.0.display());
    let prog = host_program();
    // Through the root (the host's tree under the overlay) and through a
    // bind mount of its directory: the node is there, the socket is not.
    let r = sandboxed(&[], &prog, &["connect", host_path.to_str().unwrap()]);
    assert_eq!(r.stdout, "connect: ECONNREFUSED\n", "{}", r.stderr);
    let r = {
        let mut cmd = Command::new(runsc());
        cmd.args(["do", "-v", &vol])
            .arg(&prog)
            .args(["connect", "/data/host.sock"]);
        cmd.stdin(Stdio::null());
        run_command(cmd, Duration::from_secs(120)).0
    };
    assert_eq!(r.stdout, "connect: ECONNREFUSED\n", "{}", r.stderr);
    drop(listener);

    // A socket bound inside makes a socket node on the host, which
    // reaches nothing from the host.
    let mut child = Command::new(runsc())
        .args(["do", "-v", &vol])
        .arg(&prog)
        .args(["bind", "/data/inside.sock"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "bind: ok\n");
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "listen: ok\n");
    use std::os::unix::fs::FileTypeExt;
    let inside = dir.0.join("inside.sock");
    assert!(std::fs::symlink_metadata(&inside)
        .unwrap()
        .file_type()
        .is_socket());
    let e = std::os::unix::net::UnixStream::connect(&inside).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED), "{e}");
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_abstract_namespace_is_the_sandboxs_own() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("runsc-test-abstract-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    let r = sandboxed(&[], &host_program(), &["abstract", &name]);
    assert_eq!(
        r.stdout, "connect: ECONNREFUSED\nbind: ok\n",
        "{}",
        r.stderr
    );
    drop(listener);
}

#[test]
fn families_the_sandbox_lacks_are_refused_and_logged() {
    let log = build_dir().join(format!("unix-families-{}.log", std::process::id()));
    let r = sandboxed(
        &["--debug-log", log.to_str().unwrap()],
        &host_program(),
        &["inet"],
    );
    assert_eq!(
        r.stdout,
        "socket AF_INET: ok\nsocket AF_INET6: ok\n\
         socket AF_INET SCTP: EPROTONOSUPPORT\n\
         socket AF_PACKET: EAFNOSUPPORT\n\
         socket AF_NETLINK NETLINK_AUDIT: EPROTONOSUPPORT\n\
         socketpair AF_INET: EOPNOTSUPP\n",
        "{}",
        r.stderr
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(
        text.contains("unimplemented: socket AF_INET type 1 protocol 132")
            && text.contains("socket family AF_PACKET")
            && text.contains("netlink protocol NETLINK_AUDIT"),
        "{text}"
    );
}
