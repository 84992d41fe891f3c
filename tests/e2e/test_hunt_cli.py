"""trawl hunt / hunts / results / rules from the shell."""
import json
import os
import signal
import subprocess
import time

import pytest


@pytest.fixture(autouse=True)
def _hunt_registered(trawl_bin):
    """Until main.c registers hunt/hunts/results/rules, say so instead of failing."""
    p = subprocess.run([trawl_bin, "hunt", "--help"], capture_output=True, text=True)
    if "unknown command" in p.stderr:
        pytest.skip("trawl hunt is not registered in src/cli/main.c yet")


RULES = r'''
rule evil : bad {
    meta:
        author = "ana"
        description = "an evil marker"
        reference = "https://example.org/evil"
    strings:
        $a = "EVILSTRING"
    condition:
        $a
}
rule by_name { condition: filename == "named.bin" and extension == "bin" }
'''


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


@pytest.fixture
def loaded(trawl, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write(src / "evil.exe", b"MZ header EVILSTRING trailer")
    write(src / "named.bin", b"plain bytes, no marker")
    write(src / "other.txt", b"nothing to see")
    trawl.run("add", "--quiet", "--tag", "batch1", str(src), check=0)
    rules = tmp_path / "r.yar"
    rules.write_text(RULES)
    return trawl, tmp_path, str(rules)


def sha(data):
    import hashlib
    return hashlib.sha256(data).hexdigest()


def test_hunt_prints_rule_and_sha(loaded):
    trawl, _, rules = loaded
    p = trawl.run("hunt", rules, check=0)
    lines = sorted(p.stdout.splitlines())
    assert lines == sorted(["evil " + sha(b"MZ header EVILSTRING trailer"),
                            "by_name " + sha(b"plain bytes, no marker")])
    assert "cannot be accelerated" in p.stderr        # by_name has no strings
    assert "candidates" in p.stderr and "full scan would read 3 files" in p.stderr


def test_plan_accepts_what_hunt_accepts(loaded):
    """The RULES use the hunt's externals (filename, extension): plan must
    take the same language as hunt, not refuse them as undefined."""
    trawl, _, rules = loaded
    p = trawl.run("plan", rules, check=0)
    assert "by_name" in p.stdout and "evil" in p.stdout
    p = trawl.run("index", "query", rules)
    assert "undefined identifier" not in p.stderr


def test_hunt_json_has_details(loaded):
    trawl, _, rules = loaded
    p = trawl.run("hunt", "--json", rules, check=0)
    objs = [json.loads(l) for l in p.stdout.splitlines()]
    evil = [o for o in objs if o["rule"] == "evil"][0]
    assert evil["tags"] == ["bad"]
    assert evil["meta"]["author"] == "ana"
    assert evil["sample"]["file_names"] == ["evil.exe"]
    assert evil["sample"]["sha256"] == sha(b"MZ header EVILSTRING trailer")
    assert evil["strings"][0]["offset"] == 10
    assert bytes.fromhex(evil["strings"][0]["data"]) == b"EVILSTRING"
    assert bytes.fromhex(evil["strings"][0]["before"]) == b"MZ header "


def test_jobs_are_listed_and_kept(loaded):
    trawl, _, rules = loaded
    trawl.run("hunt", "--limit", "1", rules, check=0)
    p = trawl.run("hunts", "--json", check=0)
    jobs = json.loads(p.stdout)
    assert len(jobs) == 1 and jobs[0]["status"] == "cancelled" and jobs[0]["matches"] == 1
    r = json.loads(trawl.run("results", "--json", str(jobs[0]["id"]), check=0).stdout)
    assert len(r["results"]) == 1
    assert r["rule_files"][0]["text"] == open(rules).read()
    assert "stopped at the match limit" in r["error"]
    text = trawl.run("results", str(jobs[0]["id"]), check=0).stdout
    assert "hunt %d: cancelled" % jobs[0]["id"] in text
    trawl.run("results", "999", check=1)


def test_tag_filter(loaded):
    trawl, tmp, rules = loaded
    src = tmp / "in2"
    src.mkdir()
    write(src / "evil2.exe", b"second EVILSTRING")
    trawl.run("add", "--quiet", "--tag", "batch2", str(src), check=0)
    p = trawl.run("hunt", "--tag", "batch2", rules, check=0)
    assert p.stdout.split() == ["evil", sha(b"second EVILSTRING")]


def test_rejected_rules_fail_before_libyara(loaded):
    trawl, tmp, _ = loaded
    bad = tmp / "bad.yar"
    bad.write_text("rule x { strings: $h = { 31[-][8-][-]30 } condition: $h }\n")
    p = trawl.run("hunt", str(bad), check=1)
    assert "bad.yar:1:" in p.stderr
    assert trawl.run("hunt", check=2).returncode == 2


def test_livehunt_rules_lifecycle(loaded):
    trawl, tmp, rules = loaded
    p = trawl.run("rules", "add", "--retro", "L1", rules, check=0)
    assert "retrohunt" in p.stderr
    ls = json.loads(trawl.run("rules", "ls", "--json", check=0).stdout)
    assert ls[0]["name"] == "L1" and ls[0]["enabled"] and ls[0]["rules"] == 2
    assert ls[0]["hits"] == 2                     # the retrohunt's hits
    src = tmp / "in3"
    src.mkdir()
    write(src / "fresh.bin", b"fresh EVILSTRING arrives")
    trawl.run("add", "--quiet", str(src), check=0)
    hits = json.loads(trawl.run("rules", "hits", "--json", "L1", check=0).stdout)
    fresh = [h for h in hits if h["sha256"] == sha(b"fresh EVILSTRING arrives")]
    assert fresh and fresh[0]["rule_name"] == "evil" and fresh[0]["author"] == "ana"
    assert fresh[0]["reference"] == "https://example.org/evil"
    trawl.run("rules", "disable", "L1", check=0)
    write(src / "fresh2.bin", b"another EVILSTRING arrives")
    trawl.run("add", "--quiet", str(src), check=0)
    hits = json.loads(trawl.run("rules", "hits", "--json", "L1", check=0).stdout)
    assert not [h for h in hits if h["sha256"] == sha(b"another EVILSTRING arrives")]
    trawl.run("rules", "enable", "L1", check=0)
    trawl.run("rules", "add", "L1", rules, check=1)   # exists
    trawl.run("rules", "rm", "L1", check=0)
    trawl.run("rules", "rm", "L1", check=1)
    assert json.loads(trawl.run("rules", "ls", "--json", check=0).stdout) == []


def slow_corpus(trawl, tmp):
    src = tmp / "slow"
    src.mkdir()
    for i in range(24):
        write(src / ("f%02d" % i), (b"ab" * 700000) + bytes([i]))
    trawl.run("add", "--quiet", "--no-index", str(src), check=0)
    rules = tmp / "slow.yar"
    # A regex libyara must try at every offset: slow enough to interrupt.
    rules.write_text("rule slow { strings: $r = /a[ab]{0,60}c/ condition: $r }\n")
    return str(rules)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_hunt(trawl, tmp_path, sig):
    rules = slow_corpus(trawl, tmp_path)
    proc = subprocess.Popen(trawl.cmd("hunt", rules), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(1.5)
    os.killpg(proc.pid, sig) if sig == signal.SIGKILL else proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    jobs = json.loads(trawl.run("hunts", "--json", check=0).stdout)
    assert len(jobs) == 1
    if sig == signal.SIGINT:
        # Stopped cleanly (or it had finished): never left running.
        assert jobs[0]["status"] in ("cancelled", "done"), (jobs, err)
        if jobs[0]["status"] == "cancelled":
            assert proc.returncode == 1 and "cancelled" in err
    else:
        assert jobs[0]["status"] in ("failed", "done"), jobs
        if jobs[0]["status"] == "failed":
            assert "interrupted" in jobs[0]["error"]


def test_detach_queues_a_job(loaded):
    trawl, _, rules = loaded
    p = trawl.run("hunt", "--detach", rules, check=0)
    job_id = int(p.stdout.strip())
    jobs = json.loads(trawl.run("hunts", "--json", check=0).stdout)
    assert [(j["id"], j["status"]) for j in jobs] == [(job_id, "queued")]


def test_several_rule_files_share_one_namespace_like_yara(trawl, tmp_path):
    """yara a.yar b.yar DIR: a global rule of a.yar restricts b.yar's rules, b.yar
    may refer to a.yar's rules, and a name may not repeat across the files.
    trawl hunt a.yar b.yar must give the yara tool's answer."""
    import shutil
    src = tmp_path / "in"
    src.mkdir()
    write(src / "small.bin", b"MARK tiny")
    write(src / "large.bin", b"MARK " + b"x" * 200)
    trawl.run("add", "--quiet", str(src), check=0)
    a = tmp_path / "a.yar"
    a.write_text('global rule size_gate { condition: filesize < 100 }\n'
                 'rule marked { strings: $m = "MARK" condition: $m }\n')
    b = tmp_path / "b.yar"
    b.write_text('rule anything { condition: true }\n'
                 'rule refers { condition: marked }\n')
    p = trawl.run("hunt", a, b, check=0)
    got = sorted(p.stdout.split())
    want = sorted(["size_gate", sha(b"MARK tiny"), "marked", sha(b"MARK tiny"),
                   "anything", sha(b"MARK tiny"), "refers", sha(b"MARK tiny")])
    assert got == want, p.stdout + p.stderr
    if shutil.which("yara"):
        y = subprocess.run(["yara", str(a), str(b), str(src)], capture_output=True, text=True)
        assert sorted(l.split()[0] for l in y.stdout.splitlines()) == \
            sorted(["size_gate", "marked", "anything", "refers"])
    # The matches name the file each rule came from.
    res = json.loads(trawl.run("results", "1", "--json", check=0).stdout)
    sources = {m["rule"]: os.path.basename(m["source"]) for m in res["results"]}
    assert sources["anything"] == "b.yar" and sources["marked"] == "a.yar", sources
    c = tmp_path / "c.yar"
    c.write_text('rule marked { condition: true }\n')
    p = trawl.run("hunt", a, c)
    assert p.returncode != 0 and "duplicated" in p.stderr, p.stderr
