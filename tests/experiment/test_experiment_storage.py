"""Run folders: damaged checkpoints, the lock, file modes, thread counts, extending a run."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from skal.exceptions import ConfigError, RunFolderError
from skal.experiment import ExperimentConfig, load_run, run_experiment
from skal.experiment import storage

TINY = dict(
    dataset="digits", method="random", n_initial=20, query_size=10, n_rounds=1, repeats=1,
    pool_size=200, test_size=100, width=2, max_epochs=1, batch_size=32,
)
RUN_FILES = ("config.json", "state.json", "results.jsonl", "results.csv", "learning_curve.png")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run (2 rounds, 1 repeat), copied by each test that changes it."""
    out = tmp_path_factory.mktemp("finished") / "run"
    run_experiment(ExperimentConfig(**TINY), out, progress=False)
    return out


@pytest.fixture
def run_copy(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out


def _edit_state(out, edit):
    path = out / "state.json"
    state = json.loads(path.read_text())
    edit(state)
    path.write_text(json.dumps(state))


def _rerun(out, **changes):
    return run_experiment(ExperimentConfig(**{**TINY, **changes}), out, progress=False)


# ------------------------------------------------------------------ damaged checkpoints
@pytest.mark.parametrize("content", ['{"format": 1, "conf', "", b"\xff\xfe\x00garbage"])
def test_damaged_state_json_names_the_file(run_copy, content):
    path = run_copy / "state.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(RunFolderError, match=r"state\.json is damaged: not valid JSON .*"
                                             r"Restore it, or delete .* to start the run over"):
        _rerun(run_copy)
    with pytest.raises(RunFolderError, match=r"state\.json is damaged"):
        load_run(run_copy)


def test_damaged_config_json_can_be_rewritten_from_the_state(run_copy):
    (run_copy / "config.json").write_text("not json")
    with pytest.raises(RunFolderError, match=r"config\.json is damaged: not valid JSON.*Delete "
                                             r".*config\.json: it is rewritten from state\.json"):
        _rerun(run_copy)
    (run_copy / "config.json").unlink()  # what the message says to do
    result = _rerun(run_copy)
    assert json.loads((run_copy / "config.json").read_text()) == result.config.to_dict()


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda s: s.pop("repeats"), r"the key\(s\) \['repeats'\] are missing"),
        (lambda s: s.update(repeats={}), r"'repeats' and 'results' must be lists"),
        (lambda s: s.update(format=99), r"unknown checkpoint format 99"),
        (lambda s: s.update(config=[1]), r"'config' must be a JSON object"),
        (lambda s: s["repeats"][0].pop("labels"), r"repeat entry 0 lacks one of"),
        (lambda s: s["repeats"][0].update(rounds_done="2"), r"repeat 0 has a value of the wrong"),
        (lambda s: s["repeats"][0]["labeled"].__setitem__(1, s["repeats"][0]["labeled"][0]),
         r"repeat 0 lists pool index \d+ twice"),
        (lambda s: s["repeats"][0].update(rounds_done=1),
         r"repeat 0 says 1 rounds are done but holds result rows for rounds \[0, 1\]"),
        (lambda s: (s["repeats"][0].update(rounds_done=0), s["results"].clear()),
         r"repeat 0 holds 30 labels after 0 rounds; expected 20"),
        (lambda s: s["repeats"][0]["labeled"].append(199) or s["repeats"][0]["labels"].append(0),
         r"state\.json (is damaged|does not match)"),
        (lambda s: s["results"].append({"round": 5}), r"a result row lacks 'repeat' or 'round'"),
        (lambda s: s["results"][0].update(repeat=3),
         r"a result row belongs to repeat 3, but only 1 are recorded"),
    ],
)
def test_inconsistent_state_json_is_refused_naming_the_file(run_copy, edit, match):
    _edit_state(run_copy, edit)
    with pytest.raises(RunFolderError, match=r"state\.json") as info:
        _rerun(run_copy, n_rounds=3)
    assert re.search(match, str(info.value)), str(info.value)


def test_last_round_set_back_with_its_row_is_redone(run_copy):
    """rounds_done and the rows set back together, labels kept: a consistent earlier state."""
    before = load_run(run_copy)
    _edit_state(run_copy, lambda s: (s["repeats"][0].update(rounds_done=1), s["results"].pop()))
    assert len(load_run(run_copy).rows) == 1
    assert _comparable(_rerun(run_copy).rows) == _comparable(before.rows)


def test_deleted_state_json_with_results_is_refused(run_copy):
    (run_copy / "state.json").unlink()
    with pytest.raises(RunFolderError, match=r"has results but no state\.json \(the checkpoint "
                                             r"was deleted\).*Restore .*state\.json"):
        _rerun(run_copy)


def test_leftover_tmp_files_are_removed_when_the_folder_is_opened(run_copy):
    for name in (".tmp-1a2b3c4d-state.json", ".tmp-results.csv"):
        (run_copy / name).write_text("half a file")
    _rerun(run_copy)
    assert not [p for p in os.listdir(run_copy) if p.startswith(".tmp-")]


def test_files_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        run_experiment(ExperimentConfig(**{**TINY, "n_rounds": 0}), tmp_path / "run",
                       progress=False)
    finally:
        os.umask(old)
    for name in RUN_FILES:
        assert stat.S_IMODE(os.stat(tmp_path / "run" / name).st_mode) == 0o644, name


# ------------------------------------------------------------------ the lock
def test_a_locked_folder_is_refused_and_free_again_after(run_copy):
    with storage.RunLock(str(run_copy)):
        with pytest.raises(RunFolderError, match=rf"{run_copy} is in use by another skal run "
                                                 rf"\(pid {os.getpid()}\)"):
            _rerun(run_copy)
    _rerun(run_copy)  # released


def test_pid_file_lock_without_fcntl(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "_fcntl", None)
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".lock").write_text(f"{dead.pid}\n")  # stale: its process is gone
    with storage.RunLock(str(out)):
        assert (out / ".lock").read_text().strip() == str(os.getpid())
        with pytest.raises(RunFolderError, match=r"in use by another skal run"):
            storage.RunLock(str(out)).__enter__()
    assert not (out / ".lock").exists()


# ------------------------------------------------------------------ thread count, device
def test_resume_with_another_thread_count_is_refused(run_copy):
    _edit_state(run_copy, lambda s: s.update(torch_threads=7))
    threads = torch.get_num_threads()
    with pytest.raises(RunFolderError, match=rf"was run with 7 torch thread\(s\); this process "
                                             rf"has {threads}.*OMP_NUM_THREADS=7"):
        _rerun(run_copy, n_rounds=2)


def test_thread_count_is_recorded(finished):
    state = json.loads((finished / "state.json").read_text())
    assert state["torch_threads"] == torch.get_num_threads()


def test_the_machine_is_recorded(finished):
    state = json.loads((finished / "state.json").read_text())
    here = storage.machine_info()
    assert state["machines"] == [here]
    assert here["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert here["torch"] == torch.__version__ and here["processor"]
    assert load_run(finished).machines == [here]


def test_a_run_resumed_on_another_machine_warns_and_records_both(run_copy):
    other = {"torch": "2.0.0", "cpu_capability": "AVX2", "processor": "Some Older CPU"}
    _edit_state(run_copy, lambda s: s.update(machines=[other]))
    with pytest.warns(RuntimeWarning, match=r"was started on Some Older CPU \(AVX2 kernels, "
                                            r"torch 2\.0\.0\); this is .*not be bit-identical"):
        result = _rerun(run_copy, n_rounds=2)
    assert result.machines == [other, storage.machine_info()]
    assert len(result.rows) == 3  # it resumed
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # both are known now: no second warning
        _rerun(run_copy, n_rounds=2)


def test_a_run_saved_before_machines_were_recorded_resumes_quietly(run_copy):
    _edit_state(run_copy, lambda s: s.pop("machines"))
    assert load_run(run_copy).machines == []
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no machine warning (the tiny run is
        result = _rerun(run_copy, n_rounds=2)           # at chance level: that one may come)
    assert result.machines == [storage.machine_info()]


def test_a_run_started_on_another_device_resumes_here(run_copy):
    """The device is not part of a run's identity; each row records where it ran."""
    def on_gpu(state):
        state["config"]["device"] = "cuda"
        for row in state["results"]:
            row["device"] = "cuda"

    _edit_state(run_copy, on_gpu)
    config = json.loads((run_copy / "config.json").read_text())
    (run_copy / "config.json").write_text(json.dumps({**config, "device": "cuda"}))
    result = _rerun(run_copy, n_rounds=2)  # resumed on the CPU
    assert [r["device"] for r in result.rows] == ["cuda", "cuda", "cpu"]
    assert result.config.device == "cuda"  # the device it started on
    header = (run_copy / "results.csv").read_text().splitlines()[0]
    assert header.endswith(",device")


# ------------------------------------------------------------------ extending a run
def _comparable(rows):
    return [{k: v for k, v in r.items() if k not in ("fit_seconds", "query_seconds")}
            for r in rows]


def test_extending_rounds_and_repeats_matches_a_run_made_at_that_size(run_copy, tmp_path):
    _rerun(run_copy, n_rounds=2)  # one more round after a finished 1-round run
    extended = _rerun(run_copy, n_rounds=2, repeats=2)  # and one more repeat
    direct = run_experiment(ExperimentConfig(**{**TINY, "n_rounds": 2, "repeats": 2}),
                            tmp_path / "direct", progress=False)
    for a, b in zip(extended.labeled, direct.labeled, strict=True):
        np.testing.assert_array_equal(a, b)
    assert _comparable(extended.rows) == _comparable(direct.rows)
    assert extended.config == direct.config
    saved = json.loads((run_copy / "config.json").read_text())
    assert saved["n_rounds"] == 2 and saved["repeats"] == 2


def test_shrinking_a_run_is_refused(run_copy):
    with pytest.raises(RunFolderError, match=r"holds 2 rounds of repeat 1 .*more than "
                                             r"n_rounds=0 asks for.*Use n_rounds >= 1"):
        _rerun(run_copy, n_rounds=0)
    _rerun(run_copy, repeats=2)
    with pytest.raises(RunFolderError, match=r"holds 2 repeats, more than repeats=1"):
        _rerun(run_copy, repeats=1)


def test_other_changes_are_still_refused(run_copy):
    with pytest.raises(RunFolderError, match=r"different configuration \(max_epochs: 1 -> 2\)"):
        _rerun(run_copy, max_epochs=2)


# ------------------------------------------------------------------ sizes and output folders
@pytest.mark.parametrize(
    "changes, match",
    [
        ({"test_size": 3}, r"'test_size' parameter of ExperimentConfig must be an int in the "
                           r"range \[10, 1787\] for 'digits'"),
        ({"pool_size": 5, "n_initial": 2, "n_rounds": 0},
         r"'pool_size' parameter of ExperimentConfig must be an int in the range \[10, "),
        ({"pool_size": 5000, "test_size": None},
         r"'pool_size' .* range \[10, 1348\]"),
    ],
)
def test_sizes_are_checked_against_the_data_set_before_writing(tmp_path, changes, match):
    with pytest.raises(ConfigError, match=match):
        _rerun(tmp_path / "run", **changes)
    assert not (tmp_path / "run").exists()


def test_an_initial_set_of_one_class_names_n_initial(tmp_path):
    from skal.experiment import load_experiment_data

    for seed in range(100):  # the first seed whose two initial labels share a class
        config = ExperimentConfig(**{**TINY, "n_initial": 2, "n_rounds": 0, "seed": seed})
        data = load_experiment_data(config)
        _, y_pool = data.pool(0)
        if len(np.unique(y_pool[data.initial_indices(0)])) == 1:
            break
    with pytest.raises(ConfigError, match=r"initial labelled set of repeat 1 \(2 random pool "
                                          r"samples\) holds only class .* raise n_initial"):
        run_experiment(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kind", ["file", "empty", "below a file"])
def test_bad_output_folders(tmp_path, kind):
    target = tmp_path / "a-file"
    target.write_text("x")
    out, match = {
        "file": (str(target), r"a-file is a file, not a folder"),
        "empty": ("", r"The output folder must be a non-empty path\. Got ''"),
        "below a file": (str(target / "run"), r"Cannot create the output folder .*a-file/run"),
    }[kind]
    with pytest.raises(RunFolderError, match=match):
        _rerun(out)


def test_unwritable_output_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(storage.os, "access", lambda *args, **kwargs: False)  # tests run as root
    with pytest.raises(RunFolderError, match=r"Cannot write to the output folder .*permission"):
        _rerun(tmp_path / "run")
