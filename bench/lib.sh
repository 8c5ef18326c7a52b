# Shared by bench/run.sh, bench/fs_run.sh and bench/real_work.sh (sourced, with `rounds`
# set): medians of rounds, time limits, ratios.

# median of N rounds: scheduling noise on a small VM moves single runs by
# 2x either way, and best-of-N rewards the luckiest. The value is the
# first word of the last line; a run that fails, or whose last line does
# not start with a number, makes the cell "-" (a runtime that lacks a
# feature the benchmark needs).
best() {
    local vals=() v
    for _ in $(seq "$rounds"); do
        if v=$("$@" 2>/dev/null | tail -1) && v=${v%% *} && [[ $v =~ ^[0-9]+$ ]]; then
            vals+=("$v")
        else
            echo "-"
            return 0
        fi
    done
    printf '%s\n' "${vals[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# Sandboxed runs get a time limit, so that a runtime that hangs on a
# benchmark only loses that cell.
limit=300

# Natively, /tmp is a private tmpfs, as in both sandboxes.
native_tmpfs() {
    unshare -m sh -c 'mount -t tmpfs tmpfs /tmp && exec "$@"' sh "$@"
}

num() { [[ $1 =~ ^[0-9]+$ ]]; }
ratio() {
    if num "$1" && num "$2"; then
        awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else printf "-" }'
    else
        printf -- "-"
    fi
}
# overhead ratio: (sandbox - native) of ours against gVisor's
overhead() {
    if num "$1" && num "$2" && num "$3"; then
        awk -v o="$1" -v g="$2" -v n="$3" 'BEGIN { if (g - n > 0) printf "%.2f", (o - n) / (g - n); else printf "-" }'
    else
        printf -- "-"
    fi
}
