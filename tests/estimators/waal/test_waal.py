"""Tests of WAALClassifier (skal.estimators.waal._classifier) and the waal_uncertainty_diversity strategy (tiny, CPU)."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

import skal
from skal import ActiveLearner, WAALClassifier, waal_uncertainty_diversity
from skal.exceptions import DivergenceError
from skal.losses import waal_query_score
from skal.nets import LeNetFeatures, VGG16BNFeatures
from skal.query import entropy_sampling
from skal.nets.waal import MLPFeatures, ResNet18Features

TINY = dict(max_epochs=2, batch_size=8, random_state=0)


@pytest.fixture(scope="module")
def images():
    """48 random 1x28x28 images: 24 labelled (3 classes) then 24 unlabelled (y = -1)."""
    rng = np.random.default_rng(0)
    X = rng.random((48, 1, 28, 28), dtype=np.float32)
    y = np.concatenate([np.arange(24) % 3, -np.ones(24, dtype=int)])
    return X, y


@pytest.fixture(scope="module")
def fitted(images):
    X, y = images
    return WAALClassifier(**TINY).fit(X, y)


# ------------------------------------------------------------------ fitting and prediction
def test_fit_predict_shapes(images, fitted):
    X, y = images
    assert isinstance(fitted.module_.features, LeNetFeatures)  # chosen from the 1x28x28 shape
    assert list(fitted.classes_) == [0, 1, 2]  # the marker is not a class
    proba = fitted.predict_proba(X[:5])
    assert proba.shape == (5, 3) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)  # softmax, not logits
    assert set(fitted.predict(X)) <= {0, 1, 2}
    g = fitted.critic_score(X)
    assert g.shape == (48,) and np.all((g > 0) & (g < 1))
    assert (fitted.n_labeled_, fitted.n_unlabeled_) == (24, 24)
    assert fitted.sample_proba(X[:4], n_samples=3).shape == (3, 4, 3)
    for key in ("ce_loss", "critic_loss", "wasserstein", "gradient_penalty", "lr"):
        assert key in fitted.history[-1]
    # an epoch is one pass over the 24 unlabelled rows in batches of 8
    assert fitted.history[-1]["train_batch_count"] == 3


def test_marker_and_X_unlabeled_are_equivalent(images, fitted):
    X, y = images
    other = WAALClassifier(**TINY).fit(X[:24], y[:24], X_unlabeled=X[24:])
    np.testing.assert_array_equal(other.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(other.critic_score(X), fitted.critic_score(X))


def test_string_labels_and_object_marker(images):
    X, _ = images
    y = np.array(["cat", "dog"] * 10 + [-1] * 28, dtype=object)
    clf = WAALClassifier(**TINY).fit(X, y)
    assert list(clf.classes_) == ["cat", "dog"]
    assert set(clf.predict(X)) <= {"cat", "dog"}
    assert clf.n_unlabeled_ == 28


def test_custom_marker_lets_minus_one_be_a_class(images):
    X, _ = images
    y = np.array([-1, 1] * 12 + [99] * 24)
    clf = WAALClassifier(unlabeled_marker=99, **TINY).fit(X, y)
    assert list(clf.classes_) == [-1, 1] and clf.n_unlabeled_ == 24
    y_none = np.array([-1, 1] * 24)
    with pytest.warns(UserWarning, match="no unlabelled data"):
        clf = WAALClassifier(unlabeled_marker=None, **TINY).fit(X, y_none)
    assert list(clf.classes_) == [-1, 1]


def test_reproducible_with_random_state(images, fitted):
    X, y = images
    again = WAALClassifier(**TINY).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(again.critic_score(X), fitted.critic_score(X))
    other = WAALClassifier(**{**TINY, "random_state": 1}).fit(X, y)
    assert not np.allclose(other.predict_proba(X), fitted.predict_proba(X))


def test_fit_restarts_from_scratch(images, fitted):
    X, y = images
    clf = WAALClassifier(**TINY).fit(X, y)
    clf.fit(X, y)  # a second fit retrains from scratch with the same seed
    np.testing.assert_array_equal(clf.predict_proba(X), fitted.predict_proba(X))


def test_partial_fit_continues(images):
    X, y = images
    clf = WAALClassifier(**{**TINY, "max_epochs": 1}).fit(X, y)
    clf.partial_fit(X, y)
    assert len(clf.history) == 2


def test_labelled_only_fits_as_plain_classifier_with_warning(images):
    X, y = images
    with pytest.warns(UserWarning, match="no unlabelled data"):
        clf = WAALClassifier(**TINY).fit(X[:24], y[:24])
    assert clf.adv_weight_ == 0 and clf.n_unlabeled_ == 0
    assert clf.history[-1]["train_batch_count"] == 3  # one shuffled pass over 24 labelled rows
    assert "critic_loss" not in clf.history[-1]
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1, atol=1e-5)


def test_empty_X_unlabeled_counts_as_none(images):
    X, y = images
    with pytest.warns(UserWarning, match="no unlabelled data"):
        clf = WAALClassifier(**TINY).fit(X[:24], y[:24], X_unlabeled=X[:0])
    assert clf.n_unlabeled_ == 0


# ------------------------------------------------------------------ the WAAL objective
def test_adversarial_weights_paper_and_code(images):
    X, y = images
    L, U = 24, 24
    clf = WAALClassifier(query_size=6, max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    gamma, alpha = U / L, 6 / L
    assert clf.coef_ == pytest.approx((gamma - alpha) / (gamma**2 * (1 + alpha)))
    assert clf.adv_weight_ == pytest.approx(1e-2 * U / (L + U))  # mu' = mu gamma / (1 + gamma)
    code = WAALClassifier(coef="ratio", mu=2e-3, max_epochs=1, batch_size=8).fit(X, y)
    assert code.coef_ == pytest.approx(L / U) and code.adv_weight_ == pytest.approx(2e-3)
    fixed = WAALClassifier(coef=0.3, max_epochs=1, batch_size=8).fit(X, y)
    assert fixed.coef_ == 0.3


def test_default_query_size_is_min_of_labelled_and_unlabelled(images):
    X, y = images
    y = y.copy()
    y[24:40] = np.arange(16) % 3  # L = 40, U = 8
    clf = WAALClassifier(max_epochs=1, batch_size=8).fit(X, y)
    assert clf.coef_ == 0  # B = min(L, U) = U: no labelled term left, never negative


def test_critic_and_classifier_have_separate_optimizers(fitted):
    main = {id(p) for g in fitted.optimizer_.param_groups for p in g["params"]}
    critic = {id(p) for g in fitted.critic_optimizer_.param_groups for p in g["params"]}
    assert main == {id(p) for p in fitted.module_.parameters()}
    assert critic == {id(p) for p in fitted.critic_.parameters()}
    assert fitted.optimizer_.param_groups[0]["momentum"] == 0.5
    assert fitted.critic_optimizer_.param_groups[0]["momentum"] == 0.5


def test_critic_learns_to_score_unlabelled_higher():
    # unlabelled rows are bright, labelled ones dark. With the feature extractor frozen (lr 0;
    # otherwise it learns to fool the critic), the critic's ascent on W must score them apart.
    rng = np.random.default_rng(0)
    X_l = rng.random((32, 20), dtype=np.float32) * 0.2
    X_u = 0.8 + rng.random((32, 20), dtype=np.float32) * 0.2
    y = np.arange(32) % 2
    clf = WAALClassifier(mu=10.0, max_epochs=10, batch_size=16, optimizer__lr=0.0,
                         critic_optimizer__lr=0.05, lr_milestones=None, random_state=0)
    before = clf.set_params(max_epochs=1, critic_optimizer__lr=0.0).fit(X_l, y, X_unlabeled=X_u)
    gap_before = before.critic_score(X_u).mean() - before.critic_score(X_l).mean()
    clf.set_params(max_epochs=10, critic_optimizer__lr=0.05).fit(X_l, y, X_unlabeled=X_u)
    gap_after = clf.critic_score(X_u).mean() - clf.critic_score(X_l).mean()
    assert gap_after > gap_before + 0.2
    assert clf.history[-1]["wasserstein"] > clf.history[0]["wasserstein"]


@pytest.mark.parametrize("max_epochs, expected", [
    (4, [1e-2, 1e-2, 1e-3, 1e-4]),
    (8, [1e-2] * 4 + [1e-3] * 2 + [1e-4] * 2),
    (1, [1e-2]),
])
def test_lr_decay_at_half_and_three_quarters(images, max_epochs, expected):
    X, y = images
    clf = WAALClassifier(max_epochs=max_epochs, batch_size=16, random_state=0).fit(X, y)
    np.testing.assert_allclose(clf.history[:, "lr"], expected)
    for opt in (clf.optimizer_, clf.critic_optimizer_):
        assert opt.param_groups[0]["lr"] == pytest.approx(expected[-1])
    clf.fit(X, y)  # refitting restarts the schedule from lr
    np.testing.assert_allclose(clf.history[:, "lr"], expected)


def test_constant_lr_and_critic_lr(images):
    X, y = images
    clf = WAALClassifier(lr_milestones=None, max_epochs=3, batch_size=16,
                         critic_optimizer__lr=0.5).fit(X, y)
    np.testing.assert_allclose(clf.history[:, "lr"], [1e-2] * 3)
    assert clf.critic_optimizer_.param_groups[0]["lr"] == 0.5


def test_train_split_and_early_stopping(images):
    from skorch.callbacks import EarlyStopping
    from skorch.dataset import ValidSplit

    X, y = images
    clf = WAALClassifier(max_epochs=3, batch_size=8, random_state=0,
                         train_split=ValidSplit(3, stratified=True),
                         callbacks=[EarlyStopping(patience=1)]).fit(X, y)
    assert all(np.isfinite(clf.history[:, "valid_loss"]))
    assert 0 <= clf.history[-1]["valid_acc"] <= 1


def test_cyclic_labelled_sampling_covers_the_labelled_set(images):
    X, y = images
    clf = WAALClassifier(labeled_sampling="cyclic", **TINY).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1, atol=1e-5)


def test_epoch_over_sets_the_steps_per_epoch(images):
    X, y = images
    X_u = np.concatenate([X[24:]] * 3)  # 72 unlabelled rows against 24 labelled
    steps = {}
    for epoch_over in ("unlabeled", "labeled"):
        clf = WAALClassifier(epoch_over=epoch_over, **TINY).fit(X[:24], y[:24], X_unlabeled=X_u)
        steps[epoch_over] = [row["train_batch_count"] for row in clf.history]
    assert steps == {"unlabeled": [9, 9], "labeled": [3, 3]}  # ceil(72 / 8), ceil(24 / 8)


def test_epoch_over_labeled_passes_each_labelled_sample_once():
    from skal.estimators.waal._training import PairedBatches

    X_l = torch.arange(10.0)[:, None]  # row i holds the value i
    X_u = 100 + torch.arange(40.0)[:, None]
    batches = list(PairedBatches(X_l, torch.arange(10), X_u, 4, "replacement", "labeled"))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    seen = torch.cat([b[0] for b in batches]).flatten()
    assert sorted(seen.tolist()) == list(range(10))
    for x_l, y_l, x_u in batches:
        assert torch.equal(x_l.flatten().long(), y_l)  # labels stay with their rows
        assert len(x_u) == len(x_l) and bool(((x_u >= 100) & (x_u < 140)).all())


# ------------------------------------------------------------------ parameters, clone, pickle
def test_critic_params_get_set_clone(images):
    X, y = images
    clf = WAALClassifier(critic__hidden=7, critic_optimizer__momentum=0.9, **TINY)
    params = clf.get_params()
    assert params["critic__hidden"] == 7 and params["critic_optimizer__momentum"] == 0.9
    assert "module" not in params
    cloned = clone(clf)
    assert cloned.get_params()["critic__hidden"] == 7
    cloned.set_params(critic_optimizer__lr=0.3)
    cloned.fit(X, y)
    assert cloned.critic_.hidden.out_features == 7
    assert cloned.module_.head.hidden.out_features == 50
    assert cloned.critic_optimizer_.param_groups[0]["momentum"] == 0.9
    # decayed once (x0.1) in epoch 2 of 2
    assert cloned.critic_optimizer_.param_groups[0]["lr"] == pytest.approx(0.3 * 0.1)
    cloned.set_params(critic__hidden=5)  # a fitted net re-initialises its critic
    assert cloned.critic_.hidden.out_features == 5
    cloned.set_params(critic_optimizer__lr=0.2)
    assert clone(cloned).get_params()["critic_optimizer__lr"] == 0.2
    with pytest.raises(ValueError, match="critic_lr"):
        WAALClassifier(critic_lr=0.1, **TINY).fit(X, y)


def test_pickle_roundtrip(images, fitted):
    X, _ = images
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(restored.critic_score(X), fitted.critic_score(X))
    assert restored._train_data is None  # the unlabelled pool is not kept after fit


@pytest.mark.parametrize("features, expected", [
    (None, MLPFeatures),
    ("mlp", MLPFeatures),
    ("resnet18", ResNet18Features),
])
def test_feature_extractor_choices_small_images(features, expected):
    rng = np.random.default_rng(0)
    X = rng.random((16, 1, 8, 8), dtype=np.float32)
    y = np.array([0, 1] * 4 + [-1] * 8)
    clf = WAALClassifier(features=features, **TINY).fit(X, y)
    assert isinstance(clf.module_.features, expected)
    assert clf.predict_proba(X).shape == (16, 2)


def test_feature_extractor_from_shape_class_and_instance(images):
    from skal.nets.waal import make_features

    assert isinstance(make_features(None, (3, 32, 32)), VGG16BNFeatures)
    assert isinstance(make_features(None, (1, 28, 28)), LeNetFeatures)
    assert isinstance(make_features(None, (3, 28, 28)), LeNetFeatures)
    assert isinstance(make_features(None, (64,)), MLPFeatures)
    X, y = images
    by_class = WAALClassifier(features=LeNetFeatures, **TINY).fit(X, y)
    assert by_class.module_.features.out_features == 320
    instance = nn.Sequential(nn.Flatten(), nn.Linear(784, 12), nn.ReLU())
    before = instance[1].weight.detach().clone()
    clf = WAALClassifier(features=instance, **TINY).fit(X, y)
    assert clf.module_.head.in_features == 12  # measured from the instance's output
    assert clf.module_.features is not instance  # copied: the instance itself is untouched
    torch.testing.assert_close(instance[1].weight, before)
    assert clone(clf).get_params()["features"] is not None


def test_flat_input_with_image_shape(images):
    X, y = images
    clf = WAALClassifier(image_shape=(1, 28, 28), **TINY).fit(X.reshape(48, -1), y)
    assert isinstance(clf.module_.features, LeNetFeatures)
    assert clf.predict_proba(X.reshape(48, -1)[:3]).shape == (3, 3)


# ------------------------------------------------------------------ bad input
def test_all_unlabelled_raises(images):
    X, _ = images
    with pytest.raises(ValueError, match="no labelled sample"):
        WAALClassifier(**TINY).fit(X, -np.ones(48, dtype=int))


def test_marker_collisions_raise(images):
    X, y = images
    with pytest.raises(ValueError, match="marker -1 appears in y although X_unlabeled"):
        WAALClassifier(**TINY).fit(X, y, X_unlabeled=X[:5])
    with pytest.raises(ValueError, match="marker -1 is one of the classes"):
        WAALClassifier(classes=[-1, 0, 1, 2], **TINY).fit(X, y)


def test_X_unlabeled_with_another_shape_raises(images):
    X, y = images
    with pytest.raises(ValueError, match="X_unlabeled must have the same per-sample shape"):
        WAALClassifier(**TINY).fit(X[:24], y[:24], X_unlabeled=np.zeros((5, 1, 32, 32)))
    with pytest.raises(ValueError, match="X_unlabeled must have the same per-sample shape"):
        WAALClassifier(**TINY).fit(X[:24], y[:24], X_unlabeled=np.zeros((5, 3, 28, 28)))


@pytest.mark.parametrize("param, value, match", [
    ("kind", "l2", "'kind' parameter"),
    ("uncertainty", "paper", "'uncertainty' parameter"),
    ("coef", "auto", "'coef' parameter"),
    ("mixture", 1.5, "'mixture' parameter"),
    ("labeled_sampling", "random", "'labeled_sampling' parameter"),
    ("epoch_over", "pool", "'epoch_over' parameter"),
    ("lr_milestones", (0.5, 2.0), "'lr_milestones' parameter"),
    ("query_size", 0, "'query_size' parameter"),
    ("features", "vgg11", "'features' parameter"),
    ("mu", -1.0, "'mu' parameter"),
])
def test_bad_parameters_raise(images, param, value, match):
    X, y = images
    with pytest.raises(ValueError, match=match):
        WAALClassifier(**{**TINY, param: value}).fit(X, y)


def test_diverging_critic_raises_during_training(images, monkeypatch):
    X, y = images
    original = WAALClassifier.initialize_module

    def nan_critic(self):
        original(self)
        with torch.no_grad():
            self.critic_.output.weight.fill_(float("nan"))
        return self

    monkeypatch.setattr(WAALClassifier, "initialize_module", nan_critic)
    with pytest.raises(DivergenceError, match="WAALClassifier training diverged: the .* is nan"
                       r".*Lower lr \(now 0.01\) or mu \(now 0.01\)"):
        WAALClassifier(**TINY).fit(X, y)


def test_nan_critic_raises_at_query_time(images):
    X, y = images
    clf = WAALClassifier(**TINY).fit(X, y)
    with torch.no_grad():
        clf.critic_.output.bias.fill_(float("nan"))
    with pytest.raises(DivergenceError, match="critic score g\\(x\\) of WAALClassifier is not"):
        clf.critic_score(X)
    with pytest.raises(FloatingPointError, match="training diverged"):  # a FloatingPointError
        waal_uncertainty_diversity(clf, X, 3)


def test_unfitted_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        WAALClassifier().critic_score(np.zeros((2, 1, 28, 28)))
    with pytest.raises(NotFittedError):
        waal_uncertainty_diversity(WAALClassifier(), np.zeros((2, 1, 28, 28)))


# ------------------------------------------------------------------ the query strategy
def test_strategy_picks_smallest_scores(monkeypatch, fitted, images):
    X, _ = images
    hand_made = np.array([3.0, 1.0, 2.0, 0.5, 4.0], dtype=np.float32)
    monkeypatch.setattr(fitted, "waal_score", lambda X, **kw: hand_made[: len(X)])
    idx, scores = waal_uncertainty_diversity(fitted, X[:5], n_instances=2)
    np.testing.assert_array_equal(idx, [3, 1])  # smallest first
    np.testing.assert_array_equal(scores, [0.5, 1.0])


def test_strategy_scores_match_the_formula(fitted, images):
    X, _ = images
    net, critic = fitted.module_.eval(), fitted.critic_.eval()
    with torch.no_grad():
        z = net.features(torch.as_tensor(X))
        log_proba = torch.log_softmax(net.head(z), dim=1)
        g = critic(z)
    for kw in ({}, {"selection": 0.0},
               {"selection": 100.0, "uncertainty": "l2_l1", "mixture": 0.2}):
        expected = waal_query_score(log_proba, g, kw.get("selection", 5.0),
                                    kw.get("mixture", 0.5), kw.get("uncertainty", "linf_l1")).numpy()
        np.testing.assert_allclose(fitted.waal_score(X, **kw), expected, rtol=1e-5)
        idx, scores = waal_uncertainty_diversity(fitted, X, 4, **kw)
        np.testing.assert_array_equal(idx, np.argsort(expected, kind="stable")[:4])
        np.testing.assert_allclose(scores, expected[idx], rtol=1e-5)
    # with a huge selection weight the critic decides: the highest g(x) comes first
    idx, _ = waal_uncertainty_diversity(fitted, X, 1, selection=1e6)
    assert idx[0] == int(np.argmax(g.numpy()))


def test_strategy_one_forward_pass_in_eval_mode(images):
    X, y = images
    clf = WAALClassifier(max_epochs=1, batch_size=10, random_state=0).fit(X, y)
    calls = {"features": 0, "head": 0, "critic": 0, "training": []}

    def hook(name):
        def count(module, inputs, output):
            calls[name] += 1
            calls["training"].append(module.training)
        return count

    handles = [clf.module_.features.register_forward_hook(hook("features")),
               clf.module_.head.register_forward_hook(hook("head")),
               clf.critic_.register_forward_hook(hook("critic"))]
    try:
        idx, _ = waal_uncertainty_diversity(clf, X, 5)
    finally:
        for h in handles:
            h.remove()
    n_batches = 5  # 48 rows in batches of 10
    assert calls["features"] == calls["head"] == calls["critic"] == n_batches
    assert not any(calls["training"])  # eval mode: dropout off
    again, _ = waal_uncertainty_diversity(clf, X, 5)
    np.testing.assert_array_equal(idx, again)  # deterministic


def test_strategy_rejects_other_estimators(tiny_resnet, digits_small):
    X, _ = digits_small
    with pytest.raises(TypeError, match="needs a fitted skal.WAALClassifier"):
        waal_uncertainty_diversity(tiny_resnet, X[:10])


def test_strategy_with_entropy_on_the_same_model(fitted, images):
    X, _ = images
    idx, scores = entropy_sampling(fitted, X, 3)  # predict_proba gives probabilities
    assert len(idx) == 3 and np.all(scores >= 0)


def test_exported_at_top_level():
    assert skal.WAALClassifier is WAALClassifier
    assert skal.waal_uncertainty_diversity is waal_uncertainty_diversity
    assert "WAALClassifier" in skal.__all__ and "waal_uncertainty_diversity" in skal.__all__


# ------------------------------------------------------------------ active learning loops
def test_active_learner_passes_the_remaining_pool(images, monkeypatch):
    X, y = images
    X_pool, y_pool = X[24:], np.arange(24) % 3
    seen = []
    original = WAALClassifier.fit

    def spy(self, X, y, X_unlabeled=None, **kw):
        seen.append(None if X_unlabeled is None else len(X_unlabeled))
        return original(self, X, y, X_unlabeled=X_unlabeled, **kw)

    monkeypatch.setattr(WAALClassifier, "fit", spy)
    learner = ActiveLearner(WAALClassifier(**TINY), query_strategy=waal_uncertainty_diversity,
                            X_training=X[:24], y_training=y[:24], X_unlabeled=X_pool)
    idx, X_query = learner.query(X_pool, n_instances=4)
    assert len(np.unique(idx)) == 4
    learner.teach(X_query, y_pool[idx])
    assert seen == [24, 20]  # the whole pool first, then the pool minus the taught rows
    assert learner.estimator.n_labeled_ == 28 and learner.estimator.n_unlabeled_ == 20


def test_experiment_runner_has_waal(tmp_path):
    from skal.experiment import METHODS, ExperimentConfig, run_experiment

    assert METHODS["waal"].pass_unlabeled
    config = ExperimentConfig(dataset="digits", method="waal", n_initial=20, query_size=10,
                              n_rounds=1, repeats=1, pool_size=80, test_size=40, max_epochs=1)
    result = run_experiment(config, tmp_path / "waal", progress=False)
    assert [row["n_labeled"] for row in result.rows] == [20, 30]


# ------------------------------------------------------------------ scikit-learn's checks
def _expected_failed_checks(estimator):
    return {
        "check_classifiers_classes": (
            "the check fits labels {-1, 1}; -1 is WAALClassifier's unlabelled marker "
            "(scikit-learn's semi-supervised convention), so one class is left (pass "
            "unlabeled_marker=None when -1 is a class)"
        ),
        "check_methods_sample_order_invariance": (
            "float32 matrix products differ in the last bit with a row's position in the batch "
            "(MKL blocking): predict_proba agrees to ~1e-7 relative, the check asks for rtol 1e-7"
        ),
    }


# flat tabular rows go to the MLP feature extractor chosen for non-image input; lr=0.01 because
# some checks fit unscaled X ~ N(100, 1), on which lr=0.1 diverges (mean loss 6,786 at epoch 3 of
# check_n_features_in), and the divergence check now says so instead of fitting a broken net
@parametrize_with_checks(
    [WAALClassifier(max_epochs=3, lr=0.01, random_state=0)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*got no unlabelled data.*")
        check(estimator)


# ------------------------------------------------------------------ issue 10: order, modes, RNG
def test_paired_batches_shuffle_fold_and_honour_shuffle_false():
    from skal.estimators.waal._training import PairedBatches

    X_l = torch.arange(9.0)[:, None]
    X_u = 100 + torch.arange(9.0)[:, None]
    torch.manual_seed(0)  # PairedBatches draws from torch's default generator (fit seeds it)
    epochs = [list(PairedBatches(X_l, torch.arange(9), X_u, 4, "cyclic")) for _ in range(2)]
    orders = [torch.cat([b[2] for b in batches]).flatten().tolist() for batches in epochs]
    assert [len(b[0]) for b in epochs[0]] == [4, 5]  # 9 = 4 + 5: no batch of one
    assert sorted(orders[0]) == sorted(orders[1]) == [100.0 + i for i in range(9)]
    assert orders[0] != orders[1]  # a fresh permutation every epoch
    fixed = list(PairedBatches(X_l, torch.arange(9), X_u, 4, "cyclic", shuffle=False))
    assert torch.cat([b[2] for b in fixed]).flatten().tolist() == [100.0 + i for i in range(9)]
    assert len(PairedBatches(X_l, torch.arange(9), X_u, 4, "cyclic")) == 2


def test_iterator_train_shuffle_false_reaches_the_paired_batches(images):
    from skorch.callbacks import Callback

    class RecordUnlabelled(Callback):
        def on_train_begin(self, net, **kwargs):
            self.rows = []

        def on_batch_begin(self, net, batch=None, training=None, **kwargs):
            if training:
                self.rows.append(np.asarray(batch[2]))

    X, y = images
    for shuffle in (True, False):
        record = RecordUnlabelled()
        WAALClassifier(iterator_train__shuffle=shuffle, callbacks=[record], **TINY).fit(X, y)
        epoch = np.concatenate(record.rows[:3])  # 24 unlabelled rows in 3 batches of 8
        assert np.array_equal(epoch, X[24:]) is (not shuffle)


@pytest.mark.parametrize("n_labeled, n_unlabeled, n_batches", [(8, 9, 1), (8, 17, 2), (17, 5, 2)])
def test_waal_trains_when_a_last_batch_would_hold_one_sample(n_labeled, n_unlabeled, n_batches):
    # ResNet18's BatchNorm cannot train on one sample; an epoch of 9 or 17 rows in batches of 8
    # used to end with one
    rng = np.random.default_rng(0)
    X_l = rng.random((n_labeled, 1, 8, 8), dtype=np.float32)
    X_u = rng.random((n_unlabeled, 1, 8, 8), dtype=np.float32)
    clf = WAALClassifier(features="resnet18", **TINY)
    clf.fit(X_l, np.arange(n_labeled) % 2, X_unlabeled=X_u)
    assert clf.history[-1]["train_batch_count"] == n_batches


def test_networks_are_in_eval_mode_after_fit(fitted, images):
    X, _ = images
    for net in (fitted.module_, fitted.critic_):
        assert not any(m.training for m in net.modules())
    clf = WAALClassifier(**TINY).fit(*images)
    clf.critic_score(X)
    assert not clf.critic_.training and not clf.module_.training


def test_waal_leaves_the_global_torch_rng_untouched(fitted, images):
    X, y = images
    state = torch.get_rng_state()
    fitted.predict_proba(X)
    fitted.critic_score(X)
    waal_uncertainty_diversity(fitted, X, 3)
    WAALClassifier(**{**TINY, "max_epochs": 1}).fit(X, y)
    assert torch.equal(torch.get_rng_state(), state)


def test_channels_last_unlabelled_images(images, fitted):
    X, y = images
    last = X.transpose(0, 2, 3, 1)  # (n, 28, 28, 1)
    clf = WAALClassifier(**TINY).fit(X[:24], y[:24], X_unlabeled=last[24:])
    np.testing.assert_array_equal(clf.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_allclose(fitted.predict_proba(last), fitted.predict_proba(X), atol=1e-6)


def test_exploding_training_raises_divergence_error(images):
    # lr=1e3: the mean loss of the first epoch is ~1e19, finite, so a NaN check alone missed it
    X, y = images
    with pytest.raises(DivergenceError, match=r"WAALClassifier training diverged: the mean "
                       r"training loss of epoch 1 is .*Lower lr \(now 1000.0\) or mu"):
        WAALClassifier(lr=1e3, **{**TINY, "max_epochs": 1}).fit(X, y)


def test_waal_validation_callback_needs_a_train_split(images):
    from skorch.callbacks import EarlyStopping

    with pytest.raises(ValueError, match="monitors 'valid_loss', but WAALClassifier has no"):
        WAALClassifier(callbacks=[EarlyStopping()], **TINY).fit(*images)


# ------------------------------------------------------------------ issue 15: the house
def test_lr_schedule_is_a_callback_and_leaves_param_groups_alone(images):
    from skal.callbacks import MilestoneLR

    X, y = images
    clf = WAALClassifier(**{**TINY, "max_epochs": 4}).fit(X, y)
    schedule = dict(clf.callbacks_)["lr_schedule"]
    assert isinstance(schedule, MilestoneLR)
    assert schedule.optimizers == ("optimizer", "critic_optimizer")
    for opt in (clf.optimizer_, clf.critic_optimizer_):
        assert not {"initial_lr", "scheduled_lr"} & set(opt.param_groups[0])
    # the net's lr_milestones / lr_decay drive it, also when set after a fit
    clf.set_params(lr_milestones=(0.25,), lr_decay=0.5).partial_fit(X, y)
    np.testing.assert_allclose(clf.history[-4:, "lr"], [1e-2, 5e-3, 5e-3, 5e-3])
    off = WAALClassifier(callbacks__lr_schedule=None, **{**TINY, "max_epochs": 4}).fit(X, y)
    assert off.optimizer_.param_groups[0]["lr"] == 1e-2 and "lr" not in off.history[-1]


def test_authors_code_preset(images):
    from skal.estimators.waal import AUTHORS_CODE

    X, y = images
    clf = WAALClassifier.authors_code(selection=7.0, **TINY)
    params = clf.get_params()
    assert {k: params[k] for k in AUTHORS_CODE} == {**AUTHORS_CODE, "selection": 7.0}
    assert AUTHORS_CODE == {
        "coef": "ratio", "mu": 2e-3, "gp_weight": -2.0, "gp_endpoints": True,
        "labeled_sampling": "cyclic", "lr_milestones": None, "selection": 10.0,
        "uncertainty": "l2_l1",
    }
    clf.fit(X, y)
    assert clf.coef_ == pytest.approx(24 / 24) and clf.adv_weight_ == pytest.approx(2e-3)
    np.testing.assert_allclose(clf.history[:, "lr"], [1e-2, 1e-2])  # constant
    explicit = WAALClassifier(**{**AUTHORS_CODE, "selection": 7.0}, **TINY).fit(X, y)
    np.testing.assert_array_equal(explicit.waal_score(X), clf.waal_score(X))
    assert type(clone(clf)) is WAALClassifier


def test_old_option_names_warn_and_mean_the_same(images, fitted):
    X, y = images
    with pytest.warns(DeprecationWarning, match="'kind' parameter of WAALClassifier is "
                      "deprecated: use uncertainty='l2_l1'"):
        old = WAALClassifier(kind="code", **TINY).fit(X, y)
    np.testing.assert_array_equal(old.waal_score(X), fitted.waal_score(X, uncertainty="l2_l1"))
    with pytest.warns(DeprecationWarning, match="The value 'code' of the 'coef' parameter"):
        old = WAALClassifier(coef="code", **TINY).fit(X, y)
    assert old.coef_ == WAALClassifier(coef="ratio", **TINY).fit(X, y).coef_ == 1.0
    with pytest.warns(DeprecationWarning, match="'paper' of the 'coef' parameter"):
        assert WAALClassifier(coef="paper", **TINY).fit(X, y).coef_ == fitted.coef_
    with pytest.warns(DeprecationWarning, match="'kind' parameter of waal_score"):
        np.testing.assert_array_equal(fitted.waal_score(X, kind="code"),
                                      fitted.waal_score(X, uncertainty="l2_l1"))
    with pytest.warns(DeprecationWarning, match="'kind' parameter of waal_uncertainty_diversity"):
        idx, _ = waal_uncertainty_diversity(fitted, X, 4, kind="code")
    np.testing.assert_array_equal(idx, waal_uncertainty_diversity(fitted, X, 4,
                                                                  uncertainty="l2_l1")[0])


def test_waal_trains_through_the_base_classifier_hooks(images, monkeypatch):
    # WAAL's fit goes through MCDropoutClassifier._fit / _train, not around them
    from skal.estimators import MCDropoutClassifier

    X, y = images
    calls = []
    original = MCDropoutClassifier._train

    def spy(self, X, y, fit_params, **context):
        calls.append((type(self).__name__, len(X)))
        return original(self, X, y, fit_params, **context)

    monkeypatch.setattr(MCDropoutClassifier, "_train", spy)
    clf = WAALClassifier(**{**TINY, "max_epochs": 1}).fit(X, y)
    clf.partial_fit(X, y)
    assert calls == [("WAALClassifier", 24)] * 2
