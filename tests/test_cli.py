import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import skal
from skal.cli import main
from skal.experiment import load_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "--dataset", "digits", "--n-initial", "20", "--query-size", "10", "--rounds", "2",
    "--repeats", "1", "--pool-size", "200", "--test-size", "100", "--width", "2",
    "--epochs", "1", "--batch-size", "32", "--mc-samples", "4", "--quiet",
]


def python_m_skal(*args, **kwargs):
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "skal", *args], dict(env=env, cwd=REPO, **kwargs)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"skal {skal.__version__}"


@pytest.mark.parametrize(
    "argv, match",
    [
        (["run", "--method", "nope", "--out", "x"],
         "skal run: error: unknown method 'nope'; expected one of: bald, "),
        (["run", "--methods", "bald,nope", "--out", "x"], "unknown method 'nope'"),
        (["run", "--dataset", "cifar", "--out", "x"],
         "skal: error: Unknown dataset 'cifar'. Expected one of: 'digits', 'fashion_mnist', or "
         "the path of an image folder or of a .npz file."),
        (["run", "--rounds", "-1", "--out", "x"],
         "skal run: error: argument --rounds: expected an integer >= 0, got -1"),
        (["run", "--query-size", "ten", "--out", "x"],
         "argument --query-size: expected an integer, got 'ten'"),
        (["run", "--lr", "0", "--out", "x"], "argument --lr: expected a number > 0"),
        (["run", "--dataset", "digits", "--pool-size", "50", "--out", "x"],
         "skal: error: The pool is too small"),
        (["run", "--dataset", "digits"], "the following arguments are required: --out"),
        (["compare", "does-not-exist"], "does-not-exist holds no skal experiment"),
        ([], "the following arguments are required: command"),
    ],
)
def test_errors_exit_2_with_one_line(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_run_several_methods_and_compare(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["run", *TINY, "--methods", "bald,random", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bald: results in" in printed and "40 labels: mean test accuracy" in printed
    for method in ("bald", "random"):
        assert len(load_run(out / method).rows) == 3
    assert (out / "learning_curve.png").exists()
    png = tmp_path / "compare.png"
    assert main(["compare", str(out / "bald"), str(out / "random"), "--out", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_rerun_with_other_settings_exits_2(tmp_path, capsys):
    out = str(tmp_path / "run")
    args = ["run", *TINY, "--rounds", "0", "--method", "random", "--out", out]
    assert main(args) == 0
    assert main([*args, "--seed", "3"]) == 2
    assert "holds a run with a different configuration (seed: 0 -> 3)" in capsys.readouterr().err


def rounds_done(state_path):
    try:
        with open(state_path) as f:
            return sum(r["rounds_done"] for r in json.load(f)["repeats"])
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def test_resume_after_sigkill(tmp_path):
    """Kill a real run after its first checkpoint; the resumed run matches an uninterrupted one."""
    args = [*TINY, "--method", "bald", "--rounds", "4", "--repeats", "2"]
    total_rows = 2 * 5
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"

    cmd, kwargs = python_m_skal("run", *args, "--out", str(killed_dir))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
    deadline = time.monotonic() + 120
    while rounds_done(killed_dir / "state.json") < 1 and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    proc.stderr.close()
    done = rounds_done(killed_dir / "state.json")
    assert 1 <= done < total_rows  # it really stopped in the middle

    cmd, kwargs = python_m_skal("run", *args, "--out", str(killed_dir))
    finished = subprocess.run(cmd, capture_output=True, text=True, timeout=240, **kwargs)
    assert finished.returncode == 0, finished.stderr
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the subprocesses, so the float results match bit for bit
    try:
        assert main(["run", *args, "--out", str(clean_dir)]) == 0
    finally:
        torch.set_num_threads(threads)

    resumed, clean = load_run(killed_dir), load_run(clean_dir)
    for labeled_resumed, labeled_clean in zip(resumed.labeled, clean.labeled, strict=True):
        np.testing.assert_array_equal(labeled_resumed, labeled_clean)
        assert len(np.unique(labeled_resumed)) == len(labeled_resumed) == 20 + 4 * 10
    with open(killed_dir / "results.jsonl") as f:
        keys = [(row["repeat"], row["round"]) for row in map(json.loads, f)]
    assert len(keys) == len(set(keys)) == total_rows
    assert [r["accuracy"] for r in resumed.rows] == [r["accuracy"] for r in clean.rows]
