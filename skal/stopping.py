"""When to stop labelling: three stopping criteria as library calls.

* **Stabilizing predictions** (Bloodgood & Vijay-Shanker 2009): Cohen's kappa between the
  predictions of successive rounds' models on a fixed, unlabelled *stop set*; stop once the mean
  kappa of the last ``window`` rounds is at least ``threshold`` (the paper: 3 rounds, 0.99). Needs
  no labels. :class:`StabilizingPredictions`, :func:`cohen_kappa`.
* **Held-out accuracy plateau**: stop once the accuracy gain over the last ``window`` rounds is
  within its confidence interval, i.e. not distinguishable from no gain on the held-out labels
  (a Wilson interval of the current accuracy, or a paired bootstrap of the gain).
  :class:`AccuracyPlateau`, :func:`wilson_interval`, :func:`accuracy_plateau`.
* **Learning-curve forecast**: fit the inverse power law ``acc(n) = a - b (n / n_1)^-c`` to the
  rounds' ``(labels, accuracy)`` and predict the accuracy at the next budgets, with a bootstrap
  uncertainty and a plain recommendation ("labelling 200 more is expected to add 0.8 +- 0.5
  points"). :func:`forecast_accuracy`, :class:`Forecast`.

:func:`round_report` computes all three (and the held-out calibration error before and after
temperature scaling, :mod:`skal.calibration`) for one round; ``skal run`` and ``skal label``
record its keys per round.

References
----------
Bloodgood, Vijay-Shanker. "A Method for Stopping Active Learning Based on Stabilizing
Predictions and the Need for User-Adjustable Stopping." CoNLL 2009.
Figueroa, Zeng-Treitler, Kandula, Ngo. "Predicting sample size required for classification
performance." BMC Med. Inform. Decis. Mak. 2012 (the inverse power law learning curve).
"""

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.stats import norm
from sklearn.metrics import cohen_kappa_score

from .utils.typing import ArrayLike, RandomStateLike
from .utils.validation import as_generator

__all__ = [
    "AccuracyPlateau",
    "Forecast",
    "StabilizingPredictions",
    "accuracy_plateau",
    "cohen_kappa",
    "forecast_accuracy",
    "round_report",
    "wilson_interval",
]


# ---------------------------------------------------------------------------- checks
def _check_window(window):
    if isinstance(window, bool) or not isinstance(window, Integral) or window < 1:
        raise ValueError(f"window must be an int in the range [1, inf), got {window!r}.")
    return int(window)


def _check_unit(value, name, closed_left=False):
    ok = (not isinstance(value, bool) and isinstance(value, Real) and math.isfinite(value)
          and (0 <= value if closed_left else 0 < value) and value <= 1)
    if not ok:
        interval = "[0.0, 1.0]" if closed_left else "(0.0, 1.0]"
        raise ValueError(f"{name} must be a float in the range {interval}, got {value!r}.")
    return float(value)


def _check_confidence(confidence):
    if (isinstance(confidence, bool) or not isinstance(confidence, Real)
            or not 0 < confidence < 1):
        raise ValueError(
            f"confidence must be a float in the range (0.0, 1.0), got {confidence!r}."
        )
    return float(confidence)


def _as_labels(values, name):
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {values.shape}.")
    if len(values) == 0:
        raise ValueError(f"{name} must not be empty.")
    return values


# ---------------------------------------------------------------------------- kappa
def cohen_kappa(a: ArrayLike, b: ArrayLike) -> float:
    """Compute Cohen's kappa between two label vectors; 1.0 when they agree everywhere.

    ``(p_o - p_e) / (1 - p_e)`` with ``p_o`` the observed agreement and ``p_e`` the agreement
    expected by chance from the two vectors' label frequencies (scikit-learn's
    ``cohen_kappa_score``); when both vectors are the same single label, ``p_e = 1`` and the
    formula is 0 / 0: that perfect agreement is 1.0 here.

    Parameters
    ----------
    a, b : array-like of shape (n,)
        Labels (e.g. two rounds' predictions on the stop set).

    Returns
    -------
    kappa : float
        In [-1, 1].

    Examples
    --------
    >>> from skal.stopping import cohen_kappa
    >>> cohen_kappa([0, 1, 1, 0], [0, 1, 1, 0]), cohen_kappa([0, 1, 0, 1], [0, 1, 1, 0])
    (1.0, 0.0)
    """
    a, b = _as_labels(a, "a"), _as_labels(b, "b")
    if len(a) != len(b):
        raise ValueError(
            f"The two prediction vectors must have the same length (the same stop set), got "
            f"{len(a)} and {len(b)}."
        )
    if np.array_equal(a, b):
        return 1.0
    return float(cohen_kappa_score(a, b))


def _kappa_stop(kappas, threshold, window):
    return len(kappas) >= window and float(np.mean(kappas[-window:])) >= threshold


class StabilizingPredictions:
    """Stop when successive rounds' predictions on a fixed stop set stop changing.

    Each :meth:`update` takes the current round's predictions on the stop set (the same
    unlabelled samples, in the same order, every round) and computes Cohen's kappa with the
    previous round's; the criterion says stop once the mean of the last ``window`` kappas is at
    least ``threshold`` (Bloodgood & Vijay-Shanker 2009, whose defaults these are).

    Parameters
    ----------
    threshold : float in (0, 1], default=0.99
        The agreement required.
    window : int >= 1, default=3
        How many successive kappas are averaged.

    Attributes
    ----------
    kappas_ : list of float
        Kappa of each update with its predecessor (one fewer than the updates).
    stop_ : bool
        Whether the criterion says stop after the last update.
    stop_update_ : int or None
        The 0-based update at which it first said stop.

    See Also
    --------
    cohen_kappa : The agreement of two rounds.
    AccuracyPlateau : A criterion that uses held-out labels.

    Examples
    --------
    >>> from skal.stopping import StabilizingPredictions
    >>> crit = StabilizingPredictions(threshold=0.9, window=2)
    >>> [crit.update(p) for p in ([0, 1, 2, 2], [0, 1, 2, 1], [0, 1, 2, 1], [0, 1, 2, 1])]
    [False, False, False, True]
    """

    def __init__(self, threshold: float = 0.99, window: int = 3) -> None:
        self.threshold = _check_unit(threshold, "threshold")
        self.window = _check_window(window)
        self.kappas_ = []
        self.stop_ = False
        self.stop_update_ = None
        self._previous = None
        self._updates = 0

    def update(self, predictions: ArrayLike) -> bool:
        """Add a round's predictions on the stop set; return whether to stop.

        Parameters
        ----------
        predictions : array-like of shape (n_stop,)
            The round's predicted labels, the same samples in the same order every round.

        Returns
        -------
        stop : bool
            ``stop_`` after this update.
        """
        predictions = _as_labels(predictions, "predictions")
        if self._previous is not None:
            if len(predictions) != len(self._previous):
                raise ValueError(
                    f"predictions must cover the same stop set every round: got {len(predictions)} "
                    f"predictions, the previous round had {len(self._previous)}."
                )
            self.kappas_.append(cohen_kappa(self._previous, predictions))
        self._previous = predictions.copy()
        self.stop_ = _kappa_stop(self.kappas_, self.threshold, self.window)
        if self.stop_ and self.stop_update_ is None:
            self.stop_update_ = self._updates
        self._updates += 1
        return self.stop_


# ---------------------------------------------------------------------------- plateau
def wilson_interval(n_correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (an accuracy on ``n`` held-out labels).

    ``(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` with ``p = n_correct / n`` and
    ``z`` the two-sided normal quantile of ``confidence``; unlike the normal interval it stays in
    [0, 1] and is not empty at ``p = 0`` or ``1``.

    Parameters
    ----------
    n_correct : int
        Correct predictions, ``0 <= n_correct <= n``.
    n : int >= 1
        Held-out labels.
    confidence : float in (0, 1), default=0.95
        Coverage of the interval.

    Returns
    -------
    low, high : float
        The interval.

    Examples
    --------
    >>> from skal.stopping import wilson_interval
    >>> [round(x, 4) for x in wilson_interval(90, 100)]
    [0.8256, 0.9448]
    """
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        raise ValueError(f"n must be an int in the range [1, inf), got {n!r}.")
    if (isinstance(n_correct, bool) or not isinstance(n_correct, Real)
            or not 0 <= n_correct <= n):
        raise ValueError(f"n_correct must be a number in [0, n={n}], got {n_correct!r}.")
    z = float(norm.ppf(0.5 + _check_confidence(confidence) / 2))
    p = n_correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_plateau(accuracies: ArrayLike, n_test: int, *, window: int = 10,
                     confidence: float = 0.95) -> bool:
    """Whether the held-out accuracy gain over the last ``window`` rounds is within its CI.

    The current accuracy ``acc_t`` on ``n_test`` labels has a Wilson interval
    ``[low, high]`` (:func:`wilson_interval`); the accuracy ``window`` rounds before,
    ``acc_(t - window)``, is a plateau when it is at least ``low``: the gain since then is within
    the noise of the held-out estimate.

    Parameters
    ----------
    accuracies : array-like of shape (n_rounds,)
        The rounds' held-out accuracies, oldest first.
    n_test : int >= 1
        Held-out labels each accuracy was measured on.
    window : int >= 1, default=10
        Rounds over which the gain is taken: it must span enough labels for a real gain to
        exceed the held-out noise (on ``benchmarks/stopping.py``'s digits runs, 10 labels per
        round and 200 held out, windows of 2 and 5 rounds stopped far too early).
    confidence : float in (0, 1), default=0.95
        Coverage of the interval.

    Returns
    -------
    plateau : bool
        False while there are ``window`` rounds or fewer.

    Examples
    --------
    >>> from skal.stopping import accuracy_plateau
    >>> accuracy_plateau([0.70, 0.85, 0.90, 0.91], n_test=100, window=2)  # 0.85: in 0.91's CI
    True
    >>> accuracy_plateau([0.50, 0.70, 0.90], n_test=400, window=2)
    False
    """
    window = _check_window(window)
    confidence = _check_confidence(confidence)
    acc = np.asarray(accuracies, dtype=np.float64)
    if acc.ndim != 1 or not np.all((acc >= 0) & (acc <= 1)):
        raise ValueError("accuracies must be a 1-d sequence of values in [0, 1].")
    if len(acc) <= window:
        return False
    low, _ = wilson_interval(round(acc[-1] * n_test), n_test, confidence)
    return bool(acc[-1 - window] >= low)


class AccuracyPlateau:
    """Stop when the held-out accuracy stops rising by more than its confidence interval.

    Each :meth:`update` takes the held-out labels and the round's predictions of them. With
    ``method="wilson"`` the criterion is :func:`accuracy_plateau` (the accuracy ``window`` rounds
    ago lies within the current accuracy's Wilson interval); with ``method="bootstrap"`` it is a
    paired bootstrap over the held-out samples of the gain ``acc_t - acc_(t - window)`` (both
    rounds' correctness resampled together): stop when the lower bound of the gain's
    ``confidence`` interval is at most 0. The held-out set must be the same every round.

    Parameters
    ----------
    window : int >= 1, default=10
        Rounds over which the gain is taken: it must span enough labels for a real gain to
        exceed the held-out noise (on ``benchmarks/stopping.py``'s digits runs, 10 labels per
        round and 200 held out, windows of 2 and 5 rounds stopped far too early).
    confidence : float in (0, 1), default=0.95
        Coverage of the interval.
    method : {"wilson", "bootstrap"}, default="wilson"
        How the interval is computed.
    n_bootstrap : int >= 1, default=1000
        Resamples of the bootstrap.
    random_state : None, int or Generator, default=None
        Seeds the bootstrap.

    Attributes
    ----------
    accuracies_ : list of float
        The held-out accuracy of each update.
    gain_ : float or None
        ``acc_t - acc_(t - window)`` after the last update (None before ``window + 1`` updates).
    interval_ : (float, float) or None
        The interval the decision used: the current accuracy's (Wilson) or the gain's
        (bootstrap).
    stop_ : bool
        Whether the criterion says stop after the last update.

    See Also
    --------
    wilson_interval : The interval of an accuracy.
    StabilizingPredictions : A criterion that needs no labels.
    forecast_accuracy : What more labels are expected to add.

    Examples
    --------
    >>> import numpy as np
    >>> from skal.stopping import AccuracyPlateau
    >>> y = np.array([0, 1] * 50)
    >>> crit = AccuracyPlateau(window=1)
    >>> crit.update(y, np.zeros(100)), crit.update(y, y)
    (False, False)
    >>> crit.update(y, y), crit.gain_
    (True, 0.0)
    """

    def __init__(self, window: int = 10, confidence: float = 0.95, method: str = "wilson",
                 n_bootstrap: int = 1000, random_state: RandomStateLike = None) -> None:
        self.window = _check_window(window)
        self.confidence = _check_confidence(confidence)
        if method not in ("wilson", "bootstrap"):
            raise ValueError(f"method must be 'wilson' or 'bootstrap', got {method!r}.")
        self.method = method
        if (isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, Integral)
                or n_bootstrap < 1):
            raise ValueError(
                f"n_bootstrap must be an int in the range [1, inf), got {n_bootstrap!r}.")
        self.n_bootstrap = int(n_bootstrap)
        self.random_state = random_state
        self._rng = as_generator(random_state)
        self.accuracies_ = []
        self.gain_ = None
        self.interval_ = None
        self.stop_ = False
        self._correct = []

    def update(self, y_true: ArrayLike, y_pred: ArrayLike) -> bool:
        """Add a round's held-out predictions; return whether to stop.

        Parameters
        ----------
        y_true : array-like of shape (n_test,)
            The held-out labels (the same every round).
        y_pred : array-like of shape (n_test,)
            The round's predictions of them.

        Returns
        -------
        stop : bool
            ``stop_`` after this update.
        """
        y_true, y_pred = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
        if len(y_true) != len(y_pred):
            raise ValueError(
                f"y_true and y_pred must have the same length, got {len(y_true)} and "
                f"{len(y_pred)}."
            )
        if self._correct and len(y_true) != len(self._correct[0]):
            raise ValueError(
                f"The held-out set must be the same every round: got {len(y_true)} labels, the "
                f"first round had {len(self._correct[0])}."
            )
        correct = y_true == y_pred
        self._correct.append(correct)
        self.accuracies_.append(float(correct.mean()))
        if len(self._correct) <= self.window:
            return self.stop_
        now, before = self._correct[-1], self._correct[-1 - self.window]
        self.gain_ = float(now.mean() - before.mean())
        if self.method == "wilson":
            self.interval_ = wilson_interval(int(now.sum()), len(now), self.confidence)
            self.stop_ = bool(before.mean() >= self.interval_[0])
        else:
            rows = self._rng.integers(0, len(now), size=(self.n_bootstrap, len(now)))
            gains = now[rows].mean(axis=1) - before[rows].mean(axis=1)
            alpha = (1 - self.confidence) / 2
            self.interval_ = (float(np.quantile(gains, alpha)),
                              float(np.quantile(gains, 1 - alpha)))
            self.stop_ = bool(self.interval_[0] <= 0)
        return self.stop_


# ---------------------------------------------------------------------------- learning curve
def _power_law(n, a, b, c):
    return a - b * np.power(n, -c)


def _log_linear(n, alpha, beta):
    return alpha + beta * np.log(n)


#: Bounds of the power law's (a, b, c) with n in units of the first round's labels: a and b in
#: [0, 1] (acc(n_1) = a - b >= 0 up to noise), c in [0.05, 3].
_BOUNDS = ([0.0, 0.0, 0.05], [1.0, 1.0, 3.0])


def _fit(x, acc, p0=None):
    """``(model name, predict(x), params)`` of the learning curve through ``(x, acc)``; ``p0``
    starts the power law's search (a bootstrap refit starts from the original fit)."""
    if len(x) >= 4 and len(np.unique(x)) >= 4:
        if p0 is None:
            p0 = (min(1.0, acc.max() + 0.02), float(np.clip(acc.max() - acc.min() + 0.01, 0, 1)),
                  0.5)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                params, _ = curve_fit(_power_law, x, acc, p0=p0, bounds=_BOUNDS, maxfev=2000)
            return "power_law", lambda n: _power_law(n, *params), params
        except (RuntimeError, ValueError):  # no convergence: the fallback below
            pass
    slope, intercept = np.polyfit(np.log(x), acc, 1)
    return "log_linear", lambda n: _log_linear(n, intercept, slope), None


@dataclass(frozen=True)
class Forecast:
    """The learning curve's prediction at the next budgets (see :func:`forecast_accuracy`).

    What :func:`forecast_accuracy` returns: the budgets, the accuracy the fitted curve predicts
    at each and the gain over now with its bootstrap spread; :meth:`recommendation` says it in
    one sentence.

    Parameters
    ----------
    n_labeled : int
        Labels now (the last round's).
    accuracy : float
        The last round's measured accuracy.
    budgets : tuple of int
        The label counts forecast.
    predicted : tuple of float
        The fitted curve's accuracy at each budget (clipped to [0, 1]).
    gains : tuple of float
        ``predicted`` minus the curve's value at ``n_labeled``: the expected gain.
    gains_sd : tuple of float or None
        The standard deviation of the held-out gain one would measure at each budget (see
        :func:`forecast_accuracy`; None with 2 rounds: no spread yet).
    model : str
        ``"power_law"`` (``a - b n^-c``, 4 rounds or more) or ``"log_linear"`` (the fallback).
    n_rounds : int
        Rounds the curve was fitted to.

    See Also
    --------
    forecast_accuracy : Makes one.

    Examples
    --------
    >>> from skal.stopping import Forecast
    >>> f = Forecast(n_labeled=400, accuracy=0.9, budgets=(600,), predicted=(0.908,),
    ...              gains=(0.008,), gains_sd=(0.005,), model="power_law", n_rounds=6)
    >>> f.recommendation()
    'labelling 200 more is expected to add 0.8 +- 0.5 points'
    """

    n_labeled: int
    accuracy: float
    budgets: tuple
    predicted: tuple
    gains: tuple
    gains_sd: tuple | None
    model: str
    n_rounds: int

    def recommendation(self, i: int = -1) -> str:
        """The forecast for budget ``i`` (the last by default) in one plain sentence.

        Parameters
        ----------
        i : int, default=-1
            Which budget.

        Returns
        -------
        text : str
            E.g. "labelling 200 more is expected to add 0.8 +- 0.5 points".
        """
        more = self.budgets[i] - self.n_labeled
        gain = round(100 * self.gains[i], 1) + 0.0  # no "-0.0"
        if self.gains_sd is None:
            return (f"labelling {more} more is expected to add {gain:.1f} points (a rough "
                    f"{self.model} extrapolation from {self.n_rounds} rounds; no uncertainty yet)")
        return (f"labelling {more} more is expected to add {gain:.1f} +- "
                f"{100 * self.gains_sd[i]:.1f} points")


def forecast_accuracy(n_labeled: ArrayLike, accuracy: ArrayLike, more: int | Sequence[int], *,
                      n_bootstrap: int = 200, random_state: RandomStateLike = 0) -> "Forecast":
    """Fit the learning curve to the rounds so far and forecast the accuracy with more labels.

    With 4 rounds or more the curve is the inverse power law ``acc(n) = a - b (n / n_1)^-c``
    (``n_1`` the first round's labels), fitted by bounded least squares (``a, b`` in [0, 1],
    ``c`` in [0.05, 3]); with 2 or 3 rounds, or when that fit fails, it is
    ``acc(n) = alpha + beta log n`` (the fallback; it does not saturate, so it overstates far
    gains). The ``+-`` is the standard deviation of the gain one would *measure* on the held-out
    labels: the variance of the fitted curve's gain under a residual bootstrap over the rounds
    (the fitted values plus resampled residuals, refitted ``n_bootstrap`` times) plus twice the
    rounds' scatter around the curve (residual variance with ``n - k`` degrees of freedom, ``k``
    the curve's parameters), for the measurement now and the one then. It does not cover a
    change of the curve's shape beyond the rounds seen.

    Parameters
    ----------
    n_labeled : array-like of int, shape (n_rounds,)
        Labels of each round, increasing.
    accuracy : array-like of float, shape (n_rounds,)
        The rounds' held-out accuracies, in [0, 1].
    more : int or sequence of int
        Additional labels to forecast for (each >= 1).
    n_bootstrap : int >= 0, default=200
        Bootstrap refits (0: no uncertainty).
    random_state : None, int or Generator, default=0
        Seeds the bootstrap.

    Returns
    -------
    forecast : Forecast
        With :meth:`Forecast.recommendation`.

    Examples
    --------
    >>> from skal.stopping import forecast_accuracy
    >>> n = [100, 200, 300, 400, 500, 600]
    >>> acc = [0.95 - 0.5 * (k / 100) ** -0.7 for k in n]
    >>> f = forecast_accuracy(n, acc, 200)
    >>> f.model, f.budgets, round(f.predicted[0], 3)
    ('power_law', (800,), 0.833)
    """
    x = np.asarray(n_labeled, dtype=np.float64)
    acc = np.asarray(accuracy, dtype=np.float64)
    if x.ndim != 1 or acc.ndim != 1 or len(x) != len(acc):
        raise ValueError(
            f"n_labeled and accuracy must be 1-d and of the same length, got shapes {x.shape} "
            f"and {acc.shape}."
        )
    if len(x) < 2:
        raise ValueError(f"forecast_accuracy needs at least 2 rounds, got {len(x)}.")
    if not (np.isfinite(x).all() and (x >= 1).all() and (np.diff(x) > 0).all()):
        raise ValueError("n_labeled must be finite, >= 1 and strictly increasing.")
    if not (np.isfinite(acc).all() and ((acc >= 0) & (acc <= 1)).all()):
        raise ValueError("accuracy must hold values in [0, 1].")
    more = np.atleast_1d(np.asarray(more))
    if more.ndim != 1 or more.dtype.kind not in "iu" or (more < 1).any():
        raise ValueError(f"more must be an int >= 1 or a sequence of them, got {more!r}.")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, Integral) or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be an int in the range [0, inf), got {n_bootstrap!r}.")
    scale = x[0]
    u, budgets = x / scale, x[-1] + more
    model, curve, params = _fit(u, acc)
    now = float(curve(u[-1]))
    predicted = np.clip(curve(budgets / scale), 0, 1)
    gains = predicted - now
    sd = None
    if len(x) > 2 and n_bootstrap:
        rng = as_generator(random_state)
        fitted = curve(u)
        residuals = acc - fitted
        boot = np.empty((n_bootstrap, len(budgets)))
        for k in range(n_bootstrap):
            sample = np.clip(fitted + rng.choice(residuals, len(residuals)), 0, 1)
            _, c, _ = _fit(u, sample, params)
            boot[k] = np.clip(c(budgets / scale), 0, 1) - c(u[-1])
        # the gain one will measure: the curve's bootstrap spread plus the rounds' scatter
        # around it, at the measurement now and at the one then
        n_params = 3 if model == "power_law" else 2
        scatter = float(np.sum(residuals ** 2) / max(len(x) - n_params, 1))
        sd = tuple(float(np.sqrt(v + 2 * scatter)) for v in boot.var(axis=0, ddof=1))
    return Forecast(
        n_labeled=int(x[-1]), accuracy=float(acc[-1]),
        budgets=tuple(int(b) for b in budgets), predicted=tuple(float(p) for p in predicted),
        gains=tuple(float(g) for g in gains), gains_sd=sd, model=model, n_rounds=len(x),
    )


# ---------------------------------------------------------------------------- one round
def _calibration_keys(proba, y, classes, n_bins):
    """ECE before / after a temperature fitted on the other half of the held-out rows.

    A held-out label of a class the model has never seen (not in ``classes``) is a wrong
    prediction for the ECE (its column is 0) and is left out of the temperature's fit (its
    likelihood is 0 at every temperature).
    """
    from .calibration import TemperatureScaling, expected_calibration_error

    proba, y = np.asarray(proba, dtype=np.float64), np.asarray(y)
    if classes is None:
        classes = np.arange(proba.shape[1])
    classes = np.asarray(classes)
    known = np.isin(y, classes)
    every = np.concatenate([classes, np.unique(y[~known])])
    wide = np.hstack([proba, np.zeros((len(proba), len(every) - len(classes)))])
    fit_rows = np.arange(0, len(y), 2)
    eval_rows = np.arange(1, len(y), 2)
    fit_rows = fit_rows[known[fit_rows]]
    if len(fit_rows) == 0:
        return {}
    ts = TemperatureScaling(classes=classes).fit(proba[fit_rows], y[fit_rows])
    tempered = np.hstack([ts.predict_proba(proba[eval_rows]), wide[eval_rows, len(classes):]])
    return {
        "temperature": ts.temperature_,
        "ece": expected_calibration_error(y[eval_rows], wide[eval_rows], n_bins=n_bins,
                                          classes=every),
        "ece_calibrated": expected_calibration_error(y[eval_rows], tempered, n_bins=n_bins,
                                                     classes=every),
    }


def round_report(history: list[dict], *, stop_predictions: ArrayLike | None = None,
                 previous_stop_predictions: ArrayLike | None = None,
                 heldout_proba: ArrayLike | None = None, heldout_y: ArrayLike | None = None,
                 classes: ArrayLike | None = None, n_test: int | None = None,
                 more: Sequence[int] | None = None, kappa_threshold: float = 0.99,
                 kappa_window: int = 3, plateau_window: int = 10, confidence: float = 0.95,
                 n_bins: int = 15) -> dict:
    """The stopping and calibration numbers of one round, as a dict of JSON values.

    What ``skal run`` and ``skal label`` record per round. The held-out set is split in two by
    position (even / odd rows): the temperature is fitted on one half and the expected
    calibration error (:func:`skal.calibration.expected_calibration_error`) measured on the
    other, before and after, so the calibrated ECE is not measured on the labels it was fitted
    to.

    Parameters
    ----------
    history : list of dict
        Every round so far, oldest first, *this round last*: each holds ``n_labeled`` and
        ``accuracy`` (None where not measured) and, for the earlier rounds, the ``stop_kappa``
        this function reported for them.
    stop_predictions, previous_stop_predictions : array-like or None
        This round's and the previous round's predictions on the stop set.
    heldout_proba : array-like of shape (n, n_classes) or None
        This round's probabilities of the held-out samples.
    heldout_y : array-like of shape (n,) or None
        Their labels (labels of ``classes``).
    classes : array-like or None
        The label of each column of ``heldout_proba``.
    n_test : int or None
        Held-out labels behind each accuracy (for the plateau's interval).
    more : sequence of int or None
        Additional labels to forecast for; the recommendation speaks of the last.
    kappa_threshold, kappa_window : float, int
        :class:`StabilizingPredictions`'s parameters.
    plateau_window, confidence : int, float
        :func:`accuracy_plateau`'s parameters.
    n_bins : int
        ECE bins.

    Returns
    -------
    report : dict
        ``stop_kappa`` (this round vs the previous one), ``stop_kappa_mean`` (mean of the last
        ``kappa_window``) and ``stop_by_kappa``; ``stop_by_plateau``; ``ece``,
        ``ece_calibrated`` and ``temperature``; ``forecast_n``, ``forecast_accuracy``,
        ``forecast_gain``, ``forecast_gain_sd`` and ``recommendation``. A number that cannot be
        computed yet (round 1, no held-out labels, too few rounds) is None.
    """
    report = dict.fromkeys((
        "stop_kappa", "stop_kappa_mean", "stop_by_kappa", "stop_by_plateau", "ece",
        "ece_calibrated", "temperature", "forecast_n", "forecast_accuracy", "forecast_gain",
        "forecast_gain_sd", "recommendation"))
    if stop_predictions is not None and previous_stop_predictions is not None:
        report["stop_kappa"] = cohen_kappa(previous_stop_predictions, stop_predictions)
    kappas = [h.get("stop_kappa") for h in history[:-1]] + [report["stop_kappa"]]
    recent = kappas[-kappa_window:]
    if len(recent) == kappa_window and all(k is not None for k in recent):
        report["stop_kappa_mean"] = float(np.mean(recent))
        report["stop_by_kappa"] = report["stop_kappa_mean"] >= kappa_threshold
    rounds = [h for h in history if h.get("accuracy") is not None]
    if n_test and len(rounds) > plateau_window:
        report["stop_by_plateau"] = accuracy_plateau(
            [h["accuracy"] for h in rounds], int(n_test), window=plateau_window,
            confidence=confidence)
    if heldout_proba is not None and heldout_y is not None and len(heldout_y) >= 4:
        report.update(_calibration_keys(heldout_proba, heldout_y, classes, n_bins))
    if more and len(rounds) >= 2:
        forecast = forecast_accuracy([h["n_labeled"] for h in rounds],
                                     [h["accuracy"] for h in rounds], list(more))
        report.update(
            forecast_n=list(forecast.budgets), forecast_accuracy=list(forecast.predicted),
            forecast_gain=list(forecast.gains),
            forecast_gain_sd=None if forecast.gains_sd is None else list(forecast.gains_sd),
            recommendation=forecast.recommendation(),
        )
    return report
