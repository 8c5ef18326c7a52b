#!/bin/bash
# Network benchmarks over a veth pair between two namespaces made here (no
# traffic leaves them): a server in the "box" namespace, its client in
# the "peer" namespace. The server runs natively in the box namespace
# (what runc gives a container), in our sandbox (`runsc do --netns`) and in
# gVisor's runsc (Debian's, ptrace platform, netstack, an OCI bundle of
# the host's root naming the box namespace). Rows: iperf3 both ways,
# nginx under ab, redis-benchmark, and bench/net_peer.c's connection rate
# and 1-byte ping-pong. Not a test: it prints figures.
#
#   bench/net_veth.sh [RUNTIME...]   (as root; run `cargo build --release`
#                         first; needs iperf3, nginx, ab, redis-server, cc;
#                         runtimes: native ours gvisor, all by default)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ours=$here/../target/release/runsc
gvisor=/usr/bin/runsc
work=$(mktemp -d /var/tmp/net-bench.XXXXXX)
box=nbbox$$
peer=nbpeer$$
peer_prog=$work/net_peer
cc -O2 -o "$peer_prog" "$here/net_peer.c" || exit 1
# Debian's nginx configuration corks responses (sendfile with tcp_nopush,
# TCP_CORK); under this gVisor a response that nginx follows by a close
# then never reaches the client (every ab request, HTTP/1.0, hangs;
# keep-alive ones do not; sendfile off cures it too). Every runtime gets
# the same configuration with the cork off.
sed 's/^\(\s*tcp_nopush\) on;/\1 off;/' /etc/nginx/nginx.conf >"$work/nginx.conf"

setup() {
    ip netns del $box 2>/dev/null; ip netns del $peer 2>/dev/null
    ip netns add $box && ip netns add $peer
    ip link add vnb$$ netns $peer type veth peer name eth0 netns $box
    ip -n $peer addr add 10.99.0.1/24 dev vnb$$ && ip -n $peer link set vnb$$ up
    ip -n $box addr add 10.99.0.2/24 dev eth0 && ip -n $box link set eth0 up
    ip -n $box link set lo up && ip -n $peer link set lo up
}

teardown() {
    for n in $box $peer; do ip netns pids $n 2>/dev/null | xargs -r kill -9; done
    sleep 0.2
    ip netns del $box 2>/dev/null; ip netns del $peer 2>/dev/null
}
trap 'teardown; rm -rf "$work"' EXIT

# A bundle of the host's root (read-only) in the box namespace, for gVisor:
# tmpfs where nginx writes, and the capabilities of a root server (nginx
# drops to www-data).
bundle() {
    mkdir -p "$work/b"
    rm -f "$work/b/config.json"
    runc spec --bundle "$work/b" || return 1
    python3 - "$work/b/config.json" "/run/netns/$box" "$@" <<'EOF'
import json, sys
path, ns, args = sys.argv[1], sys.argv[2], sys.argv[3:]
c = json.load(open(path))
c["root"] = {"path": "/", "readonly": True}
p = c["process"]
p["terminal"] = False
p["args"] = args
p["cwd"] = "/"
caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE"]
p["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
p["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 65536, "soft": 65536}]
c["mounts"] = [m for m in c["mounts"] if m["destination"] in ("/proc", "/dev", "/sys")]
for d in ("/tmp", "/run", "/var/log/nginx", "/var/lib/nginx"):
    c["mounts"].append({"destination": d, "type": "tmpfs", "source": "tmpfs"})
for n in c["linux"]["namespaces"]:
    if n["type"] == "network":
        n["path"] = ns
json.dump(c, open(path, "w"))
EOF
}

# Starts "$@" as the server under runtime $1 (native, ours, gvisor).
serve() {
    local rt=$1
    shift
    case $rt in
        native) ip netns exec $box "$@" >/dev/null 2>&1 & ;;
        ours) "$ours" do --netns /run/netns/$box -- "$@" >/dev/null 2>&1 & ;;
        gvisor)
            bundle "$@" || return 1
            # This gVisor tells the root network namespace from others by
            # the presence of /proc/sys/net/core/rmem_default, which newer
            # kernels give every namespace, and then refuses the box's. In
            # a mount namespace of its own /proc/sys/net is hidden from it
            # (the sandbox runs without it: netstack is its own).
            unshare -m sh -c 'mount -t tmpfs -o ro tmpfs /proc/sys/net && exec "$@"' sh \
                "$gvisor" --platform=ptrace --network=sandbox --root "$work/state" \
                run --bundle "$work/b" nb$$ >/dev/null 2>&1 &
            ;;
    esac
    # killed by teardown, not waited for: no job notice
    disown $! 2>/dev/null
}

stop() {
    "$gvisor" --root "$work/state" delete --force nb$$ >/dev/null 2>&1
    teardown
}

wait_port() {
    for _ in $(seq 100); do
        ip netns exec $peer bash -c "echo > /dev/tcp/10.99.0.2/$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

in_peer() { ip netns exec $peer "$@"; }

declare -A res
for rt in ${*:-native ours gvisor}; do
    [ $rt = gvisor ] && [ ! -x "$gvisor" ] && continue
    # iperf3, 5 s each way.
    setup
    serve $rt iperf3 -s -p 5201
    if wait_port 5201; then
        res[$rt,up]=$(in_peer iperf3 -c 10.99.0.2 -p 5201 -t 5 -J 2>/dev/null |
            python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))' 2>/dev/null)
        res[$rt,down]=$(in_peer iperf3 -c 10.99.0.2 -p 5201 -t 5 -R -J 2>/dev/null |
            python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))' 2>/dev/null)
    fi
    stop
    # nginx, Debian's configuration less tcp_nopush, ab -n 20000 -c 50.
    setup
    serve $rt nginx -c "$work/nginx.conf" -g 'daemon off; error_log stderr;'
    if wait_port 80; then
        res[$rt,ab]=$(in_peer ab -q -n 20000 -c 50 http://10.99.0.2/index.nginx-debian.html 2>/dev/null |
            awk '/Requests per second/ {print $4}')
    fi
    stop
    # redis-benchmark -q -n 100000 (GET and SET).
    setup
    serve $rt redis-server --port 6379 --save '' --appendonly no --protected-mode no --dir /tmp
    if wait_port 6379; then
        out=$(in_peer redis-benchmark -h 10.99.0.2 -q -n 100000 -t set,get 2>/dev/null | tr '\r' '\n')
        res[$rt,set]=$(echo "$out" | awk -F'[: ]+' '/^SET/ {print $2}' | tail -1)
        res[$rt,get]=$(echo "$out" | awk -F'[: ]+' '/^GET/ {print $2}' | tail -1)
    fi
    stop
    # 5,000 connections one after another: connect, the server's accept
    # and close, the client's close.
    setup
    serve $rt "$peer_prog" serve-close 7001
    if wait_port 7001; then
        res[$rt,conn]=$(in_peer "$peer_prog" connect 10.99.0.2 7001 5000 2>/dev/null)
    fi
    stop
    # 1-byte ping-pong on one connection, TCP_NODELAY both ends.
    setup
    serve $rt "$peer_prog" serve-echo 7002
    if wait_port 7002; then
        res[$rt,pp]=$(in_peer "$peer_prog" pingpong 10.99.0.2 7002 20000 2>/dev/null)
    fi
    stop
done

ratio() { python3 -c "import sys; a,b=sys.argv[1:]; print('%.2f' % (float(a)/float(b)))" "$1" "$2" 2>/dev/null || echo -; }
# Our overhead against gVisor's, in time per unit of work: for a rate
# (higher is better) the time is its inverse; for a latency ("lat") the
# figure itself.
overhead() {
    python3 -c "
import sys
o, g, n = (float(x) for x in sys.argv[1:4])
if sys.argv[4] != 'lat':
    o, g, n = 1 / o, 1 / g, 1 / n
print('%.2f' % ((o - n) / (g - n)) if g > n else '-')" "$1" "$2" "$3" "$4" 2>/dev/null || echo -
}
echo "| benchmark (server in the sandbox, client across the veth) | native | ours | gVisor (ptrace, netstack) | ours / native | gVisor / native | our overhead / gVisor's |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for k in "up:rate:iperf3 to the server, Gbit/s" "down:rate:iperf3 from the server (-R), Gbit/s" \
    "ab:rate:nginx (tcp_nopush off), ab -n 20000 -c 50, requests/s" "set:rate:redis-benchmark SET, requests/s" \
    "get:rate:redis-benchmark GET, requests/s" \
    "conn:rate:TCP connect + accept + close, 5,000 in a row, connections/s" \
    "pp:lat:TCP 1-byte ping-pong, TCP_NODELAY, ns per round trip"; do
    key=${k%%:*} rest=${k#*:}
    kind=${rest%%:*} name=${rest#*:}
    n=${res[native,$key]:-} o=${res[ours,$key]:-} g=${res[gvisor,$key]:-}
    echo "| $name | ${n:--} | ${o:--} | ${g:--} | $(ratio "$o" "$n") | $(ratio "$g" "$n") | $(overhead "$o" "$g" "$n" "$kind") |"
done
