"""skal's estimators and query strategies inside the real modAL (modAL-python 0.4.2.1).

modAL 0.4.2.1 pins skorch==0.9.0 and is broken on scikit-learn >= 1.8, so these tests run in the
separate environment made by ``scripts/setup_modal.sh``::

    bash scripts/setup_modal.sh
    .venv-modal/bin/python -m pytest tests/test_modal_compat.py -q -p no:cacheprovider

Anywhere modAL is not installed (the main .venv), the whole module is skipped.

What matters for a drop-in (docs/ecosystem.md, 'modAL's query-strategy convention'): modAL's
``BaseLearner.query`` unpacks the strategy's
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


# --------------------------------------------------------------------------- committees
def _skal_learners(digits, n=2):
    X_train, y_train, _, _ = digits
    return [
        skal.ActiveLearner(_net().set_params(random_state=seed),
                           query_strategy=skal.bald, X_training=X_train, y_training=y_train,
                           random_state=seed)
        for seed in range(n)
    ]


@pytest.mark.parametrize("strategy_name", ["vote_entropy_sampling", "max_disagreement_sampling",
                                           "consensus_entropy_sampling"])
def test_committee_of_skal_learners(strategy_name, digits):
    """modAL's Committee drives skal learners through their private learner protocol."""
    import modAL.disagreement as disagreement
    from modAL.models import Committee

    _, _, X_pool, y_pool = digits
    learners = _skal_learners(digits)
    committee = Committee(learner_list=learners,
                          query_strategy=getattr(disagreement, strategy_name))
    np.testing.assert_array_equal(committee.classes_, np.arange(10))
    idx, X_query = committee.query(X_pool, n_instances=3)
    idx = np.asarray(idx)
    assert len(np.unique(idx)) == 3 and idx.max() < len(X_pool)
    np.testing.assert_array_equal(X_query, X_pool[idx])
    committee.teach(X_pool[idx], y_pool[idx])
    for learner in learners:
        assert learner.X_training_.shape == (N_TRAIN + 3, 1, 8, 8)
        np.testing.assert_array_equal(learner.y_training_[N_TRAIN:], y_pool[idx])
        assert _n_trained_on(learner.estimator) == N_TRAIN + 3
    assert committee.predict(X_pool[:4]).shape == (4,)
    assert committee.vote_proba(X_pool[:4]).shape == (4, 2, 10)
    assert 0 <= committee.score(X_pool, y_pool) <= 1


def test_committee_rebag_and_teach_only_new(digits):
    from modAL.models import Committee

    _, _, X_pool, y_pool = digits
    learners = _skal_learners(digits)
    committee = Committee(learner_list=learners)
    committee.rebag()  # every learner refits on a bootstrap of its own labels
    for learner in learners:
        assert _n_trained_on(learner.estimator) == N_TRAIN
        assert learner.X_training_.shape[0] == N_TRAIN  # labels unchanged
    committee.teach(X_pool[:4], y_pool[:4], only_new=True)
    for learner in learners:
        assert _n_trained_on(learner.estimator) == 4
        assert learner.X_training_.shape[0] == N_TRAIN + 4
    committee.teach(X_pool[4:8], y_pool[4:8], bootstrap=True)
    assert all(_n_trained_on(lr.estimator) == N_TRAIN + 8 for lr in learners)


def test_skal_strategy_on_a_committee(digits):
    """skal's strategies score a Committee through its consensus predict_proba."""
    from modAL.models import Committee

    _, _, X_pool, _ = digits
    committee = Committee(learner_list=_skal_learners(digits), query_strategy=skal.entropy_sampling)
    idx, _, scores = committee.query(X_pool, n_instances=4, return_metrics=True)
    proba = committee.predict_proba(X_pool)
    expected = -np.sum(proba * np.log(np.clip(proba, 1e-300, None)), axis=1)
    np.testing.assert_allclose(scores, np.sort(expected)[::-1][:4], rtol=1e-5, atol=1e-6)


def test_committee_regressor_of_skal_learners():
    from modAL.disagreement import max_std_sampling
    from modAL.models import CommitteeRegressor
    from sklearn.neighbors import KNeighborsRegressor

    rng = np.random.default_rng(0)
    X = rng.random((80, 1))
    y = np.abs(X[:, 0] - 0.5) + 0.05 * rng.standard_normal(80)
    learners = [
        skal.ActiveLearner(KNeighborsRegressor(n_neighbors=k), query_strategy=max_std_sampling,
                           X_training=X[i::4][:10], y_training=y[i::4][:10].reshape(-1, 1))
        for i, k in enumerate((2, 3))
    ]
    committee = CommitteeRegressor(learner_list=learners, query_strategy=max_std_sampling)
    idx, X_query = committee.query(X[40:], n_instances=2)
    assert X_query.shape == (2, 1)
    committee.teach(X_query, y[40:][idx].reshape(-1, 1))  # modAL's examples use column y
    assert all(lr.y_training_.shape == (12, 1) for lr in learners)
    mean, std = committee.predict(X[:5], return_std=True)
    assert mean.shape == std.shape == (5,)


def test_skal_learner_queries_dataframe_rows(digits):
    pd = pytest.importorskip("pandas")
    X_train, y_train, X_pool, _ = digits
    flat = X_pool.reshape(len(X_pool), -1)  # (n, 64)
    learner = skal.ActiveLearner(_net(image_shape=(1, 8, 8)), query_strategy=skal.entropy_sampling,
                                 X_training=X_train.reshape(len(X_train), -1), y_training=y_train)
    pool = pd.DataFrame(flat, index=np.arange(500, 500 + len(flat)))
    idx, X_query = learner.query(pool, n_instances=5)
    assert isinstance(X_query, pd.DataFrame) and X_query.shape == (5, 64)
    np.testing.assert_array_equal(X_query.to_numpy(), flat[idx])  # rows, not columns
