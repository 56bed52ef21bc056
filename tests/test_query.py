"""Query strategies on fixed probabilities with hand-computed answers."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from skal import (
    ResNet18Classifier,
    bald,
    entropy_sampling,
    margin_sampling,
    random_sampling,
    uncertainty_sampling,
)
from skal.query import bald_scores, entropy, least_confidence, margin, select_top


class FixedProba:
    """A fake fitted estimator with fixed outputs (modAL's trick for testing strategies)."""

    def __init__(self, proba, samples=None):
        self.proba = np.asarray(proba, dtype=float)
        self.samples = samples
        self.calls = 0

    def predict_proba(self, X):
        self.calls += 1
        return self.proba[np.asarray(X, dtype=int).ravel()]

    def sample_proba(self, X, n_samples=20, random_state=None):
        self.calls += 1
        return self.samples[:, np.asarray(X, dtype=int).ravel()]


PROBA = np.array(
    [
        [0.90, 0.05, 0.05],  # confident
        [0.40, 0.35, 0.25],  # least confident, small margin
        [0.50, 0.50, 0.00],  # zero margin, a zero probability
        [1 / 3, 1 / 3, 1 / 3],  # uniform: max entropy
        [0.70, 0.20, 0.10],
    ]
)
POOL = np.arange(len(PROBA)).reshape(-1, 1)  # rows index PROBA


def test_pure_scores_hand_computed():
    np.testing.assert_allclose(least_confidence(PROBA), [0.1, 0.6, 0.5, 2 / 3, 0.3])
    np.testing.assert_allclose(margin(PROBA), [0.85, 0.05, 0.0, 0.0, 0.5], atol=1e-12)
    expected_h = [
        -(0.9 * np.log(0.9) + 2 * 0.05 * np.log(0.05)),
        -(0.4 * np.log(0.4) + 0.35 * np.log(0.35) + 0.25 * np.log(0.25)),
        np.log(2),  # 0 log 0 = 0, no NaN
        np.log(3),
        -(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)),
    ]
    np.testing.assert_allclose(entropy(PROBA), expected_h)


def test_uncertainty_margin_entropy_pick_expected_rows():
    est = FixedProba(PROBA)
    idx, scores = uncertainty_sampling(est, POOL, n_instances=2)
    assert idx.tolist() == [3, 1]
    np.testing.assert_allclose(scores, [2 / 3, 0.6])
    # rows 2 and 3 tie at margin 0; ties go to the lower index without a random_state
    idx, scores = margin_sampling(est, POOL, n_instances=3)
    assert idx.tolist() == [2, 3, 1]
    np.testing.assert_allclose(scores, [0.0, 0.0, -0.05], atol=1e-12)
    idx, _ = entropy_sampling(est, POOL, n_instances=1)
    assert idx.tolist() == [3]
    assert idx.dtype == np.int64


def test_strategy_evaluates_the_model_once():
    est = FixedProba(PROBA)
    entropy_sampling(est, POOL, n_instances=2)
    assert est.calls == 1


def test_bald_hand_computed():
    # two MC samples, three pool points, two classes
    samples = np.array(
        [
            [[1.0, 0.0], [0.5, 0.5], [0.9, 0.1]],
            [[0.0, 1.0], [0.5, 0.5], [0.9, 0.1]],
        ]
    )
    scores = bald_scores(samples)
    # point 0: mean (0.5, 0.5) -> H = log 2, each sample H = 0 -> I = log 2 (no NaN from 0 log 0)
    # point 1: aleatoric only -> I = 0; point 2: identical samples -> I = 0
    np.testing.assert_allclose(scores, [np.log(2), 0.0, 0.0], atol=1e-12)
    est = FixedProba(samples.mean(0), samples)
    idx, best = bald(est, np.arange(3).reshape(-1, 1), n_instances=1)
    assert idx.tolist() == [0]
    np.testing.assert_allclose(best, [np.log(2)])
    assert est.calls == 1


def test_bald_rejects_bad_shape_and_estimator_without_sampling():
    with pytest.raises(ValueError, match=r"shape \(n_samples, n, n_classes\)"):
        bald_scores(np.ones((3, 2)))
    with pytest.raises(TypeError, match="sample_proba"):
        bald(object(), POOL, n_instances=1)


def test_ties_are_deterministic_under_random_state():
    scores = np.zeros(50)
    a = select_top(scores, 10, random_state=0)
    b = select_top(scores, 10, random_state=0)
    c = select_top(scores, 10, random_state=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(set(a.tolist())) == 10
    np.testing.assert_array_equal(select_top(scores, 3), [0, 1, 2])


def test_random_sampling_unique_reproducible():
    pool = np.zeros((100, 2))
    a, s = random_sampling(None, pool, n_instances=30, random_state=3)
    b, _ = random_sampling(None, pool, n_instances=30, random_state=3)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) == 30 and a.max() < 100
    assert s.shape == (30,)


@pytest.mark.parametrize(
    "strategy", [random_sampling, uncertainty_sampling, margin_sampling, entropy_sampling, bald]
)
@pytest.mark.parametrize("n_instances", [0, -1, 6, 2.5, True])
def test_bad_n_instances(strategy, n_instances):
    est = FixedProba(PROBA, np.stack([PROBA, PROBA]))
    with pytest.raises(ValueError, match=r"'n_instances' parameter must be an int in the range \[1, 5\]"):
        strategy(est, POOL, n_instances=n_instances)


@pytest.mark.parametrize(
    "strategy", [random_sampling, uncertainty_sampling, margin_sampling, entropy_sampling, bald]
)
def test_empty_pool(strategy):
    with pytest.raises(ValueError, match="X_pool is empty"):
        strategy(FixedProba(PROBA), np.zeros((0, 1)), n_instances=1)


def test_nan_scores_are_an_error():
    proba = PROBA.copy()
    proba[1] = np.nan
    with pytest.raises(ValueError, match="contain NaN"):
        entropy_sampling(FixedProba(proba), POOL, n_instances=1)


@pytest.mark.parametrize("strategy", [uncertainty_sampling, bald])
def test_query_before_fit(strategy):
    X = np.zeros((4, 1, 8, 8), dtype=np.float32)
    with pytest.raises(NotFittedError, match="not fitted"):
        strategy(ResNet18Classifier(width=2), X, n_instances=1)


def test_bald_on_a_real_net_subsample_and_reproducible(digits_small, tiny_resnet):
    X, y = digits_small
    pool = X[100:300]
    a, sa = bald(tiny_resnet, pool, n_instances=5, n_samples=8, random_state=0)
    b, sb = bald(tiny_resnet, pool, n_instances=5, n_samples=8, random_state=0)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(sa, sb)
    assert np.all(sa[:-1] >= sa[1:])  # best first
    c, _ = bald(tiny_resnet, pool, n_instances=5, n_samples=8, subsample=50, random_state=0)
    assert len(np.unique(c)) == 5 and c.max() < len(pool)
