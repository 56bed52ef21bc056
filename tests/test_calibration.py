"""Temperature scaling, the expected calibration error and the strategies' calibrate= option."""

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression

from skal import (
    ResNet18Classifier,
    TemperatureScaling,
    bald,
    entropy_sampling,
    expected_calibration_error,
    margin_sampling,
    uncertainty_sampling,
)
from skal.calibration import apply_temperature, fit_temperature, tempering
from skal.query import bald_scores, entropy, least_confidence, margin


def _overconfident(n=2000, n_classes=4, true_t=2.5, seed=0):
    """Logits whose labels are drawn from softmax(z / true_t): temperature true_t is right."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, n_classes)) * 4
    p_true = softmax(z / true_t, axis=1)
    y = np.array([rng.choice(n_classes, p=p) for p in p_true])
    return z, softmax(z, axis=1), y


def test_fit_temperature_recovers_the_true_temperature():
    z, p, y = _overconfident()
    t_logits = fit_temperature(z, y, kind="logits")
    t_proba = fit_temperature(p, y)
    assert abs(t_logits - 2.5) < 0.3
    assert t_proba == pytest.approx(t_logits, rel=1e-4)  # log p differs from z by a row constant


def test_the_fitted_temperature_minimises_the_nll():
    z, _, y = _overconfident(n=500, seed=1)
    t = fit_temperature(z, y, kind="logits")

    def nll(temp):
        q = softmax(z / temp, axis=1)
        return -np.mean(np.log(q[np.arange(len(y)), y]))

    assert nll(t) <= min(nll(t * 0.9), nll(t * 1.1), nll(1.0))


def test_apply_temperature_hand_computed_and_keeps_the_argmax():
    p = np.array([[0.8, 0.2], [0.1, 0.9]])
    out = apply_temperature(p, 2.0)
    np.testing.assert_allclose(out[0], np.sqrt([0.8, 0.2]) / np.sqrt([0.8, 0.2]).sum())
    np.testing.assert_allclose(apply_temperature(p, 1.0), p)
    samples = np.random.default_rng(0).dirichlet(np.ones(5), size=(3, 7))  # (T, n, C)
    tempered = apply_temperature(samples, 0.5)
    assert tempered.shape == samples.shape
    np.testing.assert_array_equal(tempered.argmax(-1), samples.argmax(-1))
    np.testing.assert_allclose(tempered.sum(-1), 1.0)
    # a class of probability 0 stays at 0 at any temperature
    assert apply_temperature(np.array([[0.5, 0.5, 0.0]]), 3.0)[0, 2] == 0.0


def test_ece_hand_computed():
    # two bins: conf 0.9 (acc 1/2) and conf 0.6 (acc 1): 0.5 * 0.4 + 0.5 * 0.4
    proba = [[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]]
    assert expected_calibration_error([0, 1, 1, 1], proba, n_bins=10) == pytest.approx(0.4)
    # a perfectly calibrated bin: confidence 0.75 and 3 of 4 right
    proba = [[0.75, 0.25]] * 4
    assert expected_calibration_error([0, 0, 0, 1], proba, n_bins=5) == 0.0
    # labels through classes
    assert expected_calibration_error(["a", "b"], [[0.9, 0.1], [0.9, 0.1]], n_bins=10,
                                      classes=["a", "b"]) == pytest.approx(0.4)


def test_temperature_scaling_lowers_nll_and_ece_on_new_data():
    _, p, y = _overconfident(n=3000, seed=2)
    ts = TemperatureScaling().fit(p[:1500], y[:1500])
    assert ts.nll_after_ < ts.nll_before_
    before = expected_calibration_error(y[1500:], p[1500:])
    after = expected_calibration_error(y[1500:], ts.predict_proba(p[1500:]))
    assert after < before / 2
    np.testing.assert_array_equal(ts.predict(p), p.argmax(1))
    named = TemperatureScaling(classes=np.array(["a", "b", "c", "d"])).fit(
        p[:1500], np.array(list("abcd"))[y[:1500]])
    assert named.temperature_ == pytest.approx(ts.temperature_)
    assert set(named.predict(p[:5])) <= set("abcd")


def test_temperature_scaling_bad_input():
    p = np.array([[0.7, 0.3], [0.2, 0.8]])
    with pytest.raises(ValueError, match="same length"):
        fit_temperature(p, [0])
    with pytest.raises(ValueError, match=r"column positions in \[0, 2\)"):
        fit_temperature(p, [0, 2])
    with pytest.raises(ValueError, match="not in classes"):
        TemperatureScaling(classes=["a", "b"]).fit(p, ["a", "z"])
    with pytest.raises(ValueError, match="finite and >= 0"):
        fit_temperature(np.array([[1.2, -0.2], [0.5, 0.5]]), [0, 1])
    with pytest.raises(ValueError, match=r"n_classes >= 2"):
        fit_temperature(np.ones((3, 1)), [0, 0, 0])
    with pytest.raises(ValueError, match="0 < low < high"):
        fit_temperature(p, [0, 1], bounds=(2.0, 1.0))
    with pytest.raises(ValueError, match=r"temperature must be a float in the range \(0.0, inf\)"):
        apply_temperature(p, 0.0)
    with pytest.raises(ValueError, match="n_bins must be an int"):
        expected_calibration_error([0, 1], p, n_bins=0)
    with pytest.raises(ValueError, match="kind"):
        TemperatureScaling(kind="softmax").fit(p, [0, 1])
    ts = TemperatureScaling().fit(p, [0, 1])
    with pytest.raises(ValueError, match="2 columns"):
        ts.predict_proba(np.ones((2, 3)) / 3)


# ---------------------------------------------------------------------------- calibrate=
@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    X = X.reshape(len(X), -1)
    clf = LogisticRegression(max_iter=300).fit(X[:150], y[:150])
    return clf, X[150:600]


@pytest.mark.parametrize("strategy, utility", [
    (uncertainty_sampling, least_confidence),
    (margin_sampling, lambda p: -margin(p)),
    (entropy_sampling, entropy),
])
def test_calibrate_tempers_the_probabilities_the_strategy_scores(fitted, strategy, utility):
    clf, X_pool = fitted
    proba = clf.predict_proba(X_pool)
    for t in (0.3, 4.0):
        expected = utility(apply_temperature(proba, t))
        idx, scores = strategy(clf, X_pool, n_instances=20, calibrate=t)
        np.testing.assert_allclose(scores, np.sort(expected)[::-1][:20], rtol=1e-10)
        np.testing.assert_allclose(scores, expected[idx], rtol=1e-10)
    # None is the strategy as it was, bit for bit
    plain = strategy(clf, X_pool, n_instances=20)
    none = strategy(clf, X_pool, n_instances=20, calibrate=None)
    np.testing.assert_array_equal(plain[0], none[0])
    np.testing.assert_array_equal(plain[1], none[1])


def test_calibrate_changes_an_entropy_ranking_and_accepts_a_calibrator(fitted, digits):
    clf, X_pool = fitted
    _, y = digits
    ts = TemperatureScaling(classes=clf.classes_).fit(clf.predict_proba(X_pool[:200]),
                                                      y[150:350])
    a, _ = entropy_sampling(clf, X_pool, n_instances=30)
    b, _ = entropy_sampling(clf, X_pool, n_instances=30, calibrate=ts)
    c, _ = entropy_sampling(clf, X_pool, n_instances=30, calibrate=ts.temperature_)
    np.testing.assert_array_equal(b, c)
    # on 10 classes a temperature far from 1 reorders the entropies
    d, _ = entropy_sampling(clf, X_pool, n_instances=30, calibrate=10.0)
    assert set(a.tolist()) != set(d.tolist())


def test_bald_tempers_each_mc_pass(digits):
    X, y = digits
    clf = ResNet18Classifier(width=2, max_epochs=1, batch_size=32, random_state=0).fit(
        X[:64], y[:64])
    pool = X[64:164]
    # random_state=None and one chunk: the masks come from the estimator's own seed
    samples = clf.sample_proba(pool, n_samples=6)
    for t in (0.5, 3.0):
        expected = bald_scores(apply_temperature(samples, t))
        idx, scores = bald(clf, pool, n_instances=10, n_samples=6, calibrate=t)
        np.testing.assert_allclose(scores, expected[idx], rtol=1e-6)
        np.testing.assert_allclose(scores, np.sort(expected)[::-1][:10], rtol=1e-6)
    _, plain = bald(clf, pool, n_instances=10, n_samples=6)
    np.testing.assert_allclose(plain, np.sort(bald_scores(samples))[::-1][:10], rtol=1e-6)
    assert not np.allclose(plain, scores)  # the temperature moved the mutual information


@pytest.mark.parametrize("bad, match", [
    ("hot", "must be None, a float temperature"),
    (0.0, r"must be a float in the range \(0.0, inf\)"),
    (True, "must be None, a float temperature"),
    (TemperatureScaling(), "unfitted TemperatureScaling"),
])
def test_calibrate_bad_values_name_the_parameter(fitted, bad, match):
    clf, X_pool = fitted
    with pytest.raises(ValueError, match=match) as info:
        entropy_sampling(clf, X_pool, n_instances=2, calibrate=bad)
    assert "'calibrate' parameter of entropy_sampling" in str(info.value)


def test_tempering_identity_is_the_same_object():
    p = np.array([[0.3, 0.7]])
    assert tempering(None)(p) is p


def test_batch_bald_tempers_each_mc_pass(digits):
    from skal import batch_bald
    from skal.query.selection import batchbald_select

    X, y = digits
    clf = ResNet18Classifier(width=2, max_epochs=1, batch_size=32, random_state=0).fit(
        X[:64], y[:64])
    pool = X[64:124]
    rng = np.random.default_rng(0)  # what batch_bald makes of random_state=0
    samples = clf.sample_proba(pool, n_samples=6, random_state=int(rng.integers(2**31 - 1)))
    expected = batchbald_select(apply_temperature(samples, 2.0), 4, random_state=rng)
    idx, gains = batch_bald(clf, pool, n_instances=4, n_samples=6, random_state=0, calibrate=2.0)
    np.testing.assert_array_equal(idx, expected[0])
    np.testing.assert_allclose(gains, expected[1], rtol=1e-6)
    _, plain = batch_bald(clf, pool, n_instances=4, n_samples=6, random_state=0)
    assert not np.allclose(plain, gains)
    with pytest.raises(ValueError, match="'calibrate' parameter of batch_bald"):
        batch_bald(clf, pool, n_instances=2, n_samples=2, calibrate=-1.0)


# ---------------------------------------------------------------------------- the batch strategies
@pytest.fixture(scope="module")
def mc_net(digits):
    X, y = digits
    clf = ResNet18Classifier(width=2, max_epochs=1, batch_size=32, random_state=0).fit(
        X[:64], y[:64])
    return clf, X[64:124]


@pytest.mark.parametrize("utility, score", [
    ("entropy", entropy),
    ("least_confidence", least_confidence),
    ("margin", lambda p: 1.0 - margin(p)),
])
def test_stochastic_batch_tempers_predict_proba(fitted, utility, score):
    from skal import stochastic_batch
    from skal.query.selection import stochastic_select

    clf, X_pool = fitted
    proba = clf.predict_proba(X_pool)
    tempered = score(apply_temperature(proba, 10.0))
    # softrank draws from the ranks: the batch moves only because the temperature reorders them
    expected = stochastic_select(tempered, 15, mode="softrank", temperature=0.2,
                                 random_state=np.random.default_rng(0))
    idx, scores = stochastic_batch(clf, X_pool, 15, utility=utility, mode="softrank",
                                   temperature=0.2, random_state=0, calibrate=10.0)
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_allclose(scores, tempered[idx], rtol=1e-10)
    plain, plain_scores = stochastic_batch(clf, X_pool, 15, utility=utility, mode="softrank",
                                           temperature=0.2, random_state=0)
    none = stochastic_batch(clf, X_pool, 15, utility=utility, mode="softrank", temperature=0.2,
                            random_state=0, calibrate=None)
    np.testing.assert_array_equal(plain, none[0])
    np.testing.assert_array_equal(plain_scores, none[1])
    assert set(plain.tolist()) != set(idx.tolist())


def test_power_bald_and_stochastic_bald_temper_each_mc_pass(mc_net):
    from skal import power_bald, stochastic_batch
    from skal.query.selection import stochastic_select

    clf, pool = mc_net
    rng = np.random.default_rng(0)  # what the strategies make of random_state=0
    samples = clf.sample_proba(pool, n_samples=6, random_state=int(rng.integers(2**31 - 1)))
    tempered = np.maximum(bald_scores(apply_temperature(samples, 3.0)), 0.0)
    expected = stochastic_select(tempered, 8, mode="power", random_state=rng)
    for strategy in (power_bald, stochastic_batch):
        idx, scores = strategy(clf, pool, 8, n_samples=6, random_state=0, calibrate=3.0)
        np.testing.assert_array_equal(idx, expected)
        np.testing.assert_allclose(scores, tempered[idx], rtol=1e-6)
    _, plain = power_bald(clf, pool, 8, n_samples=6, random_state=0)
    assert not np.allclose(plain, scores)  # the temperature moved the mutual information


def test_badge_builds_its_gradient_embeddings_from_the_tempered_probabilities(fitted):
    from skal import badge
    from skal.query.selection import badge_select

    clf, X_pool = fitted
    proba = clf.predict_proba(X_pool)
    for t in (0.5, 4.0):
        expected = badge_select(apply_temperature(proba, t), X_pool, 12,
                                random_state=np.random.default_rng(0))
        idx, d2 = badge(clf, X_pool, 12, random_state=0, calibrate=t)
        np.testing.assert_array_equal(idx, expected[0])
        np.testing.assert_allclose(d2, expected[1], rtol=1e-10)
    plain, plain_d2 = badge(clf, X_pool, 12, random_state=0)
    # T > 1 lengthens p - e_yhat: the first pick's squared gradient norm grows
    assert d2[0] > plain_d2[0]
    assert plain.tolist() != idx.tolist()
    none = badge(clf, X_pool, 12, random_state=0, calibrate=None)
    np.testing.assert_array_equal(none[0], plain)
    np.testing.assert_array_equal(none[1], plain_d2)


def test_epig_tempers_the_pool_and_the_targets(mc_net):
    from skal import epig
    from skal.query.selection import epig_scores

    clf, pool = mc_net
    rng = np.random.default_rng(0)  # no subset drawn: the first draw seeds the masks
    samples = clf.sample_proba(pool, n_samples=6, random_state=int(rng.integers(2**31 - 1)))
    tempered = apply_temperature(samples, 0.4)
    expected = epig_scores(tempered, tempered)
    idx, scores = epig(clf, pool, 6, n_samples=6, random_state=0, calibrate=0.4)
    np.testing.assert_allclose(scores, np.sort(expected)[::-1][:6], rtol=1e-6)
    np.testing.assert_allclose(scores, expected[idx], rtol=1e-6)
    plain_idx, plain = epig(clf, pool, 6, n_samples=6, random_state=0)
    np.testing.assert_allclose(plain, np.sort(epig_scores(samples, samples))[::-1][:6],
                               rtol=1e-6)
    assert not np.allclose(plain, scores)


@pytest.mark.parametrize("name, kwargs", [
    ("stochastic_batch", {"utility": "entropy"}),
    ("stochastic_batch", {}),
    ("power_bald", {}),
    ("badge", {}),
    ("epig", {}),
])
@pytest.mark.parametrize("bad, match", [
    ("hot", "must be None, a float temperature"),
    (-1.0, r"must be a float in the range \(0.0, inf\)"),
    (TemperatureScaling(), "unfitted TemperatureScaling"),
])
def test_calibrate_bad_values_name_the_batch_strategy(mc_net, name, kwargs, bad, match):
    import skal

    clf, pool = mc_net
    with pytest.raises(ValueError, match=match) as info:
        getattr(skal, name)(clf, pool, 2, calibrate=bad, **kwargs)
    assert f"'calibrate' parameter of {name}" in str(info.value)


def test_calibrate_with_a_callable_utility_is_refused(fitted):
    from skal import stochastic_batch

    clf, X_pool = fitted
    called = []

    def utility(est, X):
        called.append(1)
        return entropy(est.predict_proba(X))

    with pytest.raises(ValueError, match="a callable utility computes its own scores"):
        stochastic_batch(clf, X_pool, 3, utility=utility, calibrate=2.0)
    assert not called  # refused before the utility ran
    idx, _ = stochastic_batch(clf, X_pool, 3, utility=utility, random_state=0)
    assert len(idx) == 3
