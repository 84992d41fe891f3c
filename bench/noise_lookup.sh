#!/bin/bash
# bench/noise_lookup.sh KEEP_DIR [N] [RUNS]
#
# Single-IP lookups from a C client on a kept bench store (KEEP= of
# bench/noise_query.sh), without the SQLite questions' scans between server
# start and the lookups: `trawl serve`, wait for the GNQL index (its log
# line), then curl over one keep-alive connection: /v2/noise/context for N
# random generated addresses (default 300), the same N again, then
# /v2/noise/quick for them. p50/p95/max per pass; RUNS servers (default 3).
# $TRAWL_BIN picks the binary (default build/release/trawl).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TRAWL=${TRAWL_BIN:-$HERE/../build/release/trawl}
W=$1 N=${2:-300} RUNS=${3:-3}
KEY=$(cat "$W/key")
IPS=$(awk '/^generated/ {print $2}' "$W/generated")
TMP=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT
PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "load before: $(uptime)"
for run in $(seq "$RUNS"); do
    "$TRAWL" --data "$W/data" serve --kb-sync 0 --listen "127.0.0.1:$PORT" >"$TMP/serve.log" 2>&1 &
    PID=$!
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/api/health" >/dev/null && break; sleep 0.1; done
    for _ in $(seq 1200); do grep -q "GNQL index ready" "$TMP/serve.log" && break; sleep 0.5; done
    echo "run $run: $(grep -o 'GNQL index ready.*' "$TMP/serve.log" || echo 'no GNQL index line (older binary)')"
    for pass in context context-again quick; do
        /usr/bin/python3 "$HERE/noise_curl.py" urls "$IPS" "$N" "$PORT" "${pass%-again}" 11 >"$TMP/cfg"
        curl -s -H "key: $KEY" -K "$TMP/cfg" -w '%{http_code} %{time_total}\n' >"$TMP/out"
        /usr/bin/python3 "$HERE/noise_curl.py" summary "$TMP/out" "  $pass"
    done
    kill "$PID"; wait "$PID" 2>/dev/null || true
    PID=
done
echo "load after: $(uptime)"
