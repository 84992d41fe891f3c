"""Noise addresses in the knowledge base (docs/kb.md): which addresses become
objects (tagged or classified ones; every one with `trawl kb noise-scope
all`), a sync after noise traffic derives only the addresses that changed,
and an address's observed-data gets a new version only when the days it was
seen change, not with every event."""
import json
import sqlite3
import os

from test_kb_links import export, log4j_event, no_dangling
from test_noise_tags import syn

TAGGED = "203.0.113.7"        # log4j_event's source: tagged, malicious
OTHER = "203.0.113.8"         # tagged too
QUIET = "203.0.113.40"        # a bare SYN to an odd port: no tag, unknown


def sync(trawl, *extra):
    return json.loads(trawl.run("kb", "sync", "--json", *extra, check=0).stdout)


def noise(trawl, tmp_path, events, name="ev.jsonl"):
    (tmp_path / name).write_text("".join(json.dumps(e) + "\n" for e in events))
    trawl.run("noise", "import", tmp_path / name, check=0)


def addresses(objs):
    return {o["value"]: o for o in objs.values() if o["type"] in ("ipv4-addr", "ipv6-addr")}


def observed(objs, sco_id):
    return [o for o in objs.values()
            if o["type"] == "observed-data" and o["object_refs"] == [sco_id]]


def versions(trawl, oid):
    return json.loads(trawl.run("stix", "show", oid, "--json", "--versions", check=0).stdout)


def test_only_tagged_or_classified_addresses_unless_scope_all(trawl, tmp_path):
    noise(trawl, tmp_path, [log4j_event(), syn(QUIET, 2222, tcp_window=1024)])
    rec = json.loads(trawl.run("noise", "ip", "--json", QUIET, check=0).stdout)
    assert rec["tags"] == [] and rec["classification"] == "unknown", rec
    assert sync(trawl)["full"] is True
    objs = export(trawl)
    no_dangling(objs)
    assert set(addresses(objs)) == {TAGGED}
    assert trawl.run("kb", "noise-scope", check=0).stdout.strip() == "classified"
    # Every address: the next sync is a full pass that adds the quiet one.
    assert trawl.run("kb", "noise-scope", "all", check=0).stdout.strip() == "all"
    st = sync(trawl)
    assert st["full"] is True and st["added"] >= 2, st
    objs = export(trawl)
    no_dangling(objs)
    ips = addresses(objs)
    assert set(ips) == {TAGGED, QUIET}
    od = observed(objs, ips[QUIET]["id"])
    assert len(od) == 1 and not od[0].get("revoked")
    # Back to the default: the quiet address retires (its observed-data and
    # the sensor only it was seen by are revoked; its SCO, which only says
    # the address exists, stays as it is), the tagged one stays as it is.
    trawl.run("kb", "noise-scope", "classified", check=0)
    st = sync(trawl)
    assert st["full"] is True and st["retired"] == 2, st
    objs = export(trawl)
    no_dangling(objs)
    ips = addresses(objs)
    assert "x_trawl_removed" not in ips[QUIET] and "x_trawl_removed" not in ips[TAGGED]
    assert observed(objs, ips[QUIET]["id"])[0]["revoked"] is True
    assert not observed(objs, ips[TAGGED]["id"])[0].get("revoked")
    # In scope again: a new observed-data (a revoked one takes no new
    # version), the same SCO.
    trawl.run("kb", "noise-scope", "all", check=0)
    st = sync(trawl)
    assert st["added"] == 2 and st["updated"] == 0, st
    objs = export(trawl)
    live = [o for o in observed(objs, addresses(objs)[QUIET]["id"]) if not o.get("revoked")]
    assert len(live) == 1
    p = trawl.run("kb", "noise-scope", "some", check=None)
    assert p.returncode != 0 and "expected all or classified" in p.stderr


def test_sync_derives_only_changed_addresses_and_versions_by_day(trawl, tmp_path):
    ev = log4j_event()
    noise(trawl, tmp_path, [ev, dict(ev, src_ip=OTHER)])
    first = sync(trawl)
    assert first["full"] is True
    objs = export(trawl)
    ips = addresses(objs)
    assert set(ips) == {TAGGED, OTHER}
    od = observed(objs, ips[TAGGED]["id"])[0]
    # Day-granular: the first and last UTC day seen, and the number of days.
    day = ev["time"][:10]
    assert od["first_observed"] == day + "T00:00:00.000Z"
    assert od["last_observed"] == day + "T23:59:59.999Z"
    assert od["number_observed"] == 1
    n_first = first["objects"]
    # More events of one address on the same day: only that address is
    # derived (its SCO, observed-data, sensor, CVE and sighting, and trawl's
    # identity), and nothing is stored: its objects are the same.
    noise(trawl, tmp_path, [log4j_event(), log4j_event()], "more.jsonl")
    db = sqlite3.connect(os.path.join(trawl.data, "trawl.db"))
    logged = db.execute("SELECT count(DISTINCT key) FROM kblink_changes WHERE source='noise'").fetchone()
    db.close()
    assert logged[0] == 1
    st = sync(trawl)
    assert st["full"] is False, st
    assert st["added"] == st["updated"] == st["retired"] == 0, st
    assert 0 < st["objects"] < n_first, (st, first)
    assert len(versions(trawl, od["id"])) == 1
    rec = json.loads(trawl.run("noise", "ip", "--json", TAGGED, check=0).stdout)
    assert rec["events"] == 3      # the record moved; the knowledge base did not need to
    # A full pass agrees: nothing to store.
    full = sync(trawl, "--full")
    assert full["added"] == full["updated"] == full["retired"] == 0, full
