#!/bin/bash
# bench/noise_ingest_ab.sh BEFORE_BINARY AFTER_BINARY DATA_DIR [EVENTS] [PAIRS]
#
# `trawl noise import` of two builds on the same store, alternating (before,
# after / after, before / ...: PAIRS pairs, default 3), each run on its own
# freshly generated file of EVENTS events (default 20,000; bench/noise_ingest_gen.py,
# as bench/noise_query.sh's ingest step: half from the generated 10.x
# addresses, half from new 172.x ones, 90% SYN scans, 10% HTTP). Prints wall, CPU
# (user + sys) and CPU per event for each run. DATA_DIR is written to: use a
# kept bench store (KEEP= of bench/noise_query.sh) or a copy.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BEFORE=$1 AFTER=$2 DATA=$3 EVENTS=${4:-20000} PAIRS=${5:-3}
IPS=$(sqlite3 "$DATA/trawl.db" "SELECT count(*) FROM noise_ips WHERE ip LIKE '10.%'")
[ "$IPS" -gt 0 ] || IPS=20000
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 "$HERE/noise_ingest_gen.py" "$EVENTS" "$IPS" "$TMP" "$((2 * PAIRS))" 1000
echo "load before: $(uptime)"
file=0
for pair in $(seq "$PAIRS"); do
    if [ $((pair % 2)) = 1 ]; then order="before after"; else order="after before"; fi
    for which in $order; do
        if [ "$which" = before ]; then bin=$BEFORE; else bin=$AFTER; fi
        t0=$(date +%s.%N)
        /usr/bin/time -f "%U %S" -o "$TMP/time" "$bin" --data "$DATA" noise import --format jsonl \
            "$TMP/$file.jsonl" >/dev/null 2>"$TMP/err" || { cat "$TMP/err" >&2; exit 1; }
        t1=$(date +%s.%N)
        read -r user sys <"$TMP/time"
        /usr/bin/python3 -c "import sys; w = float(sys.argv[2]) - float(sys.argv[1]); u, s, n = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]); print('%-6s file %d: %6.2f s wall, %6.2f s cpu (%.2f user, %.2f sys): %5.0f events/s, %4.0f us cpu/event' % (sys.argv[6], int(sys.argv[7]), w, u + s, u, s, n / w, (u + s) / n * 1e6))" \
            "$t0" "$t1" "$user" "$sys" "$EVENTS" "$which" "$file"
        file=$((file + 1))
    done
done
echo "load after: $(uptime)"
