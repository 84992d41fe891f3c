"""An SCO that arrives with an id that is not its deterministic one (a
UUIDv4 from a producer that did not derive it) is one object with the SCO
that arrives with the deterministic id (docs/stix.md, "SCO identifiers"): it
is stored under the deterministic id, the id it came with is kept in
x_opencti_stix_ids and resolves to it (CLI, /api/stix, TAXII, export), and
references to it, in its bundle or later ones, name the one object."""
import json

from test_stix import IP, MALWARE_V1, TAXII, bundle, call, validate_stix, write

V5 = IP["id"]                    # the deterministic id of 198.51.100.3
V4 = "ipv4-addr--5b1f6e0e-6d1e-4c6f-9a55-3c0a1d2e9f01"
REL_BEFORE = {"type": "relationship", "spec_version": "2.1",
              "id": "relationship--0b9e2f6a-1d2c-4e3f-8a4b-5c6d7e8f9a01",
              "created": "2024-01-02T00:00:00.000Z", "modified": "2024-01-02T00:00:00.000Z",
              "relationship_type": "communicates-with",
              "source_ref": MALWARE_V1["id"], "target_ref": V4}
IP_V4 = {"type": "ipv4-addr", "spec_version": "2.1", "id": V4, "value": "198.51.100.3",
         "x_seen_by": "partner feed"}
REL_LATER = dict(REL_BEFORE, id="relationship--0b9e2f6a-1d2c-4e3f-8a4b-5c6d7e8f9a02",
                 relationship_type="related-to")
SIGHTING = {"type": "sighting", "spec_version": "2.1",
            "id": "sighting--0b9e2f6a-1d2c-4e3f-8a4b-5c6d7e8f9a03",
            "created": "2024-01-03T00:00:00.000Z", "modified": "2024-01-03T00:00:00.000Z",
            "sighting_of_ref": MALWARE_V1["id"], "where_sighted_refs": [],
            "observed_data_refs": []}


def export(trawl):
    b = json.loads(trawl.run("stix", "export", check=0).stdout)
    for o in b["objects"]:
        validate_stix(o)
    return {o["id"]: o for o in b["objects"]}


def test_uuid4_sco_and_uuid5_sco_are_one_object(trawl, tmp_path, keys):
    # Bundle 1: the relationship names the UUIDv4 id before the SCO appears.
    trawl.run("stix", "import", write(tmp_path, "b1.json", bundle(MALWARE_V1, REL_BEFORE, IP_V4)),
              check=0)
    # Bundle 2: the same address with its deterministic id, and a later
    # relationship that still names the UUIDv4 id.
    trawl.run("stix", "import", write(tmp_path, "b2.json", bundle(IP, REL_LATER)), check=0)
    objs = export(trawl)
    ips = [o for o in objs.values() if o["type"] == "ipv4-addr"]
    assert len(ips) == 1, ips
    ip = ips[0]
    assert ip["id"] == V5 and ip["value"] == "198.51.100.3"
    assert ip["x_opencti_stix_ids"] == [V4]
    assert ip["x_seen_by"] == "partner feed"          # its custom property kept
    assert V4 not in objs
    assert objs[REL_BEFORE["id"]]["target_ref"] == V5
    assert objs[REL_LATER["id"]]["target_ref"] == V5
    # The old id resolves to the one object: CLI, versions, neighbours.
    shown = json.loads(trawl.run("stix", "show", V4, "--json", check=0).stdout)
    assert shown["id"] == V5
    versions = json.loads(trawl.run("stix", "show", V4, "--json", "--versions", check=0).stdout)
    assert [v["id"] for v in versions] == [V5]
    exported = json.loads(trawl.run("stix", "export", "--id", V4, check=0).stdout)
    assert [o["id"] for o in exported["objects"]] == [V5]
    from conftest import Server
    srv = Server(trawl)
    try:
        auth = {"Accept": TAXII, "Authorization": "Bearer " + keys["reader"]}
        st, _, body = call(srv.url + "/taxii2/kb/collections/83fec7d0-08f3-53e0-bdb8-a9d26fb84a0b"
                           "/objects/%s/" % V4, headers=auth)
        assert st == 200, body
        got = json.loads(body)["objects"]
        assert [o["id"] for o in got] == [V5]
        st, _, body = call(srv.url + "/api/stix/objects/" + V4, key=keys["reader"])
        assert st == 200 and json.loads(body)["id"] == V5, body
        st, _, body = call(srv.url + "/api/stix/objects/%s/neighbours?depth=1" % V4,
                           key=keys["reader"])
        assert st == 200, body
        ids = json.dumps(json.loads(body))
        assert REL_BEFORE["id"] in ids and REL_LATER["id"] in ids
    finally:
        srv.stop()


def test_alias_inside_one_bundle_and_in_embedded_refs(trawl, tmp_path):
    # The SCO with the UUIDv4 id, and an observed-data naming it in the same
    # bundle after it: one address, the reference resolved.
    od = {"type": "observed-data", "spec_version": "2.1",
          "id": "observed-data--0b9e2f6a-1d2c-4e3f-8a4b-5c6d7e8f9a04",
          "created": "2024-01-03T00:00:00.000Z", "modified": "2024-01-03T00:00:00.000Z",
          "first_observed": "2024-01-03T00:00:00.000Z", "last_observed": "2024-01-03T00:00:00.000Z",
          "number_observed": 1, "object_refs": [V4]}
    trawl.run("stix", "import", write(tmp_path, "b.json", bundle(IP_V4, od)), check=0)
    objs = export(trawl)
    assert objs[od["id"]]["object_refs"] == [V5]
    assert objs[V5]["x_opencti_stix_ids"] == [V4]
    # A UUIDv5 id that is not the deterministic one stays refused.
    bad = dict(IP, id="ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c5")
    p = trawl.run("stix", "import", write(tmp_path, "bad.json", bundle(bad)))
    assert p.returncode != 0 and "not the deterministic id" in p.stderr


def deterministic_id(type_, contributing):
    """The spec's SCO id: UUIDv5 over the JCS form of the contributing
    properties (simple values here, so sorted keys and no spaces are JCS)."""
    import uuid
    name = json.dumps(contributing, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "%s--%s" % (type_, uuid.uuid5(uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7"), name))


def test_sco_whose_id_depends_on_a_reference_is_one_object(trawl, tmp_path):
    # A MISP-style bundle: every SCO with a UUIDv4, the network-traffic
    # naming the address by its UUIDv4 id. Another producer sends the same
    # flow with deterministic ids throughout. Stored, they are one flow.
    flow_v4 = {"type": "network-traffic", "spec_version": "2.1",
               "id": "network-traffic--5b1f6e0e-6d1e-4c6f-9a55-3c0a1d2e9f0a",
               "src_ref": V4, "dst_port": 445, "protocols": ["tcp"]}
    trawl.run("stix", "import", write(tmp_path, "misp.json", bundle(IP_V4, flow_v4)), check=0)
    want = deterministic_id("network-traffic", {"src_ref": V5, "dst_port": 445,
                                                "protocols": ["tcp"]})
    flow_v5 = dict(flow_v4, id=want, src_ref=V5)
    trawl.run("stix", "import", write(tmp_path, "det.json", bundle(IP, flow_v5)), check=0)
    flows = [o for o in export(trawl).values() if o["type"] == "network-traffic"]
    assert [f["id"] for f in flows] == [want], flows
    assert flows[0]["src_ref"] == V5
    assert flows[0]["x_opencti_stix_ids"] == [flow_v4["id"]]
    shown = json.loads(trawl.run("stix", "show", flow_v4["id"], "--json", check=0).stdout)
    assert shown["id"] == want


def test_relationship_stored_before_its_uuid4_sco_is_found_from_the_one_object(trawl, tmp_path, keys):
    # The relationship arrives first, naming an id nothing is stored under yet;
    # the SCO comes later with that id and is stored under its deterministic one.
    trawl.run("stix", "import", write(tmp_path, "b1.json", bundle(MALWARE_V1, REL_BEFORE)), check=0)
    trawl.run("stix", "import", write(tmp_path, "b2.json", bundle(IP_V4)), check=0)
    objs = export(trawl)
    assert objs[V5]["x_opencti_stix_ids"] == [V4]
    from conftest import Server
    srv = Server(trawl)
    try:
        for asked in (V5, V4, MALWARE_V1["id"]):
            st, _, body = call(srv.url + "/api/stix/objects/%s/neighbours?depth=1" % asked,
                               key=keys["reader"])
            assert st == 200, body
            g = json.loads(body)
            edges = [e for e in g["edges"] if e["id"] == REL_BEFORE["id"]]
            assert [(e["source_ref"], e["target_ref"]) for e in edges] == [(MALWARE_V1["id"], V5)], g
    finally:
        srv.stop()


def test_alias_arriving_after_the_deterministic_sco_is_listed_on_it(trawl, tmp_path, keys):
    # The deterministic copy is stored first; the UUIDv4 copy that follows is
    # the same version (SCOs carry no modified), so nothing new is stored,
    # yet the one object must list the id it came with, as OpenCTI expects.
    trawl.run("stix", "import", write(tmp_path, "b1.json", bundle(IP)), check=0)
    assert "x_opencti_stix_ids" not in export(trawl)[V5]
    for n in range(2):               # twice: the id is listed once
        trawl.run("stix", "import", write(tmp_path, "b%d.json" % (n + 2), bundle(IP_V4, REL_LATER)),
                  check=0)
        objs = export(trawl)
        assert objs[V5]["x_opencti_stix_ids"] == [V4]
        assert objs[V5]["value"] == "198.51.100.3"
        assert objs[REL_LATER["id"]]["target_ref"] == V5
    from conftest import Server
    srv = Server(trawl)
    try:
        st, _, body = call(srv.url + "/api/stix/objects/" + V4, key=keys["reader"])
        assert st == 200, body
        assert json.loads(body)["x_opencti_stix_ids"] == [V4]
    finally:
        srv.stop()
