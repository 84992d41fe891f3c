#!/bin/bash
# bench/sensor.sh: the live sensor's connection rate on loopback (issue 10:
# >= 20k connections/s, no event lost), in the same run for both sinks:
#   out    trawl sensor --out FILE --no-store   (JSON lines only)
#   store  trawl sensor                         (the data directory's noise store)
#   peer   sensor_load serve: the least a server can do per connection (accept,
#          one recv, a fixed answer, close; no parsing, no event), against the
#          same load in the same run: the ceiling this machine allows the pair
#          of load generator and server (PEER=0 leaves it out)
#   upstream  trawl sensor --upstream URL --key KEY: batches spooled
#          and POSTed to a `trawl serve` on loopback (UPSTREAM=0 leaves it out);
#          after the load, the run waits until the server holds every event
#          (at most LIMIT s) and reports that drain time and the server's CPU
# bench/sensor_load.c opens COUNT connections to 127.0.0.1 (non-blocking
# connects, at most CONC at once, bounded by SECONDS), each sending one HTTP
# request and reading the answer; the sensor writes one event per connection.
# Per run: connections completed/s (client's wall clock), the sensor's CPU
# (user+sys) per connection, and events recorded vs connections completed; the
# load generator's own CPU per connection too (it shares the two cores).
#
#   bench/sensor.sh                    30,000 connections, 3 runs per sink
#   FULL=1 bench/sensor.sh             200,000 connections
#   COUNT=N CONC=N RUNS=N LIMIT=SECONDS  the knobs (LIMIT bounds each load, default 120)
# $TRAWL_BIN picks the binary (default build/release/trawl).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TRAWL=${TRAWL_BIN:-$HERE/../build/release/trawl}
[ -x "$TRAWL" ] || { echo "no trawl binary at $TRAWL (make release)" >&2; exit 1; }
if [ "${FULL:-0}" = 1 ]; then COUNT=${COUNT:-200000}; else COUNT=${COUNT:-30000}; fi
CONC=${CONC:-256}
RUNS=${RUNS:-3}
PEER=${PEER:-1}
UPSTREAM=${UPSTREAM:-1}
MODES="out store"
[ "$PEER" = 1 ] && MODES="peer out store"
[ "$UPSTREAM" = 1 ] && MODES="$MODES upstream"
SECONDS_MAX=${LIMIT:-120}
TMP=$(mktemp -d)
SPID=
UPID=
cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null
    [ -n "$UPID" ] && kill "$UPID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
cc -O2 -Wall -Wextra -o "$TMP/sensor_load" "$HERE/sensor_load.c"
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "load before: $(uptime)"
for r in $(seq "$RUNS"); do
    for mode in $MODES; do
        P=$(port)
        rm -rf "$TMP/data" "$TMP/ev.jsonl" "$TMP/srv"
        extra=()
        if [ "$mode" = upstream ]; then
            UP=$(port)
            "$TRAWL" --data "$TMP/srv" noise retention --days 90 >/dev/null
            KEY=$("$TRAWL" --data "$TMP/srv" key add --role analyst bench 2>/dev/null)
            "$TRAWL" --data "$TMP/srv" serve --kb-sync 0 --listen "127.0.0.1:$UP" \
                </dev/null >/dev/null 2>"$TMP/srvlog" &
            UPID=$!
            for _ in $(seq 100); do curl -sf "http://127.0.0.1:$UP/api/health" >/dev/null && break; sleep 0.1; done
            extra=(--upstream "http://127.0.0.1:$UP" --key "$KEY")
        fi
        if [ "$mode" = peer ]; then
            "$TMP/sensor_load" serve "$P" "$((SECONDS_MAX + 10))" </dev/null >/dev/null 2>"$TMP/log" &
            SPID=$!
            for _ in $(seq 100); do grep -q "serve listening" "$TMP/log" && break; sleep 0.1; done
        else
            [ "$mode" = out ] && extra=(--out "$TMP/ev.jsonl" --no-store)
            "$TRAWL" --data "$TMP/data" sensor --bind 127.0.0.1 --tcp "$P" --udp "" --name bench \
                "${extra[@]}" </dev/null >/dev/null 2>"$TMP/log" &
            SPID=$!
            for _ in $(seq 100); do grep -q "sensor listening" "$TMP/log" && break; sleep 0.1; done
        fi
        /usr/bin/time -f "%U %S" -o "$TMP/gen" "$TMP/sensor_load" "$P" "$COUNT" "$CONC" 0 \
            "$SECONDS_MAX" >"$TMP/line"
        line=$(cat "$TMP/line")
        gen=$(awk '{print $1 + $2}' "$TMP/gen")
        drain=0
        if [ "$mode" = upstream ]; then
            # Every event the sensor wrote must reach the server: the sensor's
            # batches close every --batch-seconds (2 s), then the sender posts.
            want=$(echo "$line" | awk '{print $4}')
            t0=$(date +%s.%N)
            for _ in $(seq $((SECONDS_MAX * 10))); do
                got=$(/usr/bin/python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM noise_events").fetchone()[0])' "$TMP/srv/trawl.db" 2>/dev/null || echo 0)
                [ "$got" -ge "$want" ] && break
                sleep 0.1
            done
            drain=$(/usr/bin/python3 -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$t0" "$(date +%s.%N)")
            srvcpu=$(awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$UPID/stat")
        fi
        # SIGTERM: it records what is still open and commits; its CPU time
        # (utime + stime, clock ticks) is read until it exits.
        ticks=$(awk '{print $14 + $15}' "/proc/$SPID/stat")
        kill -TERM "$SPID"
        while t=$(awk '{print $14 + $15}' "/proc/$SPID/stat" 2>/dev/null); do
            ticks=$t
            sleep 0.05
        done
        wait "$SPID" || true
        SPID=
        if [ "$mode" = peer ]; then
            events=$(echo "$line" | awk '{print $4}')   # no events: completed stands in
        elif [ "$mode" = out ]; then
            events=$(wc -l <"$TMP/ev.jsonl")
        elif [ "$mode" = upstream ]; then
            events=$got
            kill -TERM "$UPID"
            wait "$UPID" || true
            UPID=
        else
            events=$(sed -n 's/.*sensor: \([0-9]*\) events stored.*/\1/p' "$TMP/log" | tail -1)
        fi
        more=""
        [ "$mode" = upstream ] && more=" drain $drain srvcpu $srvcpu"
        echo "$mode $line events ${events:-0} gencpu $gen cpu $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {print t / hz}')$more" | tee -a "$TMP/rows"
    done
done
echo "load after: $(uptime)"
/usr/bin/python3 - "$TMP/rows" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    d = dict(zip(f[1::2], f[2::2]))
    rows.setdefault(f[0], []).append(d)
for mode, rs in rows.items():
    rate = [float(d["rate"]) for d in rs]
    cpu = [float(d["cpu"]) * 1e6 / max(int(d["completed"]), 1) for d in rs]
    gen = [float(d["gencpu"]) * 1e6 / max(int(d["completed"]), 1) for d in rs]
    lost = [int(d["completed"]) - int(d["events"]) for d in rs]
    who = "trivial server" if mode == "peer" else "sensor"
    print("%-5s %d runs: %.0f connections/s median [%.0f-%.0f], %s CPU %.1f us/connection"
          " [%.1f-%.1f] (%.0f connections per CPU-second), load generator CPU %.1f us/connection"
          " [%.1f-%.1f]%s"
          % (mode, len(rs), statistics.median(rate), min(rate), max(rate), who,
             statistics.median(cpu), min(cpu), max(cpu), 1e6 / max(statistics.median(cpu), 1e-9),
             statistics.median(gen), min(gen), max(gen),
             "" if mode == "peer" else ", events recorded vs completed: " +
             ", ".join("%s/%s" % (d["events"], d["completed"]) for d in rs)))
    if mode == "upstream":
        srv = [float(d["srvcpu"]) * 1e6 / max(int(d["completed"]), 1) for d in rs]
        drain = [float(d["drain"]) for d in rs]
        print("      server (POST /api/noise/events into its store): CPU %.1f us/event [%.1f-%.1f],"
              " every event in the server %.1f s [%.1f-%.1f] after the load ended"
              % (statistics.median(srv), min(srv), max(srv), statistics.median(drain), min(drain),
                 max(drain)))
    if any(lost) or any(int(d["failed"]) or int(d["unfinished"]) for d in rs):
        print("  NOTE: failed/unfinished connections or missing events:",
              [(d["failed"], d["unfinished"], l) for d, l in zip(rs, lost)])
PY
