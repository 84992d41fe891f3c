#!/bin/bash
# bench/ui.sh: the web UI at collection scale, in one command.
#
# 1. Samples list on a big store: a copy of the database of $UI_SAMPLES_DB
#    (default /work/bench-data/data/trawl.db, 41k samples; only trawl.db is
#    copied, by sqlite's backup, read-only on the source). When it is missing,
#    $UI_GEN_SAMPLES small samples (default 2000) are generated and added.
# 2. A 10,000-match hunt: $UI_HUNT_SAMPLES small samples (default 100) and
#    10,000/$UI_HUNT_SAMPLES rules matching every one of them (100 rules at
#    the default), added to a store of their own and hunted over the API.
#
# For each, the same run measures the request the UI makes now and, as the
# peer, the request the UI made before this change (samples: limit=100, no
# total; results: /results?limit=500, every result in full), each $RUNS times
# (default 3) after one warm-up: wall ms (median, min-max), the server's CPU
# ms per request (user+sys from /proc, over all runs) and the answer's bytes.
# Then headless chromium: time from an in-app navigation to the first row
# (median, min-max of $RUNS warm runs) and the page's DOM nodes.
#
# Data lives in $UI_BENCH_DIR (default /work/bench-data/uiscale), removed at
# the end unless KEEP=1. $TRAWL_BIN picks the binary (default
# build/release/trawl). Needs curl, sqlite3, python3, node and
# tests/browser's npm packages (make browser, or npm ci in tests/browser).
# Full size: UI_HUNT_SAMPLES=10000 (10,000 samples, one rule each match).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TRAWL=${TRAWL_BIN:-$HERE/../build/release/trawl}
RUNS=${RUNS:-3}
DIR=${UI_BENCH_DIR:-/work/bench-data/uiscale}
SRC_DB=${UI_SAMPLES_DB:-/work/bench-data/data/trawl.db}
GEN=${UI_GEN_SAMPLES:-2000}
HUNT_N=${UI_HUNT_SAMPLES:-100}
[ -x "$TRAWL" ] || { echo "no trawl binary at $TRAWL (make release, or set TRAWL_BIN)" >&2; exit 2; }
[ -d "$HERE/../tests/browser/node_modules/playwright-core" ] ||
    (cd "$HERE/../tests/browser" && npm ci --no-audit --no-fund --loglevel=error)

mkdir -p "$DIR"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    [ "${KEEP:-0}" = 1 ] || rm -rf "$DIR/list" "$DIR/hunt" "$DIR/files" "$DIR/hunt.yar"
}
trap cleanup EXIT

# serve DATA -> sets URL and SPID
serve() {
    local log=$1/serve.log
    "$TRAWL" --data "$1" serve --listen 127.0.0.1:0 >"$log" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
    for _ in $(seq 200); do
        URL=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" | head -1 || true)
        [ -n "$URL" ] && return 0
        sleep 0.05
    done
    echo "server did not start: $(cat "$log")" >&2
    exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure LABEL PATH: RUNS timed GETs after a warm-up.
measure() {
    local label=$1 path=$2 t0 t1 hz ms=() bytes
    curl -sf -o /dev/null -H "Authorization: Bearer $KEY" "$URL$path"
    hz=$(getconf CLK_TCK)
    t0=$(cpu_ticks "$SPID")
    for _ in $(seq "$RUNS"); do
        ms+=("$(curl -sf -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $KEY" "$URL$path")")
    done
    t1=$(cpu_ticks "$SPID")
    bytes=$(curl -sf -H "Authorization: Bearer $KEY" "$URL$path" | wc -c)
    printf '%s\n' "${ms[@]}" | sort -n | awk -v l="$label" -v cpu=$(( (t1 - t0) * 1000 / hz )) -v n="$RUNS" -v b="$bytes" '
        { v[NR] = $1 * 1000 }
        END { printf "  %-44s wall %7.1f ms (%.1f-%.1f)  cpu %6.1f ms/req  %9d bytes\n",
              l, v[int((NR + 1) / 2)], v[1], v[NR], cpu / n, b }'
}

echo "# bench/ui.sh  $(date -u '+%F %T') UTC  runs=$RUNS  load:$(uptime | sed 's/.*load average://')"

# ---- 1. samples list ----------------------------------------------------------
rm -rf "$DIR/list" && mkdir -p "$DIR/list"
if [ -f "$SRC_DB" ]; then
    sqlite3 "file:$SRC_DB?mode=ro" ".backup '$DIR/list/trawl.db'"
else
    mkdir -p "$DIR/files/list"
    python3 - "$DIR/files/list" "$GEN" <<'EOF'
import os, sys
for i in range(int(sys.argv[2])):
    open(os.path.join(sys.argv[1], "s%06d.bin" % i), "wb").write(os.urandom(256 + i % 1024))
EOF
    "$TRAWL" --data "$DIR/list" add --quiet --tag bench "$DIR/files/list" >/dev/null
fi
KEY=$("$TRAWL" --data "$DIR/list" key add --role analyst ui-bench)
serve "$DIR/list"
TOTAL=$(curl -sf -H "Authorization: Bearer $KEY" "$URL/api/samples?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
SHA=$(curl -sf -H "Authorization: Bearer $KEY" "$URL/api/samples?limit=1&offset=$((TOTAL / 2))" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["sha256_hash"])')
echo "samples list: $TOTAL samples"
measure "peer: old UI request (limit=100)" "/api/samples?limit=100"
measure "page 1 (limit=50, with total)" "/api/samples?limit=50"
measure "last page" "/api/samples?limit=50&offset=$(( (TOTAL - 1) / 50 * 50 ))"
measure "sorted by size" "/api/samples?limit=50&sort=size&order=asc"
measure "file name contains 'lib'" "/api/samples?limit=50&name=lib"
measure "hash prefix (10 hex)" "/api/samples?limit=50&hash=${SHA:0:10}"
echo "  browser #/samples:  $(node "$HERE/ui_browser.mjs" "$URL" "$KEY" "#/samples" "#list a.row-link" "$RUNS")"
echo "  browser #/samples sorted by size:  $(node "$HERE/ui_browser.mjs" "$URL" "$KEY" "#/samples?sort=size&order=asc" "#list a.row-link" "$RUNS")"
kill "$SPID"; wait "$SPID" 2>/dev/null || true

# ---- 2. a 10,000-match hunt ---------------------------------------------------
rm -rf "$DIR/hunt" "$DIR/files/hunt" && mkdir -p "$DIR/hunt" "$DIR/files/hunt"
NRULES=$(( (10000 + HUNT_N - 1) / HUNT_N ))
python3 - "$DIR/files/hunt" "$HUNT_N" "$NRULES" "$DIR/hunt.yar" <<'EOF'
import os, sys
d, n, nr, rules = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
for i in range(n):
    open(os.path.join(d, "h%06d.bin" % i), "wb").write(os.urandom(300) + b"UIBENCH_MARK" + os.urandom(300))
with open(rules, "w") as f:
    for k in range(nr):
        f.write('rule bench_%03d { meta: author = "bench" strings: $a = "UIBENCH_MARK" condition: $a }\n' % k)
EOF
"$TRAWL" --data "$DIR/hunt" add --quiet "$DIR/files/hunt" >/dev/null
KEY=$("$TRAWL" --data "$DIR/hunt" key add --role analyst ui-bench)
serve "$DIR/hunt"
HID=$(python3 -c 'import json,sys; print(json.dumps({"rule": open(sys.argv[1]).read()}))' "$DIR/hunt.yar" |
      curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' --data-binary @- "$URL/api/hunts" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for _ in $(seq 600); do
    ST=$(curl -sf -H "Authorization: Bearer $KEY" "$URL/api/hunts/$HID" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["status"], j["matches"])')
    case $ST in queued*|running*) sleep 0.2 ;; *) break ;; esac
done
echo "hunt $HID: $HUNT_N samples x $NRULES rules: $ST"
measure "peer: old UI request (/results?limit=500)" "/api/hunts/$HID/results?limit=500"
measure "page 1 (/samples?matches=1&limit=25)" "/api/hunts/$HID/samples?matches=1&limit=25"
measure "one rule's page (?rule=bench_000)" "/api/hunts/$HID/samples?matches=1&limit=25&rule=bench_000"
echo "  browser #/hunts/$HID:  $(node "$HERE/ui_browser.mjs" "$URL" "$KEY" "#/hunts/$HID" "#matches .match-group" "$RUNS")"
echo "# load after: $(uptime | sed 's/.*load average://')"
