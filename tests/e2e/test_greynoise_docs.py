"""Every sh example in docs/greynoise.md runs, in order, against a live server
and the CLI on the same data directory."""
import os
import re
import subprocess

from conftest import ROOT


def test_greynoise_doc_examples_run(secure_server, keys, trawl, tmp_path):
    blocks = re.findall(r"```sh\n(.*?)```", open(os.path.join(ROOT, "docs", "greynoise.md")).read(), re.S)
    assert len(blocks) >= 5
    env = dict(os.environ, TRAWL=secure_server.url, KEY=keys["reader"], TRAWL_BIN=trawl.binary,
               TRAWL_DATA=trawl.data)
    script = ('set -euo pipefail\ntrawl() { "$TRAWL_BIN" --data "$TRAWL_DATA" "$@"; }\n' +
              "\n".join(blocks))
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env,
                       timeout=120, cwd=str(tmp_path))
    out = p.stdout
    assert p.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (out[-3000:], p.stderr[-3000:])
    assert re.search(r"^203\.0\.113\.7\s+malicious .*\.env Scanner", out, re.M)
    assert '"ip": "203.0.113.9"' in out and '"ip": "203.0.113.7"' in out   # the --json query
    assert "2 matching IPs" in out
    assert "GNQL: unclosed '(' at position 16" in p.stderr
    assert "198.51.100.53: RIOT Example DNS (public_dns, trust level 1, 198.51.100.0/24)" in out
    assert '"noise":true' in out and '"classification":"malicious"' in out     # community
    assert '"code":"0x02"' in out                                               # spoofable SYNs
    assert '"ips_not_found":[]' in out and '"trust_level":"1"' in out
    assert '"count":1' in out
    assert '"stats":' in out
