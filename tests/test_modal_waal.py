"""WAALClassifier and waal_uncertainty_diversity inside the real modAL (modAL-python 0.4.2.1).

Runs in the environment made by ``scripts/setup_modal.sh`` (modAL needs scikit-learn < 1.8)::

    bash scripts/setup_modal.sh
    .venv-modal/bin/python -m pytest tests/test_modal_waal.py -q -p no:cacheprovider

Skipped wherever modAL is not installed. modAL's ``ActiveLearner`` forwards extra keyword
arguments of its constructor and of ``teach`` to ``estimator.fit``, so the unlabelled pool reaches
WAAL as ``X_unlabeled=``.
"""

import numpy as np
import pytest

modAL = pytest.importorskip("modAL")
from modAL.models import ActiveLearner as ModALActiveLearner  # noqa: E402

from skal import WAALClassifier, waal_uncertainty_diversity  # noqa: E402

pytestmark = [
    pytest.mark.modal,
    pytest.mark.filterwarnings("ignore:'force_all_finite' was renamed:FutureWarning"),
]


class Spy(WAALClassifier):
    """Records the size of the unlabelled pool of every fit."""

    pool_sizes = []

    def fit(self, X, y, X_unlabeled=None, **fit_params):
        Spy.pool_sizes.append(None if X_unlabeled is None else len(X_unlabeled))
        return super().fit(X, y, X_unlabeled=X_unlabeled, **fit_params)


def test_modal_active_learner_query_and_teach_with_pool():
    rng = np.random.default_rng(0)
    X = rng.random((60, 1, 28, 28), dtype=np.float32)
    y = np.arange(60) % 3
    X_train, y_train, X_pool, y_pool = X[:15], y[:15], X[15:], y[15:]
    calls = []

    def strategy(learner, X, n_instances=1, **kwargs):
        calls.append(n_instances)
        return waal_uncertainty_diversity(learner, X, n_instances, **kwargs)

    Spy.pool_sizes = []
    learner = ModALActiveLearner(
        estimator=Spy(max_epochs=1, batch_size=8, random_state=0),
        query_strategy=strategy,
        X_training=X_train,
        y_training=y_train,
        X_unlabeled=X_pool,
    )
    for n_instances in (2, 3):  # n_instances=2 is the case modAL mis-reads for index-only returns
        idx, X_query, scores = learner.query(X_pool, n_instances=n_instances, return_metrics=True)
        assert calls[-1] == n_instances and len(calls) == (1 if n_instances == 2 else 2)
        assert len(np.unique(idx)) == n_instances
        np.testing.assert_array_equal(X_query, X_pool[idx])
        assert np.all(np.diff(scores) >= 0)  # WAAL scores, smallest (best) first
        rest = np.setdiff1d(np.arange(len(X_pool)), idx)
        learner.teach(X_pool[idx], y_pool[idx], X_unlabeled=X_pool[rest])
        X_pool, y_pool = X_pool[rest], y_pool[rest]
    assert Spy.pool_sizes == [45, 43, 40]
    assert learner.estimator.n_labeled_ == 20
    proba = learner.predict_proba(X[:4])
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
