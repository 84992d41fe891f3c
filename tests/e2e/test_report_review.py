"""Report review end to end: drafts kept in the data directory, decisions
per extraction, entity, candidate and proposal, additions, edits of the
report, and a commit that puts exactly the accepted objects in the
knowledge base; through the CLI and the HTTP API, and across a crash."""
import json
import os

import pytest

from conftest import ROOT, SHARED, Server
from test_report import call

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "reports")
BLOG = os.path.join(FIXTURES, "hand-en-blog.txt")
DIGEST = os.path.join(SHARED, "data", "reports", "000_d651423fc4c00244.txt")
ATTACK = os.path.join(SHARED, "data", "attack", "enterprise-attack-entities.json")


def jrun(trawl, *args):
    return json.loads(trawl.run(*args, "--json", check=0).stdout)


def kb(trawl, typ):
    p = trawl.run("stix", "search", "--type", typ, "--limit", "1000", "--json")
    return json.loads(p.stdout) if p.returncode == 0 else []


def index_of(d, kind, value):
    return [i for i, e in enumerate(d["extractions"]) if e["kind"] == kind and e["value"] == value]


def test_cli_review_accept_reject_add_commit(trawl):
    p = trawl.run("report", "draft", BLOG, check=0)
    assert "draft " in p.stdout
    drafts = jrun(trawl, "report", "drafts")
    assert len(drafts) == 1 and drafts[0]["status"] == "open"
    did = drafts[0]["id"]
    assert kb(trawl, "report") == []        # a draft is not in the knowledge base
    d = jrun(trawl, "report", "show", did)
    rej_ip6 = index_of(d, "ipv6", "2a0e:97c0:3e3:71d::14")
    rej_dom = index_of(d, "domain", "update-msstore.com")
    acc_benign = index_of(d, "filename", "rundll32.exe")
    assert len(rej_ip6) == 1 and len(rej_dom) == 1 and len(acc_benign) == 1
    assert not d["extractions"][acc_benign[0]]["accepted"]
    # The numbered text view names the indices used below.
    p = trawl.run("report", "show", did, check=0)
    assert ("%4d  -" % acc_benign[0]) in p.stdout

    p = trawl.run("report", "review", did, "--reject", "%d,%d" % (rej_ip6[0], rej_dom[0]),
                  "--accept", str(acc_benign[0]), "--add", "domain:evil-added[.]net",
                  "--name", "DriftLoader review", "--label", "loader", "--marking", "TLP:AMBER",
                  "--json", check=0)
    d = json.loads(p.stdout)
    added = d["extractions"][-1]
    assert added["value"] == "evil-added.net" and added["added"] and added["accepted"]
    assert d["report"]["name"] == "DriftLoader review"
    # Refused changes change nothing.
    p = trawl.run("report", "review", did, "--accept", "9999", "--name", "nope")
    assert p.returncode == 1 and "9999" not in p.stdout
    assert jrun(trawl, "report", "show", did)["report"]["name"] == "DriftLoader review"
    p = trawl.run("report", "review", did, "--add", "colour:red")
    assert p.returncode == 1 and "cannot add" in p.stderr

    p = trawl.run("report", "commit", did, check=0)
    assert "committed" in p.stdout
    d = jrun(trawl, "report", "show", did)
    assert d["draft"]["status"] == "committed"
    # Exactly the accepted observables became indicators.
    want = {e["value"] for e in d["extractions"]
            if e["accepted"] and e["kind"] not in ("cve", "attack-technique", "yara")}
    got = {o["name"] for o in kb(trawl, "indicator")}
    assert got == want
    assert "2a0e:97c0:3e3:71d::14" not in got and "update-msstore.com" not in got
    assert "rundll32.exe" in got and "evil-added.net" in got
    reports = kb(trawl, "report")
    assert len(reports) == 1
    r = reports[0]
    assert r["name"] == "DriftLoader review" and r["labels"] == ["loader"]
    assert r["object_marking_refs"] == ["marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"]
    assert r["id"] == d["draft"]["committed"]["report"]
    ind_ids = {o["id"] for o in kb(trawl, "indicator")}
    assert ind_ids <= set(r["object_refs"])
    # A committed draft is not committed or changed again.
    assert trawl.run("report", "commit", did).returncode == 1
    assert trawl.run("report", "review", did, "--reject", "0").returncode == 1
    assert trawl.run("report", "rm", did, check=0).returncode == 0
    assert jrun(trawl, "report", "drafts") == []
    assert trawl.run("report", "show", did).returncode == 1


def test_entities_candidates_proposals(trawl):
    if not os.path.exists(ATTACK) or not os.path.exists(DIGEST):
        pytest.skip("missing %s or %s" % (ATTACK, DIGEST))
    trawl.run("stix", "import", ATTACK, check=0)
    trawl.run("report", "draft", DIGEST, check=0)
    did = jrun(trawl, "report", "drafts")[0]["id"]
    d = jrun(trawl, "report", "show", did)
    ents = d["entities"]
    assert all(e["accepted"] for e in ents)
    assert not any(c["accepted"] for c in d["candidates"])
    assert not any(p["accepted"] for p in d["proposals"])
    ryuk = [i for i, e in enumerate(ents) if e["name"] == "Ryuk"]
    conti = next(e["id"] for e in ents if e["name"] == "Conti")
    ryuk_id = ents[ryuk[0]]["id"]
    assert d["candidates"] and d["proposals"]
    args = ["report", "review", did, "--reject-entity", str(ryuk[0]),
            "--accept-candidate", "0", "--accept-proposal", "0", "--json"]
    d = json.loads(trawl.run(*args, check=0).stdout)
    # Rejecting one mention rejects the entity: every mention of it.
    assert not any(e["accepted"] for e in d["entities"] if e["id"] == ryuk_id)
    cand = d["candidates"][0]["name"]
    prop = d["proposals"][0]
    trawl.run("report", "commit", did, check=0)
    r = kb(trawl, "report")[0]
    assert conti in r["object_refs"]
    if ryuk_id not in (prop["source_ref"], prop["target_ref"]):
        assert ryuk_id not in r["object_refs"]
    assert cand in {m["name"] for m in kb(trawl, "malware")}
    rels = [o for o in kb(trawl, "relationship")
            if o["source_ref"] == prop["source_ref"] and o["target_ref"] == prop["target_ref"]
            and o["relationship_type"] == prop["relationship_type"]
            and o.get("description") == prop["sentence"]]   # not ATT&CK's own
    assert len(rels) == 1 and rels[0]["id"] in r["object_refs"]


def test_api_review_roles_commit(secure_server, keys, trawl):
    base = secure_server.url + "/api/reports/drafts"
    text = open(BLOG, "rb").read()
    st, _ = call(base, "POST", text, keys["reader"], "text/plain")
    assert st == 403
    st, out = call(base + "?filename=blog.txt&label=a,b", "POST", text, keys["analyst"],
                   "text/plain")
    assert st == 201, out
    d = json.loads(out)
    did = d["draft"]["id"]
    assert d["draft"]["created_by"] == "analyst-key"
    st, out = call(base, key=keys["reader"])
    assert st == 200 and [x["id"] for x in json.loads(out)["drafts"]] == [did]
    st, out = call(base + "/" + did, key=keys["reader"])
    assert st == 200 and json.loads(out)["text"] == text.decode()

    rej = index_of(d, "ipv4", "91.215.85.142")      # named twice in the text: both rejected
    keep = index_of(d, "url", "http://185.196.9.31/b/gate")
    changes = {"reject": rej, "accept": keep,
               "add": [{"kind": "sha256", "value": "aa" * 32},
                       {"kind": "intrusion-set", "value": "Drift Team"}],
               "labels": ["loader"], "marking": "TLP:RED"}
    st, _ = call(base + "/" + did, "PATCH", json.dumps(changes).encode(), keys["reader"],
                 "application/json")
    assert st == 403
    st, out = call(base + "/" + did, "PATCH", json.dumps({"reject": [10 ** 6]}).encode(),
                   keys["analyst"], "application/json")
    assert st == 400
    st, out = call(base + "/" + did, "PATCH", json.dumps({"bogus": 1}).encode(),
                   keys["analyst"], "application/json")
    assert st == 400 and b"bogus" in out
    st, out = call(base + "/" + did, "PATCH", json.dumps(changes).encode(), keys["analyst"],
                   "application/json")
    assert st == 200, out
    d = json.loads(out)
    assert d["report"]["labels"] == ["loader"]
    patterns = {o.get("pattern") for o in d["bundle"]["objects"]}
    assert "[ipv4-addr:value = '91.215.85.142']" not in patterns
    assert "[file:hashes.'SHA-256' = '%s']" % ("aa" * 32) in patterns

    st, _ = call(base + "/" + did + "/commit", "POST", b"", keys["reader"], "application/json")
    assert st == 403
    st, out = call(base + "/" + did + "/commit", "POST", b"", keys["analyst"], "application/json")
    assert st == 201, out
    d = json.loads(out)
    rid = d["draft"]["committed"]["report"]
    st, out = call(secure_server.url + "/api/stix/objects/" + rid, key=keys["reader"])
    r = json.loads(out)
    assert st == 200 and r["labels"] == ["loader"]
    names = {o["name"] for o in kb(trawl, "indicator")}
    want = {e["value"] for e in d["extractions"]
            if e["accepted"] and e["kind"] not in ("cve", "attack-technique", "yara")}
    assert names == want and "91.215.85.142" not in names and "aa" * 32 in names
    assert [o["name"] for o in kb(trawl, "intrusion-set")] == ["Drift Team"]
    st, _ = call(base + "/" + did + "/commit", "POST", b"", keys["analyst"], "application/json")
    assert st == 409
    st, _ = call(base + "/" + did, "PATCH", b"{}", keys["analyst"], "application/json")
    assert st == 409
    st, _ = call(base + "/" + did, "DELETE", None, keys["reader"])
    assert st == 403
    st, _ = call(base + "/" + did, "DELETE", None, keys["analyst"])
    assert st == 200
    st, _ = call(base + "/" + did, key=keys["reader"])
    assert st == 404
    st, _ = call(base + "/../../trawl.db", key=keys["reader"])
    assert st == 404


def test_draft_survives_a_crash(trawl, keys):
    srv = Server(trawl)
    try:
        base = srv.url + "/api/reports/drafts"
        st, out = call(base, "POST", json.dumps({"text": open(BLOG).read()}).encode(),
                       keys["analyst"], "application/json")
        assert st == 201
        d = json.loads(out)
        did = d["draft"]["id"]
        rej = index_of(d, "email", "reg-desk@proton-mail.ch")
        st, _ = call(base + "/" + did, "PATCH", json.dumps({"reject": rej}).encode(),
                     keys["analyst"], "application/json")
        assert st == 200
    finally:
        srv.proc.kill()            # no shutdown: as a crash would leave it
        srv.proc.wait()
    srv = Server(trawl)
    try:
        st, out = call(srv.url + "/api/reports/drafts/" + did, key=keys["reader"])
        assert st == 200
        d = json.loads(out)
        assert d["draft"]["status"] == "open"
        assert not d["extractions"][rej[0]]["accepted"]
        st, _ = call(srv.url + "/api/reports/drafts/" + did + "/commit", "POST", b"",
                     keys["analyst"], "application/json")
        assert st == 201
    finally:
        srv.stop()
    assert "reg-desk@proton-mail.ch" not in {o["name"] for o in kb(trawl, "indicator")}
    assert len(kb(trawl, "report")) == 1
