"""trawl similar and GET /api/samples/{hash}/similar against the real binary;
distances checked with the reference CLIs (tlsh, ssdeep)."""
import hashlib
import json
import os
import random
import re
import shutil
import subprocess

import pytest
import requests

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
         "sigma tau upsilon phi chi psi omega").split()


def family(root, name, seed, variants):
    """variants files: one text, each with more lines rewritten than the last."""
    rnd = random.Random(seed)
    lines = [" ".join(rnd.choice(WORDS) for _ in range(8)) + "\n" for _ in range(300)]
    out = []
    for v in range(variants):
        mine = list(lines)
        for _ in range(v * 6):
            mine[rnd.randrange(len(mine))] = " ".join(rnd.choice(WORDS) for _ in range(8)) + "\n"
        data = ("%s version %d\n" % (name, v) + "".join(mine)).encode()
        path = os.path.join(root, "%s-%d.txt" % (name, v))
        with open(path, "wb") as f:
            f.write(data)
        out.append((path, hashlib.sha256(data).hexdigest()))
    return out


@pytest.fixture
def corpus(trawl, tmp_path):
    root = str(tmp_path / "in")
    os.makedirs(root)
    fams = {"aa": family(root, "aa", 1, 6), "bb": family(root, "bb", 2, 6)}
    trawl.run("add", "--quiet", root, check=0)
    return root, fams


def tlsh_cli(a, b):
    p = subprocess.run(["tlsh", "-c", a, "-f", b], capture_output=True, text=True, check=True)
    return int(p.stdout.split()[0])


def ssdeep_cli(a, b, tmp):
    known = os.path.join(tmp, "known.txt")
    with open(known, "w") as f:
        f.write(subprocess.run(["ssdeep", "-b", a], capture_output=True, text=True,
                               check=True).stdout)
    out = subprocess.run(["ssdeep", "-a", "-b", "-m", known, b], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"\((\d+)\)", out)
    return int(m.group(1)) if m else 0


def test_cli_tlsh_nearest_with_reference_distances(trawl, corpus):
    root, fams = corpus
    by_sha = {sha: path for f in fams.values() for path, sha in f}
    q_path, q_sha = fams["aa"][0]
    assert os.path.exists(os.path.join(trawl.data, "similar", "tlsh.idx"))
    p = trawl.run("similar", "--json", "--max", "4", q_sha, check=0)
    ans = json.loads(p.stdout)
    assert ans["by"] == "tlsh" and ans["metric"] == "distance" and ans["sha256_hash"] == q_sha
    res = ans["results"]
    assert len(res) == 4
    # the query itself is not answered; the nearest are its own family
    assert all(r["sha256_hash"] != q_sha for r in res)
    assert {r["sha256_hash"] for r in res} <= {sha for _, sha in fams["aa"]}
    assert res[0]["sha256_hash"] == fams["aa"][1][1]
    # nearest first, each distance the tlsh CLI's, and no sample left out
    # that is nearer than the last one answered
    dists = [r["distance"] for r in res]
    assert dists == sorted(dists)
    for r in res:
        assert r["distance"] == tlsh_cli(q_path, by_sha[r["sha256_hash"]])
    for path, sha in fams["aa"][1:] + fams["bb"]:
        if sha not in {r["sha256_hash"] for r in res}:
            assert tlsh_cli(q_path, path) >= dists[-1]
    # the text form says the same
    text = trawl.run("similar", "--max", "4", q_sha, check=0).stdout
    assert text.splitlines()[1].split()[:2] == [str(dists[0]), res[0]["sha256_hash"]]


def test_cli_ssdeep_scores_match_the_ssdeep_cli(trawl, corpus, tmp_path):
    root, fams = corpus
    by_sha = {sha: path for f in fams.values() for path, sha in f}
    q_path, q_sha = fams["bb"][0]
    ans = json.loads(trawl.run("similar", "--json", "--by", "ssdeep", "--max", "20", q_sha,
                               check=0).stdout)
    assert ans["metric"] == "score"
    res = ans["results"]
    assert res, "the family's variants share 7-grams"
    scores = [r["score"] for r in res]
    assert scores == sorted(scores, reverse=True)
    for r in res:
        assert r["score"] == ssdeep_cli(q_path, by_sha[r["sha256_hash"]], str(tmp_path))
    # every sample ssdeep scores above 0 is answered
    answered = {r["sha256_hash"] for r in res}
    for path, sha in fams["aa"] + fams["bb"][1:]:
        if ssdeep_cli(q_path, path, str(tmp_path)) > 0:
            assert sha in answered


def test_cli_usage_and_kinds(trawl, corpus):
    root, fams = corpus
    sha = fams["aa"][0][1]
    assert trawl.run("similar", "--by", "nope", sha).returncode == 2
    assert trawl.run("similar", "not-a-hash").returncode == 2
    assert trawl.run("similar", "0" * 64).returncode == 1
    # text files have no imphash: nothing is similar by it
    p = trawl.run("similar", "--by", "imphash", sha, check=0)
    assert "no similar samples by imphash" in p.stdout


def test_removed_sample_is_not_answered_and_rebuild(trawl, corpus):
    root, fams = corpus
    q_sha = fams["aa"][0][1]
    nearest = fams["aa"][1][1]
    before = json.loads(trawl.run("similar", "--json", "--max", "11", q_sha,
                                  check=0).stdout)["results"]
    assert before[0]["sha256_hash"] == nearest
    trawl.run("rm", nearest, check=0)
    res = json.loads(trawl.run("similar", "--json", q_sha, check=0).stdout)["results"]
    assert res == [r for r in before if r["sha256_hash"] != nearest][:10]
    idx = os.path.join(trawl.data, "similar", "tlsh.idx")
    os.unlink(idx)
    trawl.run("similar", "--rebuild", check=0)
    assert os.path.exists(idx)
    res2 = json.loads(trawl.run("similar", "--json", q_sha, check=0).stdout)["results"]
    assert res2 == res


def test_api_similar(trawl, corpus):
    from conftest import Server
    root, fams = corpus
    q_sha = fams["bb"][0][1]
    srv = Server(trawl, "--anonymous-read")
    try:
        url = srv.url + "/api/samples/%s/similar" % q_sha
        r = requests.get(url, params={"by": "tlsh", "max": "3"}, timeout=30)
        assert r.status_code == 200, r.text
        ans = r.json()
        cli = json.loads(trawl.run("similar", "--json", "--max", "3", q_sha, check=0).stdout)
        assert ans == cli
        assert len(ans["results"]) == 3
        assert ans["results"][0]["sha256_hash"] == fams["bb"][1][1]
        # md5 names the sample too
        md5 = hashlib.md5(open(fams["bb"][0][0], "rb").read()).hexdigest()
        r = requests.get(srv.url + "/api/samples/%s/similar?max=3" % md5, timeout=30)
        assert r.json() == ans
        r = requests.get(url, params={"by": "ssdeep"}, timeout=30)
        assert r.status_code == 200 and r.json()["metric"] == "score"
        assert requests.get(url, params={"by": "bogus"}, timeout=30).status_code == 400
        assert requests.get(url, params={"max": "0"}, timeout=30).status_code == 400
        assert requests.get(url, params={"max": "x"}, timeout=30).status_code == 400
        r = requests.get(srv.url + "/api/samples/%s/similar" % ("0" * 64), timeout=30)
        assert r.status_code == 404
        # telfhash: until a module stores it, the store has none to compare
        r = requests.get(url, params={"by": "telfhash"}, timeout=30)
        assert r.status_code in (200, 404)
        assert requests.post(url, timeout=30).status_code in (401, 403, 405)
        # the sample page's section is served
        js = requests.get(srv.url + "/ui/similar.js", timeout=30)
        assert js.status_code == 200 and "similarMount" in js.text
        assert "/ui/similar.js" in requests.get(srv.url + "/", timeout=30).text
    finally:
        srv.stop()


def test_doc_examples_run(trawl, tmp_path):
    """Every sh block of docs/similar.md runs, in order, against a live server."""
    from conftest import ROOT, Server
    text = open(os.path.join(ROOT, "docs", "similar.md")).read()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(trawl.binary, bindir / "trawl")
    shutil.rmtree("/tmp/trawl-doc-similar", ignore_errors=True)
    (tmp_path / "empty").mkdir()
    trawl.run("add", "--quiet", str(tmp_path / "empty"), check=0)   # the server needs a store
    srv = Server(trawl, "--anonymous-read")
    try:
        env = dict(os.environ, TRAWL=srv.url, TRAWL_DATA=trawl.data,
                   PATH=str(bindir) + ":" + os.environ["PATH"])
        p = subprocess.run(["bash", "-c", "set -euo pipefail\n" + "\n".join(blocks)],
                           capture_output=True, text=True, env=env, timeout=300)
    finally:
        srv.stop()
        shutil.rmtree("/tmp/trawl-doc-similar", ignore_errors=True)
    assert p.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (p.stdout[-3000:], p.stderr[-3000:])
    b_sha = hashlib.sha256(b"".join(("%d lorem ipsum dolor sit amet\n" % i).encode()
                                    for i in range(1, 3001)) + b"one more line\n").hexdigest()
    # the near copy is the nearest, by TLSH, by ssdeep and over HTTP
    lines = p.stdout.splitlines()
    assert lines[1].split()[1] == b_sha
    assert '"by":"tlsh"' in p.stdout.replace(" ", "")
    assert p.stdout.count(b_sha) >= 4
