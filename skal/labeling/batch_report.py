"""What a round says about its batch: cost-aware or not, seconds and calibrated confidences.

Before a round queries, :func:`plan_query` decides how (the :class:`QueryPlan`):

- *cost-aware* (the ``cost_aware`` setting): the project's strategy is wrapped in
  :class:`skal.CostAwareStrategy`, which ranks the pool by ``score / seconds ** cost_power``
  with the seconds from a time model fitted on the project's recorded answer times (``view_ms``
  of the label answers, from the page's view of the image to the answer): the mean time of each
  class shrunk towards the mean of all (``time_model="class"``, :class:`skal.ClassTimeModel`)
  or a regressor of the log time on the round's probabilities of the answered images
  (``"regressor"``, :class:`skal.RegressorTimeModel`). With fewer than :data:`MIN_TIMED` timed
  answers the round is cost-blind and its report says why;
- *calibrated*: the temperature the round's stopping report fitted on held-out labels
  (:mod:`skal.labeling.diagnostics`); with none (fewer than 4 held-out labels) the guesses are
  uncalibrated.

After the query :func:`store_report` writes ``models/round_NNNN.batch.json`` (atomically, before
the round is marked done): the plan and, per batch image, the guess's calibrated confidence and
the expected seconds (whenever a time model could be fitted, cost-aware or not).
:func:`load_report` reads it for the page and :func:`with_details` adds it to the batch's
:class:`~skal.labeling.BatchItem` rows.
"""

import dataclasses
from typing import Any, NamedTuple

import numpy as np

from .files import read_round_json, round_json_path, write_round_json
from .settings import COST_AWARE_STRATEGIES, cost_settings

__all__ = ["MIN_TIMED", "QueryPlan", "load_report", "plan_query", "report_path", "store_report",
           "timed_answers", "with_details"]

#: Timed label answers a round needs before it fits a time model (below: cost-blind).
MIN_TIMED = 10


class QueryPlan(NamedTuple):
    """How a round queries: cost-aware or not, and the temperature of its guesses.

    :func:`plan_query` builds it after the model is trained; the round calls the strategy
    :meth:`wrap` returns and :func:`store_report` writes it down with the batch.

    Parameters
    ----------
    cost_aware : bool
        Whether the ranking is information per expected second.
    asked : bool
        Whether the round was asked to be cost-aware (the ``cost_aware`` setting).
    time_model : object or None
        The fitted time model (None: too few timed answers).
    time_model_kind : str
        ``"class"`` or ``"regressor"``.
    cost_power : float
        The exponent of the expected seconds.
    n_timed : int
        Timed label answers the time model saw (or would have seen).
    note : str or None
        Why a round asked to be cost-aware is not.
    temperature : float or None
        Of the guesses' confidences (None: uncalibrated).

    See Also
    --------
    plan_query : Builds it.

    Examples
    --------
    >>> plan = QueryPlan(False, False, None, "class", 0.5, 0, None, None)
    >>> plan.cost_aware, plan.temperature
    (False, None)
    """

    cost_aware: bool
    asked: bool
    time_model: Any
    time_model_kind: str
    cost_power: float
    n_timed: int
    note: Any
    temperature: Any

    def wrap(self, func, kwargs):
        """The strategy a cost-aware round calls: ``func`` per expected second.

        Parameters
        ----------
        func : callable
            The project's strategy.
        kwargs : dict
            What the round passes to it beyond the pool.

        Returns
        -------
        strategy : callable
            Called as ``strategy(estimator, X_pool, n_instances=, random_state=)``.
        """
        from ..cost import CostAwareStrategy

        return CostAwareStrategy(func, self.time_model,
                                 offset=COST_AWARE_STRATEGIES[func.__name__],
                                 cost_power=self.cost_power, **kwargs)


def timed_answers(store, classes):
    """The label answers with a recorded time, as ``(image id, label, seconds)`` rows.

    Parameters
    ----------
    store : LabelStore
        The project's store.
    classes : array-like
        The labels kept (the model's ``classes_``).

    Returns
    -------
    list of tuple
        Oldest first.
    """
    known = set(np.asarray(classes).tolist())
    return [(a["image_id"], a["label"], a["view_ms"] / 1000.0) for a in store.answers()
            if a["kind"] == "label" and "view_ms" in a.keys() and a["view_ms"] is not None
            and a["label"] in known]


def _fit_time_model(kind, timed, estimator, X_all, rows):
    from ..cost import ClassTimeModel, RegressorTimeModel

    if kind == "class":
        _, labels, seconds = zip(*timed)
        return ClassTimeModel(classes=np.asarray(estimator.classes_)).fit(
            None, list(labels), seconds)
    ids, _, seconds = zip(*timed)
    X = X_all[[rows[i] for i in ids]]
    return RegressorTimeModel(features="proba").fit(
        None, None, seconds, proba=np.asarray(estimator.predict_proba(X)))


def plan_query(store, config, estimator, X_all, rows, stopping):
    """Decide how a round queries (see the module's description).

    Parameters
    ----------
    store : LabelStore
        The project's store.
    config : dict
        The round's settings.
    estimator : estimator
        The round's fitted model.
    X_all : ndarray
        Every image in use.
    rows : dict of int to int
        ``{image id: row of X_all}``.
    stopping : dict or None
        The round's stopping report (its ``temperature``).

    Returns
    -------
    plan : QueryPlan
        The decision, with a note when a cost-aware round falls back to cost-blind.
    """
    asked, power, kind = cost_settings(config)
    timed = timed_answers(store, estimator.classes_)
    if kind == "regressor":  # it needs the images: those still in use
        timed = [t for t in timed if t[0] in rows]
    model, note = None, None
    if len(timed) >= MIN_TIMED:
        try:
            model = _fit_time_model(kind, timed, estimator, X_all, rows)
        except ValueError as exc:
            note = f"cost-blind: the {kind} time model could not be fitted ({exc})"
    elif asked:
        note = (f"cost-blind: only {len(timed)} label answer(s) have a recorded time; a time "
                f"model needs {MIN_TIMED}")
    temperature = (stopping or {}).get("temperature")
    return QueryPlan(bool(asked) and model is not None, bool(asked), model, kind, float(power),
                     len(timed), note if asked else None,
                     None if temperature is None else float(temperature))


def report_path(project_path, round_id):
    """The file of a round's batch report, ``models/round_NNNN.batch.json``.

    Parameters
    ----------
    project_path : str
        The project folder.
    round_id : int
        The round.

    Returns
    -------
    path : str
        The absolute path.
    """
    return round_json_path(project_path, round_id, "batch")


def store_report(project_path, round_id, plan, queries, estimator, X_items):
    """Write a round's batch report and return it.

    Parameters
    ----------
    project_path : str
        The project folder.
    round_id : int
        The round.
    plan : QueryPlan
        How it queried.
    queries : list of tuple
        The batch's ``(image id, score, guess, confidence)`` rows, best first.
    estimator : estimator
        The round's model.
    X_items : ndarray
        The batch's images, in the order of ``queries``.

    Returns
    -------
    report : dict
        ``cost_aware``, ``asked``, ``time_model``, ``cost_power``, ``n_timed``, ``min_timed``,
        ``note``, ``seconds_per_image`` (the batch's mean expected seconds, or None),
        ``temperature``, ``calibrated`` and ``items`` (``{image id: {"calibrated_confidence",
        "expected_seconds"}}``).
    """
    from ..calibration import apply_temperature

    items = {}
    if len(queries):
        proba = np.asarray(estimator.predict_proba(X_items), dtype=np.float64)  # (n, n_classes)
        calibrated = (None if plan.temperature is None
                      else apply_temperature(proba, plan.temperature).max(axis=1))
        seconds = (None if plan.time_model is None
                   else np.asarray(plan.time_model.predict(X_items, proba), dtype=np.float64))
        for i, row in enumerate(queries):
            items[str(row[0])] = {
                "calibrated_confidence": None if calibrated is None else float(calibrated[i]),
                "expected_seconds": None if seconds is None else round(float(seconds[i]), 3)}
    per_image = [it["expected_seconds"] for it in items.values()]
    report = {
        "cost_aware": plan.cost_aware, "asked": plan.asked, "time_model": plan.time_model_kind,
        "cost_power": plan.cost_power, "n_timed": plan.n_timed, "min_timed": MIN_TIMED,
        "note": plan.note,
        "seconds_per_image": (round(float(np.mean(per_image)), 3)
                              if per_image and None not in per_image else None),
        "temperature": plan.temperature, "calibrated": plan.temperature is not None,
        "items": items,
    }
    write_round_json(project_path, round_id, "batch", report)
    return report


def load_report(project_path, round_id):
    """The stored batch report of a round, or None (round 1, or a round made before it existed).

    Parameters
    ----------
    project_path : str
        The project folder.
    round_id : int
        The round.

    Returns
    -------
    report : dict or None
        :func:`store_report`'s keys.
    """
    return read_round_json(project_path, round_id, "batch")


def with_details(items, report):
    """Add a batch report's per-image numbers to batch items.

    Parameters
    ----------
    items : list of BatchItem
        The batch's items.
    report : dict or None
        From :func:`load_report`.

    Returns
    -------
    list of BatchItem
        With ``calibrated_confidence``, ``calibrated`` and ``expected_seconds`` set (None, False
        and None without a report).
    """
    if not report:
        return list(items)
    per_image = report.get("items") or {}
    out = []
    for item in items:
        details = per_image.get(str(item.image_id)) or {}
        confidence = details.get("calibrated_confidence")
        out.append(dataclasses.replace(
            item, calibrated_confidence=confidence, calibrated=confidence is not None,
            expected_seconds=details.get("expected_seconds")))
    return out
