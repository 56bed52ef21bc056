"""Query strategies: pure score functions plus thin modAL-style wrappers.

Every strategy has modAL 0.4.2's calling convention::

    strategy(learner_or_estimator, X_pool, n_instances=1, *, random_state=None, **kwargs)
        -> (indices, scores)

``learner_or_estimator`` may be a modAL learner, a :class:`skal.ActiveLearner`, a fitted estimator
or a fitted :class:`~sklearn.pipeline.Pipeline`. ``indices`` are unique int64 positions in
``X_pool``, best first; ``scores`` are the utilities of those samples (higher = more informative).
Returning both in one call is what modAL 0.4.2 expects: a strategy that returns indices only is
called twice by modAL, and silently mis-read when ``n_instances == 2`` (ECOSYSTEM.md 1.1).

Ties are broken by position (lowest index first) when ``random_state`` is None, and by a seeded
random permutation otherwise, so a query is always reproducible.
"""

import numpy as np
from scipy.special import xlogy
from sklearn.pipeline import Pipeline

from . import _topk
from ._validation import check_n_instances

__all__ = [
    "least_confidence",
    "margin",
    "entropy",
    "bald_scores",
    "select_top",
    "random_sampling",
    "uncertainty_sampling",
    "margin_sampling",
    "entropy_sampling",
    "bald",
    "waal_uncertainty_diversity",
]


# ---------------------------------------------------------------------------- pure scores
def least_confidence(proba):
    """``1 - max_k p_k`` per row; ``proba`` has shape (n, n_classes)."""
    return 1.0 - np.max(proba, axis=1)


def margin(proba):
    """Difference between the two largest probabilities per row (small = uncertain)."""
    if proba.shape[1] < 2:
        return np.ones(len(proba))
    top2 = np.partition(proba, -2, axis=1)[:, -2:]  # (n, 2): second largest, largest
    return top2[:, 1] - top2[:, 0]


def entropy(proba):
    """Predictive entropy ``-sum_k p_k log p_k`` per row, in nats (0 log 0 = 0)."""
    return -np.sum(xlogy(proba, proba), axis=1)


def bald_scores(samples):
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
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 3:
        raise ValueError(
            f"samples must have shape (n_samples, n, n_classes); got shape {samples.shape}."
        )
    mean = samples.mean(axis=0)  # (n, n_classes)
    expected_entropy = -np.sum(xlogy(samples, samples), axis=2).mean(axis=0)  # (n,)
    return entropy(mean) - expected_entropy


def _generator(random_state):
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31 - 1))
    return np.random.default_rng(random_state)


def select_top(scores, n_instances, random_state=None):
    """Positions of the ``n_instances`` highest scores, best first.

    Parameters
    ----------
    scores : ndarray of shape (n,)
    n_instances : int
    random_state : None, int, RandomState or Generator
        None breaks ties by position; anything else by a seeded random order of the positions
        (a keyed hash of each position, see :mod:`skal._topk`, so that a pool scored chunk by
        chunk or on several processes gives the same selection).

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
    """
    scores = np.asarray(scores, dtype=np.float64)
    n_instances = check_n_instances(n_instances, len(scores))
    return _topk.select_top(scores, n_instances, _topk.tiebreak_seed(random_state))


# ---------------------------------------------------------------------------- helpers
def _n_rows(X_pool):
    try:
        return len(X_pool)
    except TypeError:
        raise TypeError(
            f"X_pool must be an array-like of samples; got {type(X_pool).__name__}."
        ) from None


def _final_estimator(learner_or_estimator, X_pool):
    """The estimator that owns ``sample_proba`` and the pool transformed for it."""
    est = learner_or_estimator
    if hasattr(est, "query_strategy") and hasattr(est, "estimator"):  # modAL or skal learner
        est = est.estimator
    if isinstance(est, Pipeline):
        X_pool = est[:-1].transform(X_pool)
        est = est[-1]
    return est, X_pool


def _query_with(utility, learner, X_pool, n_instances, random_state):
    n_instances = check_n_instances(n_instances, _n_rows(X_pool))
    scores = utility(np.asarray(learner.predict_proba(X_pool)))
    idx = select_top(scores, n_instances, random_state)
    return idx, scores[idx]


# ---------------------------------------------------------------------------- strategies
def random_sampling(learner, X_pool, n_instances=1, *, random_state=None):
    """Pick ``n_instances`` pool samples uniformly at random (the baseline).

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
    scores : ndarray of shape (n_instances,)
        Zeros (random sampling has no utility).
    """
    n_instances = check_n_instances(n_instances, _n_rows(X_pool))
    idx = _generator(random_state).choice(_n_rows(X_pool), n_instances, replace=False)
    return idx.astype(np.int64), np.zeros(n_instances)


def uncertainty_sampling(learner, X_pool, n_instances=1, *, random_state=None):
    """Least-confidence sampling: highest ``1 - max_k p_k`` (Lewis & Gale 1994).

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
    scores : ndarray of shape (n_instances,)
    """
    return _query_with(least_confidence, learner, X_pool, n_instances, random_state)


def margin_sampling(learner, X_pool, n_instances=1, *, random_state=None):
    """Smallest-margin sampling (Scheffer et al. 2001).

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
    scores : ndarray of shape (n_instances,)
        Minus the margin, as in modAL (higher = more informative).
    """
    return _query_with(lambda p: -margin(p), learner, X_pool, n_instances, random_state)


def entropy_sampling(learner, X_pool, n_instances=1, *, random_state=None):
    """Maximum-entropy sampling (Shannon entropy of ``predict_proba``).

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
    scores : ndarray of shape (n_instances,)
    """
    return _query_with(entropy, learner, X_pool, n_instances, random_state)


def bald(learner, X_pool, n_instances=1, *, n_samples=20, subsample=None, random_state=None):
    """BALD: the pool samples with the highest mutual information between label and weights.

    Uses ``n_samples`` MC-dropout passes from the estimator's ``sample_proba`` (see
    :meth:`skal.MCDropoutClassifier.sample_proba`; with ResNet18 the trunk runs once and only the
    dropout head is sampled).

    Parameters
    ----------
    learner : learner, estimator or Pipeline
        Its (final) estimator must have ``sample_proba(X, n_samples=..., random_state=...)``.
    X_pool : array-like
    n_instances : int, default=1
    n_samples : int, default=20
        MC passes T.
    subsample : int or None, default=None
        Score only a random subset of this many pool samples (Gal et al. 2017 use 2000); the
        returned indices still index ``X_pool``.
    random_state : None, int, RandomState or Generator, default=None
        Seeds the subset, the dropout masks and tie-breaking.

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
    scores : ndarray of shape (n_instances,)
        BALD mutual information (nats).

    References
    ----------
    Houlsby, Huszar, Ghahramani, Lengyel. "Bayesian Active Learning for Classification and
    Preference Learning." 2011. Gal, Islam, Ghahramani. "Deep Bayesian Active Learning with Image
    Data." ICML 2017.
    """
    n_pool = _n_rows(X_pool)
    n_instances = check_n_instances(n_instances, n_pool)
    est, X = _final_estimator(learner, X_pool)
    if not hasattr(est, "sample_proba"):
        raise TypeError(
            f"bald needs an estimator with a sample_proba(X, n_samples) method (MC dropout), "
            f"such as skal.ResNet18Classifier; got {type(est).__name__}."
        )
    rng = _generator(random_state)
    candidates = np.arange(n_pool)
    if subsample is not None and subsample < n_pool:
        candidates = np.sort(rng.choice(n_pool, max(int(subsample), n_instances), replace=False))
        X = X[candidates]
    mask_seed = None if random_state is None else int(rng.integers(2**31 - 1))
    samples = est.sample_proba(X, n_samples=n_samples, random_state=mask_seed)
    scores = bald_scores(samples)
    best = select_top(scores, n_instances, None if random_state is None else rng)
    return candidates[best], scores[best]


def waal_uncertainty_diversity(
    learner, X_pool, n_instances=1, *, selection=None, mixture=None, kind=None, random_state=None
):
    """WAAL's query (Shui et al. 2020): the pool samples with the *smallest* ``U(x) - selection g(x)``.

    ``U(x)`` is an upper bound on the unknown loss of the sample (a mixture of the single-worst /
    l_inf and the l1 bound on ``-log p``; small = the prediction is close to uniform) and ``g(x)``
    the critic's score (large = the sample looks unlike the labelled set). Computed in one forward
    pass over the pool: each batch's features go to both the classifier head and the critic (eval
    mode). The objective is additive, so taking the smallest scores is the exact batch optimum.

    Parameters
    ----------
    learner : learner, estimator or Pipeline
        Its (final) estimator must be a fitted :class:`skal.WAALClassifier` (or anything with a
        ``waal_score(X, selection=, mixture=, kind=)`` method).
    X_pool : array-like
    n_instances : int, default=1
    selection : float or None, default=None
        Weight of the critic's diversity score; None uses the estimator's ``selection`` (5).
    mixture : float or None, default=None
        Mixture coefficient of the uncertainty bound; None uses the estimator's (0.5).
    kind : {"paper", "code"} or None, default=None
        l_inf + l1 (paper) or l2 + l1 (authors' code); None uses the estimator's.
    random_state : None, int, RandomState or Generator, default=None
        Tie-breaking (position order when None).

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        Best (smallest score) first.
    scores : ndarray of shape (n_instances,)
        The WAAL scores of the chosen samples. Unlike the other strategies, **smaller is better**
        here: these are the paper's scores, not utilities.

    References
    ----------
    Shui, Zhou, Gagne, Wang. "Deep Active Learning: Unified and Principled Method for Query and
    Training." AISTATS 2020.
    """
    n_instances = check_n_instances(n_instances, _n_rows(X_pool))
    est, X = _final_estimator(learner, X_pool)
    if not hasattr(est, "waal_score"):
        raise TypeError(
            "waal_uncertainty_diversity needs a fitted skal.WAALClassifier (an estimator with "
            f"a waal_score method); got {type(est).__name__}."
        )
    scores = np.asarray(est.waal_score(X, selection=selection, mixture=mixture, kind=kind))
    idx = select_top(-scores.astype(np.float64), n_instances, random_state)
    return idx, scores[idx]
