# Debian's dynamically linked programs, run natively and under runsc do
# (the host's root through the gofer, under an overlay), must print the
# same. Uses only programs from Debian's packages and files they ship.
set -e
export PATH=/usr/bin:/bin LC_ALL=C
ls -la /usr/bin/ls /usr/bin/cat | cut -c1-10
cat /usr/share/common-licenses/GPL-3 | head -3
sha256sum /usr/bin/ls /usr/share/common-licenses/GPL-3
seq 1 20000 | sort -r | uniq | wc -l
head -c 1000 /usr/share/common-licenses/GPL-3 | wc -c
find /usr/share/common-licenses -name 'GPL*' | sort
tar cf /tmp/doc.tar /usr/share/common-licenses 2>/dev/null
tar tf /tmp/doc.tar | sort | head -5
grep -r "GNU GENERAL PUBLIC LICENSE" /usr/share/common-licenses | sort | head -3
python3 -c 'import json, hashlib, os; print(json.dumps({"h": hashlib.sha256(b"x").hexdigest(), "licenses": sorted(os.listdir("/usr/share/common-licenses"))[:3]}))'
perl -e 'print join(",", map { $_ * $_ } 1..5), "\n"'
if command -v sqlite3 >/dev/null; then
    printf 'create table t(a);\ninsert into t values(1),(2),(39);\nselect sum(a) from t;\n' | sqlite3 /tmp/t.db
fi
python3 - <<'P'
import subprocess, threading, multiprocessing
print(subprocess.run(["echo", "from a subprocess"], capture_output=True, text=True).stdout.strip())
out = []
lock = threading.Lock()
def work(i):
    with lock:
        out.append(i * i)
ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print(sorted(out))
def sq(x):
    return x * x
if __name__ == "__main__":
    with multiprocessing.Pool(2) as p:
        print(p.map(sq, range(8)))
P
