"""`skal run --dataset PATH`: an image folder or an .npz file as the simulated oracle's data, with
`--test PATH` or a held-out quarter."""

import json
import os

import numpy as np
import pytest
from label_helpers import write_digit_pngs

from skal.cli import main
from skal.experiment import ExperimentConfig

TINY = ["--method", "random", "--n-initial", "20", "--query-size", "10", "--rounds", "1",
        "--repeats", "1", "--width", "2", "--epochs", "1", "--quiet"]


@pytest.fixture
def image_folder(tmp_path):
    """120 digit PNGs (8x8) in one sub-folder per digit."""
    flat = tmp_path / "flat"
    truth = write_digit_pngs(flat, 120, size=8)
    root = tmp_path / "folder"
    for name, label in truth.items():
        os.makedirs(root / label, exist_ok=True)
        os.replace(flat / name, root / label / name)
    return root


def _rows(out):
    with open(os.path.join(out, "results.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_run_on_an_image_folder_holds_out_a_quarter_and_resumes(tmp_path, image_folder, capsys):
    out = str(tmp_path / "run")
    assert main(["run", "--dataset", str(image_folder), "--out", out, *TINY]) == 0
    assert "30 labels: mean test accuracy" in capsys.readouterr().out
    rows = _rows(out)
    assert [r["n_labeled"] for r in rows] == [20, 30]
    assert main(["run", "--dataset", str(image_folder), "--out", out, *TINY]) == 0  # resumed
    assert len(_rows(out)) == 2


def test_run_on_npz_with_a_test_file(tmp_path):
    from skal.datasets import load_digits_images

    X, y = load_digits_images()
    X = (X * 255).astype(np.uint8).transpose(0, 2, 3, 1)  # (n, 1, 8, 8) -> channels-last
    np.savez(tmp_path / "train.npz", X=X[:200], y=y[:200])
    np.savez(tmp_path / "test.npz", X=X[200:260], y=y[200:260])
    out = str(tmp_path / "run")
    assert main(["run", "--dataset", str(tmp_path / "train.npz"), "--test",
                 str(tmp_path / "test.npz"), "--out", out, *TINY]) == 0
    assert [r["n_labeled"] for r in _rows(out)] == [20, 30]


def test_run_path_errors(tmp_path, capsys):
    write_digit_pngs(tmp_path / "unlabelled", 30, size=8)
    assert main(["run", "--dataset", str(tmp_path / "unlabelled"), "--out",
                 str(tmp_path / "r1"), *TINY]) == 2
    assert "has no labels, and a simulated oracle needs them" in capsys.readouterr().err
    assert main(["run", "--dataset", "./digits_png/", "--out", str(tmp_path / "r2"), *TINY]) == 2
    assert "The --dataset option names no such file or folder: './digits_png/'. Expected one " \
           "of: 'digits', 'fashion_mnist', or the path of an image folder" \
           in capsys.readouterr().err
    with pytest.raises(ValueError, match="The 'test' parameter of ExperimentConfig must be the "
                                         "path of an image folder or .npz file, with a dataset "
                                         "path too"):
        ExperimentConfig(dataset="digits", test=str(tmp_path))
