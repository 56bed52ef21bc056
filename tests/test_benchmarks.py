"""The benchmark scripts: public skal names only, no changes to the method registry behind the
user's back, the shared skeleton (benchmarks/_bench.py), and the run configurations of the
committed results (a changed configuration makes a resume refuse their folders)."""

import ast
import csv
import dataclasses
import importlib
import json
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(ROOT, "benchmarks")
SCRIPTS = sorted(f for f in os.listdir(BENCHMARKS) if f.endswith(".py"))
_MUTATORS = ("update", "pop", "popitem", "setdefault", "clear", "__setitem__", "__delitem__")


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def violations(source):
    """What a benchmark must not do: use private skal names, or change METHODS itself."""
    tree = ast.parse(source)
    found, skal_names = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "skal":
                    skal_names.add(alias.asname or "skal")
                    found += [f"import {alias.name}" for part in alias.name.split(".")
                              if _private(part)]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "skal":
            found += [f"from {node.module}" for part in node.module.split(".") if _private(part)]
            for alias in node.names:
                skal_names.add(alias.asname or alias.name)
                if _private(alias.name):
                    found.append(f"from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in skal_names:
                found.append(f"{ast.unparse(node)}")
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
        for target in targets:
            if isinstance(target, ast.Subscript) and _is_methods(target.value):
                found.append(f"{ast.unparse(target)} changed")
            if isinstance(target, ast.Attribute) and _is_skal_attr(target, skal_names):
                found.append(f"{ast.unparse(target)} assigned")
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in _MUTATORS and _is_methods(
                    func.value):
                found.append(f"{ast.unparse(func)}()")
            if any(k.arg == "overwrite" for k in node.keywords):
                found.append(f"{ast.unparse(func)}(overwrite=...)")
    return found


def _is_methods(node):
    return (isinstance(node, ast.Name) and node.id == "METHODS") or (
        isinstance(node, ast.Attribute) and node.attr == "METHODS")


def _is_skal_attr(node, skal_names):
    root = node.value
    while isinstance(root, ast.Attribute):
        root = root.value
    return isinstance(root, ast.Name) and root.id in skal_names


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmarks_use_public_names_and_leave_the_registry_alone(script):
    with open(os.path.join(BENCHMARKS, script), encoding="utf-8") as f:
        assert violations(f.read()) == []


def test_the_check_finds_what_it_looks_for():
    source = """
import skal.estimators
import skal.data._pool as pools
from skal.experiment import _load_data, METHODS, register_method
from skal.estimators.bgadl._step import Step
from skal import experiment as ex
skal.estimators._RealDataStats = object
x = ex._pool_rows
METHODS["bald"] = None
del METHODS["random"]
ex.METHODS.update({})
register_method("bald", None, overwrite=True)
ok = skal.__version__
"""
    assert sorted(violations(source)) == sorted([
        "import skal.data._pool",
        "from skal.experiment import _load_data",
        "from skal.estimators.bgadl._step",
        "skal.estimators._RealDataStats",
        "ex._pool_rows",
        "skal.estimators._RealDataStats assigned",
        "METHODS['bald'] changed",
        "METHODS['random'] changed",
        "ex.METHODS.update()",
        "register_method(overwrite=...)",
    ])


# ---------------------------------------------------------------------------- the skeleton
@pytest.fixture
def bench(monkeypatch):
    """benchmarks/ on sys.path (as when a script runs); the registry restored afterwards."""
    from skal.experiment import METHODS

    monkeypatch.syspath_prepend(BENCHMARKS)
    before = dict(METHODS)
    yield importlib.import_module("_bench")
    for name in set(METHODS) - set(before):
        del METHODS[name]


def test_csv_tables_are_real_csv(bench, tmp_path):
    rows = [{"arm": "a, b", "epochs": [3, 5], "acc": 0.5, "n": None}]
    bench.write_csv(tmp_path / "t.csv", rows)
    text = (tmp_path / "t.csv").read_text()
    assert text == 'arm,epochs,acc,n\n"a, b","[3, 5]",0.5,\n'
    with open(tmp_path / "t.csv", newline="") as f:
        assert list(csv.DictReader(f)) == [{"arm": "a, b", "epochs": "[3, 5]", "acc": "0.5",
                                            "n": ""}]


def test_tables_statistics_and_folders(bench):
    assert bench.md_table(["a", "b"], [[1, ""], ["x", 2.5]]) == [
        "| a | b |", "|---|---|", "| 1 |  |", "| x | 2.5 |"]
    assert bench.mean_std([], 2) == (None, None)
    assert bench.mean_std([1.0, 2.0], 2) == (1.5, 0.5)
    rows = [{"n_labeled": 10, "accuracy": 0.5}, {"n_labeled": 20, "accuracy": 0.7},
            {"n_labeled": 30, "accuracy": 0.7}]
    assert bench.auc(rows) == pytest.approx((0.6 * 10 + 0.7 * 10) / 20)
    assert bench.run_dir("OUT", "bald", 3) == os.path.join("OUT", "runs", "bald", "seed3")
    assert bench.jobs_for(["a", "b"], 5, 2) == [("a", 5), ("b", 5), ("a", 6), ("b", 6)]


def test_presets_fill_what_the_command_line_left_open(bench):
    presets = {"scaled": {"size": 10, "device": "cpu"}, "tiny": {"size": 2, "device": "cpu"}}
    p = bench.new_parser("A benchmark.\n\nMore.")
    bench.add_presets(p, presets, {"tiny": "a quick check"}, default="scaled")
    bench.add_run_options(p, out="OUT", repeats=3, arms=("x", "y"))
    args = p.parse_args(["--tiny", "--device", "cuda"])
    assert bench.apply_presets(args, presets, "scaled") == "tiny"
    assert (args.size, args.device, args.repeats, args.out) == (2, "cuda", 3, "OUT")
    assert bench.split_arms(p, " y,x ,", ("x", "y")) == ["y", "x"]
    with pytest.raises(SystemExit):
        bench.split_arms(p, "x,z", ("x", "y"))


def test_own_methods_are_registered_once_and_never_over_another(bench):
    from skal import random_sampling
    from skal.experiment import METHODS, Method

    own = {"bench-test-method": Method(random_sampling)}
    bench.register_methods(own)
    bench.register_methods(own)  # the same objects again: nothing happens
    assert METHODS["bench-test-method"] is own["bench-test-method"]
    with pytest.raises(ValueError, match="exists already"):
        bench.register_methods({"bench-test-method": Method(random_sampling)})
    builtin = METHODS["bald"]
    with pytest.raises(ValueError, match="exists already"):
        bench.register_methods({"bald": Method(random_sampling)})
    assert METHODS["bald"] is builtin


def test_an_arm_file_refuses_another_definition(bench, tmp_path):
    bench.check_arm_file(tmp_path / "run", {"arm": "w0", "params": {"gen_weight": 0.0}})
    bench.check_arm_file(tmp_path / "run", {"arm": "w0", "params": {"gen_weight": 0.0}})
    with pytest.raises(ValueError, match="another definition of arm 'w0'"):
        bench.check_arm_file(tmp_path / "run", {"arm": "w0", "params": {"gen_weight": 0.1}})


# ---------------------------------------------------------------------------- committed runs
def _saved(path):
    from skal.experiment import ExperimentConfig

    with open(os.path.join(BENCHMARKS, "results", path, "config.json")) as f:
        return ExperimentConfig.from_dict(json.load(f))


def _same_run(config, path):
    saved = _saved(path)
    assert config.identity() == saved.identity()
    assert (config.n_rounds, config.repeats) == (saved.n_rounds, saved.repeats)


@pytest.mark.parametrize("arm", ["random", "entropy", "waal", "random_steps", "waal_short",
                                 "random_es", "entropy_es", "waal_es"])
def test_reproduce_waal_makes_the_committed_configurations(bench, arm):
    waal = importlib.import_module("reproduce_waal")
    waal.register_methods()
    _same_run(waal.config_for(waal.parse_args([]), arm, 0), f"waal/runs/{arm}/seed0")


@pytest.mark.parametrize("arm", ["random", "waal"])
def test_waal_epoch_curves_makes_the_committed_configurations(bench, arm):
    waal = importlib.import_module("reproduce_waal")
    curves = importlib.import_module("waal_epoch_curves")
    waal.register_methods()
    bench.register_methods(curves.CURVE_METHODS)
    config = waal.config_for(waal.parse_args(["--rounds", "0", "--epochs", "80"]), arm, 1)
    config = dataclasses.replace(config, method=f"{waal.RUN_NAMES[arm]}-curve")
    _same_run(config, f"waal/epoch_curves/runs/{arm}/seed1")


@pytest.mark.parametrize("arm", ["bgadl", "bald", "random", "random_gen", "ceiling"])
def test_reproduce_bgadl_makes_the_committed_configurations(bench, arm):
    bgadl = importlib.import_module("reproduce_bgadl")
    bench.register_methods(bgadl.OWN_METHODS)
    _same_run(bgadl.config_for(bgadl.parse_args([]), arm, 1), f"bgadl/runs/{arm}/seed1")


def test_the_ablation_arms_keep_their_configurations(bench, monkeypatch):
    # no committed runs yet: the arms' configurations and arm.json records as they were made
    ablation = importlib.import_module("bgadl_ablation")
    args = ablation.parse_args([])
    bench.register_methods(ablation.methods_for(args))
    config = ablation.config_for(args, "w0.3", 2).to_dict()
    assert {k: config[k] for k in ("method", "n_initial", "query_size", "n_rounds", "seed",
                                   "max_epochs", "min_steps", "batch_size", "estimator")} == {
        "method": "ablation_w0.3", "n_initial": 200, "query_size": 200, "n_rounds": 3,
        "seed": 2, "max_epochs": 15, "min_steps": 800, "batch_size": 32,
        "estimator": "ResNet18Classifier(width=8)"}
    authors = ablation.config_for(args, "lenet_bgadl", 0).to_dict()
    assert (authors["n_initial"], authors["n_rounds"], authors["max_epochs"],
            authors["subsample"]) == (100, 7, 50, 2000)
    assert ablation._arm_record(args, "small_gan_half") == {
        "arm": "small_gan_half", "label": "BGADL, small E/G/D, updated every other step",
        "query": "bald", "model": "bgadl", "protocol": "scaled",
        "params": {"gan_width": 32, "gan_hidden": 256, "gan_steps": 0.5}}


# the arms that re-estimate BatchNorm; every other committed run was made with the default of
# its time, recalibrate_bn=False (the default is "auto" since: True with a positive gen_weight)
_BN_ARMS = {"bn", "new", "separate", "warm_gan", "gan2", "bgadl_crop_flip", "small_gan"}


def test_the_ablation_arms_keep_recalibrate_bn_as_their_runs_were_made(bench):
    import numpy as np

    ablation = importlib.import_module("bgadl_ablation")
    args = ablation.parse_args([])
    bench.register_methods(ablation.methods_for(args))
    made = {}
    for name in ablation.ARMS:
        config = ablation.config_for(args, name, 0)
        est = ablation.methods_for(args)[ablation.method_name(name)].make_estimator(
            config, 0, np.arange(10))
        if "recalibrate_bn" in est.get_params():  # not the plain LeNet of lenet_bald
            made[name] = est.get_params()["recalibrate_bn"]
    assert made == {name: name in _BN_ARMS for name in made}
    assert {"bgadl", "w0.1", "random_gen", "small_gan_half", "lenet_bgadl"} <= set(made)
    # ... while the arm.json records (which a resume compares) stay as the runs wrote them
    runs = os.path.join(BENCHMARKS, "results", "bgadl_ablation", "runs")
    for name in sorted(os.listdir(runs)):
        for seed in sorted(os.listdir(os.path.join(runs, name))):
            with open(os.path.join(runs, name, seed, "arm.json")) as f:
                assert json.load(f) == ablation._arm_record(args, name), (name, seed)


def test_bgadl_cost_variants_keep_recalibrate_bn_as_measured(bench):
    cost = importlib.import_module("bgadl_cost")
    for name, (_, params) in cost.VARIANTS.items():
        if params is None:
            continue
        expected = name in {"bn", "separate_bn", "bgadl_crop_flip"}
        assert cost.make(name, 2, 0, 1).recalibrate_bn is expected, name


def test_the_ablation_report_says_where_each_run_ran(bench, tmp_path):
    from skal.experiment import ExperimentConfig, machine_info, run_experiment

    ablation = importlib.import_module("bgadl_ablation")
    args = ablation.parse_args(["--out", str(tmp_path), "--repeats", "2"])
    tiny = dict(dataset="digits", method="random", n_initial=20, query_size=10, n_rounds=0,
                repeats=1, pool_size=100, test_size=50, width=2, max_epochs=1)
    run_experiment(ExperimentConfig(**tiny), bench.run_dir(tmp_path, "bald", 0), progress=False)
    old = bench.run_dir(tmp_path, "random", 1)
    run_experiment(ExperimentConfig(**tiny), old, progress=False)
    state = json.load(open(os.path.join(old, "state.json")))
    del state["machines"]  # a run saved before skal recorded them
    json.dump(state, open(os.path.join(old, "state.json"), "w"))
    here = machine_info()
    lines = ablation.machine_lines(ablation.collect(args, ["bald", "random", "w0"]))
    assert lines[0].startswith("Machines (on the CPU the same seed")
    assert lines[2:] == [
        f"- {here['processor']}, torch {here['torch']}, {here['cpu_capability']} kernels: "
        "bald/seed0",
        "- not recorded (run before skal recorded the machine): random/seed1"]
    assert ablation.machine_lines(ablation.collect(args, ["w0"])) == []


def test_the_ablation_report_pairs_runs_with_bald_of_the_same_seed_and_machine(bench, tmp_path,
                                                                               capsys):
    from skal.experiment import ExperimentConfig, run_experiment

    ablation = importlib.import_module("bgadl_ablation")
    other = tmp_path / "other"
    other.mkdir()
    args = ablation.parse_args(["--out", str(tmp_path / "out"), "--repeats", "2",
                                "--baseline-out", str(other)])
    tiny = dict(dataset="digits", method="random", n_initial=20, query_size=10, n_rounds=1,
                repeats=1, pool_size=100, test_size=50, width=2, max_epochs=1)

    def run(folder, arm, seed, **edit):
        path = bench.run_dir(folder, arm, seed)
        run_experiment(ExperimentConfig(**{**tiny, "seed": seed}), path, progress=False)
        state = json.load(open(os.path.join(path, "state.json")))
        for row, accuracy in zip(state["results"], edit.get("accuracies", [])):
            row["accuracy"] = accuracy  # tiny nets score alike: give each run its own numbers
        for row in state["results"]:
            row["fit_seconds"], row["query_seconds"] = edit.get("seconds", 1.0) - 1.0, 1.0
        if "processor" in edit:
            state["machines"] = [{**state["machines"][0], "processor": edit["processor"]}]
        json.dump(state, open(os.path.join(path, "state.json"), "w"))

    run(args.out, "bald", 0, accuracies=[0.5, 0.6], seconds=10.0)
    run(other, "bald", 1, accuracies=[0.4, 0.7], seconds=5.0)  # seed 1's partner: --baseline-out
    run(args.out, "random", 0, accuracies=[0.55, 0.5], seconds=30.0)
    run(args.out, "random", 1, accuracies=[0.47, 0.6], seconds=10.0)
    run(args.out, "w0", 0, processor="another CPU")  # ran on another machine: no partner

    runs = ablation.collect(args, ["bald", "random", "w0"])
    assert len(runs["w0"]) == 1
    deltas = ablation.paired_deltas(args, runs, ["bald", "random", "w0"])
    assert deltas == {"random": {20: pytest.approx([5.0, 7.0]),
                                 30: pytest.approx([-10.0, -10.0])}}
    lines = ablation.paired_lines(args, runs, ["bald", "random", "w0"], [20, 30])
    assert lines[1].startswith("Paired with the BALD run")
    assert ablation.paired_cost_ratios(args, runs, ["random", "w0"]) == {
        "random": pytest.approx([3.0, 2.0])}
    # mean ± standard error: pairs +5, +7 -> +6.0 ± 1.0; -10, -10 -> -10.0 ± 0.0
    assert lines[-1] == "| `random` | +6.0 ± 1.0 (2) | -10.0 ± 0.0 (2) | -10.0 | 2.5 |"
    with pytest.raises(SystemExit):  # a mistyped folder is an error, not an empty pairing
        ablation.parse_args(["--baseline-out", str(tmp_path / "nowhere")])
    assert "--baseline-out must name existing output folders" in capsys.readouterr().err
    # without --baseline-out seed 1 has no partner
    alone = ablation.parse_args(["--out", str(tmp_path / "out"), "--repeats", "2"])
    assert ablation.paired_deltas(alone, runs, ["random"]) == {
        "random": {20: pytest.approx([5.0]), 30: pytest.approx([-10.0])}}
    assert ablation.paired_lines(alone, runs, ["random"], [20, 30])[-1] == (
        "| `random` | +5.0 (1) | -10.0 (1) | -10.0 | 3.0 |")  # one pair: no standard error


def _tiny_run(out):
    from skal.experiment import ExperimentConfig, run_experiment

    run_experiment(ExperimentConfig(dataset="digits", method="random", n_initial=20,
                                    query_size=10, n_rounds=0, repeats=1, pool_size=100,
                                    test_size=50, width=2, max_epochs=1), out, progress=False)


def test_a_run_folder_in_use_stops_a_benchmark_with_the_reason(bench, tmp_path, monkeypatch):
    from skal.experiment import storage

    out = str(tmp_path / "run")
    os.makedirs(out)
    monkeypatch.setattr(sys, "argv", ["benchmarks/bgadl_ablation.py", "--arms", "gan2"])
    with storage.RunLock(out):  # as another process running the same arm and seed holds it
        with pytest.raises(SystemExit, match=rf"^bgadl_ablation\.py: error: {re.escape(out)} "
                                             r"is in use by another skal run"):
            bench.run_jobs([(out,)], _tiny_run)
    assert not os.path.exists(os.path.join(out, "state.json"))
    bench.run_jobs([(out,)], _tiny_run)  # free again: the same job runs
    assert os.path.exists(os.path.join(out, "state.json"))


def test_strategies_runs_the_builtin_methods(bench):
    strategies = importlib.import_module("strategies")
    args = strategies.parse_args(["--tiny", "--arms", "bald,badge"])
    assert (args.pool_size, args.rounds, args.memory_pools, args.arms) == (
        300, 2, (1000, 2000), ["bald", "badge"])
    config = strategies.config_for(args, "badge", 4)
    assert (config.method, config.seed, config.n_mc_samples) == ("badge", 4, None)
