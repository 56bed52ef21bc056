"""The pure batch selectors of skal.query.selection, against brute force and reference packages.

References (test-only, each test skips with its reason when the package is missing):
batchbald-redux 2.0.5 (BatchBALD), baal 2.1.0 (stochastic acquisition distributions),
scikit-activeml 1.0.1 (BADGE utilities, k-center greedy, TypiClust). Install them with
``pip install --no-deps batchbald-redux==2.0.5 toma baal==2.1.0 structlog torchmetrics
lightning-utilities scikit-activeml==1.0.1 makefun`` (the ``test`` extra does).
"""

import itertools
import tracemalloc

import numpy as np
import pytest
from scipy.special import xlogy
from sklearn.neighbors import NearestNeighbors

from skal.query.selection import (
    acquisition_distribution,
    badge_select,
    batchbald_select,
    gradient_sq_distances,
    kcenter_greedy,
    min_sq_distances,
    stochastic_select,
    typicality,
    typiclust_select,
)


def _dirichlet(seed, shape, alpha=0.5):
    return np.random.default_rng(seed).dirichlet(np.full(shape[-1], alpha), size=shape[:-1])


# ---------------------------------------------------------------------------- BatchBALD
def brute_force_mi(samples, batch):
    """I[y_batch; w] by enumerating every label configuration of the batch."""
    T, _, C = samples.shape
    joint = 0.0
    for config in itertools.product(range(C), repeat=len(batch)):
        p_t = np.prod([samples[:, j, c] for j, c in zip(batch, config)], axis=0)  # (T,)
        joint -= xlogy(p_t.mean(), p_t.mean())
    conditional = -xlogy(samples, samples).sum(axis=2).mean(axis=0)  # (n,)
    return joint - conditional[list(batch)].sum()


def brute_force_greedy(samples, k):
    batch = []
    for _ in range(k):
        rest = [i for i in range(samples.shape[1]) if i not in batch]
        batch.append(max(rest, key=lambda i: brute_force_mi(samples, batch + [i])))
    return batch


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batchbald_matches_brute_force_greedy(k, seed):
    samples = _dirichlet(seed, (5, 7, 3))  # (T, n, C)
    idx, gains = batchbald_select(samples, k, n_configurations=10_000)
    assert idx.tolist() == brute_force_greedy(samples, k)
    prefix_mi = [brute_force_mi(samples, idx[: j + 1].tolist()) for j in range(k)]
    np.testing.assert_allclose(np.cumsum(gains), prefix_mi, rtol=1e-10, atol=1e-12)


def test_batchbald_avoids_the_duplicate_that_bald_takes():
    # MC samples confidently disagree; point 1 repeats point 0, point 2 disagrees differently.
    hi, lo = 0.999, 0.001
    a = [[hi, lo], [lo, hi], [hi, lo], [lo, hi]]
    b = [[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.1, 0.9]]
    samples = np.array([a, a, b]).transpose(1, 0, 2)  # (T=4, n=3, C=2)
    bald = brute_force_mi(samples, [0])
    assert bald == pytest.approx(brute_force_mi(samples, [1]))
    assert bald > brute_force_mi(samples, [2])
    idx, gains = batchbald_select(samples, 2)
    assert idx.tolist() == [0, 2]  # top-2 BALD would be [0, 1]
    assert gains[0] == pytest.approx(bald)
    # the duplicate would add almost nothing: I[y0, y1; w] - I[y0; w] ~ 0
    assert brute_force_mi(samples, [0, 1]) - bald < 0.02 < gains[1]


def test_batchbald_sampled_configurations_estimate_the_joint_entropy():
    samples = _dirichlet(3, (6, 12, 10))  # C = 10: exact up to |A| = 3 with M = 1000
    idx, gains = batchbald_select(samples, 5, n_configurations=1000, random_state=0)
    exact = [brute_force_mi(samples, idx[: j + 1].tolist()) for j in range(5)]
    np.testing.assert_allclose(np.cumsum(gains)[:4], exact[:4], rtol=1e-9)  # exact part
    assert np.cumsum(gains)[4] == pytest.approx(exact[4], abs=0.05)  # sampled: |A| = 4 -> 10^4
    # seeded: the same random_state gives the same sampled batch
    again = batchbald_select(samples, 5, n_configurations=1000, random_state=0)
    np.testing.assert_array_equal(again[0], idx)
    np.testing.assert_array_equal(again[1], gains)


def test_batchbald_long_batches_do_not_underflow():
    # 350 labels of probability ~0.1 multiply to ~1e-350, below float64's range: without the
    # per-configuration rescaling the sampled weights become 0 and the gains NaN
    samples = _dirichlet(4, (2, 400, 10), alpha=5.0)
    idx, gains = batchbald_select(samples, 350, n_configurations=10, random_state=0)
    assert np.all(np.isfinite(gains)) and len(set(idx.tolist())) == 350


def test_batchbald_memory_is_chunked():
    # 4th pick: 1000 configurations x 2000 points x 10 classes = 160 MB if not chunked
    samples = _dirichlet(5, (10, 2000, 10))
    tracemalloc.start()
    batchbald_select(samples, 4, n_configurations=1000, block_elements=2**16)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 12e6, f"peak {peak / 1e6:.1f} MB"  # the samples (1.6 MB) and a few blocks


def test_batchbald_matches_batchbald_redux():
    torch = pytest.importorskip("torch")
    redux = pytest.importorskip(
        "batchbald_redux.batchbald", reason="batchbald-redux 2.0.5 (test-only reference) missing"
    )
    samples = _dirichlet(0, (8, 40, 3))
    log_probs = torch.log(torch.as_tensor(samples).permute(1, 0, 2))  # (n, T, C) for redux
    ref = redux.get_batchbald_batch(log_probs, 5, 100_000, dtype=torch.double)  # all exact
    idx, gains = batchbald_select(samples, 5, n_configurations=100_000)
    assert idx.tolist() == ref.indices
    np.testing.assert_allclose(np.cumsum(gains), ref.scores, rtol=1e-9)


def test_batchbald_bad_input():
    good = _dirichlet(0, (3, 4, 2))
    with pytest.raises(ValueError, match=r"shape \(n_samples, n, n_classes\)"):
        batchbald_select(good[0], 1)
    with pytest.raises(ValueError, match="must be probabilities"):
        batchbald_select(good * 2, 1)
    with pytest.raises(ValueError, match="NaN or infinity"):
        batchbald_select(np.where(good > 0.5, np.nan, good), 1)
    with pytest.raises(ValueError, match="'n_configurations' parameter of batchbald_select"):
        batchbald_select(good, 1, n_configurations=0)
    with pytest.raises(ValueError, match=r"'n_instances' parameter must be an int in the range"):
        batchbald_select(good, 5)


# ---------------------------------------------------------------------------- stochastic batches
SCORES = np.array([0.5, 0.0, 2.0, 1.0, 0.25])


def test_acquisition_distribution_hand_computed():
    np.testing.assert_allclose(acquisition_distribution(SCORES, "power"), SCORES / SCORES.sum())
    np.testing.assert_allclose(
        acquisition_distribution(SCORES, "power", temperature=0.5), SCORES**2 / (SCORES**2).sum()
    )
    soft = np.exp(SCORES / 2) / np.exp(SCORES / 2).sum()
    np.testing.assert_allclose(acquisition_distribution(SCORES, "softmax", 2.0), soft)
    ranks = np.array([3, 5, 1, 2, 4])
    np.testing.assert_allclose(acquisition_distribution(SCORES, "softrank"),
                               (1 / ranks) / (1 / ranks).sum())
    np.testing.assert_allclose(acquisition_distribution(np.zeros(4), "power"), 0.25)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_acquisition_distribution_matches_baal(temperature):
    stochastics = pytest.importorskip(
        "baal.active.heuristics.stochastics", reason="baal 2.1.0 (test-only reference) missing"
    )
    from baal.active.heuristics import BALD

    for mode, cls in [("power", stochastics.PowerSampling), ("softmax", stochastics.GibbsSampling),
                      ("softrank", stochastics.RankBasedSampling)]:
        ref = cls(BALD(), query_size=2, temperature=temperature)._make_distribution(SCORES.copy())
        np.testing.assert_allclose(acquisition_distribution(SCORES, mode, temperature), ref,
                                   rtol=1e-12)


@pytest.mark.parametrize("mode", ["power", "softmax", "softrank"])
def test_stochastic_select_first_draw_follows_the_distribution(mode):
    p = acquisition_distribution(SCORES, mode)
    first = [stochastic_select(SCORES, 1, mode=mode, random_state=s)[0] for s in range(4000)]
    freq = np.bincount(first, minlength=len(SCORES)) / 4000
    np.testing.assert_allclose(freq, p, atol=0.025)  # 3 standard errors at p = 0.5


def test_stochastic_select_seeded_unique_zero_last():
    a = stochastic_select(SCORES, 5, random_state=7)
    np.testing.assert_array_equal(a, stochastic_select(SCORES, 5, random_state=7))
    assert sorted(a.tolist()) == [0, 1, 2, 3, 4] and a[-1] == 1  # score 0: drawn last
    seeds = {tuple(stochastic_select(SCORES, 3, random_state=s)) for s in range(20)}
    assert len(seeds) > 1  # stochastic, not top-k
    cold = stochastic_select(SCORES, 3, mode="softmax", temperature=1e-3, random_state=0)
    assert cold.tolist() == [2, 3, 0]  # temperature -> 0: top-k


def test_stochastic_bad_input():
    with pytest.raises(ValueError, match="Power sampling in stochastic_select needs scores >= 0"):
        stochastic_select([0.1, -0.5], 1)
    with pytest.raises(ValueError, match="'mode' parameter of stochastic_select must be one of"):
        stochastic_select(SCORES, 1, mode="gibbs")
    with pytest.raises(ValueError, match="'temperature' parameter of stochastic_select"):
        stochastic_select(SCORES, 1, temperature=0)
    with pytest.raises(ValueError, match="contain NaN"):
        stochastic_select([np.nan, 1.0], 1)
    with pytest.raises(ValueError, match=r"needs scores of shape \(n,\)"):
        acquisition_distribution(np.ones((2, 2)))


# ---------------------------------------------------------------------------- BADGE
def _gradient_embedding(proba, z):
    a = proba.copy()
    a[np.arange(len(a)), a.argmax(1)] -= 1
    return (a[:, :, None] * z[:, None, :]).reshape(len(a), -1)  # (n, C * d), materialised


def brute_force_badge(proba, z, k, seed):
    g = _gradient_embedding(proba, z)
    rng = np.random.default_rng(seed)
    d2 = (g**2).sum(1)
    chosen = [int(np.argmax(d2))]
    picked = [d2[chosen[0]]]
    d2 = ((g - g[chosen[0]]) ** 2).sum(1)
    for _ in range(k - 1):
        d2[chosen] = 0
        i = int(rng.choice(len(g), p=d2 / d2.sum()))
        chosen.append(i)
        picked.append(d2[i])
        d2 = np.minimum(d2, ((g - g[i]) ** 2).sum(1))
    return chosen, picked


def test_gradient_sq_distances_match_the_materialised_embedding():
    rng = np.random.default_rng(0)
    proba, z = rng.dirichlet(np.ones(4), 30), rng.normal(size=(30, 6))
    g = _gradient_embedding(proba, z)
    a = proba.copy()
    a[np.arange(30), proba.argmax(1)] -= 1
    for c in (0, 7, 29):
        np.testing.assert_allclose(gradient_sq_distances(a, z, c), ((g - g[c]) ** 2).sum(1),
                                   atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_badge_matches_brute_force_kmeanspp(seed):
    rng = np.random.default_rng(10 + seed)
    proba, z = rng.dirichlet(np.ones(3), 50), rng.normal(size=(50, 5))
    idx, d2 = badge_select(proba, z, 8, random_state=seed)
    ref_idx, ref_d2 = brute_force_badge(proba, z, 8, seed)
    assert idx.tolist() == ref_idx
    np.testing.assert_allclose(d2, ref_d2, rtol=1e-10)


def test_badge_matches_scikit_activeml_utilities():
    pytest.importorskip("skactiveml", reason="scikit-activeml 1.0.1 (test-only reference) missing")
    from skactiveml.classifier import SklearnClassifier
    from skactiveml.pool import Badge
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = np.full(60, np.nan)
    y[:12] = np.arange(12) % 3
    clf = SklearnClassifier(LogisticRegression(), classes=[0, 1, 2]).fit(X, y)
    ref_idx, util = Badge(random_state=0).query(X, y, clf, fit_clf=False, batch_size=2,
                                                return_utilities=True)
    proba, z = clf.predict_proba(X[12:]), X[12:]  # a linear model: z is the input
    idx, _ = badge_select(proba, z, 1)
    assert idx[0] + 12 == ref_idx[0]  # the largest gradient norm, deterministic in both
    a = proba.copy()
    a[np.arange(48), proba.argmax(1)] -= 1
    # scikit-activeml keeps the origin as a centre after the first pick (D^2 = min(||g||^2, ...));
    # Ash et al.'s code, and skal, use the distance to the chosen points only
    d2 = np.minimum(gradient_sq_distances(a, z, idx[0]), (a**2).sum(1) * (z**2).sum(1))
    d2[idx[0]] = np.nan
    np.testing.assert_allclose(util[1, 12:], d2 / np.nansum(d2), rtol=1e-8)


def test_badge_memory_is_factorised():
    # n = 20000, C = 10, d = 64: the materialised (n, C * d) embedding alone is 102 MB
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(10), 20_000)
    z = rng.normal(size=(20_000, 64)).astype(np.float32)
    tracemalloc.start()
    badge_select(proba, z, 20, random_state=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 15e6, f"peak {peak / 1e6:.1f} MB"  # O(n (C + d)): ~ 2.5 MB here


def test_badge_all_zero_gradients_fall_back_to_uniform():
    proba = np.tile([1.0, 0.0], (6, 1))  # one-hot predictions: every gradient is 0
    idx, d2 = badge_select(proba, np.ones((6, 2)), 6, random_state=0)
    assert sorted(idx.tolist()) == list(range(6)) and np.all(d2 == 0)


def test_badge_bad_input():
    with pytest.raises(ValueError, match="must have one row per sample; got 3 and 2 rows"):
        badge_select(np.full((3, 2), 0.5), np.ones((2, 4)), 1)
    with pytest.raises(ValueError, match=r"needs 'embedding' of shape \(n, n_features\)"):
        badge_select(np.full((3, 2), 0.5), np.ones(3), 1)
    with pytest.raises(ValueError, match="'proba' given to badge_select contains NaN"):
        badge_select(np.full((3, 2), np.nan), np.ones((3, 4)), 1)


# ---------------------------------------------------------------------------- core-set
def brute_force_kcenter(X, k, labeled):
    centres = list(labeled)
    chosen = []
    for _ in range(k):
        d = np.sqrt(((X[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1)).min(1)
        d[chosen] = -1
        chosen.append(int(np.argmax(d)))
        centres.append(X[chosen[-1]])
    return chosen


@pytest.mark.parametrize("block", [7, 2**22])
def test_kcenter_greedy_matches_brute_force(block):
    rng = np.random.default_rng(0)
    X, L = rng.normal(size=(80, 3)), rng.normal(size=(9, 3))
    idx, dist = kcenter_greedy(X, 10, labeled=L, block_elements=block)
    assert idx.tolist() == brute_force_kcenter(X, 10, L)
    assert np.all(np.diff(dist) <= 1e-12)  # covering radius never grows
    np.testing.assert_allclose(min_sq_distances(X, L, block_elements=block),
                               ((X[:, None] - L[None]) ** 2).sum(-1).min(1), atol=1e-10)


def test_kcenter_greedy_without_labels_starts_at_a_seeded_random_point():
    X = np.random.default_rng(1).normal(size=(40, 2))
    idx, dist = kcenter_greedy(X, 5, random_state=3)
    np.testing.assert_array_equal(idx, kcenter_greedy(X, 5, random_state=3)[0])
    assert np.isnan(dist[0]) and idx[1:].tolist() == brute_force_kcenter(X, 4, [X[idx[0]]])


def test_kcenter_greedy_matches_scikit_activeml():
    pytest.importorskip("skactiveml", reason="scikit-activeml 1.0.1 (test-only reference) missing")
    from skactiveml.pool._core_set import k_greedy_center

    rng = np.random.default_rng(2)
    X, L = rng.normal(size=(70, 4)), rng.normal(size=(6, 4))
    y = np.r_[np.zeros(6), np.full(70, np.nan)]
    ref, _ = k_greedy_center(np.r_[L, X], y, batch_size=8, random_state=0)
    assert kcenter_greedy(X, 8, labeled=L)[0].tolist() == (ref - 6).tolist()


def test_kcenter_greedy_memory_is_blockwise():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 16)).astype(np.float32)
    L = rng.normal(size=(5_000, 16)).astype(np.float32)
    tracemalloc.start()
    kcenter_greedy(X, 5, labeled=L, block_elements=2**18)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 12e6, f"peak {peak / 1e6:.1f} MB"  # an n x m matrix would be 800 MB


def test_kcenter_bad_input():
    with pytest.raises(ValueError, match="have 2 columns but the pool features have 3"):
        kcenter_greedy(np.ones((4, 3)), 1, labeled=np.ones((2, 2)))
    with pytest.raises(ValueError, match="'block_elements' parameter of kcenter_greedy"):
        kcenter_greedy(np.ones((4, 3)), 1, block_elements=0)


# ---------------------------------------------------------------------------- TypiClust
def test_typicality_matches_nearest_neighbours():
    X = np.random.default_rng(0).normal(size=(50, 3))
    dist, _ = NearestNeighbors(n_neighbors=6).fit(X).kneighbors(X)  # self first, then 5
    expected = 1 / (1e-5 + dist[:, 1:].mean(1))
    np.testing.assert_allclose(typicality(X, 5), expected, rtol=1e-7)
    np.testing.assert_allclose(typicality(X, 5, block_elements=7), expected, rtol=1e-7)
    assert typicality(X[:1], 5).tolist() == [0.0]


def _blobs(seed, sizes):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(loc=4 * c, size=(m, 2)) for c, m in enumerate(sizes)])
    labels = np.repeat(np.arange(len(sizes)), sizes)
    return X, labels


def test_typiclust_largest_uncovered_clusters_first():
    X, labels = _blobs(0, [12, 20, 16, 10])
    labeled = np.zeros(len(X), dtype=bool)
    labeled[12] = True  # covers cluster 1, the largest
    idx, typ = typiclust_select(X, labels, 4, labeled=labeled, n_neighbors=3)
    assert labels[idx].tolist() == [2, 0, 3, 1]  # uncovered by size, then the covered one
    for i, t in zip(idx, typ):
        members = np.flatnonzero((labels == labels[i]) & ~labeled)
        k = min(3, len(members) // 2)
        assert i == members[np.argmax(typicality(X[members], k))] and t == typicality(
            X[members], k).max()


def test_typiclust_revisits_clusters_and_skips_small_ones():
    X, labels = _blobs(1, [10, 3, 8])
    idx, _ = typiclust_select(X, labels, 4, min_cluster_size=5)
    assert labels[idx].tolist() == [0, 2, 0, 2]  # the 3-point cluster is skipped
    idx, _ = typiclust_select(X, labels, len(X))  # everything: small clusters once big ones empty
    assert sorted(idx.tolist()) == list(range(len(X)))


def test_typiclust_matches_scikit_activeml():
    pytest.importorskip("skactiveml", reason="scikit-activeml 1.0.1 (test-only reference) missing")
    from skactiveml.pool import TypiClust

    X, labels = _blobs(2, [14, 30, 22, 18, 9])
    y = np.full(len(X), np.nan)
    y[[0, 3]] = 0  # two labelled points in cluster 0

    class Fixed:  # skactiveml's cluster_algo, returning our clustering
        def __init__(self, n_clusters):
            self.n_clusters = n_clusters

        def fit_predict(self, X):
            return labels

    # 2 labelled + 3 queries = 5 clusters, as scikit-activeml sets n_clusters
    ref = TypiClust(cluster_algo=Fixed, k=4, random_state=0).query(X, y, batch_size=3)
    idx, _ = typiclust_select(X, labels, 3, labeled=~np.isnan(y), n_neighbors=4,
                              min_cluster_size=1)
    assert idx.tolist() == ref.tolist()


def test_typiclust_bad_input():
    X, labels = _blobs(0, [5, 5])
    with pytest.raises(ValueError, match=r"cluster_labels given to typiclust_select must be "
                                         r"integers of shape \(10,\)"):
        typiclust_select(X, labels[:5], 1)
    with pytest.raises(ValueError, match=r"must be a boolean mask of shape \(10,\)"):
        typiclust_select(X, labels, 1, labeled=[True])
    with pytest.raises(ValueError, match=r"'n_instances' parameter must be an int in the range "
                                         r"\[1, 2\]"):
        typiclust_select(X, labels, 3, labeled=np.arange(10) < 8)
    with pytest.raises(ValueError, match="'n_neighbors' parameter of typiclust_select"):
        typiclust_select(X, labels, 1, n_neighbors=0)
