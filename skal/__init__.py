"""skal: deep active learning (BALD, BGADL, WAAL) as scikit-learn citizens.

Estimators are skorch ``NeuralNetClassifier`` subclasses that follow scikit-learn's rules; query
strategies are modAL-style callables returning ``(indices, scores)``; :class:`ActiveLearner` has
modAL's interface.
"""

from .augment import GenerativeAugmenter
from .bgadl import BGADLClassifier, BGADLMCDropoutClassifier
from .classifier import MCDropoutClassifier, ResNet18Classifier
from .learner import ActiveLearner
from .query import (
    bald,
    entropy_sampling,
    margin_sampling,
    random_sampling,
    uncertainty_sampling,
    waal_uncertainty_diversity,
)
from .waal import WAALClassifier
from .batch_query import badge, batch_bald, coreset, power_bald, stochastic_batch, typiclust

__version__ = "0.1.0.dev0"

__all__ = [
    "ActiveLearner",
    "BGADLClassifier",
    "BGADLMCDropoutClassifier",
    "GenerativeAugmenter",
    "MCDropoutClassifier",
    "ResNet18Classifier",
    "WAALClassifier",
    "bald",
    "entropy_sampling",
    "margin_sampling",
    "random_sampling",
    "uncertainty_sampling",
    "waal_uncertainty_diversity",
    "batch_bald",
    "stochastic_batch",
    "power_bald",
    "badge",
    "coreset",
    "typiclust",
    "__version__",
]
