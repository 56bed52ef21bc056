"""What a round of ``skal run`` records about when to stop and how sure the model is.

Each result row gains the keys of :func:`skal.stopping.round_report` (``stop_kappa``,
``stop_kappa_mean``, ``stop_by_kappa``, ``stop_by_plateau``, ``ece``, ``ece_calibrated``,
``temperature``, ``forecast_n``, ``forecast_accuracy``, ``forecast_gain``, ``forecast_gain_sd``,
``recommendation``), computed on the run's test set:

- the *stop set* of the kappa criterion is the first :data:`STOP_SET` test images (their labels
  unused); every round's predictions of it are kept in the repeat's checkpoint record
  (``state.json``, ``stop_predictions``: round -> class positions), so a resumed run, or one
  whose last rounds were set back, records what an uninterrupted one does;
- the accuracy plateau and the forecast use the rounds' test accuracies (the learning curve);
  the forecast looks one and five rounds ahead (``query_size`` and ``5 * query_size`` more
  labels);
- the temperature is fitted on the even test rows and the ECE measured on the odd ones.

The model's probabilities are computed with the global random states restored afterwards, as
for a callback's hook, so the keys add nothing to a run's randomness: the other keys and the
labels queried are those of a run without them.
"""

import numpy as np
import torch

from ..stopping import round_report

__all__ = ["STOP_SET", "round_diagnostics"]

#: The test images (the first ones) whose predictions the kappa criterion compares.
STOP_SET = 1000


def _classes(model):
    for est in (model, getattr(model, "estimator", None)):
        classes = getattr(est, "classes_", None)
        if classes is not None:
            return np.asarray(classes)
    return None


def _proba(model, X):
    numpy_state = np.random.get_state()
    devices = ([torch.cuda.current_device()]
               if torch.cuda.is_available() and torch.cuda.is_initialized() else [])
    with torch.random.fork_rng(devices=devices):
        proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    np.random.set_state(numpy_state)
    return proba


def round_diagnostics(model, X_test, y_test, query_size, rows, row, record):
    """The stopping and calibration keys of one round of a repeat.

    Parameters
    ----------
    model : estimator or learner
        The round's fitted model, with ``predict_proba`` and ``classes_`` (or an ``estimator``
        that has them).
    X_test, y_test : ndarray
        The run's test set.
    query_size : int
        Labels per round (the forecast's steps).
    rows : list of dict
        The repeat's earlier result rows, oldest first.
    row : dict
        This round's row (``n_labeled`` and ``accuracy`` set).
    record : dict
        The repeat's checkpoint record: ``stop_predictions[str(round - 1)]`` is read and
        ``stop_predictions[str(round)]`` set (class positions).

    Returns
    -------
    keys : dict
        :func:`skal.stopping.round_report`'s keys (JSON values; None where not computable).
    """
    classes = _classes(model)
    if classes is None or not hasattr(model, "predict_proba"):
        return {}
    proba = _proba(model, X_test)
    stop = proba[:STOP_SET].argmax(axis=1)  # class positions
    stored = record.get("stop_predictions")
    if not isinstance(stored, dict):  # (a run folder from before this key)
        stored = record["stop_predictions"] = {}
    previous = stored.get(str(row["round"] - 1))
    if previous is not None and len(previous) != len(stop):
        previous = None
    history = [{k: r.get(k) for k in ("n_labeled", "accuracy", "stop_kappa")} for r in rows]
    history.append({"n_labeled": row["n_labeled"], "accuracy": row["accuracy"]})
    keys = round_report(
        history, stop_predictions=stop,
        previous_stop_predictions=None if previous is None else np.asarray(previous),
        heldout_proba=proba, heldout_y=np.asarray(y_test), classes=classes,
        n_test=len(y_test), more=[query_size, 5 * query_size])
    stored[str(row["round"])] = stop.tolist()
    return keys
