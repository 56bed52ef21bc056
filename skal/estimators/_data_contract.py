"""The scikit-learn data contract of skal's classifiers: what goes in and what comes out.

:class:`ClassifierDataMixin` validates the input (image layouts, ``n_features_in_``,
``input_shape_``) and encodes labels of any type through ``classes_``; :class:`PoolPredictionMixin`
predicts on pools larger than memory one chunk at a time and returns labels from ``classes_``.
Both are mixed into :class:`skal.MCDropoutClassifier` before skorch's ``NeuralNetClassifier``
(whose ``classes_``, ``predict_proba`` and ``predict`` they replace); the fit / predict flow, the
parameters and the network stay in :mod:`skal.estimators`.
"""

import numpy as np
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.validation import check_is_fitted
from skorch.utils import is_dataset

from ..data import Pool, as_pool, is_image_source, is_lazy_pool
from ..utils.typing import ArrayLike
from ..utils.validation import validate_images, validate_labels

__all__ = ["ClassifierDataMixin", "PoolPredictionMixin"]


class ClassifierDataMixin:
    """Input validation and label encoding of a skal classifier (scikit-learn's rules).

    ``X`` is validated by :func:`skal.utils.validation.validate_images` (flat rows are accepted unless
    the class sets ``_flat_ok = False``); ``y`` of any type scikit-learn accepts is encoded with a
    ``LabelEncoder`` (``label_encoder_``), and ``classes_`` reads it. The host class provides
    ``image_shape`` and ``classes`` parameters and calls :meth:`_prepare_fit_data` from ``fit``.
    """

    #: Whether flat ``(n, n_features)`` input may reach the module as it is.
    _flat_ok = True

    def _validate_X(self, X, reset):
        return validate_images(
            self, X, reset=reset, image_shape=self.image_shape, flat_ok=self._flat_ok
        )

    @property
    def classes_(self) -> np.ndarray:
        try:
            return self.label_encoder_.classes_
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__} has no attribute 'classes_' before it is fitted."
            ) from None

    def _encode(self, X, y, reset):
        y = validate_labels(self, X, y, min_classes=2 if reset else 1)
        if reset:
            self.label_encoder_ = LabelEncoder().fit(
                y if self.classes is None else np.asarray(self.classes)
            )
        unknown = np.setdiff1d(y, self.classes_)
        if len(unknown):
            raise ValueError(
                f"y contains labels {unknown.tolist()} not among the classes this "
                f"{type(self).__name__} was fitted with: {self.classes_.tolist()}."
            )
        return self.label_encoder_.transform(y).astype(np.int64)

    def _prepare_fit_data(self, X, y, *, reset, classes, partial):
        """Validate ``X`` and encode ``y``; return ``(X, y, context)`` for :meth:`_train`.

        ``fit`` (re)learns the input shape and the classes when it re-initialises; ``partial_fit``
        learns them on its first call only (``classes`` gives every class then).
        """
        if not partial:
            X = self._validate_X(X, reset=reset)
            return X, self._encode(X, y, reset=reset), {}
        seen = hasattr(self, "input_shape_")  # data seen, or described by image_shape
        X = self._validate_X(X, reset=not seen)
        if not hasattr(self, "label_encoder_") and classes is not None:
            self.label_encoder_ = LabelEncoder().fit(np.asarray(classes))
        return X, self._encode(X, y, reset=not hasattr(self, "label_encoder_")), {}

    def _require_data_description(self):
        if not (hasattr(self, "input_shape_") and hasattr(self, "label_encoder_")):
            raise ValueError(
                f"{type(self).__name__} builds its network from the data. To initialise it "
                "before fit (as modAL's DeepActiveLearner does), pass classes=[...] and "
                "image_shape=(C, H, W)."
            )

    def _check_fitted_X(self, X):
        check_is_fitted(self, ["module_", "label_encoder_"])
        return self._validate_X(X, reset=False)


class PoolPredictionMixin:
    """``predict_proba`` and ``predict`` of a skal classifier, on arrays and on lazy pools.

    A ``np.memmap``, a torch ``Dataset`` or a :class:`skal.data.Pool` is read one chunk at a
    time (each chunk a whole number of batches, so the batches are those of the unchunked pool),
    validated by ``_check_fitted_X`` (:class:`ClassifierDataMixin`) and scored by skorch's
    ``predict_proba``; labels come from ``classes_``.
    """

    def _pool_chunks(self, X):
        """``(start, rows)`` per chunk of a pool (memmap, Dataset, Pool), rows validated.

        Chunks hold a whole number of batches, so the batches (and MC-dropout masks) are those of
        the unchunked pool.
        """
        pool = as_pool(X)
        batch = self.batch_size if self.batch_size and self.batch_size > 0 else pool.chunk_size
        pool = Pool(pool, chunk_size=max(batch, pool.chunk_size // batch * batch))
        if len(pool) == 0:  # the usual "0 sample(s)" error
            self._check_fitted_X(pool.read(0, 0))
        for start, rows in pool.chunks():
            yield start, self._check_fitted_X(rows)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Predict class probabilities from one deterministic pass (dropout off).

        ``X`` may be a pool larger than memory (``np.memmap``, torch ``Dataset``,
        :class:`skal.data.Pool`): it is read and converted one chunk at a time.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, n_features), memmap or Dataset
            Samples, in the layout of the training data.

        Returns
        -------
        proba : ndarray of shape (n, n_classes)
            Probabilities of the classes in ``classes_`` order.
        """
        if is_lazy_pool(X):  # memmaps and user Datasets: one chunk at a time
            check_is_fitted(self, ["module_", "label_encoder_"])
            return np.concatenate(
                [super(PoolPredictionMixin, self).predict_proba(rows)
                 for _, rows in self._pool_chunks(X)]
            )
        if is_dataset(X) and not is_image_source(X):  # skorch's own scoring callbacks pass
            return super().predict_proba(X)  # validated datasets
        return super().predict_proba(self._check_fitted_X(X))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predict labels, the most probable of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n, C, H, W), (n, H, W) or (n, n_features), memmap or Dataset
            Samples, in the layout of the training data.

        Returns
        -------
        y_pred : ndarray of shape (n,)
            Labels from ``classes_``.
        """
        if is_dataset(X) and not is_image_source(X):
            # internal scoring (e.g. skorch's valid_acc) compares with the encoded targets
            return super().predict_proba(X).argmax(axis=1)
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]
