"""Bulk exports in MalwareBazaar's shapes: over HTTP under /export/... and
with `trawl export`; the daily zip of one day's samples (password infected)."""
import csv
import hashlib
import io
import json
import os
import subprocess
import zipfile

import pytest
import requests

from test_bazaar import bz, upload_bz


def get(srv, key, path):
    r = requests.get(srv.url + path, headers={"Auth-Key": key}, timeout=30)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r


def body_lines(text):
    return [line for line in text.splitlines() if not line.startswith("#")]


def zipped(data, name):
    """The one file of a full export's zip, checked to be named as Bazaar names it."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.namelist() == [name]
        assert z.testzip() is None
        return z.read(name).decode()


def test_exports_over_http_and_cli_agree(secure_server, keys, trawl, tmp_path):
    key = keys["analyst"]
    blobs = [b"MZ export one " + os.urandom(200), b"export two, \"quoted\" " + os.urandom(200)]
    upload_bz(secure_server, key, "x,0.bin", blobs[0], tags=["exp"])
    upload_bz(secure_server, key, "x,1.bin", blobs[1], signature='Sig "q"')
    shas = [hashlib.sha256(d).hexdigest() for d in blobs]

    text = get(secure_server, key, "/export/csv/recent/").text
    head = text.splitlines()[:8]
    assert head[0].startswith("#####") and any("Last updated:" in h for h in head)
    header = [line for line in text.splitlines() if line.startswith('# "first_seen_utc"')]
    assert len(header) == 1
    columns = next(csv.reader(io.StringIO(header[0][2:])))
    assert columns == ["first_seen_utc", "sha256_hash", "md5_hash", "sha1_hash", "reporter", "file_name",
                       "file_type_guess", "mime_type", "signature", "clamav", "vtpercent", "imphash",
                       "ssdeep", "tlsh"]
    rows = list(csv.reader(io.StringIO("\n".join(body_lines(text))), skipinitialspace=True))
    assert [r[1] for r in rows] == shas[::-1]           # newest first
    by_sha = {r[1]: dict(zip(columns, r)) for r in rows}
    one = by_sha[shas[1]]
    assert one["md5_hash"] == hashlib.md5(blobs[1]).hexdigest() and one["file_name"] == "x,1.bin"
    assert one["reporter"] == "analyst-key" and one["signature"] == 'Sig "q"'
    assert by_sha[shas[0]]["signature"] == "n/a" and one["clamav"] == "n/a"
    # Full: a zip holding full.csv, as Bazaar serves it; the same header and rows.
    r = get(secure_server, key, "/export/csv/full/")
    assert r.headers["Content-Type"] == "application/zip"
    full = zipped(r.content, "full.csv")
    assert full.splitlines()[0].startswith("#####") and "Every sample in the store" in full
    assert [x for x in full.splitlines() if x.startswith('# "first_seen_utc"')] == header
    full_rows = list(csv.reader(io.StringIO("\n".join(body_lines(full))), skipinitialspace=True))
    assert full_rows == rows and full.splitlines()[-1] == "# Number of entries: 2"

    for algo in ("sha256", "md5", "sha1"):
        want = [getattr(hashlib, algo)(d).hexdigest() for d in blobs[::-1]]
        assert body_lines(get(secure_server, key, "/export/txt/%s/recent/" % algo).text) == want
        r = get(secure_server, key, "/export/txt/%s/full/" % algo)
        text = zipped(r.content, "full_%s.txt" % algo)
        assert text.startswith("#####") and body_lines(text) == want, algo

    doc = get(secure_server, key, "/export/json/recent/").json()
    assert doc["query_status"] == "ok" and [d["sha256_hash"] for d in doc["data"]] == shas[::-1]
    assert doc["data"][0]["intelligence"]["uploads"] == "1"

    # The CLI writes the same files (the "Last updated" line aside).
    for fmt, path in (("csv", "/export/csv/recent/"), ("sha1", "/export/txt/sha1/recent/"),
                      ("json", "/export/json/recent/")):
        p = trawl.run("export", "--format", fmt, "--recent", check=0)
        http = get(secure_server, key, path).text
        strip = lambda t: [x for x in t.splitlines() if "Last updated" not in x]
        assert strip(p.stdout) == strip(http), fmt
    out = tmp_path / "full.zip"
    trawl.run("export", "--format", "csv", "--output", str(out), check=0)
    strip = lambda t: [x for x in t.splitlines() if "Last updated" not in x]
    assert strip(zipped(out.read_bytes(), "full.csv")) == strip(full)
    out = tmp_path / "sha1.zip"
    trawl.run("export", "--format", "sha1", "--output", str(out), check=0)
    assert body_lines(zipped(out.read_bytes(), "full_sha1.txt")) == [
        hashlib.sha1(d).hexdigest() for d in blobs[::-1]]

    for bad in ("/export/csv/yesterday/", "/export/txt/sha512/recent/", "/export/xml/recent/",
                "/export/csv/recent/extra", "/export/daily/2026-13-01.zip", "/export/daily/latest.zip"):
        assert requests.get(secure_server.url + bad, headers={"Auth-Key": key}, timeout=30).status_code == 404, bad
    assert requests.get(secure_server.url + "/export/csv/recent/", timeout=30).status_code == 401
    p = trawl.run("export", "--format", "xml")
    assert p.returncode == 2 and "unknown export format" in p.stderr


def test_daily_zip_holds_that_days_samples(secure_server, keys, trawl, tmp_path):
    key = keys["analyst"]
    blobs = [b"MZ daily " + os.urandom(300), b"daily text sample " + os.urandom(30)]
    for i, data in enumerate(blobs):
        upload_bz(secure_server, key, "d%d.bin" % i, data)
    # The day the store gave them (not the clock now: safe across midnight).
    days = {bz(secure_server, key, query="get_info", hash=hashlib.sha256(d).hexdigest()).json()["data"][0]
            ["first_seen"][:10] for d in blobs}
    if len(days) != 1:
        pytest.skip("the two uploads straddled midnight UTC; run again")
    today = days.pop()
    r = get(secure_server, key, "/export/daily/%s.zip" % today)
    assert r.headers["Content-Type"] == "application/zip"
    http_zip = tmp_path / "http.zip"
    http_zip.write_bytes(r.content)
    cli_zip = tmp_path / "cli.zip"
    trawl.run("export", "--daily", today, "--output", str(cli_zip), check=0)
    for z in (http_zip, cli_zip):
        # Encrypted: no password, no files.
        p = subprocess.run(["7z", "x", "-y", "-pwrong", "-o" + str(tmp_path / "bad"), str(z)],
                           capture_output=True, text=True)
        assert p.returncode != 0
        dest = tmp_path / (z.stem + "-out")
        p = subprocess.run(["7z", "x", "-y", "-pinfected", "-o" + str(dest), str(z)], capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr
        got = {f: (dest / f).read_bytes() for f in os.listdir(dest)}
        assert sorted(hashlib.sha256(b).hexdigest() for b in got.values()) == sorted(
            hashlib.sha256(b).hexdigest() for b in blobs)
        for name, data in got.items():
            assert name.startswith(hashlib.sha256(data).hexdigest())
    assert requests.get(secure_server.url + "/export/daily/2001-01-01.zip", headers={"Auth-Key": key},
                        timeout=30).status_code == 404
    p = trawl.run("export", "--daily", "2001-01-01", "--output", str(tmp_path / "empty.zip"), check=0)
    assert "0 samples" in p.stderr
