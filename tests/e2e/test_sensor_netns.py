"""Real scanners against a sensor in a network namespace: nmap (-sS and -sV),
masscan, zmap and hping3 (Mirai-style SYNs: sequence number = target address)
scan 203.0.113.5 from their own 198.51.100.x addresses over a veth pair. The
live sensor (listener + --pcap) and `trawl sensor import` of a tcpdump
capture of the same run must name each source's scanner.

Only documentation addresses, few ports, low rates, `timeout` on every tool;
the namespaces (and with them the veth pair) are removed even on failure."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

TARGET = "203.0.113.5"
SOURCES = {"nmap": "198.51.100.10", "masscan": "198.51.100.11", "zmap": "198.51.100.12",
           "mirai": "198.51.100.13", "nmap-sV": "198.51.100.14"}
HTTP_PORT = 8080


def sh(*argv, check=True, timeout=60):
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(argv), p.returncode, p.stderr))
    return p


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    for tool in ("ip", "nmap", "masscan", "zmap", "hping3", "tcpdump"):
        if not shutil.which(tool):
            pytest.skip("%s is not installed (scripts/install-deps.sh installs it)" % tool)
    tag = "%d" % os.getpid()
    scan, sens, va, vb = "trawl-scan-" + tag, "trawl-sens-" + tag, "tsa" + tag, "tsb" + tag
    if subprocess.run(["ip", "netns", "add", scan], capture_output=True).returncode != 0:
        pytest.skip("ip netns add failed: namespaces are not available here")
    try:
        sh("ip", "netns", "add", sens)
        sh("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
        sh("ip", "link", "set", va, "netns", scan)
        sh("ip", "link", "set", vb, "netns", sens)
        for addr in SOURCES.values():
            sh("ip", "-n", scan, "addr", "add", addr + "/32", "dev", va)
        sh("ip", "-n", sens, "addr", "add", TARGET + "/32", "dev", vb)
        for ns, dev in ((scan, va), (sens, vb)):
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", scan, "route", "add", "203.0.113.0/24", "dev", va)
        sh("ip", "-n", sens, "route", "add", "198.51.100.0/24", "dev", vb)
        mac = sh("ip", "netns", "exec", sens, "cat", "/sys/class/net/%s/address" % vb).stdout.strip()
        yield {"scan": scan, "sens": sens, "va": va, "vb": vb, "mac": mac}
    finally:
        subprocess.run(["ip", "netns", "del", scan], capture_output=True)
        subprocess.run(["ip", "netns", "del", sens], capture_output=True)


def in_ns(ns, *argv):
    return ["ip", "netns", "exec", ns] + list(argv)


def wait_file_grows(path, size, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > size:
            return True
        time.sleep(0.05)
    return False


def verdicts(events):
    """source address -> set of scanner verdicts in its events."""
    out = {}
    for e in events:
        v = e["fields"].get("scanner")
        if v:
            out.setdefault(e["src_ip"], set()).add(v)
    return out


def test_real_scanners_are_named_live_and_from_capture(trawl, tmp_path, lab):
    scan, sens = lab["scan"], lab["sens"]
    cap = str(tmp_path / "run.pcap")
    out = str(tmp_path / "live.jsonl")
    td = subprocess.Popen(in_ns(sens, "tcpdump", "-i", lab["vb"], "-U", "--immediate-mode", "-n",
                                "-w", cap, "tcp or udp"),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sensor = subprocess.Popen(in_ns(sens, *trawl.cmd("sensor", "--bind", TARGET, "--name", "ns-lab",
                                                     "--tcp", str(HTTP_PORT), "--udp", "",
                                                     "--pcap", lab["vb"], "--out", out)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening on" in td.stderr.readline()
        while "sensor listening" not in (line := sensor.stderr.readline()):
            assert line, "sensor did not start"
        # both captures run once a datagram shows in tcpdump's file and the sensor's output
        for _ in range(200):
            subprocess.run(in_ns(scan, "bash", "-c", "echo warm > /dev/udp/%s/9" % TARGET),
                           capture_output=True)
            if wait_file_grows(cap, 24, timeout=0.1) and wait_file_grows(out, 0, timeout=0.1):
                break
        to = ["timeout", "60"]
        sh(*in_ns(scan, *to, "nmap", "-sS", "-n", "-Pn", "-S", SOURCES["nmap"], "-e", lab["va"],
                  "-p", "22,80,443", "--max-retries", "0", TARGET), timeout=90)
        sh(*in_ns(scan, *to, "masscan", TARGET, "-p80,8081", "--source-ip", SOURCES["masscan"],
                  "--rate", "100", "-e", lab["va"], "--router-mac", lab["mac"], "--wait", "0"),
           timeout=90)
        # Debian's zmap 2.1.1 now and then aborts on an assertion in its
        # address-constraint code when given a single /32 (seen once in a CI
        # clone run): a few tries, each still bounded.
        for attempt in range(3):
            z = sh(*in_ns(scan, *to, "zmap", "-p", "80", "-i", lab["va"], "-S", SOURCES["zmap"],
                          "-G", lab["mac"], "-r", "100", "-b", "/dev/null", "-c", "1", "-q",
                          TARGET + "/32"), check=False, timeout=90)
            if z.returncode == 0:
                break
            assert "constraint_lookup_index" in z.stderr, z.stderr
        else:
            raise AssertionError("zmap aborted 3 times: %s" % z.stderr)
        # Mirai's SYN scanner: sequence number = the target's address
        seq = str(int.from_bytes(bytes(map(int, TARGET.split("."))), "big"))
        sh(*in_ns(scan, *to, "hping3", "-S", "-p", "23", "-c", "3", "-i", "u10000", "-M", seq,
                  "-a", SOURCES["mirai"], "-I", lab["va"], TARGET), check=False, timeout=90)
        # Nmap version detection against the sensor's HTTP listener
        sh(*in_ns(scan, *to, "nmap", "-sV", "--version-light", "-n", "-Pn", "-S",
                  SOURCES["nmap-sV"], "-e", lab["va"], "-p", str(HTTP_PORT), TARGET), timeout=90)
        time.sleep(0.5)   # the last replies reach both captures
    finally:
        for p in (sensor, td):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM if p is sensor else signal.SIGINT)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    assert sensor.returncode == 0, sensor.stderr.read()

    live = [json.loads(l) for l in open(out)]
    p = trawl.run("sensor", "import", "--name", "ns-cap", cap, check=0)
    imported = [json.loads(l) for l in p.stdout.splitlines()]
    for name, events in (("live", live), ("capture", imported)):
        got = verdicts(events)
        assert got.get(SOURCES["nmap"]) == {"nmap"}, (name, got)
        assert got.get(SOURCES["masscan"]) == {"masscan"}, (name, got)
        assert got.get(SOURCES["zmap"]) == {"zmap"}, (name, got)
        assert got.get(SOURCES["mirai"]) == {"mirai"}, (name, got)
        assert "nmap" in got.get(SOURCES["nmap-sV"], set()), (name, got)
        # SYN-only probes: no handshake; hping3's three SYNs are one event
        [m] = [e for e in events if e["src_ip"] == SOURCES["mirai"]]
        assert m["proto"] == "syn" and m["handshake"] is False and m["packets"] == 3
        assert m["tcp_seq"] == int(seq)
        # no address outside the documentation ranges ever shows up
        for e in events:
            assert e["src_ip"].startswith(("198.51.100.", "203.0.113.")), e
    # the -sV session was answered by the listener and recorded as HTTP
    sv = [e for e in live if e["src_ip"] == SOURCES["nmap-sV"] and e["proto"] == "http"]
    assert sv and all(e["sensor"] == "ns-lab" for e in sv)

    # The noise module judges the same genuine traffic: from the live sensor's
    # events and from the capture, each scanner's address gets its tag, and the
    # classification that follows from it.
    want = {SOURCES["nmap"]: "Nmap", SOURCES["masscan"]: "Masscan Client",
            SOURCES["zmap"]: "ZMap Client", SOURCES["mirai"]: "Mirai"}
    stores = [("live store", trawl)]   # the sensor wrote its own data directory (no --upstream)
    for name, args in (("live", ["--format", "jsonl", out]), ("capture", ["--format", "pcap", cap])):
        store = trawl.__class__(trawl.binary, trawl.data + "-noise-" + name)
        store.run("noise", "import", *args, check=0)
        stores.append((name, store))
    for name, store in stores:
        for ip, tag in want.items():
            rec = json.loads(store.run("noise", "ip", ip, "--json", check=0).stdout)
            tags = {t["name"] if isinstance(t, dict) else t for t in rec["tags"]}
            assert tag in tags, (name, ip, tags)
            assert rec["classification"] in ("malicious", "unknown", "suspicious"), rec
        mirai = json.loads(store.run("noise", "ip", SOURCES["mirai"], "--json", check=0).stdout)
        assert mirai["classification"] == "malicious" and mirai["spoofable"] is True, (name, mirai)
