"""BGADL (Tran et al., ICML 2019): classifiers trained jointly with a VAE-ACGAN on the labelled set
and the samples it generates, and :class:`GenerativeAugmenter`, the VAE-ACGAN on its own as a
scikit-learn resampler."""

from ._classifier import (
    PAPER_GEN_WEIGHT,
    BGADLClassifier,
    BGADLMCDropoutClassifier,
    BGADLMixin,
)

__all__ = [
    "BGADLMixin",
    "BGADLClassifier",
    "BGADLMCDropoutClassifier",
    "GenerativeAugmenter",
    "ConvergenceError",
    "PAPER_GEN_WEIGHT",
]


def __getattr__(name):
    # GenerativeAugmenter is an imbalanced-learn sampler when imbalanced-learn is installed: its
    # module is imported on first use, so the other estimators never load imbalanced-learn
    if name in ("GenerativeAugmenter", "ConvergenceError"):
        from . import _augmenter

        return getattr(_augmenter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
