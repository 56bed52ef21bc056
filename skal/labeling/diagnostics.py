"""When to stop and how sure the model is, per round of a labelling project.

A round that trained a model computes :func:`skal.stopping.round_report` from the project's
held-out labels (the images whose content hash falls in the held-out part, see
:func:`skal.labeling.rounds.in_holdout`) and stores it next to the round's checkpoint, as
``models/round_NNNN.stopping.json`` (written atomically before the round is marked done; a
failed round's file is never read):

- the *stop set* of the kappa criterion is every image in use in the held-out part, labelled or
  not (it stays fixed as the labels grow); its predictions are kept in the file, by content hash,
  so the next round compares the images both rounds predicted;
- the plateau and the forecast use the finished rounds' held-out accuracies, with the current
  held-out size as ``n_test``; the forecast looks one and five batches ahead;
- the temperature is fitted on half of the held-out labels and the ECE measured on the other
  half (:mod:`skal.calibration`); with fewer than 4 held-out labels there is none;
- ``seconds_per_class``: the recorded answer times (``view_ms`` of the label answers, from the
  page's view of the image to the answer) as a :class:`skal.ClassTimeModel` (the mean time of
  each class shrunk towards the mean of all, worth 5 answers), with ``n_timed`` the answers it
  saw; None before any answer has a time. It is what a cost-aware query
  (:class:`skal.CostAwareStrategy`) would use.

:func:`load_report` reads it back for the app's status JSON.
"""


import numpy as np

from ..stopping import round_report
from .files import read_round_json, round_json_path, write_round_json

__all__ = ["compute_report", "load_report", "report_path", "write_report"]


def report_path(project_path, round_id):
    """The file of a round's report, ``models/round_NNNN.stopping.json``.

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
    return round_json_path(project_path, round_id, "stopping")


def _read(project_path, round_id):
    return read_round_json(project_path, round_id, "stopping")


def load_report(project_path, round_id):
    """The stored report of a round (without the stop-set predictions), or None.

    Parameters
    ----------
    project_path : str
        The project folder.
    round_id : int
        The round.

    Returns
    -------
    report : dict or None
        :func:`skal.stopping.round_report`'s keys, or None for a round without one.
    """
    data = _read(project_path, round_id)
    return None if data is None else data.get("report")


def _previous(store, project_path, round_id):
    """The earlier finished rounds that trained a model, oldest first, with their reports."""
    rounds = [r for r in store.rounds()
              if r["status"] == "done" and r["model"] is not None and r["id"] < round_id]
    return [(r, _read(project_path, r["id"]) or {}) for r in rounds]


def compute_report(store, project_path, round_id, estimator, X_stop, stop_sha, X_held, y_held,
                   n_labeled, accuracy, batch_size):
    """Compute a round's report and store it next to its checkpoint.

    Parameters
    ----------
    store : LabelStore
        The project's store.
    project_path : str
        The project folder.
    round_id : int
        The running round.
    estimator : estimator
        The round's fitted model (``predict_proba``, ``classes_``).
    X_stop : ndarray
        The stop set's images.
    stop_sha : list of str
        Their content hashes, in the same order.
    X_held : ndarray
        The held-out labelled images.
    y_held : ndarray
        Their labels.
    n_labeled : int
        Labels the round saw.
    accuracy : float or None
        The round's held-out accuracy.
    batch_size : int
        Images per batch (the forecast's steps).

    Returns
    -------
    report : dict
        :func:`skal.stopping.round_report`'s keys.
    """
    classes = np.asarray(estimator.classes_)
    stop = {}
    if len(X_stop):
        predicted = classes[np.asarray(estimator.predict_proba(X_stop)).argmax(axis=1)]
        stop = dict(zip(stop_sha, (str(p) for p in predicted)))
    earlier = _previous(store, project_path, round_id)
    before = (earlier[-1][1].get("stop_predictions") or {}) if earlier else {}
    common = [s for s in stop if s in before]  # the images both rounds predicted
    history = [{"n_labeled": r["n_labeled"], "accuracy": r["accuracy"],
                "stop_kappa": (d.get("report") or {}).get("stop_kappa")} for r, d in earlier]
    history.append({"n_labeled": n_labeled, "accuracy": accuracy})
    held = len(y_held) > 0
    report = round_report(
        history, stop_predictions=[stop[s] for s in common] if common else None,
        previous_stop_predictions=[before[s] for s in common] if common else None,
        heldout_proba=np.asarray(estimator.predict_proba(X_held)) if held else None,
        heldout_y=np.asarray(y_held) if held else None, classes=classes,
        n_test=len(y_held) or None, more=[batch_size, 5 * batch_size])
    report["stop_set"] = len(stop)
    report.update(_answer_times(store, classes))
    write_report(project_path, round_id, {"report": report, "stop_predictions": stop})
    return report


def write_report(project_path, round_id, record):
    """Write a round's report file (atomically: the page reads it while rounds run).

    Parameters
    ----------
    project_path : str
        The project folder.
    round_id : int
        The round.
    record : dict
        JSON-serialisable: ``{"report": ..., "stop_predictions": ...}``, or ``{"report":
        {"error": ...}}`` when the report could not be computed.
    """
    write_round_json(project_path, round_id, "stopping", record)


def _answer_times(store, classes):
    """``seconds_per_class`` ({class: seconds} or None) and ``n_timed`` from the label answers'
    recorded ``view_ms``."""
    from ..cost import ClassTimeModel
    from .batch_report import timed_answers

    timed = [(label, seconds) for _, label, seconds in timed_answers(store, classes)]
    if not timed:
        return {"seconds_per_class": None, "n_timed": 0}
    labels, seconds = zip(*timed)
    model = ClassTimeModel(classes=classes, prior_strength=5.0).fit(None, list(labels), seconds)
    return {"seconds_per_class": {str(c): round(float(t), 3)
                                  for c, t in zip(classes, model.seconds_)},
            "n_timed": len(timed)}
