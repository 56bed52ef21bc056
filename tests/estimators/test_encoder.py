"""skal.ContrastiveEncoder (SimCLR): transformer contract, seeds, pools, skorch callbacks,
checkpoints (resumed after kill -9), augmentations and bad input.

Everything runs on 8x8 digits with a width-2 ResNet18 and a few batches per epoch.
"""

import os
import pickle
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from skorch.callbacks import Checkpoint, EarlyStopping, LoadInitState, LRScheduler, ProgressBar
from skorch.dataset import ValidSplit

pytest.importorskip("lightly.loss", reason="lightly is in setup.cfg's ssl extra (--no-deps)")

from skal import ContrastiveEncoder  # noqa: E402
from skal.data import Pool  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _enc(**kw):
    params = dict(width=2, max_epochs=1, batch_size=32, flip=False, random_state=0)
    params.update(kw)
    return ContrastiveEncoder(**params)


@pytest.fixture(scope="module")
def images(digits):
    X, _ = digits
    return X[:96]


@pytest.fixture(scope="module")
def fitted(images):
    return _enc(max_epochs=2).fit(images)


# ------------------------------------------------------------------ the transformer
def test_transform_gives_backbone_features(fitted, images):
    Z = fitted.transform(images[:10])
    assert Z.shape == (10, 16) and Z.dtype == np.float32  # 8 * width, not projection_dim
    assert fitted.embedding_dim_ == 16 and fitted.input_shape_ == (1, 8, 8)
    assert fitted.n_features_in_ == 64
    assert len(fitted.history_) == 2 and np.isfinite(fitted.history_[:, "train_loss"]).all()
    assert not fitted.module_.training  # eval mode after fit
    np.testing.assert_array_equal(Z, fitted.module_(torch.as_tensor(images[:10])).detach())
    assert list(fitted.get_feature_names_out()) == [f"contrastiveencoder{i}" for i in range(16)]


def test_fit_transform_and_y_is_ignored(fitted, images):
    y = np.arange(len(images)) % 3
    Z = _enc(max_epochs=2).fit_transform(images, y)
    np.testing.assert_array_equal(Z, fitted.transform(images))


def test_same_seed_same_features_and_global_rng_untouched(fitted, images):
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    again = _enc(max_epochs=2).fit(images)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    np.testing.assert_array_equal(again.transform(images), fitted.transform(images))
    other = _enc(max_epochs=2, random_state=1).fit(images)
    assert not np.allclose(other.transform(images), fitted.transform(images))


def test_scikit_learn_parameter_rules(fitted, images):
    enc = _enc(projection_dim=8, temperature=0.2)
    assert not [k for k in vars(enc) if k.endswith("_") and not k.startswith("_")
                and k not in ("prefixes_", "cuda_dependent_attributes_", "init_context_")]
    params = enc.get_params()
    assert params["projection_dim"] == 8 and params["temperature"] == 0.2
    assert "module" not in params
    cloned = clone(fitted)
    assert not hasattr(cloned, "module_") and cloned.get_params()["width"] == 2
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(images[:5]), fitted.transform(images[:5]))


def test_partial_fit_continues(images):
    enc = _enc().fit(images)
    enc.partial_fit(images)
    assert len(enc.history_) == 2


# ------------------------------------------------------------------ pools read in batches
class _PairDataset(torch.utils.data.Dataset):
    def __init__(self, X):
        self.X = X

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return torch.as_tensor(self.X[i]), 0


def test_lazy_pools_give_the_features_of_the_array(fitted, images, tmp_path, monkeypatch):
    raw = np.round(images * 255).astype(np.uint8)  # as images are stored
    np.save(tmp_path / "pool.npy", raw)
    memmap = np.load(tmp_path / "pool.npy", mmap_mode="r")
    reads = []
    take = Pool.take

    def counting_take(self, positions):
        reads.append(len(positions))
        return take(self, positions)

    monkeypatch.setattr(Pool, "take", counting_take)
    ref = _enc(max_epochs=2).fit(raw).transform(raw)
    for pool in (memmap, _PairDataset(raw), Pool(raw, chunk_size=40)):
        reads.clear()
        enc = _enc(max_epochs=2).fit(pool)
        assert reads and max(reads) <= 33  # a batch at a time (32, or 33 folded), never whole
        np.testing.assert_array_equal(enc.transform(raw), ref)
        np.testing.assert_array_equal(enc.transform(pool), ref)  # chunked transform


# ------------------------------------------------------------------ skorch's callbacks
def test_skorch_callbacks_and_validation_split(images, tmp_path):
    sched = LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    enc = _enc(max_epochs=20, lr=1e-9, train_split=ValidSplit(4), callbacks=[
        ProgressBar(), ("lr", sched), EarlyStopping(monitor="valid_loss", patience=1,
                                                   threshold=10.0),
        Checkpoint(dirname=str(tmp_path), monitor="valid_loss_best"),
    ]).fit(images)
    assert 2 <= len(enc.history_) < 20
    assert "valid_loss" in enc.history_[-1]
    assert enc.optimizer_.param_groups[0]["lr"] < 1e-9
    assert (tmp_path / "params.pt").exists()


def test_valid_monitor_without_split_is_refused_before_training(images, tmp_path):
    enc = _enc(callbacks=[Checkpoint(dirname=str(tmp_path / "ck"))])  # monitors valid_loss_best
    with pytest.raises(ValueError, match="no validation split"):
        enc.fit(images)
    assert not (tmp_path / "ck").exists()


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    import numpy as np, torch
    from skorch.callbacks import Callback, Checkpoint
    torch.set_num_threads(1)
    from skal import ContrastiveEncoder

    class KillAfter(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no atexit: as kill -9

    X = np.load(sys.argv[1])
    ContrastiveEncoder(width=2, max_epochs=4, batch_size=32, flip=False, random_state=0,
                       callbacks=[Checkpoint(monitor=None, dirname=sys.argv[2]),
                                  KillAfter()]).fit(X)
""")


def test_resumed_after_kill_9_as_if_never_interrupted(images, tmp_path):
    np.save(tmp_path / "X.npy", images)
    ckpt = tmp_path / "ckpt"
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, str(tmp_path / "X.npy"), str(ckpt)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (ckpt / "params.pt").exists() and (ckpt / "optimizer.pt").exists()
    uninterrupted = _enc(max_epochs=4).fit(images)

    cp = Checkpoint(monitor=None, dirname=str(ckpt))
    # skorch's way 1: build the net (image_shape), load_params, partial_fit the epochs left
    resumed = _enc(max_epochs=2, image_shape=(1, 8, 8)).initialize()
    resumed.load_params(checkpoint=cp)
    assert len(resumed.history_) == 2
    resumed.partial_fit(images)
    assert resumed.history_[:, "epoch"] == [1, 2, 3, 4]
    np.testing.assert_allclose(resumed.history_[:, "train_loss"],
                               uninterrupted.history_[:, "train_loss"], rtol=1e-6)
    np.testing.assert_allclose(resumed.transform(images), uninterrupted.transform(images),
                               rtol=1e-5, atol=1e-6)
    # skorch's way 2: LoadInitState in the callbacks, fit again
    again = _enc(max_epochs=2, callbacks=[LoadInitState(cp)]).fit(images)
    assert len(again.history_) == 4
    np.testing.assert_allclose(again.transform(images), uninterrupted.transform(images),
                               rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ augmentation
def test_batched_augmentations_draw_per_image():
    from skal.estimators._ssl_augment import (
        BatchColorJitter,
        BatchGaussianBlur,
        BatchRandomGrayscale,
        BatchRandomResizedCrop,
        simclr_augment,
    )

    x = torch.rand(1, 3, 12, 12).repeat(6, 1, 1, 1)  # six copies of one image
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for t in (BatchRandomResizedCrop(), BatchColorJitter(p=1.0), BatchGaussianBlur(p=1.0),
                  simclr_augment(3, blur=0.5)):
            out = t(x)
            assert out.shape == x.shape
            assert not torch.allclose(out[0], out[1])  # parameters per image, not per batch
        grey = BatchRandomGrayscale(p=1.0)(x)
        assert torch.allclose(grey[:, 0], grey[:, 1])
        # a full crop without flip is the identity; jitter of strength 0 too
        same = BatchRandomResizedCrop(scale=(1, 1), ratio=(1, 1), flip=False)(x)
        torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
        torch.testing.assert_close(BatchColorJitter(0, 0, 0, p=1.0)(x), x)
        flipped = BatchRandomResizedCrop(scale=(1, 1), ratio=(1, 1), flip=True)(x)
        for image in flipped:
            assert torch.allclose(image, x[0], atol=1e-5) or torch.allclose(
                image, x[0].flip(-1), atol=1e-5)
        g = torch.rand(4, 1, 28, 28)
        assert simclr_augment(1)(g).shape == g.shape


def test_colour_images_and_a_custom_augment(digits):
    X, _ = digits
    rgb = np.repeat(X[:40], 3, axis=1)  # (40, 3, 8, 8)
    enc = _enc(blur=0.5, batch_size=20).fit(rgb)
    assert enc.transform(rgb[:2]).shape == (2, 16)
    plain = _enc(augment=lambda x: x + 0.01 * torch.randn_like(x), batch_size=20).fit(X[:40])
    assert plain.transform(X[:2]).shape == (2, 16)
    with pytest.raises(ValueError, match="'augment' parameter .* must return a batch of the shape"):
        _enc(augment=lambda x: x[:, :, :4], batch_size=20).fit(X[:40])


def test_custom_backbone(digits):
    from skal.nets import LeNetFeatures

    X, _ = digits
    big = np.repeat(np.repeat(X[:40], 2, axis=2), 2, axis=3)  # (40, 1, 16, 16)
    enc = _enc(backbone=LeNetFeatures, batch_size=20).fit(big)
    assert enc.transform(big[:3]).shape == (3, enc.embedding_dim_)


def test_nt_xent_is_lightly_s_as_computed_by_hand():
    # 2 images, 2 views each, unit vectors: z0 = (e1, e2), z1 = (e1, e1); temperature 1
    enc = _enc(temperature=1.0, image_shape=(1, 8, 8)).initialize()
    z0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z1 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # view 0 of image 0: positive 1 (z1[0]); negatives z1[1] (1) and z0[1] (0)
    # view 0 of image 1: positive 0 (z1[1]); negatives z1[0] (0) and z0[0] (0)
    # view 1 of image 0: positive 1 (z0[0]); negatives z0[1] (0) and z1[1] (1)
    # view 1 of image 1: positive 0 (z0[1]); negatives z0[0] (1) and z1[0] (1)
    e = np.e
    terms = [-np.log(e / (e + e + 1)), -np.log(1 / 3), -np.log(e / (e + 1 + e)),
             -np.log(1 / (1 + e + e))]
    loss = enc.get_loss((z0, z1))
    assert loss.item() == pytest.approx(np.mean(terms), rel=1e-6)


# ------------------------------------------------------------------ bad input
def test_not_fitted_uses_scikit_learn_s_wording(images):
    with pytest.raises(NotFittedError, match="This ContrastiveEncoder instance is not fitted yet. "
                                             "Call 'fit' with appropriate arguments"):
        _enc().transform(images)


@pytest.mark.parametrize("params, match", [
    ({"width": 0}, "'width' parameter"),
    ({"crop_scale": (0.0, 2.0)},
     r"'crop_scale' parameter .* each in the range \(0\.0, 1\.0\], with low <= high"),
    ({"temperature": 0.0}, "'temperature' parameter"),
    ({"batch_size": 1}, "'batch_size' parameter"),
    ({"backbone": "resnet50"}, r"'backbone' parameter .* \['preact_resnet18', 'resnet18'\]"),
    ({"random_state": "x"}, "'random_state' parameter"),
    ({"feature_stages": "first"}, r"'feature_stages' parameter .* among \{'last', 'all'\}"),
    ({"feature_stages": "all", "backbone": torch.nn.Sequential(torch.nn.Flatten(),
                                                                torch.nn.Linear(64, 4))},
     "'feature_stages' parameter .* needs a backbone with a stage_features method"),
])
def test_bad_parameters_fail_before_anything_is_written(images, tmp_path, params, match):
    enc = _enc(callbacks=[Checkpoint(monitor=None, dirname=str(tmp_path / "ck"))], **params)
    with pytest.raises(ValueError, match=match):
        enc.fit(images)
    assert not (tmp_path / "ck").exists()


def test_images_of_another_shape_than_fitted(fitted, images, tmp_path):
    with pytest.raises(ValueError, match=r"image shape \(1, 4, 4\), but ContrastiveEncoder was "
                                         r"fitted on images of shape \(1, 8, 8\)"):
        fitted.transform(images[:, :, :4, :4])
    with pytest.raises(ValueError, match=r"3 channel\(s\), but ContrastiveEncoder was fitted on "
                                         r"images with 1 channel\(s\)"):
        fitted.transform(np.repeat(images[:4], 3, axis=1))
    with pytest.raises(ValueError, match="takes images"):  # nothing written first
        _enc(callbacks=[Checkpoint(monitor=None, dirname=str(tmp_path / "ck"))]).fit(
            images.reshape(len(images), -1))  # (n, 8, 8) -> (n, 64): flat rows need image_shape
    assert not (tmp_path / "ck").exists()
    assert _enc(image_shape=(1, 8, 8)).fit(images.reshape(len(images), -1)).input_shape_ == (
        1, 8, 8)
    with pytest.raises(ValueError, match="at least 2 images"):
        _enc().fit(images[:1])
    with pytest.raises(ValueError, match="0 sample"):
        fitted.transform(images[:0])


def test_missing_lightly_says_how_to_install(images, monkeypatch):
    monkeypatch.setitem(sys.modules, "lightly.loss", None)  # import lightly.loss fails
    with pytest.raises(ImportError, match="pip install --no-deps lightly==1.6.0"):
        _enc().fit(images)


# ------------------------------------------------------------------ feature_stages
def test_all_stages_are_the_pooled_stage_outputs_ending_with_the_last(fitted, images):
    enc = _enc(max_epochs=2, feature_stages="all").fit(images)
    Z = enc.transform(images[:10])
    assert Z.shape == (10, 30) and enc.embedding_dim_ == 30  # (1 + 2 + 4 + 8) * width
    # the same training: the last 8 * width columns are the "last" encoder's features
    np.testing.assert_array_equal(Z[:, -16:], fitted.transform(images[:10]))
    trunk, x = enc.trunk_, torch.as_tensor(images[:10])
    with torch.no_grad():
        h = trunk.layer1(trunk._stem(x))
        np.testing.assert_allclose(Z[:, :2], h.mean((2, 3)), rtol=1e-5, atol=1e-6)
    assert len(enc.get_feature_names_out()) == 30


def test_feature_stages_changes_a_fitted_encoder_and_survives_pickle_and_clone(images):
    enc = _enc(max_epochs=1).fit(images)
    last = enc.transform(images[:5])
    enc.set_params(feature_stages="all")
    assert enc.embedding_dim_ == 30 and enc.transform(images[:5]).shape == (5, 30)
    again = pickle.loads(pickle.dumps(enc))
    np.testing.assert_array_equal(again.transform(images[:5])[:, -16:], last)
    assert clone(enc).feature_stages == "all"
    enc.set_params(feature_stages="last")
    assert enc.embedding_dim_ == 16
    np.testing.assert_array_equal(enc.transform(images[:5]), last)


def test_a_refused_feature_stages_leaves_the_fitted_encoder_as_it_was(images):
    enc = _enc(backbone=torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4)),
               image_shape=(1, 8, 8)).fit(images)
    with pytest.raises(ValueError, match=r"needs a backbone with a stage_features method .* "
                                         "got a Sequential module"):
        enc.set_params(feature_stages="all")
    assert enc.feature_stages == "last" and enc.transform(images[:3]).shape == (3, 4)
    with pytest.raises(ValueError, match="'feature_stages' parameter"):
        enc.set_params(feature_stages="first")
    assert enc.feature_stages == "last"


def test_an_encoder_pickled_before_feature_stages_loads_as_last(fitted, images):
    state = fitted.__getstate__()
    del state["feature_stages"]
    old = ContrastiveEncoder.__new__(ContrastiveEncoder)
    old.__setstate__(state)
    assert old.get_params()["feature_stages"] == "last"
    np.testing.assert_array_equal(old.transform(images[:4]), fitted.transform(images[:4]))
