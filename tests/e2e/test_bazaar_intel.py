"""MalwareBazaar's queries over trawl's binary analysis: get_telfhash,
get_certificate, get_issuerinfo, get_subjectinfo, get_cscb, and the
code_sign / telfhash fields of get_info; `trawl analyze` for old stores.
The files are built here: a shared object by gcc, a PE signed by
osslsigncode with a certificate openssl makes."""
import hashlib
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess

import pytest
import requests

from conftest import ROOT, Server


def bz(srv, key=None, **data):
    headers = {"Auth-Key": key} if key else {}
    return requests.post(srv.url + "/api/v1/", data=data, headers=headers, timeout=30).json()


def upload(srv, key, path, signature):
    with open(path, "rb") as f:
        r = requests.post(srv.url + "/api/v1/", headers={"Auth-Key": key},
                          files={"file": (path.name, f.read())},
                          data={"json_data": json.dumps({"signature": signature})}, timeout=30)
    assert r.json()["query_status"] == "inserted", r.text
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_so(tmp_path):
    if not shutil.which("gcc") or not shutil.which("tlsh"):
        pytest.skip("needs gcc and tlsh (tlsh-tools)")
    names = ["intel_probe_function_%02d" % i for i in range(30)] + ["Mixed_Case_Export"]
    src = tmp_path / "lib.c"
    src.write_text("".join("void %s(void) {}\n" % n for n in names)
                   + "void _skipped(void) {}\nvoid strskip(void) {}\n")
    so = tmp_path / "libintel.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-nostdlib", "-o", str(so), str(src)], check=True)
    # telfhash: the kept names lowercased and sorted, joined by ",", TLSH'd.
    listing = tmp_path / "symbols.txt"
    listing.write_text(",".join(sorted(n.lower() for n in names)))
    out = subprocess.run(["tlsh", "-f", str(listing)], capture_output=True, text=True, check=True)
    return so, "t1" + out.stdout.split()[0].lower()


def min_pe():
    b = bytearray(0x400)
    b[0:2] = b"MZ"
    struct.pack_into("<I", b, 0x3C, 0x40)
    b[0x40:0x44] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", b, 0x44, 0x14C, 1, 0, 0, 0, 0xE0, 0x0102)
    struct.pack_into("<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII", b, 0x58, 0x10B, 1, 0, 0x200, 0, 0, 0x1000,
                     0x1000, 0x1000, 0x400000, 0x1000, 0x200, 4, 0, 0, 0, 4, 0, 0, 0x2000, 0x200,
                     0, 2, 0, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
    struct.pack_into("<8sIIIIIIHHI", b, 0x58 + 0xE0, b".text", 0x200, 0x1000, 0x200, 0x200,
                     0, 0, 0, 0, 0x60000020)
    b[0x200] = 0xC3
    return bytes(b)


def build_signed_pe(tmp_path):
    if not shutil.which("openssl") or not shutil.which("osslsigncode"):
        pytest.skip("needs openssl and osslsigncode")
    pe, out = tmp_path / "min.exe", tmp_path / "signed.exe"
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    pe.write_bytes(min_pe())
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(crt), "-days", "30", "-set_serial", "0x7E57C0DE01",
                    "-subj", "/C=XX/O=Intel Test/CN=Intel Test Publisher"],
                   check=True, capture_output=True)
    subprocess.run(["osslsigncode", "sign", "-certs", str(crt), "-key", str(key), "-in", str(pe),
                    "-out", str(out)], check=True, capture_output=True)
    # Bazaar's thumbprint: the SHA-256 of the certificate, as openssl prints it.
    fp = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-fingerprint", "-sha256"],
                        capture_output=True, text=True, check=True).stdout
    return out, fp.split("=", 1)[1].strip().replace(":", "").lower()


def test_intel_queries(secure_server, keys, tmp_path):
    key = keys["analyst"]
    so, telfhash = build_so(tmp_path)
    pe, thumb = build_signed_pe(tmp_path)
    so_sha = upload(secure_server, key, so, "Mirai")
    pe_sha = upload(secure_server, key, pe, "SignedLoader")

    s = bz(secure_server, key, query="get_info", hash=so_sha)["data"][0]
    assert s["telfhash"] == telfhash and s["code_sign"] == []   # Bazaar: [] when unsigned
    s = bz(secure_server, key, query="get_info", hash=pe_sha)["data"][0]
    assert s["telfhash"] is None
    [cert] = s["code_sign"]
    assert cert["serial_number"] == "7e57c0de01" and cert["thumbprint"] == thumb
    assert cert["subject_cn"] == cert["issuer_cn"] == "Intel Test Publisher"
    assert cert["thumbprint_algorithm"] == "SHA256" and len(thumb) == 64 and cert["cscb_listed"] is True
    assert cert["valid_from"] < cert["valid_to"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", cert["valid_from"]), cert   # as Bazaar

    # telfhash: exact match, any case; Bazaar's status words otherwise.
    doc = bz(secure_server, key, query="get_telfhash", telfhash=telfhash.upper().replace("T1", "t1"))
    assert doc["query_status"] == "ok" and [x["sha256_hash"] for x in doc["data"]] == [so_sha]
    assert bz(secure_server, key, query="get_telfhash", telfhash="t1" + "0" * 70)["query_status"] == "no_results"
    assert bz(secure_server, key, query="get_telfhash")["query_status"] == "no_telfhash"
    assert bz(secure_server, key, query="get_telfhash", telfhash="t1xyz")["query_status"] == "illegal_telfhash"
    assert bz(secure_server, key, query="get_telfhash", telfhash=telfhash, limit="0")["query_status"] == "illegal_limit"

    # Certificates by serial (as pasted, with colons and capitals), issuer, subject.
    doc = bz(secure_server, key, query="get_certificate", serial_number="7E:57:C0:DE:01")
    assert doc["query_status"] == "ok" and doc["data"][0]["sha256_hash"] == pe_sha
    assert doc["data"][0]["code_sign"][0]["thumbprint"] == thumb
    assert bz(secure_server, key, query="get_certificate", serial_number="01")["query_status"] == "no_results"
    assert bz(secure_server, key, query="get_certificate")["query_status"] == "no_serial_number"
    assert bz(secure_server, key, query="get_certificate", serial_number="zz")["query_status"] == "illegal_serial_number"
    for q, field in (("get_issuerinfo", "issuer_cn"), ("get_subjectinfo", "subject_cn")):
        doc = bz(secure_server, key, query=q, **{field: "intel test publisher"}, limit="5")
        assert doc["query_status"] == "ok" and doc["data"][0]["sha256_hash"] == pe_sha, doc
        assert bz(secure_server, key, query=q, **{field: "Nobody"})["query_status"] == "no_results"
        assert bz(secure_server, key, query=q)["query_status"] == "no_" + field

    doc = bz(secure_server, key, query="get_cscb")
    assert doc["query_status"] == "ok"
    [entry] = doc["data"]
    assert entry["serial_number"] == "7e57c0de01" and entry["thumbprint"] == thumb
    assert entry["thumbprint_algorithm"] == "SHA256"
    assert entry["subject_cn"] == "Intel Test Publisher" and entry["cscb_listed"] is True
    assert "SignedLoader" in entry["cscb_reason"] and entry["time_stamp"]
    assert set(entry) == {"time_stamp", "serial_number", "thumbprint", "thumbprint_algorithm",
                          "subject_cn", "issuer_cn", "valid_from", "valid_to", "cscb_listed",
                          "cscb_reason"}


def test_cscb_empty(secure_server, keys):
    assert bz(secure_server, keys["reader"], query="get_cscb")["query_status"] == "no_results"


def test_analyze_backfills_an_old_store(trawl, tmp_path):
    """A store from before the analysis: its tables are missing until a
    writable open adds them, and `trawl analyze` fills them."""
    so, telfhash = build_so(tmp_path)
    pe, thumb = build_signed_pe(tmp_path)
    trawl.run("add", so, pe, check=0)
    db = sqlite3.connect(tmp_path / "data" / "trawl.db")
    db.executescript("DROP TABLE sample_certs; DROP TABLE sample_analysis;")
    db.close()

    srv = Server(trawl, "--anonymous-read")
    try:
        # Read-only answers on the unmigrated store: nothing known yet.
        assert bz(srv, query="get_telfhash", telfhash=telfhash)["query_status"] == "no_results"
        p = trawl.run("analyze", check=0)
        assert "analysed 2 samples" in p.stdout
        doc = bz(srv, query="get_telfhash", telfhash=telfhash)
        assert doc["query_status"] == "ok" and doc["data"][0]["file_name"] == "libintel.so"
        doc = bz(srv, query="get_certificate", serial_number="7e57c0de01")
        assert doc["data"][0]["code_sign"][0]["thumbprint"] == thumb
    finally:
        srv.stop()
    assert "analysed 0 samples" in trawl.run("analyze", check=0).stdout
    assert "analysed 2 samples" in trawl.run("analyze", "--all", check=0).stdout
    assert trawl.run("analyze", "--bogus").returncode == 2
    # Removing a sample removes what was found in it.
    trawl.run("rm", hashlib.sha256(pe.read_bytes()).hexdigest(), check=0)
    db = sqlite3.connect(tmp_path / "data" / "trawl.db")
    assert db.execute("SELECT count(*) FROM sample_certs").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM sample_analysis").fetchone() == (1,)
    db.close()


def test_analysis_doc_example_runs(secure_server, keys):
    """The sh example in docs/analysis.md runs against a live server and
    finds the sample it uploaded by its telfhash."""
    if not shutil.which("gcc"):
        pytest.skip("needs gcc")
    text = open(os.path.join(ROOT, "docs", "analysis.md")).read()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert blocks
    env = dict(os.environ, TRAWL=secure_server.url, KEY=keys["analyst"])
    p = subprocess.run(["bash", "-c", "set -euo pipefail\n" + "\n".join(blocks)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert '"query_status":"inserted"' in p.stdout
    assert re.search(r"^telfhash: t1[0-9a-f]{70}$", p.stdout, re.M), p.stdout
    assert "ok libdoc.so" in p.stdout


def test_gimphash_query(trawl, keys, tmp_path):
    """A Go binary built here: get_info's gimphash, get_gimphash finds it."""
    if not shutil.which("go"):
        pytest.skip("needs the Go toolchain (golang-go)")
    srv = Server(trawl, "--max-upload", "16")   # a Go binary is a few MB
    try:
        check_gimphash(srv, keys, tmp_path)
    finally:
        srv.stop()


def check_gimphash(secure_server, keys, tmp_path):
    src = os.path.join(ROOT, "tests", "unit", "data", "gimphash", "sample.go")
    exe = tmp_path / "gosample"
    subprocess.run(["go", "build", "-o", str(exe), src], check=True, cwd=tmp_path,
                   capture_output=True)
    key = keys["analyst"]
    sha = upload(secure_server, key, exe, "GoLoader")
    s = bz(secure_server, key, query="get_info", hash=sha)["data"][0]
    assert re.fullmatch(r"[0-9a-f]{64}", s["gimphash"]), s["gimphash"]
    doc = bz(secure_server, key, query="get_gimphash", gimphash=s["gimphash"].upper())
    assert doc["query_status"] == "ok" and [x["sha256_hash"] for x in doc["data"]] == [sha]
    assert bz(secure_server, key, query="get_gimphash", gimphash="0" * 64)["query_status"] == "no_results"
    assert bz(secure_server, key, query="get_gimphash")["query_status"] == "no_gimphash"
    assert bz(secure_server, key, query="get_gimphash", gimphash="abc")["query_status"] == "illegal_gimphash"


def icon_pe(flip=False):
    """A PE32 whose .rsrc holds one icon: an 18x16 32-bit DIB of 9x8 grey
    cells (2x2 pixels each). Returns the bytes and the dhash the cells give."""
    def cell(cx, cy):
        if flip:
            cx = 8 - cx
        return (cx * 37 + cy * 91 + (cx * cy) % 7 * 29) % 256
    w, h = 18, 16
    dib = bytearray(struct.pack("<IiiHHIIiiII", 40, w, 2 * h, 1, 32, 0, 0, 0, 0, 0, 0))
    for y in reversed(range(h)):                          # bottom-up rows
        for x in range(w):
            v = cell(x // 2, y // 2)
            dib += bytes((v, v, v, 255))
    dib += bytes(4 * h)                                   # AND mask
    bits = 0
    for y in range(8):
        for x in range(8):
            bits = bits << 1 | (cell(x + 1, y) > cell(x, y))
    group = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHIH", w, h, 0, 0, 1, 32, len(dib), 1)
    # root: RT_ICON (3) and RT_GROUP_ICON (14); one name and language each.
    rva = 0x2000
    rs = bytearray(0x400)
    def d(off, n):
        struct.pack_into("<IIHHHH", rs, off, 0, 0, 0, 0, 0, n)
    d(0, 2)
    struct.pack_into("<IIII", rs, 16, 3, 0x80000000 | 0x40, 14, 0x80000000 | 0x60)
    for sub, lang, entry in ((0x40, 0x80, 0x100), (0x60, 0xA0, 0x110)):
        d(sub, 1)
        struct.pack_into("<II", rs, sub + 16, 1, 0x80000000 | lang)
        d(lang, 1)
        struct.pack_into("<II", rs, lang + 16, 0x409, entry)
    struct.pack_into("<II", rs, 0x100, rva + 0x200, len(dib))
    struct.pack_into("<II", rs, 0x110, rva + 0x140, len(group))
    rs[0x140:0x140 + len(group)] = group
    rs += bytes(0x200 + len(dib) - len(rs) + 0x200)
    rs[0x200:0x200 + len(dib)] = dib
    raw = (len(rs) + 0x1FF) & ~0x1FF
    rs += bytes(raw - len(rs))
    b = bytearray(min_pe())
    struct.pack_into("<H", b, 0x46, 2)
    struct.pack_into("<I", b, 0x58 + 56, 0x2000 + ((raw + 0xFFF) & ~0xFFF))
    struct.pack_into("<II", b, 0x58 + 96 + 16, rva, len(rs))
    struct.pack_into("<8sIIIIIIHHI", b, 0x58 + 0xE0 + 40, b".rsrc", len(rs), rva, raw, 0x400,
                     0, 0, 0, 0, 0x40000040)
    return bytes(b) + bytes(rs), "%016x" % bits


def test_dhash_icon_query(secure_server, keys, tmp_path):
    key = keys["analyst"]
    data, dhash = icon_pe()
    other, other_dhash = icon_pe(flip=True)
    assert dhash != other_dhash
    shas = []
    for name, blob in (("icon.exe", data), ("mirror.exe", other)):
        (tmp_path / name).write_bytes(blob)
        shas.append(upload(secure_server, key, tmp_path / name, "IconDropper"))
    s = bz(secure_server, key, query="get_info", hash=shas[0])["data"][0]
    assert s["dhash_icon"] == dhash
    doc = bz(secure_server, key, query="get_dhash_icon", dhash_icon=dhash.upper())
    assert doc["query_status"] == "ok" and [x["sha256_hash"] for x in doc["data"]] == [shas[0]]
    doc = bz(secure_server, key, query="get_dhash_icon", dhash_icon=other_dhash)
    assert [x["sha256_hash"] for x in doc["data"]] == [shas[1]]
    assert bz(secure_server, key, query="get_dhash_icon", dhash_icon="0" * 16)["query_status"] == "no_results"
    assert bz(secure_server, key, query="get_dhash_icon")["query_status"] == "no_dhash_icon"
    assert bz(secure_server, key, query="get_dhash_icon", dhash_icon="xyz")["query_status"] == "illegal_dhash_icon"


def test_ole_information(secure_server, keys, tmp_path):
    """get_info's ole_information: an object for an Office file (here the
    compound file with a VBA project that test_analysis_ole writes, kept as
    a fuzz seed), [] for anything else."""
    key = keys["analyst"]
    doc = tmp_path / "invoice.doc"
    with open(os.path.join(ROOT, "fuzz", "seeds", "analysis_ole", "macros.doc"), "rb") as f:
        doc.write_bytes(f.read())
    sha = upload(secure_server, key, doc, "Emotet")
    info = bz(secure_server, key, query="get_info", hash=sha)["data"][0]["ole_information"]
    assert info["container"] == "ole2" and info["macros"] is True and info["vba_project"] is True
    assert info["vba_modules"] == ["Dropper"]
    assert any(s["name"] == "Macros/VBA/dir" and s["size"] > 0 for s in info["streams"])
    (tmp_path / "plain.bin").write_bytes(b"plain bytes " * 10)
    other = upload(secure_server, key, tmp_path / "plain.bin", "x")
    assert bz(secure_server, key, query="get_info", hash=other)["data"][0]["ole_information"] == []


MARKER = b"TRAWL-CLAMAV-E2E-MARKER"


def clamav_db(tmp_path, monkeypatch):
    """A one-signature ClamAV database (a body signature for MARKER)."""
    db = tmp_path / "clamav"
    db.mkdir()
    (db / "trawl.ndb").write_text("Trawl.Test.E2E:0:*:%s\n" % MARKER.hex())
    # libclamav loses a few blocks loading a database; only those are excused.
    supp = tmp_path / "lsan.supp"
    supp.write_text("leak:libclamav.so\n")
    monkeypatch.setenv("LSAN_OPTIONS", "suppressions=%s" % supp)
    return db


def test_clamav(trawl, keys, tmp_path, monkeypatch):
    db = clamav_db(tmp_path, monkeypatch)
    old = tmp_path / "old.txt"
    old.write_bytes(b"stored before ClamAV was configured " + MARKER)
    trawl.run("add", old, check=0)
    srv = Server(trawl, "--clamav-db", str(db))
    try:
        key = keys["analyst"]
        f = tmp_path / "marked.txt"
        f.write_bytes(b"some text " + MARKER + b" more text")
        sha = upload(srv, key, f, "TestFamily")
        s = bz(srv, key, query="get_info", hash=sha)["data"][0]
        [name] = s["intelligence"]["clamav"]
        assert name.startswith("Trawl.Test.E2E")
        doc = bz(srv, key, query="get_clamavinfo", clamav=name)
        assert doc["query_status"] == "ok" and [x["sha256_hash"] for x in doc["data"]] == [sha]
        assert bz(srv, key, query="get_clamavinfo", clamav="Nothing.Like.This")["query_status"] == "clamav_not_found"
        assert bz(srv, key, query="get_clamavinfo")["query_status"] == "no_clamav_provided"
        (tmp_path / "clean.txt").write_bytes(b"nothing to see")
        clean = upload(srv, key, tmp_path / "clean.txt", "x")
        assert bz(srv, key, query="get_info", hash=clean)["data"][0]["intelligence"]["clamav"] is None
        # The sample added without ClamAV is scanned by trawl analyze.
        old_sha = hashlib.sha256(old.read_bytes()).hexdigest()
        assert bz(srv, key, query="get_info", hash=old_sha)["data"][0]["intelligence"]["clamav"] is None
        p = trawl.run("analyze", "--clamav-db", str(db), check=0)
        assert "analysed 1 samples" in p.stdout
        doc = bz(srv, key, query="get_clamavinfo", clamav=name)
        assert sorted(x["sha256_hash"] for x in doc["data"]) == sorted([sha, old_sha])
    finally:
        srv.stop()
    assert trawl.run("analyze", "--clamav-db", str(tmp_path / "missing")).returncode == 1


def test_clamav_not_configured(secure_server, keys, tmp_path):
    (tmp_path / "m.txt").write_bytes(MARKER)
    sha = upload(secure_server, keys["analyst"], tmp_path / "m.txt", "x")
    s = bz(secure_server, keys["analyst"], query="get_info", hash=sha)["data"][0]
    assert s["intelligence"]["clamav"] is None
