//! iproute2 in the sandbox: `ip addr`, `ip link`, `ip route`, `ip link set
//! lo up`, adding and deleting an address, each compared with the same
//! commands run natively in a fresh network namespace (`unshare -n`,
//! whose only link is `lo`), the namespace a `--network=none` sandbox
//! shows. The native namespace's `lo` starts down: both scripts begin by
//! setting it up.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::{command, diff, run_command, RunResult};

const IP: &str = "/usr/sbin/ip";
const SH: &str = "/bin/sh";

fn need_ip() {
    assert!(
        Path::new(IP).exists(),
        "{IP} is missing: install Debian's iproute2 (.ci/run does)"
    );
}

/// Runs `script` with sh natively in a new network namespace and in the
/// sandbox; both must print the same and exit the same.
fn compare_in_fresh_netns(script: &str) -> RunResult {
    need_ip();
    let mut native = Command::new("unshare");
    native.args(["-n", SH, "-c", script]).current_dir("/");
    let (native, _) = run_command(native, Duration::from_secs(60));
    // Both start in / (a working directory under /tmp is not in the
    // sandbox, which says so on stderr).
    let mut sandbox = command(Path::new(SH), &["-c", script], true, &[]);
    sandbox.current_dir("/");
    let (sandbox, _) = run_command(sandbox, Duration::from_secs(60));
    let both = |r: &RunResult| format!("{}{}", r.stdout, r.stderr);
    assert!(
        both(&native) == both(&sandbox) && native.code == sandbox.code,
        "native and sandbox differ\n{}exit: native {} sandbox {}",
        diff(&both(&native), &both(&sandbox)),
        native.code,
        sandbox.code
    );
    sandbox
}

#[test]
fn ip_addr_link_route() {
    let r = compare_in_fresh_netns(
        "ip link set lo up && ip addr && ip link && ip route && ip -6 route \
         && ip route show table all && ip -4 addr show dev lo && ip -6 addr show dev lo \
         && ip neigh",
    );
    assert!(
        r.stdout.contains("inet 127.0.0.1/8 scope host lo"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("inet6 ::1/128 scope host"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1"),
        "{}",
        r.stdout
    );
}

#[test]
fn ip_link_set_lo_down_and_up() {
    let r = compare_in_fresh_netns(
        "ip link set lo up && ip link set lo down && ip link show lo && ip route show table all \
         && ip link set lo up && ip link show lo; ip link set nosuch0 up; echo status $?",
    );
    assert!(r.stdout.contains("<LOOPBACK> mtu 65536"), "{}", r.stdout);
    assert!(r.stdout.contains("<LOOPBACK,UP,LOWER_UP>"), "{}", r.stdout);
    assert!(r.stdout.contains("status 1"), "{}", r.stdout);
}

#[test]
fn ip_addr_add_del() {
    let r = compare_in_fresh_netns(
        "ip link set lo up && ip addr add 10.1.2.3/24 dev lo && ip addr show dev lo \
         && ip route show table all && ip addr add 10.1.2.3/24 dev lo; echo status $?; \
         ip addr del 10.1.2.3/24 dev lo && ip -4 addr && ip addr del 10.1.2.3/24 dev lo; \
         echo status $?; ip -6 addr add fd00::5/64 dev lo && ip -6 addr show dev lo \
         && ip -6 route show table all && ip -6 addr del fd00::5/64 dev lo && ip -6 addr show dev lo",
    );
    assert!(
        r.stdout.contains("inet 10.1.2.3/24 scope global lo"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("status 2"), "{}", r.stdout);
}

#[test]
fn ss_lists_listeners_connections_and_their_processes() {
    // Listeners of both families (one v6-only), a UDP socket, an
    // accepted connection with unread data and one still in a backlog;
    // `ss` (through sock_diag) and /proc/net must show them alike. Pids
    // and the ephemeral ports (Linux picks them at random) are blanked,
    // the lines sorted (Linux lists its hash tables' order), trailing
    // blanks (column widths follow the pids' widths) dropped.
    let py = r#"
import re, socket, subprocess, time
def lsn(fam, addr, port, backlog, v6only=None):
    s = socket.socket(fam)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    s.bind((addr, port)); s.listen(backlog); return s
a = lsn(socket.AF_INET, "127.0.0.1", 9000, 7)
b = lsn(socket.AF_INET6, "::", 9001, 3, 1)
c = lsn(socket.AF_INET, "0.0.0.0", 9002, 128)
d = lsn(socket.AF_INET6, "::", 9004, 5, 0)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 9003))
k = socket.create_connection(("127.0.0.1", 9002)); srv, _ = c.accept()
k.send(b"abc"); time.sleep(0.2)
w = socket.create_connection(("127.0.0.1", 9000)); time.sleep(0.2)
def show(args):
    out = subprocess.run(args, capture_output=True, text=True)
    lines = []
    for l in out.stdout.splitlines():
        l = re.sub(r"pid=[0-9]+", "pid=N", l)
        l = re.sub(r":(3[2-9][0-9]{3}|[4-6][0-9]{4})\b", ":EPH", l)
        lines.append(l.rstrip())
    print("\n".join(lines[:1] + sorted(lines[1:])))
    print("exit", out.returncode, out.stderr)
show(["ss", "-tlnp"]); show(["ss", "-ulnp"]); show(["ss", "-tn"]); show(["ss", "-tan", "sport", "=", ":9001"])
show(["ss", "-6tln"]); show(["ss", "-4tn", "state", "established"])
n = sum(1 for l in open("/proc/net/tcp").read().splitlines()[1:])
print("tcp lines", n)
"#;
    let r = compare_in_fresh_netns(&format!("ip link set lo up && python3 -c '{py}'"));
    assert!(
        r.stdout.contains("LISTEN 1      7          127.0.0.1:9000"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("[::]:9001"), "{}", r.stdout);
    assert!(r.stdout.contains("*:9004"), "{}", r.stdout);
    assert!(
        r.stdout.contains("users:((\"python3\",pid=N,fd=6))"),
        "{}",
        r.stdout
    );
}
