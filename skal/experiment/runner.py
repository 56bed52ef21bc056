"""The simulated-oracle loop: rounds, seeds, the callbacks' hooks and what each round records.

Each repeat trains and queries through one :class:`skal.ActiveLearner` (the loop of the Python
API and of ``skal label``): every round hands it the model its method built; the first round a
process runs is a ``fit`` on the labels so far, every later round a ``teach`` of the batch the
last query picked. The learner decides what the estimator trains on (the unlabelled rest of
the pool for WAAL and FixMatch, the number of new labels for BGADL).

The data, pools and initial labels are those of :mod:`skal.experiment.data`. Everything random is
a pure function of ``(seed, repeat, round, purpose)``:

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
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.utils._param_validation import make_constraint
from tqdm.auto import tqdm

from ..estimators import bgadl as augment
from ..exceptions import (
    ChanceAccuracyWarning,
    ConfigError,
    DeviceError,
    DivergenceError,
)
from ..utils.divergence import diverged_epoch, train_losses
from ..utils.params import class_constraints
from ..utils.validation import check_device
from .callbacks import RoundContext, RunCallback
from .config import (
    ExperimentConfig,
    derive_seed,
    option_fields,
    option_name,
    option_setting,
    option_subject,
)
from .data import FIT, INITIAL, POOL, QUERY, TEST, ExperimentData, load_experiment_data
from .diagnostics import round_diagnostics
from .methods import METHODS, Method, unlabeled_steps
from .plots import plot_learning_curves, run_title
from .storage import (
    CURVE_PNG,
    ExperimentResult,
    RunLock,
    check_out_dir,
    check_repeat_state,
    load_run,
    machine_info,
    open_run,
    save_state,
    write_results,
)

__all__ = ["run_experiment"]

# the VAE-ACGAN's own divergence error (skal.exceptions.DivergenceError where it uses that)
_AugmenterDiverged = getattr(augment, "ConvergenceError", DivergenceError)


# ---------------------------------------------------------------------------- data
def _check_initial_sets(config, data):
    """Every repeat's initial labelled set holds two classes at least (a classifier needs two)."""
    for repeat in range(config.repeats):
        y_pool = data.y_train[data.pool_rows(repeat)]
        classes = np.unique(y_pool[data.initial_indices(repeat)])
        if len(classes) < 2:
            raise ConfigError(
                f"The initial labelled set of repeat {repeat + 1} ({config.n_initial} random "
                f"pool samples) holds only class {classes[0]!r}, and a classifier needs two: "
                f"raise {option_name('n_initial')} or change the seed."
            )


# ---------------------------------------------------------------------------- estimator
# scikit-learn's wording of an invalid parameter
_INVALID = re.compile(r"The '(\w+)' parameter of \w+ must be .+\. Got (.+) instead\.", re.S)


def _accepted_values(f):
    """Values of field ``f`` that the configuration accepts (a sample), or None for any."""
    kind, low = f.metadata["kind"], f.metadata["low"]
    values = [None] if f.default is None else []
    if kind == "int":
        return values + [low + i for i in range(4)] + [64, 2**20]
    if kind == "float":
        base = 0.0 if low is None else float(low)
        return values + [base + d for d in (1e-6, 1e-3, 0.1, 0.5, 0.9, 1.0, 10.0, 1e3)]
    if kind == "bool":
        return values + [False, True]
    if kind == "choice":
        return values + list(f.metadata["choices"])
    return None


def _estimator_error(config, net, exc):
    """A ConfigError naming the configuration field (or flag) for an estimator's refusal."""
    found = _INVALID.fullmatch(str(exc).strip())
    fields = {f.name: f for f in option_fields()}
    if found is None or found.group(1) not in fields:
        return ConfigError(f"Method {config.method!r} builds an invalid {type(net).__name__}: "
                           f"{exc}")
    name, got = found.groups()
    constraints = [make_constraint(c) for c in class_constraints(type(net)).get(name, [])]
    constraints = [c for c in constraints if not c.hidden]
    accepted = _accepted_values(fields[name])
    # leave out what the option cannot take (e.g. batch_size=-1), but keep its reason
    kept = [c for c in constraints
            if accepted is None or any(c.is_satisfied_by(v) for v in accepted)] or constraints
    reasons = [str(c).split(": ", 1)[1] for c in constraints
               if c not in kept and ": " in str(c)]
    parts = [str(c) for c in kept]
    expected = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} or {parts[-1]}"
    why = f" ({'; '.join(reasons)})" if reasons else ""
    return ConfigError(f"{option_subject(name)} must be {expected} for method "
                       f"{config.method!r}{why}. Got {got} instead.")


def check_estimator_params(config: ExperimentConfig, classes: np.ndarray) -> None:
    """Check the parameters the configuration gives its method's estimator, before any fit.

    :func:`run_experiment` calls it before it writes anything; the ``skal`` command calls it
    for every method before it runs the first one.

    Parameters
    ----------
    config : ExperimentConfig
        The experiment.
    classes : ndarray
        The classes of the data set.

    Raises
    ------
    skal.exceptions.ConfigError
        If the estimator refuses a parameter (e.g. ``batch_size=1`` for a ResNet18, whose
        BatchNorm layers cannot train on one sample); the message names the configuration field.
    """
    kwargs = {"encoder": None} if _uses_recipe(config) else {}
    model = METHODS[config.method].make_estimator(config, 0, classes, **kwargs)
    for net in _nets(model):  # the model, an ActiveLearner's estimator, a Pipeline's last step
        check = getattr(net, "_check_params", None)
        if not callable(check):
            continue
        try:
            check()
        except DeviceError:
            raise
        except ValueError as exc:  # scikit-learn's InvalidParameterError is one
            raise _estimator_error(config, net, exc) from None
        return


def _uses_recipe(config):
    """Whether the method's estimator is built for a recipe other than plain ``"scratch"``."""
    recipe = config.recipe_spec()
    return recipe.uses_encoder or recipe.semi_supervised != "none"


def _nets(model):
    """The model, an ActiveLearner's estimator and a Pipeline's last step (what may be a net)."""
    inner = getattr(model, "estimator", None)
    found = [model, inner]
    for est in (model, inner):
        steps = getattr(est, "steps", None)
        if isinstance(steps, list) and steps:
            found.append(steps[-1][1])
    return [net for net in found if net is not None]


#: derive_seed purpose of a repeat's encoder (after POOL, INITIAL, TEST, FIT, QUERY)
ENCODER = 5


def repeat_encoder(config, X_pool, X_test, repeat, cache_dir):
    """The encoder a recipe's models start from in ``repeat``, or None without one.

    Fitted on the repeat's pool images (no labels) with a seed of ``(seed, repeat)``, and cached
    in ``cache_dir`` by the pool's content and the settings, so a resumed run and every method
    of ``skal run --methods`` reuse it. For ``"ssl-head"`` it comes as an
    :class:`skal.recipe.EncodedFeatures` holding the features of the pool and test images.
    """
    from ..recipe import EncodedFeatures, fit_encoder

    recipe = config.recipe_spec()
    if not recipe.uses_encoder:
        return None
    encoder = fit_encoder(recipe, X_pool, random_state=derive_seed(config.seed, ENCODER, repeat),
                          cache_dir=cache_dir, device=config.device)
    if recipe.training != "head":
        return encoder
    features = EncodedFeatures(encoder)
    features.transform(X_pool)  # embedded once, in a fixed order (the same on a resume)
    features.transform(X_test)
    return features


def _new_repeat_state(config, data, repeat, y_pool):
    initial = data.initial_indices(repeat)
    return {
        "repeat": repeat,
        "rounds_done": 0,
        "n_pool": len(y_pool),
        "labeled": initial.tolist(),
        "labels": y_pool[initial].tolist(),
        "seeds": {
            "pool": derive_seed(config.seed, POOL, repeat),
            "initial": derive_seed(config.seed, INITIAL, repeat),
            "test": derive_seed(config.seed, TEST),
        },
    }


# ---------------------------------------------------------------------------- callbacks
def _check_callbacks(callbacks):
    if callbacks is None:
        return ()
    if isinstance(callbacks, RunCallback) or not isinstance(callbacks, Sequence):
        raise TypeError(
            "The 'callbacks' parameter of run_experiment must be a sequence of "
            f"skal.experiment.RunCallback instances or None. Got {callbacks!r} instead."
        )
    for callback in callbacks:
        if not isinstance(callback, RunCallback):
            raise TypeError(
                "The 'callbacks' parameter of run_experiment must hold "
                f"skal.experiment.RunCallback instances. Got {callback!r} "
                f"({type(callback).__name__}) instead."
            )
    return tuple(callbacks)


def _fork_devices():
    """The CUDA device whose random state a hook may change (none before CUDA is used)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return [torch.cuda.current_device()]
    return []


class _Hooks:
    """Calls one hook of every callback, in order, with the global random states restored.

    A hook that predicts draws from torch's global generator (skorch's DataLoader does); the
    runner's own draws are seeded, but restoring the states keeps a run with callbacks
    bit-identical to one without whatever a hook does.
    """

    def __init__(self, callbacks):
        self.callbacks = callbacks

    def __call__(self, hook, *args):
        if not self.callbacks:
            return
        numpy_state = np.random.get_state()
        with torch.random.fork_rng(devices=_fork_devices()):
            for callback in self.callbacks:
                getattr(callback, hook)(*args)
        np.random.set_state(numpy_state)


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


def _gan_advice(exc, net):
    """What to say when a BGADL classifier's VAE-ACGAN diverged (None: the classifier did)."""
    gan_lr = getattr(net, "gan_lr", None)
    if getattr(exc, "loss_name", "loss_C") == "loss_C" or not isinstance(gan_lr, float):
        return None
    return (f"The VAE-ACGAN diverged, not the classifier: lower its gan_lr (now {gan_lr:g}, not "
            "a run option), e.g. with a method whose make_estimator is "
            f"functools.partial(skal.experiment.make_bgadl, gan_lr={gan_lr / 10:g})")


def _summary(exc, advice):
    """The estimator's account of a divergence, without its own advice (the runner gives one)."""
    summary = getattr(exc, "summary", None)  # set by skal's estimators
    if summary is not None:
        return summary
    return str(exc).split(". ")[0] if advice is not None else str(exc)


def _trained_net(model):
    """The net with a skorch history: the model, an ActiveLearner's estimator or a Pipeline's
    last step."""
    for net in _nets(model):
        if getattr(net, "history_", None) is not None:
            return net
    return model


def _epochs_trained(model):
    """Epochs in the fitted model's skorch history (fewer than planned after early stopping)."""
    for net in _nets(model):
        history = getattr(net, "history_", None)
        if history is not None:
            return len(history)
    return None


def _new_learner(config, method):
    """The repeat's :class:`skal.ActiveLearner`: it fits, queries and teaches for the runner.

    It fits the object each round's ``make_estimator`` built (``clone_estimator=False``) and is
    the one that decides what the estimator trains on: the unlabelled rest of the pool for a
    ``fit`` that takes ``X_unlabeled`` (WAAL, FixMatch; only for methods with
    ``pass_unlabeled`` or a semi-supervised recipe), the number of new labels for a ``fit`` that
    takes ``new_rows`` (BGADL).
    """
    from ..learner import ActiveLearner

    semi = config.semi_supervised not in (None, "none")
    return ActiveLearner(None, query_strategy=method.query_strategy,
                         pass_pool=bool(method.pass_unlabeled or semi), clone_estimator=False)


#: parameters of a method's own ActiveLearner that the runner's learner does not take from it
_RUNNER_OWNS = ("query_strategy", "X_training", "y_training", "pass_pool", "clone_estimator")


@dataclass
class _Repeat:
    """One repeat in progress: its pool, its labelled pool indices and the learner that trains
    and queries."""

    config: ExperimentConfig
    method: Method
    data: ExperimentData
    index: int
    X_pool: np.ndarray
    y_pool: np.ndarray
    labeled: np.ndarray  # pool indices in acquisition order
    out_dir: str = ""
    rounds_saved: int = 0
    hooks: _Hooks = dataclasses.field(default_factory=lambda: _Hooks(()))
    encoder: Any = None  # the recipe's fitted encoder (None without one)
    learner: Any = None  # the repeat's ActiveLearner (see _new_learner)
    built: Any = None  # what make_estimator built for the learner's current estimator
    queried: Any = None  # (pool rows of the last query, its picks' rows and labels) until taught

    def __post_init__(self):
        if self.learner is None:
            self.learner = _new_learner(self.config, self.method)

    def _remaining(self):
        return np.setdiff1d(np.arange(len(self.y_pool)), self.labeled)

    def context(self, rnd):
        """The round as the callbacks see it (read-only, with a copy of the labelled set)."""
        return RoundContext(
            config=self.config, repeat=self.index, round=rnd, out_dir=self.out_dir,
            X_pool=self.X_pool, y_pool=self.y_pool, labeled=self.labeled,
            X_test=self.data.X_test, y_test=self.data.y_test, classes=self.data.classes,
        )

    def new_model(self, rnd):
        """A fresh model for round ``rnd`` (round 0's for the whole repeat with warm_start)."""
        config = self.config
        seed = derive_seed(config.seed, FIT, self.index, 0 if config.warm_start else rnd)
        n_labeled = len(self.labeled)
        epochs = config.epochs_for(n_labeled, len(self.y_pool) - n_labeled)
        config = dataclasses.replace(config, max_epochs=epochs)
        kwargs = {"encoder": self.encoder} if _uses_recipe(config) else {}
        return self.method.make_estimator(config, seed, self.data.classes, **kwargs), epochs

    def _diverged(self, rnd, detail, advice=None):
        lr = self.config.lr
        if advice is None:
            advice = (f"Lower {option_name('lr')} (now {lr:g}), e.g. "
                      f"{option_setting('lr', f'{lr / 10:g}')}")
        return DivergenceError(
            f"Training diverged in round {rnd} of repeat {self.index + 1} of method "
            f"{self.config.method!r} ({self.config.estimator}): {detail.rstrip('.')}. "
            f"{advice}. The {self.rounds_saved} finished round(s) of this repeat are saved in "
            f"{self.out_dir}; other settings need another output folder."
        )

    def _install(self, built):
        """Hand the learner what ``make_estimator`` built: an estimator, or the parameters of
        a method's own :class:`skal.ActiveLearner` (its estimator, augmenter, ...)."""
        from ..learner import ActiveLearner

        if isinstance(built, ActiveLearner):
            params = built.get_params(deep=False)
            self.learner.set_params(**{k: v for k, v in params.items() if k not in _RUNNER_OWNS})
        else:
            self.learner.set_params(estimator=built)
        self.built = built

    def model(self):
        """The round's fitted model as the hooks see it: the estimator ``make_estimator``
        built, or the learner for a method that builds its own."""
        from ..learner import ActiveLearner

        return self.learner if isinstance(self.built, ActiveLearner) else self.learner.estimator_

    def fit(self, built, rnd):
        """Train the round's model through the learner: ``teach`` the labels of the last query,
        or, in the first round this process runs, ``fit`` on every label; a diverged training
        raises :class:`DivergenceError`."""
        if built is not self.built:  # a new round's model (the same one with warm_start)
            self._install(built)
        learner = self.learner
        try:
            if self.queried is None:
                n_new = self.config.query_size if rnd > 0 else len(self.labeled)
                learner.fit(self.X_pool[self.labeled], self.y_pool[self.labeled],
                            unlabeled=self.X_pool[self._remaining()], n_new=n_new)
            else:
                _, X_new, y_new = self.queried  # the learner keeps a weak reference to the pool
                learner.teach(X_new, y_new)
        except (FloatingPointError, _AugmenterDiverged) as exc:  # DivergenceError is one
            advice = _augmenter_advice(exc) or _gan_advice(exc, _trained_net(learner))
            raise self._diverged(rnd, _summary(exc, advice), advice=advice) from exc
        finally:
            self.queried = None
        model = self.model()
        net = _trained_net(learner)
        found = diverged_epoch(train_losses(net), len(self.data.classes))
        if found is not None:
            epoch, loss = found
            chance = math.log(max(len(self.data.classes), 2))
            raise self._diverged(
                rnd, f"the training loss of {type(net).__name__} is {loss:.3g} at epoch {epoch} "
                     f"(chance level: {chance:.2f})"
            )
        return model

    def query(self, rnd):
        """``query_size`` new pool indices from the learner's strategy, never one already
        labelled."""
        config = self.config
        remaining = self._remaining()
        X_remaining = self.X_pool[remaining]
        picked, X_new = self.learner.query(
            X_remaining, config.query_size,
            random_state=derive_seed(config.seed, QUERY, self.index, rnd),
            **self.method.query_kwargs(config),
        )
        new = remaining[picked]
        if len(np.unique(new)) != config.query_size:
            raise RuntimeError(
                f"The query strategy of {config.method!r} returned {len(np.unique(new))} "
                f"distinct indices; expected {config.query_size}."
            )
        self.queried = (X_remaining, X_new, self.y_pool[new])  # taught in the next round
        return new

    def _timed_query(self, model, rnd, ctx):
        """Query and label; the seconds of the query alone (the hook is not timed)."""
        start = time.perf_counter()
        new = self.query(rnd)
        seconds = round(time.perf_counter() - start, 3)
        self.labeled = np.concatenate([self.labeled, new])
        self.hooks("on_query_end", ctx, model, new.copy())
        return seconds

    def run_round(self, built, rnd, epochs, ctx):
        """Fit, score and (except in the last round) query and label; returns the result row."""
        start = time.perf_counter()
        model = self.fit(built, rnd)
        fit_seconds = time.perf_counter() - start
        self.hooks("on_fit_end", ctx, model)
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
            row["query_seconds"] = self._timed_query(model, rnd, ctx)
        return row, model

    def catch_up_query(self, rnd):
        """Query after finished round ``rnd``, which was the last of a shorter run (extension).

        Its model is retrained from the round's seed (the same weights on the CPU), so the
        extended run picks what an uninterrupted longer run would have picked.
        """
        built, epochs = self.new_model(rnd)
        ctx = self.context(rnd)
        model = self.fit(built, rnd)
        self.hooks("on_fit_end", ctx, model)
        return built, epochs, self._timed_query(model, rnd, ctx)


# ---------------------------------------------------------------------------- chance level
def chance_accuracy(y_test: np.ndarray, n_classes: int) -> tuple[float, float]:
    """The test accuracy of a model that learned nothing, and the margin that still counts as it.

    Parameters
    ----------
    y_test : ndarray
        The test labels.
    n_classes : int
        The classes of the data set.

    Returns
    -------
    level : float
        ``max(1 / n_classes, share of the most frequent test class)``: what a random guess or a
        constant prediction scores.
    margin : float
        Three standard deviations of a guesser's accuracy on ``len(y_test)`` samples,
        ``3 * sqrt(level * (1 - level) / n)``, and at least 0.01.
    """
    _, counts = np.unique(np.asarray(y_test), return_counts=True)
    level = max(1.0 / max(int(n_classes), 1), counts.max() / counts.sum())
    margin = max(0.01, 3 * math.sqrt(level * (1 - level) / counts.sum()))
    return float(level), float(margin)


class _ChanceCheck:
    """Warns (once a run) when a round after the first scores no better than chance."""

    def __init__(self, config, data):
        self.config, self.warned = config, False
        self.level, self.margin = chance_accuracy(data.y_test, len(data.classes))

    def __call__(self, repeat, row):
        if self.warned or row["round"] < 1 or row["accuracy"] > self.level + self.margin:
            return
        self.warned = True
        config, method = self.config, METHODS[self.config.method]
        n_labeled, epochs = row["n_labeled"], row["epochs"]
        trained = row["epochs_trained"] or epochs
        steps = trained * method.steps_per_epoch(config, n_labeled,
                                                 len(repeat.y_pool) - n_labeled)
        if trained < epochs:  # a callback of the method stopped it
            advice = (f"Training stopped early, after {trained} of {epochs} epochs: check the "
                      "method's early stopping.")
        else:  # WAAL's epochs follow the unlabelled pool: the steps are what to set
            name = ("min_steps" if method.steps_per_epoch is unlabeled_steps
                    or epochs > config.max_epochs else "max_epochs")
            advice = (f"Too few steps is the usual cause: raise {option_name(name)} (now "
                      f"{getattr(config, name)}).")
        warnings.warn(
            f"Method {config.method!r} scored a test accuracy of {row['accuracy']:.3f} in round "
            f"{row['round']} of repeat {row['repeat'] + 1}, at chance level "
            f"({self.level:.3f} +- {self.margin:.3f}: a random guess or the most frequent test "
            f"class): it learned nothing from {n_labeled} labels in {trained} epoch(s) of "
            f"{steps} gradient step(s) in all. {advice}",
            ChanceAccuracyWarning, stacklevel=2,
        )


def _run_repeat(config, data, state, index, out_dir, progress, hooks, chance, encoder_cache):
    X_pool, y_pool = data.pool(index)
    if index == len(state["repeats"]):
        state["repeats"].append(_new_repeat_state(config, data, index, y_pool))
    record = state["repeats"][index]
    rows = [row for row in state["results"] if row["repeat"] == index]
    labeled, pending = check_repeat_state(record, y_pool, config, rows,
                                          os.path.join(out_dir, "state.json"), out_dir)
    total = config.n_rounds + 1
    encoder = None  # a finished repeat needs none
    if pending or record["rounds_done"] < total:
        encoder = repeat_encoder(config, X_pool, data.X_test, index, encoder_cache)
        info = getattr(getattr(encoder, "encoder", encoder), "fit_info_", None)
        if progress and info:
            how = ("loaded from the cache" if info.get("cached") else
                   f"fitted once in {info['wall_s']:.1f} s ({info['cpu_s']:.1f} CPU s)")
            tqdm.write(f"[{config.method}] repeat {index + 1}/{config.repeats}: encoder of "
                       f"recipe {config.recipe!r} {how}", file=sys.stdout)
    repeat = _Repeat(config, METHODS[config.method], data, index, X_pool, y_pool, labeled,
                     out_dir=out_dir, rounds_saved=record["rounds_done"], hooks=hooks,
                     encoder=encoder)
    bar = tqdm(
        total=total, initial=record["rounds_done"], unit="round", leave=False,
        desc=f"{config.method} repeat {index + 1}/{config.repeats}",
        disable=not (progress and sys.stderr.isatty()),
    )
    built = None  # what the method's make_estimator built for the round
    with bar:
        if pending:  # the run was extended after its last round
            built, epochs, seconds = repeat.catch_up_query(record["rounds_done"] - 1)
            rows[-1]["query_seconds"] = seconds
            record.update(labeled=repeat.labeled.tolist(), labels=y_pool[repeat.labeled].tolist())
            save_state(out_dir, state)
        for rnd in range(record["rounds_done"], total):
            ctx = repeat.context(rnd)
            hooks("on_round_begin", ctx)
            if built is None or not config.warm_start:
                built, epochs = repeat.new_model(rnd)
            row, model = repeat.run_round(built, rnd, epochs, ctx)
            row.update(round_diagnostics(  # new keys: when to stop, calibration (the others kept)
                model, data.X_test, data.y_test, config.query_size,
                [r for r in state["results"] if r["repeat"] == index], row, record))
            record.update(rounds_done=rnd + 1, labeled=repeat.labeled.tolist(),
                          labels=y_pool[repeat.labeled].tolist())
            state["results"].append(row)
            save_state(out_dir, state)
            repeat.rounds_saved = rnd + 1
            bar.update(1)
            if progress:
                tqdm.write(_summary_line(config, row), file=sys.stdout)
                sys.stdout.flush()  # one line per round, also when stdout is a file
            chance(repeat, row)
            hooks("on_round_end", ctx, model, dict(row))


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
    callbacks: Sequence[RunCallback] | None = None,
    encoder_cache: str | os.PathLike[str] | None = None,
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
    callbacks : sequence of RunCallback, default=None
        Hooks called during the rounds that run, in this order (see :class:`RunCallback`):
        to watch the run or keep its models. They are not part of the run's identity and do
        not change its results; an exception in one stops the run.
    encoder_cache : str, path-like or None, default=None
        For a recipe with an encoder: the folder where each repeat's fitted encoder is cached
        (by the pool's content and the settings); None: ``out_dir/encoders``. Runs that share
        it (``skal run --methods``) fit each encoder once.

    Returns
    -------
    result : ExperimentResult
        Everything the folder holds once the run is done (:func:`load_run` of it).

    Raises
    ------
    skal.exceptions.ConfigError
        If the configuration is invalid (a ``ValueError``), also for the method's estimator
        (e.g. ``batch_size=1`` for a ResNet18): checked before anything is written.
    skal.exceptions.RunFolderError
        If ``out_dir`` holds a different experiment, is damaged, is used by another run, or
        cannot be written (a ``ConfigError``).
    skal.exceptions.DeviceError
        If ``config.device`` is not on this machine (checked before anything is written).
    skal.exceptions.DivergenceError
        If training diverges; the rounds finished before are kept.
    TypeError
        If ``callbacks`` is not a sequence of :class:`RunCallback` instances.

    Warns
    -----
    skal.exceptions.ChanceAccuracyWarning
        Once a run, for the first round after round 0 whose test accuracy is at chance level
        (within three standard deviations of a guess, see ``chance_accuracy`` in
        :mod:`skal.experiment.runner`); it names the option to raise (``max_epochs``, or
        ``min_steps`` for WAAL).

    See Also
    --------
    load_experiment_data : The data (pools, initial labels, test set) the run uses.

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
    hooks = _Hooks(_check_callbacks(callbacks))
    check_device(config.device, owner="ExperimentConfig")
    out_dir = os.fspath(out_dir)
    data = load_experiment_data(config)  # checks the sizes against the data set: before writes
    _check_initial_sets(config, data)
    check_estimator_params(config, data.classes)
    check_out_dir(out_dir)
    chance = _ChanceCheck(config, data)
    with RunLock(out_dir):
        state = open_run(config, out_dir, torch.get_num_threads(), machine_info())
        write_results(out_dir, state["results"])
        cache = os.path.join(out_dir, "encoders") if encoder_cache is None else encoder_cache
        for repeat in range(config.repeats):
            _run_repeat(config, data, state, repeat, out_dir, progress, hooks, chance,
                        os.fspath(cache))
        result = load_run(out_dir)
        plot_learning_curves({config.method: result.rows}, os.path.join(out_dir, CURVE_PNG),
                             title=run_title(config, data))
    return result

