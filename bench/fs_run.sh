#!/bin/bash
# File-system benchmarks, as ratios against native and against gVisor's
# runsc (from Debian, --platform=ptrace) measured in the same run. Not a
# test: the numbers depend on the machine. Usage: bench/fs_run.sh [ROUNDS]
# (the median of ROUNDS runs, 5 by default)
#
# Micro-benchmarks (bench/fs.c, timed inside the program) on files of the
# host, read two ways:
#   gofer   - a host directory served by the gofer directly: ours mounts it
#             with -v HOST:/data; gVisor's `do --force-overlay=false` serves
#             the host root through its gofer without an overlay.
#   overlay - the same files as part of the sandbox's root (the host root,
#             read-only under an in-memory overlay), for both runtimes.
# Real work (tar, find, sha256sum, python, gcc, a shell script) is
# bench/real_work.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
cargo build --release -q -p runsc-cli
mkdir -p target/bench
cc -O2 -static -o target/bench/fs bench/fs.c
bench_dir=$(pwd)/target/bench
# Native runs hide /tmp behind a private tmpfs: keep the files elsewhere.
case "$bench_dir" in
    /tmp/*)
        copy=/var/tmp/runsc-bench
        mkdir -p "$copy" && cp target/bench/fs "$copy/"
        bench_dir=$copy
        ;;
esac
ours=target/release/runsc
gvisor=/usr/bin/runsc
if [ ! -x "$gvisor" ]; then
    echo "gVisor's runsc is not installed (apt-get install runsc); its column stays empty" >&2
fi

# The data, made before the run in a host directory every runtime sees:
# a small file for open and stat, a 64 MiB file for reads.
data=$bench_dir/fsdata
mkdir -p "$data"
echo data >"$data/f"
if [ "$(stat -c %s "$data/big" 2>/dev/null || echo 0)" != $((64 << 20)) ]; then
    dd if=/dev/urandom of="$data/big" bs=1M count=64 status=none
fi
source bench/lib.sh
g=("$gvisor" --platform=ptrace --network=none do)

echo "| benchmark | native ns | runsc (ours, ptrace) ns | gVisor runsc (ptrace) ns | ours / native | gVisor / native | our overhead / gVisor's |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"

# fs_row NAME WHERE N_NATIVE N_SANDBOX MODE FILE: WHERE is gofer or overlay.
fs_row() {
    local name=$1 where=$2 n_native=$3 n_sandbox=$4 mode=$5 file=$6
    local native mine theirs=""
    native=$(best native_tmpfs "$bench_dir/fs" "$mode" "$n_native" "$data/$file")
    if [ "$where" = gofer ]; then
        mine=$(best timeout "$limit" "$ours" --platform=ptrace do -v "$data:/data" "$bench_dir/fs" "$mode" "$n_sandbox" "/data/$file")
        if [ -x "$gvisor" ]; then
            theirs=$(best timeout "$limit" "${g[@]}" --force-overlay=false "$bench_dir/fs" "$mode" "$n_sandbox" "$data/$file")
        fi
    else
        mine=$(best timeout "$limit" "$ours" --platform=ptrace do "$bench_dir/fs" "$mode" "$n_sandbox" "$data/$file")
        if [ -x "$gvisor" ]; then
            theirs=$(best timeout "$limit" "${g[@]}" "$bench_dir/fs" "$mode" "$n_sandbox" "$data/$file")
        fi
    fi
    echo "| $name ($where) | $native | $mine | ${theirs:--} | $(ratio "$mine" "$native") | $(ratio "$theirs" "$native") | $(overhead "$mine" "$theirs" "$native") |"
}

for where in gofer overlay; do
    fs_row "open + close" "$where" 200000 20000 open f
    fs_row "stat" "$where" 200000 20000 stat f
    fs_row "64 KiB sequential read, 64 MiB file" "$where" 8 2 read big
done
