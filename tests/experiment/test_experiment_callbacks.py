"""The hooks of run_experiment (RunCallback) and the runner's data (load_experiment_data)."""

import dataclasses
import json
import os

import numpy as np
import pytest

from skal.experiment import (
    ExperimentConfig,
    ExperimentData,
    RoundContext,
    RunCallback,
    load_experiment_data,
    load_run,
    run_experiment,
)

from experiment_helpers import TINY

# results columns that measure time, not the run
_TIMES = ("fit_seconds", "query_seconds")


class Recorder(RunCallback):
    """Logs every hook as (hook, repeat, round, n_labeled), keeps contexts, models, rows."""

    def __init__(self, predict=False):
        self.log, self.contexts, self.models, self.queried, self.rows = [], [], {}, {}, {}
        self.predict = predict

    def _touch(self, ctx, model=None):
        if self.predict and model is not None:  # draws from torch's global generator
            model.predict_proba(ctx.X_test)
        np.random.rand(3)  # and from numpy's

    def on_round_begin(self, ctx, **kwargs):
        self.log.append(("begin", ctx.repeat, ctx.round, ctx.n_labeled))
        self.contexts.append(ctx)
        self._touch(ctx)

    def on_fit_end(self, ctx, model, **kwargs):
        self.log.append(("fit", ctx.repeat, ctx.round, ctx.n_labeled))
        self.models[ctx.repeat, ctx.round] = model
        self._touch(ctx, model)

    def on_query_end(self, ctx, model, new_indices, **kwargs):
        self.log.append(("query", ctx.repeat, ctx.round, ctx.n_labeled))
        self.queried[ctx.repeat, ctx.round] = new_indices
        self._touch(ctx, model)

    def on_round_end(self, ctx, model, row, **kwargs):
        self.log.append(("end", ctx.repeat, ctx.round, ctx.n_labeled))
        self.rows[ctx.repeat, ctx.round] = row
        self._touch(ctx, model)


def _round_hooks(repeat, rnd, n_rounds, n_labeled):
    hooks = ["begin", "fit"] + (["query"] if rnd < n_rounds else []) + ["end"]
    return [(hook, repeat, rnd, n_labeled) for hook in hooks]


def _without_times(rows):
    """The rows without their timings, by (repeat, round) (an extended run appends)."""
    rows = sorted(rows, key=lambda row: (row["repeat"], row["round"]))
    return [{k: v for k, v in row.items() if k not in _TIMES} for row in rows]


def _assert_same_run(a, b):
    assert _without_times(a.rows) == _without_times(b.rows)
    for x, y in zip(a.labeled + a.labels, b.labeled + b.labels):
        np.testing.assert_array_equal(x, y)
    with open(os.path.join(a.out_dir, "config.json")) as f, \
            open(os.path.join(b.out_dir, "config.json")) as g:
        assert json.load(f) == json.load(g)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A bald run without callbacks (MC dropout: the query draws random numbers)."""
    config = ExperimentConfig(method="bald", **TINY)
    return run_experiment(config, tmp_path_factory.mktemp("plain") / "run", progress=False)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    recorder = Recorder(predict=True)
    config = ExperimentConfig(method="bald", **TINY)
    result = run_experiment(config, tmp_path_factory.mktemp("rec") / "run", progress=False,
                            callbacks=[recorder])
    return result, recorder


# ---------------------------------------------------------------------------- results
def test_callbacks_do_not_change_the_results(plain, recorded):
    result, recorder = recorded
    assert len(recorder.log) > 0  # they ran, drew random numbers and predicted
    _assert_same_run(plain, result)


def _global_random(model, X_pool, n_instances, random_state=None):
    """A strategy that ignores its seed: draws from numpy's and torch's global generators."""
    import torch

    scores = np.random.rand(len(X_pool)) + torch.rand(len(X_pool)).numpy()
    return np.argsort(-scores)[:n_instances], scores


def test_hooks_leave_the_global_random_states_alone(tmp_path):
    import torch

    from skal.experiment import METHODS, Method, register_method

    register_method("test-global-random", Method(_global_random))
    try:
        config = ExperimentConfig(method="test-global-random", **{**TINY, "repeats": 1})
        results = []
        for name, callbacks in (("plain", None), ("hooked", [Recorder(predict=True)])):
            np.random.seed(0)
            torch.manual_seed(0)
            results.append(run_experiment(config, tmp_path / name, progress=False,
                                          callbacks=callbacks))
    finally:
        del METHODS["test-global-random"]
    _assert_same_run(*results)


def test_hooks_fire_in_the_documented_order(recorded):
    result, recorder = recorded
    n_rounds = TINY["n_rounds"]
    expected = [hook for repeat in range(TINY["repeats"]) for rnd in range(n_rounds + 1)
                for hook in _round_hooks(repeat, rnd, n_rounds,
                                         TINY["n_initial"] + rnd * TINY["query_size"])]
    assert recorder.log == expected
    # the row passed at the end of a round is the saved one
    for row in result.rows:
        assert recorder.rows[row["repeat"], row["round"]] == row


def test_the_query_hook_gets_the_newly_labelled_indices(recorded):
    result, recorder = recorded
    n0, q = TINY["n_initial"], TINY["query_size"]
    for (repeat, rnd), new in recorder.queried.items():
        start = n0 + rnd * q
        np.testing.assert_array_equal(new, result.labeled[repeat][start:start + q])


def test_a_callback_keeps_the_fitted_model_of_every_round(recorded):
    result, recorder = recorded
    data = load_experiment_data(result.config)
    assert sorted(recorder.models) == [(r["repeat"], r["round"]) for r in result.rows]
    models = {id(m) for m in recorder.models.values()}
    assert len(models) == len(result.rows)  # a new model every round (no warm_start)
    for row in result.rows:
        model = recorder.models[row["repeat"], row["round"]]
        assert model.score(data.X_test, data.y_test) == pytest.approx(row["accuracy"])


def test_the_context_is_the_round_read_only(recorded):
    result, recorder = recorded
    data = load_experiment_data(result.config)
    n0, q = TINY["n_initial"], TINY["query_size"]
    for ctx in recorder.contexts:
        assert isinstance(ctx, RoundContext) and ctx.config == result.config
        assert ctx.out_dir == result.out_dir
        X_pool, y_pool = data.pool(ctx.repeat)
        np.testing.assert_array_equal(ctx.X_pool, X_pool)
        np.testing.assert_array_equal(ctx.y_pool, y_pool)
        np.testing.assert_array_equal(ctx.X_test, data.X_test)
        np.testing.assert_array_equal(ctx.classes, np.arange(10))
        # the labelled set of the round, not of the end of the repeat
        np.testing.assert_array_equal(
            ctx.labeled, result.labeled[ctx.repeat][:n0 + ctx.round * q])
        for name in ("X_pool", "y_pool", "labeled", "X_test", "y_test", "classes"):
            with pytest.raises(ValueError, match="read-only"):
                getattr(ctx, name)[0] = 0
        with pytest.raises(dataclasses.FrozenInstanceError):
            ctx.round = 5


# ---------------------------------------------------------------------------- resume
class _StopAfter(RunCallback):
    def __init__(self, rnd):
        self.rnd = rnd

    def on_round_end(self, ctx, model, row, **kwargs):
        if ctx.round == self.rnd:
            raise KeyboardInterrupt(f"stop after round {ctx.round}")


def test_a_resumed_run_fires_only_the_rounds_it_runs(plain, tmp_path):
    config = ExperimentConfig(method="bald", **TINY)
    with pytest.raises(KeyboardInterrupt, match="stop after round 1"):  # exceptions propagate
        run_experiment(config, tmp_path / "run", progress=False, callbacks=[_StopAfter(1)])
    assert len(load_run(tmp_path / "run").rows) == 2  # round 1 was saved before its hook
    recorder = Recorder()
    result = run_experiment(config, tmp_path / "run", progress=False, callbacks=[recorder])
    n0, q, n_rounds = TINY["n_initial"], TINY["query_size"], TINY["n_rounds"]
    assert recorder.log == (
        _round_hooks(0, 2, n_rounds, n0 + 2 * q)
        + [h for rnd in range(n_rounds + 1) for h in _round_hooks(1, rnd, n_rounds, n0 + rnd * q)]
    )
    _assert_same_run(plain, result)
    again = Recorder()
    run_experiment(config, tmp_path / "run", progress=False, callbacks=[again])
    assert again.log == []  # a finished run runs nothing


def test_the_catch_up_query_of_an_extended_run_fires_fit_and_query(plain, tmp_path):
    short = ExperimentConfig(method="bald", **{**TINY, "n_rounds": 1})
    run_experiment(short, tmp_path / "run", progress=False)
    recorder = Recorder(predict=True)
    result = run_experiment(ExperimentConfig(method="bald", **TINY), tmp_path / "run",
                            progress=False, callbacks=[recorder])
    n0, q = TINY["n_initial"], TINY["query_size"]
    per_repeat = ([("fit", 0, 1, n0 + q), ("query", 0, 1, n0 + q)]
                  + _round_hooks(0, 2, 2, n0 + 2 * q))
    assert recorder.log == [(h, repeat, rnd, n) for repeat in (0, 1)
                            for h, _, rnd, n in per_repeat]
    np.testing.assert_array_equal(recorder.queried[0, 1], result.labeled[0][n0 + q:n0 + 2 * q])
    _assert_same_run(plain, result)


def test_callbacks_run_in_the_order_given(tmp_path):
    order = []

    class Named(RunCallback):
        def __init__(self, name):
            self.name = name

        def on_fit_end(self, ctx, model):  # written without **kwargs: still called
            order.append(self.name)

    config = ExperimentConfig(method="random", **{**TINY, "repeats": 1, "n_rounds": 0})
    run_experiment(config, tmp_path, progress=False, callbacks=[Named("a"), Named("b")])
    assert order == ["a", "b"]


def test_every_hook_takes_keyword_arguments_as_skorchs_do():
    import inspect

    hooks = [name for name in vars(RunCallback) if name.startswith("on_")]
    assert sorted(hooks) == ["on_fit_end", "on_query_end", "on_round_begin", "on_round_end"]
    for name in hooks:
        kinds = [p.kind for p in inspect.signature(getattr(RunCallback, name)).parameters.values()]
        assert kinds[-1] is inspect.Parameter.VAR_KEYWORD, name
        getattr(RunCallback(), name)(*[None] * (len(kinds) - 2), future=1)  # a new keyword


@pytest.mark.parametrize("callbacks", [Recorder(), [Recorder(), object()], "abc", 3])
def test_callbacks_must_be_run_callbacks(tmp_path, callbacks):
    config = ExperimentConfig(method="random", **{**TINY, "repeats": 1, "n_rounds": 0})
    with pytest.raises(TypeError, match="The 'callbacks' parameter of run_experiment must"):
        run_experiment(config, tmp_path / "run", progress=False, callbacks=callbacks)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------- data
def test_experiment_data_is_what_the_run_used(recorded):
    result, _ = recorded
    data = load_experiment_data(result.config.to_dict())  # a dict works too
    assert isinstance(data, ExperimentData)
    for repeat in range(TINY["repeats"]):
        X_pool, y_pool = data.pool(repeat)
        np.testing.assert_array_equal(X_pool, data.X_train[data.pool_rows(repeat)])
        # state.json: the initial labels first, then what the rounds queried
        np.testing.assert_array_equal(result.labeled[repeat][:TINY["n_initial"]],
                                      data.initial_indices(repeat))
        np.testing.assert_array_equal(result.labels[repeat], y_pool[result.labeled[repeat]])


def test_pools_and_initial_sets_keep_their_values():
    # the values every saved run folder depends on: a change here makes resume refuse them
    data = load_experiment_data(ExperimentConfig(method="random", **TINY))
    assert data.pool_rows(0)[:6].tolist() == [2, 4, 12, 14, 21, 23]
    assert data.pool_rows(1)[:6].tolist() == [15, 29, 35, 57, 58, 60]
    assert data.initial_indices(0)[:6].tolist() == [78, 36, 123, 24, 132, 118]
    assert data.initial_indices(1)[:6].tolist() == [171, 193, 101, 134, 160, 99]
    assert data.initial_indices(0).dtype == np.int64
    assert data.y_test[:8].tolist() == [9, 5, 7, 6, 7, 8, 8, 6]
    assert len(data.candidates) == 1797 - 100 and len(np.unique(data.pool_rows(0))) == 200
    # the pool is a subset of the candidates, and the test rows are not among them
    assert np.isin(data.pool_rows(1), data.candidates).all()
