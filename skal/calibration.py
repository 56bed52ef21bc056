"""Calibrated confidences: temperature scaling and the expected calibration error.

Temperature scaling (Guo et al. 2017) divides a classifier's logits by one scalar ``T > 0``
fitted on held-out labels by minimising the negative log-likelihood; it changes no prediction
(the argmax stays) and only the confidences. skal's strategies see probabilities, so the
functions here work on probabilities too, by taking their logs: ``softmax(log(p) / T)`` is the
same as tempering the logits, since ``log softmax(z) = z - logsumexp(z)`` differs from ``z`` by a
per-row constant that the softmax drops. Logits are accepted as well (``kind="logits"``).

* :func:`fit_temperature` and :func:`apply_temperature`: the two steps as functions;
* :class:`TemperatureScaling`: the same as a scikit-learn style calibrator
  (``fit(proba, y)``, ``predict_proba(proba)``, learned ``temperature_``), which the strategies'
  ``calibrate=`` option accepts;
* :func:`expected_calibration_error`: ECE with equal-width confidence bins.

References
----------
Guo, Pleiss, Sun, Weinberger. "On Calibration of Modern Neural Networks." ICML 2017.
Naeini, Cooper, Hauskrecht. "Obtaining Well Calibrated Probabilities Using Bayesian Binning."
AAAI 2015 (the ECE).
"""

from collections.abc import Callable
from numbers import Real

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .utils.params import Choice, check_params
from .utils.typing import ArrayLike

__all__ = [
    "TemperatureScaling",
    "apply_temperature",
    "as_temperature",
    "expected_calibration_error",
    "fit_temperature",
    "tempering",
]

_KINDS = ("proba", "logits")
#: The search interval of the temperature (a temperature outside it is a broken model, not a
#: calibration): ``T`` in [0.01, 100].
DEFAULT_BOUNDS = (0.01, 100.0)


def _log_scores(scores, kind, name="scores"):
    """Per-row log-probabilities (up to a per-row constant) of ``scores``, float64."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}.")
    try:
        scores = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be an array of numbers, got {type(scores).__name__}.") from None
    if scores.ndim < 2 or scores.shape[-1] < 2:
        raise ValueError(
            f"{name} must have shape (..., n_classes) with n_classes >= 2, got shape "
            f"{scores.shape}."
        )
    if kind == "logits":
        if not np.isfinite(scores).all():
            raise ValueError(f"{name} (logits) must be finite.")
        return scores
    if not np.isfinite(scores).all() or (scores < 0).any():
        raise ValueError(f"{name} (probabilities) must be finite and >= 0.")
    if not (scores.sum(axis=-1) > 0).all():
        raise ValueError(f"{name} (probabilities) has a row that sums to 0.")
    with np.errstate(divide="ignore"):
        return np.log(scores)  # log 0 = -inf: that class keeps probability 0 at every T


def _check_temperature(temperature, name="temperature"):
    if isinstance(temperature, bool) or not isinstance(temperature, Real) or not (
        np.isfinite(temperature) and temperature > 0
    ):
        raise ValueError(f"{name} must be a float in the range (0.0, inf), got {temperature!r}.")
    return float(temperature)


def apply_temperature(scores: ArrayLike, temperature: float, *, kind: str = "proba") -> np.ndarray:
    """Calibrated probabilities ``softmax(log(scores) / T)`` (``softmax(scores / T)`` for logits).

    Parameters
    ----------
    scores : array-like of shape (..., n_classes)
        Probabilities (``kind="proba"``; each row sums to 1 up to rounding) or logits. Any leading
        axes, e.g. ``(T, n, n_classes)`` MC-dropout passes, each tempered on its own.
    temperature : float > 0
        ``T``; ``T > 1`` softens (less confident), ``T < 1`` sharpens, ``T = 1`` leaves
        probabilities as they are (renormalised).
    kind : {"proba", "logits"}, default="proba"
        What ``scores`` holds.

    Returns
    -------
    proba : ndarray of float64, same shape as ``scores``
        Rows sum to 1; the argmax of every row is unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from skal.calibration import apply_temperature
    >>> apply_temperature(np.array([[0.8, 0.2]]), 2.0).round(3)  # sqrt(0.8) : sqrt(0.2)
    array([[0.667, 0.333]])
    """
    temperature = _check_temperature(temperature)
    log_p = _log_scores(scores, kind)
    return np.exp(log_softmax(log_p / temperature, axis=-1))


def _labels_as_columns(y, n_classes, classes, name="y"):
    """``y`` as column positions in ``range(n_classes)`` (through ``classes`` when given)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {y.shape}.")
    if classes is not None:
        classes = np.asarray(classes)
        if len(classes) != n_classes:
            raise ValueError(
                f"classes must have one entry per column ({n_classes}), got {len(classes)}."
            )
        order = np.argsort(classes, kind="stable")
        pos = np.searchsorted(classes[order], y)
        pos = np.clip(pos, 0, n_classes - 1)
        unknown = classes[order][pos] != y
        if unknown.any():
            raise ValueError(
                f"{name} holds labels that are not in classes: "
                f"{sorted(set(y[unknown].tolist()))[:5]}."
            )
        return order[pos]
    if y.dtype.kind not in "iu" and not (
        y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all()
    ):
        raise ValueError(
            f"{name} must hold column positions (ints in [0, {n_classes})) when classes is None, "
            f"got dtype {y.dtype}."
        )
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"{name} must hold column positions in [0, {n_classes}), got values in "
            f"[{y.min()}, {y.max()}]."
        )
    return y


def _nll(log_p, y, temperature):
    return -np.mean(log_softmax(log_p / temperature, axis=1)[np.arange(len(y)), y])


def fit_temperature(scores: ArrayLike, y: ArrayLike, *, kind: str = "proba",
                    classes: ArrayLike | None = None,
                    bounds: tuple[float, float] = DEFAULT_BOUNDS) -> float:
    """The temperature that minimises the held-out negative log-likelihood.

    A bounded 1-D search (Brent's method, ``scipy.optimize.minimize_scalar``) over ``log T``;
    the NLL of temperature scaling is smooth in ``log T`` and in practice unimodal.

    Parameters
    ----------
    scores : array-like of shape (n, n_classes)
        Held-out probabilities or logits (``kind``).
    y : array-like of shape (n,)
        The held-out labels: column positions, or labels of ``classes``.
    kind : {"proba", "logits"}, default="proba"
        What ``scores`` holds.
    classes : array-like of shape (n_classes,) or None, default=None
        The label of each column (an estimator's ``classes_``); None: ``y`` are positions.
    bounds : (float, float), default=(0.01, 100.0)
        The interval searched, ``0 < low < high``.

    Returns
    -------
    temperature : float
        Within ``bounds``.

    Examples
    --------
    >>> import numpy as np
    >>> from skal.calibration import fit_temperature
    >>> proba = np.array([[0.99, 0.01], [0.99, 0.01], [0.99, 0.01], [0.01, 0.99]])
    >>> bool(fit_temperature(proba, [0, 1, 0, 1]) > 1)  # over-confident: T > 1 softens
    True
    """
    log_p = _log_scores(scores, kind)
    if log_p.ndim != 2:
        raise ValueError(f"scores must have shape (n, n_classes), got shape {log_p.shape}.")
    y = _labels_as_columns(y, log_p.shape[1], classes)
    if len(y) != len(log_p):
        raise ValueError(
            f"scores and y must have the same length, got {len(log_p)} and {len(y)}."
        )
    if len(y) == 0:
        raise ValueError("fit_temperature needs at least 1 held-out sample, got 0.")
    low, high = _check_bounds(bounds)
    if kind == "proba" and np.isneginf(log_p[np.arange(len(y)), y]).any():
        # a true class given probability exactly 0: infinite NLL at every T; clip for the fit
        log_p = np.log(np.clip(np.exp(log_p), 1e-12, None))
    result = minimize_scalar(
        lambda log_t: _nll(log_p, y, np.exp(log_t)),
        bounds=(np.log(low), np.log(high)), method="bounded", options={"xatol": 1e-5},
    )
    return float(np.clip(np.exp(result.x), low, high))


def _check_bounds(bounds):
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a pair (low, high), got {bounds!r}.") from None
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low < high):
        raise ValueError(f"bounds must satisfy 0 < low < high (finite), got {bounds!r}.")
    return low, high


def expected_calibration_error(y_true: ArrayLike, proba: ArrayLike, *, n_bins: int = 15,
                               classes: ArrayLike | None = None) -> float:
    """Expected calibration error of the top-class confidence, with equal-width bins.

    ``ECE = sum_b (n_b / n) |accuracy_b - confidence_b|`` where the samples are binned by their
    confidence ``max_k p_k`` into ``n_bins`` equal-width bins of [0, 1] (right-closed:
    ``(i / B, (i + 1) / B]``, the first bin also takes 0), ``accuracy_b`` is the fraction of bin
    ``b`` whose argmax is the true class and ``confidence_b`` its mean confidence; empty bins
    count 0. 0 is perfect calibration; it is at most 1.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels: column positions, or labels of ``classes``.
    proba : array-like of shape (n, n_classes)
        Predicted probabilities.
    n_bins : int, default=15
        Number of bins (Guo et al. 2017 use 15).
    classes : array-like of shape (n_classes,) or None, default=None
        The label of each column; None: ``y_true`` are positions.

    Returns
    -------
    ece : float
        In [0, 1].

    Examples
    --------
    >>> from skal.calibration import expected_calibration_error
    >>> expected_calibration_error([0, 1], [[0.9, 0.1], [0.9, 0.1]], n_bins=10)  # conf 0.9, acc 0.5
    0.4
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be an int in the range [1, inf), got {n_bins!r}.")
    log_p = _log_scores(proba, "proba", "proba")
    if log_p.ndim != 2:
        raise ValueError(f"proba must have shape (n, n_classes), got shape {log_p.shape}.")
    proba = np.asarray(proba, dtype=np.float64)
    y = _labels_as_columns(y_true, proba.shape[1], classes, "y_true")
    if len(y) != len(proba):
        raise ValueError(
            f"y_true and proba must have the same length, got {len(y)} and {len(proba)}."
        )
    if len(y) == 0:
        raise ValueError("expected_calibration_error needs at least 1 sample, got 0.")
    confidence = proba.max(axis=1) / proba.sum(axis=1)
    correct = proba.argmax(axis=1) == y
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return round(float(ece), 12)


class TemperatureScaling(BaseEstimator):
    """Temperature scaling as a scikit-learn style calibrator of probabilities (or logits).

    ``fit(scores, y)`` learns one temperature on held-out data; ``predict_proba(scores)`` returns
    the tempered probabilities of new ``scores``. A fitted instance can be passed as
    ``calibrate=`` to the strategies that use probabilities (``entropy_sampling``, ``bald``,
    ...).

    Parameters
    ----------
    kind : {"proba", "logits"}, default="proba"
        What the ``scores`` given to ``fit`` and ``predict_proba`` hold.
    bounds : (float, float), default=(0.01, 100.0)
        The interval searched for the temperature.
    classes : array-like of shape (n_classes,) or None, default=None
        The label of each column (an estimator's ``classes_``); None: labels are column
        positions.

    Attributes
    ----------
    temperature_ : float
        The fitted temperature.
    n_classes_ : int
        Columns seen in ``fit``.
    nll_before_, nll_after_ : float
        Held-out negative log-likelihood at ``T = 1`` and at ``temperature_`` (nats per sample).

    See Also
    --------
    expected_calibration_error : How far the confidences are from the accuracy.
    skal.stopping.round_report : Fits one per round on the held-out labels.

    Examples
    --------
    >>> import numpy as np
    >>> from skal.calibration import TemperatureScaling
    >>> proba = np.array([[0.99, 0.01], [0.99, 0.01], [0.99, 0.01], [0.01, 0.99]])
    >>> ts = TemperatureScaling().fit(proba, [0, 1, 0, 1])
    >>> bool(ts.nll_after_ < ts.nll_before_), ts.predict(proba).tolist()
    (True, [0, 0, 0, 1])
    """

    _parameter_constraints = {
        "kind": [Choice(*_KINDS)],
        "bounds": [tuple, list],
        "classes": [None, "array-like"],
    }

    def __init__(self, kind: str = "proba", bounds: tuple[float, float] = DEFAULT_BOUNDS,
                 classes: ArrayLike | None = None) -> None:
        self.kind = kind
        self.bounds = bounds
        self.classes = classes

    def fit(self, scores: ArrayLike, y: ArrayLike) -> "TemperatureScaling":
        """Fit the temperature on held-out ``scores`` and labels ``y``.

        Parameters
        ----------
        scores : array-like of shape (n, n_classes)
            Held-out probabilities or logits.
        y : array-like of shape (n,)
            Held-out labels (column positions, or labels of ``classes``).

        Returns
        -------
        self : TemperatureScaling
            Fitted.
        """
        check_params(self)
        self.temperature_ = fit_temperature(
            scores, y, kind=self.kind, classes=self.classes, bounds=self.bounds
        )
        log_p = _log_scores(scores, self.kind)
        yc = _labels_as_columns(y, log_p.shape[1], self.classes)
        if self.kind == "proba":
            log_p = np.log(np.clip(np.exp(log_p), 1e-12, None))
        self.n_classes_ = log_p.shape[1]
        self.nll_before_ = float(_nll(log_p, yc, 1.0))
        self.nll_after_ = float(_nll(log_p, yc, self.temperature_))
        return self

    def predict_proba(self, scores: ArrayLike) -> np.ndarray:
        """Tempered probabilities of ``scores``.

        Parameters
        ----------
        scores : array-like of shape (..., n_classes)
            Probabilities or logits (as in ``fit``); leading axes are kept.

        Returns
        -------
        proba : ndarray of float64, same shape as ``scores``
            Calibrated probabilities.
        """
        check_is_fitted(self, "temperature_")
        scores = np.asarray(scores)
        if scores.ndim >= 1 and scores.shape[-1] != self.n_classes_:
            raise ValueError(
                f"scores must have {self.n_classes_} columns (as in fit), got shape {scores.shape}."
            )
        return apply_temperature(scores, self.temperature_, kind=self.kind)

    def predict(self, scores: ArrayLike) -> np.ndarray:
        """The column (or ``classes`` label) of the highest probability: unchanged by tempering.

        Parameters
        ----------
        scores : array-like of shape (n, n_classes)
            Probabilities or logits.

        Returns
        -------
        y_pred : ndarray of shape (n,)
            Column positions, or labels of ``classes``.
        """
        pos = self.predict_proba(scores).argmax(axis=-1)
        return pos if self.classes is None else np.asarray(self.classes)[pos]


_CALIBRATE_HELP = "None, a float temperature in the range (0.0, inf) or a fitted TemperatureScaling"


def as_temperature(calibrate: "float | TemperatureScaling | None",
                   owner: str = "calibrate") -> float | None:
    """The temperature that a strategy's ``calibrate=`` option means (None: no calibration).

    Parameters
    ----------
    calibrate : None, float or fitted TemperatureScaling
        None leaves probabilities unchanged; a float > 0 is the temperature; a fitted
        :class:`TemperatureScaling` (of probabilities) gives its ``temperature_``.
    owner : str, default="calibrate"
        The name in the error message.

    Returns
    -------
    temperature : float or None
        The temperature, or None for no calibration.

    Raises
    ------
    ValueError
        For anything else, naming ``owner``.
    """
    if calibrate is None:
        return None
    if isinstance(calibrate, TemperatureScaling):
        if not hasattr(calibrate, "temperature_"):
            raise ValueError(f"{owner} got an unfitted TemperatureScaling: fit it first.")
        if calibrate.kind != "proba":
            raise ValueError(
                f"{owner} needs a TemperatureScaling of probabilities (kind='proba'), since the "
                f"strategies see probabilities; got kind={calibrate.kind!r}."
            )
        return float(calibrate.temperature_)
    if isinstance(calibrate, bool) or not isinstance(calibrate, Real):
        raise ValueError(f"{owner} must be {_CALIBRATE_HELP}, got {type(calibrate).__name__}.")
    return _check_temperature(calibrate, owner)


def _identity(proba):
    return proba


def tempering(calibrate: "float | TemperatureScaling | None",
              owner: str = "calibrate") -> Callable[[np.ndarray], np.ndarray]:
    """The function that a strategy applies to the probabilities it obtains, for ``calibrate=``.

    Parameters
    ----------
    calibrate : None, float or fitted TemperatureScaling
        As :func:`as_temperature` reads it.
    owner : str, default="calibrate"
        The name in the error message.

    Returns
    -------
    temper : callable
        ``proba -> proba``: the identity for None (the strategy's probabilities untouched, bit
        for bit), else :func:`apply_temperature` with the temperature, on arrays of shape
        ``(..., n_classes)`` (a ``(T, n, n_classes)`` stack of MC passes is tempered pass by
        pass).

    Examples
    --------
    >>> import numpy as np
    >>> from skal.calibration import tempering
    >>> tempering(None)(np.array([[0.8, 0.2]])), tempering(2.0)(np.array([[0.8, 0.2]])).round(3)
    (array([[0.8, 0.2]]), array([[0.667, 0.333]]))
    """
    temperature = as_temperature(calibrate, owner)
    if temperature is None:
        return _identity
    return lambda proba: apply_temperature(proba, temperature)
