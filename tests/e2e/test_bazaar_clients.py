"""The request shapes of public MalwareBazaar clients, replayed against
trawl with only the base URL changed (standard library only: the shapes,
not the packages). Each block follows one client's published source:
- MISP's expansion module malwarebazaar.py: a urlencoded get_info, no key;
- the `malwarebazaar` PyPI wrapper (Bazaar class): an API-KEY session
  header, urlencoded queries with an integer limit, get_file's raw content;
- XSOAR's MalwareBazaar integration: every field as a multipart part
  without a file name, add_comment with API-KEY, lists with limit;
- abuse.ch's sample upload script: json_data as an application/json part
  beside the file, the key in Auth-Key."""
import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid


def post(url, body, ctype, headers=None):
    h = {"Content-Type": ctype}
    h.update(headers or {})
    req = urllib.request.Request(url, data=body, headers=h, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def form(url, fields, headers=None):
    return post(url, urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded", headers)


def multipart(url, parts, headers=None):
    """parts: (name, filename or None, content type or None, bytes)."""
    b = uuid.uuid4().hex
    body = b""
    for name, filename, ctype, data in parts:
        disp = 'form-data; name="%s"' % name + ('; filename="%s"' % filename if filename else "")
        body += ("--%s\r\nContent-Disposition: %s\r\n" % (b, disp)).encode()
        if ctype:
            body += ("Content-Type: %s\r\n" % ctype).encode()
        body += b"\r\n" + data + b"\r\n"
    body += ("--%s--\r\n" % b).encode()
    return post(url, body, "multipart/form-data; boundary=" + b, headers)


def jbody(answer):
    status, ctype, body = answer
    assert status == 200 and ctype.startswith("application/json"), answer
    return json.loads(body)


def test_public_clients_request_shapes(server, keys, tmp_path):
    api = server.url + "/api/v1/"
    analyst = keys["analyst"]

    # abuse.ch's upload sample: json_data (application/json part) + file, Auth-Key.
    data = b"MZ" + os.urandom(5000)
    sha, md5 = hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()
    sample = tmp_path / "invoice.exe"
    sample.write_bytes(data)
    meta = {"tags": ["exe", "AgentTesla"], "delivery_method": "email_attachment", "anonymous": 0,
            "references": {"any_run": ["https://app.any.run.example/tasks/1"]},
            "context": {"comment": "from the upload script", "dropped_by_sha256": ["d" * 64]}}
    ans = jbody(multipart(api, [("json_data", None, "application/json", json.dumps(meta).encode()),
                                ("file", sample.name, None, sample.read_bytes())], {"Auth-Key": analyst}))
    assert ans == {"query_status": "inserted", "sha256_hash": sha}

    # MISP: get_info by md5 with no key (a lab server that lets anyone read).
    ans = jbody(form(api, {"query": "get_info", "hash": md5}))
    assert ans["query_status"] == "ok"
    row = ans["data"][0]
    for feature in ("file_name", "file_size", "file_type_mime", "md5_hash", "sha1_hash", "sha256_hash", "ssdeep"):
        assert feature in row, feature
    assert row["file_name"] == "invoice.exe" and row["file_size"] == len(data)
    assert jbody(form(api, {"query": "get_info", "hash": "0" * 32}))["query_status"] == "hash_not_found"

    # The malwarebazaar wrapper: API-KEY on the session, limit as an int.
    h = {"API-KEY": analyst}
    assert jbody(form(api, {"query": "get_info", "hash": sha}, h))["data"][0]["md5_hash"] == md5
    for fields in ({"query": "get_taginfo", "tag": "AgentTesla", "limit": 100},
                   {"query": "get_file_type", "file_type": row["file_type"], "limit": 100},
                   {"query": "get_tlsh", "tlsh": row["tlsh"], "limit": 100},
                   {"query": "get_recent", "selector": "time"},
                   {"query": "get_recent", "selector": "100"}):
        ans = jbody(form(api, fields, h))
        assert ans["query_status"] == "ok" and ans["data"][0]["sha256_hash"] == sha, fields
    ans = jbody(form(api, {"query": "get_siginfo", "signature": "RedLineStealer", "limit": 100}, h))
    assert ans["query_status"] == "signature_not_found"
    ans = jbody(form(api, {"query": "get_yarainfo", "yara_rule": "win_agent_tesla_auto", "limit": 100}, h))
    assert ans["query_status"] == "yara_not_found"
    status, ctype, content = form(api, {"query": "get_file", "sha256_hash": sha}, h)
    assert status == 200 and ctype == "application/zip" and content[:2] == b"PK"

    # XSOAR: every field a multipart part without a file name.
    x = lambda *fields: [(k, None, None, str(v).encode()) for k, v in fields]
    ans = jbody(multipart(api, x(("query", "get_info"), ("hash", sha))))
    assert ans["query_status"] == "ok" and ans["data"][0]["sha256_hash"] == sha
    ans = jbody(multipart(api, x(("query", "add_comment"), ("sha256_hash", sha), ("comment", "from XSOAR")),
                          {"API-KEY": analyst}))
    assert ans["query_status"] == "success"
    ans = jbody(multipart(api, x(("query", "get_taginfo"), ("tag", "exe"), ("limit", 50))))
    assert ans["query_status"] == "ok" and [d["sha256_hash"] for d in ans["data"]] == [sha]
    status, ctype, content = multipart(api, x(("query", "get_file"), ("sha256_hash", sha)))
    assert status == 200 and ctype == "application/zip"
    ans = jbody(multipart(api, x(("query", "get_info"), ("hash", sha))))
    s = ans["data"][0]
    assert [c["comment"] for c in s["comments"]] == ["from the upload script", "from XSOAR"]
    assert s["intelligence"]["downloads"] == "2"
    assert s["references"] == {"any_run": ["https://app.any.run.example/tasks/1"]}
    assert s["context"] == {"dropped_by_sha256": ["d" * 64]}
    # XSOAR's writes need the key: without one the answer says so.
    status, _, body = multipart(api, x(("query", "add_comment"), ("sha256_hash", sha), ("comment", "x")))
    assert status == 401 and json.loads(body)["query_status"] == "no_api_key"
