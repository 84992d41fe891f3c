"""POST /api/noise/events as the sensor contract says, GET /api/noise/ip/IP,
/api/noise/tags."""
import json

import requests

from test_noise_tags import http, syn


def post_events(srv, key, events, **kw):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    return requests.post(srv.url + "/api/noise/events", headers=headers,
                         data=kw.get("raw") or json.dumps({"events": events}), timeout=60)


def test_post_events_then_read_the_record(secure_server, keys):
    srv = secure_server
    evs = [http("203.0.113.100", "/.env", "curl/8.1.2"),
           syn("203.0.113.101", 23, tcp_seq=3325256705, tcp_window=14600)]
    r = post_events(srv, keys["analyst"], evs)
    assert r.status_code == 200 and r.json() == {"accepted": 2}
    r = requests.get(srv.url + "/api/noise/ip/203.0.113.100",
                     headers={"Authorization": "Bearer " + keys["reader"]}, timeout=30)
    assert r.status_code == 200
    rec = r.json()
    assert rec["seen"] is True and rec["tags"] == [".env Scanner", "curl"]
    assert rec["classification"] == "malicious"
    rec = requests.get(srv.url + "/api/noise/ip/203.0.113.101",
                       headers={"Authorization": "Bearer " + keys["reader"]}, timeout=30).json()
    assert rec["tags"] == ["Mirai"] and rec["spoofable"] is True
    r = requests.get(srv.url + "/api/noise/ip/203.0.113.102",
                     headers={"Authorization": "Bearer " + keys["reader"]}, timeout=30)
    assert r.status_code == 404 and r.json()["seen"] is False
    r = requests.get(srv.url + "/api/noise/ip/not-an-ip",
                     headers={"Authorization": "Bearer " + keys["reader"]}, timeout=30)
    assert r.status_code == 400 and "not an IP address" in r.json()["error"]


def test_post_needs_an_analyst_key(secure_server, keys):
    evs = [syn("203.0.113.110")]
    assert post_events(secure_server, None, evs).status_code == 401
    assert post_events(secure_server, keys["reader"], evs).status_code == 403
    assert post_events(secure_server, keys["admin"], evs).status_code == 200


def test_an_invalid_event_refuses_the_whole_batch(secure_server, keys):
    good = syn("203.0.113.120")
    bad = dict(syn("203.0.113.121"), ttl=300)
    r = post_events(secure_server, keys["analyst"], [good, bad])
    assert r.status_code == 400
    assert "events[1]" in r.json()["error"] and "'ttl'" in r.json()["error"]
    r = requests.get(secure_server.url + "/api/noise/ip/203.0.113.120",
                     headers={"Authorization": "Bearer " + keys["reader"]}, timeout=30)
    assert r.status_code == 404          # nothing of the batch was stored
    r = post_events(secure_server, keys["analyst"], None, raw=b'{"events": [')
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]
    r = post_events(secure_server, keys["analyst"], None, raw=b'{"event": []}')
    assert r.status_code == 400
    r = post_events(secure_server, keys["analyst"], [good] * 10001)
    assert r.status_code == 413 and "10000" in r.json()["error"]
    r = post_events(secure_server, keys["analyst"], None, raw=b'{"events": [' + b" " * (17 << 20) + b"]}")
    assert r.status_code == 413


def test_a_full_size_batch_is_accepted(secure_server, keys):
    evs = [syn("203.0.113.%d" % (1 + i % 200), 1 + i % 1000, ip_id=54321, tcp_window=65535)
           for i in range(10000)]
    r = post_events(secure_server, keys["analyst"], evs)
    assert r.status_code == 200 and r.json() == {"accepted": 10000}
    rec = requests.get(secure_server.url + "/api/noise/ip/203.0.113.1",
                       headers={"Authorization": "Bearer " + keys["reader"]}, timeout=30).json()
    assert rec["events"] == 50 and rec["tags"] == ["ZMap Client"]
    assert len(rec["raw_data"]["scan"]) == 5          # ports 1, 201, 401, 601, 801


def test_tags_endpoint(secure_server, keys):
    auth = {"Authorization": "Bearer " + keys["analyst"]}
    post_events(secure_server, keys["analyst"], [syn("203.0.113.130", ip_id=54321, tcp_window=65535)])
    r = requests.get(secure_server.url + "/api/noise/tags", headers=auth, timeout=30)
    tags = {t["name"]: t for t in r.json()["tags"]}
    assert len(tags) >= 60 and tags["ZMap Client"]["ips"] == 1
    assert tags["ZMap Client"]["category"] == "tool" and tags["ZMap Client"]["builtin"] is True
    rule = 'rule api_tag { meta: name = "API Tag" condition: ttl == 77 }'
    r = requests.post(secure_server.url + "/api/noise/tags", headers=auth,
                      json={"name": "api.yar", "text": rule}, timeout=30)
    assert r.status_code == 201 and r.json()["tags"] == ["API Tag"]
    r = requests.post(secure_server.url + "/api/noise/tags", headers=auth,
                      json={"text": "rule broken { condition: }"}, timeout=30)
    assert r.status_code == 400 and ":1:" in r.json()["error"]
    post_events(secure_server, keys["analyst"], [syn("203.0.113.131", ttl=77)])
    rec = requests.get(secure_server.url + "/api/noise/ip/203.0.113.131", headers=auth, timeout=30).json()
    assert rec["tags"] == ["API Tag"]
    r = requests.delete(secure_server.url + "/api/noise/tags/API%20Tag", headers=auth, timeout=30)
    assert r.status_code == 200
    r = requests.delete(secure_server.url + "/api/noise/tags/API%20Tag", headers=auth, timeout=30)
    assert r.status_code == 404
    reader = {"Authorization": "Bearer " + keys["reader"]}
    r = requests.post(secure_server.url + "/api/noise/tags", headers=reader,
                      json={"text": rule}, timeout=30)
    assert r.status_code == 403


def test_ipv6_sources_and_long_values(secure_server, keys):
    long_path = "/" + "\u00e9" * 700               # 1400 bytes of UTF-8: cut at 1024, on a boundary
    evs = [syn("2001:db8::5", 22, tcp_window=29200), http("2001:db8::5", long_path, "curl/8.0")]
    for e in evs:
        e["dst_ip"] = "2001:db8::1"
    r = post_events(secure_server, keys["analyst"], evs)
    assert r.status_code == 200, r.text
    r = requests.get(secure_server.url + "/api/noise/ip/2001:0db8:0000::5",
                     headers={"Authorization": "Bearer " + keys["reader"]}, timeout=30)
    assert r.status_code == 200
    rec = r.json()
    assert rec["ip"] == "2001:db8::5" and rec["spoofable"] is False and "curl" in rec["tags"]
    path = rec["raw_data"]["web"]["paths"][0]
    assert long_path.startswith(path) and len(path.encode()) <= 1024 and len(path) == 512


def test_concurrent_batches_all_stored_and_survive_kill(trawl, keys):
    """Sensors post at the same time; every 200 is a committed batch, even
    when the server is killed right after answering."""
    import signal
    import threading

    from conftest import Server

    srv = Server(trawl)
    results = []

    def sensor(k):
        evs = [syn("198.51.100.%d" % (10 + k), 1 + i, ip_id=54321, tcp_window=65535) for i in range(300)]
        for e in evs:
            e["sensor"] = "sensor-%d" % k
        results.append(post_events(srv, keys["analyst"], evs).status_code)

    threads = [threading.Thread(target=sensor, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 4
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    for k in range(4):
        rec = json.loads(trawl.run("noise", "ip", "--json", "198.51.100.%d" % (10 + k), check=0).stdout)
        assert rec["events"] == 300 and rec["sensors"][0]["name"] == "sensor-%d" % k
        assert len(rec["raw_data"]["scan"]) == 100 and rec["dropped_values"] == {"scan": 200, "proto": 200, "dst": 200}


def test_get_events(secure_server, keys):
    post_events(secure_server, keys["analyst"], [http("203.0.113.150", "/.git/config", "Mozilla/5.0"),
                                                 syn("203.0.113.151")])
    auth = {"Authorization": "Bearer " + keys["reader"]}
    r = requests.get(secure_server.url + "/api/noise/events", params={"ip": "203.0.113.150"},
                     headers=auth, timeout=30)
    assert r.status_code == 200
    evs = r.json()["events"]
    assert len(evs) == 1 and evs[0]["tags"] == ["Git Config Crawler"]
    r = requests.get(secure_server.url + "/api/noise/events", params={"tag": "Git Config Crawler"},
                     headers=auth, timeout=30)
    assert [e["src_ip"] for e in r.json()["events"]] == ["203.0.113.150"]
    r = requests.get(secure_server.url + "/api/noise/events", params={"limit": "0"}, headers=auth,
                     timeout=30)
    assert r.status_code == 400
    r = requests.get(secure_server.url + "/api/noise/events", params={"ip": "x"}, headers=auth,
                     timeout=30)
    assert r.status_code == 400


def test_tag_test_endpoint(secure_server, keys):
    auth = {"Authorization": "Bearer " + keys["analyst"]}
    post_events(secure_server, keys["analyst"], [syn("203.0.113.170", ttl=99), syn("203.0.113.171", ttl=98)])
    rule = 'rule ttl99 { meta: name = "TTL 99" condition: ttl == 99 }'
    r = requests.post(secure_server.url + "/api/noise/tags/test", headers=auth,
                      json={"text": rule, "limit": 10}, timeout=30)
    assert r.status_code == 200
    assert r.json()["events_matched"] == 1 and r.json()["matches"][0]["src_ip"] == "203.0.113.170"
    tags = requests.get(secure_server.url + "/api/noise/tags", headers=auth, timeout=30).json()["tags"]
    assert "TTL 99" not in {t["name"] for t in tags}
    r = requests.post(secure_server.url + "/api/noise/tags/test", headers=auth,
                      json={"text": rule, "limit": -1}, timeout=30)
    assert r.status_code == 400
