#!/usr/bin/env bash
# Similarity search: each index against brute force over the same values, in
# the same run. For each kind (tlsh, ssdeep), QUERIES samples are drawn from
# the store; for each, the index's K nearest (itself left out) are compared
# with brute force's (every stored value, the same distance function).
# Prints recall (ties counted: an answer as near as brute force's K-th is a
# hit), the median latency of each and the speed ratio of the medians, plus
# CPU seconds (user+sys) of the whole run and the load when measured.
#
# usage: bench/similar.sh [DATA]
#   DATA     a trawl data directory (default: a small generated store)
#   QUERIES  queries per kind (default 100), K (default 10), RUNS (default 3)
#   KINDS    (default "tlsh ssdeep")
# Full size: bench/similar.sh /work/bench-data/data   (the 41k-file corpus)
# The data directory is only read: an index file absent there is built in
# memory first (open_s), as `trawl similar` would.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
trawl=${TRAWL_BIN:-$here/build/release/trawl}
[ -x "$trawl" ] || make -C "$here" release >/dev/null
queries=${QUERIES:-100}
k=${K:-10}
runs=${RUNS:-3}
kinds=${KINDS:-tlsh ssdeep}
data=${1:-}
scratch=
if [ -z "$data" ]; then
  # Small default: 1000 files of text in families, made here.
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/trawl-similar.XXXXXX")
  trap 'rm -rf "$scratch"' EXIT
  /usr/bin/python3 - "$scratch/in" <<'PY'
import os, random, sys
root = sys.argv[1]
os.makedirs(root)
rnd = random.Random(5)
words = [("".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9))))
         for _ in range(2000)]
for f in range(100):
    base = [" ".join(rnd.choice(words) for _ in range(10)) + "\n" for _ in range(rnd.randint(40, 600))]
    for v in range(10):
        lines = list(base)
        for _ in range(rnd.randint(0, len(lines) // 3)):
            lines[rnd.randrange(len(lines))] = " ".join(rnd.choice(words) for _ in range(10)) + "\n"
        with open(os.path.join(root, "f%03d-%d.txt" % (f, v)), "w") as out:
            out.write("".join(lines))
PY
  "$trawl" --data "$scratch/data" add --quiet --no-index "$scratch/in" >/dev/null 2>&1
  data=$scratch/data
fi
echo "data: $data  queries=$queries k=$k runs=$runs  load: $(uptime | sed 's/.*load average: //')"
for kind in $kinds; do
  for r in $(seq "$runs"); do
    /usr/bin/time -f "cpu_s=%U+%S" "$trawl" --data "$data" similar --bench "$queries" --k "$k" --by "$kind" 2>&1 |
      tr '\n' ' '
    echo
  done | tee "${scratch:-/tmp}/similar-$kind.txt"
  # medians over the runs (mawk has no sort: sort per column)
  f="${scratch:-/tmp}/similar-$kind.txt"
  col() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$f" | sort -n; }
  med() { awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  echo "$kind: median of $runs runs: recall $(col recall_mean | med)  p50 index $(col p50_index_us | med) us" \
       " p50 brute force $(col p50_brute_us | med) us  speed ratio $(col speedup | med)x" \
       "(runs $(col speedup | head -1)-$(col speedup | tail -1)x)  cpu $(sed -n 's/.*cpu_s=\([0-9.+]*\).*/\1/p' "$f" | tr '\n' ' ')"
done
