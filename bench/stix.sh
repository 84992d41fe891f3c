#!/usr/bin/env bash
# STIX knowledge base figures: import throughput of a generated bundle and of
# MITRE ATT&CK's, a TAXII page of 1,000 objects (p50), full-text search (p50),
# peak RSS of the import and of the server.
# usage: bench/stix.sh [OBJECTS (100000)] [TRAWL_BIN (build/release/trawl)]
# The issue's scale is 1,000,000 objects: bench/stix.sh 1000000 (about 0.5 GB
# of JSON; the import holds the parsed bundle in memory).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
n=${1:-100000}
bin=${2:-$root/build/release/trawl}
[ -x "$bin" ] || { echo "stix.sh: no trawl at $bin (make release)"; exit 1; }
attack="$root/../shared/data/attack/enterprise-attack-entities.json"
work=$(mktemp -d)
srv_pid=
cleanup() { [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "stix.sh: generating a bundle of $n objects"
/usr/bin/python3 - "$n" "$work/big.json" <<'EOF'
import json, sys, uuid
n, out = int(sys.argv[1]), sys.argv[2]
ns = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")
ts = "2024-01-01T00:00:00.000Z"
words = "loader wiper stealer botnet dropper backdoor ransomware banker miner rootkit".split()
with open(out, "w") as f:
    f.write('{"type":"bundle","id":"bundle--%s","objects":[' % uuid.uuid4())
    for i in range(n):
        k = i % 4
        if k == 0:
            o = {"type": "malware", "spec_version": "2.1", "id": "malware--%s" % uuid.UUID(int=i + 1, version=4),
                 "created": ts, "modified": ts, "name": "family%d" % i, "is_family": True,
                 "aliases": ["fam-%d" % i], "description": "a %s seen in campaign %d" % (words[i % 10], i // 10)}
        elif k == 1:
            v = "198.51.%d.%d" % ((i // 256) % 256, i % 256) if i % 8 == 1 else "203.0.%d.%d" % ((i // 256) % 256, i % 256)
            v = "%s/%d" % (v, 32 - (i // 65536) % 8) if i >= 65536 else v
            o = {"type": "ipv4-addr", "spec_version": "2.1",
                 "id": "ipv4-addr--%s" % uuid.uuid5(ns, json.dumps({"value": v}, separators=(",", ":"))), "value": v}
        elif k == 2:
            o = {"type": "indicator", "spec_version": "2.1", "id": "indicator--%s" % uuid.UUID(int=i + 1, version=4),
                 "created": ts, "modified": ts, "name": "indicator %d" % i, "pattern_type": "stix",
                 "pattern": "[file:hashes.MD5 = '%032x']" % i, "valid_from": ts}
        else:
            o = {"type": "relationship", "spec_version": "2.1", "id": "relationship--%s" % uuid.UUID(int=i + 1, version=4),
                 "created": ts, "modified": ts, "relationship_type": "indicates",
                 "source_ref": "indicator--%s" % uuid.UUID(int=i, version=4),
                 "target_ref": "malware--%s" % uuid.UUID(int=i - 2, version=4)}
        f.write((",\n" if i else "\n") + json.dumps(o))
    f.write("\n]}\n")
EOF
ls -l "$work/big.json" | awk '{printf "stix.sh: %.0f MB of JSON\n", $5 / 1e6}'

rate() { # label objects seconds
  awk -v l="$1" -v n="$2" -v s="$3" 'BEGIN { printf "%-28s %9d objects %7.2f s %9.0f objects/s\n", l, n, s, n / s }'
}
timed_import() { # file data -> seconds, max RSS KB
  /usr/bin/time -f "%e %M" -o "$work/time" "$bin" --data "$2" stix import "$1" >/dev/null
  cat "$work/time"
}

read -r secs rss < <(timed_import "$work/big.json" "$work/data")
rate "import generated bundle" "$n" "$secs"
echo "  peak RSS of the import: $((rss / 1024)) MB"
# Peer in the same run: the OASIS schema check alone (python3-jsonschema, what
# a team would script before loading a bundle anywhere), on the first
# objects of the same bundle. trawl's rate above includes storing them.
peer_n=$(( n < 20000 ? n : 20000 ))
peer_secs=$(/usr/bin/python3 - "$work/big.json" "$peer_n" "$root/src/stix/schemas" <<'PEER'
import glob, json, os, sys, time
import jsonschema
path, limit, schemas = sys.argv[1], int(sys.argv[2]), sys.argv[3]
objs = json.load(open(path))["objects"][:limit]
store = {}
for p in glob.glob(os.path.join(schemas, "*", "*.json")):
    s = json.load(open(p)); store[s["$id"]] = s
validators = {}
def validator(t):
    if t not in validators:
        for f in ("sdos", "sros", "observables"):
            p = os.path.join(schemas, f, t + ".json")
            if os.path.exists(p):
                s = json.load(open(p))
                validators[t] = jsonschema.Draft202012Validator(
                    s, resolver=jsonschema.RefResolver(s["$id"], s, store=store))
    return validators[t]
t0 = time.perf_counter()
bad = sum(1 for o in objs for _ in validator(o["type"]).iter_errors(o))
assert bad == 0, bad
print("%.3f" % (time.perf_counter() - t0))
PEER
)
rate "peer: jsonschema check only" "$peer_n" "$peer_secs"
awk -v a="$n" -v as="$secs" -v b="$peer_n" -v bs="$peer_secs" \
  'BEGIN { printf "  ratio: trawl validates and stores %.1fx as many objects/s as the schema check alone\n", (a / as) / (b / bs) }'
if [ -f "$attack" ]; then
  read -r asecs arss < <(timed_import "$attack" "$work/attack")
  rate "import ATT&CK (STIX 2.0)" 2314 "$asecs"
  echo "  peak RSS of the import: $((arss / 1024)) MB"
else
  echo "import ATT&CK: skipped ($attack is missing)"
fi

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" --data "$work/data" serve --anonymous-read --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
srv_pid=$!
/usr/bin/python3 - "$port" "$n" "$srv_pid" <<'EOF'
import json, statistics, sys, time, urllib.request
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
base = "http://127.0.0.1:%d" % port
for _ in range(200):
    try:
        urllib.request.urlopen(base + "/api/health", timeout=1).read(); break
    except Exception:
        time.sleep(0.05)
def get(path, accept="application/taxii+json;version=2.1"):
    t = time.perf_counter()
    body = urllib.request.urlopen(urllib.request.Request(base + path, headers={"Accept": accept}), timeout=60).read()
    return time.perf_counter() - t, body
kb = "/taxii2/kb/collections/83fec7d0-08f3-53e0-bdb8-a9d26fb84a0b/objects/"
times = []
for i in range(15):
    cursor = (i * 7919 * 13) % max(1, n - 1000)
    dt, body = get(kb + "?limit=1000&next=%d" % cursor)
    assert len(json.loads(body)["objects"]) == 1000
    times.append(dt)
print("%-28s %9.1f ms p50 (15 pages at %d objects; goal <= 50 ms)" % ("TAXII page of 1,000", statistics.median(times) * 1e3, n))
times = []
for q in ["family12345", "wiper", "campaign 42", "fam-777", "indicator 31", "banker", "stealer seen", "family9"]:
    for _ in range(3):
        dt, body = get("/api/stix/search?q=" + q.replace(" ", "+") + "&limit=20", "application/json")
        times.append(dt)
print("%-28s %9.1f ms p50 (24 queries; goal <= 20 ms)" % ("full-text search", statistics.median(times) * 1e3))
for line in open("/proc/%s/status" % pid):
    if line.startswith("VmHWM"):
        print("  peak RSS of the server: %d MB" % (int(line.split()[1]) // 1024))
EOF
echo "OpenCTI: not installable from Debian here, and its publishers give no fixed ingestion rate"
echo "  (Filigran, \"OpenCTI platform performances\", 2021: \"it depends\" on workers and Elasticsearch);"
echo "  the same-run peer above is the schema check alone."
