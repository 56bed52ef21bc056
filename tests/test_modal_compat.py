"""skal's estimators and query strategies inside the real modAL (modAL-python 0.4.2.1).

modAL 0.4.2.1 pins skorch==0.9.0 and is broken on scikit-learn >= 1.8, so these tests run in the
separate environment made by ``scripts/setup_modal.sh``::

    bash scripts/setup_modal.sh
    .venv-modal/bin/python -m pytest tests/test_modal_compat.py -q -p no:cacheprovider

Anywhere modAL is not installed (the main .venv), the whole module is skipped.

What matters for a drop-in (ECOSYSTEM.md 1.1): modAL's ``BaseLearner.query`` unpacks the strategy's
result as ``(indices, metrics)`` inside a bare ``try``; a strategy that returns something else is
silently called a second time, and with ``n_instances=2`` an index-only strategy is mis-read. So
every test counts the strategy's calls and checks the indices, not only that nothing raised.
"""

import warnings

import numpy as np
import pytest

modAL = pytest.importorskip("modAL")
from modAL.models import ActiveLearner as ModALActiveLearner  # noqa: E402
from modAL.uncertainty import (  # noqa: E402
    classifier_entropy,
    classifier_margin,
    classifier_uncertainty,
)
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler  # noqa: E402

import skal  # noqa: E402
from skal import ResNet18Classifier  # noqa: E402
from skal.datasets import load_digits_images  # noqa: E402

pytestmark = [
    pytest.mark.modal,
    # modAL calls check_X_y(force_all_finite=...), deprecated in scikit-learn 1.6 and 1.7
    pytest.mark.filterwarnings("ignore:'force_all_finite' was renamed:FutureWarning"),
]

N_TRAIN, N_POOL = 30, 120

STRATEGIES = {
    "bald": skal.bald,
    "uncertainty_sampling": skal.uncertainty_sampling,
    "margin_sampling": skal.margin_sampling,
    "entropy_sampling": skal.entropy_sampling,
    "random_sampling": skal.random_sampling,
}


class Counted:
    """Wrap a query strategy and record every call (modAL re-calls a strategy it cannot unpack)."""

    def __init__(self, strategy):
        self.strategy = strategy
        self.calls = []
        self.__name__ = strategy.__name__

    def __call__(self, learner, X_pool, *args, **kwargs):
        self.calls.append((learner, kwargs))
        return self.strategy(learner, X_pool, *args, **kwargs)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images()
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:N_TRAIN + N_POOL], y[N_TRAIN:N_TRAIN + N_POOL]


def _net(**kwargs):
    return ResNet18Classifier(width=4, max_epochs=1, random_state=0, **kwargs)


def _n_trained_on(net):
    """Samples seen in the last epoch of the net's most recent fit (from skorch's history)."""
    return sum(batch["train_batch_size"] for batch in net.history_[-1, "batches"])


def _make(strategy, digits, estimator=None):
    X_train, y_train, _, _ = digits
    counted = Counted(strategy)
    learner = ModALActiveLearner(
        estimator=_net() if estimator is None else estimator,
        query_strategy=counted,
        X_training=X_train,
        y_training=y_train,
    )
    return learner, counted


def _check_query(learner, counted, X_pool, n_instances, **query_kwargs):
    before = len(counted.calls)
    idx, X_query = learner.query(X_pool, n_instances=n_instances, **query_kwargs)
    assert len(counted.calls) == before + 1, "modAL called the strategy more than once"
    assert counted.calls[-1][0] is learner  # modAL passes itself, skal unwraps .estimator
    idx = np.asarray(idx)
    assert idx.shape == (n_instances,)
    assert np.issubdtype(idx.dtype, np.integer)
    assert len(np.unique(idx)) == n_instances
    assert idx.min() >= 0 and idx.max() < len(X_pool)
    np.testing.assert_array_equal(X_query, X_pool[idx])
    return idx


# --------------------------------------------------------------------------- query / teach
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_query_n_instances_2_and_5_call_strategy_once(name, digits):
    _, _, X_pool, _ = digits
    learner, counted = _make(STRATEGIES[name], digits)
    # n_instances=2 is the trap: an index-only strategy's two indices unpack as (index, "metric").
    _check_query(learner, counted, X_pool, 2)
    _check_query(learner, counted, X_pool, 5)
    assert len(counted.calls) == 2


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_return_metrics_returns_the_scores(name, digits):
    _, _, X_pool, _ = digits
    learner, counted = _make(STRATEGIES[name], digits)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "doesn't support return_metrics"
        idx, X_query, scores = learner.query(X_pool, n_instances=5, return_metrics=True)
    assert len(counted.calls) == 1
    idx, scores = np.asarray(idx), np.asarray(scores, dtype=float)
    assert scores.shape == (5,) and np.isfinite(scores).all()
    np.testing.assert_array_equal(X_query, X_pool[idx])
    if name == "random_sampling":
        np.testing.assert_array_equal(scores, 0.0)
        return
    # The metrics are the utilities of exactly the chosen rows, best first ...
    proba = learner.predict_proba(X_pool)
    expected = {
        "uncertainty_sampling": lambda: 1.0 - proba.max(axis=1),
        "margin_sampling": lambda: -(np.sort(proba, axis=1)[:, -1] - np.sort(proba, axis=1)[:, -2]),
        "entropy_sampling": lambda: -np.sum(proba * np.log(np.clip(proba, 1e-300, None)), axis=1),
        "bald": lambda: skal.query.bald_scores(learner.estimator.sample_proba(X_pool, 20)),
    }[name]()
    np.testing.assert_allclose(scores, expected[idx], rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(scores) <= 1e-12)
    # ... and they are the top scores of the pool.
    np.testing.assert_allclose(scores, np.sort(expected)[::-1][:5], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "name, modal_utility, sign",
    [
        ("uncertainty_sampling", classifier_uncertainty, 1),
        ("margin_sampling", classifier_margin, -1),
        ("entropy_sampling", classifier_entropy, 1),
    ],
)
def test_scores_match_modal_builtin_utilities(name, modal_utility, sign, digits):
    """skal's strategies rank by the same utilities as modAL's own (margin negated, as modAL does)."""
    _, _, X_pool, _ = digits
    learner, _ = _make(STRATEGIES[name], digits)
    _, _, scores = learner.query(X_pool, n_instances=10, return_metrics=True)
    theirs = sign * np.asarray(modal_utility(learner, X_pool), dtype=float)
    np.testing.assert_allclose(scores, np.sort(theirs)[::-1][:10], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_teach_grows_training_data_and_refits(name, digits):
    X_train, y_train, X_pool, y_pool = digits
    learner, counted = _make(STRATEGIES[name], digits)
    net = learner.estimator
    assert _n_trained_on(net) == N_TRAIN
    epochs_before = len(net.history_)
    idx = _check_query(learner, counted, X_pool, 5)
    learner.teach(X_pool[idx], y_pool[idx])
    assert learner.X_training.shape == (N_TRAIN + 5, 1, 8, 8)
    np.testing.assert_array_equal(learner.X_training[N_TRAIN:], X_pool[idx])
    np.testing.assert_array_equal(learner.y_training[N_TRAIN:], y_pool[idx])
    # modAL's teach refits on everything seen so far; a skorch fit starts a fresh history.
    assert _n_trained_on(net) == N_TRAIN + 5
    assert len(net.history_) == epochs_before == 1
    assert net.predict(X_pool[:3]).shape == (3,)
    assert 0.0 <= learner.score(X_pool, y_pool) <= 1.0
    # The learner keeps working after teach: next query excludes nothing but still calls once.
    _check_query(learner, counted, X_pool, 2)
    assert len(counted.calls) == 2


def test_bald_query_kwargs_pass_through(digits):
    """modAL forwards extra keyword arguments to the strategy: n_samples, random_state, subsample."""
    _, _, X_pool, _ = digits
    learner, counted = _make(skal.bald, digits)
    idx_a = _check_query(learner, counted, X_pool, 3, n_samples=5, random_state=7, subsample=60)
    idx_b = _check_query(learner, counted, X_pool, 3, n_samples=5, random_state=7, subsample=60)
    np.testing.assert_array_equal(idx_a, idx_b)
    assert counted.calls[-1][1] == {
        "n_instances": 3, "n_samples": 5, "random_state": 7, "subsample": 60,
    }


def test_strategy_error_surfaces_through_modal_bare_except(digits):
    """A skal strategy's error reaches the user with its own type, despite modAL's bare except."""
    _, _, X_pool, _ = digits
    learner, counted = _make(skal.bald, digits)
    with pytest.raises(ValueError):
        learner.query(X_pool, n_instances=len(X_pool) + 1)
    # modAL's bare except re-runs the strategy after the first error; the error still surfaces.
    assert len(counted.calls) == 2


# --------------------------------------------------------------------------- pipelines
def test_pipeline_with_flat_digits_and_bald(digits):
    X_train, y_train, X_pool, y_pool = digits
    flat_train, flat_pool = X_train.reshape(len(X_train), -1), X_pool.reshape(len(X_pool), -1)
    pipe = Pipeline([
        ("scale", MinMaxScaler()),
        ("clf", _net(image_shape=(1, 8, 8))),
    ])
    counted = Counted(skal.bald)
    learner = ModALActiveLearner(
        estimator=pipe, query_strategy=counted, X_training=flat_train, y_training=y_train
    )
    for n in (2, 5):
        idx = _check_query(learner, counted, flat_pool, n)
    idx, _, scores = learner.query(flat_pool, n_instances=5, return_metrics=True)
    assert len(counted.calls) == 3
    assert np.isfinite(np.asarray(scores, dtype=float)).all()
    # bald unwrapped the pipeline: same result as scoring the scaled pool with the final net
    X_scaled = pipe[:-1].transform(flat_pool)
    ref_idx, ref_scores = skal.bald(pipe[-1], X_scaled, n_instances=5)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-6)
    learner.teach(flat_pool[idx], y_pool[idx])
    assert learner.X_training.shape == (N_TRAIN + 5, 64)
    assert _n_trained_on(pipe[-1]) == N_TRAIN + 5
    assert learner.predict(flat_pool[:4]).shape == (4,)


# --------------------------------------------------------------------------- DeepActiveLearner
def test_deep_active_learner_with_resnet(digits):
    from modAL.models import DeepActiveLearner

    X_train, y_train, X_pool, y_pool = digits
    counted = Counted(skal.bald)
    learner = DeepActiveLearner(
        estimator=_net(classes=np.arange(10), image_shape=(1, 8, 8)), query_strategy=counted
    )
    learner.teach(X_train, y_train)  # DeepActiveLearner.teach -> estimator.partial_fit
    idx = _check_query(learner, counted, X_pool, 2)
    learner.teach(X_pool[idx], y_pool[idx])
    assert learner.predict(X_pool[:3]).shape == (3,)
