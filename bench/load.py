#!/usr/bin/env python3
"""Load test of `trawl serve` on loopback: several clients upload samples,
list, look up, plan and (when the server runs hunts) hunt, for a bounded time.
Prints requests/s, p50/p99 latency per kind and the error count.

usage: bench/load.py [--clients N] [--seconds S] [--trawl BIN]
It starts its own server on 127.0.0.1 with a fresh data directory."""
import argparse
import hashlib
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))


def start_server(trawl, data):
    key = subprocess.run([trawl, "--data", data, "key", "add", "--role", "admin", "load"],
                         capture_output=True, text=True, check=True).stdout.strip()
    proc = subprocess.Popen([trawl, "--data", data, "serve", "--listen", "127.0.0.1:0", "--threads", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    m = re.search(r"on (http://127\.0\.0\.1:\d+)/", proc.stdout.readline())
    if not m:
        proc.kill()
        sys.exit("server did not start")
    return proc, m.group(1), key


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--trawl", default=os.path.join(HERE, "..", "build", "release", "trawl"))
    a = ap.parse_args()
    data = tempfile.mkdtemp(prefix="trawl-load-")
    proc, url, key = start_server(a.trawl, data)
    hdr = {"Authorization": "Bearer " + key}
    lat = {}
    errors = []
    refused = []             # 429: the bounded hunt queue pushing back, as designed
    lock = threading.Lock()
    uploaded = []
    deadline = time.time() + a.seconds
    has_hunts = requests.get(url + "/api/hunts", headers=hdr, timeout=10).status_code == 200

    def record(kind, t0, resp):
        dt = time.perf_counter() - t0
        with lock:
            lat.setdefault(kind, []).append(dt)
            if resp is not None and resp.status_code == 429:
                refused.append(kind)
            elif resp is None or resp.status_code >= 400:
                errors.append((kind, None if resp is None else resp.status_code))

    def client(n):
        rnd = random.Random(n)
        s = requests.Session()
        s.headers.update(hdr)
        while time.time() < deadline:
            op = rnd.random()
            t0 = time.perf_counter()
            resp = None
            try:
                if op < 0.35:
                    body = b"MZ" + rnd.randbytes(rnd.choice([2000, 20000, 200000]))
                    resp = s.post(url + "/api/samples", files={"file": ("s%d.bin" % n, body)},
                                  data={"tags": "load"}, timeout=60)
                    if resp.status_code < 300:
                        with lock:
                            uploaded.append(hashlib.sha256(body).hexdigest())
                    record("upload", t0, resp)
                elif op < 0.6:
                    resp = s.get(url + "/api/samples?tag=load&limit=50", timeout=60)
                    record("list", t0, resp)
                elif op < 0.8:
                    with lock:
                        sha = rnd.choice(uploaded) if uploaded else None
                    if sha:
                        resp = s.get(url + "/api/samples/" + sha, timeout=60)
                        record("info", t0, resp)
                elif op < 0.92 or not has_hunts:
                    rule = 'rule r%d { strings: $a = "%s" condition: $a }' % (n, rnd.randbytes(6).hex())
                    resp = s.post(url + "/api/plan", json={"rule": rule}, timeout=60)
                    record("plan", t0, resp)
                else:
                    rule = 'rule h%d { strings: $a = { 4D 5A %02X %02X } condition: $a at 0 }' % (
                        n, rnd.randrange(256), rnd.randrange(256))
                    resp = s.post(url + "/api/hunts", json={"rule": rule}, timeout=60)
                    record("hunt-submit", t0, resp)
            except requests.RequestException:
                record("error", t0, None)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    proc.terminate()
    proc.wait(timeout=60)
    shutil.rmtree(data, ignore_errors=True)
    total = sum(len(v) for v in lat.values())
    print("load: %d clients, %.1f s, %d requests, %.1f req/s, %d errors, %d refused with 429 (hunt queue full)" % (
        a.clients, elapsed, total, total / elapsed, len(errors), len(refused)))
    for kind, v in sorted(lat.items()):
        v.sort()
        p99 = v[min(len(v) - 1, int(len(v) * 0.99))]
        print("  %-12s n=%-6d %.1f req/s  p50 %.1f ms  p99 %.1f ms" % (
            kind, len(v), len(v) / elapsed, statistics.median(v) * 1e3, p99 * 1e3))
    if errors:
        print("errors:", errors[:10])
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
