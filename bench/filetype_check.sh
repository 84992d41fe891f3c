#!/usr/bin/env bash
# Does trawl store the same libmagic answers as file(1)? Adds files into a
# scratch store (or reads an existing one), then compares every sample's
# stored description and MIME type with `file -b` and `file -b --mime-type`
# on its source file. Prints the counts and the first differences.
#
# usage: bench/filetype_check.sh [DIR]
#   DIR    default /work/bench-data/corpus
#   FILES  how many of DIR's files (first in `find` order; default 2000, 0 = all)
#   DATA   an existing data directory holding DIR's files: compare it instead
#          of adding (opened read-only)
set -euo pipefail
dir=${1:-/work/bench-data/corpus}
nfiles=${FILES:-2000}
here=$(cd "$(dirname "$0")/.." && pwd)
trawl=${TRAWL_BIN:-$here/build/release/trawl}
scratch=$(mktemp -d "${SCRATCH:-${TMPDIR:-/tmp}}/trawl-filetype.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

if [ "$nfiles" = 0 ]; then
  find "$dir" -type f -print0 > "$scratch/list"
else
  { find "$dir" -type f -print0 || true; } | head -z -n "$nfiles" > "$scratch/list"
fi
data=${DATA:-}
if [ -z "$data" ]; then
  [ -x "$trawl" ] || make -C "$here" release >/dev/null
  data=$scratch/data
  xargs -0 "$trawl" --data "$data" add --quiet --no-index < "$scratch/list" >/dev/null 2>&1 || true
fi
# sha256 <TAB> path, for the listed files
xargs -0 sha256sum < "$scratch/list" | sed 's/  /\t/' | sort -t "$(printf '\t')" -k1,1 -u > "$scratch/paths"
sqlite3 -readonly -separator "$(printf '\t')" "$data/trawl.db" \
  "SELECT sha256, mime, replace(replace(magic, char(10), ' '), char(9), ' ') FROM samples ORDER BY sha256" > "$scratch/rows"
join -t "$(printf '\t')" "$scratch/paths" "$scratch/rows" > "$scratch/joined"
cut -f2 "$scratch/joined" | tr '\n' '\0' > "$scratch/files"
xargs -0 file -b -- < "$scratch/files" > "$scratch/desc" 2>/dev/null || true
xargs -0 file -b --mime-type -- < "$scratch/files" > "$scratch/mime" 2>/dev/null || true
paste -d '\t' "$scratch/joined" "$scratch/mime" "$scratch/desc" | awk -F '\t' '
  { n++; m = ($3 == $5); d = ($4 == $6)
    if (!m) { nm++; if (nm <= 10) printf "mime differs: %s\n  trawl: %s\n  file:  %s\n", $2, $3, $5 }
    if (!d) { nd++; if (nd <= 10) printf "description differs: %s\n  trawl: %s\n  file:  %s\n", $2, $4, $6 } }
  END { printf "compared %d samples: mime differs on %d, description on %d\n", n, nm + 0, nd + 0 }'
