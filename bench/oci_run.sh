#!/bin/bash
# OCI runtime benchmarks, every runtime in one run: `RT run` of a busybox
# `true` container (create + start + wait + delete, end to end), and the
# memory of an idle sandbox (a container sleeping), for our runsc, runc,
# crun and gVisor's runsc (ptrace platform). Not a test: it prints
# figures.
#
#   bench/oci_run.sh [ROUNDS]     (as root; builds nothing: run
#                                  `cargo build --release` first)
set -euo pipefail
rounds=${1:-20}
here=$(cd "$(dirname "$0")" && pwd)
ours=$here/../target/release/runsc
work=$(mktemp -d /var/tmp/oci-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# A busybox bundle.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$work/rootfs/proc" \
    "$work/rootfs/sys" "$work/rootfs/dev"
cp /bin/busybox "$work/rootfs/bin/busybox"
for a in true sleep sh; do ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
(cd "$work" && runc spec)
config() {
    python3 - "$work/config.json" "$@" <<'EOF'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = sys.argv[2:]
json.dump(c, open(p, "w"))
EOF
}

# crun refuses a cgroup v1 host whose hugetlb controller sits on the
# cgroup2 mount (see CLIENTS.md): it gets its own v1 mount when missing.
if [[ -d /sys/fs/cgroup/unified && ! -d /sys/fs/cgroup/hugetlb ]]; then
    mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb || true
fi

declare -A rt=(
    [ours]="$ours"
    [runc]="runc"
    [crun]="crun"
    [gvisor]="runsc --platform=ptrace --network=none"
)
order=(ours runc crun gvisor)

# ms per `run` of `true`, median of $rounds.
run_ms() {
    local cmd=$1 i s e vals=()
    for i in $(seq "$rounds"); do
        s=$(date +%s%N)
        if ! $cmd --root "$work/state" run --bundle "$work" "b$i" >/dev/null 2>&1; then
            echo "-"
            return
        fi
        e=$(date +%s%N)
        vals+=($(((e - s) / 1000)))
    done
    printf '%s\n' "${vals[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] / 1000 }'
}

# Resident and proportional memory (KiB) of every host process of an
# idle container: the runtime's processes that name the container.
idle_kib() {
    local cmd=$1 pids p rss=0 pss=0
    $cmd --root "$work/state" run --detach --bundle "$work" idle >/dev/null 2>&1 || {
        echo "- -"
        return
    }
    sleep 2
    # Every process whose ancestry leads to a process started for the
    # container: found as the processes in the container's session tree,
    # by the container's state pid and the processes around it.
    local init
    init=$($cmd --root "$work/state" state idle 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
    pids=$(ps -eo pid=,args= | awk -v w="$work" 'index($0, w) { print $1 }')
    pids="$pids $init $(pgrep -P "$init" || true)"
    for p in $(printf '%s\n' $pids | sort -un); do
        [[ -r /proc/$p/smaps_rollup ]] || continue
        [[ $p == $$ ]] && continue
        rss=$((rss + $(awk '/^Rss:/ { print $2 }' /proc/$p/smaps_rollup)))
        pss=$((pss + $(awk '/^Pss:/ { print $2 }' /proc/$p/smaps_rollup)))
    done
    $cmd --root "$work/state" delete --force idle >/dev/null 2>&1 || true
    echo "$rss $pss"
}

config true
declare -A ms
for r in "${order[@]}"; do ms[$r]=$(run_ms "${rt[$r]}"); done
config sleep 1000
declare -A mem
for r in "${order[@]}"; do mem[$r]=$(idle_kib "${rt[$r]}"); done

printf '%-8s %14s %16s %16s\n' runtime "run true (ms)" "idle RSS (KiB)" "idle PSS (KiB)"
for r in "${order[@]}"; do
    read -r rss pss <<<"${mem[$r]}"
    printf '%-8s %14s %16s %16s\n' "$r" "${ms[$r]}" "$rss" "$pss"
done
