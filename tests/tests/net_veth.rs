//! The sandbox on a real interface: `runsc do --netns` in a network
//! namespace the test makes, whose `eth0` is one end of a veth pair; the
//! other end is in a second namespace of the test (the "host side").
//! No traffic leaves these two namespaces.
//!
//! Each case compares with the same commands run natively in a fresh
//! pair of namespaces (what runc would give the container), and checks
//! that the host side of the taken-over interface lost its addresses.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tests::{run_command, runsc, RunResult};

/// A pair of network namespaces joined by a veth: `box` (eth0:
/// 10.N.0.2/24 and fd00:N::2/64, default route via .1) and `peer`
/// (10.N.0.1/24, fd00:N::1/64). Removed on drop.
struct Veth {
    boxed: String,
    peer: String,
    net: u32,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn sh(script: &str) -> RunResult {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", script]);
    run_command(c, Duration::from_secs(60)).0
}

fn must(script: &str) -> String {
    let r = sh(script);
    assert_eq!(r.code, 0, "`{script}` failed: {}{}", r.stdout, r.stderr);
    r.stdout
}

impl Veth {
    fn new() -> Veth {
        let n = 100 + (std::process::id() % 50) * 2 + NEXT.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}-{n}", std::process::id());
        let v = Veth {
            boxed: format!("rtb{tag}"),
            peer: format!("rtp{tag}"),
            net: n % 250,
        };
        let (b, p, n) = (&v.boxed, &v.peer, v.net);
        must(&format!(
            "ip netns add {b} && ip netns add {p} && \
             ip link add vp{n} netns {p} type veth peer name eth0 netns {b} && \
             ip -n {p} addr add 10.{n}.0.1/24 dev vp{n} && \
             ip -n {p} addr add fd00:{n}::1/64 dev vp{n} nodad && \
             ip -n {p} link set vp{n} up && ip -n {p} link set lo up && \
             ip -n {b} addr add 10.{n}.0.2/24 dev eth0 && \
             ip -n {b} addr add fd00:{n}::2/64 dev eth0 nodad && \
             ip -n {b} link set eth0 up && ip -n {b} link set lo up && \
             ip -n {b} route add default via 10.{n}.0.1"
        ));
        v
    }

    fn box_path(&self) -> String {
        format!("/run/netns/{}", self.boxed)
    }

    /// `script` run by sh in the peer namespace.
    fn in_peer(&self, script: &str) -> RunResult {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.peer, "/bin/sh", "-c", script])
            .current_dir("/");
        run_command(c, Duration::from_secs(60)).0
    }

    /// A background process in the peer namespace.
    fn spawn_peer(&self, script: &str) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.peer, "/bin/sh", "-c", script])
            .current_dir("/")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// `script` run by sh in the box: natively (as under runc) or in a
    /// sandbox that took its interfaces over.
    fn in_box_cmd(&self, script: &str, sandboxed: bool) -> Command {
        self.in_box_cmd_with(script, sandboxed, &[])
    }

    /// [`Self::in_box_cmd`] with more arguments to `runsc do`.
    fn in_box_cmd_with(&self, script: &str, sandboxed: bool, extra: &[&str]) -> Command {
        let mut c = if sandboxed {
            let mut c = Command::new(runsc());
            if let Ok(p) = std::env::var("RUNSC_TEST_PLATFORM") {
                c.arg(format!("--platform={p}"));
            }
            c.args(["do", "--netns", &self.box_path()]).args(extra);
            c.args(["--", "/bin/sh", "-c", script]);
            c
        } else {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &self.boxed, "/bin/sh", "-c", script]);
            c
        };
        c.current_dir("/")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        c
    }

    fn in_box(&self, script: &str, sandboxed: bool) -> RunResult {
        run_command(self.in_box_cmd(script, sandboxed), Duration::from_secs(120)).0
    }

    fn spawn_box(&self, script: &str, sandboxed: bool) -> Child {
        self.in_box_cmd(script, sandboxed)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// The box's addresses on the host side, as `ip` lists them.
    fn host_side_addrs(&self) -> String {
        must(&format!(
            "ip -n {} -o addr show dev eth0 | awk '{{print $3, $4}}'",
            self.boxed
        ))
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // What still runs in them (a native server's workers) first.
        let _ = sh(&format!(
            "for n in {b} {p}; do ip netns pids $n 2>/dev/null | xargs -r kill -9; done; \
             ip netns del {b} 2>/dev/null; ip netns del {p} 2>/dev/null",
            b = self.boxed,
            p = self.peer
        ));
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `probe` succeeds in the peer namespace.
fn wait_peer(v: &Veth, probe: &str) {
    let start = Instant::now();
    while v.in_peer(probe).code != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "`{probe}` never succeeded"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn need(p: &str, pkg: &str) {
    assert!(
        Path::new(p).exists(),
        "{p} is missing: install Debian's {pkg} (.ci/run does)"
    );
}

/// The same script natively and in the sandbox, each in a fresh pair of
/// namespaces with a server of the peer's started first; same output.
fn compare_client(peer_server: &str, probe: &str, script: &str) -> String {
    let mut outs = Vec::new();
    for sandboxed in [false, true] {
        let v = Veth::new();
        let _server = Killed(v.spawn_peer(peer_server));
        wait_peer(&v, probe);
        let r = v.in_box(script, sandboxed);
        assert_eq!(
            r.code, 0,
            "sandboxed={sandboxed}: {}\nstderr: {}",
            r.stdout, r.stderr
        );
        if sandboxed {
            assert_eq!(
                v.host_side_addrs().trim(),
                "",
                "the host side of the taken-over eth0 kept addresses"
            );
        }
        outs.push(r.stdout);
    }
    assert_eq!(outs[0], outs[1], "native and sandbox differ");
    outs.pop().unwrap()
}

#[test]
fn interfaces_and_routes_as_the_namespace_had_them() {
    need("/usr/sbin/ip", "iproute2");
    let script = "ip -o -4 addr show | awk '{print $2, $4}'; \
                  ip -o -6 addr show scope global | awk '{print $2, $4}'; \
                  ip -4 route show | sed 's/ proto kernel//; s/  */ /g'; \
                  ip -o link show eth0 | grep -o 'mtu [0-9]*'";
    let mut outs = Vec::new();
    for sandboxed in [false, true] {
        let v = Veth::new();
        let r = v.in_box(script, sandboxed);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        // Network numbers differ per pair: compare with N replaced.
        outs.push(
            r.stdout
                .replace(&format!("10.{}.", v.net), "10.N.")
                .replace(&format!("fd00:{}::", v.net), "fd00:N::"),
        );
    }
    assert_eq!(outs[0], outs[1], "native and sandbox differ");
    assert!(outs[1].contains("eth0 10.N.0.2/24"), "{}", outs[1]);
    assert!(
        outs[1].contains("default via 10.N.0.1 dev eth0"),
        "{}",
        outs[1]
    );
}

#[test]
fn curl_fetches_from_the_host_side_v4_and_v6() {
    need("/usr/bin/curl", "curl");
    need("/usr/bin/python3", "python3");
    let out = compare_client(
        "exec python3 -m http.server 8080 --bind :: --directory /usr/share/common-licenses",
        "curl -s -o /dev/null http://127.0.0.1:8080/",
        "for u in http://$(ip -o -4 addr show dev eth0 | awk '{print $4}' | sed 's/\\.2\\/24/.1/'):8080/GPL-3 \
                  \"http://[$(ip -o -6 addr show dev eth0 scope global | awk '{print $4}' | sed 's/::2\\/64/::1/')]:8080/GPL-3\"; do \
           curl -s -S $u | sha256sum; done; \
         curl -s -S -o /dev/null -w '%{http_code}\\n' -m 5 \
              http://$(ip -o -4 addr show dev eth0 | awk '{print $4}' | sed 's/\\.2\\/24/.1/'):9/ \
              || echo refused $?",
    );
    let want = must("sha256sum < /usr/share/common-licenses/GPL-3");
    assert_eq!(out.matches(want.trim()).count(), 2, "{out}");
}

#[test]
fn servers_inside_answer_the_host_side() {
    need("/usr/bin/curl", "curl");
    need("/usr/bin/python3", "python3");
    let dir = tests::ScratchDir::new("veth-www");
    let data: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(dir.0.join("blob"), &data).unwrap();
    let want = must(&format!("sha256sum < {}/blob", dir.0.display()));
    let mut outs = Vec::new();
    for sandboxed in [false, true] {
        let v = Veth::new();
        let n = v.net;
        // The directory is bound into the sandbox (the test's own
        // directories may be where the sandbox's /tmp hides them).
        let vol = format!("{}:/srv/www:ro", dir.0.display());
        let serve = if sandboxed {
            "/srv/www".to_string()
        } else {
            dir.0.display().to_string()
        };
        let script = format!("exec python3 -m http.server 8081 --bind :: --directory {serve}");
        let _server = Killed(
            v.in_box_cmd_with(&script, sandboxed, &["-v", &vol])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_peer(&v, &format!("curl -s -o /dev/null http://10.{n}.0.2:8081/"));
        let r = v.in_peer(&format!(
            "curl -s -S http://10.{n}.0.2:8081/blob | sha256sum; \
             curl -s -S 'http://[fd00:{n}::2]:8081/blob' | sha256sum; \
             curl -s -o /dev/null -w '%{{http_code}}\\n' http://10.{n}.0.2:8081/missing; \
             curl -s -S -m 5 http://10.{n}.0.2:9/ 2>&1 | sed 's/after [0-9]* ms/after N ms/'"
        ));
        if sandboxed {
            assert_eq!(v.host_side_addrs().trim(), "");
        }
        outs.push(r.stdout.replace(&format!("10.{n}."), "10.N."));
    }
    assert_eq!(outs[0], outs[1], "native and sandbox differ");
    assert_eq!(outs[1].matches(want.trim()).count(), 2, "{}", outs[1]);
    assert!(outs[1].contains("curl: (7)"), "{}", outs[1]);
}

#[test]
fn nginx_serves_a_file_to_the_host_side() {
    need("/usr/sbin/nginx", "nginx-light");
    let dir = tests::ScratchDir::new("veth-nginx");
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.0.join("big.bin"), &data).unwrap();
    let want = must(&format!("sha256sum < {}/big.bin", dir.0.display()));
    // Debian's nginx with its default configuration, its document root
    // bound to the test's directory, the logs in the sandbox's /tmp.
    let server = "exec nginx -g 'daemon off; error_log stderr;'".to_string();
    let mut outs = Vec::new();
    for sandboxed in [false, true] {
        let v = Veth::new();
        let n = v.net;
        let _server = if sandboxed {
            let mut c = Command::new(runsc());
            if let Ok(p) = std::env::var("RUNSC_TEST_PLATFORM") {
                c.arg(format!("--platform={p}"));
            }
            c.args([
                "do",
                "--netns",
                &v.box_path(),
                "-v",
                &format!("{}:/var/www/html:ro", dir.0.display()),
                "--",
                "/bin/sh",
                "-c",
                &server,
            ]);
            c.current_dir("/")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            Killed(c.spawn().unwrap())
        } else {
            // Natively: the same root in a private mount namespace.
            let script = format!("mount --bind {} /var/www/html && {server}", dir.0.display());
            let mut c = Command::new("ip");
            c.args([
                "netns", "exec", &v.boxed, "unshare", "-m", "/bin/sh", "-c", &script,
            ]);
            c.current_dir("/")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            Killed(c.spawn().unwrap())
        };
        wait_peer(
            &v,
            &format!("curl -s -o /dev/null http://10.{n}.0.2/big.bin"),
        );
        let r = v.in_peer(&format!(
            "curl -s -S http://10.{n}.0.2/big.bin | sha256sum; \
             curl -s -o /dev/null -w '%{{http_code}} %{{size_download}}\\n' http://10.{n}.0.2/big.bin; \
             curl -s -o /dev/null -w '%{{http_code}}\\n' http://10.{n}.0.2/nothing-here"
        ));
        outs.push(r.stdout);
    }
    assert_eq!(outs[0], outs[1], "native and sandbox differ");
    assert!(outs[1].contains(want.trim()), "{}", outs[1]);
    assert!(outs[1].contains("200 1048576"), "{}", outs[1]);
}

#[test]
fn redis_answers_inside_and_from_the_host_side() {
    need("/usr/bin/redis-server", "redis-server");
    let mut outs = Vec::new();
    for sandboxed in [false, true] {
        let v = Veth::new();
        let n = v.net;
        let _server = Killed(v.spawn_box(
            "exec redis-server --port 6379 --bind '* -::*' --save '' --appendonly no \
             --protected-mode no --dir /tmp",
            sandboxed,
        ));
        wait_peer(&v, &format!("redis-cli -h 10.{n}.0.2 ping | grep -q PONG"));
        let peer = v.in_peer(&format!(
            "redis-cli -h 10.{n}.0.2 set k hello; redis-cli -h 10.{n}.0.2 get k; \
             redis-cli -h fd00:{n}::2 incr c; redis-cli -h 10.{n}.0.2 incr c"
        ));
        outs.push(peer.stdout);
    }
    assert_eq!(outs[0], outs[1], "native and sandbox differ");
    assert_eq!(outs[1], "OK\nhello\n1\n2\n");
}

#[test]
fn redis_cli_inside_the_server_sandbox() {
    need("/usr/bin/redis-server", "redis-server");
    let script = "redis-server --port 6390 --save '' --appendonly no --dir /tmp --protected-mode no \
                  >/dev/null & \
                  i=0; until redis-cli -p 6390 ping >/dev/null 2>&1; do i=$((i+1)); \
                  [ $i -gt 100 ] && exit 1; sleep 0.1; done; \
                  redis-cli -p 6390 set a 1; redis-cli -p 6390 incrby a 41; \
                  redis-cli -h $(ip -o -4 addr show dev eth0 | awk '{print $4}' | cut -d/ -f1) -p 6390 get a; \
                  redis-cli -p 6390 shutdown nosave >/dev/null 2>&1; wait; echo done";
    let mut outs = Vec::new();
    for sandboxed in [false, true] {
        let v = Veth::new();
        let r = v.in_box(script, sandboxed);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        outs.push(r.stdout);
    }
    assert_eq!(outs[0], outs[1], "native and sandbox differ");
    assert_eq!(outs[1], "OK\n42\n42\ndone\n");
}

/// Debian's PostgreSQL programs (/usr/lib/postgresql/VERSION/bin).
fn postgres_bin() -> std::path::PathBuf {
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|d| d.flatten().map(|e| e.path()).max());
    match newest {
        Some(p) if p.join("bin/initdb").exists() => p.join("bin"),
        _ => panic!("PostgreSQL is missing: install Debian's postgresql (.ci/run does)"),
    }
}

#[test]
fn postgres_initdb_start_and_psql_inside_and_from_the_host_side() {
    let bin = postgres_bin();
    let bin = bin.display();
    // As the postgres user (the server refuses root): initdb, a server
    // listening on every address that trusts the test's subnets, psql
    // over the unix socket and over TCP inside; "ready" once the server
    // is up, then the box waits to be killed.
    let script = format!(
        "d=$(mktemp -d /tmp/pgXXXX) && chown postgres $d && \
         su postgres -s /bin/sh -c \"{bin}/initdb -D $d/data -A trust >$d/initdb.log 2>&1 && \
           printf 'host all all 0.0.0.0/0 trust\\nhost all all ::/0 trust\\n' >> $d/data/pg_hba.conf && \
           {bin}/pg_ctl -D $d/data -l $d/log -o '-k $d -c listen_addresses=*' -w start >/dev/null\" \
         || {{ cat $d/initdb.log $d/log; exit 1; }}; \
         psql -U postgres -h $d -At -c 'select 1'; \
         psql -U postgres -h 127.0.0.1 -At -c 'create table t(a int)' \
           -c 'insert into t select generate_series(1, 1000)' -c 'select count(*) from t'; \
         echo ready; sleep 120"
    );
    let mut outs = Vec::new();
    for sandboxed in [false, true] {
        let v = Veth::new();
        let n = v.net;
        let mut child = v
            .in_box_cmd(&script, sandboxed)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let _server = Killed(child);
        // Lines as they come, until "ready" (or the end: a failure).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let done = l == "ready";
                let _ = tx.send(l);
                if done {
                    break;
                }
            }
        });
        let mut inside = String::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(l) if l == "ready" => break,
                Ok(l) => {
                    inside.push_str(&l);
                    inside.push('\n');
                }
                Err(_) => {
                    let mut err = String::new();
                    let _ = std::io::Read::read_to_string(&mut { stderr }, &mut err);
                    panic!("sandboxed={sandboxed}: the server never got ready: {inside}{err}");
                }
            }
        }
        let peer = v.in_peer(&format!(
            "psql -U postgres -h 10.{n}.0.2 -At -c 'select count(*), sum(a) from t' && \
             psql -U postgres -h fd00:{n}::2 -At -c 'insert into t values (7)' -c 'select count(*) from t' \
             && psql -U postgres -h 10.{n}.0.2 -At -c \"select inet_server_addr() = '10.{n}.0.2', inet_client_addr() = '10.{n}.0.1'\""
        ));
        assert_eq!(peer.code, 0, "sandboxed={sandboxed}: {}", peer.stderr);
        outs.push(format!("{inside}--\n{}", peer.stdout));
    }
    assert_eq!(outs[0], outs[1], "native and sandbox differ");
    assert!(outs[1].contains("1000|500500"), "{}", outs[1]);
}

#[test]
fn unreachable_hosts_and_refused_ports_report_as_linux_does() {
    // A neighbour that never answers (v4: ARP, v6: neighbour discovery):
    // EHOSTUNREACH once resolution gives up; the peer's closed TCP port:
    // ECONNREFUSED (a reset); its closed UDP port: ECONNREFUSED on the
    // connected socket (its ICMP port unreachable).
    let script = |n: u32| {
        format!(
            "python3 -c '
import errno, socket, threading, time
out = {{}}
def tcp(key, fam, a):
    s = socket.socket(fam); s.settimeout(60)
    try:
        s.connect((a, 80)); out[key] = \"connected\"
    except OSError as e:
        out[key] = errno.errorcode.get(e.errno, str(e))
ts = [threading.Thread(target=tcp, args=a) for a in [
    (\"v4 absent\", socket.AF_INET, \"10.{n}.0.99\"), (\"v6 absent\", socket.AF_INET6, \"fd00:{n}::99\"),
    (\"v4 closed\", socket.AF_INET, \"10.{n}.0.1\"), (\"v6 closed\", socket.AF_INET6, \"fd00:{n}::1\")]]
for t in ts: t.start()
for t in ts: t.join()
for fam, a in [(socket.AF_INET, \"10.{n}.0.1\"), (socket.AF_INET6, \"fd00:{n}::1\")]:
    u = socket.socket(fam, socket.SOCK_DGRAM); u.connect((a, 9)); u.send(b\"x\"); time.sleep(0.5)
    try:
        u.recv(10, socket.MSG_DONTWAIT); out[a] = \"got\"
    except OSError as e:
        out[a] = errno.errorcode.get(e.errno, str(e))
for k in sorted(out): print(k.replace(\"{n}\", \"N\"), out[k])
'"
        )
    };
    let mut outs = Vec::new();
    for sandboxed in [false, true] {
        let v = Veth::new();
        let r = v.in_box(&script(v.net), sandboxed);
        assert_eq!(r.code, 0, "sandboxed={sandboxed}: {}{}", r.stdout, r.stderr);
        outs.push(r.stdout);
    }
    assert_eq!(outs[0], outs[1], "native and sandbox differ");
    assert!(outs[1].contains("v4 absent EHOSTUNREACH"), "{}", outs[1]);
    assert!(outs[1].contains("10.N.0.1 ECONNREFUSED"), "{}", outs[1]);
}

#[test]
fn node_http_server_under_ab_from_the_host_side() {
    need("/usr/bin/node", "nodejs");
    need("/usr/bin/ab", "apache2-utils");
    // `node -e` serving; ab from the other side, 1000 requests, 10 at a
    // time, each a new connection the server closes. Only the counts are
    // compared (the rates are the benchmarks' business).
    let js = "require(\"http\").createServer((q, s) => { s.setHeader(\"Connection\", \"close\"); \
              s.end(\"hello \" + q.url + \"\\n\"); }).listen(8080, \"0.0.0.0\")";
    let mut outs = Vec::new();
    for sandboxed in [false, true] {
        let v = Veth::new();
        let n = v.net;
        let _server = Killed(v.spawn_box(&format!("exec node -e '{js}'"), sandboxed));
        wait_peer(
            &v,
            &format!("curl -s -m 2 http://10.{n}.0.2:8080/x | grep -q 'hello /x'"),
        );
        let r = v.in_peer(&format!(
            "ab -q -s 60 -n 1000 -c 10 http://10.{n}.0.2:8080/ab > /tmp/ab-{n}.out && \
             grep -E '^(Complete requests|Failed requests|Non-2xx|Document Length)' /tmp/ab-{n}.out \
             | tr -s ' '; s=$?; rm -f /tmp/ab-{n}.out; exit $s"
        ));
        assert_eq!(
            r.code, 0,
            "sandboxed={sandboxed}: ab: {}{}",
            r.stdout, r.stderr
        );
        outs.push(r.stdout);
    }
    assert_eq!(outs[0], outs[1], "native and sandbox differ");
    assert!(outs[1].contains("Complete requests: 1000"), "{}", outs[1]);
    assert!(outs[1].contains("Failed requests: 0"), "{}", outs[1]);
}

#[test]
fn udp_datagrams_larger_than_the_mtu_both_ways() {
    // The peer's kernel fragments datagrams beyond the veth's 1500 bytes
    // (IPv4 and IPv6); the sandbox reassembles them, and fragments its
    // echo the same way. The server's two sockets share the port (an
    // AF_INET one and an IPv6-only one), each answering its family.
    let server = "exec python3 -c '
import select, socket
s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s4.bind((\"0.0.0.0\", 7100))
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); s6.bind((\"::\", 7100))
while True:
    for s in select.select([s4, s6], [], [])[0]:
        d, a = s.recvfrom(70000); s.sendto(s.family.name.encode() + b\" \" + d[::-1], a)
'";
    let client = |n: u32| {
        format!(
            "python3 -c '
import socket
for fam, a in [(socket.AF_INET, \"10.{n}.0.2\"), (socket.AF_INET6, \"fd00:{n}::2\")]:
    c = socket.socket(fam, socket.SOCK_DGRAM); c.settimeout(0.5)
    for i in range(120):
        c.sendto(b\"up?\", (a, 7100))
        try:
            c.recvfrom(100); break
        except socket.timeout:
            pass
    # Answers to probes that came late (neighbour discovery).
    c.settimeout(0.3)
    try:
        while True:
            c.recvfrom(100)
    except socket.timeout:
        pass
    c.settimeout(5)
    for n in [100, 1472, 1473, 4000, 20000, 65000]:
        d = bytes((i * 7) % 251 for i in range(n))
        c.sendto(d, (a, 7100)); r, _ = c.recvfrom(70000)
        who, back = r.split(b\" \", 1)
        print(fam.name, n, who.decode(), len(back), back == d[::-1])
'"
        )
    };
    let mut outs = Vec::new();
    for sandboxed in [false, true] {
        let v = Veth::new();
        let _server = Killed(v.spawn_box(server, sandboxed));
        let r = v.in_peer(&client(v.net));
        assert_eq!(r.code, 0, "sandboxed={sandboxed}: {}{}", r.stdout, r.stderr);
        outs.push(r.stdout);
    }
    assert_eq!(outs[0], outs[1], "native and sandbox differ");
    assert!(
        outs[1].contains("AF_INET 65000 AF_INET 65000 True"),
        "{}",
        outs[1]
    );
    assert!(
        outs[1].contains("AF_INET6 65000 AF_INET6 65000 True"),
        "{}",
        outs[1]
    );
}
