#!/bin/bash
# Benchmarks, as ratios against native and against gVisor's runsc (from
# Debian, --platform=ptrace) measured in the same run. Not a test: the
# numbers depend on the machine. Usage: bench/run.sh [ROUNDS [PATTERN]]
# (the median of ROUNDS runs, 5 by default; only the rows whose name
# matches the extended regular expression PATTERN, all by default)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
only=${2:-}
cargo build --release -q -p runsc-cli
mkdir -p target/bench
cc -O2 -static -o target/bench/getppid bench/getppid.c
cc -O2 -static -o target/bench/fs bench/fs.c
cc -O2 -o target/bench/ptrace_floor bench/ptrace_floor.c
for prog in fork_wait fork_exec true_static pipe_pingpong clock_gettime unix_pingpong unix_throughput tcp_pingpong tcp_throughput epoll_wait pty_echo sem_pingpong mq_pingpong; do
    cc -O2 -static -o "target/bench/$prog" "bench/$prog.c"
done
for prog in futex_pingpong mutex_condvar eventfd_pingpong; do
    cc -O2 -static -pthread -o "target/bench/$prog" "bench/$prog.c"
done
sandboxed=(getppid fs fork_wait fork_exec true_static pipe_pingpong clock_gettime futex_pingpong mutex_condvar unix_pingpong unix_throughput tcp_pingpong tcp_throughput epoll_wait eventfd_pingpong pty_echo sem_pingpong mq_pingpong)
bench_dir=$(pwd)/target/bench
# Native runs hide /tmp behind a private tmpfs: keep the programs elsewhere.
case "$bench_dir" in
    /tmp/*)
        copy=/var/tmp/runsc-bench
        mkdir -p "$copy" && (cd target/bench && cp "${sandboxed[@]}" "$copy/")
        bench_dir=$copy
        ;;
esac
ours=target/release/runsc
gvisor=/usr/bin/runsc
if [ ! -x "$gvisor" ]; then
    echo "gVisor's runsc is not installed (apt-get install runsc); its column stays empty" >&2
fi

source bench/lib.sh

echo "| benchmark | native ns | runsc (ours, ptrace) ns | runsc (ours, systrap) ns | gVisor runsc (ptrace) ns | ours / native | ours systrap / native | gVisor / native | our overhead / gVisor's |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"

row() {
    local name=$1 n_native=$2 n_sandbox=$3
    shift 3
    if [ -n "$only" ] && ! [[ $name =~ $only ]]; then
        return 0
    fi
    local native mine systrap theirs=""
    native=$(best native_tmpfs "$bench_dir/$1" "${@:2}" "$n_native")
    mine=$(best timeout "$limit" "$ours" --platform=ptrace do "$bench_dir/$1" "${@:2}" "$n_sandbox")
    systrap=$(best timeout "$limit" "$ours" --platform=systrap do "$bench_dir/$1" "${@:2}" "$n_sandbox")
    if [ -x "$gvisor" ]; then
        theirs=$(best timeout "$limit" "$gvisor" --platform=ptrace --network=none do "$bench_dir/$1" "${@:2}" "$n_sandbox")
    fi
    echo "| $name | $native | $mine | $systrap | ${theirs:--} | $(ratio "$mine" "$native") | $(ratio "$systrap" "$native") | $(ratio "$theirs" "$native") | $(overhead "$mine" "$theirs" "$native") |"
}

row "getppid round trip" 2000000 100000 getppid
row "open + close" 200000 20000 fs open
row "stat" 200000 20000 fs stat
row "64 KiB write/read, 64 MiB file" 1 1 fs rw
row "getdents, 10,000 entries" 200 20 fs getdents
row "fork + _exit + wait" 5000 200 fork_wait
row "fork + execve (static, itself) + wait" 1000 50 fork_exec self
row "pipe ping-pong, 2 processes (round trip)" 100000 5000 pipe_pingpong
row "futex ping-pong, 2 threads (round trip)" 100000 5000 futex_pingpong
row "mutex + condvar handoff, 16 threads" 100000 5000 mutex_condvar
row "clock_gettime(CLOCK_MONOTONIC)" 10000000 10000000 clock_gettime
row "unix stream ping-pong, 2 processes (round trip)" 100000 5000 unix_pingpong
row "unix stream throughput, 1 GiB in 64 KiB writes (per 64 KiB)" 1024 1024 unix_throughput
row "TCP loopback ping-pong, 2 processes, TCP_NODELAY (round trip)" 100000 5000 tcp_pingpong
row "TCP loopback throughput, 256 MiB in 64 KiB writes (per 64 KiB)" 256 256 tcp_throughput
row "epoll_wait, 1,000 idle pipes + 1 written each round" 100000 5000 epoll_wait
row "pty echo round trip (master write, echo read)" 100000 5000 pty_echo
row "eventfd ping-pong, 2 threads (round trip)" 100000 5000 eventfd_pingpong
row "System V semaphore ping-pong, 2 processes (round trip)" 100000 5000 sem_pingpong
row "POSIX message queue ping-pong, 2 processes (round trip)" 100000 5000 mq_pingpong

floor=$(best target/bench/ptrace_floor 100000)
floor_pinned=$(best target/bench/ptrace_floor 100000 pin)
echo
echo "A minimal C tracer's round trip here (bench/ptrace_floor.c): $floor ns as the scheduler places it, $floor_pinned ns with tracer and tracee on one CPU."
