"""BGADL inside :class:`skal.ActiveLearner`: training on real plus generated samples.

:class:`LearnerAugmentMixin` is the learner's ``augmenter=`` path (refit the augmenter on the
labelled data, generate from the newly labelled rows, train on both) and its deprecated
``joint=True`` path (train the estimator as the augmenter's auxiliary classifier).
"""

import warnings

import numpy as np
from sklearn.base import clone

from ..exceptions import DivergenceError
from ..utils.divergence import diverged_epoch, train_losses
from ..utils.validation import as_float_images
from ._rows import stack

__all__ = ["LearnerAugmentMixin"]


class LearnerAugmentMixin:
    """The augmenter paths of :class:`skal.ActiveLearner` (see the module docstring)."""

    def _fit_joint(self, X, y, kwargs):
        """BGADL's joint scheme: train the estimator as the augmenter's auxiliary classifier."""
        if self.augmenter is None:
            raise ValueError("ActiveLearner(joint=True) needs an augmenter, e.g. "
                             "skal.GenerativeAugmenter(...).")
        if kwargs:
            raise TypeError("With joint=True the estimator is trained by augmenter.fit(X, y), "
                            f"which takes no fit arguments; got {sorted(kwargs)}.")
        warnings.warn(
            "ActiveLearner(joint=True) is deprecated: pass skal.BGADLClassifier(...) (or "
            "skal.BGADLMCDropoutClassifier) as the estimator instead, which trains jointly with "
            "its VAE-ACGAN in its own skorch fit loop (callbacks and history included).",
            DeprecationWarning,
            stacklevel=4,
        )
        self.augmenter_ = clone(self.augmenter).set_params(classifier=clone(self._estimator))
        try:
            self.augmenter_.fit(X, y)
        except (RuntimeError, FloatingPointError) as exc:
            if "diverged" not in str(exc) or not self._classifier_diverges_alone(X, y):
                raise
            lr = self._estimator.get_params().get("lr")
            lower = f", e.g. to {lr / 10:g}" if isinstance(lr, (int, float)) else ""
            raise DivergenceError(
                f"ActiveLearner(joint=True): the classifier {type(self._estimator).__name__} "
                f"diverged, not the {type(self.augmenter).__name__} (its training reported: "
                f"{str(exc).split('. ')[0]}; the classifier alone diverges within 3 epochs). "
                f"Lower the classifier's learning rate (estimator lr={lr!r}{lower}: "
                "set_params(estimator__lr=...)), not the augmenter's."
            ) from exc
        # estimator_ (of the estimator's class) takes the fitted state, not the parameters, of
        # the BGADL classifier the augmenter trained
        fitted = self.augmenter_.classifier_
        params = fitted.get_params(deep=False)
        vars(self.estimator_).update({k: v for k, v in vars(fitted).items() if k not in params})
        self.augmenter_.classifier_ = self.estimator_

    def _classifier_diverges_alone(self, X, y):
        """After a joint training diverged: does the classifier diverge when trained alone?"""
        probe = clone(self._estimator)
        if "max_epochs" not in probe.get_params():
            return False
        probe.set_params(max_epochs=3)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                probe.fit(X, y)
        except FloatingPointError:  # DivergenceError and torch's NaN checks
            return True
        n_classes = len(getattr(probe, "classes_", ())) or len(np.unique(y))
        return diverged_epoch(train_losses(probe), n_classes) is not None

    def _augment(self, X, y, new):
        """BGADL step: refit the augmenter and train on real plus generated samples."""
        if not hasattr(self, "augmenter_"):
            self.augmenter_ = clone(self.augmenter)
        self.augmenter_.fit(self.X_training_, self.y_training_)
        X_src, y_src = new if new is not None else (X, y)
        X_gen, y_gen = self.augmenter_.sample(X_src, y_src)
        X_gen = np.asarray(X_gen)
        real_shape = tuple(np.shape(X)[1:])
        if X_gen.shape[1:] != real_shape and np.prod(X_gen.shape[1:]) == np.prod(real_shape):
            # e.g. flat rows (with image_shape=) or (n, H, W): keep the layout of the real rows
            X_gen = X_gen.reshape((len(X_gen),) + real_shape)
        if self.X_generated_ is None:
            self.X_generated_, self.y_generated_ = X_gen, np.asarray(y_gen)
        else:
            self.X_generated_ = stack([self.X_generated_, X_gen])
            self.y_generated_ = np.concatenate([self.y_generated_, y_gen])
        return (
            stack([as_float_images(X), as_float_images(self.X_generated_)]),
            np.concatenate([y, self.y_generated_]),
        )
