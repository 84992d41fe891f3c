"""Issue #16, the HTTP/runtime half: what a hostile or careless user on the
LAN could do to the server, each contained."""
import hashlib
import os
import socket
import time

import pytest
import requests

from conftest import Server


def auth(key):
    return {"Authorization": "Bearer " + key}


def upload(srv, key, name, data, **fields):
    r = requests.post(srv.url + "/api/samples", headers=auth(key), files={"file": (name, data)},
                      data=fields, timeout=30)
    assert r.status_code in (200, 201), r.text
    return hashlib.sha256(data).hexdigest()


# Matches samples carrying the needle, after a loop over every byte that
# keeps libyara busy about a second per 256 KB under ASan (the loop comes
# first: libyara evaluates `or` from the left).
SLOW_LIVE = ('rule slow { strings: $n = "NEEDLE-SLOW-1" condition: '
             'for any i in (0..filesize-1) : (for any j in (0..60) : (uint8(i) == 0x100 + j)) or $n }')
GOOD_LIVE = 'rule good { strings: $a = "NEEDLE-GOOD-2" condition: $a }'


def add_live(srv, key, name, rule):
    r = requests.post(srv.url + "/api/rules", headers=auth(key), json={"name": name, "rule": rule}, timeout=60)
    assert r.status_code == 201, r.text


def rules(srv, key):
    return requests.get(srv.url + "/api/rules", headers=auth(key), timeout=10).json()


def wait_scanned(srv, key, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = rules(srv, key)
        if j["scans_pending"] == 0:
            return {r["name"]: r for r in j["data"]}
        time.sleep(0.1)
    raise AssertionError("live scans never finished: %s" % j)


def test_slow_live_rules_do_not_hold_uploads_or_health(secure_server, keys):
    key = keys["analyst"]
    add_live(secure_server, key, "slow", SLOW_LIVE)
    sha = upload(secure_server, key, "a.bin", os.urandom(1_000_000) + b"NEEDLE-SLOW-1")
    # The upload was answered while its live scan still runs: before, the
    # scan ran inside the request and the hit existed by now.
    j = rules(secure_server, key)
    assert j["scans_pending"] >= 1 and j["data"][0]["hits"] == 0, j
    assert requests.get(secure_server.url + "/api/health", timeout=10).status_code == 200
    assert wait_scanned(secure_server, key)["slow"]["hits"] == 1
    hits = requests.get(secure_server.url + "/api/rules/slow/hits", headers=auth(key), timeout=10).json()["data"]
    assert [h["sha256"] for h in hits] == [sha]


def test_full_live_queue_records_pending_and_catches_up(trawl, keys):
    srv = Server(trawl, "--live-queue", "1")
    try:
        key = keys["analyst"]
        add_live(srv, key, "slow", SLOW_LIVE)
        shas = {upload(srv, key, "s%d.bin" % i, os.urandom(100_000) + b"NEEDLE-SLOW-1") for i in range(4)}
        assert wait_scanned(srv, key)["slow"]["hits"] == 4
        hits = requests.get(srv.url + "/api/rules/slow/hits", headers=auth(key), timeout=10).json()["data"]
        assert {h["sha256"] for h in hits} == shas
    finally:
        assert srv.stop() == 0


def test_pending_live_scans_survive_a_restart(trawl, keys):
    srv = Server(trawl, "--live-queue", "1")
    key = keys["analyst"]
    try:
        add_live(srv, key, "slow", SLOW_LIVE)
        shas = {upload(srv, key, "r%d.bin" % i, os.urandom(200_000) + b"NEEDLE-SLOW-1") for i in range(3)}
    finally:
        assert srv.stop() == 0
    first_log = srv.proc.stderr.read()
    srv = Server(trawl)
    try:
        scanned = wait_scanned(srv, key)
        assert scanned["slow"]["hits"] == 3, (scanned, first_log)
        hits = requests.get(srv.url + "/api/rules/slow/hits", headers=auth(key), timeout=10).json()["data"]
        assert {h["sha256"] for h in hits} == shas
    finally:
        assert srv.stop() == 0


def server_children(pid):
    """(child pid, seconds it has run) of the processes whose parent is pid."""
    hz = os.sysconf("SC_CLK_TCK")
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append((int(d), uptime - int(fields[19]) / hz))
    return kids


def test_a_crashing_live_rule_set_is_recorded_and_others_keep_scanning(trawl, keys):
    """Each live rule set scans in its own verifier process. The parser refuses
    every libyara 4.2.3 crash shape it knows (tests/unit/test_rules_crashers.c),
    so a crash is made the way one would look: the busy set's verifier dies of
    SIGFPE (what INT64_MIN / -1 raises) in the middle of its scan (SIGSEGV
    would be caught by libyara's own handler for mapped files). Its failure is recorded on that set and
    logged; the other set keeps scanning this and later uploads."""
    import signal as sig
    srv = Server(trawl)
    key = keys["analyst"]
    try:
        add_live(srv, key, "crasher", SLOW_LIVE)
        add_live(srv, key, "good", GOOD_LIVE)
        sha = upload(srv, key, "g.bin", os.urandom(3_000_000) + b"NEEDLE-GOOD-2")
        # Other verifiers are done in well under a second; the slow set's one
        # stays busy for seconds: a child that has run for 1.5 s is it.
        deadline = time.time() + 60
        killed = False
        while time.time() < deadline and not killed:
            time.sleep(0.1)
            for kid, age in server_children(srv.proc.pid):
                if age < 1.5:
                    continue
                try:
                    os.kill(kid, sig.SIGFPE)
                    killed = True
                except ProcessLookupError:
                    pass
        assert killed, "no verifier child was ever seen running"
        sets = wait_scanned(srv, key)
        assert sets["good"]["hits"] == 1 and sets["good"]["last_failure"] is None, sets
        failure = sets["crasher"]["last_failure"]
        assert failure and "libyara" in failure["message"] and sha in failure["message"], sets
        assert failure["time"]
        # Later uploads still reach the good set.
        upload(srv, key, "g2.bin", os.urandom(1000) + b"NEEDLE-GOOD-2")
        assert wait_scanned(srv, key)["good"]["hits"] == 2
    finally:
        assert srv.stop() == 0
    assert "rule set crasher failed" in srv.proc.stderr.read()
    out = trawl.run("rules", "ls", check=0).stdout
    assert "last failure" in out and "libyara" in out


def raise_fd_limit(want):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip("needs %d open files (RLIMIT_NOFILE hard limit is %d)" % (want, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def get_from(srv, source, path="/api/health", timeout=10):
    """A GET over a socket bound to another loopback address."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout, source_address=(source, 0)) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def test_idle_connections_from_one_address_lock_nobody_out(server):
    # More idle connections than the server has slots (about 1,000 before
    # a per-address limit), all from 127.0.0.1, none sending a byte.
    raise_fd_limit(1400)
    idle = []
    try:
        for _ in range(1100):
            s = socket.socket()
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", server.port))
            except OSError:
                s.close()
                continue
            idle.append(s)
        reply = get_from(server, "127.0.0.2")
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        assert b'"status":"ok"' in reply or b'"ok"' in reply
    finally:
        for s in idle:
            s.close()


def test_a_connection_that_sends_nothing_is_closed(trawl):
    srv = Server(trawl, "--header-timeout", "1")
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
            # Before the header timeout, an idle connection stayed 120 s.
            assert s.recv(1) == b""
        # A request under way is not cut by it.
        assert get_from(srv, "127.0.0.3").startswith(b"HTTP/1.1 200")
    finally:
        assert srv.stop() == 0


def raw_upload(srv, key, parts):
    """A multipart body built by hand: parts of (headers, bytes)."""
    boundary = b"----trawlharden"
    body = b""
    for disp, data in parts:
        body += b"--" + boundary + b"\r\nContent-Disposition: form-data; " + disp + b"\r\n\r\n" + data + b"\r\n"
    body += b"--" + boundary + b"--\r\n"
    return requests.post(srv.url + "/api/samples", data=body, timeout=30,
                         headers={**auth(key), "Content-Type": "multipart/form-data; boundary=" + boundary.decode()})


def test_two_file_parts_are_refused(secure_server, keys):
    key = keys["analyst"]
    r = raw_upload(secure_server, key, [(b'name="file"; filename="a.bin"', b"A" * 100),
                                        (b'name="file"; filename="b.bin"', b"B" * 100)])
    assert r.status_code == 400 and "only one 'file' part" in r.json()["error"], r.text
    listed = requests.get(secure_server.url + "/api/samples", headers=auth(key), timeout=10).json()
    assert listed["data"] == []


def test_form_fields_must_be_utf8_without_nul(secure_server, keys):
    key = keys["analyst"]
    f = (b'name="file"; filename="ok.bin"', os.urandom(200))
    for field, value, why in [(b"tags", b"a\x00b,c", "NUL"), (b"comment", b"caf\xe9", "UTF-8"),
                              (b"signature", b"\xed\xa0\x80", "UTF-8"), (b"origin", b"\xc0\xaf", "UTF-8")]:
        r = raw_upload(secure_server, key, [f, (b'name="' + field + b'"', value)])
        assert r.status_code == 400, (field, r.text)
        err = r.json()["error"]
        assert "'%s'" % field.decode() in err and why in err, err
    r = raw_upload(secure_server, key, [(b'name="file"; filename="bad\xff.bin"', b"x" * 50)])
    assert r.status_code == 400 and "file name" in r.json()["error"], r.text
    assert requests.get(secure_server.url + "/api/samples", headers=auth(key), timeout=10).json()["data"] == []
    # A long valid name is cut at a character boundary, not refused.
    long_name = ("\u00e9" * 200 + ".bin").encode()
    r = raw_upload(secure_server, key, [(b'name="file"; filename="' + long_name + b'"', b"L" * 60)])
    assert r.status_code == 201, r.text
    assert set(r.json()["data"]["file_name"]) == {"\u00e9"}
    # Valid UTF-8 goes through whole, and the API shows it.
    r = raw_upload(secure_server, key, [(b'name="file"; filename="\xc3\xa9t\xc3\xa9.bin"', b"y" * 50),
                                        (b'name="tags"', "d\u00e9j\u00e0,vu".encode()),
                                        (b'name="comment"', "\u2603 snow".encode())])
    assert r.status_code == 201, r.text
    d = r.json()["data"]
    assert d["file_name"] == "\u00e9t\u00e9.bin" and "d\u00e9j\u00e0" in d["tags"] and d["comments"][0]["text"] == "\u2603 snow", d


def test_invalid_utf8_in_a_query_gets_a_reply(server, keys):
    r = requests.get(server.url + "/api/samples/%FF", timeout=10)
    assert r.status_code in (400, 404) and r.json()["query_status"] == "error"
    r = requests.get(server.url + "/api/samples?tag=%FF", timeout=10)
    assert r.status_code == 400 and "'tag'" in r.json()["error"] and "UTF-8" in r.json()["error"]
    r = requests.get(server.url + "/api/samples?tag=a%00b", timeout=10)
    assert r.status_code == 400 and "NUL" in r.json()["error"]
    r = requests.post(server.url + "/api/v1/", data=b"query=get_info&hash=%FF", timeout=10,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    # Bazaar's API answers in its own words, the reason beside.
    assert r.status_code == 400 and r.json()["query_status"] == "illegal_form_data", r.text
    assert "UTF-8" in r.json()["error"]


def raw_exchange(srv, request, timeout=20):
    """Sends request bytes, reads until the server closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


def test_security_headers_on_every_response(server):
    for path in ("/", "/ui/app.js", "/api/health", "/api/nothing", "/nothing", "/api/samples?tag=%FF"):
        r = requests.get(server.url + path, timeout=10)
        csp = r.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, (path, r.headers)
        assert r.headers.get("X-Content-Type-Options") == "nosniff", path
        assert r.headers.get("Referrer-Policy") == "no-referrer", path


def test_host_header_must_name_this_server(trawl):
    srv = Server(trawl, "--anonymous-read", "--allowed-host", "trawl.lab.example")
    try:
        def health(host):
            return requests.get(srv.url + "/api/health", headers={"Host": host}, timeout=10)
        # DNS rebinding: an attacker's name resolving to this server.
        r = health("evil.example:%d" % srv.port)
        assert r.status_code == 421 and "evil.example" in r.json()["error"]
        assert requests.get(srv.url + "/", headers={"Host": "evil.example"}, timeout=10).status_code == 421
        for ok in ("127.0.0.1:%d" % srv.port, "localhost:%d" % srv.port, "localhost",
                   "TRAWL.lab.example:%d" % srv.port, "[::1]:%d" % srv.port):
            assert health(ok).status_code == 200, ok
    finally:
        assert srv.stop() == 0


def test_conflicting_content_length_is_refused(server, keys):
    body = b'{"rule": "rule a { condition: true }"}'
    req = (b"POST /api/plan HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\nContent-Length: 5\r\nConnection: close\r\n\r\n" % len(body)) + body
    reply = raw_exchange(server, req)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:300]


def test_a_refused_body_is_not_read(secure_server):
    # No key, 50 MB announced, not a byte of it sent: the 401 comes at once
    # and the connection closes (before, the server waited for the body).
    req = (b"POST /api/samples HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 50000000\r\n\r\n")
    reply = raw_exchange(secure_server, req)
    assert reply.startswith(b"HTTP/1.1 401"), reply[:300]
    assert b"\r\nConnection: close" in reply or b"\r\nconnection: close" in reply.lower()


def test_security_doc_examples_run(secure_server, keys):
    import re
    import subprocess
    from conftest import ROOT
    text = open(os.path.join(ROOT, "docs", "security.md")).read()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert blocks
    env = dict(os.environ, TRAWL=secure_server.url, KEY=keys["analyst"])
    p = subprocess.run(["bash", "-c", "set -euo pipefail\n" + "\n".join(blocks)], capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (p.stdout, p.stderr)


def test_hunts_stop_at_the_server_time_limit(trawl, keys):
    srv = Server(trawl, "--hunt-time-limit", "1")
    key = keys["analyst"]
    try:
        upload(srv, key, "big.bin", os.urandom(1_000_000))
        # The byte loop takes seconds per MB and the index cannot narrow it.
        rule = SLOW_LIVE.replace("rule slow", "rule long")
        for body in ({"rule": rule}, {"rule": rule, "time_limit": 100000}):
            r = requests.post(srv.url + "/api/hunts", headers=auth(key), json=body, timeout=30)
            assert r.status_code == 201, r.text
            hid = r.json()["id"]
            deadline = time.time() + 120
            while time.time() < deadline:
                j = requests.get("%s/api/hunts/%d" % (srv.url, hid), headers=auth(key), timeout=10).json()
                if j["status"] not in ("queued", "running"):
                    break
                time.sleep(0.1)
            assert j["status"] == "cancelled" and "time limit" in (j["error"] or ""), j
    finally:
        assert srv.stop() == 0


def test_one_key_cannot_hold_every_hunt_runner(trawl, keys):
    b_key = trawl.run("key", "add", "--role", "analyst", "second-analyst", check=0).stdout.strip()
    srv = Server(trawl, "--hunt-time-limit", "30")
    a_key = keys["analyst"]
    try:
        upload(srv, a_key, "big.bin", os.urandom(1_000_000))
        rule = SLOW_LIVE.replace("rule slow", "rule long")

        def submit(key):
            r = requests.post(srv.url + "/api/hunts", headers=auth(key), json={"rule": rule}, timeout=30)
            assert r.status_code == 201, r.text
            return r.json()["id"]

        def status(hid):
            return requests.get("%s/api/hunts/%d" % (srv.url, hid), headers=auth(a_key), timeout=10).json()["status"]

        a_jobs = [submit(a_key) for _ in range(4)]
        b_job = submit(b_key)
        deadline = time.time() + 120
        while status(b_job) == "queued" and time.time() < deadline:
            time.sleep(0.05)
        # B's hunt got a runner before A's last queued one: first come,
        # first served would have run all four of A's first.
        assert status(a_jobs[-1]) == "queued"
        for h in a_jobs + [b_job]:
            requests.post("%s/api/hunts/%d/cancel" % (srv.url, h), headers=auth(a_key), timeout=10)
    finally:
        assert srv.stop() == 0


def test_hunt_zip_is_streamed_without_a_temp_copy(trawl, keys, tmp_path):
    import subprocess
    srv = Server(trawl)
    key = keys["analyst"]
    try:
        datas = [os.urandom(300_000 + i * 77_777) + b"ZIP-STREAM-MARK" for i in range(6)] + [b"ZIP-STREAM-MARK"]
        shas = [upload(srv, key, "z%d.bin" % i, d) for i, d in enumerate(datas)]
        deadline = time.time() + 30
        while requests.get(srv.url + "/api/index", headers=auth(key), timeout=10).json()["documents"] < len(datas):
            assert time.time() < deadline, "not indexed"
            time.sleep(0.1)
        r = requests.post(srv.url + "/api/hunts", headers=auth(key),
                          json={"rule": 'rule z { strings: $a = "ZIP-STREAM-MARK" condition: $a }'}, timeout=30)
        hid = r.json()["id"]
        while requests.get("%s/api/hunts/%d" % (srv.url, hid), headers=auth(key), timeout=10).json()["status"] in ("queued", "running"):
            time.sleep(0.1)
        resp = requests.get("%s/api/hunts/%d/download" % (srv.url, hid), headers=auth(key), timeout=30, stream=True)
        assert resp.status_code == 200
        first = resp.raw.read(1000)
        # Mid-download the server holds no archive file: before, the whole
        # zip was written to <data>/tmp and sent from an unlinked copy.
        fds = [os.readlink("/proc/%d/fd/%s" % (srv.proc.pid, fd)) for fd in os.listdir("/proc/%d/fd" % srv.proc.pid)]
        tmpdir = os.path.join(trawl.data, "tmp")
        assert not [f for f in fds if "(deleted)" in f or f.startswith(tmpdir)], fds
        assert os.listdir(os.path.join(trawl.data, "tmp")) == []
        assert requests.get(srv.url + "/api/health", timeout=10).status_code == 200
        body = first + resp.raw.read()
        assert len(body) == int(resp.headers["Content-Length"])
        for d in datas:
            assert d not in body
        z = tmp_path / "h.zip"
        z.write_bytes(body)
        t = subprocess.run(["7z", "t", "-pinfected", str(z)], capture_output=True, text=True)
        assert t.returncode == 0 and "Everything is Ok" in t.stdout, t.stdout + t.stderr
        x = subprocess.run(["7z", "x", "-y", "-pinfected", "-o" + str(tmp_path / "x"), str(z)], capture_output=True, text=True)
        assert x.returncode == 0
        got = {hashlib.sha256(open(os.path.join(tmp_path / "x", f), "rb").read()).hexdigest() for f in os.listdir(tmp_path / "x")}
        assert got == set(shas)
        bad = subprocess.run(["7z", "t", "-pwrong", str(z)], capture_output=True, text=True)
        assert bad.returncode != 0
    finally:
        assert srv.stop() == 0


def test_a_body_announced_too_large_is_refused_before_it_is_sent(server):
    req = (b"POST /api/plan HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"Content-Length: 50000000\r\n\r\n")
    reply = raw_exchange(server, req)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:300]
