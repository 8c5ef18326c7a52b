#!/bin/bash
# Builds the pending cases as the conformance suite does and runs each
# natively three times (with a private tmpfs on /tmp and the suite's fixed
# environment), reporting any case whose output or exit status varies.
# Usage: tests/syscalls-pending/check-native.sh [NAME...]
set -uo pipefail
cd "$(dirname "$0")"
out=${OUT:-/var/tmp/syscalls-pending}
mkdir -p "$out"
names=("$@")
[ ${#names[@]} -eq 0 ] && names=($(ls *.c | sed 's/\.c$//'))
fail=0
for n in "${names[@]}"; do
    flags=$(head -1 "$n.c" | sed -n 's|^/\* cflags:\(.*\)\*/$|\1|p')
    case "$flags" in *-static*) ;; *) flags="$flags -static" ;; esac
    if ! cc $flags -O1 -g -Wall -Werror -D_GNU_SOURCE -I . -I ../syscalls -o "$out/$n" "$n.c"; then
        echo "$n: build failed"; fail=1; continue
    fi
    stdin=/dev/null
    [ -f "$n.stdin" ] && stdin=$n.stdin
    first=""
    for i in 1 2 3; do
        start=$(date +%s%N)
        env -i PATH=/usr/local/bin:/usr/bin:/bin LANG=C CONFORMANCE=1 \
            unshare -m --propagation private sh -c 'mount -t tmpfs -o mode=1777 tmpfs /tmp && exec "$0"' "$out/$n" \
            <"$stdin" >"$out/$n.out$i" 2>"$out/$n.err$i"
        echo "exit $?" >>"$out/$n.out$i"
        ms=$(( ($(date +%s%N) - start) / 1000000 ))
        if [ $i -gt 1 ] && ! cmp -s "$out/$n.out1" "$out/$n.out$i"; then
            echo "$n: run $i differs"; diff "$out/$n.out1" "$out/$n.out$i" | head -20; fail=1
        fi
    done
    echo "$n: $(wc -l <"$out/$n.out1") lines, $(tail -1 "$out/$n.out1"), ${ms} ms"
done
exit $fail
