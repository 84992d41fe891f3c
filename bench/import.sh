#!/usr/bin/env bash
# Report import throughput: MB/s of text through `trawl import report
# --summary` (charset detection and the IOC extractor with defanging,
# validation and classification) and `--json` (plus the whole draft: an
# object and a JSON record per extraction) against a naive `grep -oE` pass
# of one regex alternation over the same text, in the same run. Each
# command runs RUNS times, interleaved with the others so that the load of
# a shared machine falls on all of them alike; the median wall time and its
# spread (min-max), and the median CPU time (user+sys) are printed, with
# the load average before and after.
# usage: bench/import.sh [TRAWL_BIN (build/release/trawl)] [MB (4)] [RUNS (3)]
#   full size, as in bench/README.md: bench/import.sh build/release/trawl 16 5
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build/release/trawl}
mb=${2:-4}
runs=${3:-3}
[ -x "$bin" ] || { echo "import.sh: no binary at $bin (make release)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "import.sh: needs /usr/bin/time (Debian package time)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The corpus: the labelled UTF-8 documents repeated up to the size asked for.
src=()
for f in "$here"/tests/fixtures/reports/*.txt "$here"/tests/fixtures/reports/*.md; do
  case "$f" in *sjis*|*eucjp*|*utf16*) continue ;; esac
  src+=("$f")
done
: > "$work/corpus.txt"
while [ "$(stat -c %s "$work/corpus.txt")" -lt $((mb << 20)) ]; do
  cat "${src[@]}" >> "$work/corpus.txt"
done
bytes=$(stat -c %s "$work/corpus.txt")

# With ATT&CK as the knowledge base, the gazetteer's matching joins in.
attack="$here/../shared/data/attack/enterprise-attack-entities.json"
have_kb=0
if [ -f "$attack" ]; then
  "$bin" --data "$work/kb" stix import "$attack" > /dev/null
  have_kb=1
fi

# One alternation for the plain (not defanged) forms of the common kinds.
re='https?://[^[:space:]"<>]+|[0-9]{1,3}(\.[0-9]{1,3}){3}|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}|\b[a-fA-F0-9]{32}\b|\b[a-fA-F0-9]{40}\b|\b[a-fA-F0-9]{64}\b|CVE-[0-9]{4}-[0-9]{4,}|([A-Za-z0-9-]+\.)+[A-Za-z]{2,}'

# measure NAME OUT CMD...: appends "wall cpu" to $work/NAME.times.
measure() {
  local name=$1 out=$2
  shift 2
  /usr/bin/time -f "%e %U %S" -o "$work/t" "$@" > "$out" || true
  awk '{ printf "%s %.2f\n", $1, $2 + $3 }' "$work/t" >> "$work/$name.times"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((i = 0; i < runs; i++)); do
  measure summary "$work/summary.txt" "$bin" --data "$work/none" import report --summary "$work/corpus.txt"
  [ $have_kb = 1 ] && measure kb "$work/summary-kb.txt" "$bin" --data "$work/kb" import report --summary "$work/corpus.txt"
  measure json "$work/draft.json" "$bin" --data "$work/none" import report --json "$work/corpus.txt"
  measure grep "$work/grep.txt" grep -oE "$re" "$work/corpus.txt"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
found=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["extractions"]), sum(e["accepted"] for e in d["extractions"]))' "$work/draft.json")

# row NAME LABEL NOTE: median wall (min-max), MB/s at the median, median CPU.
row() {
  python3 - "$work/$1.times" "$bytes" "$2" "$3" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
mb = int(sys.argv[2]) / 1048576
wall = statistics.median(r[0] for r in rows)
cpu = statistics.median(r[1] for r in rows)
print("%-46s %6.2f s (%.2f-%.2f)  %6.1f MB/s  cpu %6.2f s  %6.1f MB/s cpu  %s" % (
    sys.argv[3], wall, min(r[0] for r in rows), max(r[0] for r in rows), mb / max(wall, 0.01),
    cpu, mb / max(cpu, 0.01), sys.argv[4]))
PY
}

echo "corpus: $((bytes >> 20)) MB of labelled report text ($bytes bytes), $runs runs each"
echo "load average: $load_before before, $load_after after ($(nproc) cores)"
row summary "trawl import report --summary (extraction)" ""
if [ $have_kb = 1 ]; then
  row kb "  the same with ATT&CK's names and aliases" "($(head -1 "$work/summary-kb.txt" | sed 's/.*extractions, //'))"
else
  echo "  (no ../shared/data/attack: the gazetteer's matching is not measured)"
fi
row json "trawl import report --json (the whole draft)" "${found% *} extractions (${found#* } accepted)"
row grep "grep -oE (naive regex, one alternation)" "$(wc -l < "$work/grep.txt") matches, defanged forms missed"
