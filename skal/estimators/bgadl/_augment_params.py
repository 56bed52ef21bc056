"""The parameters and inputs of :class:`skal.GenerativeAugmenter`: constraints, checks, and the
validation of the images and labels that ``fit``, ``sample`` and ``generate`` take."""

import numpy as np
from sklearn.utils import check_consistent_length, column_or_1d

from ...utils.params import Choice, Float, Int, check_params
from ...utils.validation import check_device, validate_images
from ._classifier import BETAS, bgadl_counterpart
from ._generation import check_unit_range

__all__ = ["AUGMENTER_CONSTRAINTS", "check_augmenter_params", "known_labels", "unit_images"]

#: ``GenerativeAugmenter._parameter_constraints``.
AUGMENTER_CONSTRAINTS = {
    "latent_dim": [Int(1)],
    "max_epochs": [Int(1)],
    "batch_size": [Int(2)],  # the networks use BatchNorm
    "ratio": [Float(0, None, closed="left")],
    "lr": [Float(0, None, closed="neither")],
    "rec_weight": [Float(0, None, closed="left")],
    "kl_weight": [Float(0, None, closed="left")],
    "betas": [BETAS],
    "kl_reduction": [Choice("mean", "sum")],
    "rec_reduction": [Choice("sum", "mean")],
    "gen_batchnorm": [Choice("running", "batch")],
}


def check_augmenter_params(augmenter):
    """Check the device, the declared constraints and the ``classifier`` of an augmenter."""
    check_device(augmenter.device, "GenerativeAugmenter")
    check_params(augmenter)
    if augmenter.classifier is not None:
        bgadl_counterpart(augmenter.classifier)  # TypeError unless a skal MCDropoutClassifier


def unit_images(augmenter, X, reset):
    """Images in the augmenter's layout, checked to lie in [0, 1] (rounding clipped)."""
    X = validate_images(augmenter, X, reset=reset, image_shape=augmenter.image_shape,
                        flat_ok=False)
    check_unit_range(augmenter, X)
    return np.clip(X, 0.0, 1.0)


def known_labels(augmenter, X, y):
    """Labels for ``sample`` / ``generate``: ``(y, class indices)``; unseen labels are an error."""
    if y is None:
        raise ValueError(
            "GenerativeAugmenter requires y to be passed, but the target y is None."
        )
    y = column_or_1d(np.asarray(y), warn=True)
    if X is not None:
        check_consistent_length(X, y)
    unknown = np.setdiff1d(y, augmenter.classes_)
    if len(unknown):
        raise ValueError(
            f"y contains labels {unknown.tolist()} not among the classes this "
            f"GenerativeAugmenter was fitted with: {augmenter.classes_.tolist()}."
        )
    return y, augmenter.net_.label_encoder_.transform(y).astype(np.int64)
