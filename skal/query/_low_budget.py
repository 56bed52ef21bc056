"""Low-budget query strategies on learned embeddings: ProbCover, EPIG (and TypiClust).

The same modAL convention as :mod:`skal.query` and :mod:`skal.query`::

    strategy(learner_or_estimator, X_pool, n_instances=1, *, random_state=None, **kwargs)
        -> (indices, scores)

- :func:`probcover`: greedy coverage of the labelled and pool features by delta-balls, the
  radius chosen by purity (Yehuda et al. 2022), with a smaller radius, then typical points,
  when the balls run out (:func:`skal.query.selection.probcover_select`).
- :func:`epig`: expected predictive information gain about a target set, from MC-dropout
  samples of the pool and the targets under the same weight draws (Bickford Smith et al.
  2023), top-k or a stochastic batch (:func:`skal.query.selection.epig_scores`).
- :func:`skal.typiclust` (in :mod:`skal.query`, importable from here too): TypiClust's
  typical points of k-means clusters.

Features on an encoder. :func:`probcover` and :func:`skal.typiclust` take ``embedding=``:
``None`` uses the estimator's ``embed(X)`` when it has one and is fitted (the input of the
last Linear layer) and the flattened input otherwise; ``"input"`` always the flattened input;
a callable ``embedding(X) -> (n, d)`` any features of your own, such as a fitted
self-supervised encoder's ``transform`` (the papers use SimCLR features, L2-normalised)::

    from sklearn.decomposition import PCA
    pca = PCA(32).fit(X_all.reshape(len(X_all), -1))
    encode = lambda X: pca.transform(X.reshape(len(X), -1))  # (n, C, H, W) -> (n, 32)
    idx, scores = skal.typiclust(clf, X_pool, 10, embedding=encode, random_state=0)
    idx, gains = skal.probcover(clf, X_pool, 10, embedding=encode, n_classes=10)

The callable receives the pool (and the labelled set) as the final estimator would: for a
``Pipeline``, after the pipeline's transformers; it must return one row per sample. The
labelled set comes from ``X_labeled=`` or the learner's training data, as in
:mod:`skal.query`.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.utils import _safe_indexing

from ..calibration import TemperatureScaling, tempering
from ..data import pool_rows
from ..utils.params import COUNT, SEED, Choice, Int, validates
from ..utils.seeds import draw_seed
from ..utils.typing import ArrayLike, Learner, QueryResult, RandomStateLike
from ..utils.validation import as_generator, check_n_instances
from ._docstrings import fill_doc
from ._scores import select_top
from ._strategy import (
    EMBEDDING,
    check_mc_dropout,
    embed_features,
    final_estimator,
    labeled_features,
)
from .selection import (
    PURITY_THRESHOLD,
    RADIUS,
    SHRINK,
    TEMPERATURE,
    epig_scores,
    probcover_select,
    stochastic_select,
)

__all__ = ["probcover", "epig"]

_EPIG_MODES = ("top", "power", "softmax", "softrank")
_EPIG_MODE = Choice(*_EPIG_MODES, description=f"one of {_EPIG_MODES}")
_N_CLASSES = Int(2)


# ---------------------------------------------------------------------------- ProbCover
def _n_classes(owner, est, n_classes):
    if n_classes is not None:
        return n_classes
    classes = getattr(est, "classes_", None)
    if classes is not None and len(classes) >= 2:
        return len(classes)
    raise ValueError(
        f"{owner} chooses its radius by the purity of k-means clusters with k = the number of "
        f"classes, but {type(est).__name__} has no classes_ (not fitted?): pass n_classes= "
        "(an int in the range [2, inf)), or the radius itself with radius=."
    )


@validates({"embedding": EMBEDDING, "radius": [None, RADIUS],
            "purity_threshold": [PURITY_THRESHOLD], "n_classes": [None, _N_CLASSES],
            "max_neighbors": [COUNT], "shrink": [SHRINK], "n_neighbors": [COUNT],
            "random_state": [SEED]})
@fill_doc
def probcover(
    learner: Learner,
    X_pool: ArrayLike,
    n_instances: int = 1,
    *,
    X_labeled: ArrayLike | None = None,
    embedding: str | Callable[[Any], ArrayLike] | None = None,
    radius: float | None = None,
    purity_threshold: float = 0.95,
    n_classes: int | None = None,
    max_neighbors: int = 500,
    shrink: float = 0.5,
    n_neighbors: int = 20,
    random_state: RandomStateLike = None,
) -> QueryResult:
    """ProbCover: the pool points whose delta-balls cover the most uncovered points.

    For the lowest budgets. On the features of the labelled and pool points together, the
    labelled points' balls ``{y : ||x - y|| < delta}`` are covered first, then each pick is the
    pool point whose ball holds the most uncovered points. The radius is the largest delta at
    which at least ``purity_threshold`` of the balls are pure, i.e. hold only points of their
    centre's k-means cluster, with k = the number of classes (Yehuda et al.); it is computed
    exactly (:func:`skal.query.selection.purity_radius`), not picked from a grid.

    When the balls stop telling the candidates apart before the budget is spent (every pick
    would cover only itself: the pool is covered, or only isolated points are left; Bae et
    al. show the purity radius failing this way as the budget grows), the radius is
    multiplied by ``shrink`` and the covering goes on from the labelled and chosen points'
    smaller balls; if even the smaller balls group no uncovered points, the rest are the most
    typical points (TypiClust's typicality), uncovered ones first. A smaller radius keeps the
    coverage objective that ProbCover is about and is what the purity rule would choose for a
    larger budget; typicality is the low-budget rule for when coverage has nothing left to say.
    See :func:`skal.query.selection.probcover_select`.

    Parameters
    ----------
    learner : learner, estimator or Pipeline
        Fitted or not (an unfitted model's features are the flattened input).
    {X_pool}
    {n_instances}
    X_labeled : array-like or None, default=None
        The labelled samples; None takes the learner's training data if any.
    embedding : None, "input" or callable, default=None
        Where the features come from (see :mod:`skal.query`): a callable such as a fitted
        encoder's ``transform``, returning ``(n, d)``.
    radius : float > 0 or None, default=None
        The ball radius delta. None: chosen by purity (needs ``n_classes`` or an estimator
        with ``classes_``).
    purity_threshold : float in (0, 1], default=0.95
        The least fraction of pure balls, alpha (0.95 is the paper's value).
    n_classes : int >= 2 or None, default=None
        The k of the k-means clustering the purity is measured against; None takes
        ``len(classes_)`` of the (final) estimator.
    max_neighbors : int, default=500
        Cap on the edges per point of the ball graph: a ball with more points keeps its
        ``max_neighbors`` nearest, and gains that tie at the cap go to the larger true ball.
        Bounds the graph's memory (see Notes).
    shrink : float in (0, 1), default=0.5
        Factor applied to the radius each time the balls run out.
    n_neighbors : int, default=20
        The k of the typicality used when coverage cannot choose.
    random_state : None, int, RandomState or Generator, default=None
        Seeds k-means (the only random step); the same value gives the same batch.

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        Positions in ``X_pool``, in the order chosen.
    scores : ndarray of int64, shape (n_instances,)
        Points each pick newly covered, at the radius in use (>= 2 for a coverage pick, 0 or 1
        for a pick made by typicality).

    Notes
    -----
    Memory: the features, then the ball graph of at most ``(n_labeled + n_pool) *
    max_neighbors`` edges of about 14 bytes each (7 kB per point at the default cap), plus one
    block of the radius queries (``2**22`` neighbours) and ``O(n)``; never an ``n x n``
    matrix. Time: k-means, one nearest-neighbour query per cluster for the radius, the radius
    queries, then ``O(n)`` per pick.

    References
    ----------
    Yehuda, Dekel, Hacohen, Weinshall. "Active Learning Through a Covering Lens." NeurIPS 2022.
    Bae, Zhou, Sutherland. "Generalized Coverage for More Robust Low-Budget Active Learning."
    ECCV 2024.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skal import probcover
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> clf = LogisticRegression(max_iter=200).fit(X[:50].reshape(50, -1), y[:50])  # (50, 64)
    >>> idx, gains = probcover(clf, X[50:450], n_instances=10, random_state=0)
    >>> len(set(idx.tolist())), bool(gains[0] >= gains[-1])
    (10, True)
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans

    owner = "probcover"
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
    labels = None
    if radius is None:
        k = _n_classes(owner, est, n_classes)
        if len(features) <= k:
            raise ValueError(
                f"{owner} clusters the labelled and pool points into n_classes = {k} clusters "
                f"to choose its radius, which needs more than {k} points; got {len(features)}. "
                "Pass a smaller n_classes, a radius=, or a larger pool."
            )
        seed = draw_seed(rng)
        if k <= 50:
            km = KMeans(n_clusters=k, n_init=10, random_state=seed)
        else:
            km = MiniBatchKMeans(n_clusters=k, batch_size=5000, n_init=3, random_state=seed)
        labels = km.fit_predict(features).astype(np.int64)
    labeled = np.zeros(len(features), dtype=bool)
    labeled[:n_lab] = True
    idx, gains, _ = probcover_select(
        features, n_instances, labeled=labeled, radius=radius, cluster_labels=labels,
        purity_threshold=purity_threshold, max_neighbors=max_neighbors, shrink=shrink,
        n_neighbors=n_neighbors,
    )
    return idx - n_lab, gains


# ---------------------------------------------------------------------------- EPIG
def _subset(rng, n, size):
    """Sorted positions of ``size`` of ``n`` rows drawn without replacement (all if size >= n)."""
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size, replace=False))


def _concat_rows(A, B):
    if hasattr(A, "iloc") and hasattr(B, "iloc"):  # two DataFrames: keep the column names
        import pandas as pd

        return pd.concat([A, B], ignore_index=True)
    return np.concatenate([np.asarray(A), np.asarray(B)])  # (n_a + n_b, ...)


@validates({"n_target": [None, COUNT], "n_samples": [COUNT], "subsample": [None, COUNT],
            "mode": [_EPIG_MODE], "temperature": [TEMPERATURE], "random_state": [SEED]})
@fill_doc
def epig(
    learner: Learner,
    X_pool: ArrayLike,
    n_instances: int = 1,
    *,
    X_target: ArrayLike | None = None,
    n_target: int | None = None,
    n_samples: int = 20,
    subsample: int | None = None,
    mode: str = "top",
    temperature: float = 1.0,
    random_state: RandomStateLike = None,
    calibrate: float | TemperatureScaling | None = None,
) -> QueryResult:
    """EPIG: the pool points whose labels tell the most about the predictions on a target set.

    BALD scores the information a label gives about the weights, much of which may concern
    inputs nobody will ask about; EPIG scores the information about the labels of target
    inputs ``x*`` drawn from where the model will be used:
    ``EPIG(x) = E_x* I[y; y* | x, x*] = E_x* KL(p(y, y* | x, x*) || p(y | x) p(y* | x*))``,
    estimated from T MC-dropout passes (:func:`skal.query.selection.epig_scores`). The pool and the
    targets are sampled in one ``sample_proba`` call, so pass t is one weight draw for both, as
    the joint predictive needs (see docs/mc_dropout.md).

    Parameters
    ----------
    {learner_mc}
    {X_pool}
    {n_instances}
    X_target : array-like of shape (n_target_set, ...) or None, default=None
        Samples of the target input distribution, of the pool's per-sample shape. None: the
        pool itself (the authors' setting without a separate target set).
    n_target : int or None, default=None
        Use a random subset of this many target samples (drawn from the pool when
        ``X_target`` is None); None uses them all. The cost grows with it (see Notes).
    {n_samples}
    {subsample}
    mode : {"top", "power", "softmax", "softrank"}, default="top"
        ``"top"``: the ``n_instances`` highest scores (ties by position); the others draw the
        batch from :func:`skal.query.selection.acquisition_distribution` of the scores, as
        :func:`skal.stochastic_batch` does (power on the scores clipped at 0).
    temperature : float > 0, default=1.0
        Of the stochastic modes.
    random_state : None, int, RandomState or Generator, default=None
        Seeds the pool subset, the target subset, the dropout masks and the stochastic draw;
        the same value gives the same batch.
    calibrate : None, float or fitted TemperatureScaling, default=None
        Temper each MC pass's probabilities, of the pool and of the targets, before scoring
        (:mod:`skal.calibration`): a temperature ``T > 0``, or a
        :class:`~skal.calibration.TemperatureScaling` fitted on held-out labels; None scores
        them as they are. Not the same as ``temperature``, which shapes the stochastic draw.

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        Positions in ``X_pool``, best (or first drawn) first.
    scores : ndarray of shape (n_instances,)
        EPIG of the chosen samples (nats).

    Notes
    -----
    One ``sample_proba`` call on the (sub-sampled) pool and targets: ``T * (n + m)`` rows of
    C probabilities. Then time ``O(n m T C^2)`` for n scored pool samples and m targets, and
    memory the samples plus a ``2**22``-element block: the ``(n, m, C, C)`` joint predictive
    is never built whole.

    References
    ----------
    Bickford Smith, Kirsch, Farquhar, Gal, Foster, Rainforth. "Prediction-Oriented Bayesian
    Active Learning." AISTATS 2023. Kirsch, Farquhar, Atighehchian, Jesson, Branchaud-Charron,
    Gal. "Stochastic Batch Acquisition: A Simple Baseline for Deep Active Learning." TMLR 2023.

    Examples
    --------
    >>> from skal import ResNet18Classifier, epig
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> clf = ResNet18Classifier(width=4, max_epochs=1, random_state=0).fit(X[:64], y[:64])
    >>> idx, scores = epig(clf, X[64:164], n_instances=4, n_samples=8, random_state=0)
    >>> idx.shape, bool(scores[0] >= scores[-1])
    ((4,), True)
    """
    owner = "epig"
    temper = tempering(calibrate, f"The 'calibrate' parameter of {owner}")
    rng = as_generator(random_state)
    X_pool = pool_rows(X_pool)
    n_pool = len(X_pool)
    n_instances = check_n_instances(n_instances, n_pool)
    if X_target is not None:
        X_target = pool_rows(X_target)
        pool_shape, target_shape = np.shape(X_pool)[1:], np.shape(X_target)[1:]
        if target_shape != pool_shape:
            raise ValueError(
                f"The 'X_target' parameter of {owner} must hold samples of the pool's shape "
                f"{pool_shape}; got samples of shape {target_shape}."
            )
        if len(X_target) == 0:
            raise ValueError(f"The 'X_target' parameter of {owner} is empty: it needs samples.")
    candidates = np.arange(n_pool)
    if subsample is not None and subsample < n_pool:
        candidates = np.sort(rng.choice(n_pool, max(subsample, n_instances), replace=False))
    if X_target is None:
        targets = _subset(rng, n_pool, n_target)  # positions in the pool
        rows = np.union1d(candidates, targets)  # each pool row sampled once
        X_rows = _safe_indexing(X_pool, rows)
        pool_pos, target_pos = np.searchsorted(rows, candidates), np.searchsorted(rows, targets)
    else:
        targets = _subset(rng, len(X_target), n_target)
        X_rows = _concat_rows(_safe_indexing(X_pool, candidates),
                              _safe_indexing(X_target, targets))  # (n + m, ...)
        pool_pos = np.arange(len(candidates))
        target_pos = len(candidates) + np.arange(len(targets))
    est, X = final_estimator(learner, X_rows)
    check_mc_dropout(est, owner, owner, "expected predictive information gain", "probcover")
    samples = temper(np.asarray(est.sample_proba(
        X, n_samples=n_samples, random_state=draw_seed(rng) if random_state is not None else None,
    )))  # (T, n + m, C): one weight draw per pass for the pool and the targets
    scores = epig_scores(samples[:, pool_pos], samples[:, target_pos])  # (n,)
    if mode == "top":
        idx = select_top(scores, n_instances)
    else:
        utility = np.maximum(scores, 0.0) if mode == "power" else scores  # EPIG >= 0 (rounding)
        idx = stochastic_select(utility, n_instances, mode=mode, temperature=temperature,
                                random_state=rng)
    return candidates[idx], scores[idx]
