# make -j2 builds a small C project with gcc, whose program then runs.
set -e
export PATH=/usr/bin:/bin LC_ALL=C
cd "$1"
make -s clean
make -j2 >/dev/null
./prog
ls *.o | sort
