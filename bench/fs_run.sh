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
# Real work (bench/walltime.c around the whole command): wall-clock time
# of one run, sandbox start-up included, in the overlay root.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
cargo build --release -q -p runsc-cli
mkdir -p target/bench
cc -O2 -static -o target/bench/fs bench/fs.c
cc -O2 -o target/bench/walltime bench/walltime.c
bench_dir=$(pwd)/target/bench
# Native runs hide /tmp behind a private tmpfs: keep the files elsewhere.
case "$bench_dir" in
    /tmp/*)
        copy=/var/tmp/runsc-bench
        mkdir -p "$copy" && cp target/bench/fs "$copy/"
        bench_dir=$copy
        ;;
esac
walltime=$(pwd)/target/bench/walltime
ours=target/release/runsc
gvisor=/usr/bin/runsc
if [ ! -x "$gvisor" ]; then
    echo "gVisor's runsc is not installed (apt-get install runsc); its column stays empty" >&2
fi

# The data, made before the run in a host directory every runtime sees:
# a small file for open and stat, a 64 MiB file for reads, a C file for gcc.
data=$bench_dir/fsdata
mkdir -p "$data"
echo data >"$data/f"
if [ "$(stat -c %s "$data/big" 2>/dev/null || echo 0)" != $((64 << 20)) ]; then
    dd if=/dev/urandom of="$data/big" bs=1M count=64 status=none
fi
cat >"$data/small.c" <<'C'
#include <stdio.h>
#include <string.h>

struct point { int x, y; };

static int manhattan(struct point a, struct point b) {
    return (a.x > b.x ? a.x - b.x : b.x - a.x) + (a.y > b.y ? a.y - b.y : b.y - a.y);
}

int main(int argc, char **argv) {
    struct point p = { argc, (int)strlen(argv[0]) }, q = { 3, 4 };
    printf("%d\n", manhattan(p, q));
    return 0;
}
C
# sha256sum over the regular files of /usr/bin (a directory there fails it).
bins=()
for f in /usr/bin/*; do
    if [ -f "$f" ] && [ -r "$f" ]; then bins+=("$f"); fi
done

source bench/lib.sh
# nanoseconds as milliseconds
ms() {
    if num "$1"; then
        awk -v a="$1" 'BEGIN { printf "%.1f", a / 1e6 }'
    else
        printf -- "-"
    fi
}

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

echo
echo "| real work (wall clock, start-up included) | native ms | runsc (ours, ptrace) ms | gVisor runsc (ptrace) ms | ours / native | gVisor / native | our overhead / gVisor's |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"

# work_row NAME PROG [ARGS]: one run of the command, timed from outside.
work_row() {
    local name=$1
    shift
    local native mine theirs=""
    native=$(best native_tmpfs "$walltime" "$@")
    mine=$(best timeout "$limit" "$walltime" "$ours" --platform=ptrace do "$@")
    if [ -x "$gvisor" ]; then
        theirs=$(best timeout "$limit" "$walltime" "${g[@]}" "$@")
    fi
    echo "| $name | $(ms "$native") | $(ms "$mine") | $(ms "${theirs:--}") | $(ratio "$mine" "$native") | $(ratio "$theirs" "$native") | $(overhead "$mine" "$theirs" "$native") |"
}

work_row '`tar cf /dev/null /usr/share/doc /usr/include`' /usr/bin/tar cf /dev/null /usr/share/doc /usr/include
work_row "\`find /usr -name '*.h'\`" /usr/bin/find /usr -name '*.h'
work_row '`sha256sum /usr/bin/*`' /usr/bin/sha256sum "${bins[@]}"
work_row '`python3 -c pass`' /usr/bin/python3 -c pass
work_row '`gcc -O2 -c` of a small C file' /usr/bin/gcc -O2 -c "$data/small.c" -o /dev/null
