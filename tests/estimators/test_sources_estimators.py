"""torch Datasets and PIL lists in the estimators and strategies; train_transform= (training-time
augmentation only; not `transform`, which would make scikit-learn take the estimators for
transformers)."""

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from skorch.dataset import ValidSplit

from skal import (
    ResNet18Classifier,
    WAALClassifier,
    bald,
    entropy_sampling,
    random_sampling,
    waal_uncertainty_diversity,
)

torchvision = pytest.importorskip("torchvision")
from torchvision.transforms import v2


@pytest.fixture(scope="module")
def fake():
    return torchvision.datasets.FakeData(size=24, image_size=(3, 12, 12), num_classes=3,
                                         random_offset=0)


def _pils(n, size=(12, 12), mode="RGB"):
    rng = np.random.default_rng(0)
    shape = size[::-1] + ((3,) if mode == "RGB" else ())
    return [Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode) for _ in range(n)]


def test_fit_predict_and_strategies_take_a_dataset(fake):
    clf = ResNet18Classifier(width=2, max_epochs=1, random_state=0).fit(fake)  # labels: its own
    labels = [int(fake[i][1]) for i in range(len(fake))]
    assert clf.classes_.tolist() == sorted(set(labels))
    assert clf.input_shape_ == (3, 12, 12)
    assert clf.predict(fake).shape == (24,)
    assert clf.predict_proba(_pils(5)).shape == (5, 3)
    idx, scores = bald(clf, fake, n_instances=3, n_samples=2, random_state=0)
    assert len(set(idx.tolist())) == 3 and scores.shape == (3,)
    idx, _ = bald(clf, fake, n_instances=2, n_samples=2, subsample=10, random_state=0)
    assert idx.max() < 24
    assert entropy_sampling(clf, _pils(6), n_instances=2)[0].shape == (2,)
    assert random_sampling(clf, fake, n_instances=4, random_state=0)[0].shape == (4,)
    # y given explicitly wins over the Dataset's labels
    clf2 = ResNet18Classifier(width=2, max_epochs=1, random_state=0).fit(fake, ["a", "b"] * 12)
    assert clf2.classes_.tolist() == ["a", "b"]


def test_image_folder_dataset_and_waal(tmp_path):
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i, image in enumerate(_pils(6, size=(28, 28), mode="L")):
            image.save(tmp_path / label / f"{i}.png")
    folder = torchvision.datasets.ImageFolder(str(tmp_path))  # its loader gives RGB images
    clf = WAALClassifier(max_epochs=1, batch_size=4, random_state=0)
    clf.fit(folder, X_unlabeled=_pils(8, size=(28, 28)))
    assert clf.input_shape_ == (3, 28, 28) and clf.classes_.tolist() == [0, 1]
    idx, _ = waal_uncertainty_diversity(clf, folder, n_instances=2)
    assert idx.shape == (2,)


def test_ragged_images_are_a_clear_error_not_numpys(tmp_path, fake):
    (tmp_path / "a").mkdir()
    _pils(1, size=(12, 12))[0].save(tmp_path / "a" / "small.png")
    _pils(1, size=(20, 16))[0].save(tmp_path / "a" / "big.png")
    folder = torchvision.datasets.ImageFolder(str(tmp_path))
    clf = ResNet18Classifier(width=2, max_epochs=1)
    with pytest.raises(ValueError, match=r"X holds images of 2 different shapes: item 0 is "
                                         r"3x16x20 and item 1 is 3x12x12"):
        clf.fit(folder)
    fitted = ResNet18Classifier(width=2, max_epochs=1, random_state=0).fit(fake)
    with pytest.raises(ValueError, match="X_pool holds images of 2 different shapes"):
        entropy_sampling(fitted, _pils(2) + _pils(1, size=(10, 12)), n_instances=1)
    with pytest.raises(ValueError, match="X holds images of 2 different shapes"):
        fitted.predict(_pils(2) + _pils(1, size=(10, 12)))


class _Counting:
    """A transform that counts the samples it sees (and flips them)."""

    def __init__(self):
        self.n = 0
        self.flip = v2.RandomHorizontalFlip()

    def __call__(self, x):
        self.n += 1
        return self.flip(x)


def test_transform_runs_on_training_samples_only(digits_small):
    X, y = digits_small
    counting = _Counting()
    clf = ResNet18Classifier(width=2, max_epochs=3, batch_size=16, train_transform=counting,
                             train_split=ValidSplit(4), random_state=0)
    clf.fit(X[:40], y[:40])
    assert counting.n == 3 * 30  # 3 epochs of the 30 training samples; the 10 validation: never
    seen = counting.n
    clf.predict_proba(X[:20])
    clf.sample_proba(X[:20], n_samples=3)
    clf.predict(X[:20])
    assert counting.n == seen
    assert isinstance(clone(clf).train_transform, _Counting)  # a parameter: clone copies it


def test_transform_is_seeded_changes_training_and_leaves_the_global_rng(digits_small):
    X, y = digits_small
    crop = v2.Compose([v2.RandomCrop(8, padding=2), v2.RandomHorizontalFlip()])

    def fit(transform):
        return ResNet18Classifier(width=2, max_epochs=2, train_transform=transform,
                                  random_state=0).fit(X[:60], y[:60]).predict_proba(X[60:70])

    state = torch.get_rng_state()
    p1, p2 = fit(crop), fit(crop)
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_allclose(p1, p2)  # same seed, same augmentation
    assert not np.allclose(p1, fit(None))


def test_transform_in_waal_sees_labelled_and_unlabelled_batches():
    rng = np.random.default_rng(0)
    X = rng.random((16, 1, 28, 28), dtype=np.float32)
    counting = _Counting()
    WAALClassifier(max_epochs=1, batch_size=8, train_transform=counting, random_state=0).fit(
        X[:8], [0, 1] * 4, X_unlabeled=X[8:])
    assert counting.n == 16  # one epoch over the 8 unlabelled: 8 labelled + 8 unlabelled


def test_the_parameter_does_not_make_a_transformer():
    from sklearn.base import is_classifier

    clf = ResNet18Classifier(train_transform=v2.RandomHorizontalFlip())
    assert is_classifier(clf) and not hasattr(clf, "transform")
    assert clf.__sklearn_tags__().transformer_tags is None


def test_transform_errors(digits_small):
    X, y = digits_small
    with pytest.raises(ValueError, match="The 'train_transform' parameter of ResNet18Classifier "
                                         "must be None or a callable.*Got 'flip' instead."):
        ResNet18Classifier(width=2, max_epochs=1, train_transform="flip").fit(X[:20], y[:20])
    with pytest.raises(ValueError, match=r"changed the shape of a training batch from "
                                         r"\(20, 1, 8, 8\) to \(20, 1, 6, 6\); it must keep"):
        ResNet18Classifier(width=2, max_epochs=1, batch_size=32,
                           train_transform=v2.RandomCrop(6)).fit(X[:20], y[:20])
