"""SIGKILL during a large add: the store stays consistent, nothing acknowledged
is lost, and re-running the add completes."""
import hashlib
import os
import random
import re
import signal
import subprocess
import time

import pytest

# What --verbose prints for each committed file; an add that finishes before
# the kill also prints its summary on stdout, which acknowledges nothing.
ACK_LINE = re.compile(r"^(new|dup) ([0-9a-f]{64}) ")


@pytest.fixture
def corpus(tmp_path):
    rnd = random.Random(42)
    root = tmp_path / "bulk"
    shas = set()
    for i in range(1500):
        size = rnd.choice([0, 17, 300, 4096, 20000, 70000])
        data = rnd.randbytes(size) if size else b""
        if i % 50 == 0 and i:
            data = b"dup-content" * 100        # duplicates across the tree
        d = root / ("d%02d" % (i % 37))
        d.mkdir(parents=True, exist_ok=True)
        (d / ("f%04d.bin" % i)).write_bytes(data)
        shas.add(hashlib.sha256(data).hexdigest())
    return root, shas


def stored(trawl):
    p = trawl.run("ls", "--limit", "0", check=0)
    return {line.split()[0] for line in p.stdout.splitlines()}


def run_and_kill(trawl, root, after_lines, after_seconds):
    """Starts an add and SIGKILLs it once it has committed after_lines new
    samples, or after after_seconds; returns the acknowledged sha256s."""
    proc = subprocess.Popen(trawl.cmd("add", "--verbose", "--jobs", "2", root),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    acknowledged = set()
    new = 0
    if after_lines == 0:
        time.sleep(after_seconds)
    else:
        for line in proc.stdout:
            m = ACK_LINE.match(line)
            if not m:
                continue
            acknowledged.add(m.group(2))
            new += m.group(1) == "new"
            if new >= after_lines:
                break
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    # A line cut by the kill acknowledges nothing.
    for line in out.split("\n")[:-1]:
        m = ACK_LINE.match(line)
        if m:
            acknowledged.add(m.group(2))
    return acknowledged


def test_sigkill_during_add(trawl, corpus):
    root, shas = corpus
    acknowledged = set()
    partial_states = 0
    # During the walk, right after the first commit, and deep into the add.
    for after_lines, after_seconds in ((0, 0.05), (1, 0), (300, 0), (300, 0)):
        acknowledged |= run_and_kill(trawl, root, after_lines, after_seconds)
        if not os.path.exists(os.path.join(trawl.data, "trawl.db")):
            continue
        p = trawl.run("fsck")
        assert p.returncode == 0, p.stdout + p.stderr
        assert "0 missing, 0 corrupt" in p.stdout
        # Every sample a killed add reported as committed is there.
        now = stored(trawl)
        assert acknowledged <= now, sorted(acknowledged - now)[:5]
        partial_states += 0 < len(now) < len(shas)
    assert len(acknowledged) >= 301
    assert partial_states >= 2, "the kills never interrupted the add"
    trawl.run("add", root, check=0)
    assert stored(trawl) == shas
    trawl.run("fsck", "--repair", check=0)
    p = trawl.run("fsck", check=0)
    assert "0 unreferenced, 0 stray" in p.stdout
    assert stored(trawl) == shas
