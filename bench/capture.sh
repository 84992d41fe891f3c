#!/bin/bash
# bench/capture.sh: offline capture import speed (issue 10), against tcpdump
# and tshark on the same generated capture in the same run.
#
#   bench/capture.sh            100 MB capture, 100k sources, 3 runs
#   FULL=1 bench/capture.sh     1100 MB capture, 1.2M sources
#   RUNS=5 STORE=0 ...          runs per tool; STORE=0 skips the store import
#   TSHARK_RUNS=N               tshark runs (default RUNS; 1 with FULL=1: tshark
#                               needs ~2 GB and 2 CPU-minutes per 100 MB here)
#   TSHARK_MEM_GB=N             tshark's address-space limit (default 8): on
#                               the full capture it may run out, which is
#                               reported as such and not timed
#
# The capture (bench/pcap_gen.c: SYN scan bursts shaped like ZMap, Masscan,
# Mirai, Nmap and Linux clients from distinct 10.x sources to 198.51.100.0/24
# and 203.0.113.0/24, and one completed HTTP session in 50) is written once
# to $BENCH_DIR (default /work/bench-data/capture, else a temporary directory)
# and kept for the next run. Per run and tool: wall seconds, CPU (user+sys),
# max RSS, from /usr/bin/time. Lines:
#   tcpdump   tcpdump -r FILE -w /dev/null  (issue 10's peer: the floor of reading
#             the file; it copies each record out again and decodes nothing)
#   tcpdump-nn  tcpdump -nn -q -r FILE > /dev/null  (decodes every packet's
#             link, IP and TCP headers and prints one text line each: the
#             work closest to trawl's decode that tcpdump does, though it
#             also formats text; TCPDUMP_NN_RUNS runs, default 1 (50 s of CPU
#             per 100 MB here); 0 leaves it out)
#   tshark    tshark -r FILE -T fields -e ip.src -e tcp.dstport
#   decode    trawl sensor import --count-only FILE   (read, decode, fingerprint,
#             reassemble, aggregate SYNs per (source, port): everything but storing)
#   store     trawl noise import --format pcap FILE   (decode + the noise store's
#             ingest, which is the noise module's stage; STORE_RUNS, default 1)
# $TRAWL_BIN picks the binary (default build/release/trawl).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TRAWL=${TRAWL_BIN:-$HERE/../build/release/trawl}
[ -x "$TRAWL" ] || { echo "no trawl binary at $TRAWL (make release)" >&2; exit 1; }
for t in tcpdump tshark cc /usr/bin/time; do
    command -v "$t" >/dev/null || { echo "capture.sh needs $t" >&2; exit 1; }
done
if [ "${FULL:-0}" = 1 ]; then MB=1100; SRC=1200000; else MB=100; SRC=100000; fi
RUNS=${RUNS:-3}
if [ "${FULL:-0}" = 1 ]; then TSHARK_RUNS=${TSHARK_RUNS:-1}; else TSHARK_RUNS=${TSHARK_RUNS:-$RUNS}; fi
TSHARK_MEM_GB=${TSHARK_MEM_GB:-8}
STORE=${STORE:-1}
TCPDUMP_NN_RUNS=${TCPDUMP_NN_RUNS:-1}
STORE_RUNS=${STORE_RUNS:-1}
DIR=${BENCH_DIR:-/work/bench-data/capture}
if ! mkdir -p "$DIR" 2>/dev/null || [ ! -w "$DIR" ]; then DIR=$(mktemp -d); fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cc -O2 -Wall -Wextra -o "$TMP/pcap_gen" "$HERE/pcap_gen.c"
# Named by the generator's own checksum: a changed generator makes a new capture.
GEN=$(md5sum "$HERE/pcap_gen.c" | cut -c1-8)
CAP="$DIR/cap-${MB}m-${SRC}-${GEN}.pcap"
[ -s "$CAP" ] || "$TMP/pcap_gen" "$CAP" "$MB" "$SRC"
SIZE=$(stat -c %s "$CAP")
echo "capture: $CAP ($((SIZE / 1000000)) MB)"
echo "load before: $(uptime)"

# One measured command: "label wall cpu rss_kb" into $TMP/times.
measure() {
    local label=$1; shift
    /usr/bin/time -f "$label %e %U %S %M" -o "$TMP/t" "$@" >"$TMP/out" 2>"$TMP/err" || {
        echo "$label failed:" >&2; cat "$TMP/err" >&2; exit 1; }
    awk '{printf "%s %s %.2f %s\n", $1, $2, $3 + $4, $5}' "$TMP/t" >>"$TMP/times"
}

for r in $(seq "$RUNS"); do
    measure tcpdump tcpdump -r "$CAP" -w /dev/null
    if [ "$r" -le "$TCPDUMP_NN_RUNS" ]; then
        measure tcpdump-nn sh -c 'exec tcpdump -nn -q -r "$1" >/dev/null' sh "$CAP"
    fi
    if [ "$r" -le "$TSHARK_RUNS" ]; then
        if ! (ulimit -v $((TSHARK_MEM_GB << 20)); measure tshark tshark -r "$CAP" -T fields \
                -e ip.src -e tcp.dstport) 2>"$TMP/tshark.err"; then
            echo "tshark did not finish within ${TSHARK_MEM_GB} GB of address space:" \
                "$(tail -c 300 "$TMP/tshark.err")"
        fi
    fi
    measure decode "$TRAWL" sensor import --count-only "$CAP"
    [ "$r" = 1 ] && cp "$TMP/err" "$TMP/decode.txt"
done
if [ "$STORE" = 1 ]; then
    for r in $(seq "$STORE_RUNS"); do
        rm -rf "$TMP/data"
        measure store "$TRAWL" --data "$TMP/data" noise import --format pcap "$CAP"
        cp "$TMP/out" "$TMP/store.txt"
    done
fi
echo "load after: $(uptime)"
echo "trawl decode: $(cat "$TMP/decode.txt")"
[ -f "$TMP/store.txt" ] && echo "trawl store: $(cat "$TMP/store.txt")"

/usr/bin/python3 - "$TMP/times" "$SIZE" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, wall, cpu, rss = line.split()
    rows.setdefault(label, []).append((float(wall), float(cpu), int(rss)))
size = int(sys.argv[2]) / 1e6
med = {}
print("%-10s %4s  %-24s %-24s %8s %10s" % ("tool", "runs", "wall s median [min-max]",
                                         "cpu s median [min-max]", "MB/s", "max RSS"))
for label in ("tcpdump", "tcpdump-nn", "tshark", "decode", "store"):
    if label not in rows:
        continue
    r = rows[label]
    w = [x[0] for x in r]; c = [x[1] for x in r]
    med[label] = (statistics.median(w), statistics.median(c))
    print("%-10s %4d  %6.2f [%.2f-%.2f]%8s %6.2f [%.2f-%.2f]%8s %8.0f %7.0f MB" % (
        label, len(r), med[label][0], min(w), max(w), "", med[label][1], min(c), max(c), "",
        size / max(med[label][0], 1e-9), max(x[2] for x in r) / 1024))
for peer in ("tcpdump", "tcpdump-nn", "tshark"):
    if "decode" in med and peer in med:
        print("decode rate / %s rate: %.2fx wall, %.2fx cpu" % (
            peer, med[peer][0] / med["decode"][0], med[peer][1] / max(med["decode"][1], 1e-9)))
PY
