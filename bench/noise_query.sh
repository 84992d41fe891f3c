#!/bin/bash
# bench/noise_query.sh [IPS] [EVENTS_PER_IP] [REPEAT]
#
# GreyNoise-API and GNQL latency on generated data, against the same
# questions asked of the raw event table with plain SQLite (what a small team
# would do by hand), in the same run on the same database file; then
# `trawl noise ip` as a CLI (warm; one process per address, and many addresses
# in one process) against the sqlite3 CLI, and noise ingest
# in events/s against plain inserts of the same events.
#
# Sizes: IPS source addresses (default 20,000) in 10.0.0.0/8 with about
# EVENTS_PER_IP events each (default 10). FULL=1 sets 1,000,000 IPs (the
# issue's IP count) with 10 events each (10M events; the issue's 100M events
# need ~40 GB free and about 2 hours here: pass EVENTS_PER_IP=100 for them). The
# generator (bench/noise_gen.py) writes events, their tags, per-IP records,
# per-IP sets and events per day straight into the noise tables inside SQLite
# (about 100k events/s); the records are aggregated from the same events, so
# both sides answer alike. KEEP=DIR generates into DIR once and reuses it on
# later runs (delete DIR when done); otherwise a temporary directory.
#
# Measured through a running `trawl serve` (release build) over one
# keep-alive HTTP connection, so trawl's figures include HTTP and JSON; the
# SQLite figures are in-process (Python's sqlite3), warm, which favours them.
# Each figure is the median (p50) and p95 of REPEAT runs (default 30; multi,
# GNQL and stats fewer, at least 5; the SQLite side of GNQL and stats 3),
# with the server's CPU time per request. Also the server's peak RSS and the
# time the server takes at start to build GNQL's in-memory index (its log line) and the first GNQL request. INGEST=N events per ingest run (default 20,000; 3 runs).
# $TRAWL_BIN picks the binary (default build/release/trawl).
set -euo pipefail
if [ "${FULL:-0}" = 1 ]; then
    IPS=${1:-1000000}
    PER=${2:-10}
else
    IPS=${1:-20000}
    PER=${2:-10}
fi
REPEAT=${3:-30}
INGEST=${INGEST:-20000}
HERE=$(cd "$(dirname "$0")" && pwd)
TRAWL=${TRAWL_BIN:-$HERE/../build/release/trawl}
[ -x "$TRAWL" ] || { echo "no trawl binary at $TRAWL (make release)" >&2; exit 1; }
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"; rm -rf "$WORK"; WORK=$KEEP
    cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; }
fi
trap cleanup EXIT
echo "load: $(uptime)"

if [ -f "$WORK/generated" ]; then
    KEY=$(cat "$WORK/key")
    echo "reusing $WORK: $(cat "$WORK/generated")"
else
    "$TRAWL" --data "$WORK/data" noise retention --days 90 >/dev/null    # makes the tables
    KEY=$("$TRAWL" --data "$WORK/data" key add --role reader bench 2>/dev/null)
    echo "$KEY" >"$WORK/key"
    /usr/bin/python3 "$HERE/noise_gen.py" "$WORK/data/trawl.db" "$IPS" "$PER" | tee "$WORK/generated"
fi
IPS=$(awk '/^generated/ {print $2}' "$WORK/generated")
echo "database: $(du -sh "$WORK/data" | cut -f1), $IPS generated IPs"

PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# --kb-sync 0: the knowledge-base link sync's first pass over a fresh 1M-IP
# store takes minutes of CPU (bench/kb_sync.sh measures it); the queries are
# measured here without it competing for the cores.
"$TRAWL" --data "$WORK/data" serve --kb-sync 0 --listen "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/api/health" >/dev/null && break; sleep 0.1; done
# The server builds GNQL's in-memory index as it starts (a thread of its
# own); the questions are asked once it is ready, as an analyst's would be.
for _ in $(seq 1200); do grep -q "GNQL index ready" "$WORK/serve.log" && break; sleep 0.5; done
grep -o "GNQL index ready.*" "$WORK/serve.log" | sed 's/^/server start: /' || echo "server start: no GNQL index line in the log (an older binary: the first request builds it)"

/usr/bin/python3 - "http://127.0.0.1:$PORT" "$KEY" "$WORK/data/trawl.db" "$IPS" "$REPEAT" "$PID" <<'PY'
import json, os, random, sqlite3, statistics, sys, time, urllib.parse
import requests
base, key, db, nips, rep, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
s = requests.Session()
s.headers["key"] = key
con = sqlite3.connect(db)
rnd = random.Random(3)
ip = lambda: "10.%d.%d.%d" % ((lambda i: (i >> 16 & 255, i >> 8 & 255, i & 255))(rnd.randrange(nips)))

def cpu(p):
    # CPU time of all the process's threads, in ms (schedstat: ns)
    t = 0
    for task in os.listdir("/proc/%s/task" % p):
        try:
            t += int(open("/proc/%s/task/%s/schedstat" % (p, task)).read().split()[0])
        except OSError:
            pass                                # a thread that just ended
    return t / 1e6

def timeit(fn, n, proc=None):
    fn()                                   # warm
    xs = []
    c0 = cpu(proc if proc else os.getpid())
    for _ in range(n):
        t = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t) * 1000)
    c1 = cpu(proc if proc else os.getpid())
    xs.sort()
    return xs[len(xs) // 2], xs[min(len(xs) - 1, int(len(xs) * 0.95))], (c1 - c0) / n

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

RAW_REP = 3     # SQLite over 10M raw events takes seconds a question: 3 runs
rows = []
def row(name, trawl, raw):
    ratio = ("%.1fx" % (raw[0] / trawl[0])) if raw else "n/a"
    rows.append((name, trawl, raw, ratio))
    print("%-40s trawl p50 %8.2f p95 %8.2f cpu %6.2f ms | sqlite p50 %s | sqlite/trawl %s" % (
        name, trawl[0], trawl[1], trawl[2], ("%8.2f p95 %8.2f ms" % raw[:2]) if raw else "     n/a", ratio), flush=True)

# The first GNQL request, timed on its own: it builds the in-memory index
# when the server did not at start (binaries before the start-up build).
t0, c0 = time.perf_counter(), cpu(pid)
get("/v3/gnql?quick=true&size=1&query=" + urllib.parse.quote('tags:"Mirai"'))
print("first GNQL request: %.2f s wall, %.2f s server CPU" % (
    time.perf_counter() - t0, (cpu(pid) - c0) / 1000), flush=True)

row("quick /v2/noise/quick/IP", timeit(lambda: get("/v2/noise/quick/" + ip()), rep, pid),
    timeit(lambda: sql("SELECT count(*), max(time_us) FROM noise_events WHERE src_ip=?", ip()), rep))

def raw_context():
    evs = [json.loads(j) for (j,) in sql("SELECT json FROM noise_events WHERE src_ip=?", ip())]
    return {"ports": sorted({e["dst_port"] for e in evs}), "paths": sorted({e["fields"].get("http_path", "") for e in evs})}
row("context /v2/noise/context/IP", timeit(lambda: get("/v2/noise/context/" + ip()), rep, pid),
    timeit(raw_context, rep))

many = lambda: [ip() for _ in range(1000)]
row("multi-quick 1,000 IPs (POST)", timeit(lambda: post("/v2/noise/multi/quick", {"ips": many()}), max(5, rep // 5), pid),
    timeit(lambda: sql("SELECT src_ip, max(time_us) FROM noise_events WHERE src_ip IN (%s) GROUP BY src_ip"
                       % ",".join("?" * 1000), *many()), max(5, rep // 5)))

queries = [
    ("tag", 'tags:"Mirai"',
     ["SELECT count(DISTINCT e.src_ip) FROM noise_event_tags t JOIN noise_events e ON e.id = t.event_id WHERE t.tag = 'Mirai'",
      "SELECT e.src_ip FROM noise_event_tags t JOIN noise_events e ON e.id = t.event_id WHERE t.tag = 'Mirai' GROUP BY e.src_ip ORDER BY e.src_ip LIMIT 100"]),
    ("CIDR", "ip:10.0.0.0/18",
     ["SELECT count(DISTINCT e.src_ip) FROM noise_events e WHERE e.src_ip >= '10.0.' AND e.src_ip < '10.0/'"
      " AND CAST(substr(e.src_ip, 6, instr(substr(e.src_ip, 6), '.') - 1) AS INTEGER) < 64",
      "SELECT DISTINCT src_ip FROM noise_events e WHERE e.src_ip >= '10.0.' AND e.src_ip < '10.0/'"
      " AND CAST(substr(e.src_ip, 6, instr(substr(e.src_ip, 6), '.') - 1) AS INTEGER) < 64 ORDER BY src_ip LIMIT 100"]),
    ("country", "metadata.country_code:DE", None),     # events carry no geo: no by-hand equivalent
    ("negation", 'tags:"Mirai" -raw_data.scan.port:23',
     ["SELECT count(DISTINCT e.src_ip) FROM noise_event_tags t JOIN noise_events e ON e.id = t.event_id WHERE t.tag = 'Mirai'"
      " AND e.src_ip NOT IN (SELECT src_ip FROM noise_events WHERE dst_port = 23)",
      "SELECT e.src_ip FROM noise_event_tags t JOIN noise_events e ON e.id = t.event_id WHERE t.tag = 'Mirai'"
      " AND e.src_ip NOT IN (SELECT src_ip FROM noise_events WHERE dst_port = 23) GROUP BY e.src_ip ORDER BY e.src_ip LIMIT 100"]),
    ("5 terms", 'tags:"Mirai" raw_data.scan.port:445 -spoofable:true last_seen:30d metadata.country_code:BR', None),
]
for name, q, raw in queries:
    enc = urllib.parse.quote(q)
    r = get("/v2/experimental/gnql?size=100&query=" + enc).json()
    n = r["count"]
    t = timeit(lambda: get("/v2/experimental/gnql?size=100&query=" + enc), max(5, rep // 5), pid)
    rt = timeit(lambda: [sql(x) for x in raw], RAW_REP) if raw else None
    if raw:
        got = sql(raw[0])[0][0]
        assert got >= n, (name, got, n)    # the raw events know no 90-day record window: at least as many
    row("GNQL first page, %s (%d IPs)" % (name, n), t, rt)
    # The same page with quick=true: the matching IPs without their records,
    # to tell the query from the building of 100 full records.
    tq = timeit(lambda: get("/v3/gnql?quick=true&size=100&query=" + enc), max(5, rep // 5), pid)
    row("  quick=true, %s" % name, tq, rt)
for name, q, raw in queries:
    enc = urllib.parse.quote(q)
    t = timeit(lambda: get("/v2/experimental/gnql/stats?count=10&query=" + enc), max(5, rep // 10), pid)
    rt = None
    if raw:
        where = raw[0].split(" FROM ", 1)[1]
        rt = timeit(lambda: [sql("SELECT e.dst_port, count(DISTINCT e.src_ip) FROM " + where + " GROUP BY 1 ORDER BY 2 DESC LIMIT 10"),
                             sql("SELECT x.tag, count(DISTINCT e.src_ip) FROM " + where.replace("WHERE", "JOIN noise_event_tags x ON x.event_id = e.id WHERE", 1)
                                 + " GROUP BY 1 ORDER BY 2 DESC LIMIT 10")], RAW_REP)
    row("GNQL stats, %s" % name, t, rt)
st = {l.split(":")[0]: l.split()[1] for l in open("/proc/%s/status" % pid) if l.startswith(("VmHWM", "RssAnon", "RssFile"))}
print("server peak RSS: %.0f MB (now: %.0f MB anonymous, %.0f MB mapped file)"
      % (int(st["VmHWM"]) / 1024, int(st["RssAnon"]) / 1024, int(st["RssFile"]) / 1024))
PY

# The same single-IP lookups from a C client: curl fetching REPEAT random
# addresses over one keep-alive connection, time_total per transfer. The
# Python client above adds its own ~0.5 ms per request; this is what a
# SIEM enrichment in C, Go or Java would see. Context twice over the same
# addresses: the SQLite questions above scanned the event table and pushed
# the per-IP tables context reads out of the page cache (cold), then warm.
for kind in quick context context-again; do
    path=${kind%-again}
    /usr/bin/python3 "$HERE/noise_curl.py" urls "$IPS" "$REPEAT" "$PORT" "$path" 7 >"$WORK/curl.$kind"
    curl -s -H "key: $KEY" -K "$WORK/curl.$kind" -w '%{http_code} %{time_total}\n' > "$WORK/curl.$kind.out"
    /usr/bin/python3 "$HERE/noise_curl.py" summary "$WORK/curl.$kind.out" "$kind /v2/noise/$path/IP, C client"
done
kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true
PID=

# `trawl noise ip` as a user runs it: one process per lookup, page cache
# warm; against the sqlite3 CLI asking the raw events of the same address.
/usr/bin/python3 - "$TRAWL" "$WORK/data" "$IPS" "$REPEAT" <<'PY'
import os, random, subprocess, sys, time
trawl, data, nips, rep = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(5)
def ip():
    i = rnd.randrange(nips)
    return "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255)
def run(argv):
    t = time.perf_counter()
    c0 = os.times()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    c1 = os.times()
    return (time.perf_counter() - t) * 1000, (c1.children_user + c1.children_system - c0.children_user - c0.children_system) * 1000
def stats(mk):
    run(mk())
    xs = sorted(run(mk()) for _ in range(rep))
    w = sorted(x[0] for x in xs)
    return w[len(w) // 2], w[min(len(w) - 1, int(len(w) * 0.95))], sum(x[1] for x in xs) / len(xs)
v = stats(lambda: [trawl, "--version"])
print("%-40s p50 %8.2f p95 %8.2f cpu %6.2f ms (process start, no lookup)" % ("CLI trawl --version (baseline)", *v))
t = stats(lambda: [trawl, "--data", data, "noise", "ip", "--json", ip()])
r = stats(lambda: ["sqlite3", data + "/trawl.db", "SELECT count(*), min(time_us), max(time_us), group_concat(DISTINCT dst_port)"
                   " FROM noise_events WHERE src_ip = '%s'" % ip()])
print("%-40s trawl p50 %8.2f p95 %8.2f cpu %6.2f ms | sqlite3 CLI p50 %8.2f p95 %8.2f ms | sqlite/trawl %.1fx"
      % ("CLI trawl noise ip --json (process)", t[0], t[1], t[2], r[0], r[1], r[0] / t[0]))
# Many addresses in one process (`trawl noise ip -`, one per line on stdin,
# as a script checks a log): the lookup's own cost is the slope between 1,000
# and 10,000 random addresses; against the sqlite3 CLI given the same
# 10,000 raw-event queries in one process.
def batch(argv, n, stdin):
    rnd.seed(n)
    text = "".join(stdin(ip()) for _ in range(n))
    ws = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(argv, input=text.encode(), check=True, stdout=subprocess.DEVNULL)
        ws.append((time.perf_counter() - t) * 1000)
    return sorted(ws)[1]
tq = lambda a: a + "\n"
sq = lambda a: ("SELECT count(*), min(time_us), max(time_us), group_concat(DISTINCT dst_port)"
                " FROM noise_events WHERE src_ip = '%s';\n" % a)
t1, t10 = batch([trawl, "--data", data, "noise", "ip", "--json", "-"], 1000, tq), \
          batch([trawl, "--data", data, "noise", "ip", "--json", "-"], 10000, tq)
s1, s10 = batch(["sqlite3", data + "/trawl.db"], 1000, sq), batch(["sqlite3", data + "/trawl.db"], 10000, sq)
per_t, per_s = (t10 - t1) / 9000, (s10 - s1) / 9000
print("%-40s trawl %8.3f ms per address (1,000: %.0f ms, 10,000: %.0f ms) | sqlite3 CLI %8.3f ms"
      " per query (%.0f / %.0f ms) | sqlite/trawl %.1fx (median of 3)"
      % ("CLI trawl noise ip - (one process)", per_t, t1, t10, per_s, s1, s10, per_s / per_t))
PY

# Ingest: INGEST generated events (half from known addresses, half new,
# 10% with an HTTP payload) through `trawl noise import` (judged by the
# default tags, stored, folded into the per-IP records), 3 runs; against
# plain inserts of the same lines into a bare event table (no judging, no
# records) in one transaction.
/usr/bin/python3 "$HERE/noise_ingest_gen.py" "$INGEST" "$IPS" "$WORK/ingest" 3
for run in 0 1 2; do
    t0=$(date +%s.%N)
    c0=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
    "$TRAWL" --data "$WORK/data" noise import --format jsonl "$WORK/ingest/$run.jsonl" >/dev/null
    t1=$(date +%s.%N)
    c1=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
    p0=$(date +%s.%N)
    /usr/bin/python3 - "$WORK/ingest/$run.jsonl" "$WORK/ingest/plain.db" <<'PY'
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[2])
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA synchronous=NORMAL")
con.execute("CREATE TABLE IF NOT EXISTS ev(id INTEGER PRIMARY KEY, time TEXT, src_ip TEXT, dst_port INTEGER, json TEXT)")
con.execute("CREATE INDEX IF NOT EXISTS ev_ip ON ev(src_ip, time)")
with con:
    con.executemany("INSERT INTO ev(time, src_ip, dst_port, json) VALUES(?,?,?,?)",
                    ((e["time"], e["src_ip"], e["dst_port"], l) for l in open(sys.argv[1]) for e in [json.loads(l)]))
PY
    p1=$(date +%s.%N)
    /usr/bin/python3 -c "import os, sys; n, t, c, p = int(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2]), (int(sys.argv[5]) - int(sys.argv[4])) / os.sysconf('SC_CLK_TCK'), float(sys.argv[7]) - float(sys.argv[6]); print('ingest run %s: trawl noise import %d events in %.2f s (cpu %.2f s): %.0f events/s | plain sqlite inserts %.0f events/s | sqlite/trawl %.1fx' % (sys.argv[8], n, t, c, n / t, n / p, t / p))" \
        "$INGEST" "$t0" "$t1" "$c0" "$c1" "$p0" "$p1" "$run"
done
