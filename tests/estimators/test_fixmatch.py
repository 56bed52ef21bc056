"""FixMatch and pseudo-labelling (skal.estimators._fixmatch): the step, the data paths, the API contracts."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch import nn
from torch.nn import functional as F

from skal import ActiveLearner, ResNet18Classifier, bald
from skal.estimators import FixMatchClassifier, FixMatchMCDropoutClassifier
from skal.data.transforms import strong_augment, weak_augment


def _semi(y, n_labeled):
    return np.where(np.arange(len(y)) < n_labeled, y, -1)


class Linear(nn.Module):
    """No BatchNorm, no dropout: one forward of a batch is the rows' forwards side by side."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        return self.linear(x.flatten(1))  # (n, 1, 8, 8) -> (n, 64)


def _identity(x):
    return x


def test_fit_with_marked_rows_and_with_x_unlabeled(digits_small):
    X, y = digits_small
    clf = FixMatchClassifier(width=2, max_epochs=2, flip=False, random_state=0)
    clf.fit(X[:120], _semi(y[:120], 40))
    assert clf.n_unlabeled_ == 80
    assert {"ce_loss", "unlabeled_loss", "mask_rate"} <= set(clf.history[-1])
    other = clone(clf).fit(X[:40], y[:40], X_unlabeled=X[40:120])
    assert other.n_unlabeled_ == 80
    np.testing.assert_array_equal(other.predict_proba(X[:5]), clf.predict_proba(X[:5]))
    assert clf.sample_proba(X[:4], n_samples=3).shape == (3, 4, 10)


def test_unlabeled_weight_zero_is_the_supervised_classifier(digits_small):
    X, y = digits_small
    semi = FixMatchClassifier(width=2, max_epochs=2, unlabeled_weight=0.0, random_state=0)
    semi.fit(X[:40], y[:40], X_unlabeled=X[40:100])
    plain = ResNet18Classifier(width=2, max_epochs=2, random_state=0).fit(X[:40], y[:40])
    np.testing.assert_array_equal(semi.predict_proba(X[:8]), plain.predict_proba(X[:8]))


@pytest.mark.parametrize("consistency", ["fixmatch", "pseudo_label"])
def test_the_step_s_loss_is_cross_entropy_plus_the_masked_unlabelled_term(consistency, digits):
    X, y = digits
    kwargs = dict(max_epochs=1, batch_size=16, weak_transform=_identity,
                  strong_transform=lambda x: x.flip(-1), threshold=0.15,
                  unlabeled_weight=0.7, consistency=consistency, random_state=0)
    clf = FixMatchMCDropoutClassifier(Linear, **kwargs).fit(X[:16], y[:16],
                                                            X_unlabeled=X[16:40])
    net = clf.module_
    X_l, y_l = torch.as_tensor(X[:16]), torch.as_tensor(clf.label_encoder_.transform(y[:16]))
    X_u = torch.as_tensor(X[16:32])
    with torch.no_grad():  # the loss of the weights before the step
        ce = F.cross_entropy(net(X_l), y_l)
        proba = torch.softmax(net(X_u), 1)
        confidence, pseudo = proba.max(1)
        mask = (confidence >= 0.15).float()
        view = X_u.flip(-1) if consistency == "fixmatch" else X_u
        unl = (F.cross_entropy(net(view), pseudo, reduction="none") * mask).mean()
    step = clf.train_step((X_l, y_l, X_u))
    assert 0 < mask.mean() < 1  # some above the threshold, some below
    torch.testing.assert_close(step["loss"], ce + 0.7 * unl)
    assert clf.history[-1, "batches", -1]["mask_rate"] == pytest.approx(mask.mean().item())


def test_a_threshold_of_one_masks_unconfident_images(digits_small):
    X, y = digits_small
    clf = FixMatchClassifier(width=2, max_epochs=1, threshold=1.0, random_state=0)
    clf.fit(X[:40], y[:40], X_unlabeled=X[40:80])
    assert clf.history[-1, "mask_rate"] == 0 and clf.history[-1, "unlabeled_loss"] == 0


def test_ratio_sets_the_unlabelled_batch(digits_small):
    X, y = digits_small
    seen = []

    def weak(x):
        seen.append(len(x))
        return x

    FixMatchClassifier(width=2, max_epochs=1, batch_size=20, unlabeled_ratio=3,
                       weak_transform=weak, random_state=0).fit(
        X[:40], y[:40], X_unlabeled=X[40:60])
    assert seen == [60, 20, 60, 20]  # per step: the unlabelled batch, then the labelled one


def test_memmap_pool_and_seeded_reproducibility(digits_small, tmp_path):
    X, y = digits_small
    np.save(tmp_path / "pool.npy", X[40:200])
    pool = np.load(tmp_path / "pool.npy", mmap_mode="r")
    a = FixMatchClassifier(width=2, max_epochs=2, random_state=3).fit(X[:40], y[:40],
                                                                      X_unlabeled=pool)
    b = FixMatchClassifier(width=2, max_epochs=2, random_state=3).fit(X[:40], y[:40],
                                                                      X_unlabeled=X[40:200])
    np.testing.assert_array_equal(a.predict_proba(X[:5]), b.predict_proba(X[:5]))


def test_active_learner_hands_the_pool_over_and_clone_pickle_work(digits_small):
    X, y = digits_small
    learner = ActiveLearner(FixMatchClassifier(width=2, max_epochs=1, random_state=0),
                            query_strategy=bald, X_training=X[:30], y_training=y[:30])
    pool = X[30:200]  # the learner keeps a weak reference: the pool must live until teach
    idx, X_query = learner.query(pool, n_instances=5, random_state=0)
    learner.teach(X_query, y[30:200][idx])
    assert learner.estimator.n_unlabeled_ == 165  # the rest of the pool
    restored = pickle.loads(pickle.dumps(learner.estimator))
    np.testing.assert_array_equal(restored.predict_proba(X[:3]),
                                  learner.estimator.predict_proba(X[:3]))
    params = clone(FixMatchClassifier(threshold=0.8, unlabeled_ratio=2)).get_params()
    assert params["threshold"] == 0.8 and params["unlabeled_ratio"] == 2


@pytest.mark.parametrize("param, value, expected", [
    ("threshold", 0.0, r"'threshold' parameter of FixMatchClassifier must be a float in the "
                       r"range \(0(\.0)?, 1(\.0)?\]"),
    ("threshold", 1.5, r"'threshold' parameter"),
    ("unlabeled_ratio", 0, r"'unlabeled_ratio' parameter .* int in the range \[1, inf\)"),
    ("unlabeled_weight", -1.0, r"'unlabeled_weight' parameter"),
    ("consistency", "mixmatch", r"'consistency' parameter"),
])
def test_bad_parameters_are_named(param, value, expected, digits_small):
    X, y = digits_small
    with pytest.raises(ValueError, match=expected):
        FixMatchClassifier(width=2, max_epochs=1, **{param: value}).fit(X[:20], y[:20])


def test_bad_transforms_and_unlabelled_shapes(digits_small):
    X, y = digits_small
    shrink = FixMatchClassifier(width=2, max_epochs=1, strong_transform=lambda x: x[..., :4])
    with pytest.raises(ValueError, match=r"'strong_transform' parameter .* changed the shape"):
        shrink.fit(X[:20], y[:20], X_unlabeled=X[20:40])
    with pytest.raises(ValueError, match="X_unlabeled"):
        FixMatchClassifier(width=2, max_epochs=1).fit(
            X[:20], y[:20], X_unlabeled=np.zeros((5, 1, 9, 9), np.float32))


def test_no_unlabelled_data_warns_and_trains_supervised(digits_small):
    X, y = digits_small
    with pytest.warns(UserWarning, match="no unlabelled data"):
        FixMatchClassifier(width=2, max_epochs=1, random_state=0).fit(X[:20], y[:20])


def test_augmentations_keep_the_shape_and_are_seeded():
    x = torch.rand(6, 3, 12, 12)
    for augment in (weak_augment, strong_augment):
        a = augment(x, generator=torch.Generator().manual_seed(0))
        b = augment(x, generator=torch.Generator().manual_seed(0))
        assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    # no flip: a one-pixel-wide vertical line stays a vertical line within the padding shift
    line = torch.zeros(8, 1, 8, 8)
    line[..., 0] = 1
    moved = weak_augment(line, generator=torch.Generator().manual_seed(1), flip=False)
    assert (moved.sum(dim=(1, 2)).argmax(-1) <= 1).all()
