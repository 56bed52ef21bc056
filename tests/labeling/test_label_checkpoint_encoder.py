"""A head recipe's checkpoints refer to the project's encoder file instead of pickling a copy.

Each round's ``models/round_NNNN.pkl`` holds the head and a reference (path and SHA-256) to
``PROJECT/encoder/encoder-KEY.pkl``; loading the model checks that file, and refuses a missing or
changed one, or a reference outside the project."""

import hashlib
import io
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

from skal import recipe as recipes
from skal.labeling import Project, service
from skal.labeling.files import PROJECT_FILE, load_checkpoint, save_checkpoint

def _checkpoint(project):
    row = [r for r in project.store.rounds() if r["checkpoint"]][-1]
    return os.path.join(project.path, *row["checkpoint"].split("/"))


def _encoder_path(project):
    folder = os.path.join(project.path, service.ENCODER_DIR)
    (name,) = [f for f in os.listdir(folder) if f.startswith("encoder-")]
    return os.path.join(folder, name)


@pytest.fixture
def project(tmp_path):
    forget_process_caches()
    write_digit_pngs(tmp_path / "png", 40, size=8)
    with Project.init(tmp_path / "proj", tmp_path / "png", DIGIT_CLASSES, **HEAD_SETTINGS) as p:
        answer_and_train(p)
        answer_and_train(p)
        yield p
    forget_process_caches()



def test_the_checkpoint_holds_a_reference_not_the_encoder(project):
    with open(_checkpoint(project), "rb") as f:
        data = f.read()
    with pytest.raises(pickle.UnpicklingError, match="persistent"):
        pickle.loads(data)  # a plain unpickler cannot resolve the reference
    with open(_encoder_path(project), "rb") as f:
        encoder_bytes = f.read()
    name = os.path.basename(_encoder_path(project))
    assert f"{service.ENCODER_DIR}/{name}".encode() in data
    assert hashlib.sha256(encoder_bytes).hexdigest().encode() in data
    assert encoder_bytes not in data


def test_the_model_loads_in_a_new_process_with_the_encoder_of_the_file(project):
    in_memory = recipes._ENCODERS[next(iter(recipes._ENCODERS))]
    forget_process_caches()
    model = project.load_model()
    encoder = model.steps[0][1].encoder
    with open(_encoder_path(project), "rb") as f:
        on_disk = pickle.load(f)
    for name, value in on_disk.module_.state_dict().items():
        assert np.array_equal(encoder.module_.state_dict()[name].numpy(), value.numpy())
        assert np.array_equal(in_memory.module_.state_dict()[name].numpy(), value.numpy())
    X = np.stack([np.zeros((1, 8, 8), np.float32), np.ones((1, 8, 8), np.float32)])
    assert model.predict_proba(X).shape == (2, len(DIGIT_CLASSES))


def test_every_round_refers_to_the_one_encoder_file(project):
    rounds = [r for r in project.store.rounds() if r["checkpoint"]]
    assert len(rounds) == 2
    for row in rounds:
        assert load_checkpoint(project.path, row) is not None


def test_a_changed_encoder_file_is_refused(project):
    with open(_encoder_path(project), "ab") as f:
        f.write(b"\0")
    forget_process_caches()
    with pytest.raises(ValueError, match="content changed since the round was trained"):
        project.load_model()


def test_a_missing_encoder_file_is_refused(project):
    os.remove(_encoder_path(project))
    forget_process_caches()
    with pytest.raises(ValueError, match="which is missing"):
        project.load_model()


def _forged(tmp_path, pid):
    """A checkpoint whose pickle holds the persistent id ``pid``, and its round row."""

    class Forger(pickle.Pickler):
        def persistent_id(self, obj):
            return pid if obj == "marker" else None

    buffer = io.BytesIO()
    Forger(buffer).dump({"encoder": "marker"})
    os.makedirs(tmp_path / "models", exist_ok=True)
    (tmp_path / "models" / "forged.pkl").write_bytes(buffer.getvalue())
    return {"checkpoint": "models/forged.pkl", "id": 7,
            "checkpoint_sha256": hashlib.sha256(buffer.getvalue()).hexdigest()}


def test_a_reference_outside_the_project_is_refused(tmp_path):
    outside = tmp_path / "secret.pkl"
    outside.write_bytes(pickle.dumps("secret"))
    project = tmp_path / "proj"
    digest = hashlib.sha256(outside.read_bytes()).hexdigest()
    row = _forged(project, (PROJECT_FILE, "../secret.pkl", digest))
    with pytest.raises(ValueError, match="outside the project folder"):
        load_checkpoint(project, row)


def test_an_unknown_reference_is_refused(tmp_path):
    row = _forged(tmp_path, ("something-else", "x", "y"))
    with pytest.raises(pickle.UnpicklingError, match="unknown reference"):
        load_checkpoint(tmp_path, row)


def test_an_object_not_in_shared_is_pickled_whole(tmp_path):
    shared_obj, other = {"a": 1}, {"a": 1}  # equal, but only the first is the shared one
    (tmp_path / "shared.pkl").write_bytes(pickle.dumps(shared_obj))
    digest = hashlib.sha256((tmp_path / "shared.pkl").read_bytes()).hexdigest()
    path, sha = save_checkpoint(tmp_path, 1, [shared_obj, other],
                                shared=[(shared_obj, ("shared.pkl", digest))])
    data = (tmp_path / path).read_bytes()
    assert data.count(b"shared.pkl") == 1
    loaded = load_checkpoint(tmp_path, {"checkpoint": path, "checkpoint_sha256": sha, "id": 1})
    assert loaded == [{"a": 1}, {"a": 1}]


def test_a_finetune_recipe_refers_to_its_encoder_too(tmp_path):
    forget_process_caches()
    write_digit_pngs(tmp_path / "png", 40, size=8)
    settings = dict(HEAD_SETTINGS, recipe="ssl-finetune")
    with Project.init(tmp_path / "proj", tmp_path / "png", DIGIT_CLASSES, **settings) as p:
        answer_and_train(p)
        with open(_checkpoint(p), "rb") as f, pytest.raises(pickle.UnpicklingError,
                                                             match="persistent"):
            pickle.load(f)
        forget_process_caches()
        assert p.load_model().predict(np.zeros((2, 1, 8, 8), np.float32)).shape == (2,)
    forget_process_caches()


def test_a_project_without_an_encoder_pickles_plainly(tmp_path):
    forget_process_caches()
    write_digit_pngs(tmp_path / "png", 40, size=8)
    settings = {k: v for k, v in HEAD_SETTINGS.items() if not k.startswith(("recipe", "encoder"))}
    with Project.init(tmp_path / "proj", tmp_path / "png", DIGIT_CLASSES, **settings) as p:
        answer_and_train(p)
        with open(_checkpoint(p), "rb") as f:
            assert pickle.load(f) is not None  # no reference: a plain unpickler reads it
