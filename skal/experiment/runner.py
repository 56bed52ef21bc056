"""The simulated-oracle loop: data, pools, seeds, rounds, and what each round records.

Everything random is a pure function of ``(seed, repeat, round, purpose)``:

- the pool (a subsample of the train split) and the initial labelled set depend on
  ``(seed, repeat)`` only, so every method run with the same seed starts from the same labels;
- the test subsample depends on ``seed`` only (the same for every repeat and method);
- the weights' initialisation / shuffling / dropout of round ``r`` and the query's randomness
  depend on ``(seed, repeat, r)``.

That, and a checkpoint after every round (:mod:`skal.experiment.storage`), makes a run
resumable and extendable: the model of the next round is retrained from its seed, so an
interrupted or extended run ends with exactly the labels of an uninterrupted one -- on the CPU,
with the same torch thread count (``OMP_NUM_THREADS`` / ``torch.set_num_threads``), which is
why the thread count is recorded and a resume with another one is refused.
"""

import dataclasses
import inspect
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

from .. import augment
from .._divergence import diverged_epoch, train_losses
from .._validation import check_device
from ..datasets import load_dataset, load_images
from ..exceptions import ConfigError, DivergenceError
from .config import ExperimentConfig, derive_seed, is_data_path
from .methods import METHODS, Method
from .plots import plot_learning_curves, run_title
from .storage import (
    CURVE_PNG,
    ExperimentResult,
    RunLock,
    check_out_dir,
    check_repeat_state,
    load_run,
    open_run,
    save_state,
    write_results,
)

__all__ = ["run_experiment"]

# purposes mixed into the seeds, so that no two random draws share a stream
_POOL, _INITIAL, _TEST, _FIT, _QUERY = range(5)

# data sets without an official test split: a stratified hold-out of this fraction of the
# train split serves as test set (unless test_size says how many)
_HOLDOUT_FRACTION = {"digits": 0.25}


# the VAE-ACGAN's own divergence error (skal.exceptions.DivergenceError where it uses that)
_AugmenterDiverged = getattr(augment, "ConvergenceError", DivergenceError)


# ---------------------------------------------------------------------------- data
def _stratified_subset(y, size, seed):
    """Sorted positions of a stratified random subset of ``size`` rows (all rows if None)."""
    if size is None or size >= len(y):
        return np.arange(len(y))
    subset, _ = train_test_split(
        np.arange(len(y)), train_size=size, stratify=y, random_state=seed
    )
    return np.sort(subset)


@dataclass
class _Data:
    X_train: np.ndarray
    y_train: np.ndarray
    candidates: np.ndarray  # train-split rows the pool may be drawn from
    X_test: np.ndarray
    y_test: np.ndarray
    classes: np.ndarray


def _check_size(name, value, n_classes, n_available, dataset):
    if value is not None and not n_classes <= value <= n_available:
        raise ConfigError(
            f"The '{name}' parameter of ExperimentConfig must be an int in the range "
            f"[{n_classes}, {n_available}] for {dataset!r} (at least one sample per class, at "
            f"most all of them) or None. Got {value!r} instead."
        )


def _load_path(path, config):
    """Images and labels of an image folder or .npz file; labels are required."""
    X, y = load_images(path, image_size=config.image_size)
    if y is None:
        raise ConfigError(
            f"{path} has no labels, and a simulated oracle needs them: put the images in one "
            "sub-folder per class, or store them as y= in the .npz file. To label images "
            "yourself, use 'skal label init'."
        )
    return X, y


def _load_data(config):
    """The train split (pool candidates) and the test set, the same for every repeat."""
    path = is_data_path(config.dataset)
    if path:
        try:
            X_train, y_train = _load_path(config.dataset, config)
        except ValueError as exc:  # unreadable files, sizes that differ: the user's to fix
            raise ConfigError(str(exc)) from None
    else:
        X_train, y_train = load_dataset(config.dataset, "train")
    classes = np.unique(y_train)
    test_seed = derive_seed(config.seed, _TEST)
    if config.test is not None:
        candidates = np.arange(len(y_train))
        try:
            X_test, y_test = _load_path(config.test, config)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        _check_size("test_size", config.test_size, len(classes), len(y_test), config.test)
        test = _stratified_subset(y_test, config.test_size, test_seed)
        X_test, y_test = X_test[test], y_test[test]
    elif config.dataset in _HOLDOUT_FRACTION or path:
        _check_size("test_size", config.test_size, len(classes), len(y_train) - len(classes),
                    config.dataset)
        fraction = _HOLDOUT_FRACTION.get(config.dataset, 0.25)
        n_test = config.test_size or round(fraction * len(y_train))
        test = _stratified_subset(y_train, n_test, test_seed)
        candidates = np.setdiff1d(np.arange(len(y_train)), test)
        X_test, y_test = X_train[test], y_train[test]
    else:
        candidates = np.arange(len(y_train))
        X_test, y_test = load_dataset(config.dataset, "test")
        _check_size("test_size", config.test_size, len(classes), len(y_test), config.dataset)
        test = _stratified_subset(y_test, config.test_size, test_seed)
        X_test, y_test = X_test[test], y_test[test]
    _check_size("pool_size", config.pool_size, len(classes), len(candidates), config.dataset)
    if config.n_labeled_final > len(candidates):
        raise ConfigError(
            f"The pool is too small: n_initial + n_rounds * query_size = "
            f"{config.n_labeled_final} labels, but {config.dataset!r} has only "
            f"{len(candidates)} pool samples."
        )
    return _Data(X_train, y_train, candidates, X_test, y_test, classes)


def _pool_rows(config, data, repeat):
    """Train-split rows of this repeat's pool (sorted); pool index i is row ``rows[i]``."""
    seed = derive_seed(config.seed, _POOL, repeat)
    subset = _stratified_subset(data.y_train[data.candidates], config.pool_size, seed)
    return data.candidates[subset]


def _initial_indices(config, n_pool, repeat):
    rng = np.random.default_rng(derive_seed(config.seed, _INITIAL, repeat))
    return rng.choice(n_pool, config.n_initial, replace=False).astype(np.int64)


def _check_initial_sets(config, data):
    """Every repeat's initial labelled set holds two classes at least (a classifier needs two)."""
    for repeat in range(config.repeats):
        y_pool = data.y_train[_pool_rows(config, data, repeat)]
        classes = np.unique(y_pool[_initial_indices(config, len(y_pool), repeat)])
        if len(classes) < 2:
            raise ConfigError(
                f"The initial labelled set of repeat {repeat + 1} ({config.n_initial} random "
                f"pool samples) holds only class {classes[0]!r}, and a classifier needs two: "
                "raise n_initial (--n-initial) or change the seed."
            )


def _new_repeat_state(config, pool_rows, repeat, y_pool):
    initial = _initial_indices(config, len(pool_rows), repeat)
    return {
        "repeat": repeat,
        "rounds_done": 0,
        "n_pool": len(pool_rows),
        "labeled": initial.tolist(),
        "labels": y_pool[initial].tolist(),
        "seeds": {
            "pool": derive_seed(config.seed, _POOL, repeat),
            "initial": derive_seed(config.seed, _INITIAL, repeat),
            "test": derive_seed(config.seed, _TEST),
        },
    }


# ---------------------------------------------------------------------------- one repeat
def _augmenter_advice(exc):
    """What to say when the VAE-ACGAN itself diverged (None: the classifier did, lower --lr).

    The augmenter names itself first in its messages, and the classifier when that is the part
    that diverged (``classifier=``, or the learner's "the classifier ... diverged").
    """
    text = str(exc)
    if not text.startswith("GenerativeAugmenter") or "classifier=" in text:
        return None
    return ("The VAE-ACGAN (GenerativeAugmenter, at its default lr) diverged, not the "
            "classifier; its settings are not skal run options: try another seed or batch "
            "size, or run the method with a GenerativeAugmenter of a lower lr "
            "(skal.experiment.register_method)")



def _trained_net(model):
    """The net with a skorch history: the model, or an ActiveLearner's estimator."""
    for net in (model, getattr(model, "estimator", None)):
        if getattr(net, "history_", None) is not None:
            return net
    return model


def _epochs_trained(model):
    """Epochs in the fitted model's skorch history (fewer than planned after early stopping)."""
    for net in (model, getattr(model, "estimator", None)):
        history = getattr(net, "history_", None)
        if history is not None:
            return len(history)
    return None


@dataclass
class _Repeat:
    """One repeat in progress: its pool, its labelled pool indices and how to train and query."""

    config: ExperimentConfig
    method: Method
    data: _Data
    index: int
    X_pool: np.ndarray
    y_pool: np.ndarray
    labeled: np.ndarray  # pool indices in acquisition order
    out_dir: str = ""
    rounds_saved: int = 0

    def _remaining(self):
        return np.setdiff1d(np.arange(len(self.y_pool)), self.labeled)

    def new_model(self, rnd):
        """A fresh model for round ``rnd`` (round 0's for the whole repeat with warm_start)."""
        config = self.config
        seed = derive_seed(config.seed, _FIT, self.index, 0 if config.warm_start else rnd)
        n_labeled = len(self.labeled)
        epochs = config.epochs_for(n_labeled, len(self.y_pool) - n_labeled)
        config = dataclasses.replace(config, max_epochs=epochs)
        return self.method.make_estimator(config, seed, self.data.classes), epochs

    def _diverged(self, rnd, detail, advice=None):
        lr = self.config.lr
        if advice is not None:  # keep the augmenter's account, not its lr hint
            detail = detail.split(". ")[0]
        advice = advice or (f"Lower the learning rate lr={lr:g} (--lr), e.g. to {lr / 10:g}")
        return DivergenceError(
            f"Training diverged in round {rnd} of repeat {self.index + 1} of method "
            f"{self.config.method!r} ({self.config.estimator}): {detail.rstrip('.')}. "
            f"{advice}. The {self.rounds_saved} finished round(s) of this repeat are saved in "
            f"{self.out_dir}; other settings need another output folder."
        )

    def fit(self, model, rnd):
        """Train the round's model; a diverged training raises :class:`DivergenceError`."""
        kwargs = {}
        if self.method.pass_unlabeled:
            kwargs["X_unlabeled"] = self.X_pool[self._remaining()]
        if _takes(model.fit, "new_rows"):  # e.g. BGADLClassifier(rec_source="new")
            kwargs["new_rows"] = self.config.query_size if rnd > 0 else len(self.labeled)
        try:
            model.fit(self.X_pool[self.labeled], self.y_pool[self.labeled], **kwargs)
        except (FloatingPointError, _AugmenterDiverged) as exc:  # DivergenceError is one
            raise self._diverged(rnd, str(exc), advice=_augmenter_advice(exc)) from exc
        net = _trained_net(model)
        found = diverged_epoch(train_losses(net), len(self.data.classes))
        if found is not None:
            epoch, loss = found
            chance = math.log(max(len(self.data.classes), 2))
            raise self._diverged(
                rnd, f"the training loss of {type(net).__name__} is {loss:.3g} at epoch {epoch} "
                     f"(chance level: {chance:.2f})"
            )

    def query(self, model, rnd):
        """``query_size`` new pool indices from the strategy, never one already labelled."""
        config = self.config
        remaining = self._remaining()
        picked, _ = self.method.query_strategy(
            model, self.X_pool[remaining], config.query_size,
            random_state=derive_seed(config.seed, _QUERY, self.index, rnd),
            **self.method.query_kwargs(config),
        )
        new = remaining[np.asarray(picked, dtype=np.int64)]
        if len(np.unique(new)) != config.query_size:
            raise RuntimeError(
                f"The query strategy of {config.method!r} returned {len(np.unique(new))} "
                f"distinct indices; expected {config.query_size}."
            )
        return new

    def run_round(self, model, rnd, epochs):
        """Fit, score and (except in the last round) query and label; returns the result row."""
        start = time.perf_counter()
        self.fit(model, rnd)
        fit_seconds = time.perf_counter() - start
        accuracy = float(model.score(self.data.X_test, self.data.y_test))
        row = {
            "method": self.config.method,
            "dataset": self.config.dataset,
            "repeat": self.index,
            "round": rnd,
            "n_labeled": len(self.labeled),
            "accuracy": accuracy,
            "epochs": epochs,
            "fit_seconds": round(fit_seconds, 3),
            "query_seconds": 0.0,
            "epochs_trained": _epochs_trained(model),
            "device": str(self.config.device),
        }
        if rnd < self.config.n_rounds:
            start = time.perf_counter()
            self.labeled = np.concatenate([self.labeled, self.query(model, rnd)])
            row["query_seconds"] = round(time.perf_counter() - start, 3)
        return row

    def catch_up_query(self, rnd):
        """Query after finished round ``rnd``, which was the last of a shorter run (extension).

        Its model is retrained from the round's seed (the same weights on the CPU), so the
        extended run picks what an uninterrupted longer run would have picked.
        """
        model, epochs = self.new_model(rnd)
        self.fit(model, rnd)
        start = time.perf_counter()
        self.labeled = np.concatenate([self.labeled, self.query(model, rnd)])
        return model, epochs, round(time.perf_counter() - start, 3)


def _run_repeat(config, data, state, index, out_dir, progress):
    pool_rows = _pool_rows(config, data, index)
    X_pool, y_pool = data.X_train[pool_rows], data.y_train[pool_rows]
    if index == len(state["repeats"]):
        state["repeats"].append(_new_repeat_state(config, pool_rows, index, y_pool))
    record = state["repeats"][index]
    rows = [row for row in state["results"] if row["repeat"] == index]
    labeled, pending = check_repeat_state(record, y_pool, config, rows,
                                          os.path.join(out_dir, "state.json"), out_dir)
    repeat = _Repeat(config, METHODS[config.method], data, index, X_pool, y_pool, labeled,
                     out_dir=out_dir, rounds_saved=record["rounds_done"])
    total = config.n_rounds + 1
    bar = tqdm(
        total=total, initial=record["rounds_done"], unit="round", leave=False,
        desc=f"{config.method} repeat {index + 1}/{config.repeats}",
        disable=not (progress and sys.stderr.isatty()),
    )
    model = None
    with bar:
        if pending:  # the run was extended after its last round
            model, epochs, seconds = repeat.catch_up_query(record["rounds_done"] - 1)
            rows[-1]["query_seconds"] = seconds
            record.update(labeled=repeat.labeled.tolist(), labels=y_pool[repeat.labeled].tolist())
            save_state(out_dir, state)
        for rnd in range(record["rounds_done"], total):
            if model is None or not config.warm_start:
                model, epochs = repeat.new_model(rnd)
            row = repeat.run_round(model, rnd, epochs)
            record.update(rounds_done=rnd + 1, labeled=repeat.labeled.tolist(),
                          labels=y_pool[repeat.labeled].tolist())
            state["results"].append(row)
            save_state(out_dir, state)
            repeat.rounds_saved = rnd + 1
            bar.update(1)
            if progress:
                tqdm.write(_summary_line(config, row), file=sys.stdout)
                sys.stdout.flush()  # one line per round, also when stdout is a file


def _summary_line(config, row):
    return (
        f"[{config.method}] repeat {row['repeat'] + 1}/{config.repeats} round "
        f"{row['round']}/{config.n_rounds}: {row['n_labeled']} labels, test accuracy "
        f"{row['accuracy']:.4f} (fit {row['fit_seconds']:.1f} s, query "
        f"{row['query_seconds']:.1f} s)"
    )


# ---------------------------------------------------------------------------- public API
def run_experiment(
    config: ExperimentConfig | Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    progress: bool = True,
) -> ExperimentResult:
    """Run (or resume, or extend) a simulated active-learning experiment, saved in ``out_dir``.

    Writes ``config.json``, ``state.json`` (the checkpoint, replaced atomically after every
    round), ``results.jsonl`` and ``results.csv`` (one row per repeat and round) and
    ``learning_curve.png``. If ``out_dir`` already holds this experiment, finished rounds are
    skipped and the run continues where it stopped; with more ``n_rounds`` or ``repeats`` than
    saved it grows. A run may move between devices (each row records its ``device``), but not
    between torch thread counts: on the CPU the trained weights, and so the queried samples,
    depend on ``torch.get_num_threads()`` (``OMP_NUM_THREADS``), so a resume with another count
    is refused. While it runs, the folder is locked against a second run.

    Parameters
    ----------
    config : ExperimentConfig or dict
        The experiment; a dict is passed to :meth:`ExperimentConfig.from_dict`.
    out_dir : str or path-like
        The run folder: created if needed, resumed if it holds this experiment.
    progress : bool, default=True
        Show progress bars (on a terminal) and print one summary line per round.

    Returns
    -------
    result : ExperimentResult
        Everything the folder holds once the run is done (:func:`load_run` of it).

    Raises
    ------
    skal.exceptions.ConfigError
        If the configuration is invalid (a ``ValueError``).
    skal.exceptions.RunFolderError
        If ``out_dir`` holds a different experiment, is damaged, is used by another run, or
        cannot be written (a ``ConfigError``).
    skal.exceptions.DeviceError
        If ``config.device`` is not on this machine (checked before anything is written).
    skal.exceptions.DivergenceError
        If training diverges; the rounds finished before are kept.

    Examples
    --------
    >>> from skal.experiment import ExperimentConfig, run_experiment
    >>> config = ExperimentConfig(dataset="digits", method="bald", n_initial=20, query_size=10,
    ...                           n_rounds=1, repeats=1, width=2, max_epochs=1)
    >>> result = run_experiment(config, "runs/doctest", progress=False)  # doctest: +SKIP
    >>> [row["n_labeled"] for row in result.rows]  # doctest: +SKIP
    [20, 30]
    """
    if isinstance(config, dict):
        config = ExperimentConfig.from_dict(config)
    check_device(config.device, owner="ExperimentConfig")
    out_dir = os.fspath(out_dir)
    data = _load_data(config)  # checks the sizes against the data set: before any write
    _check_initial_sets(config, data)
    check_out_dir(out_dir)
    with RunLock(out_dir):
        state = open_run(config, out_dir, torch.get_num_threads())
        write_results(out_dir, state["results"])
        for repeat in range(config.repeats):
            _run_repeat(config, data, state, repeat, out_dir, progress)
        result = load_run(out_dir)
        plot_learning_curves({config.method: result.rows}, os.path.join(out_dir, CURVE_PNG),
                             title=run_title(config, data))
    return result


def _takes(fn, name):
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
