#!/bin/bash
# Real work, wall clock of one whole run with sandbox start-up included
# (bench/walltime.c around the command), natively, under this runsc on
# both platforms (--platform=ptrace and --platform=systrap, the default)
# and under Debian's gVisor (runsc --platform=ptrace --network=none do),
# as ratios in one run. Not a test: the numbers depend on the machine.
# Usage: bench/real_work.sh [ROUNDS] (the median of ROUNDS runs, 5 by
# default). fork + execve + wait, timed inside the program, is a row of
# bench/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
cargo build --release -q -p runsc-cli
mkdir -p target/bench
cc -O2 -o target/bench/walltime bench/walltime.c
data=$(pwd)/target/bench/realdata
# Native runs hide /tmp behind a private tmpfs: keep the files elsewhere.
case "$data" in
    /tmp/*) data=/var/tmp/runsc-bench/realdata ;;
esac
mkdir -p "$data"
walltime=$(pwd)/target/bench/walltime
ours=target/release/runsc
gvisor=/usr/bin/runsc
if [ ! -x "$gvisor" ]; then
    echo "gVisor's runsc is not installed (apt-get install runsc); its column stays empty" >&2
fi

# A moderate C file for gcc: 40 small functions (loops, a struct, a
# switch, calls into libc) and a main that calls them, about 600 lines.
{
    echo '#include <stdio.h>'
    echo '#include <stdlib.h>'
    echo '#include <string.h>'
    echo 'struct acc { long sum; unsigned hash; char name[32]; };'
    for i in $(seq 40); do
        cat <<C
static long f$i(struct acc *a, const int *v, int n) {
    long s = 0;
    for (int i = 0; i < n; i++) {
        switch ((v[i] + $i) % 4) {
        case 0: s += v[i] * $i; break;
        case 1: s -= v[i] >> 1; break;
        case 2: a->hash = a->hash * 31u + (unsigned)v[i]; break;
        default: s ^= (long)v[i] << ($i % 7);
        }
    }
    snprintf(a->name, sizeof a->name, "f$i:%ld", s);
    a->sum += s + (long)strlen(a->name);
    return s;
}
C
    done
    echo 'int main(int argc, char **argv) {'
    echo '    int n = argc > 1 ? atoi(argv[1]) : 100, *v = calloc(n, sizeof *v);'
    echo '    struct acc a = {0};'
    echo '    for (int i = 0; i < n; i++) v[i] = i * 7 + 3;'
    for i in $(seq 40); do echo "    f$i(&a, v, n);"; done
    echo '    printf("%ld %u\n", a.sum, a.hash);'
    echo '    return 0;'
    echo '}'
} >"$data/moderate.c"
# A shell script: 1,000 [ ] tests, then 100 forks (a subshell each).
cat >"$data/tests_forks.sh" <<'SH'
n=0
for ((i = 0; i < 1000; i++)); do
    if [ "$i" -ge 0 ] && [ -n "$i" ]; then n=$((n + 1)); fi
done
for ((i = 0; i < 100; i++)); do
    (exit 0)
done
[ "$n" = 1000 ]
SH
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

echo "| real work (wall clock, start-up included) | native ms | runsc (ours, ptrace) ms | runsc (ours, systrap) ms | gVisor runsc (ptrace) ms | ours / native | ours systrap / native | gVisor / native | our overhead / gVisor's | ours systrap overhead / gVisor's |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"

# work_row NAME PROG [ARGS]: one run of the command, timed from outside.
work_row() {
    local name=$1
    shift
    local native mine systrap theirs=""
    # once, untimed: the page cache warm for every runtime alike
    "$@" >/dev/null 2>&1 || true
    native=$(best native_tmpfs "$walltime" "$@")
    mine=$(best timeout "$limit" "$walltime" "$ours" --platform=ptrace do "$@")
    systrap=$(best timeout "$limit" "$walltime" "$ours" --platform=systrap do "$@")
    if [ -x "$gvisor" ]; then
        theirs=$(best timeout "$limit" "$walltime" "$gvisor" --platform=ptrace --network=none do "$@")
    fi
    echo "| $name | $(ms "$native") | $(ms "$mine") | $(ms "$systrap") | $(ms "${theirs:--}") | $(ratio "$mine" "$native") | $(ratio "$systrap" "$native") | $(ratio "$theirs" "$native") | $(overhead "$mine" "$theirs" "$native") | $(overhead "$systrap" "$theirs" "$native") |"
}

work_row '`tar cf /dev/null /usr/share/doc /usr/include`' /usr/bin/tar cf /dev/null /usr/share/doc /usr/include
work_row "\`find /usr -name '*.h'\`" /usr/bin/find /usr -name '*.h'
work_row '`sha256sum /usr/bin/*`' /usr/bin/sha256sum "${bins[@]}"
work_row '`python3 -c pass`' /usr/bin/python3 -c pass
work_row '`gcc -O2 -c` of a 600-line C file' /usr/bin/gcc -O2 -c "$data/moderate.c" -o /dev/null
work_row 'bash script: 1,000 `[ ]` tests, 100 forks' /bin/bash "$data/tests_forks.sh"
