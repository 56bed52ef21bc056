"""skal.ActiveLearner: modAL's interface, scikit-learn's rules."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

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


# ------------------------------------------------------------------ no pool kept after query
def test_pickled_learner_does_not_grow_after_a_query(digits_small):
    X, y = digits_small
    learner = ActiveLearner(_clf(), query_strategy=random_sampling, X_training=X[:40],
                            y_training=y[:40])
    before = len(pickle.dumps(learner))
    pool = X[40:400]
    learner.query(pool, n_instances=5, random_state=0)
    assert len(pickle.dumps(learner)) == before  # 360 images would add ~180 KB
    restored = pickle.loads(pickle.dumps(learner))
    np.testing.assert_array_equal(restored.predict(X[:5]), learner.predict(X[:5]))


def test_learner_holds_no_reference_to_the_pool(digits_small):
    import gc
    import weakref

    X, y = digits_small
    learner = ActiveLearner(_clf(), query_strategy=random_sampling, X_training=X[:40],
                            y_training=y[:40])
    pool = X[40:200].copy()
    alive = weakref.ref(pool)
    learner.query(pool, n_instances=3, random_state=0)
    del pool
    gc.collect()
    assert alive() is None


def test_a_pool_gone_before_teach_gets_a_warning(digits_small):
    X, y = digits_small

    class TakesPool(ResNet18Classifier):
        def fit(self, X, y, X_unlabeled=None, **kw):
            return super().fit(X, y, **kw)

    learner = ActiveLearner(TakesPool(width=2, max_epochs=1, random_state=0),
                            query_strategy=random_sampling, X_training=X[:30], y_training=y[:30])
    idx, X_q = learner.query(X[30:60].copy(), n_instances=2, random_state=0)  # a temporary
    with pytest.warns(UserWarning, match=r"keeps only a weak reference to the pool of the last "
                                         r"query\(\).*pass X_unlabeled= explicitly"):
        learner.teach(X_q, y[30:60][idx])
    learner.query(list(X[30:60]), n_instances=2, random_state=0)  # lists have no weak refs
    with pytest.warns(UserWarning, match=r"no longer exists or is a list"):
        learner.teach(X[:2], y[:2])


# ------------------------------------------------------------------ pools and rows of any kind
def test_query_accepts_a_list_pool(digits_small):
    X, y = digits_small
    learner = ActiveLearner(_clf(), query_strategy=entropy_sampling, X_training=X[:40],
                            y_training=y[:40])
    pool = list(X[40:80])
    idx, X_q = learner.query(pool, n_instances=3)
    assert isinstance(X_q, list) and len(X_q) == 3
    for i, row in zip(idx, X_q):
        np.testing.assert_array_equal(row, pool[i])


def test_query_on_a_dataframe_returns_rows(digits_small):
    pd = pytest.importorskip("pandas")
    X, y = digits_small
    flat = X.reshape(len(X), -1)  # (n, 64)
    learner = ActiveLearner(_clf(image_shape=(1, 8, 8)), query_strategy=entropy_sampling,
                            X_training=flat[:40], y_training=y[:40])
    pool = pd.DataFrame(flat[40:100], index=np.arange(1000, 1060))
    idx, X_q = learner.query(pool, n_instances=4)
    assert X_q.shape == (4, 64)
    np.testing.assert_array_equal(X_q.to_numpy(), flat[40:100][idx])


@pytest.mark.parametrize("pairs", [False, True])
def test_query_on_a_torch_dataset_pool_returns_images_to_teach(digits_small, pairs):
    import torch

    X, y = digits_small
    tensors = (torch.from_numpy(X[40:100]),) + ((torch.from_numpy(y[40:100]),) if pairs else ())
    pool = torch.utils.data.TensorDataset(*tensors)  # items (x,) or (x, y)
    learner = ActiveLearner(_clf(), query_strategy=bald, X_training=X[:40], y_training=y[:40])
    idx, X_q = learner.query(pool, n_instances=4, n_samples=3, random_state=0)
    assert isinstance(X_q, np.ndarray) and X_q.shape == (4, 1, 8, 8)
    np.testing.assert_array_equal(X_q, X[40:100][idx])
    learner.teach(X_q, y[40:100][idx])
    assert learner.X_training_.shape == (44, 1, 8, 8)


def test_query_on_a_memmap_pool_returns_its_rows(digits_small, tmp_path):
    X, y = digits_small
    path = tmp_path / "pool.npy"
    np.save(path, X[40:100])
    pool = np.load(path, mmap_mode="r")
    learner = ActiveLearner(_clf(), query_strategy=entropy_sampling, X_training=X[:40],
                            y_training=y[:40])
    idx, X_q = learner.query(pool, n_instances=3)
    np.testing.assert_array_equal(X_q, X[40:100][idx])
    learner.teach(X_q, y[40:100][idx])


@pytest.mark.parametrize(
    "make_X, make_y, match",
    [
        (lambda X: X.reshape(len(X), -1), lambda y: y,
         r"teach\(\) was given samples of shape \(64,\) \(X has shape \(3, 64\)\), but the "
         r"labelled set's samples have shape \(1, 8, 8\)"),
        (lambda X: X[:, :, :4, :4], lambda y: y,
         r"samples of shape \(1, 4, 4\) .* have shape \(1, 8, 8\)"),
        (lambda X: X, lambda y: y.reshape(-1, 1),
         r"teach\(\) was given y of shape \(3, 1\), but the labels taught so far have shape "
         r"\(30,\): pass y as a 1-d array of shape \(n_samples,\)"),
    ],
)
def test_teach_with_other_shapes_says_what_differs(digits_small, make_X, make_y, match):
    X, y = digits_small
    learner = ActiveLearner(_clf(), query_strategy=random_sampling, X_training=X[:30],
                            y_training=y[:30])
    with pytest.raises(ValueError, match=match):
        learner.teach(make_X(X[30:33]), make_y(y[30:33]))
    assert learner.X_training_.shape == (30, 1, 8, 8)  # nothing was added


# ------------------------------------------------------------------ modAL's learner protocol
class _Recorder:
    """A fast estimator that records what it was fitted on."""

    def fit(self, X, y):
        self.X_, self.y_ = np.asarray(X), np.asarray(y)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def test_bootstrap_is_seeded_by_random_state(digits_small):
    X, y = digits_small
    fits = []
    for _ in range(2):
        learner = ActiveLearner(_Recorder(), query_strategy=random_sampling, random_state=3)
        learner.fit(X[:50], y[:50], bootstrap=True)
        fits.append(learner.estimator.y_)
    np.testing.assert_array_equal(*fits)
    rows = {tuple(r.ravel()) for r in learner.estimator.X_}
    assert len(rows) < 50  # drawn with replacement
    assert learner.X_training_.shape == (50, 1, 8, 8)  # the labels themselves are all kept


def test_modal_protocol_methods(digits_small):
    X, y = digits_small
    learner = ActiveLearner(_Recorder(), query_strategy=random_sampling)
    learner._add_training_data(X[:20], y[:20])
    learner._fit_to_known()
    assert len(learner.estimator.y_) == 20
    learner._add_training_data(X[20:25], y[20:25])
    learner._fit_on_new(X[20:25], y[20:25])
    assert len(learner.estimator.y_) == 5 and len(learner.y_training_) == 25
    learner._fit_to_known(bootstrap=True)
    assert len(learner.estimator.y_) == 25
    assert learner.transform_without_estimating(X[:3]) is not None


# ------------------------------------------------------------------ BGADL divergence
def test_joint_learner_blames_the_classifier_that_diverged(digits_small):
    from skal import GenerativeAugmenter
    from skal.exceptions import DivergenceError

    X, y = digits_small
    learner = ActiveLearner(ResNet18Classifier(width=2, lr=1e3, random_state=0),
                            augmenter=GenerativeAugmenter(max_epochs=1, batch_size=32,
                                                          random_state=0), joint=True)
    with pytest.raises(DivergenceError, match=r"the classifier ResNet18Classifier diverged, not "
                                              r"the GenerativeAugmenter .*Lower the classifier's "
                                              r"learning rate \(estimator lr=1000\.0, e\.g\. to "
                                              r"100"):
        learner.fit(X[:64], y[:64])


def test_joint_learner_still_blames_the_augmenter_when_it_diverged(digits_small):
    from skal import GenerativeAugmenter

    X, y = digits_small
    learner = ActiveLearner(ResNet18Classifier(width=2, random_state=0),
                            augmenter=GenerativeAugmenter(lr=10.0, max_epochs=1, batch_size=32,
                                                          random_state=0), joint=True)
    with pytest.raises(RuntimeError, match=r"GenerativeAugmenter training diverged.*lr=10\.0"):
        learner.fit(X[:64], y[:64])


# ------------------------------------------------------------------ issue 15: scikit-learn's rules
def test_the_estimator_parameter_is_never_fitted(digits_small):
    X, y = digits_small
    clf = _clf()
    learner = ActiveLearner(clf, query_strategy=bald, X_training=X[:40], y_training=y[:40])
    assert not hasattr(clf, "module_")  # a clone was fitted ...
    assert learner.get_params()["estimator"] is clf  # ... the parameter is unchanged
    assert learner.estimator is learner.estimator_  # modAL reads the fitted one here
    assert learner.n_features_in_ == 64
    fitted = learner.estimator_
    learner.teach(X[40:45], y[40:45])
    assert learner.estimator_ is fitted  # teach refits estimator_ (warm_start keeps working)
    learner.fit(X[:40], y[:40])
    assert learner.estimator_ is not fitted  # fit starts from a fresh clone
    with pytest.raises(AttributeError):
        ActiveLearner(_clf()).n_features_in_  # noqa: B018
    assert not {k for k in vars(ActiveLearner(_clf(), note=1)) if not k.startswith("_")} - {
        "estimator", "query_strategy", "X_training", "y_training", "augmenter", "joint",
        "pass_pool", "clone_estimator", "random_state"}  # no fitting state in __init__ without data


class _Spy(LogisticRegression):
    """A logistic regression on flat rows whose fit records the loop arguments it is given."""

    def fit(self, X, y, X_unlabeled=None, new_rows=None):
        self.seen_ = {"n": len(X), "n_unlabeled": None if X_unlabeled is None else len(
            X_unlabeled), "new_rows": new_rows}
        return super().fit(np.asarray(X).reshape(len(X), -1), y)

    def predict_proba(self, X):
        return super().predict_proba(np.asarray(X).reshape(len(X), -1))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_hands_the_pool_and_the_new_rows_to_an_estimator_that_takes_them(digits_small):
    X, y = digits_small
    learner = ActiveLearner(_Spy(max_iter=20), query_strategy=random_sampling)
    learner.fit(X[:30], y[:30], unlabeled=X[30:100], n_new=10)
    assert learner.estimator_.seen_ == {"n": 30, "n_unlabeled": 70, "new_rows": 10}
    learner.fit(X[:30], y[:30])  # no pool given, every row new: nothing extra
    assert learner.estimator_.seen_ == {"n": 30, "n_unlabeled": None, "new_rows": None}
    X_pool = X[30:100]  # alive until teach (the learner keeps a weak reference)
    idx, X_query = learner.query(X_pool, n_instances=5, random_state=0)
    learner.teach(X_query, y[30:100][idx])  # the rest of the queried pool, the 5 new rows
    assert learner.estimator_.seen_ == {"n": 35, "n_unlabeled": 65, "new_rows": 5}
    shut = ActiveLearner(_Spy(max_iter=20), query_strategy=random_sampling, pass_pool=False)
    shut.fit(X[:30], y[:30], unlabeled=X[30:100])
    assert shut.estimator_.seen_["n_unlabeled"] is None  # pass_pool=False: never the pool
    plain = ActiveLearner(LogisticRegression(max_iter=20), query_strategy=random_sampling)
    plain.fit(X[:30].reshape(30, -1), y[:30], unlabeled=X[30:100].reshape(70, -1), n_new=10)
    assert plain.score(X[:30].reshape(30, -1), y[:30]) > 0  # a fit without them gets neither


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_clone_estimator_false_fits_the_object_and_set_params_swaps_it(digits_small):
    X, y = digits_small
    first, second = _Spy(max_iter=20), _Spy(max_iter=20, C=0.5)
    learner = ActiveLearner(first, query_strategy=random_sampling, clone_estimator=False)
    learner.fit(X[:30], y[:30])
    assert learner.estimator_ is first and hasattr(first, "coef_")
    X_pool = X[30:100]
    idx, X_query = learner.query(X_pool, n_instances=5, random_state=0)
    learner.set_params(estimator=second)  # the next round's model
    learner.teach(X_query, y[30:100][idx])
    assert learner.estimator_ is second and second.seen_["n"] == 35
    cloning = ActiveLearner(first, query_strategy=random_sampling).fit(X[:30], y[:30])
    cloning.set_params(estimator=second)
    cloning.teach(X[30:35], y[30:35])
    assert cloning.estimator_ is not second and cloning.estimator_.C == 0.5  # a clone of it
    fitted = cloning.estimator_
    cloning.teach(X[35:40], y[35:40])
    assert cloning.estimator_ is fitted  # the same parameter: refitted, not cloned again


def test_sparse_rows_and_missing_y():
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = sp.random(30, 5, density=0.5, format="dia", random_state=0)
    y = rng.integers(0, 2, 30)
    learner = ActiveLearner(LogisticRegression(), query_strategy=random_sampling)
    learner.fit(X, y)
    learner.teach(sp.random(3, 5, density=0.5, format="coo", random_state=1), [0, 1, 0])
    assert sp.issparse(learner.X_training_) and learner.X_training_.shape == (33, 5)
    with pytest.raises(ValueError, match="requires y to be passed, but the target y is None"):
        learner.fit(X, None)


def _learner_expected_failed_checks(estimator):
    return {
        "check_do_not_raise_errors_in_init_or_set_params": (
            "modAL's constructor contract: a learner given X_training and y_training fits on "
            "construction, so a bad X_training raises in __init__ (documented in ActiveLearner)"
        ),
    }


@parametrize_with_checks(
    [ActiveLearner(LogisticRegression(), query_strategy=random_sampling)],
    expected_failed_checks=_learner_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
