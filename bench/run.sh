#!/bin/bash
# Benchmarks, as ratios against native and against gVisor's runsc (from
# Debian, --platform=ptrace) measured in the same run. Not a test: the
# numbers depend on the machine. Usage: bench/run.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
cargo build --release -q -p runsc-cli
mkdir -p target/bench
cc -O2 -static -o target/bench/getppid bench/getppid.c
ours=target/release/runsc
gvisor=/usr/bin/runsc
if [ ! -x "$gvisor" ]; then
    echo "gVisor's runsc is not installed (apt-get install runsc); its column stays empty" >&2
fi

# best of N rounds: the lowest ns/call
best() {
    local b=""
    for _ in $(seq "$rounds"); do
        v=$("$@" 2>/dev/null | tail -1)
        if [ -z "$b" ] || [ "$v" -lt "$b" ]; then b=$v; fi
    done
    echo "$b"
}

native=$(best target/bench/getppid 2000000)
mine=$(best "$ours" do target/bench/getppid 200000)
if [ -x "$gvisor" ]; then
    theirs=$(best "$gvisor" --platform=ptrace --network=none do target/bench/getppid 50000)
else
    theirs=""
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "") printf "%.1f", a / b; else printf "-" }'; }

echo "| benchmark | native ns | runsc (ours, ptrace) ns | gVisor runsc (ptrace) ns | ours / native | gVisor / native | gVisor / ours |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
echo "| getppid round trip | $native | $mine | ${theirs:--} | $(ratio "$mine" "$native") | $(ratio "$theirs" "$native") | $(ratio "$theirs" "$mine") |"
