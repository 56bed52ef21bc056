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


# ------------------------------------------------------------------ one score convention (18)
@pytest.mark.parametrize(
    "strategy, utility",
    [
        (uncertainty_sampling, least_confidence),
        (margin_sampling, lambda p: -margin(p)),
        (entropy_sampling, entropy),
    ],
)
def test_scores_are_utilities_higher_is_more_informative(strategy, utility):
    idx, scores = strategy(FixedProba(PROBA), POOL, n_instances=5)
    np.testing.assert_allclose(scores, utility(PROBA)[idx], atol=1e-12)
    assert np.all(scores[:-1] >= scores[1:])  # best first = highest first
    assert scores[0] == utility(PROBA).max()


def test_margin_sampling_returns_minus_the_margin():
    # modAL's margin_sampling reports +margin (smallest first); skal negates it so that, as for
    # every skal strategy, higher = more informative. The chosen rows are the same.
    idx, scores = margin_sampling(FixedProba(PROBA), POOL, n_instances=5)
    assert idx.tolist() == [2, 3, 1, 4, 0]
    np.testing.assert_allclose(scores, [-0.0, -0.0, -0.05, -0.5, -0.85], atol=1e-12)
    assert np.all(scores <= 0)


# ------------------------------------------------------------------ bad input to strategies
ALL_STRATEGIES = [random_sampling, uncertainty_sampling, margin_sampling, entropy_sampling, bald]


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
@pytest.mark.parametrize("random_state", ["x", 1.5, -1, [0]])
def test_bad_random_state(strategy, random_state):
    est = FixedProba(PROBA, np.stack([PROBA, PROBA]))
    with pytest.raises(ValueError, match=rf"The 'random_state' parameter of {strategy.__name__} "
                       r"must be None, an int in the range \[0, inf\), a RandomState or a Generator\. Got "):
        strategy(est, POOL, n_instances=1, random_state=random_state)


def test_bad_random_state_in_select_top():
    with pytest.raises(ValueError, match="'random_state' parameter of select_top must be None"):
        select_top(np.zeros(3), 1, random_state="x")


@pytest.mark.parametrize("subsample", [0, -1, 2.5, True, "10"])
def test_bald_bad_subsample(subsample):
    est = FixedProba(PROBA, np.stack([PROBA, PROBA]))
    with pytest.raises(ValueError, match=r"The 'subsample' parameter of bald must be None or an "
                       rf"int in the range \[1, inf\)\. Got {subsample!r} instead"):
        bald(est, POOL, n_instances=1, subsample=subsample)


@pytest.mark.parametrize("n_samples", [0, -3, 2.0, None])
def test_bald_bad_n_samples(n_samples):
    est = FixedProba(PROBA, np.stack([PROBA, PROBA]))
    with pytest.raises(ValueError, match=r"The 'n_samples' parameter of bald must be an int in "
                                          r"the range \[1, inf\)\. Got"):
        bald(est, POOL, n_instances=1, n_samples=n_samples)


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_list_pool_is_an_array_like_like_any_other(strategy):
    est = FixedProba(PROBA, np.stack([PROBA, PROBA * 0.5 + 0.5 / 3]))
    as_list = POOL.tolist()
    a = strategy(est, POOL, n_instances=2, random_state=0)
    b = strategy(est, as_list, n_instances=2, random_state=0)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1])


def test_bald_subsample_on_a_list_pool(tiny_resnet, digits_small):
    X, _ = digits_small
    pool = X[100:160]
    a = bald(tiny_resnet, pool, n_instances=3, n_samples=4, subsample=20, random_state=0)
    b = bald(tiny_resnet, list(pool), n_instances=3, n_samples=4, subsample=20, random_state=0)
    np.testing.assert_array_equal(a[0], b[0])


def test_bald_without_dropout_raises(digits_small):
    X, y = digits_small
    clf = ResNet18Classifier(width=2, dropout=0.0, max_epochs=1, random_state=0)
    clf.fit(X[:40], y[:40])
    with pytest.raises(ValueError, match=r"BALD needs stochastic passes, but the module of "
                       r"ResNet18Classifier has no dropout layer with p > 0"):
        bald(clf, X[40:60], n_instances=2)
    with pytest.warns(UserWarning, match=r"no dropout layer with p > 0, so the 3 passes of "
                      r"sample_proba are identical"):
        samples = clf.sample_proba(X[40:45], n_samples=3)
    np.testing.assert_array_equal(samples[0], samples[2])


def test_strategies_leave_the_global_torch_rng_untouched(tiny_resnet, digits_small):
    import torch

    X, _ = digits_small
    state = torch.get_rng_state()
    for strategy in (uncertainty_sampling, margin_sampling, entropy_sampling):
        strategy(tiny_resnet, X[100:150], n_instances=2)
    bald(tiny_resnet, X[100:150], n_instances=2, n_samples=3, random_state=0)
    assert torch.equal(torch.get_rng_state(), state)


def test_docstrings_state_the_score_convention():
    from skal import waal_uncertainty_diversity

    for strategy in (uncertainty_sampling, margin_sampling, entropy_sampling, bald):
        returns = strategy.__doc__.split("Returns")[1]
        assert "higher = more informative" in returns, strategy.__name__
    assert "as in modAL" not in margin_sampling.__doc__  # modAL reports +margin
    assert "smaller is better" in waal_uncertainty_diversity.__doc__.split("Returns")[1]
    import skal.query

    assert "smaller is better" in skal.query.__doc__ and "higher = more informative" in (
        skal.query.__doc__
    )
