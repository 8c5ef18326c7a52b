#!/bin/sh
# socat between two unix sockets: an echo server (socat with cat behind
# it) on one socket, a relay from a second socket to the first, and a
# client through the relay. Run natively and in the sandbox.
set -e
d=$(mktemp -d /tmp/socat.XXXXXX)
wait_for() { i=0; while [ ! -S "$1" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done; }
socat UNIX-LISTEN:"$d/back",fork EXEC:cat &
back=$!
wait_for "$d/back"
socat UNIX-LISTEN:"$d/front",fork UNIX-CONNECT:"$d/back" &
front=$!
wait_for "$d/front"
for word in one two three; do
    echo "hello $word" | socat -t 2 - UNIX-CONNECT:"$d/front"
done
printf 'line 1\nline 2\n' | socat -t 2 - UNIX-CONNECT:"$d/front" | wc -l
kill $front $back
wait $front $back 2>/dev/null || true
rm -rf "$d"
echo done
