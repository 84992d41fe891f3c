"""trawl noise query / stats: GNQL over the per-IP records, from the CLI."""
import json

from test_noise_cli import write_jsonl
from test_noise_tags import event, http, syn


def load(trawl, tmp_path):
    trawl.run("noise", "import", write_jsonl(tmp_path / "ev.jsonl", [
        http("203.0.113.10", "/.env", "curl/8.0"),
        http("203.0.113.11", "/.git/config", "python-requests/2.31.0", port=8080),
        syn("203.0.113.12", 23, ip_id=54321, tcp_window=65535),
        syn("198.51.100.7", 445),
        event("203.0.113.13", 22, "ssh", fields={"ssh_client": "SSH-2.0-Go",
                                                 "hassh": "b5752e36ba6c5979a575e43178908adf",
                                                 "username": "admin", "password": "admin"}),
    ]), check=0)


def ips(trawl, q):
    out = json.loads(trawl.run("noise", "query", q, "--json", check=0).stdout)
    assert out["request_metadata"]["count"] == len(out["data"])
    return sorted(r["ip"] for r in out["data"])


def test_query_fields_operators_and_cidr(trawl, tmp_path):
    load(trawl, tmp_path)
    assert ips(trawl, 'tags:".env Scanner"') == ["203.0.113.10"]
    assert ips(trawl, "tags:*env*") == ["203.0.113.10"]
    assert ips(trawl, "tags:ZMAP*") == ["203.0.113.12"]          # case-insensitive
    assert ips(trawl, "ip:203.0.113.0/24 -raw_data.scan.port:22") == [
        "203.0.113.10", "203.0.113.11", "203.0.113.12"]
    assert ips(trawl, "ip:198.51.100.0/25") == ["198.51.100.7"]   # not octet-aligned
    assert ips(trawl, "198.51.100.7") == ["198.51.100.7"]
    assert ips(trawl, "raw_data.scan.port:[440 TO 8080] AND NOT raw_data.scan.port:80") == [
        "198.51.100.7", "203.0.113.11"]
    assert ips(trawl, "raw_data.web.useragents:python* OR raw_data.hassh.fingerprint:b5752e36ba6c5979a575e43178908adf") == [
        "203.0.113.11", "203.0.113.13"]
    assert ips(trawl, "(raw_data.web.paths:/.env or raw_data.web.paths:/.git/config) -tags:curl") == [
        "203.0.113.11"]
    assert ips(trawl, "last_seen:1d sensor:test-sensor") == [
        "198.51.100.7", "203.0.113.10", "203.0.113.11", "203.0.113.12", "203.0.113.13"]
    assert ips(trawl, "first_seen:<2000-01-01") == []
    assert ips(trawl, "spoofable:true") == ["198.51.100.7", "203.0.113.12"]


def test_query_paging(trawl, tmp_path):
    load(trawl, tmp_path)
    seen, scroll = [], None
    while True:
        args = ["noise", "query", "last_seen:1d", "--json", "--size", "2"]
        if scroll:
            args += ["--scroll", scroll]
        out = json.loads(trawl.run(*args, check=0).stdout)
        seen += [r["ip"] for r in out["data"]]
        assert out["request_metadata"]["count"] == 5
        if out["request_metadata"]["complete"]:
            break
        scroll = out["request_metadata"]["scroll"]
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 5


def test_query_errors_name_the_position(trawl, tmp_path):
    load(trawl, tmp_path)
    p = trawl.run("noise", "query", "tags:Mirai AND (ip:1.2.3.4", check=1)
    assert "unclosed '(' at position 16" in p.stderr
    p = trawl.run("noise", "query", "tags:Mirai colour:red", check=1)
    assert "unknown field 'colour' at position 12" in p.stderr
    p = trawl.run("noise", "query", "ip:1.2.3.400", check=1)
    assert "not an IP address or CIDR at position 1" in p.stderr
    p = trawl.run("noise", "query", "last_seen:yesterday", check=1)
    assert "at position 1" in p.stderr


def test_stats(trawl, tmp_path):
    load(trawl, tmp_path)
    out = json.loads(trawl.run("noise", "stats", "ip:203.0.113.0/24", "--json", check=0).stdout)
    assert out["count"] == 4
    st = out["stats"]
    assert sum(c["count"] for c in st["classifications"]) == 4
    assert {"spoofable": True, "count": 1} in st["spoofable"]
    assert {"spoofable": False, "count": 3} in st["spoofable"]
    names = {t["tag"]["name"]: t["count"] for t in st["tags"]}
    assert names[".env Scanner"] == 1 and names["ZMap Client"] == 1
    assert all(set(t["tag"]) == {"id", "name", "slug", "category", "intention"} for t in st["tags"])
    ports = {p["port"]: p["count"] for p in st["ports"]}
    assert ports == {80: 1, 8080: 1, 23: 1, 22: 1}
    assert st["sensors"] == [{"sensor": "test-sensor", "count": 4}]
    text = trawl.run("noise", "stats", "ip:203.0.113.0/24", check=0).stdout
    assert "4 matching IPs" in text and "ZMap Client" in text


def test_stats_destination_countries(trawl, tmp_path):
    import os
    import pytest
    if not os.path.exists("/usr/share/GeoIP/GeoIP.dat"):
        pytest.skip("missing /usr/share/GeoIP/GeoIP.dat (geoip-database)")
    # Records only: the destinations are where a sensor would stand.
    trawl.run("noise", "import", write_jsonl(tmp_path / "d.jsonl", [
        dict(syn("203.0.113.50", 23), dst_ip="8.8.8.8"),
        dict(syn("203.0.113.50", 80), dst_ip="8.8.4.4"),
        dict(syn("203.0.113.51", 23), dst_ip="8.8.8.8"),
        syn("203.0.113.52", 23),
    ]), check=0)
    out = json.loads(trawl.run("noise", "stats", "ip:203.0.113.48/29", "--json", check=0).stdout)
    assert out["count"] == 3
    assert out["stats"]["destination_countries"] == [{"country": "United States", "count": 2}]
