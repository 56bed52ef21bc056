"""EmbeddingHeadClassifier: the MC-dropout head on frozen embeddings, with every strategy."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from skal import (
    ActiveLearner,
    EmbeddingHeadClassifier,
    badge,
    bald,
    batch_bald,
    coreset,
    entropy_sampling,
    epig,
    power_bald,
    probcover,
    typiclust,
)


@pytest.fixture(scope="module")
def blobs():
    """Three well-separated blobs in 16-d, 300 rows: a head learns them from a few labels."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(3, 16))
    y = rng.integers(0, 3, 300)
    Z = (centres[y] + rng.normal(size=(300, 16))).astype(np.float32)
    return Z, y


@pytest.fixture(scope="module")
def head(blobs):
    Z, y = blobs
    return EmbeddingHeadClassifier(hidden=16, max_epochs=30, random_state=0).fit(Z[:30], y[:30])


def test_learns_and_samples_only_the_head(head, blobs):
    Z, y = blobs
    assert head.score(Z[30:], y[30:]) > 0.9
    samples = head.sample_proba(Z[:5], n_samples=7, random_state=0)
    assert samples.shape == (7, 5, 3) and np.ptp(samples, axis=0).max() > 0
    assert head.embed(Z[:5]).shape == (5, 16)


@pytest.mark.parametrize("strategy, kwargs", [
    (bald, {"n_samples": 5}), (batch_bald, {"n_samples": 5}), (power_bald, {"n_samples": 5}),
    (entropy_sampling, {}), (badge, {}), (coreset, {}), (typiclust, {}), (probcover, {}),
    (epig, {"n_samples": 5}),
])
def test_every_strategy_queries_it(strategy, kwargs, head, blobs):
    Z, _ = blobs
    idx, _ = strategy(head, Z[30:], 6, random_state=0, **kwargs)
    assert len(np.unique(idx)) == 6 and idx.max() < 270


def test_active_learner_clone_and_pickle(blobs):
    Z, y = blobs
    learner = ActiveLearner(EmbeddingHeadClassifier(hidden=8, max_epochs=5, random_state=0),
                            query_strategy=bald, X_training=Z[:20], y_training=y[:20])
    idx, Z_query = learner.query(Z[20:], n_instances=5, random_state=0)
    learner.teach(Z_query, y[20:][idx])
    restored = pickle.loads(pickle.dumps(learner))
    np.testing.assert_array_equal(restored.predict_proba(Z[:3]), learner.predict_proba(Z[:3]))
    assert clone(EmbeddingHeadClassifier(hidden=0)).get_params()["hidden"] == 0


def test_a_linear_head(blobs):
    Z, y = blobs
    clf = EmbeddingHeadClassifier(hidden=0, max_epochs=30, random_state=0).fit(Z[:30], y[:30])
    assert clf.module_.linear.in_features == 16 and clf.score(Z[30:], y[30:]) > 0.9


def test_images_get_a_clear_error(digits_small):
    X, y = digits_small
    with pytest.raises(ValueError, match=r"embedding rows of shape \(n, d\); got samples of "
                                         r"shape \(1, 8, 8\)"):
        EmbeddingHeadClassifier(max_epochs=1).fit(X[:20], y[:20])


@pytest.mark.parametrize("param, value", [("hidden", -1), ("dropout", 1.0)])
def test_bad_parameters_are_named(param, value, blobs):
    Z, y = blobs
    with pytest.raises(ValueError, match=f"'{param}' parameter of EmbeddingHeadClassifier"):
        EmbeddingHeadClassifier(max_epochs=1, **{param: value}).fit(Z[:20], y[:20])


@parametrize_with_checks([EmbeddingHeadClassifier(hidden=8, max_epochs=2, random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)
