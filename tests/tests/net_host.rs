//! `--network=host`: the guest's TCP and UDP sockets are host sockets the
//! sentry makes, in the host's network namespace. Each comparison runs
//! natively in the host's namespace (not a fresh one, as the other
//! network tests do) and in the sandbox; all traffic stays on loopback
//! (127.0.0.1 and ::1). Then what host mode must still refuse: packet,
//! raw and other protocols' sockets, control messages, options outside
//! the allow-list, and host socket calls the seccomp filter does not
//! allow.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tests::{build_c, build_dir, command, diff, run_command, runsc, workspace, RunResult};

const PYTHON: &str = "/usr/bin/python3";
const CURL: &str = "/usr/bin/curl";
const IP: &str = "/usr/sbin/ip";

fn need(p: &str, pkg: &str) {
    assert!(
        Path::new(p).exists(),
        "{p} is missing: install Debian's {pkg} (.ci/run does)"
    );
}

/// A native command in the host's network namespace, with the fixed
/// environment sandboxed runs get.
fn native(prog: &str, args: &[&str]) -> Command {
    let mut c = Command::new(prog);
    c.args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C")
        .current_dir("/");
    c
}

/// The same, under `runsc --network=host do`.
fn sandboxed(prog: &str, args: &[&str]) -> Command {
    let mut c = command(Path::new(prog), args, true, &["--network=host"]);
    c.current_dir("/");
    c
}

fn run(mut c: Command) -> RunResult {
    c.stdin(Stdio::null());
    run_command(c, Duration::from_secs(120)).0
}

/// A server that prints its port on its first line: started, and that
/// port.
fn start_server(mut c: Command) -> (Child, u16) {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("starting the server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    match line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
    {
        Some(port) => (child, port),
        None => {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the server did not start: {line:?} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        }
    }
}

/// An HTTP server on `host` (an ephemeral port): GET answers the path
/// repeated, POST the sum of the bytes it got; with `once` 1 it exits
/// after the connection that carried a POST, else it serves forever.
const SERVER: &str = r#"
import http.server, socket, sys
host, once = sys.argv[1], sys.argv[2] == "1"
posted = False
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = (self.path * 3000).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        n = int(self.headers["Content-Length"])
        data = self.rfile.read(n)
        global posted
        posted = True
        body = f"{n} {sum(data)}\n".encode()
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.HTTPServer):
    address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
srv = S((host, 0), H)
print("port", srv.server_address[1], flush=True)
if not once:
    srv.serve_forever()
while not posted:
    srv.handle_request()
"#;

/// A POST body: 300 KB of a fixed pattern, in a file curl reads.
fn post_body() -> PathBuf {
    let p = build_dir().join("net_host_post.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    if std::fs::read(&p).ok().as_deref() != Some(&data[..]) {
        let tmp = build_dir().join(format!("net_host_post.{}", std::process::id()));
        std::fs::write(&tmp, &data).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
    }
    p
}

/// curl's arguments for the requests the server answers: three GETs and
/// a POST, each printing its status and size.
fn curl_args(host: &str, port: u16, body: &Path) -> Vec<String> {
    let base = if host.contains(':') {
        format!("http://[{host}]:{port}")
    } else {
        format!("http://{host}:{port}")
    };
    let mut a: Vec<String> = ["-s", "-g", "-w", "\\n%{http_code} %{size_download}\\n"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for p in ["/a", "/hello", "/long/path/x"] {
        a.push(format!("{base}{p}"));
    }
    a.push("--next".into());
    a.extend(
        ["-s", "-g", "-w", "%{http_code}\\n"]
            .iter()
            .map(|s| s.to_string()),
    );
    a.push("--data-binary".into());
    a.push(format!("@{}", body.display()));
    a.push(format!("{base}/post"));
    a
}

fn assert_same(what: &str, native: &RunResult, sandbox: &RunResult) {
    assert_eq!(
        native.code, 0,
        "{what}: native run failed: {}",
        native.stderr
    );
    assert!(
        native.stdout == sandbox.stdout && native.code == sandbox.code,
        "{what}: native and sandbox differ\n{}exit: native {} sandbox {}\nsandbox stderr: {}",
        diff(&native.stdout, &sandbox.stdout),
        native.code,
        sandbox.code,
        sandbox.stderr
    );
}

#[test]
fn http_server_in_the_sandbox_serves_curl_on_the_host() {
    need(PYTHON, "python3");
    need(CURL, "curl");
    let body = post_body();
    for host in ["127.0.0.1", "::1"] {
        let mut outs = Vec::new();
        for in_sandbox in [false, true] {
            let args = ["-c", SERVER, host, "1"];
            let c = if in_sandbox {
                sandboxed(PYTHON, &args)
            } else {
                native(PYTHON, &args)
            };
            let (server, port) = start_server(c);
            let a = curl_args(host, port, &body);
            let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
            let got = run(native(CURL, &a));
            let out = server.wait_with_output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "server (sandboxed: {in_sandbox}) on {host}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            outs.push(got);
        }
        assert!(outs[0].stdout.contains("201\n"), "{}", outs[0].stdout);
        assert_same(&format!("server on {host}"), &outs[0], &outs[1]);
    }
}

#[test]
fn curl_in_the_sandbox_fetches_from_a_host_server() {
    need(PYTHON, "python3");
    need(CURL, "curl");
    let body = post_body();
    for host in ["127.0.0.1", "::1"] {
        let (mut server, port) = start_server(native(PYTHON, &["-c", SERVER, host, "0"]));
        let a = curl_args(host, port, &body);
        let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
        let n = run(native(CURL, &a));
        let s = run(sandboxed(CURL, &a));
        let _ = server.kill();
        let _ = server.wait();
        assert!(n.stdout.contains("201\n"), "{}", n.stdout);
        assert_same(&format!("curl to {host}"), &n, &s);
    }
}

#[test]
fn socket_calls_behave_as_on_linux() {
    let prog = build_c(&workspace().join("tests/programs/net_host.c"), &[]);
    let p = prog.to_str().unwrap();
    let n = run(native(p, &[]));
    let s = run(sandboxed(p, &[]));
    assert_same("net_host.c", &n, &s);
    // The program got as far as its last part.
    assert!(n.stdout.contains("-- dgram\n"), "{}", n.stdout);
}

#[test]
fn packet_raw_and_other_sockets_are_refused_not_passed_to_the_host() {
    let prog = build_c(&workspace().join("tests/programs/net_host_refused.c"), &[]);
    let s = run(sandboxed(prog.to_str().unwrap(), &[]));
    let want = "\
socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)) = -1 EAFNOSUPPORT
socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP)) = -1 EAFNOSUPPORT
socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) = -1 EPERM
socket(AF_INET6, SOCK_RAW, IPPROTO_RAW) = -1 EPERM
socket(AF_INET, SOCK_RAW, IPPROTO_TCP) = -1 EPERM
socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) = -1 EPROTONOSUPPORT
socket(AF_INET, SOCK_SEQPACKET, 0) = -1 ESOCKTNOSUPPORT
socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE) = -1 EPROTONOSUPPORT
socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT) = -1 EPROTONOSUPPORT
socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER) = -1 EPROTONOSUPPORT
socket(AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT) = -1 EPROTONOSUPPORT
socket(AF_VSOCK, SOCK_STREAM, 0) = -1 EAFNOSUPPORT
socket(AF_ALG, SOCK_SEQPACKET, 0) = -1 EAFNOSUPPORT
socket(AF_BLUETOOTH, SOCK_RAW, 0) = -1 EAFNOSUPPORT
nl >= 0: yes
bind(l, (struct sockaddr *)&a, sizeof a) = 0
listen(l, 1) = 0
connect(c, (struct sockaddr *)&a, sizeof a) = 0
sendmsg(c, &mh, 0) = -1 EINVAL
setsockopt(c, SOL_SOCKET, SO_BINDTODEVICE, dev, sizeof dev) = -1 ENOPROTOOPT
setsockopt(c, SOL_SOCKET, SO_DEBUG, &one, sizeof one) = -1 ENOPROTOOPT
setsockopt(c, SOL_SOCKET, SO_MARK, &one, sizeof one) = -1 ENOPROTOOPT
setsockopt(c, SOL_IP, IP_TRANSPARENT, &one, sizeof one) = -1 ENOPROTOOPT
getsockopt(c, SOL_SOCKET, SO_PEERCRED, &v, &vl) = -1 ENOPROTOOPT
send(c, \"ok\", 2, 0) = 2
done
";
    assert_eq!(s.code, 0, "{}", s.stderr);
    assert!(
        s.stdout == want,
        "refusals differ\n{}stderr: {}",
        diff(want, &s.stdout),
        s.stderr
    );
}

#[test]
fn the_host_mode_filter_checks_socket_arguments() {
    // The test switch makes the sentry call socket(AF_INET, SOCK_STREAM |
    // SOCK_CLOEXEC, 0) once its filter is in: a blocking socket, which
    // hostinet never makes, so host mode forbids it too.
    let out = Command::new(runsc())
        .env("RUNSC_TEST_FORBIDDEN_SYSCALL", "1")
        .args(["--network=host", "do", "/bin/true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + libc::SIGSYS), "{err}");
    assert!(
        err.contains(&format!(
            "the sentry made host syscall {} (socket), which its seccomp filter forbids",
            libc::SYS_socket
        )),
        "{err}"
    );
}

#[test]
fn the_sentry_stays_in_the_host_network_namespace_and_lists_its_interfaces() {
    need(IP, "iproute2");
    need(PYTHON, "python3");
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    for (flag, shared) in [("--network=host", true), ("--network=sandbox", false)] {
        let mut child = Command::new(runsc())
            .args([flag, "do", PYTHON, "-c"])
            .arg("import sys; print('up', flush=True); sys.stdin.read()")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "up\n");
        let sentry = tests::sentry_of(child.id()).expect("the sentry process");
        let theirs = ns(&sentry.to_string());
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert_eq!(theirs == ns("self"), shared, "{flag}: sentry in {theirs:?}");
    }
    // The interfaces, addresses and routes are the host's: loopback and
    // the default route's interface (others may come and go on a busy
    // host while the test runs, as veths of containers do).
    let default = run(native(IP, &["route", "show", "default"]));
    let dev = default
        .stdout
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .map(str::to_string);
    let mut cases: Vec<Vec<String>> = vec![vec![
        "-br".into(),
        "addr".into(),
        "show".into(),
        "dev".into(),
        "lo".into(),
    ]];
    if let Some(dev) = &dev {
        for args in [
            &["-br", "addr", "show", "dev"][..],
            &["route", "show", "dev"][..],
            &["-6", "route", "show", "dev"][..],
        ] {
            let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            v.push(dev.clone());
            cases.push(v);
        }
    }
    // The sentry's netlink dumps IPv6 routes in an order of its own (the
    // default route first, as in the other modes): compared as sets.
    let sorted = |mut r: RunResult| {
        let mut l: Vec<&str> = r.stdout.lines().collect();
        l.sort();
        r.stdout = l.join("\n");
        r
    };
    for args in &cases {
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let n = sorted(run(native(IP, &a)));
        let s = sorted(run(sandboxed(IP, &a)));
        assert!(!n.stdout.is_empty(), "ip {a:?} printed nothing");
        assert_same(&format!("ip {a:?}"), &n, &s);
    }
}

#[test]
fn help_says_host_networking_is_less_isolated() {
    let out = Command::new(runsc()).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("host"), "{text}");
    assert!(text.contains("less isolated"), "{text}");
}

/// A network namespace of the test's own (`ip netns`), with loopback up
/// and a veth pair of its own, one end holding 198.51.100.7/24; removed
/// when dropped.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("nethost-{}", std::process::id());
        let script = format!(
            "ip netns add {name} && ip -n {name} link set lo up && \
             ip -n {name} link add d0 type veth peer name d1 && \
             ip -n {name} addr add 198.51.100.7/24 dev d0 && \
             ip -n {name} link set d1 up && ip -n {name} link set d0 up"
        );
        let ns = Netns(name);
        let out = Command::new("/bin/sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "making the namespace: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ns
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

#[test]
fn a_named_namespace_is_joined_as_it_is() {
    need(IP, "iproute2");
    need(PYTHON, "python3");
    let ns = Netns::new();
    // Sockets on the namespace's own address (which the host's namespace
    // does not have) and its loopback, natively there and in the sandbox.
    let py = r#"
import socket
for host in ["198.51.100.7", "127.0.0.1"]:
    l = socket.socket(); l.bind((host, 0)); l.listen()
    c = socket.create_connection(l.getsockname()); s, peer = l.accept()
    c.sendall(b"ping"); print(host, s.recv(10), peer[0] == host)
for host in ["192.0.2.200"]:
    try:
        socket.socket().bind((host, 0))
    except OSError as e:
        print(host, e.errno)
"#;
    let mut n = native(IP, &["netns", "exec", &ns.0, PYTHON, "-c", py]);
    n.stdin(Stdio::null());
    let n = run(n);
    let mut c = Command::new(runsc());
    c.args([
        "--network=host",
        "do",
        "--netns",
        &ns.path(),
        PYTHON,
        "-c",
        py,
    ])
    .env_clear()
    .env("PATH", "/usr/local/bin:/usr/bin:/bin")
    .env("LANG", "C")
    .current_dir("/");
    let s = run(c);
    assert!(
        n.stdout.contains("198.51.100.7 b'ping' True"),
        "{}",
        n.stdout
    );
    assert_same("sockets in the joined namespace", &n, &s);
    // The listings are the namespace's (IPv4: the IPv6 link-local
    // addresses may still be tentative), and nothing was taken over.
    let n = run(native(IP, &["-n", &ns.0, "-o", "-4", "addr"]));
    let mut c = Command::new(runsc());
    c.args([
        "--network=host",
        "do",
        "--netns",
        &ns.path(),
        IP,
        "-o",
        "-4",
        "addr",
    ])
    .env_clear()
    .env("PATH", "/usr/local/bin:/usr/bin:/bin")
    .current_dir("/");
    // Interface and address of each line: the sentry's netlink adds the
    // broadcast address the host computes without reporting.
    let fields = |mut r: RunResult| {
        r.stdout = r
            .stdout
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                format!("{} {}\n", f.get(1).unwrap_or(&""), f.get(3).unwrap_or(&""))
            })
            .collect();
        r
    };
    let n = fields(n);
    let s = fields(run(c));
    assert!(n.stdout.contains("d0 198.51.100.7/24\n"), "{}", n.stdout);
    assert_same("ip -o -4 addr in the joined namespace", &n, &s);
}

/// An OCI container under `runsc --network=host`: the spec without a
/// network namespace shares the host's (a host server on 127.0.0.1 is
/// reachable, the host's interfaces are listed); a spec namespace
/// without a path is a new one, loopback only, as the spec asks.
#[test]
fn oci_container_shares_the_host_network_only_without_a_namespace_of_its_own() {
    if !tests::rootfs::have_busybox() {
        return;
    }
    need(PYTHON, "python3");
    let (mut server, port) = start_server(native(PYTHON, &["-c", SERVER, "127.0.0.1", "0"]));
    let mut rt = tests::oci::Runtime::ours();
    rt.flags.push("--network=host".into());
    let script = format!(
        "cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' ' | sort | tr '\\n' ' '; echo; \
         wget -q -O - http://127.0.0.1:{port}/oci | head -c 8; echo; echo end"
    );
    // The interface of the host's default route (the host's others may
    // come and go while the test runs, as containers' veths do).
    let default = run(native(IP, &["route", "show", "default"]));
    let dev = default
        .stdout
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .unwrap_or("lo")
        .to_string();
    for own_namespace in [false, true] {
        let c = tests::oci::Container::new(&rt, "nethost", &["/bin/sh", "-c", &script]);
        if !own_namespace {
            c.edit(|cfg| {
                let ns = cfg["linux"]["namespaces"].as_array_mut().unwrap();
                ns.retain(|n| n["type"] != "network");
            });
        }
        let out = c.run_to_end();
        let lines: Vec<&str> = out.lines().collect();
        let why = format!("own namespace: {own_namespace}: {out:?} {}", c.errors());
        assert_eq!(lines.len(), 3, "{why}");
        assert_eq!(lines[2], "end", "{why}");
        let ifaces: Vec<&str> = lines[0].split_whitespace().collect();
        if own_namespace {
            assert_eq!(ifaces, ["lo"], "{why}");
            assert_eq!(lines[1], "", "{why}");
        } else {
            assert!(
                ifaces.contains(&"lo") && ifaces.contains(&dev.as_str()),
                "{why}"
            );
            assert_eq!(lines[1], "/oci/oci", "{why}");
        }
    }
    let _ = server.kill();
    let _ = server.wait();
}
