"""Low-budget selection: ProbCover and EPIG (skal.query.selection, skal.query._low_budget), TypiClust on an
encoder's features.

The pure functions against brute force (dense distance matrices, the EPIG formula broadcast in
full), hand-computed cases, information-theoretic identities and the reference packages
(scikit-activeml 1.0.1's ProbCover, baal 2.1.0's EPIG; each test skips with its reason when the
package is missing); the strategies against the pure functions on fake estimators, then on tiny
nets, learners and a Pipeline.
"""

import tracemalloc

import numpy as np
import pytest
from scipy.special import xlogy
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

import skal
from skal import ActiveLearner, ResNet18Classifier, epig, probcover, typiclust
from skal.query import bald_scores, select_top
from skal.query.selection import (
    ball_purity,
    epig_scores,
    probcover_select,
    purity_radius,
    stochastic_select,
)


def _blobs(seed, sizes, spread=1.0, gap=6.0, d=2):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(loc=gap * c, scale=spread, size=(m, d))
                        for c, m in enumerate(sizes)])
    return X, np.repeat(np.arange(len(sizes)), sizes)


def _distances(X):
    return np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))  # (n, n)


def _dirichlet(seed, shape, alpha=0.5):
    return np.random.default_rng(seed).dirichlet(np.full(shape[-1], alpha), size=shape[:-1])


# ---------------------------------------------------------------------------- purity radius
def brute_purity(D, labels, delta):
    pure = [(labels[D[i] < delta] == labels[i]).all() for i in range(len(D))]
    return float(np.mean(pure))


@pytest.mark.parametrize("alpha", [0.5, 0.8, 0.95, 1.0])
def test_purity_radius_is_the_largest_pure_enough_radius(alpha):
    X, _ = _blobs(0, [30, 25, 20], spread=1.5, gap=4.0)
    labels = KMeans(3, n_init=3, random_state=0).fit_predict(X)
    D = _distances(X)
    # purity only changes at pairwise distances: the brute-force answer is one of them
    candidates = np.unique(D[D > 0])
    ok = [v for v in candidates if brute_purity(D, labels, v) >= alpha]
    delta = purity_radius(X, labels, alpha)
    assert delta == pytest.approx(max(ok), rel=1e-12)
    assert brute_purity(D, labels, delta * (1 + 1e-9)) < alpha
    grid = np.linspace(0.1, 5, 25)
    np.testing.assert_allclose(ball_purity(X, labels, grid),
                               [brute_purity(D, labels, g) for g in grid])
    # chunked nearest-neighbour queries give the same radius
    assert purity_radius(X, labels, alpha, block_elements=7) == delta


def test_purity_radius_hand_computed_and_monotone():
    X = np.array([[0.0], [1.0], [3.0], [10.0]])  # r = 3, 2, 2, 7
    assert purity_radius(X, [0, 0, 1, 1], 0.5) == 3.0  # 2 of 4 balls pure at delta <= 3
    assert purity_radius(X, [0, 0, 1, 1], 0.75) == 2.0
    assert purity_radius(X, [0, 0, 1, 1], 1.0) == 2.0
    curve = ball_purity(X, [0, 0, 1, 1], np.linspace(0, 12, 50))
    assert np.all(np.diff(curve) <= 0) and curve[0] == 1.0 and curve[-1] == 0.0


def test_purity_radius_matches_scikit_activeml_grid():
    pytest.importorskip("skactiveml", reason="scikit-activeml 1.0.1 (test-only reference) missing")
    from skactiveml.pool import ProbCover

    X, _ = _blobs(1, [20, 20, 20], spread=1.5, gap=4.0)
    labels = KMeans(3, n_init=3, random_state=0).fit_predict(X)

    class Fixed:  # skactiveml's cluster_algo, returning our clustering
        def __init__(self, n_clusters):
            self.n_clusters = n_clusters

        def fit_predict(self, X):
            return labels

    grid = np.linspace(0.05, 4, 80)
    ref = ProbCover(n_classes=3, deltas=grid, alpha=0.9, cluster_algo=Fixed)
    ref.query(X, np.full(len(X), np.nan), batch_size=1)
    delta = purity_radius(X, labels, 0.9)
    # scikit-activeml's balls are closed (<=): its grid choice is the largest grid value < ours
    assert ref.delta_max_ == grid[grid < delta].max()


# ---------------------------------------------------------------------------- ProbCover greedy
def brute_probcover(X, k, labeled, radius, shrink=0.5, n_neighbors=20, cap=None):
    """The documented rule on dense matrices: coverage picks (ties: the larger first ball, then
    the lowest position), shrinks, then typicality breaking the ties."""
    n = len(X)
    D = _distances(X)
    size = (D < radius).sum(axis=1)  # the true first balls, beyond the cap

    def balls(r):
        B = D < r
        np.fill_diagonal(B, True)
        if cap is not None:
            for i in range(n):
                inside = np.flatnonzero(B[i] & (np.arange(n) != i))
                inside = inside[np.argsort(D[i, inside], kind="stable")][:cap - 1]
                B[i] = False
                B[i, inside] = B[i, i] = True
        return B

    def covered(B, centres):
        return B[centres].any(axis=0) if len(centres) else np.zeros(n, dtype=bool)

    others = D + np.diag(np.full(n, np.inf))
    kk = min(n_neighbors, n - 1)
    typ = 1 / (1e-5 + np.sort(others, axis=1)[:, :kk].mean(axis=1))
    lab = list(np.flatnonzero(labeled))
    B, chosen, gains, radii, shrunk = balls(radius), [], [], [], False
    cov = covered(B, lab)
    while len(chosen) < k:
        avail = [i for i in range(n) if not labeled[i] and i not in chosen]
        g = (B & ~cov).sum(axis=1)
        best = max(avail, key=lambda i: (g[i], size[i], -i))
        if g[best] >= 2:
            chosen.append(best), gains.append(g[best]), radii.append(radius)
            cov |= B[best]
            shrunk = False
            continue
        if shrunk:
            while len(chosen) < k:
                avail = [i for i in range(n) if not labeled[i] and i not in chosen]
                g = (B & ~cov).sum(axis=1)
                best = max(avail, key=lambda i: (g[i], typ[i], -i))
                chosen.append(best), gains.append(g[best]), radii.append(radius)
                cov |= B[best]
            break
        radius *= shrink
        B = balls(radius)
        cov = covered(B, lab + chosen)
        shrunk = True
    return chosen, gains, radii


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("cap, block", [(None, 2**22), (None, 7), (4, 2**22), (3, 11)])
def test_probcover_matches_brute_force(seed, cap, block):
    X, _ = _blobs(seed, [15, 12, 9, 6], spread=1.0, gap=3.0)
    labeled = np.zeros(len(X), dtype=bool)
    labeled[[0, 20]] = True
    # 30 of 40 unlabelled points: several shrinks, and the typicality fill at the end
    idx, gains, radii = probcover_select(X, 30, labeled=labeled, radius=1.7,
                                         max_neighbors=cap or 10**6, n_neighbors=5,
                                         block_elements=block)
    ref = brute_probcover(X, 30, labeled, 1.7, n_neighbors=5, cap=cap)
    assert idx.tolist() == ref[0]
    assert gains.tolist() == ref[1]
    np.testing.assert_allclose(radii, ref[2])
    assert len(set(radii.tolist())) > 2  # the radius did shrink
    assert not labeled[idx].any() and len(set(idx.tolist())) == 30


def test_probcover_hand_computed_shrinks():
    X = np.arange(10.0).reshape(-1, 1)  # 0, 1, ..., 9
    idx, gains, radii = probcover_select(X, 3, radius=10.5)
    # 10.5: point 0 covers all; 5.25: point 4's ball {0..9} holds the uncovered 6..9;
    # 2.625: the balls of 0 and 4 cover 0..6, point 7's ball holds 7, 8, 9
    assert idx.tolist() == [0, 4, 7]
    assert gains.tolist() == [10, 4, 3]
    assert radii.tolist() == [10.5, 5.25, 2.625]


@pytest.mark.filterwarnings("ignore:The maximum purity was:UserWarning")  # one delta: no scan
def test_probcover_matches_scikit_activeml_gains():
    pytest.importorskip("skactiveml", reason="scikit-activeml 1.0.1 (test-only reference) missing")
    from skactiveml.pool import ProbCover

    X, blob = _blobs(2, [9, 7, 5, 4, 3], spread=0.1, gap=3.0)  # tight blobs: ball = blob
    y = np.full(len(X), np.nan)
    y[9] = 0  # one labelled point covers the 7-point blob
    ref = ProbCover(deltas=[1.0], random_state=0)
    ref_idx, utilities = ref.query(X, y, batch_size=4, return_utilities=True)
    ref_gains = utilities[np.arange(4), ref_idx]
    idx, gains, _ = probcover_select(X, 4, labeled=~np.isnan(y), radius=1.0)
    assert gains.tolist() == ref_gains.tolist() == [9, 5, 4, 3]
    assert blob[idx].tolist() == blob[ref_idx].tolist() == [0, 2, 3, 4]


def test_probcover_with_duplicates_and_the_whole_pool():
    X = np.repeat(np.random.default_rng(0).normal(size=(6, 2)), 4, axis=0)  # 6 points x 4
    idx, gains, _ = probcover_select(X, 24, radius=0.05)
    assert sorted(idx.tolist()) == list(range(24))  # terminates, every point once
    assert gains[:6].tolist() == [4] * 6 and gains[6:].sum() == 0


def test_probcover_memory_is_bounded():
    # 5000 points, balls of ~1000: the uncapped graph would hold ~5e6 edges (~70 MB)
    rng = np.random.default_rng(0)
    X = rng.random((5000, 3))
    tracemalloc.start()
    idx, _, _ = probcover_select(X, 5, radius=0.4, max_neighbors=16, block_elements=2**15)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(set(idx.tolist())) == 5
    # the capped graph: 5000 x 16 edges x ~14 B = 1.1 MB; one query block: 2**15 neighbours
    assert peak < 8e6, f"peak {peak / 1e6:.1f} MB"


def test_probcover_select_bad_input():
    X, labels = _blobs(0, [5, 5])
    with pytest.raises(ValueError, match="needs a radius or cluster_labels"):
        probcover_select(X, 1)
    with pytest.raises(ValueError, match=r"The 'purity_threshold' parameter of probcover_select "
                                         r"must be a float in the range \(0\.0, 1\.0\]\. Got 0 instead"):
        probcover_select(X, 1, cluster_labels=labels, purity_threshold=0)
    with pytest.raises(ValueError, match=r"'purity_threshold' parameter of purity_radius must be "
                                         r"a float in the range \(0\.0, 1\.0\]\. Got 1.5"):
        purity_radius(X, labels, 1.5)
    with pytest.raises(ValueError, match="'radius' parameter of probcover_select must be None or "
                                         r"a float in the range \(0\.0, inf\)\. Got -1\.0"):
        probcover_select(X, 1, radius=-1.0)
    with pytest.raises(ValueError, match=r"'shrink' parameter of probcover_select must be a "
                                         r"float in the range \(0\.0, 1\.0\)\. Got 1\.0"):
        probcover_select(X, 1, radius=1.0, shrink=1.0)
    with pytest.raises(ValueError, match="'max_neighbors' parameter of probcover_select"):
        probcover_select(X, 1, radius=1.0, max_neighbors=0)
    with pytest.raises(ValueError, match=r"must be a boolean mask of shape \(10,\)"):
        probcover_select(X, 1, radius=1.0, labeled=[True])
    with pytest.raises(ValueError, match=r"cluster_labels given to purity_radius must be "
                                         r"integers of shape \(10,\)"):
        probcover_select(X, 1, cluster_labels=labels[:4])
    with pytest.raises(ValueError, match=r"hold 1 cluster\(s\)"):
        probcover_select(X, 1, cluster_labels=np.zeros(10, dtype=int))
    with pytest.raises(ValueError, match=r"'n_instances' parameter must be an int in the range "
                                         r"\[1, 2\]"):
        probcover_select(X, 3, radius=1.0, labeled=np.arange(10) < 8)
    with pytest.raises(ValueError, match="'features' given to probcover_select contains NaN"):
        probcover_select(np.full((3, 2), np.nan), 1, radius=1.0)


# ---------------------------------------------------------------------------- EPIG scores
def direct_epig(P, Q):
    """The authors' formula, broadcast in full: mean_j KL(p(y, y*_j) || p(y) p(y*_j))."""
    joint = np.mean(P[:, :, None, :, None] * Q[:, None, :, None, :], axis=0)  # (n, m, C, C)
    indep = P.mean(0)[:, None, :, None] * Q.mean(0)[None, :, None, :]
    kl = np.where(joint > 0, joint * (np.log(np.where(joint > 0, joint, 1)) - np.log(indep)), 0)
    return kl.sum(axis=(2, 3)).mean(axis=1)


@pytest.mark.parametrize("block", [1, 5, 2**22])
def test_epig_matches_the_direct_formula(block):
    P, Q = _dirichlet(0, (7, 9, 3)), _dirichlet(1, (7, 4, 3))  # (T, n, C), (T, m, C)
    np.testing.assert_allclose(epig_scores(P, Q, block_elements=block), direct_epig(P, Q),
                               rtol=1e-10, atol=1e-13)


def test_epig_identities():
    P = _dirichlet(2, (6, 10, 4))
    bald = bald_scores(P)
    pair = np.array([[epig_scores(P[:, [i]], P[:, [j]])[0] for j in range(10)]
                     for i in range(10)])  # (n, n): I[y_i; y_j]
    np.testing.assert_allclose(pair, pair.T, atol=1e-12)  # symmetric
    # I[y; y*] <= I[y; w] and <= I[y*; w] (y, y* independent given w); >= 0
    assert np.all(pair >= -1e-12) and np.all(pair <= bald[:, None] + 1e-12)
    assert np.all(pair <= bald[None, :] + 1e-12)
    scores = epig_scores(P, P)
    np.testing.assert_allclose(scores, pair.mean(axis=1), atol=1e-12)
    assert np.all(scores <= bald + 1e-12)
    # x* = x: I[y; y'] = 2 H[p] - H[mean_t p_t p_t^T]
    pbar = P.mean(0)
    h = -xlogy(pbar, pbar).sum(1)
    joint = np.einsum("tic,tid->icd", P, P) / 6  # (n, C, C)
    np.testing.assert_allclose(np.diag(pair), 2 * h + xlogy(joint, joint).sum((1, 2)), atol=1e-12)
    # one-hot passes: y' = y given w, so I[y; y'] = H[y] = BALD
    onehot = np.eye(4)[np.random.default_rng(3).integers(4, size=(6, 10))]  # (T, n, C)
    np.testing.assert_allclose(
        [epig_scores(onehot[:, [i]], onehot[:, [i]])[0] for i in range(10)],
        bald_scores(onehot), atol=1e-12)
    # no epistemic uncertainty (T = 1, or passes that agree): EPIG = 0
    assert np.allclose(epig_scores(P[:1], P[:1]), 0, atol=1e-12)
    same = np.repeat(P[:1], 5, axis=0)
    assert np.allclose(epig_scores(same, P[:5]), 0, atol=1e-12)


def test_epig_matches_baal():
    pytest.importorskip("torch")
    heuristics = pytest.importorskip("baal.active.heuristics",
                                     reason="baal 2.1.0 (test-only reference) missing")
    P, Q = _dirichlet(4, (8, 12, 3)), _dirichlet(5, (8, 6, 3))
    ref = heuristics.EPIG().compute_score(P.transpose(1, 2, 0), Q.transpose(1, 2, 0))  # (n, C, T)
    np.testing.assert_allclose(epig_scores(P, Q), ref, atol=1e-5)  # baal computes in float32


def test_epig_memory_is_blockwise():
    # the whole joint would be 1200 x 1200 x 10 x 10 float64 = 1.15 GB
    P, Q = _dirichlet(6, (3, 1200, 10), 1.0), _dirichlet(7, (3, 1200, 10), 1.0)
    tracemalloc.start()
    epig_scores(P, Q, block_elements=2**15)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4e6, f"peak {peak / 1e6:.1f} MB"  # the samples (2 x 0.3 MB) and a few blocks


def test_epig_scores_bad_input():
    P = _dirichlet(0, (4, 5, 3))
    with pytest.raises(ValueError, match=r"must have shape \(4, m, 3\), the MC passes and "
                                         r"classes of samples"):
        epig_scores(P, P[:3])
    with pytest.raises(ValueError, match=r"must have shape \(4, m, 3\)"):
        epig_scores(P, _dirichlet(0, (4, 5, 2)))
    with pytest.raises(ValueError, match="must be probabilities"):
        epig_scores(P, P * 2)
    with pytest.raises(ValueError, match="hold no target point"):
        epig_scores(P, P[:, :0])
    with pytest.raises(ValueError, match=r"shape \(n_samples, n, n_classes\)"):
        epig_scores(P[0], P)


# ---------------------------------------------------------------------------- strategies (fakes)
N, N_TARGET = 40, 15
RNG = np.random.default_rng(0)
TABLE = RNG.dirichlet(np.full(3, 0.5), (6, N + N_TARGET))  # (T, rows, C): fixed MC samples
Z = np.concatenate([RNG.normal(loc=5 * (i % 4), size=(1, 5)) for i in range(N)])  # 4 blobs
POOL = np.arange(N).reshape(-1, 1)  # rows index the fixed outputs
TARGET = np.arange(N, N + N_TARGET).reshape(-1, 1)


class Fixed:
    """A fake fitted estimator: fixed MC samples and features per row id, calls recorded."""

    classes_ = np.arange(4)

    def __init__(self):
        self.calls = []

    def sample_proba(self, X, n_samples=20, random_state=None):
        rows = np.asarray(X, dtype=int).ravel()
        self.calls.append(("sample_proba", rows.tolist()))
        return TABLE[:, rows]

    def embed(self, X):
        return Z[np.asarray(X, dtype=int).ravel()]


class ModALLike:
    """What skal's strategies read of a modAL learner: estimator, query_strategy, X_training."""

    def __init__(self, estimator, X_training):
        self.estimator, self.X_training = estimator, X_training
        self.query_strategy = None


def test_epig_is_epig_scores_on_one_call():
    est = Fixed()
    idx, scores = epig(est, POOL, 5)
    expected = epig_scores(TABLE[:, :N], TABLE[:, :N])  # the pool is the target set
    np.testing.assert_array_equal(idx, select_top(expected, 5))
    np.testing.assert_allclose(scores, expected[idx])
    assert est.calls == [("sample_proba", list(range(N)))]  # the pool once
    est = Fixed()
    idx, scores = epig(est, POOL, 5, X_target=TARGET)
    expected = epig_scores(TABLE[:, :N], TABLE[:, N:])
    np.testing.assert_array_equal(idx, select_top(expected, 5))
    assert est.calls == [("sample_proba", list(range(N + N_TARGET)))]  # pool + targets, one call


def test_epig_subsets_are_seeded_and_sampled_once():
    est = Fixed()
    idx, scores = epig(est, POOL, 3, n_target=10, subsample=12, random_state=4)
    rng = np.random.default_rng(4)
    cand = np.sort(rng.choice(N, 12, replace=False))
    targ = np.sort(rng.choice(N, 10, replace=False))
    assert est.calls == [("sample_proba", np.union1d(cand, targ).tolist())]  # each row once
    expected = epig_scores(TABLE[:, cand], TABLE[:, targ])
    np.testing.assert_array_equal(idx, cand[select_top(expected, 3)])
    np.testing.assert_allclose(scores, expected[select_top(expected, 3)])
    again = epig(Fixed(), POOL, 3, n_target=10, subsample=12, random_state=4)
    np.testing.assert_array_equal(again[0], idx)
    est = Fixed()
    epig(est, POOL, 3, X_target=TARGET, n_target=4, random_state=0)
    rows = est.calls[0][1]
    assert rows[:N] == list(range(N)) and len(rows) == N + 4 and set(rows[N:]) < set(range(N, 55))


@pytest.mark.parametrize("mode", ["power", "softmax", "softrank"])
def test_epig_stochastic_modes(mode):
    idx, scores = epig(Fixed(), POOL, 6, mode=mode, temperature=0.5, random_state=3)
    rng = np.random.default_rng(3)
    rng.integers(2**31 - 1)  # the dropout seed is drawn first
    s = epig_scores(TABLE[:, :N], TABLE[:, :N])
    ref = stochastic_select(np.maximum(s, 0) if mode == "power" else s, 6, mode=mode,
                            temperature=0.5, random_state=rng)
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(scores, s[idx])
    assert len({tuple(epig(Fixed(), POOL, 6, mode=mode, random_state=r)[0]) for r in range(4)}) > 1


def test_probcover_is_the_selector_on_the_features():
    idx, gains = probcover(Fixed(), POOL, 4, random_state=0)
    labels = KMeans(4, n_init=10, random_state=int(np.random.default_rng(0).integers(2**31 - 1))
                    ).fit_predict(Z)
    ref_idx, ref_gains, _ = probcover_select(Z, 4, cluster_labels=labels.astype(np.int64))
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(gains, ref_gains)
    assert sorted(idx % 4) == [0, 1, 2, 3]  # one per blob
    # labelled rows (given, or a modAL-like learner's X_training) are covered first
    idx, _ = probcover(Fixed(), POOL[8:], 2, X_labeled=POOL[:2], radius=4.0)
    ref_idx, _, _ = probcover_select(Z[[0, 1, *range(8, N)]], 2, labeled=np.arange(34) < 2,
                                     radius=4.0)
    np.testing.assert_array_equal(idx, ref_idx - 2)
    assert sorted((idx + 8) % 4) == [2, 3]
    via, _ = probcover(ModALLike(Fixed(), POOL[:2]), POOL[8:], 2, radius=4.0)
    np.testing.assert_array_equal(via, idx)


def test_typiclust_and_probcover_on_an_encoder_transform(digits_small):
    X, y = digits_small
    from sklearn.decomposition import PCA

    pca = PCA(6, random_state=0).fit(X.reshape(len(X), -1))

    def encode(rows):  # a fitted encoder's transform: (n, 1, 8, 8) -> (n, 6)
        return pca.transform(np.asarray(rows).reshape(len(rows), -1))

    model = LogisticRegression()  # unfitted: without embedding=, the flattened input is used
    for strategy, kwargs in ((typiclust, {"n_neighbors": 5}), (probcover, {"n_classes": 10})):
        idx, _ = strategy(model, X[50:250], 8, X_labeled=X[:50], embedding=encode,
                          random_state=0, **kwargs)
        ref, _ = strategy(model, encode(X[50:250]), 8, X_labeled=encode(X[:50]),
                          embedding="input", random_state=0, **kwargs)
        np.testing.assert_array_equal(idx, ref)
        assert len(set(idx.tolist())) == 8 and idx.max() < 200
        plain, _ = strategy(model, X[50:250], 8, X_labeled=X[:50], random_state=0, **kwargs)
        assert not np.array_equal(plain, idx)  # the encoder's space is another space


# ---------------------------------------------------------------------------- errors
def test_bad_arguments():
    with pytest.raises(ValueError, match=r"The 'purity_threshold' parameter of probcover must be "
                                         r"a float in the range \(0\.0, 1\.0\]\. Got 0.0 instead"):
        probcover(Fixed(), POOL, 2, purity_threshold=0.0)
    with pytest.raises(ValueError, match=r"'purity_threshold' parameter of probcover must be a "
                                         r"float in the range \(0\.0, 1\.0\]\. Got 1.2"):
        probcover(Fixed(), POOL, 2, purity_threshold=1.2)
    with pytest.raises(ValueError, match=r"'radius' parameter of probcover must be None or a "
                                         r"float in the range \(0\.0, inf\)\. Got 0\.0"):
        probcover(Fixed(), POOL, 2, radius=0.0)
    with pytest.raises(ValueError, match=r"'n_classes' parameter of probcover must be None or an "
                                         r"int in the range \[2, inf\)\. Got 1"):
        probcover(Fixed(), POOL, 2, n_classes=1)
    with pytest.raises(ValueError, match="LogisticRegression has no classes_ .* pass n_classes="):
        probcover(LogisticRegression(), POOL, 2)
    with pytest.raises(ValueError, match="n_classes = 10 clusters .* needs more than 10 points; "
                                         "got 6"):
        probcover(LogisticRegression(), POOL[:6], 2, n_classes=10)
    with pytest.raises(ValueError, match="The embedding given to probcover returned 3 rows"):
        probcover(Fixed(), POOL, 2, embedding=lambda X: np.ones((3, 2)))
    with pytest.raises(ValueError, match="have 2 columns but the pool features have 1"):
        probcover(Fixed(), POOL, 2, X_labeled=np.ones((3, 2)), embedding="input")
    with pytest.raises(ValueError, match=r"The 'X_target' parameter of epig must hold samples of "
                                         r"the pool's shape \(1, 8, 8\); got samples of shape "
                                         r"\(1, 16, 16\)"):
        epig(Fixed(), np.zeros((5, 1, 8, 8)), 1, X_target=np.zeros((3, 1, 16, 16)))
    with pytest.raises(ValueError, match="'X_target' parameter of epig is empty"):
        epig(Fixed(), POOL, 1, X_target=TARGET[:0])
    with pytest.raises(ValueError, match=r"The 'mode' parameter of epig must be one of \('top', "
                                         r"'power', 'softmax', 'softrank'\)"):
        epig(Fixed(), POOL, 2, mode="topk")
    with pytest.raises(ValueError, match="'n_target' parameter of epig must be None or an int"):
        epig(Fixed(), POOL, 2, n_target=0)
    with pytest.raises(ValueError, match=r"'temperature' parameter of epig must be a float in the "
                                         r"range \(0\.0, inf\)\. Got 0\.0"):
        epig(Fixed(), POOL, 2, mode="power", temperature=0.0)
    with pytest.raises(TypeError, match="epig needs an estimator with a sample_proba"):
        epig(LogisticRegression(), POOL, 2)
    for strategy in (probcover, epig):
        with pytest.raises(ValueError, match=rf"'n_instances' parameter must be an int in the "
                                             rf"range \[1, {N}\]"):
            strategy(Fixed(), POOL, N + 1)
        with pytest.raises(ValueError, match="'n_instances' parameter must be an int"):
            strategy(Fixed(), POOL, 0)
        with pytest.raises(ValueError, match=f"The 'random_state' parameter of "
                                             rf"{strategy.__name__} must be None, an int in the range \[0, inf\)"):
            strategy(Fixed(), POOL, 2, random_state=-1)


def test_exports():
    for name in ("probcover", "epig"):
        assert getattr(skal, name) is getattr(skal.query._low_budget, name)
        assert name in skal.__all__ and name in skal.query.__all__
    assert skal.query.typiclust is skal.typiclust


# ---------------------------------------------------------------------------- real nets
@pytest.fixture(scope="module")
def learner(digits_small, tiny_resnet):
    X, y = digits_small
    al = ActiveLearner(tiny_resnet, query_strategy=probcover)
    al.X_training_, al.y_training_ = X[:100], y[:100]  # as fit would leave them
    return al


@pytest.mark.parametrize("strategy, kwargs", [
    (probcover, {}),
    (epig, {"n_samples": 4, "n_target": 30}),
    (epig, {"n_samples": 4, "mode": "power"}),
])
def test_strategies_in_learners(strategy, kwargs, digits_small, tiny_resnet, learner):
    X, _ = digits_small
    learner.query_strategy = strategy
    idx, X_query, scores = learner.query(X[100:220], n_instances=5, return_metrics=True,
                                         random_state=0, **kwargs)
    assert idx.dtype == np.int64 and len(set(idx.tolist())) == 5 and idx.max() < 120
    np.testing.assert_array_equal(X_query, X[100:220][idx])
    assert np.shape(scores) == (5,)
    again, _ = learner.query(X[100:220], n_instances=5, random_state=0, **kwargs)
    np.testing.assert_array_equal(again, idx)  # seeded
    direct, _ = strategy(ModALLike(tiny_resnet, X[:100]), X[100:220], 5, random_state=0,
                         **kwargs)
    np.testing.assert_array_equal(direct, idx)  # a modAL-style learner: the same batch


def test_epig_pool_and_targets_share_the_weight_draws(digits_small, tiny_resnet):
    X, _ = digits_small
    pool = X[100:160]
    # the pool as X_target (concatenated, one call) or as the default target (the pool's rows):
    # consistent MC dropout gives every row the same passes either way
    a_idx, a = epig(tiny_resnet, pool, 5, n_samples=6, random_state=1)
    b_idx, b = epig(tiny_resnet, pool, 5, X_target=pool, n_samples=6, random_state=1)
    np.testing.assert_array_equal(a_idx, b_idx)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    seed = int(np.random.default_rng(1).integers(2**31 - 1))
    samples = tiny_resnet.sample_proba(pool, n_samples=6, random_state=seed)
    expected = epig_scores(samples, samples)
    np.testing.assert_allclose(a, expected[a_idx], rtol=1e-5, atol=1e-7)
    assert np.all(expected <= bald_scores(samples) + 1e-6)


def test_strategies_through_a_pipeline(digits_small):
    X, y = digits_small
    flat = X.reshape(len(X), -1).astype(np.float32)
    pipe = make_pipeline(
        MinMaxScaler(), ResNet18Classifier(width=4, max_epochs=1, image_shape=(1, 8, 8),
                                           random_state=0),
    ).fit(flat[:60], y[:60])
    for strategy, kwargs in ((probcover, {}), (epig, {"n_samples": 3, "X_target": flat[300:]})):
        idx, _ = strategy(pipe, flat[60:160], 4, random_state=0, **kwargs)
        assert len(set(idx.tolist())) == 4 and idx.max() < 100
