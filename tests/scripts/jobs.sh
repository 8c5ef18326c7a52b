# Shell features that need processes, signals and waiting: pipelines,
# subshells, command substitution, background jobs, wait, trap, kill,
# ulimit. Everything printed is deterministic.
echo "-- pipelines"
seq 1 2000 | sort -rn | head -3
echo one two three | tr ' ' '\n' | sort | tr '\n' ' '; echo
printf 'b\na\nb\nc\na\n' | sort | uniq -c | sort -k2 | tr -s ' '
false | true; echo "status of false|true: $?"
true | false; echo "status of true|false: $?"
echo "-- subshells and substitution"
x=outer; (x=inner; echo "in subshell: $x"); echo "after: $x"
n=$(seq 1 10 | wc -l); echo "lines: $n"
echo "nested: $(echo "$(echo deep)")"
( exit 7 ); echo "subshell exit: $?"
sh -c 'exit 9'; echo "child shell exit: $?"
echo "-- background jobs"
sleep 0.2 & a=$!
(sleep 0.1; exit 3) & b=$!
wait $b; echo "job b: $?"
wait $a; echo "job a: $?"
for i in 1 2 3; do (echo "worker $i" > /tmp/w$i) & done; wait
cat /tmp/w1 /tmp/w2 /tmp/w3
echo "-- kill and trap"
sleep 10 & s=$!
kill -TERM $s; wait $s; echo "killed sleep: $?"
sh -c 'trap "echo got TERM; exit 5" TERM; echo ready > /tmp/ready; while :; do sleep 0.05; done' & t=$!
while [ ! -e /tmp/ready ]; do sleep 0.02; done
kill -TERM $t; wait $t; echo "trapped child: $?"
sh -c 'trap "echo exit trap ran" EXIT; echo body'
sh -c 'trap "echo caught INT" INT; kill -INT $$; echo after INT'
sh -c 'kill -KILL $$; echo not reached'; echo "self-kill: $?"
echo "-- ulimit"
ulimit -n 64; echo "nofile: $(ulimit -n)"
(ulimit -s 1024; echo "stack in subshell: $(ulimit -s)")
echo "-- exec and exit"
sh -c 'exec sh -c "echo exec replaced the shell"'
echo done
