#!/usr/bin/python3
"""Writes generated noise data straight into a trawl database's noise tables,
in bulk, inside SQLite (bench/noise_query.sh's generator).

    noise_gen.py TRAWL_DB IPS EVENTS_PER_IP

IPS source addresses 10.0.0.0 upwards (10.x.y.z, in order), each with about
EVENTS_PER_IP events (1 .. 2*EVENTS_PER_IP-1, mean EVENTS_PER_IP), 1-3 of ten
scanned ports, 0-2 of eight tags, a country, spoofable for 30%, events spread
over up to 30 days in the last 80. The per-IP tables (noise_ips,
noise_ip_values, noise_ip_days) are aggregated from the same generated
events, so the records and the raw event table answer alike. Everything is
derived from the row numbers (no randomness): two runs write the same data.
The tables' indexes are dropped while filling and built again after."""
import sqlite3
import sys
import time

db, nips, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if not 1 <= per <= 400:
    sys.exit("EVENTS_PER_IP is 1 to 400")
con = sqlite3.connect(db, isolation_level=None)
# threads: the index builds' external sorts use the second core; the larger
# cache keeps 100M-event runs (EVENTS_PER_IP=100) from spilling every sort.
con.executescript("PRAGMA synchronous=OFF; PRAGMA cache_size=-%d; PRAGMA temp_store=FILE;"
                  " PRAGMA threads=2;" % (262144 if per <= 10 else 2097152))
# No journal while filling: in WAL mode the one big transaction grew a WAL as
# large as the database (26 GB and counting at 100M events, before the
# checkpoint would have copied it all again). A generator that dies leaves a
# store to delete anyway. WAL again at the end, as trawl keeps it.
con.execute("PRAGMA journal_mode=DELETE")
con.execute("PRAGMA journal_mode=OFF")
day0 = int(time.time()) // 86400
T0 = time.time()


def step(what, sql, *args):
    t = time.time()
    con.execute(sql, args)
    print("  %-28s %6.1f s" % (what, time.time() - t), file=sys.stderr, flush=True)


tables = ("noise_events", "noise_event_tags", "noise_ips", "noise_ip_values", "noise_ip_days")
idx = con.execute("SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"
                  " AND tbl_name IN (%s)" % ",".join("?" * len(tables)), tables).fetchall()
# GNQL's change-log triggers too: the index of a process started later is
# built from the tables, and ten million log rows would only slow this down.
trg = con.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger'"
                  " AND name LIKE 'noise_gnql_%'").fetchall()
con.execute("BEGIN")
for name, _ in idx:
    con.execute('DROP INDEX "%s"' % name)
for name, _ in trg:
    con.execute('DROP TRIGGER "%s"' % name)

# Per-IP attributes from a multiplicative hash of the row number.
step("addresses", """
CREATE TEMP TABLE g AS
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < ?1 - 1),
h(i, h, h2) AS (SELECT i, (i * 2654435761 + 40503) % 1099511627776,
                        (i * 2246822519 + 3266489917) % 1099511627776 FROM c)
SELECT i, '10.' || (i >> 16 & 255) || '.' || (i >> 8 & 255) || '.' || (i & 255) AS ip,
       1 + (h >> 3) % (2 * ?2 - 1) AS nev,
       1 + h % 3 AS nports,
       (h >> 4) % 10 AS p0, (h >> 8) % 10 AS p1, (h >> 12) % 10 AS p2,
       CASE (h >> 16) % 4 WHEN 0 THEN 0 WHEN 3 THEN 2 ELSE 1 END AS ntags,
       (h >> 18) % 8 AS t0, (h >> 21) % 8 AS t1,
       ?3 - (h >> 24) % 80 AS first_day, (h >> 31) % 30 AS span,
       (h >> 36) % 10 < 3 AS spoof, (h2 >> 13) % 10 AS cc, (h >> 20) % 10 AS cl
FROM h""", nips, per, day0)
step("sequence", "CREATE TEMP TABLE seq AS WITH RECURSIVE s(k) AS (SELECT 0 UNION ALL"
     " SELECT k + 1 FROM s WHERE k < 2 * ? - 1) SELECT k FROM s", per)
con.execute("CREATE TEMP TABLE ports(n INTEGER PRIMARY KEY, port INTEGER)")
con.executemany("INSERT INTO temp.ports VALUES(?,?)",
                enumerate([22, 23, 80, 443, 445, 3389, 8080, 5555, 6379, 9200]))
con.execute("CREATE TEMP TABLE tags(n INTEGER PRIMARY KEY, tag TEXT)")
con.executemany("INSERT INTO temp.tags VALUES(?,?)", enumerate(
    ["Mirai", "ZMap Client", ".env Scanner", "SSH Bruteforcer", "Git Config Crawler",
     "SMBGhost Scanner", "RDP Crawler", "Telnet Bruteforcer"]))
con.execute("CREATE TEMP TABLE cc(n INTEGER PRIMARY KEY, code TEXT, name TEXT)")
con.executemany("INSERT INTO temp.cc VALUES(?,?,?)", [(k,) + c for k, c in enumerate(
    [("US", "United States"), ("CN", "China"), ("DE", "Germany"), ("BR", "Brazil"),
     ("RU", "Russia"), ("NL", "Netherlands"), ("IN", "India"), ("FR", "France"),
     ("GB", "United Kingdom"), ("VN", "Vietnam")])])
con.execute("CREATE TEMP TABLE paths(n INTEGER PRIMARY KEY, path TEXT)")
con.executemany("INSERT INTO temp.paths VALUES(?,?)",
                enumerate(["/", "/.env", "/.git/config", "/wp-login.php", "/HNAP1/"]))

# One row per event: id i*1000+k (k < 800), its day within the IP's span.
con.execute("""
CREATE TEMP VIEW ev0 AS
SELECT g.i, g.ip, s.k, g.i * 1000 + s.k AS id,
       min(?1, g.first_day + (s.k * 7 + g.i) % (g.span + 1)) AS day,
       (SELECT port FROM temp.ports WHERE n = CASE s.k % g.nports WHEN 0 THEN g.p0 WHEN 1 THEN g.p1 ELSE g.p2 END) AS port
FROM temp.g g JOIN temp.seq s ON s.k < g.nev""".replace("?1", str(day0)))
con.execute("""
CREATE TEMP VIEW ev AS
SELECT i, ip, id, day, day * 86400000000 + ((i * 7919 + k * 104729) % 86400) * 1000000 AS t,
       port, 'bench-' || ((i + k) % 4) AS sensor,
       CASE WHEN port IN (80, 8080) THEN (SELECT path FROM temp.paths WHERE n = (i + k) % 5) END AS path,
       '198.51.100.' || ((i + k) % 200 + 1) AS dst
FROM temp.ev0""")

step("noise_events", """
INSERT INTO noise_events(id, day, time_us, src_ip, sensor, dst_port, proto, json)
SELECT id, day, t, ip, sensor, port, CASE WHEN path IS NULL THEN 'syn' ELSE 'http' END,
       json_object('time', strftime('%Y-%m-%dT%H:%M:%SZ', t / 1000000, 'unixepoch'), 'sensor', sensor,
                   'src_ip', ip, 'src_port', 40000, 'dst_ip', dst, 'dst_port', port, 'transport', 'tcp',
                   'proto', CASE WHEN path IS NULL THEN 'syn' ELSE 'http' END,
                   'fields', CASE WHEN path IS NULL THEN json_object() ELSE
                       json_object('http_method', 'GET', 'http_path', path, 'http_user_agent', 'curl/8.0') END)
FROM temp.ev""")
step("noise_event_tags", """
INSERT OR IGNORE INTO noise_event_tags(event_id, tag)
SELECT e.id, t.tag FROM noise_events e JOIN temp.g g ON g.i = e.id / 1000
     JOIN temp.tags t ON (g.ntags >= 1 AND t.n = g.t0) OR (g.ntags = 2 AND t.n = g.t1)""")
step("noise_ips", """
INSERT INTO noise_ips(ip, family, first_seen, last_seen, events, spoofable, classification,
                      country, country_code, asn, organization)
SELECT g.ip, 4, min(e.time_us), max(e.time_us), count(*), g.spoof,
       CASE WHEN g.ntags > 0 AND g.cl < 7 THEN 'malicious' WHEN g.cl % 3 = 1 THEN 'benign' ELSE 'unknown' END,
       c.name, c.code, CAST(64500 + g.i % 500 AS TEXT), 'Org ' || (g.i % 500)
FROM noise_events e JOIN temp.g g ON g.i = e.id / 1000 JOIN temp.cc c ON c.n = g.cc
GROUP BY e.id / 1000""")
step("noise_ip_values", """
INSERT INTO noise_ip_values(ip, kind, value, port, n, first_seen, last_seen)
SELECT src_ip, 'scan', 'TCP', dst_port, count(*), min(time_us), max(time_us) FROM noise_events GROUP BY id / 1000, dst_port
UNION ALL
SELECT src_ip, 'sensor', sensor, 0, count(*), min(time_us), max(time_us) FROM noise_events GROUP BY id / 1000, sensor
UNION ALL
SELECT src_ip, 'path', json_extract(json, '$.fields.http_path'), 0, count(*), min(time_us), max(time_us)
  FROM noise_events WHERE proto = 'http' GROUP BY id / 1000, 3
UNION ALL
SELECT src_ip, 'useragent', 'curl/8.0', 0, count(*), min(time_us), max(time_us)
  FROM noise_events WHERE proto = 'http' GROUP BY id / 1000
UNION ALL
SELECT e.src_ip, 'tag', t.tag, 0, count(*), min(e.time_us), max(e.time_us)
  FROM noise_event_tags t JOIN noise_events e ON e.id = t.event_id GROUP BY e.id / 1000, t.tag""")
step("noise_ip_days", """
INSERT INTO noise_ip_days(ip, day, n) SELECT src_ip, day, count(*) FROM noise_events GROUP BY id / 1000, day""")
t = time.time()
for _, sql in idx + trg:
    con.execute(sql)
print("  %-28s %6.1f s" % ("indexes", time.time() - t), file=sys.stderr)
con.execute("COMMIT")
# No ANALYZE: a store that trawl filled has no statistics either.
con.execute("PRAGMA journal_mode=WAL")
n = con.execute("SELECT count(*) FROM noise_events").fetchone()[0]
print("generated %d IPs, %d events in %.0f s" % (nips, n, time.time() - T0))
