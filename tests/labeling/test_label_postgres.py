"""The label store on SQLite and on a real PostgreSQL: the same core behaviour on both backends,
two writer processes at once and kill -9 while writing lose nothing, and a whole project (init,
answers, a round, the CLI) on PostgreSQL.

The PostgreSQL server is a throw-away cluster made by ``initdb`` in a temporary folder, reached
through a unix socket only (no TCP port); as root it runs as the ``postgres`` user (PostgreSQL
refuses to run as root). Without the binaries (Debian's ``postgresql``, which
``scripts/setup.sh`` installs) or psycopg the PostgreSQL cases are skipped, saying why."""

import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest
from label_helpers import (
    DIGIT_CLASSES,
    ServeProcess,
    http_request,
    subprocess_env,
    true_label,
    write_digit_pngs,
)

from skal.labeling.store import LabelStore, NotYourAnswerError

CLASSES = ["cat", "dog", "bird"]


def _pg_bin():
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(os.path.realpath(found))
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(candidates[-1]) if candidates else None


class _Cluster:
    """``initdb`` + ``pg_ctl start`` on a temporary folder; ``url(db)`` for a new database."""

    def __init__(self):
        self.bin = _pg_bin()
        if self.bin is None:
            pytest.skip("PostgreSQL's initdb/pg_ctl are not installed (Debian: apt-get install "
                        "postgresql; scripts/setup.sh does it as root)")
        pytest.importorskip("psycopg", reason="psycopg 3 is not installed (the test extra)")
        self.prefix = []
        self.root = tempfile.mkdtemp(prefix="skalpg")  # short: a socket path has <= 107 bytes
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no 'postgres' user to run the server")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.data = os.path.join(self.root, "data")
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "skal", "-E", "UTF8",
                  "--no-sync")
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.root, "log"), "-w",
                  "-o", f"-k {self.root} -c listen_addresses='' -c max_connections=40", "start")
        self.n = 0

    def _run(self, tool, *args):
        subprocess.run([*self.prefix, os.path.join(self.bin, tool), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def url(self, name="postgres"):
        return f"postgresql:///{name}?host={self.root}&user=skal"

    def new_database(self):
        import psycopg

        self.n += 1
        name = f"t{self.n}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self):
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    c = _Cluster()
    yield c
    c.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    if request.param == "sqlite":
        return os.fspath(tmp_path / "skal.db")
    return request.getfixturevalue("cluster").new_database()


@pytest.fixture
def store(location, tmp_path):
    s = LabelStore.create(location, CLASSES, {"batch_size": 4}, lock_dir=tmp_path)
    s.update_images(add=[(f"img{i}.png", f"{i:064x}", 8, 8, "dog" if i == 5 else None)
                         for i in range(8)])
    round_id = s.begin_round("random_sampling", None, {})
    s.finish_round(round_id, [(i, None, None, None) for i in (1, 2, 3, 4)], n_labeled=1,
                   n_train=0, n_holdout=0, accuracy=None)
    yield s
    s.close()


def _standing(store):
    return {r["image_id"]: (r["kind"], r["label"], r["annotator"]) for r in store.current()}


# ---------------------------------------------------------------------------- both backends
def test_answers_votes_and_undo(store):
    assert store.backend in ("sqlite", "postgresql")
    assert _standing(store) == {6: ("label", "dog", "import")}
    a1 = store.add_answer(1, "label", "cat", annotator="alice", source="t", view_ms=900)
    store.add_answer(1, "label", "dog", annotator="bob", source="t")
    assert _standing(store)[1] == ("label", "cat", "alice")  # a tie: the first label
    store.add_answer(1, "label", "dog", annotator="carol", source="t")
    assert _standing(store)[1] == ("label", "dog", "bob")
    store.add_answer(6, "label", "bird", annotator="alice", source="t")  # over the import
    assert _standing(store)[6] == ("label", "bird", "alice")
    store.add_answer(2, "skip", annotator="bob", source="t")
    assert _standing(store)[2] == ("skip", None, "bob")
    with pytest.raises(NotYourAnswerError, match="undo only their own"):
        store.undo(annotator="bob", source="t", image_id=6)
    assert store.undo(annotator="carol", source="t")["image_id"] == 1
    assert _standing(store)[1] == ("label", "cat", "alice")
    assert store.label_counts() == {"cat": 1, "dog": 0, "bird": 1}
    rows = store.answers()
    assert [r["kind"] for r in rows][-1] == "undo" and rows[1]["view_ms"] == 900
    assert rows[1]["id"] == a1 and dict(rows[1])["annotator"] == "alice"
    assert sorted(store.vote_triples()) == [(1, "alice", "cat"), (1, "bob", "dog"),
                                            (6, "alice", "bird")]
    assert store.integrity_check() == "ok"


def test_a_rejected_answer_writes_nothing_and_a_resent_one_is_stored_once(store):
    before = len(store.answers())
    for call, error in (
            (lambda: store.add_answer(1, "label", "cow", annotator="a", source="t"),
             "'cow' is not one of the project's classes"),
            (lambda: store.add_answer(999, "label", "cat", annotator="a", source="t"),
             "There is no image with id 999"),
            (lambda: store.add_answer(2**64, "label", "cat", annotator="a", source="t"),
             "There is no image with id"),
            (lambda: store.add_answer(1, "label", "cat", annotator="a", source="t",
                                      view_ms=-5), "view_ms must be None or an int")):
        with pytest.raises(ValueError, match=error):
            call()
    assert len(store.answers()) == before
    first = store.add_answer(3, "label", "cat", annotator="a", source="t", client_id="x-1")
    assert store.add_answer(3, "label", "cat", annotator="a", source="t",
                            client_id="x-1") == first
    with pytest.raises(ValueError, match="already names answer"):
        store.add_answer(3, "label", "dog", annotator="a", source="t", client_id="x-1")
    assert len(store.answers()) == before + 1


def test_tokens_and_assignment(store):
    token = store.add_annotator("alice")
    assert store.annotator_for_token(token) == "alice" and store.is_registered("alice")
    assert store.annotator_for_token("nope") is None
    round_id = store.latest_done_round()["id"]
    assert store.assign(round_id, "alice", size=2, now=10.0) == [1, 2]
    assert store.assign(round_id, "bob", size=2, now=10.0) == [3, 4]
    assert store.assign(round_id, "carol", size=2, overlap=2, now=10.0) == [1, 2]
    assert store.assign(round_id, "dave", size=2, overlap=2, now=10.0) == [3, 4]
    assert store.assign(round_id, "erin", size=2, overlap=2, now=10.0) == []
    assert store.assign(round_id, "erin", size=2, overlap=2, timeout=5.0, now=20.0) == [1, 2]


# ---------------------------------------------------------------------------- processes
_WRITER = textwrap.dedent("""
    import os, sys, time
    from skal.labeling.store import LabelStore
    location, lock_dir, annotator, n, go = sys.argv[1:6]
    store = LabelStore(location, lock_dir=lock_dir)
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.002)
    ids = [r["id"] for r in store.images()]
    classes = store.classes()
    for i in range(int(n)):
        image_id = ids[i % len(ids)]
        answer = store.add_answer(image_id, "label", classes[i % len(classes)],
                                  annotator=f"{annotator}{i}", source="test",
                                  client_id=f"{annotator}-{i}")
        print(answer, flush=True)  # printed only once committed
""")


def _writer(tmp_path, location, annotator, n, go):
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    return subprocess.Popen([sys.executable, str(script), location, str(tmp_path), annotator,
                             str(n), str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=subprocess_env())


def test_two_writers_at_once_and_kill_9_lose_nothing(store, location, tmp_path):
    go = tmp_path / "go"
    procs = [_writer(tmp_path, location, name, 60, go) for name in ("a", "b")]
    for p in procs:
        assert p.stdout.readline() == "ready\n", p.stderr.read()
    go.write_text("")
    acknowledged = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        acknowledged += [int(x) for x in out.split()]
    assert len(acknowledged) == 120
    # a third writer killed -9 in the middle: what it printed is stored
    killed = _writer(tmp_path, location, "k", 100000, go)
    assert killed.stdout.readline() == "ready\n"
    printed = [int(killed.stdout.readline()) for _ in range(30)]
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(30)
    printed += [int(x) for x in killed.stdout.read().split()]
    killed.stdout.close()
    killed.stderr.close()
    stored = {r["id"] for r in store.answers()}
    assert set(acknowledged) | set(printed) <= stored
    # the import, the 120, and what the killed one committed (maybe one it had not printed)
    assert len(stored) - 121 in (len(set(printed)), len(set(printed)) + 1)
    votes = [r for r in store.votes() if r["annotator"].startswith(("a", "b"))]
    assert len(votes) == 120  # every acknowledged answer is its annotator's vote
    assert store.integrity_check() == "ok"


def test_a_restarted_server_loses_nothing_and_the_store_reconnects(cluster, tmp_path):
    url = cluster.new_database()
    store = LabelStore.create(url, CLASSES, {}, lock_dir=tmp_path)
    restart = ("pg_ctl", "-D", cluster.data, "-m", "immediate", "-w", "restart", "-o",
               f"-k {cluster.root} -c listen_addresses='' -c max_connections=40")
    try:
        store.update_images(add=[("a.png", "0" * 64, 8, 8, None)])
        first = store.add_answer(1, "label", "cat", annotator="alice", source="t")
        cluster._run(*restart)  # -m immediate: no clean shutdown, recovery from the WAL
        # a read and a write after each restart: each on a new connection, nothing lost
        assert [r["id"] for r in store.answers()] == [first]
        second = store.add_answer(1, "label", "dog", annotator="bob", source="t")
        cluster._run(*restart)
        assert store.undo(annotator="bob", source="t")["id"] == second
        assert [r["kind"] for r in store.answers()] == ["label", "label", "undo"]
        assert store.integrity_check() == "ok"
    finally:
        store.close()


# ---------------------------------------------------------------------------- a project on PG
def test_a_project_on_postgresql(cluster, tmp_path):
    from skal.labeling import Project

    url = cluster.new_database()
    write_digit_pngs(tmp_path / "png", 30, size=8)
    tiny = dict(batch_size=6, width=2, epochs=1, min_steps=0, mc_samples=2, holdout=0.0)
    with Project.init(tmp_path / "p", tmp_path / "png", DIGIT_CLASSES, store=url, **tiny) as p:
        assert p.store.backend == "postgresql"
        assert not os.path.exists(tmp_path / "p" / "skal.db")
        assert oct(os.stat(tmp_path / "p" / "skal.store").st_mode & 0o777) == "0o600"
        for item in p.my_items("alice"):
            p.label(item.image_id, true_label(item.path), annotator="alice")
        for r in p.store.images()[:12]:
            p.label(r["id"], true_label(r["path"]), annotator="bob")
        result = p.train_and_query()
        assert result["status"] == "done" and result["n_train"] >= 12
        assert len(p.next_batch()) == 6
    with Project(tmp_path / "p") as again:  # opened through PROJECT/skal.store
        assert again.store.backend == "postgresql" and len(again.rounds()) == 2
        assert again.agreement()["n_overlap"] >= 1
    with pytest.raises(FileExistsError, match="already holds a labelling project"):
        Project.init(tmp_path / "q", tmp_path / "png", DIGIT_CLASSES, store=url, **tiny)
    assert not os.path.exists(tmp_path / "q")  # nothing left behind


def test_the_cli_on_postgresql(cluster, tmp_path):
    url = cluster.new_database()
    write_digit_pngs(tmp_path / "png", 10, size=8)

    def skal(*args):
        return subprocess.run([sys.executable, "-m", "skal", "label", *args],
                              capture_output=True, text=True, env=subprocess_env(), timeout=300)

    done = skal("init", str(tmp_path / "p"), "--images", str(tmp_path / "png"),
                "--classes", ",".join(DIGIT_CLASSES), "--batch-size", "4", "--store", url)
    assert done.returncode == 0, done.stderr
    added = skal("annotator", "add", str(tmp_path / "p"), "alice")
    assert added.returncode == 0, added.stderr
    token = added.stdout.split("annotator_token=")[1].split()[0]
    listed = skal("annotator", "list", str(tmp_path / "p"))
    assert "alice" in listed.stdout and token not in listed.stdout
    unlocked = skal("unlock", str(tmp_path / "p"))
    assert unlocked.returncode == 0 and "nothing to unlock" in unlocked.stdout, unlocked.stderr
    with ServeProcess(tmp_path / "p", "--store", url) as served:
        status, _, payload = http_request(served.base, "GET", "/api/state")
        assert status == 200 and len(json.loads(payload)["batch"]) == 4
        status, _, payload = http_request(served.base, "POST", "/api/answers",
                                          body={"image_id": 1, "label": "1"},
                                          headers={"X-Skal-Annotator-Token": token})
        assert status == 200, payload
    store = LabelStore(url, lock_dir=tmp_path / "p")
    try:
        assert [(r["image_id"], r["annotator"], r["label"]) for r in store.votes()] == [
            (1, "alice", "1")]
    finally:
        store.close()
    bad = skal("init", str(tmp_path / "x"), "--images", str(tmp_path / "png"), "--store",
               "mysql://nope")
    assert bad.returncode == 2 and "argument --store: expected a postgresql:// URL" in bad.stderr
    assert not os.path.exists(tmp_path / "x")
