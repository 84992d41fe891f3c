"""trawl add / info / ls / rm / fsck against the real binary."""
import hashlib
import json
import os
import random
import re

from conftest import drop_file_read_capabilities

SUMMARY = re.compile(r"added (\d+) new, (\d+) duplicates?, (\d+) failed, (\d+) skipped")


def summary(stdout):
    m = SUMMARY.search(stdout)
    assert m, stdout
    return tuple(int(x) for x in m.groups())


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def make_tree(root):
    """Five distinct files, two duplicates, an empty file, a symlink loop,
    a FIFO and an unreadable file."""
    rnd = random.Random(7)
    shas = {}
    for i in range(5):
        data = bytes(rnd.getrandbits(8) for _ in range(1000 + i * 300))
        shas["f%d" % i] = write(os.path.join(root, "dir%d" % (i % 2), "f%d.bin" % i), data)
    with open(os.path.join(root, "dir0", "f0.bin"), "rb") as f:
        write(os.path.join(root, "copies", "again.bin"), f.read())
    with open(os.path.join(root, "dir1", "f1.bin"), "rb") as f:
        write(os.path.join(root, "copies", "deeper", "f1-copy.bin"), f.read())
    shas["empty"] = write(os.path.join(root, "empty.txt"), b"")
    os.symlink("..", os.path.join(root, "copies", "loop"))
    os.mkfifo(os.path.join(root, "fifo"))
    write(os.path.join(root, "secret.bin"), b"unreadable bytes")
    os.chmod(os.path.join(root, "secret.bin"), 0)
    return shas


def test_add_directory_counts_and_exit_status(trawl, tmp_path):
    root = str(tmp_path / "in")
    shas = make_tree(root)
    p = trawl.run("add", "--tag", "batch1", "--signature", "TestFam", root,
                  wrap=drop_file_read_capabilities())
    assert p.returncode == 1, p.stderr          # the unreadable file failed
    new, dup, failed, skipped = summary(p.stdout)
    assert (new, dup, failed) == (6, 2, 1)      # 5 files + empty; 2 copies
    assert skipped == 2                         # the FIFO and the loop
    assert "secret.bin" in p.stderr and "Permission denied" in p.stderr
    assert "not a regular file" in p.stderr
    assert "symbolic link loop" in p.stderr
    listed = json.loads(trawl.run("ls", "--json", check=0).stdout)
    assert sorted(s["sha256_hash"] for s in listed) == sorted(shas.values())
    # Adding the same tree again: everything is a duplicate.
    p = trawl.run("add", root, wrap=drop_file_read_capabilities())
    assert summary(p.stdout)[:2] == (0, 8)


def test_info_by_every_hash_kind(trawl, tmp_path):
    data = b"MZ" + bytes(range(256)) * 8
    path = tmp_path / "sample.exe"
    path.write_bytes(data)
    trawl.run("add", "--tag", "t1", "--tag", "t2", "--signature", "Fam", path, check=0)
    want = {
        "md5_hash": hashlib.md5(data).hexdigest(),
        "sha1_hash": hashlib.sha1(data).hexdigest(),
        "sha256_hash": hashlib.sha256(data).hexdigest(),
        "sha3_384_hash": hashlib.sha3_384(data).hexdigest(),
    }
    for key in ("md5_hash", "sha1_hash", "sha256_hash"):
        info = json.loads(trawl.run("info", "--json", want[key].upper(), check=0).stdout)
        for k, v in want.items():
            assert info[k] == v
        assert info["file_size"] == len(data)
        assert info["file_name"] == "sample.exe"
        assert info["tags"] == ["t1", "t2"]
        assert info["signature"] == "Fam"
        assert info["ssdeep"].startswith("3:") or info["ssdeep"].count(":") == 2
        assert info["tlsh"].startswith("T1") and len(info["tlsh"]) == 72
    text = trawl.run("info", want["sha256_hash"], check=0).stdout
    assert re.search(r"^sha3-384\s+" + want["sha3_384_hash"], text, re.M)
    p = trawl.run("info", "0" * 64)
    assert p.returncode == 1 and "no sample" in p.stderr


def test_ls_filters(trawl, tmp_path):
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n")
    (tmp_path / "b.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    with open("/bin/true", "rb") as f:
        (tmp_path / "c.elf").write_bytes(f.read())
    trawl.run("add", "--tag", "docs", "--signature", "Alpha", tmp_path / "a.pdf", check=0)
    trawl.run("add", "--tag", "docs", tmp_path / "b.sh", check=0)
    trawl.run("add", "--signature", "Beta", tmp_path / "c.elf", check=0)

    def names(*args):
        return [s["file_name"] for s in json.loads(trawl.run("ls", "--json", *args, check=0).stdout)]

    assert names() == ["c.elf", "b.sh", "a.pdf"]
    assert names("--tag", "docs") == ["b.sh", "a.pdf"]
    assert names("--signature", "alpha") == ["a.pdf"]
    assert names("--type", "elf") == ["c.elf"]
    assert names("--type", "pdf", "--tag", "docs") == ["a.pdf"]
    assert names("--limit", "1", "--offset", "1") == ["b.sh"]
    assert names("--tag", "nothing") == []
    plain = trawl.run("ls", check=0).stdout.splitlines()
    assert len(plain) == 3 and plain[0].split()[1] == "elf"


def test_rm_and_fsck(trawl, tmp_path):
    for i in range(3):
        (tmp_path / ("s%d" % i)).write_bytes(b"sample %d " % i * 100)
    trawl.run("add", tmp_path / "s0", tmp_path / "s1", tmp_path / "s2", check=0)
    sha = hashlib.sha256(b"sample 1 " * 100).hexdigest()
    blob = os.path.join(trawl.data, "samples", sha[:2], sha[2:4], sha)
    assert os.path.exists(blob)
    p = trawl.run("rm", sha, check=0)
    assert "removed" in p.stdout
    assert not os.path.exists(blob)
    assert trawl.run("info", sha).returncode == 1
    assert trawl.run("rm", sha).returncode == 1
    assert "consistent" in trawl.run("fsck", check=0).stdout

    # Corrupt one blob: fsck fails and says which; --repair drops it.
    sha0 = hashlib.sha256(b"sample 0 " * 100).hexdigest()
    blob0 = os.path.join(trawl.data, "samples", sha0[:2], sha0[2:4], sha0)
    os.chmod(blob0, 0o644)
    with open(blob0, "r+b") as f:
        f.write(b"X")
    p = trawl.run("fsck")
    assert p.returncode == 1
    assert "corrupt blob" in p.stdout and sha0 in p.stdout
    p = trawl.run("fsck", "--repair", check=0)
    assert "removed" in p.stdout
    p = trawl.run("fsck", check=0)
    assert "1 rows" in p.stdout and "consistent" in p.stdout


def test_usage_errors(trawl, tmp_path):
    p = trawl.run("frobnicate")
    assert p.returncode == 2 and "unknown command" in p.stderr
    p = trawl.run("info", "not-a-hash")
    assert p.returncode == 2 and "not an md5, sha1 or sha256" in p.stderr
    p = trawl.run("add")
    assert p.returncode == 2 and "needs at least one file" in p.stderr
    p = trawl.run("ls", "--limit", "many")
    assert p.returncode == 2
    p = trawl.run("ls")                       # no data directory yet
    assert p.returncode == 1 and "no trawl data directory" in p.stderr
    p = trawl.run("add", tmp_path / "missing-file")
    assert p.returncode == 1 and "missing-file" in p.stderr
    p = trawl.run("--help", check=0)
    assert "add" in p.stdout and "fsck" in p.stdout
