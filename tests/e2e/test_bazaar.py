"""MalwareBazaar-compatible API at /api/v1/: queries and uploads as Bazaar's
clients send them (form fields, Auth-Key header, query_status words)."""
import hashlib
import json
import os
import subprocess

import requests


def bz(srv, key=None, files=None, **data):
    headers = {"Auth-Key": key} if key else {}
    return requests.post(srv.url + "/api/v1/", data=data, files=files, headers=headers, timeout=30)


def test_bazaar_queries(secure_server, keys, tmp_path):
    key = keys["analyst"]
    data = b"MZ" + os.urandom(6000)
    sha = hashlib.sha256(data).hexdigest()
    meta = {"tags": ["AgentTesla", "exe"], "delivery_method": "email_attachment",
            "comment": "Bazaar-style upload", "signature": "AgentTesla"}
    r = bz(secure_server, key, files={"file": ("order.exe", data)}, json_data=json.dumps(meta))
    assert r.json() == {"query_status": "inserted", "sha256_hash": sha}
    r = bz(secure_server, key, files={"file": ("order.exe", data)}, json_data=json.dumps(meta))
    assert r.json()["query_status"] == "file_already_known"

    r = bz(secure_server, key, query="get_info", hash=hashlib.md5(data).hexdigest())
    doc = r.json()
    assert doc["query_status"] == "ok" and len(doc["data"]) == 1
    s = doc["data"][0]
    assert s["sha256_hash"] == sha and s["file_name"] == "order.exe"
    assert s["tags"] == ["AgentTesla", "exe"] and s["signature"] == "AgentTesla"
    assert s["comment"] == "Bazaar-style upload" and s["delivery_method"] == "email_attachment"
    assert bz(secure_server, key, query="get_info", hash="0" * 64).json()["query_status"] == "hash_not_found"
    assert bz(secure_server, key, query="get_info", hash="zz").json()["query_status"] == "illegal_hash"
    assert bz(secure_server, key, query="get_info").json()["query_status"] == "no_hash_provided"

    for q, field, value in (("get_taginfo", "tag", "AgentTesla"), ("get_siginfo", "signature", "agenttesla"),
                            ("get_file_type", "file_type", s["file_type"])):
        doc = bz(secure_server, key, query=q, **{field: value}, limit="10").json()
        assert doc["query_status"] == "ok" and doc["data"][0]["sha256_hash"] == sha, (q, doc)
    assert bz(secure_server, key, query="get_taginfo", tag="nothing").json()["query_status"] == "tag_not_found"
    assert bz(secure_server, key, query="get_taginfo", tag="x", limit="-1").json()["query_status"] == "illegal_limit"
    assert bz(secure_server, key, query="get_recent", selector="time").json()["data"][0]["sha256_hash"] == sha
    assert bz(secure_server, key, query="get_recent", selector="100").json()["query_status"] == "ok"
    assert bz(secure_server, key, query="get_recent", selector="x").json()["query_status"] == "unknown_selector"
    assert bz(secure_server, key, query="frobnicate").json()["query_status"] == "unknown_query"

    assert bz(secure_server, key, query="add_comment", sha256_hash=sha, comment="second look").json()["query_status"] == "success"
    r = bz(secure_server, key, query="get_file", sha256_hash=sha)
    assert r.headers["Content-Type"] == "application/zip"
    (tmp_path / "s.zip").write_bytes(r.content)
    p = subprocess.run(["7z", "x", "-y", "-pinfected", "-o" + str(tmp_path / "x"), str(tmp_path / "s.zip")],
                       capture_output=True, text=True)
    assert p.returncode == 0
    assert (tmp_path / "x" / os.listdir(tmp_path / "x")[0]).read_bytes() == data
    assert bz(secure_server, key, query="get_file", sha256_hash="1" * 64).json()["query_status"] == "file_not_found"


def test_bazaar_roles(secure_server, keys):
    r = bz(secure_server, None, query="get_recent", selector="100")
    assert r.status_code == 401
    r = bz(secure_server, keys["reader"], files={"file": ("a.bin", b"reader upload")})
    assert r.status_code == 403
    r = bz(secure_server, keys["reader"], query="get_recent", selector="100")
    assert r.json()["query_status"] == "no_results"
