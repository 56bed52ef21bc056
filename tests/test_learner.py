"""skal.ActiveLearner: modAL's interface, scikit-learn's rules."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from skal import ActiveLearner, ResNet18Classifier, bald, entropy_sampling, random_sampling


def _clf(**kw):
    return ResNet18Classifier(width=2, max_epochs=1, random_state=0, **kw)


def test_query_teach_loop_grows_labels_without_duplicates(digits_small):
    X, y = digits_small
    X_pool, y_pool = X[50:250], y[50:250]
    learner = ActiveLearner(_clf(), query_strategy=bald, X_training=X[:50], y_training=y[:50])
    labelled = []
    pool_idx = np.arange(len(X_pool))
    for _ in range(3):
        idx, X_query = learner.query(X_pool[pool_idx], n_instances=4, n_samples=5)
        assert len(np.unique(idx)) == 4
        np.testing.assert_array_equal(X_query, X_pool[pool_idx][idx])
        learner.teach(X_query, y_pool[pool_idx][idx])
        labelled.extend(pool_idx[idx].tolist())
        pool_idx = np.delete(pool_idx, idx)
    assert len(set(labelled)) == 12
    assert learner.X_training_.shape == (62, 1, 8, 8)
    assert learner.y_training_.shape == (62,)
    assert 0 <= learner.score(X[300:], y[300:]) <= 1
    assert learner.predict_proba(X[:3]).shape == (3, 10)
    assert learner.sample_proba(X[:3], n_samples=4).shape == (4, 3, 10)
    # the constructor argument is never mutated
    assert learner.X_training.shape == (50, 1, 8, 8)


def test_return_metrics_and_index_only_strategy_called_once(digits_small):
    X, y = digits_small
    calls = []

    def index_only(learner, X_pool, n_instances=1):
        calls.append(1)
        return np.arange(n_instances)

    learner = ActiveLearner(_clf(), query_strategy=index_only, X_training=X[:40],
                            y_training=y[:40])
    idx, _ = learner.query(X[40:80], n_instances=2)  # modAL mis-reads this case
    assert idx.tolist() == [0, 1] and len(calls) == 1
    learner.query_strategy = entropy_sampling
    idx, X_q, scores = learner.query(X[40:80], n_instances=3, return_metrics=True)
    assert scores.shape == (3,) and X_q.shape == (3, 1, 8, 8)


def test_clone_get_params_pickle(digits_small):
    X, y = digits_small
    unfitted = ActiveLearner(_clf(), query_strategy=random_sampling, epochs_note="x")
    params = unfitted.get_params()
    assert params["estimator__width"] == 2
    assert params["epochs_note"] == "x"  # fit kwargs survive get_params ...
    fresh = clone(unfitted)
    assert fresh.get_params(deep=False)["epochs_note"] == "x"  # ... and clone
    fresh.set_params(estimator__width=3, query_strategy=bald)
    assert fresh.estimator.width == 3 and fresh.query_strategy is bald
    learner = ActiveLearner(_clf(), query_strategy=random_sampling, X_training=X[:40],
                            y_training=y[:40])
    restored = pickle.loads(pickle.dumps(learner))
    np.testing.assert_array_equal(restored.predict(X[:10]), learner.predict(X[:10]))


def test_unfitted_learner_and_bad_arguments(digits_small):
    X, y = digits_small
    learner = ActiveLearner(_clf())
    with pytest.raises(NotFittedError):
        learner.query(X[:10], n_instances=1)
    learner.teach(X[:30], y[:30])  # the first teach fits
    assert learner.X_training_.shape[0] == 30
    with pytest.raises(ValueError, match="given together"):
        ActiveLearner(_clf(), X_training=X[:10])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        learner.teach(X[:3], y[:2])
    with pytest.raises(ValueError, match="'n_instances' parameter must be an int"):
        learner.query(X[:5], n_instances=6)
    with pytest.raises(ValueError, match="X_pool is empty"):
        learner.query(X[:0], n_instances=1)
    learner.query_strategy = "bald"
    with pytest.raises(TypeError, match="'query_strategy' parameter of ActiveLearner must be"):
        learner.query(X[:5], n_instances=1)


def test_pool_is_handed_to_estimators_that_take_unlabelled_data(digits_small):
    X, y = digits_small
    seen = {}

    class TakesPool(ResNet18Classifier):
        def fit(self, X, y, X_unlabeled=None, **kw):
            seen["pool"] = X_unlabeled
            return super().fit(X, y, **kw)

    learner = ActiveLearner(TakesPool(width=2, max_epochs=1, random_state=0),
                            query_strategy=random_sampling, X_training=X[:30], y_training=y[:30])
    assert seen["pool"] is None
    pool = X[30:60]
    idx, X_q = learner.query(pool, n_instances=5, random_state=0)
    learner.teach(X_q, y[30:60][idx])
    assert seen["pool"].shape == (25, 1, 8, 8)
    remaining = np.delete(np.arange(30), idx)
    np.testing.assert_array_equal(seen["pool"], pool[remaining])
    # rows that are not the last query: the pool is unknown, so a warning and no pool
    learner.query(pool, n_instances=2)
    with pytest.warns(UserWarning, match="remaining pool is unknown"):
        learner.teach(X[:2], y[:2])
    assert seen["pool"] is None
