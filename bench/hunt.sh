#!/bin/bash
# bench/hunt.sh CORPUS RULES...
#
# For each rule file, in the same invocation and over the same files:
#   yara -r -p <cores> RULES CORPUS        (Debian's yara 4.2.3, a full scan)
#   trawl hunt RULES                       (index candidates + libyara verification)
# and prints yara seconds, trawl seconds, the speed-up, trawl's candidates, the
# matches, and whether both result sets ((rule, sha256) pairs) are equal.
#
# The trawl data directory ($TRAWL_BENCH_DATA, default /work/bench-data) must
# hold CORPUS; it is built with `trawl add CORPUS` when missing (minutes for
# the 4 GB corpus). $TRAWL_BIN picks the binary (default build/release/trawl).
# Each tool runs $RUNS times (default 1) per rule file; the best time counts,
# since the machine is shared and noisy. Before each rule file the files each
# tool reads are read once (WARM=1, the default): yara's corpus and trawl's
# samples and index. Both sides are then timed from the page cache, so the
# ratio compares the tools and not whichever copy the kernel kept (it trims the
# cache: a "warm" index was once found evicted right after an index bench).
# "fixed s" is trawl's wall time minus its scan time (the hunt's own `seconds`):
# parsing, planning, the index query and the job's bookkeeping.
set -uo pipefail

if [ $# -lt 2 ]; then
    echo "usage: bench/hunt.sh CORPUS RULES..." >&2
    exit 2
fi
CORPUS=$1
shift
HERE=$(cd "$(dirname "$0")" && pwd)
TRAWL=${TRAWL_BIN:-$HERE/../build/release/trawl}
DATA=${TRAWL_BENCH_DATA:-/work/bench-data}
P=${BENCH_THREADS:-$(nproc)}
RUNS=${RUNS:-1}
WARM=${WARM:-1}
YARA=${YARA:-yara}

if [ ! -x "$TRAWL" ]; then
    echo "no trawl binary at $TRAWL (make release, or set TRAWL_BIN)" >&2
    exit 2
fi
if [ ! -f "$DATA/trawl.db" ]; then
    echo "ingesting $CORPUS into $DATA (once)..." >&2
    "$TRAWL" --data "$DATA" add --quiet "$CORPUS" >&2 || exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Wall seconds of a command; its CPU seconds (user + sys) go to $tmp/cpu.
timed() {
    /usr/bin/time -f '%e %U %S' -o "$tmp/time" "$@"
    local rc=$?
    awk '{ printf "%.2f\n", $2 + $3 }' "$tmp/time" > "$tmp/cpu"
    awk '{ print $1 }' "$tmp/time" > "$tmp/wall"
    return $rc
}

# "RULE PATH" lines -> sorted unique "RULE SHA256" lines.
yara_pairs() {
    : > "$tmp/y.pairs"
    [ -s "$tmp/y.raw" ] || return 0
    cut -d' ' -f2- "$tmp/y.raw" | sort -u > "$tmp/y.paths"
    tr '\n' '\0' < "$tmp/y.paths" | xargs -0 -r sha256sum > "$tmp/y.sums"
    awk 'NR == FNR { p = substr($0, 67); sha[p] = $1; next }
         { r = $1; p = substr($0, length($1) + 2); print r, sha[p] }' \
        "$tmp/y.sums" "$tmp/y.raw" | sort -u > "$tmp/y.pairs"
}

warm() {
    [ "$WARM" = 1 ] || return 0
    find "$@" -type f -print0 | xargs -0 -r cat > /dev/null 2>&1
}

printf '%-60s %9s %9s %8s %10s %8s %6s %9s %9s %8s\n' "rule file" "yara s" "trawl s" "speedup" \
    "candidates" "matches" "equal" "yara cpu" "trawl cpu" "fixed s"
: > "$tmp/fixed"
: > "$tmp/acc"
: > "$tmp/full"
all_equal=yes
for rf in "$@"; do
    name=$(echo "$rf" | sed 's|.*/data/rules/||')
    best_y=
    warm "$CORPUS"
    for ((r = 0; r < RUNS; r++)); do
        timed "$YARA" -r -p "$P" -w "$rf" "$CORPUS" > "$tmp/y.raw" 2> "$tmp/y.err"
        yrc=$?
        y=$(cat "$tmp/wall")
        if [ -z "$best_y" ] || [ "$(echo "$y < $best_y" | bc)" = 1 ]; then
            best_y=$y
            cpu_y=$(cat "$tmp/cpu")
        fi
    done
    if [ $yrc -ne 0 ]; then
        printf '%-60s yara cannot compile it: %s\n' "$name" "$(head -1 "$tmp/y.err")"
        continue
    fi
    yara_pairs
    best_t=
    warm "$DATA/samples" "$DATA/index"
    for ((r = 0; r < RUNS; r++)); do
        timed "$TRAWL" --data "$DATA" hunt --threads "$P" "$rf" > "$tmp/t.out" 2> "$tmp/t.err"
        trc=$?
        t=$(cat "$tmp/wall")
        if [ -z "$best_t" ] || [ "$(echo "$t < $best_t" | bc)" = 1 ]; then
            best_t=$t
            cpu_t=$(cat "$tmp/cpu")
            scan_t=$(grep -oE 'matches, [0-9.]+ s' "$tmp/t.err" | grep -oE '[0-9.]+' | tail -1)
        fi
    done
    if [ $trc -ne 0 ]; then
        printf '%-60s trawl failed: %s\n' "$name" "$(tail -1 "$tmp/t.err")"
        all_equal=no
        continue
    fi
    sort -u "$tmp/t.out" > "$tmp/t.pairs"
    cand=$(grep -oE '[0-9]+ candidates,' "$tmp/t.err" | head -1 | grep -oE '[0-9]+')
    total=$(grep -oE 'would read [0-9]+ files' "$tmp/t.err" | grep -oE '[0-9]+')
    matches=$(wc -l < "$tmp/t.pairs")
    if cmp -s "$tmp/y.pairs" "$tmp/t.pairs"; then eq=yes; else eq=NO; all_equal=no; fi
    ratio=$(echo "scale=2; $best_y / ($best_t + 0.005)" | bc)
    fixed=$(echo "scale=3; $best_t - ${scan_t:-0}" | bc)
    printf '%-60s %9.2f %9.2f %8.2f %10s %8s %6s %9.2f %9.2f %8.3f\n' "$name" "$best_y" "$best_t" "$ratio" \
        "$cand" "$matches" "$eq" "$cpu_y" "$cpu_t" "$fixed"
    if [ "$cand" -lt "$total" ]; then
        echo "$ratio" >> "$tmp/acc"
        echo "$fixed" >> "$tmp/fixed"
    else
        echo "$ratio" >> "$tmp/full"
    fi
done

median() { sort -n "$1" | awk '{ a[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo
echo "accelerated rule files: $(wc -l < "$tmp/acc"), median speed-up $(median "$tmp/acc"), median fixed cost $(median "$tmp/fixed") s"
echo "full-scan rule files: $(wc -l < "$tmp/full"), lowest ratio $(sort -n "$tmp/full" | head -1)"
echo "result sets equal everywhere: $all_equal"
