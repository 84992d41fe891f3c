#!/bin/bash
# bench/kb_sync.sh: the incremental knowledge-base sync against the full pass,
# measured in the same run on the same data (docs/kb.md).
#
#   bench/kb_sync.sh                 a generated store of KB_SAMPLES (2000)
#                                    samples in 20 families (a minute or two)
#   KB_STORE=/work/bench-data/data/trawl.db bench/kb_sync.sh
#                                    the full-size store (41,399 samples), copied
#                                    with sqlite3 .backup (the blobs are not needed)
#
# Scenarios, each RUNS (3) times, the incremental sync then the full pass
# (trawl kb sync --full) on the same state:
#   first       the first sync of the store (always a full pass; once per run
#               on a fresh copy)
#   no-change   nothing changed since the last sync
#   add-10      10 new samples added (with a signature) since the last sync
#   sig-change  one sample's signature changed since the last sync
# Prints median and spread (min-max) of wall and CPU (user+sys) seconds and
# the load average before and after. KB_WORK picks the work directory (default
# a temporary one, removed at the end); TRAWL_BIN the binary (build/release).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TRAWL=${TRAWL_BIN:-$HERE/../build/release/trawl}
[ -x "$TRAWL" ] || { echo "no trawl binary at $TRAWL (make release)" >&2; exit 1; }
N=${KB_SAMPLES:-2000}
RUNS=${RUNS:-3}
if [ -n "${KB_WORK:-}" ]; then WORK=$KB_WORK; mkdir -p "$WORK"; KEEP=1; else WORK=$(mktemp -d); KEEP=0; fi
cleanup() { [ "$KEEP" = 1 ] && rm -rf "$WORK/base" "$WORK/data" "$WORK/files" || rm -rf "$WORK"; }
trap cleanup EXIT
TIMES=$WORK/times.txt
: > "$TIMES"

t() { "$TRAWL" --data "$WORK/data" "$@"; }
# timed SCENARIO MODE CMD...: appends "scenario mode wall cpu" to $TIMES.
timed() {
    local sc=$1 mode=$2; shift 2
    local out
    out=$( { /usr/bin/time -f "%e %U %S" "$@" > "$WORK/last.json"; } 2>&1 | tail -1)
    read -r wall user sys <<< "$out"
    echo "$sc $mode $wall $(echo "$user + $sys" | bc)" >> "$TIMES"
}

echo "load before: $(uptime)"
mkdir -p "$WORK/files" "$WORK/base"
if [ -n "${KB_STORE:-}" ]; then
    sqlite3 "$KB_STORE" ".backup $WORK/base/trawl.db"
    echo "store: $KB_STORE ($(sqlite3 "$WORK/base/trawl.db" 'SELECT count(*) FROM samples') samples)"
else
    /usr/bin/python3 - "$N" "$WORK/files/gen" <<'PY'
import os, random, sys
n, d = int(sys.argv[1]), sys.argv[2]
os.makedirs(d, exist_ok=True)
rnd = random.Random(1)
for i in range(n):
    fam = i % 20
    os.makedirs("%s/%d" % (d, fam), exist_ok=True)
    with open("%s/%d/s%06d.bin" % (d, fam, i), "wb") as f:
        f.write(b"kb bench sample %d " % i + rnd.randbytes(200))
PY
    "$TRAWL" --data "$WORK/base" init >/dev/null 2>&1 || true
    for fam in $(seq 0 19); do
        "$TRAWL" --data "$WORK/base" add --quiet --no-index --signature "BenchFam$fam" "$WORK/files/gen/$fam"/*.bin > /dev/null 2>&1
    done
    echo "store: generated, $N samples in 20 families"
fi
fresh() { rm -rf "$WORK/data"; mkdir -p "$WORK/data"; sqlite3 "$WORK/base/trawl.db" ".backup $WORK/data/trawl.db"; }

# new_samples K TAG: K new files, added with a signature.
new_samples() {
    local d="$WORK/files/new-$2"
    mkdir -p "$d"
    for i in $(seq 1 "$1"); do head -c 300 /dev/urandom > "$d/n$i.bin"; done
    t add --quiet --no-index --signature "NewFam" "$d"/*.bin > /dev/null 2>&1
    echo "$d"
}

for r in $(seq 1 "$RUNS"); do
    fresh
    timed first full "$TRAWL" --data "$WORK/data" kb sync --json
done
fresh
t kb sync --json > /dev/null
for r in $(seq 1 "$RUNS"); do
    timed no-change incremental "$TRAWL" --data "$WORK/data" kb sync --json
    timed no-change full "$TRAWL" --data "$WORK/data" kb sync --full --json
    d=$(new_samples 10 "inc$r")
    timed add-10 incremental "$TRAWL" --data "$WORK/data" kb sync --json
    grep -q '"full": false' "$WORK/last.json" || { echo "add-10 was not incremental" >&2; exit 1; }
    new_samples 10 "full$r" > /dev/null
    timed add-10 full "$TRAWL" --data "$WORK/data" kb sync --full --json
    t add --quiet --no-index --signature "Moved$r" "$d/n1.bin" > /dev/null 2>&1
    timed sig-change incremental "$TRAWL" --data "$WORK/data" kb sync --json
    t add --quiet --no-index --signature "Again$r" "$d/n1.bin" > /dev/null 2>&1
    timed sig-change full "$TRAWL" --data "$WORK/data" kb sync --full --json
done
echo "load after: $(uptime)"
/usr/bin/python3 - "$TIMES" "$RUNS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print("%-11s %-12s %4s  %-22s  %-22s" % ("scenario", "mode", "runs", "wall s median (min-max)",
                                          "cpu s median (min-max)"))
for sc in ["first", "no-change", "add-10", "sig-change"]:
    for mode in ["incremental", "full"]:
        v = [r for r in rows if r[0] == sc and r[1] == mode]
        if not v:
            continue
        w = [float(r[2]) for r in v]
        c = [float(r[3]) for r in v]
        print("%-11s %-12s %4d  %6.2f (%.2f-%.2f)%6s  %6.2f (%.2f-%.2f)" % (
            sc, mode, len(v), statistics.median(w), min(w), max(w), "", statistics.median(c),
            min(c), max(c)))
PY
