"""Tests for skal.estimators.bgadl.GenerativeAugmenter (the BGADL VAE-ACGAN sampler).

Everything runs on 8x8 digits with tiny settings (a few dozen images, one or two epochs): these
tests check the contract (shapes, ranges, errors, reproducibility, composition), not image quality.
"""

import importlib.util
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone

import skal
import skal.estimators.bgadl._step  # the losses the BGADL step calls (patched below)
import skal.estimators.bgadl._augmenter
import skal.estimators.bgadl._classifier
from skal import ActiveLearner, GenerativeAugmenter, ResNet18Classifier, bald
from skal.estimators.bgadl import ConvergenceError
from skal.datasets import load_digits_images

N_FIT = 41  # with batch_size=20 the last batch has one sample and must be dropped
TINY = dict(latent_dim=8, batch_size=20, max_epochs=1)


@pytest.fixture(scope="module")
def data():
    X, y = load_digits_images()
    return X[:200], y[:200]


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    aug = GenerativeAugmenter(**{**TINY, "max_epochs": 2}, random_state=0)
    return aug.fit(X[:N_FIT], y[:N_FIT])


def _assert_images(X_gen, n, shape=(1, 8, 8)):
    assert X_gen.shape == (n, *shape)
    assert X_gen.dtype == np.float32
    assert np.isfinite(X_gen).all()
    assert X_gen.min() >= 0.0 and X_gen.max() <= 1.0


# ------------------------------------------------------------------ fit / sample / generate
def test_fit_sets_attributes(fitted):
    np.testing.assert_array_equal(fitted.classes_, np.arange(10))
    assert fitted.n_features_in_ == 64
    assert fitted.input_shape_ == (1, 8, 8)
    assert len(fitted.history_) == 2
    for record in fitted.history_:
        assert set(record) == {"epoch", "loss_E", "loss_G", "loss_D", "loss_C", "dur"}
        assert all(np.isfinite(record[k]) for k in ("loss_E", "loss_G", "loss_D", "loss_C"))
    assert not hasattr(fitted, "classifier_")
    for net in (fitted.encoder_, fitted.generator_, fitted.discriminator_,
                fitted.auxiliary_classifier_):
        assert not net.training


def test_sample_shapes_dtype_range_and_labels(fitted, data):
    X, y = data
    X_gen, y_gen = fitted.sample(X[50:57], y[50:57])
    _assert_images(X_gen, 7)
    np.testing.assert_array_equal(y_gen, y[50:57])


def test_sample_accepts_uint8_and_hw_layouts(fitted, data):
    X, y = data
    X_u8 = (X[:4] * 255).round().astype(np.uint8)
    _assert_images(fitted.sample(X_u8, y[:4])[0], 4)
    _assert_images(fitted.sample(X[:4, 0], y[:4])[0], 4)  # (n, H, W)


def test_generate_shapes_and_range(fitted):
    X_gen = fitted.generate([0, 3, 3, 9])
    _assert_images(X_gen, 4)


def test_sample_and_generate_are_seeded(fitted, data):
    X, y = data
    a, _ = fitted.sample(X[:5], y[:5])
    b, _ = fitted.sample(X[:5], y[:5])
    c, _ = fitted.sample(X[:5], y[:5], random_state=123)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(fitted.generate([1, 2]), fitted.generate([1, 2]))
    assert not np.array_equal(fitted.generate([1, 2]), fitted.generate([1, 2], random_state=5))


def test_fit_is_reproducible_and_leaves_global_rng_alone(data):
    X, y = data
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    a = GenerativeAugmenter(**TINY, random_state=7).fit(X[:N_FIT], y[:N_FIT])
    b = GenerativeAugmenter(**TINY, random_state=7).fit(X[:N_FIT], y[:N_FIT])
    a.sample(X[:3], y[:3])
    a.generate([0, 1])
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.random.get_state()[1].tolist() == np_state[1].tolist()
    assert a.history_[0]["loss_G"] == b.history_[0]["loss_G"]
    np.testing.assert_array_equal(a.sample(X[:5], y[:5])[0], b.sample(X[:5], y[:5])[0])
    np.testing.assert_array_equal(a.generate([4, 5]), b.generate([4, 5]))


# ------------------------------------------------------------------ errors
def test_unseen_labels_are_named(fitted, data):
    X, y = data
    with pytest.raises(ValueError, match=r"\[42\].*not among the classes"):
        fitted.sample(X[:2], [1, 42])
    with pytest.raises(ValueError, match=r"\['cat'\]"):
        fitted.generate(["cat"])


def test_wrong_image_shape_is_refused(fitted, data):
    X, y = data
    with pytest.raises(ValueError):
        fitted.sample(np.zeros((2, 1, 10, 10), np.float32), y[:2])
    with pytest.raises(ValueError, match="channel"):
        fitted.sample(np.zeros((2, 3, 8, 8), np.float32), y[:2])
    with pytest.raises(ValueError):
        fitted.sample(X[:2].reshape(2, -1), y[:2])  # flat without image_shape
    with pytest.raises(ValueError):
        fitted.sample(X[:3], y[:2])  # inconsistent lengths


def test_one_class_is_refused(data):
    X, _ = data
    with pytest.raises(ValueError, match="one class"):
        GenerativeAugmenter(**TINY).fit_resample(X[:10], np.ones(10, dtype=int))
    with pytest.raises(ValueError, match="one class"):
        GenerativeAugmenter(**TINY).fit(X[:10], np.ones(10, dtype=int))


def test_images_outside_unit_range_are_refused(data):
    X, y = data
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        GenerativeAugmenter(**TINY).fit(X[:10] * 16, y[:10])


@pytest.mark.parametrize(
    "params",
    [
        {"latent_dim": 0},
        {"max_epochs": 0},
        {"batch_size": 1},
        {"ratio": -1.0},
        {"lr": 0.0},
        {"betas": (0.5,)},
        {"kl_weight": -1.0},
        {"kl_reduction": "median"},
        {"rec_reduction": "max"},
        {"gen_batchnorm": "real"},
    ],
)
def test_invalid_params(params, data):
    X, y = data
    name = next(iter(params))
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        GenerativeAugmenter(**{**TINY, **params}).fit(X[:10], y[:10])


def test_classifier_must_be_a_skal_classifier(data):
    from sklearn.linear_model import LogisticRegression

    X, y = data
    with pytest.raises(TypeError, match="MCDropoutClassifier"):
        GenerativeAugmenter(**TINY, classifier=LogisticRegression()).fit(X[:10], y[:10])


@pytest.mark.parametrize("loss_name", ["encoder_loss", "discriminator_loss"])
def test_divergence_is_detected(monkeypatch, data, loss_name):
    X, y = data
    # the losses are called from skal.estimators.bgadl._classifier, whose skorch train_step trains the augmenter's net
    real_loss = getattr(skal.estimators.bgadl._step, loss_name)
    calls = []

    def diverging(*args, **kwargs):
        calls.append(1)
        loss = real_loss(*args, **kwargs)
        return loss * float("nan") if len(calls) >= 4 else loss  # epoch 2, batch 2 of 2

    monkeypatch.setattr(skal.estimators.bgadl._step, loss_name, diverging)
    aug = GenerativeAugmenter(**{**TINY, "max_epochs": 3}, random_state=0)
    label = {"encoder_loss": "L_E", "discriminator_loss": "L_D"}[loss_name]
    with pytest.raises(ConvergenceError, match=rf"{label} is nan at epoch 2/3, batch 2/2.*lr"):
        aug.fit(X[:N_FIT], y[:N_FIT])
    assert isinstance(ConvergenceError("x"), RuntimeError)
    assert not hasattr(aug, "generator_")  # no half-trained model to sample NaN images from


# ------------------------------------------------------------------ fit_resample
@pytest.mark.parametrize("ratio, n_new", [(1.0, 41), (0.5, 20), (2.0, 82), (0.0, 0)])
def test_fit_resample_adds_generated_rows(data, ratio, n_new):
    X, y = data
    X_u8 = (X[:N_FIT] * 255).round().astype(np.uint8)
    X_res, y_res = GenerativeAugmenter(**TINY, ratio=ratio, random_state=0).fit_resample(
        X_u8, y[:N_FIT]
    )
    _assert_images(X_res, N_FIT + n_new)
    np.testing.assert_allclose(X_res[:N_FIT], X_u8 / 255.0, atol=1e-6)  # real rows first
    np.testing.assert_array_equal(y_res[:N_FIT], y[:N_FIT])
    assert set(y_res[N_FIT:]) <= set(y[:N_FIT])


def test_fit_resample_keeps_flat_layout_and_labels(data):
    X, y = data
    labels = np.array(list("abcdefghij"))[y[:N_FIT]]
    aug = GenerativeAugmenter(**TINY, image_shape=(1, 8, 8), random_state=0)
    X_res, y_res = aug.fit_resample(X[:N_FIT].reshape(N_FIT, -1), labels)
    assert X_res.shape == (2 * N_FIT, 64) and X_res.dtype == np.float32
    assert y_res.dtype == labels.dtype and set(y_res) <= set(labels)
    X_gen, _ = aug.sample(X[:3].reshape(3, -1), labels[:3])
    assert X_gen.shape == (3, 1, 8, 8)


def test_is_an_imblearn_sampler():
    base = pytest.importorskip("imblearn.base")
    aug = GenerativeAugmenter()
    assert isinstance(aug, base.BaseSampler)
    assert base.is_sampler(aug)
    assert GenerativeAugmenter._sampling_type == "over-sampling"


def test_imblearn_pipeline(data):
    pipeline = pytest.importorskip("imblearn.pipeline")
    X, y = data
    pipe = pipeline.Pipeline([
        ("aug", GenerativeAugmenter(**TINY, random_state=0)),
        ("clf", ResNet18Classifier(width=4, max_epochs=1, random_state=0)),
    ])
    pipe.fit(X[:60], y[:60])
    assert pipe.predict(X[60:70]).shape == (10,)  # the sampler is skipped at predict time
    batches = pipe.named_steps["clf"].history_[-1, "batches"]
    assert sum(b["train_batch_size"] for b in batches) == 120  # 60 real + 60 generated rows
    cloned = clone(pipe).set_params(aug__ratio=0.5)
    assert cloned.get_params()["aug__ratio"] == 0.5


def test_imblearn_pipeline_with_flat_rows(data):
    pipeline = pytest.importorskip("imblearn.pipeline")
    from sklearn.preprocessing import MinMaxScaler

    X, y = data
    X_flat = X[:60].reshape(60, -1) * 16  # raw 0..16 pixels; the scaler maps them to [0, 1]
    pipe = pipeline.Pipeline([
        ("scale", MinMaxScaler()),
        ("aug", GenerativeAugmenter(**TINY, image_shape=(1, 8, 8), random_state=0)),
        ("clf", ResNet18Classifier(width=4, max_epochs=1, image_shape=(1, 8, 8), random_state=0)),
    ])
    pipe.fit(X_flat, y[:60])
    assert pipe.predict(X_flat[:5]).shape == (5,)


def test_works_without_imbalanced_learn(monkeypatch, data):
    """The module imports and fit_resample works when imbalanced-learn is missing."""
    monkeypatch.setitem(sys.modules, "imblearn", None)
    monkeypatch.setitem(sys.modules, "imblearn.base", None)
    spec = importlib.util.spec_from_file_location(
        "skal.estimators.bgadl._augmenter_without_imblearn",
        Path(skal.estimators.bgadl._augmenter.__file__)
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.GenerativeAugmenter.__mro__[1].__name__ == "BaseEstimator"
    X, y = data
    aug = module.GenerativeAugmenter(**TINY, ratio=0.5, random_state=0)
    X_res, y_res = aug.fit_resample(X[:20], y[:20])
    assert X_res.shape == (30, 1, 8, 8) and y_res.shape == (30,)
    assert clone(aug).get_params() == aug.get_params()
    assert aug.__sklearn_tags__().estimator_type == "sampler"


# ------------------------------------------------------------------ joint mode
def test_joint_mode_trains_the_given_classifier(data):
    X, y = data
    labels = np.array(list("abcdefghij"))[y]
    clf = ResNet18Classifier(width=4, max_epochs=5)
    aug = GenerativeAugmenter(**{**TINY, "max_epochs": 2}, classifier=clf, random_state=0)
    aug.fit(X[:N_FIT], labels[:N_FIT])
    assert not hasattr(clf, "module_")  # the parameter is cloned, not fitted in place
    fitted_clf = aug.classifier_
    assert fitted_clf is not clf
    assert aug.auxiliary_classifier_ is fitted_clf.module_
    np.testing.assert_array_equal(fitted_clf.classes_, aug.classes_)
    assert len(fitted_clf.history_) == 2  # the augmenter's epochs, not the classifier's
    pred = fitted_clf.predict(X[100:110])
    assert pred.shape == (10,) and set(pred) <= set(labels)
    assert fitted_clf.sample_proba(X[100:103], n_samples=3).shape == (3, 3, 10)
    _assert_images(aug.sample(X[:4], labels[:4])[0], 4)


def test_joint_mode_with_a_generic_mc_dropout_classifier(data):
    from skal import MCDropoutClassifier
    from skal.nets import AuxiliaryClassifier

    X, y = data
    clf = MCDropoutClassifier(AuxiliaryClassifier, optimizer=torch.optim.Adam, lr=1e-3)
    aug = GenerativeAugmenter(**TINY, classifier=clf, random_state=0).fit(X[:N_FIT], y[:N_FIT])
    assert isinstance(aug.classifier_.module_, AuxiliaryClassifier)
    assert aug.classifier_.predict(X[:4]).shape == (4,)


def test_joint_mode_nested_params_and_clone():
    aug = GenerativeAugmenter(classifier=ResNet18Classifier(width=4))
    aug.set_params(classifier__width=8)
    assert aug.get_params()["classifier__width"] == 8
    assert clone(aug).classifier.width == 8


# ------------------------------------------------------------------ scikit-learn contract
def test_init_stores_params_only():
    aug = GenerativeAugmenter(latent_dim=3, betas=(0.4, 0.9))
    assert not [k for k in vars(aug) if k.endswith("_")]
    assert aug.get_params()["latent_dim"] == 3 and aug.get_params()["betas"] == (0.4, 0.9)
    assert aug.set_params(ratio=2.0).ratio == 2.0


def test_clone_and_pickle(fitted, data):
    X, y = data
    cloned = clone(fitted)
    assert cloned.get_params() == fitted.get_params()
    assert not hasattr(cloned, "generator_")
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.sample(X[:4], y[:4])[0], fitted.sample(X[:4], y[:4])[0])
    np.testing.assert_array_equal(restored.classes_, fitted.classes_)


def test_unfitted_raises_not_fitted(data):
    from sklearn.exceptions import NotFittedError

    X, y = data
    with pytest.raises(NotFittedError):
        GenerativeAugmenter().sample(X[:2], y[:2])
    with pytest.raises(NotFittedError):
        GenerativeAugmenter().generate([0])


# ------------------------------------------------------------------ BGADL in ActiveLearner
def test_active_learner_with_augmenter(data):
    X, y = data
    X_train, y_train = X[:30], y[:30]
    X_pool = X[30:130].copy()
    pool_before = X_pool.copy()
    learner = ActiveLearner(
        ResNet18Classifier(width=4, max_epochs=1, random_state=0),
        query_strategy=bald,
        augmenter=GenerativeAugmenter(**TINY, random_state=0),
        X_training=X_train,
        y_training=y_train,
    )
    assert learner.X_generated_.shape == (30, 1, 8, 8)  # one variation per labelled image
    idx, X_query = learner.query(X_pool, n_instances=5, n_samples=3)
    learner.teach(X_query, y[30:130][idx])
    # labels: only real ones
    assert len(learner.y_training_) == 35 and len(learner.X_training_) == 35
    np.testing.assert_array_equal(learner.y_training_, np.concatenate([y_train, y[30:130][idx]]))
    # generated samples: kept apart, with the labels of the rows they came from
    assert learner.X_generated_.shape == (35, 1, 8, 8)
    np.testing.assert_array_equal(learner.y_generated_[30:], y[30:130][idx])
    assert learner.X_generated_.min() >= 0 and learner.X_generated_.max() <= 1
    # the pool is never touched, and the next query indexes it
    np.testing.assert_array_equal(X_pool, pool_before)
    idx2, _ = learner.query(X_pool, n_instances=3, n_samples=3)
    assert idx2.max() < len(X_pool)
    assert learner.predict(X[150:155]).shape == (5,)


def test_active_learner_with_augmenter_on_flat_rows(data):
    X, y = data
    shape = (1, 8, 8)
    learner = ActiveLearner(
        ResNet18Classifier(width=4, max_epochs=1, image_shape=shape, random_state=0),
        augmenter=GenerativeAugmenter(**TINY, image_shape=shape, random_state=0),
        X_training=X[:30].reshape(30, -1),
        y_training=y[:30],
    )
    learner.teach(X[30:33].reshape(3, -1), y[30:33])
    assert learner.X_generated_.shape == (33, 64)  # the layout of the real rows
    assert learner.X_training_.shape == (33, 64)
