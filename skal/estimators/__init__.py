"""The estimators: skorch classifiers that follow scikit-learn's rules, with MC dropout for the
strategies.

- :class:`MCDropoutClassifier` (any module with dropout) and :class:`ResNet18Classifier` are the
  base; their training and sampling helpers are the private modules beside them.
- :class:`EmbeddingHeadClassifier` trains a small head on frozen embeddings in seconds;
  :class:`ContrastiveEncoder` learns those embeddings from the unlabelled pool (SimCLR), and
  :func:`init_trunk` starts a classifier's trunk from it.
- :class:`FixMatchClassifier` and :class:`FixMatchMCDropoutClassifier` add semi-supervised
  training on the pool.
- :mod:`skal.estimators.waal` and :mod:`skal.estimators.bgadl` hold the two papers' methods and
  their helpers; ``Accelerated*`` are the data-parallel variants (see :mod:`skal.distributed`).
"""

from ._accelerate import (
    AcceleratedMCDropoutClassifier,
    AcceleratedResNet18Classifier,
    AcceleratedWAALClassifier,
)
from ._classifier import MCDropoutClassifier, ResNet18Classifier
from ._encoder import ContrastiveEncoder, InitTrunk, init_trunk
from ._fixmatch import FixMatchClassifier, FixMatchMCDropoutClassifier, FixMatchMixin
from ._head import EmbeddingHeadClassifier
from .bgadl import BGADLClassifier, BGADLMCDropoutClassifier, BGADLMixin
from .waal import WAALClassifier

__all__ = [
    "MCDropoutClassifier",
    "ResNet18Classifier",
    "EmbeddingHeadClassifier",
    "ContrastiveEncoder",
    "InitTrunk",
    "init_trunk",
    "FixMatchMixin",
    "FixMatchClassifier",
    "FixMatchMCDropoutClassifier",
    "WAALClassifier",
    "BGADLMixin",
    "BGADLClassifier",
    "BGADLMCDropoutClassifier",
    "GenerativeAugmenter",
    "AcceleratedMCDropoutClassifier",
    "AcceleratedResNet18Classifier",
    "AcceleratedWAALClassifier",
]


def __getattr__(name):
    if name == "GenerativeAugmenter":  # imported on first use: it loads imbalanced-learn
        from . import bgadl

        return bgadl.GenerativeAugmenter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
