"""Top-k selection that can run over a pool chunk by chunk, or shard by shard.

The order is: higher score first; ties broken by a per-position key. Without a seed the key is the
position itself (lowest index first); with a seed it is a keyed bijective hash of the position
(``splitmix64`` of ``seed + (position + 1) * golden``), so the keys of a pool of any size are
distinct and form a seeded pseudo-random permutation of the positions -- but, unlike
``rng.permutation(n)``, the key of position ``i`` is computed from ``i`` alone. That is what makes
the selection *streamable*: the top k of a pool equals the top k of the union of the top k of
its chunks (or of the processes' shards), whatever the chunking, in O(k + chunk) memory.
"""

import numpy as np

from .seeds import MAX_SEED

__all__ = ["TopK", "select_top", "tiebreak_keys", "tiebreak_seed"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x):
    """The splitmix64 finaliser on a uint64 array: a bijection of uint64 (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _MIX1
    x = x ^ (x >> np.uint64(27))
    x = x * _MIX2
    return x ^ (x >> np.uint64(31))


def tiebreak_seed(random_state):
    """The tie-breaking seed of a ``random_state``: None (ties by position) or a uint64.

    An int gives the same seed every time; a ``Generator`` / ``RandomState`` has one draw taken.

    Parameters
    ----------
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        The strategy's ``random_state``.

    Returns
    -------
    seed : None or numpy.uint64
        The seed that :func:`tiebreak_keys` takes.
    """
    if random_state is None:
        return None
    if isinstance(random_state, np.random.RandomState):
        rng = np.random.default_rng(random_state.randint(MAX_SEED))
    else:
        rng = np.random.default_rng(random_state)
    return np.uint64(rng.integers(0, 2**64, dtype=np.uint64))


def tiebreak_keys(positions, seed):
    """Tie-breaking keys (smaller first) of global pool positions.

    Parameters
    ----------
    positions : ndarray of int, shape (m,)
        Global positions (>= 0) in the pool.
    seed : None or numpy.uint64
        None: the key is the position. Otherwise a keyed hash that is a bijection of positions.

    Returns
    -------
    keys : ndarray of uint64, shape (m,)
        The key of each position: distinct positions get distinct keys.
    """
    positions = np.asarray(positions).astype(np.uint64)
    if seed is None:
        return positions
    with np.errstate(over="ignore"):
        return _splitmix64(np.uint64(seed) + (positions + np.uint64(1)) * _GOLDEN)


class TopK:
    """Keeps the k best (score, position) pairs seen so far; memory O(k + chunk).

    Scores are pushed a chunk at a time with their global positions. The best are the highest
    scores, and among equal scores those with the smaller :func:`tiebreak_keys` key, so the
    result does not depend on how the pool was cut into chunks.

    Parameters
    ----------
    k : int
        How many to keep (>= 1).
    seed : None or numpy.uint64, default=None
        Tie-breaking seed, from :func:`tiebreak_seed`.

    See Also
    --------
    select_top : The top k of one array of scores.

    Examples
    --------
    >>> import numpy as np
    >>> top = TopK(2)
    >>> top.push(np.array([0.1, 0.9, 0.5]), np.arange(3))
    >>> top.push(np.array([0.9, 0.2]), np.arange(3, 5))
    >>> top.result()[0].tolist()  # the two 0.9s, the lower position first
    [1, 3]
    """

    def __init__(self, k, seed=None):
        self.k = int(k)
        self.seed = seed
        self.scores = np.empty(0, dtype=np.float64)
        self.positions = np.empty(0, dtype=np.int64)

    def push(self, scores, positions):
        """Offer ``scores`` of the global ``positions``; only the k best seen so far are kept.

        Parameters
        ----------
        scores : array-like of float, shape (m,)
            The scores of a chunk (higher is better).
        positions : array-like of int, shape (m,)
            Their positions in the whole pool.

        Raises
        ------
        ValueError
            If the two differ in length, or a score is NaN.
        """
        scores = np.asarray(scores, dtype=np.float64).ravel()
        positions = np.asarray(positions, dtype=np.int64).ravel()
        if scores.shape != positions.shape:
            raise ValueError(
                f"scores and positions must have the same length; got {len(scores)} and "
                f"{len(positions)}."
            )
        if np.isnan(scores).any():
            raise ValueError(
                "The query scores contain NaN: the model's predictions are not finite (did "
                "training diverge?)."
            )
        if len(scores) > self.k:
            # only scores >= the chunk's k-th largest can be in the top k (ties kept for the keys)
            threshold = np.partition(scores, len(scores) - self.k)[len(scores) - self.k]
            keep = scores >= threshold
            scores, positions = scores[keep], positions[keep]
        scores = np.concatenate([self.scores, scores])
        positions = np.concatenate([self.positions, positions])
        order = np.lexsort((tiebreak_keys(positions, self.seed), -scores))[: self.k]
        self.scores, self.positions = scores[order], positions[order]

    def result(self):
        """The best pairs so far, best first.

        Returns
        -------
        positions : ndarray of int64, shape (n_kept,)
            Their positions; ``n_kept`` is k, or fewer if fewer scores were pushed.
        scores : ndarray of float64, shape (n_kept,)
            Their scores.
        """
        return self.positions.copy(), self.scores.copy()


def select_top(scores, n_instances, seed=None):
    """The positions of the ``n_instances`` best ``scores``, best first.

    Parameters
    ----------
    scores : array-like of float, shape (n,)
        One score per pool position (higher is better).
    n_instances : int
        How many to select (at least 1; the caller validates it).
    seed : None or numpy.uint64, default=None
        Tie-breaking seed, from :func:`tiebreak_seed`.

    Returns
    -------
    positions : ndarray of int64, shape (min(n_instances, n),)
        The selected positions.

    Raises
    ------
    ValueError
        If a score is NaN.
    """
    top = TopK(n_instances, seed)
    top.push(scores, np.arange(len(scores)))
    return top.result()[0]
