"""`skal run`'s messages (issue 28, "The CLI"): estimator parameters checked before anything is
written, unreadable or missing data set files, flags instead of Python parameters, one piece of
advice when training diverges, and a warning when a round's test accuracy is at chance level."""

import re
import warnings
import zipfile

import numpy as np
import pytest
from label_helpers import write_digit_pngs

from skal.cli import main
from skal.exceptions import ConfigError, DivergenceError
from skal.experiment import METHODS, ExperimentConfig, Method, register_method, run_experiment
from skal.query import random_sampling

TINY = ["--dataset", "digits", "--n-initial", "20", "--query-size", "10", "--rounds", "1",
        "--repeats", "1", "--pool-size", "200", "--test-size", "100", "--width", "2",
        "--epochs", "1", "--batch-size", "32", "--quiet"]
TINY_PY = dict(dataset="digits", n_initial=20, query_size=10, n_rounds=1, repeats=1,
               pool_size=200, test_size=100, width=2, max_epochs=1, batch_size=32)


def _set(args, flag, value):
    """``args`` with ``flag`` set to ``value`` (replaced, or appended)."""
    args = list(args)
    if flag in args:
        args[args.index(flag) + 1] = value
        return args
    return [*args, flag, value]


def _one_line(capsys, *fragments):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


# ---------------------------------------------------------------- estimator parameters
def test_batch_size_1_is_one_line_naming_the_flag_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    args = _set(TINY, "--batch-size", "1")
    assert main(["run", *args, "--method", "random", "--out", str(out)]) == 2
    err = _one_line(capsys, "skal: error: The --batch-size option must be an int in the range "
                            "[2, inf) for method 'random'", "Got 1 instead.")
    assert "batch_size" not in err and "-1" not in err  # the CLI accepts no -1
    assert "BatchNorm" in err  # why
    assert not out.exists()


def test_several_methods_are_all_checked_before_the_first_runs(tmp_path, capsys):
    out = tmp_path / "runs"
    args = [a for a in _set(TINY, "--batch-size", "1") if a not in ("--width", "2")]
    # waal trains on batches of one; random's ResNet18 cannot: neither may run
    assert main(["run", *args, "--methods", "waal,random", "--out", str(out)]) == 2
    _one_line(capsys, "The --batch-size option", "for method 'random'")
    assert not out.exists()


def test_the_python_api_names_the_parameter(tmp_path):
    config = ExperimentConfig(**{**TINY_PY, "method": "random", "batch_size": 1})
    with pytest.raises(ConfigError, match=re.escape(
            "The 'batch_size' parameter of ExperimentConfig must be an int in the range [2, inf) "
            "for method 'random'")):
        run_experiment(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- data set files
@pytest.mark.parametrize("content", [b"PK\x03\x04 not really a zip", b"garbage"])
def test_a_npz_that_is_not_a_zip_is_one_line(content, tmp_path, capsys):
    path = tmp_path / "garbage.npz"
    path.write_bytes(content)
    out = tmp_path / "run"
    assert main(["run", *TINY, "--method", "random", "--dataset", str(path),
                 "--out", str(out)]) == 2
    err = _one_line(capsys, f"skal: error: {path} is not a .npz file")
    assert "pickle" not in err
    assert not out.exists()


def test_a_npz_with_a_damaged_member_is_one_line(tmp_path, capsys):
    path = tmp_path / "damaged.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("X.npy", b"\x93NUMPY not an array")
    assert main(["run", *TINY, "--method", "random", "--dataset", str(path),
                 "--out", str(tmp_path / "run")]) == 2
    _one_line(capsys, f"{path} could not be read")


@pytest.mark.parametrize("flag", ["--dataset", "--test"])
def test_a_missing_path_says_no_such_file(flag, tmp_path, capsys):
    data = tmp_path / "data.npz"
    X = np.zeros((40, 1, 8, 8), dtype=np.uint8)
    np.savez(data, X=X, y=np.arange(40) % 2)
    args = {"--dataset": ["--dataset", "missing.npz"],
            "--test": ["--dataset", str(data), "--test", "missing.npz"]}[flag]
    assert main(["run", *TINY, "--method", "random", *args,
                 "--out", str(tmp_path / "run")]) == 2
    err = _one_line(capsys, f"The {flag} option names no such file or folder: 'missing.npz'")
    assert "Unknown dataset" not in err


def test_a_missing_path_in_the_python_api(tmp_path):
    with pytest.raises(ConfigError, match=r"The 'dataset' parameter of ExperimentConfig names "
                                          r"no such file or folder: 'missing\.npz'"):
        ExperimentConfig(dataset="missing.npz")
    with pytest.raises(ConfigError, match=r"Unknown dataset 'cifar'"):  # a name stays a name
        ExperimentConfig(dataset="cifar")


# ---------------------------------------------------------------- flags, not parameters
def _mixed_sizes(root):
    write_digit_pngs(root / "a", 12, size=8)
    write_digit_pngs(root / "b", 12, size=10, start=12)
    return root


def test_an_image_folder_of_several_sizes_names_the_flag(tmp_path, capsys):
    folder = _mixed_sizes(tmp_path / "folder")
    assert main(["run", *TINY, "--method", "random", "--dataset", str(folder),
                 "--out", str(tmp_path / "run")]) == 2
    err = _one_line(capsys, "different sizes", "Pass --image-size N")
    assert "image_size" not in err


def test_an_image_folder_of_several_sizes_names_the_parameter_in_python(tmp_path):
    folder = _mixed_sizes(tmp_path / "folder")
    with pytest.raises(ConfigError, match=r"different sizes.*Pass image_size=N"):
        run_experiment(ExperimentConfig(**{**TINY_PY, "method": "random",
                                           "dataset": str(folder)}),
                       tmp_path / "run", progress=False)


@pytest.mark.parametrize("extra, fragment", [
    (["--test-size", "3"], "The --test-size option must be an int in the range [10, 1787]"),
    (["--pool-size", "5", "--n-initial", "2", "--rounds", "0"],
     "The --pool-size option must be an int in the range [10, "),
    (["--dropout", "1.5"], "The --dropout option must be a float in [0, 1)"),
    (["--pool-size", "25"], "--n-initial + --rounds * --query-size = 30 labels, but "
                            "--pool-size is 25"),
    (["--device", "nope"], "The --device option must be a torch device such as 'cpu'"),
])
def test_config_errors_name_the_flags(extra, fragment, tmp_path, capsys):
    args = list(TINY)
    for flag, value in zip(extra[::2], extra[1::2]):
        args = _set(args, flag, value)
    assert main(["run", *args, "--method", "random", "--out", str(tmp_path / "run")]) == 2
    err = _one_line(capsys, fragment)
    assert "ExperimentConfig" not in err and "_size" not in err and "n_initial" not in err


def test_a_shorter_rerun_names_the_flag(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["run", *TINY, "--method", "random", "--out", out]) == 0
    capsys.readouterr()
    assert main(["run", *_set(TINY, "--rounds", "0"), "--method", "random", "--out", out]) == 2
    err = _one_line(capsys, "more than --rounds 0 asks for", "Use --rounds >= 1 or another")
    assert "n_rounds" not in err


# ---------------------------------------------------------------- divergence
def test_divergence_gives_one_piece_of_advice_naming_the_flag(tmp_path, capsys):
    args = _set(_set(TINY, "--lr", "1000"), "--epochs", "3")
    assert main(["run", *args, "--method", "random", "--rounds", "0",
                 "--out", str(tmp_path / "run")]) == 1
    err = _one_line(capsys, "Training diverged in round 0", "Lower --lr (now 1000), e.g. "
                                                           "--lr 100.")
    assert err.count("Lower") == 1 and "lr=" not in err and "(now 1000.0)" not in err


def test_bgadl_divergence_of_the_classifier_names_lr_only(tmp_path, capsys):
    args = _set(_set(TINY, "--lr", "1000"), "--epochs", "2")
    assert main(["run", *args, "--method", "bgadl", "--mc-samples", "2", "--rounds", "0",
                 "--out", str(tmp_path / "run")]) == 1
    err = _one_line(capsys, "Training diverged in round 0", "Lower --lr (now 1000), e.g. "
                                                           "--lr 100.")
    assert "gan_lr" not in err and err.count("lower") + err.count("Lower") == 1


def test_divergence_in_python_names_the_parameter(tmp_path):
    config = ExperimentConfig(**{**TINY_PY, "method": "random", "lr": 1e3, "max_epochs": 3,
                                 "n_rounds": 0})
    with pytest.raises(DivergenceError) as info:
        run_experiment(config, tmp_path / "run", progress=False)
    message = str(info.value)
    assert "Lower lr (now 1000), e.g. lr=100." in message
    assert "--lr" not in message and message.count("Lower") == 1


def test_bgadl_blames_the_classifier_when_its_outputs_are_not_finite():
    from skal import BGADLClassifier
    from skal.datasets import load_digits_images

    X, y = load_digits_images()
    clf = BGADLClassifier(width=2, lr=1e3, max_epochs=2, batch_size=32, random_state=0,
                          gen_weight=1.0)
    with pytest.raises(DivergenceError) as info:
        clf.fit(X[:20], y[:20])
    message = str(info.value)
    assert "classifier" in message and "gan_lr" not in message, message
    assert info.value.loss_name == "loss_C"


# ---------------------------------------------------------------- chance level
def test_chance_accuracy_criterion():
    from skal.experiment.runner import chance_accuracy

    y = np.repeat(np.arange(10), 45)  # 450 balanced labels: chance 0.1
    level, margin = chance_accuracy(y, 10)
    assert level == pytest.approx(0.1)
    assert 0.02 < margin < 0.05  # 3 standard deviations of a guesser's accuracy on 450
    skewed = np.r_[np.zeros(80), np.ones(20)]  # a constant predictor gets 0.8
    assert chance_accuracy(skewed, 2)[0] == pytest.approx(0.8)


def test_a_round_at_chance_warns_naming_epochs(tmp_path, capsys):
    assert main(["run", *TINY, "--method", "random", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if line.startswith("skal: warning:")]
    assert len(warned) == 1, err
    assert "round 1" in warned[0] and "chance level" in warned[0]
    assert "raise --epochs (now 1)" in warned[0]
    assert "Traceback" not in err and "warnings.warn" not in err


def test_waal_at_chance_warns_naming_min_steps(tmp_path):
    from skal.exceptions import ChanceAccuracyWarning

    config = ExperimentConfig(**{k: v for k, v in TINY_PY.items() if k != "width"},
                              method="waal")
    with pytest.warns(ChanceAccuracyWarning, match=r"round 1 .*chance level.*raise min_steps "
                                                   r"\(now 0\)"):
        run_experiment(config, tmp_path / "run", progress=False)


class _Flat:
    """A logistic regression on flattened images: learns digits from 20 labels."""

    def __init__(self, *args):
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression(max_iter=500)

    def fit(self, X, y):
        self.model.fit(X.reshape(len(X), -1), y)
        return self

    def score(self, X, y):
        return self.model.score(X.reshape(len(X), -1), y)


def test_a_model_that_learns_does_not_warn(tmp_path):
    from skal.exceptions import ChanceAccuracyWarning

    register_method("test-flat", Method(random_sampling, make_estimator=_Flat,
                                        ignores=("n_mc_samples", "subsample")), overwrite=True)
    try:
        config = ExperimentConfig(**{**TINY_PY, "method": "test-flat", "n_rounds": 2})
        with warnings.catch_warnings():
            warnings.simplefilter("error", ChanceAccuracyWarning)
            result = run_experiment(config, tmp_path / "run", progress=False)
    finally:
        METHODS.pop("test-flat")
    assert min(row["accuracy"] for row in result.rows) > 0.5
