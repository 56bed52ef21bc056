"""Time-aware queries: the time models and CostAwareStrategy against brute force."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeRegressor

from skal import (
    ClassTimeModel,
    CostAwareStrategy,
    RegressorTimeModel,
    badge,
    entropy_sampling,
    margin_sampling,
    uncertainty_sampling,
)
from skal.query import entropy, least_confidence, margin


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] + 0.3 * rng.normal(size=300) > 0).astype(int)
    clf = LogisticRegression().fit(X[:40], y[:40])
    return clf, X[40:], y


def test_class_time_model_posterior_means_hand_computed():
    tm = ClassTimeModel(classes=["a", "b", "c"], prior_seconds=10.0, prior_strength=2.0)
    tm.fit(None, ["a", "a", "b"], [4.0, 6.0, 30.0])
    # a: (4 + 6 + 2 * 10) / (2 + 2) = 7.5; b: (30 + 20) / 3; c: no answers -> the prior
    np.testing.assert_allclose(tm.seconds_, [7.5, 50 / 3, 10.0])
    np.testing.assert_array_equal(tm.counts_, [2, 1, 0])
    proba = np.array([[1.0, 0, 0], [0.5, 0.5, 0]])
    np.testing.assert_allclose(tm.predict(None, proba), [7.5, (7.5 + 50 / 3) / 2])
    # no prior given: the mean of all recorded times
    auto = ClassTimeModel(classes=["a", "b"], prior_strength=1.0).fit(None, ["a"], [4.0])
    np.testing.assert_allclose(auto.seconds_, [4.0, 4.0])


def test_class_time_model_bad_input():
    with pytest.raises(ValueError, match="not in classes"):
        ClassTimeModel(classes=[0, 1]).fit(None, [0, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite times >= 0"):
        ClassTimeModel(classes=[0, 1]).fit(None, [0, 1], [1.0, -2.0])
    with pytest.raises(ValueError, match="one time per sample"):
        ClassTimeModel(classes=[0, 1]).fit(None, [0, 1], [1.0])
    with pytest.raises(ValueError, match="needs recorded times or prior_seconds"):
        ClassTimeModel(classes=[0, 1]).fit(None, [], [])
    with pytest.raises(ValueError, match=r"prior_seconds must be None or a float in the range"):
        ClassTimeModel(classes=[0, 1], prior_seconds=0).fit(None, [0], [1.0])
    with pytest.raises(ValueError, match=r"prior_strength must be a float in the range \[0.0"):
        ClassTimeModel(classes=[0, 1], prior_strength=-1).fit(None, [0], [1.0])
    tm = ClassTimeModel(classes=[0, 1]).fit(None, [0], [1.0])
    with pytest.raises(ValueError, match="one column per class"):
        tm.predict(None, np.ones((2, 3)) / 3)


def test_regressor_time_model_learns_slower_doubtful_images():
    rng = np.random.default_rng(1)
    p1 = rng.uniform(0, 1, 400)
    proba = np.column_stack([p1, 1 - p1])
    doubt = 1 - np.abs(2 * p1 - 1)  # 0 when sure, 1 at 50/50
    seconds = 3 + 20 * doubt + rng.normal(0, 1, 400).clip(-2, 2)
    tm = RegressorTimeModel().fit(None, None, seconds, proba=proba)
    pred = tm.predict(None, np.array([[0.99, 0.01], [0.5, 0.5]]))
    assert pred[0] < 8 and pred[1] > 15
    pixels = RegressorTimeModel(regressor=DecisionTreeRegressor(max_depth=3), features="pixels")
    X = rng.normal(size=(200, 1, 2, 2))
    t = np.where(X[:, 0, 0, 0] > 0, 20.0, 2.0)
    pixels.fit(X, None, t)
    np.testing.assert_allclose(pixels.predict(X[:5]), np.where(X[:5, 0, 0, 0] > 0, 20.0, 2.0),
                               rtol=0.02)
    with pytest.raises(ValueError, match="features='proba' needs proba="):
        RegressorTimeModel().fit(X, None, t)
    with pytest.raises(ValueError, match="features must be 'proba', 'pixels' or a callable"):
        RegressorTimeModel(features="hog").fit(X, None, t)
    with pytest.raises(ValueError, match="at least 2 recorded times"):
        RegressorTimeModel(features="pixels").fit(X[:1], None, t[:1])


@pytest.mark.parametrize("strategy, utility, offset", [
    (uncertainty_sampling, least_confidence, 0.0),
    (entropy_sampling, entropy, 0.0),
    (margin_sampling, lambda p: 1 - margin(p), 1.0),
])
def test_cost_aware_is_score_per_expected_second(problem, strategy, utility, offset):
    clf, X_pool, _ = problem
    times = ClassTimeModel(classes=[0, 1], prior_strength=0).fit(
        None, [0, 1], [2.0, 40.0])
    query = CostAwareStrategy(strategy, times, offset=offset)
    idx, ratio = query(clf, X_pool, n_instances=15)
    proba = clf.predict_proba(X_pool)
    brute = utility(proba) / (proba @ np.array([2.0, 40.0]))
    np.testing.assert_allclose(ratio, brute[idx], rtol=1e-10)
    np.testing.assert_allclose(ratio, np.sort(brute)[::-1][:15], rtol=1e-10)
    # the slow class is avoided: most picks are predicted as the fast class 0
    assert (clf.predict(X_pool[idx]) == 0).mean() > 0.8
    # cost_power=0: the cost-blind strategy's picks
    blind, _ = CostAwareStrategy(strategy, times, offset=offset, cost_power=0)(
        clf, X_pool, n_instances=15)
    plain, _ = strategy(clf, X_pool, n_instances=15)
    np.testing.assert_array_equal(blind, plain)


def test_cost_aware_passes_strategy_kwargs_and_random_state(problem):
    clf, X_pool, _ = problem
    times = ClassTimeModel(classes=[0, 1], prior_seconds=5.0).fit(None, [], [])
    a = CostAwareStrategy(entropy_sampling, times, calibrate=3.0)(clf, X_pool, 5)
    b, _ = entropy_sampling(clf, X_pool, 5, calibrate=3.0)  # equal times: the same picks
    np.testing.assert_array_equal(a[0], b)


def test_cost_aware_bad_input(problem):
    clf, X_pool, _ = problem
    times = ClassTimeModel(classes=[0, 1], prior_seconds=5.0).fit(None, [], [])
    with pytest.raises(ValueError, match="must be finite and >= 0 .*margin_sampling needs "
                                         "offset=1"):
        CostAwareStrategy(margin_sampling, times)(clf, X_pool, 3)
    with pytest.raises(ValueError, match="needs a pointwise strategy .* batch strategy 'badge'"):
        CostAwareStrategy(badge, times)

    def top_three(learner, X, n_instances=1, random_state=None):
        return np.arange(3), np.ones(3)

    with pytest.raises(ValueError, match="needs a score for every pool sample"):
        CostAwareStrategy(top_three, times)(clf, X_pool, 2)
    with pytest.raises(ValueError, match=r"n_instances must be an int in the range \[1, 260\]"):
        CostAwareStrategy(entropy_sampling, times)(clf, X_pool, 0)
    with pytest.raises(TypeError, match="time_model must have a predict"):
        CostAwareStrategy(entropy_sampling, object())
    with pytest.raises(TypeError, match="strategy must be a callable"):
        CostAwareStrategy("entropy", times)
    with pytest.raises(ValueError, match=r"cost_power must be a float in the range \[0.0, inf\)"):
        CostAwareStrategy(entropy_sampling, times, cost_power=-1)

    class Broken:
        def predict(self, X, proba):
            return np.zeros(len(X))

    with pytest.raises(ValueError, match="finite times > 0"):
        CostAwareStrategy(entropy_sampling, Broken())(clf, X_pool, 3)
