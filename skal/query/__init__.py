"""Query strategies: pure score functions plus thin modAL-style wrappers.

Every strategy has modAL 0.4.2's calling convention::

    strategy(learner_or_estimator, X_pool, n_instances=1, *, random_state=None, **kwargs)
        -> (indices, scores)

``learner_or_estimator`` may be a modAL learner, a :class:`skal.ActiveLearner`, a fitted estimator
or a fitted :class:`~sklearn.pipeline.Pipeline`; ``X_pool`` any array-like of samples (lists are
converted with ``np.asarray`` once). ``indices`` are unique int64 positions in ``X_pool``, best
first. Returning both in one call is what modAL 0.4.2 expects: a strategy that returns indices
only is called twice by modAL, and silently mis-read when ``n_instances == 2``.

**One score convention.** ``scores`` are utilities: higher = more informative, for every strategy
here, and the chosen samples are those with the highest scores. Where the natural quantity is
smaller-is-better, skal negates it: :func:`margin_sampling` returns *minus* the margin, whereas
modAL's ``margin_sampling`` returns the margin itself and takes the smallest. The one exception is
:func:`waal_uncertainty_diversity`, which returns the WAAL paper's scores ``U(x) - selection g(x)``
unchanged: for it, **smaller is better** and the smallest come first.

Ties are broken by position (lowest index first) when ``random_state`` is None, and by a seeded
random order of the positions otherwise, so a query is always reproducible.

**Pools larger than memory.** ``X_pool`` may be a numpy array, a ``np.memmap``, a torch
``Dataset`` (e.g. a lazily loaded image folder) or a :class:`skal.data.Pool`. Every strategy reads
it one chunk at a time (``Pool(X, chunk_size=...)`` sets the size; by default 2,048 samples, fewer
if they exceed 64 MiB as float32), scores the chunk and keeps only a running top k
(:mod:`skal.utils.topk`): peak memory is one chunk plus the k best, whatever the pool size; a memmap is
never loaded as a whole. BALD turns each chunk's ``(T, chunk, n_classes)`` MC samples into scores
before the next chunk is read.

**Several processes.** Under ``torchrun`` / ``accelerate launch`` each process scores only its
share of the chunks and all processes return the same indices as one process would
(:mod:`skal.distributed`).

The strategies live in one module per family, all re-exported here: single-sample scores
(``_uncertainty``), batch-aware strategies (``_batch``), low-budget strategies on learned
embeddings (``_low_budget``); the pure score functions (``_scores``) are apart from the ranking,
and the selection algorithms the batch strategies run are public in :mod:`skal.query.selection`.
"""

from ._batch import badge, batch_bald, coreset, power_bald, stochastic_batch, typiclust
from ._low_budget import epig, probcover
from ._scores import bald_scores, entropy, least_confidence, margin, select_top
from ._uncertainty import (
    bald,
    entropy_sampling,
    margin_sampling,
    random_sampling,
    uncertainty_sampling,
    waal_uncertainty_diversity,
)

__all__ = [
    # scores
    "least_confidence",
    "margin",
    "entropy",
    "bald_scores",
    "select_top",
    # single-sample strategies
    "random_sampling",
    "uncertainty_sampling",
    "margin_sampling",
    "entropy_sampling",
    "bald",
    "waal_uncertainty_diversity",
    # batch-aware strategies
    "batch_bald",
    "stochastic_batch",
    "power_bald",
    "badge",
    "coreset",
    "typiclust",
    # low-budget strategies
    "probcover",
    "epig",
]
