"""MCDropoutClassifier / ResNet18Classifier: scikit-learn contract, layouts, MC dropout, skorch."""

import pickle

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, Checkpoint, EarlyStopping, ProgressBar
from skorch.dataset import ValidSplit
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

from skal import MCDropoutClassifier, ResNet18Classifier
from skal.nets import PreActResNet18, ResNet18


def _mlp(in_features, n_classes):
    return nn.Sequential(
        nn.Linear(in_features, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, n_classes)
    )


# ------------------------------------------------------------------ scikit-learn's common checks
def _expected_failed_checks(estimator):
    return {}  # every check passes; keep a reason here for any check that cannot apply


def _check_estimators():
    # image_shape=(1, 1, -1): the checks' flat tabular rows become one-row images of any width
    yield ResNet18Classifier(
        width=2, max_epochs=3, batch_size=32, image_shape=(1, 1, -1), random_state=0
    )
    yield ResNet18Classifier(
        preact=True, width=2, max_epochs=3, batch_size=32, image_shape=(1, 1, -1), random_state=0
    )
    yield MCDropoutClassifier(_mlp, max_epochs=3, lr=0.1, random_state=0)


@parametrize_with_checks(list(_check_estimators()), expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ------------------------------------------------------------------ networks
@pytest.mark.parametrize("net", [ResNet18, PreActResNet18])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_nets_any_size_and_channels(net, shape):
    module = net(in_channels=shape[0], n_classes=7, width=4).eval()
    x = torch.zeros(2, *shape)
    assert module.features(x).shape == (2, 32)
    assert module(x).shape == (2, 7)
    assert not any(isinstance(m, nn.Dropout) for m in module.modules() if m is not module.dropout)


def test_standard_width_has_resnet18_size():
    n_params = sum(p.numel() for p in ResNet18(in_channels=3, n_classes=10).parameters())
    assert 11.1e6 < n_params < 11.2e6  # the CIFAR ResNet18 has 11.17M parameters


# ------------------------------------------------------------------ layouts and labels
def test_image_layouts_agree(digits_small):
    X, y = digits_small
    X, y = X[:80], y[:80]
    kw = dict(width=2, max_epochs=1, random_state=0)
    ref = ResNet18Classifier(**kw).fit(X, y).predict_proba(X)
    as_3d = ResNet18Classifier(**kw).fit(X[:, 0], y).predict_proba(X[:, 0])
    flat = ResNet18Classifier(image_shape=(1, 8, 8), **kw).fit(X.reshape(80, -1), y)
    np.testing.assert_allclose(ref, as_3d, atol=1e-6)
    np.testing.assert_allclose(ref, flat.predict_proba(X.reshape(80, -1)), atol=1e-6)
    assert flat.n_features_in_ == 64 and flat.input_shape_ == (1, 8, 8)
    # float64 and uint8 input are accepted (uint8 is scaled to [0, 1])
    X64 = ResNet18Classifier(**kw).fit(X.astype(np.float64), y).predict_proba(X)
    np.testing.assert_allclose(ref, X64, atol=1e-6)
    X8 = np.round(X * 255).astype(np.uint8)
    np.testing.assert_allclose(
        ResNet18Classifier(**kw).fit(X8, y).predict_proba(X8), ref, atol=2e-2
    )


def test_string_labels_and_classes_(digits_small):
    X, y = digits_small
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"], dtype=object)
    clf = ResNet18Classifier(width=2, max_epochs=1, random_state=0).fit(X[:60], names[y[:60]])
    assert set(clf.predict(X[:20])) <= set(names)
    assert clf.classes_.tolist() == sorted(names.tolist())
    assert clf.predict_proba(X[:5]).shape == (5, 10)


def test_fit_is_reproducible_and_leaves_global_rng_alone(digits_small):
    X, y = digits_small
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = ResNet18Classifier(width=2, max_epochs=2, random_state=7).fit(X[:60], y[:60])
    assert torch.equal(before, torch.get_rng_state())
    b = ResNet18Classifier(width=2, max_epochs=2, random_state=7).fit(X[:60], y[:60])
    np.testing.assert_array_equal(a.predict_proba(X[:30]), b.predict_proba(X[:30]))
    c = ResNet18Classifier(width=2, max_epochs=2, random_state=8).fit(X[:60], y[:60])
    assert not np.allclose(a.predict_proba(X[:30]), c.predict_proba(X[:30]))


def test_partial_fit_continues_training(digits_small):
    X, y = digits_small
    clf = ResNet18Classifier(width=2, max_epochs=1, random_state=0)
    clf.partial_fit(X[:30], y[:30], classes=np.arange(10))
    clf.partial_fit(X[30:60], y[30:60])
    assert len(clf.history) == 2
    assert clf.classes_.tolist() == list(range(10))


# ------------------------------------------------------------------ MC dropout
def test_sample_proba_shape_and_bn_in_eval(tiny_resnet, digits_small):
    X, _ = digits_small
    bn = tiny_resnet.module_.bn1
    running = bn.running_mean.clone()
    mode = tiny_resnet.module_.training
    samples = tiny_resnet.sample_proba(X[:10], n_samples=6, random_state=0)
    assert samples.shape == (6, 10, 10)
    np.testing.assert_allclose(samples.sum(-1), 1, atol=1e-5)
    assert samples.std(axis=0).max() > 0  # dropout is on
    assert torch.equal(running, bn.running_mean)  # BatchNorm statistics untouched
    assert tiny_resnet.module_.training == mode  # the module's mode is restored
    # predictions are deterministic again afterwards
    np.testing.assert_array_equal(
        tiny_resnet.predict_proba(X[:10]), tiny_resnet.predict_proba(X[:10])
    )


def test_cached_and_uncached_sampling_agree_given_the_same_masks(tiny_resnet, digits_small):
    X, _ = digits_small
    calls = []
    hook = tiny_resnet.module_.conv1.register_forward_hook(lambda *a: calls.append(1))
    try:
        cached = tiny_resnet.sample_proba(X[:70], n_samples=5, random_state=3, cache=True)
        n_cached = len(calls)
        calls.clear()
        uncached = tiny_resnet.sample_proba(X[:70], n_samples=5, random_state=3, cache=False)
    finally:
        hook.remove()
    np.testing.assert_allclose(cached, uncached, atol=1e-6)
    batches = int(np.ceil(70 / tiny_resnet.batch_size))
    assert n_cached == batches + 1  # the trunk runs once per batch (+ a one-sample probe) ...
    assert len(calls) == 5 * batches  # ... instead of once per MC sample


def test_sampling_redoes_a_trunk_with_dropout(digits_small):
    X, y = digits_small

    class DropoutInTrunk(nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Dropout(0.5))
            self.out = nn.Linear(16, 10)

        def features(self, x):
            return self.trunk(x)

        def head(self, z):
            return self.out(z)

        def forward(self, x):
            return self.head(self.features(x))

    clf = MCDropoutClassifier(DropoutInTrunk, max_epochs=1, random_state=0).fit(X[:50], y[:50])
    a = clf.sample_proba(X[:20], n_samples=4, random_state=1, cache=True)
    b = clf.sample_proba(X[:20], n_samples=4, random_state=1, cache=False)
    np.testing.assert_allclose(a, b, atol=1e-6)  # cache falls back to full passes: still exact


def test_sample_proba_errors(tiny_resnet, digits_small):
    X, _ = digits_small
    with pytest.raises(ValueError, match=r"'n_samples' parameter of ResNet18Classifier.sample_proba must be an int in "
                       r"the range \[1, inf\)"):
        tiny_resnet.sample_proba(X[:5], n_samples=0)
    with pytest.raises(NotFittedError):
        ResNet18Classifier(width=2).sample_proba(X[:5])


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "X_bad, match",
    [
        (np.full((5, 1, 8, 8), np.nan, dtype=np.float32), "Input X contains NaN"),
        (np.full((5, 1, 8, 8), np.inf, dtype=np.float32), "Input X contains infinity"),
        (np.zeros((5, 1, 1, 8, 8), dtype=np.float32), "must be 2D .* got a 5D array"),
        (np.zeros((5, 3, 8, 8), dtype=np.float32), r"X has 3 channel\(s\), but .* 1 channel"),
        (np.zeros((5, 1, 9, 9), dtype=np.float32), r"image shape \(1, 9, 9\), but .* \(1, 8, 8\)"),
        (np.zeros((5, 81), dtype=np.float32), r"X has 81 features, but ResNet18Classifier is exp"),
        (np.zeros((5, 64), dtype=np.float32), "ResNet18Classifier takes images"),
        (np.zeros(64, dtype=np.float32), "Expected 2D array, got 1D array"),
    ],
)
def test_predict_bad_input(tiny_resnet, X_bad, match):
    with pytest.raises(ValueError, match=match):
        tiny_resnet.predict(X_bad)


def test_channel_mismatch_same_size(digits_small):
    X, y = digits_small
    clf = ResNet18Classifier(width=2, max_epochs=1, random_state=0).fit(X[:40], y[:40])
    X2 = np.zeros((3, 2, 8, 4), dtype=np.float32)  # same feature count, different layout
    with pytest.raises(ValueError, match=r"X has 2 channel\(s\), but ResNet18Classifier was fitted"):
        clf.predict(X2)


def test_fit_bad_labels(digits_small):
    X, y = digits_small
    clf = ResNet18Classifier(width=2, max_epochs=1)
    with pytest.raises(ValueError, match="inconsistent numbers of samples: \\[20, 19\\]"):
        clf.fit(X[:20], y[:19])
    with pytest.raises(ValueError, match="only one class"):
        clf.fit(X[:20], np.zeros(20))
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(X[:20], np.linspace(0, 1, 20))
    with pytest.raises(ValueError, match="requires y to be passed"):
        clf.fit(X[:20], None)
    with pytest.raises(ValueError, match="image_shape=\\(1, 7, 7\\)"):
        ResNet18Classifier(image_shape=(1, 7, 7)).fit(X[:20].reshape(20, -1), y[:20])
    with pytest.raises(ValueError, match="'image_shape' parameter must be None or a tuple"):
        ResNet18Classifier(image_shape=(8, 8)).fit(X[:20], y[:20])


def test_warm_start_rejects_new_labels(digits_small):
    X, y = digits_small
    keep = y[:60] < 5
    clf = ResNet18Classifier(width=2, max_epochs=1, warm_start=True, random_state=0)
    clf.fit(X[:60][keep], y[:60][keep])
    with pytest.raises(ValueError, match="not among the classes"):
        clf.fit(X[:60], y[:60])


# ------------------------------------------------------------------ composition
def test_pipeline_behind_minmax_scaler_and_grid_search(digits_small):
    X, y = digits_small
    X_flat = X[:120].reshape(120, -1) * 16  # digits' raw 0..16 pixel scale
    pipe = Pipeline([
        ("scale", MinMaxScaler()),
        ("clf", ResNet18Classifier(width=2, max_epochs=1, image_shape=(1, 8, 8), random_state=0)),
    ])
    pipe.fit(X_flat, y[:120])
    assert pipe.predict(X_flat[:7]).shape == (7,)
    grid = GridSearchCV(pipe, {"clf__dropout": [0.1, 0.5]}, cv=2).fit(X_flat, y[:120])
    assert grid.best_params_["clf__dropout"] in (0.1, 0.5)
    cloned = clone(pipe)
    assert cloned.get_params()["clf__image_shape"] == (1, 8, 8)
    assert not hasattr(cloned[-1], "module_")


def test_clone_and_pickle(tiny_resnet, digits_small):
    X, _ = digits_small
    params = clone(tiny_resnet).get_params(deep=False)
    assert params["width"] == 4 and "module" not in params
    restored = pickle.loads(pickle.dumps(tiny_resnet))
    np.testing.assert_array_equal(restored.predict_proba(X[:10]), tiny_resnet.predict_proba(X[:10]))


# ------------------------------------------------------------------ skorch callbacks
def test_progress_bar_and_early_stopping_without_validation(digits_small):
    X, y = digits_small
    clf = ResNet18Classifier(
        width=2, max_epochs=50, lr=1e-9, random_state=0,
        callbacks=[ProgressBar(), EarlyStopping(monitor="train_loss", patience=2)],
    ).fit(X[:40], y[:40])
    assert len(clf.history) < 50


def test_early_stopping_and_checkpoint_with_validation(digits_small, tmp_path):
    X, y = digits_small
    clf = ResNet18Classifier(
        width=2, max_epochs=6, random_state=0, train_split=ValidSplit(4, stratified=True),
        callbacks=[
            EarlyStopping(patience=2),
            Checkpoint(dirname=str(tmp_path), monitor="valid_loss_best"),
        ],
    ).fit(X[:200], y[:200])
    assert "valid_loss" in clf.history[-1]
    assert (tmp_path / "params.pt").exists()
    fresh = ResNet18Classifier(width=2, random_state=0).fit(X[:200], y[:200])
    fresh.load_params(f_params=str(tmp_path / "params.pt"))
    assert fresh.predict(X[:5]).shape == (5,)


def test_module_instance_is_a_parameter_and_copied_per_fit(digits_small):
    X, y = digits_small
    module = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Dropout(0.5),
                           nn.Linear(16, 10))
    initial = [p.detach().clone() for p in module.parameters()]
    clf = MCDropoutClassifier(module, max_epochs=2, random_state=0).fit(X[:60], y[:60])
    assert clf.module_ is not module
    for before, after in zip(initial, module.parameters()):
        assert torch.equal(before, after)  # the user's module is never trained in place
    first = clf.predict_proba(X[:10])
    np.testing.assert_array_equal(clf.fit(X[:60], y[:60]).predict_proba(X[:10]), first)
    assert clone(clf).get_params()["module"] is not module


def test_initialize_before_data_needs_classes_and_image_shape(digits_small):
    X, y = digits_small
    with pytest.raises(ValueError, match="pass classes=\\[...\\] and image_shape"):
        ResNet18Classifier(width=2).initialize()
    clf = ResNet18Classifier(width=2, max_epochs=1, classes=np.arange(10), image_shape=(1, 8, 8),
                             random_state=0).initialize()  # what modAL's DeepActiveLearner does
    clf.partial_fit(X[:30], y[:30])  # y lacks some classes: fine, they were declared
    clf.partial_fit(X[30:60], y[30:60])
    assert len(clf.history) == 2 and clf.predict_proba(X[:4]).shape == (4, 10)


# ------------------------------------------------------------------ training order (issue 10, 1-3)
def _flat_mlp(in_features, n_classes):
    return nn.Sequential(
        nn.Flatten(), nn.Linear(in_features, 32), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(32, n_classes),
    )


def test_training_shuffles_label_sorted_data(digits):
    # An active-learning labelled set arrives in acquisition order; here the extreme case, sorted
    # by label. Without shuffling every epoch ends on the 9s and the net forgets the rest
    # (measured: 0.18-0.34 test accuracy over seeds 0-2, 3-5 epochs; shuffled 0.89-0.94).
    X, y = digits
    order = np.argsort(y[:600], kind="stable")
    X_sorted, y_sorted = X[:600][order], y[:600][order]
    kw = dict(optimizer=torch.optim.Adam, lr=1e-2, batch_size=32, max_epochs=3, random_state=0)
    default = MCDropoutClassifier(_flat_mlp, **kw).fit(X_sorted, y_sorted)
    fixed = MCDropoutClassifier(_flat_mlp, iterator_train__shuffle=False, **kw)
    fixed.fit(X_sorted, y_sorted)
    acc_default = default.score(X[1000:1400], y[1000:1400])
    acc_fixed = fixed.score(X[1000:1400], y[1000:1400])
    assert acc_default > 0.8 and acc_fixed < 0.5, (acc_default, acc_fixed)


class _RecordOrder(Callback):
    """Records the first feature of every training row, per epoch, in the order seen."""

    def on_train_begin(self, net, **kwargs):
        self.epochs = []

    def on_epoch_begin(self, net, **kwargs):
        self.epochs.append([])

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            self.epochs[-1].append(np.asarray(batch[0][:, 0]).tolist())


def _indexed_rows(n):
    X = np.random.default_rng(0).random((n, 4)).astype(np.float32)
    X[:, 0] = np.arange(n)  # row i holds i: the order of training rows can be read back
    return X, np.arange(n) % 2


def _mlp_order(X, y, **kw):
    record = _RecordOrder()
    clf = MCDropoutClassifier(_mlp, max_epochs=3, batch_size=8, callbacks=[record], **kw)
    clf.fit(X, y)
    return clf, [sum(epoch, []) for epoch in record.epochs], record.epochs


def test_shuffling_is_seeded_and_fresh_every_epoch():
    X, y = _indexed_rows(40)
    clf, orders, _ = _mlp_order(X, y, random_state=0)
    for order in orders:
        assert sorted(order) == list(range(40))  # every sample, once per epoch
    assert orders[0] != list(range(40))  # shuffled ...
    assert orders[0] != orders[1] != orders[2]  # ... afresh every epoch
    again, orders_again, _ = _mlp_order(X, y, random_state=0)
    assert orders_again == orders  # seeded by random_state: the same fit twice ...
    for p, q in zip(clf.module_.parameters(), again.module_.parameters()):
        assert torch.equal(p, q)  # ... gives the same weights
    _, orders_other, _ = _mlp_order(X, y, random_state=1)
    assert orders_other != orders
    _, orders_fixed, _ = _mlp_order(X, y, random_state=0, iterator_train__shuffle=False)
    assert orders_fixed == [list(range(40))] * 3  # iterator_train__shuffle=False: given order


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("n", [2, 3, 65, 129])
def test_any_labelled_set_size_trains(shape, n):
    # 65 and 129 rows in batches of 64 used to leave a last batch of one sample, on which
    # BatchNorm raises "Expected more than 1 value per channel when training"
    rng = np.random.default_rng(0)
    X = rng.random((n,) + shape, dtype=np.float32)
    y = np.arange(n) % 2
    record = _RecordOrder()
    clf = ResNet18Classifier(width=2, max_epochs=2, batch_size=64, random_state=0,
                             callbacks=[record]).fit(X, y)
    for epoch in record.epochs:
        assert min(len(batch) for batch in epoch) >= 2
        assert sum(len(batch) for batch in epoch) == n  # every sample is seen, every epoch
    assert clf.predict(X[:2]).shape == (2,)


def test_a_last_batch_of_one_joins_the_one_before():
    from skal.estimators._training import batch_bounds

    assert batch_bounds(65, 64) == [(0, 65)]
    assert batch_bounds(129, 64) == [(0, 64), (64, 129)]
    assert batch_bounds(130, 64) == [(0, 64), (64, 128), (128, 130)]
    assert batch_bounds(1, 64) == [(0, 1)]
    X, y = _indexed_rows(17)
    _, orders, batches = _mlp_order(X, y, random_state=0, iterator_train__shuffle=False)
    assert [len(b) for b in batches[0]] == [8, 9]  # 17 = 8 + 9, not 8 + 8 + 1
    assert orders[0] == list(range(17))  # none dropped, even in a fixed order


def test_module_is_in_eval_mode_after_fit(digits_small):
    # modAL's mc_dropout_bald and users call module_(x) directly; in train mode BatchNorm would
    # normalise with the batch's statistics and overwrite its running statistics
    X, y = digits_small
    clf = ResNet18Classifier(width=4, max_epochs=1, random_state=0).fit(X[:100], y[:100])
    for fitted in (clf, clf.partial_fit(X[:100], y[:100])):
        assert not any(m.training for m in fitted.module_.modules())
        buffers = {k: v.clone() for k, v in fitted.module_.state_dict().items()}
        with torch.no_grad():
            proba = torch.softmax(fitted.module_(torch.as_tensor(X[100:140])), dim=1).numpy()
        for key, value in fitted.module_.state_dict().items():
            assert torch.equal(value, buffers[key]), key  # running statistics untouched
        np.testing.assert_allclose(proba, fitted.predict_proba(X[100:140]), atol=1e-6)


def test_global_torch_rng_is_left_untouched(tiny_resnet, digits_small):
    X, y = digits_small
    state = torch.get_rng_state()
    tiny_resnet.predict_proba(X[:50])
    tiny_resnet.predict(X[:50])
    tiny_resnet.score(X[:50], y[:50])
    tiny_resnet.sample_proba(X[:50], n_samples=3, random_state=0)
    assert torch.equal(torch.get_rng_state(), state)
    clf = ResNet18Classifier(width=2, max_epochs=1, random_state=0).fit(X[:40], y[:40])
    clf.partial_fit(X[:40], y[:40])
    assert torch.equal(torch.get_rng_state(), state)


# ------------------------------------------------------------------ channels-last images (5)
def test_channels_last_images_are_accepted(digits_small):
    X, y = digits_small
    X, y = X[:80], y[:80]
    kw = dict(width=2, max_epochs=1, random_state=0)
    ref = ResNet18Classifier(**kw).fit(X, y)
    last = ResNet18Classifier(**kw).fit(X.transpose(0, 2, 3, 1), y)  # (n, 8, 8, 1)
    assert last.input_shape_ == (1, 8, 8)
    np.testing.assert_allclose(last.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    # fitted channels-first, predicted channels-last (and back): the same predictions
    np.testing.assert_allclose(
        ref.predict_proba(X.transpose(0, 2, 3, 1)), ref.predict_proba(X), atol=1e-6
    )


def test_channels_last_rgb_uint8():
    # the layout of PIL / OpenCV images: (n, H, W, 3) uint8; once read as 32 channels of 32x3
    rng = np.random.default_rng(0)
    X_last = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    X_first = np.ascontiguousarray(X_last.transpose(0, 3, 1, 2))
    y = np.arange(20) % 2
    kw = dict(width=2, max_epochs=1, random_state=0)
    last = ResNet18Classifier(**kw).fit(X_last, y)
    first = ResNet18Classifier(**kw).fit(X_first, y)
    assert last.input_shape_ == (3, 32, 32) and last.module_.conv1.in_channels == 3
    np.testing.assert_allclose(last.predict_proba(X_first), first.predict_proba(X_first),
                               atol=1e-6)
    np.testing.assert_allclose(first.predict_proba(X_last), first.predict_proba(X_first),
                               atol=1e-6)


@pytest.mark.parametrize("shape", [(6, 3, 3, 3), (6, 3, 4, 4), (6, 1, 8, 1)])
def test_ambiguous_image_layout_raises(shape):
    X = np.zeros(shape, dtype=np.float32)
    with pytest.raises(ValueError, match=r"could hold the colour channels.*Pass image_shape"):
        ResNet18Classifier(width=2, max_epochs=1).fit(X, np.arange(6) % 2)


def test_image_shape_settles_an_ambiguous_layout():
    rng = np.random.default_rng(0)
    X = rng.random((6, 3, 4, 4), dtype=np.float32)
    y = np.arange(6) % 2
    clf = ResNet18Classifier(width=2, max_epochs=1, image_shape=(3, 4, 4), random_state=0)
    assert clf.fit(X, y).input_shape_ == (3, 4, 4)
    as_last = ResNet18Classifier(width=2, max_epochs=1, image_shape=(4, 3, 4), random_state=0)
    assert as_last.fit(X, y).input_shape_ == (4, 3, 4)  # (n, 3, 4, 4) read as (n, H, W, C)
    # after fit, the fitted shape decides: (n, 4, 4, 3) is the channels-last (3, 4, 4)
    np.testing.assert_allclose(
        clf.predict_proba(X.transpose(0, 2, 3, 1)), clf.predict_proba(X), atol=1e-6
    )
    with pytest.raises(ValueError, match=r"X has 4 channel\(s\), but ResNet18Classifier"):
        clf.predict(np.zeros((2, 4, 3, 4), dtype=np.float32))  # matches neither way


# ------------------------------------------------------------------ callbacks without validation
@pytest.mark.parametrize("callback, monitor", [
    (EarlyStopping(), "valid_loss"),
    (Checkpoint(), "valid_loss_best"),
    (EarlyStopping(monitor="valid_acc"), "valid_acc"),
])
def test_validation_callbacks_need_a_train_split(digits_small, callback, monitor):
    X, y = digits_small
    clf = ResNet18Classifier(width=2, max_epochs=2, callbacks=[callback])
    with pytest.raises(ValueError, match=rf"monitors '{monitor}', but ResNet18Classifier has no "
                       r"validation split \(train_split=None\).*ValidSplit.*monitor='train_loss'"):
        clf.fit(X[:40], y[:40])
    assert not hasattr(clf, "module_") or not clf.history  # refused before any training


def test_optimizer_params_set_after_fit_are_kept_by_clone(digits_small):
    # skorch applies optimizer__* of a fitted net to its optimizer without storing them;
    # skal keeps them as parameters (it used to, for WAAL only)
    from sklearn.base import clone

    X, y = digits_small
    clf = ResNet18Classifier(width=2, max_epochs=1, random_state=0).fit(X[:40], y[:40])
    clf.set_params(optimizer__weight_decay=0.1)
    assert clf.optimizer_.param_groups[0]["weight_decay"] == 0.1
    assert clf.get_params()["optimizer__weight_decay"] == 0.1
    assert clone(clf).get_params()["optimizer__weight_decay"] == 0.1
