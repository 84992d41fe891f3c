#!/bin/bash
# bench/startup.sh: what a one-shot `trawl` process costs before it does any
# work, and where that goes (issue 10: `trawl noise ip` as a process).
#
#   bench/startup.sh               30 runs of each line, a 20,000-IP noise store
#   RUNS=N IPS=N bench/startup.sh  the knobs; KEEP=DIR keeps the store in DIR
#
# Lines, interleaved run by run (same load for all), each the median wall and
# CPU (user+sys, from wait4) with [min-max]:
#   version        trawl --version: process start only
#   version-now    LD_BIND_NOW=1 trawl --version: every symbol bound at start
#                  (the lazy default against -z now, without relinking)
#   noise-ip       trawl noise ip IP: start + opening the store + the lookup
#   empty          an empty C program: exec + the C library
#   light-libs     the same empty program linked with trawl's libraries but
#                  the document/malware ones (gmime, gio, gobject, glib, gsf,
#                  libxml2, libpng, libclamav; poppler-glib is not linked:
#                  src/report/text.c opens it on the first PDF)
#   all-libs       the empty program linked with every library trawl links
# The empty programs show what loading the libraries costs on its own. Also
# the dynamic loader's own statistics (LD_DEBUG=statistics) for --version.
# $TRAWL_BIN picks the binary (default build/release/trawl).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TRAWL=${TRAWL_BIN:-$HERE/../build/release/trawl}
[ -x "$TRAWL" ] || { echo "no trawl binary at $TRAWL (make release)" >&2; exit 1; }
RUNS=${RUNS:-30}
IPS=${IPS:-20000}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
WORK=${KEEP:-$TMP/work}
mkdir -p "$WORK"

if [ ! -f "$WORK/generated" ]; then
    "$TRAWL" --data "$WORK/data" noise retention --days 90 >/dev/null   # makes the tables
    /usr/bin/python3 "$HERE/noise_gen.py" "$WORK/data/trawl.db" "$IPS" 10 >"$WORK/generated"
fi
IP=$(/usr/bin/python3 -c '
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for t in ("noise_ips", "noise_ip"):
    try:
        r = db.execute("select ip from %s limit 1 offset 1000" % t).fetchone()
    except sqlite3.Error:
        continue
    if r:
        print(r[0]); break
' "$WORK/data/trawl.db")
[ -n "$IP" ] || IP=10.0.3.232
"$TRAWL" --data "$WORK/data" noise ip "$IP" >/dev/null || {
    echo "trawl noise ip $IP failed on the generated store" >&2; exit 1; }

# The empty programs, linked against trawl's own NEEDED libraries.
echo 'int main(void) { return 0; }' >"$TMP/empty.c"
HEAVY='poppler-glib|cairo|gmime|gio-2|gobject|glib-2|gsf|xml2|png16|clamav'
ALL=$(readelf -d "$TRAWL" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' |
      grep -vE '^(libc|libm|libgcc_s|libstdc\+\+)\.so' | sed 's/^/-l:/' | tr '\n' ' ')
LIGHT=$(echo "$ALL" | tr ' ' '\n' | grep -vE "$HEAVY" | tr '\n' ' ')
c++ -O2 -Wl,--no-as-needed -o "$TMP/empty" -x c "$TMP/empty.c"
# shellcheck disable=SC2086
c++ -O2 -Wl,--no-as-needed -o "$TMP/light" -x c "$TMP/empty.c" $LIGHT
# shellcheck disable=SC2086
c++ -O2 -Wl,--no-as-needed -o "$TMP/all" -x c "$TMP/empty.c" $ALL

echo "binary: $TRAWL ($(ldd "$TRAWL" | wc -l) shared objects loaded)"
echo "libraries loaded: empty $(ldd "$TMP/empty" | wc -l), light-libs $(ldd "$TMP/light" | wc -l)," \
     "all-libs $(ldd "$TMP/all" | wc -l)"
echo "dynamic loader, trawl --version:"
LD_DEBUG=statistics "$TRAWL" --version 2>&1 >/dev/null | grep -E 'total startup|relocation:|number of relocations:' |
    sed 's/^ *[0-9]*: */  /' | head -3
echo "store: $(cat "$WORK/generated"); noise ip $IP"
echo "load before: $(uptime)"
/usr/bin/python3 - "$RUNS" "$TRAWL" "$WORK/data" "$IP" "$TMP" <<'PY'
import os, statistics, subprocess, sys, time
runs, trawl, data, ip, tmp = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
lines = [
    ("version", [trawl, "--version"], {}),
    ("version-now", [trawl, "--version"], {"LD_BIND_NOW": "1"}),
    ("noise-ip", [trawl, "--data", data, "noise", "ip", ip], {}),
    ("empty", [tmp + "/empty"], {}),
    ("light-libs", [tmp + "/light"], {}),
    ("all-libs", [tmp + "/all"], {}),
]
res = {name: ([], []) for name, _, _ in lines}
null = os.open(os.devnull, os.O_WRONLY)
for _ in range(runs):
    for name, argv, env in lines:
        e = dict(os.environ, **env)
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, e, file_actions=[
            (os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)])
        _, status, ru = os.wait4(pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit("%s failed" % " ".join(argv))
        res[name][0].append(wall * 1e3)
        res[name][1].append((ru.ru_utime + ru.ru_stime) * 1e3)
print("%-12s %5s  %-26s %-26s" % ("line", "runs", "wall ms median [min-max]", "cpu ms median [min-max]"))
for name, _, _ in lines:
    w, c = res[name]
    print("%-12s %5d  %6.1f [%5.1f-%6.1f]       %6.1f [%5.1f-%6.1f]" % (
        name, len(w), statistics.median(w), min(w), max(w), statistics.median(c), min(c), max(c)))
PY
echo "load after: $(uptime)"
