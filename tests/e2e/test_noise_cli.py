"""trawl noise: import (bad lines named, valid ones kept), the IP record, tags
added/edited/removed with a re-judging of stored events, actors and
classification, Tor lists, retention, enrichment."""
import datetime
import json
import subprocess
import os

import pytest

from conftest import Trawl
from test_noise_tags import event, http, syn


def write_jsonl(path, events):
    path.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events))
    return path


def record(trawl, ip):
    return json.loads(trawl.run("noise", "ip", "--json", ip, check=0).stdout)


def test_import_names_bad_lines_and_keeps_valid_ones(trawl, tmp_path):
    f = write_jsonl(tmp_path / "ev.jsonl", [
        http("203.0.113.20", "/.env", "curl/8.0"),
        "{not json",
        dict(http("203.0.113.21", "/"), src_ip="999.1.1.1"),
        dict(syn("203.0.113.22", 23, tcp_window=1024), dst_port=70000),
        syn("203.0.113.23", 23, ip_id=54321, tcp_window=65535),
    ])
    p = trawl.run("noise", "import", "--format", "jsonl", f, check=1)
    assert "2 events stored" in p.stdout and "3 bad lines skipped" in p.stdout
    assert "ev.jsonl:2: invalid JSON" in p.stderr
    assert "ev.jsonl:3: event: 'src_ip' is not an IP address" in p.stderr
    assert "ev.jsonl:4: event: 'dst_port'" in p.stderr
    assert record(trawl, "203.0.113.20")["tags"] == [".env Scanner", "curl"]
    assert record(trawl, "203.0.113.23")["tags"] == ["ZMap Client"]
    assert record(trawl, "203.0.113.22") == {"ip": "203.0.113.22", "seen": False}


def test_ip_record(trawl, tmp_path):
    f = write_jsonl(tmp_path / "ev.jsonl", [
        syn("203.0.113.30", 22, ip_id=54321, tcp_window=65535),
        event("203.0.113.30", 22, "ssh", fields={"ssh_client": "SSH-2.0-Go", "hassh": "b5752e36ba6c5979a575e43178908adf",
                                                 "username": "admin", "password": "admin"}),
        dict(http("203.0.113.30", "/.git/config", "python-requests/2.31.0", port=8080), sensor="edge-2"),
        dict(event("203.0.113.30", 443, "tls", fields={"ja3_hash": "e7d705a3286e19ea42f587b344ee6865", "ja4": "t13d1516h2_8daaf6152771_02713d6af862",
                                                       "tls_sni": "example.test"})),
    ])
    trawl.run("noise", "import", f, check=0)
    r = record(trawl, "203.0.113.30")
    assert r["seen"] and r["ip"] == "203.0.113.30" and r["events"] == 4
    assert r["classification"] == "malicious" and r["spoofable"] is False
    assert set(r["tags"]) >= {"ZMap Client", "SSH Bruteforcer", "Go SSH Client", "Git Config Crawler",
                              "Python Requests Client"}
    assert {"port": 22, "protocol": "TCP"} in r["raw_data"]["scan"]
    assert {"port": 8080, "protocol": "TCP"} in r["raw_data"]["scan"]
    assert r["raw_data"]["web"] == {"paths": ["/.git/config"], "useragents": ["python-requests/2.31.0"]}
    assert r["raw_data"]["hassh"] == [{"fingerprint": "b5752e36ba6c5979a575e43178908adf", "port": 22}]
    assert r["raw_data"]["ja3"] == [{"fingerprint": "e7d705a3286e19ea42f587b344ee6865", "port": 443}]
    assert r["ja4"][0]["fingerprint"] == "t13d1516h2_8daaf6152771_02713d6af862"
    assert r["ssh_clients"] == ["SSH-2.0-Go"]
    assert r["credentials"] == [{"username": "admin", "password": "admin", "attempts": 1}]
    assert sorted(s["name"] for s in r["sensors"]) == ["edge-2", "test-sensor"]
    assert r["metadata"]["sensor_count"] == 2 and r["metadata"]["sensor_hits"] == 4
    assert r["metadata"]["single_destination"] is True
    assert r["destinations"][0]["ip"] == "198.51.100.1"
    assert r["raw_data"]["http"] == {"method": ["GET"], "path": ["/.git/config"],
                                     "useragent": ["python-requests/2.31.0"], "host": ["198.51.100.1"]}
    assert r["raw_data"]["tls"] == {"ja4": ["t13d1516h2_8daaf6152771_02713d6af862"]}
    assert r["raw_data"]["source"]["bytes"] > 40        # the HTTP request's bytes
    git = [t for t in r["tag_details"] if t["name"] == "Git Config Crawler"][0]
    assert git["slug"] == "git-config-crawler" and git["intention"] == "malicious"
    assert len(git["id"]) == 36 and git["events"] == 1
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    assert r["events_per_day"] == {today: 4} and r["first_seen"] == today
    for key in ("seen", "ip", "first_seen", "last_seen", "tags", "actor", "spoofable", "classification",
                "cve", "bot", "vpn", "vpn_service", "metadata", "raw_data"):
        assert key in r, key
    text = trawl.run("noise", "ip", "203.0.113.30", check=0).stdout
    assert "classification  malicious" in text and "admin:admin" in text and "22/TCP" in text
    assert "never seen" in trawl.run("noise", "ip", "203.0.113.31", check=0).stdout
    assert "not an IP address" in trawl.run("noise", "ip", "no.such.ip", check=1).stderr
    # Many addresses in one process: arguments, or one per line from stdin
    # (JSON lines), a bad one named and the exit status 1, the others answered.
    text = trawl.run("noise", "ip", "203.0.113.30", "203.0.113.31", check=0).stdout
    assert "classification  malicious" in text and "203.0.113.31: never seen" in text
    p = subprocess.run(trawl.cmd("noise", "ip", "--json", "-"), capture_output=True, text=True,
                       input="203.0.113.30\n# a comment\n\n no.such.ip \n203.0.113.31\n", timeout=60)
    assert p.returncode == 1 and "'no.such.ip' is not an IP address" in p.stderr
    lines = [json.loads(l) for l in p.stdout.splitlines()]
    assert [(l["ip"], l["seen"]) for l in lines] == [("203.0.113.30", True), ("203.0.113.31", False)]
    assert lines[0] == r


def test_tag_add_rejudges_stored_events_and_applies_live(trawl, tmp_path):
    trawl.run("noise", "import", write_jsonl(tmp_path / "a.jsonl", [
        event("203.0.113.40", 9999, "raw", payload=b"HELLO-TRAWL probe"),
        event("203.0.113.41", 9999, "raw", payload=b"something else"),
    ]), check=0)
    rule = tmp_path / "hello.yar"
    rule.write_text('rule hello_trawl {\n  meta:\n    name = "Hello Probe"\n    category = "tool"\n'
                    '    intention = "malicious"\n    cves = "CVE-2099-0001"\n'
                    '  strings:\n    $a = "HELLO-TRAWL"\n  condition:\n    $a and dst_port == 9999\n}\n')
    p = trawl.run("noise", "tag", "add", rule, check=0)
    assert "tag 'Hello Probe' added" in p.stdout and "1 matched, 1 addresses tagged" in p.stdout
    r = record(trawl, "203.0.113.40")
    assert r["tags"] == ["Hello Probe"] and r["cve"] == ["CVE-2099-0001"]
    assert r["classification"] == "malicious"
    assert record(trawl, "203.0.113.41")["tags"] == []
    # live: a new event is judged with it
    trawl.run("noise", "import", write_jsonl(tmp_path / "b.jsonl", [
        event("203.0.113.42", 9999, "raw", payload=b"xx HELLO-TRAWL")]), check=0)
    assert record(trawl, "203.0.113.42")["tags"] == ["Hello Probe"]
    tags = {t["name"]: t for t in json.loads(trawl.run("noise", "tags", "--json", check=0).stdout)}
    assert tags["Hello Probe"]["ips"] == 2 and tags["Hello Probe"]["events"] == 2
    assert tags["Hello Probe"]["builtin"] is False
    listing = trawl.run("noise", "tags", check=0).stdout
    assert any(l.split()[0] == "2" and l.endswith("Hello Probe") for l in listing.splitlines())
    # editing it re-judges: now only the event at the start matches
    rule.write_text(rule.read_text().replace("$a and", "$a at 0 and"))
    trawl.run("noise", "tag", "add", rule, check=0)
    assert record(trawl, "203.0.113.40")["tags"] == ["Hello Probe"]
    assert record(trawl, "203.0.113.42")["tags"] == []
    assert record(trawl, "203.0.113.42")["classification"] == "unknown"
    assert "removed tag" in trawl.run("noise", "tag", "rm", "Hello Probe", check=0).stdout
    assert record(trawl, "203.0.113.40")["tags"] == []
    assert "no tag named" in trawl.run("noise", "tag", "rm", "Hello Probe", check=1).stderr
    # a default tag can be removed too
    trawl.run("noise", "tag", "rm", "curl", check=0)
    assert "curl" not in {t["name"] for t in json.loads(trawl.run("noise", "tags", "--json", check=0).stdout)}


def test_tag_errors_name_the_position(trawl, tmp_path):
    bad = tmp_path / "bad.yar"
    bad.write_text('rule x {\n  condition:\n    http_path == "/" and\n}\n')
    p = trawl.run("noise", "tag", "add", bad, check=1)
    assert "bad.yar:4:" in p.stderr
    bad.write_text('rule x {\n  meta:\n    intention = "evil"\n  condition:\n    true\n}\n')
    assert "intention 'evil'" in trawl.run("noise", "tag", "add", bad, check=1).stderr
    bad.write_text('rule x {\n  condition:\n    no_such_field == "a"\n}\n')
    assert "bad.yar:3:" in trawl.run("noise", "tag", "add", bad, check=1).stderr


def test_actors_outrank_tags(trawl, tmp_path):
    trawl.run("noise", "import", write_jsonl(tmp_path / "a.jsonl", [
        http("203.0.113.50", "/.env", "Mozilla/5.0"),
        event("203.0.113.60", 21, "ftp", fields={"username": "anonymous", "password": "x@y"}),
        syn("198.51.100.70", 443, tcp_window=29200),
    ]), check=0)
    assert record(trawl, "203.0.113.50")["classification"] == "malicious"
    assert record(trawl, "203.0.113.60")["classification"] == "suspicious"
    assert record(trawl, "198.51.100.70")["classification"] == "unknown"
    trawl.run("noise", "actor", "add", "Lab Research", "--cidr", "203.0.113.48/29", "--cidr",
              "2001:db8::/32", "--benign", check=0)
    r = record(trawl, "203.0.113.50")
    assert r["classification"] == "benign" and r["actor"] == "Lab Research"
    assert record(trawl, "203.0.113.60")["actor"] == "unknown"
    trawl.run("noise", "actor", "add", "Bad Net", "--cidr", "198.51.100.64/26", "--malicious", check=0)
    assert record(trawl, "198.51.100.70")["classification"] == "malicious"
    actors = {a["name"]: a for a in json.loads(trawl.run("noise", "actor", "ls", "--json", check=0).stdout)}
    assert actors["Lab Research"]["ips"] == 1 and actors["Lab Research"]["benign"] is True
    assert actors["Lab Research"]["cidrs"] == ["203.0.113.48/29", "2001:db8::/32"]
    assert "Lab Research" in trawl.run("noise", "actor", "ls", check=0).stdout
    trawl.run("noise", "actor", "rm", "Lab Research", check=0)
    assert record(trawl, "203.0.113.50")["classification"] == "malicious"
    assert "not an address" in trawl.run("noise", "actor", "add", "X", "--cidr", "10.0.0.0/99",
                                         "--benign", check=1).stderr
    assert trawl.run("noise", "actor", "add", "X", "--cidr", "10.0.0.0/8", check=2).returncode == 2


def test_rdns_suffix_actor(trawl, tmp_path):
    """Reverse DNS is off by default; on, an actor can be named by its
    hosts' suffix. 127.0.0.1 resolves through /etc/hosts, no network."""
    off = Trawl(trawl.binary, str(tmp_path / "off"))
    for t in (off, trawl):
        p = t.run("noise", "actor", "add", "Local Host", "--rdns-suffix", "localhost", "--benign", check=0)
        assert "reverse DNS is off" in p.stderr
    assert "rdns = off" in off.run("noise", "config", "rdns", check=0).stdout
    off.run("noise", "import", write_jsonl(tmp_path / "a.jsonl", [http("127.0.0.1", "/.env")]), check=0)
    r = record(off, "127.0.0.1")
    assert r["metadata"]["rdns"] == "" and r["actor"] == "unknown"
    trawl.run("noise", "config", "rdns", "on", check=0)
    trawl.run("noise", "import", write_jsonl(tmp_path / "b.jsonl", [http("127.0.0.1", "/.env")]), check=0)
    r = record(trawl, "127.0.0.1")
    if not r["metadata"]["rdns"]:
        pytest.skip("127.0.0.1 has no name in /etc/hosts here")
    assert r["actor"] == "Local Host" and r["classification"] == "benign"


def test_tor_exit_list(trawl, tmp_path):
    exits = tmp_path / "exit-addresses"
    exits.write_text("ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E\nPublished 2026-11-27 11:00:00\n"
                     "LastStatus 2026-11-27 12:00:00\nExitAddress 203.0.113.80 2026-11-27 12:02:00\n")
    p = trawl.run("noise", "tor", "import", exits, check=0)
    assert "1 Tor exit addresses imported" in p.stdout
    plain = tmp_path / "plain.txt"
    plain.write_text("# one per line\n203.0.113.81\nnonsense\n")
    p = trawl.run("noise", "tor", "import", plain, check=0)
    assert "1 Tor exit addresses imported" in p.stdout and "plain.txt:3:" in p.stderr
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("this is not\na Tor list\n")
    assert "has no address (line 1" in trawl.run("noise", "tor", "import", wrong, check=1).stderr
    trawl.run("noise", "import", write_jsonl(tmp_path / "a.jsonl", [syn("203.0.113.80"), syn("203.0.113.81")]),
              check=0)
    assert record(trawl, "203.0.113.81")["metadata"]["tor"] is True
    assert record(trawl, "203.0.113.80")["metadata"]["tor"] is False    # replaced by the second list


def test_retention(trawl, tmp_path):
    old = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=200)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    trawl.run("noise", "import", write_jsonl(tmp_path / "a.jsonl", [
        dict(syn("203.0.113.90"), time=old), syn("203.0.113.90")]), check=0)
    p = trawl.run("noise", "retention", check=0)
    assert "kept 90 days; 1 older events would be deleted" in p.stdout
    p = trawl.run("noise", "retention", "--apply", check=0)
    assert "1 older events deleted" in p.stdout
    assert "0 older events" in trawl.run("noise", "retention", check=0).stdout
    r = record(trawl, "203.0.113.90")
    assert r["events"] == 2 and len(r["events_per_day"]) == 2      # the record keeps both
    assert "kept 30 days" in trawl.run("noise", "retention", "--days", "30", check=0).stdout
    assert "retention_days = 30" in trawl.run("noise", "config", "retention_days", check=0).stdout
    assert "1 to 36500" in trawl.run("noise", "retention", "--days", "0", check=1).stderr


def test_country_from_debian_geoip(trawl, tmp_path):
    if not os.path.exists("/usr/share/GeoIP/GeoIP.dat"):
        pytest.skip("/usr/share/GeoIP/GeoIP.dat missing (Debian package geoip-database)")
    # Event records only: nothing is sent to these addresses.
    trawl.run("noise", "import", write_jsonl(tmp_path / "a.jsonl", [syn("8.8.8.8"), syn("203.0.113.99")]),
              check=0)
    m = record(trawl, "8.8.8.8")["metadata"]
    assert m["country_code"] == "US" and m["country"] == "United States"
    assert record(trawl, "203.0.113.99")["metadata"]["country_code"] == ""


def test_events_listing(trawl, tmp_path):
    t1 = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    trawl.run("noise", "import", write_jsonl(tmp_path / "a.jsonl", [
        dict(http("203.0.113.140", "/.env", "curl/8.0"), time=t1),
        http("203.0.113.140", "/index.html", "Mozilla/5.0"),
        syn("203.0.113.141", ip_id=54321, tcp_window=65535),
    ]), check=0)
    evs = json.loads(trawl.run("noise", "events", "--ip", "203.0.113.140", "--json", check=0).stdout)
    assert [e["fields"]["http_path"] for e in evs] == ["/index.html", "/.env"]     # newest first
    assert evs[1]["tags"] == [".env Scanner", "curl"] and evs[0]["tags"] == []
    assert evs[1]["payload_b64"] and evs[1]["src_ip"] == "203.0.113.140"
    tagged = json.loads(trawl.run("noise", "events", "--tag", "ZMap Client", "--json", check=0).stdout)
    assert [e["src_ip"] for e in tagged] == ["203.0.113.141"]
    assert len(json.loads(trawl.run("noise", "events", "--limit", "1", "--json", check=0).stdout)) == 1
    text = trawl.run("noise", "events", "--ip", "203.0.113.140", check=0).stdout.splitlines()
    assert len(text) == 2 and text[1].endswith("tcp/http  [.env Scanner, curl]")
    assert trawl.run("noise", "events", "--limit", "0", check=2).returncode == 2


def test_tag_test_saves_nothing(trawl, tmp_path):
    trawl.run("noise", "import", write_jsonl(tmp_path / "a.jsonl", [
        event("203.0.113.160", 7777, "raw", payload=b"PROBE-ONE"),
        event("203.0.113.161", 7777, "raw", payload=b"PROBE-ONE again"),
        event("203.0.113.162", 7777, "raw", payload=b"other"),
    ]), check=0)
    rule = tmp_path / "t.yar"
    rule.write_text('rule probe_one { meta: name = "Probe One" strings: $a = "PROBE-ONE" condition: $a }\n')
    res = json.loads(trawl.run("noise", "tag", "test", rule, "--json", check=0).stdout)
    assert res["tags"] == ["Probe One"] and res["events_scanned"] == 3 and res["events_matched"] == 2
    assert [m["src_ip"] for m in res["matches"]] == ["203.0.113.161", "203.0.113.160"]   # newest first
    assert res["ips_shown"] == 2
    res = json.loads(trawl.run("noise", "tag", "test", rule, "--limit", "2", "--json", check=0).stdout)
    assert res["events_scanned"] == 2 and res["events_matched"] == 1    # .162 and .161
    assert "2 of the 3 newest events matched; nothing was saved" in trawl.run(
        "noise", "tag", "test", rule, check=0).stdout
    assert record(trawl, "203.0.113.160")["tags"] == []
    assert "Probe One" not in {t["name"] for t in json.loads(trawl.run("noise", "tags", "--json", check=0).stdout)}
    rule.write_text("rule broken {\n condition: }\n")
    assert "t.yar:2:" in trawl.run("noise", "tag", "test", rule, check=1).stderr
