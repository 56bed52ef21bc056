"""Prediction through a learner's estimator: what :class:`skal.ActiveLearner` answers as a model.

:class:`LearnerPredictionMixin` gives the learner the estimator's ``predict``, ``predict_proba``,
``sample_proba`` (MC dropout) and ``score``, each refused with scikit-learn's ``NotFittedError``
before the first fit, and modAL's ``transform_without_estimating`` (a Pipeline's transformers),
so that strategies, committees and scikit-learn's scorers can take the learner where they take an
estimator.
"""

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..utils.typing import ArrayLike

__all__ = ["LearnerPredictionMixin"]


class LearnerPredictionMixin:
    """``predict``, ``predict_proba``, ``sample_proba`` and ``score`` of the learner's estimator.

    The host class provides ``estimator`` (the fitted one once the learner is fitted).
    """

    def transform_without_estimating(self, X: ArrayLike) -> ArrayLike:
        """Transform ``X`` as the final estimator sees it: through a Pipeline's transformers.

        What modAL's learners offer for strategies and committees with ``on_transformed=True``.

        Parameters
        ----------
        X : array-like of shape (n, ...)
            Samples in the layout the learner is given.

        Returns
        -------
        X_transformed : array-like of shape (n, ...)
            ``X`` through every step but the last when the estimator is a ``Pipeline``,
            otherwise ``X`` itself.
        """
        from sklearn.pipeline import Pipeline

        if isinstance(self.estimator, Pipeline):
            return self.estimator[:-1].transform(X)
        return X

    def _check_fitted(self):
        fitted = vars(self).get("estimator_")
        if fitted is not None and not hasattr(fitted, "__sklearn_tags__"):
            return  # a duck-typed model (fit, predict_proba) that this learner fitted
        check_is_fitted(self.estimator)  # estimator_ once fitted; the parameter raises before

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predict labels with the estimator.

        Parameters
        ----------
        X : array-like of shape (n, ...)
            Samples in the layout the estimator takes.

        Returns
        -------
        y_pred : ndarray of shape (n,)
            ``estimator.predict(X)``.
        """
        self._check_fitted()
        return self.estimator.predict(X)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Predict class probabilities with the estimator.

        Parameters
        ----------
        X : array-like of shape (n, ...)
            Samples in the layout the estimator takes.

        Returns
        -------
        proba : ndarray of shape (n, n_classes)
            ``estimator.predict_proba(X)``.
        """
        self._check_fitted()
        return self.estimator.predict_proba(X)

    def sample_proba(self, X: ArrayLike, n_samples: int = 20, **kwargs: Any) -> np.ndarray:
        """Draw MC-dropout class probabilities from the estimator.

        Parameters
        ----------
        X : array-like of shape (n, ...)
            Samples in the layout the estimator takes.
        n_samples : int, default=20
            Number of MC passes T.
        **kwargs
            Passed to ``estimator.sample_proba`` (e.g. ``random_state=``).

        Returns
        -------
        proba : ndarray of shape (n_samples, n, n_classes)
            ``estimator.sample_proba(X, n_samples=n_samples, **kwargs)``.
        """
        self._check_fitted()
        return self.estimator.sample_proba(X, n_samples=n_samples, **kwargs)

    def score(self, X: ArrayLike, y: ArrayLike) -> float:
        """Return the estimator's score (accuracy for a classifier) on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n, ...)
            Test samples.
        y : array-like of shape (n,)
            Their true labels.

        Returns
        -------
        score : float
            ``estimator.score(X, y)``.
        """
        self._check_fitted()
        return self.estimator.score(X, y)
