"""skal's batch-aware strategies inside the real modAL (modAL-python 0.4.2.1, .venv-modal).

Run as tests/test_modal_compat.py is (skipped where modAL is not installed)::

    .venv-modal/bin/python -m pytest tests/test_modal_batch.py -q -p no:cacheprovider

Each strategy must be called once per query (modAL re-calls a strategy whose result it cannot
unpack as ``(indices, metrics)``), return unique pool indices, and (core-set, TypiClust) take
the labelled set from modAL's ``X_training``.
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

STRATEGIES = {
    "batch_bald": (skal.batch_bald, {"n_samples": 4}),
    "power_bald": (skal.power_bald, {"n_samples": 4}),
    "stochastic_batch": (skal.stochastic_batch, {"utility": "margin", "mode": "softmax"}),
    "badge": (skal.badge, {}),
    "coreset": (skal.coreset, {}),
    "typiclust": (skal.typiclust, {"n_neighbors": 3}),
}


class Counted:
    def __init__(self, strategy):
        self.strategy = strategy
        self.calls = 0
        self.__name__ = strategy.__name__

    def __call__(self, learner, X_pool, *args, **kwargs):
        self.calls += 1
        return self.strategy(learner, X_pool, *args, **kwargs)


@pytest.fixture(scope="module")
def data():
    X, y = load_digits_images()
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:N_TRAIN + N_POOL], y[N_TRAIN:N_TRAIN + N_POOL]


def _learner(strategy, data):
    X_train, y_train, _, _ = data
    return ModALActiveLearner(
        estimator=ResNet18Classifier(width=4, max_epochs=1, random_state=0),
        query_strategy=strategy, X_training=X_train, y_training=y_train,
    )


@pytest.mark.parametrize("name", list(STRATEGIES))
@pytest.mark.parametrize("n_instances", [2, 5])
def test_batch_strategy_in_modal(name, n_instances, data):
    strategy, kwargs = STRATEGIES[name]
    _, _, X_pool, y_pool = data
    counted = Counted(strategy)
    learner = _learner(counted, data)
    idx, X_query = learner.query(X_pool, n_instances=n_instances, random_state=0, **kwargs)
    assert counted.calls == 1, "modAL called the strategy more than once"
    idx = np.asarray(idx)
    assert idx.shape == (n_instances,) and len(np.unique(idx)) == n_instances
    np.testing.assert_array_equal(X_query, X_pool[idx])
    again, _ = learner.query(X_pool, n_instances=n_instances, random_state=0, **kwargs)
    np.testing.assert_array_equal(again, idx)  # seeded
    learner.teach(X_pool[idx], y_pool[idx])  # and the loop goes on
    assert len(learner.X_training) == N_TRAIN + n_instances


@pytest.mark.parametrize("name", ["coreset", "typiclust"])
def test_labelled_set_comes_from_modal_x_training(name, data):
    strategy, kwargs = STRATEGIES[name]
    X_train, _, X_pool, _ = data
    learner = _learner(strategy, data)
    via_learner, _ = learner.query(X_pool, n_instances=5, random_state=0, **kwargs)
    explicit, _ = strategy(learner.estimator, X_pool, 5, X_labeled=X_train, random_state=0,
                           **kwargs)
    np.testing.assert_array_equal(np.asarray(via_learner), explicit)
