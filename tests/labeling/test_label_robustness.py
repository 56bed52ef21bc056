"""skal label under abuse and accidents: no 500s, no stuck projects (issue 28, item 3).

Hostile JSON (deep nesting, huge integers, loosely typed fields), stale ``running`` rounds (pid
reuse, another host) and the round lock, images deleted or added after ``init`` (rescan), links
and copies (content registered once), file names that cannot be served, half-open connections,
spreadsheet formulas in the CSV export, the printed URL of a wildcard address, and the
cross-origin policy of the images. Every request goes to 127.0.0.1, bounded in count and time.
"""

import csv
import fcntl
import json
import os
import shutil
import socket
import sqlite3
import time

import pytest
from label_helpers import DIGIT_CLASSES, http_request, true_label, write_digit_pngs

pytest.importorskip("starlette", reason="the web page needs the 'label' extra")
pytest.importorskip("uvicorn", reason="the web page needs the 'label' extra")

from skal.cli import main
from skal.labeling import Project
from skal.labeling.app import start_server

TINY = dict(batch_size=4, width=2, epochs=1, min_steps=0, mc_samples=2, holdout=0.0)


@pytest.fixture
def project(tmp_path):
    write_digit_pngs(tmp_path / "png", 12, size=8)
    p = Project.init(tmp_path / "project", tmp_path / "png", DIGIT_CLASSES, **TINY)
    yield p
    p.close()


@pytest.fixture
def server(project):
    with start_server(project) as running:
        yield running


def _post(running, path, body=None, raw=None):
    headers = {"Content-Type": "application/json"} if raw is not None else None
    status, _, payload = http_request(running.base, "POST", path, body, headers=headers,
                                      raw_body=raw)
    return status, json.loads(payload)


def _label_batch(project, annotator="me"):
    for item in project.next_batch():
        project.label(item.image_id, true_label(item.path), annotator=annotator)


def _wait_job(running, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = json.loads(http_request(running.base, "GET", "/api/job")[2])
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError("the round did not finish")


# ---------------------------------------------------------------------------- hostile JSON
def test_deep_json_and_huge_ids_get_a_4xx_with_a_message(server):
    project = server.project
    n_answers = len(project.store.answers())
    deep = b"[" * 30_000 + b"]" * 30_000
    deep_field = b'{"image_id": 1, "label": "1", "x": ' + deep + b"}"
    for raw in (deep, deep_field):
        for path in ("/api/answers", "/api/undo", "/api/train"):
            status, payload = _post(server, path, raw=raw)
            assert status == 400 and "JSON" in payload["detail"], (path, status, payload)
    for image_id in (2**70, -(2**70), 2**63, 10**400):
        status, payload = _post(server, "/api/answers", {"image_id": image_id, "label": "1"})
        assert status == 422 and "image_id" in payload["detail"], (image_id, status)
    status, payload = _post(server, "/api/answers", {"image_id": 2**63 - 1, "label": "1"})
    assert status == 404 and "no image" in payload["detail"]
    assert len(project.store.answers()) == n_answers
    # the Python API says what is wrong too (no OverflowError from SQLite)
    with pytest.raises(KeyError, match="not an image of this project"):
        project.label(2**70, "1")
    with pytest.raises(ValueError, match="no image with id"):
        project.store.add_answer(2**70, "label", "1", annotator="a", source="api")


@pytest.mark.parametrize("body", [
    {"skip": "false"}, {"skip": "true"}, {"skip": 1}, {"skip": 0, "label": "1"},
    {"skip": [], "label": "1"}, {"skip": True, "label": "1"}, {"skip": True, "label": "cat"},
    {"label": "1", "annotator": 0}, {"label": "1", "annotator": ""},
    {"label": "1", "annotator": ["me"]},
])
def test_answer_fields_are_strictly_typed(server, body):
    project = server.project
    n_answers = len(project.store.answers())
    image_id = project.next_batch()[0].image_id
    status, payload = _post(server, "/api/answers", dict(body, image_id=image_id))
    assert status == 422 and payload["detail"], (body, status, payload)
    assert len(project.store.answers()) == n_answers


def test_well_typed_skip_and_label_still_work(server):
    project = server.project
    a, b, c = [it.image_id for it in project.next_batch()[:3]]
    assert _post(server, "/api/answers", {"image_id": a, "skip": True})[0] == 200
    assert _post(server, "/api/answers", {"image_id": b, "skip": True, "label": None})[0] == 200
    assert _post(server, "/api/answers", {"image_id": c, "skip": False, "label": "1"})[0] == 200
    assert _post(server, "/api/answers", {"image_id": c, "skip": None, "label": "2",
                                          "annotator": None})[0] == 200
    kinds = [(r["image_id"], r["kind"], r["label"]) for r in project.store.answers()]
    assert kinds == [(a, "skip", None), (b, "skip", None), (c, "label", "1"), (c, "label", "2")]


@pytest.mark.parametrize("body", [{"strategy": 0}, {"strategy": ""}, {"strategy": ["bald"]},
                                  {"strategy": {"x": 1}}])
def test_train_strategy_is_strictly_typed(server, body):
    status, payload = _post(server, "/api/train", body)
    assert status == 422 and "strategy" in payload["detail"], (body, status)
    assert server.service.status()["state"] == "idle"


# ---------------------------------------------------------------------------- stale rounds
def _forge_running_round(project, pid, host):
    conn = sqlite3.connect(os.path.join(project.path, "skal.db"))
    with conn:
        round_id = conn.execute(
            "INSERT INTO rounds (status, strategy, model, params, pid, host, started_at, "
            "last_answer_id) VALUES ('running', 'bald', 'resnet18', '{}', ?, ?, ?, 0)",
            (pid, host, time.time())).lastrowid
    conn.close()
    return round_id


@pytest.mark.parametrize("pid, host", [(1, socket.gethostname()),  # alive, not a skal round
                                       (os.getpid(), socket.gethostname()),
                                       (4_000_000, "another-host.example")])
def test_a_stale_running_round_never_blocks_training(project, pid, host, capsys):
    _label_batch(project)
    stale = _forge_running_round(project, pid, host)
    # the open project (the server's) sees it is stale when a round starts
    with start_server(project) as running:
        status, payload = _post(running, "/api/train", {})
        assert status == 202, payload
        job = _wait_job(running)
        assert job["state"] == "done", job
    rounds = {r["id"]: r for r in project.rounds()}
    assert rounds[stale]["status"] == "interrupted" and rounds[job["round"]]["status"] == "done"
    # and so does the command line, without a traceback
    stale = _forge_running_round(project, pid, host)
    assert main(["label", "train", project.path]) == 0, capsys.readouterr().err
    assert "round" in capsys.readouterr().out
    assert {r["id"]: r for r in project.rounds()}[stale]["status"] == "interrupted"


def test_a_round_held_by_a_live_process_blocks_and_unlock_clears_a_stale_one(project, capsys):
    _label_batch(project)
    round_id = _forge_running_round(project, 1, socket.gethostname())
    lock_path = os.path.join(project.path, "round.lock")
    holder = open(lock_path, "a+")  # another process running a round holds this lock
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RuntimeError, match="already running"):
            project.train_and_query()
        assert main(["label", "train", project.path]) == 2
        err = capsys.readouterr().err
        assert "already running" in err and "Traceback" not in err
        assert main(["label", "unlock", project.path]) == 2
        assert "still running" in capsys.readouterr().err
        with start_server(project) as running:
            status, payload = _post(running, "/api/train", {})
            assert status == 409 and "already running" in payload["detail"]
        assert project.store.round(round_id)["status"] == "running"
    finally:
        holder.close()  # the process ends: the kernel releases its lock
    assert main(["label", "unlock", project.path]) == 0
    out = capsys.readouterr().out
    assert f"round {round_id}" in out and "interrupted" in out
    assert project.store.round(round_id)["status"] == "interrupted"
    assert main(["label", "unlock", project.path]) == 0
    assert "no round is running" in capsys.readouterr().out


def test_an_older_project_database_is_migrated(project):
    _label_batch(project)
    labels = project.labels()
    answers = [dict(r) for r in project.store.answers()]
    project.close()
    db = os.path.join(project.path, "skal.db")
    conn = sqlite3.connect(db, isolation_level=None)  # back to schema version 1's images table
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.executescript("""
        BEGIN;
        CREATE TABLE images_v1 (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE,
            sha256 TEXT NOT NULL, height INTEGER, width INTEGER, added_at REAL NOT NULL);
        INSERT INTO images_v1 SELECT id, path, sha256, height, width, added_at FROM images;
        DROP TABLE images;
        ALTER TABLE images_v1 RENAME TO images;
        UPDATE meta SET value = '1' WHERE key = 'schema_version';
        COMMIT;
    """)
    conn.close()
    with Project(project.path) as reopened:
        assert reopened.labels() == labels
        assert [dict(r) for r in reopened.store.answers()] == answers
        assert reopened.store.integrity_check() == "ok"
        assert int(reopened.store.meta("schema_version")) >= 2
        assert reopened.store._conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert reopened.rescan().added == []
        # a retired image keeps its path while a new file takes it
        path = next(iter(labels))
        full = os.path.join(reopened.image_root, path)
        os.remove(full)
        reopened.rescan()
        write_digit_pngs(os.path.dirname(full), 1, size=8, start=30)
        os.replace(os.path.join(os.path.dirname(full), sorted(
            n for n in os.listdir(os.path.dirname(full)) if n.startswith("d0030"))[0]), full)
        assert reopened.rescan().added == [path]
        assert len(reopened.store.images(include_retired=True)) == 13
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(ValueError, match="newer version of skal"):
        Project(project.path)


# ---------------------------------------------------------------------------- rescan
def test_rescan_registers_new_files_and_retires_missing_ones_keeping_answers(project, capsys):
    root = project.image_root
    _label_batch(project)
    labelled = sorted(project.labels())
    unlabelled = sorted(r["path"] for r in project.store.images()
                        if r["path"] not in labelled)
    os.remove(os.path.join(root, labelled[0]))
    os.remove(os.path.join(root, unlabelled[0]))
    with pytest.raises(ValueError, match="missing from the image folder.*rescan"):
        project.train_and_query()
    answers = [dict(r) for r in project.store.answers()]

    new = write_digit_pngs(root, 3, size=8, start=20)
    sub = write_digit_pngs(os.path.join(root, "7"), 1, size=8, start=40)  # a class sub-folder
    assert main(["label", "rescan", project.path, "--dry-run"]) == 0
    assert "would" in capsys.readouterr().out
    assert len(project.store.images()) == 12  # a dry run writes nothing

    report = project.rescan()
    assert sorted(report.added) == sorted(list(new) + ["7/" + name for name in sub])
    assert sorted(report.retired) == sorted([labelled[0], unlabelled[0]])
    active = {r["path"] for r in project.store.images()}
    assert labelled[0] not in active and unlabelled[0] not in active and set(new) <= active
    # the answers are all still there; the retired image's label is out of use
    assert [dict(r) for r in project.store.answers()][:len(answers)] == answers
    imported = project.store.answers()[-1]  # the sub-folder's label
    assert imported["annotator"] == "import" and imported["label"] == "7"
    assert labelled[0] not in project.labels() and len(project.labels()) == len(labelled)
    retired_id = project.store.image(path=labelled[0])["id"]
    with pytest.raises(ValueError, match="retired"):
        project.label(retired_id, "1")

    result = project.train_and_query()  # the project is unstuck
    assert result["status"] == "done"
    assert retired_id not in {it.image_id for it in project.next_batch()}

    # the file comes back (under another name): its image and its label come back with it
    shutil.copy(os.path.join(root, labelled[1]), os.path.join(root, "renamed.png"))
    os.remove(os.path.join(root, labelled[1]))
    moved_label = project.labels()[labelled[1]]
    report = project.rescan()
    assert report.moved == [(labelled[1], "renamed.png")] and report.added == []
    assert project.labels()["renamed.png"] == moved_label
    assert main(["label", "add", project.path]) == 0  # `add` is `rescan`
    assert "0 added" in capsys.readouterr().out


def test_a_retired_image_is_not_served_nor_answered_on_the_page(project):
    item = project.next_batch()[0]
    os.remove(os.path.join(project.image_root, item.path))
    project.rescan()
    with start_server(project) as running:
        assert http_request(running.base, "GET", "/images/" + item.path)[0] == 404
        status, payload = _post(running, "/api/answers", {"image_id": item.image_id,
                                                         "label": "1"})
        assert status == 409 and "retired" in payload["detail"]
        state = json.loads(http_request(running.base, "GET", "/api/state")[2])
        assert item.image_id not in {b["image_id"] for b in state["batch"]}
        assert state["n_images"] == 11


def test_a_file_and_links_or_copies_of_it_are_registered_once(tmp_path):
    images = tmp_path / "png"
    write_digit_pngs(images, 5, size=8)
    os.symlink(images / "d0000_0.png", images / "link.png")
    shutil.copy(images / "d0001_1.png", images / "copy.png")
    with pytest.warns(UserWarning, match="same content"):
        project = Project.init(tmp_path / "p", images, DIGIT_CLASSES, **TINY)
    with project:
        hashes = [r["sha256"] for r in project.store.images()]
        assert len(hashes) == len(set(hashes)) == 5
        paths = {r["path"] for r in project.store.images()}
        assert "link.png" not in paths and "d0000_0.png" in paths  # the file, not the link
        assert len({"copy.png", "d0001_1.png"} & paths) == 1
        os.symlink(images / "d0002_2.png", images / "link2.png")
        report = project.rescan()
        assert report.added == [] and report.retired == []
        assert set(report.duplicates) == {"link.png", "link2.png"} | ({"copy.png", "d0001_1.png"}
                                                                       - paths)
        assert len(project.store.images()) == 5


def test_file_names_that_cannot_be_served_are_refused(tmp_path):
    images = tmp_path / "png"
    write_digit_pngs(images, 5, size=8)
    names = sorted(os.listdir(images))
    os.rename(images / names[0], images / "bad\nname.png")
    os.rename(os.fsencode(images / names[1]), os.fsencode(images) + b"/\xff\xfe.png")
    with pytest.warns(UserWarning, match="cannot be served"):
        project = Project.init(tmp_path / "p", images, DIGIT_CLASSES, **TINY)
    with project:
        paths = [r["path"] for r in project.store.images()]
        assert len(paths) == 3 and all(p.isprintable() for p in paths)
        with start_server(project) as running:
            for path in paths:
                status = http_request(running.base, "GET", "/images/" + path)[0]
                assert status == 200, path
        with pytest.warns(UserWarning, match="cannot be served"):
            assert project.rescan().added == []


# ---------------------------------------------------------------------------- connections
def test_half_open_connections_are_closed_and_do_not_block_others(project):
    with start_server(project, header_timeout=1.0, body_timeout=1.0) as running:
        port = int(running.base.rsplit(":", 1)[1])
        socks = []
        try:
            for _ in range(70):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never ends
                socks.append(s)
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))  # silent
            kept = socket.create_connection(("127.0.0.1", port), timeout=5)  # keep-alive
            socks.append(kept)
            kept.sendall(b"GET /api/job HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert kept.recv(65536).startswith(b"HTTP/1.1 200")
            kept.sendall(b"GET /api/job HTTP/1.1\r\n")  # then the next request stalls
            body = socket.create_connection(("127.0.0.1", port), timeout=5)  # a slow body
            socks.append(body)
            body.sendall(b"POST /api/undo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                         b"application/json\r\nContent-Length: 100\r\n\r\n{")
            started = time.monotonic()
            status, _, _ = http_request(running.base, "GET", "/api/state", timeout=5)
            assert status == 200 and time.monotonic() - started < 2
            deadline = started + 6
            for i, s in enumerate(socks):
                s.settimeout(max(0.1, deadline - time.monotonic()))
                data = b""
                try:
                    while True:  # read to the end of what the server sends, then EOF
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except ConnectionResetError:
                    pass
                except socket.timeout:
                    raise AssertionError(f"connection {i} was not closed by the server")
                if s is body:
                    assert data.startswith(b"HTTP/1.1 408"), data
            assert time.monotonic() - started < 6
            status, _, _ = http_request(running.base, "GET", "/api/state", timeout=5)
            assert status == 200
        finally:
            for s in socks:
                s.close()


# ---------------------------------------------------------------------------- CSV export
def test_csv_export_escapes_formulas_but_paths_and_labels_still_match(tmp_path, capsys):
    images = tmp_path / "png"
    write_digit_pngs(images, 4, size=8)
    names = sorted(os.listdir(images))
    os.rename(images / names[0], images / "=1+1.png")
    os.rename(images / names[1], images / " @x.png")
    project = Project.init(tmp_path / "p", images, DIGIT_CLASSES, **dict(TINY, batch_size=4))
    annotators = [" =SUM(1)", "|calc", "\uff1dSUM(1)", "-x"]
    with project:
        for row, annotator in zip(project.store.images(), annotators):
            project.label(row["id"], "3", annotator=annotator)
        out = tmp_path / "labels.csv"
        project.export_csv(out)
        rows = list(csv.DictReader(open(out, newline="", encoding="utf-8")))
        assert {r["annotator"] for r in rows} == {"'" + a for a in annotators}
        assert {r["label"] for r in rows} == {"3"}
        root = project.image_root
        for r in rows:  # every path names its file, relative to the image folder
            assert os.path.isfile(os.path.join(root, r["path"]))
            assert not r["path"].startswith(("=", "@", " ", "'"))
        assert {r["path"] for r in rows} >= {"./=1+1.png", "./ @x.png"}
        assert os.path.samefile(os.path.join(root, "./=1+1.png"), os.path.join(root, "=1+1.png"))
        raw = tmp_path / "raw.csv"
        assert main(["label", "export", project.path, "--out", str(raw),
                     "--no-escape-formulas"]) == 0
        rows = list(csv.DictReader(open(raw, newline="", encoding="utf-8")))
        assert {r["annotator"] for r in rows} == set(annotators)
        assert {r["path"] for r in rows} >= {"=1+1.png", " @x.png"}
    with pytest.raises(ValueError, match="formula"):
        Project.init(tmp_path / "q", images, ["=1+1", "b"], **TINY)
    with pytest.raises(ValueError, match="formula"):
        Project.init(tmp_path / "q", images, ["@SUM(1)", "b"], **TINY)


# ---------------------------------------------------------------------------- URL, headers
def test_a_wildcard_address_prints_a_reachable_url(project, monkeypatch, capsys):
    from skal.labeling import app as label_app

    host = socket.gethostname()
    assert label_app.page_url("0.0.0.0", 8123, "t k") == f"http://{host}:8123/?token=t%20k"
    assert label_app.page_url("::", 8123, None) == f"http://{host}:8123/"
    assert label_app.page_url("127.0.0.1", 8123, None) == "http://127.0.0.1:8123/"
    assert label_app.page_url("::1", 8123, None) == "http://[::1]:8123/"

    class _Server:
        def run(self, sockets):
            pass

    def fake_make_server(project, host, port, **kwargs):
        return _Server(), socket.socket(), label_app.page_url(host, 8123, "tok"), "tok"

    monkeypatch.setattr(label_app, "make_server", fake_make_server)
    assert main(["label", "serve", project.path, "--host", "0.0.0.0"]) == 0
    out = capsys.readouterr().out
    assert "http://0.0.0.0" not in out and f"http://{host}:8123/?token=tok" in out
    assert "replace" in out and "0.0.0.0" in out


def test_images_carry_a_same_origin_resource_policy(server):
    path = server.project.next_batch()[0].path
    for route in ("/images/" + path, "/", "/api/state", "/images/nothing.png"):
        _, headers, _ = http_request(server.base, "GET", route)
        assert headers.get("cross-origin-resource-policy") == "same-origin", route
