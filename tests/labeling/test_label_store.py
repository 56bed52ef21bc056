"""The SQLite store of a labelling project: transactions, undo, two writers at once, kill -9 in the
middle of writing answers and in the middle of a training round, and restart."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from label_helpers import DIGIT_CLASSES, subprocess_env, write_digit_pngs

from skal.labeling import Project
from skal.labeling.store import LabelStore

TINY = dict(batch_size=6, width=2, epochs=1, min_steps=0, mc_samples=2, holdout=0.0)


@pytest.fixture
def project(tmp_path):
    write_digit_pngs(tmp_path / "png", 40, size=8)
    p = Project.init(tmp_path / "project", tmp_path / "png", DIGIT_CLASSES, **TINY)
    yield p
    p.close()


def _db(project):
    return os.path.join(project.path, "skal.db")


def test_wal_mode_and_full_sync(project):
    conn = sqlite3.connect(_db(project))
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    assert project.store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert project.store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_a_rejected_answer_writes_nothing(project):
    before = len(project.store.answers())
    with pytest.raises(ValueError, match=r"'cat' is not one of the project's classes"):
        project.label(1, "cat")
    with pytest.raises(ValueError, match="There is no image with id 999"):
        project.store.add_answer(999, "label", "1", annotator="a", source="api")
    with pytest.raises(KeyError, match="not an image of this project"):
        project.label("no/such.png", "1")
    assert len(project.store.answers()) == before
    # the database itself refuses a label outside the classes (foreign key), whoever writes
    conn = sqlite3.connect(_db(project))
    conn.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO answers (image_id, kind, label, annotator, source, created_at)"
                     " VALUES (1, 'label', 'cat', 'x', 'sql', 0)")
    conn.close()


def test_undo_restores_the_previous_answer_and_keeps_the_log(project):
    a1 = project.label(1, "3", annotator="ann")
    project.label(1, "5", annotator="ann")
    project.skip(2, annotator="ann")
    project.label(3, "7", annotator="bob")
    assert project.undo(annotator="ann") == 2  # the skip
    assert 2 not in {r["image_id"] for r in project.store.current()}
    assert project.undo(annotator="ann") == 1
    current = {r["image_id"]: (r["kind"], r["label"], r["answer_id"])
               for r in project.store.current()}
    assert current[1] == ("label", "3", a1)
    assert current[3] == ("label", "7", current[3][2])  # bob's answer untouched
    assert project.undo(annotator="ann") == 1
    assert project.undo(annotator="ann") is None  # nothing left to undo
    assert 1 not in {r["image_id"] for r in project.store.current()}
    kinds = [r["kind"] for r in project.store.answers()]
    assert kinds == ["label", "label", "skip", "label", "undo", "undo", "undo"]


def test_a_skipped_image_leaves_the_pool_until_the_skip_is_undone(project):
    n = len(project._pool_ids())
    project.skip(4, annotator="a")
    assert 4 not in project._pool_ids() and len(project._pool_ids()) == n - 1
    project.undo(annotator="a")
    assert 4 in project._pool_ids()


# The writer loads store.py alone (it imports only the standard library), so it starts in a
# fraction of a second instead of importing torch through skal/__init__.py.
_WRITER = textwrap.dedent("""
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("store", sys.argv[4])
    store_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(store_module)
    LabelStore = store_module.LabelStore
    import os, time
    db, annotator, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[5]
    pause = float(sys.argv[6])
    store = LabelStore(db)
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    while not os.path.exists(go) and time.monotonic() < deadline:  # start together
        time.sleep(0.002)
    ids = [r["id"] for r in store.images()]
    classes = store.classes()
    for i in range(n):
        image_id = ids[i % len(ids)]
        label = classes[i % len(classes)]
        answer = store.add_answer(image_id, "label", label, annotator=annotator, source="test")
        print(answer, image_id, label, flush=True)  # printed only once committed
        time.sleep(pause)
""")


def _writer(tmp_path, project, annotator, n, go=None, pause=0.0):
    """A writer process; it starts writing once the file ``go`` exists (now, when None) and
    waits ``pause`` seconds after each answer."""
    go = go or project.path  # exists
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    import skal.labeling.store as store_module

    return subprocess.Popen([sys.executable, str(script), _db(project), annotator, str(n),
                             store_module.__file__, str(go), str(pause)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=subprocess_env())


def test_two_processes_writing_at_once_lose_nothing(tmp_path, project):
    go = tmp_path / "go"
    # a short pause after each answer lets the other writer in: the two runs overlap for sure
    procs = [_writer(tmp_path, project, name, 100, go, pause=0.002) for name in ("alice", "bob")]
    for p in procs:  # both connected and waiting
        assert p.stdout.readline() == "ready\n"
    go.write_text("")
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    acked = {int(line.split()[0]) for out, _ in outputs for line in out.splitlines()}
    assert len(acked) == 200
    rows = project.store.answers()
    assert {r["id"] for r in rows} >= acked
    assert sum(r["annotator"] == "alice" for r in rows) == 100
    assert sum(r["annotator"] == "bob" for r in rows) == 100
    alice = [r["id"] for r in rows if r["annotator"] == "alice"]
    bob = [r["id"] for r in rows if r["annotator"] == "bob"]
    assert min(bob) < max(alice) and min(alice) < max(bob)  # they did write at the same time
    assert project.store.integrity_check() == "ok"


def test_kill_9_while_writing_answers_loses_no_acknowledged_answer(tmp_path, project):
    n_before = len(project.store.answers())
    proc = _writer(tmp_path, project, "victim", 100_000)
    assert proc.stdout.readline() == "ready\n"
    acked = []
    deadline = time.monotonic() + 60
    while len(acked) < 100 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(tuple(line.split()))
    os.kill(proc.pid, signal.SIGKILL)  # in the middle of the loop, most likely mid-transaction
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) == 100

    reopened = Project(project.path)  # restart
    try:
        assert reopened.store.integrity_check() == "ok"
        rows = {r["id"]: r for r in reopened.store.answers()}
        # every acknowledged answer, plus at most the one being committed when the kill came
        assert len(rows) - n_before in (100, 101)
        for answer_id, image_id, label in acked:
            row = rows[int(answer_id)]
            assert (row["image_id"], row["label"], row["annotator"]) == (
                int(image_id), label, "victim")
        # `current` agrees with the log: each image's standing answer is its latest label
        latest = {}
        for r in rows.values():
            latest[r["image_id"]] = r["id"]
        assert {r["image_id"]: r["answer_id"] for r in reopened.store.current()} == latest
        # and work continues where it stopped
        new = reopened.label(1, "0", annotator="after")
        assert new > max(int(a) for a, _, _ in acked)
        assert len(reopened.next_batch()) == TINY["batch_size"]
    finally:
        reopened.close()


_TRAINER = textwrap.dedent("""
    import sys
    from skal.labeling import Project
    project = Project(sys.argv[1])
    def progress(phase, done, total):
        print(phase, done, total, flush=True)
    project.train_and_query(progress=progress)
    print("finished", flush=True)
""")


def test_kill_9_during_a_round_keeps_labels_and_finished_rounds(tmp_path, project):
    for item in project.next_batch():
        project.label(item.image_id, item.path.split("_")[1][0], annotator="a")
    project.train_and_query()  # round 2, finished
    done_before = [dict(r) for r in project.store.rounds()]
    labels_before = project.labels()
    batch_before = project.next_batch()
    project.configure(epochs=10_000)  # a round that runs until it is killed

    script = tmp_path / "trainer.py"
    script.write_text(_TRAINER)
    proc = subprocess.Popen([sys.executable, str(script), project.path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=subprocess_env())
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if not line or line.startswith("training 2 "):  # two epochs done
            break
    running = [r for r in project.store.rounds() if r["status"] == "running"]
    assert len(running) == 1 and running[0]["pid"] == proc.pid, seen
    with pytest.raises(RuntimeError, match="is already running"):
        project.store.begin_round("bald", "resnet18", {})  # a live round is not disturbed
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()

    reopened = Project(project.path)
    try:
        rounds = [dict(r) for r in reopened.store.rounds()]
        assert rounds[:-1] == done_before  # finished rounds untouched
        assert rounds[-1]["status"] == "interrupted" and rounds[-1]["checkpoint"] is None
        assert reopened.labels() == labels_before
        assert reopened.next_batch() == batch_before  # the batch of the last finished round
        leftovers = sorted(os.listdir(os.path.join(reopened.path, "models")))
        # no partial checkpoint; stopping and batch reports are written atomically (the killed
        # round's may exist whole, and is never shown: the page reads the last finished round's)
        assert [f for f in leftovers if not f.endswith((".stopping.json", ".batch.json"))] == [
            "round_0002.pkl"]
        assert "round_0002.batch.json" in leftovers  # the finished round's, written before done
        assert set(leftovers) - {"round_0002.pkl"} <= {
            "round_0002.stopping.json", "round_0003.stopping.json", "round_0002.batch.json",
            "round_0003.batch.json"}
        assert not [f for f in leftovers if f.endswith(".tmp") or ".tmp" in f]
        assert reopened.store.integrity_check() == "ok"
        reopened.configure(epochs=1)
        result = reopened.train_and_query()  # and the next round runs
        assert result["status"] == "done" and result["id"] == rounds[-1]["id"] + 1
    finally:
        reopened.close()


def test_store_refuses_other_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no labelling project database"):
        LabelStore(tmp_path / "missing.db")
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE meta (key, value)")
    with pytest.raises(ValueError, match="is not a skal labelling project database"):
        LabelStore(tmp_path / "other.db")
    (tmp_path / "garbage.db").write_bytes(b"not an SQLite file" * 100)
    with pytest.raises(ValueError, match="is not a skal labelling project database"):
        LabelStore(tmp_path / "garbage.db")
    with pytest.raises(FileNotFoundError, match="is not a skal labelling project"):
        Project(tmp_path)


def test_the_store_imports_only_the_standard_library():
    # the writers above load store.py on its own, without the package: the store's modules
    # (schema, backends, mixins) import neither numpy nor torch, nor psycopg before a URL opens
    code = ("import sys, skal.labeling.store; "
            "print(sorted(m for m in ('numpy', 'torch', 'psycopg') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
