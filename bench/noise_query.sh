#!/bin/bash
# bench/noise_query.sh [IPS] [EVENTS_PER_IP] [REPEAT]
#
# GreyNoise-API and GNQL latency on generated data, against the same
# questions asked of the raw event table with plain SQLite (what a small team
# would do by hand), in the same run on the same database file.
#
# Data: IPS source addresses (default 100,000) in 10.0.0.0/8 with about
# EVENTS_PER_IP events each (default 10): per-IP records, per-IP sets, events
# per day, events and their tags, written straight into the noise tables by
# a generator (ingest speed is bench/noise.sh's business; this measures the
# queries). Nothing is sent anywhere.
#
# Measured through a running `trawl serve` (release build) over one
# keep-alive HTTP connection, so trawl's figures include HTTP and JSON; the
# SQLite figures are in-process (Python's sqlite3), warm, which favours them.
# Each figure is the median (p50) and p95 of REPEAT runs (default 50; multi
# and stats fewer). Also the server's peak RSS.
# $TRAWL_BIN picks the binary (default build/release/trawl).
set -euo pipefail
IPS=${1:-100000}
PER=${2:-10}
REPEAT=${3:-50}
HERE=$(cd "$(dirname "$0")" && pwd)
TRAWL=${TRAWL_BIN:-$HERE/../build/release/trawl}
[ -x "$TRAWL" ] || { echo "no trawl binary at $TRAWL (make release)" >&2; exit 1; }
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
# KEEP=DIR: generate into DIR once and reuse it on later runs.
if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"; rm -rf "$WORK"; WORK=$KEEP
    cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; }
fi
trap cleanup EXIT

if [ -f "$WORK/generated" ]; then
    KEY=$(cat "$WORK/key")
else
"$TRAWL" --data "$WORK/data" noise retention --days 90 >/dev/null    # makes the tables
KEY=$("$TRAWL" --data "$WORK/data" key add --role reader bench 2>/dev/null)
echo "$KEY" >"$WORK/key"

t0=$(date +%s)
/usr/bin/python3 - "$WORK/data/trawl.db" "$IPS" "$PER" <<'PY'
import json, random, sqlite3, sys, time
db, nips, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(7)
con = sqlite3.connect(db)
con.execute("PRAGMA synchronous=OFF")
now = int(time.time())
day0 = now // 86400
countries = [("US", "United States"), ("CN", "China"), ("DE", "Germany"), ("BR", "Brazil"), ("RU", "Russia"),
             ("NL", "Netherlands"), ("IN", "India"), ("FR", "France"), ("GB", "United Kingdom"), ("VN", "Vietnam")]
tags = ["Mirai", "ZMap Client", ".env Scanner", "SSH Bruteforcer", "Git Config Crawler", "SMBGhost Scanner",
        "RDP Scanner", "Telnet Bruteforcer"]
ports = [22, 23, 80, 443, 445, 3389, 8080, 5555, 6379, 9200]
paths = ["/", "/.env", "/.git/config", "/wp-login.php", "/HNAP1/"]
eid = 0
con.execute("BEGIN")
for i in range(nips):
    ip = "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255)
    cc, cn = rnd.choice(countries)
    n = max(1, int(rnd.expovariate(1 / per)))
    first_day = day0 - rnd.randrange(0, 80)
    last_day = min(day0, first_day + rnd.randrange(0, 30))
    myports = rnd.sample(ports, rnd.randrange(1, 4))
    mytags = rnd.sample(tags, rnd.choice([0, 1, 1, 2]))
    web = 80 in myports or 8080 in myports
    spoof = int(rnd.random() < 0.3)
    cls = "malicious" if mytags and rnd.random() < 0.7 else rnd.choice(["unknown", "benign", "unknown"])
    vals = {}
    days = {}
    for k in range(n):
        d = rnd.randrange(first_day, last_day + 1)
        t = d * 86400 * 1000000 + rnd.randrange(86400 * 1000000)
        port = rnd.choice(myports)
        eid += 1
        ev = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t // 1000000)), "sensor": "bench-%d" % (eid % 4),
              "src_ip": ip, "src_port": 40000, "dst_ip": "198.51.100.%d" % (eid % 200 + 1), "dst_port": port,
              "transport": "tcp", "proto": "http" if port in (80, 8080) else "syn", "handshake": not spoof, "fields": {}}
        if port in (80, 8080):
            p = rnd.choice(paths)
            ev["fields"] = {"http_method": "GET", "http_path": p, "http_user_agent": "curl/8.0"}
            vals[("path", p, 0)] = (t)
            vals[("useragent", "curl/8.0", 0)] = t
        con.execute("INSERT INTO noise_events(id, day, time_us, src_ip, sensor, dst_port, proto, json)"
                    " VALUES(?,?,?,?,?,?,?,?)", (eid, d, t, ip, ev["sensor"], port, ev["proto"], json.dumps(ev)))
        for tg in mytags:
            con.execute("INSERT INTO noise_event_tags(event_id, tag) VALUES(?,?)", (eid, tg))
        vals[("scan", "TCP", port)] = t
        vals[("sensor", ev["sensor"], 0)] = t
        days[d] = days.get(d, 0) + 1
    for tg in mytags:
        vals[("tag", tg, 0)] = last_day * 86400 * 1000000
    f_us, l_us = first_day * 86400 * 1000000, last_day * 86400 * 1000000 + 3600 * 1000000
    con.execute("INSERT INTO noise_ips(ip, family, first_seen, last_seen, events, spoofable, classification,"
                " country, country_code, asn, organization) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                (ip, 4, f_us, l_us, n, spoof, cls, cn, cc, str(64500 + i % 500), "Org %d" % (i % 500)))
    for (kind, v, port), t in vals.items():
        con.execute("INSERT INTO noise_ip_values(ip, kind, value, port, n, first_seen, last_seen)"
                    " VALUES(?,?,?,?,1,?,?)", (ip, kind, v, port, t, t))
    for d, c in days.items():
        con.execute("INSERT INTO noise_ip_days(ip, day, n) VALUES(?,?,?)", (ip, d, c))
con.execute("COMMIT")
print("generated %d IPs, %d events" % (nips, eid))
PY
t1=$(date +%s)
echo "generation: $((t1 - t0)) s; database $(du -sh "$WORK/data/trawl.db" | cut -f1)"
touch "$WORK/generated"
fi

PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$TRAWL" --data "$WORK/data" serve --listen "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/api/health" >/dev/null && break; sleep 0.1; done

/usr/bin/python3 - "http://127.0.0.1:$PORT" "$KEY" "$WORK/data/trawl.db" "$IPS" "$REPEAT" "$PID" <<'PY'
import json, random, sqlite3, statistics, sys, time, urllib.parse
import requests
base, key, db, nips, rep, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
s = requests.Session()
s.headers["key"] = key
con = sqlite3.connect(db)
rnd = random.Random(3)
ip = lambda: "10.%d.%d.%d" % ((lambda i: (i >> 16 & 255, i >> 8 & 255, i & 255))(rnd.randrange(nips)))

def timeit(fn, n):
    fn()                                   # warm
    xs = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t) * 1000)
    xs.sort()
    return xs[len(xs) // 2], xs[min(len(xs) - 1, int(len(xs) * 0.95))]

def get(path):
    r = s.get(base + path, timeout=600)
    assert r.status_code == 200, (path, r.status_code, r.text[:200])
    return r

def post(path, body):
    r = s.post(base + path, json=body, timeout=600)
    assert r.status_code == 200, (path, r.status_code, r.text[:200])
    return r

def sql(q, *a):
    return con.execute(q, a).fetchall()

rows = []
def row(name, trawl, raw):
    ratio = ("%.1fx" % (raw[0] / trawl[0])) if raw else "n/a"
    rows.append((name, trawl, raw, ratio))
    print("%-44s trawl p50 %8.2f ms p95 %8.2f | sqlite p50 %s | raw/trawl %s" % (
        name, trawl[0], trawl[1], ("%8.2f ms" % raw[0]) if raw else "     n/a", ratio), flush=True)

row("quick /v2/noise/quick/IP", timeit(lambda: get("/v2/noise/quick/" + ip()), rep),
    timeit(lambda: sql("SELECT count(*), max(time_us) FROM noise_events WHERE src_ip=?", ip()), rep))

def raw_context():
    evs = [json.loads(j) for (j,) in sql("SELECT json FROM noise_events WHERE src_ip=?", ip())]
    return {"ports": sorted({e["dst_port"] for e in evs}), "paths": sorted({e["fields"].get("http_path", "") for e in evs})}
row("context /v2/noise/context/IP", timeit(lambda: get("/v2/noise/context/" + ip()), rep),
    timeit(raw_context, rep))

many = lambda: [ip() for _ in range(1000)]
row("multi-quick 1,000 IPs (POST)", timeit(lambda: post("/v2/noise/multi/quick", {"ips": many()}), max(5, rep // 10)),
    timeit(lambda: sql("SELECT src_ip, max(time_us) FROM noise_events WHERE src_ip IN (%s) GROUP BY src_ip"
                       % ",".join("?" * 1000), *many()), max(5, rep // 10)))

queries = [
    ("tag", 'tags:"Mirai"',
     ["SELECT count(DISTINCT e.src_ip) FROM noise_event_tags t JOIN noise_events e ON e.id = t.event_id WHERE t.tag = 'Mirai'",
      "SELECT e.src_ip FROM noise_event_tags t JOIN noise_events e ON e.id = t.event_id WHERE t.tag = 'Mirai' GROUP BY e.src_ip ORDER BY e.src_ip LIMIT 100"]),
    ("CIDR", "ip:10.1.0.0/16",
     ["SELECT count(DISTINCT e.src_ip) FROM noise_events e WHERE e.src_ip LIKE '10.1.%'",
      "SELECT DISTINCT src_ip FROM noise_events WHERE src_ip LIKE '10.1.%' ORDER BY src_ip LIMIT 100"]),
    ("country", "metadata.country_code:DE", None),     # events carry no geo: no by-hand equivalent
    ("negation", 'tags:"Mirai" -raw_data.scan.port:23',
     ["SELECT count(DISTINCT e.src_ip) FROM noise_event_tags t JOIN noise_events e ON e.id = t.event_id WHERE t.tag = 'Mirai'"
      " AND e.src_ip NOT IN (SELECT src_ip FROM noise_events WHERE dst_port = 23)",
      "SELECT e.src_ip FROM noise_event_tags t JOIN noise_events e ON e.id = t.event_id WHERE t.tag = 'Mirai'"
      " AND e.src_ip NOT IN (SELECT src_ip FROM noise_events WHERE dst_port = 23) GROUP BY e.src_ip ORDER BY e.src_ip LIMIT 100"]),
    ("5 terms", 'tags:"Mirai" raw_data.scan.port:445 -spoofable:true last_seen:30d metadata.country_code:US', None),
]
for name, q, raw in queries:
    enc = urllib.parse.quote(q)
    r = get("/v2/experimental/gnql?size=100&query=" + enc).json()
    n = r["count"]
    t = timeit(lambda: get("/v2/experimental/gnql?size=100&query=" + enc), max(5, rep // 5))
    rt = timeit(lambda: [sql(x) for x in raw], max(5, rep // 5)) if raw else None
    if raw:
        got = sql(raw[0])[0][0]
        assert got >= n, (name, got, n)    # the raw events know no 90-day record window: at least as many
    row("GNQL first page, %s (%d IPs)" % (name, n), t, rt)
    # The same page with quick=true: the matching IPs without their records,
    # to tell the query from the building of 100 full records.
    tq = timeit(lambda: get("/v3/gnql?quick=true&size=100&query=" + enc), max(5, rep // 5))
    row("  quick=true, %s" % name, tq, rt)
for name, q, raw in queries:
    enc = urllib.parse.quote(q)
    t = timeit(lambda: get("/v2/experimental/gnql/stats?count=10&query=" + enc), max(3, rep // 10))
    rt = None
    if raw:
        where = raw[0].split(" FROM ", 1)[1]
        rt = timeit(lambda: [sql("SELECT e.dst_port, count(DISTINCT e.src_ip) FROM " + where + " GROUP BY 1 ORDER BY 2 DESC LIMIT 10"),
                             sql("SELECT x.tag, count(DISTINCT e.src_ip) FROM " + where.replace("WHERE", "JOIN noise_event_tags x ON x.event_id = e.id WHERE", 1)
                                 + " GROUP BY 1 ORDER BY 2 DESC LIMIT 10")], max(3, rep // 10))
    row("GNQL stats, %s" % name, t, rt)
hwm = [l for l in open("/proc/%s/status" % pid) if l.startswith("VmHWM")][0].split()[1]
print("server peak RSS: %.0f MB" % (int(hwm) / 1024))
PY
