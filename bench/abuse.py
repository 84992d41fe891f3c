#!/usr/bin/python3
"""Replays the attacks of issue #16 against a running trawl server and says,
one line per attack, whether the server contained it, its RSS, and how long
/api/health took while the attack ran.

    bench/abuse.py --url http://127.0.0.1:8080 --key ANALYST_KEY [--pid PID]

Loopback only (the URL must name 127.0.0.1, ::1 or localhost), bounded in
connections, bytes and time. It adds live rule sets named abuse-* and
removes them, uploads a few random samples, and cancels the hunts it
submits. Python 3 standard library only.
"""
import argparse
import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
import uuid

SLOW = ('rule abuse_slow { strings: $n = "ABUSE-NEEDLE" condition: '
        'for any i in (0..filesize-1) : (for any j in (0..200) : (uint8(i) == 0x100 + j)) or $n }')
CRASH = r'rule abuse_boom { condition: (1 << 63) \ (filesize - filesize - 1) }'
GOOD = 'rule abuse_good { strings: $a = "ABUSE-GOOD-NEEDLE" condition: $a }'


class Target:
    def __init__(self, url, key, pid):
        u = urllib.parse.urlsplit(url)
        if u.hostname not in ("127.0.0.1", "::1", "localhost"):
            sys.exit("abuse.py only talks to loopback servers")
        self.host, self.port, self.key, self.pid = u.hostname, u.port or 80, key, pid

    def request(self, method, path, body=None, headers=None, timeout=60, key=True, source=None):
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout,
                                       source_address=(source, 0) if source else None)
        h = dict(headers or {})
        if key and self.key:
            h["Authorization"] = "Bearer " + self.key
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, data
        finally:
            c.close()

    def json(self, method, path, body=None, timeout=60):
        st, data = self.request(method, path, body, timeout=timeout)
        try:
            return st, json.loads(data or b"null")
        except ValueError:
            return st, None

    def upload(self, name, data, fields=(), timeout=120):
        b = uuid.uuid4().hex.encode()
        body = b""
        for k, v in fields:
            body += b"--" + b + b'\r\nContent-Disposition: form-data; name="' + k + b'"\r\n\r\n' + v + b"\r\n"
        body += (b"--" + b + b'\r\nContent-Disposition: form-data; name="file"; filename="' + name.encode()
                 + b'"\r\n\r\n' + data + b"\r\n--" + b + b"--\r\n")
        return self.request("POST", "/api/samples", body,
                            {"Content-Type": "multipart/form-data; boundary=" + b.decode()}, timeout=timeout)

    def rss_kb(self):
        if not self.pid:
            return None
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None


PROBE_SOURCE = "127.0.0.3"


class Probe:
    """Polls /api/health (and RSS) from another thread while an attack runs."""

    def __init__(self, t):
        self.t, self.worst, self.failed, self.rss = t, 0.0, 0, 0
        self.stop = threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                # From an address of its own: the attacks come from the
                # default one, and per-address limits rightly hit them.
                st, _ = self.t.request("GET", "/api/health", timeout=10, key=False,
                                       source=PROBE_SOURCE if self.t.host == "127.0.0.1" else None)
                if st != 200:
                    self.failed += 1
            except OSError:
                self.failed += 1
            self.worst = max(self.worst, time.monotonic() - t0)
            self.rss = max(self.rss, self.t.rss_kb() or 0)
            self.stop.wait(0.2)

    def __enter__(self):
        self.th.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        self.th.join()


def report(name, contained, probe, note=""):
    rss = "%d MB" % (probe.rss // 1024) if probe.rss else "n/a (--pid)"
    print("%-28s %-13s rss %-12s health worst %.2fs%s%s" % (
        name, "contained" if contained else "NOT CONTAINED", rss, probe.worst,
        " (%d failed)" % probe.failed if probe.failed else "", "  " + note if note else ""), flush=True)


def wait_scans(t, limit=120):
    deadline = time.time() + limit
    while time.time() < deadline:
        st, j = t.json("GET", "/api/rules")
        if st == 200 and j.get("scans_pending", 0) == 0:
            return {r["name"]: r for r in j["data"]}
        time.sleep(0.3)
    return None


def attack_include(t):
    with Probe(t) as p:
        st, data = t.request("POST", "/api/plan", b'rule a { condition: true } include "/etc/passwd"',
                             {"Content-Type": "text/plain"})
    report("include via /api/plan", st >= 400 and b"root:" not in data, p, "HTTP %d" % st)


def attack_slow_live(t):
    t.json("POST", "/api/rules", {"name": "abuse-slow", "rule": SLOW})
    times = []
    with Probe(t) as p:
        def one(i):
            t0 = time.monotonic()
            st, _ = t.upload("slow%d.bin" % i, os.urandom(2_000_000))
            times.append((st, time.monotonic() - t0))
        ths = [threading.Thread(target=one, args=(i,)) for i in range(4)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
    t.request("DELETE", "/api/rules/abuse-slow")
    ok = all(st in (200, 201) for st, _ in times) and p.failed == 0
    report("slow live rule set", ok, p, "uploads worst %.2fs" % max(s for _, s in times))


def attack_crash_live(t):
    t.json("POST", "/api/rules", {"name": "abuse-crash", "rule": CRASH})
    t.json("POST", "/api/rules", {"name": "abuse-good", "rule": GOOD})
    with Probe(t) as p:
        t.upload("good.bin", os.urandom(1000) + b"ABUSE-GOOD-NEEDLE")
        sets = wait_scans(t) or {}
    good = sets.get("abuse-good", {})
    crash = sets.get("abuse-crash", {})
    ok = good.get("hits", 0) >= 1 and bool(crash.get("last_failure"))
    for n in ("abuse-crash", "abuse-good"):
        t.request("DELETE", "/api/rules/" + n)
    report("crashing live rule set", ok, p, "failure recorded" if crash.get("last_failure") else "")


def attack_memo(t):
    hexes = " ".join('$h%d = { %02x %02x %02x ?? %02x }' % (i, i & 255, (i >> 8) & 255, (i * 7) & 255, (i * 13) & 255)
                     for i in range(10000))
    rule = "rule abuse_memo { strings: %s condition: any of them }" % hexes
    with Probe(t) as p:
        st, j = t.json("POST", "/api/hunts", {"rule": rule, "time_limit": 20}, timeout=120)
        hid = j.get("id") if isinstance(j, dict) else None
        deadline = time.time() + 30
        while hid and time.time() < deadline:
            s2, job = t.json("GET", "/api/hunts/%d" % hid)
            if s2 != 200 or job["status"] not in ("queued", "running"):
                break
            time.sleep(0.5)
        if hid:
            t.request("POST", "/api/hunts/%d/cancel" % hid)
    # Contained: refused up front (4xx), or run within 1 GiB with health answering.
    ok = 400 <= st < 500 or (p.failed == 0 and p.rss and p.rss < 1 << 20)
    report("10,000 hex strings hunt", ok, p, "HTTP %d" % st)


def attack_zip(t):
    st, j = t.json("GET", "/api/hunts")
    done = [h for h in (j or {}).get("data", []) if h.get("status") == "done" and h.get("matches")]
    if not done:
        print("%-28s %s" % ("4 concurrent hunt zips", "skipped: no finished hunt with matches"))
        return
    hid = done[0]["id"]
    with Probe(t) as p:
        def dl():
            t.request("GET", "/api/hunts/%d/download" % hid, timeout=300)
        ths = [threading.Thread(target=dl) for _ in range(4)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
    report("4 concurrent hunt zips", p.failed == 0, p)


def attack_idle(t):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1300 and (hard == resource.RLIM_INFINITY or hard >= 1300):
        resource.setrlimit(resource.RLIMIT_NOFILE, (1300, hard))
    socks = []
    with Probe(t) as p:
        for _ in range(1100):
            try:
                s = socket.create_connection((t.host, t.port), timeout=2)
                socks.append(s)
            except OSError:
                break
        try:
            with socket.create_connection((t.host, t.port), timeout=10, source_address=("127.0.0.2", 0)) as s:
                s.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                ok = s.recv(100).startswith(b"HTTP/1.1 200")
        except OSError:
            ok = False
        for s in socks:
            s.close()
    report("1,100 idle connections", ok, p, "%d opened" % len(socks))


def attack_two_files(t):
    b = b"abusebnd"
    body = b"".join(b"--" + b + b'\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n\r\n' % n + os.urandom(100) + b"\r\n"
                    for n in (b"a", b"b")) + b"--" + b + b"--\r\n"
    with Probe(t) as p:
        st, _ = t.request("POST", "/api/samples", body, {"Content-Type": "multipart/form-data; boundary=abusebnd"})
    report("two file parts", st == 400, p, "HTTP %d" % st)


def attack_utf8(t):
    with Probe(t) as p:
        st1, _ = t.upload("u.bin", os.urandom(100), [(b"tags", b"a\x00b,c")])
        st2, _ = t.upload("u.bin", os.urandom(100), [(b"comment", b"caf\xe9")])
        try:
            st3, data = t.request("GET", "/api/samples?hash=%FF")
        except OSError:
            st3, data = 0, b""
    report("NUL / non-UTF-8 fields", st1 == 400 and st2 == 400 and st3 != 0, p, "HTTP %d %d %d" % (st1, st2, st3))


def attack_headers(t):
    with Probe(t) as p:
        c = http.client.HTTPConnection(t.host, t.port, timeout=10)
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        csp = r.getheader("Content-Security-Policy") or ""
        c.close()
        st_host, _ = t.request("GET", "/api/health", headers={"Host": "rebind.example"}, key=False)
        with socket.create_connection((t.host, t.port), timeout=10) as s:
            s.sendall(b"POST /api/plan HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n"
                      b"Content-Length: 9\r\nContent-Type: application/json\r\n\r\n{}")
            cl = s.recv(100)
        t0 = time.monotonic()
        with socket.create_connection((t.host, t.port), timeout=15) as s:
            s.sendall(b"POST /api/samples HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000\r\n"
                      b"Content-Type: multipart/form-data; boundary=x\r\n\r\n")
            try:
                refused = s.recv(100)
            except socket.timeout:
                refused = b""
        quick = time.monotonic() - t0 < 10
    ok = ("frame-ancestors 'none'" in csp and st_host == 421 and cl.startswith(b"HTTP/1.1 400")
          and refused.startswith(b"HTTP/1.1 401") and quick)
    report("CSP, Host, Content-Length", ok, p, "host %d" % st_host)


ATTACKS = [attack_include, attack_slow_live, attack_crash_live, attack_memo, attack_zip, attack_idle,
           attack_two_files, attack_utf8, attack_headers]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True, help="an analyst key")
    ap.add_argument("--pid", type=int, help="the server's pid, for its RSS")
    ap.add_argument("--only", help="run only attacks whose function name contains this")
    a = ap.parse_args()
    t = Target(a.url, a.key, a.pid)
    for fn in ATTACKS:
        if a.only and a.only not in fn.__name__:
            continue
        try:
            fn(t)
        except Exception as e:                      # one attack's trouble must not hide the rest
            print("%-28s error: %s" % (fn.__name__, e), flush=True)


if __name__ == "__main__":
    main()
