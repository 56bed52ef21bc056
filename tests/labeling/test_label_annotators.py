"""Several annotators on one labelling project: nobody's answer replaces another's, undo takes
back only one's own, tokens, assignment with overlap and timeout, agreement, training on
aggregated labels, the v2 -> v3 migration, and the routes tried as an attacker would."""

import json
import os
import sqlite3

import pytest
from label_helpers import DIGIT_CLASSES, http_request, true_label, write_digit_pngs

from skal.labeling import Project
from skal.labeling.store import (
    SCHEMA_VERSION,
    AnnotatorError,
    LabelStore,
    NotYourAnswerError,
)

TINY = dict(batch_size=6, width=2, epochs=1, min_steps=0, mc_samples=2, holdout=0.0)
DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")


@pytest.fixture
def project(tmp_path):
    write_digit_pngs(tmp_path / "png", 24, size=8)
    p = Project.init(tmp_path / "project", tmp_path / "png", DIGIT_CLASSES, assign_size=2,
                     **TINY)
    yield p
    p.close()


def _standing(project):
    return {r["image_id"]: (r["kind"], r["label"], r["annotator"])
            for r in project.store.current()}


def test_a_second_annotator_answer_is_stored_beside_the_first(project):
    project.label(1, "3", annotator="alice")
    project.label(1, "5", annotator="bob")  # a tie: alice's label (given first) stands
    assert _standing(project)[1] == ("label", "3", "alice")
    votes = {(r["annotator"], r["label"]) for r in project.store.votes() if r["image_id"] == 1}
    assert votes == {("alice", "3"), ("bob", "5")}
    project.label(1, "5", annotator="carol")  # 2 against 1
    assert _standing(project)[1] == ("label", "5", "bob")
    # an annotator's new answer replaces only their own vote
    project.label(1, "3", annotator="bob")
    assert _standing(project)[1][1] == "3"
    assert len([r for r in project.store.votes() if r["image_id"] == 1]) == 3
    assert project.label_counts()["3"] == 1 and project.label_counts()["5"] == 0
    report = project.agreement()
    assert report["items"] == {1: pytest.approx(2 / 3)} and report["n_annotators"] == 3


def test_undo_takes_back_only_the_senders_own_answer(project):
    project.label(2, "4", annotator="alice")
    with pytest.raises(NotYourAnswerError, match=r"answers are 'alice''s: an annotator can undo "
                                                 r"only their own"):
        project.undo(annotator="bob", image=2)
    assert project.undo(annotator="bob") is None  # bob has nothing to undo
    assert _standing(project)[2] == ("label", "4", "alice")
    project.label(2, "7", annotator="bob")
    assert project.undo(annotator="bob", image=2) == 2  # bob's vote goes, alice's stays
    assert _standing(project)[2] == ("label", "4", "alice")
    assert [r["annotator"] for r in project.store.votes() if r["image_id"] == 2] == ["alice"]


def test_a_person_overrides_an_imported_label(tmp_path):
    write_digit_pngs(tmp_path / "png" / "3", 3, size=8)  # labelled "3" by the sub-folder
    write_digit_pngs(tmp_path / "png", 6, size=8, start=3)
    with Project.init(tmp_path / "p", tmp_path / "png", DIGIT_CLASSES, **TINY) as p:
        imported = [r["image_id"] for r in p.store.current()]
        assert len(imported) == 3
        p.label(imported[0], "8", annotator="alice")
        assert _standing(p)[imported[0]] == ("label", "8", "alice")
        p.undo(annotator="alice")
        assert _standing(p)[imported[0]] == ("label", "3", "import")


def test_view_ms_and_client_id(project):
    a = project.label(3, "1", annotator="alice", view_ms=1500, client_id="c-1")
    assert project.label(3, "1", annotator="alice", view_ms=1500, client_id="c-1") == a
    assert [r["view_ms"] for r in project.store.answers()].count(1500) == 1
    assert {r["image_id"]: r["view_ms"] for r in project.store.votes()}[3] == 1500
    with pytest.raises(ValueError, match="client_id 'c-1' of 'alice' already names answer"):
        project.label(4, "1", annotator="alice", client_id="c-1")
    project.label(4, "1", annotator="bob", client_id="c-1")  # another annotator's own id
    before = len(project.store.answers())
    for bad in (-1, True, 2.5, 2**31):
        with pytest.raises(ValueError, match=r"view_ms must be None or an int in the range"):
            project.label(5, "1", annotator="alice", view_ms=bad)
    for bad in ("", " x", "a" * 101, "new\nline", 7):
        with pytest.raises(ValueError, match="client_id must be None or a string"):
            project.label(5, "1", annotator="alice", client_id=bad)
    assert len(project.store.answers()) == before


def test_assignment_overlap_and_timeout(project):
    store = project.store
    round_id = store.latest_done_round()["id"]
    batch = [it.image_id for it in project.next_batch()]
    assert len(batch) == 6
    a = store.assign(round_id, "alice", size=2, now=100.0)
    b = store.assign(round_id, "bob", size=2, now=100.0)
    c = store.assign(round_id, "carol", size=2, now=100.0)
    assert a == batch[:2] and b == batch[2:4] and c == batch[4:]
    assert store.assign(round_id, "dave", size=2, now=100.0) == []  # all taken
    assert store.assign(round_id, "alice", size=2, now=150.0) == a  # the same, kept
    # alice answers one: she gets no more (nothing is free), then bob goes away for good
    store.add_answer(a[0], "label", "1", annotator="alice", source="test")
    assert store.assign(round_id, "alice", size=2, now=200.0) == a
    # after the timeout bob's unanswered items are free; alice (seen at 200) keeps hers
    assert store.assign(round_id, "dave", size=2, timeout=120.0, now=260.0) == b
    # carol went away too: alice keeps hers and takes one of carol's (she has 1 open)
    assert store.assign(round_id, "alice", size=2, timeout=120.0, now=260.0) == a + c[:1]
    # overlap 2: alice's answered item goes to a second annotator too
    assert a[0] in store.assign(round_id, "erin", size=1, overlap=2, timeout=120.0, now=261.0)


def test_my_items_and_training_on_dawid_skene_labels(project):
    project.configure(overlap=2)
    mine = project.my_items("alice")
    theirs = project.my_items("bob")
    assert [it.image_id for it in mine] == [it.image_id for it in theirs]  # overlap 2
    assert len(mine) == 2 and all(it.answer is None for it in mine)
    for it in mine:
        project.label(it.image_id, true_label(it.path), annotator="alice")
    assert [it.answer for it in project.my_items("alice")][:2] == ["label", "label"]
    # p and q give a made-up truth t ("1" or "2"), eve always the other one; on the last
    # image eve answers first and q not at all: the majority takes eve's word (a tie, hers was
    # first), Dawid-Skene knows her for a flipper
    taken = {it.image_id for it in mine}
    images = [r["id"] for r in project.store.images() if r["id"] not in taken][:9]
    truth = {i: "1" if k % 2 else "2" for k, i in enumerate(images)}
    flip = {"1": "2", "2": "1"}
    for i in images[:-1]:
        for who in ("p", "q"):
            project.label(i, truth[i], annotator=who)
        project.label(i, flip[truth[i]], annotator="eve")
    odd = images[-1]
    project.label(odd, flip[truth[odd]], annotator="eve")
    project.label(odd, truth[odd], annotator="p")
    assert _standing(project)[odd][1] == flip[truth[odd]]
    assert {r["image_id"]: r["label"] for r in project.check_ready().current}[odd] == (
        flip[truth[odd]])
    project.configure(aggregation="dawid_skene")
    trained = {r["image_id"]: r["label"] for r in project.check_ready().current}
    assert {i: trained[i] for i in images} == truth
    with pytest.raises(ValueError, match="The 'aggregation' parameter must be 'majority' or"):
        project.configure(aggregation="mean")
    with pytest.raises(ValueError, match=r"The 'overlap' parameter must be an int in the range"):
        project.configure(overlap=0)


def test_annotator_tokens(project):
    token = project.add_annotator("alice")
    assert project.store.annotator_for_token(token) == "alice"
    assert project.store.annotator_for_token(token + "x") is None
    with pytest.raises(ValueError, match="already registered"):
        project.add_annotator("alice")
    new = project.add_annotator("alice", replace=True)
    assert project.store.annotator_for_token(token) is None
    project.remove_annotator("alice")
    assert project.store.annotator_for_token(new) is None
    with pytest.raises(AnnotatorError, match="'alice' was removed"):
        project.label(1, "2", annotator="alice")
    with pytest.raises(ValueError, match="no registered annotator 'bob'"):
        project.remove_annotator("bob")
    with pytest.raises(ValueError, match="annotator name must be"):
        project.add_annotator("a/b")
    # only the hash is stored
    db = sqlite3.connect(os.path.join(project.path, "skal.db"))
    assert new not in json.dumps(db.execute("SELECT * FROM annotators").fetchall())
    db.close()


def test_a_v2_database_is_migrated_keeping_every_answer(tmp_path):
    db = tmp_path / "skal.db"
    conn = sqlite3.connect(db)
    with open(os.path.join(DATA, "label_store_v2.sql"), encoding="utf-8") as f:
        conn.executescript(f.read())
    before = [tuple(r) for r in conn.execute("SELECT * FROM answers ORDER BY id")]
    current = [tuple(r) for r in conn.execute("SELECT * FROM current ORDER BY image_id")]
    conn.close()
    store = LabelStore(db)
    try:
        assert store.meta("schema_version") == str(SCHEMA_VERSION) == "3"
        after = [tuple(r) for r in store.answers()]
        assert [r[:9] for r in after] == before  # every answer, as it was
        assert all(r[9:] == (None, None) for r in after)  # view_ms, client_id
        assert [tuple(r) for r in store._query("SELECT * FROM current ORDER BY image_id")] == (
            current)
        votes = {(r["image_id"], r["annotator"]): (r["kind"], r["label"]) for r in store.votes()}
        assert votes == {(1, "alice"): ("label", "cat"), (1, "bob"): ("label", "dog"),
                         (2, "alice"): ("label", "bird"), (3, "bob"): ("skip", None),
                         (5, "alice"): ("label", "cat"), (6, "import"): ("label", "dog")}
        assert store.integrity_check() == "ok"
        store.undo(annotator="bob", source="test", image_id=1)  # v3 from here: alice's stands
        assert {r["image_id"]: r["label"] for r in store.current()}[1] == "cat"
    finally:
        store.close()


# ---------------------------------------------------------------------------- the routes
starlette = pytest.importorskip("starlette", reason="the web page needs the 'label' extra")


@pytest.fixture
def server(project):
    from skal.labeling.app import start_server

    with start_server(project) as running:
        yield running


def _post(server, path, body, headers=None):
    status, _, payload = http_request(server.base, "POST", path, body=body,
                                      headers=dict(headers or {}))
    return status, json.loads(payload)


def test_routes_as_an_attacker(server):
    project = server.project
    token = project.add_annotator("alice")
    bob_token = project.add_annotator("bob")
    batch = project.next_batch()
    first = batch[0]
    # alice's name without her token, or with bob's
    status, body = _post(server, "/api/answers", {"image_id": first.image_id, "label": "1",
                                                 "annotator": "alice"})
    assert status == 403 and "registered with a token" in body["detail"]
    status, body = _post(server, "/api/answers",
                         {"image_id": first.image_id, "label": "1", "annotator": "alice"},
                         {"X-Skal-Annotator-Token": bob_token})
    assert status == 403 and "is 'bob''s: it cannot act as 'alice'" in body["detail"]
    status, body = _post(server, "/api/answers", {"image_id": first.image_id, "label": "1"},
                         {"X-Skal-Annotator-Token": "forged"})
    assert status == 403 and "not valid" in body["detail"]
    assert project.store.answers() == []
    # alice with her token (no name needed); carol (unregistered) by name on loopback
    status, body = _post(server, "/api/answers", {"image_id": first.image_id, "label": "1"},
                         {"X-Skal-Annotator-Token": token})
    assert status == 200
    status, _ = _post(server, "/api/answers", {"image_id": first.image_id, "label": "2",
                                               "annotator": "carol"})
    assert status == 200
    assert _standing(project)[first.image_id] == ("label", "1", "alice")
    # carol undoes her own answer; then she cannot undo alice's: 409 when she names the image
    status, body = _post(server, "/api/undo", {"annotator": "carol"})
    assert status == 200 and body["image_id"] == first.image_id
    status, body = _post(server, "/api/undo", {"annotator": "carol"})
    assert status == 200 and body["image_id"] is None
    status, body = _post(server, "/api/undo", {"annotator": "carol",
                                               "image_id": first.image_id})
    assert status == 409 and "undo only their own" in body["detail"]
    status, body = _post(server, "/api/undo", {"annotator": "dave", "image_id": 2**70})
    assert status == 422
    status, body = _post(server, "/api/undo", {"annotator": "dave", "image_id": 999999})
    assert status == 404
    assert _standing(project)[first.image_id] == ("label", "1", "alice")
    # my items: alice's token, bob's token, a bad name
    status, mine = _post(server, "/api/my-items", {}, {"X-Skal-Annotator-Token": token})
    # the item she answered and 2 more (assign_size unanswered ones)
    assert status == 200 and mine["annotator"] == "alice" and len(mine["items"]) == 3
    assert mine["items"][0]["mine"] == "label" and mine["items"][0]["n_votes"] == 1
    assert [i["mine"] for i in mine["items"][1:]] == [None, None]
    status, his = _post(server, "/api/my-items", {}, {"X-Skal-Annotator-Token": bob_token})
    assert not {i["image_id"] for i in his["items"]} & {i["image_id"] for i in mine["items"]}
    for bad in ({"annotator": 5}, {"annotator": "../x"}, {"annotator": "bob"}):
        status, _ = _post(server, "/api/my-items", bad)
        assert status in (403, 422), bad
    status, _, payload = http_request(server.base, "GET", "/api/state")
    assert json.loads(payload)["agreement"]["n_overlap"] == 0
    status, _ = _post(server, "/api/answers", {"image_id": first.image_id, "label": "4"},
                      {"X-Skal-Annotator-Token": bob_token})
    status, _, payload = http_request(server.base, "GET", "/api/state")
    report = json.loads(payload)["agreement"]
    assert report["n_overlap"] == 1 and report["pairs"][0]["annotators"] == ["alice", "bob"]
    assert report["items"] == {str(first.image_id): 0.5}


def test_the_annotator_link_sets_a_cookie_and_opens_a_guarded_server(project):
    from skal.labeling.app import start_server

    token = project.add_annotator("alice")
    with start_server(project, require_token=True) as running:
        status, _, _ = http_request(running.base, "GET", "/api/state")
        assert status == 401
        status, headers, _ = http_request(running.base, "GET", f"/?annotator_token={token}")
        assert status == 303 and headers["location"] == "/"
        cookie = headers["set-cookie"]
        assert cookie.startswith(f"skal_annotator={token}") and "HttpOnly" in cookie
        status, _, _ = http_request(running.base, "GET", "/?annotator_token=forged")
        assert status == 401
        status, _, _ = http_request(running.base, "GET", "/api/state",
                                    headers={"Cookie": f"skal_annotator={token}"})
        assert status == 200
        image_id = project.next_batch()[0].image_id
        status, _, _ = http_request(running.base, "POST", "/api/answers",
                                    body={"image_id": image_id, "label": "3"},
                                    headers={"Cookie": f"skal_annotator={token}"})
        assert status == 200
        assert _standing(project)[image_id] == ("label", "3", "alice")
        project.remove_annotator("alice")
        status, _, _ = http_request(running.base, "GET", "/api/state",
                                    headers={"Cookie": f"skal_annotator={token}"})
        assert status == 401


def test_the_answers_export_has_every_annotator_and_view_ms(project, tmp_path):
    import csv
    import subprocess
    import sys

    from label_helpers import subprocess_env

    project.label(1, "3", annotator="alice", view_ms=1200)
    project.label(1, "4", annotator="=bob")  # a name a spreadsheet would run
    project.skip(2, annotator="alice", view_ms=0)
    assert project.export_answers(tmp_path / "a.csv") == 3
    with open(tmp_path / "a.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["annotator"], r["answer"], r["label"], r["view_ms"]) for r in rows] == [
        ("alice", "label", "3", "1200"), ("'=bob", "label", "4", ""),
        ("alice", "skip", "", "0")]
    project.close()
    done = subprocess.run([sys.executable, "-m", "skal", "label", "export", project.path,
                           "--format", "answers"], capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert os.path.isfile(os.path.join(project.path, "answers.csv"))
