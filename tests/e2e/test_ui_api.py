"""The API parameters the web UI pages with: totals and offsets on every
list, sample search by name, hash prefix, reporter and dates, sorting, hunt
results grouped by sample with per-rule counts, hunt names from their rules,
and live hits a page at a time."""
import hashlib
import os
import time

import requests

from test_hunt_api import auth, wait_done, wait_indexed, wait_live_scanned


def post_sample(srv, key, name, data, tags="", signature=""):
    fields = {}
    if tags:
        fields["tags"] = tags
    if signature:
        fields["signature"] = signature
    r = requests.post(srv.url + "/api/samples", headers=auth(key), files={"file": (name, data)},
                      data=fields, timeout=30)
    assert r.status_code in (200, 201), r.text
    return r.json()["data"]


def get(srv, key, path, status=200):
    r = requests.get(srv.url + path, headers=auth(key), timeout=10)
    assert r.status_code == status, r.text
    return r.json()


def test_samples_paging_sorting_and_search(secure_server, keys):
    key = keys["analyst"]
    made = []
    for i in range(7):
        data = os.urandom(100 + 50 * i)
        made.append(post_sample(secure_server, key, "file_%d%s.exe" % (i, "_dropper" if i == 3 else ""),
                                data, tags="batch" if i % 2 else "other",
                                signature="FamA" if i < 4 else "FamB"))
    # Totals, and pages that neither overlap nor skip.
    p1 = get(secure_server, key, "/api/samples?limit=3")
    p2 = get(secure_server, key, "/api/samples?limit=3&offset=3")
    p3 = get(secure_server, key, "/api/samples?limit=3&offset=6")
    assert p1["total"] == p2["total"] == p3["total"] == 7
    seen = [s["sha256_hash"] for p in (p1, p2, p3) for s in p["data"]]
    assert len(seen) == 7 and set(seen) == {m["sha256_hash"] for m in made}
    assert seen == [m["sha256_hash"] for m in reversed(made)]          # newest first by default
    # The total counts the filter, not the page.
    f = get(secure_server, key, "/api/samples?tag=batch&limit=1")
    assert f["total"] == 3 and f["count"] == 1
    assert get(secure_server, key, "/api/samples?signature=famb")["total"] == 3
    # Sorting by size, both ways.
    asc = [s["file_size"] for s in get(secure_server, key, "/api/samples?sort=size&order=asc")["data"]]
    assert asc == sorted(asc) and len(asc) == 7
    desc = [s["file_size"] for s in get(secure_server, key, "/api/samples?sort=size&order=desc")["data"]]
    assert desc == sorted(desc, reverse=True)
    get(secure_server, key, "/api/samples?sort=colour", status=400)
    get(secure_server, key, "/api/samples?order=up", status=400)
    # File name: a case-insensitive substring; LIKE wildcards are literal.
    byname = get(secure_server, key, "/api/samples?name=DROPPER")
    assert [s["sha256_hash"] for s in byname["data"]] == [made[3]["sha256_hash"]]
    assert get(secure_server, key, "/api/samples?name=%25")["total"] == 0
    assert get(secure_server, key, "/api/samples?name=file_")["total"] == 7
    # Hash prefixes of 8+ hex digits, of any of the three hashes.
    target = made[5]
    for h in ("sha256_hash", "md5_hash", "sha1_hash"):
        res = get(secure_server, key, "/api/samples?hash=" + target[h][:10].upper())
        assert target["sha256_hash"] in [s["sha256_hash"] for s in res["data"]], h
    get(secure_server, key, "/api/samples?hash=abcdef1", status=400)
    get(secure_server, key, "/api/samples?hash=xyz12345", status=400)
    full = get(secure_server, key, "/api/samples?hash=" + target["md5_hash"])
    assert full["total"] == 1 and full["data"][0]["sha256_hash"] == target["sha256_hash"]
    # Reporter (the uploading key's name) and first-seen date ranges.
    assert get(secure_server, key, "/api/samples?reporter=ANALYST-key")["total"] == 7
    assert get(secure_server, key, "/api/samples?reporter=nobody")["total"] == 0
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert get(secure_server, key, "/api/samples?since=%s&until=%s" % (today, today))["total"] == 7
    assert get(secure_server, key, "/api/samples?until=2001-01-01")["total"] == 0
    assert get(secure_server, key, "/api/samples?since=2999-01-01 00:00:00")["total"] == 0
    get(secure_server, key, "/api/samples?since=yesterday", status=400)
    # Empty fields are no filter (the UI's blank inputs).
    assert get(secure_server, key, "/api/samples?tag=&signature=&name=")["total"] == 7


def test_hunt_results_by_sample_and_rule_counts(secure_server, keys):
    key = keys["analyst"]
    both, only_a = [], []
    for i in range(4):
        d = os.urandom(200) + b"UI-MARK-ALPHA" + os.urandom(50) + b"UI-MARK-BETA" + os.urandom(200)
        both.append(hashlib.sha256(d).hexdigest())
        post_sample(secure_server, key, "both%d.bin" % i, d)
    for i in range(3):
        d = os.urandom(200) + b"UI-MARK-ALPHA" + os.urandom(200)
        only_a.append(hashlib.sha256(d).hexdigest())
        post_sample(secure_server, key, "a%d.bin" % i, d)
    wait_indexed(secure_server, key, 7)
    rule = ('rule ui_alpha { meta: author = "me" strings: $a = "UI-MARK-ALPHA" condition: $a }\n'
            'rule ui_beta { strings: $b = "UI-MARK-BETA" condition: $b }\n')
    r = requests.post(secure_server.url + "/api/hunts", headers=auth(key), json={"rule": rule}, timeout=10)
    assert r.status_code == 201, r.text
    hid = r.json()["id"]
    j = wait_done(secure_server, key, hid)
    assert j["matches"] == 11
    # Named from its rules, not "rule.yar"; the source is kept.
    assert j["rules"] == "ui_alpha, ui_beta"
    src = get(secure_server, key, "/api/hunts/%d/rules" % hid)["data"]
    assert src[0]["text"] == rule
    # Grouped by sample: 7 samples, a page of 3 at a time, no overlap.
    pages = [get(secure_server, key, "/api/hunts/%d/samples?limit=3&offset=%d" % (hid, o)) for o in (0, 3, 6)]
    assert all(p["total"] == 7 for p in pages)
    groups = [g for p in pages for g in p["data"]]
    assert sorted(g["sha256"] for g in groups) == sorted(both + only_a)
    for g in groups:
        rules = sorted(m["rule"] for m in g["matches"])
        assert rules == (["ui_alpha", "ui_beta"] if g["sha256"] in both else ["ui_alpha"])
        assert all(m["sample"]["sha256"] == g["sha256"] for m in g["matches"])
    counts = {c["rule"]: (c["matches"], c["samples"]) for c in pages[0]["rules"]}
    assert counts == {"ui_alpha": (7, 7), "ui_beta": (4, 4)}
    # At most so many results in full a sample; the rules and count of all.
    light = get(secure_server, key, "/api/hunts/%d/samples?matches=1&limit=100" % hid)
    for g in light["data"]:
        assert len(g["matches"]) == 1 and g["match_count"] == len(g["rules"])
        assert g["match_count"] == (2 if g["sha256"] in both else 1)
    one = get(secure_server, key, "/api/hunts/%d/samples?sample=%s" % (hid, both[1]))
    assert one["total"] == 1 and sorted(m["rule"] for m in one["data"][0]["matches"]) == ["ui_alpha", "ui_beta"]
    get(secure_server, key, "/api/hunts/%d/samples?sample=abc" % hid, status=400)
    # One rule's samples only.
    beta = get(secure_server, key, "/api/hunts/%d/samples?rule=ui_beta&limit=100" % hid)
    assert beta["total"] == 4 and sorted(g["sha256"] for g in beta["data"]) == sorted(both)
    assert all(m["rule"] == "ui_beta" for g in beta["data"] for m in g["matches"])
    get(secure_server, key, "/api/hunts/%d/samples?limit=501" % hid, status=400)
    # The sample page lists the hunts that matched it, with the rule's meta.
    hm = get(secure_server, key, "/api/samples/" + both[0])["data"]["hunt_matches"]
    assert sorted((m["hunt"], m["rule"]) for m in hm) == [(hid, "ui_alpha"), (hid, "ui_beta")]
    assert [m["meta"] for m in hm if m["rule"] == "ui_alpha"] == [{"author": "me"}]
    assert all(m["hunt_name"] == "ui_alpha, ui_beta" and m["strings"] == 1 for m in hm)
    # An explicit name wins over the derived one.
    r = requests.post(secure_server.url + "/api/hunts", headers=auth(key),
                      json={"rule": rule, "name": "my hunt"}, timeout=10)
    hid2 = r.json()["id"]
    assert wait_done(secure_server, key, hid2)["rules"] == "my hunt"
    # The hunts list pages too, with its total.
    lst = get(secure_server, key, "/api/hunts?limit=1")
    assert lst["total"] == 2 and [h["id"] for h in lst["data"]] == [hid2]
    assert [h["id"] for h in get(secure_server, key, "/api/hunts?limit=1&offset=1")["data"]] == [hid]
    assert len(get(secure_server, key, "/api/hunts")["data"]) == 2


def test_live_hits_paging(secure_server, keys):
    key = keys["analyst"]
    url = secure_server.url + "/api/rules"
    rule = 'rule pg { strings: $a = "PAGE-NEEDLE-5" condition: $a }'
    assert requests.post(url, headers=auth(key), json={"name": "pg", "rule": rule}, timeout=30).status_code == 201
    made = [post_sample(secure_server, key, "n%d.bin" % i, os.urandom(100) + b"PAGE-NEEDLE-5")["sha256_hash"]
            for i in range(5)]
    wait_live_scanned(secure_server, key)
    p1 = get(secure_server, key, "/api/rules/pg/hits?limit=2")
    p2 = get(secure_server, key, "/api/rules/pg/hits?limit=2&offset=2")
    p3 = get(secure_server, key, "/api/rules/pg/hits?limit=2&offset=4")
    assert p1["total"] == p2["total"] == p3["total"] == 5
    got = [h["sha256"] for p in (p1, p2, p3) for h in p["data"]]
    assert sorted(got) == sorted(made) and len(got) == 5


def test_ui_doc_examples_run(secure_server, keys):
    """Every sh block of docs/ui.md runs, in order, against a live server."""
    import re
    import subprocess
    from conftest import ROOT
    text = open(os.path.join(ROOT, "docs", "ui.md")).read()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert len(blocks) == 3
    env = dict(os.environ, TRAWL=secure_server.url, KEY=keys["analyst"])
    p = subprocess.run(["bash", "-c", "set -euo pipefail\n" + "\n".join(blocks)], capture_output=True,
                       text=True, env=env, timeout=120)
    assert p.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (p.stdout[-3000:], p.stderr[-3000:])
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    import json
    byname, byprefix, hunts, groups, who = (json.loads(l) for l in lines)
    assert byname["total"] == 1 and byname["data"][0]["file_name"] == "ui-doc-sample.exe"
    assert byprefix["total"] == 1 and byprefix["data"][0]["sha256_hash"] == byname["data"][0]["sha256_hash"]
    assert hunts["total"] == 1 and hunts["data"][0]["rules"] == "uidoc_mark"
    assert groups["total"] == 1 and groups["data"][0]["rules"] == ["uidoc_mark"]
    assert groups["rules"] == [{"rule": "uidoc_mark", "matches": 1, "samples": 1}]
    assert who == {"role": "analyst", "key": "analyst-key", "authenticated": True}


def test_duplicate_upload_records_a_changed_signature(secure_server, keys):
    data = os.urandom(700)
    first = post_sample(secure_server, keys["analyst"], "dup.bin", data, signature="FamOld")
    assert get(secure_server, keys["analyst"], "/api/samples/" + first["sha256_hash"])["data"]["changes"] == []
    post_sample(secure_server, keys["admin"], "dup2.bin", data, signature="FamOld")      # same: no change
    post_sample(secure_server, keys["admin"], "dup3.bin", data)                         # none given: no change
    post_sample(secure_server, keys["admin"], "dup4.bin", data, signature="FamNew")
    s = get(secure_server, keys["analyst"], "/api/samples/" + first["sha256_hash"])["data"]
    assert s["signature"] == "FamNew"
    assert [(c["field"], c["old"], c["new"], c["reporter"]) for c in s["changes"]] == \
        [("signature", "FamOld", "FamNew", "admin-key")]
