"""Answers given while a round runs: the images answered while the model trained or queried
never appear in the batch the round stores, and the batch is filled up from its ranking."""

import pytest
from label_helpers import DIGIT_CLASSES, true_label, write_digit_pngs

from skal.labeling import Project
from skal.labeling import rounds as _rounds

BATCH = 4


@pytest.fixture
def project(tmp_path):
    write_digit_pngs(tmp_path / "png", 34, size=8)
    p = Project.init(tmp_path / "project", tmp_path / "png", DIGIT_CLASSES, batch_size=BATCH,
                     width=2, epochs=1, min_steps=0, mc_samples=2, holdout=0.0)
    by_path = {r["path"]: r["id"] for r in p.store.images()}
    # 20 labels of several classes: a pool of 14 images for round 2
    for path in sorted(by_path)[:20]:
        p.label(by_path[path], true_label(path), annotator="setup")
    yield p
    p.close()


def test_unanswered_first_keeps_the_ranking_order():
    ranking = [(7, 0.9, "1", 0.5), (3, 0.8, "2", 0.5), (5, 0.7, "1", 0.5), (1, 0.1, "0", 0.5)]
    assert _rounds.unanswered_first(ranking, [1, 5, 7], 2) == [ranking[0], ranking[2]]
    assert _rounds.unanswered_first(ranking, [1, 3, 5], 5) == ranking[1:]
    assert _rounds.unanswered_first(ranking, [], 3) == []


def test_images_answered_while_the_round_runs_are_not_in_its_batch(project):
    store = project.store
    ready = project.check_ready()
    pool = [int(i) for i in ready.pool]
    assert len(pool) == 14
    answered = {}

    def answer(ids):
        for image_id in ids:
            row = store.image(image_id=image_id)
            store.add_answer(image_id, "label", true_label(row["path"]), annotator="other",
                             source="test")
            answered[image_id] = true_label(row["path"])

    def progress(phase, done, total):
        if phase == "training" and done == 0:
            answer(pool[:4])  # while the model trains: 10 left in the pool
        elif phase == "saving the model":
            # while it queried: 4 of the 10; the ranking holds 8 of the 10, so at least 2 of
            # these are ranked, and at least 4 ranked images are left to fill the batch
            answer(pool[4:8])

    result = _rounds.train_and_query(store, project.path, project._pixels, project.classes,
                                     ready, progress)
    assert result["status"] == "done"
    batch = store.batch(result["id"])
    ids = [r["image_id"] for r in batch]
    assert len(ids) == BATCH and len(set(ids)) == BATCH
    assert not set(ids) & set(answered), "an image answered during the round is in its batch"
    assert set(ids) <= set(pool[8:])
    assert all(r["kind"] is None for r in batch)
    assert [r["position"] for r in batch] == list(range(BATCH))
    scores = [r["score"] for r in batch]
    assert scores == sorted(scores, reverse=True)
    # the answers themselves are kept, and the round saw the labels it trained on
    assert {r["image_id"]: r["label"] for r in store.current()
            if r["annotator"] == "other"} == answered
    assert result["n_labeled"] == 20


def test_a_pool_answered_entirely_during_training_gives_an_empty_batch(project):
    store = project.store
    ready = project.check_ready()

    def progress(phase, done, total):
        if phase == "training" and done == 0:
            for image_id in ready.pool:
                store.add_answer(int(image_id), "skip", annotator="other", source="test")

    result = _rounds.train_and_query(store, project.path, project._pixels, project.classes,
                                     ready, progress)
    assert result["status"] == "done" and list(store.batch(result["id"])) == []
