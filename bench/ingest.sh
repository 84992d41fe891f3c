#!/usr/bin/env bash
# Ingest throughput of `trawl add` (every hash, type, imphash, durable commit,
# the n-gram index and the similarity indexes) against parallel sha256sum over
# the same warm files, in the same run: RUNS runs each, interleaved; prints
# the median, the spread (min-max), CPU seconds (user+sys) and the load.
#
# usage: bench/ingest.sh [DIR] [RUNS]
#   DIR    default /work/bench-data/corpus
#   RUNS   default 3
#   FILES  how many of DIR's files (first in `find` order; default 2000,
#          0 = all: the full 41,399-file corpus takes minutes per run)
#   JOBS   parallel sha256sum processes and trawl's --jobs (default: cores)
#   SCRATCH where trawl's data directories go (default $TMPDIR or /tmp)
#   BEFORE  another trawl binary (an older build) timed in the same runs,
#           interleaved, for a before/after comparison on the same load
set -euo pipefail
dir=${1:-/work/bench-data/corpus}
runs=${2:-3}
nfiles=${FILES:-2000}
jobs=${JOBS:-$(nproc)}
here=$(cd "$(dirname "$0")/.." && pwd)
trawl=${TRAWL_BIN:-$here/build/release/trawl}
[ -x "$trawl" ] || make -C "$here" release >/dev/null
scratch=$(mktemp -d "${SCRATCH:-${TMPDIR:-/tmp}}/trawl-ingest.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# The files, as a directory of links both tools read through.
mkdir "$scratch/in"
if [ "$nfiles" = 0 ]; then
  find "$dir" -type f -print0 > "$scratch/list"
else
  { find "$dir" -type f -print0 || true; } | head -z -n "$nfiles" > "$scratch/list"
fi
i=0
while IFS= read -r -d '' f; do
  i=$((i + 1))
  ln -s "$f" "$scratch/in/$i"
done < "$scratch/list"
bytes=$(xargs -0 stat -L -c %s < "$scratch/list" | awk '{s+=$1} END {print s+0}')
echo "corpus: $dir  files=$i  bytes=$bytes  cores=$(nproc)  jobs=$jobs"
# Warm the page cache once so both tools read from memory.
xargs -0 cat < "$scratch/list" >/dev/null 2>&1 || true

now() { date +%s.%N; }
cpu() { awk '{print $1 + $2}' "$1"; }
before=${BEFORE:-}
ref=(); tr=(); refc=(); trc=(); loads=(); bf=(); bfc=()
for r in $(seq "$runs"); do
  loads+=("$(cut -d' ' -f1 /proc/loadavg)")
  t0=$(now)
  /usr/bin/time -f "%U %S" -o "$scratch/t.ref" \
    sh -c 'find "$1" -type l -print0 | xargs -0 -P "$2" -n 256 sha256sum >/dev/null' _ "$scratch/in" "$jobs"
  t1=$(now); ref+=("$(echo "$t1 - $t0" | bc)"); refc+=("$(cpu "$scratch/t.ref")")
  rm -rf "$scratch/data"
  t0=$(now)
  /usr/bin/time -f "%U %S" -o "$scratch/t.tr" \
    "$trawl" --data "$scratch/data" add --quiet --jobs "$jobs" "$scratch/in" >/dev/null 2>"$scratch/err" || true
  t1=$(now); tr+=("$(echo "$t1 - $t0" | bc)"); trc+=("$(cpu "$scratch/t.tr")")
  extra=
  if [ -n "$before" ]; then
    rm -rf "$scratch/data"
    t0=$(now)
    /usr/bin/time -f "%U %S" -o "$scratch/t.bf" \
      "$before" --data "$scratch/data" add --quiet --jobs "$jobs" "$scratch/in" >/dev/null 2>"$scratch/err.bf" || true
    t1=$(now); bf+=("$(echo "$t1 - $t0" | bc)"); bfc+=("$(cpu "$scratch/t.bf")")
    extra="  before ${bf[-1]} s (cpu ${bfc[-1]} s)"
  fi
  echo "run $r: load $(cut -d' ' -f1 /proc/loadavg)  sha256sum ${ref[-1]} s (cpu ${refc[-1]} s)  trawl add ${tr[-1]} s (cpu ${trc[-1]} s)$extra"
done
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.2f %.2f %.2f", a[int((NR+1)/2)], a[1], a[NR]}'; }
read -r ref_s ref_lo ref_hi <<< "$(stats "${ref[@]}")"
read -r tr_s tr_lo tr_hi <<< "$(stats "${tr[@]}")"
read -r refc_s _ _ <<< "$(stats "${refc[@]}")"
read -r trc_s _ _ <<< "$(stats "${trc[@]}")"
awk -v b="$bytes" -v f="$i" -v r="$ref_s" -v rl="$ref_lo" -v rh="$ref_hi" -v t="$tr_s" \
    -v tl="$tr_lo" -v th="$tr_hi" -v rc="$refc_s" -v tc="$trc_s" -v n="$runs" -v j="$jobs" 'BEGIN {
  printf "sha256sum (xargs -P %d): median %.2f s (%.2f-%.2f)  %.1f MB/s  cpu %.2f s\n", j, r, rl, rh, b/r/1e6, rc
  printf "trawl add --jobs %d (all hashes, type, imphash, commit, indexes): median %.2f s (%.2f-%.2f)  %.1f MB/s  cpu %.2f s\n", j, t, tl, th, b/t/1e6, tc
  printf "ratio trawl/sha256sum throughput: %.2f wall, %.2f cpu  (medians of %d runs)\n", r/t, rc/tc, n
}'
if [ -n "$before" ]; then
  read -r bf_s bf_lo bf_hi <<< "$(stats "${bf[@]}")"
  read -r bfc_s _ _ <<< "$(stats "${bfc[@]}")"
  awk -v b="$bytes" -v r="$ref_s" -v t="$bf_s" -v tl="$bf_lo" -v th="$bf_hi" -v rc="$refc_s" \
      -v tc="$bfc_s" -v a="$tr_s" -v ac="$trc_s" 'BEGIN {
    printf "before (%s): median %.2f s (%.2f-%.2f)  %.1f MB/s  cpu %.2f s  ratio %.2f wall, %.2f cpu\n", "'"$before"'", t, tl, th, b/t/1e6, tc, r/t, rc/tc
    printf "after/before speed-up: %.2fx wall, %.2fx cpu\n", t/a, tc/ac
  }'
fi
echo "load (1 min) at each run's start: ${loads[*]}"
echo "last trawl summary: $(tail -1 "$scratch/err")"
