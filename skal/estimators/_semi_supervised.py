"""Labelled and unlabelled rows in one ``fit``: scikit-learn's semi-supervised convention.

An estimator that trains on unlabelled data too (:class:`skal.WAALClassifier`) takes them as rows
of ``y`` equal to an *unlabelled marker* (-1, as in ``sklearn.semi_supervised``) or as a separate
``X_unlabeled``. :func:`split_labeled` validates both forms and returns the labelled and the
unlabelled rows; the marker must never be mistaken for a class or vice versa.
"""

import numbers

import numpy as np
import torch
from sklearn.utils import check_consistent_length, column_or_1d

from ..data import as_pool, is_lazy_pool
from ..utils.validation import validate_images

__all__ = ["LazyRows", "UnlabeledRowsMixin", "marker_collision", "split_labeled",
           "unlabeled_mask"]


def unlabeled_mask(y, marker):
    """Boolean mask of the entries of ``y`` equal to ``marker`` (NaN matches NaN; None: none).

    A marker of another kind than the labels (a number among strings, a string among numbers)
    matches nothing rather than raising or comparing element-wise.
    """
    if marker is None:
        return np.zeros(len(y), dtype=bool)
    if isinstance(marker, float) and np.isnan(marker):
        if y.dtype.kind == "f":
            return np.isnan(y)
        return np.array([isinstance(v, float) and np.isnan(v) for v in y], dtype=bool)
    if y.dtype.kind in "biuf" and not isinstance(marker, (numbers.Number, np.number)):
        return np.zeros(len(y), dtype=bool)
    if y.dtype.kind in "US" and not isinstance(marker, (str, bytes)):
        return np.zeros(len(y), dtype=bool)
    mask = y == marker
    if not isinstance(mask, np.ndarray) or mask.shape != y.shape:
        mask = np.array([v == marker for v in y], dtype=bool)
    return mask.astype(bool)


def marker_collision(marker, where):
    """The ``ValueError`` for a marker that ``where`` (e.g. "is one of the classes")."""
    return ValueError(
        f"The unlabeled marker {marker!r} {where}. If {marker!r} is a real class, set "
        "unlabeled_marker to a value that is not a class (or None, and pass the unlabelled rows "
        "as X_unlabeled=)."
    )


_IN_Y = ("appears in y although X_unlabeled was given, so it would be read as 'unlabelled' rather "
         "than as a class")


def split_labeled(estimator, X, y, X_unlabeled, *, marker, classes, validate_X,
                  validate_X_unlabeled):
    """Validate ``fit``'s input and split it into labelled ``(X_l, y_l)`` and unlabelled ``X_u``.

    Parameters
    ----------
    estimator : estimator
        Named in the messages.
    X, y : array-like
        The training rows; rows with ``y == marker`` are unlabelled (unless ``X_unlabeled`` is
        given, when ``y`` must not contain the marker).
    X_unlabeled : array-like or None
        Unlabelled rows of the same per-sample shape; an empty one counts as None.
    marker : scalar or None
        The unlabelled marker.
    classes : array-like or None
        The classes the estimator is (or will be) fitted with; the marker must not be one.
    validate_X, validate_X_unlabeled : callable
        ``X -> validated X`` for ``X`` and for ``X_unlabeled``.

    Returns
    -------
    X_l, y_l, X_u : ndarray
        The labelled rows, their labels (not yet validated as classification targets), and the
        unlabelled rows (possibly empty).
    """
    X = validate_X(X)
    if y is None:
        raise ValueError(
            f"{type(estimator).__name__} requires y to be passed, but the target y is None."
        )
    y = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    mask = unlabeled_mask(y, marker) if y.ndim == 1 else np.zeros(len(y), dtype=bool)
    if classes is not None and marker is not None and np.any(
            unlabeled_mask(np.asarray(classes), marker)):
        raise marker_collision(marker, "is one of the classes")
    if X_unlabeled is not None and len(X_unlabeled) == 0:  # e.g. an exhausted pool
        X_unlabeled = None
        if mask.any():
            raise marker_collision(marker, _IN_Y)
    if X_unlabeled is not None:
        if mask.any():
            raise marker_collision(marker, _IN_Y)
        try:
            X_u = validate_X_unlabeled(X_unlabeled)
        except ValueError as exc:
            raise ValueError(
                f"X_unlabeled must have the same per-sample shape as X "
                f"{tuple(estimator.input_shape_)}: {exc}"
            ) from None
    else:
        X_u = X[mask]
    if mask.all():
        raise ValueError(
            f"y has no labelled sample: all {len(y)} entries are the unlabeled marker "
            f"{marker!r}. WAAL needs labelled samples of at least 2 classes."
        )
    return X[~mask], y[~mask], X_u


class LazyRows:
    """Rows of a lazy pool (memmap, Dataset) read and validated per batch, as a float32 tensor."""

    def __init__(self, pool, validate):
        self.pool, self.validate = pool, validate

    def __len__(self):
        return len(self.pool)

    def __getitem__(self, rows):
        rows = np.asarray(rows, dtype=np.int64)  # (b,) positions in the pool
        return torch.from_numpy(np.ascontiguousarray(self.validate(self.pool.take(rows))))


class UnlabeledRowsMixin:
    """``X_unlabeled`` of an estimator that trains on the pool too (WAAL, FixMatch): validated,
    and a lazy pool kept lazy."""

    def _unlabeled_rows(self, X_unlabeled):
        """Validated unlabelled rows; a lazy pool (memmap, Dataset) is checked on one row and
        read per batch."""
        if is_lazy_pool(X_unlabeled):
            pool = as_pool(X_unlabeled)
            self._validate_X_unlabeled(pool.take([0]))
            return LazyRows(pool, self._validate_X_unlabeled)
        return self._validate_X_unlabeled(X_unlabeled)

    def _validate_X_unlabeled(self, X_unlabeled):
        return validate_images(
            self, X_unlabeled, reset=False, image_shape=self.image_shape, flat_ok=self._flat_ok,
            input_name="X_unlabeled",
        )

    @staticmethod
    def _unlabeled_tensor(X_unlabeled):
        """The rows as a tensor for the training batches (a lazy pool stays lazy)."""
        if isinstance(X_unlabeled, LazyRows):
            return X_unlabeled
        return torch.from_numpy(np.ascontiguousarray(X_unlabeled))
