//! Real network programs inside one sandbox, over its loopback: Python's
//! `http.server` with a `urllib` client, Python's asyncio streams, a node
//! HTTP server and client, and `curl` against a Python server. Each runs
//! natively in a fresh network namespace (`unshare -n`, lo up) and in the
//! sandbox; the output must be the same.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::{command, diff, run_command, RunResult};

const SH: &str = "/bin/sh";
const PYTHON: &str = "/usr/bin/python3";
const NODE: &str = "/usr/bin/node";
const CURL: &str = "/usr/bin/curl";

fn need(p: &str, pkg: &str) {
    assert!(
        Path::new(p).exists(),
        "{p} is missing: install Debian's {pkg} (.ci/run does)"
    );
}

/// Runs `script` with sh natively in a new network namespace (its lo set
/// up first) and in the sandbox; both must print the same and exit 0.
fn compare_script(script: &str) -> RunResult {
    let native_script = format!("ip link set lo up && {script}");
    let mut native = Command::new("unshare");
    native
        .args(["-n", SH, "-c", &native_script])
        .current_dir("/");
    let (native, _) = run_command(native, Duration::from_secs(120));
    let mut sandbox = command(Path::new(SH), &["-c", script], true, &[]);
    sandbox.current_dir("/");
    let (sandbox, _) = run_command(sandbox, Duration::from_secs(120));
    assert_eq!(native.code, 0, "native run failed: {}", native.stderr);
    assert!(
        native.stdout == sandbox.stdout && native.code == sandbox.code,
        "native and sandbox differ\n{}exit: native {} sandbox {}\nsandbox stderr: {}",
        diff(&native.stdout, &sandbox.stdout),
        native.code,
        sandbox.code,
        sandbox.stderr
    );
    sandbox
}

#[test]
fn python_http_server_and_urllib() {
    need(PYTHON, "python3");
    let py = r#"
import http.server, threading, urllib.request, urllib.error
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (self.path * 1000).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        n = int(self.headers["Content-Length"])
        data = self.rfile.read(n)
        self.send_response(201)
        self.end_headers()
        self.wfile.write(str(sum(data)).encode())
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
port = srv.server_address[1]
threading.Thread(target=srv.serve_forever, daemon=True).start()
for path in ["/a", "/hello", "/x" * 50]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as r:
        b = r.read()
        print(r.status, len(b), b[:12])
req = urllib.request.Request(f"http://127.0.0.1:{port}/p", data=bytes(range(256)) * 4000)
with urllib.request.urlopen(req) as r:
    print(r.status, r.read())
try:
    urllib.request.urlopen("http://127.0.0.1:1/")
except urllib.error.URLError as e:
    print("refused:", type(e.reason).__name__)
srv.shutdown()
"#;
    let r = compare_script(&format!("{PYTHON} -c '{py}'"));
    assert!(r.stdout.contains("201 b'130560000'"), "{}", r.stdout);
    assert!(
        r.stdout.contains("refused: ConnectionRefusedError"),
        "{}",
        r.stdout
    );
}

#[test]
fn python_asyncio_echo() {
    need(PYTHON, "python3");
    let py = r#"
import asyncio, socket
async def handle(reader, writer):
    while data := await reader.read(65536):
        writer.write(data[::-1])
        await writer.drain()
    writer.close()
async def main():
    srv = await asyncio.start_server(handle, "::1", 0)
    port = srv.sockets[0].getsockname()[1]
    results = []
    async def client(i):
        r, w = await asyncio.open_connection("::1", port)
        msg = (f"client {i} " * 100).encode()
        w.write(msg)
        await w.drain()
        got = await r.readexactly(len(msg))
        w.close()
        return got == msg[::-1]
    oks = await asyncio.gather(*(client(i) for i in range(50)))
    print("ok", sum(oks), "of", len(oks))
    srv.close()
    await srv.wait_closed()
    u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u1.bind(("127.0.0.1", 0))
    u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u2.sendto(b"datagram", u1.getsockname())
    print(u1.recvfrom(100)[0])
asyncio.run(main())
"#;
    let r = compare_script(&format!("{PYTHON} -c '{py}'"));
    assert!(r.stdout.contains("ok 50 of 50"), "{}", r.stdout);
}

#[test]
fn node_http() {
    need(NODE, "nodejs");
    let js = r#"
const http = require("http");
const srv = http.createServer((req, res) => {
  let n = 0;
  req.on("data", (c) => (n += c.length));
  req.on("end", () => res.end(`${req.method} ${req.url} ${n}\n`));
});
srv.listen(0, "127.0.0.1", async () => {
  const port = srv.address().port;
  const get = (path, body) =>
    new Promise((ok) => {
      const r = http.request({ port, path, method: body ? "POST" : "GET", host: "127.0.0.1" }, (res) => {
        let s = "";
        res.on("data", (c) => (s += c));
        res.on("end", () => ok(res.statusCode + " " + s));
      });
      if (body) r.write(body);
      r.end();
    });
  for (const p of ["/", "/one", "/two"]) process.stdout.write(await get(p));
  process.stdout.write(await get("/big", "z".repeat(1 << 20)));
  srv.close();
});
"#;
    let r = compare_script(&format!("{NODE} -e '{js}'"));
    assert!(r.stdout.contains("200 POST /big 1048576"), "{}", r.stdout);
}

#[test]
fn curl_against_python_server() {
    need(PYTHON, "python3");
    need(CURL, "curl");
    // The server serves a directory of its own; curl fetches a file and
    // a missing one, then the server is stopped.
    let script = format!(
        "d=$(mktemp -d) && cd $d && seq 1 20000 > f.txt && \
         {{ {PYTHON} -m http.server 8765 --bind 127.0.0.1 >/dev/null 2>&1 & pid=$!; }} && \
         for i in $(seq 1 50); do {CURL} -s -o /dev/null http://127.0.0.1:8765/ && break; sleep 0.1; done; \
         {CURL} -s http://127.0.0.1:8765/f.txt | md5sum; \
         {CURL} -s -o /dev/null -w '%{{http_code}}\\n' http://127.0.0.1:8765/missing; \
         {CURL} -s -o /dev/null -w '%{{http_code}}\\n' http://127.0.0.1:1/; \
         kill $pid; wait $pid; true"
    );
    let r = compare_script(&script);
    assert!(r.stdout.contains("404"), "{}", r.stdout);
}
