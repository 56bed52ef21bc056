"""Labels saved: how many labels a run needs to reach what a baseline run reaches at a budget.

The runs of one seed share their pools, initial labels and test set per repeat whatever their
method and recipe, so a run and a baseline are compared repeat by repeat (paired): in each
repeat, the baseline's test accuracy at the reference budget is the target, and the run's
budget to reach it is read off its learning curve (linear between the budgets it measured).
"""

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .storage import ExperimentResult, accuracies_by_size

__all__ = ["labels_saved", "labels_to_reach"]


def labels_to_reach(sizes: Sequence[float], accuracies: Sequence[float],
                    target: float) -> float | None:
    """The first number of labels at which a learning curve reaches ``target``.

    Parameters
    ----------
    sizes : sequence of float
        Label counts, increasing.
    accuracies : sequence of float
        The accuracy at each.
    target : float
        The accuracy to reach.

    Returns
    -------
    n_labels : float or None
        ``sizes[0]`` if the curve starts at or above ``target``; else interpolated linearly
        between the last size below and the first at or above it; None if it never does.

    Examples
    --------
    >>> from skal.experiment.savings import labels_to_reach
    >>> labels_to_reach([20, 60, 100], [0.5, 0.7, 0.8], 0.75)
    80.0
    """
    if len(sizes) != len(accuracies) or not len(sizes):
        raise ValueError("sizes and accuracies must be non-empty and of the same length; got "
                         f"{len(sizes)} and {len(accuracies)}.")
    if accuracies[0] >= target:
        return float(sizes[0])
    for i in range(1, len(sizes)):
        if accuracies[i] >= target:
            a0, a1 = accuracies[i - 1], accuracies[i]
            return float(sizes[i - 1] + (target - a0) / (a1 - a0) * (sizes[i] - sizes[i - 1]))
    return None


def _curve(rows, repeat=None):
    rows = sorted((r for r in rows if repeat is None or r["repeat"] == repeat),
                  key=lambda r: r["n_labeled"])
    return [r["n_labeled"] for r in rows], [r["accuracy"] for r in rows]


def labels_saved(baseline: ExperimentResult, run: ExperimentResult,
                 reference: int | None = None) -> dict[str, Any]:
    """How many labels ``run`` needs to reach ``baseline``'s accuracy at ``reference`` labels.

    Parameters
    ----------
    baseline : ExperimentResult
        The baseline run (e.g. random picks with the ``"scratch"`` recipe).
    run : ExperimentResult
        The run to measure; same data set, seed and test set.
    reference : int or None, default=None
        The baseline's budget; None: its largest.

    Returns
    -------
    saved : dict
        ``reference``; ``target`` (the baseline's mean accuracy there); ``mean_curve`` (the
        budget at which the run's mean curve reaches ``target``, or None) and ``ratio``
        (``reference / mean_curve``); per repeat (paired), ``per_repeat`` (budgets, None where
        never reached), ``mean`` and ``se`` (mean and standard error over the repeats that
        reach it), ``reached`` and ``missed``.
    """
    base_sizes = sorted(accuracies_by_size(baseline.rows))
    if reference is None:
        reference = base_sizes[-1]
    if reference not in base_sizes:
        raise ValueError(f"The baseline has no result at {reference} labels; it has "
                         f"{base_sizes}.")
    by_size = accuracies_by_size(baseline.rows)
    target = float(np.mean(by_size[reference]))
    mean_sizes = sorted(accuracies_by_size(run.rows))
    mean_acc = [float(np.mean(accuracies_by_size(run.rows)[n])) for n in mean_sizes]
    mean_curve = labels_to_reach(mean_sizes, mean_acc, target)
    per_repeat = []
    base_repeats = {r["repeat"] for r in baseline.rows if r["n_labeled"] == reference}
    for repeat in sorted(base_repeats & {r["repeat"] for r in run.rows}):
        goal = next(r["accuracy"] for r in baseline.rows
                    if r["repeat"] == repeat and r["n_labeled"] == reference)
        per_repeat.append(labels_to_reach(*_curve(run.rows, repeat), goal))
    reached = [b for b in per_repeat if b is not None]
    mean = float(np.mean(reached)) if reached else None
    se = (float(np.std(reached, ddof=1) / math.sqrt(len(reached))) if len(reached) > 1
          else 0.0 if reached else None)
    return {
        "reference": int(reference), "target": target, "mean_curve": mean_curve,
        "ratio": None if not mean_curve else reference / mean_curve,
        "per_repeat": per_repeat, "mean": mean, "se": se, "reached": len(reached),
        "missed": len(per_repeat) - len(reached),
    }
