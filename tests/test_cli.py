import json
import re
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


def _without(args, flag):
    """``args`` without ``flag`` and its value."""
    i = args.index(flag)
    return args[:i] + args[i + 2:]


# --mc-samples applies to BALD only: `skal run --method random` refuses it
TINY_RANDOM = _without(TINY, "--mc-samples")


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
         "skal run: error: unknown method 'nope'; expected one of: badge, bald, "),
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
    args = ["run", *TINY_RANDOM, "--rounds", "0", "--method", "random", "--out", out]
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


# ------------------------------------------------------------------ --help
def _run_parser():
    from skal.cli import _build_parser

    commands = next(a for a in _build_parser()._actions if a.dest == "command")
    return commands.choices["run"]


def test_run_help_explains_every_option_and_its_default():
    run = _run_parser()
    options = [a for a in run._actions if a.option_strings and a.dest != "help"]
    assert len(options) >= 24
    for action in options:
        assert action.help, action.option_strings
        if not action.required:
            assert "(default:" in action.help, action.option_strings
    text = run.format_help()
    for name in ("random", "uncertainty", "margin", "entropy", "bald", "waal", "bgadl",
                 "random_gen"):
        assert any(line.split()[:1] == [name] and len(line.split()) > 3
                   for line in text.splitlines()), name
    assert "OMP_NUM_THREADS" in text and "--rounds or --repeats extend" in text


HEAVY = ("torch", "skorch", "sklearn", "matplotlib", "scipy")


def test_cli_parses_and_prints_help_without_heavy_imports():
    """skal.cli (with skal's package __init__ bypassed) imports no network or plotting library."""
    code = "\n".join([
        "import sys, types",
        f"pkg = types.ModuleType('skal'); pkg.__path__ = [{os.path.join(REPO, 'skal')!r}]",
        "pkg.__version__ = 'test'; sys.modules['skal'] = pkg",
        "from skal.cli import main",
        "for argv in (['--help'], ['run', '--help'], ['compare', '--help']):",
        "    try:",
        "        main(argv)",
        "    except SystemExit as exc:",
        "        assert exc.code == 0, exc.code",
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))",
    ])
    cmd, kwargs = python_m_skal()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, **kwargs)
    assert done.returncode == 0, done.stderr
    assert "--min-steps" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "HEAVY="


def test_python_m_skal_help_does_not_import_torch():
    probe = "\n".join([
        "import runpy, sys",
        "sys.argv = ['skal', '--help']",
        "try:",
        "    runpy.run_module('skal', run_name='__main__')",
        "except SystemExit as exc:",
        "    assert exc.code == 0",
        "print('TORCH=' + str('torch' in sys.modules))",
    ])
    cmd, kwargs = python_m_skal()
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, **kwargs)
    assert done.returncode == 0, done.stderr
    assert "usage: skal" in done.stdout
    if done.stdout.strip().endswith("TORCH=True"):
        plain = subprocess.run([sys.executable, "-c", "import skal, sys; print('torch' in "
                                "sys.modules)"], capture_output=True, text=True, timeout=120,
                               **kwargs)
        if plain.stdout.strip() == "True":
            pytest.xfail("skal/__init__.py imports torch itself (its lazy imports are issue "
                         "10 item 12, package side); skal.cli adds none (test above)")
    assert done.stdout.strip().endswith("TORCH=False")


# ------------------------------------------------------------------ usage errors, exit 2
def _one_line_error(capsys, match):
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--method", "waal", "--width", "8"],
         r"skal run: error: --width does not apply to method 'waal': waal trains a "
         r"WAALClassifier, whose feature extractor follows the images"),
        (["--method", "waal", "--lr-schedule", "cosine"],
         r"--lr-schedule does not apply to method 'waal': waal decays its learning rate"),
        (["--method", "waal", "--preact"], r"--preact does not apply to method 'waal'"),
        (["--method", "random", "--mc-samples", "5"],
         r"--mc-samples does not apply to method 'random': random does not draw MC-dropout"),
        (["--methods", "random,entropy", "--subsample", "50"],
         r"--subsample does not apply to any of random, entropy"),
        (["--method", "bgadl", "--warm-start"],
         r"--warm-start does not apply to method 'bgadl': bgadl retrains its classifier"),
        (["--n-initial", "1"], r"argument --n-initial: expected an integer >= 2, got 1"),
        (["--test-size", "3"], r"skal: error: The --test-size option must be an int in the "
                               r"range \[10, 1787\] for 'digits'"),
        (["--pool-size", "5", "--n-initial", "2", "--rounds", "0"],
         r"The --pool-size option must be an int in the range \[10, "),
        (["--dropout", "1.5"], r"The --dropout option must be a float in \[0, 1\)"),
        (["--device", "nope"], r"skal: error: The --device option must be a torch device such "
                               r"as 'cpu'"),
    ],
)
def test_options_are_checked_before_anything_is_written(extra, match, tmp_path, capsys):
    out = tmp_path / "run"
    args = _without(TINY_RANDOM, "--width")  # waal refuses --width
    assert main(["run", *args, *extra, "--out", str(out)]) == 2
    _one_line_error(capsys, match)
    assert not out.exists()


def test_cuda_without_a_gpu_is_one_line_and_writes_nothing(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "run"
    assert main(["run", *TINY, "--device", "cuda", "--out", str(out)]) == 2
    _one_line_error(capsys, r"skal: error: --device cuda was asked for, but torch sees no CUDA "
                            r"GPU on this machine\. Use --device cpu\.")
    assert not out.exists()
    assert main(["run", *TINY, "--rounds", "0", "--device", "cpu", "--out", str(out)]) == 0


@pytest.mark.parametrize("kind", ["file", "empty", "below a file"])
def test_bad_out_is_one_line(kind, tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("x")
    out, match = {
        "file": (str(target), r"skal: error: The output folder .*a-file is a file, not a folder"),
        "empty": ("", r"skal: error: The output folder must be a non-empty path"),
        "below a file": (str(target / "run"), r"skal: error: Cannot create the output folder"),
    }[kind]
    assert main(["run", *TINY, "--rounds", "0", "--out", out]) == 2
    _one_line_error(capsys, match)


def test_damaged_checkpoint_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", *TINY_RANDOM, "--rounds", "0", "--out", str(out)]) == 0
    (out / "state.json").write_text("{")
    assert main(["run", *TINY_RANDOM, "--rounds", "0", "--out", str(out)]) == 2
    _one_line_error(capsys, r"skal: error: .*state\.json is damaged: not valid JSON")


def test_options_go_to_the_methods_that_use_them(tmp_path):
    out = tmp_path / "runs"
    assert main(["run", *TINY, "--rounds", "0", "--methods", "bald,random", "--subsample", "50",
                 "--out", str(out)]) == 0
    assert load_run(out / "bald").config.subsample == 50
    assert load_run(out / "random").config.subsample is None
    with open(out / "random" / "config.json") as f:
        assert json.load(f)["n_mc_samples"] is None  # what the run really used


def test_a_finished_run_is_extended(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["run", *TINY_RANDOM, "--rounds", "0", "--out", out]) == 0
    assert main(["run", *TINY_RANDOM, "--rounds", "1", "--repeats", "2", "--out", out]) == 0
    assert [(r["repeat"], r["round"]) for r in load_run(out).rows] == [(0, 0), (0, 1), (1, 0),
                                                                       (1, 1)]


# ------------------------------------------------------------------ failures during training
def test_divergence_exits_1_with_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", *TINY_RANDOM, "--method", "random", "--rounds", "0", "--epochs", "3",
                 "--lr", "1000", "--out", str(out)]) == 1
    _one_line_error(capsys, r"skal: error: Training diverged in round 0 of repeat 1 of method "
                            r"'random' .*Lower --lr \(now 1000\), e\.g\. --lr 100\.")


def test_a_value_error_during_training_keeps_its_traceback(tmp_path):
    """Only configuration errors are usage errors: a bug in training is not turned into exit 2."""
    from skal.experiment import METHODS, Method, register_method

    class Broken:
        def __init__(self, *args):
            pass

        def fit(self, X, y):
            raise ValueError("boom inside fit")

    register_method("test-broken", Method(METHODS["random"].query_strategy,
                                          make_estimator=Broken), overwrite=True)
    try:
        with pytest.raises(ValueError, match="boom inside fit"):
            main(["run", *TINY_RANDOM, "--method", "test-broken", "--out",
                  str(tmp_path / "run")])
    finally:
        METHODS.pop("test-broken")


def test_second_run_on_the_same_folder_is_refused_while_the_first_lives(tmp_path):
    """Two real processes: the second refuses; the first's lock dies with it (kill -9)."""
    from skal.experiment.storage import RunLock

    out = tmp_path / "run"
    # 20 + 6k labels: never a last batch of one sample (which BatchNorm cannot train on)
    # (long enough to outlive the second: it is killed once that one is refused)
    args = [*_without(TINY, "--epochs"), "--method", "bald", "--rounds", "25",
            "--query-size", "6", "--epochs", "40"]
    cmd, kwargs = python_m_skal("run", *args, "--out", str(out))
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    try:
        deadline = time.monotonic() + 120
        while not (out / ".lock").exists() or not (out / ".lock").read_text().strip():
            assert first.poll() is None and time.monotonic() < deadline, "no lock appeared"
            time.sleep(0.05)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)
        assert first.poll() is None, "the first run ended before the second was refused"
        assert second.returncode == 2, second.stderr
        assert f"is in use by another skal run (pid {first.pid})" in second.stderr
        assert second.stderr.count("\n") == 1
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    with RunLock(str(out)):  # the stale lock of the killed process is taken over
        pass
