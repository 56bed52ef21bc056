"""The Python API of a labelling project (skal.labeling.Project) and `skal label` on the command
line: init, batches, answers, train + query with any strategy, WAAL, learning curve, export."""

import csv
import os
import warnings

import numpy as np
import pytest
from label_helpers import DIGIT_CLASSES, true_label, write_digit_pngs
from PIL import Image

from skal.cli import main
from skal.labeling import DEFAULT_CONFIG, Project, available_strategies
from skal.labeling import cli as label_cli

TINY = dict(batch_size=6, width=2, epochs=1, min_steps=0, mc_samples=2, holdout=0.25)


@pytest.fixture
def images(tmp_path):
    write_digit_pngs(tmp_path / "png", 50, size=8)
    return tmp_path / "png"


@pytest.fixture
def project(tmp_path, images):
    p = Project.init(tmp_path / "project", images, DIGIT_CLASSES, **TINY)
    yield p
    p.close()


def _label_batch(project, annotator="me"):
    for item in project.next_batch():
        project.label(item.image_id, true_label(item.path), annotator=annotator)


def test_init_registers_images_and_makes_a_random_first_batch(project, images):
    rows = project.store.images()
    assert len(rows) == 50 and all(len(r["sha256"]) == 64 for r in rows)
    assert {r["path"] for r in rows} == set(os.listdir(images))
    assert project.classes == DIGIT_CLASSES
    assert project.config["image_size"] == [8, 8] and project.config["channels"] == 1
    batch = project.next_batch()
    assert len(batch) == 6 and [b.position for b in batch] == list(range(6))
    assert all(b.guess is None and b.answer is None for b in batch)
    assert project.rounds()[0]["strategy"] == "random_sampling"
    assert project.learning_curve() == []


def test_partially_labelled_image_folder_imports_its_labels(tmp_path, images):
    for name in sorted(os.listdir(images))[:10]:
        os.makedirs(images / ("digit " + true_label(name)), exist_ok=True)
        os.replace(images / name, images / ("digit " + true_label(name)) / name)
    p = Project.init(tmp_path / "p2", images, ["other"], **TINY)
    try:
        assert p.classes[0] == "other" and len(p.classes) > 2
        labels = p.labels()
        assert len(labels) == 10
        assert all(path.startswith(label + "/") for path, label in labels.items())
        assert {r["annotator"] for r in p.store.current()} == {"import"}
        assert not {b.path for b in p.next_batch()} & set(labels)  # batch from the unlabelled
    finally:
        p.close()


def test_init_errors(tmp_path, images, project):
    with pytest.raises(FileExistsError, match="already holds a labelling project"):
        Project.init(project.path, images, DIGIT_CLASSES)
    with pytest.raises(ValueError, match="at least 2 classes"):
        Project.init(tmp_path / "x1", images, ["only"])
    with pytest.raises(ValueError, match="class names must be unique"):
        Project.init(tmp_path / "x2", images, ["a", "a"])
    for bad in ("../up", "a/b", "", " pad", "x" * 101, "tab\there"):
        with pytest.raises(ValueError, match="class name must"):
            Project.init(tmp_path / "x3", images, [bad, "ok"])
    with pytest.raises(ValueError, match=r"The 'strategy' parameter must be one of \["):
        Project.init(tmp_path / "x4", images, ["a", "b"], strategy="oracle")
    with pytest.raises(ValueError, match="needs model='waal'"):
        Project.init(tmp_path / "x5", images, ["a", "b"], strategy="waal_uncertainty_diversity",
                     model="resnet18")
    with pytest.raises(ValueError, match="Unknown project settings"):
        Project.init(tmp_path / "x6", images, ["a", "b"], epoch=3)
    with pytest.raises(ValueError, match="The 'holdout' parameter must be a fraction"):
        Project.init(tmp_path / "x7", images, ["a", "b"], holdout=1.0)
    Image.fromarray(np.zeros((5, 9), np.uint8)).save(images / "odd.png")
    with pytest.raises(ValueError, match=r"2 different sizes.*Pass image_size="):
        Project.init(tmp_path / "x8", images, ["a", "b"])
    assert not os.path.exists(tmp_path / "x8" / "skal.db")


def test_init_skips_corrupt_files_and_links_out_of_the_folder(tmp_path, images):
    (images / "broken.png").write_bytes(b"not a png")
    outside = tmp_path / "secret.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(outside)
    os.symlink(outside, images / "link.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = Project.init(tmp_path / "p3", images, ["a", "b"], **TINY)
    messages = " ".join(str(w.message) for w in caught)
    assert "broken.png" in messages and "link.png" in messages
    try:
        paths = {r["path"] for r in p.store.images()}
        assert "broken.png" not in paths and "link.png" not in paths and len(paths) == 50
    finally:
        p.close()


def test_train_and_query_records_a_round_and_a_new_batch(project):
    _label_batch(project)
    labelled = set(project.labels())
    phases = []
    result = project.train_and_query(progress=lambda phase, done, total: phases.append(phase))
    assert phases[0] == "loading images" and phases[-1] == "done" and "training" in phases
    assert result["status"] == "done" and result["strategy"] == "bald"
    assert result["model"] == "resnet18" and result["n_labeled"] == 6
    assert result["n_train"] + result["n_holdout"] == 6
    batch = project.next_batch()
    assert len(batch) == 6 and not {b.path for b in batch} & labelled
    assert all(b.guess in DIGIT_CLASSES and 0 < b.confidence <= 1 for b in batch)
    assert all(b.score is not None for b in batch)
    scores = [b.score for b in batch]
    assert scores == sorted(scores, reverse=True)  # best first
    model = project.load_model()
    assert model.predict(np.zeros((2, 1, 8, 8), np.uint8)).tolist()[0] in DIGIT_CLASSES
    assert list(model.classes_) == DIGIT_CLASSES  # all classes, labelled or not
    curve = project.learning_curve()
    assert [c["round"] for c in curve] == [result["id"]]


def test_any_strategy_by_name_and_waal_trains_on_the_pool(project, monkeypatch):
    assert {"bald", "entropy_sampling", "margin_sampling", "random_sampling",
            "uncertainty_sampling", "waal_uncertainty_diversity"} <= set(available_strategies())
    _label_batch(project)
    result = project.train_and_query("entropy_sampling")
    assert result["strategy"] == "entropy_sampling" and result["model"] == "resnet18"
    with pytest.raises(ValueError, match="The 'strategy' parameter must be one of"):
        project.train_and_query("best_guess")

    from skal.estimators.waal import WAALClassifier

    seen = {}
    original = WAALClassifier.fit

    def spy(self, X, y, X_unlabeled=None, **kw):
        seen["n_unlabeled"] = None if X_unlabeled is None else len(X_unlabeled)
        return original(self, X, y, X_unlabeled=X_unlabeled, **kw)

    monkeypatch.setattr(WAALClassifier, "fit", spy)
    result = project.train_and_query("waal_uncertainty_diversity")
    assert result["model"] == "waal"
    assert seen["n_unlabeled"] == len(project.store.images()) - 6 - 0  # the whole pool
    assert isinstance(project.load_model(), WAALClassifier)


def test_training_needs_two_classes_and_a_failed_round_keeps_the_labels(project, monkeypatch):
    with pytest.raises(ValueError, match="Training needs labelled images of at least 2 classes"):
        project.train_and_query()
    assert len(project.rounds()) == 1  # nothing was started
    _label_batch(project)
    from skal.labeling import service

    def broken(*args, **kwargs):
        raise FloatingPointError("the loss diverged")

    monkeypatch.setattr(service, "build_estimator", broken)
    labels = project.labels()
    with pytest.raises(FloatingPointError):
        project.train_and_query()
    last = project.rounds()[-1]
    assert last["status"] == "failed" and "the loss diverged" in last["error"]
    assert project.labels() == labels
    assert project.next_batch()[0].guess is None  # still the first batch


def test_holdout_is_fixed_by_content_hash(project):
    from skal.labeling.rounds import in_holdout

    hashes = [r["sha256"] for r in project.store.images()]
    held = [h for h in hashes if in_holdout(h, 0.25)]
    assert 0 < len(held) < len(hashes)
    assert held == [h for h in hashes if in_holdout(h, 0.25)]
    assert not any(in_holdout(h, 0.0) for h in hashes)


def test_export_csv_and_imagefolder(tmp_path, project):
    _label_batch(project)
    # the labeller takes a label back as a skip (another annotator's skip would leave it labelled)
    project.skip(project.next_batch()[1].image_id, annotator="me")
    n = project.export_csv(tmp_path / "labels.csv")
    with open(tmp_path / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert n == len(rows) == 5  # the skip is not a label
    assert set(rows[0]) == {"path", "label", "annotator", "answered_at", "sha256"}
    assert all(r["label"] == true_label(r["path"]) and r["annotator"] == "me" for r in rows)
    out = tmp_path / "folder"
    assert project.export_imagefolder(out) == 5
    exported = {(d, f) for d in os.listdir(out) for f in os.listdir(out / d)}
    assert exported == {(r["label"], r["path"]) for r in rows}
    with pytest.raises(FileExistsError, match="is not an empty folder"):
        project.export_imagefolder(out)


def test_cli_init_train_export(tmp_path, images, capsys):
    proj = str(tmp_path / "cli")
    assert main(["label", "init", proj, "--images", str(images), "--classes",
                 ",".join(DIGIT_CLASSES), "--batch-size", "5", "--width", "2", "--epochs", "1",
                 "--min-steps", "0", "--mc-samples", "2"]) == 0
    assert "50 images (1x8x8 for the model)" in capsys.readouterr().out
    assert main(["label", "init", proj, "--images", str(images), "--classes", "a,b"]) == 2
    assert "already holds a labelling project" in capsys.readouterr().err
    with Project(proj) as p:
        _label_batch(p)
    assert main(["label", "train", proj, "--strategy", "margin_sampling"]) == 0
    assert "round 2 (margin_sampling): trained on" in capsys.readouterr().out
    assert main(["label", "export", proj]) == 0
    assert "exported 5 labels to" in capsys.readouterr().out
    assert os.path.isfile(os.path.join(proj, "labels.csv"))
    assert main(["label", "export", proj, "--format", "imagefolder", "--out",
                 str(tmp_path / "exp")]) == 0
    assert main(["label", "export", str(tmp_path / "nothing")]) == 2
    assert "is not a skal labelling project" in capsys.readouterr().err
    assert main(["label", "serve", proj, "--port", "70000"]) == 2
    assert "expected a port number" in capsys.readouterr().err
    assert main(["label", "init", proj + "x", "--images", str(images), "--image-size", "0"]) == 2


def test_cli_defaults_match_the_project_defaults():
    for key, value in label_cli._DEFAULTS.items():
        assert DEFAULT_CONFIG[key] == value, key


def test_batch_strategies_get_the_labelled_images(project, monkeypatch):
    import functools

    from skal import query

    _label_batch(project)
    seen = {}
    original = query.coreset

    @functools.wraps(original)
    def spy(learner, X_pool, n_instances=1, **kwargs):
        # the round queries through its ActiveLearner, whose labelled set coreset reads
        seen.update(n_pool=len(X_pool), X_labeled=learner.X_training_)
        return original(learner, X_pool, n_instances, **kwargs)

    monkeypatch.setattr(query, "coreset", spy)
    result = project.train_and_query("coreset")
    assert result["status"] == "done" and len(project.next_batch()) == 6
    assert seen["n_pool"] == 44
    assert seen["X_labeled"].shape == (result["n_train"], 1, 8, 8)


def test_export_csv_escapes_spreadsheet_formulas(tmp_path, project):
    names = ["=HYPERLINK(\"http://evil.example\")", "+cmd|' /C calc'!A0", "@SUM(A1)", "-1",
             "\tlead", "plain"]
    for item, annotator in zip(project.next_batch(), names):
        project.label(item.image_id, true_label(item.path), annotator=annotator)
    for escape, expected in [
        (True, {"'=HYPERLINK(\"http://evil.example\")", "'+cmd|' /C calc'!A0", "'@SUM(A1)",
                "-1", "'\tlead"}),
        (False, set(names[:5])),
    ]:
        out = tmp_path / f"labels_{escape}.csv"
        project.export_csv(out, escape_formulas=escape)
        with open(out, newline="") as f:
            annotators = {r["annotator"] for r in csv.DictReader(f)}
        assert expected <= annotators  # the batch holds 5 images: 'plain' may not be used
