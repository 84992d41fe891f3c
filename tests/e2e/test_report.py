"""Report import end to end: the CLI's draft and commit, the seed digest
against ATT&CK, refusals that create nothing, links to stored samples,
POST /api/reports/import, the labelled set's precision and recall, and the
examples of docs/report.md."""
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import ROOT, SHARED

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "reports")
DIGEST = os.path.join(SHARED, "data", "reports", "000_d651423fc4c00244.txt")
ATTACK = os.path.join(SHARED, "data", "attack", "enterprise-attack-entities.json")
sys.path.insert(0, os.path.join(ROOT, "bench"))
import report_accuracy  # noqa: E402


def need(path):
    if not os.path.exists(path):
        pytest.skip("missing %s" % path)


def draft(trawl, *args):
    p = trawl.run("import", "report", "--json", *args, check=0)
    return json.loads(p.stdout)


def reports(trawl):
    p = trawl.run("stix", "search", "--type", "report", "--json")
    if p.returncode != 0:
        return []
    return json.loads(p.stdout)


def test_cli_draft_offsets_point_into_the_text(trawl):
    path = os.path.join(FIXTURES, "hand-en-blog.txt")
    d = draft(trawl, path)
    text = open(path, encoding="utf-8").read()
    assert d["text"] == text
    assert d["report"]["name"].startswith('Inside "DriftLoader"')
    by = {(e["kind"], e["value"]): e for e in d["extractions"]}
    ip = by[("ipv4", "91.215.85.142")]
    assert ip["defanged"] and ip["accepted"]
    assert text.encode()[ip["offset"]:ip["offset"] + ip["length"]].decode() in ("91.215.85[.]142",)
    assert by[("ipv4", "192.0.2.44")]["class"] == "documentation"
    assert by[("ipv4", "3.1.0.7")]["class"] == "version"
    assert by[("filename", "rundll32.exe")]["class"] == "benign"
    # Every offset is a byte range of the original that spells the value or its defanged form.
    raw = text.encode()
    for e in d["extractions"]:
        span = raw[e["offset"]:e["offset"] + e["length"]].decode()
        if e["defanged"]:
            assert span == e["original"]
        else:
            assert span.lower() == e["value"].lower() or e["kind"] in ("ipv6", "yara")
    # The bundle: the report refers to the artifact and one indicator per accepted observable.
    objs = {o["id"]: o for o in d["bundle"]["objects"]}
    refs = d["report"]["object_refs"]
    assert all(r in objs for r in refs)
    patterns = {o["pattern"] for o in objs.values() if o["type"] == "indicator"}
    assert "[ipv4-addr:value = '91.215.85.142']" in patterns
    assert "[windows-registry-key:key = 'HKCU\\\\Software\\\\Microsoft\\\\Windows\\\\CurrentVersion\\\\Run\\\\DriftUpdate']" in patterns
    assert not any("192.0.2.44" in p for p in patterns)
    # The text form lists the same extractions with offsets.
    p = trawl.run("import", "report", path, check=0)
    assert re.search(r"\+\s+\d+\+\d+\s+ipv4\s+indicator\s+91\.215\.85\.142", p.stdout)
    p = trawl.run("import", "report", "--summary", path, check=0)
    assert re.search(r"ipv4 +indicator +2\n", p.stdout) and re.search(r"ipv4 +version +2\n", p.stdout)
    assert reports(trawl) == []   # a draft stores nothing


def test_cli_commit_and_refusals(trawl, tmp_path):
    path = os.path.join(FIXTURES, "hand-ja-news.txt")
    p = trawl.run("import", "report", "--commit", "--label", "espionage", "--marking", "TLP:GREEN",
                  "--published", "2024-06-03", path, check=0)
    rid = re.search(r"committed (report--[0-9a-f-]+)", p.stdout).group(1)
    shown = json.loads(trawl.run("stix", "show", rid, "--json", check=0).stdout)
    assert shown["labels"] == ["espionage"]
    assert shown["published"] == "2024-06-03T00:00:00Z"
    assert shown["object_marking_refs"] == ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]
    art = [r for r in shown["object_refs"] if r.startswith("artifact--")][0]
    artifact = json.loads(trawl.run("stix", "show", art, "--json", check=0).stdout)
    assert base64.b64decode(artifact["payload_bin"]) == open(path, "rb").read()
    # A few kilobytes travel inline (they once went to disk at over 3 KB).
    medium = tmp_path / "medium.txt"
    medium.write_bytes(b"\n".join(open(os.path.join(FIXTURES, "en-%02d.txt" % i), "rb").read()
                                  for i in range(4)))
    assert len(medium.read_bytes()) > 3072
    p = trawl.run("import", "report", "--commit", medium, check=0)
    rid = re.search(r"committed (report--[0-9a-f-]+)", p.stdout).group(1)
    shown = json.loads(trawl.run("stix", "show", rid, "--json", check=0).stdout)
    art = [r for r in shown["object_refs"] if r.startswith("artifact--")][0]
    artifact = json.loads(trawl.run("stix", "show", art, "--json", check=0).stdout)
    assert base64.b64decode(artifact["payload_bin"]) == medium.read_bytes()
    # Larger than the inline limit (1 MB): kept on disk, named by the artifact.
    large = tmp_path / "large.txt"
    large.write_bytes((medium.read_bytes() + b"\n") * (1100000 // len(medium.read_bytes())))
    assert len(large.read_bytes()) > 1 << 20
    p = trawl.run("import", "report", "--commit", large, check=0)
    rid = re.search(r"committed (report--[0-9a-f-]+)", p.stdout).group(1)
    shown = json.loads(trawl.run("stix", "show", rid, "--json", check=0).stdout)
    art = [r for r in shown["object_refs"] if r.startswith("artifact--")][0]
    artifact = json.loads(trawl.run("stix", "show", art, "--json", check=0).stdout)
    sha = artifact["hashes"]["SHA-256"]
    assert artifact["url"] == "trawl:reports/" + sha
    assert open(os.path.join(trawl.data, "reports", sha), "rb").read() == large.read_bytes()
    # Refusals: each names the problem and creates nothing.
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4 this is not a pdf")
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"MZ\x00\x00\x01\x02")
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.truncate((32 << 20) + 1)
    before = len(reports(trawl))
    for f, word in ((empty, "empty"), (bad, "corrupt"), (binary, "binary"), (big, "too large")):
        p = trawl.run("import", "report", "--commit", f, check=1)
        assert word in p.stderr, p.stderr
    if shutil.which("qpdf"):
        plain = tmp_path / "plain.pdf"
        with open(os.path.join(FIXTURES, "en-pdf.roff"), "rb") as src, open(plain, "wb") as out:
            subprocess.run(["groff", "-Tpdf"], stdin=src, stdout=out, check=True)
        locked = tmp_path / "locked.pdf"
        subprocess.run(["qpdf", "--encrypt", "user", "owner", "256", "--", str(plain), str(locked)],
                       check=True)
        p = trawl.run("import", "report", "--commit", locked, check=1)
        assert "encrypted" in p.stderr
    assert len(reports(trawl)) == before
    p = trawl.run("import", "report", "--marking", "TLP:PURPLE", path, check=1)
    assert "unknown marking" in p.stderr


def test_seed_digest_names_entities(trawl):
    need(DIGEST)
    need(ATTACK)
    trawl.run("stix", "import", ATTACK, check=0)
    d = draft(trawl, DIGEST)
    named = {(e["name"], e["matched"]) for e in d["entities"]}
    for want in (("Conti", "Conti"), ("REvil", "REvil"), ("Indrik Spider", "Evil Corp"),
                 ("Wizard Spider", "FIN12"), ("Ryuk", "Ryuk"), ("WastedLocker", "WastedLocker")):
        assert want in named, want
    # "Contiが": matched without a space after it, offsets in bytes of the UTF-8 text.
    first = d["entities"][0]
    assert first["offset"] == 0 and first["name"] == "Conti"
    assert {c["name"] for c in d["candidates"]} >= {"Macaw", "BlackMatter"}
    props = {(p["source_name"], p["relationship_type"], p["target_name"]) for p in d["proposals"]}
    assert ("Wizard Spider", "uses", "Conti") in props
    assert all(p["status"] == "proposal" for p in d["proposals"])
    p = trawl.run("import", "report", "--commit", DIGEST, check=0)
    rid = re.search(r"committed (report--[0-9a-f-]+)", p.stdout).group(1)
    shown = json.loads(trawl.run("stix", "show", rid, "--json", check=0).stdout)
    wizard = "intrusion-set--dd2d9ca6-505b-4860-a604-233685b802c7"
    assert wizard in shown["object_refs"]
    # Proposals are not asserted: no relationship was created.
    rels = trawl.run("stix", "export", "--type", "relationship", check=0).stdout
    n_before = len(json.loads(rels)["objects"])
    trawl.run("import", "report", "--commit", DIGEST, check=0)
    assert len(json.loads(trawl.run("stix", "export", "--type", "relationship",
                                    check=0).stdout)["objects"]) == n_before


def test_hash_of_a_stored_sample_is_linked(trawl, tmp_path):
    sample = tmp_path / "s.bin"
    sample.write_bytes(b"report import link test " + uuid.uuid4().bytes)
    trawl.run("add", sample, check=0)
    info = json.loads(trawl.run("info", "--json", __import__("hashlib").sha256(sample.read_bytes()).hexdigest(), check=0).stdout)
    doc = tmp_path / "r.txt"
    doc.write_text("Stored: %s and unknown %s\n" % (info["md5_hash"], "ab" * 32))
    d = draft(trawl, doc)
    by = {e["value"]: e for e in d["extractions"]}
    assert by[info["md5_hash"]]["sample"]["sha256_hash"] == info["sha256_hash"]
    assert "sample" not in by["ab" * 32]


def call(url, method="GET", body=None, key=None, ctype=None):
    req = urllib.request.Request(url, data=body, method=method)
    if key:
        req.add_header("Authorization", "Bearer " + key)
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def multipart(fields, name, data):
    b = "----trawl" + uuid.uuid4().hex
    out = b""
    for k, v in fields.items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (b, k, v)).encode()
    out += ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n" % (b, name)).encode() + data + b"\r\n"
    out += ("--%s--\r\n" % b).encode()
    return out, "multipart/form-data; boundary=" + b


def test_api_import(secure_server, keys, trawl):
    url = secure_server.url + "/api/reports/import"
    html = open(os.path.join(FIXTURES, "en-page.html"), "rb").read()
    body, ctype = multipart({"name": "From the form", "label": "web,kit"}, "page.html", html)
    st, _ = call(url, "POST", body, keys["reader"], ctype)
    assert st == 403
    st, out = call(url, "POST", body, keys["analyst"], ctype)
    assert st == 200, out
    d = json.loads(out)
    assert d["document"]["format"] == "html"
    assert d["report"]["name"] == "From the form"
    assert d["report"]["labels"] == ["web", "kit"]
    links = [e for e in d["extractions"] if e.get("source") == "link"]
    assert links and links[0]["kind"] == "url"
    assert "pixel" not in d["text"]             # the <script> is not text
    st, out = call(url + "?commit=1", "POST",
                   json.dumps({"text": "FIN12 uses Conti. C2 hxxp://45.77.12[.]201/gate",
                               "labels": ["ransomware"]}).encode(), keys["analyst"],
                   "application/json")
    assert st == 201, out
    d = json.loads(out)
    assert d["committed"]["added"] >= 3
    rid = d["report"]["id"]
    st, out = call(secure_server.url + "/api/stix/objects/" + rid, key=keys["reader"])
    assert st == 200 and json.loads(out)["labels"] == ["ransomware"]
    st, out = call(url + "?filename=x.txt", "POST", b"raw body with 45.77.12[.]201\n",
                   keys["analyst"], "text/plain")
    assert st == 200 and any(e["value"] == "45.77.12.201" for e in json.loads(out)["extractions"])
    st, out = call(url + "?commit=1", "POST", b"", keys["analyst"], "text/plain")
    assert st == 400 and b"empty" in out
    st, out = call(url, "POST", json.dumps({"nottext": 1}).encode(), keys["analyst"],
                   "application/json")
    assert st == 400


def test_labelled_set_precision_recall(trawl_bin):
    if not shutil.which("groff"):
        pytest.fail("groff is needed to make the PDF of the labelled set (scripts/install-deps.sh)")
    r = report_accuracy.evaluate(trawl_bin)
    assert r["documents"] >= 20 and r["indicators"] >= 300
    assert r["precision"] >= 0.97, r["problems"]
    assert r["recall"] >= 0.97, r["problems"]
    assert r["negatives_classified"] == r["negatives"], r["problems"]


def test_doc_examples_run(secure_server, keys, trawl):
    text = open(os.path.join(ROOT, "docs", "report.md")).read()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert len(blocks) >= 4
    env = dict(os.environ, TRAWL=" ".join(trawl.cmd()), KEY=keys["analyst"],
               SERVER=secure_server.url)
    script = "set -euo pipefail\n" + "\n".join(blocks)
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=120)
    assert p.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (p.stdout[-3000:], p.stderr[-3000:])
    assert "extractions (" in p.stdout
    assert "('url', 'https://news-portal-jp.top/api/update')" in p.stdout
    assert "committed report--" in p.stdout
    assert "Web advisory & IOCs" in p.stdout
    assert "'added'" in p.stdout
    # The review examples: the lines rejected, the commit, the list, the API's commit.
    assert re.search(r"^ +9 +\+ .* 2a0e:97c0:3e3:71d::14 ", p.stdout, re.M)
    assert re.search(r"^ +12 +\+ .* update-msstore\.com ", p.stdout, re.M)
    assert re.search(r"^draft [0-9a-f-]{36} committed: report--", p.stdout, re.M)
    assert re.search(r"^[0-9a-f-]{36}  committed ", p.stdout, re.M)
    assert re.search(r"^\d+ objects committed$", p.stdout, re.M)


def helper_of(pid):
    """The pid of a text-extraction helper the server runs, or None."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == pid and b"__extract-document" in argv:
            return int(entry)
    return None


def test_extractor_death_fails_only_that_document(secure_server, keys):
    """Documents are parsed by a helper process: killing it mid-parse (as
    a crash or the OOM killer would) refuses that document alone, and the
    server answers the next one. A parser in the server would take the
    server down with it, and no helper would be found to kill."""
    url = secure_server.url + "/api/reports/import?filename=big.html"
    rows = []
    size = 0
    i = 0
    while size < 30 << 20:
        row = '<tr><td>host-%d.example.com</td><td><a href="http://198.51.100.%d/p%d">x</a></td></tr>\n' % (i, i % 250, i)
        rows.append(row)
        size += len(row)
        i += 1
    page = ("<html><body><table>" + "".join(rows) + "</table></body></html>").encode()
    answer = {}

    def post():
        answer["r"] = call(url, "POST", page, keys["analyst"], "text/html")

    t = threading.Thread(target=post)
    t.start()
    server_pid = secure_server.proc.pid
    victim = None
    while t.is_alive() and victim is None:
        victim = helper_of(server_pid)
        time.sleep(0.005)
    assert victim is not None, "no extraction helper seen while the server parsed the page"
    os.kill(victim, signal.SIGKILL)
    t.join(120)
    st, out = answer["r"]
    assert st == 400, out
    assert b"text extractor was killed (signal 9" in out, out
    assert secure_server.proc.poll() is None
    st, out = call(secure_server.url + "/api/reports/import?filename=x.txt", "POST",
                   b"after the kill: 45.77.12[.]201\n", keys["analyst"], "text/plain")
    assert st == 200 and any(e["value"] == "45.77.12.201"
                             for e in json.loads(out)["extractions"]), out
    assert helper_of(server_pid) is None          # every helper is reaped
