"""Monte-Carlo dropout sampling and penultimate features of a fitted skal classifier.

:class:`MCDropoutSamplingMixin` gives :class:`skal.MCDropoutClassifier` its
:meth:`~MCDropoutSamplingMixin.sample_proba` (stochastic passes with only dropout active, the
deterministic features computed once when the module allows it) and
:meth:`~MCDropoutSamplingMixin.embed` (the input of the last ``nn.Linear``, for the feature-space
strategies).

MC dropout is *consistent*: pass ``t`` is one draw of the network's weights for the whole pool, so
every row sees the same dropout mask in pass ``t`` (:class:`ConsistentDropout`). Joint scores
(BatchBALD, EPIG) need this: with a fresh mask per row, two copies of one image would look like
independent points. The masks depend only on the seed, the layer and the per-row shape, never on
the batch, the chunk or the process that scores a row.
"""

import math
import warnings

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..data import is_lazy_pool
from ..utils.modes import EvalMode
from ..utils.params import Int, check_params
from ..utils.skorch_compat import predict_nonlinearity
from ..utils.typing import ArrayLike, RandomStateLike
from ..utils.validation import resolve_seed, torch_rng
from ._precision import as_float32, to_memory_format

__all__ = ["ConsistentDropout", "MCDropoutSamplingMixin"]

# the SELU constant of torch's alpha dropout (the value a dropped unit is set to, before scaling)
_ALPHA = 1.7580993408473766
_FEATURE_DROPOUT = (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.FeatureAlphaDropout)
_ALPHA_DROPOUT = (nn.AlphaDropout, nn.FeatureAlphaDropout)


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


class ConsistentDropout(EvalMode):
    """Context manager: MC dropout with one mask per pass shared by every row (one weight draw).

    Inside the block, ``module`` is in eval mode, dropout layers included, and each dropout layer
    with ``p > 0`` is followed by a forward hook that applies the mask of the current pass
    :attr:`t` instead: ``x * mask[t] / (1 - p)``, the mask broadcast over the batch. An element
    dropout layer draws one Bernoulli mask per feature (the whole per-row shape); ``Dropout1d``,
    ``Dropout2d`` and ``Dropout3d`` one per channel; ``AlphaDropout`` and ``FeatureAlphaDropout``
    use torch's alpha-dropout formula with the shared mask.

    The ``n_passes`` masks of a layer are drawn when it first runs, on the CPU, from a generator
    seeded by ``(seed, layer number, per-row shape)``: they do not depend on the batch size, the
    order or size of the chunks, the device, or which process scores the rows.

    Parameters
    ----------
    module : torch.nn.Module
        The network; its modes are restored on exit.
    n_passes : int
        T, the number of masks per layer.
    seed : int
        Seeds the masks.

    Attributes
    ----------
    t : int
        The pass whose masks the next forward uses (0 to ``n_passes - 1``).
    """

    def __init__(self, module, n_passes, seed):
        super().__init__(module)
        self.n_passes, self.seed, self.t = int(n_passes), int(seed), 0
        self.dropouts = [m for m in _dropout_modules(module) if m.p > 0]
        self._masks = {}

    def __enter__(self):
        super().__enter__()
        self._hooks = [m.register_forward_hook(self._hook(k, m))
                       for k, m in enumerate(self.dropouts)]
        return self

    def __exit__(self, *exc):
        for h in self._hooks:
            h.remove()
        self._masks.clear()
        return super().__exit__(*exc)

    def _mask(self, k, layer, row_shape, device, dtype):
        """The ``(n_passes, *row_shape)`` keep-masks of layer ``k``, drawn once per call."""
        key = (k, row_shape, device, dtype)
        if key not in self._masks:
            shape = row_shape
            if isinstance(layer, _FEATURE_DROPOUT):  # one draw per channel, broadcast over space
                shape = row_shape[:1] + (1,) * (len(row_shape) - 1)
            words = np.random.SeedSequence([self.seed, k, *row_shape]).generate_state(2)
            gen = torch.Generator().manual_seed(int(words[0]) << 32 | int(words[1]))
            keep = torch.rand((self.n_passes, *shape), generator=gen) >= layer.p
            self._masks[key] = keep.to(device=device, dtype=dtype)
        return self._masks[key]

    def _hook(self, k, layer):
        def apply(mod, inputs, output):
            x = inputs[0]
            keep = self._mask(k, layer, tuple(x.shape[1:]), x.device, x.dtype)[self.t]
            p = layer.p
            if isinstance(layer, _ALPHA_DROPOUT):
                if p == 1:
                    return torch.zeros_like(x)  # torch's alpha_dropout at p = 1
                a = 1.0 / math.sqrt((_ALPHA**2 * p + 1) * (1 - p))
                # x * a * keep + b, b = (keep - 1) * alpha * a + alpha * a * p (torch's formula)
                return x * (a * keep) + ((keep - 1) * (_ALPHA * a) + _ALPHA * a * p)
            if p == 1:
                return x * 0
            return x * (keep / (1 - p))  # (n, *row_shape) * (*row_shape): one mask for every row
        return apply


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

        BatchNorm and every other layer stay in eval mode. Pass ``t`` is one weight draw for all
        rows: every row gets the same dropout masks in pass ``t`` (consistent MC dropout, see
        :class:`skal.estimators._mc_dropout.ConsistentDropout`), so two copies of one image get equal
        probabilities in each pass, and the result for a row does not depend on the other rows,
        the batch size, the chunks or the process. When the module has ``features`` and ``head``
        and no dropout runs inside ``features``, the features are computed once per batch and only
        the head is sampled: exact, and about ``n_samples`` times cheaper.

        Parameters
        ----------
        X : array-like, np.memmap or torch Dataset
            A memmap or Dataset is read one chunk at a time (the output still holds
            ``n_samples * n * n_classes`` floats: :func:`skal.bald` calls this per chunk).
        n_samples : int, default=20
            Number of MC passes T.
        random_state : None, int, RandomState or Generator, default=None
            Seeds the dropout masks; ``None`` falls back to the estimator's ``random_state``.
            The same seed gives the same masks, so rows scored in separate calls with one seed
            (chunks, processes) belong to the same T weight draws.
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
        mc = ConsistentDropout(module, n_samples, seed)
        with mc, torch.no_grad(), torch_rng(seed, device):
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
                            mc.t = t
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
