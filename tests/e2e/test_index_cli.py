"""The index through the CLI: every add is indexed, candidates match a
brute-force scan, rm tombstones at once, compaction and verify."""
import hashlib
import json
import os
import random


def make_slice(root, rnd):
    """Random files with planted literals, plus a few real binaries."""
    needles = {"alpha": b"alpha-needle-7Qx", "wide": "WideNeedle".encode("utf-16-le"),
               "hexy": bytes.fromhex("4d5a90000300000004000000ffff")}
    files = {}
    for i in range(120):
        data = bytearray(rnd.randbytes(rnd.choice([100, 3000, 40000])))
        for name, needle in needles.items():
            if rnd.random() < 0.2:
                at = rnd.randrange(len(data))
                data[at:at] = needle
        path = os.path.join(root, "f%03d.bin" % i)
        with open(path, "wb") as f:
            f.write(data)
        files[hashlib.sha256(data).hexdigest()] = bytes(data)
    for b in ("/bin/true", "/bin/ls"):
        with open(b, "rb") as f:
            data = f.read()
        files[hashlib.sha256(data).hexdigest()] = data
    return needles, files


RULES = r'''
rule alpha { strings: $a = "alpha-needle-7Qx" condition: $a }
rule widestr { strings: $a = "WideNeedle" wide condition: $a }
rule hexy { strings: $a = { 4d 5a 90 00 03 00 00 00 04 00 00 00 ff ff } condition: $a }
rule both { strings: $a = "alpha-needle-7Qx" $b = "WideNeedle" wide condition: $a and $b }
'''


def candidates(trawl, rules_path):
    out = {}
    p = trawl.run("index", "query", rules_path, check=0)
    for line in p.stdout.splitlines():
        rule, sha = line.split()
        out.setdefault(rule, set()).add(sha)
    return out


def test_index_follows_the_store(trawl, tmp_path):
    rnd = random.Random(1234)
    root = tmp_path / "slice"
    root.mkdir()
    needles, files = make_slice(str(root), rnd)
    trawl.run("add", root, "/bin/true", "/bin/ls", check=0)
    st = json.loads(trawl.run("index", "status", "--json", check=0).stdout)
    assert st["documents"] == len(files) and st["tombstones"] == 0

    rules = tmp_path / "r.yar"
    rules.write_text(RULES)
    got = candidates(trawl, rules)
    truth = {name: {sha for sha, data in files.items() if needle in data}
             for name, needle in needles.items()}
    truth = {"alpha": truth["alpha"], "widestr": truth["wide"], "hexy": truth["hexy"],
             "both": truth["alpha"] & truth["wide"]}
    for rule, want in truth.items():
        # Long literals in random bytes: the index answer is exact here.
        assert got.get(rule, set()) == want, rule
    assert truth["alpha"] and truth["both"]

    # rm: gone from candidates at once, tombstoned until compaction.
    victim = sorted(truth["alpha"])[0]
    trawl.run("rm", victim, check=0)
    assert victim not in candidates(trawl, rules).get("alpha", set())
    st = json.loads(trawl.run("index", "status", "--json", check=0).stdout)
    assert st["tombstones"] == 1
    trawl.run("index", "compact", check=0)
    st = json.loads(trawl.run("index", "status", "--json", check=0).stdout)
    assert st["tombstones"] == 0 and st["segments"] == 1
    assert st["documents"] == len(files) - 1
    assert candidates(trawl, rules)["alpha"] == truth["alpha"] - {victim}

    p = trawl.run("index", "verify", check=0)
    assert "consistent" in p.stdout and "0 bad" in p.stdout


def test_add_without_index_is_caught_up(trawl, tmp_path):
    (tmp_path / "a.bin").write_bytes(b"catch-up-needle " * 50)
    p = trawl.run("add", "--no-index", tmp_path / "a.bin", check=0)
    assert "indexed 0" in p.stdout
    st = json.loads(trawl.run("index", "status", "--json", check=0).stdout)
    assert st["documents"] == 0
    p = trawl.run("index", "update", check=0)
    assert "indexed 1 samples" in p.stdout, p.stdout
    (tmp_path / "r.yar").write_text('rule c { strings: $a = "catch-up-needle" condition: $a }')
    assert len(candidates(trawl, tmp_path / "r.yar")["c"]) == 1
