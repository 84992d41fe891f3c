#!/usr/bin/env bash
# Report import throughput: MB/s of text through `trawl import report
# --summary` (charset detection and the IOC extractor with defanging,
# validation and classification) and `--json` (plus the whole draft: an
# object and a JSON record per extraction) against a naive `grep -oE` pass
# of one regex alternation over the same text, in the same run.
# usage: bench/import.sh [TRAWL_BIN (build/release/trawl)] [MB (16)]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build/release/trawl}
mb=${2:-16}
[ -x "$bin" ] || { echo "import.sh: no binary at $bin (make release)" >&2; exit 1; }
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

now() { date +%s.%N; }
rate() { awk -v b="$bytes" -v t="$1" 'BEGIN { printf "%.1f", b / 1048576 / t }'; }

t0=$(now)
"$bin" --data "$work/none" import report --summary "$work/corpus.txt" > "$work/summary.txt"
t1=$(now)
summary_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')

# With ATT&CK as the knowledge base, the gazetteer's matching joins in.
attack="$here/../shared/data/attack/enterprise-attack-entities.json"
kb_s=""
if [ -f "$attack" ]; then
  "$bin" --data "$work/kb" stix import "$attack" > /dev/null
  t0=$(now)
  "$bin" --data "$work/kb" import report --summary "$work/corpus.txt" > "$work/summary-kb.txt"
  t1=$(now)
  kb_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
fi

t0=$(now)
"$bin" --data "$work/none" import report --json "$work/corpus.txt" > "$work/draft.json"
t1=$(now)
trawl_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
found=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["extractions"]), sum(e["accepted"] for e in d["extractions"]))' "$work/draft.json")

# One alternation for the plain (not defanged) forms of the common kinds.
re='https?://[^[:space:]"<>]+|[0-9]{1,3}(\.[0-9]{1,3}){3}|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}|\b[a-fA-F0-9]{32}\b|\b[a-fA-F0-9]{40}\b|\b[a-fA-F0-9]{64}\b|CVE-[0-9]{4}-[0-9]{4,}|([A-Za-z0-9-]+\.)+[A-Za-z]{2,}'
t0=$(now)
grep -oE "$re" "$work/corpus.txt" > "$work/grep.txt" || true
t1=$(now)
grep_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')

echo "corpus: $((bytes >> 20)) MB of labelled report text ($bytes bytes)"
printf "trawl import report --summary (text + extraction): %6.2f s  %6s MB/s\n" \
  "$summary_s" "$(rate "$summary_s")"
if [ -n "$kb_s" ]; then
  printf "  the same with ATT&CK's names and aliases matched: %6.2f s  %6s MB/s  (%s)\n" \
    "$kb_s" "$(rate "$kb_s")" "$(head -1 "$work/summary-kb.txt" | sed 's/.*extractions, //')"
else
  echo "  (no ../shared/data/attack: the gazetteer's matching is not measured)"
fi
printf "trawl import report --json (the whole draft):      %6.2f s  %6s MB/s  %s extractions (%s accepted)\n" \
  "$trawl_s" "$(rate "$trawl_s")" ${found% *} ${found#* }
printf "grep -oE (naive regex, one alternation):          %6.2f s  %6s MB/s  %s matches, defanged forms missed\n" \
  "$grep_s" "$(rate "$grep_s")" "$(wc -l < "$work/grep.txt")"
