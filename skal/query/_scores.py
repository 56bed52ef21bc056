"""The pure scores of the query strategies: arrays in, arrays out (baal's ``compute_score``).

Per-sample utilities from class probabilities (:func:`least_confidence`, :func:`margin`,
:func:`entropy`) and from MC-dropout samples (:func:`bald_scores`), and the ranking
(:func:`select_top`). :mod:`skal.query` documents and re-exports them; the strategies of
:mod:`skal.query`, :mod:`skal.query` and :mod:`skal.query` import them from here, so
that no strategy module imports another's.
"""

import numpy as np
from scipy.special import xlogy

from ..utils import topk as _topk
from ..utils.params import SEED, validates
from ..utils.typing import ArrayLike, RandomStateLike
from ..utils.validation import check_n_instances

__all__ = ["least_confidence", "margin", "entropy", "bald_scores", "select_top"]


def least_confidence(proba: np.ndarray) -> np.ndarray:
    """Least confidence ``1 - max_k p_k`` per row (high = uncertain).

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)
        Class probabilities, e.g. from ``predict_proba``.

    Returns
    -------
    scores : ndarray of shape (n,)
        ``1 - max_k p_k``, in [0, 1 - 1/n_classes].

    Examples
    --------
    >>> import numpy as np
    >>> from skal.query import least_confidence
    >>> least_confidence(np.array([[0.9, 0.1], [0.5, 0.5]]))
    array([0.1, 0.5])
    """
    return 1.0 - np.max(proba, axis=1)


def margin(proba: np.ndarray) -> np.ndarray:
    """Difference between the two largest probabilities per row (small = uncertain).

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)
        Class probabilities, e.g. from ``predict_proba``.

    Returns
    -------
    margins : ndarray of shape (n,)
        ``p_(1) - p_(2)``, in [0, 1]; all ones for a single class.

    Examples
    --------
    >>> import numpy as np
    >>> from skal.query import margin
    >>> margin(np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]]))
    array([0.5, 0. ])
    """
    if proba.shape[1] < 2:
        return np.ones(len(proba))
    top2 = np.partition(proba, -2, axis=1)[:, -2:]  # (n, 2): second largest, largest
    return top2[:, 1] - top2[:, 0]


def entropy(proba: np.ndarray) -> np.ndarray:
    """Predictive entropy ``-sum_k p_k log p_k`` per row, in nats (0 log 0 = 0).

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)
        Class probabilities, e.g. from ``predict_proba``.

    Returns
    -------
    scores : ndarray of shape (n,)
        Entropy in nats, in [0, log n_classes].

    Examples
    --------
    >>> import numpy as np
    >>> from skal.query import entropy
    >>> entropy(np.array([[0.5, 0.5], [0.9, 0.1]])).round(4)
    array([0.6931, 0.3251])
    """
    return -np.sum(xlogy(proba, proba), axis=1)


def bald_scores(samples: ArrayLike) -> np.ndarray:
    """BALD mutual information from MC samples (Houlsby et al. 2011; Gal et al. 2017).

    ``I[y; w | x] = H[mean_t p_t] - mean_t H[p_t]``, computed with ``xlogy`` so that zero
    probabilities give 0 rather than NaN.

    Parameters
    ----------
    samples : ndarray of shape (n_samples, n, n_classes)
        MC-dropout probabilities, as returned by ``sample_proba``.

    Returns
    -------
    scores : ndarray of shape (n,)
        Mutual information in nats, >= 0 up to rounding.

    Examples
    --------
    Two passes that agree carry no information about the weights; two that disagree do:

    >>> import numpy as np
    >>> from skal.query import bald_scores
    >>> samples = np.array([[[0.5, 0.5], [1.0, 0.0]],
    ...                     [[0.5, 0.5], [0.0, 1.0]]])  # (T=2, n=2, n_classes=2)
    >>> bald_scores(samples).round(4)
    array([0.    , 0.6931])
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 3:
        raise ValueError(
            f"samples must have shape (n_samples, n, n_classes); got shape {samples.shape}."
        )
    mean = samples.mean(axis=0)  # (n, n_classes)
    expected_entropy = -np.sum(xlogy(samples, samples), axis=2).mean(axis=0)  # (n,)
    return entropy(mean) - expected_entropy


_SEEDED = {"random_state": [SEED]}


@validates(_SEEDED)
def select_top(
    scores: ArrayLike, n_instances: int, random_state: RandomStateLike = None
) -> np.ndarray:
    """Return the positions of the ``n_instances`` highest scores, best first.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Utilities, higher = better; NaN is an error.
    n_instances : int
        How many positions to return, from 1 to ``n``.
    random_state : None, int, RandomState or Generator, default=None
        None breaks ties by position; anything else by a seeded random order of the positions
        (a keyed hash of each position, see :mod:`skal.utils.topk`, so that a pool scored chunk by
        chunk or on several processes gives the same selection).

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        Positions in ``scores``, highest score first.

    Examples
    --------
    >>> from skal.query import select_top
    >>> select_top([0.1, 0.9, 0.5, 0.9], 3)
    array([1, 3, 2])
    """
    scores = np.asarray(scores, dtype=np.float64)
    n_instances = check_n_instances(n_instances, len(scores))
    return _topk.select_top(scores, n_instances, _topk.tiebreak_seed(random_state))
