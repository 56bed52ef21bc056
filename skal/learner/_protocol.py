"""modAL's learner protocol on :class:`skal.ActiveLearner`: the labelled set and its refits.

modAL's ``Committee`` and ``CommitteeRegressor`` call these private methods of their learners
(``_add_training_data``, ``_fit_to_known``, ``_fit_on_new``); :class:`ModALProtocolMixin` gives
them skal's semantics: the labelled rows are kept in ``X_training_`` / ``y_training_`` in the
order they were taught (the newest last, which ``rec_source="new"`` relies on), every new batch
is checked against the layout taught so far, and ``bootstrap=True`` (modAL's ``rebag``) resamples
with the learner's ``random_state``.
"""

import numpy as np
from sklearn.utils import _safe_indexing, check_consistent_length

from ..utils.validation import resolve_seed
from ._rows import as_rows, n_rows, sample_shape, stack

__all__ = ["ModALProtocolMixin"]


class ModALProtocolMixin:
    """The labelled set of a learner (``X_training_``, ``y_training_``) and modAL's refit hooks.

    The host class provides ``random_state`` and ``_fit_estimator(X, y, new=(X_new, y_new),
    **fit_kwargs)``, which fits the estimator (``new`` are the rows taught last).
    """

    def _add_training_data(self, X, y):
        """Record newly labelled samples without refitting (modAL's ``_add_training_data``)."""
        check_consistent_length(X, y)
        X, y = as_rows(X), np.asarray(y)
        if getattr(self, "X_training_", None) is None:
            self.X_training_, self.y_training_ = X, y
            self.X_generated_ = self.y_generated_ = None
        else:
            self._check_like_taught(X, y)
            self.X_training_ = stack([self.X_training_, X])
            self.y_training_ = np.concatenate([self.y_training_, y])
        self._n_new = n_rows(X)

    def _check_like_taught(self, X, y):
        have, given = sample_shape(self.X_training_), sample_shape(X)
        if have != given:
            raise ValueError(
                f"teach() was given samples of shape {given} (X has shape {np.shape(X)}), but "
                f"the labelled set's samples have shape {have}: every labelled sample must have "
                "the same layout (reshape X to it)."
            )
        if y.shape[1:] != self.y_training_.shape[1:]:
            raise ValueError(
                f"teach() was given y of shape {y.shape}, but the labels taught so far have "
                f"shape {self.y_training_.shape}: pass y as "
                + ("a 1-d array of shape (n_samples,)." if self.y_training_.ndim == 1
                   else f"an array of shape (n_samples, {', '.join(map(str, have))}).")
            )

    def _fit_to_known(self, bootstrap=False, **fit_kwargs):
        """Refit on all labelled data (modAL's ``_fit_to_known``; ``rebag`` bootstraps it)."""
        X, y = self.X_training_, self.y_training_
        n = n_rows(X)
        n_new = min(getattr(self, "_n_new", n), n)
        new = (_safe_indexing(X, np.arange(n - n_new, n)), y[n - n_new:])
        if bootstrap:
            X, y = self._bootstrap(X, y)
        self._fit_estimator(X, y, new=new, **fit_kwargs)
        return self

    def _fit_on_new(self, X, y, bootstrap=False, **fit_kwargs):
        """Fit on ``(X, y)`` only (modAL's ``_fit_on_new``)."""
        y = np.asarray(y)
        new = (X, y)
        if bootstrap:
            X, y = self._bootstrap(X, y)
        self._fit_estimator(X, y, new=new, **fit_kwargs)
        return self

    def _bootstrap(self, X, y):
        rng = np.random.default_rng(resolve_seed(self.random_state))
        idx = rng.choice(n_rows(X), n_rows(X), replace=True)
        return _safe_indexing(X, idx), y[idx]
