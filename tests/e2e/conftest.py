"""Shared fixtures: the real trawl binary, a data directory, a running server."""
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")


def trawl_binary():
    path = os.environ.get("TRAWL_BIN") or os.path.join(ROOT, "build", "asan", "trawl")
    if not os.access(path, os.X_OK):
        pytest.exit("no trawl binary at %s (run 'make asan' or set TRAWL_BIN)" % path, 2)
    return path


@pytest.fixture(scope="session")
def trawl_bin():
    return trawl_binary()


class Trawl:
    def __init__(self, binary, data):
        self.binary = binary
        self.data = data

    def cmd(self, *args):
        return [self.binary, "--data", self.data] + [str(a) for a in args]

    def run(self, *args, check=None, timeout=300, wrap=None):
        argv = (wrap or []) + self.cmd(*args)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check is not None and p.returncode != check:
            raise AssertionError("trawl %s exited %d, wanted %d\nstdout:\n%s\nstderr:\n%s"
                                 % (" ".join(map(str, args)), p.returncode, check, p.stdout, p.stderr))
        return p


@pytest.fixture
def trawl(trawl_bin, tmp_path):
    return Trawl(trawl_bin, str(tmp_path / "data"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, trawl, *extra):
        self.trawl = trawl
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen(trawl.cmd("serve", "--listen", "127.0.0.1:%d" % self.port,
                                               *extra),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "serving" not in line:
            self.proc.kill()
            raise AssertionError("server did not start: %r %s" % (line, self.proc.stderr.read()))
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/api/health", timeout=2).read()
                return
            except Exception:
                time.sleep(0.05)
        raise AssertionError("server never answered /api/health")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def server(trawl):
    """A lab server: anyone may read, writes need a key."""
    srv = Server(trawl, "--anonymous-read")
    yield srv
    srv.stop()


@pytest.fixture
def keys(trawl):
    """One API key per role, made with the CLI."""
    out = {}
    for role in ("admin", "analyst", "reader"):
        p = trawl.run("key", "add", "--role", role, role + "-key", check=0)
        out[role] = p.stdout.strip()
    return out


@pytest.fixture
def secure_server(trawl, keys):
    """No anonymous access at all; uploads up to 1 MB."""
    srv = Server(trawl, "--max-upload", "1")
    yield srv
    srv.stop()


def drop_file_read_capabilities():
    """As root every file is readable; dropping these capabilities from the
    bounding set makes a mode-000 file unreadable for the command."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
