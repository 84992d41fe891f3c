#!/usr/bin/env bash
# Ingest throughput of `trawl add` against sha256sum over the same files, in one run.
# usage: bench/ingest.sh DIR [RUNS]     (medians of RUNS runs, default 3; both warm-cache)
set -euo pipefail
dir=${1:?usage: bench/ingest.sh DIR [RUNS]}
runs=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
trawl=${TRAWL_BIN:-$here/build/release/trawl}
[ -x "$trawl" ] || make -C "$here" release >/dev/null
scratch=$(mktemp -d "${TMPDIR:-/tmp}/trawl-ingest.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

files=$(find "$dir" -type f | wc -l)
bytes=$(find "$dir" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
echo "corpus: $dir  files=$files  bytes=$bytes  cores=$(nproc)"
# Warm the page cache once so both tools read from memory.
find "$dir" -type f -print0 | xargs -0 cat >/dev/null 2>&1 || true

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now() { date +%s.%N; }

ref=() ; tr=()
for i in $(seq "$runs"); do
  t0=$(now)
  find "$dir" -type f -print0 | xargs -0 -P "$(nproc)" -n 256 sha256sum >/dev/null
  t1=$(now); ref+=("$(echo "$t1 - $t0" | bc)")
  rm -rf "$scratch/data"
  t0=$(now)
  "$trawl" --data "$scratch/data" add --quiet "$dir" >/dev/null 2>"$scratch/err" || true
  t1=$(now); tr+=("$(echo "$t1 - $t0" | bc)")
done
ref_s=$(printf '%s\n' "${ref[@]}" | median)
tr_s=$(printf '%s\n' "${tr[@]}" | median)
summary=$(tail -1 "$scratch/err")
awk -v b="$bytes" -v f="$files" -v r="$ref_s" -v t="$tr_s" -v n="$runs" 'BEGIN {
  printf "sha256sum (xargs -P cores): median %.2f s  %.1f MB/s  %.0f files/s\n", r, b/r/1e6, f/r
  printf "trawl add (all hashes, type, imphash, durable commit): median %.2f s  %.1f MB/s  %.0f files/s\n", t, b/t/1e6, f/t
  printf "ratio trawl/sha256sum throughput: %.2f  (medians of %d runs)\n", r/t, n
}'
echo "last trawl summary: $summary"
