#!/bin/bash
# Network benchmarks over a veth pair between two namespaces made here (no
# traffic leaves them): a server in the "box" namespace, its client in
# the "peer" namespace. The server runs natively in the box namespace
# (what runc gives a container), in our sandbox (`runsc do --netns`) and in
# gVisor's runsc (Debian's, ptrace platform, netstack, an OCI bundle of
# the host's root naming the box namespace). Not a test: it prints
# figures.
#
#   bench/net_veth.sh    (as root; run `cargo build --release` first;
#                         needs iperf3, nginx, ab, redis-server)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ours=$here/../target/release/runsc
gvisor=/usr/bin/runsc
work=$(mktemp -d /var/tmp/net-bench.XXXXXX)
box=nbbox$$
peer=nbpeer$$

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

# A bundle of the host's root (read-only) in the box namespace, for gVisor.
bundle() {
    mkdir -p "$work/b"
    python3 - "$work/b/config.json" "/run/netns/$box" "$@" <<'EOF'
import json, sys, subprocess
path, ns, args = sys.argv[1], sys.argv[2], sys.argv[3:]
subprocess.run(["runc", "spec", "--bundle", path.rsplit("/", 1)[0]], check=True)
c = json.load(open(path))
c["root"] = {"path": "/", "readonly": True}
c["process"]["terminal"] = False
c["process"]["args"] = args
c["process"]["cwd"] = "/"
c["mounts"] = [m for m in c["mounts"] if m["destination"] in ("/proc", "/dev", "/sys")]
c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
c["mounts"].append({"destination": "/run", "type": "tmpfs", "source": "tmpfs"})
c["mounts"].append({"destination": "/var/log/nginx", "type": "tmpfs", "source": "tmpfs"})
c["mounts"].append({"destination": "/var/lib/nginx", "type": "tmpfs", "source": "tmpfs"})
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
            bundle "$@"
            "$gvisor" --platform=ptrace --network=sandbox --root "$work/state" \
                run --bundle "$work/b" nb$$ >/dev/null 2>&1 &
            ;;
    esac
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
for rt in native ours gvisor; do
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
    # nginx, Debian's default configuration, ab -n 20000 -c 50.
    setup
    serve $rt nginx -g 'daemon off; error_log stderr;'
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
done

ratio() { python3 -c "import sys; a,b=sys.argv[1:]; print('%.2f' % (float(a)/float(b)))" "$1" "$2" 2>/dev/null || echo -; }
echo "| benchmark (server in the sandbox, client across the veth) | native | ours | gVisor (ptrace, netstack) | ours / native | gVisor / native |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for k in "up:iperf3 to the server, Gbit/s" "down:iperf3 from the server (-R), Gbit/s" \
    "ab:nginx, ab -n 20000 -c 50, requests/s" "set:redis-benchmark SET, requests/s" \
    "get:redis-benchmark GET, requests/s"; do
    key=${k%%:*} name=${k#*:}
    n=${res[native,$key]:-} o=${res[ours,$key]:-} g=${res[gvisor,$key]:-}
    echo "| $name | ${n:--} | ${o:--} | ${g:--} | $(ratio "$o" "$n") | $(ratio "$g" "$n") |"
done
