"""The STIX 2.1 knowledge base end to end: CLI, /api/stix, the TAXII 2.1 server
replaying what taxii2-client sends, and every object trawl emits validated
against the OASIS schemas with python3-jsonschema."""
import base64
import glob
import json
import os
import re
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import ROOT, SHARED

ATTACK = os.path.join(SHARED, "data", "attack", "enterprise-attack-entities.json")
CAPTURE = os.path.join(SHARED, "data", "clients", "taxii2client-requests.txt")
SCHEMAS = os.path.join(ROOT, "src", "stix", "schemas")
TAXII = "application/taxii+json;version=2.1"
WIZARD = "intrusion-set--dd2d9ca6-505b-4860-a604-233685b802c7"


def need(path):
    if not os.path.exists(path):
        pytest.skip("missing %s" % path)


# ---- OASIS schema validation (python3-jsonschema, from Debian) -------------

_VALIDATORS = {}


def _schema_store():
    store = {}
    for p in glob.glob(os.path.join(SCHEMAS, "*", "*.json")):
        s = json.load(open(p))
        store[s["$id"]] = s
    return store


def validate_stix(obj):
    """Validates one STIX object against its OASIS schema (offline)."""
    import jsonschema
    if not _VALIDATORS:
        store = _schema_store()
        _VALIDATORS["store"] = store
    store = _VALIDATORS["store"]
    t = obj["type"]
    folder = None
    for f in ("sdos", "sros", "observables", "common"):
        if os.path.exists(os.path.join(SCHEMAS, f, t + ".json")):
            folder = f
    if folder is None:
        folder, t = "common", ("core" if "created" in obj else "cyber-observable-core")
    key = (folder, t)
    if key not in _VALIDATORS:
        schema = json.load(open(os.path.join(SCHEMAS, folder, t + ".json")))
        resolver = jsonschema.RefResolver(schema["$id"], schema, store=store)
        _VALIDATORS[key] = jsonschema.Draft202012Validator(schema, resolver=resolver)
    errors = list(_VALIDATORS[key].iter_errors(obj))
    assert not errors, "%s fails its OASIS schema: %s" % (obj.get("id"), errors[0].message)


def validate_bundle(bundle):
    assert bundle["type"] == "bundle" and bundle["id"].startswith("bundle--")
    for o in bundle.get("objects", []):
        validate_stix(o)
    return bundle["objects"]


def bundle(*objects):
    return {"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
            "objects": list(objects)}


MALWARE_V1 = {"type": "malware", "spec_version": "2.1",
              "id": "malware--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061",
              "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
              "name": "Gloomhaul", "is_family": True, "aliases": ["GH loader"],
              "description": "A loader seen in 2024."}
MALWARE_V2 = dict(MALWARE_V1, modified="2024-06-01T00:00:00.000Z",
                  description="A loader seen in 2024, now with a wiper stage.")
IP = {"type": "ipv4-addr", "spec_version": "2.1",
      "id": "ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4", "value": "198.51.100.3"}
REL = {"type": "relationship", "spec_version": "2.1",
       "id": "relationship--57b56a43-b8b0-4cba-9deb-34e3e1faed9e",
       "created": "2024-01-02T00:00:00.000Z", "modified": "2024-01-02T00:00:00.000Z",
       "relationship_type": "communicates-with",
       "source_ref": MALWARE_V1["id"], "target_ref": IP["id"]}


def write(tmp_path, name, obj_or_text):
    p = tmp_path / name
    p.write_text(obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text))
    return str(p)


# ---- CLI -------------------------------------------------------------------

def test_cli_attack_bundle(trawl, tmp_path):
    need(ATTACK)
    p = trawl.run("stix", "import", ATTACK, check=0)
    assert "upgraded from STIX 2.0" in p.stdout
    assert re.search(r"2314 objects, 2314 new", p.stdout), p.stdout
    # FIN12 is an alias of Wizard Spider, which uses Conti and Ryuk.
    p = trawl.run("stix", "search", "FIN12", "--type", "intrusion-set", "--json", check=0)
    hits = json.loads(p.stdout)
    assert hits[0]["name"] == "Wizard Spider" and "FIN12" in hits[0]["aliases"]
    p = trawl.run("stix", "neighbours", WIZARD, check=0)
    assert "Wizard Spider (intrusion-set)\tuses\tConti (malware)" in p.stdout
    assert "Wizard Spider (intrusion-set)\tuses\tRyuk (malware)" in p.stdout
    p = trawl.run("stix", "neighbours", WIZARD, "--depth", "2", "--json", check=0)
    names = {n.get("name") for n in json.loads(p.stdout)["nodes"]}
    assert {"Conti", "Ryuk", "Wizard Spider"} <= names
    # Importing it again stores nothing new; "-" reads the bundle from stdin.
    with open(ATTACK) as f:
        p = subprocess.run(trawl.cmd("stix", "import", "-"), stdin=f, capture_output=True, text=True)
    assert p.returncode == 0 and "-: 2314 objects, 0 new, 2314 already held" in p.stdout, p.stderr
    # The export is a valid 2.1 bundle, object by object.
    p = trawl.run("stix", "export", "--type", "intrusion-set", "--type", "malware", check=0)
    objs = validate_bundle(json.loads(p.stdout))
    assert len(objs) == 187 + 696
    assert all(o["spec_version"] == "2.1" for o in objs)
    assert all(o["is_family"] is True for o in objs if o["type"] == "malware")


def test_cli_refuses_whole_bundle_naming_object_and_property(trawl, tmp_path):
    bad_tool = {"type": "tool", "spec_version": "2.1",
                "id": "tool--8e8e2a3c-54b4-4a4d-a5b5-7a1c3d6c7f0e",
                "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
                "name": ["not", "a", "string"]}
    f = write(tmp_path, "bad.json", bundle(MALWARE_V1, bad_tool))
    p = trawl.run("stix", "import", f, check=1)
    assert "object 1 (tool--8e8e2a3c-54b4-4a4d-a5b5-7a1c3d6c7f0e)" in p.stderr
    assert "'name'" in p.stderr
    # Nothing of it was stored, not even the valid first object.
    trawl.run("stix", "show", MALWARE_V1["id"], check=1)
    # The spec's rules beyond the schemas: a relationship to a marking.
    rel = dict(REL, target_ref="marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9")
    p = trawl.run("stix", "import", write(tmp_path, "rel.json", bundle(rel)), check=1)
    assert "object 0 (%s)" % rel["id"] in p.stderr and "'target_ref'" in p.stderr
    # A UUIDv5 SCO id that is not the deterministic one.
    ip = dict(IP, value="198.51.100.4")
    p = trawl.run("stix", "import", write(tmp_path, "ip.json", bundle(ip)), check=1)
    assert "deterministic" in p.stderr and "'id'" in p.stderr


def test_cli_versions_custom_bytes_and_search(trawl, tmp_path):
    # Custom properties come back byte for byte: odd spacing, 1.50, key order.
    raw_v1 = json.dumps(MALWARE_V1)[:-1] + ', "x_acme_score" :  1.50, "x_acme": {"z": 1, "a": [true]}}'
    text = '{"type": "bundle", "id": "bundle--0f9b7e1e-4c7d-4bb8-9b55-8b1b1c6b9f10", "objects": [%s]}' % raw_v1
    trawl.run("stix", "import", write(tmp_path, "v1.json", text), check=0)
    trawl.run("stix", "import", write(tmp_path, "v2.json", bundle(MALWARE_V2, IP, REL)), check=0)
    p = trawl.run("stix", "export", "--id", MALWARE_V1["id"], "--all-versions", check=0)
    assert raw_v1 in p.stdout
    objs = validate_bundle(json.loads(p.stdout))
    assert [o["modified"] for o in objs] == ["2024-01-01T00:00:00.000Z", "2024-06-01T00:00:00.000Z"]
    # The latest version by default.
    p = trawl.run("stix", "show", MALWARE_V1["id"], "--json", check=0)
    assert json.loads(p.stdout)["modified"] == "2024-06-01T00:00:00.000Z"
    p = trawl.run("stix", "show", MALWARE_V1["id"], "--versions", check=0)
    assert p.stdout.count("added ") == 2
    # Search reads names, aliases and descriptions of latest versions.
    assert "Gloomhaul" in trawl.run("stix", "search", "wiper", check=0).stdout
    assert "Gloomhaul" in trawl.run("stix", "search", "GH", "loader", check=0).stdout
    assert trawl.run("stix", "search", "ipv4", "--type", "malware", check=0).stdout == ""
    p = trawl.run("stix", "neighbours", MALWARE_V1["id"], check=0)
    assert "Gloomhaul (malware)\tcommunicates-with\t198.51.100.3 (ipv4-addr)" in p.stdout
    # Embedded references are edges too: a report's object_refs.
    report = {"type": "report", "spec_version": "2.1", "id": "report--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3",
              "created": "2024-02-01T00:00:00.000Z", "modified": "2024-02-01T00:00:00.000Z",
              "name": "Gloomhaul in the wild", "published": "2024-02-01T00:00:00Z",
              "object_refs": [MALWARE_V1["id"], IP["id"]]}
    trawl.run("stix", "import", write(tmp_path, "r.json", bundle(report)), check=0)
    p = trawl.run("stix", "neighbours", IP["id"], check=0)
    assert "Gloomhaul in the wild (report)\tobject_refs\t198.51.100.3 (ipv4-addr)" in p.stdout
    # Filters, with or without text, over latest versions only.
    p = trawl.run("stix", "search", "--type", "malware", "--modified-after", "2024-03-01T00:00:00Z", check=0)
    assert p.stdout.startswith(MALWARE_V1["id"] + "\tmalware\tGloomhaul")
    p = trawl.run("stix", "search", "--type", "malware", "--modified-before", "2024-03-01T00:00:00Z", check=0)
    assert p.stdout == ""
    p = trawl.run("stix", "search", "loader", "--created-after", "2025-01-01T00:00:00Z", check=0)
    assert p.stdout == ""
    # --since filters by modified.
    p = trawl.run("stix", "export", "--since", "2024-03-01T00:00:00Z", check=0)
    assert {o["id"] for o in json.loads(p.stdout)["objects"]} == {MALWARE_V1["id"]}
    p = trawl.run("stix", "export", "--type", "report", check=0)
    validate_bundle(json.loads(p.stdout))


# ---- /api/stix ----------------------------------------------------------------

def call(url, method="GET", body=None, headers=None, key=None):
    h = dict(headers or {})
    if key:
        h.setdefault("Authorization", "Bearer " + key)
    if body is not None:
        h.setdefault("Content-Type", "application/json")
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_api_stix(secure_server, keys):
    url = secure_server.url + "/api/stix"
    st, _, body = call(url + "/import", "POST", bundle(MALWARE_V1, IP, REL), key=keys["reader"])
    assert st == 403
    st, _, body = call(url + "/import", "POST", bundle(MALWARE_V1, IP, REL), key=keys["analyst"])
    assert st == 200, body
    assert json.loads(body)["added"] == 3
    call(url + "/import", "POST", bundle(MALWARE_V2), key=keys["analyst"])
    bad = dict(MALWARE_V1, id="malware--1c7b5b88-8ff7-4a4d-aa9d-feb398cd0061", is_family="yes")
    st, _, body = call(url + "/import", "POST", bundle(bad), key=keys["analyst"])
    assert st == 422 and b"'is_family'" in body and b"object 0" in body
    st, _, body = call(url + "/search?q=gloomhaul", key=keys["reader"])
    assert [o["id"] for o in json.loads(body)["objects"]] == [MALWARE_V1["id"]]
    tlp = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
    marked = dict(MALWARE_V1, id="malware--2c7b5b88-8ff7-4a4d-aa9d-feb398cd0061", name="Marked",
                  labels=["crimeware"], object_marking_refs=[tlp])
    st, _, body = call(url + "/import", "POST", bundle(marked), key=keys["analyst"])
    assert st == 200, body
    for q in ("label=crimeware", "marking=" + tlp, "q=marked&label=crimeware"):
        st, _, body = call(url + "/search?" + q, key=keys["reader"])
        assert [o["id"] for o in json.loads(body)["objects"]] == [marked["id"]], q
    st, _, body = call(url + "/search?label=nothing-has-this", key=keys["reader"])
    assert json.loads(body)["objects"] == []
    st, _, body = call(url + "/search", key=keys["reader"])
    assert st == 400
    st, _, body = call(url + "/objects/" + MALWARE_V1["id"], key=keys["reader"])
    obj = json.loads(body)
    validate_stix(obj)
    assert obj["modified"] == MALWARE_V2["modified"]
    st, _, body = call(url + "/objects/" + MALWARE_V1["id"] + "/versions", key=keys["reader"])
    assert len(json.loads(body)["versions"]) == 2
    st, _, body = call(url + "/objects/" + IP["id"] + "/neighbours", key=keys["reader"])
    g = json.loads(body)
    assert {n["id"] for n in g["nodes"]} == {IP["id"], MALWARE_V1["id"]}
    assert g["edges"][0]["relationship_type"] == "communicates-with"
    st, _, body = call(url + "/objects/malware--00000000-0000-4000-8000-000000000000", key=keys["reader"])
    assert st == 404
    st, _, body = call(url + "/export?type=malware,ipv4-addr", key=keys["reader"])
    objs = validate_bundle(json.loads(body))
    assert {o["id"] for o in objs} == {MALWARE_V1["id"], IP["id"], marked["id"]}
    # Deleting takes every version, and needs the admin role.
    st, _, _ = call(url + "/objects/" + marked["id"], "DELETE", key=keys["analyst"])
    assert st == 403
    st, _, body = call(url + "/objects/" + marked["id"], "DELETE", key=keys["admin"])
    assert st == 200 and json.loads(body)["versions"] == 1
    st, _, _ = call(url + "/objects/" + marked["id"], key=keys["reader"])
    assert st == 404
    st, _, _ = call(url + "/objects/" + marked["id"], "DELETE", key=keys["admin"])
    assert st == 404


# ---- TAXII 2.1 ------------------------------------------------------------------

def parse_capture(path):
    """The requests of the capture: method, path+query, headers, body."""
    reqs = []
    cur = None
    for line in open(path):
        m = re.match(r"  (GET|POST|DELETE|PUT) (\S+)$", line.rstrip("\n"))
        if m:
            cur = {"method": m.group(1), "target": m.group(2), "headers": {}, "body": None}
            reqs.append(cur)
            continue
        if cur is None:
            continue
        m = re.match(r"    header: ([^:]+): (.*)$", line.rstrip("\n"))
        if m:
            cur["headers"][m.group(1)] = m.group(2)
            continue
        m = re.match(r"    body:   (.*)$", line.rstrip("\n"))
        if m:
            cur["body"] = m.group(1)
    return reqs


def check_taxii_answer(status, headers, body):
    assert headers.get("Content-Type") == TAXII, headers
    doc = json.loads(body) if body else {}
    if status >= 400:
        assert doc["http_status"] == str(status) and doc["title"]
        return doc
    for o in doc.get("objects", []):
        if "media_type" not in o:         # envelopes carry objects, manifests records
            validate_stix(o)
    return doc


def test_taxii_replays_taxii2client(trawl, keys):
    """Each request taxii2-client 2.3.0 and python-stix2 sent in the capture,
    byte for byte but for the server's own values (API root, collection,
    status and paging cursors, the key)."""
    need(CAPTURE)
    srv = None
    from conftest import Server
    srv = Server(trawl, "--anonymous-read")
    try:
        p = trawl.run("stix", "collection-add", "Shared feed", "pushed by partners", check=0)
        coll = p.stdout.strip()
        basic = base64.b64encode(("user:" + keys["analyst"]).encode()).decode()
        reqs = parse_capture(CAPTURE)
        assert len(reqs) >= 20
        # The capture reads before it writes: the first POST seeds the collection.
        first_post = next(r for r in reqs if r["method"] == "POST")
        reqs = [first_post] + reqs
        last_next = None
        status_id = None
        deleted = False
        answered = 0
        for r in reqs:
            target = r["target"].replace("/api1/", "/taxii2/kb/")
            target = target.replace("91a7b528-80eb-42ed-a74d-c6fbd5a26116", coll)
            if "next=" in target:
                target = re.sub(r"next=[^&]*", "next=" + (last_next or "0"), target)
            if status_id:
                target = target.replace("2d086da7-4bdc-4f91-900e-d77486753710", status_id)
            h = {k: v for k, v in r["headers"].items() if k not in ("Host", "Content-Length")}
            if h.get("Authorization") == "Basic dXNlcjpwYXNz":
                h["Authorization"] = "Basic " + basic
            elif h.get("Authorization", "").startswith("Token "):
                h["Authorization"] = "Token " + keys["reader"]
            body = r["body"].encode() if r["body"] is not None else None
            if r["method"] == "POST" and "Authorization" not in h:
                h["Authorization"] = "Bearer " + keys["analyst"]   # python-stix2's sink: no auth in the capture
            st, headers, data = call(srv.url + target, r["method"], body, h)
            doc = check_taxii_answer(st, headers, data)
            answered += 1
            one_object = re.search(r"/objects/indicator--[^/]+/$", target.split("?")[0])
            if r["method"] == "GET" and one_object and deleted:
                assert st == 404, (target, st, doc)     # gone from the collection since the DELETE
                continue
            assert st in (200, 202), (r["method"], target, st, doc)
            if r["method"] == "POST":
                assert st == 202 and doc["status"] == "complete" and doc["success_count"] == 1, doc
                status_id = doc["id"]
            if r["method"] == "DELETE":
                deleted = True
            if doc.get("more"):
                last_next = doc["next"]
            if "/status/" in target:
                assert doc["id"] == status_id and doc["total_count"] == 1
            if "match%5Bversion%5D=all" in target and not deleted:
                assert [o["modified"] for o in doc["objects"]] == ["2016-04-06T20:03:48.000Z"]
            if target.split("?")[0].endswith("/manifest/"):
                assert doc["objects"][0]["media_type"] == "application/stix+json;version=2.1"
                assert "X-TAXII-Date-Added-First" in headers
        assert answered == len(reqs)
    finally:
        srv.stop()


def test_taxii_paging_errors_and_permissions(secure_server, keys):
    base = secure_server.url + "/taxii2/kb/"
    auth = {"Accept": TAXII, "Authorization": "Bearer " + keys["analyst"]}
    st, _, body = call(secure_server.url + "/api/stix/collections", "POST",
                       {"title": "paging"}, key=keys["admin"])
    coll = json.loads(body)["id"]
    objs = [dict(MALWARE_V1, id="malware--0c7b5b88-8ff7-4a4d-aa9d-feb398cd00%02d" % i,
                 name="m%d" % i) for i in range(5)]
    post_h = dict(auth, **{"Content-Type": TAXII})
    st, _, body = call(base + "collections/%s/objects/" % coll, "POST",
                       {"objects": objs[:3]}, post_h)
    assert st == 202 and json.loads(body)["success_count"] == 3
    st, h, body = call(base + "collections/%s/objects/?limit=2" % coll, headers=auth)
    page1 = json.loads(body)
    assert page1["more"] is True and len(page1["objects"]) == 2
    assert h["X-TAXII-Date-Added-First"] <= h["X-TAXII-Date-Added-Last"]
    # Paging is stable while objects are added.
    call(base + "collections/%s/objects/" % coll, "POST", {"objects": objs[3:]}, post_h)
    st, h, body = call(base + "collections/%s/objects/?limit=10&next=%s" % (coll, page1["next"]),
                       headers=auth)
    page2 = json.loads(body)
    seen = [o["id"] for o in page1["objects"] + page2["objects"]]
    assert seen == [o["id"] for o in objs] and page2["more"] is False
    # added_after past everything: an empty envelope.
    st, h, body = call(base + "collections/%s/objects/?added_after=2999-01-01T00:00:00Z" % coll,
                       headers=auth)
    assert st == 200 and "objects" not in json.loads(body)
    # A refused envelope stores nothing and the status names the fault.
    bad = dict(MALWARE_V1, id="malware--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0099", is_family=1)
    st, _, body = call(base + "collections/%s/objects/" % coll, "POST",
                       {"objects": [objs[0], bad]}, post_h)
    doc = json.loads(body)
    assert st == 202 and doc["failure_count"] == 2 and doc["success_count"] == 0
    assert "'is_family'" in doc["failures"][1]["message"]
    # The spec's errors, as TAXII error messages.
    cases = [
        (base + "collections/", "GET", None, {**auth, "Accept": "application/xml"}, 406),
        (base + "collections/%s/objects/" % coll, "POST", {"objects": objs},
         dict(auth, **{"Content-Type": "application/json"}), 415),
        (base + "collections/83fec7d0-08f3-53e0-bdb8-a9d26fb84a0b/objects/", "POST",
         {"objects": objs}, post_h, 403),
        (base + "collections/%s/objects/" % coll, "POST", {"objects": objs},
         {"Accept": TAXII, "Content-Type": TAXII, "Authorization": "Bearer " + keys["reader"]}, 403),
        (base + "collections/", "GET", None, {"Accept": TAXII}, 401),
        (base + "collections/", "GET", None, {"Accept": TAXII, "Authorization": "Basic " +
                                              base64.b64encode(b"u:wrong").decode()}, 401),
        (base + "collections/00000000-0000-4000-8000-000000000000/", "GET", None, auth, 404),
        (base + "collections/%s/objects/?limit=x" % coll, "GET", None, auth, 400),
        (base + "status/00000000-0000-4000-8000-000000000000/", "GET", None, auth, 404),
    ]
    for url, method, body, headers, want in cases:
        st, h, data = call(url, method, body, headers)
        assert st == want, (url, method, st, data)
        check_taxii_answer(st, h, data)
    # A collection cannot be closed to readers: its objects join the
    # knowledge base, which every reader reads.
    st, _, body = call(secure_server.url + "/api/stix/collections", "POST",
                       {"title": "restricted", "read_role": "admin", "write_role": "admin"},
                       key=keys["admin"])
    assert st == 400 and "cannot be closed to readers" in json.loads(body)["error"], body
    # Per-collection roles: written by admins only.
    st, _, body = call(secure_server.url + "/api/stix/collections", "POST",
                       {"title": "restricted", "write_role": "admin"}, key=keys["admin"])
    restricted = json.loads(body)["id"]
    as_reader = {"Accept": TAXII, "Authorization": "Bearer " + keys["reader"]}
    st, _, body = call(base + "collections/%s/" % restricted, headers=as_reader)
    assert st == 200 and json.loads(body)["can_read"] is True
    assert json.loads(body)["can_write"] is False
    st, _, _ = call(base + "collections/%s/objects/" % restricted, "POST", {"objects": objs[:1]}, post_h)
    assert st == 403                                     # analyst may not write here
    as_admin = {"Accept": TAXII, "Content-Type": TAXII, "Authorization": "Bearer " + keys["admin"]}
    st, _, body = call(base + "collections/%s/objects/" % restricted, "POST", {"objects": objs[:1]}, as_admin)
    assert st == 202 and json.loads(body)["success_count"] == 1
    st, _, body = call(base + "collections/%s/objects/" % restricted, headers=as_admin)
    assert [o["id"] for o in json.loads(body)["objects"]] == [objs[0]["id"]]
    # Basic auth with the key as password reads.
    st, _, _ = call(base, headers={"Accept": TAXII, "Authorization": "Basic " +
                                   base64.b64encode(("me:" + keys["reader"]).encode()).decode()})
    assert st == 200
    # Delete one version-less object from the user collection.
    st, _, _ = call(base + "collections/%s/objects/%s/" % (coll, objs[0]["id"]), "DELETE", None, auth)
    assert st == 200
    st, _, _ = call(base + "collections/%s/objects/%s/" % (coll, objs[0]["id"]), headers=auth)
    assert st == 404


# ---- docs/stix.md ------------------------------------------------------------------

def test_stix_doc_examples_run(secure_server, keys, trawl, tmp_path):
    text = open(os.path.join(ROOT, "docs", "stix.md")).read()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    env = dict(os.environ, TRAWL=secure_server.url, KEY=keys["analyst"], ADMIN=keys["admin"])
    script = ("set -euo pipefail\ncd %s\ntrawl() { %s --data %s \"$@\"; }\n"
              % (tmp_path, trawl.binary, trawl.data)) + "\n".join(blocks)
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (p.stdout[-3000:], p.stderr[-3000:])
    assert "example.json: 3 objects, 3 new" in p.stdout
    assert "malware--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061\tmalware\tGloomhaul" in p.stdout
    assert "Gloomhaul (malware)\tcommunicates-with\t198.51.100.3 (ipv4-addr)" in p.stdout
    assert '"title":"trawl TAXII 2.1 server"' in p.stdout
    assert '"success_count":1' in p.stdout
    assert "event: create" in p.stdout and '"data":{"type": "malware"' in p.stdout


# ---- the live stream -------------------------------------------------------------

def read_events(url, want, headers=None):
    """The first `want` events of an SSE stream (comments skipped)."""
    import http.client
    import urllib.parse
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("GET", u.path + ("?" + u.query if u.query else ""), headers=headers or {})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
    events, cur = [], {}
    while len(events) < want:
        line = resp.fp.readline().decode().rstrip("\n")
        if line == "":
            if "data" in cur:
                events.append(cur)
            cur = {}
        elif not line.startswith(":"):
            k, _, v = line.partition(": ")
            cur[k] = v
    conn.close()
    return events


def test_stream_resumes_after_restart(trawl, tmp_path):
    from conftest import Server
    trawl.run("stix", "import", write(tmp_path, "a.json", bundle(MALWARE_V1, IP)), check=0)
    srv = Server(trawl, "--anonymous-read")
    try:
        ev = read_events(srv.url + "/api/stix/stream?from=0", 11)[9:]   # after the 9 TLP markings
        assert [e["event"] for e in ev] == ["create", "create"]
        assert [json.loads(e["data"])["id"] for e in ev] == [MALWARE_V1["id"], IP["id"]]
        for e in ev:
            validate_stix(json.loads(e["data"])["data"])
        last = ev[-1]["id"]
    finally:
        srv.stop()
    # While no server runs, a new version and a new object arrive.
    trawl.run("stix", "import", write(tmp_path, "b.json", bundle(MALWARE_V2, REL)), check=0)
    srv = Server(trawl, "--anonymous-read")
    try:
        ev = read_events(srv.url + "/api/stix/stream", 2, {"Last-Event-ID": last})
        got = [(e["event"], json.loads(e["data"])["id"]) for e in ev]
        assert got == [("update", MALWARE_V1["id"]), ("create", REL["id"])]
        assert int(ev[0]["id"]) > int(last)
        assert json.loads(ev[0]["data"])["data"]["modified"] == MALWARE_V2["modified"]
        # A deletion is an event too, carrying the object's last version.
        p = trawl.run("stix", "rm", REL["id"], check=0)
        assert "deleted %s (1 version)" % REL["id"] in p.stdout
        ev = read_events(srv.url + "/api/stix/stream", 1, {"Last-Event-ID": ev[-1]["id"]})
        d = json.loads(ev[0]["data"])
        assert ev[0]["event"] == "delete" and d["id"] == REL["id"]
        validate_stix(d["data"])
        trawl.run("stix", "show", REL["id"], check=1)
        assert "communicates-with" not in trawl.run("stix", "neighbours", IP["id"], check=0).stdout
        # Re-imported, it is created anew.
        trawl.run("stix", "import", write(tmp_path, "c.json", bundle(REL)), check=0)
        ev = read_events(srv.url + "/api/stix/stream", 1, {"Last-Event-ID": ev[0]["id"]})
        assert ev[0]["event"] == "create" and json.loads(ev[0]["data"])["id"] == REL["id"]
        # The fixed TLP markings stay.
        p = trawl.run("stix", "rm", "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", check=1)
        assert "fixed TLP" in p.stderr
    finally:
        srv.stop()


# ---- every type of the spec ----------------------------------------------------

def every_type():
    """One small valid object of each STIX 2.1 type the issue names."""
    ts = "2024-03-01T12:00:00.000Z"
    n = [0]

    def oid(t):
        n[0] += 1
        return "%s--0b1a3f5e-5c3d-4b7a-9d2e-%012d" % (t, n[0])

    def sdo(t, **kw):
        return dict({"type": t, "spec_version": "2.1", "id": oid(t), "created": ts, "modified": ts}, **kw)

    def sco(t, **kw):
        return dict({"type": t, "spec_version": "2.1", "id": oid(t)}, **kw)

    ident = sdo("identity", name="ACME CERT", identity_class="organization")
    mal = sdo("malware", name="Gloomhaul", is_family=True)
    ip4 = sco("ipv4-addr", value="203.0.113.9")
    ip6 = sco("ipv6-addr", value="2001:db8::9")
    dom = sco("domain-name", value="c2.example.com", resolves_to_refs=[ip4["id"]])
    mac = sco("mac-addr", value="00:00:5e:00:53:01")
    art = sco("artifact", mime_type="application/octet-stream", payload_bin="aGVsbG8=")
    d = sco("directory", path="C:\\Windows\\Temp")
    f = sco("file", name="gloom.exe", size=1024, hashes={"SHA-256": "a" * 64},
            parent_directory_ref=d["id"])
    ea = sco("email-addr", value="ops@example.com", display_name="Ops")
    em = sco("email-message", is_multipart=False, from_ref=ea["id"], subject="invoice")
    obs = sdo("observed-data", first_observed=ts, last_observed=ts, number_observed=3,
              object_refs=[ip4["id"], dom["id"]])
    sw = sco("software", name="Office", vendor="Example", version="16")
    ua = sco("user-account", user_id="1001", account_login="ops")
    objs = [
        ident, mal, ip4, ip6, dom, mac, art, d, f, ea, em, obs, sw, ua,
        sdo("attack-pattern", name="Spearphishing Attachment"),
        sdo("campaign", name="Operation Gloom", first_seen=ts),
        sdo("course-of-action", name="Block the C2 domain"),
        sdo("grouping", context="suspicious-activity", object_refs=[mal["id"], ip4["id"]]),
        sdo("incident", name="Gloomhaul on finance hosts"),
        sdo("indicator", name="C2 address", pattern="[ipv4-addr:value = '203.0.113.9']",
            pattern_type="stix", valid_from=ts, indicator_types=["malicious-activity"]),
        sdo("infrastructure", name="Gloom C2", infrastructure_types=["command-and-control"]),
        sdo("intrusion-set", name="Gloom Spider", aliases=["GS-1"]),
        sdo("location", country="DE"),
        sdo("malware-analysis", product="sandbox", result="malicious", sample_ref=f["id"]),
        sdo("note", content="Seen twice.", object_refs=[mal["id"]]),
        sdo("opinion", opinion="agree", object_refs=[mal["id"]]),
        sdo("report", name="Gloomhaul", published=ts, report_types=["threat-report"],
            object_refs=[mal["id"]]),
        sdo("threat-actor", name="Gloomy", threat_actor_types=["crime-syndicate"]),
        sdo("tool", name="gloomctl"),
        sdo("vulnerability", name="CVE-2024-0001",
            external_references=[{"source_name": "cve", "external_id": "CVE-2024-0001"}]),
        sco("autonomous-system", number=64496),
        sco("mutex", name="Global\\gloom"),
        sco("network-traffic", protocols=["tcp"], src_ref=ip4["id"], dst_port=443),
        sco("process", pid=4242, command_line="gloom.exe -q"),
        sco("url", value="https://c2.example.com/gate"),
        sco("windows-registry-key", key="HKEY_LOCAL_MACHINE\\Software\\Gloom"),
        sco("x509-certificate", serial_number="01:02:03", issuer="CN=Gloom CA"),
        sdo("relationship", relationship_type="uses", source_ref=mal["id"], target_ref=ip4["id"]),
        sdo("sighting", sighting_of_ref=mal["id"], where_sighted_refs=[ident["id"]], count=2),
        {"type": "marking-definition", "spec_version": "2.1",
         "id": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", "created": "2017-01-20T00:00:00.000Z",
         "definition_type": "tlp", "name": "TLP:WHITE", "definition": {"tlp": "white"}},
        sdo("language-content", object_ref=mal["id"], object_modified=ts,
            contents={"de": {"name": "Düsterzug"}}),
        sdo("extension-definition", created_by_ref=ident["id"], name="acme-ext",
            schema="https://example.com/acme.json", version="1.0",
            extension_types=["property-extension"]),
        sdo("x-acme-widget", x_acme_size=3),
    ]
    return objs


def test_every_type_round_trips(trawl, tmp_path):
    objs = every_type()
    types = {o["type"] for o in objs}
    assert len(types) == 43      # 19 SDOs, 18 SCOs, 2 SROs, 3 meta objects, 1 custom
    for o in objs:               # the same objects pass the reference validator...
        if not o["type"].startswith("x-"):
            validate_stix(o)
    p = trawl.run("stix", "import", write(tmp_path, "all.json", bundle(*objs)), check=0)   # ...and trawl's
    # TLP:WHITE is held from the start, with the other fixed TLP markings.
    assert "%d objects, %d new, 1 already held" % (len(objs), len(objs) - 1) in p.stdout
    p = trawl.run("stix", "export", check=0)
    exported = json.loads(p.stdout)["objects"]
    # SCOs whose ids were not their deterministic ones (these are UUIDv4s)
    # come back under the deterministic id, the one they came with in
    # x_opencti_stix_ids, and every reference to them follows: undone here,
    # the rest is the same object for object.
    back = {o["id"]: o["x_opencti_stix_ids"][0] for o in exported if "x_opencti_stix_ids" in o}
    assert len(back) == 17, sorted(back.values())   # every SCO but process (no ID
                                                    # contributing property set here)

    def undo(v):
        if isinstance(v, dict):
            return {k: (back.get(x, x) if k.endswith("_ref") and isinstance(x, str)
                        else [back.get(y, y) for y in x] if k.endswith("_refs") else undo(x))
                    for k, x in v.items() if k != "x_opencti_stix_ids"}
        return v
    out = {back.get(o["id"], o["id"]): dict(undo(o), id=back.get(o["id"], o["id"]))
           for o in exported if o["type"] != "marking-definition"}
    assert out == {o["id"]: o for o in objs if o["type"] != "marking-definition"}
    tlp = sorted(o["name"] for o in exported if o["type"] == "marking-definition")
    assert tlp == ["TLP:AMBER", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:CLEAR", "TLP:GREEN",
                   "TLP:GREEN", "TLP:RED", "TLP:RED", "TLP:WHITE"]
    for o in exported:
        validate_stix(o)
    # Each refused when it breaks its schema: drop the first required property.
    need = {"malware": "is_family", "indicator": "pattern", "report": "published",
            "relationship": "relationship_type", "sighting": "sighting_of_ref",
            "grouping": "context", "note": "content", "opinion": "opinion",
            "observed-data": "number_observed", "language-content": "contents"}
    for i, o in enumerate(objs):
        if o["type"] in need:
            broken = {k: v for k, v in o.items() if k != need[o["type"]]}
            f = write(tmp_path, "broken.json", bundle(broken))
            p = trawl.run("stix", "import", f, check=1)
            assert "object 0 (%s)" % o["id"] in p.stderr and "'%s'" % need[o["type"]] in p.stderr, p.stderr
