"""Batch-aware selectors: pure functions of probabilities, MC samples and features.

Each function here turns arrays into a batch of positions; none touches an estimator (the
modAL-style strategies that feed them live in :mod:`skal.query`).

- :func:`batchbald_select`: greedy BatchBALD over MC-dropout samples (Kirsch et al. 2019), exact
  joint entropies while the label configurations are few, sampled configurations beyond.
- :func:`acquisition_distribution` / :func:`stochastic_select`: power, softmax and soft-rank
  sampling of any per-sample score (Kirsch et al. 2023), Gumbel-top-k without replacement.
- :func:`gradient_sq_distances` / :func:`badge_select`: BADGE's k-means++ seeding on last-layer
  gradient embeddings ``g = (p - e_yhat) (x) z`` (Ash et al. 2020), factorised so that the
  ``(n, C * d)`` embedding is never built.
- :func:`min_sq_distances` / :func:`kcenter_greedy`: core-set k-center greedy (Sener & Savarese
  2018) with block-wise distances, never an ``n x n`` matrix.
- :func:`typicality` / :func:`typiclust_select`: TypiClust (Hacohen et al. 2022).
- :func:`ball_purity` / :func:`purity_radius` / :func:`probcover_select`: ProbCover's greedy
  coverage by delta-balls and its purity radius (Yehuda et al. 2022), on a capped sparse graph.
- :func:`epig_scores`: expected predictive information gain on a target set (Bickford Smith et
  al. 2023), the joint predictive in blocks of pool and target points.

Memory is bounded everywhere: pairwise quantities are computed in blocks of at most
``block_elements`` numbers (default ``2**22``, 32 MiB of float64).
"""

import numpy as np
from scipy.special import xlogy
from scipy.stats import rankdata

from ..utils.params import COUNT, SEED, Choice, Float, validates
from ..utils.validation import as_generator, check_n_instances

__all__ = [
    "batchbald_select",
    "acquisition_distribution",
    "stochastic_select",
    "gradient_sq_distances",
    "badge_select",
    "min_sq_distances",
    "kcenter_greedy",
    "typicality",
    "typiclust_select",
    "ball_purity",
    "purity_radius",
    "probcover_select",
    "epig_scores",
]

#: Largest number of entries of a temporary block (pool chunk x configurations x classes, or
#: pool chunk x centres): 2**22 float64 = 32 MiB.
BLOCK_ELEMENTS = 2**22

_MODES = ("power", "softmax", "softrank")

#: The constraints of the stochastic selectors' (and strategies') ``mode`` and ``temperature``.
MODE = Choice(*_MODES, description=f"one of {_MODES}")
TEMPERATURE = Float(0, None, closed="neither")


def _check_2d(owner, name, X):
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(
            f"{owner} needs '{name}' of shape (n, n_features); got shape {X.shape}."
        )
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    if not np.all(np.isfinite(X)):
        raise ValueError(
            f"'{name}' given to {owner} contains NaN or infinity: the model's outputs are not "
            "finite (did training diverge?)."
        )
    return X


def _row_sq_norms(X, block_elements=BLOCK_ELEMENTS):
    """``||x_i||^2`` in float64, in row blocks (no float64 copy of ``X``)."""
    out = np.empty(len(X))
    step = max(1, block_elements // max(X.shape[1], 1))
    for start in range(0, len(X), step):
        block = X[start:start + step].astype(np.float64)  # (b, d)
        out[start:start + step] = np.einsum("ij,ij->i", block, block)
    return out


# ---------------------------------------------------------------------------- BatchBALD
def _check_samples(owner, samples):
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 3:
        raise ValueError(
            f"{owner} needs samples of shape (n_samples, n, n_classes); got shape "
            f"{samples.shape}."
        )
    if not np.all(np.isfinite(samples)):
        raise ValueError(
            f"The MC samples given to {owner} contain NaN or infinity: the model's predictions "
            "are not finite (did training diverge?)."
        )
    if samples.min(initial=0.0) < 0 or not np.allclose(samples.sum(axis=2), 1.0, atol=1e-3):
        raise ValueError(
            f"The MC samples given to {owner} must be probabilities: non-negative, summing to 1 "
            "over the last axis (classes)."
        )
    return samples


def _sample_configurations(samples, batch, n_configurations, rng):
    """``n_configurations`` label configurations of ``batch``, stratified over MC samples.

    Configuration m belongs to MC sample ``t_m = m mod T``; given the weights the labels are
    independent, so each ``y_j`` is drawn from ``p_{t_m}(y_j)``: exact draws from the joint
    predictive ``P(y_batch) = mean_t prod_j p_t(y_j)``. Returns ``log P_t(c_m)`` up to a
    per-configuration offset as ``(weights (T, M), log_scale (M,))``.
    """
    T = samples.shape[0]
    strata = np.arange(n_configurations) % T  # (M,)
    weights = np.ones((T, n_configurations))
    log_scale = np.zeros(n_configurations)
    for j in batch:
        weights, log_scale = _extend_configurations(samples[:, j, :], strata, weights, log_scale,
                                                    rng)
    return strata, weights, log_scale


def _extend_configurations(proba_j, strata, weights, log_scale, rng):
    """Append one label, drawn from ``p_{t_m}(y_j)``, to every sampled configuration."""
    cdf = np.cumsum(proba_j, axis=1)  # (T, C)
    u = rng.random(len(strata)) * cdf[strata, -1]  # (M,)
    labels = (u[:, None] >= cdf[strata]).sum(axis=1)  # (M,) inverse-CDF draws
    labels = np.minimum(labels, proba_j.shape[1] - 1)
    weights = weights * proba_j[:, labels]  # (T, M): P_t(c_m) times p_t(y_j = c_mj)
    scale = weights.max(axis=0)  # rescale each configuration so long batches do not underflow
    scale[scale == 0] = 1.0
    return weights / scale, log_scale + np.log(scale)


def _joint_entropies(samples, weights, log_scale, exact, out, block_elements):
    """``H[y_A, y_i]`` for every pool point ``i``, in pool chunks.

    ``weights`` is ``P_t(c)`` (exact: every configuration c of the batch A) or the rescaled
    ``P_t(c_m)`` of sampled configurations; ``P(c, y_i) = mean_t P_t(c) p_t(y_i)`` is one matrix
    product per chunk. The sampled estimate is ``-mean_m sum_y P(y | c_m) log P(c_m, y)``.
    """
    T, n, C = samples.shape
    M = weights.shape[1]
    step = max(1, block_elements // (M * C))
    if not exact:
        q = weights.mean(axis=0)  # (M,) P(c_m) up to the per-configuration scale
        offset = -log_scale.mean()
    for start in range(0, n, step):
        chunk = samples[:, start:start + step, :]  # (T, b, C)
        b = chunk.shape[1]
        joint = (weights.T @ chunk.reshape(T, b * C)) / T  # (M, b * C)
        joint = joint.reshape(M, b, C)  # (M, b, C): P(c, y_i) (scaled when sampled)
        nats = xlogy(joint, joint).sum(axis=2)  # (M, b)
        if exact:
            out[start:start + b] = -nats.sum(axis=0)
        else:  # sum_y P(y | c_m) log P(c_m, y) = sum_y P(c_m, y) log P(c_m, y) / P(c_m)
            out[start:start + b] = offset - (nats / q[:, None]).sum(axis=0) / M
    return out


@validates({"n_configurations": [COUNT], "random_state": [SEED], "block_elements": [COUNT]})
def batchbald_select(samples, n_instances, *, n_configurations=1000, random_state=None,
                     block_elements=BLOCK_ELEMENTS):
    """Greedy BatchBALD: the batch that (approximately) maximises the joint mutual information.

    At each step the pool point ``i`` with the largest
    ``a(A + i) = H[y_A, y_i] - sum_{j in A + i} E_w H[y_j | w]`` joins the batch A. Joint entropies
    are exact (a sum over all ``C^|A|`` label configurations of A) while ``C^|A| <=
    n_configurations``, as in batchbald-redux; beyond, ``n_configurations`` configurations are
    drawn from the joint predictive (stratified over the MC samples, seeded by ``random_state``)
    and ``H[y_A, y_i]`` is their importance-weighted estimate. New labels are appended to the
    drawn configurations as the batch grows.

    Parameters
    ----------
    samples : array-like of shape (n_samples, n, n_classes)
        MC-dropout probabilities ``p_t(y_i)`` (the layout of ``sample_proba``).
    n_instances : int
        Batch size, at most ``n``.
    n_configurations : int, default=1000
        Largest number of label configurations M: the exact/sampled switch and the number of
        sampled configurations.
    random_state : None, int, RandomState or Generator, default=None
        Seeds the sampled configurations (not used while the joint entropies are exact).
    block_elements : int, default=2**22
        Largest temporary block (pool chunk x configurations x classes).

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        In the order of selection.
    gains : ndarray of shape (n_instances,)
        The increase of the joint mutual information with each point (nats); the first is its
        BALD score and ``gains.cumsum()`` are batchbald-redux's scores.

    Notes
    -----
    Time ``O(n_instances * n * T * M * C)`` with ``M = min(C^|A|, n_configurations)``; memory
    ``O(T * n * C)`` for the samples plus ``O(T * M + block_elements)``.

    References
    ----------
    Kirsch, van Amersfoort, Gal. "BatchBALD: Efficient and Diverse Batch Acquisition for Deep
    Bayesian Active Learning." NeurIPS 2019.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.random.default_rng(0).dirichlet(np.ones(3), size=(8, 20))  # (T, n, C)
    >>> idx, gains = batchbald_select(p, 3)
    >>> idx.shape, bool(np.all(np.diff(gains) <= 1e-12))
    ((3,), True)
    """
    owner = "batchbald_select"
    samples = _check_samples(owner, samples)
    T, n, C = samples.shape
    n_instances = check_n_instances(n_instances, n)
    rng = as_generator(random_state)
    conditional = -xlogy(samples, samples).sum(axis=2).mean(axis=0)  # (n,) E_w H[y_i | w]
    chosen = np.zeros(n, dtype=bool)
    indices, gains = [], []
    weights = np.ones((T, 1))  # P_t(c) of the empty batch: one configuration, probability 1
    log_scale = np.zeros(1)
    exact, strata = True, None
    previous = 0.0  # a(A) of the current batch
    scores = np.empty(n)
    for _ in range(n_instances):
        _joint_entropies(samples, weights, log_scale, exact, scores, block_elements)
        scores -= conditional + conditional[indices].sum()
        scores[chosen] = -np.inf
        best = int(np.argmax(scores))  # ties: lowest position
        indices.append(best)
        gains.append(scores[best] - previous)
        previous = scores[best]
        chosen[best] = True
        if len(indices) == n_instances:
            break
        if exact and weights.shape[1] * C <= n_configurations:
            weights = (weights[:, :, None] * samples[:, best, None, :]).reshape(T, -1)  # (T, Cc*C)
            log_scale = np.zeros(weights.shape[1])
        elif exact:
            exact = False
            strata, weights, log_scale = _sample_configurations(samples, indices, n_configurations,
                                                                rng)
        else:
            weights, log_scale = _extend_configurations(samples[:, best, :], strata, weights,
                                                        log_scale, rng)
    return np.asarray(indices, dtype=np.int64), np.asarray(gains)


# ---------------------------------------------------------------------------- stochastic batches
@validates({"mode": [MODE], "temperature": [TEMPERATURE]})
def acquisition_distribution(scores, mode="power", temperature=1.0):
    """The sampling distribution of stochastic batch acquisition over the pool.

    With ``beta = 1 / temperature``: ``power`` ``p_i ~ s_i^beta`` (scores must be >= 0),
    ``softmax`` ``p_i ~ exp(beta s_i)``, ``softrank`` ``p_i ~ r_i^-beta`` where ``r_i`` is the
    rank of ``s_i`` (1 = highest, ties share their average rank).

    Parameters
    ----------
    scores : array-like of shape (n,)
        Any per-sample utility (higher = more informative).
    mode : {"power", "softmax", "softrank"}, default="power"
    temperature : float > 0, default=1.0
        Large = closer to uniform; small = closer to top-k.

    Returns
    -------
    proba : ndarray of shape (n,)
        Sums to 1. With ``power`` and all scores 0, uniform.

    References
    ----------
    Kirsch, Farquhar, Atighehchian, Jesson, Branchaud-Charron, Gal. "Stochastic Batch
    Acquisition: A Simple Baseline for Deep Active Learning." TMLR 2023.

    Examples
    --------
    >>> acquisition_distribution([1.0, 3.0], "power").tolist()
    [0.25, 0.75]
    """
    log_p = _log_weights(np.asarray(scores, dtype=np.float64), mode, temperature,
                         "acquisition_distribution")
    if np.all(np.isneginf(log_p)):
        return np.full(len(log_p), 1.0 / len(log_p))
    p = np.exp(log_p - log_p.max())
    return p / p.sum()


def _log_weights(scores, mode, temperature, owner):
    if scores.ndim != 1:
        raise ValueError(f"{owner} needs scores of shape (n,); got shape {scores.shape}.")
    if np.isnan(scores).any():
        raise ValueError(
            f"The scores given to {owner} contain NaN: the model's predictions are not finite "
            "(did training diverge?)."
        )
    beta = 1.0 / float(temperature)
    if mode == "softmax":
        return beta * scores
    if mode == "softrank":
        return -beta * np.log(rankdata(-scores, method="average"))
    if scores.min(initial=0.0) < 0:
        raise ValueError(
            f"Power sampling in {owner} needs scores >= 0; the smallest is {scores.min():.3g}. "
            "Use mode='softmax' or mode='softrank' for signed scores."
        )
    with np.errstate(divide="ignore"):
        return beta * np.log(scores)  # log 0 = -inf: never drawn while others remain


@validates({"mode": [MODE], "temperature": [TEMPERATURE], "random_state": [SEED]})
def stochastic_select(scores, n_instances, *, mode="power", temperature=1.0, random_state=None):
    """Draw a batch without replacement from :func:`acquisition_distribution` (Gumbel-top-k).

    Adding independent Gumbel noise to ``log p_i`` and taking the top ``n_instances`` draws from
    ``p`` sequentially without replacement, in one ``O(n log n)`` pass. Points of probability 0
    (zero scores under ``power``) come last, in a uniformly random order.

    Parameters
    ----------
    scores : array-like of shape (n,)
        The utility of each point (higher = more informative).
    n_instances : int
        How many points to draw, at most ``n``.
    mode : {"power", "softmax", "softrank"}, default="power"
        How scores become probabilities (see :func:`acquisition_distribution`).
    temperature : float > 0, default=1.0
        Sharpness: lower concentrates the draws on the highest scores.
    random_state : None, int, RandomState or Generator, default=None
        The same value gives the same batch.

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        In the order drawn.

    References
    ----------
    Kirsch et al. "Stochastic Batch Acquisition: A Simple Baseline for Deep Active Learning."
    TMLR 2023. Kool, van Hoof, Welling. "Stochastic Beams and Where to Find Them: The
    Gumbel-Top-k Trick for Sampling Sequences Without Replacement." ICML 2019.

    Examples
    --------
    >>> stochastic_select([0.1, 0.0, 5.0, 0.2], 2, random_state=0).shape
    (2,)
    """
    scores = np.asarray(scores, dtype=np.float64)
    log_p = _log_weights(scores, mode, temperature, "stochastic_select")
    n_instances = check_n_instances(n_instances, len(scores))
    gumbel = as_generator(random_state).gumbel(size=len(scores))  # (n,)
    keys = np.where(np.isneginf(log_p), -np.inf, log_p + gumbel)
    order = np.lexsort((-gumbel, -keys))  # primary: perturbed log-weight; -inf ones by noise
    return order[:n_instances].astype(np.int64)


# ---------------------------------------------------------------------------- BADGE
def gradient_sq_distances(a, z, centre, a_sq=None, z_sq=None):
    """``||g_i - g_c||^2`` for all rows i, with ``g_i = a_i (x) z_i`` never built.

    ``||a_i (x) z_i - a_c (x) z_c||^2 = |a_i|^2 |z_i|^2 + |a_c|^2 |z_c|^2 - 2 (a_i.a_c)(z_i.z_c)``:
    time and memory ``O(n (C + d))`` instead of ``O(n C d)``.

    Parameters
    ----------
    a : ndarray of shape (n, C)
        Loss gradients with respect to the logits, ``p - onehot(argmax p)``.
    z : ndarray of shape (n, d)
        Penultimate features (the input of the last Linear layer).
    centre : int
        Row of the centre c.
    a_sq, z_sq : ndarray of shape (n,), default=None
        Precomputed squared row norms of ``a`` and ``z``.

    Returns
    -------
    d2 : ndarray of shape (n,)
        Clipped at 0 (rounding), and exactly 0 at ``centre``.

    Examples
    --------
    >>> import numpy as np
    >>> a, z = np.eye(2), np.ones((2, 3))
    >>> gradient_sq_distances(a, z, 0).tolist()  # g_0 = [1,1,1,0,0,0], g_1 = [0,0,0,1,1,1]
    [0.0, 6.0]
    """
    a_sq = np.einsum("ij,ij->i", a, a) if a_sq is None else a_sq
    z_sq = _row_sq_norms(z) if z_sq is None else z_sq
    cross = (a @ a[centre]).astype(np.float64) * (z @ z[centre]).astype(np.float64)  # (n,)
    d2 = a_sq * z_sq + a_sq[centre] * z_sq[centre] - 2.0 * cross
    np.maximum(d2, 0.0, out=d2)
    d2[centre] = 0.0
    return d2


@validates({"random_state": [SEED]})
def badge_select(proba, embedding, n_instances, *, random_state=None):
    """BADGE: k-means++ seeding on last-layer gradient embeddings, computed factorised.

    The embedding of sample i is the gradient of the cross-entropy with its predicted label with
    respect to the last layer's weights, ``g_i = (p_i - e_yhat_i) (x) z_i`` (sign dropped). The
    first point has the largest ``||g_i||`` (Ash et al.'s code); each next one is drawn with
    probability proportional to ``D(i)^2``, its squared distance to the nearest chosen point
    (k-means++; scikit-activeml 1.0 also keeps the origin as a centre, Ash et al. do not).
    Distances use :func:`gradient_sq_distances`, so nothing of size ``n x C x d`` exists.

    Parameters
    ----------
    proba : array-like of shape (n, C)
        Predicted probabilities.
    embedding : array-like of shape (n, d)
        Penultimate features from the same forward pass.
    n_instances : int
        How many points to choose, at most ``n``.
    random_state : None, int, RandomState or Generator, default=None
        Seeds the D^2 draws; the same value gives the same batch.

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        In the order chosen.
    d2 : ndarray of shape (n_instances,)
        ``D(i)^2`` of each point when it was chosen (the first: ``||g_i||^2``).

    Notes
    -----
    Time ``O(n_instances * n * (C + d))``, memory ``O(n * (C + d))`` (the inputs) plus ``O(n)``.
    When every remaining ``D(i)^2`` is 0 (duplicates, or confident one-hot predictions), the
    rest of the batch is drawn uniformly.

    References
    ----------
    Ash, Zhang, Krishnamurthy, Langford, Agarwal. "Deep Batch Active Learning by Diverse,
    Uncertain Gradient Lower Bounds." ICLR 2020. Arthur, Vassilvitskii. "k-means++: The
    Advantages of Careful Seeding." SODA 2007.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> proba, z = rng.dirichlet(np.ones(3), size=30), rng.normal(size=(30, 4))
    >>> badge_select(proba, z, 5, random_state=0)[0].shape
    (5,)
    """
    owner = "badge_select"
    proba = _check_2d(owner, "proba", proba)
    z = _check_2d(owner, "embedding", embedding)
    if len(proba) != len(z):
        raise ValueError(
            f"proba and embedding given to {owner} must have one row per sample; got {len(proba)} "
            f"and {len(z)} rows."
        )
    n = len(z)
    n_instances = check_n_instances(n_instances, n)
    rng = as_generator(random_state)
    a = proba.astype(np.float64)  # (n, C)
    a[np.arange(n), proba.argmax(axis=1)] -= 1.0  # p - onehot(argmax p)
    a_sq, z_sq = np.einsum("ij,ij->i", a, a), _row_sq_norms(z)
    d2 = a_sq * z_sq  # (n,) ||g_i||^2: distance to no centre, as in Ash et al.'s first pick
    chosen = np.zeros(n, dtype=bool)
    indices, picked = [], []
    for step in range(n_instances):
        d2[chosen] = 0.0
        total = d2.sum()
        if step == 0:
            best = int(np.argmax(d2))
        elif total > 0:
            best = int(rng.choice(n, p=d2 / total))
        else:
            best = int(rng.choice(np.flatnonzero(~chosen)))
        indices.append(best)
        picked.append(d2[best])
        chosen[best] = True
        if step + 1 < n_instances:
            new = gradient_sq_distances(a, z, best, a_sq, z_sq)
            d2 = new if step == 0 else np.minimum(d2, new)
    return np.asarray(indices, dtype=np.int64), np.asarray(picked)


# ---------------------------------------------------------------------------- core-set
@validates({"block_elements": [COUNT]})
def min_sq_distances(X, Y, *, block_elements=BLOCK_ELEMENTS):
    """``min_j ||x_i - y_j||^2`` for every row of ``X``, in blocks (never ``len(X) x len(Y)``).

    Parameters
    ----------
    X : ndarray of shape (n, d)
        The points whose distances are wanted.
    Y : ndarray of shape (m, d), m >= 1
        The centres.
    block_elements : int, default=2**22
        Largest distance block computed at once.

    Returns
    -------
    d2 : ndarray of float64, shape (n,)
        Clipped at 0.

    Examples
    --------
    >>> import numpy as np
    >>> min_sq_distances(np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([[0.0, 1.0]])).tolist()
    [1.0, 18.0]
    """
    X, Y = np.asarray(X), np.asarray(Y)
    x_sq, y_sq = _row_sq_norms(X, block_elements), _row_sq_norms(Y, block_elements)
    out = np.full(len(X), np.inf)
    cols = max(1, min(len(Y), block_elements))
    rows = max(1, block_elements // cols)
    for j in range(0, len(Y), cols):
        Yb = Y[j:j + cols]
        for i in range(0, len(X), rows):
            cross = (X[i:i + rows] @ Yb.T).astype(np.float64)  # (r, c)
            d2 = x_sq[i:i + rows, None] + y_sq[None, j:j + cols] - 2.0 * cross
            np.minimum(out[i:i + rows], d2.min(axis=1), out=out[i:i + rows])
    return np.maximum(out, 0.0)


@validates({"random_state": [SEED], "block_elements": [COUNT]})
def kcenter_greedy(features, n_instances, *, labeled=None, random_state=None,
                   block_elements=BLOCK_ELEMENTS):
    """Core-set k-center greedy: repeatedly pick the point farthest from every centre.

    The centres start as the labelled points; each chosen point becomes a centre. This is the
    greedy 2-approximation of the k-center problem that Sener & Savarese use (their robust
    mixed-integer refinement is not implemented).

    Parameters
    ----------
    features : array-like of shape (n, d)
        Features of the pool (penultimate activations).
    n_instances : int
        How many centres to add, at most ``n``.
    labeled : array-like of shape (m, d) or None, default=None
        Features of the labelled set, the initial centres. Without it (or with ``m == 0``) the
        first point is drawn uniformly at random.
    random_state : None, int, RandomState or Generator, default=None
        Seeds that first draw (only used without labelled points).
    block_elements : int, default=2**22
        Largest pool x labelled distance block.

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        In the order chosen; ties go to the lowest position.
    distances : ndarray of shape (n_instances,)
        Distance of each point to its nearest centre when chosen (the covering radius before
        it was added); ``nan`` for a first point drawn at random.

    Notes
    -----
    Time ``O((m + n_instances) * n * d)``, memory ``O(n)`` plus one block; no ``n x n`` or
    ``n x m`` matrix.

    References
    ----------
    Sener, Savarese. "Active Learning for Convolutional Neural Networks: A Core-Set Approach."
    ICLR 2018.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [5.0], [10.0]])
    >>> kcenter_greedy(X, 2, labeled=np.array([[0.0]]))[0].tolist()
    [3, 2]
    """
    owner = "kcenter_greedy"
    X = _check_2d(owner, "features", features)
    n = len(X)
    n_instances = check_n_instances(n_instances, n)
    if labeled is not None:
        labeled = _check_2d(owner, "labeled", labeled)
        if labeled.shape[1] != X.shape[1]:
            raise ValueError(
                f"The labelled features given to {owner} have {labeled.shape[1]} columns but the "
                f"pool features have {X.shape[1]}: they must come from the same embedding."
            )
    x_sq = _row_sq_norms(X, block_elements)
    indices, picked = [], []
    if labeled is None or len(labeled) == 0:
        first = int(as_generator(random_state).integers(n))
        indices.append(first)
        picked.append(np.nan)
        d2 = _sq_distances_to(X, x_sq, first)
    else:
        d2 = min_sq_distances(X, labeled, block_elements=block_elements)
    d2[indices] = -np.inf
    while len(indices) < n_instances:
        best = int(np.argmax(d2))
        indices.append(best)
        picked.append(np.sqrt(max(d2[best], 0.0)))
        np.minimum(d2, _sq_distances_to(X, x_sq, best), out=d2)
        d2[best] = -np.inf
    return np.asarray(indices, dtype=np.int64), np.asarray(picked)


def _sq_distances_to(X, x_sq, centre):
    cross = (X @ X[centre]).astype(np.float64)  # (n,)
    return np.maximum(x_sq + x_sq[centre] - 2.0 * cross, 0.0)


# ---------------------------------------------------------------------------- TypiClust
@validates({"n_neighbors": [COUNT], "block_elements": [COUNT]})
def typicality(features, n_neighbors=20, *, eps=1e-5, block_elements=BLOCK_ELEMENTS):
    """Compute TypiClust's typicality, ``1 / (eps + mean distance to the k nearest neighbours)``.

    Parameters
    ----------
    features : array-like of shape (n, d)
        The points.
    n_neighbors : int, default=20
        The k, capped at ``n - 1``; the point itself is not its own neighbour.
    eps : float, default=1e-5
        Keeps duplicates finite (the value of the authors' code).
    block_elements : int, default=2**22
        Largest block of the ``n x n`` distances computed at once.

    Returns
    -------
    typicality : ndarray of shape (n,)
        0 for a single point (it has no neighbours).

    References
    ----------
    Hacohen, Dekel, Weinshall. "Active Learning on a Budget: Opposite Strategies Suit High and
    Low Budgets." ICML 2022.

    Examples
    --------
    >>> import numpy as np
    >>> typicality(np.array([[0.0], [1.0], [2.0], [10.0]]), n_neighbors=1).round(3).tolist()
    [1.0, 1.0, 1.0, 0.125]
    """
    X = _check_2d("typicality", "features", features)
    n = len(X)
    if n < 2:
        return np.zeros(n)
    k = min(n_neighbors, n - 1)
    x_sq = _row_sq_norms(X, block_elements)
    out = np.empty(n)
    rows = max(1, block_elements // n)
    for i in range(0, n, rows):
        cross = (X[i:i + rows] @ X.T).astype(np.float64)  # (r, n)
        d2 = np.maximum(x_sq[i:i + rows, None] + x_sq[None, :] - 2.0 * cross, 0.0)
        d2[np.arange(len(d2)), np.arange(i, i + len(d2))] = np.inf  # not its own neighbour
        nearest = np.partition(d2, k - 1, axis=1)[:, :k]  # (r, k) the k smallest
        out[i:i + rows] = 1.0 / (eps + np.sqrt(nearest).mean(axis=1))
    return out


@validates({"n_neighbors": [COUNT], "min_cluster_size": [COUNT], "block_elements": [COUNT]})
def typiclust_select(features, cluster_labels, n_instances, *, labeled=None, n_neighbors=20,
                     min_cluster_size=5, block_elements=BLOCK_ELEMENTS):
    """Select TypiClust's points: the most typical unlabelled point of each uncovered cluster.

    Clusters are visited in order of fewest labelled points, then largest size (the authors'
    code); clusters smaller than ``min_cluster_size`` are skipped unless nothing else is left.
    In each visited cluster the typicality (:func:`typicality`, with ``k = min(n_neighbors,
    m // 2)`` over its ``m`` unlabelled, unchosen points) is computed and the most typical point
    chosen. When ``n_instances`` exceeds the number of clusters, the visit order starts again.

    Parameters
    ----------
    features : array-like of shape (n, d)
        Features of the labelled and unlabelled points together.
    cluster_labels : array-like of int, shape (n,)
        A clustering of all n points (k-means with ``n_labeled + n_instances`` clusters).
    n_instances : int
        At most the number of unlabelled points.
    labeled : array-like of bool, shape (n,), default=None
        Which points are labelled (never chosen; they mark their clusters as covered).
    n_neighbors : int, default=20
        The k of the typicality, capped at half the cluster's unlabelled points.
    min_cluster_size : int, default=5
        Clusters with fewer points are visited only when no other is left.
    block_elements : int, default=2**22
        Largest block of distances computed at once.

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        Positions in ``features``, in the order chosen.
    typicality : ndarray of shape (n_instances,)
        The typicality of each chosen point within its cluster.

    Notes
    -----
    Time ``O(sum over visited clusters of m^2 d)``, memory ``O(n)`` plus one block.

    References
    ----------
    Hacohen, Dekel, Weinshall. "Active Learning on a Budget: Opposite Strategies Suit High and
    Low Budgets." ICML 2022.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.2], [0.3], [5.0], [5.1], [9.0]])
    >>> typiclust_select(X, [0, 0, 0, 1, 1, 2], 2, min_cluster_size=1)[0].tolist()
    [1, 3]
    """
    owner = "typiclust_select"
    X = _check_2d(owner, "features", features)
    n = len(X)
    labels = np.asarray(cluster_labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"cluster_labels given to {owner} must be integers of shape ({n},); got "
            f"{labels.dtype} of shape {labels.shape}."
        )
    labeled = np.zeros(n, dtype=bool) if labeled is None else np.asarray(labeled, dtype=bool)
    if labeled.shape != (n,):
        raise ValueError(
            f"labeled given to {owner} must be a boolean mask of shape ({n},); got shape "
            f"{labeled.shape}."
        )
    n_instances = check_n_instances(n_instances, int((~labeled).sum()) if n else 0)
    ids, sizes = np.unique(labels, return_counts=True)
    covered = np.array([np.count_nonzero(labeled & (labels == c)) for c in ids])
    order = np.lexsort((-sizes, covered))  # fewest labelled first, then largest
    big = order[sizes[order] >= min_cluster_size]
    visit = ids[big] if len(big) else ids[order]
    available = ~labeled
    indices, scores = [], []
    position = 0
    while len(indices) < n_instances:
        members = np.flatnonzero(available & (labels == visit[position % len(visit)]))
        position += 1
        if len(members) == 0:
            if not np.any(available[np.isin(labels, visit)]):
                visit = ids[order]  # the big clusters are used up: take any cluster
            continue
        k = max(1, min(n_neighbors, len(members) // 2))
        typ = typicality(X[members], k, block_elements=block_elements)
        best = int(np.argmax(typ))
        indices.append(int(members[best]))
        scores.append(typ[best])
        available[members[best]] = False
    return np.asarray(indices, dtype=np.int64), np.asarray(scores)


# ---------------------------------------------------------------------------- ProbCover
#: The constraints of ProbCover's radius, purity threshold and radius shrink factor.
RADIUS = Float(0, None, closed="neither")
PURITY_THRESHOLD = Float(0, 1, closed="right")
SHRINK = Float(0, 1, closed="neither")


def _check_cluster_labels(owner, labels, n):
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"cluster_labels given to {owner} must be integers of shape ({n},); got "
            f"{labels.dtype} of shape {labels.shape}."
        )
    return labels


def _working_memory(block_elements):
    """scikit-learn's ``working_memory`` (MiB) for chunks of about ``block_elements`` float64."""
    from sklearn import config_context

    return config_context(working_memory=max(1, (8 * block_elements) >> 20))


def _impurity_radii(X, labels, block_elements):
    """``r_x``: the distance from each point to the nearest point of another cluster (inf if none).

    The ball ``{y : ||x - y|| < delta}`` of x is pure (all its points in x's cluster) exactly
    when ``delta <= r_x``. One nearest-neighbour query per cluster: memory ``O(n)`` plus
    scikit-learn's chunk (``working_memory`` set from ``block_elements``).
    """
    from sklearn.neighbors import NearestNeighbors

    r = np.full(len(X), np.inf)
    with _working_memory(block_elements):
        for c in np.unique(labels):
            inside = labels == c
            if inside.all():
                break
            nn = NearestNeighbors(n_neighbors=1).fit(X[inside])
            d, _ = nn.kneighbors(X[~inside])  # (n - n_c, 1)
            r[~inside] = np.minimum(r[~inside], d[:, 0])
    return r


@validates({"block_elements": [COUNT]})
def ball_purity(features, cluster_labels, radii, *, block_elements=BLOCK_ELEMENTS):
    """Compute ProbCover's purity curve: the fraction of pure δ-balls at each radius.

    The ball of x is ``B(x) = {y : ||x - y|| < delta}``; it is pure when all its points share
    x's cluster label. Purity never grows with ``delta`` (a larger ball holds a smaller one).

    Parameters
    ----------
    features : array-like of shape (n, d)
        The points (an embedding).
    cluster_labels : array-like of int, shape (n,)
        A clustering of the n points (Yehuda et al. use k-means with k = the number of classes).
    radii : array-like of float
        The radii δ at which to evaluate the purity.
    block_elements : int, default=2**22
        Largest distance chunk computed at once.

    Returns
    -------
    purity : ndarray of shape radii.shape
        In [0, 1].

    References
    ----------
    Yehuda, Dekel, Hacohen, Weinshall. "Active Learning Through a Covering Lens." NeurIPS 2022.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [3.0], [10.0]])
    >>> ball_purity(X, [0, 0, 1, 1], [0.5, 1.5, 2.5]).tolist()  # r = 3, 2, 2, 7
    [1.0, 1.0, 0.5]
    """
    owner = "ball_purity"
    X = _check_2d(owner, "features", features)
    labels = _check_cluster_labels(owner, cluster_labels, len(X))
    radii = np.asarray(radii, dtype=np.float64)
    r = _impurity_radii(X, labels, block_elements)
    return (r[:, None] >= radii.reshape(1, -1)).mean(axis=0).reshape(radii.shape)  # (n, k) -> radii


@validates({"purity_threshold": [PURITY_THRESHOLD], "block_elements": [COUNT]})
def purity_radius(features, cluster_labels, purity_threshold=0.95, *,
                  block_elements=BLOCK_ELEMENTS):
    """Find ProbCover's radius: the largest δ whose ball purity is >= ``purity_threshold``.

    With ``r_x`` the distance from x to the nearest point of another cluster, the ball
    ``{y : ||x - y|| < delta}`` is pure iff ``delta <= r_x``, so the purity is the fraction of
    points with ``r_x >= delta`` and the largest radius with purity ``>= alpha`` is the
    ``ceil(alpha * n)``-th largest ``r_x``: exact, not the best of a grid of radii (the authors
    and scikit-activeml scan a grid; the grid's choice is at most this radius).

    Parameters
    ----------
    features : array-like of shape (n, d)
        The points (an embedding).
    cluster_labels : array-like of int, shape (n,)
        At least two clusters (k-means with k = the number of classes in the paper).
    purity_threshold : float in (0, 1], default=0.95
        The least fraction of pure balls, α (the paper's value is 0.95).
    block_elements : int, default=2**22
        Largest distance chunk computed at once.

    Returns
    -------
    radius : float
        The radius δ > 0.

    Notes
    -----
    One nearest-neighbour query per cluster (time ``O(k n log n)`` with trees in low
    dimension, ``O(n^2 d)`` by brute force in high dimension); memory ``O(n)`` plus one chunk.

    References
    ----------
    Yehuda, Dekel, Hacohen, Weinshall. "Active Learning Through a Covering Lens." NeurIPS 2022.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [3.0], [10.0]])
    >>> purity_radius(X, [0, 0, 1, 1], 0.5), purity_radius(X, [0, 0, 1, 1], 1.0)
    (3.0, 2.0)
    """
    owner = "purity_radius"
    X = _check_2d(owner, "features", features)
    labels = _check_cluster_labels(owner, cluster_labels, len(X))
    if len(np.unique(labels)) < 2:
        raise ValueError(
            f"cluster_labels given to {owner} hold {len(np.unique(labels))} cluster(s): every "
            "ball is pure at every radius, so the purity cannot choose one. Cluster into at "
            "least 2 clusters (n_classes >= 2) or give the radius."
        )
    r = np.sort(_impurity_radii(X, labels, block_elements))[::-1]  # descending
    rank = max(1, int(np.ceil(round(purity_threshold * len(r), 9))))
    radius = float(r[rank - 1])
    if radius <= 0:
        raise ValueError(
            f"{owner}: more than {1 - purity_threshold:.0%} of the points have a point of "
            "another cluster at distance 0 (duplicates split between clusters), so no radius "
            "> 0 reaches the purity threshold. Lower purity_threshold or give the radius."
        )
    return radius


def _ball_graph(X, radius, max_neighbors, block_elements):
    """The capped δ-ball graph: ``(indptr, indices int32, distances float32, sizes)``.

    ``sizes`` are the true ball sizes (itself included), before the cap.

    Row x holds x itself first, then up to ``max_neighbors - 1`` other points with
    ``||x - y|| < radius``, nearest first. Built with scikit-learn's ``radius_neighbors`` in
    row blocks of ``block_elements // n`` rows (one block holds at most ``block_elements``
    neighbours before the cap), so memory is the capped graph plus one block.
    """
    from sklearn.neighbors import NearestNeighbors

    n = len(X)
    cap = min(max_neighbors, n)
    nn = NearestNeighbors(radius=radius).fit(X)
    rows = max(1, block_elements // max(n, 1))
    counts = np.empty(n, dtype=np.int64)
    sizes = np.empty(n, dtype=np.int64)
    parts_idx, parts_d = [], []
    with _working_memory(block_elements):
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            dist, ind = nn.radius_neighbors(X[start:stop], radius=radius, sort_results=True)
            lengths = np.fromiter((len(a) for a in ind), dtype=np.int64, count=stop - start)
            flat_i = np.concatenate(ind) if len(ind) else np.empty(0, np.int64)  # (e,)
            flat_d = np.concatenate(dist) if len(dist) else np.empty(0)  # (e,)
            row = np.repeat(np.arange(start, stop), lengths)  # (e,)
            keep = (flat_d < radius) & (flat_i != row)  # strict ball, self added below
            row, flat_i, flat_d = row[keep], flat_i[keep], flat_d[keep]
            per_row = np.bincount(row - start, minlength=stop - start)
            sizes[start:stop] = per_row + 1
            first = np.repeat(np.cumsum(per_row) - per_row, per_row)
            keep = (np.arange(len(row)) - first) < cap - 1  # the nearest cap - 1 (sorted)
            row, flat_i, flat_d = row[keep], flat_i[keep], flat_d[keep]
            per_row = np.bincount(row - start, minlength=stop - start) + 1  # + self
            self_pos = np.cumsum(per_row) - per_row  # (b,) each row's first slot
            block_i = np.empty(per_row.sum(), dtype=np.int32)
            block_d = np.zeros(per_row.sum(), dtype=np.float32)
            others = np.ones(len(block_i), dtype=bool)
            others[self_pos] = False
            block_i[self_pos] = np.arange(start, stop)
            block_i[others], block_d[others] = flat_i, flat_d
            counts[start:stop] = per_row
            parts_idx.append(block_i)
            parts_d.append(block_d)
            del dist, ind, flat_i, flat_d, row, keep, first, others
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, np.concatenate(parts_idx), np.concatenate(parts_d), sizes


def _in_edges(indptr, indices, n):
    """The transposed graph ``(indptr, indices)``: for each y, the rows whose ball holds y."""
    from scipy.sparse import csr_matrix

    graph = csr_matrix((np.ones(len(indices), dtype=np.int8), indices, indptr), shape=(n, n))
    t = graph.tocsc()
    return t.indptr.astype(np.int64), t.indices


def _ranges(indptr, rows):
    """The positions ``indptr[r]:indptr[r + 1]`` of every r in ``rows``, concatenated."""
    starts, stops = indptr[rows], indptr[np.asarray(rows) + 1]
    lengths = stops - starts
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return offsets + np.arange(lengths.sum())


class _Cover:
    """Greedy coverage state on a capped ball graph: who is covered and each ball's gain."""

    def __init__(self, indptr, indices, centres, n):
        self.indptr, self.indices, self.n = indptr, indices, n
        self.in_indptr, self.in_indices = _in_edges(indptr, indices, n)
        self.uncovered = np.ones(n, dtype=bool)
        if len(centres):
            self.uncovered[indices[_ranges(indptr, centres)]] = False
        self.gain = np.add.reduceat(self.uncovered[indices], indptr[:-1], dtype=np.int64)

    def take(self, centre):
        """Cover ``centre``'s ball; the number of points it newly covers."""
        ball = self.indices[self.indptr[centre]:self.indptr[centre + 1]]
        new = ball[self.uncovered[ball]]
        self.uncovered[new] = False
        if len(new):
            rows = self.in_indices[_ranges(self.in_indptr, new)]
            self.gain -= np.bincount(rows, minlength=self.n)
        return len(new)


def _shrink_graph(indptr, indices, dist, radius):
    keep = dist < radius  # the capped ball at a smaller radius is this filter (rows are sorted)
    counts = np.add.reduceat(keep, indptr[:-1], dtype=np.int64)
    new_ptr = np.zeros_like(indptr)
    np.cumsum(counts, out=new_ptr[1:])
    return new_ptr, indices[keep], dist[keep]


@validates({"radius": [None, RADIUS], "purity_threshold": [PURITY_THRESHOLD],
            "max_neighbors": [COUNT], "shrink": [SHRINK], "n_neighbors": [COUNT],
            "block_elements": [COUNT]})
def probcover_select(features, n_instances, *, labeled=None, radius=None, cluster_labels=None,
                     purity_threshold=0.95, max_neighbors=500, shrink=0.5, n_neighbors=20,
                     block_elements=BLOCK_ELEMENTS):
    """ProbCover: greedy maximum coverage by δ-balls, with a radius that shrinks when spent.

    The ball of x is ``B(x) = {y : ||x - y|| < delta}`` (x included). The labelled points'
    balls are covered first; then each pick is the unlabelled point whose ball holds the most
    uncovered points, and its ball is covered. Ties go to the larger ball at the first radius
    (its true size, beyond the cap: the denser point), then to the lowest position (the
    authors' code takes the lowest position, the paper draws one of the best at random).
    ``delta`` is ``radius``, or else :func:`purity_radius` of ``cluster_labels``.

    The fallback. A pick that covers only itself says nothing about which point to take, and
    the greedy gets there when coverage is (nearly) complete before the budget is spent (at
    the purity radius this happens early: Bae et al. report the default radius failing once
    the budget grows). Then ``delta`` is multiplied by ``shrink`` and the covering starts again
    from the labelled and chosen points' smaller balls. When even right after a shrink no ball
    holds two uncovered points, the rest of the batch is taken at that radius with TypiClust's
    typicality (:func:`typicality`, over all points) breaking the ties of the gains: the most
    typical uncovered points first, then the most typical covered ones.

    Parameters
    ----------
    features : array-like of shape (n, d)
        Features of the labelled and unlabelled points together.
    n_instances : int
        At most the number of unlabelled points.
    labeled : array-like of bool, shape (n,), default=None
        Which points are labelled (never chosen; their balls are covered first).
    radius : float > 0 or None, default=None
        The radius δ. None: :func:`purity_radius` of ``cluster_labels`` at
        ``purity_threshold``.
    cluster_labels : array-like of int, shape (n,), default=None
        The clustering the purity is measured against (needed when ``radius`` is None).
    purity_threshold : float in (0, 1], default=0.95
        The α of the radius rule.
    max_neighbors : int, default=500
        Cap on the edges per point: a ball with more points keeps its ``max_neighbors``
        nearest (itself included), so a pick's gain counts at most ``max_neighbors`` points
        (ties at the cap go to the larger true ball).
    shrink : float in (0, 1), default=0.5
        Factor applied to δ each time the greedy runs out of balls worth picking.
    n_neighbors : int, default=20
        The k of the typicality of the last-resort picks.
    block_elements : int, default=2**22
        Largest block of the radius queries (neighbours before the cap) and distance chunks.

    Returns
    -------
    indices : ndarray of int64, shape (n_instances,)
        Positions in ``features``, in the order chosen.
    gains : ndarray of int64, shape (n_instances,)
        Points each pick newly covered, at the radius in use: at least 2 for a coverage pick,
        0 or 1 for a pick made by typicality.
    radii : ndarray of shape (n_instances,)
        The radius in use at each pick.

    Notes
    -----
    Memory: the capped graph, at most ``n * max_neighbors`` edges of about 14 bytes (an int32
    index and a float32 distance per edge, and the transposed index for the gain updates: 7 kB
    per point at the default cap), plus one radius-query block of at most ``block_elements``
    neighbours and ``O(n)``; never an ``n x n`` matrix. Time: the radius queries (trees in low
    dimension, ``O(n^2 d)`` by brute force in high dimension), then ``O(E)`` per shrink and
    ``O(n)`` plus the touched edges per pick.

    References
    ----------
    Yehuda, Dekel, Hacohen, Weinshall. "Active Learning Through a Covering Lens." NeurIPS 2022.
    Bae, Zhou, Sutherland. "Generalized Coverage for More Robust Low-Budget Active Learning."
    ECCV 2024. Bae et al. "Uncertainty Herding: One Active Learning Method for All Label
    Budgets." 2024.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [9.0]])
    >>> idx, gains, radii = probcover_select(X, 3, radius=0.5)
    >>> idx.tolist(), gains.tolist()  # the 3-point blob, the 2-point blob, then the outlier
    ([0, 3, 5], [3, 2, 1])
    """
    owner = "probcover_select"
    X = _check_2d(owner, "features", features)
    n = len(X)
    labeled = np.zeros(n, dtype=bool) if labeled is None else np.asarray(labeled, dtype=bool)
    if labeled.shape != (n,):
        raise ValueError(
            f"labeled given to {owner} must be a boolean mask of shape ({n},); got shape "
            f"{labeled.shape}."
        )
    n_instances = check_n_instances(n_instances, int((~labeled).sum()) if n else 0)
    if radius is None:
        if cluster_labels is None:
            raise ValueError(
                f"{owner} needs a radius or cluster_labels to choose one by purity; got "
                "neither."
            )
        radius = purity_radius(X, cluster_labels, purity_threshold,
                               block_elements=block_elements)
    indptr, indices, dist, sizes = _ball_graph(X, float(radius), max_neighbors, block_elements)
    tie = np.empty(n, dtype=np.int64)  # n - 1 = the largest first ball, ties by position
    tie[np.lexsort((-np.arange(n), sizes))] = np.arange(n)
    del sizes
    available = ~labeled
    chosen, gains, radii = [], [], []
    cover = _Cover(indptr, indices, np.flatnonzero(labeled), n)
    just_shrunk = False
    while len(chosen) < n_instances:
        key = np.where(available, cover.gain * (n + 1) + tie, -1)  # (n,) gain, then tie
        best = int(np.argmax(key))
        if cover.gain[best] >= 2:
            chosen.append(best)
            gains.append(cover.take(best))
            radii.append(radius)
            available[best] = False
            just_shrunk = False
            continue
        if just_shrunk:  # no ball groups uncovered points even at the smaller radius
            typ = typicality(X, n_neighbors, block_elements=block_elements)
            rank = np.empty(n, dtype=np.int64)  # n - 1 = the most typical, ties by position
            rank[np.lexsort((-np.arange(n), typ))] = np.arange(n)
            while len(chosen) < n_instances:
                key = np.where(available, cover.gain * (n + 1) + rank, -1)  # gain, then rank
                best = int(np.argmax(key))
                chosen.append(best)
                gains.append(cover.take(best))
                radii.append(radius)
                available[best] = False
            break
        radius *= shrink
        indptr, indices, dist = _shrink_graph(indptr, indices, dist, radius)
        cover = _Cover(indptr, indices, np.flatnonzero(~available), n)
        just_shrunk = True
    return (np.asarray(chosen, dtype=np.int64), np.asarray(gains, dtype=np.int64),
            np.asarray(radii, dtype=np.float64))


# ---------------------------------------------------------------------------- EPIG
def _entropy_rows(proba):
    return -xlogy(proba, proba).sum(axis=-1)


@validates({"block_elements": [COUNT]})
def epig_scores(samples, target_samples, *, block_elements=BLOCK_ELEMENTS):
    """Expected predictive information gain of each pool point about a target set.

    ``EPIG(x) = mean_j I[y; y*_j | x, x*_j]``, the mutual information between the label of x
    and that of each target input, under the joint predictive ``p(y, y*) = mean_t p_t(y | x)
    p_t(y* | x*)`` of the T weight draws; it is the KL divergence from the product of the
    marginals, computed as ``H[p(y)] + H[p(y*)] - H[p(y, y*)]`` (the authors' matmul form).

    Parameters
    ----------
    samples : array-like of shape (n_samples, n, n_classes)
        MC probabilities ``p_t(y | x_i)`` of the pool.
    target_samples : array-like of shape (n_samples, m, n_classes)
        ``p_t(y* | x*_j)`` of the target inputs under the same T weight draws (one
        ``sample_proba`` call on the pool and the targets together, so pass t is one weight
        draw for both).
    block_elements : int, default=2**22
        Largest block of the joint predictive (pool points x target points x C x C).

    Returns
    -------
    scores : ndarray of shape (n,)
        EPIG in nats, in ``[0, BALD(x)]`` up to rounding (``I[y; y*] <= I[y; w]``, since y and
        y* are independent given the weights).

    Notes
    -----
    Time ``O(n m T C^2)``; memory the samples plus one block: the ``(n, m, C, C)`` joint is
    never built whole.

    References
    ----------
    Bickford Smith, Kirsch, Farquhar, Gal, Foster, Rainforth. "Prediction-Oriented Bayesian
    Active Learning." AISTATS 2023.

    Examples
    --------
    >>> import numpy as np
    >>> pool = np.array([[[0.9, 0.1], [0.5, 0.5]], [[0.1, 0.9], [0.5, 0.5]]])  # (T=2, n=2, C=2)
    >>> target = pool[:, :1]  # the first pool point as the only target
    >>> epig_scores(pool, target).round(4).tolist()
    [0.2218, 0.0]
    """
    owner = "epig_scores"
    P = _check_samples(owner, samples)  # (T, n, C)
    Q = _check_samples(owner, target_samples)  # (T, m, C)
    T, n, C = P.shape
    if Q.shape[0] != T or Q.shape[2] != C:
        raise ValueError(
            f"target_samples given to {owner} must have shape ({T}, m, {C}), the MC passes and "
            f"classes of samples (one sample_proba call on the pool and the targets); got "
            f"{Q.shape}."
        )
    m = Q.shape[1]
    if m == 0:
        raise ValueError(f"target_samples given to {owner} hold no target point (m = 0).")
    h_pool = _entropy_rows(P.mean(axis=0))  # (n,)
    h_target = _entropy_rows(Q.mean(axis=0)).mean()
    h_joint = np.zeros(n)  # sum over targets of H[p(y, y*_j)]
    tcols = max(1, min(m, block_elements // (C * C)))
    prows = max(1, block_elements // (tcols * C * C))
    for j in range(0, m, tcols):
        Qb = Q[:, j:j + tcols]
        mb = Qb.shape[1]
        Qb = Qb.reshape(T, mb * C)  # (T, mb, C) -> (T, mb * C)
        for i in range(0, n, prows):
            Pb = P[:, i:i + prows]
            b = Pb.shape[1]
            Pb = Pb.reshape(T, b * C)  # (T, b, C) -> (T, b * C)
            joint = (Pb.T @ Qb) / T  # (b * C, mb * C): p(y_i = c, y*_j = c')
            joint = joint.reshape(b, C * mb * C)  # (b * C, mb * C) -> (b, C * mb * C)
            h_joint[i:i + b] -= xlogy(joint, joint).sum(axis=1)
    return h_pool + h_target - h_joint / m
