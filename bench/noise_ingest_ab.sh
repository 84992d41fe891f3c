#!/bin/bash
# bench/noise_ingest_ab.sh BEFORE_BINARY AFTER_BINARY DATA_DIR [EVENTS] [PAIRS]
#
# `trawl noise import` of two builds on the same store, alternating (before,
# after / after, before / ...: PAIRS pairs, default 3), each run on its own
# freshly generated file of EVENTS events (default 20,000; the same mix as
# bench/noise_query.sh's ingest step: half from the generated 10.x addresses,
# half from new 172.x ones, 90% SYN scans, 10% HTTP). Prints wall, CPU
# (user + sys) and CPU per event for each run. DATA_DIR is written to: use a
# kept bench store (KEEP= of bench/noise_query.sh) or a copy.
set -euo pipefail
BEFORE=$1 AFTER=$2 DATA=$3 EVENTS=${4:-20000} PAIRS=${5:-3}
IPS=$(sqlite3 "$DATA/trawl.db" "SELECT count(*) FROM noise_ips WHERE ip LIKE '10.%'")
[ "$IPS" -gt 0 ] || IPS=20000
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 - "$EVENTS" "$IPS" "$TMP" "$((2 * PAIRS))" <<'PY'
import base64, datetime, json, random, sys
n, nips, out, files = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
for run in range(files):
    rnd = random.Random(1000 + run)
    with open("%s/%d.jsonl" % (out, run), "w") as f:
        for _ in range(n):
            i = rnd.randrange(nips)
            src = "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255) if rnd.random() < 0.5 else \
                "172.%d.%d.%d" % (16 + run % 16, rnd.randrange(256), rnd.randrange(256))
            e = {"time": now, "sensor": "ingest", "src_ip": src, "dst_ip": "198.51.100.7",
                 "src_port": rnd.randrange(1024, 65535), "transport": "tcp"}
            if rnd.random() < 0.9:
                e.update(dst_port=rnd.choice([22, 23, 445, 3389]), proto="syn", handshake=False,
                         ip_id=54321 if rnd.random() < 0.3 else rnd.randrange(65536), ttl=64,
                         tcp_window=1024, tcp_seq=rnd.randrange(1 << 32))
            else:
                p = rnd.choice(["/", "/.env", "/.git/config"])
                req = "GET %s HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8.0\r\n\r\n" % p
                e.update(dst_port=80, proto="http", payload_b64=base64.b64encode(req.encode()).decode(),
                         fields={"http_method": "GET", "http_path": p, "http_user_agent": "curl/8.0"})
            f.write(json.dumps(e) + "\n")
PY
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
