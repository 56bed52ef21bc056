"""Monte-Carlo dropout sampling and penultimate features of a fitted skal classifier.

:class:`MCDropoutSamplingMixin` gives :class:`skal.MCDropoutClassifier` its
:meth:`~MCDropoutSamplingMixin.sample_proba` (stochastic passes with only dropout active, the
deterministic features computed once when the module allows it) and
:meth:`~MCDropoutSamplingMixin.embed` (the input of the last ``nn.Linear``, for the feature-space
strategies).
"""

import warnings

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._modes import _MCDropoutMode
from ._params import Int, check_params
from ._pool import is_lazy_pool
from ._precision import as_float32, to_memory_format
from ._skorch_compat import predict_nonlinearity
from ._typing import ArrayLike, RandomStateLike
from ._validation import resolve_seed, torch_rng

__all__ = ["MCDropoutSamplingMixin"]


def _dropout_modules(module):
    return [m for m in module.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]


def _dropout_free_features(module, dropouts, x_probe, device):
    """Whether ``module.features`` runs no dropout layer (so features may be reused across MC
    passes). Probed on one sample with forward hooks, on a forked RNG so no randomness is used up.
    """
    fired = []
    hooks = [m.register_forward_hook(lambda *_: fired.append(1)) for m in dropouts]
    try:
        with torch.random.fork_rng(devices=[]):
            module.features(torch.as_tensor(x_probe, device=device))
    finally:
        for h in hooks:
            h.remove()
    return not fired


class MCDropoutSamplingMixin:
    """MC-dropout samples and features of a fitted skal classifier (see the module docstring)."""

    def sample_proba(
        self,
        X: ArrayLike,
        n_samples: int = 20,
        *,
        random_state: RandomStateLike = None,
        cache: bool = True,
    ) -> np.ndarray:
        """Monte-Carlo dropout: ``n_samples`` stochastic passes with only dropout active.

        BatchNorm and every other layer stay in eval mode. When the module has ``features`` and
        ``head`` and no dropout runs inside ``features``, the features are computed once per batch
        and only the head is sampled: exact, and about ``n_samples`` times cheaper.

        Parameters
        ----------
        X : array-like, np.memmap or torch Dataset
            A memmap or Dataset is read one chunk at a time (the output still holds
            ``n_samples * n * n_classes`` floats: :func:`skal.bald` calls this per chunk).
        n_samples : int, default=20
            Number of MC passes T.
        random_state : None, int, RandomState or Generator, default=None
            Seeds the dropout masks; ``None`` falls back to the estimator's ``random_state``.
        cache : bool, default=True
            Reuse the deterministic features across passes when the module allows it.

        Returns
        -------
        proba : ndarray of float32, shape (n_samples, n, n_classes)
            The layout of scikit-activeml's ``sample_proba``.
        """
        if is_lazy_pool(X):
            check_is_fitted(self, ["module_", "label_encoder_"])
            n_rows, chunks = len(X), self._pool_chunks(X)
        else:
            X = self._check_fitted_X(X)
            n_rows, chunks = len(X), iter([(0, X)])
        check_params(self, {"n_samples": [Int(1)]}, {"n_samples": n_samples},
                     caller_name=f"{type(self).__name__}.sample_proba")
        seed = resolve_seed(
            self.random_state if random_state is None else random_state,
            owner=f"{type(self).__name__}.sample_proba",
        )
        module = self.module_
        dropouts = _dropout_modules(module)
        if not self._n_dropout_layers():
            warnings.warn(
                f"The module of {type(self).__name__} has no dropout layer with p > 0, so the "
                f"{n_samples} passes of sample_proba are identical (no MC-dropout uncertainty).",
                UserWarning,
                stacklevel=2,
            )
        use_head = cache and callable(getattr(module, "features", None)) and callable(
            getattr(module, "head", None)
        )
        nonlin = predict_nonlinearity(self)
        out = np.empty((n_samples, n_rows, len(self.classes_)), dtype=np.float32)
        device = self._compute_device()
        with _MCDropoutMode(module, dropouts), torch.no_grad(), torch_rng(seed, device):
            for offset, X in chunks:  # one chunk of the pool at a time
                if use_head and offset == 0:
                    probe = to_memory_format(torch.as_tensor(X[:1], device=device),
                                             self.memory_format)
                    with self._autocast():
                        use_head = _dropout_free_features(module, dropouts, probe, device)
                for start in range(0, len(X), self.batch_size):
                    xb = torch.as_tensor(X[start:start + self.batch_size], device=device)
                    xb = to_memory_format(xb, self.memory_format)
                    stop = offset + start + len(xb)
                    with self._autocast():
                        if use_head:
                            z = module.features(xb)  # deterministic: once per batch
                        for t in range(n_samples):
                            logits = module.head(z) if use_head else module(xb)
                            if isinstance(logits, tuple):
                                logits = logits[0]
                            proba = nonlin(as_float32(logits))
                            out[t, offset + start:stop] = proba.float().cpu().numpy()
        return out

    def _n_dropout_layers(self):
        """How many dropout layers with p > 0 the fitted module has (MC dropout samples them)."""
        check_is_fitted(self, ["module_"])
        return sum(1 for m in _dropout_modules(self.module_) if m.p > 0)

    def embed(
        self, X: ArrayLike, *, return_proba: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Penultimate features: the input of the network's last ``nn.Linear`` (eval mode).

        One forward pass per batch, dropout off; with ``return_proba=True`` the probabilities of
        the same pass come too (what BADGE needs). For :class:`ResNet18Classifier` the features
        are ``module_.features(x)``; for an MLP, its last hidden activation. The feature-space
        strategies (:func:`skal.badge`, :func:`skal.coreset`, :func:`skal.typiclust`) use it.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, n_features)
            Samples, in the layout of the training data.
        return_proba : bool, default=False
            Also return the class probabilities of the same pass.

        Returns
        -------
        features : ndarray of float32, shape (n, d)
            The input of the last ``nn.Linear`` layer, per sample.
        proba : ndarray of float32, shape (n, n_classes)
            Only with ``return_proba=True``; equal to :meth:`predict_proba`.

        Raises
        ------
        TypeError
            If the module has no ``nn.Linear`` layer.
        """
        from ._embedding import penultimate_pass

        X = self._check_fitted_X(X)
        features, proba = penultimate_pass(
            self.module_, X, batch_size=self.batch_size, device=self.device,
            nonlinearity=predict_nonlinearity(self), return_proba=return_proba,
            owner=type(self).__name__,
        )
        return (features, proba) if return_proba else features
