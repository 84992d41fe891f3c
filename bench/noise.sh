#!/bin/bash
# bench/noise.sh [EVENTS] [SOURCES]
#
# Skeleton of the noise ingest benchmark: generates EVENTS events (default
# 200000) from SOURCES distinct addresses (default 50000): mostly SYN-only
# probes, some HTTP requests with payloads, some SSH logins, all addressed
# within 198.51.100.0/24 and 203.0.113.0/24 plus generated 10.x sources
# (records only; nothing is sent anywhere). It times
#   trawl noise import --format jsonl FILE     (judging with the default tags,
#                                              storing, per-IP aggregates)
# and prints events/s, and then the time of `trawl noise ip` on one address.
# The capture side (issue 10's figures: a generated pcap against tcpdump -r
# and tshark, FULL=1 for 1.1 GB / 1.2M sources) is bench/capture.sh, and the
# live sensor's connection rate bench/sensor.sh.
# $TRAWL_BIN picks the binary (default build/release/trawl).
set -euo pipefail
N=${1:-200000}
SRC=${2:-50000}
HERE=$(cd "$(dirname "$0")" && pwd)
TRAWL=${TRAWL_BIN:-$HERE/../build/release/trawl}
[ -x "$TRAWL" ] || { echo "no trawl binary at $TRAWL (make release)" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

/usr/bin/python3 - "$N" "$SRC" "$WORK/events.jsonl" <<'PY'
import base64, datetime, json, random, sys
n, nsrc, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rnd = random.Random(1)
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
paths = ["/", "/.env", "/.git/config", "/wp-login.php", "/cgi-bin/.%2e/.%2e/etc/passwd", "/HNAP1/"]
with open(out, "w") as f:
    for i in range(n):
        s = rnd.randrange(nsrc)
        src = "10.%d.%d.%d" % (s >> 16 & 255, s >> 8 & 255, s & 255)
        e = {"time": now, "sensor": "bench", "src_ip": src, "dst_ip": "198.51.100.%d" % rnd.randrange(1, 255),
             "src_port": rnd.randrange(1024, 65535), "transport": "tcp"}
        k = rnd.random()
        if k < 0.9:
            e.update(dst_port=rnd.choice([22, 23, 80, 443, 445, 3389, 8080]), proto="syn", handshake=False,
                     ip_id=54321 if k < 0.3 else rnd.randrange(65536), ttl=rnd.randrange(30, 255),
                     tcp_window=rnd.choice([1024, 65535, 29200]), tcp_seq=rnd.randrange(1 << 32))
        elif k < 0.97:
            p = rnd.choice(paths)
            req = "GET %s HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8.0\r\n\r\n" % p
            e.update(dst_port=80, proto="http", payload_b64=base64.b64encode(req.encode()).decode(),
                     fields={"http_method": "GET", "http_path": p, "http_user_agent": "curl/8.0"})
        else:
            e.update(dst_port=22, proto="ssh", fields={"ssh_client": "SSH-2.0-Go", "username": "root",
                                                       "password": "pw%d" % rnd.randrange(1000)})
        f.write(json.dumps(e) + "\n")
PY

size=$(stat -c %s "$WORK/events.jsonl")
t0=$(date +%s.%N)
"$TRAWL" --data "$WORK/data" noise import --format jsonl "$WORK/events.jsonl" >/dev/null
t1=$(date +%s.%N)
/usr/bin/python3 -c "import sys; n, b, t = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[4]) - float(sys.argv[3]); print('noise import: %d events (%.1f MB) in %.2f s: %.0f events/s' % (n, b / 1e6, t, n / t))" "$N" "$size" "$t0" "$t1"
t0=$(date +%s.%N)
"$TRAWL" --data "$WORK/data" noise ip --json 10.0.0.1 >/dev/null
t1=$(date +%s.%N)
/usr/bin/python3 -c "import sys; print('noise ip (one process, cold): %.1f ms' % ((float(sys.argv[2]) - float(sys.argv[1])) * 1000))" "$t0" "$t1"
