"""Images from a fitted BGADL classifier's VAE-ACGAN: ``sample`` (x' = G(E(x), y)) and
``generate`` (G(z, y)), for :mod:`skal.estimators.bgadl` and :class:`skal.GenerativeAugmenter`."""


import numpy as np
import torch
from sklearn.utils import column_or_1d
from sklearn.utils.validation import check_is_fitted

from ...exceptions import DivergenceError
from ...nets.vae_acgan import reparameterize
from ...utils.modes import EvalMode
from ...utils.typing import ArrayLike, RandomStateLike
from ...utils.validation import resolve_seed

__all__ = ["BGADLGenerationMixin", "check_unit_range"]

_RANGE_TOL = 1e-4  # float images may overshoot [0, 1] by rounding (e.g. after a MinMaxScaler)


def _batches(n, batch_size):
    step = max(int(batch_size), 1)
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def _finite_images(owner, out):
    if not np.isfinite(out).all():  # pragma: no cover - fit checks the weights
        raise DivergenceError(
            f"{type(owner).__name__} produced NaN or infinite images; refit it with a lower lr."
        )
    return out


def check_unit_range(owner, X):
    if X.size and (X.min() < -_RANGE_TOL or X.max() > 1 + _RANGE_TOL):
        raise ValueError(
            f"{type(owner).__name__} needs images with values in [0, 1] (the range of its "
            f"generator); X ranges over [{X.min():.4g}, {X.max():.4g}]. Pass uint8 images "
            "(scaled automatically) or scale the data, e.g. with sklearn's MinMaxScaler."
        )


class BGADLGenerationMixin:
    """Generation from a fitted BGADL classifier (see the module docstring)."""

    def _check_generator_fitted(self):
        if self.generative and not self.joint:
            check_is_fitted(self, ["vae_acgan_"])
        elif not self.generative:
            raise AttributeError(
                f"This {type(self).__name__} was built with generative=False: it has no "
                "VAE-ACGAN to sample from."
            )
        else:
            check_is_fitted(self, ["encoder_", "generator_", "label_encoder_"])

    def _encode_labels(self, y):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        y = column_or_1d(np.asarray(y), warn=True)
        unknown = np.setdiff1d(y, self.classes_)
        if len(unknown):
            raise ValueError(
                f"y contains labels {unknown.tolist()} not among the classes this "
                f"{type(self).__name__} was fitted with: {self.classes_.tolist()}."
            )
        return y, self.label_encoder_.transform(y).astype(np.int64)

    def _sample_encoded(self, X, y_idx, seed):
        """x' = G(E(x), y) for validated images X and class indices y_idx (eval mode)."""
        if not self.joint:
            gan = self.vae_acgan_
            return gan._sample_encoded(X, gan.label_encoder_.transform(y_idx), seed)
        noise = torch.Generator(device=torch.device(self.device)).manual_seed(seed)
        out = np.empty(X.shape, dtype=np.float32)
        with EvalMode(self.encoder_, self.generator_), torch.no_grad():
            for s in _batches(len(X), self.batch_size):
                xb = torch.as_tensor(X[s], device=self.device)
                yb = torch.as_tensor(y_idx[s], device=self.device)
                mu, log_var = self.encoder_(xb)
                z = reparameterize(mu, log_var, generator=noise)
                out[s] = self.generator_(z, self._onehot(yb, z.dtype)).cpu().numpy()
        return _finite_images(self, out)

    def _generate_encoded(self, y_idx, seed):
        """G(z, y) for class indices y_idx, z ~ N(0, I) (eval mode)."""
        if not self.joint:
            gan = self.vae_acgan_
            return gan._generate_encoded(gan.label_encoder_.transform(y_idx), seed)
        noise = torch.Generator(device=torch.device(self.device)).manual_seed(seed)
        out = np.empty((len(y_idx), *self.input_shape_), dtype=np.float32)
        with EvalMode(self.generator_), torch.no_grad():
            for s in _batches(len(y_idx), self.batch_size):
                yb = torch.as_tensor(y_idx[s], device=self.device)
                z = torch.randn((len(yb), int(self.latent_dim)), generator=noise,
                                device=torch.device(self.device))
                out[s] = self.generator_(z, self._onehot(yb, z.dtype)).cpu().numpy()
        return _finite_images(self, out)

    def sample(
        self, X: ArrayLike, y: ArrayLike, *, random_state: RandomStateLike = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Generate variations x' = G(E(x), y) of labelled images: the BGADL step.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W) or (n, H, W)
            Images of the fitted shape, values in [0, 1].
        y : array-like of shape (n,)
            Their labels, among ``classes_``.
        random_state : None, int, RandomState or Generator, default=None
            Seeds the latent noise; ``None`` falls back to the estimator's ``random_state``.

        Returns
        -------
        X_gen : ndarray of float32, shape (n, C, H, W)
            Generated images with values in [0, 1].
        y_gen : ndarray of shape (n,)
            The labels ``y``.
        """
        self._check_generator_fitted()
        X = self._validate_X(X, reset=False)
        check_unit_range(self, X)
        y, y_idx = self._encode_labels(y)
        if len(y) != len(X):
            raise ValueError(
                f"X and y have inconsistent numbers of samples: {len(X)} and {len(y)}."
            )
        seed = resolve_seed(self.random_state if random_state is None else random_state)
        return self._sample_encoded(np.clip(X, 0.0, 1.0), y_idx, seed), y.copy()

    def generate(self, y: ArrayLike, *, random_state: RandomStateLike = None) -> np.ndarray:
        """Draw class-conditional images G(z, y), z ~ N(0, I).

        Parameters
        ----------
        y : array-like of shape (n,)
            The class of each image, among ``classes_``.
        random_state : None, int, RandomState or Generator, default=None
            Seeds z; ``None`` falls back to the estimator's ``random_state``.

        Returns
        -------
        X_gen : ndarray of float32, shape (n, C, H, W)
            Generated images with values in [0, 1], one per entry of ``y``.
        """
        self._check_generator_fitted()
        _, y_idx = self._encode_labels(y)
        seed = resolve_seed(self.random_state if random_state is None else random_state)
        return self._generate_encoded(y_idx, seed)
