"""Hunts and live rules over HTTP: submit, progress, results, cancel, delete,
downloads, the jobs view, live rule sets with retrohunt, and graceful stop."""
import hashlib
import json
import os
import subprocess
import time

import requests

from conftest import Server


def auth(key):
    return {"Authorization": "Bearer " + key}


def upload(srv, key, name, data):
    r = requests.post(srv.url + "/api/samples", headers=auth(key), files={"file": (name, data)}, timeout=30)
    assert r.status_code in (200, 201), r.text
    return hashlib.sha256(data).hexdigest()


def wait_indexed(srv, key, n):
    deadline = time.time() + 30
    while time.time() < deadline:
        if requests.get(srv.url + "/api/index", headers=auth(key), timeout=10).json()["documents"] >= n:
            return
        time.sleep(0.1)
    raise AssertionError("uploads were not indexed")


# A regex that cannot use the index: every sample is verified, slowly.
SLOW_RULE = r'rule slow { strings: $a = /([a-z]{2,}[0-9]{2,}){3,}x/ condition: $a }'


def upload_random(srv, key, prefix, n):
    """n samples of 1 MB of random bytes, indexed before this returns."""
    for i in range(n):
        upload(srv, key, "%s%d.bin" % (prefix, i), os.urandom(1_000_000))
    wait_indexed(srv, key, n)


def wait_live_scanned(srv, key):
    """Uploads are scanned against live rule sets behind the answer."""
    deadline = time.time() + 60
    while time.time() < deadline:
        if requests.get(srv.url + "/api/rules", headers=auth(key), timeout=10).json()["scans_pending"] == 0:
            return
        time.sleep(0.05)
    raise AssertionError("live scans did not finish")


def wait_done(srv, key, hid, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = requests.get("%s/api/hunts/%d" % (srv.url, hid), headers=auth(key), timeout=10).json()
        if j["status"] not in ("queued", "running"):
            return j
        time.sleep(0.1)
    raise AssertionError("hunt %d did not finish: %s" % (hid, j))


def test_hunt_lifecycle(secure_server, keys, tmp_path):
    key = keys["analyst"]
    hits = [upload(secure_server, key, "hit%d.bin" % i, os.urandom(500) + b"EVIL-MARKER-0042" + os.urandom(500))
            for i in range(3)]
    for i in range(5):
        upload(secure_server, key, "miss%d.bin" % i, os.urandom(1500))
    wait_indexed(secure_server, key, 8)
    rule = 'rule evil { meta: author = "t" strings: $a = "EVIL-MARKER-0042" condition: $a }'
    r = requests.post(secure_server.url + "/api/hunts", headers=auth(keys["reader"]), json={"rule": rule}, timeout=10)
    assert r.status_code == 403
    r = requests.post(secure_server.url + "/api/hunts", headers=auth(key), json={"rule": rule}, timeout=10)
    assert r.status_code == 201, r.text
    hid = r.json()["id"]
    j = wait_done(secure_server, key, hid)
    assert j["status"] == "done" and j["matches"] == 3 and j["candidates"] == 3 and j["samples"] == 8
    res = requests.get("%s/api/hunts/%d/results?limit=2" % (secure_server.url, hid), headers=auth(key), timeout=10).json()
    assert res["total"] == 3 and len(res["data"]) == 2
    m = res["data"][0]
    assert m["rule"] == "evil" and m["sample"]["sha256"] in hits
    assert m["strings"][0]["id"] == "$a" and m["strings"][0]["data"] == b"EVIL-MARKER-0042".hex()
    hashes = requests.get("%s/api/hunts/%d/hashes" % (secure_server.url, hid), headers=auth(key), timeout=10).text
    assert sorted(hashes.split()) == sorted(hits)
    z = requests.get("%s/api/hunts/%d/download" % (secure_server.url, hid), headers=auth(key), timeout=30)
    assert z.status_code == 200 and z.headers["Content-Type"] == "application/zip"
    (tmp_path / "h.zip").write_bytes(z.content)
    p = subprocess.run(["7z", "x", "-y", "-pinfected", "-o" + str(tmp_path / "x"), str(tmp_path / "h.zip")],
                       capture_output=True, text=True)
    assert p.returncode == 0 and sorted(os.listdir(tmp_path / "x")) == sorted(hits)
    listed = requests.get(secure_server.url + "/api/hunts", headers=auth(keys["reader"]), timeout=10).json()["data"]
    assert listed[0]["id"] == hid
    jobs = requests.get(secure_server.url + "/api/jobs", headers=auth(key), timeout=10).json()
    assert jobs["running"] == 0 and jobs["queued"] == 0 and jobs["workers"] >= 1
    assert requests.delete("%s/api/hunts/%d" % (secure_server.url, hid), headers=auth(key), timeout=10).status_code == 200
    assert requests.get("%s/api/hunts/%d" % (secure_server.url, hid), headers=auth(key), timeout=10).status_code == 404


def test_hunt_bad_input(secure_server, keys):
    h = auth(keys["analyst"])
    url = secure_server.url + "/api/hunts"
    r = requests.post(url, headers=h, json={"rule": "rule x {\n condition: $nope\n}"}, timeout=10)
    assert r.status_code == 400 and r.json()["line"] == 2
    r = requests.post(url, headers=h, json={"rule": 'include "/etc/passwd"\nrule a { condition: true }'}, timeout=10)
    assert r.status_code == 400 and "include" in r.json()["error"]
    r = requests.post(url, headers=dict(h, **{"Content-Type": "application/json"}), data=b"{", timeout=10)
    assert r.status_code == 400
    # A browser posts text/plain cross-site without a preflight: never accepted.
    r = requests.post(url, headers=dict(h, **{"Content-Type": "text/plain"}),
                      data=b'{"rule": "rule a { condition: true }"}', timeout=10)
    assert r.status_code == 415
    r = requests.post(url, headers=h, json={"rule": "rule a { condition: true }", "limit": "x"}, timeout=10)
    assert r.status_code == 400
    # The libyara crasher shapes are refused before any libyara sees them.
    r = requests.post(url, headers=h, json={"rule": "rule a { condition: ~9223372036854775807 \\ -1 }"}, timeout=10)
    assert r.status_code == 400
    assert requests.get(url + "/999", headers=h, timeout=10).status_code == 404
    assert requests.get(url + "/abc", headers=h, timeout=10).status_code == 400
    assert requests.get(url, headers=h, timeout=10).json()["data"] == []


def test_live_rules_over_http(secure_server, keys):
    key = keys["analyst"]
    old = upload(secure_server, key, "old.bin", os.urandom(300) + b"LIVE-NEEDLE-77" + os.urandom(300))
    wait_indexed(secure_server, key, 1)
    rule = 'rule live_one { meta: description = "test live rule" strings: $a = "LIVE-NEEDLE-77" condition: $a }'
    url = secure_server.url + "/api/rules"
    r = requests.post(url, headers=auth(key), json={"name": "watch", "rule": rule, "retro": True}, timeout=30)
    assert r.status_code == 201, r.text
    retro = r.json()["retrohunt"]
    j = wait_done(secure_server, key, retro)
    assert j["matches"] == 1
    new = upload(secure_server, key, "new.bin", os.urandom(300) + b"LIVE-NEEDLE-77" + os.urandom(300))
    wait_live_scanned(secure_server, key)
    hits = requests.get(url + "/watch/hits", headers=auth(key), timeout=10).json()["data"]
    assert {h["sha256"] for h in hits} == {old, new}
    s = requests.get(secure_server.url + "/api/samples/" + new, headers=auth(key), timeout=10).json()["data"]
    assert s["yara_rules"][0]["rule_name"] == "live_one"
    assert s["yara_rules"][0]["description"] == "test live rule"
    listed = requests.get(url, headers=auth(key), timeout=10).json()["data"]
    assert listed == [{"name": "watch", "enabled": True, "rule_count": 1, "hits": 2, "last_failure": None}]
    assert requests.post(url + "/watch/disable", headers=auth(key), timeout=10).status_code == 200
    third = upload(secure_server, key, "third.bin", b"LIVE-NEEDLE-77" + os.urandom(100))
    wait_live_scanned(secure_server, key)
    assert third not in {h["sha256"] for h in requests.get(url + "/watch/hits", headers=auth(key), timeout=10).json()["data"]}
    r = requests.post(url, headers=auth(key), json={"name": "watch", "rule": rule}, timeout=10)
    assert r.status_code == 409
    r = requests.post(url, headers=auth(key), json={"name": "bad name!", "rule": rule}, timeout=10)
    assert r.status_code == 400
    assert requests.delete(url + "/watch", headers=auth(key), timeout=10).status_code == 200
    assert requests.get(url + "/watch", headers=auth(key), timeout=10).status_code == 404


def test_sigterm_interrupts_running_hunts_and_keeps_queued(trawl, keys, tmp_path):
    srv = Server(trawl, "--workers", "1")
    try:
        key = keys["analyst"]
        upload_random(srv, key, "big", 40)
        # Twenty slow hunts are more than two runners finish before the stop below.
        ids = [requests.post(srv.url + "/api/hunts", headers=auth(key), json={"rule": SLOW_RULE}, timeout=10).json()["id"]
               for _ in range(20)]
        deadline = time.time() + 30
        while time.time() < deadline:
            st = requests.get("%s/api/hunts/%d" % (srv.url, ids[0]), headers=auth(key), timeout=10).json()["status"]
            if st != "queued":
                break
            time.sleep(0.02)
    finally:
        assert srv.stop() == 0
    states = [json.loads(trawl.run("results", "--json", i, check=0).stdout) for i in ids]
    print([(s.get("status"), s.get("error")) for s in states])
    # None is left "running": the running one stopped and says why, results
    # kept; the queued ones wait for the next start.
    status = [s["status"] for s in states]
    assert "running" not in status
    assert status[0] in ("cancelled", "done")
    for s in states:
        if s["status"] == "cancelled":
            assert "interrupted" in s["error"]
    assert status[-1] == "queued"


def test_hunt_queue_is_bounded(trawl, keys):
    """Past 64 waiting hunts, submissions get 429 and a reason, not a place in line."""
    srv = Server(trawl, "--workers", "1")
    try:
        key = keys["analyst"]
        upload_random(srv, key, "q", 16)
        codes, refused = [], None
        for _ in range(90):
            r = requests.post(srv.url + "/api/hunts", headers=auth(key), json={"rule": SLOW_RULE}, timeout=10)
            codes.append(r.status_code)
            if r.status_code == 429:
                refused = r.json()
        jobs = requests.get(srv.url + "/api/jobs", headers=auth(key), timeout=10).json()
        assert 429 in codes, codes
        assert set(codes) <= {201, 429}, codes
        assert "64 hunts are already queued" in json.dumps(refused)
        assert jobs["queued"] <= 64
        # Refused submissions left no job behind.
        listed = requests.get(srv.url + "/api/hunts", headers=auth(key), timeout=10).json()
        assert len(listed["data"]) == codes.count(201)
    finally:
        assert srv.stop() == 0


def test_rule_text_from_the_network_never_reads_server_files(trawl, keys, tmp_path):
    """An include anywhere in rule text (not only at a line start) is refused by
    the parser before any path is looked at: no file's existence, first token
    or contents leak, and /dev/zero cannot exhaust memory. The plan endpoint is
    open to anonymous readers in a lab, so it is tried without a key too."""
    secret = tmp_path / "secret.yar"
    secret.write_text('rule leaked_secret_rule { condition: true }\n')
    srv = Server(trawl, "--anonymous-read")
    try:
        h = dict(auth(keys["analyst"]))
        bodies = [
            'rule a { condition: true } include "%s"' % secret,
            'rule a { condition: true }\n  include "%s"' % secret,
            'rule a { condition: true } /* c */ include "/dev/zero"',
            'rule a { condition: true } include "/etc/shadow"',
            'rule a { condition: true } include "/nonexistent/file.yar"',
        ]
        for text in bodies:
            for path, extra, hdrs in (("/api/plan", {}, {}), ("/api/plan", {}, h),
                                      ("/api/hunts", {}, h),
                                      ("/api/rules", {"name": "inc"}, h)):
                r = requests.post(srv.url + path, headers=hdrs, json=dict(extra, rule=text), timeout=10)
                assert r.status_code == 400, (path, text, r.status_code, r.text)
                body = r.text
                assert "include is not allowed" in body, body
                assert "leaked_secret_rule" not in body
                assert "No such file" not in body and "not a regular file" not in body
        assert requests.get(srv.url + "/api/health", timeout=10).status_code == 200
        # Nothing was queued or saved.
        assert requests.get(srv.url + "/api/hunts", headers=h, timeout=10).json()["data"] == []
        assert requests.get(srv.url + "/api/rules", headers=h, timeout=10).json()["data"] == []
    finally:
        srv.stop()


def test_cli_hunt_inlines_includes(trawl, tmp_path):
    """A local user's rule file may include others: the job stores the text
    with includes inlined, and the verifier (libyara with includes disabled)
    still finds the match."""
    d = tmp_path / "rules"
    d.mkdir()
    (d / "inc.yar").write_text('rule inc_rule { strings: $a = "needle-included-1234" condition: $a }\n')
    (d / "main.yar").write_text('include "inc.yar"\nrule main_rule { condition: inc_rule }\n')
    s = tmp_path / "s.bin"
    s.write_bytes(b"xx needle-included-1234 yy" * 10)
    trawl.run("add", s, check=0)
    p = trawl.run("hunt", d / "main.yar", check=0)
    assert "inc_rule" in p.stdout and "main_rule" in p.stdout, p.stdout + p.stderr
    p = trawl.run("results", "1", "--json", check=0)
    assert "needle-included-1234" in p.stdout or "inc_rule" in p.stdout
    (d / "inc.yar").unlink()
    # The stored job does not depend on the included file any more.
    rules = json.loads(trawl.run("results", "1", "--json", check=0).stdout)
    assert rules


def test_rule_expanding_past_the_index_budget_is_refused(secure_server, keys):
    """10,000 hex strings with a wildcard between every byte expand to 20
    million index lookups: the hunt is refused at submission with a clear 400
    (the limit is 16M), and the server stays up."""
    import random
    rnd = random.Random(7)
    lines = ["rule wide_hex {", "  strings:"]
    for i in range(10000):
        b = [rnd.randrange(256) for _ in range(9)]
        lines.append("    $s%d = { %s }" % (i, " ?? ".join("%02x" % x for x in b)))
    lines.append("  condition: any of them\n}")
    rule = "\n".join(lines)
    h = auth(keys["analyst"])
    r = requests.post(secure_server.url + "/api/hunts", headers=h, json={"rule": rule}, timeout=60)
    assert r.status_code == 400, r.text
    assert "index lookups" in r.json()["error"]
    assert requests.get(secure_server.url + "/api/hunts", headers=h, timeout=10).json()["data"] == []
    # The same rule, small enough, is accepted.
    small = "\n".join(lines[:2 + 50]) + "\n  condition: any of them\n}"
    r = requests.post(secure_server.url + "/api/hunts", headers=h, json={"rule": small}, timeout=60)
    assert r.status_code == 201, r.text
    assert requests.get(secure_server.url + "/api/health", timeout=10).status_code == 200
