"""The single-sample strategies: uncertainty, margin, entropy, BALD, random and WAAL's score.

The conventions every strategy shares are described in :mod:`skal.query`.
"""

import warnings

import numpy as np

from .. import distributed as _process_group
from ..calibration import TemperatureScaling, tempering
from ..data import n_pool_rows, pool_view
from ..utils import topk as _topk
from ..utils.params import COUNT, SEED, validates
from ..utils.seeds import draw_seed
from ..utils.typing import ArrayLike, Learner, QueryResult, RandomStateLike
from ..utils.validation import as_generator, check_n_instances, resolve_seed
from ._docstrings import fill_doc
from ._scores import bald_scores, entropy, least_confidence, margin
from ._strategy import check_mc_dropout, estimator_and_transform, scan_pool

__all__ = [
    "random_sampling",
    "uncertainty_sampling",
    "margin_sampling",
    "entropy_sampling",
    "bald",
    "waal_uncertainty_diversity",
]


_SEEDED = {"random_state": [SEED]}


# ---------------------------------------------------------------------------- helpers
def _calibration(calibrate, owner):
    """``calibrate=`` of strategy ``owner`` as the function applied to the probabilities it
    obtains (:func:`skal.calibration.tempering`; the identity for None)."""
    return tempering(calibrate, f"The 'calibrate' parameter of {owner}")


def _query_with(utility, learner, X_pool, n_instances, random_state, calibrate=None, owner=""):
    temper = _calibration(calibrate, owner)
    pool = pool_view(X_pool)
    n_instances = check_n_instances(n_instances, len(pool))
    (seed,) = _process_group.broadcast_seeds(_topk.tiebreak_seed(random_state))

    def score(k, rows):
        return utility(temper(np.asarray(learner.predict_proba(rows))))

    return scan_pool(pool, score, n_instances, seed)


# ---------------------------------------------------------------------------- strategies
@validates(_SEEDED)
@fill_doc
def random_sampling(
    learner: Learner,
    X_pool: ArrayLike,
    n_instances: int = 1,
    *,
    random_state: RandomStateLike = None,
) -> QueryResult:
    """Pick ``n_instances`` pool samples uniformly at random (the baseline).

    Parameters
    ----------
    learner : learner, estimator or Pipeline
        Not used: random sampling needs no model (kept for the common signature).
    {X_pool}
    {n_instances}
    random_state : None, int, RandomState or Generator, default=None
        Seeds the draw; None draws fresh randomness.

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        Positions in ``X_pool`` of the chosen samples, best first.
    scores : ndarray of shape (n_instances,)
        Zeros (random sampling has no utility).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skal import random_sampling
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X = X.reshape(len(X), -1)  # (1797, 1, 8, 8) -> (1797, 64): flat rows for the linear model
    >>> clf = LogisticRegression(max_iter=200).fit(X[:100], y[:100])
    >>> idx, scores = random_sampling(clf, X[100:], n_instances=5, random_state=0)
    >>> idx.shape, len(set(idx.tolist())) == 5
    ((5,), True)
    """
    rng = as_generator(random_state)
    n_pool = n_pool_rows(X_pool)
    n_instances = check_n_instances(n_instances, n_pool)
    idx = rng.choice(n_pool, n_instances, replace=False).astype(np.int64)
    idx = _process_group.broadcast_array(idx)  # rank 0's draw, on every process
    return idx, np.zeros(n_instances)


@validates(_SEEDED)
@fill_doc
def uncertainty_sampling(
    learner: Learner,
    X_pool: ArrayLike,
    n_instances: int = 1,
    *,
    random_state: RandomStateLike = None,
    calibrate: float | TemperatureScaling | None = None,
) -> QueryResult:
    """Least-confidence sampling: highest ``1 - max_k p_k`` (Lewis & Gale 1994).

    Parameters
    ----------
    {learner_proba}
    {X_pool}
    {n_instances}
    {random_state_ties}
    {calibrate}

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        Positions in ``X_pool`` of the chosen samples, best first.
    scores : ndarray of shape (n_instances,)
        ``1 - max_k p_k`` (higher = more informative).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skal import uncertainty_sampling
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X = X.reshape(len(X), -1)  # (1797, 1, 8, 8) -> (1797, 64): flat rows for the linear model
    >>> clf = LogisticRegression(max_iter=200).fit(X[:100], y[:100])
    >>> idx, scores = uncertainty_sampling(clf, X[100:], n_instances=5)
    >>> idx.shape, bool((scores[:-1] >= scores[1:]).all())
    ((5,), True)
    """
    return _query_with(least_confidence, learner, X_pool, n_instances, random_state,
                       calibrate, "uncertainty_sampling")


@validates(_SEEDED)
@fill_doc
def margin_sampling(
    learner: Learner,
    X_pool: ArrayLike,
    n_instances: int = 1,
    *,
    random_state: RandomStateLike = None,
    calibrate: float | TemperatureScaling | None = None,
) -> QueryResult:
    """Smallest-margin sampling (Scheffer et al. 2001).

    Parameters
    ----------
    {learner_proba}
    {X_pool}
    {n_instances}
    {random_state_ties}
    {calibrate}

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        Positions in ``X_pool`` of the chosen samples, best first.
    scores : ndarray of shape (n_instances,)
        *Minus* the margin ``p_(1) - p_(2)`` (values in [-1, 0]), so that, as for every skal
        strategy, higher = more informative. modAL's ``margin_sampling`` reports the margin
        itself (+margin, smaller = more informative); the chosen samples are the same.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skal import margin_sampling
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X = X.reshape(len(X), -1)  # (1797, 1, 8, 8) -> (1797, 64): flat rows for the linear model
    >>> clf = LogisticRegression(max_iter=200).fit(X[:100], y[:100])
    >>> idx, scores = margin_sampling(clf, X[100:], n_instances=5)
    >>> idx.shape, bool((scores <= 0).all())
    ((5,), True)
    """
    return _query_with(lambda p: -margin(p), learner, X_pool, n_instances, random_state,
                       calibrate, "margin_sampling")


@validates(_SEEDED)
@fill_doc
def entropy_sampling(
    learner: Learner,
    X_pool: ArrayLike,
    n_instances: int = 1,
    *,
    random_state: RandomStateLike = None,
    calibrate: float | TemperatureScaling | None = None,
) -> QueryResult:
    """Maximum-entropy sampling (Shannon entropy of ``predict_proba``).

    Parameters
    ----------
    {learner_proba}
    {X_pool}
    {n_instances}
    {random_state_ties}
    {calibrate}

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        Positions in ``X_pool`` of the chosen samples, best first.
    scores : ndarray of shape (n_instances,)
        Entropy in nats (higher = more informative).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skal import entropy_sampling
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X = X.reshape(len(X), -1)  # (1797, 1, 8, 8) -> (1797, 64): flat rows for the linear model
    >>> clf = LogisticRegression(max_iter=200).fit(X[:100], y[:100])
    >>> idx, scores = entropy_sampling(clf, X[100:], n_instances=5)
    >>> idx.shape, bool((scores[:-1] >= scores[1:]).all())
    ((5,), True)
    """
    return _query_with(entropy, learner, X_pool, n_instances, random_state,
                       calibrate, "entropy_sampling")


@validates({"n_samples": [COUNT], "subsample": [None, COUNT], "random_state": [SEED]})
@fill_doc
def bald(
    learner: Learner,
    X_pool: ArrayLike,
    n_instances: int = 1,
    *,
    n_samples: int = 20,
    subsample: int | None = None,
    random_state: RandomStateLike = None,
    calibrate: float | TemperatureScaling | None = None,
) -> QueryResult:
    """BALD: the pool samples with the highest mutual information between label and weights.

    Uses ``n_samples`` MC-dropout passes from the estimator's ``sample_proba`` (see
    :meth:`skal.MCDropoutClassifier.sample_proba`; with ResNet18 the trunk runs once and only the
    dropout head is sampled).

    Parameters
    ----------
    {learner_mc}
    {X_pool}
    {n_instances}
    {n_samples}
    subsample : int >= 1 or None, default=None
        Score only a random subset of this many pool samples (Gal et al. 2017 use 2000); the
        returned indices still index ``X_pool``. At least ``n_instances`` samples are scored.
    random_state : None, int, RandomState or Generator, default=None
        Seeds the subset, the dropout masks and tie-breaking.
    {calibrate_mc}

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        Positions in ``X_pool`` of the chosen samples, best first.
    scores : ndarray of shape (n_instances,)
        BALD mutual information (nats; higher = more informative).

    Raises
    ------
    ValueError
        If the estimator's module has no dropout layer with p > 0: its passes would all be the
        same and every score 0.

    References
    ----------
    Houlsby, Huszar, Ghahramani, Lengyel. "Bayesian Active Learning for Classification and
    Preference Learning." 2011. Gal, Islam, Ghahramani. "Deep Bayesian Active Learning with Image
    Data." ICML 2017.

    Examples
    --------
    >>> from skal import ResNet18Classifier, bald
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> clf = ResNet18Classifier(width=4, max_epochs=1, random_state=0).fit(X[:64], y[:64])
    >>> idx, mutual_information = bald(clf, X[64:], n_instances=5, n_samples=8, random_state=0)
    >>> idx.shape, bool((mutual_information[:-1] >= mutual_information[1:]).all())
    ((5,), True)
    """
    temper = _calibration(calibrate, "bald")
    rng = as_generator(random_state)
    pool = pool_view(X_pool)
    n_pool = len(pool)
    n_instances = check_n_instances(n_instances, n_pool)
    est, transform = estimator_and_transform(learner)
    check_mc_dropout(est, "bald", "BALD", "BALD score", "entropy_sampling")
    candidates = None
    if subsample is not None and subsample < n_pool:
        candidates = np.sort(rng.choice(n_pool, max(int(subsample), n_instances), replace=False))
        candidates = _process_group.broadcast_array(candidates)
        pool = pool.subset(candidates)
    mask_seed = None if random_state is None else draw_seed(rng)
    tie_seed = _topk.tiebreak_seed(None if random_state is None else rng)
    if mask_seed is None and (pool.n_chunks > 1 or _process_group.world_size() > 1):
        # the estimator's own seed (what sample_proba would use), fixed once for all chunks
        mask_seed = resolve_seed(getattr(est, "random_state", None))
    mask_seed, tie_seed = _process_group.broadcast_seeds(mask_seed, tie_seed)

    def score(k, rows):
        # one seed for every chunk and process: pass t is the same weight draw for the whole pool
        samples = est.sample_proba(
            transform(rows), n_samples=n_samples, random_state=mask_seed
        )  # (T, chunk, n_classes): one chunk at a time, never (T, n, n_classes)
        return bald_scores(temper(samples))

    best, scores = scan_pool(pool, score, n_instances, tie_seed)
    return (best if candidates is None else candidates[best]), scores


@validates(_SEEDED)
@fill_doc
def waal_uncertainty_diversity(
    learner: Learner,
    X_pool: ArrayLike,
    n_instances: int = 1,
    *,
    selection: float | None = None,
    mixture: float | None = None,
    uncertainty: str | None = None,
    random_state: RandomStateLike = None,
    kind: str | None = None,
) -> QueryResult:
    """Pick the pool samples with the *smallest* ``U(x) - selection g(x)`` (WAAL's query).

    ``U(x)`` is an upper bound on the unknown loss of the sample (a mixture of the single-worst /
    l_inf and the l1 bound on ``-log p``; small = the prediction is close to uniform) and ``g(x)``
    the critic's score (large = the sample looks unlike the labelled set). Computed in one forward
    pass over the pool: each batch's features go to both the classifier head and the critic (eval
    mode). The objective is additive, so taking the smallest scores is the exact batch optimum.

    Parameters
    ----------
    learner : learner, estimator or Pipeline
        Its (final) estimator must be a fitted :class:`skal.WAALClassifier` (or anything with a
        ``waal_score(X, selection=, mixture=, uncertainty=)`` method).
    {X_pool}
    {n_instances}
    selection : float or None, default=None
        Weight of the critic's diversity score; None uses the estimator's ``selection`` (5).
    mixture : float or None, default=None
        Mixture coefficient of the uncertainty bound; None uses the estimator's (0.5).
    uncertainty : {"linf_l1", "l2_l1"} or None, default=None
        l_inf + l1 (the paper) or l2 + l1 (the authors' code); None uses the estimator's.
    random_state : None, int, RandomState or Generator, default=None
        Tie-breaking (position order when None).
    kind : {"paper", "code"} or None, default=None
        Deprecated alias of ``uncertainty`` (``"paper"`` is ``"linf_l1"``, ``"code"`` is
        ``"l2_l1"``).

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

    Examples
    --------
    >>> from skal import WAALClassifier, waal_uncertainty_diversity
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> waal = WAALClassifier(max_epochs=1, batch_size=32, random_state=0)
    >>> waal = waal.fit(X[:64], y[:64], X_unlabeled=X[64:192])
    >>> idx, scores = waal_uncertainty_diversity(waal, X[64:], n_instances=5)
    >>> idx.shape, bool((scores[:-1] <= scores[1:]).all())  # smallest first
    ((5,), True)
    """
    pool = pool_view(X_pool)
    n_instances = check_n_instances(n_instances, len(pool))
    est, transform = estimator_and_transform(learner)
    if not hasattr(est, "waal_score"):
        raise TypeError(
            "waal_uncertainty_diversity needs a fitted skal.WAALClassifier (an estimator with "
            f"a waal_score method); got {type(est).__name__}."
        )
    if kind is not None:
        from ..losses import UNCERTAINTY_ALIASES

        warnings.warn(
            "The 'kind' parameter of waal_uncertainty_diversity is deprecated: use uncertainty="
            f"{UNCERTAINTY_ALIASES.get(kind, kind)!r} (kind={kind!r}) instead.",
            DeprecationWarning, stacklevel=3,  # the caller of the validates wrapper
        )
        uncertainty = UNCERTAINTY_ALIASES.get(kind, kind)
    waal_kwargs = {} if uncertainty is None else {"uncertainty": uncertainty}
    (seed,) = _process_group.broadcast_seeds(_topk.tiebreak_seed(random_state))

    def score(k, rows):  # the smallest WAAL scores are the best: rank by their negatives
        waal = est.waal_score(transform(rows), selection=selection, mixture=mixture,
                              **waal_kwargs)
        return -np.asarray(waal, dtype=np.float64)

    idx, negated = scan_pool(pool, score, n_instances, seed)
    return idx, -negated


# ---------------------------------------------------------------------------- other families
# Defined in skal.query and skal.query (on skal.query.selection's pure selectors) and
# re-exported here on first use, so that ``import skal.query`` does not load them. No cycle: they
# import the layer below (skal.query._scores, skal.query._strategy), never this module.
