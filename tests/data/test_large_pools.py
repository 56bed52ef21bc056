"""Pools larger than memory: memmaps and Datasets through every strategy and scoring method."""

import numpy as np
import pytest
import torch

import skal.estimators._data_contract
from skal import (
    WAALClassifier,
    bald,
    entropy_sampling,
    margin_sampling,
    uncertainty_sampling,
    waal_uncertainty_diversity,
)
from skal.data import Pool

UTILITY_STRATEGIES = [uncertainty_sampling, margin_sampling, entropy_sampling]


@pytest.fixture(scope="module")
def pool_array(digits):
    X, _ = digits
    return np.round(X[100:400] * 255).astype(np.uint8)  # uint8, as images are stored on disk


@pytest.fixture
def pool_memmap(pool_array, tmp_path):
    np.save(tmp_path / "pool.npy", pool_array)
    return np.load(tmp_path / "pool.npy", mmap_mode="r")


class ImageDataset(torch.utils.data.Dataset):
    """A lazily read pool: (x, y) items, records which rows were read."""

    def __init__(self, X):
        self.X, self.read = X, []

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        self.read.append(i)
        return torch.from_numpy(np.array(self.X[i])), -1


class RecordingEstimator:
    """Wraps a fitted net and records how many rows each call gets."""

    def __init__(self, est):
        self.est, self.sizes = est, []

    def predict_proba(self, X):
        self.sizes.append(len(X))
        return self.est.predict_proba(X)

    def sample_proba(self, X, n_samples=20, random_state=None):
        self.sizes.append(len(X))
        return self.est.sample_proba(X, n_samples=n_samples, random_state=random_state)


@pytest.fixture(scope="module")
def waal_net(digits):
    X, y = digits
    y = y[:120].copy()
    y[80:] = -1
    return WAALClassifier(max_epochs=1, batch_size=16, random_state=0).fit(X[:120], y)


# --------------------------------------------------------------------------- strategies
@pytest.mark.parametrize("strategy", UTILITY_STRATEGIES)
def test_utility_strategies_memmap_and_dataset_equal_in_memory(
        strategy, tiny_resnet, pool_array, pool_memmap):
    idx, scores = strategy(tiny_resnet, pool_array, n_instances=7, random_state=0)
    for pool in (pool_memmap, ImageDataset(pool_memmap), Pool(pool_memmap, chunk_size=64)):
        got_idx, got_scores = strategy(tiny_resnet, pool, n_instances=7, random_state=0)
        np.testing.assert_array_equal(got_idx, idx)
        np.testing.assert_allclose(got_scores, scores, rtol=1e-6)


def test_bald_memmap_and_dataset_equal_in_memory(tiny_resnet, pool_array, pool_memmap):
    kwargs = dict(n_instances=6, n_samples=5, random_state=0)
    idx, scores = bald(tiny_resnet, pool_array, **kwargs)
    for pool in (pool_memmap, ImageDataset(pool_memmap)):  # one chunk: the same masks
        got_idx, got_scores = bald(tiny_resnet, pool, **kwargs)
        np.testing.assert_array_equal(got_idx, idx)
        np.testing.assert_array_equal(got_scores, scores)
    # several chunks: masks seeded per chunk, so memmap and array agree on the same chunk grid
    a = bald(tiny_resnet, Pool(pool_memmap, chunk_size=64), **kwargs)
    b = bald(tiny_resnet, Pool(pool_array, chunk_size=64), **kwargs)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = bald(tiny_resnet, Pool(pool_memmap, chunk_size=64), subsample=100, **kwargs)
    assert len(np.unique(c[0])) == 6 and c[0].max() < len(pool_array)


def test_bald_and_uncertainty_only_ever_see_one_chunk(tiny_resnet, pool_memmap):
    """The memory bound: the estimator gets at most chunk_size rows at a time (so BALD holds
    (T, chunk, C) samples, never (T, n, C)), and a Dataset pool is read once, row by row."""
    spy = RecordingEstimator(tiny_resnet)
    data = ImageDataset(pool_memmap)
    bald(spy, Pool(data, chunk_size=32), n_instances=5, n_samples=4, random_state=0)
    assert max(spy.sizes) == 32 and sum(spy.sizes) == 300 and len(spy.sizes) == 10
    assert data.read == list(range(300))  # each row read once, in order
    spy.sizes = []
    uncertainty_sampling(spy, Pool(pool_memmap, chunk_size=50), n_instances=300)
    assert spy.sizes == [50] * 6


def test_waal_strategy_on_memmap(waal_net, pool_array, pool_memmap):
    idx, scores = waal_uncertainty_diversity(waal_net, pool_array, n_instances=5)
    got_idx, got_scores = waal_uncertainty_diversity(
        waal_net, Pool(pool_memmap, chunk_size=40), n_instances=5)
    np.testing.assert_array_equal(got_idx, idx)
    np.testing.assert_allclose(got_scores, scores, rtol=1e-6)
    assert np.all(np.diff(got_scores) >= 0)  # smallest first


# --------------------------------------------------------------------------- estimators
def test_predict_and_sample_proba_read_a_memmap_in_chunks(
        tiny_resnet, pool_array, pool_memmap, monkeypatch):
    sizes = []
    real = skal.estimators._data_contract.validate_images

    def recording(est, X, **kwargs):
        sizes.append(len(X))
        return real(est, X, **kwargs)

    expected_proba = tiny_resnet.predict_proba(pool_array)
    expected_samples = tiny_resnet.sample_proba(pool_array, n_samples=3, random_state=1)
    monkeypatch.setattr(skal.estimators._data_contract, "validate_images", recording)
    pool = Pool(pool_memmap, chunk_size=100)  # rounded to a whole number of batches (64)
    np.testing.assert_array_equal(tiny_resnet.predict_proba(pool), expected_proba)
    assert sizes == [64, 64, 64, 64, 44]  # never the whole memmap
    sizes.clear()
    samples = tiny_resnet.sample_proba(pool, n_samples=3, random_state=1)
    np.testing.assert_array_equal(samples, expected_samples)  # same batches, same masks
    assert max(sizes) == 64
    np.testing.assert_array_equal(tiny_resnet.predict_proba(pool_memmap), expected_proba)
    proba = tiny_resnet.predict_proba(ImageDataset(pool_memmap))
    np.testing.assert_array_equal(proba, expected_proba)


def test_critic_and_waal_score_on_memmap(waal_net, pool_array, pool_memmap):
    pool = Pool(pool_memmap, chunk_size=50)
    np.testing.assert_allclose(waal_net.critic_score(pool), waal_net.critic_score(pool_array),
                               rtol=1e-6)
    np.testing.assert_allclose(waal_net.waal_score(ImageDataset(pool_memmap)),
                               waal_net.waal_score(pool_array), rtol=1e-6)


def test_waal_trains_on_a_memmap_pool_as_on_the_array(digits, pool_array, pool_memmap):
    X, y = digits
    kwargs = dict(max_epochs=1, batch_size=16, random_state=0)
    a = WAALClassifier(**kwargs).fit(X[:40], y[:40], X_unlabeled=pool_array)
    b = WAALClassifier(**kwargs).fit(X[:40], y[:40], X_unlabeled=pool_memmap)
    c = WAALClassifier(**kwargs).fit(X[:40], y[:40], X_unlabeled=ImageDataset(pool_memmap))
    for other in (b, c):
        for key, value in a.module_.state_dict().items():
            torch.testing.assert_close(other.module_.state_dict()[key], value, rtol=0, atol=0)
        for key, value in a.critic_.state_dict().items():
            torch.testing.assert_close(other.critic_.state_dict()[key], value, rtol=0, atol=0)
    assert b.n_unlabeled_ == 300


def test_bad_pools(tiny_resnet, digits, pool_memmap, tmp_path):
    X, y = digits
    np.save(tmp_path / "wrong.npy", np.zeros((20, 1, 5, 5), dtype=np.float32))
    wrong = np.load(tmp_path / "wrong.npy", mmap_mode="r")
    with pytest.raises(ValueError, match="X_unlabeled must have the same per-sample shape as X "
                                         r"\(1, 8, 8\)"):
        WAALClassifier(max_epochs=1).fit(X[:20], y[:20], X_unlabeled=wrong)
    with pytest.raises(ValueError, match=r"image shape \(1, 5, 5\), but ResNet18Classifier was "
                                         r"fitted on images of shape \(1, 8, 8\)"):
        bald(tiny_resnet, wrong, n_instances=2)
    with pytest.raises(TypeError, match="X_pool must be an array-like of samples"):
        uncertainty_sampling(tiny_resnet, {"images": pool_memmap}, n_instances=1)
    with pytest.raises(ValueError, match="X_pool is empty"):
        bald(tiny_resnet, pool_memmap[:0], n_instances=1)
