"""Regressions from the security audit of the outside-facing surfaces added
after docs/security.md (GreyNoise API, knowledge-base lookups, the STIX live
stream, TAXII collections): each test fails on the code before its fix."""
import json
import socket
import urllib.error
import urllib.parse
import urllib.request

from conftest import Server
from test_noise_cli import write_jsonl
from test_noise_tags import syn


def call(url, method="GET", body=None, key=None, timeout=60):
    h = {}
    if key:
        h["Authorization"] = "Bearer " + key
    data = None
    if body is not None:
        h["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# ---- POST /v2/interesting/{ip} writes: analyst, not reader ----------------------

def test_flagging_an_ip_interesting_needs_an_analyst(trawl, keys):
    srv = Server(trawl)
    try:
        url = srv.url + "/v2/interesting/203.0.113.5"
        st, body = call(url, "POST", key=keys["reader"])
        assert st == 403, body
        assert "analyst" in json.loads(body)["message"]
        st, _ = call(url, "POST")
        assert st == 401
        st, body = call(url, "POST", key=keys["analyst"])
        assert st == 200 and json.loads(body) == {}
    finally:
        srv.stop()
    # Only the analyst's flag was recorded.
    import sqlite3
    db = sqlite3.connect(trawl.data + "/trawl.db")
    try:
        rows = db.execute("SELECT ip, by FROM noise_interesting").fetchall()
    finally:
        db.close()
    assert rows == [("203.0.113.5", "analyst-key")], rows


def test_anonymous_readers_cannot_flag_either(trawl, keys):
    srv = Server(trawl, "--anonymous-read")
    try:
        st, _ = call(srv.url + "/v2/interesting/203.0.113.5", "POST")
        assert st == 401
        st, _ = call(srv.url + "/v2/noise/quick/203.0.113.5")
        assert st == 200                                   # reading stays open
    finally:
        srv.stop()
