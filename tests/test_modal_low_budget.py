"""skal's low-budget strategies (probcover, epig) inside the real modAL (modAL-python 0.4.2.1).

Run as tests/test_modal_batch.py is (skipped where modAL is not installed)::

    .venv-modal/bin/python -m pytest tests/test_modal_low_budget.py -q -p no:cacheprovider
"""

import numpy as np
import pytest

modAL = pytest.importorskip("modAL")
from modAL.models import ActiveLearner as ModALActiveLearner  # noqa: E402

import skal  # noqa: E402
from skal import ResNet18Classifier  # noqa: E402
from skal.datasets import load_digits_images  # noqa: E402

pytestmark = [
    pytest.mark.modal,
    pytest.mark.filterwarnings("ignore:'force_all_finite' was renamed:FutureWarning"),
]

N_TRAIN, N_POOL = 30, 120


@pytest.mark.parametrize("strategy, kwargs", [(skal.probcover, {}),
                                              (skal.epig, {"n_samples": 4, "n_target": 40})])
def test_low_budget_strategy_in_modal(strategy, kwargs):
    X, y = load_digits_images()
    X_train, y_train = X[:N_TRAIN], y[:N_TRAIN]
    X_pool, y_pool = X[N_TRAIN:N_TRAIN + N_POOL], y[N_TRAIN:N_TRAIN + N_POOL]
    calls = []

    def counted(learner, X, *args, **kw):
        calls.append(1)
        return strategy(learner, X, *args, **kw)

    learner = ModALActiveLearner(
        estimator=ResNet18Classifier(width=4, max_epochs=1, random_state=0),
        query_strategy=counted, X_training=X_train, y_training=y_train,
    )
    idx, X_query = learner.query(X_pool, n_instances=4, random_state=0, **kwargs)
    assert len(calls) == 1, "modAL called the strategy more than once"
    idx = np.asarray(idx)
    assert idx.shape == (4,) and len(np.unique(idx)) == 4
    np.testing.assert_array_equal(X_query, X_pool[idx])
    again, _ = learner.query(X_pool, n_instances=4, random_state=0, **kwargs)
    np.testing.assert_array_equal(again, idx)  # seeded
    if strategy is skal.probcover:  # the labelled set is modAL's X_training
        explicit, _ = strategy(learner.estimator, X_pool, 4, X_labeled=X_train, random_state=0)
        np.testing.assert_array_equal(explicit, idx)
    learner.teach(X_pool[idx], y_pool[idx])
    assert len(learner.X_training) == N_TRAIN + 4
