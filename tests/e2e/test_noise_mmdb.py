"""Enrichment from an admin-supplied MaxMind DB: the test writes a tiny MMDB
file (format 2.0, IPv4 tree, one /24 network) itself, following the public
MaxMind DB format specification, and checks that trawl reads ASN,
organisation, city, region and country from it."""
import json
import struct

from test_noise_tags import syn


def enc(v):
    """One value in the MaxMind DB data-section encoding."""
    def ctrl(t, size):
        assert size < 285
        low, extra = (size, b"") if size < 29 else (29, bytes([size - 29]))
        if t <= 7:
            return bytes([(t << 5) | low]) + extra
        return bytes([low, t - 7]) + extra
    if isinstance(v, dict):
        out = ctrl(7, len(v))
        for k, x in v.items():
            out += enc(k) + enc(x)
        return out
    if isinstance(v, list):
        return ctrl(11, len(v)) + b"".join(enc(x) for x in v)
    if isinstance(v, str):
        b = v.encode()
        return ctrl(2, len(b)) + b
    if isinstance(v, tuple):                  # (type, int): 5 uint16, 6 uint32, 9 uint64
        t, n = v
        b = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
        return ctrl(t, len(b)) + b
    raise TypeError(v)


def mmdb(network, prefix, record):
    bits = "".join(format(b, "08b") for b in bytes(int(x) for x in network.split(".")))[:prefix]
    nodes = prefix                           # one node per bit of the prefix
    data = enc(record)
    pointer = nodes + 16                     # data section offset 0
    tree = b""
    for i, bit in enumerate(bits):
        nxt = pointer if i == prefix - 1 else i + 1
        left, right = (nxt, nodes) if bit == "0" else (nodes, nxt)
        tree += left.to_bytes(3, "big") + right.to_bytes(3, "big")
    meta = {"node_count": (6, nodes), "record_size": (5, 24), "ip_version": (5, 4),
            "database_type": "trawl-test", "languages": ["en"],
            "binary_format_major_version": (5, 2), "binary_format_minor_version": (5, 0),
            "build_epoch": (9, 1764288000), "description": {"en": "trawl test database"}}
    return tree + b"\x00" * 16 + data + b"\xab\xcd\xefMaxMind.com" + enc(meta)


def test_mmdb_enrichment(trawl, tmp_path):
    db = tmp_path / "test.mmdb"
    db.write_bytes(mmdb("203.0.113.0", 24, {
        "autonomous_system_number": (6, 64500),
        "autonomous_system_organization": "Example Transit",
        "city": {"names": {"en": "Exampleville"}},
        "subdivisions": [{"names": {"en": "Example Region"}}],
        "country": {"iso_code": "NL", "names": {"en": "Netherlands"}},
    }))
    p = trawl.run("noise", "config", "mmdb", db, check=0)
    assert "mmdb = %s" % db in p.stdout
    events = tmp_path / "ev.jsonl"
    events.write_text(json.dumps(syn("203.0.113.200")) + "\n" + json.dumps(syn("198.51.100.200")) + "\n")
    trawl.run("noise", "import", events, check=0)
    m = json.loads(trawl.run("noise", "ip", "--json", "203.0.113.200", check=0).stdout)["metadata"]
    assert m["asn"] == "AS64500" and m["organization"] == "Example Transit"
    assert m["city"] == "Exampleville" and m["region"] == "Example Region"
    assert m["country_code"] == "NL" and m["country"] == "Netherlands"
    other = json.loads(trawl.run("noise", "ip", "--json", "198.51.100.200", check=0).stdout)["metadata"]
    assert other["asn"] == "" and other["city"] == ""
    assert "cannot read the MMDB file" in trawl.run("noise", "config", "mmdb", tmp_path / "nope.mmdb",
                                                    check=1).stderr
