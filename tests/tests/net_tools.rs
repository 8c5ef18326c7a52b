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
