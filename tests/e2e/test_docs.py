"""Every curl example in docs/api.md runs, in order, against a live server."""
import os
import re
import subprocess

from conftest import ROOT


def shell_blocks(path):
    text = open(path).read()
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def test_api_doc_examples_run(secure_server, keys):
    blocks = shell_blocks(os.path.join(ROOT, "docs", "api.md"))
    assert len(blocks) >= 8
    env = dict(os.environ, TRAWL=secure_server.url, KEY=keys["analyst"], ADMIN=keys["admin"])
    script = "set -euo pipefail\n" + "\n".join(blocks)
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (p.stdout[-3000:], p.stderr[-3000:])
    # The examples did what they say: the sample was uploaded, tagged, commented, deleted.
    assert '"query_status":"inserted"' in p.stdout
    assert '"C2 at 203.0.113.7"' in p.stdout
    assert '"query_status":"deleted"' in p.stdout
    assert "Everything is Ok" in p.stdout
    assert '"rule":"doc_example"' in p.stdout          # the hunt found the sample
    assert '"retrohunt":' in p.stdout
