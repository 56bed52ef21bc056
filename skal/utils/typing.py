"""Type aliases of skal's public signatures (for type checkers and readers; no runtime role)."""

from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ArrayLike", "Learner", "QueryResult", "RandomStateLike"]

#: What ``random_state`` accepts everywhere in skal.
RandomStateLike = Union[None, int, np.random.RandomState, np.random.Generator]

#: What a query strategy is given: a skal or modAL learner, a fitted estimator or a fitted
#: ``Pipeline`` (duck-typed, so no narrower type applies).
Learner = Any

#: What a query strategy returns: ``(indices, scores)``, both of shape ``(n_instances,)``.
QueryResult = tuple[np.ndarray, np.ndarray]
