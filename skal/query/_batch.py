"""Batch-aware query strategies in the modAL convention (BatchBALD, stochastic, BADGE, core-set,
TypiClust).

Each is a thin wrapper: it gets MC samples, probabilities or features from the estimator and hands
them to a pure selector of :mod:`skal.query.selection`. The calling convention is
:mod:`skal.query`'s::

    strategy(learner_or_estimator, X_pool, n_instances=1, *, random_state=None, **kwargs)
        -> (indices, scores)

Feature-space strategies take ``embedding=``: ``None`` (default) uses the estimator's
``embed(X)`` (every skal estimator has one: the input of the last Linear layer, see
:meth:`skal.MCDropoutClassifier.embed`) when the estimator has it and is fitted, and otherwise
the flattened input (exact for a linear model, and what TypiClust has at a cold start with an
untrained model); ``"input"`` always uses the flattened input; a callable ``embedding(X) ->
(n, d)`` supplies features of your own (e.g. a self-supervised encoder, as TypiClust's authors
use).

The labelled set (core-set's initial centres, TypiClust's covered clusters) comes from
``X_labeled=`` or, when a learner is given, from its training data (``X_training_`` of
:class:`skal.ActiveLearner`, ``X_training`` of modAL's learners).
"""

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.utils import _safe_indexing

from ..calibration import TemperatureScaling, tempering
from ..data import n_pool_rows, pool_rows
from ..utils.params import COUNT, SEED, Choice, Satisfies, validates
from ..utils.seeds import draw_seed
from ..utils.typing import ArrayLike, Learner, QueryResult, RandomStateLike
from ..utils.validation import as_generator, check_n_instances
from ._docstrings import fill_doc
from ._scores import bald_scores, entropy, least_confidence, margin
from ._strategy import (
    EMBEDDING,
    check_mc_dropout,
    embed_features,
    final_estimator,
    labeled_features,
)
from .selection import (
    MODE,
    TEMPERATURE,
    badge_select,
    batchbald_select,
    kcenter_greedy,
    stochastic_select,
    typiclust_select,
)

__all__ = ["batch_bald", "stochastic_batch", "power_bald", "badge", "coreset", "typiclust"]

_UTILITIES = ("bald", "entropy", "least_confidence", "margin")

# The constraints the strategies share (each declares its own dict with these).
_MC = {"n_samples": [COUNT], "subsample": [None, COUNT], "random_state": [SEED]}
_UTILITY = [Choice(*_UTILITIES, description=f"one of {_UTILITIES}"),
            Satisfies(callable, "a callable (estimator, X) -> scores")]


# ---------------------------------------------------------------------------- helpers
def _calibration(calibrate, owner):
    """``calibrate=`` of strategy ``owner`` as the function applied to the probabilities it
    obtains (:func:`skal.calibration.tempering`; the identity for None)."""
    return tempering(calibrate, f"The 'calibrate' parameter of {owner}")


def _mc_samples(owner, learner, X_pool, n_samples, subsample, rng, seeded, n_instances,
                calibrate=None):
    """``(candidates, samples)``: MC-dropout probabilities of the (sub-sampled) pool, each pass
    tempered as ``calibrate`` says (:func:`skal.calibration.tempering`)."""
    temper = _calibration(calibrate, owner)
    est, X = final_estimator(learner, X_pool)
    check_mc_dropout(est, owner, owner, "mutual information", "badge")
    n_pool = n_pool_rows(X_pool)
    candidates = np.arange(n_pool)
    if subsample is not None and subsample < n_pool:
        candidates = np.sort(rng.choice(n_pool, max(subsample, n_instances), replace=False))
        X = _safe_indexing(X, candidates)
    samples = est.sample_proba(X, n_samples=n_samples,
                               random_state=draw_seed(rng) if seeded else None)
    return candidates, temper(np.asarray(samples))


# ---------------------------------------------------------------------------- strategies
@validates({**_MC, "n_configurations": [COUNT]})
@fill_doc
def batch_bald(
    learner: Learner,
    X_pool: ArrayLike,
    n_instances: int = 1,
    *,
    n_samples: int = 20,
    n_configurations: int = 1000,
    subsample: int | None = None,
    random_state: RandomStateLike = None,
    calibrate: float | TemperatureScaling | None = None,
) -> QueryResult:
    """BatchBALD: a batch that jointly maximises the mutual information with the weights.

    Greedy maximisation of ``I[y_1, ..., y_b; w]`` over MC-dropout samples
    (:func:`skal.query.selection.batchbald_select`): exact joint entropies while the batch's label
    configurations number at most ``n_configurations``, sampled configurations beyond. Unlike
    :func:`skal.bald`'s top-k, a point that duplicates one already in the batch adds little.

    Parameters
    ----------
    {learner_mc}
    {X_pool}
    {n_instances}
    {n_samples}
    n_configurations : int, default=1000
        M: the exact/sampled switch and the number of sampled configurations.
    {subsample}
    random_state : None, int, RandomState or Generator, default=None
        Seeds the subset, the dropout masks and the sampled configurations.
    {calibrate_mc}

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        In the order chosen.
    scores : ndarray of shape (n_instances,)
        Each point's gain in joint mutual information (nats); the first is its BALD score.

    Notes
    -----
    Time ``O(n_instances * n * T * M * C)``, memory ``O(T * n * C)`` (the MC samples) plus a
    bounded block; see :func:`skal.query.selection.batchbald_select`.

    References
    ----------
    Kirsch, van Amersfoort, Gal. "BatchBALD: Efficient and Diverse Batch Acquisition for Deep
    Bayesian Active Learning." NeurIPS 2019.

    Examples
    --------
    >>> from skal import ResNet18Classifier, batch_bald
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> clf = ResNet18Classifier(width=4, max_epochs=1, random_state=0).fit(X[:64], y[:64])
    >>> idx, gains = batch_bald(clf, X[64:164], n_instances=4, n_samples=8, random_state=0)
    >>> idx.shape
    (4,)
    """
    rng = as_generator(random_state)
    X_pool = pool_rows(X_pool)
    n_instances = check_n_instances(n_instances, len(X_pool))
    candidates, samples = _mc_samples("batch_bald", learner, X_pool, n_samples, subsample, rng,
                                      random_state is not None, n_instances, calibrate)
    idx, gains = batchbald_select(samples, n_instances, n_configurations=n_configurations,
                                  random_state=rng)
    return candidates[idx], gains


def _utility_scores(owner, utility, mode, learner, X_pool, n_samples, subsample, rng, seeded,
                    n_instances, calibrate=None):
    temper = _calibration(calibrate, owner)  # checked before the estimator is used
    if callable(utility):
        if calibrate is not None:
            raise ValueError(
                f"The 'calibrate' parameter of {owner} tempers the probabilities of the built-in "
                f"utilities {_UTILITIES}; a callable utility computes its own scores from the "
                f"estimator, so temper inside it instead. Got calibrate={calibrate!r}."
            )
        est, X = final_estimator(learner, X_pool)
        scores = np.asarray(utility(est, X), dtype=np.float64)
        if scores.shape != (n_pool_rows(X_pool),):
            raise ValueError(
                f"The utility given to {owner} must return one score per pool sample, shape "
                f"({n_pool_rows(X_pool)},); got shape {scores.shape}."
            )
        return np.arange(len(scores)), scores
    if utility == "bald":
        candidates, samples = _mc_samples(owner, learner, X_pool, n_samples, subsample, rng,
                                          seeded, n_instances, calibrate)
        scores = bald_scores(samples)
        if mode == "power":
            scores = np.maximum(scores, 0.0)  # mutual information >= 0; rounding can go below
        return candidates, scores
    proba = temper(np.asarray(learner.predict_proba(X_pool), dtype=np.float64))
    if utility == "margin":
        return np.arange(len(proba)), 1.0 - margin(proba)  # in [0, 1], so power works
    fn = entropy if utility == "entropy" else least_confidence
    return np.arange(len(proba)), fn(proba)


@validates({**_MC, "utility": _UTILITY, "mode": [MODE], "temperature": [TEMPERATURE]})
@fill_doc
def stochastic_batch(
    learner: Learner,
    X_pool: ArrayLike,
    n_instances: int = 1,
    *,
    utility: str | Callable[[Any, Any], ArrayLike] = "bald",
    mode: str = "power",
    temperature: float = 1.0,
    n_samples: int = 20,
    subsample: int | None = None,
    random_state: RandomStateLike = None,
    calibrate: float | TemperatureScaling | None = None,
) -> QueryResult:
    """Stochastic batch acquisition: sample the batch in proportion to a per-sample score.

    Top-k of a per-sample score fills a batch with near-duplicates; drawing the batch without
    replacement from ``p_i ~ s_i^(1/temperature)`` (power), ``exp(s_i / temperature)``
    (softmax) or ``rank_i^(-1/temperature)`` (soft-rank) is as cheap as top-k and, in Kirsch et
    al.'s experiments, as good as BatchBALD or BADGE. See
    :func:`skal.query.selection.stochastic_select`.

    Parameters
    ----------
    learner : learner, estimator or Pipeline
        A :class:`skal.ActiveLearner`, a modAL learner, or a fitted estimator or ``Pipeline``
        with what ``utility`` needs (``sample_proba`` or ``predict_proba``).
    {X_pool}
    {n_instances}
    utility : {"bald", "entropy", "least_confidence", "margin"} or callable, default="bald"
        The score. ``"bald"`` needs ``sample_proba``; the others use ``predict_proba``
        (``"margin"`` scores ``1 - margin``); a callable is ``utility(estimator, X) -> (n,)``.
    mode : {"power", "softmax", "softrank"}, default="power"
        Power needs scores >= 0.
    temperature : float > 0, default=1.0
        1 is the paper's default; towards 0 approaches top-k, large values random sampling.
    n_samples : int, default=20
        MC passes for ``utility="bald"``.
    subsample : int or None, default=None
        With ``utility="bald"``: score only a random subset of the pool.
    random_state : None, int, RandomState or Generator, default=None
        The same value gives the same batch (None: a fresh random batch each call).
    calibrate : None, float or fitted TemperatureScaling, default=None
        Temper the probabilities before scoring (:mod:`skal.calibration`; each MC pass's with
        ``utility="bald"``): a temperature ``T > 0``, or a
        :class:`~skal.calibration.TemperatureScaling` fitted on held-out labels; None scores
        them as they are. Not the same as ``temperature``, which shapes the draw from the
        scores. A callable ``utility`` computes its own scores and takes no ``calibrate``.

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        In the order drawn.
    scores : ndarray of shape (n_instances,)
        The utilities of the drawn samples.

    Notes
    -----
    One scoring pass plus ``O(n log n)``; memory that of the scores.

    References
    ----------
    Kirsch, Farquhar, Atighehchian, Jesson, Branchaud-Charron, Gal. "Stochastic Batch
    Acquisition: A Simple Baseline for Deep Active Learning." TMLR 2023.

    Examples
    --------
    >>> from skal import ResNet18Classifier, stochastic_batch
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> clf = ResNet18Classifier(width=4, max_epochs=1, random_state=0).fit(X[:64], y[:64])
    >>> a, _ = stochastic_batch(clf, X[64:], 5, utility="entropy", mode="softrank", random_state=0)
    >>> b, _ = stochastic_batch(clf, X[64:], 5, utility="entropy", mode="softrank", random_state=0)
    >>> bool((a == b).all())
    True
    """
    return _stochastic("stochastic_batch", learner, X_pool, n_instances, utility, mode,
                       temperature, n_samples, subsample, random_state, calibrate)


def _stochastic(owner, learner, X_pool, n_instances, utility, mode, temperature, n_samples,
                subsample, random_state, calibrate=None):
    rng = as_generator(random_state)
    X_pool = pool_rows(X_pool)
    n_instances = check_n_instances(n_instances, len(X_pool))
    candidates, scores = _utility_scores(owner, utility, mode, learner, X_pool, n_samples,
                                         subsample, rng, random_state is not None, n_instances,
                                         calibrate)
    idx = stochastic_select(scores, n_instances, mode=mode, temperature=temperature,
                            random_state=rng)
    return candidates[idx], scores[idx]


@validates({**_MC, "temperature": [TEMPERATURE]})
@fill_doc
def power_bald(
    learner: Learner,
    X_pool: ArrayLike,
    n_instances: int = 1,
    *,
    temperature: float = 1.0,
    n_samples: int = 20,
    subsample: int | None = None,
    random_state: RandomStateLike = None,
    calibrate: float | TemperatureScaling | None = None,
) -> QueryResult:
    """PowerBALD: draw the batch with probability proportional to ``BALD^(1/temperature)``.

    :func:`stochastic_batch` with ``utility="bald", mode="power"``, Kirsch et al.'s recommended
    stochastic acquisition.

    Parameters
    ----------
    learner : learner, estimator or Pipeline
        Its (final) estimator must have ``sample_proba``.
    {X_pool}
    {n_instances}
    temperature : float > 0, default=1.0
        1 is the paper's default; towards 0 approaches BALD's top-k, large values random
        sampling.
    {n_samples}
    {subsample}
    random_state : None, int, RandomState or Generator, default=None
        The same value gives the same batch.
    {calibrate_mc}

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        Positions in ``X_pool`` of the chosen samples, in the order drawn.
    scores : ndarray of shape (n_instances,)
        BALD scores (nats) of the drawn samples.

    References
    ----------
    Kirsch, Farquhar, Atighehchian, Jesson, Branchaud-Charron, Gal. "Stochastic Batch
    Acquisition: A Simple Baseline for Deep Active Learning." TMLR 2023.

    Examples
    --------
    >>> from skal import ResNet18Classifier, power_bald
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> clf = ResNet18Classifier(width=4, max_epochs=1, random_state=0).fit(X[:64], y[:64])
    >>> idx, bald_of_idx = power_bald(clf, X[64:], n_instances=10, n_samples=8, random_state=0)
    >>> len(set(idx.tolist()))
    10
    """
    return _stochastic("power_bald", learner, X_pool, n_instances, "bald", "power", temperature,
                       n_samples, subsample, random_state, calibrate)


@validates({"embedding": EMBEDDING, "random_state": [SEED]})
@fill_doc
def badge(
    learner: Learner,
    X_pool: ArrayLike,
    n_instances: int = 1,
    *,
    embedding: str | Callable[[Any], ArrayLike] | None = None,
    random_state: RandomStateLike = None,
    calibrate: float | TemperatureScaling | None = None,
) -> QueryResult:
    """BADGE: k-means++ seeding on last-layer gradient embeddings (uncertain and diverse).

    The gradient embedding ``g_i = (p_i - e_yhat_i) (x) z_i`` is long where the model is
    uncertain and k-means++ spreads the batch over it. Probabilities and penultimate features
    come from one pass (``embed(X, return_proba=True)``) and the distances are factorised
    (:func:`skal.query.selection.badge_select`), so memory is ``O(n (C + d))``, not ``O(n C d)``.

    Parameters
    ----------
    learner : learner, estimator or Pipeline
        Fitted, with ``predict_proba`` (and ``embed`` for penultimate features).
    {X_pool}
    {n_instances}
    embedding : None, "input" or callable, default=None
        Where ``z`` comes from (see :mod:`skal.query`). Without ``embed`` the input is
        used, which is the exact gradient embedding of a linear softmax model.
    random_state : None, int, RandomState or Generator, default=None
        Seeds the k-means++ draws; the same value gives the same batch.
    calibrate : None, float or fitted TemperatureScaling, default=None
        Temper the probabilities before the gradient embeddings are formed
        (:mod:`skal.calibration`): a temperature ``T > 0``, or a
        :class:`~skal.calibration.TemperatureScaling` fitted on held-out labels; None uses them
        as they are. The predicted label stays; ``p - e_yhat`` (the embedding's length) grows
        for ``T > 1`` and shrinks for ``T < 1``.

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        In the order chosen.
    scores : ndarray of shape (n_instances,)
        Squared gradient-embedding distance of each point to the nearest earlier pick (the first:
        its squared gradient norm).

    Notes
    -----
    One forward pass, then time ``O(n_instances * n * (C + d))`` and memory ``O(n (C + d))``.

    References
    ----------
    Ash, Zhang, Krishnamurthy, Langford, Agarwal. "Deep Batch Active Learning by Diverse,
    Uncertain Gradient Lower Bounds." ICLR 2020.

    Examples
    --------
    >>> from skal import ResNet18Classifier, badge
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> clf = ResNet18Classifier(width=4, max_epochs=1, random_state=0).fit(X[:64], y[:64])
    >>> idx, d2 = badge(clf, X[64:], n_instances=10, random_state=0)
    >>> idx.shape, bool(d2[0] >= d2[1:].max())
    ((10,), True)
    """
    temper = _calibration(calibrate, "badge")
    rng = as_generator(random_state)
    X_pool = pool_rows(X_pool)
    n_instances = check_n_instances(n_instances, len(X_pool))
    est, X = final_estimator(learner, X_pool)
    Z, proba = embed_features("badge", est, X, embedding, need_proba=True)
    return badge_select(temper(proba), Z, n_instances, random_state=rng)


@validates({"embedding": EMBEDDING, "random_state": [SEED]})
@fill_doc
def coreset(
    learner: Learner,
    X_pool: ArrayLike,
    n_instances: int = 1,
    *,
    X_labeled: ArrayLike | None = None,
    embedding: str | Callable[[Any], ArrayLike] | None = None,
    random_state: RandomStateLike = None,
) -> QueryResult:
    """Core-set: k-center greedy on penultimate features, the labelled set as first centres.

    Each pick is the pool point farthest from every labelled and already chosen point, so the
    batch covers the pool (:func:`skal.query.selection.kcenter_greedy`). Distances are computed in
    blocks: never an ``n x n`` or ``n x n_labeled`` matrix.

    Parameters
    ----------
    learner : learner, estimator or Pipeline
        A :class:`skal.ActiveLearner`, a modAL learner, or a fitted estimator or ``Pipeline``
        (with ``embed`` for penultimate features).
    {X_pool}
    {n_instances}
    X_labeled : array-like or None, default=None
        The labelled samples (raw, like ``X_pool``). None takes the learner's training data
        (``X_training_`` / ``X_training``); with a bare estimator and no ``X_labeled`` there are
        no initial centres and the first pick is random.
    embedding : None, "input" or callable, default=None
        Where the features come from (see :mod:`skal.query`).
    random_state : None, int, RandomState or Generator, default=None
        Seeds the first pick when there is no labelled set.

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        In the order chosen.
    scores : ndarray of shape (n_instances,)
        Distance of each pick to its nearest centre when chosen (``nan`` for a random first pick).

    Notes
    -----
    Two forward passes (pool and labelled set), then time ``O((n_labeled + n_instances) n d)``
    and memory ``O(n d)`` for the features plus ``O(n)``.

    References
    ----------
    Sener, Savarese. "Active Learning for Convolutional Neural Networks: A Core-Set Approach."
    ICLR 2018.

    Examples
    --------
    >>> from skal import ResNet18Classifier, coreset
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> clf = ResNet18Classifier(width=4, max_epochs=1, random_state=0).fit(X[:64], y[:64])
    >>> idx, radius = coreset(clf, X[64:], n_instances=10, X_labeled=X[:64])
    >>> idx.shape, bool(radius[0] >= radius[-1])
    ((10,), True)
    """
    owner = "coreset"
    rng = as_generator(random_state)
    X_pool = pool_rows(X_pool)
    n_instances = check_n_instances(n_instances, len(X_pool))
    est, X = final_estimator(learner, X_pool)
    Z = embed_features(owner, est, X, embedding)[0]
    Z_lab = labeled_features(owner, learner, X_labeled, embedding)
    return kcenter_greedy(Z, n_instances, labeled=Z_lab, random_state=rng)


@validates({"embedding": EMBEDDING, "n_neighbors": [COUNT], "max_clusters": [COUNT],
            "min_cluster_size": [COUNT], "random_state": [SEED]})
@fill_doc
def typiclust(
    learner: Learner,
    X_pool: ArrayLike,
    n_instances: int = 1,
    *,
    X_labeled: ArrayLike | None = None,
    embedding: str | Callable[[Any], ArrayLike] | None = None,
    n_neighbors: int = 20,
    max_clusters: int = 500,
    min_cluster_size: int = 5,
    random_state: RandomStateLike = None,
) -> QueryResult:
    """TypiClust: the most typical point of each of the largest uncovered clusters.

    For the cold start (few labels): the labelled and pool features are clustered by k-means
    into ``min(n_labeled + n_instances, max_clusters)`` clusters (scikit-learn's ``KMeans`` up to
    50 clusters, ``MiniBatchKMeans`` beyond, as in the authors' code); clusters with the fewest
    labelled points, largest first, each give their most typical unlabelled point, typicality
    being the inverse mean distance to the ``n_neighbors`` nearest neighbours in the cluster
    (:func:`skal.query.selection.typiclust_select`).

    Parameters
    ----------
    learner : learner, estimator or Pipeline
        Fitted or not: an unfitted model's features are the flattened input.
    {X_pool}
    {n_instances}
    X_labeled : array-like or None, default=None
        The labelled samples; None takes the learner's training data if any.
    embedding : None, "input" or callable, default=None
        Where the features come from (see :mod:`skal.query`); the paper uses a
        self-supervised encoder, which a callable can provide.
    n_neighbors : int, default=20
        Neighbours in the typicality estimate (the authors' value).
    max_clusters : int, default=500
        Upper bound on the number of k-means clusters (the authors' value).
    min_cluster_size : int, default=5
        Smaller clusters are skipped while larger ones are left.
    random_state : None, int, RandomState or Generator, default=None
        Seeds k-means; the same value gives the same batch.

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        In the order chosen.
    scores : ndarray of shape (n_instances,)
        Typicality of each pick within its cluster.

    Notes
    -----
    k-means ``O(n_init * iterations * n * K * d)``, then ``O(sum of m^2 d)`` over the visited
    clusters (block-wise, memory ``O(n d)`` for the features plus one block).

    References
    ----------
    Hacohen, Dekel, Weinshall. "Active Learning on a Budget: Opposite Strategies Suit High and
    Low Budgets." ICML 2022.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skal import typiclust
    >>> from skal.datasets import load_digits_images
    >>> X, _ = load_digits_images()
    >>> idx, typ = typiclust(LogisticRegression(), X, n_instances=10, random_state=0)  # cold start
    >>> len(set(idx.tolist()))
    10
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans

    owner = "typiclust"
    rng = as_generator(random_state)
    X_pool = pool_rows(X_pool)
    n_instances = check_n_instances(n_instances, len(X_pool))
    est, X = final_estimator(learner, X_pool)
    Z = embed_features(owner, est, X, embedding)[0]
    Z_lab = labeled_features(owner, learner, X_labeled, embedding)
    n_lab = 0 if Z_lab is None else len(Z_lab)
    if n_lab and Z_lab.shape[1] != Z.shape[1]:
        raise ValueError(
            f"The labelled features given to {owner} have {Z_lab.shape[1]} columns but the pool "
            f"features have {Z.shape[1]}: they must come from the same embedding."
        )
    features = Z if not n_lab else np.concatenate([Z_lab.astype(Z.dtype), Z])  # (n_lab + n, d)
    n_clusters = min(n_lab + n_instances, max_clusters, len(features))
    seed = draw_seed(rng)
    if n_clusters <= 50:
        km = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed)
    else:
        km = MiniBatchKMeans(n_clusters=n_clusters, batch_size=5000, n_init=3, random_state=seed)
    labels = km.fit_predict(features)
    labeled = np.zeros(len(features), dtype=bool)
    labeled[:n_lab] = True
    idx, typ = typiclust_select(features, labels.astype(np.int64), n_instances, labeled=labeled,
                                n_neighbors=n_neighbors, min_cluster_size=min_cluster_size)
    return idx - n_lab, typ
