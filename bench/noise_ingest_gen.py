#!/usr/bin/python3
"""Writes event files for the noise ingest benchmarks (bench/noise_query.sh's
ingest step, bench/noise_ingest_ab.sh).

    noise_ingest_gen.py EVENTS IPS OUT_DIR FILES [SEED0]

OUT_DIR/K.jsonl for K in 0..FILES-1, EVENTS events each, from random seed
SEED0+K (default 0): half from the generated addresses 10.x (of IPS), half
from new ones in 172.(16+K%16).x.x; 90% SYN scans of 22/23/445/3389, 10%
HTTP GETs with their payload."""
import base64
import datetime
import json
import os
import random
import sys

n, nips, out, files = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
seed0 = int(sys.argv[5]) if len(sys.argv) > 5 else 0
os.makedirs(out, exist_ok=True)
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
for k in range(files):
    rnd = random.Random(seed0 + k)
    with open("%s/%d.jsonl" % (out, k), "w") as f:
        for _ in range(n):
            i = rnd.randrange(nips)
            src = "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255) if rnd.random() < 0.5 else \
                "172.%d.%d.%d" % (16 + k % 16, rnd.randrange(256), rnd.randrange(256))
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
