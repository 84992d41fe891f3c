"""The incremental knowledge-base sync (docs/kb.md): after each kind of change
to trawl's data, a sync that derives only what the change log names leaves
the knowledge base exactly as a full pass would (the full pass that follows
finds nothing to store, and both exports are the same), and a sync killed
half-way is repaired by the next one."""
import json
import os
import signal
import subprocess
import time

import pytest

from test_kb_links import A, B, C, RULE, SCANNER, export, linked, log4j_event, no_dangling  # noqa: F401


def sync(trawl, *extra):
    return json.loads(trawl.run("kb", "sync", "--json", *extra, check=0).stdout)


def assert_same_as_full(trawl, st):
    """st: the incremental sync that answered a change."""
    assert st["full"] is False, st
    inc = export(trawl)
    no_dangling(inc)
    full = sync(trawl, "--full")
    assert full["full"] is True
    assert full["added"] == full["updated"] == full["retired"] == 0, (st, full)
    assert full["unchanged"] == full["objects"]
    assert export(trawl) == inc
    return inc


def new_sample(t, tmp):
    (tmp / "d.bin").write_bytes(b"a new gloom payload arrives\x00\x03")
    t.run("add", "--signature", "Newfam", tmp / "d.bin", check=0)


def removed_sample(t, tmp):
    t.run("rm", A, check=0)


def signature_change(t, tmp):
    # C joins Gloomhaul (a family gains a sample), B leaves it for another.
    t.run("add", "--signature", "Gloomhaul", tmp / "c.bin", check=0)
    t.run("add", "--signature", "Otherfam", tmp / "b.bin", check=0)


def new_name(t, tmp):
    # "0first.bin" sorts before "a.bin": the file SCO gets a new name and id.
    (tmp / "0first.bin").write_bytes((tmp / "a.bin").read_bytes())
    t.run("add", tmp / "0first.bin", check=0)


def live_rule_hit(t, tmp):
    # A second live rule set: its retro pass hits C.
    (tmp / "other.yar").write_text('rule other { strings: $a = "another thing" condition: $a }\n')
    t.run("rules", "add", "--retro", "otherlive", tmp / "other.yar", check=0)
    assert C in t.run("rules", "hits", "otherlive", check=0).stdout


def hunt_finished(t, tmp):
    (tmp / "h.yar").write_text('rule h { strings: $a = "hello" condition: $a }\n')
    t.run("hunt", tmp / "h.yar", check=0)


def noise_changed(t, tmp):
    ev = log4j_event()
    ev2 = dict(ev, src_ip="203.0.113.8", sensor="kb-sensor-2")
    (tmp / "ev2.jsonl").write_text(json.dumps(ev) + "\n" + json.dumps(ev2) + "\n")
    t.run("noise", "import", tmp / "ev2.jsonl", check=0)


CHANGES = [new_sample, removed_sample, signature_change, new_name, live_rule_hit, hunt_finished,
           noise_changed]


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__ for c in CHANGES])
def test_incremental_equals_full(linked, tmp_path, change):  # noqa: F811
    first = sync(linked)
    assert first["full"] is True and first["added"] > 10
    before = export(linked)
    idle = sync(linked)
    assert idle["full"] is False and idle["objects"] == 0, idle
    change(linked, tmp_path)
    st = sync(linked)
    # The change was answered: the knowledge base moved.
    after = assert_same_as_full(linked, st)
    assert after != before
    assert st["added"] + st["updated"] + st["retired"] > 0, st
    # Running it again stores nothing.
    again = sync(linked)
    assert again["added"] == again["updated"] == again["retired"] == 0, again


def test_only_changed_samples_are_derived(trawl, tmp_path):
    for f in range(3):
        d = tmp_path / ("fam%d" % f)
        d.mkdir()
        for i in range(10):
            (d / ("s%d.bin" % i)).write_bytes(b"sample number %d of %d" % (i, f))
        trawl.run("add", "--signature", "Fam%d" % f, "--quiet", d, check=0)
    first = sync(trawl)
    (tmp_path / "new.bin").write_bytes(b"one more sample")
    trawl.run("add", tmp_path / "new.bin", check=0)
    st = sync(trawl)
    # The identity and the new file: not the other 30 samples and 3 families.
    assert st["objects"] == 2 and st["added"] == 1, (first, st)
    assert_same_as_full(trawl, st)


def test_hand_edit_in_the_kb_makes_a_full_pass(linked):  # noqa: F811
    sync(linked)
    objs = export(linked)
    mine = [o for o in objs.values() if o["type"] == "malware" and o.get("created_by_ref")][0]
    linked.run("stix", "rm", mine["id"], check=0)
    st = sync(linked)
    assert st["full"] is True and st["added"] == 1
    assert sync(linked)["full"] is False


def test_dropped_trigger_makes_a_full_pass(linked):  # noqa: F811
    import sqlite3
    sync(linked)
    db = sqlite3.connect(os.path.join(linked.data, "trawl.db"))
    db.execute("DROP TRIGGER kblink_log_samples_del")
    db.commit()
    db.close()
    linked.run("rm", A, check=0)    # not logged: the trigger is gone
    st = sync(linked)
    assert st["full"] is True and st["retired"] >= 3, st
    db = sqlite3.connect(os.path.join(linked.data, "trawl.db"))
    n = db.execute("SELECT count(*) FROM sqlite_master WHERE name='kblink_log_samples_del'").fetchone()
    db.close()
    assert n[0] == 1


def test_killed_sync_is_repaired(trawl, tmp_path):
    """kill -9 in the middle of a sync (the first, a full pass; then an
    incremental one of a signature moved for every sample); the next sync
    completes the work: the full pass after it stores nothing."""
    n = 400
    d = tmp_path / "many"
    d.mkdir()
    for i in range(n):
        (d / ("m%04d.bin" % i)).write_bytes(b"many samples %d" % i)
    files = sorted(d.iterdir())
    trawl.run("add", "--signature", "Many", "--quiet", "--no-index", *files, check=0)

    def kill_mid_sync(change):
        delay = 0.4
        for attempt in range(8):
            change(attempt)
            p = subprocess.Popen(trawl.cmd("kb", "sync", "--json"), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            time.sleep(delay)
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
                return
            delay /= 2        # it finished first: kill sooner, after a new change
        pytest.fail("no sync was still running when killed")

    def move(attempt):
        trawl.run("add", "--signature", "Moved%d" % attempt, "--quiet", "--no-index", *files, check=0)

    for change in (lambda attempt: attempt and move(attempt), move):
        kill_mid_sync(change)
        st = sync(trawl)
        full = sync(trawl, "--full")
        assert full["added"] == full["updated"] == full["retired"] == 0, (st, full)
        objs = export(trawl)
        no_dangling(objs)
        assert len([o for o in objs.values() if o["type"] == "file"]) == n
        mal = [o for o in objs.values() if o["type"] == "malware" and not o.get("revoked")]
        assert len(mal) == 1 and len(mal[0]["sample_refs"]) == n


def test_triggers_survive_a_table_migration(linked, tmp_path):  # noqa: F811
    """A module recreating its table the way SQLite migrations do (create,
    copy, drop, rename) is not broken by kblink's triggers, and the next sync
    recreates the dropped trigger with a full pass."""
    import sqlite3
    sync(linked)
    db = sqlite3.connect(os.path.join(linked.data, "trawl.db"))
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name='samples'").fetchone()[0]
    db.executescript(
        "PRAGMA foreign_keys=OFF; BEGIN;" +
        sql.replace("samples(", "samples_new(", 1) + ";"
        "INSERT INTO samples_new SELECT * FROM samples;"
        "DROP TABLE samples;"
        "ALTER TABLE samples_new RENAME TO samples;"
        "COMMIT;")
    db.close()
    st = sync(linked)
    assert st["full"] is True
    (tmp_path / "e.bin").write_bytes(b"after the migration")
    linked.run("add", "--signature", "Later", "--no-index", tmp_path / "e.bin", check=0)
    st = sync(linked)
    assert_same_as_full(linked, st)
