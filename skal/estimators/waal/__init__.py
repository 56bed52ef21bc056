"""WAAL (Shui et al., AISTATS 2020): the classifier trained with a Wasserstein critic on its
features, and what it is made of (networks, the two-player training step, the query scores)."""

from ._classifier import AUTHORS_CODE, WAALClassifier

__all__ = ["AUTHORS_CODE", "WAALClassifier"]
