"""Every sh example in docs/kb.md runs, in order, against the CLI and a live
server on the same data directory, and prints what the text says."""
import json
import os
import re
import subprocess

from conftest import ROOT

MURKY = {"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "objects": [
    {"type": "intrusion-set", "spec_version": "2.1",
     "id": "intrusion-set--1c7b5b88-8ff7-4a4d-aa9d-feb398cd0061",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
     "name": "Murky Team", "aliases": ["Gloomhaul"]}]}


def test_kb_doc_examples_run(secure_server, keys, trawl, tmp_path):
    text = open(os.path.join(ROOT, "docs", "kb.md")).read()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    (tmp_path / "gloom-1.bin").write_bytes(b"doc gloom sample one")
    (tmp_path / "gloom-2.bin").write_bytes(b"doc gloom sample two")
    (tmp_path / "murky-team.json").write_text(json.dumps(MURKY))
    env = dict(os.environ, TRAWL=secure_server.url, KEY=keys["analyst"], TRAWL_BIN=trawl.binary,
               TRAWL_DATA=trawl.data)
    script = ('set -euo pipefail\ntrawl() { "$TRAWL_BIN" --data "$TRAWL_DATA" "$@"; }\n' +
              "\n".join(blocks))
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env,
                       timeout=120, cwd=str(tmp_path))
    out = p.stdout
    assert p.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (out[-3000:], p.stderr[-3000:])
    # The two sync lines the text shows, word for word.
    shown = re.search(r"prints, for the three runs,\n\n```\n(.*?)```", text, re.S).group(1)
    for line in shown.strip().splitlines():
        assert line in out, line
    assert re.search(r"^sample [0-9a-f]{64} gloom-1\.bin$", out, re.M)
    assert '"ips": []' in out
    assert '"query_status":"ok"' in out and '"objects":0' in out
    assert '"samples":[]' in out
