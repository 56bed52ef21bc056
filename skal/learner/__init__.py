"""The active-learning loop: :class:`ActiveLearner`, modAL's interface on skal's estimators and
strategies (also what ``skal run`` and ``skal label`` drive)."""

from ._learner import ActiveLearner

__all__ = ["ActiveLearner"]
