"""Rows of labelled data as :class:`skal.ActiveLearner` keeps them, whatever their container."""

import numpy as np
import scipy.sparse as sp

__all__ = ["as_rows", "n_rows", "sample_shape", "stack"]


def stack(blocks):
    """Concatenate row blocks (numpy arrays, lists, DataFrames, torch tensors, sparse matrices)
    along axis 0."""
    blocks = [b for b in blocks if b is not None]
    first = blocks[0]
    if any(sp.issparse(b) for b in blocks):
        return sp.vstack(blocks, format="csr")
    if hasattr(first, "detach") and hasattr(first, "cpu"):  # torch tensors
        import torch

        return torch.cat([torch.as_tensor(b) for b in blocks])
    if hasattr(first, "iloc"):  # pandas
        import pandas as pd

        return pd.concat(blocks)
    return np.concatenate([np.asarray(b) for b in blocks])


def as_rows(X):
    """Labelled rows as the learner keeps them: sparse input as CSR (which indexes by row)."""
    return X.tocsr() if sp.issparse(X) else X


def n_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def sample_shape(X):
    """The shape of one sample: ``(1, 8, 8)`` for images, ``(64,)`` for flat rows."""
    return tuple(X.shape[1:]) if hasattr(X, "shape") else tuple(np.shape(X)[1:])
