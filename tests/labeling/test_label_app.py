"""The labelling web app's HTTP API against the real uvicorn server on an ephemeral port."""

import http.client
import json
import time
import urllib.parse

import pytest

pytest.importorskip("starlette", reason="the web page needs the 'label' extra")
pytest.importorskip("uvicorn", reason="the web page needs the 'label' extra")

from label_helpers import DIGIT_CLASSES, ServeProcess, true_label, write_digit_pngs

from skal.labeling import Project
from skal.labeling.app import class_keys, start_server

TINY = dict(batch_size=5, width=2, epochs=1, min_steps=0, mc_samples=2, holdout=0.0)


def request(base, method, path, body=None, headers=None, raw_body=None):
    """One HTTP request with http.client (the path is sent exactly as given)."""
    parsed = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    headers = dict(headers or {})
    data = raw_body
    if body is not None:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        return response.status, dict(response.getheaders()), payload
    finally:
        conn.close()


def get_json(base, path, **kw):
    status, headers, payload = request(base, "GET", path, **kw)
    assert status == 200, payload
    return json.loads(payload)


@pytest.fixture
def server(tmp_path):
    write_digit_pngs(tmp_path / "png", 30, size=8)
    project = Project.init(tmp_path / "project", tmp_path / "png", DIGIT_CLASSES, **TINY)
    with start_server(project) as running:
        yield running
    project.close()


def test_page_and_state(server):
    status, headers, html = request(server.base, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    html = html.decode()
    assert html.count('class="class-button"') == 10 and "train and query" in html
    assert '<script src="/static/app.js" defer></script>' in html
    state = get_json(server.base, "/api/state")
    assert [c["name"] for c in state["classes"]] == DIGIT_CLASSES
    assert [c["key"] for c in state["classes"]] == DIGIT_CLASSES  # digits: their own key
    assert state["round"]["id"] == 1 and len(state["batch"]) == 5
    assert state["progress"] == {"answered": 0, "total": 5}
    assert state["job"]["state"] == "idle" and state["strategy"] == "bald"
    assert state["n_images"] == 30 and state["n_labeled"] == 0
    item = state["batch"][0]
    status, headers, png = request(server.base, "GET", item["url"])
    assert status == 200 and headers["content-type"] == "image/png" and png[:4] == b"\x89PNG"
    for path in ("/static/app.js", "/static/style.css"):
        assert request(server.base, "GET", path)[0] == 200


def test_class_keys():
    assert class_keys(["cat", "dog"]) == ["1", "2"]
    assert class_keys(["a", "b"]) == ["a", "b"]
    assert class_keys([f"c{i}" for i in range(12)])[9:] == ["0", None, None]


def test_answers_skip_undo_are_the_rows_the_api_writes(server):
    batch = get_json(server.base, "/api/state")["batch"]
    a, b = batch[0], batch[1]
    status, _, payload = request(server.base, "POST", "/api/answers",
                                 {"image_id": a["image_id"], "label": true_label(a["path"]),
                                  "annotator": "ann"})
    assert status == 200, payload
    answer_id = json.loads(payload)["answer_id"]
    status, _, _ = request(server.base, "POST", "/api/answers",
                           {"image_id": b["image_id"], "skip": True, "annotator": "ann"})
    assert status == 200
    state = get_json(server.base, "/api/state")
    assert state["progress"] == {"answered": 2, "total": 5}
    assert state["counts"][true_label(a["path"])] == 1
    row = server.project.store.answers()[0]
    assert (row["id"], row["annotator"], row["source"], row["kind"]) == (
        answer_id, "ann", "web", "label")
    # the Python API sees (and writes) the same rows
    assert server.project.labels() == {a["path"]: true_label(a["path"])}
    server.project.label(batch[2]["image_id"], "0", annotator="notebook")
    assert get_json(server.base, "/api/state")["progress"]["answered"] == 3
    status, _, payload = request(server.base, "POST", "/api/undo", {"annotator": "ann"})
    assert status == 200 and json.loads(payload) == {"image_id": b["image_id"]}
    assert get_json(server.base, "/api/state")["progress"]["answered"] == 2


def _label_all(server):
    for item in get_json(server.base, "/api/state")["batch"]:
        status, _, _ = request(server.base, "POST", "/api/answers",
                               {"image_id": item["image_id"], "label": true_label(item["path"])})
        assert status == 200


def _wait_job(server, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get_json(server.base, "/api/job")
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError("the round did not finish in time")


def test_train_and_query_runs_in_the_background_and_the_page_stays_usable(server):
    assert request(server.base, "POST", "/api/train", {})[0] == 422  # no labels yet
    _label_all(server)
    server.project.configure(min_steps=400)  # long enough to answer requests meanwhile
    status, _, payload = request(server.base, "POST", "/api/train", {"strategy": "entropy_sampling"})
    assert status == 202, payload
    assert json.loads(payload)["job"]["state"] == "running"
    status, _, payload = request(server.base, "POST", "/api/train", {})
    assert status == 409 and b"already running" in payload
    started = time.monotonic()
    job = get_json(server.base, "/api/state")["job"]
    assert time.monotonic() - started < 3  # answered while training
    assert job["state"] in ("running", "done")
    job = _wait_job(server)
    assert job["state"] == "done", job
    state = get_json(server.base, "/api/state")
    assert state["round"]["id"] == 2 and state["round"]["strategy"] == "entropy_sampling"
    assert all(it["guess"] in DIGIT_CLASSES for it in state["batch"])
    assert state["progress"]["answered"] == 0
    assert request(server.base, "POST", "/api/train", {"strategy": "nope"})[0] == 422


def test_failed_round_shows_its_error(server, monkeypatch):
    _label_all(server)
    from skal.labeling import service

    def broken(*a, **k):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(service, "build_estimator", broken)
    assert request(server.base, "POST", "/api/train", {})[0] == 202
    job = _wait_job(server)
    assert job["state"] == "failed" and "out of memory" in job["error"]
    assert get_json(server.base, "/api/state")["round"]["id"] == 1


def test_skal_label_serve_command(tmp_path):
    write_digit_pngs(tmp_path / "png", 12, size=8)
    Project.init(tmp_path / "p", tmp_path / "png", DIGIT_CLASSES, **TINY).close()
    with ServeProcess(tmp_path / "p") as served:
        assert served.url.startswith("http://127.0.0.1:") and served.token is None
        assert len(get_json(served.base, "/api/state")["batch"]) == 5
