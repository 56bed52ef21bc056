"""WAAL's scores on a pool: the critic's ``g(x)`` and the query score ``U(x) - selection g(x)``.

:class:`WAALScoringMixin` gives :class:`skal.WAALClassifier` :meth:`~WAALScoringMixin.critic_score`
and :meth:`~WAALScoringMixin.waal_score` (what :func:`skal.waal_uncertainty_diversity` ranks by):
one forward pass per batch with every network in eval mode, a memmap or Dataset pool read one
chunk at a time, and non-finite scores refused.
"""

import warnings

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch.nn import functional as F

from ...data import is_lazy_pool
from ...exceptions import DivergenceError
from ...losses import UNCERTAINTY_ALIASES, waal_query_score
from ...utils.modes import EvalMode
from ...utils.params import Float, check_params
from ...utils.typing import ArrayLike
from .._precision import to_memory_format

__all__ = ["WAALScoringMixin"]


class WAALScoringMixin:
    """Scoring of a fitted :class:`skal.WAALClassifier` (see the module docstring)."""

    def _pool_batches(self, X):
        batch_size = self.get_params_for("iterator_valid").get("batch_size", self.batch_size)
        if batch_size == -1:
            batch_size = max(len(X), 1)
        for start in range(0, len(X), batch_size):
            xb = torch.as_tensor(X[start:start + batch_size], device=self._compute_device())
            yield to_memory_format(xb, self.memory_format)

    def _scoring_chunks(self, X):
        """``(start, validated rows)``: the whole array, or a lazy pool chunk by chunk."""
        if is_lazy_pool(X):
            check_is_fitted(self, ["module_", "label_encoder_"])
            return self._pool_chunks(X)
        return [(0, self._check_fitted_X(X))]

    def _eval_forward(self, chunks, fn):
        """Run ``fn(xb)`` per batch of every chunk, every network in eval mode, no gradients."""
        out = []
        with EvalMode(self.module_, self.critic_), torch.no_grad():
            for _, X in chunks:
                for xb in self._pool_batches(X):
                    with self._autocast():
                        scores = fn(xb)
                    out.append(scores.float().cpu())  # (b,): n floats in all
        return torch.cat(out).numpy() if out else np.empty(0, dtype=np.float32)

    def _check_scores(self, scores, what):
        if not np.all(np.isfinite(scores)):
            bad = int(np.sum(~np.isfinite(scores)))
            raise DivergenceError(
                f"The {what} of {type(self).__name__} is not finite for {bad} of {len(scores)} "
                "samples: training diverged (refit with a lower lr or mu)."
            )
        return scores

    def critic_score(self, X: ArrayLike) -> np.ndarray:
        """Return the critic's output ``g(x)`` per row (eval mode): near 1 = "looks unlabelled".

        Parameters
        ----------
        X : array-like, np.memmap or torch Dataset
            Samples, in the layout of the training data. A memmap or Dataset is read one chunk
            at a time; only the n scores are kept.

        Returns
        -------
        scores : ndarray of float32, shape (n,)
            The critic's g(x), in [0, 1].
        """
        chunks = self._scoring_chunks(X)
        features, critic = self.module_.features, self.critic_
        scores = self._eval_forward(chunks, lambda xb: critic(features(xb)))
        return self._check_scores(scores, "critic score g(x)")

    def waal_score(
        self,
        X: ArrayLike,
        *,
        selection: float | None = None,
        mixture: float | None = None,
        uncertainty: str | None = None,
        kind: str | None = None,
    ) -> np.ndarray:
        """Return WAAL's query score ``U(x) - selection * g(x)`` per row; smaller is better.

        One forward pass: the features of each batch are computed once and fed to both the head
        (for ``U``, from ``log_softmax``) and the critic (eval mode).

        Parameters
        ----------
        X : array-like, np.memmap or torch Dataset
            Samples, in the layout of the training data. A memmap or Dataset is read one chunk
            at a time; only the n scores are kept.
        selection : float or None, default=None
            Weight of the critic's score; None uses the estimator's ``selection``.
        mixture : float or None, default=None
            Mixture coefficient of the uncertainty bound; None uses the estimator's.
        uncertainty : {"linf_l1", "l2_l1"} or None, default=None
            The uncertainty bound; None uses the estimator's ``uncertainty``.
        kind : {"paper", "code"} or None, default=None
            Deprecated alias of ``uncertainty``.

        Returns
        -------
        scores : ndarray of float32, shape (n,)
            ``U(x) - selection * g(x)``; the query takes the smallest.
        """
        chunks = self._scoring_chunks(X)
        check_params(self, {"selection": [None, Float()]}, {"selection": selection},
                     caller_name="waal_score")
        if kind is not None:
            warnings.warn(
                "The 'kind' parameter of waal_score is deprecated: use uncertainty="
                f"{UNCERTAINTY_ALIASES.get(kind, kind)!r} (kind={kind!r}) instead.",
                DeprecationWarning, stacklevel=2,
            )
            uncertainty = UNCERTAINTY_ALIASES.get(kind, kind)
        selection = self.selection if selection is None else selection
        mixture = self.mixture if mixture is None else mixture
        uncertainty = self._uncertainty_kind() if uncertainty is None else uncertainty
        features, head, critic = self.module_.features, self.module_.head, self.critic_

        def score(xb):
            z = features(xb)  # (b, d), shared by head and critic
            log_proba = F.log_softmax(head(z).float(), dim=1)  # (b, K)
            return waal_query_score(log_proba, critic(z).float(), selection, mixture, uncertainty)

        return self._check_scores(self._eval_forward(chunks, score), "WAAL query score")
