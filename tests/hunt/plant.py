#!/usr/bin/python3
"""Fixture generator for the hunt fidelity tests.

For every rule of the given YARA files, writes files that plant the rule's
strings among random filler, in the encodings their modifiers allow (ascii,
wide, nocase, xor in its key range, base64 at every alignment, hex strings
with wildcards, jumps and alternatives instantiated, regular expressions
sampled), with a header the rule's condition seems to want (MZ/PE, PDF, ELF,
ZIP, RTF, OLE), plus near misses: one byte changed, wrong case where case
matters, a wide string off by one byte, an xor key out of range.

The planting is a heuristic (strings are found with regular expressions, not
a parser); that is fine: the test compares trawl with libyara on whatever
the files turn out to be, and the planted strings only make matches likely.

usage: plant.py OUTDIR SEED RULEFILE...
"""
import base64
import os
import random
import re
import struct
import sys
import warnings

with warnings.catch_warnings():
    # Python's own regex parser is the simplest sampler at hand; it is deprecated
    # as a public module but still shipped.
    warnings.simplefilter("ignore", DeprecationWarning)
    import sre_constants as C
    import sre_parse

STRING_RE = re.compile(
    r'(?<![\w$])(\$\w*)\s*=\s*(?:"((?:[^"\\\n]|\\.)*)"([^\n$]*)|\{([^}]*)\}([^\n$]*)|/((?:[^/\\\n]|\\.)+)/([is]*)([^\n$]*))')
RULE_RE = re.compile(r'^\s*(?:(?:private|global)\s+)*rule\s+(\w+)', re.M)


def unescape(s):
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n == "x" and i + 3 < len(s) + 1:
                try:
                    out.append(int(s[i + 2:i + 4], 16))
                    i += 4
                    continue
                except ValueError:
                    pass
            out += {"n": b"\n", "t": b"\t", "r": b"\r", '"': b'"', "\\": b"\\"}.get(n, n.encode("latin-1", "replace"))
            i += 2
            continue
        out += c.encode("utf-8")
        i += 1
    return bytes(out)


def xor_range(mods):
    m = re.search(r"\bxor\s*\(\s*(0x[0-9a-fA-F]+|\d+)\s*(?:-\s*(0x[0-9a-fA-F]+|\d+))?\s*\)", mods)
    if m:
        lo = int(m.group(1), 0)
        hi = int(m.group(2), 0) if m.group(2) else lo
        return lo, hi
    if re.search(r"\bxor\b", mods):
        return 0, 255
    return None


def randcase(rng, b):
    return bytes((c ^ 0x20) if chr(c).isalpha() and rng.random() < 0.5 else c for c in b)


def text_variants(rng, raw, mods, near):
    """Encodings of a text string its modifiers allow (or near misses)."""
    wide = re.search(r"\bwide\b", mods) is not None
    ascii_ = re.search(r"\bascii\b", mods) is not None or not wide
    nocase = re.search(r"\bnocase\b", mods) is not None
    b64 = re.search(r"\bbase64\b", mods) is not None
    b64w = re.search(r"\bbase64wide\b", mods) is not None
    xr = xor_range(mods)
    outs = []
    s = raw
    if near:
        if len(s) >= 2:
            i = len(s) // 2
            outs.append(s[:i] + bytes([(s[i] + 1) & 0xFF]) + s[i + 1:])
        if not nocase and any(chr(c).isalpha() for c in s):
            outs.append(bytes((c ^ 0x20) if chr(c).isalpha() else c for c in s))
        if wide:
            outs.append(b"".join(b"\x00" + bytes([c]) for c in s))   # off by one byte
        if xr and xr[1] < 255:
            outs.append(bytes(c ^ (xr[1] + 1) for c in s))
        return outs
    if nocase:
        s = randcase(rng, s)
    forms = []
    if ascii_:
        forms.append(s)
    if wide:
        forms.append(b"".join(bytes([c, 0]) for c in s))
    if b64 or b64w:
        enc = []
        for k in range(3):
            e = base64.b64encode(b"Q" * k + raw + b"Z" * rng.randint(0, 2))
            enc.append(e)
        if b64:
            outs += enc
        if b64w:
            outs += [b"".join(bytes([c, 0]) for c in e) for e in enc]
        return outs
    if xr:
        lo, hi = xr
        keys = {lo, hi, rng.randint(lo, hi)}
        for f in forms:
            for k in keys:
                outs.append(bytes(c ^ k for c in f))
        return outs
    return forms


def hex_instance(rng, text):
    toks = re.findall(r"\[[^\]]*\]|\(|\)|\||[0-9A-Fa-f?]{2}|~[0-9A-Fa-f?]{2}", text)
    pos = 0

    def seq():
        nonlocal pos
        out = bytearray()
        while pos < len(toks):
            t = toks[pos]
            if t in ("|", ")"):
                return bytes(out)
            pos += 1
            if t == "(":
                alts = [seq()]
                while pos < len(toks) and toks[pos] == "|":
                    pos += 1
                    alts.append(seq())
                pos += 1  # ")"
                out += rng.choice(alts)
            elif t.startswith("["):
                body = t[1:-1].strip()
                if "-" in body:
                    a, b = body.split("-", 1)
                    lo = int(a) if a.strip() else 0
                    hi = int(b) if b.strip() else lo + 8
                else:
                    lo = hi = int(body)
                n = rng.randint(lo, min(hi, lo + 16))
                out += bytes(rng.randrange(256) for _ in range(n))
            elif t.startswith("~"):
                out.append(rng.randrange(256))
            else:
                hi_, lo_ = t[0], t[1]
                h = rng.randrange(16) if hi_ == "?" else int(hi_, 16)
                l = rng.randrange(16) if lo_ == "?" else int(lo_, 16)
                out.append(h * 16 + l)
        return bytes(out)

    try:
        return seq()
    except (ValueError, IndexError):
        return None


def regex_instance(rng, pattern, nocase):
    try:
        tree = sre_parse.parse(pattern.replace("\\/", "/"))
    except Exception:
        return None
    cats = {
        C.CATEGORY_DIGIT: b"0123456789",
        C.CATEGORY_NOT_DIGIT: b"abcXYZ-_",
        C.CATEGORY_SPACE: b" \t",
        C.CATEGORY_NOT_SPACE: b"abcXYZ019",
        C.CATEGORY_WORD: b"abcXYZ019_",
        C.CATEGORY_NOT_WORD: b" -.;",
    }

    def gen(items, depth=0):
        out = bytearray()
        for op, av in items:
            if op == C.LITERAL:
                out.append(av & 0xFF)
            elif op == C.NOT_LITERAL:
                out.append((av + 1) & 0xFF)
            elif op == C.ANY:
                out += b"a"
            elif op == C.IN:
                choices = []
                neg = False
                for iop, iav in av:
                    if iop == C.NEGATE:
                        neg = True
                    elif iop == C.LITERAL:
                        choices.append(iav)
                    elif iop == C.RANGE:
                        choices.append(rng.randint(iav[0], iav[1]))
                    elif iop == C.CATEGORY:
                        choices += list(cats.get(iav, b"a"))
                if neg:
                    bad = set(choices)
                    ok = [c for c in b"aZ09 -_.q" if c not in bad]
                    out.append(ok[0] if ok else 0x7E)
                elif choices:
                    out.append(rng.choice(choices) & 0xFF)
            elif op == C.BRANCH:
                out += gen(rng.choice(av[1]), depth + 1)
            elif op == C.SUBPATTERN:
                out += gen(av[-1], depth + 1)
            elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
                lo, hi, sub = av
                hi = lo + 3 if hi == C.MAXREPEAT else hi
                for _ in range(rng.randint(lo, min(hi, lo + 3))):
                    out += gen(sub, depth + 1)
            elif op == C.CATEGORY:
                out += bytes([rng.choice(cats.get(av, b"a"))])
            elif op == C.AT:
                pass
            else:
                raise ValueError(op)
        return bytes(out)

    try:
        b = gen(tree)
    except Exception:
        return None
    return randcase(rng, b) if nocase else b


SECTION_NAME_RE = re.compile(r'sections\[\w+\]\.name\s*==\s*"([^"\\]{1,8})"')


def pe_with_section(name):
    """A PE32 that libyara's pe module parses: DOS header, NT headers, one section."""
    dos = b"MZ" + bytes(0x3A) + (0x80).to_bytes(4, "little") + bytes(0x80 - 0x40)
    fh = b"PE\x00\x00" + struct.pack("<HHIIIHH", 0x14C, 1, 0, 0, 0, 224, 0x0102)
    opt = struct.pack("<H", 0x10B) + bytes(222)
    sec = struct.pack("<8sIIIIIIHHI", name.ljust(8, b"\x00"), 0x1000, 0x1000, 0x200, 0x400,
                      0, 0, 0, 0, 0x60000020)
    out = dos + fh + opt + sec
    return out + bytes(0x600 - len(out))


def header_for(cond, near=False):
    c = cond.lower()
    m = SECTION_NAME_RE.search(cond)
    if m:
        name = m.group(1).encode("latin-1")
        if near:
            name = name[:-1] + bytes([(name[-1] + 1) & 0x7F])
        return pe_with_section(name)
    if "0x5a4d" in c or "mz" in c or "pe." in c:
        pe = bytearray(b"MZ" + bytes(0x3A) + (0x80).to_bytes(4, "little") + bytes(0x40))
        pe += b"PE\x00\x00" + bytes([0x4C, 0x01]) + bytes(18)
        return bytes(pe)
    if "%pdf" in c or "0x46445025" in c:
        return b"%PDF-1.7\n"
    if "0x464c457f" in c or "elf" in c:
        return b"\x7fELF\x02\x01\x01" + bytes(9)
    if "0x04034b50" in c or "pk" in c:
        return b"PK\x03\x04"
    if "rtf" in c or "0x74725c7b" in c:
        return b"{\\rtf1"
    if "0xe011cfd0" in c or "0xd0cf11e0" in c:
        return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    return b""


def rule_blocks(text):
    starts = [m for m in RULE_RE.finditer(text)]
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        yield m.group(1), text[m.start():end]


def plant_rule(rng, body, near):
    cond = body.split("condition:", 1)[-1]
    pieces = []
    for m in STRING_RE.finditer(body.split("condition:", 1)[0]):
        if m.group(2) is not None:
            raw = unescape(m.group(2))
            if raw:
                pieces += text_variants(rng, raw, m.group(3), near)
        elif m.group(4) is not None:
            b = hex_instance(rng, m.group(4))
            if b:
                if near and len(b) > 1:
                    i = len(b) // 2
                    b = b[:i] + bytes([(b[i] + 1) & 0xFF]) + b[i + 1:]
                pieces.append(b)
        else:
            b = regex_instance(rng, m.group(6), "i" in m.group(7))
            if b:
                if near and len(b) > 1:
                    i = len(b) // 2
                    b = b[:i] + bytes([(b[i] ^ 0x55) & 0xFF]) + b[i + 1:]
                pieces.append(b)
    out = bytearray(header_for(cond, near))
    for p in pieces:
        out += bytes(rng.randrange(256) for _ in range(rng.randint(4, 48)))
        out += b" " + p + b" "
    out += bytes(rng.randrange(256) for _ in range(rng.randint(16, 256)))
    return bytes(out)


def main():
    outdir, seed, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    os.makedirs(outdir, exist_ok=True)
    rng = random.Random(seed)
    n = 0
    for fi, path in enumerate(files):
        try:
            text = open(path, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        for ri, (name, body) in enumerate(rule_blocks(text)):
            for variant in ("hit", "hit2", "near"):
                data = plant_rule(rng, body, variant == "near")
                with open(os.path.join(outdir, "f%03d_r%03d_%s_%s" % (fi, ri, variant, name[:40])), "wb") as f:
                    f.write(data)
                n += 1
    print(n)


if __name__ == "__main__":
    main()
