"""Time-aware queries: information per expected second of annotation.

A label costs an annotator time, and not the same time for every image: some classes are slow to
tell apart, ambiguous images take longer. :class:`CostAwareStrategy` wraps a pointwise strategy
(one score per pool sample: ``uncertainty_sampling``, ``margin_sampling``, ``entropy_sampling``,
``bald``) and ranks the pool by ``score / expected_seconds ** cost_power`` instead of ``score``,
with the expected seconds from a *time model* fitted on recorded answer times:

* :class:`ClassTimeModel`: the mean time per class, shrunk towards a prior (a class with few
  recorded answers gets nearly the prior); a pool sample's expected time is
  ``sum_k p_k t_k`` with ``p`` the model's predicted class probabilities (its true class is not
  known before it is labelled);
* :class:`RegressorTimeModel`: a scikit-learn regressor of ``log(seconds)`` on the sample's
  features (its pixels, or the model's probabilities and entropy), for times that depend on the
  image itself.

Both take ``fit(X, y, seconds, proba=None)`` and ``predict(X, proba)``.
"""

from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy.special import xlogy
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import Ridge
from sklearn.utils.validation import check_is_fitted

from .utils.typing import ArrayLike, Learner, QueryResult, RandomStateLike

__all__ = ["ClassTimeModel", "CostAwareStrategy", "RegressorTimeModel"]

# the strategies whose picks are chosen together (their scores are no per-sample utility)
_BATCH_MODULES = ("skal.query._batch", "skal.query._low_budget")


def _check_seconds(seconds, n, name="seconds"):
    seconds = np.asarray(seconds, dtype=np.float64)
    if seconds.ndim != 1 or len(seconds) != n:
        raise ValueError(f"{name} must be 1-d with one time per sample ({n}), got shape "
                         f"{seconds.shape}.")
    if not (np.isfinite(seconds).all() and (seconds >= 0).all()):
        raise ValueError(f"{name} must hold finite times >= 0 (seconds).")
    return seconds


def _check_proba(proba, n_rows, n_classes=None):
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or len(proba) != n_rows:
        raise ValueError(
            f"proba must have shape (n_samples, n_classes) with n_samples = {n_rows}, got shape "
            f"{proba.shape}."
        )
    if n_classes is not None and proba.shape[1] != n_classes:
        raise ValueError(
            f"proba must have one column per class ({n_classes}), got {proba.shape[1]}."
        )
    if not (np.isfinite(proba).all() and (proba >= 0).all()):
        raise ValueError("proba must hold finite probabilities >= 0.")
    return proba


class ClassTimeModel(BaseEstimator):
    """Expected annotation time from the mean time of each class, with a prior.

    ``t_k = (sum of class k's times + prior_strength * prior) / (n_k + prior_strength)``: the
    posterior mean of a normal mean with a normal prior worth ``prior_strength`` answers. The
    expected time of a pool sample is ``sum_k p_k t_k``.

    Parameters
    ----------
    classes : array-like of shape (n_classes,)
        The classes, in the order of the columns of the probabilities :meth:`predict` gets (an
        estimator's ``classes_``).
    prior_seconds : float > 0 or None, default=None
        The prior time of a class; None: the mean of all recorded times.
    prior_strength : float >= 0, default=5.0
        How many answers the prior is worth (0: the plain per-class mean; a class without
        answers then gets the prior).

    Attributes
    ----------
    seconds_ : ndarray of shape (n_classes,)
        ``t_k`` of each class.
    counts_ : ndarray of shape (n_classes,)
        Recorded answers per class.

    See Also
    --------
    RegressorTimeModel : Times that depend on the image itself.
    CostAwareStrategy : Uses a time model to rank the pool.

    Examples
    --------
    >>> import numpy as np
    >>> from skal.cost import ClassTimeModel
    >>> tm = ClassTimeModel(classes=["cat", "dog"], prior_strength=0).fit(
    ...     None, ["cat", "cat", "dog"], [2.0, 4.0, 10.0])
    >>> tm.seconds_.tolist(), tm.predict(None, np.array([[0.5, 0.5]])).tolist()
    ([3.0, 10.0], [6.5])
    """

    def __init__(self, classes: ArrayLike, prior_seconds: float | None = None,
                 prior_strength: float = 5.0) -> None:
        self.classes = classes
        self.prior_seconds = prior_seconds
        self.prior_strength = prior_strength

    def _check(self):
        classes = np.asarray(self.classes)
        if classes.ndim != 1 or len(classes) < 1 or len(np.unique(classes)) != len(classes):
            raise ValueError(
                f"classes must be a 1-d array of distinct labels, got {self.classes!r}.")
        p = self.prior_seconds
        if p is not None and (isinstance(p, bool) or not isinstance(p, Real)
                              or not np.isfinite(p) or p <= 0):
            raise ValueError(f"prior_seconds must be None or a float in the range (0.0, inf), "
                             f"got {p!r}.")
        s = self.prior_strength
        if isinstance(s, bool) or not isinstance(s, Real) or not np.isfinite(s) or s < 0:
            raise ValueError(f"prior_strength must be a float in the range [0.0, inf), got {s!r}.")
        return classes

    def fit(self, X: Any, y: ArrayLike, seconds: ArrayLike,
            proba: ArrayLike | None = None) -> "ClassTimeModel":
        """Fit the per-class times on recorded answers.

        Parameters
        ----------
        X : any
            Not used (kept for the common signature of time models).
        y : array-like of shape (n,)
            The label of each answer (labels of ``classes``).
        seconds : array-like of shape (n,)
            The time of each answer, in seconds.
        proba : any, default=None
            Not used.

        Returns
        -------
        self : ClassTimeModel
            Fitted.
        """
        classes = self._check()
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-d, got shape {y.shape}.")
        seconds = _check_seconds(seconds, len(y))
        unknown = ~np.isin(y, classes)
        if unknown.any():
            raise ValueError(f"y holds labels that are not in classes: "
                             f"{sorted(set(y[unknown].tolist()))[:5]}.")
        prior = self.prior_seconds
        if prior is None:
            if not len(seconds):
                raise ValueError("ClassTimeModel needs recorded times or prior_seconds; got "
                                 "neither.")
            prior = float(seconds.mean())
        counts = np.array([(y == c).sum() for c in classes], dtype=np.float64)
        sums = np.array([seconds[y == c].sum() for c in classes])
        weight = float(self.prior_strength)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (sums + weight * prior) / (counts + weight)
        self.seconds_ = np.where(counts + weight > 0, means, prior)
        self.counts_ = counts.astype(np.int64)
        return self

    def predict(self, X: Any, proba: ArrayLike) -> np.ndarray:
        """Expected seconds of each sample: ``proba @ seconds_``.

        Parameters
        ----------
        X : any
            Not used.
        proba : array-like of shape (n, n_classes)
            The model's class probabilities of the samples.

        Returns
        -------
        seconds : ndarray of shape (n,)
            Expected annotation time of each sample.
        """
        check_is_fitted(self, "seconds_")
        proba = np.asarray(proba)
        proba = _check_proba(proba, len(proba), len(self.seconds_))
        return proba @ self.seconds_ / proba.sum(axis=1)


def _proba_features(X, proba):
    entropy = -xlogy(proba, proba).sum(axis=1, keepdims=True)
    return np.hstack([np.sort(proba, axis=1)[:, ::-1], entropy])


def _pixel_features(X, proba):
    X = np.asarray(X, dtype=np.float64)
    return X.reshape(len(X), -1)


_FEATURES = {"proba": _proba_features, "pixels": _pixel_features}


class RegressorTimeModel(BaseEstimator):
    """Expected annotation time from a regressor of ``log(seconds)`` on the samples' features.

    Fitted on the recorded answers (their features and times), it predicts the time of any
    sample from its features alone; regressing the log keeps the predicted times positive and
    the errors relative.

    Parameters
    ----------
    regressor : scikit-learn regressor or None, default=None
        Fitted (a clone) on ``(features, log(seconds + 0.1))``; None: ``Ridge(alpha=1.0)``.
    features : {"proba", "pixels"} or callable, default="proba"
        ``"proba"``: the model's class probabilities sorted in decreasing order, and their
        entropy (times that grow with the model's doubt); ``"pixels"``: the flattened sample; a
        callable ``features(X, proba) -> (n, d) array``.

    Attributes
    ----------
    regressor_ : regressor
        The fitted clone.

    See Also
    --------
    ClassTimeModel : Times that depend on the class only.
    CostAwareStrategy : Uses a time model to rank the pool.

    Examples
    --------
    >>> import numpy as np
    >>> from skal.cost import RegressorTimeModel
    >>> proba = np.array([[0.9, 0.1], [0.5, 0.5], [0.8, 0.2], [0.6, 0.4]])
    >>> tm = RegressorTimeModel().fit(None, None, [2.0, 9.0, 3.0, 7.0], proba=proba)
    >>> t = tm.predict(None, proba)
    >>> bool(t[1] > t[0])  # the doubtful sample is expected to be slower
    True
    """

    def __init__(self, regressor: Any = None, features: str | Callable = "proba") -> None:
        self.regressor = regressor
        self.features = features

    def _features(self, X, proba):
        f = self.features
        if isinstance(f, str):
            if f not in _FEATURES:
                raise ValueError(f"features must be 'proba', 'pixels' or a callable, got {f!r}.")
            f = _FEATURES[f]
        elif not callable(f):
            raise ValueError(f"features must be 'proba', 'pixels' or a callable, got {f!r}.")
        if self.features == "proba":
            if proba is None:
                raise ValueError("features='proba' needs proba= (the model's probabilities).")
            proba = _check_proba(proba, len(np.asarray(proba)))
        Z = np.asarray(f(X, proba), dtype=np.float64)
        if Z.ndim != 2:
            raise ValueError(f"The features must be a 2-d array, got shape {Z.shape}.")
        return Z

    def fit(self, X: Any, y: Any, seconds: ArrayLike,
            proba: ArrayLike | None = None) -> "RegressorTimeModel":
        """Fit the regressor on recorded answers.

        Parameters
        ----------
        X : array-like or None
            The answered samples (needed for ``features="pixels"``).
        y : any
            Not used (kept for the common signature of time models).
        seconds : array-like of shape (n,)
            The time of each answer, in seconds.
        proba : array-like of shape (n, n_classes) or None, default=None
            The model's probabilities of the answered samples (needed for ``features="proba"``).

        Returns
        -------
        self : RegressorTimeModel
            Fitted.
        """
        Z = self._features(X, proba)
        seconds = _check_seconds(seconds, len(Z))
        if len(Z) < 2:
            raise ValueError(f"RegressorTimeModel needs at least 2 recorded times, got {len(Z)}.")
        reg = Ridge(alpha=1.0) if self.regressor is None else clone(self.regressor)
        self.regressor_ = reg.fit(Z, np.log(seconds + 0.1))
        return self

    def predict(self, X: Any, proba: ArrayLike | None = None) -> np.ndarray:
        """Expected seconds of each sample.

        Parameters
        ----------
        X : array-like or None
            The samples (for ``features="pixels"``).
        proba : array-like of shape (n, n_classes) or None, default=None
            The model's probabilities of the samples (for ``features="proba"``).

        Returns
        -------
        seconds : ndarray of shape (n,)
            Expected annotation time of each sample (> 0).
        """
        check_is_fitted(self, "regressor_")
        log_t = np.asarray(self.regressor_.predict(self._features(X, proba)), dtype=np.float64)
        return np.maximum(np.exp(log_t) - 0.1, 1e-3)


class CostAwareStrategy:
    """A pointwise strategy ranked by information per expected second of annotation.

    Calls ``strategy`` once for a score of every pool sample (``n_instances = len(X_pool)``),
    predicts each sample's annotation time with ``time_model`` and picks the ``n_instances``
    highest ``(score + offset) / expected_seconds ** cost_power``. ``cost_power=0`` is the
    cost-blind strategy; 1 is information per second.

    Parameters
    ----------
    strategy : callable
        A skal strategy with one score per sample, higher = better (``uncertainty_sampling``,
        ``entropy_sampling``, ``bald``, ``margin_sampling`` with ``offset=1``); batch strategies
        (``badge``, ``batch_bald``, ``typiclust``, ...) have no pointwise scores and are refused.
    time_model : ClassTimeModel, RegressorTimeModel or object
        Fitted; ``predict(X_pool, proba) -> seconds``.
    offset : float, default=0.0
        Added to the scores, which must then be >= 0 (``margin_sampling``'s are in [-1, 0]).
    cost_power : float >= 0, default=1.0
        The exponent of the expected time.
    **strategy_kwargs
        Passed to ``strategy`` (e.g. ``n_samples=`` for ``bald``, ``calibrate=``).

    See Also
    --------
    ClassTimeModel : Per-class mean times with a prior.
    RegressorTimeModel : A learned regressor of the time.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skal import uncertainty_sampling
    >>> from skal.cost import ClassTimeModel, CostAwareStrategy
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)); y = (X[:, 0] > 0).astype(int)
    >>> clf = LogisticRegression().fit(X[:20], y[:20])
    >>> times = ClassTimeModel(classes=[0, 1]).fit(None, y[:20], np.where(y[:20] == 1, 30.0, 3.0))
    >>> query = CostAwareStrategy(uncertainty_sampling, times)
    >>> idx, per_second = query(clf, X[20:], n_instances=5)
    >>> idx.shape, bool((per_second[:-1] >= per_second[1:]).all())
    ((5,), True)
    """

    def __init__(self, strategy: Callable, time_model: Any, *, offset: float = 0.0,
                 cost_power: float = 1.0, **strategy_kwargs: Any) -> None:
        if not callable(strategy):
            raise TypeError(f"strategy must be a callable query strategy, got "
                            f"{type(strategy).__name__}.")
        if getattr(strategy, "__module__", None) in _BATCH_MODULES:
            raise ValueError(
                f"CostAwareStrategy needs a pointwise strategy (one utility per sample), got the "
                f"batch strategy {strategy.__name__!r}, whose scores depend on the batch: use "
                "uncertainty_sampling, margin_sampling, entropy_sampling or bald."
            )
        if not callable(getattr(time_model, "predict", None)):
            raise TypeError(f"time_model must have a predict(X, proba) method, got "
                            f"{type(time_model).__name__}.")
        for name, value, low in (("offset", offset, None), ("cost_power", cost_power, 0.0)):
            if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value) \
                    or (low is not None and value < low):
                interval = "[0.0, inf)" if low is not None else "(-inf, inf)"
                raise ValueError(f"{name} must be a float in the range {interval}, got {value!r}.")
        self.strategy = strategy
        self.time_model = time_model
        self.offset = float(offset)
        self.cost_power = float(cost_power)
        self.strategy_kwargs = strategy_kwargs

    def __call__(self, learner: Learner, X_pool: ArrayLike, n_instances: int = 1, *,
                 random_state: RandomStateLike = None) -> QueryResult:
        """Pick ``n_instances`` pool samples by score per expected second.

        Parameters
        ----------
        learner : learner, estimator or Pipeline
            Fitted, with ``predict_proba``.
        X_pool : array-like of shape (n_pool, ...)
            The unlabelled samples.
        n_instances : int, default=1
            How many to pick, from 1 to ``n_pool``.
        random_state : None, int, RandomState or Generator, default=None
            Passed to the strategy and used for tie-breaking.

        Returns
        -------
        indices : ndarray of int64, shape (n_instances,)
            Positions in ``X_pool``, best first.
        scores : ndarray of shape (n_instances,)
            ``(score + offset) / expected_seconds ** cost_power`` (higher = better).
        """
        from .query import select_top

        X = np.asarray(X_pool) if isinstance(X_pool, (list, tuple)) else X_pool
        n_pool = len(X)
        if (isinstance(n_instances, bool) or not isinstance(n_instances, Integral)
                or not 1 <= n_instances <= n_pool):
            raise ValueError(f"n_instances must be an int in the range [1, {n_pool}], got "
                             f"{n_instances!r}.")
        idx, scores = self.strategy(learner, X, n_instances=n_pool,
                                    random_state=random_state, **self.strategy_kwargs)
        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) != n_pool or len(np.unique(idx)) != n_pool:
            raise ValueError(
                f"CostAwareStrategy needs a score for every pool sample, but "
                f"{getattr(self.strategy, '__name__', self.strategy)!r} returned "
                f"{len(np.unique(idx))} "
                f"distinct indices for n_instances={n_pool}: use a pointwise strategy "
                "(uncertainty_sampling, margin_sampling, entropy_sampling, bald)."
            )
        utility = np.empty(n_pool)
        utility[idx] = np.asarray(scores, dtype=np.float64) + self.offset
        if not np.isfinite(utility).all() or (utility < 0).any():
            raise ValueError(
                f"The scores plus offset ({self.offset:g}) must be finite and >= 0 (information "
                f"per second), got a minimum of {np.nanmin(utility):g}; margin_sampling needs "
                "offset=1."
            )
        proba = np.asarray(learner.predict_proba(X), dtype=np.float64)
        seconds = np.asarray(self.time_model.predict(X, proba), dtype=np.float64)
        if seconds.shape != (n_pool,) or not (np.isfinite(seconds).all() and (seconds > 0).all()):
            raise ValueError(
                f"time_model.predict must return {n_pool} finite times > 0, got shape "
                f"{seconds.shape}."
            )
        ratio = utility / seconds ** self.cost_power
        best = select_top(ratio, n_instances, random_state)
        return best, ratio[best]
