"""What a labelling round says about its batch (skal.labeling.batch_report): cost-aware rounds
(information per expected second from the recorded answer times, cost-blind with a note when too
few answers have a time) and each guess's calibrated confidence, through Python, the API and the
CLI."""

import json

import numpy as np
import pytest
from label_helpers import DIGIT_CLASSES, true_label, write_digit_pngs

from skal.calibration import apply_temperature
from skal.cli import main
from skal.labeling import Project
from skal.labeling.batch_report import MIN_TIMED, load_report
from skal.labeling.diagnostics import load_report as load_stopping

# identical projects train identical models (same labels, seed and round), so their batches
# differ only by how they were ranked
TINY = dict(batch_size=6, width=4, epochs=1, min_steps=150, mc_samples=2, holdout=0.0,
            strategy="entropy_sampling")
N_LABELS = 40


def _seconds(digit):
    return 2.0 if int(digit) < 5 else 40.0  # digits 5-9 are slow to label


def _project(root, name, n_timed=N_LABELS, **settings):
    project = Project.init(root / name, root / "png", DIGIT_CLASSES, **dict(TINY, **settings))
    by_path = {r["path"]: r["id"] for r in project.store.images()}
    for i, path in enumerate(sorted(by_path)[:N_LABELS]):
        digit = true_label(path)
        view_ms = int(1000 * _seconds(digit)) if i < n_timed else None
        project.label(by_path[path], digit, annotator="me", view_ms=view_ms)
    return project


@pytest.fixture(scope="module")
def rounds(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch_report")
    write_digit_pngs(root / "png", 60, size=8)
    projects = {
        "blind": _project(root, "blind"),
        "aware": _project(root, "aware", cost_aware=True, cost_power=1.0),
        "few": _project(root, "few", n_timed=5, cost_aware=True, cost_power=1.0),
    }
    results = {name: p.train_and_query() for name, p in projects.items()}
    yield projects, results
    for p in projects.values():
        p.close()


def _pixels(project, ids):
    X, rows = project._pixels.load(project.store)
    return X[[rows[i] for i in ids]]


def test_a_cost_aware_round_queries_a_cheaper_batch_than_a_cost_blind_one(rounds):
    projects, results = rounds
    blind, aware = (load_report(projects[n].path, results[n]["id"]) for n in ("blind", "aware"))
    assert (blind["cost_aware"], blind["asked"], blind["note"]) == (False, False, None)
    assert (aware["cost_aware"], aware["asked"], aware["note"]) == (True, True, None)
    assert aware["n_timed"] == blind["n_timed"] == N_LABELS
    assert (aware["time_model"], aware["cost_power"]) == ("class", 1.0)
    a_batch, b_batch = projects["aware"].next_batch(), projects["blind"].next_batch()
    assert [it.image_id for it in a_batch] != [it.image_id for it in b_batch]
    # both expected under the same time model and the same model's probabilities
    assert aware["seconds_per_image"] < blind["seconds_per_image"]
    assert aware["seconds_per_image"] == pytest.approx(
        np.mean([it.expected_seconds for it in a_batch]), abs=1e-3)
    # each item's seconds: sum_k p_k t_k with the class means shrunk towards the mean of all
    model = projects["aware"].load_model()
    proba = model.predict_proba(_pixels(projects["aware"], [it.image_id for it in a_batch]))
    times = {}
    for a in projects["aware"].store.answers():
        times.setdefault(a["label"], []).append(a["view_ms"] / 1000)
    prior = np.mean([t for ts in times.values() for t in ts])
    per_class = np.array([(sum(times.get(c, [])) + 5 * prior) / (len(times.get(c, [])) + 5)
                          for c in model.classes_])
    np.testing.assert_allclose([it.expected_seconds for it in a_batch], proba @ per_class,
                               atol=1e-3)
    # the round records that it was asked to be cost-aware
    params = json.loads(projects["aware"].rounds()[-1]["params"])
    assert (params["cost_aware"], params["cost_power"], params["time_model"]) == (
        True, 1.0, "class")
    assert "cost_aware" not in json.loads(projects["blind"].rounds()[-1]["params"])


def test_too_few_timed_answers_give_a_cost_blind_batch_and_say_so(rounds):
    projects, results = rounds
    few = load_report(projects["few"].path, results["few"]["id"])
    assert (few["cost_aware"], few["asked"], few["n_timed"]) == (False, True, 5)
    assert few["note"] == (f"cost-blind: only 5 label answer(s) have a recorded time; a time "
                           f"model needs {MIN_TIMED}")
    # the very batch of the cost-blind project, with no seconds (there is no time model)
    assert [it.image_id for it in projects["few"].next_batch()] == [
        it.image_id for it in projects["blind"].next_batch()]
    assert few["seconds_per_image"] is None
    assert all(it.expected_seconds is None for it in projects["few"].next_batch())


def test_guesses_without_a_temperature_say_they_are_uncalibrated(rounds):
    projects, results = rounds
    report = load_report(projects["blind"].path, results["blind"]["id"])
    assert (report["temperature"], report["calibrated"]) == (None, False)  # nothing held out
    items = projects["blind"].next_batch()
    assert all(it.guess is not None and it.confidence is not None for it in items)
    assert all(not it.calibrated and it.calibrated_confidence is None for it in items)


def test_the_regressor_time_model(tmp_path):
    write_digit_pngs(tmp_path / "png", 60, size=8)
    project = _project(tmp_path, "p", cost_aware=True, time_model="regressor")
    try:
        result = project.train_and_query()
        report = load_report(project.path, result["id"])
        assert (report["cost_aware"], report["time_model"], report["n_timed"]) == (
            True, "regressor", N_LABELS)
        seconds = [it.expected_seconds for it in project.next_batch()]
        assert all(s > 0 for s in seconds) and len(set(seconds)) > 1
    finally:
        project.close()


@pytest.mark.parametrize("settings, match", [
    ({"cost_aware": "yes"}, "'cost_aware' parameter must be True or False"),
    ({"cost_power": -1.0}, r"'cost_power' parameter must be a float in the range \[0.0, inf\)"),
    ({"cost_power": True}, "'cost_power' parameter"),
    ({"time_model": "pixels"}, "'time_model' parameter must be 'class' or 'regressor'"),
    ({"cost_aware": True, "strategy": "badge"}, "needs a strategy with one score per image"),
    ({"cost_aware": True, "strategy": "random_sampling"}, "one score per image"),
    ({"cost_aware": True, "strategy": "bald", "subsample": 10}, "'subsample' parameter must be "
                                                                 "None with cost_aware=True"),
])
def test_cost_aware_settings_are_checked(rounds, settings, match):
    project = rounds[0]["blind"]
    before = project.config
    with pytest.raises(ValueError, match=match):
        project.configure(**settings)
    assert project.config == before


def test_a_round_can_be_asked_to_be_cost_aware_or_not(rounds):
    project = rounds[0]["blind"]
    with pytest.raises(ValueError, match="one score per image"):
        project.check_ready("badge", cost_aware=True)
    assert project.check_ready("badge", cost_aware=False).config["cost_aware"] is False
    assert project.check_ready(cost_aware=True).config["cost_aware"] is True
    assert project.config["cost_aware"] is False  # an override is not a setting


# ---------------------------------------------------------------------------- calibrated guesses
@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrated")
    write_digit_pngs(root / "png", 60, size=8)
    project = _project(root, "p", holdout=0.4)
    result = project.train_and_query()
    yield project, result
    project.close()


def test_each_guess_carries_its_calibrated_confidence(held_out):
    project, result = held_out
    temperature = load_stopping(project.path, result["id"])["temperature"]
    assert temperature is not None and temperature > 0
    report = load_report(project.path, result["id"])
    assert (report["temperature"], report["calibrated"]) == (temperature, True)
    items = project.next_batch()
    model = project.load_model()
    proba = model.predict_proba(_pixels(project, [it.image_id for it in items]))
    tempered = apply_temperature(proba, temperature)
    for item, p, q in zip(items, proba, tempered):
        assert item.calibrated and item.guess == model.classes_[np.argmax(q)]
        assert item.confidence == pytest.approx(p.max(), rel=1e-6)
        assert item.calibrated_confidence == pytest.approx(q.max(), rel=1e-9)
    # this tiny model is over-confident on its held-out labels (T > 1): softer guesses
    assert temperature > 1.05
    assert all(it.calibrated_confidence < it.confidence for it in items)


def test_the_api_serves_the_calibrated_confidences_and_the_query_summary(held_out):
    from starlette.testclient import TestClient

    from skal.labeling.app import create_app

    project, result = held_out
    items = {it.image_id: it for it in project.next_batch()}
    with TestClient(create_app(project), base_url="http://127.0.0.1") as client:
        state = client.get("/api/state").json()
        mine = client.post("/api/my-items", json={"annotator": "me"}).json()
    query = state["round"]["query"]
    assert query == {k: v for k, v in load_report(project.path, result["id"]).items()
                     if k != "items"}
    assert query["calibrated"] and query["cost_aware"] is False and state["cost_aware"] is False
    for served in state["batch"] + mine["items"]:
        item = items[served["image_id"]]
        assert served["calibrated"] is True
        assert served["calibrated_confidence"] == item.calibrated_confidence
        assert served["expected_seconds"] == item.expected_seconds
        assert served["expected_seconds"] > 0  # 40 timed answers: a time model, if cost-blind


@pytest.mark.parametrize("value", ["yes", 1, 0, [True], {"on": True}, "true"])
def test_train_cost_aware_is_strictly_typed(held_out, value):
    from starlette.testclient import TestClient

    from skal.labeling.app import create_app

    project, _ = held_out
    n_rounds = len(project.rounds())
    with TestClient(create_app(project), base_url="http://127.0.0.1") as client:
        response = client.post("/api/train", json={"cost_aware": value})
        job = client.get("/api/job").json()
    assert response.status_code == 422 and "'cost_aware' must be true, false or null" in (
        response.json()["detail"])
    assert job["state"] == "idle" and len(project.rounds()) == n_rounds


def test_the_page_starts_a_cost_aware_round(tmp_path):
    from starlette.testclient import TestClient

    from skal.labeling.app import create_app

    write_digit_pngs(tmp_path / "png", 60, size=8)
    project = _project(tmp_path, "p")
    try:
        app = create_app(project)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            assert 'id="cost-aware"' in client.get("/").text
            refused = client.post("/api/train", json={"cost_aware": True, "strategy": "badge"})
            assert refused.status_code == 422 and "one score per image" in refused.json()[
                "detail"]
            assert client.post("/api/train", json={"cost_aware": True}).status_code == 202
            app.state.service.wait(120)
            state = client.get("/api/state").json()
        assert state["round"]["query"]["cost_aware"] is True
        assert state["round"]["query"]["seconds_per_image"] > 0
        assert project.config["cost_aware"] is False
    finally:
        project.close()


# ---------------------------------------------------------------------------- the CLI
def test_skal_label_cli_cost_aware_and_the_batch_listing(tmp_path, capsys):
    write_digit_pngs(tmp_path / "png", 60, size=8)
    assert main(["label", "init", str(tmp_path / "p"), "--images", str(tmp_path / "png"),
                 "--classes", ",".join(DIGIT_CLASSES), "--batch-size", "6", "--width", "4",
                 "--epochs", "1", "--min-steps", "150", "--holdout", "0",
                 "--strategy", "entropy_sampling", "--cost-aware", "--cost-power", "1"]) == 0
    project = Project(tmp_path / "p")
    try:
        assert (project.config["cost_aware"], project.config["cost_power"]) == (True, 1.0)
        by_path = {r["path"]: r["id"] for r in project.store.images()}
        for path in sorted(by_path)[:N_LABELS]:
            digit = true_label(path)
            project.label(by_path[path], digit, annotator="me",
                          view_ms=int(1000 * _seconds(digit)) if path < "d0003" else None)
    finally:
        project.close()
    capsys.readouterr()
    assert main(["label", "train", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    assert (f"batch: cost-blind: only 3 label answer(s) have a recorded time; a time model "
            f"needs {MIN_TIMED}; guesses uncalibrated") in out
    assert main(["label", "train", str(tmp_path / "p"), "--no-cost-aware"]) == 0
    assert "batch: cost-blind; guesses uncalibrated" in capsys.readouterr().out
    assert main(["label", "batch", str(tmp_path / "p")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("round 3 (entropy_sampling): batch: cost-blind")
    assert len(lines) == 1 + 6
    assert all(line.split("\t")[1].endswith("% uncalibrated") for line in lines[1:])
