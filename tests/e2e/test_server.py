"""The HTTP server: health, sample listing and lookup, the HTML page."""
import hashlib
import json
import urllib.error
import urllib.request


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def test_health_and_samples(trawl, tmp_path, server):
    status, ctype, body = get(server.url + "/api/health")
    assert status == 200 and ctype == "application/json"
    assert json.loads(body) == {"status": "ok", "samples": 0, "bytes": 0}

    files = {}
    for i, (name, tag) in enumerate([("a.bin", "red"), ("b.bin", "blue"), ("c.bin", "red")]):
        data = (b"server sample %d " % i) * 40
        (tmp_path / name).write_bytes(data)
        trawl.run("add", "--tag", tag, "--signature", "Fam%d" % i, tmp_path / name, check=0)
        files[name] = data

    status, _, body = get(server.url + "/api/health")
    assert json.loads(body)["samples"] == 3

    status, _, body = get(server.url + "/api/samples")
    doc = json.loads(body)
    assert status == 200 and doc["query_status"] == "ok" and doc["count"] == 3
    assert [s["file_name"] for s in doc["data"]] == ["c.bin", "b.bin", "a.bin"]

    doc = json.loads(get(server.url + "/api/samples?tag=red")[2])
    assert sorted(s["file_name"] for s in doc["data"]) == ["a.bin", "c.bin"]
    doc = json.loads(get(server.url + "/api/samples?signature=fam1")[2])
    assert [s["file_name"] for s in doc["data"]] == ["b.bin"]
    doc = json.loads(get(server.url + "/api/samples?limit=1&offset=2")[2])
    assert [s["file_name"] for s in doc["data"]] == ["a.bin"]

    data = files["b.bin"]
    for h in (hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(),
              hashlib.sha256(data).hexdigest().upper()):
        status, _, body = get(server.url + "/api/samples/" + h)
        assert status == 200
        s = json.loads(body)["data"]
        assert s["sha256_hash"] == hashlib.sha256(data).hexdigest()
        assert s["tags"] == ["blue"] and s["signature"] == "Fam1"



def test_web_ui_is_served_from_the_binary(server):
    status, ctype, body = get(server.url + "/")
    assert status == 200 and ctype.startswith("text/html")
    assert b'<script src="/ui/app.js">' in body
    status, ctype, body = get(server.url + "/ui/app.js")
    assert status == 200 and ctype.startswith("text/javascript")
    assert b"function route()" in body
    status, ctype, _ = get(server.url + "/ui/app.css")
    assert status == 200 and ctype.startswith("text/css")
    assert get(server.url + "/ui/nothing.js")[0] == 404


def test_errors_are_json(server):
    status, ctype, body = get(server.url + "/api/samples/" + "0" * 64)
    assert status == 404 and ctype == "application/json"
    assert json.loads(body)["query_status"] == "error"
    status, _, body = get(server.url + "/api/samples/xyz")
    assert status == 400 and "not an md5" in json.loads(body)["error"]
    status, _, body = get(server.url + "/api/samples?limit=-3")
    assert status == 400
    status, _, body = get(server.url + "/api/nothing")
    assert status == 404 and json.loads(body)["query_status"] == "error"
    req = urllib.request.Request(server.url + "/api/health", data=b"x", method="POST")
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("POST accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 405


def test_sigterm_is_graceful(server):
    assert server.stop() == 0
