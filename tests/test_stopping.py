"""Stopping criteria: stabilizing predictions, the accuracy plateau and the learning-curve
forecast, against hand-computed cases, scikit-learn and simulations."""

import math
import os

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score

from skal import AccuracyPlateau, StabilizingPredictions, forecast_accuracy
from skal.stopping import accuracy_plateau, cohen_kappa, round_report, wilson_interval


# ---------------------------------------------------------------------------- kappa
def test_cohen_kappa_hand_computed_and_as_scikit_learn():
    # p_o = 3/4; p_e = (2/4 * 1/4) + (2/4 * 3/4) = 1/2 -> kappa = (3/4 - 1/2) / (1/2) = 1/2
    assert cohen_kappa([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    b[:200] = a[:200]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    # one class everywhere in both: scikit-learn's 0/0, a perfect agreement here
    assert cohen_kappa([3, 3, 3], [3, 3, 3]) == 1.0
    assert cohen_kappa(["cat", "dog"], ["cat", "dog"]) == 1.0


def test_stabilizing_predictions_averages_the_last_window():
    crit = StabilizingPredictions(threshold=0.99, window=3)
    base = np.arange(100) % 4
    changed = base.copy()
    changed[:10] = (changed[:10] + 1) % 4
    rounds = [changed, base, base, base, base]
    stops = [crit.update(r) for r in rounds]
    assert crit.kappas_[0] < 0.99 and crit.kappas_[1:] == [1.0, 1.0, 1.0]
    # mean of (k1, k2, k3) < 0.99 after update 3; (k2, k3, k4) = 1 after update 4
    assert stops == [False, False, False, False, True]
    assert crit.stop_update_ == 4
    assert crit.stop_
    # window=1: stops as soon as two rounds agree
    one = StabilizingPredictions(threshold=1.0, window=1)
    assert [one.update(r) for r in rounds] == [False, False, True, True, True]


@pytest.mark.parametrize("kwargs, match", [
    ({"window": 0}, r"window must be an int in the range \[1, inf\), got 0"),
    ({"window": 2.5}, "window must be an int"),
    ({"threshold": 0.0}, r"threshold must be a float in the range \(0.0, 1.0\], got 0.0"),
    ({"threshold": 1.5}, r"threshold must be a float in the range \(0.0, 1.0\]"),
    ({"threshold": True}, "threshold must be a float"),
])
def test_stabilizing_predictions_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StabilizingPredictions(**kwargs)


def test_stabilizing_predictions_refuses_another_stop_set():
    crit = StabilizingPredictions()
    crit.update([0, 1, 2])
    with pytest.raises(ValueError, match="same stop set every round: got 2 predictions, the "
                                         "previous round had 3"):
        crit.update([0, 1])
    with pytest.raises(ValueError, match="must be 1-d"):
        crit.update([[0, 1, 2]])
    with pytest.raises(ValueError, match="same length"):
        cohen_kappa([0, 1], [0])


# ---------------------------------------------------------------------------- plateau
def test_wilson_interval_hand_computed_and_as_scipy():
    low, high = wilson_interval(90, 100)
    z = 1.959963984540054
    p, n = 0.9, 100
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (low, high) == pytest.approx((centre - half, centre + half))
    ci = binomtest(37, 80).proportion_ci(0.9, method="wilson")
    assert wilson_interval(37, 80, 0.9) == pytest.approx((ci.low, ci.high))
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_accuracy_plateau_is_the_ci_rule():
    # 0.85 lies inside the Wilson interval of 0.91 on 100 labels, not on 10,000
    assert accuracy_plateau([0.7, 0.85, 0.9, 0.91], n_test=100, window=2)
    assert not accuracy_plateau([0.7, 0.85, 0.9, 0.91], n_test=10_000, window=2)
    assert not accuracy_plateau([0.85, 0.91], n_test=100, window=2)  # too few rounds
    assert not accuracy_plateau([0.7, 0.85, 0.9, 0.91], n_test=100)  # default window: 10
    with pytest.raises(ValueError, match=r"window must be an int in the range \[1, inf\)"):
        accuracy_plateau([0.5, 0.6], 100, window=0)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        accuracy_plateau([0.5, 60.0], 100)
    with pytest.raises(ValueError, match=r"confidence must be a float in the range \(0.0, 1.0\)"):
        accuracy_plateau([0.5, 0.6, 0.7], 100, window=2, confidence=1.0)


@pytest.mark.parametrize("method", ["wilson", "bootstrap"])
def test_accuracy_plateau_stops_on_a_flat_curve_not_a_rising_one(method):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 1000)

    def predictions(acc):
        wrong = rng.random(len(y)) > acc
        return np.where(wrong, (y + 1) % 3, y)

    rising = AccuracyPlateau(window=1, method=method, random_state=0)
    assert not any(rising.update(y, predictions(a)) for a in (0.5, 0.6, 0.7, 0.8))
    assert rising.gain_ > 0.05
    flat = AccuracyPlateau(window=1, method=method, random_state=0)
    for a in (0.5, 0.8, 0.8):
        flat.update(y, predictions(a))
    assert flat.stop_
    lo, hi = flat.interval_
    assert lo <= hi


def test_accuracy_plateau_bad_input():
    with pytest.raises(ValueError, match="method must be 'wilson' or 'bootstrap'"):
        AccuracyPlateau(method="normal")
    with pytest.raises(ValueError, match=r"n_bootstrap must be an int in the range \[1, inf\)"):
        AccuracyPlateau(n_bootstrap=0)
    crit = AccuracyPlateau()
    with pytest.raises(ValueError, match="y_true and y_pred must have the same length, got 3 "
                                         "and 2"):
        crit.update([0, 1, 1], [0, 1])
    crit.update([0, 1, 1], [0, 1, 0])
    with pytest.raises(ValueError, match="held-out set must be the same every round"):
        crit.update([0, 1], [0, 1])


# ---------------------------------------------------------------------------- forecast
def test_forecast_recovers_a_power_law_and_its_gain():
    n = np.arange(1, 9) * 50
    acc = 0.92 - 0.5 * (n / 50) ** -0.6
    f = forecast_accuracy(n, acc, [50, 200], random_state=0)
    truth = 0.92 - 0.5 * (np.array([450, 600]) / 50) ** -0.6
    assert f.model == "power_law" and f.budgets == (450, 600)
    np.testing.assert_allclose(f.predicted, truth, atol=1e-4)
    np.testing.assert_allclose(f.gains, truth - acc[-1], atol=1e-4)
    assert f.gains_sd[1] < 1e-3  # no noise: no spread
    text = f.recommendation()
    assert text.startswith("labelling 200 more is expected to add ")
    assert f"{100 * f.gains[1]:.1f} +- " in text and text.endswith(" points")


def test_forecast_uncertainty_covers_the_truth_on_noisy_curves():
    # residual bootstrap on 8 noisy rounds: the truth within 3 s.d. in most of 20 curves
    n = np.arange(1, 9) * 50
    def true(k):
        return 0.9 - 0.5 * (k / 50) ** -0.6

    covered, sds = 0, []
    for seed in range(20):
        acc = true(n) + np.random.default_rng(seed).normal(0, 0.005, len(n))
        f = forecast_accuracy(n, acc, 100, n_bootstrap=100, random_state=seed)
        true_gain = true(500) - true(400)
        sds.append(f.gains_sd[0])
        covered += abs(f.gains[0] - true_gain) <= 3 * f.gains_sd[0] + 1e-3
    assert covered >= 15
    assert 0 < np.median(sds) < 0.02


def test_forecast_falls_back_with_few_rounds():
    f = forecast_accuracy([100, 200, 300], [0.6, 0.7, 0.75], 100)
    assert f.model == "log_linear" and f.gains_sd is not None
    # alpha + beta log n through three points: the least-squares line in log n
    beta, alpha = np.polyfit(np.log([1, 2, 3]), [0.6, 0.7, 0.75], 1)
    assert f.predicted[0] == pytest.approx(alpha + beta * np.log(4))
    two = forecast_accuracy([100, 200], [0.6, 0.7], 100)
    assert two.gains_sd is None and "no uncertainty yet" in two.recommendation()
    assert two.predicted[0] == pytest.approx(0.7 + 0.1 * np.log(1.5) / np.log(2))


@pytest.mark.parametrize("args, match", [
    (([100], [0.5], 10), "needs at least 2 rounds, got 1"),
    (([100, 200], [0.5], 10), "same length"),
    (([200, 100], [0.5, 0.6], 10), "strictly increasing"),
    (([100, 200], [0.5, 1.6], 10), r"values in \[0, 1\]"),
    (([100, 200], [0.5, 0.6], 0), "more must be an int >= 1"),
    (([100, 200], [0.5, 0.6], 2.5), "more must be an int >= 1"),
])
def test_forecast_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        forecast_accuracy(*args)


# ---------------------------------------------------------------------------- one round
def test_round_report_keys_and_values():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3))
    logits[np.arange(400), y] += 2
    proba = np.exp(3 * logits) / np.exp(3 * logits).sum(1, keepdims=True)  # over-confident
    history = [{"n_labeled": 20, "accuracy": 0.5}]
    first = round_report(history, stop_predictions=y, heldout_proba=proba, heldout_y=y,
                         n_test=400, more=[10, 50])
    assert first["stop_kappa"] is None and first["stop_by_kappa"] is None
    assert first["forecast_n"] is None and first["stop_by_plateau"] is None
    assert first["temperature"] > 1 and first["ece_calibrated"] < first["ece"]
    history = [dict(history[0], **first), {"n_labeled": 30, "accuracy": 0.6}]
    second = round_report(history, stop_predictions=y, previous_stop_predictions=y,
                          heldout_proba=proba, heldout_y=y, n_test=400, more=[10, 50])
    assert second["stop_kappa"] == 1.0 and second["stop_kappa_mean"] is None  # window of 3
    assert second["forecast_n"] == [40, 80]
    assert second["recommendation"].startswith("labelling 50 more is expected to add")
    assert all(isinstance(v, (type(None), bool, float, int, str, list)) for v in second.values())


# ---------------------------------------------------------------------------- skal run
_TIMES = ("fit_seconds", "query_seconds")


def test_skal_run_records_the_new_keys_and_a_resume_records_the_same(tmp_path):
    from skal.experiment import ExperimentConfig, run_experiment

    params = {"dataset": "digits", "method": "entropy", "n_initial": 20, "query_size": 10,
              "repeats": 1, "width": 2, "max_epochs": 1, "pool_size": 200, "test_size": 100,
              "seed": 0}
    full = run_experiment(ExperimentConfig(n_rounds=4, **params), tmp_path / "a",
                          progress=False).rows
    run_experiment(ExperimentConfig(n_rounds=1, **params), tmp_path / "b", progress=False)
    extended = run_experiment(ExperimentConfig(n_rounds=4, **params), tmp_path / "b",
                              progress=False).rows
    strip = [{k: v for k, v in r.items() if k not in _TIMES} for r in full]
    assert strip == [{k: v for k, v in r.items() if k not in _TIMES} for r in extended]
    first, last = full[0], full[-1]
    assert first["stop_kappa"] is None and first["recommendation"] is None
    assert all(r["stop_kappa"] is not None and -1 <= r["stop_kappa"] <= 1 for r in full[1:])
    assert last["stop_kappa_mean"] == pytest.approx(np.mean([r["stop_kappa"] for r in full[2:]]))
    assert isinstance(last["stop_by_kappa"], bool)
    assert last["stop_by_plateau"] is None  # 5 rounds: fewer than the window of 10 plus one
    assert all(0 <= r["ece"] <= 1 and 0 <= r["ece_calibrated"] <= 1 and r["temperature"] > 0
               for r in full)
    assert last["forecast_n"] == [70, 110]
    assert last["recommendation"].startswith("labelling 50 more is expected to add")


# ---------------------------------------------------------------------------- skal label
def test_skal_label_rounds_store_the_report_and_the_status_shows_it(tmp_path):
    import json as _json
    import os

    from label_helpers import DIGIT_CLASSES, true_label, write_digit_pngs
    from starlette.testclient import TestClient

    from skal.labeling import Project
    from skal.labeling.app import create_app
    from skal.labeling.diagnostics import load_report, report_path

    write_digit_pngs(tmp_path / "png", 60, size=8)
    project = Project.init(tmp_path / "p", tmp_path / "png", DIGIT_CLASSES, batch_size=12,
                           width=2, epochs=1, min_steps=0, mc_samples=2, holdout=0.4,
                           strategy="entropy_sampling")
    try:
        ids = []
        for _ in range(3):
            for item in project.next_batch():
                digit = true_label(item.path)  # digit d takes 1 + d seconds
                project.label(item.image_id, digit, annotator="me",
                              view_ms=1000 * (1 + int(digit)))
            ids.append(project.train_and_query()["id"])
        first, second, third = (load_report(project.path, i) for i in ids)
        assert first["stop_kappa"] is None and second["stop_kappa"] is not None
        assert -1 <= third["stop_kappa"] <= 1
        assert first["stop_set"] == second["stop_set"] > 0  # every held-out-part image
        held = [r for r in project.learning_curve()]
        assert held[-1]["n_holdout"] >= 4 and third["ece"] is not None
        assert 0 <= third["ece_calibrated"] <= 1 and third["temperature"] > 0
        assert third["recommendation"].startswith("labelling 60 more is expected to add")
        with open(report_path(project.path, ids[-1])) as f:
            stored = _json.load(f)
        assert set(stored["stop_predictions"].values()) <= set(DIGIT_CLASSES)
        assert third["n_timed"] == 36  # the three batches' answers, each with its time
        timed = [int(c) for c in DIGIT_CLASSES
                 if any(true_label(r["path"]) == c for r in project.store.current())]
        per_class = third["seconds_per_class"]
        assert per_class[str(max(timed))] > per_class[str(min(timed))]
        assert set(per_class) == set(DIGIT_CLASSES)
        with TestClient(create_app(project), base_url="http://127.0.0.1") as client:
            state = client.get("/api/state").json()
        assert state["round"]["stopping"] == third
        assert os.path.basename(report_path(project.path, 7)) == "round_0007.stopping.json"
    finally:
        project.close()


def test_a_failing_report_is_stored_as_its_error_and_the_round_still_finishes(tmp_path,
                                                                             monkeypatch):
    from label_helpers import DIGIT_CLASSES, true_label, write_digit_pngs

    from skal.labeling import Project, diagnostics

    def broken(*args, **kwargs):
        raise RuntimeError("no report today")

    monkeypatch.setattr(diagnostics, "compute_report", broken)
    write_digit_pngs(tmp_path / "png", 30, size=8)
    project = Project.init(tmp_path / "p", tmp_path / "png", DIGIT_CLASSES, batch_size=12,
                           width=2, epochs=1, min_steps=0, mc_samples=2, holdout=0.4,
                           strategy="entropy_sampling")
    try:
        for item in project.next_batch():
            project.label(item.image_id, true_label(item.path), annotator="me")
        result = project.train_and_query()
        assert result["status"] == "done"
        assert diagnostics.load_report(project.path, result["id"]) == {
            "error": "RuntimeError: no report today"}
        models = os.listdir(os.path.join(project.path, "models"))
        assert not [name for name in models if ".tmp" in name]  # written whole
    finally:
        project.close()
