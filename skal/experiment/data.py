"""The data of an experiment as the runner defines it: train split, test set, pools, first labels.

Everything random is a pure function of the configuration's ``seed`` (see
:mod:`skal.experiment.runner`): the test subsample depends on ``seed`` only, the pool of a repeat
and its initial labelled set on ``(seed, repeat)`` only, so every method run with the same seed
starts from the same labels. :func:`load_experiment_data` is what :func:`run_experiment` uses, so
code outside the runner (a benchmark's validation split, a model refitted on a run's labels)
sees exactly the runner's pools.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from ..data import RESIZE_HINT, load_images
from ..datasets import load_dataset
from ..exceptions import ConfigError
from .config import (
    ExperimentConfig,
    derive_seed,
    is_data_path,
    label_budget,
    option_setting,
    option_subject,
    or_none,
)

__all__ = ["ExperimentData", "load_experiment_data"]

# purposes mixed into the seeds, so that no two random draws share a stream
POOL, INITIAL, TEST, FIT, QUERY = range(5)

# data sets without an official test split: a stratified hold-out of this fraction of the
# train split serves as test set (unless test_size says how many)
_HOLDOUT_FRACTION = {"digits": 0.25}


def _subset_size(n, size):
    """Rows in a subset of ``size`` of ``n`` rows: all of them when ``size`` is None or more."""
    return n if size is None or size >= n else size


def _stratified_subset(y, size, seed):
    """Sorted positions of a stratified random subset of ``size`` rows (all rows if None)."""
    if _subset_size(len(y), size) == len(y):
        return np.arange(len(y))
    subset, _ = train_test_split(
        np.arange(len(y)), train_size=size, stratify=y, random_state=seed
    )
    return np.sort(subset)


@dataclass
class ExperimentData:
    """The train split, the test set and the pools of an experiment, as the runner uses them.

    Made by :func:`load_experiment_data`; the same for every repeat and method of a seed. Pool
    index ``i`` of repeat ``r`` is train-split row ``pool_rows(r)[i]``: the labelled pool
    indices saved in a run folder (:attr:`ExperimentResult.labeled`) are pool indices.

    Parameters
    ----------
    config : ExperimentConfig
        The experiment (its ``seed``, ``pool_size`` and ``n_initial`` define the pools).
    X_train : ndarray of shape (n_train, C, H, W)
        The train split (for a data set without a test split, including the held-out rows).
    y_train : ndarray of shape (n_train,)
        Its labels (the simulated oracle's answers).
    candidates : ndarray of int64
        Train-split rows the pools are drawn from (the train split without a held-out test set).
    X_test : ndarray
        The test set every round is scored on (the stratified ``test_size`` subsample).
    y_test : ndarray
        Its labels.
    classes : ndarray
        The classes of the train split, sorted.

    See Also
    --------
    load_experiment_data : Makes one from a configuration.
    run_experiment : Runs the experiment on this data.

    Examples
    --------
    >>> from skal.experiment import ExperimentConfig, load_experiment_data
    >>> config = ExperimentConfig(dataset="digits", method="random", n_initial=20,
    ...                           query_size=10, n_rounds=2, pool_size=200, test_size=100)
    >>> data = load_experiment_data(config)
    >>> X_pool, y_pool = data.pool(0)
    >>> X_pool.shape, len(data.initial_indices(0)), len(data.y_test)
    ((200, 1, 8, 8), 20, 100)
    """

    config: ExperimentConfig
    X_train: np.ndarray
    y_train: np.ndarray
    candidates: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: np.ndarray

    def pool_rows(self, repeat: int) -> np.ndarray:
        """Return the train-split rows of a repeat's pool.

        Parameters
        ----------
        repeat : int
            The repeat (0-based).

        Returns
        -------
        rows : ndarray of int64
            Sorted rows of ``X_train``: pool index ``i`` is row ``rows[i]``. A stratified
            subsample of :attr:`candidates` of ``config.pool_size`` rows (all of them if None),
            drawn from ``(seed, repeat)``.
        """
        seed = derive_seed(self.config.seed, POOL, repeat)
        subset = _stratified_subset(self.y_train[self.candidates], self.config.pool_size, seed)
        return self.candidates[subset]

    def pool(self, repeat: int) -> tuple[np.ndarray, np.ndarray]:
        """Return a repeat's pool images and their labels.

        Parameters
        ----------
        repeat : int
            The repeat (0-based).

        Returns
        -------
        X_pool : ndarray
            ``X_train[pool_rows(repeat)]``.
        y_pool : ndarray
            Their labels.
        """
        rows = self.pool_rows(repeat)
        return self.X_train[rows], self.y_train[rows]

    def initial_indices(self, repeat: int) -> np.ndarray:
        """Return the pool indices a repeat labels before its first round.

        Parameters
        ----------
        repeat : int
            The repeat (0-based).

        Returns
        -------
        indices : ndarray of int64
            ``config.n_initial`` distinct pool indices, drawn from ``(seed, repeat)``, in the
            order the run saves them (the first entries of its labelled set).
        """
        n_pool = _subset_size(len(self.candidates), self.config.pool_size)  # len(pool_rows)
        rng = np.random.default_rng(derive_seed(self.config.seed, INITIAL, repeat))
        return rng.choice(n_pool, self.config.n_initial, replace=False).astype(np.int64)


def _check_size(name, value, n_classes, n_available, dataset):
    if value is not None and not n_classes <= value <= n_available:
        raise ConfigError(
            f"{option_subject(name)} must be an int in the range [{n_classes}, {n_available}] "
            f"for {dataset!r} (at least one sample per class, at most all of them){or_none()}. "
            f"Got {value!r} instead."
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


def _load_labelled(path, config):
    try:
        return _load_path(path, config)
    except ValueError as exc:  # unreadable files, sizes that differ: the user's to fix
        if isinstance(exc, ConfigError):
            raise
        # the loader's advice names its own parameter; the configuration's takes one int
        message = str(exc).replace(RESIZE_HINT, f"Pass {option_setting('image_size', 'N')}")
        raise ConfigError(message) from None


def load_experiment_data(config: ExperimentConfig | Mapping[str, Any]) -> ExperimentData:
    """Load the train split and the test set of an experiment, as :func:`run_experiment` does.

    The sizes of the configuration are checked against the data set here, so a run with a pool
    or test subsample larger than the data fails before it writes anything.

    Parameters
    ----------
    config : ExperimentConfig or dict
        The experiment; a dict is passed to :meth:`ExperimentConfig.from_dict`.

    Returns
    -------
    data : ExperimentData
        The data, with the pools and initial labelled sets of every repeat.

    Raises
    ------
    skal.exceptions.ConfigError
        If ``pool_size``, ``test_size`` or the label budget do not fit the data set, or a data
        set path cannot be read or has no labels.

    See Also
    --------
    ExperimentData : What it returns.

    Examples
    --------
    >>> from skal.experiment import ExperimentConfig, load_experiment_data
    >>> data = load_experiment_data(ExperimentConfig(dataset="digits", method="random"))
    >>> len(data.candidates), len(data.y_test)  # digits: a quarter held out as test set
    (1348, 449)
    """
    if isinstance(config, Mapping):
        config = ExperimentConfig.from_dict(config)
    path = is_data_path(config.dataset)
    if path:
        X_train, y_train = _load_labelled(config.dataset, config)
    else:
        X_train, y_train = load_dataset(config.dataset, "train")
    classes = np.unique(y_train)
    test_seed = derive_seed(config.seed, TEST)
    if config.test is not None:
        candidates = np.arange(len(y_train))
        X_test, y_test = _load_labelled(config.test, config)
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
            f"The pool is too small: {label_budget()} = {config.n_labeled_final} labels, but "
            f"{config.dataset!r} has only {len(candidates)} pool samples."
        )
    return ExperimentData(config, X_train, y_train, candidates, X_test, y_test, classes)
