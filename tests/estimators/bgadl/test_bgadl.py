"""Tests for skal.estimators.bgadl._classifier: BGADL as a skorch classifier (callbacks, history, the BGADL parameters).

Tiny settings on 8x8 digits (width-2 ResNet18, small E/G/D, one to five epochs of 40 images):
these tests check what each parameter does, not accuracy.
"""

import pickle

import numpy as np
import pytest
import torch
from skorch.callbacks import Checkpoint, EarlyStopping, LRScheduler
from skorch.dataset import ValidSplit
from sklearn.base import clone

import skal.estimators.bgadl._step  # the losses the BGADL step calls (patched below)
import skal.estimators.bgadl._classifier
from skal import (
    ActiveLearner,
    BGADLClassifier,
    BGADLMCDropoutClassifier,
    GenerativeAugmenter,
    ResNet18Classifier,
    bald,
)
from skal.estimators.bgadl._step import warmup_weight
from skal.exceptions import DivergenceError
from skal.losses import auxiliary_classifier_loss, masked_cross_entropy
from skal.nets import AuxiliaryClassifier, BGADLLeNet
from skal.data.transforms import random_crop_flip

N = 40  # two batches of 20
# gen_weight=1.0: the paper's scheme, which most tests here exercise (the default is 0)
TINY = dict(width=2, latent_dim=8, gan_width=8, gan_hidden=32, batch_size=20, max_epochs=1,
            random_state=0, gen_weight=1.0)


@pytest.fixture(scope="module")
def data(digits):
    X, y = digits
    return X[:N], y[:N], X[200:260], y[200:260]


def _bgadl(**params):
    return BGADLClassifier(**{**TINY, **params})


def _weights(net):
    return [p.detach().clone() for p in net.parameters()]


def _same_weights(a, b):
    return all(torch.equal(p, q) for p, q in zip(_weights(a), _weights(b)))


# ------------------------------------------------------------------ skorch integration
def test_joint_training_records_history_and_uses_skorch_modules(data):
    X, y, X_test, _ = data
    clf = _bgadl(max_epochs=2).fit(X, y)
    assert len(clf.history_) == 2
    for row in clf.history_:
        assert {"loss_E", "loss_G", "loss_D", "loss_C", "gen_weight", "train_loss"} <= set(row)
        assert row["train_loss"] == pytest.approx(row["loss_C"])
        assert len(row["batches"]) == 2
    # the extra modules and optimizers are skorch's: registered, so set_params reaches them
    assert {"module", "encoder", "generator", "discriminator"} <= set(clf._modules)
    assert {"optimizer", "encoder_optimizer", "generator_optimizer",
            "discriminator_optimizer"} <= set(clf._optimizers)
    clf.set_params(encoder_optimizer__lr=1e-5)
    assert clf.encoder_optimizer_.param_groups[0]["lr"] == 1e-5
    # the classifier's optimizer holds the classifier only
    assert {id(p) for g in clf.optimizer_.param_groups for p in g["params"]} == {
        id(p) for p in clf.module_.parameters()}
    assert clf.predict(X_test).shape == (len(X_test),)
    assert clf.sample_proba(X_test[:3], n_samples=4).shape == (4, 3, 10)


def test_joint_mode_honours_early_stopping_on_train_loss(data):
    X, y, _, _ = data
    # threshold=1 (relative): no epoch ever improves enough, so training stops after patience
    stop = EarlyStopping(monitor="train_loss", patience=2, threshold=1.0)
    clf = _bgadl(max_epochs=8, callbacks=[("stop", stop)]).fit(X, y)
    assert len(clf.history_) == 3 < clf.max_epochs
    assert all("loss_G" in row for row in clf.history_)


def test_joint_mode_honours_early_stopping_on_a_validation_split(data):
    X, y, _, _ = data
    X2, y2 = np.concatenate([X, X]), np.concatenate([y, y])
    stop = EarlyStopping(monitor="valid_loss", patience=1, threshold=1.0)
    clf = _bgadl(max_epochs=8, train_split=ValidSplit(4, stratified=False),
                 callbacks=[("stop", stop)]).fit(X2, y2)
    assert len(clf.history_) == 2
    assert all(np.isfinite(row["valid_loss"]) for row in clf.history_)
    assert sum(b.get("train_batch_size", 0) for b in clf.history_[-1]["batches"]) == 60  # 3/4


def test_joint_mode_honours_lr_scheduler_and_leaves_the_gan_lr_alone(data):
    X, y, _, _ = data
    scheduler = LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    clf = _bgadl(max_epochs=3, lr=1e-3, callbacks=[("lr", scheduler)]).fit(X, y)
    assert clf.optimizer_.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5**3)
    np.testing.assert_allclose(clf.history_[:, "event_lr"], [1e-3, 5e-4, 2.5e-4])
    for name in ("encoder", "generator", "discriminator"):
        assert getattr(clf, f"{name}_optimizer_").param_groups[0]["lr"] == clf.gan_lr


def test_joint_mode_honours_checkpoint(data, tmp_path):
    X, y, _, _ = data
    checkpoint = Checkpoint(monitor="train_loss_best", dirname=str(tmp_path), f_history=None,
                            f_criterion=None, f_optimizer=None)
    _bgadl(max_epochs=2, callbacks=[("ckpt", checkpoint)]).fit(X, y)
    assert (tmp_path / "params.pt").exists()


def test_augmenter_classifier_callbacks_now_apply(data):
    """The old joint path ignored the classifier's callbacks (it trained the augmenter's epochs)."""
    X, y, _, _ = data
    stop = EarlyStopping(monitor="train_loss", patience=1, threshold=1.0)
    clf = ResNet18Classifier(width=2, callbacks=[("stop", stop)])
    aug = GenerativeAugmenter(latent_dim=8, batch_size=20, max_epochs=6, classifier=clf,
                              random_state=0).fit(X, y)
    assert len(aug.classifier_.history_) == 2 < aug.max_epochs
    assert isinstance(aug.classifier_, BGADLClassifier)


def test_clone_pickle_and_params(data):
    X, y, X_test, _ = data
    clf = _bgadl(gen_weight=0.3, rec_source="new")
    params = clf.get_params()
    assert params["gen_weight"] == 0.3 and params["rec_source"] == "new"
    assert not [k for k in vars(clf) if k.endswith("_") and not k.startswith("_")
                and k not in ("prefixes_", "cuda_dependent_attributes_", "init_context_")]
    cloned = clone(clf.set_params(gen_warmup=0.5))
    assert cloned.gen_warmup == 0.5 and cloned.gen_weight == 0.3
    clf.fit(X, y, new_rows=10)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(X_test), clf.predict(X_test))
    np.testing.assert_array_equal(restored.generate([1, 2], random_state=3),
                                  clf.generate([1, 2], random_state=3))


# ------------------------------------------------------------------ gen_weight and warm-up
def test_gen_weight_zero_gives_the_plain_classifier(data):
    X, y, X_test, _ = data
    common = dict(width=2, batch_size=20, max_epochs=2, random_state=0,
                  iterator_train__shuffle=True)
    plain = ResNet18Classifier(**common).fit(X, y)
    zero = BGADLClassifier(**common, latent_dim=8, gen_weight=0.0).fit(X, y)
    no_gan = BGADLClassifier(**common, generative=False).fit(X, y)
    one = BGADLClassifier(**common, latent_dim=8, gen_weight=1.0).fit(X, y)
    assert _same_weights(zero.module_, plain.module_)
    assert _same_weights(no_gan.module_, plain.module_)
    np.testing.assert_array_equal(zero.predict_proba(X_test), plain.predict_proba(X_test))
    assert not _same_weights(one.module_, plain.module_)
    assert zero.generate([0, 1]).shape == (2, 1, 8, 8)  # the VAE-ACGAN still trained
    with pytest.raises(AttributeError, match="generative=False"):
        no_gan.generate([0])


def test_default_classifier_learns_from_real_images_only(data):
    # the default weight 0: BGADL + BALD is never less accurate than BALD alone
    X, y, X_test, _ = data
    common = dict(width=2, batch_size=20, max_epochs=2, random_state=0)
    default = BGADLClassifier(**common, latent_dim=8)
    assert default.gen_weight == 0.0
    default.fit(X, y)
    plain = ResNet18Classifier(**common).fit(X, y)
    np.testing.assert_array_equal(default.predict_proba(X_test), plain.predict_proba(X_test))
    assert list(default.history_[:, "gen_weight"]) == [0.0, 0.0]
    assert np.isfinite(default.history_[-1, "loss_G"])  # the VAE-ACGAN trained all the same


def test_warmup_schedule_values():
    assert [warmup_weight(e, 5, 1.0, 0.8) for e in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert [warmup_weight(e, 4, 0.3, 0.0) for e in range(3)] == [0.3, 0.3, 0.3]
    assert warmup_weight(1, 10, 0.1, 1.0) == pytest.approx(0.01)


def test_warmup_is_recorded_per_epoch(data):
    X, y, _, _ = data
    clf = _bgadl(max_epochs=5, gen_weight=0.3, gen_warmup=0.8).fit(X, y)
    np.testing.assert_allclose(clf.history_[:, "gen_weight"], [0.0, 0.075, 0.15, 0.225, 0.3])


# ------------------------------------------------------------------ confidence filter
def test_keep_masks_follow_the_threshold(data):
    clf = _bgadl(gen_filter="classifier", gen_threshold=0.9)
    logits = torch.tensor([[5.0, 0.0], [0.0, 5.0], [2.0, 0.0]])  # p(class 0): .993, .007, .881
    y = torch.tensor([0, 0, 0])
    assert clf._keep(logits, None, y).tolist() == [True, False, False]
    clf.set_params(gen_filter="discriminator", gen_threshold=0.5)
    d_logits = torch.tensor([2.0, -2.0, 0.1])  # sigmoid: .88, .12, .52
    assert clf._keep(logits, d_logits, y).tolist() == [True, False, True]
    assert clf.set_params(gen_filter=None)._keep(logits, d_logits, y) is None


def test_masked_cross_entropy_matches_the_authors_loss_when_all_are_kept():
    g = torch.Generator().manual_seed(0)
    real, fake, rec = (torch.randn(6, 3, generator=g) for _ in range(3))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    ours = torch.nn.functional.cross_entropy(real, y) + masked_cross_entropy(fake, y) + (
        masked_cross_entropy(rec, y))
    torch.testing.assert_close(ours, auxiliary_classifier_loss(real, fake, rec, y))
    keep = torch.tensor([True, False, True, False, False, False])
    per_row = torch.nn.functional.cross_entropy(fake, y, reduction="none")
    torch.testing.assert_close(masked_cross_entropy(fake, y, keep), per_row[keep].sum() / 6)
    assert float(masked_cross_entropy(fake, y, torch.zeros(6, dtype=torch.bool))) == 0.0


@pytest.mark.parametrize("threshold, kept", [(0.0, 1.0), (1.0, 0.0)])
def test_discriminator_filter_keeps_all_or_none(data, threshold, kept):
    X, y, _, _ = data
    clf = _bgadl(max_epochs=1, gen_filter="discriminator", gen_threshold=threshold).fit(X, y)
    assert clf.history_[-1, "gen_kept"] == kept


# ------------------------------------------------------------------ rec_source
def _spy_generated_labels(monkeypatch, net_type=BGADLClassifier):
    """Record the labels of every generated batch the classifier's loss sees."""
    seen = []
    real = skal.estimators.bgadl.BGADLMixin._generated_loss

    def spy(self, images, y, d_logits):
        if type(self) is net_type:  # not the separate VAE-ACGAN of joint=False
            seen.append(y.cpu().numpy().copy())
        return real(self, images, y, d_logits)

    monkeypatch.setattr(skal.estimators.bgadl.BGADLMixin, "_generated_loss", spy)
    return seen


@pytest.mark.parametrize("rec_source", ["new", "all"])
def test_rec_source_new_generates_from_the_new_rows_only(data, monkeypatch, rec_source):
    X, y, _, _ = data
    seen = _spy_generated_labels(monkeypatch)
    new = np.flatnonzero(y == 3)  # only class 3 is "newly acquired"
    _bgadl(max_epochs=2, rec_source=rec_source).fit(X, y, new_rows=new)
    labels = np.concatenate(seen)
    assert len(seen) == 4  # one generated batch per step
    if rec_source == "new":
        assert set(labels) == {3}
    else:
        assert len(set(labels)) > 1


def test_new_rows_as_a_count_takes_the_last_rows(data, monkeypatch):
    X, y, _, _ = data
    seen = _spy_generated_labels(monkeypatch)
    order = np.argsort(y == 5, kind="stable")  # class-5 rows last
    k = int((y == 5).sum())
    _bgadl(rec_source="new").fit(X[order], y[order], new_rows=k)
    assert set(np.concatenate(seen)) == {5}


@pytest.mark.parametrize("new_rows", [0, N + 1, [N], np.zeros(N, dtype=bool), "last"])
def test_bad_new_rows_are_refused(data, new_rows):
    X, y, _, _ = data
    with pytest.raises(ValueError, match="'new_rows' parameter of BGADLClassifier.fit"):
        _bgadl(rec_source="new").fit(X, y, new_rows=new_rows)


# ------------------------------------------------------------------ joint=False
def test_non_joint_path_trains_a_separate_vae_acgan_then_the_classifier(data, monkeypatch):
    X, y, X_test, _ = data
    seen = _spy_generated_labels(monkeypatch)
    clf = _bgadl(max_epochs=2, joint=False, gan_steps=1.5, rec_source="new").fit(
        X, y, new_rows=np.flatnonzero(y == 7))
    gan = clf.vae_acgan_
    assert isinstance(gan, BGADLMCDropoutClassifier) and isinstance(
        gan.module_, AuxiliaryClassifier)
    assert len(gan.history_) == 3  # round(1.5 * 2) epochs for the VAE-ACGAN
    assert not hasattr(clf, "encoder_")  # the classifier has no E/G/D of its own
    assert "loss_E" not in clf.history_[-1] and len(clf.history_) == 2
    assert set(np.concatenate(seen)) == {7}  # x' of the new rows only
    assert clf.sample(X[:3], y[:3])[0].shape == (3, 1, 8, 8)
    assert clf.predict(X_test).shape == (len(X_test),)


def test_gan_warm_start_needs_joint(data):
    X, y, _, _ = data
    with pytest.raises(ValueError, match="'gan_warm_start' parameter of BGADLClassifier"):
        _bgadl(joint=False, gan_warm_start=True).fit(X, y)


# ------------------------------------------------------------------ warm start, gan_steps
def test_gan_warm_start_keeps_the_vae_acgan_and_retrains_the_classifier(data):
    X, y, X_test, _ = data
    clf = _bgadl(gan_warm_start=True).fit(X, y)
    generator, classifier = clf.generator_, clf.module_
    after_first = _weights(generator)
    steps = float(clf.encoder_optimizer_.state_dict()["state"][0]["step"])
    clf.fit(X, y)
    assert clf.generator_ is generator and clf.module_ is not classifier
    assert not all(torch.equal(p, q) for p, q in zip(after_first, _weights(generator)))
    assert clf.encoder_optimizer_.state_dict()["state"][0]["step"] == steps + 2  # continued
    cold = _bgadl().fit(X, y)
    generator = cold.generator_
    cold.fit(X, y)
    assert cold.generator_ is not generator


@pytest.mark.parametrize("gan_steps, updates", [(1, 4), (2, 8), (0.5, 2)])
def test_gan_steps_sets_the_vae_acgan_updates_per_classifier_step(data, gan_steps, updates):
    X, y, _, _ = data
    clf = _bgadl(max_epochs=2, gan_steps=gan_steps).fit(X, y)
    for name in ("encoder", "generator", "discriminator"):
        state = getattr(clf, f"{name}_optimizer_").state_dict()["state"][0]
        assert int(state["step"]) == updates
    assert int(clf.optimizer_.state_dict()["state"][0]["step"]) == 4  # classifier: 2 x 2 steps


# ------------------------------------------------------------------ ordinary augmentation
def test_random_crop_flip_is_a_shifted_or_mirrored_copy():
    x = torch.rand(64, 2, 6, 6, generator=torch.Generator().manual_seed(0)) + 1.0  # all > 0
    out = random_crop_flip(x, padding=2, generator=torch.Generator().manual_seed(1))
    assert out.shape == x.shape
    torch.testing.assert_close(random_crop_flip(x, padding=0, generator=torch.Generator(
    ).manual_seed(2)).flip(-1).sum((1, 2, 3)), x.sum((1, 2, 3)))  # only flips at padding 0
    flipped = sum(bool(torch.equal(o, xi.flip(-1))) for o, xi in zip(out, x))
    same = sum(bool(torch.equal(o, xi)) for o, xi in zip(out, x))
    zeros = sum(bool((o == 0).any()) for o in out)
    assert 0 < flipped + same < 64 and zeros > 32  # most crops are shifted (zero border)


def test_augment_changes_the_classifier_and_a_callable_is_called(data):
    X, y, _, _ = data
    common = dict(width=2, batch_size=20, max_epochs=1, random_state=0,
                  iterator_train__shuffle=True)
    plain = ResNet18Classifier(**common).fit(X, y)
    crop = BGADLClassifier(**common, generative=False, augment="crop_flip").fit(X, y)
    assert not _same_weights(crop.module_, plain.module_)
    calls = []

    def identity(x):
        calls.append(tuple(x.shape))
        return x

    ident = BGADLClassifier(**common, generative=False, augment=identity).fit(X, y)
    assert calls == [(20, 1, 8, 8)] * 2
    assert _same_weights(ident.module_, plain.module_)
    calls.clear()
    BGADLClassifier(**common, latent_dim=8, augment=identity).fit(X, y)
    assert calls == [(20, 1, 8, 8)] * 2  # joint: the classifier's real images only


# ------------------------------------------------------------------ the authors' LeNet
def test_bgadl_lenet_shapes_and_mc_dropout_split():
    net = BGADLLeNet(in_channels=1, n_classes=10, image_shape=(1, 28, 28)).eval()
    x = torch.rand(3, 1, 28, 28)
    assert net.fc[0].in_features == 16 * 5 * 5  # the authors' 16x5x5 map on 28x28
    torch.testing.assert_close(net(x), net.head(net.features(x)))
    assert net(x).shape == (3, 10)
    with pytest.raises(ValueError, match="'image_shape' parameter of BGADLLeNet"):
        BGADLLeNet(image_shape=(1, 8, 8))


def test_bgadl_with_the_authors_lenet(fashion_like):
    X, y = fashion_like
    clf = BGADLMCDropoutClassifier(BGADLLeNet, optimizer=torch.optim.Adam, lr=1e-3,
                                   latent_dim=8, gan_width=8, gan_hidden=32, batch_size=10,
                                   max_epochs=1, random_state=0).fit(X, y)
    assert isinstance(clf.module_, BGADLLeNet)
    assert clf.sample_proba(X[:2], n_samples=3).shape == (3, 2, 2)


@pytest.fixture(scope="module")
def fashion_like():
    g = np.random.default_rng(0)
    return g.random((20, 1, 28, 28), dtype=np.float32), np.repeat([0, 1], 10)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("params", [
    {"gen_weight": -1.0}, {"gen_warmup": 1.5}, {"gen_threshold": -0.1},
    {"gen_filter": "both"}, {"rec_source": "old"}, {"gan_steps": 0}, {"augment": "mixup"},
    {"gan_lr": 0.0}, {"gan_betas": (0.5,)}, {"latent_dim": 0}, {"joint": "yes"},
    {"rec_reduction": "max"}, {"gan_optimizer": "adam"}, {"gen_batchnorm": "real"},
])
def test_invalid_bgadl_params(data, params):
    X, y, _, _ = data
    name = next(iter(params))
    with pytest.raises(ValueError, match=f"'{name}' parameter of BGADLClassifier"):
        _bgadl(**params).fit(X, y)


def test_images_outside_unit_range_are_refused(data):
    X, y, _, _ = data
    with pytest.raises(ValueError, match=r"BGADLClassifier needs images with values in \[0, 1\]"):
        _bgadl().fit(X * 16, y)


def test_divergence_names_loss_epoch_and_batch(data, monkeypatch):
    X, y, _, _ = data
    real = skal.estimators.bgadl._step.generator_loss
    calls = []

    def diverging(*args, **kwargs):
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(skal.estimators.bgadl._step, "generator_loss", diverging)
    with pytest.raises(DivergenceError, match=r"L_G is nan at epoch 2/2, batch 1/2.*gan_lr"):
        _bgadl(max_epochs=2).fit(X, y)


# ------------------------------------------------------------------ in the active-learning loop
def test_active_learner_with_a_bgadl_classifier(data, digits):
    X, y, _, _ = data
    Xd, yd = digits
    X_pool, y_pool = Xd[300:400], yd[300:400]
    clf = _bgadl(rec_source="new")
    learner = ActiveLearner(clf, query_strategy=bald, X_training=X, y_training=y)
    idx, X_query = learner.query(X_pool, n_instances=5, n_samples=3, random_state=0)
    learner.teach(X_query, y_pool[idx])
    # a clone of clf is fitted (issue 15: the estimator parameter stays unfitted)
    assert learner.estimator is learner.estimator_ and not hasattr(clf, "module_")
    assert len(learner.y_training_) == N + 5
    assert learner.X_generated_ is None  # generated images are made per batch, never stored
    assert learner.estimator_.history_[-1, "batches"][0]["train_batch_size"] == 20
    assert learner.predict(X_pool[:3]).shape == (3,)


def test_active_learner_passes_the_taught_rows_as_new_rows(data, monkeypatch):
    X, y, _, _ = data
    seen = []
    real_fit = BGADLClassifier.fit

    def spy(self, X, y, new_rows=None, **kwargs):
        seen.append((len(X), new_rows))
        return real_fit(self, X, y, new_rows=new_rows, **kwargs)

    monkeypatch.setattr(BGADLClassifier, "fit", spy)
    learner = ActiveLearner(_bgadl(rec_source="new"), X_training=X[:30], y_training=y[:30])
    learner.teach(X[30:37], y[30:37])
    assert seen == [(30, None), (37, 7)]  # fit: all rows are new; teach: the taught rows


def test_active_learner_joint_flag_is_deprecated(data):
    X, y, _, _ = data
    learner = ActiveLearner(ResNet18Classifier(width=2, max_epochs=1),
                            augmenter=GenerativeAugmenter(latent_dim=8, batch_size=20,
                                                          max_epochs=1, random_state=0),
                            joint=True)
    with pytest.warns(DeprecationWarning, match="BGADLClassifier"):
        learner.fit(X, y)
    assert "gen_weight" not in learner.estimator.get_params()  # state copied, not parameters
    assert clone(learner.estimator).get_params()["width"] == 2


def test_run_experiment_passes_the_last_round_as_new_rows(tmp_path, monkeypatch):
    from skal.experiment import ExperimentConfig, run_experiment

    seen = []
    real_fit = BGADLClassifier.fit

    def spy(self, X, y, new_rows=None, **kwargs):
        seen.append((len(X), new_rows))
        return real_fit(self, X, y, new_rows=new_rows, **kwargs)

    monkeypatch.setattr(BGADLClassifier, "fit", spy)
    config = ExperimentConfig(dataset="digits", method="bgadl", n_initial=20, query_size=10,
                              n_rounds=2, repeats=1, pool_size=100, test_size=50, width=2,
                              max_epochs=1, batch_size=16, n_mc_samples=3)
    run_experiment(config, tmp_path / "run", progress=False)
    assert seen == [(20, 20), (30, 10), (40, 10)]


# ------------------------------------------------------------------ train_transform
class _CountingTransform:
    """A per-image train_transform that counts the images it sees and records their maximum."""

    def __init__(self):
        self.n, self.max_seen = 0, -np.inf

    def __call__(self, x):
        self.n += 1
        self.max_seen = max(self.max_seen, float(x.max()))
        return x.flip(-1)


@pytest.mark.parametrize("params", [{}, {"generative": False}, {"joint": False},
                                    {"gen_weight": 0.0}])
def test_train_transform_applies_to_the_real_images_of_every_path(data, params):
    X, y, X_test, _ = data
    transform = _CountingTransform()
    clf = _bgadl(max_epochs=2, train_transform=transform, **params).fit(X, y)
    # each real image once per epoch: never the generated ones, never scoring
    assert transform.n == 2 * N
    clf.predict_proba(X_test)
    assert transform.n == 2 * N
    plain = _bgadl(max_epochs=2, **params).fit(X, y)
    assert not _same_weights(clf.module_, plain.module_)


@pytest.mark.parametrize("params", [{}, {"generative": False}])
def test_train_transform_follows_augment(data, params):
    X, y, _, _ = data
    transform = _CountingTransform()
    _bgadl(train_transform=transform, augment=lambda x: x + 100.0, **params).fit(X, y)
    assert transform.n == N and transform.max_seen >= 100.0  # it saw the augmented images


def test_train_transform_that_changes_the_shape_is_refused(data):
    X, y, _, _ = data
    with pytest.raises(ValueError, match=r"The 'train_transform' parameter of BGADLClassifier "
                                         r"changed the shape of a training batch"):
        _bgadl(train_transform=lambda x: x[:, :4, :4]).fit(X, y)
