"""Learning-curve plots of one run or several (matplotlib, imported only when drawing)."""

import io
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .storage import (
    STATE_FILE,
    ExperimentResult,
    _NoRunError,
    accuracies_by_size,
    load_run,
    write_atomic,
)

__all__ = ["compare_runs", "plot_learning_curves"]


def run_label(config, recipe=None):
    """``"badge"``, or ``"badge + ssl-head"`` for a run with a recipe other than scratch (or
    with ``recipe=True``, for runs compared with such runs)."""
    name = getattr(config, "recipe", "scratch")
    if recipe is None:
        recipe = name != "scratch"
    return f"{config.method} + {name}" if recipe else config.method


def run_title(config, data=None):
    """``"digits: pool 200, test 100, 20 + 10/round, ResNet18Classifier(width=2), 2 repeats"``."""
    pool = config.pool_size or "all"
    test = len(data.y_test) if data is not None else (config.test_size or "all")
    return (
        f"{config.dataset}: pool {pool}, test {test}, {config.n_initial} + "
        f"{config.query_size}/round, {config.estimator}, {config.repeats} repeats"
    )


def plot_learning_curves(
    curves: Mapping[str, list[dict[str, Any]]],
    out_png: str | os.PathLike[str],
    title: str | None = None,
) -> str:
    """Plot test accuracy against the number of labels, one line per curve.

    Each line is the mean over repeats, with a shaded band from the minimum to the maximum.

    Parameters
    ----------
    curves : dict
        ``{label: rows}`` where rows are result dicts with ``n_labeled`` and ``accuracy``.
    out_png : str or path-like
        Where to write the PNG (replaced atomically; folders are created).
    title : str, default=None
        The plot's title; None for none.

    Returns
    -------
    out_png : str
        The path written.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend, works headless

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for label, rows in curves.items():
        by_size = accuracies_by_size(rows)
        sizes = np.array(list(by_size))
        accs = [np.asarray(a) for a in by_size.values()]
        mean = np.array([a.mean() for a in accs])
        (line,) = ax.plot(sizes, mean, marker="o", label=f"{label} (mean)")
        ax.fill_between(sizes, [a.min() for a in accs], [a.max() for a in accs],
                        color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("number of labelled samples")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(title="shaded: min-max over repeats", fontsize="small")
    if title:
        ax.set_title(title, fontsize="medium")
    out_png = os.fspath(out_png)
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    write_atomic(out_png, buffer.getvalue())
    return out_png


def _expand_run_dirs(dirs):
    """Run folders; a folder without a run stands for its sub-folders that hold one."""
    found = []
    for d in map(os.fspath, dirs):
        if os.path.exists(os.path.join(d, STATE_FILE)):
            found.append(d)
            continue
        subs = sorted(
            os.path.join(d, s) for s in (os.listdir(d) if os.path.isdir(d) else [])
            if os.path.exists(os.path.join(d, s, STATE_FILE))
        )
        if not subs:
            raise _NoRunError(f"{d} holds no skal experiment (no {STATE_FILE}).")
        found.extend(subs)
    return found


def compare_runs(
    dirs: Iterable[str | os.PathLike[str]],
    out_png: str | os.PathLike[str],
    title: str | None = None,
) -> list[ExperimentResult]:
    """Overlay the learning curves of several runs (e.g. one per method) in one PNG.

    Parameters
    ----------
    dirs : list of str or path-like
        Run folders; a folder holding run folders (``skal run --methods``) adds all of them.
    out_png : str or path-like
        Where to write the PNG.
    title : str, default=None
        Defaults to the first run's data set and sizes (and the estimator, when all runs
        train the same one).

    Returns
    -------
    results : list of ExperimentResult
        The runs plotted, in order.
    """
    results = [load_run(d) for d in _expand_run_dirs(dirs)]
    recipes = any(getattr(r.config, "recipe", "scratch") != "scratch" for r in results)
    methods = [run_label(r.config, recipes) for r in results]
    curves = {}
    for result in results:
        label = run_label(result.config, recipes)
        if methods.count(label) > 1:
            label = f"{label} ({result.out_dir})"
        curves[label] = result.rows
    if title is None:
        title = run_title(results[0].config)
        if len({r.config.estimator for r in results}) > 1:
            title = title.replace(f", {results[0].config.estimator}", "")
    plot_learning_curves(curves, out_png, title=title)
    return results
