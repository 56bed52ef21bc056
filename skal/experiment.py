"""Simulated-oracle active-learning experiments: rounds, checkpoints, results and plots.

One experiment runs one query method on one data set for ``repeats`` independent repeats. Each
repeat starts from ``n_initial`` random labelled pool samples and does ``n_rounds`` acquisition
rounds of ``query_size`` samples; the oracle is the data set's true labels. Every round the model
is trained (from scratch by default), scored on the test set and asked for the next batch.

Everything random is a pure function of ``(seed, repeat, round, purpose)``:

- the pool (a subsample of the train split) and the initial labelled set depend on
  ``(seed, repeat)`` only, so every method run with the same seed starts from the same labels;
- the test subsample depends on ``seed`` only (the same for every repeat and method);
- the weights' initialisation / shuffling / dropout of round ``r`` and the query's randomness
  depend on ``(seed, repeat, r)``.

This is what makes a run resumable: ``state.json`` stores the labelled pool indices (in
acquisition order) and their labels, the number of rounds done and the results so far, and is
replaced atomically after every round. Running the same experiment again in the same folder
skips what is done, retrains the model of the next round from its seed and continues, so an
interrupted run ends with exactly the labelled set of an uninterrupted one (on CPU, where torch is
deterministic). With ``warm_start=True`` the model carries over between rounds in memory only;
after a resume it restarts from scratch, so the rest of that run differs from an uninterrupted one.

Methods live in :data:`METHODS`; add one with :func:`register_method` (see :class:`Method`).
"""

import csv
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split
from skorch.callbacks import LRScheduler
from torch.optim.lr_scheduler import CosineAnnealingLR
from tqdm.auto import tqdm

from .augment import GenerativeAugmenter
from .classifier import ResNet18Classifier
from .datasets import DATASETS, load_dataset, load_images
from .learner import ActiveLearner
from .query import (
    bald,
    entropy_sampling,
    margin_sampling,
    random_sampling,
    uncertainty_sampling,
    waal_uncertainty_diversity,
)
from .waal import WAALClassifier

__all__ = [
    "ExperimentConfig",
    "ExperimentResult",
    "METHODS",
    "Method",
    "compare_runs",
    "load_run",
    "make_bgadl",
    "make_random_gen",
    "make_resnet18",
    "plot_learning_curves",
    "register_method",
    "run_experiment",
]

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
CURVE_PNG = "learning_curve.png"

_STATE_FORMAT = 1
# "epochs": the round's planned epochs; "epochs_trained": the epochs in the fitted model's skorch
# history (fewer after early stopping, cumulative with warm_start; empty without a history)
RESULT_COLUMNS = (
    "method", "dataset", "repeat", "round", "n_labeled", "accuracy", "epochs", "fit_seconds",
    "query_seconds", "epochs_trained",
)

# purposes mixed into the seeds, so that no two random draws share a stream
_POOL, _INITIAL, _TEST, _FIT, _QUERY = range(5)

# data sets without an official test split: a stratified hold-out of this fraction of the
# train split serves as test set (unless test_size says how many)
_HOLDOUT_FRACTION = {"digits": 0.25}

_LR_SCHEDULES = ("constant", "cosine")


# ---------------------------------------------------------------------------- methods
def make_resnet18(config, random_state, classes):
    """The default estimator of every method: a :class:`skal.ResNet18Classifier`.

    Parameters
    ----------
    config : ExperimentConfig
        Its ``max_epochs`` is already this round's (see :meth:`ExperimentConfig.epochs_for`).
    random_state : int
        Seed of this round's (or, with ``warm_start``, this repeat's) model.
    classes : ndarray
        All classes of the data set, so the output layer never depends on the labelled set.

    Returns
    -------
    estimator : ResNet18Classifier
    """
    callbacks = None
    if config.lr_schedule == "cosine":
        scheduler = LRScheduler(CosineAnnealingLR, T_max=config.max_epochs)
        callbacks = [("lr_scheduler", scheduler)]
    return ResNet18Classifier(
        preact=config.preact,
        dropout=config.dropout,
        width=config.width,
        lr=config.lr,
        max_epochs=config.max_epochs,
        batch_size=config.batch_size,
        random_state=random_state,
        device=config.device,
        warm_start=config.warm_start,
        classes=classes,
        callbacks=callbacks,
    )


def make_waal(config, random_state, classes):
    """The estimator of the ``"waal"`` method: a :class:`skal.WAALClassifier`.

    The feature extractor follows the images (LeNet for Fashion-MNIST, VGG16-BN for 32x32 colour,
    an MLP for 8x8 digits); the paper's optimiser settings (SGD, lr 0.01, momentum 0.5, lr decay
    at 50 % / 75 % of the epochs) are kept, so ``lr``, ``width`` and ``preact`` do not apply.
    ``query_size`` is the B of the bias coefficient C0. The runner passes the unlabelled rest of
    the pool to ``fit`` every round.
    """
    return WAALClassifier(
        dropout=config.dropout,
        max_epochs=config.max_epochs,
        batch_size=config.batch_size,
        query_size=config.query_size,
        random_state=random_state,
        device=config.device,
        warm_start=config.warm_start,
        classes=classes,
    )


def _augmenter(config, random_state):
    """The VAE-ACGAN of the generative methods: as many epochs as the classifier gets."""
    return GenerativeAugmenter(
        max_epochs=config.max_epochs,
        batch_size=config.batch_size,
        device=config.device,
        random_state=random_state,
    )


def make_bgadl(config, random_state, classes):
    """The model of the ``"bgadl"`` method: BGADL's joint scheme, queried with BALD.

    An :class:`skal.ActiveLearner` with ``joint=True``: every round the ResNet18 of
    :func:`make_resnet18` is trained from scratch as the auxiliary classifier of a fresh
    :class:`skal.GenerativeAugmenter` (VAE-ACGAN), on the labelled images plus their
    reconstructions G(E(x), y) and class-conditional samples G(z, y) made in every mini-batch,
    for ``max_epochs`` epochs, as in the authors' code. Generated images are never labels.
    The classifier's outputs are the classes present in the labelled set.
    """
    return ActiveLearner(
        make_resnet18(config, random_state, classes),
        query_strategy=bald,
        augmenter=_augmenter(config, random_state),
        joint=True,
    )


def make_random_gen(config, random_state, classes):
    """The model of the ``"random_gen"`` method: the BGADL training of :func:`make_bgadl`.

    Queried with random sampling instead of BALD (the paper's "BDA on randomly chosen labels"
    control arm), so that it differs from ``"bgadl"`` in the acquisition only.
    """
    return ActiveLearner(
        make_resnet18(config, random_state, classes),
        query_strategy=random_sampling,
        augmenter=_augmenter(config, random_state),
        joint=True,
    )


def _no_query_kwargs(config):
    return {}


def _bald_kwargs(config):
    return {"n_samples": config.n_mc_samples, "subsample": config.subsample}


@dataclass(frozen=True)
class Method:
    """How the experiment runner trains and queries for one method.

    Parameters
    ----------
    query_strategy : callable
        ``strategy(model, X_pool, n_instances, *, random_state, **kwargs) -> (indices, scores)``,
        as in :mod:`skal.query`.
    make_estimator : callable, default=make_resnet18
        ``make_estimator(config, random_state, classes)`` returns an unfitted model with ``fit``
        and ``score`` (an estimator, or a :class:`skal.ActiveLearner` with an augmenter for
        BGADL), which ``query_strategy`` accepts. ``config.max_epochs`` is already the round's
        number of epochs (see :meth:`ExperimentConfig.epochs_for`).
    query_kwargs : callable, default=no extra arguments
        ``query_kwargs(config) -> dict`` of extra arguments for ``query_strategy``.
    pass_unlabeled : bool, default=False
        Call ``fit(X, y, X_unlabeled=X_rest)`` with the unlabelled rest of the pool (WAAL).
    """

    query_strategy: Callable
    make_estimator: Callable = make_resnet18
    query_kwargs: Callable = _no_query_kwargs
    pass_unlabeled: bool = False


#: Query methods by name. Other modules add theirs with :func:`register_method`, e.g.
#: ``register_method("waal", Method(waal_uncertainty_diversity, make_estimator=_make_waal,
#: pass_unlabeled=True))``. ``"bgadl"`` is BALD with BGADL's joint VAE-ACGAN training
#: (:func:`make_bgadl`), ``"random_gen"`` the same training with random sampling.
METHODS = {
    "random": Method(random_sampling),
    "uncertainty": Method(uncertainty_sampling),
    "margin": Method(margin_sampling),
    "entropy": Method(entropy_sampling),
    "bald": Method(bald, query_kwargs=_bald_kwargs),
    "waal": Method(waal_uncertainty_diversity, make_estimator=make_waal, pass_unlabeled=True),
    "bgadl": Method(bald, make_estimator=make_bgadl, query_kwargs=_bald_kwargs),
    "random_gen": Method(random_sampling, make_estimator=make_random_gen),
}


def register_method(name, method, *, overwrite=False):
    """Make a query method available to :func:`run_experiment` and the ``skal`` command.

    Parameters
    ----------
    name : str
        The name used in :class:`ExperimentConfig` and on the command line.
    method : Method
    overwrite : bool, default=False
        Replace an existing method of that name instead of raising.

    Returns
    -------
    method : Method
    """
    if not isinstance(method, Method):
        raise TypeError(f"method must be a skal.experiment.Method; got {type(method).__name__}.")
    if name in METHODS and not overwrite:
        raise ValueError(f"A method named {name!r} exists already; pass overwrite=True.")
    METHODS[name] = method
    return method


# ---------------------------------------------------------------------------- configuration
def _check_int(name, value, low, optional=False):
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        expected = f"an int >= {low}" + (" or None" if optional else "")
        raise ValueError(
            f"The '{name}' parameter of ExperimentConfig must be {expected}. Got {value!r} "
            "instead."
        )


def _unknown_name(kind, value, valid):
    names = ", ".join(repr(v) for v in valid)
    return ValueError(f"Unknown {kind} {value!r}. Expected one of: {names}.")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines an active-learning experiment (and nothing that does not).

    Parameters
    ----------
    dataset : str, default="fashion_mnist"
        One of :data:`skal.datasets.DATASETS`, or the path of an image folder (one sub-folder per
        class) or of a ``.npz`` file with images and labels: the simulated oracle reads its
        labels.
    test : str or None, default=None
        For a ``dataset`` path: an image folder or ``.npz`` file to test on. None holds out a
        stratified quarter of the data (``test_size`` samples when given).
    image_size : int or None, default=None
        For an image folder: resize the images to ``image_size`` x ``image_size``.
    method : str, default="bald"
        One of :data:`METHODS`.
    n_initial : int, default=100
        Random labelled pool samples before the first round.
    query_size : int, default=100
        Samples labelled per acquisition round.
    n_rounds : int, default=5
        Acquisition rounds; each repeat records ``n_rounds + 1`` results (round 0 is the initial
        labelled set) and ends with ``n_initial + n_rounds * query_size`` labels.
    repeats : int, default=2
        Independent repeats (different pool, initial set and seeds).
    seed : int, default=0
        Master seed; every random draw derives from it.
    pool_size : int or None, default=None
        Stratified subsample of the train split used as pool (None: all of it).
    test_size : int or None, default=None
        Stratified subsample of the test split (None: all of it). For data sets without a test
        split (digits) this many train samples are held out (None: a quarter).
    width, preact, dropout : ResNet18Classifier parameters, defaults 16, False, 0.5
    max_epochs : int, default=30
        Training epochs per round.
    min_steps : int, default=0
        Train for at least this many gradient steps per round: for small labelled sets the
        epochs are raised to ``ceil(min_steps / ceil(n_labeled / batch_size))``, so the first
        rounds are not under-trained (see :meth:`epochs_for`). With ``warm_start`` the epochs of
        round 0 are used throughout.
    batch_size : int, default=64
    lr : float, default=1e-3
        Adam's learning rate.
    lr_schedule : {"constant", "cosine"}, default="constant"
        "cosine" anneals the learning rate to 0 over each round's epochs, which makes the
        final model (the one scored and queried) less dependent on the last few batches.
    n_mc_samples : int, default=20
        MC-dropout passes for BALD.
    subsample : int or None, default=None
        Score only a random subset of this many pool samples per BALD query.
    warm_start : bool, default=False
        Continue training the previous round's model instead of training from scratch.
    device : str, default="cpu"
    """

    dataset: str = "fashion_mnist"
    test: str | None = None
    image_size: int | None = None
    method: str = "bald"
    n_initial: int = 100
    query_size: int = 100
    n_rounds: int = 5
    repeats: int = 2
    seed: int = 0
    pool_size: int | None = None
    test_size: int | None = None
    width: int = 16
    preact: bool = False
    dropout: float = 0.5
    max_epochs: int = 30
    min_steps: int = 0
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str = "constant"
    n_mc_samples: int = 20
    subsample: int | None = None
    warm_start: bool = False
    device: str = "cpu"

    def __post_init__(self):
        if self.dataset not in DATASETS and not _is_data_path(self.dataset):
            raise ValueError(
                f"Unknown dataset {self.dataset!r}. Expected one of: "
                f"{', '.join(repr(d) for d in DATASETS)}, or the path of an image folder or of a "
                ".npz file."
            )
        if self.test is not None and not (_is_data_path(self.dataset) and _is_data_path(
                self.test)):
            raise ValueError(
                f"The 'test' parameter of ExperimentConfig must be the path of an image folder "
                f"or .npz file, with a dataset path too. Got test={self.test!r} with "
                f"dataset={self.dataset!r} instead."
            )
        _check_int("image_size", self.image_size, 1, optional=True)
        if self.method not in METHODS:
            raise _unknown_name("method", self.method, sorted(METHODS))
        for name in ("n_initial", "query_size", "repeats", "width", "max_epochs", "batch_size",
                     "n_mc_samples"):
            _check_int(name, getattr(self, name), 1)
        _check_int("n_rounds", self.n_rounds, 0)
        _check_int("min_steps", self.min_steps, 0)
        _check_int("seed", self.seed, 0)
        for name in ("pool_size", "test_size", "subsample"):
            _check_int(name, getattr(self, name), 1, optional=True)
        if not isinstance(self.lr, (int, float)) or isinstance(self.lr, bool) or self.lr <= 0:
            raise ValueError(
                f"The 'lr' parameter of ExperimentConfig must be a float > 0. Got {self.lr!r} "
                "instead."
            )
        if self.lr_schedule not in _LR_SCHEDULES:
            raise ValueError(
                "The 'lr_schedule' parameter of ExperimentConfig must be one of "
                f"{_LR_SCHEDULES}. Got {self.lr_schedule!r} instead."
            )
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(
                "The 'dropout' parameter of ExperimentConfig must be a float in [0, 1). Got "
                f"{self.dropout!r} instead."
            )
        if self.n_labeled_final > (self.pool_size or np.inf):
            raise ValueError(
                f"The pool is too small: n_initial + n_rounds * query_size = "
                f"{self.n_labeled_final} labels, but pool_size={self.pool_size}."
            )

    @property
    def n_labeled_final(self):
        """Labels at the end of each repeat."""
        return self.n_initial + self.n_rounds * self.query_size

    def epochs_for(self, n_labeled):
        """Epochs of a round with ``n_labeled`` labels: ``max_epochs``, or more for min_steps."""
        steps_per_epoch = -(-n_labeled // self.batch_size)
        return max(self.max_epochs, -(-self.min_steps // steps_per_epoch))

    def to_dict(self):
        """The configuration as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, params):
        """Build a configuration from :meth:`to_dict`'s output (unknown keys raise)."""
        unknown = set(params) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"Unknown ExperimentConfig fields: {sorted(unknown)}.")
        return cls(**params)


# ---------------------------------------------------------------------------- seeds and data
def derive_seed(seed, *keys):
    """An int seed in ``[0, 2**31 - 1)`` derived from ``seed`` and integer ``keys``."""
    state = np.random.SeedSequence([seed, *keys]).generate_state(1)[0]
    return int(state) % (2**31 - 1)


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


def _is_data_path(path):
    """An image folder or an .npy / .npz file (named datasets aside)."""
    return isinstance(path, str) and (
        os.path.isdir(path) or (os.path.isfile(path) and path.lower().endswith((".npy", ".npz"))))


def _load_path(path, config):
    """Images and labels of an image folder or .npz file; labels are required."""
    X, y = load_images(path, image_size=config.image_size)
    if y is None:
        raise ValueError(
            f"{path} has no labels, and a simulated oracle needs them: put the images in one "
            "sub-folder per class, or store them as y= in the .npz file. To label images "
            "yourself, use 'skal label init'."
        )
    return X, y


def _load_data(config):
    """The train split (pool candidates) and the test set, the same for every repeat."""
    test_seed = derive_seed(config.seed, _TEST)
    if _is_data_path(config.dataset):
        X_train, y_train = _load_path(config.dataset, config)
    else:
        X_train, y_train = load_dataset(config.dataset, "train")
    if config.test is not None:
        candidates = np.arange(len(y_train))
        X_test, y_test = _load_path(config.test, config)
        test = _stratified_subset(y_test, config.test_size, test_seed)
        X_test, y_test = X_test[test], y_test[test]
    elif config.dataset in _HOLDOUT_FRACTION or _is_data_path(config.dataset):
        fraction = _HOLDOUT_FRACTION.get(config.dataset, 0.25)
        n_test = config.test_size or round(fraction * len(y_train))
        test = _stratified_subset(y_train, n_test, test_seed)
        candidates = np.setdiff1d(np.arange(len(y_train)), test)
        X_test, y_test = X_train[test], y_train[test]
    else:
        candidates = np.arange(len(y_train))
        X_test, y_test = load_dataset(config.dataset, "test")
        test = _stratified_subset(y_test, config.test_size, test_seed)
        X_test, y_test = X_test[test], y_test[test]
    if config.n_labeled_final > len(candidates):
        raise ValueError(
            f"The pool is too small: n_initial + n_rounds * query_size = "
            f"{config.n_labeled_final} labels, but {config.dataset!r} has only "
            f"{len(candidates)} pool samples."
        )
    return _Data(X_train, y_train, candidates, X_test, y_test, np.unique(y_train))


def _pool_rows(config, data, repeat):
    """Train-split rows of this repeat's pool (sorted); pool index i is row ``rows[i]``."""
    seed = derive_seed(config.seed, _POOL, repeat)
    subset = _stratified_subset(data.y_train[data.candidates], config.pool_size, seed)
    return data.candidates[subset]


def _initial_indices(config, n_pool, repeat):
    rng = np.random.default_rng(derive_seed(config.seed, _INITIAL, repeat))
    return rng.choice(n_pool, config.n_initial, replace=False).astype(np.int64)


# ---------------------------------------------------------------------------- files
def _write_atomic(path, text):
    """Write ``text`` to ``path`` so that readers see the old or the new file, never half."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_results(out_dir, rows):
    lines = "".join(json.dumps(row) + "\n" for row in rows)
    _write_atomic(os.path.join(out_dir, RESULTS_JSONL), lines)
    with tempfile.TemporaryFile("w+", newline="") as buffer:
        writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        buffer.seek(0)
        _write_atomic(os.path.join(out_dir, RESULTS_CSV), buffer.read())


def _config_diff(old, new):
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _open_run(config, out_dir):
    """Create ``out_dir`` or check that it holds this experiment; return the saved state."""
    os.makedirs(out_dir, exist_ok=True)
    config_path = os.path.join(out_dir, CONFIG_FILE)
    state_path = os.path.join(out_dir, STATE_FILE)
    wanted = config.to_dict()
    for path in (config_path, state_path):
        if not os.path.exists(path):
            continue
        saved = _read_json(path)
        saved = saved["config"] if path == state_path else saved
        saved = ExperimentConfig.from_dict(saved).to_dict()  # fill fields added since
        if saved != wanted:
            raise ValueError(
                f"{out_dir} holds a run with a different configuration ("
                + "; ".join(_config_diff(saved, wanted))
                + "). Use another output folder, or delete this one to start over."
            )
    if not os.path.exists(config_path):
        _write_atomic(config_path, json.dumps(wanted, indent=2) + "\n")
    if os.path.exists(state_path):
        return _read_json(state_path)
    return {"format": _STATE_FORMAT, "config": wanted, "repeats": [], "results": []}


def _save(out_dir, state):
    _write_atomic(os.path.join(out_dir, STATE_FILE), json.dumps(state) + "\n")
    _write_results(out_dir, state["results"])


# ---------------------------------------------------------------------------- the loop
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


def _check_repeat_state(record, y_pool, config):
    labeled = np.asarray(record["labeled"], dtype=np.int64)
    if len(np.unique(labeled)) != len(labeled):
        raise RuntimeError(f"state.json lists a pool index twice in repeat {record['repeat']}.")
    if record["n_pool"] != len(y_pool) or not np.array_equal(y_pool[labeled], record["labels"]):
        raise ValueError(
            f"state.json does not match the data set {config.dataset!r} (pool size or labels "
            "differ): the data files changed since the run started. Start a new run."
        )
    expected = config.n_initial + record["rounds_done"] * config.query_size
    if record["rounds_done"] > config.n_rounds:
        expected -= config.query_size  # the last round queries nothing
    if len(labeled) != expected:
        raise RuntimeError(
            f"state.json holds {len(labeled)} labels for repeat {record['repeat']} after "
            f"{record['rounds_done']} rounds; expected {expected}."
        )
    return labeled


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

    def _remaining(self):
        return np.setdiff1d(np.arange(len(self.y_pool)), self.labeled)

    def new_model(self, rnd):
        """A fresh model for round ``rnd`` (round 0's for the whole repeat with warm_start)."""
        config = self.config
        seed = derive_seed(config.seed, _FIT, self.index, 0 if config.warm_start else rnd)
        epochs = config.epochs_for(len(self.labeled))
        config = dataclasses.replace(config, max_epochs=epochs)
        return self.method.make_estimator(config, seed, self.data.classes), epochs

    def fit(self, model):
        kwargs = {}
        if self.method.pass_unlabeled:
            kwargs["X_unlabeled"] = self.X_pool[self._remaining()]
        model.fit(self.X_pool[self.labeled], self.y_pool[self.labeled], **kwargs)

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
        self.fit(model)
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
        }
        if rnd < self.config.n_rounds:
            start = time.perf_counter()
            self.labeled = np.concatenate([self.labeled, self.query(model, rnd)])
            row["query_seconds"] = round(time.perf_counter() - start, 3)
        return row


def _epochs_trained(model):
    """Epochs in the fitted model's skorch history (fewer than planned after early stopping)."""
    for net in (model, getattr(model, "estimator", None)):  # an estimator, or an ActiveLearner's
        history = getattr(net, "history_", None)
        if history is not None:
            return len(history)
    return None


def _run_repeat(config, data, state, index, out_dir, progress):
    pool_rows = _pool_rows(config, data, index)
    X_pool, y_pool = data.X_train[pool_rows], data.y_train[pool_rows]
    if index == len(state["repeats"]):
        state["repeats"].append(_new_repeat_state(config, pool_rows, index, y_pool))
    record = state["repeats"][index]
    labeled = _check_repeat_state(record, y_pool, config)
    repeat = _Repeat(config, METHODS[config.method], data, index, X_pool, y_pool, labeled)
    total = config.n_rounds + 1
    bar = tqdm(
        total=total, initial=record["rounds_done"], unit="round", leave=False,
        desc=f"{config.method} repeat {index + 1}/{config.repeats}",
        disable=not (progress and sys.stderr.isatty()),
    )
    model = None
    with bar:
        for rnd in range(record["rounds_done"], total):
            if model is None or not config.warm_start:
                model, epochs = repeat.new_model(rnd)
            row = repeat.run_round(model, rnd, epochs)
            record.update(rounds_done=rnd + 1, labeled=repeat.labeled.tolist(),
                          labels=y_pool[repeat.labeled].tolist())
            state["results"].append(row)
            _save(out_dir, state)
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
@dataclass
class ExperimentResult:
    """A finished (or partly finished) experiment, as saved in its folder.

    Attributes
    ----------
    config : ExperimentConfig
    rows : list of dict
        One per (repeat, round), with the keys of :data:`RESULT_COLUMNS`.
    labeled : list of ndarray
        Per repeat, the labelled pool indices in acquisition order.
    labels : list of ndarray
        Their oracle labels.
    out_dir : str
    """

    config: ExperimentConfig
    rows: list
    labeled: list
    labels: list
    out_dir: str

    def mean_accuracy(self):
        """Mean test accuracy over repeats per number of labels, as ``{n_labeled: accuracy}``."""
        return {n: float(np.mean(a)) for n, a in _accuracies_by_size(self.rows).items()}


def load_run(out_dir):
    """Read the experiment saved in ``out_dir`` (by :func:`run_experiment`).

    Returns
    -------
    result : ExperimentResult
    """
    path = os.path.join(out_dir, STATE_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{out_dir} holds no skal experiment (no {STATE_FILE}).")
    state = _read_json(path)
    return ExperimentResult(
        config=ExperimentConfig.from_dict(state["config"]),
        rows=state["results"],
        labeled=[np.asarray(r["labeled"], dtype=np.int64) for r in state["repeats"]],
        labels=[np.asarray(r["labels"]) for r in state["repeats"]],
        out_dir=out_dir,
    )


def run_experiment(config, out_dir, progress=True):
    """Run (or resume) a simulated active-learning experiment and save it in ``out_dir``.

    Writes ``config.json``, ``state.json`` (the checkpoint, replaced atomically after every
    round), ``results.jsonl`` and ``results.csv`` (one row per repeat and round) and
    ``learning_curve.png``. If ``out_dir`` already holds this experiment, finished rounds are
    skipped and the run continues where it stopped.

    Parameters
    ----------
    config : ExperimentConfig or dict
    out_dir : str or path-like
    progress : bool, default=True
        Show progress bars (on a terminal) and print one summary line per round.

    Returns
    -------
    result : ExperimentResult

    Raises
    ------
    ValueError
        If the configuration is invalid, or ``out_dir`` holds a different experiment.

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
    out_dir = os.fspath(out_dir)
    state = _open_run(config, out_dir)
    _write_results(out_dir, state["results"])
    data = _load_data(config)
    for repeat in range(config.repeats):
        _run_repeat(config, data, state, repeat, out_dir, progress)
    result = load_run(out_dir)
    plot_learning_curves({config.method: result.rows}, os.path.join(out_dir, CURVE_PNG),
                         title=_title(config, data))
    return result


def _title(config, data=None):
    pool = config.pool_size or "all"
    test = len(data.y_test) if data is not None else (config.test_size or "all")
    return (
        f"{config.dataset}: pool {pool}, test {test}, {config.n_initial} + "
        f"{config.query_size}/round, ResNet18 width {config.width}, {config.repeats} repeats"
    )


# ---------------------------------------------------------------------------- plots
def _accuracies_by_size(rows):
    by_size = {}
    for row in rows:
        by_size.setdefault(row["n_labeled"], []).append(row["accuracy"])
    return dict(sorted(by_size.items()))


def plot_learning_curves(curves, out_png, title=None):
    """Plot test accuracy against the number of labels, one line per curve.

    Each line is the mean over repeats, with a shaded band from the minimum to the maximum.

    Parameters
    ----------
    curves : dict
        ``{label: rows}`` where rows are result dicts with ``n_labeled`` and ``accuracy``.
    out_png : str or path-like
    title : str, default=None

    Returns
    -------
    out_png : str
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend, works headless

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for label, rows in curves.items():
        by_size = _accuracies_by_size(rows)
        sizes = np.array(list(by_size))
        accs = [np.asarray(a) for a in by_size.values()]
        mean = np.array([a.mean() for a in accs])
        (line,) = ax.plot(sizes, mean, marker="o", label=f"{label} (mean)")
        ax.fill_between(sizes, [a.min() for a in accs], [a.max() for a in accs],
                        color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("number of labelled samples")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(title="shaded: min-max over repeats", fontsize="small")
    if title:
        ax.set_title(title, fontsize="medium")
    out_png = os.fspath(out_png)
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=120)
    return out_png


def _expand_run_dirs(dirs):
    """Run folders; a folder without a run stands for its sub-folders that hold one."""
    found = []
    for d in map(os.fspath, dirs):
        if os.path.exists(os.path.join(d, STATE_FILE)):
            found.append(d)
            continue
        subs = sorted(
            os.path.join(d, s) for s in (os.listdir(d) if os.path.isdir(d) else [])
            if os.path.exists(os.path.join(d, s, STATE_FILE))
        )
        if not subs:
            raise FileNotFoundError(f"{d} holds no skal experiment (no {STATE_FILE}).")
        found.extend(subs)
    return found


def compare_runs(dirs, out_png, title=None):
    """Overlay the learning curves of several runs (e.g. one per method) in one PNG.

    Parameters
    ----------
    dirs : list of str or path-like
        Run folders; a folder holding run folders (``skal run --methods``) adds all of them.
    out_png : str or path-like
    title : str, default=None
        Defaults to the first run's data set and sizes.

    Returns
    -------
    results : list of ExperimentResult
    """
    results = [load_run(d) for d in _expand_run_dirs(dirs)]
    methods = [r.config.method for r in results]
    curves = {}
    for result in results:
        label = result.config.method
        if methods.count(label) > 1:
            label = f"{label} ({result.out_dir})"
        curves[label] = result.rows
    plot_learning_curves(curves, out_png, title=title or _title(results[0].config))
    return results
