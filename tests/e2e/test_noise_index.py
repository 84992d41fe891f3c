"""GNQL's in-memory index inside a running server: it follows events another
process ingests while the server runs, and a restarted server answers as
before. The CLI answers GNQL through SQL over the tables (no index), so
each server answer is checked against the CLI's on the same store."""
import json
import urllib.parse

import pytest
import requests

from test_noise_cli import write_jsonl
from test_noise_tags import event, http, syn

QUERIES = ['tags:".env Scanner"', "ip:203.0.113.0/24", "-tags:*Scanner*",
           "raw_data.scan.port:[20 TO 30] OR raw_data.web.paths:/.git*",
           "classification:malicious spoofable:false", "last_seen:1d", "sensor:test-*",
           "metadata.tor:true"]


def batch1():
    return [http("203.0.113.10", "/.env", "curl/8.0"),
            http("203.0.113.11", "/.git/config", "python-requests/2.31.0", port=8080),
            syn("203.0.113.12", 23, ip_id=54321, tcp_window=65535),
            event("203.0.113.13", 22, "ssh", fields={"ssh_client": "SSH-2.0-Go"})]


def batch2():
    return [http("203.0.113.20", "/.env", "curl/8.0"),
            http("198.51.100.21", "/.env", "Go-http-client/1.1"),
            syn("203.0.113.12", 2323, ip_id=54321, tcp_window=65535),
            syn("198.51.100.22", 445)]


def cli_answers(trawl, q):
    """The CLI's IPs and stats for q (SQL over the tables)."""
    ips, scroll = [], ""
    while True:
        args = ["noise", "query", q, "--json", "--size", "2"] + (["--scroll", scroll] if scroll else [])
        o = json.loads(trawl.run(*args, check=0).stdout)
        ips += [d["ip"] for d in o["data"]]
        if o["request_metadata"]["complete"]:
            break
        scroll = o["request_metadata"]["scroll"]
    stats = json.loads(trawl.run("noise", "stats", q, "--json", "--count", "50", check=0).stdout)
    return ips, stats


def server_answers(srv, key, q):
    ips, scroll = [], ""
    while True:
        r = requests.get(srv.url + "/v3/gnql?" + urllib.parse.urlencode(
            {"query": q, "size": 2, "scroll": scroll, "quick": "true"}), headers={"key": key},
            timeout=60)
        assert r.status_code == 200, r.text
        o = r.json()
        ips += [d["ip"] for d in o["data"]]
        if o["request_metadata"]["complete"]:
            break
        scroll = o["request_metadata"]["scroll"]
    r = requests.get(srv.url + "/v2/experimental/gnql/stats?" + urllib.parse.urlencode(
        {"query": q, "count": 50}), headers={"key": key}, timeout=60)
    assert r.status_code == 200, r.text
    return ips, r.json()


def quick(srv, key, ip):
    r = requests.get(srv.url + "/v2/noise/quick/" + ip, headers={"key": key}, timeout=60)
    assert r.status_code == 200
    return r.json()["code"]


def same(trawl, srv, key):
    for q in QUERIES:
        assert server_answers(srv, key, q) == cli_answers(trawl, q), q


def test_index_follows_ingest_and_restart(trawl, keys, tmp_path):
    from conftest import Server
    key = keys["reader"]
    trawl.run("noise", "import", write_jsonl(tmp_path / "b1.jsonl", batch1()), check=0)
    srv = Server(trawl)
    try:
        ips, stats = server_answers(srv, key, 'tags:".env Scanner"')
        assert ips == ["203.0.113.10"] and stats["count"] == 1
        assert quick(srv, key, "203.0.113.20") == "0x00"
        same(trawl, srv, key)
        # Another process ingests while the server runs (its index is built).
        trawl.run("noise", "import", write_jsonl(tmp_path / "b2.jsonl", batch2()), check=0)
        ips, stats = server_answers(srv, key, 'tags:".env Scanner"')
        assert ips == ["198.51.100.21", "203.0.113.10", "203.0.113.20"] and stats["count"] == 3
        assert quick(srv, key, "203.0.113.20") in ("0x01", "0x02")
        ports = {p["port"]: p["count"] for p in
                 server_answers(srv, key, "ip:203.0.113.12")[1]["stats"]["ports"]}
        assert ports == {23: 1, 2323: 1}
        same(trawl, srv, key)
    finally:
        srv.stop()
    # Changed while no server runs; a new one builds its index afresh.
    tor = tmp_path / "tor.txt"
    tor.write_text("203.0.113.10\n198.51.100.21\n")
    trawl.run("noise", "tor", "import", tor, check=0)
    srv = Server(trawl)
    try:
        assert server_answers(srv, key, "metadata.tor:true")[0] == ["198.51.100.21", "203.0.113.10"]
        same(trawl, srv, key)
        assert quick(srv, key, "198.51.100.22") in ("0x01", "0x02")
    finally:
        srv.stop()
