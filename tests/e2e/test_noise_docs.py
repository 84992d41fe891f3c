"""Every sh example in docs/noise.md runs, in order, against a live server
and the CLI on the same data directory."""
import os
import re
import subprocess

from conftest import ROOT


def shell_blocks(path):
    return re.findall(r"```sh\n(.*?)```", open(path).read(), re.S)


def test_noise_doc_examples_run(secure_server, keys, trawl, tmp_path):
    blocks = shell_blocks(os.path.join(ROOT, "docs", "noise.md"))
    assert len(blocks) >= 8
    env = dict(os.environ, TRAWL=secure_server.url, KEY=keys["analyst"], TRAWL_BIN=trawl.binary,
               TRAWL_DATA=trawl.data)
    script = ('set -euo pipefail\ntrawl() { "$TRAWL_BIN" --data "$TRAWL_DATA" "$@"; }\n' +
              "\n".join(blocks))
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env,
                       timeout=120, cwd=str(tmp_path))
    out = p.stdout
    assert p.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (out[-3000:], p.stderr[-3000:])
    # the examples did what the text says
    assert "2 events stored (2 tagged, 2 new addresses), 1 bad lines skipped" in out
    assert "events.jsonl:3: event: 'time' must be an RFC 3339 UTC time" in p.stderr
    assert "1 of the 2 newest events matched; nothing was saved" in out
    assert "tag 'Curl Secrets Hunter' added" in out
    assert "re-judged the stored events: 1 matched, 1 addresses tagged" in out
    assert re.search(r"^\s+1\s+activity\s+malicious\s+Curl Secrets Hunter$", out, re.M)
    assert re.search(r"^\s+1\s+tool\s+unknown\s+ZMap Client$", out, re.M)
    assert "classification  benign" in out and "actor           Example Research" in out
    assert "1 Tor exit addresses imported" in out
    assert '"tor": true' in out                       # 203.0.113.8 in the --json record
    assert '{"ip":"203.0.113.7","seen":true,' in out      # trawl noise ip - (JSON lines)
    assert '{"ip":"203.0.113.9","seen":false}' in out
    assert "events are kept 120 days" in out
    assert "203.0.113.7:51234 -> 198.51.100.1:80  tcp/http  [.env Scanner, Curl Secrets Hunter, curl]" in out
    assert '"src_ip": "203.0.113.8"' in out
    assert '{"accepted":1}' in out
    assert '"SSH Bruteforcer"' in out and '"Go SSH Client"' in out
    assert '"classification":"malicious"' in out
