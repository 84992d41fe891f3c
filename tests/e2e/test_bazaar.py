"""MalwareBazaar-compatible API at /api/v1/: queries and uploads as Bazaar's
clients send them (form fields, Auth-Key header, query_status words)."""
import hashlib
import json
import os
import subprocess
import time

import requests


def bz(srv, auth=None, files=None, **data):
    headers = {"Auth-Key": auth} if auth else {}
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


# ---- answer shapes ---------------------------------------------------------

def upload_bz(srv, key, name, data, **meta):
    r = bz(srv, key, files={"file": (name, data)}, json_data=json.dumps(meta))
    assert r.status_code == 200, r.text
    return r.json()


def info(srv, key, h):
    doc = bz(srv, key, query="get_info", hash=h).json()
    assert doc["query_status"] == "ok", doc
    return doc["data"][0]


def test_get_info_has_every_bazaar_field_with_bazaar_types(secure_server, keys):
    key = keys["analyst"]
    data = b"MZ" + os.urandom(3000)
    sha = hashlib.sha256(data).hexdigest()
    meta = {"tags": ["exe", "Loader"], "origin": "NL",
            "references": {"urlhaus": ["https://urlhaus.example/url/1/"], "links": ["https://blog.example/a"]},
            "context": {"comment": "from a phish", "dropped_by_md5": "68b329da9893e34099c7d8ad5cb9c940"}}
    assert upload_bz(secure_server, key, "a.exe", data, **meta)["query_status"] == "inserted"
    s = info(secure_server, key, sha)
    for field in ("sha256_hash", "sha3_384_hash", "sha1_hash", "md5_hash", "first_seen", "last_seen",
                  "file_name", "file_size", "file_type_mime", "file_type", "reporter", "origin_country",
                  "anonymous", "signature", "imphash", "tlsh", "telfhash", "gimphash", "ssdeep",
                  "dhash_icon", "comment", "archive_pw", "tags", "code_sign", "delivery_method",
                  "intelligence", "file_information", "ole_information", "yara_rules", "vendor_intel",
                  "comments", "trid"):
        assert field in s, field
    assert isinstance(s["file_size"], int) and s["anonymous"] == 0
    assert s["origin_country"] == "NL" and s["reporter"] == "analyst-key"
    for null in ("telfhash", "gimphash", "dhash_icon", "archive_pw", "file_information", "trid", "yara_rules"):
        assert s[null] is None, null
    assert s["code_sign"] == [] and s["ole_information"] == [] and s["vendor_intel"] == {}
    assert s["intelligence"] == {"clamav": None, "downloads": "0", "uploads": "1", "mail": None}
    assert s["comment"] == "from a phish"
    # Bazaar's shape: every reference and context key a list (a lone value becomes one).
    assert s["references"] == {"urlhaus": ["https://urlhaus.example/url/1/"], "links": ["https://blog.example/a"]}
    assert s["context"] == {"dropped_by_md5": ["68b329da9893e34099c7d8ad5cb9c940"]}
    [c] = s["comments"]
    assert isinstance(c["id"], str) and c["id"].isdigit()
    assert c["display_name"] == "analyst-key" and c["twitter_handle"] is None
    assert c["comment"] == "from a phish" and len(c["date_added"]) == 19

    # The counters count: a download, a second upload.
    assert bz(secure_server, key, query="get_file", sha256_hash=sha).headers["Content-Type"] == "application/zip"
    assert upload_bz(secure_server, key, "b.exe", data)["query_status"] == "file_already_known"
    s = info(secure_server, key, sha)
    assert s["intelligence"]["downloads"] == "1" and s["intelligence"]["uploads"] == "2"

    # A sample without comments: null, as Bazaar sends it; tags null when none.
    other = os.urandom(500)
    upload_bz(secure_server, key, "c.bin", other)
    s = info(secure_server, key, hashlib.sha256(other).hexdigest())
    assert s["comments"] is None and s["comment"] is None and s["tags"] is None

    # List answers carry the list fields (intelligence too), not get_info's extras.
    row = bz(secure_server, key, query="get_taginfo", tag="Loader").json()["data"][0]
    assert row["sha256_hash"] == sha and row["intelligence"]["uploads"] == "2"
    for field in ("telfhash", "gimphash", "dhash_icon", "code_sign", "origin_country", "anonymous"):
        assert field in row, field
    assert "comments" not in row


def test_older_api_key_header_is_accepted(secure_server, keys):
    r = requests.post(secure_server.url + "/api/v1/", data={"query": "get_recent", "selector": "100"},
                      headers={"API-KEY": keys["reader"]}, timeout=30)
    assert r.status_code == 200 and r.json()["query_status"] == "no_results"
    r = requests.post(secure_server.url + "/api/v1/", data={"query": "get_recent", "selector": "100"},
                      headers={"API-KEY": "not-a-key"}, timeout=30)
    assert r.status_code == 403 and r.json()["query_status"] == "unknown_auth_key"


def test_transport_and_key_status_words(secure_server, keys):
    r = requests.get(secure_server.url + "/api/v1/", timeout=30)
    assert r.json()["query_status"] == "http_post_expected"
    r = requests.put(secure_server.url + "/api/v1/", data="x", timeout=30)
    assert r.json()["query_status"] == "http_post_expected"
    r = bz(secure_server, None, query="get_info", hash="0" * 64)
    assert r.status_code == 401 and r.json()["query_status"] == "no_api_key"
    r = bz(secure_server, keys["reader"], files={"file": ("a.bin", b"reader upload")})
    assert r.status_code == 403 and r.json()["query_status"] == "user_blacklisted"
    assert bz(secure_server, keys["reader"], selector="100").json()["query_status"] == "no_query"
    # Body problems too: over the server's --max-upload (1 MB here), a broken form.
    r = bz(secure_server, keys["analyst"], files={"file": ("big.bin", b"\0" * (1 << 20) + b"more")})
    assert r.status_code == 413 and r.json()["query_status"] == "file_too_large"
    r = requests.post(secure_server.url + "/api/v1/", data=b"--XX\r\nContent-Disposition: form-data; name=",
                      headers={"Auth-Key": keys["analyst"], "Content-Type": "multipart/form-data; boundary=XX"},
                      timeout=30)
    assert r.status_code == 400 and r.json()["query_status"] == "illegal_form_data"


STATUS_CASES = [
    # query, fields, expected query_status
    ({"query": "get_info"}, "no_hash_provided"),
    ({"query": "get_info", "hash": "xyz"}, "illegal_hash"),
    ({"query": "get_info", "hash": "a" * 64}, "hash_not_found"),
    ({"query": "get_file"}, "no_sha256_hash"),
    ({"query": "get_file", "sha256_hash": "a" * 32}, "illegal_sha256_hash"),
    ({"query": "get_file", "sha256_hash": "a" * 64}, "file_not_found"),
    ({"query": "get_taginfo"}, "no_tag_provided"),
    ({"query": "get_taginfo", "tag": "bad;tag"}, "illegal_tag"),
    ({"query": "get_taginfo", "tag": "nosuchtag"}, "tag_not_found"),
    ({"query": "get_taginfo", "tag": "x", "limit": "ten"}, "illegal_limit"),
    ({"query": "get_siginfo"}, "no_signature_provided"),
    ({"query": "get_siginfo", "signature": "x" * 201}, "illegal_signature"),
    ({"query": "get_siginfo", "signature": "Nope"}, "signature_not_found"),
    ({"query": "get_file_type"}, "no_file_type"),
    ({"query": "get_file_type", "file_type": "e x e"}, "illegal_file_type"),
    ({"query": "get_file_type", "file_type": "apk"}, "no_results"),
    ({"query": "get_imphash"}, "no_imphash"),
    ({"query": "get_imphash", "imphash": "123"}, "illegal_imphash"),
    ({"query": "get_imphash", "imphash": "f34d5f2d4577ed6d9ceec516c1f5a744"}, "no_results"),
    ({"query": "get_tlsh"}, "no_tlsh"),
    ({"query": "get_tlsh", "tlsh": "T1zz"}, "illegal_tlsh"),
    ({"query": "get_tlsh", "tlsh": "T1" + "A" * 70}, "no_results"),
    ({"query": "get_yarainfo"}, "no_yara_rule_provided"),
    ({"query": "get_yarainfo", "yara_rule": "not a rule"}, "illegal_yara_rule"),
    ({"query": "get_yarainfo", "yara_rule": "never_matched"}, "yara_not_found"),
    ({"query": "recent_detections", "hours": "0"}, "illegal_hours"),
    ({"query": "recent_detections", "hours": "169"}, "illegal_hours"),
    ({"query": "recent_detections", "hours": "24"}, "no_results"),
    ({"query": "get_recent"}, "no_selector"),
    ({"query": "get_recent", "selector": "200"}, "unknown_selector"),
    ({"query": "add_comment", "sha256_hash": "a" * 64}, "no_comment"),
    ({"query": "add_comment", "sha256_hash": "a" * 64, "comment": "x"}, "hash_not_found"),
    ({"query": "update"}, "no_sha256_hash"),
    ({"query": "update", "sha256_hash": "a" * 64, "key": "add_tag", "value": "x"}, "hash_not_found"),
    ({"query": "get_nothing"}, "unknown_query"),
]


def test_every_status_word(secure_server, keys):
    for fields, want in STATUS_CASES:
        r = bz(secure_server, keys["analyst"], **fields)
        assert r.status_code == 200 and r.json()["query_status"] == want, (fields, r.text)
    r = bz(secure_server, keys["analyst"], files={"file": ("a.bin", b"x")}, json_data="[1]")
    assert r.json()["query_status"] == "illegal_json_data"
    r = bz(secure_server, keys["analyst"], files={"file": ("a.bin", b"x")}, json_data=json.dumps({"tags": ["a;b"]}))
    assert r.json()["query_status"] == "illegal_tags"
    r = bz(secure_server, keys["analyst"], files={"file": ("a.bin", b"x")},
           json_data=json.dumps({"references": {"urlhaus": "not a url"}}))
    assert r.json()["query_status"] == "illegal_json_data"
    r = bz(secure_server, keys["analyst"], files={"file": ("a.bin", b"x")},
           json_data=json.dumps({"delivery_method": "carrier_pigeon"}))
    assert r.json()["query_status"] == "illegal_delivery_method"
    r = bz(secure_server, keys["analyst"], query="upload")
    assert r.json()["query_status"] == "file_expected"


def test_lists_by_imphash_tlsh_and_file_type_find_the_sample(secure_server, keys, trawl):
    key = keys["analyst"]
    data = os.urandom(4000)
    sha = hashlib.sha256(data).hexdigest()
    upload_bz(secure_server, key, "x.bin", data)
    s = info(secure_server, key, sha)
    assert s["tlsh"], s
    for fields in ({"query": "get_tlsh", "tlsh": s["tlsh"]},
                   {"query": "get_file_type", "file_type": s["file_type"], "limit": "5"}):
        doc = bz(secure_server, key, **fields).json()
        assert doc["query_status"] == "ok" and doc["data"][0]["sha256_hash"] == sha, (fields, doc)


# ---- anonymous uploads, update ----------------------------------------------

def test_anonymous_upload_never_names_the_uploader(secure_server, keys, trawl):
    key = keys["analyst"]
    data = b"anonymous sample " + os.urandom(64)
    sha = hashlib.sha256(data).hexdigest()
    meta = {"anonymous": 1, "tags": ["anon"], "context": {"comment": "no names please"}}
    assert upload_bz(secure_server, key, "anon.bin", data, **meta)["query_status"] == "inserted"
    s = info(secure_server, key, sha)
    assert s["anonymous"] == 1 and s["reporter"] == "anonymous"
    assert s["comments"][0]["display_name"] == "anonymous" and s["comments"][0]["comment"] == "no names please"
    texts = [bz(secure_server, key, query="get_info", hash=sha).text,
             bz(secure_server, key, query="get_taginfo", tag="anon").text,
             requests.get(secure_server.url + "/api/samples/" + sha, headers={"Authorization": "Bearer " + key},
                          timeout=30).text,
             requests.get(secure_server.url + "/export/csv/recent/", headers={"Auth-Key": key}, timeout=30).text,
             requests.get(secure_server.url + "/export/json/recent/", headers={"Auth-Key": key}, timeout=30).text]
    for t in texts:
        assert sha in t and "analyst-key" not in t, t[:2000]
    # The anonymous uploader may still update it; another analyst may not.
    other = trawl.run("key", "add", "--role", "analyst", "other-analyst", check=0).stdout.strip()
    r = bz(secure_server, other, query="update", sha256_hash=sha, key="add_tag", value="theirs")
    assert r.json()["query_status"] == "permission_denied"
    r = bz(secure_server, key, query="update", sha256_hash=sha, key="add_tag", value="mine")
    assert r.json()["query_status"] == "updated"
    r = bz(secure_server, keys["admin"], query="update", sha256_hash=sha, key="add_tag", value="admins")
    assert r.json()["query_status"] == "updated"
    assert info(secure_server, key, sha)["tags"] == ["admins", "anon", "mine"]


def test_update_keys(secure_server, keys, trawl):
    key = keys["analyst"]
    data = os.urandom(700)
    sha = hashlib.sha256(data).hexdigest()
    upload_bz(secure_server, key, "u.bin", data, tags=["first"])

    def upd(k, v, who=key):
        return bz(secure_server, who, query="update", sha256_hash=sha, key=k, value=v).json()["query_status"]

    assert upd("add_tag", "second") == "updated"
    assert upd("remove_tag", "first") == "updated"
    assert upd("remove_tag", "first") == "tag_not_found"
    for k in ("urlhaus", "any_run", "joe_sandbox", "malpedia", "twitter"):
        assert upd(k, "https://%s.example/x" % k) == "updated", k
    assert upd("links", "https://a.example/1") == "updated"
    assert upd("links", "https://a.example/2") == "updated"
    assert upd("dropped_by_md5", "68b329da9893e34099c7d8ad5cb9c940") == "updated"
    assert upd("dropped_by_sha256", "b" * 64) == "updated"
    assert upd("dropped_by_malware", "Emotet") == "updated"
    assert upd("dropping_md5", "c" * 32) == "updated"
    assert upd("comment", "updated by its reporter") == "updated"
    assert upd("dropped_by_md5", "xyz") == "illegal_value"
    assert upd("twitter", "ftp://nope") == "illegal_value"
    assert upd("add_tag", "bad;tag") == "illegal_value"
    assert upd("colour", "red") == "unknown_key"
    assert upd("add_tag", "") == "no_value"
    assert bz(secure_server, key, query="update", sha256_hash=sha).json()["query_status"] == "no_key"
    assert upd("add_tag", "x", who=keys["reader"]) == "user_blacklisted"
    other = trawl.run("key", "add", "--role", "analyst", "someone-else", check=0).stdout.strip()
    assert upd("add_tag", "x", who=other) == "permission_denied"
    s = info(secure_server, key, sha)
    assert s["tags"] == ["second"]
    assert s["references"] == {"urlhaus": ["https://urlhaus.example/x"], "any_run": ["https://any_run.example/x"],
                               "joe_sandbox": ["https://joe_sandbox.example/x"],
                               "malpedia": ["https://malpedia.example/x"], "twitter": ["https://twitter.example/x"],
                               "links": ["https://a.example/1", "https://a.example/2"]}
    assert s["context"] == {"dropped_by_md5": ["68b329da9893e34099c7d8ad5cb9c940"], "dropped_by_sha256": ["b" * 64],
                            "dropped_by_malware": ["Emotet"], "dropping_md5": ["c" * 32]}
    assert s["comments"][-1]["comment"] == "updated by its reporter"


# ---- live-rule queries --------------------------------------------------------

LIVE_RULE = ('rule bz_live_rule { meta: author = "trawl tests" description = "finds the marker" '
             'reference = "https://example.org/rule" strings: $a = "BZ-LIVE-MARKER" condition: $a }')


def wait_live(srv, key, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = requests.get(srv.url + "/api/rules", headers={"Authorization": "Bearer " + key}, timeout=10).json()
        if j["scans_pending"] == 0 and j["data"][0]["hits"] > 0:
            return
        time.sleep(0.1)
    raise AssertionError("the live scan never finished")


def test_yara_rules_get_yarainfo_and_recent_detections_from_live_hits(secure_server, keys):
    key = keys["analyst"]
    r = requests.post(secure_server.url + "/api/rules", headers={"Authorization": "Bearer " + key},
                      json={"name": "bz", "rule": LIVE_RULE}, timeout=60)
    assert r.status_code == 201, r.text
    data = b"xx BZ-LIVE-MARKER yy" + os.urandom(100)
    sha = hashlib.sha256(data).hexdigest()
    miss = os.urandom(100)
    upload_bz(secure_server, key, "hit.bin", data)
    upload_bz(secure_server, key, "miss.bin", miss)
    wait_live(secure_server, key)
    s = info(secure_server, key, sha)
    assert [{k: y[k] for k in ("rule_name", "author", "description", "reference")} for y in s["yara_rules"]] == [
        {"rule_name": "bz_live_rule", "author": "trawl tests", "description": "finds the marker",
         "reference": "https://example.org/rule"}]
    assert info(secure_server, key, hashlib.sha256(miss).hexdigest())["yara_rules"] is None
    doc = bz(secure_server, key, query="get_yarainfo", yara_rule="bz_live_rule", limit="10").json()
    assert doc["query_status"] == "ok" and [d["sha256_hash"] for d in doc["data"]] == [sha]
    doc = bz(secure_server, key, query="recent_detections", hours="1").json()
    assert doc["query_status"] == "ok" and [d["sha256_hash"] for d in doc["data"]] == [sha]
    doc = bz(secure_server, key, query="recent_detections").json()
    assert [d["sha256_hash"] for d in doc["data"]] == [sha]
