"""The per-fit data of BGADL's generative terms, prepared when skorch builds the training loader.

:class:`BGADLFitDataMixin` turns the training split into tensors for the extra VAE-ACGAN batches,
picks the newly acquired rows (``new_rows``, for ``rec_source="new"``) and seeds the noise and
draw generators of one fit. None of it outlives the fit (``_fit_state`` is never pickled).
"""

import warnings
from typing import Any

import numpy as np
import torch

from ...utils.params import Int
from ...utils.skorch_compat import dataset_arrays, full_length
from ._generation import check_unit_range

__all__ = ["BGADLFitDataMixin"]


class BGADLFitDataMixin:
    """``get_iterator`` that also prepares ``_fit_state``, the tensors and generators of one fit.

    The host class provides ``generative``, ``joint``, ``device``, the ``_new_rows`` of the
    current ``fit`` call, ``_gan_seed_now()`` and, for ``joint=False``,
    ``_fit_separate_vae_acgan(X, y, mask, seed)`` (the separate VAE-ACGAN and its x').
    """

    def get_iterator(self, dataset: Any, training: bool = False) -> Any:
        """Return the parent's loader; for training, also prepare the per-fit BGADL data.

        The loader shuffles training batches and joins a last batch of one to the one before.
        For the generative modes a training loader also prepares the training rows (for extra
        VAE-ACGAN batches), the new rows (``rec_source="new"``) and, with ``joint=False``, the
        separate VAE-ACGAN and its x'.

        Parameters
        ----------
        dataset : torch Dataset
            The data to iterate over.
        training : bool, default=False
            Training batches or prediction batches.

        Returns
        -------
        iterator : torch.utils.data.DataLoader
            The batches.
        """
        iterator = super().get_iterator(dataset, training=training)
        if training and self.generative:
            self._prepare_fit_state(dataset, len(iterator))
        return iterator

    def _prepare_fit_state(self, dataset, n_batches):
        X, y, rows = dataset_arrays(dataset, type(self).__name__)
        check_unit_range(self, X)
        mask = self._new_mask(full_length(dataset))
        mask = mask[rows] if rows is not None else mask
        if not mask.any():
            warnings.warn(
                f"None of the new_rows of this {type(self).__name__}.fit is in the training "
                "split (train_split held them all out); the generated terms use every training "
                "row instead.",
                UserWarning,
                stacklevel=4,
            )
            mask[:] = True
        seed = self._gan_seed_now()
        state = {
            "n_batches": n_batches,
            "X": torch.from_numpy(np.ascontiguousarray(X)),
            "y": torch.from_numpy(np.ascontiguousarray(y)),
            "X_new": torch.from_numpy(np.ascontiguousarray(X[mask])),
            "y_new": torch.from_numpy(np.ascontiguousarray(y[mask])),
            "noise": torch.Generator(device=torch.device(self.device)).manual_seed(seed + 1),
            "draw": torch.Generator().manual_seed(seed + 2),
            "credit": 0.0,
            "epoch": 0,
            "weight": 0.0,
            "first": {},  # each loss's first batch value: the reference for explosions
        }
        if not self.joint:
            state.update(self._fit_separate_vae_acgan(X, y, mask, seed))
        self._fit_state = state


    def _new_mask(self, n):
        """The ``new_rows`` of the current fit as a boolean mask over the n rows of X."""
        new_rows = getattr(self, "_new_rows", None)
        mask = np.zeros(n, dtype=bool)
        if new_rows is None:
            mask[:] = True
            return mask
        owner = type(self).__name__
        if Int(1, n).is_satisfied_by(new_rows):
            mask[n - int(new_rows):] = True
            return mask
        rows = np.asarray(new_rows)
        if rows.dtype == bool and rows.shape == (n,) and rows.any():
            return rows.copy()
        if rows.ndim == 1 and rows.size and rows.dtype.kind in "iu" and rows.min() >= 0 and (
                rows.max() < n):
            mask[rows] = True
            return mask
        raise ValueError(
            f"The 'new_rows' parameter of {owner}.fit must be None, {Int(1, n)}, indices "
            f"of rows of X or a boolean mask of length {n} with a True. Got {new_rows!r} "
            "instead."
        )
