"""The answer route as the page uses it: an answer re-sent with its ``client_id`` is stored once,
and ``view_ms`` is strictly checked (attacker values get 422 and nothing is written)."""

import json

import pytest

pytest.importorskip("starlette", reason="the web page needs the 'label' extra")
pytest.importorskip("uvicorn", reason="the web page needs the 'label' extra")

from label_helpers import DIGIT_CLASSES, http_request, true_label, write_digit_pngs

from skal.labeling import Project
from skal.labeling.app import MAX_VIEW_MS, start_server

TINY = dict(batch_size=5, width=2, epochs=1, min_steps=0, mc_samples=2, holdout=0.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("page_api")
    write_digit_pngs(tmp / "png", 12, size=8)
    project = Project.init(tmp / "project", tmp / "png", DIGIT_CLASSES, **TINY)
    with start_server(project) as running:
        yield running
    project.close()


def post(server, body, raw=None):
    status, _, payload = http_request(server.base, "POST", "/api/answers", body=body,
                                      raw_body=raw, headers={"Content-Type": "application/json"})
    return status, json.loads(payload)


def _batch(server):
    return [(it.image_id, true_label(it.path)) for it in server.project.next_batch()]


def test_an_answer_sent_again_with_its_client_id_is_stored_once(server):
    store = server.project.store
    (a, la), (b, lb) = _batch(server)[:2]
    before = len(store.answers())
    status, first = post(server, {"image_id": a, "label": la, "client_id": "page-0001-aaaa"})
    assert status == 200 and set(first) == {"answer_id", "image_id"}
    # the acknowledgement was lost: the page sends the same answer again, twice
    for _ in range(2):
        status, again = post(server, {"image_id": a, "label": la, "client_id": "page-0001-aaaa"})
        assert status == 200 and again == first
    assert len(store.answers()) == before + 1
    row = store.answers()[-1]
    assert (row["id"], row["image_id"], row["label"], row["source"], row["client_id"]) == (
        first["answer_id"], a, la, "web", "page-0001-aaaa")
    # a later answer on the same image (a correction) has its own id and is stored
    other = str((int(la) + 1) % 10)
    status, fix = post(server, {"image_id": a, "label": other, "client_id": "page-0002-aaaa"})
    assert status == 200 and fix["answer_id"] > first["answer_id"]
    # re-sending the first one now must not bring it back over the correction
    status, late = post(server, {"image_id": a, "label": la, "client_id": "page-0001-aaaa"})
    assert status == 200 and late["answer_id"] == first["answer_id"]
    assert {r["image_id"]: r["label"] for r in store.current()}[a] == other
    # an undone answer re-sent stays undone
    status, skip = post(server, {"image_id": b, "skip": True, "client_id": "page-0003-bbbb"})
    assert status == 200
    assert http_request(server.base, "POST", "/api/undo", body={})[0] == 200
    assert b not in {r["image_id"] for r in store.current()}
    status, resent = post(server, {"image_id": b, "skip": True, "client_id": "page-0003-bbbb"})
    assert status == 200 and resent["answer_id"] == skip["answer_id"]
    assert b not in {r["image_id"] for r in store.current()}
    # the same id on another image is a page bug, not the same answer: refused, nothing stored
    n = len(store.answers())
    status, err = post(server, {"image_id": b, "label": lb, "client_id": "page-0001-aaaa"})
    assert status == 422 and "client_id" in err["detail"] and "page-0001-aaaa" in err["detail"]
    assert len(store.answers()) == n
    # the id is the annotator's: another annotator's answer with the same id is their own
    status, theirs = post(server, {"image_id": b, "label": lb, "client_id": "page-0003-bbbb",
                                   "annotator": "someone"})
    assert status == 200 and theirs["answer_id"] not in (skip["answer_id"], first["answer_id"])
    assert len(store.answers()) == n + 1
    # without a client_id an answer is stored each time (the API as before)
    status, _ = post(server, {"image_id": b, "label": lb})
    status2, _ = post(server, {"image_id": b, "label": lb})
    assert status == status2 == 200 and len(store.answers()) == n + 3
    assert store.answers()[-1]["source"] == "web" and store.answers()[-1]["client_id"] is None


@pytest.mark.parametrize("client_id", [
    "", "short", "x" * 65, "has space1", "semi;colon", "../../etc", "ünïcödé-id", "web:abcdefgh",
    "tab\there00", "new\nline00", "\u202eright-to-left",
    12345678, 1.5, True, ["page-0001-aaaa"], {"id": "page-0001-aaaa"},
])
def test_bad_client_ids_are_refused(server, client_id):
    store = server.project.store
    image_id, label = _batch(server)[2]
    n = len(store.answers())
    status, err = post(server, {"image_id": image_id, "label": label, "client_id": client_id})
    assert status == 422 and err["detail"].startswith("'client_id' must be a string of 8 to 64")
    assert len(store.answers()) == n


@pytest.mark.parametrize("raw", [
    b'"100"', b'"abc"', b"-1", b"-0.5", b"1.5", b"1e3", b"NaN", b"Infinity", b"-Infinity",
    b"true", b"false", b"[1]", b'{"ms": 1}', b"1180591620717411303424",  # 2**70
    str(MAX_VIEW_MS + 1).encode(), str(2**63).encode(),
])
def test_attacker_view_ms_values_get_422_and_nothing_is_written(server, raw):
    store = server.project.store
    image_id, label = _batch(server)[3]
    n = len(store.answers())
    body = b'{"image_id": %d, "label": "%s", "view_ms": %s}' % (image_id, label.encode(), raw)
    status, err = post(server, None, raw=body)
    assert status == 422, (raw, err)
    assert err["detail"].startswith("'view_ms' must be an integer of milliseconds in the range "
                                    f"[0, {MAX_VIEW_MS}]")
    assert len(store.answers()) == n


@pytest.mark.parametrize("view_ms", [0, 1, 1234, MAX_VIEW_MS, None])
def test_good_view_ms_values_are_accepted(server, view_ms):
    store = server.project.store
    image_id, label = _batch(server)[4]
    n = len(store.answers())
    status, reply = post(server, {"image_id": image_id, "label": label, "view_ms": view_ms})
    assert status == 200 and len(store.answers()) == n + 1
    row = store.answers()[-1]
    assert row["id"] == reply["answer_id"] and row["view_ms"] == view_ms
