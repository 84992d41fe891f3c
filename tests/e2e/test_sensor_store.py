"""trawl sensor without --upstream: events go straight into the data
directory's noise store (loopback only). They reach `trawl noise ip`, and a
SIGKILL of the sensor mid-load leaves the store readable and consistent:
every committed event is in both the events and the per-IP record, and the
store takes more events afterwards."""
import json
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import Trawl, free_port


def start(trawl, port, *extra):
    argv = trawl.cmd("sensor", "--bind", "127.0.0.1", "--name", "local", "--tcp", str(port),
                     "--udp", "", "--batch-seconds", "1", *extra)
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = []
    while True:
        line = p.stderr.readline()
        if not line:
            p.wait()
            raise AssertionError("sensor did not start: %s" % "".join(log))
        log.append(line)
        if "sensor listening" in line:
            break
    threading.Thread(target=lambda: [log.append(l) for l in p.stderr], daemon=True).start()
    p.log = log
    return p


@pytest.fixture
def sensors():
    started = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


def request(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nUser-Agent: store-test\r\n\r\n" % path.encode())
        while c.recv(4096):
            pass


def record(trawl):
    p = trawl.run("noise", "ip", "--json", "127.0.0.1")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def stored_events(trawl):
    p = trawl.run("noise", "events", "--ip", "127.0.0.1", "--limit", "10000", "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def wait_hits(trawl, n, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = record(trawl)
        if r.get("seen") and r["metadata"]["sensor_hits"] >= n:
            return r
        time.sleep(0.2)
    raise AssertionError("fewer than %d events stored: %s" % (n, record(trawl)))


def test_events_reach_noise_ip(trawl, sensors):
    port = free_port()
    s = start(trawl, port)
    sensors.append(s)
    for path in ("/.env", "/.git/config", "/.env"):
        request(port, path)
    # Committed by the 1-second batch while the sensor runs, not only at exit.
    r = wait_hits(trawl, 3)
    assert s.poll() is None
    assert r["metadata"]["sensor_hits"] == 3
    assert set(r["raw_data"]["web"]["paths"]) == {"/.env", "/.git/config"}
    assert r["raw_data"]["web"]["useragents"] == ["store-test"]
    assert port in r["metadata"]["destination_ports"]
    assert ".env Scanner" in [t["name"] if isinstance(t, dict) else t for t in r["tags"]]
    evs = stored_events(trawl)
    assert sorted(e["fields"]["http_path"] for e in evs) == ["/.env", "/.env", "/.git/config"]
    assert {e["sensor"] for e in evs} == {"local"}
    s.send_signal(signal.SIGTERM)
    assert s.wait(timeout=60) == 0
    assert any("3 events stored" in l for l in s.log), s.log


def test_kill_9_leaves_store_consistent(trawl, sensors):
    port = free_port()
    s = start(trawl, port)
    sensors.append(s)
    stop = threading.Event()
    sent = [0]

    def load():
        while not stop.is_set() and sent[0] < 3000:
            try:
                request(port, "/k%d" % sent[0])
            except OSError:
                return   # the sensor is gone
            sent[0] += 1

    t = threading.Thread(target=load)
    t.start()
    try:
        wait_hits(trawl, 50)   # some batches committed, more in flight
        s.send_signal(signal.SIGKILL)
        s.wait()
    finally:
        stop.set()
        t.join()
    # SQLite's own check of the whole file, and trawl's two views agree.
    db = sqlite3.connect(os.path.join(trawl.data, "trawl.db"))
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    r = record(trawl)
    evs = stored_events(trawl)
    hits = r["metadata"]["sensor_hits"]
    assert hits == len(evs) and 50 <= hits <= sent[0]
    # No event stored twice: each request has its own path. (Not the source
    # port: this kernel advances ~9 ports per connect at random, so 3,000
    # connections wrap the ephemeral range and ports repeat.)
    assert len({e["fields"]["http_path"] for e in evs}) == hits
    # The store takes more after the kill.
    s2 = start(trawl, port)
    sensors.append(s2)
    request(port, "/after-kill")
    s2.send_signal(signal.SIGTERM)
    assert s2.wait(timeout=60) == 0
    r = record(trawl)
    assert r["metadata"]["sensor_hits"] == hits + 1
    assert "/after-kill" in [e["fields"]["http_path"] for e in stored_events(trawl)]


def privileged_free_port():
    for port in range(1023, 899, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port below 1024 on 127.0.0.1")


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)


def test_user_drops_root_after_binding(trawl, sensors):
    """--user: root opens a port below 1024, then the sensor parses as that user,
    with no way back to root, and its store's files are that user's."""
    if os.geteuid() != 0:
        pytest.skip("--user needs the test to run as root")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")
    # tmp_path's parents are root's 0700 directories: nobody could not reach them.
    data = tempfile.mkdtemp(prefix="trawl-user-", dir="/tmp")
    try:
        os.chown(data, nobody.pw_uid, nobody.pw_gid)
        t = Trawl(trawl.binary, data)
        port = privileged_free_port()
        out = os.path.join(data, "events.jsonl")
        s = start(t, port, "--user", "nobody", "--out", out)
        sensors.append(s)
        st = proc_status(s.pid)
        uid, gid = str(nobody.pw_uid), str(nobody.pw_gid)
        assert st["Uid"].split() == [uid] * 4, st["Uid"]
        assert st["Gid"].split() == [gid] * 4, st["Gid"]
        assert "0" not in st.get("Groups", "").split()
        assert st["NoNewPrivs"] == "1"
        assert any("running as nobody" in l for l in s.log), s.log
        request(port, "/.env")
        r = wait_hits(t, 1)
        assert r["raw_data"]["web"]["paths"] == ["/.env"]
        assert port in r["metadata"]["destination_ports"]
        s.send_signal(signal.SIGTERM)
        assert s.wait(timeout=60) == 0
        with open(out) as f:
            assert [json.loads(l)["fields"]["http_path"] for l in f] == ["/.env"]
        made = [os.path.join(d, n) for d, _, ns in os.walk(data) for n in ns]
        assert made and out in made
        root_owned = [p for p in made if os.stat(p).st_uid != nobody.pw_uid]
        assert root_owned == [], root_owned
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_user_errors_and_the_root_warning(trawl, sensors):
    port = free_port()
    p = trawl.run("sensor", "--bind", "127.0.0.1", "--tcp", port, "--udp", "", "--out", "-",
                  "--no-store", "--user", "no-such-user-trawl")
    assert p.returncode == 1 and "--user no-such-user-trawl: no such user" in p.stderr
    if os.geteuid() != 0:
        return
    s = start(trawl, port)
    sensors.append(s)
    assert any("running as root; --user USER drops root" in l for l in s.log), s.log
    s.send_signal(signal.SIGTERM)
    assert s.wait(timeout=60) == 0
