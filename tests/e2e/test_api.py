"""The HTTP API with authentication: every endpoint, every role, bad input."""
import hashlib
import json
import os
import socket
import subprocess
import time

import requests


def auth(key):
    return {"Authorization": "Bearer " + key} if key else {}


def upload(srv, key, name, data, **fields):
    return requests.post(srv.url + "/api/samples", headers=auth(key),
                         files={"file": (name, data)}, data=fields, timeout=30)


def test_whoami_and_roles(secure_server, keys):
    for role, key in keys.items():
        r = requests.get(secure_server.url + "/api/whoami", headers=auth(key), timeout=10)
        assert r.json() == {"role": role, "key": role + "-key", "authenticated": True}
    r = requests.get(secure_server.url + "/api/whoami", timeout=10)
    assert r.json()["role"] == "anonymous"
    r = requests.get(secure_server.url + "/api/whoami", headers=auth("trawl_" + "0" * 40), timeout=10)
    assert r.status_code == 401 and "unknown API key" in r.json()["error"]


def test_anonymous_cannot_read_or_write_without_lab_mode(secure_server, keys):
    r = requests.get(secure_server.url + "/api/samples", timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    r = upload(secure_server, None, "x.bin", b"x" * 100)
    assert r.status_code == 401
    r = requests.get(secure_server.url + "/api/samples", headers=auth(keys["reader"]), timeout=10)
    assert r.status_code == 200 and r.json()["count"] == 0


def test_lab_mode_reads_but_never_writes(server, keys):
    assert requests.get(server.url + "/api/samples", timeout=10).status_code == 200
    r = upload(server, None, "x.bin", b"anonymous write" * 10)
    assert r.status_code == 401
    assert requests.get(server.url + "/api/samples", timeout=10).json()["count"] == 0


def test_upload_roles_metadata_and_dedup(trawl, secure_server, keys):
    data = b"MZ" + os.urandom(5000)
    sha = hashlib.sha256(data).hexdigest()
    r = upload(secure_server, keys["reader"], "a.exe", data)
    assert r.status_code == 403 and "analyst" in r.json()["error"]
    r = upload(secure_server, keys["analyst"], "C:\\Users\\x\\invoice.exe", data,
               tags="emotet, epoch4", signature="Emotet", comment="from a phish",
               delivery_method="email_attachment")
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["query_status"] == "inserted"
    s = doc["data"]
    assert s["sha256_hash"] == sha and s["file_size"] == len(data)
    assert s["file_name"] == "invoice.exe"
    assert s["tags"] == ["emotet", "epoch4"] and s["signature"] == "Emotet"
    assert s["reporter"] == "analyst-key" and s["delivery_method"] == "email_attachment"
    assert s["comments"][0]["text"] == "from a phish"
    r = upload(secure_server, keys["analyst"], "again.exe", data, tags="dup")
    assert r.status_code == 200 and r.json()["query_status"] == "exists"
    assert sorted(r.json()["data"]["file_names"]) == ["again.exe", "invoice.exe"]
    # The CLI sees what the server stored.
    info = json.loads(trawl.run("info", "--json", sha, check=0).stdout)
    assert info["tags"] == ["dup", "emotet", "epoch4"]


def test_upload_is_indexed(trawl, secure_server, keys):
    data = b"indexed upload " + os.urandom(3000)
    assert upload(secure_server, keys["analyst"], "i.bin", data).status_code == 201
    deadline = time.time() + 30
    while time.time() < deadline:
        st = requests.get(secure_server.url + "/api/index", headers=auth(keys["reader"]), timeout=10).json()
        if st["documents"] >= 1:
            break
        time.sleep(0.2)
    assert st["documents"] == 1 and st["segments"] >= 1 and st["bytes"] > 0


def raw_post(srv, key, body, content_type, declared_length=None, close_early=False):
    """Sends a hand-made request; returns the status line (or None if cut)."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    head = ("POST /api/samples HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: %s\r\nContent-Length: %d\r\n\r\n"
            % (key, content_type, declared_length or len(body))).encode()
    s.sendall(head + body)
    if close_early:
        s.close()
        return None
    resp = s.recv(65536).decode(errors="replace")
    s.close()
    return resp


def multipart(boundary, name, data, final=True):
    body = (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\""
            + name + b"\"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n")
    if final:
        body += b"--" + boundary + b"--\r\n"
    return body


def tmp_is_empty(trawl):
    return os.listdir(os.path.join(trawl.data, "tmp")) == []


def test_truncated_and_malformed_uploads_change_nothing(trawl, secure_server, keys):
    key = keys["analyst"]
    ctype = "multipart/form-data; boundary=XyZ"
    # The body stops early and the client hangs up.
    body = multipart(b"XyZ", b"cut.bin", os.urandom(20000))
    raw_post(secure_server, key, body[:9000], ctype, declared_length=len(body), close_early=True)
    # The whole body arrives but the multipart never ends.
    resp = raw_post(secure_server, key, multipart(b"XyZ", b"open.bin", os.urandom(3000), final=False), ctype)
    assert resp.startswith("HTTP/1.1 400"), resp
    # No file part at all.
    resp = raw_post(secure_server, key, b"--XyZ\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\nx\r\n--XyZ--\r\n", ctype)
    assert resp.startswith("HTTP/1.1 400") and "no 'file' part" in resp
    # A part without a name (libmicrohttpd hands it over with a NULL name).
    resp = raw_post(secure_server, key, b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--\r\n", ctype)
    assert resp.startswith("HTTP/1.1 400") and "no name" in resp, resp
    # Not multipart.
    resp = raw_post(secure_server, key, b"{}", "application/json")
    assert resp.startswith("HTTP/1.1 400")
    time.sleep(0.5)
    r = requests.get(secure_server.url + "/api/samples", headers=auth(key), timeout=10)
    assert r.json()["count"] == 0
    assert tmp_is_empty(trawl)


def test_oversized_upload_is_refused(trawl, secure_server, keys):
    r = upload(secure_server, keys["analyst"], "big.bin", os.urandom(1024 * 1024 + 10))
    assert r.status_code == 413 and "upload limit" in r.json()["error"]
    assert requests.get(secure_server.url + "/api/samples", headers=auth(keys["reader"]),
                        timeout=10).json()["count"] == 0
    assert tmp_is_empty(trawl)


def test_tags_comments_and_json_errors(secure_server, keys):
    data = os.urandom(2000)
    sha = hashlib.sha256(data).hexdigest()
    upload(secure_server, keys["analyst"], "t.bin", data, tags="one")
    base = secure_server.url + "/api/samples/" + sha
    h = auth(keys["analyst"])
    assert requests.post(base + "/tags", headers=auth(keys["reader"]), json={"tags": ["x"]},
                         timeout=10).status_code == 403
    assert requests.post(base + "/tags", headers=h, json={"tags": ["two", "three"]}, timeout=10).status_code == 200
    assert requests.delete(base + "/tags/one", headers=h, timeout=10).status_code == 200
    assert requests.delete(base + "/tags/one", headers=h, timeout=10).status_code == 404
    assert requests.get(base, headers=h, timeout=10).json()["data"]["tags"] == ["three", "two"]
    r = requests.post(base + "/tags", headers=dict(h, **{"Content-Type": "application/json"}),
                      data=b"{not json", timeout=10)
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]
    r = requests.post(base + "/tags", headers=h, json={"tags": "nope"}, timeout=10)
    assert r.status_code == 400
    r = requests.post(base + "/comments", headers=h, json={"text": "looks like stage 2"}, timeout=10)
    assert r.status_code == 201
    comments = requests.get(base + "/comments", headers=auth(keys["reader"]), timeout=10).json()["data"]
    assert comments[-1]["text"] == "looks like stage 2" and comments[-1]["author"] == "analyst-key"
    assert requests.post(base + "/comments", headers=h, json={}, timeout=10).status_code == 400
    r = requests.get(secure_server.url + "/api/samples/" + "f" * 64, headers=h, timeout=10)
    assert r.status_code == 404


def test_download_is_an_aes_zip_with_password_infected(secure_server, keys, tmp_path):
    data = b"MZ not really a PE " + os.urandom(4000)
    sha = hashlib.sha256(data).hexdigest()
    upload(secure_server, keys["analyst"], "d.exe", data)
    r = requests.get(secure_server.url + "/api/samples/%s/download" % sha,
                     headers=auth(keys["reader"]), timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip"
    assert sha + ".zip" in r.headers["Content-Disposition"]
    assert data not in r.content                    # encrypted, not stored in clear
    z = tmp_path / "s.zip"
    z.write_bytes(r.content)
    listing = subprocess.run(["7z", "l", "-slt", "-pinfected", str(z)], capture_output=True, text=True)
    assert "Method = AES-256" in listing.stdout, listing.stdout
    bad = subprocess.run(["7z", "x", "-y", "-pwrong", "-o" + str(tmp_path / "bad"), str(z)],
                         capture_output=True, text=True)
    assert bad.returncode != 0
    ok = subprocess.run(["7z", "x", "-y", "-pinfected", "-o" + str(tmp_path / "out"), str(z)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    files = os.listdir(tmp_path / "out")
    assert len(files) == 1 and files[0].startswith(sha)
    assert (tmp_path / "out" / files[0]).read_bytes() == data


def test_delete_needs_admin(trawl, secure_server, keys):
    data = os.urandom(1500)
    sha = hashlib.sha256(data).hexdigest()
    upload(secure_server, keys["analyst"], "del.bin", data)
    url = secure_server.url + "/api/samples/" + sha
    assert requests.delete(url, headers=auth(keys["analyst"]), timeout=10).status_code == 403
    r = requests.delete(url, headers=auth(keys["admin"]), timeout=10)
    assert r.status_code == 200 and r.json()["query_status"] == "deleted"
    assert requests.get(url, headers=auth(keys["reader"]), timeout=10).status_code == 404
    assert requests.delete(url, headers=auth(keys["admin"]), timeout=10).status_code == 404
    assert not os.path.exists(os.path.join(trawl.data, "samples", sha[:2], sha[2:4], sha))


def test_key_management(secure_server, keys):
    h = auth(keys["admin"])
    url = secure_server.url + "/api/keys"
    assert requests.get(url, headers=auth(keys["analyst"]), timeout=10).status_code == 403
    names = [k["name"] for k in requests.get(url, headers=h, timeout=10).json()["data"]]
    assert names == ["admin-key", "analyst-key", "reader-key"]
    r = requests.post(url, headers=h, json={"name": "ci", "role": "reader"}, timeout=10)
    assert r.status_code == 201
    new_key = r.json()["key"]
    assert requests.get(secure_server.url + "/api/whoami", headers=auth(new_key), timeout=10).json()["role"] == "reader"
    assert requests.post(url, headers=h, json={"name": "ci", "role": "reader"}, timeout=10).status_code == 409
    assert requests.post(url, headers=h, json={"name": "x", "role": "god"}, timeout=10).status_code == 400
    assert requests.delete(url + "/ci", headers=h, timeout=10).status_code == 200
    assert requests.get(secure_server.url + "/api/samples", headers=auth(new_key), timeout=10).status_code == 401


def test_a_key_removed_by_another_process_is_refused_on_the_next_request(trawl, keys):
    """One server thread checks every request with a statement it keeps
    prepared: the check must still see the key table as it is now."""
    from conftest import Server
    srv = Server(trawl, "--workers", "1")
    try:
        key = trawl.run("key", "add", "--role", "reader", "short-lived", check=0).stdout.strip()
        with requests.Session() as s:
            for _ in range(3):
                assert s.get(srv.url + "/api/whoami", headers=auth(key), timeout=10).json()["key"] == "short-lived"
            trawl.run("key", "rm", "short-lived", check=0)
            r = s.get(srv.url + "/api/whoami", headers=auth(key), timeout=10)
            assert r.status_code == 401
            again = trawl.run("key", "add", "--role", "analyst", "short-lived", check=0).stdout.strip()
            assert s.get(srv.url + "/api/whoami", headers=auth(again), timeout=10).json()["role"] == "analyst"
    finally:
        srv.stop()


def test_unknown_routes_and_methods(secure_server, keys):
    h = auth(keys["admin"])
    r = requests.get(secure_server.url + "/api/nope", headers=h, timeout=10)
    assert r.status_code == 404 and r.json()["query_status"] == "error"
    r = requests.put(secure_server.url + "/api/samples", headers=h, data=b"x", timeout=10)
    assert r.status_code == 405
    r = requests.get(secure_server.url + "/api/samples?limit=abc", headers=h, timeout=10)
    assert r.status_code == 400


def test_plan_endpoint(secure_server, keys):
    h = auth(keys["reader"])
    url = secure_server.url + "/api/plan"
    rule = 'rule a { strings: $s = "evil.example.com" nocase condition: $s }\n' \
           'rule b { condition: filesize < 100 }'
    r = requests.post(url, headers=h, json={"rule": rule}, timeout=10)
    assert r.status_code == 200, r.text
    rules = {x["rule"]: x for x in r.json()["rules"]}
    assert rules["a"]["scans_everything"] is False
    assert rules["b"]["scans_everything"] is True
    assert "estimate" in rules["a"]
    r = requests.post(url, headers=h, json={"rule": "rule broken {\n  strings:\n    $a = \"x\n  condition: $a }"}, timeout=10)
    assert r.status_code == 400
    assert r.json()["line"] == 3 and r.json()["column"] > 0
    r = requests.post(url, headers=h, json={"nope": 1}, timeout=10)
    assert r.status_code == 400
    assert requests.post(url, json={"rule": rule}, timeout=10).status_code == 401
