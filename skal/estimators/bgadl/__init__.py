"""BGADL (Tran et al., ICML 2019): classifiers trained jointly with a VAE-ACGAN on the labelled set
and the samples it generates, and :class:`GenerativeAugmenter`, the VAE-ACGAN on its own as a
scikit-learn resampler."""

from ._augmenter import ConvergenceError, GenerativeAugmenter
from ._classifier import PAPER_GEN_WEIGHT, BGADLClassifier, BGADLMCDropoutClassifier, BGADLMixin

__all__ = [
    "BGADLMixin",
    "BGADLClassifier",
    "BGADLMCDropoutClassifier",
    "GenerativeAugmenter",
    "ConvergenceError",
    "PAPER_GEN_WEIGHT",
]
