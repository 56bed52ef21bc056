import csv
import json
import os

import numpy as np
import pytest

from skal.datasets import load_digits_images
from skal.experiment import (
    METHODS,
    ExperimentConfig,
    Method,
    compare_runs,
    load_run,
    register_method,
    run_experiment,
)
from skal.query import uncertainty_sampling

from experiment_helpers import TINY

FILES = ("config.json", "state.json", "results.jsonl", "results.csv", "learning_curve.png")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny finished run per method, sharing the seed."""
    root = tmp_path_factory.mktemp("runs")
    return {
        method: run_experiment(ExperimentConfig(method=method, **TINY), root / method,
                               progress=False)
        for method in ("bald", "random")
    }


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_run_writes_all_files(runs):
    result = runs["bald"]
    n_rows = TINY["repeats"] * (TINY["n_rounds"] + 1)
    for name in FILES:
        assert os.path.getsize(os.path.join(result.out_dir, name)) > 0
    rows = read_jsonl(os.path.join(result.out_dir, "results.jsonl"))
    with open(os.path.join(result.out_dir, "results.csv"), newline="") as f:
        csv_rows = list(csv.DictReader(f))
    assert len(rows) == len(csv_rows) == len(result.rows) == n_rows
    assert [(r["repeat"], r["round"]) for r in rows] == [
        (rep, rnd) for rep in range(TINY["repeats"]) for rnd in range(TINY["n_rounds"] + 1)
    ]
    assert [int(r["n_labeled"]) for r in csv_rows] == [r["n_labeled"] for r in rows]
    assert all(0 <= r["accuracy"] <= 1 and r["fit_seconds"] >= 0 for r in rows)
    with open(os.path.join(result.out_dir, "config.json")) as f:
        assert json.load(f) == ExperimentConfig(method="bald", **TINY).to_dict()


def test_labelled_sets_grow_without_duplicates(runs):
    X, y = load_digits_images()
    for result in runs.values():
        assert len(result.labeled) == TINY["repeats"]
        for labeled, labels in zip(result.labeled, result.labels):
            assert len(labeled) == result.config.n_labeled_final
            assert len(np.unique(labeled)) == len(labeled)
            assert labeled.min() >= 0 and labeled.max() < TINY["pool_size"]
            assert set(np.unique(labels)) <= set(np.unique(y))
        sizes = [r["n_labeled"] for r in result.rows if r["repeat"] == 0]
        assert np.all(np.diff(sizes) == TINY["query_size"])
        assert sizes[0] == TINY["n_initial"]


def test_methods_start_from_the_same_labels(runs):
    n = TINY["n_initial"]
    bald_run, random_run = runs["bald"], runs["random"]
    for repeat in range(TINY["repeats"]):
        np.testing.assert_array_equal(bald_run.labeled[repeat][:n], random_run.labeled[repeat][:n])
    # but the repeats differ from each other
    assert not np.array_equal(bald_run.labeled[0][:n], bald_run.labeled[1][:n])


def test_finished_run_is_skipped(runs, tmp_path):
    result = runs["random"]
    with open(os.path.join(result.out_dir, "state.json")) as f:
        before = f.read()
    again = run_experiment(result.config, result.out_dir, progress=False)
    with open(os.path.join(result.out_dir, "state.json")) as f:
        assert f.read() == before
    assert again.rows == result.rows


def test_config_mismatch_raises(runs):
    other = ExperimentConfig(method="bald", **{**TINY, "seed": 1})
    with pytest.raises(ValueError, match=r"different configuration \(seed: 0 -> 1\)"):
        run_experiment(other, runs["bald"].out_dir, progress=False)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"method": "nope"}, r"Unknown method 'nope'\. Expected one of: .*'bald'.*'random'"),
        ({"dataset": "cifar"}, r"Unknown dataset 'cifar'\. Expected one of: 'digits', "),
        ({"n_initial": 0}, r"'n_initial' parameter of ExperimentConfig must be an int >= 2"),
        ({"n_rounds": -1}, r"'n_rounds' parameter .* must be an int >= 0\. Got -1"),
        ({"pool_size": 2.5}, r"'pool_size' parameter .* an int >= 1 or None\. Got 2\.5"),
        ({"lr": 0}, r"'lr' parameter .* must be a float > 0"),
        ({"lr_schedule": "step"}, r"'lr_schedule' parameter .* one of \('constant', 'cosine'\)"),
        ({"pool_size": 50, "n_initial": 40}, r"The pool is too small: .* = 60 labels"),
    ],
)
def test_invalid_config_raises(params, match):
    with pytest.raises(ValueError, match=match):
        ExperimentConfig(**{**TINY, **params})


def test_pool_larger_than_dataset_raises(tmp_path):
    config = ExperimentConfig(**{**TINY, "pool_size": None, "n_initial": 1700})
    with pytest.raises(ValueError, match=r"'digits' has only 1697 pool samples"):
        run_experiment(config, tmp_path, progress=False)


def test_compare_runs(runs, tmp_path):
    png = tmp_path / "compare.png"
    results = compare_runs([runs["bald"].out_dir, runs["random"].out_dir], png)
    assert [r.config.method for r in results] == ["bald", "random"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a parent folder stands for the runs inside it
    parent = os.path.dirname(runs["bald"].out_dir)
    assert len(compare_runs([parent], tmp_path / "parent.png")) == 2
    with pytest.raises(FileNotFoundError, match="holds no skal experiment"):
        compare_runs([tmp_path], tmp_path / "none.png")


def test_load_run_matches_result(runs):
    loaded = load_run(runs["bald"].out_dir)
    assert loaded.rows == runs["bald"].rows
    assert loaded.mean_accuracy().keys() == {20, 30, 40}


class _FlatLogistic:
    """A fast stand-in estimator that records the unlabelled pool it is given."""

    seen_unlabeled = []

    def __init__(self, random_state):
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression(max_iter=50, random_state=random_state)

    def fit(self, X, y, X_unlabeled=None):
        self.seen_unlabeled.append(len(X_unlabeled))
        self.model.fit(X.reshape(len(X), -1), y)
        return self

    def predict_proba(self, X):
        return self.model.predict_proba(X.reshape(len(X), -1))

    def score(self, X, y):
        return self.model.score(X.reshape(len(X), -1), y)


def test_registered_method_with_unlabeled_pool(tmp_path):
    method = Method(
        uncertainty_sampling,
        make_estimator=lambda config, seed, classes: _FlatLogistic(seed),
        pass_unlabeled=True,
    )
    register_method("test-flat", method)
    try:
        with pytest.raises(ValueError, match="exists already"):
            register_method("test-flat", method)
        config = ExperimentConfig(method="test-flat", **{**TINY, "repeats": 1})
        result = run_experiment(config, tmp_path, progress=False)
    finally:
        METHODS.pop("test-flat")
    assert _FlatLogistic.seen_unlabeled == [180, 170, 160]  # pool 200 minus the labels
    assert [r["n_labeled"] for r in result.rows] == [20, 30, 40]


def test_warm_start_run(tmp_path):
    params = {**TINY, "repeats": 1, "n_rounds": 1, "lr_schedule": "cosine"}
    config = ExperimentConfig(method="margin", warm_start=True, **params)
    result = run_experiment(config, tmp_path, progress=False)
    assert len(np.unique(result.labeled[0])) == 30


def test_epochs_for_reaches_min_steps():
    config = ExperimentConfig(**{**TINY, "max_epochs": 2, "min_steps": 10, "batch_size": 32})
    assert config.epochs_for(20) == 10  # 1 step per epoch
    assert config.epochs_for(100) == 3  # 4 steps per epoch
    assert config.epochs_for(1000) == 2  # max_epochs already gives 64 steps
    assert ExperimentConfig(**TINY).epochs_for(20) == TINY["max_epochs"]


def test_rows_record_the_epochs_actually_trained(tmp_path):
    from skorch.callbacks import Callback

    from skal.experiment import make_resnet18

    class StopAfterTwo(Callback):  # what EarlyStopping does: KeyboardInterrupt ends fit
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                raise KeyboardInterrupt

    def make(config, random_state, classes):
        return make_resnet18(config, random_state, classes).set_params(
            callbacks=[("stop", StopAfterTwo())])

    register_method("random-stops-early", Method(METHODS["random"].query_strategy,
                                                 make_estimator=make), overwrite=True)
    config = ExperimentConfig(**{**TINY, "method": "random-stops-early", "max_epochs": 4,
                                 "repeats": 1, "n_rounds": 1})
    rows = run_experiment(config, tmp_path / "run", progress=False).rows
    assert [(r["epochs"], r["epochs_trained"]) for r in rows] == [(4, 2), (4, 2)]
    plain = run_experiment(ExperimentConfig(**{**TINY, "method": "random", "repeats": 1,
                                               "n_rounds": 0}), tmp_path / "plain", progress=False)
    assert plain.rows[0]["epochs_trained"] == TINY["max_epochs"]


# ------------------------------------------------------------------ methods and their options
def test_waal_sizes_min_steps_from_its_unlabelled_epochs():
    """A WAAL epoch is a pass over the unlabelled pool: epochs must not fall as labels grow."""
    config = ExperimentConfig(**{**TINY, "method": "waal", "max_epochs": 5, "min_steps": 300})
    pool = 600
    epochs = [config.epochs_for(n, pool - n) for n in (40, 60, 80)]
    assert epochs == [17, 18, 18]  # ceil(300 / ceil(U / 32)) with U = 560, 540, 520
    assert all(e * -(-(pool - n) // 32) >= 300 for e, n in zip(epochs, (40, 60, 80)))
    # the ResNet18 methods still count labelled batches
    assert ExperimentConfig(**{**TINY, "min_steps": 300}).epochs_for(40, 560) == 150


def test_waal_uses_its_lr_and_stores_what_it_does_not_use():
    from skal.experiment import make_waal

    config = ExperimentConfig(**{**TINY, "method": "waal"})
    assert config.lr == 0.01  # the paper's SGD lr, not Adam's 1e-3
    assert (config.width, config.preact, config.lr_schedule, config.n_mc_samples) == (None,) * 4
    saved = config.to_dict()
    assert saved["width"] is None and saved["estimator"].startswith("WAALClassifier(lr=0.01")
    assert ExperimentConfig.from_dict(saved) == config
    tuned = ExperimentConfig(**{**TINY, "method": "waal", "lr": 0.05})
    assert make_waal(tuned, 0, np.arange(10)).lr == 0.05
    assert ExperimentConfig(**TINY).lr == 1e-3
    assert ExperimentConfig(**{**TINY, "method": "random"}).n_mc_samples is None


def test_titles_name_the_estimator_used():
    from skal.experiment.plots import run_title

    assert "WAALClassifier" in run_title(ExperimentConfig(**{**TINY, "method": "waal"}))
    assert "ResNet18" not in run_title(ExperimentConfig(**{**TINY, "method": "waal"}))
    assert "ResNet18Classifier(width=2)" in run_title(ExperimentConfig(**TINY))
    assert "BGADLResNet18Classifier" in run_title(ExperimentConfig(**{**TINY, "method": "bgadl"}))


def test_builtin_methods_are_all_described_for_the_help():
    from skal.experiment.config import BUILTIN_METHODS
    from skal.experiment.methods import METHODS as registry

    assert set(BUILTIN_METHODS) <= set(registry)
    assert {"random", "uncertainty", "margin", "entropy", "bald", "waal", "bgadl",
            "random_gen"} == set(BUILTIN_METHODS)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"dropout": 1.0}, r"'dropout' parameter of ExperimentConfig must be a float in \[0, 1\)"),
        ({"lr": float("nan")}, r"'lr' parameter .* must be a float > 0 or None\. Got nan"),
        ({"preact": "yes"}, r"'preact' parameter .* must be a bool\. Got 'yes'"),
        ({"device": ""}, r"'device' parameter .* must be a non-empty str"),
        ({"n_initial": 1}, r"'n_initial' parameter of ExperimentConfig must be an int >= 2\. "
                           r"Got 1"),
        ({"method": 3}, r"Unknown method 3\. Expected one of"),
    ],
)
def test_more_invalid_configs_raise_config_errors(params, match):
    from skal.exceptions import ConfigError

    with pytest.raises(ConfigError, match=match):
        ExperimentConfig(**{**TINY, **params})


def test_unknown_saved_field_is_a_config_error():
    from skal.exceptions import ConfigError

    with pytest.raises(ConfigError, match=r"Unknown ExperimentConfig fields: \['colour'\]"):
        ExperimentConfig.from_dict({**ExperimentConfig(**TINY).to_dict(), "colour": 1})


def test_device_is_checked_before_anything_is_written(tmp_path):
    import torch

    from skal.exceptions import DeviceError

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    config = ExperimentConfig(**{**TINY, "device": "cuda"})
    with pytest.raises(DeviceError, match=r"asked for device='cuda', but torch sees no CUDA"):
        run_experiment(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ divergence
class _Exploding:
    """Stands in for a net whose training exploded (or went NaN) in its last epoch."""

    def __init__(self, loss):
        self.loss = loss

    def fit(self, X, y):
        self.history_ = [{"train_loss": 2.3}, {"train_loss": self.loss}]
        return self

    def score(self, X, y):
        return 0.1


def _method_diverging_in_round(rnd, loss=1e7):
    """ResNet18 until round ``rnd``, then a training whose loss explodes."""
    from skal.experiment import make_resnet18

    calls = []

    def make(config, seed, classes):
        calls.append(1)
        if len(calls) > rnd + 1:  # the first one only has its parameters checked
            return _Exploding(loss)
        return make_resnet18(config, seed, classes)

    return Method(METHODS["random"].query_strategy, make_estimator=make)


@pytest.mark.parametrize("loss", [1e7, float("nan"), float("inf")])
def test_diverged_training_stops_the_run_and_keeps_finished_rounds(tmp_path, loss):
    from skal.exceptions import DivergenceError

    register_method("test-diverges", _method_diverging_in_round(1, loss), overwrite=True)
    try:
        config = ExperimentConfig(**{**TINY, "method": "test-diverges", "repeats": 1})
        with pytest.raises(DivergenceError, match=r"Training diverged in round 1 of repeat 1 of "
                                                  r"method 'test-diverges' .*training loss of "
                                                  r"_Exploding is .* at epoch 2 .*Lower lr "
                                                  r"\(now 0\.001\), e\.g\. lr=0\.0001\. The 1 "
                                                  r"finished round"):
            run_experiment(config, tmp_path / "run", progress=False)
    finally:
        METHODS.pop("test-diverges")
    assert [row["round"] for row in read_jsonl(tmp_path / "run" / "results.jsonl")] == [0]


def test_a_floating_point_error_in_fit_becomes_a_divergence_error(tmp_path):
    from skal.exceptions import DivergenceError

    class RaisesNaN(_Exploding):
        def fit(self, X, y):
            raise FloatingPointError("WAALClassifier: the critic loss is nan at epoch 3.")

    register_method("test-nan", Method(METHODS["random"].query_strategy,
                                       make_estimator=lambda c, s, k: RaisesNaN(0)),
                    overwrite=True)
    try:
        with pytest.raises(DivergenceError, match=r"round 0 of repeat 1 .*the critic loss is nan "
                                                  r"at epoch 3\. Lower lr \(now") as info:
            run_experiment(ExperimentConfig(**{**TINY, "method": "test-nan", "repeats": 1}),
                           tmp_path / "run", progress=False)
    finally:
        METHODS.pop("test-nan")
    assert isinstance(info.value.__cause__, FloatingPointError)


def test_real_exploding_training_is_detected(tmp_path):
    from skal.exceptions import DivergenceError

    config = ExperimentConfig(**{**TINY, "lr": 1e3, "max_epochs": 3, "repeats": 1,
                                 "n_rounds": 0})
    with pytest.raises(DivergenceError, match=r"ResNet18Classifier.*Lower lr \(now 1000\)"):
        run_experiment(config, tmp_path / "run", progress=False)


def test_a_diverged_augmenter_is_not_blamed_on_the_classifier_lr(tmp_path):
    from skal.estimators import bgadl as augment
    from skal.exceptions import DivergenceError

    class GanDiverges(_Exploding):
        def fit(self, X, y):
            raise augment.ConvergenceError(
                "GenerativeAugmenter training diverged: the encoder loss L_E is nan at epoch 1/3, "
                "batch 2/2. GAN training is unstable at lr=0.0002; try a lower learning rate")

    register_method("test-gan", Method(METHODS["random"].query_strategy,
                                       make_estimator=lambda c, s, k: GanDiverges(0)),
                    overwrite=True)
    try:
        with pytest.raises(DivergenceError, match=r"the encoder loss L_E is nan at epoch 1/3, "
                                                  r"batch 2/2\. The VAE-ACGAN .* diverged, not "
                                                  r"the classifier") as info:
            run_experiment(ExperimentConfig(**{**TINY, "method": "test-gan", "repeats": 1}),
                           tmp_path / "run", progress=False)
    finally:
        METHODS.pop("test-gan")
    assert "--lr" not in str(info.value)


def test_an_augmenter_naming_the_classifier_gets_the_lr_advice():
    from skal.experiment.runner import _augmenter_advice

    classifier = FloatingPointError(
        "GenerativeAugmenter training diverged: the auxiliary classifier loss L_C is nan. The "
        "auxiliary classifier is the ResNet18Classifier given as classifier=, ...")
    assert _augmenter_advice(classifier) is None  # -> "Lower lr (now ...), e.g. lr=..."
    assert _augmenter_advice(FloatingPointError("WAALClassifier: loss is nan")) is None
    gan = FloatingPointError("GenerativeAugmenter training diverged: the encoder loss is nan.")
    assert "not the classifier" in _augmenter_advice(gan)
