"""What every query strategy shares: the pool, the estimator it scores with, the chunked scan.

The layer under the strategy modules (:mod:`skal.query`, :mod:`skal.query`,
:mod:`skal.query`), which import it and not each other:

- the estimator behind a learner or a ``Pipeline`` and the transform a chunk needs
  (:func:`estimator_and_transform`, :func:`final_estimator`), and the MC-dropout check
  (:func:`check_mc_dropout`);
- :func:`scan_pool`: the best k of a pool scored chunk by chunk, sharded across the processes of
  a distributed run (:mod:`skal.distributed`);
- the feature space of the feature-space strategies (``embedding=``: :data:`EMBEDDING`,
  :func:`embed_features`, :func:`labeled_features`).
"""


import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from .. import distributed as _process_group
from ..data import pool_rows
from ..utils import topk as _topk
from ..utils.params import Satisfies
from ..utils.validation import accepts

__all__ = ["EMBEDDING", "check_mc_dropout", "embed_features", "estimator_and_transform",
           "final_estimator", "labeled_features", "labeled_rows", "scan_pool"]


def check_mc_dropout(est, owner, method, score, alternative):
    """Refuse an estimator that cannot give MC-dropout samples with a message saying why."""
    if not hasattr(est, "sample_proba"):
        raise TypeError(
            f"{owner} needs an estimator with a sample_proba(X, n_samples) method (MC dropout), "
            f"such as skal.ResNet18Classifier; got {type(est).__name__}."
        )
    n_dropout = getattr(est, "_n_dropout_layers", None)
    if hasattr(est, "module_") and callable(n_dropout) and n_dropout() == 0:
        raise ValueError(
            f"{method} needs stochastic passes, but the module of {type(est).__name__} has no "
            "dropout layer with p > 0: every MC-dropout pass would give the same probabilities "
            f"and every {score} would be 0. Use a module with dropout (e.g. "
            "ResNet18Classifier(dropout=0.5)) or a strategy that needs none, such as "
            f"{alternative}."
        )


def final_estimator(learner_or_estimator, X_pool):
    """The estimator that owns ``sample_proba`` and the (whole) pool transformed for it."""
    est, transform = estimator_and_transform(learner_or_estimator)
    return est, transform(X_pool)


def estimator_and_transform(learner_or_estimator):
    """The estimator that owns ``sample_proba`` and the transform a pool chunk needs for it."""
    est = learner_or_estimator
    if hasattr(est, "query_strategy") and hasattr(est, "estimator"):  # modAL or skal learner
        est = est.estimator
    if isinstance(est, Pipeline):
        return est[-1], est[:-1].transform
    return est, _identity


def _identity(X):
    return X


def scan_pool(pool, score_chunk, n_instances, seed):
    """The best ``n_instances`` of a pool, scored chunk by chunk: ``(positions, scores)``.

    ``score_chunk(k, rows)`` gives the scores (higher = better) of chunk ``k``. Only this
    process's chunks are scored (all of them outside a distributed run) and only the running top
    k is kept; the processes' candidates are merged, so every process gets the same result, that
    of one process over the whole pool. Memory: one chunk and k scores.
    """
    top = _topk.TopK(n_instances, seed)
    for k in _process_group.shard_chunks(pool.n_chunks):
        start, stop = pool.chunk_bounds(k)
        scores = np.asarray(score_chunk(k, pool.read(start, stop)), dtype=np.float64)
        if scores.shape != (stop - start,):
            raise ValueError(
                f"The estimator returned scores of shape {scores.shape} for a chunk of "
                f"{stop - start} pool samples; expected ({stop - start},)."
            )
        top.push(scores, np.arange(start, stop))
    return _process_group.merge_topk(top)



EMBEDDING = [
    None,
    Satisfies(lambda value: isinstance(value, str) and value == "input", "'input'"),
    Satisfies(callable, "a callable X -> (n, d) features"),
]


def _is_fitted(est):
    try:
        check_is_fitted(est)
    except NotFittedError:
        return False
    except TypeError:  # not an estimator scikit-learn knows how to check: let it try
        return True
    return True


def _flat(owner, X):
    X = np.asarray(X)
    if X.ndim < 2:
        raise ValueError(
            f"{owner} needs samples with features, of shape (n, ...); got shape {X.shape}."
        )
    return X.reshape(len(X), -1)  # (n, ...) -> (n, d)


def embed_features(owner, est, X, embedding, need_proba=False):
    """``(features, proba or None)`` of the already transformed ``X`` (see the module doc)."""
    if embedding is None and hasattr(est, "embed") and _is_fitted(est):
        if need_proba and accepts(est.embed, "return_proba"):
            Z, proba = est.embed(X, return_proba=True)  # one forward pass for both
            return _flat(owner, Z), np.asarray(proba)
        Z = _flat(owner, est.embed(X))
    elif embedding is None or (isinstance(embedding, str) and embedding == "input"):
        Z = _flat(owner, X)
    else:  # a callable (the strategies' constraints let nothing else through)
        Z = _flat(owner, embedding(X))
        if len(Z) != len(X):
            raise ValueError(
                f"The embedding given to {owner} returned {len(Z)} rows for {len(X)} samples."
            )
    if not need_proba:
        return Z, None
    if not hasattr(est, "predict_proba"):
        raise TypeError(f"{owner} needs an estimator with predict_proba; got {type(est).__name__}.")
    return Z, np.asarray(est.predict_proba(X))


def labeled_rows(learner, X_labeled):
    """The labelled samples: ``X_labeled``, else the learner's training data, else None."""
    if X_labeled is not None:
        return X_labeled
    for attr in ("X_training_", "X_training"):  # skal.ActiveLearner, then modAL's learners
        X = getattr(learner, attr, None)
        if X is not None:
            return X
    return None


def labeled_features(owner, learner, X_labeled, embedding):
    X_lab = labeled_rows(learner, X_labeled)
    if X_lab is None:
        return None
    X_lab = pool_rows(X_lab)
    if len(X_lab) == 0:
        return None
    est, X_lab = final_estimator(learner, X_lab)
    return embed_features(owner, est, X_lab, embedding)[0]
