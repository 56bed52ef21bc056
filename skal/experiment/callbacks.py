"""Hooks into the rounds of :func:`~skal.experiment.run_experiment`, in skorch's style.

A :class:`RunCallback` subclass overrides the hooks it needs; the runner calls them, in the order
the callbacks were given, with a read-only :class:`RoundContext` of the round. They observe the
run: they are no part of its identity (``config.json``) and do not change its results (the
global torch and numpy random states are restored after each hook, so a hook may predict with
the model). An exception raised in a hook propagates and stops the run; the rounds saved before
stay saved.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import ExperimentConfig

__all__ = ["RoundContext", "RunCallback"]


@dataclass(frozen=True)
class RoundContext:
    """One round of one repeat, as the hooks of a :class:`RunCallback` see it.

    The arrays are read-only (``labeled`` is a copy): a hook cannot change the run.

    Parameters
    ----------
    config : ExperimentConfig
        The experiment.
    repeat : int
        The repeat (0-based).
    round : int
        The round: 0 trains on the initial labelled set, ``config.n_rounds`` is the last.
    out_dir : str
        The run folder.
    X_pool : ndarray
        The repeat's pool images (:meth:`ExperimentData.pool`).
    y_pool : ndarray
        Their labels (the oracle's answers).
    labeled : ndarray of int64
        The pool indices the round's model is trained on, in acquisition order.
    X_test : ndarray
        The test set the round is scored on.
    y_test : ndarray
        Its labels.
    classes : ndarray
        All classes of the data set.

    See Also
    --------
    RunCallback : Receives one in each hook.

    Examples
    --------
    >>> import numpy as np
    >>> from skal.experiment import ExperimentConfig, RoundContext
    >>> ctx = RoundContext(ExperimentConfig(dataset="digits"), repeat=0, round=1, out_dir="run",
    ...                    X_pool=np.zeros((5, 1, 8, 8)), y_pool=np.arange(5),
    ...                    labeled=np.array([3, 1]), X_test=np.zeros((2, 1, 8, 8)),
    ...                    y_test=np.arange(2), classes=np.arange(5))
    >>> ctx.n_labeled, ctx.labeled.flags.writeable
    (2, False)
    """

    config: ExperimentConfig
    repeat: int
    round: int
    out_dir: str
    X_pool: np.ndarray
    y_pool: np.ndarray
    labeled: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: np.ndarray

    def __post_init__(self):
        for name in ("X_pool", "y_pool", "labeled", "X_test", "y_test", "classes"):
            value = getattr(self, name)
            view = np.array(value) if name == "labeled" else np.asarray(value).view()
            view.flags.writeable = False
            object.__setattr__(self, name, view)

    @property
    def n_labeled(self) -> int:
        """Labels the round's model is trained on."""
        return len(self.labeled)


class RunCallback:
    """Base class of the hooks :func:`run_experiment` calls during a run (all no-ops here).

    In every round that runs, the hooks fire in this order: :meth:`on_round_begin`, then, once
    the round's model is trained, :meth:`on_fit_end`, then (except in the last round)
    :meth:`on_query_end` with the newly labelled pool indices, and :meth:`on_round_end` with the
    round's result row once the checkpoint holds the round. Rounds that a resumed run finds
    finished fire nothing. When a finished run is extended, the query that its last saved round
    did not make is made first (its model retrained from the round's seed): that fires
    :meth:`on_fit_end` and :meth:`on_query_end` with that round's context, and no
    :meth:`on_round_begin` or :meth:`on_round_end` (the round's row exists already).

    The ``model`` passed to the hooks is the runner's own object: the estimator the method's
    ``make_estimator`` built for the round (trained through the runner's
    :class:`skal.ActiveLearner`), or that learner for a method whose ``make_estimator`` builds
    one. With ``warm_start`` it is trained further in the next round, so keep a copy (e.g.
    ``copy.deepcopy``) to keep a round's weights.

    Every hook takes ``**kwargs``, as skorch's callbacks do: later versions may pass new keyword
    arguments, and a hook defined with ``**kwargs`` keeps working. The arguments documented here
    come positionally, in this order.

    See Also
    --------
    run_experiment : Takes the callbacks.
    RoundContext : What the hooks receive as ``ctx``.

    Examples
    --------
    Keep the fitted model of every round:

    >>> from skal.experiment import ExperimentConfig, RunCallback, run_experiment
    >>> class KeepModels(RunCallback):
    ...     def __init__(self):
    ...         self.models = {}
    ...     def on_fit_end(self, ctx, model, **kwargs):
    ...         self.models[ctx.repeat, ctx.round] = model
    >>> keep = KeepModels()
    >>> config = ExperimentConfig(dataset="digits", method="random", n_initial=20,
    ...                           query_size=10, n_rounds=1, repeats=1, width=2, max_epochs=1)
    >>> result = run_experiment(config, "runs/doctest", progress=False,
    ...                         callbacks=[keep])  # doctest: +SKIP
    >>> sorted(keep.models)  # doctest: +SKIP
    [(0, 0), (0, 1)]
    """

    def on_round_begin(self, ctx: RoundContext, **kwargs: Any) -> None:
        """Call before the round's model is made and trained.

        Parameters
        ----------
        ctx : RoundContext
            The round.
        **kwargs
            Keyword arguments later versions may add (none today).
        """

    def on_fit_end(self, ctx: RoundContext, model: Any, **kwargs: Any) -> None:
        """Call once the round's model is trained on ``ctx.labeled``, before it is scored.

        Parameters
        ----------
        ctx : RoundContext
            The round.
        model : object
            The fitted model (the method's estimator, or the runner's
            :class:`skal.ActiveLearner` for a method that builds a learner).
        **kwargs
            Keyword arguments later versions may add (none today).
        """

    def on_query_end(self, ctx: RoundContext, model: Any, new_indices: np.ndarray,
                     **kwargs: Any) -> None:
        """Call once the round's query picked the next samples to label.

        Parameters
        ----------
        ctx : RoundContext
            The round (``ctx.labeled`` does not hold the new samples yet).
        model : object
            The fitted model that was queried.
        new_indices : ndarray of int64
            The pool indices labelled next, in the order the strategy returned them.
        **kwargs
            Keyword arguments later versions may add (none today).
        """

    def on_round_end(self, ctx: RoundContext, model: Any, row: dict[str, Any],
                     **kwargs: Any) -> None:
        """Call once the round is saved in the checkpoint.

        Parameters
        ----------
        ctx : RoundContext
            The round.
        model : object
            The round's fitted model.
        row : dict
            The round's result row (a copy; the keys of the run's ``results.csv``).
        **kwargs
            Keyword arguments later versions may add (none today).
        """
