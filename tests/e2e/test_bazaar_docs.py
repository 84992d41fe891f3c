"""The examples of docs/api.md's MalwareBazaar section run as written and
do what the text says."""
import json
import os
import re
import subprocess

from conftest import ROOT


def section_blocks():
    text = open(os.path.join(ROOT, "docs", "api.md")).read()
    start = text.index("## MalwareBazaar-compatible API")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```sh\n(.*?)```", text[start:end], re.S)


def test_bazaar_doc_examples(secure_server, keys, tmp_path):
    blocks = section_blocks()
    assert len(blocks) == 2
    env = dict(os.environ, TRAWL=secure_server.url, KEY=keys["analyst"], ADMIN=keys["admin"])
    script = ("set -euo pipefail\nprintf 'MZ example sample bytes\\n' > /tmp/trawl-doc-sample.exe\n"
              + "\n".join(blocks))
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (p.stdout[-3000:], p.stderr[-3000:])
    out = p.stdout
    assert '"query_status":"inserted"' in out and out.count('"query_status":"updated"') == 2
    # The answers follow each other without line breaks: decode them one by one.
    dec, answers = json.JSONDecoder(), []
    for m in re.finditer(r'\{"query_status"', out):
        try:
            answers.append(dec.raw_decode(out, m.start())[0])
        except ValueError:
            pass
    info = next(a for a in answers if a.get("data") and "comments" in a["data"][0])
    s = info["data"][0]
    assert s["tags"] == ["bazaar-style", "stage1"] and s["comment"] == "seen in a phish"
    assert s["references"] == {"links": ["https://blog.example/post"], "urlhaus": ["https://urlhaus.example/url/1/"]}
    assert s["intelligence"]["uploads"] == "1"
    assert '"query_status":"no_results"' in out           # recent_detections: no live rules
    assert '# "first_seen_utc","sha256_hash"' in out and s["sha256_hash"] in out
    assert "Everything is Ok" in out                       # the daily zip opened with "infected"
