"""The features cache of a labelling project with a head recipe (``PROJECT/encoder/``).

A round embeds every image of the project once per encoder: a new process reads the features
back instead of running the encoder again, an added image is embedded alone, another encoder
gets its own file (the old one goes), and a damaged file is replaced."""

import hashlib
import os
import pickle

import numpy as np
import pytest
from label_helpers import (
    DIGIT_CLASSES,
    HEAD_SETTINGS,
    answer_and_train,
    forget_process_caches,
    write_digit_pngs,
)

from skal import ContrastiveEncoder
from skal.labeling import Project, service
from skal.labeling.rounds import PixelCache

def _files(project, prefix):
    folder = os.path.join(project.path, service.ENCODER_DIR)
    return sorted(f for f in os.listdir(folder) if f.startswith(prefix))


def _load(project, name):
    with np.load(os.path.join(project.path, service.ENCODER_DIR, name)) as data:
        return data["keys"], data["features"]


def _encoder(project, name):
    with open(os.path.join(project.path, service.ENCODER_DIR, name), "rb") as f:
        return pickle.load(f)


@pytest.fixture
def project(tmp_path):
    forget_process_caches()
    write_digit_pngs(tmp_path / "png", 40, size=8)
    with Project.init(tmp_path / "proj", tmp_path / "png", DIGIT_CLASSES, **HEAD_SETTINGS) as p:
        answer_and_train(p)  # fits the encoder and embeds every image
        yield p
    forget_process_caches()


@pytest.fixture
def encoder_rows(monkeypatch):
    """The number of images each call of the encoder's ``transform`` embeds."""
    calls = []
    original = ContrastiveEncoder.transform

    def counted(self, X):
        calls.append(len(X))
        return original(self, X)

    monkeypatch.setattr(ContrastiveEncoder, "transform", counted)
    return calls


def test_the_first_round_writes_the_features_of_every_image(project):
    (encoder_file,) = _files(project, "encoder-")
    (features_file,) = _files(project, service.FEATURES_PREFIX)
    encoder = _encoder(project, encoder_file)
    with open(os.path.join(project.path, service.ENCODER_DIR, encoder_file), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert features_file == f"features-{digest[:20]}.npz"  # named by the encoder's file
    keys, Z = _load(project, features_file)
    X, _ = PixelCache().load(project.store)
    assert keys.shape == (40, 32) and keys.dtype == np.uint8
    np.testing.assert_array_equal(keys, service._row_digests(X))
    np.testing.assert_allclose(Z, encoder.transform(X), rtol=1e-5, atol=1e-6)


def test_a_new_process_reads_the_features_instead_of_running_the_encoder(project,
                                                                        encoder_rows):
    forget_process_caches()
    result = answer_and_train(project)
    assert result["status"] == "done" and encoder_rows == []
    answer_and_train(project)  # the next round of this process: from memory, the file is not reread
    assert encoder_rows == []
    # what the rounds trained and queried on is what the encoder makes of the images
    (features,) = service._FEATURES.values()
    X, _ = PixelCache().load(project.store)
    remembered = features.transform(X)
    assert encoder_rows == []
    encoder = _encoder(project, _files(project, "encoder-")[0])
    np.testing.assert_allclose(remembered, encoder.transform(X), rtol=1e-5, atol=1e-6)


def test_an_added_image_is_embedded_alone_and_the_file_grows(project, encoder_rows):
    (old,) = _files(project, service.FEATURES_PREFIX)
    write_digit_pngs(project.image_root, 1, size=8, start=40)
    assert len(project.rescan().added) == 1
    forget_process_caches()
    answer_and_train(project)
    assert encoder_rows == [1]
    assert _files(project, service.FEATURES_PREFIX) == [old]
    keys, Z = _load(project, old)
    X, _ = PixelCache().load(project.store)
    assert len(keys) == len(Z) == 41
    np.testing.assert_array_equal(keys, service._row_digests(X))


def test_another_encoder_gets_its_own_features_and_the_old_file_goes(project, encoder_rows):
    (old,) = _files(project, service.FEATURES_PREFIX)
    _, Z_old = _load(project, old)
    project.configure(encoder_epochs=2)  # another encoder, fitted at the next round
    answer_and_train(project)
    assert sum(encoder_rows) >= 40  # every image through the new encoder
    (new,) = _files(project, service.FEATURES_PREFIX)
    assert new != old
    encoders = [_encoder(project, f) for f in _files(project, "encoder-")]
    assert len(encoders) == 2
    _, Z_new = _load(project, new)
    X, _ = PixelCache().load(project.store)
    assert any(np.allclose(Z_new, e.transform(X), rtol=1e-5, atol=1e-6) for e in encoders)
    assert not np.allclose(Z_new, Z_old, rtol=1e-5, atol=1e-6)  # so: the new encoder's


@pytest.mark.parametrize("damage", ["not a zip file", "features of another width"])
def test_a_damaged_features_file_is_replaced_with_a_warning(project, encoder_rows, damage):
    (name,) = _files(project, service.FEATURES_PREFIX)
    path = os.path.join(project.path, service.ENCODER_DIR, name)
    keys, Z = _load(project, name)
    if damage == "not a zip file":
        with open(path, "wb") as f:
            f.write(b"\x00garbage")
    else:
        with open(path, "wb") as f:
            np.savez(f, keys=keys, features=np.hstack([Z, Z]))
    forget_process_caches()
    with pytest.warns(UserWarning, match=r"The cached features .* cannot be used .*embedding "
                                         r"the images again"):
        answer_and_train(project)
    assert sum(encoder_rows) == 40
    keys_again, Z_again = _load(project, name)
    np.testing.assert_array_equal(keys_again, keys)
    np.testing.assert_allclose(Z_again, Z, rtol=1e-5, atol=1e-6)


def test_projects_without_a_head_write_no_features(tmp_path):
    forget_process_caches()
    write_digit_pngs(tmp_path / "png", 30, size=8)
    settings = dict(HEAD_SETTINGS, recipe="ssl-finetune")
    with Project.init(tmp_path / "proj", tmp_path / "png", DIGIT_CLASSES, **settings) as p:
        answer_and_train(p)
        assert _files(p, service.FEATURES_PREFIX) == [] and len(_files(p, "encoder-")) == 1
    forget_process_caches()
