#!/usr/bin/python3
"""Single-IP lookups from curl for the noise benchmarks (bench/noise_query.sh,
bench/noise_lookup.sh): curl fetches many addresses over one keep-alive
connection and writes each transfer's time_total.

    noise_curl.py urls IPS N PORT PATH SEED   curl config: N+1 random generated
                                              addresses (10.x of IPS) at
                                              /v2/noise/PATH/IP
    noise_curl.py summary OUT LABEL           p50/p95/max of curl's
                                              '%{http_code} %{time_total}' lines,
                                              the first (which opens the
                                              connection) left out"""
import random
import sys

if sys.argv[1] == "urls":
    nips, n, port, path, seed = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])
    rnd = random.Random(seed)
    for _ in range(n + 1):
        i = rnd.randrange(nips)
        print('url = "http://127.0.0.1:%s/v2/noise/%s/10.%d.%d.%d"' % (port, path, i >> 16 & 255, i >> 8 & 255, i & 255))
        print('output = "/dev/null"')
elif sys.argv[1] == "summary":
    rows = [line.split() for line in open(sys.argv[2])][1:]
    assert rows and all(c == "200" for c, _ in rows), rows[:3]
    xs = sorted(float(t) * 1000 for _, t in rows)
    print("%-40s curl p50 %7.3f p95 %7.3f max %7.2f ms (%d requests, one connection)" % (
        sys.argv[3], xs[len(xs) // 2], xs[min(len(xs) - 1, int(len(xs) * 0.95))], xs[-1], len(xs)))
else:
    sys.exit("usage: noise_curl.py urls IPS N PORT PATH SEED | summary OUT LABEL")
