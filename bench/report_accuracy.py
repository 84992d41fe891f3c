#!/usr/bin/python3
"""Precision and recall of trawl's IOC extractor on the labelled documents in
tests/fixtures/reports/ (labels-*.json: hand-written and template-made): each document goes through
`trawl import report --json` and the accepted extractions are compared with
the labelled indicators; the labelled negatives (private, documentation,
version, look-alike, benign, or absent: hidden in a <script>) must come out
with that class.

usage: bench/report_accuracy.py [TRAWL_BIN]   (default build/asan/trawl)
The PDF is made at run time from en-pdf.roff with groff (Debian's groff)."""
import collections
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "reports")


def document_path(name, label, tmp):
    src = label.get("source")
    if not src:
        return os.path.join(FIXTURES, name)
    out = os.path.join(tmp, name)
    with open(os.path.join(FIXTURES, src), "rb") as f, open(out, "wb") as o:
        subprocess.run(["groff", "-Tpdf"], stdin=f, stdout=o, check=True)
    return out


def evaluate(trawl_bin):
    labels = {}
    for f in sorted(os.listdir(FIXTURES)):
        if f.startswith("labels-") and f.endswith(".json"):
            labels.update(json.load(open(os.path.join(FIXTURES, f), encoding="utf-8")))
    per_kind = collections.defaultdict(lambda: [0, 0, 0])   # tp, fp, fn
    negatives_ok = negatives = 0
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, label in sorted(labels.items()):
            path = document_path(name, label, tmp)
            p = subprocess.run([trawl_bin, "--data", os.path.join(tmp, "none"), "import",
                                "report", "--json", path], capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError("%s: %s" % (name, p.stderr))
            draft = json.loads(p.stdout)
            got = collections.Counter()
            classes = {}
            for e in draft["extractions"]:
                classes[(e["kind"], e["value"])] = e["class"]
                if e["accepted"]:
                    got[(e["kind"], e["value"] if e["kind"] != "yara" else None)] = 1
            want = collections.Counter((k, v) for k, v in label["indicators"])
            for key in set(got) | set(want):
                kind = key[0]
                if key in got and key in want:
                    per_kind[kind][0] += 1
                elif key in got:
                    per_kind[kind][1] += 1
                    problems.append("%s: false positive %s %s" % (name, kind, key[1]))
                else:
                    per_kind[kind][2] += 1
                    problems.append("%s: missed %s %s" % (name, kind, key[1]))
            for kind, value, cls in label["negatives"]:
                negatives += 1
                actual = classes.get((kind, value), "absent")
                if actual == cls:
                    negatives_ok += 1
                else:
                    problems.append("%s: %s %s is %s, labelled %s" % (name, kind, value,
                                                                     actual, cls))
    tp = sum(v[0] for v in per_kind.values())
    fp = sum(v[1] for v in per_kind.values())
    fn = sum(v[2] for v in per_kind.values())
    return {
        "documents": len(labels),
        "indicators": tp + fn,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "negatives": negatives,
        "negatives_classified": negatives_ok,
        "per_kind": {k: {"tp": v[0], "fp": v[1], "fn": v[2]} for k, v in sorted(per_kind.items())},
        "problems": problems,
    }


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "asan", "trawl")
    r = evaluate(binary)
    print("documents %d, labelled indicators %d, labelled negatives %d"
          % (r["documents"], r["indicators"], r["negatives"]))
    print("precision %.4f  recall %.4f  negatives classified %d/%d"
          % (r["precision"], r["recall"], r["negatives_classified"], r["negatives"]))
    for k, v in r["per_kind"].items():
        print("  %-17s tp %3d  fp %2d  fn %2d" % (k, v["tp"], v["fp"], v["fn"]))
    for line in r["problems"]:
        print("  " + line)


if __name__ == "__main__":
    main()
